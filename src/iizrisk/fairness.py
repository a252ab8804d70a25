"""Fairness audit: how the risk model treats groups of people, on a scored and labelled period.

docs/domain.md section 7: protected attributes (sex, nationality group; a
deployment may add more) are not model inputs by default; they are used to
*audit* the model. An audit looks at one as-of date T whose horizon is
observed: everyone scored at T, their risk, whether they would have been
flagged at the configured capacity (the ``k`` highest risks), and whether the
outcome happened in T+1 ... T+H (:mod:`iizrisk.outcomes`, full data).

For every group of each attribute (sex, nationality group, age band, canton
by default), for the pairs of attributes (intersections, where the cells are
large enough) and overall, :class:`FairnessAudit` reports

``n``, ``n_positive``, ``n_flagged``
    people in the group, with the outcome, flagged at capacity;
``flag_rate``
    share of the group flagged (selection rate);
``precision``, ``recall``, ``fpr``
    among the flagged, the share with the outcome; among those with the
    outcome, the share flagged; among those without, the share flagged;
``mean_predicted``, ``observed_rate``, ``calibration_gap``
    calibration in the large: mean predicted risk, observed outcome rate and
    their difference (positive: the model over-predicts for the group);
``roc_auc``
    how well the risk ranks people with the outcome above those without,
    within the group;

and, against each attribute's reference group (the largest group unless
configured), the difference and the ratio of every metric with percentile
bootstrap confidence intervals. A :class:`FairnessRule` judges them: by
default the four-fifths rule on flag-rate ratios (a group flagged at less than
0.8 or more than 1.25 times the reference's rate) plus a bound on the
calibration gap. A disparity *exceeds* only when its whole confidence
interval lies beyond the bound, is *within* when the whole interval lies
inside, and otherwise *cannot tell at this sample size*, with the group size
that would let the interval decide (``n_needed``). An exceeding disparity
sets ``gap_flag`` in the tables and raises a :class:`FairnessGapWarning`.

The bootstrap resamples people with replacement (all rows of a person, at
every as-of date, together). It is vectorised: each replicate draws the
people as one array and turns them into per-row weights (how often the
row's person was drawn), so every metric, ROC AUC
included, is a weighted sum over the rows in a fixed order; replicates are
processed in blocks. Who is flagged is kept fixed (the flags of the
observed period), so the intervals describe the sampling variation of the
people, given the worklist policy.

Disclosure control (docs/domain.md section 6): every table and plot that leaves
the system goes through :func:`iizrisk.suppression.protect_cells`. Each
group row is a 2 x 2 table (flagged or not, outcome or not) with its
margins; the cells of the groups of an attribute add up to the overall row,
and the cells of an intersection add up to the one-way groups. Cells with
1 to ``min_cell_size - 1`` people are hidden, with complementary cells so
that no hidden cell can be recovered by subtraction; a rate is hidden when a
count it is computed from is hidden, and so is every gap involving it.
Intersection rows whose size is hidden are left out of the tables.

Displays -- :meth:`FairnessAudit.to_text`, ``_repr_html_``, the plots and the
model card's tables (:meth:`FairnessAudit.display_rows`) -- take a
``language`` (de, fr, it, en): headers, attributes, groups, metrics, verdicts
and the rule (:meth:`FairnessRule.describe`) in the words of the text
catalogue (``audit.*``, ``card.*``), whole numbers with the language's Swiss
thousands separator, hidden cells as ``·``. Log messages stay in English.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> n = 600
>>> data = pd.DataFrame({"score": rng.random(n), "sex": rng.choice(["F", "M"], n)})
>>> data["label"] = rng.random(n) < data["score"] * 0.5
>>> audit = FairnessAudit(groups=["sex"], capacity=60, n_bootstrap=50).fit(data)
>>> audit.summary[["attribute", "group", "n", "n_flagged"]].to_dict("list")["group"]
['all', 'F', 'M']
>>> int(audit.summary["n_flagged"].iloc[0])
60
>>> audit.to_text(language="de").splitlines()[0][:44]
'Fairness-Prüfung: 600 Personen, 60 markiert;'
"""

from __future__ import annotations

import html
import logging
import math
import textwrap
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._checks import check_seed, is_real, whole_number
from ._results import OutputFigure, OutputTable, ResultMixin
from ._texts import colon, load_locale, swiss_number, text
from ._time import _shown
from .errors import ConfigError, ValidationError
from .fairness_rule import _NO_RATIO, GAP_METRICS, METRICS, VERDICTS, FairnessRule, _judge
from .suppression import PRIMARY, PUBLISHED, SECONDARY, check_min_cell_size, protect_cells

__all__ = [
    "AGE_BAND_EDGES",
    "GAP_METRICS",
    "GROUP_COLUMNS",
    "METRICS",
    "MISSING",
    "FairnessAudit",
    "FairnessGapWarning",
    "FairnessRule",
    "VERDICTS",
    "VERDICT_COLOURS",
    "age_bands",
    "disability_proxy",
    "labelled_period",
    "audit_model",
    "verdict_legend",
]

logger = logging.getLogger("iizrisk")

#: Attributes audited by default (the columns of :func:`labelled_period`): the protected grounds of
#: Art. 8(2) BV the data hold (sex, origin as nationality group, age, disability through its IV proxy)
#: and the canton.
GROUP_COLUMNS: tuple[str, ...] = ("sex", "nationality_group", "age_band", "disability", "canton")
#: Values of the ``disability`` attribute: an IV registration or process visible at T (the proxy).
DISABILITY_PROXY: tuple[str, str] = ("IV", "no_IV")
#: Lower edges of the age bands after the first: <25, 25-34, 35-49, 50-64, 65+.
AGE_BAND_EDGES: tuple[int, ...] = (25, 35, 50, 65)
#: Label of a missing attribute value (a group of its own, so that groups add up).
MISSING = "(missing)"
OVERALL = "overall"
ALL = "all"
#: Separator of the attributes and values of an intersection ("sex:age_band", "F:50-64").
SEP = ":"
# cells of one group row: the 2 x 2 table flagged x outcome and its margins
_CELLS = ("tp", "fp", "fn", "tn", "flagged", "unflagged", "pos", "neg", "n")
TP, FP, FN, TN, FLAGGED, UNFLAGGED, POS, NEG, N = range(len(_CELLS))
_ROW_LINES = (([TP, FP], FLAGGED), ([FN, TN], UNFLAGGED), ([TP, FN], POS), ([FP, TN], NEG),
              ([FLAGGED, UNFLAGGED], N), ([POS, NEG], N))
#: The cells each published value is computed from (hidden when any of them is).
_DEPENDS: dict[str, tuple[int, ...]] = {
    "n": (N,), "n_positive": (POS,), "n_flagged": (FLAGGED,),
    "flag_rate": (FLAGGED, N), "precision": (TP, FLAGGED), "recall": (TP, POS), "fpr": (FP, NEG),
    "mean_predicted": (N,), "observed_rate": (POS, N), "calibration_gap": (POS, N), "roc_auc": (POS, NEG),
}
_STATUS = np.array([PUBLISHED, PRIMARY, SECONDARY], dtype=object)
_BLOCK = 32  # bootstrap replicates per block


class FairnessGapWarning(UserWarning):
    """A group's metric differs from its reference group's beyond the fairness rule's bound."""


