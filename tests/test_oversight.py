"""Oversight figures against a plain-Python reference on random histories, and their suppression."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from iizrisk.oversight import ASSESSMENT_DECISIONS, oversight

DECISIONS = ["joint_assessment_proposed", "joint_assessment_held", "not_suitable", "other"]
PEOPLE = ["a", "b", "c", "d"]
DAY0 = pd.Timestamp("2024-01-25")


def reference(lists: list[dict], reviews: list[dict], repeat_nights: int = 3) -> dict:
    """Per (institution, month): the figures, computed the slow obvious way."""
    def month(d):
        return d.strftime("%Y-%m")

    keys = {(x["institution"], month(x["as_of"])) for x in lists} | \
        {(x["institution"], month(x["review_date"])) for x in reviews}
    out = {}
    for inst, m in sorted(keys):
        on = [x for x in lists if x["institution"] == inst and month(x["as_of"]) == m]
        rv = [x for x in reviews if x["institution"] == inst and month(x["review_date"]) == m]
        listed_rv = [x for x in rv if x["listed"]]
        days = []
        for x in listed_rv:
            nights = [y["as_of"] for y in lists if y["institution"] == inst and y["person_id"] == x["person_id"]]
            if nights and (x["review_date"] - min(nights)).days >= 0:
                days.append((x["review_date"] - min(nights)).days)
        judged = [x for x in listed_rv if x["band_at_review"] is not None]
        agree = [x for x in judged if (x["decision"] in ASSESSMENT_DECISIONS) == (x["band_at_review"] == "high")]
        month_end = (pd.Timestamp(m + "-01") + pd.offsets.MonthEnd(0))
        repeated = 0
        for p in {x["person_id"] for x in on}:
            n = sum(1 for x in on if x["person_id"] == p)
            ever = [x for x in reviews if x["institution"] == inst and x["person_id"] == p
                    and x["review_date"] <= month_end]
            repeated += n >= repeat_nights and not ever
        out[(inst, m)] = {
            "listed": len({x["person_id"] for x in on}),
            "reviewed": len({x["person_id"] for x in rv}),
            "median_days_to_review": statistics.median(days) if days else None,
            "overrides": sum(1 for x in rv if not x["listed"]),
            "agreeing": len(agree),
            "repeatedly_listed_unreviewed": repeated,
            **{f"decision:{d}": sum(1 for x in rv if x["decision"] == d) for d in DECISIONS},
        }
    return out


@st.composite
def histories(draw):
    nights = draw(st.lists(st.integers(0, 45), min_size=1, max_size=6, unique=True))
    lists = [{"institution": inst, "person_id": p, "as_of": DAY0 + pd.Timedelta(days=d)}
             for d in nights for inst in ("ALV", "SH")
             for p in draw(st.sets(st.sampled_from(PEOPLE), max_size=3))]
    n = draw(st.integers(0, 10))
    reviews = []
    seen = set()
    for _ in range(n):
        r = {"institution": draw(st.sampled_from(["ALV", "SH"])), "person_id": draw(st.sampled_from(PEOPLE)),
             "review_date": DAY0 + pd.Timedelta(days=draw(st.integers(0, 50))),
             "decision": draw(st.sampled_from(DECISIONS)), "listed": draw(st.booleans()),
             "band_at_review": draw(st.sampled_from(["low", "medium", "high", None]))}
        key = (r["institution"], r["person_id"], r["review_date"])
        if key not in seen:
            seen.add(key)
            reviews.append(r)
    return lists, reviews


def _frames(lists, reviews):
    lf = pd.DataFrame(lists, columns=["institution", "person_id", "as_of"])
    rf = pd.DataFrame(reviews, columns=["institution", "person_id", "review_date", "decision", "listed",
                                        "band_at_review"])
    rf["listed"] = rf["listed"].astype(bool)
    return lf, rf


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
@example(([], [{"institution": "ALV", "person_id": "a", "review_date": DAY0, "decision": "other", "listed": False,
                "band_at_review": "low"}]))  # reviews, no list yet
def test_oversight_equals_the_reference(h):
    lists, reviews = h
    got = oversight(*_frames(lists, reviews), min_cell_size=1, decisions=DECISIONS).table
    want = reference(lists, reviews)
    assert sorted(zip(got["institution"], got["month"], strict=True)) == sorted(want)
    for row in got.to_dict("records"):
        w = want[(row["institution"], row["month"])]
        for col, value in w.items():
            if col == "median_days_to_review" and value is None:
                assert np.isnan(row[col]), (col, row)
            else:
                assert row[col] == pytest.approx(value), (col, row, w)


def test_small_cells_are_hidden_with_their_shares():
    lists = [{"institution": "ALV", "person_id": f"p{i}", "as_of": DAY0} for i in range(12)]
    reviews = [{"institution": "ALV", "person_id": f"p{i}", "review_date": DAY0 + pd.Timedelta(days=i),
                "decision": "not_suitable" if i < 9 else "other", "listed": i < 10, "band_at_review": "medium"}
               for i in range(12)]
    o = oversight(*_frames(lists, reviews), min_cell_size=5, decisions=DECISIONS)
    s = o.summary.set_index("month").loc["2024-01"]
    raw = o.table.set_index("month").loc["2024-01"]
    assert raw["overrides"] == 0 and raw["decision:not_suitable"] == 7  # January: reviews of p0..p6
    feb = o.summary.set_index("month").loc["2024-02"]
    assert pd.isna(feb["overrides"]) and pd.isna(feb["override_share"])  # 2 overrides: hidden with the share
    assert s["listed"] == 12
    assert "judged" not in o.summary.columns


def _recoverable(summary: pd.DataFrame, table: pd.DataFrame, k: int) -> list[str]:
    """The hidden counts of small cells that the published ones give back, by one line's equation."""
    found = []
    for (_, pub), (_, raw) in zip(summary.iterrows(), table.iterrows(), strict=True):
        where = f"{raw['institution']} {raw['month']}"
        decisions = [c for c in table.columns if c.startswith("decision:")]
        hidden = [c for c in decisions if pd.isna(pub[c])]
        if pd.notna(pub["reviews"]) and hidden and (len(hidden) == 1 or raw[hidden].sum() < k):
            found.append(f"{where}: {hidden} = reviews minus the published decisions")
        # a count and the count it is part of, both published: the rest is published too
        for part, whole in (("overrides", "reviews"), ("agreeing", "judged")):
            rest = raw[whole] - raw[part]
            whole_known = pd.notna(pub[whole]) if whole in pub else pd.notna(pub["agreement_share"])
            if pd.notna(pub[part]) and whole_known and 0 < rest < k:
                found.append(f"{where}: {whole} minus {part} = {rest}")
        for share, (num, den) in (("proposed_listed_share", ("proposed_listed", "listed_reviews")),
                                  ("agreement_share", ("agreeing", "judged")),
                                  ("override_share", ("overrides", "reviews"))):
            if pd.notna(pub[share]) and 0 < raw[den] - raw[num] < k:
                found.append(f"{where}: {share} with a small rest {raw[den] - raw[num]}")
    return found


