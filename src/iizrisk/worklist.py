"""Worklists: for each institution, a short ranked list for its coordinators.

A worklist holds the people with a case open at that institution on the
as-of date, ranked by risk, cut at the institution's capacity. Each row
carries only that institution's own case ids, the person's flags, the risk
band and the reasons in the institution's language. Other institutions
involved appear as a count, and by name only where the disclosure policy
allows it (docs/domain.md section 6). People with a joint assessment in the last
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

Selection, top to bottom: the people with a case open at the institution;
minus those recently assessed (``exclude``) and those a coordinator of *this*
institution reviewed and kept off (``keep_off``, :mod:`iizrisk.reviews`);
minus those below the institution's minimum risk band (default: the low band
is not listed, so a list may be shorter than its capacity); by risk, equal
risks by the score's rank (the uncalibrated score breaks the ties that
calibration creates), then by pseudonym; at most a per-canton number; cut at
capacity. Each row then carries its history on this institution's lists
(``first_listed``, ``times_listed``, ``days_on_list``, ``risk_change`` since
the last listing) and the last review (``last_decision``,
``last_decision_date``).

Privacy invariant: a list shows only case ids of its own institution's open
cases, for people with a case open there; :func:`build_worklists` checks this
on its result and raises :class:`~iizrisk.errors.InternalError` (nothing is
written) if it ever failed.

Written as CSV for spreadsheets with :func:`write_worklist_csv` (the one
writer of tables people open, :mod:`iizrisk.tables`): ``;``, UTF-8 with BOM,
headers, bands, the last decision and yes/no in the list's language, and text cells that a
spreadsheet would run as a formula prefixed with ``'`` (OWASP, CSV
injection): case ids and texts come from the institutions' exports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._arrays import string_order
from ._texts import LANGUAGES, text
from .config import RANK_BY
from .errors import InternalError
from .spells import positions
from .tables import FORMULA_START, neutralise_formulas, write_table

__all__ = ["NOTICE", "BANDS", "FORMULA_START", "HISTORY_COLUMNS", "WorklistSet", "band_order", "benefit_reasons",
           "build_worklists", "open_cases_at", "recently_assessed", "neutralise_formulas", "write_worklist_csv"]

logger = logging.getLogger("iizrisk")

#: The statement every worklist carries, per language (read-only; from the text catalogue, ``worklist.notice``).
NOTICE: Mapping[str, str] = MappingProxyType({lang: text("worklist.notice", lang) for lang in LANGUAGES})


#: The risk bands from lowest to highest (a band's position is its order).
BANDS = ("low", "medium", "high")
#: The columns a worklist row carries about its history on that institution's lists.
HISTORY_COLUMNS = ("first_listed", "times_listed", "days_on_list", "risk_change", "last_decision",
                   "last_decision_date")
#: The last columns of every worklist, in this order.
_TAIL = ("new_on_list", "as_of", "language", "notice")

#: Reasons for a list's rows: ``reasons(institution, person_ids, language)`` -> a table indexed by person_id.
Reasons = Callable[[str, pd.Index, str], pd.DataFrame]


def band_order(bands) -> np.ndarray:
    """Position of each band name in :data:`BANDS` (0 low .. 2 high); other names rank above every band.

    >>> band_order(["high", "low", "x"]).tolist()
    [2, 0, 3]
    """
    # looked up by Arrow: a million band names of the night's scores are never made Python strings
    arr = pa.array(pd.Index(bands, dtype=object if not isinstance(bands, pd.Series | pd.Index) else None)
                   .astype("str").array)
    idx = pc.fill_null(pc.index_in(arr, value_set=pa.array(BANDS, type=arr.type)), -1)
    idx = np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.where(idx < 0, len(BANDS), idx).astype(np.int64)


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
    """Worklists per institution plus what was left off and why.

    ``capacity`` is each list's number of places; ``left_off_assessed`` the
    people left off after a recent joint assessment, ``left_off_reviewed``
    those a coordinator's review keeps off, ``below_min_band`` those under the
    institution's minimum band (all per institution).
    """

    lists: dict[str, pd.DataFrame] = field(default_factory=dict)
    left_off_assessed: dict[str, int] = field(default_factory=dict)
    eligible: dict[str, int] = field(default_factory=dict)
    left_off_reviewed: dict[str, int] = field(default_factory=dict)
    below_min_band: dict[str, int] = field(default_factory=dict)
    capacity: dict[str, int] = field(default_factory=dict)

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
        """Per institution with people eligible (an empty list too): eligible people, left off (recent
        assessment, review, below the minimum band), on the list, its places, new on the list."""
        empty = pd.DataFrame({"new_on_list": pd.Series([], dtype=bool)})
        names = [*self.lists, *sorted(set(self.eligible) - set(self.lists))]
        return pd.DataFrame([
            {"institution": k, "eligible": self.eligible.get(k, 0),
             "left_off_recent_assessment": self.left_off_assessed.get(k, 0),
             "left_off_reviewed": self.left_off_reviewed.get(k, 0),
             "below_min_band": self.below_min_band.get(k, 0),
             "on_list": len(v), "places": self.capacity.get(k, len(v)),
             "new_on_list": int(v["new_on_list"].sum()) if len(v) else 0}
            for k, v in ((k, self.lists.get(k, empty)) for k in names)
        ], columns=["institution", "eligible", "left_off_recent_assessment", "left_off_reviewed", "below_min_band",
                    "on_list", "places", "new_on_list"])

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
    capacity_per_institution: Mapping[str, int] | None = None,
    capacity_per_canton: Mapping[str, int] | None = None,
    canton_of: pd.Series | None = None,
    disclose_institutions=None,
    exclude: np.ndarray | None = None,
    keep_off: pd.DataFrame | None = None,
    min_band: str = "medium",
    min_band_per_institution: Mapping[str, str] | None = None,
    previous: pd.DataFrame | None = None,
    history: pd.DataFrame | None = None,
    reviews: pd.DataFrame | None = None,
    as_of=None,
    flags: pd.DataFrame | None = None,
    reasons: Reasons | Mapping[str, pd.DataFrame] | None = None,
    language_of: Mapping[str, str] | None = None,
    default_language: str = "de",
    rank_by: str = "risk",
    benefit: pd.Series | None = None,
    benefit_outcome: str = "revolving_door",
) -> WorklistSet:
    """Select, rank and cut each institution's list, and decorate its rows.

    Parameters
    ----------
    scores : DataFrame
        ``person_id``, ``risk``, ``risk_band`` (one row per scored person);
        with ``rank`` (as :func:`iizrisk.model.score` gives it) equal risks
        keep the score's order (its uncalibrated tie-break), else they go by
        pseudonym.
    open_cases : DataFrame
        ``person_id``, ``institution``, ``case_id`` of the cases open at the as-of date.
    capacity, capacity_per_institution : int, dict
        Places per worklist (the dict overrides per institution code).
    capacity_per_canton, canton_of : dict, Series
        Optional further cap per canton (``canton_of`` maps person_id to canton).
    disclose_institutions : list of str
        Institutions whose involvement may be named on other institutions' lists;
        all others appear only in the count.
    exclude : array of person ids
        Left off every list (e.g. a joint assessment in the last months); counted.
    keep_off : DataFrame
        ``institution``, ``person_id``: left off that institution's list only
        (a review's decision, :func:`iizrisk.reviews.keep_off`); counted.
    min_band, min_band_per_institution : str, dict
        The lowest band listed (``low``, ``medium``, ``high``; per institution
        code); people below it are not listed (counted), so a list may be
        shorter than its capacity. Band names outside :data:`BANDS` are listed.
    previous : DataFrame
        ``institution``, ``person_id`` of the last run's worklists, for ``new_on_list``.
    history : DataFrame
        ``institution``, ``person_id``, ``as_of``, ``risk`` of the past nights'
        worklists (the history store's ``worklists`` table), for
        ``first_listed``, ``times_listed``, ``days_on_list`` and ``risk_change``.
    reviews : DataFrame
        ``institution``, ``person_id``, ``review_date``, ``decision`` of the
        reviews up to the as-of date, for ``last_decision`` and ``last_decision_date``.
    as_of : date-like
        The as-of date (the ``as_of`` column; needed with ``history``).
    flags : DataFrame
        Per person flags (``person_id`` and flag columns) to show on the lists.
    reasons : callable or dict institution -> DataFrame
        The reasons of each list's rows: ``reasons(institution, person_ids,
        language)`` returns a table indexed by person_id (in the list's
        language, naming only institutions that list may name; see
        :func:`iizrisk.explain.reason_codes`), called once per list with its
        rows only; or such tables already computed, per institution.
    language_of : dict
        Language per institution code (default ``default_language``).
    rank_by : {"risk", "benefit", "risk_x_benefit"}, default "risk"
        The order of each list: highest risk first, or highest expected
        benefit of a joint assessment (``benefit``), or risk times benefit.
        People without a benefit estimate (outside the situations the benefit
        model learnt from) follow those with one, by risk; ties go by risk.
    benefit : Series, optional
        The expected benefit (reduction of the outcome's probability) per
        ``person_id``, NaN where the benefit model has no estimate
        (:func:`iizrisk.benefit.benefit_at`). With it each row shows
        ``benefit`` and ``benefit_reason`` (in the list's language).
    benefit_outcome : str, default "revolving_door"
        The outcome the benefit prevents, for the reason's wording.
    """
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {', '.join(RANK_BY)}, got {rank_by!r}")
    if rank_by != "risk" and benefit is None:
        raise ValueError(f"rank_by={rank_by!r} needs the benefit of the scored people (benefit=...)")
    capacity_per_institution = capacity_per_institution or {}
    min_band_per_institution = min_band_per_institution or {}
    disclose = set(disclose_institutions or [])
    language_of = language_of or {}
    # everything below works on integer codes: scored persons by their row in `scores`,
    # institutions by their rank in sorted order (hashing pseudonyms once, not per step)
    # (pseudonyms and bands stay Arrow text: a million Python strings per column cost 0.1-0.2 s each)
    pid = pd.Index(scores["person_id"].astype("str"), name="person_id")
    n = len(pid)
    ids = pa.array(pid.array)
    by_name = string_order(ids)  # pseudonym order: the last tie-break, and repeats are neighbours in it
    in_order = ids.take(pa.array(by_name))
    if n > 1 and (pc.any(pc.equal(in_order.slice(1), in_order.slice(0, n - 1))).as_py() or ids.null_count > 1):
        raise ValueError("scores: person_id repeats; build_worklists expects one row per scored person")
    risk = scores["risk"].to_numpy(dtype=np.float64)
    band = scores["risk_band"].reset_index(drop=True)
    oc_person = positions(pid, open_cases["person_id"])
    oc_inst, insts = _sorted_codes(open_cases["institution"])
    oc_key = np.where((oc_person >= 0) & (oc_inst >= 0), oc_inst * n + oc_person, -1)

    # selection over everyone: one row per (institution, scored person) with an open case
    key = _sorted_unique(oc_key[oc_key >= 0])
    p_inst, p_person = key // max(n, 1), key % max(n, 1)
    out = WorklistSet()
    eligible = np.bincount(p_inst, minlength=len(insts))
    out.eligible = {insts[i]: int(eligible[i]) for i in np.flatnonzero(eligible)}
    out.capacity = {insts[i]: int(capacity_per_institution.get(insts[i], capacity)) for i in np.flatnonzero(eligible)}
    excluded = np.zeros(n, dtype=bool)
    if exclude is not None and len(exclude):
        codes = positions(pid, np.asarray(exclude, dtype=object))
        excluded[codes[codes >= 0]] = True
    steps = [("left_off_assessed", excluded[p_person])]
    if keep_off is not None and len(keep_off):
        k_inst = pd.Index(insts).get_indexer(keep_off["institution"].astype("str"))
        k_person = positions(pid, keep_off["person_id"])
        k_key = np.where((k_inst >= 0) & (k_person >= 0), k_inst * n + k_person, -1)
        steps.append(("left_off_reviewed", np.isin(p_inst * n + p_person, k_key[k_key >= 0])))
    else:
        steps.append(("left_off_reviewed", np.zeros(len(p_inst), dtype=bool)))
    lowest = band_order([min_band_per_institution.get(i, min_band) for i in insts] or ["low"])
    steps.append(("below_min_band", band_order(band)[p_person] < lowest[p_inst]))
    gone_before = np.zeros(len(p_inst), dtype=bool)
    for name, gone in steps:  # each person counted under the first reason that leaves them off
        counted = np.bincount(p_inst[gone & ~gone_before], minlength=len(insts))
        setattr(out, name, {insts[i]: int(counted[i]) for i in np.flatnonzero(eligible)})
        gone_before |= gone
    p_inst, p_person = p_inst[~gone_before], p_person[~gone_before]
    # institution, then risk descending, then the score's own order (its tie-break), then pseudonym
    name_rank = np.empty(n, dtype=np.int64)
    name_rank[by_name] = np.arange(n)
    score_rank = scores["rank"].to_numpy(dtype=np.int64) if "rank" in scores.columns else name_rank
    gain = None if benefit is None else benefit.set_axis(benefit.index.astype("str")).reindex(pid).to_numpy(
        dtype=np.float64, na_value=np.nan)
    if rank_by == "risk" or gain is None:
        order = np.lexsort((name_rank[p_person], score_rank[p_person], -risk[p_person], p_inst))
    else:  # by benefit (or risk x benefit); people without an estimate after those with one, by risk
        key = gain if rank_by == "benefit" else risk * np.maximum(gain, 0.0)
        known = ~np.isnan(key)
        order = np.lexsort((name_rank[p_person], score_rank[p_person], -risk[p_person],
                            -np.where(known, key, 0.0)[p_person], ~known[p_person], p_inst))
    p_inst, p_person = p_inst[order], p_person[order]
    if capacity_per_canton and canton_of is not None:
        canton = canton_of.reindex(pid.take(p_person)).to_numpy()
        n_in_canton = pd.DataFrame({"i": p_inst, "c": canton}).groupby(
            ["i", "c"], dropna=False, sort=False).cumcount().to_numpy()
        cap_canton = pd.Series(canton).map(dict(capacity_per_canton)).fillna(np.inf).to_numpy()
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
                             "case_id": open_cases["case_id"].array[theirs_rows].to_numpy()})
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
    t = None if as_of is None else pd.Timestamp(as_of).normalize()
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
            "risk_band": band.take(persons).to_numpy(dtype=object),
        })
        lang = language_of.get(inst, default_language)
        if gain is not None:
            df["benefit"] = gain[persons]
            df["benefit_reason"] = benefit_reasons(gain[persons], benefit_outcome, lang)
        other = theirs[theirs["person"].isin(persons) & (theirs["inst"] != i)]
        df["n_other_institutions"] = other.groupby("person").size().reindex(
            persons, fill_value=0).to_numpy().astype(np.int64)
        shown = other[other["inst"].map(lambda c: insts[c] in disclose).astype(bool)]
        names = shown.assign(name=[insts[c] for c in shown["inst"]]).groupby("person")["name"].agg("+".join)
        df["other_institutions_disclosed"] = names.astype(object).reindex(persons, fill_value="").to_numpy()
        if f is not None:
            df = df.join(f, on="person_id")
        if callable(reasons):
            df = df.join(reasons(inst, pd.Index(df["person_id"], name="person_id"), lang), on="person_id")
        elif reasons is not None and inst in reasons:
            df = df.join(reasons[inst], on="person_id")
        if history is not None or reviews is not None:
            df = _with_history(df, inst, history, reviews, t)
        if previous is not None and len(previous):
            prev = previous.loc[previous["institution"].astype(str) == inst, "person_id"].astype(str)
            df["new_on_list"] = ~df["person_id"].isin(prev)
        else:
            df["new_on_list"] = True
        if t is not None:
            df["as_of"] = t.to_datetime64().astype("datetime64[s]")
        df["language"] = lang
        df["notice"] = NOTICE.get(lang, NOTICE["en"])
        out.lists[inst] = df
    _check_own_cases(out.lists, open_cases)
    logger.info("worklists: %s", ", ".join(f"{k} {len(v)}" for k, v in out.lists.items()) or "none")
    return out


def _sorted_codes(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    """The distinct values present (as text, sorted) and each row's code among them, -1 when missing.

    A categorical is coded from its codes (a million rows never become text).
    """
    if not isinstance(col.dtype, pd.CategoricalDtype):
        codes, names = pd.factorize(col.astype("str"), sort=True)
        return codes.astype(np.int64), [str(x) for x in names]
    codes = col.cat.codes.to_numpy().astype(np.int64)
    cats = np.array([str(c) for c in col.cat.categories], dtype=object)
    used = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(cats)))
    order = used[np.argsort(cats[used].astype(str), kind="stable")]
    rank = np.full(len(cats) + 1, -1, dtype=np.int64)  # the last slot: missing (code -1)
    rank[order] = np.arange(len(order))
    return rank[codes], [str(x) for x in cats[order]]


def benefit_reasons(benefit, outcome: str, language: str) -> np.ndarray:
    """The expected benefit of a joint assessment in plain words, one text per value.

    ``benefit`` is the expected reduction of the outcome's probability
    (:meth:`iizrisk.benefit.BenefitModel.predict_benefit`): 0.03 reads "about
    3 fewer per 100 assessments"; below half a case per 100 the text says
    that similar people did not do better; NaN (no estimate) says the model
    knows no comparable situations.

    >>> benefit_reasons([0.031, 0.0, float("nan")], "revolving_door", "en").tolist()[0]
    'Similar people who had an early joint assessment returned less often: about 3 fewer revolving doors per 100 assessments.'
    """
    b = np.asarray(benefit, dtype=np.float64)
    if outcome not in ("revolving_door", "disintegration"):
        raise ValueError(f"benefit_reasons: outcome must be 'revolving_door' or 'disintegration', got {outcome!r}")
    per100 = np.rint(np.where(np.isnan(b), 0.0, b) * 100).astype(np.int64)
    none, outside = text("worklist.benefit.none", language), text("worklist.benefit.outside", language)
    out = np.where(np.isnan(b), outside, none).astype(object)
    for n in np.unique(per100[per100 >= 1]):  # one text per whole number, not per row
        out[per100 == n] = text(f"worklist.benefit.{outcome}", language, n=int(n))
    return out


def _with_history(df: pd.DataFrame, inst: str, history: pd.DataFrame | None, reviews: pd.DataFrame | None,
                  t: pd.Timestamp | None) -> pd.DataFrame:
    """``df`` with its rows' history on this institution's lists and their last review.

    ``history`` holds past nights only (nights before ``t``); tonight counts as one more listing.
    """
    if t is None:
        raise ValueError("build_worklists: history or reviews need as_of (the as-of date)")
    ids = pd.Index(df["person_id"].astype("str"))
    day = np.datetime64(t.date(), "D")
    first = pd.Series(day, index=ids)
    times = pd.Series(1, index=ids, dtype=np.int64)
    change = pd.Series(np.nan, index=ids)
    if history is not None and len(history):
        h = history[(history["institution"].astype("str") == inst)
                    & (pd.to_datetime(history["as_of"]) < t)
                    & history["person_id"].astype("str").isin(ids)]
        h = h.assign(person_id=h["person_id"].astype("str"), as_of=pd.to_datetime(h["as_of"]))
        g = h.sort_values("as_of", kind="stable").groupby("person_id")
        past_first = g["as_of"].min().reindex(ids)
        first = past_first.fillna(pd.Timestamp(t)).to_numpy(dtype="datetime64[D]")
        first = pd.Series(first, index=ids)
        times = times + g.size().reindex(ids, fill_value=0).to_numpy()
        change = pd.Series(df["risk"].to_numpy(), index=ids) - g["risk"].last().reindex(ids)
    df = df.copy()
    df["first_listed"] = first.to_numpy().astype("datetime64[s]")
    df["times_listed"] = times.to_numpy().astype(np.int64)
    df["days_on_list"] = (day - first.to_numpy(dtype="datetime64[D]")).astype(np.int64)
    df["risk_change"] = change.to_numpy(dtype=np.float64)
    last_decision = pd.Series(None, index=ids, dtype=object)
    last_date = pd.Series(pd.NaT, index=ids, dtype="datetime64[s]")
    if reviews is not None and len(reviews):
        r = reviews[(reviews["institution"].astype("str") == inst)
                    & (pd.to_datetime(reviews["review_date"]) <= t)
                    & reviews["person_id"].astype("str").isin(ids)]
        r = r.assign(person_id=r["person_id"].astype("str"), review_date=pd.to_datetime(r["review_date"]))
        last = r.sort_values(["review_date", "decision"], kind="stable").groupby("person_id").last()
        last_decision = last["decision"].astype(object).reindex(ids)
        last_date = last["review_date"].reindex(ids).astype("datetime64[s]")
    df["last_decision"] = last_decision.to_numpy(dtype=object)
    df["last_decision_date"] = last_date.to_numpy()
    return df


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
    mine = open_cases["person_id"].astype("str").isin(pd.unique(listed["person_id"])).to_numpy()
    own = open_cases.loc[mine]  # the listed people's open cases only, before any value becomes a Python string
    own = pd.DataFrame({"institution": own["institution"].astype("str").to_numpy(),
                        "person_id": own["person_id"].astype("str").to_numpy(),
                        "case_id": own["case_id"].to_numpy(dtype=object)})
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


def write_worklist_csv(df: pd.DataFrame, path, *, language: str | None = None) -> Path:
    """Write ``df`` as CSV for a Swiss spreadsheet, safe against CSV injection; returns the path.

    :func:`iizrisk.tables.write_table`: ``;`` separator, UTF-8 with BOM,
    ``\n`` line ends, no index, formulas neutralised, line breaks in a cell
    as ``\n``, written atomically; with ``language`` the headers, bands, the
    last decision and yes/no in that language and the risks in percent (the run's worklists),
    without it the codes and values as they are.
    """
    return write_table(df, path, language=language)
