"""Model selection over time: splits that never see the evaluation period, lists, the stated rule, the command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iizrisk import _time
from iizrisk.errors import ConfigError, ValidationError
from iizrisk.selection import (
    SelectionResult,
    SelectionRule,
    Spec,
    check_years,
    default_grid,
    flag_rate_ratios,
    jaccard,
    load_spec,
    person_attributes,
    rolling_evaluation,
    rolling_splits,
    snapshot_dates,
    snapshot_months,
    top_k_mask,
)

MONTH_ENDS = pd.date_range("2016-01-31", "2023-12-31", freq="ME")


# ------------------------------------------------------------------ splits
@settings(max_examples=40, deadline=None)
@given(every=st.integers(1, 6), years=st.integers(1, 3), test=st.integers(1, 4), gap=st.integers(0, 18))
def test_no_training_label_reaches_the_evaluation_period(every, years, test, gap):
    splits = rolling_splits(MONTH_ENDS, every_months=every, years=years, test_months=test, gap_months=gap,
                            horizon_months=12, observed_until="2023-12-31", train_months=24)
    assert len(splits) >= 1 and splits["origin"].is_monotonic_increasing
    last_labelled = max(d for d in MONTH_ENDS if d + pd.DateOffset(months=12) <= pd.Timestamp("2023-12-31"))
    for _, s in splits.iterrows():
        first_test = min(s["test_dates"])
        assert s["origin"] == first_test and len(s["test_dates"]) == test
        assert max(s["test_dates"]) <= last_labelled
        for d in s["train_dates"]:  # the horizon of every training label ends before the first test date
            assert d + pd.DateOffset(months=gap) < first_test
    # origins every `every` months
    months = [o.year * 12 + o.month for o in splits["origin"]]
    assert all(b - a == every for a, b in zip(months, months[1:], strict=False))


@pytest.mark.parametrize("observed_until, last_labelled", [("2023-12-31", "2022-12-31"), ("2023-12-30", "2022-11-30")])
def test_the_last_split_ends_at_the_last_month_end_whose_horizon_is_observed(observed_until, last_labelled):
    """A horizon ending on the last observed day is observed: that month end is the last split's last."""
    splits = rolling_splits(MONTH_ENDS, every_months=3, years=1, test_months=3, gap_months=12, horizon_months=12,
                            observed_until=observed_until, train_months=24)
    assert max(splits.iloc[-1]["test_dates"]) == pd.Timestamp(last_labelled)
    assert all(max(s) <= pd.Timestamp(last_labelled) for s in splits["train_dates"])


def test_too_short_a_dataset_is_refused_with_the_reason():
    with pytest.raises(ValidationError, match="no split fits|too few"):
        rolling_splits(MONTH_ENDS[:10], gap_months=12, horizon_months=12, observed_until="2017-06-30")


# ------------------------------------------------------------------ the month ends select --spells builds
@pytest.fixture(scope="module")
def long_history(tmp_path_factory):
    """A small synthetic canton whose first spell lies decades back (1983; 1975 at national scale)."""
    from iizrisk.synth import generate

    pop = generate(300, "2016-01-01", "2022-12-31", seed=5, canton="BE")
    path = tmp_path_factory.mktemp("history") / "spells.parquet"
    pop.spells.to_parquet(path)
    return pop.spells, path


def _select_asks_for(monkeypatch, argv: list[str]) -> tuple[int, list[list[pd.Timestamp]]]:
    """Run ``iizrisk select`` up to the snapshot build, which records its month ends and stops it."""
    import iizrisk.snapshots
    from iizrisk.cli import main

    asked: list[list[pd.Timestamp]] = []

    def stop(spells, out, *, as_of, **kwargs):
        asked.append([pd.Timestamp(d) for d in as_of])
        raise ConfigError("stopped by the test before building")

    monkeypatch.setattr(iizrisk.snapshots, "build_snapshots", stop)
    return main(["select", *argv]), asked


