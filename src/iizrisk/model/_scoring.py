"""Scoring: everyone with a spell open at T, the input checks against the fitted model, risk bands."""

from __future__ import annotations

import numbers
import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..errors import InputMismatchError
from ..features import PointInTimeFeatures
from ..schema import dtype_kind
from ..spells import as_of_day, check_spells_frame, empty_number_column, refuse_as_of_after_data

if TYPE_CHECKING:
    from ._estimator import RiskModel


def check_input(model: RiskModel, *, X: pd.DataFrame | None = None, spells: pd.DataFrame | None = None,
                interventions: pd.DataFrame | None = None, source: str = "scoring input") -> None:
    """Check scoring input against what the model was fitted on; raise with a readable diff.

    ``X`` is compared with the feature names and dtypes, ``spells`` with the
    canonical columns present at training (and their kinds), and the presence
    of interventions with their use at training.

    Raises
    ------
    InputMismatchError
    """
    lines: list[str] = []
    if X is not None:
        want = list(model.feature_names_in_)
        have = list(X.columns)
        missing = [c for c in want if c not in have]
        extra = [c for c in have if c not in want]
        if missing:
            lines.append(f"  missing feature columns ({len(missing)}): {', '.join(missing[:10])}"
                         + (" ..." if len(missing) > 10 else ""))
        if extra:
            lines.append(f"  unexpected feature columns ({len(extra)}): {', '.join(extra[:10])}"
                         + (" ..." if len(extra) > 10 else ""))
        for c in want:
            if c in have:
                if dtype_kind(X[c].dtype) != "number":
                    lines.append(f"  {c}: model {model.feature_dtypes_.get(c)}, input {X[c].dtype}")
    info = getattr(model, "input_info_", None)
    if spells is not None and info is not None:
        for col, kind in info.get("columns", {}).items():
            if col not in spells.columns:
                lines.append(f"  spells column {col!r} ({kind}) was present at training and is missing")
            elif dtype_kind(spells[col].dtype) != kind and not (kind == "date" and empty_number_column(spells[col])):
                lines.append(f"  spells column {col!r}: model {kind}, input {dtype_kind(spells[col].dtype)} "
                             f"({spells[col].dtype})")
        if info.get("interventions") and interventions is None:
            lines.append("  interventions were used at training and are missing (give them: --interventions to "
                         "`iizrisk score`, [deployment] interventions to `iizrisk run`)")
    if lines:
        raise InputMismatchError(f"{source} does not match the model:\n" + "\n".join(lines)
                                 + "\nfix: provide the same canonical columns and types as at training, "
                                 "or retrain the model on this input")



#: The rule for risk-band thresholds, the same as for ``[worklist] risk_bands`` (:mod:`iizrisk.config`).
BANDS_RULE = ("two numbers with 0 < low < high < 1 (a risk below low is in band low, from low on medium, "
              "from high on high)")


def check_bands(bands) -> tuple[float, float]:
    """The thresholds ``(low, high)`` of the bands medium and high, checked.

    The rule of ``[worklist] risk_bands`` in the deployment file: two numbers
    (not booleans) with ``0 < low < high < 1``; ``nan`` and infinities are
    refused by it.

    Raises
    ------
    ValueError
        Naming the thresholds given and the rule (:data:`BANDS_RULE`).

    Examples
    --------
    >>> check_bands([0.1, 0.25])
    (0.1, 0.25)
    """
    try:
        values = tuple(bands)
    except TypeError:
        values = ()
    if not (len(values) == 2
            and all(isinstance(b, numbers.Real) and not isinstance(b, bool) for b in values)
            and 0 < float(values[0]) < float(values[1]) < 1):
        raise ValueError(f"risk bands {bands!r}: give {BANDS_RULE}, e.g. (0.10, 0.25)")
    return float(values[0]), float(values[1])


def risk_bands(risk, bands=(0.10, 0.25)) -> np.ndarray:
    """Band names ``low`` / ``medium`` / ``high`` for calibrated risks.

    ``bands`` are the thresholds of medium and high (:func:`check_bands`: two
    numbers with ``0 < low < high < 1``; anything else raises ValueError).

    Examples
    --------
    >>> risk_bands([0.05, 0.1, 0.3]).tolist()
    ['low', 'medium', 'high']
    """
    names = np.array(["low", "medium", "high"], dtype=object)
    thresholds = np.asarray(check_bands(bands), dtype=np.float64)
    return names[np.searchsorted(thresholds, np.asarray(risk), side="right")]


