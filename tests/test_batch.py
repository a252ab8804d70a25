"""The nightly job: outputs, idempotence, locking, crash safety, bad input."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iizrisk.batch import RunLock, run_nightly
from iizrisk.cli import main
from iizrisk.config import Settings
from iizrisk.errors import ConfigError, LockedError, ModelError, ValidationError
from iizrisk.history import HistoryStore
from iizrisk.store import write_parquet_atomic
from iizrisk.tables import header, read_table
from iizrisk.worklist import NOTICE

AS_OF = "2023-06-30"
KEY = b"a model signing key of this test suite, long enough"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, random_spells):
    from iizrisk.model import save_model, train

    d = tmp_path_factory.mktemp("model")
    model, _ = train(random_spells, outcome="revolving_door", compare=False, max_train_rows=8000,
                     model="logistic")
    save_model(model, d / "model", key=KEY)
    return d / "model"


def deployment(tmp_path: Path, spells: pd.DataFrame, model_dir: Path, **extra) -> Path:
    write_parquet_atomic(spells, tmp_path / "exports" / "spells.parquet")
    (tmp_path / "model.key").write_bytes(KEY)
    cfg = {"sources": [{"name": "all", "path": "exports/spells.parquet"}],
           # the random spells' toy pseudonyms ("p12") stand in for real ones
           "deployment": {"pseudonym_pattern": "p[0-9]+"},
           "model": {"dir": str(model_dir), "signing_key_file": "model.key"},
           "worklist": {"capacity": 5, "language_per_institution": {"SH": "fr", "IV": "it"},
                        "disclose_institutions": ["ALV"]}}
    for k, v in extra.items():
        cfg.setdefault(k, {}).update(v)
    return Settings.from_dict(cfg, base_dir=tmp_path).save(tmp_path / "iizrisk.toml")


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in {"timings.json", "run.log"}}


def test_run_publishes_worklists(tmp_path, random_spells, trained):
    cfg = deployment(tmp_path, random_spells, trained)
    res = run_nightly(cfg, as_of=AS_OF, progress=False)
    folder = tmp_path / "runs" / AS_OF
    assert folder.is_symlink() and (tmp_path / "runs" / "latest").resolve() == folder.resolve()
    scores = pd.read_parquet(folder / "scores.parquet")
    # everyone with a spell open at T is scored, once
    t = pd.Timestamp(AS_OF)
    open_at_t = random_spells[(random_spells.start_date <= t)
                              & (random_spells.end_date.isna() | (random_spells.end_date > t))]
    assert set(scores["person_id"]) == set(open_at_t["person_id"])
    assert scores["person_id"].is_unique and scores["rank"].tolist() == list(range(1, len(scores) + 1))
    # first run: new registrations are people whose latest spell started on T itself
    latest = random_spells[random_spells.start_date <= t].groupby("person_id")["start_date"].max()
    expected_new = set(latest[latest == t].index) & set(scores["person_id"])
    assert set(scores.loc[scores["new_registration"], "person_id"]) == expected_new
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["persons_scored"] == len(scores)
    assert manifest["model"]["sha256"] and manifest["inputs"][0]["sha256"]
    for inst, info in manifest["worklists"].items():
        if not info["on_list"]:  # nobody at or above the minimum band: counted, no file
            assert not (folder / "worklists" / f"{inst}.csv").exists() and info["below_min_band"] > 0
            continue
        wl = read_table(folder / "worklists" / f"{inst}.csv")  # headers in the list's language
        assert len(wl) == info["on_list"] <= 5
        lang = {"SH": "fr", "IV": "it"}.get(inst, "de")
        head = pd.read_csv(folder / "worklists" / f"{inst}.csv", sep=";", encoding="utf-8-sig", nrows=0).columns
        assert header("case_ids", lang) in head and header("risk", lang) in head
        dated = folder / "worklists" / f"{inst}_{AS_OF}.csv"
        assert dated.read_bytes() == (folder / "worklists" / f"{inst}.csv").read_bytes()
        assert (folder / "worklists" / f"{inst}_{AS_OF}.xlsx").is_file()
        assert "person_id" not in wl.columns  # case ids suffice
        # only this institution's own case ids
        assert wl["case_ids"].str.split(";").explode().str.startswith(f"{inst}-").all()
        assert wl["risk"].is_monotonic_decreasing and wl["risk"].max() <= 100  # percent
        assert (wl["notice"] == NOTICE[lang]).all() and wl["reason_1_text"].notna().all()
        # other institutions: a count; names only for the disclosed ALV
        shown = wl["other_institutions_disclosed"]
        assert (shown.isna() | (shown == "ALV")).all() and (wl["n_other_institutions"] >= 0).all()
    html = (folder / "summary.html").read_text()
    assert "data:image/png;base64," in html and "keine Entscheidung" in html
    assert res.manifest["persons_scored"] == len(scores)


def test_same_run_twice_is_byte_identical(tmp_path, random_spells, trained):
    cfg = deployment(tmp_path, random_spells, trained)
    run_nightly(cfg, as_of=AS_OF, progress=False)
    first = files_of(tmp_path / "runs" / AS_OF)
    run_nightly(cfg, as_of=AS_OF, progress=False)
    second = files_of(tmp_path / "runs" / AS_OF)
    assert first.keys() == second.keys() and first == second
    assert len(list((tmp_path / "runs" / ".store").iterdir())) == 1  # the replaced run is gone


def test_scores_ignore_rows_after_as_of(tmp_path, random_spells, trained):
    cfg = deployment(tmp_path / "a", random_spells, trained)
    run_nightly(cfg, as_of=AS_OF, progress=False)
    cut = random_spells[random_spells.start_date <= pd.Timestamp(AS_OF)].copy()
    later = cut.end_date > pd.Timestamp(AS_OF)
    cut.loc[later, "end_date"] = pd.NaT
    cut.loc[later, "exit_reason"] = None
    cfg2 = deployment(tmp_path / "b", cut, trained)
    run_nightly(cfg2, as_of=AS_OF, progress=False)
    a = pd.read_parquet(tmp_path / "a" / "runs" / AS_OF / "scores.parquet")
    b = pd.read_parquet(tmp_path / "b" / "runs" / AS_OF / "scores.parquet")
    pd.testing.assert_frame_equal(a.drop(columns="new_registration"), b.drop(columns="new_registration"))


def test_assessments_dated_after_the_as_of_date_change_nothing(tmp_path, random_spells, trained):
    """An assessment entered for tomorrow (T+1) must not take anybody off tonight's list, nor change a score;
    one held on T does."""
    base = run_nightly(deployment(tmp_path / "none", random_spells, trained), as_of=AS_OF, progress=False)
    top = base.worklists["ALV"]["person_id"].iloc[:3].tolist()
    t = pd.Timestamp(AS_OF)

    def night(name: str, days: list[int]):
        cfg = deployment(tmp_path / name, random_spells, trained)
        pd.DataFrame({"person_id": top, "date": [(t + pd.Timedelta(days=d)).date().isoformat() for d in days],
                      "type": "joint_assessment", "institutions": "ALV+SH"}).to_csv(tmp_path / name / "iv.csv",
                                                                                   index=False)
        s = Settings.load(cfg)
        s.deployment.interventions = "iv.csv"
        s.save(cfg)
        return run_nightly(cfg, as_of=AS_OF, progress=False)

    later = night("later", [1, 2, 400])
    assert list(later.worklists) == list(base.worklists)
    for inst in base.worklists:
        pd.testing.assert_frame_equal(later.worklists[inst], base.worklists[inst])
    assert later.manifest["worklists"]["ALV"]["left_off_recent_assessment"] == 0
    a = pd.read_parquet(tmp_path / "none" / "runs" / AS_OF / "scores.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "later" / "runs" / AS_OF / "scores.parquet"), a)
    on_t = night("on_t", [0, 0, 0])
    assert not set(top) & set(on_t.worklists["ALV"]["person_id"])
    assert on_t.manifest["worklists"]["ALV"]["left_off_recent_assessment"] == 3


def test_second_day_marks_new_and_skips_assessed(tmp_path, random_spells, trained):
    cfg = deployment(tmp_path, random_spells, trained)
    r1 = run_nightly(cfg, as_of="2023-06-29", progress=False)
    top = r1.worklists["ALV"]["person_id"].iloc[0]
    iv = pd.DataFrame({"person_id": [top], "date": ["2023-06-15"], "type": ["joint_assessment"],
                       "institutions": ["ALV+SH"]})
    iv.to_csv(tmp_path / "interventions.csv", index=False)
    s = Settings.load(cfg)
    s.deployment.interventions = "interventions.csv"
    s.save(cfg)
    r2 = run_nightly(cfg, as_of="2023-06-30", progress=False)
    alv = r2.worklists["ALV"]
    assert top not in set(alv["person_id"])
    assert r2.manifest["worklists"]["ALV"]["left_off_recent_assessment"] == 1
    prev = set(r1.worklists["ALV"]["person_id"])
    assert (alv["new_on_list"] == ~alv["person_id"].isin(prev)).all()
    assert HistoryStore(tmp_path / "history").as_of_dates() == [pd.Timestamp("2023-06-29").date(),
                                                                pd.Timestamp("2023-06-30").date()]


def test_bad_input_publishes_nothing(tmp_path, random_spells, trained):
    bad = random_spells.copy()
    bad["institution"] = bad["institution"].astype(str)
    bad.loc[3, "institution"] = "XYZ"
    cfg = deployment(tmp_path, bad, trained)
    with pytest.raises(ValidationError) as exc:
        run_nightly(cfg, as_of=AS_OF, progress=False)
    assert "unknown institution code" in exc.value.report.to_text()
    assert not (tmp_path / "runs" / AS_OF).exists()
    assert list((tmp_path / "runs").glob(".tmp-*")) == []
    with RunLock(tmp_path / "runs" / ".lock"):  # the lock was released
        pass
    # with the quarantine policy the bad row is set aside and the run completes
    cfg = deployment(tmp_path, bad, trained, deployment={"errors": "quarantine"})
    run_nightly(cfg, as_of=AS_OF, progress=False)
    q = pd.read_parquet(tmp_path / "runs" / AS_OF / "quarantine.parquet")
    assert q["_row"].tolist() == [4] and "unknown institution code" in q["_reason"].iloc[0]


def test_model_problems_exit_3(tmp_path, random_spells, trained, capsys):
    cfg = deployment(tmp_path, random_spells, tmp_path / "no-model")
    assert main(["run", str(cfg), "--as-of", AS_OF]) == 3
    import shutil

    shutil.copytree(trained, tmp_path / "tampered")
    with open(tmp_path / "tampered" / "model.skops", "ab") as fh:
        fh.write(b"\0")
    cfg = deployment(tmp_path, random_spells, tmp_path / "tampered")
    with pytest.raises(ModelError):
        run_nightly(cfg, as_of=AS_OF, progress=False)


def test_lock(tmp_path):
    lock = RunLock(tmp_path / ".lock")
    with lock:
        with pytest.raises(LockedError, match="another run holds the lock"):
            RunLock(tmp_path / ".lock").acquire()
    # a lock file left by a dead process holds no lock: the kernel dropped it with the process
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    import socket

    (tmp_path / ".lock").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(),
                                                "started": "x"}))
    with RunLock(tmp_path / ".lock"):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


def _cli(cfg: Path, as_of: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "iizrisk", "run", str(cfg), "--as-of", as_of],
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_concurrent_run_is_refused_with_exit_4(tmp_path, random_spells, trained):
    cfg = deployment(tmp_path, random_spells, trained)
    RunLock(tmp_path / "runs" / ".lock").acquire()  # a live holder (this process)
    p = _cli(cfg, AS_OF)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 4 and "another run holds the lock" in err


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["ingest", "score", "write", "publish", "history"])
def test_kill_9_leaves_previous_results_intact(tmp_path, random_spells, trained, stage):
    cfg = deployment(tmp_path, random_spells, trained)
    run_nightly(cfg, as_of=AS_OF, progress=False)
    before = files_of(tmp_path / "runs" / AS_OF)
    p = _cli(cfg, AS_OF, env={"IIZRISK_FAULT_AT": stage})
    p.communicate(timeout=300)
    assert p.returncode == -9
    assert files_of(tmp_path / "runs" / AS_OF) == before
    # the next run cleans up and completes normally
    p = _cli(cfg, AS_OF)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert files_of(tmp_path / "runs" / AS_OF) == before
    runs = tmp_path / "runs"
    assert not list(runs.glob(".tmp-*")) and len(list((runs / ".store").iterdir())) == 1
    assert np.array_equal(HistoryStore(tmp_path / "history").as_of_dates(), [pd.Timestamp(AS_OF).date()])


def test_summary_suppresses_small_counts(tmp_path, random_spells, trained):
    from iizrisk.report import run_summary

    cfg = deployment(tmp_path, random_spells, trained, worklist={"capacity": 3})
    res = run_nightly(cfg, as_of=AS_OF, progress=False)
    md = (tmp_path / "runs" / AS_OF / "summary.md").read_text()
    rows = [r for r in md.splitlines() if r.startswith("| ALV")]
    assert rows and "·" in rows[0] and "| 3 |" not in rows[0]  # 3 on the list: fewer than 5 people
    md10, _ = run_summary(res.manifest, res.scores, res.worklists, min_cell_size=1)
    assert "| 3 |" in [r for r in md10.splitlines() if r.startswith("| ALV")][0]


def test_the_summarys_oversight_counts_tonights_lists(tmp_path, random_spells, trained):
    """The oversight table of a month's first night said 0 on the list: it read the history up to the night
    before, and tonight's lists enter the history only after publication. A forced rerun of the night
    counts its lists once."""
    from iizrisk._texts import text

    cfg = deployment(tmp_path, random_spells, trained, privacy={"min_cell_size": 1})
    header = text("oversight.title", "de")

    def listed() -> dict[str, str]:
        md = (tmp_path / "runs" / AS_OF / "summary.md").read_text(encoding="utf-8")
        lines = md[md.index(header):].splitlines()
        first = next(i for i, r in enumerate(lines) if r.startswith("|"))
        table = lines[first:next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))]
        cols = [c.strip() for c in table[0].strip("|").split("|")]
        at = cols.index(text("table.columns.listed", "de"))
        return {r.strip("|").split("|")[0].strip(): r.strip("|").split("|")[at].strip() for r in table[2:]}

    res = run_nightly(cfg, as_of=AS_OF, progress=False)
    sizes = res.worklists.rows().groupby("institution", observed=True).size()
    want = {str(k): str(v) for k, v in sizes.items() if v}
    assert want and listed() == want
    run_nightly(cfg, as_of=AS_OF, progress=False, force=True, reason="rerun")
    assert listed() == want


def test_the_manifest_lists_every_file_of_the_run(tmp_path, random_spells, trained):
    """summary.md, summary.html and timings.json are written after the manifest and were missing from its
    outputs; every file of the run folder but the log is listed, and nothing that is not there."""
    cfg = deployment(tmp_path, random_spells, trained)
    res = run_nightly(cfg, as_of=AS_OF, progress=False)
    folder = tmp_path / "runs" / AS_OF
    files = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != "run.log"}
    assert set(res.manifest["outputs"]) == files and {"summary.md", "summary.html", "timings.json"} <= files


def test_an_institution_with_nobody_listed_tonight_gets_an_empty_list(tmp_path, random_spells, trained):
    """IV's cases were all below its minimum band: no IV.csv was written, and a coordinator could not tell
    "nobody tonight" from a failed job. Its list is written with its headers and no row."""
    from iizrisk.tables import read_table

    cfg = deployment(tmp_path, random_spells, trained,
                     worklist={"risk_bands": [0.98, 0.99], "min_band": "low", "min_band_per_institution": {"IV": "high"}})
    res = run_nightly(cfg, as_of=AS_OF, progress=False)
    summary = res.worklists.summary().set_index("institution")
    assert summary.loc["IV", "eligible"] > 0 and summary.loc["IV", "on_list"] == 0
    folder = tmp_path / "runs" / AS_OF / "worklists"
    for name in ("IV.csv", "IV.xlsx", "IV.parquet", f"IV_{AS_OF}.csv", f"IV_{AS_OF}.xlsx"):
        assert (folder / name).is_file(), name
    full, empty = read_table(folder / "ALV.csv"), read_table(folder / "IV.csv")
    assert len(empty) == 0 and list(empty.columns) == list(full.columns) and len(full) > 0
    assert len(pd.read_parquet(folder / "IV.parquet")) == 0
    assert (folder / "IV.csv").read_text(encoding="utf-8-sig").splitlines() == [  # in IV's language
        (folder / "IV.csv").read_text(encoding="utf-8-sig").splitlines()[0]]
    assert (folder / "IV.csv").read_text(encoding="utf-8-sig").startswith("Istituzione;Rango;")
    # the demo's coordinators skip an empty list (its Italian headers were looked up in German: exit 5)
    from iizrisk.demo import simulate_reviews

    files = simulate_reviews(tmp_path / "runs" / AS_OF, random_spells, review_date=pd.Timestamp(AS_OF).date(),
                             out=tmp_path / "reviews")
    assert files and not any("IV" in Path(f).name for f in files)
    # nobody listed anywhere (a night published with --force): every institution still gets its list
    cfg = deployment(tmp_path / "none", random_spells, trained,
                     worklist={"risk_bands": [0.98, 0.99], "min_band": "high"})
    res = run_nightly(cfg, as_of=AS_OF, progress=False, force=True, reason="test: nobody listed")
    folder = tmp_path / "none" / "runs" / AS_OF / "worklists"
    assert not len(res.worklists) and set(res.worklists.eligible)
    for inst in res.worklists.eligible:
        assert read_table(folder / f"{inst}.csv").empty and (folder / f"{inst}.xlsx").is_file(), inst


def test_run_scores_equal_a_direct_score(tmp_path, random_spells, trained):
    """The run's one point-in-time view serves flags and features alike."""
    from iizrisk.model import load_model, score

    cfg = deployment(tmp_path, random_spells, trained)
    res = run_nightly(cfg, as_of="2023-06-30")
    direct = score(load_model(trained, key=KEY), random_spells, as_of="2023-06-30")
    got = res.scores.set_index("person_id")
    want = direct.set_index(direct["person_id"].astype(str))
    assert len(got) == len(want)
    np.testing.assert_allclose(got.loc[want.index, "risk"].to_numpy(), want["risk"].to_numpy())


