"""Reviews: the worklists come back filled in, and the next night respects them.

Every night each institution's worklist is also written as an ``.xlsx``
review file (:func:`write_review_file`): one sheet named after the
institution, a frozen header in the list's language, sensible widths, and
three columns to fill in -- the review date, a decision chosen from a
drop-down list (``[reviews] decisions``) and a free-text note. A coordinator
may add a row for a case that was not on the list (an *override*).

``iizrisk reviews import CONFIG FILE...`` (:func:`import_reviews`) reads the
filled files (xlsx or the CSV of the same table) and checks every row before
anything is stored; each problem names the file, the row, the column and the
fix, and nothing is stored while one remains:

* each case id is looked up among the cases of the file's own institution
  only (a case id of another institution is "not a case of ALV", never
  "a case of SH"; one the exports give several people is a data error for
  the data steward); no message repeats a case id or a note;
* the decision must be one of the configured ones (its code or its name in
  any language);
* the review date must be a real calendar day (``YYYY-MM-DD`` or
  ``dd.mm.yyyy``, no words such as "today"), not before the as-of date of the
  list it answers (the row's as-of date, else the file's: the xlsx's information
  sheet, or the CSV's other rows; the first nightly run the history store holds
  when neither is known) and not after today; a history store without any
  nightly run (a wrong ``[output] history_dir``) refuses the import;
* one decision per case and file: two rows for the same case with different
  decisions (or the same day with a different note) are both refused, and so
  are two files of one import giving the same case different reviews on one
  day; identical rows are merged into one review, with a warning;
* who decided (``decided_by``: a role or staff code, never a name) is given on
  every row, and holds no AHV number: a human decides, and the record says who;
* the note goes through the raw-identifier guard
  (:func:`iizrisk.pseudonym.looks_like_ahv`), and 756 with ten more digits in
  any grouping or with a wrong check digit is refused too.

The reviews are stored in the history store (:meth:`HistoryStore.write_reviews`,
one atomic rename) under the run lock, so an import never meets a nightly run
half-way. One review per institution, person and day: a later import of the
same day's review replaces it, and importing the same file again changes
nothing.

The next night (:mod:`iizrisk.batch`):

* :func:`keep_off` -- a person whose last review at an institution was a
  ``[reviews] keep_off_days`` decision (default ``not_suitable`` and
  ``already_in_iiz``, 180 days) stays off that institution's list for that
  many days, unless their risk band has risen since the review;
* :func:`interventions_from_reviews` -- a ``[reviews] interventions``
  decision (default ``joint_assessment_held``) is an intervention
  (``joint_assessment``) dated on the review day: it feeds the features, the
  "recently assessed" exclusion and the research study, with no second file to
  keep (:func:`all_interventions`);
* :func:`decision_counts` -- ``[reviews] summary_decisions`` (default
  ``data_error``) are counted in the run summary for the data steward.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._results import ResultMixin
from ._texts import LANGUAGES, load_locale, or_english, text
from .errors import ValidationError
from .history import REVIEW_COLUMNS, HistoryStore
from .pseudonym import ahv_in_free_text, looks_like_ahv
from .store import make_dirs, write_bytes_atomic
from .tables import _codes_of_headers, header, present, spreadsheet_dates
from .validate import MAX_TEXT_LENGTH_DEFAULT, Problem, ValidationReport
from .worklist import band_order

__all__ = ["FILL_IN", "META_SHEET", "ReviewImport", "all_interventions", "decision_counts", "decision_label",
           "import_reviews", "interventions_from_reviews", "keep_off", "read_review_file", "review_frame",
           "write_review_file"]

logger = logging.getLogger("iizrisk")

#: The columns a coordinator fills in.
FILL_IN = ("review_date", "decision", "decided_by", "note")
#: The longest "decided by" accepted: a role or a staff code, not a sentence.
MAX_DECIDED_BY = 100
#: The hidden sheet that says which institution and night a review file belongs to.
META_SHEET = "iizrisk"
_LISTS_SHEET = "lists"
_EPOCH_ZIP = (1980, 1, 1, 0, 0, 0)
#: columns of the review file taken from the worklist (the rest of its columns are shown too)
_KEY = ("institution", "case_ids")
#: the earliest review date accepted when the list a row answers is not known
_EARLIEST = pd.Timestamp("1900-01-01")
_ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_SWISS_DAY = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")


def decision_label(code: str, language: str) -> str:
    """The name of a decision in ``language`` (the code itself for a deployment's own decision)."""
    names = load_locale(or_english(language))["review"]["decisions"]
    return str(names.get(code, code))


def _decision_codes(decisions: Sequence[str]) -> dict[str, str]:
    """Every accepted spelling of a decision (code, name in any language; case and spaces ignored) -> code."""
    out: dict[str, str] = {}
    for code in decisions:
        out[_norm(code)] = code
        for lang in LANGUAGES:
            out[_norm(decision_label(code, lang))] = code
    return out


def _norm(value: str) -> str:
    return re.sub(r"\s+", " ", str(value).strip().lower().replace("_", " "))


# ------------------------------------------------------------------ writing
def review_frame(worklist: pd.DataFrame) -> pd.DataFrame:
    """The worklist as a review table: no pseudonym, and empty columns to fill in (:data:`FILL_IN`: review date,
    decision, who decided, note)."""
    df = worklist.drop(columns=[c for c in ("person_id",) if c in worklist.columns]).copy()
    for c in FILL_IN:
        df[c] = pd.Series([None] * len(df), dtype=object)
    return df


def write_review_file(worklist: pd.DataFrame, path: str | Path, *, institution: str, as_of, language: str = "de",
                      decisions: Sequence[str] = ()) -> Path:
    """Write one institution's worklist as an ``.xlsx`` review file; returns the path.

    The sheet is named after the institution; its header (in ``language``) is
    frozen, the columns have widths that fit, the decision column offers
    ``decisions`` (their names in ``language``) as a drop-down list, and the
    review date column takes dates. A hidden sheet records the institution
    and the as-of date. Same list, same bytes (no timestamps in the file).
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    t = pd.Timestamp(as_of).to_pydatetime()
    review = review_frame(worklist)
    frame = present(review, language)
    codes = list(review.columns)
    wb = Workbook()
    ws = wb.active
    ws.title = institution
    ws.append(list(frame.columns))
    for row in spreadsheet_dates(review, frame).itertuples(index=False):  # dates as date cells (yyyy-mm-dd)
        ws.append([None if _missing(v) else (v.item() if isinstance(v, np.generic) else v) for v in row])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions  # sort and filter by band, institution count... without a setting
    for j, col in enumerate(frame.columns, start=1):
        longest = int(frame.iloc[:, j - 1].astype(object).where(frame.iloc[:, j - 1].notna(), "").astype(str)
                      .str.len().max()) if len(frame) else 0
        width = min(60, max(8, max(longest, min(len(str(col)), 24)) + 2))
        if codes[j - 1] in FILL_IN:
            width = {"review_date": 14, "decision": 34, "decided_by": 24, "note": 50}[codes[j - 1]]
        ws.column_dimensions[get_column_letter(j)].width = width
    n_rows = max(len(frame) + 200, 500)  # room for overrides: rows the coordinator adds
    lists = wb.create_sheet(_LISTS_SHEET)
    labels = [decision_label(d, language) for d in decisions]
    for i, label in enumerate(labels, start=1):
        lists.cell(row=i, column=1, value=label)
    lists.sheet_state = "hidden"
    col_of = {c: get_column_letter(codes.index(c) + 1) for c in FILL_IN}
    if labels:
        dv = DataValidation(type="list", formula1=f"{_LISTS_SHEET}!$A$1:$A${len(labels)}", allow_blank=True,
                            showErrorMessage=True, errorTitle=header("decision", language),
                            error=text("review.pick", language))
        dv.add(f"{col_of['decision']}2:{col_of['decision']}{n_rows}")
        ws.add_data_validation(dv)
    dates = DataValidation(type="date", operator="greaterThan", formula1="36526", allow_blank=True,
                           showErrorMessage=True, errorTitle=header("review_date", language), error="YYYY-MM-DD")
    dates.add(f"{col_of['review_date']}2:{col_of['review_date']}{n_rows}")
    ws.add_data_validation(dates)
    ws.column_dimensions[col_of["review_date"]].number_format = "yyyy-mm-dd"  # the column's style: new cells too
    meta = wb.create_sheet(META_SHEET)
    for key, value in (("institution", institution), ("as_of", t.date().isoformat()), ("language", language),
                       ("instructions", text("review.instructions", language))):
        meta.append([key, value])
    meta.sheet_state = "hidden"
    wb.properties.creator = "iizrisk"
    wb.properties.created = t
    buf = io.BytesIO()
    wb.save(buf)
    return write_bytes_atomic(_deterministic_zip(buf.getvalue(), t), path)


def _missing(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # a list-like value is not missing
        return False


def _deterministic_zip(raw: bytes, when: dt.datetime) -> bytes:
    """The xlsx with fixed member times and the save time in its properties replaced by ``when``."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rb"\g<1>" + stamp + rb"\g<2>",
                              data)
            zi = zipfile.ZipInfo(info.filename, date_time=_EPOCH_ZIP)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            zout.writestr(zi, data)
    return out.getvalue()


