"""``iizrisk snapshots``: point-in-time features and labels at many month ends, as a Parquet dataset."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._args import (
    MAX_MONTHS,
    check_period,
    int_at_least,
    int_between,
    iso_date,
    output_folder,
    plain_path,
    refuse_overwriting_inputs,
)

logger = logging.getLogger("iizrisk")

HELP = "build the snapshot dataset (features and labels at many month ends) that train can read"
DESCRIPTION = (
    "Write the point-in-time features of everyone with an open spell, and each snapshot's outcome over the "
    "horizon, at every month end from --from to --to (default: 24 months after the first start to the last "
    "observed day; a later --to is narrowed to that day), to OUT as Parquet partitioned by as-of date and "
    "person bucket. Memory is about one "
    "bucket at one date. Each partition is written atomically: a build that stops is finished by running "
    "the same command again; a folder holding another build is refused. `iizrisk train --snapshots OUT` "
    "then trains without building features again. With --dask the buckets are built as tasks on a Dask "
    "cluster (a LocalCluster of --workers processes, or the scheduler at ADDRESS; OUT must then be on "
    "storage every worker sees): the partitions are byte-identical."
)


def add_dask_arguments(p: argparse.ArgumentParser) -> None:
    """``--dask [ADDRESS]`` and ``--workers N`` (shared with ``iizrisk evaluate``)."""
    p.add_argument("--dask", nargs="?", const="", default=None, type=_address, metavar="ADDRESS",
                   help="run the per-person work on Dask (pip install 'iizrisk[dask]'): a LocalCluster on this "
                        "machine, or the scheduler at ADDRESS (tcp://host:8786); results are identical")
    p.add_argument("--workers", type=int_between(1, 1024), default=None, metavar="N",
                   help="worker processes of the LocalCluster of --dask (2)")
    p.add_argument("--config", type=plain_path, metavar="TOML",
                   help="the deployment's settings: the spells may hold its [deployment] extra_institutions; "
                        "--dask without ADDRESS uses its [dask] scheduler and workers")


def config_extra_institutions(args: argparse.Namespace) -> list[str] | None:
    """The ``[deployment] extra_institutions`` of ``--config`` (None without it): codes the spells may hold."""
    if getattr(args, "config", None) is None:
        return None
    from ..config import Settings

    return list(Settings.load(args.config).deployment.extra_institutions)


def _address(text: str) -> str:
    """argparse type: a scheduler address without spaces (empty: a LocalCluster)."""
    if text != text.strip() or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError("give the scheduler address without spaces, e.g. tcp://host:8786")
    return text


def check_dask_args(args: argparse.Namespace) -> None:
    """Check ``--dask``/``--workers`` and that Dask is installed (before any data are read)."""
    from ..errors import ConfigError

    if args.dask is None:
        if args.workers is not None:
            raise ConfigError("--workers sets the LocalCluster of --dask; add --dask")
        return
    if args.dask and args.workers is not None:
        raise ConfigError(f"--workers is for a LocalCluster; the cluster at {args.dask} has its own workers")
    from ..distributed import require_dask

    require_dask()


@contextmanager
def dask_from_args(args: argparse.Namespace) -> Iterator[Any]:
    """The Dask client that ``--dask``/``--workers`` ask for (None without ``--dask``), closed on leaving."""
    check_dask_args(args)
    if args.dask is None:
        yield None
        return
    from ..distributed import DEFAULT_WORKERS, dask_client

    address, workers = args.dask or None, args.workers or DEFAULT_WORKERS
    if args.config is not None:
        from ..config import Settings
        from ..errors import ConfigError

        d = Settings.load(args.config).dask
        if address is None and d.scheduler:
            if args.workers is not None:
                raise ConfigError(f"--workers is for a LocalCluster; {args.config} names the scheduler "
                                  f"{d.scheduler} ([dask] scheduler)")
            address = d.scheduler
        workers = args.workers or d.workers
    with dask_client(address, workers=workers) as client:
        logger.info("on Dask: %s", f"the scheduler at {address}" if address
                    else f"a LocalCluster of {workers} worker processes")
        yield client


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..outcomes import outcome_names

    p.add_argument("--spells", required=True, metavar="PATH", help="canonical spells: a Parquet file or folder")
    p.add_argument("--interventions", metavar="PATH", help="interventions (CSV or Parquet)")
    p.add_argument("--outcome", required=True, choices=outcome_names(), help="the label of each snapshot")
    p.add_argument("--horizon-months", type=int_at_least(1, MAX_MONTHS), default=12, metavar="N",
                   help="horizon in months (12)")
    p.add_argument("--from", dest="first", type=iso_date, metavar="YYYY-MM-DD", help="first month end")
    p.add_argument("--to", dest="last", type=iso_date, metavar="YYYY-MM-DD", help="last month end (at most the data's last observed day)")
    p.add_argument("--buckets", type=int_between(1, 4096), default=16, metavar="N",
                   help="person buckets per month end (16); memory is about one bucket's features")
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR", help="the dataset folder")
    p.add_argument("--jobs", type=int_between(1, 256), default=1, metavar="N",
                   help="buckets built at once in processes on this machine (1); 2 on 2 cores about halves "
                        "the time, each extra job holds one more bucket in memory; not with --dask")
    add_dask_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..snapshots import build_snapshots, default_dates
    from .features import read_inputs

    if args.jobs != 1 and args.dask is not None:
        from ..errors import ConfigError

        raise ConfigError("--jobs runs processes on this machine, --dask runs on a cluster: use one of them")
    check_dask_args(args)
    check_period(args.first, args.last)  # reversed, it read as "no month end between" the two
    refuse_overwriting_inputs({"--spells": args.spells, "--interventions": args.interventions,
                               "--config": args.config}, folders={"--out": args.out})
    spells, interventions = read_inputs(args.spells, args.interventions,
                                        extra_institutions=config_extra_institutions(args))
    dates = default_dates(spells, first=args.first, last=args.last)  # never empty: it says why
    with dask_from_args(args) as client:
        snaps = build_snapshots(spells, args.out, as_of=dates, interventions=interventions, outcome=args.outcome,
                                horizon_months=args.horizon_months, buckets=args.buckets, client=client,
                                jobs=args.jobs)
    print(f"{len(dates)} month ends ({dates[0].date()} to {dates[-1].date()}) x {args.buckets} buckets "
          f"-> {snaps.path}", file=sys.stdout)
    return 0
