"""From spells to a study: risk-set sampling, point-in-time covariates, outcomes after the index date.

Design (sequential / risk-set matching)
---------------------------------------
* **Treated**: each person's *first* intervention of the studied type (default
  ``joint_assessment``); the index day ``d`` is its date.
* **Risk set on day d**: people registered on ``d`` (a merged spell with
  ``start <= d <= end``) who have had no intervention of that type on or
  before ``d``. They may be assessed later: a control is "not assessed *yet*"
  (the comparison is "assess now" against "not now", the contrast of a
  sequence of target trials; see the contamination diagnostic).
* **Index dates are exact days**, not months: grouping by month would either
  use information after an assessment (features at the month's end) or
  miss the registration that led to it (features at the month's start).
  Cost: one point-in-time feature computation per distinct assessment day
  (a loop over days, vectorised over people). On Dask (``client=``) the
  risk sets and control draws are still decided here, once; the features
  and outcomes are computed per person bucket, with the same result.
* **Controls are sampled**: on each index day, ``controls_per_treated`` people
  per treated are drawn at random (without replacement) from the risk set.
  A random sample of the risk set is still a valid comparison group, and it
  has the treated's calendar distribution by construction; the matching then
  picks the best among them (more controls per treated: better matches, more
  time).
* **Covariates**: :class:`iizrisk.features.PointInTimeFeatures` at ``d``, with
  interventions dated *before* ``d`` (the index assessment itself is not a
  covariate). By default (``covariate_view="event"``) the features see the
  *event-time* view at ``d``: every row starting on or before ``d``, ends after
  ``d`` open, exit reasons after ``d`` unknown -- nothing that happened after
  ``d``, but rows recorded later count (``recorded_date`` is ignored). What a
  confounder must be is *pre-treatment*; whether the data system had
  recorded it by ``d`` does not matter for the adjustment. The strict
  knowledge view (``covariate_view="recorded"``) also drops rows recorded
  after ``d``; note that a row's ``recorded_date`` is the day its latest
  version (usually its end) became known, so that view hides every spell
  that was open on ``d`` and closed later -- with delayed recording most of
  the people registered on ``d``.
* **Outcomes** after ``d`` from the full data (the truth as finally known),
  missing when the horizon ends after the data's last observed day:
  the registered outcomes of :mod:`iizrisk.outcomes` (revolving door,
  disintegration) over ``horizon_months`` (columns ``<name>_next_<H>m``);
  ``days_registered_next_12m`` and ``days_registered_next_24m`` (days in
  ``d+1 ... d+k months`` registered at any institution);
  ``new_spells_next_24m`` (new ALV, IV or SH spells starting in
  ``d+1 ... d+24 months``); and the time to a **sustained exit**: the first day
  after ``d`` from which the person is registered nowhere for ``exit_months``
  (6) months, as ``exit_days`` (days from ``d``) and ``exit_observed``. An exit
  can only be confirmed ``exit_months`` after it starts, so follow-up is
  censored at the last exit day that the data can confirm; an exit by death
  or relocation censors instead of counting.
"""

from __future__ import annotations

import logging
import os
import re
import time as _timer
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import _time
from .._arrays import matches
from .._checks import check_seed, is_real, whole_number
from .._results import CsvFormat, OutputFigure, OutputTable, ResultMixin
from .._time import OPEN_END
from ..config import MAX_MONTHS
from ..errors import ConfigError, ValidationError, withhold_long_numbers
from ..spells import EXIT_REASONS, Timeline, as_of_day, build_timeline

__all__ = ["DEFAULT_OUTCOMES", "AssessmentStudy", "days_since_episode_start", "risk_set_table",
           "study_outcome_columns"]

logger = logging.getLogger("iizrisk")

_CORE = ("ALV", "IV", "SH")
_CENSOR_REASONS = ("death", "relocation")
_DAYS_RE = re.compile(r"^days_registered_next_(\d+)m$")
_NEW_RE = re.compile(r"^new_spells_next_(\d+)m$")
_FEATURE_INPUT = ("person_id", "institution", "start_date", "end_date", "exit_reason", "recorded_date",
                  "birth_year", "education")
_PROTECTED_INPUT = ("sex", "nationality_group")

#: Feature options of a study by default (the feature defaults plus a 10-year history window).
STUDY_FEATURE_OPTIONS: dict = {"window_months": (6, 12, 24, 60, 120)}


def study_feature_options(feature_options=None) -> dict:
    """Keyword arguments of :class:`~iizrisk.features.PointInTimeFeatures` for a study (research use).

    The study's defaults (:data:`STUDY_FEATURE_OPTIONS`) or ``feature_options``,
    with ``population="all"`` and, unless given, ``max_lookback_months`` as long
    as the longest window: scoring features may not look back further than
    their maximum (60 months by default), but a study adjusts for the whole
    history its windows cover (10 years by default).

    Examples
    --------
    >>> study_feature_options()["window_months"]
    (6, 12, 24, 60, 120)
    """
    from ..features import PointInTimeFeatures

    fo = dict(STUDY_FEATURE_OPTIONS if feature_options is None else feature_options)
    fo["population"] = "all"
    # age confounds who is assessed and what follows: a study adjusts for it, although the risk
    # model leaves it out by default (a protected ground; benchmarks/fairness_age.py)
    fo.setdefault("include_age", True)
    if "max_lookback_months" not in fo and "max_lookback_months" in PointInTimeFeatures().get_params():
        wins = [int(w) for w in np.atleast_1d(fo.get("window_months", (6, 12, 24, 60)))]
        fo["max_lookback_months"] = max([*wins, int(fo.get("bfs_window_months", 24)), 12])
    return fo

#: Outcomes of :func:`risk_set_table` and the study by default.
DEFAULT_OUTCOMES: tuple[str, ...] = ("revolving_door", "disintegration", "days_registered_next_12m",
                                     "days_registered_next_24m", "new_spells_next_24m")


_OUTCOME_RE = re.compile(r"^([a-z_]+)_next_(\d+)m$")


def outcome_description(code: str, language: str) -> str | None:
    """A study outcome's column (``revolving_door_next_12m``) in words, or None for one the catalogue lacks.

    Examples
    --------
    >>> outcome_description("days_registered_next_24m", "de")
    'Tage angemeldet in den nächsten 24 Monaten'
    >>> outcome_description("my_outcome_next_12m", "de") is None
    True
    """
    from .._texts import load_locale

    m = _OUTCOME_RE.match(code)
    template = load_locale(language)["table"]["study_outcomes"].get(m.group(1)) if m else None
    return None if template is None or m is None else template.format(months=int(m.group(2)))


def study_outcome_columns(outcomes, horizon_months: int) -> dict[str, str]:
    """Column name of each requested outcome (registered outcomes get the horizon appended).

    Examples
    --------
    >>> study_outcome_columns(["revolving_door", "days_registered_next_24m"], 12)
    {'revolving_door': 'revolving_door_next_12m', 'days_registered_next_24m': 'days_registered_next_24m'}
    """
    from ..outcomes import outcome_names

    out = {}
    known = set(outcome_names())
    for name in [outcomes] if isinstance(outcomes, str) else outcomes:  # one name is one outcome, not its letters
        if not isinstance(name, str):
            raise ConfigError(f"study outcomes must be names (text), got {type(name).__name__}")
        m = _DAYS_RE.match(name) or _NEW_RE.match(name)
        if m:
            if not 1 <= int(m.group(1)) <= MAX_MONTHS:  # 0 months measures nothing; more overflows the dates
                raise ValueError(f"study outcome {name!r}: the months <k> run from 1 to {MAX_MONTHS}")
            out[name] = name
        elif name in known:
            out[name] = f"{name}_next_{int(horizon_months)}m"
        else:
            raise ValueError(f"unknown study outcome {name!r}: use a registered outcome "
                             f"({', '.join(sorted(known))}), days_registered_next_<k>m or new_spells_next_<k>m")
    return out


