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
``model.skops``, ``manifest.json`` (SHA-256 of the model file, library
versions, features with dtypes, outcome, horizon, training period, data
fingerprint, metrics, and an HMAC-SHA-256 signature of all that with the
signing key) and the model card. A model file must not be able to run code
when it is loaded, since the nightly job loads it unattended:

* **Format.** The fitted model is stored with ``skops.io`` (a zip of JSON and
  ``.npy`` arrays, no pickle). Loading builds only skops' own safe types and
  the short list :data:`TRUSTED_TYPES` (our ``RiskModel``, the features spec,
  a few private scikit-learn helpers, numpy dtypes); a file holding anything else is refused
  before anything is built, and ``trusted=True`` is never used. We chose skops
  over our own JSON/npz of the estimators' parameters because it is the
  maintained library for exactly this, and a ``RiskModel`` (gradient boosting
  or a logistic pipeline, isotonic or sigmoid calibration, the feature spec)
  goes through it with bit-identical probabilities; our own format would have
  to follow every private attribute of ``HistGradientBoostingClassifier``.
* **Signature.** Without a key a file's hash proves nothing: whoever can write
  the folder can write a matching manifest. :func:`load_model` therefore
  refuses an unsigned model unless ``allow_unsigned=True`` (``[model]
  allow_unsigned_model``, ``--allow-unsigned-model``), and a signed one when no
  key is configured (it cannot be checked). Keys have at least
  :data:`MIN_SIGNING_KEY_BYTES` bytes.
* **One read.** The folder (no symbolic link) and each file (a regular file,
  no link) are opened once and read into memory; the signature and hash are
  checked on those bytes and the model is built from the same bytes, so the
  file checked is the file loaded.
* **Old folders.** ``model.joblib`` (format ``iizrisk-model/1``, a pickle) is
  loaded only when its manifest's signature verifies with the configured key,
  which proves it was written by a holder of the key; an unsigned pickle is
  never loaded, even when unsigned models are allowed. Retrain to move to
  ``model.skops``.

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
import errno
import hashlib
import hmac
import io
import json
import logging
import os
import shutil
import stat
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
from ._progress import Steps
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
    "read_manifest",
    "signing_key",
    "model_key",
    "KEY_ENV",
    "MIN_SIGNING_KEY_BYTES",
    "TRUSTED_TYPES",
]

logger = logging.getLogger("iizrisk")

