"""Hostile and careless inputs of ingest, train, select, snapshots and policy: a clear error with its exit code,
before any work, and nothing of the user's replaced (each test failed before its fix)."""

from __future__ import annotations

import json
import os
import shutil
import stat

import numpy as np
import pandas as pd
import pytest

from conftest import run_main
from iizrisk.errors import ConfigError, ValidationError

DATES = ["2022-06-30", "2022-12-31", "2023-06-30"]


@pytest.fixture(scope="module")
def small_snapshots(random_spells, tmp_path_factory):
    from iizrisk.snapshots import build_snapshots

    return build_snapshots(random_spells.iloc[:1500].copy(), tmp_path_factory.mktemp("snaps") / "s", as_of=DATES,
                           buckets=2, horizon_months=6)


def _deployment(tmp_path, spells_parquet, path: str):
    from iizrisk.config import Settings

    (tmp_path / "exports").mkdir()
    shutil.copy(spells_parquet, tmp_path / "exports" / "all_2022.parquet")
    return Settings.from_dict({"sources": [{"name": "all", "path": path}]}, base_dir=tmp_path).save(
        tmp_path / "iizrisk.toml")


# ----------------------------------------------------------------- ingest
def test_ingest_refuses_an_out_that_the_sources_pattern_would_read_back(cli_data, tmp_path, capsys):
    cfg = _deployment(tmp_path, cli_data / "spells.parquet", "exports/all_*.parquet")
    out = tmp_path / "exports" / "all_spells.parquet"
    code, err = run_main(["ingest", str(cfg), "--out", str(out)], capsys)
    assert code == 2, err
    assert "matches the path 'exports/all_*.parquet' of the source 'all'" in err
    assert not out.exists()  # else the next night reads the canonical spells as one more export
    # a place the pattern does not match is written
    code, err = run_main(["ingest", str(cfg), "--out", str(tmp_path / "exports" / "spells.parquet")], capsys)
    assert code == 0, err


def test_ingest_and_policy_refuse_a_fifo_or_a_folder_as_their_output_file_before_any_work(cli_data, tmp_path,
                                                                                           capsys):
    fifo = tmp_path / "spells.parquet"
    os.mkfifo(fifo)
    code, err = run_main(["ingest", str(cli_data / "spells.parquet"), "--out", str(fifo)], capsys)
    assert code == 6, err
    assert "a FIFO, not a regular file" in err and "ingested" not in err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # not replaced by a file
    folder = tmp_path / "folder.parquet"
    folder.mkdir()
    # a missing source shows that the refusal comes before the input is read
    code, err = run_main(["ingest", str(tmp_path / "missing.parquet"), "--out", str(folder)], capsys)
    assert code == 6 and "is a folder where a file is expected" in err, err
    model_fifo = tmp_path / "benefit.skops"
    os.mkfifo(model_fifo)
    code, err = run_main(["policy", "--spells", str(cli_data / "spells.parquet"), "--interventions",
                          str(cli_data / "interventions.parquet"), "--out", str(tmp_path / "p"),
                          "--save-model", str(model_fifo)], capsys)
    assert code == 6 and "--save-model" in err and "a FIFO" in err, err
    assert stat.S_ISFIFO(os.lstat(model_fifo).st_mode) and not (tmp_path / "p").exists()


def test_policy_with_a_deployment_refuses_outputs_in_its_model_or_runs_folders(cli_data, tmp_path, capsys):
    from iizrisk.config import Settings

    shutil.copy(cli_data / "spells.parquet", tmp_path / "spells.parquet")
    shutil.copy(cli_data / "interventions.parquet", tmp_path / "interventions.parquet")
    cfg = Settings.from_dict({"sources": [{"name": "all", "path": "spells.parquet"}],
                              "deployment": {"interventions": "interventions.parquet"}},
                             base_dir=tmp_path).save(tmp_path / "iizrisk.toml")
    code, err = run_main(["policy", "--config", str(cfg), "--out", str(tmp_path / "p"), "--save-model",
                          str(tmp_path / "model" / "benefit.skops")], capsys)
    assert code == 2 and "[model] dir" in err, err  # `train` replaces that folder whole, and refuses a foreign file
    code, err = run_main(["policy", "--config", str(cfg), "--out", str(tmp_path / "runs" / "p")], capsys)
    assert code == 2 and "[output] dir" in err, err
    assert not (tmp_path / "model").exists() and not (tmp_path / "runs").exists()


