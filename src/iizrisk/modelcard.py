"""Model cards: what a risk model is for, what it learnt from, how well and how fairly it works.

A model card is written at training time next to the model (Markdown, one
self-contained HTML page and JSON) and again after an audit. It is the
document a data-protection officer reads (docs/domain.md sections 2, 6 and 7):

* **intended use** -- a hint that triggers a human review, never an automated
  decision about a person (nDSG Art. 21, GDPR Art. 22), and what the model
  must not be used for;
* **data** -- training, calibration and validation periods, the population
  (everyone with a spell open at a month end), sizes, the data fingerprint;
* **outcome** -- its definition and horizon;
* **features** -- every input with its description (the feature catalogue of
  :mod:`iizrisk.features`) and whether protected attributes are inputs
  (they are not by default; enabling them is recorded prominently);
* **metrics** -- held-out metrics of the model and its comparators (from the
  manifest), calibration, and per group from a :class:`~iizrisk.fairness.FairnessAudit`
  when one is attached (tables already suppressed: cells of fewer than
  ``min_cell_size`` people are hidden);
* **known limitations**, **fingerprints and versions**.

The card is built from the model directory's ``manifest.json`` only: the
model file is never unpickled to write it.
Its texts in the four languages come from the text catalogue
(:mod:`iizrisk._texts`, keys ``card.*``).

Examples
--------
>>> manifest = {"model": "logistic", "outcome": "revolving_door", "horizon_months": 12,
...             "features": [{"name": "n_transitions_24m", "dtype": "float32"}],
...             "feature_params": {"include_protected": False}}
>>> card = ModelCard(manifest)
>>> card.to_dict()["protected_attributes"]["used_as_inputs"]
[]
>>> "never an automated decision" in card.to_markdown()
True
"""

from __future__ import annotations

import html as _html
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._html import page
from ._texts import check_language, colon, load_locale, swiss_number, text, text_items
from .fairness import NA_MARK as _NA
from .fairness import _fmt, _html_table, _word
from .fairness_rule import FairnessRule
from .store import make_dirs, write_text_atomic

__all__ = ["CARD_FORMAT", "CARD_FILES", "ModelCard", "write_model_card"]

logger = logging.getLogger("iizrisk")

CARD_FORMAT = "iizrisk-model-card/1"
#: File names written by :func:`write_model_card`, by kind.
CARD_FILES = {"md": "model_card.md", "html": "model_card.html", "json": "model_card.json"}
_DEFAULT_PROTECTED = ("sex", "nationality_group")

_METRIC_COLUMNS = ("roc_auc", "average_precision", "brier", "ece", "precision_at_k", "recall_at_k", "k",
                   "prevalence")
#: the oversight section's figures (before them the decisions by type: ``decision:<code>``)
_OVERSIGHT_COLUMNS = ("institution", "month", "listed", "reviewed", "median_days_to_review")
_OVERSIGHT_SHARES = ("override_share", "agreement_share", "repeatedly_listed_unreviewed")
#: columns of Oversight.table that its suppressed summary drops: a frame holding them is not suppressed
_OVERSIGHT_UNSUPPRESSED = ("judged", "listed_reviews", "proposed_listed", "proposed_override")


def _oversight_summary(oversight: Any) -> pd.DataFrame | None:
    """The suppressed oversight figures of an :class:`~iizrisk.oversight.Oversight` or of its ``summary``."""
    if oversight is None:
        return None
    frame = oversight.summary if hasattr(oversight, "summary") else oversight
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"oversight must be an Oversight or its summary DataFrame, got {type(oversight).__name__}")
    raw = [c for c in _OVERSIGHT_UNSUPPRESSED if c in frame.columns]
    if raw:
        raise ValueError(f"oversight: columns {raw} belong to the unsuppressed Oversight.table; give the "
                         "Oversight itself or its summary (small cells hidden)")
    missing = [c for c in _OVERSIGHT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"oversight: columns {missing} missing; give iizrisk.oversight's Oversight or its summary")
    return frame.reset_index(drop=True)


def _t(key: str, lang: str, **fields: Any) -> str:
    return text(f"card.{key}", lang, **fields)


def _md_table(header: list[str], rows: list[list[Any]], lang: str = "en", decimals: int = 3) -> str:
    def cell(x: Any) -> str:
        return _fmt(x, lang, decimals).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(out)


