"""``iizrisk oversight CONFIG [--from --to]``: does a human decide? Reviews of the worklists, in figures."""

from __future__ import annotations

import argparse

from ..errors import EXIT_OK
from ._args import check_period, iso_date, output_folder, refuse_writing_into_the_deployment

HELP = "oversight: per institution and month, people listed and reviewed, days to review, decisions, overrides"
DESCRIPTION = (
    "Figures that show whether coordinators review the worklists, decide and sometimes depart from the "
    "score, from the history store: per institution and month the people listed and reviewed, the median "
    "days from listing to review, decisions by type, overrides (reviews of people not on the list) and "
    "their share, the share of joint assessments proposed for listed people and for overrides, the "
    "agreement of decisions with the risk band, and people listed repeatedly without a review. Cells of "
    "fewer than [privacy] min_cell_size people are hidden. With --out the table is written as CSV "
    "(';', UTF-8 with BOM, headers in the deployment's language) and Parquet, with a plot in that language."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="deployment configuration (.toml)")
    p.add_argument("--from", dest="start", metavar="YYYY-MM-DD", type=iso_date, help="first month (its day)")
    p.add_argument("--to", dest="end", metavar="YYYY-MM-DD", type=iso_date, help="last month (its day)")
    p.add_argument("--out", type=output_folder, metavar="DIR", help="write oversight.csv, oversight.parquet and oversight.png here")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..config import Settings
    from ..errors import ConfigError, ValidationError
    from ..oversight import oversight_of

    check_period(args.start, args.end)
    settings = Settings.load(args.config)
    refuse_writing_into_the_deployment(settings, args.config, folders={"--out": args.out})
    root = settings.resolve(settings.output.history_dir)
    if not (root / "worklists").is_dir():  # nothing was ever listed here: no table of zeros with exit 0
        raise ValidationError(f"{root}: no history store with worklists ([output] history_dir); the nightly run "
                              "writes it: check the setting, or run iizrisk run first")
    result = oversight_of(settings, start=args.start, end=args.end)
    if not len(result.table):  # a period without lists or reviews: no table of nothing with exit 0
        raise ConfigError(f"{root}: no worklists and no reviews between {args.start or 'the start'} and "
                          f"{args.end or 'today'}; give a period the nightly runs cover (--from, --to)")
    print(result.summary_text(decimals=1))
    if args.out:
        from ..store import write_files_together

        written = write_files_together(  # all or none: a failed run leaves no table without the other
            Path(args.out), lambda tmp: result.to_dir(tmp, min_cell_size=settings.privacy.min_cell_size,
                                                      language=settings.worklist.language), label="oversight")
        print("written: " + ", ".join(sorted({str(p) for p in written})))
    return EXIT_OK
