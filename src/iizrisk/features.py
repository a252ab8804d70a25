"""Point-in-time features: what was known about a person on the evening of the as-of date.

Every feature at as-of date T is computed from
``build_timeline(spells, as_of=T)`` (docs/domain.md section 5): rows starting or
recorded after T are not there, ends after T are open, exit reasons of open
spells are unknown. Interventions count only when dated on or before T. So a
feature at T cannot see the future *by construction*; the tests also check it
by changing everything after T.

Features (about 55 with the defaults; :func:`feature_catalogue` lists them with
unit and a description in German, French, Italian and English):

* **current registrations** (spells covering day T, as in
  :func:`iizrisk.flags.compute_flags`): registered at each institution, number of
  institutions, duration of the current ALV, IV and SH registrations, days
  since the latest registration;
* **history** over windows of 6, 12, 24 and 60 months ending at T (docs/domain.md
  windows): spells started, distinct institutions, days registered at any
  institution, transitions and re-entries started in the window
  (:func:`iizrisk.flags.transition_mask`, :func:`iizrisk.flags.reentry_mask`);
  days at ALV, IV and SH over 24 months and their spells over 60 months;
* **BFS profile so far**: the highest number of spells at one institution, the
  BFS revolving-door flag and the four BFS pathway profiles over 24 months
  (:func:`iizrisk.flags.compute_flags`);
* **exit reasons**: exits with benefits exhausted (*Aussteuerung*), to
  employment, by transfer, other; days since the last exit;
* **the person**: age (as-of year minus birth year; only with ``include_age=True``:
  a protected ground, off by default), education (one column per level: categories are numbers,
  never native categoricals);
* **earlier interventions** (dated <= T): joint assessments, days since
  the last one, interventions over 12 months.

**Features expire** (docs/domain.md section 10: "ever-in" features never
forget). Nothing older than ``max_lookback_months`` (default 60) before T is
used: spells that ended before the look-back window are dropped before any
feature, transition or re-entry is computed; durations and days since a
start are counted from the window's first day at the earliest; exits and
joint assessments count within the window only.

**Day counts do not follow the calendar.** Every count of days stops at the
shortest window of its length (:func:`iizrisk._time.shortest_window_days`):
365 days for 12 months, 181 for 6, 730 for 24, 1826 for 60 (and one day less
for "days since"). Otherwise a person registered every day would count 366
in a window holding 29 February and 365 the day after it leaves, and a model
that splits at the cap would see every such person change overnight (measured:
a stable 20,000-person canton raised score-drift warnings on 123 of 180 nights
from 29 February 2020).

Each :class:`FeatureSpec` states its ``lookback_months`` (0 for the person's
attributes known at T: birth year and education), and
``tests/test_features.py`` walks the catalogue to check it.

Protected attributes (sex, nationality group) are features only with
``include_protected=True``, which warns (:class:`ProtectedAttributeWarning`).

Missing values (unknown birth year, no exit yet) are NaN; every other value is
a count, a number of days or a 0/1 flag. All columns are ``float32``.

Examples
--------
>>> import pandas as pd
>>> rows = pd.DataFrame({
...     "person_id": ["a", "a", "b"],
...     "institution": ["ALV", "SH", "IV"],
...     "start_date": pd.to_datetime(["2023-01-01", "2023-05-01", "2023-02-01"]),
...     "end_date": pd.to_datetime(["2023-04-30", None, None]),
...     "exit_reason": ["benefit_exhausted", None, None],
... })
>>> X = PointInTimeFeatures().fit_transform(rows, as_of="2023-06-30")
>>> X.shape[1] >= 30
True
>>> X.loc[("a", "2023-06-30"), ["open_sh", "n_exits_benefit_exhausted", "n_transitions_12m"]].tolist()
[1.0, 1.0, 1.0]
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from . import _texts, _time
from ._arrays import bincount as _bincount
from ._arrays import group_max as _group_max
from ._arrays import order_by_person_start as _order_by_person_start
from ._arrays import string_order
from ._arrays import union_days as _union_days
from ._checks import is_whole
from ._time import OPEN_END
from .config import MAX_MONTHS
from .errors import ConfigError, ValidationError
from .pseudonym import readable_columns
from .schema import dtype_kind
from .spells import DEFAULT_INSTITUTIONS, EXIT_REASONS, Timeline, as_of_day, build_timeline
from .view import Definitions, View

__all__ = [
    "FeatureSpec",
    "PointInTimeFeatures",
    "ProtectedAttributeWarning",
    "feature_specs",
    "feature_catalogue",
    "as_of_dates",
]

logger = logging.getLogger("iizrisk")

#: Institutions with their own duration and history columns.
DETAIL_INSTITUTIONS: tuple[str, ...] = ("ALV", "IV", "SH")
#: Exit reasons counted separately ("other" counts the rest, missing included).
COUNTED_EXITS: tuple[str, ...] = ("benefit_exhausted", "employment", "transfer")
EDUCATION_LEVELS: tuple[str, ...] = ("compulsory", "upper_secondary", "tertiary")
NATIONALITY_GROUPS: tuple[str, ...] = ("EU_EFTA", "THIRD")


class ProtectedAttributeWarning(UserWarning):
    """Protected attributes (sex, nationality group) were enabled as model inputs."""


#: families counted over the whole look-back (their texts say "in the last {window} months")
_LOOKBACK_FAMILIES = frozenset({"n_exits", "days_since_last_exit", "n_joint_assessments",
                                "days_since_joint_assessment"})


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its column name, family (for texts), unit, group and parameters."""

    name: str
    family: str
    unit: str
    group: str
    params: tuple[tuple[str, Any], ...] = ()
    #: how far back before T the feature looks, in months (0: an attribute of the person known at T)
    lookback_months: int = 0

    @property
    def param_dict(self) -> dict[str, Any]:
        """The parameters; a feature counted over its whole look-back (a spec pickled with a model fitted
        before its texts named the look-back) gets it as its ``window``."""
        out = dict(self.params)
        if self.family in _LOOKBACK_FAMILIES and "window" not in out and self.lookback_months:
            out["window"] = self.lookback_months
        return out

    def description(self, language: str = "en") -> str:
        """Description in ``language`` (de, fr, it, en)."""
        return _texts.describe(self.family, self.param_dict, language)

    def sentence(self, value, language: str = "de") -> str:
        """Reason sentence with the person's ``value`` in ``language``.

        Examples
        --------
        >>> FeatureSpec("n_transitions_24m", "n_transitions", "count", "history",
        ...             (("window", 24),)).sentence(3, "de")
        '3 Wechsel zwischen Institutionen in den letzten 24 Monaten'
        """
        return _texts.render(self.family, self.param_dict, value, language)


