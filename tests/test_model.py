"""Risk models: metrics, temporal split, training, model files, input checks, scoring and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from iizrisk import _time
from iizrisk.cli import main
from iizrisk.config import Settings
from iizrisk.errors import (
    ConfigError,
    InputMismatchError,
    KeyFileError,
    ModelError,
    ValidationError,
)
from iizrisk.explain import score_with_reasons
from iizrisk.model import (
    BfsRuleBaseline,
    RiskModel,
    check_input,
    evaluate,
    expected_calibration_error,
    load_model,
    precision_recall_at_k,
    risk_bands,
    save_model,
    score,
    signing_key,
    temporal_split,
    train,
)
from iizrisk.model._scoring import check_bands
from iizrisk.schema import load_schema

INST = ["ALV", "IV", "SH", "BB", "MIG"]
KEY = b"secret-1 of the model tests, at least 32 bytes"


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):  # the machine is shared: oversubscribed OpenMP is slow
        yield


def random_population(n: int, *, start: str = "2014-01-01", end: str = "2022-12-31",
                      seed: int = 0) -> pd.DataFrame:
    """Small random spells with a persistent latent frailty (fast, for plumbing tests)."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    span = (pd.Timestamp(end) - t0).days
    rows = []
    for i in range(n):
        z = rng.normal()
        day = int(rng.integers(0, span))
        inst = rng.choice(INST, p=[.55, .12, .18, .1, .05])
        by, edu = 1950 + int(rng.integers(0, 50)), rng.choice(["compulsory", "upper_secondary", "tertiary"])
        while day < span:
            end_d = day + int(rng.exponential(200 * np.exp(0.3 * z))) + 1
            if inst == "ALV":
                ex = "benefit_exhausted" if rng.random() < 0.15 + 0.1 * (z > 0) else "employment"
            else:
                ex = "employment" if rng.random() < 0.5 else "other"
            closed = end_d < span
            rows.append((f"p{i:05d}", inst, t0 + pd.Timedelta(days=day),
                         t0 + pd.Timedelta(days=end_d) if closed else pd.NaT, ex if closed else None, by, edu))
            if rng.random() < 0.35 - 0.15 * z:
                break
            day = end_d + int(rng.exponential(300 * np.exp(-0.6 * z))) + 1
            if rng.random() < 0.4 + 0.2 * (z > 0):
                inst = rng.choice(INST, p=[.4, .15, .3, .1, .05])
    df = pd.DataFrame(rows, columns=["person_id", "institution", "start_date", "end_date", "exit_reason",
                                     "birth_year", "education"])
    df["birth_year"] = df["birth_year"].astype("Int64")
    return df


@pytest.fixture(scope="module")
def spells() -> pd.DataFrame:
    return random_population(1200, seed=1)


@pytest.fixture(scope="module")
def trained(spells):
    with threadpool_limits(1):
        return train(spells, outcome="disintegration", max_iter=60, capacity=20)


# ---------------------------------------------------------------- metrics
def test_ece_matches_a_loop():
    rng = np.random.default_rng(0)
    p = rng.random(500)
    y = rng.random(500) < p**2
    bins = {}
    for pi, yi in zip(p, y, strict=True):
        bins.setdefault(min(int(pi * 10), 9), []).append((pi, yi))
    want = sum(len(v) / 500 * abs(np.mean([b for _, b in v]) - np.mean([a for a, _ in v])) for v in bins.values())
    assert expected_calibration_error(y, p) == pytest.approx(want)
    assert expected_calibration_error(y, np.full(500, y.mean())) == pytest.approx(0.0, abs=1e-12)


def test_precision_recall_at_k_per_date_matches_a_loop():
    rng = np.random.default_rng(1)
    d = rng.integers(0, 4, 300)
    s = rng.random(300)
    y = rng.random(300) < s
    prec, rec = precision_recall_at_k(y, s, d, k=10)
    ps, rs = [], []
    for day in range(4):
        idx = np.flatnonzero(d == day)
        top = idx[np.argsort(-s[idx])[:10]]
        ps.append(y[top].mean())
        rs.append(y[top].sum() / y[idx].sum())
    assert prec == pytest.approx(np.mean(ps))
    assert rec == pytest.approx(np.mean(rs))


def test_evaluate_uses_sklearn_definitions():
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    rng = np.random.default_rng(2)
    p = rng.random(200)
    y = rng.random(200) < p
    m = evaluate(y, {"a": p}, np.zeros(200), k=5).loc["a"]
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["average_precision"] == pytest.approx(average_precision_score(y, p))
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))


