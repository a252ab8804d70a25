"""Spells: merged registration periods and the point-in-time view.

Rows of one person at one institution that overlap or touch are one spell
(DOMAIN.md section 5); a gap of at least one day starts a new spell unless a
merge gap is set. The *point-in-time view at as-of date T* keeps the rows
with ``start_date <= T`` (and ``recorded_date <= T`` where that column
exists); an end after T, or an empty end, is open at T.

Internally a :class:`Timeline` holds the merged spells as integer arrays
(person code, institution code, start and end day numbers) sorted by person,
institution and start, so that every downstream computation is a vectorised
pass over whole columns.

Examples
--------
>>> import pandas as pd
>>> rows = pd.DataFrame({
...     "person_id": ["a", "a", "a"],
...     "institution": ["ALV", "ALV", "SH"],
...     "start_date": pd.to_datetime(["2023-01-01", "2023-03-01", "2023-02-01"]),
...     "end_date": pd.to_datetime(["2023-02-28", "2023-06-30", None]),
... })
>>> tl = build_timeline(rows, as_of="2023-05-31")
>>> tl.to_frame()[["institution", "start_date"]].astype(str).values.tolist()
[['ALV', '2023-01-01'], ['SH', '2023-02-01']]
>>> tl.is_open().tolist()  # the ALV end (June) lies after the as-of date: open at T
[True, True]
>>> tl.merge_report.rows_merged
1
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import _time
from ._time import OPEN_END
from .schema import load_schema

__all__ = ["Timeline", "MergeReport", "build_timeline", "point_in_time", "as_of_day"]

logger = logging.getLogger("iizrisk")

#: Canonical exit reasons, in code order (code -1 = missing).
EXIT_REASONS: tuple[str, ...] = tuple(load_schema("spells").field("exit_reason").enum or ())
#: Default institution codes, in code order.
DEFAULT_INSTITUTIONS: tuple[str, ...] = tuple(load_schema("spells").field("institution").enum or ())


def as_of_day(as_of) -> int:
    """An as-of date (``'YYYY-MM-DD'``, date, Timestamp or int day number) as a day number."""
    if isinstance(as_of, int | np.integer):
        return int(as_of)
    return _time.day(as_of)


@dataclass(frozen=True)
class MergeReport:
    """What normalising the rows into spells did.

    Attributes
    ----------
    rows_in : rows given.
    rows_after_as_of : rows left out because they start (or were recorded) after the as-of date.
    duplicate_rows : rows identical to another in person, institution, start and end.
    rows_merged : rows absorbed into another row's spell (overlap, touch or merge gap), duplicates excluded.
    spells : merged spells out.
    """

    rows_in: int
    rows_after_as_of: int
    duplicate_rows: int
    rows_merged: int
    spells: int

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Timeline:
    """Merged spells of many persons as integer arrays (sorted by person, institution, start).

    Attributes
    ----------
    person : int32 codes into ``person_ids``.
    inst : int8 codes into ``institutions``.
    start, end : int32 day numbers; ``end`` is :data:`iizrisk._time.OPEN_END` when open
        (at the as-of date, or at export when no as-of was given).
    exit_reason : int8 codes into :data:`EXIT_REASONS`, -1 when missing or open.
    case_id : int32 codes into ``case_ids`` (the case of the spell's last row), -1 when missing.
    person_ids : the pseudonyms, one per person code.
    persons : one row per person code with the latest known attributes
        (``birth_year``, ``sex``, ``nationality_group``, ``education``, ``canton``) where present.
    as_of : the as-of day number of the view, or None for the full data.
    """

    person: np.ndarray
    inst: np.ndarray
    start: np.ndarray
    end: np.ndarray
    exit_reason: np.ndarray
    case_id: np.ndarray
    person_ids: pd.Index
    institutions: tuple[str, ...]
    case_ids: pd.Index
    persons: pd.DataFrame
    as_of: int | None = None
    merge_report: MergeReport | None = field(default=None, repr=False)

    @property
    def n_persons(self) -> int:
        return len(self.person_ids)

    def __len__(self) -> int:
        return len(self.person)

    def inst_code(self, name: str) -> int:
        """Code of an institution name, or -1 when no spell has it."""
        try:
            return self.institutions.index(name)
        except ValueError:
            return -1

    def is_open(self) -> np.ndarray:
        """Boolean mask of spells open at the as-of date (or at export)."""
        return self.end == OPEN_END

    def to_frame(self) -> pd.DataFrame:
        """The merged spells as a canonical DataFrame (open ends as NaT)."""
        reasons = np.array((*EXIT_REASONS, None), dtype=object)
        return pd.DataFrame(
            {
                "person_id": self.person_ids.take(self.person),
                "institution": pd.Categorical.from_codes(self.inst.astype(np.int16), self.institutions),
                "case_id": self.case_ids.take(np.where(self.case_id < 0, 0, self.case_id))
                .where(self.case_id >= 0, None) if len(self.case_ids) else pd.NA,
                "start_date": _time.from_days(self.start),
                "end_date": _time.from_days(self.end),
                "exit_reason": reasons[np.where(self.exit_reason < 0, len(EXIT_REASONS), self.exit_reason)],
            }
        )

    def _repr_html_(self) -> str:
        ctr = pd.Series(self.inst).map(dict(enumerate(self.institutions))).value_counts()
        when = "full data" if self.as_of is None else f"as of {_time.to_date(self.as_of)}"
        rows = "".join(f"<tr><td>{k}</td><td>{v:,}</td></tr>" for k, v in ctr.items())
        return (
            f"<b>Timeline</b> ({when}): {len(self):,} spells of {self.n_persons:,} persons, "
            f"{int(self.is_open().sum()):,} open<table><tr><th>institution</th><th>spells</th></tr>"
            f"{rows}</table>"
        )


def point_in_time(spells: pd.DataFrame, as_of) -> pd.DataFrame:
    """Canonical rows as known on the evening of ``as_of``.

    Keeps rows with ``start_date <= T`` (and ``recorded_date <= T`` where the
    column exists and is filled); ends after T become empty (open), and so do
    their exit reasons, which are not known at T.
    """
    t = as_of_day(as_of)
    start = _time.to_days(spells["start_date"])
    keep = start <= t
    if "recorded_date" in spells.columns:
        rec = _time.to_days(spells["recorded_date"])
        keep &= (rec <= t) | (rec == _time.MISSING_DAY)
    out = spells.loc[keep].copy()
    end = _time.to_days(out["end_date"], missing=int(OPEN_END))
    after = end > t
    if after.any():
        out.loc[after, "end_date"] = pd.NaT
        if "exit_reason" in out.columns:
            out.loc[after, "exit_reason"] = None
    return out


def _codes(values: pd.Series, categories=None) -> tuple[np.ndarray, pd.Index]:
    if categories is not None:
        cat = pd.Categorical(values, categories=list(categories))
        return cat.codes.astype(np.int32), pd.Index(list(categories))
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int32), pd.Index(uniques)


def build_timeline(
    spells: pd.DataFrame,
    *,
    as_of=None,
    merge_gap_days: int = 0,
    institutions: tuple[str, ...] | None = None,
) -> Timeline:
    """Merge canonical rows into spells, optionally in the point-in-time view at ``as_of``.

    Parameters
    ----------
    spells : DataFrame
        Canonical registration rows (``person_id``, ``institution``, ``start_date``
        required; ``end_date``, ``exit_reason``, ``recorded_date``, ``case_id`` and
        person attributes used when present).
    as_of : date-like, optional
        Build the point-in-time view of the evening of this day: rows starting or
        recorded later are ignored, ends after it are open.
    merge_gap_days : int, default 0
        Rows of one person at one institution separated by at most this many
        unregistered days are merged too (0: only overlapping or touching rows).
    institutions : tuple of str, optional
        Institution codes in code order; default: the schema's codes followed by
        any other code found in the data.

    Returns
    -------
    Timeline
    """
    n_in = len(spells)
    t = None if as_of is None else as_of_day(as_of)
    start = _time.to_days(spells["start_date"])
    end = _time.to_days(spells["end_date"], missing=int(OPEN_END)) if "end_date" in spells else \
        np.full(n_in, OPEN_END, dtype=np.int32)
    keep = np.ones(n_in, dtype=bool)
    if t is not None:
        keep &= start <= t
        if "recorded_date" in spells.columns:
            rec = _time.to_days(spells["recorded_date"])
            keep &= (rec <= t) | (rec == _time.MISSING_DAY)
    rows_after = int(n_in - keep.sum())

    if institutions is None:
        found = pd.unique(spells["institution"].astype(str))
        institutions = DEFAULT_INSTITUTIONS + tuple(sorted(set(found) - set(DEFAULT_INSTITUTIONS)))
    inst, _ = _codes(spells["institution"].astype(str), institutions)
    person, person_ids = _codes(spells["person_id"])
    if "exit_reason" in spells.columns:
        reason, _ = _codes(spells["exit_reason"].astype(object), EXIT_REASONS)
    else:
        reason = np.full(n_in, -1, dtype=np.int32)
    if "case_id" in spells.columns:
        case, case_ids = _codes(spells["case_id"])
    else:
        case, case_ids = np.full(n_in, -1, dtype=np.int32), pd.Index([], dtype=object)

    idx = np.flatnonzero(keep)
    start, end, inst, person, reason, case = (a[idx] for a in (start, end, inst, person, reason, case))
    if t is not None:
        after = end > t
        end = np.where(after, OPEN_END, end).astype(np.int32)
        reason = np.where(after, -1, reason)

    # sort by person, institution, start, end
    order = np.lexsort((end, start, inst, person))
    start, end, inst, person, reason, case = (a[order] for a in (start, end, inst, person, reason, case))
    n = len(start)

    group = person.astype(np.int64) * 256 + inst.astype(np.int64)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = group[1:] != group[:-1]
    dup = np.zeros(n, dtype=bool)
    dup[1:] = ~new_group[1:] & (start[1:] == start[:-1]) & (end[1:] == end[:-1])

    # running max of end within the group: the composite key is monotone across groups
    prev_max = np.full(n, -(1 << 40), dtype=np.int64)
    if n:
        g0 = group - group[0]
        run_max = np.maximum.accumulate(g0 * (1 << 32) + end.astype(np.int64)) - g0 * (1 << 32)
        prev_max[1:] = run_max[:-1]
    new_spell = new_group | (start.astype(np.int64) > prev_max + 1 + int(merge_gap_days))
    spell_id = np.cumsum(new_spell) - 1
    firsts = np.flatnonzero(new_spell)
    m_end = np.maximum.reduceat(end, firsts) if n else end
    # exit reason and case id come from the row holding the spell's latest end:
    # ordering by (spell, end) puts that row last in each spell's block
    by_end = np.lexsort((end, spell_id))
    last_of_spell = by_end[np.r_[firsts[1:], n] - 1] if n else by_end

    tl = Timeline(
        person=person[firsts].astype(np.int32),
        inst=inst[firsts].astype(np.int8),
        start=start[firsts].astype(np.int32),
        end=m_end.astype(np.int32),
        exit_reason=np.where(m_end == OPEN_END, -1, reason[last_of_spell]).astype(np.int8),
        case_id=case[last_of_spell].astype(np.int32),
        person_ids=person_ids,
        institutions=tuple(institutions),
        case_ids=case_ids,
        persons=_person_attributes(spells, keep, person_ids),
        as_of=t,
    )
    n_dup = int(dup.sum())
    tl.merge_report = MergeReport(
        rows_in=n_in,
        rows_after_as_of=rows_after,
        duplicate_rows=n_dup,
        rows_merged=int(n - len(firsts) - n_dup),
        spells=len(firsts),
    )
    logger.debug("timeline: %s", tl.merge_report)
    return tl


_PERSON_ATTRS = ("birth_year", "sex", "nationality_group", "education", "canton")


def _person_attributes(spells: pd.DataFrame, keep: np.ndarray, person_ids: pd.Index) -> pd.DataFrame:
    """Latest known attributes per person among the visible rows (by start date)."""
    cols = [c for c in _PERSON_ATTRS if c in spells.columns]
    out = pd.DataFrame(index=pd.RangeIndex(len(person_ids), name="person"))
    if not cols:
        return out
    visible = spells.loc[keep, ["person_id", "start_date", *cols]]
    codes = person_ids.get_indexer(visible["person_id"])
    order = np.lexsort((_time.to_days(visible["start_date"]), codes))
    codes = codes[order]
    last = np.r_[np.flatnonzero(np.diff(codes)), len(codes) - 1] if len(codes) else np.array([], int)
    for c in cols:
        col = visible[c].iloc[order]
        # latest non-missing value per person: forward-fill within person then take last
        filled = col.groupby(codes, sort=False).ffill() if col.isna().any() else col
        vals = filled.iloc[last]
        s = pd.Series(pd.NA, index=out.index, dtype=vals.dtype)
        s.iloc[codes[last]] = vals.to_numpy()
        out[c] = s
    return out