@pytest.mark.parametrize("setting, value, attr", [("merge_gap_days", 7, "merge_gap_days"),
                                                   ("transition_gap_days", 30, "transition_gap_days"),
                                                   ("window_months", 12, "bfs_window_months")])
def test_the_models_definitions_must_equal_the_deployments(tmp_path, random_spells, trained, capsys,
                                                          setting, value, attr):
    """One view at T: a model trained on other definitions is refused with the difference, not re-viewed."""
    cfg = deployment(tmp_path, random_spells, trained, deployment={setting: value})
    assert main(["run", str(cfg), "--as-of", AS_OF]) == 3
    err = capsys.readouterr().err
    assert f"[deployment] {setting} = {value}" in err and f"{attr} = " in err
    assert not (tmp_path / "runs" / AS_OF).exists()


def test_summary_writes_swiss_numbers_and_translated_bands():
    from iizrisk.report import run_summary
    from iizrisk.worklist import WorklistSet

    manifest = {"as_of": "2024-06-30", "persons_scored": 20645, "new_registrations": 1200,
                "rows": {"read": 1234567, "quarantined": 0}, "risk_bands": {"high": 900, "low": 18000},
                "model": {"outcome": "revolving_door", "horizon_months": 12, "sha256": "ab" * 32}}
    scores = pd.DataFrame({"person_id": ["a"], "risk": [0.3], "risk_band": ["high"]})
    md_de, _ = run_summary(manifest, scores, WorklistSet(), language="de")
    assert "20’645" in md_de and "1’234’567" in md_de and "tief: 18’000, hoch: 900" in md_de  # low first
    md_fr, _ = run_summary(manifest, scores, WorklistSet(), language="fr")
    assert "20\u202f645" in md_fr and "élevé\u00a0: 900" in md_fr and "- **Date de référence**\u00a0: 2024-06-30" in md_fr
    md_en, _ = run_summary(manifest, scores, WorklistSet(), language="en")
    assert "20,645" in md_en and "high: 900" in md_en


