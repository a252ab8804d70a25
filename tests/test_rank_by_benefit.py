"""Worklists ordered by benefit: the evidence a benefit model carries, the order, the reasons, the files."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iizrisk.benefit import BenefitModel, evaluate_policies, load_benefit_model
from iizrisk.worklist import benefit_reasons, build_worklists

COV = ["age", "days_registered_24m"]


def benefit_table(n=8000, seed=0, effect=True):
    """A risk-set-like table in the study features' names: risk grows with days registered, the
    assessment helps the young (age < 35) only, and assessments do not depend on age."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 64, n).astype(float)
    days = rng.integers(0, 730, n).astype(float)
    p0 = 1 / (1 + np.exp(-(-1.5 + days / 300)))
    tau = -0.3 * (age < 35) if effect else np.zeros(n)
    t = rng.random(n) < 1 / (1 + np.exp(-(-1.5 + days / 600)))
    y = rng.random(n) < np.clip(p0 + t * tau, 0, 1)
    months = pd.to_datetime("2020-01-31") + pd.offsets.MonthEnd(1) * (np.arange(n) % 12)
    return pd.DataFrame({"person_id": [f"p{i}" for i in range(n)], "index_date": months, "treated": t,
                         "age": age, "days_registered_24m": days, "open_alv": 1.0,
                         "revolving_door_next_12m": y.astype(float)})


def fitted(effect=True, seed=0, evidence=True):
    m = BenefitModel(covariates=COV, population="all", random_state=seed).fit(benefit_table(seed=seed, effect=effect))
    if evidence:
        m.attach_evidence(evaluate_policies(m, n_bootstrap=100, random_state=seed))
    return m


@pytest.fixture(scope="module")
def helps_the_young():
    return fitted()


def test_evidence_supports_only_an_ordering_that_prevents_more(helps_the_young):
    ev = helps_the_young.evidence("benefit")
    assert ev.supported and ev.lower > 0 and ev.value > ev.risk_value
    assert "prevents more than ranking by risk" in ev.reason and f"{ev.value:.1f}" in ev.reason
    assert helps_the_young.evidence("risk").supported
    # without an effect the interval of the difference does not lie above 0
    none = fitted(effect=False).evidence("benefit")
    assert not none.supported and "does not lie above 0" in none.reason
    # a model without its offline evaluation supports nothing but risk
    bare = fitted(evidence=False)
    assert not bare.evidence("benefit").supported and "--save-model" in bare.evidence("benefit").reason
    with pytest.raises(ValueError, match="rank_by"):
        bare.evidence("oracle")


@pytest.mark.parametrize("lower, supported", [(-0.1, False), (0.0, False), (0.1, True)])
def test_the_whole_interval_of_the_difference_must_lie_above_0(helps_the_young, lower, supported):
    import copy

    from iizrisk.benefit import PolicyEvaluation

    values = pd.DataFrame({"value": [4.0, 6.0], "lower 95%": [1.0, 2.0], "upper 95%": [7.0, 9.0],
                           "vs_risk": [0.0, 2.0], "vs_risk lower 95%": [0.0, lower],
                           "vs_risk upper 95%": [0.0, 4.0]}, index=pd.Index(["risk", "benefit"], name="policy"))
    m = copy.copy(helps_the_young).attach_evidence(PolicyEvaluation(values, capacity=0.05, method="m", n_rows=10))
    ev = m.evidence("benefit")
    assert ev.supported is supported and ev.lower == lower and ev.capacity == 0.05
    assert not m.evidence("risk_x_benefit").supported  # not evaluated: no interval


def test_the_saved_model_keeps_its_evidence_and_no_pseudonym(helps_the_young, tmp_path):
    path = helps_the_young.save(tmp_path / "benefit.skops")
    data = path.read_bytes()
    assert b"p17" not in data and b"person_id" not in data
    back = load_benefit_model(path)
    assert back.file_sha256_ == hashlib.sha256(data).hexdigest()
    assert back.evidence("benefit") == helps_the_young.evidence("benefit")
    X = benefit_table(n=50, seed=3)[COV]
    assert np.allclose(back.predict_benefit(X), helps_the_young.predict_benefit(X))


def test_benefit_outside_the_models_situations_is_missing(helps_the_young):
    X = benefit_table(n=20, seed=5)
    core = BenefitModel(covariates=COV, random_state=0).fit(benefit_table(seed=1))
    X.loc[X.index[:5], "open_alv"] = 0.0  # not registered at ALV, IV or SH
    b = core.benefit_in_domain(X)
    assert b.iloc[:5].isna().all() and b.iloc[5:].notna().all()
    core.episode_days_ = (14, 90)  # learnt from people 14..90 days into an episode
    with pytest.raises(ValueError, match="days_since_episode_start"):
        core.benefit_in_domain(X)
    X["days_since_episode_start"] = np.r_[np.full(10, 30.0), np.full(10, 200.0)]
    b = core.benefit_in_domain(X)
    assert b.iloc[5:10].notna().all() and b.iloc[10:].isna().all()


