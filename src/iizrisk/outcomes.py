"""Outcomes: what a risk model predicts, computed from the full (future) data.

docs/domain.md section 5 defines two outcomes at as-of date T with horizon H
(default 12 months); both look at the days T+1 ... T+H only, where T+H is T
plus H calendar months (:func:`iizrisk._time.add_months`):

``revolving_door``
    within T+1 ... T+H the person starts at least one new spell that is a
    *transition* or a *re-entry* (:func:`iizrisk.flags.transition_mask`,
    :func:`iizrisk.flags.reentry_mask`), **and** the 24 months ending at T+H
    meet the BFS revolving-door definition
    (:func:`iizrisk.flags.compute_flags` at T+H on the data known at T+H).
``disintegration`` (long-term dependency)
    within T+1 ... T+H an ALV spell ends with ``benefit_exhausted``, or an IV
    pension starts, or a social-assistance spell reaches 12 months' duration.
    *An IV pension starts* on the end day of an IV spell whose exit reason is
    ``pension`` (the IV case closes into a pension), or, when the rows carry
    the IV extension column ``iv_measure``, on the start day of an IV row with
    ``iv_measure == "pension"``. *An SH spell reaches 12 months' duration* on
    day ``add_months(start, 12) - 1`` (a spell starting 2023-01-01 reaches it
    on 2023-12-31), provided the spell lasts until that day.

Outcomes need the data after T; features never see it (they are built from
the point-in-time view). A label whose horizon is not fully observed (T+H
after the data's last observed day) is missing (``pd.NA``) and never used for
training.

Own outcomes
------------
A deployment or researcher registers a callable with the signature
``func(timeline, person_codes, as_of_days, horizon_months, **options) -> bool array``
where ``timeline`` is the full :class:`~iizrisk.spells.Timeline` (no as-of),
``person_codes`` index into ``timeline.person_ids`` and ``as_of_days`` holds
one day number per pair::

    @register_outcome("long_sh", description="an SH spell reaches 24 months")
    def long_sh(tl, person_codes, as_of_days, horizon_months, **options):
        ...

Examples
--------
>>> import pandas as pd
>>> rows = pd.DataFrame({
...     "person_id": ["a", "a", "b"],
...     "institution": ["ALV", "SH", "ALV"],
...     "start_date": pd.to_datetime(["2022-01-01", "2023-03-01", "2022-06-01"]),
...     "end_date": pd.to_datetime(["2023-02-28", None, "2023-01-31"]),
...     "exit_reason": ["benefit_exhausted", None, "employment"],
... })
>>> out = compute_outcome(rows, "2022-12-31", outcome="disintegration",
...                       horizon_months=12, observed_until="2024-06-30")
>>> out[["person_id", "outcome"]].values.tolist()
[['a', True], ['b', False]]
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import _time
from ._checks import whole_number
from ._time import OPEN_END
from .config import MAX_MONTHS
from .errors import ConfigError, ValidationError, withhold_long_numbers
from .spells import EXIT_REASONS, Timeline, as_of_day, build_timeline, observed_until

__all__ = [
    "Outcome",
    "register_outcome",
    "get_outcome",
    "outcome_names",
    "compute_outcome",
    "observed_until",
    "revolving_door_outcome",
    "disintegration_outcome",
    "pension_starts",
    "timeline_view",
]

logger = logging.getLogger("iizrisk")

OutcomeFunction = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Outcome:
    """A registered outcome: its name, the function computing it and a description."""

    name: str
    func: OutcomeFunction
    description: str = ""


_REGISTRY: dict[str, Outcome] = {}


def register_outcome(name: str, func: OutcomeFunction | None = None, *, description: str = "",
                     overwrite: bool = False):
    """Register an outcome function under ``name`` (usable as a decorator).

    Parameters
    ----------
    name : str
        Name used by :func:`compute_outcome`, :func:`iizrisk.model.train` and the
        command line.
    func : callable, optional
        ``func(timeline, person_codes, as_of_days, horizon_months, **options)``
        returning one bool per (person, as-of) pair. It receives the *full*
        timeline and must look only at days T+1 ... T+H.
    description : str
        One sentence for model cards and ``--help``.
    overwrite : bool, default False
        Replace an existing registration (built-ins included) instead of raising.

    Examples
    --------
    >>> def never(tl, person_codes, as_of_days, horizon_months, **options):
    ...     return np.zeros(len(person_codes), dtype=bool)
    >>> _ = register_outcome("never_doc", never, description="always false")
    >>> "never_doc" in outcome_names()
    True
    """

    def _register(f: OutcomeFunction) -> OutcomeFunction:
        if name in _REGISTRY and not overwrite:
            raise ConfigError(f"outcome {name!r} is already registered; pass overwrite=True to replace it")
        _REGISTRY[name] = Outcome(name, f, description or (f.__doc__ or "").strip().split("\n")[0])
        return f

    return _register if func is None else _register(func)


def get_outcome(name: str) -> Outcome:
    """The registered outcome called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(withhold_long_numbers(
            f"unknown outcome {name!r}; registered: {', '.join(outcome_names())}")) from None


