"""Rank by benefit: the DR-learner and T-learner, their calibration, offline policy values, refusal without overlap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iizrisk.benefit import (
    BenefitModel,
    NoOverlapError,
    _selection_weights,
    evaluate_policies,
)
from iizrisk.errors import ValidationError
from iizrisk.evaluation import LogisticPropensity


def _table(n=6000, seed=0, effect=True, overlap=True):
    """A risk-set-like table: x1 drives risk and assessment, the effect is large at moderate x1 only."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    p0 = 1 / (1 + np.exp(-(-1.0 + 0.8 * x1)))
    tau = -0.25 * np.exp(-0.5 * x1 ** 2) * (x2 > 0) if effect else np.zeros(n)
    if overlap:
        t = rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 0.6 * x1)))
    else:  # assessments only for the highest-risk people
        t = x1 > np.quantile(x1, 0.9)
    y = rng.random(n) < p0 + t * tau
    months = pd.to_datetime("2020-01-31") + pd.offsets.MonthEnd(1) * (np.arange(n) % 12)
    return pd.DataFrame({"person_id": np.arange(n).astype(str), "index_date": months, "treated": t,
                         "x1": x1, "x2": x2, "x3": x2 > 0, "revolving_door_next_12m": y.astype(float)}), \
        p0, tau


COV = ["x1", "x2", "x3"]


def _reference_selection(score, month, w, capacity):
    """The slow obvious way: per month, walk down the ranking, filling the capacity (the last row in part)."""
    out = np.zeros(len(score))
    for m in np.unique(month):
        idx = [i for i in range(len(score)) if month[i] == m]
        idx.sort(key=lambda i: (-score[i], i))
        room = capacity * sum(w[i] for i in idx)
        for i in idx:
            take = min(w[i], max(room, 0.0))
            out[i] = take
            room -= take
    return out


@settings(max_examples=150, deadline=None)
@given(data=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.floats(0.1, 20)), min_size=1, max_size=40),
       capacity=st.floats(0.01, 1.0))
def test_selection_matches_the_slow_reference(data, capacity):
    score = np.array([float(s) for s, _, _ in data])
    month = np.array([m for _, m, _ in data])
    w = np.array([x for _, _, x in data])
    fast = _selection_weights(score, month, w, capacity)
    ref = _reference_selection(score, month, w, capacity)
    # ties: the same total per month and per score level (the order within a tie is free)
    for m in np.unique(month):
        for s in np.unique(score[month == m]):
            sel = (month == m) & (score == s)
            assert fast[sel].sum() == pytest.approx(ref[sel].sum(), abs=1e-9)
    # the bootstrap matrix form gives the same as one row at a time
    W = np.stack([w, 2 * w, w[::-1].copy()])
    mat = _selection_weights(score, month, W, capacity)
    assert np.allclose(mat[1], _selection_weights(score, month, 2 * w, capacity))


@pytest.fixture(scope="module")
def het():
    table, p0, tau = _table(n=12000)
    return table, p0, tau, BenefitModel(covariates=COV, population="all", random_state=0).fit(table)


def test_dr_learner_finds_the_heterogeneity(het):
    table, _, tau, m = het
    assert m.blp_.loc["heterogeneity", "p"] < 0.01
    assert m.blp_.loc["heterogeneity", "estimate"] > 0.3
    # the groups of highest predicted benefit have the largest estimated benefit
    cal = m.calibration_
    assert cal["estimated_benefit"].iloc[-1] > cal["estimated_benefit"].iloc[0] + 0.05
    # out-of-fold benefit correlates with the truth
    assert np.corrcoef(m.data_["benefit"], -tau)[0, 1] > 0.5
    # new people: the full model predicts on a DataFrame with the feature columns
    pred = m.predict_benefit(table[COV].head(50))
    assert pred.shape == (50,) and pred.notna().all()
    assert m.predict_risk(table[COV].head(5)).between(0, 1).all()


