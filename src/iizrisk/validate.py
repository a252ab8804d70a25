"""Validation of canonical tables against the schemas, collecting every problem.

A :class:`ValidationReport` lists each problem once per (file, column,
problem) with the number of rows, the first few row numbers and one example
value, and says what would fix it. It renders as text (terminal) and HTML
(Jupyter). Checks are vectorised over whole columns.

Severity ``error`` makes the rows bad (refused, or quarantined under
``errors="quarantine"``); severity ``warning`` is reported and handled
openly (exact duplicate rows are counted and merged into one spell).

Examples
--------
>>> import pandas as pd
>>> rows = pd.DataFrame({"person_id": ["p1", ""], "institution": ["ALV", "XYZ"],
...                      "start_date": pd.to_datetime(["2024-01-05", "2024-02-01"]),
...                      "end_date": pd.to_datetime(["2024-01-01", None])})
>>> report, bad = check_spells(rows, source="demo")
>>> sorted(p.problem for p in report.problems)
['empty person_id', 'end before start', 'unknown institution code']
>>> bad.tolist()
[True, True]
"""

from __future__ import annotations

import html
import re
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _time
from ._arrays import category_rows, fixed_width, integer_bits, plain_ends
from ._results import OutputFigure, OutputTable, ResultMixin
from ._threads import in_background
from .pseudonym import looks_like_ahv, rows_containing
from .schema import Schema, load_schema

__all__ = ["Problem", "ValidationReport", "check_spells", "check_table", "check_raw_identifiers",
           "check_text_cells", "check_pseudonyms", "check_canonical_values", "duplicate_mask",
           "MAX_TEXT_LENGTH", "MAX_TEXT_LENGTH_DEFAULT"]

#: longest text accepted in a cell of these columns, in characters (a case number goes into
#: every worklist; a pseudonym is 64 characters)
MAX_TEXT_LENGTH = {"case_id": 64, "person_id": 128}
#: longest text accepted in any other text column (free-text remarks included)
MAX_TEXT_LENGTH_DEFAULT = 4096

_MAX_ROWS_SHOWN = 5


@dataclass(frozen=True)
class Problem:
    """One kind of problem in one column of one source."""

    source: str
    column: str
    problem: str
    n_rows: int
    rows: tuple[int, ...]  # first few 1-based data row numbers (header excluded)
    example: str
    fix: str
    severity: str = "error"

    def to_text(self) -> str:
        rows = ", ".join(map(str, self.rows))
        more = f" and {self.n_rows - len(self.rows):,} more" if self.n_rows > len(self.rows) else ""
        where = f"rows {rows}{more}" if self.rows else "whole file"
        ex = f" (e.g. {self.example!r})" if self.example else ""
        return (f"[{self.severity}] {self.source}: column {self.column!r}: {self.problem}: "
                f"{self.n_rows:,} rows, {where}{ex}. Fix: {self.fix}")


