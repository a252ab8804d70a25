"""The Dask path: the same bytes and tables as one process, on a LocalCluster of 2 worker processes.

Workers are separate processes (``processes=True``): what a task receives is
pickled, what it writes goes through the shared folder, as on a real cluster.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_main
from iizrisk.errors import ConfigError
from iizrisk.snapshots import SnapshotSet, build_snapshots

distributed = pytest.importorskip("distributed")

DATES = ["2022-06-30", "2022-12-31", "2023-06-30"]


@pytest.fixture(scope="module")
def client():
    from iizrisk.distributed import dask_client

    with dask_client(workers=2, memory_limit="2GiB") as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture(scope="module")
def spells(random_spells):
    return random_spells.iloc[:3000].copy()


@pytest.fixture(scope="module")
def interventions(spells):
    rng = np.random.default_rng(4)
    ids = spells["person_id"].drop_duplicates().to_numpy()
    who = rng.choice(ids, size=len(ids) // 3, replace=False)
    return pd.DataFrame({"person_id": who,
                         "date": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, len(who)), "D"),
                         "type": rng.choice(["joint_assessment", "case_management"], len(who))})


def _files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ snapshots
@pytest.mark.parametrize("outcome", ["revolving_door", "disintegration"])
def test_snapshot_partitions_are_byte_identical_to_one_process(client, spells, interventions, tmp_path, outcome):
    kw = {"as_of": DATES, "buckets": 5, "horizon_months": 6, "interventions": interventions, "outcome": outcome}
    one = build_snapshots(spells, tmp_path / "one", **kw)
    dask = build_snapshots(spells, tmp_path / "dask", client=client, **kw)
    a, b = _files(one.path), _files(dask.path)
    assert len([k for k in a if k.endswith(".parquet")]) == 15
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []  # dataset.json included
    # the reading side sees the same snapshots, and they are not empty
    X, labels = dask.read()
    assert len(X) > 100 and labels["outcome"].notna().any()


def test_a_build_stopped_in_one_process_is_finished_on_dask(client, spells, tmp_path, monkeypatch):
    import iizrisk.snapshots as mod

    out = tmp_path / "s"
    real = mod.write_parquet_atomic
    calls = {"n": 0}

    def crash_after_five(df, path):
        if calls["n"] == 5:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(df, path)

    monkeypatch.setattr(mod, "write_parquet_atomic", crash_after_five)
    with pytest.raises(KeyboardInterrupt):
        build_snapshots(spells, out, as_of=DATES, buckets=4, horizon_months=6)
    monkeypatch.setattr(mod, "write_parquet_atomic", real)
    assert len(SnapshotSet.open(out).missing()) == 12 - 5
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    done = build_snapshots(spells, out, as_of=DATES, buckets=4, horizon_months=6, client=client)
    assert done.missing() == []
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # finished partitions are not rewritten
    fresh = build_snapshots(spells, tmp_path / "fresh", as_of=DATES, buckets=4, horizon_months=6)
    assert _files(fresh.path) == _files(out)


def _crash_on_worker(after: int) -> None:
    """On a worker: make ``write_parquet_atomic`` fail after ``after`` more writes in this process."""
    import iizrisk.snapshots as mod
    import iizrisk.store as store

    left = {"n": after}

    def write(df, path):
        if left["n"] == 0:
            raise OSError("disk full (simulated)")
        left["n"] -= 1
        return store.write_parquet_atomic(df, path)

    mod.write_parquet_atomic = write


def _restore_on_worker() -> None:
    import iizrisk.snapshots as mod
    import iizrisk.store as store

    mod.write_parquet_atomic = store.write_parquet_atomic


def test_a_failing_worker_leaves_complete_partitions_and_the_build_resumes(client, spells, tmp_path):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    out = tmp_path / "s"
    ref = build_snapshots(spells, tmp_path / "ref", as_of=DATES, buckets=6, horizon_months=6)
    client.run(_crash_on_worker, 2)
    try:
        with pytest.raises(OSError, match="simulated"):
            build_snapshots(spells, out, as_of=DATES, buckets=6, horizon_months=6, client=client)
    finally:
        client.run(_restore_on_worker)
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    partial = SnapshotSet.open(out)
    written = _files(out)
    n = len([k for k in written if k.endswith(".parquet")])
    assert 0 < n < 18 and len(partial.missing()) == 18 - n
    assert not list(out.rglob("*.tmp"))  # complete or absent: the running tasks were waited for
    want = _files(ref.path)
    assert all(written[k] == want[k] for k in written)
    build_snapshots(spells, out, as_of=DATES, buckets=6, horizon_months=6, client=client)
    assert _files(out) == want


def test_a_worker_that_does_not_see_the_folder_refuses_to_write(tmp_path):
    from iizrisk.features import PointInTimeFeatures
    from iizrisk.snapshots import _bucket_task

    with pytest.raises(ConfigError, match="storage every worker mounts"):
        _bucket_task(str(tmp_path / "elsewhere" / "dataset.json"), PointInTimeFeatures().fit(), pd.DataFrame(),
                     None, [], [], "revolving_door", 12, 0)
    assert not (tmp_path / "elsewhere").exists()


# ------------------------------------------------------------------ the research study's risk-set table
@pytest.fixture(scope="module")
def population():
    from iizrisk import synth

    return synth.generate(1200, "2015-01-01", "2022-12-31", seed=11, effect=0.3)


STUDY_CASES = {
    "sampled controls": {"period": ("2019-01-01", "2019-12-31"), "controls_per_treated": 20, "random_state": 3},
    "episode window, all outcomes": {
        "period": ("2020-01-01", "2020-12-31"), "controls_per_treated": 5, "episode_days": (14, 200),
        "outcomes": ["revolving_door", "disintegration", "days_registered_next_12m", "new_spells_next_24m"],
        "random_state": 1},
    "recorded view, every control": {"period": ("2019-01-01", "2019-12-31"), "controls_per_treated": None,
                                     "covariate_view": "recorded", "merge_gap_days": 3,
                                     "outcomes": ["revolving_door", "days_registered_next_24m"]},
}


@pytest.mark.parametrize("case", list(STUDY_CASES))
def test_the_risk_set_table_on_dask_is_identical(client, population, case):
    from iizrisk.evaluation import risk_set_table

    kw = STUDY_CASES[case]
    one = risk_set_table(population.spells, population.interventions, **kw)
    dask = risk_set_table(population.spells, population.interventions, client=client, buckets=2, **kw)
    assert len(one) > 50 and one["treated"].sum() >= 5 and not one["treated"].all()
    pd.testing.assert_frame_equal(dask, one, check_exact=True)
    assert dask.attrs == one.attrs


def test_a_bucket_of_the_table_is_the_table_of_its_persons(population):
    # the per-person work of a bucket alone gives the bucket's rows of the whole table (no cluster needed)
    from iizrisk.evaluation import risk_set_table
    from iizrisk.snapshots import person_bucket

    kw = {"period": ("2019-01-01", "2019-12-31"), "controls_per_treated": None,
          "outcomes": ["revolving_door", "days_registered_next_12m"]}
    whole = risk_set_table(population.spells, population.interventions, **kw)
    mine = person_bucket(population.spells["person_id"], 2) == 0
    ivm = person_bucket(population.interventions["person_id"], 2) == 0
    part = risk_set_table(population.spells[mine], population.interventions[ivm], **kw)
    # the days the bucket's own assessed define; on them, every registered person of the bucket in both
    want = whole[(person_bucket(whole["person_id"], 2) == 0)
                 & whole["index_date"].isin(part["index_date"])].reset_index(drop=True)
    assert len(want) > 50
    cols = [c for c in whole.columns if c != "sampling_weight"]  # the weights depend on the risk set's size
    pd.testing.assert_frame_equal(part[cols], want[cols], check_exact=True)


def test_study_arguments_on_dask_are_checked(client, population, monkeypatch):
    from iizrisk.evaluation import risk_set_table

    with pytest.raises(ValueError, match="buckets"):
        risk_set_table(population.spells, population.interventions, client=client, buckets=0)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ConfigError, match=r"iizrisk\[dask\]"):
        risk_set_table(population.spells, population.interventions, client=client)


# ------------------------------------------------------------------ the command line


@pytest.fixture
def cluster_of_the_cli(client, monkeypatch):
    """``--dask`` gets the module's LocalCluster (one cluster for all tests); what it asked for is recorded."""
    from contextlib import contextmanager

    import iizrisk.distributed as mod

    asked: list = []

    @contextmanager
    def reuse(address=None, **kwargs):
        asked.append((address, kwargs))
        yield client

    monkeypatch.setattr(mod, "dask_client", reuse)
    return asked