def test_select_from_spells_builds_only_the_month_ends_its_splits_use(long_history, tmp_path, monkeypatch,
                                                                       capsys):
    """Not every month end since the first spell: the latest labelled ones the splits use, named in a log line.

    As train's default keeps to its last labelled months (73), select's keeps to the 90 its splits can use;
    from the first spell that would be about 450 month ends here (600 at national scale).
    """
    from iizrisk import _time
    from iizrisk.errors import EXIT_USAGE
    from iizrisk.outcomes import observed_until
    from iizrisk.snapshots import default_dates

    spells, path = long_history
    seen = observed_until(spells)
    code, asked = _select_asks_for(monkeypatch, ["--spells", str(path), "--out", str(tmp_path / "sel")])
    assert code == EXIT_USAGE and "stopped by the test" in capsys.readouterr().err
    (dates,) = asked
    assert len(dates) == snapshot_months() == 90
    assert dates == list(pd.date_range(dates[0], dates[-1], freq="ME"))
    labelled = _time.add_months(_time.to_days(pd.DatetimeIndex(dates)), 12) <= seen
    assert labelled.all() and not _time.add_months(_time.day(dates[-1] + pd.offsets.MonthEnd(1)), 12) <= seen
    assert spells["start_date"].min() < dates[0] - pd.DateOffset(years=20)
    # the splits over these month ends are those over every month end since the first spell
    every = default_dates(spells)
    assert len(every) > 4 * len(dates)
    kw = dict(horizon_months=12, observed_until=_time.to_date(seen))
    pd.testing.assert_frame_equal(rolling_splits(dates, **kw), rolling_splits(every, **kw))
    # other settings, other month ends; the log line names the range and why
    code, asked = _select_asks_for(monkeypatch, ["--spells", str(path), "--out", str(tmp_path / "sel"),
                                                 "--years", "1", "--train-months", "18", "--horizon-months", "6"])
    err = capsys.readouterr().err
    (dates,) = asked
    assert len(dates) == snapshot_months(years=1, train_months=18, horizon_months=6) == 48
    assert f"select: snapshots at 48 month ends, {dates[0].date()} to {dates[-1].date()}" in err
    assert "6-month horizon is observed" in err and "iizrisk snapshots --from/--to" in err
    assert dates == snapshot_dates(spells, years=1, train_months=18, horizon_months=6)


def test_select_from_too_short_an_export_is_refused_naming_its_period(long_history, tmp_path, monkeypatch,
                                                                      capsys):
    """Month ends after the burn-in, but none labelled: refused before anything is built, with the data's period."""
    from iizrisk.errors import EXIT_INVALID_INPUT
    from iizrisk.snapshots import default_dates

    spells, _ = long_history
    recent = spells[spells["start_date"] >= "2020-01-01"]
    assert len(default_dates(recent)) >= 10  # snapshots could be built, but no split could learn from them
    recent.to_parquet(tmp_path / "recent.parquet")
    code, asked = _select_asks_for(monkeypatch, ["--spells", str(tmp_path / "recent.parquet"),
                                                 "--out", str(tmp_path / "sel")])
    err = capsys.readouterr().err
    assert code == EXIT_INVALID_INPUT and asked == []
    assert "no month end whose 12-month horizon is observed to snapshot: the spells start on 2020-01-" in err
    assert "observed until 2022-12-" in err and "the export is too short" in err
    with pytest.raises(ValidationError, match="the export is too short"):
        snapshot_dates(recent)


# ------------------------------------------------------------------ lists
def _top_k_slow(score, days, k, seed=0):
    tie = np.random.default_rng(seed).random(len(score))
    out = np.zeros(len(score), dtype=bool)
    for d in set(days):
        rows = [i for i in range(len(score)) if days[i] == d]
        rows.sort(key=lambda i: (-score[i], tie[i]))
        for i in rows[:k]:
            out[i] = True
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0.0, 0.1, 0.5, 0.7, 1.0])), max_size=40),
       st.integers(1, 5))
def test_top_k_equals_the_obvious_loop(rows, k):
    days = np.array([r[0] for r in rows], dtype=np.int64)
    score = np.array([r[1] for r in rows], dtype=float)
    assert (top_k_mask(score, days, k=k) == _top_k_slow(score, days, k)).all()


@given(st.sets(st.integers(0, 20)), st.sets(st.integers(0, 20)))
def test_jaccard_is_the_set_formula(a, b):
    want = 1.0 if not (a | b) else len(a & b) / len(a | b)
    assert jaccard([str(x) for x in a], [str(x) for x in b]) == pytest.approx(want)