def _docstring_table(seed=0, n=4000, heterogeneous=True):
    """The module docstring's example: benefit 0.1 for x > 0 (none otherwise), or 0.05 for everyone."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.random(n) < 1 / (1 + np.exp(1 - 0.5 * x))
    tau = -0.1 * (x > 0) if heterogeneous else np.full(n, -0.05)
    y = rng.random(n) < 0.3 + 0.1 * x.clip(-2, 2) + t * tau
    return pd.DataFrame({"person_id": np.arange(n).astype(str), "x": x, "treated": t,
                         "revolving_door_next_12m": y.astype(float),
                         "index_date": pd.Timestamp("2020-01-31")}), tau


def test_benefit_is_prevention_everywhere(het):
    """One sign convention end to end: benefit = outcomes prevented (positive = good).

    The true effect ``tau`` lowers the outcome's probability; the learnt benefit
    (out of fold and for new people) rises with ``-tau``, the BLP slope is
    positive with its interval above 0, the calibration's groups of higher
    predicted benefit prevent more, a policy's value is prevented per 100 and
    top-by-benefit takes the largest predicted benefits.
    """
    table, _, tau, m = het
    d = m.data_
    assert np.corrcoef(d["benefit"], -tau)[0, 1] > 0.5
    assert np.corrcoef(m.predict_benefit(table[COV]), -tau)[0, 1] > 0.5
    b = m.blp_.loc["heterogeneity"]
    assert b["estimate"] - 1.96 * b["se"] > 0
    assert m.blp_.loc["average", "estimate"] < 0  # the average *effect* on the outcome: negative
    est = m.calibration_["estimated_benefit"].to_numpy()
    assert est[-1] > est[0] and np.corrcoef(np.arange(len(est)), est)[0, 1] > 0.8
    # the DR scores estimate the effect (outcome with minus without), so benefit = -mean(score)
    assert m.calibration_["estimated_benefit"].mean() == pytest.approx(-d["dr_score"].mean(), abs=0.01)
    ev = evaluate_policies(m, capacity=0.1, n_bootstrap=0, normalised=False).values
    assert ev.loc["benefit", "value"] > 0 and ev.loc["random", "value"] == pytest.approx(
        -100 * np.average(d["dr_score"], weights=d["weight"]))
    sel = _selection_weights(d["benefit"].to_numpy(), np.zeros(len(d), dtype=int), np.ones(len(d)), 0.1) > 0
    assert d["benefit"][sel].min() >= d["benefit"][~sel].max()


def test_calibration_and_blp_compare_rows_scored_by_the_same_fold_model():
    """Out-of-fold predictions of different folds come from different models.

    An effect model that learns only a level predicts, for fold k, the mean
    score of the other folds; pooled over folds, such predictions are
    ``-(mean_k - mean) / (K - 1)``, and a BLP slope on them was exactly
    ``-(K - 1)`` = -4 and the calibration groups came out in the wrong order
    (the docstring example showed it). Compared within fold, a model without
    heterogeneity shows none.
    """
    from sklearn.dummy import DummyRegressor

    table, _ = _docstring_table()
    m = BenefitModel(covariates=["x"], population="all", effect_model=DummyRegressor(), random_state=0).fit(table)
    assert abs(m.blp_.loc["heterogeneity", "estimate"]) < 1e-9
    # a homogeneous effect: the slope is not called negative (it was -4, z < -1.96, on these seeds)
    for seed in (2, 4, 8):
        table, _ = _docstring_table(seed=seed, heterogeneous=False)
        m = BenefitModel(covariates=["x"], population="all", random_state=seed).fit(table)
        assert m.blp_.loc["heterogeneity", "z"] > -1.96, (seed, m.blp_)


def test_method_line_states_the_propensity_penalty(het):
    m = het[3]
    assert f"L2 penalty C={m.propensity_penalty_:g} (chosen by 5-fold cross-validated log loss" in m.method()
    assert "DR-learner" in m.method()
    text = m.summary_text()
    assert "chosen by" in text and "Best linear predictor" in text
    t = BenefitModel(learner="t", covariates=COV, population="all", propensity_model=LogisticPropensity(C=1e6),
                     random_state=0).fit(het[0])
    assert "T-learner" in t.method() and "C=1e+06" in t.method()


def test_policy_values_cover_the_truth_and_rank_by_benefit(het):
    table, p0, tau, m = het
    ev = evaluate_policies(m, capacity=0.1, n_bootstrap=200, random_state=1)
    v = ev.values
    lvl = "95%"
    # the true value of each policy, on the same rows and selections, from the known effects
    from iizrisk.benefit import _month_of

    d = m.data_
    month = _month_of(table["index_date"]) * m.n_folds + d["fold"].to_numpy()  # selections are made within fold
    w = np.ones(len(table))
    for name, score in {"risk": d["risk"].to_numpy(), "benefit": d["benefit"].to_numpy()}.items():
        pw = _selection_weights(score, month, w, 0.1)
        true = -100 * (pw @ tau) / pw.sum()
        assert v.loc[name, f"lower {lvl}"] <= true <= v.loc[name, f"upper {lvl}"], (name, true)
    assert v.loc["benefit", "value"] > v.loc["risk", "value"]
    assert v.loc["benefit", f"vs_risk lower {lvl}"] > 0
    assert list(v.index) == ["risk", "benefit", "risk_x_benefit", "random_high_band", "random", "actual"]
    # the coordinators' own choices: the true effect on the assessed lies in the interval
    t = d["treated"].to_numpy()
    true_actual = -100 * tau[t].mean()
    assert v.loc["actual", f"lower {lvl}"] <= true_actual <= v.loc["actual", f"upper {lvl}"]
    assert ev.n_selected["actual"] == t.sum()
    # the plain form is the mean of the assessed's doubly robust scores
    plain = evaluate_policies(m, capacity=0.1, n_bootstrap=0, normalised=False).values
    assert plain.loc["actual", "value"] == pytest.approx(-100 * d["dr_score"].to_numpy()[t].mean())


def test_no_effect_no_claim():
    # without an effect a policy claims to prevent something only by chance: at most once in 5 seeds
    claims = 0
    for seed in range(5):
        table, _, _ = _table(effect=False, seed=seed)
        m = BenefitModel(covariates=COV, population="all", random_state=0).fit(table)
        v = evaluate_policies(m, capacity=0.1, n_bootstrap=200, random_state=0).values
        claims += (v["lower 95%"] > 0).to_numpy().astype(int)
    assert claims.max() <= 1


def test_refuses_without_overlap():
    table, _, _ = _table(overlap=False, seed=4)
    with pytest.raises(NoOverlapError, match="highest-risk") as err:
        BenefitModel(covariates=COV, population="all", random_state=0).fit(table)
    assert err.value.exit_code != 5 and "refuses" in str(err.value)


def test_refuses_when_a_few_not_assessed_at_the_top_hide_the_separation():
    """Assessed only in the top decile of x1, but 2 % of the not assessed also up there: the maximum alone
    would pass (no assessed above every not-assessed), the 95th percentile does not."""
    table, _, _ = _table(overlap=False, seed=4)
    t = table["treated"].to_numpy()
    rng = np.random.default_rng(0)
    lift = rng.choice(np.flatnonzero(~t), size=int(0.02 * (~t).sum()), replace=False)
    x1 = table["x1"].to_numpy().copy()
    x1[lift] = x1[t].max() + rng.random(len(lift))
    table["x1"] = x1
    kw = {"covariates": COV, "population": "all", "random_state": 0}
    with pytest.raises(NoOverlapError, match="95 % of the not-assessed") as err:
        BenefitModel(**kw).fit(table)
    assert "highest-risk" in str(err.value)
    m = BenefitModel(max_concentrated_share=1.0, **kw).fit(table)
    assert m.overlap_["outside_share"] <= 0.1 < m.overlap_["above_control_q95_share"]
    # with overlap, few assessed are above the not-assessed's 95th percentile
    ok, _, _ = _table(n=3000, seed=1)
    assert BenefitModel(**kw).fit(ok).overlap_["above_control_q95_share"] < 0.3


def test_input_errors():
    table, _, _ = _table(n=200)
    with pytest.raises(ValueError, match="learner"):
        BenefitModel(learner="x").fit(table)
    with pytest.raises(ValidationError, match="missing"):
        BenefitModel(outcome="nope").fit(table)
    with pytest.raises(ValidationError, match="at least 20 assessed"):
        BenefitModel(covariates=COV, population="all").fit(table.assign(treated=np.arange(200) < 5))


def test_results_follow_the_protocol(het, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    m = het[3]
    ev = evaluate_policies(m, n_bootstrap=50, random_state=0)
    files = [p.name for p in m.to_dir(tmp_path / "m")] + [p.name for p in ev.to_dir(tmp_path / "p")]
    assert {"benefit_calibration.csv", "benefit_blp.csv", "benefit_calibration.png", "policy_values.csv",
            "policy_values.png"} <= set(files)
    assert "<pre>" in m._repr_html_() and ev._repr_html_().startswith("<div>")
    ax = ev.plot()
    assert ax.get_xlabel().startswith("outcomes prevented")
    # a policy selecting fewer than k people is hidden
    hidden = ev._output_tables(10**6)[0].frame
    assert hidden["suppressed"].all() and hidden["prevented_per_100"].isna().all()


def test_policy_values_are_written_with_the_policies_names(tmp_path):
    """iizrisk policy --language fr wrote French headers over rows reading risk, benefit, random_high_band,
    actual, with values of 16 digits."""
    from iizrisk._texts import text
    from iizrisk.benefit import POLICIES, PolicyEvaluation

    v = pd.DataFrame({"value": np.linspace(1 / 3, 7.123456, len(POLICIES)), "lower 95%": np.linspace(-1, 1, 6) / 7,
                      "upper 95%": np.linspace(9, 19, 6) / 7, "vs_risk": np.linspace(0, 5, 6) / 3},
                     index=pd.Index(POLICIES, name="policy"))
    ev = PolicyEvaluation(values=v, capacity=0.05, method="test", n_selected={p: 100 for p in POLICIES})
    files = ev.to_dir(tmp_path, language="fr", plots=False)
    csv = pd.read_csv(tmp_path / "policy_values.csv", sep=";", encoding="utf-8-sig", dtype=str)
    assert csv.iloc[:, 0].tolist() == [text(f"card.policies.{p}", "fr") for p in POLICIES]
    assert csv.iloc[:, 0].tolist()[3] == "au hasard dans la catégorie de risque élevé"
    for col in csv.columns[1:5]:  # outcomes prevented per 100 assessments: two decimals
        assert all(len(x.partition(".")[2]) <= 2 for x in csv[col]), csv[col]
    assert [float(x) for x in csv.iloc[:, 1]] == np.round(v["value"], 2).tolist()
    assert csv.columns[1] == "Événements évités pour 100 évaluations"  # it read "Valeur", without saying of what
    machine = pd.read_parquet(tmp_path / "policy_values.parquet")  # for machines: codes and every digit
    assert machine["policy"].tolist() == list(POLICIES)
    assert machine["prevented_per_100"].tolist() == v["value"].tolist()
    assert len(files) == 2


def test_the_best_linear_predictor_rows_are_named(het, tmp_path):
    from iizrisk._texts import text

    het[3].to_dir(tmp_path, language="it", plots=False)
    blp = pd.read_csv(tmp_path / "benefit_blp.csv", sep=";", encoding="utf-8-sig", dtype=str)
    assert blp.iloc[:, 0].tolist() == [text("table.values.average", "it"), text("table.values.heterogeneity", "it")]
    cal = pd.read_csv(tmp_path / "benefit_calibration.csv", sep=";", encoding="utf-8-sig", dtype=str)
    assert not cal.iloc[:, 1].str.contains(".", regex=False).any()  # people counted: "2400", not "2400.0"
    assert pd.read_parquet(tmp_path / "benefit_blp.parquet")["term"].tolist() == ["average", "heterogeneity"]


@pytest.mark.slow
def test_on_a_synthetic_canton_with_true_effects():
    from iizrisk.benefit import true_policy_values
    from iizrisk.evaluation import risk_set_table
    from iizrisk.synth import generate

    pop = generate(4000, "2018-01-01", "2021-12-31", seed=2, effect=0.5, heterogeneous=True, effect_sample=0.3,
                   canton="ZH")
    # risk sets early in an episode, where the canton holds its assessments: over everyone registered
    # the assessed stand apart (a calibrated propensity puts 54 % of them above the not-assessed's 95th
    # percentile, and the model refuses)
    tab = risk_set_table(pop.spells, pop.interventions, controls_per_treated=10, outcomes=["revolving_door"],
                         episode_days=(14, 90), random_state=0)
    assert (tab.loc[tab["treated"], "sampling_weight"] == 1).all()
    assert (tab.loc[~tab["treated"], "sampling_weight"] >= 1).all()
    m = BenefitModel(learner="t", random_state=0).fit(tab)
    truth = true_policy_values(m, pop.spells, pop.interventions, pop.truth)
    assert truth["oracle"] >= truth.drop("oracle").max()
    assert set(truth.index) == {"risk", "benefit", "risk_x_benefit", "oracle", "oracle_relative", "oracle_features",
                                "random_high_band", "random"}


def test_relative_effect_from_features_is_learnt_out_of_fold():
    from iizrisk.benefit import _relative_effect_from_features

    rng = np.random.default_rng(3)
    n = 1500
    persons = np.repeat(np.arange(n // 3), 3)  # three rows per person, all in one fold
    x = rng.normal(size=n)
    rel = np.where(x > 0, 0.9, 0.1)
    pred = _relative_effect_from_features(x[:, None], rel, persons)
    assert np.corrcoef(pred, rel)[0, 1] > 0.9
    # noise attached to a person: an in-sample fit would learn it through the person's code, out of fold cannot
    noise = rng.random(n // 3)[persons]
    pred = _relative_effect_from_features(persons[:, None].astype(float), noise, persons)
    assert abs(np.corrcoef(pred, noise)[0, 1]) < 0.2


@pytest.mark.slow
def test_cli_policy_writes_the_evaluation(tmp_path):
    from iizrisk.cli import main
    from iizrisk.store import write_parquet_atomic
    from iizrisk.synth import generate

    pop = generate(3000, "2018-01-01", "2021-12-31", seed=4, canton="BE")
    write_parquet_atomic(pop.spells, tmp_path / "spells.parquet")
    write_parquet_atomic(pop.interventions, tmp_path / "interventions.parquet")
    base = ["policy", "--spells", str(tmp_path / "spells.parquet"), "--interventions",
            str(tmp_path / "interventions.parquet"), "--out", str(tmp_path / "out")]
    assert main([*base, "--capacity", "5"]) == 2  # a share, not a percentage: a usage error
    assert main([*base, "--episode-days", "90", "14"]) == 2  # LO > HI
    assert main([*base, "--learner", "dr", "--bootstrap", "20", "--plain-values"]) == 0
    for name in ("policy_values.csv", "benefit_calibration.csv", "benefit_blp.csv"):
        assert (tmp_path / "out" / name).exists(), name
    # risk sets early in an episode, where the synthetic canton holds its assessments
    out = tmp_path / "early"
    assert main([*base[:-1], str(out), "--episode-days", "14", "90", "--learner", "t", "--bootstrap", "20",
                 "--save-model", str(tmp_path / "benefit.skops")]) == 0
    assert (out / "policy_values.csv").exists()
    # the saved model carries this evaluation: the evidence a deployment's rank_by is judged on
    from iizrisk.benefit import load_benefit_model

    saved = load_benefit_model(tmp_path / "benefit.skops")
    # the deployment's own data: its sources, interventions and [model] outcome
    from iizrisk.config import Settings

    cfg = Settings.from_dict({"sources": [{"name": "all", "path": "spells.parquet"}],
                              "deployment": {"interventions": "interventions.parquet"},
                              "model": {"horizon_months": 12}}, base_dir=tmp_path).save(tmp_path / "iizrisk.toml")
    dep = ["policy", "--config", str(cfg), "--out", str(tmp_path / "dep"), "--episode-days", "14", "90",
           "--bootstrap", "20"]  # the default learner, the T-learner
    assert main([*dep, "--spells", str(tmp_path / "spells.parquet")]) == 2  # both: a usage error
    assert main([*dep, "--save-model", str(tmp_path / "dep.skops"), "--language", "fr"]) == 0
    assert load_benefit_model(tmp_path / "dep.skops").outcome == "revolving_door_next_12m"
    # --language: the tables as a Swiss spreadsheet opens them, headers in French, the interval's level named
    with open(tmp_path / "dep" / "policy_values.csv", encoding="utf-8") as f:
        head = f.readline()
    assert head.startswith("\ufeffOrdre;Événements évités pour 100 évaluations;Borne inférieure (95 %);Borne supérieure (95 %);"), head
    with open(tmp_path / "early" / "policy_values.csv", encoding="utf-8-sig") as f:
        assert f.readline().startswith("policy;prevented_per_100;lower 95%")  # without --language: the codes
    assert main(["policy", "--out", str(tmp_path / "x")]) == 2  # no data at all
    assert saved.episode_days_ == (14, 90) and saved.evidence_["capacity"] == 0.05
    ev = saved.evidence("benefit")
    assert "per 100 assessments" in ev.reason and ev.lower is not None and ev.supported == (ev.lower > 0)


def _sampled_risk_sets(n_days=12, per_day=4000, k=8, seed=0):
    """Daily risk sets with rare, confounded assessments; controls sampled k per assessed, weighted.

    Returns the sampled table and the true average effect over the whole risk sets (-0.1).
    """
    rng = np.random.default_rng(seed)
    parts = []
    for d in range(n_days):
        x = rng.normal(size=per_day)
        t = rng.random(per_day) < 1 / (1 + np.exp(-(-4.5 + 1.5 * x)))
        y = rng.random(per_day) < 0.15 + 0.5 * (x > 1) - 0.1 * t
        c = np.flatnonzero(~t)
        keep = rng.choice(c, size=min(len(c), k * int(t.sum())), replace=False)
        rows = np.r_[np.flatnonzero(t), keep]
        parts.append(pd.DataFrame({
            "person_id": [f"{d}-{i}" for i in rows], "index_date": pd.Timestamp("2020-01-01") + pd.Timedelta(days=d),
            "treated": t[rows], "x": x[rows], "revolving_door_next_12m": y[rows].astype(float),
            "sampling_weight": np.where(t[rows], 1.0, len(c) / len(keep))}))
    return pd.concat(parts, ignore_index=True), -0.1


def test_doubly_robust_scores_use_the_risk_sets_propensity_not_the_sampled_tables(monkeypatch):
    """With sampled controls the table's propensity has odds k times the risk set's; the scores correct it.

    Outcome models that ignore x (constant) leave all the adjustment to the propensity, so an
    uncorrected propensity shows as bias (checked below with the correction switched off).
    """
    from sklearn.dummy import DummyClassifier

    import iizrisk.benefit as B

    tab, truth = _sampled_risk_sets()
    kw = {"covariates": ["x"], "population": "all", "outcome_model": DummyClassifier(strategy="prior"),
          "random_state": 0}
    blp = BenefitModel(**kw).fit(tab).blp_.loc["average"]
    assert abs(blp["estimate"] - truth) < 3 * blp["se"] + 0.01, blp
    monkeypatch.setattr(B, "_control_weight_of_day", lambda rows, t, w: np.ones(len(rows)))
    wrong = BenefitModel(**kw).fit(tab).blp_.loc["average"]
    assert abs(wrong["estimate"] - truth) > 3 * wrong["se"], wrong


def test_the_effect_model_regresses_scores_on_the_tables_scale():
    """The effect model fits the scores row by row, unweighted: their propensity must be the table's.

    With the risk set's propensity (right for weighted averages) an unweighted
    regression multiplies the treated's outcome-model errors by the control
    weight: the predicted benefit was 0.18, 0.13 and 0.19 on these three draws
    of a true 0.10.
    """
    for seed in range(3):
        tab, truth = _sampled_risk_sets(seed=seed)
        m = BenefitModel(covariates=["x"], population="all", random_state=0).fit(tab)
        pred = m.predict_benefit(tab[["x"]]).to_numpy()
        oof = m.data_["benefit"].to_numpy()
        w = tab["sampling_weight"].to_numpy()
        assert np.average(pred, weights=w) == pytest.approx(-truth, abs=0.02), seed
        assert np.average(oof, weights=w) == pytest.approx(-truth, abs=0.02), seed


def _many_features(seed, n=4000, p=40):
    """Rare assessments and 40 features of which two matter: where C=1 overfits the propensity."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    s = X[:, 0] + 0.5 * X[:, 1]
    t = rng.random(n) < 1 / (1 + np.exp(-(-2.6 + 0.5 * s)))
    y = rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 0.6 * s))) - 0.05 * t
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(p)])
    return df.assign(person_id=np.arange(n).astype(str), treated=t, revolving_door_next_12m=y.astype(float),
                     index_date=pd.Timestamp("2020-01-31"))


