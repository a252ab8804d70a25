"""Deployment settings: one dataclass, saved to and loaded from one TOML file.

The same :class:`Settings` object drives notebooks and the command line
(``iizrisk validate CONFIG``, ``iizrisk run CONFIG``). Relative paths in the
file are resolved against the folder that holds the file.

A minimal file::

    [deployment]
    name = "Kanton Beispiel"

    [[sources]]
    name = "alv"
    institution = "ALV"              # constant for this source (no institution column)
    path = "exports/alv_*.csv"       # a file, a glob or a folder
    separator = ";"                  # optional, sniffed otherwise
    encoding = "cp1252"              # optional: utf-8 (with/without BOM) tried first
    date_format = "%d.%m.%Y"         # optional: dd.mm.yyyy and ISO recognised
    [sources.columns]                # source column -> canonical column
    PERS_PSEUDO = "person_id"
    [sources.values.exit_reason]     # source value -> canonical value
    Stellenantritt = "employment"

See ``examples/iizrisk.toml`` for every setting with comments.

Examples
--------
>>> s = Settings.from_dict({"sources": [{"name": "alv", "institution": "ALV", "path": "alv.csv"}]})
>>> s.sources[0].institution
'ALV'
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = [
    "Settings",
    "SourceConfig",
    "ModelSettings",
    "WorklistSettings",
    "OutputSettings",
    "PrivacySettings",
    "DeploymentSettings",
]


@dataclass
class SourceConfig:
    """How to read one institution's export and map it onto the canonical spells."""

    name: str
    path: str
    institution: str | None = None
    format: str | None = None  # "csv" | "parquet"; inferred from the suffix when None
    separator: str | None = None
    encoding: str | None = None
    date_format: str | None = None
    decimal: str = "."
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    drop_columns: list[str] = field(default_factory=list)


@dataclass
class DeploymentSettings:
    """Who runs iizrisk and which definitions it uses."""

    name: str = "iizrisk deployment"
    extra_institutions: list[str] = field(default_factory=list)
    errors: str = "raise"  # "raise" | "quarantine"
    merge_gap_days: int = 0
    transition_gap_days: int = 90
    window_months: int = 24
    interventions: str | None = None  # CSV/Parquet of interventions (joint assessments, ...)


@dataclass
class ModelSettings:
    """Which model scores, for which outcome."""

    dir: str = "model"
    outcome: str = "revolving_door"
    horizon_months: int = 12
    signing_key_env: str | None = None
    signing_key_file: str | None = None


@dataclass
class WorklistSettings:
    """What each institution's coordinators receive."""

    capacity: int = 25
    capacity_per_institution: dict[str, int] = field(default_factory=dict)
    capacity_per_canton: dict[str, int] = field(default_factory=dict)
    risk_bands: list[float] = field(default_factory=lambda: [0.10, 0.25])
    language: str = "de"
    language_per_institution: dict[str, str] = field(default_factory=dict)
    disclose_institutions: list[str] = field(default_factory=list)
    exclude_assessed_months: int = 12


@dataclass
class OutputSettings:
    """Where results go and how long history is kept."""

    dir: str = "runs"
    history_dir: str = "history"
    history_keep_days: int = 730


@dataclass
class PrivacySettings:
    """Disclosure control for aggregates that leave the system."""

    min_cell_size: int = 5
    protected_attributes: list[str] = field(default_factory=lambda: ["sex", "nationality_group"])
    fairness_max_gap: float = 0.10  # the fairness audit warns when a group gap exceeds this


