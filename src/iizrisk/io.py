"""Reading institution exports into one canonical spells table (writing is :mod:`iizrisk.store`).

Sources are CSV files as Swiss exports come (``;`` or ``,`` separators, UTF-8
with or without BOM or Windows-1252, ``dd.mm.yyyy`` or ISO dates, decimal
comma, quoted fields), Parquet files, folders of either, or DataFrames. A
deployment configuration (:class:`iizrisk.config.Settings`) maps each
source's columns and values onto the canonical form (``data/schemas``).

Every problem is collected into one :class:`~iizrisk.validate.ValidationReport`.
With ``errors="raise"`` (default) any error refuses the whole input and
nothing is returned; with ``errors="quarantine"`` bad rows are set aside in
:attr:`Ingestion.quarantine` with their reasons and the good rows continue.

What is refused, whatever the configuration:

- values shaped like AHV numbers in any column, in any spelling
  (:func:`iizrisk.pseudonym.looks_like_ahv`), and AHV numbers in a file name,
  a folder name or a column header (refused without naming them:
  "source 'alv', file #2 (name withheld ...)"); in every mode;
- a ``person_id`` that does not match the pseudonym pattern in full: the
  deployment's ``[deployment] pseudonym_pattern`` (default ``[0-9a-f]{64}``,
  what ``iizrisk pseudonymise`` writes), also for a file or DataFrame read
  without settings unless ``pseudonym_pattern=None`` is passed (toy ids such
  as ``"p12"`` in examples and tests); surrounding white space is stripped first;
- an institution code the source may not emit: ``[[sources]] institutions``,
  default ``[institution]`` for a constant-institution source; a source that
  maps an export column onto ``institution`` must list its codes (a
  :class:`~iizrisk.errors.ConfigError` otherwise), while a source already in
  canonical form (an ``institution`` column not mapped) may hold every code the
  deployment knows;
- NUL bytes anywhere in a text value; text longer than 64 characters in
  ``case_id``, 128 in ``person_id`` and 4,096 in any other column
  (:data:`iizrisk.validate.MAX_TEXT_LENGTH`);
- a header naming a column twice (pandas would rename the second one and
  ignore it), or two export columns mapped onto one canonical column;
- a path that is not a regular file (a named pipe, a device such as
  ``/dev/zero``): it could block or never end.

Quarantine files never show a refused value: cells that are too long, hold
a NUL byte or are not pseudonyms are replaced by ``<withheld: ...>``.

Examples
--------
>>> import pandas as pd
>>> raw = pd.DataFrame({"person_id": ["p1", "p1"], "institution": ["ALV", "SH"],
...                     "start_date": ["01.02.2024", "2024-03-01"], "end_date": ["", "31.03.2024"]})
>>> spells = read_spells(raw, pseudonym_pattern=None)  # toy ids, not pseudonyms
>>> spells[["institution", "start_date"]].astype(str).values.tolist()
[['ALV', '2024-02-01'], ['SH', '2024-03-01']]
>>> str(spells["start_date"].dtype)
'datetime64[s]'
>>> spells["person_id"].cat.codes.tolist()  # pseudonyms are hashed once, then integer codes
[0, 0]
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import glob
import io as _io
import logging
import os
import re
import stat
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pandas.api.types import union_categoricals

from ._arrays import filter_strings, plain_ends, string_order
from ._files import file_kind, read_regular
from ._threads import in_background
from ._time import NAT_TICKS, TICKS_PER_SECOND
from .config import DeploymentSettings, Settings, SourceConfig
from .errors import ConfigError, OperatingSystemError, RawIdentifierError, ValidationError
from .pseudonym import looks_like_ahv
from .schema import Schema, institution_extension, load_schema
from .store import sha256_bytes, sha256_file
from .validate import (
    NO_END_DATE,
    Problem,
    ValidationReport,
    _duplicates_in_background,
    _isin,
    check_pseudonyms,
    check_raw_identifiers,
    check_spells,
    check_table,
    check_text_cells,
)

__all__ = [
    "Ingestion",
    "ingest",
    "read_spells",
    "read_interventions",
    "read_corrections",
    "read_canonical",
    "read_csv_text",
    "to_canonical_dtypes",
    "as_category",
    "encode_pseudonyms",
    "check_header",
    "DEFAULT_PSEUDONYM_PATTERN",
]

logger = logging.getLogger("iizrisk")

_SEPARATORS = (";", ",", "\t", "|")
_TRUE = {"true", "1", "yes", "ja", "oui", "si", "sì", "wahr", "j", "y"}
_FALSE = {"false", "0", "no", "nein", "non", "falsch", "n"}
_BINARY_MAGIC = (b"PK\x03\x04", b"%PDF", b"PAR1", b"\x89PNG", b"\xd0\xcf\x11\xe0", b"\x1f\x8b")
#: byte-order marks, longest first (a UTF-32 LE mark starts like a UTF-16 LE one)
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
#: the pattern of ``iizrisk pseudonymise``'s output, used when no settings are given
DEFAULT_PSEUDONYM_PATTERN = DeploymentSettings().pseudonym_pattern
_DEFAULT = object()  # "not given"


@dataclass
class Ingestion:
    """The result of reading sources: canonical spells, the report, set-aside rows.

    Attributes
    ----------
    spells : canonical spells (one row per input row that passed validation).
    report : every problem found, with row counts per source.
    quarantine : rows set aside under ``errors="quarantine"``: the values of
        their schema columns as text (free-text and unknown columns are left
        out, so that nothing unchecked is published) plus ``_source``, ``_row``
        (1-based data row) and ``_reason``.
    files : one row per file read: source, path, SHA-256, rows, seconds.
    interventions : the deployment's ``[deployment] interventions`` file, read
        with :func:`read_interventions` (validated, AHV-guarded, person ids
        checked against the deployment's pseudonym pattern); None when not
        configured or when the source is not a deployment configuration.
    corrections : the audit trail of the deployment's ``[deployment] corrections``
        (:mod:`iizrisk.corrections`): one row per correction with its ``status``
        (applied, in_export, conflict, unmatched, ambiguous); None when not
        configured. :attr:`correction_counts` counts them per status.
    """

    spells: pd.DataFrame
    report: ValidationReport
    quarantine: pd.DataFrame = field(default_factory=pd.DataFrame)
    files: pd.DataFrame = field(default_factory=pd.DataFrame)
    interventions: pd.DataFrame | None = None
    corrections: pd.DataFrame | None = None

    @property
    def correction_counts(self) -> dict[str, int]:
        """Corrections per status (:data:`iizrisk.corrections.STATUSES`; zeros without corrections)."""
        from .corrections import correction_counts

        return correction_counts(self.corrections)

    def _repr_html_(self) -> str:
        return (f"<div><b>Ingestion</b>: {len(self.spells):,} canonical rows from "
                f"{len(self.files)} file(s); {len(self.quarantine):,} quarantined</div>"
                + self.report._repr_html_())


# --------------------------------------------------------------------------- CSV
def read_csv_text(path: str | Path, *, separator: str | None = None, encoding: str | None = None,
                  source: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Read a CSV export as text columns, detecting encoding and separator.

    Returns the table (every column as string, empty cells missing) and what
    was detected (``encoding``, ``separator``). A byte-order mark selects
    UTF-8, UTF-16 or UTF-32; ``encoding = "utf-16"`` reads UTF-16 without one.
    Raises :class:`~iizrisk.errors.ValidationError` for a path that is not a
    regular file, an empty file, a binary file, a header naming a column
    twice, or a file the CSV parser cannot read, naming the file, and
    :class:`~iizrisk.errors.RawIdentifierError` for a header holding an AHV
    number (not named).
    """
    path = Path(path)
    name = source or str(path)
    return _csv_from_bytes(_read_regular(path, name), separator=separator, encoding=encoding, name=name)


def _csv_from_bytes(data: bytes, *, separator: str | None, encoding: str | None,
                    name: str) -> tuple[pd.DataFrame, dict]:
    if not data.strip():
        raise ValidationError(f"{name}: the file is empty; export it again with a header row and data")
    bom = next((enc for mark, enc in _BOMS if data.startswith(mark)), None)
    wide = _is_wide(bom) or (encoding is not None and _is_wide(encoding))
    if data.startswith(_BINARY_MAGIC) or (not wide and b"\x00" in data[:8192]):
        raise ValidationError(
            f"{name}: this is not a CSV file (binary content); export the data as CSV text or "
            "Parquet and check the source's path and format in the configuration (a UTF-16 export "
            "without byte-order mark needs encoding = 'utf-16')")
    text, enc = _decode(data, encoding, name, bom)
    if not text.strip():
        raise ValidationError(f"{name}: the file is empty; export it again with a header row and data")
    header = text.split("\n", 1)[0]
    sep = separator or _sniff_separator(header)
    if separator and _count_outside_quotes(header, separator) == 0:
        other = _sniff_separator(header)
        hint = f"; the header looks separated by {other!r}" if _count_outside_quotes(header, other) else ""
        raise ValidationError(
            f"{name}: separator {separator!r} is configured but the header holds none{hint}; "
            f"set separator = {other!r} for this source (or remove the setting to detect it)")
    try:
        cells = next(csv.reader(_io.StringIO(text), delimiter=sep), [])
    except csv.Error:
        cells = header.split(sep)
    check_header([c.strip() for c in cells], name)  # before pandas renames a repeated column 'X.1'
    try:
        df = pd.read_csv(_io.StringIO(text), sep=sep, dtype="str", keep_default_na=False,
                         na_values=[""], skipinitialspace=False, engine="c")
    except (pd.errors.ParserError, ValueError) as exc:
        raise ValidationError(f"{name}: cannot be read as CSV with separator {sep!r}: {exc}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    return df, {"encoding": enc, "separator": sep}


def _is_wide(encoding: str | None) -> bool:
    """UTF-16 or UTF-32: NUL bytes are part of the text's encoding."""
    try:
        return encoding is not None and codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    except LookupError:
        return False


def _decode(data: bytes, encoding: str | None, name: str, bom: str | None = None) -> tuple[str, str]:
    if encoding:
        if bom is not None and bom != "utf-8-sig" and not _is_wide(encoding):
            raise ValidationError(
                f"{name}: the file starts with a {bom.upper()} byte-order mark but encoding = {encoding!r} is "
                f"configured; set encoding = {bom!r} for this source (or remove the setting to detect it)")
        try:
            return data.decode(encoding).removeprefix("\ufeff"), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise ValidationError(
                f"{name}: cannot be decoded as {encoding!r} ({exc}); remove the encoding setting "
                "to detect it, or set the right one (utf-8, cp1252, utf-16)") from exc
    if bom is not None:
        try:
            return data.decode(bom).removeprefix("\ufeff"), bom
        except UnicodeDecodeError as exc:
            raise ValidationError(f"{name}: starts with a {bom} byte-order mark but cannot be decoded as "
                                  f"{bom} ({exc}); export it again as UTF-8") from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            return data.decode("latin-1"), "latin-1"


def _count_outside_quotes(line: str, sep: str) -> int:
    parts = line.split('"')
    return sum(p.count(sep) for p in parts[::2])


def _sniff_separator(header: str) -> str:
    counts = {s: _count_outside_quotes(header, s) for s in _SEPARATORS}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else ","


# -------------------------------------------------------------------- conversion
_DATE_PATTERNS = {
    "%Y-%m-%d": r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?:[T ]00:00(?::00)?)?$",
    "%d.%m.%Y": r"^(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})$",
}


def _dates_from_text(arr: pa.Array, pattern: str) -> np.ndarray:
    """datetime64[s] of the strings matching ``pattern`` with a real calendar day; NaT otherwise.

    Arrow's strptime is lenient (31.02.2024 becomes 02.03.2024), so the parts
    are extracted with a regular expression and checked with numpy.
    """
    parts = pc.extract_regex(arr, pattern)
    n = len(arr)
    comp = {}
    for k in ("y", "m", "d"):
        field_ = pc.struct_field(parts, k)
        comp[k] = pc.fill_null(pc.cast(field_, pa.int32(), safe=False), 0).to_numpy(zero_copy_only=False)
    ok = ~pc.is_null(parts).to_numpy(zero_copy_only=False)
    y, m, d = comp["y"].astype(np.int64), comp["m"].astype(np.int64), comp["d"].astype(np.int64)
    ok &= (m >= 1) & (m <= 12) & (d >= 1) & (y >= 1)
    month = (np.where(ok, y, 1970) - 1970) * 12 + np.where(ok, m, 1) - 1
    first = month.astype("datetime64[M]").astype("datetime64[D]")
    length = ((month + 1).astype("datetime64[M]").astype("datetime64[D]") - first).astype(np.int64)
    ok &= d <= length
    out = (first + (np.where(ok, d, 1) - 1).astype("timedelta64[D]")).astype("datetime64[s]")
    out[~ok] = np.datetime64("NaT")
    return out if len(out) == n else np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")


def _parse_dates(col: pd.Series, fmt: str | None) -> pd.Series:
    if isinstance(col.dtype, pd.DatetimeTZDtype):  # its wall-clock time there, as for a zoned Arrow column
        return col.dt.tz_localize(None).astype("datetime64[s]")
    if pd.api.types.is_datetime64_any_dtype(col):
        return col.astype("datetime64[s]")
    if isinstance(col.dtype, pd.ArrowDtype) and pa.types.is_date(col.dtype.pyarrow_dtype):
        return col.astype("datetime64[s]")
    if col.dtype == object and col.notna().any() and not isinstance(col.dropna().iloc[0], str):
        return pd.to_datetime(col, errors="coerce").astype("datetime64[s]")  # date objects
    if fmt and fmt not in _DATE_PATTERNS:
        return pd.to_datetime(col.astype("str").str.strip(), format=fmt, errors="coerce").astype("datetime64[s]")
    arr = pc.utf8_trim_whitespace(pa.array(col.astype("str"), from_pandas=True))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    formats = [fmt] if fmt else list(_DATE_PATTERNS)
    out = _dates_from_text(arr, _DATE_PATTERNS[formats[0]])
    for other in formats[1:]:
        todo = np.isnat(out)
        if todo.any():
            out[todo] = _dates_from_text(arr.filter(pa.array(todo)), _DATE_PATTERNS[other])
    return pd.Series(out, index=col.index, dtype="datetime64[s]")


def _parse_numbers(col: pd.Series, decimal: str) -> pd.Series:
    """Numbers as ``Float64``; text that is no finite number (also ``inf``, ``-Infinity``) as missing."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        out = col.astype("Float64")
    else:
        s = col.astype("str").str.strip().str.replace("'", "", regex=False).str.replace(" ", "", regex=False)
        if decimal == ",":
            s = s.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        out = pd.to_numeric(s, errors="coerce").astype("Float64")
    return out.mask(np.isinf(out.to_numpy(dtype=np.float64, na_value=np.nan)))


def _int32_range(col: pd.Series) -> bool:
    """An integer column (numpy or nullable) whose values all fit ``Int32``: typed by a cast alone."""
    if not pd.api.types.is_integer_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        return False
    lo, hi = col.min(), col.max()  # missing values skipped; both missing when every value is
    return bool(pd.isna(lo) or (int(lo) >= np.iinfo(np.int32).min and int(hi) <= np.iinfo(np.int32).max))


def _parse_bool(col: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(col):
        return col.astype("boolean")
    s = col.astype("str").str.strip().str.lower()
    out = pd.Series(pd.NA, index=col.index, dtype="boolean")
    out[s.isin(list(_TRUE)).fillna(False)] = True
    out[s.isin(list(_FALSE)).fillna(False)] = False
    return out


def _blank_to_na(col: pd.Series) -> pd.Series:
    """Strip text and turn empty cells into missing values (Arrow kernels, no Python loop)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col
    if col.dtype == "str" and plain_ends(pa.array(col.array)):  # nothing to strip, nothing blank (no copy)
        return col
    trimmed = pc.utf8_trim_whitespace(pa.array(col.astype("str"), from_pandas=True))
    trimmed = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, trimmed.type), trimmed)
    return pd.Series(trimmed, index=col.index, dtype="str")


