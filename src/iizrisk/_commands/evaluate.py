"""``iizrisk evaluate``: effect of joint assessments on later outcomes, with small cells suppressed.

Writes into ``--out DIR`` (each file atomically):

``estimates.csv``
    one row per outcome: adjusted effect on the assessed (ATT) with interval,
    group sizes, means, the naive difference;
``balance.csv``, ``balance.png``
    standardised mean differences of the covariates before and after adjustment;
``survival.csv``, ``survival.png``
    monthly Kaplan-Meier cumulative incidence of a sustained exit, assessed
    against matched controls, with confidence bands;
``estimates.png``
    forest plot of the adjusted and naive estimates;
``study.json``
    parameters, diagnostics, assumptions and the list of files.

Disclosure control (DOMAIN.md section 6, :mod:`iizrisk.suppression`): every
count of people between 1 and ``k - 1`` (default ``k = 5``) is hidden, and so is
everything computed from it: an outcome row whose group sizes or (for 0/1
outcomes) numbers of people with and without the outcome are small; a
covariate whose 0/1 counts in a group are small; survival months with few
exits (and the months after a hidden run, until the hidden exits add up to
``k``), and the tail of a curve once fewer than ``k`` people are at risk; the
numbers at risk are rounded to a multiple of ``k`` (their differences would
count the people censored).
Small integers in the diagnostic messages of ``study.json`` are written as
``<k``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import EXIT_OK, ValidationError
from ._args import MAX_MONTHS, float_at_least, int_at_least, iso_date

HELP = "estimate the effect of joint assessments on later outcomes (risk-set matching); write DIR"
DESCRIPTION = (
    "Build a risk-set study from canonical spells and interventions: everyone assessed (first "
    "intervention of the type) on day d against people registered and not yet assessed on d, "
    "point-in-time features at d as covariates, outcomes after d. Writes the estimates (with the "
    "naive comparison), balance tables, survival curves of a sustained exit and plots to DIR, with "
    "cells of fewer than --min-cell-size people suppressed. The estimates are causal only if the "
    "features capture why people were assessed (see study.json, 'assumptions')."
)

logger = logging.getLogger("iizrisk")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spells", required=True, metavar="PATH", help="canonical spells: a Parquet file or folder")
    p.add_argument("--interventions", required=True, metavar="PATH", help="interventions (CSV or Parquet)")
    p.add_argument("--outcome", action="append", metavar="NAME",
                   help="outcome (repeatable): revolving_door, disintegration, any registered outcome, "
                        "days_registered_next_<k>m, new_spells_next_<k>m (default: revolving_door, "
                        "disintegration, days_registered_next_12m, days_registered_next_24m, "
                        "new_spells_next_24m)")
    p.add_argument("--horizon-months", type=int_at_least(1, MAX_MONTHS), default=12, metavar="N",
                   help="horizon of revolving_door, disintegration and other registered outcomes (12)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--method", choices=["matching", "ipw", "stratification", "regression", "naive"],
                   default="matching", help="adjustment (default: risk-set matching on the propensity score)")
    p.add_argument("--intervention-type", default="joint_assessment", metavar="TYPE",
                   help="interventions studied (default joint_assessment)")
    p.add_argument("--controls-per-treated", type=int_at_least(1, 1_000_000), default=50, metavar="K",
                   help="controls sampled per assessed person from each day's risk set (50)")
    p.add_argument("--caliper", type=float_at_least(0), default=0.2, metavar="SD",
                   help="matching caliper in SD of the logit propensity score (0.2)")
    p.add_argument("--match-within", choices=["day", "month", "quarter", "none"], default="month",
                   help="pairs share the index day, month or quarter, or nothing (month)")
    p.add_argument("--exit-months", type=int_at_least(1, MAX_MONTHS), default=6, metavar="N",
                   help="months without registration that make an exit sustained (6)")
    p.add_argument("--followup-months", type=int_at_least(1, MAX_MONTHS), default=24, metavar="N",
                   help="time at which the survival curves are summarised (24)")
    p.add_argument("--from", dest="period_from", type=iso_date, metavar="YYYY-MM-DD",
                   help="first assessment day studied")
    p.add_argument("--to", dest="period_to", type=iso_date, metavar="YYYY-MM-DD", help="last assessment day studied")
    p.add_argument("--bootstrap", type=int_at_least(0, 1_000_000), default=200, metavar="B",
                   help="bootstrap replicates (200)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="random seed of sampling and bootstrap (0)")
    p.add_argument("--min-cell-size", type=int_at_least(1), default=5, metavar="K",
                   help="suppress counts of 1..K-1 people and what is derived from them (5)")


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..evaluation import AssessmentStudy, study_outcome_columns
    from ..evaluation._study import DEFAULT_OUTCOMES
    from .features import read_inputs

    outcomes = tuple(args.outcome) if args.outcome else DEFAULT_OUTCOMES
    try:
        study_outcome_columns(outcomes, args.horizon_months)
    except ValueError as exc:
        raise ConfigError(f"--outcome: {exc}") from None
    if args.period_from and args.period_to and args.period_from > args.period_to:
        raise ConfigError(f"--from {args.period_from} lies after --to {args.period_to}; give the first "
                          "assessment day before the last")
    spells, interventions = read_inputs(args.spells, args.interventions)
    if interventions is None:  # pragma: no cover - the option is required
        raise SystemExit("--interventions is required")
    period = None
    if args.period_from or args.period_to:
        period = (args.period_from or "1900-01-01", args.period_to or "2999-12-31")
    study = AssessmentStudy(
        outcomes=outcomes,
        horizon_months=args.horizon_months, method=args.method,
        controls_per_treated=args.controls_per_treated, caliper=args.caliper,
        match_within=None if args.match_within == "none" else args.match_within,
        n_bootstrap=args.bootstrap, intervention_type=args.intervention_type,
        exit_months=args.exit_months, followup_months=args.followup_months, period=period,
        random_state=args.seed)
    try:
        study.fit(spells, interventions)
    except (ValueError, TypeError) as exc:  # the library's checks of the data: invalid input, not a bug
        raise ValidationError(f"{args.spells}, {args.interventions}: cannot build or estimate the study: "
                              f"{_safe_reason(exc)}") from exc
    if not study.estimators_:  # nothing to publish: say why instead of writing empty tables
        why = "; ".join(_mask_small_integers(m, args.min_cell_size) for lv, m in study.diagnostics_
                        if lv == "warning")
        raise ValidationError(f"{args.spells}: no outcome could be estimated ({why}); a larger --caliper, more "
                              "--controls-per-treated or a longer --from/--to period may help; nothing written")
    paths = write_outputs(study, args.out, k=args.min_cell_size, argv=vars(args))
    for path in paths:
        print(path, file=sys.stdout)
    return EXIT_OK


def _safe_reason(exc: BaseException) -> str:
    """The message of an error raised by iizrisk's own code; for one from a library only its kind.

    iizrisk's messages name columns and counts, never values; a message from
    pandas or numpy may quote a data value, so it is left out (``-vv`` logs
    the traceback).
    """
    tb = exc.__traceback__
    module = ""
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        tb = tb.tb_next
    if module.startswith("iizrisk."):
        return str(exc)
    logger.debug("evaluate: %s", type(exc).__name__, exc_info=exc)
    return f"{type(exc).__name__} in {module or 'a library'} (rerun with -vv for the details)"


# --------------------------------------------------------------------------- suppression
def _small(counts, k: int) -> np.ndarray:
    """Counts of 1 .. k-1 people (primary rule of iizrisk.suppression), for each value."""
    from ..suppression import suppress_table

    c = pd.Series(np.asarray(counts, dtype=np.float64)).fillna(0).round().astype(np.int64)
    tab = pd.DataFrame({"cell": np.arange(len(c)).astype(str), "n": c.to_numpy()})
    res = suppress_table(tab, "n", dims=["cell"], k=k, margins=[], known_totals=False)
    return (res.status != "published").to_numpy()


def suppressed_estimates(study, k: int) -> pd.DataFrame:
    """The study summary with rows resting on fewer than ``k`` people hidden."""
    s = study.summary.copy()
    lvl = f"{1 - study.alpha:.0%}"
    s = s.rename(columns=lambda c: c.replace(f" {lvl}", f"_{lvl.rstrip('%')}").replace(" ", "_"))
    hide = np.zeros(len(s), dtype=bool)
    counts = [s["n_treated"], s["n_control"]]
    for i, col in enumerate(s.index):
        est = study.estimators_[col]
        naive = study.naive_[col]
        y = est.treated_.index  # rows analysed
        values = study.table_.loc[y, col].to_numpy(dtype=np.float64)
        if np.isin(values, [0.0, 1.0]).all():  # 0/1 outcome: people with and without it are cells too
            t = naive.treated_.to_numpy()
            vt, vc = values[t], values[~t]
            cells = [vt.sum(), len(vt) - vt.sum(), vc.sum(), len(vc) - vc.sum()]
            if hasattr(est, "pairs_"):
                yt = study.table_.loc[est.pairs_["treated"], col].to_numpy(dtype=np.float64)
                yc = study.table_.loc[est.pairs_["control"], col].to_numpy(dtype=np.float64)
                cells += [yt.sum(), len(yt) - yt.sum(), yc.sum(), len(yc) - yc.sum()]
            hide[i] |= _small(cells, k).any()
    for c in counts:
        hide |= _small(c, k)
    values = [c for c in s.columns if c not in ("n_treated", "n_control")]
    s[["n_treated", "n_control"]] = s[["n_treated", "n_control"]].astype("Int64")
    s.loc[hide, ["n_treated", "n_control"]] = pd.NA
    s.loc[hide, values] = np.nan
    s.insert(0, "suppressed", hide)
    return s


def suppressed_balance(study, k: int) -> pd.DataFrame:
    """Balance of the first outcome's estimator; 0/1 covariates with small counts hidden."""
    if not study.estimators_:
        return pd.DataFrame()
    est = next(iter(study.estimators_.values()))
    bal = est.balance_.copy()
    t = est.treated_.to_numpy()
    X = study.table_.loc[est.treated_.index]
    hide = np.zeros(len(bal), dtype=bool)
    if hasattr(est, "pairs_"):
        groups = {"treated": t, "control": ~t, "matched treated": est.treated_.index.isin(est.pairs_["treated"]),
                  "matched control": est.treated_.index.isin(est.pairs_["control"])}
    else:
        groups = {"treated": t, "control": ~t}
    n_small = _small([g.sum() for g in groups.values()], k).any()
    for j, cov in enumerate(bal.index):
        if cov not in X.columns:  # missing-value indicator: its source column's gaps
            base = cov.removesuffix("_missing")
            v = X[base].isna().to_numpy(dtype=np.float64) if base in X.columns else None
        else:
            v = X[cov].to_numpy(dtype=np.float64)
        if v is None:
            hide[j] = True
            continue
        v = np.nan_to_num(v, nan=0.0)
        if np.isin(v, [0.0, 1.0]).all():
            cells = []
            for g in groups.values():
                cells += [v[g].sum(), g.sum() - v[g].sum()]
            hide[j] = _small(cells, k).any()
    if n_small:
        hide[:] = True
    bal.loc[hide, :] = np.nan
    bal.insert(0, "suppressed", hide)
    return bal


