"""Corrections of contested registration rows, with their audit trail (nDSG Art. 32; issue 19 item 5).

A person may contest a registration row (a wrong end date, a wrong exit
reason). The office records the correction in one table, the file named by
``[deployment] corrections`` (CSV or Parquet), one row per corrected value:

===============  ==========================================================
``person_id``    the person's pseudonym
``institution``  the institution whose row is corrected
``case_id``      its case number (identifies the row with the two above)
``field``        the corrected column (:data:`CORRECTABLE`)
``old_value``    the value the export holds and the person contested
``new_value``    the corrected value (empty: no value, for optional columns)
``reason``       why (no names, no AHV numbers)
``date``         when the correction was decided (``YYYY-MM-DD``)
``by_role``      who decided, by role (e.g. ``data steward ALV``)
===============  ==========================================================

:func:`iizrisk.io.ingest` applies the table to every deployment ingestion, so
the next run's features and scores use the corrected values. Each correction
gets a status in :attr:`iizrisk.io.Ingestion.corrections` (the trail):

``applied``
    the export holds the contested value; the new value replaces it;
``in_export``
    the export already holds the new value, and no row with the key holds the
    contested one (the institution corrected its own data); nothing to do;
``conflict``
    the export holds a third value: a later export changed the row after
    the correction. The correction still wins (it is never silently
    overwritten) and the conflict is reported to the data steward as a
    warning in the validation report, naming the corrections file's rows;
``unmatched``
    no row of the export has this person, institution and case number (the
    case is no longer exported, or the key is wrong); reported likewise;
``ambiguous``
    several rows carry the key and none holds the contested value or the new
    one; not applied, reported likewise.

A corrections file with a wrong column, an unknown field, a value the data
contract refuses (a new date that is no calendar day or lies outside the
contract's plausible dates included) or a value shaped like an AHV number
refuses the ingestion (exit 1): a correction is never dropped silently either.
So does a correction that would leave its row ending before it starts (an
``end_date`` before the ``start_date``, after every correction of the row):
the error names the corrections file, its rows, the field and the fix, whatever
``[deployment] errors`` says (that policy sets aside rows of an export, never
a correction).

Examples
--------
>>> import pandas as pd
>>> spells = pd.DataFrame({"person_id": ["p1"], "institution": ["ALV"], "case_id": ["A-1"],
...                        "start_date": pd.to_datetime(["2024-01-01"]).astype("datetime64[s]"),
...                        "end_date": pd.to_datetime(["2024-03-31"]).astype("datetime64[s]")})
>>> table = pd.DataFrame({"person_id": ["p1"], "institution": ["ALV"], "case_id": ["A-1"],
...                       "field": ["end_date"], "old_value": ["2024-03-31"], "new_value": ["2024-02-29"],
...                       "reason": ["end reported late"], "date": ["2024-05-02"], "by_role": ["data steward"]})
>>> fixed, trail = apply_corrections(spells, check_corrections(table, pseudonym_pattern=None))
>>> str(fixed["end_date"].iloc[0].date()), trail["status"].tolist()
('2024-02-29', ['applied'])
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from .errors import RawIdentifierError, ValidationError
from .validate import Problem, ValidationReport

__all__ = ["CORRECTION_COLUMNS", "CORRECTABLE", "STATUSES", "check_corrections", "apply_corrections",
           "correction_counts"]

logger = logging.getLogger("iizrisk")

#: the columns of a corrections table, in order
CORRECTION_COLUMNS = ("person_id", "institution", "case_id", "field", "old_value", "new_value", "reason", "date",
                      "by_role")
#: the spells columns a correction may change (the row's key -- person, institution, case -- may not)
CORRECTABLE = ("start_date", "end_date", "exit_reason", "recorded_date", "canton", "birth_year", "sex",
               "nationality_group", "education")
#: the status a correction gets at ingestion
STATUSES = ("applied", "in_export", "conflict", "unmatched", "ambiguous")
_REPORTED = {"conflict": "correction conflicts with a later export (the correction is kept)",
             "unmatched": "correction matches no exported row",
             "ambiguous": "correction matches several rows, none holding the contested value (not applied)"}
_FIX = {"conflict": "the institution changed the row after the correction: check the export with it, then "
                    "update the correction's old_value (to confirm it) or remove the correction",
        "unmatched": "check person, institution and case number; remove the correction if the case is no longer "
                     "exported",
        "ambiguous": "check the contested value (old_value) against the export"}
_SOURCE = "corrections"


def check_corrections(df: pd.DataFrame, *, pseudonym_pattern: str | None, name: str = "corrections",
                      today: pd.Timestamp | None = None) -> pd.DataFrame:
    """The corrections table as text, every row checked against the data contract
    (:func:`iizrisk.io.read_corrections` reads a file and calls it).

    ``today`` (default: today) bounds the plausible new dates, as for an
    export. The table returned remembers ``name`` (in ``attrs["source"]``), so
    that :func:`apply_corrections` names the file.

    Raises
    ------
    RawIdentifierError
        A value or header shaped like an AHV number (not repeated).
    ValidationError
        Missing or unknown columns, an unknown field, an institution or value the
        data contract refuses, a date that is not ``YYYY-MM-DD``, a new date
        outside the data contract's plausible dates, an empty
        reason, date or role, a person id that is not a pseudonym; every
        problem at once, with the file's rows.
    """
    from .schema import load_schema
    from .validate import check_raw_identifiers, check_text_cells

    report = ValidationReport(rows_read={name: len(df)})
    # the free text is searched for an AHV number in any grouping; the other columns by the guard of the exports
    # (each column once: the reason was listed twice, with two different fixes)
    raw = bool(check_raw_identifiers(df[[c for c in df.columns if c not in _FREE_TEXT]], report, name))
    if _check_free_text(df, report, name) or raw:
        report.rows_rejected = len(df)
        raise RawIdentifierError(f"{name}: refused: values shaped like AHV numbers; no AHV number, no name in a "
                                 "correction", report)
    missing = [c for c in CORRECTION_COLUMNS if c not in df.columns]
    unknown = [c for c in df.columns if c not in CORRECTION_COLUMNS]
    if missing or unknown:
        raise ValidationError(f"{name}: columns {list(df.columns)}: " + "; ".join(
            [f"missing {missing}" for _ in [0] if missing] + [f"unknown {unknown}" for _ in [0] if unknown])
            + f"; a corrections table has the columns {', '.join(CORRECTION_COLUMNS)}")
    t = df[list(CORRECTION_COLUMNS)].astype(object).where(df[list(CORRECTION_COLUMNS)].notna(), "")
    t = t.map(lambda v: str(v).strip())
    rows = np.arange(1, len(t) + 1)
    check_text_cells(t, report, name, rows)
    schema = load_schema("spells")
    for col in ("person_id", "institution", "case_id", "field", "reason", "date", "by_role"):
        report.add(name, col, "empty", (t[col] == "").to_numpy(), rows=rows, fix="every correction names its "
                   "row, field, reason, date and who decided it (by role)")
    if pseudonym_pattern is not None:
        bad = ~t["person_id"].map(lambda v: bool(re.fullmatch(pseudonym_pattern, v))).to_numpy(dtype=bool)
        report.add(name, "person_id", "not a pseudonym", bad & (t["person_id"] != "").to_numpy(), rows=rows,
                   show_example=False, fix="compute it from the AHV number with `iizrisk pseudonymise`")
    report.add(name, "field", "not a correctable column", ~t["field"].isin(CORRECTABLE).to_numpy()
               & (t["field"] != "").to_numpy(), t["field"], rows=rows,
               fix=f"correct one of {', '.join(CORRECTABLE)} (person, institution and case number identify the row)")
    report.add(name, "date", "not a date YYYY-MM-DD", ~t["date"].map(_is_iso).to_numpy(dtype=bool)
               & (t["date"] != "").to_numpy(), t["date"], rows=rows, fix="write the decision date as YYYY-MM-DD")
    inst = schema.field("institution").enum or ()
    report.add(name, "institution", "not an institution code", ~t["institution"].isin(inst).to_numpy()
               & (t["institution"] != "").to_numpy(), t["institution"], rows=rows,
               fix=f"use one of {', '.join(inst)}")
    for col in ("old_value", "new_value"):
        bad = np.array([f in CORRECTABLE and not _valid(f, v, schema) for f, v in zip(t["field"], t[col], strict=True)],
                       dtype=bool)
        report.add(name, col, "value the data contract refuses for its field", bad, t[col], rows=rows,
                   fix="dates as YYYY-MM-DD, codes of the data contract (data/schemas/spells.json); empty only "
                       "for an optional column")
    lo_date, years_after = schema.plausible_dates()
    today = pd.Timestamp(today if today is not None else pd.Timestamp.today()).normalize()
    lo, hi = pd.Timestamp(lo_date), today + pd.DateOffset(years=years_after)
    implausible = np.array([f in CORRECTABLE and v != "" and schema.field(f).type == "date" and _valid(f, v, schema)
                            and not lo <= pd.Timestamp(v) <= hi for f, v in zip(t["field"], t["new_value"],
                                                                                  strict=True)], dtype=bool)
    report.add(name, "new_value", f"implausible date (before {lo_date} or more than {years_after} year(s) after "
               "today)", implausible, t["new_value"], rows=rows,
               fix=f"correct the new date (YYYY-MM-DD, from {lo_date} to {hi.date().isoformat()})")
    same = (t["old_value"] == t["new_value"]).to_numpy()
    report.add(name, "new_value", "equals old_value", same, rows=rows, fix="a correction changes the value")
    if not report.ok:
        report.rows_rejected = len(df)  # nothing of the file is applied
        raise ValidationError(f"{name}: invalid corrections: {report.summary_line()}", report)
    t = t.reset_index(drop=True)
    t.attrs["source"] = name
    return t


#: the columns a person writes in their own words: an AHV number there may be spelled in any grouping
_FREE_TEXT = ("reason", "by_role")


def _check_free_text(df: pd.DataFrame, report: ValidationReport, name: str) -> bool:
    """Record the free-text cells holding 756 and ten more digits in any grouping, also with a wrong check
    digit (``756 12345 67897``, a mistyped ``756.1234.5678.90``), which the raw-identifier guard lets
    through; the trail shows the reason in the person's information document. True when any is found."""
    from .pseudonym import ahv_in_free_text

    found = False
    for col in (c for c in _FREE_TEXT if c in df.columns):
        mask = ahv_in_free_text(df[col])
        if mask.any():
            found = True
            report.add(name, col, "values shaped like AHV numbers (raw identifiers)", mask,
                       rows=np.arange(1, len(df) + 1), show_example=False,
                       fix="write the reason without the AHV number: person, institution and case number "
                           "identify the row")
    return found


