"""Explanations: additivity against decision_function, reason codes in four languages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from iizrisk.errors import ModelError
from iizrisk.explain import Explanation, explain, global_importance, reason_codes
from iizrisk.features import feature_specs
from iizrisk.model import RiskModel


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):  # the machine is shared: oversubscribed OpenMP is slow
        yield


def _feature_frame(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Random values for iizrisk's own feature columns, with missing values, and a label."""
    rng = np.random.default_rng(seed)
    specs = feature_specs()
    data = {}
    for s in specs:
        if s.unit == "flag":
            data[s.name] = rng.random(n) < 0.3
        elif s.unit == "days":
            data[s.name] = rng.integers(0, 1500, n)
        elif s.unit == "years":
            data[s.name] = rng.integers(18, 65, n)
        else:
            data[s.name] = rng.poisson(1.0, n)
    X = pd.DataFrame(data).astype("float32")
    X.loc[rng.random(n) < 0.2, "age"] = np.nan
    X.loc[rng.random(n) < 0.4, "days_since_last_exit"] = np.nan
    logit = (0.8 * X["n_transitions_24m"] + 0.5 * X["revolving_door_24m"] - 0.002 * X["current_days_alv"]
             + 0.4 * X["n_reentries_12m"] * (X["open_sh"] > 0) + X["days_since_last_exit"].isna() - 1.5)
    y = rng.random(n) < 1 / (1 + np.exp(-logit.to_numpy()))
    X.index = pd.MultiIndex.from_arrays(
        [[f"p{i}" for i in range(n)], pd.to_datetime(["2023-06-30"] * n)], names=["person_id", "as_of"])
    return X, y


@pytest.fixture(scope="module")
def models():
    with threadpool_limits(1):
        X, y = _feature_frame(3000)
        boost = RiskModel(model="boosting", calibration=None, max_iter=60).fit(X, y)
        logit = RiskModel(model="logistic", calibration=None).fit(X, y)
    return X, y, boost, logit


@pytest.mark.parametrize("kind", ["boosting", "logistic"])
def test_contributions_add_up_to_log_odds(models, kind):
    X, _, boost, logit = models
    m = boost if kind == "boosting" else logit
    rows = X.iloc[:400]
    ex = explain(m, rows)
    total = ex.base_value + ex.values.sum(axis=1).to_numpy()
    # float32 inputs: the pipeline itself rounds at about 1e-7 relative
    np.testing.assert_allclose(total, m.decision_function(rows), rtol=0, atol=1e-5)
    # log-odds before calibration: the sigmoid of the sum is the base model's probability
    np.testing.assert_allclose(1 / (1 + np.exp(-total)), m.estimator_.predict_proba(rows)[:, 1], atol=1e-6)
    assert list(ex.values.columns) == list(X.columns)
    assert ex.values.index.equals(rows.index)


@pytest.mark.slow
def test_parallel_tree_explanations_equal_serial(models, monkeypatch):
    import iizrisk.explain

    monkeypatch.setattr(iizrisk.explain, "PARALLEL_MIN_ROWS", 100)
    X, _, boost, _ = models
    rows = X.iloc[:300]
    a = explain(boost, rows, n_jobs=1)
    b = explain(boost, rows, n_jobs=2)
    np.testing.assert_allclose(a.values.to_numpy(), b.values.to_numpy(), atol=1e-10)


def test_logistic_contributions_are_exact_linear_terms(models):
    X, _, _, logit = models
    ex = explain(logit, X.iloc[:50])
    pipe = logit.estimator_
    z = pipe[:-1].transform(X.iloc[:50])
    coef = pipe.named_steps["logit"].coef_.ravel()
    j = list(X.columns).index("n_transitions_24m")
    np.testing.assert_allclose(ex.values["n_transitions_24m"].to_numpy(), coef[j] * z[:, j], atol=1e-10)
    # a feature with missing values also carries its indicator's term
    k = list(X.columns).index("age")
    ind = list(pipe.named_steps["impute"].indicator_.features_).index(k)
    want = coef[k] * z[:, k] + coef[X.shape[1] + ind] * z[:, X.shape[1] + ind]
    np.testing.assert_allclose(ex.values["age"].to_numpy(), want, atol=1e-10)


def test_explaining_too_many_rows_is_refused(models):
    X, _, boost, _ = models
    with pytest.raises(ValueError, match="worklist"):
        explain(boost, X, max_rows=100)


def test_wrong_sum_is_refused(models, monkeypatch):
    X, _, boost, _ = models
    monkeypatch.setattr(type(boost), "decision_function", lambda self, X: np.zeros(len(X)))
    with pytest.raises(ModelError, match="do not add up"):
        explain(boost, X.iloc[:20])


