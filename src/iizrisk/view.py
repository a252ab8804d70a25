"""The view at T: what was known on the as-of date, with the definitions that read it.

A :class:`View` is built once per as-of date and handed to every stage that
reads the situation at T -- the flags, the features, the score, the open cases
and the worklists. It holds

* the point-in-time :class:`~iizrisk.spells.Timeline` at T (nothing recorded
  after T; spells open at T are open);
* the resolved :class:`Definitions` (merge gap, transition gap, the BFS
  window) that the flags and the features share;

and it computes each rule at most once: the transition and re-entry masks
and the flags are cached on first use. Before the view, one nightly run built
the transitions three times (flags, features, and the flags inside the
features).

Examples
--------
>>> import pandas as pd
>>> rows = pd.DataFrame({
...     "person_id": ["a", "a", "b"], "institution": ["ALV", "IV", "SH"],
...     "start_date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
...     "end_date": pd.to_datetime([None, "2024-12-31", "2024-03-31"]),
... })
>>> v = View.at(rows, "2024-06-30", Definitions(window_months=12))
>>> v
View(as of 2024-06-30: 3 spells of 2 persons; merge gap 0 d, transition gap 90 d, window 12 months)
>>> v.flags[["person_id", "multi_registered"]].to_dict("list")
{'person_id': ['a', 'b'], 'multi_registered': [True, False]}
>>> v.transitions.tolist()
[False, True, False]
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from . import _time
from .errors import ConfigError
from .spells import Timeline, as_of_day, build_timeline

__all__ = ["Definitions", "View"]


@dataclass(frozen=True)
class Definitions:
    """The rules' parameters, shared by the flags and the features (docs/domain.md section 5).

    Parameters
    ----------
    merge_gap_days : int, default 0
        Spells at one institution separated by at most this many days are one spell.
    transition_gap_days : int, default 90
        A start at another institution within this many days of an end is a transition.
    window_months : int, default 24
        The BFS observation window ending at T (the revolving-door flag's window).
    """

    merge_gap_days: int = 0
    transition_gap_days: int = 90
    window_months: int = 24

    def __post_init__(self) -> None:
        for name in ("merge_gap_days", "transition_gap_days", "window_months"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < (1 if name == "window_months"
                                                                                  else 0):
                least = 1 if name == "window_months" else 0
                raise ConfigError(f"{name} must be a whole number >= {least}, got {v!r}")

    @classmethod
    def from_settings(cls, settings: Any) -> Definitions:
        """The deployment's definitions (``[deployment]`` of :class:`~iizrisk.config.Settings`)."""
        d = settings.deployment
        return cls(int(d.merge_gap_days), int(d.transition_gap_days), int(d.window_months))

    @classmethod
    def of_features(cls, features: Any) -> Definitions:
        """The definitions a :class:`~iizrisk.features.PointInTimeFeatures` was built with."""
        return cls(int(features.merge_gap_days), int(features.transition_gap_days),
                   int(features.bfs_window_months))

    def differences(self, other: Definitions) -> list[tuple[str, int, int]]:
        """``(name, self's value, other's value)`` of every definition that differs."""
        return [(name, getattr(self, name), getattr(other, name))
                for name in ("merge_gap_days", "transition_gap_days", "window_months")
                if getattr(self, name) != getattr(other, name)]


@dataclass(frozen=True, eq=False)
class View:
    """The point-in-time view at T and its definitions; rules are computed once, on first use.

    Build it with :meth:`View.at` from canonical spells, or wrap a timeline
    already built with ``build_timeline(spells, as_of=T,
    merge_gap_days=definitions.merge_gap_days)``.

    Parameters
    ----------
    timeline : Timeline
        The daily point-in-time view (``as_of`` set).
    definitions : Definitions

    Raises
    ------
    ValueError
        The timeline is the full data, monthly, or built with another merge gap.
    """

    timeline: Timeline
    definitions: Definitions = Definitions()

    def __post_init__(self) -> None:
        tl, d = self.timeline, self.definitions
        if not isinstance(tl, Timeline):
            raise TypeError(f"View takes a Timeline, got {type(tl).__name__}")
        if tl.as_of is None or tl.mode != "daily" or tl.merge_gap_days != d.merge_gap_days:
            when = "the full data" if tl.as_of is None else f"as of {_time.to_date(tl.as_of)}"
            raise ValueError(
                f"the timeline ({when}, {tl.mode}, merge_gap_days={tl.merge_gap_days}) is not a daily "
                f"point-in-time view with merge_gap_days={d.merge_gap_days}; build it with "
                f"build_timeline(spells, as_of=..., merge_gap_days={d.merge_gap_days})")

    @classmethod
    def at(cls, spells: pd.DataFrame, as_of, definitions: Definitions | None = None) -> View:
        """The view at ``as_of`` of canonical spell rows (rows recorded after it are left out)."""
        definitions = definitions or Definitions()
        tl = build_timeline(spells, as_of=as_of_day(as_of), merge_gap_days=definitions.merge_gap_days)
        return cls(tl, definitions)

    # ----------------------------------------------------------------- when
    @property
    def day(self) -> int:
        """T as a day number (:mod:`iizrisk._time`)."""
        t = self.timeline.as_of
        assert t is not None  # checked in __post_init__
        return int(t)

    @property
    def as_of(self) -> dt.date:
        """T as a date."""
        return _time.to_date(self.day)

    def is_at(self, as_of) -> bool:
        """Whether this is the view at ``as_of``."""
        return as_of_day(as_of) == self.day

    # ---------------------------------------------------------------- rules
    @cached_property
    def transitions(self) -> np.ndarray:
        """Per spell: does it start a transition (:func:`iizrisk.flags.transition_mask`)?"""
        from .flags import transition_mask

        mask = np.asarray(transition_mask(self.timeline, gap_days=self.definitions.transition_gap_days), dtype=bool)
        mask.setflags(write=False)
        return mask

    @cached_property
    def reentries(self) -> np.ndarray:
        """Per spell: is it a re-entry (:func:`iizrisk.flags.reentry_mask`)?"""
        from .flags import reentry_mask

        mask = np.asarray(reentry_mask(self.timeline), dtype=bool)
        mask.setflags(write=False)
        return mask

    @cached_property
    def flags(self) -> pd.DataFrame:
        """The flags at T over the definitions' window (:func:`iizrisk.flags.compute_flags`'s table).

        Computed once and shared: treat it as read-only (``.copy()`` to change it).
        """
        from .flags import _flags

        d = self.definitions
        return _flags(self.timeline, self.day, d.window_months, d.transition_gap_days,
                      transition=self.transitions)

    def has_rules(self) -> bool:
        """Whether the transitions and the flags are computed already (cached on this view)."""
        return "transitions" in self.__dict__ and "flags" in self.__dict__

    def __repr__(self) -> str:  # counts only: the pseudonyms stay out of logs and tracebacks
        d, tl = self.definitions, self.timeline
        return (f"View(as of {self.as_of}: {len(tl):,} spells of {tl.n_persons:,} persons; merge gap "
                f"{d.merge_gap_days} d, transition gap {d.transition_gap_days} d, window {d.window_months} months)")