MODEL_KINDS = ("boosting", "logistic")
#: Environment variable holding the model signing key (never a command-line argument).
KEY_ENV = "IIZRISK_MODEL_KEY"
#: Minimum length of a model signing key in bytes: HMAC-SHA-256 keys should be no shorter than
#: the 32-byte hash (RFC 2104, section 3). Pseudonymisation keys (pseudonym.MIN_KEY_BYTES) need 16.
MIN_SIGNING_KEY_BYTES = 32
SIGNATURE_ALGORITHM = "HMAC-SHA-256"
MODEL_FILE = "model.skops"
MANIFEST_FILE = "manifest.json"
FORMAT = "iizrisk-model/2"
#: the old format: a joblib pickle in model.joblib, loaded only when signed and verified
LEGACY_FORMAT = "iizrisk-model/1"
LEGACY_MODEL_FILE = "model.joblib"
_FILES = {FORMAT: MODEL_FILE, LEGACY_FORMAT: LEGACY_MODEL_FILE}
_PAYLOAD_SUFFIXES = (".skops", ".joblib", ".pkl", ".pickle")
_MAX_FILE_BYTES = 1 << 30
#: Types :func:`load_model` builds from a ``model.skops`` beyond skops' own list of safe types
#: (scikit-learn estimators, numpy and Python containers). Each is built by ``__new__`` and
#: its attributes set (``__setstate__``): no code of the file runs. Anything else is refused.
TRUSTED_TYPES = (
    "iizrisk.features.FeatureSpec",
    "iizrisk.features.PointInTimeFeatures",
    "iizrisk.model.RiskModel",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.model_selection._split.KFold",
)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: open members relative to the opened folder (POSIX); elsewhere by path with a link check
_DIR_FD = (os.open in os.supports_dir_fd and os.listdir in os.supports_fd and hasattr(os, "O_DIRECTORY")
           and _NOFOLLOW != 0)
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
          progress: bool | None = None, **model_params) -> tuple[RiskModel, TrainingReport]:
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
    progress : bool, optional
        Show the training steps as a progress bar on stderr; default only when
        stderr is a terminal (never in cron or tests). Log lines are written
        above the bar, never into it.
    **model_params
        Further :class:`RiskModel` parameters (``max_iter``, ``C``...).

    Returns
    -------
    (RiskModel, TrainingReport)
    """
    get_outcome(outcome)
    steps = ["features", "labels", f"fit {model}"]
    if compare:
        steps += [f"fit {'logistic' if model == 'boosting' else 'boosting'}", "BFS rule"]
    with Steps(steps + ["evaluate"], progress, label="train") as bar:
        return _train(spells, interventions, outcome, horizon_months, model, first_as_of, last_as_of,
                      burn_in_months, train_months, validation_months, calibration_months, gap_months,
                      calibration, capacity, max_train_rows, observed_until_date, features, compare,
                      random_state, bar, model_params)


def _train(spells, interventions, outcome, horizon_months, model, first_as_of, last_as_of, burn_in_months,
           train_months, validation_months, calibration_months, gap_months, calibration, capacity,
           max_train_rows, observed_until_date, features, compare, random_state, bar,
           model_params) -> tuple[RiskModel, TrainingReport]:
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
    bar.step("features")
    X = ft.transform(spells, as_of=dates, interventions=interventions)
    bar.step("labels")
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
    bar.step(f"fit {model}")
    main = RiskModel(model=model, **common, **model_params).fit(Xf, yf, as_of=df_)
    Xv, yv, dv = X.loc[val], y[val], d[val]
    scores = {model: main.predict_proba(Xv)[:, 1]}
    if compare:
        other = "logistic" if model == "boosting" else "boosting"
        bar.step(f"fit {other}")
        alt = RiskModel(model=other, **common, n_threads=model_params.get("n_threads")).fit(Xf, yf, as_of=df_)
        scores[other] = alt.predict_proba(Xv)[:, 1]
        bar.step("BFS rule")
        bw = int(ft.bfs_window_months)
        rule = BfsRuleBaseline(column=f"revolving_door_{bw}m")
        tr = df_ <= _time.day(main.fit_info_["train_period"][1])
        rule.fit(Xf.loc[tr], yf[tr])
        scores["bfs_rule"] = rule.predict_proba(Xv)[:, 1]
    bar.step("evaluate")
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
def _key_problem(key: bytes, origin: str) -> str | None:
    if not key:
        return f"{origin} is empty"
    if len(key) < MIN_SIGNING_KEY_BYTES:
        return (f"{origin} holds {len(key)} bytes; a model signing key needs at least {MIN_SIGNING_KEY_BYTES} "
                "(HMAC-SHA-256: no shorter than the hash, RFC 2104); create one with "
                "`python -c \"import secrets; print(secrets.token_hex(32))\" > FILE`")
    return None


def _check_key(key: bytes, origin: str) -> bytes:
    if not isinstance(key, bytes):
        raise KeyFileError(f"{origin} must be bytes, not {type(key).__name__}")
    problem = _key_problem(key, origin)
    if problem:
        raise KeyFileError(problem)
    return key


def signing_key(*, env: str | None = None, file: str | Path | None = None) -> bytes | None:
    """The model signing key from a file or an environment variable, or None when none is configured.

    Parameters
    ----------
    env : str, optional
        Name of the environment variable holding the key. None (the default)
        means :data:`KEY_ENV` (``IIZRISK_MODEL_KEY``), which is optional: unset,
        there is no key. A variable named explicitly must be set.
    file : path, optional
        File holding the key (surrounding whitespace is ignored). It wins over
        any environment variable.

    Keys are never taken from the command line (they would show in process
    lists and shell history). A key needs at least :data:`MIN_SIGNING_KEY_BYTES`
    (32) bytes.

    Raises
    ------
    KeyFileError
        The file is missing, unreadable, empty or too short; an explicitly named
        variable is not set; the variable is set but empty or too short. The
        message names the file or variable, never the key.
    """
    if file is not None:
        p = Path(file)
        try:
            key = p.read_bytes().strip()
        except FileNotFoundError:
            raise KeyFileError(f"signing key file {p} does not exist; create it with "
                               f"`python -c \"import secrets; print(secrets.token_hex(32))\" > {p}` "
                               "and keep it readable only by the service account") from None
        except OSError as exc:
            raise KeyFileError(f"signing key file {p} cannot be read: {exc.strerror}") from exc
        return _check_key(key, f"signing key file {p}")
    name = KEY_ENV if env is None else env
    value = os.environ.get(name)
    if value is None:
        if env is not None and env != KEY_ENV:
            raise KeyFileError(f"environment variable {env} (named as the model signing key) is not set; "
                               "set it, or name another source of the key")
        return None
    return _check_key(value.encode("utf-8").strip(), f"environment variable {name}")


def model_key(settings) -> bytes | None:
    """The model signing key of a deployment, resolved like ``iizrisk train`` and ``score`` do.

    ``[model] signing_key_file`` (relative to the configuration file) wins; else
    the variable named by ``[model] signing_key_env`` (which must be set); else
    the default variable :data:`KEY_ENV` when set; else None (no key: only an
    unsigned model can load, and only with ``[model] allow_unsigned_model = true``).

    Raises
    ------
    KeyFileError
    """
    m = settings.model
    file = settings.resolve(m.signing_key_file) if m.signing_key_file else None
    return signing_key(env=m.signing_key_env or None, file=file)


def _canonical(manifest: dict) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def _sign(manifest: dict, key: bytes) -> str:
    return hmac.new(key, _canonical(manifest), hashlib.sha256).hexdigest()


def _versions() -> dict[str, str]:
    import sklearn
    import skops

    from . import __version__

    out = {"iizrisk": __version__, "python": sys.version.split()[0], "numpy": np.__version__,
           "pandas": pd.__version__, "scikit-learn": sklearn.__version__, "skops": skops.__version__}
    try:
        import shap

        out["shap"] = shap.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def _untrusted(data: bytes) -> list[str]:
    """Types in a skops file outside skops' own safe list and ours (nothing is constructed)."""
    import skops.io as sio

    return sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))


