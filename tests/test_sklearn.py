"""The package's estimators in scikit-learn: a Pipeline of the point-in-time features and RiskModel
(metadata routing), and scikit-learn's estimator checks on every estimator of the package
(RiskModel, PointInTimeFeatures, BfsRuleBaseline, LogisticPropensity) with every expected failure
declared and explained (issue 16, item 7)."""

from __future__ import annotations

import ast
import inspect
from functools import partial
from pathlib import Path
from unittest import SkipTest

import numpy as np
import pandas as pd
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

import iizrisk
from iizrisk.evaluation import LogisticPropensity
from iizrisk.features import PointInTimeFeatures
from iizrisk.model import BfsRuleBaseline, MedianImputer, RiskModel
from iizrisk.outcomes import compute_outcome
from iizrisk.synth import random_spells

DATES = list(pd.date_range("2018-01-31", "2021-12-31", freq="ME"))


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):  # the machine is shared: oversubscribed OpenMP is slow
        yield


@pytest.fixture(scope="module")
def data():
    spells = random_spells(4000, seed=3)
    X = PointInTimeFeatures().fit_transform(spells, as_of=DATES)
    y = compute_outcome(spells, outcome="revolving_door", horizon_months=12, pairs=X.index)["outcome"]
    return spells, X, y.to_numpy(dtype=bool)


def _routing():
    return sklearn.config_context(enable_metadata_routing=True)


# ---------------------------------------------------------------- Pipeline with metadata routing
@pytest.mark.parametrize("kind", ["logistic", "boosting"])
def test_a_pipeline_of_features_and_model_fits_with_routed_as_of(data, kind):
    """make_pipeline(PointInTimeFeatures(), RiskModel()) fits on spells with the snapshot dates routed
    to the features, and gives exactly what fitting the model on the features gives."""
    spells, X, y = data
    direct = RiskModel(model=kind, max_iter=30).fit(X, y)
    with _routing():
        # no set_*_request calls: the features ask for as_of by default
        pipe = make_pipeline(PointInTimeFeatures(), RiskModel(model=kind, max_iter=30)).fit(spells, y, as_of=DATES)
        last = pipe.predict_proba(spells, as_of=DATES[-1])
    model = pipe[-1]
    # the model took each row's date from the features' index: calibration on a later time slice
    assert model.fit_info_ == direct.fit_info_ and "calibration_period" in model.fit_info_
    at_last = X.index.get_level_values("as_of") == DATES[-1]
    assert np.array_equal(last, direct.predict_proba(X.loc[at_last]))


def test_the_model_does_not_take_the_pipelines_snapshot_dates(data):
    """The pipeline's as_of lists the snapshot dates, not one date per row: RiskModel does not request
    it by default; a per-row as_of is routed to it only when asked for."""
    _, X, y = data
    assert RiskModel().get_metadata_routing().fit.requests["as_of"] is False
    rows = X.reset_index(drop=True)  # no dates in the index: they come as routed metadata
    per_row = X.index.get_level_values("as_of")
    direct = RiskModel(model="logistic").fit(X, y)
    with _routing():
        pipe = make_pipeline(RiskModel(model="logistic").set_fit_request(as_of=True)).fit(rows, y, as_of=per_row)
    assert pipe[-1].fit_info_ == direct.fit_info_
    assert np.array_equal(pipe.predict_proba(rows), direct.predict_proba(X))


def test_without_routing_fit_is_unchanged(data):
    """With routing off (scikit-learn's default) nothing changes: as_of is a keyword of fit."""
    _, X, y = data
    a = RiskModel(model="logistic").fit(X, y)
    b = RiskModel(model="logistic").fit(X.reset_index(drop=True), y, as_of=X.index.get_level_values("as_of"))
    assert a.fit_info_ == b.fit_info_
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))


