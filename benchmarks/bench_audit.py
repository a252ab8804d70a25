"""Cost of the fairness audit's bootstrap (iizrisk.fairness.FairnessAudit) at up to national scale.

One row per person scored, as ``iizrisk audit`` builds them: a risk with about
a thousand distinct values (what isotonic calibration leaves), a label drawn
from it, and the five protected attributes of a deployment (sex, nationality
group, age band, disability, canton) with their pairs. Capacity 5 %. Prints
wall, CPU and system seconds and the peak resident memory of the fit.

    python benchmarks/bench_audit.py --persons 200000 940000 --bootstrap 500

The whole command at national scale (3.7M persons, 940,000 scored at T) is
``iizrisk audit --model M --spells spells.parquet --as-of 2023-12-31 --out DIR``
under ``/usr/bin/time -v``; the README gives both.
"""

from __future__ import annotations

import argparse
import os
import warnings

import numpy as np
import pandas as pd

from _common import print_table, stage

GROUPS = ["sex", "nationality_group", "age_band", "disability", "canton"]


def people(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    risk = np.round(rng.beta(1, 12, n), 3)
    return pd.DataFrame({
        "score": risk, "label": rng.random(n) < risk,
        "sex": pd.Categorical(rng.choice(["F", "M"], n)),
        "nationality_group": pd.Categorical(rng.choice(["CH", "EU", "THIRD"], n, p=[0.6, 0.25, 0.15])),
        "age_band": pd.Categorical(rng.choice(["<25", "25-34", "35-49", "50-64", "65+"], n)),
        "disability": pd.Categorical(np.where(rng.random(n) < 0.1, "IV", "no_IV")),
        "canton": pd.Categorical(rng.choice([f"K{i:02d}" for i in range(26)], n)),
    })


def run(n: int, bootstrap: int) -> list[dict]:
    from iizrisk.fairness import FairnessAudit

    rows: list[dict] = []
    data = people(n)
    sys0 = os.times().system
    with stage(rows, "FairnessAudit.fit", cpu=True, persons=n, bootstrap=bootstrap,
               distinct_risks=int(data["score"].nunique())), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        FairnessAudit(groups=GROUPS, capacity=0.05, n_bootstrap=bootstrap).fit(data)
    rows[-1]["system_seconds"] = round(os.times().system - sys0, 2)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, nargs="+", default=[200_000])
    ap.add_argument("--bootstrap", type=int, default=500)
    args = ap.parse_args(argv)
    rows = [r for n in args.persons for r in run(n, args.bootstrap)]
    print_table(rows, "The fairness audit (5 attributes and their pairs, capacity 5 %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