def test_temporal_split_leaves_a_horizon_gap():
    days = _time.to_days(pd.Series(pd.date_range("2018-01-31", periods=60, freq="ME")))
    early, late = temporal_split(days, holdout_months=6, gap_months=12)
    assert not (early & late).any()
    assert late.sum() == 6
    first_late = days[late].min()
    assert (_time.add_months(days[early], 12) < first_late).all()
    assert not (_time.add_months(days[~early & ~late], 12) < first_late).any()


def test_rule_baseline_uses_training_rates():
    X = pd.DataFrame({"revolving_door_24m": [1, 1, 1, 0, 0, 0, 0]})
    m = BfsRuleBaseline().fit(X, [1, 1, 0, 0, 0, 0, 1])
    assert m.predict_proba(pd.DataFrame({"revolving_door_24m": [1, 0]}))[:, 1].tolist() == [2 / 3, 1 / 4]


# ---------------------------------------------------------------- the estimator
def test_risk_model_follows_the_sklearn_contract():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    m = RiskModel(model="logistic", calibration="sigmoid", C=0.5)
    assert clone(m).get_params() == m.get_params()
    with pytest.raises(NotFittedError):
        m.predict_proba(pd.DataFrame({"a": [1.0]}))
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)}).astype("float32")
    y = X["a"].to_numpy() + rng.normal(size=600) > 0.5
    assert m.fit(X, y) is m
    assert list(m.feature_names_in_) == ["a", "b"] and m.n_features_in_ == 2
    assert m.calibrator_ is not None and m.fit_info_["calibration_rows"] == 120
    p = m.predict_proba(X)
    assert p.shape == (600, 2) and np.allclose(p.sum(1), 1)
    assert "RiskModel" in m._repr_html_() and "never decisions" in m._repr_html_()
    assert m.summary.loc["model", "value"] == "logistic"
    with pytest.raises(TypeError, match="categor"):
        RiskModel().fit(X.assign(c=pd.Categorical(["x"] * 600)), y)
    with pytest.raises(ValueError, match="single class"):
        RiskModel().fit(X, np.zeros(600, dtype=bool))


def test_training_respects_the_temporal_split(trained):
    model, report = trained
    per = {k: [pd.Timestamp(v[0]), pd.Timestamp(v[1])] for k, v in report.periods.items()}
    h = report.info["horizon_months"]
    # no label of an earlier slice sees the next slice: T + H before its first as-of date
    assert per["train"][1] + pd.DateOffset(months=h) < per["calibration"][0]
    assert per["calibration"][1] + pd.DateOffset(months=h) < per["validation"][0]
    # the held-out horizon is observed
    assert per["validation"][1] + pd.DateOffset(months=h) <= pd.Timestamp(report.info["observed_until"])
    assert set(report.metrics.index) == {"boosting", "logistic", "bfs_rule"}
    assert report.info["validation_rows"] > 0 and model.metrics_["boosting"]["roc_auc"] > 0.5
    assert "Training report" in report._repr_html_()
    assert model.fit_info_["train_rows"] == report.info["train_rows"]


