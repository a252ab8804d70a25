"""Tables people open: one writer for every CSV (and xlsx) iizrisk writes for a person to read.

A coordinator opens a worklist in a spreadsheet with Swiss settings; an
analyst opens an indicator table the same way. So every such table is
written by :func:`write_table`:

* ``;`` as separator, UTF-8 with a BOM, ``\\n`` line ends (what Excel opens
  correctly with de-CH, fr-CH and it-CH settings);
* headers, risk band names and yes/no in the deployment's language (the
  text catalogue, keys ``table.*`` and ``risk_bands.*``); a column the
  catalogue does not name keeps its code;
* the values of the columns of :data:`VALUE_COLUMNS` (decisions, exit
  reasons, policies, the indicators' rows) by their names in the catalogue;
  a value it does not name stays as it is;
* risks as rounded percentages (``41.4`` in a column headed "Risiko (%)"),
  shares and rates with three decimals, counts as whole numbers;
* dates as ``YYYY-MM-DD``;
* text cells a spreadsheet would run as a formula (``=``, ``+``, ``-``,
  ``@``, tab, carriage return first) prefixed with ``'`` (OWASP, CSV
  injection); line breaks inside a cell as ``\\n``.

Machine-readable Parquet stays as it is. :func:`read_table` reads such a table
back with the codes as headers (any of the four languages), and
:func:`present` gives the frame as it is written. :func:`write_xlsx` (or
:func:`write_table` to a path ending in ``.xlsx``) writes the same cells as
an Excel sheet: a frozen bold header, column widths that fit, and no cell
that Excel would run as a formula. :func:`write_outputs` writes one table as
CSV, xlsx and/or Parquet; the result objects' ``to_dir``
(:mod:`iizrisk._results`) and :meth:`iizrisk.indicators.BfsIndicators.to_dir`
write through it.

Which numbers are percentages
-----------------------------
Only a person's *risk* is a percentage: the columns of
:data:`PERCENT_COLUMNS` (``risk``, a predicted probability, and
``risk_change`` and ``benefit``, differences of two, in percentage points), and only when
the headers are in a language (their headers say "(%)" or "points"). Every
other number keeps its scale: rates, shares and precisions of a group
(``flag_rate``, ``precision``, ``observed_rate``, ``share``, ``rate``), the
mean predicted risk of a group and the bounds of a calibration bin
(``mean_predicted``, ``risk_from``, ``risk_to``: they stand next to the
observed rate and must keep its scale), effects and intervals. A column whose
header says "(%)" (``override_share``) already holds a percentage.

With a ``language`` the columns of :data:`ROUNDED_COLUMNS` (``share``,
``rate``: the indicators' shares) are rounded to their decimals (three), and a column of counts
(:func:`_counts`: ``persons``, ``n``, ``n_treated``...) holding floats only
because of a hidden (empty) cell is written as whole numbers ("7505", not
"7505.0"); a producer may round more columns (``rounding``: the policy values
per 100 assessments, two decimals). The Parquet files keep every digit.

``language`` None writes a table for machines that is still safe to open:
codes as headers and values as they are, with ``;``, the BOM and the
formulas neutralised. Any other code than ``de``, ``fr``, ``it`` and ``en``
("FR", "fr-CH") raises :class:`~iizrisk.errors.ConfigError` before anything
is written (:func:`iizrisk._texts.check_language`), rather than a table in
English.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"rank": [1], "risk": [0.41449], "risk_band": ["high"], "new_on_list": [True],
...                    "case_ids": ["=1+1"]})
>>> present(df, "de").to_dict("records")
[{'Rang': 1, 'Risiko (%)': 41.4, 'Risikostufe': 'hoch', 'Neu auf der Liste': 'ja', 'Fall-Nr.': "'=1+1"}]
>>> present(pd.DataFrame({"last_decision": ["consent_declined", "data_error"], "exit_reason": ["pension", "x"]}),
...         "fr").to_dict("list")
{'Dernière décision': ['consentement refusé', 'erreur de données'], 'Motif de sortie': ['rente', 'x']}
"""

