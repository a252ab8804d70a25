"""``iizrisk flags``: flags of every person at one as-of date, written to Parquet or CSV.

Reads canonical spells (one Parquet file or a folder of them), builds the
point-in-time view at the as-of date and writes one row per person with at
least one spell overlapping the window (columns :data:`iizrisk.flags.FLAG_COLUMNS`).
The ending of ``--out`` chooses the format: ``.parquet`` (``as_of`` as a
Parquet ``date32``) or ``.csv`` (``;``, UTF-8 with BOM, for Swiss
spreadsheets; see :func:`iizrisk.worklist.write_worklist_csv`); any other
ending is a usage error. The output is written to a temporary file and
renamed: a failed run never leaves partial output.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ..flags import FLAG_COLUMNS, compute_flags
from ._args import (
    CSV_SUFFIXES,
    MAX_DAYS,
    MAX_MONTHS,
    PARQUET_SUFFIXES,
    int_at_least,
    iso_date,
    output_file,
    read_spells_input,
    refuse_empty_result,
    refuse_overwriting_inputs,
)

HELP = "flag multi-registration, transitions, re-entries and revolving doors at an as-of date"
DESCRIPTION = (
    "Flags of every person at an as-of date T, from canonical spells (a Parquet file or a "
    "folder of Parquet files), on the point-in-time view at T (rows starting or recorded "
    "after T are ignored, ends after T are open). Writes one row per person with at least "
    f"one spell overlapping the window; columns: {', '.join(FLAG_COLUMNS)}."
)

logger = logging.getLogger("iizrisk")

#: Columns the flags need; the rest of a canonical file is not read (but guarded).
_COLUMNS = ("person_id", "institution", "start_date", "end_date", "recorded_date")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``iizrisk flags``."""
    parser.add_argument("--spells", required=True, type=Path, metavar="PATH",
                        help="canonical spells: a Parquet file or a folder of Parquet files")
    parser.add_argument("--as-of", required=True, type=iso_date, metavar="YYYY-MM-DD",
                        help="as-of date T (the evening of that day)")
    parser.add_argument("--window-months", type=int_at_least(1, MAX_MONTHS), default=24, metavar="N",
                        help="window of N calendar months ending at T (default 24)")
    parser.add_argument("--transition-gap-days", type=int_at_least(0, MAX_DAYS), default=90, metavar="D",
                        help="a start at another institution up to D days after a spell ended "
                             "is a transition (default 90)")
    parser.add_argument("--merge-gap-days", type=int_at_least(0, MAX_DAYS), default=0, metavar="D",
                        help="merge rows of one person at one institution separated by at most "
                             "D unregistered days (default 0)")
    parser.add_argument("--out", required=True, type=output_file(*PARQUET_SUFFIXES, *CSV_SUFFIXES),
                        metavar="FILE.parquet|FILE.csv",
                        help="output file, written atomically: Parquet for .parquet, CSV (';', UTF-8 "
                             "with BOM) for .csv")


def run(args: argparse.Namespace) -> int:
    """Read, flag, write; errors derive from IizriskError (exit 1 on bad input)."""
    t0 = time.perf_counter()
    refuse_overwriting_inputs({"--spells": args.spells}, files={"--out": args.out})
    spells = read_spells_input(args.spells, columns=list(_COLUMNS))
    logger.info("read %d rows from %s in %.1f s", len(spells), args.spells, time.perf_counter() - t0)
    flags = compute_flags(spells, args.as_of, window_months=args.window_months,
                          transition_gap_days=args.transition_gap_days,
                          merge_gap_days=args.merge_gap_days)
    if not len(flags):  # an as-of date before the data: an empty table is no result
        refuse_empty_result(spells, args.spells, args.as_of, "flag")
    del spells
    _write_atomic(flags, args.out)
    logger.info("flags at %s: %d persons (%d multi-registered, %d in a revolving door) -> %s in %.1f s",
                args.as_of, len(flags), int(flags["multi_registered"].sum()),
                int(flags["revolving_door"].sum()), args.out, time.perf_counter() - t0)
    return 0


# --------------------------------------------------------------------------- writing
def _write_atomic(flags: pd.DataFrame, out: Path) -> None:
    """Parquet (``as_of`` as a date32 column) or, for a ``.csv`` name, CSV for spreadsheets."""
    from ..store import write_parquet_atomic
    from ..worklist import write_worklist_csv

    flags = flags.assign(as_of=flags["as_of"].astype(pd.ArrowDtype(pa.date32())))
    if Path(out).suffix.lower() in CSV_SUFFIXES:
        write_worklist_csv(flags, out)
    else:
        write_parquet_atomic(flags, out)