# ------------------------------------------------------------------ reading
@dataclass
class _Parsed:
    """One review file as read: its rows with column codes, their row numbers, its institution."""

    name: str
    rows: pd.DataFrame
    row_numbers: np.ndarray
    institution: str | None
    #: the as-of date of the list the file was written for (the xlsx's information sheet), when known
    as_of: object = None


def read_review_file(path: str | Path, report: ValidationReport | None = None) -> _Parsed:
    """Read a filled review file (``.xlsx`` or ``.csv``) with the column codes as headers.

    Problems with the file as a whole (empty, not a table, the institution's
    sheet missing) go into ``report`` (a new one when None); the rows are
    checked by :func:`import_reviews`.
    """
    path = Path(path)
    report = report if report is not None else ValidationReport()
    name = path.name
    empty = _Parsed(name, pd.DataFrame(), np.array([], dtype=np.int64), None)
    if not path.exists():
        _whole_file(report, name, "(file)", "the file does not exist",
                    fix="check the path and the file name (the .xlsx or .csv review file the run wrote)")
        return empty
    if path.is_dir():
        _whole_file(report, name, "(file)", "a folder where a review file is expected",
                    fix="give the review file itself (the .xlsx or .csv in it), not its folder")
        return empty
    if not path.is_file():
        _whole_file(report, name, "(file)", "not a regular file (a FIFO, a device or a socket)",
                    fix="copy the review file to a regular file and give that")
        return empty
    if path.stat().st_size == 0:
        _whole_file(report, name, "(file)", "the file is empty", fix="send the filled review file "
                   "(the .xlsx or .csv the run wrote, with review date and decision filled in)")
        return empty
    too_big = _too_big(path)
    if too_big:
        _whole_file(report, name, "(file)", too_big, fix="send the review file the run wrote, filled in (a list "
                    "of a night is a few hundred rows); split a file that joins many lists")
        return empty
    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        return _read_xlsx(path, report)
    if path.suffix.lower() in {".csv", ".txt"}:
        df = None
        for encoding in ("utf-8-sig", "cp1252"):  # Excel's "CSV (Trennzeichen-getrennt)" writes Windows-1252
            try:
                df = pd.read_csv(path, sep=";", encoding=encoding, dtype=str, keep_default_na=False)
            except UnicodeDecodeError:
                continue
            except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
                _whole_file(report, name, "(file)", f"not a ';'-separated table ({type(exc).__name__})",
                           fix="save the review file as CSV UTF-8 with ';' as separator, or send the .xlsx")
                return empty
            if encoding != "utf-8-sig":
                logger.info("reviews: %s read as Windows-1252 (saved as CSV by Excel)", name)
            break
        if df is None:
            _whole_file(report, name, "(file)", "neither UTF-8 nor Windows-1252 text",
                       fix="save the review file as CSV UTF-8 with ';' as separator, or send the .xlsx")
            return empty
        return _table(name, df, None, report)
    _whole_file(report, name, "(file)", f"unknown file type {path.suffix!r}",
               fix="send the .xlsx (or the .csv) review file as the run wrote it")
    return empty