def test_reason_codes_are_the_top_positive_contributions(models):
    X, _, boost, _ = models
    ex = explain(boost, X.iloc[:200])
    rc = reason_codes(ex, language="de")
    vals = ex.values.to_numpy()
    for i in range(200):
        row = vals[i]
        order = np.argsort(-row)
        want = [ex.values.columns[j] for j in order[:3] if row[j] > 0]
        got = [c for c in rc.iloc[i][["reason_1", "reason_2", "reason_3"]] if c is not None]
        assert got == want
        for r, c in enumerate(got, start=1):
            assert rc.iloc[i][f"reason_{r}_contribution"] == pytest.approx(ex.values.iloc[i][c])
    assert rc["reason_1_text"].notna().sum() == rc["reason_1"].notna().sum()


@pytest.mark.parametrize(("language", "word"), [("de", "Wechsel"), ("fr", "passage"), ("it", "passaggi"),
                                                ("en", "moves")])
def test_reason_texts_show_the_value_in_each_language(models, language, word):
    X, _, _, logit = models
    ex = explain(logit, X.iloc[:300])
    rc = reason_codes(ex, language=language)
    hits = rc.index[rc["reason_1"] == "n_transitions_24m"]
    assert len(hits) > 0  # the strongest term of the simulated truth
    for idx in hits[:20]:
        value = int(X.loc[idx, "n_transitions_24m"])
        text = rc.loc[idx, "reason_1_text"]
        assert str(value) in text and word in text


def test_global_importance_ranks_the_true_signal_first(models):
    X, _, _, logit = models
    gi = global_importance(logit, X, sample=1000)
    # the two strongest terms of the simulated truth lead
    assert set(gi.index[:2]) == {"n_transitions_24m", "current_days_alv"}
    assert gi["share"].sum() == pytest.approx(1.0)
    assert (np.diff(gi["mean_abs_contribution"].to_numpy()) <= 1e-12).all()


def test_reasons_respect_the_disclosure_policy(models):
    X, _, _, logit = models
    ex = explain(logit, X.iloc[:300])
    free = reason_codes(ex, language="en")
    alv_only = reason_codes(ex, language="en", allowed_institutions={"ALV"})
    specs = {s.name: s for s in feature_specs()}
    named = set()
    for k in (1, 2, 3):
        for code in alv_only[f"reason_{k}"].dropna():
            inst = specs[code].param_dict.get("institution")
            assert inst in (None, "ALV"), code
        named |= {specs[c].param_dict.get("institution") for c in free[f"reason_{k}"].dropna()}
    assert named - {None, "ALV"}  # without the policy other institutions do appear
    # rows whose reasons named no other institution keep them
    same = [i for i in range(300) if all(specs[c].param_dict.get("institution") in (None, "ALV")
                                         for c in free.iloc[i][["reason_1", "reason_2", "reason_3"]].dropna())]
    pd.testing.assert_frame_equal(free.iloc[same], alv_only.iloc[same])


@pytest.mark.parametrize("institution", ["ALV", "SH", "IV"])
def test_being_registered_at_the_lists_own_institution_is_no_reason(models, institution):
    """24 of 25 rows of the MIG list gave "currently registered at migrant integration": true of everyone on
    that list. On institution X's list open_<x> is skipped and the next risk-raising feature moves up; the
    other reasons keep their order, and open_<x> remains a reason on other lists."""
    X, _, _, logit = models
    ex = explain(logit, X.iloc[:300])
    own = f"open_{institution.lower()}"
    free = reason_codes(ex, language="en")
    listed = reason_codes(ex, language="en", list_institution=institution)
    cols = ["reason_1", "reason_2", "reason_3"]
    assert not listed[cols].isin([own]).any().any()
    vals = ex.values.drop(columns=[own])
    for i in range(300):  # the reference: the top three positive contributions among the other features
        row = vals.iloc[i]
        want = [c for c in row.sort_values(ascending=False, kind="stable").index[:3] if row[c] > 0]
        assert [c for c in listed.iloc[i][cols] if c is not None] == want
    assert free[cols].isin([own]).any().any()  # without the list's institution it is a reason somewhere


def _reference_reasons(contrib: np.ndarray, names: list[str], top: int) -> list[str]:
    """The features that raise the risk (contribution > 0), largest first, ties in column order."""
    ranked = sorted((j for j in range(len(names)) if contrib[j] > 0), key=lambda j: (-contrib[j], j))
    return [names[j] for j in ranked[:top]]


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.lists(st.sampled_from([-2.0, -0.5, 0.0, 0.0, 0.25, 0.5, 1.0, 3.0]), min_size=4, max_size=4),
                     min_size=1, max_size=6),
       top=st.integers(1, 5))
