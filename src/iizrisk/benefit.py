"""Rank by benefit: whose revolving door would a joint assessment prevent, and would ranking by it prevent more?

A risk score answers "who is likely to cycle?"; a coordinator with 25 places
asks "whose cycling would an assessment prevent?". The two rankings differ
when the effect of an assessment varies: people already on their way to an
IV pension are at high risk but gain little. This module estimates the
*conditional average treatment effect* (CATE) of an assessment from past
assessments, and evaluates targeting policies offline before anyone uses them.

Data
----
The risk-set table of :func:`iizrisk.evaluation.risk_set_table`: one row per
person assessed on day ``d`` and per sampled control registered and not yet
assessed on ``d``, with the point-in-time features at ``d`` and the outcome
after ``d`` (default ``revolving_door_next_12m``). Rows are limited to people
registered at ALV, IV or SH on their day (``population="core"``, the people a
worklist proposes). ``sampling_weight`` makes the sampled controls stand for
their whole risk set.

Estimators (:class:`BenefitModel`)
----------------------------------
* ``learner="dr"`` (default) -- the DR-learner (Kennedy 2023): propensity
  ``e(x)`` and outcome models ``mu0(x)``, ``mu1(x)`` are fitted on the other
  folds (cross-fitting, folds by person), each row gets the doubly robust score
  ``phi = mu1 - mu0 + t (y - mu1) / e - (1 - t) (y - mu0) / (1 - e)``, and an
  effect model regresses ``phi`` on the features. ``e`` is the probability
  of an assessment *in the risk set*: the table's controls are a sample of
  each day's risk set (``sampling_weight`` people each), so the propensity
  fitted on the table has odds that many times higher and is converted back
  per row (without it each assessed would stand only for themselves, and the
  weighted scores would be the outcome models' extrapolation). These
  risk-set scores serve the weighted averages (policy values, calibration,
  BLP). The effect model fits the rows unweighted, so it regresses the
  scores built with the table's own propensity: their conditional mean is the
  same effect, with far less noise.

  **The propensity's penalty** is chosen by cross-validated log loss over
  the person folds (:data:`PENALTY_GRID`) unless a propensity model is
  given; the method line states the choice. A fixed C=1 overfits the
  point-in-time features out of fold (57 features, 150-370 assessed on the
  synthetic cantons): the assessed's inverse propensities summed to 1.2-1.5
  times the people they stand for, and every inverse-propensity term was
  inflated by as much. It also bends the BLP test: the effect model of fold k
  and the outcome models behind fold k's scores learn from the same other
  folds, and too large inverse propensities over-correct the outcome models'
  errors that the effect model has learnt, pulling the slope below 0 (40
  features, a homogeneous effect, predictions ``mu1 - mu0``: the slope's z
  averaged -0.54 over 40 draws with the estimated propensity, +0.37 with the
  true one). With the chosen penalty the sum is 0.95-1.01 times the people at
  risk (six cantons of 12,000 persons). The coupling itself remains (four
  unconfounded cantons without any effect: slope median -1.4, no z below
  -1.96); removing it needs scores for the test whose outcome models are
  fitted on folds the effect model never saw. The slope is a ratio over the
  predictions' variance: over several data sets read its median or its z,
  not its mean (one canton of six at 6,000 persons gave -19).

**Who could have been assessed.** Policy values and average effects over
everyone at risk need assessed people in every situation a policy may pick.
When assessments are held only early in an episode (as in the synthetic
canton: 14-90 days after an ALV, SH or IV episode starts), build the table
with ``risk_set_table(..., episode_days=(14, 90))``: the model, its policy
values and :func:`true_policy_values` then concern people at that point of
an episode only, where the data can answer.
* ``learner="t"`` -- the T-learner: ``mu1(x) - mu0(x)``.
* ``learner="s"`` -- the S-learner with assessment interactions: one
  L2-penalised logistic outcome model on the features, the assessment and
  the assessment times each (centred) feature, all standardised; ``mu0``
  and ``mu1`` are its predictions without and with the assessment, the
  benefit ``mu0 - mu1``. The effect acts on the log-odds, so the same shift
  prevents more where the risk is moderate to high, and the shared main
  effects leave the few assessed only the interactions to learn. Its
  penalty is chosen by cross-validated log loss over the person folds
  (:data:`OUTCOME_PENALTY_GRID`). Policy values, calibration and the BLP
  test use the doubly robust scores built on its out-of-fold ``mu0``/``mu1``.

The *benefit* is the expected reduction of the outcome's probability,
``-tau(x)``: 0.02 means two revolving doors prevented per 100 assessments of
people like this one. The *risk* is ``mu0(x)``, the probability without an
assessment. Every prediction used to judge the model is out of fold.

Calibration of the estimated effects (:attr:`BenefitModel.calibration_`):
the rows are split into ``n_groups`` quantile groups of predicted benefit
(within each cross-fitting fold: rows are ranked only against rows scored by
the same models); in each, the mean of the doubly robust scores estimates
the group's true benefit, with a normal confidence interval. The best linear predictor test
(:attr:`BenefitModel.blp_`, Chernozhukov, Demirer, Duflo and Fernández-Val;
Semenova and Chernozhukov's form on doubly robust scores) regresses the scores
on the predicted effect centred within its fold: a slope near 1 and clearly above 0 says the
predicted differences are real, near 0 that they are noise.

**Overlap.** A benefit model compares assessed and not-assessed people *in
the same situation*. When assessments went only to one kind of people -- for
example only to the highest-risk -- there is nobody to compare with, and
:class:`BenefitModel` refuses (:class:`NoOverlapError`) instead of
extrapolating.

Policies (:func:`evaluate_policies`)
------------------------------------
Within each calendar month of index days (and within each cross-fitting
fold, whose rows are ranked by that fold's models), a policy gives assessments to a
``capacity`` share (default 5 %) of the people at risk: top by risk, top by
benefit, top by risk x benefit, at random within the high risk band (top
``high_band`` share by risk), or at random; ``actual`` is the coordinators'
own choice, the assessments that were held (as many as they were): its value
is the doubly robust effect on the assessed. Its value -- outcomes prevented
per 100 assessments -- is the (weighted) mean of the doubly robust scores of
the people it selects, times -100, self-normalised by default: among the
selected, the assessed's inverse-propensity-weighted residuals are divided
by their own weight total ``sum t / e`` rather than by the selection's weight
(the Hajek form; ``normalised=False`` gives the plain mean of the scores).
A policy selects few assessed people, so the plain mean swings with how
many of them happen to be selected and with the size of their inverse
propensities. On six synthetic cantons of 12,000 persons with heterogeneous
effects (``benchmarks/benefit_quality.py --seeds 6 --persons 12000
--scenarios het``) the self-normalised 95 % intervals of top-by-risk and
top-by-benefit were 31 and 18 prevented per 100 wide (plain: 72 and 37),
and covered the true values as often (5 or 6 of 6 for each policy, both
forms). Each value comes with a bootstrap interval (rows
resampled, out-of-fold scores kept). Each policy's difference to top-by-risk
comes with its own paired interval. On a synthetic population with
``effect_sample`` (:mod:`iizrisk.synth`), :func:`true_policy_values` measures the
same policies with the exact counterfactuals, with the oracle (realised
individual effects) as the ceiling.

Assumptions: those of :data:`iizrisk.evaluation.ASSUMPTIONS` (no unmeasured
confounding, overlap, no interference); the effect is "assessed now" against
"not now" (controls may be assessed later, which dilutes it).

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> n = 4000
>>> x = rng.normal(size=n)
>>> t = rng.random(n) < 1 / (1 + np.exp(1 - 0.5 * x))
>>> y = rng.random(n) < 0.3 + 0.1 * x.clip(-2, 2) - t * 0.1 * (x > 0)
>>> table = pd.DataFrame({"person_id": np.arange(n).astype(str), "x": x, "treated": t,
...                       "revolving_door_next_12m": y.astype(float),
...                       "index_date": pd.Timestamp("2020-01-31")})
>>> m = BenefitModel(covariates=["x"], population="all", random_state=0).fit(table)
>>> m.blp_.index.tolist()
['average', 'heterogeneity']

Four thousand rows are few for heterogeneity: on this draw the data happen to
show more prevention at low ``x`` (the outcomes of the 97 assessed with
``x < -1`` are 5.9 points below their controls', against no true effect),
and the BLP slope is negative (-4.0, interval across 0). Over the next seven
draws of the same design (seeds 1-7) it lies between 0.2 and 1.1 and the
learnt benefit correlates with the true one. Read ``calibration_`` and
``blp_`` before trusting a ranking. (The sign conventions are pinned by
``tests/test_benefit.py::test_benefit_is_prevention_everywhere``.)
"""

from __future__ import annotations

import hashlib
import html
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import clone, is_classifier
from threadpoolctl import threadpool_limits

from ._checks import is_real, whole_number
from ._results import OutputFigure, OutputTable, ResultMixin
from ._texts import or_english, text
from ._time import _shown
from .config import RANK_BY
from .errors import ConfigError, ValidationError

__all__ = ["DEFAULT_OUTCOME", "POLICIES", "RANK_BY", "BenefitModel", "Evidence", "NoOverlapError",
           "PolicyEvaluation", "benefit_at", "evaluate_policies", "features_at", "load_benefit_model",
           "true_policy_values"]

logger = logging.getLogger("iizrisk")

