"""Dated shocks planted in a synthetic population: a policy or process change from a given day.

Monitoring has to notice when the world a model was trained on changes: an
ALV revision that slows exits, an institution that stops recording why cases
end. :class:`Shock` describes one such change and :func:`apply_shocks` plants
it in the exported spells of a :class:`~iizrisk.synth.SyntheticPopulation`
(``iizrisk synth --shock ...``). Without a shock nothing changes: the
population still matches the BFS figures.

Two kinds:

* ``slow_exits`` (:func:`slow_down_exits`): from the shock date the exits
  from one institution slow down by ``size`` (0.3: the exit hazard times
  0.7). **A transformation after the simulation, not a new simulation**:
  every spell of the institution running on the shock date or starting
  after it has its remaining duration after the date (after its start for a
  later spell) divided by ``1 - size``. For a constant exit hazard this is
  exactly a hazard times ``1 - size``; for duration-dependent hazards it is
  the same stretch of the remaining time. What it does *not* do: the
  person's later life is not simulated again. A following spell at another
  institution keeps its start (so the stretched spell may now run alongside
  it), and so does a following spell at the same institution: when the
  stretched spell reaches it, the two rows overlap and merge into one spell
  (the re-entry disappears, as if the person had not left). A spell whose new end falls
  after the export date becomes open (no end, no exit reason; its
  ``recorded_date`` becomes its start, as for a row recorded without delay).
  Otherwise the end is recorded as late after the new end as it was after the
  old one.
* ``no_exit_reasons`` (:func:`stop_recording_exit_reasons`): from the shock
  date one institution stops recording exit reasons: every row of it that
  ends on or after the date has an empty exit reason. A pure change of the
  export; the lives are unchanged.

Examples
--------
>>> rows = pd.DataFrame({"person_id": ["a", "b"], "institution": ["ALV", "SH"],
...                      "start_date": pd.to_datetime(["2024-01-01", "2024-01-01"]),
...                      "end_date": pd.to_datetime(["2024-01-31", "2024-03-31"]),
...                      "exit_reason": ["employment", "employment"]})
>>> shock = Shock.parse("slow_exits:ALV:2024-01-11:0.5")
>>> apply_shocks(rows, [shock], observed_until="2024-12-31")["end_date"].dt.date.astype(str).tolist()
['2024-02-20', '2024-03-31']
>>> apply_shocks(rows, [Shock.parse("no_exit_reasons:SH:2024-03-01")])["exit_reason"].isna().tolist()
[False, True]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..errors import ConfigError
from ._engine import INSTITUTIONS

__all__ = ["SHOCK_KINDS", "Shock", "apply_shocks", "slow_down_exits", "stop_recording_exit_reasons"]

#: the kinds of shock (:class:`Shock`)
SHOCK_KINDS: tuple[str, ...] = ("slow_exits", "no_exit_reasons")


@dataclass(frozen=True)
class Shock:
    """A dated change planted in the exported spells (see :mod:`iizrisk.synth._shocks`).

    Parameters
    ----------
    kind : {"slow_exits", "no_exit_reasons"}
    date : str or Timestamp
        The first day of the change.
    institution : str, default "ALV"
        One of the simulated institutions (ALV, IV, SH, BB, BSLB, MIG, UV, KTG): a shock at any
        other would change nothing and is refused.
    size : float, optional
        ``slow_exits`` only: the relative reduction of the exit hazard, in [0, 1) (default 0.3).
        ``no_exit_reasons`` takes no size (it stays None; one given is refused).

    Examples
    --------
    >>> Shock.parse("slow_exits:ALV:2020-07-01:0.3")
    Shock(kind='slow_exits', date=Timestamp('2020-07-01 00:00:00'), institution='ALV', size=0.3)
    >>> Shock.parse("slow_exits:ALV:2020-07-01:0.3").to_text()
    'slow_exits:ALV:2020-07-01:0.3'
    """

    kind: str
    date: Any
    institution: str = "ALV"
    size: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in SHOCK_KINDS:
            raise ConfigError(f"shock kind {self.kind!r}: choose one of {', '.join(SHOCK_KINDS)}")
        try:
            d = pd.Timestamp(self.date)
        except (ValueError, TypeError):
            d = pd.NaT
        if pd.isna(d):
            raise ConfigError(f"shock date {self.date!r}: give a day as YYYY-MM-DD")
        object.__setattr__(self, "date", d.normalize())
        institution = str(self.institution).strip().upper()
        if institution not in INSTITUTIONS:
            raise ConfigError(f"shock institution {self.institution!r}: not a simulated institution; choose one "
                              f"of {', '.join(INSTITUTIONS)}")
        object.__setattr__(self, "institution", institution)
        if self.kind == "no_exit_reasons":
            if self.size is not None:
                raise ConfigError(f"shock size {self.size!r}: no_exit_reasons takes no size (exit reasons are "
                                  "no longer recorded at all); write no_exit_reasons:INSTITUTION:YYYY-MM-DD")
            return
        try:
            size = 0.3 if self.size is None else float(self.size)
        except (ValueError, TypeError):
            size = math.nan
        if not 0 <= size < 1:
            raise ConfigError(f"shock size {self.size!r}: a relative slow-down in [0, 1)")
        object.__setattr__(self, "size", size)

    @classmethod
    def parse(cls, text: str) -> Shock:
        """``KIND:INSTITUTION:YYYY-MM-DD[:SIZE]`` (the ``iizrisk synth --shock`` syntax)."""
        parts = [p.strip() for p in str(text).split(":")]
        if len(parts) not in (3, 4):
            raise ConfigError(f"shock {text!r}: write KIND:INSTITUTION:YYYY-MM-DD[:SIZE], for example "
                              "slow_exits:ALV:2020-07-01:0.3 or no_exit_reasons:SH:2020-07-01")
        if len(parts) == 4 and parts[0] == "no_exit_reasons":
            raise ConfigError(f"shock {text!r}: no_exit_reasons takes no size (exit reasons are no longer "
                              f"recorded at all); write {':'.join(parts[:3])}")
        try:
            size = float(parts[3]) if len(parts) == 4 else None
        except ValueError:
            raise ConfigError(f"shock {text!r}: the size {parts[3]!r} is not a number") from None
        return cls(kind=parts[0], institution=parts[1], date=parts[2], size=size)

    def to_text(self) -> str:
        """The :meth:`parse` form (recorded in ``synth.json``)."""
        tail = f":{self.size:g}" if self.kind == "slow_exits" else ""
        return f"{self.kind}:{self.institution}:{self.date.date()}{tail}"

    def check_period(self, start, end) -> Shock:
        """This shock, or :class:`~iizrisk.errors.ConfigError` if its date lies outside ``start``..``end``.

        A shock outside the simulated period would change nothing (``iizrisk synth`` checks every
        ``--shock`` against ``--start`` and ``--end`` before simulating).

        >>> Shock.parse("no_exit_reasons:SH:2030-01-01").check_period("2020-01-01", "2022-12-31")
        Traceback (most recent call last):
        ...
        iizrisk.errors.ConfigError: shock 'no_exit_reasons:SH:2030-01-01': the date 2030-01-01 lies outside the period 2020-01-01 to 2022-12-31 and would change nothing; give a date within the period (--start to --end)
        """
        lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
        if not lo <= self.date <= hi:
            raise ConfigError(f"shock {self.to_text()!r}: the date {self.date.date()} lies outside the period "
                              f"{lo.date()} to {hi.date()} and would change nothing; give a date within the "
                              "period (--start to --end)")
        return self

    def apply(self, spells: pd.DataFrame, *, observed_until=None) -> pd.DataFrame:
        """The spells with this shock planted (a copy)."""
        if self.kind == "slow_exits":
            assert self.size is not None  # set in __post_init__
            return slow_down_exits(spells, institution=self.institution, from_date=self.date,
                                   slowdown=self.size, observed_until=observed_until)
        return stop_recording_exit_reasons(spells, institution=self.institution, from_date=self.date)


def apply_shocks(spells: pd.DataFrame, shocks: Iterable[Shock | str], *, observed_until=None) -> pd.DataFrame:
    """Plant every shock, in order, in canonical spells (strings are :meth:`Shock.parse`\\ d).

    ``observed_until`` is the export date (default the latest start or end in the spells).
    """
    out = spells
    for s in shocks:
        shock = s if isinstance(s, Shock) else Shock.parse(s)
        out = shock.apply(out, observed_until=observed_until)
    return out.copy() if out is spells else out


def slow_down_exits(spells: pd.DataFrame, *, institution: str = "ALV", from_date, slowdown: float = 0.3,
                    observed_until=None) -> pd.DataFrame:
    """Exits from ``institution`` slow down by ``slowdown`` from ``from_date`` (a post-simulation stretch).

    Every spell of ``institution`` still running after ``from_date`` (or starting later) has its
    remaining duration, counted from ``max(start, from_date)``, divided by ``1 - slowdown``; later
    rows of the person keep their start (a row reached by the stretched one merges with it into one
    spell). A spell whose new end falls after
    ``observed_until`` (default the latest end or start) is open at the export: no end, no exit
    reason, ``recorded_date`` its start. Otherwise ``recorded_date`` moves with the end. Other rows
    are unchanged. The simplifications are listed in :mod:`iizrisk.synth._shocks`.

    Parameters
    ----------
    spells : DataFrame
        Canonical spells (``person_id``, ``institution``, ``start_date``, ``end_date``; optional
        ``exit_reason`` and ``recorded_date``).
    institution : str, default "ALV"
    from_date : date-like
    slowdown : float, default 0.3
        In [0, 1): the exit hazard times ``1 - slowdown``.
    observed_until : date-like, optional

    Returns
    -------
    DataFrame
        A copy, rows in the same order.

    Examples
    --------
    >>> rows = pd.DataFrame({"person_id": ["a"], "institution": ["ALV"],
    ...                      "start_date": pd.to_datetime(["2024-01-01"]),
    ...                      "end_date": pd.to_datetime(["2024-01-31"])})
    >>> slow_down_exits(rows, from_date="2024-01-11", slowdown=0.5, observed_until="2024-12-31")["end_date"].iloc[0]
    Timestamp('2024-02-20 00:00:00')
    """
    if not 0 <= slowdown < 1:
        raise ConfigError(f"slowdown must be in [0, 1), got {slowdown!r}")
    out = spells.copy()
    d0 = pd.Timestamp(from_date)
    start, end = pd.to_datetime(out["start_date"]), pd.to_datetime(out["end_date"])
    last = (pd.Timestamp(observed_until) if observed_until is not None
            else max(end.max(), start.max()))
    inst = out["institution"].astype(str).str.strip().str.upper().to_numpy()
    hit = (inst == str(institution).strip().upper()) & (end > d0).to_numpy()
    anchor = start.where(start > d0, d0)
    new_end = (anchor + (end - anchor) / (1 - slowdown)).dt.floor("D")
    open_now = hit & (new_end > last).to_numpy()
    out["end_date"] = end.where(~hit, new_end).where(~open_now, pd.NaT).astype(out["end_date"].dtype)
    if "exit_reason" in out.columns:
        out["exit_reason"] = out["exit_reason"].where(~open_now, None)
    if "recorded_date" in out.columns:
        rec = pd.to_datetime(out["recorded_date"])
        moved = rec.where(~hit, rec + (new_end - end)).where(~open_now, start)
        out["recorded_date"] = moved.astype(out["recorded_date"].dtype)
    return out


def stop_recording_exit_reasons(spells: pd.DataFrame, *, institution: str, from_date) -> pd.DataFrame:
    """From ``from_date`` ``institution`` records no exit reason: rows ending on or after it lose theirs.

    >>> rows = pd.DataFrame({"institution": ["SH", "SH", "ALV"],
    ...                      "end_date": pd.to_datetime(["2020-06-30", "2020-07-01", "2020-08-01"]),
    ...                      "exit_reason": ["employment", "transfer", "employment"]})
    >>> stop_recording_exit_reasons(rows, institution="SH", from_date="2020-07-01")["exit_reason"].isna().tolist()
    [False, True, False]
    """
    out = spells.copy()
    if "exit_reason" not in out.columns:
        return out
    end = pd.to_datetime(out["end_date"])
    inst = out["institution"].astype(str).str.strip().str.upper()
    hit = (inst == str(institution).strip().upper()).to_numpy() & (end >= pd.Timestamp(from_date)).to_numpy()
    out["exit_reason"] = out["exit_reason"].where(~hit, None)
    return out
