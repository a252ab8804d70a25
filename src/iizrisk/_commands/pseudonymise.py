"""``iizrisk pseudonymise``: replace AHV numbers by keyed HMAC-SHA-256 pseudonyms at the source."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EXIT_INVALID_INPUT, EXIT_OK, ConfigError, ValidationError
from ._args import CSV_SUFFIXES, PARQUET_SUFFIXES, check_input, output_file

#: Endings of OUT: Parquet, or CSV (a machine file for ``iizrisk validate``/``run``, in IN's separator).
_OUT_SUFFIXES = (*PARQUET_SUFFIXES, *CSV_SUFFIXES, ".txt")

HELP = "replace a column of AHV numbers by keyed pseudonyms (HMAC-SHA-256)"
DESCRIPTION = (
    "Validate the 13-digit AHV numbers of one column (756 prefix, dots optional, EAN-13 check digit), "
    "replace them by HMAC-SHA-256 hex pseudonyms under a secret key, and drop the raw column. "
    "The key comes from --key-file or an environment variable, never from the command line. "
    "Rows with invalid or empty numbers are reported by row number and nothing is written, unless "
    "--skip-invalid is given (then they are left out and listed in OUT.invalid.csv, rows only). "
    "Exit code 1 whenever invalid rows were found."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help="CSV or Parquet export holding the AHV column")
    p.add_argument("output", metavar="OUT", type=output_file(*_OUT_SUFFIXES),
                   help="output file: .parquet, or .csv/.txt (CSV in IN's separator); other endings are refused")
    p.add_argument("--id-column", required=True, metavar="C", help="column holding the AHV numbers")
    p.add_argument("--key-file", metavar="K", help="file holding the secret key")
    p.add_argument("--key-env", default="IIZRISK_PSEUDONYM_KEY", metavar="VAR",
                   help="environment variable holding the key when no --key-file (default %(default)s)")
    p.add_argument("--out-column", default="person_id", help="name of the pseudonym column (default %(default)s)")
    p.add_argument("--separator", help="CSV separator of IN (detected when omitted)")
    p.add_argument("--encoding", help="encoding of IN (UTF-8 with/without BOM or Windows-1252 detected)")
    p.add_argument("--skip-invalid", action="store_true", help="write the valid rows, list the invalid ones")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..io import read_csv_text
    from ..pseudonym import load_key, pseudonymise
    from ..store import CsvFormat, write_csv_atomic, write_parquet_atomic
    from ..tables import write_table

    if not args.out_column.strip():
        raise ConfigError("--out-column is empty; give the name of the pseudonym column (default person_id)")
    key = load_key(check_input(args.key_file, "key file") if args.key_file else None, env=args.key_env)
    src = check_input(args.input)
    if not src.exists():
        raise ValidationError(f"{src}: no such file")
    if src.suffix.lower() in {".parquet", ".pq"}:
        df, sep = pd.read_parquet(src), ";"
    else:
        df, meta = read_csv_text(src, separator=args.separator, encoding=args.encoding)
        sep = meta["separator"]
    if args.out_column != args.id_column and args.out_column in df.columns:
        raise ConfigError(f"{src}: --out-column {args.out_column!r} is already a column of the input; "
                          "choose another name (the AHV column itself may be replaced)")
    out, report = pseudonymise(df, args.id_column, key, out_column=args.out_column)
    if not report.ok:
        print(report.to_text(str(src), args.id_column), file=sys.stderr)
        if not args.skip_invalid:
            print("nothing written; fix the numbers or pass --skip-invalid", file=sys.stderr)
            return EXIT_INVALID_INPUT
        rows = pd.DataFrame({"row": list(report.invalid_rows) + list(report.missing_rows),
                             "problem": ["invalid AHV number"] * len(report.invalid_rows)
                             + ["empty"] * len(report.missing_rows)}).sort_values("row")
        write_table(rows, f"{args.output}.invalid.csv", private=True)  # row numbers, never the numbers
    dst = Path(args.output)
    if dst.suffix.lower() in {".parquet", ".pq"}:
        write_parquet_atomic(out, dst)
    else:
        write_csv_atomic(out, dst, CsvFormat(sep=sep, bom=False), private=True)
    print(f"{len(out):,} rows pseudonymised -> {dst}")
    return EXIT_OK if report.ok else EXIT_INVALID_INPUT