def test_benefit_reasons_in_four_languages():
    b = [0.031, 0.004, np.nan, -0.02, 0.12]
    for lang, word in {"de": "Drehtüren", "fr": "portes tournantes", "it": "porte girevoli",
                       "en": "revolving doors"}.items():
        r = benefit_reasons(b, "revolving_door", lang)
        assert " 3 " in r[0] and word in r[0] and " 12 " in r[4]
        assert r[1] == r[3] != r[2]  # nothing to show below half a case per 100, and no estimate
        assert all(isinstance(x, str) and "{" not in x for x in r)
    assert "désintégrations" in benefit_reasons([0.05], "disintegration", "fr")[0]
    with pytest.raises(ValueError, match="outcome"):
        benefit_reasons([0.1], "sickness", "en")


def _order_slowly(scores, open_cases, benefit, rank_by, capacity):
    """The obvious way: per institution, sort the people with an open case by the ranking's key."""
    lists = {}
    for inst in sorted(open_cases["institution"].unique()):
        people = sorted(set(open_cases.loc[open_cases["institution"] == inst, "person_id"]))
        rows = []
        for p in people:
            r = scores.loc[scores["person_id"] == p].iloc[0]
            b = benefit.get(p, np.nan)
            key = b if rank_by == "benefit" else (r["risk"] * max(b, 0.0) if not np.isnan(b) else np.nan)
            if rank_by == "risk":
                rows.append(((-r["risk"], r["rank"]), p))
            else:
                rows.append(((np.isnan(key), 0.0 if np.isnan(key) else -key, -r["risk"], r["rank"]), p))
        lists[inst] = [p for _, p in sorted(rows)][:capacity]
    return lists


@settings(max_examples=60, deadline=None)
@given(data=st.lists(st.tuples(st.integers(0, 2), st.floats(0.0, 1.0), st.one_of(st.none(), st.floats(-0.2, 0.3))),
                     min_size=1, max_size=30),
       rank_by=st.sampled_from(["risk", "benefit", "risk_x_benefit"]), capacity=st.integers(1, 8))
def test_lists_in_the_order_of_the_ranking_as_the_slow_reference(data, rank_by, capacity):
    n = len(data)
    ids = [f"p{i}" for i in range(n)]
    risk = np.round([r for _, r, _ in data], 2)  # ties on risk happen
    scores = pd.DataFrame({"person_id": ids, "risk": risk, "risk_band": "high"})
    scores["rank"] = scores["risk"].rank(method="first", ascending=False).astype(int)
    insts = np.array(["ALV", "IV", "SH"])
    open_cases = pd.DataFrame({"person_id": ids, "institution": insts[[i for i, _, _ in data]],
                               "case_id": [f"c{i}" for i in range(n)]})
    benefit = pd.Series([np.nan if b is None else round(b, 2) for _, _, b in data], index=ids)
    ws = build_worklists(scores, open_cases, capacity=capacity, min_band="low", rank_by=rank_by,
                         benefit=benefit, default_language="en")
    want = _order_slowly(scores, open_cases, benefit.to_dict(), rank_by, capacity)
    assert {k: v["person_id"].tolist() for k, v in ws.lists.items()} == want
    for df in ws.lists.values():
        assert np.array_equal(df["benefit"].to_numpy(), benefit.reindex(df["person_id"]).to_numpy(), equal_nan=True)
        assert df["benefit_reason"].map(type).eq(str).all()


def test_ranking_by_benefit_needs_the_benefit():
    scores = pd.DataFrame({"person_id": ["a"], "risk": [0.3], "risk_band": ["high"]})
    oc = pd.DataFrame({"person_id": ["a"], "institution": ["ALV"], "case_id": ["c"]})
    with pytest.raises(ValueError, match="needs the benefit"):
        build_worklists(scores, oc, rank_by="benefit")
    with pytest.raises(ValueError, match="rank_by"):
        build_worklists(scores, oc, rank_by="need")
    # ranked by risk, no benefit columns
    assert "benefit" not in build_worklists(scores, oc).lists["ALV"].columns


# ----------------------------------------------------------------------------- the nightly run
# the nightly run's deployment and its signed risk model (the fixture `trained`, registered by the import)
from test_batch import AS_OF, deployment, trained  # noqa: E402,F401