def test_the_estimator_contract_on_dataframes(data):
    """What the estimator checks test on arrays, on the DataFrames the model takes: fit returns self,
    leaves its parameters alone, is idempotent, and a clone refits to the same probabilities."""
    _, X, y = data
    m = RiskModel(model="boosting", max_iter=20)
    params = m.get_params()
    assert m.fit(X, y) is m and m.get_params() == params
    p = m.predict_proba(X)
    assert np.array_equal(m.fit(X, y).predict_proba(X), p)
    assert np.array_equal(clone(m).fit(X, y).predict_proba(X), p)
    assert m.n_features_in_ == X.shape[1] and list(m.feature_names_in_) == list(X.columns)


# ---------------------------------------------------------------- scikit-learn's estimator checks
_DATAFRAME = ("X must be a DataFrame with named feature columns (the names go into the manifest, the "
              "input checks and the explanations); the check passes a NumPy array and gets a TypeError")
#: checks that fail by design, with the reason; strict: a check that starts passing fails the test
EXPECTED_FAILURES = {
    **dict.fromkeys([
        "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
        "check_estimators_dtypes", "check_complex_data", "check_dtype_object", "check_pipeline_consistency",
        "check_estimators_pickle", "check_f_contiguous_array_estimator", "check_classifier_data_not_an_array",
        "check_classifiers_classes", "check_supervised_y_2d", "check_non_transformer_estimators_n_iter",
        "check_decision_proba_consistency", "check_methods_sample_order_invariance",
        "check_methods_subset_invariance", "check_fit2d_1sample", "check_fit2d_1feature",
        "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in",
        "check_fit1d", "check_fit2d_predict1d", "check_requires_y_none",
    ], _DATAFRAME),
    "check_positive_only_tag_during_fit": _DATAFRAME,
    "check_estimators_empty_data_messages": _DATAFRAME + " (an empty DataFrame is refused with a ValueError: "
                                            "a single class)",
    "check_classifiers_one_label": _DATAFRAME + " (a DataFrame with one class is refused with a ValueError "
                                   "naming the class, as the check wants)",
    "check_classifiers_train": _DATAFRAME,
    "check_classifiers_regression_target": _DATAFRAME + "; y is read as a boolean outcome",
    "check_supervised_y_no_nan": _DATAFRAME + "; y is read as a boolean outcome",
    **dict.fromkeys(["check_estimator_sparse_tag", "check_estimator_sparse_array",
                     "check_estimator_sparse_matrix"],
                    "sparse input is refused by the DataFrame check, whose message does not say 'sparse'"),
}
#: checks that scikit-learn itself skips here, with the reason; any other skip fails the test
EXPECTED_SKIPS = {
    "check_array_api_input": "array API dispatch needs SciPy imported with SCIPY_ARRAY_API=1; no estimator "
                             "of the package claims array API support",
}

# PointInTimeFeatures turns spells into features at as-of dates: X is a table of spells and transform
# needs the dates (keyword as_of; routed metadata in a Pipeline, see the tests above)
_SPELLS = ("X is a table of spells (person_id, institution, start_date, end_date) and transform needs the "
           "as-of dates (keyword-only as_of); the check passes a numeric array without as_of and gets a "
           "TypeError")
_FIT_READS_NO_DATA = ("fit checks the parameters and fixes the output columns without reading X (the "
                      "features are computed in transform, from the spells at each as-of date), so it "
                      "validates no data and sets no n_features_in_ (its input is spells, not features)")
#: PointInTimeFeatures: checks that fail by design, with the reason
PIT_EXPECTED_FAILURES = {
    **dict.fromkeys([
        "check_fit_score_takes_y", "check_estimators_dtypes", "check_dtype_object",
        "check_pipeline_consistency", "check_estimators_pickle", "check_f_contiguous_array_estimator",
        "check_transformer_data_not_an_array", "check_transformer_general", "check_transformer_preserve_dtypes",
        "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_dict_unchanged",
        "check_fit_idempotent", "check_fit2d_predict1d",
    ], _SPELLS),
    "check_transformers_unfitted": "as_of is a required keyword of transform, so a call without it fails "
                                   "with a TypeError before the fitted check (NotFittedError) is reached",
    **dict.fromkeys([
        "check_n_features_in_after_fitting", "check_n_features_in", "check_complex_data",
        "check_estimators_empty_data_messages", "check_estimators_nan_inf", "check_estimator_sparse_tag",
        "check_fit1d",
    ], _FIT_READS_NO_DATA),
}

