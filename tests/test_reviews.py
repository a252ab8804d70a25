"""Reviews: the worklists come back filled in, are stored once, and the next night respects them.

The scenario runs three nights with reviews imported between them and checks
every exclusion rule, every history column and the interventions created
against plain-Python references; the bad files each get a clear error and
leave the store untouched.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import test_batch
from iizrisk.batch import run_nightly
from iizrisk.cli import main
from iizrisk.config import Settings
from iizrisk.errors import ConfigError, ValidationError
from iizrisk.history import REVIEW_COLUMNS, HistoryStore
from iizrisk.reviews import (
    all_interventions,
    decision_label,
    import_reviews,
    interventions_from_reviews,
    keep_off,
)
from iizrisk.tables import header, read_table
from iizrisk.validate import ValidationReport

trained = test_batch.trained  # the module's trained model, shared with test_batch

NIGHTS = ("2023-06-26", "2023-06-28", "2023-06-30")


def deployment(tmp_path: Path, spells: pd.DataFrame, model_dir: Path, **extra) -> Path:
    """test_batch's deployment with longer lists, the low band listed and every count shown."""
    extra = {"worklist": {"capacity": 8, "min_band": "low", **extra.pop("worklist", {})},
             "privacy": {"min_cell_size": 1}, **extra}
    return test_batch.deployment(tmp_path, spells, model_dir, **extra)


def fill(xlsx: Path, rows: dict[int, tuple], out: Path, *, add: list[tuple] = (), language: str = "de",
         by: str | None = "IIZ-Koordination") -> Path:
    """Fill the review file as a coordinator would: rows (1-based list rank) -> (date, decision code, note);
    ``add``: extra rows (case id, date, decision code, note) for cases not on the list; ``by``: who decided."""
    from openpyxl import load_workbook

    wb = load_workbook(xlsx)
    ws = next(wb[s] for s in wb.sheetnames if wb[s].sheet_state == "visible")
    head = [c.value for c in ws[1]]
    col = {code: head.index(header(code, language)) + 1
           for code in ("case_ids", "review_date", "decision", "decided_by", "note")}
    for rank, (date, decision, note) in rows.items():
        ws.cell(row=rank + 1, column=col["review_date"], value=dt.date.fromisoformat(date))
        ws.cell(row=rank + 1, column=col["decision"], value=decision_label(decision, language))
        ws.cell(row=rank + 1, column=col["decided_by"], value=by)
        ws.cell(row=rank + 1, column=col["note"], value=note)
    r = ws.max_row
    for case, date, decision, note in add:
        r += 1
        ws.cell(row=r, column=col["case_ids"], value=case)
        ws.cell(row=r, column=col["review_date"], value=date)
        ws.cell(row=r, column=col["decision"], value=decision)
        ws.cell(row=r, column=col["decided_by"], value=by)
        ws.cell(row=r, column=col["note"], value=note)
    wb.save(out)
    return out


def listed(folder: Path, inst: str) -> pd.DataFrame:
    return pd.read_parquet(folder / "worklists" / f"{inst}.parquet")


def in_memory(res, inst: str) -> pd.DataFrame:
    return res.worklists[inst] if inst in res.worklists.lists else pd.DataFrame(columns=["person_id"])


