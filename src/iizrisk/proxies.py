"""Proxy analysis: how well the model's inputs predict each protected attribute, and which inputs carry it.

A model that never sees sex or nationality group can still rank by them when
its inputs carry them (an IV registration carries disability; a registration
at the migrant integration service carries origin). For each protected
attribute and each of its groups (one group against the rest),
:class:`ProxyAnalysis` reports

``auc``
    the cross-validated ROC AUC of a gradient-boosting classifier that predicts
    membership of the group from all model inputs (0.5: the inputs carry
    nothing of it; 1: they identify it);
``top_features``
    the inputs that carry most of it on their own: each input's univariate
    ROC AUC for the group, as a *strength* ``2 * |AUC - 0.5|`` (0 to 1).

Groups with fewer than ``min_cell_size`` members (or non-members) are not
analysed: their rows would describe a handful of people.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"a": rng.random(400), "b": rng.random(400)})
>>> attrs = pd.DataFrame({"grp": np.where(X["a"] > 0.7, "x", "y")})
>>> pa = ProxyAnalysis(n_splits=3).fit(X, attrs)
>>> pa.summary.loc[pa.summary["group"] == "x", "top_feature"].item()
'a'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._results import OutputTable, ResultMixin
from ._texts import load_locale, text

__all__ = ["ProxyAnalysis", "feature_strength", "DESIGNED_PROXIES", "DIRECT_INPUTS"]

logger = logging.getLogger("iizrisk")

#: Inputs that *are* a protected attribute (prefix of the feature name -> attribute).
DIRECT_INPUTS: dict[str, str] = {"age": "age_band", "sex_": "sex", "nationality_": "nationality_group"}
#: Inputs that stand for a protected ground by design (institution code in the feature -> attribute):
#: an IV registration for disability, the migrant integration service for origin.
DESIGNED_PROXIES: dict[str, str] = {"IV": "disability", "MIG": "nationality_group"}


def feature_strength(X: pd.DataFrame, member: np.ndarray) -> pd.Series:
    """Univariate ROC AUC of every column for a binary ``member`` target, as ``2 * |AUC - 0.5|``.

    Vectorised over the columns: ranks (ties averaged, a missing value ranks
    below every number) and the Mann-Whitney statistic.

    Examples
    --------
    >>> X = pd.DataFrame({"same": [0, 0, 1, 1], "noise": [1, 0, 1, 0]})
    >>> feature_strength(X, np.array([False, False, True, True])).tolist()
    [1.0, 0.0]
    """
    from scipy.stats import rankdata

    m = np.asarray(member, dtype=bool)
    n1, n0 = int(m.sum()), int((~m).sum())
    if n1 == 0 or n0 == 0:
        return pd.Series(np.nan, index=X.columns, dtype=np.float64)
    values = X.to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.where(np.isnan(values), -np.inf, values)
    ranks = rankdata(values, axis=0)
    auc = (ranks[m].sum(axis=0) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return pd.Series(2 * np.abs(auc - 0.5), index=X.columns, dtype=np.float64)


class ProxyAnalysis(ResultMixin):
    """Cross-validated AUC of predicting each protected group from the model inputs, and the carriers.

    Parameters
    ----------
    n_splits : int, default 5
        Folds of the stratified cross-validation.
    min_cell_size : int, default 5
        Groups (or their complements) smaller than this are not analysed.
    top : int, default 5
        Carrying features listed per group.
    max_rows : int, default 50_000
        Rows used (a random sample beyond it): the AUC needs no more.
    random_state : int, default 0

    Attributes
    ----------
    summary : DataFrame
        One row per (attribute, group): ``attribute``, ``group``, ``n``, ``auc``,
        ``top_feature``, ``top_strength``, ``top_features`` (``name (strength)``, ...).
    strengths : DataFrame
        One row per (attribute, group, feature): ``strength``.
    """

    def __init__(self, *, n_splits: int = 5, min_cell_size: int = 5, top: int = 5, max_rows: int = 50_000,
                 random_state: int = 0):
        self.n_splits = n_splits
        self.min_cell_size = min_cell_size
        self.top = top
        self.max_rows = max_rows
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, attributes: pd.DataFrame, *,
            groups: Sequence[str] | None = None) -> ProxyAnalysis:
        """Analyse the model inputs ``X`` against the protected ``attributes`` (same rows, same order).

        Returns
        -------
        self
        """
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        if len(X) != len(attributes):
            raise ValueError(f"X has {len(X)} rows, attributes {len(attributes)}: give the same rows in order")
        cols = list(groups) if groups is not None else list(attributes.columns)
        missing = [c for c in cols if c not in attributes.columns]
        if missing:
            raise ValueError(f"attribute column(s) {missing} not in attributes ({list(attributes.columns)})")
        rng = np.random.default_rng(self.random_state)
        rows = np.arange(len(X))
        if len(rows) > self.max_rows:
            rows = np.sort(rng.choice(rows, self.max_rows, replace=False))
        Xs = X.iloc[rows].reset_index(drop=True).astype(np.float64)
        Xs = Xs.loc[:, Xs.nunique(dropna=True) > 1]  # constant or empty inputs carry nothing
        out, strengths = [], []
        k = int(self.min_cell_size)
        for col in cols:
            vals = attributes[col].iloc[rows].astype(object).to_numpy()
            known = ~pd.isna(vals)
            for grp in sorted({str(v) for v in vals[known]}):
                member = known & (vals.astype(str) == grp)
                n1, n0 = int(member[known].sum()), int((~member[known]).sum())
                if min(n1, n0) < max(k, self.n_splits):
                    continue
                Xk, yk = Xs[known], member[known]
                cv = StratifiedKFold(n_splits=self.n_splits, shuffle=True, random_state=self.random_state)
                clf = HistGradientBoostingClassifier(max_iter=60, max_depth=3, random_state=self.random_state)
                proba = cross_val_predict(clf, Xk, yk, cv=cv, method="predict_proba")[:, 1]
                auc = float(roc_auc_score(yk, proba))
                st = feature_strength(Xk, yk).sort_values(ascending=False, kind="mergesort")
                top = st.head(int(self.top))
                out.append({"attribute": col, "group": grp, "n": n1, "auc": auc,
                            "top_feature": top.index[0] if len(top) else None,
                            "top_strength": float(top.iloc[0]) if len(top) else np.nan,
                            "top_features": ", ".join(f"{f} ({v:.2f})" for f, v in top.items())})
                strengths.append(pd.DataFrame({"attribute": col, "group": grp, "feature": st.index,
                                               "strength": st.to_numpy()}))
                logger.debug("proxy analysis %s=%s: AUC %.3f, top %s", col, grp, auc, out[-1]["top_feature"])
        self.summary = pd.DataFrame(out, columns=["attribute", "group", "n", "auc", "top_feature", "top_strength",
                                                  "top_features"])
        self.strengths = (pd.concat(strengths, ignore_index=True) if strengths else
                          pd.DataFrame(columns=["attribute", "group", "feature", "strength"]))
        return self

    def carriers(self, *, min_strength: float = 0.2, min_auc: float = 0.6) -> dict[str, list[str]]:
        """Features that carry a protected attribute: feature -> attributes.

        A feature carries an attribute when one of its groups is predicted with a
        cross-validated AUC of at least ``min_auc`` and the feature alone reaches
        ``min_strength`` for that group.
        """
        s = self.strengths.merge(self.summary[["attribute", "group", "auc"]], on=["attribute", "group"])
        hit = s[(s["strength"] >= min_strength) & (s["auc"] >= min_auc)]
        out: dict[str, list[str]] = {}
        for f, a in zip(hit["feature"], hit["attribute"], strict=True):
            if a not in out.setdefault(f, []):
                out[f].append(a)
        return out

    def to_dict(self, *, min_strength: float = 0.2, min_auc: float = 0.6) -> dict[str, Any]:
        """JSON-ready results for the model card."""
        recs = self.summary.astype(object).where(self.summary.notna(), None).to_dict("records")
        return {"summary": recs, "carriers": self.carriers(min_strength=min_strength, min_auc=min_auc),
                "min_strength": min_strength, "min_auc": min_auc, "n_splits": self.n_splits}

    # ------------------------------------------------------------------ display
    def _title(self, language: str = "en") -> str:
        return text("audit.proxy_title", language)

    def display_rows(self, language: str = "en") -> tuple[list[str], list[list[Any]]]:
        """Headers and rows of the summary in ``language``: attributes and groups in words, numbers as numbers."""
        from .fairness import _in_words

        loc = load_locale(language)
        words = {**loc["card"]["columns"], **loc["audit"]["proxy_columns"]}
        shown = _in_words(self.summary, language)
        return ([words.get(c, c) for c in shown.columns],
                shown.astype(object).where(shown.notna(), None).values.tolist())

    def summary_text(self, decimals: int = 3, *, language: str = "en") -> str:
        """The summary as plain text in ``language`` (what :meth:`print_summary` prints)."""
        from .fairness import _text_table

        header, rows = self.display_rows(language)
        body = _text_table(header, rows, language, decimals) if rows else text("audit.proxy_none", language)
        return f"{self._title(language)}\n{body}"

    def _repr_html_(self, *, language: str = "en") -> str:
        """The notebook's display of the summary in ``language``."""
        import html

        from .fairness import _html_table

        title = html.escape(self._title(language))
        if not self._fitted():
            return f"<b>{title}</b> ({html.escape(text('audit.not_fitted', language))})"
        header, rows = self.display_rows(language)
        body = _html_table(header, rows, lang=language) if rows else \
            f"<p>{html.escape(text('audit.proxy_none', language))}</p>"
        return f"<div><b>{title}</b>{body}</div>"

    def plot(self, ax=None, *, language: str = "en"):
        """Cross-validated AUC per protected group (0.5: the inputs carry nothing of it), labels in ``language``."""
        from .fairness import _attribute, _group

        if ax is None:
            import matplotlib.pyplot as plt

            ax = plt.figure(figsize=(6.0, 0.6 + 0.3 * max(3, len(self.summary)))).add_subplot()
        labels = [f"{_attribute(language, a)}: {_group(language, g)}"
                  for a, g in zip(self.summary["attribute"], self.summary["group"], strict=True)]
        y = np.arange(len(labels))[::-1]
        ax.barh(y, self.summary["auc"].to_numpy(dtype=np.float64) - 0.5, left=0.5, color="#3b6ea8")
        ax.axvline(0.5, color="#666666", lw=0.8)
        ax.set_yticks(y, labels)
        ax.set_xlim(0.4, 1.0)
        ax.set_xlabel(text("audit.proxy_axis", language))
        return ax

    def _output_tables(self, k: int) -> list[OutputTable]:
        # groups smaller than min_cell_size were never analysed; only AUCs and strengths are published
        return [OutputTable("proxy_summary", self.summary.drop(columns=["n"])),
                OutputTable("proxy_strengths", self.strengths)]
