"""Explanations: per-person contributions, reason codes in four languages, global importance.

Contributions are in log-odds of the base model, *before* calibration:
``base_value + contributions.sum(axis=1) == model.decision_function(X)``.

* gradient boosting: TreeSHAP (``shap.TreeExplainer``, path-dependent);
* logistic regression: exact linear contributions ``coef * z`` of the scaled
  inputs (the scaler centres the training data, so the base value is the
  intercept); contributions of missing-value indicators go to their feature.

Every explanation is checked against ``decision_function`` and
:class:`~iizrisk.errors.ModelError` is raised when the sum is off (shap is
known to return silently wrong values for ``HistGradientBoostingClassifier``
with native categorical features, which :class:`~iizrisk.model.RiskModel`
refuses anyway).

SHAP on boosting runs at a few thousand rows per second and core: explain the
rows that need it (the worklist, a sample for global views), never everyone.

Reason codes are the three features that raise the person's risk most (largest
positive contributions), with a sentence showing the person's value, e.g.
"3 Wechsel zwischen Institutionen in den letzten 24 Monaten".

Examples
--------
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame(rng.poisson(1.0, size=(300, 2)), columns=["n_transitions_24m", "n_reentries_24m"])
>>> X = X.astype("float32")
>>> y = (X["n_transitions_24m"] + rng.normal(size=300) > 2).to_numpy()
>>> from iizrisk.model import RiskModel
>>> m = RiskModel(model="logistic", calibration=None).fit(X, y)
>>> ex = explain(m, X.head(5))
>>> bool(np.allclose(ex.base_value + ex.values.sum(axis=1), m.decision_function(X.head(5))))
True
>>> reason_codes(ex, language="en").loc[X["n_transitions_24m"].head(5).idxmax(), "reason_1"]
'n_transitions_24m'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import _texts
from ._checks import whole_number
from .errors import ModelError
from .features import FeatureSpec, feature_specs

__all__ = ["Explanation", "explain", "reason_codes", "global_importance", "feature_spec_of",
           "score_with_reasons"]

logger = logging.getLogger("iizrisk")

#: Fewer rows than this are explained in one process (starting workers costs more).
PARALLEL_MIN_ROWS = 20000


@dataclass
class Explanation:
    """Per-row contributions in log-odds.

    Attributes
    ----------
    values : DataFrame
        Contribution of each feature (columns) to each row (same index as the data).
    base_value : float
        Expected log-odds (TreeSHAP) or intercept (logistic regression).
    data : DataFrame
        The explained feature values.
    output : ndarray
        ``decision_function`` of the rows; ``base_value + values.sum(1)`` equals it.
    specs : list of FeatureSpec or None
        Definitions of the features (for sentences), from the model's feature builder.
    """

    values: pd.DataFrame
    base_value: float
    data: pd.DataFrame
    output: np.ndarray
    specs: list[FeatureSpec] | None = None

    def __len__(self) -> int:
        return len(self.values)

    def _repr_html_(self) -> str:
        """Jupyter: how many rows, the base value, the features that move the log-odds most, the first rows."""
        import html

        top = self.values.abs().mean().sort_values(ascending=False).head(10) if len(self) else pd.Series(dtype=float)
        base = "" if not np.isfinite(self.base_value) else f"; base value {self.base_value:.3f}"
        head = (f"<p><b>Explanation</b> of {len(self):,} row(s), contributions in log-odds{html.escape(base)}</p>")
        imp = top.rename("mean |contribution|").to_frame().to_html(float_format=lambda v: f"{v:.3f}") \
            if len(top) else ""
        rows = self.values.head(5).to_html(float_format=lambda v: f"{v:+.3f}", max_cols=12) if len(self) else ""
        return f"<div>{head}{imp}{rows}</div>"


def _tree_chunk(estimator, X: np.ndarray) -> tuple[np.ndarray, float]:
    import shap

    ex = shap.TreeExplainer(estimator)
    sv = np.asarray(ex.shap_values(X), dtype=np.float64)
    if sv.ndim == 3:  # (rows, features, classes) in some shap versions
        sv = sv[:, :, -1]
    base = float(np.ravel(ex.expected_value)[-1])
    return sv, base


def _tree_contributions(estimator, X: pd.DataFrame, n_jobs: int) -> tuple[np.ndarray, float]:
    arr = X.to_numpy(dtype=np.float64)
    if n_jobs == 1 or len(arr) < PARALLEL_MIN_ROWS:
        return _tree_chunk(estimator, arr)
    from joblib import Parallel, delayed

    parts = np.array_split(np.arange(len(arr)), n_jobs)
    res = Parallel(n_jobs=n_jobs)(delayed(_tree_chunk)(estimator, arr[p]) for p in parts if len(p))
    return np.vstack([r[0] for r in res]), res[0][1]


def _linear_contributions(pipe, X: pd.DataFrame) -> tuple[np.ndarray, float]:
    imputer, scaler, logit = pipe.named_steps["impute"], pipe.named_steps["scale"], pipe.named_steps["logit"]
    # decision = intercept + coef . z exactly; the scaler centres the training data,
    # so z = 0 (the training mean) is the reference point and the intercept the base value
    Z = scaler.transform(imputer.transform(X))
    coef = logit.coef_.ravel()
    contrib_z = coef * Z
    base = float(logit.intercept_[0])
    n = X.shape[1]
    out = contrib_z[:, :n].copy()
    if getattr(imputer, "indicator_", None) is not None:
        for j, f in enumerate(imputer.indicator_.features_):
            out[:, f] += contrib_z[:, n + j]
    return out, base


def explain(model, X: pd.DataFrame, *, n_jobs: int | None = None, check: bool = True,
            atol: float = 1e-5, max_rows: int | None = 200_000) -> Explanation:
    """Contributions of every feature to each row's log-odds (before calibration).

    Parameters
    ----------
    model : RiskModel
        A fitted model.
    X : DataFrame
        Feature rows to explain (only those that need it: a worklist, a sample).
    n_jobs : int, optional
        Processes for TreeSHAP; default 2 from :data:`PARALLEL_MIN_ROWS` rows on, else 1.
    check : bool, default True
        Verify ``base_value + sum == decision_function`` for every row.
    atol : float, default 1e-5
    max_rows : int or None, default 200,000
        Refuse more rows than this (explaining a whole population takes
        minutes to hours; explain the worklist, or a sample for global views).
        None: no limit.

    Raises
    ------
    ModelError
        When the contributions do not add up to the model's output.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, "estimator_")
    if max_rows is not None and len(X) > max_rows:
        raise ValueError(f"{len(X):,} rows to explain (limit {max_rows:,}): explain the worklist rows, "
                         "or a sample for global views (global_importance samples for you)")
    Xm = model._check_X(X)
    if not len(Xm):  # nobody to explain (an empty list): an empty explanation, not sklearn's refusal
        ft = getattr(model, "features", None)
        return Explanation(values=pd.DataFrame(np.zeros(Xm.shape), index=Xm.index, columns=Xm.columns),
                           base_value=float("nan"), data=Xm, output=np.zeros(0), specs=getattr(ft, "specs_", None))
    if model.model == "boosting":
        jobs = n_jobs if n_jobs is not None else (2 if len(Xm) >= PARALLEL_MIN_ROWS else 1)
        values, base = _tree_contributions(model.estimator_, Xm, jobs)
    elif model.model == "logistic":
        values, base = _linear_contributions(model.estimator_, Xm)
    else:  # pragma: no cover - RiskModel validates
        raise ModelError(f"cannot explain model kind {model.model!r}")
    output = model.decision_function(Xm)
    if check and len(Xm):
        err = np.abs(base + values.sum(axis=1) - output)
        bad = err > atol * np.maximum(1.0, np.abs(output))
        if bad.any():
            raise ModelError(
                f"explanations do not add up to the model output for {int(bad.sum())} of {len(Xm)} rows "
                f"(largest error {err.max():.3g} log-odds); refusing to report them. This happens with "
                "native categorical features in HistGradientBoostingClassifier: encode categories as numbers")
    ft = getattr(model, "features", None)
    return Explanation(values=pd.DataFrame(values, index=Xm.index, columns=Xm.columns),
                       base_value=base, data=Xm, output=output, specs=getattr(ft, "specs_", None))


