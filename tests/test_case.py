"""Case lookup: one person as one institution may see them, found by its own case number only."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import test_reviews
from iizrisk._texts import load_locale, text
from iizrisk.batch import run_nightly
from iizrisk.case import case_lookup
from iizrisk.cli import main
from iizrisk.errors import ConfigError, ValidationError
from iizrisk.reviews import import_reviews
from iizrisk.tables import read_table

trained = test_reviews.trained  # the trained model fixture, shared
deployment = test_reviews.deployment

AS_OF = "2023-06-30"


@pytest.fixture(scope="module")
def night(tmp_path_factory, random_spells, trained):
    tmp = tmp_path_factory.mktemp("case")
    cfg = deployment(tmp, random_spells, trained, worklist={"disclose_institutions": ["IV"]})
    res = run_nightly(cfg, as_of=AS_OF, progress=False)
    return cfg, res


def test_a_case_on_the_list(night, random_spells):
    cfg, res = night
    row = res.worklists["ALV"].iloc[0]
    case = row["case_ids"].split(";")[0]
    v = case_lookup(cfg, institution="ALV", case_id=case, as_of=AS_OF)
    person = row["person_id"]
    t = pd.Timestamp(AS_OF)
    mine = random_spells[(random_spells["person_id"] == person) & (random_spells["start_date"] <= t)]
    inst = mine["institution"].astype(str)
    # the reference: own and disclosed spells shown, others only counted
    assert sorted(v.timeline["institution"]) == sorted(inst[inst.isin(["ALV", "IV"])])
    assert v.n_other_institutions == inst[~inst.isin(["ALV", "IV"])].nunique()
    shown_cases = set(v.timeline["case_ids"]) - {""}
    assert shown_cases <= set(mine.loc[inst == "ALV", "case_id"].astype(str))
    assert (v.timeline.loc[v.timeline["institution"] != "ALV", "case_ids"] == "").all()
    assert len(v.flags) == 1 and bool(v.flags["multi_registered"].iloc[0]) == bool(row["multi_registered"])
    assert len(v.reasons) == 1 and v.reasons["reason_1_text"].iloc[0] == row["reason_1_text"]
    score = res.scores.set_index("person_id").loc[person]
    # its rank on the ALV list (the list's "Rang") and among everyone scored, each under its own header
    assert v.risk_history[["risk", "rank_on_list", "rank_all"]].values.tolist() == [
        [pytest.approx(score["risk"]), row["rank"], score["rank"]]]
    text = v.summary_text()
    assert person not in text and person not in v._repr_html_()
    ax = v.plot()
    assert person not in ax.get_title()


def test_the_timelines_title_gives_the_flags_of_the_table_not_of_the_visible_spells(night):
    """The title recomputed the flags from the spells the institution may see: "1 registration today, 1
    institution" beside a flags table with 2 and 3. It now states the table's flags, in the list's language."""
    from iizrisk._texts import text

    cfg, res = night
    for row in res.worklists["ALV"].itertuples():
        v = case_lookup(cfg, institution="ALV", case_id=row.case_ids.split(";")[0], as_of=AS_OF)
        if v.n_other_institutions:  # spells the lookup counts but does not draw
            break
    else:
        pytest.skip("no listed ALV case with an institution the lookup does not show")
    f = v.flags.iloc[0]
    want = text("plot.timeline_flags", v.language, date=pd.Timestamp(AS_OF).date(), n=int(f["n_registered"]),
                k=int(f["n_institutions_window"]), m=int(f["n_spells_window"]), months=24)
    assert want in v.plot().get_title(loc="left")
    assert int(f["n_institutions_window"]) > v.timeline["institution"].nunique()  # more than it draws


def test_the_lookup_reads_in_the_lists_language(night, tmp_path):
    """The console and notebook showed the lookup's tables with column codes and English values ("high",
    "True", "employment"), and the reasons without a heading nor a file: on the SH list (French) they read
    in French, under their title, and --out writes the reasons too."""
    from iizrisk._texts import text

    cfg, res = night
    case = res.worklists["SH"]["case_ids"].iloc[0].split(";")[0]
    v = case_lookup(cfg, institution="SH", case_id=case, as_of=AS_OF)
    assert v.language == "fr" and len(v.reasons) == 1
    shown = v.summary_text()
    for key in ("timeline", "flags", "reasons", "risk_history"):
        assert text(f"case.{key}", "fr") in shown and text(f"case.{key}", "fr") in v._repr_html_()
    assert text("table.columns.risk_band", "fr") in shown and text("table.columns.rank_on_list", "fr") in shown
    assert "risk_band" not in shown and " True" not in shown and " high" not in shown
    written = {p.name for p in v.to_dir(tmp_path / "out")}
    assert "reasons.csv" in written