def test_the_default_propensity_is_calibrated_out_of_fold():
    """The assessed's inverse propensities sum to about the rows they stand for.

    With a fixed C=1 (the earlier default) and 40 features the out-of-fold
    propensity was overfit: the assessed's 1 / e summed to 1.18-1.23 times the
    rows on these draws (on the synthetic cantons 1.2-1.5 times), which
    inflates every inverse-propensity term of the doubly robust scores. The
    penalty chosen by cross-validated log loss brings it within 5 %.
    """
    for seed in range(3):
        table = _many_features(seed)
        cov = [c for c in table.columns if c.startswith("x")]
        m = BenefitModel(covariates=cov, population="all", random_state=seed).fit(table)
        d = m.data_
        t = d["treated"].to_numpy()
        ratio = (1 / d["propensity"].to_numpy()[t]).sum() / len(d)
        assert abs(ratio - 1) < 0.05, (seed, ratio, m.propensity_penalty_)
        assert m.propensity_penalty_ < 1
        fixed = BenefitModel(covariates=cov, population="all", learner="t", random_state=seed,
                             propensity_model=LogisticPropensity(C=1.0)).fit(table)
        t = fixed.data_["treated"].to_numpy()
        assert (1 / fixed.data_["propensity"].to_numpy()[t]).sum() / len(d) > 1.1
        assert fixed.propensity_penalty_ is None and "chosen" not in fixed.method()