#: The outcome column of the risk-set table that a benefit model explains by default.
DEFAULT_OUTCOME = "revolving_door_next_12m"
#: Targeting policies of :func:`evaluate_policies`, in the order reported.
POLICIES: tuple[str, ...] = ("risk", "benefit", "risk_x_benefit", "random_high_band", "random", "actual")
_POLICY_WORDS = {
    "risk": "top k by risk (today)",
    "benefit": "top k by estimated benefit",
    "risk_x_benefit": "top k by risk x benefit",
    "random_high_band": "at random within the high risk band",
    "random": "at random among all at risk",
    "actual": "the assessments actually held (the coordinators' choices)",
    "oracle": "oracle: true individual effects (ceiling)",
}
#: Decimals of a policy value (outcomes prevented per 100 assessments) in the tables people read.
VALUE_DECIMALS = 2
#: Propensity scores are clipped to [CLIP, 1 - CLIP] in the doubly robust scores.
CLIP = 0.01
#: Penalties (scikit-learn's C, inverse strength) among which the default propensity model's is
#: chosen by cross-validated log loss over the model's person folds.
PENALTY_GRID: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
#: Penalties among which the S-learner's outcome model's is chosen by cross-validated log loss.
OUTCOME_PENALTY_GRID: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
_CORE_OPEN = ("open_alv", "open_iv", "open_sh")
_NOT_COVARIATES = ("person_id", "index_date", "treated", "later_assessment_days", "sampling_weight",
                   "exit_days", "exit_observed")


class NoOverlapError(ValidationError):
    """The data cannot support a benefit model: the assessed have no comparable non-assessed people."""


@dataclass(frozen=True)
class Evidence:
    """Whether a benefit model's offline evaluation supports ordering worklists by ``rank_by``.

    ``reason`` is one sentence with the figures (policy value, top-by-risk's,
    the difference's interval); the numbers are None without an evaluation.
    """

    rank_by: str
    supported: bool
    reason: str
    value: float | None = None
    risk_value: float | None = None
    lower: float | None = None
    upper: float | None = None
    capacity: float | None = None
    #: why, as a key of the texts' catalogue (``card.ranking_<code>``): "risk", "no_evaluation",
    #: "no_interval", "supported" or "not_supported"
    code: str = ""


# ----------------------------------------------------------------------------- defaults
def default_outcome_model():
    """Outcome models ``mu0``, ``mu1``: L2-penalised logistic regression (C=1) on standardised features."""
    from .evaluation import LogisticPropensity

    return LogisticPropensity(C=1.0)


