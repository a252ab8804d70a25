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
    case_ids = (np.asarray(timeline.case_ids, dtype=object)[np.where(case < 0, 0, case)]
                if len(timeline.case_ids) else np.full(int(is_open.sum()), None, dtype=object))
    return pd.DataFrame({
        "person_id": np.asarray(timeline.person_ids, dtype=object)[timeline.person[is_open]],
        "institution": np.asarray(timeline.institutions, dtype=object)[timeline.inst[is_open]],
        "case_id": np.where(case < 0, None, case_ids),
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
    oc = pd.DataFrame({"institution": open_cases["institution"].astype("str").to_numpy(),
                       "person_id": open_cases["person_id"].astype("str").to_numpy(),
                       "case_id": open_cases["case_id"].to_numpy()})
    sc = pd.DataFrame({"risk": scores["risk"].to_numpy(), "risk_band": scores["risk_band"].to_numpy()},
                      index=pd.Index(scores["person_id"].astype("str"), name="person_id"))
    # selection over everyone, vectorised: one row per (institution, person) with a score
    pairs = oc[["institution", "person_id"]].drop_duplicates()
    pairs = pairs[pairs["person_id"].isin(sc.index)]
    out = WorklistSet()
    out.eligible = pairs.groupby("institution").size().astype(int).to_dict()
    ex = pairs["person_id"].isin(pd.Index(np.asarray(exclude if exclude is not None else [], dtype=object)))
    out.left_off_assessed = pairs[ex].groupby("institution").size().astype(int).reindex(
        list(out.eligible), fill_value=0).to_dict()
    pairs = pairs[~ex.to_numpy()].copy()
    pairs["risk"] = sc["risk"].reindex(pairs["person_id"]).to_numpy()
    pairs = pairs.sort_values(["institution", "risk", "person_id"], ascending=[True, False, True],
                              kind="mergesort")
    if capacity_per_canton and canton_of is not None:
        pairs["canton"] = canton_of.reindex(pairs["person_id"]).to_numpy()
        n_in_canton = pairs.groupby(["institution", "canton"], dropna=False).cumcount()
        pairs = pairs[n_in_canton.to_numpy() < pairs["canton"].map(capacity_per_canton).fillna(np.inf).to_numpy()]
    rank = pairs.groupby("institution").cumcount().to_numpy() + 1
    cap = pairs["institution"].map(lambda i: capacity_per_institution.get(i, capacity)).to_numpy()
    sel = pairs[rank <= cap].assign(rank=rank[rank <= cap])
    # decorations on the selected rows only
    mine = oc.merge(sel[["institution", "person_id"]], on=["institution", "person_id"])
    cases = (mine.dropna(subset=["case_id"]).astype({"case_id": "str"})
             .drop_duplicates().sort_values("case_id")
             .groupby(["institution", "person_id"])["case_id"].agg(";".join))
    theirs = oc[oc["person_id"].isin(sel["person_id"])][["person_id", "institution"]].drop_duplicates()
    theirs = theirs.sort_values("institution")
    f = None
    if flags is not None and len(flags):
        f = flags.assign(person_id=flags["person_id"].astype("str")).set_index("person_id")
        f = f[[c for c in f.columns if c != "as_of"]]
    for inst, grp in sel.groupby("institution", sort=True):
        df = pd.DataFrame({
            "institution": inst,
            "rank": grp["rank"].to_numpy(),
            "person_id": grp["person_id"].to_numpy(),
            "case_ids": cases.reindex(pd.MultiIndex.from_arrays(
                [grp["institution"], grp["person_id"]])).to_numpy(),
            "risk": grp["risk"].to_numpy(),
            "risk_band": sc["risk_band"].reindex(grp["person_id"]).to_numpy(),
        })
        other = theirs[theirs["person_id"].isin(df["person_id"]) & (theirs["institution"] != inst)]
        df["n_other_institutions"] = other.groupby("person_id").size().reindex(
            df["person_id"], fill_value=0).to_numpy().astype(np.int64)
        shown = other[other["institution"].isin(disclose)]
        df["other_institutions_disclosed"] = shown.groupby("person_id")["institution"].agg("+".join).reindex(
            df["person_id"], fill_value="").to_numpy()
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
