"""Evaluation: do joint assessments prevent cycling? Effect estimators, diagnostics, study designs.

Researchers ask whether an intervention -- above all the IIZ *joint
assessment* -- changes what happens to people afterwards (revolving door,
disintegration, days registered). The assessed were not chosen at random:
coordinators propose assessments to complex cases, so the assessed would
have fared worse even without it. A naive comparison of assessed and
non-assessed people mixes the effect with this selection; the estimators
here adjust for the differences that are *measured*.

Estimators for a plain table (one row per unit)
-----------------------------------------------
Each is a lifelines-style fitter: ``Estimator(...).fit(df, treatment=...,
outcome=..., covariates=[...])`` returns itself with ``estimate_``,
``standard_error_``, ``confidence_interval_`` (bootstrap percentile),
``balance_`` (standardised mean differences before and after adjustment),
``overlap_`` (propensity-score distributions and effective sample sizes),
``diagnostics_``, ``summary``, ``print_summary()``, ``plot()`` (love plot),
``plot_overlap()`` and ``_repr_html_``.

* :class:`DifferenceInMeans` -- the naive comparison, the baseline;
* :class:`RegressionAdjustment` -- outcome models per group (g-computation);
* :class:`IPWEstimator` -- inverse-probability weighting (ATT or ATE;
  truncation, trimming, stabilised weights);
* :class:`PropensityScoreMatching` -- 1:1 nearest neighbour on the logit
  propensity score, with or without replacement, caliper, exact matching
  (risk sets);
* :class:`PropensityScoreStratification` -- subclassification on the score.

Also: :class:`KaplanMeier` (survival curves with Greenwood bands),
:func:`balance_table`, :func:`overlap_table`, :func:`match_nearest` (the
vectorised greedy matching), :class:`LogisticPropensity` (the default
propensity model, refitted cheaply in bootstraps) and
:func:`add_missing_indicators`.

From spells to a study
----------------------
:class:`AssessmentStudy` (and ``iizrisk evaluate``) turns canonical spells and
interventions into a plain table with :func:`risk_set_table` -- one row per
person assessed on day ``d`` (their first joint assessment) and per control
drawn from the *risk set* of ``d`` (registered on ``d``, not assessed by then),
with the point-in-time features at ``d`` as covariates and outcomes over
``d+1 ...``: revolving door and disintegration (:mod:`iizrisk.outcomes`), days
registered and new spells in the next 12/24 months, time to a sustained exit
(no registration for 6 months) -- and estimates the effect on the assessed:
by default propensity-score matching of each assessed to a control at risk
in the same calendar month (risk-set matching), next to the naive
comparison, with Kaplan-Meier curves of sustained exits for the assessed and
their matched controls. Index days are exact (information after ``d`` is
never used); the design is documented in :mod:`iizrisk.evaluation._study`.
Further study-specific diagnostics: assessed people without a control on
their day, and *contamination* (controls assessed soon after their index
day, which dilutes the contrast towards zero).

Assumptions, and the diagnostics that show when they fail
----------------------------------------------------------
An estimate is a causal effect only under three assumptions
(:data:`ASSUMPTIONS`):

1. **No unmeasured confounding.** Given the covariates, who was treated is
   as good as random. *No diagnostic can confirm this.* Balance tables only
   show the measured covariates; a latent "severity" that coordinators see
   and the data do not biases every method here. Sensitivity: compare
   methods, add covariates, and read effects on outcomes the intervention
   cannot have changed (e.g. the months *before* it) -- a non-zero "effect"
   there exposes confounding.
2. **Overlap (positivity).** Every treated unit had a real chance of being a
   control. Diagnostics: ``overlap_`` (share of treated whose propensity score
   lies beyond every control's, scores near 0 or 1), ``plot_overlap()``,
   effective sample sizes and the largest weight's share (IPW), treated left
   without a partner inside the caliper (matching), strata without controls
   (stratification). When overlap fails the estimate either rests on a few
   heavily weighted controls or concerns only the comparable part of the
   treated -- ``print_summary`` says which.
3. **Consistency, no interference.** One "treatment" (a joint assessment is
   roughly the same thing everywhere) and one person's assessment does not
   change another's outcome.

Whether the adjustment worked for the *measured* covariates shows in the
balance table: ``|SMD| > 0.1`` after adjustment (:data:`SMD_THRESHOLD`), or
variance ratios outside [0.5, 2], mean the propensity model or the method
did not remove the difference; ``print_summary`` lists them as warnings.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> severity = rng.normal(size=3000)
>>> assessed = rng.random(3000) < 1 / (1 + np.exp(1.5 - severity))
>>> cycling = 0.5 * severity - 0.2 * assessed + rng.normal(0, 0.5, 3000)
>>> df = pd.DataFrame({"severity": severity, "assessed": assessed, "cycling": cycling})
>>> naive = DifferenceInMeans(random_state=0).fit(df, "assessed", "cycling")
>>> ipw = IPWEstimator(estimand="ATT", n_bootstrap=50, random_state=0).fit(
...     df, treatment="assessed", outcome="cycling", covariates=["severity"])
>>> round(naive.estimate_, 1), round(ipw.estimate_, 1)
(0.2, -0.2)
"""

from __future__ import annotations

from ._balance import (
    SMD_THRESHOLD,
    balance_table,
    effective_sample_size,
    overlap_table,
    standardized_mean_differences,
)
from ._estimators import (
    ASSUMPTIONS,
    DifferenceInMeans,
    IPWEstimator,
    PropensityScoreMatching,
    PropensityScoreStratification,
    RegressionAdjustment,
    add_missing_indicators,
)
from ._matching import match_nearest
from ._propensity import LogisticPropensity, default_propensity_model, logit
from ._study import DEFAULT_OUTCOMES, AssessmentStudy, risk_set_table, study_outcome_columns
from ._survival import KaplanMeier

__all__ = [
    "ASSUMPTIONS",
    "DEFAULT_OUTCOMES",
    "AssessmentStudy",
    "SMD_THRESHOLD",
    "DifferenceInMeans",
    "IPWEstimator",
    "KaplanMeier",
    "LogisticPropensity",
    "PropensityScoreMatching",
    "PropensityScoreStratification",
    "RegressionAdjustment",
    "add_missing_indicators",
    "balance_table",
    "default_propensity_model",
    "effective_sample_size",
    "logit",
    "match_nearest",
    "overlap_table",
    "risk_set_table",
    "standardized_mean_differences",
    "study_outcome_columns",
]