def test_self_normalised_policy_values(het):
    """Each inverse-propensity term is divided by its own weight total among the selected."""
    m = het[3]
    d = m.data_
    hajek = evaluate_policies(m, capacity=0.1, n_bootstrap=0, normalised=True)
    assert "self-normalised (Hajek)" in hajek.method
    assert "not normalised" in evaluate_policies(m, capacity=0.1, n_bootstrap=0, normalised=False).method
    # the random policy (everyone, weighted) by hand
    t, y = d["treated"].to_numpy(), d["revolving_door_next_12m"].to_numpy()
    m0, m1, e, w = (d[c].to_numpy() for c in ("risk", "mu1", "risk_set_propensity", "weight"))
    by_hand = -100 * (np.average(m1 - m0, weights=w) + (w * t * (y - m1) / e).sum() / (w * t / e).sum()
                      - (w * ~t * (y - m0) / (1 - e)).sum() / (w * ~t / (1 - e)).sum())
    assert hajek.values.loc["random", "value"] == pytest.approx(by_hand)
    # the plain value: the weighted mean of the doubly robust scores (the default before)
    plain = evaluate_policies(m, capacity=0.1, n_bootstrap=0, normalised=False).values
    assert plain.loc["random", "value"] == pytest.approx(-100 * np.average(d["dr_score"], weights=w))
    # the scores are the same parts: where the weight totals are right, both agree closely
    assert hajek.values.loc["random", "value"] == pytest.approx(plain.loc["random", "value"], abs=1.0)