def test_a_hidden_part_of_a_lists_row_hides_its_total():
    """IV: 4,789 eligible, 27 left off, 0 reviewed, 4,761 below the band: the hidden "on the list" was
    4789 - 27 - 0 - 4761 = 1. The row's total is hidden with it; a row without a hidden part keeps it."""
    from iizrisk.report import run_summary

    class Lists:
        def summary(self):
            return pd.DataFrame({"institution": ["ALV", "IV", "SH"], "eligible": [900, 4789, 2000],
                                 "left_off_recent_assessment": [20, 27, 50], "left_off_reviewed": [0, 0, 0],
                                 "below_min_band": [600, 4761, 1920], "on_list": [25, 1, 30],
                                 "places": [25, 25, 30], "new_on_list": [10, 0, 12]})

    manifest = {"as_of": "2024-06-30", "persons_scored": 5689, "new_registrations": 100,
                "rows": {"read": 9000, "quarantined": 0},
                "model": {"outcome": "revolving_door", "horizon_months": 12, "sha256": "ab" * 32}}
    md, _ = run_summary(manifest, pd.DataFrame({"risk": [], "risk_band": []}), Lists(), language="en")
    rows = {r.strip("|").split("|")[0].strip(): [c.strip() for c in r.strip("|").split("|")[1:]]
            for r in md.splitlines() if r.startswith(("| ALV", "| IV", "| SH"))}
    assert rows["IV"][:5] == ["·", "27", "0", "4,761", "·"]
    # ALV's 25 is hidden too, lest the column's total give IV's 1 away; its total goes with it
    assert rows["ALV"][:5] == ["·", "20", "0", "600", "·"]
    assert rows["SH"][:5] == ["2,000", "50", "0", "1,920", "30"]


# ------------------------------------------------------------------ trust: dates, gates, history, files
def test_future_as_of_is_refused_and_history_kept(tmp_path, random_spells, trained, capsys):
    import datetime as dt

    cfg = deployment(tmp_path, random_spells, trained)
    run_nightly(cfg, as_of=AS_OF, progress=False)
    before = HistoryStore(tmp_path / "history").as_of_dates()
    future = (dt.date.today() + dt.timedelta(days=400)).isoformat()
    assert main(["run", str(cfg), "--as-of", future]) == 2
    assert "lies after today" in capsys.readouterr().err
    assert not (tmp_path / "runs" / future).exists()
    assert HistoryStore(tmp_path / "history").as_of_dates() == before


def test_as_of_long_after_the_data_needs_force_and_a_reason(tmp_path, random_spells, trained, capsys):
    cfg = deployment(tmp_path, random_spells, trained)
    late = "2026-01-31"  # the random spells end in 2025
    newest = max(random_spells["start_date"].max(), random_spells["end_date"].max())
    assert (pd.Timestamp(late) - newest).days > 14
    assert main(["run", str(cfg), "--as-of", late]) == 2
    assert "days after the newest date in the data" in capsys.readouterr().err
    assert main(["run", str(cfg), "--as-of", late, "--force"]) == 2
    assert "--force needs --reason" in capsys.readouterr().err
    assert not (tmp_path / "runs" / late).exists()


def test_a_failed_gate_publishes_nothing_unless_forced(tmp_path, random_spells, trained, capsys):
    cfg = deployment(tmp_path, random_spells, trained, health={"min_persons_scored": 10**9})
    assert main(["validate", str(cfg), "--as-of", AS_OF]) == 1
    out = capsys.readouterr().out
    assert "min_persons_scored" in out and "would NOT publish" in out
    assert main(["run", str(cfg), "--as-of", AS_OF]) == 1
    err = capsys.readouterr().err
    assert "min_persons_scored" in err and "fix:" in err
    assert not (tmp_path / "runs" / AS_OF).exists() and not HistoryStore(tmp_path / "history").as_of_dates()
    assert main(["run", str(cfg), "--as-of", AS_OF, "--force", "--reason", "test canton, few people"]) == 0
    out = capsys.readouterr().out  # said once, and not contradicted ("nothing is published", "may publish anyway")
    assert "published anyway with --force" in out and "nothing is published" not in out
    assert "--force --reason" not in out and out.count("published ") == 2
    manifest = json.loads((tmp_path / "runs" / AS_OF / "manifest.json").read_text())
    assert manifest["health"]["gates"] == "forced"
    assert manifest["health"]["forced"]["reason"] == "test canton, few people"
    assert manifest["health"]["forced"]["failed_gates"][0]["gate"] == "min_persons_scored"


