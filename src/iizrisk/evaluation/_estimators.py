"""Effect estimators for a plain table of units (one row per unit: treatment, outcome, covariates)."""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from .._results import OutputFigure, OutputTable, ResultMixin
from ..errors import IizriskError, ValidationError
from ._balance import SMD_THRESHOLD, balance_table, overlap_table
from ._matching import match_nearest
from ._propensity import fit_propensity, logit

__all__ = [
    "ASSUMPTIONS",
    "DifferenceInMeans",
    "IPWEstimator",
    "PropensityScoreMatching",
    "PropensityScoreStratification",
    "RegressionAdjustment",
    "add_missing_indicators",
]

logger = logging.getLogger("iizrisk")

#: The assumptions under which an estimate is causal, printed by every ``print_summary``.
ASSUMPTIONS = (
    "The estimate is a causal effect only if (1) there is no unmeasured confounding: given the "
    "covariates, who was treated is as good as random (nothing that drives both treatment and "
    "outcome is missing from the covariates); (2) overlap: every treated unit (every unit, for the "
    "ATE) had a real chance of being a control and vice versa (propensity scores away from 0 and "
    "1); (3) consistency and no interference: one unit's treatment does not change another's "
    "outcome. The diagnostics can reveal failures of (2) and of the adjustment (imbalance left "
    "after it), never of (1): a balanced table says nothing about confounders that are not in it."
)

_ESTIMAND_TEXT = {"ATT": "average effect on the treated", "ATE": "average effect in the population"}


# ----------------------------------------------------------------------------- input
def column_list(columns, what: str = "covariates") -> list:
    """Column names as a list: None is none, a single name (text) is one column, not its letters.

    Examples
    --------
    >>> column_list("age"), column_list(["age", "sex"]), column_list(None)
    (['age'], ['age', 'sex'], [])
    """
    if columns is None:
        return []
    if isinstance(columns, (str, bytes)):
        return [columns.decode() if isinstance(columns, bytes) else columns]
    try:
        return list(columns)
    except TypeError:
        raise TypeError(f"{what} must be a column name or a list of column names, "
                        f"got {type(columns).__name__}") from None


def add_missing_indicators(df: pd.DataFrame, columns, *, fill: str = "median"
                           ) -> tuple[pd.DataFrame, list[str]]:
    """Fill missing covariate values and add a 0/1 indicator column per column with gaps.

    The estimators refuse missing covariates; this is the usual simple remedy
    (the indicator lets the propensity model treat "unknown" as its own level).

    Parameters
    ----------
    df : DataFrame
    columns : list of str
        Covariates to prepare.
    fill : {"median", "zero"}
        Value put into the gaps.

    Returns
    -------
    (DataFrame, list of str)
        A copy of ``df`` with the gaps filled and ``<column>_missing`` columns
        added, and the covariate names to use (the columns plus the indicators).

    Examples
    --------
    >>> df = pd.DataFrame({"age": [30.0, None, 50.0]})
    >>> out, cols = add_missing_indicators(df, ["age"])
    >>> cols, out["age"].tolist(), out["age_missing"].tolist()
    (['age', 'age_missing'], [30.0, 40.0, 50.0], [0.0, 1.0, 0.0])
    """
    out = df.copy()
    names = []
    for c in column_list(columns, "columns"):
        col = pd.to_numeric(out[c], errors="raise").astype(np.float64)
        names.append(c)
        miss = col.isna().to_numpy()
        if miss.any():
            value = 0.0 if fill == "zero" or miss.all() else float(np.nanmedian(col.to_numpy()))
            out[c] = col.fillna(value)
            out[f"{c}_missing"] = miss.astype(np.float64)
            names.append(f"{c}_missing")
        else:
            out[c] = col
    return out, names


def _numeric(df: pd.DataFrame, col: str, what: str) -> np.ndarray:
    s = df[col]
    if isinstance(s, pd.DataFrame):
        raise ValidationError(f"column {col!r} appears more than once")
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        if s.isna().any():
            rows = [str(x) for x in s.index[s.isna().to_numpy()][:5]]
            raise ValidationError(
                f"{what} column {col!r}: {int(s.isna().sum())} missing value(s) (index {', '.join(rows)}"
                f"{', ...' if s.isna().sum() > 5 else ''}); drop those rows or fill them "
                "(add_missing_indicators for covariates)")
        values = s.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():  # +-inf: refused here, not taken for a failure of overlap (or a silent estimate)
            rows = [str(x) for x in s.index[bad][:5]]
            raise ValidationError(
                f"{what} column {col!r}: {int(bad.sum())} infinite value(s) (index {', '.join(rows)}"
                f"{', ...' if bad.sum() > 5 else ''}); the estimators need finite numbers (an infinite value is "
                "often a ratio divided by zero): replace those values with finite ones or drop those rows")
        return values
    raise ValidationError(f"{what} column {col!r} has type {s.dtype}; it must be numeric or boolean")


def _prepare(df, treatment: str, outcome: str, covariates, need_covariates: bool):
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"fit needs a pandas DataFrame with one row per unit, got {type(df).__name__}")
    covariates = column_list(covariates)
    missing = [c for c in [treatment, outcome, *covariates] if c not in df.columns]
    if missing:
        raise ValidationError(f"column(s) {missing} not in the table; columns: {list(df.columns)}")
    if need_covariates and not covariates:
        raise ValueError("this estimator adjusts for covariates: pass covariates=[...]")
    if treatment in covariates or outcome in covariates:
        raise ValueError("the treatment and outcome columns cannot be covariates")
    t_raw = _numeric(df, treatment, "treatment")
    if not np.isin(t_raw, [0.0, 1.0]).all():
        raise ValidationError(f"treatment column {treatment!r} must hold 0/1 or True/False only")
    t = t_raw.astype(bool)
    y = _numeric(df, outcome, "outcome")
    X = np.column_stack([_numeric(df, c, "covariate") for c in covariates]) if covariates \
        else np.zeros((len(df), 0))
    n1, n0 = int(t.sum()), int((~t).sum())
    if n1 < 2 or n0 < 2:
        raise ValidationError(f"need at least 2 treated and 2 controls, got {n1} treated and {n0} controls")
    return t, y, X, covariates


