"""Model files cannot run foreign code: safe format, one read, signatures, keys (issue 15, item 3)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from threadpoolctl import threadpool_limits

import iizrisk.model._files as mm
from iizrisk.config import Settings
from iizrisk.errors import KeyFileError, ModelError
from iizrisk.features import PointInTimeFeatures
from iizrisk.model import (
    KEY_ENV,
    MIN_SIGNING_KEY_BYTES,
    RiskModel,
    load_model,
    model_key,
    read_manifest,
    save_model,
    signing_key,
    train,
)
from iizrisk.synth import random_spells

KEY = b"a signing key of the model-file tests, 32+ bytes"
OTHER = b"another signing key, also long enough to be used"


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with threadpool_limits(1):
        yield


def frame(n: int = 900, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"]).astype("float32")
    X.loc[::9, "b"] = np.nan
    y = (X["a"] - 0.5 * X["c"] + rng.normal(size=n) > 1).to_numpy()
    return X, y


@pytest.fixture(scope="module")
def fitted() -> RiskModel:
    X, y = frame()
    with threadpool_limits(1):
        return RiskModel(max_iter=30, features=PointInTimeFeatures().fit(None)).fit(X, y)


class Planted:
    """A pickle that writes a marker file when it is loaded: the attack."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "foreign code ran"))


def planted_bytes(tmp_path: Path, marker: Path) -> bytes:
    payload = pickle.dumps(Planted(marker))
    probe = tmp_path / "probe-marker"
    pickle.loads(pickle.dumps(Planted(probe)))  # the payload is live: unpickling runs it
    assert probe.exists()
    return payload


def rewrite(folder: Path, name: str, data: bytes, **manifest_changes) -> dict:
    """What an attacker who can write the folder does: replace a file and recompute its hash."""
    (folder / name).write_bytes(data)
    man = json.loads((folder / "manifest.json").read_text())
    man.update(model_file=name, model_sha256=hashlib.sha256(data).hexdigest(), **manifest_changes)
    man = {k: v for k, v in man.items() if v is not None}
    (folder / "manifest.json").write_text(json.dumps(man))
    return man


# ---------------------------------------------------------------- planted code
@pytest.mark.parametrize("key", [None, KEY])
@pytest.mark.parametrize("allow_unsigned", [False, True])
def test_a_planted_pickle_never_runs(fitted, tmp_path, key, allow_unsigned):
    marker = tmp_path / "marker"
    payload = planted_bytes(tmp_path, marker)
    for fmt, name in [("iizrisk-model/1", "model.joblib"), ("iizrisk-model/2", "model.skops")]:
        folder = save_model(fitted, tmp_path / f"m-{name}", key=KEY)
        (folder / "model.skops").unlink()
        rewrite(folder, name, payload, format=fmt, signature=None)  # the attacker cannot sign
        with pytest.raises(ModelError) as exc:
            load_model(folder, key=key, allow_unsigned=allow_unsigned)
        assert str(folder) in str(exc.value)
        # and with a signature made with another key
        man = json.loads((folder / "manifest.json").read_text())
        man["signature"] = {"algorithm": "HMAC-SHA-256", "value": mm._sign(man, OTHER)}
        (folder / "manifest.json").write_text(json.dumps(man))
        with pytest.raises(ModelError):
            load_model(folder, key=key, allow_unsigned=allow_unsigned)
    assert not marker.exists()


def test_an_unsigned_pickle_is_refused_even_when_unsigned_models_are_allowed(fitted, tmp_path, monkeypatch):
    folder = save_model(fitted, tmp_path / "m")
    (folder / "model.skops").unlink()
    buf = io.BytesIO()
    joblib.dump(fitted, buf)
    rewrite(folder, "model.joblib", buf.getvalue(), format="iizrisk-model/1")
    monkeypatch.setattr(joblib, "load", lambda *a, **k: pytest.fail("unpickled an unsigned file"))
    with pytest.raises(ModelError, match="pickle.*never loaded unsigned.*retrain"):
        load_model(folder, allow_unsigned=True)