def test_ahv_numbers_never_reach_the_manifest_or_the_run_log(tmp_path, random_spells, trained, capsys,
                                                            monkeypatch):
    """--reason was copied into the manifest, a log line into run.log with a plain formatter (the console
    withheld it), the settings file's name into the manifest."""
    import iizrisk.batch as batch

    cfg = deployment(tmp_path, random_spells, trained, health={"min_persons_scored": 10**9})
    for reason in ("Person 756.1234.5678.97 geprueft", "AHV 756-1234-5678-97 ok"):
        assert main(["run", str(cfg), "--as-of", AS_OF, "--force", "--reason", reason]) == 2
        err = capsys.readouterr().err
        assert "--reason hold(s) a number shaped like an AHV number" in err and "5678" not in err, err
    named = tmp_path / "7561234567897.toml"
    named.write_bytes(cfg.read_bytes())
    assert main(["run", str(named), "--as-of", AS_OF, "--force", "--reason", "test"]) == 2
    assert "the settings file's path hold(s)" in capsys.readouterr().err
    assert not (tmp_path / "runs" / AS_OF).exists()
    compute = batch._Night.compute

    def logging_compute(*args, **kwargs):
        logging.getLogger("iizrisk").warning("reading /exports/756.1234.5678.97.csv")
        return compute(*args, **kwargs)

    monkeypatch.setattr(batch._Night, "compute", logging_compute)
    assert main(["run", str(cfg), "--as-of", AS_OF, "--force", "--reason", "a small test canton"]) == 0
    log = (tmp_path / "runs" / AS_OF / "run.log").read_text()
    assert "reading /exports/" in log and "5678" not in log, log


def test_validate_gives_the_runs_verdict(tmp_path, random_spells, trained, capsys):
    cfg = deployment(tmp_path, random_spells, trained)
    assert main(["validate", str(cfg), "--as-of", AS_OF]) == 0
    assert "would publish" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()  # a check writes nothing
    bad = random_spells.copy()
    bad["institution"] = bad["institution"].astype(str)
    bad.loc[3, "institution"] = "XYZ"
    cfg = deployment(tmp_path / "b", bad, trained)  # errors = "raise", as the run
    assert main(["validate", str(cfg), "--as-of", AS_OF]) == main(["run", str(cfg), "--as-of", AS_OF]) == 1
    cfg = deployment(tmp_path / "c", random_spells, tmp_path / "no-model")
    assert main(["validate", str(cfg), "--as-of", AS_OF]) == main(["run", str(cfg), "--as-of", AS_OF]) == 3


def test_validate_gives_the_runs_exit_code_for_the_output_folders(tmp_path, random_spells, trained, capsys):
    """validate said 'would publish' (0) where the run failed on an unknown group (2), a folder of the
    operator's where tonight's link goes (6) or a history folder that is a file (6)."""
    cases = [("group", {"output": {"group": "no-such-group-iizrisk"}}, 2, "no such group"),
             ("plain", {}, 6, "is not a link that iizrisk made"),
             ("file", {"output": {"history_dir": "hist.txt"}}, 6, "is a file, not a folder")]
    for name, extra, code, words in cases:
        cfg = deployment(tmp_path / name, random_spells, trained, **extra)
        if name == "plain":
            (tmp_path / name / "runs" / AS_OF).mkdir(parents=True)
        if name == "file":
            (tmp_path / name / "hist.txt").write_text("x")
        assert main(["validate", str(cfg), "--as-of", AS_OF]) == code, name
        assert words in capsys.readouterr().err, name
        assert main(["run", str(cfg), "--as-of", AS_OF]) == code, name
        capsys.readouterr()


def test_a_history_folder_the_run_cannot_write_stops_it_before_publishing(tmp_path, random_spells, trained, capsys,
                                                                          monkeypatch):
    """The run published, then failed writing the history (exit 6), with a message that hid the publication."""
    import iizrisk.batch as batch

    cfg = deployment(tmp_path, random_spells, trained)
    assert main(["run", str(cfg), "--as-of", "2023-06-29"]) == 0
    locked = tmp_path / "history" / "scores"
    assert locked.is_dir()
    real = os.access
    monkeypatch.setattr(batch.os, "access", lambda p, mode: Path(p) != locked and real(p, mode))  # as non-root
    for command in ("validate", "run"):
        assert main([command, str(cfg), "--as-of", AS_OF]) == 6
        assert f"{locked} is not writable by this account" in capsys.readouterr().err
    assert not (tmp_path / "runs" / AS_OF).exists()
    theirs = tmp_path / "runs" / "tools"  # an operator's folder the run never writes into: no business of it
    theirs.mkdir()
    monkeypatch.setattr(batch.os, "access", lambda p, mode: Path(p) != theirs and real(p, mode))
    assert main(["run", str(cfg), "--as-of", AS_OF]) == 0


def test_a_damaged_history_entry_is_written_anew_from_its_run_folder(tmp_path, random_spells, trained):
    """An unreadable runs entry made every later night fail (exit 1, no fix); the run folder holds a copy."""
    cfg = deployment(tmp_path, random_spells, trained)
    run_nightly(cfg, as_of="2023-06-29", progress=False)
    store = HistoryStore(tmp_path / "history")
    token = store.run_token("2023-06-29")
    part = next((tmp_path / "history" / "runs").glob("as_of=2023-06-29/*.parquet"))
    part.write_bytes(b"garbage")
    run_nightly(cfg, as_of=AS_OF, progress=False)
    assert store.run_token("2023-06-29") == token and (tmp_path / "runs" / AS_OF).is_dir()


def test_validate_report_never_replaces_the_deployments_files(tmp_path, random_spells, trained, capsys):
    """--report was written over whatever was there: the settings (exit 0), an export, the model's manifest."""
    cfg = deployment(tmp_path, random_spells, trained)
    export = tmp_path / "exports" / "spells.parquet"
    manifest = trained / "manifest.json"
    before = {p: p.read_bytes() for p in (cfg, export, manifest)}
    for target, words in ((cfg, "ending in .csv or .xlsx"), (export, "ending in .csv or .xlsx"),
                          (trained / "report.csv", "lies in the [model] dir folder"),
                          (tmp_path / "runs" / "report.csv", "lies in the [output] dir folder")):
        try:
            code = main(["validate", str(cfg), "--as-of", AS_OF, "--report", str(target)])
        except SystemExit as exc:  # refused by the parser
            code = exc.code
        assert code == 2, target
        assert words in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before
    assert not (trained / "report.csv").exists() and not (tmp_path / "runs").exists()
    assert main(["validate", str(cfg), "--as-of", AS_OF, "--report", str(tmp_path / "report.csv")]) == 0


@pytest.mark.parametrize("argv", [["dpia"], ["monitor"], ["oversight"], ["case", "--institution", "ALV", "--case-id", "x"],
                                  ["information-request", "--person", "p1", "--institution", "ALV"]])
def test_commands_reading_the_settings_never_write_into_the_deployments_folders(tmp_path, random_spells, trained,
                                                                               capsys, argv):
    """An --out in the model, runs or history folder (or the settings themselves) is refused before any work."""
    cfg = deployment(tmp_path, random_spells, trained)
    for out, words in ((trained / "out", "lies in the [model] dir folder"),
                       (tmp_path / "history" / "out", "lies in the [output] history_dir folder"),
                       (tmp_path / "runs", "lies in the [output] dir folder")):
        try:
            code = main([argv[0], str(cfg), *argv[1:], "--out", str(out)])
        except SystemExit as exc:
            code = exc.code
        assert code == 2, (argv, out)
        assert words in capsys.readouterr().err, (argv, out)
        assert not out.exists() or out == tmp_path / "runs"


def test_protected_attributes_the_data_lack_are_said_not_judged(tmp_path, random_spells, trained, caplog):
    """The random spells have no sex or nationality_group column: the nightly check skipped them without a word."""
    cfg = deployment(tmp_path, random_spells, trained)
    with caplog.at_level("WARNING", logger="iizrisk"):
        result = run_nightly(cfg, as_of=AS_OF, progress=False)
    fairness = result.manifest["fairness"]
    assert fairness["not_in_the_data"] == ["sex", "nationality_group"]
    assert "sex" not in fairness["attributes"] and "age_band" in fairness["attributes"]
    assert "fairness check: sex, nationality_group not in the data" in caplog.text
    assert "fairness check: sex, nationality_group not in the data" in (result.folder / "run.log").read_text()


