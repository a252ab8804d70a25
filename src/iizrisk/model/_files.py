"""Model files: ``model.skops`` and a signed ``manifest.json``, written atomically, loaded safely."""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import hmac
import io
import json
import logging
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..errors import ConfigError, KeyFileError, ModelError
from ..pseudonym import read_secret_file
from ..store import make_dirs, write_bytes_atomic, write_text_atomic
from ._estimator import RiskModel

logger = logging.getLogger("iizrisk")

#: Environment variable holding the model signing key (never a command-line argument).
KEY_ENV = "IIZRISK_MODEL_KEY"
#: Minimum length of a model signing key in bytes: HMAC-SHA-256 keys should be no shorter than
#: the 32-byte hash (RFC 2104, section 3). Pseudonymisation keys (pseudonym.MIN_KEY_BYTES) need 16.
MIN_SIGNING_KEY_BYTES = 32
SIGNATURE_ALGORITHM = "HMAC-SHA-256"
MODEL_FILE = "model.skops"
MANIFEST_FILE = "manifest.json"
FORMAT = "iizrisk-model/2"
#: the old format: a joblib pickle in model.joblib, loaded only when signed and verified
LEGACY_FORMAT = "iizrisk-model/1"
LEGACY_MODEL_FILE = "model.joblib"
_FILES = {FORMAT: MODEL_FILE, LEGACY_FORMAT: LEGACY_MODEL_FILE}
_PAYLOAD_SUFFIXES = (".skops", ".joblib", ".pkl", ".pickle")
#: What a model folder holds: the model file, its manifest and the model card (``iizrisk.modelcard``).
#: A folder holding only these, with the manifest, is an earlier model, which :func:`save_model` replaces;
#: any other non-empty folder (and a file) is refused.
MODEL_FOLDER_ENTRIES = (MODEL_FILE, LEGACY_MODEL_FILE, MANIFEST_FILE, "model_card.md", "model_card.html",
                        "model_card.json")
_MAX_FILE_BYTES = 1 << 30
#: Types :func:`load_model` builds from a ``model.skops`` beyond skops' own list of safe types
#: (scikit-learn estimators, numpy and Python containers). Each is built by ``__new__`` and
#: its attributes set (``__setstate__``): no code of the file runs. Anything else is refused.
TRUSTED_TYPES = (
    "iizrisk.benefit.BenefitModel",
    "iizrisk.benefit._Constant",
    "iizrisk.evaluation._propensity.LogisticPropensity",
    "iizrisk.features.FeatureSpec",
    "iizrisk.features.PointInTimeFeatures",
    "iizrisk.model.MedianImputer",
    "iizrisk.model.RiskModel",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.model_selection._split.KFold",
)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: open members relative to the opened folder (POSIX); elsewhere by path with a link check
_DIR_FD = (os.open in os.supports_dir_fd and os.listdir in os.supports_fd and hasattr(os, "O_DIRECTORY")
           and _NOFOLLOW != 0)


def _key_problem(key: bytes, origin: str) -> str | None:
    if not key:
        return f"{origin} is empty"
    if len(key) < MIN_SIGNING_KEY_BYTES:
        return (f"{origin} holds {len(key)} bytes; a model signing key needs at least {MIN_SIGNING_KEY_BYTES} "
                "(HMAC-SHA-256: no shorter than the hash, RFC 2104); create one with "
                "`(umask 077; python -c \"import secrets; print(secrets.token_hex(32))\" > FILE)`")
    return None


def _check_key(key: bytes, origin: str) -> bytes:
    if not isinstance(key, bytes):
        raise KeyFileError(f"{origin} must be bytes, not {type(key).__name__}")
    problem = _key_problem(key, origin)
    if problem:
        raise KeyFileError(problem)
    return key