@dataclass
class ValidationReport(ResultMixin):
    """Every problem found in one ingestion, plus row counts per source."""

    problems: list[Problem] = field(default_factory=list)
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_rejected: int = 0
    rows_quarantined: int = 0
    _row_reasons: np.ndarray | None = field(default=None, repr=False, compare=False)
    _tracked: int | None = field(default=None, repr=False, compare=False)

    def track_rows(self, n: int) -> None:
        """Start collecting, per row of the next table (length ``n``), the errors found."""
        self._row_reasons, self._tracked = None, n  # built at the first error (a clean file needs none)

    def _reasons(self) -> np.ndarray | None:
        """The row reasons being collected, built now if still empty; None when not tracking."""
        if self._row_reasons is None and self._tracked is not None:
            self._row_reasons = np.full(self._tracked, "", dtype=object)
        return self._row_reasons

    def take_row_reasons(self, *, needed: bool = True) -> np.ndarray | None:
        """The reasons collected since :meth:`track_rows` (one string per row; None without
        :meth:`track_rows`), and stop.

        ``needed=False`` only stops, returning None: a table whose rows all pass never builds them.
        """
        out = self._reasons() if needed else None
        self._row_reasons, self._tracked = None, None
        return out

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when no problem of severity ``error`` was found."""
        return not self.errors

    def extend(self, other: ValidationReport) -> None:
        self.problems.extend(other.problems)
        self.rows_read.update(other.rows_read)

    def absorb(self, other: ValidationReport) -> None:
        """Take ``other``'s problems and row reasons as if they had been added here now.

        For checks run apart (into a report of their own, tracking the same rows) whose
        problems must follow those found so far: the report reads as if run in order.
        Only the problems and row reasons are taken (not ``other``'s row counts); the row
        reasons only when both reports track the same number of rows.
        """
        self.problems.extend(other.problems)
        recorded = other._row_reasons is not None
        theirs = other.take_row_reasons(needed=recorded)
        if theirs is None or self._tracked != len(theirs):
            return
        has = np.flatnonzero(theirs != "")
        if len(has):
            mine = self._reasons()
            assert mine is not None
            sep = np.where(mine[has] == "", "", "; ").astype(object)
            mine[has] = mine[has] + sep + theirs[has]

    def add(self, source: str, column: str, problem: str, mask: np.ndarray, values=None, *,
            fix: str, severity: str = "error", rows: np.ndarray | None = None,
            show_example: bool = True) -> None:
        """Record a problem for the rows where ``mask`` is true (nothing when none)."""
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return
        numbers = (np.arange(1, len(mask) + 1) if rows is None else np.asarray(rows))[idx[:_MAX_ROWS_SHOWN]]
        example = ""
        if show_example and values is not None:
            v = values.iloc[idx[0]] if isinstance(values, pd.Series) else values[idx[0]]
            if isinstance(v, pd.Timestamp | np.datetime64) and not pd.isna(v):
                v = pd.Timestamp(v).date().isoformat()
            example = "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)[:40]
        self.problems.append(Problem(source, column, problem, int(len(idx)),
                                     tuple(int(n) for n in numbers), example, fix, severity))
        if severity == "error" and self._tracked == len(mask):
            reasons = self._reasons()
            assert reasons is not None
            sep = np.where(reasons[idx] == "", "", "; ").astype(object)
            reasons[idx] = reasons[idx] + sep + f"{column}: {problem}"

    def to_frame(self) -> pd.DataFrame:
        """One row per problem."""
        cols = ["severity", "source", "column", "problem", "n_rows", "rows", "example", "fix"]
        return pd.DataFrame([{c: getattr(p, c) for c in cols} for p in self.problems], columns=cols)

    def summary_line(self) -> str:
        total = sum(self.rows_read.values())
        return (f"{total:,} rows read from {len(self.rows_read)} source(s); "
                f"{len(self.errors)} error(s), {len(self.warnings)} warning(s); "
                f"{self.rows_rejected:,} rows rejected, {self.rows_quarantined:,} quarantined")

    def to_text(self) -> str:
        """The report for a terminal."""
        head = "Validation: OK" if self.ok else "Validation: FAILED"
        lines = [f"{head} — {self.summary_line()}"]
        lines += ["  " + p.to_text() for p in self.problems]
        return "\n".join(lines)

    # ------------------------------------------------------------------ result protocol
    @property
    def summary(self) -> pd.DataFrame:
        """One row per problem (:meth:`to_frame`)."""
        return self.to_frame()

    def _fitted(self) -> bool:
        return True

    def summary_text(self, decimals: int = 3) -> str:
        """The text that :meth:`print_summary` prints (:meth:`to_text`)."""
        return self.to_text()

    def plot(self, ax=None):
        """Rows affected per problem (horizontal bars; errors red, warnings amber); returns the axes."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(7, 1.5 + 0.3 * max(len(self.problems), 1)))
        return _draw_problems(ax, self.to_frame(), self.summary_line())

    def _output_tables(self, k: int) -> list[OutputTable]:
        """Problems and rows read per source, row counts of 1 .. k-1 hidden; no row numbers, no values."""
        from .suppression import suppress_table

        frame = self.to_frame().drop(columns=["rows", "example"])
        hidden = np.zeros(len(frame), dtype=bool)
        if len(frame):
            cells = frame.assign(cell=np.arange(len(frame)).astype(str))
            res = suppress_table(cells, "n_rows", dims=["cell"], k=k, margins=[], known_totals=False)
            hidden = (res.status != "published").to_numpy()
        frame["n_rows"] = frame["n_rows"].astype("Int64")
        frame.loc[hidden, "n_rows"] = pd.NA
        frame.insert(0, "suppressed", hidden)
        sources = pd.DataFrame({"source": list(self.rows_read), "rows_read": list(self.rows_read.values())})
        return [OutputTable("validation_problems", frame), OutputTable("validation_sources", sources)]

    def _output_figures(self, tables, language: str = "en") -> list[OutputFigure]:
        from matplotlib.figure import Figure

        frame = tables[0].frame
        fig = Figure(figsize=(7, 1.5 + 0.3 * max(len(frame), 1)))
        _draw_problems(fig.subplots(), frame, self.summary_line())
        return [OutputFigure("validation_problems", fig)]

    def to_dir(self, path, *, min_cell_size: int | None = None, plots: bool = True,
               language: str | None = None, xlsx: bool | None = None) -> list:
        """Write ``validation_problems`` and ``validation_sources`` (CSV with ``;`` and BOM, Parquet) and a plot.

        An aggregate to share: the row numbers and example values of
        :meth:`to_frame` (and of ``iizrisk validate --report``) are left out,
        and problems affecting 1 .. ``min_cell_size - 1`` rows (default 5) show
        no count.

        Parameters
        ----------
        language, xlsx : optional
            Headers in this language, and each table also as ``.xlsx``: as for
            :meth:`iizrisk._results.ResultMixin.to_dir`.
        """
        return self._write_dir(path, min_cell_size=min_cell_size, plots=plots, language=language, xlsx=xlsx)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#cf222e"
        head = "OK" if self.ok else "FAILED"
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(getattr(p, c)))}</td>" for c in
                             ["severity", "source", "column", "problem", "n_rows"])
            + f"<td>{html.escape(', '.join(map(str, p.rows)))}</td>"
            + f"<td><code>{html.escape(p.example)}</code></td><td>{html.escape(p.fix)}</td></tr>"
            for p in self.problems
        )
        table = ("<table><tr><th>severity</th><th>source</th><th>column</th><th>problem</th>"
                 "<th>rows</th><th>first rows</th><th>example</th><th>fix</th></tr>"
                 f"{rows}</table>") if self.problems else ""
        return (f"<div><b style='color:{colour}'>Validation {head}</b> — "
                f"{html.escape(self.summary_line())}{table}</div>")


