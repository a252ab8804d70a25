"""Effect estimators on plain tables with known effects; matching and Kaplan-Meier against slow references.

The references are written the obvious way (all pairs sorted, a loop over
event times) and share no code with :mod:`iizrisk.evaluation`.
"""

from __future__ import annotations

import io
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from sklearn.base import BaseEstimator, ClassifierMixin

from iizrisk.errors import ValidationError
from iizrisk.evaluation import (
    ASSUMPTIONS,
    DifferenceInMeans,
    IPWEstimator,
    KaplanMeier,
    LogisticPropensity,
    PropensityScoreMatching,
    PropensityScoreStratification,
    RegressionAdjustment,
    add_missing_indicators,
    balance_table,
    effective_sample_size,
    match_nearest,
    overlap_table,
    standardized_mean_differences,
)

COVS = ["x1", "x2", "x3"]


def confounded_table(n: int, seed: int, *, effect=1.0, strength: float = 1.0) -> tuple[pd.DataFrame, float]:
    """Treatment depends on x1 and x2, and so does the outcome; returns the table and the sample ATT.

    ``effect`` is a number or a function of the covariate table (heterogeneous effect).
    """
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.4, n).astype(float)
    x3 = rng.normal(size=n)
    z = -1.0 + strength * (1.0 * x1 + 0.8 * x2)
    t = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    df = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "t": t})
    tau = np.broadcast_to(effect(df) if callable(effect) else np.asarray(effect, dtype=float), (n,))
    df["y"] = tau * t + 2.0 * x1 + 1.0 * x2 + 0.5 * x3 + rng.normal(size=n)
    return df, float(tau[t == 1].mean())


# ------------------------------------------------------------------- estimators, known effects
ADJUSTED = [
    lambda: RegressionAdjustment(n_bootstrap=100, random_state=0),
    lambda: IPWEstimator(n_bootstrap=100, random_state=0),
    lambda: PropensityScoreMatching(n_bootstrap=100, random_state=0),
    lambda: PropensityScoreMatching(replace=True, n_bootstrap=100, random_state=0),
    lambda: PropensityScoreStratification(n_strata=10, n_bootstrap=100, random_state=0),
]


@pytest.fixture(scope="module")
def table():
    return confounded_table(4000, seed=11)


@pytest.mark.parametrize("make", ADJUSTED, ids=["regression", "ipw", "matching", "matching_repl", "strata"])
def test_adjusted_estimators_recover_the_effect(table, make):
    df, att = table
    est = make().fit(df, treatment="t", outcome="y", covariates=COVS)
    assert est.standard_error_ > 0
    assert abs(est.estimate_ - att) < 4 * est.standard_error_ + 0.03
    lo, hi = est.confidence_interval_
    assert lo < est.estimate_ < hi
    # the naive comparison on the same data is far off: the adjustment is doing work
    naive = DifferenceInMeans(n_bootstrap=100, random_state=0).fit(df, "t", "y", COVS)
    assert abs(naive.estimate_ - att) > 10 * naive.standard_error_
    assert abs(naive.estimate_ - att) > 5 * abs(est.estimate_ - att)


def test_reweighting_estimators_balance_the_covariates(table):
    df, _ = table
    for est in (IPWEstimator(n_bootstrap=0), PropensityScoreMatching(n_bootstrap=0),
                PropensityScoreStratification(n_strata=10, n_bootstrap=0)):
        bal = est.fit(df, "t", "y", COVS).balance_
        assert bal.loc["x1", "smd_before"] > 0.5
        assert bal["smd_after"].abs().max() < 0.1, type(est).__name__
        assert bal["smd_after"].abs().max() < bal["smd_before"].abs().max() / 5


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
def test_estimands_differ_with_heterogeneous_effects(estimand):
    df, att = confounded_table(6000, seed=5, effect=lambda d: 1.0 + d["x1"].to_numpy())
    ate = 1.0 + 0.0  # E[x1] = 0
    target = att if estimand == "ATT" else ate
    assert att > 1.5  # treated have high x1: ATT and ATE are far apart
    for make in (RegressionAdjustment, IPWEstimator):
        est = make(estimand=estimand, n_bootstrap=100, random_state=1).fit(df, "t", "y", COVS)
        assert abs(est.estimate_ - target) < 4 * est.standard_error_ + 0.05, make.__name__
        other = ate if estimand == "ATT" else att
        assert abs(est.estimate_ - other) > 4 * est.standard_error_, make.__name__
    est = PropensityScoreStratification(estimand=estimand, n_strata=20, n_bootstrap=100,
                                        random_state=1).fit(df, "t", "y", COVS)
    assert abs(est.estimate_ - target) < 4 * est.standard_error_ + 0.1


