"""With or without age as a model input: the cost in precision and the change in age-group flag rates.

Age is a protected ground (Art. 8(2) BV) and, today, a model input; the AMS
model in Austria was criticised precisely for its age weights. This script
trains the default model twice on the same synthetic canton
(:func:`iizrisk.synth.generate`), with and without ``age``
(``PointInTimeFeatures(include_age=False)``), and reports for each:

* precision and recall at capacity on the held-out later period (the training
  report's ``precision_at_k`` / ``recall_at_k``, k = ``--capacity`` per as-of
  date) and ROC AUC;
* a fairness audit (:class:`iizrisk.fairness.FairnessAudit`, default rule) at one
  as-of date whose horizon is observed, with ``capacity`` people flagged:
  the flag rate of every age band and its ratio to the reference band with
  the bootstrap interval and the rule's verdict.

Not a test: run by hand (about 3 minutes on 2 cores with the defaults).

    .venv/bin/python benchmarks/fairness_age.py
    .venv/bin/python benchmarks/fairness_age.py --persons 20000 --outcome revolving_door
"""

from __future__ import annotations

import argparse
import json
import warnings

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=12000)
    ap.add_argument("--outcome", default="disintegration")
    ap.add_argument("--capacity", type=int, default=50)
    ap.add_argument("--audit-capacity", type=int, default=200)
    ap.add_argument("--as-of", default="2021-06-30")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args()

    from threadpoolctl import threadpool_limits

    from iizrisk import synth
    from iizrisk.fairness import FairnessAudit, FairnessGapWarning, labelled_period
    from iizrisk.features import PointInTimeFeatures
    from iizrisk.model import train

    pop = synth.generate(args.persons, "2016-01-01", "2022-12-31", seed=args.seed)
    results = {}
    for name, include_age in (("with_age", True), ("without_age", False)):
        with threadpool_limits(1):
            model, report = train(pop.spells, interventions=pop.interventions, outcome=args.outcome,
                                  capacity=args.capacity, compare=False,
                                  features=PointInTimeFeatures(include_age=include_age))
        m = report.metrics.loc[model.model]
        data = labelled_period(model, pop.spells, args.as_of, interventions=pop.interventions)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FairnessGapWarning)
            audit = FairnessAudit(groups=["age_band"], capacity=args.audit_capacity, n_bootstrap=300,
                                  intersections=None, min_cell_size=0).fit(data)  # synthetic: nothing published
        s = audit.summary[audit.summary["attribute"] == "age_band"].set_index("group")
        g = audit.gaps[audit.gaps["metric"] == "flag_rate"].set_index("group")
        bands = {}
        for band in s.index:
            row = {"n": s.loc[band, "n"], "flag_rate": s.loc[band, "flag_rate"],
                   "reference": bool(s.loc[band, "is_reference"])}
            if band in g.index:
                row.update({k: g.loc[band, k] for k in ("ratio", "ratio_lo", "ratio_hi", "verdict")})
            bands[band] = {k: (None if pd.isna(v) else (v if isinstance(v, str | bool) else float(v)))
                           for k, v in row.items()}
        results[name] = {"precision_at_k": float(m["precision_at_k"]), "recall_at_k": float(m["recall_at_k"]),
                         "roc_auc": float(m["roc_auc"]), "k": args.capacity, "age_bands": bands,
                         "audit_as_of": args.as_of, "audit_capacity": args.audit_capacity}
        print(f"\n== {name}: precision at {args.capacity} {m['precision_at_k']:.3f}, recall at k "
              f"{m['recall_at_k']:.3f}, ROC AUC {m['roc_auc']:.3f}")
        print(pd.DataFrame(bands).T.to_string())
    w, wo = results["with_age"], results["without_age"]
    print(f"\nprecision at capacity: with age {w['precision_at_k']:.3f}, without {wo['precision_at_k']:.3f} "
          f"(change {wo['precision_at_k'] - w['precision_at_k']:+.3f})")
    if args.json:
        from iizrisk.store import write_json_atomic

        write_json_atomic(results, args.json)
    print(json.dumps({k: {"precision_at_k": v["precision_at_k"]} for k, v in results.items()}))


if __name__ == "__main__":
    main()