# ------------------------------------------------------------------ the scenario
@pytest.mark.slow
def test_three_nights_with_reviews_between_them(tmp_path, random_spells, trained):
    cfg = deployment(tmp_path, random_spells, trained)
    s = Settings.load(cfg)
    history = HistoryStore(s.resolve(s.output.history_dir))
    runs = tmp_path / "runs"
    r1 = run_nightly(cfg, as_of=NIGHTS[0], progress=False)
    alv1 = in_memory(r1, "ALV")
    assert len(alv1) >= 6
    # every history column on the first night
    assert (alv1["times_listed"] == 1).all() and (alv1["days_on_list"] == 0).all()
    assert (alv1["first_listed"] == pd.Timestamp(NIGHTS[0])).all() and alv1["risk_change"].isna().all()
    assert alv1["last_decision"].isna().all() and (alv1["as_of"] == pd.Timestamp(NIGHTS[0])).all()

    # the coordinators review: ranks 1-4 decided, an override for a case not on the list
    not_listed = sorted(set(random_spells.loc[random_spells["institution"].astype(str) == "ALV", "case_id"])
                        - set(alv1["case_ids"].str.split(";").explode()))
    override_case = next(c for c in not_listed
                         if random_spells.loc[random_spells["case_id"] == c, "person_id"].nunique() == 1)
    day = "2023-06-27"
    decisions = {1: (day, "not_suitable", "kein Bedarf"), 2: (day, "joint_assessment_held", "Abklärung am 27.6."),
                 3: (day, "data_error", "Austritt fehlt"), 4: (day, "joint_assessment_proposed", "")}
    filled = fill(runs / NIGHTS[0] / "worklists" / f"ALV_{NIGHTS[0]}.xlsx", decisions, tmp_path / "ALV_filled.xlsx",
                  add=[(override_case, day, "joint_assessment_proposed", "von der RAV gemeldet")])
    res = import_reviews(cfg, [filled])
    assert (res.rows, res.added, res.overrides) == (5, 5, 1)
    stored = history.reviews()
    blob = history.reviews_path.read_bytes()
    # idempotent: the same file again stores nothing new and writes nothing
    again = import_reviews(cfg, [filled])
    assert (again.added, again.replaced, again.unchanged) == (0, 0, 5)
    assert history.reviews_path.read_bytes() == blob
    by_rank = {rank: alv1["person_id"].iloc[rank - 1] for rank in decisions}
    override_person = random_spells.loc[random_spells["case_id"] == override_case, "person_id"].iloc[0]
    assert set(stored["person_id"]) == {*by_rank.values(), override_person}
    assert stored.set_index("person_id").loc[override_person, "listed"] == False  # noqa: E712 - numpy bool
    assert stored.set_index("person_id").loc[by_rank[1], "band_at_review"] == alv1["risk_band"].iloc[0]

    # night 2: the decisions act
    r2 = run_nightly(cfg, as_of=NIGHTS[1], progress=False)
    interventions = all_interventions(s.resolved())
    assert interventions[["person_id", "type"]].values.tolist() == [[by_rank[2], "joint_assessment"]]
    alv2 = in_memory(r2, "ALV")
    everyone = pd.concat([in_memory(r2, i) for i in r2.worklists.lists])
    scores2 = r2.scores.set_index("person_id")
    band_rose = _band(scores2.loc[by_rank[1], "risk_band"]) > _band(alv1["risk_band"].iloc[0])
    assert (by_rank[1] in set(alv2["person_id"])) == band_rose  # not_suitable: kept off ALV's list
    assert by_rank[2] not in set(everyone["person_id"])  # an assessment held: off every list
    # left off by a review (an assessment a coordinator recorded), not by the interventions file
    assert r2.worklists.left_off_reviewed["ALV"] >= 1 + (not band_rose)
    assert r2.manifest["left_off_recent_assessment_persons"] == r1.manifest["left_off_recent_assessment_persons"]
    # the reference: tonight's ALV list is the ranking of everyone else who could be listed
    expected_off = {by_rank[2]} | (set() if band_rose else {by_rank[1]})
    oc = _open_at(random_spells, NIGHTS[1])
    pool = scores2.loc[scores2.index.isin(oc.loc[oc["institution"] == "ALV", "person_id"])
                       & ~scores2.index.isin(expected_off)]
    want = pool.sort_values(["risk", "rank"], ascending=[False, True]).index[: len(alv2)].tolist()
    assert alv2["person_id"].tolist() == want
    # every history column against the plain reference
    first = {p: NIGHTS[0] for p in alv1["person_id"]}
    risk1 = dict(zip(alv1["person_id"], alv1["risk"], strict=True))
    for _, row in alv2.iterrows():
        p = row["person_id"]
        assert row["first_listed"] == pd.Timestamp(first.get(p, NIGHTS[1]))
        assert row["times_listed"] == (2 if p in first else 1)
        assert row["days_on_list"] == (pd.Timestamp(NIGHTS[1]) - pd.Timestamp(first.get(p, NIGHTS[1]))).days
        if p in risk1:
            assert row["risk_change"] == pytest.approx(row["risk"] - risk1[p])
        else:
            assert np.isnan(row["risk_change"])
        decided = {by_rank[r]: d for r, d in decisions.items()} | {override_person: decisions[4]}
        if p in decided:
            assert row["last_decision"] == decided[p][1]
            assert row["last_decision_date"] == pd.Timestamp(decided[p][0])
        else:
            assert pd.isna(row["last_decision"])
    # the data error is shown for the data steward; the places used are said
    summary = (runs / NIGHTS[1] / "summary.md").read_text()
    steward = summary.split("## Von Koordinationsstellen gemeldete Datenfehler")[1].split("##")[0]
    assert "| ALV | Datenfehler | 1 |" in steward
    assert f"| {len(alv2)} von 8 |" in summary and "| Plätze belegt |" in summary
    assert r2.manifest["reviews_since_last_run"]["data_error"] == 1

    # night 3: a later import replaces the day's review (sent in the file of the list it answers: a review
    # dated before a list's as-of date is refused in that list's file); a proposal lifts nothing
    filled2 = fill(runs / NIGHTS[0] / "worklists" / f"ALV_{NIGHTS[0]}.xlsx", {4: (day, "other", "")},
                   tmp_path / "ALV_2.xlsx")
    res3 = import_reviews(cfg, [filled2])
    assert (res3.added, res3.replaced) == (0, 1)
    with pytest.raises(ValidationError, match="nothing is stored") as refused:
        import_reviews(cfg, [fill(runs / NIGHTS[1] / "worklists" / "ALV.xlsx", {1: (day, "other", "")},
                                  tmp_path / "ALV_3.xlsx")])
    # the report counts the filled-in row it read and refused (its headline said 0 rows read from 0 sources)
    assert refused.value.report.summary_line().startswith("1 rows read from 1 source(s)")
    assert "1 rows rejected" in refused.value.report.summary_line()
    r3 = run_nightly(cfg, as_of=NIGHTS[2], progress=False)
    alv3 = in_memory(r3, "ALV")
    assert (alv3.loc[alv3["person_id"].isin(alv2["person_id"]) & alv3["person_id"].isin(alv1["person_id"]),
                     "times_listed"] == 3).all()
    # the dated files of every night stay beside the latest ones
    for night in NIGHTS:
        assert (runs / night / "worklists" / f"ALV_{night}.csv").is_file()
    # the oversight figures of the three nights against the plain reference
    from iizrisk.oversight import oversight_of
    from test_oversight import reference

    ov = oversight_of(cfg).table
    lists, reviews = history.read("worklists"), history.reviews()
    want = reference([{**r, "institution": str(r["institution"]), "person_id": str(r["person_id"])}
                      for r in lists.to_dict("records")],
                     [{**r, "band_at_review": r["band_at_review"] if isinstance(r["band_at_review"], str) else None}
                      for r in reviews.to_dict("records")])
    assert sorted(zip(ov["institution"], ov["month"], strict=True)) == sorted(want)
    for row in ov.to_dict("records"):
        for col, value in want[(row["institution"], row["month"])].items():
            if col.startswith("decision:") and col not in row:
                assert value == 0
            elif value is None:
                assert np.isnan(row[col]), col
            else:
                assert row[col] == pytest.approx(value), (col, row)
    june = ov.set_index(["institution", "month"]).loc[("ALV", "2023-06")]
    assert (june["reviewed"], june["overrides"]) == (5, 1)


