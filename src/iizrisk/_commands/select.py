"""``iizrisk select``: rolling-origin evaluation of a grid of model specifications, and a stated choice."""

from __future__ import annotations

import argparse
import sys

from ._args import (
    MAX_MONTHS,
    finite_float,
    int_at_least,
    output_folder,
    plain_path,
    refuse_overwriting_inputs,
)

HELP = "evaluate model specifications over rolling time splits and choose one by a stated rule"
DESCRIPTION = (
    "Evaluate boosting (three settings), the logistic model, the BFS rule, 'the same list as last time' and "
    "feature-group ablations on as-of splits every --every-months months over the last --years years, each "
    "trained only on snapshots whose labels were observed before the split. Writes the metrics per split "
    "and specification, regret, list stability (top-k Jaccard), plots and selected.json to OUT; "
    "`iizrisk train --spec OUT/selected.json` trains the choice. The rule comes from the [selection] table "
    "of --rule (metric, max_ece, min_jaccard, reference), else the options below."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..outcomes import outcome_names

    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--spells", metavar="PATH", help="canonical spells: a Parquet file or folder "
                     "(snapshots are built into OUT/snapshots first, at the latest labelled month ends the "
                     "splits use: 90 with the defaults; `iizrisk snapshots --from/--to` for others)")
    src.add_argument("--snapshots", metavar="DIR", type=plain_path, help="a dataset of `iizrisk snapshots`")
    p.add_argument("--interventions", metavar="PATH", help="interventions (CSV or Parquet), with --spells")
    p.add_argument("--attributes", metavar="PATH", help="with --snapshots: canonical spells to read the protected "
                   "attributes from (sex, nationality group, birth year) for the fairness columns; with --spells "
                   "they come from those spells")
    p.add_argument("--outcome", choices=outcome_names(), default="revolving_door", help="with --spells")
    p.add_argument("--horizon-months", type=int_at_least(1, MAX_MONTHS), default=12, metavar="N")
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR", help="output folder")
    p.add_argument("--every-months", type=int_at_least(1, 120), default=3, metavar="M", help="split spacing (3)")
    p.add_argument("--years", type=int_at_least(1, 50), default=2, metavar="Y", help="years of splits (2)")
    p.add_argument("--test-months", type=int_at_least(1, 120), default=3, metavar="N",
                   help="evaluation month ends per split (3)")
    p.add_argument("--train-months", type=int_at_least(1, MAX_MONTHS), default=36, metavar="N")
    p.add_argument("--capacity", type=int_at_least(1), default=50, metavar="K", help="people per as-of date (50)")
    p.add_argument("--max-persons", type=int_at_least(1), metavar="N", help="a fixed random sample of persons")
    p.add_argument("--max-train-rows", type=int_at_least(1000), metavar="N",
                   help="each split's models learn from at most N training rows (a random sample)")
    p.add_argument("--specs", metavar="NAME,...", help="only these specifications of the default grid")
    p.add_argument("--rule", metavar="TOML", type=plain_path, help="a file with a [selection] table")
    p.add_argument("--metric", default="precision_at_k", help="ranked by its mean over splits")
    p.add_argument("--max-ece", type=finite_float(1.0), default=0.03, metavar="X", help="ECE bound per split")
    p.add_argument("--min-jaccard", type=finite_float(1.0), metavar="X",
                   help="top-k Jaccard against the previous split, per split")
    p.add_argument("--min-flag-ratio", type=finite_float(1.0), metavar="X",
                   help="flag-rate ratios between protected groups within [X, 1/X], pooled over the splits "
                        "(0.8: the four-fifths rule)")
    p.add_argument("--mean-only", action="store_true",
                   help="let a better mean replace the current default even where it is worse on the last split")
    p.add_argument("--language", choices=["de", "fr", "it", "en"], default=None,
                   help="headers of the CSV tables in this language (default: the column codes)")
    p.add_argument("--seed", type=_seed, default=0, metavar="N",
                   help="seed of every model, 0 to 4294967295 (0)")
    p.add_argument("--threads", type=int_at_least(1), metavar="N", help="threads per model fit")