# ------------------------------------------------------------------ the rule, on a hand-made table
def _result(values: dict[str, list[tuple[float, float, float]]]) -> SelectionResult:
    """(precision, ece, jaccard_previous) per split and spec."""
    rows = []
    for name, per_split in values.items():
        for i, (p, e, j) in enumerate(per_split):
            rows.append({"split": i, "origin": pd.Timestamp("2022-01-31") + pd.offsets.MonthEnd(3 * i), "spec": name,
                         "precision_at_k": p, "recall_at_k": p / 3, "average_precision": p, "roc_auc": 0.8,
                         "brier": 0.04, "ece": e, "jaccard_previous": j, "jaccard_reference": 1.0})
    n = len(next(iter(values.values())))
    splits = pd.DataFrame({"split": range(n), "origin": [pd.Timestamp("2022-01-31") + pd.offsets.MonthEnd(3 * i)
                                                          for i in range(n)]})
    specs = [Spec(n) if not n.startswith("bfs") else Spec(n, "bfs_rule") for n in values]
    return SelectionResult(metrics=pd.DataFrame(rows), splits=splits, specs=specs,
                           jaccard_between=pd.DataFrame(), info={"random_state": 0})


def test_the_rule_chooses_the_best_eligible_and_names_runner_up_margin_and_exclusions():
    res = _result({"boosting": [(0.30, 0.01, 0.5), (0.32, 0.02, 0.5)],
                   "greedy": [(0.50, 0.01, 0.5), (0.52, 0.08, 0.5)],       # best, but miscalibrated once
                   "steady": [(0.33, 0.01, 0.6), (0.35, 0.02, 0.6)],
                   "jumpy": [(0.40, 0.01, 0.5), (0.40, 0.01, 0.05)],       # unstable list
                   "bfs_rule": [(0.60, 0.00, 0.9), (0.60, 0.00, 0.9)]})    # a yardstick, never chosen
    sel = res.select(SelectionRule(max_ece=0.03, min_jaccard=0.1))
    assert sel.chosen.name == "steady" and sel.runner_up.name == "boosting"
    assert sel.margin == pytest.approx(0.34 - 0.31)
    assert "greedy" in sel.why and "ECE 0.080 > 0.03 on split(s) [1]" in sel.why
    assert "jumpy" in sel.why and "Jaccard" in sel.why
    assert "Runner-up: boosting" in sel.why and "margin 0.030" in sel.why
    assert sel.info["last_split"] == {"chosen": 0.35, "reference": 0.32, "reference_spec": "boosting"}
    # without the constraints the best mean wins
    assert res.select(SelectionRule(max_ece=None)).chosen.name == "greedy"
    regret = res.regret()
    assert (regret >= 0).all().all() and (regret.min(axis=1) == 0).all()
    assert regret.loc[0, "boosting"] == pytest.approx(0.30)  # the bfs rule's 0.60 is the best of split 0


def test_no_eligible_spec_is_a_validation_error_naming_why():
    res = _result({"boosting": [(0.3, 0.2, 0.5)], "logistic": [(0.2, 0.1, 0.5)]})
    with pytest.raises(ValidationError, match="boosting: ECE 0.200"):
        res.select(SelectionRule(max_ece=0.03))


def test_only_yardsticks_is_a_validation_error_naming_them():
    res = _result({"bfs_rule": [(0.3, 0.0, 0.5)]})
    with pytest.raises(ValidationError, match=r"no specification that can be deployed.*'bfs_rule'.*--specs"):
        res.select(SelectionRule())


def test_a_split_without_outcomes_is_refused_naming_the_split_and_the_fix(canton):
    """Too few persons for a split: a ValidationError naming the split and the fix, never a crash."""
    _, snaps, _ = canton
    kw = dict(grid=[Spec("boosting", params={"max_iter": 5})], every_months=3, years=1, test_months=2,
              train_months=18, capacity=10, n_threads=1, progress=False)
    for persons in (1, 15):
        with pytest.raises(ValidationError, match=r"split \d+ \(origin \d{4}-\d\d-\d\d\).*"
                                                  r"persons") as info:
            rolling_evaluation(snaps, max_persons=persons, **kw)
        assert "person(s)" in str(info.value)


