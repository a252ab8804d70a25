"""``iizrisk run CONFIG``: the nightly job, from raw exports to per-institution worklists."""

from __future__ import annotations

import argparse

from ..errors import EXIT_OK
from ._args import iso_date

#: run as the console script, glibc keeps freed memory for the next arrays (:mod:`iizrisk._memory`): at 10M
#: spells the nightly run took 25.0-26.8 s instead of 26.4-30.6 s (6 runs each, alternated), peak 4.3 GB
KEEPS_FREED_MEMORY = True
HELP = "nightly job: ingest, validate, flag, score, explain and publish worklists (crash-safe)"
DESCRIPTION = (
    "Run the nightly job of a deployment: ingest and validate every source, build the point-in-time "
    "view at the as-of date (default: yesterday), compute flags and features, score everyone with a "
    "spell open that day, explain the worklist rows, check the run-health gates ([health]) and publish "
    "a run folder atomically (scores, per-institution worklists, manifest, Markdown and HTML summary). "
    "Worklists are hints for a human review, never decisions. Exit codes: 0 published, 1 invalid input "
    "or a failed health gate (report printed, nothing published), 2 usage/configuration, 3 model "
    "problem, 4 another run holds the lock, 5 internal error, 6 operating-system failure."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="deployment configuration (.toml)")
    p.add_argument("--as-of", metavar="YYYY-MM-DD", type=iso_date, help="as-of date (default: yesterday)")
    p.add_argument("--force", action="store_true",
                   help="publish although health gates failed or the as-of date looks wrong (needs --reason)")
    p.add_argument("--reason", metavar="TEXT", help="why the run is forced; recorded in the manifest")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")


def run(args: argparse.Namespace) -> int:
    from ..batch import run_nightly

    if args.reason and not args.force:
        from ..errors import ConfigError

        raise ConfigError("--reason only goes with --force")
    result = run_nightly(args.config, as_of=args.as_of, progress=False if args.no_progress else None,
                         force=args.force, reason=args.reason)
    folder = result.folder
    assert folder is not None  # run_nightly publishes; only check_run leaves the folder out
    sizes = ", ".join(f"{k} {v['on_list']}" for k, v in result.manifest["worklists"].items())
    print(f"published {folder} ({result.manifest['persons_scored']:,} persons scored; "
          f"worklists: {sizes or 'none'})")
    if not result.health.ok:
        print(f"FORCED despite failed gates (reason: {args.reason}):\n{result.health.to_text()}")
    print(f"summary: {folder / 'summary.html'}")
    return EXIT_OK
