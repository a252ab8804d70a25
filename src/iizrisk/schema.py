"""Table schemas: the Frictionless Table Schema files are the single source of truth.

The JSON files under ``iizrisk/schemas/`` (``data/schemas/`` in the
repository) define every table iizrisk reads or writes. Code asks this module
for column names, types and constraints; no column list is repeated in Python.

Examples
--------
>>> s = load_schema("spells")
>>> s.required[:2]
['person_id', 'institution']
>>> "ALV" in s.field("institution").enum
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from .errors import SchemaError

__all__ = ["Field", "Schema", "load_schema", "schema_names", "institution_extension", "data_fingerprint",
           "dtype_kind", "input_info"]


@dataclass(frozen=True)
class Field:
    """One column of a schema."""

    name: str
    type: str
    description: str = ""
    required: bool = False
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    protected: bool = False
    extensible: bool = False


@dataclass(frozen=True)
class Schema:
    """A parsed Table Schema."""

    name: str
    title: str
    fields: tuple[Field, ...]
    raw: dict = field(repr=False, compare=False, hash=False)

    @property
    def names(self) -> list[str]:
        """All column names, in schema order."""
        return [f.name for f in self.fields]

    @property
    def required(self) -> list[str]:
        """Names of the required columns."""
        return [f.name for f in self.fields if f.required]

    @property
    def protected(self) -> list[str]:
        """Names of protected attributes (audit only, never model inputs by default)."""
        return [f.name for f in self.fields if f.protected]

    def names_of_type(self, type_: str) -> list[str]:
        """Names of the columns of one Table Schema type (``'date'``, ``'integer'``...)."""
        return [f.name for f in self.fields if f.type == type_]

    def field(self, name: str) -> Field:
        """The field called ``name``."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"schema {self.name!r} has no column {name!r}; columns: {self.names}")

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.fields)

    def plausible_dates(self) -> tuple[str, int]:
        """(earliest plausible date, years after today still plausible)."""
        p = self.raw.get("x-plausible-dates", {})
        return p.get("min", "1900-01-01"), int(p.get("max_years_after_today", 1))


def schema_names() -> list[str]:
    """Names of every schema shipped with iizrisk."""
    files = resources.files("iizrisk") / "schemas"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".json"))


def _parse(raw: dict, name: str) -> Schema:
    try:
        fields = []
        for f in raw["fields"]:
            c = f.get("constraints", {})
            fields.append(
                Field(
                    name=f["name"],
                    type=f.get("type", "string"),
                    description=f.get("description", ""),
                    required=bool(c.get("required", False)),
                    enum=tuple(c["enum"]) if "enum" in c else None,
                    minimum=c.get("minimum"),
                    maximum=c.get("maximum"),
                    protected=bool(f.get("x-protected", False)),
                    extensible=bool(f.get("x-extensible", False)),
                )
            )
    except (KeyError, TypeError) as exc:
        raise SchemaError(f"schema {name!r} is malformed: {exc!r}") from exc
    return Schema(name=raw.get("name", name), title=raw.get("title", name), fields=tuple(fields), raw=raw)


@cache
def load_schema(name: str) -> Schema:
    """Load a shipped schema by name (``'spells'``, ``'interventions'``, ``'spells_alv'``...)."""
    path = resources.files("iizrisk") / "schemas" / f"{name}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SchemaError(
            f"no schema called {name!r}; available: {', '.join(schema_names())}"
        ) from exc
    return _parse(raw, name)


def institution_extension(code: str) -> Schema | None:
    """The extension schema of one institution code, or None when it has none."""
    try:
        return load_schema(f"spells_{code.lower()}")
    except SchemaError:
        return None


# ------------------------------------------------------------------ what a table holds
def dtype_kind(dtype) -> str:
    """The contract's kind of a pandas dtype: ``boolean``, ``date``, ``number`` or ``string``."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "date"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    return "string"


def input_info(spells, interventions) -> dict:
    """The spell columns a model was trained on (kinds) and whether interventions were given.

    Protected attributes are audit-only: scoring must not require them.
    """
    schema = load_schema("spells")
    used = [c for c in schema.names if c not in {"case_id", "canton", *schema.protected}]
    return {"columns": {c: dtype_kind(spells[c].dtype) for c in used if c in spells.columns},
            "interventions": interventions is not None}


def data_fingerprint(spells) -> str:
    """SHA-256 over the canonical columns of a spells table (row order matters).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"person_id": ["a"], "institution": ["ALV"],
    ...                    "start_date": pd.to_datetime(["2024-01-01"])})
    >>> len(data_fingerprint(df))
    64
    """
    import hashlib

    import pandas as pd

    cols = [c for c in load_schema("spells").names if c in spells.columns]
    h = hashlib.sha256()
    h.update(json.dumps(cols).encode())
    h.update(pd.util.hash_pandas_object(spells[cols], index=False).to_numpy().tobytes())
    return h.hexdigest()