def _uncalibrated(model, X: pd.DataFrame, risk: np.ndarray) -> np.ndarray:
    """The base model's score before calibration (log-odds), the tie-break of equal calibrated risks.

    A model without ``decision_function`` has no finer order than its risks: the risks themselves.
    """
    if not len(X) or not hasattr(model, "decision_function"):
        return np.asarray(risk, dtype=np.float64)
    return np.asarray(model.decision_function(X), dtype=np.float64)


def _check_model(model) -> None:
    """Refuse something that is no fitted risk model: a model folder's path or a DataFrame given in its place.

    The value itself is never shown (a DataFrame in the wrong argument holds pseudonyms).

    Raises
    ------
    TypeError
        Naming what was given and the fix.
    """
    if isinstance(model, str | os.PathLike):
        raise TypeError("model must be a fitted RiskModel, got a path; load a saved model first: "
                        "model = iizrisk.load_model(path)")
    if not hasattr(model, "predict_proba") or isinstance(model, pd.DataFrame | pd.Series | np.ndarray):
        raise TypeError(f"model must be a fitted RiskModel (from iizrisk.train or iizrisk.load_model), got "
                        f"{type(model).__name__}; the spells are the second argument: score(model, spells, "
                        "as_of=...)")


def score(model: RiskModel, spells: pd.DataFrame, *, as_of, interventions: pd.DataFrame | None = None,
          bands=(0.10, 0.25), return_features: bool = False, view=None, data_end=None):
    """Score everyone with a spell open on ``as_of``.

    Only the point-in-time view at ``as_of`` is used, so rows after the as-of
    date change nothing. ``view``, when given, is that view already built
    (a :class:`~iizrisk.view.View`; see :meth:`PointInTimeFeatures.transform`).
    ``data_end`` is the last observed day of ``spells`` (default: their
    latest recorded date), as for :func:`~iizrisk.flags.compute_flags`.

    Returns
    -------
    DataFrame
        ``person_id, as_of, outcome, risk, risk_band, rank`` sorted by rank
        (1 = highest risk; equal calibrated risks -- isotonic calibration
        creates many -- by the uncalibrated score, the base model's log-odds
        (``model.decision_function``); truly equal scores in order of the
        person's first appearance among the rows known at ``as_of``); with
        ``return_features`` also the feature frame (same row order).

    Raises
    ------
    ValidationError
        Without ``view``: ``as_of`` lies more than 14 days after ``data_end``
        (:func:`~iizrisk.spells.refuse_as_of_after_data`). The
        nightly run checks that itself (``[health] max_as_of_after_data_days``,
        which ``--force`` may pass) and gives its view.
    """
    _check_model(model)
    check_spells_frame(spells)
    check_is_fitted(model, "estimator_")
    check_input(model, spells=spells, interventions=interventions)
    ft = model.features if model.features is not None else PointInTimeFeatures().fit(None)
    X = ft.transform(spells, as_of=as_of, interventions=interventions, view=view)  # checks the rows first
    if view is None:
        refuse_as_of_after_data(spells, as_of_day(as_of), data_end=data_end)
    if len(X) and hasattr(model, "risk_and_log_odds"):
        risk, raw = model.risk_and_log_odds(X)  # one pass of the base model for both
    else:
        risk = model.predict_proba(X)[:, 1] if len(X) else np.array([], dtype=np.float64)
        raw = _uncalibrated(model, X, risk)
    pid = X.index.get_level_values("person_id")
    # isotonic calibration maps whole ranges of scores to one risk: equal risks are ordered by the
    # uncalibrated score (the calibrated values are kept); truly equal scores keep the feature rows'
    # order (first appearance in the input among the rows known at the as-of date, which later rows
    # cannot change)
    order = np.lexsort((-raw, -risk))
    out = pd.DataFrame({
        # taken in Arrow (a round trip through a million Python strings cost 0.4 s)
        "person_id": pd.Series(pid.take(order).astype("str").array),
        "as_of": np.asarray(X.index.get_level_values("as_of"))[order],
        "outcome": model.outcome,
        "risk": risk[order],
        "risk_band": pd.Series(risk_bands(risk[order], bands), dtype="str"),
        "rank": np.arange(1, len(X) + 1, dtype=np.int64),
    })
    if return_features:
        return out, X.iloc[order]
    return out