def test_matching_estimates_the_effect_on_the_matched_treated():
    df, _ = confounded_table(3000, seed=8, effect=lambda d: 1.0 + d["x1"].to_numpy(), strength=2.0)
    est = PropensityScoreMatching(caliper=0.05, n_bootstrap=200, random_state=0).fit(df, "t", "y", COVS)
    assert est.info_["n_unmatched"] > 0  # strong confounding: a tight caliper leaves treated out
    matched = est.pairs_["treated"]
    satt = float((1.0 + df.loc[matched, "x1"]).mean())
    assert abs(est.estimate_ - satt) < 4 * est.standard_error_
    assert any("without a control" in m and lvl == "warning" for lvl, m in est.diagnostics_)
    # pairs: distinct controls without replacement, within the caliper, one per treated
    assert est.pairs_["control"].is_unique and est.pairs_["treated"].is_unique
    assert (df.loc[est.pairs_["treated"], "t"] == 1).all() and (df.loc[est.pairs_["control"], "t"] == 0).all()
    w = est.weights_
    assert w[est.pairs_["treated"]].eq(1).all() and w.sum() == 2 * len(est.pairs_)


def test_matching_exact_groups_pair_only_within_a_group():
    df, _ = confounded_table(1500, seed=3)
    df["day"] = np.random.default_rng(0).integers(0, 12, len(df))
    est = PropensityScoreMatching(exact=["day"], n_bootstrap=10, random_state=0).fit(df, "t", "y", COVS)
    days_t = df.loc[est.pairs_["treated"], "day"].to_numpy()
    days_c = df.loc[est.pairs_["control"], "day"].to_numpy()
    assert len(days_t) > 100 and (days_t == days_c).all()
    with pytest.raises(ValidationError, match="exact-matching"):
        PropensityScoreMatching(exact=["nope"], n_bootstrap=0).fit(df, "t", "y", COVS)
    with pytest.raises(ValueError, match="estimand"):
        PropensityScoreMatching(estimand="ATE").fit(df, "t", "y", COVS)


def test_stratification_with_one_stratum_is_the_difference_in_means(table):
    df, _ = table
    one = PropensityScoreStratification(n_strata=1, n_bootstrap=0).fit(df, "t", "y", COVS)
    naive = DifferenceInMeans(n_bootstrap=0).fit(df, "t", "y")
    assert one.estimate_ == pytest.approx(naive.estimate_)


def test_ipw_options(table):
    df, att = table
    base = IPWEstimator(n_bootstrap=0, stabilized=False).fit(df, "t", "y", COVS)
    stab = IPWEstimator(n_bootstrap=0, stabilized=True).fit(df, "t", "y", COVS)
    assert stab.estimate_ == pytest.approx(base.estimate_)  # stabilising only rescales within a group
    e = base.propensity_.to_numpy()
    t = df["t"].to_numpy() == 1
    np.testing.assert_allclose(base.weights_.to_numpy(), np.where(t, 1.0, e / (1 - e)))
    ht = IPWEstimator(n_bootstrap=0, normalize=False).fit(df, "t", "y", COVS)
    manual = (df["y"][t].sum() - (e / (1 - e) * df["y"])[~t].sum()) / t.sum()
    assert ht.estimate_ == pytest.approx(manual)
    tr = IPWEstimator(n_bootstrap=0, trim_propensity=0.1, stabilized=False).fit(df, "t", "y", COVS)
    assert tr.info_["n_trimmed"] == int(((e < 0.1) | (e > 0.9)).sum()) > 0
    assert (tr.weights_[(e < 0.1) | (e > 0.9)] == 0).all()
    cap = IPWEstimator(n_bootstrap=0, truncate_weights=0.9, stabilized=False).fit(df, "t", "y", COVS)
    wc = cap.weights_.to_numpy()[~t]
    assert wc.max() == pytest.approx(np.quantile((e / (1 - e))[~t], 0.9))
    with pytest.raises(ValueError, match="truncate_weights"):
        IPWEstimator(truncate_weights=0.2).fit(df, "t", "y", COVS)