def test_an_old_signed_joblib_folder_still_loads_with_its_key(fitted, tmp_path):
    folder = save_model(fitted, tmp_path / "m")
    (folder / "model.skops").unlink()
    buf = io.BytesIO()
    joblib.dump(fitted, buf, compress=3)
    man = rewrite(folder, "model.joblib", buf.getvalue(), format="iizrisk-model/1")
    man["signature"] = {"algorithm": "HMAC-SHA-256", "value": mm._sign(man, KEY)}
    (folder / "manifest.json").write_text(json.dumps(man))
    X, _ = frame(200, seed=5)
    back = load_model(folder, key=KEY)
    assert np.array_equal(back.predict_proba(X), fitted.predict_proba(X))
    with pytest.raises(ModelError, match="signature check failed"):
        load_model(folder, key=OTHER)


def test_a_skops_file_with_an_untrusted_type_is_refused(fitted, tmp_path, monkeypatch):
    bad = RiskModel(model="logistic", calibration=None).fit(*frame())
    bad.fit_info_ = {"hook": os.system}  # a file that names a function to call
    data = sio.dumps(bad)
    assert any("system" in t for t in sio.get_untrusted_types(data=data))
    folder = save_model(fitted, tmp_path / "m")
    rewrite(folder, "model.skops", data)
    with pytest.raises(ModelError, match=r"outside the trusted list \(.*system"):
        load_model(folder, allow_unsigned=True)
    # nor is such a model written
    with pytest.raises(ModelError, match="outside the trusted list"):
        save_model(bad, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


# ---------------------------------------------------------------- the safe format
@pytest.mark.parametrize("kind", ["boosting", "logistic"])
@pytest.mark.parametrize("calibration", ["isotonic", "sigmoid", None])
def test_the_safe_format_round_trips_predictions_exactly(tmp_path, kind, calibration, monkeypatch):
    X, y = frame(1200, seed=1)
    m = RiskModel(model=kind, calibration=calibration, max_iter=25,
                  features=PointInTimeFeatures().fit(None)).fit(X, y)
    folder = save_model(m, tmp_path / "m", key=KEY)
    # the model and its signed manifest only: the card is written by whoever saves the model
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.skops"]
    assert read_manifest(folder)["format"] == "iizrisk-model/2"
    monkeypatch.setattr(joblib, "load", lambda *a, **k: pytest.fail("a pickle was loaded"))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("a pickle was loaded"))
    back = load_model(folder, key=KEY)
    Xt, _ = frame(700, seed=2)  # a test set the model has not seen
    assert np.array_equal(back.predict_proba(Xt), m.predict_proba(Xt))
    assert np.array_equal(back.decision_function(Xt), m.decision_function(Xt))
    assert back.features.specs_ == m.features.specs_ and back.fit_info_ == m.fit_info_
    assert back.manifest_["model_sha256"] == hashlib.sha256((folder / "model.skops").read_bytes()).hexdigest()


def test_tampering_with_one_byte_is_refused(fitted, tmp_path, monkeypatch):
    folder = save_model(fitted, tmp_path / "m", key=KEY)
    data = bytearray((folder / "model.skops").read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / "model.skops").write_bytes(bytes(data))
    monkeypatch.setattr(sio, "loads", lambda *a, **k: pytest.fail("built a tampered file"))
    with pytest.raises(ModelError, match="SHA-256.*does not match"):
        load_model(folder, key=KEY)
    folder = save_model(fitted, tmp_path / "n", key=KEY)
    raw = (folder / "manifest.json").read_text().replace('"horizon_months": 12', '"horizon_months": 13')
    (folder / "manifest.json").write_text(raw)
    with pytest.raises(ModelError, match="signature check failed"):
        load_model(folder, key=KEY)


# ---------------------------------------------------------------- one read
def test_the_file_checked_is_the_file_loaded(fitted, tmp_path, monkeypatch):
    """Each file is read once; swapping it on disk after the read changes nothing."""
    folder = save_model(fitted, tmp_path / "m", key=KEY)
    marker = tmp_path / "marker"
    payload = planted_bytes(tmp_path, marker)
    reads: list[str] = []
    real = mm._read_member

    def read_then_swap(f, name):
        data = real(f, name)
        reads.append(name)
        if name == "model.skops":  # the attacker swaps the file right after it was checked
            rewrite(folder, "model.skops", payload, signature=None)
        return data

    monkeypatch.setattr(mm, "_read_member", read_then_swap)
    back = load_model(folder, key=KEY)
    assert reads == ["manifest.json", "model.skops"]
    X, _ = frame(300, seed=3)
    assert np.array_equal(back.predict_proba(X), fitted.predict_proba(X))
    assert not marker.exists()
    monkeypatch.setattr(mm, "_read_member", real)
    with pytest.raises(ModelError):
        load_model(folder, key=KEY)


