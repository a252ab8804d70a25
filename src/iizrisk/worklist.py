"""Worklists: for each institution, a short ranked list for its coordinators.

A worklist holds the people with a case open at that institution on the
as-of date, ranked by risk, cut at the institution's capacity. Each row
carries only that institution's own case ids, the person's flags, the risk
band and the reasons in the institution's language. Other institutions
involved appear as a count, and by name only where the disclosure policy
allows it (DOMAIN.md section 6). People with a joint assessment in the last
months are left off (counted). Every worklist states that it is a hint for
a human review, not a decision.

Examples
--------
>>> import pandas as pd
>>> scores = pd.DataFrame({"person_id": ["a", "b", "c"], "risk": [0.4, 0.2, 0.1],
...                        "risk_band": ["high", "medium", "low"]})
>>> open_cases = pd.DataFrame({"person_id": ["a", "b", "c", "a"],
...                            "institution": ["ALV", "ALV", "SH", "SH"],
...                            "case_id": ["A1", "A2", "S3", "S1"]})
>>> wl = build_worklists(scores, open_cases, capacity=1)
>>> wl["ALV"][["rank", "case_ids", "n_other_institutions"]].values.tolist()
[[1, 'A1', 1]]
>>> wl["SH"]["case_ids"].tolist()
['S1']

Privacy invariant: a list shows only case ids of its own institution's open
cases, for people with a case open there; :func:`build_worklists` checks this
on its result and raises :class:`~iizrisk.errors.InternalError` (nothing is
written) if it ever failed.

Written as CSV for spreadsheets with :func:`write_worklist_csv`: ``;``,
UTF-8 with BOM, and text cells that a spreadsheet would run as a formula
(``=``, ``+``, ``-``, ``@``, tab, carriage return first) prefixed with ``'``
(OWASP, CSV injection): case ids and texts come from the institutions'
exports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import pyarrow as pa

from ._arrays import string_order
from ._results import SWISS_CSV, write_csv_atomic
from ._texts import LANGUAGES, text
from .errors import InternalError

__all__ = ["NOTICE", "WorklistSet", "build_worklists", "open_cases_at", "recently_assessed",
           "neutralise_formulas", "write_worklist_csv"]

logger = logging.getLogger("iizrisk")

#: The statement every worklist carries, per language (read-only; from the text catalogue, ``worklist.notice``).
NOTICE: Mapping[str, str] = MappingProxyType({lang: text("worklist.notice", lang) for lang in LANGUAGES})


def open_cases_at(view) -> pd.DataFrame:
    """One row per spell open at T: person_id, institution, case_id.

    ``view`` is the :class:`~iizrisk.view.View` at T (or its point-in-time
    :class:`~iizrisk.spells.Timeline`).
    """
    timeline = getattr(view, "timeline", view)
    is_open = timeline.is_open()
    case = timeline.case_id[is_open]
    if len(timeline.case_ids):
        # the array's take: -1 is "no case id" (pandas 3.0's Index.take read it as the last element,
        # which put another person's case id on a list)
        case_id = pd.Index(timeline.case_ids).array.take(case, allow_fill=True)
    else:
        case_id = pd.array(np.full(int(is_open.sum()), None, dtype=object))
    return pd.DataFrame({
        "person_id": timeline.person_ids.take(timeline.person[is_open]).array,
        "institution": pd.Categorical.from_codes(timeline.inst[is_open],
                                                 categories=list(timeline.institutions)),
        "case_id": case_id,
    })


def recently_assessed(interventions: pd.DataFrame | None, as_of, months: int,
                      types: tuple[str, ...] = ("joint_assessment",)) -> np.ndarray:
    """Person ids with an intervention of ``types`` in the ``months`` months ending at ``as_of``."""
    if interventions is None or len(interventions) == 0 or months <= 0:
        return np.array([], dtype=object)
    t = pd.Timestamp(as_of)
    lo = t - pd.DateOffset(months=months)
    d = pd.to_datetime(interventions["date"])
    m = (d > lo) & (d <= t) & interventions["type"].astype(str).isin(types)
    return np.asarray(pd.unique(interventions.loc[m, "person_id"].astype(str)), dtype=object)


@dataclass
class WorklistSet:
    """Worklists per institution plus what was left off and why."""

    lists: dict[str, pd.DataFrame] = field(default_factory=dict)
    left_off_assessed: dict[str, int] = field(default_factory=dict)
    eligible: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, institution: str) -> pd.DataFrame:
        return self.lists[institution]

    def __iter__(self):
        return iter(self.lists)

    def __len__(self) -> int:
        return len(self.lists)

    def rows(self) -> pd.DataFrame:
        """All worklists stacked (institution column first)."""
        if not self.lists:
            return pd.DataFrame()
        return pd.concat([df for df in self.lists.values()], ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """Per institution: eligible people, left off (recent assessment), on the list, new."""
        return pd.DataFrame([
            {"institution": k, "eligible": self.eligible.get(k, 0),
             "left_off_recent_assessment": self.left_off_assessed.get(k, 0),
             "on_list": len(v), "new_on_list": int(v["new_on_list"].sum()) if len(v) else 0}
            for k, v in self.lists.items()
        ])

    def _repr_html_(self) -> str:
        parts = [f"<b>Worklists</b> for {len(self.lists)} institution(s)", self.summary().to_html(index=False)]
        for k, v in self.lists.items():  # pseudonyms stay out of displays
            parts.append(f"<h4>{k}</h4>" + v.drop(columns=["person_id"]).head(10).to_html(index=False))
        return "".join(parts)


def build_worklists(
    scores: pd.DataFrame,
    open_cases: pd.DataFrame,
    *,
    capacity: int = 25,
    capacity_per_institution: dict[str, int] | None = None,
    capacity_per_canton: dict[str, int] | None = None,
    canton_of: pd.Series | None = None,
    disclose_institutions: list[str] | None = None,
    exclude: np.ndarray | None = None,
    previous: pd.DataFrame | None = None,
    flags: pd.DataFrame | None = None,
    reasons: dict[str, pd.DataFrame] | None = None,
    language_of: dict[str, str] | None = None,
    default_language: str = "de",
) -> WorklistSet:
    """Rank each institution's open cases by risk and cut at capacity.

    Parameters
    ----------
    scores : DataFrame
        ``person_id``, ``risk``, ``risk_band`` (one row per scored person).
    open_cases : DataFrame
        ``person_id``, ``institution``, ``case_id`` of the cases open at the as-of date.
    capacity, capacity_per_institution : int, dict
        Rows per worklist (the dict overrides per institution code).
    capacity_per_canton, canton_of : dict, Series
        Optional further cap per canton (``canton_of`` maps person_id to canton).
    disclose_institutions : list of str
        Institutions whose involvement may be named on other institutions' lists;
        all others appear only in the count.
    exclude : array of person ids
        Left off every list (e.g. a joint assessment in the last months); counted.
    previous : DataFrame
        ``institution``, ``person_id`` of the last run's worklists, for ``new_on_list``.
    flags : DataFrame
        Per person flags (``person_id`` and flag columns) to show on the lists.
    reasons : dict institution -> DataFrame
        Per person reason codes and texts (indexed by person_id) for each
        institution's list: in its language, naming only institutions that
        list may name (see :func:`iizrisk.explain.reason_codes`).
    language_of : dict
        Language per institution code (default ``default_language``).
    """
    capacity_per_institution = capacity_per_institution or {}
    disclose = set(disclose_institutions or [])
    language_of = language_of or {}
    # everything below works on integer codes: scored persons by their row in `scores`,
    # institutions by their rank in sorted order (hashing pseudonyms once, not per step)
    pid = pd.Index(scores["person_id"].astype("str"), name="person_id")
    if not pid.is_unique:
        raise ValueError("scores: person_id repeats; build_worklists expects one row per scored person")
    n = len(pid)
    risk = scores["risk"].to_numpy(dtype=np.float64)
    band = np.asarray(scores["risk_band"].to_numpy(), dtype=object)
    oc_person = pid.get_indexer(pd.Index(open_cases["person_id"].astype("str")))
    inst_cat = pd.Categorical(open_cases["institution"].astype("str"))
    insts = [str(i) for i in inst_cat.categories]
    oc_inst = inst_cat.codes.astype(np.int64)
    oc_key = np.where((oc_person >= 0) & (oc_inst >= 0), oc_inst * n + oc_person, -1)

    # selection over everyone: one row per (institution, scored person) with an open case
    key = _sorted_unique(oc_key[oc_key >= 0])
    p_inst, p_person = key // max(n, 1), key % max(n, 1)
    eligible = np.bincount(p_inst, minlength=len(insts))
    excluded = np.zeros(n, dtype=bool)
    if exclude is not None and len(exclude):
        codes = pid.get_indexer(pd.Index(np.asarray(exclude, dtype=object)).astype("str"))
        excluded[codes[codes >= 0]] = True
    gone = excluded[p_person]
    left_off = np.bincount(p_inst[gone], minlength=len(insts))
    out = WorklistSet()
    out.eligible = {insts[i]: int(eligible[i]) for i in np.flatnonzero(eligible)}
    out.left_off_assessed = {insts[i]: int(left_off[i]) for i in np.flatnonzero(eligible)}
    p_inst, p_person = p_inst[~gone], p_person[~gone]
    # institution, then risk descending, then pseudonym (ties broken the same way every night)
    name_rank = np.empty(n, dtype=np.int64)
    name_rank[string_order(pa.array(pid.array))] = np.arange(n)
    order = np.lexsort((name_rank[p_person], -risk[p_person], p_inst))
    p_inst, p_person = p_inst[order], p_person[order]
    if capacity_per_canton and canton_of is not None:
        canton = canton_of.reindex(pid.take(p_person)).to_numpy()
        n_in_canton = pd.DataFrame({"i": p_inst, "c": canton}).groupby(
            ["i", "c"], dropna=False, sort=False).cumcount().to_numpy()
        cap_canton = pd.Series(canton).map(capacity_per_canton).fillna(np.inf).to_numpy()
        keep = n_in_canton < cap_canton
        p_inst, p_person = p_inst[keep], p_person[keep]
    pos = np.arange(len(p_inst))
    first = np.r_[True, p_inst[1:] != p_inst[:-1]] if len(p_inst) else np.zeros(0, dtype=bool)
    rank = pos - np.maximum.accumulate(np.where(first, pos, 0)) + 1
    cap = np.array([capacity_per_institution.get(i, capacity) for i in insts] or [0])[p_inst]
    chosen = rank <= cap
    s_inst, s_person, s_rank = p_inst[chosen], p_person[chosen], rank[chosen]

    # decorations, on the selected people only
    on_list = np.zeros(n + 1, dtype=bool)  # the last slot: people without a score
    on_list[s_person] = True
    theirs_rows = on_list[oc_person]
    oc_small = pd.DataFrame({"inst": oc_inst[theirs_rows], "person": oc_person[theirs_rows],
                             "case_id": open_cases["case_id"].to_numpy()[theirs_rows]})
    mine = oc_small[np.isin(oc_small["inst"] * n + oc_small["person"], s_inst * n + s_person)]
    cases = (mine.dropna(subset=["case_id"]).astype({"case_id": "str"})
             .drop_duplicates().sort_values("case_id", kind="stable")
             .groupby(["inst", "person"])["case_id"].agg(";".join))
    theirs = oc_small[["person", "inst"]].drop_duplicates().sort_values("inst", kind="stable")
    f = None
    if flags is not None and len(flags):
        chosen_ids = pid.take(np.flatnonzero(on_list[:n]))
        f = flags[flags["person_id"].astype("str").isin(chosen_ids)]
        f = f.assign(person_id=f["person_id"].astype("str")).set_index("person_id")
        f = f[[c for c in f.columns if c != "as_of"]]
    for i in np.unique(s_inst):
        inst = insts[i]
        mask = s_inst == i
        persons = s_person[mask]
        df = pd.DataFrame({
            "institution": inst,
            "rank": s_rank[mask].astype(np.int64),
            "person_id": np.asarray(pid.take(persons), dtype=object),
            "case_ids": cases.reindex(pd.MultiIndex.from_arrays(
                [np.full(len(persons), i), persons])).to_numpy(),
            "risk": risk[persons],
            "risk_band": band[persons],
        })
        other = theirs[theirs["person"].isin(persons) & (theirs["inst"] != i)]
        df["n_other_institutions"] = other.groupby("person").size().reindex(
            persons, fill_value=0).to_numpy().astype(np.int64)
        shown = other[other["inst"].map(lambda c: insts[c] in disclose).astype(bool)]
        names = shown.assign(name=[insts[c] for c in shown["inst"]]).groupby("person")["name"].agg("+".join)
        df["other_institutions_disclosed"] = names.astype(object).reindex(persons, fill_value="").to_numpy()
        if f is not None:
            df = df.join(f, on="person_id")
        lang = language_of.get(inst, default_language)
        if reasons is not None and inst in reasons:
            df = df.join(reasons[inst], on="person_id")
        if previous is not None and len(previous):
            prev = previous.loc[previous["institution"].astype(str) == inst, "person_id"].astype(str)
            df["new_on_list"] = ~df["person_id"].isin(prev)
        else:
            df["new_on_list"] = True
        df["language"] = lang
        df["notice"] = NOTICE.get(lang, NOTICE["en"])
        out.lists[inst] = df
    _check_own_cases(out.lists, open_cases)
    logger.info("worklists: %s", {k: len(v) for k, v in out.lists.items()})
    return out


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort and mask: much faster than ``np.unique`` on long int64 columns)."""
    a = np.sort(a)
    return a[np.r_[True, a[1:] != a[:-1]]] if len(a) else a