def age_bands(birth_year, as_of, *, edges: Sequence[int] = AGE_BAND_EDGES) -> pd.Categorical:
    """Age bands (age = as-of year minus birth year) as an ordered categorical.

    Examples
    --------
    >>> age_bands([2005, 1990, 1970, 1960, None], "2024-06-30").tolist()
    ['<25', '25-34', '50-64', '50-64', nan]
    """
    edges = [int(e) for e in edges]
    labels = [f"<{edges[0]}"] + [f"{a}-{b - 1}" for a, b in zip(edges[:-1], edges[1:], strict=True)] \
        + [f"{edges[-1]}+"]
    year = pd.Timestamp(as_of).year
    by = pd.to_numeric(pd.Series(birth_year), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    age = year - by
    code = np.searchsorted(np.asarray(edges, dtype=np.float64), age, side="right")
    code = np.where(np.isnan(age), -1, code)
    return pd.Categorical.from_codes(code, categories=labels, ordered=True)


def disability_proxy(timeline, as_of, *, lookback_months: int = 60) -> np.ndarray:
    """The disability proxy per person code of a point-in-time timeline: ``"IV"`` or ``"no_IV"``.

    Disability is a protected ground (Art. 8(2) BV) the exports do not record;
    an IV (disability insurance) registration or process is the available
    proxy: a spell at IV open at T or ended within ``lookback_months`` before T.

    Examples
    --------
    >>> from iizrisk.spells import build_timeline
    >>> rows = pd.DataFrame({"person_id": ["a", "b", "c"], "institution": ["IV", "ALV", "IV"],
    ...                      "start_date": pd.to_datetime(["2023-01-01", "2023-01-01", "2010-01-01"]),
    ...                      "end_date": pd.to_datetime([None, None, "2012-01-01"])})
    >>> disability_proxy(build_timeline(rows, as_of="2024-06-30"), "2024-06-30").tolist()
    ['IV', 'no_IV', 'no_IV']
    """
    # the two names taken by code: millions of references to two strings, not millions of strings
    return np.array(DISABILITY_PROXY, dtype=object)[_disability_codes(timeline, as_of, lookback_months=lookback_months)]


def _disability_codes(timeline, as_of, *, lookback_months: int = 60) -> np.ndarray:
    """:func:`disability_proxy` as codes into :data:`DISABILITY_PROXY` (0 ``"IV"``, 1 ``"no_IV"``), per person code."""
    from . import _time
    from .spells import as_of_day

    t = as_of_day(as_of)
    w0 = int(_time.window_start(t, int(lookback_months)))
    iv = (timeline.inst == timeline.inst_code("IV")) & (timeline.end.astype(np.int64) >= w0)
    has = np.bincount(timeline.person[iv].astype(np.int64), minlength=timeline.n_persons) > 0
    return np.where(has, 0, 1).astype(np.int8)


def labelled_period(model, spells: pd.DataFrame, as_of, *, interventions: pd.DataFrame | None = None,
                    observed_until=None, attributes: Sequence[str] | None = None,
                    age_band_edges: Sequence[int] = AGE_BAND_EDGES,
                    disability_lookback_months: int = 60) -> pd.DataFrame:
    """Scores at ``as_of``, true outcomes over the horizon and the person attributes, one row per person.

    The scores are those the model gives at T (:func:`iizrisk.model.score`, the
    point-in-time view); the labels are the model's outcome over T+1 ... T+H
    computed from the full spells (:func:`iizrisk.outcomes.compute_outcome`);
    the attributes are the latest values visible at T
    (``build_timeline(spells, as_of=T).persons``).

    Parameters
    ----------
    model : RiskModel
        A fitted model (its ``outcome`` and ``horizon_months`` define the label).
    spells : DataFrame
        Canonical spells of the whole export (the horizon after T included).
    as_of : date-like
        The as-of date T; T plus the horizon must be observed.
    interventions : DataFrame, optional
        Passed to the scoring (needed when the model was trained with them).
    observed_until : date-like, optional
        Last observed day of the data; default from the spells.
    attributes : list of str, optional
        Person attributes to attach; default ``sex``, ``nationality_group``,
        ``birth_year``, ``disability`` (:func:`disability_proxy`), ``canton``. Other columns of the
        spells (a deployment's own protected attributes) are taken from the person's latest row
        visible at T.
    age_band_edges : sequence of int
        Edges of the ``age_band`` column (:func:`age_bands`).
    disability_lookback_months : int, default 60
        Window of the disability proxy (:func:`disability_proxy`).

    Returns
    -------
    DataFrame
        ``person_id``, ``as_of``, ``score``, ``label`` (bool), the attributes and ``age_band``.

    Raises
    ------
    ValidationError
        The horizon after ``as_of`` is not observed in the spells.
    """
    from . import _time
    from .errors import ValidationError
    from .model import score
    from .outcomes import compute_outcome
    from .outcomes import observed_until as _observed_until
    from .spells import as_of_day, point_in_time
    from .view import Definitions, View

    t = as_of_day(as_of)
    horizon = int(model.horizon_months)
    last = _observed_until(spells) if observed_until is None else as_of_day(observed_until)
    h_end = int(_time.add_months(t, horizon))
    if h_end > last:
        latest = _time.to_date(_time.add_months(last, -horizon))
        raise ValidationError(
            f"as-of {_time.to_date(t)}: the {horizon}-month horizon ends on {_time.to_date(h_end)}, after "
            f"the last observed day of the spells ({_time.to_date(last)}); the outcomes are not known yet. "
            f"Choose an as-of date on or before {latest}.")
    ft = getattr(model, "features", None)
    gap = int(getattr(ft, "merge_gap_days", 0) or 0)
    # one view at T serves the scores and the attributes (its timeline, and the codes of the scored)
    view = View.at(spells, t, Definitions.of_features(ft) if ft is not None else Definitions(merge_gap_days=gap))
    sc = score(model, spells, as_of=t, interventions=interventions, view=view)
    pairs = pd.DataFrame({"person_id": sc["person_id"].astype("str").to_numpy(),
                          "as_of": np.full(len(sc), t, dtype=np.int32)})
    lab = compute_outcome(spells, outcome=model.outcome, horizon_months=horizon, pairs=pairs,
                          observed_until=last, merge_gap_days=gap)
    out = pd.DataFrame({
        "person_id": pairs["person_id"].to_numpy(),
        "as_of": pd.Series(_time.from_days(pairs["as_of"].to_numpy())).astype("datetime64[s]"),
        "score": sc["risk"].to_numpy(dtype=np.float64),
        "label": lab["outcome"].to_numpy(dtype=bool),
    })
    wanted = list(attributes) if attributes is not None else ["sex", "nationality_group", "birth_year",
                                                               "disability", "canton"]
    tl = view.timeline
    codes = tl.codes_of(out["person_id"])
    if (codes < 0).any():  # scored people have a spell open at T, so they are in the view
        raise AssertionError("labelled_period: a scored person is missing from the point-in-time view")
    others = [c for c in wanted if c not in tl.persons.columns and c in spells.columns]
    latest_rows = None
    if others:
        view = point_in_time(spells, t)
        latest_rows = (view.assign(person_id=view["person_id"].astype("str"))
                       .sort_values(["person_id", "start_date"], kind="mergesort")
                       .groupby("person_id")[others].last())
    for c in wanted:
        if c == "disability" and c not in tl.persons.columns:
            out[c] = disability_proxy(tl, t, lookback_months=disability_lookback_months)[codes]
        elif c in tl.persons.columns:  # taken by code (a categorical stays one)
            out[c] = tl.persons[c].take(codes).to_numpy() if len(tl.persons) else np.full(len(out), None)
        elif latest_rows is not None and c in latest_rows.columns:
            out[c] = latest_rows[c].reindex(out["person_id"]).to_numpy()
        else:
            out[c] = None
    if "birth_year" in out.columns:
        out["age_band"] = age_bands(out["birth_year"], _time.to_date(t), edges=age_band_edges)
    logger.info("labelled period at %s: %d persons scored, %d with the outcome %s within %d months",
                _time.to_date(t), len(out), int(out["label"].sum()), model.outcome, horizon)
    return out


# --------------------------------------------------------------------------- groups
@dataclass
class _Set:
    """One attribute (or intersection) and the group of every data row."""

    name: str
    columns: tuple[str, ...]
    codes: np.ndarray
    labels: list[str]
    values: list[tuple[str, ...]]
    offset: int = 0


#: More groups than this in one attribute: probably a number (an age, a score) to be put into bands first.
MANY_GROUPS = 50


def _one_way(col: pd.Series, name: str = "") -> tuple[np.ndarray, list[str]]:
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in col.cat.categories]
        _refuse_same_text(cats, name)
        raw = col.cat.codes.to_numpy().astype(np.int64)
        order = cats + [MISSING]
        codes = np.where(raw < 0, len(cats), raw)
    else:
        raw, uniq = pd.factorize(col, use_na_sentinel=True)
        names = [str(u) for u in uniq]
        _refuse_same_text(names, name)
        order = sorted(set(names)) + [MISSING]
        pos = {v: i for i, v in enumerate(order)}
        lookup = np.array([pos[v] for v in names] + [len(order) - 1], dtype=np.int64)  # -1: missing
        codes = lookup[raw]
    present = np.bincount(codes, minlength=len(order)) > 0
    if int(present[:-1].sum()) > MANY_GROUPS:
        warnings.warn(f"group column {name!r} holds {int(present[:-1].sum()):,} different values: if it is a "
                      "number (an age, an income), put it into bands first (as age_band); every group is audited "
                      "on its own and most will be too small to judge", stacklevel=4)
    remap = np.cumsum(present) - 1
    return remap[codes].astype(np.int64), [v for v, p in zip(order, present, strict=True) if p]


def _refuse_same_text(values: list[str], name: str) -> None:
    """Values of one attribute that read the same are one group in every table: 1 and "1", or a value
    written like the label of missing values. Refused, naming the column and the text."""
    counts = Counter(values)
    same = sorted({v for v, n in counts.items() if n > 1} | ({MISSING} & counts.keys()))
    if same:
        shown = ", ".join(_shown(v) for v in same[:5])
        raise ValidationError(f"group column {name!r}: different values read the same ({shown}): the number 1 and "
                              f"the text '1', or a value written {MISSING!r}, the label of missing values; give "
                              "the column one type (all text or all numbers) and leave missing values empty")