# BfsRuleBaseline scores the BFS revolving-door flag, a named feature column
_FLAG_COLUMN = ("X must be a DataFrame holding the flag column (``column``, by name: the baseline reads that "
                "one feature of the point-in-time features); the check passes a NumPy array and the column "
                "lookup fails")
_OUTCOME_RATES = "; y is averaged as a 0/1 outcome, without label checks"
#: BfsRuleBaseline: checks that fail by design, with the reason
BFS_EXPECTED_FAILURES = {
    **dict.fromkeys([
        "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_complex_data",
        "check_dtype_object", "check_pipeline_consistency", "check_estimators_pickle",
        "check_f_contiguous_array_estimator", "check_classifier_data_not_an_array", "check_classifiers_classes",
        "check_supervised_y_2d", "check_methods_sample_order_invariance", "check_methods_subset_invariance",
        "check_fit2d_1sample", "check_fit2d_1feature", "check_dict_unchanged", "check_fit_idempotent",
        "check_fit_check_is_fitted", "check_n_features_in", "check_fit1d", "check_fit2d_predict1d",
        "check_requires_y_none", "check_estimators_empty_data_messages", "check_estimators_nan_inf",
    ], _FLAG_COLUMN),
    **dict.fromkeys(["check_estimator_sparse_tag", "check_estimator_sparse_array",
                     "check_estimator_sparse_matrix"],
                    _FLAG_COLUMN + ", with a message that does not say 'sparse'"),
    **dict.fromkeys(["check_classifiers_one_label", "check_classifiers_train",
                     "check_classifiers_regression_target", "check_supervised_y_no_nan"],
                    _FLAG_COLUMN + _OUTCOME_RATES),
}

# LogisticPropensity: the propensity model of the evaluation, fitted on 0/1 treatment by Newton's method
_BINARY = ("a model of 0/1 treatment without the multi_class=False tag: on the check's three-class target "
           "Newton's method diverges and warns (ConvergenceWarning, an error in the test run)")
_NO_INPUT_CHECKS = "fit converts X with np.asarray and does not validate it (no validate_data)"
_NO_LABEL_CHECKS = "y is read as 0/1 numbers, without label checks (no check_classification_targets)"
#: LogisticPropensity: checks that fail by design, with the reason
LOGIT_EXPECTED_FAILURES = {
    **dict.fromkeys([
        "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_sample_weights_pandas_series",
        "check_sample_weights_not_an_array", "check_sample_weights_list", "check_sample_weights_shape",
        "check_sample_weights_not_overwritten", "check_sample_weight_equivalence_on_dense_data",
        "check_f_contiguous_array_estimator", "check_classifier_data_not_an_array", "check_supervised_y_2d",
        "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_fit2d_predict1d",
        "check_classifiers_train",
    ], _BINARY),
    "check_n_features_in_after_fitting": _BINARY + "; and " + _NO_INPUT_CHECKS + ", so no n_features_in_",
    "check_n_features_in": _NO_INPUT_CHECKS + ", so it sets no n_features_in_",
    "check_complex_data": _NO_INPUT_CHECKS + ": complex values are cast with a ComplexWarning",
    "check_estimators_empty_data_messages": _NO_INPUT_CHECKS + ": empty X is not refused",
    "check_estimators_nan_inf": _NO_INPUT_CHECKS + ": NaN and inf are not refused",
    "check_all_zero_sample_weights_error": _NO_INPUT_CHECKS + ": all-zero weights divide by zero "
                                           "(RuntimeWarning) instead of a ValueError",
    **dict.fromkeys(["check_estimator_sparse_tag", "check_estimator_sparse_array",
                     "check_estimator_sparse_matrix"],
                    _NO_INPUT_CHECKS + ": sparse X fails in float(), with a message that does not say 'sparse'"),
    "check_classifiers_classes": _NO_LABEL_CHECKS + ": string labels cannot be converted",
    "check_classifiers_one_label": _NO_LABEL_CHECKS + ": one class is fitted without the error naming the class",
    "check_classifiers_one_label_sample_weights": _NO_LABEL_CHECKS + ": one class left after zero weights "
                                                  "is not refused",
    "check_classifiers_regression_target": _NO_LABEL_CHECKS + ": a continuous target is not refused",
    "check_supervised_y_no_nan": _NO_LABEL_CHECKS + ": inf and NaN in y are not refused",
    "check_requires_y_none": _NO_LABEL_CHECKS + ": y=None fails without scikit-learn's message",
}

