"""Balance and overlap diagnostics: standardised mean differences, variance ratios, weights."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "SMD_THRESHOLD",
    "balance_table",
    "effective_sample_size",
    "overlap_table",
    "standardized_mean_differences",
]

#: Covariates with an absolute standardised mean difference above this are called imbalanced
#: (Austin 2009: 0.1).
SMD_THRESHOLD = 0.1


_BLOCK = 1 << 16  # rows per block: a national study's table has millions of rows, copied one block at a time


def _wmean_var(X: np.ndarray, w: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and (frequency-weight style) variance of each column of ``X[rows]``.

    The rows are read in blocks, so no copy of the group's whole matrix is made.
    """
    n = len(X)
    sel = np.ones(n, dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    blocks = [slice(a, min(a + _BLOCK, n)) for a in range(0, n, _BLOCK)]
    wg = w[sel]
    sw = wg.sum()
    if sw <= 0:
        nan = np.full(X.shape[1], np.nan)
        return nan, nan
    m = sum((w[b][sel[b]] @ X[b][sel[b]] for b in blocks), np.zeros(X.shape[1])) / sw
    v = sum((w[b][sel[b]] @ (X[b][sel[b]] - m) ** 2 for b in blocks), np.zeros(X.shape[1])) / sw
    # unbiased for frequency weights (counts); equals ddof=1 when all weights are 1
    n_eff = sw ** 2 / (wg ** 2).sum()
    if n_eff > 1:
        v = v * n_eff / (n_eff - 1)
    return m, v


def _smd(diff: np.ndarray, v1: np.ndarray, v0: np.ndarray) -> np.ndarray:
    sd = np.sqrt((v1 + v0) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, diff / np.where(sd > 0, sd, 1.0), np.where(np.abs(diff) < 1e-12, 0.0, np.nan))


def effective_sample_size(weights) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` of non-negative weights.

    Examples
    --------
    >>> effective_sample_size([1, 1, 1, 1])
    4.0
    >>> round(effective_sample_size([1, 1, 1, 9]), 2)
    1.71
    """
    w = np.asarray(weights, dtype=np.float64)
    s2 = float((w ** 2).sum())
    return float(w.sum() ** 2 / s2) if s2 > 0 else 0.0


def standardized_mean_differences(X, treated, weights=None) -> np.ndarray:
    """Standardised mean differences of the columns of ``X`` between treated and controls.

    ``(mean_treated - mean_control) / sqrt((var_treated + var_control) / 2)``, the
    means weighted by ``weights`` when given, the denominator always from the
    *unweighted* variances (Austin 2009), so that before and after adjustment
    are on the same scale. A column constant in both groups has SMD 0 when the
    means agree and NaN otherwise.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> standardized_mean_differences(X, [False, False, True, True]).round(3).tolist()
    [2.828]
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    t = np.asarray(treated, dtype=bool)
    w = np.ones(len(t)) if weights is None else np.asarray(weights, dtype=np.float64)
    ones = np.ones(len(t))
    _, v1 = _wmean_var(X, ones, t)
    _, v0 = _wmean_var(X, ones, ~t)
    m1, _ = _wmean_var(X, w, t)
    m0, _ = _wmean_var(X, w, ~t)
    return _smd(m1 - m0, v1, v0)


def balance_table(X, treated, *, weights=None, names=None) -> pd.DataFrame:
    """Covariate balance before and (with ``weights``) after adjustment.

    Parameters
    ----------
    X : array-like of shape (n, p) or DataFrame
        Covariates.
    treated : array-like of bool
    weights : array-like, optional
        Weights of the adjusted comparison (matching counts, inverse-probability
        weights, stratification weights). Without weights the ``*_after``
        columns are NaN.
    names : list of str, optional
        Covariate names (default: the DataFrame's columns or ``x0, x1, ...``).

    Returns
    -------
    DataFrame
        One row per covariate: ``mean_treated_before``, ``mean_control_before``,
        ``smd_before``, ``mean_treated_after``, ``mean_control_after``,
        ``smd_after``, ``variance_ratio_before``, ``variance_ratio_after``
        (treated over control; far from 1 flags a difference in spread that
        equal means hide).

    Examples
    --------
    >>> X = pd.DataFrame({"age": [30.0, 50, 50, 70]})
    >>> tab = balance_table(X, [False, False, True, True], weights=[0, 1, 1, 0])
    >>> tab.loc["age", ["smd_before", "smd_after"]].round(2).tolist()
    [1.41, 0.0]
    """
    if isinstance(X, pd.DataFrame):
        names = list(X.columns) if names is None else list(names)
        X = X.to_numpy(dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if names is None:
        names = [f"x{j}" for j in range(X.shape[1])]
    t = np.asarray(treated, dtype=bool)
    ones = np.ones(len(t))
    m1b, v1b = _wmean_var(X, ones, t)
    m0b, v0b = _wmean_var(X, ones, ~t)
    out = {
        "mean_treated_before": m1b,
        "mean_control_before": m0b,
        "smd_before": _smd(m1b - m0b, v1b, v0b),
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        vr_before = np.where(v0b > 0, v1b / np.where(v0b > 0, v0b, 1.0), np.nan)
    if weights is None:
        nan = np.full(X.shape[1], np.nan)
        out.update(mean_treated_after=nan, mean_control_after=nan, smd_after=nan,
                   variance_ratio_before=vr_before, variance_ratio_after=nan)
    else:
        w = np.asarray(weights, dtype=np.float64)
        m1a, v1a = _wmean_var(X, w, t)
        m0a, v0a = _wmean_var(X, w, ~t)
        with np.errstate(divide="ignore", invalid="ignore"):
            vr_after = np.where(v0a > 0, v1a / np.where(v0a > 0, v0a, 1.0), np.nan)
        # the after-adjustment SMD keeps the unweighted variances (Austin 2009), as standardized_mean_differences
        out.update(mean_treated_after=m1a, mean_control_after=m0a, smd_after=_smd(m1a - m0a, v1b, v0b),
                   variance_ratio_before=vr_before, variance_ratio_after=vr_after)
    return pd.DataFrame(out, index=pd.Index(names, name="covariate"))


def overlap_table(propensity, treated, *, weights=None) -> pd.DataFrame:
    """Distribution of the propensity score by group, and the weights' effective sizes.

    Returns
    -------
    DataFrame
        Columns ``treated`` and ``control``; rows ``n``, ``min``, ``p01``, ``p05``,
        ``median``, ``p95``, ``p99``, ``max`` of the propensity score,
        ``outside_other_range`` (share of the group whose score lies beyond the
        other group's range: treated above the highest control score or below
        the lowest; controls likewise), ``effective_n`` and ``max_weight_share``
        (the largest single weight over the group's total) of the adjusted
        comparison.

    Examples
    --------
    >>> tab = overlap_table([0.2, 0.4, 0.6, 0.9], [False, False, True, True])
    >>> float(tab.loc["outside_other_range", "treated"])
    1.0
    """
    e = np.asarray(propensity, dtype=np.float64)
    t = np.asarray(treated, dtype=bool)
    w = np.ones(len(t)) if weights is None else np.asarray(weights, dtype=np.float64)
    rows = ["n", "min", "p01", "p05", "median", "p95", "p99", "max", "outside_other_range",
            "effective_n", "max_weight_share"]
    cols = {}
    for name, g, o in (("treated", t, ~t), ("control", ~t, t)):
        eg, eo, wg = e[g], e[o], w[g]
        if len(eg):
            q = np.quantile(eg, [0.01, 0.05, 0.5, 0.95, 0.99])
            outside = float(np.mean((eg > eo.max()) | (eg < eo.min()))) if len(eo) else np.nan
            vals = [len(eg), eg.min(), *q, eg.max(), outside, effective_sample_size(wg),
                    float(wg.max() / wg.sum()) if wg.sum() > 0 else np.nan]
        else:
            vals = [0] + [np.nan] * (len(rows) - 1)
        cols[name] = np.asarray(vals, dtype=np.float64)
    return pd.DataFrame(cols, index=pd.Index(rows, name="diagnostic"))