def test_a_hidden_count_is_not_given_back_by_the_published_ones():
    """January at ALV: 12 reviews, 10 proposals and 2 refusals; the 2 refusals were hidden, but reviews minus
    the published decisions gave them back, and so did the agreement and proposal shares (10 of 12)."""
    people = [f"p{i}" for i in range(12)]
    lists = [{"institution": "ALV", "person_id": p, "as_of": d} for d in (DAY0, DAY0 + pd.Timedelta(days=14))
             for p in people]
    reviews = [{"institution": "ALV", "person_id": p, "review_date": d, "listed": True, "band_at_review": "high",
                "decision": "not_suitable" if d == DAY0 and i >= 10 else "joint_assessment_proposed"}
               for d in (DAY0, DAY0 + pd.Timedelta(days=14)) for i, p in enumerate(people)]
    o = oversight(*_frames(lists, reviews), min_cell_size=5, decisions=DECISIONS)
    jan = o.summary.set_index("month").loc["2024-01"]
    assert pd.isna(jan["decision:not_suitable"]) and o.table.set_index("month").loc["2024-01", "reviews"] == 12
    assert _recoverable(o.summary, o.table, 5) == []
    assert jan["listed"] == 12 and jan["reviewed"] == 12 and jan["reviews"] == 12  # what gives nothing away stays


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_no_hidden_count_is_given_back_on_random_histories(h):
    lists, reviews = h
    o = oversight(*_frames(lists, reviews), min_cell_size=2, decisions=DECISIONS)
    assert _recoverable(o.summary, o.table, 2) == []


