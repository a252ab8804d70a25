"""``iizrisk flags``: flags of every person at one as-of date, written to Parquet.

Reads canonical spells (one Parquet file or a folder of them), builds the
point-in-time view at the as-of date and writes one row per person with at
least one spell overlapping the window (columns :data:`iizrisk.flags.FLAG_COLUMNS`;
``as_of`` as a Parquet ``date32``). The output is written to a temporary
file and renamed: a failed run never leaves partial output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import RawIdentifierError, ValidationError
from ..flags import FLAG_COLUMNS, compute_flags

HELP = "flag multi-registration, transitions, re-entries and revolving doors at an as-of date"
DESCRIPTION = (
    "Flags of every person at an as-of date T, from canonical spells (a Parquet file or a "
    "folder of Parquet files), on the point-in-time view at T (rows starting or recorded "
    "after T are ignored, ends after T are open). Writes one row per person with at least "
    f"one spell overlapping the window; columns: {', '.join(FLAG_COLUMNS)}."
)

logger = logging.getLogger("iizrisk")

#: Columns the flags need; the rest of a canonical file is not read.
_COLUMNS = ("person_id", "institution", "start_date", "end_date", "recorded_date")
_REQUIRED = ("person_id", "institution", "start_date")
_DATES = ("start_date", "end_date", "recorded_date")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum {minimum}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``iizrisk flags``."""
    parser.add_argument("--spells", required=True, type=Path, metavar="PATH",
                        help="canonical spells: a Parquet file or a folder of Parquet files")
    parser.add_argument("--as-of", required=True, type=_date, metavar="YYYY-MM-DD",
                        help="as-of date T (the evening of that day)")
    parser.add_argument("--window-months", type=_int_at_least(1), default=24, metavar="N",
                        help="window of N calendar months ending at T (default 24)")
    parser.add_argument("--transition-gap-days", type=_int_at_least(0), default=90, metavar="D",
                        help="a start at another institution up to D days after a spell ended "
                             "is a transition (default 90)")
    parser.add_argument("--merge-gap-days", type=_int_at_least(0), default=0, metavar="D",
                        help="merge rows of one person at one institution separated by at most "
                             "D unregistered days (default 0)")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE.parquet",
                        help="output Parquet file (written atomically)")


def run(args: argparse.Namespace) -> int:
    """Read, flag, write; errors derive from IizriskError (exit 1 on bad input)."""
    t0 = time.perf_counter()
    spells = _read_spells(args.spells)
    logger.info("read %d rows from %s in %.1f s", len(spells), args.spells, time.perf_counter() - t0)
    flags = compute_flags(spells, args.as_of, window_months=args.window_months,
                          transition_gap_days=args.transition_gap_days,
                          merge_gap_days=args.merge_gap_days)
    del spells
    _write_atomic(flags, args.out)
    logger.info("flags at %s: %d persons (%d multi-registered, %d in a revolving door) -> %s in %.1f s",
                args.as_of, len(flags), int(flags["multi_registered"].sum()),
                int(flags["revolving_door"].sum()), args.out, time.perf_counter() - t0)
    return 0


# --------------------------------------------------------------------------- reading
def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in {".parquet", ".pq"}
                       and not p.name.startswith(".") and p.is_file())
        if not files:
            raise ValidationError(f"{path}: no .parquet files in this folder")
        return files
    if not path.exists():
        raise ValidationError(f"{path} does not exist: give a Parquet file or a folder of Parquet files")
    return [path]


