"""Snapshot datasets: equal to building everything at once, resumable, never mixed; person samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iizrisk.errors import ConfigError, ValidationError
from iizrisk.features import PointInTimeFeatures
from iizrisk.outcomes import compute_outcome
from iizrisk.snapshots import (
    SnapshotSet,
    build_snapshots,
    default_dates,
    person_bucket,
    person_fraction,
    read_snapshots,
    sample_spells,
)

DATES = ["2022-06-30", "2022-12-31", "2023-06-30"]


@pytest.fixture(scope="module")
def spells(random_spells):
    return random_spells.iloc[:4000].copy()


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_index(level=["as_of", "person_id"])


def test_the_dataset_equals_building_everything_at_once(spells, tmp_path):
    ft = PointInTimeFeatures(merge_gap_days=2)
    snaps = build_snapshots(spells, tmp_path / "s", as_of=DATES, buckets=5, features=ft, horizon_months=6)
    X, labels = snaps.read()
    # the reference: every person at once, labels from the whole data
    ref = PointInTimeFeatures(merge_gap_days=2).fit().transform(spells, as_of=DATES)
    lab = compute_outcome(spells, outcome="revolving_door", horizon_months=6, pairs=ref.index)
    assert len(X) == len(ref) > 0
    pd.testing.assert_frame_equal(_sorted(X), _sorted(ref), check_index_type=False)
    want = pd.Series(pd.array(lab["outcome"].array, dtype="boolean"), index=ref.index, name="outcome")
    pd.testing.assert_series_equal(_sorted(labels)["outcome"], _sorted(want.to_frame())["outcome"],
                                   check_index_type=False)
    assert labels["observed"].dtype == bool


def test_buckets_built_in_processes_are_byte_identical(spells, tmp_path, caplog):
    one = build_snapshots(spells, tmp_path / "one", as_of=DATES, buckets=3, horizon_months=6)
    with caplog.at_level("INFO", logger="iizrisk"):
        two = build_snapshots(spells, tmp_path / "two", as_of=DATES, buckets=3, horizon_months=6, jobs=2)
    assert "3 buckets built in 2 processes" in caplog.text
    files = sorted(p.relative_to(one.path) for p in one.path.rglob("*.parquet"))
    assert len(files) == len(DATES) * 3
    assert files == sorted(p.relative_to(two.path) for p in two.path.rglob("*.parquet"))
    for f in files:
        assert (one.path / f).read_bytes() == (two.path / f).read_bytes(), f
    with pytest.raises(ConfigError, match="jobs must be a whole number"):
        build_snapshots(spells, tmp_path / "bad", as_of=DATES, jobs=0)
    with pytest.raises(ConfigError, match="Dask client"):
        build_snapshots(spells, tmp_path / "bad", as_of=DATES, jobs=2, client=object())
    assert not (tmp_path / "bad").exists()


def test_buckets_are_a_sample_of_persons_with_all_their_snapshots(spells, tmp_path):
    snaps = build_snapshots(spells, tmp_path / "s", as_of=DATES, buckets=4, horizon_months=6)
    X, _ = snaps.read(buckets=[1])
    ids = X.index.get_level_values("person_id")
    assert set(person_bucket(ids.unique(), 4)) == {1}
    Xall, _ = snaps.read()
    everyone = Xall.index.get_level_values("person_id")
    mine = everyone[person_bucket(everyone, 4) == 1]
    assert sorted(mine) == sorted(ids)  # every snapshot of these persons, and no one else's


def test_a_stopped_build_is_finished_by_building_again(spells, tmp_path, monkeypatch):
    import iizrisk.snapshots as mod

    out = tmp_path / "s"
    real = mod.write_parquet_atomic
    calls = {"n": 0}

    def crash_after_four(df, path):
        if calls["n"] == 4:
            raise KeyboardInterrupt  # the operator stops it, or the machine goes down
        calls["n"] += 1
        return real(df, path)

    monkeypatch.setattr(mod, "write_parquet_atomic", crash_after_four)
    with pytest.raises(KeyboardInterrupt):
        build_snapshots(spells, out, as_of=DATES, buckets=3, horizon_months=6)
    partial = SnapshotSet.open(out)
    assert len(partial.missing()) == 9 - 4
    assert not list(out.rglob("*.tmp"))  # a partition is complete or absent
    with pytest.raises(ValidationError, match="partition missing"):
        partial.read()
    monkeypatch.setattr(mod, "write_parquet_atomic", real)
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    done = build_snapshots(spells, out, as_of=DATES, buckets=3, horizon_months=6)
    assert done.missing() == []
    assert all(p.stat().st_mtime_ns == t for p, t in written.items())  # the finished ones are kept
    fresh = build_snapshots(spells, tmp_path / "fresh", as_of=DATES, buckets=3, horizon_months=6)
    for p in fresh.path.rglob("*.parquet"):
        assert p.read_bytes() == (out / p.relative_to(fresh.path)).read_bytes()


def test_a_dataset_never_mixes_two_builds(spells, tmp_path):
    out = tmp_path / "s"
    build_snapshots(spells, out, as_of=DATES, buckets=2, horizon_months=6)
    with pytest.raises(ConfigError, match="horizon_months"):
        build_snapshots(spells, out, as_of=DATES, buckets=2, horizon_months=12)
    with pytest.raises(ConfigError, match="data_fingerprint"):
        build_snapshots(spells.iloc[:-10], out, as_of=DATES, buckets=2, horizon_months=6)
    with pytest.raises(ConfigError, match="no snapshots at"):
        read_snapshots(out, as_of="2021-01-31")
    with pytest.raises(ConfigError, match="not a snapshot dataset"):
        SnapshotSet.open(tmp_path)
    with pytest.raises(ConfigError, match="buckets"):
        build_snapshots(spells, tmp_path / "b", as_of=DATES, buckets=0)


def test_unobserved_horizons_are_kept_but_unlabelled(spells, tmp_path):
    snaps = build_snapshots(spells, tmp_path / "s", as_of=DATES, buckets=2, horizon_months=6,
                            observed_until="2023-03-31")
    _, labels = snaps.read()
    late = labels.index.get_level_values("as_of") == pd.Timestamp("2023-06-30")
    assert late.any() and not labels["observed"][late].any() and labels["outcome"][late].isna().all()
    X, lab = snaps.read(observed_only=True)
    assert lab["observed"].all() and len(X) == labels["observed"].sum() < len(labels)
    assert labels["observed"][~late].any()


@settings(max_examples=50, deadline=None)
@given(ids=st.lists(st.text(alphabet="abcdef0123456789p", min_size=1, max_size=12), min_size=1, max_size=60),
       buckets=st.integers(1, 50))
def test_a_persons_bucket_and_fraction_do_not_depend_on_the_others(ids, buckets):
    b = person_bucket(ids, buckets)
    f = person_fraction(ids)
    assert ((b >= 0) & (b < buckets)).all() and ((f >= 0) & (f < 1)).all()
    for i, pid in enumerate(ids):  # the slow obvious reference: one id at a time
        assert b[i] == person_bucket([pid], buckets)[0]
        assert f[i] == person_fraction([pid])[0]


def test_the_hash_is_pinned():
    # buckets of existing datasets depend on it: a change must be noticed (dataset.json records the method)
    assert person_bucket(["a", "p1", "0" * 64], 1000).tolist() == [504, 377, 637]
    assert person_fraction(["a"])[0] == pytest.approx(0.7562500399656916, abs=1e-15)


def test_samples_are_fixed_nested_and_near_their_size(random_spells):
    n = random_spells["person_id"].nunique()
    small, info = sample_spells(random_spells, n // 10)
    big, _ = sample_spells(random_spells.sample(frac=1.0, random_state=3), n // 4)
    s_ids, b_ids = set(small["person_id"]), set(big["person_id"])
    assert s_ids <= b_ids  # nested, whatever the row order
    assert abs(len(s_ids) - n // 10) < 4 * np.sqrt(n // 10)
    assert info["of_persons"] == n and info["persons"] == len(s_ids)
    # all rows of a sampled person are kept
    assert len(small) == random_spells["person_id"].isin(s_ids).sum()
    whole, info = sample_spells(random_spells, n)
    assert whole is random_spells and info["fraction"] == 1.0
    with pytest.raises(ConfigError):
        sample_spells(random_spells, 0)


# ------------------------------------------------------------------ bounded training
@pytest.fixture(scope="module")
def population():
    from test_model import random_population

    return random_population(2400, seed=4)


@pytest.mark.slow
def test_training_on_a_person_sample_builds_features_for_the_sample_only(population, monkeypatch):
    from iizrisk.model import train

    built = []
    real = PointInTimeFeatures.transform

    def spy(self, spells, **kw):
        built.append(spells["person_id"].nunique())
        return real(self, spells, **kw)

    monkeypatch.setattr(PointInTimeFeatures, "transform", spy)
    model, report = train(population, outcome="revolving_door", max_iter=30, capacity=40, compare=False,
                          max_persons=600)
    n = population["person_id"].nunique()
    sample = model.training_["sample"]
    assert built == [sample["persons"]] and abs(sample["persons"] - 600) < 100 and sample["of_persons"] == n
    assert model.training_["capacity_in_sample"] == round(40 * 600 / n)
    assert "person_fraction" in sample["method"]
    # the manifest carries the sample (what the model card and an auditor read)
    assert report.info["sample"] == sample


@pytest.mark.slow
def test_training_from_snapshots_equals_training_from_spells(population, tmp_path):
    from iizrisk.features import as_of_dates
    from iizrisk.model import train

    direct, rep_direct = train(population, outcome="revolving_door", max_iter=30, capacity=40, compare=False)
    dates = as_of_dates("2016-01-01", "2022-12-31")
    snaps = build_snapshots(population, tmp_path / "s", as_of=dates, buckets=3, horizon_months=12)
    via, rep_via = train(None, snapshots=snaps, outcome="revolving_door", max_iter=30, capacity=40,
                         compare=False)
    assert rep_via.periods == rep_direct.periods
    for k in ("snapshots", "train_rows", "calibration_rows", "validation_rows", "prevalence_train",
              "data_fingerprint"):
        assert rep_via.info[k] == rep_direct.info[k], k
    # the same rows in another order: the fitted models agree closely, not bit for bit
    assert rep_via.metrics.loc["boosting", "roc_auc"] == pytest.approx(
        rep_direct.metrics.loc["boosting", "roc_auc"], abs=0.02)
    assert via.input_info_ == direct.input_info_
    with pytest.raises(ValueError, match="disintegration"):
        train(None, snapshots=snaps, outcome="disintegration")
    sampled, rep = train(None, snapshots=snaps, outcome="revolving_door", max_iter=30, capacity=40,
                         compare=False, max_persons=500)
    assert rep.info["snapshots"] < rep_via.info["snapshots"] and rep.info["sample"]["persons"] < 700


def test_default_dates_keep_to_the_data(spells, caplog):
    """--from before the first start and --to after the last observed day are narrowed to the data."""
    from iizrisk import _time
    from iizrisk.outcomes import observed_until

    first = spells["start_date"].min()
    seen = pd.Timestamp(_time.to_date(observed_until(spells)))
    inside = default_dates(spells, first="2022-01-01", last="2022-12-31")
    assert inside == list(pd.date_range("2022-01-31", "2022-12-31", freq="ME"))
    with caplog.at_level("INFO", logger="iizrisk"):
        wide = default_dates(spells, first="1900-01-01", last="2199-12-31")
    assert wide == list(pd.date_range(first, seen, freq="ME"))
    assert wide[0] >= first and wide[0] - first < pd.Timedelta(days=31)
    assert wide[-1] <= seen and seen - wide[-1] < pd.Timedelta(days=31)
    assert "the first start" in caplog.text and "the last observed day" in caplog.text
    with pytest.raises(ConfigError, match=r"no month end between .* the spells start on .* observed until"):
        default_dates(spells, first="2199-01-01", last="2199-12-31")
    with pytest.raises(ValidationError, match="the export is too short"):
        default_dates(spells.iloc[:1])


def test_a_far_to_gives_the_same_last_month_end_as_the_default(spells, caplog):
    """Point in time: an explicit --to after the data ends where the default ends, never after the observed day.

    The fixture's export is observed until 2024-03-19: its month end 2024-03-31 would need the 12 days after it.
    """
    from iizrisk import _time
    from iizrisk.outcomes import observed_until

    seen = pd.Timestamp(_time.to_date(observed_until(spells)))
    assert seen != seen + pd.offsets.MonthEnd(0)  # observed until mid-month: the case that differed
    default = default_dates(spells)
    with caplog.at_level("INFO", logger="iizrisk"):
        far = default_dates(spells, last="2199-12-31")
        month_end = default_dates(spells, last=seen + pd.offsets.MonthEnd(0))
    assert far == default and month_end == default
    assert far[-1] <= seen and far[-1] == seen - pd.offsets.MonthEnd(1)
    assert f"up to {seen.date()}, the last observed day, not 2199-12-31" in caplog.text
    # an as-of date on the observed day itself is fully observed and kept
    on_day = spells.assign(recorded_date=pd.Timestamp("2024-02-29"))
    assert default_dates(on_day, last="2199-12-31")[-1] == pd.Timestamp("2024-02-29")
    # a --to after the data that leaves no month end is refused, naming the data's period
    late = spells.assign(recorded_date=pd.Timestamp("2024-03-19"))
    with pytest.raises(ConfigError, match=r"no month end between 2024-03-01 and 2024-03-19: the spells start on "
                                          r".* observed until 2024-03-19"):
        default_dates(late, first="2024-03-01", last="2199-12-31")


@pytest.mark.slow
def test_the_command_line_builds_resumes_and_trains(population, tmp_path, capsys):
    from iizrisk.cli import main
    from iizrisk.errors import EXIT_USAGE
    from iizrisk.store import write_parquet_atomic

    write_parquet_atomic(population, tmp_path / "spells.parquet")
    argv = ["snapshots", "--spells", str(tmp_path / "spells.parquet"), "--outcome", "revolving_door",
            "--from", "2018-01-31", "--to", "2022-12-31", "--buckets", "2", "--out", str(tmp_path / "s")]
    assert main(argv) == 0
    # the data are observed until 2022-12-30: the month end 2022-12-31 after it is left out, with a log line
    out, err = capsys.readouterr()
    assert "59 month ends (2018-01-31 to 2022-11-30)" in out and "the last observed day, not 2022-12-31" in err
    assert main(argv) == 0  # a second run finds every partition and keeps them
    assert main([*argv, "--jobs", "2", "--dask"]) == EXIT_USAGE  # processes here or a cluster, not both
    assert "--jobs runs processes on this machine" in capsys.readouterr().err
    assert main([*argv[:-2], "--horizon-months", "6", "--out", str(tmp_path / "s")]) == EXIT_USAGE
    assert "other data or settings" in capsys.readouterr().err
    other = [a if a != "2018-01-31" else "2019-01-31" for a in argv]  # other month ends: which, said
    assert main(other) == EXIT_USAGE
    assert ("it holds 59 month ends 2018-01-31 to 2022-11-30, asked 47 from 2019-01-31 to 2022-11-30"
            in capsys.readouterr().err)
    key = tmp_path / "k"
    key.write_bytes(b"a model signing key of this test suite, long enough")
    assert main(["train", "--snapshots", str(tmp_path / "s"), "--outcome", "revolving_door", "--key-file",
                 str(key), "--out", str(tmp_path / "model"), "--max-persons", "800"]) == 0
    manifest = (tmp_path / "model" / "manifest.json").read_text()
    assert '"sample"' in manifest and "person_fraction" in manifest
    assert main(["train", "--snapshots", str(tmp_path / "s"), "--interventions", str(tmp_path / "x.csv"),
                 "--outcome", "revolving_door", "--out", str(tmp_path / "m2")]) == EXIT_USAGE


@pytest.mark.parametrize("seen, last_month_end, last_labelled", [("2023-12-31", "2023-12-31", "2022-12-31"),
                                                                  ("2023-12-30", "2023-11-30", "2022-11-30")])
def test_default_dates_are_the_latest_month_ends_whose_horizon_is_observed(seen, last_month_end, last_labelled):
    """A month end whose horizon ends on the last observed day is labelled; ``latest`` keeps the newest ones."""
    rows = pd.DataFrame({"person_id": ["a", "b"], "institution": ["ALV", "SH"],
                         "start_date": pd.to_datetime(["2018-01-15", "2019-03-01"]),
                         "end_date": pd.to_datetime([None, seen])})
    every = default_dates(rows, burn_in_months=24)
    assert every == list(pd.date_range("2020-01-31", last_month_end, freq="ME"))  # 24 months after the first start
    labelled = default_dates(rows, burn_in_months=24, horizon_months=12)
    assert labelled[-1] == pd.Timestamp(last_labelled)
    assert labelled == [d for d in every if d + pd.DateOffset(months=12) <= pd.Timestamp(seen)]
    newest = default_dates(rows, burn_in_months=24, horizon_months=12, latest=5)
    assert newest == labelled[-5:]
