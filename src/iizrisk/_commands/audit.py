"""``iizrisk audit``: fairness audit of a model on a labelled period, with its model card.

Scores everyone with a spell open on the as-of date T with the model, labels
them with the model's outcome over T+1 ... T+H from the full spells, and
writes to DIR (every table suppressed: cells with fewer than
``--min-cell-size`` people hidden)::

    fairness_summary.csv/.parquet       per group: n, flag rate, precision, recall, FPR,
                                        calibration, ROC AUC, gap flag
    fairness_gaps.csv/.parquet          per group and metric: difference and ratio to the
                                        reference group with bootstrap intervals, and the
                                        rule's verdict (exceeds, cannot tell at this sample
                                        size with the group size needed, within)
    fairness_calibration.csv/.parquet   observed vs predicted per risk bin and group
    fairness_<metric>.png, fairness_calibration.png
    model_card.md/.html/.json           the model card with the audit (with --config also the
                                        oversight figures of the deployment's history)

The CSV tables are for people (:func:`iizrisk.tables.write_table`: ``;``,
UTF-8 with BOM, headers in the language of ``--language``, formulas
neutralised); with ``--xlsx`` each table is also written as ``.xlsx``; the
Parquet files keep the column codes for machines. Files are written to a
temporary folder first and moved into DIR only when everything succeeded.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from ..errors import EXIT_OK, IizriskError, ValidationError
from ._args import int_at_least, iso_date, output_folder, refuse_overwriting_inputs
from .features import add_key_argument, read_inputs
from .score import add_unsigned_argument

HELP = "fairness audit of a model on a labelled period: suppressed tables, plots and the model card"
#: run as the console script, glibc keeps freed memory for the next arrays (:mod:`iizrisk._memory`): the audit's
#: stages build and drop arrays of hundreds of MB
KEEPS_FREED_MEMORY = True
DESCRIPTION = (
    "Score everyone with a spell open on the as-of date T, label them with the model's outcome over "
    "the horizon after T (T plus the horizon must lie within the data), and compare flag rate at "
    "capacity, precision, recall, false-positive rate, calibration and ROC AUC across sex, nationality "
    "group, age band, disability (IV proxy) and canton and their pairs, against a reference group with "
    "bootstrap confidence intervals. The fairness rule (default: flag-rate ratios within 0.8 to 1.25, "
    "the four-fifths rule, and calibration gaps within 0.05; the configuration's [privacy] fairness_* "
    "settings) judges each disparity on its interval: exceeds, cannot tell at this sample size, or "
    "within. Writes the tables (CSV with ';' and headers in the --language, with --xlsx also Excel, and "
    "Parquet; cells with fewer than --min-cell-size people "
    "suppressed), plots (PNG) and the model card (Markdown, HTML, JSON) to DIR; exceeding disparities "
    "are logged as warnings. Exit codes: 0 ok, 1 invalid input, 2 usage, 3 model problem."
)

logger = logging.getLogger("iizrisk")


def _capacity(text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of people or a share") from None
    if value <= 0 or (value >= 1 and not value.is_integer()):
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of people (>= 1) or a share in (0, 1)")
    return int(value) if value >= 1 else value


def _ratio_bound(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{value}: a ratio bound in (0, 1], such as 0.8")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``iizrisk audit``."""
    from ..fairness import GROUP_COLUMNS

    p.add_argument("--model", required=True, metavar="MODEL_DIR", help="model directory (iizrisk train)")
    p.add_argument("--spells", required=True, metavar="PATH",
                   help="canonical spells of the whole export (Parquet file or folder), T plus the horizon included")
    p.add_argument("--interventions", metavar="PATH", help="interventions (CSV or Parquet)")
    p.add_argument("--as-of", required=True, type=iso_date, metavar="YYYY-MM-DD",
                   help="as-of date T of the audited period (its horizon must be observed)")
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR", help="output folder")
    p.add_argument("--capacity", type=_capacity, metavar="K",
                   help="people flagged: the K highest risks, or a share such as 0.05 (default: with --config "
                        "the places the deployment's lists can hold at the as-of date, else the capacity recorded at "
                        "training, else 50)")
    p.add_argument("--config", metavar="CONFIG",
                   help="deployment configuration (.toml): its [privacy] min_cell_size, "
                        "protected_attributes and fairness rule (fairness_min_ratio, fairness_ratio_metrics, "
                        "fairness_max_differences) become the defaults")
    p.add_argument("--min-cell-size", type=int_at_least(1), metavar="N",
                   help="suppress cells with fewer than N people (default 5, or the configuration's; at least 1: "
                        "unsuppressed tables must not leave the system)")
    p.add_argument("--min-ratio", type=_ratio_bound, default=None, metavar="R",
                   help="ratio bound of the fairness rule: a group's flag rate must lie within R to 1/R times "
                        "the reference's (default: the configuration's [privacy] fairness_min_ratio, else 0.8)")
    p.add_argument("--groups", metavar="A,B",
                   help=f"attributes to audit (default {','.join(GROUP_COLUMNS)}, or the configuration's "
                        "protected attributes with age_band and canton)")
    p.add_argument("--bootstrap", type=int_at_least(0), default=500, metavar="N",
                   help="bootstrap replicates for the intervals (default 500; 0: none)")
    p.add_argument("--language", choices=["en", "de", "fr", "it"], default=None,
                   help="language of the model card and of the tables' headers (default: the configuration's "
                        "[worklist] language, else en)")
    p.add_argument("--xlsx", action="store_true", help="also write each table as <name>.xlsx (Excel)")
    p.add_argument("--seed", type=int_at_least(0, 2**32 - 1), default=0,
                   help="random seed of ties and the bootstrap (default 0)")
    add_key_argument(p)
    add_unsigned_argument(p)