def test_reason_codes_match_a_reference_on_any_contributions(rows, top):
    # columns iizrisk did not make: the text is "name: value", so it shows whose value was taken
    names = ["a", "b", "c", "d"]
    vals = pd.DataFrame(rows, columns=names)
    data = pd.DataFrame(np.arange(vals.size, dtype=np.float64).reshape(vals.shape) + 10, columns=names)
    ex = Explanation(values=vals, base_value=0.0, data=data, output=vals.sum(axis=1).to_numpy(), specs=[])
    rc = reason_codes(ex, top=top, language="en")
    for i in range(len(vals)):
        want = _reference_reasons(vals.iloc[i].to_numpy(), names, top)
        got = [None if pd.isna(c) else c for c in (rc.iloc[i][f"reason_{r + 1}"] for r in range(top))]
        assert got == want + [None] * (top - len(want))  # a zero contribution raises nothing: no reason
        for r, name in enumerate(want, start=1):
            assert rc.iloc[i][f"reason_{r}_text"] == f"{name}: {data.iloc[i][name]:g}"
            assert rc.iloc[i][f"reason_{r}_contribution"] == vals.iloc[i][name] > 0


def test_a_zero_contribution_is_no_reason_and_each_text_shows_its_own_value():
    vals = pd.DataFrame({"a": [0.0], "b": [2.0], "c": [1.0]})
    data = pd.DataFrame({"a": [7.0], "b": [8.0], "c": [9.0]})
    ex = Explanation(values=vals, base_value=0.0, data=data, output=np.array([3.0]), specs=[])
    rc = reason_codes(ex, top=3, language="en")
    assert [None if pd.isna(c) else c for c in rc.iloc[0][["reason_1", "reason_2", "reason_3"]]] == ["b", "c", None]
    assert rc.iloc[0][["reason_1_text", "reason_2_text"]].tolist() == ["b: 8", "c: 9"]


def test_a_missing_value_indicator_contributes_to_its_own_feature():
    # a linear contribution of a feature depends on that feature's value alone: rows equal in "a" get the same
    # contribution for "a", whether or not "c" is missing (c's missing-value indicator belongs to c)
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"]).astype("float32")
    y = (X["c"].fillna(0) + rng.normal(size=400) > 0).to_numpy().copy()
    X.loc[rng.random(400) < 0.4, "c"] = np.nan
    y[X["c"].isna().to_numpy()] = rng.random(int(X["c"].isna().sum())) < 0.9  # missing c: a strong signal
    m = RiskModel(model="logistic", calibration=None).fit(X, y)
    probe = X.head(60).assign(a=np.float32(0.5))
    ex = explain(m, probe)
    assert probe["c"].isna().any() and probe["c"].notna().any()
    assert np.ptp(ex.values["a"].to_numpy()) < 1e-9
    missing = probe["c"].isna().to_numpy()
    assert np.ptp(ex.values["c"].to_numpy()[missing]) < 1e-9  # every missing c: the same contribution


@pytest.mark.parametrize("kind", ["boosting", "logistic"])
def test_nobody_to_explain_gives_an_empty_explanation_and_wrong_inputs_are_named(models, kind):
    """An empty frame (an empty list) raised scikit-learn's "Found array with 0 sample(s)"; a DataFrame
    given to reason_codes an AttributeError deep inside; sample=0, -1 or nan pandas' own errors."""
    from iizrisk.errors import ConfigError

    X, _, boost, logit = models
    model = boost if kind == "boosting" else logit
    empty = explain(model, X.iloc[:0])
    assert len(empty) == 0 and list(empty.values.columns) == list(X.columns)
    reasons = reason_codes(empty, language="it")
    assert len(reasons) == 0 and {"reason_1", "reason_1_text", "reason_1_contribution"} <= set(reasons.columns)
    with pytest.raises(TypeError, match="explanation must be an Explanation .*got DataFrame; call explain"):
        reason_codes(X)
    for sample in (0, -1, 1.5, float("nan"), True):
        with pytest.raises(ConfigError, match="sample must be a whole number of rows from 1"):
            global_importance(model, X, sample=sample)


def test_an_explanation_shows_itself_in_a_notebook(models):
    X, _, boost, _ = models
    page = explain(boost, X.iloc[:40])._repr_html_()
    assert page.startswith("<div>") and "Explanation</b> of 40 row(s)" in page and "base value" in page
    order = explain(boost, X.iloc[:40]).values.abs().mean().sort_values(ascending=False).index[:3]
    first = [page.index(f"<th>{f}</th>") for f in order]  # the importance table comes first, strongest on top
    assert first == sorted(first)
    assert "of 0 row(s)" in explain(boost, X.iloc[:0])._repr_html_()