def signing_key(*, env: str | None = None, file: str | Path | None = None) -> bytes | None:
    """The model signing key from a file or an environment variable, or None when none is configured.

    Parameters
    ----------
    env : str, optional
        Name of the environment variable holding the key. None (the default)
        means :data:`KEY_ENV` (``IIZRISK_MODEL_KEY``), which is optional: unset,
        there is no key. A variable named explicitly must be set.
    file : path, optional
        File holding the key (surrounding whitespace is ignored). It wins over
        any environment variable.

    Keys are never taken from the command line (they would show in process
    lists and shell history). A key needs at least :data:`MIN_SIGNING_KEY_BYTES`
    (32) bytes.

    Raises
    ------
    KeyFileError
        The file is missing, unreadable, empty or too short; an explicitly named
        variable is not set; the variable is set but empty or too short. The
        message names the file or variable, never the key.
    """
    if file is not None:
        p = Path(file)
        try:
            key = read_secret_file(p, "signing key file", "sign a model the nightly run would load")
        except FileNotFoundError:
            raise KeyFileError(f"signing key file {p} does not exist; create it with "
                               f"`(umask 077; python -c \"import secrets; print(secrets.token_hex(32))\" > {p})` "
                               "and keep it readable only by the service account") from None
        except OSError as exc:
            raise KeyFileError(f"signing key file {p} cannot be read: {exc.strerror}") from exc
        return _check_key(key, f"signing key file {p}")
    name = KEY_ENV if env is None else env
    value = os.environ.get(name)
    if value is None:
        if env is not None and env != KEY_ENV:
            raise KeyFileError(f"environment variable {env} (named as the model signing key) is not set; "
                               "set it, or name another source of the key")
        return None
    return _check_key(value.encode("utf-8").strip(), f"environment variable {name}")


def model_key(settings) -> bytes | None:
    """The model signing key of a deployment, resolved like ``iizrisk train`` and ``score`` do.

    ``[model] signing_key_file`` (relative to the configuration file) wins; else
    the variable named by ``[model] signing_key_env`` (which must be set); else
    the default variable :data:`KEY_ENV` when set; else None (no key: only an
    unsigned model can load, and only with ``[model] allow_unsigned_model = true``).

    Raises
    ------
    KeyFileError
    """
    m = settings.model
    file = settings.resolve(m.signing_key_file) if m.signing_key_file else None
    return signing_key(env=m.signing_key_env or None, file=file)


def _canonical(manifest: dict) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def _sign(manifest: dict, key: bytes) -> str:
    return hmac.new(key, _canonical(manifest), hashlib.sha256).hexdigest()


def _versions() -> dict[str, str]:
    import sklearn
    import skops

    from .. import __version__

    out = {"iizrisk": __version__, "python": sys.version.split()[0], "numpy": np.__version__,
           "pandas": pd.__version__, "scikit-learn": sklearn.__version__, "skops": skops.__version__}
    try:
        import shap

        out["shap"] = shap.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def _untrusted(data: bytes) -> list[str]:
    """Types in a skops file outside skops' own safe list and ours (nothing is constructed)."""
    import skops.io as sio

    return sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))