def feature_specs(*, window_months=(6, 12, 24, 60), bfs_window_months: int = 24,
                  include_protected: bool = False, include_age: bool = False,
                  max_lookback_months: int = 60) -> list[FeatureSpec]:
    """Every feature, in column order, for these parameters.

    Raises
    ------
    ValueError
        A window is longer than ``max_lookback_months``.

    Examples
    --------
    >>> [s.name for s in feature_specs()][:3]
    ['open_alv', 'open_iv', 'open_sh']
    """
    S = FeatureSpec
    bw = int(bfs_window_months)
    long_w = int(max(window_months))
    L = int(max_lookback_months)
    too_long = sorted({int(w) for w in (*window_months, bw, 12) if int(w) > L})
    if too_long:
        raise ValueError(f"windows of {too_long} months look back further than max_lookback_months={L}; "
                         "shorten them or raise the maximum")
    out = [S(f"open_{i.lower()}", "open", "flag", "current", (("institution", i),), L)
           for i in DEFAULT_INSTITUTIONS]
    out.append(S("n_institutions_now", "n_institutions_now", "count", "current", (), L))
    out += [S(f"current_days_{i.lower()}", "current_days", "days", "current", (("institution", i),), L)
            for i in DETAIL_INSTITUTIONS]
    out += [S("current_days_max", "current_days_max", "days", "current", (), L),
            S("days_since_last_start", "days_since_last_start", "days", "current", (), L)]
    for w in window_months:
        w = int(w)
        p = (("window", w),)
        # transitions and re-entries also look at the earlier spells they follow: up to the maximum
        out += [S(f"n_spells_{w}m", "n_spells", "count", "history", p, w),
                S(f"n_institutions_{w}m", "n_institutions", "count", "history", p, w),
                S(f"days_registered_{w}m", "days_registered", "days", "history", p, w),
                S(f"n_transitions_{w}m", "n_transitions", "count", "history", p, L),
                S(f"n_reentries_{w}m", "n_reentries", "count", "history", p, L)]
    out += [S(f"days_{i.lower()}_{bw}m", "days_inst", "days", "history", (("institution", i), ("window", bw)), bw)
            for i in DETAIL_INSTITUTIONS]
    out += [S(f"n_spells_{i.lower()}_{long_w}m", "n_spells_inst", "count", "history",
              (("institution", i), ("window", long_w)), long_w) for i in DETAIL_INSTITUTIONS]
    pb = (("window", bw),)
    out += [S(f"max_spells_one_institution_{bw}m", "max_spells_one_institution", "count", "profile", pb, bw),
            S(f"revolving_door_{bw}m", "revolving_door", "flag", "profile", pb, L),
            S(f"bfs_profile_{bw}m", "bfs_profile", "code", "profile", pb, bw)]
    # counted over the whole look-back: their texts say "in the last L months" (window = L)
    out += [S(f"n_exits_{r}", "n_exits", "count", "exits", (("reason", r), ("window", L)), L)
            for r in (*COUNTED_EXITS, "other")]
    out.append(S("days_since_last_exit", "days_since_last_exit", "days", "exits", (("window", L),), L))
    if include_age:
        out.append(S("age", "age", "years", "person"))
    out += [S(f"education_{lv}", "education", "flag", "person", (("level", lv),)) for lv in EDUCATION_LEVELS]
    out += [S("n_joint_assessments", "n_joint_assessments", "count", "interventions", (("window", L),), L),
            S("days_since_joint_assessment", "days_since_joint_assessment", "days", "interventions",
              (("window", L),), L),
            S("n_interventions_12m", "n_interventions", "count", "interventions", (("window", 12),), 12)]
    if include_protected:
        out.append(S("sex_female", "sex_female", "flag", "protected"))
        out += [S(f"nationality_{g.lower()}", "nationality", "flag", "protected", (("group", g),))
                for g in NATIONALITY_GROUPS]
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ValueError(f"window_months {tuple(window_months)} produce duplicate feature names")
    return out