def test_the_s_learner_is_one_logistic_model_with_assessment_interactions(het, tmp_path):
    from iizrisk.benefit import _fit_interactions, _interaction_design, load_benefit_model

    table, _, tau, _ = het
    m = BenefitModel(covariates=COV, population="all", learner="s", random_state=0).fit(table)
    assert np.corrcoef(m.data_["benefit"], -tau)[0, 1] > 0.5
    assert m.blp_.loc["heterogeneity", "z"] > 2
    assert f"L2 penalty C={m.outcome_penalty_:g} (chosen by 5-fold" in m.method()
    # the two arms' models are the joint model's predictions without and with the assessment (the slow way:
    # the joint model on the design of every row, with the assessment set to 0 and to 1)
    X = table[COV].to_numpy(dtype=float)[:3000]
    t = table["treated"].to_numpy()[:3000]
    y = table["revolving_door_next_12m"].to_numpy()[:3000]
    m0, m1 = _fit_interactions(X, t, y, 0.3)
    joint = LogisticPropensity(C=0.3).fit(_interaction_design(X, t, X.mean(axis=0)), y.astype(int))
    for arm, model in ((0, m0), (1, m1)):
        want = joint.predict_proba(_interaction_design(X, np.full(len(X), arm), X.mean(axis=0)))[:, 1]
        assert np.allclose(model.predict_proba(X)[:, 1], want, atol=1e-10)
    # saved and read back, it predicts the same benefit
    back = load_benefit_model(m.save(tmp_path / "s.skops"))
    assert np.allclose(back.predict_benefit(table[COV].head(200)), m.predict_benefit(table[COV].head(200)))
    with pytest.raises(ValueError, match="'dr', 't' or 's'"):
        BenefitModel(learner="x").fit(table)