def _is_iso(v: str) -> bool:
    try:
        pd.Timestamp(v)
    except ValueError:
        return False
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v))


def _valid(field: str, value: str, schema) -> bool:
    f = schema.field(field)
    if value == "":
        return not f.required
    if f.type == "date":
        return _is_iso(value)
    if f.type == "integer":
        return bool(re.fullmatch(r"\d{1,4}", value))
    return f.enum is None or value in f.enum


def _typed(field: str, value: str):
    from .schema import load_schema

    f = load_schema("spells").field(field)
    if value == "":
        return pd.NaT if f.type == "date" else pd.NA
    if f.type == "date":
        return pd.Timestamp(value)
    if f.type == "integer":
        return int(value)
    return value


def _as_text(v) -> str:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat()
    return str(v)


def apply_corrections(spells: pd.DataFrame, corrections: pd.DataFrame, report: ValidationReport | None = None,
                      *, name: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply checked corrections to canonical spells; return the corrected spells and the trail.

    Corrections are applied in the order they were decided (``date``; the file's order within a day), so
    a later decision listed above an earlier one still wins. The trail, in the file's order, is the
    corrections table with ``status`` (:data:`STATUSES`) and
    ``export_value`` (what the export held). Conflicts, unmatched and ambiguous
    corrections are added to ``report`` as warnings for the data steward,
    naming the rows of the corrections file (never a value).

    Parameters
    ----------
    name : str, optional
        The corrections file, for the messages (default: the one
        :func:`check_corrections` remembered, else ``"corrections"``).

    Raises
    ------
    ValidationError
        A correction of ``start_date`` or ``end_date`` leaves its row ending
        before it starts (checked once every correction is applied, so that
        two corrections may move both dates); every such correction at once,
        with the rows of the corrections file, whatever ``[deployment] errors``
        says.
    """
    name = name or str(corrections.attrs.get("source") or "corrections")
    out = spells.copy()
    person = out["person_id"].astype(str).to_numpy()
    inst = out["institution"].astype(str).to_numpy()
    case = (out["case_id"].astype("str").fillna("").to_numpy() if "case_id" in out.columns
            else np.full(len(out), "", dtype=object))
    status, export_value = [""] * len(corrections), [""] * len(corrections)
    moved: list[tuple[int, int]] = []  # (correction, row of spells) of the dates changed
    table = list(corrections.itertuples(index=False))
    # in the order they were decided (the file's order among those of one day): a later decision listed
    # above an earlier one must not be overwritten by it
    decided = pd.to_datetime(corrections["date"].astype(str), format="%Y-%m-%d", errors="coerce").to_numpy()
    for k in np.argsort(decided, kind="stable"):
        k, c = int(k), table[int(k)]
        rows = np.flatnonzero((person == c.person_id) & (inst == c.institution) & (case == c.case_id))
        if c.field not in out.columns:
            out[c.field] = pd.Series(pd.NA, index=out.index, dtype=object)
        held = [_as_text(out[c.field].iloc[i]) for i in rows]
        if not len(rows):
            status[k] = "unmatched"
            continue
        contested = [i for i, v in zip(rows, held, strict=True) if v == c.old_value]
        if len(contested) == 1 or (len(rows) == 1 and held[0] not in (c.new_value,)):
            target = int(contested[0] if contested else rows[0])
            status[k] = "applied" if contested else "conflict"
            export_value[k] = _as_text(out[c.field].iloc[target])
            _set(out, target, c.field, _typed(c.field, c.new_value))
            if c.field in ("start_date", "end_date"):
                moved.append((k, target))
        elif any(v == c.new_value for v in held):
            status[k] = "in_export"
            export_value[k] = c.new_value
        else:
            status[k] = "ambiguous"
    _refuse_end_before_start(out, corrections, moved, name)
    trail = corrections.assign(status=pd.Series(status, dtype="str", index=corrections.index),
                               export_value=pd.Series(export_value, dtype="str", index=corrections.index))
    if report is not None:
        numbers = np.arange(1, len(trail) + 1)
        for kind, problem in _REPORTED.items():
            mask = (trail["status"] == kind).to_numpy()
            if mask.any():
                report.problems.append(Problem(_SOURCE, "field", problem, int(mask.sum()),
                                               tuple(int(r) for r in numbers[mask][:5]), "", _FIX[kind], "warning"))
    counts = correction_counts(trail)
    if len(trail):
        logger.info("corrections: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    return out, trail


def _refuse_end_before_start(spells: pd.DataFrame, corrections: pd.DataFrame, moved: list[tuple[int, int]],
                             name: str) -> None:
    """Refuse the corrections of a date that leave their row ending before it starts, naming the file's rows."""
    if not moved or not {"start_date", "end_date"} <= set(spells.columns):
        return
    start, end = spells["start_date"], spells["end_date"]
    bad = np.zeros(len(corrections), dtype=bool)
    for k, i in moved:
        s, e = start.iloc[i], end.iloc[i]
        bad[k] |= bool(pd.notna(s) and pd.notna(e) and e < s)
    if not bad.any():
        return
    report = ValidationReport(rows_read={name: len(corrections)}, rows_rejected=len(corrections))
    fields = corrections["field"].astype("str").to_numpy()
    rows = np.arange(1, len(corrections) + 1)
    dates = corrections["new_value"].astype("str").map(lambda v: v if _is_iso(v) else "")  # dates only, no AHV
    for field, other in (("end_date", "start_date"), ("start_date", "end_date")):
        report.add(name, "new_value", f"the correction of {field} leaves the row with end_date before start_date",
                   bad & (fields == field), dates, rows=rows,
                   fix=f"check the new {field} against the row's {other} in the export; correct both dates (one "
                       "correction each) or remove the correction")
    raise ValidationError(f"{name}: invalid corrections: {report.summary_line()}; row(s) "
                          f"{', '.join(map(str, rows[bad][:5]))}{' and more' if bad.sum() > 5 else ''} would leave "
                          "a spell with end_date before start_date", report)


def _set(df: pd.DataFrame, row: int, col: str, value) -> None:
    s = df[col]
    if isinstance(s.dtype, pd.CategoricalDtype) and value is not pd.NA and value not in s.cat.categories:
        df[col] = s.cat.add_categories([value])
    df.iloc[row, df.columns.get_loc(col)] = value


def correction_counts(trail: pd.DataFrame | None) -> dict[str, int]:
    """Corrections per status (every status, zeros included; all zero without a trail)."""
    if trail is None or not len(trail):
        return dict.fromkeys(STATUSES, 0)
    vc = trail["status"].value_counts()
    return {s: int(vc.get(s, 0)) for s in STATUSES}
