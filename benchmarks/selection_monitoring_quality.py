"""Issue 20 quality targets on a synthetic canton: expected vs realised precision, and a planted ALV slowdown.

Run by hand: ``.venv/bin/python benchmarks/selection_monitoring_quality.py [N_PERSONS]``. Prints two tables:
the label-free expected precision of the top-k (CBPE) beside the realised one over 12 monthly as-of dates,
and, per night every ``STEP`` days, the drift warnings with and without ALV exits slowed by 30 % from a date
(the synthetic generator has no shock option yet: the shock is planted with monitoring.slow_down_exits).
"""

from __future__ import annotations

import sys
import time

import pandas as pd

from iizrisk.features import PointInTimeFeatures
from iizrisk.model import RiskModel, score
from iizrisk.monitoring import (
    MonitoringThresholds,
    attach_reference,
    feature_drift,
    realised_performance,
    slow_down_exits,
)
from iizrisk.outcomes import compute_outcome
from iizrisk.synth import generate

N = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
K, STEP, SHOCK = 30, 5, pd.Timestamp("2020-07-01")


def main() -> None:
    t0 = time.time()
    spells = generate(N, "2012-01-01", "2022-12-31", seed=21, canton="BE").spells
    ft = PointInTimeFeatures().fit()
    X = ft.transform(spells, as_of=pd.date_range("2016-07-31", "2019-06-30", freq="ME"))
    y = compute_outcome(spells, pairs=X.index)["outcome"].to_numpy(dtype=bool)
    model = RiskModel(features=ft, n_threads=1).fit(X, y)
    attach_reference(model, X.loc[X.index.get_level_values("as_of") >= pd.Timestamp("2018-07-31")])
    rows = []
    for t in pd.date_range("2020-01-31", "2020-12-31", freq="ME"):
        sc = score(model, spells, as_of=t)
        top = sc.nsmallest(K, "rank").assign(institution="top")  # "all" is the pooled row
        perf = realised_performance(sc, top, spells, as_of=t, outcome="revolving_door", horizon_months=12)
        rows.append({"as_of": t.date(), "expected": perf.loc["all", "expected_precision"],
                     "realised": perf.loc["all", "realised_precision"], "roc_auc": perf.loc["all", "roc_auc"],
                     "expected_auc": perf.loc["all", "expected_auc"]})
    cbpe = pd.DataFrame(rows)
    print(f"CBPE, k={K}, {N} persons\n{cbpe.round(3).to_string(index=False)}")
    print(f"mean |expected - realised| precision: {(cbpe.expected - cbpe.realised).abs().mean():.3f}; "
          f"mean (realised - expected): {(cbpe.realised - cbpe.expected).mean():+.3f}")
    th = MonitoringThresholds()
    shocked = slow_down_exits(spells, from_date=SHOCK, slowdown=0.3, observed_until="2022-12-31")
    nights = pd.date_range(SHOCK - pd.Timedelta(days=180), SHOCK + pd.Timedelta(days=90), freq=f"{STEP}D")
    out = []
    for t in nights:
        for name, data in (("stable", spells), ("shocked", shocked)):
            Xt = ft.transform(data, as_of=[t])
            d = feature_drift(Xt, model.reference_)["psi"]
            out.append({"night": t.date(), "data": name, "max_psi": d.max(), "feature": d.idxmax(),
                        "warning": bool(d.max() >= th.feature_psi)})
    nd = pd.DataFrame(out)
    wide = nd.pivot(index="night", columns="data", values=["max_psi", "warning"])
    print(wide.to_string())
    stable_warn = int(nd[(nd.data == "stable")].warning.sum())
    after = nd[(nd.data == "shocked") & (pd.to_datetime(nd.night) >= SHOCK) & nd.warning]
    first = after.night.min() if len(after) else None
    print(f"false warnings without the shock: {stable_warn} of {int((nd.data == 'stable').sum())} nights "
          f"(every {STEP} days); first warning after the shock: {first} "
          f"({(pd.Timestamp(first) - SHOCK).days if first else 'none'} days)")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