def test_the_policy_plot_draws_an_interval_that_misses_its_estimate():
    """One bootstrap replicate (policy --bootstrap 1) gives an interval beside the estimate: matplotlib's
    errorbar refused the negative length with exit 5; the interval is drawn from its own ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from iizrisk.benefit import _plot_policies

    v = pd.DataFrame({"value": [2.0, 1.0], "lower 95%": [2.5, 0.5], "upper 95%": [2.5, 1.5]}, index=["risk", "benefit"])
    ax = _plot_policies(v)
    segments = ax.collections[0].get_segments()
    assert [(s[0][0], s[1][0]) for s in segments] == [(2.5, 2.5), (0.5, 1.5)]
    caps = [line for line in ax.lines if line.get_marker() == "|"]  # each interval's ends are marked
    assert sorted(x for line in caps for x in line.get_xdata()) == [0.5, 1.5, 2.5, 2.5]
    plt.close(ax.figure)


@pytest.mark.parametrize("language", ["de", "fr", "it", "en"])
def test_the_policy_and_calibration_figures_speak_the_language_of_their_tables(language):
    """iizrisk policy --language fr wrote French tables beside English figures: the figures take the
    language, with the policies named as in the model card."""
    from matplotlib.figure import Figure

    from iizrisk._texts import text
    from iizrisk.benefit import _plot_calibration, _plot_policies

    v = pd.DataFrame({"value": [2.0, 1.0, 3.0], "lower 95%": [1.0, 0.5, 2.0], "upper 95%": [3.0, 1.5, 4.0],
                      "true_value": [2.1, 0.9, 3.3]}, index=["risk", "benefit", "oracle"])
    ax = _plot_policies(v, ax=Figure().subplots(), language=language)
    assert ax.get_title() == text("plot.policy_title", language)
    assert ax.get_xlabel() == text("plot.policy_axis", language)
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        text("card.policies.risk", language), text("card.policies.benefit", language),
        text("plot.policy_oracle", language)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        text("plot.policy_estimate", language, level="95"), text("plot.policy_true", language)]
    cal = pd.DataFrame({"predicted_benefit": [0.01, 0.03], "estimated_benefit": [0.0, 0.04],
                        "lower 95%": [-0.02, 0.01], "upper 95%": [0.02, 0.07]})
    ax = _plot_calibration(cal, ax=Figure().subplots(), language=language)
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (
        text("plot.benefit_title", language), text("plot.benefit_predicted", language),
        text("plot.benefit_estimated", language))
    if language != "en":
        assert ax.get_title() != text("plot.benefit_title", "en")


def test_a_classifier_without_probabilities_is_refused_not_read_as_probabilities():
    """SVC's predict gives 0/1 decisions: effects built from them would be silently wrong."""
    from sklearn.linear_model import LinearRegression
    from sklearn.svm import SVC

    from iizrisk.benefit import _predict
    from iizrisk.errors import ConfigError

    X = np.random.default_rng(0).random((40, 2))
    y = (X[:, 0] > 0.5).astype(int)
    with pytest.raises(ConfigError, match="SVC is a classifier without predict_proba"):
        _predict(SVC().fit(X, y), X)
    np.testing.assert_allclose(_predict(LinearRegression().fit(X, y), X), LinearRegression().fit(X, y).predict(X))