def _band(name: str) -> int:
    return {"low": 0, "medium": 1, "high": 2}[name]


def _open_at(spells: pd.DataFrame, as_of: str) -> pd.DataFrame:
    t = pd.Timestamp(as_of)
    m = (spells["start_date"] <= t) & (spells["end_date"].isna() | (spells["end_date"] > t))
    return spells.loc[m, ["person_id", "institution", "case_id"]].astype(str)


# ------------------------------------------------------------------ bad files: a clear error, nothing stored
@pytest.fixture(scope="module")
def night(tmp_path_factory, random_spells, trained):
    tmp = tmp_path_factory.mktemp("night")
    cfg = deployment(tmp, random_spells, trained)
    res = run_nightly(cfg, as_of=NIGHTS[2], progress=False)
    return tmp, cfg, res


def _xlsx(night):
    tmp, _, _ = night
    return tmp / "runs" / NIGHTS[2] / "worklists" / "ALV.xlsx"


def _bad_files(night, tmp_path):
    from openpyxl import load_workbook

    tmp, _, res = night
    sh_case = res.worklists["SH"]["case_ids"].iloc[0].split(";")[0]
    future = (dt.date.today() + dt.timedelta(days=5)).isoformat()
    ok = ("2023-07-01", "not_suitable", "")
    out = {
        "unknown case id": fill(_xlsx(night), {}, tmp_path / "a.xlsx", add=[("ALV-999999999", *ok)]),
        "another institution's case id": fill(_xlsx(night), {}, tmp_path / "b.xlsx", add=[(sh_case, *ok)]),
        "unknown decision": fill(_xlsx(night), {1: ("2023-07-01", "maybe_later", "")}, tmp_path / "c.xlsx"),
        "future date": fill(_xlsx(night), {1: (future, "not_suitable", "")}, tmp_path / "d.xlsx"),
        "AHV number in the note": fill(_xlsx(night), {1: ("2023-07-01", "other", "Rückruf AHV 756.1234.5678.97")},
                                       tmp_path / "e.xlsx"),
        "nobody decided": fill(_xlsx(night), {1: ok}, tmp_path / "h.xlsx", by=None),
        "AHV number as who decided": fill(_xlsx(night), {1: ok}, tmp_path / "i.xlsx", by="756 1234 5678 97"),
    }
    wrong = load_workbook(fill(_xlsx(night), {1: ok}, tmp_path / "f.xlsx"))
    wrong["ALV"].title = "Tabelle1"
    wrong.save(tmp_path / "f.xlsx")
    out["wrong sheet"] = tmp_path / "f.xlsx"
    (tmp_path / "g.xlsx").write_bytes(b"")
    out["empty file"] = tmp_path / "g.xlsx"
    return out, sh_case


WHAT = {"unknown case id": ("case_ids", "not a case of ALV"),
        "another institution's case id": ("case_ids", "not a case of ALV"),
        "unknown decision": ("decision", "not one of the decisions"),
        "future date": ("review_date", "after today"),
        "AHV number in the note": ("note", "AHV number"),
        "nobody decided": ("decided_by", "who decided is missing"),
        "AHV number as who decided": ("decided_by", "AHV number"),
        "wrong sheet": ("(sheet)", "no sheet named 'ALV'"),
        "empty file": ("(file)", "empty")}


@pytest.mark.slow
def test_bad_review_files_each_get_a_clear_error_and_nothing_is_stored(night, tmp_path):
    _, cfg, _ = night
    s = Settings.load(cfg)
    history = HistoryStore(s.resolve(s.output.history_dir))
    files, sh_case = _bad_files(night, tmp_path)
    for what, path in files.items():
        with pytest.raises(ValidationError) as err:
            import_reviews(cfg, [path])
        report = err.value.report.to_text()
        column, problem = WHAT[what]
        assert path.name in report and f"column {column!r}" in report and problem in report, (what, report)
        assert "Fix:" in report
        if what not in {"wrong sheet", "empty file"}:
            assert "rows 2" in report or "rows " in report, (what, report)
        assert not history.reviews_path.exists(), what
        assert "756.1234" not in report and sh_case not in report and "SH" not in report.split("Fix:")[0], what
    # the command line says the same and exits 1
    assert main(["reviews", "import", str(cfg), str(files["unknown decision"])]) == 1
    assert not history.reviews_path.exists()


