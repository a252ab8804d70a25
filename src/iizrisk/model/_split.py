"""Temporal splits: held-out later as-of dates after a gap of the label horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import _time


def _days_of(as_of) -> np.ndarray:
    a = np.asarray(as_of)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64)
    return _time.to_days(pd.Series(pd.to_datetime(a))).astype(np.int64)


def _as_of_of(X: pd.DataFrame, as_of) -> np.ndarray | None:
    if as_of is not None:
        days = _days_of(as_of)
        if len(days) != len(X):
            raise ValueError(f"as_of has {len(days)} values for {len(X)} rows")
        return days
    if isinstance(X.index, pd.MultiIndex) and "as_of" in X.index.names:
        return _days_of(X.index.get_level_values("as_of"))
    return None


def temporal_split(as_of_days, *, holdout_months: int, gap_months: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks (earlier, held out) of a temporal split with a gap.

    The held-out part holds the as-of dates within the last ``holdout_months``
    calendar months; the earlier part holds the dates whose label horizon
    (``gap_months`` after the date) ends strictly before the first held-out date.

    Examples
    --------
    >>> days = _time.to_days(pd.Series(pd.date_range("2020-01-31", periods=24, freq="ME")))
    >>> early, late = temporal_split(days, holdout_months=3, gap_months=12)
    >>> int(late.sum()), int(early.sum())
    (3, 9)
    """
    d = np.asarray(as_of_days, dtype=np.int64)
    last = int(d.max())
    cut = int(_time.add_months(last, -int(holdout_months)))
    late = d > cut
    if not late.any() or late.all():
        raise ValueError("the temporal split needs as-of dates both before and within the held-out period")
    first_late = int(d[late].min())
    early = _time.add_months(d, int(gap_months)).astype(np.int64) < first_late
    return early, late