def test_oversight_command(tmp_path, capsys):
    from iizrisk.cli import main
    from iizrisk.config import Settings
    from iizrisk.history import HistoryStore
    from iizrisk.tables import read_table

    cfg = Settings.from_dict({"output": {"dir": "runs", "history_dir": "history"}}, base_dir=tmp_path).save(
        tmp_path / "iizrisk.toml")
    h = HistoryStore(tmp_path / "history")
    lists, reviews = _frames(
        [{"institution": "ALV", "person_id": f"p{i}", "as_of": DAY0} for i in range(8)],
        [{"institution": "ALV", "person_id": f"p{i}", "review_date": DAY0 + pd.Timedelta(days=2),
          "decision": "not_suitable", "listed": True, "band_at_review": "high"} for i in range(6)])
    h.write(DAY0, worklists=lists.drop(columns="as_of"))
    full = reviews.assign(case_id="x", note="", list_as_of=DAY0, decided_by="IIZ ALV")
    h.write_reviews(full)
    o = oversight(h.read("worklists"), h.reviews(), min_cell_size=5)
    row = o.summary.iloc[0]
    assert (row["listed"], row["reviewed"], row["median_days_to_review"], row["agreement_share"]) == (8, 6, 2.0, 0.0)
    assert main(["oversight", str(cfg), "--from", "2024-01-01", "--to", "2024-01-31", "--out",
                 str(tmp_path / "o")]) == 0
    assert "Oversight" in capsys.readouterr().out
    table = read_table(tmp_path / "o" / "oversight.csv")  # German headers, read back as codes
    assert table[["institution", "listed", "reviewed"]].values.tolist() == [["ALV", 8, 6]]
    assert "Geprüft" in (tmp_path / "o" / "oversight.csv").read_text(encoding="utf-8-sig")
    capsys.readouterr()
    # no month in range: never exit 0 on nothing, and no empty table written
    assert main(["oversight", str(cfg), "--from", "2024-03-01", "--out", str(tmp_path / "none")]) == 2
    assert "no worklists and no reviews between 2024-03-01 and today" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_oversight_without_a_history_store_is_invalid_input(tmp_path, capsys):
    """A missing store (or history_dir naming a file) printed an empty table with exit 0."""
    from iizrisk.cli import main
    from iizrisk.config import Settings

    cfg = Settings.from_dict({"output": {"dir": "runs", "history_dir": "history"}}, base_dir=tmp_path).save(
        tmp_path / "iizrisk.toml")
    assert main(["oversight", str(cfg)]) == 1
    assert "no history store with worklists" in capsys.readouterr().err
    (tmp_path / "history").write_text("x")
    assert main(["oversight", str(cfg)]) == 1


def _first_night_and_a_month_of_reviews():
    """ALV: 12 listed in January, none reviewed; in February 10 listed and 12 reviewed (2 overrides): a share
    above 100 %. SH: 3 listed (hidden, no line). BB: reviews only, nobody listed (no share, nothing hidden).
    KTG: 8 listed in both months, none reviewed."""
    lists = ([{"institution": "ALV", "person_id": f"p{i}", "as_of": DAY0} for i in range(12)]
             + [{"institution": "ALV", "person_id": f"p{i}", "as_of": DAY0 + pd.Timedelta(days=10)} for i in range(10)]
             + [{"institution": "SH", "person_id": f"s{i}", "as_of": DAY0} for i in range(3)]
             + [{"institution": "KTG", "person_id": f"k{i}", "as_of": DAY0 + pd.Timedelta(days=d)}
                for i in range(8) for d in (0, 10)])
    reviews = ([{"institution": "ALV", "person_id": f"p{i}", "review_date": DAY0 + pd.Timedelta(days=12),
                 "decision": "not_suitable", "listed": i < 10, "band_at_review": "medium"} for i in range(12)]
               + [{"institution": "BB", "person_id": f"b{i}", "review_date": DAY0 + pd.Timedelta(days=12),
                   "decision": "other", "listed": False, "band_at_review": None} for i in range(6)])
    return oversight(*_frames(lists, reviews), min_cell_size=5, decisions=DECISIONS)