def test_regression_adjustment_with_an_sklearn_model_equals_ols(table):
    from sklearn.linear_model import LinearRegression

    df, _ = table
    a = RegressionAdjustment(n_bootstrap=0).fit(df, "t", "y", COVS)
    b = RegressionAdjustment(outcome_model=LinearRegression(), n_bootstrap=0).fit(df, "t", "y", COVS)
    assert a.estimate_ == pytest.approx(b.estimate_, rel=1e-9)
    assert a.balance_["smd_after"].isna().all()  # no reweighting, no "after"


def test_bootstrap_interval_covers_in_randomised_experiments():
    """Difference in means on 200 randomised tables: the 90% interval covers about 90% of the time."""
    hits = 0
    reps = 200
    for seed in range(reps):
        rng = np.random.default_rng(seed)
        t = rng.random(120) < 0.4
        y = 0.5 * t + rng.exponential(1.0, 120)  # skewed outcome
        est = DifferenceInMeans(n_bootstrap=400, alpha=0.1, random_state=seed).fit(
            pd.DataFrame({"t": t, "y": y}), "t", "y")
        lo, hi = est.confidence_interval_
        hits += lo <= 0.5 <= hi
    # binomial(200, 0.9): 95% of outcomes lie in 172..187; allow the small-sample undercoverage
    # of percentile intervals (n=120) but not a broken interval
    assert 165 <= hits <= 192, hits


def test_reproducible_with_a_seed(table):
    df, _ = table
    a = IPWEstimator(n_bootstrap=30, random_state=4).fit(df, "t", "y", COVS)
    b = IPWEstimator(n_bootstrap=30, random_state=4).fit(df, "t", "y", COVS)
    assert a.confidence_interval_ == b.confidence_interval_
    np.testing.assert_array_equal(a.bootstrap_estimates_, b.bootstrap_estimates_)


def test_summary_print_html_and_plots(table):
    df, _ = table
    est = IPWEstimator(n_bootstrap=20, random_state=0).fit(df, "t", "y", COVS)
    s = est.summary
    assert list(s.index) == ["ATT"]
    assert list(s.columns) == ["estimate", "se", "lower 95%", "upper 95%", "z", "p", "n_treated", "n_control"]
    assert s.loc["ATT", "p"] == pytest.approx(2 * norm.sf(abs(est.estimate_ / est.standard_error_)))
    buf = io.StringIO()
    est.print_summary(file=buf)
    text = buf.getvalue()
    assert "Diagnostics" in text and "no unmeasured confounding" in text and "balance:" in text
    assert ASSUMPTIONS[:40] in est._repr_html_()
    ax = est.plot()
    assert len(ax.get_yticklabels()) == 3 and ax.collections
    ax2 = est.plot_overlap()
    assert ax2.get_xlabel() == "propensity score"
    fig, given_ax = plt.subplots()
    assert est.plot(ax=given_ax) is given_ax
    plt.close("all")
    assert "not fitted" in IPWEstimator()._repr_html_()
    with pytest.raises(AttributeError, match="not fitted"):
        IPWEstimator().summary  # noqa: B018


def test_overlap_failure_is_reported():
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-(4 * x - 3)))).astype(int)  # near separation
    df = pd.DataFrame({"x": x, "t": t, "y": t + x + rng.normal(size=n)})
    est = IPWEstimator(estimand="ATE", n_bootstrap=0).fit(df, "t", "y", ["x"])
    warnings_ = [m for lvl, m in est.diagnostics_ if lvl == "warning"]
    assert any(m.startswith("overlap") for m in warnings_)
    assert any("effective sample size" in m for m in warnings_)


def test_input_errors(table):
    df, _ = table
    with pytest.raises(ValidationError, match="not in the table"):
        IPWEstimator().fit(df, "t", "y", ["x1", "nope"])
    bad = df.copy()
    bad.loc[bad.index[:3], "x1"] = np.nan
    with pytest.raises(ValidationError, match="add_missing_indicators"):
        IPWEstimator().fit(bad, "t", "y", COVS)
    bad = df.assign(t=df["t"] * 2)
    with pytest.raises(ValidationError, match="0/1"):
        IPWEstimator().fit(bad, "t", "y", COVS)
    with pytest.raises(ValidationError, match="at least 2 treated"):
        IPWEstimator().fit(df.assign(t=0), "t", "y", COVS)
    with pytest.raises(ValidationError, match="type"):
        IPWEstimator().fit(df.assign(x3="a"), "t", "y", COVS)
    with pytest.raises(ValueError, match="covariates"):
        IPWEstimator().fit(df, "t", "y")
    with pytest.raises(ValueError, match="estimand"):
        IPWEstimator(estimand="ATC").fit(df, "t", "y", COVS)