def test_the_stages_named_are_the_stages_run(tmp_path, random_spells, trained, caplog):
    """STAGES (the progress bar's steps and the names IIZRISK_FAULT_AT takes) lacked "fairness": 15 stages ran
    against 14 steps, and a fault could not be placed at the fairness stage."""
    from iizrisk.batch import STAGES

    cfg = deployment(tmp_path, random_spells, trained)
    with caplog.at_level("INFO", logger="iizrisk"):
        run_nightly(cfg, as_of=AS_OF, progress=False)
    ran = [r.getMessage().removeprefix("stage ") for r in caplog.records if r.getMessage().startswith("stage ")]
    assert tuple(ran) == STAGES


def test_a_crash_between_publishing_and_history_is_repaired(tmp_path, random_spells, trained, monkeypatch):
    cfg = deployment(tmp_path, random_spells, trained)
    real = HistoryStore.write

    def crash(self, *a, **k):
        raise KeyboardInterrupt  # the process dies right after the run was published

    monkeypatch.setattr(HistoryStore, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        run_nightly(cfg, as_of="2023-06-29", progress=False)
    monkeypatch.setattr(HistoryStore, "write", real)
    assert (tmp_path / "runs" / "2023-06-29").is_symlink()
    assert HistoryStore(tmp_path / "history").as_of_dates() == []
    r2 = run_nightly(cfg, as_of=AS_OF, progress=False)
    h = HistoryStore(tmp_path / "history")
    assert h.as_of_dates() == [pd.Timestamp("2023-06-29").date(), pd.Timestamp(AS_OF).date()]
    # the restored scores entry is the history columns of the run's own scores
    restored = h.read("scores", as_of="2023-06-29").drop(columns="as_of")
    published = pd.read_parquet(tmp_path / "runs" / "2023-06-29" / "scores.parquet")
    pd.testing.assert_frame_equal(restored.reset_index(drop=True),
                                  published[restored.columns].reset_index(drop=True), check_dtype=False)
    # the second night knew the first night's list: people listed then are not new on the list now
    first = pd.read_parquet(tmp_path / "runs" / "2023-06-29" / "history" / "worklists.parquet")
    again = r2.worklists["ALV"][r2.worklists["ALV"]["person_id"].isin(first["person_id"])]
    assert len(again) and not again["new_on_list"].any()


def test_the_model_must_fit_the_settings(tmp_path, random_spells, trained, capsys):
    cfg = deployment(tmp_path, random_spells, trained, model={"horizon_months": 6})
    assert main(["run", str(cfg), "--as-of", AS_OF]) == 3
    assert "horizon_months" in capsys.readouterr().err
    cfg = deployment(tmp_path, random_spells, trained, model={"outcome": "disintegration"})
    assert main(["run", str(cfg), "--as-of", AS_OF]) == 3


def test_an_unsigned_model_is_refused_unless_allowed(tmp_path, random_spells, capsys):
    from iizrisk.model import save_model, train

    model, _ = train(random_spells, outcome="revolving_door", compare=False, max_train_rows=3000,
                     model="logistic")
    save_model(model, tmp_path / "unsigned")
    cfg = deployment(tmp_path, random_spells, tmp_path / "unsigned", model={"signing_key_file": None})
    s = Settings.load(cfg)
    s.model.signing_key_file = None
    s.save(cfg)
    assert main(["run", str(cfg), "--as-of", AS_OF]) == 3
    assert "allow_unsigned_model" in capsys.readouterr().err
    assert not (tmp_path / "runs" / AS_OF).exists()
    s.model.allow_unsigned_model = True
    s.save(cfg)
    assert main(["run", str(cfg), "--as-of", AS_OF]) == 0


def test_files_are_private_to_the_group_and_the_library_sets_no_log_level(tmp_path, random_spells, trained):
    import logging
    import stat

    logger = logging.getLogger("iizrisk")
    level = logger.level
    cfg = deployment(tmp_path, random_spells, trained)
    (tmp_path / "runs" / "tools").mkdir(parents=True)  # an operator's files: not iizrisk's to re-mode
    (tmp_path / "runs" / "tools" / "check.sh").write_text("#!/bin/sh\n")
    (tmp_path / "runs" / "tools" / "check.sh").chmod(0o700)
    run_nightly(cfg, as_of=AS_OF, progress=False)
    assert logger.level == level
    assert stat.S_IMODE((tmp_path / "runs" / "tools" / "check.sh").stat().st_mode) == 0o700  # was made 0640
    for base in (tmp_path / "runs", tmp_path / "history"):
        for p in [base, *base.rglob("*")]:
            if p.is_symlink() or "tools" in p.parts:
                continue
            mode = stat.S_IMODE(p.stat().st_mode)
            assert mode & 0o007 == 0, (p, oct(mode))
            assert mode == (0o750 if p.is_dir() else 0o640), (p, oct(mode))


# ------------------------------------------------------------------ every setting takes effect or is refused
def _run_case(tmp_path, random_spells, trained, capsys, spells=None, argv=(), env=None, **sections):
    """Run the deployment with ``sections`` changed; return (exit code, run folder or None, message)."""
    from iizrisk.errors import ConfigError

    try:
        cfg = deployment(tmp_path, random_spells if spells is None else spells, trained, **sections)
    except ConfigError as exc:  # refused when the settings are loaded (the run would exit 2)
        return exc.exit_code, None, str(exc)
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        code = main(["run", str(cfg), "--as-of", AS_OF, *argv])
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    out, err = capsys.readouterr()
    runs = Settings.load(cfg).resolve(Settings.load(cfg).output.dir)
    folder = runs / AS_OF if (runs / AS_OF).exists() else None
    return code, folder, out + err


def _manifest_of(folder):
    return json.loads((folder / "manifest.json").read_text())


def _lists(folder, codes=False):
    """The published worklists, from their Parquet files with ``codes`` (band codes), else as the CSV reads."""
    if codes:
        return {p.stem: pd.read_parquet(p) for p in (folder / "worklists").glob("*.parquet")}
    return {p.stem: read_table(p) for p in (folder / "worklists").glob("*.csv") if "_" not in p.stem}


def _named(folder) -> int:
    """Rows of the published lists that name another institution."""
    return sum(int(v["other_institutions_disclosed"].notna().sum()) for v in _lists(folder).values())


def _with_bad_row(spells):
    bad = spells.copy()
    bad["institution"] = bad["institution"].astype(str)
    bad.loc[3, "institution"] = "XYZ"
    return bad


def _assessed(tmp_path, spells, months_ago=1, every_alv=False):
    """An interventions file: ALV people (200, or all of them) had a joint assessment recently."""
    top = spells[spells["institution"].astype(str) == "ALV"]["person_id"].astype(str).unique()
    top = top if every_alv else top[:200]
    date = (pd.Timestamp(AS_OF) - pd.DateOffset(months=months_ago)).date().isoformat()
    pd.DataFrame({"person_id": top, "date": date, "type": "joint_assessment",
                  "institutions": "ALV+SH"}).to_csv(tmp_path / "interventions.csv", index=False)
    return "interventions.csv"


#: field -> how to change it, and what must then be seen (exit code and an effect on the run)
_WALK = {
    "deployment.name": (dict(deployment={"name": "Kanton Test"}),
                        lambda code, f, msg, base: code == 0 and _manifest_of(f)["deployment"] == "Kanton Test"),
    "deployment.extra_institutions": (dict(spells="bad", deployment={"extra_institutions": ["XYZ"]}),
                                      lambda code, f, msg, base: code == 0),  # the XYZ row is accepted
    "deployment.errors": (dict(spells="bad", deployment={"errors": "quarantine"}),
                          lambda code, f, msg, base: code == 0 and (f / "quarantine.parquet").exists()),
    "deployment.merge_gap_days": (dict(deployment={"merge_gap_days": 3}),
                                  lambda code, f, msg, base: code == 3 and "merge_gap_days" in msg),
    "deployment.transition_gap_days": (dict(deployment={"transition_gap_days": 30}),
                                       lambda code, f, msg, base: code == 3 and "transition_gap_days" in msg),
    "deployment.window_months": (dict(deployment={"window_months": 12}),
                                 lambda code, f, msg, base: code == 3 and "window_months" in msg),
    "deployment.interventions": (dict(deployment={"interventions": "ASSESSED"}),
                                 lambda code, f, msg, base: code == 0
                                 and _manifest_of(f)["left_off_recent_assessment_persons"] > 0),
    "deployment.pseudonym_pattern": (dict(deployment={"pseudonym_pattern": "[0-9a-f]{64}"}),
                                     lambda code, f, msg, base: code == 1 and "pseudonym" in msg),
    "model.dir": (dict(model={"dir": "elsewhere"}), lambda code, f, msg, base: code == 3 and "elsewhere" in msg),
    "model.outcome": (dict(model={"outcome": "disintegration"}), lambda code, f, msg, base: code == 3),
    "model.horizon_months": (dict(model={"horizon_months": 6}), lambda code, f, msg, base: code == 3),
    "model.signing_key_env": (dict(model={"signing_key_env": "IIZRISK_TEST_KEY", "signing_key_file": None},
                                   env={"IIZRISK_TEST_KEY": KEY.decode()}),
                              lambda code, f, msg, base: code == 0),  # the key comes from the variable
    "model.signing_key_file": (dict(model={"signing_key_file": "wrong.key"}),
                               lambda code, f, msg, base: code in (2, 3) and "wrong.key" in msg),
    "model.allow_unsigned_model": (dict(model={"dir": "UNSIGNED", "allow_unsigned_model": True,
                                               "signing_key_file": None}),
                                   lambda code, f, msg, base: code == 0),  # refused without: test_corpus
    "worklist.capacity": (dict(worklist={"capacity": 2}),
                          lambda code, f, msg, base: code == 0 and max(len(v) for v in _lists(f).values()) == 2),
    "worklist.capacity_per_institution": (dict(worklist={"capacity_per_institution": {"ALV": 1}}),
                                          lambda code, f, msg, base: code == 0 and len(_lists(f)["ALV"]) == 1),
    "worklist.capacity_per_canton": (dict(worklist={"capacity_per_canton": {"ZH": 1}}),
                                     lambda code, f, msg, base: code == 2 and "canton" in msg),
    "worklist.risk_bands": (dict(worklist={"risk_bands": [0.01, 0.02]}),
                            lambda code, f, msg, base: code == 0
                            and _manifest_of(f)["risk_bands"] != _manifest_of(base)["risk_bands"]),
    "worklist.language": (dict(worklist={"language": "en"}),
                          lambda code, f, msg, base: code == 0 and (_lists(f)["ALV"]["notice"] == NOTICE["en"]).all()),
    "worklist.language_per_institution": (dict(worklist={"language_per_institution": {"ALV": "it"}}),
                                          lambda code, f, msg, base: code == 0
                                          and (_lists(f)["ALV"]["notice"] == NOTICE["it"]).all()),
    "worklist.disclose_institutions": (dict(worklist={"disclose_institutions": ["ALV", "IV", "SH", "BB", "BSLB",
                                                                                "MIG", "UV", "KTG"]}),
                                       lambda code, f, msg, base: code == 0
                                       and _named(f) > _named(base)),  # base: ALV only
    "worklist.exclude_assessed_months": (dict(deployment={"interventions": "ASSESSED"},
                                              worklist={"exclude_assessed_months": 0}),
                                         lambda code, f, msg, base: code == 0
                                         and _manifest_of(f)["left_off_recent_assessment_persons"] == 0),
    "worklist.min_band": (dict(worklist={"min_band": "high"}),
                          lambda code, f, msg, base: code == 0
                          and all(set(v["risk_band"]) <= {"high"} for v in _lists(f, codes=True).values())
                          and sum(map(len, _lists(f).values())) < sum(map(len, _lists(base).values()))),
    "worklist.min_band_per_institution": (dict(worklist={"min_band": "low",
                                                         "min_band_per_institution": {"ALV": "high"}}),
                                          lambda code, f, msg, base: code == 0
                                          and set(_lists(f, codes=True).get("ALV", {"risk_band": []})["risk_band"])
                                          <= {"high"} and _manifest_of(f)["worklists"]["ALV"]["below_min_band"] > 0
                                          and all(v["below_min_band"] == 0 for k, v in
                                                  _manifest_of(f)["worklists"].items() if k != "ALV")),
    "output.dir": (dict(output={"dir": "other-runs"}),
                   lambda code, f, msg, base: code == 0 and "other-runs" in str(f)),
    "output.history_dir": (dict(output={"history_dir": "other-history"}),
                           lambda code, f, msg, base: code == 0 and (f.parent.parent / "other-history" / "runs").is_dir()),
    "output.history_keep_days": (dict(output={"history_keep_days": 0}),
                                 lambda code, f, msg, base: code == 2 and "history_keep_days" in msg),
    "output.mode": (dict(output={"mode": "0600"}),
                    lambda code, f, msg, base: code == 0 and (f / "manifest.json").stat().st_mode & 0o777 == 0o600),
    "output.group": (dict(output={"group": "no-such-group-iizrisk"}),
                     lambda code, f, msg, base: code == 2 and "no such group" in msg),
    "privacy.min_cell_size": (dict(worklist={"capacity": 3}, privacy={"min_cell_size": 1}),
                              lambda code, f, msg, base: code == 0
                              and any(r.startswith("| ALV") and "| 3 |" in r
                                      for r in (f / "summary.md").read_text().splitlines())),
    # the night's flag-rate ratios (the summary's fairness section and the manifest); the audit takes them too
    # (tests/test_fairness.py::test_cli_audit_takes_privacy_settings_from_the_configuration)
    "privacy.protected_attributes": (dict(privacy={"protected_attributes": ["age_band"]}),
                                     lambda code, f, msg, base: code == 0
                                     and _manifest_of(f)["fairness"]["attributes"] == ["age_band"]
                                     and len(_manifest_of(base)["fairness"]["attributes"]) > 1),
    "privacy.fairness_min_ratio": (dict(privacy={"fairness_min_ratio": 0.01}),
                                   lambda code, f, msg, base: code == 0
                                   and _manifest_of(f)["fairness"]["verdicts"]["exceeds"] == 0
                                   and _manifest_of(f)["fairness"]["verdicts"]["within"] > 0
                                   and _manifest_of(f)["fairness"]["rule"]["min_ratio"] == 0.01),
    "privacy.fairness_ratio_metrics": (dict(privacy={"fairness_ratio_metrics": ["precision"]}),
                                       lambda code, f, msg, base: code == 0
                                       and sum(_manifest_of(f)["fairness"]["verdicts"].values()) == 0
                                       and sum(_manifest_of(base)["fairness"]["verdicts"].values()) > 0),
    "health.min_persons_scored": (dict(health={"min_persons_scored": 10**9}),
                                  lambda code, f, msg, base: code == 1 and "min_persons_scored" in msg),
    "health.max_row_drop_percent": (dict(spells="half", health={"max_row_drop_percent": 10.0}),
                                    lambda code, f, msg, base: code == 1 and "max_row_drop_percent" in msg),
    "health.max_quarantine_percent": (dict(spells="bad", deployment={"errors": "quarantine"},
                                           health={"max_quarantine_percent": 0.0}),
                                      lambda code, f, msg, base: code == 1 and "max_quarantine_percent" in msg),
    "health.max_export_age_days": (dict(health={"max_export_age_days": 0}, argv=("--as-of", "2024-03-31")),
                                   lambda code, f, msg, base: code == 1 and "max_export_age_days" in msg),
    "health.max_as_of_after_data_days": (dict(health={"max_as_of_after_data_days": 1000},
                                              argv=("--as-of", "2025-06-30")),
                                         # the date is let through; the stale-export gate then speaks
                                         lambda code, f, msg, base: code == 1 and "max_export_age_days" in msg),
    "health.require_worklists": (dict(deployment={"interventions": "ASSESSED_ALL_ALV"},
                                      health={"require_worklists": False}),
                                 lambda code, f, msg, base: code == 0 and len(_lists(f).get("ALV", [])) == 0),
}
# settings whose effect lies outside the nightly run, with the test that shows it
_ELSEWHERE = {
    "reviews.decisions": "tests/test_reviews.py::test_the_decision_list_is_configurable",
    "reviews.keep_off_days": "tests/test_reviews.py::test_three_nights_with_reviews_between_them",
    "reviews.interventions": "tests/test_reviews.py::test_three_nights_with_reviews_between_them",
    "reviews.summary_decisions": "tests/test_reviews.py::test_three_nights_with_reviews_between_them",
    # the calibration bound needs outcomes: the audit (the nightly run judges the flag-rate ratios)
    "privacy.fairness_max_differences": "tests/test_fairness.py::test_cli_audit_takes_privacy_settings_from_the_configuration",
    # printed in the information document and the DPIA draft; a request without it is refused
    "deployment.contact": "tests/test_information.py::test_the_document_names_the_contact_and_refuses_without_one",
    # applied at ingestion with its audit trail; the round trip reaches the next run's features
    "deployment.corrections": "tests/test_corrections.py::test_round_trip_contest_apply_rescore_conflict",
    # the monitoring thresholds: monitor_night's tests show each (tests/test_monitoring.py); the nightly run
    # passes them on and fail_on_warning turns a warning into a failed gate
    **{f"monitoring.{k}": "tests/test_monitoring.py (thresholds) and tests/test_batch.py::"
       "test_the_run_monitors_itself_and_a_warning_can_fail_it"
       for k in ("feature_psi", "score_psi", "band_share_change", "min_list_jaccard", "precision_gap", "max_ece",
                 "fail_on_warning")},
    # the order of the lists by benefit: a night with a benefit model whose evidence supports it, and nights
    # that refuse one without (exit 2), without a file (exit 3) or of another outcome
    **{f"worklist.{k}": "tests/test_rank_by_benefit.py::test_a_night_ranks_by_benefit_where_its_evidence_supports_it "
       "and ::test_a_night_refuses_an_ordering_its_evidence_does_not_support" for k in ("rank_by", "benefit_model")},
    # the research commands' Dask cluster (the nightly run does not use Dask)
    **{f"dask.{k}": "tests/test_distributed.py::test_dask_settings_of_the_deployment_reach_the_client"
       for k in ("scheduler", "workers")},
    # the flow thresholds reach the night's flow rows: a test sets each in a TOML and sees it applied
    **{f"monitoring.flow_{k}": "tests/test_monitoring.py::test_flow_thresholds_come_from_the_deployment_settings"
       for k in ("window_days", "baseline_windows", "z", "min_change", "min_count")},
}


def test_the_walk_covers_every_setting():
    import dataclasses

    s = Settings()
    # every section of the settings, found rather than listed: a new section cannot escape the walk
    sections = [f.name for f in dataclasses.fields(s) if dataclasses.is_dataclass(getattr(s, f.name))]
    assert {"deployment", "monitoring", "dask"} <= set(sections)
    fields = {f"{sec}.{f.name}" for sec in sections for f in dataclasses.fields(getattr(s, sec))}
    assert fields == set(_WALK) | set(_ELSEWHERE)


@pytest.mark.slow
@pytest.mark.parametrize("field", sorted(_WALK))
def test_every_setting_takes_effect_or_is_refused(field, tmp_path, random_spells, trained, capsys):
    change, effect = _WALK[field]
    change = {k: dict(v) if isinstance(v, dict) else v for k, v in change.items()}
    code0, base, _ = _run_case(tmp_path / "base", random_spells, trained, capsys)
    assert code0 == 0
    spells = {"bad": _with_bad_row(random_spells),
              "half": random_spells.iloc[: len(random_spells) // 4]}.get(change.pop("spells", None))
    argv = change.pop("argv", ())
    (tmp_path / "case").mkdir()
    marker = change.get("deployment", {}).get("interventions", "")
    if marker.startswith("ASSESSED"):
        change["deployment"]["interventions"] = _assessed(tmp_path / "case", random_spells,
                                                          every_alv=marker == "ASSESSED_ALL_ALV")
    env = change.pop("env", None)
    if change.get("model", {}).get("dir") == "UNSIGNED":  # the same model, saved without a signature
        from iizrisk.model import load_model, save_model

        save_model(load_model(trained, key=KEY), tmp_path / "case" / "unsigned")
        change["model"]["dir"] = str(tmp_path / "case" / "unsigned")
    if field == "health.max_row_drop_percent":  # the same history: the drop is against the base run
        shutil.copytree(tmp_path / "base" / "history", tmp_path / "case" / "history")
    code, folder, msg = _run_case(tmp_path / "case", random_spells, trained, capsys, spells=spells, argv=argv,
                                  env=env, **change)
    assert effect(code, folder, msg, base), (field, code, msg[-2000:])


def test_every_stage_reads_the_resolved_read_only_settings(tmp_path, random_spells, trained, monkeypatch):
    import dataclasses

    import iizrisk.batch as batch

    cfg = deployment(tmp_path, random_spells, trained)
    editable = Settings.load(cfg)
    editable.worklist.capacity = 3  # a notebook's edit is checked and taken over
    seen = []
    stages = []
    for name, stage in batch._COMPUTE:
        def spy(*args, _stage=stage, **kw):
            seen.append(kw.get("settings"))
            return _stage(*args, **kw)
        spy.__signature__ = inspect.signature(stage)  # type: ignore[attr-defined]
        stages.append((name, spy))
    monkeypatch.setattr(batch, "_COMPUTE", tuple(stages))
    result = batch.run_nightly(editable, as_of=AS_OF)
    given = [s for s in seen if s is not None]
    assert given and all(s is given[0] for s in given)  # resolved once, one object for every stage
    assert given[0].is_resolved and given[0].worklist.capacity == 3
    assert max(len(df) for df in result.worklists.lists.values()) <= 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        given[0].deployment.window_months = 12
    with pytest.raises(TypeError):
        given[0].worklist.capacity_per_institution["ALV"] = 1  # tables are read-only too
    editable.worklist.capacity = 0  # the editable object stays editable; a wrong value is refused at resolve
    with pytest.raises(ConfigError, match="capacity"):
        editable.resolved()


def test_recent_assessments_leave_a_list_empty_without_failing_the_gate_unless_they_take_everyone():
    import datetime as dt
    from types import SimpleNamespace

    from iizrisk.batch import _FEW_TO_LIST, _facts
    from iizrisk.health import check_health
    from iizrisk.worklist import WorklistSet

    few, many = _FEW_TO_LIST - 1, _FEW_TO_LIST + 3
    wl = WorklistSet(eligible={"IV": few + 2, "ALV": many, "SH": 6, "BB": 300},
                     left_off_assessed={"IV": few, "ALV": many, "SH": 0, "BB": 20},
                     below_min_band={"IV": 2, "ALV": 0, "SH": 6, "BB": 280}, left_off_reviewed={})
    ing = SimpleNamespace(spells=pd.DataFrame({"institution": ["IV", "ALV", "SH"]}),
                          quarantine=pd.DataFrame(), report=SimpleNamespace(rows_read={}))
    history = SimpleNamespace(as_of_dates=lambda table: [])
    s = Settings.from_dict({}).resolved()
    facts = _facts(s, dt.date(2024, 6, 30), ing, pd.DataFrame({"person_id": []}), None, wl, {}, history)
    # IV: few candidates, all assessed recently (an ordinary night); SH: all below the minimum band (by design);
    # BB: the 20 above the band all assessed, but most open cases were not (an ordinary night at a busy office);
    # ALV: everyone with an open case left off as assessed (a wrong interventions file?): the gate asks
    assert facts.open_cases_per_institution == {"IV": 0, "ALV": many, "SH": 0, "BB": 0}
    report = check_health(facts, s.health)
    failed = [f for f in report.failures if f.gate == "require_worklists"]
    assert len(failed) == 1 and "ALV" in failed[0].to_text()


def test_the_run_judges_whom_its_lists_flag(tmp_path, random_spells, trained):
    """The summary's fairness section and the manifest's entry are the night's flag-rate ratios, computed
    directly from the published scores and lists."""
    from iizrisk.fairness_rule import FairnessRule
    from iizrisk.list_fairness import list_fairness
    from iizrisk.view import View

    cfg = deployment(tmp_path, random_spells, trained)
    res = run_nightly(cfg, as_of=AS_OF)
    listed = res.worklists.rows()["person_id"].to_numpy()
    direct = list_fairness(View.at(random_spells, AS_OF), res.scores, listed,
                           attributes=("sex", "nationality_group", "age_band", "disability"), rule=FairnessRule(),
                           min_cell_size=5)
    entry = res.manifest["fairness"]
    judged = direct[~direct["is_reference"]]
    assert entry["verdicts"] == {v: int((judged["verdict"] == v).sum()) for v in ("exceeds", "cannot_tell", "within")}
    assert entry["attributes"] == sorted(set(direct["attribute"]))
    assert [(e["attribute"], e["group"]) for e in entry["exceeds"]] == \
        [(r.attribute, r.group) for r in judged[judged["verdict"] == "exceeds"].itertuples()]
    # a hidden group is neither judged nor listed: every ratio beyond the rule can be read
    assert (direct.loc[direct["hidden"], "verdict"] == "not_judged").all()
    assert all(e["ratio"] is not None and None not in e["ratio_ci"] for e in entry["exceeds"])
    summary = (res.folder / "summary.md").read_text(encoding="utf-8")
    title = next(t for t in ("Wen die Listen heute erfassen", "Whom tonight's lists flag") if t in summary)
    section = summary.split(f"## {title}")[1].split("\n## ")[0]
    assert section.count("\n| ") - 1 == len(judged)  # a row per group that is not a reference (header aside)


def test_the_manifest_neither_counts_nor_lists_a_hidden_group():
    """The manifest's fairness entry (counts and disparities beyond the rule) agrees with the summary: a
    group whose figures are hidden is not judged, even in a table that still carries a verdict for it."""
    from iizrisk.batch import _fairness_entry
    from iizrisk.fairness_rule import FairnessRule
    from iizrisk.list_fairness import flag_rate_ratios

    people = pd.DataFrame({"age_band": ["25-49"] * 6000 + ["65+"] * 4000 + ["50-64"] * 3000})
    listed = np.zeros(len(people), dtype=bool)
    listed[:600] = True
    listed[6000:6003] = True  # 65+: 3 listed, hidden
    listed[10_000:10_020] = True  # 50-64: shown, outside the rule
    table = flag_rate_ratios(people, listed, attributes=["age_band"], rule=FairnessRule(), min_cell_size=5)
    settings = Settings.from_dict({})
    for t in (table, table.assign(verdict=np.where(table["hidden"], "exceeds", table["verdict"]))):
        entry = _fairness_entry(t, settings)
        assert [e["group"] for e in entry["exceeds"]] == ["50-64"]
        assert entry["exceeds"][0]["ratio"] == pytest.approx(0.07, abs=0.005)
        assert entry["verdicts"] == {"exceeds": 1, "cannot_tell": 0, "within": 0}


def test_the_run_monitors_itself_and_a_warning_can_fail_it(tmp_path, random_spells, trained, capsys):
    from iizrisk.monitoring import COLUMNS

    cfg = deployment(tmp_path, random_spells, trained)
    res = run_nightly(cfg, as_of=AS_OF)
    hist = HistoryStore(tmp_path / "history")
    table = hist.read("monitoring", as_of=AS_OF)
    assert set(COLUMNS) <= set(table.columns) and len(table)
    assert (res.folder / "history" / "monitoring.parquet").is_file()  # restored with the run if history is lost
    summary = (res.folder / "summary.md").read_text(encoding="utf-8")
    assert "## " + ("Überwachung" if "Überwachung" in summary else "Monitoring") in summary
    assert res.manifest["monitoring"]["warnings"] == [str(m) for m in table.loc[table["warning"], "message"]]
    # thresholds no night can meet: every figure warns; with fail_on_warning nothing is published
    strict = deployment(tmp_path / "strict", random_spells, trained,
                        monitoring={"feature_psi": 0.0, "score_psi": 0.0, "min_list_jaccard": 1.0,
                                    "band_share_change": 0.0, "fail_on_warning": True})
    code = main(["-q", "run", str(strict), "--as-of", AS_OF])
    out = capsys.readouterr()
    assert code == 1 and "[health] monitoring" in out.out + out.err
    assert not (tmp_path / "strict" / "runs" / AS_OF).exists()  # nothing published
    assert HistoryStore(tmp_path / "strict" / "history").as_of_dates("runs") == []


def _newest_dates_slow(spells, t):
    """One row at a time: the newest of a row's dates on or before t, the newest per institution."""
    out: dict = {}
    for _, r in spells.iterrows():
        if pd.isna(r["institution"]):
            continue
        days = [pd.Timestamp(r[c]).date() for c in ("start_date", "end_date", "recorded_date")
                if c in spells.columns and pd.notna(r[c]) and pd.Timestamp(r[c]).date() <= t]
        best = max(days) if days else None
        key = str(r["institution"])
        if key not in out or (best is not None and (out[key] is None or best > out[key])):
            out[key] = best
    return out


def test_newest_dates_per_institution_equal_the_obvious_loop():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from iizrisk.batch import _newest_dates

    day = st.one_of(st.none(), st.integers(-400, 400))

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(["ALV", "SH", "IV", None]), day, day, day), max_size=25),
           st.booleans(), st.booleans())
    def check(rows, categorical, with_recorded):
        base = pd.Timestamp("2024-01-01")
        frame = pd.DataFrame({
            "institution": [r[0] for r in rows],
            **{c: [None if r[i] is None else base + pd.Timedelta(days=r[i]) for r in rows]
               for i, c in ((1, "start_date"), (2, "end_date"), (3, "recorded_date"))}})
        frame = frame.astype({c: "datetime64[s]" for c in ("start_date", "end_date", "recorded_date")})
        frame["institution"] = frame["institution"].astype("category" if categorical else "str")
        if not with_recorded:
            frame = frame.drop(columns="recorded_date")
        t = dt.date(2024, 1, 1)
        assert _newest_dates(frame, t) == _newest_dates_slow(frame, t)

    check()


