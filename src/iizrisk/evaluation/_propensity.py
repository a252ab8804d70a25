"""Propensity scores: the probability of treatment given the covariates."""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

__all__ = ["LogisticPropensity", "default_propensity_model", "fit_propensity", "logit", "reusing_fits"]

logger = logging.getLogger("iizrisk")

#: Propensity scores are clipped to [EPS, 1 - EPS] before logits and weights.
EPS = 1e-6
#: Rows per block of the Newton fit's sums (about 80 MB of a block's temporary at 40 covariates).
_BLOCK = 1 << 18


class LogisticPropensity(ClassifierMixin, BaseEstimator):
    """L2-penalised logistic regression on standardised covariates, fitted by Newton's method.

    The same model as scikit-learn's
    ``make_pipeline(StandardScaler(), LogisticRegression(C=C))`` (the intercept
    is not penalised), fitted by Newton-Raphson with step halving: a few
    matrix products instead of an iterative solver, which makes refitting it
    on hundreds of bootstrap replicates cheap.

    Parameters
    ----------
    C : float, default 1.0
        Inverse penalty strength (as in scikit-learn).
    max_iter : int, default 100
    tol : float, default 1e-8
        Stop when the largest Newton step of a standardised coefficient is smaller.

    Attributes
    ----------
    coef_ : ndarray of shape (1, p)
        Coefficients on the original (unstandardised) scale.
    intercept_ : ndarray of shape (1,)
    classes_ : ndarray ``[0, 1]``
    n_iter_ : int

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> m = LogisticPropensity().fit(X, [0, 0, 1, 1])
    >>> bool(m.predict_proba(X)[3, 1] > 0.5)
    True
    """

    def __init__(self, *, C: float = 1.0, max_iter: int = 100, tol: float = 1e-8):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y, sample_weight=None):
        """Fit the model; ``y`` holds 0/1 labels."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).ravel()
        n, p = X.shape
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        sw = w.sum()
        mu = w @ X / sw
        # the variance and the Hessian are summed over blocks of rows, and the standardised covariates exist
        # one block at a time: a research study's table has millions of rows, and full-size copies cost
        # gigabytes and page faults
        blocks = [slice(a, min(a + _BLOCK, n)) for a in range(0, n, _BLOCK)]
        var = sum((w[b] @ (X[b] - mu) ** 2 for b in blocks), np.zeros(p))
        sd = np.sqrt(var / sw)
        sd = np.where(sd > 0, sd, 1.0)
        lam = np.full(p + 1, 1.0 / float(self.C))
        lam[0] = 0.0
        beta = np.zeros(p + 1)
        ybar = float(w @ y / sw)
        beta[0] = np.log(max(ybar, 1e-12)) - np.log(max(1 - ybar, 1e-12))

        def linear(b):  # Z @ b, with Z = [1, (X - mu) / sd]
            slope = b[1:] / sd
            return X @ slope + (b[0] - float(mu @ slope))

        def loss(b):
            eta = linear(b)
            return float(w @ (np.logaddexp(0.0, eta) - y * eta) + 0.5 * lam @ b ** 2)

        cur = loss(beta)
        converged = False
        it = 0
        for it in range(1, int(self.max_iter) + 1):  # noqa: B007 - Newton iterations, not units
            eta = linear(beta)
            prob = 0.5 * (1.0 + np.tanh(0.5 * eta))
            r = w * (prob - y)
            r0 = float(r.sum())
            grad = np.concatenate([[r0], (r @ X - mu * r0) / sd]) + lam * beta
            v = w * prob * (1 - prob)
            H = np.zeros((p + 1, p + 1))
            for b in blocks:
                Zb = (X[b] - mu) / sd
                vZ = Zb * v[b, None]
                H[0, 0] += v[b].sum()
                H[0, 1:] += vZ.sum(axis=0)
                H[1:, 1:] += vZ.T @ Zb
            H[1:, 0] = H[0, 1:]
            H[np.diag_indices_from(H)] += lam + 1e-10
            try:
                step = np.linalg.solve(H, grad)
            except np.linalg.LinAlgError:
                step = np.linalg.lstsq(H, grad, rcond=None)[0]
            t = 1.0
            while True:
                new = beta - t * step
                val = loss(new)
                if val <= cur + 1e-12 * abs(cur) or t < 1e-10:
                    break
                t *= 0.5
            beta, cur = new, val
            if np.max(np.abs(t * step)) < float(self.tol):
                converged = True
                break
        if not converged:
            warnings.warn(f"LogisticPropensity did not converge in {self.max_iter} Newton steps",
                          ConvergenceWarning, stacklevel=2)
        self.coef_ = (beta[1:] / sd)[None, :]
        self.intercept_ = np.array([beta[0] - float((beta[1:] / sd) @ mu)])
        self.classes_ = np.array([0, 1])
        self.n_iter_ = it
        return self

    def decision_function(self, X) -> np.ndarray:
        """The linear predictor (log-odds of treatment)."""
        check_is_fitted(self, "coef_")
        return np.asarray(X, dtype=np.float64) @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of class 0 and class 1 (two columns)."""
        p1 = 0.5 * (1.0 + np.tanh(0.5 * self.decision_function(X)))
        return np.column_stack([1 - p1, p1])

    def predict(self, X) -> np.ndarray:
        """Class 1 where its probability exceeds one half."""
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