@pytest.mark.parametrize("lang", ["de", "fr", "it", "en"])
def test_the_plot_starts_at_zero_and_names_only_what_it_draws(lang):
    """The first night (nothing reviewed) drew an axis from -4 % to 4 %, a legend with institutions whose
    figures are hidden and no title."""
    from matplotlib.figure import Figure

    from iizrisk._texts import text

    o = _first_night_and_a_month_of_reviews()
    s = o.summary.set_index(["institution", "month"])
    assert pd.isna(s.loc[("SH", "2024-01"), "listed"]) and s.loc[("ALV", "2024-02"), "reviewed"] == 12
    ax = o.plot(ax=Figure().subplots(), language=lang)
    lo, hi = ax.get_ylim()
    assert lo == 0 and hi >= 120  # 12 reviewed of 10 listed in February
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ALV", "KTG"]  # not SH: no point drawn
    alv, ktg = ax.get_lines()
    assert list(alv.get_ydata()) == [0.0, 120.0] and list(ktg.get_xdata()) == [0, 1]
    assert np.isnan(ktg.get_ydata()[0]) and ktg.get_ydata()[1] == 0  # January hidden (secondary)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2024-01", "2024-02"]
    assert ax.get_title() == text("oversight.plot_title", lang)
    assert ax.get_ylabel() == text("oversight.plot_axis", lang)
    notes = [t.get_text() for t in ax.texts]
    assert notes == [text("oversight.plot_hidden", lang, k=5, names="SH") + "\n"  # BB: nothing hidden, no share
                     # KTG's hidden January is a gap in its line, and the note says why (it said nothing)
                     + text("oversight.plot_partly_hidden", lang, k=5, names="KTG")]
    # a first night with nothing reviewed: 0 % on an axis from 0, not -4 % to 4 %
    first = oversight(*_frames([{"institution": "ALV", "person_id": f"p{i}", "as_of": DAY0} for i in range(6)], []),
                      min_cell_size=5)
    ax = first.plot(ax=Figure().subplots(), language=lang)
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= 100
    # nothing to draw at all: said in the panel
    empty = oversight(*_frames([], []), min_cell_size=5).plot(ax=Figure().subplots(), language=lang)
    assert [" ".join(t.get_text().split()) for t in empty.texts] == [text("oversight.plot_none", lang, k=5)]
    assert empty.get_legend() is None


def test_to_dir_writes_the_peoples_table_in_the_language_and_the_plot(tmp_path):
    """to_dir(language="fr", xlsx=True) wrote oversight.parquet only, without a word."""
    from openpyxl import load_workbook

    from iizrisk._texts import text
    from iizrisk.tables import header, read_table

    o = _first_night_and_a_month_of_reviews()
    files = o.to_dir(tmp_path, language="fr", xlsx=True)
    assert [f.name for f in files] == ["oversight.csv", "oversight.xlsx", "oversight.parquet", "oversight.png"]
    first_line = (tmp_path / "oversight.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert first_line.startswith(f"{header('institution', 'fr')};") and header("listed", "fr") in first_line
    assert header("listed", "fr") != "listed"
    back = read_table(tmp_path / "oversight.csv")  # French headers, read back as codes
    want = o.summary
    assert back[["institution", "month"]].values.tolist() == want[["institution", "month"]].values.tolist()
    assert back["listed"].isna().tolist() == want["listed"].isna().tolist()  # SH's hidden cell stays empty
    assert (back["listed"].dropna().astype(int) == want["listed"].dropna().astype(int).to_numpy()).all()
    sheet = load_workbook(tmp_path / "oversight.xlsx").active
    assert sheet.cell(1, 1).value == header("institution", "fr")
    parquet = pd.read_parquet(tmp_path / "oversight.parquet")
    assert list(parquet.columns) == list(want.columns)  # the codes, for machines
    # a larger minimum hides more, in the table and in the figure's note
    stricter = o.to_dir(tmp_path / "k20", min_cell_size=20, plots=False)
    assert [f.name for f in stricter] == ["oversight.csv", "oversight.parquet"]
    listed = pd.read_parquet(tmp_path / "k20" / "oversight.parquet")["listed"]
    assert listed[listed != 0].isna().all()  # BB's zero stays: "nobody" is no small cell
    (fig,) = o._output_figures(o._output_tables(20), "de")
    assert [" ".join(t.get_text().split()) for t in fig.figure.axes[0].texts] == [  # nothing drawn, and why
        text("oversight.plot_none", "de", k=20), text("oversight.plot_hidden", "de", k=20, names="ALV, BB, KTG, SH")]