def default_effect_model():
    """The DR-learner's effect model: ridge regression on standardised features, penalty by leave-one-out."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-1, 5, 13)))


def _model_words(model, what: str) -> str:
    """The model in words, with its penalty (every method line states the propensity model's penalty)."""
    from .evaluation._estimators import propensity_words

    return what + ":" + propensity_words(model).split(":", 1)[1]


def _fold_of(persons: np.ndarray, n_folds: int, rng) -> np.ndarray:
    """Fold of each row: all rows of a person in the same fold."""
    codes, uniques = pd.factorize(pd.Series(persons))
    perm = rng.permutation(len(uniques))
    return (perm % n_folds)[codes]


def _choose_penalty(X: np.ndarray, t: np.ndarray, fold: np.ndarray, grid=PENALTY_GRID
                    ) -> tuple[float, np.ndarray]:
    """The propensity penalty with the smallest out-of-fold log loss over the person folds: (C, mean losses).

    (Also the S-learner's outcome penalty: ``X`` its design, ``t`` the outcome.)

    On the synthetic cantons' tables (57 point-in-time features, 150-370
    assessed) a logistic propensity with C=1 is overfit out of fold: the
    assessed's inverse propensities sum to 1.2-1.5 times the risk sets they
    stand for, the lowest fifth of propensities is half the observed rate and
    the highest fifth 1.6 times it. A penalty chosen by cross-validated log
    loss brought the sum to 0.98-1.03 on eight such tables.
    """
    from .evaluation import LogisticPropensity

    losses = np.zeros(len(grid))
    ti = t.astype(np.int8)
    for k in np.unique(fold):
        te = fold == k
        if not (ti[~te].min() < ti[~te].max()):
            continue
        for j, C in enumerate(grid):
            p = LogisticPropensity(C=float(C)).fit(X[~te], ti[~te]).predict_proba(X[te])[:, 1]
            p = np.clip(p, 1e-6, 1 - 1e-6)
            losses[j] -= float(np.sum(ti[te] * np.log(p) + (1 - ti[te]) * np.log1p(-p)))
    losses /= len(t)
    return float(grid[int(np.argmin(losses))]), losses


def _interaction_design(X: np.ndarray, t: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The S-learner's columns: the features, the assessment, and the assessment times each centred feature."""
    tf = t.astype(np.float64)
    return np.column_stack([X, tf, tf[:, None] * (X - centre[None, :])])


def _fit_interactions(X: np.ndarray, t: np.ndarray, y: np.ndarray, C: float):
    """The S-learner's logistic model, returned as two logistic models of the features: without and with
    the assessment (their coefficients are the fitted model's, so no new type is saved)."""
    from .evaluation import LogisticPropensity

    if len(np.unique(y)) < 2:
        return _Constant(float(np.mean(y))), _Constant(float(np.mean(y)))
    centre = X.mean(axis=0)
    fit = LogisticPropensity(C=C).fit(_interaction_design(X, t, centre), y.astype(np.int8))
    p = X.shape[1]
    a, b_t, g = fit.coef_[0][:p], float(fit.coef_[0][p]), fit.coef_[0][p + 1:]
    arms = []
    for coef, intercept in ((a, float(fit.intercept_[0])), (a + g, float(fit.intercept_[0]) + b_t - float(g @ centre))):
        arm = LogisticPropensity(C=C)
        arm.coef_, arm.intercept_, arm.classes_, arm.n_iter_ = coef[None, :].copy(), np.array([intercept]), \
            np.array([0, 1]), fit.n_iter_
        arms.append(arm)
    return arms[0], arms[1]


def _predict(model, X) -> np.ndarray:
    """Predicted probabilities (a classifier's of class 1) or values of ``model`` for the rows of ``X``.

    A :class:`_Constant` (an arm without events, also in a saved model) predicts its value: it is no
    scikit-learn estimator, and asking scikit-learn whether it is a classifier raises (its tags).
    """
    if isinstance(model, _Constant):
        return model.predict(X)
    if hasattr(model, "predict_proba"):
        classes = list(getattr(model, "classes_", [0, 1]))
        return model.predict_proba(X)[:, classes.index(1)]
    try:
        classifier = is_classifier(model)
    except Exception:  # an estimator without scikit-learn's tags: judged by its methods alone
        classifier = False
    if classifier:  # its predict gives 0/1 decisions, not the probabilities the effects are built from
        raise ConfigError(f"{type(model).__name__} is a classifier without predict_proba; give one that "
                          "predicts probabilities (e.g. SVC(probability=True)) or a regressor")
    return np.asarray(model.predict(X), dtype=np.float64)


def _fit_outcome(model, X, y):
    m = clone(model)
    if hasattr(m, "predict_proba"):
        if len(np.unique(y)) < 2:  # a group without events: a constant prediction
            return _Constant(float(np.mean(y)))
        return m.fit(X, y.astype(np.int8))
    return m.fit(X, y)


@dataclass
class _Constant:
    value: float

    def predict(self, X):
        return np.full(len(X), self.value)


def _weighted_quantile_groups(score: np.ndarray, w: np.ndarray, k: int, strata: np.ndarray | None = None
                              ) -> np.ndarray:
    """Group 0..k-1 of each row by weighted quantiles of ``score`` (ties broken by order), within each stratum.

    With ``strata`` (the cross-fitting fold of each row) the quantiles are taken
    within each stratum, so that rows are only ranked against rows scored by
    the same model; group ``j`` is the union of the strata's groups ``j``.
    """
    strata = np.zeros(len(score), dtype=np.int64) if strata is None else np.asarray(strata)
    order = np.lexsort((score, strata))
    st, ws = strata[order], w[order]
    first = np.r_[True, st[1:] != st[:-1]]
    seg = np.cumsum(first) - 1
    cw = np.cumsum(ws)
    before = np.r_[0.0, cw][np.flatnonzero(first)][seg]
    total = np.add.reduceat(ws, np.flatnonzero(first))[seg] if len(ws) else ws
    g = np.empty(len(score), dtype=np.int64)
    g[order] = np.minimum((k * (cw - before - ws / 2) / np.where(total > 0, total, 1.0)).astype(np.int64), k - 1)
    return g


def _centred_within(x: np.ndarray, w: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """``x`` minus its weighted mean within each stratum."""
    codes, _ = pd.factorize(pd.Series(strata))
    sw = np.bincount(codes, weights=w)
    m = np.bincount(codes, weights=w * x) / np.where(sw > 0, sw, 1.0)
    return x - m[codes]


# ----------------------------------------------------------------------------- the model
class BenefitModel(ResultMixin):
    """Conditional effect of a joint assessment (DR-learner or T-learner) on a risk-set table.

    Parameters
    ----------
    learner : {"dr", "t", "s"}, default "dr"
        DR-learner with cross-fitting, T-learner, or S-learner with
        assessment interactions (see the module documentation).
    outcome : str, default "revolving_door_next_12m"
        Outcome column; rows where it is missing (not yet observed) are left out.
    covariates : list of str, optional
        Feature columns (default: every column that is not an identifier, the
        treatment, an outcome or a weight, and that varies).
    population : {"core", "all"}, default "core"
        ``"core"``: rows registered at ALV, IV or SH on their day (the
        ``open_alv``/``open_iv``/``open_sh`` features); ``"all"``: every row.
    n_folds : int, default 5
        Cross-fitting folds (by person).
    propensity_model, outcome_model, effect_model : scikit-learn estimators, optional
        Defaults: a :class:`iizrisk.evaluation.LogisticPropensity` whose L2
        penalty is chosen from :data:`PENALTY_GRID` by cross-validated log loss
        over the person folds (``propensity_penalty_``; stated in the method
        line), :func:`default_outcome_model`, :func:`default_effect_model`.
    n_groups : int, default 5
        Quantile groups of predicted benefit in the calibration table.
    max_outside_share : float, default 0.1
        Refuse (:class:`NoOverlapError`) when more than this share of the
        assessed have a propensity above every not-assessed person's, or above
        0.98: nobody comparable was left unassessed.
    max_concentrated_share : float, default 0.5
        Refuse also when more than this share of the assessed have a
        propensity above the not-assessed's 95th percentile (a handful of
        not-assessed people at the top does not hide a separation).
    alpha : float, default 0.05
    random_state : int, optional

    Attributes
    ----------
    data_ : DataFrame
        The rows used: ``person_id``, ``index_date``, ``treated``, outcome,
        ``weight``, ``fold``, and out of fold ``propensity`` (the table's),
        ``risk_set_propensity``, ``risk`` (mu0), ``mu1``, ``benefit`` (-tau) and
        ``dr_score`` (the doubly robust score of the effect).
    calibration_ : DataFrame
        Per quantile group of predicted benefit: rows, assessed, mean predicted
        benefit, doubly robust estimate with interval.
    blp_ : DataFrame
        The best linear predictor test: ``average`` (mean effect) and
        ``heterogeneity`` (slope on the predicted effect centred within its
        fold) with se, z, p.
    overlap_ : dict
        ``outside_share``, ``extreme_share``, propensity ranges.
    propensity_penalty_ : float or None
        The chosen propensity penalty C (None when a propensity model was given).

    A fitted model is saved with :meth:`save` (one ``.skops`` file without the
    rows) and read back with :func:`load_benefit_model`.
    """

    #: SHA-256 of the file a loaded model was read from (:func:`load_benefit_model`); None when fitted here
    file_sha256_: str | None = None

    def __init__(self, *, learner: str = "dr", outcome: str = DEFAULT_OUTCOME, covariates=None,
                 population: str = "core", n_folds: int = 5, propensity_model=None, outcome_model=None,
                 effect_model=None, n_groups: int = 5, max_outside_share: float = 0.1,
                 max_concentrated_share: float = 0.5, alpha: float = 0.05, random_state=None):
        self.learner = learner
        self.outcome = outcome
        self.covariates = covariates
        self.population = population
        self.n_folds = n_folds
        self.propensity_model = propensity_model
        self.outcome_model = outcome_model
        self.effect_model = effect_model
        self.n_groups = n_groups
        self.max_outside_share = max_outside_share
        self.max_concentrated_share = max_concentrated_share
        self.alpha = alpha
        self.random_state = random_state

    # ------------------------------------------------------------------ input
    def _rows(self, table: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"fit needs the risk-set table (a DataFrame), got {type(table).__name__}")
        need = ["person_id", "treated", self.outcome]
        miss = [c for c in need if c not in table.columns]
        if miss:
            raise ValidationError(f"risk-set table: column(s) {miss} missing; build it with "
                                  "iizrisk.evaluation.risk_set_table (outcomes=[...] names the outcome)")
        keep = table[self.outcome].notna().to_numpy().copy()
        if self.population == "core":
            cols = [c for c in _CORE_OPEN if c in table.columns]
            if cols:
                keep &= (table[cols].to_numpy(dtype=np.float64) > 0).any(axis=1)
        elif self.population != "all":
            raise ConfigError(f"population must be 'core' or 'all', got {self.population!r}")
        return table.loc[keep]

    def _covariates(self, rows: pd.DataFrame) -> list[str]:
        if self.covariates is not None:
            from .evaluation._estimators import column_list

            cols = column_list(self.covariates)
            miss = [c for c in cols if c not in rows.columns]
            if miss:
                raise ValidationError(f"covariate column(s) {miss} not in the table")
            return cols
        outcomes = set(rows.attrs.get("outcomes", ())) | {self.outcome}
        out = []
        for c in rows.columns:
            if c in _NOT_COVARIATES or c in outcomes or c.startswith("_"):
                continue
            s = rows[c]
            if not (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)):
                continue
            if s.nunique(dropna=False) > 1:
                out.append(c)
        return out

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        X = frame.reindex(columns=self.covariates_).to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(np.isnan(X), self.fill_[None, :], X)

    # ------------------------------------------------------------------ fit
    def fit(self, table: pd.DataFrame) -> BenefitModel:
        """Fit the nuisance and effect models with cross-fitting; compute calibration and the BLP test.

        Raises
        ------
        NoOverlapError
            When the assessed have no comparable not-assessed people.

        Returns
        -------
        self
        """
        from .evaluation import LogisticPropensity

        if self.learner not in ("dr", "t", "s"):
            raise ConfigError(f"learner must be 'dr', 't' or 's', got {self.learner!r}")
        whole_number(self.n_folds, "n_folds", 2, example="5")
        whole_number(self.n_groups, "n_groups", 2, example="5")
        _check_alpha(self.alpha)
        rows = self._rows(table)
        if not len(rows):  # else "no covariate varies": the outcome was missing, not the covariates
            n = len(table)
            raise ValidationError(
                f"the risk-set table holds no row with an observed {self.outcome!r}"
                + (f" among its {n:,} rows" if n else " (it has no rows)")
                + (" of people registered at ALV, IV or SH" if self.population == "core" and n else "")
                + ": the horizon of every index day reaches past the data's last observed day, or nobody was at "
                "risk; use a shorter horizon (--horizon-months) or data observed for longer")
        self.covariates_ = self._covariates(rows)
        if not self.covariates_:
            raise ValidationError("no covariate varies in the table: nothing to condition the effect on")
        X0 = rows[self.covariates_].to_numpy(dtype=np.float64, na_value=np.nan)
        med = np.nanmedian(np.where(np.isnan(X0).all(axis=0)[None, :], 0.0, X0), axis=0)
        self.fill_ = np.where(np.isnan(med), 0.0, med)
        X = self._matrix(rows)
        t = rows["treated"].to_numpy(dtype=bool)
        y = rows[self.outcome].to_numpy(dtype=np.float64)
        w = rows["sampling_weight"].to_numpy(dtype=np.float64) if "sampling_weight" in rows.columns \
            else np.ones(len(rows))
        c = _control_weight_of_day(rows, t, w)
        n1, n0 = int(t.sum()), int((~t).sum())
        if n1 < 20 or n0 < 20:
            raise ValidationError(f"a benefit model needs at least 20 assessed and 20 not assessed with an "
                                  f"observed outcome; got {n1} and {n0}")
        if len(y) and float(y.min()) == float(y.max()):  # every row alike: no effect to estimate, all values 0
            raise ValidationError(
                f"the outcome {self.outcome!r} is {y[0]:g} for every one of the {len(y):,} rows (assessed and not "
                "assessed alike): there is no effect of an assessment to estimate. Use data in which the outcome "
                "occurs (e.g. spells of every institution, not of one only, or a longer period) or another "
                "outcome")
        rng = np.random.default_rng(self.random_state)
        fold = _fold_of(rows["person_id"].to_numpy(), int(self.n_folds), rng)
        if self.propensity_model is not None:
            prop, self.propensity_penalty_ = self.propensity_model, None
        else:  # the penalty by cross-validated log loss over the person folds (see _choose_penalty)
            with threadpool_limits(limits=1, user_api="blas"):
                C, _ = _choose_penalty(X, t, fold)
            prop, self.propensity_penalty_ = LogisticPropensity(C=C), C
        outm = self.outcome_model if self.outcome_model is not None else default_outcome_model()
        effm = self.effect_model if self.effect_model is not None else default_effect_model()
        self.propensity_model_, self.outcome_model_spec_, self.effect_model_spec_ = prop, outm, effm

        K = int(self.n_folds)
        s_C = 0.0
        if self.learner == "s":  # one outcome model with assessment interactions, its penalty by CV log loss
            with threadpool_limits(limits=1, user_api="blas"):
                s_C, _ = _choose_penalty(_interaction_design(X, t, X.mean(axis=0)), y, fold,
                                         grid=OUTCOME_PENALTY_GRID)
        self.outcome_penalty_ = s_C if self.learner == "s" else None

        def outcome_pair(tr, te):
            """mu0 and mu1 of rows ``te`` from outcome models fitted on rows ``tr``."""
            if self.learner == "s":
                m0, m1 = _fit_interactions(X[tr], t[tr], y[tr], s_C)
                return _predict(m0, X[te]), _predict(m1, X[te])
            return (_predict(_fit_outcome(outm, X[tr & ~t], y[tr & ~t]), X[te]),
                    _predict(_fit_outcome(outm, X[tr & t], y[tr & t]), X[te]))

        def nuisances(tr, te):
            """Propensity and outcome models fitted on rows ``tr``, predicted for rows ``te``."""
            return (_predict_propensity(prop, X[tr], t[tr], X[te]), *outcome_pair(tr, te))

        def scores(te, e_, m0, m1, risk_set=True):
            # e_ is fitted on the table, where each day's controls are a sample of its risk set. Averages
            # over the risk set (policy values, calibration, BLP: weighted rows) need the probability in
            # the risk set itself (odds divided by the control weight). The effect model regresses the
            # scores on the features row by row, unweighted: it needs the table's own probability, under
            # which the scores' conditional mean is the same effect with far less noise (on the
            # risk-set scale an unweighted regression would multiply the treated's outcome-model errors
            # by the control weight)
            ep = _risk_set_propensity(e_, c[te]) if risk_set else np.clip(e_, CLIP, 1 - CLIP)
            return m1 - m0 + t[te] * (y[te] - m1) / ep - (~t[te]) * (y[te] - m0) / (1 - ep)

        e, mu0, mu1, phi, phi_table = (np.zeros(len(y)) for _ in range(5))
        with threadpool_limits(limits=1, user_api="blas"):
            for k in range(K):
                te = fold == k
                if te.any():
                    e[te], mu0[te], mu1[te] = nuisances(~te, te)
                    phi[te] = scores(te, e[te], mu0[te], mu1[te])
                    phi_table[te] = scores(te, e[te], mu0[te], mu1[te], risk_set=False)
            self._check_overlap(e, t)
            if self.learner == "dr":
                # honest out-of-fold effects: the effect model of fold k never sees fold k, not even
                # through the nuisance models behind its pseudo-outcomes (nested cross-fitting)
                tau = np.zeros(len(y))
                for k in range(K):
                    te = fold == k
                    if not te.any():
                        continue
                    inner = np.zeros(len(y))
                    for j in range(K):
                        tj = fold == j
                        if j != k and tj.any():
                            ej, m0j, m1j = nuisances(~te & ~tj, tj)
                            inner[tj] = scores(tj, ej, m0j, m1j, risk_set=False)
                    tau[te] = clone(effm).fit(X[~te], inner[~te]).predict(X[te])
            else:
                tau = mu1 - mu0
        # the models for new people, fitted on every row
        if self.learner == "s":
            self.mu0_, self.mu1_ = _fit_interactions(X, t, y, s_C)
        else:
            self.mu0_ = _fit_outcome(outm, X[~t], y[~t])
            self.mu1_ = _fit_outcome(outm, X[t], y[t])
        self.effect_ = clone(effm).fit(X, phi_table) if self.learner == "dr" else None
        self.data_ = pd.DataFrame({
            "person_id": rows["person_id"].to_numpy(),
            "index_date": rows["index_date"].to_numpy() if "index_date" in rows.columns else pd.NaT,
            "treated": t, self.outcome: y, "weight": w, "fold": fold, "propensity": e,
            "risk_set_propensity": _risk_set_propensity(e, c), "risk": mu0, "mu1": mu1,
            "benefit": -tau, "dr_score": phi,
        }, index=rows.index)
        self.n_treated_, self.n_control_ = n1, n0
        ep = table.attrs.get("episode_days")
        self.episode_days_ = None if ep is None else (int(ep[0]), int(ep[1]))
        self.calibration_ = self._calibration()
        self.blp_ = self._blp()
        return self

    def _check_overlap(self, e: np.ndarray, t: np.ndarray) -> None:
        top_control = float(e[~t].max())
        outside = float(np.mean(e[t] > top_control))
        extreme = float(np.mean(e[t] > 0.98))
        # a few not-assessed people at the top (one is enough) hide a separation from the maximum:
        # also count the assessed above the not-assessed's 95th percentile (about 5 % of them when
        # assessments do not depend on the features, 3-15 % on the synthetic cantons, 74-81 % when
        # the assessed were kept only in the top fifth of risk)
        q95 = float(np.quantile(e[~t], 0.95))
        concentrated = float(np.mean(e[t] > q95))
        self.overlap_ = {"outside_share": outside, "extreme_share": extreme, "above_control_q95_share": concentrated,
                         "treated_min": float(e[t].min()), "treated_max": float(e[t].max()),
                         "control_min": float(e[~t].min()), "control_max": top_control, "control_q95": q95}
        if concentrated > float(self.max_concentrated_share):
            raise NoOverlapError(
                f"no overlap: {concentrated:.0%} of the {int(t.sum())} assessed had a probability of being "
                f"assessed (out-of-fold propensity) above that of 95 % of the not-assessed ({q95:.3f}). "
                "Assessments went almost only to people unlike the rest (for example only to the "
                "highest-risk people), so the data show too few comparable people without an assessment to "
                "say whom an assessment helps. The benefit model refuses rather than extrapolate; keep "
                "ranking by risk, or assess some people across the whole range (the threshold: "
                f"BenefitModel(max_concentrated_share={self.max_concentrated_share:g}) in Python).")
        worst = max(outside, extreme)
        if worst > float(self.max_outside_share):
            raise NoOverlapError(
                f"no overlap: {worst:.0%} of the {int(t.sum())} assessed had a probability of being assessed "
                f"(out-of-fold propensity) above every not-assessed person's ({top_control:.3f}) or above 0.98. "
                "Assessments went almost only to people unlike the rest (for example only to the "
                "highest-risk people), so the data show nobody comparable without an assessment and cannot "
                "say whom an assessment helps. The benefit model refuses rather than extrapolate; keep "
                "ranking by risk, or assess some people across the whole range (the threshold: "
                f"BenefitModel(max_outside_share={self.max_outside_share:g}) in Python).")

    # ------------------------------------------------------------------ results
    def _calibration(self) -> pd.DataFrame:
        d = self.data_
        k = int(self.n_groups)
        # within fold: out-of-fold predictions of different folds come from different models, whose
        # levels differ by chance (each effect model's intercept is the other folds' mean score), and
        # pooled they would sort the rows by fold rather than by benefit
        g = _weighted_quantile_groups(d["benefit"].to_numpy(), d["weight"].to_numpy(), k, d["fold"].to_numpy())
        z = norm.ppf(1 - self.alpha / 2)
        lvl = f"{1 - self.alpha:.0%}"
        out = []
        for j in range(k):
            s = g == j
            w, phi = d["weight"].to_numpy()[s], d["dr_score"].to_numpy()[s]
            est, se = _weighted_mean_se(-phi, w)
            out.append({"group": j + 1, "n": int(s.sum()), "n_treated": int(d["treated"].to_numpy()[s].sum()),
                        "predicted_benefit": float(np.average(d["benefit"].to_numpy()[s], weights=w)),
                        "estimated_benefit": est, "se": se, f"lower {lvl}": est - z * se,
                        f"upper {lvl}": est + z * se})
        return pd.DataFrame(out).set_index("group")

    def _blp(self) -> pd.DataFrame:
        d = self.data_
        w = d["weight"].to_numpy()
        tau = -d["benefit"].to_numpy()
        # centred within fold (the fold-k effect model is compared only with itself): pooled, the
        # folds' chance levels would enter the slope, and as each fold's level is the other folds'
        # mean score, the slope of a model without heterogeneity would be -(n_folds - 1)
        c = _centred_within(tau, w, d["fold"].to_numpy())
        A = np.column_stack([np.ones(len(c)), c])
        phi = d["dr_score"].to_numpy()
        beta, se = _wls_hc(A, phi, w)
        z = beta / np.where(se > 0, se, np.nan)
        p = np.array([2 * norm.sf(abs(z[0])), norm.sf(z[1])])  # slope: one-sided (H1: slope > 0)
        return pd.DataFrame({"estimate": beta, "se": se, "z": z, "p": p},
                            index=pd.Index(["average", "heterogeneity"], name="term"))

    def _check(self) -> None:
        if not hasattr(self, "mu0_"):
            raise AttributeError("BenefitModel is not fitted yet: call fit(table)")

    def _check_rows(self) -> None:
        self._check()
        if not hasattr(self, "data_"):
            raise AttributeError("this BenefitModel holds no rows (a saved model keeps none): its policies "
                                 "can only be evaluated on the fitted model, before saving")

    # ------------------------------------------------------------------ evidence
    def attach_evidence(self, evaluation: PolicyEvaluation) -> BenefitModel:
        """Keep the offline evaluation of the targeting policies with the model (saved with it).

        A deployment may order its worklists by benefit (``[worklist] rank_by``)
        only with a benefit model whose own evaluation shows that ordering
        preventing more than top-by-risk (:meth:`evidence`).

        Parameters
        ----------
        evaluation : PolicyEvaluation
            :func:`evaluate_policies` of this model, with bootstrap intervals.

        Returns
        -------
        self
        """
        self._check_rows()
        if not isinstance(evaluation, PolicyEvaluation):
            raise TypeError(f"attach_evidence needs a PolicyEvaluation, got {type(evaluation).__name__}")
        days = pd.to_datetime(pd.Series(self.data_["index_date"]))
        self.evidence_ = {
            "capacity": float(evaluation.capacity), "alpha": float(evaluation.alpha),
            "method": str(evaluation.method), "n_rows": int(evaluation.n_rows),
            "values": _frame_to_plain(evaluation.values),
            "first_index_date": None if days.isna().all() else str(days.min().date()),
            "last_index_date": None if days.isna().all() else str(days.max().date()),
        }
        return self

    def evidence(self, rank_by: str) -> Evidence:
        """Whether this model's offline evaluation supports ordering worklists by ``rank_by``.

        Supported when the policy's doubly robust value exceeds top-by-risk's
        with the whole paired interval of the difference above 0 (the
        evaluation attached by :meth:`attach_evidence`, e.g. by ``iizrisk
        policy``). ``"risk"`` needs no evidence.

        Parameters
        ----------
        rank_by : {"risk", "benefit", "risk_x_benefit"}

        Returns
        -------
        Evidence
        """
        if rank_by not in RANK_BY:
            raise ConfigError(f"rank_by must be one of {', '.join(RANK_BY)}, got {rank_by!r}")
        if rank_by == "risk":
            return Evidence(rank_by, True, "top k by risk needs no benefit model", code="risk")
        ev = getattr(self, "evidence_", None)
        if not ev:
            return Evidence(rank_by, False, "the benefit model holds no offline evaluation of the targeting "
                            "policies: write it with `iizrisk policy --save-model FILE`, which evaluates the "
                            "policies on the same rows and keeps the evaluation in the file", code="no_evaluation")
        v = _frame_from_plain(ev["values"])
        lvl = f"{1 - ev['alpha']:.0%}"
        row = v.loc[rank_by] if rank_by in v.index else None
        if row is None or not np.isfinite(row.get(f"vs_risk lower {lvl}", np.nan)):
            return Evidence(rank_by, False, f"the offline evaluation has no interval for {_POLICY_WORDS[rank_by]} "
                            "(evaluate it with bootstrap replicates: iizrisk policy --bootstrap 200)",
                            code="no_interval")
        value, base = float(row["value"]), float(v.loc["risk", "value"])
        lo, hi = float(row[f"vs_risk lower {lvl}"]), float(row[f"vs_risk upper {lvl}"])
        period = (f", assessments {ev['first_index_date']}..{ev['last_index_date']}"
                  if ev.get("first_index_date") else "")
        figures = (f"offline evaluation at a capacity of {ev['capacity']:.0%} of the people at risk per month "
                   f"({ev['n_rows']:,} rows{period}): {_POLICY_WORDS[rank_by]} prevents {value:.1f} per 100 "
                   f"assessments against {base:.1f} for top k by risk, a difference of {value - base:+.1f} "
                   f"({lvl} interval {lo:+.1f} to {hi:+.1f})")
        if lo > 0:
            return Evidence(rank_by, True, figures + ": it prevents more than ranking by risk", value, base, lo, hi,
                            ev["capacity"], code="supported")
        return Evidence(rank_by, False, figures + ": the interval does not lie above 0, so the data do not show "
                        "that it prevents more than ranking by risk", value, base, lo, hi, ev["capacity"],
                        code="not_supported")

    def benefit_in_domain(self, features: pd.DataFrame) -> pd.Series:
        """The expected benefit of the rows in the situations the model learnt from; NaN elsewhere.

        Like :meth:`predict_benefit`, but rows outside the model's population
        get no estimate instead of an extrapolation: people not registered at
        ALV, IV or SH (``population="core"``: the ``open_alv``/``open_iv``/
        ``open_sh`` features), and, when the risk sets were limited to a
        point of an episode (``episode_days``), people at another point
        (``days_since_episode_start``).
        """
        return self.predict_benefit(features).where(self._inside(features))

    def _inside(self, features: pd.DataFrame) -> np.ndarray:
        """True for the rows in the situations the model learnt from (its population and episode window)."""
        inside = np.ones(len(features), dtype=bool)
        if self.population == "core":
            cols = [c for c in _CORE_OPEN if c in features.columns]
            if cols:
                inside &= (features[cols].to_numpy(dtype=np.float64, na_value=0.0) > 0).any(axis=1)
        window = getattr(self, "episode_days_", None)
        if window is not None:
            if "days_since_episode_start" not in features.columns:
                raise ValidationError("the benefit model learnt from people "
                                      f"{window[0]}..{window[1]} days into an episode; its features need "
                                      "days_since_episode_start (iizrisk.benefit.features_at gives it)")
            ep = features["days_since_episode_start"].to_numpy(dtype=np.float64, na_value=np.nan)
            inside &= (ep >= window[0]) & (ep <= window[1])
        return inside

    # ------------------------------------------------------------------ files
    def save(self, path) -> Path:
        """Write the fitted model to one ``.skops`` file (atomically), without its rows.

        The file holds what predicting needs (features, fill values, outcome
        and effect models), the calibration table, the BLP test, the
        overlap figures and the offline evaluation of :meth:`attach_evidence`;
        never the rows (``data_``: pseudonyms, index days, outcomes), so it
        holds no pseudonym. It is written with ``skops.io``,
        not pickle; :func:`load_benefit_model` builds only the types of
        :data:`iizrisk.model.TRUSTED_TYPES`.

        Returns
        -------
        Path

        Raises
        ------
        ModelError
            The model holds a type the loader would refuse (e.g. a custom estimator).
        """
        import copy

        from .model._files import _dump
        from .store import write_bytes_atomic

        self._check()
        state = copy.copy(self)
        state.__dict__.pop("data_", None)
        state.__dict__.pop("file_sha256_", None)
        for name in _SAVED_FRAMES:
            if isinstance(state.__dict__.get(name), pd.DataFrame):
                setattr(state, name, _frame_to_plain(state.__dict__[name]))
        return write_bytes_atomic(_dump(state), path)


    @property
    def summary(self) -> pd.DataFrame:
        """The calibration table: estimated against predicted benefit by quantile group."""
        self._check()
        return self.calibration_

    def method(self) -> str:
        """The method line: learner, models and the propensity model's penalty."""
        name = {"dr": f"DR-learner, {self.n_folds}-fold cross-fitting by person",
                "t": f"T-learner (out of fold, {self.n_folds} folds)",
                "s": f"S-learner with assessment interactions (out of fold, {self.n_folds} folds)"}[self.learner]
        prop = _model_words(self.propensity_model_, "propensity")
        if getattr(self, "propensity_penalty_", None) is not None:
            prop += (f" (chosen by {self.n_folds}-fold cross-validated log loss by person from "
                     f"C={PENALTY_GRID[0]:g}..{PENALTY_GRID[-1]:g})")
        if self.learner == "s":
            outcome = (f"outcome model: logistic regression on the standardised features, the assessment and "
                       f"their products, L2 penalty C={self.outcome_penalty_:g} (chosen by {self.n_folds}-fold "
                       f"cross-validated log loss by person from C={OUTCOME_PENALTY_GRID[0]:g}.."
                       f"{OUTCOME_PENALTY_GRID[-1]:g})")
        else:
            outcome = _model_words(self.outcome_model_spec_, "outcome models")
        parts = [name, prop, outcome]
        if self.learner == "dr":
            parts.append(f"effect model: {type(self.effect_model_spec_).__name__}"
                         if not hasattr(self.effect_model_spec_, "steps") else
                         "effect model: " + " + ".join(type(s).__name__ for _, s in self.effect_model_spec_.steps))
        return "; ".join(parts)

    def summary_text(self, decimals: int = 3) -> str:
        self._check()
        b = self.blp_
        o = self.overlap_
        lines = [f"<iizrisk.benefit.BenefitModel: effect of an assessment on {self.outcome!r}>",
                 f"  method = {self.method()}",
                 f"  rows = {self.n_treated_ + self.n_control_:,} ({self.n_treated_:,} assessed, "
                 f"{self.n_control_:,} not), "
                 f"{len(self.covariates_)} features",
                 f"  overlap: assessed propensity {o['treated_min']:.3f}..{o['treated_max']:.3f}, not assessed "
                 f"{o['control_min']:.3f}..{o['control_max']:.3f}; {o['outside_share']:.1%} of the assessed "
                 "above every not-assessed", "",
                 "Benefit (outcomes prevented per assessment) by quantile group of predicted benefit:",
                 self.calibration_.to_string(float_format=lambda v: f"{v:.{decimals}f}"), "",
                 "Best linear predictor test (slope 1: calibrated differences; 0: no detected heterogeneity):",
                 b.to_string(float_format=lambda v: f"{v:.{decimals}f}")]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not hasattr(self, "mu0_"):
            return "<b>BenefitModel</b>: not fitted"
        return f"<pre>{html.escape(self.summary_text())}</pre>"

    def plot(self, ax=None, *, language: str = "en"):
        """Estimated (doubly robust, with intervals) against predicted benefit per quantile group.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        language : {"en", "de", "fr", "it"}, default "en"
            Language of the labels.

        Returns
        -------
        matplotlib.axes.Axes
        """
        self._check()
        return _plot_calibration(self.calibration_, ax=ax, alpha=self.alpha, language=language)

    def _output_tables(self, k: int) -> list[OutputTable]:
        self._check()
        cal = self.calibration_.copy()
        small = (cal["n"] < k) | (cal["n_treated"] < k)
        cal["suppressed"] = small
        cal.loc[small, [c for c in cal.columns if c != "suppressed"]] = np.nan
        return [OutputTable("benefit_calibration", cal.reset_index()),
                OutputTable("benefit_blp", self.blp_.reset_index())]

    def _output_figures(self, tables, language: str = "en") -> list[OutputFigure]:
        from matplotlib.figure import Figure

        cal = tables[0].frame.set_index("group")
        cal = cal[~cal["suppressed"].astype(bool)]
        if not len(cal):
            return []
        fig = Figure(figsize=(5.5, 3.6))
        _plot_calibration(cal, ax=fig.subplots(), alpha=self.alpha, language=language)
        return [OutputFigure("benefit_calibration", fig, dpi=110)]

    # ------------------------------------------------------------------ new people
    def predict_benefit(self, features: pd.DataFrame) -> pd.Series:
        """Expected reduction of the outcome's probability if assessed now, per row of point-in-time features.

        ``features`` has the covariate columns (e.g. the output of
        :class:`iizrisk.features.PointInTimeFeatures` at as-of T); missing
        columns or values take the training medians.
        """
        self._check()
        X = self._matrix(features)
        tau = self.effect_.predict(X) if self.effect_ is not None else _predict(self.mu1_, X) - _predict(self.mu0_, X)
        return pd.Series(-np.asarray(tau, dtype=np.float64), index=features.index, name="benefit")

    def predict_risk(self, features: pd.DataFrame) -> pd.Series:
        """Probability of the outcome without an assessment (the control outcome model)."""
        self._check()
        return pd.Series(_predict(self.mu0_, self._matrix(features)), index=features.index, name="risk")


_SAVED_FRAMES = ("calibration_", "blp_")


def _frame_to_plain(frame: pd.DataFrame) -> dict:
    """A small result table as plain lists (skops builds no DataFrame)."""
    return {"index": frame.index.tolist(), "index_name": frame.index.name,
            "columns": {str(c): frame[c].tolist() for c in frame.columns}}


def _frame_from_plain(plain: dict) -> pd.DataFrame:
    return pd.DataFrame(dict(plain["columns"]), index=pd.Index(list(plain["index"]), name=plain["index_name"]))


def load_benefit_model(path) -> BenefitModel:
    """A benefit model saved with :meth:`BenefitModel.save`.

    The file is read once (a symbolic link or anything but a regular file is
    refused) and checked before anything is built: only skops' safe types and
    :data:`iizrisk.model.TRUSTED_TYPES` are built, none of the file's code runs.
    The model predicts as the saved one did; it holds no rows, so
    :func:`evaluate_policies` needs the fitted model itself.
    ``file_sha256_`` is the SHA-256 of the bytes read.

    Raises
    ------
    ModelError
        Missing or unreadable file, a link, untrusted types, or not a BenefitModel.
    """
    import os
    import stat

    from .errors import ModelError
    from .model._files import _MAX_FILE_BYTES, _loads_skops

    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ModelError(f"{p}: no benefit model file; write one with BenefitModel.save") from None
    except OSError as exc:
        raise ModelError(f"{p}: cannot be read ({exc.strerror}); benefit model files are not read "
                         "through symbolic links") from exc
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_FILE_BYTES:
            raise ModelError(f"{p}: not a regular file of a benefit model")
        data = fh.read(_MAX_FILE_BYTES + 1)
    model = _loads_skops(data, p)
    if not isinstance(model, BenefitModel):
        raise ModelError(f"{p}: holds a {type(model).__name__}, not a BenefitModel")
    model.file_sha256_ = hashlib.sha256(data).hexdigest()  # of the bytes read, for the run's manifest
    for name in _SAVED_FRAMES:
        plain = getattr(model, name, None)
        if isinstance(plain, dict):
            setattr(model, name, _frame_from_plain(plain))
    return model


def _check_alpha(alpha) -> float:
    """``alpha`` of the intervals, a number strictly between 0 and 1 (else a ConfigError naming it)."""
    if not is_real(alpha) or not 0 < float(alpha) < 1:
        raise ConfigError(f"alpha must be a number between 0 and 1, e.g. 0.05 for 95 % intervals, got "
                          f"{_shown(repr(alpha))}")
    return float(alpha)


def _control_weight_of_day(rows: pd.DataFrame, t: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per row, the sampling weight of the controls of its index day (1 when the day has none).

    The controls of a day are a random sample of its risk set, each standing for
    ``w`` people; the propensity fitted on the table has odds ``w`` times those in
    the risk set, which the doubly robust scores correct row by row.
    """
    if "index_date" not in rows.columns:
        return np.ones(len(rows))
    day = pd.Series(pd.to_datetime(rows["index_date"]).to_numpy())
    cw = pd.Series(np.where(t, np.nan, w)).groupby(day).max()
    return day.map(cw).fillna(1.0).to_numpy(dtype=np.float64)


def _risk_set_propensity(e: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The table's propensity (clipped to [CLIP, 1 - CLIP]) converted to the risk set's: odds divided by ``c``."""
    ec = np.clip(e, CLIP, 1 - CLIP)
    return ec / (ec + (1 - ec) * c)


def _predict_propensity(model, X_train, t_train, X_test) -> np.ndarray:
    from .evaluation._propensity import EPS

    m = clone(model)
    m.fit(X_train, t_train.astype(np.int8))
    classes = list(getattr(m, "classes_", [0, 1]))
    return np.clip(m.predict_proba(X_test)[:, classes.index(1)], EPS, 1 - EPS)


def _weighted_mean_se(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    if not len(x) or w.sum() <= 0:
        return float("nan"), float("nan")
    m = float(np.average(x, weights=w))
    wn = w / w.sum()
    return m, float(np.sqrt(np.sum(wn ** 2 * (x - m) ** 2)))


def _wls_hc(A: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares with heteroscedasticity-robust (HC0) standard errors."""
    Aw = A * w[:, None]
    bread = np.linalg.pinv(A.T @ Aw)
    beta = bread @ (Aw.T @ y)
    r = y - A @ beta
    meat = (Aw * r[:, None]).T @ (Aw * r[:, None])
    return beta, np.sqrt(np.maximum(np.diag(bread @ meat @ bread), 0.0))


def _plot_calibration(cal: pd.DataFrame, *, ax=None, alpha: float = 0.05, language: str = "en"):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    from .plots import _w

    lvl = f"{1 - alpha:.0%}"
    level = f"{100 * (1 - alpha):g}"
    x = 100 * cal["predicted_benefit"].to_numpy(dtype=np.float64)
    yv = 100 * cal["estimated_benefit"].to_numpy(dtype=np.float64)
    lo = 100 * cal[f"lower {lvl}"].to_numpy(dtype=np.float64)
    hi = 100 * cal[f"upper {lvl}"].to_numpy(dtype=np.float64)
    ax.errorbar(x, yv, yerr=[yv - lo, hi - yv], fmt="o", color="C0", capsize=3,
                label=_w("benefit_estimate", language, level=level))
    lim = [min(np.nanmin(x), np.nanmin(lo), 0), max(np.nanmax(x), np.nanmax(hi), 0)]
    ax.plot(lim, lim, color="grey", lw=0.8, ls="--", label=_w("benefit_diagonal", language))
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel(_w("benefit_predicted", language))
    ax.set_ylabel(_w("benefit_estimated", language))
    ax.set_title(_w("benefit_title", language))
    ax.legend(fontsize="small")
    return ax


# ----------------------------------------------------------------------------- policies
def _month_of(dates) -> np.ndarray:
    d = pd.to_datetime(pd.Series(np.asarray(dates)))
    return (d.dt.year * 12 + d.dt.month).to_numpy(dtype=np.int64)


def _policy_scores(risk: np.ndarray, benefit: np.ndarray) -> dict[str, np.ndarray]:
    """The score (higher first) of each top-k policy."""
    return {"risk": risk, "benefit": benefit, "risk_x_benefit": risk * np.maximum(benefit, 0.0)}


def _selection_weights(score: np.ndarray, month: np.ndarray, w: np.ndarray, capacity: float) -> np.ndarray:
    """Share of each row's weight a top-k policy selects: the top ``capacity`` of each month's weight.

    ``w`` may be a matrix (bootstrap replicates x rows); the order is the same for every replicate.
    """
    order = np.lexsort((-score, month))
    m_sorted = month[order]
    W = np.atleast_2d(w)[:, order]
    cum = np.cumsum(W, axis=1)
    first = np.r_[True, m_sorted[1:] != m_sorted[:-1]]
    start_idx = np.flatnonzero(first)
    seg = np.cumsum(first) - 1
    before_month = np.where(start_idx > 0, cum[:, np.maximum(start_idx - 1, 0)], 0.0)
    before_month[:, start_idx == 0] = 0.0
    end_idx = np.r_[start_idx[1:], len(order)] - 1
    total = cum[:, end_idx] - before_month
    cap = capacity * total[:, seg]
    within_before = cum - W - before_month[:, seg]
    frac = np.clip((cap - within_before) / np.where(W > 0, W, 1.0), 0.0, 1.0)
    frac = np.where(W > 0, frac, 0.0)
    out = np.empty_like(W)
    out[:, order] = W * frac
    return out if np.ndim(w) == 2 else out[0]


def _high_band(risk: np.ndarray, month: np.ndarray, w: np.ndarray, high_band: float) -> np.ndarray:
    """0/1 weights of the rows in the top ``high_band`` (by weight) of risk within each month."""
    return (_selection_weights(risk, month, w, high_band) > 0).astype(np.float64)


def _values(policy_w: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Prevented per 100 assessments: -100 x the weighted mean of the scores of the selected."""
    s = policy_w.sum(axis=-1)
    return -100 * (policy_w @ phi) / np.where(s > 0, s, np.nan)


@dataclass
class _ScoreParts:
    """The doubly robust score of each row in parts, for the self-normalised (Hajek) policy value."""

    plugin: np.ndarray  # mu1 - mu0
    treated_num: np.ndarray  # t (y - mu1) / e
    treated_den: np.ndarray  # t / e
    control_num: np.ndarray  # (1 - t) (y - mu0) / (1 - e)
    control_den: np.ndarray  # (1 - t) / (1 - e)

    @classmethod
    def of(cls, d: pd.DataFrame, outcome: str) -> _ScoreParts:
        t = d["treated"].to_numpy(dtype=bool)
        y = d[outcome].to_numpy(dtype=np.float64)
        m0, m1 = d["risk"].to_numpy(dtype=np.float64), d["mu1"].to_numpy(dtype=np.float64)
        e = d["risk_set_propensity"].to_numpy(dtype=np.float64)
        return cls(m1 - m0, t * (y - m1) / e, t / e, (~t) * (y - m0) / (1 - e), (~t) / (1 - e))

    def values(self, policy_w: np.ndarray) -> np.ndarray:
        """Prevented per 100 assessments, each inverse-propensity term divided by its own weight total.

        The plain value averages ``t (y - mu1) / e`` over the selected, as if
        the assessed among them stood for exactly as many people as were
        selected; here that sum is divided by the assessed's own total
        ``sum t / e`` (likewise for the not assessed). A selection without any
        assessed person keeps the outcome models' difference alone.
        """
        s = policy_w.sum(axis=-1)
        plug = (policy_w @ self.plugin) / np.where(s > 0, s, np.nan)
        d1, d0 = policy_w @ self.treated_den, policy_w @ self.control_den
        c1 = np.where(d1 > 0, (policy_w @ self.treated_num) / np.where(d1 > 0, d1, 1.0), 0.0)
        c0 = np.where(d0 > 0, (policy_w @ self.control_num) / np.where(d0 > 0, d0, 1.0), 0.0)
        return -100 * (plug + c1 - c0)


@dataclass
class PolicyEvaluation(ResultMixin):
    """Offline values of targeting policies (outcomes prevented per 100 assessments) with intervals.

    Attributes
    ----------
    values : DataFrame
        One row per policy: ``value`` (doubly robust), interval, ``vs_risk``
        (difference to top-by-risk) with its paired interval, ``true_value``
        when known (synthetic data).
    capacity : float
    method : str
    """

    values: pd.DataFrame
    capacity: float
    method: str
    alpha: float = 0.05
    n_rows: int = 0
    n_selected: dict | None = None

    @property
    def summary(self) -> pd.DataFrame:
        return self.values

    def _title(self) -> str:
        return (f"Targeting policies at a capacity of {self.capacity:.0%} of the people at risk per month: "
                "outcomes prevented per 100 assessments (doubly robust, offline)")

    def summary_text(self, decimals: int = 2) -> str:
        return "\n".join([self._title(), f"  method = {self.method}", f"  rows = {self.n_rows:,}", "",
                          self.values.to_string(float_format=lambda v: f"{v:.{decimals}f}"), "",
                          "A policy prevents more than top-by-risk only where the interval of vs_risk lies above 0."])

    def plot(self, ax=None, *, language: str = "en"):
        """Each policy's value with its interval (and the true value when known).

        Parameters
        ----------
        ax : matplotlib Axes, optional
        language : {"en", "de", "fr", "it"}, default "en"
            Language of the labels (the policies' names are the model card's).

        Returns
        -------
        matplotlib.axes.Axes
        """
        return _plot_policies(self.values, ax=ax, alpha=self.alpha, language=language)

    def _output_tables(self, k: int) -> list[OutputTable]:
        v = self.values.copy()
        sel = self.n_selected or {}
        v["suppressed"] = [sel.get(p, k) < k for p in v.index]
        v.loc[v["suppressed"], [c for c in v.columns if c != "suppressed"]] = np.nan
        # outcomes prevented per 100 assessments: two decimals for people, every digit in the Parquet file
        per_100 = {c: VALUE_DECIMALS for c in v.columns if pd.api.types.is_float_dtype(v[c].dtype)}
        # the written column says what the value counts ("value" read "Wert", without a unit)
        out = v.reset_index().rename(columns=_WRITTEN_VALUES)
        return [OutputTable("policy_values", out, rounding={_WRITTEN_VALUES.get(c, c): d for c, d in per_100.items()})]

    def _output_figures(self, tables, language: str = "en") -> list[OutputFigure]:
        from matplotlib.figure import Figure

        v = tables[0].frame.set_index("policy").rename(columns={w: c for c, w in _WRITTEN_VALUES.items()})
        v = v[~v["suppressed"].astype(bool)]
        if not len(v):
            return []
        fig = Figure(figsize=(6.5, 3.2))
        _plot_policies(v, ax=fig.subplots(), alpha=self.alpha, language=language)
        return [OutputFigure("policy_values", fig, dpi=110)]


#: The policy values' columns as the written tables name them: outcomes prevented per 100 assessments.
_WRITTEN_VALUES = {"value": "prevented_per_100", "true_value": "true_prevented_per_100"}


def _plot_policies(v: pd.DataFrame, *, ax=None, alpha: float = 0.05, language: str = "en"):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.2))
    from .plots import _w

    lvl = f"{1 - alpha:.0%}"
    ypos = np.arange(len(v))[::-1]
    val = v["value"].to_numpy(dtype=np.float64)
    lo, hi = v[f"lower {lvl}"].to_numpy(dtype=np.float64), v[f"upper {lvl}"].to_numpy(dtype=np.float64)
    # the interval drawn from its own ends: a bootstrap interval need not hold the estimate (few
    # replicates, a skewed statistic), and errorbar refuses negative lengths
    ax.hlines(ypos, lo, hi, color="C0", lw=1.2)
    for ends in (lo, hi):  # the caps mark where each interval ends
        ax.plot(ends, ypos, "|", color="C0", ms=8, mew=1.2)
    ax.plot(val, ypos, "o", color="C0", label=_w("policy_estimate", language, level=f"{100 * (1 - alpha):g}"))
    if "true_value" in v.columns and v["true_value"].notna().any():
        ax.plot(v["true_value"].to_numpy(dtype=np.float64), ypos, "x", color="C3", label=_w("policy_true", language))
    ax.axvline(0, color="black", lw=0.6)
    ax.set_yticks(ypos)
    ax.set_yticklabels([_policy_label(p, or_english(language)) for p in v.index], fontsize="small")
    ax.set_xlabel(_w("policy_axis", language))
    ax.set_title(_w("policy_title", language))
    # below the axes: inside, the legend covered the intervals of the middle policies
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    return ax


def _policy_label(policy: str, language: str) -> str:
    """A policy's name in ``language``: the model card's words (``card.policies``), the oracle's own."""
    if policy == "oracle":
        return text("plot.policy_oracle", language)
    try:
        return text(f"card.policies.{policy}", language)
    except KeyError:  # a policy of another version: its code
        return policy


def evaluate_policies(model: BenefitModel, *, capacity: float = 0.05, high_band: float = 0.2,
                      n_bootstrap: int = 200, alpha: float | None = None, normalised: bool = True,
                      random_state=None) -> PolicyEvaluation:
    """Doubly robust offline values of the targeting policies on the model's own (out-of-fold) rows.

    Parameters
    ----------
    model : BenefitModel
        Fitted; its out-of-fold risk, benefit and doubly robust scores are used.
    capacity : float, default 0.05
        Share of the (weighted) people at risk per calendar month of index days who get an assessment.
    high_band : float, default 0.2
        The high risk band of ``random_high_band``: the top share by risk within the month.
    n_bootstrap : int, default 200
        Bootstrap replicates (Poisson weights on the rows; the scores are kept).
    alpha : float, optional
        Default: the model's.
    normalised : bool, default True
        Self-normalised (Hajek) values: among the selected, the assessed's
        inverse-propensity-weighted residuals are divided by their own weight
        total ``sum t / e`` instead of the selection's weight (likewise for the
        not assessed). ``False``: the plain mean of the doubly robust scores.
        On the synthetic cantons (benchmarks/benefit_quality.py) the
        normalised intervals were about half as wide at the same coverage of
        the true values (figures in the module documentation).
    random_state : int, optional

    Returns
    -------
    PolicyEvaluation
    """
    model._check_rows()
    for name, share in (("capacity", capacity), ("high_band", high_band)):
        if not is_real(share) or not 0 < float(share) <= 1:
            raise ConfigError(f"{name} must be a share in (0, 1], e.g. 0.05 for 5 %, got {_shown(repr(share))}")
    alpha = model.alpha if alpha is None else _check_alpha(alpha)
    whole_number(n_bootstrap, "n_bootstrap", 0, example="200 (0: no intervals)")
    d = model.data_
    # each month's selection is made within each cross-fitting fold: a fold's rows are ranked by its own
    # models only (the folds' models differ in level by chance, and a level is the other folds' mean)
    month = _month_of(d["index_date"]) * int(model.n_folds) + d["fold"].to_numpy(dtype=np.int64)
    w = d["weight"].to_numpy(dtype=np.float64)
    phi = d["dr_score"].to_numpy(dtype=np.float64)
    risk, benefit = d["risk"].to_numpy(dtype=np.float64), d["benefit"].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(random_state)
    B = int(n_bootstrap)
    Wb = w[None, :] * rng.poisson(1.0, size=(B, len(w))) if B else np.zeros((0, len(w)))
    band = _high_band(risk, month, w, high_band)
    sel = {}
    for name, score in _policy_scores(risk, benefit).items():
        sel[name] = (_selection_weights(score, month, w, capacity),
                     _selection_weights(score, month, Wb, capacity) if B else None)
    sel["random_high_band"] = (w * band, Wb * band[None, :] if B else None)
    sel["random"] = (w, Wb if B else None)
    treated = d["treated"].to_numpy(dtype=np.float64)  # the coordinators' choices: whom they assessed, as many
    sel["actual"] = (treated, Wb * treated[None, :] if B else None)
    if normalised:
        value = _ScoreParts.of(d, model.outcome).values
        how = "policy values: self-normalised (Hajek) doubly robust, each inverse-propensity term divided by its weight total"
    else:
        def value(pw):
            return _values(pw, phi)
        how = "policy values: mean of the doubly robust scores (not normalised)"
    return _policy_table(sel, value, alpha, capacity, model, len(w), how=how)


def _policy_table(sel, value, alpha, capacity, model, n_rows, truth=None, how: str = "") -> PolicyEvaluation:
    lvl = f"{1 - alpha:.0%}"
    q = [alpha / 2, 1 - alpha / 2]
    base_boot = value(sel["risk"][1]) if sel["risk"][1] is not None else None
    base = float(value(sel["risk"][0]))
    rows = {}
    n_sel = {}
    for name in POLICIES:
        pw, pwb = sel[name]
        v = float(value(pw))
        row = {"value": v}
        if pwb is not None and len(pwb):
            boot = value(pwb)
            lo, hi = np.nanquantile(boot, q)
            dlo, dhi = np.nanquantile(boot - base_boot, q)
            row.update({f"lower {lvl}": lo, f"upper {lvl}": hi, "vs_risk": v - base,
                        f"vs_risk lower {lvl}": dlo, f"vs_risk upper {lvl}": dhi})
        else:
            row.update({f"lower {lvl}": np.nan, f"upper {lvl}": np.nan, "vs_risk": v - base,
                        f"vs_risk lower {lvl}": np.nan, f"vs_risk upper {lvl}": np.nan})
        rows[name] = row
        n_sel[name] = int(np.count_nonzero(pw))
    values = pd.DataFrame.from_dict(rows, orient="index")
    values.index.name = "policy"
    if truth is not None:
        values["true_value"] = pd.Series(truth)
    method = model.method() + (f"; {how}" if how else "")
    return PolicyEvaluation(values=values, capacity=float(capacity), method=method, alpha=alpha,
                            n_rows=n_rows, n_selected=n_sel)


# ----------------------------------------------------------------------------- synthetic truth
def features_at(spells: pd.DataFrame, interventions: pd.DataFrame, pairs: pd.DataFrame, *,
                feature_options=None) -> pd.DataFrame:
    """Point-in-time features of (``person_id``, ``as_of``) pairs, as :func:`~iizrisk.evaluation.risk_set_table`
    computes them (event view, interventions dated before the day; one pass per distinct day).

    Returns a DataFrame in the order of ``pairs`` (index as ``pairs``).
    """
    from . import _time
    from .evaluation._study import _FEATURE_INPUT, days_since_episode_start, study_feature_options
    from .features import PointInTimeFeatures

    fo = study_feature_options(feature_options)
    ft = PointInTimeFeatures(**fo).fit()
    cols = [c for c in _FEATURE_INPUT if c in spells.columns and c != "recorded_date"]
    days = _time.to_days(pairs["as_of"]).astype(np.int64)
    pid = pairs["person_id"].astype(str).to_numpy()
    sp_pid = spells["person_id"].astype(str).to_numpy()
    iv_pid = interventions["person_id"].astype(str).to_numpy()
    iv_day = _time.to_days(interventions["date"]).astype(np.int64)
    parts = []
    for d in np.unique(days):
        who = pd.Index(np.unique(pid[days == d]))
        rows = who.get_indexer(sp_pid) >= 0
        ivm = (who.get_indexer(iv_pid) >= 0) & (iv_day < d)
        X = ft.transform(spells.loc[rows, cols], as_of=int(d), interventions=interventions.loc[ivm])
        X = X.reset_index()
        X["_day"] = int(d)
        parts.append(X)
    allx = pd.concat(parts, ignore_index=True)
    allx["person_id"] = allx["person_id"].astype(str)
    key = pd.MultiIndex.from_arrays([pid, days])
    allx = allx.set_index(["person_id", "_day"])
    allx = allx[~allx.index.duplicated()]
    out = allx.reindex(key)
    out.index = pairs.index
    out = out.drop(columns=[c for c in ("as_of",) if c in out.columns])
    out["days_since_episode_start"] = days_since_episode_start(spells, pid, pairs["as_of"].to_numpy())
    return out


def benefit_at(model: BenefitModel, spells: pd.DataFrame, interventions: pd.DataFrame | None, person_ids,
               as_of) -> pd.Series:
    """Each person's expected benefit of an assessment at ``as_of`` (NaN outside the model's situations).

    The point-in-time features are those the model learnt from
    (:func:`features_at`: the study's feature options, interventions dated
    before the day, ``days_since_episode_start``), computed from ``spells``
    and ``interventions`` up to ``as_of``; :meth:`BenefitModel.benefit_in_domain`
    leaves out people the model has no comparable assessed people for.

    Returns
    -------
    Series
        Indexed by ``person_id`` (as strings, in the order given), name ``benefit``.
    """
    ids = pd.Index(np.asarray(person_ids, dtype=object).astype(str), name="person_id")
    if not len(ids):
        return pd.Series(np.zeros(0), index=ids, name="benefit")
    if interventions is None:
        interventions = pd.DataFrame({"person_id": pd.Series(dtype=object),
                                      "date": pd.Series(dtype="datetime64[ns]"), "type": pd.Series(dtype=object)})
    pairs = pd.DataFrame({"person_id": ids.to_numpy(), "as_of": pd.Timestamp(as_of)})
    X = features_at(spells, interventions, pairs)
    out = model.benefit_in_domain(X)
    out.index = ids
    return out


def _relative_effect_from_features(X: np.ndarray, rel: np.ndarray, persons: np.ndarray,
                                   n_folds: int = 5) -> np.ndarray:
    """The true relative effect as the features predict it, out of fold (folds by person; see true_policy_values)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    fold = _fold_of(persons, n_folds, np.random.default_rng(0))
    out = np.full(len(rel), float(np.mean(rel)))
    for k in range(n_folds):
        te = fold == k
        if te.any() and (~te).sum() >= 20:
            reg = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, early_stopping=False,
                                                random_state=0)
            out[te] = reg.fit(X[~te], rel[~te]).predict(X[te])
    return out


def true_policy_values(model: BenefitModel, spells: pd.DataFrame, interventions: pd.DataFrame,
                       truth: pd.DataFrame, *, capacity: float = 0.05, high_band: float = 0.2,
                       outcome: str = "rd_12m") -> pd.Series:
    """True values of the policies (prevented per 100 assessments) on a synthetic population's sample at risk.

    The people of ``truth["effect_sample"]`` (:func:`iizrisk.synth.generate` with
    ``effect_sample``) are the candidates, each on their ``sample_date``; the
    model scores them from their point-in-time features, each policy selects
    the top ``capacity`` of each month, and its true value is ``100 x`` the mean
    of ``<outcome>_cf - <outcome>`` (both simulated with common random numbers)
    over the selected. ``oracle`` selects by the realised individual effect: the ceiling.
    ``oracle_relative`` (when the truth has ``individual_effect``) selects by
    the model's risk times the person's true relative effect (the reduction of
    the hazards): what knowing the effect's heterogeneity exactly would give.
    ``oracle_features`` selects by the model's risk times the true relative
    effect *as far as the features tell it*: a gradient boosting regression
    of ``individual_effect`` on the model's covariates, each person predicted
    by the regression fitted on the other folds (five, by person). No ranking
    computed from the features can be expected to beat it; part of the
    synthetic effect's heterogeneity lies in the latent severity, which
    ``oracle_relative`` sees and the features do not.
    """
    s = truth[truth["effect_sample"].astype(bool)]
    if not len(s):
        raise ValidationError("the truth has no sample of people at risk: generate(..., effect_sample=0.2)")
    pairs = pd.DataFrame({"person_id": s["person_id"].astype(str).to_numpy(),
                          "as_of": s["sample_date"].to_numpy()})
    X = features_at(spells, interventions, pairs)
    registered = X["n_institutions_now"].to_numpy(dtype=np.float64) >= 1 if "n_institutions_now" in X.columns \
        else np.ones(len(X), dtype=bool)
    registered &= model._inside(X)  # the same eligibility as the table the model learnt from
    X, s = X[registered], s[registered]
    if not len(s):
        raise ValidationError("no person of the sample at risk is eligible (registered, inside the model's "
                              "episode_days) on their sample date")
    ite = (s[f"{outcome}_cf"].astype(float) - s[outcome].astype(float)).to_numpy()
    risk = model.predict_risk(X).to_numpy()
    benefit = model.predict_benefit(X).to_numpy()
    month = _month_of(s["sample_date"])
    w = np.ones(len(ite))

    def per_100(pw: np.ndarray) -> float:
        """True outcomes prevented per 100 assessments given with weights ``pw``."""
        return float(100 * (pw @ ite) / pw.sum())

    def prevented(score: np.ndarray) -> float:
        """:func:`per_100` of the top ``capacity`` of each month by ``score``."""
        return per_100(_selection_weights(score, month, w, capacity))

    out = {name: prevented(score) for name, score in {**_policy_scores(risk, benefit), "oracle": ite}.items()}
    out["random_high_band"] = per_100(_high_band(risk, month, w, high_band))
    out["random"] = float(100 * ite.mean())
    if "individual_effect" in s.columns and s["individual_effect"].notna().all():
        # a model that knew each person's true relative effect and used its own risk: what the
        # features and the risk model allow at best (with heterogeneous effects)
        rel = s["individual_effect"].to_numpy(dtype=np.float64)
        out["oracle_relative"] = prevented(risk * rel)
        out["oracle_features"] = prevented(
            risk * _relative_effect_from_features(model._matrix(X), rel, s["person_id"].to_numpy()))
    return pd.Series(out, name="true_value")