def default_propensity_model() -> LogisticPropensity:
    """The default propensity model: :class:`LogisticPropensity` with ``C=1``.

    The mild penalty keeps the fit stable when covariates are many and
    correlated (the point-in-time features are) or separate the groups; on
    standardised covariates it shrinks little once there are a few hundred
    treated.
    """
    return LogisticPropensity(C=1.0)


def logit(p) -> np.ndarray:
    """``log(p / (1 - p))`` of probabilities clipped to [1e-6, 1 - 1e-6].

    Examples
    --------
    >>> logit([0.5]).tolist()
    [0.0]
    """
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def fit_propensity(X: np.ndarray, treated: np.ndarray, model=None) -> np.ndarray:
    """Fit a clone of ``model`` (default :func:`default_propensity_model`) and return P(T=1 | X).

    A convergence warning of the solver is logged, not raised. Scores are
    clipped to [1e-6, 1 - 1e-6].
    """
    t = np.asarray(treated, dtype=bool)
    if X.shape[1] == 0:
        p = np.full(len(t), t.mean())
        return np.clip(p, EPS, 1 - EPS)
    est = clone(model) if model is not None else default_propensity_model()
    memo = _FITS.get()
    key = _fit_key(X, t, est) if memo is not None else None
    if memo is not None and key in memo:
        return memo[key].copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est.fit(X, t.astype(np.int8))
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            logger.warning("propensity model: %s", w.message)
        else:  # pragma: no cover - pass other warnings on unchanged
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    classes = list(getattr(est, "classes_", [0, 1]))
    p = np.clip(est.predict_proba(X)[:, classes.index(1)], EPS, 1 - EPS)
    if memo is not None:
        memo[key] = p.copy()
        while len(memo) > _MEMO_SIZE:
            memo.pop(next(iter(memo)))
    return p


# fits kept within reusing_fits(): the last few, keyed by a digest of the data and the model's parameters
_FITS: ContextVar[dict | None] = ContextVar("iizrisk_propensity_fits", default=None)
_MEMO_SIZE = 4


@contextmanager
def reusing_fits() -> Iterator[None]:
    """Within the block, :func:`fit_propensity` fits a model once per distinct data and parameters.

    A research study estimates several outcomes on the same rows: each
    outcome's estimator fits the same propensity model to the same covariates
    and treatment, which on millions of rows takes a minute each. The scores
    are kept for the last four distinct fits (the key is a BLAKE2 digest of
    the covariates and the treatment, and the model's parameters); a copy is
    returned, so an estimator cannot change another's.
    """
    token = _FITS.set({})
    try:
        yield
    finally:
        _FITS.reset(token)


def _fit_key(X: np.ndarray, t: np.ndarray, est) -> tuple:
    h = hashlib.blake2b(digest_size=32)
    # a matrix in column order (a DataFrame's to_numpy) is hashed as its transpose: no copy of gigabytes
    # (the same data in the other order only misses the reuse)
    order = "F" if X.flags.f_contiguous and not X.flags.c_contiguous else "C"
    h.update(order.encode())
    h.update(np.ascontiguousarray(X.T if order == "F" else X, dtype=np.float64).data.cast("B"))
    h.update(np.ascontiguousarray(t, dtype=np.uint8).data.cast("B"))
    return (type(est).__qualname__, repr(sorted(est.get_params().items())), X.shape, h.hexdigest())