def test_add_missing_indicators_then_fit(table):
    df, att = table
    gaps = df.copy()
    gaps.loc[gaps.index[::7], "x3"] = np.nan
    filled, cols = add_missing_indicators(gaps, COVS)
    assert cols == ["x1", "x2", "x3", "x3_missing"]
    assert filled["x3_missing"].sum() == len(df.index[::7]) and filled["x3"].notna().all()
    est = IPWEstimator(n_bootstrap=30, random_state=0).fit(filled, "t", "y", cols)
    assert abs(est.estimate_ - att) < 0.3


# ------------------------------------------------------------------- balance helpers
@pytest.mark.parametrize("block", [7, 1 << 16])  # the rows in several blocks, or in one
def test_balance_table_matches_the_formula(block, monkeypatch):
    from iizrisk.evaluation import _balance

    monkeypatch.setattr(_balance, "_BLOCK", block)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 2))
    t = rng.random(50) < 0.5
    w = rng.uniform(0.1, 3, 50)
    tab = balance_table(X, t, weights=w, names=["a", "b"])
    for j, name in enumerate("ab"):
        x = X[:, j]
        sd = math.sqrt((x[t].var(ddof=1) + x[~t].var(ddof=1)) / 2)
        before = (x[t].mean() - x[~t].mean()) / sd
        after = (np.average(x[t], weights=w[t]) - np.average(x[~t], weights=w[~t])) / sd
        assert tab.loc[name, "smd_before"] == pytest.approx(before)
        assert tab.loc[name, "smd_after"] == pytest.approx(after)
        assert tab.loc[name, "variance_ratio_before"] == pytest.approx(x[t].var(ddof=1) / x[~t].var(ddof=1))
        assert tab.loc[name, "mean_control_after"] == pytest.approx(np.average(x[~t], weights=w[~t]))
    np.testing.assert_allclose(standardized_mean_differences(X, t), tab["smd_before"])
    np.testing.assert_allclose(standardized_mean_differences(X, t, w), tab["smd_after"])
    assert standardized_mean_differences(np.ones((4, 1)), [1, 1, 0, 0]).tolist() == [0.0]
    assert effective_sample_size(np.ones(7)) == pytest.approx(7.0)
    ov = overlap_table(np.linspace(0.1, 0.9, 50), t)
    assert ov.loc["n", "treated"] == t.sum()


def test_logistic_propensity_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(2)
    X = rng.normal(size=(800, 5)) * [1, 10, 0.1, 3, 1] + [0, 5, 0, -2, 1]
    y = (rng.random(800) < 1 / (1 + np.exp(-(X[:, 0] + 0.1 * X[:, 1] - 1)))).astype(int)
    ours = LogisticPropensity(C=0.5).fit(X, y).predict_proba(X)[:, 1]
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000)).fit(X, y)
    np.testing.assert_allclose(ours, ref.predict_proba(X)[:, 1], atol=1e-6)
    # perfectly separated data: the penalty keeps the fit finite
    sep = LogisticPropensity().fit(X, (X[:, 0] > 0).astype(int))
    assert np.all(np.isfinite(sep.coef_))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(12, 60), p=st.integers(1, 4), C=st.sampled_from([0.1, 1.0, 10.0]),
       seed=st.integers(0, 2**31 - 1))
