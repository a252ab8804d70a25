"""Whom tonight's lists flag: flag rates per protected group, judged by the fairness rule.

The fairness audit (:mod:`iizrisk.fairness`) needs outcomes, so it looks at
an as-of date at least one horizon back. The nightly run can judge the one
metric of the rule that needs no outcome every night: the **flag rate**, the
share of the people scored tonight who are on a list. For each protected
attribute (``[privacy] protected_attributes``: sex, nationality group, age
band, the disability proxy) each group's flag rate is divided by the
reference group's (the largest group), with a bootstrap confidence interval,
and :class:`~iizrisk.fairness_rule.FairnessRule` says whether the ratio
*exceeds* the bound (by default the four-fifths rule, 0.8 to 1.25), lies
*within* it, or *cannot tell at this sample size*.

The interval resamples people within each group (a stratified bootstrap):
given the group sizes, a group's flagged count in a replicate is binomial, so
the replicates are drawn from the counts and cost nothing per person. A ratio
far from 1 is not by itself unfair -- the lists take the highest risks, and
risk differs between groups -- but a data-protection officer must see it
every night, not once a year.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from iizrisk.fairness_rule import FairnessRule
>>> rng = np.random.default_rng(0)
>>> people = pd.DataFrame({"nationality_group": rng.choice(["CH", "THIRD"], 20_000, p=[0.8, 0.2])})
>>> listed = rng.random(20_000) < np.where(people["nationality_group"] == "THIRD", 0.03, 0.01)
>>> t = flag_rate_ratios(people, listed, attributes=["nationality_group"], rule=FairnessRule())
>>> t.loc[t["group"] == "THIRD", ["reference", "verdict"]].values.tolist()
[['CH', 'exceeds']]
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .fairness import DISABILITY_PROXY, MISSING, _disability_codes, age_bands
from .fairness_rule import FairnessRule, _judge
from .spells import positions

logger = logging.getLogger("iizrisk")

__all__ = ["COLUMNS", "flag_rate_ratios", "list_fairness", "verdict_counts"]

#: Columns of the table (one row per attribute and group).
COLUMNS: tuple[str, ...] = ("attribute", "group", "reference", "is_reference", "n", "n_listed", "flag_rate",
                            "ratio", "ratio_lo", "ratio_hi", "verdict", "n_needed", "hidden")


def flag_rate_ratios(people: pd.DataFrame, listed, *, attributes: Sequence[str], rule: FairnessRule,
                     min_cell_size: int = 5, n_bootstrap: int = 2000, confidence: float = 0.95,
                     random_state: int = 0) -> pd.DataFrame:
    """Flag rate per group and its ratio to the reference group, with intervals and the rule's verdict.

    Parameters
    ----------
    people : DataFrame
        One row per person scored, with a column per attribute (missing values form
        the group ``(missing)``).
    listed : array-like of bool
        Whether each person is on a list, aligned with ``people``.
    attributes : sequence of str
        Columns of ``people`` to judge; absent ones are skipped.
    rule : FairnessRule
        Its ratio bound (``min_ratio``) judges the flag-rate ratios when ``flag_rate``
        is among its ``ratio_metrics`` (else every verdict is ``not_judged``).
    min_cell_size : int, default 5
        A group with fewer people, fewer listed or fewer not listed has its counts,
        rate and ratio hidden (``hidden`` True; ``<NA>``) and is not judged (verdict
        ``not_judged``, no ``n_needed``): a verdict on a ratio nobody may read would
        say on which side of the bound its small counts lie.
    n_bootstrap : int, default 2000
        Replicates of the stratified bootstrap.
    confidence : float, default 0.95
    random_state : int, default 0

    Returns
    -------
    DataFrame
        The :data:`COLUMNS`; the reference group's ratio is 1 and its verdict
        ``not_judged``, and so is the verdict of a hidden group and of a group whose
        reference flags nobody.
    """
    flag = np.asarray(listed, dtype=bool)
    if len(flag) != len(people):
        raise ValueError(f"listed has {len(flag)} values for {len(people)} people")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence}: between 0 and 1")
    rng = np.random.default_rng(random_state)
    lo_q, hi_q = (1 - confidence) / 2, (1 + confidence) / 2
    lower, upper = float(rule.min_ratio), 1.0 / float(rule.min_ratio)
    k = int(min_cell_size)
    parts = []
    for attr in (a for a in attributes if a in people.columns):
        groups, codes = _groups(people[attr])
        n = np.bincount(codes, minlength=len(groups)).astype(np.int64)
        n_listed = np.bincount(codes, weights=flag, minlength=len(groups)).astype(np.int64)
        groups, n, n_listed = groups[n > 0], n[n > 0], n_listed[n > 0]  # categories nobody has
        if not len(groups):  # nobody: nothing to judge (the run's health gate reports an empty night)
            continue
        rate = n_listed / n
        # the reference: the largest group with a value (the first of equally large ones)
        ref = int(np.argmax(np.where(groups == MISSING, -1, n))) if (groups != MISSING).any() else 0
        # replicates: a group's flagged count given its size is binomial (people resampled within groups)
        draws = rng.binomial(n[:, None], rate[:, None], size=(len(groups), int(n_bootstrap))) / n[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = rate / rate[ref]
            boot = draws / draws[ref]
            boot = np.where(np.isnan(boot), np.inf, boot)  # 0 / 0: the reference flagged nobody in the replicate
        if n_bootstrap:
            with np.errstate(invalid="ignore"):  # inf - inf between infinite replicates: the end is inf
                lo, hi = np.quantile(boot, lo_q, axis=1), np.quantile(boot, hi_q, axis=1)
        else:
            lo = hi = np.full(len(groups), np.nan)
        verdict, need = _judge("ratio", lower, upper, ratio, lo, hi, n.astype(np.float64))  # the rule's own
        verdict[ref], need[ref] = "not_judged", np.nan
        if rate[ref] == 0 or "flag_rate" not in rule.ratio_metrics:
            verdict[:], need[:] = "not_judged", np.nan
        hidden = (n < k) | (n_listed < k) | (n - n_listed < k)
        verdict[hidden], need[hidden] = "not_judged", np.nan  # a verdict would tell of the hidden cells
        parts.append(pd.DataFrame({
            "attribute": attr, "group": groups, "reference": groups[ref], "is_reference": np.arange(len(groups)) == ref,
            "n": n, "n_listed": n_listed, "flag_rate": rate, "ratio": ratio, "ratio_lo": lo, "ratio_hi": hi,
            "verdict": verdict, "n_needed": need, "hidden": hidden}))
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    for col in ("n", "n_listed"):
        out[col] = out[col].astype("Int64").mask(out["hidden"])
    for col in ("flag_rate", "ratio", "ratio_lo", "ratio_hi"):
        out[col] = out[col].astype("Float64").mask(out["hidden"])
    return out[list(COLUMNS)]


def _groups(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The groups of one attribute (a categorical's in its order, else sorted; missing last) and each
    person's group code."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        names = values.cat.categories.astype(str).to_numpy(dtype=object)
        codes = values.cat.codes.to_numpy().astype(np.int64)
    else:  # hashed, then the few groups sorted (missing ones stay -1: the last group below)
        codes, uniq = pd.factorize(values.astype(object).where(values.notna(), None), use_na_sentinel=True)
        names = np.asarray(uniq, dtype=object).astype(str)
        order = np.argsort(names, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        names = names[order].astype(object)
        codes = np.where(codes < 0, -1, rank[np.maximum(codes, 0)]) if len(names) else codes.astype(np.int64)
    if (codes < 0).any():
        names, codes = np.append(names, MISSING), np.where(codes < 0, len(names), codes)
    return names, codes


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """Judged disparities of a :func:`flag_rate_ratios` table per verdict (``exceeds``, ``cannot_tell``,
    ``within``): the summary's sentence and the manifest's counts. A hidden group is not judged
    (``not_judged``) and never counted."""
    judged = table[~table["hidden"].astype(bool)] if len(table) and "hidden" in table else table
    counts = judged["verdict"].value_counts() if len(judged) else pd.Series(dtype=int)
    return {v: int(counts.get(v, 0)) for v in ("exceeds", "cannot_tell", "within")}


def list_fairness(view, scores: pd.DataFrame, listed_person_ids, *, attributes: Sequence[str],
                  rule: FairnessRule, min_cell_size: int = 5, disability_lookback_months: int = 60,
                  n_bootstrap: int = 2000, random_state: int = 0, codes: np.ndarray | None = None) -> pd.DataFrame:
    """The flag-rate ratios of one night: everyone scored, flagged when on any list.

    Parameters
    ----------
    view : iizrisk.view.View
        The night's view at T (the attributes are the latest visible at T).
    scores : DataFrame
        The night's scores (``person_id``): the people who could be listed.
    listed_person_ids : array-like
        Pseudonyms on any of tonight's lists.
    attributes : sequence of str
        ``[privacy] protected_attributes``: ``age_band`` from the birth year at T,
        ``disability`` from the IV proxy (:func:`iizrisk.fairness.disability_proxy`),
        other names from the persons' columns of the view (absent ones are skipped).
    rule, min_cell_size, n_bootstrap, random_state
        See :func:`flag_rate_ratios`.
    disability_lookback_months : int, default 60
    codes : ndarray, optional
        The scored people's codes in the view's timeline
        (``view.timeline.codes_of(scores["person_id"])``), when the caller has
        them: looking a million pseudonyms up again costs about a second.

    Returns
    -------
    DataFrame
        See :func:`flag_rate_ratios`.
    """
    from . import _time

    tl = view.timeline
    codes = tl.codes_of(scores["person_id"]) if codes is None else np.asarray(codes, dtype=np.int64)
    if len(codes) != len(scores):
        raise ValueError(f"list_fairness: {len(codes):,} codes for {len(scores):,} scored people")
    if (codes < 0).any():
        raise AssertionError("list_fairness: a scored person is missing from the view at T")
    t: dt.date = _time.to_date(tl.as_of)
    cols: dict[str, object] = {}
    for attr in attributes:
        if attr == "age_band" and "birth_year" in tl.persons.columns:
            cols[attr] = pd.Series(age_bands(tl.persons["birth_year"].to_numpy()[codes], t))
        elif attr == "disability":
            # a categorical of the groups present (as a column of names would give), in text order
            cols[attr] = pd.Categorical.from_codes(
                _disability_codes(tl, t, lookback_months=disability_lookback_months)[codes],
                categories=list(DISABILITY_PROXY)).remove_unused_categories()
        elif attr in tl.persons.columns:  # a categorical's codes taken, not a million values as objects
            col = tl.persons[attr].take(codes).reset_index(drop=True)
            if isinstance(col.dtype, pd.CategoricalDtype):  # its groups in text order, as for plain values
                cats = col.cat.categories
                col = col.cat.reorder_categories(cats[np.argsort(cats.astype(str), kind="stable")])
            cols[attr] = col
    absent = [a for a in attributes if a not in cols]
    if absent:  # a column the sources do not map: the check would be a no-op for it without a word
        logger.warning("fairness check: %s not in the data (no such column in the spells%s): not judged tonight; "
                       "map the column in [sources.columns] or leave it out of [privacy] protected_attributes",
                       ", ".join(absent), ", or no birth_year for age_band" if "age_band" in absent else "")
    people = pd.DataFrame(cols, index=pd.RangeIndex(len(codes)))
    # the listed among the scored (a list holds scored people only; looking them up among the scored
    # probes a million pseudonyms, not the timeline's millions)
    at = positions(pd.Index(scores["person_id"]), np.asarray(listed_person_ids, dtype=object))
    listed = np.zeros(len(codes), dtype=bool)
    listed[at[at >= 0]] = True
    table = flag_rate_ratios(people, listed, attributes=attributes, rule=rule, min_cell_size=min_cell_size,
                             n_bootstrap=n_bootstrap, random_state=random_state)
    table.attrs["not_in_the_data"] = absent  # the manifest says which configured attributes were not judged
    return table
