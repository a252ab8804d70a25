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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from .io import string_order

__all__ = ["NOTICE", "WorklistSet", "build_worklists", "open_cases_at", "recently_assessed"]

logger = logging.getLogger("iizrisk")

#: The statement every worklist carries, per language.
NOTICE = {
    "de": "Hinweis für eine Fallbesprechung durch Fachpersonen – keine Entscheidung. "
          "Eine gemeinsame Abklärung setzt die Einwilligung der Person voraus.",
    "fr": "Indication pour un examen du dossier par des professionnels – pas une décision. "
          "Une évaluation commune requiert le consentement de la personne.",
    "it": "Indicazione per un esame del caso da parte di professionisti – non una decisione. "
          "Una valutazione comune richiede il consenso della persona.",
    "en": "A hint for a review by professionals, not a decision. "
          "A joint assessment requires the person's consent.",
}


def open_cases_at(timeline) -> pd.DataFrame:
    """One row per spell open at the timeline's as-of date: person_id, institution, case_id."""
    is_open = timeline.is_open()
    case = timeline.case_id[is_open]
    if len(timeline.case_ids):
        case_id = pd.Index(timeline.case_ids).take(case, allow_fill=True, fill_value=None)
    else:
        case_id = pd.Index(np.full(int(is_open.sum()), None, dtype=object))
    return pd.DataFrame({
        "person_id": timeline.person_ids.take(timeline.person[is_open]).array,
        "institution": pd.Categorical.from_codes(timeline.inst[is_open],
                                                 categories=list(timeline.institutions)),
        "case_id": case_id.array,
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
    logger.info("worklists: %s", {k: len(v) for k, v in out.lists.items()})
    return out


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort and mask: much faster than ``np.unique`` on long int64 columns)."""
    a = np.sort(a)
    return a[np.r_[True, a[1:] != a[:-1]]] if len(a) else a
