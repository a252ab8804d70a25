"""iizrisk: data tooling for Swiss interinstitutional cooperation (IIZ).

Join pseudonymised registration spells from unemployment insurance (ALV),
disability insurance (IV), social assistance (SH) and other institutions into
one person-level timeline; flag people registered at two or more of them and
people in a revolving door; score risk with plain-language explanations, as a
hint for a human review, never a decision.

The public names below are imported lazily (on first use), so that
``import iizrisk`` and the command line start fast.

Examples
--------
>>> import iizrisk
>>> iizrisk.build_timeline.__module__
'iizrisk.spells'
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .errors import (
    ConfigError,
    IizriskError,
    InputMismatchError,
    KeyFileError,
    LockedError,
    ModelError,
    PseudonymisationError,
    RawIdentifierError,
    SchemaError,
    ValidationError,
)

#: public name -> module that defines it (imported on first access)
_LAZY = {
    # settings, schemas, reading and checking
    "Settings": "config", "load_schema": "schema",
    "ingest": "io", "read_spells": "io", "read_canonical": "io", "read_interventions": "io",
    "Ingestion": "io", "ValidationReport": "validate",
    "pseudonymise": "pseudonym", "load_key": "pseudonym", "is_valid_ahv": "pseudonym",
    # timeline, flags, indicators
    "build_timeline": "spells", "point_in_time": "spells", "Timeline": "spells",
    "MergeReport": "spells", "monthly_spells": "spells", "as_of_day": "spells",
    "compute_flags": "flags", "transition_mask": "flags", "reentry_mask": "flags",
    "FLAG_COLUMNS": "flags",
    "bfs_indicators": "indicators", "BfsIndicators": "indicators", "transition_matrix": "indicators",
    # synthetic population
    "generate": "synth", "SyntheticPopulation": "synth", "SwissDefaults": "synth",
    "calibration_report": "synth",
    # risk models
    "PointInTimeFeatures": "features", "feature_catalogue": "features",
    "ProtectedAttributeWarning": "features",
    "compute_outcome": "outcomes", "register_outcome": "outcomes", "outcome_names": "outcomes",
    "RiskModel": "model", "TrainingReport": "model", "train": "model", "score": "model",
    "save_model": "model", "load_model": "model",
    "explain": "explain", "reason_codes": "explain", "global_importance": "explain",
    "score_with_reasons": "explain", "Explanation": "explain",
    # the nightly job
    "build_worklists": "worklist", "run_nightly": "batch", "HistoryStore": "history",
    "run_demo": "demo",
    # the coordinator's loop
    "import_reviews": "reviews", "write_review_file": "reviews", "ReviewImport": "reviews",
    "oversight": "oversight", "oversight_of": "oversight", "Oversight": "oversight",
    "case_lookup": "case", "CaseView": "case", "write_table": "tables", "read_table": "tables",
    # scale-out (optional extra iizrisk[dask])
    "dask_client": "distributed",
    # responsible profiling
    "FairnessAudit": "fairness", "FairnessGapWarning": "fairness", "labelled_period": "fairness",
    "audit_model": "fairness", "ModelCard": "modelcard", "write_model_card": "modelcard",
    "FairnessRule": "fairness", "ProxyAnalysis": "proxies",
    "suppress_table": "suppression", "suppress_crosstab": "suppression",
    "SuppressionResult": "suppression",
    # research
    "AssessmentStudy": "evaluation", "DifferenceInMeans": "evaluation", "RegressionAdjustment": "evaluation",
    "IPWEstimator": "evaluation", "PropensityScoreMatching": "evaluation",
    "PropensityScoreStratification": "evaluation", "KaplanMeier": "evaluation",
    "risk_set_table": "evaluation", "balance_table": "evaluation",
}

__all__ = [
    "__version__",
    "ConfigError",
    "IizriskError",
    "InputMismatchError",
    "KeyFileError",
    "LockedError",
    "ModelError",
    "PseudonymisationError",
    "RawIdentifierError",
    "SchemaError",
    "ValidationError",
    *sorted(_LAZY),
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'iizrisk' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