from __future__ import annotations

import functools
import io
import re
import string
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from ._texts import LANGUAGES, _lookup, check_language, load_locale
from .store import SWISS_CSV, CsvFormat, write_bytes_atomic, write_csv_atomic, write_parquet_atomic

__all__ = ["FORMULA_START", "PERCENT_COLUMNS", "ROUNDED_COLUMNS", "VALUE_COLUMNS", "header", "neutralise_formulas",
           "present", "read_table", "spreadsheet_dates", "value_name", "write_outputs", "write_table", "write_xlsx"]

#: First characters that make a spreadsheet read a text cell as a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_RE = r"[=+\-@\t\r]"
#: Columns holding probabilities (written as percentages) or differences of them (percentage points).
PERCENT_COLUMNS = ("risk", "risk_change", "benefit")
#: Decimals of a reason's weight (``reason_1_contribution``, log-odds) in a table a person reads.
CONTRIBUTION_DECIMALS = 3
#: Columns whose values are codes the text catalogue names: column -> the catalogue sections naming them.
#: A value is found by its code (a key of the section) or by its English name (the indicators' rows hold
#: "two or more", "Total", "revolving door"); an English name with a placeholder ("{system} only") matches
#: any word in its place. A value no section names is written as it is.
VALUE_COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "risk_band": ("risk_bands",), "band_at_review": ("risk_bands",),
    "decision": ("review.decisions",), "last_decision": ("review.decisions",),
    "exit_reason": ("exit_reasons",),
    "policy": ("card.policies",), "term": ("table.values",),
    "combination": ("table.values",), "profile": ("bfs_profiles", "table.values"), "from": ("table.values",),
    # the fairness audits' tables: an intersection ("sex:nationality_group", "F:THIRD") is named part by part
    "attribute": ("card.attributes",), "group": ("nationality_group", "card.groups"),
    "reference": ("nationality_group", "card.groups"), "metric": ("card.columns",), "verdict": ("card.verdicts",),
    "rule": ("card.rules",), "status": ("card.statuses",),
    "arm": ("table.values",), "scorer": ("card.kinds",),
})
#: The separator of an intersection's parts in a code column (``sex:nationality_group``, ``F:THIRD``).
_PARTS = ":"
#: Decimals of shares and rates in a table a person reads (with a ``language``; Parquet keeps every digit).
ROUNDED_COLUMNS: Mapping[str, int] = MappingProxyType({"share": 3, "rate": 3})
#: Columns of counts (besides ``n`` and ``n_*``): floats there come from a hidden cell and are whole numbers.
_COUNT_COLUMNS = frozenset({
    "persons", "entrants", "still_registered", "leavers", "reentered", "transitions", "from_registered",
    "listed", "reviewed", "overrides", "agreeing", "repeatedly_listed_unreviewed", "times_listed", "exits",
    "rows_read", "splits", "rank",
})


def _language(language: str | None) -> str | None:
    """``language`` checked (:func:`iizrisk._texts.check_language`: ConfigError for a code the catalogue
    lacks, such as "FR" or "fr-CH"); None stays None (the codes)."""
    return None if language is None else check_language(language)


@functools.cache
def _columns(language: str) -> dict[str, str]:
    return dict(load_locale(language)["table"]["columns"])


