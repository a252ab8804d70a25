"""Shared fixtures: small synthetic data built in memory."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")


def make_random_spells(n_spells: int, *, seed: int = 0, persons_per_spell: float = 0.2,
                       first="2016-01-01", days=3000) -> pd.DataFrame:
    """Random canonical spells (about 5 per person); no realism, just shapes."""
    rng = np.random.default_rng(seed)
    n_persons = max(1, int(n_spells * persons_per_spell))
    person = rng.integers(0, n_persons, n_spells)
    ids = np.char.add("p", np.arange(n_persons).astype(str))
    inst = rng.choice(np.array(["ALV", "IV", "SH", "BB", "MIG"]), n_spells, p=[.45, .15, .25, .1, .05])
    start = np.datetime64(first) + rng.integers(0, days, n_spells).astype("timedelta64[D]")
    end = (start + rng.gamma(1.2, 200, n_spells).astype(int).astype("timedelta64[D]")).astype("datetime64[s]")
    export_day = np.datetime64(first) + np.timedelta64(days, "D")
    end = np.where((rng.random(n_spells) < 0.1) | (end > export_day), np.datetime64("NaT"), end)
    reasons = np.array(["employment", "transfer", "benefit_exhausted", "other"])
    return pd.DataFrame({
        "person_id": pd.Series(ids[person], dtype="str"),
        "institution": inst,
        "case_id": pd.Series(np.char.add(np.char.add(inst, "-"), np.arange(n_spells).astype(str)), dtype="str"),
        "start_date": start.astype("datetime64[s]"),
        "end_date": end.astype("datetime64[s]"),
        "exit_reason": np.where(pd.isna(end), None, reasons[rng.integers(0, 4, n_spells)]),
        "birth_year": rng.integers(1960, 2004, n_persons)[person],
        "education": np.array(["compulsory", "upper_secondary", "tertiary"])[rng.integers(0, 3, n_persons)][person],
    })


@pytest.fixture(scope="session")
def random_spells() -> pd.DataFrame:
    return make_random_spells(12000, seed=7)