# ----------------------------------------------------------------------------- helpers
def _no_first_intervention(kind: str, rows: int, matched: int, firsts: np.ndarray, last_day: int, period) -> str:
    """Why no person has a first intervention of ``kind`` to study: no row matches a person with spells, or
    every first one lies outside the period or after the data (the days found and the days allowed)."""
    if not matched:
        return (f"interventions: none of the {rows:,} {kind!r} row(s) belongs to a person with spells (or has a "
                "date): the interventions and the spells use different pseudonyms, or come from different "
                "exports; take both from the same deployment")
    found = (f"no person has a first {kind!r} inside the period and the data: the first of each person falls "
             f"from {_time.to_date(int(firsts.min()))} to {_time.to_date(int(firsts.max()))}")
    end = _time.to_date(int(last_day))
    if period is None or int(firsts.min()) > last_day:
        return (f"{found}, after the last day the spells observe ({end}): the interventions are newer than the "
                "spells; take the spells of a later export")
    return (f"{found}, outside the period {period[0]} to {period[1]} (the spells observe until {end}); give a "
            "period (--from/--to, period=) that holds them")


def _person_blocks(tl: Timeline):
    """Registration blocks per person: the union of all spells (any institution), disjoint and sorted.

    Returns arrays ``person``, ``start``, ``end`` (OPEN_END when open) and
    ``censor`` (True when a spell ending on the block's last day ended by death
    or relocation: the person left the population, the exit is not an event).
    """
    n = len(tl)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z, np.zeros(0, dtype=bool)
    order = np.lexsort((tl.start, tl.person))
    p = tl.person[order].astype(np.int64)
    s = tl.start[order].astype(np.int64)
    e = tl.end[order].astype(np.int64)
    codes = [EXIT_REASONS.index(x) for x in _CENSOR_REASONS if x in EXIT_REASONS]
    gone = np.isin(tl.exit_reason[order], codes)
    run = pd.Series(e).groupby(p).cummax().to_numpy()
    new = np.ones(n, dtype=bool)
    new[1:] = (p[1:] != p[:-1]) | (s[1:] > run[:-1] + 1)
    first = np.flatnonzero(new)
    last = np.r_[first[1:], n] - 1
    b_end = run[last]
    block_of = np.cumsum(new) - 1
    holds = e == b_end[block_of]
    return p[first], s[first], b_end, np.logical_or.reduceat(holds & gone, first)


def _days_registered(blocks, person, day, months: int, last_day: int) -> np.ndarray:
    """Days registered anywhere in ``day+1 ... add_months(day, months)``; NaN when not observed."""
    bp, bs, be, _ = blocks
    h = _time.add_months(day, months).astype(np.int64)
    pi, bi = matches(person, bp)
    lo = np.maximum(bs[bi], day[pi] + 1)
    hi = np.minimum(be[bi], h[pi])
    days = np.bincount(pi, weights=np.maximum(0, hi - lo + 1), minlength=len(person))
    return np.where(h <= last_day, days, np.nan)


def _new_spells(tl: Timeline, person, day, months: int, last_day: int) -> np.ndarray:
    """New ALV, IV or SH spells starting in ``day+1 ... add_months(day, months)``; NaN when not observed."""
    codes = [tl.inst_code(c) for c in _CORE]
    core = np.isin(tl.inst, [c for c in codes if c >= 0])
    order = np.flatnonzero(core)
    order = order[np.argsort(tl.person[order], kind="stable")]
    sp, ss = tl.person[order].astype(np.int64), tl.start[order].astype(np.int64)
    h = _time.add_months(day, months).astype(np.int64)
    pi, si = matches(person, sp)
    hit = (ss[si] > day[pi]) & (ss[si] <= h[pi])
    n = np.bincount(pi[hit], minlength=len(person)).astype(np.float64)
    return np.where(h <= last_day, n, np.nan)