def test_rule_from_toml_and_its_checks(tmp_path):
    p = tmp_path / "rule.toml"
    p.write_text('[selection]\nmetric = "average_precision"\nmax_ece = 0.05\nmin_jaccard = 0.2\n')
    assert SelectionRule.from_toml(p) == SelectionRule("average_precision", 0.05, 0.2)
    p.write_text('[selection]\nmetrc = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        SelectionRule.from_toml(p)
    with pytest.raises(ConfigError, match="choose one of"):
        SelectionRule(metric="accuracy")
    with pytest.raises(ConfigError, match="from 0 to 1"):
        SelectionRule(max_ece=3)


def test_only_deployable_specs_load_for_training(tmp_path):
    grid = {s.name: s for s in default_grid(groups=["history", "person"])}
    assert grid["boosting_deep"].deployable and grid["boosting_without_history"].deployable  # train(drop_groups=)
    assert not grid["bfs_rule"].deployable and not grid["last_list"].deployable
    p = tmp_path / "selected.json"
    p.write_text(json.dumps({"spec": grid["bfs_rule"].to_dict()}))
    with pytest.raises(ConfigError, match="cannot be trained"):
        load_spec(p)
    p.write_text(json.dumps({"spec": grid["boosting_without_history"].to_dict()}))
    assert load_spec(p) == grid["boosting_without_history"]
    p.write_text(json.dumps({"spec": grid["boosting_deep"].to_dict()}))
    assert load_spec(p) == grid["boosting_deep"]
    with pytest.raises(ConfigError, match="unknown model parameter"):
        Spec("x", params={"depth": 3})


def test_a_choice_made_for_another_outcome_or_without_its_kind_is_refused(tmp_path):
    """A damaged or mismatched selected.json trained something else without a word (exit 0)."""
    p = tmp_path / "selected.json"
    logistic = {"name": "logistic", "kind": "logistic", "params": {}, "drop_groups": []}
    p.write_text(json.dumps({"spec": {k: v for k, v in logistic.items() if k != "kind"}}))
    with pytest.raises(ConfigError, match="lacks its name or kind"):
        load_spec(p)  # it would have become a boosting model
    p.write_text(json.dumps({"spec": logistic, "outcome": "disintegration", "horizon_months": 12}))
    with pytest.raises(ConfigError, match="made for outcome 'disintegration', not 'revolving_door'"):
        load_spec(p, outcome="revolving_door", horizon_months=12)
    with pytest.raises(ConfigError, match="made for horizon_months 12, not 24.*--horizon-months 12"):
        load_spec(p, outcome="disintegration", horizon_months=24)
    assert load_spec(p, outcome="disintegration", horizon_months=12).kind == "logistic"
    assert load_spec(p).kind == "logistic"  # a caller who does not say what it trains is not checked


# ------------------------------------------------------------------ fairness gaps
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["sex", "age_band"]), st.sampled_from(["a", "b", "c"]),
                          st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=12),
       st.integers(1, 40))
def test_flag_rate_ratios_equal_the_obvious_loop(cells, min_group):
    counts = pd.DataFrame([(a, g, n + f, f) for a, g, n, f in cells], columns=["attribute", "group", "n", "flagged"])
    got = flag_rate_ratios(counts, min_group=min_group)
    for attr in set(counts["attribute"]):
        pooled = {}
        for a, g, n, f in counts.itertuples(index=False):
            if a == attr:
                pn, pf = pooled.get(g, (0, 0))
                pooled[g] = (pn + n, pf + f)
        big = {g: v for g, v in pooled.items() if v[0] >= min_group}
        mine = got[got["attribute"] == attr]
        if not big:
            assert not len(mine)
            continue
        ref = sorted(big, key=lambda g: (-big[g][0], g))[0]  # the largest group (then by name)
        base = big[ref][1] / big[ref][0]
        want = {g: (f / n / base if base > 0 else np.nan) for g, (n, f) in big.items() if g != ref}
        assert dict(zip(mine["group"], mine["reference"], strict=True)) == {g: ref for g in want}
        for g, r in zip(mine["group"], mine["ratio"], strict=True):
            assert (np.isnan(r) and np.isnan(want[g])) or r == pytest.approx(want[g])
        finite = {g: abs(np.log(r)) for g, r in want.items() if not np.isnan(r) and r > 0}
        worst = mine.loc[mine["worst"], "group"].tolist()
        assert len(worst) == (1 if want else 0)
        if finite and all(r > 0 for r in want.values() if not np.isnan(r)):
            assert abs(np.log(want[worst[0]])) == pytest.approx(max(finite.values()))