def as_category(col: pd.Series, categories: list[str] | None = None, *,
                extend: bool = False) -> pd.Categorical:
    """Dictionary-encode a column with Arrow (hashing in C++, no Python objects).

    With ``categories`` the codes follow that order and values outside it
    become missing, unless ``extend`` appends them (sorted) to the categories.
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy().astype(np.int32)
        dictionary = [str(c) for c in col.cat.categories]
    else:
        arr = pa.array(col.astype("str"), from_pandas=True)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        enc = pc.dictionary_encode(arr)
        codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
        dictionary = enc.dictionary.to_pylist()
    if categories is None:
        return pd.Categorical.from_codes(codes, categories=pd.Index(dictionary, dtype="str"))
    cats = list(categories)
    if extend:
        cats += sorted(set(dictionary) - set(cats))
    if dictionary == cats and isinstance(col.dtype, pd.CategoricalDtype) and not col.cat.ordered \
            and col.cat.categories.dtype == "str":
        return col.array.copy()  # coded so already (typed spells): copied, never looked up again
    pos = {c: i for i, c in enumerate(cats)}
    mapping = np.array([pos.get(d, -1) for d in dictionary] + [-1], dtype=np.int32)
    return pd.Categorical.from_codes(mapping[codes], categories=pd.Index(cats, dtype="str"))


def _sorted_runs(col: pd.Series) -> tuple[np.ndarray, pa.Array] | None:
    """Codes and distinct values of a text column already in byte order without gaps, else None.

    An export sorted by pseudonym is coded from the runs of equal neighbours: two comparisons of
    each value with the next, instead of hashing every value and sorting the distinct ones.
    """
    if col.dtype != "str" or len(col) < 2:
        return None
    arr = pa.array(col.array)  # chunks kept: the kernels compare across them (joining copies every string)
    if arr.null_count:
        return None
    head, tail = arr.slice(0, len(arr) - 1), arr.slice(1)
    if not pc.all(pc.less_equal(head, tail)).as_py():
        return None
    start = np.r_[True, pc.not_equal(head, tail).to_numpy(zero_copy_only=False)]
    codes = np.cumsum(start, dtype=np.int64) - 1
    # one chunk: with the read's chunks the categories made the timeline slower and the peak larger
    return codes, filter_strings(arr, start)


def encode_pseudonyms(col: pd.Series) -> pd.Series:
    """Person pseudonyms as a categorical with sorted categories, hashed once.

    Every later step (validation, the timeline, scoring, worklists) works on
    the integer codes instead of hashing 64-character strings again. Text is
    stripped and blank values become missing, as for the other text columns.
    Sorted categories keep ``sort_values`` and ``groupby`` in pseudonym order.
    """
    if isinstance(col.dtype, pd.CategoricalDtype) and col.cat.categories.dtype == "str":
        cats = pa.array(col.cat.categories.array)  # compared by Arrow: pandas would build a Python string each
        if (len(cats) < 2 or pc.all(pc.less(cats[:-1], cats[1:])).as_py()) and plain_ends(cats):
            return col  # sorted, nothing to strip
    runs = _sorted_runs(col)
    if runs is not None:  # already in pseudonym order (as the synthetic exports): no hashing, no sorting
        codes, raw = runs
        uniq = pd.Index(pd.Series(raw, dtype="str"))
    else:
        codes, uniq = pd.factorize(col, use_na_sentinel=True)
        uniq = pd.Index(uniq)
        raw = pa.array(uniq.astype("str"), from_pandas=True)
    if runs is None and uniq.dtype == "str" and len(raw):  # sort the distinct values with Arrow (faster)
        order = string_order(raw)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)
        raw = raw.take(pa.array(order))
        uniq = pd.Index(pd.Series(raw, dtype="str"))
    strip = not plain_ends(raw)  # the bytes may hold white space to strip or a blank
    text = pc.utf8_trim_whitespace(raw) if strip else raw
    if uniq.dtype != "str" or (strip and (pc.all(pc.equal(text, raw)).as_py() is False or
                                          pc.any(pc.equal(text, "")).as_py())):
        # stripped or blank pseudonyms: recode the distinct values (never all ten million)
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
        ucodes, cats = pd.factorize(pd.Series(text, dtype="str"), sort=True, use_na_sentinel=True)
        codes = np.where(codes >= 0, np.r_[ucodes, -1][codes], -1)
    else:
        cats = uniq
    codes = codes.astype(np.int32, copy=False)
    return pd.Series(_distinct_categorical(codes, pd.Index(cats, dtype="str")), index=col.index, name=col.name)


def _distinct_categorical(codes: np.ndarray, categories: pd.Index) -> pd.Categorical:
    """``Categorical.from_codes`` for categories already known to be distinct and present.

    pandas checks that categories are distinct by hashing every one, which for 3.7M pseudonyms
    builds 3.7M Python strings (0.4 s). Where pandas has its fast path for a dtype whose
    categories are known good, it is taken; otherwise (another pandas) the public, checked one.
    The codes are still checked.
    """
    fast = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    try:
        dtype = fast(categories, ordered=False) if fast is not None else None
    except TypeError:  # another signature: the public way
        dtype = None
    if not isinstance(dtype, pd.CategoricalDtype):
        dtype = pd.CategoricalDtype(categories, ordered=False)
    return pd.Categorical.from_codes(codes, dtype=dtype)


def _union_pseudonyms(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Give every frame's ``person_id`` the same categories, so that concatenating keeps the codes."""
    cols = [f["person_id"] for f in frames if "person_id" in f.columns]
    if len(cols) < 2 or not all(isinstance(c.dtype, pd.CategoricalDtype) for c in cols):
        return frames
    cats = union_categoricals([c.array for c in cols], sort_categories=True, ignore_order=True).categories
    return [f.assign(person_id=f["person_id"].cat.set_categories(cats)) if "person_id" in f.columns else f
            for f in frames]


