"""Corrections of contested rows: applied at ingestion with their trail, reaching the next run, conflicts reported."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import test_batch
from iizrisk.batch import run_nightly
from iizrisk.corrections import CORRECTION_COLUMNS, apply_corrections, check_corrections
from iizrisk.errors import ConfigError, RawIdentifierError, ValidationError
from iizrisk.features import PointInTimeFeatures
from iizrisk.io import ingest
from iizrisk.model import load_model, score
from iizrisk.store import write_csv_atomic, write_parquet_atomic

trained = test_batch.trained  # the module's trained model, shared with test_batch
AS_OF = test_batch.AS_OF


def _contested(spells: pd.DataFrame, model) -> tuple[str, int]:
    """The row contested: a closed ALV spell ending 3 to 18 months before AS_OF, of a person scored then, whose
    end 60 days earlier changes the calibrated risk (a flat step of the calibration would hide the change)."""
    t = pd.Timestamp(AS_OF)
    open_now = spells[(spells["start_date"] <= t) & (spells["end_date"].isna() | (spells["end_date"] > t))]
    closed = spells[(spells["institution"] == "ALV") & spells["end_date"].between(t - pd.DateOffset(months=18),
                                                                                   t - pd.DateOffset(months=3))
                    & ((spells["end_date"] - spells["start_date"]).dt.days > 120)
                    & spells["person_id"].isin(open_now["person_id"])]
    per_key = spells.groupby(["person_id", "institution", "case_id"]).size()
    for i in closed.index:
        r = spells.loc[i]
        if per_key[(r["person_id"], r["institution"], r["case_id"])] != 1:
            continue
        mine = spells[spells["person_id"] == r["person_id"]]
        moved = mine.copy()
        moved.loc[i, "end_date"] = r["end_date"] - pd.Timedelta(days=60)
        if score(model, mine, as_of=AS_OF)["risk"].iloc[0] != score(model, moved, as_of=AS_OF)["risk"].iloc[0]:
            return str(r["person_id"]), int(i)
    raise AssertionError("no suitable row in the random spells")


def _table(rows: list[dict]) -> pd.DataFrame:
    base = {"reason": "Ende verspätet gemeldet", "date": "2023-06-01", "by_role": "Datenverantwortliche ALV"}
    return pd.DataFrame([{**base, **r} for r in rows], columns=list(CORRECTION_COLUMNS))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, random_spells, trained):
    tmp = tmp_path_factory.mktemp("corrections")
    spells = random_spells.copy()
    person, i = _contested(spells, load_model(trained, key=test_batch.KEY))
    row = spells.loc[i]
    old_end = row["end_date"]
    new_end = old_end - pd.Timedelta(days=60)
    other = spells[(spells["person_id"] != person) & spells["exit_reason"].notna()].iloc[0]
    table = _table([
        {"person_id": person, "institution": "ALV", "case_id": row["case_id"], "field": "end_date",
         "old_value": old_end.date().isoformat(), "new_value": new_end.date().isoformat()},
        # the export already holds the corrected value
        {"person_id": other["person_id"], "institution": other["institution"], "case_id": other["case_id"],
         "field": "exit_reason", "old_value": "unknown" if other["exit_reason"] != "unknown" else "other",
         "new_value": other["exit_reason"]},
        {"person_id": person, "institution": "ALV", "case_id": "ALV-NOT-EXPORTED", "field": "exit_reason",
         "old_value": "other", "new_value": "employment"},
    ])
    write_csv_atomic(table, tmp / "corrections.csv")
    cfg = test_batch.deployment(tmp, spells, trained, deployment={"corrections": "corrections.csv"})
    return tmp, cfg, spells, person, i, new_end


def test_round_trip_contest_apply_rescore_conflict(scenario, trained, capsys):
    tmp, cfg, spells, person, i, new_end = scenario
    # apply: the ingestion corrects the row and counts every correction by status
    ing = ingest(cfg)
    assert ing.correction_counts == {"applied": 1, "in_export": 1, "conflict": 0, "unmatched": 1, "ambiguous": 0}
    assert ing.corrections["status"].tolist() == ["applied", "in_export", "unmatched"]
    unmatched = [p for p in ing.report.warnings if p.problem == "correction matches no exported row"]
    assert len(unmatched) == 1 and unmatched[0].rows == (3,)
    # the next run's features and score change as a direct computation says (the row edited by hand)
    direct = spells.copy()
    direct.loc[i, "end_date"] = new_end
    ft = PointInTimeFeatures().fit(None)
    mine = ing.spells[ing.spells["person_id"].astype(str) == person]
    got = ft.transform(mine, as_of=AS_OF)
    want = ft.transform(direct[direct["person_id"] == person], as_of=AS_OF)
    before = ft.transform(spells[spells["person_id"] == person], as_of=AS_OF)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    changed = [c for c in got.columns if got[c].iloc[0] != before[c].iloc[0]]
    assert changed, "the correction reached no feature"
    res = run_nightly(cfg, as_of=AS_OF, progress=False)
    model = load_model(trained, key=test_batch.KEY)
    risk_direct = score(model, direct[direct["person_id"] == person], as_of=AS_OF)["risk"].iloc[0]
    risk_before = score(model, spells[spells["person_id"] == person], as_of=AS_OF)["risk"].iloc[0]
    risk_run = res.scores.set_index(res.scores["person_id"].astype(str)).loc[person, "risk"]
    assert risk_run == pytest.approx(risk_direct, abs=1e-12) and risk_run != pytest.approx(risk_before, abs=1e-9)
    # the manifest counts them, and `iizrisk validate` shows them to the data steward
    assert res.manifest["corrections"] == {"applied": 1, "in_export": 1, "conflict": 0, "unmatched": 1,
                                           "ambiguous": 0}
    # a later export that changes the contested row again: reported to the data steward, never overwritten silently
    later = spells.copy()
    later.loc[i, "end_date"] = new_end - pd.Timedelta(days=7)
    write_parquet_atomic(later, tmp / "exports" / "spells.parquet")
    ing2 = ingest(cfg)
    assert ing2.correction_counts["conflict"] == 1 and ing2.corrections["status"].iloc[0] == "conflict"
    assert ing2.corrections["export_value"].iloc[0] == (new_end - pd.Timedelta(days=7)).date().isoformat()
    conflict = [p for p in ing2.report.warnings if "conflicts with a later export" in p.problem]
    assert len(conflict) == 1 and conflict[0].rows == (1,) and conflict[0].severity == "warning"
    kept = ing2.spells[(ing2.spells["person_id"].astype(str) == person)
                       & (ing2.spells["case_id"].astype(str) == spells.loc[i, "case_id"])]
    assert kept["end_date"].tolist() == [new_end]
    from iizrisk.cli import main

    main(["validate", str(cfg), "--as-of", AS_OF])
    shown = capsys.readouterr().out
    assert "conflicts with a later export" in shown and "1 conflict" in shown
    write_parquet_atomic(spells, tmp / "exports" / "spells.parquet")


def test_the_information_document_shows_the_persons_corrections(scenario):
    from iizrisk.config import Settings
    from iizrisk.information import information_request

    tmp, cfg, spells, person, i, new_end = scenario
    s = Settings.load(cfg)
    s.deployment.contact = "IIZ-Fachstelle"
    doc = information_request(s, person=person, institution="ALV", language="en")
    assert len(doc.corrections) == 2  # the applied one and the unmatched one; not the other person's
    assert set(doc.corrections["new_value"]) == {new_end.date().isoformat(), "employment"}
    assert "Ende verspätet gemeldet" in doc.to_html()


def test_apply_matches_a_per_row_reference_on_random_tables():
    rng = np.random.default_rng(3)
    spells = pd.DataFrame({"person_id": [f"p{k % 7}" for k in range(40)], "institution": "ALV",
                           "case_id": [f"A-{k % 13}" for k in range(40)],
                           "exit_reason": rng.choice(["employment", "transfer", "other"], 40)})
    rows = []
    for _ in range(30):
        k = int(rng.integers(40))
        rows.append({"person_id": f"p{k % 7}", "institution": "ALV", "case_id": f"A-{int(rng.integers(15))}",
                     "field": "exit_reason", "old_value": str(rng.choice(["employment", "transfer", "other"])),
                     "new_value": "benefit_exhausted"})
    table = check_corrections(_table(rows), pseudonym_pattern=None)
    fixed, trail = apply_corrections(spells, table)
    ref = spells.copy()
    for r, st in zip(table.itertuples(), trail["status"], strict=True):
        hit = ref.index[(ref["person_id"] == r.person_id) & (ref["case_id"] == r.case_id)]
        contested = [j for j in hit if ref.loc[j, "exit_reason"] == r.old_value]
        if not len(hit):
            assert st == "unmatched"
        elif len(contested) == 1:
            assert st == "applied"
            ref.loc[contested[0], "exit_reason"] = r.new_value
        elif len(hit) == 1 and ref.loc[hit[0], "exit_reason"] != r.new_value:
            assert st == "conflict"
            ref.loc[hit[0], "exit_reason"] = r.new_value
        elif (ref.loc[hit, "exit_reason"] == r.new_value).any():
            assert st == "in_export"
        else:
            assert st == "ambiguous"
    assert fixed["exit_reason"].tolist() == ref["exit_reason"].tolist()


@pytest.mark.parametrize("change, message", [
    ({"field": "person_id"}, "not a correctable column"),
    ({"new_value": "retired"}, "value the data contract refuses for its field"),
    ({"date": "01.06.2023"}, "not a date YYYY-MM-DD"),
    ({"reason": ""}, "empty"),
    ({"institution": "XYZ"}, "not an institution code"),
    ({"person_id": "Meier Hans"}, "not a pseudonym"),
])
def test_a_bad_correction_refuses_the_ingestion_naming_the_row(change, message):
    row = {"person_id": "p1", "institution": "ALV", "case_id": "A-1", "field": "exit_reason",
           "old_value": "other", "new_value": "employment"}
    table = _table([row, {**row, **change}])
    with pytest.raises(ValidationError) as err:
        check_corrections(table, pseudonym_pattern="p[0-9]+")
    probs = [p for p in err.value.report.problems if p.problem == message]
    assert probs and probs[0].rows == (2,), err.value.report.problems
    assert "Meier" not in str(err.value)


def test_ahv_numbers_in_a_correction_are_refused_unrepeated():
    table = _table([{"person_id": "p1", "institution": "ALV", "case_id": "A-1", "field": "exit_reason",
                     "old_value": "other", "new_value": "employment", "reason": "Rückruf 756.1234.5678.97"}])
    with pytest.raises(RawIdentifierError) as err:
        check_corrections(table, pseudonym_pattern=None)
    assert not re.search(r"756\.1234", str(err.value))
    # listed once (the guard of the exports and the free-text search both listed the reason), and the report's
    # headline counts the file's row ("0 rows read from 0 source(s)" headed a report of rows read and refused)
    (problem,) = err.value.report.problems
    assert (problem.column, problem.rows) == ("reason", (1,))
    assert err.value.report.to_text().startswith("Validation: FAILED — 1 rows read from 1 source(s); 1 error(s)")
    assert "1 rows rejected" in err.value.report.summary_line()


@pytest.mark.parametrize("number", ["756 66048 76470", "756.66.04.87.64.70", "756.6604.8764.71",
                                    "7 5 6 6 6 0 4 8 7 6 4 7 0"])
@pytest.mark.parametrize("column", ["reason", "by_role"])
def test_an_ahv_number_in_any_grouping_in_a_free_text_column_is_refused_unrepeated(number, column):
    """Other groupings and a mistyped check digit passed, into the trail and the person's information document."""
    row = {"person_id": "p1", "institution": "ALV", "case_id": "A-1", "field": "exit_reason",
           "old_value": "other", "new_value": "employment"}
    table = _table([row, {**row, "case_id": "A-2", column: f"Rückruf {number}"}])
    with pytest.raises(RawIdentifierError) as err:
        check_corrections(table, pseudonym_pattern=None)
    (p,) = err.value.report.problems
    assert (p.column, p.rows) == (column, (2,))
    assert "6604" not in str(err.value) and "6604" not in err.value.report.to_text()