def _read_spells(path: Path) -> pd.DataFrame:
    """The columns of canonical spells the flags need, from one file or a folder.

    Each file may lack the optional columns (``end_date``: all open;
    ``recorded_date``: known when exported). Dates become ``datetime64``
    (never Python date objects), text the pyarrow-backed ``str`` dtype. Values
    shaped like AHV numbers are refused, file by file.
    """
    tables = []
    for f in _files(Path(path)):
        try:
            names = pq.read_schema(f).names
            missing = [c for c in _REQUIRED if c not in names]
            if missing:
                raise ValidationError(
                    f"{f}: required column(s) {missing} missing; found {names}. Map the export onto "
                    "the canonical columns (data/schemas/spells.json) first, e.g. with `iizrisk ingest`.")
            table = pq.read_table(f, columns=[c for c in _COLUMNS if c in names])
        except (pa.ArrowException, OSError) as exc:
            raise ValidationError(f"{f}: not a readable Parquet file ({exc})") from exc
        table = _normalise(table, f)
        _refuse_raw_identifiers(table, f)
        _refuse_raw_identifiers(_other_text_columns(f), f)  # the guard covers the whole file
        tables.append(table)
    if len(tables) > 1:
        units = {t.schema.field(c).type for t in tables for c in _DATES if c in t.column_names}
        if len(units) > 1:  # one timestamp unit across the files
            tables = [t.cast(pa.schema([pa.field(fl.name, pa.timestamp("s")) if fl.name in _DATES else fl
                                        for fl in t.schema])) for t in tables]
        table = pa.concat_tables(tables, promote_options="default")
    else:
        table = tables[0]
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if name in _DATES:
            cols[name] = pd.Series(col.to_numpy(), copy=False)
        else:
            cols[name] = pd.Series(col, dtype="str")
    return pd.DataFrame(cols, copy=False)


def _normalise(table: pa.Table, f: Path) -> pa.Table:
    """Dates as timestamps (no time zone), text as large_string, so that files concatenate."""
    fields = []
    for field in table.schema:
        t = field.type
        if field.name in _DATES:
            if pa.types.is_timestamp(t) and t.tz is None and t.unit in {"s", "ms", "us", "ns"}:
                fields.append(field)
            elif pa.types.is_date(t) or pa.types.is_null(t) or pa.types.is_timestamp(t):
                fields.append(pa.field(field.name, pa.timestamp("s")))
            else:
                raise ValidationError(f"{f}: column {field.name!r} has type {t}, not a date; "
                                      "canonical files store dates as Parquet dates")
        else:
            fields.append(pa.field(field.name, pa.large_string()))
    schema = pa.schema(fields)
    if schema.equals(table.schema):
        return table
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValidationError(f"{f}: cannot read the columns as canonical types ({exc})") from exc




def _other_text_columns(f: Path) -> pa.Table:
    """The file's text, dictionary and integer columns the flags do not read, as large strings."""
    names = [fld.name for fld in pq.read_schema(f) if fld.name not in _COLUMNS
             and (pa.types.is_string(fld.type) or pa.types.is_large_string(fld.type)
                  or pa.types.is_dictionary(fld.type) or pa.types.is_integer(fld.type))]
    if not names:
        return pa.table({})
    extra = pq.read_table(f, columns=names)
    return pa.table({n: extra.column(n).cast(pa.large_string()) for n in names})


def _refuse_raw_identifiers(table: pa.Table, f: Path) -> None:
    """Refuse values shaped like AHV numbers (:func:`iizrisk.validate.check_raw_identifiers`).

    Every AHV number contains ``756``: only the values containing it are examined.
    """
    from ..pseudonym import rows_containing
    from ..validate import ValidationReport, check_raw_identifiers

    report = ValidationReport()
    found = []
    for name in table.column_names:
        if not pa.types.is_large_string(table.schema.field(name).type):
            continue
        rows = rows_containing(table.column(name), b"756")
        if len(rows):
            sub = pd.DataFrame({name: pd.Series(table.column(name).take(pa.array(rows)), dtype="str")})
            found += check_raw_identifiers(sub, report, str(f), rows=rows + 1)
    if found:
        raise RawIdentifierError(
            f"{f}: refused: column(s) {found} hold values shaped like AHV numbers (raw "
            "identifiers); pseudonymise at the source with `iizrisk pseudonymise`", report)


# --------------------------------------------------------------------------- writing
def _write_atomic(flags: pd.DataFrame, out: Path) -> None:
    """Parquet via :func:`iizrisk.io.write_parquet_atomic`, with ``as_of`` as a date32 column."""
    from ..io import write_parquet_atomic

    write_parquet_atomic(flags.assign(as_of=flags["as_of"].astype(pd.ArrowDtype(pa.date32()))), out)