def _places(settings, spells, as_of) -> int | None:
    """The places of the deployment's lists at ``as_of``: each institution's ``[worklist]`` capacity, at
    most the people with a case open there then (as known then: an end after T, or recorded after it, is
    open). None when no case is open (the model's own capacity applies).

    The audit flags the highest risks; with a configuration it flags as many as the lists can hold, not
    the capacity the model was trained with (50 where eight lists of 25 are published). An upper bound:
    the lists leave out people below ``min_band``, recently assessed or kept off by a review, and a
    person on two lists is flagged once.
    """
    import pandas as pd

    from ..spells import point_in_time

    cols = [c for c in ("person_id", "institution", "start_date", "end_date", "recorded_date", "exit_reason")
            if c in spells.columns]
    known = point_in_time(spells[cols], as_of)  # as known at T: later rows left out, later ends open
    if "end_date" in known.columns:  # open at T as the nightly run counts it: no end known then
        known = known[pd.to_datetime(known["end_date"]).isna().to_numpy()]
    people = known.assign(institution=known["institution"].astype(str)).groupby("institution")["person_id"] \
        .nunique()
    if not len(people):
        return None
    w = settings.worklist
    places = {i: min(int(w.capacity_per_institution.get(i, w.capacity)), int(n)) for i, n in people.items()}
    logger.info("audit: capacity %d, the places of the deployment's lists at %s (%s; at most the people with "
                "a case open there); --capacity sets another", sum(places.values()), as_of,
                ", ".join(f"{i} {n}" for i, n in places.items()))
    return sum(places.values())