def test_links_and_special_files_are_refused(fitted, tmp_path):
    folder = save_model(fitted, tmp_path / "m", key=KEY)
    (tmp_path / "link").symlink_to(folder)
    with pytest.raises(ModelError, match="symbolic link.*real folder"):
        load_model(tmp_path / "link", key=KEY)
    with pytest.raises(ModelError, match="symbolic link"):
        read_manifest(tmp_path / "link")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelError, match="not a folder"):
        load_model(tmp_path / "file", key=KEY)
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "none", key=KEY)
    for name in ("model.skops", "manifest.json"):
        copy = tmp_path / f"copy-{name}"
        shutil.copytree(folder, copy)
        elsewhere = tmp_path / f"elsewhere-{name}"
        os.replace(copy / name, elsewhere)
        (copy / name).symlink_to(elsewhere)  # same bytes, behind a link
        with pytest.raises(ModelError, match=f"{name}: is a symbolic link"):
            load_model(copy, key=KEY)
    fifo = tmp_path / "fifo"
    shutil.copytree(folder, fifo)
    (fifo / "model.skops").unlink()
    os.mkfifo(fifo / "model.skops")  # would block a plain open()
    with pytest.raises(ModelError, match="not a regular file"):
        load_model(fifo, key=KEY)
    stray = tmp_path / "stray"
    shutil.copytree(folder, stray)
    (stray / "model.joblib").write_bytes(b"\0")
    with pytest.raises(ModelError, match=r"does not list \(model.joblib\)"):
        load_model(stray, key=KEY)


