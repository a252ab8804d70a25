"""The training reference a model carries for monitoring: decile edges and shares of every input.

Computed by :func:`iizrisk.model.train` on the most recent training slice
(the calibration months) and written into the manifest under ``"reference"``;
:mod:`iizrisk.monitoring` compares each night's inputs and risks with it
(population stability index).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["feature_reference"]


def _edges(values: np.ndarray, bins: int) -> np.ndarray:
    v = values[~np.isnan(values)]
    if not len(v):
        return np.zeros(0)
    e = np.unique(np.quantile(v, np.arange(1, bins) / bins))
    # a point mass at the top (days registered in a window: 365 or 366, 181 to 184 with the calendar)
    # must not move between bins from one month to the next: edges near the maximum join the top bin
    top = float(v.max())
    return e[e < top - 0.03 * abs(top)] if top > 0 else e


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of the bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)`` and of missing values (last)."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    missing = np.isnan(values)
    b = np.searchsorted(np.asarray(edges, dtype=np.float64), values[~missing], side="left")
    counts = np.bincount(b, minlength=len(edges) + 1).astype(np.float64)
    out = np.r_[counts, missing.sum()]
    return out / n if n else out


def feature_reference(X: pd.DataFrame, *, risk=None, bins: int = 10, max_rows: int = 500_000,
                      random_state: int = 0) -> dict[str, Any]:
    """The training reference of every feature (and of the risks): decile edges and shares.

    Stored in the model's manifest under ``"reference"`` (plain JSON numbers).
    ``max_rows`` rows at most are used (a fixed random sample).
    """
    n = len(X)
    rows = np.arange(n)
    if n > max_rows:
        rows = np.sort(np.random.default_rng(random_state).choice(n, max_rows, replace=False))
    feats = {}
    for c in X.columns:
        v = np.asarray(X[c].to_numpy(dtype=np.float64, na_value=np.nan))[rows]
        e = _edges(v, bins)
        feats[str(c)] = {"edges": [float(x) for x in e], "shares": [float(x) for x in _bin_shares(v, e)]}
    ref: dict[str, Any] = {"method": f"population stability index over training deciles ({bins} bins, "
                                     "missing values a bin of their own)", "bins": int(bins), "rows": int(len(rows)),
                           "features": feats}
    if isinstance(X.index, pd.MultiIndex) and "as_of" in X.index.names:
        d = X.index.get_level_values("as_of")
        ref["as_of"] = [pd.Timestamp(d.min()).date().isoformat(), pd.Timestamp(d.max()).date().isoformat()]
    if risk is not None:
        r = np.asarray(risk, dtype=np.float64)[rows]
        e = _edges(r, bins)
        ref["score"] = {"edges": [float(x) for x in e], "shares": [float(x) for x in _bin_shares(r, e)],
                        "mean": float(np.nanmean(r))}
    return ref