def test_the_corrections_setting_is_checked(tmp_path, random_spells, trained):
    with pytest.raises(ConfigError, match=r"corrections = 'fixes.txt'"):
        test_batch.deployment(tmp_path, random_spells, trained, deployment={"corrections": "fixes.txt"})
    cfg = test_batch.deployment(tmp_path, random_spells, trained, deployment={"corrections": "missing.csv"})
    with pytest.raises(ValidationError, match="does not exist"):
        ingest(cfg)
    import os

    os.mkfifo(tmp_path / "pipe.csv", 0o600)  # said 'does not exist'; reading it would block
    cfg = test_batch.deployment(tmp_path, random_spells, trained, deployment={"corrections": "pipe.csv"})
    with pytest.raises(ValidationError, match="pipe.csv is a named pipe.*not a regular file"):
        ingest(cfg)


@pytest.mark.parametrize("new_value", ["0001-01-01", "1899-12-31", "2099-01-01"])
def test_an_implausible_new_date_refuses_the_ingestion_naming_file_row_and_fix(new_value):
    row = {"person_id": "p1", "institution": "ALV", "case_id": "A-1", "field": "end_date",
           "old_value": "2024-03-31", "new_value": "2024-02-29"}
    table = _table([row, {**row, "new_value": new_value}])
    with pytest.raises(ValidationError, match=r"fixes\.csv: invalid corrections") as err:
        check_corrections(table, pseudonym_pattern="p[0-9]+", name="fixes.csv", today=pd.Timestamp("2025-06-30"))
    [prob] = err.value.report.problems
    assert (prob.source, prob.column, prob.rows) == ("fixes.csv", "new_value", (2,))
    assert prob.problem.startswith("implausible date") and "2026-06-30" in prob.fix
    # the data contract's bounds, as for an export: the last plausible day is accepted
    ok = check_corrections(_table([{**row, "new_value": "2026-06-30"}]), pseudonym_pattern=None,
                           today=pd.Timestamp("2025-06-30"))
    assert ok["new_value"].tolist() == ["2026-06-30"]