def feature_catalogue(*, window_months=(6, 12, 24, 60), bfs_window_months: int = 24,
                      include_protected: bool = False, include_age: bool = False,
                      max_lookback_months: int = 60) -> pd.DataFrame:
    """The feature catalogue: name, group, unit, look-back, description and reason template in de/fr/it/en.

    The ``template_<lang>`` columns show the reason sentence with the value
    written as ``{value}``.

    Examples
    --------
    >>> cat = feature_catalogue()
    >>> cat.loc["n_transitions_24m", "description_de"]
    'Wechsel zwischen Institutionen, begonnen in den letzten 24 Monaten'
    >>> len(cat) >= 30
    True
    """
    rows = []
    for s in feature_specs(window_months=window_months, bfs_window_months=bfs_window_months,
                           include_protected=include_protected, include_age=include_age,
                           max_lookback_months=max_lookback_months):
        row: dict[str, Any] = {"name": s.name, "family": s.family, "group": s.group, "unit": s.unit,
                               "lookback_months": s.lookback_months}
        for lang in _texts.LANGUAGES:
            row[f"unit_{lang}"] = _texts.load_locale(lang)["units"][s.unit]
            row[f"description_{lang}"] = s.description(lang)
            fam = _texts.load_locale(lang)["families"][s.family]
            ctx = _texts._context(_texts.load_locale(lang), s.param_dict)
            if "template" in fam:
                row[f"template_{lang}"] = fam["template"].format(value="{value}", value_label="{value}", **ctx)
            else:
                row[f"template_{lang}"] = fam["true"].format(**ctx) + " / " + fam["false"].format(**ctx)
        rows.append(row)
    return pd.DataFrame(rows).set_index("name")


def as_of_dates(first, last, *, day_of_month: str = "end") -> list[pd.Timestamp]:
    """Monthly as-of dates (month ends) from ``first`` to ``last``, both included when month ends.

    Examples
    --------
    >>> [d.date().isoformat() for d in as_of_dates("2023-01-15", "2023-03-31")]
    ['2023-01-31', '2023-02-28', '2023-03-31']
    """
    if day_of_month != "end":
        raise ValueError("only month-end as-of dates are supported (day_of_month='end')")
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    return [d for d in pd.date_range(first, last, freq="ME") if d <= last]


def _window_months(value) -> tuple[int, ...]:
    """``window_months`` checked: one or more whole numbers of months from 1 to ``MAX_MONTHS``.

    A float (even ``12.0``), ``nan``, a bool or text is refused rather than cut to a whole number.

    Raises
    ------
    ConfigError
        Naming the value given and the rule.
    """
    values = list(np.atleast_1d(np.asarray(value, dtype=object))) if not isinstance(value, str) else [value]
    if not values or not all(is_whole(x) and 1 <= x <= MAX_MONTHS for x in values):
        raise ConfigError(f"window_months must be positive month counts: whole numbers of months from 1 to "
                          f"{MAX_MONTHS}, e.g. (6, 12, 24, 60); got {_time._shown(repr(value))}")
    return tuple(int(x) for x in values)


def _person_values(tl: Timeline, column: str) -> pd.Series | None:
    if column not in tl.persons.columns:
        return None
    return tl.persons[column]


_INTERVENTION_DATE_FIX = ("read the file with iizrisk.read_interventions, or convert the column with "
                          "pandas.to_datetime(interventions['date'], format='%Y-%m-%d')")