# ---------------------------------------------------------------- model files
def test_model_directory_roundtrip(trained, tmp_path, spells):
    model, _ = trained
    path = save_model(model, tmp_path / "m", key=KEY)
    man = json.loads((path / "manifest.json").read_text())
    assert {"model_sha256", "versions", "features", "outcome", "horizon_months", "training", "metrics"} <= set(man)
    assert man["training"]["data_fingerprint"] and man["training"]["periods"]["validation"]
    assert [f["name"] for f in man["features"]] == list(model.feature_names_in_)
    assert all(f["dtype"] == "float32" for f in man["features"])
    back = load_model(path, key=KEY)
    a = score(model, spells, as_of="2021-03-31")
    b = score(back, spells, as_of="2021-03-31")
    pd.testing.assert_frame_equal(a, b)
    # overwrite in place: atomic replace, no temporary folders left behind
    save_model(model, path, key=KEY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_tampered_model_is_refused_before_loading(trained, tmp_path, monkeypatch):
    import skops.io

    model, _ = trained
    path = save_model(model, tmp_path / "m", key=KEY)
    with open(path / "model.skops", "ab") as fh:
        fh.write(b"x")
    monkeypatch.setattr(skops.io, "loads", lambda *a, **k: pytest.fail("loaded a tampered file"))
    with pytest.raises(ModelError, match="SHA-256"):
        load_model(path, key=KEY)


def test_signature_is_checked_when_a_key_is_configured(trained, tmp_path, monkeypatch):
    model, _ = trained
    signed = save_model(model, tmp_path / "signed", key=KEY)
    load_model(signed, key=KEY)
    with pytest.raises(ModelError, match="signature"):
        load_model(signed, key=b"other key, long enough to be accepted")
    man = json.loads((signed / "manifest.json").read_text())
    man["outcome"] = "revolving_door"  # a changed manifest breaks the signature
    (signed / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ModelError, match="signature"):
        load_model(signed, key=KEY)
    unsigned = save_model(model, tmp_path / "unsigned")
    with pytest.raises(ModelError, match="not signed"):
        load_model(unsigned, key=KEY)
    with pytest.raises(ModelError, match="not signed"):
        load_model(unsigned)
    with pytest.raises(ModelError, match="not a model directory"):
        load_model(tmp_path / "nothing")
    # keys come from a file or the environment, never from the command line
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY + b"\n")
    assert signing_key(file=key_file) == KEY
    monkeypatch.setenv("IIZRISK_MODEL_KEY", "from-env, long enough for a signing key")
    assert signing_key() == b"from-env, long enough for a signing key"
    monkeypatch.setenv("IIZRISK_MODEL_KEY", "")
    with pytest.raises(KeyFileError, match="empty"):
        signing_key()
    with pytest.raises(KeyFileError, match="missing does not exist"):
        signing_key(file=tmp_path / "missing")
    with pytest.raises(KeyFileError, match="is a folder, not a regular file; give the path of the file that holds the key"):
        signing_key(file=tmp_path)  # a folder


@pytest.mark.parametrize("mode, refused", [(0o600, None), (0o640, None), (0o400, None),
                                           (0o644, "anyone on this machine can read it"),
                                           (0o604, "anyone on this machine can read it"),
                                           (0o660, "others than its owner can replace it"),
                                           (0o602, "others than its owner can replace it")])
def test_a_signing_key_file_open_to_others_is_refused(tmp_path, mode, refused):
    """A key anyone may read lets anyone sign a model; one others may write lets them replace it."""
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY)
    key_file.chmod(mode)
    if refused is None:
        assert signing_key(file=key_file) == KEY
        return
    with pytest.raises(KeyFileError, match=f"mode {mode:04o}: {refused}.*chmod 600") as err:
        signing_key(file=key_file)
    assert KEY.decode(errors="replace") not in str(err.value)


# ---------------------------------------------------------------- scoring
def test_input_mismatch_shows_a_readable_diff(trained, spells):
    model, _ = trained
    X = model.features.transform(spells, as_of="2021-03-31")
    bad = X.drop(columns=["n_spells_6m"]).assign(extra=1.0, n_spells_24m=X["n_spells_24m"].astype(str))
    with pytest.raises(InputMismatchError) as exc:
        model.predict_proba(bad)
    msg = str(exc.value)
    assert "missing feature columns (1): n_spells_6m" in msg and "unexpected feature columns (1): extra" in msg
    assert "n_spells_24m: model float32" in msg
    with pytest.raises(InputMismatchError, match="'education'"):
        check_input(model, spells=spells.drop(columns="education"))
    with pytest.raises(InputMismatchError, match="birth_year.*model number, input string"):
        score(model, spells.assign(birth_year=spells["birth_year"].astype(str)), as_of="2021-03-31")
    import copy

    with_iv = copy.copy(model)
    with_iv.input_info_ = {**model.input_info_, "interventions": True}
    with pytest.raises(InputMismatchError, match=r"--interventions to `iizrisk score`, \[deployment\] interventions"):
        check_input(with_iv, spells=spells)  # the fix said "pass --interventions", which `run` does not have


def test_scores_ignore_rows_after_the_as_of_date(trained, spells):
    model, _ = trained
    t = pd.Timestamp("2021-03-31")
    full = score(model, spells, as_of=t)
    cut = spells[spells["start_date"] <= t].copy()
    cut.loc[cut["end_date"] > t, ["end_date", "exit_reason"]] = [pd.NaT, None]
    pd.testing.assert_frame_equal(full, score(model, cut, as_of=t))
    assert full["rank"].tolist() == list(range(1, len(full) + 1))
    assert full["risk"].is_monotonic_decreasing
    assert set(full["risk_band"]) <= {"low", "medium", "high"}
    empty = score(model, spells, as_of="1990-01-31")  # nobody registered yet
    assert len(empty) == 0 and list(empty.columns) == list(full.columns)