def _convert(df: pd.DataFrame, fields, *, source: str, report: ValidationReport, rows: np.ndarray,
             date_format: str | None, decimal: str) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Type the columns named in ``fields``; record text that cannot be parsed.

    Returns the typed table, the bad-row mask and, per column, the rows whose
    text could not be parsed.
    """
    bad = np.zeros(len(df), dtype=bool)
    unparsed: dict[str, np.ndarray] = {}
    out = df.copy(deep=False)  # columns are replaced, never changed in place
    for f in fields:
        if f.name not in out.columns:
            continue
        col = out[f.name]
        if pd.api.types.is_string_dtype(col) or col.dtype == object:
            col = _blank_to_na(col)
        present = col.notna().to_numpy()
        reported = np.zeros(len(df), dtype=bool)  # rows whose text has its own problem already
        if f.type == "date":
            conv = _parse_dates(col, date_format)
            what, fix = "unparseable date", "use dd.mm.yyyy or yyyy-mm-dd with a real calendar day" + (
                f" (configured format {date_format!r})" if date_format else "")
        elif f.type in {"integer", "number"}:
            if f.type == "integer" and _int32_range(col):  # whole numbers already: no round trip through floats
                conv = col.astype("Int32")
            else:
                conv = _parse_numbers(col, decimal)
                if f.type == "integer":
                    frac = conv.notna() & (conv.fillna(0) % 1 != 0)
                    report.add(source, f.name, "not a whole number", frac.to_numpy(dtype=bool), col,
                               fix="give a whole number", rows=rows)
                    reported = frac.to_numpy(dtype=bool)
                    bad |= reported
                    conv = conv.where(~frac).round().astype("Int32")
            what, fix = "not a number", f"use digits with decimal {decimal!r} (set `decimal` for the source)"
        elif f.type == "boolean":
            conv = _parse_bool(col)
            what, fix = "not a yes/no value", "use true/false, ja/nein, oui/non or 1/0"
        else:
            conv = col if pd.api.types.is_string_dtype(col) and col.dtype != object else col.astype("str")
            what = None
        if what:
            failed = present & conv.isna().to_numpy()
            # a fraction in a whole-number column is a number: reported once, as not a whole number
            report.add(source, f.name, what, failed & ~reported, col, fix=fix, rows=rows)
            bad |= failed
            unparsed[f.name] = failed
        out[f.name] = conv
    return out, bad, unparsed


def to_canonical_dtypes(df: pd.DataFrame, *, institutions: list[str] | None = None) -> pd.DataFrame:
    """Cast a canonical table to the library's dtypes.

    ``person_id`` as a categorical of sorted pseudonyms (:func:`encode_pseudonyms`:
    hashed once, integer codes from then on), ``case_id`` as Arrow-backed
    strings, institution and the other enumerations as categoricals in schema
    order (dictionary-encoded by Arrow),
    dates as ``datetime64[s]``, ``birth_year`` as nullable ``Int16``.
    Columns not in the schema are kept as they are.
    """
    schema = load_schema("spells")
    out = {}
    # built in the schema's order (selecting the columns afterwards would copy every one)
    for c in [c for c in schema.names if c in df.columns] + [c for c in df.columns if c not in schema]:
        col = df[c]
        if c not in schema:
            out[c] = col
            continue
        f = schema.field(c)
        if f.type == "date":
            out[c] = col if str(col.dtype) == "datetime64[s]" else _parse_dates(col, None)
        elif f.type == "integer":
            out[c] = pd.to_numeric(col, errors="coerce").astype("Int16" if c == "birth_year" else "Int32")
        elif f.enum is not None:
            cats = list(dict.fromkeys([*f.enum, *(institutions or [])])) if c == "institution" else list(f.enum)
            out[c] = as_category(col, cats, extend=(c == "institution"))
        elif c == "person_id":
            out[c] = encode_pseudonyms(col)
        else:
            out[c] = col if pd.api.types.is_string_dtype(col) and col.dtype != object else col.astype("str")
    return pd.DataFrame(out, index=df.index)


# ------------------------------------------------------------------------ files
def check_header(names, where: str) -> None:
    """Refuse a header holding an AHV number (not named) or naming a column twice.

    Raises
    ------
    RawIdentifierError
        A column name holds an AHV number; the column is named by position only.
    ValidationError
        A column name appears more than once (after stripping white space); the
        report names each repeated column and its positions.
    """
    text = pd.Series([str(c) for c in names], dtype="str")
    ahv = looks_like_ahv(text)
    if ahv.any():
        cols = ", ".join(f"#{i + 1}" for i in np.flatnonzero(ahv)[:5])
        fix = ("rename the column at the source: a header must not hold an AHV number; pseudonymise the "
               "data with `iizrisk pseudonymise` before it leaves the institution")
        report = ValidationReport(problems=[Problem(
            where, f"column {cols}", "column header shaped like an AHV number (name withheld)", 0, (), "", fix)])
        raise RawIdentifierError(f"refused: {where}: column header {cols} holds a value shaped like an AHV "
                                 f"number (name withheld); {fix}", report)
    stripped = text.str.strip()
    repeated = stripped[stripped.duplicated(keep=False)]
    if len(repeated):
        report = ValidationReport()
        for col, pos in repeated.groupby(repeated, sort=False).groups.items():
            at = ", ".join(f"#{i + 1}" for i in pos)
            report.problems.append(Problem(
                where, str(col), f"column appears {len(pos)} times in the header (columns {at})", 0, (), "",
                "export each column once, or rename one of them (it would be read as "
                f"{str(col) + '.1'!r} and silently ignored)"))
        names_ = ", ".join(repr(p.column) for p in report.problems)
        raise ValidationError(f"{where}: column(s) {names_} appear more than once in the header; export each "
                              "column once, or rename the repeated ones", report)


def _refuse_ahv_in_paths(paths: list[str], source: str, what: str = "file") -> None:
    """Refuse file or folder names holding an AHV number, naming them by position only."""
    if not paths:
        return
    hit = looks_like_ahv(pd.Series([str(p) for p in paths], dtype="str"))
    if hit.any():
        which = ", ".join(f"{what} #{i + 1}" for i in np.flatnonzero(hit)[:5])
        raise RawIdentifierError(
            f"refused: {source}, {which} (name withheld: it holds an AHV number); rename the export so that "
            "its name and folders hold no AHV number, and pseudonymise its content at the source "
            "(`iizrisk pseudonymise`)")


def _not_regular(name: str, path: Path, mode: int) -> ValidationError:
    return ValidationError(f"{name}: {path} is {file_kind(mode)}, not a regular file; give the path of an exported "
                           "file (reading it could block or never end)")


def _regular_file(path: Path, name: str) -> None:
    """Refuse a path that does not exist or is not a regular file (a FIFO, a device, a folder)."""
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise ValidationError(f"{name}: file not found; check the path (the file given, or the source's path in "
                              "the configuration)") from exc
    except OSError as exc:  # no permission, a loop of links, an I/O error: the machine's, not the data's
        raise OperatingSystemError(f"{name}: {path} cannot be read ({exc.strerror}); check the path and "
                                   "the service account's permissions") from exc
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(name, path, st.st_mode)


def _read_regular(path: Path, name: str) -> bytes:
    """The bytes of a regular file; a FIFO or device is refused without blocking."""
    _regular_file(path, name)
    try:
        return read_regular(path, lambda mode: _not_regular(name, path, mode))[0]
    except OSError as exc:
        raise OperatingSystemError(f"{name}: {path} cannot be read ({exc.strerror}); check the path and "
                                   "the service account's permissions") from exc


# ------------------------------------------------------------------------ sources
def _files_of(path: Path, pattern_base: Path) -> list[Path]:
    if any(ch in str(path) for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(str(path)))
    if path.is_dir():
        return sorted(p for p in path.iterdir()
                      if p.suffix.lower() in {".csv", ".txt", ".parquet", ".pq"} and not p.name.startswith("."))
    return [path]


def _read_file(path: Path, cfg: SourceConfig, name: str) -> tuple[pd.DataFrame, dict, Future[str]]:
    """One export as text columns (CSV) or typed columns (Parquet), its metadata and SHA-256.

    A Parquet file's SHA-256 is computed in a second thread while the file is read and checked
    (hashlib releases the GIL): ``.result()`` gives it.
    """
    fmt = cfg.format or ("parquet" if path.suffix.lower() in {".parquet", ".pq"} else "csv")
    digest: Future[str] = Future()
    if fmt == "parquet":
        _regular_file(path, name)
        digest = in_background(sha256_file, path, name="sha256")
        try:
            return (*_read_parquet(path, name, drop=cfg.drop_columns), digest)
        except BaseException:
            digest.cancel()
            raise
    data = _read_regular(path, name)
    df, meta = _csv_from_bytes(data, separator=cfg.separator, encoding=cfg.encoding, name=name)
    digest.set_result(sha256_bytes(data))
    return df, {"format": "csv", **meta}, digest


def _read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file read through 1 MiB buffers instead of one buffer per column chunk.

    Arrow's default reads each column chunk whole into memory of its own before decoding it:
    for the export of 10M spells, 300 MB of fresh pages, whose first touch cost 1-4 s of system
    time. Through small buffers that are reused the read takes 1.7-2.1 s instead of 2.3-4.7 s
    (three runs each) and peaks 0.2 GB lower. (A memory map would save as much, but a file that
    shrinks while it is read would end the process with SIGBUS instead of an error.)
    """
    return pq.read_table(path, columns=columns, pre_buffer=False, buffer_size=1 << 20)