class _DamagedWorkbook(Exception):
    """A part of an xlsx workbook cannot be read (a damaged XML part, a bad checksum)."""


def _sheet_rows(wb, sheet: str) -> list[tuple]:
    """The values of a sheet's rows; a read-only workbook reads its parts only now, so damage shows here."""
    import xml.etree.ElementTree as ET
    import zipfile
    import zlib

    try:
        return list(wb[sheet].iter_rows(values_only=True))
    except (ET.ParseError, zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError,
            TypeError) as exc:  # what a damaged part raises (openpyxl, zipfile, the XML parser)
        raise _DamagedWorkbook(type(exc).__name__) from exc


#: The largest review file read, on disk and (an xlsx) unpacked: a night's list is a few hundred rows, a few
#: hundred KB; a file far larger is not a review file, and an unpacked zip bomb would fill the memory.
MAX_REVIEW_FILE_BYTES = 50 * 2**20
MAX_REVIEW_XLSX_UNPACKED_BYTES = 500 * 2**20


def _too_big(path: Path) -> str:
    """Why the file is too large to be a review file ("" when it is not)."""
    import zipfile

    size = path.stat().st_size
    if size > MAX_REVIEW_FILE_BYTES:
        return f"{size / 2**20:,.0f} MB, more than a review file holds (at most {MAX_REVIEW_FILE_BYTES // 2**20} MB)"
    if path.suffix.lower() in {".xlsx", ".xlsm"} and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                unpacked = sum(i.file_size for i in z.infolist())
        except (zipfile.BadZipFile, OSError):
            return ""  # said as "not an xlsx workbook" by the reader
        if unpacked > MAX_REVIEW_XLSX_UNPACKED_BYTES:
            return (f"unpacks to {unpacked / 2**20:,.0f} MB, more than a review file holds (at most "
                    f"{MAX_REVIEW_XLSX_UNPACKED_BYTES // 2**20} MB)")
    return ""


def _read_xlsx(path: Path, report: ValidationReport) -> _Parsed:
    from openpyxl import load_workbook

    name = path.name
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several kinds for a damaged or foreign file
        _whole_file(report, name, "(file)", f"not an xlsx workbook ({type(exc).__name__})",
                   fix="send the .xlsx review file as the run wrote it, filled in with a spreadsheet program")
        return _Parsed(name, pd.DataFrame(), np.array([], dtype=np.int64), None)
    try:
        meta = {}
        if META_SHEET in wb.sheetnames:
            meta = {str(r[0]): r[1] for r in _sheet_rows(wb, META_SHEET) if r and r[0] is not None}
        inst = str(meta["institution"]) if meta.get("institution") else None
        if inst is None or inst not in wb.sheetnames:
            sheets = [s for s in wb.sheetnames if s not in {META_SHEET, _LISTS_SHEET}]
            _whole_file(report, name, "(sheet)", f"no sheet named {inst!r} holds the reviews (sheets: {', '.join(sheets)})"
                       if inst else "the file is not a review file written by iizrisk (its information sheet is "
                       "missing)",
                       fix="fill in the sheet of the review file the run wrote, keep its name, and send that file")
            return _Parsed(name, pd.DataFrame(), np.array([], dtype=np.int64), inst)
        rows = _sheet_rows(wb, inst)
    except _DamagedWorkbook as exc:
        _whole_file(report, name, "(file)", f"the workbook is damaged ({exc})",
                    fix="open it in Excel and save it again, or ask for the file to be sent again")
        return _Parsed(name, pd.DataFrame(), np.array([], dtype=np.int64), None)
    finally:
        wb.close()
    if not rows:
        _whole_file(report, name, "(sheet)", f"the sheet {inst!r} is empty",
                   fix="send the review file the run wrote, filled in")
        return _Parsed(name, pd.DataFrame(), np.array([], dtype=np.int64), inst)
    head = ["" if h is None else str(h) for h in rows[0]]
    body = [r[: len(head)] for r in rows[1:]]
    df = pd.DataFrame(body, columns=head, dtype=object)
    return _table(name, df, inst, report, as_of=meta.get("as_of"))


