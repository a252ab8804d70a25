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
homogeneous default, 0.3), ``zero`` (no effect), ``nooverlap`` (the ``het``
canton's table with the assessed kept only in the top 20 % of risk and the
not-assessed only below it: assessments given only to the highest-risk
people; the benefit model must refuse). ``--unconfounded`` sets
``assessment_severity=0`` (who is assessed then depends on observed history
only, the estimators' assumption); the default keeps the synthetic canton's
confounding by latent severity.

Usage::

    .venv/bin/python benchmarks/benefit_quality.py --seeds 20
    .venv/bin/python benchmarks/benefit_quality.py --seeds 5 --persons 8000 --unconfounded --learner t

Prints one line per (scenario, seed), the figures per scenario and a table
of the issue's quality targets: true benefit/risk ratio (target >= 1.3 in
``het``) with the oracle (realised individual effects) and the ceiling of a
model that knew each person's true relative effect (``true relative effect x
model risk``), benefit not worse than risk beyond the interval (``hom``),
coverage of the true values by the 95 % intervals (target >= 17 of 20 per
policy), claims without effect (target <= 2 of 20), refusal without overlap.
Each run also reports the plain (not normalised) policy values with their
coverage and interval widths, the chosen propensity penalty and the ratio of
the assessed's inverse risk-set propensities to the weighted rows (1 when
the propensity is calibrated). ``--propensity-c 1`` fixes the earlier
default penalty for a comparison.

Measured (seeds 0-5 unless said, a loaded 2-core machine), true prevented per
100 assessments, benefit / risk ratio pooled::

    --seeds 6 --persons 12000 --scenarios het
        risk 6.25, benefit 3.37, risk x benefit 5.37, oracle 29.9; ratio 0.54
        (known relative effect x model risk / risk: 1.53); BLP slope median -0.05;
        95 % widths (self-normalised) risk 31, benefit 18; plain 72, 37;
        coverage min 5/6 both; chosen C 0.003-0.01, inverse-propensity ratio 0.95-1.01
    --seeds 6 --persons 12000 --scenarios het --propensity-c 1
        benefit 2.68; ratio 0.43; BLP slope median -0.28; widths self-normalised
        38, 29, plain 119, 79; coverage min 5/6; inverse-propensity ratio 1.21
    --seeds 6 --persons 6000 --scenarios het
        risk 5.43, benefit 2.70; ratio 0.50; oracle 19.7; BLP slope mean -2.43
        (one seed -19.1), median 0.79, z mean -0.11; widths self-normalised 31, 31,
        plain 104, 83; coverage min 5/6; inverse-propensity ratio 0.94-1.03
    --seeds 6 --persons 6000 --scenarios het --propensity-c 1
        benefit 2.19; ratio 0.40; BLP slope mean -1.69, median -1.28, z mean -0.54;
        widths self-normalised 46, 43, plain 272, 254; coverage min 4/6 (risk,
        both forms); inverse-propensity ratio 1.36-1.58
    --seeds 4 --persons 12000 --scenarios het --unconfounded
        risk 5.56, benefit 4.13; ratio 0.74 (known relative effect / risk 1.91)
    --seeds 4 --persons 12000 --scenarios zero nooverlap
        no claims (0/4 each policy, both forms); own tables refused 0/4, no-overlap
        tables refused 4/4; offline values (true 0): risk -11.8, random high band
        -5.4, random -2.7 (latent severity: the assessed are sicker than their
        controls at the same features)
    --seeds 4 --persons 12000 --scenarios zero --unconfounded
        offline risk -3.8, random high band -0.2, random -0.4; coverage 4/4 each
        policy; BLP slope median -1.41, z mean -0.73 (none below -1.96)
    --seeds 4 --persons 12000 --scenarios hom
        risk 4.35, benefit 1.61 (ratio 0.37); benefit worse than risk beyond the
        paired interval in 0/4; coverage min 3/4 (both forms); widths
        self-normalised 34, 22, plain 79, 49