def _read_parquet(path: Path, name: str, drop: list[str] | tuple[str, ...] = ()) -> tuple[pd.DataFrame, dict]:
    """One Parquet export without the columns the source drops (never read: nothing of them is processed)."""
    _regular_file(path, name)
    try:
        names = pq.read_schema(path).names
        check_header(names, name)
        table = _read_table(path, [c for c in names if c not in drop] if drop else None)
    except (pa.ArrowException, OSError) as exc:
        raise ValidationError(f"{name}: not a readable Parquet file ({exc})") from exc
    return _arrow_to_pandas(table, name), {"format": "parquet"}


def _arrow_dates(col: pa.ChunkedArray) -> np.ndarray:
    """Arrow dates or timestamps as ``datetime64[s]``, in one copy of the column.

    A time of day is kept to the second (parts of a second are floored: a timestamp a database wrote
    with milliseconds is no error). A timestamp with a time zone gives its wall-clock time there, so
    that an entry at 00:30 in Zurich stays on its day instead of moving to the day before in UTC.
    """
    t = col.type
    if pa.types.is_date(t):
        values = col.cast(pa.timestamp("s")).to_numpy(zero_copy_only=False)
    elif t.tz is not None:
        values = col.to_pandas().dt.tz_localize(None).to_numpy()
    else:
        values = col.to_numpy(zero_copy_only=False)
    ticks = values.view(np.int64)
    per = TICKS_PER_SECOND[np.datetime_data(values.dtype)[0]]
    if per > 1:
        nat = ticks == NAT_TICKS
        ticks = np.floor_divide(ticks, per)
        ticks[nat] = NAT_TICKS
    elif not ticks.flags.writeable:  # Arrow's own buffer: the frame gets a copy it may change
        ticks = ticks.copy()
    return ticks.view("datetime64[s]")