# ----------------------------------------------------------------- train --spec
@pytest.mark.parametrize("spec, words", [
    ({"name": "x", "kind": "boosting", "params": "abc"}, "params must be a table"),
    ({"name": "x", "kind": "boosting", "params": [["max_iter"]]}, "params must be a table"),
    ({"name": "x", "kind": "boosting", "params": {}, "drop_groups": "history"}, "drop_groups must be a list"),
    ({"name": "x", "kind": "boosting", "params": {}, "drop_groups": ["nope"]}, "unknown feature group(s) ['nope']"),
    ({"name": 7, "kind": "boosting", "params": {}}, "name and kind must be texts"),
])
def test_a_selected_json_of_the_wrong_shape_is_a_configuration_error_naming_the_file(spec, words, tmp_path,
                                                                                      capsys):
    from iizrisk.selection import load_spec

    path = tmp_path / "selected.json"
    path.write_text(json.dumps({"spec": spec}), encoding="utf-8")
    with pytest.raises(ConfigError, match="selected.json") as exc:
        load_spec(path)
    assert words in str(exc.value)
    # on the command line: exit 2 before the spells are read (they do not exist here), never an internal error
    code, err = run_main(["train", "--spells", str(tmp_path / "none.parquet"), "--outcome", "revolving_door",
                          "--out", str(tmp_path / "m"), "--spec", str(path)], capsys)
    assert code == 2 and words in err, err


def test_a_specification_name_shaped_like_an_ahv_number_is_withheld_from_the_error():
    from iizrisk.selection import Spec

    with pytest.raises(ConfigError) as exc:
        Spec.from_dict({"name": "756.1234.5678.97", "kind": "boosting", "params": {"756.1234.5678.97": 1}})
    assert "1234" not in str(exc.value) and "unknown model parameter" in str(exc.value)


# ----------------------------------------------------------------- select
@pytest.mark.parametrize("text, words", [
    (b"\xff\xfe[selection]\n", "not UTF-8 text"),
    (b"[selection]\nreference = 5\n", "reference = 5: the name of a specification"),
    (b'[selection]\nreference = "boostin"\n', "reference = 'boostin' names no specification"),
])
def test_a_rule_file_that_would_be_ignored_or_crash_is_refused_before_any_work(text, words, tmp_path, capsys):
    rule = tmp_path / "rule.toml"
    rule.write_bytes(text)
    code, err = run_main(["select", "--snapshots", str(tmp_path / "none"), "--out", str(tmp_path / "o"),
                          "--rule", str(rule)], capsys)
    assert code == 2 and words in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("specs, words", [
    (",", "names no specification"),
    ("last_list", "only the yardsticks ['last_list']"),
    ("bfs_rule,last_list", "only the yardsticks ['bfs_rule', 'last_list']"),
])
def test_specs_with_nothing_to_choose_are_refused_before_any_work(specs, words, small_snapshots, tmp_path, capsys):
    code, err = run_main(["select", "--snapshots", str(small_snapshots.path), "--out", str(tmp_path / "o"),
                          "--specs", specs], capsys)
    assert code == 2 and words in err, err
    assert "split" not in err and not (tmp_path / "o").exists()


def test_an_unknown_metric_is_named_as_the_option_given(small_snapshots, tmp_path, capsys):
    code, err = run_main(["select", "--snapshots", str(small_snapshots.path), "--out", str(tmp_path / "o"),
                          "--metric", "auc"], capsys)
    assert code == 2 and "--metric 'auc'" in err and "roc_auc" in err, err
    assert "[selection]" not in err and not (tmp_path / "o").exists()


def test_rolling_evaluation_refuses_a_grid_without_a_model():
    from iizrisk.selection import Spec, rolling_evaluation

    for grid in ([], [Spec("last_list", "last_list")]):
        with pytest.raises(ConfigError, match="specification"):
            rolling_evaluation("no such folder", grid=grid)  # refused before the dataset is opened


def test_a_seed_above_the_maximum_names_the_maximum(tmp_path, capsys):
    code, err = run_main(["select", "--snapshots", str(tmp_path), "--out", str(tmp_path / "o"),
                          "--seed", "4294967296"], capsys)
    assert code == 2 and "2**32 - 1" in err and "<withheld>" not in err, err


# ----------------------------------------------------------------- snapshot datasets
@pytest.mark.parametrize("meta", ["[]", "null", "{}", '{"as_of": ["x"], "buckets": 2, "outcome": "revolving_door", '
                                  '"horizon_months": 12, "observed_until": "2022-12-31", "features": {}}'])