def _two_spells() -> pd.DataFrame:
    return pd.DataFrame({"person_id": ["p1", "p2"], "institution": ["ALV", "ALV"], "case_id": ["A-1", "A-2"],
                         "start_date": pd.to_datetime(["2024-01-01", "2024-01-01"]).astype("datetime64[s]"),
                         "end_date": pd.to_datetime(["2024-03-31", "2024-03-31"]).astype("datetime64[s]")})


def test_a_correction_ending_its_row_before_it_starts_is_refused_naming_file_row_and_field():
    fine = {"person_id": "p1", "institution": "ALV", "case_id": "A-1", "field": "end_date",
            "old_value": "2024-03-31", "new_value": "2024-02-29"}
    # two corrections moving both dates of a row: judged together, once both are applied
    later = check_corrections(_table([
        {**fine, "case_id": "A-2", "person_id": "p2", "field": "start_date", "old_value": "2024-01-01",
         "new_value": "2024-05-01"},
        {**fine, "case_id": "A-2", "person_id": "p2", "old_value": "2024-03-31", "new_value": "2024-06-30"}]),
        pseudonym_pattern=None)
    fixed, trail = apply_corrections(_two_spells(), later)
    assert trail["status"].tolist() == ["applied", "applied"]
    assert fixed["start_date"].iloc[1] == pd.Timestamp("2024-05-01")
    table = check_corrections(_table([
        fine,
        {**fine, "person_id": "p2", "case_id": "A-2", "new_value": "2023-12-31"},  # end before its start
        {**fine, "person_id": "p2", "case_id": "A-2", "field": "start_date", "old_value": "2024-01-01",
         "new_value": "2024-01-02"},  # moves the start; the row still ends before it
        {**fine, "person_id": "p1", "field": "start_date", "old_value": "2024-01-01", "new_value": "2024-02-15"},
    ]), pseudonym_pattern=None, name="fixes.csv")
    with pytest.raises(ValidationError, match=r"fixes\.csv: invalid corrections.*row\(s\) 2, 3 would") as err:
        apply_corrections(_two_spells(), table)
    probs = {p.problem: p for p in err.value.report.problems}
    assert set(probs) == {"the correction of end_date leaves the row with end_date before start_date",
                          "the correction of start_date leaves the row with end_date before start_date"}
    end, start = (probs[f"the correction of {f} leaves the row with end_date before start_date"]
                  for f in ("end_date", "start_date"))
    assert (end.source, end.column, end.rows, end.example) == ("fixes.csv", "new_value", (2,), "2023-12-31")
    assert start.rows == (3,) and "remove the correction" in start.fix and start.severity == "error"


