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
    full = reviews.assign(case_id="x", note="", list_as_of=DAY0)
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
    assert main(["oversight", str(cfg), "--from", "2024-03-01"]) == 0  # no month in range: an empty table


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