_STRICT = ({"xfail_strict": True}
           if "xfail_strict" in inspect.signature(parametrize_with_checks).parameters else {})

#: every estimator of the package, as the checks see it (test_every_estimator_is_checked keeps it whole)
ESTIMATORS = [RiskModel(n_threads=1), PointInTimeFeatures(), BfsRuleBaseline(), LogisticPropensity(),
              MedianImputer()]
FAILURES = {"RiskModel": EXPECTED_FAILURES, "PointInTimeFeatures": PIT_EXPECTED_FAILURES,
            "BfsRuleBaseline": BFS_EXPECTED_FAILURES, "LogisticPropensity": LOGIT_EXPECTED_FAILURES,
            "MedianImputer": {}}


def _name(check) -> str:
    return (check.func if isinstance(check, partial) else check).__name__


def _expected(estimator) -> dict[str, str]:
    return FAILURES[type(estimator).__name__]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected, **_STRICT)
def test_sklearn_estimator_checks(estimator, check):
    try:
        check(estimator)
    except SkipTest as exc:
        if _name(check) not in EXPECTED_SKIPS:
            pytest.fail(f"{_name(check)} was skipped without a declared reason: {exc}")
        pytest.skip(f"declared: {EXPECTED_SKIPS[_name(check)]} ({exc})")


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda est: type(est).__name__)
def test_every_declared_failure_is_a_check_that_runs(estimator):
    """The lists do not go stale: each name is a check scikit-learn runs on that estimator."""
    from sklearn.utils.estimator_checks import estimator_checks_generator

    names = {_name(check) for _, check in estimator_checks_generator(estimator, mark=None)}
    assert set(_expected(estimator)) <= names and set(EXPECTED_SKIPS) <= names


def _estimator_classes() -> set[str]:
    """The package's scikit-learn estimators: classes deriving, directly or through one another, from
    BaseEstimator (read from the source, so no module is imported for it)."""
    bases: dict[str, set[str]] = {}
    for path in Path(iizrisk.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {b.id if isinstance(b, ast.Name) else b.attr
                                    for b in node.bases if isinstance(b, ast.Name | ast.Attribute)}
    found = {"BaseEstimator"}
    while True:
        more = {name for name, of in bases.items() if of & found} - found
        if not more:
            return found - {"BaseEstimator"}
        found |= more


def test_every_estimator_of_the_package_is_checked():
    """A new estimator joins ESTIMATORS (and declares its expected failures) or this test fails."""
    assert _estimator_classes() == {type(est).__name__ for est in ESTIMATORS} == set(FAILURES)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 6), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_median_imputer_equals_scikit_learns_simple_imputer(n, p, missing, seed):
    """MedianImputer (the logistic model's first step) against SimpleImputer(strategy="median",
    add_indicator=True, keep_empty_features=True): the same matrix on the training rows and on new rows."""
    from sklearn.impute import SimpleImputer

    rng = np.random.default_rng(seed)
    X = rng.integers(-3, 4, size=(n, p)).astype(np.float64)  # ties: medians of even counts too
    X[rng.random(X.shape) < missing] = np.nan
    new = rng.normal(size=(7, p))
    new[rng.random(new.shape) < 0.4] = np.nan
    ours = MedianImputer().fit(X)
    theirs = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True).fit(X)
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X))
    np.testing.assert_allclose(ours.transform(new), theirs.transform(new))
    np.testing.assert_array_equal(ours.indicator_.features_, theirs.indicator_.features_)