Twenty seeds (seeds 0-19, 12,000 persons, het, learner dr; same code as above)::

    --seeds 20 --persons 12000 --scenarios het
        risk 5.62, benefit 2.42, risk x benefit 3.58, oracle 29.0; ratio 0.43
        (known relative effect x model risk / risk: 1.54); coverage (self-normalised)
        risk 19/20, benefit 19/20, risk x benefit 17/20, random in the high band
        16/20, random 14/20; plain 19, 18, 20, 15, 14; claims 1/20 (benefit,
        risk x benefit); offline random -1.00 against a true 1.71: the latent
        severity that drives assessments is not in the features, so the
        estimates are biased where their intervals are narrow

    --seeds 20 --persons 12000 --scenarios zero
        no claims (0/20 each policy; plain: risk x benefit 1/20); coverage risk 19,
        benefit 20, risk x benefit 20, random in the high band 17, random 13 of 20
        (offline random -2.71 against a true 0)
    --seeds 20 --persons 12000 --scenarios hom
        offline benefit-minus-risk interval below 0 in 0/20, yet the true ratio is
        0.50 (benefit 2.09, risk 4.17): the paired intervals are too wide to see it;
        coverage 19, 20, 19, 19, 16 of 20
    --seeds 20 --persons 12000 --scenarios het --unconfounded
        (195 assessed per canton) coverage risk 18, benefit 20, risk x benefit 20,
        random in the high band 17, random 17 of 20; claims at most 2/20 (random);
        ratio 0.59 (known relative effect x model risk / risk: 1.67)

