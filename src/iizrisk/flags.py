"""Flags at an as-of date: multi-registration, transitions, re-entries, revolving door.

Definitions (docs/domain.md section 5), all at as-of date T on the point-in-time
view of the spells, and over a window of W calendar months ending at T
(default 24; the window starts on T minus W months plus one day):

- *registered on day T*: institutions with a spell covering day T
  (``n_registered``; ``multi_registered`` at >= 2);
- *within the window*: distinct institutions with a spell overlapping the
  window (``n_institutions_window``; ``multi_agency_window`` at >= 2), merged
  spells overlapping the window (``n_spells_window``) and the largest number
  of them at one institution (``max_spells_one_institution_window``);
- *transition*: a spell at institution B that starts while a spell at
  another institution A, started strictly earlier, is open, or at most
  ``transition_gap_days`` (90) days after such a spell ended; spells
  starting on the same day are simultaneous, not transitions;
- *re-entry*: a spell that starts after an earlier merged spell of the same
  person at the same institution;
- counts in the window (``n_transitions_window``, ``n_reentries_window``)
  count the spells that *start* inside the window;
- *revolving door* (BFS): within the window, spells at >= 2 institutions and
  >= 2 separate spells at at least one institution.

Everything is vectorised over all persons: sorts, cumulative maxima,
binary searches on sorted keys and ``bincount``; no per-person Python loop.

Examples
--------
>>> import pandas as pd
>>> rows = pd.DataFrame({
...     "person_id": ["p", "p", "p", "q"],
...     "institution": ["ALV", "SH", "ALV", "IV"],
...     "start_date": pd.to_datetime(["2023-01-01", "2023-05-01", "2024-01-01", "2020-01-01"]),
...     "end_date": pd.to_datetime(["2023-04-30", "2023-12-31", None, "2020-12-31"]),
... })
>>> f = compute_flags(rows, "2024-06-30")  # q's spell lies before the window: no row
>>> f.drop(columns="as_of").to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
[{'person_id': 'p', 'n_registered': 1, 'multi_registered': False,
  'n_institutions_window': 2, 'multi_agency_window': True, 'n_spells_window': 3,
  'max_spells_one_institution_window': 2, 'n_transitions_window': 2,
  'n_reentries_window': 1, 'revolving_door': True}]
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from . import _time
from ._checks import whole_number
from .config import MAX_MONTHS
from .errors import ConfigError
from .spells import Timeline, _check_gap, as_of_day, build_timeline, refuse_as_of_after_data

__all__ = ["FLAG_COLUMNS", "compute_flags", "reentry_mask", "transition_mask"]

logger = logging.getLogger("iizrisk")

_PACKED_BITS = 63  # sort keys packed into one int64 when they fit (tests lower it)

#: Columns of :func:`compute_flags` and of ``iizrisk flags``, in order.
FLAG_COLUMNS: tuple[str, ...] = (
    "person_id",
    "as_of",
    "n_registered",
    "multi_registered",
    "n_institutions_window",
    "multi_agency_window",
    "n_spells_window",
    "max_spells_one_institution_window",
    "n_transitions_window",
    "n_reentries_window",
    "revolving_door",
)


def _run_starts(*keys: np.ndarray) -> np.ndarray:
    """Boolean mask: row starts a new run of equal ``keys`` (arrays sorted by them)."""
    n = len(keys[0])
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = False
        for k in keys:
            new[1:] |= k[1:] != k[:-1]
    return new


def _check_sorted(person: np.ndarray, inst: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
    """Refuse arrays that are not a merged timeline (sorted, disjoint within a group)."""
    if len(person) < 2:
        return
    same_p = person[1:] == person[:-1]
    same_g = same_p & (inst[1:] == inst[:-1])
    ok = bool((person[1:] >= person[:-1]).all()) and not bool((same_g & (start[1:] <= end[:-1])).any())
    if not ok:
        raise ValueError("the timeline is not merged and sorted by person, institution and start; "
                         "build it with iizrisk.spells.build_timeline")


def _transitions(person: np.ndarray, inst: np.ndarray, start: np.ndarray, end: np.ndarray,
                 gap: int) -> np.ndarray:
    """Transition mask of merged spells sorted by (person, institution, start).

    A spell s at institution B is a transition when some spell a of the same
    person at another institution has ``a.start < s.start <= a.end + gap``.
    With ``x = s.start`` the number of such spells is

        #{a: a.start < x} - #{a: a.end < x - gap}        (all institutions)
      - (#{a at B: a.start < x} - #{a at B: a.end < x - gap})

    because ``a.end < x - gap`` implies ``a.start < x`` (``gap >= 0``). Each
    term is a count in a sorted array: found with sorted binary searches.
    """
    n = len(start)
    if n == 0:
        return np.zeros(0, dtype=bool)
    p = np.asarray(person, dtype=np.int64)
    s = np.asarray(start, dtype=np.int64)
    smax = int(s.max())
    # an end at or after the latest start compares like an open end: clip to keep keys small
    e = np.minimum(np.asarray(end, dtype=np.int64), smax)
    base = int(s.min()) - gap
    span = smax - base + 1
    if (int(p.max()) + 2) * span >= 1 << 62:  # pragma: no cover - absurd date range
        raise ValueError("date range too wide for the transition keys")
    s_rel = s - base
    q_rel = s_rel - gap  # x - gap, relative
    e_rel = e - base

    # ---- all institutions, in (person, start) order
    person_start = _run_starts(p)
    idx = np.arange(n, dtype=np.int64)
    run_first = np.maximum.accumulate(np.where(person_start, idx, 0))
    within = idx - run_first  # position inside the person's run (same run in every order)
    bw = max(int(within.max()).bit_length(), 1)
    sk = p * span + s_rel
    if int(sk.max()).bit_length() + bw <= _PACKED_BITS:
        packed = np.sort((sk << bw) | within)
        order = run_first + (packed & ((1 << bw) - 1))  # sorted position -> timeline index
        sk_sorted = packed >> bw
    else:  # keys too wide to pack
        order = np.argsort(sk, kind="stable")
        sk_sorted = sk[order]
    new_block = _run_starts(sk_sorted)
    block_first = np.maximum.accumulate(np.where(new_block, idx, 0))
    ek = np.sort(p * span + e_rel)
    # per person both arrays hold the same number of entries, so the offsets of the
    # earlier persons cancel: count = block_first - searchsorted(ends)
    q_sorted = sk_sorted - gap
    n_all = np.empty(n, dtype=np.int64)
    n_all[order] = block_first - np.searchsorted(ek, q_sorted, side="left")

    # ---- the spell's own institution, in timeline order (starts and ends increase)
    group_rank = np.cumsum(_run_starts(p, np.asarray(inst))) - 1
    gek = group_rank * span + e_rel
    n_own = idx - np.searchsorted(gek, group_rank * span + q_rel, side="left")
    return (n_all - n_own) > 0


def transition_mask(tl: Timeline, *, gap_days: int = 90) -> np.ndarray:
    """Per merged spell of ``tl``: is it a transition?

    A spell at institution B is a transition when it starts while a spell of
    the same person at another institution A, started strictly earlier, is
    open, or at most ``gap_days`` days after such a spell ended (docs/domain.md
    section 5). Spells starting on the same day are not transitions of each
    other. On a point-in-time timeline the answer for every spell is decided
    at its as-of date.

    Parameters
    ----------
    tl : Timeline
        Merged spells (:func:`iizrisk.spells.build_timeline`).
    gap_days : int, default 90
        Days after the end of a spell at A within which a start at B still
        counts as a transition (0: only while A is open).

    Returns
    -------
    numpy.ndarray of bool
        One value per spell of ``tl``, in its order.

    Examples
    --------
    >>> import pandas as pd
    >>> from iizrisk.spells import build_timeline
    >>> rows = pd.DataFrame({
    ...     "person_id": ["p"] * 4, "institution": ["ALV", "SH", "IV", "BB"],
    ...     "start_date": pd.to_datetime(["2024-01-01", "2024-06-29", "2024-10-01", "2024-01-01"]),
    ...     "end_date": pd.to_datetime(["2024-03-31", "2024-07-31", None, "2024-01-31"]),
    ... })
    >>> tl = build_timeline(rows)
    >>> dict(zip(tl.to_frame()["institution"], transition_mask(tl).tolist()))
    {'ALV': False, 'IV': True, 'SH': True, 'BB': False}
    >>> dict(zip(tl.to_frame()["institution"], transition_mask(tl, gap_days=0).tolist()))
    {'ALV': False, 'IV': False, 'SH': False, 'BB': False}
    """
    gap = _check_gap(gap_days, "gap_days")
    _check_sorted(tl.person, tl.inst, tl.start, tl.end)
    return _transitions(tl.person, tl.inst, tl.start, tl.end, gap)


def reentry_mask(tl: Timeline) -> np.ndarray:
    """Per merged spell of ``tl``: is it a re-entry?

    A re-entry starts after an earlier merged spell of the same person at the
    same institution (docs/domain.md section 5): every spell but the first of its
    person and institution.

    Parameters
    ----------
    tl : Timeline
        Merged spells (:func:`iizrisk.spells.build_timeline`).

    Returns
    -------
    numpy.ndarray of bool
        One value per spell of ``tl``, in its order.

    Examples
    --------
    >>> import pandas as pd
    >>> from iizrisk.spells import build_timeline
    >>> rows = pd.DataFrame({
    ...     "person_id": ["p"] * 3, "institution": ["ALV", "ALV", "SH"],
    ...     "start_date": pd.to_datetime(["2024-01-01", "2024-05-01", "2024-02-01"]),
    ...     "end_date": pd.to_datetime(["2024-01-31", None, None]),
    ... })
    >>> reentry_mask(build_timeline(rows)).tolist()
    [False, True, False]
    """
    return ~tl.group_first()


def compute_flags(spells_or_timeline, as_of, *, window_months: int = 24, transition_gap_days: int = 90,
                  merge_gap_days: int = 0, data_end=None) -> pd.DataFrame:
    """Flags of every person at as-of date T, vectorised over all persons.

    Parameters
    ----------
    spells_or_timeline : DataFrame or Timeline
        Canonical spell rows (the point-in-time view at T is built here), or a
        :class:`~iizrisk.spells.Timeline` built with ``as_of=T`` (daily or
        monthly mode).
    as_of : date-like
        The as-of date T.
    window_months : int, default 24
        Length of the window ending at T in calendar months.
    transition_gap_days : int, default 90
        See :func:`transition_mask`.
    merge_gap_days : int, default 0
        Merge gap used to build the timeline from rows; a Timeline keeps the
        gap it was built with (a different non-zero value raises).
    data_end : date-like, optional
        The last observed day of the rows (the day the export was taken).
        Default: their latest recorded date; rows without recorded dates are
        not checked. An ``as_of`` more than 14 days after it is refused.

    Returns
    -------
    DataFrame
        One row per person with at least one spell overlapping the window,
        columns :data:`FLAG_COLUMNS`: ``person_id`` (str), ``as_of``
        (``datetime64[s]``), counts as int64, flags as bool. Rows in the
        timeline's person order.

    Raises
    ------
    ValidationError
        The rows cannot be built into a timeline (see
        :func:`~iizrisk.spells.build_timeline`), or ``as_of`` lies more than
        14 days after ``data_end`` (:func:`~iizrisk.spells.refuse_as_of_after_data`).
    ConfigError
        (also a ValueError) ``as_of`` is not a date, an option is out of range,
        or a Timeline of another as-of date (or the full data) is given: it
        would use what was not known at T.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({
    ...     "person_id": ["a", "a", "b"], "institution": ["ALV", "IV", "SH"],
    ...     "start_date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
    ...     "end_date": pd.to_datetime([None, "2024-12-31", "2024-03-31"]),
    ... })
    >>> f = compute_flags(rows, "2024-06-30", window_months=12)
    >>> f[["person_id", "n_registered", "multi_registered", "n_transitions_window"]]
      person_id  n_registered  multi_registered  n_transitions_window
    0         a             2              True                     1
    1         b             0             False                     0
    """
    t = as_of_day(as_of)
    whole_number(window_months, "window_months", 1, MAX_MONTHS, unit="months", example="24")
    gap = _check_gap(transition_gap_days, "transition_gap_days")
    merge_gap = _check_gap(merge_gap_days, "merge_gap_days")
    if isinstance(spells_or_timeline, Timeline):
        tl = spells_or_timeline
        if tl.as_of != t:
            when = "the full data" if tl.as_of is None else f"as of {_time.to_date(tl.as_of)}"
            raise ConfigError(
                f"the timeline holds {when}, not the point-in-time view at {_time.to_date(t)}: "
                "build it with build_timeline(spells, as_of=...) for the same date")
        if merge_gap and merge_gap != tl.merge_gap_days:
            raise ConfigError(f"merge_gap_days={merge_gap} but the timeline was built with "
                             f"merge_gap_days={tl.merge_gap_days}")
    elif isinstance(spells_or_timeline, pd.DataFrame):
        tl = build_timeline(spells_or_timeline, as_of=t, merge_gap_days=merge_gap)  # checks the rows first
        refuse_as_of_after_data(spells_or_timeline, t, data_end=data_end)
    else:
        raise TypeError("compute_flags takes a DataFrame of canonical spells or a Timeline, got "
                        f"{type(spells_or_timeline).__name__}")
    return _flags(tl, t, int(window_months), gap)


def _flags(tl: Timeline, t: int, window_months: int, gap: int, *,
           transition: np.ndarray | None = None) -> pd.DataFrame:
    """The flags table; ``transition`` is :func:`transition_mask` over every spell when the caller has it
    (a :class:`~iizrisk.view.View` caches it), else it is computed for the spells that can matter."""
    w0 = int(_time.window_start(t, window_months))
    start = tl.start.astype(np.int64)
    end = tl.end.astype(np.int64)  # OPEN_END is later than every day
    n_p = tl.n_persons
    person = tl.person

    registered = (start <= t) & (end >= t)
    in_window = (start <= t) & (end >= w0)
    starts_in = (start >= w0) & (start <= t)

    if transition is None:
        # transitions: only spells ending at most `gap` days before the window can matter
        transition = np.zeros(len(tl), dtype=bool)
        rel = np.flatnonzero((start <= t) & (end >= w0 - gap))
        if len(rel):
            _check_sorted(person[rel], tl.inst[rel], tl.start[rel], tl.end[rel])
            transition[rel] = _transitions(person[rel], tl.inst[rel], start[rel], end[rel], gap)
    transition = transition & starts_in
    first = tl.group_first()
    reentry = ~first & starts_in

    def per_person(mask: np.ndarray) -> np.ndarray:
        return np.bincount(person[mask], minlength=n_p).astype(np.int64)

    n_spells = per_person(in_window)
    group = np.cumsum(first) - 1
    group_person = person[first]
    per_group = np.bincount(group[in_window], minlength=len(group_person))
    n_inst = np.bincount(group_person[per_group > 0], minlength=n_p).astype(np.int64)
    max_one = np.zeros(n_p, dtype=np.int64)
    if len(group_person):
        bounds = np.flatnonzero(_run_starts(group_person))
        max_one[group_person[bounds]] = np.maximum.reduceat(per_group, bounds)

    rows = np.flatnonzero(n_spells > 0)
    n_reg = per_person(registered)[rows]
    n_inst_w, max_one_w = n_inst[rows], max_one[rows]
    out = pd.DataFrame({
        "person_id": pd.Series(tl.person_ids.take(rows), dtype="str"),
        "as_of": pd.Series(np.full(len(rows), np.datetime64(_time.to_date(t), "s"))),
        "n_registered": n_reg,
        "multi_registered": n_reg >= 2,
        "n_institutions_window": n_inst_w,
        "multi_agency_window": n_inst_w >= 2,
        "n_spells_window": n_spells[rows],
        "max_spells_one_institution_window": max_one_w,
        "n_transitions_window": per_person(transition)[rows],
        "n_reentries_window": per_person(reentry)[rows],
        "revolving_door": (n_inst_w >= 2) & (max_one_w >= 2),
    })
    logger.debug("flags at %s: %d persons, %d in a revolving door", _time.to_date(t), len(out),
                 int(out["revolving_door"].sum()))
    return out
