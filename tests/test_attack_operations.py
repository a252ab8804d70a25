"""Hostile and careless inputs of monitor, pseudonymise, dpia, case and oversight: a clear error with its exit
code, naming the file or option, and nothing of the user's replaced (each test failed before its fix)."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_main
from iizrisk.errors import ValidationError

DAY = pd.Timestamp("2024-01-25")
AHV = "756.1234.5678.97"


def _config(tmp_path, **extra):
    from iizrisk.config import Settings

    return Settings.from_dict({"output": {"dir": "runs", "history_dir": "history"}, **extra},
                              base_dir=tmp_path).save(tmp_path / "iizrisk.toml")


# ----------------------------------------------------------------- monitor
def test_monitor_names_a_monitoring_partition_whose_figures_are_text(tmp_path, capsys):
    """A figure stored as text ended the trends with an internal error (exit 5)."""
    from iizrisk.monitoring import COLUMNS

    cfg = _config(tmp_path)
    part = tmp_path / "history" / "monitoring" / "as_of=2026-01-07" / "part-0.parquet"
    part.parent.mkdir(parents=True)
    row = {"kind": "drift", "name": "age", "institution": "", "run_as_of": "2026-01-07", "value": "abc",
           "threshold": 0.1, "warning": False, "message": ""}
    pq.write_table(pa.table({c: [row[c]] for c in COLUMNS}), part)
    code, err = run_main(["monitor", str(cfg), "--out", str(tmp_path / "m")], capsys)
    assert code == 1, err
    assert "column 'value' of the night(s) 2026-01-07 holds text" in err and "changed by hand" in err
    assert not (tmp_path / "m").exists()


# ----------------------------------------------------------------- pseudonymise
@pytest.fixture
def export(tmp_path):
    key = tmp_path / "key.txt"
    key.write_text("a pseudonym key of the attack tests, long enough to be accepted 0123456789")
    os.chmod(key, 0o600)
    src = tmp_path / "export.csv"
    src.write_text(f"AHV;x\n{AHV};1\n", encoding="utf-8")
    return src, key


def test_pseudonymise_refuses_a_fifo_or_a_folder_as_out_before_any_work(export, tmp_path, capsys):
    """A FIFO at OUT was replaced by a file (exit 0); a folder there was found after the work, named by the
    temporary file."""
    src, key = export
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    code, err = run_main(["pseudonymise", str(src), str(fifo), "--id-column", "AHV", "--key-file", str(key)], capsys)
    assert code == 6 and "OUT" in err and "a FIFO" in err, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    folder = tmp_path / "out.parquet"
    folder.mkdir()
    code, err = run_main(["pseudonymise", str(src), str(folder), "--id-column", "AHV", "--key-file", str(key)],
                         capsys)
    assert code == 6 and "is a folder where a file is expected" in err and ".tmp" not in err, err
    invalid = tmp_path / "ok.parquet.invalid.csv"
    invalid.mkdir()
    code, err = run_main(["pseudonymise", str(src), str(tmp_path / "ok.parquet"), "--id-column", "AHV",
                          "--key-file", str(key), "--skip-invalid"], capsys)
    assert code == 6 and "OUT.invalid.csv" in err, err
    assert not (tmp_path / "ok.parquet").exists()


def test_pseudonymise_refuses_an_unknown_encoding_as_a_usage_error(export, tmp_path, capsys):
    """A misspelt --encoding was invalid input (exit 1), as if the file were at fault."""
    src, key = export
    code, err = run_main(["pseudonymise", str(src), str(tmp_path / "o.parquet"), "--id-column", "AHV",
                          "--key-file", str(key), "--encoding", "klingon"], capsys)
    assert code == 2 and "argument --encoding: 'klingon' is not an encoding" in err, err


def test_pseudonymise_names_a_damaged_parquet_file_or_a_folder_given_as_in(export, tmp_path, capsys):
    """A damaged Parquet file ended with an internal error (exit 5); a folder was read as a table without
    columns ("column 'AHV' not found; columns are []")."""
    _, key = export
    junk = tmp_path / "junk.parquet"
    junk.write_text("junk")
    code, err = run_main(["pseudonymise", str(junk), str(tmp_path / "o.csv"), "--id-column", "AHV",
                          "--key-file", str(key)], capsys)
    assert code == 1 and "not a readable Parquet file" in err, err
    folder = tmp_path / "folder.parquet"
    folder.mkdir()
    code, err = run_main(["pseudonymise", str(folder), str(tmp_path / "o.csv"), "--id-column", "AHV",
                          "--key-file", str(key)], capsys)
    assert code == 1 and "is a folder, not a regular file" in err, err
    assert not (tmp_path / "o.csv").exists()


def test_pseudonymise_removes_an_earlier_runs_list_of_invalid_rows_after_a_clean_run(export, tmp_path, capsys):
    """A list of invalid rows from an earlier run stayed beside a clean output, as if it were this run's."""
    src, key = export
    dirty = tmp_path / "dirty.csv"
    dirty.write_text(f"AHV;x\n{AHV};1\n756.1234.5678.90;2\n", encoding="utf-8")
    out = tmp_path / "o.parquet"
    argv = ["pseudonymise", str(dirty), str(out), "--id-column", "AHV", "--key-file", str(key), "--skip-invalid"]
    code, _ = run_main(argv, capsys)
    listed = tmp_path / "o.parquet.invalid.csv"
    assert code == 1 and listed.is_file() and "invalid AHV number" in listed.read_text(encoding="utf-8-sig")
    code, _ = run_main(["pseudonymise", str(src), str(out), "--id-column", "AHV", "--key-file", str(key)], capsys)
    assert code == 0 and not listed.exists() and len(pd.read_parquet(out)) == 1


