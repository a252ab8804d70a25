"""BFS-compatible indicators of a calendar year, computed on canonical spells.

The Swiss Federal Statistical Office (BFS) describes how people move through
unemployment insurance (ALV), disability insurance (IV) and social
assistance (SH) -- the "systems" -- with a handful of indicators (docs/domain.md
section 8). This module computes the same indicators on any canonical spells,
so that a canton can compare its own data with the national figures and the
synthetic population can be calibrated against them (one implementation of
each measure, used by both).

Spells are first merged (:func:`iizrisk.spells.build_timeline`: rows of one
person at one institution that overlap or touch are one spell). With
``monthly=True`` the *BFS monthly mode* is used: a calendar month counts as
registered if any day of it is, and a spell is a run of registered months
(:func:`iizrisk.spells.monthly_spells`); the official statistics work on monthly benefit
data, so use it to compare with BFS figures.

Definitions (year ``Y`` = 1 January to 31 December; ``systems`` default
``("ALV", "IV", "SH")``)

system combinations (:func:`system_combinations`)
    People with a spell at one of the systems overlapping ``Y``, by the set of
    systems they were registered at in ``Y``: "ALV only", "IV only", "SH only",
    "two or more".
entry (profiles)
    A person *enters* the systems on the start day ``s`` of a spell in ``Y``
    when no spell at any of the systems overlaps the ``lookback_months``
    (default 12) calendar months before ``s`` (days ``s - 12 months`` to
    ``s - 1``); the first such start in ``Y`` counts. Entry into *one* system
    (persistence) is the same with only that system's spells.
profiles (:func:`entrant_profiles`)
    Entrants followed for ``follow_months`` (24) months from the entry day
    (days ``s`` to ``s + 24 months - 1``), counting the merged spells per system
    that start in that window: one spell in one system; several spells in one
    system; one spell each in several systems; revolving door (spells in at
    least two systems and at least two separate spells in at least one).
still registered (:func:`persistence`)
    Of the entrants into system X in ``Y``, the share registered at X on the
    day ``months`` (12, 24) calendar months after the entry day (in monthly
    mode: in the month ``months`` after the entry month), whether in the entry
    spell or after a re-entry.
re-entry (:func:`reentry`)
    Leavers of X in ``Y`` are people with a spell at X ending in ``Y`` (the
    first such end; ends by ``death`` are left out); they re-entered within
    ``months`` (6, 12) when their next spell at X starts no later than the
    end day plus ``months`` calendar months.
transitions (:func:`transition_matrix`)
    docs/domain.md section 5: a spell at B starting in ``Y`` is a transition from A
    (another institution) when a spell at A started strictly earlier and is
    open on B's start day or ended at most ``gap_days`` (90) days before it.
    Each (B spell, A) pair counts once; spells at B without such an origin are
    entries from "(none)". ``rate`` is the number of people with a transition
    A -> B divided by the people registered at A in ``Y``.

Every table is passed through :mod:`iizrisk.suppression` (cells with fewer
than ``min_cell_size`` people hidden, with secondary suppression against
differencing); ``min_cell_size=0`` switches suppression off for internal use.

Examples
--------
>>> import pandas as pd
>>> rows = pd.DataFrame({
...     "person_id": ["a", "a", "b", "c"],
...     "institution": ["ALV", "SH", "ALV", "IV"],
...     "start_date": pd.to_datetime(["2020-02-01", "2020-09-01", "2020-03-01", "2015-01-01"]),
...     "end_date": pd.to_datetime(["2020-08-31", None, "2020-05-31", None]),
... })
>>> t = system_combinations(rows, 2020, min_cell_size=0)
>>> t[["combination", "persons"]].values.tolist()
[['ALV only', 1], ['IV only', 1], ['SH only', 0], ['two or more', 1], ['Total', 3]]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from . import _time
from ._checks import is_whole
from ._time import OPEN_END
from .errors import ConfigError, ValidationError, withhold_long_numbers
from .spells import (
    DEFAULT_INSTITUTIONS,
    EXIT_REASONS,
    Timeline,
    _check_gap,
    build_timeline,
    monthly_spells,
)
from .store import make_dirs
from .suppression import SuppressionResult, check_min_cell_size, suppress_table

__all__ = [
    "BFS_SYSTEMS",
    "PROFILES",
    "BfsIndicators",
    "bfs_indicators",
    "system_combinations",
    "entrant_profiles",
    "persistence",
    "reentry",
    "transition_matrix",
    "entries",
    "window_spell_counts",
    "classify_profiles",
    "transition_pairs",
]

logger = logging.getLogger("iizrisk")

#: The three systems of the BFS statistics (SHIVALV).
BFS_SYSTEMS: tuple[str, ...] = ("ALV", "IV", "SH")
#: The four BFS profiles of entrants followed 24 months, in order.
PROFILES: tuple[str, ...] = (
    "one spell in one system",
    "several spells in one system",
    "one spell each in several systems",
    "revolving door",
)
TOTAL = "Total"
NONE_ORIGIN = "(none)"


# --------------------------------------------------------------------------- helpers
def _year_bounds(year: int) -> tuple[int, int]:
    if not is_whole(year) or not _time.EARLIEST_DATE.year <= year <= _time.LATEST_DATE.year:
        raise ConfigError(f"year must be a whole calendar year from {_time.EARLIEST_DATE.year} to "
                          f"{_time.LATEST_DATE.year}, e.g. 2024; got {_time._shown(str(year))} ({type(year).__name__})")
    return _time.day(f"{int(year):04d}-01-01"), _time.day(f"{int(year):04d}-12-31")


def _timeline(spells, year, *, monthly: bool = False, merge_gap_days: int = 0, data_end=None
              ) -> tuple[Timeline, int | None]:
    """The spells' timeline and their last observed day (:func:`_resolve_data_end`), after checking that
    they can answer for ``year`` (:func:`_check_year`)."""
    y0, y1 = _year_bounds(year)
    if isinstance(spells, Timeline):
        tl = monthly_spells(spells) if monthly else spells
    elif isinstance(spells, pd.DataFrame):
        tl = build_timeline(spells, merge_gap_days=merge_gap_days, mode="monthly" if monthly else "daily")
    else:
        raise TypeError(f"expected canonical spells (DataFrame) or a Timeline, got {type(spells).__name__}")
    if not len(tl):  # every table would be zeros (or could not be laid out): nothing to count
        raise ValidationError("spells: no spells (the table has no rows); the indicators of a year need the "
                              "canonical spells of that year and the years around it: check the export, or "
                              "read it with iizrisk.ingest")
    de = _resolve_data_end(spells, data_end)
    _check_year(tl, int(year), y0, y1, de)
    return tl, de


def _check_year(tl: Timeline, year: int, y0: int, y1: int, data_end: int | None) -> None:
    """Refuse a year the data cannot answer: one after the last observed day, or one no spell overlaps.

    Either gave tables of zeros, or counts extrapolated from spells still open at the export, without a
    word. The message names the period the data cover; another export may hold the year.
    """
    first, last = int(tl.start.min()), _data_end(tl) if data_end is None else int(data_end)
    period = f"the spells cover {_time.to_date(first)} to {_time.to_date(last)} (first start to last observed day)"
    if y0 > last:
        raise ValidationError(f"year {year} lies after the data: {period}; nothing of {year} is known yet. Give "
                              f"a year up to {_time.to_date(last).year}, or the export that holds {year}")
    if not np.any((tl.start <= y1) & (tl.end >= y0)):
        raise ValidationError(f"year {year}: no spell overlaps {year}; {period}. Give a year in "
                              f"{_time.to_date(first).year}..{_time.to_date(last).year}, or the export that "
                              f"holds {year}")
    if last < y1:  # the year's counts cover only its first part: say so, as for the follow-up periods
        logger.warning("year %d is observed only until %s (%d of %d days): its counts cover part of the year; "
                       "compare them with other years only after the export holds the whole of %d",
                       year, _time.to_date(last), last - y0 + 1, y1 - y0 + 1, year)


def _system_index(tl: Timeline, systems: Sequence[str]) -> np.ndarray:
    """Per spell: index of its institution in ``systems``, -1 when not one of them."""
    lut = np.full(len(tl.institutions) + 1, -1, dtype=np.int16)
    for i, s in enumerate(systems):
        c = tl.inst_code(s)
        if c >= 0:
            lut[c] = i
    return lut[tl.inst.astype(np.int64)]


def _data_end(tl: Timeline) -> int:
    closed = tl.end[tl.end != OPEN_END]
    cand = [int(tl.start.max())] if len(tl.start) else []
    if len(closed):
        cand.append(int(closed.max()))
    return max(cand) if cand else 0


def _check_follow_up(tl: Timeline, last_day: int, what: str, data_end: int | None) -> None:
    end = _data_end(tl) if data_end is None else int(data_end)
    if last_day > end:
        logger.warning("%s needs data until %s but the spells end on %s: open spells count as still "
                       "registered and later re-entries are missing", what, _time.to_date(last_day),
                       _time.to_date(end))


def _running_max_exclusive(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Max of ``values`` over the earlier rows of the same group (rows sorted by group); -inf first."""
    n = len(values)
    out = np.full(n, np.iinfo(np.int64).min // 4, dtype=np.int64)
    if n == 0:
        return out
    g = (group - group[0]).astype(np.int64)
    v = values.astype(np.int64) - np.iinfo(np.int32).min  # >= 0
    run = np.maximum.accumulate(g * (1 << 33) + v) - g * (1 << 33)
    same = np.zeros(n, dtype=bool)
    same[1:] = group[1:] == group[:-1]
    out[1:] = np.where(same[1:], run[:-1] + np.iinfo(np.int32).min, out[1:])
    return out


def _share_table(labels: list[str], counts: np.ndarray, dim: str, k: int) -> tuple[pd.DataFrame, SuppressionResult]:
    total = int(counts.sum())
    df = pd.DataFrame({dim: [*labels, TOTAL], "persons": [*counts.astype(np.int64).tolist(), total]})
    df["share"] = df["persons"] / total if total else np.nan
    res = suppress_table(df, "persons", dims=[dim], k=k, derived=["share"])
    return res.table, res


# --------------------------------------------------------------------- combinations
def system_combinations(spells, year: int, *, systems: Sequence[str] = BFS_SYSTEMS, monthly: bool = False,
                        min_cell_size: int = 5, merge_gap_days: int = 0, data_end=None) -> pd.DataFrame:
    """People registered in the year, by the combination of systems.

    Parameters
    ----------
    spells : DataFrame or Timeline
        Canonical spells (merged here) or a timeline.
    year : int
    systems : sequence of str, default ("ALV", "IV", "SH")
    monthly : bool, default False
        BFS monthly mode (no effect on this indicator, kept for symmetry).
    min_cell_size : int, default 5
        Cells with fewer people are suppressed (0 disables).
    merge_gap_days : int, default 0
    data_end : date-like, optional
        The last observed day (default: the spells' latest recorded date, else their latest start or
        end; a timeline's as-of date). A year after it is refused.

    Returns
    -------
    DataFrame
        ``combination`` ("ALV only", ..., "two or more", "Total"), ``persons``, ``share``.

    Examples
    --------
    >>> rows = pd.DataFrame({"person_id": ["a", "b"], "institution": ["ALV", "SH"],
    ...     "start_date": pd.to_datetime(["2020-01-01", "2019-01-01"]), "end_date": [pd.NaT, pd.NaT]})
    >>> system_combinations(rows, 2020, min_cell_size=0)["share"].tolist()
    [0.5, 0.0, 0.5, 0.0, 1.0]
    """
    check_min_cell_size(min_cell_size)
    return _combinations(_timeline(spells, year, monthly=monthly, merge_gap_days=merge_gap_days,
                                   data_end=data_end)[0],
                         year, systems, min_cell_size)[0]


def _combinations(tl: Timeline, year: int, systems: Sequence[str], k: int):
    y0, y1 = _year_bounds(year)
    sidx = _system_index(tl, systems)
    m = (sidx >= 0) & (tl.start <= y1) & (tl.end >= y0)
    pairs = np.unique(tl.person[m].astype(np.int64) * 16 + sidx[m])
    bits = np.bincount(pairs // 16, weights=(1 << (pairs % 16)).astype(np.float64),
                       minlength=tl.n_persons).astype(np.int64)
    bits = bits[bits > 0]
    n_sys = np.zeros(len(bits), dtype=np.int64)
    for i in range(len(systems)):
        n_sys += (bits >> i) & 1
    counts = np.array([int(np.sum(bits == (1 << i))) for i in range(len(systems))] + [int(np.sum(n_sys >= 2))])
    return _share_table([f"{s} only" for s in systems] + ["two or more"], counts, "combination", k)


# -------------------------------------------------------------------------- entries
def entries(spells, year: int, *, systems: Sequence[str] = BFS_SYSTEMS, lookback_months: int = 12,
            monthly: bool = False, merge_gap_days: int = 0, data_end=None) -> pd.DataFrame:
    """Entrants into the systems in ``year``: person and entry day (see module docstring).

    ``data_end``: the last observed day, as for :func:`system_combinations`.

    Returns
    -------
    DataFrame
        ``person_id`` and ``entry_date`` (datetime64[s]), one row per entrant.

    Examples
    --------
    >>> rows = pd.DataFrame({"person_id": ["a", "a", "b"], "institution": ["ALV", "ALV", "SH"],
    ...     "start_date": pd.to_datetime(["2019-01-01", "2020-06-01", "2020-03-01"]),
    ...     "end_date": pd.to_datetime(["2019-03-31", "2020-08-31", None])})
    >>> entries(rows, 2020)["person_id"].tolist()  # a was registered 14 months before: entrant
    ['a', 'b']
    """
    tl, _ = _timeline(spells, year, monthly=monthly, merge_gap_days=merge_gap_days, data_end=data_end)
    person, day = _entries(tl, year, _system_index(tl, systems) >= 0, lookback_months)
    order = np.argsort(person, kind="stable")
    return pd.DataFrame({"person_id": tl.person_ids.take(person[order]),
                         "entry_date": _time.from_days(day[order])})


def _entries(tl: Timeline, year: int, sel: np.ndarray, lookback_months: int) -> tuple[np.ndarray, np.ndarray]:
    """(person codes, entry days) of entrants among the spells selected by ``sel``."""
    y0, y1 = _year_bounds(year)
    idx = np.flatnonzero(sel)
    p, s, e = tl.person[idx].astype(np.int64), tl.start[idx].astype(np.int64), tl.end[idx].astype(np.int64)
    order = np.lexsort((e, s, p))
    p, s, e = p[order], s[order], e[order]
    prev_end = _running_max_exclusive(p, e)
    look = _time.window_start(s - 1, lookback_months).astype(np.int64) if len(s) else s
    qual = (s >= y0) & (s <= y1) & (prev_end < look)
    qp, qs = p[qual], s[qual]
    first = np.unique(qp, return_index=True)[1]
    return qp[first], qs[first]


def entrant_profiles(spells, year: int, *, systems: Sequence[str] = BFS_SYSTEMS, lookback_months: int = 12,
                     follow_months: int = 24, monthly: bool = False, min_cell_size: int = 5,
                     merge_gap_days: int = 0, data_end=None) -> pd.DataFrame:
    """The four BFS profiles of the people who entered the systems in ``year``.

    Parameters
    ----------
    spells : DataFrame or Timeline
    year : int
    systems : sequence of str, default ("ALV", "IV", "SH")
    lookback_months : int, default 12
        No registration at any of the systems in these months before the entry.
    follow_months : int, default 24
        Length of the follow-up window from the entry day.
    monthly : bool, default False
        BFS monthly mode.
    min_cell_size : int, default 5
    merge_gap_days : int, default 0
    data_end : date-like, optional
        Last day covered by the data (default: the latest recorded date, or the
        latest start or end, of a DataFrame); a warning is logged when the
        follow-up runs past it.

    Returns
    -------
    DataFrame
        ``profile`` (:data:`PROFILES` and "Total"), ``persons``, ``share``.

    Examples
    --------
    >>> rows = pd.DataFrame({"person_id": ["a", "a", "a", "b"], "institution": ["ALV", "SH", "ALV", "ALV"],
    ...     "start_date": pd.to_datetime(["2020-01-06", "2020-09-01", "2021-05-01", "2020-03-01"]),
    ...     "end_date": pd.to_datetime(["2020-06-30", "2020-12-31", "2021-07-31", "2020-05-31"])})
    >>> entrant_profiles(rows, 2020, min_cell_size=0)["persons"].tolist()
    [1, 0, 0, 1, 2]
    """
    check_min_cell_size(min_cell_size)
    tl, de = _timeline(spells, year, monthly=monthly, merge_gap_days=merge_gap_days, data_end=data_end)
    return _profiles(tl, year, systems, lookback_months, follow_months, min_cell_size,
                     de)[0]


def _as_day(value) -> int:
    return int(value) if isinstance(value, int | np.integer) else _time.day(value)


def _resolve_data_end(spells, data_end) -> int | None:
    """The last observed day: given, or from a DataFrame (:func:`iizrisk.outcomes.observed_until`)."""
    if data_end is not None:
        return _as_day(data_end)
    if isinstance(spells, Timeline) and spells.as_of is not None:  # a view at T knows nothing after T
        return int(spells.as_of)
    if isinstance(spells, pd.DataFrame) and len(spells):
        from .outcomes import observed_until

        return observed_until(spells)
    return None


def window_spell_counts(tl: Timeline, person, w0, w1, *, systems: Sequence[str] = BFS_SYSTEMS,
                        overlap: bool = True) -> np.ndarray:
    """Spells per system of each (person, window): an ``(n_windows, len(systems))`` count matrix.

    A spell counts in the window ``[w0, w1]`` (day numbers, inclusive) when it
    overlaps it (``overlap=True``) or starts in it (``overlap=False``). Used for
    the BFS profiles and by the synthetic population's truth outcomes.

    Examples
    --------
    >>> rows = pd.DataFrame({"person_id": ["a", "a", "a"], "institution": ["ALV", "SH", "ALV"],
    ...     "start_date": pd.to_datetime(["2020-01-01", "2020-05-01", "2020-09-01"]),
    ...     "end_date": pd.to_datetime(["2020-03-31", "2020-06-30", "2020-10-31"])})
    >>> tl = build_timeline(rows)
    >>> window_spell_counts(tl, [0], [_time.day("2020-02-01")], [_time.day("2020-12-31")]).tolist()
    [[2, 0, 1]]
    """
    person = np.asarray(person, dtype=np.int64)
    w0 = np.broadcast_to(np.asarray(w0, dtype=np.int64), person.shape)
    w1 = np.broadcast_to(np.asarray(w1, dtype=np.int64), person.shape)
    nsys = len(systems)
    out = np.zeros((len(person), nsys), dtype=np.int64)
    if not len(person) or not len(tl):
        return out
    sidx = _system_index(tl, systems)
    # persons are contiguous in a timeline (sorted by person): CSR offsets
    tp = tl.person.astype(np.int64)
    if np.any(np.diff(tp) < 0):
        raise ValueError("timeline spells must be sorted by person")
    lo = np.searchsorted(tp, person, side="left")
    hi = np.searchsorted(tp, person, side="right")
    n_each = hi - lo
    win = np.repeat(np.arange(len(person)), n_each)
    offs = np.arange(int(n_each.sum())) - np.repeat(np.cumsum(n_each) - n_each, n_each)
    row = np.repeat(lo, n_each) + offs
    s, e = tl.start[row].astype(np.int64), tl.end[row].astype(np.int64)
    ok = (sidx[row] >= 0) & (s <= w1[win]) & ((e >= w0[win]) if overlap else (s >= w0[win]))
    np.add.at(out, (win[ok], sidx[row][ok].astype(np.int64)), 1)
    return out


def classify_profiles(counts: np.ndarray) -> np.ndarray:
    """Profile code (0-3, index into :data:`PROFILES`; -1 without spells) from a count matrix.

    Examples
    --------
    >>> classify_profiles(np.array([[1, 0, 0], [2, 0, 0], [1, 1, 0], [2, 0, 1], [0, 0, 0]])).tolist()
    [0, 1, 2, 3, -1]
    """
    counts = np.asarray(counts)
    n_sys = (counts > 0).sum(axis=1)
    mx = counts.max(axis=1) if counts.shape[1] else np.zeros(len(counts), dtype=np.int64)
    code = np.where(n_sys >= 2, np.where(mx >= 2, 3, 2), np.where(mx >= 2, 1, 0))
    return np.where(n_sys == 0, -1, code)


def _profiles(tl, year, systems, lookback_months, follow_months, k, data_end):
    sel = _system_index(tl, systems) >= 0
    person, day = _entries(tl, year, sel, lookback_months)
    w1 = _time.add_months(day, follow_months).astype(np.int64) - 1 if len(day) else day
    if len(day):
        _check_follow_up(tl, int(w1.max()), f"profiles of {year} entrants", data_end)
    counts = window_spell_counts(tl, person, day, w1, systems=systems, overlap=False)
    code = classify_profiles(counts)
    n = np.bincount(code[code >= 0], minlength=len(PROFILES))
    return _share_table(list(PROFILES), n, "profile", k)


# ---------------------------------------------------------------------- persistence
def persistence(spells, year: int, *, systems: Sequence[str] = BFS_SYSTEMS, months: Sequence[int] = (12, 24),
                lookback_months: int = 12, monthly: bool = False, min_cell_size: int = 5,
                merge_gap_days: int = 0, data_end=None) -> pd.DataFrame:
    """Share of each system's entrants still registered there ``months`` after entry.

    Parameters
    ----------
    spells : DataFrame or Timeline
    year : int
    systems : sequence of str, default ("ALV", "IV", "SH")
    months : sequence of int, default (12, 24)
    lookback_months : int, default 12
        An entrant into X had no spell at X in these months before the entry.
    monthly : bool, default False
    min_cell_size : int, default 5
    merge_gap_days : int, default 0
    data_end : date-like, optional

    Returns
    -------
    DataFrame
        ``system``, ``months``, ``entrants``, ``still_registered``, ``share``.

    Examples
    --------
    >>> rows = pd.DataFrame({"person_id": ["a", "b"], "institution": ["SH", "SH"],
    ...     "start_date": pd.to_datetime(["2020-03-01", "2020-04-01"]),
    ...     "end_date": pd.to_datetime(["2020-12-31", None])})
    >>> persistence(rows, 2020, systems=["SH"], min_cell_size=0)["share"].tolist()
    [0.5, 0.5]
    """
    check_min_cell_size(min_cell_size)
    tl, de = _timeline(spells, year, monthly=monthly, merge_gap_days=merge_gap_days, data_end=data_end)
    return _persistence(tl, year, systems, months, lookback_months, min_cell_size,
                        de)[0]


def _registered_on(tl: Timeline, rows_sel: np.ndarray, person: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Whether each (person, day) is covered by one of the spells selected by ``rows_sel``."""
    idx = np.flatnonzero(rows_sel)
    p, s, e = tl.person[idx].astype(np.int64), tl.start[idx].astype(np.int64), tl.end[idx].astype(np.int64)
    # spells of one person at one institution do not overlap once merged: the last spell
    # starting on or before the day is the only candidate
    off = np.int64(1) << 34
    key = p * off + (s + (1 << 32))
    order = np.argsort(key, kind="stable")
    key, e = key[order], e[order]
    q = np.asarray(person, dtype=np.int64) * off + (np.asarray(days, dtype=np.int64) + (1 << 32))
    pos = np.searchsorted(key, q, side="right") - 1
    ok = pos >= 0
    same = np.zeros(len(q), dtype=bool)
    same[ok] = (key[pos[ok]] // off) == np.asarray(person)[ok]
    res = np.zeros(len(q), dtype=bool)
    res[same] = e[pos[same]] >= np.asarray(days, dtype=np.int64)[same]
    return res


def _persistence(tl, year, systems, months, lookback_months, k, data_end):
    rows = []
    sidx = _system_index(tl, systems)
    last_needed = -1
    for i, sys in enumerate(systems):
        sel = sidx == i
        person, day = _entries(tl, year, sel, lookback_months)
        for m in months:
            target = _time.add_months(day, m).astype(np.int64) if len(day) else day
            if len(day):
                last_needed = max(last_needed, int(target.max()))
            still = int(_registered_on(tl, sel, person, target).sum()) if len(day) else 0
            n = len(person)
            for status, c in (("still registered", still), ("not registered", n - still), (TOTAL, n)):
                rows.append({"system": sys, "months": int(m), "status": status, "persons": c})
    if last_needed >= 0:
        _check_follow_up(tl, last_needed, f"persistence of {year} entrants", data_end)
    return _status_table(rows, "still registered", "entrants", "still_registered", k)


def _status_table(rows, yes_label, total_name, yes_name, k):
    long = pd.DataFrame(rows)
    tot = long.loc[long["status"] == TOTAL, ["system", "months", "persons"]].rename(columns={"persons": "_tot"})
    long = long.merge(tot, on=["system", "months"], how="left", sort=False)
    long["share"] = np.where(long["_tot"] > 0, long["persons"] / long["_tot"].where(long["_tot"] > 0, 1), np.nan)
    long = long.drop(columns="_tot")
    res = suppress_table(long, "persons", dims=["system", "months", "status"], margins=["status"], k=k,
                         derived=["share"])
    t = res.table
    keys = ["system", "months"]
    wide = t.loc[t["status"] == TOTAL, [*keys, "persons"]].rename(columns={"persons": total_name})
    yes = t.loc[t["status"] == yes_label, [*keys, "persons", "share"]].rename(columns={"persons": yes_name})
    wide = wide.merge(yes, on=keys, how="left", sort=False).reset_index(drop=True)
    return wide, res


# -------------------------------------------------------------------------- re-entry
def reentry(spells, year: int, *, systems: Sequence[str] = BFS_SYSTEMS, months: Sequence[int] = (6, 12),
            exclude_exit_reasons: Sequence[str] = ("death",), monthly: bool = False, min_cell_size: int = 5,
            merge_gap_days: int = 0, data_end=None) -> pd.DataFrame:
    """Share of each system's leavers in ``year`` who re-entered it within ``months``.

    Parameters
    ----------
    spells : DataFrame or Timeline
    year : int
    systems : sequence of str, default ("ALV", "IV", "SH")
    months : sequence of int, default (6, 12)
    exclude_exit_reasons : sequence of str, default ("death",)
        Ends with these reasons are not counted as leaving.
    monthly : bool, default False
    min_cell_size : int, default 5
    merge_gap_days : int, default 0
    data_end : date-like, optional

    Returns
    -------
    DataFrame
        ``system``, ``months``, ``leavers``, ``reentered``, ``share``.

    Examples
    --------
    >>> rows = pd.DataFrame({"person_id": ["a", "a", "b"], "institution": ["ALV"] * 3,
    ...     "start_date": pd.to_datetime(["2020-01-01", "2020-09-01", "2020-02-01"]),
    ...     "end_date": pd.to_datetime(["2020-05-31", None, "2020-03-31"])})
    >>> reentry(rows, 2020, systems=["ALV"], min_cell_size=0)["share"].tolist()
    [0.5, 0.5]
    """
    check_min_cell_size(min_cell_size)
    tl, de = _timeline(spells, year, monthly=monthly, merge_gap_days=merge_gap_days, data_end=data_end)
    return _reentry(tl, year, systems, months, exclude_exit_reasons, min_cell_size,
                    de)[0]


def _reentry(tl, year, systems, months, exclude, k, data_end):
    y0, y1 = _year_bounds(year)
    sidx = _system_index(tl, systems)
    n = len(tl)
    same_next = np.zeros(n, dtype=bool)
    if n > 1:
        same_next[:-1] = (tl.person[1:] == tl.person[:-1]) & (tl.inst[1:] == tl.inst[:-1])
    next_start = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    next_start[:-1] = np.where(same_next[:-1], tl.start[1:].astype(np.int64), next_start[:-1])
    excl = np.isin(tl.exit_reason, [EXIT_REASONS.index(r) for r in exclude if r in EXIT_REASONS])
    rows = []
    if len(months):
        _check_follow_up(tl, int(_time.add_months(y1, max(months))), f"re-entry of {year} leavers", data_end)
    for i, sys in enumerate(systems):
        m_rows = np.flatnonzero((sidx == i) & (tl.end >= y0) & (tl.end <= y1) & ~excl)
        # first end per person: rows are sorted by person, institution, start
        _, first = np.unique(tl.person[m_rows], return_index=True)
        r = m_rows[first]
        for m in months:
            back = int(np.sum(next_start[r] <= _time.add_months(tl.end[r], m).astype(np.int64))) if len(r) else 0
            for status, c in (("re-entered", back), ("not re-entered", len(r) - back), (TOTAL, len(r))):
                rows.append({"system": sys, "months": int(m), "status": status, "persons": c})
    return _status_table(rows, "re-entered", "leavers", "reentered", k)


# ----------------------------------------------------------------------- transitions
def transition_matrix(spells, year: int, *, gap_days: int = 90, institutions: Sequence[str] | None = None,
                      monthly: bool = False, min_cell_size: int = 5, merge_gap_days: int = 0,
                      data_end=None) -> pd.DataFrame:
    """Transitions between institutions whose destination spell starts in ``year``.

    Parameters
    ----------
    spells : DataFrame or Timeline
    year : int
    gap_days : int, default 90
        A spell at B starting at most this many days after a spell at A ended
        is a transition from A (docs/domain.md section 5).
    institutions : sequence of str, optional
        Institutions to show (default: every institution with a spell).
    monthly : bool, default False
    min_cell_size : int, default 5
    merge_gap_days : int, default 0
    data_end : date-like, optional
        The last observed day (default: the spells' latest recorded date, else their latest start or
        end; a timeline's as-of date). A year after it is refused.

    Returns
    -------
    DataFrame
        Long table ``from``, ``to``, ``transitions`` (spell pairs), ``persons``
        (distinct people), ``from_registered`` (people registered at ``from``
        in the year) and ``rate`` (``persons / from_registered``); ``from`` is
        "(none)" for spells without an origin (entries). Pivot it for a crosstab.

    Examples
    --------
    >>> rows = pd.DataFrame({"person_id": ["a", "a", "b", "b"], "institution": ["ALV", "SH", "SH", "ALV"],
    ...     "start_date": pd.to_datetime(["2020-01-01", "2020-09-01", "2020-01-01", "2020-01-01"]),
    ...     "end_date": pd.to_datetime(["2020-08-01", None, None, "2020-03-31"])})
    >>> t = transition_matrix(rows, 2020, min_cell_size=0)
    >>> t.loc[t["transitions"] > 0, ["from", "to", "transitions"]].values.tolist()
    [['ALV', 'SH', 1], ['(none)', 'ALV', 2], ['(none)', 'SH', 1]]
    """
    check_min_cell_size(min_cell_size)
    _check_gap(gap_days, "gap_days")
    tl, _ = _timeline(spells, year, monthly=monthly, merge_gap_days=merge_gap_days, data_end=data_end)
    return _transitions(tl, year, gap_days, institutions, min_cell_size)[0]


def transition_pairs(tl: Timeline, b_rows: np.ndarray, gap_days: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """Origins of the spells ``b_rows``: arrays (B row, A row) of every qualifying pair.

    A row A of the same person at another institution qualifies when it started
    strictly before B and ended no more than ``gap_days`` days before B's start
    (or is still open then).
    """
    tp = tl.person.astype(np.int64)
    b_rows = np.asarray(b_rows, dtype=np.int64)
    pb = tp[b_rows]
    lo = np.searchsorted(tp, pb, side="left")
    hi = np.searchsorted(tp, pb, side="right")
    n_each = hi - lo
    b = np.repeat(b_rows, n_each)
    a = np.repeat(lo, n_each) + (np.arange(int(n_each.sum())) - np.repeat(np.cumsum(n_each) - n_each, n_each))
    sb = tl.start[b].astype(np.int64)
    ok = (tl.inst[a] != tl.inst[b]) & (tl.start[a].astype(np.int64) < sb) & \
         (tl.end[a].astype(np.int64) + int(gap_days) >= sb)
    return b[ok], a[ok]


def _transitions(tl, year, gap_days, institutions, k):
    y0, y1 = _year_bounds(year)
    present = [tl.institutions[c] for c in np.unique(tl.inst)]
    if institutions is not None and (isinstance(institutions, str | bytes) or not len(institutions)):
        raise ConfigError("institutions must list one or more institution codes, e.g. ['ALV', 'IV', 'SH'] "
                          "(or be left out: every institution with a spell)")
    insts = [str(i) for i in institutions] if institutions is not None else present
    known = [*DEFAULT_INSTITUTIONS, *(i for i in tl.institutions if i not in DEFAULT_INSTITUTIONS)]
    unknown = [i for i in insts if i not in known]
    if unknown:  # a typo ('RAV', 'alv') gave rows of zeros
        raise ConfigError(withhold_long_numbers(
            f"institutions {unknown} are not known institution codes; use some of {', '.join(known)}"))
    b_rows = np.flatnonzero((tl.start >= y0) & (tl.start <= y1))
    b, a = transition_pairs(tl, b_rows, gap_days)
    ni = len(tl.institutions)
    none = ni  # origin code of entries
    # one count per (B spell, origin institution)
    pair_key = np.unique(b * (ni + 1) + tl.inst[a].astype(np.int64))
    pb, pa = pair_key // (ni + 1), pair_key % (ni + 1)
    has_origin = np.zeros(len(tl), dtype=bool)
    has_origin[pb] = True
    nb = b_rows[~has_origin[b_rows]]
    pb = np.concatenate([pb, nb])
    pa = np.concatenate([pa, np.full(len(nb), none)])
    dest = tl.inst[pb].astype(np.int64)
    cell = pa * (ni + 1) + dest
    n_trans = np.bincount(cell, minlength=(ni + 1) ** 2)
    pcell = np.unique(tl.person[pb].astype(np.int64) * (ni + 1) ** 2 + cell) % (ni + 1) ** 2
    n_pers = np.bincount(pcell, minlength=(ni + 1) ** 2)
    # people registered at each institution in the year (denominators of the rates)
    reg_rows = (tl.start <= y1) & (tl.end >= y0)
    reg = np.bincount(np.unique(tl.person[reg_rows].astype(np.int64) * ni + tl.inst[reg_rows]) % ni,
                      minlength=ni)
    labels = [*insts, NONE_ORIGIN]
    codes = {name: (tl.inst_code(name) if name != NONE_ORIGIN else none) for name in labels}
    rows = []
    for f in labels:
        for t in insts:
            if f == t:
                continue  # a transition is always between two institutions
            cf, ct = codes[f], codes[t]
            if cf < 0 or ct < 0:
                tr = pe = 0
            else:
                tr, pe = int(n_trans[cf * (ni + 1) + ct]), int(n_pers[cf * (ni + 1) + ct])
            rows.append({"from": f, "to": t, "transitions": tr, "persons": pe})
    long = pd.DataFrame(rows, columns=["from", "to", "transitions", "persons"])
    res = suppress_table(long, "transitions", dims=["from", "to"], people="persons", k=k)
    out = res.table
    # denominators: a separate one-dimensional table, suppressed on its own
    regt = pd.DataFrame({"institution": insts,
                         "from_registered": [int(reg[codes[i]]) if codes[i] >= 0 else 0 for i in insts]})
    regs = suppress_table(regt, "from_registered", dims=["institution"], k=k, known_totals=False).table
    out = out.merge(regs.rename(columns={"institution": "from"}), on="from", how="left", sort=False)
    out["from_registered"] = out["from_registered"].astype("Int64")
    num = out["persons"].astype("Float64")
    den = out["from_registered"].astype("Float64")
    out["rate"] = (num / den.where(den > 0)).astype("Float64")
    return out, res


# ------------------------------------------------------------------------- all tables
@dataclass
class BfsIndicators:
    """Every BFS-compatible table of one year (see :func:`bfs_indicators`).

    Attributes
    ----------
    year : int
    tables : dict of str to DataFrame
        ``combinations``, ``profiles``, ``persistence``, ``reentry``, ``transitions``.
    min_cell_size : int
    monthly : bool
    suppression : dict of str to SuppressionResult
        Which cells were hidden (for audit; not to be published: it tells
        primary from secondary cells).
    """

    year: int
    tables: dict[str, pd.DataFrame]
    min_cell_size: int = 5
    monthly: bool = False
    suppression: dict[str, SuppressionResult] = field(default_factory=dict, repr=False)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    def __iter__(self):
        return iter(self.tables)

    def to_dir(self, path: str | Path, *, language: str | None = None, xlsx: bool = False) -> list[Path]:
        """Write each table as ``<name>.csv`` (and ``<name>.xlsx``) for people and ``<name>.parquet``; returns the files.

        The CSV and the xlsx go through :func:`iizrisk.tables.write_table`
        (``;``, UTF-8 with BOM, formulas neutralised); the Parquet file holds
        the table as it is.

        Parameters
        ----------
        path : str or Path
            Output folder (created when missing).
        language : {"de", "fr", "it", "en"}, optional
            Headers and row names of the CSV and xlsx in this language, shares rounded (default: the
            column codes and the values as they are; the Parquet files keep them either way).
        xlsx : bool, default False
            Also write each table as an Excel sheet.
        """
        from ._texts import check_language
        from .tables import write_outputs

        if language is not None:  # the one rule of every language= argument, before the folder is made
            check_language(language)
        path = make_dirs(path)
        written: list[Path] = []
        for name, t in self.tables.items():
            written += write_outputs(t, path, name, language=language, xlsx=xlsx)
        return written

    def _repr_html_(self) -> str:
        mode = "BFS monthly mode" if self.monthly else "daily spells"
        parts = [f"<h4>BFS-compatible indicators {self.year} ({mode}; cells &lt; {self.min_cell_size} "
                 f"people suppressed, shown as &middot;)</h4>"]
        for name, t in self.tables.items():
            parts.append(f"<h5>{escape(name)}</h5>" + t.to_html(index=False, na_rep="&middot;",
                                                                 float_format=lambda x: f"{x:.3f}"))
        return "".join(parts)


def bfs_indicators(spells, year: int, *, min_cell_size: int = 5, monthly: bool = False,
                   systems: Sequence[str] = BFS_SYSTEMS, lookback_months: int = 12, follow_months: int = 24,
                   persistence_months: Sequence[int] = (12, 24), reentry_months: Sequence[int] = (6, 12),
                   gap_days: int = 90, merge_gap_days: int = 0, data_end=None) -> BfsIndicators:
    """All BFS-compatible indicators of ``year`` in one pass (spells merged once).

    Parameters
    ----------
    spells : DataFrame or Timeline
        Canonical spells.
    year : int
    min_cell_size : int, default 5
        Cells with fewer people are suppressed (0 disables, for internal use only).
    monthly : bool, default False
        BFS monthly mode (use it to compare with the official figures).
    systems, lookback_months, follow_months, persistence_months, reentry_months, gap_days
        See the individual functions.
    merge_gap_days : int, default 0
    data_end : date-like, optional

    Returns
    -------
    BfsIndicators

    Examples
    --------
    >>> rows = pd.DataFrame({"person_id": ["a", "b"], "institution": ["ALV", "SH"],
    ...     "start_date": pd.to_datetime(["2020-01-01", "2020-02-01"]), "end_date": [pd.NaT, pd.NaT]})
    >>> res = bfs_indicators(rows, 2020, min_cell_size=0)
    >>> sorted(res.tables)
    ['combinations', 'persistence', 'profiles', 'reentry', 'transitions']
    """
    check_min_cell_size(min_cell_size)
    _check_gap(gap_days, "gap_days")
    tl, de = _timeline(spells, year, monthly=monthly, merge_gap_days=merge_gap_days, data_end=data_end)
    k = min_cell_size
    out, sup = {}, {}
    out["combinations"], sup["combinations"] = _combinations(tl, year, systems, k)
    out["profiles"], sup["profiles"] = _profiles(tl, year, systems, lookback_months, follow_months, k, de)
    out["persistence"], sup["persistence"] = _persistence(tl, year, systems, persistence_months,
                                                          lookback_months, k, de)
    out["reentry"], sup["reentry"] = _reentry(tl, year, systems, reentry_months, ("death",), k, de)
    out["transitions"], sup["transitions"] = _transitions(tl, year, gap_days, None, k)
    return BfsIndicators(year=int(year), tables=out, min_cell_size=k, monthly=monthly, suppression=sup)