def test_logistic_propensity_weights_equal_repeated_rows_and_scikit_learn(n, p, C, seed):
    """Integer sample weights are repeated rows (0 drops a row); any weights give scikit-learn's
    StandardScaler + LogisticRegression(C) fitted with the same weights (the scaler weighted too)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.1, 10, p) + rng.normal(0, 3, p)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] - X[:, 0].mean())))).astype(int)
    y[:2], y[2:4] = 1, 0  # both classes among the rows that keep a weight
    k = rng.integers(0, 4, n)
    k[:4] = rng.integers(1, 4, 4)
    weighted = LogisticPropensity(C=C).fit(X, y, sample_weight=k.astype(float))
    repeated = LogisticPropensity(C=C).fit(np.repeat(X, k, axis=0), np.repeat(y, k))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(weighted.intercept_, repeated.intercept_, rtol=1e-7, atol=1e-9)
    w = rng.uniform(0.2, 3.0, n)
    ours = LogisticPropensity(C=C).fit(X, y, sample_weight=w).predict_proba(X)[:, 1]
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=C, tol=1e-12, max_iter=10_000))
    ref.fit(X, y, standardscaler__sample_weight=w, logisticregression__sample_weight=w)
    np.testing.assert_allclose(ours, ref.predict_proba(X)[:, 1], atol=1e-6)
    # the weights matter: unweighted differs (a test that could not fail would pass here too)
    plain = LogisticPropensity(C=C).fit(X, y).predict_proba(X)[:, 1]
    assert np.abs(plain - ours).max() > 1e-6


def test_logistic_propensity_summed_over_blocks_equals_one_block(monkeypatch):
    from iizrisk.evaluation import _propensity

    rng = np.random.default_rng(5)
    X = rng.normal(size=(1000, 4)) * [1, 10, 0.1, 3] + [0, 5, 0, -2]
    y = (rng.random(1000) < 1 / (1 + np.exp(-(X[:, 0] - 1)))).astype(int)
    w = rng.random(1000) + 0.5
    whole = LogisticPropensity(C=0.5).fit(X, y, sample_weight=w)
    monkeypatch.setattr(_propensity, "_BLOCK", 97)  # ten whole blocks and a part
    blocks = LogisticPropensity(C=0.5).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(blocks.coef_, whole.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(blocks.intercept_, whole.intercept_, rtol=1e-10, atol=1e-12)


def test_reused_propensity_fits_are_fitted_once_per_distinct_data(monkeypatch):
    from iizrisk.evaluation._propensity import fit_propensity, reusing_fits

    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 3))
    t = rng.random(300) < 1 / (1 + np.exp(-X[:, 0]))
    fits = []
    real = LogisticPropensity.fit
    monkeypatch.setattr(LogisticPropensity, "fit", lambda self, *a, **k: fits.append(1) or real(self, *a, **k))
    alone = fit_propensity(X, t)
    with reusing_fits():
        a = fit_propensity(X, t)
        b = fit_propensity(X.copy(), t.copy())  # the same data in other arrays
        np.testing.assert_array_equal(b, alone)
        a[:] = 0.5  # a caller changing its scores changes no one else's
        b[:] = 0.5
        c = fit_propensity(X, t)
        moved = X.copy()
        moved[7, 1] += 1e-9
        fit_propensity(moved, t)  # other data
        fit_propensity(X, t, LogisticPropensity(C=2.0))  # another model
        fortran = np.asfortranarray(X)  # a DataFrame's to_numpy order: hashed without a copy, reused among its own
        np.testing.assert_allclose(fit_propensity(fortran, t), alone, rtol=1e-12)
        fit_propensity(np.asfortranarray(X), t)
        changed = np.asfortranarray(X)
        changed[3, 0] += 1.0
        fit_propensity(changed, t)
    fit_propensity(X, t)  # after the block: fitted again
    assert len(fits) == 7
    np.testing.assert_array_equal(c, alone)


# ------------------------------------------------------------------- matching vs a slow reference
def ref_match(st_, sc, gt, gc, caliper, replace):
    """All admissible pairs sorted by the documented key, then greedy (or each treated's minimum)."""
    ranks = {v: i for i, v in enumerate(sorted(set(st_) | set(sc)))}
    cal = math.inf if caliper is None else caliper
    pairs = []
    for i, a in enumerate(st_):
        for j, b in enumerate(sc):
            d = abs(a - b)
            if gt[i] == gc[j] and d <= cal:
                pairs.append((d, abs(ranks[a] - ranks[b]), a, b, i, j))
    pairs.sort()
    out = [-1] * len(st_)
    used: set[int] = set()
    for *_, i, j in pairs:
        if out[i] == -1 and (replace or j not in used):
            out[i] = j
            used.add(j)
    return out


scores = st.one_of(st.integers(0, 6).map(lambda k: k / 4),
                   st.floats(-3, 3, allow_nan=False, allow_subnormal=False))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(scores, st.integers(0, 2)), max_size=14),
       st.lists(st.tuples(scores, st.integers(0, 2)), max_size=14),
       st.one_of(st.none(), st.floats(0, 1.5)), st.booleans(), st.booleans())
def test_matching_equals_the_slow_reference(treated, controls, caliper, replace, grouped):
    s_t = [a for a, _ in treated]
    s_c = [a for a, _ in controls]
    g_t = [g if grouped else 0 for _, g in treated]
    g_c = [g if grouped else 0 for _, g in controls]
    fast = match_nearest(s_t, s_c, group_t=g_t if grouped else None, group_c=g_c if grouped else None,
                         caliper=caliper, replace=replace)
    assert fast.tolist() == ref_match(s_t, s_c, g_t, g_c, caliper, replace)