@pytest.mark.parametrize("name", ["manifest.json", "model.skops"])
def test_a_folder_in_place_of_a_model_file_is_named(fitted, tmp_path, capsys, name):
    """A folder where a model file belongs is a damaged model (exit 3) and the message names its path;
    it was exit 6 with the file descriptor's number (``4: is a folder ...``) in place of the path."""
    from iizrisk.cli import main

    folder = save_model(fitted, tmp_path / "m", key=KEY)
    (folder / name).unlink()
    (folder / name).mkdir()
    with pytest.raises(ModelError, match=f"{folder / name}: is a folder, not a regular file"):
        load_model(folder, key=KEY)
    if name == "manifest.json":
        with pytest.raises(ModelError, match=f"{folder / name}: is a folder"):
            read_manifest(folder)
    (tmp_path / "model.key").write_bytes(KEY)
    assert main(["-q", "score", "--model", str(folder), "--key-file", str(tmp_path / "model.key"),
                 "--spells", str(tmp_path / "none.parquet"), "--as-of", "2021-03-31",
                 "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert f"error: {folder / name}: is a folder, not a regular file" in err and "retrain" in err


# ---------------------------------------------------------------- signatures
def test_unsigned_models_are_refused_unless_allowed(fitted, tmp_path):
    unsigned = save_model(fitted, tmp_path / "unsigned")
    assert "signature" not in read_manifest(unsigned)
    with pytest.raises(ModelError) as exc:
        load_model(unsigned)
    msg = str(exc.value)
    assert "not signed" in msg and "signing_key_file / signing_key_env" in msg
    assert "--key-file" in msg and "allow_unsigned_model = true" in msg
    assert load_model(unsigned, allow_unsigned=True).outcome == fitted.outcome
    with pytest.raises(ModelError, match="not signed but a signing key is configured"):
        load_model(unsigned, key=KEY, allow_unsigned=True)
    signed = save_model(fitted, tmp_path / "signed", key=KEY)
    for allow in (False, True):  # signed, but nothing to check the signature with
        with pytest.raises(ModelError, match="signed but no signing key is configured"):
            load_model(signed, allow_unsigned=allow)
    with pytest.raises(ModelError, match="signature check failed"):
        load_model(signed, key=OTHER)


# ---------------------------------------------------------------- keys
def test_keys_shorter_than_32_bytes_are_refused(fitted, tmp_path, monkeypatch):
    assert MIN_SIGNING_KEY_BYTES == 32
    short = "s3cret-but-short"
    (tmp_path / "key").write_text(short + "\n")
    with pytest.raises(KeyFileError) as exc:
        signing_key(file=tmp_path / "key")
    assert f"signing key file {tmp_path / 'key'} holds 16 bytes" in str(exc.value) and short not in str(exc.value)
    monkeypatch.setenv(KEY_ENV, short)
    with pytest.raises(KeyFileError, match=f"environment variable {KEY_ENV} holds 16 bytes") as exc:
        signing_key()
    assert short not in str(exc.value)
    with pytest.raises(KeyFileError, match="at least 32"):
        save_model(fitted, tmp_path / "m", key=short.encode())
    assert not (tmp_path / "m").exists()
    with pytest.raises(KeyFileError, match="at least 32"):
        load_model(tmp_path / "m", key=short.encode())
    (tmp_path / "ok").write_bytes(b"x" * 32)
    assert signing_key(file=tmp_path / "ok") == b"x" * 32


def test_key_sources_resolve_the_same_way_everywhere(tmp_path, monkeypatch):
    assert signing_key() is None  # nothing configured: the default variable is optional
    assert signing_key(env=None) is None
    with pytest.raises(KeyFileError, match="MY_MODEL_KEY .*is not set"):
        signing_key(env="MY_MODEL_KEY")  # a variable named on purpose must be set
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    assert signing_key() == KEY and signing_key(env=None) == KEY
    monkeypatch.setenv("MY_MODEL_KEY", OTHER.decode())
    assert signing_key(env="MY_MODEL_KEY") == OTHER
    (tmp_path / "model.key").write_bytes(b"  " + OTHER + b"\n")
    assert signing_key(file=tmp_path / "model.key") == OTHER  # a file wins over the variable
    monkeypatch.setenv(KEY_ENV, "")
    with pytest.raises(KeyFileError, match=f"environment variable {KEY_ENV} is empty"):
        signing_key()
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    with pytest.raises(KeyFileError, match="does not exist"):
        signing_key(file=tmp_path / "missing")

    def settings(**model):
        return Settings.from_dict({"model": model}, base_dir=tmp_path)

    assert model_key(settings()) == KEY  # the default variable, as train and score read it
    assert model_key(settings(signing_key_env="MY_MODEL_KEY")) == OTHER
    assert model_key(settings(signing_key_file="model.key", signing_key_env="MY_MODEL_KEY")) == OTHER
    monkeypatch.delenv(KEY_ENV)
    assert model_key(settings()) is None
    monkeypatch.delenv("MY_MODEL_KEY")
    with pytest.raises(KeyFileError, match="MY_MODEL_KEY"):
        model_key(settings(signing_key_env="MY_MODEL_KEY"))
    with pytest.raises(KeyFileError, match="nokey"):
        model_key(settings(signing_key_file="nokey"))


# ---------------------------------------------------------------- progress
class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_training_progress_shows_only_on_a_terminal(monkeypatch, terminal):
    spells = random_spells(2500, seed=3)
    err = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    logger = logging.getLogger("iizrisk")
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("LOG %(message)s"))
    monkeypatch.setattr(logger, "handlers", [handler])
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        train(spells, outcome="revolving_door", model="logistic", compare=False, max_train_rows=3000)
    finally:
        logger.setLevel(level)
    out = err.getvalue()
    logs = [line.split("\r")[-1] for line in out.split("\n") if "LOG " in line]
    assert any(line.startswith("LOG fitted logistic model") for line in logs)
    assert all(line.startswith("LOG ") for line in logs)  # whole lines, never inside the bar
    if terminal:
        assert "train: fit logistic" in out and "steps" in out
    else:
        assert "\r" not in out and "steps," not in out


# ---------------------------------------------------------------- command line
def test_cli_audit_refuses_unsigned_models_unless_allowed(fitted, tmp_path, capsys):
    """The model is checked before the spells are read: a missing spells file is exit 1, a model problem 3."""
    from iizrisk.cli import main

    unsigned = save_model(fitted, tmp_path / "unsigned")
    signed = save_model(fitted, tmp_path / "signed", key=KEY)
    (tmp_path / "model.key").write_bytes(KEY)

    def audit(model: Path, *extra: str) -> int:
        return main(["-q", "audit", "--model", str(model), "--spells", str(tmp_path / "none.parquet"),
                     "--as-of", "2021-03-31", "--out", str(tmp_path / "out"), *extra])

    assert audit(unsigned) == 3
    assert "--allow-unsigned-model" in capsys.readouterr().err
    assert audit(unsigned, "--allow-unsigned-model") == 1  # loaded; then the missing spells
    assert audit(signed) == 3
    assert audit(signed, "--key-file", str(tmp_path / "model.key")) == 1
    cfg = Settings.from_dict({"model": {"signing_key_file": "model.key"}}, base_dir=tmp_path)
    assert audit(signed, "--config", str(cfg.save(tmp_path / "signed.toml"))) == 1
    cfg = Settings.from_dict({"model": {"allow_unsigned_model": True}}, base_dir=tmp_path)
    assert audit(unsigned, "--config", str(cfg.save(tmp_path / "unsigned.toml"))) == 1
    (tmp_path / "short.key").write_bytes(b"short")
    assert audit(signed, "--key-file", str(tmp_path / "short.key")) == 2
    assert "short.key holds 5 bytes" in capsys.readouterr().err


# ---------------------------------------------------------------- the benefit model
@pytest.fixture(scope="module")
def benefit_fit():
    from iizrisk.benefit import BenefitModel

    rng = np.random.default_rng(3)
    n = 3000
    x = rng.normal(size=n)
    t = rng.random(n) < 1 / (1 + np.exp(1.5 - 0.5 * x))
    y = rng.random(n) < 0.3 + 0.1 * x.clip(-2, 2) - t * 0.1 * (x > 0)
    table = pd.DataFrame({"person_id": [f"PSEUDONYM{i:07d}" for i in range(n)], "x": x,
                          "z": rng.normal(size=n), "treated": t, "revolving_door_next_12m": y.astype(float),
                          "index_date": pd.Timestamp("2020-01-31") + pd.to_timedelta(np.arange(n) % 60, "D")})
    with threadpool_limits(1):
        return table, BenefitModel(covariates=["x", "z"], population="all", random_state=0).fit(table)


def _unzipped(data: bytes) -> bytes:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return b"".join(z.read(name) for name in z.namelist())


def test_a_benefit_model_round_trips_without_its_rows(benefit_fit, tmp_path, monkeypatch):
    from iizrisk.benefit import load_benefit_model

    table, m = benefit_fit
    path = m.save(tmp_path / "benefit.skops")
    data = path.read_bytes()
    # no pseudonym in the file, compressed or not; the rows (data_) are not saved
    assert b"PSEUDONYM" not in data and b"PSEUDONYM" not in _unzipped(data)
    assert b"person_id" not in _unzipped(data)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("a pickle was loaded"))
    back = load_benefit_model(path)
    new = table[["x", "z"]].sample(500, random_state=1)
    assert np.array_equal(back.predict_benefit(new), m.predict_benefit(new))
    assert np.array_equal(back.predict_risk(new), m.predict_risk(new))
    pd.testing.assert_frame_equal(back.calibration_, m.calibration_)
    pd.testing.assert_frame_equal(back.blp_, m.blp_)
    assert back.method() == m.method() and back.summary_text() == m.summary_text()
    assert not hasattr(back, "data_") and hasattr(m, "data_")  # saving left the fitted model whole
    from iizrisk.benefit import evaluate_policies

    with pytest.raises(AttributeError, match="holds no rows"):
        evaluate_policies(back)


