"""``iizrisk pseudonymise``: replace AHV numbers by keyed HMAC-SHA-256 pseudonyms at the source.

Nothing the command writes or prints holds an AHV number: the names it is
given (IN, OUT, the key file, ``--id-column``, ``--out-column``) are refused
when they hold one (not echoed), an AHV number in any column other than
``--id-column`` refuses the file (columns and rows named, never the value),
and a header that does not read as plain column names (a file read in the
wrong ``--encoding``) is not shown. OUT is written atomically and owner-only
(0600), and never over IN or the key file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EXIT_INVALID_INPUT, EXIT_OK, ConfigError, RawIdentifierError, ValidationError
from ._args import (
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    check_input,
    output_file,
    refuse_overwriting_inputs,
    refuse_unwritable_output,
)

#: Endings of OUT: Parquet, or CSV (a machine file for ``iizrisk validate``/``run``, in IN's separator).
_OUT_SUFFIXES = (*PARQUET_SUFFIXES, *CSV_SUFFIXES, ".txt")

HELP = "replace a column of AHV numbers by keyed pseudonyms (HMAC-SHA-256)"
DESCRIPTION = (
    "Validate the 13-digit AHV numbers of one column (756 prefix, dots optional, EAN-13 check digit), "
    "replace them by HMAC-SHA-256 hex pseudonyms under a secret key, and drop the raw column. "
    "The key comes from --key-file or an environment variable, never from the command line. "
    "Rows with invalid or empty numbers are reported by row number and nothing is written, unless "
    "--skip-invalid is given (then they are left out and listed in OUT.invalid.csv, rows only). "
    "Exit code 1 whenever invalid rows were found. An AHV number in any other column refuses the "
    "file (exit code 1, nothing written). OUT is written owner-only (0600) and never over IN."
)


def _no_ahv(what: str, fix: str, then=None):
    """argparse type: text holding no AHV number (refused without echoing it), passed on to ``then``."""
    def parse(text: str):
        from ..pseudonym import looks_like_ahv

        if looks_like_ahv([text]).any():
            raise argparse.ArgumentTypeError(f"{what} holds a value shaped like an AHV number (withheld here); "
                                             f"{fix}")
        return then(text) if then is not None else text

    return parse


_RENAME = "rename it (and its folders) so that no AHV number appears in a path"


def _encoding(text: str) -> str:
    """argparse type: the name of an encoding Python knows (a misspelt one is a usage error, exit 2)."""
    import codecs

    try:
        codecs.lookup(text)
    except LookupError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an encoding; give one such as utf-8, cp1252 or utf-16 "
                                         "(or leave --encoding out to detect UTF-8 or Windows-1252)") from None
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", type=_no_ahv("the path", _RENAME),
                   help="CSV or Parquet export holding the AHV column")
    p.add_argument("output", metavar="OUT", type=_no_ahv("the path", _RENAME, output_file(*_OUT_SUFFIXES)),
                   help="output file: .parquet, or .csv/.txt (CSV in IN's separator); other endings are refused")
    p.add_argument("--id-column", required=True, metavar="C",
                   type=_no_ahv("the column name", "give the name of the column holding the AHV numbers"),
                   help="column holding the AHV numbers")
    p.add_argument("--key-file", metavar="K", type=_no_ahv("the path", _RENAME),
                   help="file holding the secret key")
    p.add_argument("--key-env", default="IIZRISK_PSEUDONYM_KEY", metavar="VAR",
                   help="environment variable holding the key when no --key-file (default %(default)s)")
    p.add_argument("--out-column", default="person_id",
                   type=_no_ahv("the column name", "give a name for the pseudonym column (default person_id)"),
                   help="name of the pseudonym column (default %(default)s)")
    p.add_argument("--separator", type=_no_ahv("the separator", "give the separator character, e.g. ';'"),
                   help="CSV separator of IN (detected when omitted)")
    p.add_argument("--encoding",
                   type=_no_ahv("the encoding", "give an encoding such as utf-8, cp1252 or utf-16", _encoding),
                   help="encoding of IN (UTF-8 with/without BOM or Windows-1252 detected)")
    p.add_argument("--skip-invalid", action="store_true", help="write the valid rows, list the invalid ones")


def _refuse_raw_identifiers(df, id_column: str, src: Path) -> None:
    """Refuse a table holding AHV numbers outside ``id_column``: columns and rows named, values never."""
    from ..validate import ValidationReport, check_raw_identifiers

    report = ValidationReport(rows_read={str(src): len(df)})
    check_raw_identifiers(df.drop(columns=[id_column]), report, str(src),
                          fix=f"only --id-column {id_column!r} is pseudonymised: remove the AHV numbers from this "
                              "column at the source, or drop the column; nothing is written while they are there")
    if report.problems:
        cols = ", ".join(repr(p.column) for p in report.problems)
        raise RawIdentifierError(f"refused: {src}: column(s) {cols} hold values shaped like AHV numbers (values "
                                 "withheld); nothing written", report)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..io import check_header, read_csv_text
    from ..pseudonym import load_key, pseudonymise, readable_columns
    from ..store import CsvFormat, write_csv_atomic, write_parquet_atomic
    from ..tables import write_table

    if not args.out_column.strip():
        raise ConfigError("--out-column is empty; give the name of the pseudonym column (default person_id)")
    key_file = check_input(args.key_file, "key file") if args.key_file else None
    key = load_key(key_file, env=args.key_env)
    src = check_input(args.input)
    if not src.exists():
        raise ValidationError(f"{src}: no such file")
    if src.is_dir():  # a folder of Parquet files was read as a table without columns
        raise ValidationError(f"{src} is a folder, not a regular file; give the path of an exported file "
                              "(CSV or Parquet)")
    dst = Path(args.output)
    invalid_list = Path(f"{args.output}.invalid.csv")
    refuse_overwriting_inputs({"IN": src, "--key-file": key_file}, files={"OUT": dst, "OUT.invalid.csv": invalid_list})
    # before any work: a FIFO at OUT was replaced by a file (exit 0), a folder there failed only at the end
    refuse_unwritable_output(dst, "OUT")
    if args.skip_invalid:  # the list of invalid rows is written only then
        refuse_unwritable_output(invalid_list, "OUT.invalid.csv", fix="give OUT another name")
    if src.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow as pa

        try:
            df, sep, hint = pd.read_parquet(src), ";", ""
        except (pa.ArrowException, OSError) as exc:  # a damaged or foreign file was an internal error
            raise ValidationError(f"{src}: not a readable Parquet file ({exc}); export it again, or give "
                                  "the CSV export") from None
        check_header(list(df.columns), str(src))  # read_csv_text checks a CSV header
    else:
        df, meta = read_csv_text(src, separator=args.separator, encoding=args.encoding)
        sep = meta["separator"]
        hint = f" in encoding {meta['encoding']!r}"
    if args.id_column not in df.columns:
        names = readable_columns(df.columns)
        if names is None:
            raise ValidationError(
                f"{src}: column {args.id_column!r} not found, and the header does not look like column names"
                f"{hint} (withheld: text read in the wrong encoding can hide an AHV number); check --encoding "
                "(leave it out to detect UTF-8 or Windows-1252) and --separator")
        raise ValidationError(f"{src}: column {args.id_column!r} not found; columns are {names}; "
                              "give the column holding the AHV numbers with --id-column")
    if args.out_column != args.id_column and args.out_column in df.columns:
        raise ConfigError(f"{src}: --out-column {args.out_column!r} is already a column of the input; "
                          "choose another name (the AHV column itself may be replaced)")
    if not len(df):  # nothing to pseudonymise: no empty export with exit 0
        raise ValidationError(f"{src}: the file has its columns but no rows; nothing written: check the export "
                              "(was it written before the data arrived?)")
    _refuse_raw_identifiers(df, args.id_column, src)
    out, report = pseudonymise(df, args.id_column, key, out_column=args.out_column)
    if not report.ok:
        print(report.to_text(str(src), args.id_column), file=sys.stderr)
        if not args.skip_invalid:
            print("nothing written; fix the numbers or pass --skip-invalid", file=sys.stderr)
            return EXIT_INVALID_INPUT
        rows = pd.DataFrame({"row": list(report.invalid_rows) + list(report.missing_rows),
                             "problem": ["invalid AHV number"] * len(report.invalid_rows)
                             + ["empty"] * len(report.missing_rows)}).sort_values("row")
        write_table(rows, invalid_list, private=True)  # row numbers, never the numbers
    if dst.suffix.lower() in {".parquet", ".pq"}:
        write_parquet_atomic(out, dst, private=True)
    else:
        write_csv_atomic(out, dst, CsvFormat(sep=sep, bom=False), private=True)
    print(f"{len(out):,} rows pseudonymised -> {dst}")
    if report.ok and invalid_list.is_file() and not invalid_list.is_symlink():
        invalid_list.unlink()  # an earlier run's list beside this clean output would be read as this one's
        print(f"{invalid_list} removed: it listed an earlier run's invalid rows, and this input has none")
    return EXIT_OK if report.ok else EXIT_INVALID_INPUT
