"""Kaplan-Meier estimator with Greenwood confidence bands (log-log transformed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from .._results import OutputFigure, OutputTable, ResultMixin
from ..errors import ValidationError

__all__ = ["KaplanMeier"]


def _positions(mask: np.ndarray) -> str:
    """The first few 0-based positions of ``mask`` (positions, not index labels: those may be pseudonyms)."""
    pos = np.flatnonzero(mask)
    shown = ", ".join(str(int(i)) for i in pos[:5])
    return f"{len(pos)} row(s) (positions {shown}{', ...' if len(pos) > 5 else ''}, counted from 0)"


def _name(values, default: str) -> str:
    name = getattr(values, "name", None)
    return str(name) if isinstance(name, str) and name else default


def _events(event_observed, n: int) -> np.ndarray:
    """0/1 or True/False events as bool; a missing or other value raises ValidationError."""
    if event_observed is None:
        return np.ones(n, dtype=bool)
    name = _name(event_observed, "event_observed")
    arr = np.asarray(event_observed)
    if arr.dtype == bool:
        return arr.ravel()
    if arr.dtype.kind in "iuf":
        num = arr.astype(np.float64, copy=False).ravel()
    else:  # object, pandas nullable (pd.NA), text: missing values first, then the others must be 0/1
        ser = pd.Series(event_observed.to_numpy() if isinstance(event_observed, (pd.Series, pd.Index))
                        else arr.ravel())
        missing = ser.isna().to_numpy()
        num = np.full(len(ser), np.nan)
        num[~missing] = pd.to_numeric(ser[~missing].astype(object), errors="coerce").astype(np.float64)
        bad = ~missing & np.isnan(num)
        if bad.any():
            raise ValidationError(f"{name}: {_positions(bad)} hold neither 0/1 nor True/False; an event "
                                  "is 1/True (observed) or 0/False (censored)")
    missing = np.isnan(num)
    if missing.any():
        raise ValidationError(f"{name}: {_positions(missing)} missing; an event is 1/True (observed) or "
                              "0/False (censored), never missing: fill or drop those rows")
    other = ~np.isin(num, [0.0, 1.0])
    if other.any():
        raise ValidationError(f"{name}: {_positions(other)} hold neither 0 nor 1; an event is 1/True "
                              "(observed) or 0/False (censored)")
    return num == 1.0


class KaplanMeier(ResultMixin):
    """Kaplan-Meier estimate of a survival function, with pointwise confidence bands.

    The bands use Greenwood's variance on the log(-log S) scale (the
    "exponential Greenwood" bands of lifelines), so they stay inside [0, 1].
    With ``weights`` (e.g. matching weights) the counts at risk and of events
    are weighted sums; Greenwood's formula on weighted counts is then an
    approximation, good when the weights are few and moderate (as after
    matching).

    Parameters
    ----------
    alpha : float, default 0.05
        The bands cover ``1 - alpha``.

    Attributes
    ----------
    survival_function_ : DataFrame
        ``S(t)`` at time 0 and at every distinct observed time (index ``timeline``).
    confidence_interval_ : DataFrame
        ``lower`` and ``upper`` band of ``S(t)``, same index.
    cumulative_density_ : DataFrame
        ``1 - S(t)``: the cumulative incidence of the event (no competing risks).
    event_table : DataFrame
        Per distinct time: ``removed``, ``observed`` (events), ``censored``,
        ``at_risk`` (weighted when weights were given).
    median_survival_time_ : float
        First time at which ``S(t) <= 0.5`` (inf when never reached).

    Examples
    --------
    >>> km = KaplanMeier().fit([1, 2, 2, 3, 5], [1, 1, 0, 1, 0], label="all")
    >>> km.survival_function_["all"].round(3).tolist()
    [1.0, 0.8, 0.6, 0.3, 0.3]
    >>> km.median_survival_time_
    3.0
    """

    def __init__(self, *, alpha: float = 0.05):
        self.alpha = alpha

    def fit(self, durations, event_observed=None, *, weights=None, label: str = "KM_estimate"
            ) -> KaplanMeier:
        """Estimate the survival function.

        Parameters
        ----------
        durations : array-like of float
            Time from the origin to the event or to censoring (>= 0).
        event_observed : array-like of bool, optional
            True (or 1) when the event was observed, False (or 0) when censored
            (default: all events). A missing value (NaN, None, pd.NA) or any
            other value raises :class:`~iizrisk.errors.ValidationError` naming
            the column and the rows; it is never counted as an event.
        weights : array-like of float, optional
            Non-negative case weights.
        label : str
            Column name of the estimate.

        Returns
        -------
        self

        Raises
        ------
        ValidationError
            A missing or non-0/1 event, a duration that is missing, infinite
            or negative, a weight that is missing, infinite or negative
            (the message names the column and the rows).
        """
        t = np.asarray(durations, dtype=np.float64).ravel()
        w = np.ones(len(t)) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
        e_len = len(t) if event_observed is None else np.size(np.asarray(event_observed))
        if not (len(t) == e_len == len(w)):
            raise ValueError("durations, event_observed and weights must have the same length")
        e = _events(event_observed, len(t))
        bad = ~np.isfinite(t) | (t < 0)
        if bad.any():
            raise ValidationError(f"{_name(durations, 'durations')}: {_positions(bad)} missing, infinite or "
                                  "negative; durations must be finite numbers >= 0")
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            raise ValidationError(f"{_name(weights, 'weights')}: {_positions(bad)} missing, infinite or "
                                  "negative; weights must be finite and >= 0")
        self.label = label
        times, inv = np.unique(t, return_inverse=True)
        removed = np.bincount(inv, weights=w, minlength=len(times))
        observed = np.bincount(inv, weights=w * e, minlength=len(times))
        at_risk = removed[::-1].cumsum()[::-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(at_risk > 0, 1.0 - observed / np.where(at_risk > 0, at_risk, 1.0), 1.0)
            surv = np.cumprod(step)
            green = np.where((at_risk > observed) & (observed > 0),
                             observed / (at_risk * (at_risk - observed)), 0.0)
            green = np.where((at_risk <= observed) & (observed > 0), np.inf, green)
            var_sum = np.cumsum(green)
            z = norm.ppf(1 - self.alpha / 2)
            log_s = np.log(surv)
            v = np.log(-log_s)
            se = np.sqrt(var_sum) / np.abs(log_s)
            lower = np.exp(-np.exp(v + z * se))
            upper = np.exp(-np.exp(v - z * se))
        lower = np.where(surv >= 1.0, 1.0, np.where(surv <= 0.0, 0.0, lower))
        upper = np.where(surv >= 1.0, 1.0, np.where(surv <= 0.0, 0.0, upper))
        # time 0 row (unless 0 is an observed time)
        if len(times) and times[0] == 0:
            idx = times
        else:
            idx = np.r_[0.0, times]
            surv, lower, upper = np.r_[1.0, surv], np.r_[1.0, lower], np.r_[1.0, upper]
            removed, observed, at_risk = np.r_[0.0, removed], np.r_[0.0, observed], \
                np.r_[at_risk[0] if len(at_risk) else 0.0, at_risk]
        index = pd.Index(idx, name="timeline")
        self.survival_function_ = pd.DataFrame({label: surv}, index=index)
        self.cumulative_density_ = pd.DataFrame({label: 1.0 - surv}, index=index)
        self.confidence_interval_ = pd.DataFrame({f"{label}_lower_{1 - self.alpha:g}": lower,
                                                  f"{label}_upper_{1 - self.alpha:g}": upper}, index=index)
        self.event_table = pd.DataFrame({"removed": removed, "observed": observed,
                                         "censored": removed - observed, "at_risk": at_risk}, index=index)
        below = np.flatnonzero(surv <= 0.5)
        self.median_survival_time_ = float(idx[below[0]]) if len(below) else float("inf")
        return self

    def _check(self) -> None:
        if not hasattr(self, "survival_function_"):
            raise AttributeError("KaplanMeier is not fitted yet: call fit(durations, event_observed)")

    def survival_function_at_times(self, times) -> pd.Series:
        """``S(t)`` at the given times (right-continuous step function)."""
        self._check()
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        idx = self.survival_function_.index.to_numpy()
        pos = np.searchsorted(idx, times, side="right") - 1
        vals = self.survival_function_[self.label].to_numpy()[np.maximum(pos, 0)]
        return pd.Series(np.where(pos >= 0, vals, 1.0), index=times, name=self.label)

    def confidence_interval_at_times(self, times) -> pd.DataFrame:
        """Lower and upper band at the given times."""
        self._check()
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        idx = self.survival_function_.index.to_numpy()
        pos = np.maximum(np.searchsorted(idx, times, side="right") - 1, 0)
        return pd.DataFrame(self.confidence_interval_.to_numpy()[pos], index=times,
                            columns=self.confidence_interval_.columns)

    def at_risk_at_times(self, times) -> pd.Series:
        """Number (weight) of units still at risk just before each time."""
        self._check()
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        et = self.event_table
        idx = et.index.to_numpy()
        pos = np.searchsorted(idx, times, side="left")
        total = et["removed"].to_numpy()
        after = np.r_[total[::-1].cumsum()[::-1], 0.0]
        return pd.Series(after[pos], index=times, name="at_risk")

    def plot(self, ax=None, *, ci: bool = True, cumulative: bool = False, **kwargs):
        """Step plot of ``S(t)`` (or ``1 - S(t)`` with ``cumulative=True``) with the band.

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        self._check()
        if ax is None:
            _, ax = plt.subplots()
        x = self.survival_function_.index.to_numpy()
        y = self.survival_function_[self.label].to_numpy()
        lo, hi = self.confidence_interval_.to_numpy().T
        if cumulative:
            y, lo, hi = 1 - y, 1 - hi, 1 - lo
        (line,) = ax.step(x, y, where="post", label=kwargs.pop("label", self.label), **kwargs)
        if ci:
            ax.fill_between(x, lo, hi, step="post", alpha=0.25, color=line.get_color(), linewidth=0)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("time")
        ax.set_ylabel("cumulative incidence" if cumulative else "survival")
        return ax

    # ------------------------------------------------------------------ result protocol
    def _fitted(self) -> bool:
        return hasattr(self, "survival_function_")

    @property
    def summary(self) -> pd.DataFrame:
        """One row (the label): units, events, censored, median time (with band), last time, ``S`` there."""
        self._check()
        et = self.event_table
        s = self.survival_function_[self.label]
        ci = self.confidence_interval_
        lo_col, hi_col = ci.columns
        times = s.index.to_numpy()
        # the median's band: first times at which the band's bounds fall to 0.5 (inf when never)
        lower_median = times[ci[lo_col].to_numpy() <= 0.5]
        upper_median = times[ci[hi_col].to_numpy() <= 0.5]
        lvl = f"{1 - self.alpha:.0%}"
        return pd.DataFrame({
            "n": [float(et["removed"].sum())], "events": [float(et["observed"].sum())],
            "censored": [float(et["censored"].sum())], "median": [self.median_survival_time_],
            f"median lower {lvl}": [float(lower_median[0]) if len(lower_median) else float("inf")],
            f"median upper {lvl}": [float(upper_median[0]) if len(upper_median) else float("inf")],
            "last_time": [float(times[-1])], "survival_at_last_time": [float(s.iloc[-1])],
        }, index=pd.Index([self.label], name="curve"))

    def summary_text(self, decimals: int = 3) -> str:
        """The text that :meth:`print_summary` prints."""
        self._check()
        return (f"<iizrisk.evaluation.KaplanMeier: {self.label!r}, {1 - self.alpha:.0%} exponential "
                f"Greenwood bands>\n{self.summary.to_string(float_format=lambda v: f'{v:.{decimals}f}')}")

    def _output_tables(self, k: int) -> list[OutputTable]:
        from ._outputs import survival_table

        tmax = float(self.survival_function_.index.max())
        step = max(1, int(np.ceil(tmax / 600)))
        grid = np.arange(0, np.ceil(tmax) + step, step)
        tab = survival_table({self.label: self}, k, 0, grid=grid)
        tab = tab.rename(columns={"arm": "curve", "month": "time", "exits": "events",
                                  "cumulative_exit": "cumulative_incidence"})
        return [OutputTable("survival", tab)]

    def _output_figures(self, tables, language: str = "en") -> list[OutputFigure]:
        from ._outputs import plot_survival_table

        tab = tables[0].frame
        if not len(tab):
            return []
        tab = tab.rename(columns={"curve": "arm", "time": "month", "events": "exits",
                                  "cumulative_incidence": "cumulative_exit"})
        return [OutputFigure("survival", plot_survival_table(
            tab, ylabel="cumulative incidence (1 - S(t))", xlabel="time",
            title=f"{self.label}: cumulative incidence (published times only)"))]

    def to_dir(self, path, *, min_cell_size: int | None = None, plots: bool = True,
               language: str | None = None, xlsx: bool | None = None) -> list:
        """Write ``survival`` (CSV with ``;`` and BOM, Parquet) and ``survival.png``: the suppressed curve.

        One row per whole time unit (coarser steps beyond 600 units) from 0 up
        to the last time: ``at_risk`` (rounded to a multiple of
        ``min_cell_size``), ``events``, ``cumulative_incidence`` with its band;
        times with fewer than ``min_cell_size`` (default 5) at risk are left
        out, and times with few events (and what would reveal them) hidden.

        Parameters
        ----------
        language, xlsx : optional
            Headers in this language, and each table also as ``.xlsx``: as for
            :meth:`iizrisk._results.ResultMixin.to_dir`.

        Returns
        -------
        list of Path
        """
        return self._write_dir(path, min_cell_size=min_cell_size, plots=plots, language=language, xlsx=xlsx)

    def __repr__(self) -> str:
        if not hasattr(self, "survival_function_"):
            return "<KaplanMeier: not fitted>"
        n = float(self.event_table["removed"].sum())
        ev = float(self.event_table["observed"].sum())
        return f"<KaplanMeier {self.label!r}: {n:g} units, {ev:g} events>"