def _intervention_days(dates: pd.Series) -> np.ndarray:
    """Day numbers of the interventions' ``date`` column; numbers, true/false values and text that is not
    ``YYYY-MM-DD`` are refused naming the column (never read as day counts; the values are not shown)."""
    if isinstance(dates.dtype, pd.DatetimeTZDtype):  # its local day, as for the spells
        dates = dates.dt.tz_localize(None)
    kind = dtype_kind(dates.dtype)
    if kind in ("number", "boolean") and dates.notna().any():
        raise ValidationError(f"interventions: column 'date' holds "
                              f"{'numbers' if kind == 'number' else 'true/false values'}, not dates "
                              f"(dtype {dates.dtype}); {_INTERVENTION_DATE_FIX}")
    if kind != "date" and dates.notna().any():
        try:  # exactly YYYY-MM-DD, as for the spells
            dates = pd.to_datetime(dates, format="%Y-%m-%d")
        except (ValueError, TypeError, OverflowError):
            raise ValidationError(f"interventions: column 'date' holds values that are not dates (dtype "
                                  f"{dates.dtype}; dates as text must be YYYY-MM-DD); {_INTERVENTION_DATE_FIX}, "
                                  "which names the rows") from None
    elif kind != "date":
        return np.full(len(dates), _time.MISSING_DAY, dtype=np.int32)
    return _time.to_days(dates)


def _prepare_interventions(interventions: pd.DataFrame | None):
    if interventions is None:
        return None
    if not isinstance(interventions, pd.DataFrame):
        raise TypeError("interventions must be a pandas DataFrame (person_id, date, type, ...) or None, got "
                        f"{type(interventions).__name__}; read a file with iizrisk.read_interventions")
    if interventions.columns.nlevels > 1:
        raise ValidationError(f"interventions: the column names have {interventions.columns.nlevels} levels "
                              "(a MultiIndex); give one level: person_id, date, type, ...")
    missing = [c for c in ("person_id", "date", "type") if c not in interventions.columns]
    if missing:
        raise ValidationError(f"interventions: required column(s) {missing} missing; "
                              f"found {readable_columns(interventions.columns) or '(names withheld: not plain text)'}")
    day = _intervention_days(interventions["date"])
    ok = day != _time.MISSING_DAY
    joint = (interventions["type"].astype(object) == "joint_assessment").to_numpy()
    return pd.Index(interventions["person_id"].to_numpy()[ok]), day[ok], joint[ok]


# ------------------------------------------------------------------ the computation
class _Columns(dict):
    """Feature columns, each kept only for the population rows and as float32 when stored.

    Holding 56 float64 columns for every person of a national timeline would
    cost gigabytes; the rows outside the population are never returned.
    """

    def __init__(self, rows: np.ndarray):
        super().__init__()
        self.rows = rows

    def __setitem__(self, name: str, values) -> None:
        super().__setitem__(name, np.asarray(values, dtype=np.float32)[self.rows])


def _check_view(view, days: list[int], definitions) -> None:
    """Refuse a view that is not the one the features would build themselves."""
    if len(days) != 1:
        raise ValueError("view= serves one as-of date; pass the spells alone for several dates")
    if not view.is_at(days[0]) or view.definitions.merge_gap_days != definitions.merge_gap_days:
        raise ValueError(f"{view!r} is not the view at {_time.to_date(days[0])} with merge_gap_days="
                         f"{definitions.merge_gap_days}; build it with View.at(spells, as_of, definitions)")


def _expire(view: View, w_look: int, defs: Definitions) -> tuple[View, np.ndarray | None]:
    """The view without the spells that ended before the look-back window (the same view when none did),
    and the rows kept (None when all were)."""
    tl = view.timeline
    keep = tl.end.astype(np.int64) >= w_look
    if keep.all():
        return (view if view.definitions == defs else View(tl, defs)), None
    return View(tl.keep_rows(keep), defs), keep


def _expired_transitions(kept: np.ndarray, tl, w_look: int, gap: int) -> np.ndarray:
    """The transitions of the cut timeline ``tl`` from the full view's (``kept``: theirs on ``tl``'s rows).

    A forgotten spell ended before ``w_look``, so only a spell starting before ``w_look + gap`` can have
    been a transition from it: those are decided again among the spells that start before that day
    (every earlier spell of theirs is among them), the rest keep the full view's answer.
    """
    from .flags import _transitions

    rel = np.flatnonzero(tl.start.astype(np.int64) < int(w_look) + int(gap))
    if not len(rel):
        return kept
    out = kept.copy()
    out[rel] = _transitions(tl.person[rel], tl.inst[rel], tl.start[rel], tl.end[rel], int(gap))
    return out


