"""Spells: merged registration periods, the point-in-time view and the BFS monthly mode.

Rows of one person at one institution that overlap or touch are one spell
(docs/domain.md section 5); a gap of at least one day starts a new spell unless a
merge gap is set. The *point-in-time view at as-of date T* keeps the rows
with ``start_date <= T``; ``recorded_date`` (the day the row, or its end,
became known) leaves out open rows recorded after T and makes closed rows
recorded after T open at T. An end after T, or an empty end, is open at T.

Internally a :class:`Timeline` holds the merged spells as integer arrays
(person code, institution code, start and end day numbers) sorted by person,
institution and start, so that every downstream computation is a vectorised
pass over whole columns. Within one person and institution the merged spells
are disjoint, so their starts *and* ends increase.

The *BFS-compatible monthly mode* (:func:`monthly_spells`) counts a calendar
month as registered if any day of it is, and a spell as a run of registered
months.

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
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _time
from ._arrays import fixed_width, matches
from ._time import MISSING_DAY, OPEN_END
from .config import MAX_DAYS
from .errors import ConfigError, ValidationError
from .pseudonym import readable_columns
from .schema import dtype_kind, load_schema

__all__ = [
    "AS_OF_AFTER_DATA_DAYS",
    "DEFAULT_INSTITUTIONS",
    "EXIT_REASONS",
    "MergeReport",
    "Timeline",
    "as_of_day",
    "build_timeline",
    "monthly_spells",
    "observed_until",
    "point_in_time",
    "refuse_as_of_after_data",
]

logger = logging.getLogger("iizrisk")

#: Canonical exit reasons, in code order (code -1 = missing).
EXIT_REASONS: tuple[str, ...] = tuple(load_schema("spells").field("exit_reason").enum or ())
#: Default institution codes, in code order.
DEFAULT_INSTITUTIONS: tuple[str, ...] = tuple(load_schema("spells").field("institution").enum or ())

_REQUIRED: tuple[str, ...] = tuple(load_schema("spells").required)
_MAX_SHOWN = 5
_MAX_INSTITUTIONS = 127  # institution codes are int8
_MODES = ("daily", "monthly")
_PACKED_BITS = 63  # sort keys packed into one int64 when they fit (tests lower it)


def observed_until(spells: pd.DataFrame) -> int:
    """Last observed day of a canonical export, as a day number.

    The latest ``recorded_date`` when that column is filled, else the latest
    start or (closed) end date: nothing after this day is known, so a horizon
    ending later is not fully observed.

    Examples
    --------
    >>> rows = pd.DataFrame({"start_date": pd.to_datetime(["2023-01-01"]),
    ...                      "end_date": pd.to_datetime(["2023-03-31"])})
    >>> _time.to_date(observed_until(rows)).isoformat()
    '2023-03-31'
    """
    if "recorded_date" in spells.columns:
        rec = _time.to_days(spells["recorded_date"])
        rec = rec[rec != _time.MISSING_DAY]
        if len(rec):
            return int(rec.max())
    days = _time.to_days(spells["start_date"])
    if "end_date" in spells.columns:
        end = _time.to_days(spells["end_date"])
        days = np.concatenate([days, end[end != _time.MISSING_DAY]])
    days = days[days != _time.MISSING_DAY]
    if not len(days):
        raise ValidationError("cannot tell the last observed day of an empty export (no dates); pass "
                              "observed_until, or check the export")
    return int(days.max())



#: How many days after the last observed day of the spells an as-of date may lie (as the nightly run's
#: default ``[health] max_as_of_after_data_days``): an export is a few days old when it is read.
AS_OF_AFTER_DATA_DAYS = 14


def refuse_as_of_after_data(spells: pd.DataFrame, t: int, *, data_end=None, what: str = "as_of") -> None:
    """Refuse an as-of day ``t`` more than :data:`AS_OF_AFTER_DATA_DAYS` after the last observed day.

    The registrations open at the export would be taken as running on unseen, so flags and risks
    would describe a day nothing is known of. The last observed day is ``data_end`` when given, else
    the spells' latest recorded date (:func:`observed_until`). Without recorded dates (hand-made rows,
    an export of starts and ends only) the latest start may lie long before the export was taken, and
    nothing is refused unless ``data_end`` says so. Call it on rows already checked (their dates are dates).

    Raises
    ------
    ValidationError
        Naming the last observed day and the latest as-of date the data support.
    """
    if data_end is not None:
        last = as_of_day(data_end)
    elif "recorded_date" in spells.columns and spells["recorded_date"].notna().any():
        last = observed_until(spells)
    else:
        return
    if int(t) - last > AS_OF_AFTER_DATA_DAYS:
        latest = _time.to_date(last + AS_OF_AFTER_DATA_DAYS)
        source = "data_end" if data_end is not None else "the last recorded date of the spells"
        raise ValidationError(
            f"{what} {_time.to_date(int(t))} lies {int(t) - last} days after {source} "
            f"({_time.to_date(last)}; at most {AS_OF_AFTER_DATA_DAYS} days allowed): nothing is known of that "
            f"day. Give an as-of date on or before {latest}, or spells that reach it (in Python, data_end= "
            "names the day the export was taken)")


def as_of_day(as_of) -> int:
    """An as-of date (``'YYYY-MM-DD'``, date, Timestamp or int day number) as a day number.

    Examples
    --------
    >>> as_of_day("1970-01-31")
    30
    >>> as_of_day(30)
    30
    """
    if isinstance(as_of, bool | np.bool_):
        raise ConfigError("as_of must be a date, 'YYYY-MM-DD' or an int day number, not a bool")
    if isinstance(as_of, int | np.integer):
        return _day_number(int(as_of))
    if as_of is None or (isinstance(as_of, float | np.floating) and np.isnan(as_of)):
        raise ConfigError("as_of is missing: give a date such as '2024-06-30'")
    return _time.day(_time.parse_iso_date(as_of, "as_of"))


_FIRST_DAY, _LAST_DAY = _time.day(_time.EARLIEST_DATE), _time.day(_time.LATEST_DATE)


def _day_number(value: int) -> int:
    """An int ``as_of``: a day number (days since 1970-01-01) in the dates iizrisk works with, else ConfigError.

    A date written as a number (20250630) is refused with its ``YYYY-MM-DD`` spelling.
    """
    if _FIRST_DAY <= value <= _LAST_DAY:
        return value
    hint = "give the date as 'YYYY-MM-DD', e.g. '2025-06-30'"
    text = str(value)
    if len(text) == 8:  # perhaps YYYYMMDD
        try:
            hint = f"for that date write '{_time.parse_iso_date(f'{text[:4]}-{text[4:6]}-{text[6:]}')}'"
        except ConfigError:
            pass
    raise ConfigError(f"as_of {_time._shown(text)} is read as a day number (days since 1970-01-01) and lies "
                      f"outside {_time.EARLIEST_DATE} to {_time.LATEST_DATE}; {hint}")


@dataclass(frozen=True)
class MergeReport:
    """What normalising the rows into spells did.

    Attributes
    ----------
    rows_in : rows given.
    rows_after_as_of : rows left out because they start (or were recorded) after the as-of date.
    duplicate_rows : rows identical to another in person, institution, start and end
        (after ends beyond the as-of date became open).
    rows_merged : rows absorbed into another row's spell (overlap, touch or merge gap),
        duplicates excluded; in monthly mode also the daily spells joined into a run of months.
    spells : merged spells out.
    """

    rows_in: int
    rows_after_as_of: int
    duplicate_rows: int
    rows_merged: int
    spells: int

    def to_dict(self) -> dict[str, int]:
        """The counts as a plain dict."""
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
    case_id : int32 codes into ``case_ids`` (the case of the row holding the spell's
        latest end), -1 when missing.
    person_ids : the pseudonyms, one per person code, in order of first appearance
        among the rows in the view (persons known only after the as-of date are absent).
    institutions : institution codes, one per ``inst`` code.
    case_ids : the case numbers, one per ``case_id`` code (codes may repeat a number).
    persons : one row per person code with the latest known attributes
        (``birth_year``, ``sex``, ``nationality_group``, ``education``, ``canton``) where present.
    as_of : the as-of day number of the view, or None for the full data.
    merge_report : what merging the rows did (:class:`MergeReport`).
    merge_gap_days : the merge gap the spells were built with.
    mode : ``"daily"``, or ``"monthly"`` for the BFS monthly mode (:func:`monthly_spells`).
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
    merge_gap_days: int = 0
    mode: str = "daily"

    @property
    def n_persons(self) -> int:
        """Number of persons (length of ``person_ids``)."""
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

    def group_first(self) -> np.ndarray:
        """Boolean mask of the first spell of each person at each institution.

        Every other spell is a re-entry (docs/domain.md section 5).
        """
        first = np.ones(len(self), dtype=bool)
        if len(self) > 1:
            first[1:] = (self.person[1:] != self.person[:-1]) | (self.inst[1:] != self.inst[:-1])
        return first

    def keep_rows(self, keep: np.ndarray) -> Timeline:
        """The timeline of the rows where ``keep`` is true; person codes and everything else unchanged.

        The rows of whole persons give those persons' flags, features and outcomes unchanged (each is
        computed from the person's own rows), at the cost of their rows only.
        """
        keep = np.asarray(keep, dtype=bool)
        if keep.all():
            return self
        return replace(self, person=self.person[keep], inst=self.inst[keep], start=self.start[keep],
                       end=self.end[keep], exit_reason=self.exit_reason[keep], case_id=self.case_id[keep])

    def of_persons(self, codes) -> Timeline:
        """The timeline of these persons only, their codes renumbered ``0 ... len(codes) - 1`` in the order given.

        ``codes`` are distinct person codes. Each person's flags, features and outcomes are computed
        from the person's own rows, so they are unchanged, at the cost of these persons' rows only
        (the research study labels a few hundred people on each of thousands of days).
        """
        codes = np.asarray(codes, dtype=np.int64)
        person, rows = matches(codes, self.person)
        return replace(self, person=person.astype(self.person.dtype), inst=self.inst[rows], start=self.start[rows], end=self.end[rows],
                       exit_reason=self.exit_reason[rows], case_id=self.case_id[rows],
                       person_ids=self.person_ids.take(codes),
                       persons=self.persons.iloc[codes].reset_index(drop=True).rename_axis(self.persons.index.name),
                       merge_report=None)

    def codes_of(self, person_ids) -> np.ndarray:
        """Person codes of these pseudonyms, -1 for people not in the timeline (vectorised)."""
        return positions(self.person_ids, person_ids)

    def to_frame(self) -> pd.DataFrame:
        """The merged spells as a canonical DataFrame (open ends as NaT)."""
        reasons = np.array((*EXIT_REASONS, None), dtype=object)
        if len(self.case_ids):
            case = self.case_ids.take(np.where(self.case_id < 0, 0, self.case_id)).where(
                self.case_id >= 0, None)
        else:
            case = pd.array(np.full(len(self), None, dtype=object), dtype="str")
        return pd.DataFrame(
            {
                "person_id": self.person_ids.take(self.person),
                "institution": pd.Categorical.from_codes(self.inst.astype(np.int16), self.institutions),
                "case_id": case,
                "start_date": _time.from_days(self.start),
                "end_date": _time.from_days(self.end),
                "exit_reason": reasons[np.where(self.exit_reason < 0, len(EXIT_REASONS), self.exit_reason)],
            }
        )

    def __repr__(self) -> str:  # counts only: the pseudonyms stay out of logs and tracebacks
        when = "full data" if self.as_of is None else f"as of {_time.to_date(self.as_of)}"
        return (f"Timeline({when}, {self.mode}: {len(self):,} spells of {self.n_persons:,} persons, "
                f"{int(self.is_open().sum()):,} open, institutions {list(self.institutions)})")

    def _repr_html_(self) -> str:
        ctr = pd.Series(self.inst).map(dict(enumerate(self.institutions))).value_counts()
        when = "full data" if self.as_of is None else f"as of {_time.to_date(self.as_of)}"
        rows = "".join(f"<tr><td>{k}</td><td>{v:,}</td></tr>" for k, v in ctr.items())
        return (
            f"<b>Timeline</b> ({when}, {self.mode}): {len(self):,} spells of {self.n_persons:,} "
            f"persons, {int(self.is_open().sum()):,} open<table><tr><th>institution</th>"
            f"<th>spells</th></tr>{rows}</table>"
        )


#: From this many values on, :func:`positions` tries the binary search of :func:`_sorted_positions` (its
#: checks read every id once; a few values are looked up faster by Arrow's hash table)
_SORTED_MIN_VALUES = 10_000


def _sorted_positions(ids: pd.Index, values: pd.Index) -> np.ndarray | None:
    """:func:`positions` by binary search, where ``ids`` are sorted, distinct and every value of both sides
    has the same number of bytes, none of them 0 (pseudonyms): None where that does not hold.

    Such strings compare as numpy's fixed-width bytes, byte by byte, as Arrow sorts them.
    """
    a = fixed_width(pa.array(pd.Index(ids).astype("str").array))
    if a is None or a.shape[1] == 0 or not a.all():
        return None
    kind = f"S{a.shape[1]}"
    ka = np.ascontiguousarray(a).view(kind).ravel()
    if not (ka[1:] > ka[:-1]).all():  # ids in any other order (a night's scores): the values are not read
        return None
    b = fixed_width(pa.array(values.array))
    if b is None or b.shape[1] != a.shape[1] or not b.all():
        return None
    kb = np.ascontiguousarray(b).view(kind).ravel()
    # searched in sorted order: values in random order make every search a run of cache misses (1M values
    # among 3.7M: 1.8 s, against 0.2 s for sorting them and 0.2 s for searching in order)
    order = np.argsort(kb)
    at = np.empty(len(kb), dtype=np.int64)
    at[order] = np.minimum(np.searchsorted(ka, kb[order]), len(ka) - 1)
    return np.where(ka[at] == kb, at, -1).astype(np.int64)


def positions(ids: pd.Index, values) -> np.ndarray:
    """Position of each value in ``ids`` (distinct strings), -1 when absent.

    Like ``ids.get_indexer(values)``, but the hash table is built on the
    distinct ``values`` and ``ids`` are probed by Arrow: a few hundred
    thousand pseudonyms are looked up among millions in a fraction of a
    second, where building a table of the millions costs seconds. Many
    pseudonyms of one length among sorted ``ids`` (a timeline's) are found by
    binary search instead (:func:`_sorted_positions`).
    """
    values = pd.Index(values).astype("str")
    if len(values) == 0 or len(ids) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    sorted_hit = _sorted_positions(ids, values) if len(values) >= _SORTED_MIN_VALUES else None
    if sorted_hit is not None:
        return sorted_hit
    codes, uniq = pd.factorize(values, use_na_sentinel=True)
    found = pc.index_in(pa.array(pd.Index(ids).astype("str").array), value_set=pa.array(uniq.array))
    found = found.to_numpy(zero_copy_only=False) if found.null_count == 0 else \
        pc.fill_null(found, -1).to_numpy(zero_copy_only=False)
    hit = np.flatnonzero(found >= 0)
    where = np.full(len(uniq) + 1, -1, dtype=np.int64)
    where[found[hit]] = hit
    return where[codes]


# --------------------------------------------------------------------------- input checks
def _check_gap(value, name: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an int number of days, got {_time._shown(repr(value))}")
    if not 0 <= value <= MAX_DAYS:  # larger gaps overflow the day arithmetic
        raise ConfigError(f"{name} must be a whole number of days from 0 to {MAX_DAYS:,}, got "
                          f"{_time._shown(str(value))}")
    return int(value)


#: The date columns of the canonical spells (the schema's fields of type date).
_DATE_COLUMNS: tuple[str, ...] = tuple(load_schema("spells").names_of_type("date"))


def check_spells_frame(spells, what: str = "spells") -> None:
    """The entry check of a canonical spells frame given to a public function; O(columns), no row is read.

    A DataFrame with one level of column names, each required column present
    (and once), no date column (``start_date``, ``end_date``,
    ``recorded_date``) of numbers or true/false values: a ``datetime64``
    column (any unit, with or without a time zone) is what the fast paths
    read; ``YYYY-MM-DD`` text or date objects are converted where the column
    is read (:func:`_column_days`, which refuses text that is not a date).
    A column of numbers without a single value (:func:`empty_number_column`)
    is a date column without dates; only there are the rows read.
    Anything else is refused (:class:`ValidationError`) naming the column and
    the fix; something that is no DataFrame is a :class:`TypeError`.
    """
    if not isinstance(spells, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame of canonical rows, got {type(spells).__name__}")
    if spells.columns.nlevels > 1:
        raise ValidationError(
            f"{what}: the column names have {spells.columns.nlevels} levels (a MultiIndex); give one level of "
            "canonical names (person_id, institution, start_date, ...), e.g. with "
            "spells.columns = spells.columns.get_level_values(-1)")
    missing = [c for c in _REQUIRED if c not in spells.columns]
    if missing:
        shown = readable_columns(spells.columns)
        raise ValidationError(
            f"{what}: required column(s) {missing} missing; "
            + (f"found {shown}. " if shown is not None else "the column names found are withheld (not plain "
               "text: check the file's encoding). ")
            + "Map the export's columns onto the canonical names (data/schemas/spells.json)."
        )
    known = [c for c in dict.fromkeys((*_REQUIRED, *_DATE_COLUMNS)) if c in spells.columns]
    twice = [c for c in known if isinstance(spells[c], pd.DataFrame)]
    if twice:
        raise ValidationError(f"{what}: column(s) {twice} appear more than once; keep one of each")
    for c in _DATE_COLUMNS:
        kind = dtype_kind(spells[c].dtype) if c in spells.columns else "date"
        if kind == "number" and empty_number_column(spells[c]):  # no value at all: every date missing
            continue
        if kind in ("number", "boolean"):  # day counts? Excel serials? never read as dates by guesswork
            raise ValidationError(
                f"{what}: column {c!r} holds {'numbers' if kind == 'number' else 'true/false values'}, not "
                f"dates (dtype {spells[c].dtype}); {_DATE_FIX.format(c=c)}")


def empty_number_column(column: pd.Series) -> bool:
    """Whether ``column`` is of numbers without a single value: a ``float64`` column of NaN is what pandas makes
    of a column with nothing in it (an ``end_date`` where every spell is open). As a date column it holds
    missing dates only, and is read so (:func:`check_spells_frame`)."""
    return dtype_kind(column.dtype) == "number" and not column.notna().any()


_DATE_FIX = ("read the file with iizrisk.ingest (or iizrisk.read_spells), or convert the column with "
             "pandas.to_datetime(spells[{c!r}], format='%Y-%m-%d')")


def _column_days(spells: pd.DataFrame, column: str, *, missing: int = int(MISSING_DAY),
                 what: str = "spells") -> np.ndarray:
    """Day numbers of a date column of ``spells`` (:func:`_days`); a column of ``YYYY-MM-DD`` text or date
    objects is converted, and one that is not is refused naming the column (its values are never shown:
    a misplaced column may hold identifiers)."""
    values = spells[column]
    if isinstance(values.dtype, pd.DatetimeTZDtype):  # its local day, as ingestion reads a zoned timestamp
        values = values.dt.tz_localize(None)
    if dtype_kind(values.dtype) == "date":
        return _days(values, missing=missing)
    try:  # exactly YYYY-MM-DD: numpy's own parsing would read "2023" or a 13-digit number as a year
        return _days(pd.to_datetime(values, format="%Y-%m-%d"), missing=missing)
    except (ValueError, TypeError, OverflowError):
        raise ValidationError(
            f"{what}: column {column!r} holds values that are not dates (dtype {values.dtype}; dates as text must "
            f"be YYYY-MM-DD); {_DATE_FIX.format(c=column)}, which names the rows") from None


def _describe_rows(index: pd.Index, mask: np.ndarray, what: str, fix: str) -> str | None:
    n = int(mask.sum())
    if not n:
        return None
    labels = [str(x) for x in index[np.flatnonzero(mask)[:_MAX_SHOWN]]]
    more = f" and {n - len(labels):,} more" if n > len(labels) else ""
    return f"{n:,} row(s) {what} (index {', '.join(labels)}{more}): {fix}"


def _days(values, *, missing: int = int(MISSING_DAY)) -> np.ndarray:
    """Day numbers of a date column (:func:`iizrisk._time.to_days`, which writes int32 directly)."""
    return _time.to_days(values, missing=missing)


# --------------------------------------------------------------------------- point in time
def point_in_time(spells: pd.DataFrame, as_of) -> pd.DataFrame:
    """Canonical rows as known on the evening of ``as_of``.

    Keeps rows with ``start_date <= T``; where ``recorded_date`` exists (the
    day the row, or its end, became known), an open row recorded after T is
    left out and a closed row recorded after T is open at T. Ends after T, or
    recorded after T, become empty (open), and so do their exit reasons,
    which are not known at T.

    Parameters
    ----------
    spells : DataFrame
        Canonical registration rows.
    as_of : date-like
        The as-of date T.

    Returns
    -------
    DataFrame
        A copy holding the rows known at T.

    Examples
    --------
    >>> rows = pd.DataFrame({"person_id": ["a", "a"], "institution": ["ALV", "ALV"],
    ...                      "start_date": pd.to_datetime(["2024-01-01", "2024-03-01"]),
    ...                      "end_date": pd.to_datetime(["2024-02-29", "2024-04-30"])})
    >>> point_in_time(rows, "2024-03-15")["end_date"]  # the April end is unknown on March 15
    0   2024-02-29
    1          NaT
    Name: end_date, dtype: datetime64[us]
    """
    check_spells_frame(spells)
    t = as_of_day(as_of)
    start = _column_days(spells, "start_date")
    keep = (start <= t) & (start != MISSING_DAY)
    raw_end = (_column_days(spells, "end_date", missing=int(OPEN_END)) if "end_date" in spells.columns
               else np.full(len(spells), OPEN_END, dtype=np.int32))
    end_unknown = np.zeros(len(spells), dtype=bool)
    if "recorded_date" in spells.columns:
        keep, end_unknown = _recorded_view(keep, _column_days(spells, "recorded_date"), raw_end, t)
    out = spells.loc[keep].copy()
    if "end_date" not in out.columns:
        return out
    after = (raw_end[keep] > t) | end_unknown[keep]
    if after.any():
        given = after & (raw_end[keep] != OPEN_END)  # an empty end stays empty (in a column of float NaN too)
        if given.any():
            out.loc[given, "end_date"] = pd.NaT
        if "exit_reason" in out.columns:
            out.loc[after, "exit_reason"] = None
    return out


def _recorded_view(keep: np.ndarray, rec: np.ndarray, end: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``recorded_date`` at T: which rows are known, and which of them have an unknown end.

    ``recorded_date`` is the day the row, or its end, became known (docs/domain.md
    section 4). An open row recorded after T was not known at T: left out. A
    closed row recorded after T is the record of its end: at T the spell was
    known and still open, so it stays, with its end (and exit reason) unknown.
    (A closed row's start is taken to have been known when it started.)
    """
    late = (rec > t) & (rec != MISSING_DAY)
    is_open_row = end == OPEN_END
    keep = keep & ~(late & is_open_row)
    return keep, late & ~is_open_row


# --------------------------------------------------------------------------- building
def _lookup(uniques, allowed: tuple[str, ...]) -> np.ndarray:
    """For each unique value, its position in ``allowed`` (-1 when not allowed)."""
    pos = {v: i for i, v in enumerate(allowed)}
    return np.array([pos.get(str(u), -1) for u in uniques] + [-1], dtype=np.int32)


def build_timeline(
    spells: pd.DataFrame,
    *,
    as_of=None,
    merge_gap_days: int = 0,
    institutions: tuple[str, ...] | None = None,
    mode: str = "daily",
) -> Timeline:
    """Merge canonical rows into spells, optionally in the point-in-time view at ``as_of``.

    Rows of one person at one institution that overlap or touch become one
    spell (exact duplicates are counted separately); with ``merge_gap_days=g``
    rows separated by at most ``g`` unregistered days are merged too.

    Parameters
    ----------
    spells : DataFrame
        Canonical registration rows (``person_id``, ``institution``, ``start_date``
        required; ``end_date``, ``exit_reason``, ``recorded_date``, ``case_id`` and
        person attributes used when present). Dates as ``datetime64`` (any unit),
        ``datetime.date`` objects or ``YYYY-MM-DD`` text; a date column of numbers,
        or of text that is not a date, is refused naming the column.
    as_of : date-like, optional
        Build the point-in-time view of the evening of this day: rows starting or
        recorded later are ignored, ends after it are open (and their exit
        reasons unknown).
    merge_gap_days : int, default 0
        Rows of one person at one institution separated by at most this many
        unregistered days are merged too (0: only overlapping or touching rows).
    institutions : tuple of str, optional
        Institution codes in code order; default: the schema's codes followed by
        any other code found in the rows of the view (sorted). Rows with a code
        not in a given tuple are refused.
    mode : {"daily", "monthly"}, default "daily"
        ``"monthly"`` returns :func:`monthly_spells` of the daily timeline (BFS mode).

    Returns
    -------
    Timeline
        The merged spells; ``merge_report`` says how many rows were dropped,
        duplicated and merged.

    Raises
    ------
    ValidationError
        A required column is missing, or rows have no person, institution or
        start date, an end before their start, or an institution code not in
        ``institutions``; every problem is named at once.

    Examples
    --------
    >>> rows = pd.DataFrame({
    ...     "person_id": ["p", "p", "p", "p"],
    ...     "institution": ["SH", "SH", "SH", "SH"],
    ...     "start_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-02-01", "2024-03-05"]),
    ...     "end_date": pd.to_datetime(["2024-01-31", "2024-01-31", "2024-02-20", None]),
    ... })
    >>> tl = build_timeline(rows)  # January and February touch; March starts after a gap
    >>> tl.to_frame()[["start_date", "end_date"]]
      start_date   end_date
    0 2024-01-01 2024-02-20
    1 2024-03-05        NaT
    >>> tl.merge_report.duplicate_rows, tl.merge_report.rows_merged
    (1, 1)
    >>> len(build_timeline(rows, merge_gap_days=14))  # 13 days unregistered: merged
    1
    >>> build_timeline(rows, as_of="2024-02-10").to_frame()["end_date"].isna().tolist()
    [True]
    """
    if mode not in _MODES:
        raise ConfigError(f"mode must be one of {_MODES}, got {_time._shown(str(mode))}")
    gap = _check_gap(merge_gap_days, "merge_gap_days")
    check_spells_frame(spells)
    n_in = len(spells)
    t = None if as_of is None else as_of_day(as_of)

    start = _column_days(spells, "start_date")
    if "end_date" in spells.columns:
        end = _column_days(spells, "end_date", missing=int(OPEN_END))
    else:
        end = np.full(n_in, OPEN_END, dtype=np.int32)
    pcodes, puniq = pd.factorize(spells["person_id"])
    icodes, iuniq = pd.factorize(spells["institution"])
    pcodes = pcodes.astype(np.int64, copy=False)
    if isinstance(puniq, pd.Categorical | pd.CategoricalIndex):  # plain pseudonyms, not categories
        puniq = pd.Index(puniq.categories.take(puniq.codes)).astype("str")

    # ---- refuse rows that cannot be placed on a timeline, naming every problem
    bad_person = pcodes < 0
    bad_inst = icodes < 0
    for codes, uniq, bad in ((pcodes, puniq, bad_person), (icodes, iuniq, bad_inst)):
        blank = np.flatnonzero(pd.Series(uniq).astype("str").str.strip().eq("").to_numpy(bool))
        if len(blank):
            bad |= np.isin(codes, blank)
    bad_start = start == MISSING_DAY
    bad_end = (end < start) & ~bad_start
    problems = [
        _describe_rows(spells.index, bad_person, "without person_id",
                       "every row needs the person's pseudonym"),
        _describe_rows(spells.index, bad_inst, "without institution",
                       "every row needs an institution code"),
        _describe_rows(spells.index, bad_start, "without start_date",
                       "every row needs its first registered day"),
        _describe_rows(spells.index, bad_end, "with end_date before start_date",
                       "correct the dates or drop the rows"),
    ]
    if institutions is not None:
        institutions = tuple(str(c) for c in institutions)
        unknown = sorted({str(u) for u in iuniq if str(u).strip()} - set(institutions))
        if unknown:
            bad = np.isin(icodes, [i for i, u in enumerate(iuniq) if str(u) in unknown])
            problems.append(_describe_rows(
                spells.index, bad, f"with institution code(s) {unknown} not in {list(institutions)}",
                "add the codes to the institutions (configuration: [deployment] extra_institutions)"))
    found = [p for p in problems if p]
    if found:
        raise ValidationError("spells: cannot build the timeline: " + "; ".join(found))

    # ---- point-in-time view
    idx = None
    end_unknown = None  # closed rows whose end was recorded after T: open at T
    if t is not None:
        keep = start <= t
        if "recorded_date" in spells.columns:
            rec = _column_days(spells, "recorded_date")
            keep, end_unknown = _recorded_view(keep, rec, end, t)
        if not keep.all():
            idx = np.flatnonzero(keep)
    rows_after = 0 if idx is None else n_in - len(idx)

    def visible(a: np.ndarray) -> np.ndarray:
        return a if idx is None else a[idx]

    start, end, icodes = visible(start), visible(end), visible(icodes)
    pcodes = visible(pcodes)
    if t is not None:
        late = end > t if end_unknown is None else (end > t) | visible(end_unknown)
        end = np.where(late, OPEN_END, end).astype(np.int32)

    # ---- institution codes (extra codes: only those seen in the view)
    if institutions is None:
        seen = np.bincount(icodes, minlength=len(iuniq)) > 0
        extra = sorted({str(u) for u, s in zip(iuniq, seen, strict=True) if s} - set(DEFAULT_INSTITUTIONS))
        institutions = DEFAULT_INSTITUTIONS + tuple(extra)
    if len(institutions) > _MAX_INSTITUTIONS:
        raise ValidationError(
            f"spells: {len(institutions)} institution codes; at most {_MAX_INSTITUTIONS} are supported")
    inst = _lookup(iuniq, institutions)[icodes]

    # ---- person codes: persons of the view, in order of first appearance
    if idx is None:
        person_ids = pd.Index(puniq)
        person = pcodes
    else:
        first = np.full(len(puniq), len(pcodes), dtype=np.int64)
        np.minimum.at(first, pcodes, np.arange(len(pcodes), dtype=np.int64))
        used = np.flatnonzero(first < len(pcodes))
        used = used[np.argsort(first[used], kind="stable")]
        remap = np.full(len(puniq), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        person = remap[pcodes]
        person_ids = pd.Index(puniq.take(used))

    # ---- optional per-row columns
    reason = case = None
    case_ids = pd.Index([], dtype=object)
    if "exit_reason" in spells.columns:
        rc, ru = pd.factorize(spells["exit_reason"])
        reason = visible(_lookup(ru, EXIT_REASONS)[rc])
    if "case_id" in spells.columns:
        # codes are row positions: no hashing of ten million case numbers
        cid = spells["case_id"]
        cid = cid if cid.dtype == "str" else cid.astype("str")
        rowpos = np.where(cid.isna().to_numpy(), -1, np.arange(n_in)).astype(np.int32)
        case, case_ids = visible(rowpos), pd.Index(cid.array, copy=False)
    attrs = [c for c in _PERSON_ATTRS if c in spells.columns]
    need_perm = reason is not None or case is not None or bool(attrs)

    m = _merge(person, inst, start, end, n_inst=len(institutions), gap=gap, need_perm=need_perm)
    n_spells = len(m["start"])
    if reason is not None:
        exit_reason = np.where(m["end"] == OPEN_END, -1, reason[m["perm"][m["pick"]]])
    else:
        exit_reason = np.full(n_spells, -1)
    case_id = case[m["perm"][m["pick"]]] if case is not None else np.full(n_spells, -1)
    if attrs:
        rows = m["perm"] if idx is None else idx[m["perm"]]
        persons = _person_attributes(spells, attrs, rows, m["row_person"], m["row_start"], len(person_ids))
    else:
        persons = pd.DataFrame(index=pd.RangeIndex(len(person_ids), name="person"))

    tl = Timeline(
        person=m["person"].astype(np.int32),
        inst=m["inst"].astype(np.int8),
        start=m["start"].astype(np.int32),
        end=m["end"].astype(np.int32),
        exit_reason=exit_reason.astype(np.int8),
        case_id=case_id.astype(np.int32),
        person_ids=person_ids,
        institutions=tuple(institutions),
        case_ids=case_ids,
        persons=persons,
        as_of=t,
        merge_gap_days=gap,
    )
    n_rows = len(start)
    tl.merge_report = MergeReport(
        rows_in=n_in,
        rows_after_as_of=rows_after,
        duplicate_rows=m["duplicates"],
        rows_merged=n_rows - n_spells - m["duplicates"],
        spells=n_spells,
    )
    logger.debug("timeline: %s", tl.merge_report)
    return monthly_spells(tl) if mode == "monthly" else tl


def _merge(person, inst, start, end, *, n_inst: int, gap: int, need_perm: bool) -> dict:
    """Sort rows by (person, institution, start, end) and merge them into spells.

    Returns the spells' arrays, the row permutation (when ``need_perm``), the
    position (in sorted order) of the row holding each spell's latest end, and
    the count of exact duplicates.
    """
    n = len(start)
    person = np.asarray(person, dtype=np.int64)
    g = person * n_inst + np.asarray(inst, dtype=np.int64)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return {"person": empty, "inst": empty, "start": empty, "end": empty, "perm": empty,
                "pick": empty, "duplicates": 0, "row_person": empty, "row_start": empty}
    lo = int(start.min())
    real_end = end[end != OPEN_END]
    top = max(int(start.max()), int(real_end.max()) if len(real_end) else lo)
    open_off = top - lo + 1  # offset standing for an open end: after every real day
    s_off = start.astype(np.int64) - lo
    e_off = np.where(end == OPEN_END, open_off, end.astype(np.int64) - lo)
    bs, be, bg = int(s_off.max()).bit_length(), int(open_off).bit_length(), int(g.max()).bit_length()
    perm = key = None
    if bg + bs + be <= _PACKED_BITS:
        # one packed int64 key: np.sort is several times faster than argsort/lexsort
        key = (g << (bs + be)) | (s_off << be) | e_off
        if need_perm:
            perm = np.argsort(key, kind="stable")
            key = key[perm]
        else:
            key.sort()
        e_off = key & ((1 << be) - 1)
        s_off = (key >> be) & ((1 << bs) - 1)
        g = key >> (bs + be)
    else:  # keys too wide to pack (absurd date ranges, billions of persons)
        perm = np.lexsort((e_off, s_off, g))
        g, s_off, e_off = g[perm], s_off[perm], e_off[perm]

    new_group = np.ones(n, dtype=bool)
    new_group[1:] = g[1:] != g[:-1]
    dup = np.zeros(n, dtype=bool)
    if key is not None:  # the packed key holds (group, start, end)
        dup[1:] = key[1:] == key[:-1]
    else:
        dup[1:] = ~new_group[1:] & (s_off[1:] == s_off[:-1]) & (e_off[1:] == e_off[:-1])
    del key
    # running max of the end within each group: the group rank in the high bits keeps the
    # composite key monotone across groups, so one accumulate serves every group
    rank = (np.cumsum(new_group, dtype=np.int64) - 1) << 32
    run = np.maximum.accumulate(rank + e_off)
    new_spell = new_group.copy()
    new_spell[1:] |= s_off[1:] > run[:-1] - rank[1:] + 1 + gap
    firsts = np.flatnonzero(new_spell)
    lasts = np.r_[firsts[1:], n] - 1
    m_end = run[lasts] - rank[lasts]
    out = {
        "person": g[firsts] // n_inst,
        "inst": g[firsts] % n_inst,
        "start": s_off[firsts] + lo,
        "end": np.where(m_end == open_off, int(OPEN_END), m_end + lo),
        "duplicates": int(dup.sum()),
        "perm": perm,
    }
    if perm is not None:
        out["row_person"], out["row_start"] = g // n_inst, s_off
        spell_id = np.cumsum(new_spell) - 1
        holds_end = e_off == m_end[spell_id]
        out["pick"] = np.maximum.reduceat(np.where(holds_end, np.arange(n), -1), firsts)
    return out


_PERSON_ATTRS = ("birth_year", "sex", "nationality_group", "education", "canton")


def _person_attributes(spells: pd.DataFrame, cols: list[str], rows: np.ndarray, row_person: np.ndarray,
                       row_start: np.ndarray, n_persons: int) -> pd.DataFrame:
    """Latest known attribute values per person (by start date) among the visible rows.

    ``rows`` are the input positions of the visible rows in sorted order (by
    person first), ``row_person`` and ``row_start`` their person codes and
    start offsets.
    """
    out = pd.DataFrame(index=pd.RangeIndex(n_persons, name="person"))
    pos = np.arange(len(rows), dtype=np.int64)
    for c in cols:
        col = spells[c]
        valid = col.notna().to_numpy(dtype=bool)[rows]  # without taking the column itself
        vp = row_person[valid]
        take = np.full(n_persons, -1, dtype=np.int64)
        if len(vp):
            bounds = np.flatnonzero(np.r_[True, vp[1:] != vp[:-1]])
            # latest start wins; among equal starts the later sorted row
            best = np.maximum.reduceat((row_start[valid] << 32) | pos[valid], bounds) & 0xFFFFFFFF
            take[vp[bounds]] = rows[best]
        arr = col.array
        if (take < 0).any() and (pd.api.types.is_integer_dtype(col.dtype) or
                                 pd.api.types.is_bool_dtype(col.dtype)) and not isinstance(
                                     col.dtype, pd.api.extensions.ExtensionDtype):
            arr = col.astype("Int64" if pd.api.types.is_integer_dtype(col.dtype) else "boolean").array
        out[c] = arr.take(take, allow_fill=True)
    return out


# --------------------------------------------------------------------------- monthly mode
def monthly_spells(timeline: Timeline) -> Timeline:
    """The BFS-compatible monthly mode of a timeline.

    A calendar month counts as registered at an institution if any day of it
    is (the days of a merge gap inside a merged spell count as registered);
    a spell is a run of registered months: it starts on the first day of its
    first month and ends on the last day of its last month, or stays open.
    The last day of the month may lie after the as-of date of a point-in-time
    timeline: the month is registered, its end is the month's end.

    Parameters
    ----------
    timeline : Timeline
        Daily spells (from :func:`build_timeline`).

    Returns
    -------
    Timeline
        The monthly spells (``mode="monthly"``), with the exit reason and case
        of the last daily spell of each run.

    Examples
    --------
    >>> rows = pd.DataFrame({
    ...     "person_id": ["p", "p", "p"], "institution": ["ALV", "ALV", "ALV"],
    ...     "start_date": pd.to_datetime(["2024-01-10", "2024-02-20", "2024-05-02"]),
    ...     "end_date": pd.to_datetime(["2024-01-15", "2024-02-29", "2024-05-03"]),
    ... })
    >>> m = monthly_spells(build_timeline(rows))  # January and February: one run
    >>> m.to_frame()[["start_date", "end_date"]].astype(str).values.tolist()
    [['2024-01-01', '2024-02-29'], ['2024-05-01', '2024-05-31']]
    """
    if timeline.mode == "monthly":
        return timeline
    n = len(timeline)
    is_open = timeline.is_open()
    m_start = _time.month_index(timeline.start).astype(np.int64)
    big = np.iinfo(np.int64).max // 4
    m_end = np.where(is_open, big, _time.month_index(np.where(is_open, 0, timeline.end)).astype(np.int64))
    new_run = timeline.group_first()
    if n > 1:
        # spells of one group are disjoint and sorted, so the previous spell holds the latest end
        new_run[1:] |= m_start[1:] > m_end[:-1] + 1
    firsts = np.flatnonzero(new_run)
    lasts = np.r_[firsts[1:], n].astype(np.int64)[: len(firsts)] - 1
    end = np.where(is_open[lasts], OPEN_END, _time.month_last_day(np.where(is_open[lasts], 0, m_end[lasts])))
    r = timeline.merge_report
    n_out = len(firsts)
    report = MergeReport(
        rows_in=r.rows_in if r else n,
        rows_after_as_of=r.rows_after_as_of if r else 0,
        duplicate_rows=r.duplicate_rows if r else 0,
        rows_merged=(r.rows_merged if r else 0) + n - n_out,
        spells=n_out,
    )
    return Timeline(
        person=timeline.person[firsts],
        inst=timeline.inst[firsts],
        start=_time.month_first_day(m_start[firsts]).astype(np.int32),
        end=end.astype(np.int32),
        exit_reason=timeline.exit_reason[lasts],
        case_id=timeline.case_id[lasts],
        person_ids=timeline.person_ids,
        institutions=timeline.institutions,
        case_ids=timeline.case_ids,
        persons=timeline.persons,
        as_of=timeline.as_of,
        merge_report=report,
        merge_gap_days=timeline.merge_gap_days,
        mode="monthly",
    )
