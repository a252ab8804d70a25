"""Metrics of risk scores: calibration error, precision and recall at a capacity, one table per scorer."""

from __future__ import annotations

import numpy as np
import pandas as pd


def expected_calibration_error(y_true, prob, *, n_bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins.

    The mean over bins of ``|observed rate - mean predicted probability|``,
    weighted by the share of rows in each bin.

    Examples
    --------
    >>> expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
    0.0
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.clip(np.asarray(prob, dtype=np.float64), 0.0, 1.0)
    if not len(y):
        return float("nan")
    b = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    n = np.bincount(b, minlength=n_bins)
    sy = np.bincount(b, weights=y, minlength=n_bins)
    sp = np.bincount(b, weights=p, minlength=n_bins)
    used = n > 0
    return float(np.sum(np.abs(sy[used] - sp[used])) / len(y))


def precision_recall_at_k(y_true, score, as_of_days, *, k: int, random_state: int = 0) -> tuple[float, float]:
    """Mean precision and recall at a capacity of ``k`` people per as-of date.

    On each date the ``k`` highest scores are reviewed (ties broken at random
    with a fixed seed); precision is the share of them with the outcome,
    recall the share of that date's outcomes among them. Dates without any
    outcome do not count towards recall.

    Examples
    --------
    >>> precision_recall_at_k([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], [1, 1, 1, 1], k=2)
    (0.5, 0.5)
    """
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    d = np.asarray(as_of_days)
    tie = np.random.default_rng(random_state).random(len(y))
    order = np.lexsort((tie, -s, d))
    y, d = y[order], d[order]
    first = np.r_[0, np.flatnonzero(d[1:] != d[:-1]) + 1]
    rank = np.arange(len(y)) - np.repeat(first, np.diff(np.r_[first, len(y)]))
    top = rank < k
    groups = np.repeat(np.arange(len(first)), np.diff(np.r_[first, len(y)]))
    hits = np.bincount(groups[top], weights=y[top], minlength=len(first))
    size = np.bincount(groups[top], minlength=len(first))
    pos = np.bincount(groups, weights=y, minlength=len(first))
    precision = float(np.mean(hits / np.maximum(size, 1)))
    has = pos > 0
    recall = float(np.mean(hits[has] / pos[has])) if has.any() else float("nan")
    return precision, recall


def evaluate(y_true, scores: dict[str, np.ndarray], as_of_days, *, k: int = 50) -> pd.DataFrame:
    """Metrics of several score columns on the same rows: one row per scorer.

    Columns: ``roc_auc``, ``average_precision``, ``brier``, ``ece``,
    ``precision_at_k``, ``recall_at_k``, ``k``, ``n``, ``prevalence``.
    """
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y = np.asarray(y_true, dtype=bool)
    rows = []
    for name, p in scores.items():
        p = np.asarray(p, dtype=np.float64)
        both = 0 < y.sum() < len(y)
        prec, rec = precision_recall_at_k(y, p, as_of_days, k=k)
        rows.append({
            "scorer": name,
            "roc_auc": roc_auc_score(y, p) if both else np.nan,
            "average_precision": average_precision_score(y, p) if both else np.nan,
            "brier": brier_score_loss(y, p),
            "ece": expected_calibration_error(y, p),
            "precision_at_k": prec,
            "recall_at_k": rec,
            "k": k,
            "n": len(y),
            "prevalence": float(y.mean()) if len(y) else np.nan,
        })
    return pd.DataFrame(rows).set_index("scorer")
