"""``iizrisk monitor``: the nightly monitoring figures over a period: tables, plots, an HTML report, in words."""

from __future__ import annotations

import argparse
import sys

from ._args import (
    check_period,
    iso_date,
    output_folder,
    plain_path,
    refuse_writing_into_the_deployment,
)

HELP = "show how the model's inputs, scores and lists changed over the nights (tables, plots, HTML)"
DESCRIPTION = (
    "Read the history store's monitoring table (written by the nightly run) from --from to --to and say "
    "what changed: input drift per feature against the training reference, the risk distribution and bands, "
    "list churn, and the precision expected before labels beside the precision realised once the horizon "
    "passed. Writes tables, plots and report.html to --out (default MONITOR folder beside the history), in "
    "the deployment's [worklist] language."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", type=plain_path, help="the deployment's TOML settings")
    p.add_argument("--from", dest="since", type=iso_date, metavar="YYYY-MM-DD", help="first night")
    p.add_argument("--to", dest="until", type=iso_date, metavar="YYYY-MM-DD", help="last night")
    p.add_argument("--out", type=output_folder, metavar="DIR", help="output folder (default HISTORY/../monitoring)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..config import Settings
    from ..errors import ConfigError
    from ..monitoring import trends
    from ..store import write_files_together, write_text_atomic

    check_period(args.since, args.until)
    settings = Settings.load(args.config)
    refuse_writing_into_the_deployment(settings, args.config, folders={"--out": args.out})
    root = settings.resolve(settings.output.history_dir)
    result = trends(root, since=args.since, until=args.until, language=settings.worklist.language)
    if not len(result.table):
        raise ConfigError(f"{root}: no monitoring figures between {args.since or 'the start'} and "
                          f"{args.until or 'today'}; the nightly run writes them to its history's monitoring table")
    out = Path(args.out) if args.out else Path(root).parent / "monitoring"

    def write(tmp: Path) -> list[Path]:  # all or none: a failed run leaves no half of the figures behind
        files = result.to_dir(tmp, min_cell_size=settings.privacy.min_cell_size, language=result.language)
        return [*files, write_text_atomic(result.to_html(), tmp / "report.html")]

    write_files_together(out, write, label="monitor")
    result.print_summary(file=sys.stdout)
    for line in result.changes():
        print(line, file=sys.stdout)
    print(f"written to {out} (report.html)", file=sys.stdout)
    return 0