def header(column: str, language: str | None) -> str:
    """The header of ``column`` in ``language`` (the code itself when the catalogue has no name for it).

    Reason columns are named by their number: ``reason_2_text`` -> "Grund 2". ``language`` None
    gives the English header.
    """
    lang = _language(language) or "en"
    names = _columns(lang)
    if column in names:
        return names[column]
    level = re.fullmatch(r"(vs_risk )?(lower|upper) (\d+(?:\.\d+)?)%", column)  # an interval's bound: "lower 95%"
    if level is not None:
        key = ("vs_risk_" if level.group(1) else "") + level.group(2) + "_level"
        if key in names:
            return names[key].format(level=level.group(3))
    level = re.fullmatch(r"(naive_)?(lower|upper)_(\d+)", column)  # the same, as the estimators' tables name it
    if level is not None:
        key = (level.group(1) or "") + "interval_" + level.group(2)
        if key in names:
            return names[key].format(level=level.group(3))
    if column.startswith("decision:"):  # reviews per decision (oversight): the decision by its name
        code = column.partition(":")[2]
        return _lookup("table.decision_column", lang).format(decision=_section(lang, "review.decisions").get(code, code))
    parts = column.split("_")
    if len(parts) >= 2 and parts[0] == "reason" and parts[1].isdigit():
        kind = "_".join(["reason_n", *parts[2:]])
        if kind in names:
            return names[kind].format(n=parts[1])
    return column


def _section(lang: str, key: str) -> dict[str, str]:
    """The texts of the catalogue section ``key`` (dotted) in ``lang`` (empty when there is none)."""
    try:
        node = _lookup(key, lang)
    except KeyError:
        return {}
    return {str(k): v for k, v in node.items() if isinstance(v, str)} if isinstance(node, dict) else {}


@functools.cache
def _vocabulary(sections: tuple[str, ...], lang: str) -> tuple[dict[str, str], tuple[tuple[re.Pattern, str], ...]]:
    """Names in ``lang`` of the codes of ``sections``: by code and by English name; patterns for templates."""
    names: dict[str, str] = {}
    patterns: list[tuple[re.Pattern, str]] = []
    for key in sections:
        english, own = _section("en", key), _section(lang, key)
        for code, name in own.items():
            parts = list(string.Formatter().parse(english.get(code, "")))
            if any(field is not None for _, field, _, _ in parts):  # "{system} only": any word in its place
                regex = "".join(re.escape(lit) + (f"(?P<{field}>.+)" if field is not None else "")
                                for lit, field, _, _ in parts)
                patterns.append((re.compile(regex), name))
                continue
            names.setdefault(code, name)
            if code in english:
                names.setdefault(english[code], name)
    return names, tuple(patterns)


def value_name(column: str, value, language: str | None):
    """The name in ``language`` of ``value``, a code of the column ``column`` (:data:`VALUE_COLUMNS`).

    A column without a vocabulary, a value the catalogue does not name and
    ``language`` None leave ``value`` as it is.

    Examples
    --------
    >>> value_name("last_decision", "data_error", "de"), value_name("combination", "ALV only", "it")
    ('Datenfehler', 'solo ALV')
    >>> value_name("profile", "revolving door", "fr"), value_name("exit_reason", "own_code", "fr")
    ('porte tournante', 'own_code')
    >>> value_name("group", "F:THIRD", "de"), value_name("attribute", "sex:age_band", "it")
    ('Frauen:Drittstaaten', "sesso:fascia d'età")
    """
    sections = VALUE_COLUMNS.get(column)
    if language is None or sections is None or not isinstance(value, str):
        return value
    names, patterns = _vocabulary(sections, check_language(language))
    if value in names:
        return names[value]
    for pattern, name in patterns:
        hit = pattern.fullmatch(value)
        if hit is not None:
            return name.format(**hit.groupdict())
    if _PARTS in value:  # an intersection: each part by its name (a part without one stays)
        return _PARTS.join(str(value_name(column, part, language)) for part in value.split(_PARTS))
    return value


def _named(values: pd.Series, column: str, lang: str) -> pd.Series:
    """``values`` (codes of ``column``) by their names in ``lang``; missing and unknown values as they are."""
    obj = values.astype(object)
    names = {v: value_name(column, v, lang) for v in pd.unique(obj) if isinstance(v, str)}
    return pd.Series([names.get(v, v) if isinstance(v, str) else v for v in obj], index=values.index,
                     name=values.name, dtype=object)