def _dump(model: RiskModel) -> bytes:
    import zipfile

    import skops.io as sio

    data = sio.dumps(model, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    extra = _untrusted(data)
    if extra:  # never write a model that load_model would refuse
        raise ModelError(f"the model holds types outside the trusted list of iizrisk.model.TRUSTED_TYPES: "
                         f"{', '.join(extra)}; use the features and estimators of iizrisk, or add the type "
                         "to the list after checking that building it runs no code")
    return data


def save_model(model: RiskModel, directory: str | Path, *, key: bytes | None = None) -> Path:
    """Write ``model.skops`` and ``manifest.json`` to ``directory`` atomically.

    The model is stored with ``skops.io`` (no pickle: loading builds only the
    types of :data:`TRUSTED_TYPES`). The files are written to a temporary
    folder beside ``directory`` which then replaces it, so a reader never sees
    a half-written model. With ``key`` the manifest, which holds the SHA-256 of
    the model file, carries an HMAC-SHA-256 signature; without one
    :func:`load_model` refuses the model unless unsigned models are allowed.

    Returns
    -------
    Path of the model directory.

    Raises
    ------
    KeyFileError
        ``key`` is shorter than :data:`MIN_SIGNING_KEY_BYTES`.
    ModelError
        The model holds a type :func:`load_model` would refuse.
    """
    check_is_fitted(model, "estimator_")
    if key is not None:
        _check_key(key, "the signing key given to save_model")
    data = _dump(model)
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.tmp-"))
    try:
        (tmp / MODEL_FILE).write_bytes(data)
        manifest = {
            "format": FORMAT,
            "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
            "model_file": MODEL_FILE,
            "model_sha256": hashlib.sha256(data).hexdigest(),
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
            manifest["signature"] = {"algorithm": SIGNATURE_ALGORITHM, "value": _sign(manifest, key)}
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
        from .modelcard import write_model_card

        write_model_card(tmp, tmp)  # model_card.md/.html/.json, from the manifest alone
        old = None
        if directory.is_symlink() or directory.exists():
            old = directory.parent / f".{directory.name}.old-{os.getpid()}"
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            if old.is_symlink() or not old.is_dir():
                old.unlink()
            else:
                shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if key is None:
        logger.warning("model written to %s UNSIGNED: `iizrisk run` and `score` refuse it unless unsigned "
                       "models are allowed; sign it with a key (--key-file or %s)", directory, KEY_ENV)
    else:
        logger.info("model written to %s (signed)", directory)
    return directory


class _Folder:
    """A model folder opened once: members are read relative to it, never through a link.

    The folder itself is opened with ``O_NOFOLLOW`` (a link is refused) and its
    members by name relative to that open folder, each read once into memory
    from one open file handle that must be a regular file. What is verified is
    what is then deserialised; no path is opened twice.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.fd: int | None = None

    def __enter__(self) -> _Folder:
        d = self.directory
        try:
            st = os.lstat(d)
        except FileNotFoundError:
            raise ModelError(f"{d}: not a model directory (it does not exist); train one with "
                             "`iizrisk train` or correct [model] dir / --model") from None
        except OSError as exc:
            raise ModelError(f"{d}: cannot read the model directory: {exc.strerror}") from exc
        if stat.S_ISLNK(st.st_mode):
            raise ModelError(f"{d}: is a symbolic link (to {os.readlink(d)}); a link can be switched to "
                             "another folder, so models are not loaded through one: point [model] dir or "
                             f"--model at the real folder {os.path.realpath(d)}")
        if not stat.S_ISDIR(st.st_mode):
            raise ModelError(f"{d}: not a model directory (not a folder); a model is the folder written by "
                             "`iizrisk train`")
        if _DIR_FD:
            try:
                self.fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC)
            except OSError as exc:  # switched to a link or removed since lstat
                raise ModelError(f"{d}: cannot open the model directory ({exc.strerror}); "
                                 "was it replaced while loading? Try again") from exc
            if not stat.S_ISDIR(os.fstat(self.fd).st_mode):  # pragma: no cover - O_DIRECTORY
                raise ModelError(f"{d}: not a folder")
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def names(self) -> list[str]:
        return os.listdir(self.fd if self.fd is not None else self.directory)

    def read(self, name: str) -> bytes:
        """The bytes of member ``name``, read from one open file handle."""
        return _read_member(self, name)


def _read_member(folder: _Folder, name: str) -> bytes:
    path = folder.directory / name
    if not name or name in {".", ".."} or "/" in name or os.sep in name:
        raise ModelError(f"{folder.directory}: the manifest names the model file {name!r}, which is not "
                         "a file name in the folder; the manifest was changed: retrain the model")
    flags = os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC | getattr(os, "O_BINARY", 0)
    try:
        if folder.fd is not None:
            fd = os.open(name, flags, dir_fd=folder.fd)
        else:  # pragma: no cover - platforms without dir_fd
            if path.is_symlink():
                raise OSError(errno.ELOOP, "is a symbolic link")
            fd = os.open(path, flags)
    except FileNotFoundError:
        raise ModelError(f"{path}: missing; the model directory is incomplete: retrain the model") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP or (folder.fd is not None and os.path.islink(path)):
            raise ModelError(f"{path}: is a symbolic link; model files are not read through links "
                             "(the target could be switched): copy the real file or retrain") from None
        raise ModelError(f"{path}: cannot be read: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ModelError(f"{path}: not a regular file; the model directory was changed: retrain the model")
        if st.st_size > _MAX_FILE_BYTES:
            raise ModelError(f"{path}: {st.st_size:,} bytes is more than any model file iizrisk writes "
                             f"({_MAX_FILE_BYTES:,}); refusing to read it")
        return fh.read(_MAX_FILE_BYTES + 1)


def _parse_manifest(raw: bytes, path: Path) -> dict:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: manifest is not valid JSON ({exc}); the model directory is damaged") from exc
    if not isinstance(manifest, dict):
        raise ModelError(f"{path}: manifest is not a JSON object; the model directory is damaged")
    return manifest


def read_manifest(directory: str | Path) -> dict:
    """The manifest of a model directory, **not verified** (use the one :func:`load_model` verified).

    Links and non-regular files are refused as in :func:`load_model`.
    """
    with _Folder(Path(directory)) as folder:
        return _manifest_of(folder)


def _manifest_of(folder: _Folder) -> dict:
    if MANIFEST_FILE not in folder.names():
        raise ModelError(f"{folder.directory}: not a model directory ({MANIFEST_FILE} missing); "
                         "train one with `iizrisk train`")
    return _parse_manifest(folder.read(MANIFEST_FILE), folder.directory / MANIFEST_FILE)


_UNSIGNED_FIX = (f"set [model] signing_key_file / signing_key_env (or {KEY_ENV}, or --key-file) and "
                 "retrain with `iizrisk train --key-file FILE`, or accept unsigned models with [model] "
                 "allow_unsigned_model = true (--allow-unsigned-model on the command line)")


def _verify_signature(manifest: dict, directory: Path, key: bytes | None, allow_unsigned: bool) -> bool:
    """True when the manifest's signature was verified with ``key``; False for an allowed unsigned model."""
    sig = manifest.get("signature")
    if key is not None:
        if not sig:
            raise ModelError(f"{directory}: the model is not signed but a signing key is configured; refusing "
                             "to load it (retrain with the key: `iizrisk train --key-file FILE`, or remove "
                             "the key setting)")
        if not isinstance(sig, dict) or sig.get("algorithm") != SIGNATURE_ALGORITHM:
            raise ModelError(f"{directory}: unknown signature algorithm in the manifest; expected "
                             f"{SIGNATURE_ALGORITHM}: retrain the model with the key")
        if not hmac.compare_digest(_sign(manifest, key), str(sig.get("value", ""))):
            raise ModelError(f"{directory}: signature check failed: the manifest was changed or signed "
                             "with another key; refusing to load the model (configure the key it was "
                             "trained with, or retrain)")
        return True
    if sig:
        raise ModelError(f"{directory}: the model is signed but no signing key is configured, so the "
                         "signature cannot be checked; refusing to load it: set [model] signing_key_file / "
                         f"signing_key_env (or {KEY_ENV}, or --key-file) to the key it was trained with")
    if not allow_unsigned:
        raise ModelError(f"{directory}: the model is not signed and no signing key is configured; without a "
                         "signature the file's hash proves nothing (anyone who can write the folder can "
                         f"recompute it). Fix: {_UNSIGNED_FIX}")
    logger.warning("%s: loading an UNSIGNED model (unsigned models are allowed): its hash only shows that the "
                   "file matches its manifest, not who wrote them", directory)
    return False


def _loads_skops(data: bytes, path: Path) -> Any:
    import skops.io as sio

    try:
        extra = _untrusted(data)
    except Exception as exc:  # not a skops zip, a damaged schema...
        raise ModelError(f"{path}: not a readable model file ({type(exc).__name__}: {exc}); "
                         "the model directory is damaged: retrain the model") from exc
    if extra:
        raise ModelError(f"{path}: holds types outside the trusted list ({', '.join(extra)}); refusing to "
                         "build them (the file may try to run code): retrain the model with iizrisk")
    try:
        return sio.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:
        raise ModelError(f"{path}: the model cannot be read ({type(exc).__name__}: {exc}); it may come "
                         "from another version of iizrisk or scikit-learn: retrain the model") from exc


def load_model(directory: str | Path, *, key: bytes | None = None, allow_unsigned: bool = False) -> RiskModel:
    """Load a model directory, verifying it before building anything from it.

    The folder and each file are opened once (no symbolic links, regular files
    only) and read into memory; the checks run on those bytes and the model is
    built from the same bytes, so the file checked is the file loaded. In order:

    1. the manifest's HMAC-SHA-256 signature with ``key``. A signed manifest
       without a key, or an unsigned one with a key, is refused; an unsigned
       model without a key is refused unless ``allow_unsigned`` (its hash
       alone proves nothing: anyone who can write the folder can recompute it);
    2. the SHA-256 of the model file against the (verified) manifest;
    3. the model file is built: ``model.skops`` with ``skops.io``, allowing only
       skops' safe types and :data:`TRUSTED_TYPES`. An old ``model.joblib``
       (format ``iizrisk-model/1``) is unpickled only when its signature was
       verified with ``key`` (then it was written by a holder of the key);
       unsigned it is refused even when unsigned models are allowed.

    The verified manifest is kept as ``model.manifest_``.

    Parameters
    ----------
    directory : path
    key : bytes, optional
        The signing key (:func:`signing_key`, :func:`model_key`).
    allow_unsigned : bool, default False
        Load an unsigned ``model.skops`` when no key is configured
        (``[model] allow_unsigned_model``, ``--allow-unsigned-model``).

    Raises
    ------
    ModelError
        Missing files, links, a wrong hash or signature, an unsigned model not
        allowed, a file holding untrusted types, or not a RiskModel.
    KeyFileError
        ``key`` is too short.
    """
    directory = Path(directory)
    if key is not None:
        _check_key(key, "the signing key given to load_model")
    with _Folder(directory) as folder:
        manifest = _manifest_of(folder)
        fmt = manifest.get("format")
        if fmt not in _FILES:
            raise ModelError(f"{directory}: unknown model format {fmt!r}; expected {FORMAT}: retrain the model")
        signed = _verify_signature(manifest, directory, key, allow_unsigned)
        name = _FILES[fmt]
        if manifest.get("model_file", name) != name:
            raise ModelError(f"{directory}: the manifest names the model file {manifest.get('model_file')!r}; "
                             f"format {fmt} keeps it in {name}: the manifest was changed, retrain the model")
        stray = sorted(n for n in folder.names() if n != name and n.lower().endswith(_PAYLOAD_SUFFIXES))
        if stray:
            raise ModelError(f"{directory}: holds model file(s) the manifest does not list ({', '.join(stray)}); "
                             "the folder was changed by hand or mixes two models: remove them or retrain")
        if fmt == LEGACY_FORMAT and not signed:
            raise ModelError(f"{directory / name}: an unsigned model in the old pickle format "
                             f"({LEGACY_FORMAT}); a pickle can run any code when loaded, so it is never loaded "
                             f"unsigned: retrain the model (`iizrisk train --key-file FILE` writes {MODEL_FILE})")
        data = folder.read(name)
    path = directory / name
    digest = hashlib.sha256(data).hexdigest()
    want = str(manifest.get("model_sha256", ""))
    if not hmac.compare_digest(digest, want):
        raise ModelError(f"{path}: SHA-256 {digest[:12]}... does not match the manifest ({want[:12]}...): "
                         "the file was changed; refusing to load it (retrain the model)")
    if fmt == LEGACY_FORMAT:
        import joblib

        logger.warning("%s: old pickle format, loaded because its signature was verified; retrain to write "
                       "%s", path, MODEL_FILE)
        model = joblib.load(io.BytesIO(data))
    else:
        model = _loads_skops(data, path)
    if not isinstance(model, RiskModel):
        raise ModelError(f"{path}: holds a {type(model).__name__}, not a RiskModel")
    listed = [f.get("name") for f in manifest.get("features", [])]
    if listed != list(getattr(model, "feature_names_in_", [])):
        raise ModelError(f"{directory}: the manifest lists other features than the model was fitted on; "
                         "the model directory is inconsistent: re-train it")
    model.manifest_ = manifest
    return model