def test_matching_larger_random_inputs_against_the_reference():
    rng = np.random.default_rng(0)
    for _ in range(20):
        s_t = np.round(rng.normal(1, 1, 60), 2)
        s_c = np.round(rng.normal(0, 1, 90), 2)
        g_t, g_c = rng.integers(0, 3, 60), rng.integers(0, 3, 90)
        fast = match_nearest(s_t, s_c, group_t=g_t, group_c=g_c, caliper=0.3)
        assert fast.tolist() == ref_match(s_t.tolist(), s_c.tolist(), g_t.tolist(), g_c.tolist(), 0.3, False)


def test_match_nearest_arguments():
    assert match_nearest([], [1.0]).tolist() == []
    assert match_nearest([1.0], []).tolist() == [-1]
    with pytest.raises(ValueError, match="finite"):
        match_nearest([np.nan], [1.0])
    with pytest.raises(ValueError, match="both"):
        match_nearest([1.0], [1.0], group_t=[0])
    with pytest.raises(ValueError, match="caliper"):
        match_nearest([1.0], [1.0], caliper=-1)


# ------------------------------------------------------------------- Kaplan-Meier vs a slow reference
def ref_km(durations, events, weights, z):
    """Product-limit estimate, Greenwood variance and log(-log) band, one event time at a time."""
    out = {0.0: (1.0, 1.0, 1.0)}
    s, green = 1.0, 0.0
    for time in sorted(set(durations)):
        n = sum(w for d, w in zip(durations, weights, strict=True) if d >= time)
        d = sum(w for t_, e, w in zip(durations, events, weights, strict=True) if t_ == time and e)
        if n > 0 and d > 0:
            s *= 1 - d / n
            green = green + d / (n * (n - d)) if n > d else math.inf
        if s >= 1:
            lo = hi = 1.0
        elif s <= 0:
            lo = hi = 0.0
        else:
            se = math.sqrt(green) / abs(math.log(s))
            lo = math.exp(-math.exp(math.log(-math.log(s)) + z * se))
            hi = math.exp(-math.exp(math.log(-math.log(s)) - z * se))
        out[float(time)] = (s, lo, hi)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 30), st.booleans(), st.sampled_from([1.0, 1.0, 2.0, 0.5])),
                min_size=1, max_size=40), st.booleans())
