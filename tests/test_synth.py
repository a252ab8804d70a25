"""The synthetic population: determinism, schema, consistency, the exact counterfactual, calibration."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iizrisk import _time
from iizrisk.cli import main
from iizrisk.errors import ConfigError
from iizrisk.io import ingest, to_canonical_dtypes
from iizrisk.outcomes import revolving_door_outcome
from iizrisk.schema import load_schema
from iizrisk.spells import build_timeline
from iizrisk.synth import CALIBRATION_TARGETS, SwissDefaults, calibration_report, generate, load
from iizrisk.synth import _engine as E
from iizrisk.synth import _population as P
from iizrisk.validate import check_spells

START, END = "2018-01-01", "2021-12-31"


@pytest.fixture(scope="module")
def pop():
    return generate(2500, START, END, seed=3)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ determinism
def test_same_seed_gives_byte_identical_files(tmp_path, pop):
    again = generate(2500, START, END, seed=3)
    a, b = pop.to_dir(tmp_path / "a"), again.to_dir(tmp_path / "b")
    for name in ("spells.parquet", "interventions.parquet", "truth.parquet", "synth.json"):
        assert _sha(a / name) == _sha(b / name), name
    other = generate(2500, START, END, seed=4).to_dir(tmp_path / "c")
    assert _sha(a / "spells.parquet") != _sha(other / "spells.parquet")


def test_people_do_not_depend_on_chunks_or_size(monkeypatch, pop):
    small = generate(900, START, END, seed=3)
    ids = set(small.spells["person_id"])
    assert ids <= set(pop.spells["person_id"])
    mine = pop.spells[pop.spells["person_id"].isin(ids)].reset_index(drop=True)
    as_text = {"person_id": "str"}  # the categories are each population's own pseudonyms
    pd.testing.assert_frame_equal(small.spells.astype(as_text), mine.astype(as_text))
    monkeypatch.setattr(P, "_MAX_CHUNK", 700)
    monkeypatch.setattr(P, "_MIN_CHUNK", 500)
    chunked = generate(2500, START, END, seed=3)
    pd.testing.assert_frame_equal(chunked.spells, pop.spells)
    pd.testing.assert_frame_equal(chunked.truth, pop.truth)


# ----------------------------------------------------------------------- schema
def test_spells_follow_the_schema(pop):
    sp = pop.spells
    schema = load_schema("spells")
    assert list(sp.columns) == [*schema.names, "iv_measure"]
    assert sp["person_id"].nunique() == 2500
    assert sp["person_id"].str.fullmatch(r"[0-9a-f]{64}").all()
    canonical = to_canonical_dtypes(sp)
    for c in schema.names:
        assert sp[c].dtype == canonical[c].dtype, c
    report, bad = check_spells(sp)
    assert report.ok and not bad.any(), report.summary_line()
    t0, t1 = np.datetime64(START, "s"), np.datetime64(END, "s")
    assert (sp["start_date"] <= t1).all()
    closed = sp["end_date"].notna()
    assert (sp.loc[closed, "end_date"] >= t0).all() and (sp.loc[closed, "end_date"] <= t1).all()
    assert (sp.loc[closed, "end_date"] >= sp.loc[closed, "start_date"]).all()
    assert sp.loc[~closed, "exit_reason"].isna().all() and sp.loc[closed, "exit_reason"].notna().all()
    assert (sp["recorded_date"] >= sp["start_date"]).all() and (sp["recorded_date"] <= t1).all()
    assert (sp.loc[closed, "recorded_date"] >= sp.loc[closed, "end_date"]).all()
    per_person = sp.groupby("person_id")[["birth_year", "sex", "canton"]].nunique()
    assert (per_person == 1).all().all()
    assert sp["iv_measure"].notna().eq(sp["institution"] == "IV").all()
    assert set(sp["institution"].astype(str)) == {"ALV", "IV", "SH", "BB", "BSLB", "MIG", "UV", "KTG"}


def test_rows_are_merged_spells_except_iv_cases(pop):
    sp = pop.spells
    tl = build_timeline(sp)
    iv = sp[sp["institution"] == "IV"]
    # an IV case turning into a pension is two touching rows of one case: the only merges
    pensions = iv[iv["iv_measure"] == "pension"]
    firsts = iv[iv["iv_measure"] == "integration"]
    touching = pensions.merge(firsts, on=["person_id", "case_id"], suffixes=("", "_first"))
    # (or the first row's end was not yet recorded at the export: it is open and overlaps)
    touching = touching[(touching["end_date_first"] + pd.Timedelta(days=1) == touching["start_date"])
                        | touching["end_date_first"].isna()]
    assert tl.merge_report.duplicate_rows == 0
    assert tl.merge_report.rows_merged == len(touching)


def test_exit_reasons_fit_what_happens_next(pop):
    sp = pop.spells.copy()
    sp["inst"] = sp["institution"].astype(str)
    last_known = np.datetime64(END, "s") - np.timedelta64(120, "D")
    by_person = {k: g for k, g in sp.groupby("person_id")}
    gap = pd.Timedelta(days=SwissDefaults().transfer_gap_days + 1)
    checked = 0
    for r in sp[(sp["exit_reason"] == "transfer") & (sp["end_date"] < last_known)].itertuples():
        g = by_person[r.person_id]
        other = g[g["inst"] != r.inst]
        nxt = other[(other["start_date"] <= r.end_date + gap) &
                    (other["end_date"].isna() | (other["end_date"] >= r.end_date))]
        assert len(nxt), (r.inst, r.start_date, r.end_date)
        checked += 1
    assert checked > 20
    for r in sp[sp["exit_reason"].isin(["death", "relocation"])].itertuples():
        g = by_person[r.person_id]
        assert not (g["start_date"] > r.end_date).any()
        assert not (g["end_date"] > r.end_date).any()
    reasons = sp.groupby("inst", observed=True)["exit_reason"].agg(lambda s: set(s.dropna().astype(str)))
    assert reasons["ALV"] >= {"employment", "benefit_exhausted", "transfer"}
    assert "benefit_exhausted" not in reasons["SH"] | reasons["IV"]
    assert "education" in reasons["BB"] and "education" not in reasons["ALV"]
    # an IV integration row ending with "pension" is followed by the pension row of the same case
    iv = sp[sp["inst"] == "IV"]
    granted = iv[(iv["exit_reason"] == "pension") & (iv["iv_measure"] == "integration")]
    follow = granted.merge(iv[iv["iv_measure"] == "pension"], on=["person_id", "case_id"], suffixes=("", "_p"))
    assert len(follow) == len(granted[granted["end_date"] < np.datetime64(END, "s") - np.timedelta64(150, "D")]) \
        or len(follow) >= 0.8 * len(granted)


def test_canton_option():
    one = generate(300, START, END, seed=1, canton="GE")
    assert set(one.spells["canton"].astype(str)) == {"GE"}
    with pytest.raises(ConfigError, match="canton"):
        generate(10, START, END, canton="XX")


def test_interventions_and_truth(pop):
    iv = pop.interventions
    assert list(iv.columns) == load_schema("interventions").names
    assert set(iv["type"]) == {"joint_assessment"}
    assert iv["institutions"].str.fullmatch(r"(ALV|IV|SH)(\+(IV|SH))+").all()
    assert set(iv["person_id"]) <= set(pop.spells["person_id"])
    assert iv["date"].between(np.datetime64(START, "s"), np.datetime64(END, "s")).all()
    tr = pop.truth
    assert len(tr) == 2500 and tr["person_id"].is_unique
    assert tr["assessed"].sum() == len(iv) > 20
    a = tr[tr["assessed"]]
    assert a["rd_12m"].notna().all() and a["new_spells_24m"].notna().all()
    assert tr.loc[~tr["assessed"], "rd_12m"].isna().all()
    assert (tr["hazard_ratio"] == 0.7).all()
    # assessments are confounded: the assessed are more severe than the others
    assert a["severity"].mean() > tr.loc[~tr["assessed"], "severity"].mean() + 0.3


# ---------------------------------------------------------- effect and counterfactual
def _chunk_core(n, hr, seed=5):
    p = SwissDefaults()
    w0, w1 = _time.day(START), _time.day(END)
    pop = E.make_persons(np.arange(n), p, seed=seed, first_day=w0, last_day=w1, cantons=P._CANTONS,
                         canton=None)
    horizon = int(_time.add_months(w1, p.follow_up_months))
    core = E.simulate_core(pop, p, horizon=horizon, win0=w0, win1=w1, hr=hr, effect_days=24 * E.DPM)
    return pop, core, horizon


def _rows_of(core, who, before=None):
    r = core.records
    m = r["who"] == who
    keys = ["inst", "start", "end", "reason", "measure"]
    rows = sorted(zip(*(r[k][m].tolist() for k in keys), strict=True))
    if before is not None:
        rows = [x for x in rows if x[2] < before]
    return rows


def test_counterfactual_is_identical_until_the_assessment():
    _, with_effect, _ = _chunk_core(6000, hr=0.4)
    _, without, _ = _chunk_core(6000, hr=1.0)
    assert (with_effect.assess_day == without.assess_day).all()
    assessed = np.flatnonzero(with_effect.assess_day >= 0)
    assert len(assessed) > 20
    changed = 0
    for who in range(6000):
        day = with_effect.assess_day[who]
        if day < 0:
            assert _rows_of(with_effect, who) == _rows_of(without, who)
        else:
            assert _rows_of(with_effect, who, before=day) == _rows_of(without, who, before=day)
            changed += _rows_of(with_effect, who) != _rows_of(without, who)
    assert changed > 0  # the effect does change lives after the assessment


def test_truth_outcome_is_the_outcomes_module_definition():
    pop, core, _ = _chunk_core(4000, hr=1.0)
    rows = core.records
    who = np.flatnonzero(np.bincount(rows["who"], minlength=len(pop)) > 0)
    days = np.array([_time.day(d) for d in ("2018-03-31", "2019-06-30", "2020-11-15")])
    as_of = days[np.arange(len(who)) % 3]
    rd, _ = P._outcomes(rows, who, as_of)
    tl = P._timeline_of(rows, who)
    codes = tl.person_ids.get_indexer(pd.Index(who.astype(str)))
    expected = revolving_door_outcome(tl, codes, as_of, 12)
    assert rd.sum() > 10
    assert (rd == expected).all()


def test_no_effect_means_identical_outcomes():
    none = generate(1500, START, END, seed=8, effect=0.0)
    a = none.truth[none.truth["assessed"]]
    assert len(a) > 10
    assert (a["rd_12m"] == a["rd_12m_cf"]).all() and (a["new_spells_24m"] == a["new_spells_24m_cf"]).all()
    assert none.true_att("new_spells_24m") == 0.0


def test_a_strong_effect_prevents_new_spells():
    strong = generate(3000, START, END, seed=8, effect=0.9)
    a = strong.truth[strong.truth["assessed"]]
    fewer = (a["new_spells_24m"] < a["new_spells_24m_cf"]).sum()
    more = (a["new_spells_24m"] > a["new_spells_24m_cf"]).sum()
    assert fewer > 3 * more
    assert strong.true_att("new_spells_24m") < 0
    with pytest.raises(ConfigError, match="effect"):
        generate(10, START, END, effect=1.5)


@settings(max_examples=200, deadline=None)
@given(rates=st.lists(st.just(0.0) | st.floats(1e-5, 0.3), min_size=1, max_size=9),
       e=st.floats(1e-4, 5.0), mult=st.floats(0.05, 20.0), d0=st.floats(0.0, 80.0),
       w0=st.floats(0.0, 60.0), width=st.floats(0.0, 40.0), hr=st.floats(0.0, 3.0))
def test_latent_time_inverts_the_cumulative_hazard(rates, e, mult, d0, w0, width, hr):
    hz = E.Hazard(tuple(rates))
    w1 = w0 + width
    x = E.latent(hz, np.array([e]), np.array([mult]), d0=np.array([d0]), win=(np.array([w0]), np.array([w1])),
                 hr=hr)[0]

    def G(t):
        return hz.H(t) + (hr - 1.0) * (hz.H(np.clip(t, w0, w1)) - hz.H(w0))

    assert x >= 0
    if np.isfinite(x):
        assert G(d0 + x) - G(d0) == pytest.approx(e / mult, rel=1e-7, abs=1e-9)
    else:
        assert hr == 0.0 or rates[-1] == 0


def test_random_numbers_are_uniform_and_independent():
    keys = E.person_keys(1, np.arange(200_000))
    u = E.uniform(keys, 3, 7)
    v = E.uniform(keys, 3, 8)
    assert 0 < u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(np.corrcoef(u, v)[0, 1]) < 0.01
    hist = np.histogram(u, bins=20, range=(0, 1))[0]
    assert hist.min() > 0.9 * len(u) / 20


# ----------------------------------------------------------------- parameters
def test_params_are_checked_and_merged():
    p = SwissDefaults().replace({"hazards": {"ALV:other": (0.01,)}})
    assert p.hazards["ALV:other"] == (0.01,) and "SH:other" in p.hazards
    with pytest.raises(ConfigError, match="unknown"):
        SwissDefaults().replace({"hazzards": {}})
    with pytest.raises(ConfigError, match="hazards"):
        SwissDefaults().replace({"hazards": {"ALV:other": (-1.0,)}})
    with pytest.raises(ConfigError, match="n_persons"):
        generate(-1, START, END)


# ---------------------------------------------------------------- files and CLI
def test_exports_ingest_back_to_the_spells(tmp_path):
    small = generate(1200, START, END, seed=6, canton="VD")
    small.to_dir(tmp_path, exports=True)
    raw = (tmp_path / "exports" / "alv_rav_export.csv").read_bytes()
    assert raw.decode("cp1252").count(";") > 100 and b"\xfc" in raw or b"\xdc" in raw  # ü / Ü in cp1252
    assert (tmp_path / "exports" / "aide_sociale.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    ing = ingest(tmp_path / "iizrisk.toml")
    assert len(ing.quarantine) == 5
    assert set(ing.quarantine["_reason"].str.split(":").str[0]) == {"end_date", "institution"}
    cols = ["person_id", "institution", "start_date", "end_date", "exit_reason"]

    def norm(df):
        return build_timeline(df).to_frame()[cols].astype(str).sort_values(cols).reset_index(drop=True)

    pd.testing.assert_frame_equal(norm(ing.spells), norm(small.spells))
    back = load(tmp_path)
    pd.testing.assert_frame_equal(back.spells.drop(columns="iv_measure"), small.spells.drop(columns="iv_measure"),
                                  check_dtype=False, check_categorical=False)
    assert back.meta["seed"] == 6 and back.params == small.params


def test_cli_writes_the_population(tmp_path, capsys):
    out = tmp_path / "pop"
    assert main(["synth", "--persons", "150", "--start", START, "--end", END, "--seed", "2", "--out", str(out),
                 "--effect", "0.2", "--canton", "zh"]) == 0
    assert str(out) in capsys.readouterr().out
    for name in ("spells.parquet", "interventions.parquet", "truth.parquet", "synth.json"):
        assert (out / name).exists()
    assert not (out / "iizrisk.toml").exists()
    assert main(["synth", "--persons", "10", "--start", START, "--end", END, "--out", str(out),
                 "--canton", "XX"]) == 2


# ----------------------------------------------------------------- calibration
def test_calibration_report_shape(pop):
    rep = calibration_report(pop)
    assert len(rep) == len(CALIBRATION_TARGETS)
    assert rep["simulated"].notna().all()
    assert rep.attrs["year"] == 2019
    with pytest.raises(ConfigError, match="year"):
        calibration_report(pop.spells)
    with pytest.raises(ConfigError, match="too short"):
        calibration_report(generate(50, "2020-01-01", "2021-06-30", seed=1))


@pytest.mark.slow
def test_calibration_on_200k_persons():
    big = generate(200_000, "2015-01-01", "2022-12-31", seed=2024)
    rep = calibration_report(big)
    bad = rep[~rep["within"]]
    assert bad.empty, "\n" + rep.to_string()
    # one in six new social-assistance cases had been "ausgesteuert" (SKOS): a check, not a target
    assert len(big.spells) / 200_000 > 2


# ------------------------------------------------------------------ heterogeneous effects, people at risk
def test_effect_modifier_matches_its_formula():
    p = SwissDefaults()
    m = E.effect_modifier(p, np.array([0.5, 0.5, 0.5, 1.5, 0.5]), np.array([False, True, False, False, False]),
                          np.array([0.0, 0.0, 12.0, 0.0, 0.0]), np.array([1, 1, 1, 1, 3]))
    expected = [1.0, 0.1, 0.1, np.exp(-0.5), np.exp(-0.7)]
    assert np.allclose(m, expected)
    eff = E.individual_effect(p, 0.3, True, np.array([0.5, 0.5]), np.array([False, True]), np.zeros(2),
                              np.ones(2))
    assert np.allclose(eff, [0.6, 0.06])
    assert np.allclose(E.individual_effect(p, 0.3, False, np.zeros(3), np.ones(3, bool), np.zeros(3),
                                           np.ones(3)), 0.3)
    assert E.individual_effect(p, 0.9, True, np.array([0.5]), np.array([False]), np.zeros(1), np.ones(1))[0] == 1.0


@pytest.fixture(scope="module")
def het():
    return generate(2500, START, END, seed=5, effect=0.5, heterogeneous=True, effect_sample=0.3)


def test_heterogeneous_effects_vary_and_are_recorded(het, pop):
    tr = het.truth
    a = tr[tr["assessed"]]
    eff = a["individual_effect"].astype(float)
    assert len(a) > 20 and eff.notna().all() and eff.between(0, 1).all() and eff.std() > 0.02
    assert het.meta["heterogeneous"] and het.meta["effect_sample"] == 0.3
    # homogeneous: every assessment has the nominal effect, and nobody is sampled by default
    b = pop.truth[pop.truth["assessed"]]
    assert (b["individual_effect"].astype(float) == 0.3).all()
    assert not pop.truth["effect_sample"].any() and pop.truth["sample_date"].isna().all()


def test_sample_of_people_at_risk_is_simulated_twice(het):
    tr = het.truth
    s = tr[tr["effect_sample"]]
    assert 0.1 * len(tr) < len(s) < 0.3 * len(tr)
    assert not (s["assessed"] & (s["assessment_date"] <= s["sample_date"])).any()  # not yet assessed
    assert s["sample_date"].dt.is_month_end.all()
    assert s["individual_effect"].notna().all() and s["rd_12m"].notna().all() and s["rd_12m_cf"].notna().all()
    # an assessment only lowers hazards: with common random numbers fewer new spells, rarely more
    fewer = (s["new_spells_24m"] < s["new_spells_24m_cf"]).sum()
    more = (s["new_spells_24m"] > s["new_spells_24m_cf"]).sum()
    assert fewer > 3 * max(more, 1)
    # the sample does not depend on the chunks
    again = generate(1200, START, END, seed=5, effect=0.5, heterogeneous=True, effect_sample=0.3)
    mine = tr[tr["person_id"].isin(set(again.truth["person_id"]))].reset_index(drop=True)
    pd.testing.assert_frame_equal(again.truth, mine)


def test_sample_without_effect_has_identical_outcomes():
    none = generate(1200, START, END, seed=6, effect=0.0, heterogeneous=True, effect_sample=0.5)
    s = none.truth[none.truth["effect_sample"]]
    assert len(s) > 50
    assert (s["rd_12m"] == s["rd_12m_cf"]).all() and (s["individual_effect"] == 0).all()
    with pytest.raises(ConfigError, match="effect_sample"):
        generate(10, START, END, effect_sample=1.5)
