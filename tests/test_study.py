"""From spells to a study: risk sets, covariates and outcomes against a slow reference; validation on synth.

The reference works on raw rows day by day (registered on a day, merged
spells, the first day of a sustained exit) and shares no code with
:mod:`iizrisk.evaluation`. The validation runs the default study on
synthetic populations whose true effect is known (``iizrisk.synth``: each
assessed person is simulated again without the assessment).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from iizrisk.errors import ValidationError
from iizrisk.evaluation import AssessmentStudy, risk_set_table
from iizrisk.features import PointInTimeFeatures
from iizrisk.outcomes import compute_outcome
from iizrisk.tables import read_table

BASE = dt.date(2018, 1, 1)
LAST = BASE + dt.timedelta(days=1500)
INSTS = ["ALV", "IV", "SH", "BB"]
REASONS = ["employment", "benefit_exhausted", "death", "relocation", "other", "transfer"]
OWN = ["days_registered_next_12m", "days_registered_next_24m", "new_spells_next_12m"]


def D(n: int) -> dt.date:
    return BASE + dt.timedelta(days=int(n))


def months_forward(t: dt.date, m: int) -> dt.date:
    y, mo = divmod(t.month - 1 + m, 12)
    y, mo = t.year + y, mo + 1
    return dt.date(y, mo, min(t.day, calendar.monthrange(y, mo)[1]))


# ------------------------------------------------------------------ data
@st.composite
def study_data(draw):
    n_persons = draw(st.integers(2, 5))
    rows = []
    for _ in range(draw(st.integers(2, 14))):
        p = f"p{draw(st.integers(0, n_persons - 1))}"
        inst = draw(st.sampled_from(INSTS))
        s = draw(st.integers(0, 1300))
        e = None if draw(st.integers(0, 7)) == 0 else s + draw(st.integers(0, 300))
        # the reason is a function of (institution, end): rows merged into one spell agree on it
        reason = None if e is None else REASONS[(e + INSTS.index(inst)) % len(REASONS)]
        rows.append((p, inst, s, e, reason))
    # mostly on a day the person is registered (a row's start plus part of its length), some anywhere
    assessed = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            p, _, s, e, _ = rows[draw(st.integers(0, len(rows) - 1))]
            assessed.append((int(p[1:]), s + draw(st.integers(0, 200 if e is None else e - s))))
        else:
            assessed.append((draw(st.integers(0, n_persons - 1)), draw(st.integers(0, 1400))))
    return rows, assessed


def to_frames(rows, assessed):
    spells = pd.DataFrame({
        "person_id": [r[0] for r in rows],
        "institution": [r[1] for r in rows],
        "start_date": pd.to_datetime([D(r[2]) for r in rows]),
        "end_date": pd.to_datetime([None if r[3] is None else D(r[3]) for r in rows]),
        "exit_reason": [r[4] for r in rows],
        "birth_year": 1980,
    })
    interventions = pd.DataFrame({
        "person_id": [f"p{a}" for a, _ in assessed] + ["p0"],
        "date": pd.to_datetime([D(d) for _, d in assessed] + [D(5)]),
        "type": ["joint_assessment"] * len(assessed) + ["case_management"],
    })
    return spells, interventions


# ------------------------------------------------------------------ reference
def ref_registered(rows, person, day: dt.date) -> bool:
    return any(r[0] == person and D(r[2]) <= day and (r[3] is None or day <= D(r[3])) for r in rows)


def ref_merged_starts(rows, person, inst):
    spans = sorted((r[2], 10 ** 9 if r[3] is None else r[3]) for r in rows if r[0] == person and r[1] == inst)
    starts, cur_end = [], None
    for s, e in spans:
        if cur_end is None or s > cur_end + 1:
            starts.append(s)
            cur_end = e
        else:
            cur_end = max(cur_end, e)
    return [D(s) for s in starts]


def ref_exit(rows, person, d: dt.date, last: dt.date, months: int = 6):
    e_max = last
    while months_forward(e_max, months) > last:
        e_max -= dt.timedelta(days=1)
    x = d + dt.timedelta(days=1)
    while x - dt.timedelta(days=1) <= e_max:
        prev = x - dt.timedelta(days=1)
        if ref_registered(rows, person, prev) and not ref_registered(rows, person, x):
            gap_end = months_forward(prev, months)
            y, free = x, True
            while y <= gap_end:
                if ref_registered(rows, person, y):
                    free = False
                    break
                y += dt.timedelta(days=1)
            if free:
                gone = any(r[0] == person and r[3] is not None and D(r[3]) == prev and r[4] in ("death", "relocation")
                           for r in rows)
                return float((x - d).days), not gone
        x += dt.timedelta(days=1)
    return float(max(0, (e_max + dt.timedelta(days=1) - d).days)), False


def ref_rows(rows, assessed):
    """Expected (person, day, treated) of the risk-set table with every control kept."""
    persons = sorted({r[0] for r in rows})
    first = {}
    for a, d in assessed:
        p = f"p{a}"
        if p in persons:
            first[p] = min(first.get(p, 10 ** 9), d)
    out = set()
    for d in sorted({v for v in first.values() if D(v) <= LAST}):
        for p in persons:
            if not ref_registered(rows, p, D(d)):
                continue
            if first.get(p) == d:
                out.add((p, D(d), True))
            elif first.get(p, 10 ** 9) > d:
                out.add((p, D(d), False))
    return out


# ------------------------------------------------------------------ reference tests
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(study_data())
def test_risk_sets_and_outcomes_equal_the_slow_reference(data):
    rows, assessed = data
    spells, interventions = to_frames(rows, assessed)
    expected = ref_rows(rows, assessed)
    if not any(t for _, _, t in expected):
        with pytest.raises(ValidationError, match="no person|none of the|no row of type"):
            risk_set_table(spells, interventions, controls_per_treated=None, outcomes=OWN,
                           observed_until=LAST, random_state=0)
        return
    tab = risk_set_table(spells, interventions, controls_per_treated=None, outcomes=OWN,
                         observed_until=LAST, random_state=0)
    event(f"sustained exits observed: {bool(tab['exit_observed'].any())}")
    got = {(p, d.date(), bool(t)) for p, d, t in zip(tab["person_id"], tab["index_date"], tab["treated"],
                                                     strict=True)}
    assert got == expected
    for _, r in tab.iterrows():
        p, d = r["person_id"], r["index_date"].date()
        for k, col in ((12, "days_registered_next_12m"), (24, "days_registered_next_24m")):
            h = months_forward(d, k)
            want = np.nan if h > LAST else float(sum(
                ref_registered(rows, p, d + dt.timedelta(days=i)) for i in range(1, (h - d).days + 1)))
            assert r[col] == pytest.approx(want, nan_ok=True), (col, p, d)
        h = months_forward(d, 12)
        want = np.nan if h > LAST else float(sum(
            d < s <= h for inst in ("ALV", "IV", "SH") for s in ref_merged_starts(rows, p, inst)))
        assert r["new_spells_next_12m"] == pytest.approx(want, nan_ok=True), (p, d)
        dur, ev = ref_exit(rows, p, d, LAST)
        assert (r["exit_days"], bool(r["exit_observed"])) == (dur, ev), (p, d)


def random_study_data(seed: int, n_persons: int, n_rows: int, n_assessed: int, open_share: float):
    """Random spells and assessments (frames of :func:`to_frames`)."""
    rng = np.random.default_rng(seed)
    rows = [(f"p{rng.integers(0, n_persons)}", str(rng.choice(INSTS)), int(s),
             None if rng.random() < open_share else int(s + rng.integers(0, 300)), None)
            for s in rng.integers(0, 1300, n_rows)]
    rows = [(p, i, s, e, None if e is None else REASONS[e % 6]) for p, i, s, e, _ in rows]
    assessed = [(int(a), int(d)) for a, d in zip(rng.integers(0, n_persons, n_assessed),
                                                 rng.integers(200, 1100, n_assessed), strict=True)]
    return to_frames(rows, assessed)


def test_covariates_are_the_point_in_time_features_at_the_index_day():
    spells, interventions = random_study_data(3, 30, 150, 12, 0.15)
    interventions.loc[len(interventions)] = ["p1", pd.Timestamp(D(150)), "case_management"]
    tab = risk_set_table(spells, interventions, controls_per_treated=None, outcomes=["revolving_door"],
                         observed_until=LAST, feature_options={}, random_state=0)
    cols = tab.attrs["covariates"]
    assert tab.attrs["outcomes"] == ["revolving_door_next_12m"]
    ft = PointInTimeFeatures(population="all", include_age=True).fit()  # a study adjusts for age
    for d, grp in tab.groupby("index_date"):
        iv = interventions[interventions["date"] < d]
        X = ft.transform(spells, as_of=d, interventions=iv).xs(d, level="as_of")
        np.testing.assert_allclose(grp[cols].to_numpy(), X.loc[grp["person_id"], cols].to_numpy(dtype=np.float64),
                                   equal_nan=True)
        assert (grp["n_institutions_now"] >= 1).all()
        # the assessment on day d itself is no covariate
        assert (grp["n_joint_assessments"] == 0).all()
    lab = compute_outcome(spells, pairs=pd.DataFrame({"person_id": tab["person_id"], "as_of": tab["index_date"]}),
                          outcome="revolving_door", horizon_months=12, observed_until=LAST)
    want = lab["outcome"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    np.testing.assert_array_equal(tab["revolving_door_next_12m"].to_numpy(), want)


def test_nothing_after_the_index_day_changes_a_covariate():
    rng = np.random.default_rng(5)
    rows = [(f"p{rng.integers(0, 25)}", str(rng.choice(INSTS)), int(s),
             None if rng.random() < 0.1 else int(s + rng.integers(0, 400)), "other") for s in rng.integers(0, 1300, 120)]
    d = 700
    assessed = [(int(a), d) for a in range(0, 25, 3)]
    spells, interventions = to_frames(rows, assessed)
    base = risk_set_table(spells, interventions, controls_per_treated=None, observed_until=LAST,
                          outcomes=["days_registered_next_12m"], period=(D(d), D(d)), random_state=0)
    # the future rewritten: ends after d moved, rows starting after d dropped, new rows added
    fut = spells.copy()
    late_end = fut["end_date"] > pd.Timestamp(D(d))
    fut.loc[late_end, "end_date"] = fut.loc[late_end, "end_date"] + pd.Timedelta(days=77)
    fut.loc[late_end, "exit_reason"] = "employment"
    fut = fut[fut["start_date"] <= pd.Timestamp(D(d))]
    extra = pd.DataFrame({"person_id": ["p1", "p2"], "institution": ["SH", "IV"],
                          "start_date": pd.to_datetime([D(d + 1), D(d + 30)]), "end_date": pd.NaT,
                          "exit_reason": None, "birth_year": 1980})
    fut = pd.concat([fut, extra], ignore_index=True)
    iv = pd.concat([interventions, pd.DataFrame({"person_id": ["p3"], "date": pd.to_datetime([D(d + 5)]),
                                                 "type": ["case_management"]})], ignore_index=True)
    other = risk_set_table(fut, iv, controls_per_treated=None, observed_until=LAST,
                           outcomes=["days_registered_next_12m"], period=(D(d), D(d)), random_state=0)
    cols = base.attrs["covariates"]
    a = base.set_index("person_id").sort_index()
    b = other.set_index("person_id").sort_index()
    assert list(a.index) == list(b.index) and a["treated"].equals(b["treated"])
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert not a["days_registered_next_12m"].equals(b["days_registered_next_12m"])


def test_control_sampling_and_arguments():
    rng = np.random.default_rng(1)
    rows = [(f"p{rng.integers(0, 60)}", "ALV", int(s), int(s + 500), "other") for s in rng.integers(0, 800, 200)]
    spells, interventions = to_frames(rows, [(1, 900), (2, 900), (3, 950)])
    tab = risk_set_table(spells, interventions, controls_per_treated=3, outcomes=OWN, observed_until=LAST,
                         random_state=0)
    per_day = tab.groupby("index_date")["treated"].agg(["sum", "size"])
    assert ((per_day["size"] - per_day["sum"]) <= 3 * per_day["sum"]).all()
    again = risk_set_table(spells, interventions, controls_per_treated=3, outcomes=OWN, observed_until=LAST,
                           random_state=0)
    pd.testing.assert_frame_equal(tab, again)
    with pytest.raises(ValueError, match="unknown study outcome"):
        risk_set_table(spells, interventions, outcomes=["nope"])
    with pytest.raises(ValidationError, match="interventions"):
        risk_set_table(spells, interventions.drop(columns="type"))
    with pytest.raises(ValidationError, match="no person"):
        risk_set_table(spells, interventions, period=("2030-01-01", "2031-01-01"))
    with pytest.raises(ValidationError, match="no row of type 'foo' \\(the table holds .*'joint_assessment'\\)"):
        risk_set_table(spells, interventions, intervention_type="foo")
    with pytest.raises(ValueError, match="covariate_view"):
        risk_set_table(spells, interventions, covariate_view="later")


# ------------------------------------------------------------------ synthetic populations with a known effect
PERIOD = ("2018-01-01", "2021-12-31")  # horizons of 12 months observed by the export on 2022-12-31


def population(seed: int, effect: float, n: int = 3000):
    """Ten years of data, index days in the last five: the features see years of history."""
    from iizrisk import synth

    return synth.generate(n, "2014-01-01", "2022-12-31", seed=seed, effect=effect)


def run_default(seed: int, effect: float, n: int = 3000):
    """The default study on one population: (estimate, lower, upper, truth, naive, naive lower, naive upper)."""
    pop = population(seed, effect, n)
    study = AssessmentStudy(outcomes=["revolving_door"], period=PERIOD, random_state=seed).fit(
        pop.spells, pop.interventions)
    col = "revolving_door_next_12m"
    s = study.summary.loc[col]
    est = study.estimators_[col]
    ids = study.table_.loc[est.pairs_["treated"], "person_id"]
    truth = pop.truth.set_index("person_id").loc[ids]
    true_att = float((truth["rd_12m"].astype(float) - truth["rd_12m_cf"].astype(float)).mean())
    return (s["estimate"], s["lower 95%"], s["upper 95%"], true_att, s["naive"], s["naive lower 95%"],
            s["naive upper 95%"])


@pytest.fixture(scope="module")
def small_study():
    pop = population(11, 0.3, n=2000)
    study = AssessmentStudy(outcomes=["revolving_door", "days_registered_next_12m"], period=PERIOD,
                            n_bootstrap=100, random_state=0).fit(pop.spells, pop.interventions)
    return pop, study


def test_study_results_and_presentation(small_study):
    import io

    pop, study = small_study
    s = study.summary
    assert list(s.index) == ["revolving_door_next_12m", "days_registered_next_12m"]
    assert {"estimate", "se", "lower 95%", "upper 95%", "naive", "n_treated", "mean_if_untreated"} <= set(s.columns)
    assert (s["lower 95%"] <= s["estimate"]).all() and (s["estimate"] <= s["upper 95%"]).all()
    est = study.estimators_["revolving_door_next_12m"]
    pairs = study.table_.loc[est.pairs_["treated"]], study.table_.loc[est.pairs_["control"]]
    assert pairs[0]["treated"].all() and not pairs[1]["treated"].any()
    # risk-set matching within the month of the index day
    months = [pd.to_datetime(p["index_date"]).dt.to_period("M").to_numpy() for p in pairs]
    assert (months[0] == months[1]).all()
    assert set(study.survival_) == {"assessed", "matched controls"}
    buf = io.StringIO()
    study.print_summary(file=buf)
    text = buf.getvalue()
    assert "Sustained exit" in text and "contamination" in text and "Assumptions" in text
    assert "AssessmentStudy" in study._repr_html_()
    for ax in (study.plot(), *study.plot_estimates(), study.plot_balance()):
        assert ax.has_data()
    plt.close("all")


def test_every_method_runs_on_the_study_table(small_study):
    _, study = small_study
    for method in ("ipw", "stratification", "regression", "naive"):
        other = AssessmentStudy(outcomes=["days_registered_next_12m"], method=method, n_bootstrap=10,
                                random_state=0).fit_table(study.table_)
        assert np.isfinite(other.summary["estimate"]).all()


def test_cli_writes_suppressed_outputs(small_study, tmp_path):
    from iizrisk.cli import main
    from iizrisk.store import write_parquet_atomic

    pop, _ = small_study
    write_parquet_atomic(pop.spells, tmp_path / "spells.parquet")
    write_parquet_atomic(pop.interventions, tmp_path / "interventions.parquet")
    out = tmp_path / "out"
    args = ["evaluate", "--spells", str(tmp_path / "spells.parquet"), "--interventions",
            str(tmp_path / "interventions.parquet"), "--outcome", "revolving_door", "--outcome",
            "days_registered_next_12m", "--from", PERIOD[0], "--to", PERIOD[1], "--bootstrap", "20",
            "--out", str(out)]
    assert main(args) == 0
    for name in ("estimates.csv", "balance.csv", "survival.csv", "survival.png", "balance.png", "study.json"):
        assert (out / name).exists(), name
    est = read_table(out / "estimates.csv", index_col=0)  # ';' and a BOM, as every table people open
    assert list(est.index) == ["revolving_door_next_12m", "days_registered_next_12m"]
    for name in ("estimates", "balance", "survival"):  # and for programs: Parquet with the same rows and codes
        parquet, csv = pd.read_parquet(out / f"{name}.parquet"), read_table(out / f"{name}.csv")
        assert len(parquet) == len(csv) and set(csv.columns) <= {*parquet.columns, *parquet.index.names}, name
    assert pd.read_parquet(out / "estimates.parquet")["outcome"].tolist() == list(est.index)
    meta = json.loads((out / "study.json").read_text())
    assert "no unmeasured confounding" in meta["assumptions"] and meta["min_cell_size"] == 5
    surv = read_table(out / "survival.csv")
    shown = surv[~surv["suppressed"]]
    assert (shown["at_risk"] >= 5).all() and ((shown["exits"] == 0) | (shown["exits"] >= 5)).all()
    assert surv.loc[surv["suppressed"], ["exits", "at_risk", "cumulative_exit"]].isna().all().all()
    # usage errors are exit code 2, before any data is read
    assert main(["evaluate", "--spells", "nowhere", "--interventions", "nowhere", "--outcome", "nope",
                 "--out", str(tmp_path / "x")]) == 2
    # with a huge minimum cell size nothing is published
    big = tmp_path / "big"
    assert main([*args[:-1], str(big), "--min-cell-size", "1000000", "--language", "it"]) == 0
    assert "Stima" in (big / "estimates.csv").read_text(encoding="utf-8-sig")  # headers in Italian
    est = read_table(big / "estimates.csv", index_col=0)
    assert (est["suppressed"] == "sì").all() and est["estimate"].isna().all() and est["n_treated"].isna().all()
    assert read_table(big / "balance.csv", index_col=0)[["smd_before", "smd_after"]].isna().all().all()
    design = json.loads((big / "study.json").read_text())["diagnostics"][0]["message"]
    assert design.startswith("design: <1000000 assessed at <1000000 index days")


@pytest.mark.parametrize("k", [5, 20])
def test_survival_suppression_never_reveals_a_small_group(small_study, k):
    _, study = small_study
    tab = study.suppressed_survival(k)
    assert tab["suppressed"].any()  # the test data do have small months
    for arm, g in tab.groupby("arm", sort=False):
        km = study.survival_[arm]
        et = km.event_table
        true_exits = np.diff(np.r_[0.0, [et.loc[et.index <= m, "observed"].sum() for m in g["month"]]])
        true_risk = km.at_risk_at_times(g["month"].to_numpy(dtype=float)).to_numpy()
        hidden = g["suppressed"].to_numpy()
        assert (true_risk[~hidden] >= k).all()
        shown_exits = true_exits[~hidden]
        assert ((shown_exits == 0) | (shown_exits >= k)).all()
        # the step between two published months reveals the hidden months' total: 0 or at least k
        run = 0.0
        for h, x in zip(hidden, true_exits, strict=True):
            if h:
                run += x
            else:
                assert run == 0 or run >= k
                run = 0.0
        # numbers at risk are published rounded to a multiple of k (their differences count people)
        shown = g.loc[~g["suppressed"], "at_risk"].astype(int)
        assert (shown % k == 0).all()


# ------------------------------------------------------------------ validation over 20 seeds (slow)
SEEDS = range(20)


@pytest.mark.slow
def test_default_method_covers_the_true_effect_and_the_naive_one_does_not():
    res = np.array([run_default(seed, 0.3) for seed in SEEDS])
    est, lo, hi, truth, naive, nlo, nhi = res.T
    covered = int(((lo <= truth) & (truth <= hi)).sum())
    naive_covered = int(((nlo <= truth) & (truth <= nhi)).sum())
    print(f"\ncoverage {covered}/20, mean bias {np.mean(est - truth):+.4f}, mean width {np.mean(hi - lo):.4f}; "
          f"naive coverage {naive_covered}/20, mean naive bias {np.mean(naive - truth):+.4f}; "
          f"mean true ATT {np.mean(truth):+.4f}")
    assert covered >= 17
    # the naive comparison is visibly biased: the assessed are the complex cases
    assert naive_covered <= 10
    bias = naive - truth
    assert bias.mean() > 4 * bias.std(ddof=1) / np.sqrt(len(bias))
    assert abs(np.mean(est - truth)) < bias.mean() / 3


@pytest.mark.slow
def test_default_method_finds_no_effect_where_there_is_none():
    res = np.array([run_default(seed, 0.0) for seed in SEEDS])
    est, lo, hi, truth, *_ = res.T
    assert (truth == 0).all()
    rejected = int(((lo > 0) | (hi < 0)).sum())
    print(f"\nnull: {rejected}/20 intervals exclude 0; mean estimate {est.mean():+.4f}")
    # binomial(20, 0.05): P(X >= 4) = 1.6%
    assert rejected <= 3


def test_a_single_covariate_name_is_one_column(small_study):
    # a string was split into its letters (list("age") == ["a", "g", "e"]): "column(s) ['n', '_', ...] missing"
    _, study = small_study
    one = AssessmentStudy(outcomes=["revolving_door"], covariates="n_institutions_now", n_bootstrap=0,
                          random_state=0).fit_table(study.table_)
    assert one.covariates_ == ["n_institutions_now"]
    listed = AssessmentStudy(outcomes=["revolving_door"], covariates=["n_institutions_now"], n_bootstrap=0,
                             random_state=0).fit_table(study.table_)
    pd.testing.assert_frame_equal(one.summary, listed.summary)


def test_a_study_without_estimates_still_summarises_and_writes(small_study, tmp_path):
    # nothing matched within a zero caliper: summary had no columns and write_outputs (now to_dir) raised KeyError
    import io

    _, study = small_study
    none = AssessmentStudy(outcomes=["revolving_door"], caliper=0.0, n_bootstrap=0,
                           random_state=0).fit_table(study.table_)
    if none.estimators_:  # pragma: no cover - the zero caliper matched someone after all
        pytest.skip("a zero caliper found matches")
    assert none.summary.empty and "n_treated" in none.summary.columns
    paths = none.to_dir(tmp_path, min_cell_size=5)
    assert {p.name for p in paths} >= {"estimates.csv", "study.json"}
    none.print_summary(file=io.StringIO())


# ------------------------------------------------------------------ episodes (time zero of the risk sets)
def ref_episode_days(rows, person, day: dt.date):
    """Days since the latest start of an ALV/IV/SH spell or the day after the latest end of one (slow).

    Spells are merged first: rows of one institution that overlap or touch are one spell.
    """
    events = []
    merged = []
    for inst in ("ALV", "IV", "SH"):
        own = sorted((s, 10 ** 9 if e is None else e) for p, i, s, e, _ in rows if p == person and i == inst)
        for s, e in own:
            if merged and merged[-1][0] == inst and s <= merged[-1][2] + 1:
                merged[-1] = (inst, merged[-1][1], max(merged[-1][2], e))
            else:
                merged.append((inst, s, e))
    for _, s, e in merged:
        e = None if e == 10 ** 9 else e
        if D(s) <= day:
            events.append(D(s))
        if e is not None and D(e) + dt.timedelta(days=1) <= day:
            events.append(D(e) + dt.timedelta(days=1))
    return float((day - max(events)).days) if events else float("nan")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_days_since_episode_start_equals_the_slow_reference(data):
    from iizrisk.evaluation._study import days_since_episode_start

    n = data.draw(st.integers(1, 25))
    rows = []
    for _ in range(n):
        s = data.draw(st.integers(0, 600))
        e = data.draw(st.one_of(st.none(), st.integers(s, s + 200)))
        rows.append((f"p{data.draw(st.integers(0, 3))}", data.draw(st.sampled_from(INSTS)), s, e, None))
    spells, _ = to_frames(rows, [])
    qs = [(f"p{data.draw(st.integers(0, 4))}", data.draw(st.integers(0, 900))) for _ in range(8)]
    got = days_since_episode_start(spells, [p for p, _ in qs], [D(d) for _, d in qs])
    want = [ref_episode_days(rows, p, D(d)) for p, d in qs]
    np.testing.assert_array_equal(got, np.array(want))


def test_episode_days_limits_the_risk_set_to_people_who_could_be_assessed():
    spells, interventions = random_study_data(5, 40, 200, 20, 0.2)
    kw = {"controls_per_treated": None, "outcomes": ["revolving_door"], "observed_until": LAST,
          "feature_options": {}, "random_state": 0}
    full = risk_set_table(spells, interventions, **kw)
    lim = risk_set_table(spells, interventions, episode_days=(14, 90), **kw)
    ep = full["days_since_episode_start"]
    inside = (ep >= 14) & (ep <= 90)
    # the same rows as the full risk sets limited to the window, on the days an assessed person is inside it
    # (every such day of the full table, and no other day with an assessed row)
    days = set(lim["index_date"])
    assert set(full.loc[full["treated"] & inside, "index_date"]) <= days
    assert set(lim.loc[lim["treated"], "index_date"]) <= set(full.loc[full["treated"] & inside, "index_date"])
    want = full[inside & full["index_date"].isin(days)]
    assert len(lim) and len(lim) < len(full)
    assert set(zip(lim["person_id"], lim["index_date"], lim["treated"], strict=True)) == \
        set(zip(want["person_id"], want["index_date"], want["treated"], strict=True))
    assert "days_since_episode_start" in lim.attrs["covariates"]
    assert "days_since_episode_start" not in full.attrs["covariates"]
    assert lim.attrs["episode_days"] == [14, 90] and full.attrs["episode_days"] is None
    with pytest.raises(ValueError, match="episode_days"):
        risk_set_table(spells, interventions, episode_days=(90, 14), **kw)


def test_the_survival_figure_leaves_a_hidden_month_blank_instead_of_carrying_the_level_through_it():
    """Months 19-24 of the assessed are hidden: no drawn line covers them (the table's month 25 may lie far
    above month 18's level), each published month's value lasts to the next month, and a note says why."""
    from iizrisk.evaluation._outputs import plot_survival_table

    m = np.arange(30)
    rows = [pd.DataFrame({"arm": arm, "month": m, "cumulative_exit": np.minimum(1, 0.03 * m + off),
                          "lower": 0.0, "upper": 1.0, "suppressed": hidden})
            for arm, off, hidden in (("assessed", 0.0, (m >= 19) & (m <= 24)),
                                     ("matched controls", 0.1, np.zeros(30, bool)))]
    fig = plot_survival_table(pd.concat(rows), ylabel="exit", title="t")
    ax = fig.axes[0]
    assessed = [line for line in ax.get_lines() if line.get_color() == ax.get_lines()[0].get_color()]
    spans = sorted((float(line.get_xdata().min()), float(line.get_xdata().max())) for line in assessed)
    assert spans == [(0.0, 19.0), (25.0, 30.0)]  # month 18 lasts to 19; nothing over 19..25
    assert any("hidden" in t.get_text() for t in fig.texts)
    whole = [line for line in ax.get_lines() if line not in assessed]
    assert [(line.get_xdata().min(), line.get_xdata().max()) for line in whole] == [(0, 30)]


@pytest.mark.parametrize("language", ["fr", "de", "it"])
def test_the_studys_tables_in_a_language_name_every_column_and_round(small_study, tmp_path, language):
    """Every header of the three tables a person opens is a name, not a code (the interval bounds, the balance
    before and after, the variance ratios), the arms are named, and effects are rounded to 0.0001."""
    import csv
    import io
    import re

    from iizrisk.tables import header, value_name

    _, study = small_study
    study.to_dir(tmp_path, language=language, plots=False)
    for name in ("estimates", "balance", "survival"):
        rows = list(csv.reader(io.StringIO((tmp_path / f"{name}.csv").read_text(encoding="utf-8-sig")),
                               delimiter=";"))
        codes = [h for h in rows[0] if re.fullmatch(r"[a-z0-9_ %]+", h) and h != "SMD"]
        assert codes == [], (name, codes)
        if name == "survival":
            assert {r[0] for r in rows[1:]} == {value_name("arm", a, language) for a in ("assessed", "matched controls")}
    est = list(csv.reader(io.StringIO((tmp_path / "estimates.csv").read_text(encoding="utf-8-sig")), delimiter=";"))
    effect = est[1][est[0].index(header("estimate", language))]
    assert len(effect.split(".")[-1]) <= 4
    # outcomes and covariates in words (they were codes: revolving_door_next_12m, days_alv_24m); Parquet: codes
    from iizrisk._texts import load_locale
    from iizrisk.evaluation._study import outcome_description, study_feature_options

    machine = {n: pd.read_parquet(tmp_path / f"{n}.parquet").iloc[:, 0].tolist() for n in ("estimates", "balance")}
    assert [r[0] for r in est[1:]] == [outcome_description(c, language) for c in machine["estimates"]]
    assert est[1][0] == load_locale(language)["table"]["study_outcomes"]["revolving_door"].format(months=12)
    bal = list(csv.reader(io.StringIO((tmp_path / "balance.csv").read_text(encoding="utf-8-sig")), delimiter=";"))
    named = [r[0] for r in bal[1:]]
    assert len(named) == len(machine["balance"]) and not set(named) & set(machine["balance"]), named
    specs = {s.name: s for s in PointInTimeFeatures(**study_feature_options(study.feature_options)).fit().specs_}
    for code, words in zip(machine["balance"], named, strict=True):
        base = code.removesuffix("_missing")
        assert words == (specs[code].description(language) if code in specs
                         else specs[base].sentence(None, language)), (code, words)


def test_cli_from_without_to_studies_up_to_the_data(small_study, tmp_path):
    """--from alone is a period open at its end (it was refused naming a date nobody typed, 2999-12-31)."""
    from iizrisk.cli import main
    from iizrisk.store import write_parquet_atomic

    pop, _ = small_study
    write_parquet_atomic(pop.spells, tmp_path / "spells.parquet")
    write_parquet_atomic(pop.interventions, tmp_path / "interventions.parquet")
    args = ["evaluate", "--spells", str(tmp_path / "spells.parquet"), "--interventions",
            str(tmp_path / "interventions.parquet"), "--outcome", "revolving_door", "--from", PERIOD[0],
            "--bootstrap", "5", "--out", str(tmp_path / "out")]
    assert main(args) == 0
    assert (tmp_path / "out" / "estimates.csv").exists()


def test_the_studys_written_plots_name_outcomes_and_covariates_by_their_rows(small_study):
    """The tables written beside the plots carry the outcome and the covariate as a first column; the plots
    took the row numbers as names: panels titled "0" and "1", the days registered drawn on a scale of
    percentage points (x 100), and covariates "14", "19" in the balance plot and its verdict."""
    import re

    from iizrisk.evaluation._study import outcome_description

    _, study = small_study
    tables = study._output_tables(5)
    figures = {f.name: f.figure for f in study._output_figures(tables, "en")}
    est = tables[0].frame.set_index("outcome")
    published = est.index[~est["suppressed"]].tolist()
    panels = figures["estimates"].axes
    assert [ax.get_title(loc="left") for ax in panels] == [
        f"{outcome_description(code, 'en')} ({code})" for code in published]
    days = panels[published.index("days_registered_next_12m")]
    assert "days registered" in days.get_xlabel() and "percentage points" not in days.get_xlabel()
    adjusted = [line.get_xdata() for line in days.get_lines() if len(line.get_xdata()) == 2
                and list(line.get_ydata()) == [1, 1]]  # the adjusted interval, on the days' own scale
    row = est.loc["days_registered_next_12m"]
    assert [list(x) for x in adjusted] == [[pytest.approx(row["lower_95"]), pytest.approx(row["upper_95"])]]
    codes = tables[1].frame.loc[~tables[1].frame["suppressed"], "covariate"].tolist()
    ticks = [t.get_text() for t in figures["balance"].axes[0].get_yticklabels()]
    assert len(ticks) == min(len(codes), 40) and not any(t.isdigit() for t in ticks)
    words = {(study._covariate_description(c, "en") or c) for c in codes}
    assert all(t.replace("\n", " ") in words or t.endswith("...") for t in ticks), ticks
    verdict = " ".join(t.get_text() for t in figures["balance"].axes[0].texts)
    assert not re.search(r"after [a-z -]+: \d+ \(", verdict), verdict
    plt.close("all")


def _figure_words(fig) -> str:
    """Every word a figure shows: titles, axis labels, ticks, legends, notes and annotations."""
    words = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        words += [ax.get_title(), ax.get_title(loc="left"), ax.get_xlabel(), ax.get_ylabel()]
        words += [t.get_text() for t in (*ax.get_xticklabels(), *ax.get_yticklabels(), *ax.texts)]
        if ax.get_legend() is not None:
            words += [t.get_text() for t in ax.get_legend().get_texts()]
    return "\n".join(words)


@pytest.mark.parametrize("language", ["de", "fr", "it"])
def test_the_studys_plots_speak_the_language_of_its_tables(small_study, language):
    """`evaluate --language de` wrote German tables beside English plots ("Sustained exit", "months since the
    index day", "naive", "adjusted", "Covariate balance ... after propensity-score matching")."""
    from iizrisk._texts import load_locale

    _, study = small_study
    words = "\n".join(_figure_words(f.figure) for f in study._output_figures(study._output_tables(5), language))
    english = load_locale("en")["study_plot"]
    for key in ("months_since", "naive", "adjusted", "before", "after", "smd_axis"):
        assert english[key] not in words.split("\n"), (key, language)
    assert "Sustained exit" not in words and "Covariate balance" not in words and "assessed minus" not in words
    own = load_locale(language)["study_plot"]
    assert own["months_since"] in words and own["smd_axis"] in words and own["adjusted"] in words
    assert own["methods"][type(next(iter(study.estimators_.values()))).__name__] in words
    plt.close("all")