def _table(name: str, df: pd.DataFrame, inst: str | None, report: ValidationReport, *, as_of=None) -> _Parsed:
    codes = _codes_of_headers()
    df = df.copy()
    df.columns = [codes.get(str(c).strip(), str(c).strip()) for c in df.columns]
    df = df.loc[:, ~pd.Index(df.columns).duplicated()]
    missing = [c for c in ("case_ids", *FILL_IN) if c not in df.columns]
    if inst is None and "institution" not in df.columns:
        missing.insert(0, "institution")
    if missing == ["decided_by"]:  # a file of a version that did not ask who decided
        _whole_file(report, name, "decided_by", "column missing: the file does not say who decided",
                    fix=f"add a column '{header('decided_by', 'de')}' (or its name in another language) with the "
                    "role or staff code of whoever decided each review, or copy the reviews into tonight's "
                    "review file, which has it")
        return _Parsed(name, pd.DataFrame(), np.array([], dtype=np.int64), inst)
    if missing:
        _whole_file(report, name, ", ".join(missing), "column(s) missing",
                   fix="keep the columns of the review file the run wrote (the headers may be in any of the four "
                   "languages); add no columns before them")
        return _Parsed(name, pd.DataFrame(), np.array([], dtype=np.int64), inst)
    if as_of is None:  # a CSV: the list's as-of date is on its rows (also on those not filled in)
        as_of = _list_day(df)
    numbers = np.arange(2, len(df) + 2, dtype=np.int64)  # the spreadsheet's row numbers (header = 1)
    filled = np.zeros(len(df), dtype=bool)
    for c in FILL_IN:
        filled |= ~_blank(df[c])
    if not filled.any():
        _whole_file(report, name, ", ".join(header(c, "en") for c in FILL_IN), "no row is filled in",
                   fix="fill in the review date and the decision of each case reviewed, then send the file")
    return _Parsed(name, df.loc[filled].reset_index(drop=True), numbers[filled], inst, as_of)


def _list_day(df: pd.DataFrame) -> dt.date | None:
    """The as-of date of the list a table answers, from its rows' as-of dates (the earliest, when a file
    joins several lists); None without them. A row the coordinator added, with no as-of date of its own,
    answers the list of its file, as in the xlsx (whose information sheet names it)."""
    if "as_of" not in df.columns:
        return None
    days = _dates(df["as_of"]).dropna()
    days = days[days > _EARLIEST]
    return days.min().date() if len(days) else None


def _whole_file(report: ValidationReport, name: str, column: str, problem: str, *, fix: str) -> None:
    """A problem of the file as a whole (no row to name)."""
    report.problems.append(Problem(name, column, problem, 1, (), "", fix))


def _blank(col: pd.Series) -> np.ndarray:
    values = col.astype(object)
    return (values.isna() | values.map(lambda v: isinstance(v, str) and not v.strip())).to_numpy(dtype=bool)


def _day(value) -> dt.date | None:
    """One cell as a calendar day: an xlsx date, or ``YYYY-MM-DD`` (a time of day may follow) or
    ``dd.mm.yyyy`` text; None for anything else (no words such as "today", no impossible day, no year 0)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.date() if isinstance(value, dt.datetime) else value
    if not isinstance(value, str):
        return None
    v = value.strip()
    m = _ISO_DAY.fullmatch(v)
    ymd = (m.group(1), m.group(2), m.group(3)) if m else None
    if ymd is None and (m := _SWISS_DAY.fullmatch(v)):
        ymd = (m.group(3), m.group(2), m.group(1))
    if ymd is None:
        return None
    try:
        return dt.date(*(int(x) for x in ymd))
    except ValueError:  # 2025-02-30, year 0
        return None


def _dates(col: pd.Series) -> pd.Series:
    """Review dates as timestamps (NaT where not a calendar day, see :func:`_day`)."""
    days = [_day(v) for v in col.astype(object)]
    return pd.Series([pd.NaT if d is None else pd.Timestamp(d) for d in days], index=col.index,
                     dtype="datetime64[s]")


def _no_ahv(values: pd.Series) -> pd.Series:
    """``values`` for an example in a report, a value shaped like an AHV number blanked (never echoed)."""
    text_ = values.astype(object).map(lambda v: "" if v is None or _missing(v) else str(v))
    return values.astype(object).where(~looks_like_ahv(text_), None)


# ------------------------------------------------------------------ importing
@dataclass
class ReviewImport(ResultMixin):
    """What an import stored: rows read, and how many reviews were new, replaced or already there."""

    files: list[str] = field(default_factory=list)
    rows: int = 0
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    overrides: int = 0
    #: rows that repeated another row of the import exactly (same case, day, decision and note): stored once
    merged: int = 0
    per_institution: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame({"institution": list(self.per_institution),
                             "reviews": list(self.per_institution.values())})

    def summary_text(self, decimals: int = 3) -> str:
        return (f"{self.rows} review(s) read from {len(self.files)} file(s): {self.added} new, {self.replaced} "
                f"replaced, {self.unchanged} already stored; {self.overrides} of them on cases that were not on the list"
                + (f"; {self.merged} identical repeated row(s) merged" if self.merged else ""))

    def plot(self, ax=None):
        from .plots import _axes

        ax = _axes(ax, (4, 2))
        s = self.summary
        ax.bar(s["institution"], s["reviews"])
        return ax

    def _output_tables(self, k: int):
        return []


def _case_map(settings, institutions: set[str]) -> pd.DataFrame:
    """``institution, case_id, person_id`` of every case of ``institutions`` in the deployment's data."""
    from .io import ingest

    spells = ingest(settings).spells
    if "case_id" not in spells.columns:
        return pd.DataFrame({"institution": [], "case_id": [], "person_id": []}, dtype="str")
    inst = spells["institution"].astype("str")
    mine = inst.isin(institutions).to_numpy() & spells["case_id"].notna().to_numpy()
    return pd.DataFrame({"institution": inst.to_numpy()[mine],
                         "case_id": spells["case_id"].astype("str").to_numpy()[mine],
                         "person_id": spells["person_id"].astype("str").to_numpy()[mine]}).drop_duplicates()


