"""Shared fixtures: small synthetic data built in memory."""

from __future__ import annotations

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