def test_the_rule_keeps_flag_rate_ratios_within_their_bounds():
    res = _result({"boosting": [(0.30, 0.01, 0.5), (0.32, 0.01, 0.5)],
                   "unfair": [(0.40, 0.01, 0.5), (0.40, 0.01, 0.5)]})
    rows = []
    for split in (0, 1):
        for spec, f_flagged in (("boosting", 9), ("unfair", 2)):  # "unfair" flags women far less often
            rows += [(split, spec, "sex", "F", 100, f_flagged), (split, spec, "sex", "M", 120, 12)]
    res.fairness = pd.DataFrame(rows, columns=["split", "spec", "attribute", "group", "n", "flagged"])
    res.info["fairness_min_group"] = 30
    summ = res.summary
    assert summ.loc["unfair", "flag_ratio_sex"] == pytest.approx(0.2) and summ.loc["boosting",
                                                                                 "flag_ratio_sex"] == pytest.approx(0.9)
    assert res.select(SelectionRule(max_ece=None)).chosen.name == "unfair"
    sel = res.select(SelectionRule(max_ece=None, min_flag_ratio=0.8))
    assert sel.chosen.name == "boosting"
    assert "flag-rate ratio 0.20 by sex outside [0.80, 1.25]" in sel.why
    assert "flag-rate ratios between protected groups within [0.80, 1.25]" in sel.why
    assert SelectionRule(min_flag_ratio=0.5).min_flag_ratio == 0.5
    with pytest.raises(ConfigError, match="above 0"):
        SelectionRule(min_flag_ratio=0)


def test_person_attributes_take_each_persons_latest_known_value():
    rows = pd.DataFrame({"person_id": ["a", "a", "b", "b"], "institution": ["ALV"] * 4,
                         "start_date": pd.to_datetime(["2021-01-01", "2020-01-01", "2020-01-01", "2020-06-01"]),
                         "sex": [None, "F", "M", "M"], "nationality_group": ["CH", "EU_EFTA", None, "THIRD"],
                         "birth_year": [1980, 1980, 1990, 1990]})
    got = person_attributes(rows)
    assert got.loc["a", "sex"] == "F" and got.loc["a", "nationality_group"] == "CH"
    assert got.loc["b", "nationality_group"] == "THIRD" and int(got.loc["b", "birth_year"]) == 1990


# ------------------------------------------------------------------ end to end on a synthetic canton
@pytest.fixture(scope="module")
def canton(tmp_path_factory):
    from iizrisk.snapshots import build_snapshots, default_dates
    from iizrisk.synth import generate

    pop = generate(1500, "2016-01-01", "2022-12-31", seed=5, canton="BE")
    root = tmp_path_factory.mktemp("canton")
    pop.spells.to_parquet(root / "spells.parquet")
    snaps = build_snapshots(pop.spells, root / "snaps", as_of=default_dates(pop.spells, first="2018-01-31"),
                            buckets=1, progress=False)
    return root, snaps, person_attributes(pop.spells)


GRID = [Spec("boosting", params={"max_iter": 30}), Spec("logistic", "logistic"), Spec("bfs_rule", "bfs_rule"),
        Spec("last_list", "last_list"), Spec("boosting_without_history", params={"max_iter": 30},
                                             drop_groups=("history",))]