def _rule_bounds(rule: dict[str, Any], lang: str = "en") -> str:
    """The fairness rule of an audit's dict in words (:meth:`FairnessRule.describe`)."""
    if not rule:
        return "-"
    return FairnessRule(min_ratio=rule["min_ratio"], ratio_metrics=tuple(rule.get("ratio_metrics") or ()),
                        max_difference=rule.get("max_difference") or {}).describe(lang)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def _manifest_of_model(model) -> dict[str, Any]:
    """A manifest-like dict of a fitted RiskModel that was not loaded from a directory."""
    import platform

    import sklearn

    from . import __version__

    manifest = getattr(model, "manifest_", None)
    if manifest is not None:
        return dict(manifest)
    if not hasattr(model, "feature_names_in_"):
        raise ValueError("the model is not fitted; give a fitted RiskModel or a model directory")
    ft = getattr(model, "features", None)
    return {
        "model": model.model, "outcome": model.outcome, "horizon_months": model.horizon_months,
        "calibration": model.calibration,
        "features": [{"name": n, "dtype": model.feature_dtypes_.get(n)} for n in model.feature_names_in_],
        "feature_params": ({k: (list(v) if isinstance(v, tuple) else v) for k, v in ft.get_params().items()}
                           if ft is not None else None),
        "training": getattr(model, "training_", getattr(model, "fit_info_", None)),
        "metrics": getattr(model, "metrics_", None),
        "versions": {"iizrisk": __version__, "python": platform.python_version(), "numpy": np.__version__,
                     "pandas": pd.__version__, "scikit-learn": sklearn.__version__},
    }