The T-learner on the same 20 cantons (the default of ``iizrisk policy`` since)::

    --seeds 20 --persons 12000 --scenarios het --learner t
        risk 5.62 (its risk ranking is dr's), benefit 4.81, risk x benefit 4.77;
        ratio 0.86; coverage risk 19, benefit 18, risk x benefit 18, random in
        the high band 16, random 14 of 20; no claims

The S-learner with assessment interactions (``--learner s``) on the same
cantons (seeds 0-9)::

    --seeds 10 --persons 12000 --scenarios het --learner s
        benefit 3.94 (dr on the same seeds: 2.27), risk x benefit 4.19; its own
        risk ranking 4.21 (dr's 5.66); benefit / own risk 0.94, benefit / dr's
        risk 0.70 (dr: 0.40); coverage 9/10 for every policy but random in
        the high band (8/10)

and on two cantons of 48,000 persons (1,345-1,491 assessed; scripts outside
the benchmark, the same estimators): benefit / risk 0.83 and 0.00 with dr,
1.01 and 0.51 with s, against a known-relative-effect ceiling of 1.65 and 1.74.

The target ratio of 1.3 is below what the true *relative* effect would give
with the model's risk (1.5-1.9), but above what any ranking computed from the
features can reach. ``oracle_features`` (:func:`iizrisk.benefit.true_policy_values`)
ranks by the model's risk times the true relative effect as far as the
features tell it (gradient boosting of each person's known relative effect on
the model's covariates, out of fold over the ~2,600 people at risk of the
canton)::

    --seeds 20 --persons 12000 --scenarios het --learner t
        known relative effect x model risk / risk 1.54; the same as far as the
        features tell / risk 1.22 (mean 6.83 against risk 5.62); T-learner 0.86

Part of the synthetic effect's heterogeneity lies in the latent severity
(strongest at moderate severity), which no feature shows: within each risk
level the relative effect varies with it. Fitted on 28,000 people at risk of
eleven other cantons instead of the canton's own, the features' ceiling was
1.24-1.29 on seeds 0-11 (scripts outside the benchmark). On these cantons the
effect is a hazard ratio, so the prevented outcomes are largest where the
risk is, and the ~200-370 assessed per canton do not tell the effect's shape
apart from noise.

The same without the latent part (``--param het_severity_width=1e9``: the
effect varies only with what the features see, an IV process, long social
assistance and earlier spells), seeds 0-19::

    --seeds 20 --persons 12000 --scenarios het --learner t --param het_severity_width=1e9
        risk 7.79, benefit 7.33, risk x benefit 7.20; ratio 0.94; known
        relative effect x model risk / risk 1.39, as far as the features tell
        1.27; coverage risk 19, benefit 18, risk x benefit 17, random in the
        high band 17, random 13 of 20
    the same with --learner dr
        ratio 0.62; coverage min 13/20 (random)

and on cantons four times larger (about 1,450 assessed each, seeds 0-5)::

    --seeds 6 --persons 48000 --scenarios het --learner t
        ratio 0.96 (risk x benefit 0.99); ceilings 1.86 and, as far as the
        features tell, 1.47; coverage risk 5, benefit 5, risk x benefit 6,
        random in the high band 4, random 1 of 6
    --seeds 6 --persons 48000 --scenarios het --learner t --param het_severity_width=1e9
        ratio 1.06 (risk x benefit 1.08); ceilings 1.49 and 1.44; coverage
        risk 5, benefit 6, risk x benefit 6, random in the high band 3, random 2 of 6

So even where every part of the heterogeneity is visible to the features, the
best ranking the features allow reaches 1.27-1.44 of risk ranking, and a
learner from one canton's assessments 0.94-1.08: the 1.3 target needs more
heterogeneity in the synthetic canton than its documented defaults give, or
far more assessments than a canton holds. The coverage misses of the random
policies grow with the canton (13-14 of 20 at 12,000 persons, 1-2 of 6 at
48,000): a bias that more data do not shrink, the mark of the latent
confounding (assessments follow the latent severity) rather than of too
narrow intervals.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd

SCENARIOS = {"het": {"effect": 0.5, "heterogeneous": True}, "hom": {"effect": 0.3, "heterogeneous": False},
             "zero": {"effect": 0.0, "heterogeneous": False}, "nooverlap": {"effect": 0.5, "heterogeneous": True}}
POLICIES = ["risk", "benefit", "risk_x_benefit", "random_high_band", "random"]


def only_highest_risk(tab: pd.DataFrame, outcome: str, top: float = 0.2) -> pd.DataFrame:
    """The table as if assessments had gone only to the highest-risk people.

    Risk: a logistic model of the outcome on the table's covariates (all rows).
    The assessed are kept only in the top ``top`` (weighted) of risk, the
    not-assessed only below it.
    """
    from iizrisk.evaluation import LogisticPropensity

    cov = [c for c in tab.attrs.get("covariates", []) if c in tab.columns]
    t = tab[tab[outcome].notna()]
    X = t[cov].to_numpy(dtype=np.float64, na_value=np.nan)
    X = np.where(np.isnan(X), np.nanmedian(X, axis=0)[None, :], X)
    X = np.where(np.isnan(X), 0.0, X)
    risk = LogisticPropensity(C=1.0).fit(X, t[outcome].to_numpy().astype(np.int8)).predict_proba(X)[:, 1]
    w = t["sampling_weight"].to_numpy(dtype=np.float64)
    order = np.argsort(risk)
    cut = risk[order][np.searchsorted(np.cumsum(w[order]) / w.sum(), 1 - top)]
    high = risk >= cut
    treated = t["treated"].to_numpy(bool)
    out = t[(treated & high) | (~treated & ~high)]
    out.attrs = dict(tab.attrs)
    return out


def _propensity(args):
    from iizrisk.evaluation import LogisticPropensity

    return None if args.propensity_c is None else LogisticPropensity(C=args.propensity_c)


def one(scenario: str, seed: int, args) -> dict:
    from iizrisk.benefit import BenefitModel, NoOverlapError, evaluate_policies, true_policy_values
    from iizrisk.errors import ValidationError
    from iizrisk.evaluation import risk_set_table
    from iizrisk.synth import generate

    t0 = time.perf_counter()
    params = {**({"assessment_severity": 0.0} if args.unconfounded else {}), **dict(args.param)} or None
    pop = generate(args.persons, args.history_from, args.data_end, seed=seed, params=params,
                   effect_sample=0.0 if scenario == "nooverlap" else args.effect_sample, **SCENARIOS[scenario])
    window = None if args.episode_days == [0, 0] else tuple(args.episode_days)
    tab = risk_set_table(pop.spells, pop.interventions, controls_per_treated=args.controls,
                         outcomes=["revolving_door"], period=(args.start, args.end), episode_days=window,
                         random_state=seed)
    normal_refused = None
    if scenario == "nooverlap":
        try:  # the same canton's own table (assessed 14-90 days into an episode) must not be refused
            BenefitModel(learner=args.learner, random_state=seed, propensity_model=_propensity(args)).fit(tab)
            normal_refused = ""
        except NoOverlapError as exc:
            normal_refused = str(exc)[:80]
        tab = only_highest_risk(tab, "revolving_door_next_12m", top=0.2)
    try:
        m = BenefitModel(learner=args.learner, random_state=seed, propensity_model=_propensity(args)).fit(tab)
    except NoOverlapError as exc:
        return {"scenario": scenario, "seed": seed, "refused": str(exc)[:80], "normal_refused": normal_refused,
                "seconds": time.perf_counter() - t0}
    except ValidationError as exc:  # too few assessed: refused too, for another reason
        return {"scenario": scenario, "seed": seed, "refused": "too few: " + str(exc)[:70],
                "normal_refused": normal_refused, "seconds": time.perf_counter() - t0}
    if scenario == "nooverlap":
        return {"scenario": scenario, "seed": seed, "refused": None, "normal_refused": normal_refused,
                "seconds": time.perf_counter() - t0}
    ev = evaluate_policies(m, capacity=args.capacity, n_bootstrap=args.bootstrap, random_state=seed).values
    plain = evaluate_policies(m, capacity=args.capacity, n_bootstrap=args.bootstrap, random_state=seed,
                              normalised=False).values
    truth = true_policy_values(m, pop.spells, pop.interventions, pop.truth, capacity=args.capacity)
    blp = m.blp_.loc["heterogeneity"]
    d = m.data_
    t = d["treated"].to_numpy(bool)
    row = {"scenario": scenario, "seed": seed, "seconds": time.perf_counter() - t0, "n_treated": m.n_treated_,
           "blp_slope": blp["estimate"], "blp_lo": blp["estimate"] - 1.96 * blp["se"], "oracle": truth["oracle"],
           "rel_ceiling": truth.get("oracle_relative", np.nan),
           "feat_ceiling": truth.get("oracle_features", np.nan),
           "propensity_C": getattr(m, "propensity_penalty_", None),
           # the assessed's inverse risk-set propensities over the weighted rows they stand for (1 if calibrated)
           "ipw_ratio": float((1 / d["risk_set_propensity"].to_numpy()[t]).sum() / d["weight"].sum())}
    for p in ev.index:
        row[f"{p}_est"] = ev.loc[p, "value"]
        row[f"{p}_lo"], row[f"{p}_hi"] = ev.loc[p, "lower 95%"], ev.loc[p, "upper 95%"]
        row[f"{p}_est_plain"] = plain.loc[p, "value"]
        row[f"{p}_lo_plain"], row[f"{p}_hi_plain"] = plain.loc[p, "lower 95%"], plain.loc[p, "upper 95%"]
        row[f"{p}_true"] = truth.get(p, np.nan)  # "actual": no true value on the sample at risk
    row["vs_risk_lo"] = ev.loc["benefit", "vs_risk lower 95%"]
    row["vs_risk_hi"] = ev.loc["benefit", "vs_risk upper 95%"]
    return row


def report(df: pd.DataFrame, args) -> str:
    """Figures per scenario, then the issue's quality targets as a Markdown table."""
    lines, targets = [], []
    for sc, g in df.groupby("scenario", sort=False):
        refused = g["refused"].notna() if "refused" in g else pd.Series(False, index=g.index)
        if sc == "nooverlap":
            no_overlap = int(g["refused"].fillna("").str.startswith("no overlap").sum())
            if "normal_refused" in g:
                wrong = int(g["normal_refused"].fillna("").astype(str).str.len().gt(0).sum())
                targets.append(("no refusal of the same cantons' own tables (overlap)",
                                f"refused {wrong} of {len(g)}", "0", wrong == 0))
            targets.append(("refuses without overlap (assessed kept only in the top 20 % of risk)",
                            f"refused {int(refused.sum())} of {len(g)} ({no_overlap} for no overlap, the rest "
                            "for too few assessed)", "all", bool(refused.all())))
            continue
        g = g[~refused]
        n = len(g)
        if not n:
            lines.append(f"{sc}: every seed refused")
            continue
        cover = {p: int(((g[f"{p}_lo"] <= g[f"{p}_true"]) & (g[f"{p}_true"] <= g[f"{p}_hi"])).sum())
                 for p in POLICIES}
        claims = {p: int((g[f"{p}_lo"] > 0).sum()) for p in POLICIES}
        true_mean = {p: g[f"{p}_true"].mean() for p in POLICIES}
        se = {p: g[f"{p}_true"].std(ddof=1) / np.sqrt(n) if n > 1 else np.nan for p in POLICIES}
        lines.append(f"scenario {sc} ({n} seeds, {int(refused.sum())} refused; mean assessed per canton "
                     f"{g['n_treated'].mean():.0f}): true prevented per 100 assessments (se over seeds)")
        lines.append("  " + ", ".join(f"{p} {true_mean[p]:.2f} ({se[p]:.2f})" for p in POLICIES)
                     + f", oracle {g['oracle'].mean():.2f}, true relative effect x model risk "
                     f"{g['rel_ceiling'].mean():.2f}, the same as far as the features tell "
                     f"{g['feat_ceiling'].mean() if 'feat_ceiling' in g else np.nan:.2f}")
        lines.append("  offline estimates (mean): " + ", ".join(f"{p} {g[f'{p}_est'].mean():.2f}" for p in POLICIES))
        ratio = g["benefit_true"].sum() / g["risk_true"].sum() if g["risk_true"].sum() else float("nan")
        rxb = g["risk_x_benefit_true"].sum() / g["risk_true"].sum() if g["risk_true"].sum() else float("nan")
        ceil = g["rel_ceiling"].sum() / g["risk_true"].sum() if g["risk_true"].sum() else float("nan")
        feat = g["feat_ceiling"].sum() / g["risk_true"].sum() if "feat_ceiling" in g and g["risk_true"].sum() \
            else float("nan")
        lines.append(f"  true benefit / risk ratio (pooled): {ratio:.2f}; risk x benefit / risk {rxb:.2f}; "
                     f"oracle / risk {g['oracle'].sum() / g['risk_true'].sum():.2f}; known relative effect / risk "
                     f"{ceil:.2f}; known relative effect as far as the features tell / risk {feat:.2f}")
        worse = int((g["vs_risk_hi"] < 0).sum())
        lines.append(f"  seeds where the offline benefit-minus-risk interval lies below 0: {worse} of {n}")
        lines.append("  coverage of the true values by the 95% intervals: "
                     + ", ".join(f"{p} {cover[p]}/{n}" for p in POLICIES))
        lines.append("  intervals entirely above 0 (claims): " + ", ".join(f"{p} {claims[p]}/{n}" for p in POLICIES))
        lines.append("  mean 95% interval width (self-normalised): "
                     + ", ".join(f"{p} {(g[f'{p}_hi'] - g[f'{p}_lo']).mean():.1f}" for p in POLICIES))
        if f"{POLICIES[0]}_lo_plain" in g:
            cover_p = {p: int(((g[f"{p}_lo_plain"] <= g[f"{p}_true"]) & (g[f"{p}_true"] <= g[f"{p}_hi_plain"])).sum())
                       for p in POLICIES}
            claims_p = {p: int((g[f"{p}_lo_plain"] > 0).sum()) for p in POLICIES}
            lines.append("  plain (not normalised) values: mean " + ", ".join(
                f"{p} {g[f'{p}_est_plain'].mean():.2f}" for p in POLICIES))
            lines.append("    coverage " + ", ".join(f"{p} {cover_p[p]}/{n}" for p in POLICIES) + "; claims "
                         + ", ".join(f"{p} {claims_p[p]}/{n}" for p in POLICIES))
            lines.append("    mean 95% interval width " + ", ".join(
                f"{p} {(g[f'{p}_hi_plain'] - g[f'{p}_lo_plain']).mean():.1f}" for p in POLICIES))
        if "ipw_ratio" in g:
            lines.append(f"  propensity: penalty C chosen {g['propensity_C'].median():g} (median), assessed's inverse "
                         f"risk-set propensities / weighted rows {g['ipw_ratio'].mean():.2f} (1 if calibrated)")
        # the slope is a ratio over the predictions' variance: a seed whose effect model predicts nearly
        # constant benefits gives a slope of any size, so the mean alone misleads (one seed of 6 at 6,000
        # persons had -19); the median and the z values (slope / se) are the robust summaries
        z = g["blp_slope"] / ((g["blp_slope"] - g["blp_lo"]) / 1.96)
        lines.append(f"  BLP slope mean {g['blp_slope'].mean():.2f}, median {g['blp_slope'].median():.2f}; z mean "
                     f"{z.mean():.2f}, interval above 0 in {int((g['blp_lo'] > 0).sum())}/{n}, z < -1.96 in "
                     f"{int((z < -1.96).sum())}/{n}; seconds per seed {g['seconds'].mean():.0f}")
        need = int(np.ceil(0.85 * n))
        targets.append((f"{sc}: coverage of the true policy values by the 95 % intervals (each policy)",
                        f"min {min(cover.values())}/{n} ({', '.join(f'{p} {cover[p]}' for p in POLICIES)})",
                        f">= {need}/{n}", min(cover.values()) >= need))
        if sc == "het":
            targets.append(("het: true prevented, top-by-benefit / top-by-risk (pooled)",
                            f"{ratio:.2f} (benefit {true_mean['benefit']:.2f}, risk {true_mean['risk']:.2f}, "
                            f"oracle {g['oracle'].mean():.2f}; a ranking by the true relative effect as far as "
                            f"the features tell: {feat:.2f})", ">= 1.3", ratio >= 1.3))
        if sc == "hom":
            worse_true = int((g["benefit_true"] < g["risk_true"] - (g["risk_hi"] - g["risk_lo"]) / 2).sum())
            targets.append(("hom: benefit not worse than risk beyond the interval (offline paired interval "
                            "of benefit - risk below 0)", f"{worse} of {n} seeds (true: benefit/risk {ratio:.2f}, "
                            f"true value below risk's by more than its half-interval in {worse_true})", "0", worse == 0))
        if sc == "zero":
            most = max(claims.values())
            targets.append(("zero: a policy claims prevention (interval above 0)",
                            f"max {most}/{n} ({', '.join(f'{p} {claims[p]}' for p in POLICIES)})",
                            f"<= {int(np.floor(0.1 * n))}/{n}", most <= np.floor(0.1 * n)))
    lines += ["", f"Quality targets ({args.persons:,} persons, learner {args.learner}, capacity {args.capacity:.0%}, "
              f"{'unconfounded' if args.unconfounded else 'confounded by latent severity'}"
              f"{''.join(f', {k}={v:g}' for k, v in getattr(args, 'param', []))}):", "",
              "| target | measured | asked | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {'yes' if d else 'no'} |" for a, b, c, d in targets]
    return "\n".join(lines)


def _param(text: str) -> tuple[str, float]:
    from iizrisk.synth import SwissDefaults

    name, sep, value = text.partition("=")
    if not sep or name not in SwissDefaults.__dataclass_fields__:
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=VALUE with a field of iizrisk.synth.SwissDefaults")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the value must be a number") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1 (0)")
    ap.add_argument("--report", nargs="+", metavar="CSV",
                    help="only print the report of per-seed rows written earlier with --csv (several runs pooled)")
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
    ap.add_argument("--learner", choices=["dr", "t", "s"], default="dr")
    ap.add_argument("--propensity-c", type=float, default=None, metavar="C",
                    help="a fixed propensity penalty (e.g. 1, the earlier default); default: chosen by the model "
                         "by cross-validated log loss")
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    ap.add_argument("--unconfounded", action="store_true")
    ap.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                    help="a synthetic canton's parameter (iizrisk.synth.SwissDefaults), repeatable; e.g. "
                         "het_severity_width=1e9: the effect no longer varies with the latent severity, only with "
                         "what the features see (an IV process, long social assistance, earlier spells)")
    ap.add_argument("--csv", help="also write the per-seed rows here")
    args = ap.parse_args(argv)
    logging.getLogger("iizrisk").setLevel(logging.ERROR)
    if args.report:
        df = pd.concat([pd.read_csv(f) for f in args.report], ignore_index=True)
        df = df.drop_duplicates(["scenario", "seed"], keep="last")
        df = df[df["scenario"].isin(args.scenarios)]
        df["refused"] = df["refused"].where(df["refused"].notna(), None) if "refused" in df else None
        print(report(df, args))
        return 0
    rows = []
    for sc in args.scenarios:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            r = one(sc, seed, args)
            rows.append(r)
            shown = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()
                     if k in ("scenario", "seed", "refused", "n_treated", "risk_true", "benefit_true", "benefit_est",
                              "risk_est", "oracle", "rel_ceiling", "feat_ceiling", "blp_slope", "seconds", "normal_refused")}
            print(shown, flush=True)
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    print()
    print(report(df, args))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