def _arrow_text(col: pa.ChunkedArray, name: str, where: str) -> pa.ChunkedArray:
    """Binary Parquet values as UTF-8 text, or a :class:`ValidationError` naming the file, column and fix."""
    try:
        return col.cast(pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValidationError(
            f"{where}: column {name!r} holds bytes that are not UTF-8 text (Parquet type {col.type}); "
            "export it as text in UTF-8, or leave the column out of the export") from exc


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t) or \
        str(t) == "binary_view"


def _is_nested(t: pa.DataType) -> bool:
    return pa.types.is_nested(t) or pa.types.is_union(t) or (
        pa.types.is_dictionary(t) and _is_nested(t.value_type))


def _arrow_to_pandas(table: pa.Table, where: str = "<table>") -> pd.DataFrame:
    """Arrow to pandas: dates as ``datetime64[s]`` (:func:`_arrow_dates`), text as Arrow-backed ``str``.

    Binary columns are decoded as UTF-8; a column of nested values (lists, structs, maps) or of bytes
    that are not text is refused with a :class:`ValidationError` naming ``where`` and the column. Every
    column is the frame's own and writable (never one of Arrow's read-only buffers); the frame is built
    without consolidating its columns into blocks (a copy of every date column).
    """
    cols: dict[str, pd.Series] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        if _is_nested(t):
            raise ValidationError(
                f"{where}: column {name!r} has the Parquet type {t}: nested values, which no column of the "
                "data contract takes; export it as text, a number or a date, or leave the column out of the "
                "export (or list it in the source's drop_columns)")
        if pa.types.is_dictionary(t) and _is_binary(t.value_type):
            col = col.cast(t.value_type)  # decoded below, as a plain binary column
            t = col.type
        if _is_binary(t):
            col = _arrow_text(col, name, where)
            t = col.type
        if pa.types.is_date(t) or pa.types.is_timestamp(t):
            cols[name] = pd.Series(_arrow_dates(col), dtype="datetime64[s]", copy=False)
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or str(t) == "string_view":
            cols[name] = pd.Series(col, dtype="str")
        else:
            cat = _shared_dictionary(col) if pa.types.is_dictionary(t) else None
            s = pd.Series(cat, copy=False) if cat is not None else col.to_pandas()
            values = s.to_numpy() if isinstance(s.dtype, np.dtype) else None
            cols[name] = s.copy() if values is not None and not values.flags.writeable else s
    return pd.DataFrame(cols, copy=False)


def _shared_dictionary(col: pa.ChunkedArray) -> pd.Categorical | None:
    """A dictionary column whose chunks share one dictionary of distinct text, as a categorical of its indices.

    A Parquet file written from a categorical repeats its dictionary in every row group; the indices are
    then the codes, and no chunk needs remapping (Arrow's conversion unifies the chunks' dictionaries,
    three to seven times slower). None for anything else.
    """
    if not col.num_chunks:
        return None
    first = col.chunk(0).dictionary
    if not (pa.types.is_string(first.type) or pa.types.is_large_string(first.type)) or first.null_count or \
            not all(c.dictionary.equals(first) for c in col.chunks):
        return None
    cats = pd.Index(pd.Series(first, dtype="str"))
    if cats.has_duplicates:
        return None
    indices = pa.chunked_array([c.indices for c in col.chunks], type=col.type.index_type)
    codes = np.asarray(pc.fill_null(indices, -1).to_numpy(zero_copy_only=False))
    return pd.Categorical.from_codes(codes if codes.flags.writeable else codes.copy(), categories=cats,
                                     ordered=col.type.ordered)


def _map_source(df: pd.DataFrame, cfg: SourceConfig, name: str, report: ValidationReport) -> pd.DataFrame:
    df = df.drop(columns=[c for c in cfg.drop_columns if c in df.columns])
    raw_names = set(df.columns)
    unknown = sorted(set(cfg.columns) - set(df.columns))
    if unknown:
        report.problems.append(Problem(
            name, ", ".join(unknown), "configured column not in the file", len(df), (), "",
            f"the file's columns are {list(df.columns)[:15]}; correct [sources.columns]"))
    df = df.rename(columns=cfg.columns)
    if df.columns.duplicated().any():
        for col in pd.unique(df.columns[df.columns.duplicated()]):
            sources = [k for k, v in cfg.columns.items() if v == col and k in raw_names] + \
                ([col] if col in raw_names else [])
            report.problems.append(Problem(
                name, str(col), f"{len(sources)} columns of the export map onto {col!r}", len(df), (), "",
                f"map one export column onto {col!r} in [sources.columns] (now {sources}); drop the others "
                "with drop_columns"))
        return df.loc[:, ~df.columns.duplicated()]
    if "institution" not in df.columns and cfg.institution:
        df["institution"] = cfg.institution
    for col, mapping in cfg.values.items():
        if col in df.columns:
            s = df[col]
            mapped = s.map(mapping)
            df[col] = mapped.where(mapped.notna(), s) if not isinstance(s.dtype, pd.CategoricalDtype) \
                else mapped.astype(object).where(mapped.notna(), s.astype(object))
    return df