@dataclass
class Settings:
    """All settings of one deployment (one TOML file)."""

    deployment: DeploymentSettings = field(default_factory=DeploymentSettings)
    sources: list[SourceConfig] = field(default_factory=list)
    model: ModelSettings = field(default_factory=ModelSettings)
    worklist: WorklistSettings = field(default_factory=WorklistSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    base_dir: Path = field(default_factory=Path.cwd, repr=False, compare=False)
    config_path: Path | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ io
    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base_dir: Path | str | None = None,
                  origin: str = "settings") -> Settings:
        """Build settings from a plain dict (as read from TOML), checking every key."""
        data = dict(data)
        known = {"deployment", "sources", "model", "worklist", "output", "privacy"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{origin}: unknown section(s) {unknown}; known sections: {sorted(known)}"
            )
        kwargs: dict[str, Any] = {}
        for name, klass in [("deployment", DeploymentSettings), ("model", ModelSettings),
                            ("worklist", WorklistSettings), ("output", OutputSettings),
                            ("privacy", PrivacySettings)]:
            if name in data:
                kwargs[name] = _build(klass, data[name], f"{origin} [{name}]")
        sources = data.get("sources", [])
        if not isinstance(sources, list):
            raise ConfigError(f"{origin}: 'sources' must be an array of tables ([[sources]])")
        kwargs["sources"] = [
            _build(SourceConfig, s, f"{origin} [[sources]] #{i + 1}") for i, s in enumerate(sources)
        ]
        names = [s.name for s in kwargs["sources"]]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"{origin}: source names must be unique; repeated: {dup}")
        settings = cls(**kwargs, base_dir=Path(base_dir) if base_dir else Path.cwd())
        settings.check(origin)
        return settings

    @classmethod
    def load(cls, path: str | Path) -> Settings:
        """Read settings from a TOML file; relative paths resolve against its folder."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(f"configuration file {path} does not exist") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"configuration file {path} is not UTF-8 text") from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
        settings = cls.from_dict(data, base_dir=path.resolve().parent, origin=str(path))
        settings.config_path = path.resolve()
        return settings

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every setting (None values left out, as TOML has no null)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in {"base_dir", "config_path"}:
                continue
            value = getattr(self, f.name)
            if isinstance(value, list):
                out[f.name] = [_drop_none(dataclasses.asdict(v)) for v in value]
            else:
                out[f.name] = _drop_none(dataclasses.asdict(value))
        return out

    def save(self, path: str | Path) -> Path:
        """Write the settings to a TOML file (atomically) and return its path."""
        import os
        import tempfile

        import tomli_w

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            tomli_w.dump(self.to_dict(), fh)
        os.replace(tmp, path)
        return path

    # ------------------------------------------------------------- helpers
    def resolve(self, p: str | Path) -> Path:
        """A path from the settings, resolved against the configuration's folder."""
        p = Path(p).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def institutions(self) -> list[str]:
        """Allowed institution codes: the schema's defaults plus the deployment's own."""
        from .schema import load_schema

        return list(load_schema("spells").field("institution").enum or ()) + [
            c for c in self.deployment.extra_institutions
        ]

    def check(self, origin: str = "settings") -> None:
        """Raise :class:`ConfigError` naming every inconsistent value at once."""
        problems = []
        if self.deployment.errors not in {"raise", "quarantine"}:
            problems.append(f"[deployment] errors = {self.deployment.errors!r}: use 'raise' or 'quarantine'")
        for s in self.sources:
            if s.format not in {None, "csv", "parquet"}:
                problems.append(f"[[sources]] {s.name}: format {s.format!r}: use 'csv' or 'parquet'")
            if s.decimal not in {".", ","}:
                problems.append(f"[[sources]] {s.name}: decimal {s.decimal!r}: use '.' or ','")
            if s.institution is not None and s.institution not in self.institutions:
                problems.append(
                    f"[[sources]] {s.name}: institution {s.institution!r} is not a known code "
                    f"({', '.join(self.institutions)}); add it to [deployment] extra_institutions"
                )
        if self.deployment.merge_gap_days < 0 or self.deployment.transition_gap_days < 0:
            problems.append("[deployment] merge_gap_days and transition_gap_days must be >= 0")
        bands = self.worklist.risk_bands
        if list(bands) != sorted(bands) or any(not 0 < b < 1 for b in bands):
            problems.append(f"[worklist] risk_bands {bands}: increasing probabilities between 0 and 1")
        if self.privacy.min_cell_size < 1:
            problems.append("[privacy] min_cell_size must be >= 1")
        if problems:
            raise ConfigError(f"{origin}: " + "; ".join(problems))


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _build(klass, data: Any, origin: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a table, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(klass)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{origin}: unknown setting(s) {unknown}; known: {sorted(names)}")
    try:
        return klass(**data)
    except TypeError as exc:
        raise ConfigError(f"{origin}: {exc}") from exc