def _counts(column: str) -> bool:
    """Whether ``column`` holds counts (people, rows, spells)."""
    return column in _COUNT_COLUMNS or column == "n" or column.startswith("n_")


def _whole(values: pd.Series) -> pd.Series | None:
    """``values`` (floats) as nullable integers when every one present is a whole number, else None."""
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(x)
    there = x[~missing]
    if not np.all(np.isfinite(there)) or not np.all(there == np.round(there)) \
            or (len(there) and np.abs(there).max() >= 2.0 ** 53):
        return None
    whole = pd.arrays.IntegerArray(np.where(missing, 0, x).astype(np.int64), missing)
    return pd.Series(whole, index=values.index, name=values.name)


def _codes_of_headers() -> dict[str, str]:
    """Every language's header -> the column code (for reading a table back)."""
    out: dict[str, str] = {}
    for lang in LANGUAGES:
        for code, name in _columns(lang).items():
            if "{n}" in name:
                for n in range(1, 10):
                    out[name.format(n=n)] = code.replace("_n", f"_{n}")
            elif "{level}" in name:  # an interval's bound at the usual levels (header() names any level)
                out[name] = code
                for lvl in (50, 80, 90, 95, 99):
                    out[name.format(level=lvl)] = _level_code(code, lvl)
            else:
                out[name] = code
        template = _lookup("table.decision_column", lang)
        for code, name in _section(lang, "review.decisions").items():
            out[template.format(decision=name)] = f"decision:{code}"
    return out


def _own_decision_code(head: str) -> str:
    """The code of a header of reviews per decision the catalogue does not name (a deployment's own decision:
    ``Entscheid: <code>`` -> ``decision:<code>``); any other header unchanged."""
    for lang in LANGUAGES:
        prefix, _, suffix = _lookup("table.decision_column", lang).partition("{decision}")
        if head.startswith(prefix) and head.endswith(suffix) and len(head) > len(prefix) + len(suffix):
            return "decision:" + head[len(prefix):len(head) - len(suffix)]
    return head


def _level_code(key: str, level: int) -> str:
    """The column code of a bound's catalogue key at ``level``: ``lower_level`` -> ``lower 95%``,
    ``vs_risk_upper_level`` -> ``vs_risk upper 95%``, ``naive_interval_lower`` -> ``naive_lower_95``."""
    if "interval_" in key:
        return key.replace("interval_", "") + f"_{level}"
    return key.removesuffix("_level").replace("vs_risk_", "vs_risk ") + f" {level}%"


def _text_mask(col: pd.Series, test) -> np.ndarray:
    """Rows of ``col`` holding text for which ``test(col.str)`` holds (False for non-text values)."""
    try:
        hit = test(col.str)  # NaN for values that are not text
    except AttributeError:  # an object column without any text
        return np.zeros(len(col), dtype=bool)
    return hit.astype("boolean").fillna(False).to_numpy(dtype=bool)  # all-NaN (float) when no value is text


def _as_text_column(col: pd.Series) -> pd.Series | None:
    """``col`` if it may hold text (object, string, categorical of text), else None."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = col.cat.categories
        if pd.api.types.is_object_dtype(cats.dtype) or pd.api.types.is_string_dtype(cats.dtype):
            return col.astype(object)
        return None
    if pd.api.types.is_object_dtype(col.dtype) or pd.api.types.is_string_dtype(col.dtype):
        return col
    return None  # numbers (also negative ones), booleans, dates stay what they are


def _neutralise_text(col: pd.Series) -> pd.Series:
    """``'`` before every text value starting with a formula character; other values untouched."""
    text = _as_text_column(col)
    if text is None:
        return col
    hit = _text_mask(text, lambda s: s.match(_FORMULA_RE))
    if not hit.any():
        return text
    out = text.copy()
    out[hit] = "'" + text[hit].astype("str")
    return out


