"""``iizrisk snapshots``: point-in-time features and labels at many month ends, as a Parquet dataset."""

from __future__ import annotations

import argparse
import sys

from ._args import MAX_MONTHS, int_at_least, int_between, iso_date, plain_path

HELP = "build the snapshot dataset (features and labels at many month ends) that train can read"
DESCRIPTION = (
    "Write the point-in-time features of everyone with an open spell, and each snapshot's outcome over the "
    "horizon, at every month end from --from to --to (default: 24 months after the first start to the last "
    "observed day), to OUT as Parquet partitioned by as-of date and person bucket. Memory is about one "
    "bucket at one date. Each partition is written atomically: a build that stops is finished by running "
    "the same command again; a folder holding another build is refused. `iizrisk train --snapshots OUT` "
    "then trains without building features again."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..outcomes import outcome_names

    p.add_argument("--spells", required=True, metavar="PATH", help="canonical spells: a Parquet file or folder")
    p.add_argument("--interventions", metavar="PATH", help="interventions (CSV or Parquet)")
    p.add_argument("--outcome", required=True, choices=outcome_names(), help="the label of each snapshot")
    p.add_argument("--horizon-months", type=int_at_least(1, MAX_MONTHS), default=12, metavar="N",
                   help="horizon in months (12)")
    p.add_argument("--from", dest="first", type=iso_date, metavar="YYYY-MM-DD", help="first month end")
    p.add_argument("--to", dest="last", type=iso_date, metavar="YYYY-MM-DD", help="last month end")
    p.add_argument("--buckets", type=int_between(1, 4096), default=16, metavar="N",
                   help="person buckets per month end (16); memory is about one bucket's features")
    p.add_argument("--out", required=True, type=plain_path, metavar="DIR", help="the dataset folder")


def run(args: argparse.Namespace) -> int:
    from ..snapshots import build_snapshots, default_dates
    from .features import read_inputs

    spells, interventions = read_inputs(args.spells, args.interventions)
    dates = default_dates(spells, first=args.first, last=args.last)
    if not dates:
        from ..errors import ConfigError

        raise ConfigError(f"no month end between --from {args.first} and --to {args.last}")
    snaps = build_snapshots(spells, args.out, as_of=dates, interventions=interventions, outcome=args.outcome,
                            horizon_months=args.horizon_months, buckets=args.buckets)
    print(f"{len(dates)} month ends ({dates[0].date()} to {dates[-1].date()}) x {args.buckets} buckets "
          f"-> {snaps.path}", file=sys.stdout)
    return 0
