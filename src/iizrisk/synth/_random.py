"""Random canonical spells: shapes for tests and benchmarks, no realism."""

from __future__ import annotations

import numpy as np
import pandas as pd

_INSTITUTIONS = ("ALV", "IV", "SH", "BB", "MIG")
_SHARES = (0.45, 0.15, 0.25, 0.1, 0.05)
_REASONS = np.array(["employment", "transfer", "benefit_exhausted", "other"])
_EDUCATION = np.array(["compulsory", "upper_secondary", "tertiary"])


def random_spells(n_spells: int, *, seed: int = 0, persons_per_spell: float = 0.2, first: str = "2016-01-01",
                  days: int = 3000) -> pd.DataFrame:
    """Random canonical spells, vectorised: stress shapes, not the Swiss population.

    Starts are uniform over ``days`` days from ``first``; durations are gamma
    distributed; one row in ten, and every row ending after the export day, is
    open. Use :func:`generate` for a calibrated population.

    Parameters
    ----------
    n_spells : int
        Rows.
    seed : int, default 0
    persons_per_spell : float, default 0.2
        Persons per row (0.2: about five rows per person).
    first : date string, default "2016-01-01"
    days : int, default 3000
        Span of the start dates; its end is the export day.

    Examples
    --------
    >>> df = random_spells(1000, seed=1)
    >>> len(df), df["person_id"].nunique() <= 200
    (1000, True)
    """
    rng = np.random.default_rng(seed)
    n_persons = max(1, int(n_spells * persons_per_spell))
    person = rng.integers(0, n_persons, n_spells)
    ids = np.char.add("p", np.arange(n_persons).astype(str))
    inst = rng.choice(np.array(_INSTITUTIONS), n_spells, p=list(_SHARES))
    start = np.datetime64(first) + rng.integers(0, days, n_spells).astype("timedelta64[D]")
    end = (start + rng.gamma(1.2, 200, n_spells).astype(int).astype("timedelta64[D]")).astype("datetime64[s]")
    export_day = np.datetime64(first) + np.timedelta64(days, "D")
    end = np.where((rng.random(n_spells) < 0.1) | (end > export_day), np.datetime64("NaT"), end)
    return pd.DataFrame({
        "person_id": pd.Series(ids[person], dtype="str"),
        "institution": inst,
        "case_id": pd.Series(np.char.add(np.char.add(inst, "-"), np.arange(n_spells).astype(str)), dtype="str"),
        "start_date": start.astype("datetime64[s]"),
        "end_date": end.astype("datetime64[s]"),
        "exit_reason": np.where(pd.isna(end), np.array(None, dtype=object), _REASONS[rng.integers(0, 4, n_spells)]),
        "birth_year": rng.integers(1960, 2004, n_persons)[person],
        "education": _EDUCATION[rng.integers(0, 3, n_persons)][person],
    })