def outcome_names() -> list[str]:
    """Names of every registered outcome."""
    return list(_REGISTRY)


# --------------------------------------------------------------------------- views
def timeline_view(tl: Timeline, day: int) -> Timeline:
    """The spells of a full timeline as known on the evening of ``day``.

    Spells starting after ``day`` are dropped; ends after ``day`` become open
    (and lose their exit reason). Outcomes take the data as finally known (the
    truth, not what was known when). Built with ``merge_gap_days=0``, this
    equals rebuilding the timeline at ``day`` from rows without
    ``recorded_date``, unless a row starting the next day continues a spell
    ending on ``day``; that spell, and with a merge gap any spell bridged
    across ``day`` by a row that starts after it, stays open here, where the
    rebuild would close it at its last row's end (it was one spell, as
    finally known).
    """
    day = int(day)
    keep = tl.start <= day
    end = tl.end[keep]
    after = end > day
    return dataclasses.replace(
        tl,
        person=tl.person[keep],
        inst=tl.inst[keep],
        start=tl.start[keep],
        end=np.where(after, OPEN_END, end).astype(np.int32),
        exit_reason=np.where(after, -1, tl.exit_reason[keep]).astype(np.int8),
        case_id=tl.case_id[keep],
        as_of=day,
        merge_report=None,
    )


def _reason_code(name: str) -> int:
    return EXIT_REASONS.index(name) if name in EXIT_REASONS else -99


# --------------------------------------------------------------------------- built-ins
# the revolving-door flags of one as-of date are computed on the labelled people's rows alone when they
# are fewer than this share of the timeline's people (copying their rows costs less than flagging everyone)
_SUBSET_SHARE = 0.25