def _dump(model: Any) -> bytes:
    import zipfile

    import skops.io as sio

    data = sio.dumps(model, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    extra = _untrusted(data)
    if extra:  # never write a model that load_model would refuse
        raise ModelError(f"the model holds types outside the trusted list of iizrisk.model.TRUSTED_TYPES: "
                         f"{', '.join(extra)}; use the features and estimators of iizrisk, or add the type "
                         "to the list after checking that building it runs no code")
    return data


def _leftover(name: str) -> bool:
    """A temporary file an interrupted atomic write of a model folder's file left (``.model_card.md.x.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp") and any(
        name.startswith(f".{e}.") for e in MODEL_FOLDER_ENTRIES)


def check_model_folder(directory: str | Path, what: str = "the model folder") -> Path:
    """``directory`` if :func:`save_model` may write there: absent, an empty folder or an earlier model's.

    Saving replaces the whole folder: a file, or a folder holding anything but a model's files
    (:data:`MODEL_FOLDER_ENTRIES`, with a ``manifest.json`` of a model format), is refused so that
    a mistyped path (the data folder, a CSV, another tool's folder with its own manifest) is never
    wiped. A symbolic link is replaced, never what it points to.

    Raises
    ------
    ConfigError
        Exit code 2, naming ``what`` and the fix.
    """
    directory = Path(directory)
    if directory.is_symlink() or not directory.exists():
        return directory
    fix = "give a new or empty folder, or an earlier model's folder (which is replaced)"
    if not directory.is_dir():
        raise ConfigError(f"{what} {directory}: a file, not a model folder; writing the model would replace it: "
                          f"{fix}")
    try:
        entries = sorted(p.name for p in directory.iterdir())
    except OSError as exc:
        raise ConfigError(f"{what} {directory}: the folder cannot be listed ({exc.strerror or exc}); {fix}") from None
    foreign = [e for e in entries if e not in MODEL_FOLDER_ENTRIES and not _leftover(e)]
    if foreign or (entries and MANIFEST_FILE not in entries):
        shown = ", ".join((foreign or entries)[:3]) + (", ..." if len(foreign or entries) > 3 else "")
        raise ConfigError(f"{what} {directory}: the folder is not empty and holds no earlier model ({shown}); "
                          f"writing the model would replace it: {fix}")
    if entries and not _is_model_manifest(directory):
        raise ConfigError(f"{what} {directory}: the folder holds no earlier model: its {MANIFEST_FILE} is not an "
                          f"iizrisk model's (no model format {' or '.join(_FILES)} in it); writing the model would "
                          f"replace it: {fix}")
    return directory


def _is_model_manifest(directory: Path) -> bool:
    """Whether ``directory``'s manifest is one :func:`save_model` wrote (a model format), not another tool's."""
    try:
        return read_manifest(directory).get("format") in _FILES
    except ModelError:  # unreadable, a link, not JSON: not ours, or damaged beyond telling
        return False


def save_model(model: RiskModel, directory: str | Path, *, key: bytes | None = None) -> Path:
    """Write ``model.skops`` and ``manifest.json`` to ``directory`` atomically.

    The model is stored with ``skops.io`` (no pickle: loading builds only the
    types of :data:`TRUSTED_TYPES`). The files are written to a temporary
    folder beside ``directory`` which then replaces it, so a reader never sees
    a half-written model. With ``key`` the manifest, which holds the SHA-256 of
    the model file, carries an HMAC-SHA-256 signature; without one
    :func:`load_model` refuses the model unless unsigned models are allowed.

    The model card is not written here (:mod:`iizrisk.model` does not depend
    on :mod:`iizrisk.modelcard`): whoever saves the model writes it from the
    manifest, as ``iizrisk train`` and the demo do::

        write_model_card(directory, directory)  # model_card.md/.html/.json

    ``directory`` must be absent, an empty folder or an earlier model's folder
    (:func:`check_model_folder`): the save replaces it whole.

    Returns
    -------
    Path of the model directory.

    Raises
    ------
    ConfigError
        ``directory`` is a file, or a non-empty folder that holds no earlier model.
    KeyFileError
        ``key`` is shorter than :data:`MIN_SIGNING_KEY_BYTES`.
    ModelError
        The model holds a type :func:`load_model` would refuse.
    """
    check_is_fitted(model, "estimator_")
    if key is not None:
        _check_key(key, "the signing key given to save_model")
    directory = check_model_folder(directory)
    data = _dump(model)
    make_dirs(directory.parent)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.tmp-"))
    try:
        write_bytes_atomic(data, tmp / MODEL_FILE)
        manifest = {
            "format": FORMAT,
            "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
            "model_file": MODEL_FILE,
            "model_sha256": hashlib.sha256(data).hexdigest(),
            "versions": _versions(),
            "model": model.model,
            "outcome": model.outcome,
            "horizon_months": model.horizon_months,
            "calibration": model.calibration,
            "features": [{"name": n, "dtype": model.feature_dtypes_[n]} for n in model.feature_names_in_],
            "feature_params": ({k: (list(v) if isinstance(v, tuple) else v)
                                for k, v in model.features.get_params().items()}
                               if model.features is not None else None),
            "input": getattr(model, "input_info_", None),
            "training": getattr(model, "training_", model.fit_info_),
            "metrics": getattr(model, "metrics_", None),
            "note": "Scores trigger a human review, never a decision.",
        }
        if getattr(model, "reference_", None) is not None:  # the training reference of iizrisk.monitoring
            manifest["reference"] = model.reference_
        if key is not None:
            manifest["signature"] = {"algorithm": SIGNATURE_ALGORITHM, "value": _sign(manifest, key)}
        write_text_atomic(json.dumps(manifest, indent=2, default=str), tmp / MANIFEST_FILE)
        old = None
        check_model_folder(directory)  # again: something may have been put there meanwhile
        if directory.is_symlink() or directory.exists():
            old = directory.parent / f".{directory.name}.old-{os.getpid()}"
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            if old.is_symlink() or not old.is_dir():
                old.unlink()
            else:
                shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if key is None:
        logger.warning("model written to %s UNSIGNED: `iizrisk run` and `score` refuse it unless unsigned "
                       "models are allowed; sign it with a key (--key-file or %s)", directory, KEY_ENV)
    else:
        logger.info("model written to %s (signed)", directory)
    return directory


class _Folder:
    """A model folder opened once: members are read relative to it, never through a link.

    The folder itself is opened with ``O_NOFOLLOW`` (a link is refused) and its
    members by name relative to that open folder, each read once into memory
    from one open file handle that must be a regular file. What is verified is
    what is then deserialised; no path is opened twice.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.fd: int | None = None

    def __enter__(self) -> _Folder:
        d = self.directory
        try:
            st = os.lstat(d)
        except FileNotFoundError:
            raise ModelError(f"{d}: not a model directory (it does not exist); train one with "
                             "`iizrisk train` or correct [model] dir / --model") from None
        except OSError as exc:
            raise ModelError(f"{d}: cannot read the model directory: {exc.strerror}") from exc
        if stat.S_ISLNK(st.st_mode):
            raise ModelError(f"{d}: is a symbolic link (to {os.readlink(d)}); a link can be switched to "
                             "another folder, so models are not loaded through one: point [model] dir or "
                             f"--model at the real folder {os.path.realpath(d)}")
        if not stat.S_ISDIR(st.st_mode):
            raise ModelError(f"{d}: not a model directory (not a folder); a model is the folder written by "
                             "`iizrisk train`")
        if _DIR_FD:
            try:
                self.fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC)
            except OSError as exc:  # switched to a link or removed since lstat
                raise ModelError(f"{d}: cannot open the model directory ({exc.strerror}); "
                                 "was it replaced while loading? Try again") from exc
            if not stat.S_ISDIR(os.fstat(self.fd).st_mode):  # pragma: no cover - O_DIRECTORY
                raise ModelError(f"{d}: not a folder")
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def names(self) -> list[str]:
        return os.listdir(self.fd if self.fd is not None else self.directory)

    def read(self, name: str) -> bytes:
        """The bytes of member ``name``, read from one open file handle."""
        return _read_member(self, name)


def _read_member(folder: _Folder, name: str) -> bytes:
    path = folder.directory / name
    if not name or name in {".", ".."} or "/" in name or os.sep in name:
        raise ModelError(f"{folder.directory}: the manifest names the model file {name!r}, which is not "
                         "a file name in the folder; the manifest was changed: retrain the model")
    flags = os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC | getattr(os, "O_BINARY", 0)
    try:
        if folder.fd is not None:
            fd = os.open(name, flags, dir_fd=folder.fd)
        else:  # pragma: no cover - platforms without dir_fd
            if path.is_symlink():
                raise OSError(errno.ELOOP, "is a symbolic link")
            fd = os.open(path, flags)
    except FileNotFoundError:
        raise ModelError(f"{path}: missing; the model directory is incomplete: retrain the model") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP or (folder.fd is not None and os.path.islink(path)):
            raise ModelError(f"{path}: is a symbolic link; model files are not read through links "
                             "(the target could be switched): copy the real file or retrain") from None
        raise ModelError(f"{path}: cannot be read: {exc.strerror}") from exc
    # checked on the raw descriptor: os.fdopen refuses a folder with an error that names the
    # descriptor's number, not the path
    try:
        st = os.fstat(fd)
    except OSError as exc:  # pragma: no cover - fstat of an open descriptor
        os.close(fd)
        raise ModelError(f"{path}: cannot be read: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        what = "is a folder, not a regular file" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise ModelError(f"{path}: {what}; the model directory was changed: retrain the model")
    with os.fdopen(fd, "rb") as fh:
        if st.st_size > _MAX_FILE_BYTES:
            raise ModelError(f"{path}: {st.st_size:,} bytes is more than any model file iizrisk writes "
                             f"({_MAX_FILE_BYTES:,}); refusing to read it")
        return fh.read(_MAX_FILE_BYTES + 1)


def _parse_manifest(raw: bytes, path: Path) -> dict:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: manifest is not valid JSON ({exc}); the model directory is damaged") from exc
    if not isinstance(manifest, dict):
        raise ModelError(f"{path}: manifest is not a JSON object; the model directory is damaged")
    return manifest


def read_manifest(directory: str | os.PathLike[str]) -> dict:
    """The manifest of a model directory, **not verified** (use the one :func:`load_model` verified).

    Links and non-regular files are refused as in :func:`load_model`.
    """
    with _Folder(Path(directory)) as folder:
        return _manifest_of(folder)


def _manifest_of(folder: _Folder) -> dict:
    if MANIFEST_FILE not in folder.names():
        raise ModelError(f"{folder.directory}: not a model directory ({MANIFEST_FILE} missing); "
                         "train one with `iizrisk train`")
    return _parse_manifest(folder.read(MANIFEST_FILE), folder.directory / MANIFEST_FILE)


_UNSIGNED_FIX = (f"set [model] signing_key_file / signing_key_env (or {KEY_ENV}, or --key-file) and "
                 "retrain with `iizrisk train --key-file FILE`, or accept unsigned models with [model] "
                 "allow_unsigned_model = true (--allow-unsigned-model on the command line)")


def _verify_signature(manifest: dict, directory: Path, key: bytes | None, allow_unsigned: bool) -> bool:
    """True when the manifest's signature was verified with ``key``; False for an allowed unsigned model."""
    sig = manifest.get("signature")
    if key is not None:
        if not sig:
            raise ModelError(f"{directory}: the model is not signed but a signing key is configured; refusing "
                             "to load it (retrain with the key: `iizrisk train --key-file FILE`, or remove "
                             "the key setting)")
        if not isinstance(sig, dict) or sig.get("algorithm") != SIGNATURE_ALGORITHM:
            raise ModelError(f"{directory}: unknown signature algorithm in the manifest; expected "
                             f"{SIGNATURE_ALGORITHM}: retrain the model with the key")
        if not hmac.compare_digest(_sign(manifest, key), str(sig.get("value", ""))):
            raise ModelError(f"{directory}: signature check failed: the manifest was changed or signed "
                             "with another key; refusing to load the model (configure the key it was "
                             "trained with, or retrain)")
        return True
    if sig:
        raise ModelError(f"{directory}: the model is signed but no signing key is configured, so the "
                         "signature cannot be checked; refusing to load it: set [model] signing_key_file / "
                         f"signing_key_env (or {KEY_ENV}, or --key-file) to the key it was trained with")
    if not allow_unsigned:
        raise ModelError(f"{directory}: the model is not signed and no signing key is configured; without a "
                         "signature the file's hash proves nothing (anyone who can write the folder can "
                         f"recompute it). Fix: {_UNSIGNED_FIX}")
    logger.warning("%s: loading an UNSIGNED model (unsigned models are allowed): its hash only shows that the "
                   "file matches its manifest, not who wrote them", directory)
    return False


def _loads_skops(data: bytes, path: Path) -> Any:
    import skops.io as sio

    try:
        extra = _untrusted(data)
    except Exception as exc:  # not a skops zip, a damaged schema...
        raise ModelError(f"{path}: not a readable model file ({type(exc).__name__}: {exc}); "
                         "the model directory is damaged: retrain the model") from exc
    if extra:
        raise ModelError(f"{path}: holds types outside the trusted list ({', '.join(extra)}); refusing to "
                         "build them (the file may try to run code): retrain the model with iizrisk")
    try:
        return sio.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:
        raise ModelError(f"{path}: the model cannot be read ({type(exc).__name__}: {exc}); it may come "
                         "from another version of iizrisk or scikit-learn: retrain the model") from exc


def load_model(directory: str | Path, *, key: bytes | None = None, allow_unsigned: bool = False) -> RiskModel:
    """Load a model directory, verifying it before building anything from it.

    The folder and each file are opened once (no symbolic links, regular files
    only) and read into memory; the checks run on those bytes and the model is
    built from the same bytes, so the file checked is the file loaded. In order:

    1. the manifest's HMAC-SHA-256 signature with ``key``. A signed manifest
       without a key, or an unsigned one with a key, is refused; an unsigned
       model without a key is refused unless ``allow_unsigned`` (its hash
       alone proves nothing: anyone who can write the folder can recompute it);
    2. the SHA-256 of the model file against the (verified) manifest;
    3. the model file is built: ``model.skops`` with ``skops.io``, allowing only
       skops' safe types and :data:`TRUSTED_TYPES`. An old ``model.joblib``
       (format ``iizrisk-model/1``) is unpickled only when its signature was
       verified with ``key`` (then it was written by a holder of the key);
       unsigned it is refused even when unsigned models are allowed.

    The verified manifest is kept as ``model.manifest_``.

    Parameters
    ----------
    directory : path
    key : bytes, optional
        The signing key (:func:`signing_key`, :func:`model_key`).
    allow_unsigned : bool, default False
        Load an unsigned ``model.skops`` when no key is configured
        (``[model] allow_unsigned_model``, ``--allow-unsigned-model``).

    Raises
    ------
    ModelError
        Missing files, links, a wrong hash or signature, an unsigned model not
        allowed, a file holding untrusted types, or not a RiskModel.
    KeyFileError
        ``key`` is too short.
    """
    directory = Path(directory)
    if key is not None:
        _check_key(key, "the signing key given to load_model")
    with _Folder(directory) as folder:
        manifest = _manifest_of(folder)
        fmt = manifest.get("format")
        if fmt not in _FILES:
            raise ModelError(f"{directory}: unknown model format {fmt!r}; expected {FORMAT}: retrain the model")
        signed = _verify_signature(manifest, directory, key, allow_unsigned)
        name = _FILES[fmt]
        if manifest.get("model_file", name) != name:
            raise ModelError(f"{directory}: the manifest names the model file {manifest.get('model_file')!r}; "
                             f"format {fmt} keeps it in {name}: the manifest was changed, retrain the model")
        stray = sorted(n for n in folder.names() if n != name and n.lower().endswith(_PAYLOAD_SUFFIXES))
        if stray:
            raise ModelError(f"{directory}: holds model file(s) the manifest does not list ({', '.join(stray)}); "
                             "the folder was changed by hand or mixes two models: remove them or retrain")
        if fmt == LEGACY_FORMAT and not signed:
            raise ModelError(f"{directory / name}: an unsigned model in the old pickle format "
                             f"({LEGACY_FORMAT}); a pickle can run any code when loaded, so it is never loaded "
                             f"unsigned: retrain the model (`iizrisk train --key-file FILE` writes {MODEL_FILE})")
        data = folder.read(name)
    path = directory / name
    digest = hashlib.sha256(data).hexdigest()
    want = str(manifest.get("model_sha256", ""))
    if not hmac.compare_digest(digest, want):
        # the hash after a word, never after "256": the message's guard against long numbers would join them
        raise ModelError(f"{path}: its SHA-256 hash, {digest[:12]}..., does not match the manifest's, {want[:12]}...: "
                         "the file was changed; refusing to load it (retrain the model)")
    if fmt == LEGACY_FORMAT:
        import joblib

        logger.warning("%s: old pickle format, loaded because its signature was verified; retrain to write "
                       "%s", path, MODEL_FILE)
        model = joblib.load(io.BytesIO(data))
    else:
        model = _loads_skops(data, path)
    if not isinstance(model, RiskModel):
        raise ModelError(f"{path}: holds a {type(model).__name__}, not a RiskModel")
    listed = [f.get("name") for f in manifest.get("features", [])]
    if listed != list(getattr(model, "feature_names_in_", [])):
        raise ModelError(f"{directory}: the manifest lists other features than the model was fitted on; "
                         "the model directory is inconsistent: re-train it")
    model.manifest_ = manifest
    return model