def test_cli_snapshots_with_dask_writes_the_same_dataset(cluster_of_the_cli, spells, tmp_path, capsys):
    from iizrisk.store import write_parquet_atomic

    src = write_parquet_atomic(spells, tmp_path / "spells.parquet")
    base = ["-q", "snapshots", "--spells", str(src), "--outcome", "revolving_door", "--from", "2022-10-31",
            "--to", "2023-01-31", "--buckets", "3", "--horizon-months", "3"]
    assert run_main([*base, "--out", str(tmp_path / "one")], capsys)[0] == 0
    assert cluster_of_the_cli == []
    assert run_main([*base, "--out", str(tmp_path / "dask"), "--dask", "--workers", "3"], capsys)[0] == 0
    assert cluster_of_the_cli == [(None, {"workers": 3})]
    a, b = _files(tmp_path / "one"), _files(tmp_path / "dask")
    assert len(a) == 1 + 4 * 3 and a == b


def test_cli_evaluate_with_dask_writes_the_same_tables(cluster_of_the_cli, population, tmp_path, capsys):
    from iizrisk.store import write_parquet_atomic

    sp = write_parquet_atomic(population.spells, tmp_path / "spells.parquet")
    iv = write_parquet_atomic(population.interventions, tmp_path / "interventions.parquet")
    base = ["-q", "evaluate", "--spells", str(sp), "--interventions", str(iv), "--outcome",
            "days_registered_next_12m", "--from", "2019-01-01", "--to", "2020-12-31", "--controls-per-treated", "5",
            "--bootstrap", "5", "--min-cell-size", "1"]
    assert run_main([*base, "--out", str(tmp_path / "one")], capsys)[0] == 0
    assert run_main([*base, "--out", str(tmp_path / "dask"), "--dask", "tcp://scheduler.example:8786"], capsys)[0] == 0
    assert cluster_of_the_cli == [("tcp://scheduler.example:8786", {"workers": 2})]
    a, b = _files(tmp_path / "one"), _files(tmp_path / "dask")
    assert "estimates.csv" in a and a.keys() == b.keys()
    assert [k for k in a if k.endswith((".csv", ".png")) and a[k] != b[k]] == []
    one, dask = (json.loads(x["study.json"]) for x in (a, b))
    assert one["parameters"].pop("out") != dask["parameters"].pop("out")
    assert one == dask