def test_a_dataset_json_not_written_by_snapshots_is_invalid_input_not_an_internal_error(meta, tmp_path, capsys):
    from iizrisk.snapshots import SnapshotSet

    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "dataset.json").write_text(meta, encoding="utf-8")
    with pytest.raises(ValidationError, match="not a dataset written by `iizrisk snapshots`"):
        SnapshotSet.open(tmp_path / "s")
    code, err = run_main(["train", "--snapshots", str(tmp_path / "s"), "--outcome", "revolving_door",
                          "--out", str(tmp_path / "m")], capsys)
    assert code == 1 and "dataset.json" in err, err
    assert not (tmp_path / "m").exists()


def test_a_damaged_or_foreign_partition_is_named_with_the_fix(small_snapshots, tmp_path):
    snaps_dir = tmp_path / "s"
    shutil.copytree(small_snapshots.path, snaps_dir)
    from iizrisk.snapshots import SnapshotSet

    part = SnapshotSet.open(snaps_dir).partition(DATES[1], 1)
    part.write_bytes(b"not parquet")
    with pytest.raises(ValidationError, match=r"bucket=001\.parquet: not a partition of this dataset"):
        SnapshotSet.open(snaps_dir).read()
    pd.DataFrame({"a": [1]}).to_parquet(part)  # a readable Parquet file of other columns
    with pytest.raises(ValidationError, match="do not share their columns|not a partition"):
        SnapshotSet.open(snaps_dir).read()


def test_snapshots_are_not_mixed_into_a_folder_of_other_files(random_spells, tmp_path):
    from iizrisk.snapshots import build_snapshots

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"holds other files \(notes\.txt\)"):
        build_snapshots(random_spells.iloc[:300].copy(), out, as_of=DATES, buckets=1, horizon_months=6)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # a leftover hidden file of a build that stopped does not count
    (out / "notes.txt").unlink()
    (out / ".dataset.json.tmp").write_text("", encoding="utf-8")
    snaps = build_snapshots(random_spells.iloc[:300].copy(), out, as_of=DATES, buckets=1, horizon_months=6)
    assert not snaps.missing()


def test_snapshots_from_after_to_is_named_as_reversed(cli_data, tmp_path, capsys):
    code, err = run_main(["snapshots", "--spells", str(cli_data / "spells.parquet"), "--outcome", "revolving_door",
                          "--out", str(tmp_path / "s"), "--from", "2021-12-31", "--to", "2020-12-31"], capsys)
    assert code == 2 and "--from 2021-12-31 lies after --to 2020-12-31" in err, err
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------- benefit input checks
def _table(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.random(n) < 1 / (1 + np.exp(1 - 0.5 * x))
    y = rng.random(n) < 0.3 + 0.1 * x.clip(-2, 2) - t * 0.1 * (x > 0)
    return pd.DataFrame({"person_id": np.arange(n).astype(str), "x": x, "treated": t,
                         "revolving_door_next_12m": y.astype(float), "index_date": pd.Timestamp("2020-01-31")})


def test_a_table_without_an_observed_outcome_says_so_not_that_no_covariate_varies():
    from iizrisk.benefit import BenefitModel

    table = _table()
    table["revolving_door_next_12m"] = np.nan  # the horizon reaches past the data for everyone
    with pytest.raises(ValidationError, match="no row with an observed 'revolving_door_next_12m'"):
        BenefitModel(covariates=["x"], population="all", random_state=0).fit(table)
    with pytest.raises(ValidationError, match="it has no rows"):
        BenefitModel(covariates=["x"], population="all", random_state=0).fit(_table().iloc[:0])


def test_benefit_settings_out_of_range_are_configuration_errors():
    from iizrisk.benefit import BenefitModel, evaluate_policies

    table = _table()
    for kw in ({"n_groups": 0}, {"n_groups": "x"}, {"alpha": 2.0}, {"alpha": float("nan")}):
        with pytest.raises(ConfigError, match=next(iter(kw))):
            BenefitModel(covariates=["x"], population="all", random_state=0, **kw).fit(table)
    m = BenefitModel(covariates=["x"], population="all", random_state=0).fit(table)
    for kw in ({"n_bootstrap": -1}, {"alpha": float("nan")}):
        with pytest.raises(ConfigError, match=next(iter(kw))):
            evaluate_policies(m, random_state=0, **kw)
    assert len(evaluate_policies(m, n_bootstrap=0, random_state=0).values)