def _check_own_cases(lists: dict[str, pd.DataFrame], open_cases: pd.DataFrame) -> None:
    """Raise InternalError unless each list shows only its own institution's open cases.

    Checked on the result, independently of how it was built: every row's
    person has a case open at the list's institution, and every case id
    shown is one of that person's open case ids *at that institution* (ids
    are compared as the ``;``-separated parts they are shown in, so an id
    that itself holds ``;`` is compared part by part). Vectorised: one join
    on the people listed. The message counts rows; it names no id.
    """
    frames = [df[["institution", "person_id", "case_ids"]] for df in lists.values() if len(df)]
    if not frames:
        return
    listed = pd.concat(frames, ignore_index=True)
    listed = pd.DataFrame({"institution": listed["institution"].astype("str").to_numpy(),
                           "person_id": listed["person_id"].astype("str").to_numpy(),
                           "case_ids": listed["case_ids"].to_numpy(dtype=object)})
    oc_person = open_cases["person_id"].astype("str")
    mine = oc_person.isin(pd.unique(listed["person_id"])).to_numpy()
    own = pd.DataFrame({"institution": open_cases["institution"].astype("str").to_numpy()[mine],
                        "person_id": oc_person.to_numpy()[mine],
                        "case_id": open_cases["case_id"].to_numpy(dtype=object)[mine]})
    pair = ["institution", "person_id"]
    row_ok = pd.MultiIndex.from_frame(listed[pair]).isin(pd.MultiIndex.from_frame(own[pair]))

    def parts(df: pd.DataFrame, col: str) -> pd.DataFrame:
        has = df[col].notna().to_numpy()
        sub = df.loc[has, pair].assign(part=df.loc[has, col].astype("str").str.split(";").to_numpy())
        return sub.explode("part", ignore_index=True)

    shown, held = parts(listed, "case_ids"), parts(own, "case_id")
    keys = [*pair, "part"]
    part_ok = pd.MultiIndex.from_frame(shown[keys]).isin(pd.MultiIndex.from_frame(held[keys]))
    if row_ok.all() and part_ok.all():
        return
    bad = sorted(set(listed.loc[~row_ok, "institution"]) | set(shown.loc[~part_ok, "institution"]))
    raise InternalError(
        f"worklist(s) {', '.join(bad)}: {int((~row_ok).sum())} row(s) of people without an open case "
        f"there and {int((~part_ok).sum())} case id(s) that are not the institution's own open cases; "
        "nothing is published (a case id must never reach another institution). This is a bug: "
        "please report it with the run log")