@pytest.mark.parametrize("extra, message", [
    (["--workers", "2"], "add --dask"),
    (["--dask", "tcp://h:8786", "--workers", "2"], "has its own workers"),
    (["--dask", "tcp:// h"], "without spaces"),
    (["--dask", "--workers", "0"], "not between 1 and"),
])
def test_cli_dask_options_are_checked_before_any_work(extra, message, tmp_path, capsys):
    argv = ["snapshots", "--spells", str(tmp_path / "absent.parquet"), "--outcome", "revolving_door",
            "--out", str(tmp_path / "s"), *extra]
    code, err = run_main(argv, capsys)
    assert code == 2 and message in err and not (tmp_path / "s").exists()
    assert "absent.parquet" not in err  # refused before reading the spells


def test_cli_without_dask_says_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)
    code, err = run_main(["snapshots", "--spells", str(tmp_path / "absent.parquet"), "--outcome", "revolving_door",
                       "--out", str(tmp_path / "s"), "--dask"], capsys)
    assert code == 2 and "pip install 'iizrisk[dask]'" in err


# ------------------------------------------------------------------ the client
def test_without_dask_the_error_names_the_extra(monkeypatch, spells, tmp_path):
    from iizrisk.distributed import dask_client, require_dask

    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'iizrisk\[dask\]'"):
        require_dask()
    with pytest.raises(ConfigError, match=r"iizrisk\[dask\]"), dask_client():
        pass
    with pytest.raises(ConfigError, match=r"iizrisk\[dask\]"):
        build_snapshots(spells, tmp_path / "s", as_of=DATES, buckets=2, client=object())
    assert not (tmp_path / "s").exists()  # refused before anything is written


def test_workers_with_other_versions_are_refused():
    from iizrisk.distributed import _versions, check_workers

    class Fake:
        def __init__(self, versions):
            self.versions = versions

        def run(self, fn):
            return {"tcp://w1:1": _versions(), "tcp://w2:1": self.versions}

    assert check_workers(Fake(_versions())) == 2
    with pytest.raises(ConfigError, match="pyarrow 0.1 on tcp://w2:1"):
        check_workers(Fake(_versions() | {"pyarrow": "0.1"}))


def test_client_arguments_are_checked():
    from iizrisk.distributed import start_client

    with pytest.raises(ConfigError, match="workers"):
        start_client(workers=0)
    with pytest.raises(ConfigError, match="address"):
        start_client("   ")
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        start_client("tcp://127.0.0.1:9", timeout=1)


def test_dask_settings_of_the_deployment_reach_the_client(monkeypatch, tmp_path):
    """``--dask --config TOML`` takes the [dask] scheduler (or the LocalCluster's workers) from the settings;
    a command line value wins for the workers, and wrong settings are refused."""
    import argparse
    from contextlib import contextmanager

    import iizrisk.distributed as distributed
    from iizrisk._commands.snapshots import dask_from_args
    from iizrisk.errors import ConfigError

    seen = []

    @contextmanager
    def fake_client(address=None, **kwargs):
        seen.append((address, kwargs.get("workers")))
        yield object()

    monkeypatch.setattr(distributed, "dask_client", fake_client)
    toml = tmp_path / "iizrisk.toml"

    def client_of(text, **args):
        toml.write_text(text, encoding="utf-8")
        ns = argparse.Namespace(**{"dask": "", "workers": None, "config": toml, **args})
        with dask_from_args(ns):
            pass
        return seen.pop()

    assert client_of('[dask]\nscheduler = "tcp://10.0.0.5:8786"\n') == ("tcp://10.0.0.5:8786", 2)
    assert client_of("[dask]\nworkers = 3\n") == (None, 3)
    assert client_of("[dask]\nworkers = 3\n", workers=1) == (None, 1)
    assert client_of('[dask]\nscheduler = "tcp://a:1"\n', dask="tcp://b:2") == ("tcp://b:2", 2)
    with pytest.raises(ConfigError, match="names the scheduler"):
        client_of('[dask]\nscheduler = "tcp://a:1"\n', workers=2)
    for bad, word in (('scheduler = "tcp:// a"', "without spaces"), ("workers = 0", "1 to 1024")):
        with pytest.raises(ConfigError, match=word):
            client_of(f"[dask]\n{bad}\n")
