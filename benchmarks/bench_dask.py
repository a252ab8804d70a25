"""The snapshot build on Dask against one process: wall time, CPU time and memory per worker.

    .venv/bin/python benchmarks/bench_dask.py                                  # 200k persons, 6 month ends
    .venv/bin/python benchmarks/bench_dask.py --persons 50000 --dates 4 --workers 1 2
    .venv/bin/python benchmarks/bench_dask.py --persons 100000 --study-months 3   # and the study table

The same cached synthetic population (``train_scale.population``: a
calibrated canton, 2012-2024) is built into a snapshot dataset three ways:
in this process (``build_snapshots``), and on a LocalCluster of 1 and of 2
worker processes (``build_snapshots(..., client=)``). Each build writes a
fresh folder; the Dask folders are compared byte for byte with the
single-process one.

Columns: ``wall_s`` the build (cluster start-up and the workers' first imports
excluded, shown apart as ``cluster_start_s``);
``client_cpu_s`` this process's CPU time during the build (hashing the
pseudonyms, splitting the spells into buckets, sending them: the part that
does not parallelise); ``worker_cpu_s`` the workers' CPU time, summed;
``peak_worker_mib`` the largest peak resident memory of a worker process
(``ru_maxrss``) and ``worker_base_mib`` the same before the build (imports),
so that their difference is what one bucket's build needs. ``peak_rss_mib``
of the single process is its own peak while building (the spells it holds
included). The machine may be shared: CPU times are steadier than wall times.

The projection to 8 and 32 workers assumes the workers' CPU time divides
evenly among them (buckets >= 4 x workers, so that no worker waits for the
last big bucket) and adds the measured client part, which does not shrink.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import CACHE, machine, print_table, stage  # noqa: E402


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _worker_usage(reset: bool = False) -> dict:
    """On a worker: CPU seconds (user, system), page faults, resident and peak resident memory (MiB).

    The peak is the kernel's high-water mark of this process (``VmHWM``); ``reset`` sets it back to the
    current size (``ru_maxrss`` would not do: a worker forked from a large process inherits its peak).
    """
    import resource as r

    if reset:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    u = r.getrusage(r.RUSAGE_SELF)
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    return {"user": u.ru_utime, "sys": u.ru_stime, "faults": u.ru_minflt + u.ru_majflt,
            "rss_mib": int(status["VmRSS"].split()[0]) / 1024, "hwm_mib": int(status["VmHWM"].split()[0]) / 1024}


def _warm() -> None:
    """On a worker: import what the tasks use (a long-lived cluster has done it before the first build)."""
    import iizrisk.evaluation._study
    import iizrisk.snapshots  # noqa: F401


def _on_cluster(rows: list, w: int, memory: str, common: dict, work):
    """Start a LocalCluster of ``w`` workers, import on them, run ``work(client)``; append its costs."""
    from iizrisk.distributed import dask_client

    t = time.perf_counter()
    with dask_client(workers=w, memory_limit=memory) as client:
        client.wait_for_workers(w)
        client.run(_warm)
        start_s = time.perf_counter() - t
        base = client.run(_worker_usage, True)
        c0 = time.process_time()
        with stage(rows, f"LocalCluster, {w} worker{'s' if w > 1 else ''}", **common):
            result = work(client)
        after = client.run(_worker_usage)
    r = rows[-1]
    r.update(wall_s=r.pop("seconds"), client_cpu_s=round(time.process_time() - c0, 1),
             worker_cpu_s=round(sum(after[a][k] - base[a][k] for a in after for k in ("user", "sys")), 1),
             worker_sys_s=round(sum(after[a]["sys"] - base[a]["sys"] for a in after), 1),
             peak_worker_mib=round(max(v["hwm_mib"] for v in after.values())),
             worker_base_mib=round(max(v["rss_mib"] for v in base.values())),
             cluster_start_s=round(start_s, 1))
    return result


def run_study(persons: int, months: int, workers: list[int], memory: str) -> list[dict]:
    """The research study's risk-set table: one process against the LocalClusters (identical tables)."""
    import pandas as pd

    from iizrisk import _time
    from iizrisk.evaluation import risk_set_table
    from iizrisk.io import read_canonical, read_interventions
    from iizrisk.outcomes import observed_until
    from train_scale import population

    pop = population(persons)
    spells = read_canonical(pop / "spells.parquet")
    iv = read_interventions(pop / "interventions.parquet")
    end = int(_time.add_months(observed_until(spells), -12))
    period = (_time.to_date(int(_time.add_months(end, -months))), _time.to_date(end))
    kw = {"period": period, "controls_per_treated": 50, "random_state": 0}
    rows: list[dict] = []
    common = {"persons": int(spells["person_id"].nunique()), "period": f"{period[0]} to {period[1]}"}
    c0 = time.process_time()
    with stage(rows, "one process", **common):
        ref = risk_set_table(spells, iv, **kw)
    rows[-1].update(wall_s=rows[-1].pop("seconds"), client_cpu_s=round(time.process_time() - c0, 1),
                    table_rows=len(ref), index_days=int(ref["index_date"].nunique()))
    for w in workers:
        got = _on_cluster(rows, w, memory, common, lambda client: risk_set_table(spells, iv, client=client, **kw))
        try:
            pd.testing.assert_frame_equal(got, ref, check_exact=True)
            rows[-1]["identical"] = got.attrs == ref.attrs
        except AssertionError:
            rows[-1]["identical"] = False
    return rows


