"""The estimators: :class:`RiskModel` (calibrated on a later time slice) and the BFS rule as a scorer."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .. import _time
from ..errors import ValidationError
from ._scoring import check_input
from ._split import _as_of_of, temporal_split

if TYPE_CHECKING:
    from ..features import PointInTimeFeatures

logger = logging.getLogger("iizrisk")

MODEL_KINDS = ("boosting", "logistic")
_BATCH = 250_000


class BfsRuleBaseline(ClassifierMixin, BaseEstimator):
    """The BFS revolving-door flag as a scorer: the training outcome rate of flagged and unflagged rows.

    Parameters
    ----------
    column : str, default "revolving_door_24m"
        The 0/1 feature holding the BFS revolving-door flag at T.

    Examples
    --------
    >>> import pandas as pd
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



class MedianImputer(TransformerMixin, BaseEstimator):
    """Missing values replaced by the column's training median, with missing-value indicator columns.

    What ``SimpleImputer(strategy="median", add_indicator=True,
    keep_empty_features=True)`` computes, in a tenth of the time: the medians
    come from :func:`numpy.nanmedian` (a partition per column), where
    scikit-learn's dense path takes the median of a masked copy of the whole
    matrix and sorts it (20 s against 2 s of CPU for a million rows of 60
    features). A column without any value imputes 0.

    Parameters
    ----------
    add_indicator : bool, default True
        Append a 0/1 column for each feature that had missing values at fit
        (:class:`sklearn.impute.MissingIndicator`, ``features="missing-only"``).

    Attributes
    ----------
    statistics_ : ndarray of shape (n_features,)
    indicator_ : MissingIndicator or None
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, np.nan], [3.0, 4.0], [np.nan, 6.0]])
    >>> MedianImputer().fit_transform(X).tolist()
    [[1.0, 5.0, 0.0, 1.0], [3.0, 4.0, 0.0, 0.0], [2.0, 6.0, 1.0, 0.0]]
    """

    def __init__(self, add_indicator: bool = True):
        self.add_indicator = add_indicator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # what it is for; infinities are refused
        return tags

    def fit(self, X, y=None) -> MedianImputer:
        """Learn each column's median (and which columns had missing values)."""
        import warnings

        from sklearn.impute import MissingIndicator
        from sklearn.utils import check_array

        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        A = check_array(X, dtype=np.float64, ensure_all_finite="allow-nan")
        self.n_features_in_ = A.shape[1]
        with warnings.catch_warnings():  # an all-missing column: NaN, imputed as 0 below
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(A, axis=0) if len(A) else np.full(A.shape[1], np.nan)
        self.statistics_ = np.where(np.isnan(med), 0.0, med)
        self.indicator_ = MissingIndicator(features="missing-only", error_on_new=False).fit(A) if self.add_indicator else None
        return self

    def transform(self, X) -> np.ndarray:
        """The values with the medians filled in, then the indicator columns."""
        from sklearn.utils import check_array

        check_is_fitted(self, "statistics_")
        A = check_array(X, dtype=np.float64, ensure_all_finite="allow-nan")
        if A.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {A.shape[1]} features, but MedianImputer is expecting "
                             f"{self.n_features_in_} features as input")
        out = np.where(np.isnan(A), self.statistics_, A)
        if self.indicator_ is not None:
            out = np.hstack([out, self.indicator_.transform(A).astype(np.float64)])
        return out


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

    Notes
    -----
    In a scikit-learn ``Pipeline`` after :class:`PointInTimeFeatures` (with
    metadata routing enabled), the pipeline's ``as_of`` goes to the features
    (``set_fit_request(as_of=True)`` and ``set_transform_request(as_of=True)``
    on them) and this model reads each row's date from the ``as_of`` level of
    their index. It therefore does not request ``as_of`` by default: the
    pipeline's ``as_of`` lists the snapshot dates, not one date per row.
    ``set_fit_request(as_of=True)`` routes a per-row ``as_of`` to :meth:`fit`
    instead. ``y`` holds one outcome per feature row (person and as-of date,
    in the order of the features), e.g. from
    :func:`iizrisk.outcomes.compute_outcome` with ``pairs`` set to the
    features' index.

    scikit-learn's estimator checks feed NumPy arrays; this model takes
    DataFrames with named feature columns only (the names go into the
    manifest, the input checks and the explanations), so most of them fail by
    design. ``tests/test_sklearn.py`` lists each with its reason.
    """

    # the pipeline's as_of (snapshot dates) is for the features; the dates per row come from X's index
    __metadata_request__fit = {"as_of": False}

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing features: native in boosting, imputed in logistic
        return tags

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
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import Pipeline
            from sklearn.preprocessing import StandardScaler

            return Pipeline([
                ("impute", MedianImputer(add_indicator=True)),
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
            raise ValidationError("y holds a single class; the outcome never (or always) happens in these rows")
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
            raise ValidationError("the training or calibration slice holds fewer than two rows of a class; "
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

    def risk_and_log_odds(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated risk and the base model's log-odds, from one pass of the base model.

        Equal to ``predict_proba(X)[:, 1]`` and ``decision_function(X)``: an isotonic or sigmoid
        calibration around the frozen base model maps the base model's decision function, so the
        nightly scoring need not run the boosting twice (a million people: about 6 s). Other
        calibrations, and models without a decision function, call both.
        """
        X = self._check_X(X)
        cal = self.calibrator_
        one = (cal is not None and hasattr(self.estimator_, "decision_function")
               and len(getattr(cal, "calibrated_classifiers_", ())) == 1
               and getattr(cal.calibrated_classifiers_[0], "method", None) in ("isotonic", "sigmoid")
               and len(cal.calibrated_classifiers_[0].calibrators) == 1 and len(self.classes_) == 2)
        if cal is None or not one:
            risk = self.predict_proba(X)[:, 1]
            return risk, (self.decision_function(X) if hasattr(self.estimator_, "decision_function")
                          else np.asarray(risk, dtype=np.float64))
        raw = self.decision_function(X)
        risk = np.asarray(cal.calibrated_classifiers_[0].calibrators[0].predict(raw), dtype=np.float64)
        # as scikit-learn's calibrated classifier: a probability minimally above 1 is 1
        risk[(1.0 < risk) & (risk <= 1.0 + 1e-5)] = 1.0
        return risk, raw

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

    def print_summary(self, file=None) -> None:
        """Print :attr:`summary` (the result protocol of :mod:`iizrisk._results`): HTML in a
        notebook, plain text in a terminal or into ``file``; never the log."""
        from .._results import in_notebook

        if file is None and in_notebook():
            from IPython.display import HTML, display

            display(HTML(self._repr_html_()))
            return
        print(f"RiskModel: {self.model}, outcome {self.outcome}, horizon {self.horizon_months} months\n"
              f"{self.summary.to_string()}", file=file if file is not None else sys.stdout)

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
