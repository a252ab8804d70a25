"""Risk models: training on monthly snapshots with a temporal split, calibration, scoring, model files.

A :class:`RiskModel` is a scikit-learn classifier over the point-in-time
features of :mod:`iizrisk.features`: gradient boosting
(``HistGradientBoostingClassifier``, no native categoricals) by default, or a
scaled logistic regression as the transparent alternative. Probabilities are
calibrated on a *later* time slice than the one the model learnt from
(isotonic by default, via ``CalibratedClassifierCV`` around a frozen model).

:func:`train` builds the snapshots (everyone with a spell open at each month
end), the labels (:mod:`iizrisk.outcomes`, full data) and a temporal split:

* the latest ``validation_months`` of labelled as-of dates are held out;
* earlier dates are used only if their label horizon ends before the first
  held-out date (a gap of the horizon): no training label sees the held-out
  period, and no later snapshot of a person informs an earlier validation;
* within the earlier dates the latest ``calibration_months`` calibrate the
  probabilities, with the same gap before them.

On the held-out dates the report compares the model with the other model kind
and with the BFS revolving-door rule: ROC AUC, average precision, Brier score,
expected calibration error and precision/recall at a capacity of k people per
as-of date.

Scores are hints that trigger a human review, never decisions.

Model files (:func:`save_model`, :func:`load_model`) are a directory with
``model.skops``, ``manifest.json`` (SHA-256 of the model file, library
versions, features with dtypes, outcome, horizon, training period, data
fingerprint, metrics, and an HMAC-SHA-256 signature of all that with the
signing key) and the model card. A model file must not be able to run code
when it is loaded, since the nightly job loads it unattended:

* **Format.** The fitted model is stored with ``skops.io`` (a zip of JSON and
  ``.npy`` arrays, no pickle). Loading builds only skops' own safe types and
  the short list :data:`TRUSTED_TYPES` (our ``RiskModel``, the features spec,
  a few private scikit-learn helpers, numpy dtypes); a file holding anything else is refused
  before anything is built, and ``trusted=True`` is never used. We chose skops
  over our own JSON/npz of the estimators' parameters because it is the
  maintained library for exactly this, and a ``RiskModel`` (gradient boosting
  or a logistic pipeline, isotonic or sigmoid calibration, the feature spec)
  goes through it with bit-identical probabilities; our own format would have
  to follow every private attribute of ``HistGradientBoostingClassifier``.
* **Signature.** Without a key a file's hash proves nothing: whoever can write
  the folder can write a matching manifest. :func:`load_model` therefore
  refuses an unsigned model unless ``allow_unsigned=True`` (``[model]
  allow_unsigned_model``, ``--allow-unsigned-model``), and a signed one when no
  key is configured (it cannot be checked). Keys have at least
  :data:`MIN_SIGNING_KEY_BYTES` bytes.
* **One read.** The folder (no symbolic link) and each file (a regular file,
  no link) are opened once and read into memory; the signature and hash are
  checked on those bytes and the model is built from the same bytes, so the
  file checked is the file loaded.
* **Old folders.** ``model.joblib`` (format ``iizrisk-model/1``, a pickle) is
  loaded only when its manifest's signature verifies with the configured key,
  which proves it was written by a holder of the key; an unsigned pickle is
  never loaded, even when unsigned models are allowed. Retrain to move to
  ``model.skops``.

Layout: one private module per concept, everything public re-exported here
(``from iizrisk.model import X`` is the interface):

* ``_estimator``: :class:`RiskModel`, :class:`BfsRuleBaseline`;
* ``_split``: :func:`temporal_split`;
* ``_metrics``: :func:`evaluate`, :func:`expected_calibration_error`,
  :func:`precision_recall_at_k`;
* ``_training``: :func:`train`, :class:`TrainingReport`, :func:`data_fingerprint`;
* ``_scoring``: :func:`score`, :func:`check_input`, :func:`risk_bands`;
* ``_files``: :func:`save_model`, :func:`check_model_folder`, :func:`load_model`, :func:`read_manifest`,
  :func:`signing_key`, :func:`model_key`, :data:`TRUSTED_TYPES`.

The public classes keep ``__module__ == "iizrisk.model"``: model files
(``model.skops`` and old pickles) record the class as
``iizrisk.model.RiskModel``, and :data:`TRUSTED_TYPES` allows that name, so
files written before and after the package split load alike. This package
does not import :mod:`iizrisk.modelcard` (which reads manifests from here);
whoever saves a model writes its card.

Examples
--------
>>> import numpy as np
>>> import pandas as pd
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"]).astype("float32")
>>> y = (X["a"] + rng.normal(size=400) > 1).to_numpy()
>>> m = RiskModel(model="logistic", calibration=None).fit(X, y)
>>> m.predict_proba(X).shape
(400, 2)
"""

from __future__ import annotations

from ._estimator import MODEL_KINDS, BfsRuleBaseline, MedianImputer, RiskModel
from ._files import (
    KEY_ENV,
    MIN_SIGNING_KEY_BYTES,
    TRUSTED_TYPES,
    check_model_folder,
    load_model,
    model_key,
    read_manifest,
    save_model,
    signing_key,
)
from ._metrics import evaluate, expected_calibration_error, precision_recall_at_k
from ._scoring import check_input, risk_bands, score
from ._split import temporal_split
from ._training import TrainingReport, data_fingerprint, train

__all__ = [
    "MODEL_KINDS",
    "RiskModel",
    "BfsRuleBaseline",
    "MedianImputer",
    "TrainingReport",
    "train",
    "score",
    "risk_bands",
    "temporal_split",
    "evaluate",
    "expected_calibration_error",
    "precision_recall_at_k",
    "check_input",
    "data_fingerprint",
    "save_model",
    "check_model_folder",
    "load_model",
    "read_manifest",
    "signing_key",
    "model_key",
    "KEY_ENV",
    "MIN_SIGNING_KEY_BYTES",
    "TRUSTED_TYPES",
]

# the public path, recorded in model files (skops and pickle) and allowed by TRUSTED_TYPES:
# moving a class between the private modules must not change it
for _cls in (RiskModel, BfsRuleBaseline, MedianImputer, TrainingReport):
    _cls.__module__ = __name__
del _cls
