"""Watching a deployed model every night: input drift, scores, list churn, precision before and after labels.

A risk model runs every night for years, and its labels arrive a horizon
(12 months) late. Meanwhile the labour market and the institutions' processes
change. This module holds what the nightly run computes to notice it, each
as rows of one long table appended to the history store (table
``monitoring``, one partition per as-of date; columns :data:`COLUMNS`):

* **Input drift** (``kind="drift"``): the population stability index of every
  feature against the training reference, ``sum((a - e) * ln(a / e))`` over
  the reference's bins (deciles of the training rows, missing values a bin of
  their own; edges within 3 % of the maximum join the top bin, so that day
  counts capped at a window's length, 365 or 366 days, do not drift with the calendar). The reference is computed at training (:func:`feature_reference`)
  and stored in the model's manifest (``"reference"``), so a night needs no
  training data.
* **Scores** (``kind="score"``): the PSI of the calibrated risks, their mean
  and quantiles, and the share of each risk band against the reference (its
  exact share when the reference keeps it, else the range its deciles allow).
* **The institutions' flows** (``kind="flow"``, from tonight's spells): per
  institution, the share of open cases that ended in the last 30 days, the
  share of ends without an exit reason, and the new registrations, each
  against the 12 windows of 30 days before (:func:`institution_flows`,
  :func:`flow_changes`). A process change -- exits slowing down after an ALV
  revision, an institution that stops recording exit reasons -- shows here
  within weeks, long before the stock of people, and so the features, has
  moved far enough for their PSI to notice (a change detector: once the
  baseline windows have absorbed the change, the warning stops, and the
  feature PSI against the training reference takes over).
* **List churn** (``kind="churn"``): per institution, the Jaccard index of
  tonight's list against the previous run's (history ``worklists``), and the
  numbers who entered and left.
* **Expected precision before labels** (``kind="expected"``): the idea of
  NannyML's confidence-based performance estimation (CBPE). A calibrated risk
  is the probability of the outcome, so the expected share of listed people
  with the outcome is the mean risk of the list, and its chance spread
  ``expected_precision_sd`` follows from the same risks; the expected ROC AUC
  follows from the risks of everyone scored (:func:`expected_auc`).
* **Realised performance** (``kind="realised"``): for the latest past run
  whose horizon has passed (by today's data), the outcome of everyone it
  scored, from today's spells: precision of each published list, ROC AUC,
  Brier score and ECE over everyone scored, beside what was expected then. A
  gap warns when it is at least ``precision_gap`` *and* three chance standard
  deviations (:data:`PRECISION_GAP_Z`): the realised precision of a list of
  50 scatters by about 0.065 around a perfect estimate.

:class:`MonitoringThresholds` turns values into warnings (``warning`` True and
a sentence in ``message``); :func:`warnings_of` lists them for the run summary.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> train = pd.DataFrame({"a": rng.normal(size=5000)})
>>> ref = feature_reference(train)
>>> same = feature_drift(pd.DataFrame({"a": rng.normal(size=5000)}), ref)
>>> moved = feature_drift(pd.DataFrame({"a": rng.normal(1.0, size=5000)}), ref)
>>> bool(same.loc["a", "psi"] < 0.05 < 0.25 < moved.loc["a", "psi"])
True
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _time
from ._results import OutputFigure, OutputTable, ResultMixin
from ._texts import check_language, load_locale, text
from .config import MonitoringSettings
from .errors import IizriskError
from .model._reference import _bin_shares, feature_reference

__all__ = ["COLUMNS", "MonitoringThresholds", "FlowThresholds", "FLOW_STATISTICS", "institution_flows",
           "flow_changes", "expected_precision_sd", "PRECISION_GAP_Z", "CHURN_MIN_PEOPLE", "feature_reference", "attach_reference",
           "reference_of",
           "population_stability_index", "feature_drift", "score_monitoring", "list_churn", "expected_auc",
           "expected_precision", "realised_performance", "monitor_night", "warnings_of", "read_monitoring",
           "slow_down_exits", "MonitoringTrends", "trends"]

logger = logging.getLogger("iizrisk")

#: the columns of the history table ``monitoring``
COLUMNS = ("kind", "name", "institution", "run_as_of", "value", "threshold", "warning", "message")
#: shares below this count as this in the PSI (an empty bin would make it infinite)
EPS = 1e-4
BANDS = ("low", "medium", "high")
#: the ``institution`` of pooled figures (every list together); no institution may be named so
POOLED = "all"
#: a realised precision warns only when it is this many chance standard deviations from the expected one
#: (:func:`expected_precision_sd`) as well as ``precision_gap`` away
PRECISION_GAP_Z = 3.0


#: When a monitoring value becomes a warning: the ``[monitoring]`` settings (one definition of the
#: thresholds and their defaults; a nightly run passes ``settings.monitoring``)
MonitoringThresholds = MonitoringSettings


# ------------------------------------------------------------------ the reference
# (computed at training time: iizrisk.model._reference)


def attach_reference(model, X: pd.DataFrame, *, band_thresholds=(0.10, 0.25), **kwargs) -> Any:
    """Compute the reference of ``X`` (the model's risks included) and keep it on the model.

    Besides the deciles, the exact share of each risk band (``band_thresholds``) is kept.
    :func:`iizrisk.model.save_model` writes ``model.reference_`` into the manifest.
    """
    risk = model.predict_proba(X[list(model.feature_names_in_)])[:, 1]
    ref = feature_reference(X[list(model.feature_names_in_)], risk=risk, **kwargs)
    ref["score"]["bands"] = _exact_band_shares(risk, band_thresholds)
    model.reference_ = ref
    return model


def reference_of(model_or_manifest) -> dict[str, Any] | None:
    """The reference of a model, a manifest dict or a model folder (None when it has none)."""
    if isinstance(model_or_manifest, dict):
        return model_or_manifest.get("reference")
    if isinstance(model_or_manifest, str | Path):
        from .model import read_manifest

        return read_manifest(model_or_manifest).get("reference")
    return getattr(model_or_manifest, "reference_", None)


def population_stability_index(expected, actual, *, eps: float = EPS) -> float:
    """``sum((a - e) * ln(a / e))`` over bins, shares floored at ``eps``.

    >>> population_stability_index([0.5, 0.5], [0.5, 0.5])
    0.0
    """
    e = np.maximum(np.asarray(expected, dtype=np.float64), eps)
    a = np.maximum(np.asarray(actual, dtype=np.float64), eps)
    return float(np.sum((a - e) * np.log(a / e)))


#: list churn is judged only when tonight's and the previous run's lists together hold at least this many
#: people: one person leaving a one-person list is a Jaccard of 0, and says nothing
CHURN_MIN_PEOPLE = 10

#: rows of tonight's features the input drift reads at most (a fixed random sample beyond it)
DRIFT_MAX_ROWS = 100_000
#: scored persons of a past run whose labels the pooled realised figures read at most (a fixed sample)
REALISED_MAX_PERSONS = 200_000


def _fixed_sample(n: int, at_most: int) -> np.ndarray:
    """Sorted positions of a fixed random sample of ``at_most`` of ``n`` rows (the same every night)."""
    return np.sort(np.random.default_rng(0).choice(n, size=at_most, replace=False))


def feature_drift(X: pd.DataFrame, reference: dict[str, Any], *, max_rows: int = DRIFT_MAX_ROWS) -> pd.DataFrame:
    """The PSI of every feature of the reference, and its missing share then and now; index ``feature``.

    At most ``max_rows`` rows are read (a fixed random sample): a bin's share then has a standard
    error below 0.0016, and the PSI's sampling error is about (bins - 1) / (2 n) = 5e-5 -- nothing next to
    the 0.1 of a warning -- while a national night (a million people scored) reads a tenth.
    """
    if len(X) > max_rows:
        X = X.iloc[_fixed_sample(len(X), max_rows)]
    rows = []
    for name, r in reference["features"].items():
        if name not in X.columns:
            rows.append({"feature": name, "psi": np.nan, "missing_now": np.nan, "missing_reference": r["shares"][-1]})
            continue
        now = _bin_shares(X[name].to_numpy(dtype=np.float64, na_value=np.nan), np.asarray(r["edges"]))
        rows.append({"feature": name, "psi": population_stability_index(r["shares"], now),
                     "missing_now": float(now[-1]), "missing_reference": r["shares"][-1]})
    return pd.DataFrame(rows).set_index("feature")


# ------------------------------------------------------------------ scores and lists
def score_monitoring(risk, bands, reference: dict[str, Any] | None = None, *,
                     band_thresholds=(0.10, 0.25)) -> pd.DataFrame:
    """Risk PSI, mean and quantiles, band shares (and their reference share and range); index ``name``."""
    r = np.asarray(risk, dtype=np.float64)
    rows: list[tuple[str, float, float | None, float | None, float | None]] = [
        ("mean_risk", float(np.mean(r)) if len(r) else np.nan, None, None, None)]
    for q in (0.5, 0.9, 0.99):
        rows.append((f"risk_p{int(q * 100)}", float(np.quantile(r, q)) if len(r) else np.nan, None, None, None))
    # a text column is compared as it is (a million bands as Python strings cost 0.1 s)
    b = bands.reset_index(drop=True) if isinstance(bands, pd.Series) else pd.Series(np.asarray(bands, dtype=object))
    ref_bands = None
    if reference is not None and "score" in reference:
        s = reference["score"]
        rows.append(("score_psi", population_stability_index(s["shares"], _bin_shares(r, np.asarray(s["edges"]))),
                     None, None, None))
        ref_bands = _band_shares_of_reference(s, band_thresholds)
    for name in BANDS:
        share = float(np.asarray((b == name).fillna(False), dtype=bool).mean()) if len(b) else np.nan
        lo, hi = (None, None) if ref_bands is None else ref_bands[name]
        rows.append((f"share_{name}", share, None if lo is None or hi is None else (lo + hi) / 2, lo, hi))
    return pd.DataFrame(rows, columns=["name", "value", "reference", "reference_low",
                                       "reference_high"]).set_index("name")


def _band_shares_of_reference(score_ref: dict[str, Any], thresholds) -> dict[str, tuple[float, float]]:
    """The share of each band among the reference risks, as a range ``(low, high)``.

    Exact (``low == high``) when the reference stores the band shares for these thresholds
    (:func:`attach_reference`). Otherwise the decile bins bound it: the bins wholly inside a band
    give the low end, those that overlap it the high end. (Counting a bin that straddles a threshold
    in one band, as before, put the whole top decile in one band and raised band warnings on
    unchanged data: a band of 2 % cannot be read off deciles.)
    """
    bands = score_ref.get("bands")
    if bands is not None and [float(x) for x in bands["thresholds"]] == [float(x) for x in thresholds]:
        return {name: (float(bands["shares"][name]),) * 2 for name in BANDS}
    edges = np.asarray(score_ref["edges"], dtype=np.float64)
    shares = np.asarray(score_ref["shares"][:-1], dtype=np.float64)
    total = shares.sum() or 1.0
    lower = np.r_[-np.inf, edges]  # bin i is (lower[i], upper[i]]
    upper = np.r_[edges, np.inf]
    cuts = np.r_[-np.inf, np.asarray(thresholds, dtype=np.float64), np.inf]  # band j is [cuts[j], cuts[j+1])
    out = {}
    for j, name in enumerate(BANDS):
        a, c = cuts[j], cuts[j + 1]
        inside = (lower >= a) & (upper < c)
        overlap = (upper >= a) & (lower < c)
        out[name] = (float(shares[inside].sum() / total), float(shares[overlap].sum() / total))
    return out


def _exact_band_shares(risk, thresholds) -> dict[str, Any]:
    r = np.asarray(risk, dtype=np.float64)
    r = r[~np.isnan(r)]
    idx = np.searchsorted(np.asarray(thresholds, dtype=np.float64), r, side="right")
    return {"thresholds": [float(x) for x in thresholds],
            "shares": {name: float(np.mean(idx == i)) if len(r) else float("nan") for i, name in enumerate(BANDS)}}


def list_churn(current: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """Per institution: ``listed``, ``entered``, ``left`` and the ``jaccard`` of the two lists.

    Both frames hold ``institution`` and ``person_id`` (the history's ``worklists`` rows).
    """
    cur = current[["institution", "person_id"]].astype(str).drop_duplicates()
    prev = (previous[["institution", "person_id"]].astype(str).drop_duplicates() if previous is not None
            and len(previous) else cur.iloc[:0])
    both = cur.merge(prev, how="outer", indicator=True)
    g = both.groupby("institution")["_merge"]
    out = pd.DataFrame({"listed": g.apply(lambda m: int((m != "right_only").sum())),
                        "entered": g.apply(lambda m: int((m == "left_only").sum())),
                        "left": g.apply(lambda m: int((m == "right_only").sum())),
                        "kept": g.apply(lambda m: int((m == "both").sum()))})
    union = out["entered"] + out["left"] + out["kept"]
    out["jaccard"] = np.where(union > 0, out["kept"] / union.clip(lower=1), 1.0)
    if previous is None:  # no previous run (an empty previous list is a Jaccard of 0)
        out["jaccard"] = np.nan
    return out


def _refuse_pooled_name(worklists: pd.DataFrame | None) -> None:
    """Refuse lists of an institution named like the pooled row (``"all"``, in any case).

    Its figures and the pooled ones would share one label, and ``perf.loc["all"]`` would be two rows.
    """
    if worklists is None or not len(worklists) or "institution" not in worklists.columns:
        return
    names = pd.Series(pd.unique(worklists["institution"].astype(str)))
    bad = sorted(names[names.str.strip().str.lower() == POOLED])
    if bad:
        from .errors import ValidationError

        raise ValidationError(f"an institution is named {bad[0]!r}: the monitoring figures of all lists together "
                              f"are labelled {POOLED!r}; rename that institution in the configuration "
                              "(for example by its official abbreviation)")


def expected_precision(risk_of_listed) -> float:
    """Expected precision of a list before labels: the mean calibrated risk of the people on it (CBPE)."""
    r = np.asarray(risk_of_listed, dtype=np.float64)
    return float(r.mean()) if len(r) else float("nan")


def expected_precision_sd(risk_of_listed) -> float:
    """The standard deviation of a list's realised precision when its risks are right: ``sqrt(sum p (1 - p)) / n``.

    Each listed person has the outcome with probability ``p`` (a Poisson-binomial count): around a
    perfect estimate, the realised precision of a list of 50 at 30 % scatters with this standard
    deviation, 0.065.

    >>> round(expected_precision_sd([0.3] * 50), 3)
    0.065
    """
    r = np.asarray(risk_of_listed, dtype=np.float64)
    return float(np.sqrt(np.sum(r * (1 - r))) / len(r)) if len(r) else float("nan")


def expected_auc(risk) -> float:
    """Expected ROC AUC when each person's outcome is Bernoulli(risk) (CBPE); ties count one half.

    The probability that a random person with the outcome scores above a random one without it,
    each pair weighted by ``p_i (1 - p_j)``, ``i != j``.

    >>> round(expected_auc([0.1, 0.9]), 3)
    0.988
    """
    p = np.asarray(risk, dtype=np.float64)
    if len(p) < 2:
        return float("nan")
    uniq, inv = np.unique(p, return_inverse=True)
    pos = np.bincount(inv, weights=p)
    neg = np.bincount(inv, weights=1 - p)
    self_pairs = np.bincount(inv, weights=p * (1 - p))
    below = np.r_[0.0, np.cumsum(neg)[:-1]]
    num = np.sum(pos * below) + 0.5 * np.sum(pos * neg - self_pairs)
    den = pos.sum() * neg.sum() - self_pairs.sum()
    return float(num / den) if den > 0 else float("nan")


# ------------------------------------------------------------------ flows (the institutions' processes)
@dataclass(frozen=True)
class FlowThresholds:
    """When a change in an institution's flows becomes a warning (:func:`flow_changes`).

    The ``[monitoring]`` settings may carry the same values as ``flow_window_days``,
    ``flow_baseline_windows``, ``flow_z``, ``flow_min_change`` and ``flow_min_count``; a night reads
    them there first (:meth:`of`), else these defaults.

    Parameters
    ----------
    window_days : int, default 30
        Tonight's window: the days ``T - window_days + 1 .. T``.
    baseline_windows : int, default 12
        The windows of the same length just before it (about a year), the baseline.
    z : float, default 4.0
        A change is judged on ``|z| >= z``: its distance from the baseline in standard errors
        (sampling error plus the baseline windows' own spread, see :func:`flow_changes`).
    min_change : float, default 0.15
        ... and on a relative change of at least this (a real but small change at national scale is
        no warning).
    min_count : float, default 5.0
        Judged only when tonight's observed or expected count is at least this.
    """

    window_days: int = 30
    baseline_windows: int = 12
    z: float = 4.0
    min_change: float = 0.15
    min_count: float = 5.0

    @classmethod
    def of(cls, settings: Any) -> FlowThresholds:
        """The flow thresholds of ``[monitoring]`` settings (the defaults for fields they lack)."""
        if isinstance(settings, FlowThresholds):
            return settings
        d = cls()
        return cls(**{f: type(getattr(d, f))(getattr(settings, f"flow_{f}", getattr(d, f)))
                      for f in ("window_days", "baseline_windows", "z", "min_change", "min_count")})


#: the flow statistics of :func:`flow_changes`: (numerator, denominator or None for a Poisson count)
FLOW_STATISTICS = {"exit_rate": ("exits", "stock"), "unknown_exit_reason": ("exits_unknown", "ends"),
                   "entries": ("entries", None)}


def institution_flows(spells: pd.DataFrame, as_of, *, window_days: int = 30,
                      baseline_windows: int = 12) -> pd.DataFrame:
    """Per institution and window of ``window_days`` days ending at ``T - j * window_days``: stock and flows.

    Window ``j = 0`` is tonight's (the days ``T - window_days + 1 .. T``), ``j = 1 ..
    baseline_windows`` the ones before it. Each window is counted **as it was known at its last day**
    ``e``: a row counts from its start if ``start <= e`` (an open row only once recorded by ``e``), and
    its end counts only when ``recorded_date <= e`` (without ``recorded_date``, always) -- so the
    reporting delay weighs on every window alike and tonight's window is not short of late ends.

    Returns
    -------
    DataFrame
        ``institution``, ``window``, ``window_end``, ``stock`` (rows open on the day before the
        window), ``exits`` (of those, ended in the window), ``ends`` (rows ended in the window),
        ``exits_unknown`` (of ``ends``, without an exit reason or ``unknown``), ``entries`` (rows
        started in the window).

    Examples
    --------
    >>> rows = pd.DataFrame({"person_id": ["a", "b", "c"], "institution": ["ALV"] * 3,
    ...                      "start_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-05-10"]),
    ...                      "end_date": pd.to_datetime(["2024-05-20", None, None]),
    ...                      "exit_reason": [None, None, None]})
    >>> f = institution_flows(rows, "2024-05-31", baseline_windows=1)
    >>> f[["window", "stock", "exits", "exits_unknown", "entries"]].to_numpy().tolist()
    [[0, 2, 1, 1, 1], [1, 2, 0, 0, 0]]
    """
    from ._time import MISSING_DAY, OPEN_END

    t = _time.day(pd.Timestamp(as_of))
    w, nb = int(window_days), int(baseline_windows)
    if w < 1 or nb < 0:
        raise ValueError("window_days must be at least 1 and baseline_windows at least 0")
    first = t - (nb + 1) * w
    start = _time.to_days(spells["start_date"])
    end = (_time.to_days(spells["end_date"], missing=int(OPEN_END)) if "end_date" in spells.columns
           else np.full(len(spells), OPEN_END, dtype=np.int32))
    rec = (_time.to_days(spells["recorded_date"]) if "recorded_date" in spells.columns
           else np.full(len(start), MISSING_DAY, dtype=np.int32))
    # rows that may count in some window: ended after the first, or their end recorded after it
    ic, iu = pd.factorize(spells["institution"])  # every institution of the export, by name
    keep = (start <= t) & (start != MISSING_DAY) & ((end > first) | (rec > first)) & (ic >= 0)
    start, end, rec = start[keep], end[keep], rec[keep]
    if "exit_reason" in spells.columns:  # factorised: a few distinct values, millions of rows
        rc, ru = pd.factorize(spells["exit_reason"])
        named_unknown = np.asarray(pd.Index(ru).astype(str).str.strip().str.lower() == "unknown", dtype=bool)
        unknown = ((rc < 0) | np.r_[named_unknown, False][rc])[keep]
    else:
        unknown = np.ones(len(start), dtype=bool)
    names = pd.Index(iu).astype(str)
    order = np.argsort(np.asarray(names), kind="stable")
    names = names[order]
    codes = np.argsort(order)[ic[keep]].astype(np.int64)
    n_inst = len(names)
    if n_inst == 0:
        return pd.DataFrame(columns=["institution", "window", "window_end", "stock", "exits", "ends",
                                     "exits_unknown", "entries"])
    is_open = end == OPEN_END
    has_rec = rec != MISSING_DAY
    # Each count is a few passes over the rows, however many windows: window j ends on e_j = T - j w and
    # starts after s0_j = e_j - w, so a day d falls in window floor((T - d) / w). A row starts in one
    # window, ends in one, and is in the stock of a contiguous range of windows (a difference array).
    n_win = nb + 1
    t64, start64, end64, rec64 = int(t), start.astype(np.int64), end.astype(np.int64), rec.astype(np.int64)
    e_of = lambda j: t64 - j * w  # noqa: E731 - the last day of window j

    def count(j: np.ndarray, m: np.ndarray) -> np.ndarray:
        m = m & (j >= 0) & (j < n_win)
        return np.bincount(codes[m] * n_win + j[m], minlength=n_inst * n_win).reshape(n_inst, n_win)

    # entries: known at e_j (an open row once its record has arrived)
    j_start = (t64 - start64) // w
    entries = count(j_start, ~(is_open & has_rec & (rec64 > e_of(j_start))))
    # ends: a closed row whose end, in window j, was recorded by e_j
    j_end = np.where(is_open, -1, (t64 - end64) // w)
    ended = ~is_open & (start64 <= e_of(j_end)) & (~has_rec | (rec64 <= e_of(j_end)))
    ends = count(j_end, ended)
    exits_unknown = count(j_end, ended & unknown)
    exits = count(j_end, ended & (start64 <= e_of(j_end) - w))  # of the stock: started before the window
    # stock: started by s0_j (j <= hi), and not yet ended as known at e_j: open and recorded by e_j
    # (j < first window ending before the record), or closed with an end after s0_j or recorded after e_j
    hi = (t64 - w - start64) // w
    after_rec = np.where(has_rec, (t64 - rec64) // w + 1, n_win)  # the first window whose e_j precedes the record
    lo = np.where(is_open, 0, np.minimum((t64 - end64) // w, after_rec))
    hi = np.where(is_open & has_rec, np.minimum(hi, after_rec - 1), hi)
    lo, hi = np.maximum(lo, 0), np.minimum(hi, nb)
    live = lo <= hi
    diff = (np.bincount(codes[live] * (n_win + 1) + lo[live], minlength=n_inst * (n_win + 1))
            - np.bincount(codes[live] * (n_win + 1) + hi[live] + 1, minlength=n_inst * (n_win + 1)))
    stock = np.cumsum(diff.reshape(n_inst, n_win + 1), axis=1)[:, :n_win]
    window = np.tile(np.arange(n_win), n_inst)
    return pd.DataFrame({
        "institution": np.repeat(np.asarray(names, dtype=object), n_win), "window": window,
        "window_end": pd.to_datetime(_time.from_days(t64 - window * w)),
        "stock": stock.ravel(), "exits": exits.ravel(), "ends": ends.ravel(),
        "exits_unknown": exits_unknown.ravel(), "entries": entries.ravel()}
    ).sort_values(["window", "institution"], kind="stable", ignore_index=True)


def flow_changes(flows: pd.DataFrame, thresholds: FlowThresholds | None = None) -> pd.DataFrame:
    """Tonight's flow rates against the baseline windows, per institution and statistic.

    For each statistic of :data:`FLOW_STATISTICS` (``exit_rate``: exits among the rows open before
    the window; ``unknown_exit_reason``: the share of ends without a reason; ``entries``: a count),
    tonight's rate ``r0 = x0 / n0`` is compared with the pooled baseline ``p = sum(x) / sum(n)``
    over windows ``1 .. baseline_windows``:
    ``z = (r0 - p) / sqrt(max(v(p), v(r0)) / n0 + between)``, where ``v(q)`` is the binomial
    variance ``q (1 - q)`` (Poisson: ``q``), the larger of the two a cautious choice for rare
    events, and ``between`` the spread of the baseline windows' rates beyond their sampling error
    (seasons, trends; at least 0). A change warns when ``|z| >= z``, the relative change
    ``r0 / p - 1`` is at least ``min_change`` in absolute value, and tonight's observed or
    expected count is at least ``min_count``.

    Returns
    -------
    DataFrame
        ``institution``, ``statistic``, ``value`` (``r0``), ``baseline`` (``p``), ``relative_change``,
        ``z``, ``count``, ``warning``.
    """
    th = thresholds or FlowThresholds()
    rows = []
    if not len(flows):
        return pd.DataFrame(columns=["institution", "statistic", "value", "baseline", "relative_change", "z",
                                     "count", "warning"])
    for stat, (num, den) in FLOW_STATISTICS.items():
        x = flows.pivot(index="institution", columns="window", values=num).astype(np.float64)
        n = (flows.pivot(index="institution", columns="window", values=den).astype(np.float64) if den
             else pd.DataFrame(1.0, index=x.index, columns=x.columns))
        x0, n0 = x[0].to_numpy(), n[0].to_numpy()
        xb, nb = x.drop(columns=0).to_numpy(), n.drop(columns=0).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # institutions with too few windows: NaN, not judged
            p = xb.sum(axis=1) / nb.sum(axis=1)
            r0 = x0 / n0
            rb = np.where(nb > 0, xb / nb, np.nan)
            var = (lambda q, m: q * (1 - q) / m) if den else (lambda q, m: q / m)
            ok_b = (nb > 0).sum(axis=1)
            spread = np.nanvar(rb, axis=1, ddof=1) if xb.shape[1] > 1 else np.full(len(p), np.nan)
            samp = np.nanmean(np.where(nb > 0, var(p[:, None], np.where(nb > 0, nb, 1.0)), np.nan), axis=1)
            between = np.nan_to_num(np.maximum(spread - samp, 0.0), nan=0.0)
            sd = np.sqrt(np.fmax(var(p, n0), var(r0, n0)) + between)
            z = (r0 - p) / sd
            rel = r0 / p - 1
        judged = (ok_b >= 3) & (n0 > 0) & (np.fmax(x0, p * n0) >= th.min_count) & np.isfinite(z)
        warn = judged & (np.abs(z) >= th.z) & (np.abs(np.nan_to_num(rel, nan=np.inf)) >= th.min_change)
        rows.append(pd.DataFrame({"institution": x.index.astype(str), "statistic": stat, "value": r0,
                                  "baseline": p, "relative_change": rel, "z": np.where(judged, z, np.nan),
                                  "count": x0, "warning": warn}))
    return pd.concat(rows, ignore_index=True)


def _say(key: str, language: str, **fields) -> str:
    """One monitoring message of the catalogue (``monitor.msg_<key>``) in ``language``."""
    return text(f"monitor.msg_{key}", language, **fields)


def _at(institution: str, language: str) -> str:
    """An institution as the messages name it: its name in the language, or all of them for the pooled rows."""
    if institution == POOLED:
        return text("monitor.all_institutions", language)
    names = load_locale(language)["institutions"]
    return str(names.get(institution, institution))


def _flow_rows(t: pd.Timestamp, spells: pd.DataFrame, ft: FlowThresholds, language: str = "en",
               last_day: int | None = None) -> list[dict]:
    # the windows end on the data's last day when the night runs after it: days nobody has reported yet
    # would read as a drop in exits and registrations
    last = pd.Timestamp(_time.to_date(last_day)) if last_day is not None else t
    end = min(t, last)
    ch = flow_changes(institution_flows(spells, end, window_days=ft.window_days,
                                        baseline_windows=ft.baseline_windows), ft)
    rows = []
    for r in ch.itertuples(index=False):
        fmt = (lambda v: f"{v:.0f}") if r.statistic == "entries" else (lambda v: f"{v:.1%}")
        msg = (_say("flow", language, what=text(f"monitor.flow_{r.statistic}", language),
                    institution=_at(str(r.institution), language), days=ft.window_days, date=end.date(),
                    value=fmt(r.value), baseline=fmt(r.baseline), windows=ft.baseline_windows,
                    change=f"{r.relative_change:+.0%}", z=f"{r.z:+.1f}") if r.warning else "")
        rows.append(_row("flow", r.statistic, r.value, institution=r.institution, run_as_of=t, threshold=ft.z,
                         warning=r.warning, message=msg))
    return rows


# ------------------------------------------------------------------ realised performance
def realised_performance(scores: pd.DataFrame, worklists: pd.DataFrame | None, spells: pd.DataFrame, *,
                         as_of, outcome: str, horizon_months: int, observed_until=None,
                         timeline=None, max_persons: int | None = REALISED_MAX_PERSONS) -> pd.DataFrame | None:
    """What a past run's scores and lists achieved, now that its horizon has passed.

    Parameters
    ----------
    scores : DataFrame
        The run's history ``scores`` (``person_id``, ``risk``).
    worklists : DataFrame or None
        The run's history ``worklists`` (``institution``, ``person_id``, ``risk``).
    spells : DataFrame
        Today's canonical spells (the run's future included).
    as_of : date-like
        The run's as-of date.
    timeline : Timeline, optional
        Tonight's point-in-time timeline of ``spells`` (:class:`iizrisk.view.View`), built on or after
        ``observed_until``: the labels as known tonight, without building the whole timeline again
        (at 10M spells that build is most of the cost). Persons it does not hold are left out.
    max_persons : int or None
        The pooled AUC, Brier score, ECE and prevalence read at most this many scored persons, a fixed
        random sample (None: everyone). Every listed person is labelled whatever the sample, so the
        precision of the lists is exact. At 200,000 persons the AUC's standard error is below 0.002
        and the ECE's sampling error below 0.002, while the labels of a national night's million
        scored would cost most of the monitoring stage.

    Returns
    -------
    DataFrame or None
        None when the horizon has not passed by ``observed_until`` (default: from the spells).
        Otherwise one row per institution and ``"all"``: ``listed``, ``realised_precision``,
        ``expected_precision`` and ``expected_precision_sd`` (:func:`expected_precision_sd`); on ``"all"``
        also ``roc_auc``, ``brier``, ``ece``, ``expected_auc``,
        ``prevalence``, ``n`` (the scored persons these read).

    Raises
    ------
    ValidationError
        An institution of ``worklists`` is named ``"all"`` (the label of the pooled row).
    """
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from .model import expected_calibration_error
    from .outcomes import compute_outcome, get_outcome, pension_starts
    from .outcomes import observed_until as _observed_until
    from .spells import as_of_day, positions

    _refuse_pooled_name(worklists)
    t = _time.day(pd.Timestamp(as_of))
    last = _observed_until(spells) if observed_until is None else as_of_day(observed_until)
    if int(_time.add_months(t, horizon_months)) > last:
        return None
    lists = worklists if worklists is not None and len(worklists) else None
    ids = pd.Index(scores["person_id"]).astype(str)
    # the scored rows to label: the sample of the pooled figures, and the listed (whose precision is exact)
    in_sample = np.ones(len(ids), dtype=bool)
    if max_persons is not None and len(ids) > max_persons:
        in_sample[:] = False
        in_sample[_fixed_sample(len(ids), int(max_persons))] = True
    list_pos = positions(ids, lists["person_id"]) if lists is not None else np.zeros(0, dtype=np.int64)
    wanted = in_sample.copy()
    wanted[list_pos[list_pos >= 0]] = True
    rows_ = np.flatnonzero(wanted)
    y_of_row = np.zeros(len(ids), dtype=bool)
    known = np.zeros(len(ids), dtype=bool)
    if timeline is not None:
        # tonight's codes; the labels read only the rows of the persons labelled (a person's label is
        # their own rows'), not the whole country's
        codes = timeline.codes_of(ids[rows_])
        held = codes >= 0
        rows_, codes = rows_[held], codes[held]
        mine = np.zeros(timeline.n_persons, dtype=bool)
        mine[codes] = True
        options: dict[str, Any] = ({"pension_starts": pension_starts(spells, timeline)}
                                   if outcome == "disintegration" else {})
        sub = timeline.keep_rows(mine[timeline.person])
        y_of_row[rows_] = np.asarray(get_outcome(outcome).func(
            sub, codes, np.full(len(codes), t, dtype=np.int64), horizon_months, **options), dtype=bool)
    else:
        # a plain frame of pairs: a MultiIndex would factorize a million pseudonyms for nothing
        pairs = pd.DataFrame({"person_id": np.asarray(ids[rows_], dtype=object),
                              "as_of": np.full(len(rows_), t, dtype=np.int32)})
        lab = compute_outcome(spells, outcome=outcome, horizon_months=horizon_months, pairs=pairs,
                              observed_until=last)
        y_of_row[rows_] = lab["outcome"].to_numpy(dtype=bool, na_value=False)
    known[rows_] = True
    pooled_rows = in_sample & known
    yy = y_of_row[pooled_rows]
    risk = scores["risk"].to_numpy(dtype=np.float64)[pooled_rows]
    both = 0 < yy.sum() < len(yy)
    out = []
    if lists is not None:
        ok = list_pos >= 0
        ok[ok] = known[list_pos[ok]]
        wl = lists.loc[ok].assign(hit=y_of_row[list_pos[ok]])
        for inst, g in wl.groupby("institution", sort=True):
            out.append({"institution": str(inst), "listed": len(g), "realised_precision": float(g["hit"].mean()),
                        "expected_precision": expected_precision(g["risk"]),
                        "expected_precision_sd": expected_precision_sd(g["risk"])})
        pooled = {"listed": len(wl), "realised_precision": float(wl["hit"].mean()),
                  "expected_precision": expected_precision(wl["risk"]),
                  "expected_precision_sd": expected_precision_sd(wl["risk"])}
    else:
        pooled = {"listed": 0, "realised_precision": np.nan, "expected_precision": np.nan,
                  "expected_precision_sd": np.nan}
    out.append({"institution": POOLED, **pooled,
                "roc_auc": roc_auc_score(yy, risk) if both else np.nan,
                "brier": brier_score_loss(yy, risk) if len(yy) else np.nan,
                "ece": expected_calibration_error(yy, risk), "expected_auc": expected_auc(risk),
                "prevalence": float(yy.mean()) if len(yy) else np.nan, "n": len(yy)})
    return pd.DataFrame(out).set_index("institution")


# ------------------------------------------------------------------ the night
def _row(kind, name, value, *, institution="", run_as_of=None, threshold=np.nan, warning=False, message=""):
    return {"kind": kind, "name": name, "institution": institution, "run_as_of": run_as_of,
            "value": float(value) if value is not None and pd.notna(value) else np.nan,
            "threshold": float(threshold) if threshold is not None else np.nan, "warning": bool(warning),
            "message": message}


def monitor_night(*, as_of, X: pd.DataFrame | None, scores: pd.DataFrame, worklists: pd.DataFrame | None,
                  reference: dict[str, Any] | None, history=None, spells: pd.DataFrame | None = None,
                  outcome: str | None = None, horizon_months: int = 12,
                  thresholds: MonitoringThresholds | None = None, band_thresholds=(0.10, 0.25),
                  flow_thresholds: FlowThresholds | None = None, language: str = "en",
                  timeline=None) -> pd.DataFrame:
    """Every monitoring figure of one night, as the rows of the history table ``monitoring``.

    Parameters
    ----------
    as_of : date-like
        Tonight's as-of date.
    X : DataFrame or None
        Tonight's features (as scored); None skips input drift.
    scores : DataFrame
        Tonight's scores (``person_id``, ``risk``, ``risk_band``).
    worklists : DataFrame or None
        Tonight's list rows (``institution``, ``person_id``, ``risk``); no institution named ``"all"``
        (the label of the pooled figures: a :class:`~iizrisk.errors.ValidationError`).
    reference : dict or None
        The model's reference (:func:`reference_of`).
    history : HistoryStore, optional
        For the previous run's lists and the past runs' scores.
    spells : DataFrame, optional
        Tonight's canonical spells, for the realised performance of past runs.
    outcome : str, optional
        Default the history scores' ``outcome`` column.
    horizon_months : int, default 12
    thresholds : MonitoringThresholds, optional
    flow_thresholds : FlowThresholds, optional
        Default :meth:`FlowThresholds.of` the ``thresholds`` (their ``flow_*`` fields, else the defaults).
    language : {"en", "de", "fr", "it"}, default "en"
        The language of the warnings' ``message`` (the run summary's language; catalogue ``monitor.msg_*``).
    timeline : Timeline, optional
        Tonight's point-in-time timeline of ``spells``: past runs' labels as known tonight
        (:func:`realised_performance`), without building the whole timeline again.

    Returns
    -------
    DataFrame
        Columns :data:`COLUMNS` (``run_as_of`` the run a figure is about: tonight, or a past run).
    """
    from .outcomes import observed_until

    _refuse_pooled_name(worklists)
    check_language(language)
    th = thresholds or MonitoringThresholds()
    t = pd.Timestamp(as_of)
    rows = []
    if X is not None and reference is not None:
        drift = feature_drift(X, reference)
        for f, r in drift.iterrows():
            warn = bool(pd.notna(r["psi"]) and r["psi"] >= th.feature_psi)
            rows.append(_row("drift", f, r["psi"], run_as_of=t, threshold=th.feature_psi, warning=warn,
                             message=(_say("feature_drift", language, feature=f, psi=f"{r['psi']:.3f}",
                                           threshold=th.feature_psi) if warn else "")))
    sm = score_monitoring(scores["risk"], scores["risk_band"], reference, band_thresholds=band_thresholds)
    for name, r in sm.iterrows():
        warn, thr, msg = False, np.nan, ""
        if name == "score_psi":
            thr = th.score_psi
            warn = bool(r["value"] >= thr)
            msg = _say("score_drift", language, psi=f"{r['value']:.3f}", threshold=thr) if warn else ""
        elif str(name).startswith("share_") and pd.notna(r["reference"]):
            thr = th.band_share_change
            lo, hi = r["reference_low"], r["reference_high"]
            warn = bool(r["value"] <= lo - thr or r["value"] >= hi + thr)
            then = f"{lo:.1%}" if hi - lo < 1e-12 else _say("band_range", language, low=f"{lo:.1%}", high=f"{hi:.1%}")
            band = load_locale(language)["risk_bands"].get(str(name)[6:], str(name)[6:])
            msg = _say("band_share", language, band=band, share=f"{r['value']:.1%}", then=then) if warn else ""
        rows.append(_row("score", name, r["value"], run_as_of=t, threshold=thr, warning=warn, message=msg))
    # the data's last day, read once: the flows' windows and the past runs' horizons end by it
    last_day = observed_until(spells) if spells is not None and len(spells) else None
    if spells is not None:
        rows += _flow_rows(t, spells, flow_thresholds or FlowThresholds.of(th), language, last_day)
    if worklists is not None and len(worklists):
        for inst, g in [*worklists.groupby("institution", sort=True), (POOLED, worklists)]:
            rows.append(_row("expected", "expected_precision", expected_precision(g["risk"]), institution=str(inst),
                             run_as_of=t))
            rows.append(_row("expected", "expected_precision_sd", expected_precision_sd(g["risk"]),
                             institution=str(inst), run_as_of=t))
    rows.append(_row("expected", "expected_auc", expected_auc(scores["risk"]), institution="all", run_as_of=t))
    if history is not None and worklists is not None:
        prev = history.previous(t, "worklists")
        if prev is not None:
            churn = list_churn(worklists, history.read("worklists", as_of=prev))
            for inst, r in churn.iterrows():
                # a list of a few people changes by chance: judged from CHURN_MIN_PEOPLE in either run
                judged = int(r["listed"]) + int(r["left"]) >= CHURN_MIN_PEOPLE
                warn = bool(judged and pd.notna(r["jaccard"]) and r["jaccard"] < th.min_list_jaccard)
                rows.append(_row("churn", "jaccard", r["jaccard"], institution=str(inst), run_as_of=t,
                                 threshold=th.min_list_jaccard, warning=warn,
                                 message=(_say("churn", language, institution=_at(str(inst), language),
                                               jaccard=f"{r['jaccard']:.2f}", previous=prev,
                                               entered=int(r["entered"]), left=int(r["left"])) if warn else "")))
                for m in ("entered", "left"):
                    rows.append(_row("churn", m, r[m], institution=str(inst), run_as_of=t))
    if history is not None and spells is not None:
        rows += _realised_rows(t, history, spells, outcome, horizon_months, th, language, timeline, last_day)
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    out["run_as_of"] = pd.to_datetime(out["run_as_of"]).astype("datetime64[s]")
    out["institution"] = out["institution"].astype(str)
    return out


def _realised_rows(t: pd.Timestamp, history, spells, outcome, horizon_months, th, language: str = "en",
                   timeline=None, last_day: int | None = None) -> list[dict]:
    """The realised figures of the latest past run whose horizon has passed by ``t``."""
    if last_day is None:
        return []  # no spells: nothing is observed
    last = min(last_day, _time.day(t))
    due = [d for d in history.as_of_dates("scores")
           if int(_time.add_months(_time.day(pd.Timestamp(d)), horizon_months)) <= last]
    if not due:
        return []
    run = pd.Timestamp(due[-1])
    sc = history.read("scores", as_of=run)
    wl = history.read("worklists", as_of=run) if history.has(run, "worklists") else None
    name = outcome or (str(sc["outcome"].iloc[0]) if "outcome" in sc.columns and len(sc) else "revolving_door")
    usable = timeline is not None and timeline.as_of is not None and int(timeline.as_of) >= last
    perf = realised_performance(sc, wl, spells, as_of=run, outcome=name, horizon_months=horizon_months,
                                observed_until=_time.to_date(last), timeline=timeline if usable else None)
    rows: list[dict[str, Any]] = []
    if perf is None:  # pragma: no cover - chosen due
        return rows
    for inst, r in perf.iterrows():
        gap = r["realised_precision"] - r["expected_precision"]
        sd = r["expected_precision_sd"]
        # beyond the bound and beyond chance: a list of 50 misses a right estimate by 0.05 on most nights
        warn = bool(pd.notna(gap) and abs(gap) >= th.precision_gap and abs(gap) >= PRECISION_GAP_Z * sd)
        rows.append(_row("realised", "realised_precision", r["realised_precision"], institution=str(inst),
                         run_as_of=run, threshold=th.precision_gap, warning=warn,
                         message=(_say("realised", language, run=run.date(), institution=_at(str(inst), language),
                                       realised=f"{r['realised_precision']:.2f}",
                                       expected=f"{r['expected_precision']:.2f}", sd=f"{sd:.2f}") if warn else "")))
        rows.append(_row("realised", "expected_precision", r["expected_precision"], institution=str(inst),
                         run_as_of=run))
    a = perf.loc["all"]
    for m in ("roc_auc", "brier", "expected_auc", "prevalence"):
        rows.append(_row("realised", m, a[m], institution="all", run_as_of=run))
    warn = bool(pd.notna(a["ece"]) and a["ece"] > th.max_ece)
    rows.append(_row("realised", "ece", a["ece"], institution="all", run_as_of=run, threshold=th.max_ece, warning=warn,
                     message=(_say("ece", language, run=run.date(), ece=f"{a['ece']:.3f}", threshold=th.max_ece)
                              if warn else "")))
    return rows


def warnings_of(table: pd.DataFrame) -> list[str]:
    """The warning sentences of a monitoring table (for the run summary)."""
    if not len(table):
        return []
    return [str(m) for m in table.loc[table["warning"].astype(bool), "message"]]


def read_monitoring(history_root: str | Path, *, since=None, until=None) -> pd.DataFrame:
    """The ``monitoring`` table of a history store (``as_of`` column added), for a range of nights."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .errors import ValidationError

    base = Path(history_root) / "monitoring"
    frames = []
    fix = ("the history store was changed by hand: restore the partition from a backup, or remove it (the "
           "next runs write their own)")
    if base.is_dir():
        for p in sorted(base.glob("as_of=*/part-0.parquet")):
            try:
                d = pd.Timestamp(_time.parse_iso_date(p.parent.name[6:], "partition"))
            except IizriskError as exc:
                raise ValidationError(f"{p.parent}: not a night's partition ({exc}); {fix}") from None
            if (since is not None and d < pd.Timestamp(since)) or (until is not None and d > pd.Timestamp(until)):
                continue
            try:
                df = pq.read_table(p).to_pandas()
            except (pa.ArrowException, OSError) as exc:
                raise ValidationError(f"{p}: not a readable Parquet file ({exc}); {fix}") from None
            # never another table's rows (people, scores) in the trends and their export
            if any(c not in COLUMNS for c in df.columns) or not {"kind", "name", "value"} <= set(df.columns):
                raise ValidationError(f"{p}: not a monitoring table (columns other than {list(COLUMNS)}); {fix}")
            df.insert(0, "as_of", d)
            frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["as_of", *COLUMNS])
    return pd.concat(frames, ignore_index=True)