def test_the_nightly_run_names_the_corrections_file_for_an_end_before_start(tmp_path, random_spells, trained,
                                                                           capsys):
    from iizrisk.cli import main

    spells = random_spells
    per_key = spells.groupby(["person_id", "institution", "case_id"])["start_date"].transform("size")
    r = spells[spells["end_date"].notna() & (per_key == 1)
               & (spells["start_date"] > pd.Timestamp("1960-01-02"))].iloc[0]
    write_csv_atomic(_table([{"person_id": r["person_id"], "institution": r["institution"], "case_id": r["case_id"],
                              "field": "end_date", "old_value": r["end_date"].date().isoformat(),
                              "new_value": (r["start_date"] - pd.Timedelta(days=1)).date().isoformat()}]),
                     tmp_path / "corrections.csv")
    # the quarantine policy sets aside rows of an export, never a correction
    cfg = test_batch.deployment(tmp_path, spells, trained,
                                deployment={"corrections": "corrections.csv", "errors": "quarantine"})
    assert main(["run", str(cfg), "--as-of", AS_OF]) == 1
    out = "\n".join(capsys.readouterr())
    assert "corrections.csv: column 'new_value': the correction of end_date leaves the row with end_date before " \
           "start_date: 1 rows, rows 1" in out
    assert "cannot build the timeline" not in out and not re.search(r"756\.?\d{4}", out)