def revolving_door_outcome(tl: Timeline, person_codes, as_of_days, horizon_months: int, *,
                           transition_gap_days: int = 90, window_months: int = 24,
                           **options) -> np.ndarray:
    """Revolving door within the horizon (docs/domain.md section 5).

    True when within T+1 ... T+H the person starts a new spell that is a
    transition or a re-entry, and the ``window_months`` (24) months ending at
    T+H meet the BFS revolving-door definition.
    """
    from .flags import compute_flags, reentry_mask, transition_mask

    person_codes = np.asarray(person_codes, dtype=np.int64)
    as_of_days = np.asarray(as_of_days, dtype=np.int64)
    out = np.zeros(len(person_codes), dtype=bool)
    if not len(person_codes):
        return out
    h_ends = _time.add_months(as_of_days, int(horizon_months)).astype(np.int64)
    # a new spell (transition or re-entry) of the person within T+1 ... T+H, for every pair at once
    new_kind = np.asarray(transition_mask(tl, gap_days=transition_gap_days), dtype=bool) | \
        np.asarray(reentry_mask(tl), dtype=bool)
    any_new = _any_event(tl.person[new_kind], tl.start[new_kind], person_codes, as_of_days, h_ends)
    # the BFS definition over the window ending at T+H: the flags of the people labelled at each T only
    # (a person's flags come from the person's own spells; thousands of study days label a few each)
    order = np.argsort(as_of_days, kind="stable")
    _, at = np.unique(as_of_days[order], return_index=True)
    for rows in np.split(order, at[1:]):
        pc = person_codes[rows]
        if len(pc) < _SUBSET_SHARE * tl.n_persons:
            who, local = np.unique(pc, return_inverse=True)
            sub = tl.of_persons(who)
        else:
            sub, local = tl, pc
        h_end = int(h_ends[rows[0]])
        view = timeline_view(sub, h_end)
        flags = compute_flags(view, h_end, window_months=window_months,
                              transition_gap_days=transition_gap_days)
        rd = np.zeros(sub.n_persons, dtype=bool)
        # the flags hold one row per person with a spell overlapping the window, in person-code order
        # (compute_flags' contract): the codes without looking up millions of pseudonyms
        w0 = int(_time.window_start(h_end, window_months))
        codes = np.flatnonzero(np.bincount(view.person[view.end.astype(np.int64) >= w0],
                                           minlength=sub.n_persons) > 0)
        if len(codes) != len(flags):  # pragma: no cover - a change in compute_flags' contract
            codes = sub.person_ids.get_indexer(pd.Index(flags["person_id"]))
        ok = codes >= 0
        rd[codes[ok]] = np.asarray(flags["revolving_door"], dtype=bool)[ok]
        out[rows] = any_new[rows] & rd[local]
    return out


def _any_event(ev_person: np.ndarray, ev_day: np.ndarray, person_codes: np.ndarray, after: np.ndarray,
               until: np.ndarray) -> np.ndarray:
    """Whether each pair's person has an event on a day in ``after + 1 ... until`` (vectorised).

    One sort of the events by (person, day) and two binary searches per pair.
    """
    first = np.asarray(after, dtype=np.int64) + 1
    last = np.asarray(until, dtype=np.int64)
    if not len(ev_person) or not len(first):
        return np.zeros(len(person_codes), dtype=bool)
    # days outside every query's range only need to stay outside it: clip them next to it, so that
    # (person, day) packs into one int64 without overflow (open ends and missing days included)
    lo, hi = int(first.min()) - 1, int(last.max()) + 1
    span = hi - lo + 1
    day = np.clip(np.asarray(ev_day, dtype=np.int64), lo, hi) - lo
    key = np.sort(np.asarray(ev_person, dtype=np.int64) * span + day)
    base = np.asarray(person_codes, dtype=np.int64) * span
    return np.searchsorted(key, base + (last - lo), side="right") > np.searchsorted(key, base + (first - lo))