def check_raw_identifiers(df: pd.DataFrame, report: ValidationReport, source: str,
                          rows: np.ndarray | None = None, *, fix: str | None = None) -> list[str]:
    """Record every column holding AHV-shaped values; return their names.

    The example value is never shown: it would be the raw identifier. ``fix`` replaces the
    default advice (pseudonymise at the source).
    """
    found = []
    for col in df.columns:
        mask = looks_like_ahv(df[col])
        if mask.any():
            found.append(str(col))
            report.add(source, str(col), "values shaped like AHV numbers (raw identifiers)", mask,
                       fix=fix or "pseudonymise at the source with `iizrisk pseudonymise` and drop the raw "
                                  "column; raw identifiers are never processed",
                       rows=rows, show_example=False)
    return found


def _large_strings(values: pd.Series | pd.Index) -> pa.ChunkedArray:
    """Text values as Arrow ``large_string`` from their own Arrow buffers (typed also when empty)."""
    arr = pa.array(pd.Index(values).astype("str").array)
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    return pa.chunked_array([c.cast(pa.large_string()) for c in chunks], type=pa.large_string())


def _text_of(col: pd.Series) -> tuple[pa.ChunkedArray | None, np.ndarray | None]:
    """A text column as Arrow ``large_string`` (a categorical: its categories, and the codes)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = col.cat.categories
        if not (pd.api.types.is_string_dtype(cats.dtype) or cats.dtype == object):
            return None, None
        # the categories' own Arrow buffers, not a round trip through Python objects (3.7M pseudonyms: 1 s)
        return _large_strings(cats), col.cat.codes.to_numpy()
    if not (pd.api.types.is_string_dtype(col.dtype) or col.dtype == object):
        return None, None
    return _large_strings(col), None


def check_text_cells(df: pd.DataFrame, report: ValidationReport, source: str, rows: np.ndarray | None = None,
                     *, limits: dict[str, int] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """NUL bytes and overlong values in every text column, as errors.

    A NUL byte anywhere in a value (not only in the first kilobytes of a file)
    is refused: other programs end the text there. Values longer than
    :data:`MAX_TEXT_LENGTH` (``case_id`` 64 characters, ``person_id`` 128) or
    :data:`MAX_TEXT_LENGTH_DEFAULT` (4,096) characters are refused. Vectorised:
    a byte scan of the Arrow buffers and Arrow's ``utf8_length``; a categorical
    column is checked on its categories. No value is shown.

    Returns the bad rows and, per column, the cells a quarantine file must not show.
    """
    limits = {**MAX_TEXT_LENGTH, **(limits or {})}
    bad = np.zeros(len(df), dtype=bool)
    withhold: dict[str, np.ndarray] = {}
    for name in df.columns:
        arr, codes = _text_of(df[name])
        if arr is None:
            continue
        nul = np.zeros(len(arr), dtype=bool)
        nul[rows_containing(arr, b"\x00")] = True
        limit = limits.get(str(name), MAX_TEXT_LENGTH_DEFAULT)
        long_ = _longer_than(arr, limit)
        nul, long_ = category_rows(nul, codes), category_rows(long_, codes)
        report.add(source, str(name), "NUL byte in the text", nul, rows=rows, show_example=False,
                   fix="remove control characters at the source (a NUL byte ends the text in other programs); "
                       "check the export's encoding (UTF-16 needs encoding = 'utf-16')")
        report.add(source, str(name), f"text longer than {limit:,} characters", long_, rows=rows,
                   show_example=False, fix=f"correct the value at the source; {name!r} takes at most {limit:,} "
                                           "characters (is a column shifted or a free-text field mapped here?)")
        cells = nul | long_
        if cells.any():
            withhold[str(name)] = cells
            bad |= cells
    return bad, withhold


def _longer_than(arr: pa.ChunkedArray, limit: int) -> np.ndarray:
    """Values of more than ``limit`` characters (missing: False).

    A value has at least as many bytes as characters, so only values of more than ``limit``
    bytes are counted in characters (read from the offsets alone; ten million values without
    one too long are never decoded).
    """
    over = pc.fill_null(pc.greater(pc.binary_length(arr), limit), False)
    if pc.any(over).as_py():
        over = pc.and_(over, pc.fill_null(pc.greater(pc.utf8_length(arr), limit), False))
    return np.asarray(over.to_numpy(zero_copy_only=False), dtype=bool)


#: The pattern of fixed-length lower-case hexadecimal pseudonyms (the default ``[0-9a-f]{64}``).
_HEX_PATTERN = re.compile(r"\[0-9a-f\]\{([1-9][0-9]{0,3})\}")
_HEX_BLOCK = 1 << 14  # rows per block: a block's words and masks stay in the cache


def _every_byte(b: int) -> np.uint64:
    return np.uint64(int.from_bytes(bytes([b]) * 8, "little"))


# Each lane (byte) of a word is tested at once: for a byte below 0x80, adding 0x80 - lo sets its high
# bit exactly when it is >= lo, and adding 0x7F - hi leaves it clear exactly when it is <= hi, with no
# carry into the next lane. A byte of 0x80 or more never passes either range (both sums have the high
# bit set, or the first wraps past 0xFF), so the lanes a carry from it may spoil are in a row that fails.
_HIGH = _every_byte(0x80)
_RANGES = [(_every_byte(0x80 - ord(lo)), _every_byte(0x7F - ord(hi))) for lo, hi in (("0", "9"), ("a", "f"))]


def _hex_rows(data: np.ndarray) -> np.ndarray:
    """Rows of a byte matrix whose bytes are all ``0-9a-f``, eight bytes per word where the width allows."""
    n, width = data.shape
    ok = np.empty(n, dtype=bool)
    if width % 8:
        zero, a = np.uint8(ord("0")), np.uint8(ord("a"))
        for i in range(0, n, _HEX_BLOCK):
            d = data[i: i + _HEX_BLOCK]
            # unsigned bytes wrap around: b - 48 < 10 exactly for "0".."9", b - 97 < 6 for "a".."f"
            ok[i: i + _HEX_BLOCK] = (((d - zero) < 10) | ((d - a) < 6)).all(axis=1)
        return ok
    words = data.view(np.uint64)
    hit, lane, tmp = (np.empty((min(n, _HEX_BLOCK), width // 8), dtype=np.uint64) for _ in range(3))
    for i in range(0, n, _HEX_BLOCK):
        x = words[i: i + _HEX_BLOCK]
        h, t, u = hit[: len(x)], lane[: len(x)], tmp[: len(x)]
        h.fill(0)  # the rows found in either range
        for above_lo, above_hi in _RANGES:  # h |= (x + above_lo) & ~(x + above_hi)
            np.add(x, above_lo, out=t)
            np.add(x, above_hi, out=u)
            np.invert(u, out=u)
            np.bitwise_and(t, u, out=t)
            np.bitwise_or(h, t, out=h)
        np.bitwise_and(h, _HIGH, out=h)
        ok[i: i + len(x)] = (h == _HIGH).all(axis=1)
    return ok


def _hex_fullmatch(arr: pa.ChunkedArray, n: int) -> np.ndarray | None:
    """``[0-9a-f]{n}`` in full, read from the Arrow buffers; None unless every value is present and n bytes long.

    The values' bytes (:func:`iizrisk._arrays.fixed_width`) are compared with the two ranges in
    blocks of rows, eight bytes at a time (:func:`_hex_rows`): a fraction of RE2's time on millions
    of pseudonyms (3.7M: 0.12 s; byte by byte 0.25 s, a lookup table 0.45 s). Anything else (a
    missing or shorter value) returns None and RE2 decides.
    """
    data = fixed_width(arr)
    if data is None or (len(data) and data.shape[1] != n):
        return None
    return _hex_rows(data)


def _fullmatch(arr: pa.ChunkedArray, pattern: str) -> np.ndarray:
    """Values matching ``pattern`` in full: Arrow's RE2, or Python's ``re`` where RE2 cannot compile it.

    The default pseudonym pattern ``[0-9a-f]{N}`` is checked on the bytes (:func:`_hex_fullmatch`).
    """
    hexa = _HEX_PATTERN.fullmatch(pattern)
    fast = _hex_fullmatch(arr, int(hexa.group(1))) if hexa is not None else None
    if fast is not None:
        return fast
    try:
        got = pc.match_substring_regex(arr, f"^(?:{pattern})$")
        return np.asarray(pc.fill_null(got, False).to_numpy(zero_copy_only=False), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        rx = re.compile(pattern)  # lookarounds, back references: the distinct values one by one
        return np.array([v is not None and rx.fullmatch(v) is not None for v in arr.to_pylist()], dtype=bool)


def check_pseudonyms(col: pd.Series, pattern: str, report: ValidationReport, source: str,
                     rows: np.ndarray | None = None, *, column: str = "person_id") -> np.ndarray:
    """Rows whose person id does not match ``pattern`` in full (missing ids are left to the schema check).

    Checked on the distinct values. Values in upper or mixed case that would
    match in lower case are reported apart: they would not link with the same
    person's lower-case pseudonym at other institutions. No value is shown.
    Returns the bad rows.

    >>> report = ValidationReport()
    >>> ids = pd.Series(["a" * 64, "A" * 64, "Muster Hans", None])
    >>> check_pseudonyms(ids, "[0-9a-f]{64}", report, "demo").tolist()
    [False, True, True, False]
    >>> [p.problem for p in report.problems]
    ['person_id in upper or mixed case', 'person_id is not a pseudonym']
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        cats = col.cat.categories
    else:
        codes, cats = pd.factorize(col, use_na_sentinel=True)
    # the distinct values' own Arrow buffers (through Python objects, 3.7M pseudonyms took 2 s)
    arr = _large_strings(cats)
    ok = _fullmatch(arr, pattern)
    case = ~ok & _fullmatch(pc.utf8_lower(arr), pattern) if not ok.all() else np.zeros(len(ok), dtype=bool)
    other = ~ok & ~case
    fix = ("pseudonymise at the source with `iizrisk pseudonymise` (64 lower-case hexadecimal characters), "
           f"or set [deployment] pseudonym_pattern (now {pattern!r}) if this deployment's pseudonyms differ")
    case_rows, other_rows = category_rows(case, codes), category_rows(other, codes)
    report.add(source, column, f"{column} in upper or mixed case", case_rows, rows=rows, show_example=False,
               fix="write pseudonyms in lower case at the source: the same person's pseudonym in another "
                   "case would not link across institutions; " + fix)
    report.add(source, column, f"{column} is not a pseudonym", other_rows, rows=rows, show_example=False,
               fix="a name, a birth date or a local number is no pseudonym; " + fix)
    return case_rows | other_rows