def _features_at(spells: pd.DataFrame, t: int, *, specs: list[FeatureSpec], window_months,
                 bfs_window_months: int, merge_gap_days: int, transition_gap_days: int,
                 population: str, interventions, view: View | None = None,
                 max_lookback_months: int = 60) -> tuple[pd.Index, dict[str, np.ndarray]]:
    """Feature columns at day ``t`` for the population, from the point-in-time view only."""
    defs = Definitions(merge_gap_days, transition_gap_days, bfs_window_months)
    if view is None:
        view = View(build_timeline(spells, as_of=t, merge_gap_days=merge_gap_days), defs)
    # features expire: spells that ended before the look-back window are forgotten
    w_look = int(_time.window_start(t, int(max_lookback_months)))
    # day counts stop at the shortest window of their length (12 months: 365 days), so that a
    # leap day or a long month does not move the people registered all along (module docstring)
    look_cap = _time.shortest_window_days(int(max_lookback_months))
    full = view
    view, kept = _expire(view, w_look, defs)
    # the transitions and flags the full view has computed already (the nightly run's flags stage) serve
    # the cut view: its transitions are the full view's, decided again only where a forgotten spell could
    # have made one; of the flags the features read the institutions and spells per institution in the
    # BFS window, which count only spells overlapping that window, and the window lies inside the look-back
    # (feature_specs refuses a longer one): a forgotten spell ended before it
    reuse = kept is not None and full.definitions == defs and full.has_rules()
    tl = view.timeline
    n = tl.n_persons
    p = tl.person.astype(np.int64)
    s = tl.start.astype(np.int64)
    s_clip = np.maximum(s, w_look)  # a duration counts from the window's first day at the earliest
    is_open = tl.end == OPEN_END
    e = np.where(is_open, t, tl.end).astype(np.int64)  # last day registered so far
    if population == "open":
        pop = np.flatnonzero(_bincount(p[is_open], n) > 0)
    else:
        pop = np.flatnonzero(_bincount(p, n) > 0)
    cols = _Columns(pop)

    # current registrations: spells covering day T (an end on T still covers it)
    reg = tl.end.astype(np.int64) >= t
    for inst in DEFAULT_INSTITUTIONS:
        c = tl.inst_code(inst)
        cols[f"open_{inst.lower()}"] = _bincount(p[reg & (tl.inst == c)], n) > 0
    cols["n_institutions_now"] = _bincount(p[reg], n)
    cur = np.minimum(t - s_clip + 1, look_cap)
    for inst in DETAIL_INSTITUTIONS:
        m = reg & (tl.inst == tl.inst_code(inst))
        cols[f"current_days_{inst.lower()}"] = _bincount(p[m], n, cur[m])
    cols["current_days_max"] = _group_max(p[reg], cur[reg], n, 0)
    cols["days_since_last_start"] = np.minimum(t - _group_max(p, s_clip, n, -np.inf), look_cap - 1)

    # history windows
    trans = _expired_transitions(full.transitions[kept], tl, w_look, transition_gap_days) if reuse \
        else view.transitions
    reent = view.reentries
    by_start = _order_by_person_start(p, s)
    ps, ss, es = p[by_start], s[by_start], e[by_start]
    # (person, institution) groups: the timeline is sorted by person, institution, start
    first = tl.group_first()
    group = np.cumsum(first) - 1
    group_person = p[first]
    for w in window_months:
        w = int(w)
        w0 = int(_time.window_start(t, w))
        starts_in = s >= w0
        overlap = e >= w0
        cols[f"n_spells_{w}m"] = _bincount(p[starts_in], n)
        has = np.bincount(group[overlap], minlength=len(group_person)) > 0
        cols[f"n_institutions_{w}m"] = _bincount(group_person[has], n)
        ov = es >= w0
        cols[f"days_registered_{w}m"] = np.minimum(_union_days(ps[ov], np.maximum(ss[ov], w0), es[ov], n),
                                                   _time.shortest_window_days(w))
        cols[f"n_transitions_{w}m"] = _bincount(p[starts_in & trans], n)
        cols[f"n_reentries_{w}m"] = _bincount(p[starts_in & reent], n)
    bw = int(bfs_window_months)
    long_w = int(max(window_months))
    w0 = int(_time.window_start(t, bw))
    w_long = int(_time.window_start(t, long_w))
    for inst in DETAIL_INSTITUTIONS:
        m = (tl.inst == tl.inst_code(inst))
        mo = m & (e >= w0)
        cols[f"days_{inst.lower()}_{bw}m"] = np.minimum(_bincount(p[mo], n, e[mo] - np.maximum(s[mo], w0) + 1),
                                                        _time.shortest_window_days(bw))
        cols[f"n_spells_{inst.lower()}_{long_w}m"] = _bincount(p[m & (s >= w_long)], n)

    # BFS profile from the flags module (one definition of the revolving door)
    fl = (full if reuse else view).flags  # the flags module's rules, computed once per view
    # the flags hold one row per person with a spell overlapping the window, in person-code
    # order: map rows to codes without looking up millions of pseudonyms
    codes = np.flatnonzero(_bincount(p[e >= w0], n) > 0)
    if len(codes) != len(fl):  # pragma: no cover - a change in compute_flags' contract
        codes = tl.person_ids.get_indexer(pd.Index(fl["person_id"]))
    okc = codes >= 0
    n_inst_w = np.zeros(n)
    max_one = np.zeros(n)
    rd = np.zeros(n)
    n_inst_w[codes[okc]] = np.asarray(fl["n_institutions_window"], dtype=np.float64)[okc]
    max_one[codes[okc]] = np.asarray(fl["max_spells_one_institution_window"], dtype=np.float64)[okc]
    rd[codes[okc]] = np.asarray(fl["revolving_door"], dtype=np.float64)[okc]
    cols[f"max_spells_one_institution_{bw}m"] = max_one
    cols[f"revolving_door_{bw}m"] = rd
    profile = np.where(n_inst_w >= 2, np.where(max_one >= 2, 4, 3), np.where(max_one >= 2, 2, 1))
    cols[f"bfs_profile_{bw}m"] = np.where((n_inst_w == 0) & (max_one == 0), 0, profile)

    # exits so far (closed spells only: an open spell has no exit at T)
    closed = ~is_open
    counted = np.zeros(len(p), dtype=bool)
    for r in COUNTED_EXITS:
        m = closed & (tl.exit_reason == EXIT_REASONS.index(r))
        counted |= m
        cols[f"n_exits_{r}"] = _bincount(p[m], n)
    cols["n_exits_other"] = _bincount(p[closed & ~counted], n)
    last_end = _group_max(p[closed], tl.end[closed].astype(np.float64), n, -np.inf)
    cols["days_since_last_exit"] = np.where(np.isfinite(last_end), np.minimum(t - last_end, look_cap - 1), np.nan)

    # the person (latest attributes known at T)
    year_t = _time.to_date(t).year
    by = _person_values(tl, "birth_year")
    if "age" in {sp.name for sp in specs}:
        cols["age"] = year_t - pd.to_numeric(by, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) \
            if by is not None else np.full(n, np.nan)
    edu = _person_values(tl, "education")
    edu_v = edu.astype(object).to_numpy() if edu is not None else np.full(n, None, dtype=object)
    for lv in EDUCATION_LEVELS:
        cols[f"education_{lv}"] = edu_v == lv

    # earlier interventions (dated <= T)
    nja = np.zeros(n)
    last_ja = np.full(n, np.nan)
    n_int = np.zeros(n)
    if interventions is not None:
        pid, day, joint = interventions
        seen = (day <= t) & (day >= w_look)
        ic = tl.codes_of(pid[seen])
        iday, ijoint = day[seen].astype(np.int64), joint[seen]
        ok = ic >= 0
        ic, iday, ijoint = ic[ok], iday[ok], ijoint[ok]
        nja = _bincount(ic[ijoint], n)
        last = _group_max(ic[ijoint], iday[ijoint].astype(np.float64), n, -np.inf)
        last_ja = np.where(np.isfinite(last), np.minimum(t - last, look_cap - 1), np.nan)
        n_int = _bincount(ic[iday >= int(_time.window_start(t, 12))], n)
    cols["n_joint_assessments"] = nja
    cols["days_since_joint_assessment"] = last_ja
    cols["n_interventions_12m"] = n_int

    names = {sp.name for sp in specs}
    if "sex_female" in names:
        sex = _person_values(tl, "sex")
        sv = sex.astype(object).to_numpy() if sex is not None else np.full(n, None, dtype=object)
        cols["sex_female"] = np.where(pd.isna(sv), np.nan, sv == "F")
        nat = _person_values(tl, "nationality_group")
        nv = nat.astype(object).to_numpy() if nat is not None else np.full(n, None, dtype=object)
        for g in NATIONALITY_GROUPS:
            cols[f"nationality_{g.lower()}"] = np.where(pd.isna(nv), np.nan, nv == g)

    # rows in person-code order: first appearance among the rows known at T, which rows
    # after T cannot change (sorting 2 million pseudonyms would cost seconds)
    ids = tl.person_ids.take(pop)
    gone = [sp.name for sp in specs if sp.name not in cols]
    if gone:  # a model fitted before features expired (days_since_first_start was an "ever" feature)
        from .errors import ModelError

        raise ModelError(f"the features {gone} no longer exist (features expire after "
                         f"{max_lookback_months} months); retrain the model with this version")
    out = {sp.name: cols[sp.name] for sp in specs}
    return ids, out