@pytest.mark.slow
def test_xlsx_round_trip_and_csv_import(night, tmp_path, capsys):
    from openpyxl import load_workbook

    _, cfg, res = night
    xlsx = _xlsx(night)
    wb = load_workbook(xlsx)
    ws = wb["ALV"]
    assert ws.freeze_panes == "A2" and wb["iizrisk"].sheet_state == "hidden"
    assert ws.auto_filter.ref == ws.dimensions  # filter buttons on the header, over every row
    head = [c.value for c in ws[1]]
    dv = [d for d in ws.data_validations.dataValidation if d.type == "list"]
    assert len(dv) == 1 and header("decision", "de") in head
    labels = [c.value for c in wb["lists"]["A"]]
    assert labels == [decision_label(d, "de") for d in Settings.load(cfg).reviews.decisions]
    assert ws.column_dimensions["A"].width >= 8
    listed = ws.cell(row=2, column=head.index(header("first_listed", "de")) + 1)  # a date cell, sorts as one
    assert listed.is_date and listed.value.date() == res.worklists["ALV"]["first_listed"].iloc[0].date()
    assert listed.number_format.lower() == "yyyy-mm-dd"
    filled = fill(xlsx, {2: ("2023-07-01", "already_in_iiz", "läuft bei der IV")}, tmp_path / "back.xlsx")
    assert main(["reviews", "import", str(cfg), str(filled)]) == 0
    assert "1 new" in capsys.readouterr().out
    s = Settings.load(cfg)
    stored = HistoryStore(s.resolve(s.output.history_dir)).reviews()
    row = stored.iloc[0]
    alv = res.worklists["ALV"]
    assert (row["institution"], row["person_id"], row["decision"], row["note"], bool(row["listed"])) == \
        ("ALV", alv["person_id"].iloc[1], "already_in_iiz", "läuft bei der IV", True)
    assert row["decided_by"] == "IIZ-Koordination"  # a human decides, and the record says who (by role)
    assert row["review_date"] == pd.Timestamp("2023-07-01") and row["list_as_of"] == pd.Timestamp(NIGHTS[2])
    # the CSV of the same list works too (codes or French names of the decisions, dd.mm.yyyy dates)
    sh = tmp_path / "SH.csv"
    table = read_table(Path(str(xlsx).replace("ALV.xlsx", "SH.csv")), dtype=str, keep_default_na=False)
    table.loc[0, ["review_date", "decision", "decided_by"]] = ["02.07.2023", decision_label("not_suitable", "fr"),
                                                               "Fallführung SH"]
    table.to_csv(sh, sep=";", index=False, encoding="utf-8-sig")
    try:
        r = import_reviews(cfg, [sh])
    except ValidationError as exc:
        raise AssertionError(exc.report.to_text()) from exc
    assert (r.added, r.per_institution) == (1, {"SH": 1})


def _store_bytes(cfg) -> bytes | None:
    s = Settings.load(cfg)
    path = HistoryStore(s.resolve(s.output.history_dir)).reviews_path
    return path.read_bytes() if path.exists() else None


def _set_cells(xlsx: Path, out: Path, cells: list[tuple[int, str, object]], language: str = "de") -> Path:
    """Write raw values into a review file: (spreadsheet row, column code, value)."""
    from openpyxl import load_workbook

    wb = load_workbook(xlsx)
    ws = next(wb[s] for s in wb.sheetnames if wb[s].sheet_state == "visible")
    head = [c.value for c in ws[1]]
    for row, code, value in cells:
        ws.cell(row=row, column=head.index(header(code, language)) + 1, value=value)
    wb.save(out)
    return out


# a review date must be a calendar day from the as-of date of the list it answers (NIGHTS[2]) to today
BAD_DATES = {"0000-01-01": "not a date", "0001-01-01": f"before the as-of date of the list it answers ({NIGHTS[2]})",
             "today": "not a date", "now": "not a date", "Today": "not a date", "2023-06-30xyz": "not a date",
             "2099-01-01": "after today", "01.01.2099": "after today", dt.date(2099, 1, 1): "after today",
             "2023-06-29": f"before the as-of date of the list it answers ({NIGHTS[2]})",
             dt.date(1950, 6, 1): f"before the as-of date of the list it answers ({NIGHTS[2]})",
             "30.02.2024": "not a date", "756.1234.5678.97": "not a date"}


@pytest.mark.slow
def test_review_dates_outside_the_list_and_today_are_refused(night, tmp_path):
    _, cfg, _ = night
    before = _store_bytes(cfg)
    for i, (value, problem) in enumerate(BAD_DATES.items()):
        path = _set_cells(_xlsx(night), tmp_path / f"d{i}.xlsx",
                          [(2, "review_date", value), (2, "decision", decision_label("not_suitable", "de"))])
        with pytest.raises(ValidationError) as err:
            import_reviews(cfg, [path])
        report = err.value.report.to_text()
        assert f"{path.name}: column 'review_date': {problem}" in report and "rows 2" in report, (value, report)
        assert "Fix: enter the day" in report and "756.1234" not in report, (value, report)
        assert _store_bytes(cfg) == before, value
    # the command line refuses a word for a date with exit 1 (invalid input)
    assert main(["reviews", "import", str(cfg), str(tmp_path / "d2.xlsx")]) == 1
    # a row the coordinator added to the CSV, without the list's as-of date: it answers the list of its file
    # (the other rows' as-of date), as in the xlsx; it was let through down to 1900-01-01
    xlsx = _xlsx(night)
    table = read_table(Path(str(xlsx).replace("ALV.xlsx", "ALV.csv")), dtype=str, keep_default_na=False)
    for i, day in enumerate(("1899-12-31", "2023-06-29")):
        added = pd.concat([table, table.iloc[[0]].assign(as_of="", review_date=day, decision="other")],
                          ignore_index=True)
        csv_path = tmp_path / f"ALV_{i}.csv"
        added.to_csv(csv_path, sep=";", index=False, encoding="utf-8-sig")
        with pytest.raises(ValidationError) as err:
            import_reviews(cfg, [csv_path])
        assert (f"ALV_{i}.csv: column 'review_date': before the as-of date of the list it answers ({NIGHTS[2]}): "
                f"1 rows, rows {len(added) + 1}") in err.value.report.to_text()
        assert _store_bytes(cfg) == before


