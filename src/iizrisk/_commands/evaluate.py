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

The CSV tables are for people (:func:`iizrisk.tables.write_table`: ``;``,
UTF-8 with BOM, formulas neutralised; headers in ``--language``, else the
column codes).

The files are written by :meth:`iizrisk.evaluation.AssessmentStudy.to_dir`
(the result protocol of :mod:`iizrisk._results`). Disclosure control
(docs/domain.md section 6, :mod:`iizrisk.suppression`): every
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
import logging
import sys
from pathlib import Path

from .._time import EARLIEST_DATE, LATEST_DATE
from ..errors import EXIT_OK, IizriskError, ValidationError
from ._args import (
    MAX_MONTHS,
    float_at_least,
    int_at_least,
    iso_date,
    output_folder,
    refuse_overwriting_inputs,
    require_interventions_of_type,
)
from .snapshots import (
    add_dask_arguments,
    check_dask_args,
    config_extra_institutions,
    dask_from_args,
)

HELP = "estimate the effect of joint assessments on later outcomes (risk-set matching); write DIR"
DESCRIPTION = (
    "Build a risk-set study from canonical spells and interventions: everyone assessed (first "
    "intervention of the type) on day d against people registered and not yet assessed on d, "
    "point-in-time features at d as covariates, outcomes after d. Writes the estimates (with the "
    "naive comparison), balance tables, survival curves of a sustained exit and plots to DIR, with "
    "cells of fewer than --min-cell-size people suppressed. The estimates are causal only if the "
    "features capture why people were assessed (see study.json, 'assumptions'). With --dask the covariates "
    "and outcomes are computed per person bucket on a Dask cluster; the results are identical."
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
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR", help="output folder")
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
    p.add_argument("--language", choices=["de", "fr", "it", "en"], default=None,
                   help="headers of the CSV tables in this language (default: the column codes)")
    add_dask_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..evaluation import AssessmentStudy, study_outcome_columns
    from ..evaluation._outputs import mask_small_integers
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
    check_dask_args(args)
    refuse_overwriting_inputs({"--spells": args.spells, "--interventions": args.interventions},
                              folders={"--out": args.out})
    spells, interventions = read_inputs(args.spells, args.interventions,
                                        extra_institutions=config_extra_institutions(args), warn_empty=False)
    if interventions is None:  # pragma: no cover - the option is required
        raise SystemExit("--interventions is required")
    require_interventions_of_type(interventions, args.interventions, args.intervention_type)
    period = None
    if args.period_from or args.period_to:
        # an open side reaches the first or last day iizrisk works with (the data bound it anyway)
        period = (args.period_from or EARLIEST_DATE.isoformat(), args.period_to or LATEST_DATE.isoformat())
    study = AssessmentStudy(
        outcomes=outcomes,
        horizon_months=args.horizon_months, method=args.method,
        controls_per_treated=args.controls_per_treated, caliper=args.caliper,
        match_within=None if args.match_within == "none" else args.match_within,
        n_bootstrap=args.bootstrap, intervention_type=args.intervention_type,
        exit_months=args.exit_months, followup_months=args.followup_months, period=period,
        random_state=args.seed)
    try:
        with dask_from_args(args) as client:
            if client is None:
                study.fit(spells, interventions)
            else:
                study.fit(spells, interventions, client=client)
    except IizriskError:  # its own message and exit code (ValidationError and ConfigError are ValueErrors too)
        raise
    except (ValueError, TypeError) as exc:  # the library's checks of the data: invalid input, not a bug
        raise ValidationError(f"{args.spells}, {args.interventions}: cannot build or estimate the study: "
                              f"{_safe_reason(exc)}") from exc
    if not study.estimators_:  # nothing to publish: say why instead of writing empty tables
        why = "; ".join(mask_small_integers(m, args.min_cell_size) for lv, m in study.diagnostics_
                        if lv == "warning")
        raise ValidationError(f"{args.spells}: no outcome could be estimated ({why}); a larger --caliper, more "
                              "--controls-per-treated or a longer --from/--to period may help; nothing written")
    params = {key: v for key, v in vars(args).items()
              if not key.startswith("_") and key not in ("command", "verbose", "quiet", "dask", "workers")}
    paths = study.to_dir(args.out, min_cell_size=args.min_cell_size, parameters=params, language=args.language)
    logger.info("evaluate: %d files written to %s", len(paths), args.out)
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


# --------------------------------------------------------------------------- kept for callers
def _plot_estimates(est, path: Path) -> None:
    """The forest plot of a suppressed estimates table, as ``iizrisk evaluate`` draws it, saved to ``path``."""
    from .._results import write_png_atomic
    from ..evaluation._outputs import plot_estimates_table

    write_png_atomic(plot_estimates_table(est), path, dpi=110, private=True)