# ----------------------------------------------------------------- dpia
def test_dpia_refuses_a_damaged_model_instead_of_asking_to_train_one(tmp_path, capsys):
    """A damaged manifest read as "no model yet": a draft asking to train a model, with exit 0."""
    cfg = _config(tmp_path, model={"dir": "model"})
    code, err = run_main(["dpia", str(cfg), "--out", str(tmp_path / "none")], capsys)
    assert code == 0, err  # no model yet: its fields stay open
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "manifest.json").write_text("garbage")
    code, err = run_main(["dpia", str(cfg), "--out", str(tmp_path / "d")], capsys)
    assert code == 3 and "manifest.json" in err, err
    assert not (tmp_path / "d").exists()


# ----------------------------------------------------------------- case
def test_case_refuses_an_empty_case_number_before_any_work(tmp_path, capsys):
    """An empty --case-id was looked up after the whole ingest and answered as an unknown case (exit 1)."""
    code, err = run_main(["case", str(tmp_path / "missing.toml"), "--institution", "ALV", "--case-id", " "],
                         capsys)
    assert code == 2 and "argument --case-id: an empty case number" in err, err


def test_the_risk_history_names_a_damaged_scores_partition_or_a_foreign_worklist(tmp_path):
    """A damaged scores partition ended the case lookup with an internal error (exit 5)."""
    from iizrisk.case import _risk_history
    from iizrisk.history import HistoryStore

    h = HistoryStore(tmp_path / "h")
    scores = pd.DataFrame({"person_id": ["p0"], "risk": [0.4], "risk_band": ["high"], "rank": [1]})
    h.write(DAY, scores=scores, worklists=scores[["person_id", "rank", "risk"]].assign(institution="ALV"))
    assert len(_risk_history(h, "p0", DAY.date(), "ALV")) == 1
    part = h.root / "scores" / "as_of=2024-01-25" / "part-0.parquet"
    part.write_text("junk")
    with pytest.raises(ValidationError, match="not a readable scores table.*changed by hand"):
        _risk_history(h, "p0", DAY.date(), "ALV")
    pq.write_table(pa.table({"a": [1]}), h.root / "worklists" / "as_of=2024-01-25" / "part-0.parquet")
    with pytest.raises(ValidationError, match="not the worklists table"):
        _risk_history(h, "p0", DAY.date(), "ALV")


# ----------------------------------------------------------------- oversight
def _store(tmp_path):
    from iizrisk.history import HistoryStore

    h = HistoryStore(tmp_path / "history")
    lists = pd.DataFrame({"institution": "ALV", "person_id": [f"p{i}" for i in range(8)]})
    h.write(DAY, worklists=lists)
    reviews = pd.DataFrame({"institution": "ALV", "person_id": [f"p{i}" for i in range(6)], "case_id": "x",
                            "review_date": DAY + pd.Timedelta(days=2), "decision": "not_suitable",
                            "decided_by": "IIZ ALV", "note": "", "listed": True, "list_as_of": DAY,
                            "band_at_review": "high"})
    h.write_reviews(reviews)
    return h


def test_oversight_refuses_a_foreign_table_in_place_of_a_nights_worklist(tmp_path, capsys):
    """Another table in a worklists partition counted as nobody listed, with exit 0."""
    cfg = _config(tmp_path)
    h = _store(tmp_path)
    assert run_main(["oversight", str(cfg)], capsys)[0] == 0
    pq.write_table(pa.table({"a": [1]}), h.root / "worklists" / "as_of=2024-01-25" / "part-0.parquet")
    code, err = run_main(["oversight", str(cfg), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "not the worklists table" in err and "as_of=2024-01-25" in err, err
    assert not (tmp_path / "o").exists()


def test_oversight_names_a_review_date_that_is_not_a_date(tmp_path, capsys):
    """Text in the stored reviews' dates ended with an internal error (exit 5)."""
    cfg = _config(tmp_path)
    h = _store(tmp_path)
    table = pq.read_table(h.reviews_path).to_pandas()
    table["review_date"] = ["kaputt"] + [str(d) for d in table["review_date"].iloc[1:]]
    table.to_parquet(h.reviews_path)
    code, err = run_main(["oversight", str(cfg)], capsys)
    assert code == 1, err
    assert "column 'review_date' holds values that are not dates" in err and "reviews.parquet" in err