def check_table(df: pd.DataFrame, schema: Schema, *, source: str, report: ValidationReport | None = None,
                rows: np.ndarray | None = None, extra_enum: dict[str, list[str]] | None = None,
                today: pd.Timestamp | None = None, unparsed: dict[str, np.ndarray] | None = None,
                ) -> tuple[ValidationReport, np.ndarray]:
    """Check a typed table against a schema; return the report and the mask of bad rows.

    Checks required columns, empty required values, enumerations, numeric
    ranges and plausible dates. Parsing problems (unparseable dates, numbers)
    are recorded by the reader, which knows the raw text; ``unparsed`` names,
    per column, the rows it already reported, so that they are not reported
    again as empty.
    """
    report = report if report is not None else ValidationReport()
    bad = np.zeros(len(df), dtype=bool)
    missing = [c for c in schema.required if c not in df.columns]
    if missing:
        report.problems.append(Problem(
            source, ", ".join(missing), "required column missing", len(df), (), "",
            f"map the export's column onto {missing} in the source's [sources.columns] table; "
            f"columns found: {[str(c) for c in df.columns][:12]}"))
        return report, np.ones(len(df), dtype=bool)
    lo_date, years_after = schema.plausible_dates()
    today = today or pd.Timestamp.today().normalize()
    date_lo, date_hi = _time.day(lo_date), _time.day(today + pd.DateOffset(years=years_after))
    extra_enum = extra_enum or {}
    for f in schema.fields:
        if f.name not in df.columns:
            continue
        col = df[f.name]
        na = col.isna().to_numpy()
        if f.required:
            empty = na | (_blank(col) if f.type == "string" else na)
            if unparsed and f.name in unparsed:
                empty &= ~unparsed[f.name]
            report.add(source, f.name, f"empty {f.name}", empty, fix=f"every row needs a {f.name}",
                       rows=rows)
            bad |= empty
        if f.enum is not None:
            allowed = list(f.enum) + list(extra_enum.get(f.name, []))
            outside = ~na & ~_isin(col, allowed)
            label = "unknown institution code" if f.name == "institution" else f"value outside {f.name} codes"
            fix = (f"use one of {allowed}" + ("; map local codes in [sources.values.institution] or add "
                   "the code to [deployment] extra_institutions" if f.name == "institution" else
                   f"; map local values in [sources.values.{f.name}]"))
            report.add(source, f.name, label, outside, col, fix=fix, rows=rows)
            bad |= outside
        if f.type in {"integer", "number"} and (f.minimum is not None or f.maximum is not None):
            num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            out = np.zeros(len(df), dtype=bool)
            if f.minimum is not None:
                out |= num < f.minimum
            if f.maximum is not None:
                out |= num > f.maximum
            report.add(source, f.name, f"value outside [{f.minimum}, {f.maximum}]", out, col,
                       fix="correct the value or leave it empty", rows=rows)
            bad |= out
        if f.type == "date":
            d = _time.to_days(col)
            present = d != _time.MISSING_DAY
            out = present & ((d < date_lo) | (d > date_hi))
            fix = "correct the date; check the date format of the source"
            if f.name == "end_date":  # 9999-12-31, 2099-12-31: an "open" sentinel closes the row in the past
                fix += "; leave the end empty for an open registration (not a far-future date such as 9999-12-31)"
            report.add(source, f.name, f"implausible date (before {lo_date} or more than "
                       f"{years_after} year(s) after today)", out, col, fix=fix, rows=rows)
            bad |= out
    return report, bad