def import_reviews(settings, files: Iterable[str | Path], *, today=None) -> ReviewImport:
    """Check the filled review files and store their reviews in the history store.

    Every row of every file is checked first; with any problem a
    :class:`~iizrisk.errors.ValidationError` carries the report (file, row,
    column, fix) and nothing is stored. Then, under the run lock, the reviews
    are merged into the history store in one atomic rename.

    Parameters
    ----------
    settings : Settings or path to the deployment TOML
    files : paths of ``.xlsx`` or ``.csv`` review files
    today : date, optional
        The day of the import (default: today); a review dated after it is refused.

    Returns
    -------
    ReviewImport

    Raises
    ------
    ValidationError
        A problem in a file (the report names file, row, column and fix), or a history store that holds
        no nightly run (no list a review could answer: a wrong ``[output] history_dir``).
    """
    from .config import Settings
    from .publish import Permissions, RunLock

    settings = (settings if isinstance(settings, Settings) else Settings.load(settings)).resolved()
    today = pd.Timestamp(today or dt.date.today()).normalize()
    decisions = _decision_codes(settings.reviews.decisions)
    known = set(settings.institutions)
    report = ValidationReport()
    history = HistoryStore(settings.resolve(settings.output.history_dir))
    first_night = _first_night(history)
    if first_night is None:  # a wrong history_dir: the reviews would go where no nightly run reads them
        raise ValidationError(f"review import: the history store {history.root} ([output] history_dir) holds no "
                              "nightly run, so no list a review could answer; nothing is stored. Check "
                              "[output] history_dir in the configuration, or import the reviews after the "
                              "first nightly run (iizrisk run)")
    parsed = [read_review_file(f, report) for f in files]
    report.rows_read.update({p.name: len(p.rows) for p in parsed})  # the filled-in rows of each file
    checked = []
    for p in parsed:
        if not len(p.rows):
            continue
        checked.append(_check_rows(p, decisions, known, today, report, settings.reviews.decisions, first_night))
    result = ReviewImport(files=[p.name for p in parsed])
    if report.ok and checked:
        rows = pd.concat([c for c in checked], ignore_index=True)
        cases = _case_map(settings, set(rows["institution"]))
        rows = _map_cases(rows, cases, report)
        rows, n_merged = _one_review_per_case(rows, report)
    if not report.ok:
        report.rows_rejected = sum(report.rows_read.values())  # nothing of any file is stored
        raise ValidationError(f"review import: {len(report.errors)} problem(s); nothing is stored", report)
    if not checked:
        return result
    root = settings.resolve(settings.output.dir)
    with Permissions(settings.output.mode, settings.output.group) as perms:
        make_dirs(root)
        with RunLock(root / ".lock"):
            new = _with_list_context(rows, history)
            stored = history.reviews()
            merged, stats = _merge(stored, new)
            if stats["added"] or stats["replaced"]:
                perms.apply_written(history.root, [history.write_reviews(merged)])
    result.rows = len(new)
    result.added, result.replaced, result.unchanged = stats["added"], stats["replaced"], stats["unchanged"]
    result.overrides = int((~new["listed"]).sum())
    result.merged = n_merged
    for w in report.warnings:
        logger.warning("reviews: %s", w.to_text())
    result.per_institution = {str(k): int(v) for k, v in new["institution"].value_counts().sort_index().items()}
    logger.info("reviews: %s", result.summary_text())
    return result


def _first_night(history: HistoryStore) -> pd.Timestamp | None:
    """The as-of date of the first nightly run the history store holds (None before the first run)."""
    nights = history.as_of_dates("runs")
    return pd.Timestamp(nights[0]) if nights else None


