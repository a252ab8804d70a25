"""``iizrisk indicators``: BFS-compatible indicators of one year, as CSV (and xlsx) and Parquet tables."""

from __future__ import annotations

import argparse

from ..errors import EXIT_OK
from ._args import (
    MAX_DAYS,
    int_at_least,
    int_between,
    output_folder,
    read_spells_input,
    refuse_overwriting_inputs,
)

HELP = "BFS-compatible indicators of a year (system combinations, profiles, persistence, re-entry, transitions)"
DESCRIPTION = (
    "Compute the BFS-compatible indicators of one calendar year from canonical spells (a Parquet "
    "file or a folder of Parquet files) and write each table to DIR as <name>.csv (';'-separated, "
    "UTF-8 with BOM: what a spreadsheet with Swiss settings opens; with --xlsx also <name>.xlsx) and "
    "<name>.parquet. Cells with fewer than --min-cell-size people are suppressed (with secondary "
    "suppression), so the tables may leave the system."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spells", required=True, metavar="PATH",
                   help="canonical spells: a Parquet file or a folder of Parquet files")
    p.add_argument("--year", type=int_between(1900, 2199), required=True, metavar="YYYY", help="calendar year")
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR", help="output folder")
    p.add_argument("--min-cell-size", type=int, default=5, metavar="K",
                   help="suppress cells with fewer than K people (default 5; at least 1: unsuppressed "
                        "tables must not leave the system)")
    p.add_argument("--monthly", action="store_true",
                   help="BFS monthly mode: a month counts as registered if any day of it is")
    p.add_argument("--merge-gap-days", type=int_at_least(0, MAX_DAYS), default=0, metavar="D",
                   help="merge spells of one institution separated by at most D days (default 0)")
    p.add_argument("--transition-gap-days", type=int_at_least(0, MAX_DAYS), default=90, metavar="D",
                   help="a start at most D days after another institution's spell ended is a transition")
    p.add_argument("--language", choices=["de", "fr", "it", "en"], default=None,
                   help="headers and row names of the CSV and xlsx tables in this language, shares rounded "
                        "(default: the column codes and the values as they are)")
    p.add_argument("--xlsx", action="store_true", help="also write each table as <name>.xlsx (Excel)")


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..indicators import bfs_indicators

    if args.min_cell_size < 1:
        raise ConfigError("--min-cell-size must be >= 1: unsuppressed tables must not leave the system")
    refuse_overwriting_inputs({"--spells": args.spells}, folders={"--out": args.out})
    spells = read_spells_input(args.spells)
    res = bfs_indicators(spells, args.year, min_cell_size=args.min_cell_size, monthly=args.monthly,
                         merge_gap_days=args.merge_gap_days, gap_days=args.transition_gap_days)
    _refuse_all_hidden(res, args.spells)
    from ..store import write_files_together

    # all or none: a table that cannot be written leaves no others of a failed run behind
    write_files_together(args.out, lambda tmp: res.to_dir(tmp, language=args.language, xlsx=args.xlsx),
                         label="indicators")
    print(args.out)
    return EXIT_OK



def _refuse_all_hidden(res, path) -> None:
    """Refuse tables whose every count is hidden or zero (exit 1): nothing to publish, nothing learnt.

    A population too small for the cell size gave five tables of dots and zeros with exit 0.
    """
    import numpy as np

    from ..errors import ValidationError

    for name, table in res.tables.items():
        dims = set(res.suppression[name].dims)  # a dimension such as months is no count
        numbers = table.drop(columns=[c for c in table.columns if c in dims]).select_dtypes("number")
        numbers = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        if (numbers > 0).any():  # a published count (hidden ones are missing)
            return
    raise ValidationError(
        f"{path}: every count of {res.year} is hidden (fewer than {res.min_cell_size} people) or zero: "
        "nothing to publish. Give the spells of a larger population (a canton or more), or a smaller "
        "--min-cell-size if the tables stay inside the office; nothing written")
