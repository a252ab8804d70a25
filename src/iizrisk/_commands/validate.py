"""``iizrisk validate CONFIG``: check every configured source and print the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EXIT_INVALID_INPUT, EXIT_OK

HELP = "validate the configured exports (or one file/folder); exit 0 when valid, 1 when not"
DESCRIPTION = (
    "Read every source of a deployment configuration (or one CSV/Parquet file or folder), map it "
    "onto the canonical spells and print every problem found: file, column, rows, example and fix. "
    "Nothing is written unless --report is given. Exit code 0 when valid, 1 when not."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="deployment configuration (.toml) or a data file/folder")
    p.add_argument("--institution", help="institution code for a single file without an institution column")
    p.add_argument("--report", metavar="FILE", help="also write the problems as CSV to FILE")


def run(args: argparse.Namespace) -> int:
    from ..io import ingest

    result = ingest(args.config, errors="quarantine", institution=args.institution)
    report = result.report
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        report.to_frame().to_csv(args.report, index=False)
    print(report.to_text(), file=sys.stdout)
    return EXIT_OK if report.ok else EXIT_INVALID_INPUT