def test_an_arm_without_outcomes_is_a_constant_model_and_is_predicted(tmp_path):
    """Assessed people without any outcome: their outcome model is a constant (no scikit-learn estimator).

    Predicting it asked scikit-learn whether it is a classifier, which raised inside scikit-learn's tags
    (``iizrisk policy`` on one institution's spells exited 5), in fitting and in a saved model's predictions
    (the nightly run's ``rank_by = "benefit"``).
    """
    from iizrisk.benefit import _Constant, load_benefit_model

    table, _, _ = _table(n=3000, seed=2)
    table.loc[table["treated"], "revolving_door_next_12m"] = 0.0
    m = BenefitModel(learner="t", covariates=COV, population="all", random_state=0).fit(table)
    assert isinstance(m.mu1_, _Constant)
    assert np.isfinite(m.data_["benefit"]).all()
    saved = load_benefit_model(m.save(tmp_path / "benefit.skops"))
    risk, benefit = saved.predict_risk(table.head(50)), saved.predict_benefit(table.head(50))
    assert risk.notna().all() and benefit.notna().all()


def test_an_outcome_that_never_occurs_is_refused_naming_it():
    """Nobody has the outcome (e.g. one institution's spells: no revolving door): no effect to estimate,
    refused as a data problem instead of policy values that are all zero."""
    from iizrisk.errors import ValidationError

    table, _, _ = _table(n=1000, seed=3)
    with pytest.raises(ValidationError, match=r"'revolving_door_next_12m' is 0 for every one of the 1,000 rows"):
        BenefitModel(learner="t", covariates=COV, population="all").fit(table.assign(revolving_door_next_12m=0.0))


@pytest.mark.slow
def test_cli_policy_on_one_institution_is_a_data_error_not_a_crash(tmp_path):
    from iizrisk.cli import main
    from iizrisk.store import write_parquet_atomic
    from iizrisk.synth import generate

    pop = generate(2000, "2019-01-01", "2024-12-31", seed=0)
    write_parquet_atomic(pop.spells[pop.spells["institution"] == "ALV"], tmp_path / "spells.parquet")
    write_parquet_atomic(pop.interventions, tmp_path / "interventions.parquet")
    assert main(["policy", "--spells", str(tmp_path / "spells.parquet"), "--interventions",
                 str(tmp_path / "interventions.parquet"), "--out", str(tmp_path / "out"), "--bootstrap", "5"]) == 1