#: First characters that make a spreadsheet read a text cell as a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_RE = r"[=+\-@\t\r]"


def _text_mask(col: pd.Series, test) -> np.ndarray:
    """Rows of ``col`` holding text for which ``test(col.str)`` holds (False for non-text values)."""
    try:
        hit = test(col.str)  # NaN for values that are not text
    except AttributeError:  # an object column without any text
        return np.zeros(len(col), dtype=bool)
    return hit.fillna(False).to_numpy(dtype=bool)


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
    out.columns = [f"'{c}" if isinstance(c, str) and c.startswith(FORMULA_START) else c for c in out.columns]
    return out


def write_worklist_csv(df: pd.DataFrame, path) -> Path:
    """Write ``df`` as CSV for a Swiss spreadsheet, safe against CSV injection; returns the path.

    The format the run folders have always used -- ``;`` separator, UTF-8
    with BOM (``utf-8-sig``), ``\\n`` line ends, no index -- after
    :func:`neutralise_formulas`; a line break inside a text cell is written
    as ``\\n`` (pandas quotes a cell holding ``\\n`` but not one holding a
    bare ``\\r``, which a spreadsheet would take for the end of the row).
    Written to a temporary file in the same folder and renamed, so readers
    never see half a file; the file gets the usual permissions (``0666``
    minus the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    safe = neutralise_formulas(df)
    for j in range(safe.shape[1]):
        safe.isetitem(j, _cr_to_lf(safe.iloc[:, j]))
    safe.columns = [c.replace("\r\n", "\n").replace("\r", "\n") if isinstance(c, str) else c
                    for c in safe.columns]
    return write_csv_atomic(safe, path, SWISS_CSV)
