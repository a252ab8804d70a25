"""``iizrisk validate CONFIG``: would tonight's run publish? (or: check one data file)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EXIT_INVALID_INPUT, EXIT_OK
from ._args import (
    iso_date,
    output_file,
    refuse_overwriting_inputs,
    refuse_writing_into_the_deployment,
)

HELP = "would tonight's run publish? same checks and exit code as `run` (or validate one data file)"
DESCRIPTION = (
    "With a deployment configuration (.toml): do everything `iizrisk run` does up to publishing (the "
    "same quarantine policy, model checks and health gates) and print the verdict; nothing is written "
    "and no lock is taken. The exit code is the one `iizrisk run` would return: 0 it would publish, "
    "1 invalid input or a failed health gate, 2 configuration, 3 model problem. "
    "With a CSV/Parquet file or folder: map it onto the canonical spells and print every problem found "
    "(file, column, rows, fix); exit 0 when valid, 1 when not."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="deployment configuration (.toml) or a data file/folder")
    p.add_argument("--as-of", metavar="YYYY-MM-DD", type=iso_date,
                   help="as-of date of the run to check (default: yesterday, as `run`)")
    p.add_argument("--institution", help="institution code for a single file without an institution column")
    p.add_argument("--report", metavar="FILE", type=output_file(".csv", ".xlsx"),
                   help="also write the input problems to FILE: a CSV (';', UTF-8 with BOM; headers in the "
                        "configuration's [worklist] language) or, for a FILE ending in .xlsx, an Excel sheet")


def run(args: argparse.Namespace) -> int:
    from ..batch import check_run
    from ..health import HealthError
    from ..io import ingest

    path = Path(args.config)
    if path.suffix.lower() == ".toml":
        from ..config import Settings

        settings = Settings.load(path)
        if args.report:
            refuse_writing_into_the_deployment(settings, path, files={"--report": args.report})
        if args.report:  # the input report as the run's policy sees it, written before any verdict
            _write_report(ingest(settings, errors="quarantine").report, args.report, settings.worklist.language)
        try:
            result = check_run(settings, as_of=args.as_of)
        except HealthError as exc:
            print(exc.report.to_text(), file=sys.stdout)
            print("verdict: tonight's run would NOT publish (exit 1)")
            return EXIT_INVALID_INPUT
        m = result.manifest
        print(f"input: {m['rows']['read']:,} rows read, {m['rows']['accepted']:,} accepted, "
              f"{m['rows']['quarantined']:,} quarantined")
        for warning in m["rows"]["warnings"]:  # for the data steward: e.g. a correction an export contradicts
            print(f"warning: {warning}")
        applied = {k: v for k, v in m.get("corrections", {}).items() if v}
        if applied:
            print("corrections: " + ", ".join(f"{v} {k}" for k, v in applied.items()))
        print(result.health.to_text())
        sizes = ", ".join(f"{k} {v['on_list']}" for k, v in m["worklists"].items())
        print(f"verdict: tonight's run would publish ({m['persons_scored']:,} persons scored; "
              f"worklists: {sizes or 'none'})")
        return EXIT_OK
    if args.report:
        refuse_overwriting_inputs({"CONFIG": args.config}, files={"--report": args.report})
    ingestion = ingest(args.config, errors="quarantine", institution=args.institution)
    report = ingestion.report
    if args.report:
        _write_report(report, args.report)
    print(report.to_text(), file=sys.stdout)
    if report.ok and not sum(report.rows_read.values()):  # a header without rows is no export
        print(f"verdict: {args.config} holds no rows: an export with its columns but no rows is invalid input "
              "(was it written before the data arrived?)", file=sys.stdout)
        return EXIT_INVALID_INPUT
    return EXIT_OK if report.ok else EXIT_INVALID_INPUT



def _write_report(report, target: str, language: str | None = None) -> None:
    """The problems with their rows and examples, for the data steward: a table people open (``;``, BOM, safe)."""
    from ..tables import write_table

    write_table(report.to_frame(), target, language=language)
