"""Cost of the nightly run's monitoring stage (iizrisk.monitoring.monitor_night) at up to national scale.

Random canonical spells (``bench_flags.make_spells``, 5 spells per person, with recorded dates).
Everyone with a spell open at T is scored, with 55 random feature columns (the width of the default
features) and a random risk; the training reference is taken from the same kind of matrix; each of
the eight institutions lists 50 people. A history store holds the run of 13 months before T (scores
and lists of the same people), so the night also computes the realised precision, AUC and
calibration of a past run and the list churn against the previous run: every part of the stage.

Prints wall and CPU seconds and peak resident memory of the stage, split into its parts where they
can be called alone (input drift, flows, realised performance), and the stage's CPU seconds as a share
of the whole nightly run at that size (the README's stage table: 38.6 s at 10M spells on 2 cores).

Measured at 10M spells (1.04M scored; CPU seconds, the machine shared with a test run): the whole
stage took 51.4 CPU s before the realised performance reused the night's timeline, 12.9 after, and
3.4 (9 % of the nightly run) once the realised figures labelled a fixed sample of 200,000 scored
persons from their own timeline rows, the flows counted each row's windows arithmetically instead of
13 passes, and date columns became day numbers by integer division: input drift 0.2, flows 1.1,
the realised performance of the past run 1.2.

    python benchmarks/bench_monitoring.py --spells 1000000 10000000
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import pandas as pd

from _common import print_table, stage
from bench_flags import AS_OF, make_spells

#: the whole nightly run at 10M spells (benchmarks/results/latest.json, `iizrisk run` in a fresh process)
NIGHTLY_10M_SECONDS = 38.59
N_FEATURES = 55


def _timed(rows: list[dict], name: str, fn, **info):
    with stage(rows, name, cpu=True, **info):
        return fn()


def run(n_spells: int) -> list[dict]:
    from iizrisk.history import HistoryStore
    from iizrisk.io import to_canonical_dtypes
    from iizrisk.model._reference import feature_reference
    from iizrisk.monitoring import (
        FlowThresholds,
        feature_drift,
        institution_flows,
        monitor_night,
        realised_performance,
    )
    from iizrisk.view import View

    rng = np.random.default_rng(2)
    # the nightly run's canonical dtypes (categorical institutions, encoded pseudonyms), as ingestion gives them
    spells = to_canonical_dtypes(make_spells(n_spells, n_spells // 5))
    t = pd.Timestamp(AS_OF)
    tl = View.at(spells, AS_OF).timeline  # the nightly run's view: monitoring reuses its timeline
    open_at_t = np.bincount(tl.person[tl.end.astype(np.int64) >= tl.as_of], minlength=tl.n_persons) > 0
    ids = tl.person_ids[open_at_t].astype(str)
    n = len(ids)
    cols = [f"f{i:02d}" for i in range(N_FEATURES)]
    X = pd.DataFrame(rng.gamma(2.0, 3.0, size=(n, N_FEATURES)).astype(np.float32), columns=cols)
    risk = rng.beta(1, 12, n)
    reference = feature_reference(X.sample(min(n, 500_000), random_state=0), risk=risk[:min(n, 500_000)])
    bands = np.where(risk >= 0.25, "high", np.where(risk >= 0.10, "medium", "low"))
    scores = pd.DataFrame({"person_id": ids, "risk": risk, "risk_band": bands, "outcome": "revolving_door"})
    insts = ["ALV", "IV", "SH", "BB", "BSLB", "MIG", "UV", "KTG"]
    top = np.argsort(-risk)[:50 * len(insts)]
    lists = pd.DataFrame({"institution": np.repeat(insts, 50), "person_id": ids[top], "risk": risk[top]})
    past = (t - pd.DateOffset(months=13)).normalize()
    rows: list[dict] = []
    info = {"spells": n_spells, "persons_scored": n}
    with tempfile.TemporaryDirectory() as tmp:
        history = HistoryStore(tmp)
        history.write(past, scores=scores.assign(as_of=past), worklists=lists.assign(as_of=past))
        history.write(t - pd.Timedelta(days=1), worklists=lists.assign(as_of=t - pd.Timedelta(days=1)))
        _timed(rows, "input drift (55 features)", lambda: feature_drift(X, reference), **info)
        ft = FlowThresholds()
        _timed(rows, "institution flows (13 windows)",
               lambda: institution_flows(spells, t, window_days=ft.window_days,
                                         baseline_windows=ft.baseline_windows), **info)
        _timed(rows, "realised performance (a past run)",
               lambda: realised_performance(scores, lists, spells, as_of=past, outcome="revolving_door",
                                            horizon_months=12, observed_until=t.date(), timeline=tl), **info)
        table = _timed(rows, "monitor_night (the whole stage)",
                       lambda: monitor_night(as_of=t, X=X, scores=scores, worklists=lists, reference=reference,
                                             history=history, spells=spells, outcome="revolving_door",
                                             timeline=tl), **info)
    kinds = sorted(set(table["kind"]))
    rows[-1]["kinds"] = ",".join(kinds)
    if n_spells == 10_000_000:
        # CPU seconds: the stage is one thread, and on a loaded machine its wall time says little
        rows[-1]["cpu_share_of_nightly"] = f"{rows[-1]['cpu_seconds'] / NIGHTLY_10M_SECONDS:.0%}"
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spells", type=int, nargs="+", default=[1_000_000])
    args = ap.parse_args(argv)
    rows = [r for n in args.spells for r in run(n)]
    print_table(rows, "The nightly monitoring stage (drift, flows, churn, expected and realised precision)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