#: the columns :func:`check_canonical_values` checks: what changes a point-in-time result when wrong
_CANONICAL_VALUE_COLUMNS = ("institution", "start_date", "end_date", "recorded_date", "birth_year")


def check_canonical_values(df: pd.DataFrame, *, source: str, report: ValidationReport | None = None,
                           extra_institutions: list[str] | None = None, today: pd.Timestamp | None = None,
                           ) -> tuple[ValidationReport, np.ndarray]:
    """The value checks of :func:`check_spells` that the fast path (:func:`iizrisk.io.read_canonical`) needs.

    Institution codes outside the schema's list and ``extra_institutions``, implausible dates (such
    as the "still open" sentinel 9999-12-31 in ``end_date``) and birth years out of range, with
    the same problems and fixes as ``iizrisk validate``, and an end before the start; empty values
    are left to the timeline, which names them. Vectorised: a categorical is checked on its
    categories. Row numbers are 1-based positions in ``df``.
    """
    import dataclasses

    schema = load_schema("spells")
    fields = tuple(dataclasses.replace(f, required=False) for f in schema.fields
                   if f.name in _CANONICAL_VALUE_COLUMNS and f.name in df.columns)
    sub = Schema(schema.name, schema.title, fields, schema.raw)
    report, bad = check_table(df, sub, source=source, report=report,
                              extra_enum={"institution": list(extra_institutions or [])}, today=today)
    bad |= _end_before_start(df, report, source, None)
    return report, bad


