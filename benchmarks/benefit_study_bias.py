"""Why the risk-set table's effects were biased on the synthetic canton (issue 18): a diagnostic.

For each seed, a synthetic canton (:func:`iizrisk.synth.generate`, by default
with ``assessment_severity=0``: who is assessed depends on observed history
only, so the estimators' no-unmeasured-confounding assumption holds) and its
risk-set table (:func:`iizrisk.evaluation.risk_set_table`). Printed per seed
and pooled:

* the **true effect on the assessed** of the table (``rd_12m - rd_12m_cf`` of
  the synthetic truth, exact) against the study's estimators (matching,
  regression, IPW, naive) and the benefit model's doubly robust scores
  averaged over the assessed (ATT) and over everyone at risk (ATE);
* the **true average effect over people at risk** (the sample simulated twice,
  ``effect_sample``), the target of the policy values;
* **eligibility**: the engine offers an assessment only at the start of an
  ALV, SH or IV episode and holds it 14-90 days later. ``days since the
  episode started`` is measured from the spells (the latest start of an ALV,
  IV or SH spell, or the day after the latest end of one, on or before the
  index day): the share of assessed and of (weighted) controls inside the
  window, and the out-of-fold propensity of the controls outside it.

Usage::

    .venv/bin/python benchmarks/benefit_study_bias.py --seeds 6 --effect 0
    .venv/bin/python benchmarks/benefit_study_bias.py --seeds 6 --effect 0.5 --heterogeneous
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd

Y = "revolving_door_next_12m"


def episode_days(spells: pd.DataFrame, person_id, day) -> np.ndarray:
    """Days from the start of the current ALV/IV/SH episode to ``day`` (event view; NaN when none).

    The episode starts at the latest start of an ALV, IV or SH spell, or the
    day after the latest end of one (a change of episode while another
    registration goes on), on or before ``day``.
    """
    from iizrisk import _time

    core = spells[spells["institution"].astype(str).isin(["ALV", "IV", "SH"])]
    pid = core["person_id"].astype(str).to_numpy()
    s = _time.to_days(core["start_date"]).astype(np.int64)
    e = _time.to_days(core["end_date"]).astype(np.float64)
    e[e == float(_time.MISSING_DAY)] = np.nan
    ev_p = np.r_[pid, pid[np.isfinite(e)]]
    ev_d = np.r_[s, (e[np.isfinite(e)] + 1).astype(np.int64)]
    codes, uniq = pd.factorize(pd.Series(np.r_[ev_p, np.asarray(person_id, dtype=str)]))
    ev_c, q_c = codes[:len(ev_p)], codes[len(ev_p):]
    big = np.int64(1) << np.int64(24)
    key = ev_c.astype(np.int64) * big + (ev_d - ev_d.min() + 1)
    order = np.sort(key)
    q = q_c.astype(np.int64) * big + (np.asarray(day, dtype=np.int64) - ev_d.min() + 1)
    pos = np.searchsorted(order, q, side="right") - 1
    ok = (pos >= 0) & (order[np.maximum(pos, 0)] // big == q_c)
    last = order[np.maximum(pos, 0)] % big + ev_d.min() - 1
    return np.where(ok, np.asarray(day, dtype=np.int64) - last, np.nan)


def one(seed: int, args) -> dict:
    from iizrisk import _time
    from iizrisk.benefit import BenefitModel
    from iizrisk.evaluation import AssessmentStudy, risk_set_table
    from iizrisk.synth import generate

    t0 = time.perf_counter()
    params = None if args.confounded else {"assessment_severity": 0.0}
    pop = generate(args.persons, args.start, args.end, seed=seed, effect=args.effect,
                   heterogeneous=args.heterogeneous, effect_sample=0.3, params=params)
    tab = risk_set_table(pop.spells, pop.interventions, controls_per_treated=args.controls,
                         outcomes=["revolving_door"], random_state=seed)
    tab = tab[tab[Y].notna()].reset_index(drop=True)
    t = tab["treated"].to_numpy(bool)
    w = tab["sampling_weight"].to_numpy(float)
    truth = pop.truth.set_index(pop.truth["person_id"].astype(str))
    tt = truth.loc[tab.loc[t, "person_id"].astype(str)]
    row = {"seed": seed, "n_treated": int(t.sum()),
           "true_att": float((tt["rd_12m"].astype(float) - tt["rd_12m_cf"].astype(float)).mean())}
    samp = truth[truth["effect_sample"].astype(bool)]
    ite = samp["rd_12m"].astype(float) - samp["rd_12m_cf"].astype(float)
    row["true_ate_at_risk"] = float(ite.mean())
    sd = _time.to_days(samp["sample_date"]).astype(np.int64)
    s_ep = episode_days(pop.spells, samp.index.to_numpy(), sd)
    s_in = (s_ep >= 14) & (s_ep <= 90)
    row["true_ate_at_risk_eligible"] = float(ite[s_in].mean())
    # eligibility on the table
    ep = episode_days(pop.spells, tab["person_id"].astype(str).to_numpy(), _time.to_days(tab["index_date"]))
    inside = (ep >= 14) & (ep <= 90)
    row["treated_in_window"] = float(inside[t].mean())
    row["controls_in_window"] = float(np.average(inside[~t], weights=w[~t]))
    for m in ("matching", "regression", "ipw", "naive"):
        st = AssessmentStudy(outcomes=["revolving_door"], method=m, controls_per_treated=args.controls,
                             n_bootstrap=0, random_state=seed).fit_table(tab)
        row[m] = float(st.summary.loc[Y, "estimate"])
    bm = BenefitModel(learner="dr", random_state=seed).fit(tab)
    d = bm.data_
    # doubly robust ATT (only mu0 and e are needed): mean over the assessed of y - mu0, minus the
    # propensity-odds-weighted residuals of the controls
    tt_, yy, m0, ee = (d["treated"].to_numpy(bool), d[Y].to_numpy(float), d["risk"].to_numpy(float),
                           np.clip(d["propensity"].to_numpy(float), 0.0, 0.99))
    res = np.where(tt_, yy - m0, -ee / (1 - ee) * (yy - m0))  # sample-scale odds: the weights cancel
    row["dr_att"] = float(res.sum() / tt_.sum())
    row["dr_ate"] = float(np.average(d["dr_score"], weights=d["weight"]))
    row["t_ate"] = float(np.average(-d["benefit"], weights=d["weight"])) if bm.learner == "t" else np.nan
    e_out = d["propensity"].to_numpy()[~d["treated"].to_numpy()]
    ins_c = inside[d.index.to_numpy()][~d["treated"].to_numpy()]
    row["ps_controls_in"] = float(np.median(e_out[ins_c])) if ins_c.any() else np.nan
    row["ps_controls_out"] = float(np.median(e_out[~ins_c])) if (~ins_c).any() else np.nan
    row["seconds"] = time.perf_counter() - t0
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--persons", type=int, default=8000)
    ap.add_argument("--start", default="2018-01-01")
    ap.add_argument("--end", default="2021-12-31")
    ap.add_argument("--controls", type=int, default=10)
    ap.add_argument("--effect", type=float, default=0.0)
    ap.add_argument("--heterogeneous", action="store_true")
    ap.add_argument("--confounded", action="store_true", help="keep assessment_severity (latent confounding)")
    ap.add_argument("--csv")
    args = ap.parse_args(argv)
    logging.getLogger("iizrisk").setLevel(logging.ERROR)
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        r = one(seed, args)
        rows.append(r)
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    est = ["true_att", "matching", "regression", "ipw", "naive", "dr_att", "true_ate_at_risk",
           "true_ate_at_risk_eligible", "dr_ate"]
    print("\nmean over seeds (effects on P(revolving door in 12 months); se of the mean over seeds)")
    for c in est:
        print(f"  {c:28s} {df[c].mean():+.4f}  ({df[c].std(ddof=1) / np.sqrt(len(df)):.4f})")
    for c in ("treated_in_window", "controls_in_window", "ps_controls_in", "ps_controls_out"):
        print(f"  {c:28s} {df[c].mean():.4f}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
