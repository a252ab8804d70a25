"""``iizrisk case CONFIG --institution ALV --case-id RAV-123``: one case as that institution may see it."""

from __future__ import annotations

import argparse

from ..errors import EXIT_OK
from ._args import iso_date, output_folder, refuse_writing_into_the_deployment

HELP = "look up one case by the institution's case number: timeline, flags, reasons, risk history, reviews"
DESCRIPTION = (
    "Find the person behind one of the institution's own case numbers and show what that institution may "
    "see under the disclosure policy: the spells at this institution and at the disclosed ones (others as a "
    "count), the flags at the as-of date and the reasons on that night's list, the risk across the runs "
    "and the institution's reviews up to the as-of date: what was known then (a case opened later is not "
    "found). A number that is not one of the institution's cases gets the same answer as an unknown one "
    "(exit 1). With --out the tables and the timeline plot are written there."
)


def _case_id(text: str) -> str:
    """argparse type: a case number that is not blank (one was looked up as unknown, exit 1, after the ingest)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty case number: give the institution's case number")
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="deployment configuration (.toml)")
    p.add_argument("--institution", required=True, metavar="CODE", help="the institution asking (e.g. ALV)")
    p.add_argument("--case-id", required=True, metavar="ID", type=_case_id, help="its case number")
    p.add_argument("--as-of", metavar="YYYY-MM-DD", type=iso_date, help="default: the last run")
    p.add_argument("--out", type=output_folder, metavar="DIR", help="write the tables (CSV, Parquet) and timeline.png here")


def run(args: argparse.Namespace) -> int:
    from ..case import case_lookup

    if args.out:
        from ..config import Settings

        refuse_writing_into_the_deployment(Settings.load(args.config), args.config, folders={"--out": args.out})
    view = case_lookup(args.config, institution=args.institution, case_id=args.case_id, as_of=args.as_of)
    view.print_summary()
    if args.out:  # all or nothing: a plot that fails leaves no tables without it
        from ..store import write_files_together

        written = write_files_together(args.out, lambda tmp: view.to_dir(tmp, language=view.language),
                                       label="case")
        print("written: " + ", ".join(str(p) for p in written))
    return EXIT_OK