@pytest.mark.slow
def test_a_review_before_the_first_list_answers_no_list_and_is_refused(night, tmp_path):
    """A CSV without the lists' as-of dates took any review date from 1900-01-01 on: a joint assessment
    "held" in 2000 (a mistyped year) became an intervention of 2000 for the features and the study."""
    _, cfg, res = night
    before = _store_bytes(cfg)
    cases = res.worklists["ALV"]["case_ids"].str.split(";").str[0]
    table = pd.DataFrame({"institution": "ALV", "case_ids": cases.iloc[:2].to_numpy(),
                          "review_date": ["01.01.2000", "2023-06-29"], "decision": "joint_assessment_held",
                          "decided_by": "IIZ ALV", "note": ""})
    path = tmp_path / "ALV_without_as_of.csv"
    table.to_csv(path, sep=";", index=False, encoding="utf-8-sig")
    with pytest.raises(ValidationError) as err:
        import_reviews(cfg, [path])
    assert (f"ALV_without_as_of.csv: column 'review_date': before the first list of this deployment ({NIGHTS[2]}): "
            "a review answers a list of a nightly run: 2 rows, rows 2, 3") in err.value.report.to_text()
    assert _store_bytes(cfg) == before
    ok = table.assign(review_date=NIGHTS[2])
    ok.to_csv(path, sep=";", index=False, encoding="utf-8-sig")
    assert import_reviews(cfg, [path]).added == 2
    s = Settings.load(cfg)
    store = HistoryStore(s.resolve(s.output.history_dir)).reviews_path
    if before is None:  # the module's store as it was, for the tests after this one
        store.unlink()
    else:
        store.write_bytes(before)


@pytest.mark.slow
def test_contradicting_rows_for_one_case_are_refused(night, tmp_path):
    _, cfg, res = night
    case = res.worklists["ALV"]["case_ids"].iloc[0]
    before = _store_bytes(cfg)
    day = ("2023-07-01", "not_suitable", "")

    def refused(paths, *expected):
        with pytest.raises(ValidationError) as err:
            import_reviews(cfg, paths)
        report = err.value.report.to_text()
        for text_ in expected:
            assert text_ in report, (text_, report)
        assert case not in report and "Fix: keep one" in report
        assert _store_bytes(cfg) == before
        return report

    # the same case twice in one file with different decisions, on one day or on two: both rows named
    for i, other in enumerate([("2023-07-01", "joint_assessment_held", ""), ("2023-07-02", "other", "")]):
        path = fill(_xlsx(night), {1: day}, tmp_path / f"two{i}.xlsx", add=[(case, *other)])
        last = pd.read_excel(path, sheet_name="ALV").shape[0] + 1
        refused([path], f"{path.name}: column 'decision': one case on several rows with different decisions: "
                f"2 rows, rows 2, {last}. Fix: keep one decision per case")
    # one day, one decision, two notes: only one could be stored
    path = fill(_xlsx(night), {1: day}, tmp_path / "notes.xlsx", add=[(case, "2023-07-01", "not_suitable", "x")])
    refused([path], f"{path.name}: column 'note': one case reviewed on one day with different notes")
    # two files of one import, the same case and day, different decisions: each file named
    a = fill(_xlsx(night), {1: day}, tmp_path / "a.xlsx")
    b = fill(_xlsx(night), {1: ("2023-07-01", "other", "")}, tmp_path / "b.xlsx")
    report = refused([a, b], "a.xlsx: column 'decision': one case reviewed on one day with different decisions "
                     "(a.xlsx row 2; b.xlsx row 2)", "b.xlsx: column 'decision'")
    assert "Fix: keep one review per case and day" in report


def test_identical_rows_for_one_case_are_stored_once(tmp_path, random_spells, trained):
    cfg = deployment(tmp_path, random_spells, trained)
    res = run_nightly(cfg, as_of=NIGHTS[2], progress=False)
    case = res.worklists["ALV"]["case_ids"].iloc[0]
    xlsx = tmp_path / "runs" / NIGHTS[2] / "worklists" / "ALV.xlsx"
    # the list's as-of date itself is a valid review day
    path = fill(xlsx, {1: (NIGHTS[2], "not_suitable", "Rückruf")}, tmp_path / "twice.xlsx",
                add=[(case, dt.date.fromisoformat(NIGHTS[2]), "not_suitable", "Rückruf")])
    got = import_reviews(cfg, [path])
    assert (got.rows, got.added, got.merged) == (1, 1, 1)
    assert "1 identical repeated row(s) merged" in got.summary_text()
    s = Settings.load(cfg)
    stored = HistoryStore(s.resolve(s.output.history_dir)).reviews()
    assert len(stored) == 1 and stored["decision"].tolist() == ["not_suitable"]


def test_published_csv_opens_as_columns_without_formulas(night):
    tmp, _, _ = night
    for p in sorted((tmp / "runs" / NIGHTS[2] / "worklists").glob("*.csv")):
        text = p.read_bytes().decode("utf-8")
        assert text.startswith("\ufeff")
        rows = list(csv.reader(text[1:].splitlines(), delimiter=";"))
        assert len(rows) >= 2 and all(len(r) == len(rows[0]) for r in rows), p
        assert not any(cell[:1] in {"=", "+", "-", "@"} for r in rows for cell in r), p