@dataclass
class ModelCard:
    """A model card built from a model manifest and, optionally, a fairness audit.

    Parameters
    ----------
    manifest : dict
        The model directory's ``manifest.json`` (see :func:`iizrisk.model.save_model`).
    audit : FairnessAudit, optional
        A fitted audit; its (suppressed) tables become the per-group section.
    language : {"en", "de", "fr", "it"}, default "en"
    protected_attributes : sequence of str, optional
        The deployment's protected attributes (``[privacy] protected_attributes``);
        default sex and nationality group.
    source : str, optional
        Where the manifest came from (shown in the card).
    oversight : Oversight or DataFrame, optional
        Evidence that a human decides (:func:`iizrisk.oversight.oversight_of`): the
        :class:`~iizrisk.oversight.Oversight` or its ``summary`` (small cells hidden), per
        institution and month. Without it the section "Human oversight" says that the card
        has no such figures.
    benefit : BenefitModel, optional
        The deployment's benefit model (``[worklist] benefit_model``, read with
        :func:`iizrisk.benefit.load_benefit_model`) when its lists are ordered by
        benefit: the section "Order of the worklists" then documents it, its
        offline evaluation (the evidence) and its limits.
    rank_by : {"risk", "benefit", "risk_x_benefit"}, default "risk"
        The deployment's ``[worklist] rank_by``.
    """

    manifest: dict[str, Any]
    audit: Any = None
    language: str = "en"
    protected_attributes: tuple[str, ...] = _DEFAULT_PROTECTED
    source: str | None = None
    oversight: Any = None
    benefit: Any = None
    rank_by: str = "risk"
    _catalogue: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_language(self.language)
        self.protected_attributes = tuple(self.protected_attributes or ())
        if self.audit is not None and not hasattr(self.audit, "summary"):
            raise ValueError("audit must be a fitted FairnessAudit (call fit first)")
        from .config import RANK_BY

        if self.rank_by not in RANK_BY:
            raise ValueError(f"rank_by must be one of {', '.join(RANK_BY)}, got {self.rank_by!r}")
        if self.rank_by != "risk" and (self.benefit is None or not hasattr(self.benefit, "evidence")):
            raise ValueError(f"rank_by={self.rank_by!r}: give the benefit model (benefit=...) the lists are ordered by")
        self.oversight = _oversight_summary(self.oversight)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_model(cls, model_dir_or_model, *, audit=None, language: str = "en",
                   protected_attributes=None, oversight=None, benefit=None, rank_by: str = "risk") -> ModelCard:
        """The card of a model directory (its manifest only) or of a fitted RiskModel.

        Raises
        ------
        ModelError
            The directory holds no readable ``manifest.json``.
        """
        from .model import read_manifest

        if isinstance(model_dir_or_model, str | os.PathLike):
            manifest, source = read_manifest(model_dir_or_model), str(model_dir_or_model)
        else:
            manifest, source = _manifest_of_model(model_dir_or_model), None
        return cls(manifest, audit=audit, language=language,
                   protected_attributes=tuple(protected_attributes or _DEFAULT_PROTECTED), source=source,
                   oversight=oversight, benefit=benefit, rank_by=rank_by)

    def _feature_table(self) -> pd.DataFrame:
        from .features import feature_catalogue

        names = [f["name"] for f in self.manifest.get("features") or []]
        params = dict(self.manifest.get("feature_params") or {})
        kw: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()
                              if k in {"window_months", "bfs_window_months"}}
        uses_protected = any(n.startswith(("sex_", "nationality_")) for n in names)
        try:
            cat = feature_catalogue(**kw, include_protected=bool(params.get("include_protected")) or uses_protected)
        except (TypeError, ValueError):
            cat = feature_catalogue(include_protected=True)
        lang = self.language
        rows = []
        for n in names:
            if n in cat.index:
                c = cat.loc[n]
                rows.append({"name": n, "group": c["group"], "unit": c[f"unit_{lang}"],
                             "description": c[f"description_{lang}"]})
            else:
                rows.append({"name": n, "group": "", "unit": "", "description": ""})
        return pd.DataFrame(rows, columns=["name", "group", "unit", "description"])

    def related_inputs(self) -> dict[str, dict[str, str]]:
        """Inputs related to a protected ground: feature -> {"attribute", "relation"}.

        ``direct``: the input is the attribute (age, and sex or nationality when
        enabled); ``proxy``: the input stands for it by design (an IV registration
        for disability, the migrant integration service for origin,
        :data:`iizrisk.proxies.DESIGNED_PROXIES`); ``measured``: a proxy analysis
        recorded in the manifest (``proxies.carriers``) found it carries the attribute.
        """
        from .proxies import DESIGNED_PROXIES, DIRECT_INPUTS

        out: dict[str, dict[str, str]] = {}
        for f in self.manifest.get("features") or []:
            name = f["name"]
            for prefix, attr in DIRECT_INPUTS.items():
                if name == prefix or (prefix.endswith("_") and name.startswith(prefix)):
                    out[name] = {"attribute": attr, "relation": "direct"}
            parts = name.upper().split("_")
            for inst, attr in DESIGNED_PROXIES.items():
                if name not in out and inst in parts:
                    out[name] = {"attribute": attr, "relation": "proxy"}
        for name, attrs in ((self.manifest.get("proxies") or {}).get("carriers") or {}).items():
            if name not in out:
                out[name] = {"attribute": ", ".join(attrs), "relation": "measured"}
        return out

    def protected_inputs(self) -> list[str]:
        """Model inputs derived from a protected attribute (empty by default)."""
        feats = self._feature_table()
        prefixes = set()
        for a in self.protected_attributes:
            prefixes.add(a)
            if a.endswith("_group"):
                prefixes.add(a[: -len("_group")])
        out = []
        for name, grp in zip(feats["name"], feats["group"], strict=True):
            if grp == "protected" or any(name == p or name.startswith(p + "_") for p in prefixes):
                out.append(name)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The card's content as JSON-ready data."""
        m = self.manifest
        lang = self.language
        training = dict(m.get("training") or {})
        metrics = m.get("metrics") or None
        used = self.protected_inputs()
        related = self.related_inputs()
        params = m.get("feature_params") or {}
        outcome_desc = ""
        try:
            from .outcomes import get_outcome

            outcome_desc = get_outcome(m.get("outcome", "")).description
        except ValueError:
            pass
        # the definition in the card's language (the registry's English text for an outcome the catalogue lacks)
        outcome_desc = load_locale(lang)["card"]["outcomes"].get(str(m.get("outcome")), outcome_desc)
        main = (metrics or {}).get(m.get("model")) or {}
        out: dict[str, Any] = {
            "card_format": CARD_FORMAT,
            "language": lang,
            "source": self.source,
            "intended_use": {"statement": _t("intended_text", lang), "users": _t("users", lang),
                             "not_intended_for": list(text_items("card.not_for_items", lang)),
                             "legal_basis": ["nDSG Art. 21", "GDPR Art. 22", "Art. 35a AVG", "Art. 32 ATSG"],
                             "note": m.get("note")},
            "model": {"kind": m.get("model"), "outcome": m.get("outcome"),
                      "horizon_months": m.get("horizon_months"), "calibration": m.get("calibration"),
                      "format": m.get("format"), "created": m.get("created"),
                      "n_features": len(m.get("features") or [])},
            "data": {"population": _t("population_text", lang) + self._sampling_text(training),
                     "periods": training.get("periods") or {k[:-7]: v for k, v in training.items()
                                                             if k.endswith("_period")},
                     **{k: training.get(k) for k in ("observed_until", "snapshots", "train_rows",
                                                     "calibration_rows", "validation_rows", "prevalence_train",
                                                     "prevalence_validation", "spells_rows", "capacity")
                        if k in training},
                     "input_columns": sorted(((m.get("input") or {}).get("columns") or {}).keys()),
                     "interventions_used": bool((m.get("input") or {}).get("interventions"))},
            "outcome": {"name": m.get("outcome"), "description": outcome_desc,
                        "horizon_months": m.get("horizon_months")},
            "features": self._feature_table().to_dict("records"),
            "feature_params": params,
            "protected_attributes": {
                "configured": list(self.protected_attributes),
                "used_as_inputs": used,
                "include_protected": bool(params.get("include_protected", False)),
                "related_inputs": related,
                "statement": (_t("protected_used", lang, names=", ".join(used)) if used
                              else _t("protected_related", lang, names=", ".join(
                                  f"{n} ({', '.join(_word(lang, 'attributes', a) for a in r['attribute'].split(', '))}"
                                  f", {_word(lang, 'relations', r['relation'])})" for n, r in related.items()))
                              if related else _t("protected_none", lang)),
            },
            "metrics": metrics,
            "calibration": {"method": m.get("calibration"), "ece": main.get("ece"), "brier": main.get("brier")},
            "fairness": self._audit_dict(),
            "oversight": self._oversight_dict(),
            "ranking": self._ranking_dict(),
            "limitations": list(text_items("card.limitations_items", lang)),
            "fingerprints": {"model_sha256": m.get("model_sha256"),
                             "data_fingerprint": training.get("data_fingerprint"),
                             "signed": bool(m.get("signature"))},
            "versions": m.get("versions") or {},
        }
        return _jsonable(out)

    def _audit_dict(self) -> dict[str, Any] | None:
        a = self.audit
        if a is None:
            return None
        d = a.to_dict()
        d["as_of"] = getattr(a, "as_of_", None)
        d["outcome"] = getattr(a, "outcome_", None)
        return d

    def _oversight_dict(self) -> dict[str, Any]:
        """The oversight figures as given (suppressed), or the statement that the card has none."""
        ov, lang = self.oversight, self.language
        if ov is None:
            return {"attached": False, "statement": _t("no_oversight", lang), "period": None, "rows": []}
        months = ov["month"].dropna().astype(str)
        period = [months.min(), months.max()] if len(months) else None
        statement = (_t("oversight_text", lang, start=period[0], end=period[1], na=_NA) if period
                     else _t("oversight_empty", lang))
        rows = ov.astype(object).where(ov.notna(), None).to_dict("records")
        return {"attached": True, "statement": statement, "period": period, "rows": rows}

    def _ranking_dict(self) -> dict[str, Any]:
        """The order of the lists: by risk, or by the benefit model with its evidence and limits."""
        lang = self.language
        if self.rank_by == "risk":
            return {"rank_by": "risk", "statement": _t("ranking_risk", lang), "benefit_model": None}
        bm = self.benefit
        plain = getattr(bm, "evidence_", None) or {}
        ev = bm.evidence(self.rank_by)
        level = f"{1 - float(plain.get('alpha', 0.05)):.0%}".replace("%", " %")
        statement = _t("ranking_benefit", lang, order=_word(lang, "orders", self.rank_by),
                       n1=swiss_number(int(bm.n_treated_), lang), n0=swiss_number(int(bm.n_control_), lang),
                       start=plain.get("first_index_date") or _NA, end=plain.get("last_index_date") or _NA)
        evidence = (_t("ranking_evidence", lang, capacity=f"{float(ev.capacity) * 100:g} %",
                       value=_fmt(ev.value, lang, 1), base=_fmt(ev.risk_value, lang, 1),
                       diff=f"{float(ev.value) - float(ev.risk_value):+.1f}", level=level,
                       lo=f"{float(ev.lower):+.1f}", hi=f"{float(ev.upper):+.1f}")
                    if ev.value is not None else _t(f"ranking_{ev.code}", lang))
        policies = []
        if plain.get("values"):
            from .benefit import _frame_from_plain

            v = _frame_from_plain(plain["values"])
            lvl = f"{1 - float(plain['alpha']):.0%}"
            for name, r in v.iterrows():
                policies.append({"policy": name, "value": r["value"], "lower": r.get(f"lower {lvl}"),
                                 "upper": r.get(f"upper {lvl}"), "vs_risk": r.get("vs_risk"),
                                 "vs_risk_lower": r.get(f"vs_risk lower {lvl}"),
                                 "vs_risk_upper": r.get(f"vs_risk upper {lvl}")})
        return {"rank_by": self.rank_by, "statement": statement, "evidence": evidence,
                "supported": bool(ev.supported), "method": _t("ranking_method", lang, method=bm.method()),
                "benefit_model": {"outcome": bm.outcome, "assessed": int(bm.n_treated_),
                                  "not_assessed": int(bm.n_control_),
                                  "episode_days": getattr(bm, "episode_days_", None),
                                  "file_sha256": getattr(bm, "file_sha256_", None),
                                  "blp": bm.blp_.reset_index().to_dict("records"), "capacity": ev.capacity},
                "policies": policies, "limits": list(text_items("card.ranking_limits_items", lang))}

    def _ranking_rows(self, d: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        lang = self.language
        heads = [_word(lang, "policy_head", k) for k in ("policy", "value", "interval", "vs_risk", "vs_risk_interval")]

        def span(lo: Any, hi: Any) -> str:
            return f"{_fmt(lo, lang, 1)} – {_fmt(hi, lang, 1)}"

        rows = [[_word(lang, "policies", p["policy"]), _fmt(p["value"], lang, 1), span(p["lower"], p["upper"]),
                 "" if p["policy"] == "risk" else f"{float(p['vs_risk']):+.1f}",
                 "" if p["policy"] == "risk" else span(p["vs_risk_lower"], p["vs_risk_upper"])]
                for p in d["ranking"]["policies"]]
        return heads, rows

    def _ranking_md(self, d: dict[str, Any]) -> list[str]:
        lang, r = self.language, d["ranking"]
        md = [f"## {_t('ranking', lang)}", "", r["statement"], ""]
        if r["rank_by"] == "risk":
            return md
        heads, rows = self._ranking_rows(d)
        md += [r["evidence"], "", r["method"], ""]
        md += [_md_table(heads, rows, lang), ""] if rows else []
        md += [f"### {_t('ranking_limits', lang)}", "", *[f"- {x}" for x in r["limits"]], ""]
        return md

    def _ranking_html(self, d: dict[str, Any]) -> list[str]:
        esc, lang, r = _html.escape, self.language, d["ranking"]
        parts = [f"<h2>{esc(_t('ranking', lang))}</h2>", f"<p>{esc(r['statement'])}</p>"]
        if r["rank_by"] == "risk":
            return parts
        heads, rows = self._ranking_rows(d)
        parts += [f"<p class='{'ok' if r['supported'] else 'warn'}'>{esc(r['evidence'])}</p>",
                  f"<p>{esc(r['method'])}</p>"]
        parts += [_html_table(heads, rows, lang=lang)] if rows else []
        parts += [f"<h3>{esc(_t('ranking_limits', lang))}</h3>",
                  "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in r["limits"]) + "</ul>"]
        return parts

    def _oversight_rows(self) -> tuple[list[str], list[list[Any]]]:
        """The oversight section's headers (in the card's language) and rows (the suppressed figures)."""
        from .tables import header

        ov, lang = self.oversight, self.language
        if ov is None or not len(ov):
            return [], []
        decisions = [c for c in ov.columns if c.startswith("decision:")]
        cols = [*_OVERSIGHT_COLUMNS, *decisions, *[c for c in _OVERSIGHT_SHARES if c in ov.columns]]
        words = load_locale(lang)["review"]["decisions"]
        heads = [f"{header('decision', lang)} ({words.get(c[len('decision:'):], c[len('decision:'):])})"
                 if c in decisions else header(c, lang) for c in cols]
        return heads, ov[cols].astype(object).where(ov[cols].notna(), None).values.tolist()

    def _oversight_md(self, d: dict[str, Any]) -> list[str]:
        lang = self.language
        md = [f"## {_t('oversight', lang)}", "", d["oversight"]["statement"], ""]
        heads, rows = self._oversight_rows()
        if rows:
            md += [_md_table(heads, rows, lang, decimals=1), "", text("oversight.agreement_note", lang), ""]
        return md

    def _oversight_html(self, d: dict[str, Any]) -> list[str]:
        esc, lang = _html.escape, self.language
        parts = [f"<h2>{esc(_t('oversight', lang))}</h2>",
                 f"<p class='{'' if d['oversight']['attached'] else 'warn'}'>{esc(d['oversight']['statement'])}</p>"]
        heads, rows = self._oversight_rows()
        if rows:
            parts += [_html_table(heads, rows, lang=lang, decimals=1),
                      f"<p>{esc(text('oversight.agreement_note', lang))}</p>"]
        return parts

    # ------------------------------------------------------------------ rendering
    def _sampling_text(self, training: dict[str, Any]) -> str:
        """What the model learnt from when training sampled: the persons (``--max-persons``), the rows
        before the held-out period (``max_train_rows``); empty when it used every snapshot."""
        lang, out = self.language, ""
        sample = training.get("sample")
        if isinstance(sample, dict) and sample.get("persons") is not None and sample.get("of_persons"):
            persons, of = int(sample["persons"]), int(sample["of_persons"])  # the share drawn, not the hash's bound
            out += " " + _t("sample_persons", lang, persons=swiss_number(persons, lang),
                            of=swiss_number(of, lang), share=f"{100 * persons / of:.1f} %")
        fit = training.get("fit_sample")
        if isinstance(fit, dict) and fit.get("rows") is not None:
            out += " " + _t("sample_rows", lang, rows=swiss_number(int(fit["rows"]), lang),
                            of=swiss_number(int(fit["of_rows"]), lang))
        return out

    def _facts(self, d: dict[str, Any]) -> list[tuple[str, Any]]:
        mo, da = d["model"], d["data"]
        lang = self.language
        facts = [(_word(lang, "facts", "model"), _word(lang, "kinds", mo["kind"])),
                 (_word(lang, "facts", "outcome"), _word(lang, "outcome_names", mo["outcome"])),
                 (_t("horizon", lang), f"{mo['horizon_months']} {_t('months', lang)}"),
                 (_word(lang, "facts", "calibration"), _word(lang, "kinds", mo["calibration"])
                  if mo["calibration"] else _t("none", lang)),
                 (_word(lang, "facts", "features"), mo["n_features"]), (_word(lang, "facts", "created"), mo["created"])]
        for k, v in (da.get("periods") or {}).items():
            facts.append((_word(lang, "facts", f"{k}_period"), f" {_t('to', lang)} ".join(v) if isinstance(v, list)
                          else v))
        for k in ("observed_until", "snapshots", "train_rows", "calibration_rows", "validation_rows",
                  "prevalence_train", "prevalence_validation", "spells_rows"):
            if k in da:
                facts.append((_word(lang, "facts", k), da[k]))
        return facts

    def _metric_rows(self, d: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        metrics = d.get("metrics") or {}
        header = [_word(self.language, "columns", c) for c in ("scorer", *_METRIC_COLUMNS)]
        rows = [[_word(self.language, "kinds", scorer), *[vals.get(c) for c in _METRIC_COLUMNS]]
                for scorer, vals in metrics.items()]
        return header, rows

    def _audit_rows(self) -> tuple[list[str], list[list[Any]]]:
        """The per-group table: column codes (``gap_flag`` kept for the HTML's highlighting) and rows with
        attributes and groups in words (:meth:`FairnessAudit.display_rows`)."""
        return self.audit.display_rows("summary", self.language)

    def _gap_rows(self) -> tuple[list[str], list[list[Any]]]:
        """The disparities the rule judged exceeding or could not tell, with ratios, intervals and verdicts."""
        return self.audit.display_rows("gaps", self.language)

    def _headers(self, cols: list[str]) -> list[str]:
        return [_word(self.language, "columns", c) for c in cols]

    def _audit_text(self, f: dict[str, Any]) -> str:
        lang = self.language
        return _t("audit_text", lang, as_of=f.get("as_of") or "-", n=swiss_number(f["n"], lang),
                  flagged=swiss_number(f["flagged"], lang), k=f["min_cell_size"], na=_NA,
                  gap=_rule_bounds(f.get("rule") or {}, lang))

    def _fingerprint_rows(self, d: dict[str, Any]) -> list[list[Any]]:
        fp, lang = d["fingerprints"], self.language
        return [[_word(lang, "facts", "model_sha256"), fp["model_sha256"]],
                [_word(lang, "facts", "data_fingerprint"), fp["data_fingerprint"]],
                [_word(lang, "facts", "signature"), _t("signed_yes" if fp["signed"] else "signed_no", lang)],
                *[[k, v] for k, v in d["versions"].items()]]

    def _feature_rows(self, d: dict[str, Any]) -> list[list[Any]]:
        return [[f["name"], _word(self.language, "feature_groups", f["group"]), f["unit"], f["description"]]
                for f in d["features"]]

    def _configured(self, d: dict[str, Any]) -> str:
        return ", ".join(_word(self.language, "attributes", a) for a in d["protected_attributes"]["configured"]) \
            or "-"

    def to_markdown(self) -> str:
        """The card as Markdown."""
        d = self.to_dict()
        lang = self.language
        title = self._title(d)
        md = [f"# {title}", "", f"## {_t('intended', lang)}", "", f"> {d['intended_use']['statement']}", "",
              d["intended_use"]["users"], "", f"**{_t('not_for', lang)}{colon(lang)}**", ""]
        md += [f"- {x}" for x in d["intended_use"]["not_intended_for"]]
        md += ["", f"## {_t('model', lang)} / {_t('data', lang)}", "", d["data"]["population"], "",
               _md_table([_t("item", lang), _t("value", lang)], [[k, v] for k, v in self._facts(d)], lang), "",
               f"## {_t('outcome', lang)}", "",
               f"**{_word(lang, 'outcome_names', d['outcome']['name'])}** ({_t('horizon', lang)} {d['outcome']['horizon_months']} "
               f"{_t('months', lang)}){colon(lang)} {self._outcome_text(d)}", "",
               f"## {_t('protected', lang)}", "",
               f"**{d['protected_attributes']['statement']}**", "",
               f"{_t('configured', lang)}{colon(lang)} {self._configured(d)}", "",
               f"## {_t('features', lang)}", "",
               _md_table([_t("name", lang), _t("group", lang), _t("unit", lang), _t("description", lang)],
                         self._feature_rows(d), lang), "",
               f"## {_t('metrics', lang)}", ""]
        header, rows = self._metric_rows(d)
        md += [_md_table(header, rows, lang) if rows else _t("no_metrics", lang), ""]
        md += [f"## {_t('calibration', lang)}", "", self._calibration_text(d), ""]
        md += [f"## {_t('fairness', lang)}", ""]
        if self.audit is None:
            md += [_t("no_audit", lang), ""]
        else:
            f = d["fairness"]
            md += [self._audit_text(f), ""]
            header, rows = self._audit_rows()
            md += [_md_table(self._headers(header), rows, lang), "", f"### {_t('gaps', lang)}", ""]
            header, rows = self._gap_rows()
            md += [_md_table(self._headers(header), rows, lang) if rows else _t("no_gaps", lang), ""]
        md += self._oversight_md(d)
        md += self._ranking_md(d)
        md += [f"## {_t('limitations', lang)}", ""]
        md += [f"- {x}" for x in d["limitations"]]
        md += ["", f"## {_t('fingerprints', lang)}", "",
               _md_table([_t("item", lang), _t("value", lang)], self._fingerprint_rows(d), lang), ""]
        return "\n".join(md)

    def _title(self, d: dict[str, Any]) -> str:
        lang = self.language
        return (f"{_t('title', lang)}{colon(lang)} {_word(lang, 'outcome_names', d['model']['outcome'])} "
                f"({_word(lang, 'kinds', d['model']['kind'])})")

    def _outcome_text(self, d: dict[str, Any]) -> str:
        """The outcome's definition in the card's language (see :meth:`to_dict`)."""
        return str(d["outcome"]["description"])

    def _calibration_text(self, d: dict[str, Any]) -> str:
        cal = d["calibration"]
        method = _word(self.language, "kinds", cal["method"]) if cal["method"] else _t("none", self.language)
        return (_t("calibration_text", self.language, method=method)
                + (f" ECE {_fmt(cal['ece'])}, Brier {_fmt(cal['brier'])}." if cal["ece"] is not None else ""))

    def _figure(self):
        """The audit's differences from the reference groups (flag rate, recall, precision): one panel per
        metric, stacked, each with its own groups as labels (the groups differ between metrics: a hidden or
        missing difference is not drawn) and its own axis label, and a legend of the verdicts' colours
        above; None without an audit or without these metrics."""
        if self.audit is None:
            return None
        from matplotlib.figure import Figure

        from .fairness import verdict_legend

        metrics = [m for m in ("flag_rate", "recall", "precision") if m in self.audit.gap_metrics]
        if not metrics:
            return None
        rows = [self.audit.plotted_rows(m) for m in metrics]
        heights = [1.0 + 0.24 * max(2, len(r)) for r in rows]
        fig = Figure(figsize=(8.8, 0.4 + sum(heights)), layout="constrained")
        axes = np.atleast_1d(fig.subplots(len(metrics), 1, gridspec_kw={"height_ratios": heights}))
        for ax, m in zip(axes, metrics, strict=True):
            self.audit.plot(m, ax=ax, language=self.language)
            ax.locator_params(axis="x", nbins=6)  # the long group labels leave the values little room
        verdict_legend(fig, pd.concat([r["verdict"] for r in rows]), self.language)
        return fig

    def _figure_uri(self) -> str:
        from .report import figure_to_data_uri

        fig = self._figure()
        return "" if fig is None else figure_to_data_uri(fig)

    def to_html(self) -> str:
        """The card as one self-contained HTML page (inline style, plot as a data URI)."""
        d = self.to_dict()
        lang = self.language
        esc = _html.escape
        title = self._title(d)
        prot = d["protected_attributes"]
        parts = [f"<h1>{esc(title)}</h1>",
                 f"<h2>{esc(_t('intended', lang))}</h2>",
                 f"<p class='notice'>{esc(d['intended_use']['statement'])}</p>",
                 f"<p>{esc(d['intended_use']['users'])}</p>",
                 f"<p><b>{esc(_t('not_for', lang) + colon(lang))}</b></p><ul>"
                 + "".join(f"<li>{esc(x)}</li>" for x in d["intended_use"]["not_intended_for"]) + "</ul>",
                 f"<h2>{esc(_t('model', lang))} / {esc(_t('data', lang))}</h2>",
                 f"<p>{esc(d['data']['population'])}</p>",
                 _html_table([_t("item", lang), _t("value", lang)], [[k, v] for k, v in self._facts(d)], lang=lang),
                 f"<h2>{esc(_t('outcome', lang))}</h2>",
                 f"<p><b>{esc(_word(lang, 'outcome_names', d['outcome']['name']))}</b> ({esc(_t('horizon', lang))} "
                 f"{esc(str(d['outcome']['horizon_months']))} {esc(_t('months', lang))}){colon(lang)} "
                 f"{esc(self._outcome_text(d))}</p>",
                 f"<h2>{esc(_t('protected', lang))}</h2>",
                 f"<p class='{'warn' if prot['used_as_inputs'] else 'ok'}'>{esc(prot['statement'])}</p>",
                 f"<p>{esc(_t('configured', lang))}{colon(lang)} {esc(self._configured(d))}</p>",
                 f"<h2>{esc(_t('features', lang))}</h2>",
                 _html_table([_t("name", lang), _t("group", lang), _t("unit", lang), _t("description", lang)],
                             self._feature_rows(d), lang=lang),
                 f"<h2>{esc(_t('metrics', lang))}</h2>"]
        header, rows = self._metric_rows(d)
        parts.append(_html_table(header, rows, lang=lang) if rows else f"<p>{esc(_t('no_metrics', lang))}</p>")
        parts += [f"<h2>{esc(_t('calibration', lang))}</h2>", "<p>" + esc(self._calibration_text(d)) + "</p>",
                  f"<h2>{esc(_t('fairness', lang))}</h2>"]
        if self.audit is None:
            parts.append(f"<p>{esc(_t('no_audit', lang))}</p>")
        else:
            f = d["fairness"]
            parts.append("<p>" + esc(self._audit_text(f)) + "</p>")
            header, rows = self._audit_rows()
            parts.append(_html_table(self._headers(header), rows, flag_col=header.index("gap_flag")
                                     if "gap_flag" in header else None, lang=lang))
            uri = self._figure_uri()
            if uri:
                parts.append(f"<img alt='{esc(_t('figure_alt', lang))}' src='{uri}'>")
            header, rows = self._gap_rows()
            parts += [f"<h3>{esc(_t('gaps', lang))}</h3>",
                      _html_table(self._headers(header), rows, lang=lang) if rows
                      else f"<p>{esc(_t('no_gaps', lang))}</p>"]
        parts += self._oversight_html(d)
        parts += self._ranking_html(d)
        parts += [f"<h2>{esc(_t('limitations', lang))}</h2>",
                  "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in d["limitations"]) + "</ul>",
                  f"<h2>{esc(_t('fingerprints', lang))}</h2>",
                  _html_table([_t("item", lang), _t("value", lang)], self._fingerprint_rows(d), lang=lang)]
        return page(title, "\n".join(parts), lang)

    def _repr_html_(self) -> str:
        d = self.to_dict()
        prot = d["protected_attributes"]
        colour = "#cf222e" if prot["used_as_inputs"] else "#1a7f37"
        header, rows = self._metric_rows(d)
        lang = self.language
        fair = ("" if self.audit is None else
                f"<p>{_html.escape(_t('repr_audit', lang, n=len(self.audit.flagged_gaps_)))} "
                f"({_html.escape(_rule_bounds((self._audit_dict() or {}).get('rule') or {}, lang))})</p>")
        return (f"<div><b>{_html.escape(_t('title', lang))}</b>{colon(lang)} "
                f"{_html.escape(_word(lang, 'kinds', d['model']['kind']))}, "
                f"{_html.escape(_word(lang, 'facts', 'outcome'))} "
                f"<i>{_html.escape(_word(lang, 'outcome_names', d['model']['outcome']))}</i>, "
                f"{_html.escape(_t('horizon', lang))} {d['model']['horizon_months']} {_html.escape(_t('months', lang))}."
                f"<br>{_html.escape(d['intended_use']['statement'])}"
                f"<p style='color:{colour}'>{_html.escape(prot['statement'])}</p>"
                + (_html_table(header, rows, lang=lang) if rows else "") + fair + "</div>")

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``model_card.md``, ``model_card.html`` and ``model_card.json`` (each atomically)."""
        out_dir = Path(out_dir)
        make_dirs(out_dir)
        texts = {"md": self.to_markdown(), "html": self.to_html(),
                 "json": json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"}
        paths = {}
        for kind, content in texts.items():
            path = out_dir / CARD_FILES[kind]
            paths[kind] = write_text_atomic(content, path, private=True)
        logger.debug("model card written to %s", out_dir)
        return paths


def write_model_card(model_dir_or_model, out_dir: str | Path, *, audit=None, language: str = "en",
                     protected_attributes=None, oversight=None, benefit=None,
                     rank_by: str = "risk") -> dict[str, Path]:
    """Write the model card (Markdown, HTML, JSON) of a model directory or fitted model to ``out_dir``.

    Parameters
    ----------
    model_dir_or_model : path, RiskModel or dict
        A model directory (only its ``manifest.json`` is read), a fitted model,
        or a manifest as a dict.
    out_dir : path
        Folder for ``model_card.md``, ``model_card.html`` and ``model_card.json``
        (the model directory itself at training time).
    audit : FairnessAudit, optional
        A fitted audit to include per-group metrics.
    language : {"en", "de", "fr", "it"}, default "en"
    protected_attributes : sequence of str, optional
        The deployment's protected attributes; default sex and nationality group.
    oversight : Oversight or DataFrame, optional
        The deployment's oversight figures (suppressed) for the section "Human oversight".
    benefit, rank_by : BenefitModel, str, optional
        The deployment's order of the lists and, when not by risk, its benefit
        model (section "Order of the worklists").

    Returns
    -------
    dict
        ``{"md": path, "html": path, "json": path}``.

    Examples
    --------
    >>> import tempfile
    >>> paths = write_model_card(ModelCard({"model": "logistic", "outcome": "revolving_door"}).manifest,
    ...                          tempfile.mkdtemp())
    >>> sorted(p.name for p in paths.values())
    ['model_card.html', 'model_card.json', 'model_card.md']
    """
    if isinstance(model_dir_or_model, dict):
        card = ModelCard(model_dir_or_model, audit=audit, language=language,
                         protected_attributes=tuple(protected_attributes or _DEFAULT_PROTECTED), oversight=oversight,
                         benefit=benefit, rank_by=rank_by)
    else:
        card = ModelCard.from_model(model_dir_or_model, audit=audit, language=language,
                                    protected_attributes=protected_attributes, oversight=oversight,
                                    benefit=benefit, rank_by=rank_by)
    return card.save(out_dir)