def _end_before_start(df: pd.DataFrame, report: ValidationReport, source: str, rows: np.ndarray | None) -> np.ndarray:
    """Rows whose end_date lies before their start_date, reported as an error (none without both columns)."""
    if not all(c in df.columns for c in ("start_date", "end_date")):
        return np.zeros(len(df), dtype=bool)
    s, e = _time.to_days(df["start_date"]), _time.to_days(df["end_date"])
    before = (s != _time.MISSING_DAY) & (e != _time.MISSING_DAY) & (e < s)
    report.add(source, "end_date", "end before start", before, df["end_date"],
               fix="correct the dates (end_date is the last day registered, inclusive)", rows=rows)
    return before


def _blank(col: pd.Series) -> np.ndarray:
    """Rows whose text is empty after stripping (a categorical is checked on its categories); missing: False."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = pd.Index(col.cat.categories)
        on_cats = np.zeros(len(cats), dtype=bool) if cats.dtype == "str" and plain_ends(_large_strings(cats)) \
            else np.asarray(cats.astype("str").str.strip() == "", dtype=bool)
        return category_rows(on_cats, col.cat.codes.to_numpy())
    if pd.api.types.is_string_dtype(col.dtype) and col.dtype != object and plain_ends(_large_strings(col)):
        return np.zeros(len(col), dtype=bool)  # no value begins or ends with white space: none is blank
    return (col.astype("str").str.strip() == "").to_numpy(dtype=bool, na_value=False)


def _duplicates_in_background(df: pd.DataFrame) -> Future[np.ndarray] | None:
    """:func:`duplicate_mask` of typed spells, computed in a second thread; None when ``df`` is
    empty or lacks a required column (then :func:`check_spells` reports that instead).

    Its sort and hashing release the GIL, so other checks of the same rows run meanwhile;
    ``df`` must not change until ``.result()`` has been read.
    """
    if not len(df) or not all(c in df.columns for c in load_schema("spells").required):
        return None
    return in_background(duplicate_mask, df, name="duplicates")


#: what to do when the spells have no ``end_date`` column (the contract allows it: every spell open)
NO_END_DATE_FIX = ("map the export's end column onto end_date (in [sources.columns], or when writing the "
                   "canonical file); leave it out only if every registration is still open")
NO_END_DATE = f"no end_date column: every spell is treated as still open at the export; {NO_END_DATE_FIX}"


def check_spells(df: pd.DataFrame, *, source: str = "<DataFrame>", report: ValidationReport | None = None,
                 rows: np.ndarray | None = None, extra_institutions: list[str] | None = None,
                 today: pd.Timestamp | None = None, unparsed: dict[str, np.ndarray] | None = None,
                 duplicates: Future[np.ndarray] | None = None) -> tuple[ValidationReport, np.ndarray]:
    """Check typed canonical spells: the schema checks plus end before start.

    Returns the report and the mask of bad rows (severity ``error``).
    Exact duplicate rows are reported as a warning (they merge into one spell);
    ``duplicates`` is their search started earlier on the same ``df``
    (:func:`_duplicates_in_background`), else it starts here, beside the column checks.
    """
    schema = load_schema("spells")
    if duplicates is None:
        duplicates = _duplicates_in_background(df)
    report, bad = check_table(df, schema, source=source, report=report, rows=rows,
                              extra_enum={"institution": extra_institutions or []}, today=today,
                              unparsed=unparsed)
    if "end_date" not in df.columns:  # allowed by the contract, but usually a column the mapping missed
        report.add(source, "end_date", "column missing: every spell is treated as still open at the export",
                   np.ones(len(df), dtype=bool), fix=NO_END_DATE_FIX, severity="warning", rows=rows,
                   show_example=False)
    bad |= _end_before_start(df, report, source, rows)
    if duplicates is not None:
        report.add(source, "(all columns)", "exact duplicate rows", duplicates.result(),
                   fix="none needed: duplicates are merged into one spell; check the export if many",
                   severity="warning", rows=rows, show_example=False)
    return report, bad


def _isin(col: pd.Series, allowed: list) -> np.ndarray:
    """``col.isin(allowed)`` as a boolean array; a categorical's categories are looked up, not its rows."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return category_rows(np.asarray(col.cat.categories.isin(allowed), dtype=bool), col.cat.codes.to_numpy())
    return np.asarray(col.isin(allowed).to_numpy(), dtype=bool)