def test_the_files_of_a_lookup_are_in_the_lists_language(night, tmp_path, monkeypatch):
    """to_dir() without a language wrote codes as headers ("as_of;n_registered"), "high" and
    "employment", and an English timeline, while the view, its HTML and its plot were French."""
    from iizrisk.case import CaseView
    from iizrisk.tables import header, value_name

    cfg, res = night
    case = res.worklists["SH"]["case_ids"].iloc[0].split(";")[0]
    v = case_lookup(cfg, institution="SH", case_id=case, as_of=AS_OF)
    assert v.language == "fr"
    drawn = []
    plot = CaseView.plot
    monkeypatch.setattr(CaseView, "plot", lambda self, ax=None, *, language=None: drawn.append(language)
                        or plot(self, ax, language=language))
    v.to_dir(tmp_path / "out")
    assert drawn == ["fr"]  # the timeline.png in the view's language
    for name, frame in (("risk_history", v.risk_history), ("flags", v.flags), ("timeline", v.timeline)):
        first = (tmp_path / "out" / f"{name}.csv").read_text(encoding="utf-8-sig").splitlines()[0]
        assert first.split(";") == [header(c, "fr") for c in frame.columns], (name, first)
    bands = read_table(tmp_path / "out" / "risk_history.csv", dtype=str)["risk_band"]
    assert bands.tolist() == [value_name("risk_band", b, "fr") for b in v.risk_history["risk_band"]]
    # an explicit language, or the object's output_language, still wins
    v.to_dir(tmp_path / "de", language="de", plots=False)
    first = (tmp_path / "de" / "flags.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert first.split(";") == [header(c, "de") for c in v.flags.columns]
    with pytest.raises(ConfigError, match="language 'FR': use one of de, fr, it, en"):
        v.to_dir(tmp_path / "bad", language="FR")


def test_a_case_not_on_the_list_is_shown_too(night, random_spells, capsys, tmp_path):
    """Its rank on the list is empty (a nullable integer): the display wrote "" into it and crashed
    (exit 5) for every case scored but not listed."""
    cfg, res = night
    t = pd.Timestamp(AS_OF)
    listed = set(res.worklists["ALV"]["person_id"].astype(str))
    alv = random_spells[(random_spells["institution"] == "ALV") & (random_spells["start_date"] <= t)
                        & (random_spells["end_date"].isna() | (random_spells["end_date"] > t))]
    alv = alv[~alv["person_id"].astype(str).isin(listed)
              & alv["person_id"].astype(str).isin(set(res.scores["person_id"].astype(str)))]
    case = str(alv["case_id"].iloc[0])
    v = case_lookup(cfg, institution="ALV", case_id=case, as_of=AS_OF)
    assert len(v.reasons) == 0 and v.risk_history["rank_on_list"].isna().all()
    assert "<NA>" not in v.summary_text() and "<NA>" not in v._repr_html_()
    assert main(["case", str(cfg), "--institution", "ALV", "--case-id", case, "--as-of", AS_OF,
                 "--out", str(tmp_path / "c")]) == 0
    # every table is written, an empty one with its headers: nothing of a case written there before stays
    written = {p.name for p in (tmp_path / "c").iterdir()}
    assert {f"{n}.csv" for n in ("timeline", "flags", "reasons", "risk_history", "reviews")} <= written
    assert len((tmp_path / "c" / "reasons.csv").read_text(encoding="utf-8-sig").splitlines()) == 1


def test_another_institutions_case_is_not_found_and_not_named(night, capsys):
    cfg, res = night
    sh_case = res.worklists["SH"]["case_ids"].iloc[0].split(";")[0]
    with pytest.raises(ValidationError) as err:
        case_lookup(cfg, institution="ALV", case_id=sh_case, as_of=AS_OF)
    msg = str(err.value)
    assert "no case with this number at ALV" in msg and sh_case not in msg and "SH" not in msg
    with pytest.raises(ValidationError) as err2:
        case_lookup(cfg, institution="ALV", case_id="ALV-000000000", as_of=AS_OF)
    assert str(err2.value) == msg  # unknown and foreign: the same answer
    assert main(["case", str(cfg), "--institution", "ALV", "--case-id", sh_case]) == 1
    assert sh_case not in capsys.readouterr().err
    # a wrong institution code is said to be one (it blamed the case number), naming the deployment's codes
    assert main(["case", str(cfg), "--institution", "alv", "--case-id", sh_case]) == 2
    err = capsys.readouterr().err
    assert "'alv' is not an institution of this deployment; use one of ALV," in err and sh_case not in err


def test_the_lookup_sees_only_what_was_known_at_its_as_of_date(night, random_spells, tmp_path):
    """Point in time: a case opened after the as-of date is not found; runs and reviews after it are not shown."""
    cfg, res = night
    row = res.worklists["ALV"].iloc[0]
    case = row["case_ids"].split(";")[0]
    spell = random_spells[(random_spells["institution"] == "ALV") & (random_spells["case_id"] == case)]
    opened = spell["start_date"].min()
    day_before = (opened - pd.Timedelta(days=1)).date().isoformat()
    with pytest.raises(ValidationError, match="no case with this number at ALV"):
        case_lookup(cfg, institution="ALV", case_id=case, as_of=day_before)
    v = case_lookup(cfg, institution="ALV", case_id=case, as_of=opened.date().isoformat())
    assert len(v.risk_history) == 0 and len(v.reviews) == 0  # the night of AS_OF lies after it
    assert (pd.to_datetime(v.timeline["start_date"]) <= opened).all()
    later = case_lookup(cfg, institution="ALV", case_id=case, as_of=AS_OF)
    assert len(later.risk_history) == 1
    # a review is shown from its date on
    xlsx = next(Path(cfg).parent.rglob(f"{AS_OF}/worklists/ALV.xlsx"))
    import_reviews(cfg, [test_reviews.fill(xlsx, {1: ("2023-07-03", "already_in_iiz", "")}, tmp_path / "r.xlsx")])
    assert len(case_lookup(cfg, institution="ALV", case_id=case, as_of="2023-07-02").reviews) == 0
    view = case_lookup(cfg, institution="ALV", case_id=case, as_of="2023-07-03")
    seen = view.reviews
    assert seen["decision"].tolist() == ["already_in_iiz"]
    # written for the coordinator: the decision and the exit reasons by their names, not their codes
    view.to_dir(tmp_path / "fr", language="fr", plots=False)
    reviews = read_table(tmp_path / "fr" / "reviews.csv", dtype=str, keep_default_na=False)
    assert reviews["decision"].tolist() == [text("review.decisions.already_in_iiz", "fr")] == ["déjà en CII"]
    timeline = read_table(tmp_path / "fr" / "timeline.csv", dtype=str, keep_default_na=False)
    reasons = set(timeline["exit_reason"]) - {""}
    names = load_locale("fr")["exit_reasons"]
    assert reasons and reasons <= set(names.values()) and not reasons & set(names), reasons
    assert pd.read_parquet(tmp_path / "fr" / "reviews.parquet")["decision"].tolist() == ["already_in_iiz"]
    with pytest.raises(ConfigError, match="after today"):
        case_lookup(cfg, institution="ALV", case_id=case, as_of="2199-01-01")
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        case_lookup(cfg, institution="ALV", case_id=case, as_of="30.06.2023")


def test_a_recorded_date_after_the_as_of_date_is_read_as_the_nightly_run_reads_it(night, random_spells):
    """A closed row recorded later was known then, still open; an open row recorded later was not known."""
    cfg, res = night
    case = res.worklists["ALV"].iloc[0]["case_ids"].split(";")[0]
    spells = random_spells.copy()
    spells["recorded_date"] = spells["start_date"]
    row = spells.index[(spells["institution"] == "ALV") & (spells["case_id"] == case)][0]
    opened = spells.loc[row, "start_date"]
    day = opened + pd.Timedelta(days=15)
    spells.loc[row, ["end_date", "recorded_date"]] = [opened + pd.Timedelta(days=10), opened + pd.Timedelta(days=20)]
    then = case_lookup(cfg, institution="ALV", case_id=case, as_of=day.date().isoformat(), spells=spells)
    mine = then.timeline[then.timeline["case_ids"] == case]
    assert len(mine) == 1 and mine["end_date"].isna().all()  # its end was recorded later: open then
    later = case_lookup(cfg, institution="ALV", case_id=case, as_of=(opened + pd.Timedelta(days=25)).date().isoformat(),
                        spells=spells)
    assert later.timeline.loc[later.timeline["case_ids"] == case, "end_date"].tolist() == [
        (opened + pd.Timedelta(days=10)).date()]
    spells.loc[row, "end_date"] = pd.NaT  # an open row recorded after the as-of date: not known then
    others = (spells["institution"] == "ALV") & (spells["case_id"] == case) & (spells.index != row)
    if not others.any():
        with pytest.raises(ValidationError, match="no case with this number at ALV"):
            case_lookup(cfg, institution="ALV", case_id=case, as_of=day.date().isoformat(), spells=spells)


def test_the_command_prints_the_case_without_the_pseudonym(night, capsys, tmp_path):
    cfg, res = night
    row = res.worklists["ALV"].iloc[0]
    case = row["case_ids"].split(";")[0]
    assert main(["case", str(cfg), "--institution", "ALV", "--case-id", case, "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert case in out and row["person_id"] not in out
    assert (tmp_path / "c" / "timeline.png").is_file()
    for p in (tmp_path / "c").glob("*.csv"):
        assert not re.search(rf"\b{row['person_id']}\b", p.read_text(encoding="utf-8-sig"))


def test_the_command_writes_every_file_or_none(night, capsys, tmp_path, monkeypatch):
    """A plot that cannot be written (a full disk) leaves no tables without it: exit 6 naming the file, and the
    folder holds nothing of the case; files already there stay."""
    import errno

    import iizrisk._results

    cfg, res = night
    case = res.worklists["ALV"].iloc[0]["case_ids"].split(";")[0]
    out = tmp_path / "c"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    def full_disk(fig, path, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(iizrisk._results, "write_png_atomic", full_disk)
    assert main(["case", str(cfg), "--institution", "ALV", "--case-id", case, "--out", str(out)]) == 6
    err = capsys.readouterr().err
    assert "timeline.png: no space left on the device: free disk space" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # no table, no temporary folder
    monkeypatch.undo()
    assert main(["case", str(cfg), "--institution", "ALV", "--case-id", case, "--out", str(out)]) == 0
    assert {"timeline.csv", "timeline.png", "notes.txt"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_note_stored_with_an_ahv_number_is_withheld_in_the_case_view(night, tmp_path):
    """Notes stored before the import refused every spelling of an AHV number were shown as they were."""
    from iizrisk.config import Settings
    from iizrisk.history import HistoryStore

    cfg, res = night
    row = res.worklists["ALV"].iloc[0]
    case = row["case_ids"].split(";")[0]
    s = Settings.load(cfg)
    store = HistoryStore(s.resolve(s.output.history_dir))
    before = store.reviews()
    planted = pd.DataFrame({"institution": ["ALV", "ALV"], "person_id": [row["person_id"]] * 2,
                            "case_id": [case] * 2,
                            "review_date": pd.to_datetime([AS_OF, AS_OF]).astype("datetime64[s]"),
                            "decision": ["other", "not_suitable"], "decided_by": ["756 12345 67890", "IIZ ALV"],
                            "note": ["Rückruf 756.66.04.87.64.70", "ok"], "listed": [True, True],
                            "list_as_of": pd.to_datetime([AS_OF, AS_OF]).astype("datetime64[s]"),
                            "band_at_review": ["high", "high"]})
    store.write_reviews(pd.concat([before, planted], ignore_index=True))
    try:
        v = case_lookup(cfg, institution="ALV", case_id=case, as_of=AS_OF)
    finally:
        store.write_reviews(before)
    withheld = text("case.withheld_ahv", v.language)
    mine = v.reviews.sort_values("decision").reset_index(drop=True)
    assert mine[["note", "decided_by"]].values.tolist() == [["ok", "IIZ ALV"], [withheld, withheld]]
    shown = v.summary_text() + v._repr_html_()
    assert "6604" not in shown and "12345" not in shown