def test_kaplan_meier_equals_the_slow_reference(rows, weighted):
    d = [float(a) for a, _, _ in rows]
    e = [b for _, b, _ in rows]
    w = [c if weighted else 1.0 for _, _, c in rows]
    km = KaplanMeier(alpha=0.05).fit(d, e, weights=w if weighted else None, label="s")
    ref = ref_km(d, e, w, norm.ppf(0.975))
    assert list(km.survival_function_.index) == sorted(ref)
    got = km.survival_function_["s"].to_numpy()
    lo, hi = km.confidence_interval_.to_numpy().T
    exp = np.array([ref[k] for k in sorted(ref)])
    np.testing.assert_allclose(got, exp[:, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lo, exp[:, 1], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(hi, exp[:, 2], rtol=1e-8, atol=1e-12)
    assert (lo <= got + 1e-12).all() and (got <= hi + 1e-12).all()


def test_kaplan_meier_helpers_and_plot():
    km = KaplanMeier().fit([1, 2, 2, 3, 5, 8], [1, 1, 0, 1, 0, 1], label="x")
    # 5/6 after t=1, times 4/5 after t=2 (5 at risk, one event, one censored)
    assert km.survival_function_at_times([0, 2.5, 100]).round(4).tolist() == [1.0, round(4 / 6, 4), 0.0]
    assert km.at_risk_at_times([0, 3, 6]).tolist() == [6.0, 3.0, 1.0]
    assert km.cumulative_density_["x"].iloc[-1] == pytest.approx(1.0)
    assert km.event_table["observed"].sum() == 4
    ax = km.plot(cumulative=True)
    assert ax.get_ylabel() == "cumulative incidence"
    plt.close("all")
    with pytest.raises(ValidationError, match="durations"):
        KaplanMeier().fit([-1, 2])
    assert "not fitted" in repr(KaplanMeier())


@pytest.mark.parametrize("events", [
    [1, np.nan, 0, 1],
    [1, None, 0, 1],
    pd.Series([True, pd.NA, False, True], dtype="boolean", name="exit_observed"),
    pd.Series([1.0, np.nan, 0.0, 1.0], name="exit_observed", index=["p-a", "p-b", "p-c", "p-d"]),
])
def test_kaplan_meier_refuses_missing_events(events):
    # a missing event was counted as an event (np.asarray(nan, dtype=bool) is True); lifelines raises too
    with pytest.raises(ValidationError) as exc:
        KaplanMeier().fit([1.0, 2.0, 3.0, 4.0], events)
    msg = str(exc.value)
    assert "missing" in msg and "positions 1," in msg
    assert msg.startswith("exit_observed" if isinstance(events, pd.Series) else "event_observed")
    assert "p-b" not in msg  # positions, never index labels (they may be pseudonyms)


def test_kaplan_meier_refuses_events_other_than_0_1():
    with pytest.raises(ValidationError, match="neither 0 nor 1"):
        KaplanMeier().fit([1.0, 2.0], [1, 2])
    with pytest.raises(ValidationError, match="neither 0/1 nor True/False"):
        KaplanMeier().fit([1.0, 2.0], ["yes", "no"])
    with pytest.raises(ValidationError, match="exit_days: 1 row"):
        KaplanMeier().fit(pd.Series([1.0, np.nan], name="exit_days"), [1, 0])
    km = KaplanMeier().fit([1.0, 2.0, 3.0], pd.Series([1.0, 0.0, 1.0]))
    assert km.event_table["observed"].sum() == 2


def test_a_single_covariate_name_is_one_column(table):
    df, _ = table
    one = IPWEstimator(n_bootstrap=0, random_state=0).fit(df, "t", "y", covariates="x1")
    listed = IPWEstimator(n_bootstrap=0, random_state=0).fit(df, "t", "y", covariates=["x1"])
    assert one.covariates_ == ["x1"]
    assert one.estimate_ == listed.estimate_
    filled, names = add_missing_indicators(df.assign(x1=df["x1"].where(df.index > 2)), "x1")
    assert names == ["x1", "x1_missing"]
    m = PropensityScoreMatching(n_bootstrap=0, exact="g", random_state=0).fit(
        df.assign(g=(df["x2"] > 0).astype(int)), "t", "y", covariates="x1")
    assert "exact on ['g']" in m._describe()
    with pytest.raises(TypeError, match="column name or a list"):
        IPWEstimator(n_bootstrap=0).fit(df, "t", "y", covariates=3)


def test_every_method_line_states_the_propensity_penalty():
    from iizrisk.evaluation import (
        IPWEstimator,
        LogisticPropensity,
        PropensityScoreMatching,
        PropensityScoreStratification,
    )

    for klass in (IPWEstimator, PropensityScoreMatching, PropensityScoreStratification):
        assert "L2 penalty C=1" in klass()._describe()
        assert "unpenalised" in klass(propensity_model=LogisticPropensity(C=np.inf))._describe()


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(0, 40), p=st.integers(0, 5), n_groups=st.integers(0, 4),
       block=st.sampled_from([1, 7, 1 << 16]))
def test_binary_cells_of_columns_equal_one_column_at_a_time(data, n, p, n_groups, block):
    from iizrisk.evaluation import _outputs
    from iizrisk.evaluation._outputs import binary_cells, binary_cells_of_columns

    cols = [data.draw(st.lists(st.sampled_from([0.0, 1.0]) if data.draw(st.booleans()) else
                               st.sampled_from([0.0, 1.0, 0.5, -2.0, np.nan]), min_size=n, max_size=n))
            for _ in range(p)]
    X = np.array(cols, dtype=np.float64).T.reshape(n, p)
    groups = [np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
              for _ in range(n_groups)]
    _outputs._CELL_BLOCK = block  # the 0/1 check over several blocks of rows
    try:
        got = binary_cells_of_columns(X, groups)
    finally:
        _outputs._CELL_BLOCK = 1 << 16
    assert got == [binary_cells(X[:, j], groups) for j in range(p)]


# ------------------------------------------------------------------- IPW vs a slow per-unit reference
class _GivenPropensity(ClassifierMixin, BaseEstimator):
    """A propensity "model" that returns the first covariate as the score: the scores are the test's."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        e = np.asarray(X, dtype=np.float64)[:, 0]
        return np.column_stack([1 - e, e])


def ref_ipw(t, y, e, a, estimand, normalize):
    """The documented IPW estimates, one unit at a time over the units with a <= e <= 1 - a.

    Weights: ATT 1 (treated) and e / (1 - e) (controls); ATE 1 / e and 1 / (1 - e). Hájek: the
    difference of the weighted means of the groups. Horvitz-Thompson: the difference of the weighted
    sums over the units kept (ATE) or the treated kept (ATT).
    """
    s1 = s0 = w1 = w0 = 0.0
    n_kept = n_kept_treated = 0
    for i in range(len(t)):
        if not (a <= e[i] <= 1 - a):
            continue
        n_kept += 1
        if t[i]:
            n_kept_treated += 1
            w = 1.0 if estimand == "ATT" else 1.0 / e[i]
            s1 += w * y[i]
            w1 += w
        else:
            w = e[i] / (1 - e[i]) if estimand == "ATT" else 1.0 / (1 - e[i])
            s0 += w * y[i]
            w0 += w
    if normalize:
        return s1 / w1 - s0 / w0 if w1 > 0 and w0 > 0 else math.nan
    n = n_kept if estimand == "ATE" else n_kept_treated
    return (s1 - s0) / n if n else math.nan


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), a=st.sampled_from([None, 0.0, 0.05, 0.1]), estimand=st.sampled_from(["ATT", "ATE"]),
       normalize=st.booleans(), stabilized=st.booleans())
def test_ipw_equals_the_slow_reference(data, a, estimand, normalize, stabilized):
    """Hájek and Horvitz-Thompson, ATT and ATE, with trimming: scores on the bounds are kept."""
    b = 0.0 if a is None else a
    bounds = [b, 1 - b] if b > 0 else []  # scores exactly on the trimming bounds
    score = st.one_of(st.sampled_from([*bounds, 0.02, 0.05, 0.1, 0.5, 0.9, 0.95, 0.98]), st.floats(0.01, 0.99))
    rest = data.draw(st.lists(st.tuples(st.booleans(), st.integers(-5, 5), score), max_size=16))
    # at least 2 treated and 2 controls (the estimators refuse fewer)
    rows = [(True, 1, 0.5), (True, 3, data.draw(score)), (False, 0, 0.5), (False, -2, data.draw(score)), *rest]
    t = np.array([r[0] for r in rows])
    y = np.array([float(r[1]) for r in rows])
    e = np.array([r[2] for r in rows])
    df = pd.DataFrame({"t": t.astype(int), "y": y, "e": e})
    est = IPWEstimator(estimand=estimand, trim_propensity=a, normalize=normalize, stabilized=stabilized,
                       n_bootstrap=0, propensity_model=_GivenPropensity())
    want = ref_ipw(t, y, e, b, estimand, normalize)
    if math.isnan(want):
        with pytest.raises(ValidationError, match="no estimate possible"):
            est.fit(df, "t", "y", ["e"])
        return
    est.fit(df, "t", "y", ["e"])
    assert est.estimate_ == pytest.approx(want, rel=1e-9, abs=1e-9)
    assert est.info_["n_trimmed"] == sum(not (b <= x <= 1 - b) for x in e)
    np.testing.assert_array_equal(est.propensity_.to_numpy(), e)


# ------------------------------------------------------------------- non-finite input
ALL_ESTIMATORS = [DifferenceInMeans, RegressionAdjustment, IPWEstimator, PropensityScoreMatching,
                  PropensityScoreStratification]


@pytest.mark.parametrize("make", ALL_ESTIMATORS, ids=lambda k: k.__name__)
@pytest.mark.parametrize("column", ["x1", "y"])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_values_are_refused_naming_the_column_and_rows(make, column, value):
    """An infinite covariate or outcome was let through: IPW then blamed overlap ("no comparable units"),
    stratification and matching gave a number. Now a ValidationError names the column, rows and fix."""
    df, _ = confounded_table(300, seed=4)
    df.index = pd.RangeIndex(100, 400)
    df.loc[[117, 250], column] = value
    with pytest.raises(ValidationError) as exc:
        make(n_bootstrap=0).fit(df, "t", "y", COVS)
    msg = str(exc.value)
    what = "outcome" if column == "y" else "covariate"
    assert f"{what} column {column!r}: 2 infinite value(s) (index 117, 250)" in msg
    assert "comparable" not in msg and "replace those values with finite ones or drop those rows" in msg
    # the same table with finite values fits
    df.loc[[117, 250], column] = 0.0
    assert np.isfinite(make(n_bootstrap=0).fit(df, "t", "y", COVS).estimate_)
