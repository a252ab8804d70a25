"""iizrisk: data tooling for Swiss interinstitutional cooperation (IIZ).

Join pseudonymised registration spells from unemployment insurance (ALV),
disability insurance (IV), social assistance (SH) and other institutions into
one person-level timeline; flag people registered at two or more of them and
people in a revolving door; score risk with plain-language explanations, as a
hint for a human review, never a decision.
"""

from __future__ import annotations

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
from .schema import load_schema

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
    "load_schema",
]
