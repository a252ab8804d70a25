"""Risk models: training on monthly snapshots with a temporal split, calibration, scoring, model files.

A :class:`RiskModel` is a scikit-learn classifier over the point-in-time
features of :mod:`iizrisk.features`: gradient boosting
(``HistGradientBoostingClassifier``, no native categoricals) by default, or a
scaled logistic regression as the transparent alternative. Probabilities are
calibrated on a *later* time slice than the one the model learnt from
(isotonic by default, via ``CalibratedClassifierCV`` around a frozen model).

:func:`train` builds the snapshots (everyone with a spell open at each month
end), the labels (:mod:`iizrisk.outcomes`, full data) and a temporal split:

* the latest ``validation_months`` of labelled as-of dates are held out;
* earlier dates are used only if their label horizon ends before the first
  held-out date (a gap of the horizon): no training label sees the held-out
  period, and no later snapshot of a person informs an earlier validation;
* within the earlier dates the latest ``calibration_months`` calibrate the
  probabilities, with the same gap before them.

On the held-out dates the report compares the model with the other model kind
and with the BFS revolving-door rule: ROC AUC, average precision, Brier score,
expected calibration error and precision/recall at a capacity of k people per
as-of date.

Scores are hints that trigger a human review, never decisions.

Model files (:func:`save_model`, :func:`load_model`) are a directory with
``model.joblib`` and ``manifest.json`` (SHA-256 of the model file, library
versions, features with dtypes, outcome, horizon, training period, data
fingerprint, metrics). Loading checks the hash and, when a signing key is
configured, an HMAC-SHA-256 signature of the manifest *before* unpickling.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"]).astype("float32")
>>> y = (X["a"] + rng.normal(size=400) > 1).to_numpy()
>>> m = RiskModel(model="logistic", calibration=None).fit(X, y)
>>> m.predict_proba(X).shape
(400, 2)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from . import _time
from .errors import InputMismatchError, KeyFileError, ModelError
from .features import PointInTimeFeatures
from .outcomes import compute_outcome, get_outcome, observed_until
from .spells import as_of_day

__all__ = [
    "MODEL_KINDS",
    "RiskModel",
    "BfsRuleBaseline",
    "TrainingReport",
    "train",
    "score",
    "risk_bands",
    "temporal_split",
    "evaluate",
    "expected_calibration_error",
    "precision_recall_at_k",
    "check_input",
    "data_fingerprint",
    "save_model",
    "load_model",
    "signing_key",
    "KEY_ENV",
]

logger = logging.getLogger("iizrisk")

MODEL_KINDS = ("boosting", "logistic")
#: Environment variable holding the model signing key (never a command-line argument).
KEY_ENV = "IIZRISK_MODEL_KEY"
MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
FORMAT = "iizrisk-model/1"
_BATCH = 250_000


# ------------------------------------------------------------------ time split
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


# ------------------------------------------------------------------ metrics
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


# ------------------------------------------------------------------ estimators
class BfsRuleBaseline(ClassifierMixin, BaseEstimator):
    """The BFS revolving-door flag as a scorer: the training outcome rate of flagged and unflagged rows.

    Parameters
    ----------
    column : str, default "revolving_door_24m"
        The 0/1 feature holding the BFS revolving-door flag at T.

    Examples
    --------
    >>> X = pd.DataFrame({"revolving_door_24m": [1, 1, 0, 0]})
    >>> BfsRuleBaseline().fit(X, [1, 0, 0, 0]).predict_proba(X)[:, 1].tolist()
    [0.5, 0.5, 0.0, 0.0]
    """

    def __init__(self, *, column: str = "revolving_door_24m"):
        self.column = column

    def fit(self, X, y):
        flag = np.asarray(X[self.column], dtype=np.float64) >= 0.5
        y = np.asarray(y, dtype=np.float64)
        overall = float(y.mean()) if len(y) else 0.0
        self.rate_ = np.array([y[~flag].mean() if (~flag).any() else overall,
                               y[flag].mean() if flag.any() else overall])
        self.classes_ = np.array([False, True])
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "rate_")
        flag = np.asarray(X[self.column], dtype=np.float64) >= 0.5
        p = self.rate_[flag.astype(int)]
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X)[:, 1] >= 0.5


def _dtype_kind(dtype) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "date"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    return "string"


class RiskModel(ClassifierMixin, BaseEstimator):
    """Calibrated risk of an outcome from point-in-time features.

    Parameters
    ----------
    model : {"boosting", "logistic"}, default "boosting"
        ``HistGradientBoostingClassifier`` or a Pipeline of median imputation
        (with missing-value indicators), scaling and logistic regression.
    calibration : {"isotonic", "sigmoid", None}, default "isotonic"
        Calibrate the probabilities on the latest ``calibration_months`` of the
        training dates (held out from the base model, after a gap).
    calibration_months : int, default 6
    gap_months : int or None, default None
        Gap between the base model's last label and the calibration slice;
        None: ``horizon_months``.
    outcome : str, default "revolving_door"
        Name of the outcome (recorded in the manifest).
    horizon_months : int, default 12
    features : PointInTimeFeatures, optional
        How features are built from spells at scoring time; default
        ``PointInTimeFeatures()``.
    max_iter, learning_rate, max_leaf_nodes, max_depth, min_samples_leaf, l2_regularization :
        Gradient boosting parameters. The defaults (100 trees of depth 3) did best
        on the synthetic Swiss population for both outcomes, rare ones included,
        and keep scoring and TreeSHAP fast (TreeSHAP's cost grows with the number
        of leaves and the square of the depth).
    early_stopping : bool, default False
        Stop adding trees when the loss on a random 10 % of the training rows
        stops improving for 10 rounds (noisy for rare outcomes).
    C : float, default 1.0
        Inverse regularisation of the logistic regression.
    random_state : int, default 0
    n_threads : int or None, default None
        Limit the OpenMP/BLAS threads while fitting and predicting (None: all
        cores). On a shared machine 1 can be several times faster than
        oversubscribed threads.

    Attributes
    ----------
    estimator_ : the fitted base model (log-odds from :meth:`decision_function`)
    calibrator_ : ``CalibratedClassifierCV`` around the frozen base model, or None
    feature_names_in_, n_features_in_, feature_dtypes_, classes_
    fit_info_ : dict with training and calibration periods and row counts
    """

    def __init__(self, *, model: str = "boosting", calibration: str | None = "isotonic",
                 calibration_months: int = 6, gap_months: int | None = None,
                 outcome: str = "revolving_door", horizon_months: int = 12,
                 features: PointInTimeFeatures | None = None, max_iter: int = 100,
                 learning_rate: float = 0.1, max_leaf_nodes: int = 31, max_depth: int | None = 3,
                 min_samples_leaf: int = 40, l2_regularization: float = 1.0, early_stopping: bool = False,
                 C: float = 1.0, random_state: int | None = 0, n_threads: int | None = None):
        self.model = model
        self.calibration = calibration
        self.calibration_months = calibration_months
        self.gap_months = gap_months
        self.outcome = outcome
        self.horizon_months = horizon_months
        self.features = features
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.early_stopping = early_stopping
        self.l2_regularization = l2_regularization
        self.C = C
        self.random_state = random_state
        self.n_threads = n_threads

    def _threads(self):
        from contextlib import nullcontext

        from threadpoolctl import threadpool_limits

        return nullcontext() if self.n_threads is None else threadpool_limits(int(self.n_threads))

    # ------------------------------------------------------------- fitting
    def _base(self):
        if self.model == "boosting":
            from sklearn.ensemble import HistGradientBoostingClassifier

            return HistGradientBoostingClassifier(
                max_iter=self.max_iter, learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes, max_depth=self.max_depth,
                min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
                categorical_features=None, early_stopping=self.early_stopping, validation_fraction=0.1,
                n_iter_no_change=10, scoring="loss", random_state=self.random_state)
        if self.model == "logistic":
            from sklearn.impute import SimpleImputer
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import Pipeline
            from sklearn.preprocessing import StandardScaler

            return Pipeline([
                ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                ("scale", StandardScaler()),
                ("logit", LogisticRegression(C=self.C, max_iter=5000)),
            ])
        raise ValueError(f"model must be one of {MODEL_KINDS}, got {self.model!r}")

    def fit(self, X: pd.DataFrame, y, *, as_of=None):
        """Fit the base model on the earlier rows and calibrate on the later slice.

        Parameters
        ----------
        X : DataFrame
            Features (columns named), e.g. from :class:`PointInTimeFeatures`.
        y : array-like of bool
        as_of : array-like of dates, optional
            As-of date of each row; default the ``as_of`` index level of ``X``.
            Needed for calibration on a later time slice; without dates the
            last 20 % of rows (assumed in time order) calibrate.

        Returns
        -------
        self
        """
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a DataFrame with named feature columns")
        y = np.asarray(y, dtype=bool)
        if len(y) != len(X):
            raise ValueError(f"y has {len(y)} values for {len(X)} rows")
        if len(np.unique(y)) < 2:
            raise ValueError("y holds a single class; the outcome never (or always) happens in these rows")
        if self.calibration not in {"isotonic", "sigmoid", None}:
            raise ValueError(f"calibration must be 'isotonic', 'sigmoid' or None, got {self.calibration!r}")
        for c in X.columns:
            if isinstance(X[c].dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(X[c]):
                raise TypeError(f"feature {c!r} has dtype {X[c].dtype}: encode categories as numbers "
                                "(native categoricals break TreeSHAP explanations)")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.feature_dtypes_ = {c: str(X[c].dtype) for c in X.columns}
        self.classes_ = np.array([False, True])
        days = _as_of_of(X, as_of)
        gap = self.horizon_months if self.gap_months is None else self.gap_months
        info: dict[str, Any] = {"n_rows": int(len(X)), "prevalence": float(y.mean())}
        if self.calibration is None:
            fit_rows = np.ones(len(X), dtype=bool)
            cal_rows = np.zeros(len(X), dtype=bool)
        elif days is None:
            cut = int(len(X) * 0.8)
            fit_rows = np.arange(len(X)) < cut
            cal_rows = ~fit_rows
        else:
            fit_rows, cal_rows = temporal_split(days, holdout_months=self.calibration_months, gap_months=gap)
        if min(y[fit_rows].sum(), (~y[fit_rows]).sum()) < 2 or \
                (cal_rows.any() and min(y[cal_rows].sum(), (~y[cal_rows]).sum()) < 2):
            raise ValueError("the training or calibration slice holds fewer than two rows of a class; "
                             "use more dates or persons")
        if cal_rows.any() and y[cal_rows].sum() < 20:
            logger.warning("only %d outcomes in the calibration slice: calibration will be coarse",
                           int(y[cal_rows].sum()))
        Xf = X.loc[fit_rows] if not fit_rows.all() else X
        empty = [c for c in Xf.columns if Xf[c].isna().all()]
        if empty and self.model == "boosting":
            # scikit-learn's binning fails on an all-missing column; a constant column is
            # never split, so filling it changes nothing at prediction time
            Xf = Xf.fillna({c: 0.0 for c in empty})
        info["all_missing_features"] = empty
        with self._threads():
            self.estimator_ = self._base().fit(Xf, y[fit_rows])
        self.calibrator_ = None
        if cal_rows.any():
            from sklearn.calibration import CalibratedClassifierCV
            from sklearn.frozen import FrozenEstimator
            from sklearn.model_selection import KFold

            # the frozen model is not refitted: the folds only split where its predictions
            # come from, so a plain 2-fold split serves (no stratification warnings)
            self.calibrator_ = CalibratedClassifierCV(FrozenEstimator(self.estimator_),
                                                      method=self.calibration, cv=KFold(2))
            with self._threads():
                self.calibrator_.fit(X.loc[cal_rows], y[cal_rows])
        if days is not None:
            for key, rows in (("train", fit_rows), ("calibration", cal_rows)):
                if rows.any():
                    info[f"{key}_period"] = [_time.to_date(days[rows].min()).isoformat(),
                                             _time.to_date(days[rows].max()).isoformat()]
        info["train_rows"] = int(fit_rows.sum())
        info["calibration_rows"] = int(cal_rows.sum())
        self.fit_info_ = info
        logger.info("fitted %s model on %d rows (calibration on %d rows)", self.model,
                    info["train_rows"], info["calibration_rows"])
        return self

    # ------------------------------------------------------------- prediction
    def _check_X(self, X) -> pd.DataFrame:
        check_is_fitted(self, "estimator_")
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a DataFrame with the feature columns the model was fitted on")
        check_input(self, X=X)
        return X[list(self.feature_names_in_)]

    def _batched(self, func, X: pd.DataFrame) -> np.ndarray:
        with self._threads():
            if len(X) <= _BATCH:
                return func(X)
            return np.concatenate([func(X.iloc[i:i + _BATCH]) for i in range(0, len(X), _BATCH)])

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds of the base model, before calibration (what explanations add up to)."""
        X = self._check_X(X)
        return self._batched(lambda x: np.asarray(self.estimator_.decision_function(x), dtype=np.float64), X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, columns (no outcome, outcome)."""
        X = self._check_X(X)
        est = self.calibrator_ if self.calibrator_ is not None else self.estimator_
        return self._batched(lambda x: est.predict_proba(x), X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """True where the calibrated risk is at least 0.5 (rare: use ranks or bands instead)."""
        return self.predict_proba(X)[:, 1] >= 0.5

    # ------------------------------------------------------------- display
    @property
    def summary(self) -> pd.DataFrame:
        """One row per fact about the fitted model (kind, outcome, periods, metrics)."""
        check_is_fitted(self, "estimator_")
        rows: list[tuple[str, Any]] = [
            ("model", self.model), ("outcome", self.outcome), ("horizon_months", self.horizon_months),
            ("calibration", self.calibration), ("features", self.n_features_in_),
        ]
        rows += [(k, v if not isinstance(v, list) else " to ".join(v)) for k, v in self.fit_info_.items()]
        for scorer, metrics in getattr(self, "metrics_", {}).items():
            for m in ("roc_auc", "average_precision", "brier", "ece", "precision_at_k", "recall_at_k"):
                if m in metrics:
                    rows.append((f"{scorer}: {m}", round(float(metrics[m]), 4)))
        return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")

    def print_summary(self) -> None:  # pragma: no cover - display helper
        """Write :attr:`summary` to the log at INFO level."""
        logger.info("%s", self.summary.to_string())

    def _repr_mimebundle_(self, **kwargs):
        """Jupyter shows the model summary (scikit-learn's own bundle would take precedence)."""
        return {"text/plain": repr(self), "text/html": self._repr_html_()}

    def _repr_html_(self) -> str:
        try:
            table = self.summary.to_html()
        except Exception:  # not fitted
            return f"<b>RiskModel</b> (not fitted): {self.model}, outcome {self.outcome}"
        return (f"<b>RiskModel</b> — {self.model}, outcome <i>{self.outcome}</i>, "
                f"horizon {self.horizon_months} months. Scores are hints for a human review, "
                f"never decisions.{table}")


# ------------------------------------------------------------------ input checks
def check_input(model: RiskModel, *, X: pd.DataFrame | None = None, spells: pd.DataFrame | None = None,
                interventions: pd.DataFrame | None = None, source: str = "scoring input") -> None:
    """Check scoring input against what the model was fitted on; raise with a readable diff.

    ``X`` is compared with the feature names and dtypes, ``spells`` with the
    canonical columns present at training (and their kinds), and the presence
    of interventions with their use at training.

    Raises
    ------
    InputMismatchError
    """
    lines: list[str] = []
    if X is not None:
        want = list(model.feature_names_in_)
        have = list(X.columns)
        missing = [c for c in want if c not in have]
        extra = [c for c in have if c not in want]
        if missing:
            lines.append(f"  missing feature columns ({len(missing)}): {', '.join(missing[:10])}"
                         + (" ..." if len(missing) > 10 else ""))
        if extra:
            lines.append(f"  unexpected feature columns ({len(extra)}): {', '.join(extra[:10])}"
                         + (" ..." if len(extra) > 10 else ""))
        for c in want:
            if c in have:
                if _dtype_kind(X[c].dtype) != "number":
                    lines.append(f"  {c}: model {model.feature_dtypes_.get(c)}, input {X[c].dtype}")
    info = getattr(model, "input_info_", None)
    if spells is not None and info is not None:
        for col, kind in info.get("columns", {}).items():
            if col not in spells.columns:
                lines.append(f"  spells column {col!r} ({kind}) was present at training and is missing")
            elif _dtype_kind(spells[col].dtype) != kind:
                lines.append(f"  spells column {col!r}: model {kind}, input {_dtype_kind(spells[col].dtype)} "
                             f"({spells[col].dtype})")
        if info.get("interventions") and interventions is None:
            lines.append("  interventions were used at training and are missing (pass --interventions)")
    if lines:
        raise InputMismatchError(f"{source} does not match the model:\n" + "\n".join(lines)
                                 + "\nfix: provide the same canonical columns and types as at training, "
                                 "or retrain the model on this input")


def _input_info(spells: pd.DataFrame, interventions) -> dict:
    from .schema import load_schema

    schema = load_schema("spells")
    # protected attributes are audit-only: scoring must not require them
    used = [c for c in schema.names if c not in {"case_id", "canton", *schema.protected}]
    return {"columns": {c: _dtype_kind(spells[c].dtype) for c in used if c in spells.columns},
            "interventions": interventions is not None}


def data_fingerprint(spells: pd.DataFrame) -> str:
    """SHA-256 over the canonical columns of a spells table (row order matters).

    Examples
    --------
    >>> df = pd.DataFrame({"person_id": ["a"], "institution": ["ALV"],
    ...                    "start_date": pd.to_datetime(["2024-01-01"])})
    >>> len(data_fingerprint(df))
    64
    """
    from .schema import load_schema

    cols = [c for c in load_schema("spells").names if c in spells.columns]
    h = hashlib.sha256()
    h.update(json.dumps(cols).encode())
    h.update(pd.util.hash_pandas_object(spells[cols], index=False).to_numpy().tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------ training
@dataclass
class TrainingReport:
    """What :func:`train` did and how well the model does on the held-out later period.

    Attributes
    ----------
    metrics : DataFrame
        One row per scorer (the model, the other model kind, the BFS rule):
        ROC AUC, average precision, Brier score, ECE, precision and recall at k.
    periods : dict
        ``train``, ``calibration`` and ``validation`` as-of date ranges.
    info : dict
        Outcome, horizon, row counts, prevalence, data fingerprint.
    """

    metrics: pd.DataFrame
    periods: dict[str, list[str]]
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": {k: {m: (None if pd.isna(v) else float(v)) for m, v in row.items()}
                            for k, row in self.metrics.to_dict(orient="index").items()},
                "periods": self.periods, "info": self.info}

    def _repr_html_(self) -> str:
        per = ", ".join(f"{k}: {v[0]} to {v[1]}" for k, v in self.periods.items())
        return (f"<b>Training report</b> — outcome <i>{self.info.get('outcome')}</i>, horizon "
                f"{self.info.get('horizon_months')} months; {per}{self.metrics.round(4).to_html()}")


def train(spells: pd.DataFrame, *, interventions: pd.DataFrame | None = None,
          outcome: str = "revolving_door", horizon_months: int = 12, model: str = "boosting",
          first_as_of=None, last_as_of=None, burn_in_months: int = 24, train_months: int = 36,
          validation_months: int = 6,
          calibration_months: int = 6, gap_months: int | None = None, calibration: str | None = "isotonic",
          capacity: int = 50, max_train_rows: int | None = None, observed_until_date=None,
          features: PointInTimeFeatures | None = None, compare: bool = True, random_state: int = 0,
          **model_params) -> tuple[RiskModel, TrainingReport]:
    """Train a risk model on monthly snapshots with a temporal split; report on a held-out later period.

    Parameters
    ----------
    spells : DataFrame
        Canonical spells of the whole export.
    interventions : DataFrame, optional
        Interventions (features count only those dated <= T).
    outcome : str, default "revolving_door"
        A registered outcome (:func:`iizrisk.outcomes.outcome_names`).
    horizon_months : int, default 12
    model : {"boosting", "logistic"}, default "boosting"
    first_as_of, last_as_of : date-like, optional
        Range of month-end snapshot dates; default from ``burn_in_months`` after
        the first start date to the last month end whose horizon is observed.
    burn_in_months : int, default 24
        History needed before the first snapshot.
    train_months : int, default 36
        With no ``first_as_of``: months of training dates before the calibration
        slice (older snapshots are left out).
    validation_months, calibration_months : int, default 6
        Held-out period at the end, and calibration slice before it.
    gap_months : int, optional
        Gap before each later slice; default ``horizon_months``.
    calibration : {"isotonic", "sigmoid", None}
    capacity : int, default 50
        k for precision and recall at k (people reviewed per as-of date).
    max_train_rows : int, optional
        Random subsample of the earlier rows (speed).
    observed_until_date : date-like, optional
        Last observed day of the data; default from the data.
    features : PointInTimeFeatures, optional
    compare : bool, default True
        Also fit the other model kind and the BFS rule and report them.
    random_state : int, default 0
    **model_params
        Further :class:`RiskModel` parameters (``max_iter``, ``C``...).

    Returns
    -------
    (RiskModel, TrainingReport)
    """
    get_outcome(outcome)
    gap = horizon_months if gap_months is None else int(gap_months)
    last_day = observed_until(spells) if observed_until_date is None else as_of_day(observed_until_date)
    start = _time.to_days(spells["start_date"])
    first_day = int(start[start != _time.MISSING_DAY].min())
    if first_as_of is None:
        # enough history before the first snapshot, and no more than train_months of training
        # dates before the calibration slice (older snapshots describe another labour market)
        last_lab = int(_time.add_months(last_day, -horizon_months))
        span = train_months + gap + calibration_months + gap + validation_months
        lo_day = max(int(_time.add_months(first_day, burn_in_months)), int(_time.add_months(last_lab, -span)))
        lo = pd.Timestamp(_time.to_date(lo_day))
    else:
        lo = pd.Timestamp(first_as_of)
    latest = [d for d in pd.date_range(lo, pd.Timestamp(_time.to_date(last_day)), freq="ME")
              if int(_time.add_months(_time.day(d), horizon_months)) <= last_day]
    if last_as_of is not None:
        latest = [d for d in latest if d <= pd.Timestamp(last_as_of)]
    if len(latest) < 3:
        raise ValueError(f"too few labelled month ends between {lo.date()} and the last observed day "
                         f"{_time.to_date(last_day)} for horizon {horizon_months}: need a longer export")
    days_all = np.array([_time.day(d) for d in latest], dtype=np.int64)
    early, late = temporal_split(days_all, holdout_months=validation_months, gap_months=gap)
    dates = [d for d, keep in zip(latest, early | late, strict=True) if keep]
    ft = features if features is not None else PointInTimeFeatures()
    ft = ft.fit(spells, as_of=dates) if not hasattr(ft, "feature_names_out_") else ft
    logger.info("train: building features at %d month ends (%s to %s)", len(dates),
                dates[0].date(), dates[-1].date())
    X = ft.transform(spells, as_of=dates, interventions=interventions)
    lab = compute_outcome(spells, outcome=outcome, horizon_months=horizon_months, pairs=X.index,
                          observed_until=last_day)
    if not lab["observed"].all():  # pragma: no cover - dates were chosen observed
        raise AssertionError("unobserved labels among training snapshots")
    y = lab["outcome"].to_numpy(dtype=bool)
    d = _days_of(X.index.get_level_values("as_of"))
    first_val = int(days_all[late].min())
    val = d >= first_val
    fit_rows = ~val
    if max_train_rows is not None and fit_rows.sum() > max_train_rows:
        rng = np.random.default_rng(random_state)
        keep = rng.choice(np.flatnonzero(fit_rows), size=max_train_rows, replace=False)
        fit_rows = np.zeros(len(X), dtype=bool)
        fit_rows[keep] = True
    common = dict(calibration=calibration, calibration_months=calibration_months, gap_months=gap,
                  outcome=outcome, horizon_months=horizon_months, features=ft, random_state=random_state)
    Xf, yf, df_ = X.loc[fit_rows], y[fit_rows], d[fit_rows]
    main = RiskModel(model=model, **common, **model_params).fit(Xf, yf, as_of=df_)
    Xv, yv, dv = X.loc[val], y[val], d[val]
    scores = {model: main.predict_proba(Xv)[:, 1]}
    if compare:
        other = "logistic" if model == "boosting" else "boosting"
        alt = RiskModel(model=other, **common, n_threads=model_params.get("n_threads")).fit(Xf, yf, as_of=df_)
        scores[other] = alt.predict_proba(Xv)[:, 1]
        bw = int(ft.bfs_window_months)
        rule = BfsRuleBaseline(column=f"revolving_door_{bw}m")
        tr = df_ <= _time.day(main.fit_info_["train_period"][1])
        rule.fit(Xf.loc[tr], yf[tr])
        scores["bfs_rule"] = rule.predict_proba(Xv)[:, 1]
    metrics = evaluate(yv, scores, dv, k=capacity)
    periods = {k[:-7]: v for k, v in main.fit_info_.items() if k.endswith("_period")}
    periods["validation"] = [_time.to_date(dv.min()).isoformat(), _time.to_date(dv.max()).isoformat()]
    info = {
        "outcome": outcome, "horizon_months": horizon_months, "model": model,
        "gap_months": gap, "capacity": capacity, "observed_until": _time.to_date(last_day).isoformat(),
        "snapshots": int(len(X)), "train_rows": main.fit_info_["train_rows"],
        "calibration_rows": main.fit_info_["calibration_rows"], "validation_rows": int(val.sum()),
        "prevalence_train": float(yf.mean()), "prevalence_validation": float(yv.mean()),
        "data_fingerprint": data_fingerprint(spells), "spells_rows": int(len(spells)),
    }
    report = TrainingReport(metrics=metrics, periods=periods, info=info)
    main.metrics_ = report.to_dict()["metrics"]
    main.training_ = {"periods": periods, **info}
    main.input_info_ = _input_info(spells, interventions)
    logger.info("held-out metrics:\n%s", metrics.round(4).to_string())
    return main, report


# ------------------------------------------------------------------ scoring
def risk_bands(risk, bands=(0.10, 0.25)) -> np.ndarray:
    """Band names ``low`` / ``medium`` / ``high`` for calibrated risks.

    Examples
    --------
    >>> risk_bands([0.05, 0.1, 0.3]).tolist()
    ['low', 'medium', 'high']
    """
    names = np.array(["low", "medium", "high"], dtype=object)
    if len(bands) != 2:
        raise ValueError("risk bands need two thresholds (low/medium, medium/high)")
    return names[np.searchsorted(np.asarray(bands, dtype=np.float64), np.asarray(risk), side="right")]


def score(model: RiskModel, spells: pd.DataFrame, *, as_of, interventions: pd.DataFrame | None = None,
          bands=(0.10, 0.25), return_features: bool = False, timeline=None):
    """Score everyone with a spell open on ``as_of``.

    Only the point-in-time view at ``as_of`` is used, so rows after the as-of
    date change nothing. ``timeline``, when given, is that view already built
    (see :meth:`PointInTimeFeatures.transform`).

    Returns
    -------
    DataFrame
        ``person_id, as_of, outcome, risk, risk_band, rank`` sorted by rank
        (1 = highest risk; equal risks in order of the person's first appearance
        among the rows known at ``as_of``); with ``return_features`` also the
        feature frame (same row order).
    """
    check_is_fitted(model, "estimator_")
    check_input(model, spells=spells, interventions=interventions)
    ft = model.features if model.features is not None else PointInTimeFeatures().fit(None)
    X = ft.transform(spells, as_of=as_of, interventions=interventions, timeline=timeline)
    risk = model.predict_proba(X)[:, 1] if len(X) else np.array([], dtype=np.float64)
    pid = X.index.get_level_values("person_id")
    # stable: equal risks keep the feature rows' order (first appearance in the input among
    # the rows known at the as-of date, which later rows cannot change)
    order = np.argsort(-risk, kind="stable")
    out = pd.DataFrame({
        "person_id": np.asarray(pid, dtype=object)[order],
        "as_of": np.asarray(X.index.get_level_values("as_of"))[order],
        "outcome": model.outcome,
        "risk": risk[order],
        "risk_band": pd.Series(risk_bands(risk[order], bands), dtype="str"),
        "rank": np.arange(1, len(X) + 1, dtype=np.int64),
    })
    out["person_id"] = out["person_id"].astype("str")
    if return_features:
        return out, X.iloc[order]
    return out


# ------------------------------------------------------------------ model files
def signing_key(*, env: str | None = KEY_ENV, file: str | Path | None = None) -> bytes | None:
    """The model signing key from a file or an environment variable, or None when none is configured.

    A key file wins over the environment variable. Keys are never taken from
    the command line (they would show in process lists and shell history).

    Raises
    ------
    KeyFileError
        The file is missing, unreadable or empty, or the variable is set but empty.
    """
    if file is not None:
        p = Path(file)
        try:
            key = p.read_bytes().strip()
        except OSError as exc:
            raise KeyFileError(f"signing key file {p} cannot be read: {exc.strerror}") from exc
        if not key:
            raise KeyFileError(f"signing key file {p} is empty")
        return key
    if env and env in os.environ:
        key = os.environ[env].encode().strip()
        if not key:
            raise KeyFileError(f"environment variable {env} is set but empty")
        return key
    return None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _canonical(manifest: dict) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def _versions() -> dict[str, str]:
    import joblib
    import sklearn

    from . import __version__

    out = {"iizrisk": __version__, "python": sys.version.split()[0], "numpy": np.__version__,
           "pandas": pd.__version__, "scikit-learn": sklearn.__version__, "joblib": joblib.__version__}
    try:
        import shap

        out["shap"] = shap.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def save_model(model: RiskModel, directory: str | Path, *, key: bytes | None = None) -> Path:
    """Write ``model.joblib`` and ``manifest.json`` to ``directory`` atomically.

    The files are written to a temporary folder beside ``directory`` which then
    replaces it, so a reader never sees a half-written model. With ``key`` the
    manifest carries an HMAC-SHA-256 signature.

    Returns
    -------
    Path of the model directory.
    """
    import joblib

    check_is_fitted(model, "estimator_")
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.tmp-"))
    try:
        joblib.dump(model, tmp / MODEL_FILE, compress=3)
        manifest = {
            "format": FORMAT,
            "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
            "model_file": MODEL_FILE,
            "model_sha256": _sha256_file(tmp / MODEL_FILE),
            "versions": _versions(),
            "model": model.model,
            "outcome": model.outcome,
            "horizon_months": model.horizon_months,
            "calibration": model.calibration,
            "features": [{"name": n, "dtype": model.feature_dtypes_[n]} for n in model.feature_names_in_],
            "feature_params": ({k: (list(v) if isinstance(v, tuple) else v)
                                for k, v in model.features.get_params().items()}
                               if model.features is not None else None),
            "input": getattr(model, "input_info_", None),
            "training": getattr(model, "training_", model.fit_info_),
            "metrics": getattr(model, "metrics_", None),
            "note": "Scores trigger a human review, never a decision.",
        }
        if key is not None:
            manifest["signature"] = {"algorithm": "HMAC-SHA-256",
                                     "value": hmac.new(key, _canonical(manifest), hashlib.sha256).hexdigest()}
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
        from .modelcard import write_model_card

        write_model_card(tmp, tmp)  # model_card.md/.html/.json, from the manifest alone
        old = None
        if directory.exists():
            old = directory.parent / f".{directory.name}.old-{os.getpid()}"
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("model written to %s%s", directory, " (signed)" if key is not None else "")
    return directory


def read_manifest(directory: str | Path) -> dict:
    """The manifest of a model directory (no verification)."""
    path = Path(directory) / MANIFEST_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{directory}: not a model directory ({MANIFEST_FILE} missing); "
                         "train one with `iizrisk train`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: manifest is not valid JSON ({exc}); the model directory is damaged") from exc