def _ingest_frame(raw: pd.DataFrame, cfg: SourceConfig, name: str, report: ValidationReport,
                  settings: Settings, rows: np.ndarray, pattern: str | None,
                  ) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, bool, dict[str, np.ndarray]]:
    """Map, type and check one file.

    Returns the mapped text (schema columns only: what a quarantine file may
    show), the typed rows, the bad-row mask, whether the file is unusable and,
    per column, the cells a quarantine file must withhold.
    """
    schema = load_schema("spells")
    n_problems = len(report.problems)
    df = _map_source(raw, cfg, name, report)
    if any("columns of the export map onto" in p.problem for p in report.problems[n_problems:]):
        return df.iloc[:0], df, np.ones(len(df), dtype=bool), True, {}
    if "person_id" in df.columns:
        df["person_id"] = encode_pseudonyms(df["person_id"])  # once; codes from here on
    report.track_rows(len(df))
    if check_raw_identifiers(df, report, name, rows=rows):  # first: a refused file is processed no further
        report.take_row_reasons(needed=False)
        return df.iloc[:0], df, np.ones(len(df), dtype=bool), True, {}
    fields = list(schema.fields)
    inst = cfg.institution
    if inst is None and "institution" in df.columns and df["institution"].nunique() == 1:
        inst = str(df["institution"].dropna().iloc[0]) if df["institution"].notna().any() else None
    ext: Schema | None = institution_extension(inst) if inst else None
    if ext is not None:
        fields += [f for f in ext.fields if f.name not in schema]
    # typed before the text checks, so that the search for duplicate rows (a second thread) runs beside
    # them; the typing's problems wait in a report of their own and follow the text checks' as before
    typing = ValidationReport()
    typing.track_rows(len(df))
    typed, bad, unparsed = _convert(df, fields, source=name, report=typing, rows=rows,
                                    date_format=cfg.date_format, decimal=cfg.decimal)
    duplicates = _duplicates_in_background(typed)
    try:
        bad_text, withhold = check_text_cells(df, report, name, rows)
        if pattern is not None and "person_id" in df.columns:
            not_pseudonym = check_pseudonyms(df["person_id"], pattern, report, name, rows)
            if not_pseudonym.any():
                withhold["person_id"] = withhold.get("person_id", np.zeros(len(df), dtype=bool)) | not_pseudonym
                bad_text |= not_pseudonym
        report.absorb(typing)
        bad |= bad_text
        if ext is not None:
            _, bad_ext = check_table(typed, ext, source=name, report=report, rows=rows, unparsed=unparsed)
            bad |= bad_ext
        _, bad_sp = check_spells(typed, source=name, report=report, rows=rows, unparsed=unparsed,
                                 extra_institutions=settings.deployment.extra_institutions, duplicates=duplicates)
    except BaseException:
        if duplicates is not None:  # not started yet: never; running: it only reads, and its result is dropped
            duplicates.cancel()
        raise
    bad |= bad_sp
    allowed = cfg.allowed_institutions
    if allowed is not None and "institution" in typed.columns:
        col = typed["institution"]
        other = _isin(col, settings.institutions) & ~_isin(col, allowed)
        report.add(name, "institution", "institution code not allowed for this source", other, col, rows=rows,
                   fix=f"this source may emit {allowed} ([[sources]] institutions, or its constant institution); "
                       "map the code in [sources.values.institution], list it in the source's institutions, "
                       "or correct the export")
        bad |= other
    fatal = any(p.problem == "required column missing" and p.source == name for p in report.problems)
    shown = [f.name for f in fields if f.name in df.columns]
    return df[shown], typed, bad, fatal, withhold


def _withheld(q: pd.DataFrame, withhold: dict[str, np.ndarray], bad: np.ndarray) -> pd.DataFrame:
    """Quarantined rows as text with every refused cell replaced (never a raw value, never a long one)."""
    q = q.copy()
    for col, cells in withhold.items():
        if col in q.columns:
            q.loc[cells[bad], col] = "<withheld: refused value>"
    for col in q.columns:  # defensive: nothing shaped like an AHV number leaves in a quarantine file
        hit = looks_like_ahv(q[col])
        if hit.any():
            q.loc[hit, col] = "<withheld: refused value>"
    return q


def _pattern_of(pseudonym_pattern, settings: Settings | None) -> str | None:
    if pseudonym_pattern is _DEFAULT:
        pattern = settings.deployment.pseudonym_pattern if settings is not None else DEFAULT_PSEUDONYM_PATTERN
    else:
        pattern = pseudonym_pattern
    if pattern is not None:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise ConfigError(f"pseudonym_pattern {pattern!r} is not a regular expression ({exc})") from exc
    return pattern


def _first_errors(report: ValidationReport, shown: int = 3) -> str:
    """The first ``shown`` errors of ``report`` for an exception's message: source, column, rows and fix.

    Their example values are left out (a value may be a pseudonym); ``exc.report`` holds every problem.
    """
    errors = report.errors
    if not errors:
        return ""
    lines = [dataclasses.replace(p, example="").to_text() for p in errors[:shown]]
    more = f"\n  ... and {len(errors) - shown} more" if len(errors) > shown else ""
    return "\n  " + "\n  ".join(lines) + more + "\n(every problem is in the validation report; in Python, the exception's .report)"


def _check_institution_lists(settings: Settings) -> None:
    """A source mapping an export column onto ``institution`` must list the codes it may emit."""
    missing = [(s.name, k) for s in settings.sources for k, v in s.columns.items()
               if v == "institution" and s.institutions is None and s.institution is None]
    if missing:
        where = "; ".join(f"[[sources]] {n}: column {k!r} is mapped onto institution" for n, k in missing)
        raise ConfigError(
            f"{settings.config_path or 'settings'}: {where}: list the institution codes this source may emit, "
            f"e.g. institutions = [\"ALV\"] (known codes: {', '.join(settings.institutions)})")


