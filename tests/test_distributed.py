"""The Dask path: the same bytes and tables as one process, on a LocalCluster of 2 worker processes.

Workers are separate processes (``processes=True``): what a task receives is
pickled, what it writes goes through the shared folder, as on a real cluster.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