def _build_sets(data: pd.DataFrame, groups: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[_Set]:
    n = len(data)
    sets = [_Set(OVERALL, (), np.zeros(n, dtype=np.int64), [ALL], [()])]
    one: dict[str, _Set] = {}
    for g in groups:
        codes, labels = _one_way(data[g], g)
        one[g] = _Set(g, (g,), codes, labels, [(lb,) for lb in labels])
        sets.append(one[g])
    for a, b in pairs:
        sa, sb = one[a], one[b]
        key = sa.codes * len(sb.labels) + sb.codes
        uniq, inv = np.unique(key, return_inverse=True)
        vals: list[tuple[str, ...]] = [(sa.labels[k // len(sb.labels)], sb.labels[k % len(sb.labels)])
                                       for k in uniq.tolist()]
        sets.append(_Set(f"{a}{SEP}{b}", (a, b), inv.astype(np.int64), [SEP.join(v) for v in vals], vals))
    off = 0
    for s in sets:
        s.offset = off
        off += len(s.labels)
    return sets


@dataclass
class _Plan:
    """Everything that does not change between bootstrap replicates.

    A replicate only reweighs the rows, and rows alike in what a statistic
    reads are interchangeable, so the rows are pooled into cells once and a
    replicate weighs the cells: one sparse product per pooling, each with one
    entry per row.

    - Counts (n, positives, flagged, true positives): rows of the same group
      in every set, label and flag (a few thousand cells); the score sum
      takes the same cells weighted by the score.
    - The ROC AUC needs, per group, the negatives below and tied with each
      positive's score: per set, rows of one group, score and label
      (isotonic calibration leaves about a thousand distinct risks among a
      million people), ordered by group and score.
    """

    pool: Any  # sparse (n rows x cells): each row's cell of the counts
    pool_score: Any  # the same, holding the row's score
    members: Any  # sparse (cells x R): the group rows each cell belongs to
    cell_y: np.ndarray
    cell_f: np.ndarray
    auc: list[tuple[int, int, Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray, Any]]
    n_rows: int


def _one_per_row(cell: np.ndarray, n_cells: int, data: np.ndarray | None = None):
    """Sparse (rows x cells) matrix with one entry per row, built directly in CSR form (no sorting)."""
    from scipy import sparse

    n = len(cell)
    values = np.ones(n) if data is None else np.asarray(data, dtype=np.float64)
    return sparse.csr_matrix((values, cell.astype(np.int64), np.arange(n + 1)), shape=(n, n_cells))


def _cells(keys: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's cell (rows with equal keys share one; cells in key order) and a row of each cell."""
    key = np.zeros(n, dtype=np.int64)
    for k in keys:
        width = int(k.max()) + 1 if len(k) else 1
        if int(key.max(initial=0)) >= (1 << 62) // width:  # keep the combined key in 64 bits
            key = np.unique(key, return_inverse=True)[1].ravel().astype(np.int64)
        key = key * width + k
    _, first, cell = np.unique(key, return_index=True, return_inverse=True)
    return cell.ravel().astype(np.int64), first


def _plan(sets: list[_Set], y: np.ndarray, f: np.ndarray, s: np.ndarray) -> _Plan:
    from scipy import sparse

    n = len(y)
    R = sum(len(st.labels) for st in sets)
    yi, fi, sf = y.astype(np.int64), f.astype(np.int64), s.astype(np.float64)
    cell, first = _cells([st.codes for st in sets] + [yi, fi], n)
    C = len(first)
    members = sparse.csr_matrix(
        (np.ones(C * len(sets)), (np.tile(np.arange(C), len(sets)),
                                  np.concatenate([st.offset + st.codes[first] for st in sets]))), shape=(C, R))
    rank = np.unique(sf, return_inverse=True)[1].ravel().astype(np.int64) if n else np.zeros(0, dtype=np.int64)
    S = int(rank.max()) + 1 if n else 1
    auc = []
    for st in sets:
        G = len(st.labels)
        # cells in (group, score, label) order: the key's order
        keys, a_cell = np.unique((st.codes * S + rank) * 2 + yi, return_inverse=True)
        K = len(keys)
        c_group, c_rank, c_y = keys // 2 // S, keys // 2 % S, (keys % 2).astype(np.float64)
        pos = np.arange(K)
        new_group = np.r_[True, c_group[1:] != c_group[:-1]] if K else np.zeros(0, dtype=bool)
        new_block = new_group | np.r_[True, c_rank[1:] != c_rank[:-1]] if K else np.zeros(0, dtype=bool)
        block_start = np.maximum.accumulate(np.where(new_block, pos, 0)) if K else pos
        group_start = np.maximum.accumulate(np.where(new_group, pos, 0)) if K else pos
        starts = np.flatnonzero(new_block)
        block_end = np.repeat(np.r_[starts[1:], K] - 1, np.diff(np.r_[starts, K])) if K else pos
        agg = sparse.csr_matrix((np.ones(K), (pos, c_group)), shape=(K, G))
        auc.append((st.offset, G, _one_per_row(a_cell.ravel(), K), c_y, block_start, block_end, group_start, agg))
    return _Plan(pool=_one_per_row(cell, C), pool_score=_one_per_row(cell, C, sf), members=members,
                 cell_y=yi[first].astype(np.float64), cell_f=fi[first].astype(np.float64), auc=auc, n_rows=R)


def _weighted_stats(plan: _Plan, W: np.ndarray, buffer: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Weighted sums per group row for a block of weight vectors ``W`` (B x n): each (B x R).

    ``buffer`` (n x B), when given in that shape, receives ``W``'s transpose instead of a new array.
    """
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    B, R = W.shape[0], plan.n_rows
    if buffer is not None and buffer.shape == (W.shape[1], B) and buffer.flags.c_contiguous:
        WT = buffer
        np.copyto(WT, W.T)
    else:
        WT = np.ascontiguousarray(W.T)
    Wc = np.asarray(plan.pool.T @ WT).T  # (B x cells): the weight of each cell
    M = plan.members

    def per_group(cell_values: np.ndarray) -> np.ndarray:
        return np.asarray((M.T @ cell_values.T).T).reshape(B, R)

    out = {"n": per_group(Wc), "pos": per_group(Wc * plan.cell_y), "flagged": per_group(Wc * plan.cell_f),
           "tp": per_group(Wc * (plan.cell_y * plan.cell_f)),
           "score_sum": per_group(np.asarray(plan.pool_score.T @ WT).T)}
    auc_num = np.zeros((B, R))
    for offset, G, pool, yc, bstart, bend, gstart, grp in plan.auc:
        if not len(yc):
            continue
        Wa = np.asarray(pool.T @ WT).T  # (B x cells): the weight of each cell
        negw = Wa * (1.0 - yc)
        cs = np.cumsum(negw, axis=1)
        ex = cs - negw  # exclusive cumulative sum
        lower = ex[:, bstart] - ex[:, gstart]  # negatives with a strictly lower score in the group
        equal = cs[:, bend] - ex[:, bstart]  # negatives tied with the cell's score
        contrib = Wa * yc * (lower + 0.5 * equal)
        auc_num[:, offset:offset + G] = np.asarray((grp.T @ contrib.T).T).reshape(B, G)
    out["auc_num"] = auc_num
    return out


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b where b > 0, else NaN; a tiny (subnormal) b gives inf, as in Python, without a warning."""
    out = np.full(np.broadcast(a, b).shape, np.nan)
    with np.errstate(over="ignore"):
        np.divide(a, b, out=out, where=b > 0)
    return out


def _metrics(st: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n, pos, flagged, tp = st["n"], st["pos"], st["flagged"], st["tp"]
    neg = n - pos
    fp = flagged - tp
    mean_pred = _div(st["score_sum"], n)
    observed = _div(pos, n)
    return {
        "flag_rate": _div(flagged, n),
        "precision": _div(tp, flagged),
        "recall": _div(tp, pos),
        "fpr": _div(fp, neg),
        "mean_predicted": mean_pred,
        "observed_rate": observed,
        "calibration_gap": mean_pred - observed,
        "roc_auc": _div(st["auc_num"], pos * neg),
    }


def _protect_rows(cells: np.ndarray, row_lines, group_lines, k: int) -> np.ndarray:
    """Status (0 published, 1 primary, 2 secondary) of every cell of a (rows x cells) count table.

    ``row_lines`` are (member columns, total column) applied within every row;
    ``group_lines`` are (member rows, total row or -1 when known elsewhere)
    applied to every column. The work is :func:`iizrisk.suppression.protect_cells`.
    """
    R, C = cells.shape
    lines: list[tuple[np.ndarray, int]] = []
    for r in range(R):
        for members, total in row_lines:
            lines.append((r * C + np.asarray(members), r * C + total))
    for members, total in group_lines:
        members = np.asarray(members, dtype=np.int64)
        for c in range(C):
            lines.append((members * C + c, total * C + c if total >= 0 else -1))
    flat = np.asarray(cells, dtype=np.int64).ravel()
    if k < 1:
        return np.zeros((R, C), dtype=np.int8)
    return protect_cells(flat, flat, lines, k=k).reshape(R, C)


def _group_lines(sets: list[_Set]) -> list[tuple[np.ndarray, int]]:
    """Lines across group rows: the groups of an attribute add up to the overall row, and the
    cells of an intersection to the groups of each of its attributes."""
    by_col = {st.columns[0]: st for st in sets if len(st.columns) == 1}
    lines = []
    for st in sets:
        if len(st.columns) == 1:
            lines.append((st.offset + np.arange(len(st.labels)), 0))
        elif len(st.columns) == 2:
            for j, col in enumerate(st.columns):
                parent = by_col[col]
                pos = {lb: i for i, lb in enumerate(parent.labels)}
                key = np.array([pos[v[j]] for v in st.values])
                for pk in np.unique(key):
                    lines.append((st.offset + np.flatnonzero(key == pk), parent.offset + int(pk)))
    return lines


# --------------------------------------------------------------------------- words and numbers
#: How a hidden (suppressed) or unknown value is shown in texts, HTML and the model card.
NA_MARK = "·"
#: Columns of the displayed tables (text, HTML, model card): the per-group summary and the judged disparities.
DISPLAY_COLUMNS: dict[str, tuple[str, ...]] = {
    "summary": ("attribute", "group", "n", "n_flagged", *METRICS, "gap_flag"),
    "gaps": ("attribute", "group", "reference", "metric", "ratio", "ratio_lo", "ratio_hi", "difference",
             "difference_lo", "difference_hi", "verdict", "n_needed"),
}


def _fmt(v: Any, lang: str = "en", decimals: int = 3) -> str:
    """One displayed value: whole numbers with the language's Swiss thousands separator, ``True`` as the
    language's yes, hidden or missing values as :data:`NA_MARK`."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return NA_MARK
    if isinstance(v, bool | np.bool_):
        return text("table.yes", lang) if v else ""
    if isinstance(v, float | np.floating):
        if float(v).is_integer() and abs(float(v)) >= 1:
            return swiss_number(int(v), lang)
        shown = f"{float(v):.{decimals}f}"
        return shown[1:] if shown.startswith("-") and not shown.strip("-0.") else shown  # never "-0.000"
    if isinstance(v, int | np.integer):
        return swiss_number(v, lang)
    return str(v)


def _word(lang: str, table: str, code: Any) -> str:
    """A code (column, fact, attribute, verdict...) in the words of the catalogue's ``card.<table>``; the code
    when none is catalogued."""
    return load_locale(lang)["card"][table].get(str(code), str(code))


def _attribute(lang: str, code: Any) -> str:
    """An audit attribute in words; an intersection ``disability:canton`` part by part."""
    return ":".join(_word(lang, "attributes", part) for part in str(code).split(SEP))


def _group(lang: str, code: Any) -> str:
    """An audit group in words where the catalogue names it (``all``, ``no_IV``, the nationality groups
    ``THIRD``...); other codes (``F``, ``ZH``, ``50-64``) stay."""
    loc = load_locale(lang)
    names = {**loc["nationality_group"], **loc["card"]["groups"]}
    return ":".join(names.get(part, part) for part in str(code).split(SEP))


#: The colour of each verdict's points in the plots and their legend (:func:`verdict_legend`): outside the rule
#: red, cannot tell at this sample size ochre, within the rule blue, not judged (no bound on the metric, or no
#: interval) grey.
VERDICT_COLOURS: dict[str, str] = {"exceeds": "#d64545", "cannot_tell": "#d4a72c", "within": "#3b6ea8",
                                   "not_judged": "#8c959f"}


def verdict_legend(fig, verdicts, language: str = "en"):
    """A legend above ``fig``'s panels naming the colour of each verdict among ``verdicts`` (the verdicts of the
    points drawn, in :data:`VERDICTS`' order) in the words of ``language``; None when no point is drawn.

    The figure needs a constrained layout (``Figure(layout="constrained")``): the legend is placed outside
    the panels, above them.
    """
    from matplotlib.lines import Line2D

    present = set(verdicts)
    shown = [v for v in VERDICTS if v in present]
    if not shown:
        return None
    handles = [Line2D([], [], ls="none", marker="o", color=VERDICT_COLOURS[v], label=_word(language, "verdicts", v))
               for v in shown]
    return fig.legend(handles=handles, loc="outside upper center", ncol=len(shown), frameon=False,
                      fontsize="small", handletextpad=0.3, columnspacing=1.2)


#: Decimals of the audit's rates, gaps, ratios and risk bounds in the tables a person reads (Parquet keeps every
#: digit): a rate to a tenth of a percent, a ratio to a hundredth, a calibration class's bounds to 0.01 %.
_DECIMALS: dict[str, int] = {
    **dict.fromkeys(("flag_rate", "precision", "recall", "fpr", "mean_predicted", "observed_rate", "calibration_gap",
                     "roc_auc", "value", "reference_value", "difference", "difference_lo", "difference_hi",
                     "bound_lo", "bound_hi"), 3),
    **dict.fromkeys(("ratio", "ratio_lo", "ratio_hi"), 2), **dict.fromkeys(("risk_from", "risk_to"), 4)}

#: How each displayed column's codes become words.
_IN_WORDS = {"attribute": _attribute, "group": _group, "reference": _group,
             "metric": lambda lang, c: _word(lang, "columns", c), "verdict": lambda lang, c: _word(lang, "verdicts", c)}


def _in_words(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """``frame`` with its code columns (attribute, group, reference, metric, verdict) in words: each distinct
    code is looked up once."""
    out = frame.copy()
    for c in out.columns.intersection(list(_IN_WORDS)):
        codes = pd.unique(out[c].astype(object))
        out[c] = out[c].astype(object).map(dict(zip(codes, [_IN_WORDS[c](lang, x) for x in codes], strict=True)))
    return out


def _html_table(header: list[str], rows: list[list[Any]], flag_col: int | None = None, lang: str = "en",
                decimals: int = 3) -> str:
    """An HTML table of displayed values (:func:`_fmt`); rows whose ``flag_col`` is true get ``class='flag'``.

    A column whose values are all numbers (missing ones aside, at least one given) is right-aligned.
    """
    from ._html import table

    def number(x) -> bool:
        return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool | np.bool_)

    def missing(x) -> bool:
        return x is None or (number(x) and bool(np.isnan(x)))

    words = [i for i in range(len(header))
             if not rows or not all(number(row[i]) or missing(row[i]) for row in rows)
             or all(missing(row[i]) for row in rows)]
    return table(header, [[_fmt(x, lang, decimals) for x in row] for row in rows], numbers=True,
                 text_columns=words, flagged=[flag_col is not None and bool(row[flag_col]) for row in rows])


def _text_table(header: list[str], rows: list[list[Any]], lang: str = "en", decimals: int = 3) -> str:
    """A plain-text table of displayed values (:func:`_fmt`), columns aligned."""
    cells = pd.DataFrame([[_fmt(x, lang, decimals) for x in row] for row in rows], columns=range(len(header)))
    return cells.set_axis(header, axis=1).to_string(index=False)


# --------------------------------------------------------------------------- checks of the inputs
def _true_false(col: pd.Series, name: str, what: str) -> np.ndarray:
    """A column of true/false values (bool, nullable boolean, or numbers that are all 0 or 1) as bools.

    Text ("no", "False"), other numbers (-1, 2, 0.5) would all read as true: they are refused naming the
    column, without its values."""
    kind = pd.api.types.infer_dtype(col, skipna=True)
    if kind == "boolean" or pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype=bool)
    if kind in ("integer", "floating", "mixed-integer-float", "decimal", "empty") and len(col):
        v = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        other = int((~((v == 0) | (v == 1))).sum())
        if not other:
            return v == 1
        raise ValidationError(f"data: column {name!r} ({what}) must hold true/false or 0/1; {other} value(s) "
                              f"are other numbers (dtype {col.dtype}). Convert it, e.g. data[{name!r}] = "
                              f"data[{name!r}] == <the value that means yes>")
    raise ValidationError(f"data: column {name!r} ({what}) must hold true/false or 0/1, not {kind} values "
                          f"(dtype {col.dtype}). Convert it, e.g. data[{name!r}] = data[{name!r}] == "
                          "<the value that means yes>")


# --------------------------------------------------------------------------- the audit
class FairnessAudit(ResultMixin):
    """Per-group metrics of a scored and labelled period, with gaps, intervals and suppression.

    Parameters
    ----------
    groups : list of str, optional
        Attribute columns to audit; default the columns of :data:`GROUP_COLUMNS`
        present in the data (sex, nationality group, age band, canton).
    intersections : "pairs", list of (str, str) or None, default "pairs"
        Intersections to audit: every pair of ``groups``, the given pairs, or none.
        Intersection rows whose size is suppressed are left out.
    capacity : int or float, optional
        People flagged per as-of date: the ``capacity`` highest scores (an int),
        or that share of the people scored (a float between 0 and 1). Ties are
        broken at random with ``random_state``. Required unless ``flagged_column``
        is given.
    score_column, label_column : str, default "score", "label"
        Calibrated risk (0..1) and the observed outcome (bool).
    flagged_column : str, optional
        A bool column saying who was flagged (e.g. on a worklist) instead of a capacity.
    reference : dict, optional
        Reference group per attribute (``{"sex": "M"}``); default the largest
        group. An intersection's reference is the cell of its attributes'
        references when present, else its largest cell.
    min_cell_size : int, default 5
        Cells with fewer people are suppressed (``[privacy] min_cell_size``);
        0 switches suppression off (internal use only: such tables must not leave the system).
    rule : FairnessRule, optional
        When a disparity exceeds (:class:`FairnessRule`); default the four-fifths rule on
        flag-rate ratios and a calibration-gap bound of 0.05
        (``FairnessRule.from_settings(settings)`` for a deployment's ``[privacy]`` rule).
    max_gap : float, optional
        The former rule, kept for existing callers: an absolute difference bound on every
        compared metric (:meth:`FairnessRule.differences_only`). Give ``rule`` or ``max_gap``, not both.
    gap_metrics : sequence of str, default :data:`GAP_METRICS`
        Metrics compared with the reference (the rule's metrics are always compared).
    n_bootstrap : int, default 500
        Bootstrap replicates for the confidence intervals (0: no intervals).
    confidence : float, default 0.95
    calibration_bins : int, default 5
        Quantile bins of the risk for the calibration table and plot.
    random_state : int, default 0
    cluster_column : str or None, default "person_id"
        The bootstrap draws these units, not rows: the rows of one person at
        several as-of dates are resampled together (they are not independent).
        Ignored when the data lack the column; None resamples rows.

    Attributes
    ----------
    summary : DataFrame
        One row per group (``overall`` first): ``attribute``, ``group``, ``reference``,
        ``is_reference``, ``n``, ``n_positive``, ``n_flagged``, the :data:`METRICS`,
        ``gap_flag`` and ``status`` (``published``, ``primary`` or ``secondary``
        suppression of the group's size). Suppressed values are ``<NA>``.
    gaps : DataFrame
        One row per (group, metric) against the reference: ``value``,
        ``reference_value``, ``difference`` (with ``difference_lo``/``_hi``),
        ``ratio`` (with ``ratio_lo``/``_hi``), ``significant`` (the interval of the
        difference excludes 0), ``rule`` (``ratio``, ``difference``, both joined by
        ``+``, or empty), ``bound_lo``/``bound_hi`` (of the first rule), ``verdict``
        (one of :data:`VERDICTS`), ``n_needed`` (the group size at which the interval
        would decide, for ``cannot_tell``) and ``exceeds`` (``verdict == "exceeds"``).
    calibration : DataFrame
        Per one-way group and risk bin: ``n``, ``n_positive``, ``mean_predicted``,
        ``observed_rate`` and ``status``. A bin's values are hidden together (``<NA>``)
        when any of its counts (people, positives, negatives) is: ``status`` is
        ``primary`` when one of them holds fewer than ``min_cell_size`` people,
        ``secondary`` when one is hidden to protect another cell, else ``published``.
    capacity_ : int
        People flagged.
    flagged_ : ndarray of bool
        Who was flagged, aligned with the rows of the data (stays in memory, never written).
    n_ : int
        People audited.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> d = pd.DataFrame({"score": rng.random(400), "sex": rng.choice(["F", "M"], 400)})
    >>> d["label"] = rng.random(400) < d["score"]
    >>> a = FairnessAudit(groups=["sex"], capacity=0.2, n_bootstrap=40).fit(d)
    >>> a.capacity_, list(a.gaps["metric"][:2])
    (80, ['flag_rate', 'precision'])
    """

    # set after fit by audit_model and the ``audit`` command (read by the model card; absent otherwise)
    as_of_: str | None
    outcome_: str | None
    horizon_months_: int | None

    def __init__(self, *, groups: Sequence[str] | None = None, intersections="pairs",
                 capacity: int | float | None = None, score_column: str = "score",
                 label_column: str = "label", flagged_column: str | None = None,
                 reference: Mapping[str, str] | None = None, min_cell_size: int = 5,
                 rule: FairnessRule | None = None, max_gap: float | None = None,
                 gap_metrics: Sequence[str] = GAP_METRICS, n_bootstrap: int = 500,
                 confidence: float = 0.95, calibration_bins: int = 5, random_state: int = 0,
                 cluster_column: str | None = "person_id"):
        self.groups = groups
        self.intersections = intersections
        self.capacity = capacity
        self.score_column = score_column
        self.label_column = label_column
        self.flagged_column = flagged_column
        self.reference = reference
        self.min_cell_size = min_cell_size
        self.rule = rule
        self.max_gap = max_gap
        self.gap_metrics = gap_metrics
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.calibration_bins = calibration_bins
        self.random_state = random_state
        self.cluster_column = cluster_column

    # ------------------------------------------------------------------ checks
    def _check(self, data: pd.DataFrame) -> tuple[list[str], list[tuple[str, str]]]:
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a DataFrame, got {type(data).__name__}")
        if not len(data):
            raise ValidationError("data has no rows: audit a scored and labelled period (labelled_period())")
        if not data.columns.is_unique:
            doubled = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
            raise ValidationError(f"data: column name(s) {doubled} appear more than once; keep one of each")
        need = [self.score_column, self.label_column] + ([self.flagged_column] if self.flagged_column else [])
        missing = [c for c in need if c not in data.columns]
        if missing:
            raise ValueError(f"data: column(s) {missing} missing; found {list(data.columns)}. "
                             "Build the data with labelled_period() or name the columns.")
        if self.groups is None:
            groups = [g for g in GROUP_COLUMNS if g in data.columns]
        else:
            groups = [self.groups] if isinstance(self.groups, str) else list(self.groups)  # one name: one column
            absent = [g for g in groups if g not in data.columns]
            if absent:
                raise ValueError(f"group column(s) {absent} not in the data; found {list(data.columns)}")
        if len(set(groups)) != len(groups):
            raise ValueError(f"groups repeat a column: {groups}")
        if self.intersections == "pairs":
            pairs = list(combinations(groups, 2))
        elif self.intersections is None:
            pairs = []
        elif isinstance(self.intersections, str):
            raise ConfigError(f"intersections must be 'pairs', None or a list of (column, column) pairs; "
                              f"got {_shown(repr(self.intersections))}")
        else:
            pairs = [tuple(p) for p in self.intersections]
            bad = [p for p in pairs if len(p) != 2 or p[0] not in groups or p[1] not in groups or p[0] == p[1]]
            if bad:
                raise ValueError(f"intersections {bad}: give pairs of two different audited groups {groups}")
        if self.rule is not None and self.max_gap is not None:
            raise ValueError("give rule or max_gap (the former difference bound), not both")
        if isinstance(self.gap_metrics, str):
            raise ConfigError(f"gap_metrics must be a list of metric names, e.g. [{_shown(repr(self.gap_metrics))}]; got "
                              "one text")
        unknown = [m for m in self.gap_metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"gap_metrics {unknown} unknown; choose from {METRICS}")
        if not (is_real(self.confidence) and 0 < self.confidence < 1):
            raise ConfigError(f"confidence must be a number between 0 and 1, e.g. 0.95; got {_shown(repr(self.confidence))}")
        whole_number(self.n_bootstrap, "n_bootstrap", 0, example="500 (0: no intervals)")
        check_min_cell_size(self.min_cell_size)
        whole_number(self.calibration_bins, "calibration_bins", 1, example="5")
        check_seed(self.random_state)
        if self.reference is not None and not isinstance(self.reference, Mapping):
            raise ConfigError("reference must be a dict of the reference group per attribute, e.g. {'sex': 'M'}; "
                              f"got {type(self.reference).__name__}")
        if self.cluster_column is not None and self.cluster_column in data.columns \
                and data[self.cluster_column].isna().any():
            raise ValidationError(f"data: column {self.cluster_column!r} (cluster_column, the bootstrap's unit) has "
                                  f"{int(data[self.cluster_column].isna().sum())} missing value(s), which would be "
                                  "resampled as one person; fill them, or pass cluster_column=None to resample rows")
        return groups, pairs

    def _flags(self, data: pd.DataFrame, s: np.ndarray) -> np.ndarray:
        if self.flagged_column is not None:
            f = data[self.flagged_column]
            if f.isna().any():
                raise ValueError(f"{self.flagged_column}: {int(f.isna().sum())} missing value(s)")
            return _true_false(f, self.flagged_column, "flagged_column, who was flagged")
        cap = self.capacity
        if cap is None:
            raise ValueError("give capacity (people flagged per as-of date) or flagged_column")
        if not is_real(cap) or cap <= 0:
            raise ValueError(f"capacity must be a positive number of people or a share in (0, 1), got {_shown(repr(cap))}")
        n = len(s)
        dates = (pd.factorize(data["as_of"])[0] if "as_of" in data.columns else np.zeros(n, dtype=np.int64))
        tie = np.random.default_rng(self.random_state).random(n)
        order = np.lexsort((tie, -s, dates))
        d = dates[order]
        first = np.r_[0, np.flatnonzero(d[1:] != d[:-1]) + 1] if n else np.zeros(0, dtype=np.int64)
        sizes = np.diff(np.r_[first, n])
        rank = np.arange(n) - np.repeat(first, sizes)
        if isinstance(cap, float | np.floating) and cap < 1:
            k = np.ceil(cap * sizes - 1e-9).astype(np.int64)
        elif isinstance(cap, float | np.floating) and cap != int(cap):
            raise ValueError(f"capacity {cap}: a share must be below 1, a number of people whole")
        else:
            k = np.full(len(sizes), int(cap), dtype=np.int64)
        out = np.zeros(n, dtype=bool)
        out[order] = rank < np.repeat(k, sizes)
        return out

    # ------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame) -> FairnessAudit:
        """Compute the audit tables from one DataFrame (see :func:`labelled_period`).

        Parameters
        ----------
        data : DataFrame
            One row per person (and as-of date): the score, the label, the group
            columns, optionally ``as_of`` (capacity applies per date) and a flag column.

        Returns
        -------
        self

        Warns
        -----
        FairnessGapWarning
            When a published difference from the reference exceeds ``max_gap``.
        """
        groups, pairs = self._check(data)
        s = pd.to_numeric(data[self.score_column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(s).any() or ((s < 0) | (s > 1)).any():
            raise ValueError(f"{self.score_column}: scores must be probabilities in [0, 1] without gaps")
        lab = data[self.label_column]
        if lab.isna().any():
            raise ValueError(f"{self.label_column}: {int(lab.isna().sum())} missing label(s): audit only a "
                             "period whose horizon is observed")
        y = _true_false(lab, self.label_column, "label_column, whether the outcome happened")
        f = self._flags(data, s)
        self.n_ = int(len(data))
        self.flagged_ = f
        self.capacity_ = int(f.sum())
        self.groups_ = groups
        self.intersections_ = pairs
        sets = _build_sets(data, groups, pairs)
        self._sets = sets
        plan = _plan(sets, y, f, s)
        point = _weighted_stats(plan, np.ones((1, len(y))))
        pm = {k: v[0] for k, v in _metrics(point).items()}
        counts = {k: np.rint(v[0]).astype(np.int64) for k, v in point.items() if k != "score_sum" and k != "auc_num"}
        ref = self._references(sets, counts["n"])
        rule = self.rule_ = self._rule()
        gm = list(self.gap_metrics) + [m for m in rule.metrics if m not in self.gap_metrics]

        # bootstrap: differences and ratios against the reference, per replicate
        B = int(self.n_bootstrap)
        R = plan.n_rows
        has_ref = ref >= 0
        diffs = np.full((B, R, len(gm)), np.nan)
        ratios = np.full((B, R, len(gm)), np.nan)
        if B and len(y):
            rng = np.random.default_rng(self.random_state)
            unit = self._units(data)
            n = int(unit.max()) + 1  # units drawn with replacement; a row weighs what its unit drew
            one_row_each = len(unit) == n and bool((unit == np.arange(n)).all())
            # one weight matrix for every block, and each replicate's draws on their own: the same random
            # numbers as one (nb x n) draw per block, without allocating (and page-faulting) 2 x nb x n
            # numbers afresh for each block (at 941,000 people: 0.5 GB per block of 32)
            W_all = np.empty((min(_BLOCK, B), n), dtype=np.float64)
            WT_all = np.empty((len(unit), min(_BLOCK, B)), dtype=np.float64)  # its transpose, per row
            for b0 in range(0, B, _BLOCK):
                nb = min(_BLOCK, B - b0)
                W = W_all[:nb]
                for r in range(nb):  # a replicate's draws counted per unit
                    W[r] = np.bincount(rng.integers(0, n, size=n), minlength=n)
                mb = _metrics(_weighted_stats(plan, W if one_row_each else W[:, unit], buffer=WT_all))
                for j, m in enumerate(gm):
                    v = mb[m]
                    r_ = np.where(has_ref, ref, 0)
                    diffs[b0:b0 + nb, :, j] = np.where(has_ref, v - v[:, r_], np.nan)
                    ratios[b0:b0 + nb, :, j] = np.where(has_ref, _div(v, v[:, r_]), np.nan)
        lo_q, hi_q = (1 - self.confidence) / 2, 1 - (1 - self.confidence) / 2
        d_lo, d_hi = _percentiles(diffs, lo_q, hi_q)
        r_lo, r_hi = _percentiles(ratios, lo_q, hi_q)

        # suppression of every published number
        cells = np.column_stack([counts["tp"], counts["flagged"] - counts["tp"], counts["pos"] - counts["tp"],
                                 counts["n"] - counts["pos"] - counts["flagged"] + counts["tp"],
                                 counts["flagged"], counts["n"] - counts["flagged"], counts["pos"],
                                 counts["n"] - counts["pos"], counts["n"]])
        status = _protect_rows(cells, _ROW_LINES, _group_lines(sets), int(self.min_cell_size))
        hidden = {name: (status[:, list(dep)] != 0).any(axis=1) for name, dep in _DEPENDS.items()}
        self.cell_status_ = pd.DataFrame(_STATUS[status], columns=list(_CELLS))

        # tables
        rows = [(st.name, lb) for st in sets for lb in st.labels]
        summary = pd.DataFrame(rows, columns=["attribute", "group"])
        ref_label = np.array([summary["group"].iloc[r] if r >= 0 else None for r in ref], dtype=object)
        summary["reference"] = ref_label
        summary["is_reference"] = ref == np.arange(R)
        for name, key in (("n", "n"), ("n_positive", "pos"), ("n_flagged", "flagged")):
            col = pd.array(counts[key], dtype="Int64")
            col[hidden[name]] = pd.NA
            summary[name] = col
        for m in METRICS:
            col = pd.array(pm[m], dtype="Float64")
            col[hidden[m] | np.isnan(pm[m])] = pd.NA
            summary[m] = col
        # gaps: one row per (compared group, metric), in group order then metric order
        cmp_rows = np.flatnonzero(has_ref & (ref != np.arange(R)))
        J = len(gm)
        rr = np.repeat(cmp_rows, J)
        jj = np.tile(np.arange(J), len(cmp_rows))
        rf = ref[rr]
        val = np.array([pm[m] for m in gm]).T if J else np.zeros((R, 0))  # (R, J)
        hid = np.array([hidden[m] for m in gm]).T if J else np.zeros((R, 0), dtype=bool)
        hide = hid[rr, jj] | hid[rf, jj]
        v, rv = val[rr, jj], val[rf, jj]
        diff = v - rv
        no_ratio = np.array([m in _NO_RATIO for m in gm], dtype=bool)[jj]
        ratio = np.where(no_ratio, np.nan, _div(v, rv))
        judged = self._judge(rule, gm, jj, hide, counts["n"][rr].astype(np.float64),
                             {"ratio": (ratio, r_lo[rr, jj], r_hi[rr, jj]),
                              "difference": (diff, d_lo[rr, jj], d_hi[rr, jj])})
        exceeds = judged["verdict"] == "exceeds"
        exceeds_any = np.bincount(rr[exceeds], minlength=R) > 0
        gaps = pd.DataFrame({
            "attribute": summary["attribute"].to_numpy()[rr], "group": summary["group"].to_numpy()[rr],
            "reference": ref_label[rr], "metric": np.asarray(gm, dtype=object)[jj],
        })
        hide_r = hide | no_ratio
        for name, values, h in (("value", v, hide), ("reference_value", rv, hide), ("difference", diff, hide),
                                ("difference_lo", d_lo[rr, jj], hide), ("difference_hi", d_hi[rr, jj], hide),
                                ("ratio", ratio, hide_r), ("ratio_lo", r_lo[rr, jj], hide_r),
                                ("ratio_hi", r_hi[rr, jj], hide_r)):
            col = pd.array(np.where(np.isfinite(values), values, 0.0), dtype="Float64")
            col[h | ~np.isfinite(values)] = pd.NA
            gaps[name] = col
        lo_, hi_ = d_lo[rr, jj], d_hi[rr, jj]
        sig = pd.array((lo_ > 0) | (hi_ < 0), dtype="boolean")
        sig[hide | ~np.isfinite(lo_)] = pd.NA
        gaps["significant"] = sig
        gaps["rule"] = judged["rule"]
        for name in ("bound_lo", "bound_hi"):
            col = pd.array(np.nan_to_num(judged[name]), dtype="Float64")
            col[np.isnan(judged[name])] = pd.NA
            gaps[name] = col
        gaps["verdict"] = judged["verdict"]
        need = pd.array(np.nan_to_num(judged["n_needed"]).astype(np.int64), dtype="Int64")
        need[np.isnan(judged["n_needed"])] = pd.NA
        gaps["n_needed"] = need
        gaps["exceeds"] = exceeds
        summary["gap_flag"] = exceeds_any
        summary["status"] = _STATUS[status[:, N]]
        multi = np.array([len(st.columns) > 1 for st in sets for _ in st.labels], dtype=bool)
        keep = ~(multi & (status[:, N] != 0))
        self.summary = summary.loc[keep].reset_index(drop=True)
        self.gaps = gaps.loc[keep[rr]].reset_index(drop=True)
        self.calibration = self._calibration_table(sets, y, s)
        self._warn()
        return self

    def _rule(self) -> FairnessRule:
        if self.rule is not None:
            if not isinstance(self.rule, FairnessRule):
                raise TypeError(f"rule must be a FairnessRule, got {type(self.rule).__name__}")
            return self.rule
        if self.max_gap is not None:
            if not (is_real(self.max_gap) and self.max_gap > 0):
                raise ValueError(f"max_gap must be a number above 0, got {_shown(repr(self.max_gap))}")
            return FairnessRule.differences_only(float(self.max_gap), self.gap_metrics)
        return FairnessRule()

    @staticmethod
    def _judge(rule: FairnessRule, gm: list[str], jj: np.ndarray, hide: np.ndarray, n: np.ndarray,
               values: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
        """Verdict per gap row: the worst over the metric's bounds (exceeds, cannot tell, within)."""
        rank = {"exceeds": 0, "cannot_tell": 1, "within": 2, "not_judged": 3}
        m = len(jj)
        verdict = np.full(m, "not_judged", dtype=object)
        need = np.full(m, np.nan)
        kinds = np.full(m, "", dtype=object)
        b_lo, b_hi = np.full(m, np.nan), np.full(m, np.nan)
        for j, metric in enumerate(gm):
            every = np.flatnonzero(jj == j)  # the rule is shown on suppressed rows too; they are not judged
            rows = np.flatnonzero((jj == j) & ~hide)
            first = True
            for kind, lower, upper in rule.bounds(metric):
                est, lo, hi = (a[rows] for a in values[kind])
                v, nd = _judge(kind, lower, upper, est, lo, hi, n[rows])
                if first:
                    b_lo[every], b_hi[every], kinds[every] = lower, upper, kind
                    verdict[rows], need[rows] = v, nd
                    first = False
                    continue
                cur = np.array([rank[x] for x in verdict[rows]], dtype=np.int64)
                new = np.array([rank[x] for x in v], dtype=np.int64)
                better = np.where(new < cur, v, verdict[rows])
                verdict[rows] = better
                need[rows] = np.fmax(need[rows], nd)
                kinds[every] = kinds[every] + "+" + kind
        need[verdict != "cannot_tell"] = np.nan
        return {"verdict": verdict, "n_needed": need, "rule": kinds, "bound_lo": b_lo, "bound_hi": b_hi}

    def _units(self, data: pd.DataFrame) -> np.ndarray:
        """Bootstrap unit per row: the person's code (first appearance order), or the row."""
        col = self.cluster_column
        if col is None or col not in data.columns:
            return np.arange(len(data))
        codes = pd.factorize(data[col], use_na_sentinel=False)[0]
        return codes.astype(np.int64)

    def _references(self, sets: list[_Set], n: np.ndarray) -> np.ndarray:
        ref = np.full(sum(len(st.labels) for st in sets), -1, dtype=np.int64)
        chosen: dict[str, str] = {}
        given = dict(self.reference or {})
        unknown = sorted(set(given) - {st.name for st in sets if len(st.columns) == 1})
        if unknown:
            raise ValueError(f"reference given for {unknown}, which are not audited groups")
        for st in sets:
            if not st.columns:
                continue
            rows = st.offset + np.arange(len(st.labels))
            if len(st.columns) == 1:
                col = st.columns[0]
                if col in given:
                    if str(given[col]) not in st.labels:
                        raise ValueError(f"reference {given[col]!r} for {col!r} is not a group of the data "
                                         f"({', '.join(st.labels)})")
                    pick = st.labels.index(str(given[col]))
                else:
                    sizes = np.where(np.array(st.labels) == MISSING, -1, n[rows])
                    pick = int(np.argmax(sizes))
                chosen[col] = st.labels[pick]
            else:
                # a column without a chosen reference makes ``want`` shorter than every cell: no match
                want = tuple(chosen[c] for c in st.columns if c in chosen)
                if want in st.values:
                    pick = st.values.index(want)
                else:
                    sizes = np.where([MISSING in v for v in st.values], -1, n[rows])
                    pick = int(np.argmax(sizes))
            ref[rows] = st.offset + pick
        return ref

    def _calibration_table(self, sets: list[_Set], y: np.ndarray, s: np.ndarray) -> pd.DataFrame:
        nb = int(self.calibration_bins)
        edges = np.unique(np.quantile(s, np.linspace(0, 1, nb + 1)[1:-1])) if len(s) else np.array([])
        b = np.searchsorted(edges, s, side="right")
        nbins = len(edges) + 1
        one = [st for st in sets if len(st.columns) <= 1]
        R = sum(len(st.labels) for st in one)
        n_grid = np.zeros((R, nbins))
        pos_grid = np.zeros((R, nbins))
        ssum_grid = np.zeros((R, nbins))
        off = 0
        meta = []
        for st in one:
            G = len(st.labels)
            key = st.codes * nbins + b
            n_grid[off:off + G] = np.bincount(key, minlength=G * nbins).reshape(G, nbins)
            pos_grid[off:off + G] = np.bincount(key, weights=y.astype(np.float64),
                                                minlength=G * nbins).reshape(G, nbins)
            ssum_grid[off:off + G] = np.bincount(key, weights=s, minlength=G * nbins).reshape(G, nbins)
            meta += [(st.name, lb, off) for lb in st.labels]
            off += G
        n_cell, pos = n_grid.ravel().astype(np.int64), pos_grid.ravel().astype(np.int64)
        ssum = ssum_grid.ravel()
        cells = np.column_stack([pos, n_cell - pos, n_cell])
        lines = []
        # the bins of a group add up to its size (published in the summary: a known total)
        for r in range(R):
            lines.append((r * nbins + np.arange(nbins), -1))
        # per bin, the groups of an attribute add up to the overall row
        start = 1
        for st in one[1:]:
            G = len(st.labels)
            for j in range(nbins):
                lines.append(((start + np.arange(G)) * nbins + j, j))
            start += G
        status = _protect_rows(cells, [([0, 1], 2)], lines, int(self.min_cell_size))
        hide = (status != 0).any(axis=1)
        lower = np.r_[0.0, edges]
        upper = np.r_[edges, 1.0]
        out = pd.DataFrame({
            "attribute": np.repeat([m[0] for m in meta], nbins),
            "group": np.repeat([m[1] for m in meta], nbins),
            "bin": np.tile(np.arange(1, nbins + 1), R),
            "risk_from": np.tile(lower, R), "risk_to": np.tile(upper, R),
        })
        for name, vals in (("n", n_cell), ("n_positive", pos)):
            col = pd.array(vals, dtype="Int64")
            col[hide] = pd.NA
            out[name] = col
        for name, vals in (("mean_predicted", _div(ssum, n_cell.astype(np.float64))),
                           ("observed_rate", _div(pos.astype(np.float64), n_cell.astype(np.float64)))):
            col = pd.array(vals, dtype="Float64")
            col[hide | np.isnan(vals)] = pd.NA
            out[name] = col
        # the row's values are hidden together: primary when one of its counts is small, else secondary
        # when one is hidden to protect another cell, else published
        out["status"] = _STATUS[np.where((status == 1).any(axis=1), 1, status.max(axis=1))]
        return out[n_cell > 0].reset_index(drop=True)

    def _warn(self) -> None:
        flagged = self.gaps[self.gaps["exceeds"]]
        self.flagged_gaps_ = flagged.reset_index(drop=True)
        if not len(flagged):
            return
        shown = "; ".join(_describe_gap(r) for r in flagged.head(5).itertuples())
        more = f" and {len(flagged) - 5} more" if len(flagged) > 5 else ""
        warnings.warn(f"{len(flagged)} disparit(ies) beyond the fairness rule ({self.rule_text()}), "
                      f"confidence interval included: {shown}{more}. Review the model before use "
                      "(see the audit's gaps table).", FairnessGapWarning, stacklevel=3)

    def rule_text(self, language: str = "en") -> str:
        """The rule in one line of plain words (:meth:`FairnessRule.describe`); English in log messages."""
        rule = getattr(self, "rule_", None) or self._rule()
        return rule.describe(language)

    def verdict_counts(self) -> dict[str, int]:
        """Judged disparities per verdict (``exceeds``, ``cannot_tell``, ``within``)."""
        self._check_fitted()
        judged = self.gaps[self.gaps["verdict"] != "not_judged"]
        counts = judged["verdict"].value_counts()
        return {v: int(counts.get(v, 0)) for v in VERDICTS if v != "not_judged"}

    # ------------------------------------------------------------------ display
    def _check_fitted(self) -> None:
        if not hasattr(self, "summary"):
            raise AttributeError("FairnessAudit is not fitted: call fit(data) first")

    def headline(self, language: str = "en") -> str:
        """One line: people audited and flagged, suppression, the rule and the verdicts, in ``language``."""
        self._check_fitted()
        counts = {k: swiss_number(v, language) for k, v in self.verdict_counts().items()}
        head = text("audit.head", language, n=swiss_number(self.n_, language),
                    flagged=swiss_number(self.capacity_, language), k=self.min_cell_size, na=NA_MARK,
                    rule=self.rule_text(language))
        return f"{head}. {text('audit.verdicts', language, **counts)}."

    def display_rows(self, table: str = "summary", language: str = "en") -> tuple[list[str], list[list[Any]]]:
        """The columns (codes) and rows of a displayed table, codes in the words of ``language``.

        Parameters
        ----------
        table : {"summary", "gaps"}
            The per-group summary, or the disparities the rule judged exceeding or could not tell at this
            sample size (exceeding first), with ratios, differences, intervals and the group size needed.
        language : {"en", "de", "fr", "it"}

        Returns
        -------
        columns : list of str
            The codes of :data:`DISPLAY_COLUMNS` present (headers: ``card.columns`` of the catalogue).
        rows : list of list
            Values, numbers as numbers (``None`` when hidden), attributes, groups, metrics and verdicts in words.
        """
        self._check_fitted()
        if table == "summary":
            frame = self.summary
        elif table == "gaps":
            g = self.gaps
            frame = g[g["verdict"].isin(["exceeds", "cannot_tell"])].sort_values(
                "verdict", key=lambda v: v.map({"exceeds": 0, "cannot_tell": 1}), kind="stable")
        else:
            raise ValueError(f"table {table!r}: choose 'summary' or 'gaps'")
        cols = [c for c in DISPLAY_COLUMNS[table] if c in frame.columns]
        shown = _in_words(frame[cols], language)
        return cols, shown.astype(object).where(shown.notna(), None).values.tolist()

    def to_text(self, decimals: int = 3, *, language: str = "en") -> str:
        """The summary and the disparities that exceed the rule or cannot be told, as plain text in ``language``.

        Headers, attributes, groups and verdicts are the catalogue's words; whole numbers carry the
        language's Swiss thousands separator; hidden cells show as ``·``.
        """
        lines = [f"{text('audit.title', language)}{colon(language)} {self.headline(language)}"]
        for heading, cols, rows in self._shown(language):
            lines += [f"{heading}:"] if heading else []
            lines.append(_text_table([_word(language, "columns", c) for c in cols], rows, language, decimals))
        return "\n".join(lines)

    def _shown(self, language: str) -> list[tuple[str, list[str], list[list[Any]]]]:
        """(heading, columns, rows) of the displayed tables that have rows: the summary (no heading), then
        the disparities that exceed the rule or cannot be told."""
        shown = []
        for table, heading in (("summary", ""), ("gaps", text("card.gaps", language))):
            cols, rows = self.display_rows(table, language)
            if rows:
                shown.append((heading, cols, rows))
        return shown

    def summary_text(self, decimals: int = 3, *, language: str = "en") -> str:
        """The text that :meth:`print_summary` prints (:meth:`to_text`)."""
        return self.to_text(decimals, language=language)

    def _fitted(self) -> bool:
        return hasattr(self, "summary")

    def _repr_html_(self, *, language: str = "en") -> str:
        """The notebook's display: the headline, the summary (rows beyond the rule in red) and the disparities."""
        esc = html.escape
        title = esc(text("audit.title", language))
        if not self._fitted():
            return f"<b>{title}</b> ({esc(text('audit.not_fitted', language))})"
        colour = "#cf222e" if self.verdict_counts()["exceeds"] else "#1a7f37"
        parts = [f"<div><b>{title}</b>: <span style='color:{colour}'>{esc(self.headline(language))}</span>"]
        for heading, cols, rows in self._shown(language):
            parts += [f"<p>{esc(heading)}</p>"] if heading else []
            parts.append(_html_table([_word(language, "columns", c) for c in cols], rows, lang=language,
                                     flag_col=cols.index("gap_flag") if "gap_flag" in cols else None))
        return "".join(parts) + "</div>"

    def plotted_rows(self, metric: str, attributes: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows of :attr:`gaps` that :meth:`plot` draws for ``metric``, top to bottom: those of
        ``attributes`` (default the one-way attributes) with a published difference."""
        self._check_fitted()
        attrs = list(attributes) if attributes is not None else list(self.groups_)
        return self.gaps[(self.gaps["metric"] == metric) & self.gaps["attribute"].isin(attrs)
                         & self.gaps["difference"].notna()]

    def plot(self, metric: str = "flag_rate", *, attributes: Sequence[str] | None = None, ax=None,
             language: str = "en"):
        """Differences from the reference group with confidence intervals, one line per group.

        Groups whose disparity lies outside the rule are drawn in red, those the rule
        cannot tell at this sample size in ochre, those within it in blue, and those the
        rule does not judge in grey (:data:`VERDICT_COLOURS`; :func:`verdict_legend` names
        them); the band the rule allows for the difference (when it bounds the difference
        of ``metric``) is shaded. Suppressed groups are not drawn. Each axes carries its
        own group labels: do not share the y axis between plots of different metrics (their
        groups differ).

        Parameters
        ----------
        metric : str, default "flag_rate"
            One of ``gap_metrics``.
        attributes : list of str, optional
            Attributes (or intersections, ``"sex:age_band"``) to show; default the one-way attributes.
        ax : matplotlib Axes, optional
        language : {"en", "de", "fr", "it"}, default "en"
            Language of the labels.

        Returns
        -------
        matplotlib Axes
        """
        self._check_fitted()
        if metric not in self.gap_metrics:
            raise ValueError(f"metric {metric!r} is not audited; choose from {list(self.gap_metrics)}")
        if ax is None:
            import matplotlib.pyplot as plt

            ax = plt.figure(figsize=(6.4, 4.0)).add_subplot()
        g = self.plotted_rows(metric, attributes)
        y = np.arange(len(g))[::-1]
        diff = g["difference"].to_numpy(dtype=np.float64)
        lo = g["difference_lo"].to_numpy(dtype=np.float64, na_value=np.nan)
        hi = g["difference_hi"].to_numpy(dtype=np.float64, na_value=np.nan)
        colours = [VERDICT_COLOURS.get(v, VERDICT_COLOURS["not_judged"]) for v in g["verdict"]]
        bound = self.rule_.max_difference.get(metric)
        if bound is not None:
            ax.axvspan(-bound, bound, color="#eeeeee", zorder=0)
        ax.axvline(0, color="#666666", lw=0.8)
        if len(g):
            err = np.vstack([np.where(np.isnan(lo), 0, diff - lo), np.where(np.isnan(hi), 0, hi - diff)])
            ax.errorbar(diff, y, xerr=np.clip(err, 0, None), fmt="none", ecolor="#999999", capsize=2)
            ax.scatter(diff, y, c=colours, zorder=3)
            words = _in_words(g[["attribute", "group", "reference"]], language)
            ax.set_yticks(y, [text("audit.plot_vs", language, attribute=a, group=gr, reference=rf) for a, gr, rf in
                              zip(words["attribute"], words["group"], words["reference"], strict=True)])
        else:
            ax.text(0.5, 0.5, text("audit.plot_none", language), ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
        ax.set_xlabel(text("audit.plot_difference", language, metric=_word(language, "columns", metric)))
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        return ax

    def plot_calibration(self, attribute: str = OVERALL, *, ax=None, language: str = "en"):
        """Observed outcome rate against mean predicted risk per risk bin, one line per group.

        Only published (not suppressed) bins are drawn; a panel without any says that its
        bins are hidden. Labels in ``language``.

        Returns
        -------
        matplotlib Axes
        """
        self._check_fitted()
        if ax is None:
            import matplotlib.pyplot as plt

            ax = plt.figure(figsize=(4.8, 4.4)).add_subplot()
        cal = self.calibration[self.calibration["attribute"] == attribute]
        if attribute != OVERALL and attribute not in set(self.calibration["attribute"]):
            raise ValueError(f"attribute {attribute!r} not audited; choose from {sorted(set(self.calibration['attribute']))}")
        top = 0.05
        for grp, d in cal.groupby("group", sort=False):
            d = d[d["observed_rate"].notna() & d["mean_predicted"].notna()]
            if not len(d):
                continue
            x = d["mean_predicted"].to_numpy(dtype=np.float64)
            yv = d["observed_rate"].to_numpy(dtype=np.float64)
            ax.plot(x, yv, marker="o", label=_group(language, grp))
            top = max(top, float(np.nanmax(x)), float(np.nanmax(yv)))
        ax.plot([0, top], [0, top], color="#999999", lw=0.8, ls="--")
        if not ax.get_legend_handles_labels()[0]:  # nothing published: say so, not an empty panel
            ax.text(0.5, 0.5, textwrap.fill(text("audit.plot_calibration_hidden", language, k=self.min_cell_size),
                                            34),
                    ha="center", va="center", transform=ax.transAxes, fontsize="small", color="#57606a",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.9}, gid="all_hidden")
        ax.set_xlabel(text("audit.plot_mean_predicted", language))
        ax.set_ylabel(text("audit.plot_observed", language))
        ax.set_title(text("audit.plot_calibration_by", language, attribute=_attribute(language, attribute))
                     if attribute != OVERALL else text("audit.plot_calibration", language))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize="small")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        return ax

    # ------------------------------------------------------------------ files
    def to_dir(self, path: str | Path, *, min_cell_size: int | None = None, plots: bool = True,
               language: str | None = None, xlsx: bool | None = None) -> list[Path]:
        """Write the (suppressed) tables as CSV and Parquet and the plots as PNG; return the files.

        Files: ``fairness_summary``, ``fairness_gaps``, ``fairness_calibration``
        (``.csv`` and ``.parquet``, with ``xlsx`` also ``.xlsx``), and with ``plots``
        ``fairness_<metric>.png`` and ``fairness_calibration.png``. ``language`` (default the
        object's ``output_language``) names the tables' headers
        (:meth:`~iizrisk._results.ResultMixin.to_dir`) and the plots' labels (default English).

        The tables were suppressed at :meth:`fit` with ``min_cell_size`` (with
        complementary cells, which need the people, not the tables); a larger
        ``min_cell_size`` here cannot be applied afterwards and raises
        :class:`~iizrisk.errors.ConfigError`: refit with it.
        """
        self._check_fitted()
        if min_cell_size is not None and int(min_cell_size) > int(self.min_cell_size):
            raise ConfigError(f"min_cell_size={min_cell_size}: this audit was suppressed at fit with "
                              f"min_cell_size={self.min_cell_size}; fit FairnessAudit(min_cell_size="
                              f"{min_cell_size}) to publish with the larger cells")
        return self._write_dir(path, min_cell_size=min_cell_size, plots=plots, language=language, xlsx=xlsx)

    def _output_tables(self, k: int) -> list[OutputTable]:
        # suppressed at fit (protect_cells with complementary cells), with self.min_cell_size >= k
        return [OutputTable(name, table, rounding=_DECIMALS) for name, table in
                (("fairness_summary", self.summary), ("fairness_gaps", self.gaps),
                 ("fairness_calibration", self.calibration))]

    def _output_figures(self, tables, language: str = "en") -> list[OutputFigure]:
        from matplotlib.figure import Figure

        figures = []
        for m in self.gap_metrics:
            rows = self.plotted_rows(m)  # the one-way groups drawn, not the intersections' rows
            fig = Figure(figsize=(8.0, 1.3 + 0.26 * max(4, len(rows))), layout="constrained")
            self.plot(m, ax=fig.subplots(), language=language)
            verdict_legend(fig, rows["verdict"], language)
            figures.append(OutputFigure(f"fairness_{m}", fig))
        attrs = [OVERALL, *self.groups_]
        fig = Figure(figsize=(4.2 * len(attrs), 4.0))
        axes = np.atleast_1d(fig.subplots(1, len(attrs)))
        for ax, a in zip(axes, attrs, strict=True):
            self.plot_calibration(a, ax=ax, language=language)
        figures.append(OutputFigure("fairness_calibration", fig))
        return figures

    def to_dict(self) -> dict[str, Any]:
        """The settings and the (suppressed) tables as JSON-ready records, for model cards."""
        self._check_fitted()
        return {
            "n": self.n_, "flagged": self.capacity_, "capacity": self.capacity,
            "min_cell_size": self.min_cell_size, "rule": self.rule_.to_dict(),
            "verdicts": self.verdict_counts(),
            "confidence": self.confidence, "n_bootstrap": self.n_bootstrap,
            "bootstrap_unit": self.cluster_column or "row",
            "groups": list(self.groups_), "intersections": [SEP.join(p) for p in self.intersections_],
            "summary": _records(self.summary), "gaps_exceeding": _records(self.flagged_gaps_),
            "gaps_cannot_tell": _records(self.gaps[self.gaps["verdict"] == "cannot_tell"]),
        }


def _describe_gap(r) -> str:
    """One disparity in a log line: the ratio or difference with its interval."""
    def num(x) -> str:
        return "?" if x is None or x is pd.NA or not np.isfinite(float(x)) else f"{float(x):.3g}"
    if str(r.rule).startswith("ratio"):
        what = f"ratio {num(r.ratio)} ({num(r.ratio_lo)}-{num(r.ratio_hi)})"
    else:
        what = f"{float(r.difference):+.3f} ({num(r.difference_lo)} to {num(r.difference_hi)})"
    return f"{r.attribute}={r.group} {r.metric} {what} vs {r.reference}"


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.astype(object).where(df.notna(), None).to_dict("records"):
        out.append({k: (v.item() if isinstance(v, np.generic) else v) for k, v in rec.items()})
    return out


def _percentiles(values: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over the replicates (axis 0) of the finite values.

    Cells with finite values in fewer than half of the replicates get no interval.
    """
    B = values.shape[0]
    shape = values.shape[1:]
    if B == 0:
        return np.full(shape, np.nan), np.full(shape, np.nan)
    v = np.where(np.isfinite(values), values, np.nan)
    ok = np.isfinite(v).sum(axis=0) >= max(1, math.ceil(B / 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells, masked below
        q = np.nanquantile(v, [lo, hi], axis=0)
    return np.where(ok, q[0], np.nan), np.where(ok, q[1], np.nan)


# --------------------------------------------------------------------------- one call
def audit_model(model, spells: pd.DataFrame, as_of, *, capacity: int | float, interventions=None,
                observed_until=None, attributes: Sequence[str] | None = None, **params) -> FairnessAudit:
    """Audit a model on the period starting at ``as_of``: :func:`labelled_period` then :class:`FairnessAudit`.

    ``params`` go to :class:`FairnessAudit` (``groups``, ``min_cell_size``, ``max_gap``, ...).
    """
    data = labelled_period(model, spells, as_of, interventions=interventions, observed_until=observed_until,
                           attributes=attributes)
    audit = FairnessAudit(capacity=capacity, **params).fit(data)
    audit.as_of_ = pd.Timestamp(as_of).date().isoformat()
    audit.outcome_ = getattr(model, "outcome", None)
    audit.horizon_months_ = getattr(model, "horizon_months", None)
    return audit