@pytest.mark.slow
def test_rolling_evaluation_is_complete_reproducible_and_written(canton, tmp_path):
    _, snaps, attributes = canton
    kw = dict(grid=GRID, every_months=3, years=1, test_months=2, train_months=18, capacity=10, n_threads=1,
              attributes=attributes, fairness_min_group=20)
    res = rolling_evaluation(snaps, random_state=3, **kw)
    m = res.metrics
    assert len(res.splits) >= 4 and set(m["spec"]) == {s.name for s in GRID}
    assert len(m) == len(res.splits) * len(GRID)
    cols = ["precision_at_k", "recall_at_k", "average_precision", "roc_auc", "brier", "ece", "jaccard_reference"]
    assert m[cols].notna().all().all()
    # the fairness gaps of every protected attribute, per split and specification, and pooled in the summary
    fair = [f"flag_ratio_{a}" for a in ("sex", "nationality_group", "age_band", "disability")]
    assert set(fair) <= set(m.columns) and set(fair) <= set(res.summary.columns)
    assert res.summary[fair].notna().all().all()
    assert set(res.fairness["attribute"]) == {"sex", "nationality_group", "age_band", "disability"}
    # every split's flagged rows are k per evaluation date (the disability proxy is known for everyone)
    per = res.fairness.groupby(["split", "spec", "attribute"])["flagged"].sum()
    want = res.splits.set_index("split")["test_dates"].map(len).reindex(per.index.get_level_values("split")) * 10
    assert (per.to_numpy() <= want.to_numpy()).all()
    dis = per.index.get_level_values("attribute") == "disability"
    assert (per.to_numpy()[dis] == want.to_numpy()[dis]).all()
    again = rolling_evaluation(snaps, random_state=3, **kw)
    pd.testing.assert_frame_equal(res.metrics, again.metrics)
    pd.testing.assert_frame_equal(res.fairness, again.fairness)
    pd.testing.assert_frame_equal(res.summary, again.summary)
    sel = res.select(SelectionRule(max_ece=0.1))
    assert sel.chosen.deployable and sel.chosen.name in {"boosting", "logistic", "boosting_without_history"}
    assert sel.chosen == again.select(SelectionRule(max_ece=0.1)).chosen
    # the quality target: the chosen spec is not worse than the current default on the last split
    assert sel.info["last_split"]["chosen"] >= sel.info["last_split"]["reference"]
    files = res.to_dir(tmp_path / "out")
    assert {p.name for p in files} >= {"selection_summary.csv", "selection_metrics.parquet", "selection_by_split.png",
                                       "selection_regret.png", "selection_jaccard.csv", "selection_fairness.parquet"}
    ax = res.plot(regret=True)
    assert len(ax.lines) == len(GRID)