def _benefit_file(tmp_path, **kw):
    m = fitted(**kw)
    m.episode_days_ = (0, 400)  # learnt from people up to 400 days into an episode: the rest get no estimate
    return m.save(tmp_path / "benefit.skops")


def test_a_night_ranks_by_benefit_where_its_evidence_supports_it(tmp_path, random_spells, request):
    import json

    from iizrisk.batch import run_nightly
    from iizrisk.tables import header, read_table

    path = _benefit_file(tmp_path)
    risk_model = request.getfixturevalue("trained")
    cfg = deployment(tmp_path, random_spells, risk_model, worklist={"rank_by": "benefit",
                                                                 "benefit_model": "benefit.skops"})
    res = run_nightly(cfg, as_of=AS_OF, progress=False)
    ranking = res.manifest["ranking"]
    assert ranking["rank_by"] == "benefit" and "prevents more than ranking by risk" in ranking["evidence"]
    assert ranking["benefit_model_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    some_outside = False
    for inst, df in res.worklists.lists.items():
        known = df["benefit"].notna().to_numpy()
        # everyone with an estimate first, by benefit; then the others, by risk
        assert not (np.diff(known.astype(int)) > 0).any()
        assert df.loc[known, "benefit"].is_monotonic_decreasing
        assert df.loc[~known, "risk"].is_monotonic_decreasing
        some_outside |= bool((~known).any())
        if inst in ("ALV", "IV", "SH"):
            assert known.any()
        lang = {"SH": "fr", "IV": "it"}.get(inst, "de")
        head = pd.read_csv(tmp_path / "runs" / AS_OF / "worklists" / f"{inst}.csv", sep=";", encoding="utf-8-sig",
                           nrows=0).columns
        assert header("benefit", lang) in head and header("benefit_reason", lang) in head
        wl = read_table(tmp_path / "runs" / AS_OF / "worklists" / f"{inst}.csv")
        assert wl["benefit_reason"].notna().all()
    assert some_outside
    folder = tmp_path / "runs" / AS_OF
    assert json.loads((folder / "manifest.json").read_text())["ranking"] == ranking
    # the run summary names the order and the benefit model's file (German: the deployment's language)
    assert f"nach erwartetem Nutzen (Nutzenmodell sha256 {ranking['benefit_model_sha256'][:12]}" in \
        (folder / "summary.md").read_text()
    # ordered by risk (the default), the same night has no benefit columns
    cfg = deployment(tmp_path / "r", random_spells, risk_model)
    assert "benefit" not in run_nightly(cfg, as_of=AS_OF, progress=False).worklists.lists["ALV"].columns
    assert "**Reihenfolge der Listen**: nach Risiko" in (tmp_path / "r" / "runs" / AS_OF / "summary.md").read_text()


def test_a_night_refuses_an_ordering_its_evidence_does_not_support(tmp_path, random_spells, request, capsys):
    from iizrisk.cli import main

    risk_model = request.getfixturevalue("trained")
    fitted(evidence=False).save(tmp_path / "bare.skops")
    fitted(effect=False).save(tmp_path / "none.skops")
    for name, code, words in [("bare.skops", 2, "--save-model"), ("none.skops", 2, "does not lie above 0"),
                              ("missing.skops", 3, "no benefit model file")]:
        cfg = deployment(tmp_path, random_spells, risk_model, worklist={"rank_by": "benefit", "benefit_model": name})
        assert main(["run", str(cfg), "--as-of", AS_OF]) == code, name
        assert words in capsys.readouterr().err
        assert not (tmp_path / "runs" / AS_OF).exists()  # nothing published
    # a benefit model of another outcome than the deployment scores
    m = BenefitModel(outcome="disintegration_next_12m", covariates=COV, population="all", random_state=0).fit(
        benefit_table().rename(columns={"revolving_door_next_12m": "disintegration_next_12m"}))
    m.save(tmp_path / "other.skops")
    cfg = deployment(tmp_path, random_spells, risk_model, worklist={"rank_by": "benefit", "benefit_model": "other.skops"})
    assert main(["run", str(cfg), "--as-of", AS_OF]) == 2
    assert "disintegration_next_12m" in capsys.readouterr().err
    # settings: an unknown order, or an order by benefit without a benefit model
    from iizrisk.config import Settings
    from iizrisk.errors import ConfigError

    for worklist, words in [({"rank_by": "need"}, "use one of risk, benefit"), ({"rank_by": "risk_x_benefit"},
                                                                               "needs benefit_model")]:
        with pytest.raises(ConfigError, match=words):
            Settings.from_dict({"worklist": worklist}).resolved()


def test_the_model_card_documents_the_benefit_model_in_four_languages(helps_the_young):
    from iizrisk._texts import text, text_items
    from iizrisk.modelcard import ModelCard

    manifest = {"model": "logistic", "outcome": "revolving_door", "horizon_months": 12}
    ev = helps_the_young.evidence("benefit")
    for lang in ("de", "fr", "it", "en"):
        card = ModelCard(manifest, language=lang, benefit=helps_the_young, rank_by="benefit")
        md, page, d = card.to_markdown(), card.to_html(), card.to_dict()
        section = md.split(f"## {text('card.ranking', lang)}")[1].split("\n## ")[0]
        assert f"{ev.value:.1f}" in section and f"{ev.lower:+.1f}" in section  # the evidence's figures
        assert all(item in section for item in text_items("card.ranking_limits_items", lang))
        assert section.count("\n| ") == 7 and "{" not in section  # header and six policies; no placeholder
        assert "<p class='ok'>" in page and text("card.ranking", lang) in page
        assert d["ranking"]["supported"] and d["ranking"]["benefit_model"]["assessed"] == helps_the_young.n_treated_
    # ordered by risk: one sentence, no benefit model
    plain = ModelCard(manifest, language="de")
    assert plain.to_dict()["ranking"] == {"rank_by": "risk", "statement": text("card.ranking_risk", "de"),
                                          "benefit_model": None}
    with pytest.raises(ValueError, match="give the benefit model"):
        ModelCard(manifest, rank_by="benefit")


def test_the_model_card_says_in_four_languages_why_a_model_without_evidence_cannot_order():
    from iizrisk._texts import text
    from iizrisk.modelcard import ModelCard

    manifest = {"model": "logistic", "outcome": "revolving_door", "horizon_months": 12}
    bare = fitted(evidence=False)
    no_interval = fitted()
    cols = no_interval.evidence_["values"]["columns"]  # the evaluation kept, its intervals lost (no bootstrap)
    for c in [c for c in cols if "lower" in c or "upper" in c]:
        cols[c] = [np.nan] * len(cols[c])
    for model, code in ((bare, "no_evaluation"), (no_interval, "no_interval")):
        assert model.evidence("benefit").code == code and not model.evidence("benefit").supported
        for lang in ("de", "fr", "it", "en"):
            d = ModelCard(manifest, language=lang, benefit=model, rank_by="benefit").to_dict()["ranking"]
            assert d["evidence"] == text(f"card.ranking_{code}", lang) and not d["supported"]
    assert len({text("card.ranking_no_evaluation", lang) for lang in ("de", "fr", "it", "en")}) == 4


@settings(max_examples=8, deadline=None)
@given(day=st.dates(min_value=pd.Timestamp("2021-01-01").date(), max_value=pd.Timestamp("2023-06-30").date()),
       later_shift=st.integers(1, 400))
def test_the_benefit_at_a_day_ignores_everything_after_it(random_spells, helps_the_young, day, later_shift):
    """Point in time: rows, ends, exit reasons and assessments after the day change no one's benefit on it."""
    from iizrisk.benefit import benefit_at

    t = pd.Timestamp(day)
    cols = ["age", "days_registered_24m", "n_spells_24m", "days_since_episode_start", "n_joint_assessments"]
    model = BenefitModel(covariates=cols, population="all", random_state=0).fit(
        benefit_table(n=3000).assign(n_spells_24m=lambda d: d["days_registered_24m"] // 200,
                                     days_since_episode_start=lambda d: d["age"] * 3,
                                     n_joint_assessments=lambda d: (d["age"] % 3 == 0) * 1.0))
    assert (np.abs(model.effect_[-1].coef_) > 0).all()  # every feature moves the benefit
    persons = random_spells["person_id"].unique()[:400]
    iv = pd.DataFrame({"person_id": persons[:40], "date": t - pd.Timedelta(days=30), "type": "joint_assessment"})
    full = benefit_at(model, random_spells, iv, persons, t)
    # what was known on the day: later rows gone, ends and exits after it unknown, later assessments gone
    cut = random_spells[random_spells.start_date <= t].copy()
    later = cut.end_date > t
    cut.loc[later, "end_date"] = pd.NaT
    cut.loc[later, "exit_reason"] = None
    more_iv = pd.concat([iv, pd.DataFrame({"person_id": persons[40:80], "date": t + pd.Timedelta(days=later_shift),
                                           "type": "joint_assessment"})], ignore_index=True)
    pd.testing.assert_series_equal(full, benefit_at(model, cut, more_iv, persons, t))
    assert full.notna().sum() > 0
    # while the assessments before the day do count
    without = benefit_at(model, random_spells, None, persons, t)
    assert (without.iloc[:40] != full.iloc[:40]).any() and without.iloc[80:].equals(full.iloc[80:])
