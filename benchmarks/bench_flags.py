"""Benchmark of the timeline engine: build_timeline and compute_flags at one as-of date.

Random canonical spells (about 5 spells per person, 64-character hex
pseudonyms, 8 institutions, 2015-2024, 10% open, a recorded_date on every
row, 1% exact duplicates, rows in random order) are generated with numpy
inside this script and written to Parquet by one subprocess; a fresh
subprocess then runs what ``iizrisk flags`` runs: read the file, build the
point-in-time timeline, compute the flags. The table gives the wall time and
the CPU time (all threads) of each stage, and the peak resident memory of
that process so far (``ru_maxrss``, input data included). On a shared
machine the CPU time shows what a stage costs without waiting for a core.

A per-person ``groupby().apply`` version of the flags, on 200k spells, is
timed against :func:`iizrisk.flags.compute_flags` on the same timeline, and
their results are checked to be equal.

Usage::

    .venv/bin/python benchmarks/bench_flags.py                 # 1M and 3M spells + baseline
    .venv/bin/python benchmarks/bench_flags.py --sizes 1e6 3e6 1e7 --baseline 2e5

Targets: flags for 10M spells / 2M persons in <= 20 s and <= 4 GiB peak on
2 cores; the vectorised flags >= 100x faster than the groupby-apply version.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

AS_OF = "2024-06-30"
INSTITUTIONS = np.array(["ALV", "IV", "SH", "BB", "BSLB", "MIG", "UV", "KTG"])
SHARES = np.array([0.45, 0.15, 0.2, 0.05, 0.05, 0.04, 0.03, 0.03])


def make_spells(n_spells: int, n_persons: int, seed: int = 0) -> pd.DataFrame:
    """Random canonical spells, vectorised (no per-row Python)."""
    rng = np.random.default_rng(seed)
    hex_pairs = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")
    raw = rng.integers(0, 256, size=(n_persons, 32), dtype=np.uint8)
    ids = pa.array(np.ascontiguousarray(hex_pairs[raw]).view("S64").ravel(), type=pa.binary(64))
    ids = ids.cast(pa.string())
    n_base = int(n_spells * 0.99)
    person = rng.integers(0, n_persons, n_base)
    home = rng.choice(len(INSTITUTIONS), size=n_persons, p=SHARES)
    inst = np.where(rng.random(n_base) < 0.6, home[person],
                    rng.choice(len(INSTITUTIONS), size=n_base, p=SHARES))
    start = np.datetime64("2015-01-01") + rng.integers(0, 3650, n_base).astype("timedelta64[D]")
    end = (start + rng.geometric(1 / 200, n_base).astype("timedelta64[D]")).astype("datetime64[s]")
    # the export is taken on 2025-12-31: no end after it (a far-future end is refused as implausible)
    end = np.minimum(end, np.datetime64("2025-12-31", "s"))
    end[rng.random(n_base) < 0.1] = np.datetime64("NaT")
    known = np.where(np.isnat(end), start.astype("datetime64[s]"), end)
    recorded = known + rng.integers(0, 30, n_base).astype("timedelta64[D]")
    dup = rng.integers(0, n_base, n_spells - n_base)  # exact duplicates
    rows = np.concatenate([np.arange(n_base), dup])
    rows = rows[rng.permutation(len(rows))]
    return pd.DataFrame({
        "person_id": pd.Series(ids.take(pa.array(person[rows])), dtype="str"),
        "institution": pd.Series(pa.array(INSTITUTIONS[inst[rows]]), dtype="str"),
        "start_date": start[rows].astype("datetime64[s]"),
        "end_date": end[rows],
        "recorded_date": recorded[rows],
    })


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(n_spells: int, path: Path) -> None:
    """Write random canonical spells to a Parquet file (own process: its memory is not counted)."""
    df = make_spells(n_spells, n_spells // 5)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)


def run_pipeline(n_spells: int, path: Path) -> list[dict]:
    """The batch job's stages in a fresh process: read (CLI reader), build_timeline, compute_flags."""
    from iizrisk._commands.flags import _COLUMNS
    from iizrisk.flags import compute_flags
    from iizrisk.io import read_canonical
    from iizrisk.spells import build_timeline

    out = []

    def row(name, wall, cpu):
        out.append({"spells": n_spells, "stage": name, "seconds": round(wall, 2),
                    "cpu_seconds": round(cpu, 2), "peak_rss_mib": round(_peak_mib())})

    def stage(name, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        res = fn()
        row(name, time.perf_counter() - t0, time.process_time() - c0)
        return res

    out.append({"spells": n_spells, "stage": "python + imports", "peak_rss_mib": round(_peak_mib())})
    t_read, c_read = time.perf_counter(), time.process_time()
    df = stage("read parquet (CLI reader, 5 columns)", lambda: read_canonical(path, columns=list(_COLUMNS)))
    t0, c0 = time.perf_counter(), time.process_time()
    tl = stage("build_timeline(as_of)", lambda: build_timeline(df, as_of=AS_OF))
    flags = stage("compute_flags(timeline)", lambda: compute_flags(tl, AS_OF))
    t1, c1 = time.perf_counter(), time.process_time()
    row("flags from rows (build + flags)", t1 - t0, c1 - c0)
    row("read + build + flags", t1 - t_read, c1 - c_read)
    out.append({"spells": n_spells, "stage": f"({tl.n_persons:,} persons, {len(tl):,} merged spells, "
                f"{len(flags):,} flag rows)", "seconds": None, "peak_rss_mib": None})
    return out


# --------------------------------------------------------------------------- baseline
def _flags_one_person(g: pd.DataFrame, t: np.datetime64, w0: np.datetime64, gap: int) -> pd.Series:
    """The flags of one person written the usual way: numpy on the group's merged spells
    (NaT end = open), a short loop over the spells starting in the window."""
    inst = g["institution"].to_numpy()
    start = g["start_date"].to_numpy()
    end = g["end_date"].to_numpy()
    end = np.where(np.isnat(end), np.datetime64("9999-12-31"), end)
    registered = (start <= t) & (end >= t)
    in_window = (start <= t) & (end >= w0)
    win_inst, counts = np.unique(inst[in_window], return_counts=True)
    n_tr = n_re = 0
    for i in np.flatnonzero((start >= w0) & (start <= t)):
        earlier = start < start[i]
        other = earlier & (inst != inst[i])
        n_tr += bool((other & (end + np.timedelta64(gap, "D") >= start[i])).any())
        n_re += bool((earlier & (inst == inst[i])).any())
    n_reg = len(np.unique(inst[registered]))
    n_inst = len(win_inst)
    most = int(counts.max()) if n_inst else 0
    return pd.Series({
        "n_registered": n_reg, "multi_registered": n_reg >= 2,
        "n_institutions_window": n_inst, "multi_agency_window": n_inst >= 2,
        "n_spells_window": int(in_window.sum()), "max_spells_one_institution_window": most,
        "n_transitions_window": n_tr, "n_reentries_window": n_re,
        "revolving_door": n_inst >= 2 and most >= 2,
    })


def run_baseline(n_spells: int) -> list[dict]:
    from iizrisk import _time
    from iizrisk.flags import compute_flags
    from iizrisk.spells import build_timeline

    df = make_spells(n_spells, n_spells // 5, seed=1)
    tl = build_timeline(df, as_of=AS_OF)
    frame = tl.to_frame()
    frame["institution"] = frame["institution"].astype(str)
    t = np.datetime64(AS_OF, "s")
    w0 = np.datetime64(_time.to_date(_time.window_start(_time.day(AS_OF), 24)), "s")
    t0 = time.perf_counter()
    slow = frame.groupby("person_id", sort=False)[["institution", "start_date", "end_date"]].apply(
        _flags_one_person, t=t, w0=w0, gap=90)
    slow_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = compute_flags(tl, AS_OF)
    fast_s = time.perf_counter() - t0
    slow = slow[slow["n_spells_window"] > 0]
    same = (fast.set_index("person_id").drop(columns="as_of").astype(int)
            .equals(slow.loc[fast["person_id"]].astype(int)))
    return [{"spells": n_spells, "stage": "flags: groupby().apply per person", "seconds": round(slow_s, 2),
             "peak_rss_mib": None},
            {"spells": n_spells, "stage": "flags: compute_flags (vectorised)", "seconds": round(fast_s, 3),
             "peak_rss_mib": None},
            {"spells": n_spells, "stage": f"speed-up {slow_s / fast_s:,.0f}x, results equal: {same}",
             "seconds": None, "peak_rss_mib": None}]


def _child(*args: str) -> list[dict]:
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"benchmark step {args} failed:\n{res.stderr}")
    lines = res.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 3e6])
    ap.add_argument("--baseline", type=float, default=2e5, help="spells for the groupby-apply comparison "
                    "(0: skip)")
    ap.add_argument("--_generate", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--_pipeline", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--_baseline_only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._generate:
        generate(int(float(args._generate[0])), Path(args._generate[1]))
        return 0
    if args._pipeline:
        print(json.dumps(run_pipeline(int(float(args._pipeline[0])), Path(args._pipeline[1]))))
        return 0
    if args._baseline_only:
        print(json.dumps(run_baseline(int(args.baseline))))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = str(Path(tmp) / f"spells_{int(n)}.parquet")
            t0 = time.perf_counter()
            _child("--_generate", str(n), path)
            print(f"generated {int(n):,} spells in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            rows += _child("--_pipeline", str(n), path)
            Path(path).unlink()
    if args.baseline:
        rows += _child("--_baseline_only", "--baseline", str(args.baseline))
    table = pd.DataFrame(rows).reindex(columns=["spells", "stage", "seconds", "cpu_seconds",
                                                 "peak_rss_mib"])
    table["spells"] = table["spells"].map("{:,}".format)
    with pd.option_context("display.max_colwidth", 80, "display.width", 160):
        print(table.to_string(index=False, na_rep=""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
