"""``iizrisk ingest``: the canonical spells of a deployment's exports (or of one data file), as Parquet.

The commands that train, audit, evaluate and select read canonical spells
(``--spells``); the nightly run reads the institutions' exports through the
deployment's mapping. This command joins the two: it reads the exports as
``iizrisk run`` does (the mapping, the pseudonym and AHV checks, the
corrections, the deployment's ``[deployment] errors`` policy) and writes the
accepted rows as one Parquet file, atomically. Invalid input writes nothing
(exit 1), as does an export without a row: an empty file is no result.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from ..errors import EXIT_OK, ValidationError
from ._args import (
    PARQUET_SUFFIXES,
    output_file,
    refuse_overwriting_inputs,
    refuse_unwritable_output,
    refuse_writing_into_the_deployment,
)

HELP = "map a deployment's exports (or a data file) onto canonical spells and write them as Parquet"
DESCRIPTION = (
    "Read the exports of a deployment configuration (.toml) as `iizrisk run` does (the sources' mapping, "
    "the pseudonym and AHV checks, the corrections and the [deployment] errors policy), or one CSV/Parquet "
    "file or folder, and write the accepted rows as canonical spells to --out (Parquet, written atomically, "
    "readable by the owner and the group): the --spells of train, audit, evaluate, policy, select and "
    "snapshots. Exit codes: 0 written, 1 invalid input or no row (nothing written), 2 usage or configuration."
)

logger = logging.getLogger("iizrisk")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="CONFIG", help="deployment configuration (.toml) or a data file/folder")
    p.add_argument("--out", required=True, type=output_file(*PARQUET_SUFFIXES), metavar="FILE.parquet",
                   help="the canonical spells, written atomically; not in the deployment's exports, model, "
                        "runs or history folders")
    p.add_argument("--institution", help="institution code for a single file without an institution column")


def run(args: argparse.Namespace) -> int:
    from ..io import ingest
    from ..store import write_parquet_atomic

    t0 = time.perf_counter()
    refuse_unwritable_output(args.out, "--out")
    path = Path(args.source)
    if path.suffix.lower() == ".toml":
        from ..config import Settings

        if args.institution:
            from ..errors import ConfigError

            raise ConfigError("--institution is for a single data file; a deployment's sources name theirs")
        settings = Settings.load(path)
        refuse_writing_into_the_deployment(settings, path, files={"--out": args.out})
        _refuse_an_export_folder(settings, args.out)
        ingestion = ingest(settings)
    else:
        refuse_overwriting_inputs({"CONFIG": args.source}, files={"--out": args.out})
        ingestion = ingest(args.source, institution=args.institution)
    spells = ingestion.spells
    if not len(spells):
        raise ValidationError(f"{args.source}: no row was accepted, so there are no spells to write; nothing was "
                              "written (an export with its columns but no rows, or every row quarantined: see "
                              "`iizrisk validate`)", ingestion.report)
    for warning in ingestion.report.warnings:
        logger.warning("%s", warning.to_text())
    write_parquet_atomic(spells, args.out)
    print(f"wrote {args.out}: {len(spells):,} rows of {spells['person_id'].nunique():,} persons "
          f"({len(ingestion.quarantine):,} rows quarantined) in {time.perf_counter() - t0:.1f} s")
    return EXIT_OK


def _refuse_an_export_folder(settings, out) -> None:
    """A new file in a source's folder, or matching a source's pattern, would be read as an export by the next
    night."""
    import fnmatch

    from ..errors import ConfigError

    target = Path(str(out)).resolve()
    for src in settings.sources:
        configured = settings.resolve(src.path)
        if any(ch in str(configured) for ch in "*?["):  # a pattern: the files it matches are the exports
            base = Path(*[part for part in configured.parts[:next(
                i for i, part in enumerate(configured.parts) if any(ch in part for ch in "*?["))]])
            pattern = str(base.resolve() / configured.relative_to(base))
            if fnmatch.fnmatch(str(target), pattern) or fnmatch.fnmatch(str(Path(str(out)).absolute()),
                                                                        str(configured)):
                raise ConfigError(f"--out {out} matches the path {src.path!r} of the source {src.name!r}: the "
                                  "next night would read it as an export; give --out a place outside it")
            continue
        root = configured.resolve()
        if root.is_dir() and root in target.parents:
            raise ConfigError(f"--out {out} lies in the folder of the source {src.name!r} ({root}): the next "
                              "night would read it as an export; give --out a place outside it")