def _column_codes(col: pd.Series) -> np.ndarray:
    """Integer codes with equal values <=> equal codes (missing values share one code)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.codes.to_numpy()  # int8/int16/int32: mixed and compared as they are
    if pd.api.types.is_datetime64_any_dtype(col):
        return col.to_numpy(dtype="datetime64[s]").view(np.int64)
    if pd.api.types.is_integer_dtype(col):
        bits = integer_bits(col.dtype)
        if bits is not None and bits <= 32:
            # missing: a code no value of 32 bits or fewer can take (one pass instead of three through floats)
            codes = col.to_numpy(dtype=np.int64, na_value=0)  # 0 first: it fits every backend's own type
            codes = codes if codes.flags.writeable else codes.copy()
            codes[col.isna().to_numpy(dtype=bool)] = np.iinfo(np.int64).min
            return codes
        # wider integers: exact (through floats, two values above 2**53 could share a code)
    elif pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        v = col.to_numpy(dtype=float, na_value=np.nan) + 0.0  # -0.0 + 0.0 is 0.0: equal zeros, equal codes
        return np.where(np.isnan(v), np.inf, v).view(np.int64)
    return pd.factorize(col, use_na_sentinel=True)[0].astype(np.int64)


def _is_text(col: pd.Series) -> bool:
    return not isinstance(col.dtype, pd.CategoricalDtype) and (
        col.dtype == object or pd.api.types.is_string_dtype(col.dtype))


def _mix(codes: list[np.ndarray], n: int) -> np.ndarray:
    """A 64-bit hash of each row's codes (integers of any width, read as unsigned of the same width).

    Two passes a column, ``h = (h ^ c) * K`` (an odd K carries every bit upwards), and one final
    avalanche, so that the upper half depends on every bit: at ten million rows a pass costs as
    much as the arithmetic, and the duplicate search runs beside the other checks.
    """
    h = np.full(n, 0x243F6A8885A308D3, dtype=np.uint64)
    tmp = np.empty(n, dtype=np.uint64)
    k = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for c in codes:
            c = np.ascontiguousarray(c)
            np.bitwise_xor(h, c.view(f"u{c.dtype.itemsize}") if c.dtype.kind == "i" else c, out=h)
            np.multiply(h, k, out=h)
        np.right_shift(h, np.uint64(29), out=tmp)  # the avalanche: h = (h ^ h >> 29) * K
        np.bitwise_xor(h, tmp, out=h)
        np.multiply(h, k, out=h)
    return h


def _shared(h: np.ndarray) -> np.ndarray:
    """Positions of the values of ``h`` (unsigned integers) that occur more than once
    (as ``duplicated(keep=False)``).

    By sorting, not hashing: the sorted values' equal neighbours are the shared values (usually
    few). A bitmap of their low 24 bits sieves the positions, and binary search confirms the few
    that pass: a binary search of every position took seconds once thousands of values were shared.
    """
    s = np.sort(h)
    shared = np.unique(s[1:][s[1:] == s[:-1]])
    if not len(shared):
        return np.zeros(0, dtype=np.int64)
    low = h.dtype.type((1 << 24) - 1)
    sieve = np.zeros(1 << 24, dtype=bool)
    sieve[shared & low] = True
    maybe = np.flatnonzero(sieve[h & low])
    hm = h[maybe]
    at = np.searchsorted(shared, hm)
    at[at == len(shared)] = 0
    return maybe[shared[at] == hm]


def duplicate_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows identical in every column to an earlier row (as ``df.duplicated()``, missing equal to missing).

    Vectorised: the columns that are already integers (categorical codes, dates,
    numbers) are mixed into a 64-bit hash; only rows sharing its upper 32 bits with another
    row are candidates (a collision only adds a candidate). Free-text columns
    (case numbers: hashing ten million strings costs seconds) are coded on the
    candidates only, which are then sorted on every column's codes and compared
    with their neighbours, exactly.
    """
    n = len(df)
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    text = [c for c in df.columns if _is_text(df[c])]
    cheap = [c for c in df.columns if c not in text]
    cand = np.arange(n)
    if cheap:
        h = _mix([_column_codes(df[c]) for c in cheap], n)
        # the hash's upper 32 bits: they sort in half the time, and 10M rows add only about 12,000
        # pairs of chance candidates, which the exact comparison below sets apart
        cand = _shared((h >> np.uint64(32)).astype(np.uint32))
    if len(cand) < 2:
        return out
    sub = df.iloc[cand]
    codes = [_column_codes(sub[c]) for c in df.columns]
    order = np.lexsort(codes[::-1])  # exact: equal rows adjacent, in input order (the first is kept)
    same = np.ones(len(cand) - 1, dtype=bool)
    for c in codes:
        same &= c[order][1:] == c[order][:-1]
    out[cand[order[1:][same]]] = True
    return out


def _draw_problems(ax, frame: pd.DataFrame, title: str):
    """Horizontal bars of the rows affected per problem (suppressed counts drawn as empty)."""
    labels = [f"{r.source}: {r.column}: {r.problem}" for r in frame.itertuples()]
    n = pd.to_numeric(frame["n_rows"], errors="coerce").astype("float64").fillna(0).to_numpy() if len(frame) \
        else np.zeros(0)
    colours = ["#cf222e" if s == "error" else "#bf8700" for s in frame.get("severity", [])]
    y = np.arange(len(frame))[::-1]
    if len(frame):
        ax.barh(y, n, color=colours)
        ax.set_yticks(y, labels, fontsize="small")
    else:
        ax.text(0.5, 0.5, "no problems found", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("rows affected (errors red, warnings amber; hidden counts empty)")
    ax.set_title(title, fontsize="small")
    return ax
