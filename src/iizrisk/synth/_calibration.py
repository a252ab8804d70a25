"""Calibration of the synthetic population against the published BFS figures."""

from __future__ import annotations

import pandas as pd

from .. import _time
from ..errors import ConfigError

__all__ = ["CALIBRATION_TARGETS", "calibration_report"]

#: docs/domain.md section 8: (indicator, figure, target share, tolerance in percentage points).
CALIBRATION_TARGETS: tuple[tuple[str, str, float, float], ...] = (
    ("combinations", "ALV only", 0.437, 2.0),
    ("combinations", "IV only", 0.307, 2.0),
    ("combinations", "SH only", 0.211, 2.0),
    ("combinations", "two or more", 0.045, 2.0),
    ("profiles", "one spell in one system", 0.720, 2.0),
    ("profiles", "several spells in one system", 0.206, 2.0),
    ("profiles", "one spell each in several systems", 0.051, 2.0),
    ("profiles", "revolving door", 0.023, 2.0),
    ("persistence", "ALV 12 months", 0.401, 3.0),
    ("persistence", "ALV 24 months", 0.165, 3.0),
    ("persistence", "SH 12 months", 0.594, 3.0),
    ("persistence", "SH 24 months", 0.418, 3.0),
    ("persistence", "IV 12 months", 0.912, 3.0),
    ("persistence", "IV 24 months", 0.836, 3.0),
    ("reentry", "ALV within 6 months", 0.167, 3.0),
    ("reentry", "SH within 12 months", 0.145, 3.0),
)


def _default_year(start: str, end: str) -> int:
    """Latest year with a full 12-month look-back and 24-month follow-up inside [start, end]."""
    s, e = _time.to_date(_time.day(start)), _time.to_date(_time.day(end))
    first = s.year + 1 + (0 if (s.month, s.day) == (1, 1) else 1)
    last = e.year - 2 - (0 if (e.month, e.day) == (12, 31) else 1)
    if last < first:
        raise ConfigError(f"the period {start} to {end} is too short for the calibration figures: they need "
                          "one year of look-back and two years of follow-up around the reporting year")
    return last


def calibration_report(population, year: int | None = None, *, monthly: bool = True) -> pd.DataFrame:
    """Target and simulated value of every BFS figure of docs/domain.md section 8.

    The figures are computed with :mod:`iizrisk.indicators` (the same code a
    researcher uses on real data), by default in the BFS monthly mode.

    Parameters
    ----------
    population : SyntheticPopulation or DataFrame
        A generated population, or canonical spells.
    year : int, optional
        Reporting year; default (population only) the latest year with a
        12-month look-back and a 24-month follow-up inside the period.
    monthly : bool, default True
        BFS monthly mode (the official figures come from monthly benefit data).

    Returns
    -------
    DataFrame
        ``indicator``, ``figure``, ``target``, ``simulated``, ``difference``
        (percentages and percentage points), ``tolerance`` (pp) and ``within``.

    Examples
    --------
    >>> from iizrisk.synth import generate
    >>> pop = generate(300, "2017-01-01", "2021-12-31", seed=3)
    >>> rep = calibration_report(pop)
    >>> list(rep.columns)
    ['indicator', 'figure', 'target', 'simulated', 'difference', 'tolerance', 'within']
    >>> len(rep)
    16
    """
    from .. import indicators as ind
    from ..spells import build_timeline

    if isinstance(population, pd.DataFrame):
        spells, meta = population, {}
        if year is None:
            raise ConfigError("calibration_report: give the reporting year for a spells DataFrame")
    else:
        spells, meta = population.spells, population.meta
        if year is None:
            year = _default_year(meta["start"], meta["end"])
    tl = build_timeline(spells, mode="monthly" if monthly else "daily")
    data_end = meta.get("end")
    comb = ind.system_combinations(tl, year, min_cell_size=0, data_end=data_end).set_index("combination")["share"]
    prof = ind.entrant_profiles(tl, year, min_cell_size=0, data_end=data_end).set_index("profile")["share"]
    pers = ind.persistence(tl, year, min_cell_size=0, data_end=data_end)
    reen = ind.reentry(tl, year, min_cell_size=0, data_end=data_end)
    sim = {}
    for k, v in comb.items():
        sim[("combinations", k)] = v
    for k, v in prof.items():
        sim[("profiles", k)] = v
    for r in pers.itertuples(index=False):
        sim[("persistence", f"{r.system} {r.months} months")] = r.share
    for r in reen.itertuples(index=False):
        sim[("reentry", f"{r.system} within {r.months} months")] = r.share
    rows = []
    for indicator, figure, target, tol in CALIBRATION_TARGETS:
        s = sim.get((indicator, figure))
        s = float("nan") if s is None or pd.isna(s) else float(s)
        diff = 100 * (s - target)
        rows.append({"indicator": indicator, "figure": figure, "target": round(100 * target, 1),
                     "simulated": round(100 * s, 1), "difference": round(diff, 1), "tolerance": tol,
                     "within": bool(abs(diff) <= tol)})
    out = pd.DataFrame(rows)
    out.attrs["year"] = int(year)
    return out