def ingest(source, *, settings: Settings | None = None, errors: str | None = None,
           institution: str | None = None, pseudonym_pattern=_DEFAULT) -> Ingestion:
    """Read, map and validate spells from any source.

    Parameters
    ----------
    source : Settings, path to a ``.toml`` configuration, path to a CSV/Parquet
        file or folder, or a DataFrame.
    settings : Settings, optional
        Used with a path or DataFrame source for the deployment options.
    errors : {"raise", "quarantine"}, optional
        Default: the settings' ``[deployment] errors`` (``"raise"``).
    institution : str, optional
        Institution code for a single file or DataFrame without an institution column.
    pseudonym_pattern : str or None, optional
        For a path or DataFrame source only: the regular expression every
        ``person_id`` must match in full. Default: ``settings``'
        ``[deployment] pseudonym_pattern``, or without settings
        :data:`DEFAULT_PSEUDONYM_PATTERN` (``[0-9a-f]{64}``); ``None`` checks
        nothing (toy ids in examples and tests). A deployment configuration
        always uses its own setting.

    Raises
    ------
    RawIdentifierError
        Values shaped like AHV numbers were found in a value, a column header
        or a file name (always, whatever ``errors``).
    ValidationError
        With ``errors="raise"``, when any error was found; ``exc.report`` holds them all.
        Whatever ``errors``: a path that is not a regular file, an empty or
        binary file, a header naming a column twice.
    ConfigError
        A bad ``errors`` or pattern; ``pseudonym_pattern`` given with a deployment
        configuration; a source mapping an institution column without listing its codes.
    """
    t0 = time.perf_counter()
    deployment = isinstance(source, Settings) or (
        isinstance(source, str | Path) and str(source).endswith(".toml"))
    if deployment and pseudonym_pattern is not _DEFAULT:
        raise ConfigError("a deployment configuration sets [deployment] pseudonym_pattern; "
                          "do not pass pseudonym_pattern to ingest() with it")
    if isinstance(source, Settings):
        settings = source
        _check_institution_lists(settings)
        items = [(s, settings.resolve(s.path)) for s in settings.sources]
        if not items:
            raise ConfigError(f"{settings.config_path or 'settings'}: no [[sources]] configured")
    elif deployment:
        settings = Settings.load(source)
        return ingest(settings, errors=errors)
    elif isinstance(source, pd.DataFrame):
        items = [(SourceConfig(name="<DataFrame>", path="", institution=institution), source)]
    elif not isinstance(source, str | os.PathLike):
        raise TypeError(f"source must be a path (a CSV, Parquet or xlsx file, a folder, or iizrisk.toml), a "
                        f"pandas DataFrame or Settings, got {type(source).__name__}")
    else:
        items = [(SourceConfig(name=str(source), path=str(source), institution=institution), Path(source))]
    pattern = _pattern_of(pseudonym_pattern, settings)
    settings = settings or Settings()
    errors = errors or settings.deployment.errors
    if errors not in {"raise", "quarantine"}:
        raise ConfigError(f"errors={errors!r}: use 'raise' or 'quarantine'")

    report = ValidationReport()
    good: list[pd.DataFrame] = []
    quarantined: list[pd.DataFrame] = []
    files: list[dict[str, Any]] = []
    fatal_any = False
    for cfg, where in items:
        # (label, frame, metadata, (path, seconds to read, SHA-256) or None for a DataFrame)
        frames: list[tuple[str, pd.DataFrame, dict[str, Any], tuple[Path, float, Future[str]] | None]]
        if isinstance(where, pd.DataFrame):
            if isinstance(where.columns, pd.MultiIndex):
                raise ValidationError(f"{cfg.name}: its columns have {where.columns.nlevels} levels (a MultiIndex); "
                                      "give one level of column names, e.g. df.columns = "
                                      "['_'.join(map(str, c)) for c in df.columns], then map them")
            check_header(list(where.columns), cfg.name)
            frames = [(cfg.name, where, {"format": "DataFrame"}, None)]
        else:
            _refuse_ahv_in_paths([str(where)], f"source {cfg.name!r}", "configured path")
            paths = _files_of(where, settings.base_dir)
            _refuse_ahv_in_paths([str(p) for p in paths], f"source {cfg.name!r}")
            if not paths:
                raise ValidationError(f"source {cfg.name!r}: no file matches {where}; check its path")
            frames = []
            for p in paths:
                label = f"{cfg.name}:{p.name}" if len(paths) > 1 or p.name not in cfg.name else p.name
                tf = time.perf_counter()
                df, meta, digest = _read_file(p, cfg, label)
                frames.append((label, df, meta, (p, time.perf_counter() - tf, digest)))
        for label, df, meta, fileinfo in frames:
            rows = np.arange(1, len(df) + 1)
            report.rows_read[label] = len(df)
            mapped, typed, bad, fatal, withhold = _ingest_frame(df, cfg, label, report, settings, rows, pattern)
            reasons = report.take_row_reasons(needed=bool(bad.any()) and not fatal)
            fatal_any |= fatal
            if fileinfo is not None:
                p, secs, digest = fileinfo
                files.append({"source": cfg.name, "file": str(p), "sha256": digest.result(), "rows": len(df),
                              "seconds": round(secs, 3), **meta})
            if bad.any() and not fatal:
                q = _withheld(mapped.loc[bad].astype("str"), withhold, bad)  # schema columns only: no free text
                q.insert(0, "_reason", reasons[bad] if reasons is not None else "")
                q.insert(0, "_row", rows[bad])
                q.insert(0, "_source", label)
                quarantined.append(q)
            if not fatal:
                good.append(typed.loc[~bad])

    raw_ids = [p for p in report.problems if "AHV" in p.problem]
    if raw_ids:
        cols = ", ".join(f"{p.source}: {p.column!r}" for p in raw_ids)
        raise RawIdentifierError(
            f"refused: column(s) {cols} hold values shaped like AHV numbers; raw identifiers are "
            "never processed — pseudonymise at the source (`iizrisk pseudonymise`) and drop the raw column",
            report)
    n_bad = sum(len(q) for q in quarantined)
    if errors == "raise" and (not report.ok or fatal_any):
        report.rows_rejected = sum(report.rows_read.values())
        raise ValidationError(f"input refused: {report.summary_line()}{_first_errors(report)}", report)
    if fatal_any:
        raise ValidationError(f"input refused: a source lacks required columns; {report.summary_line()}"
                              f"{_first_errors(report)}", report)
    report.rows_quarantined = n_bad
    spells = pd.concat(_union_pseudonyms(good), ignore_index=True) if good else \
        pd.DataFrame(columns=load_schema("spells").names)
    spells = to_canonical_dtypes(spells, institutions=settings.institutions)
    quarantine = pd.concat(quarantined, ignore_index=True) if quarantined else pd.DataFrame()
    corrections = None
    if deployment and settings.deployment.corrections:  # contested rows corrected, with their trail
        from .corrections import apply_corrections

        spells, corrections = apply_corrections(
            spells, read_corrections(settings.resolve(settings.deployment.corrections), pseudonym_pattern=pattern),
            report)
    interventions = None
    if deployment and settings.deployment.interventions:
        interventions = read_interventions(settings.resolve(settings.deployment.interventions),
                                           pseudonym_pattern=pattern)
    logger.info("ingested %d rows in %.1f s (%d quarantined)", len(spells), time.perf_counter() - t0, n_bad)
    return Ingestion(spells=spells, report=report, quarantine=quarantine, files=pd.DataFrame(files),
                     interventions=interventions, corrections=corrections)


def read_corrections(path: str | Path, *, pseudonym_pattern: str | None) -> pd.DataFrame:
    """Read a corrections file (CSV or Parquet) and check it (:func:`iizrisk.corrections.check_corrections`).

    Guarded as exports are: no AHV number in its path, values or header, no
    column named twice.

    Raises
    ------
    RawIdentifierError, ValidationError
        Also when the file does not exist (a configured correction is never dropped).
    """
    from .corrections import CORRECTION_COLUMNS, check_corrections

    p = Path(path)
    _refuse_ahv_in_paths([str(p)], "corrections", "path")
    if not p.exists():
        raise ValidationError(f"corrections file {p} does not exist; create it (columns: "
                              f"{', '.join(CORRECTION_COLUMNS)}) or remove [deployment] corrections")
    _regular_file(p, f"corrections file {p}")  # a named pipe, a device or a folder: said as such
    df = read_canonical_table(p) if p.suffix.lower() == ".parquet" else read_csv_text(p)[0]
    check_header(list(df.columns), str(p))
    return check_corrections(df, pseudonym_pattern=pseudonym_pattern, name=str(p))


def read_spells(source, **kwargs) -> pd.DataFrame:
    """Canonical spells from any source (see :func:`ingest`); raises on invalid input."""
    return ingest(source, **kwargs).spells


