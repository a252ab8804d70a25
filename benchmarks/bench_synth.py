"""Benchmark of the synthetic population: wall time and peak memory per size.

Each size runs in a fresh Python process that generates the population
(:func:`iizrisk.synth.generate`, 10 years by default) and, unless
``--no-write``, writes the canonical Parquet files
(:meth:`~iizrisk.synth.SyntheticPopulation.to_dir`) to a temporary folder.
The table gives the persons, spell rows, persons simulated at risk, the wall
time and CPU time of each step and the process's peak resident memory
(``ru_maxrss``: everything the process ever held, imports included).

Usage::

    .venv/bin/python benchmarks/bench_synth.py                      # 100k, 1M persons
    .venv/bin/python benchmarks/bench_synth.py --sizes 1e6 2e6 --years 10

Targets (2 cores): 1M persons over 10 years in <= 60 s and <= 8 GiB; 2M persons
(about 5M-10M spell rows) must be possible.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, tempfile, time
import iizrisk.synth as synth
n, start, end, write = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
t0, c0 = time.perf_counter(), time.process_time()
pop = synth.generate(n, start, end, seed=2024)
gen_s, gen_cpu = time.perf_counter() - t0, time.process_time() - c0
write_s = write_cpu = 0.0
if write:
    with tempfile.TemporaryDirectory() as d:
        t1, c1 = time.perf_counter(), time.process_time()
        pop.to_dir(d)
        write_s, write_cpu = time.perf_counter() - t1, time.process_time() - c1
print(json.dumps({
    "persons": n, "spell_rows": len(pop.spells), "at_risk": pop.meta["n_at_risk"],
    "rows_per_person": round(len(pop.spells) / max(n, 1), 2),
    "assessed": int(pop.truth["assessed"].sum()),
    "generate_s": round(gen_s, 1), "generate_cpu_s": round(gen_cpu, 1),
    "write_s": round(write_s, 1), "write_cpu_s": round(write_cpu, 1),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
}))
"""


def run_one(n: int, start: str, end: str, write: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), start, end, "1" if write else "0"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6], help="persons per run")
    ap.add_argument("--years", type=int, default=10, help="length of the period (ending 2024-12-31)")
    ap.add_argument("--no-write", action="store_true", help="do not time writing the Parquet files")
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    end = "2024-12-31"
    start = f"{2024 - args.years + 1}-01-01"
    rows = []
    for n in args.sizes:
        row = run_one(int(n), start, end, not args.no_write)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    cols = ["persons", "spell_rows", "rows_per_person", "at_risk", "generate_s", "generate_cpu_s",
            "write_s", "peak_rss_mib"]
    print(f"\n## iizrisk.synth.generate, {args.years} years ({start} to {end}), seed 2024\n")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:,}" if isinstance(r[c], int) else str(r[c]) for c in cols) + " |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    tempfile.tempdir = None
    sys.exit(main())