def slow_down_exits(spells: pd.DataFrame, *, institution: str = "ALV", from_date, slowdown: float = 0.3,
                    observed_until=None) -> pd.DataFrame:
    """A dated policy change for drills and tests: :func:`iizrisk.synth.slow_down_exits` (kept here for notebooks).

    >>> rows = pd.DataFrame({"person_id": ["a"], "institution": ["ALV"],
    ...                      "start_date": pd.to_datetime(["2024-01-01"]), "end_date": pd.to_datetime(["2024-01-31"])})
    >>> slow_down_exits(rows, from_date="2024-01-11", slowdown=0.5, observed_until="2024-12-31")["end_date"].iloc[0]
    Timestamp('2024-02-20 00:00:00')
    """
    from .synth._shocks import slow_down_exits as _slow

    return _slow(spells, institution=institution, from_date=from_date, slowdown=slowdown,
                 observed_until=observed_until)


# ------------------------------------------------------------------ trends (iizrisk monitor)
@dataclass
class MonitoringTrends(ResultMixin):
    """Monitoring figures over many nights (:func:`trends`): tables, plots and what changed, in words.

    ``language`` (``en``, ``de``, ``fr``, ``it``) is that of the sentences, the plots, the HTML report and the
    written tables' headers (``iizrisk monitor`` uses the deployment's ``[worklist] language``).
    """

    table: pd.DataFrame
    language: str = "en"

    def __post_init__(self) -> None:
        check_language(self.language)

    def series(self, kind: str, name: str, institution: str = "all") -> pd.Series:
        t = self.table
        inst = t["institution"].isin([institution, ""]) if institution == "all" else t["institution"] == institution
        s = t[(t["kind"] == kind) & (t["name"] == name) & inst]
        return s.groupby("as_of")["value"].mean().sort_index()

    @property
    def summary(self) -> pd.DataFrame:
        """Per night: the largest feature PSI, the risk PSI, expected precision, list Jaccard, warnings."""
        t = self.table
        nights = pd.Index(sorted(t["as_of"].unique()), name="as_of")
        drift = t[t["kind"] == "drift"].groupby("as_of")["value"]
        churn = t[(t["kind"] == "churn") & (t["name"] == "jaccard")].groupby("as_of")["value"].min()
        out = pd.DataFrame({
            "max_feature_psi": drift.max().reindex(nights),
            "most_drifted_feature": t[t["kind"] == "drift"].sort_values("value").groupby("as_of")["name"].last()
            .reindex(nights),
            "score_psi": self.series("score", "score_psi").reindex(nights),
            "share_high": self.series("score", "share_high").reindex(nights),
            "expected_precision": self.series("expected", "expected_precision").reindex(nights),
            "realised_precision": self.series("realised", "realised_precision").reindex(nights),
            "min_list_jaccard": churn.reindex(nights),
            "warnings": t.groupby("as_of")["warning"].sum().reindex(nights).fillna(0).astype(int),
        }, index=nights)
        return out

    def _say(self, key: str, **fields) -> str:
        return text(f"monitor.{key}", self.language, **fields)

    def changes(self) -> list[str]:
        """What changed between the first and the last night, in sentences (largest first)."""
        s = self.summary
        if not len(s):
            return [self._say("trends_none")]
        first, last = s.index[0], s.index[-1]
        d0, d1 = pd.Timestamp(first).date(), pd.Timestamp(last).date()
        words = []
        t = self.table
        drift = t[(t["kind"] == "drift") & t["warning"]]
        if len(drift):
            since = drift.groupby("name")["as_of"].min().sort_values()
            for f, d in since.head(5).items():
                now = t[(t["kind"] == "drift") & (t["name"] == f) & (t["as_of"] == last)]["value"]
                words.append(self._say("trends_drift", feature=f, since=pd.Timestamp(d).date(), date=d1,
                                       psi=f"{float(now.iloc[0]) if len(now) else float('nan'):.2f}"))
        for col in ("share_high", "expected_precision", "realised_precision"):
            a = s[col].dropna()
            if len(a) >= 2 and abs(a.iloc[-1] - a.iloc[0]) >= 0.02:
                words.append(self._say(f"trends_{col}", before=f"{a.iloc[0]:.1%}", d0=pd.Timestamp(a.index[0]).date(),
                                       after=f"{a.iloc[-1]:.1%}", d1=pd.Timestamp(a.index[-1]).date()))
        gap = (s["realised_precision"] - s["expected_precision"]).dropna()
        if len(gap):
            words.append(self._say("trends_gap", gap=f"{gap.mean():+.3f}", n=len(gap)))
        n = int(s["warnings"].sum())
        words.append(self._say("trends_warnings", n=n, d0=d0, d1=d1) if n
                     else self._say("trends_no_warning", d0=d0, d1=d1))
        return words

    def _title(self) -> str:
        return self._say("trends_title")

    def plot(self, ax=None, *, what: str = "drift", language: str | None = None):
        """``drift`` (largest feature PSI and risk PSI), ``precision`` (expected vs realised) or ``churn``;
        titles and legends in ``language`` (default the result's)."""
        from .plots import _tidy
        from .tables import header

        lang = language or self.language
        if ax is None:
            from matplotlib.figure import Figure

            ax = Figure(figsize=(7, 3.2)).subplots()
        s = self.summary
        cols = {"drift": ["max_feature_psi", "score_psi"], "precision": ["expected_precision", "realised_precision"],
                "churn": ["min_list_jaccard"]}[what]
        nights = pd.to_datetime(s.index)
        for c in cols:
            v = s[c].astype(float).to_numpy()
            label = header(c, lang) + ("" if np.isfinite(v).any() else " " + text("monitor.plot_no_values", lang))
            ax.plot(nights, v, marker="o", ms=3, label=label, clip_on=False)
        # precision and the Jaccard index are shares: on their whole range, so that a small change looks small;
        # a PSI from 0 (no drift) to at least 0.1, where drift is commonly called moderate (the default warning)
        if what == "drift":
            top = float(np.nanmax(s[cols].astype(float).to_numpy(), initial=0.0))
            ax.set_ylim(0, max(0.1, 1.1 * top))
        else:
            ax.set_ylim(0, 1.02)
        # at most six nights ticked, each with its date (the default ticked every day between two nights a week
        # apart, and their dates ran into one another)
        ticked = nights[::max(1, -(-len(nights) // 6))]
        ax.set_xticks(ticked, [d.strftime("%Y-%m-%d") for d in ticked], fontsize="small")
        if len(nights):  # every night on the axis, also those without a value (the first night has no churn)
            pad = max(pd.Timedelta(days=1), (nights.max() - nights.min()) * 0.05)
            ax.set_xlim(nights.min() - pad, nights.max() + pad)
        ax.set_title(text(f"monitor.plot_{what}", lang), fontsize="medium")
        ax.legend(frameon=False, fontsize=8)
        _tidy(ax)
        return ax

    def _output_tables(self, k: int) -> list[OutputTable]:
        # shares, indices and precisions of whole lists: no cell counts people
        return [OutputTable("monitoring_trends", self.summary.reset_index()),
                OutputTable("monitoring_rows", self.table)]

    def _output_figures(self, tables, language: str = "en") -> list[OutputFigure]:
        return [OutputFigure(f"monitoring_{w}", self.plot(what=w, language=language).figure)
                for w in ("drift", "precision", "churn")]

    def to_html(self) -> str:
        """A self-contained HTML report in the result's language: what changed, the plots (embedded), the
        nightly table."""
        import base64
        import html
        import io

        from ._html import page
        from .tables import header

        parts = [f"<h1>{html.escape(self._title())}</h1><p class='notice'>{html.escape(self._say('trends_hint'))}</p>",
                 f"<h2>{html.escape(self._say('trends_what_changed'))}</h2><ul>"]
        parts += [f"<li>{html.escape(w)}</li>" for w in self.changes()]
        parts.append("</ul>")
        for w in ("drift", "precision", "churn"):
            buf = io.BytesIO()
            self.plot(what=w).figure.savefig(buf, format="png", dpi=80)
            parts.append(f"<img src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}' "
                         f"alt='{html.escape(text(f'monitor.plot_{w}', self.language), quote=True)}'/>")
        summary = self.summary.reset_index()  # the nights as a column, dated without a time
        summary["as_of"] = pd.to_datetime(summary["as_of"]).dt.strftime("%Y-%m-%d")
        summary = summary.rename(columns=lambda c: header(str(c), self.language))
        parts.append(summary.to_html(index=False, border=0, classes="num", float_format=lambda v: f"{v:.3f}",
                                     na_rep=""))
        return page(self._title(), "\n".join(parts), self.language)


def trends(history_root: str | Path, *, since=None, until=None, language: str = "en") -> MonitoringTrends:
    """The monitoring table of a history store over a period, as :class:`MonitoringTrends` in ``language``."""
    from .errors import ValidationError

    rows = read_monitoring(history_root, since=since, until=until)
    for col in ("value", "threshold"):  # a figure written as text made the trends' means an internal error
        if col in rows.columns and not pd.api.types.is_numeric_dtype(rows[col]):
            numbers = pd.to_numeric(rows[col], errors="coerce")
            bad = sorted({pd.Timestamp(d).date().isoformat() for d in rows.loc[numbers.isna() & rows[col].notna(),
                                                                                  "as_of"]})
            if bad:
                raise ValidationError(
                    f"{Path(history_root) / 'monitoring'}: column {col!r} of the night(s) {', '.join(bad)} holds text, "
                    "not numbers; the history store was changed by hand: restore the partition from a backup, or "
                    "remove it (the next runs write their own)")
            rows[col] = numbers
    return MonitoringTrends(rows, language=language)