def _cr_to_lf(col: pd.Series) -> pd.Series:
    """Line breaks inside text cells as ``\\n``: the CSV writer quotes those, but not a bare ``\\r``."""
    text = _as_text_column(col)
    if text is None:
        return col
    hit = _text_mask(text, lambda s: s.contains("\r", regex=False))
    if not hit.any():
        return text
    out = text.copy()
    out[hit] = text[hit].astype("str").str.replace("\r\n", "\n", regex=False).str.replace("\r", "\n", regex=False)
    return out


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells and column names cannot run as spreadsheet formulas.

    Every text value (and column name) starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return gets a leading ``'`` (the OWASP advice
    against CSV injection). Numeric, boolean and date columns are left as
    they are: ``-0.5`` in a number column stays a number. Vectorised per
    column.

    Examples
    --------
    >>> df = pd.DataFrame({"case_ids": ["=HYPERLINK(1)", "A-1"], "risk": [-0.5, 0.1]})
    >>> neutralise_formulas(df).to_dict("list")
    {'case_ids': ["'=HYPERLINK(1)", 'A-1'], 'risk': [-0.5, 0.1]}
    """
    out = df.copy()
    for j in range(out.shape[1]):  # by position: column names may repeat
        out.isetitem(j, _neutralise_text(out.iloc[:, j]))
    out.columns = _neutralised_headers(out.columns)
    return out


def _neutralised_headers(columns) -> list:
    """Column names starting with a formula character get a leading ``'``."""
    return [f"'{c}" if isinstance(c, str) and c.startswith(FORMULA_START) else c for c in columns]


#: Frames of at most this many rows are made safe value by value (:func:`_safe_small`): a worklist of 25
#: rows and 38 columns took 45 ms through the column-wise string methods, eight of them each night
_SMALL_ROWS = 1000


def _safe_value(v):
    """One cell as :func:`_safe` leaves it: ``'`` before a formula character, ``\\r`` line breaks as ``\\n``."""
    if not isinstance(v, str):
        return v
    if v.startswith(FORMULA_START):
        v = "'" + v
    return v.replace("\r\n", "\n").replace("\r", "\n") if "\r" in v else v


def _safe_small(col: pd.Series) -> pd.Series:
    """:func:`_neutralise_text` then :func:`_cr_to_lf`, value by value (a small frame's column)."""
    text = _as_text_column(col)
    if text is None:
        return col
    values = text.to_numpy(dtype=object)
    new = [_safe_value(v) for v in values]
    if all(a is b for a, b in zip(new, values, strict=True)):
        return text
    return pd.Series(new, index=text.index, name=text.name, dtype=text.dtype)


def _safe(df: pd.DataFrame) -> pd.DataFrame:
    """Formulas neutralised and line breaks as ``\\n``, in cells and headers."""
    if len(df) <= _SMALL_ROWS:
        safe = df.copy()
        for j in range(safe.shape[1]):
            safe.isetitem(j, _safe_small(safe.iloc[:, j]))
        safe.columns = _neutralised_headers(safe.columns)
    else:
        safe = neutralise_formulas(df)
        for j in range(safe.shape[1]):
            safe.isetitem(j, _cr_to_lf(safe.iloc[:, j]))
    safe.columns = [c.replace("\r\n", "\n").replace("\r", "\n") if isinstance(c, str) else c
                    for c in safe.columns]
    return safe


def _yes_no(values: pd.Series) -> bool:
    """An object column of True/False with missing values (e.g. "significant", unknown where not tested)."""
    if values.dtype != object:
        return False
    present_ = values.dropna()
    return bool(len(present_)) and all(isinstance(v, bool | np.bool_) for v in pd.unique(present_))