def _check_rows(p: _Parsed, decisions: Mapping[str, str], known: set[str], today: pd.Timestamp,
                report: ValidationReport, offered: Sequence[str], first_night: pd.Timestamp | None = None
                ) -> pd.DataFrame:
    df, rows, name = p.rows, p.row_numbers, p.name
    inst = (pd.Series(p.institution, index=df.index, dtype=object) if p.institution is not None
            else df["institution"].astype(object).map(lambda v: str(v).strip() if v is not None else ""))
    report.add(name, "institution", "not a known institution code", ~inst.isin(known).to_numpy(), inst, rows=rows,
               fix=f"use the code of the list ({', '.join(sorted(known))})")
    case = df["case_ids"].astype(object).map(lambda v: "" if v is None or pd.isna(v) else str(v).strip().lstrip("'"))
    report.add(name, "case_ids", "case number missing", (case == "").to_numpy(), rows=rows,
               fix="keep the case number of each row; for a case not on the list enter its case number")
    code = df["decision"].astype(object).map(lambda v: decisions.get(_norm(v)) if v is not None and not pd.isna(v)
                                             else None)
    no_decision = _blank(df["decision"])
    report.add(name, "decision", "decision missing", no_decision, rows=rows,
               fix="choose a decision from the drop-down list for every row with a review date or note")
    report.add(name, "decision", "not one of the decisions", (~no_decision) & code.isna().to_numpy(), df["decision"],
               rows=rows, fix=f"choose one of: {', '.join(offered)} (or their names in the drop-down list)")
    date = _dates(df["review_date"])
    no_date = _blank(df["review_date"])
    report.add(name, "review_date", "review date missing", no_date, rows=rows,
               fix="enter the day of the review (YYYY-MM-DD or dd.mm.yyyy)")
    report.add(name, "review_date", "not a date", (~no_date) & date.isna().to_numpy(), _no_ahv(df["review_date"]),
               rows=rows, fix="enter the day of the review as YYYY-MM-DD or dd.mm.yyyy (a real calendar day, "
               "no words such as 'today')")
    report.add(name, "review_date", f"after today ({today.date().isoformat()})", (date > today).to_numpy(),
               rows=rows, fix="enter the day the review took place (not a planned date)")
    earliest, stated = _earliest(p, first_night)
    future = (earliest > today).to_numpy()  # no list of tonight or before: the as-of date was changed
    report.add(name, "as_of", f"the as-of date of the list lies after today ({today.date().isoformat()}): no "
               "nightly run wrote it", future, earliest, rows=rows,
               fix="keep the as-of date as the run wrote it (review the rows in the file of that night's list)")
    early = (date < earliest).to_numpy() & ~future
    for bound in sorted(set(earliest[early])):
        at = early & (earliest == bound).to_numpy()
        for says in (True, False):
            report.add(name, "review_date", _too_early(bound, says), at & (stated == says), date, rows=rows,
                       fix=f"enter the day the review took place, from {bound.date().isoformat()} to today "
                       f"({today.date().isoformat()}), as YYYY-MM-DD or dd.mm.yyyy")
    by = df["decided_by"].astype(object).map(lambda v: "" if v is None or pd.isna(v) else str(v).strip())
    report.add(name, "decided_by", "who decided is missing", (by == "").to_numpy(), rows=rows,
               fix="enter the role or staff code of whoever took the decision (e.g. 'IIZ-Koordination' or a "
               "staff code): a human decides, and the record says who")
    report.add(name, "decided_by", "holds what looks like an AHV number (a raw identifier)", ahv_in_free_text(by),
               rows=rows, show_example=False, fix="enter a role or staff code, never an AHV number")
    report.add(name, "decided_by", f"longer than {MAX_DECIDED_BY} characters",
               (by.str.len() > MAX_DECIDED_BY).to_numpy(), rows=rows, show_example=False,
               fix="enter a short role or staff code")
    note = df["note"].astype(object).map(lambda v: "" if v is None or pd.isna(v) else str(v))
    report.add(name, "note", "holds what looks like an AHV number (a raw identifier)", ahv_in_free_text(note),
               rows=rows, show_example=False,
               fix="remove the AHV number from the note: the case number identifies the person")
    report.add(name, "note", f"longer than {MAX_TEXT_LENGTH_DEFAULT} characters",
               (note.str.len() > MAX_TEXT_LENGTH_DEFAULT).to_numpy(), rows=rows, show_example=False,
               fix="shorten the note")
    return pd.DataFrame({"institution": inst.astype(str).to_numpy(), "case_ids": case.to_numpy(),
                         "review_date": date.to_numpy(), "decision": code.to_numpy(dtype=object),
                         "decided_by": by.to_numpy(dtype=object), "note": note.to_numpy(dtype=object),
                         "_file": name, "_row": rows})


def _earliest(p: _Parsed, first_night: pd.Timestamp | None = None) -> tuple[pd.Series, np.ndarray]:
    """Per row, the earliest review date accepted, and whether the file states the list the row answers.

    The earliest day is the as-of date of the list the row answers (the row's own as-of date, else the
    file's), never before the deployment's first nightly run (``first_night``: a review answers a list, and
    before that night there was none) nor before 1900-01-01.
    """
    floor = _EARLIEST if first_night is None else max(_EARLIEST, pd.Timestamp(first_night))
    file_day = _day(p.as_of)
    fallback = floor if file_day is None else max(floor, pd.Timestamp(file_day))
    own = (_dates(p.rows["as_of"]) if "as_of" in p.rows.columns
           else pd.Series(pd.NaT, index=p.rows.index, dtype="datetime64[s]"))
    known = own.notna() & (own > _EARLIEST)
    stated = (known | (file_day is not None)).to_numpy(dtype=bool)
    return own.where(known & (own > floor), fallback).astype("datetime64[s]"), stated


def _too_early(bound: pd.Timestamp, stated: bool) -> str:
    """The problem of a review date before ``bound``: the list it answers (``stated``), else the first run."""
    if bound == _EARLIEST:
        return "before 1900-01-01"
    if stated:
        return f"before the as-of date of the list it answers ({bound.date().isoformat()})"
    return (f"before the first list of this deployment ({bound.date().isoformat()}): a review answers a list "
            "of a nightly run")