def test_a_benefit_model_file_with_an_untrusted_type_is_refused(benefit_fit, tmp_path):
    import copy

    from iizrisk.benefit import load_benefit_model

    _, m = benefit_fit
    bad = copy.copy(m)
    del bad.data_
    bad.calibration_, bad.blp_ = None, None
    bad.overlap_ = {"hook": os.system}  # a file that names a function to call
    data = sio.dumps(bad)
    assert any("system" in t for t in sio.get_untrusted_types(data=data))
    (tmp_path / "bad.skops").write_bytes(data)
    with pytest.raises(ModelError, match=r"outside the trusted list \(.*system"):
        load_benefit_model(tmp_path / "bad.skops")
    with pytest.raises(ModelError, match="outside the trusted list"):
        bad.save(tmp_path / "never.skops")
    assert not (tmp_path / "never.skops").exists()
    # a risk model's file is not a benefit model; a link is not followed
    (tmp_path / "other.skops").write_bytes(sio.dumps({"a": 1}))
    with pytest.raises(ModelError, match="not a BenefitModel"):
        load_benefit_model(tmp_path / "other.skops")
    good = m.save(tmp_path / "good.skops")
    (tmp_path / "link.skops").symlink_to(good)
    with pytest.raises(ModelError, match="symbolic link"):
        load_benefit_model(tmp_path / "link.skops")