def test_the_decision_list_is_configurable(tmp_path, random_spells, trained):
    cfg = deployment(tmp_path, random_spells, trained,
                     reviews={"decisions": ["proposed", "not_now"], "keep_off_days": {"not_now": 30},
                              "interventions": {}, "summary_decisions": []})
    run_nightly(cfg, as_of=NIGHTS[2], progress=False)
    from openpyxl import load_workbook

    wb = load_workbook(tmp_path / "runs" / NIGHTS[2] / "worklists" / "ALV.xlsx")
    assert [c.value for c in wb["lists"]["A"]] == ["proposed", "not_now"]  # own decisions keep their codes
    ok = fill(tmp_path / "runs" / NIGHTS[2] / "worklists" / "ALV.xlsx", {1: ("2023-07-01", "not_now", "")},
              tmp_path / "ok.xlsx")
    assert import_reviews(cfg, [ok]).added == 1
    bad = fill(tmp_path / "runs" / NIGHTS[2] / "worklists" / "ALV.xlsx", {1: ("2023-07-01", "not_suitable", "")},
               tmp_path / "bad.xlsx")
    with pytest.raises(ValidationError, match="problem"):
        import_reviews(cfg, [bad])
    with pytest.raises(ConfigError, match="not in \\[reviews\\] decisions"):
        Settings.from_dict({"reviews": {"decisions": ["a"], "keep_off_days": {"b": 3}}})


# ------------------------------------------------------------------ the rules, against plain references
def _keep_off_reference(reviews, bands_now, as_of, days):
    t = pd.Timestamp(as_of)
    last = {}
    for r in sorted(reviews, key=lambda r: (r["review_date"], r["decision"])):
        if r["review_date"] <= t:
            last[(r["institution"], r["person_id"])] = r
    out = set()
    order = {"low": 0, "medium": 1, "high": 2}
    for key, r in last.items():
        n = days.get(r["decision"])
        if n is None or (t - r["review_date"]).days >= n:
            continue
        now = order.get(bands_now.get(r["person_id"], "low"), 3)
        then = order.get(r["band_at_review"] if r["band_at_review"] is not None else "high", 3)
        if now <= then:
            out.add(key)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({
    "institution": st.sampled_from(["ALV", "SH"]), "person_id": st.sampled_from(["p1", "p2", "p3"]),
    "review_date": st.integers(0, 40).map(lambda d: pd.Timestamp("2024-01-01") + pd.Timedelta(days=d)),
    "decision": st.sampled_from(["not_suitable", "already_in_iiz", "other", "joint_assessment_held"]),
    "band_at_review": st.sampled_from(["low", "medium", "high", None])}), max_size=12),
    st.dictionaries(st.sampled_from(["p1", "p2", "p3"]), st.sampled_from(["low", "medium", "high"])))
def test_keep_off_equals_reference(rows, bands_now):
    reviews = pd.DataFrame(rows, columns=["institution", "person_id", "review_date", "decision", "band_at_review"])
    reviews = reviews.drop_duplicates(["institution", "person_id", "review_date"], keep="last")
    scores = pd.DataFrame({"person_id": list(bands_now), "risk_band": list(bands_now.values())})
    days = {"not_suitable": 20, "already_in_iiz": 10}
    got = keep_off(reviews, scores, "2024-01-30", days)
    want = _keep_off_reference(reviews.to_dict("records"), bands_now, "2024-01-30", days)
    assert set(map(tuple, got[["institution", "person_id"]].values.tolist())) == want


def test_interventions_from_reviews():
    reviews = pd.DataFrame({"institution": ["ALV", "SH", "ALV"], "person_id": ["p1", "p2", "p3"],
                            "review_date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-02-01"]),
                            "decision": ["joint_assessment_held", "not_suitable", "joint_assessment_held"]})
    got = interventions_from_reviews(reviews, {"joint_assessment_held": "joint_assessment"}, until="2024-01-31")
    assert got.to_dict("list") == {"person_id": ["p1"], "date": [pd.Timestamp("2024-01-02")],
                                   "type": ["joint_assessment"], "institutions": ["ALV"]}


def test_the_manifest_counts_reviews_only_in_codes(night):
    tmp, _, _ = night
    m = json.loads((tmp / "runs" / NIGHTS[2] / "manifest.json").read_text())
    assert m["reviews_since_last_run"] == {}
    assert {"left_off_reviewed", "below_min_band", "places"} <= set(m["worklists"]["ALV"])


def test_another_table_in_place_of_the_reviews_is_invalid_input_naming_it(tmp_path):
    """oversight crashed with KeyError('review_date') (exit 5) on a store whose reviews file was replaced."""
    from iizrisk.errors import ValidationError
    from iizrisk.history import HistoryStore
    from iizrisk.store import write_parquet_atomic

    store = HistoryStore(tmp_path / "history")
    write_parquet_atomic(pd.DataFrame({"person_id": ["a" * 64], "risk": [0.3]}), store.reviews_path)
    with pytest.raises(ValidationError, match="not the reviews table"):
        store.reviews()


# ---------------------------------------------------------------- files that are not review files (D7, D8)
def _review_workbook(path: Path) -> Path:
    from openpyxl import Workbook

    from iizrisk.reviews import META_SHEET

    wb = Workbook()
    wb.active.title = "ALV"
    wb["ALV"].append(["case_ids", "review_date", "decision", "note"])
    wb["ALV"].append(["ALV-1", "2023-07-01", "other", ""])
    meta = wb.create_sheet(META_SHEET)
    meta.append(["institution", "ALV"])
    wb.save(path)
    return path