def test_the_early_imports_leave_a_failing_library_to_its_stage(monkeypatch):
    """The timeline stage imports the later stages' libraries on a second thread; one that cannot be imported
    raises nothing there (the stage that needs it reports it) and stops the thread."""
    import threading

    import iizrisk.batch as B

    raised = []
    monkeypatch.setattr(threading, "excepthook", lambda args: raised.append(args.exc_type))
    monkeypatch.setattr(B, "_LATER_IMPORTS", ("iizrisk_no_such_library", "json"))
    th = B._warm_imports()
    th.join(timeout=60)
    assert not th.is_alive() and raised == []


def test_the_model_stage_waits_for_the_early_imports(monkeypatch, trained):
    """Two threads importing scikit-learn at once can see a half-initialised module (exit 5 about one
    night in eight on a small deployment): the model stage imports nothing before the thread is done."""
    import threading
    import time

    import iizrisk.batch as B
    from iizrisk.model import load_model

    model = load_model(trained, key=KEY)
    done = []

    def slow_import():
        time.sleep(0.3)
        done.append(True)

    th = threading.Thread(target=slow_import)
    th.start()
    settings = Settings.from_dict({"model": {"outcome": model.outcome, "horizon_months": model.horizon_months}})
    B._model(settings, model, th)
    assert done == [True]