class PointInTimeFeatures(TransformerMixin, BaseEstimator):
    """Point-in-time features for (person, as-of) pairs, vectorised over persons.

    For each as-of date T the spells are cut to the point-in-time view at T
    (``build_timeline(spells, as_of=T)``) and every feature is computed from
    that view only; many dates are handled by a loop over dates, never over
    persons.

    Parameters
    ----------
    window_months : tuple of int, default (6, 12, 24, 60)
        History windows in calendar months ending at T.
    bfs_window_months : int, default 24
        Window of the BFS revolving-door flag and profile, and of the days per
        institution.
    merge_gap_days : int, default 0
        Merge gap for spells (docs/domain.md section 5).
    transition_gap_days : int, default 90
        Largest gap between the end of a spell and the start of a spell at
        another institution that still counts as a transition.
    include_protected : bool, default False
        Add sex and nationality group as features. They are protected
        attributes, meant for audits only; enabling them warns.
    population : {"open", "all"}, default "open"
        Who gets a row at T: persons with a spell open at T (the scored
        population), or everyone with a spell starting on or before T.
    include_age : bool, default False
        Add the person's age. Age is a protected ground (Art. 8(2) BV) and is
        left out by default: on two synthetic cantons (``benchmarks/fairness_age.py``,
        seeds 3 and 4) leaving it out changed precision at capacity by +0.063 and
        -0.010 and ROC AUC by -0.013, while the flag-rate ratios of the age bands
        against 50-64 fell from 2.4-4.6 ("exceeds" the four-fifths rule) to
        "cannot tell". Research studies include it (age confounds who is assessed).
    max_lookback_months : int, default 60
        Features expire: nothing that ended more than this many months before T
        is used, and no window may be longer.
    exclude_groups : tuple of str, default ()
        Feature groups left out (the ``group`` column of :func:`feature_catalogue`):
        the ablations of ``iizrisk select``, trained by ``train(drop_groups=...)``.

    Attributes
    ----------
    feature_names_out_ : ndarray of str
        Output column names.
    specs_ : list of FeatureSpec
        The features, in column order.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"person_id": ["a"], "institution": ["ALV"],
    ...                      "start_date": pd.to_datetime(["2024-01-01"]), "end_date": [pd.NaT]})
    >>> ft = PointInTimeFeatures(window_months=(12, 24))
    >>> X = ft.fit_transform(rows, as_of=["2024-01-31", "2024-02-29"])
    >>> X["current_days_alv"].tolist()
    [31.0, 60.0]
    >>> X.index.names
    FrozenList(['person_id', 'as_of'])
    """

    # with scikit-learn's metadata routing on, a Pipeline hands ``as_of`` to fit and transform
    # without set_fit_request / set_transform_request calls
    __metadata_request__fit = {"as_of": True}
    __metadata_request__transform = {"as_of": True}
    #: the default for transformers pickled before the parameter existed (get_params reads it)
    exclude_groups: tuple[str, ...] = ()

    def __init__(self, *, window_months=(6, 12, 24, 60), bfs_window_months: int = 24,
                 merge_gap_days: int = 0, transition_gap_days: int = 90,
                 include_protected: bool = False, population: str = "open", include_age: bool = False,
                 max_lookback_months: int = 60, exclude_groups=()):
        self.window_months = window_months
        self.bfs_window_months = bfs_window_months
        self.merge_gap_days = merge_gap_days
        self.transition_gap_days = transition_gap_days
        self.include_protected = include_protected
        self.population = population
        self.include_age = include_age
        self.max_lookback_months = max_lookback_months
        self.exclude_groups = exclude_groups

    def _specs(self) -> list[FeatureSpec]:
        w = _window_months(self.window_months)
        if self.population not in {"open", "all"}:
            raise ValueError(f"population must be 'open' or 'all', got {self.population!r}")
        if int(self.max_lookback_months) < 1:
            raise ValueError(f"max_lookback_months must be a positive month count, got {self.max_lookback_months!r}")
        specs = feature_specs(window_months=w, bfs_window_months=int(self.bfs_window_months),
                              include_protected=bool(self.include_protected), include_age=bool(self.include_age),
                              max_lookback_months=int(self.max_lookback_months))
        drop = set(self.exclude_groups or ())
        unknown = sorted(drop - {s.group for s in specs})
        if unknown:
            raise ValueError(f"exclude_groups: unknown feature group(s) {unknown}; groups: "
                             f"{sorted({s.group for s in specs})}")
        return [s for s in specs if s.group not in drop]

    def fit(self, spells=None, y=None, *, as_of=None, interventions=None):
        """Check the parameters and fix the output columns; the data are not needed.

        Returns
        -------
        self
        """
        self.specs_ = self._specs()
        self.feature_names_out_ = np.array([s.name for s in self.specs_], dtype=object)
        if self.include_protected:
            warnings.warn(
                "include_protected=True: sex and nationality group become model inputs. They are "
                "protected attributes meant for audits; document this use in the model card.",
                ProtectedAttributeWarning, stacklevel=2)
        return self

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def catalogue(self) -> pd.DataFrame:
        """The feature catalogue (:func:`feature_catalogue`) for these parameters."""
        cat = feature_catalogue(window_months=tuple(np.atleast_1d(self.window_months)),
                                bfs_window_months=self.bfs_window_months,
                                include_protected=self.include_protected, include_age=self.include_age,
                                max_lookback_months=self.max_lookback_months)
        drop = set(self.exclude_groups or ())
        return cat[~cat["group"].isin(drop)] if drop else cat

    def transform(self, spells: pd.DataFrame, *, as_of, interventions: pd.DataFrame | None = None,
                  view: View | None = None) -> pd.DataFrame:
        """Features at one or many as-of dates.

        Parameters
        ----------
        spells : DataFrame
            Canonical spells; rows after the as-of dates may be present and are
            ignored (point-in-time view).
        as_of : date-like or sequence of date-likes
        interventions : DataFrame, optional
            ``person_id``, ``date``, ``type``; only rows dated <= T count at T.
        view : View, optional
            The :class:`~iizrisk.view.View` at ``as_of`` when the caller has it
            already (the nightly run builds it once for the flags, the
            features and the worklists): its timeline is reused instead of
            merging the rows again, and its transitions, re-entries and flags
            when its definitions equal this transformer's. One as-of date only.

        Raises
        ------
        ValueError
            ``view`` is not the view at ``as_of`` with this transformer's merge gap.

        Returns
        -------
        DataFrame
            One row per (person, as-of) with the index (``person_id``, ``as_of``),
            sorted by as-of, then by the person's first appearance among the
            rows known at T (the same with or without later rows); one
            ``float32`` column per feature.
        """
        check_is_fitted(self, "feature_names_out_")
        missing = [c for c in ("person_id", "institution", "start_date") if c not in spells.columns]
        if missing:
            raise ValidationError(f"spells: required column(s) {missing} missing; found {list(spells.columns)}")
        dates = [as_of] if np.ndim(as_of) == 0 or isinstance(as_of, str) else list(as_of)
        days = sorted({as_of_day(d) for d in dates})
        if not days:
            raise ValueError("as_of holds no date")
        if view is not None:
            _check_view(view, days, Definitions.of_features(self))
        iv = _prepare_interventions(interventions)
        windows = tuple(int(x) for x in np.atleast_1d(self.window_months))
        frames_ids, frames_days, blocks = [], [], []
        for t in days:
            ids, cols = _features_at(
                spells, t, specs=self.specs_, window_months=windows,
                bfs_window_months=int(self.bfs_window_months), merge_gap_days=int(self.merge_gap_days),
                transition_gap_days=int(self.transition_gap_days), population=self.population,
                interventions=iv, view=view, max_lookback_months=int(getattr(self, "max_lookback_months", 60)))
            frames_ids.append(ids)
            frames_days.append(np.full(len(ids), t, dtype=np.int32))
            blocks.append(cols)
            logger.debug("features at %s: %d persons", _time.to_date(t), len(ids))
        ids = frames_ids[0].append(frames_ids[1:]) if len(frames_ids) > 1 else frames_ids[0]
        distinct_text = len(days) == 1 and ids.dtype == "str" and not ids.hasnans  # one row per person
        if ids.dtype != "str":
            ids = ids.astype("str")
        if distinct_text:
            # the index from_arrays would build (sorted level, codes = ranks), with a radix sort of the
            # pseudonyms instead of hashing them (938,488 ids: 0.4-1 s)
            order = string_order(pa.array(ids.array))
            rank = np.empty(len(ids), dtype=np.int64)
            rank[order] = np.arange(len(ids))
            index = pd.MultiIndex(levels=[ids.take(order), pd.DatetimeIndex(_time.from_days(days))],
                                  codes=[rank, np.zeros(len(ids), dtype=np.int64)],
                                  names=["person_id", "as_of"], verify_integrity=False)
        else:
            when = pd.DatetimeIndex(_time.from_days(np.concatenate(frames_days)))
            index = pd.MultiIndex.from_arrays([ids, when], names=["person_id", "as_of"])
        data = {name: np.concatenate([b[name] for b in blocks]) for name in self.feature_names_out_}
        return pd.DataFrame(data, index=index, copy=False)

    def fit_transform(self, spells, y=None, *, as_of, interventions=None) -> pd.DataFrame:
        """``fit`` then ``transform`` with the same keyword-only as-of arguments."""
        return self.fit(spells, y, as_of=as_of, interventions=interventions).transform(
            spells, as_of=as_of, interventions=interventions)
