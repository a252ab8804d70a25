"""Shared fixtures: small synthetic data built in memory."""

from __future__ import annotations

import calendar
import datetime
import logging
import os

import matplotlib
import pandas as pd
import pytest

from iizrisk.synth import random_spells as random_spells_of

matplotlib.use("Agg")


make_random_spells = random_spells_of  # one generator for tests and benchmarks (iizrisk.synth)


@pytest.fixture(scope="session", autouse=True)
def _owner_only_umask():
    """Files the tests make themselves (key files above all) are owner-only, as a service account's are."""
    old = os.umask(0o077)
    yield
    os.umask(old)


@pytest.fixture(scope="session")
def random_spells() -> pd.DataFrame:
    return make_random_spells(12000, seed=7)


@pytest.fixture(autouse=True)
def _restore_iizrisk_logger():
    """``main()`` configures the iizrisk logger for the application (handler, level): undo it after each test."""
    log = logging.getLogger("iizrisk")
    level, handlers = log.level, list(log.handlers)
    yield
    log.setLevel(level)
    log.handlers[:] = handlers


@pytest.fixture(scope="module")
def cli_data(tmp_path_factory):
    """A small synthetic population for the command line: spells.parquet and interventions.parquet."""
    from iizrisk.synth import generate

    folder = tmp_path_factory.mktemp("cli")
    generate(300, "2018-01-01", "2022-12-31", seed=3).to_dir(folder)
    return folder


def run_main(argv, capsys) -> tuple[int, str]:
    """The exit code of ``iizrisk argv`` (also of a usage error argparse refuses) and its stderr."""
    from iizrisk.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def months_before(day: datetime.date, months: int) -> datetime.date:
    """The same day ``months`` calendar months earlier, clipped to the month's last day (a slow reference)."""
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    return datetime.date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))
