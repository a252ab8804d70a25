"""Quality of ranking by benefit (issue 18): offline policy values against the exact synthetic truth.

For each scenario and seed: a synthetic canton with a sample of people at
risk simulated twice (:func:`iizrisk.synth.generate` with ``effect_sample``),
the risk-set table of its assessments (:func:`iizrisk.evaluation.risk_set_table`),
a benefit model (:class:`iizrisk.benefit.BenefitModel`), the doubly robust
offline policy values with bootstrap intervals
(:func:`iizrisk.benefit.evaluate_policies`) and the true values of the same
policies on the sample at risk (:func:`iizrisk.benefit.true_policy_values`,
oracle = realised individual effects, the ceiling).

Scenarios: ``het`` (heterogeneous effects, ``effect=0.5``), ``hom`` (today's
homogeneous default, 0.3), ``zero`` (no effect). ``--unconfounded`` sets
``assessment_severity=0`` (who is assessed then depends on observed history
only, the estimators' assumption); the default keeps the synthetic canton's
confounding by latent severity.

Usage::

    .venv/bin/python benchmarks/benefit_quality.py --seeds 20
    .venv/bin/python benchmarks/benefit_quality.py --seeds 5 --persons 8000 --unconfounded --learner t

Prints one line per (scenario, seed) and a table of the quality targets:
true benefit/risk ratio (target >= 1.3 in ``het``), benefit not worse than risk
beyond the interval (``hom``), coverage of the true values by the 95 % intervals
(target >= 17 of 20 per policy), claims without effect (target <= 2 of 20).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd

SCENARIOS = {"het": {"effect": 0.5, "heterogeneous": True}, "hom": {"effect": 0.3, "heterogeneous": False},
             "zero": {"effect": 0.0, "heterogeneous": False}}


def one(scenario: str, seed: int, args) -> dict:
    from iizrisk.benefit import BenefitModel, NoOverlapError, evaluate_policies, true_policy_values
    from iizrisk.evaluation import risk_set_table
    from iizrisk.synth import generate

    t0 = time.perf_counter()
    params = {"assessment_severity": 0.0} if args.unconfounded else None
    pop = generate(args.persons, args.history_from, args.data_end, seed=seed, effect_sample=args.effect_sample,
                   params=params, **SCENARIOS[scenario])
    window = None if args.episode_days == [0, 0] else tuple(args.episode_days)
    tab = risk_set_table(pop.spells, pop.interventions, controls_per_treated=args.controls,
                         outcomes=["revolving_door"], period=(args.start, args.end), episode_days=window,
                         random_state=seed)
    try:
        m = BenefitModel(learner=args.learner, random_state=seed).fit(tab)
    except NoOverlapError as exc:
        return {"scenario": scenario, "seed": seed, "refused": str(exc)[:80]}
    ev = evaluate_policies(m, capacity=args.capacity, n_bootstrap=args.bootstrap, random_state=seed).values
    truth = true_policy_values(m, pop.spells, pop.interventions, pop.truth, capacity=args.capacity)
    row = {"scenario": scenario, "seed": seed, "seconds": time.perf_counter() - t0,
           "blp_slope": m.blp_.loc["heterogeneity", "estimate"], "oracle": truth["oracle"]}
    for p in ev.index:
        row[f"{p}_est"] = ev.loc[p, "value"]
        row[f"{p}_lo"], row[f"{p}_hi"] = ev.loc[p, "lower 95%"], ev.loc[p, "upper 95%"]
        row[f"{p}_true"] = truth[p]
    row["vs_risk_lo"] = ev.loc["benefit", "vs_risk lower 95%"]
    row["vs_risk_hi"] = ev.loc["benefit", "vs_risk upper 95%"]
    return row


def report(df: pd.DataFrame) -> str:
    pols = ["risk", "benefit", "risk_x_benefit", "random_high_band", "random"]
    lines = []
    for sc, g in df.groupby("scenario", sort=False):
        g = g[g.get("refused").isna()] if "refused" in g else g
        n = len(g)
        if not n:
            lines.append(f"{sc}: every seed refused")
            continue
        cover = {p: int(((g[f"{p}_lo"] <= g[f"{p}_true"]) & (g[f"{p}_true"] <= g[f"{p}_hi"])).sum()) for p in pols}
        claims = {p: int((g[f"{p}_lo"] > 0).sum()) for p in pols}
        true_mean = {p: g[f"{p}_true"].mean() for p in pols}
        lines.append(f"scenario {sc} ({n} seeds): true prevented per 100 assessments "
                     + ", ".join(f"{p} {true_mean[p]:.2f}" for p in pols) + f", oracle {g['oracle'].mean():.2f}")
        ratio = g["benefit_true"].sum() / g["risk_true"].sum() if g["risk_true"].sum() else float("nan")
        lines.append(f"  true benefit / risk ratio (pooled): {ratio:.2f}   [target >= 1.3 in het]")
        worse = int((g["benefit_true"] < g["risk_true"] - (g["risk_hi"] - g["risk_lo"]) / 2).sum())
        lines.append(f"  seeds where benefit is worse than risk beyond the interval: {worse} of {n}   [hom: 0]")
        lines.append("  coverage of the true values by the 95% intervals: "
                     + ", ".join(f"{p} {cover[p]}/{n}" for p in pols) + "   [>= 17/20]")
        lines.append("  intervals entirely above 0 (claims): " + ", ".join(f"{p} {claims[p]}/{n}" for p in pols)
                     + "   [zero: <= 2/20]")
        lines.append(f"  BLP slope mean {g['blp_slope'].mean():.2f}; seconds per seed {g['seconds'].mean():.0f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--persons", type=int, default=12000)
    ap.add_argument("--history-from", default="2014-01-01",
                    help="first day of the data: the features see the history from here (2014-01-01)")
    ap.add_argument("--data-end", default="2022-12-31", help="last day of the data (2022-12-31)")
    ap.add_argument("--start", default="2018-01-01", help="first index day (2018-01-01)")
    ap.add_argument("--end", default="2021-12-31", help="last index day (2021-12-31)")
    ap.add_argument("--episode-days", type=int, nargs=2, default=[14, 90], metavar=("LO", "HI"),
                    help="risk sets: people LO..HI days into an ALV/IV/SH episode, where the synthetic canton "
                         "holds its assessments (14 90); 0 0: everyone registered (the design without overlap)")
    ap.add_argument("--effect-sample", type=float, default=1.0,
                    help="share of people simulated twice for the true values (1.0)")
    ap.add_argument("--controls", type=int, default=10)
    ap.add_argument("--capacity", type=float, default=0.05)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--learner", choices=["dr", "t"], default="dr")
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    ap.add_argument("--unconfounded", action="store_true")
    ap.add_argument("--csv", help="also write the per-seed rows here")
    args = ap.parse_args(argv)
    logging.getLogger("iizrisk").setLevel(logging.ERROR)
    rows = []
    for sc in args.scenarios:
        for seed in range(args.seeds):
            r = one(sc, seed, args)
            rows.append(r)
            shown = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()
                     if k in ("scenario", "seed", "refused", "risk_true", "benefit_true", "benefit_est", "risk_est",
                              "oracle", "blp_slope")}
            print(shown, flush=True)
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    print()
    print(report(df))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