#: Band thresholds against the rule 0 < low < high < 1, as (thresholds, valid).
BANDS = [((0.10, 0.25), True), ((1e-6, 0.999999), True), ((0.1,), False), ((0.1, 0.2, 0.3), False),
         ((0.5, 0.1), False), ((float("nan"), 0.5), False), ((0.1, float("inf")), False), ((0, 1), False),
         ((0.0, 0.5), False), ((0.1, 0.1), False), ((True, 0.5), False), (("0.1", "0.2"), False), ((), False)]


@pytest.mark.parametrize("bands, valid", BANDS)
def test_risk_bands_follow_the_rule_of_the_deployment_file(bands, valid):
    """Bad thresholds raise ValueError naming the rule (a descending pair named 0.108 "high", nan gave
    everyone "low"), and the rule is that of ``[worklist] risk_bands``."""
    if valid:
        assert check_bands(bands) == tuple(float(b) for b in bands)
        assert risk_bands([bands[0] / 2, bands[0], bands[1]], bands).tolist() == ["low", "medium", "high"]
        Settings.from_dict({"worklist": {"risk_bands": list(bands)}})
    else:
        with pytest.raises(ValueError, match=r"0 < low < high < 1"):
            risk_bands([0.108], bands)
        with pytest.raises(ConfigError, match="risk_bands"):
            Settings.from_dict({"worklist": {"risk_bands": list(bands)}})