def load_model(directory: str | Path, *, key: bytes | None = None) -> RiskModel:
    """Load a model directory, verifying it *before* unpickling.

    Checks, in order: the manifest's HMAC signature when ``key`` is given (an
    unsigned manifest is refused then), and the SHA-256 of ``model.joblib``
    against the manifest. Only then is the file unpickled.

    Raises
    ------
    ModelError
        Missing files, a wrong hash or signature, or a file that is not a RiskModel.
    """
    import joblib

    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest.get("format") != FORMAT:
        raise ModelError(f"{directory}: unknown model format {manifest.get('format')!r}; expected {FORMAT}")
    sig = manifest.get("signature")
    if key is not None:
        if not sig:
            raise ModelError(f"{directory}: the model is not signed but a signing key is configured; "
                             "refusing to load it (re-train with the key, or remove the key setting)")
        want = hmac.new(key, _canonical(manifest), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, str(sig.get("value", ""))):
            raise ModelError(f"{directory}: signature check failed: the manifest was changed or signed "
                             "with another key; refusing to load the model")
    elif sig:
        logger.warning("%s: the model is signed but no signing key is configured; only its hash is checked",
                       directory)
    path = directory / manifest.get("model_file", MODEL_FILE)
    if path.parent != directory or not path.is_file():
        raise ModelError(f"{directory}: model file {path.name} missing")
    digest = _sha256_file(path)
    if not hmac.compare_digest(digest, str(manifest.get("model_sha256", ""))):
        raise ModelError(f"{path}: SHA-256 {digest[:12]}... does not match the manifest "
                         f"({str(manifest.get('model_sha256', ''))[:12]}...): the file was changed; refusing to load it")
    model = joblib.load(path)
    if not isinstance(model, RiskModel):
        raise ModelError(f"{path}: holds a {type(model).__name__}, not a RiskModel")
    listed = [f.get("name") for f in manifest.get("features", [])]
    if listed != list(model.feature_names_in_):
        raise ModelError(f"{directory}: the manifest lists other features than the model was fitted on; "
                         "the model directory is inconsistent: re-train it")
    model.manifest_ = manifest
    return model