def run(persons: int, n_dates: int, buckets: int, workers: list[int], memory: str) -> tuple[list, list]:
    from iizrisk.io import read_canonical
    from iizrisk.snapshots import build_snapshots, default_dates
    from train_scale import population

    pop = population(persons)
    t = time.perf_counter()
    spells = read_canonical(pop / "spells.parquet")
    read_s = time.perf_counter() - t
    n_persons = int(spells["person_id"].nunique())
    dates = default_dates(spells)[-(n_dates + 12):-12][:n_dates]  # labels observed: 12 months before the end
    out = CACHE / f"dask_snaps_{persons}"
    shutil.rmtree(out, ignore_errors=True)
    kw = {"as_of": dates, "buckets": buckets, "horizon_months": 12, "progress": False}
    rows: list[dict] = []
    common = {"persons": n_persons, "spells": len(spells), "dates": len(dates), "buckets": buckets}

    c0 = time.process_time()
    with stage(rows, "one process", **common):
        build_snapshots(spells, out / "single", **kw)
    rows[-1].update(wall_s=rows[-1].pop("seconds"), client_cpu_s=round(time.process_time() - c0, 1))
    ref = _digest(out / "single")

    for w in workers:
        folder = out / f"dask{w}"
        _on_cluster(rows, w, memory, common,
                    lambda client, folder=folder: build_snapshots(spells, folder, client=client, **kw))
        rows[-1]["identical"] = _digest(folder) == ref
    shutil.rmtree(out, ignore_errors=True)

    # what more workers buy, from the 1-worker run: the workers' CPU divides, the client's does not
    single = rows[0]
    one = next((r for r in rows if r["stage"].startswith("LocalCluster, 1 ")), rows[-1])
    serial = one["client_cpu_s"]
    per_bucket_mib = one["peak_worker_mib"] - one["worker_base_mib"]
    persons_per_bucket = n_persons / buckets
    proj = []
    for w in (1, 2, 8, 32):
        wall = serial + one["worker_cpu_s"] / w
        proj.append({"workers": w, "buckets (>= 4 x workers)": max(buckets, 4 * w),
                     "worker_s_each": round(one["worker_cpu_s"] / w, 1), "client_s": serial,
                     "projected_wall_s": round(wall, 1),
                     "vs one process (CPU s)": f"{single['client_cpu_s'] / wall:.2f}x"})
    print(f"\nreading the spells: {read_s:.1f} s (on the client, not parallel, before either build); one bucket "
          f"= {persons_per_bucket:,.0f} persons; the Dask path's CPU time (client + workers, 1 worker) is "
          f"{(serial + one['worker_cpu_s']) / single['client_cpu_s'] - 1:+.0%} against one process; a worker's "
          f"peak is {per_bucket_mib} MiB above its {one['worker_base_mib']} MiB after the imports, i.e. about "
          f"{per_bucket_mib / persons_per_bucket * 1e6:,.0f} MiB per million persons in its buckets in flight "
          f"(2 per worker thread)", file=sys.stderr)
    return rows, proj


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=200_000)
    ap.add_argument("--dates", type=int, default=6, help="month ends (the last ones with an observed horizon)")
    ap.add_argument("--buckets", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--memory", default="auto", help="memory limit per worker (dask syntax, e.g. 4GiB)")
    ap.add_argument("--study-months", type=int, default=0,
                    help="also build the research study's risk-set table of this many months of assessments "
                         "(ending 12 months before the data's end) on the same population (0: no)")
    args = ap.parse_args(argv)
    print(machine(), file=sys.stderr)
    rows, proj = run(args.persons, args.dates, args.buckets, args.workers, args.memory)
    print_table(rows, "Snapshot build: one process against a LocalCluster (cluster start-up excluded)")
    print_table(proj, "Projection from the 1-worker run: workers' CPU divided, the client's part kept")
    if args.study_months:
        study = run_study(args.persons, args.study_months, args.workers, args.memory)
        print_table(study, "The study's risk-set table: one process against a LocalCluster (a bucket per worker)")
        rows += study
    if not all(r.get("identical", True) for r in rows):
        print("\nThe Dask results differ from the single-process ones", file=sys.stderr)
        return 1
    return 0 if math.isfinite(rows[0]["wall_s"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