def disintegration_outcome(tl: Timeline, person_codes, as_of_days, horizon_months: int, *,
                           pension_starts: tuple[np.ndarray, np.ndarray] | None = None,
                           sh_months: int = 12, **options) -> np.ndarray:
    """Long-term dependency within the horizon (docs/domain.md section 5).

    True when within T+1 ... T+H an ALV spell ends with ``benefit_exhausted``,
    an IV pension starts, or an SH spell reaches ``sh_months`` (12) months'
    duration. ``pension_starts`` optionally gives extra IV pension start events
    as ``(person_codes, days)`` (from the ``iv_measure`` column).
    """
    person_codes = np.asarray(person_codes, dtype=np.int64)
    as_of_days = np.asarray(as_of_days, dtype=np.int64)
    alv, iv, sh = tl.inst_code("ALV"), tl.inst_code("IV"), tl.inst_code("SH")
    end = tl.end.astype(np.int64)
    exhausted = (tl.inst == alv) & (tl.exit_reason == _reason_code("benefit_exhausted"))
    pension = (tl.inst == iv) & (tl.exit_reason == _reason_code("pension"))
    is_sh = tl.inst == sh
    d_long = _time.add_months(tl.start, sh_months).astype(np.int64) - 1
    reaches = is_sh & (end >= d_long)
    # one event day per spell (or -inf when the spell has no event)
    far = np.iinfo(np.int64).min
    ev_end = np.where(exhausted | pension, end, far)
    ev_sh = np.where(reaches, d_long, far)
    ev_person = np.concatenate([tl.person, tl.person]).astype(np.int64)
    ev_day = np.concatenate([ev_end, ev_sh])
    if pension_starts is not None:
        ev_person = np.concatenate([ev_person, np.asarray(pension_starts[0], dtype=np.int64)])
        ev_day = np.concatenate([ev_day, np.asarray(pension_starts[1], dtype=np.int64)])
    has = ev_day != far
    h_ends = _time.add_months(as_of_days, int(horizon_months)).astype(np.int64)
    return _any_event(ev_person[has], ev_day[has], person_codes, as_of_days, h_ends)


register_outcome(
    "revolving_door", revolving_door_outcome,
    description="within the horizon a new spell (transition or re-entry) and the 24 months "
    "ending at its end meet the BFS revolving-door definition",
)
register_outcome(
    "disintegration", disintegration_outcome,
    description="within the horizon ALV benefits are exhausted, an IV pension starts or an "
    "SH spell reaches 12 months",
)


# --------------------------------------------------------------------------- public entry
def pension_starts(spells: pd.DataFrame, tl: Timeline) -> tuple[np.ndarray, np.ndarray] | None:
    """The IV pension starts of the ``iv_measure`` column as ``(person codes of tl, days)``, or None.

    The extra events :func:`disintegration_outcome` takes as ``pension_starts``; persons ``tl`` does
    not hold are left out.
    """
    if "iv_measure" not in spells.columns:
        return None
    rows = (spells["institution"].astype(str) == "IV").to_numpy() & \
        (spells["iv_measure"].astype(object) == "pension").to_numpy()
    if not rows.any():
        return None
    codes = tl.codes_of(spells.loc[rows, "person_id"])
    days = _time.to_days(spells.loc[rows, "start_date"])
    ok = codes >= 0
    return codes[ok], days[ok]


def _check_horizon(horizon_months) -> None:
    """A horizon is a whole number of months from 1 to :data:`~iizrisk.config.MAX_MONTHS` (as the settings'
    ``[model] horizon_months``); anything else is a ConfigError."""
    whole_number(horizon_months, "horizon_months", 1, MAX_MONTHS, unit="months",
                 example="12 (as [model] horizon_months)")