def present(df: pd.DataFrame, language: str | None, *, percent: Iterable[str] = PERCENT_COLUMNS,
            decimals: int = 1, rounding: Mapping[str, int] | None = None) -> pd.DataFrame:
    """``df`` as a person reads it: headers, codes and yes/no in ``language``, risks in percent, safe text.

    ``language`` None keeps the codes (headers, bands, decisions...,
    booleans) and the values; only the text is made safe. Dates become
    ``YYYY-MM-DD`` text. ``decimals`` are those of the percentages;
    ``rounding`` (column -> decimals) rounds more columns than
    :data:`ROUNDED_COLUMNS` (with a ``language``).
    """
    lang = _language(language)
    out = df.copy()
    if lang is not None:
        loc = load_locale(lang)
        yes, no = loc["table"]["yes"], loc["table"]["no"]
        rounded = {**ROUNDED_COLUMNS, **(rounding or {})}
        for j, col in enumerate(df.columns):
            values = df.iloc[:, j]
            if col in percent and pd.api.types.is_numeric_dtype(values.dtype):
                out.isetitem(j, (values.astype(np.float64) * 100).round(decimals))
            elif str(col).endswith("_contribution") and pd.api.types.is_float_dtype(values.dtype):
                # a weight to read, not 16 digits; + 0.0 turns a rounded -0.0 into 0.0
                out.isetitem(j, values.round(CONTRIBUTION_DECIMALS) + 0.0)
            elif col in rounded and pd.api.types.is_float_dtype(values.dtype):
                out.isetitem(j, values.round(int(rounded[col])) + 0.0)
            elif _counts(str(col)) and pd.api.types.is_float_dtype(values.dtype) \
                    and (whole := _whole(values)) is not None:
                out.isetitem(j, whole)
            elif col in VALUE_COLUMNS:
                out.isetitem(j, _named(values, str(col), lang))
            elif pd.api.types.is_bool_dtype(values.dtype) or _yes_no(values):  # also "boolean": NA stays empty
                missing = values.isna().to_numpy(dtype=bool)
                words = np.where(values.fillna(False).to_numpy(dtype=bool), yes, no).astype(object)
                words[missing] = None
                out.isetitem(j, words)
            elif pd.api.types.is_datetime64_any_dtype(values.dtype):
                out.isetitem(j, values.dt.strftime("%Y-%m-%d").astype(object).where(values.notna(), None))
        out.columns = [header(str(c), lang) for c in df.columns]
    else:
        for j in range(df.shape[1]):
            values = df.iloc[:, j]
            if pd.api.types.is_datetime64_any_dtype(values.dtype):
                out.isetitem(j, values.dt.strftime("%Y-%m-%d").astype(object).where(values.notna(), None))
    return _safe(out)


def write_table(df: pd.DataFrame, path: str | Path, *, language: str | None = None,
                percent: Iterable[str] = PERCENT_COLUMNS, private: bool = False, float_format: str | None = None,
                na_rep: str = "", rounding: Mapping[str, int] | None = None) -> Path:
    """Write ``df`` as a table people open (see the module documentation); returns the path.

    A path ending in ``.xlsx`` gives an Excel sheet (:func:`write_xlsx`),
    any other a CSV (``;``, UTF-8 with BOM). Written atomically
    (:mod:`iizrisk.store`).

    Parameters
    ----------
    df : DataFrame
        The table with column codes as headers; its index is not written.
    path : str or Path
    language : {"de", "fr", "it", "en"}, optional
        Headers, band names, the names of codes (:data:`VALUE_COLUMNS`) and
        yes/no in this language, risks in percent, shares rounded. None keeps
        the column codes and values (a machine-readable CSV that is still safe
        to open); another code raises :class:`~iizrisk.errors.ConfigError`.
    percent : iterable of str, default :data:`PERCENT_COLUMNS`
        Columns written as percentages (only with a ``language``).
    private : bool, default False
        Owner-only permissions (0600).
    float_format, na_rep : optional
        As for :meth:`pandas.DataFrame.to_csv` (the CSV only).
    rounding : mapping of str to int, optional
        Decimals of further columns (only with a ``language``), besides :data:`ROUNDED_COLUMNS`.
    """
    language = _language(language)
    if Path(path).suffix.lower() == ".xlsx":
        return write_xlsx(df, path, language=language, percent=percent, private=private, rounding=rounding)
    fmt = CsvFormat(sep=SWISS_CSV.sep, bom=SWISS_CSV.bom, float_format=float_format, na_rep=na_rep)
    return write_csv_atomic(present(df, language, percent=percent, rounding=rounding), path, fmt, private=private)