def feature_spec_of(name: str, specs: list[FeatureSpec] | None = None) -> FeatureSpec | None:
    """The :class:`FeatureSpec` of a feature name (None for a column iizrisk did not make)."""
    for s in specs if specs is not None else _default_specs():
        if s.name == name:
            return s
    return None


def _default_specs() -> list[FeatureSpec]:
    return feature_specs(include_protected=True)


def reason_codes(explanation: Explanation, *, top: int = 3, language: str = "de",
                 specs: list[FeatureSpec] | None = None,
                 allowed_institutions=None, list_institution: str | None = None) -> pd.DataFrame:
    """The ``top`` risk-raising features of each row, as codes and sentences.

    Parameters
    ----------
    explanation : Explanation
    top : int, default 3
    language : {"de", "fr", "it", "en"}
    specs : list of FeatureSpec, optional
        Feature definitions; default those of the explanation's model, else
        iizrisk's default features.
    allowed_institutions : collection of str, optional
        Disclosure policy: only features about these institutions (or about
        no particular institution) may be reasons. A list for institution X
        passes X and the institutions it may name; features about any other
        institution are skipped and the next risk-raising feature takes their
        place. None: no restriction.
    list_institution : str, optional
        The institution whose list the rows are on: being registered there
        now (``open_<institution>``) holds for everyone on that list and
        tells its coordinators nothing, so it is no reason (the next
        risk-raising feature takes its place).

    Returns
    -------
    DataFrame
        Same index as the explained rows; ``reason_1`` ... ``reason_<top>``
        (feature codes, None when fewer features raise the risk),
        ``reason_1_text`` ... (sentences with the person's value) and
        ``reason_1_contribution`` ... (log-odds).
    """
    if not isinstance(explanation, Explanation):
        raise TypeError(f"explanation must be an Explanation (from iizrisk.explain(model, X)), got "
                        f"{type(explanation).__name__}; call explain() on the feature rows first")
    _texts.check_language(language)
    vals = explanation.values.to_numpy()
    data = explanation.data.to_numpy(dtype=np.float64)
    names = np.asarray(explanation.values.columns, dtype=object)
    if specs is None:
        specs = explanation.specs
    all_specs = list(specs) if specs is not None else _default_specs()
    by_name = {s.name: s for s in all_specs}
    hidden = np.zeros(len(names), dtype=bool)
    if allowed_institutions is not None:
        allowed = set(allowed_institutions)
        hidden |= np.array([by_name[c].param_dict.get("institution", None) not in allowed | {None}
                            if c in by_name else False for c in names], dtype=bool)
    if list_institution is not None:  # true of everyone on this list: no reason
        hidden |= np.array([c in by_name and by_name[c].family == "open"
                            and by_name[c].param_dict.get("institution") == list_institution for c in names],
                           dtype=bool)
    if hidden.any():
        vals = np.where(hidden[None, :], -np.inf, vals)
    n, m = vals.shape
    k = min(top, m)
    order = np.argsort(-vals, axis=1, kind="stable")[:, :k]
    rows = np.arange(n)[:, None]
    top_vals = vals[rows, order]
    positive = top_vals > 0
    out: dict[str, np.ndarray] = {}
    for j in range(top):
        code = np.full(n, None, dtype=object)
        text = np.full(n, None, dtype=object)
        contrib = np.full(n, np.nan)
        if j < k:
            sel = positive[:, j]
            code[sel] = names[order[sel, j]]
            contrib[sel] = top_vals[sel, j]
            for i in np.flatnonzero(sel):  # only explained rows: a worklist, not the population
                name = code[i]
                spec = by_name.get(name)
                value = data[i, order[i, j]]
                text[i] = spec.sentence(value, language) if spec is not None else f"{name}: {value:g}"
        out[f"reason_{j + 1}"] = code
        out[f"reason_{j + 1}_text"] = text
        out[f"reason_{j + 1}_contribution"] = contrib
    cols = [f"reason_{j + 1}" for j in range(top)] + [f"reason_{j + 1}_text" for j in range(top)] + \
        [f"reason_{j + 1}_contribution" for j in range(top)]
    return pd.DataFrame(out, index=explanation.values.index)[cols]