def suppressed_survival(study, k: int, months: int | None = None) -> pd.DataFrame:
    """Monthly Kaplan-Meier table per arm with small exit counts (and what reveals them) hidden."""
    from ..suppression import suppress_table

    rows = []
    horizon = int(months or max(study.followup_months, 36))
    grid = np.arange(0, horizon + 1, dtype=np.float64)
    for arm, km in study.survival_.items():
        s = km.survival_function_at_times(grid).to_numpy()
        ci = km.confidence_interval_at_times(grid).to_numpy()
        at_risk = km.at_risk_at_times(grid).to_numpy()
        cum_ev = np.array([float(km.event_table.loc[km.event_table.index <= g, "observed"].sum()) for g in grid])
        exits = np.diff(np.r_[0.0, cum_ev])
        for m in range(len(grid)):
            rows.append({"arm": arm, "month": int(grid[m]), "at_risk": at_risk[m], "exits": exits[m],
                         "cumulative_exit": 1 - s[m], "lower": 1 - ci[m, 1], "upper": 1 - ci[m, 0]})
    tab = pd.DataFrame(rows)
    if tab.empty:
        return tab
    tab = tab[tab["at_risk"] >= k].reset_index(drop=True)  # the tail with fewer than k at risk: not published
    tab["at_risk"] = tab["at_risk"].round().astype(np.int64)
    tab["exits"] = tab["exits"].round().astype(np.int64)
    res = suppress_table(tab.assign(month=tab["month"].astype(str)), "exits", dims=["arm", "month"], k=k,
                         margins=["month"], derived=["cumulative_exit", "lower", "upper"], also_hide=["at_risk"])
    out = res.table.assign(month=tab["month"].to_numpy())
    hidden = np.array(res.status != "published", dtype=bool)
    # a published month after a hidden run reveals the run's total: extend the run until it holds >= k exits
    for arm in out["arm"].unique():
        idx = np.flatnonzero((out["arm"] == arm).to_numpy())
        run = 0
        for i in idx:
            if hidden[i]:
                run += int(tab.loc[i, "exits"])
            elif 0 < run < k:
                hidden[i] = True
                run += int(tab.loc[i, "exits"])
            else:
                run = 0
    # differences of the numbers at risk count the people who left (exits and censored): publish them
    # rounded to a multiple of k
    out["at_risk"] = (np.round(tab["at_risk"].to_numpy() / k) * k).astype(np.int64)
    out["at_risk"] = out["at_risk"].astype("Int64")
    out.loc[hidden, ["exits", "at_risk"]] = pd.NA
    out.loc[hidden, ["cumulative_exit", "lower", "upper"]] = np.nan
    out.insert(2, "suppressed", hidden)
    return out