@pytest.mark.slow
def test_select_command_then_train_the_choice(canton, tmp_path):
    from iizrisk.cli import main
    from iizrisk.model import read_manifest

    root, snaps, _ = canton
    out = tmp_path / "sel"
    code = main(["select", "--snapshots", str(snaps.path), "--out", str(out), "--specs", "boosting_shallow,logistic",
                 "--years", "1", "--every-months", "6", "--train-months", "18", "--capacity", "10",
                 "--max-ece", "0.2", "--threads", "1", "--language", "fr"])
    assert code == 0
    from iizrisk.tables import read_table

    head = (out / "selection_summary.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert ";" in head and "precision_at_k" not in head  # French headers, Swiss separator
    assert "precision_at_k" in read_table(out / "selection_summary.csv").columns  # read back as codes
    chosen = json.loads((out / "selected.json").read_text())
    assert chosen["spec"]["name"] in {"boosting_shallow", "logistic"} and "Runner-up" in chosen["why"]
    code = main(["train", "--snapshots", str(snaps.path), "--outcome", "revolving_door", "--spec",
                 str(out / "selected.json"), "--out", str(tmp_path / "m"), "--capacity", "10"])
    assert code == 0
    man = read_manifest(tmp_path / "m")
    assert man["model"] == chosen["spec"]["kind"]


def test_a_challenger_worse_on_the_last_split_does_not_replace_the_default():
    """The mean over old splits is not enough: the chosen spec is not worse than the default on the last one."""
    res = _result({"boosting": [(0.30, 0.01, 0.5), (0.30, 0.01, 0.5), (0.40, 0.01, 0.5)],
                   "faded": [(0.60, 0.01, 0.5), (0.60, 0.01, 0.5), (0.35, 0.01, 0.5)],   # best mean, worse now
                   "steady": [(0.33, 0.01, 0.5), (0.33, 0.01, 0.5), (0.41, 0.01, 0.5)]})
    sel = res.select(SelectionRule(max_ece=None))
    assert sel.chosen.name == "steady" and "no worse than the current default boosting" in sel.why
    assert "faded (precision_at_k 0.350 on the last split, worse than the current default boosting (0.400))" \
        in sel.why
    last = sel.info["last_split"]
    assert last["chosen"] >= last["reference"]
    assert res.select(SelectionRule(max_ece=None, hold_last_split=False)).chosen.name == "faded"
    # lower is better for the Brier score: the bound turns round
    res.metrics["brier"] = 1 - res.metrics["precision_at_k"]
    assert res.select(SelectionRule(metric="brier", max_ece=None)).chosen.name == "steady"
    assert res.select(SelectionRule(metric="brier", max_ece=None, hold_last_split=False)).chosen.name == "faded"
    with pytest.raises(ConfigError, match="hold_last_split"):
        SelectionRule(hold_last_split="yes")  # type: ignore[arg-type]


def test_max_train_rows_bounds_every_splits_fit(canton, monkeypatch):
    """Each split's models learn from at most max_train_rows rows; evaluation rows are never sampled."""
    import iizrisk.selection as selection

    _, snaps, _ = canton
    fitted: list[int] = []
    scorer = selection._scorer

    def spying(*args, **kwargs):
        est, use = scorer(*args, **kwargs)
        fit = est.fit

        def fit_and_count(X, y, **kw):
            fitted.append(len(X))
            return fit(X, y, **kw)

        est.fit = fit_and_count
        return est, use

    monkeypatch.setattr(selection, "_scorer", spying)
    grid = [Spec("boosting", params={"max_iter": 20}), Spec("bfs_rule", "bfs_rule")]
    kw = dict(grid=grid, every_months=3, years=1, test_months=2, train_months=18, capacity=10, n_threads=1,
              random_state=3)
    full = rolling_evaluation(snaps, **kw)
    n_full = list(fitted)
    fitted.clear()
    small = rolling_evaluation(snaps, max_train_rows=1500, **kw)
    assert min(n_full) > 1500 and fitted and max(fitted) == 1500
    # the same evaluation rows: the BFS rule does not learn from the rows, so its metrics are unchanged
    a, b = (r.metrics.set_index(["split", "spec"]) for r in (full, small))
    pd.testing.assert_series_equal(a.xs("bfs_rule", level="spec")["precision_at_k"],
                                   b.xs("bfs_rule", level="spec")["precision_at_k"])
    assert not a.xs("boosting", level="spec")["brier"].equals(b.xs("boosting", level="spec")["brier"])


# ------------------------------------------------------------------ options beyond the data (D3, D4, D14)
def test_every_split_can_hold_the_models_calibration_slice():
    """A split whose few training dates all lie within the calibration months would fail inside the model's
    temporal split (an internal error): such older splits are left out like those without training dates."""
    from iizrisk.model._split import temporal_split

    kw = dict(every_months=1, years=7, test_months=1, gap_months=12, horizon_months=12, observed_until="2023-12-31",
              train_months=24)
    every = rolling_splits(MONTH_ENDS, calibration_months=0, **kw)  # no calibration slice: nothing left out for it
    splits = rolling_splits(MONTH_ENDS, calibration_months=6, **kw)

    def fits(train_dates) -> bool:
        try:
            temporal_split(_time.to_days(pd.Series(pd.DatetimeIndex(train_dates))), holdout_months=6, gap_months=12)
        except ValueError:
            return False
        return True

    kept = set(splits["origin"])
    assert 0 < len(splits) < len(every)  # some older splits are left out, the rest kept
    for _, s in every.iterrows():  # exactly those whose training dates cannot hold the calibration slice
        assert (s["origin"] in kept) == fits(s["train_dates"]), s["origin"]


def test_check_years_names_the_period_the_snapshots_cover():
    check_years(MONTH_ENDS, years=2, horizon_months=12, observed_until="2023-12-31")
    with pytest.raises(ConfigError, match=r"--years 50: .*2016-01-31 to 2022-12-31 \(83 months\); give --years 6"):
        check_years(MONTH_ENDS, years=50, horizon_months=12, observed_until="2023-12-31")


def test_select_refuses_too_many_years_and_a_negative_seed_before_any_work(long_history, tmp_path, monkeypatch,
                                                                          capsys):
    from iizrisk.errors import EXIT_USAGE

    _, path = long_history
    code, asked = _select_asks_for(monkeypatch, ["--spells", str(path), "--out", str(tmp_path / "sel"),
                                                 "--years", "50"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and not asked and "--years 50" in err and "give --years" in err
    assert "internal error" not in err and not (tmp_path / "sel").exists()
    with pytest.raises(SystemExit) as exc:
        _select_asks_for(monkeypatch, ["--spells", str(path), "--out", str(tmp_path / "sel"), "--seed", "-1"])
    assert exc.value.code == EXIT_USAGE and "--seed" in capsys.readouterr().err


def test_select_refuses_an_out_that_is_or_lies_in_its_input(small_snapshots, tmp_path, capsys):
    """select wrote its tables into the snapshot dataset it read (or over its spells) without a word."""
    from iizrisk.cli import main
    from iizrisk.errors import EXIT_USAGE

    before = sorted(p.relative_to(small_snapshots.path) for p in small_snapshots.path.rglob("*"))
    for out, words in ((small_snapshots.path, "is the --snapshots input"),
                       (small_snapshots.path / "sel", "lies in the --snapshots dataset")):
        assert main(["select", "--snapshots", str(small_snapshots.path), "--out", str(out)]) == EXIT_USAGE
        assert words in capsys.readouterr().err
    assert sorted(p.relative_to(small_snapshots.path) for p in small_snapshots.path.rglob("*")) == before


@pytest.fixture(scope="module")
def small_snapshots(long_history, tmp_path_factory):
    from iizrisk.snapshots import build_snapshots, default_dates

    spells, _ = long_history
    return build_snapshots(spells, tmp_path_factory.mktemp("small_snaps") / "snaps",
                           as_of=default_dates(spells, horizon_months=6)[-40:], horizon_months=6, buckets=1,
                           progress=False)


def test_select_on_snapshots_refuses_more_years_than_they_hold(small_snapshots, tmp_path, capsys):
    from iizrisk.cli import main
    from iizrisk.errors import EXIT_USAGE

    code = main(["select", "--snapshots", str(small_snapshots.path), "--years", "50", "--specs", "logistic",
                 "--out", str(tmp_path / "sel")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "--years 50" in err and "internal error" not in err
    assert not (tmp_path / "sel").exists()


def test_select_leaves_no_files_when_one_cannot_be_written(small_snapshots, tmp_path, capsys):
    from iizrisk.cli import main
    from iizrisk.errors import EXIT_OS

    out = tmp_path / "sel"
    (out / "selected.json").mkdir(parents=True)  # stands in for a full disk or a write error
    code = main(["select", "--snapshots", str(small_snapshots.path), "--years", "1", "--every-months", "6",
                 "--train-months", "12", "--specs", "logistic,bfs_rule", "--capacity", "10", "--max-ece", "1",
                 "--threads", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_OS, err
    assert sorted(p.name for p in out.iterdir()) == ["selected.json"] and not any((out / "selected.json").iterdir())


def test_a_rule_holding_an_ahv_number_is_refused_naming_the_setting(tmp_path):
    """A reference is copied into selected.json: an AHV number in it is refused, not echoed (D20)."""
    from iizrisk.errors import ConfigError
    from iizrisk.selection import SelectionRule

    rule = tmp_path / "rule.toml"
    for number in ("756.1234.5678.97", "756_6604_8764_70"):
        rule.write_text(f'[selection]\nreference = "{number}"\n', encoding="utf-8")
        with pytest.raises(ConfigError, match=r"\[selection\] reference") as exc:
            SelectionRule.from_toml(rule)
        assert number not in str(exc.value) and "withheld" in str(exc.value)
        with pytest.raises(ConfigError, match=r"\[selection\] reference"):
            SelectionRule(reference=number)
    assert SelectionRule(reference="logistic").reference == "logistic"


@pytest.mark.parametrize("language", ["de", "fr", "it", "en"])
def test_the_selection_plots_speak_the_language_and_keep_the_legend_off_the_lines(language):
    """`select --language fr` wrote its tables in French and its plots in English ("precision_at_k by split"),
    and a dozen specifications' legend lay over the lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from iizrisk._texts import text
    from iizrisk.tables import header

    res = _result({"boosting": [(0.30, 0.01, 0.5), (0.32, 0.02, 0.5)], "logistic": [(0.28, 0.01, 0.5), (0.3, 0.01, 0.5)],
                   "bfs_rule": [(0.2, 0.0, 0.5), (0.21, 0.0, 0.5)]})
    figures = {f.name: f.figure for f in res._output_figures([], language)}
    metric = header("precision_at_k", language)
    by_split, regret = figures["selection_by_split"].axes[0], figures["selection_regret"].axes[0]
    assert by_split.get_title() == text("selection.plot_title", language, metric=metric)
    assert regret.get_title() == text("selection.plot_regret_title", language)
    assert regret.get_ylabel() == text("selection.plot_regret_axis", language, metric=metric)
    assert by_split.get_xlabel() == text("selection.plot_origin", language) and by_split.get_ylabel() == metric
    for ax in (by_split, regret):
        canvas = FigureCanvasAgg(ax.figure)
        canvas.draw()
        legend = ax.get_legend().get_window_extent(canvas.get_renderer())
        assert legend.x0 >= ax.get_window_extent(canvas.get_renderer()).x1  # beside the axes, not on the lines
    if language != "en":
        assert "precision_at_k" not in by_split.get_title() + by_split.get_ylabel()