def compute_outcome(spells: pd.DataFrame | Timeline, as_of=None, *, outcome: str = "revolving_door",
                    horizon_months: int = 12, pairs: pd.DataFrame | pd.MultiIndex | None = None,
                    observed_until: int | str | None = None, merge_gap_days: int = 0,
                    **options) -> pd.DataFrame:
    """Outcome labels for (person, as-of) pairs, from the full data.

    Parameters
    ----------
    spells : DataFrame or Timeline
        Canonical rows of the *whole* export (the future included), or a full
        timeline built from them without ``as_of``. A point-in-time timeline
        (built with ``as_of``) gives the labels as known on that evening, and
        only for horizons that end by then: ``observed_until`` may not be later
        than its ``as_of`` (the nightly monitoring judges past runs this way).
    as_of : date-like or sequence of date-likes, optional
        As-of dates; with no ``pairs``, every person with a spell open on each
        date is labelled.
    outcome : str, default "revolving_door"
        A registered outcome (:func:`outcome_names`).
    horizon_months : int, default 12
        Months after T the outcome looks at: a whole number from 1 to
        :data:`~iizrisk.config.MAX_MONTHS` (else :class:`~iizrisk.errors.ConfigError`).
    pairs : DataFrame or MultiIndex, optional
        Explicit (``person_id``, ``as_of``) pairs, e.g. the index of a feature
        frame from :class:`iizrisk.features.PointInTimeFeatures`.
    observed_until : date-like, optional
        Last observed day of the data (export date); default
        :func:`observed_until` of ``spells``. Labels whose horizon ends later are
        ``pd.NA`` with ``observed`` False.
    merge_gap_days : int, default 0
        Merge gap used to build the timeline from rows.
    **options
        Passed to the outcome function (e.g. ``transition_gap_days``).

    Returns
    -------
    DataFrame
        ``person_id``, ``as_of`` (datetime64), ``outcome`` (nullable boolean),
        ``observed`` (bool), ``horizon_end`` (datetime64).
    """
    spec = get_outcome(outcome)
    _check_horizon(horizon_months)
    if isinstance(spells, Timeline):
        tl = spells
        if observed_until is None:
            raise ConfigError("pass observed_until when giving a Timeline (the export's last observed day)")
        if tl.as_of is not None and as_of_day(observed_until) > int(tl.as_of):
            raise ConfigError("outcomes need the full timeline (built without as_of), or a point-in-time view "
                             "whose as-of date is at least observed_until: after it, the view cannot tell")
    else:
        tl = build_timeline(spells, merge_gap_days=merge_gap_days)
        if observed_until is None:
            observed_until = globals()["observed_until"](spells)
        if outcome == "disintegration" and "pension_starts" not in options:
            options["pension_starts"] = pension_starts(spells, tl)
    last_day = as_of_day(observed_until)

    if pairs is not None:
        if isinstance(pairs, pd.MultiIndex):
            pairs = pairs.to_frame(index=False)
        pid = pd.Index(pairs["person_id"])
        days = _time.to_days(pd.Series(pairs["as_of"])) if not np.issubdtype(
            np.asarray(pairs["as_of"]).dtype, np.integer) else np.asarray(pairs["as_of"], dtype=np.int32)
        codes = tl.codes_of(pid)  # not a hash table of the timeline's millions of pseudonyms (3 s at 3.7M)
        if (codes < 0).any():
            raise ValidationError(f"{int((codes < 0).sum())} pair(s) name persons without any spell")
    else:
        if as_of is None:
            raise ConfigError("as_of is missing: pass as_of dates (e.g. '2024-06-30') or explicit pairs")
        dates = [as_of] if np.ndim(as_of) == 0 or isinstance(as_of, str) else list(as_of)
        codes_l, days_l = [], []
        for d in dates:
            t = as_of_day(d)
            opened = (tl.start <= t) & (tl.end > t)  # open at T: end after T or empty
            p = np.unique(tl.person[opened])
            codes_l.append(p)
            days_l.append(np.full(len(p), t, dtype=np.int32))
        codes = np.concatenate(codes_l).astype(np.int64) if codes_l else np.array([], np.int64)
        days = np.concatenate(days_l) if days_l else np.array([], np.int32)
        pid = tl.person_ids.take(codes)

    values = np.asarray(spec.func(tl, codes, days, horizon_months, **options), dtype=bool)
    if values.shape != (len(codes),):
        raise ValueError(f"outcome {outcome!r} returned shape {values.shape}, expected ({len(codes)},)")
    h_end = _time.add_months(days, horizon_months)
    observed = h_end <= last_day
    label = pd.array(values, dtype="boolean")
    label[~observed] = pd.NA
    logger.debug("outcome %s: %d pairs, %d observed, %d positive", outcome, len(codes),
                 int(observed.sum()), int(values[observed].sum()))
    return pd.DataFrame({
        "person_id": np.asarray(pid, dtype=object),
        "as_of": _time.from_days(days),
        "outcome": label,
        "observed": observed,
        "horizon_end": _time.from_days(h_end),
    })