def test_a_review_file_without_who_decided_is_refused_and_old_reviews_read_without_it(night, tmp_path):
    """A human decides, and the record says who (by role): a file of the version before the column is refused
    with the fix; the reviews stored before it read back with who decided unknown, not as an error."""
    _, cfg, res = night
    before = _store_bytes(cfg)
    cases = res.worklists["ALV"]["case_ids"].str.split(";").str[0]
    old = pd.DataFrame({"institution": "ALV", "as_of": NIGHTS[2], "case_ids": cases.iloc[:1].to_numpy(),
                        "review_date": "2023-07-01", "decision": "not_suitable", "note": ""})
    path = tmp_path / "ALV_old_version.csv"
    old.to_csv(path, sep=";", index=False, encoding="utf-8-sig")
    with pytest.raises(ValidationError) as err:
        import_reviews(cfg, [path])
    assert ("ALV_old_version.csv: column 'decided_by': column missing: the file does not say who decided: 1 rows, "
            "whole file. Fix: add a column 'Entschieden von (Rolle oder Kürzel)'") in err.value.report.to_text()
    assert _store_bytes(cfg) == before
    s = Settings.load(cfg)
    store = HistoryStore(s.resolve(s.output.history_dir))
    stored = pd.DataFrame({"institution": ["ALV"], "person_id": ["p"], "case_id": ["c"],
                           "review_date": pd.to_datetime(["2023-07-01"]).astype("datetime64[s]"),
                           "decision": ["other"], "note": [""], "listed": [True],
                           "list_as_of": pd.to_datetime([NIGHTS[2]]).astype("datetime64[s]"),
                           "band_at_review": ["high"]})
    from iizrisk.store import write_parquet_atomic

    elsewhere = HistoryStore(tmp_path / "history_of_an_older_version")
    write_parquet_atomic(stored, elsewhere.reviews_path)
    back = elsewhere.reviews()
    assert list(back.columns) == list(REVIEW_COLUMNS) and back["decided_by"].isna().all()
    assert store.reviews_path != elsewhere.reviews_path


def test_a_damaged_workbook_is_named_with_the_fix(tmp_path):
    """A zip whose sheet XML is damaged (an Excel crash, a bad transfer) is a user's file: no internal error."""
    import zipfile

    from iizrisk.reviews import read_review_file

    good = _review_workbook(tmp_path / "good.xlsx")
    bad = tmp_path / "ALV_damaged.xlsx"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet1"):
                data = data[: len(data) // 2] + b"\xff<<not xml" + data[len(data) // 2:]
            zout.writestr(item, data)
    report = ValidationReport()
    read_review_file(bad, report)
    (p,) = report.problems
    assert p.source == "ALV_damaged.xlsx" and "damaged" in p.problem and "save it again" in p.fix
    ok = ValidationReport()
    read_review_file(good, ok)
    assert not [q for q in ok.problems if q.column in {"(file)", "(sheet)"}]


def test_a_missing_file_or_a_folder_is_not_called_empty(tmp_path):
    from iizrisk.reviews import read_review_file

    for path, says in ((tmp_path / "nope.xlsx", "does not exist"), (tmp_path, "a folder")):
        report = ValidationReport()
        read_review_file(path, report)
        (p,) = report.problems
        assert says in p.problem and "empty" not in p.problem and p.source == path.name


@pytest.mark.slow
def test_an_ahv_number_in_a_note_is_refused_whatever_its_separators(night, tmp_path):
    """Underscores, commas, colons, middle dots, spaced dots between the groups (D26): refused, not echoed."""
    spellings = ["756_6604_8764_70", "756,6604,8764,70", "756:6604:8764:70", "756·6604·8764·70",
                 "756 . 6604 . 8764 . 70",
                 # other groupings and a mistyped check digit were stored, and shown in the case view and the
                 # person's information document
                 "756 66048 76470", "756.66.04.87.64.70", "756.6604.8764.7 0", "756.6604.8764.71",
                 "7 5 6 6 6 0 4 8 7 6 4 7 0"]
    _, cfg, _ = night
    before = _store_bytes(cfg)
    for i, number in enumerate(spellings):
        path = fill(_xlsx(night), {1: ("2023-07-01", "other", f"Rückruf AHV {number}")}, tmp_path / f"n{i}.xlsx")
        with pytest.raises(ValidationError) as err:
            import_reviews(cfg, [path])
        report = err.value.report.to_text()
        assert "AHV number" in report and "6604" not in report, (number, report)
    assert _store_bytes(cfg) == before


@pytest.mark.slow
def test_a_history_store_without_a_run_refuses_the_import(night, tmp_path, capsys):
    """A wrong [output] history_dir stored every review of the list as an override, in a new store no
    nightly run reads, and said so with exit 0."""
    import re

    tmp, cfg, _ = night
    wrong = tmp / "history_elsewhere"
    other = tmp / "wrong.toml"
    other.write_text(re.sub(r"(?m)^history_dir = .*$", f"history_dir = {str(wrong)!r}", Path(cfg).read_text()))
    assert Settings.load(other).resolve(Settings.load(other).output.history_dir) == wrong
    filled = fill(_xlsx(night), {1: (NIGHTS[2], "not_suitable", "")}, tmp_path / "ALV.xlsx")
    assert main(["reviews", "import", str(other), str(filled)]) == 1
    err = capsys.readouterr().err
    assert "holds no nightly run" in err and "history_dir" in err
    assert not wrong.exists()


# ---------------------------------------------------------------- case numbers to people (vectorised)
def _rows(case_ids: list[str], inst: str = "ALV") -> pd.DataFrame:
    return pd.DataFrame({"institution": inst, "case_ids": case_ids, "_file": "ALV.csv",
                         "_row": np.arange(2, len(case_ids) + 2)})


def test_a_case_number_of_several_people_is_a_data_error_not_an_unknown_case():
    """A case number the export gives two people was called "not a case of ALV", with a fix the coordinator
    cannot follow (the number on the list is right; the export is wrong)."""
    from iizrisk.reviews import _map_cases

    cases = pd.DataFrame({"institution": ["ALV", "ALV", "ALV", "SH"], "case_id": ["A-1", "A-1", "A-2", "S-1"],
                          "person_id": ["p1", "p2", "p3", "p4"]})
    report = ValidationReport()
    got = _map_cases(_rows(["A-1", "A-2", "S-1", "A-2;A-1"]), cases, report)
    assert [None if pd.isna(p) else p for p in got["person_id"]] == [None, "p3", None, None]
    by_problem = {p.problem: p.rows for p in report.problems}
    assert by_problem == {"not a case of ALV": (4,),
                          "the case number belongs to several people in the exports (a data error)": (2, 5)}
    assert "data steward" in report.to_text() and "A-1" not in report.to_text()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ALV", "SH"]), st.sampled_from(["c1", "c2", "c3"]),
                          st.sampled_from(["p1", "p2", "p3"])), max_size=8),
       st.lists(st.sampled_from(["c1", "c2", "c3", "c4", "c1;c2", "c2; c3", "c1;c1"]), min_size=1, max_size=6))