def _map_cases(rows: pd.DataFrame, cases: pd.DataFrame, report: ValidationReport) -> pd.DataFrame:
    """Each row's person, found among the cases of the row's own institution only.

    A row is refused when one of its case numbers is not a case of its institution, or names several people
    there (a data error of the export: the coordinator cannot fix it, the data steward can), or when its case
    numbers name different people. Vectorised: the cases of a canton run to hundreds of thousands.
    """
    parts = rows[["institution", "case_ids"]].assign(case_id=rows["case_ids"].str.split(";")).explode("case_id")
    parts["case_id"] = parts["case_id"].str.strip()
    parts = parts[parts["case_id"] != ""]
    key = ["institution", "case_id"]
    by_case = cases.groupby(key)["person_id"]
    per_case = pd.DataFrame({"person_id": by_case.first(), "n_persons": by_case.nunique()})
    found = parts.join(per_case, on=key)
    several = (found["n_persons"] > 1).groupby(level=0).any().reindex(rows.index, fill_value=False)
    found["person_id"] = found["person_id"].where(found["n_persons"] == 1)
    by_row = found.groupby(level=0)["person_id"]
    one = (by_row.count() == by_row.size()) & (by_row.nunique() == 1)
    person = by_row.first().where(one).reindex(rows.index)
    for name, sub in rows.groupby("_file", sort=False):
        dup = several.loc[sub.index].to_numpy(dtype=bool)
        unknown = person.loc[sub.index].isna().to_numpy() & ~dup
        inst = sorted(set(sub.loc[unknown, "institution"]))
        report.add(str(name), "case_ids", f"not a case of {', '.join(inst)}", unknown, rows=sub["_row"].to_numpy(),
                   show_example=False,
                   fix="enter a case number of your own institution exactly as in your case management system "
                   "(the case numbers on the list are always right)")
        report.add(str(name), "case_ids", "the case number belongs to several people in the exports (a data "
                   "error)", dup, rows=sub["_row"].to_numpy(), show_example=False,
                   fix="ask the data steward to correct the case number in the export; import the row once the "
                   "next nightly run has read the corrected export")
    return rows.assign(person_id=person.to_numpy(dtype=object), case_id=rows["case_ids"].str.split(";").str[0])


def _one_review_per_case(rows: pd.DataFrame, report: ValidationReport) -> tuple[pd.DataFrame, int]:
    """``rows`` with exactly repeated rows merged (a warning each), and the number merged.

    One decision per case and file: rows of one file for the same case (its person at the institution) with
    different decisions are refused, every one of them named. Rows of the import for the same case and day with
    a different decision or note (in one file or two) are refused too: only one of them could be stored.
    Rows that repeat each other exactly are stored once.
    """
    known = rows[rows["person_id"].notna()]
    case = ["institution", "person_id"]
    refused: set = set()
    split = known[known.duplicated(["_file", *case], keep=False)]
    for (name, _, _), g in split.groupby(["_file", *case], sort=False):
        if g["decision"].nunique() > 1:
            report.add(str(name), "decision", "one case on several rows with different decisions",
                       np.ones(len(g), dtype=bool), rows=g["_row"].to_numpy(), show_example=False,
                       fix="keep one decision per case: delete the rows of this case that do not hold the decision "
                       "taken (a later decision goes into the next list's file)")
            refused.update(g.index)
    day = [*case, "review_date"]
    rest = known.drop(index=list(refused))
    rest = rest[rest.duplicated(day, keep=False)]
    drop: list = []
    for _, g in rest.groupby(day, sort=False):
        where = "; ".join(f"{f} row {r}" for f, r in zip(g["_file"], g["_row"], strict=True))
        if len(g[["decision", "note"]].drop_duplicates()) > 1:
            column = "decision" if g["decision"].nunique() > 1 else "note"
            for name, sub in g.groupby("_file", sort=False):
                report.add(str(name), column, f"one case reviewed on one day with different {column}s ({where})",
                           np.ones(len(sub), dtype=bool), rows=sub["_row"].to_numpy(), show_example=False,
                           fix="keep one review per case and day: delete all but the row that holds the review "
                           "taken, in every file named")
        else:
            for name, sub in g.iloc[1:].groupby("_file", sort=False):
                report.add(str(name), "case_ids", f"one case repeated with the same review ({where}): stored once",
                           np.ones(len(sub), dtype=bool), rows=sub["_row"].to_numpy(), show_example=False,
                           severity="warning", fix="nothing to do; keep one row per case next time")
            drop.extend(g.index[1:])
    return rows.drop(index=drop).reset_index(drop=True), len(drop)


def _with_list_context(rows: pd.DataFrame, history: HistoryStore) -> pd.DataFrame:
    """Add, per review, the list it answers: was the person on that institution's latest list on or before the
    review date (else an override), that list's date, and the person's risk band on it."""
    lists = history.read("worklists")
    out = rows[["institution", "person_id", "case_id", "review_date", "decision", "decided_by", "note"]].copy()
    out["review_date"] = pd.to_datetime(out["review_date"]).astype("datetime64[s]")
    list_as_of = pd.Series(pd.NaT, index=out.index, dtype="datetime64[s]")
    listed = np.zeros(len(out), dtype=bool)
    if len(lists):
        lists = lists.assign(institution=lists["institution"].astype(str), person_id=lists["person_id"].astype(str))
        nights = (lists[["institution", "as_of"]].drop_duplicates().sort_values("as_of")
                  .assign(as_of=lambda d: pd.to_datetime(d["as_of"]).astype("datetime64[s]")))
        order = out.sort_values("review_date").reset_index()
        m = pd.merge_asof(order, nights.rename(columns={"as_of": "list_as_of"}), left_on="review_date",
                          right_on="list_as_of", by="institution", direction="backward").set_index("index")
        list_as_of = m["list_as_of"].reindex(out.index).astype("datetime64[s]")
        on = pd.MultiIndex.from_frame(lists[["institution", "person_id", "as_of"]].assign(
            as_of=lambda d: pd.to_datetime(d["as_of"]).astype("datetime64[s]")))
        listed = pd.MultiIndex.from_arrays([out["institution"], out["person_id"], list_as_of]).isin(on)
    out["listed"] = np.asarray(listed, dtype=bool)
    out["list_as_of"] = list_as_of.to_numpy()
    band = pd.Series(None, index=out.index, dtype=object)
    for d in pd.unique(list_as_of.dropna()):
        scores = history.read("scores", as_of=pd.Timestamp(d))
        if not len(scores):
            continue
        b = pd.Series(scores["risk_band"].astype(str).to_numpy(), index=scores["person_id"].astype(str))
        sel = (list_as_of == d).to_numpy()
        band[sel] = b.reindex(out.loc[sel, "person_id"]).to_numpy()
    out["band_at_review"] = band.to_numpy(dtype=object)
    return out[list(REVIEW_COLUMNS)]