def read_canonical(path: str | Path, *, columns: list[str] | None = None,
                   extra_institutions: list[str] | None = None) -> pd.DataFrame:
    """Fast path: canonical spells from a Parquet file or a folder of Parquet files.

    Dates are read as ``datetime64[s]``, pseudonyms as categorical codes
    (:func:`to_canonical_dtypes`). Checked here, file by file: the required
    columns, the raw-identifier guard and the values that change a point-in-time
    result (:func:`~iizrisk.validate.check_canonical_values`: institution codes,
    plausible dates, birth years); use :func:`ingest` for the full validation
    report.

    Parameters
    ----------
    path : file or folder
    columns : list of str, optional
        Read only these; optional ones a file lacks are left out (the
        required columns among them must be present). The raw-identifier guard
        still covers every text column of every file.
    extra_institutions : list of str, optional
        Institution codes a deployment adds to the schema's list (its
        ``[deployment] extra_institutions``); any other code is refused.

    Raises
    ------
    ValidationError
        No such file, no Parquet file in the folder, a path that is not a
        regular file, an unreadable file, a header naming a column twice, a
        required column missing, or a date column that does not hold dates;
        an unknown institution code, an implausible date (e.g. an end 9999-12-31
        standing for "still open") or a birth year out of range, naming the
        file, column, rows and the fix (as ``iizrisk validate`` does).
    RawIdentifierError
        Values shaped like AHV numbers, with the file, column and row numbers;
        an AHV number in a file name or column header (not named).
    """
    files = _parquet_files(Path(path))
    schema = load_schema("spells")
    required = [c for c in schema.required if columns is None or c in columns]
    frames, report = [], ValidationReport()
    for f in files:
        _regular_file(f, str(f))
        try:
            file_schema = pq.read_schema(f)
            names = file_schema.names
            check_header(names, str(f))
            missing = [c for c in required if c not in names]
            if missing:
                raise ValidationError(
                    f"{f}: required column(s) {missing} missing; found {names}. Map the export onto the "
                    "canonical columns (data/schemas/spells.json) first: `iizrisk ingest CONFIG --out spells.parquet` maps "
                    "them with the deployment's [[sources]] columns.")
            want = names if columns is None else [c for c in columns if c in names]
            if "end_date" not in names and (columns is None or "end_date" in columns):
                logger.warning("%s: %s", f, NO_END_DATE)
            for fld in file_schema:
                if fld.name in want and fld.name in schema and schema.field(fld.name).type == "date" and not (
                        pa.types.is_date(fld.type) or pa.types.is_timestamp(fld.type) or pa.types.is_null(fld.type)):
                    raise ValidationError(f"{f}: column {fld.name!r} has type {fld.type}, not a date; canonical "
                                          "files store dates as Parquet dates")
            table = _read_table(f, want)
            others = [fld.name for fld in file_schema if fld.name not in want and _may_hold_text(fld.type)]
            extra = _read_table(f, others) if others else None
        except (pa.ArrowException, OSError) as exc:
            raise ValidationError(f"{f}: not a readable Parquet file ({exc})") from exc
        df = _arrow_to_pandas(table, str(f))
        check_raw_identifiers(df, report, str(f))  # row numbers within the file
        if extra is not None:  # the guard covers the whole file, also columns not read
            check_raw_identifiers(_arrow_to_pandas(extra, str(f)), report, str(f))
        frames.append(df)
    if report.problems:
        cols = ", ".join(f"{p.source}: {p.column!r}" for p in report.problems)
        raise RawIdentifierError(
            f"refused: column(s) {cols} hold values shaped like AHV numbers (raw identifiers); "
            "pseudonymise at the source with `iizrisk pseudonymise`", report)
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    df = to_canonical_dtypes(df, institutions=list(extra_institutions or []))
    _refuse_implausible_values(df, files, [len(f) for f in frames], extra_institutions)
    return df


def _refuse_implausible_values(df: pd.DataFrame, files: list[Path], lengths: list[int],
                               extra_institutions: list[str] | None) -> None:
    """:func:`~iizrisk.validate.check_canonical_values` of each file's rows of ``df``; raise when any is bad."""
    from .validate import check_canonical_values

    report, at = ValidationReport(), 0
    for f, n in zip(files, lengths, strict=True):
        part = df if n == len(df) else df.iloc[at:at + n]  # rows numbered within their file
        check_canonical_values(part, source=str(f), report=report, extra_institutions=extra_institutions)
        report.rows_read[str(f)] = n
        at += n
    if not report.problems:
        return
    report.rows_rejected = len(df)
    found = "; ".join(f"{p.source}: column {p.column!r}: {p.problem} ({p.n_rows:,} "
                      f"{'row' if p.n_rows == 1 else 'rows'}: {', '.join(map(str, p.rows))}"
                      f"{', ...' if p.n_rows > len(p.rows) else ''}; e.g. {p.example!r})"
                      for p in report.problems)
    hints = []
    if any(p.column == "institution" for p in report.problems):
        extra = f" (declared here: {list(extra_institutions)})" if extra_institutions else ""
        hints.append("map local institution names onto the known codes before writing the canonical file "
                     "(`iizrisk validate` shows them); a deployment's own codes go into its [deployment] "
                     "extra_institutions" + extra + ", read with `iizrisk run`/`iizrisk validate` or a command's "
                     "--config")
    if any(p.column == "end_date" and p.problem.startswith("implausible") for p in report.problems):
        hints.append("leave the end empty for an open registration (a sentinel such as 9999-12-31 closes the row "
                     "and lets rows recorded after the as-of date into its view)")
    if any(p.problem == "end before start" for p in report.problems):
        hints.append("correct the dates of the rows whose end lies before their start (end_date is the last day "
                     "registered, inclusive)")
    if any(p.column != "institution" and not (p.column == "end_date" and p.problem.startswith("implausible"))
           and p.problem != "end before start" for p in report.problems):
        hints.append("correct the other values named (dates: check how the export writes them)")
    raise ValidationError(f"input refused: {found}. Fix: " + "; ".join(hints), report)


def _parquet_files(path: Path) -> list[Path]:
    _refuse_ahv_in_paths([str(path)], "the given path", "path")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in {".parquet", ".pq"}
                       and not p.name.startswith("."))
        _refuse_ahv_in_paths([str(p) for p in files], f"folder {path}")
        if not files:
            raise ValidationError(f"{path}: no .parquet files in this folder")
        return files
    if not path.exists():
        raise ValidationError(f"{path} does not exist: give a Parquet file or a folder of Parquet files")
    return [path]


def _may_hold_text(t: pa.DataType) -> bool:
    """Columns the raw-identifier guard reads: text, dictionaries and integers (an AHV number as a number)."""
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t) or \
        pa.types.is_integer(t)


def read_interventions(source, *, pseudonym_pattern: str | None = None) -> pd.DataFrame:
    """Interventions (joint assessments, ...) from a CSV/Parquet file or DataFrame, validated.

    Guarded as spells are: AHV numbers in values, headers or file names, NUL
    bytes and overlong text are refused, and with ``pseudonym_pattern`` every
    ``person_id`` must match it in full (:func:`ingest` passes the deployment's
    pattern for ``[deployment] interventions``; ``None``, the default here,
    checks nothing, as before).

    Raises
    ------
    RawIdentifierError, ValidationError
    """
    schema = load_schema("interventions")
    if pseudonym_pattern is not None:
        _pattern_of(pseudonym_pattern, None)
    if isinstance(source, pd.DataFrame):
        df, name = source.copy(), "<DataFrame>"
        check_header(list(df.columns), name)
    else:
        p = Path(source)
        _refuse_ahv_in_paths([str(p)], "interventions", "path")
        name = str(p)
        df = read_canonical_table(p) if p.suffix.lower() in {".parquet", ".pq"} or p.is_dir() else \
            read_csv_text(p)[0]
    report = ValidationReport()
    if check_raw_identifiers(df, report, name):
        raise RawIdentifierError(f"{name}: refused: values shaped like AHV numbers", report)
    rows = np.arange(1, len(df) + 1)
    check_text_cells(df, report, name, rows)
    typed, _, unparsed = _convert(df, schema.fields, source=name, report=report,
                                  rows=rows, date_format=None, decimal=".")
    if pseudonym_pattern is not None and "person_id" in typed.columns:
        check_pseudonyms(typed["person_id"], pseudonym_pattern, report, name, rows)
    check_table(typed, schema, source=name, report=report, unparsed=unparsed)
    if not report.ok:
        raise ValidationError(f"{name}: invalid interventions: {report.summary_line()}", report)
    return typed


def read_canonical_table(path: Path) -> pd.DataFrame:
    """Any Parquet file or folder as pandas, dates as ``datetime64[s]`` (regular files only, headers checked)."""
    path = Path(path)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    _refuse_ahv_in_paths([str(f) for f in files], f"folder {path}" if path.is_dir() else "the given path")
    tables = []
    for f in files:
        _regular_file(f, str(f))
        try:
            check_header(pq.read_schema(f).names, str(f))
            tables.append(_read_table(f))
        except (pa.ArrowException, OSError) as exc:
            raise ValidationError(f"{f}: not a readable Parquet file ({exc})") from exc
    if not tables:
        raise ValidationError(f"{path}: no .parquet files in this folder")
    return _arrow_to_pandas(pa.concat_tables(tables), str(path))