def test_case_numbers_map_to_people_as_a_plain_reference_says(case_rows, case_ids):
    from iizrisk.reviews import _map_cases

    cases = pd.DataFrame(case_rows, columns=["institution", "case_id", "person_id"]).drop_duplicates()
    got = [None if pd.isna(p) else p for p in _map_cases(_rows(case_ids), cases, ValidationReport())["person_id"]]
    want = []
    for ids in case_ids:
        people = [{p for i, c, p in case_rows if i == "ALV" and c == x.strip()} for x in ids.split(";")]
        one = all(len(p) == 1 for p in people) and len(set().union(*people)) == 1
        want.append(next(iter(people[0])) if one else None)
    assert got == want


def test_a_review_csv_saved_by_excel_in_windows_1252_is_read(night, tmp_path):
    """Excel's "CSV (Trennzeichen-getrennt)" on a Swiss Windows saves Windows-1252: the file was refused
    as "not a UTF-8 table", and the coordinator had no way to send it back from Excel but the xlsx."""
    tmp, cfg, res = night
    table = read_table(tmp / "runs" / NIGHTS[2] / "worklists" / "SH.csv", dtype=str, keep_default_na=False)
    table.loc[0, ["review_date", "decision", "decided_by", "note"]] = [
        "03.07.2023", decision_label("consent_declined", "fr"), "Fallführung SH", "läuft bei der IV, Rückruf"]
    path = tmp_path / "SH_excel.csv"
    table.to_csv(path, sep=";", index=False, encoding="cp1252")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # the test writes what Excel writes
    r = import_reviews(cfg, [path])
    assert r.per_institution == {"SH": 1}
    s = Settings.load(cfg)
    stored = HistoryStore(s.resolve(s.output.history_dir)).reviews()
    row = stored[stored["review_date"] == pd.Timestamp("2023-07-03")].iloc[0]
    assert (row["decision"], row["decided_by"], row["note"]) == \
        ("consent_declined", "Fallführung SH", "läuft bei der IV, Rückruf")


def test_a_file_too_large_for_a_review_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """Review files had no size limit: a zip bomb named .xlsx (a few KB that unpack to gigabytes) would fill
    the memory of the machine the nightly run shares."""
    import zipfile

    import iizrisk.reviews as rv
    from iizrisk.reviews import read_review_file

    bomb = tmp_path / "ALV_bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"0" * (3 * 2**20))  # 3 MB of zeros: a few KB packed
    monkeypatch.setattr(rv, "MAX_REVIEW_XLSX_UNPACKED_BYTES", 2**20)
    report = ValidationReport()
    read_review_file(bomb, report)
    assert bomb.stat().st_size < 2**20
    assert "ALV_bomb.xlsx: column '(file)': unpacks to 3 MB, more than a review file holds (at most 1 MB)" \
        in report.to_text()
    big = tmp_path / "ALV_big.csv"
    big.write_bytes(b"x" * (2 * 2**20 + 1))
    monkeypatch.setattr(rv, "MAX_REVIEW_FILE_BYTES", 2 * 2**20)
    report = ValidationReport()
    read_review_file(big, report)
    assert "ALV_big.csv: column '(file)': 2 MB, more than a review file holds (at most 2 MB)" in report.to_text()
    ok = _review_workbook(tmp_path / "ALV_ok.xlsx")  # a review file of normal size passes the check
    report = ValidationReport()
    read_review_file(ok, report)
    assert "more than a review file holds" not in report.to_text()


def test_a_review_of_a_list_dated_after_today_names_the_as_of_date(night, tmp_path):
    """A row whose list as-of date was typed over (2099) was told its review lay "before the as-of date of the
    list it answers (2099-...)" and to enter a date "from 2099-... to today": a fix nobody can follow."""
    tmp, cfg, res = night
    table = read_table(tmp / "runs" / NIGHTS[2] / "worklists" / "SH.csv", dtype=str, keep_default_na=False)
    table.loc[0, ["as_of", "review_date", "decision", "decided_by"]] = [
        "2099-01-01", "03.07.2023", decision_label("not_suitable", "de"), "IIZ SH"]
    path = tmp_path / "SH_future.csv"
    table.to_csv(path, sep=";", index=False, encoding="utf-8-sig")
    before = _store_bytes(cfg)
    with pytest.raises(ValidationError) as err:
        import_reviews(cfg, [path])
    got = err.value.report.to_text()
    assert ("SH_future.csv: column 'as_of': the as-of date of the list lies after today "
            f"({dt.date.today().isoformat()}): no nightly run wrote it: 1 rows, rows 2 (e.g. '2099-01-01')") in got
    assert "column 'review_date'" not in got and _store_bytes(cfg) == before