# ---------------------------------------------------------------- what a key holder's signature covers
def _resign(folder: Path, key: bytes = KEY, **changes) -> dict:
    """The manifest changed and signed again with ``key`` (by a holder of the key)."""
    man = json.loads((folder / "manifest.json").read_text())
    man.update(changes)
    man["signature"] = {"algorithm": "HMAC-SHA-256", "value": mm._sign(man, key)}
    (folder / "manifest.json").write_text(json.dumps(man))
    return man


def test_the_signature_covers_the_model_files_hash(fitted, tmp_path):
    """Another model file with its hash written into the signed manifest: the signature no longer matches."""
    import zipfile

    folder = save_model(fitted, tmp_path / "m", key=KEY)
    other = sio.dumps(fitted, compression=zipfile.ZIP_STORED)  # a valid model file, other bytes
    assert other != (folder / "model.skops").read_bytes()
    (folder / "model.skops").write_bytes(other)
    man = json.loads((folder / "manifest.json").read_text())
    man["model_sha256"] = hashlib.sha256(other).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ModelError, match="signature check failed"):
        load_model(folder, key=KEY)


def test_only_the_one_signature_algorithm_is_accepted(fitted, tmp_path):
    folder = save_model(fitted, tmp_path / "m", key=KEY)
    man = json.loads((folder / "manifest.json").read_text())
    man["signature"]["algorithm"] = "HMAC-SHA-1"  # the value is still the right HMAC-SHA-256
    (folder / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ModelError, match="unknown signature algorithm"):
        load_model(folder, key=KEY)


def test_a_signed_file_of_a_foreign_type_or_other_features_is_refused(fitted, tmp_path):
    """Checks behind the signature: what the file builds must be the RiskModel the manifest describes."""
    from sklearn.linear_model import LogisticRegression

    X, y = frame()
    foreign = LogisticRegression().fit(X.fillna(0), y)  # skops builds it (a scikit-learn type), same columns
    folder = save_model(fitted, tmp_path / "m", key=KEY)
    data = sio.dumps(foreign)
    (folder / "model.skops").write_bytes(data)
    _resign(folder, model_sha256=hashlib.sha256(data).hexdigest())
    with pytest.raises(ModelError, match="holds a LogisticRegression, not a RiskModel"):
        load_model(folder, key=KEY)
    folder = save_model(fitted, tmp_path / "n", key=KEY)
    _resign(folder, features=[{"name": n, "dtype": "float32"} for n in ["a", "b", "d", "c"]])
    with pytest.raises(ModelError, match="other features than the model was fitted on"):
        load_model(folder, key=KEY)


def test_a_model_file_larger_than_any_iizrisk_writes_is_not_read(fitted, tmp_path, monkeypatch):
    folder = save_model(fitted, tmp_path / "m", key=KEY)
    size = (folder / "model.skops").stat().st_size
    monkeypatch.setattr(mm, "_MAX_FILE_BYTES", size - 1)
    with pytest.raises(ModelError, match=f"model.skops: {size:,} bytes is more than any model file"):
        load_model(folder, key=KEY)
    monkeypatch.setattr(mm, "_MAX_FILE_BYTES", size)
    assert load_model(folder, key=KEY).outcome == fitted.outcome


def test_saving_never_replaces_a_folder_that_holds_no_earlier_model(fitted, tmp_path):
    """Model-card names alone, without a manifest, are no earlier model: the folder is kept."""
    from iizrisk.errors import ConfigError

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model_card.md").write_text("someone's notes")
    with pytest.raises(ConfigError, match="holds no earlier model"):
        save_model(fitted, folder, key=KEY)
    assert [p.name for p in folder.iterdir()] == ["model_card.md"]
    (folder / "manifest.json").write_text("{}")  # another tool's manifest: still no earlier model
    with pytest.raises(ConfigError, match="holds no earlier model: its manifest.json"):
        save_model(fitted, folder, key=KEY)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model_card.md"]
    (folder / "manifest.json").write_text('{"format": "iizrisk-model/2"}')  # a model's manifest: replaced
    save_model(fitted, folder, key=KEY)
    assert not (folder / "model_card.md").exists() and load_model(folder, key=KEY).outcome == fitted.outcome


def test_a_key_of_exactly_32_bytes_signs_and_loads(fitted, tmp_path):
    key = bytes(range(32))
    folder = save_model(fitted, tmp_path / "m", key=key)
    assert load_model(folder, key=key).manifest_["signature"]["algorithm"] == "HMAC-SHA-256"
    with pytest.raises(KeyFileError, match="holds 31 bytes"):
        load_model(folder, key=key[:31])
