"""Outputs never destroy a user's file: an --out (or --save-model) that is, or would write into, an input
or a folder of other files is refused with exit code 2 before any work; a failed write leaves nothing."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import run_main
from iizrisk.errors import EXIT_OS, EXIT_USAGE, ConfigError

AS_OF = "2021-06-30"


def _tree(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes() if p.is_file() else None) for p in folder.rglob("*"))


# ----------------------------------------------------------------- D1: train --out
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_train_refuses_an_out_that_is_no_model_folder(cli_data, tmp_path, capsys, kind):
    if kind == "file":
        out = tmp_path / "spells.csv"
        out.write_text("person_id;start_date\n")
    else:
        out = tmp_path / "userdir"
        out.mkdir()
        (out / "notes.txt").write_text("precious")
        shutil.copy(cli_data / "interventions.parquet", out / "interventions.parquet")
    before = out.read_bytes() if kind == "file" else _tree(out)
    code, err = run_main(["train", "--spells", str(cli_data / "spells.parquet"), "--outcome", "revolving_door",
                          "--no-compare", "--out", str(out)], capsys)
    assert code == EXIT_USAGE, err
    assert "--out" in err and str(out) in err and "earlier model" in err
    assert (out.read_bytes() if kind == "file" else _tree(out)) == before


def test_a_model_folder_is_recognised_by_its_files(tmp_path):
    from iizrisk.model import RiskModel, check_model_folder, save_model

    check_model_folder(tmp_path / "new")  # absent: fine
    (tmp_path / "empty").mkdir()
    check_model_folder(tmp_path / "empty")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"]).astype("float32")
    model = RiskModel(model="logistic", calibration=None).fit(X, (X["a"] > 0.5).to_numpy())
    folder = save_model(model, tmp_path / "m")
    for name in ("model_card.md", "model_card.html", "model_card.json"):
        (folder / name).write_text("card")
    save_model(model, folder)  # an earlier model (with its card) is replaced
    assert (folder / "manifest.json").is_file()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="notes.txt"):
        save_model(model, folder)
    assert (folder / "notes.txt").read_text() == "mine"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model.skops").write_text("no manifest")
    with pytest.raises(ConfigError, match="holds no earlier model"):
        check_model_folder(tmp_path / "other")
    # another tool's folder whose only file is its own manifest.json is no earlier model
    for i, text in enumerate(['{"files": ["a.csv"]}', '{"format": "iizrisk-model/9"}', "[1]", "not json"]):
        (tmp_path / f"tool{i}").mkdir()
        (tmp_path / f"tool{i}" / "manifest.json").write_text(text)
        with pytest.raises(ConfigError, match="holds no earlier model: its manifest.json is not an iizrisk model's"):
            save_model(model, tmp_path / f"tool{i}")
        assert (tmp_path / f"tool{i}" / "manifest.json").read_text() == text
    (tmp_path / "data.csv").write_text("x")
    with pytest.raises(ConfigError, match="a file, not a model folder"):
        save_model(model, tmp_path / "data.csv")
    assert (tmp_path / "data.csv").read_text() == "x"


# ----------------------------------------------------------------- D2: an output over an input
@pytest.mark.parametrize("command", ["flags", "features"])
def test_out_equal_to_the_spells_input_is_refused(cli_data, tmp_path, capsys, command):
    spells = tmp_path / "victim.parquet"
    shutil.copy(cli_data / "spells.parquet", spells)
    before = spells.read_bytes()
    code, err = run_main([command, "--spells", str(spells), "--as-of", AS_OF, "--out", str(spells)], capsys)
    assert code == EXIT_USAGE, err
    assert "--out" in err and "--spells" in err and "overwrite the input" in err
    assert spells.read_bytes() == before
    # also through a link, and into a folder of Parquet spells (read back as spells the next time)
    (tmp_path / "link.parquet").symlink_to(spells)
    assert run_main([command, "--spells", str(spells), "--as-of", AS_OF, "--out", str(tmp_path / "link.parquet")],
                    capsys)[0] == EXIT_USAGE
    folder = tmp_path / "spells"
    folder.mkdir()
    shutil.copy(cli_data / "spells.parquet", folder / "part-0.parquet")
    code, err = run_main([command, "--spells", str(folder), "--as-of", AS_OF, "--out", str(folder / "out.parquet")],
                         capsys)
    assert code == EXIT_USAGE and "lies in the --spells input folder" in err, err
    assert sorted(p.name for p in folder.iterdir()) == ["part-0.parquet"]


def test_features_out_equal_to_the_interventions_is_refused(cli_data, tmp_path, capsys):
    interventions = tmp_path / "int.parquet"
    shutil.copy(cli_data / "interventions.parquet", interventions)
    before = interventions.read_bytes()
    code, err = run_main(["features", "--spells", str(cli_data / "spells.parquet"), "--interventions", str(interventions),
                          "--as-of", AS_OF, "--out", str(interventions)], capsys)
    assert code == EXIT_USAGE and "--interventions" in err, err
    assert interventions.read_bytes() == before


@pytest.mark.parametrize("command", ["score", "indicators", "snapshots", "evaluate"])
def test_an_output_folder_that_is_the_spells_folder_is_refused(cli_data, tmp_path, capsys, command):
    folder = tmp_path / "spells"
    folder.mkdir()
    shutil.copy(cli_data / "spells.parquet", folder / "part-0.parquet")
    argv = {"score": ["score", "--model", str(tmp_path / "none"), "--as-of", AS_OF],
            "indicators": ["indicators", "--year", "2021"],
            "snapshots": ["snapshots", "--outcome", "revolving_door"],
            "evaluate": ["evaluate", "--interventions", str(cli_data / "interventions.parquet")]}[command]
    code, err = run_main([*argv, "--spells", str(folder), "--out", str(folder)], capsys)
    assert code == EXIT_USAGE and "is the --spells input" in err, err
    assert sorted(p.name for p in folder.iterdir()) == ["part-0.parquet"]


# ----------------------------------------------------------------- D5, D6: policy --save-model
def _policy(cli_data, tmp_path, *extra):
    return ["policy", "--spells", str(cli_data / "spells.parquet"), "--interventions", str(tmp_path / "int.parquet"),
            "--bootstrap", "5", "--out", str(tmp_path / "pol"), *extra]


def test_policy_save_model_over_an_input_is_refused(cli_data, tmp_path, capsys):
    shutil.copy(cli_data / "interventions.parquet", tmp_path / "int.parquet")
    before = (tmp_path / "int.parquet").read_bytes()
    code, err = run_main(_policy(cli_data, tmp_path, "--save-model", str(tmp_path / "int.parquet")), capsys)
    assert code == EXIT_USAGE, err  # not a .skops name
    code, err = run_main(_policy(cli_data, tmp_path, "--save-model", str(tmp_path / "x.pkl")), capsys)
    assert code == EXIT_USAGE and ".skops" in err, err
    (tmp_path / "int.skops").symlink_to(tmp_path / "int.parquet")
    code, err = run_main(_policy(cli_data, tmp_path, "--save-model", str(tmp_path / "int.skops")), capsys)
    assert code == EXIT_USAGE and "--save-model" in err and "--interventions" in err, err
    assert (tmp_path / "int.parquet").read_bytes() == before
    assert not (tmp_path / "pol").exists()


def test_policy_save_model_naming_a_folder_fails_before_any_work(cli_data, tmp_path, capsys, monkeypatch):
    import iizrisk.evaluation

    def never(*a, **k):
        raise AssertionError("the work started")

    monkeypatch.setattr(iizrisk.evaluation, "risk_set_table", never)
    shutil.copy(cli_data / "interventions.parquet", tmp_path / "int.parquet")
    (tmp_path / "m.skops").mkdir()
    code, err = run_main(_policy(cli_data, tmp_path, "--save-model", str(tmp_path / "m.skops")), capsys)
    assert code == EXIT_OS and "--save-model" in err and "folder" in err, err
    assert not (tmp_path / "pol").exists()


def test_policy_leaves_no_half_written_out(cli_data, tmp_path, capsys, monkeypatch):
    """A file of --out that cannot be written: no other file of the failed run stays, nor the saved model."""
    import iizrisk.benefit
    import iizrisk.evaluation
    from iizrisk.store import write_bytes_atomic, write_text_atomic

    class Model:  # the computation is not under test here: what the command writes, and when
        def __init__(self, **kwargs):
            pass

        def fit(self, table):
            return self

        def to_dir(self, path, **kwargs):
            return [write_text_atomic("x", path / "benefit_calibration.csv")]

        def attach_evidence(self, policies):
            return self

        def save(self, path):
            return write_bytes_atomic(b"model", path)

    class Policies:
        def to_dir(self, path, **kwargs):
            return [write_text_atomic("x", path / "policy_values.csv")]

    monkeypatch.setattr(iizrisk.evaluation, "risk_set_table", lambda *a, **k: None)
    monkeypatch.setattr(iizrisk.benefit, "BenefitModel", Model)
    monkeypatch.setattr(iizrisk.benefit, "evaluate_policies", lambda *a, **k: Policies())
    shutil.copy(cli_data / "interventions.parquet", tmp_path / "int.parquet")
    (tmp_path / "pol" / "policy_values.csv").mkdir(parents=True)  # stands in for a full disk
    code, err = run_main(_policy(cli_data, tmp_path, "--save-model", str(tmp_path / "b.skops")), capsys)
    assert code == EXIT_OS, err
    assert [p.name for p in (tmp_path / "pol").iterdir()] == ["policy_values.csv"]
    assert not (tmp_path / "b.skops").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int.parquet", "pol"]


# ----------------------------------------------------------------- D17: synth --out
def test_synth_refuses_a_folder_holding_other_files(tmp_path, capsys):
    synth = ["synth", "--persons", "10", "--start", "2020-01-01", "--end", "2021-12-31", "--exports"]
    dep = tmp_path / "deployment"
    (dep / "exports").mkdir(parents=True)
    (dep / "iizrisk.toml").write_text("# precious deployment\n")
    (dep / "exports" / "alv_rav_export.csv").write_text("keep\n")
    before = _tree(dep)
    code, err = run_main([*synth, "--out", str(dep)], capsys)
    assert code == EXIT_USAGE and "holds no earlier synthetic data" in err, err
    assert _tree(dep) == before
    (tmp_path / "file").write_text("x")
    assert run_main([*synth, "--out", str(tmp_path / "file")], capsys)[0] == EXIT_USAGE
    assert (tmp_path / "file").read_text() == "x"
    # new, empty, and an earlier synth output (replaced) are fine
    (tmp_path / "empty").mkdir()
    assert run_main([*synth, "--out", str(tmp_path / "empty")], capsys)[0] == 0
    assert run_main([*synth, "--out", str(tmp_path / "empty"), "--seed", "1"], capsys)[0] == 0


# ----------------------------------------------------------------- D14: all or none
def test_indicators_leave_no_half_written_out(cli_data, tmp_path, capsys):
    out = tmp_path / "ind"
    (out / "transitions.csv").mkdir(parents=True)  # stands in for a full disk
    code, err = run_main(["indicators", "--spells", str(cli_data / "spells.parquet"), "--year", "2021", "--out",
                          str(out)], capsys)
    assert code == EXIT_OS, err
    assert str(out / "transitions.csv") in err and ".tmp" not in err
    assert [p.name for p in out.iterdir()] == ["transitions.csv"]


def test_monitor_leaves_no_half_written_out(tmp_path, capsys):
    from iizrisk.monitoring import COLUMNS, _row
    from iizrisk.store import write_parquet_atomic

    for night in pd.date_range("2024-03-01", periods=3, freq="D"):
        rows = [_row("score", "share_high", 0.1, run_as_of=night),
                _row("churn", "jaccard", 0.8, institution="ALV", run_as_of=night)]
        table = pd.DataFrame(rows, columns=list(COLUMNS)).astype({"run_as_of": "datetime64[s]"})
        write_parquet_atomic(table, tmp_path / "h" / "monitoring" / f"as_of={night.date()}" / "part-0.parquet")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[output]\nhistory_dir = "h"\n')
    out = tmp_path / "m"
    (out / "report.html").mkdir(parents=True)  # the last file written
    code, err = run_main(["monitor", str(cfg), "--out", str(out)], capsys)
    assert code == EXIT_OS, err
    assert [p.name for p in out.iterdir()] == ["report.html"]
    (out / "report.html").rmdir()
    assert run_main(["monitor", str(cfg), "--out", str(out)], capsys)[0] == 0
    assert (out / "report.html").is_file() and (out / "monitoring_trends.csv").is_file()


def test_oversight_leaves_no_half_written_out(tmp_path, capsys):
    from iizrisk.config import Settings
    from iizrisk.history import HistoryStore

    day = pd.Timestamp("2024-01-25")
    cfg = Settings.from_dict({"output": {"dir": "runs", "history_dir": "history"}}, base_dir=tmp_path).save(
        tmp_path / "iizrisk.toml")
    h = HistoryStore(tmp_path / "history")
    h.write(day, worklists=pd.DataFrame({"institution": ["ALV"] * 8, "person_id": [f"p{i}" for i in range(8)]}))
    reviews = pd.DataFrame({"institution": "ALV", "person_id": [f"p{i}" for i in range(6)],
                            "review_date": day + pd.Timedelta(days=2), "decision": "not_suitable", "listed": True,
                            "band_at_review": "high", "case_id": "x", "note": "", "list_as_of": day,
                            "decided_by": "IIZ ALV"})
    h.write_reviews(reviews)
    out = tmp_path / "o"
    (out / "oversight.parquet").mkdir(parents=True)
    code, err = run_main(["oversight", str(cfg), "--out", str(out)], capsys)
    assert code == EXIT_OS, err
    assert [p.name for p in out.iterdir()] == ["oversight.parquet"]
    (out / "oversight.parquet").rmdir()
    assert run_main(["oversight", str(cfg), "--out", str(out)], capsys)[0] == 0
    assert {"oversight.csv", "oversight.parquet"} <= {p.name for p in out.iterdir()}
