"""Benchmark of the risk-model stages: point-in-time features, scoring and explanations.

Random canonical spells (``iizrisk.synth.random_spells``: about 5 spells per person,
2015-2024, 15 % open) at one as-of date:

* features for everyone with a spell open on the as-of date
  (:class:`iizrisk.features.PointInTimeFeatures`, one ``build_timeline`` and
  one ``compute_flags`` included);
* scoring them with a calibrated gradient-boosting model (default
  parameters: 100 trees of depth 3): the
  probabilities and the ranking, and the whole :func:`iizrisk.model.score`
  (features included);
* TreeSHAP explanations with reason codes for 5,000 worklist rows, in one
  process and in two (worker start-up, i.e. importing shap, included; and
  again with the workers warm).

The model is trained once, outside the timings, on a sample of the features a
year earlier with the disintegration outcome. Times grow linearly with the
number of persons; the last two columns extrapolate each stage to
``--target`` persons (2 million) in the data and, more conservatively, to
``--target`` persons *scored* (open at T). Not a test: run by hand.

    .venv/bin/python benchmarks/bench_model.py                    # 400k persons, extrapolated
    .venv/bin/python benchmarks/bench_model.py --persons 2000000  # full size (about 10 GiB)

Targets (2 cores): features for 2 million persons <= 30 s, scoring them
<= 15 s more, explanations for 5,000 rows <= 10 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from _common import machine, print_table, save_json, stage
from iizrisk.explain import explain, reason_codes
from iizrisk.features import PointInTimeFeatures
from iizrisk.model import RiskModel, risk_bands, score
from iizrisk.outcomes import compute_outcome
from iizrisk.synth import random_spells

AS_OF = "2024-06-30"
TRAIN_AS_OF = "2023-06-30"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=400_000, help="persons in the data (5 spells each)")
    ap.add_argument("--target", type=int, default=2_000_000, help="persons to extrapolate to")
    ap.add_argument("--explain-rows", type=int, default=5000)
    ap.add_argument("--train-rows", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=None,
                    help="limit OpenMP threads of the model (default: all cores)")
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "model.json")
    a = ap.parse_args()

    t0 = time.perf_counter()
    spells = random_spells(a.persons * 5, seed=3, persons_per_spell=0.2)
    print(f"generated {len(spells):,} spells of {spells['person_id'].nunique():,} persons "
          f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    # ---- a model to score with (not timed)
    t0 = time.perf_counter()
    ft = PointInTimeFeatures().fit()
    Xtr = ft.transform(spells, as_of=TRAIN_AS_OF)
    if len(Xtr) > a.train_rows:
        Xtr = Xtr.sample(n=a.train_rows, random_state=0)
    lab = compute_outcome(spells, outcome="disintegration", pairs=Xtr.index, observed_until="2025-12-31")
    y = lab["outcome"].to_numpy(dtype=bool)
    model = RiskModel(model="boosting", calibration="isotonic", features=ft, outcome="disintegration",
                      n_threads=a.threads).fit(Xtr.reset_index(drop=True), y)
    print(f"trained on {len(Xtr):,} rows (prevalence {y.mean():.3f}, {model.estimator_.n_iter_} trees) "
          f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    del Xtr

    rows: list = []
    with stage(rows, "features (open at T)", persons=a.persons):
        X = ft.transform(spells, as_of=AS_OF)
    n_scored = len(X)
    with stage(rows, "score: probabilities + rank", persons=a.persons):
        risk = model.predict_proba(X)[:, 1]
        order = np.lexsort((np.asarray(X.index.get_level_values(0)), -risk))
        _ = risk_bands(risk[order])
    with stage(rows, "score(): features + scoring", persons=a.persons):
        scores, Xs = score(model, spells, as_of=AS_OF, return_features=True)
    worklist = Xs.iloc[: a.explain_rows]
    with stage(rows, f"explain {len(worklist):,} rows, 1 process", persons=a.persons):
        ex = explain(model, worklist, n_jobs=1)
        reason_codes(ex, language="de")
    with stage(rows, f"explain {len(worklist):,} rows, 2 processes", persons=a.persons):
        ex2 = explain(model, worklist, n_jobs=2)
        reason_codes(ex2, language="de")
    with stage(rows, f"explain {len(worklist):,} rows, 2 processes (warm)", persons=a.persons):
        ex2 = explain(model, worklist, n_jobs=2)
        reason_codes(ex2, language="de")
    np.testing.assert_allclose(ex.values.to_numpy(), ex2.values.to_numpy(), atol=1e-9)

    for r in rows:
        per_person = not r["stage"].startswith("explain")
        # linear in the persons of the data, and (more conservatively) in the persons scored
        r[f"at_{a.target // 1000}k_persons_s"] = round(r["seconds"] * (a.target / a.persons if per_person
                                                                       else 1.0), 1)
        r[f"at_{a.target // 1000}k_scored_s"] = round(r["seconds"] * (a.target / n_scored if per_person
                                                                      else 1.0), 1)
    load = os.getloadavg()[0]
    title = (f"Risk model stages: {len(spells):,} spells, {a.persons:,} persons, {n_scored:,} open at "
             f"{AS_OF}; extrapolated linearly to {a.target:,} persons in the data / scored; "
             f"load average {load:.1f} on {os.cpu_count()} cores")
    print_table(rows, title)
    save_json({"machine": machine(), "persons": a.persons, "spells": len(spells), "scored": n_scored,
               "target": a.target, "stages": rows, "scores_head": scores.head(3).to_dict("records")}, a.json)


if __name__ == "__main__":
    main()