# --------------------------------------------------------------------------- plots
def _plot_survival(tab: pd.DataFrame, study, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (arm, g) in enumerate(tab.groupby("arm", sort=False)):
        g = g[~g["suppressed"]]
        ax.step(g["month"], g["cumulative_exit"], where="post", color=f"C{i}", label=arm)
        ax.fill_between(g["month"], g["lower"].astype(float), g["upper"].astype(float), step="post",
                        alpha=0.2, color=f"C{i}", linewidth=0)
    ax.set_xlabel("months since the index day")
    ax.set_ylabel(f"sustained exit ({study.exit_months} months unregistered)")
    ax.set_ylim(0, 1)
    ax.set_title("Sustained exit: assessed vs matched controls (published months only)")
    ax.legend(fontsize="small")
    _save(fig, path)


def _plot_balance(bal: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    from ..evaluation import SMD_THRESHOLD

    b = bal[~bal["suppressed"]]
    b = b.reindex(b["smd_before"].abs().sort_values().index).tail(40)
    fig, ax = plt.subplots(figsize=(6.5, 1.5 + 0.22 * max(len(b), 1)))
    y = np.arange(len(b))
    ax.scatter(b["smd_before"].abs(), y, facecolors="none", edgecolors="C3", label="before")
    if b["smd_after"].notna().any():
        ax.scatter(b["smd_after"].abs(), y, color="C0", label="after")
    ax.axvline(SMD_THRESHOLD, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, list(b.index))
    ax.set_xlabel("|standardised mean difference|")
    ax.legend(fontsize="small")
    _save(fig, path)


def _plot_estimates(est: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    e = est[~est["suppressed"]]
    lo = [c for c in e.columns if c.startswith("lower_")][0]
    hi = [c for c in e.columns if c.startswith("upper_")][0]
    nlo = [c for c in e.columns if c.startswith("naive_lower_")][0]
    nhi = [c for c in e.columns if c.startswith("naive_upper_")][0]
    fig, axes = plt.subplots(len(e), 1, figsize=(6.5, 1.1 + 0.9 * max(len(e), 1)), squeeze=False)
    for ax, (name, r) in zip(axes[:, 0], e.iterrows(), strict=True):
        # the interval as a segment from its bounds: a bootstrap percentile interval need not contain
        # the estimate (errorbar's xerr would be negative), and it is missing without bootstrap
        for y, point, low, high, colour, label in ((1, r["estimate"], r[lo], r[hi], "C0", "adjusted"),
                                                    (0, r["naive"], r[nlo], r[nhi], "C3", "naive")):
            if np.isfinite(low) and np.isfinite(high):
                ax.plot([low, high], [y, y], color=colour, linewidth=1.5, marker="|", markersize=8)
            ax.plot([point], [y], "o", color=colour, label=label)
        ax.axvline(0, color="grey", linewidth=1)
        ax.set_yticks([0, 1], ["naive", "adjusted"])
        ax.set_ylim(-0.6, 1.6)
        ax.set_title(str(name), fontsize="small", loc="left")
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", metadata={"Software": None})
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_text(text: str, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _mask_small_integers(text: str, k: int) -> str:
    """Write integers 1 .. k-1 standing alone (not part of a decimal or a percentage) as ``<k``.

    Examples
    --------
    >>> _mask_small_integers("3 of 120 treated (2.5%), 0 left", 5)
    '<5 of 120 treated (2.5%), 0 left'
    """
    return re.sub(r"(?<![\d.,])(\d+)(?![\d.,%])",
                  lambda m: f"<{k}" if 0 < int(m.group(1)) < k else m.group(1), text)


def write_outputs(study, out, *, k: int = 5, argv: dict | None = None) -> list[Path]:
    """Write the suppressed tables, plots and ``study.json`` of a fitted study into ``out``."""
    from .. import __version__
    from ..evaluation import ASSUMPTIONS

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    est = suppressed_estimates(study, k)
    bal = suppressed_balance(study, k)
    surv = suppressed_survival(study, k)
    for name, frame in (("estimates.csv", est), ("balance.csv", bal), ("survival.csv", surv)):
        p = out / name
        _write_text(frame.to_csv(index=name != "survival.csv", float_format="%.6g"), p)
        paths.append(p)
    if len(surv):
        _plot_survival(surv, study, out / "survival.png")
        paths.append(out / "survival.png")
    if len(bal):
        _plot_balance(bal, out / "balance.png")
        paths.append(out / "balance.png")
    if len(est) and (~est["suppressed"]).any():
        _plot_estimates(est, out / "estimates.png")
        paths.append(out / "estimates.png")
    params = {key: (str(v) if isinstance(v, Path) else v) for key, v in (argv or {}).items()
              if not key.startswith("_") and key not in ("command", "verbose", "quiet")}
    diags = [{"level": lv, "message": _mask_small_integers(m, k)} for lv, m in study.diagnostics_]
    if study.estimators_:
        first = next(iter(study.estimators_.values()))
        diags += [{"level": lv, "message": _mask_small_integers(m, k)} for lv, m in first.diagnostics_]
    meta = {
        "iizrisk_version": __version__,
        "observed_until": study.table_.attrs.get("observed_until"),
        "method": next(iter(study.estimators_.values()))._describe() if study.estimators_ else None,
        "parameters": params,
        "min_cell_size": k,
        "diagnostics": diags,
        "assumptions": ASSUMPTIONS,
        "files": [p.name for p in paths] + ["study.json"],
    }
    p = out / "study.json"
    _write_text(json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n", p)
    paths.append(p)
    logger.info("evaluate: %d files written to %s", len(paths), out)
    return paths
