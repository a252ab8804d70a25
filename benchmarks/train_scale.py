"""Training on a sample of persons: the learning curve, and time and memory against the sample size.

    .venv/bin/python benchmarks/train_scale.py                       # 150k persons, samples 10k ... all
    .venv/bin/python benchmarks/train_scale.py --persons 300000 --samples 25000 50000 100000 200000 0

Each training runs in a fresh process (``iizrisk train --max-persons N``,
boosting only, no comparison models) on the same cached synthetic population,
and reports the held-out ROC AUC, average precision and precision at capacity
(the model's own held-out report: the later validation period, unsampled
persons included only through their share) with the process's wall time and
peak resident memory. ``0`` stands for "every person". The table shows where
more persons stop paying: the default sample size is chosen from it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import CACHE, cached, print_table, stamp  # noqa: E402

KEY = b"the benchmarks' model signing key, 32 bytes or more"


def population(persons: int, seed: int = 21) -> Path:
    """A cached synthetic canton of ``persons`` persons (spells as Parquet)."""
    from iizrisk.store import write_parquet_atomic
    from iizrisk.synth import generate

    d = CACHE / f"train_pop_{persons}"
    if not cached(d):
        pop = generate(persons, "2012-01-01", "2024-12-31", seed=seed)
        write_parquet_atomic(pop.spells, d / "spells.parquet")
        write_parquet_atomic(pop.interventions, d / "interventions.parquet")
        stamp(d)
    return d


def one(pop: Path, sample: int, out: Path) -> dict:
    from iizrisk.store import write_bytes_atomic

    key = write_bytes_atomic(KEY, CACHE / "model.key", private=True)  # a key only its owner may read
    code = ("import resource, sys; from iizrisk.cli import main; rc = main(sys.argv[1:]); "
            "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")
    argv = ["-q", "train", "--spells", str(pop / "spells.parquet"), "--interventions",
            str(pop / "interventions.parquet"), "--outcome", "revolving_door", "--out", str(out),
            "--key-file", str(key), "--capacity", "50"]
    if sample:
        argv += ["--max-persons", str(sample)]
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"train failed ({p.returncode}):\n{p.stderr[-3000:]}")
    rss = int(next(line.split()[1] for line in p.stderr.splitlines() if line.startswith("MAXRSS")))
    man = json.loads((out / "manifest.json").read_text())
    m = man["metrics"]["boosting"]
    tr = man.get("training", {})
    return {"sample": tr.get("sample", {}).get("persons", "all"), "snapshots": tr.get("snapshots"),
            "roc_auc": round(m["roc_auc"], 4), "average_precision": round(m["average_precision"], 4),
            "precision_at_k": round(m.get("precision_at_k", float("nan")), 4),
            "seconds": round(wall, 1), "peak_gib": round(rss / 2**20, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=150_000)
    ap.add_argument("--samples", type=int, nargs="+", default=[10_000, 20_000, 40_000, 80_000, 0])
    args = ap.parse_args()
    pop = population(args.persons)
    rows = []
    for s in args.samples:
        rows.append(one(pop, s, CACHE / f"train_model_{args.persons}_{s}"))
        print(rows[-1], file=sys.stderr)
    print_table(rows, f"training on samples of {args.persons:,} persons (boosting, held-out period)")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "train_scale.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
