"""``iizrisk reviews import CONFIG FILE...``: store the reviews coordinators sent back."""

from __future__ import annotations

import argparse

from ..errors import EXIT_OK
from ._args import check_input

HELP = "import filled-in worklists (reviews: date, decision, note) into the history store"
DESCRIPTION = (
    "Read the review files coordinators sent back (the .xlsx the nightly run wrote beside each worklist, "
    "or its .csv), check every row (case numbers of the file's own institution, one of the [reviews] "
    "decisions, a review date that is a calendar day (YYYY-MM-DD or dd.mm.yyyy) from the as-of date of the "
    "list it answers (else the first nightly run) to today, one decision per case and file, who decided (a role or staff "
    "code) on every row, no AHV number in the note, in any spelling) and store the "
    "reviews in the history store, atomically and under the run lock. Nothing is stored while one problem "
    "remains; each problem names the file, the row, the column and the fix. Rows repeating each other exactly "
    "are stored once. Importing the same file again changes nothing. The next nightly run respects the "
    "decisions ([reviews] keep_off_days, interventions). "
    "A history store without any nightly run (a wrong [output] history_dir) refuses the import. "
    "Exit codes: 0 stored (or nothing new), 1 a problem in a file or no nightly run in the history store "
    "(report printed, nothing stored), "
    "2 usage/configuration, 4 a nightly run holds the lock."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["import"], help="import: check and store review files")
    p.add_argument("config", metavar="CONFIG", help="deployment configuration (.toml)")
    p.add_argument("files", metavar="FILE", nargs="+", help="filled review files (.xlsx or .csv)")


def run(args: argparse.Namespace) -> int:
    from ..reviews import import_reviews

    files = [check_input(f, "review file") for f in args.files]
    result = import_reviews(args.config, files)
    print(result.summary_text())
    return EXIT_OK