def global_importance(model, X: pd.DataFrame, *, sample: int = 2000, random_state: int = 0,
                      language: str = "en", n_jobs: int | None = None) -> pd.DataFrame:
    """Mean absolute contribution of each feature over a random sample of rows.

    Returns
    -------
    DataFrame
        Index feature name; ``mean_abs_contribution``, ``mean_contribution``,
        ``share`` (of the total mean absolute contribution) and ``description``
        in ``language``; sorted by importance.
    """
    whole_number(sample, "sample", 1, unit="rows", example="2000 (the default)")
    if len(X) > sample:
        X = X.sample(n=sample, random_state=random_state)
    ex = explain(model, X, n_jobs=n_jobs)
    mean_abs = ex.values.abs().mean()
    specs = {s.name: s for s in _default_specs()}
    out = pd.DataFrame({
        "mean_abs_contribution": mean_abs,
        "mean_contribution": ex.values.mean(),
        "share": mean_abs / mean_abs.sum() if mean_abs.sum() > 0 else mean_abs * 0,
        "description": [specs[c].description(language) if c in specs else c for c in ex.values.columns],
    })
    return out.sort_values("mean_abs_contribution", ascending=False)


def score_with_reasons(model, spells: pd.DataFrame, *, as_of, interventions: pd.DataFrame | None = None,
                       language: str = "de", explain_top: int = 500, top: int = 3,
                       bands=(0.10, 0.25), n_jobs: int | None = None) -> pd.DataFrame:
    """Scores of everyone with a spell open on ``as_of``, with reason codes for the highest risks.

    Only the ``explain_top`` highest-ranked rows are explained (TreeSHAP costs
    about a millisecond per row and core); the other rows have empty reasons.

    Returns
    -------
    DataFrame
        The columns of ``data/schemas/scores.json``: ``person_id, as_of, outcome,
        risk, risk_band, rank, reason_1 ... reason_<top>, reason_1_text ...``.
    """
    from .model import score

    _texts.check_language(language)
    scores, X = score(model, spells, as_of=as_of, interventions=interventions, bands=bands,
                      return_features=True)
    n = max(0, min(int(explain_top), len(scores)))
    codes = [f"reason_{j + 1}" for j in range(top)]
    texts = [f"reason_{j + 1}_text" for j in range(top)]
    rc = reason_codes(explain(model, X.iloc[:n], n_jobs=n_jobs), top=top, language=language) if n else None
    for c in codes + texts:
        # each column is built whole (the top n rows, then None) and set at once: writing the top
        # rows into an existing str column (``scores.loc[: n - 1, c] = ...``) fails in pandas when
        # the frame has a single row
        values = np.full(len(scores), None, dtype=object)
        if rc is not None:
            values[:n] = rc[c].to_numpy()
        scores[c] = pd.Series(values, index=scores.index, dtype="str")
    scores["as_of"] = pd.to_datetime(scores["as_of"]).astype("datetime64[s]")
    logger.info("scored %d persons at %s; explained the top %d", len(scores), as_of, n)
    return scores