@pytest.mark.parametrize("text", ["0.1", "0.1,0.2,0.3", "0.5,0.1", "nan,0.5", "0,1", "0.1,0.1", "abc", ""])
def test_cli_refuses_bad_bands_before_any_work(tmp_path, capsys, text):
    """A usage error (exit 2) naming the rule; before the fix ``0.1`` was exit 5 and ``0.5,0.1`` exit 0."""
    with pytest.raises(SystemExit) as exc:
        main(["score", "--model", str(tmp_path / "none"), "--spells", str(tmp_path / "none.parquet"),
              "--as-of", "2021-03-31", "--out", str(tmp_path / "o"), f"--bands={text}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --bands" in err and "0 < low < high < 1" in err and "e.g. 0.10,0.25" in err
    assert not (tmp_path / "o").exists()


def test_scoring_a_day_long_after_the_export_is_refused(trained, spells):
    """Risks for 2030 from an export of 2022 would be fiction: refused naming the last recorded day (the
    nightly run checks its own window and gives its view); data_end states the export's day where the
    rows hold no recorded dates."""
    from iizrisk.errors import ValidationError

    model, _ = trained
    recorded = spells.assign(recorded_date=spells["start_date"])
    last = recorded["recorded_date"].max()
    assert len(score(model, recorded, as_of=last + pd.Timedelta(days=14)))
    with pytest.raises(ValidationError, match=f"after the last recorded date of the spells \\({last.date()}"):
        score(model, recorded, as_of="2030-12-31")
    with pytest.raises(ValidationError, match="after data_end"):
        score(model, spells, as_of="2030-12-31", data_end=last)


def test_scores_with_reasons_of_one_person_and_of_nobody(trained, spells):
    """One person open at the as-of date is scored and explained like in the whole population (writing the
    reasons into a one-row frame raised TypeError, exit 5); nobody open gives the empty table."""
    model, _ = trained
    t = pd.Timestamp("2021-03-31")
    full = score_with_reasons(model, spells, as_of=t, explain_top=len(spells), language="en")
    cols = [c for c in full.columns if c.startswith("reason_")]
    assert full["reason_1"].notna().any()
    for n in (1, 2):
        ids = full["person_id"].iloc[[0, -1][:n]]
        part = score_with_reasons(model, spells[spells["person_id"].isin(ids)], as_of=t, language="en")
        assert part["person_id"].tolist() == ids.tolist()
        assert part.dtypes.to_dict() == full.dtypes.to_dict()
        mine = full.set_index("person_id").loc[ids, ["risk", "risk_band", *cols]].reset_index(drop=True)
        pd.testing.assert_frame_equal(part[["risk", "risk_band", *cols]], mine)
        unexplained = score_with_reasons(model, spells[spells["person_id"].isin(ids)], as_of=t, explain_top=0)
        assert len(unexplained) == n and unexplained[cols].isna().all().all()
    nobody = score_with_reasons(model, spells, as_of="1990-01-31")  # nobody registered yet
    assert len(nobody) == 0 and list(nobody.columns) == list(full.columns)
    assert nobody.dtypes.to_dict() == full.dtypes.to_dict()


# ---------------------------------------------------------------- command line
def test_a_held_out_period_without_outcomes_writes_no_model(spells):
    """Nothing happens in the last two years (the export still reaches its end): no model nobody can judge."""
    last = spells["start_date"].max()
    quiet = spells[spells["start_date"] <= last - pd.DateOffset(years=2)].copy()
    quiet.loc[quiet.index[0], "end_date"] = last
    with pytest.raises(ValidationError, match=r"held-out period .* holds [\d,]+ snapshots with 0 outcome"):
        train(quiet, outcome="revolving_door", max_iter=10, compare=False, progress=False)


def test_cli_train_score_features(tmp_path, spells, trained, capsys):
    src = tmp_path / "spells.parquet"
    spells.to_parquet(src)
    t = pd.Timestamp("2021-03-31")
    cut = spells[spells["start_date"] <= t]
    (tmp_path / "cut_spells").mkdir()  # a folder of Parquet spells; the scores go elsewhere (never into it)
    cut.iloc[: len(cut) // 2].to_parquet(tmp_path / "cut_spells" / "a.parquet")
    cut.iloc[len(cut) // 2:].to_parquet(tmp_path / "cut_spells" / "b.parquet")
    key = tmp_path / "key"
    key.write_bytes(KEY)
    assert main(["-q", "train", "--spells", str(src), "--outcome", "disintegration", "--model", "logistic",
                 "--out", str(tmp_path / "model"), "--key-file", str(key)]) == 0
    assert "bfs_rule" in capsys.readouterr().out
    # --no-compare: the report holds the model alone
    assert main(["-q", "train", "--spells", str(src), "--outcome", "disintegration", "--model", "logistic",
                 "--out", str(tmp_path / "alone"), "--key-file", str(key), "--no-compare"]) == 0
    assert "bfs_rule" not in capsys.readouterr().out
    # `iizrisk train` writes the card beside the model, from the manifest of the final folder
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    assert card["source"] == str(tmp_path / "model") and card["model"]["kind"] == "logistic"
    for name, spells_arg in [("full", src), ("cut", tmp_path / "cut_spells")]:
        assert main(["-q", "score", "--model", str(tmp_path / "model"), "--spells", str(spells_arg),
                     "--as-of", "2021-03-31", "--out", str(tmp_path / name), "--explain-top", "5",
                     "--language", "it", "--key-file", str(key)]) == 0
    a = pd.read_parquet(tmp_path / "full" / "scores.parquet")
    b = pd.read_parquet(tmp_path / "cut" / "scores.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == load_schema("scores").names
    assert a["reason_1"].iloc[:5].notna().all() and a["reason_1"].iloc[5:].isna().all()
    assert a["reason_1_text"].iloc[0] and "{" not in a["reason_1_text"].iloc[0]
    assert (a["outcome"] == "disintegration").all()
    # a model directory signed with one key does not load without it configured
    assert main(["-q", "score", "--model", str(tmp_path / "model"), "--spells", str(src), "--as-of",
                 "2021-03-31", "--out", str(tmp_path / "x"), "--key-file", str(tmp_path / "none")]) == 2
    os.environ.pop("IIZRISK_MODEL_KEY", None)
    (tmp_path / "wrong").write_text("other key, long enough to be accepted")
    assert main(["-q", "score", "--model", str(tmp_path / "model"), "--spells", str(src), "--as-of",
                 "2021-03-31", "--out", str(tmp_path / "x"), "--key-file", str(tmp_path / "wrong")]) == 3
    assert not (tmp_path / "x").exists()
    # an unsigned model scores only when allowed; a short key is a usage error
    model, _ = trained
    save_model(model, tmp_path / "unsigned")
    score_args = ["-q", "score", "--model", str(tmp_path / "unsigned"), "--spells", str(src), "--as-of",
                  "2021-03-31", "--explain-top", "0"]
    assert main([*score_args, "--out", str(tmp_path / "x")]) == 3
    assert "allow_unsigned_model = true" in capsys.readouterr().err
    assert main([*score_args, "--out", str(tmp_path / "u"), "--allow-unsigned-model"]) == 0
    assert (tmp_path / "u" / "scores.parquet").exists()
    # nobody open at the as-of date, or an as-of in the future: an error, never an empty or stretched result
    capsys.readouterr()
    before = [a if a != "2021-03-31" else "1950-01-31" for a in score_args]
    assert main([*before, "--out", str(tmp_path / "e"), "--allow-unsigned-model"]) == 1
    assert "nobody to score at 1950-01-31" in capsys.readouterr().err and not (tmp_path / "e").exists()
    with pytest.raises(SystemExit) as future:
        main([*[a if a != "2021-03-31" else "2199-01-31" for a in score_args], "--out", str(tmp_path / "e"),
              "--allow-unsigned-model"])
    assert future.value.code == 2 and "lies after today" in capsys.readouterr().err
    (tmp_path / "short").write_text("k")
    assert main([*score_args, "--out", str(tmp_path / "x"), "--key-file", str(tmp_path / "short")]) == 2
    assert not (tmp_path / "x").exists()
    assert main(["-q", "features", "--spells", str(src), "--as-of", "2021-03-31",
                 "--out", str(tmp_path / "f.parquet")]) == 0
    f = pd.read_parquet(tmp_path / "f.parquet")
    assert sorted(f["person_id"]) == sorted(a["person_id"])
    assert f.shape[1] == 2 + len(json.loads((tmp_path / "model" / "manifest.json").read_text())["features"])
    with pytest.raises(SystemExit) as exc:
        main(["score", "--model", "m", "--spells", "s", "--as-of", "31.03.2021", "--out", "o"])
    assert exc.value.code == 2
    assert Path(tmp_path / "model" / "manifest.json").exists()


# ---------------------------------------------------------------- quality on the synthetic population
@pytest.fixture(scope="module")
def synthetic():
    from iizrisk import synth

    return synth.generate(6000, "2016-01-01", "2022-12-31", seed=3)


def test_boosting_beats_baselines_on_a_later_period(synthetic):
    """Held-out later period: boosting beats logistic regression and the BFS rule, and is calibrated."""
    with threadpool_limits(1):
        model, report = train(synthetic.spells, interventions=synthetic.interventions,
                              outcome="disintegration", capacity=50)
    m = report.metrics
    assert report.info["validation_rows"] > 5000 and 0.01 < report.info["prevalence_validation"] < 0.5
    for metric in ("roc_auc", "average_precision"):
        assert m.loc["boosting", metric] > m.loc["logistic", metric], metric
        assert m.loc["boosting", metric] > m.loc["bfs_rule", metric], metric
    assert m.loc["boosting", "ece"] <= 0.03
    assert m.loc["boosting", "brier"] < m.loc["bfs_rule", "brier"]


def test_model_directory_carries_its_model_card(trained, tmp_path):
    """save_model writes the model and its manifest; the card is written from the manifest by the
    caller (iizrisk.model does not import iizrisk.modelcard), beside the model it stays loadable."""
    from iizrisk.modelcard import write_model_card

    model, _ = trained
    path = save_model(model, tmp_path / "m", key=KEY)
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "model.skops"]
    write_model_card(path, path)
    assert {"model_card.md", "model_card.html", "model_card.json"} <= {p.name for p in path.iterdir()}
    assert "never an automated decision" in (path / "model_card.md").read_text()
    assert load_model(path, key=KEY).outcome == model.outcome


def test_the_model_package_does_not_import_the_model_card():
    """The model <-> modelcard cycle is gone: iizrisk.model imports nothing of iizrisk.modelcard."""
    import subprocess
    import sys

    code = ("import sys, iizrisk.model, iizrisk.model._files; "
            "print('iizrisk.modelcard' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_protected_columns_are_not_required_to_score(spells):
    rng = np.random.default_rng(0)
    with_attrs = spells.assign(sex=rng.choice(["F", "M"], len(spells)),
                               nationality_group=rng.choice(["CH", "THIRD"], len(spells)))
    with threadpool_limits(1):
        model, _ = train(with_attrs, outcome="disintegration", max_iter=20, capacity=20, compare=False)
    assert not {"sex", "nationality_group"} & set(model.input_info_["columns"])
    pd.testing.assert_frame_equal(score(model, with_attrs, as_of="2021-03-31"),
                                  score(model, spells, as_of="2021-03-31"))


def test_training_report_follows_the_result_protocol(tmp_path, capsys):
    """summary, print_summary (prints), _repr_html_, plot(ax) and to_dir, as every result object."""
    import matplotlib

    matplotlib.use("Agg")
    from iizrisk.synth import random_spells

    _, report = train(random_spells(6000, seed=1), compare=True, max_train_rows=2000, model="logistic")
    assert report.summary is report.metrics and {"logistic", "boosting", "bfs_rule"} <= set(report.summary.index)
    report.print_summary()
    out = capsys.readouterr().out
    assert "Training report" in out and "roc_auc" in out and "bfs_rule" in out
    assert "<table" in report._repr_html_()
    ax = report.plot()
    assert len(ax.patches) == 3 * 2 and ax.get_ylim() == (0, 1)
    written = {p.name for p in report.to_dir(tmp_path / "out")}
    assert written == {"training_metrics.csv", "training_metrics.parquet", "training_metrics.png"}
    back = pd.read_csv(tmp_path / "out" / "training_metrics.csv", sep=";", encoding="utf-8-sig")
    assert back["scorer"].tolist() == report.metrics.index.tolist()


def test_the_comparison_model_learns_from_a_bounded_sample(monkeypatch):
    """The other model kind is fitted on at most COMPARE_MAX_ROWS training rows (a random sample in time order);
    the model itself on all of them."""
    from iizrisk.model import _training
    from iizrisk.synth import random_spells

    seen = []
    fit = RiskModel.fit

    def spy(self, X, y, *, as_of=None):
        seen.append((self.model, len(X), np.all(np.diff(np.asarray(as_of)) >= 0)))
        return fit(self, X, y, as_of=as_of)

    monkeypatch.setattr(_training, "COMPARE_MAX_ROWS", 700)
    monkeypatch.setattr(RiskModel, "fit", spy)
    _, report = train(random_spells(6000, seed=1), compare=True, max_train_rows=2000, model="logistic")
    (kind, n_main, _), (other, n_other, ordered) = seen
    assert (kind, other) == ("logistic", "boosting") and n_main == 2000 and n_other == 700 and ordered
    assert "boosting" in report.metrics.index
    assert [int(i) for i in _training._at_most(10, 20, 0)] == list(range(10))
    s = _training._at_most(1000, 10, 3)
    assert len(s) == 10 == len(set(s.tolist())) and (np.diff(s) > 0).all()


def test_risk_model_print_summary_prints(capsys):
    from iizrisk.synth import random_spells

    model, _ = train(random_spells(6000, seed=1), compare=False, max_train_rows=2000, model="logistic")
    model.print_summary()
    out = capsys.readouterr().out
    assert out.startswith("RiskModel: logistic, outcome revolving_door") and "horizon_months" in out


# ---------------------------------------------------------------- ablations (iizrisk select's drop-one-group specs)
def test_an_ablation_trains_without_its_feature_group_and_scores_every_night(spells, tmp_path, capsys):
    from iizrisk.errors import ConfigError
    from iizrisk.features import feature_catalogue
    from iizrisk.model import read_manifest

    model, report = train(spells, outcome="revolving_door", max_iter=30, capacity=20, drop_groups=("history",))
    history = set(feature_catalogue().query("group == 'history'").index)
    assert history and not history & set(model.feature_names_in_)
    # the features the model builds every night leave the group out too (the scoring input check holds)
    assert model.features.exclude_groups == ("history",)
    assert list(model.features.feature_names_out_) == list(model.feature_names_in_)
    assert set(report.metrics.index) == {"boosting", "logistic", "bfs_rule"}  # the BFS rule keeps its column
    assert report.info["dropped_feature_groups"] == ["history"]
    assert set(model.reference_["features"]) == set(model.feature_names_in_)
    path = save_model(model, tmp_path / "m", key=KEY)
    assert read_manifest(path)["training"]["dropped_feature_groups"] == ["history"]
    a = score(model, spells, as_of="2021-03-31")
    pd.testing.assert_frame_equal(a, score(load_model(path, key=KEY), spells, as_of="2021-03-31"))
    with pytest.raises(ConfigError, match="unknown feature group"):
        train(spells, outcome="revolving_door", max_iter=5, compare=False, drop_groups=("hobbies",))
    # iizrisk train --spec trains an ablation chosen by iizrisk select
    spec = tmp_path / "selected.json"
    spec.write_text(json.dumps({"spec": {"name": "boosting_without_exits", "kind": "boosting",
                                         "params": {"max_iter": 20}, "drop_groups": ["exits"]}}))
    src = tmp_path / "spells.parquet"
    spells.to_parquet(src)
    key = tmp_path / "key"
    key.write_bytes(KEY)
    assert main(["-q", "train", "--spells", str(src), "--outcome", "revolving_door", "--spec", str(spec),
                 "--out", str(tmp_path / "abl"), "--key-file", str(key)]) == 0
    # parameters a model refuses are the file's fault (exit 2, naming it), not the spells' (exit 1)
    spec.write_text(json.dumps({"spec": {"name": "logistic", "kind": "logistic", "params": {"C": -1}}}))
    assert main(["-q", "train", "--spells", str(src), "--outcome", "revolving_door", "--spec", str(spec),
                 "--no-compare", "--out", str(tmp_path / "bad"), "--key-file", str(key)]) == 2
    assert not (tmp_path / "bad").exists()
    man = read_manifest(tmp_path / "abl")
    exits = set(feature_catalogue().query("group == 'exits'").index)
    assert man["training"]["dropped_feature_groups"] == ["exits"]
    assert not exits & {f["name"] for f in man["features"]}


def test_feature_groups_left_out_leave_their_columns_and_catalogue_rows_out():
    from iizrisk.features import PointInTimeFeatures, feature_catalogue

    whole = PointInTimeFeatures().fit()
    cat = feature_catalogue()
    for group in sorted(set(cat["group"])):
        ft = PointInTimeFeatures(exclude_groups=(group,)).fit()
        want = [c for c in whole.feature_names_out_ if cat.loc[c, "group"] != group]
        assert list(ft.feature_names_out_) == want
        assert set(ft.catalogue().index) == set(want)
    rows = random_population(60, seed=3)
    X = PointInTimeFeatures(exclude_groups=("history", "exits")).fit().transform(rows, as_of="2021-03-31")
    full = whole.transform(rows, as_of="2021-03-31")
    pd.testing.assert_frame_equal(X, full[list(X.columns)])
    with pytest.raises(ValueError, match="unknown feature group"):
        PointInTimeFeatures(exclude_groups=("hobbies",)).fit()


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), model=st.sampled_from(["boosting", "logistic"]),
       calibration=st.sampled_from(["isotonic", "sigmoid", None]), n=st.integers(1, 40))
def test_one_pass_risk_and_log_odds_equal_the_two_calls(seed, model, calibration, n):
    """Scoring runs the base model once; the calibrated risk and the log-odds are exactly what
    predict_proba and decision_function give (the obvious two passes), for every calibration."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.integers(0, 5, 400)}).astype("float32")
    y = X["a"].to_numpy() + rng.normal(size=400) > 0.8
    m = RiskModel(model=model, calibration=calibration, max_iter=20).fit(X, y) if model == "boosting" else \
        RiskModel(model=model, calibration=calibration).fit(X, y)
    new = pd.DataFrame({"a": rng.normal(0, 2, n), "b": rng.integers(0, 7, n)}).astype("float32")
    risk, raw = m.risk_and_log_odds(new)
    np.testing.assert_array_equal(risk, m.predict_proba(new)[:, 1])
    np.testing.assert_array_equal(raw, m.decision_function(new))


def test_the_training_report_in_a_language_names_its_columns_and_values(trained, tmp_path):
    """The held-out metrics table: the model kind in words, the held-out snapshots called observations (they
    are person x month end, not people), capacity and prevalence named, metrics to three decimals."""
    import csv
    import io

    from iizrisk.tables import header, value_name

    _, report = trained
    report.to_dir(tmp_path, language="fr", plots=False)
    rows = list(csv.reader(io.StringIO((tmp_path / "training_metrics.csv").read_text(encoding="utf-8-sig")),
                           delimiter=";"))
    head = rows[0]
    assert header("n_snapshots", "fr") in head and header("n", "fr") not in head
    assert {"scorer", "k", "prevalence", "n"}.isdisjoint(head)
    assert rows[1][head.index(header("scorer", "fr"))] == value_name("scorer", report.metrics.index[0], "fr") != \
        report.metrics.index[0]
    auc = rows[1][head.index(header("roc_auc", "fr"))]
    assert len(auc.split(".")[-1]) <= 3
    assert "n_snapshots" in pd.read_parquet(tmp_path / "training_metrics.parquet").columns