_REASONS = ["employment", "transfer", "other"]


@settings(max_examples=30, deadline=None)
@given(spell_rows=hst.lists(hst.tuples(hst.integers(0, 1), hst.integers(0, 2), hst.sampled_from(_REASONS)), min_size=1,
                           max_size=8),
       fixes=hst.lists(hst.tuples(hst.integers(0, 1), hst.integers(0, 3), hst.sampled_from(_REASONS),
                                hst.sampled_from(_REASONS + ["benefit_exhausted"])), min_size=1, max_size=6))
def test_apply_matches_the_reference_also_when_several_rows_share_a_key(spell_rows, fixes):
    # few persons and case numbers: several rows of one key (duplicated or overlapping export rows) are common
    spells = pd.DataFrame({"person_id": [f"p{p}" for p, _, _ in spell_rows], "institution": "ALV",
                           "case_id": [f"A-{c}" for _, c, _ in spell_rows],
                           "exit_reason": [r for _, _, r in spell_rows]})
    rows = [{"person_id": f"p{p}", "institution": "ALV", "case_id": f"A-{c}", "field": "exit_reason",
             "old_value": old, "new_value": new} for p, c, old, new in fixes if old != new]
    if not rows:
        return
    table = check_corrections(_table(rows), pseudonym_pattern=None)
    fixed, trail = apply_corrections(spells, table)
    ref = spells["exit_reason"].tolist()
    for r, got in zip(rows, trail["status"], strict=True):
        hit = [j for j in range(len(spells)) if spells["person_id"].iloc[j] == r["person_id"]
               and spells["case_id"].iloc[j] == r["case_id"]]
        contested = [j for j in hit if ref[j] == r["old_value"]]
        if not hit:
            want = "unmatched"
        elif len(contested) == 1:  # the one row holding the contested value
            want = "applied"
            ref[contested[0]] = r["new_value"]
        elif len(hit) == 1 and ref[hit[0]] != r["new_value"]:  # the one row, changed since: the correction wins
            want = "conflict"
            ref[hit[0]] = r["new_value"]
        elif any(ref[j] == r["new_value"] for j in hit):
            want = "in_export"
        else:  # several rows, and none or several hold the contested value: which one is meant is unknown
            want = "ambiguous"
        assert got == want
    assert fixed["exit_reason"].tolist() == ref