def _seed(text: str) -> int:
    """argparse type of --seed: 0 to 2**32 - 1, the error naming the bound in words (a ten-digit maximum is
    withheld from messages as a possible identifier, which left "above the maximum <withheld>")."""
    try:
        return int_at_least(0, 2**32 - 1)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError("give a whole number from 0 to 2**32 - 1 (the seeds numpy accepts)") \
            from None


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import ConfigError
    from ..selection import (
        METRICS,
        SelectionRule,
        check_grid,
        check_years,
        default_grid,
        person_attributes,
        rolling_evaluation,
    )
    from ..store import write_files_together

    out = Path(args.out)
    refuse_overwriting_inputs({"--spells": args.spells, "--snapshots": args.snapshots, "--rule": args.rule,
                               "--interventions": args.interventions, "--attributes": args.attributes},
                              folders={"--out": args.out})
    if args.snapshots and Path(args.snapshots).resolve() in out.resolve().parents:  # foreign files in the dataset
        from ..errors import ConfigError

        raise ConfigError(f"--out {out} lies in the --snapshots dataset {args.snapshots}: give --out a folder "
                          "outside it")
    if not args.rule and args.metric not in METRICS:  # the rule would name the setting, not the option given
        raise ConfigError(f"--metric {args.metric!r}: choose one of {list(METRICS)}")
    rule = (SelectionRule.from_toml(args.rule) if args.rule else
            SelectionRule(metric=args.metric, max_ece=args.max_ece, min_jaccard=args.min_jaccard,
                          min_flag_ratio=args.min_flag_ratio, hold_last_split=not args.mean_only))
    grid = default_grid()
    if args.specs:
        want = [s.strip() for s in args.specs.split(",") if s.strip()]
        unknown = sorted(set(want) - {s.name for s in grid})
        if unknown:
            raise ConfigError(f"--specs: unknown specification(s) {unknown}; known: {[s.name for s in grid]}")
        if not want:
            raise ConfigError(f"--specs {args.specs!r} names no specification; known: {[s.name for s in grid]}")
        grid = [s for s in grid if s.name in want]
    check_grid(grid)  # before any snapshot is built or read: a grid of yardsticks only has nothing to choose
    known = [s.name for s in default_grid()]
    if rule.reference not in known:  # a typo would silently drop hold_last_split
        raise ConfigError(f"{args.rule}: [selection] reference = {rule.reference!r} names no specification; "
                          f"known: {known}")
    snapshots = args.snapshots
    attributes = None
    if args.spells:
        from ..selection import snapshot_dates
        from ..snapshots import build_snapshots
        from .features import read_inputs

        spells, interventions = read_inputs(args.spells, args.interventions)
        # only the month ends the splits use, as train keeps to its last labelled months (never empty: it says why)
        dates = snapshot_dates(spells, every_months=args.every_months, years=args.years,
                               test_months=args.test_months, train_months=args.train_months,
                               horizon_months=args.horizon_months)
        check_years(dates, years=args.years, horizon_months=args.horizon_months)  # before the build
        snapshots = build_snapshots(spells, out / "snapshots", as_of=dates, interventions=interventions,
                                    outcome=args.outcome, horizon_months=args.horizon_months)
        attributes = person_attributes(spells)
    elif args.interventions:
        raise ConfigError("--interventions with --snapshots: the snapshot dataset holds them already")
    else:
        from ..snapshots import SnapshotSet

        snapshots = SnapshotSet.open(snapshots)
        check_years(snapshots.dates, years=args.years, horizon_months=int(snapshots.meta["horizon_months"]),
                    observed_until=snapshots.meta["observed_until"])
    if args.attributes:
        if args.spells:
            raise ConfigError("--attributes with --spells: the protected attributes come from --spells")
        from .features import read_inputs

        attributes = person_attributes(read_inputs(args.attributes, None)[0])
    result = rolling_evaluation(snapshots, grid=grid, every_months=args.every_months, years=args.years,
                                test_months=args.test_months, train_months=args.train_months,
                                capacity=args.capacity, max_persons=args.max_persons, random_state=args.seed,
                                max_train_rows=args.max_train_rows, n_threads=args.threads, attributes=attributes)
    selection = result.select(rule)

    def write(tmp):  # all or nothing: a failure leaves no tables without selected.json, nor the reverse
        return [*result.to_dir(tmp, language=args.language), selection.to_json(tmp / "selected.json")]

    write_files_together(out, write, label="select")
    result.print_summary(file=sys.stdout)
    print(selection.why, file=sys.stdout)
    print(f"written to {out} (selected.json: `iizrisk train --spec {out / 'selected.json'}` trains it)",
          file=sys.stdout)
    return 0