@pytest.mark.parametrize("case", ["empty export", "as-of before the data"])
def test_a_night_with_nobody_to_score_fails_its_gate_and_publishes_nothing(tmp_path, random_spells, trained, capsys,
                                                                          case):
    """An export that is only a header, or an as-of date before every spell: exit 1 from the health gate
    (forced or not), never an internal error from a stage that meets nobody."""
    spells = random_spells.iloc[:0] if case == "empty export" else random_spells
    cfg = deployment(tmp_path, spells, trained)
    as_of = AS_OF if case == "empty export" else "1950-06-30"
    code = main(["validate", str(cfg), "--as-of", as_of])
    err = capsys.readouterr().err
    assert code == 1 and "internal error" not in err, err[-2000:]
    for forced in ([], ["--force", "--reason", "test"]):
        assert main(["run", str(cfg), "--as-of", as_of, *forced]) == 1
        err = capsys.readouterr().err
        assert "min_persons_scored" in err and "internal error" not in err, err[-2000:]
        # forcing cannot publish a night that scored nobody: the report does not offer it
        assert ("may publish anyway" in err) == (not forced), err[-2000:]
    assert not (tmp_path / "runs" / as_of).exists()


@pytest.mark.parametrize("as_of", ["0001-01-01", "1899-12-31", "9999-12-31"])
def test_as_of_dates_outside_the_calendar_iizrisk_works_with_are_usage_errors(tmp_path, random_spells, trained,
                                                                             capsys, as_of):
    cfg = deployment(tmp_path, random_spells, trained)
    with pytest.raises(SystemExit) as exc:  # argparse's usage error
        main(["validate", str(cfg), "--as-of", as_of])
    assert exc.value.code == 2 and "1900-01-01 to 2199-12-31" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="1900-01-01 to 2199-12-31"):  # from Python too
        run_nightly(cfg, as_of=as_of, progress=False)
