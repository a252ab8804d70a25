"""``iizrisk demo --out DIR``: a synthetic canton from raw exports to one night's worklists."""

from __future__ import annotations

import argparse

from ..config import MAX_COUNT
from ..demo import MAX_YEARS, MIN_PERSONS, MIN_YEARS
from ..errors import EXIT_OK
from ._args import int_at_least, int_between, iso_date, output_folder

HELP = "generate a synthetic canton, train a model and run the nightly job (the README's main job)"
DESCRIPTION = (
    "Generate a synthetic canton with institution-style raw exports, write its deployment "
    "configuration, train a model on the ingested exports, run the nightly job for the last day and "
    "print where the worklists and the HTML summary are. Only synthetic data: nothing real is needed."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR",
                   help="folder for data, model and runs: new, empty, or an earlier demo's (replaced)")
    p.add_argument("--persons", type=int_between(MIN_PERSONS, MAX_COUNT), default=50_000, metavar="N",
                   help=f"people registered in the period, {MIN_PERSONS:,} to {MAX_COUNT:,} (default %(default)s)")
    p.add_argument("--years", type=int_between(MIN_YEARS, MAX_YEARS), default=10, metavar="Y",
                   help=f"length of the period in years, {MIN_YEARS} to {MAX_YEARS} (default %(default)s)")
    p.add_argument("--seed", type=int_at_least(0), default=2024, help="random seed (default %(default)s)")
    p.add_argument("--end", type=iso_date, metavar="YYYY-MM-DD",
                   help="export date (default: last day of the previous year)")
    p.add_argument("--canton", default="ZH", type=str.upper, help="two-letter canton code (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    res = run_demo(args.out, persons=args.persons, years=args.years, seed=args.seed, end=args.end,
                   canton=args.canton)
    print(res.describe())
    return EXIT_OK