def _episode_start_days(tl: Timeline, person, day) -> np.ndarray:
    """Days since the current ALV, IV or SH *episode* started, on ``day`` (NaN without such a spell).

    The episode starts at the latest start of an ALV, IV or SH spell on or
    before ``day``, or the day after the latest end of one before ``day`` (a
    change of situation while another registration goes on: ALV exhausted
    while social assistance continues). Only starts and ends on or before
    ``day`` are used (the event view at ``day``).
    """
    codes = [c for c in (tl.inst_code(x) for x in _CORE) if c >= 0]
    core = np.isin(tl.inst, codes)
    p = tl.person[core].astype(np.int64)
    s = tl.start[core].astype(np.int64)
    e = tl.end[core].astype(np.int64)
    closed = e != int(OPEN_END)
    ev_p = np.r_[p, p[closed]]
    ev_d = np.r_[s, e[closed] + 1]
    person = np.asarray(person, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    out = np.full(len(person), np.nan)
    if not len(ev_p) or not len(person):
        return out
    base = int(min(ev_d.min(), day.min())) - 1
    span = np.int64(1) << np.int64(32)
    key = np.sort(ev_p * span + (ev_d - base))
    pos = np.searchsorted(key, person * span + (day - base), side="right") - 1
    hit = key[np.maximum(pos, 0)]
    ok = (pos >= 0) & (hit // span == person)
    return np.where(ok, day - (hit % span + base), np.nan)


def days_since_episode_start(spells: pd.DataFrame, person_id, day, *, merge_gap_days: int = 0) -> np.ndarray:
    """Days since the current ALV, IV or SH episode started, per (person, day) (NaN without one).

    The column ``days_since_episode_start`` of :func:`risk_set_table`, for any
    pairs (e.g. people to score). The episode starts at the latest start of an
    ALV, IV or SH spell on or before the day, or the day after the latest end
    of one before it.

    Examples
    --------
    >>> rows = pd.DataFrame({"person_id": ["a", "a"], "institution": ["SH", "ALV"],
    ...                      "start_date": pd.to_datetime(["2023-01-01", "2023-02-01"]),
    ...                      "end_date": pd.to_datetime([None, "2023-03-31"])})
    >>> days_since_episode_start(rows, ["a", "a"], ["2023-03-01", "2023-04-10"]).tolist()
    [28.0, 9.0]
    """
    tl = build_timeline(spells, merge_gap_days=merge_gap_days)
    code = tl.person_ids.get_indexer(pd.Index(pd.Series(np.asarray(person_id)).astype(str).astype(object)))
    d = _time.to_days(pd.Series(np.asarray(day))).astype(np.int64)
    out = _episode_start_days(tl, np.maximum(code, 0), d)
    return np.where(code >= 0, out, np.nan)


def _last_confirmable_exit_end(last_day: int, months: int) -> int:
    """Largest last-registered day ``e`` whose ``add_months(e, months)`` still lies within the data."""
    e = int(_time.add_months(last_day, -months))
    while int(_time.add_months(e + 1, months)) <= last_day:
        e += 1
    return e


def _sustained_exit(blocks, person, day, months: int, last_day: int):
    """Days from ``day`` to the first sustained exit (event) or to censoring, and the event flag."""
    bp, bs, be, gone = blocks
    n_b = len(bp)
    e_max = _last_confirmable_exit_end(last_day, months)
    # a block ends in a sustained exit when it is closed and the next block (if any) starts after the gap
    closed = be != int(OPEN_END)
    gap_end = np.where(closed, _time.add_months(np.where(closed, be, 0), months), np.iinfo(np.int64).max)
    nxt_same = np.zeros(n_b, dtype=bool)
    nxt_start = np.full(n_b, np.iinfo(np.int64).max)
    if n_b > 1:
        nxt_same[:-1] = bp[1:] == bp[:-1]
        nxt_start[:-1] = np.where(nxt_same[:-1], bs[1:], np.iinfo(np.int64).max)
    sustained = closed & (nxt_start > gap_end)
    # first block of the person ending on or after the index day (blocks: by person, ends increasing)
    off = np.int64(1) << np.int64(32)
    base = int(min(bs.min() if n_b else 0, day.min() if len(day) else 0)) - 1
    key = bp * off + np.minimum(be - base, off - 1)
    q = np.searchsorted(key, person.astype(np.int64) * off + (day - base), side="left")
    ok = (q < n_b) & (bp[np.minimum(q, max(n_b - 1, 0))] == person) if n_b else np.zeros(len(day), bool)
    # the first sustained block at or after it (same person)
    sus_pos = np.flatnonzero(sustained)
    if len(sus_pos):
        j = np.searchsorted(sus_pos, q, side="left")
        b = sus_pos[np.minimum(j, len(sus_pos) - 1)]
        has = ok & (j < len(sus_pos)) & (bp[b] == person)
    else:
        b = np.zeros(len(day), dtype=np.int64)
        has = np.zeros(len(day), dtype=bool)
    exit_end = np.where(has, be[b], np.iinfo(np.int64).max)
    confirmed = has & (exit_end <= e_max)
    by_reason = confirmed & gone[b]
    event = confirmed & ~by_reason
    dur = np.where(confirmed, exit_end + 1 - day, e_max + 1 - day)
    return np.maximum(dur, 0).astype(np.float64), event


# ----------------------------------------------------------------------------- the table
def risk_set_table(spells: pd.DataFrame, interventions: pd.DataFrame, *,
                   intervention_type: str = "joint_assessment", controls_per_treated: int | None = 50,
                   outcomes=DEFAULT_OUTCOMES, horizon_months: int = 12, exit_months: int = 6,
                   period=None, observed_until=None, merge_gap_days: int = 0, covariate_view: str = "event",
                   feature_options=None, episode_days=None, random_state=None, client=None,
                   buckets: int | None = None) -> pd.DataFrame:
    """One row per (person, index day): the assessed on their day and sampled controls at risk that day.

    See the module docstring (:mod:`iizrisk.evaluation`, section *From spells
    to a study*) for the design.

    Parameters
    ----------
    spells : DataFrame
        Canonical spells of the whole export (the future included: outcomes need it).
    interventions : DataFrame
        ``person_id``, ``date``, ``type``.
    intervention_type : str, default "joint_assessment"
    controls_per_treated : int or None, default 50
        Controls drawn per treated from each day's risk set; None: the whole risk set.
    outcomes : list of str
        Registered outcome names (over ``horizon_months``), ``days_registered_next_<k>m``,
        ``new_spells_next_<k>m``. The sustained-exit columns are always added.
    horizon_months : int, default 12
    exit_months : int, default 6
        Months without any registration that make an exit sustained.
    period : (date-like, date-like), optional
        Only index days in this range (both ends included).
    observed_until : date-like, optional
        Last observed day of the data; default :func:`iizrisk.outcomes.observed_until`.
    merge_gap_days : int, default 0
    covariate_view : {"event", "recorded"}, default "event"
        Features from every row dated on or before ``d`` (``"event"``), or only
        from rows recorded by ``d`` (``"recorded"``; see the module docstring).
    feature_options : dict, optional
        Keyword arguments of :class:`iizrisk.features.PointInTimeFeatures`
        (``population`` is always ``"all"``, then limited to people registered on
        ``d``). Default: the feature defaults plus a 120-month history window
        (``window_months=(6, 12, 24, 60, 120)``): long histories are the main
        measured trace of why people get assessed. ``include_protected=True``
        adds sex and nationality group as *confounders* (legitimate in a
        study: they are not used to score anyone); the warning the feature
        builder raises for model inputs is then logged instead.
    episode_days : (int, int), optional
        Eligibility at time zero: only people whose current ALV, IV or SH
        *episode* started ``lo`` to ``hi`` days before ``d`` (both included;
        ``days_since_episode_start``) are in the risk set, assessed and
        controls alike; assessed people outside it are left out (logged).
        Use it when assessments are only ever held in that part of an
        episode (e.g. ``(14, 90)``): people at other points of their
        registrations could not have been assessed that day, so comparing
        with them (or estimating what an assessment would do to them)
        extrapolates. ``days_since_episode_start`` then joins the covariates.
        None (default): everyone registered on ``d``.
    random_state : int, optional
        Seed of the control sampling.
    client : distributed.Client, optional
        Compute the covariates and outcomes on this Dask cluster
        (:mod:`iizrisk.distributed`), one person bucket per task. The risk sets
        and the control sampling are decided here, once, as without a client;
        each task gets its bucket's spells, interventions and sampled rows.
        The table is identical to the one built without a client.
    buckets : int, optional
        With ``client``: the person buckets (tasks); default one per worker
        thread. Each task computes features once per index day, so more
        buckets cost more per-day overhead.

    Returns
    -------
    DataFrame
        ``person_id``, ``index_date``, ``treated``, ``later_assessment_days``
        (days from the index day to the person's own first assessment; NaN
        when never), ``sampling_weight`` (1 for the assessed; for a control,
        the people of its day's risk set per control drawn from it, so that
        weighted rows stand for the whole risk set), ``days_since_episode_start`` (see ``episode_days``),
        one column per feature, one per outcome (float, NaN when
        not observed), ``exit_days`` and ``exit_observed``. ``attrs["covariates"]``
        lists the feature columns, ``attrs["outcomes"]`` the outcome columns.
    """
    from ..features import PointInTimeFeatures, ProtectedAttributeWarning, _intervention_days
    from ..outcomes import _check_horizon
    from ..outcomes import observed_until as _observed_until

    t0 = _timer.perf_counter()
    if client is not None:
        from ..distributed import require_dask

        require_dask()
        if buckets is not None and (isinstance(buckets, bool) or not isinstance(buckets, int | np.integer)
                                    or not 1 <= buckets <= 4096):
            raise ValueError(f"buckets must be a whole number from 1 to 4096, got {buckets!r}")
    for name, df, cols in (("spells", spells, ("person_id", "institution", "start_date")),
                           ("interventions", interventions, ("person_id", "date", "type"))):
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"{name} must be a DataFrame, got {type(df).__name__}")
        miss = [c for c in cols if c not in df.columns]
        if miss:
            raise ValidationError(f"{name}: required column(s) {miss} missing; found {list(df.columns)}")
    if covariate_view not in ("event", "recorded"):
        raise ValueError(f"covariate_view must be 'event' or 'recorded', got {covariate_view!r}")
    whole_number(controls_per_treated, "controls_per_treated", 1, none=True)
    _check_horizon(horizon_months)
    whole_number(exit_months, "exit_months", 1, MAX_MONTHS, unit="months")
    check_seed(random_state)
    if episode_days is not None:
        if isinstance(episode_days, str) or not hasattr(episode_days, "__len__") or len(episode_days) != 2 \
                or not all(is_real(v) and float(v).is_integer() for v in episode_days) \
                or not 0 <= int(episode_days[0]) <= int(episode_days[1]):
            raise ConfigError(f"episode_days must be (lo, hi) whole days with 0 <= lo <= hi, e.g. (14, 90); "
                              f"got {_time._shown(repr(episode_days))}")
        ep_lo, ep_hi = int(episode_days[0]), int(episode_days[1])
    out_cols = study_outcome_columns(outcomes, horizon_months)
    all_iv_day = _intervention_days(interventions["date"])  # dd.mm.yyyy text, numbers: refused naming the column
    rng = np.random.default_rng(random_state)
    last_day = as_of_day(observed_until) if observed_until is not None else _observed_until(spells)
    tl = build_timeline(spells, merge_gap_days=merge_gap_days)
    n_p = tl.n_persons

    # first intervention of the type per person (persons without spells cannot be studied)
    is_type = interventions["type"].astype(object).to_numpy() == intervention_type
    iv = interventions[is_type]
    if not len(iv):
        types = sorted(set(interventions["type"].dropna().astype(str)))
        raise ValidationError(withhold_long_numbers(
            f"interventions: no row of type {intervention_type!r} (the table holds "
            f"{', '.join(map(repr, types)) or 'no rows'}); choose intervention_type among them"))
    iv_day = all_iv_day[is_type]
    iv_code = tl.person_ids.get_indexer(pd.Index(iv["person_id"].astype(object)))
    okv = (iv_code >= 0) & (iv_day != _time.MISSING_DAY)
    if (~okv).any():
        logger.info("study: %d %s row(s) left out (no spells of the person, or no date)",
                    int((~okv).sum()), intervention_type)
    first = np.full(n_p, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, iv_code[okv], iv_day[okv].astype(np.int64))
    treated_p = np.flatnonzero(first < np.iinfo(np.int64).max)
    lo = -np.inf if period is None else as_of_day(period[0])
    hi = min(last_day, np.inf if period is None else as_of_day(period[1]))
    treated_p = treated_p[(first[treated_p] >= lo) & (first[treated_p] <= hi)]
    days = np.unique(first[treated_p])
    if not len(days):
        raise ValidationError(_no_first_intervention(intervention_type, len(iv), int(okv.sum()),
                                                     first[first < np.iinfo(np.int64).max], last_day, period))

    # feature input: only the columns features use, rows indexed by person code
    fo = study_feature_options(feature_options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ProtectedAttributeWarning)
        ft = PointInTimeFeatures(**fo).fit()
    if any(issubclass(w.category, ProtectedAttributeWarning) for w in caught):
        logger.info("study: sex and nationality group are covariates (confounders), not scoring inputs")
    keep_cols = [c for c in _FEATURE_INPUT + (_PROTECTED_INPUT if fo.get("include_protected") else ())
                 if c in spells.columns and not (c == "recorded_date" and covariate_view == "event")]
    clash = sorted(set(out_cols.values()) & set(ft.get_feature_names_out()))
    if clash:
        raise ValueError(f"outcome column(s) {clash} have the name of a feature; rename the outcome")
    spell_p, spell_s, spell_e = tl.person, tl.start, tl.end  # int32: half the bytes each day's scan reads
    registered = np.zeros(n_p, dtype=bool)

    # the design, decided here once: who is at risk on each index day, and which controls are drawn
    pair_code, pair_day, pair_w, pair_t = [], [], [], []
    n_outside = 0
    for d in days:
        d = int(d)
        tr = treated_p[first[treated_p] == d]
        registered[spell_p[(spell_s <= d) & (spell_e >= d)]] = True
        reg = np.flatnonzero(registered)  # sorted, as np.unique would give them, without a sort
        registered[reg] = False
        cand = reg[first[reg] > d]
        if episode_days is not None:
            ep_t = _episode_start_days(tl, tr, np.full(len(tr), d))
            n_outside += int((~((ep_t >= ep_lo) & (ep_t <= ep_hi))).sum())
            tr = tr[(ep_t >= ep_lo) & (ep_t <= ep_hi)]
            if not len(tr):
                continue
            ep_c = _episode_start_days(tl, cand, np.full(len(cand), d))
            cand = cand[(ep_c >= ep_lo) & (ep_c <= ep_hi)]
        n_cand = len(cand)
        if controls_per_treated is not None:
            k = min(len(cand), int(controls_per_treated) * len(tr))
            cand = rng.choice(cand, size=k, replace=False) if k < len(cand) else cand
        # the table's order: by day, the assessed first, then by person
        pair_code += [np.sort(tr), np.sort(cand)]
        pair_day += [np.full(len(tr) + len(cand), d, dtype=np.int64)]
        pair_w += [np.ones(len(tr)), np.full(len(cand), n_cand / max(len(cand), 1))]
        pair_t += [np.ones(len(tr), dtype=bool), np.zeros(len(cand), dtype=bool)]
    if n_outside:
        logger.warning("study: %d assessed person(s) outside episode_days=%s on their assessment day; left out",
                       n_outside, tuple(episode_days))
    if not pair_day:
        raise ValidationError(f"no person with a first {intervention_type!r} in the period was inside "
                              f"episode_days={tuple(episode_days)} on that day; widen the window")
    codes_all = np.concatenate(pair_code).astype(np.int64)
    days_all = np.concatenate(pair_day)
    design = pd.DataFrame({"person_id": np.asarray(tl.person_ids.take(codes_all), dtype=object),
                           "day": days_all})
    opts = {"ft": ft, "keep_cols": keep_cols, "out_cols": out_cols, "horizon_months": int(horizon_months),
            "exit_months": int(exit_months), "merge_gap_days": merge_gap_days, "last_day": int(last_day)}

    # the per-person work: covariates and outcomes of the sampled rows (on Dask: one person bucket per task)
    if client is None:
        per_row = _risk_set_rows(spells, interventions, design, opts, tl=tl)
    else:
        per_row = _risk_set_rows_on_dask(client, spells, interventions, design, opts, buckets)
    kept = per_row.index.to_numpy(dtype=np.int64)
    treated = np.concatenate(pair_t)[kept]
    if not treated.any():
        raise ValidationError(f"none of the {len(treated_p)} people with a first {intervention_type!r} in the "
                              "period was registered on that day; nothing to compare")
    n_not_registered = int(np.concatenate(pair_t).sum()) - int(treated.sum())
    if n_not_registered:
        logger.warning("study: %d assessed person(s) not registered on their assessment day in the "
                       "%s view; left out", n_not_registered, covariate_view)
    code, day = codes_all[kept], days_all[kept]
    later = np.where(first[code] < np.iinfo(np.int64).max, first[code] - day, np.nan).astype(np.float64)
    result = pd.DataFrame({
        "person_id": pd.Series(np.asarray(tl.person_ids.take(code), dtype=object), dtype="str"),
        "index_date": _time.from_days(day),
        "treated": treated,
        "later_assessment_days": later,
        "sampling_weight": np.concatenate(pair_w)[kept].astype(np.float64),
    })
    result = pd.concat([result, per_row.reset_index(drop=True)], axis=1)
    feature_cols = [str(c) for c in ft.get_feature_names_out()]
    result.attrs["covariates"] = feature_cols + (["days_since_episode_start"] if episode_days is not None else [])
    result.attrs["episode_days"] = None if episode_days is None else [ep_lo, ep_hi]
    result.attrs["outcomes"] = list(out_cols.values())
    result.attrs["observed_until"] = str(_time.to_date(last_day))
    logger.info("study table: %d assessed, %d control rows at %d index days in %.1f s",
                int(result["treated"].sum()), int((~result["treated"]).sum()), len(days),
                _timer.perf_counter() - t0)
    return result


def _risk_set_rows(spells: pd.DataFrame, interventions: pd.DataFrame, design: pd.DataFrame, opts: dict, *,
                   tl: Timeline | None = None) -> pd.DataFrame:
    """Covariates and outcomes of the design's (person, index day) rows, from these persons' data only.

    ``design`` holds ``person_id`` and ``day`` (day numbers, sorted), one row
    per sampled (person, day). Returns one row per design row registered on
    its day in the covariate view, indexed by the design row's position:
    ``days_since_episode_start``, the features (float), the outcomes,
    ``exit_days`` and ``exit_observed``. A person's values depend on that
    person's spells and interventions only: any subset of persons (a person
    bucket) gives the same rows for them.
    """
    from ..outcomes import compute_outcome, pension_starts

    ft = opts["ft"]
    if tl is None:
        tl = build_timeline(spells, merge_gap_days=opts["merge_gap_days"])
    last_day = opts["last_day"]
    code = tl.person_ids.get_indexer(pd.Index(design["person_id"].astype(object)))
    if (code < 0).any():
        raise ValidationError(f"study: {int((code < 0).sum())} sampled row(s) name persons without spells here")
    day = design["day"].to_numpy(dtype=np.int64)
    fin = spells[opts["keep_cols"]]
    row_code = tl.person_ids.get_indexer(pd.Index(spells["person_id"].astype(object)))
    iv_code = tl.person_ids.get_indexer(pd.Index(interventions["person_id"].astype(object)))
    iv_day = _time.to_days(interventions["date"])
    feature_cols = [str(c) for c in ft.get_feature_names_out()]
    # each day's people and their rows: spells and interventions grouped by person code once, so that a
    # day costs its own people's rows, not a pass over everyone's
    sp_order = np.argsort(row_code, kind="stable")
    sp_code = row_code[sp_order]
    iv_order = np.argsort(iv_code, kind="stable")
    iv_sorted = iv_code[iv_order]

    def rows_of(sorted_code: np.ndarray, order: np.ndarray, persons: np.ndarray) -> np.ndarray:
        return np.sort(order[matches(persons, sorted_code)[1]])

    uniq, at, cnt = np.unique(day, return_index=True, return_counts=True)
    frames = []
    for d, a, c in zip(uniq.tolist(), at.tolist(), cnt.tolist(), strict=True):
        here = np.arange(a, a + c)
        rows = rows_of(sp_code, sp_order, code[here])
        ivr = rows_of(iv_sorted, iv_order, code[here])
        ivr = ivr[(iv_day[ivr] < d) & (iv_day[ivr] != _time.MISSING_DAY)]
        X = ft.transform(fin.take(rows), as_of=d, interventions=interventions.take(ivr))
        X = X[X["n_institutions_now"].to_numpy() >= 1]  # registered on d in the covariate view
        at_day = pd.Index(tl.person_ids.take(code[here])).get_indexer(
            pd.Index(X.index.get_level_values("person_id")))
        X = X.reset_index(drop=True)[feature_cols]
        X.insert(0, "_row", here[at_day])
        frames.append(X)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["_row", *feature_cols])
    table = table.sort_values("_row", kind="stable")
    kept = table["_row"].to_numpy(dtype=np.int64)
    k_code, k_day = code[kept], day[kept]
    out = pd.DataFrame({"days_since_episode_start": _episode_start_days(tl, k_code, k_day)}, index=kept)
    feats = table[feature_cols].astype(np.float64).set_axis(kept)
    blocks = _person_blocks(tl)
    outs = {}
    pairs = pd.DataFrame({"person_id": design["person_id"].to_numpy(dtype=object)[kept],
                          "as_of": k_day.astype(np.int32)})
    for name, col in opts["out_cols"].items():
        m = _DAYS_RE.match(name)
        n = _NEW_RE.match(name)
        if m:
            outs[col] = _days_registered(blocks, k_code, k_day, int(m.group(1)), last_day)
        elif n:
            outs[col] = _new_spells(tl, k_code, k_day, int(n.group(1)), last_day)
        else:
            extra: dict[str, Any] = {"pension_starts": pension_starts(spells, tl)} if name == "disintegration" else {}
            lab = compute_outcome(tl, pairs=pairs, outcome=name, horizon_months=opts["horizon_months"],
                                  observed_until=last_day, **extra)
            outs[col] = lab["outcome"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    dur, ev = _sustained_exit(blocks, k_code, k_day, opts["exit_months"], last_day)
    outs["exit_days"] = dur
    outs["exit_observed"] = ev
    return pd.concat([out, feats, pd.DataFrame(outs, index=kept)], axis=1)


def _risk_set_rows_task(spells: pd.DataFrame, interventions: pd.DataFrame, design: pd.DataFrame,
                        opts: dict) -> pd.DataFrame:
    """One person bucket of :func:`_risk_set_rows` as a Dask task; indexed by the whole design's rows."""
    rows = _risk_set_rows(spells, interventions, design[["person_id", "day"]].reset_index(drop=True), opts)
    return rows.set_axis(design["_row"].to_numpy(dtype=np.int64)[rows.index.to_numpy(dtype=np.int64)])


def _risk_set_rows_on_dask(client, spells: pd.DataFrame, interventions: pd.DataFrame, design: pd.DataFrame,
                           opts: dict, buckets: int | None) -> pd.DataFrame:
    """:func:`_risk_set_rows` per person bucket on a Dask cluster; the rows in the design's order."""
    from ..distributed import check_workers, run_tasks
    from ..snapshots import person_bucket

    n_workers = check_workers(client)
    if buckets is None:
        buckets = max(1, sum(client.nthreads().values()))

    def bucket_of(ids) -> np.ndarray:
        codes, uniques = pd.factorize(ids)
        return person_bucket(uniques, buckets)[codes] if len(codes) else np.zeros(0, dtype=np.int64)

    row_b, iv_b, des_b = (bucket_of(spells["person_id"]), bucket_of(interventions["person_id"]),
                          bucket_of(design["person_id"]))
    design = design.assign(_row=np.arange(len(design), dtype=np.int64))
    todo = [b for b in range(buckets) if (des_b == b).any()]
    args = ((spells.loc[row_b == b], interventions.loc[iv_b == b], design.loc[des_b == b], opts) for b in todo)
    parts = run_tasks(client, _risk_set_rows_task, args)
    logger.info("study table: %d person buckets built on Dask (%d workers at the start)", len(todo), n_workers)
    return pd.concat(parts).sort_index(kind="stable")


# ----------------------------------------------------------------------------- the study
_METHODS = {
    "matching": "PropensityScoreMatching",
    "ipw": "IPWEstimator",
    "stratification": "PropensityScoreStratification",
    "regression": "RegressionAdjustment",
    "naive": "DifferenceInMeans",
}


#: Decimals of the study's tables a person reads (in a language; without one every digit is kept): effects
#: and means to 0.0001, balance to 0.001, variance ratios to 0.01.
_ESTIMATE_DECIMALS: dict[str, int] = dict.fromkeys(
    ("estimate", "se", "lower_95", "upper_95", "p_value", "mean_treated", "mean_control", "naive", "naive_lower_95",
     "naive_upper_95"), 4)
_BALANCE_DECIMALS: dict[str, int] = {
    **dict.fromkeys(("mean_treated_before", "mean_control_before", "smd_before", "mean_treated_after",
                     "mean_control_after", "smd_after"), 3),
    **dict.fromkeys(("variance_ratio_before", "variance_ratio_after"), 2)}


class AssessmentStudy(ResultMixin):
    """Effect of an intervention (default: the first joint assessment) on outcomes after it, from spells.

    Builds the risk-set table (:func:`risk_set_table`), then for every outcome
    estimates the effect on the assessed (ATT) with ``method`` -- by default
    1:1 propensity-score matching *within the same index day* (risk-set
    matching) -- next to the naive comparison, and compares the time to a
    sustained exit of the assessed with their matched controls (Kaplan-Meier).

    Parameters
    ----------
    outcomes : list of str
        See :func:`risk_set_table` (default: revolving door and disintegration
        over the horizon, days registered in the next 12 and 24 months, new
        ALV/IV/SH spells in the next 24 months).
    horizon_months : int, default 12
        Horizon of the registered outcomes.
    method : {"matching", "ipw", "stratification", "regression", "naive"}, default "matching"
    controls_per_treated : int or None, default 50
        Controls sampled per treated from each day's risk set.
    caliper : float or None, default 0.2
        Matching caliper in standard deviations of the logit propensity score.
    match_within : {"day", "month", "quarter", None}, default "month"
        Pairs must share the index day, or its calendar month or quarter, or
        nothing (None). Every row is measured at its own index day, so a wider
        group never uses information after a row's day; it only lets a person
        assessed on the 3rd be compared with someone at risk on the 17th. The
        day's own risk set alone (``"day"``, strict risk-set matching) is often
        too small to find comparable controls for the most complex cases.
    bias_correction : bool, default False
        Regression bias correction of the matched pair differences
        (:class:`PropensityScoreMatching`).
    replace : bool, default False
        Matching with replacement.
    n_bootstrap : int, default 200
    alpha : float, default 0.05
    intervention_type : str, default "joint_assessment"
    exit_months : int, default 6
        Months without registration that make an exit sustained.
    followup_months : int, default 24
        Time at which the survival summary reads the curves.
    period, observed_until, merge_gap_days, covariate_view, feature_options
        Passed to :func:`risk_set_table`.
    covariates : list of str, or str, optional
        Feature columns to adjust for (default: every feature that varies);
        a single name is one column.
    random_state : int, optional
        Seed of the control sampling and of the bootstraps.

    Attributes
    ----------
    table_ : DataFrame
        The risk-set table (one row per person and index day).
    covariates_ : list of str
        Covariates used (missing-value indicators included, constant columns dropped).
    estimators_ : dict of str to fitted estimator
        Per outcome column, the adjusted estimate with its balance and diagnostics.
    naive_ : dict of str to DifferenceInMeans
        Per outcome column, the unadjusted comparison.
    pairs_ : DataFrame
        The matching of the whole table used for the survival curves
        (``treated`` and ``control`` row labels of ``table_``).
    survival_ : dict of str to KaplanMeier
        Time to a sustained exit (months) of the matched assessed and of their controls.
    survival_summary_ : DataFrame
    diagnostics_ : list of (level, message)

    Examples
    --------
    >>> from iizrisk.synth import generate
    >>> pop = generate(1500, "2018-01-01", "2021-12-31", seed=2)
    >>> study = AssessmentStudy(outcomes=["days_registered_next_12m"], controls_per_treated=10,
    ...                         n_bootstrap=50, random_state=0).fit(pop.spells, pop.interventions)
    >>> list(study.summary.index)
    ['days_registered_next_12m']
    """

    def __init__(self, *, outcomes=DEFAULT_OUTCOMES, horizon_months: int = 12, method="matching",
                 controls_per_treated: int | None = 50, caliper: float | None = 0.2,
                 match_within: str | None = "month", bias_correction: bool = False, replace: bool = False,
                 n_bootstrap: int = 200, alpha: float = 0.05, intervention_type: str = "joint_assessment",
                 exit_months: int = 6, followup_months: int = 24, period=None, observed_until=None,
                 merge_gap_days: int = 0, covariate_view: str = "event", feature_options=None,
                 covariates=None, random_state=None):
        self.outcomes = outcomes
        self.horizon_months = horizon_months
        self.method = method
        self.controls_per_treated = controls_per_treated
        self.caliper = caliper
        self.match_within = match_within
        self.bias_correction = bias_correction
        self.replace = replace
        self.n_bootstrap = n_bootstrap
        self.alpha = alpha
        self.intervention_type = intervention_type
        self.exit_months = exit_months
        self.followup_months = followup_months
        self.period = period
        self.observed_until = observed_until
        self.merge_gap_days = merge_gap_days
        self.covariate_view = covariate_view
        self.feature_options = feature_options
        self.covariates = covariates
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, spells: pd.DataFrame, interventions: pd.DataFrame, *, client=None) -> AssessmentStudy:
        """Build the risk-set table from spells and interventions, then estimate (see :meth:`fit_table`).

        Parameters
        ----------
        spells, interventions : DataFrame
        client : distributed.Client, optional
            Build the table's covariates and outcomes on this Dask cluster
            (:func:`risk_set_table`); the table and so the estimates are the same.

        Returns
        -------
        self
        """
        self._check_options()
        table = risk_set_table(
            spells, interventions, intervention_type=self.intervention_type,
            controls_per_treated=self.controls_per_treated, outcomes=self.outcomes,
            horizon_months=self.horizon_months, exit_months=self.exit_months, period=self.period,
            observed_until=self.observed_until, merge_gap_days=self.merge_gap_days,
            covariate_view=self.covariate_view, feature_options=self.feature_options,
            random_state=self.random_state, client=client)
        return self.fit_table(table)

    def _check_options(self) -> None:
        """Refuse bad options before any work (a bad caliper or method would otherwise surface only after the
        table is built, or not at all: a nan caliper matched without one)."""
        from ..outcomes import _check_horizon

        method = self.method
        if isinstance(method, str):
            if method not in _METHODS:
                raise ConfigError(f"method must be one of {sorted(_METHODS)}, got {_time._shown(repr(method))}")
        elif not callable(getattr(method, "fit", None)):
            raise ConfigError(f"method must be one of {sorted(_METHODS)} or an estimator with fit(), got "
                              f"{type(method).__name__}")
        if self.caliper is not None and not (is_real(self.caliper) and self.caliper >= 0):
            raise ConfigError(f"caliper must be a number >= 0 (standard deviations of the logit propensity score, "
                              f"e.g. 0.2) or None; got {_time._shown(repr(self.caliper))}")
        if not (is_real(self.followup_months) and self.followup_months > 0):
            raise ConfigError(f"followup_months must be a number of months above 0, e.g. 24; got "
                              f"{_time._shown(repr(self.followup_months))}")
        if not (is_real(self.alpha) and 0 < self.alpha < 1):
            raise ConfigError(f"alpha must be a number between 0 and 1, e.g. 0.05; got {_time._shown(repr(self.alpha))}")
        whole_number(self.n_bootstrap, "n_bootstrap", 0, example="500 (0: no intervals)")
        whole_number(self.controls_per_treated, "controls_per_treated", 1, none=True)
        whole_number(self.exit_months, "exit_months", 1, MAX_MONTHS, unit="months")
        _check_horizon(self.horizon_months)
        check_seed(self.random_state)
        if self.match_within not in ("day", "month", "quarter", None):
            raise ConfigError(f"match_within must be 'day', 'month', 'quarter' or None, got {self.match_within!r}")

    def _estimator(self, *, design: bool = False):
        from . import _estimators as E

        common = {"n_bootstrap": 0 if design else self.n_bootstrap, "alpha": self.alpha,
                  "random_state": self.random_state}
        method = "matching" if design else self.method
        if not isinstance(method, str):
            import copy

            return copy.deepcopy(method)
        if method not in _METHODS:
            raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}")
        klass = getattr(E, _METHODS[method])
        if method == "matching":
            exact = None if self.match_within is None else ["_match_group"]
            return klass(caliper=self.caliper, replace=self.replace, exact=exact,
                         bias_correction=self.bias_correction, **common)
        return klass(**common)

    def fit_table(self, table: pd.DataFrame) -> AssessmentStudy:
        """Estimate the effects on an existing risk-set table (from :func:`risk_set_table`).

        Returns
        -------
        self
        """
        from ._estimators import DifferenceInMeans, add_missing_indicators, column_list
        from ._propensity import reusing_fits
        from ._survival import KaplanMeier

        t0 = _timer.perf_counter()
        self._check_options()
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"table must be a DataFrame from risk_set_table, got {type(table).__name__}")
        covs = column_list(self.covariates) if self.covariates is not None else \
            list(table.attrs.get("covariates", []))
        outs = list(table.attrs.get("outcomes", study_outcome_columns(self.outcomes, self.horizon_months).values()))
        missing = [c for c in [*covs, *outs, "treated", "index_date", "exit_days", "exit_observed"]
                   if c not in table.columns]
        if missing:
            raise ValidationError(f"study table: column(s) {missing} missing; build it with risk_set_table")
        if self.match_within not in ("day", "month", "quarter", None):
            raise ValueError(f"match_within must be 'day', 'month', 'quarter' or None, got {self.match_within!r}")
        prepared, covs = add_missing_indicators(table, covs)
        freq = {"day": "D", "month": "M", "quarter": "Q"}.get(self.match_within or "day")
        prepared["_match_group"] = pd.to_datetime(prepared["index_date"]).dt.to_period(freq).astype(str)
        # covariates that vary, one column at a time (a copy of the whole matrix costs gigabytes on a national table)
        covs = [c for c in covs if np.ptp(prepared[c].to_numpy(dtype=np.float64)) > 0]
        self.table_, self.covariates_ = table, covs
        self.estimators_, self.naive_ = {}, {}
        self._mean_treated: dict[str, float] = {}
        self.diagnostics_: list[tuple[str, str]] = []
        # outcomes observed on the same rows share one propensity fit (minutes each on a national table)
        with reusing_fits():
            needed = ["treated", "_match_group", *covs]
            for col in outs:
                sub = prepared.loc[prepared[col].notna().to_numpy(), [*needed, col]]
                n1, n0 = int(sub["treated"].sum()), int((~sub["treated"]).sum())
                if n1 < 2 or n0 < 2:
                    self.diagnostics_.append(("warning", f"{col}: only {n1} assessed and {n0} controls with the "
                                              "outcome observed (horizon after the end of the data); not estimated"))
                    continue
                self.naive_[col] = DifferenceInMeans(n_bootstrap=self.n_bootstrap, alpha=self.alpha,
                                                     random_state=self.random_state).fit(sub, "treated", col)
                try:
                    est = self._estimator()
                    est._log_diagnostics = False  # collected below, printed by print_summary
                    est.fit(sub, "treated", col, covs)
                except ValidationError as exc:
                    self.diagnostics_.append(("warning", f"{col}: not estimated ({exc})"))
                    continue
                self.estimators_[col] = est
                rows = est.pairs_["treated"] if hasattr(est, "pairs_") else sub.index[sub["treated"].to_numpy(bool)]
                self._mean_treated[col] = float(sub.loc[rows, col].mean())
                del sub  # the last outcome's rows are not held through the survival curves
            self._fit_survival(prepared, covs, KaplanMeier)
        self._study_diagnostics()
        n_warn = sum(lv == "warning" for lv, _ in self.diagnostics_) + sum(
            lv == "warning" for est in self.estimators_.values() for lv, _ in est.diagnostics_)
        if n_warn:
            logger.warning("study: %d diagnostic warning(s) (balance, overlap, matching): print_summary() lists "
                           "them, and study.json under 'diagnostics'",
                           n_warn)
        logger.info("study: %d outcome(s) estimated in %.1f s", len(self.estimators_), _timer.perf_counter() - t0)
        return self

    def _fit_survival(self, prepared, covs, KaplanMeier) -> None:
        design = self._estimator(design=True)
        t = prepared["treated"].to_numpy(dtype=bool)
        X = prepared[covs].to_numpy(dtype=np.float64)
        groups = design._groups(prepared)
        e, _, pt, pc, n_un = design._match(t, X, groups)
        self.propensity_ = pd.Series(e, index=prepared.index, name="propensity")
        self.pairs_ = pd.DataFrame({"treated": prepared.index[pt], "control": prepared.index[pc]})
        self.n_unmatched_ = n_un
        dpm = 365.2425 / 12
        dur = prepared["exit_days"].to_numpy(dtype=np.float64) / dpm
        ev = prepared["exit_observed"].to_numpy(dtype=bool)
        self.survival_ = {}
        if len(pt):
            self.survival_["assessed"] = KaplanMeier(alpha=self.alpha).fit(dur[pt], ev[pt], label="assessed")
            self.survival_["matched controls"] = KaplanMeier(alpha=self.alpha).fit(
                dur[pc], ev[pc], label="matched controls")
        rows = []
        z = float(_norm_ppf(1 - self.alpha / 2))
        f = float(self.followup_months)
        for arm, km in self.survival_.items():
            s = float(km.survival_function_at_times([f]).iloc[0])
            lo, hi = km.confidence_interval_at_times([f]).iloc[0].tolist()
            et = km.event_table
            rows.append({"arm": arm, "n": int(et["removed"].sum()), "exits": int(et["observed"].sum()),
                         f"exit_by_{self.followup_months}m": 1 - s, "lower": 1 - hi, "upper": 1 - lo,
                         "median_months_to_exit": km.median_survival_time_})
        self.survival_summary_ = pd.DataFrame(rows).set_index("arm") if rows else pd.DataFrame()
        if len(rows) == 2:
            # difference of the cumulative incidences, Greenwood variances added (pairs treated as independent)
            var = []
            for km in self.survival_.values():
                s = float(km.survival_function_at_times([f]).iloc[0])
                et = km.event_table.loc[km.event_table.index <= f]
                with np.errstate(divide="ignore", invalid="ignore"):
                    g = np.where(et["at_risk"] > et["observed"],
                                 et["observed"] / (et["at_risk"] * (et["at_risk"] - et["observed"])), 0.0)
                var.append(s * s * float(np.nansum(g)))
            a, c = self.survival_summary_[f"exit_by_{self.followup_months}m"].tolist()
            se = float(np.sqrt(sum(var)))
            self.survival_difference_ = {"difference": a - c, "se": se, "lower": a - c - z * se,
                                         "upper": a - c + z * se}
        else:
            self.survival_difference_ = {}

    def _study_diagnostics(self) -> None:
        tab = self.table_
        t = tab["treated"].to_numpy(dtype=bool)
        n_days = tab.loc[t, "index_date"].nunique()
        self.diagnostics_.insert(0, ("info", f"design: {int(t.sum())} assessed at {n_days} index days, "
                                     f"{int((~t).sum())} control rows sampled from the risk sets "
                                     f"({tab.loc[~t, 'person_id'].nunique()} distinct people)"))
        if len(self.pairs_):
            later = tab.loc[self.pairs_["control"], "later_assessment_days"].to_numpy(dtype=np.float64)
            h_days = self.horizon_months * 365.2425 / 12
            share = float(np.mean(later <= h_days))
            level = "warning" if share > 0.1 else "info"
            self.diagnostics_.append((level, f"contamination: {share:.1%} of the matched controls were themselves "
                                      f"assessed within {self.horizon_months} months of their index day; the "
                                      "estimate compares 'assessed now' with 'not yet assessed' and is diluted "
                                      "towards zero when many controls are assessed soon after"))
        n_un = self.n_unmatched_
        if n_un:
            share = n_un / max(int(t.sum()), 1)
            self.diagnostics_.append(("warning" if share > 0.05 else "info",
                                      f"matching (survival design): {n_un} assessed ({share:.1%}) found no "
                                      "control within the caliper on their index day; more controls_per_treated "
                                      "give more candidates"))

    # ------------------------------------------------------------------ results
    def _check(self) -> None:
        if not hasattr(self, "estimators_"):
            raise AttributeError("AssessmentStudy is not fitted yet: call fit(spells, interventions)")

    @property
    def summary(self) -> pd.DataFrame:
        """One row per outcome: adjusted ATT with interval, group sizes and means, the naive difference."""
        self._check()
        lvl = f"{1 - self.alpha:.0%}"
        rows = {}
        for col, est in self.estimators_.items():
            lo, hi = est.confidence_interval_
            naive = self.naive_[col]
            nlo, nhi = naive.confidence_interval_
            if "n_pairs" in est.info_:
                n1, n0 = est.info_["n_pairs"], est.info_["n_controls_used"]
            else:
                n1, n0 = est.n_treated_, est.n_control_
            mean_t = self._mean_treated[col]
            rows[col] = {"estimate": est.estimate_, "se": est.standard_error_, f"lower {lvl}": lo,
                         f"upper {lvl}": hi, "p": est.p_value_, "n_treated": n1, "n_control": n0,
                         "mean_treated": mean_t, "mean_if_untreated": mean_t - est.estimate_,
                         "naive": naive.estimate_, f"naive lower {lvl}": nlo, f"naive upper {lvl}": nhi}
        columns = ["estimate", "se", f"lower {lvl}", f"upper {lvl}", "p", "n_treated", "n_control",
                   "mean_treated", "mean_if_untreated", "naive", f"naive lower {lvl}", f"naive upper {lvl}"]
        out = pd.DataFrame.from_dict(rows, orient="index", columns=columns) if rows else pd.DataFrame(
            {c: pd.Series(dtype=np.float64) for c in columns}, index=pd.Index([], dtype=object))
        out.index.name = "outcome"
        return out

    def summary_text(self, decimals: int = 3) -> str:
        """The text that :meth:`print_summary` prints."""
        from ._estimators import ASSUMPTIONS

        self._check()
        method = self.method if isinstance(self.method, str) else type(self.method).__name__
        first = next(iter(self.estimators_.values()), None)
        lines = [f"<iizrisk.evaluation.AssessmentStudy: effect of the first {self.intervention_type!r} "
                 "on the assessed (ATT)>",
                 f"  method = {first._describe() if first is not None else method}",
                 f"  covariates = {len(self.covariates_)} point-in-time features at the index day "
                 f"({self.covariate_view} view)",
                 f"  data observed until {self.table_.attrs.get('observed_until', '?')}", ""]
        if len(self.estimators_):
            lines.append(self.summary.to_string(float_format=lambda v: f"{v:.{decimals}f}"))
        if len(self.survival_summary_):
            lines += ["", f"Sustained exit (no registration for {self.exit_months} months), matched sample, "
                      "Kaplan-Meier:", self.survival_summary_.to_string(float_format=lambda v: f"{v:.{decimals}f}")]
            if self.survival_difference_:
                d = self.survival_difference_
                lines.append(f"  difference in exits by {self.followup_months} months: {d['difference']:.{decimals}f} "
                             f"[{d['lower']:.{decimals}f}, {d['upper']:.{decimals}f}]")
        lines += ["", "Diagnostics"]
        marks = {"ok": "  ok ", "info": "  -- ", "warning": "  !! "}
        lines += [f"{marks.get(lv, '     ')}{m}" for lv, m in self.diagnostics_]
        if first is not None:
            lines += [f"{marks.get(lv, '     ')}{m}" for lv, m in first.diagnostics_]
            lines.append(f"  -- (balance and overlap shown for {next(iter(self.estimators_))}; each outcome's "
                         "estimator holds its own in estimators_)")
        lines += ["", "Assumptions", "  " + ASSUMPTIONS,
                  "  In this design: the features at the index day must capture why coordinators chose "
                  "these people (severity that the registrations do not show is not adjusted for), and "
                  "everyone in a risk set could have been assessed that day."]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        if not hasattr(self, "estimators_"):
            return "<b>AssessmentStudy</b>: not fitted"
        return f"<pre>{html.escape(self.summary_text())}</pre>"

    def plot(self, ax=None, *, ci: bool = True):
        """Cumulative incidence of a sustained exit, assessed against matched controls, with bands.

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        self._check()
        if ax is None:
            _, ax = plt.subplots()
        for km in self.survival_.values():
            km.plot(ax=ax, ci=ci, cumulative=True)
        ax.set_xlabel("months since the index day")
        ax.set_ylabel(f"sustained exit ({self.exit_months} months unregistered)")
        ax.set_xlim(0, None)
        ax.legend(fontsize="small")
        return ax

    def plot_estimates(self, ax=None):
        """Forest plot: adjusted and naive estimates with intervals, one panel per outcome on its own scale.

        Each panel's axis says what the effect counts (days registered, new
        spells, percentage points of people with the outcome).

        Parameters
        ----------
        ax : matplotlib Axes or sequence of Axes, optional
            One axes per outcome (a single axes when there is one outcome);
            default a new figure with a panel per outcome.

        Returns
        -------
        ndarray of matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        from ._outputs import draw_estimates

        self._check()
        s = self.summary
        lvl = f"{1 - self.alpha:.0%}"
        s = s.rename(columns=lambda c: c.replace(f" {lvl}", f"_{lvl.rstrip('%')}").replace(" ", "_"))
        if ax is None:
            fig, axes = plt.subplots(max(len(s), 1), 1, figsize=(6.5, 1.1 + 1.2 * max(len(s), 1)), squeeze=False)
            axes = axes[:, 0]
        else:
            axes = np.atleast_1d(np.asarray(ax, dtype=object))
            if len(axes) != len(s):
                raise ValueError(f"plot_estimates: {len(s)} outcome(s) need as many axes, got {len(axes)}")
        draw_estimates(axes, s)
        if ax is None:
            fig.tight_layout()
        return axes

    def plot_balance(self, ax=None, *, outcome: str | None = None):
        """Love plot of the estimator of ``outcome`` (default: the first)."""
        self._check()
        est = self.estimators_[outcome or next(iter(self.estimators_))]
        return est.plot(ax=ax)


    # ------------------------------------------------------------------ files
    _private_files = True  # owner-only (0600), as iizrisk evaluate always wrote them

    def _fitted(self) -> bool:
        return hasattr(self, "estimators_")

    def to_dir(self, path, *, min_cell_size: int | None = None, plots: bool = True, parameters=None,
               language: str | None = None, xlsx: bool | None = None) -> list:
        """Write the suppressed tables, the plots and ``study.json`` into ``path``; return the files.

        Files: ``estimates.csv`` (one row per outcome), ``balance.csv`` (of the
        first outcome's estimator), ``survival.csv`` (monthly Kaplan-Meier per
        arm), ``survival.png``, ``balance.png``, ``estimates.png`` (with
        ``plots``; each only when it has something to show) and ``study.json``
        (parameters, diagnostics with small numbers written ``<k``,
        assumptions, the files). Cells of fewer than ``min_cell_size`` people
        (default 5) and what is derived from them are hidden (see
        :mod:`iizrisk.evaluation._outputs`).

        Parameters
        ----------
        parameters : dict, optional
            Recorded in ``study.json`` (the command line's options).
        language, xlsx : optional
            Headers in this language, and each table also as ``.xlsx``: as for
            :meth:`iizrisk._results.ResultMixin.to_dir`.
        """
        import json

        from .. import __version__
        from ..store import write_bytes_atomic
        from ._estimators import ASSUMPTIONS
        from ._outputs import mask_small_integers

        self._check()
        k = self._default_min_cell_size() if min_cell_size is None else int(min_cell_size)
        paths = self._write_dir(path, min_cell_size=k, plots=plots, language=language, xlsx=xlsx)
        params = {key: (str(v) if isinstance(v, os.PathLike) else v) for key, v in (parameters or {}).items()}
        diags = [{"level": lv, "message": mask_small_integers(m, k)} for lv, m in self.diagnostics_]
        if self.estimators_:
            first = next(iter(self.estimators_.values()))
            diags += [{"level": lv, "message": mask_small_integers(m, k)} for lv, m in first.diagnostics_]
        meta = {
            "iizrisk_version": __version__,
            "observed_until": self.table_.attrs.get("observed_until"),
            "method": next(iter(self.estimators_.values()))._describe() if self.estimators_ else None,
            "parameters": params,
            "min_cell_size": k,
            "diagnostics": diags,
            "assumptions": ASSUMPTIONS,
            "files": [p.name for p in paths] + ["study.json"],
        }
        target = Path(path) / "study.json"
        text = json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n"
        paths.append(write_bytes_atomic(text.encode("utf-8"), target, private=self._private_files))
        return paths

    def suppressed_estimates(self, k: int) -> pd.DataFrame:
        """:attr:`summary` with the rows resting on fewer than ``k`` people hidden (``suppressed`` column)."""
        from ._outputs import binary_cells, suppress_summary

        self._check()
        s = self.summary
        cells = []
        for col in s.index:
            est = self.estimators_[col]
            naive = self.naive_[col]
            values = self.table_.loc[est.treated_.index, col].to_numpy(dtype=np.float64)  # rows analysed
            t = naive.treated_.to_numpy()
            c = binary_cells(values, [t, ~t])
            if c is not None and hasattr(est, "pairs_"):
                yt = self.table_.loc[est.pairs_["treated"], col].to_numpy(dtype=np.float64)
                yc = self.table_.loc[est.pairs_["control"], col].to_numpy(dtype=np.float64)
                c += [yt.sum(), len(yt) - yt.sum(), yc.sum(), len(yc) - yc.sum()]
            cells.append(c)
        return suppress_summary(s, cells, k, self.alpha)

    def suppressed_balance(self, k: int) -> pd.DataFrame:
        """Balance of the first outcome's estimator; 0/1 covariates with small counts hidden."""
        from ._outputs import binary_cells, suppress_balance

        self._check()
        if not self.estimators_:
            return pd.DataFrame()
        est = next(iter(self.estimators_.values()))
        t = est.treated_.to_numpy()
        X = self.table_.loc[est.treated_.index]
        if hasattr(est, "pairs_"):
            groups = [t, ~t, est.treated_.index.isin(est.pairs_["treated"]),
                      est.treated_.index.isin(est.pairs_["control"])]
        else:
            groups = [t, ~t]
        cells: list = []
        for cov in est.balance_.index:
            if cov not in X.columns:  # missing-value indicator: its source column's gaps
                base = cov.removesuffix("_missing")
                v = X[base].isna().to_numpy(dtype=np.float64) if base in X.columns else None
            else:
                v = X[cov].to_numpy(dtype=np.float64)
            cells.append(True if v is None else binary_cells(np.nan_to_num(v, nan=0.0), groups))
        return suppress_balance(est.balance_, [g.sum() for g in groups], cells, k)

    def _covariate_description(self, code: str, language: str) -> str | None:
        """A covariate (a point-in-time feature of the study, or its indicator of a missing value) as the
        catalogue describes it, or None."""
        if getattr(self, "_descriptions", None) is None:
            from ..features import PointInTimeFeatures

            self._descriptions = {s.name: s for s in
                                  PointInTimeFeatures(**study_feature_options(self.feature_options)).fit().specs_}
        spec = self._descriptions.get(code)
        if spec is not None:
            return spec.description(language)
        spec = self._descriptions.get(code.removesuffix("_missing"))  # the study's indicator of a missing value
        return None if spec is None or not code.endswith("_missing") else spec.sentence(None, language)

    def suppressed_survival(self, k: int, months: int | None = None) -> pd.DataFrame:
        """Monthly Kaplan-Meier table per arm with small exit counts (and what reveals them) hidden."""
        from ._outputs import survival_table

        self._check()
        return survival_table(self.survival_, k, int(months or max(self.followup_months, 36)))

    def _output_tables(self, k: int) -> list[OutputTable]:
        columns = CsvFormat(float_format="%.6g")  # the outcome and covariate names as a first column, in both
        # people read outcomes and covariates by their descriptions; the Parquet files keep the codes
        names = {"outcome": outcome_description, "covariate": self._covariate_description}
        return [OutputTable("estimates", self.suppressed_estimates(k).reset_index(), csv=columns,
                            rounding=_ESTIMATE_DECIMALS, names=names),
                OutputTable("balance", self.suppressed_balance(k).reset_index(), csv=columns,
                            rounding=_BALANCE_DECIMALS, names=names),
                OutputTable("survival", self.suppressed_survival(k), csv=columns,
                            rounding=dict.fromkeys(("cumulative_exit", "lower", "upper"), 3))]

    def _output_figures(self, tables, language: str = "en") -> list[OutputFigure]:
        from ._outputs import (
            _w,
            method_words,
            plot_balance_table,
            plot_estimates_table,
            plot_survival_table,
        )

        est, bal, surv = (t.frame for t in tables)
        # the tables carry the outcome and the covariate as a first column: the plots name them by it
        est = est.set_index("outcome") if "outcome" in est.columns else est
        bal = bal.set_index("covariate") if "covariate" in bal.columns else bal
        figures = []
        if len(surv):
            fig = plot_survival_table(surv, ylabel=_w("survival_axis", language, months=self.exit_months),
                                      title=_w("survival_title", language), language=language)
            figures.append(OutputFigure("survival", fig, dpi=110))
        if len(bal):
            first = next(iter(self.estimators_.values()))
            fig = plot_balance_table(bal, method=method_words(first, language), after=first._has_after_balance,
                                     labels=lambda code: self._covariate_description(code, language) or code,
                                     language=language)
            figures.append(OutputFigure("balance", fig, dpi=110))
        if len(est) and (~est["suppressed"]).any():
            words = lambda code: outcome_description(code, language) or code  # noqa: E731
            figures.append(OutputFigure("estimates", plot_estimates_table(est, words, language), dpi=110))
        return figures


def _norm_ppf(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))