@pytest.mark.parametrize("episode_days", [None, ["14", "90"]])
def test_the_policy_command_says_how_to_compare_like_with_like_when_refused(tmp_path, monkeypatch, capsys,
                                                                            episode_days):
    """On the demo's data `iizrisk policy --config` was refused for want of overlap, and the message named a
    Python parameter as the remedy: the command points to --episode-days, the option that compares people
    at the point of an episode where assessments are held, unless it was given."""
    import iizrisk.evaluation
    from iizrisk._commands import policy as command
    from iizrisk.cli import main

    monkeypatch.setattr(command, "_inputs", lambda args, read: (None, None, "revolving_door", 12))
    monkeypatch.setattr(iizrisk.evaluation, "risk_set_table", lambda *a, **k: pd.DataFrame())

    def refuse(self, table):
        raise NoOverlapError("no overlap: 80% of the 40 assessed had a probability of being assessed above that "
                             "of 95 % of the not-assessed.")

    monkeypatch.setattr(BenefitModel, "fit", refuse)
    argv = ["policy", "--spells", "s.parquet", "--interventions", "i.parquet", "--out", str(tmp_path / "p")]
    assert main(argv + (["--episode-days", *episode_days] if episode_days else [])) == 1
    err = capsys.readouterr().err
    assert "no overlap: 80%" in err
    assert ("--episode-days 14 90" in err) == (episode_days is None)
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("learner", ["dr", "t"])
def test_a_folds_predictions_never_read_its_own_outcomes(learner):
    """Cross-fitting: a fold's propensity, outcome-model risks and predicted benefit come from models that never
    saw its rows' outcomes, not even through the nuisance models behind the effect model's pseudo-outcomes
    (nested cross-fitting). Changing the outcomes of fold 0 changes nothing predicted for fold 0."""
    table, _, _ = _table(n=3000, seed=5)
    kw = dict(covariates=COV, population="all", learner=learner, random_state=0, propensity_model=LogisticPropensity())
    m = BenefitModel(**kw).fit(table)
    fold0 = (m.data_["fold"] == 0).to_numpy()
    assert 0 < fold0.sum() < len(fold0)
    y = table["revolving_door_next_12m"].to_numpy()
    flipped = table.assign(revolving_door_next_12m=np.where(fold0, 1.0 - y, y))
    m2 = BenefitModel(**kw).fit(flipped)
    assert (m2.data_["fold"] == m.data_["fold"]).all()
    for col in ("propensity", "risk", "mu1", "benefit"):
        np.testing.assert_allclose(m2.data_[col].to_numpy()[fold0], m.data_[col].to_numpy()[fold0],
                                   rtol=1e-9, atol=1e-12, err_msg=col)
    assert not np.allclose(m2.data_["benefit"].to_numpy()[~fold0], m.data_["benefit"].to_numpy()[~fold0])


def test_policies_rank_each_folds_rows_by_that_folds_models_only(het):
    """Each month's top share is chosen within each cross-fitting fold: a fold's predicted benefits moved by a
    constant (another model's level) leave every policy's selection and value as they were."""
    import copy

    _, _, _, m = het
    moved = copy.copy(m)
    fold1 = (m.data_["fold"] == 1).to_numpy()
    moved.data_ = m.data_.assign(benefit=m.data_["benefit"] + np.where(fold1, 1.0, 0.0))
    base = evaluate_policies(m, capacity=0.05, n_bootstrap=0).values
    shifted = evaluate_policies(moved, capacity=0.05, n_bootstrap=0).values
    assert shifted.loc["benefit", "value"] == pytest.approx(base.loc["benefit", "value"], rel=1e-12)
    assert shifted.loc["risk", "value"] == pytest.approx(base.loc["risk", "value"], rel=1e-12)


def test_the_covariates_of_an_index_day_hold_the_interventions_before_it_only():
    """The assessment on the index day is the treatment, not a covariate: only earlier ones are features."""
    from iizrisk.benefit import features_at

    spells = pd.DataFrame({"person_id": ["a", "b"], "institution": "ALV",
                           "start_date": pd.to_datetime(["2020-01-01"] * 2), "end_date": [pd.NaT, pd.NaT]})
    interventions = pd.DataFrame({"person_id": ["a", "b", "a"], "type": "joint_assessment",
                                  "date": pd.to_datetime(["2021-03-31", "2021-03-30", "2021-04-01"])})
    pairs = pd.DataFrame({"person_id": ["a", "b"], "as_of": pd.to_datetime(["2021-03-31"] * 2)})
    X = features_at(spells, interventions, pairs)
    assert X["n_joint_assessments"].tolist() == [0, 1]  # a's is on the index day, b's the day before
    assert X["days_since_joint_assessment"].isna().tolist() == [True, False]