def test_two_rows_holding_the_contested_value_are_ambiguous_and_neither_changes():
    spells = pd.DataFrame({"person_id": ["p1", "p1"], "institution": "ALV", "case_id": ["A-1", "A-1"],
                           "exit_reason": ["other", "other"]})
    table = check_corrections(_table([{"person_id": "p1", "institution": "ALV", "case_id": "A-1",
                                       "field": "exit_reason", "old_value": "other", "new_value": "employment"}]),
                              pseudonym_pattern=None)
    fixed, trail = apply_corrections(spells, table)
    assert trail["status"].tolist() == ["ambiguous"]
    assert fixed["exit_reason"].tolist() == ["other", "other"]


def test_a_correction_leaving_a_one_day_spell_is_applied():
    # the end date is inclusive: a spell ending on its start day is one day long, not an end before the start
    day = pd.Timestamp("2024-01-10")
    spells = pd.DataFrame({"person_id": ["p1"], "institution": ["ALV"], "case_id": ["A-1"],
                           "start_date": pd.Series([day]).astype("datetime64[s]"),
                           "end_date": pd.Series([day + pd.Timedelta(days=30)]).astype("datetime64[s]")})
    table = check_corrections(_table([{"person_id": "p1", "institution": "ALV", "case_id": "A-1",
                                       "field": "end_date", "old_value": "2024-02-09", "new_value": "2024-01-10"}]),
                              pseudonym_pattern=None)
    fixed, trail = apply_corrections(spells, table)
    assert trail["status"].tolist() == ["applied"] and fixed["end_date"].iloc[0] == day
    one_day_early = table.assign(new_value="2024-01-09")
    with pytest.raises(ValidationError, match="end_date before start_date"):
        apply_corrections(spells, one_day_early)


def test_the_first_plausible_day_is_a_valid_new_date_and_the_day_before_is_not():
    from iizrisk.schema import load_schema

    first = pd.Timestamp(load_schema("spells").plausible_dates()[0])
    row = {"person_id": "p1", "institution": "ALV", "case_id": "A-1", "field": "start_date",
           "old_value": "2024-01-01", "new_value": first.date().isoformat()}
    ok = check_corrections(_table([row]), pseudonym_pattern=None, today=pd.Timestamp("2025-06-30"))
    assert ok["new_value"].tolist() == [first.date().isoformat()]
    before = {**row, "new_value": (first - pd.Timedelta(days=1)).date().isoformat()}
    with pytest.raises(ValidationError) as err:
        check_corrections(_table([before]), pseudonym_pattern=None, today=pd.Timestamp("2025-06-30"))
    assert [p.problem.split(" (")[0] for p in err.value.report.problems] == ["implausible date"]


@pytest.mark.parametrize("listed", ["later decision first", "earlier decision first"])
def test_corrections_apply_in_the_order_they_were_decided_not_the_files(listed):
    """A later decision listed above an earlier one was overwritten by it, and both were reported as
    conflicts: the row's end depended on the order of the file's lines."""
    base = {"person_id": "p1", "institution": "ALV", "case_id": "A-1", "field": "end_date"}
    first = {**base, "old_value": "2024-03-31", "new_value": "2024-02-29", "date": "2024-05-01"}
    second = {**base, "old_value": "2024-02-29", "new_value": "2024-02-15", "date": "2024-06-01"}
    rows = [second, first] if listed == "later decision first" else [first, second]
    table = check_corrections(_table(rows), pseudonym_pattern=None)
    fixed, trail = apply_corrections(_two_spells(), table)
    assert fixed["end_date"].iloc[0] == pd.Timestamp("2024-02-15")  # the later decision holds
    assert trail["status"].tolist() == ["applied", "applied"]
    assert trail["date"].tolist() == [r["date"] for r in rows]  # the trail keeps the file's order
    assert sorted(trail["export_value"]) == ["2024-02-29", "2024-03-31"]