def run(args: argparse.Namespace) -> int:
    """Load, label, audit, write; errors carry their exit codes (1 input, 3 model)."""
    from .._texts import colon, text
    from ..config import Settings
    from ..fairness import (
        GROUP_COLUMNS,
        FairnessAudit,
        FairnessGapWarning,
        FairnessRule,
        labelled_period,
    )
    from ..model import load_model, model_key, signing_key
    from ..modelcard import write_model_card
    from ..oversight import oversight_of

    refuse_overwriting_inputs({"--model": args.model, "--spells": args.spells, "--interventions": args.interventions,
                               "--key-file": args.key_file, "--config": args.config}, folders={"--out": args.out})
    settings = Settings.load(args.config) if args.config else None
    language = args.language or (settings.worklist.language if settings else "en")
    protected = list(settings.privacy.protected_attributes) if settings else None
    min_cell = args.min_cell_size if args.min_cell_size is not None else \
        (settings.privacy.min_cell_size if settings else 5)
    rule = FairnessRule.from_settings(settings) if settings else FairnessRule()
    if args.min_ratio is not None:  # --min-ratio, else [privacy] fairness_min_ratio, else 0.8
        rule = FairnessRule(min_ratio=args.min_ratio, ratio_metrics=rule.ratio_metrics,
                            max_difference=rule.max_difference)
    if args.groups:
        groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    elif protected is not None:
        groups = list(dict.fromkeys([*protected, "canton"]))
    else:
        groups = list(GROUP_COLUMNS)
    # the key: --key-file, else the configuration's [model] key settings, else IIZRISK_MODEL_KEY
    key = signing_key(file=args.key_file) if args.key_file or settings is None else model_key(settings)
    allow_unsigned = args.allow_unsigned_model or bool(settings and settings.model.allow_unsigned_model)
    model = load_model(args.model, key=key, allow_unsigned=allow_unsigned)
    spells, interventions = read_inputs(  # a deployment's own institution codes are known with --config
        args.spells, args.interventions,
        extra_institutions=list(settings.deployment.extra_institutions) if settings is not None else None)
    capacity = args.capacity
    if capacity is None and settings is not None:  # the places of the deployment's lists, as published
        capacity = _places(settings, spells, args.as_of)
    if capacity is None:  # from the manifest load_model verified
        capacity = int((model.manifest_.get("training") or {}).get("capacity") or 50)
    wanted = sorted({"birth_year" if g == "age_band" else g for g in groups})
    data = labelled_period(model, spells, args.as_of, interventions=interventions, attributes=wanted)
    if not len(data):  # nobody registered then: not a matter of the attributes
        import pandas as pd

        from .. import _time
        from ..spells import observed_until

        first = pd.to_datetime(spells["start_date"]).min()
        raise ValidationError(f"{args.spells}: nobody is registered on {args.as_of}: the spells cover "
                              f"{first.date()} to {_time.to_date(observed_until(spells))}; give an as-of date "
                              "in that period")
    missing = [g for g in groups if g not in data.columns or data[g].isna().all()]
    if missing and not args.groups:  # defaults: audit the attributes the export has
        logger.warning("no values for %s in %s: not audited", ", ".join(missing), args.spells)
        groups = [g for g in groups if g not in missing]
        missing = [] if groups else missing
    if missing:
        raise ValidationError(f"{args.spells}: no values for the audited attribute(s) {missing}; add the "
                              "columns to the spells or leave them out with --groups")
    audit = FairnessAudit(groups=groups, capacity=capacity, min_cell_size=min_cell,
                          rule=rule, n_bootstrap=args.bootstrap, random_state=args.seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FairnessGapWarning)
        try:
            audit.fit(data)
        except IizriskError:  # its own message and exit code (ValidationError and ConfigError are ValueErrors too)
            raise
        except ValueError as exc:
            raise ValidationError(f"{args.spells}: cannot audit at {args.as_of}: {exc}") from exc
    for w in caught:
        if issubclass(w.category, FairnessGapWarning):
            logger.warning("%s", w.message)
        else:  # pragma: no cover - pass other warnings on
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    audit.as_of_ = args.as_of
    audit.outcome_ = model.outcome
    audit.horizon_months_ = model.horizon_months
    audit.output_language, audit.output_xlsx = language, args.xlsx  # the tables' headers; to_dir reads them

    # evidence that a human decides: the deployment's oversight figures (suppressed) for the card
    oversight = oversight_of(settings) if settings is not None else None
    # the order of the deployment's lists: by risk, or by its benefit model (documented with its evidence)
    rank_by, benefit = "risk", None
    if settings is not None and settings.worklist.rank_by != "risk":
        from ..benefit import load_benefit_model

        rank_by = settings.worklist.rank_by
        benefit = load_benefit_model(settings.resolve(str(settings.worklist.benefit_model)))

    from ..store import write_files_together

    def write(tmp: Path) -> list[Path]:
        files = audit.to_dir(tmp)
        return files + list(write_model_card(args.model, tmp, audit=audit, language=language,
                                             protected_attributes=protected, oversight=oversight,
                                             benefit=benefit, rank_by=rank_by).values())

    final = write_files_together(args.out, write, label="audit")
    print(f"{text('audit.at', language, as_of=args.as_of)}{colon(language)} {audit.headline(language)}",
          file=sys.stdout)
    for f in final:
        print(f, file=sys.stdout)
    return EXIT_OK