# ----------------------------------------------------------------------------- core
@dataclass
class _Fit:
    estimate: float
    weights: np.ndarray | None = None  # per unit, for the balance after adjustment
    propensity: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def propensity_words(model) -> str:
    """The propensity model in words, with its penalty (stated in every method line that uses one).

    Examples
    --------
    >>> propensity_words(None)
    'propensity: logistic regression on standardised covariates, L2 penalty C=1'
    """
    from ._propensity import LogisticPropensity, default_propensity_model

    m = default_propensity_model() if model is None else model
    if isinstance(m, LogisticPropensity):
        pen = "unpenalised" if m.C is None or np.isinf(m.C) else f"L2 penalty C={m.C:g}"
        return f"propensity: logistic regression on standardised covariates, {pen}"
    C = getattr(m, "C", None)
    return f"propensity: {type(m).__name__}" + (f" (C={C:g})" if isinstance(C, int | float) else "")


def _hajek_diff(t, y, w) -> float:
    w1, w0 = w[t], w[~t]
    if w1.sum() <= 0 or w0.sum() <= 0:
        return np.nan
    return float(w1 @ y[t] / w1.sum() - w0 @ y[~t] / w0.sum())


class _EffectEstimator(ResultMixin):
    """Shared machinery: input checks, bootstrap, balance, overlap, summaries, plots."""

    _method = ""
    _method_words = "adjustment"  # for titles: "before and after <words>"
    _estimands: tuple[str, ...] = ("ATT", "ATE")
    _needs_covariates = True
    _has_after_balance = True
    _weights_diagnostic = True  # effective sample sizes (not for matching, which drops controls by design)
    _log_diagnostics = True  # log warnings at fit (a study collects them instead)

    # subclasses set their own parameters in __init__ and call these
    def _init_common(self, estimand, n_bootstrap, alpha, random_state, propensity_model):
        self.estimand = estimand
        self.n_bootstrap = n_bootstrap
        self.alpha = alpha
        self.random_state = random_state
        self.propensity_model = propensity_model

    # ---------------------------------------------------------------- to override
    def _estimate(self, t, y, X, groups=None) -> _Fit:  # pragma: no cover - abstract
        raise NotImplementedError

    def _describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _bootstrap(self, t, y, X, groups, fit: _Fit, rng) -> np.ndarray:
        """Stratified bootstrap (treated and controls resampled separately), whole procedure refitted."""
        i1, i0 = np.flatnonzero(t), np.flatnonzero(~t)
        out = np.full(int(self.n_bootstrap), np.nan)
        for b in range(len(out)):
            idx = np.concatenate([rng.choice(i1, len(i1)), rng.choice(i0, len(i0))])
            g = None if groups is None else groups[idx]
            try:
                out[b] = self._estimate(t[idx], y[idx], X[idx], g).estimate
            except IizriskError:  # user input (also a ValueError): not a failed replicate, as before
                raise
            except (ValueError, np.linalg.LinAlgError) as exc:
                logger.debug("bootstrap replicate %d failed: %s", b, exc)
        return out

    def _groups(self, df) -> np.ndarray | None:
        return None

    # ---------------------------------------------------------------- fit
    def _check_params(self) -> None:
        if self.estimand not in self._estimands:
            raise ValueError(f"{type(self).__name__}: estimand must be one of {self._estimands}, "
                             f"got {self.estimand!r}")
        if not (0 < float(self.alpha) < 1):
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha!r}")
        if int(self.n_bootstrap) < 0:
            raise ValueError(f"n_bootstrap must be >= 0, got {self.n_bootstrap!r}")

    def fit(self, df: pd.DataFrame, treatment: str, outcome: str, covariates=None):
        """Estimate the effect of ``treatment`` on ``outcome`` adjusting for ``covariates``.

        Parameters
        ----------
        df : DataFrame
            One row per unit.
        treatment : str
            Column of 0/1 or bool: 1 for treated units.
        outcome : str
            Numeric or bool column (a proportion's difference for 0/1 outcomes).
        covariates : list of str, or str
            Numeric or bool columns measured before treatment, without gaps
            (see :func:`add_missing_indicators`); a single name is one column.

        Returns
        -------
        self
        """
        self._check_params()
        t, y, X, names = _prepare(df, treatment, outcome, covariates, self._needs_covariates)
        groups = self._groups(df)
        rng = np.random.default_rng(self.random_state)
        # the estimate once, with every BLAS thread (a national study's propensity fit multiplies matrices of
        # millions of rows); the bootstrap's many small products on one (more only add overhead and thrash
        # on busy hosts)
        fit = self._estimate(t, y, X, groups)
        if not np.isfinite(fit.estimate):
            raise ValidationError(f"{type(self).__name__}: no estimate possible "
                                  f"({fit.info.get('why', 'no comparable units')})")
        with threadpool_limits(limits=1, user_api="blas"):
            boot = self._bootstrap(t, y, X, groups, fit, rng) if int(self.n_bootstrap) > 0 else np.zeros(0)
        failed = int(np.isnan(boot).sum())
        if failed:
            logger.warning("%s: %d of %d bootstrap replicates gave no estimate and were left out",
                           type(self).__name__, failed, len(boot))
        boot = boot[np.isfinite(boot)]
        self.treatment_, self.outcome_, self.covariates_ = treatment, outcome, names
        self.treated_ = pd.Series(t, index=df.index, name=treatment)
        self.estimate_ = float(fit.estimate)
        self.bootstrap_estimates_ = boot
        self.n_bootstrap_failed_ = failed
        if len(boot) >= 2:
            self.standard_error_ = float(np.std(boot, ddof=1))
            lo, hi = np.quantile(boot, [self.alpha / 2, 1 - self.alpha / 2])
            self.confidence_interval_ = (float(lo), float(hi))
        else:
            self.standard_error_ = float("nan")
            self.confidence_interval_ = (float("nan"), float("nan"))
        se = self.standard_error_
        self.z_ = self.estimate_ / se if se and np.isfinite(se) and se > 0 else float("nan")
        self.p_value_ = float(2 * norm.sf(abs(self.z_))) if np.isfinite(self.z_) else float("nan")
        self.n_treated_, self.n_control_ = int(t.sum()), int((~t).sum())
        self.info_ = dict(fit.info)
        # diagnostics: balance and overlap (a diagnostic propensity score when the method has none)
        ps = fit.propensity
        if ps is None and X.shape[1]:
            ps = fit_propensity(X, t, self.propensity_model)
        self.propensity_ = None if ps is None else pd.Series(ps, index=df.index, name="propensity")
        self.weights_ = None if fit.weights is None else pd.Series(fit.weights, index=df.index, name="weight")
        if X.shape[1]:
            self.balance_ = balance_table(X, t, weights=fit.weights if self._has_after_balance else None,
                                          names=names)
        else:
            self.balance_ = balance_table(np.zeros((len(t), 0)), t, names=[])
        self.overlap_ = None if ps is None else overlap_table(ps, t, weights=fit.weights)
        self._store_cells(t, y, X)
        self.diagnostics_ = self._diagnose()
        for level, msg in self.diagnostics_:
            if level == "warning":
                logger.log(logging.WARNING if self._log_diagnostics else logging.DEBUG, "%s: %s",
                           type(self).__name__, msg)
        return self

    # ---------------------------------------------------------------- diagnostics
    def _diagnose(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        bal = self.balance_
        if len(bal):
            before = bal["smd_before"].abs()
            after = bal["smd_after"].abs()
            if self._has_after_balance and after.notna().any():
                bad = after[after > SMD_THRESHOLD].sort_values(ascending=False)
                msg = (f"balance: {len(bal)} covariates; max |SMD| {before.max():.3f} before, "
                       f"{after.max():.3f} after adjustment (threshold {SMD_THRESHOLD}")
                if self.overlap_ is not None:
                    # an SMD's standard error by chance alone, at the weighted group sizes
                    n1 = float(self.overlap_.loc["effective_n", "treated"])
                    n0 = float(self.overlap_.loc["effective_n", "control"])
                    if n1 > 0 and n0 > 0:
                        msg += f"; chance alone gives |SMD| of about {np.sqrt(1 / n1 + 1 / n0):.2f} at these sizes"
                msg += ")"
                if len(bad):
                    names = ", ".join(f"{k} ({v:.2f})" for k, v in bad.head(5).items())
                    out.append(("warning", f"{msg}; {len(bad)} imbalanced after adjustment: {names}"
                                + (", ..." if len(bad) > 5 else "")))
                else:
                    out.append(("ok", msg))
                vr = bal["variance_ratio_after"]
                binary = ((bal["mean_treated_before"].between(0, 1)) & (bal["mean_control_before"].between(0, 1)))
                off = vr[(~binary) & ((vr < 0.5) | (vr > 2))]
                if len(off):
                    out.append(("warning", f"spread: {len(off)} covariate(s) with a variance ratio outside "
                                f"[0.5, 2] after adjustment: {', '.join(off.index[:5])}"))
            else:
                n_bad = int((before > SMD_THRESHOLD).sum())
                out.append(("info", f"balance: {len(bal)} covariates, {n_bad} with |SMD| > {SMD_THRESHOLD} "
                            f"before adjustment (max {before.max():.3f}); this method does not reweight, "
                            "so there is no balance after adjustment to check"))
        if self.overlap_ is not None:
            ov = self.overlap_
            out_t = float(ov.loc["outside_other_range", "treated"])
            out_c = float(ov.loc["outside_other_range", "control"])
            msg = (f"overlap: {out_t:.1%} of treated and {out_c:.1%} of controls have a propensity score "
                   "outside the other group's range; treated scores "
                   f"{ov.loc['min', 'treated']:.3f}..{ov.loc['max', 'treated']:.3f}, controls "
                   f"{ov.loc['min', 'control']:.3f}..{ov.loc['max', 'control']:.3f}")
            relevant = out_t if self.estimand == "ATT" else max(out_t, out_c)
            out.append(("warning" if relevant > 0.01 else "ok", msg))
            if self.estimand == "ATE":
                ps = self.propensity_
                assert ps is not None  # fit sets propensity_ and overlap_ from the same scores
                extreme = float(np.mean((ps < 0.01) | (ps > 0.99)))
                if extreme > 0.01:
                    out.append(("warning", f"overlap: {extreme:.1%} of units have a propensity score below "
                                "0.01 or above 0.99; the ATE rests on few comparable units"))
            if self.weights_ is not None and self._has_after_balance and self._weights_diagnostic:
                for arm in ("treated", "control"):
                    n = float(ov.loc["n", arm])
                    ess = float(ov.loc["effective_n", arm])
                    share = float(ov.loc["max_weight_share", arm])
                    if n <= 0:
                        continue
                    level = "warning" if (ess < 0.2 * n and ess < 50) or share > 0.1 else "ok"
                    out.append((level, f"weights: effective sample size of the {arm} {ess:.1f} of {n:.0f}; "
                                f"the largest weight holds {share:.1%} of the {arm} total"))
        out.extend(self._extra_diagnostics())
        return out

    def _extra_diagnostics(self) -> list[tuple[str, str]]:
        return []

    # ---------------------------------------------------------------- presentation
    def _check_fitted(self) -> None:
        if not hasattr(self, "estimate_"):
            raise AttributeError(f"{type(self).__name__} is not fitted yet: call fit(df, treatment, outcome, covariates)")

    @property
    def summary(self) -> pd.DataFrame:
        """One row (the estimand): estimate, se, interval, z, p, group sizes."""
        self._check_fitted()
        lvl = f"{1 - self.alpha:.0%}"
        lo, hi = self.confidence_interval_
        return pd.DataFrame({
            "estimate": [self.estimate_], "se": [self.standard_error_],
            f"lower {lvl}": [lo], f"upper {lvl}": [hi], "z": [self.z_], "p": [self.p_value_],
            "n_treated": [self.n_treated_], "n_control": [self.n_control_],
        }, index=pd.Index([self.estimand], name="estimand"))

    def _header(self) -> list[tuple[str, str]]:
        return [
            ("method", self._describe()),
            ("treatment", f"{self.treatment_} ({self.n_treated_:,} treated, {self.n_control_:,} controls)"),
            ("outcome", str(self.outcome_)),
            ("estimand", f"{self.estimand} ({_ESTIMAND_TEXT.get(self.estimand, self.estimand)})"),
            ("covariates", f"{len(self.covariates_)}"),
            ("bootstrap", f"{len(self.bootstrap_estimates_)} replicates, percentile interval"
             + (f" ({self.n_bootstrap_failed_} failed)" if self.n_bootstrap_failed_ else "")
             + f", random_state={self.random_state!r}"),
        ]

    def summary_text(self, decimals: int = 3) -> str:
        """The text that :meth:`print_summary` prints."""
        self._check_fitted()
        lines = [f"<iizrisk.evaluation.{type(self).__name__}: {self.estimand} of {self.treatment_!r} "
                 f"on {self.outcome_!r}>"]
        head = self._header()
        width = max(len(k) for k, _ in head)
        lines += [f"{k.rjust(width)} = {v}" for k, v in head]
        lines += ["", self.summary.to_string(float_format=lambda v: f"{v:.{decimals}f}"), "",
                  f"Balance: {self._balance_verdict()}", "", "Diagnostics"]
        marks = {"ok": "  ok ", "info": "  -- ", "warning": "  !! "}
        lines += [f"{marks.get(level, '     ')}{msg}" for level, msg in self.diagnostics_] or ["  (none)"]
        lines += ["", "Assumptions", "  " + ASSUMPTIONS]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not hasattr(self, "estimate_"):
            return f"<b>{type(self).__name__}</b>: not fitted"
        head = "".join(f"<tr><th style='text-align:right'>{html.escape(k)}</th><td style='text-align:left'>"
                       f"{html.escape(v)}</td></tr>" for k, v in self._header())
        diag = "".join(f"<li>{'&#9888; ' if level == 'warning' else ''}{html.escape(msg)}</li>"
                       for level, msg in self.diagnostics_)
        return (f"<b>{type(self).__name__}</b><table>{head}</table>"
                f"{self.summary.to_html(float_format=lambda v: f'{v:.3f}')}"
                f"<p><b>Balance</b>: {html.escape(self._balance_verdict())}</p>"
                f"<p><b>Diagnostics</b></p><ul>{diag}</ul>"
                f"<p><b>Assumptions</b>: {html.escape(ASSUMPTIONS)}</p>")

    def __repr__(self) -> str:
        if not hasattr(self, "estimate_"):
            return f"{type(self).__name__}(estimand={self.estimand!r})"
        lo, hi = self.confidence_interval_
        return (f"<{type(self).__name__}: {self.estimand} {self.estimate_:.4g} "
                f"[{lo:.4g}, {hi:.4g}], {self.n_treated_} treated, {self.n_control_} controls>")

    def plot(self, ax=None, *, max_covariates: int | None = 40):
        """Love plot: |standardised mean difference| of each covariate before and after adjustment.

        The title names the adjustment in words; below the axis one sentence
        says whether covariates remain above |SMD| 0.1 after it, and which.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        max_covariates : int, optional
            Show the covariates most imbalanced before adjustment (default 40).

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        from ._outputs import draw_balance

        self._check_fitted()
        n = len(self.balance_) if max_covariates is None else min(len(self.balance_), int(max_covariates))
        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 2.0 + 0.22 * max(n, 1)))
        return draw_balance(ax, self.balance_, method=self._method_words, after=self._has_after_balance,
                            max_covariates=max_covariates, before_label="before adjustment",
                            after_label="after adjustment")

    def _balance_verdict(self) -> str:
        from ._outputs import balance_verdict

        if not self._has_after_balance:
            return (f"{self._method_words} does not reweight: {int((self.balance_['smd_before'].abs() > SMD_THRESHOLD).sum())}"
                    f" of {len(self.balance_)} covariates above |SMD| {SMD_THRESHOLD} before adjustment.")
        return balance_verdict(self.balance_, self._method_words)

    # ---------------------------------------------------------------- files
    def _fitted(self) -> bool:
        return hasattr(self, "estimate_")

    def _store_cells(self, t, y, X) -> None:
        """Counts of people that :meth:`to_dir` must not show when small (kept, not the data)."""
        from ._outputs import binary_cells, binary_cells_of_columns

        groups = [t, ~t]
        pt, pc = self.info_.get("pt"), self.info_.get("pc")
        if pt is not None and pc is not None:  # matching: the matched treated and controls are groups too
            mt, mc = np.zeros(len(t), dtype=bool), np.zeros(len(t), dtype=bool)
            mt[pt], mc[pc] = True, True
            groups += [mt, mc]
        self._group_sizes_ = [int(g.sum()) for g in groups]
        self._balance_cells_ = binary_cells_of_columns(X, groups)
        yc = binary_cells(y.astype(np.float64), [t, ~t])
        if yc is not None and pt is not None and pc is not None:
            yc += [float(y[pt].sum()), float(len(pt) - y[pt].sum()), float(y[pc].sum()), float(len(pc) - y[pc].sum())]
        self._outcome_cells_ = yc

    def _output_tables(self, k: int) -> list[OutputTable]:
        from .._results import CsvFormat
        from ._outputs import suppress_balance, suppress_summary

        self._check_fitted()
        fmt = CsvFormat(index=True)
        return [OutputTable("estimate", suppress_summary(self.summary, [self._outcome_cells_], k, self.alpha),
                            csv=fmt),
                OutputTable("balance", suppress_balance(self.balance_, self._group_sizes_, self._balance_cells_, k)
                            .rename_axis("covariate"), csv=fmt)]

    def _output_figures(self, tables, language: str = "en") -> list[OutputFigure]:
        from ._outputs import method_words, plot_balance_table

        bal = tables[1].frame
        if not len(bal):
            return []
        return [OutputFigure("balance", plot_balance_table(bal, method=method_words(self, language),
                                                           after=self._has_after_balance, language=language))]

    def to_dir(self, path, *, min_cell_size: int | None = None, plots: bool = True,
               language: str | None = None, xlsx: bool | None = None) -> list:
        """Write ``estimate`` (the summary row) and ``balance`` as CSV (``;``, BOM) and Parquet, and ``balance.png``.

        Rows resting on fewer than ``min_cell_size`` people (default 5) are
        hidden: the estimate when a group or (0/1 outcome) the people with or
        without the outcome in a group are few; a 0/1 covariate whose counts in
        a group (treated, controls, and for matching the matched of each) are
        few; every covariate when a group is small.

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

    def plot_overlap(self, ax=None, *, bins: int = 30):
        """Histograms of the propensity score of treated and controls (densities).

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        self._check_fitted()
        if self.propensity_ is None:
            raise ValueError("no propensity score: the estimator was fitted without covariates")
        if ax is None:
            _, ax = plt.subplots()
        ps = self.propensity_.to_numpy()
        tr = self.treated_.to_numpy()
        edges = np.linspace(0, 1, int(bins) + 1)
        ax.hist(ps[tr], bins=edges, density=True, histtype="step", color="C3", label="treated")
        ax.hist(ps[~tr], bins=edges, density=True, histtype="step", color="C0", label="controls")
        ax.set_xlabel("propensity score")
        ax.set_ylabel("density")
        ax.set_title("Overlap of the propensity scores")
        ax.legend(fontsize="small")
        return ax




# ----------------------------------------------------------------------------- estimators
class DifferenceInMeans(_EffectEstimator):
    """The naive comparison: mean outcome of the treated minus mean outcome of the controls.

    No adjustment: unbiased only when treatment is randomised. Use it as the
    baseline that shows how much the adjusted estimators move. With
    ``covariates`` the balance table and a diagnostic propensity score show how
    different the groups are.

    Parameters
    ----------
    estimand : {"ATT", "ATE"}, default "ATT"
        Only the label: without adjustment both are the same difference.
    n_bootstrap : int, default 200
        Bootstrap replicates (treated and controls resampled separately).
    alpha : float, default 0.05
        The interval covers ``1 - alpha``.
    random_state : int, optional
    propensity_model : sklearn classifier, optional
        For the diagnostic propensity score only.

    Examples
    --------
    >>> df = pd.DataFrame({"t": [0, 0, 0, 1, 1, 1], "y": [1.0, 2, 3, 4, 5, 6]})
    >>> DifferenceInMeans(random_state=0).fit(df, "t", "y").estimate_
    3.0
    """

    _method_words = "no adjustment (naive comparison)"
    _needs_covariates = False
    _has_after_balance = False

    def __init__(self, *, estimand: str = "ATT", n_bootstrap: int = 200, alpha: float = 0.05,
                 random_state=None, propensity_model=None):
        self._init_common(estimand, n_bootstrap, alpha, random_state, propensity_model)

    def _describe(self) -> str:
        return "difference in means (no adjustment)"

    def _estimate(self, t, y, X, groups=None) -> _Fit:
        return _Fit(float(y[t].mean() - y[~t].mean()))

    def _bootstrap(self, t, y, X, groups, fit, rng) -> np.ndarray:
        y1, y0 = y[t], y[~t]
        B = int(self.n_bootstrap)
        out = np.empty(B)
        step = max(1, 2_000_000 // max(len(y), 1))  # bound memory: B x n index blocks
        for b0 in range(0, B, step):
            nb = min(step, B - b0)
            out[b0:b0 + nb] = (y1[rng.integers(0, len(y1), (nb, len(y1)))].mean(axis=1)
                               - y0[rng.integers(0, len(y0), (nb, len(y0)))].mean(axis=1))
        return out


class RegressionAdjustment(_EffectEstimator):
    """Regression adjustment (g-computation) with one linear outcome model per group.

    The control model ``E[Y | X, T=0]`` predicts what the treated would have
    had without treatment; the ATT is the treated's mean outcome minus that
    prediction, averaged over the treated. For the ATE a second model for the
    treated predicts every unit's outcome under treatment. Separate models per
    group are the same as one model with all treatment-by-covariate
    interactions.

    Parameters
    ----------
    estimand : {"ATT", "ATE"}, default "ATT"
    outcome_model : sklearn regressor, optional
        Default: ordinary least squares (with intercept). For a 0/1 outcome this
        is a linear probability model, which is fine for averages.
    n_bootstrap : int, default 200
        Bootstrap replicates (resampling within groups, models refitted).
    alpha, random_state, propensity_model
        As in :class:`DifferenceInMeans` (the propensity score is diagnostic only).

    Notes
    -----
    Regression adjustment does not reweight, so the balance table has no
    "after" columns; its risk is extrapolation: with poor overlap the control
    model is used far outside the controls' covariates. Read the overlap
    diagnostics.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=400)
    >>> t = (x + rng.normal(size=400) > 0).astype(int)
    >>> df = pd.DataFrame({"x": x, "t": t, "y": 2 * t + 3 * x + rng.normal(size=400)})
    >>> est = RegressionAdjustment(n_bootstrap=50, random_state=0).fit(df, "t", "y", ["x"])
    >>> round(est.estimate_, 1)
    2.0
    """

    _method_words = "regression adjustment"
    _has_after_balance = False

    def __init__(self, *, estimand: str = "ATT", outcome_model=None, n_bootstrap: int = 200,
                 alpha: float = 0.05, random_state=None, propensity_model=None):
        self._init_common(estimand, n_bootstrap, alpha, random_state, propensity_model)
        self.outcome_model = outcome_model

    def _describe(self) -> str:
        model = "OLS" if self.outcome_model is None else type(self.outcome_model).__name__
        return f"regression adjustment ({model} outcome model per group)"

    def _predictor(self, X, y):
        if self.outcome_model is not None:
            m = clone(self.outcome_model).fit(X, y)
            return m.predict
        A = np.column_stack([np.ones(len(X)), X])
        # scale columns for a well-conditioned least-squares problem
        scale = np.where(A.std(axis=0) > 0, A.std(axis=0), 1.0)
        scale[0] = 1.0
        beta, *_ = np.linalg.lstsq(A / scale, y, rcond=None)
        beta = beta / scale
        return lambda Z: np.column_stack([np.ones(len(Z)), Z]) @ beta

    def _estimate(self, t, y, X, groups=None) -> _Fit:
        mu0 = self._predictor(X[~t], y[~t])
        if self.estimand == "ATT":
            return _Fit(float(np.mean(y[t] - mu0(X[t]))))
        mu1 = self._predictor(X[t], y[t])
        return _Fit(float(np.mean(mu1(X) - mu0(X))))


class IPWEstimator(_EffectEstimator):
    """Inverse-probability weighting with a propensity score (logistic by default).

    ATT weights: 1 for the treated, ``e / (1 - e)`` for the controls (the
    controls are reweighted to look like the treated). ATE weights: ``1 / e``
    for the treated, ``1 / (1 - e)`` for the controls. The estimate is the
    difference of the weighted means (Hájek: weights normalised within each
    group), which is more stable than the unnormalised Horvitz-Thompson sum.

    Parameters
    ----------
    estimand : {"ATT", "ATE"}, default "ATT"
    truncate_weights : float, optional
        Cap the weights of each group at this quantile of the group's weights
        (e.g. 0.99): less variance, some bias.
    trim_propensity : float, optional
        Leave out units whose propensity score lies outside
        ``[trim_propensity, 1 - trim_propensity]`` (Crump et al.); the estimate
        then concerns the units left (logged and reported in ``info_``).
    stabilized : bool, default True
        Report stabilised weights (``weights_``: multiplied by the share of the
        group, so they average about 1). The normalised estimate does not change.
    normalize : bool, default True
        Hájek (normalised) estimate; False gives Horvitz-Thompson.
    n_bootstrap : int, default 200
        Bootstrap replicates; the propensity model is refitted on each.
    alpha, random_state
        As in :class:`DifferenceInMeans`.
    propensity_model : sklearn classifier, optional
        Default: logistic regression on standardised covariates.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=2000)
    >>> t = (rng.random(2000) < 1 / (1 + np.exp(-x))).astype(int)
    >>> df = pd.DataFrame({"x": x, "t": t, "y": 1.0 * t + 2 * x + rng.normal(size=2000)})
    >>> est = IPWEstimator(estimand="ATT", n_bootstrap=20, random_state=0).fit(df, "t", "y", ["x"])
    >>> abs(est.estimate_ - 1.0) < 0.2
    True
    """

    _method_words = "inverse-probability weighting"
    def __init__(self, *, estimand: str = "ATT", truncate_weights: float | None = None,
                 trim_propensity: float | None = None, stabilized: bool = True, normalize: bool = True,
                 n_bootstrap: int = 200, alpha: float = 0.05, random_state=None, propensity_model=None):
        self._init_common(estimand, n_bootstrap, alpha, random_state, propensity_model)
        self.truncate_weights = truncate_weights
        self.trim_propensity = trim_propensity
        self.stabilized = stabilized
        self.normalize = normalize

    def _describe(self) -> str:
        parts = ["inverse-probability weighting", "Hájek" if self.normalize else "Horvitz-Thompson"]
        if self.truncate_weights is not None:
            parts.append(f"weights truncated at the {self.truncate_weights:g} quantile")
        if self.trim_propensity is not None:
            parts.append(f"units with a score outside [{self.trim_propensity:g}, {1 - self.trim_propensity:g}] left out")
        return ", ".join(parts) + f"; {propensity_words(self.propensity_model)}"

    def _check_params(self) -> None:
        super()._check_params()
        if self.truncate_weights is not None and not (0.5 < float(self.truncate_weights) <= 1):
            raise ValueError(f"truncate_weights must be a quantile in (0.5, 1], got {self.truncate_weights!r}")
        if self.trim_propensity is not None and not (0 <= float(self.trim_propensity) < 0.5):
            raise ValueError(f"trim_propensity must lie in [0, 0.5), got {self.trim_propensity!r}")

    def _estimate(self, t, y, X, groups=None) -> _Fit:
        e = fit_propensity(X, t, self.propensity_model)
        keep = np.ones(len(t), dtype=bool)
        if self.trim_propensity is not None:
            a = float(self.trim_propensity)
            keep = (e >= a) & (e <= 1 - a)
        if self.estimand == "ATT":
            w = np.where(t, 1.0, e / (1 - e))
        else:
            w = np.where(t, 1.0 / e, 1.0 / (1 - e))
        w = np.where(keep, w, 0.0)
        if self.truncate_weights is not None:
            q = float(self.truncate_weights)
            for g in (t, ~t):
                sel = g & keep
                if sel.any():
                    cap = np.quantile(w[sel], q)
                    w[sel] = np.minimum(w[sel], cap)
        if self.normalize:
            est = _hajek_diff(t, y, w)
        else:
            n = keep.sum() if self.estimand == "ATE" else (t & keep).sum()
            est = float((w[t] @ y[t] - w[~t] @ y[~t]) / n) if n else np.nan
        if self.stabilized:
            p1 = t[keep].mean() if keep.any() else 0.5
            w = np.where(t, w * (p1 if self.estimand == "ATE" else 1.0),
                         w * ((1 - p1) if self.estimand == "ATE" else (1 - p1) / max(p1, 1e-12)))
        info = {"n_trimmed": int((~keep).sum())}
        return _Fit(est, weights=w, propensity=e, info=info)

    def _extra_diagnostics(self):
        n = self.info_.get("n_trimmed", 0)
        if n:
            return [("info", f"trimming: {n} unit(s) with extreme propensity scores left out; the estimate "
                     "concerns the units with scores inside the bounds")]
        return []


class PropensityScoreMatching(_EffectEstimator):
    """Nearest-neighbour matching on the propensity score (1:1), for the effect on the treated.

    Each treated unit is paired with the control whose (logit) propensity
    score is nearest, greedily from the closest pairs on (without
    replacement), within the caliper and, with ``exact``, within the same
    value of the exact-matching columns (risk-set matching: the same index
    date). The ATT is the mean of the pair differences over the matched
    treated. Treated without a partner are left out: the estimate then
    concerns the matched treated (``info_["n_unmatched"]``, a warning when more
    than 5%).

    Parameters
    ----------
    caliper : float or None, default 0.2
        Largest distance, in standard deviations of the score (Austin 2011:
        0.2 SD of the logit propensity score). None: no limit.
    replace : bool, default False
        Allow a control to serve several treated.
    scale : {"logit", "propensity"}, default "logit"
        Match on the logit of the score or on the score.
    exact : list of str, optional
        Columns that must be equal within a pair (e.g. ``["index_date"]``).
    bias_correction : bool, default False
        Subtract from each pair difference the difference that a linear outcome
        model of the controls predicts from the pair's covariate difference
        (Abadie & Imbens 2011): removes the bias left by imperfect matches,
        e.g. when the nearest controls of the most complex treated are
        systematically a little less complex.
    bootstrap : {"pairs", "full"}, default "pairs"
        ``"pairs"`` resamples the matched pairs (Austin & Small 2014; fast, given
        the matched sample); ``"full"`` resamples the units and refits the
        propensity model and the matching (slow; known to be unreliable for
        matching with replacement, Abadie & Imbens 2008).
    n_bootstrap, alpha, random_state, propensity_model
        As in :class:`IPWEstimator`.

    Attributes
    ----------
    pairs_ : DataFrame
        ``treated`` and ``control`` row labels of ``df``, ``distance`` of the scores.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> x = rng.normal(size=3000)
    >>> t = (rng.random(3000) < 1 / (1 + np.exp(2 - x))).astype(int)
    >>> df = pd.DataFrame({"x": x, "t": t, "y": 1.0 * t + 2 * x + rng.normal(size=3000)})
    >>> est = PropensityScoreMatching(n_bootstrap=50, random_state=0).fit(df, "t", "y", ["x"])
    >>> abs(est.estimate_ - 1.0) < 0.25
    True
    """

    _method_words = "propensity-score matching"
    _estimands = ("ATT",)
    _weights_diagnostic = False

    def __init__(self, *, caliper: float | None = 0.2, replace: bool = False, scale: str = "logit",
                 exact=None, bias_correction: bool = False, bootstrap: str = "pairs", estimand: str = "ATT",
                 n_bootstrap: int = 200,
                 alpha: float = 0.05, random_state=None, propensity_model=None):
        self._init_common(estimand, n_bootstrap, alpha, random_state, propensity_model)
        self.caliper = caliper
        self.replace = replace
        self.scale = scale
        self.exact = exact
        self.bias_correction = bias_correction
        self.bootstrap = bootstrap

    def _describe(self) -> str:
        cal = "no caliper" if self.caliper is None else f"caliper {self.caliper:g} SD of the score"
        ex = f", exact on {column_list(self.exact, 'exact')}" if self.exact else ""
        bc = ", regression bias correction" if self.bias_correction else ""
        return (f"1:1 nearest-neighbour matching on the {self.scale} propensity score, "
                f"{'with' if self.replace else 'without'} replacement, {cal}{ex}{bc}; {self.bootstrap} bootstrap; "
                f"{propensity_words(self.propensity_model)}")

    def _check_params(self) -> None:
        super()._check_params()
        if self.scale not in ("logit", "propensity"):
            raise ValueError(f"scale must be 'logit' or 'propensity', got {self.scale!r}")
        if self.bootstrap not in ("pairs", "full"):
            raise ValueError(f"bootstrap must be 'pairs' or 'full', got {self.bootstrap!r}")
        if self.caliper is not None and float(self.caliper) < 0:
            raise ValueError(f"caliper must be >= 0 or None, got {self.caliper!r}")

    def _groups(self, df) -> np.ndarray | None:
        if not self.exact:
            return None
        cols = column_list(self.exact, "exact")
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValidationError(f"exact-matching column(s) {missing} not in the table")
        codes, _ = pd.MultiIndex.from_frame(df[cols]).factorize() if len(cols) > 1 else \
            pd.factorize(df[cols[0]], use_na_sentinel=False)
        return np.asarray(codes, dtype=np.int64)

    def _match(self, t, X, groups):
        e = fit_propensity(X, t, self.propensity_model)
        s = logit(e) if self.scale == "logit" else e
        i1, i0 = np.flatnonzero(t), np.flatnonzero(~t)
        sd = float(np.sqrt((np.var(s[i1], ddof=1) + np.var(s[i0], ddof=1)) / 2)) if len(i1) > 1 else 0.0
        cal = None if self.caliper is None else float(self.caliper) * sd
        m = match_nearest(s[i1], s[i0], group_t=None if groups is None else groups[i1],
                          group_c=None if groups is None else groups[i0], caliper=cal, replace=self.replace)
        ok = m >= 0
        return e, s, i1[ok], i0[m[ok]], int((~ok).sum())

    def _estimate(self, t, y, X, groups=None) -> _Fit:
        e, s, pt, pc, n_un = self._match(t, X, groups)
        if not len(pt):
            return _Fit(np.nan, info={"why": "no treated unit found a control within the caliper"})
        w = np.zeros(len(t))
        w[pt] = 1.0
        np.add.at(w, pc, 1.0)
        diff = y[pt] - y[pc]
        if self.bias_correction and X.shape[1]:
            mu0 = RegressionAdjustment()._predictor(X[~t], y[~t])
            diff = diff - (mu0(X[pt]) - mu0(X[pc]))
        est = float(np.mean(diff))
        return _Fit(est, weights=w, propensity=e,
                    info={"n_unmatched": n_un, "n_pairs": len(pt), "pt": pt, "pc": pc, "diff": diff,
                          "distance": np.abs(s[pt] - s[pc]), "n_controls_used": int(len(np.unique(pc)))})

    def _bootstrap(self, t, y, X, groups, fit, rng) -> np.ndarray:
        if self.bootstrap == "full":
            return super()._bootstrap(t, y, X, groups, fit, rng)
        d = fit.info["diff"]
        B = int(self.n_bootstrap)
        out = np.empty(B)
        step = max(1, 2_000_000 // max(len(d), 1))
        for b0 in range(0, B, step):
            nb = min(step, B - b0)
            out[b0:b0 + nb] = d[rng.integers(0, len(d), (nb, len(d)))].mean(axis=1)
        return out

    def fit(self, df: pd.DataFrame, treatment: str, outcome: str, covariates=None):
        super().fit(df, treatment, outcome, covariates)
        info = self.info_
        self.pairs_ = pd.DataFrame({"treated": df.index[info.pop("pt")], "control": df.index[info.pop("pc")],
                                    "distance": info.pop("distance"), "difference": info.pop("diff")})
        return self

    fit.__doc__ = _EffectEstimator.fit.__doc__

    def _extra_diagnostics(self):
        n_un = self.info_.get("n_unmatched", 0)
        n_pairs = self.info_.get("n_pairs", 0)
        share = n_un / max(n_un + n_pairs, 1)
        msg = (f"matching: {n_pairs} pairs, {n_un} treated without a control within the caliper "
               f"({share:.1%}); {self.info_.get('n_controls_used', 0)} distinct controls used")
        if share > 0.05:
            return [("warning", msg + "; the estimate concerns the matched treated only, who may differ "
                     "from all treated (compare their covariates)")]
        return [("ok", msg)]


class PropensityScoreStratification(_EffectEstimator):
    """Stratification (subclassification) on the propensity score.

    Units are grouped into ``n_strata`` strata by quantiles of the propensity
    score (of the treated for the ATT, of everyone for the ATE); the effect is
    the average of the within-stratum differences in means, weighted by the
    stratum's treated (ATT) or all units (ATE). Five strata remove about 90%
    of the bias due to the measured covariates (Cochran 1968); more strata
    remove more when the groups are large. Strata without controls (ATT) or
    without either group (ATE) are left out and reported.

    Parameters
    ----------
    n_strata : int, default 5
    estimand : {"ATT", "ATE"}, default "ATT"
    n_bootstrap, alpha, random_state, propensity_model
        As in :class:`IPWEstimator` (the propensity model is refitted on each replicate).

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> x = rng.normal(size=3000)
    >>> t = (rng.random(3000) < 1 / (1 + np.exp(-x))).astype(int)
    >>> df = pd.DataFrame({"x": x, "t": t, "y": 1.0 * t + 2 * x + rng.normal(size=3000)})
    >>> est = PropensityScoreStratification(n_strata=10, n_bootstrap=20, random_state=0)
    >>> abs(est.fit(df, "t", "y", ["x"]).estimate_ - 1.0) < 0.3
    True
    """

    _method_words = "propensity-score stratification"
    def __init__(self, *, n_strata: int = 5, estimand: str = "ATT", n_bootstrap: int = 200,
                 alpha: float = 0.05, random_state=None, propensity_model=None):
        self._init_common(estimand, n_bootstrap, alpha, random_state, propensity_model)
        self.n_strata = n_strata

    def _describe(self) -> str:
        base = "treated" if self.estimand == "ATT" else "all units"
        return (f"stratification on the propensity score ({self.n_strata} strata, quantiles of the {base}); "
                f"{propensity_words(self.propensity_model)}")

    def _check_params(self) -> None:
        super()._check_params()
        if int(self.n_strata) < 1:
            raise ValueError(f"n_strata must be >= 1, got {self.n_strata!r}")

    def _estimate(self, t, y, X, groups=None) -> _Fit:
        e = fit_propensity(X, t, self.propensity_model)
        k = int(self.n_strata)
        base = e[t] if self.estimand == "ATT" else e
        inner = np.quantile(base, np.arange(1, k) / k) if k > 1 else np.zeros(0)
        stratum = np.searchsorted(inner, e, side="right")
        n1 = np.bincount(stratum[t], minlength=k).astype(np.float64)
        n0 = np.bincount(stratum[~t], minlength=k).astype(np.float64)
        usable = (n1 > 0) & (n0 > 0)
        if not usable.any():
            return _Fit(np.nan, info={"why": "no stratum holds both treated and controls"})
        if self.estimand == "ATT":
            target = n1
        else:
            target = n1 + n0
        with np.errstate(divide="ignore", invalid="ignore"):
            w1 = np.where(usable, target / np.where(n1 > 0, n1, 1), 0.0)
            w0 = np.where(usable, target / np.where(n0 > 0, n0, 1), 0.0)
        w = np.where(t, w1[stratum], w0[stratum])
        est = _hajek_diff(t, y, w)
        info = {"strata": pd.DataFrame({"n_treated": n1.astype(int), "n_control": n0.astype(int),
                                        "used": usable}, index=pd.RangeIndex(k, name="stratum")),
                "n_treated_dropped": int(n1[~usable].sum()), "n_control_dropped": int(n0[~usable].sum())}
        return _Fit(est, weights=w, propensity=e, info=info)

    def _extra_diagnostics(self):
        n = self.info_.get("n_treated_dropped", 0)
        st = self.info_.get("strata")
        unused = 0 if st is None else int((~st["used"]).sum())
        if n or (unused and self.estimand == "ATE"):
            return [("warning", f"strata: {unused} stratum/strata without both groups left out "
                     f"({n} treated); the estimate concerns the remaining units")]
        return [("ok", f"strata: all {self.n_strata} strata hold treated and controls")]