def _merge(stored: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Stored reviews with ``new`` merged in: one per institution, person and day, the new one winning."""
    key = ["institution", "person_id", "review_date"]
    new = new.drop_duplicates(key, keep="last")
    both = pd.concat([stored.assign(_new=False), new.assign(_new=True)], ignore_index=True)
    both["review_date"] = pd.to_datetime(both["review_date"]).astype("datetime64[s]")
    dup = both.duplicated(key, keep=False)
    same = both.duplicated([*REVIEW_COLUMNS], keep=False)
    n_new = int(both["_new"].sum())
    unchanged = int((both["_new"] & dup & same).sum())
    replaced = int((both["_new"] & dup & ~same).sum())
    merged = both.drop_duplicates(key, keep="last").drop(columns="_new")
    return merged, {"added": n_new - unchanged - replaced, "replaced": replaced, "unchanged": unchanged}


# ------------------------------------------------------------------ the next night
def _last_reviews(reviews: pd.DataFrame, as_of) -> pd.DataFrame:
    """Each (institution, person)'s last review up to ``as_of``."""
    r = reviews[pd.to_datetime(reviews["review_date"]) <= pd.Timestamp(as_of)]
    return (r.sort_values(["review_date", "decision"], kind="stable")
            .drop_duplicates(["institution", "person_id"], keep="last"))


def keep_off(reviews: pd.DataFrame, scores: pd.DataFrame, as_of, keep_off_days: Mapping[str, int]) -> pd.DataFrame:
    """``institution, person_id`` kept off that institution's list tonight by their last review there.

    Kept off: the last review was a ``keep_off_days`` decision less than that
    many days before ``as_of``, and the person's band tonight is not higher
    than their band on the list the review answered (:data:`iizrisk.worklist.BANDS`).
    """
    empty = pd.DataFrame({"institution": pd.Series([], dtype="str"), "person_id": pd.Series([], dtype="str")})
    if not len(reviews) or not keep_off_days:
        return empty
    t = pd.Timestamp(as_of)
    last = _last_reviews(reviews, t)
    days = last["decision"].astype(object).map(dict(keep_off_days)).astype(np.float64).to_numpy()
    age = (t - pd.to_datetime(last["review_date"])).dt.days.to_numpy(dtype=np.float64)
    within = ~np.isnan(days) & (age < np.nan_to_num(days))
    last = last[within]
    band_now = pd.Series(scores["risk_band"].astype(str).to_numpy(), index=scores["person_id"].astype(str))
    now = band_order(band_now.reindex(last["person_id"].astype(str)).fillna("low").to_numpy())
    then = band_order(last["band_at_review"].fillna("high").astype(str).to_numpy())
    off = last[now <= then]
    return off[["institution", "person_id"]].astype("str").reset_index(drop=True)


def interventions_from_reviews(reviews: pd.DataFrame, types: Mapping[str, str], *, until=None) -> pd.DataFrame:
    """The interventions recorded by reviews: ``person_id, date, type, institutions`` (dated on the review day)."""
    r = reviews if until is None else reviews[pd.to_datetime(reviews["review_date"]) <= pd.Timestamp(until)]
    r = r[r["decision"].isin(list(types))]
    out = pd.DataFrame({"person_id": r["person_id"].astype(str).to_numpy(),
                        "date": pd.to_datetime(r["review_date"]).to_numpy(dtype="datetime64[ns]"),
                        "type": r["decision"].map(dict(types)).astype(str).to_numpy(),
                        "institutions": r["institution"].astype(str).to_numpy()})
    return out.drop_duplicates(["person_id", "date", "type"]).reset_index(drop=True)


def all_interventions(settings, interventions: pd.DataFrame | None = None, *, until=None) -> pd.DataFrame | None:
    """The deployment's interventions file plus the interventions recorded by reviews (no second file to keep).

    ``interventions`` is the file as read (``ingest(settings).interventions``);
    the research study and the features take the result.
    """
    history = HistoryStore(settings.resolve(settings.output.history_dir))
    from_reviews = interventions_from_reviews(history.reviews(until=until), settings.reviews.interventions)
    if not len(from_reviews):
        return interventions
    if interventions is None or not len(interventions):
        return from_reviews
    base = interventions.copy()
    from_reviews["date"] = from_reviews["date"].astype(base["date"].dtype) \
        if pd.api.types.is_datetime64_any_dtype(base["date"].dtype) else from_reviews["date"]
    both = pd.concat([base, from_reviews[[c for c in from_reviews.columns if c in base.columns]]],
                     ignore_index=True)
    return both.drop_duplicates(["person_id", "date", "type"]).reset_index(drop=True)


def decision_counts(reviews: pd.DataFrame, decisions: Iterable[str], *, since=None, until=None) -> pd.DataFrame:
    """Reviews with one of ``decisions`` dated in (``since``, ``until``], counted per institution and decision."""
    r = reviews[reviews["decision"].isin(list(decisions))]
    d = pd.to_datetime(r["review_date"])
    if since is not None:
        r = r[(d > pd.Timestamp(since)).to_numpy()]
        d = pd.to_datetime(r["review_date"])
    if until is not None:
        r = r[(d <= pd.Timestamp(until)).to_numpy()]
    return (r.groupby(["institution", "decision"]).size().rename("n").reset_index()
            if len(r) else pd.DataFrame({"institution": [], "decision": [], "n": []}))