def spreadsheet_dates(df: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (``df`` as :func:`present` shows it) with ``df``'s date columns as dates again.

    For a spreadsheet: a cell holding a date (``datetime.date``, shown ``yyyy-mm-dd``)
    sorts and filters as a date, where the text of the CSV would sort as text.
    A missing date stays an empty cell. Columns are matched by position.
    """
    out = frame.copy()
    for j in range(df.shape[1]):
        values = df.iloc[:, j]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            days = values.dt.tz_localize(None) if getattr(values.dt, "tz", None) is not None else values
            out.isetitem(j, days.dt.date.astype(object).where(values.notna(), None))
    return out


#: Characters Excel refuses in a sheet name.
_SHEET_FORBIDDEN = str.maketrans({c: "_" for c in "[]:*?/\\"})


def _column_widths(frame: pd.DataFrame, *, least: int = 8, most: int = 60) -> list[int]:
    """A width per column that fits its header and its longest value (in characters), within bounds."""
    widths = []
    for j, col in enumerate(frame.columns):
        values = frame.iloc[:, j]
        longest = int(values.astype(object).where(values.notna(), "").astype(str).str.len().max()) \
            if len(frame) else 0
        widths.append(min(most, max(least, longest, len(str(col))) + 2))
    return widths


def _formula_cells(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row and column positions of text cells starting with ``=`` (openpyxl would store them as formulas)."""
    hits = np.zeros(frame.shape, dtype=bool)
    for j in range(frame.shape[1]):
        text = _as_text_column(frame.iloc[:, j])
        if text is not None:
            hits[:, j] = _text_mask(text, lambda s: s.startswith("="))
    rows, cols = np.nonzero(hits)
    return rows, cols


def write_xlsx(df: pd.DataFrame, path: str | Path, *, language: str | None = None,
               percent: Iterable[str] = PERCENT_COLUMNS, private: bool = False, sheet: str | None = None,
               rounding: Mapping[str, int] | None = None) -> Path:
    """Write ``df`` as an Excel sheet people open: the cells of :func:`write_table`; returns the path.

    The header (in ``language``, see :func:`present`) is bold and frozen,
    the columns are as wide as their longest value (8 to 60 characters), dates
    are date cells (:func:`spreadsheet_dates`), and no cell is a formula: text is neutralised as in the CSV and every text
    cell starting with ``=`` is stored as text. Written atomically.

    Parameters
    ----------
    df : DataFrame
    path : str or Path
        The ``.xlsx`` file.
    language, percent, private, rounding
        As for :func:`write_table`.
    sheet : str, optional
        The sheet's name (default: the file's name without ``.xlsx``; at most
        31 characters, ``[]:*?/\\`` replaced).

    Examples
    --------
    >>> import tempfile, openpyxl
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = write_xlsx(pd.DataFrame({"risk": [0.414], "case_ids": ["=1+1"]}), Path(d) / "t.xlsx", language="de")
    ...     ws = openpyxl.load_workbook(p).active
    ...     [[c.value for c in row] for row in ws.iter_rows()], ws.freeze_panes
    ([['Risiko (%)', 'Fall-Nr.'], [41.4, "'=1+1"]], 'A2')
    """
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    frame = present(df, language, percent=percent, rounding=rounding)
    name = (sheet or Path(path).stem or "table").translate(_SHEET_FORBIDDEN)[:31]
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl", date_format="yyyy-mm-dd") as writer:
        spreadsheet_dates(df, frame).to_excel(writer, sheet_name=name, index=False, freeze_panes=(1, 0))
        ws = writer.sheets[name]
        if len(frame.columns):
            ws.auto_filter.ref = ws.dimensions  # the header's filter buttons: sort and filter at once
        for j, width in enumerate(_column_widths(frame), start=1):
            ws.column_dimensions[get_column_letter(j)].width = width
            ws.cell(row=1, column=j).font = Font(bold=True)
        for i, j in zip(*_formula_cells(frame), strict=True):  # none after present(); a guard, not a loop over rows
            ws.cell(row=int(i) + 2, column=int(j) + 1).data_type = "s"
    return write_bytes_atomic(buf.getvalue(), path, private=private)


def write_outputs(frame: pd.DataFrame, folder: str | Path, name: str, *, language: str | None = None,
                  csv: bool = True, xlsx: bool = False, parquet: bool = True, private: bool = False,
                  float_format: str | None = None, na_rep: str = "",
                  rounding: Mapping[str, int] | None = None, names: Mapping[str, Namer] | None = None) -> list[Path]:
    """Write one table as ``<name>.csv`` (people), ``<name>.xlsx`` (people) and ``<name>.parquet`` (machines).

    The CSV and the xlsx go through :func:`write_table` (in ``language``,
    with ``rounding``, and the codes of the columns of ``names`` by the name
    ``names[column](code, language)`` gives, where it gives one); the Parquet
    file holds the frame as it is (codes, probabilities, every digit, no
    index). Returns the files written, in that order.
    """
    language = _language(language)  # before any file: a bad code writes nothing
    out = Path(folder)
    written = []
    people = _with_names(frame, names, language)
    if csv:
        written.append(write_table(people, out / f"{name}.csv", language=language, private=private,
                                   float_format=float_format, na_rep=na_rep, rounding=rounding))
    if xlsx:
        written.append(write_xlsx(people, out / f"{name}.xlsx", language=language, private=private,
                                  rounding=rounding))
    if parquet:
        written.append(write_parquet_atomic(frame, out / f"{name}.parquet", private=private))
    return written


#: Names a column's codes for people: ``namer(code, language)`` -> the name, or None to keep the code.
Namer = Callable[[str, str], "str | None"]


def _with_names(frame: pd.DataFrame, names: Mapping[str, Namer] | None, language: str | None) -> pd.DataFrame:
    """``frame`` with the codes of the columns of ``names`` replaced by their names in ``language``."""
    if language is None or not names or not any(c in frame.columns for c in names):
        return frame
    out = frame.copy()
    for column, namer in names.items():
        if column in out.columns:
            codes = out[column].astype(object)
            known = {v: namer(v, language) for v in pd.unique(codes) if isinstance(v, str)}
            named = codes.map({k: v for k, v in known.items() if v is not None})
            out[column] = named.where(named.notna(), codes)
    return out


def read_table(path: str | Path, **read) -> pd.DataFrame:
    """Read a table written by :func:`write_table`, with the column codes as headers (in any language).

    A CSV (``;``, UTF-8 with or without BOM) or, for a path ending in
    ``.xlsx``, the first sheet. Values are read as they are written
    (percentages stay percentages, yes/no stay words); keyword arguments go
    to :func:`pandas.read_csv` (or :func:`pandas.read_excel`).
    """
    if Path(path).suffix.lower() == ".xlsx":
        df = pd.read_excel(path, engine="openpyxl", **read)
    else:
        df = pd.read_csv(path, sep=";", encoding="utf-8-sig", **read)
    codes = _codes_of_headers()
    df.columns = [codes.get(str(c)) or _own_decision_code(str(c)) for c in df.columns]
    return df
