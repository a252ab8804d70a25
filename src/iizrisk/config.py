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
import math
import re
import sys
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._files import file_kind, read_regular
from ._texts import LANGUAGES
from .errors import ConfigError, OperatingSystemError

#: Upper bounds of periods given in months and days (100 years): larger ones overflow the date arithmetic.
MAX_MONTHS = 1200
MAX_DAYS = 36_525
#: Upper bound of counts (capacities, cell sizes): beyond anyone's population, within every integer type used.
MAX_COUNT = 10_000_000

__all__ = [
    "Settings",
    "SourceConfig",
    "ModelSettings",
    "WorklistSettings",
    "OutputSettings",
    "PrivacySettings",
    "DeploymentSettings",
    "HealthSettings",
    "MonitoringSettings",
    "DaskSettings",
    "ReviewSettings",
    "REVIEW_DECISIONS",
    "PROTECTED_ATTRIBUTES",
    "LANGUAGES",
    "file_mode",
    "dir_mode",
]



class _Section:
    """Base of every settings table: read-only once the settings are resolved (:meth:`Settings.resolved`)."""

    if typing.TYPE_CHECKING:  # every subclass is a dataclass (dataclasses.fields below needs one)
        __dataclass_fields__: typing.ClassVar[dict[str, dataclasses.Field[Any]]]

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_resolved"):
            raise dataclasses.FrozenInstanceError(
                f"resolved settings are read-only: cannot set {type(self).__name__}.{name}; change the "
                "Settings object before resolving it (Settings.load(...) gives an editable one)")
        object.__setattr__(self, name, value)

    def _freeze(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _frozen_value(getattr(self, f.name)))
        object.__setattr__(self, "_resolved", True)


def _frozen_value(value: Any) -> Any:
    if isinstance(value, _Section):
        value._freeze()
        return value
    if isinstance(value, list | tuple):
        return tuple(_frozen_value(v) for v in value)
    if isinstance(value, dict | types.MappingProxyType):
        return types.MappingProxyType({k: _frozen_value(v) for k, v in value.items()})
    return value


def _plain(value: Any) -> Any:
    """A settings value as plain TOML data: tables as dicts (None left out), arrays as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict | types.MappingProxyType):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass
class SourceConfig(_Section):
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
    #: institution codes this source may emit (default: ``[institution]`` for a constant
    #: source; a source with an institution column must list the codes it may hold)
    institutions: list[str] | None = None

    @property
    def allowed_institutions(self) -> list[str] | None:
        """The codes this source may emit: ``institutions``, else ``[institution]``; None when
        its rows name their institutions in a column and the source lists none."""
        if self.institutions is not None:
            return list(self.institutions)
        return [self.institution] if self.institution else None


@dataclass
class DeploymentSettings(_Section):
    """Who runs iizrisk and which definitions it uses."""

    name: str = "iizrisk deployment"
    extra_institutions: list[str] = field(default_factory=list)
    errors: str = "raise"  # "raise" | "quarantine"
    merge_gap_days: int = 0
    transition_gap_days: int = 90
    window_months: int = 24
    interventions: str | None = None  # CSV/Parquet of interventions (joint assessments, ...)
    #: regular expression every ``person_id`` must match in full; the default is the
    #: format ``iizrisk pseudonymise`` writes (64 lower-case hexadecimal characters)
    pseudonym_pattern: str = "[0-9a-f]{64}"
    #: whom a person asks about their data (nDSG Art. 25): office, address, e-mail or telephone;
    #: printed in every information document (``iizrisk information-request``) and the DPIA draft
    contact: str | None = None
    #: corrections table (CSV or Parquet, iizrisk.corrections): contested rows corrected at ingestion,
    #: with the audit trail; a later export that disagrees is reported to the data steward
    corrections: str | None = None


@dataclass
class ModelSettings(_Section):
    """Which model scores, for which outcome."""

    dir: str = "model"
    outcome: str = "revolving_door"
    horizon_months: int = 12
    signing_key_env: str | None = None
    signing_key_file: str | None = None
    #: without a signing key a model file's hash proves nothing; ``iizrisk run`` refuses an
    #: unsigned model unless this is true
    allow_unsigned_model: bool = False


@dataclass
class WorklistSettings(_Section):
    """What each institution's coordinators receive."""

    capacity: int = 25
    capacity_per_institution: dict[str, int] = field(default_factory=dict)
    capacity_per_canton: dict[str, int] = field(default_factory=dict)
    risk_bands: list[float] = field(default_factory=lambda: [0.10, 0.25])
    language: str = "de"
    language_per_institution: dict[str, str] = field(default_factory=dict)
    disclose_institutions: list[str] = field(default_factory=list)
    exclude_assessed_months: int = 12
    #: the lowest risk band listed ("low", "medium" or "high"); a list may then be shorter than its capacity
    min_band: str = "medium"
    min_band_per_institution: dict[str, str] = field(default_factory=dict)
    #: the order of each list: "risk" (highest risk first), or "benefit" / "risk_x_benefit" (the
    #: expected benefit of a joint assessment, from ``benefit_model``), allowed only when that
    #: model's own offline evaluation shows the ordering preventing more than ordering by risk
    rank_by: str = "risk"
    #: the benefit model file (``iizrisk policy --save-model``), needed when rank_by is not "risk"
    benefit_model: str | None = None


#: The outcomes iizrisk registers itself (:mod:`iizrisk.outcomes`); a Python caller may register more.
BUILTIN_OUTCOMES = ("revolving_door", "disintegration")


def _outcome_names() -> list[str]:
    """The outcomes known now: the built-in ones, and any registered in this process (without importing pandas)."""
    registry = sys.modules.get("iizrisk.outcomes")
    return list(dict.fromkeys([*BUILTIN_OUTCOMES, *(registry.outcome_names() if registry else [])]))


def _known_outcome(name: str) -> bool:
    return name in _outcome_names()


#: How a deployment may order its worklists (``[worklist] rank_by``): by risk, or by the expected benefit of
#: a joint assessment (:mod:`iizrisk.benefit`) where a benefit model's offline evaluation supports it.
RANK_BY = ("risk", "benefit", "risk_x_benefit")

#: The decisions a coordinator records on a worklist row, by default (``[reviews] decisions``).
REVIEW_DECISIONS = ("joint_assessment_proposed", "joint_assessment_held", "not_suitable", "already_in_iiz",
                    "consent_declined", "data_error", "other")


@dataclass
class ReviewSettings(_Section):
    """The reviews coordinators send back (``iizrisk reviews import``) and what they do the next night."""

    #: the decisions offered in the review file's drop-down list
    decisions: list[str] = field(default_factory=lambda: list(REVIEW_DECISIONS))
    #: decision -> days the person stays off that institution's list, unless their risk band rises
    keep_off_days: dict[str, int] = field(default_factory=lambda: {"not_suitable": 180, "already_in_iiz": 180})
    #: decision -> intervention type it records (features, the recent-assessment exclusion, the study)
    interventions: dict[str, str] = field(default_factory=lambda: {"joint_assessment_held": "joint_assessment"})
    #: decisions counted in the run summary for the data steward
    summary_decisions: list[str] = field(default_factory=lambda: ["data_error"])


@dataclass
class OutputSettings(_Section):
    """Where results go and how long history is kept."""

    dir: str = "runs"
    history_dir: str = "history"
    history_keep_days: int = 730
    #: permissions of every file written (octal text); never readable by others
    mode: str = "0640"
    #: group that owns run folders, worklists and history (default: the process's group)
    group: str | None = None


@dataclass
class HealthSettings(_Section):
    """Run-health gates: a run that fails one exits 1 and publishes nothing (unless forced)."""

    min_persons_scored: int = 1
    #: an institution's accepted rows may fall by at most this share since the last run
    max_row_drop_percent: float = 50.0
    #: a source's quarantined rows may be at most this share of its rows
    max_quarantine_percent: float = 5.0
    #: the newest date in a source's data may be at most this many days before the as-of date
    max_export_age_days: int = 60
    #: the as-of date may be at most this many days after the newest date in the data
    max_as_of_after_data_days: int = 14
    #: an institution with open cases must get a non-empty worklist
    require_worklists: bool = True


#: The attributes the nightly fairness check (:func:`iizrisk.list_fairness.list_fairness`) computes and the
#: reports name (``[privacy] protected_attributes``): the audit's default attributes
#: (:data:`iizrisk.fairness.GROUP_COLUMNS`) and education. Any other name would be skipped without a word
#: (the fairness check a no-op), so it is refused when the settings are read.
PROTECTED_ATTRIBUTES = ("sex", "nationality_group", "age_band", "disability", "canton", "education")


@dataclass
class PrivacySettings(_Section):
    """Disclosure control for aggregates that leave the system."""

    min_cell_size: int = 5
    #: audit attributes: protected grounds of Art. 8(2) BV (age as age bands, disability through
    #: its IV proxy), and canton or education where a deployment audits them too; each one of
    #: :data:`PROTECTED_ATTRIBUTES`, at least one (the nightly fairness check is a safeguard: no
    #: setting switches it off)
    protected_attributes: list[str] = field(
        default_factory=lambda: ["sex", "nationality_group", "age_band", "disability"])
    #: the fairness rule (iizrisk.fairness.FairnessRule): a group's flag rate (and the other
    #: fairness_ratio_metrics) must lie within fairness_min_ratio to 1/fairness_min_ratio times the
    #: reference group's (four-fifths rule), and the differences named in fairness_max_differences
    #: within their bounds; judged on the bootstrap confidence interval
    fairness_min_ratio: float = 0.8
    fairness_ratio_metrics: list[str] = field(default_factory=lambda: ["flag_rate"])
    fairness_max_differences: dict[str, float] = field(default_factory=lambda: {"calibration_gap": 0.05})


@dataclass
class MonitoringSettings(_Section):
    """When the nightly monitoring (:mod:`iizrisk.monitoring`) warns, and whether a warning fails the run."""

    #: a feature's population stability index against the model's training reference
    feature_psi: float = 0.1
    #: the calibrated risks' population stability index against the reference
    score_psi: float = 0.1
    #: absolute change of a risk band's share against the reference (beyond the range the reference's
    #: deciles allow when it does not keep the exact share)
    band_share_change: float = 0.05
    #: tonight's list of an institution against the previous run's (Jaccard of the listed people)
    min_list_jaccard: float = 0.5
    #: realised minus expected precision of past lists, in absolute value
    precision_gap: float = 0.05
    #: realised calibration error (ECE) of a past run
    max_ece: float = 0.05
    #: institution flows (:class:`iizrisk.monitoring.FlowThresholds`): tonight's window of days ...
    flow_window_days: int = 30
    #: ... against this many windows of the same length just before it (12 x 30 days: about a year)
    flow_baseline_windows: int = 12
    #: a flow change warns at this distance from the baseline, in standard errors ...
    flow_z: float = 4.0
    #: ... and a relative change of at least this share
    flow_min_change: float = 0.15
    #: flows judged only when tonight's observed or expected count reaches this
    flow_min_count: float = 5.0
    #: a warning fails the run's health (exit 1, nothing published) instead of only being reported
    fail_on_warning: bool = False


@dataclass
class DaskSettings(_Section):
    """Where ``iizrisk snapshots --dask`` and ``iizrisk evaluate --dask`` run (``--config`` names this file).

    The nightly run does not use Dask (it fits one machine); see docs/dask.md.
    """

    #: the scheduler of a running cluster, e.g. "tcp://10.0.0.5:8786"; empty: a LocalCluster on this machine
    scheduler: str = ""
    #: worker processes of that LocalCluster (ignored with a scheduler)
    workers: int = 2


@dataclass
class Settings(_Section):
    """All settings of one deployment (one TOML file)."""

    deployment: DeploymentSettings = field(default_factory=DeploymentSettings)
    sources: list[SourceConfig] = field(default_factory=list)
    model: ModelSettings = field(default_factory=ModelSettings)
    worklist: WorklistSettings = field(default_factory=WorklistSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    reviews: ReviewSettings = field(default_factory=ReviewSettings)
    dask: DaskSettings = field(default_factory=DaskSettings)
    base_dir: Path = field(default_factory=Path.cwd, repr=False, compare=False)
    config_path: Path | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ io
    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base_dir: Path | str | None = None,
                  origin: str = "settings", config_path: Path | None = None) -> Settings:
        """Build settings from a plain dict (as read from TOML), checking every key.

        ``config_path``: the file the dict was read from (kept apart from the output folders).
        """
        data = dict(data)
        refuse_ahv_numbers(data, origin)
        known = {"deployment", "sources", "model", "worklist", "output", "privacy", "health", "reviews",
                 "monitoring", "dask"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{origin}: unknown section(s) {unknown}; known sections: {sorted(known)}"
            )
        kwargs: dict[str, Any] = {}
        for name, klass in [("deployment", DeploymentSettings), ("model", ModelSettings),
                            ("worklist", WorklistSettings), ("output", OutputSettings),
                            ("privacy", PrivacySettings), ("health", HealthSettings),
                            ("reviews", ReviewSettings), ("monitoring", MonitoringSettings),
                            ("dask", DaskSettings)]:
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
        settings = cls(**kwargs, base_dir=Path(base_dir) if base_dir else Path.cwd(), config_path=config_path)
        settings.check(origin)
        return settings

    @classmethod
    def load(cls, path: str | Path) -> Settings:
        """Read settings from a TOML file; relative paths resolve against its folder.

        A missing file, text that is not UTF-8 or not TOML, and every wrong setting are a :class:`ConfigError`
        (exit 2); a folder, a FIFO, a device or a socket instead of the file an :class:`OperatingSystemError`
        (exit 6), refused without reading (a FIFO would block for ever).
        """
        path = Path(path)
        text = _read_config_text(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
        return cls.from_dict(data, base_dir=path.resolve().parent, origin=str(path), config_path=path.resolve())

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every setting (None values left out, as TOML has no null)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.name not in {"base_dir", "config_path"}}

    @property
    def is_resolved(self) -> bool:
        """Whether these are resolved (read-only) settings."""
        return bool(self.__dict__.get("_resolved"))

    def resolved(self) -> Settings:
        """The settings every stage of a run reads: checked again and read-only.

        Resolved once at the start of a run (:func:`iizrisk.run_nightly`,
        ``iizrisk run``); a stage that tried to change a setting would raise
        :class:`dataclasses.FrozenInstanceError`. Settings edited in a notebook
        are checked here as if read from the file, so a wrong value is a
        :class:`ConfigError` before anything is read. Resolved settings return
        themselves.

        Examples
        --------
        >>> s = Settings.from_dict({"worklist": {"capacity": 10}}).resolved()
        >>> try:
        ...     s.worklist.capacity = 20
        ... except AttributeError as exc:  # dataclasses.FrozenInstanceError
        ...     print(str(exc)[:60])
        resolved settings are read-only: cannot set WorklistSettings
        """
        if self.is_resolved:
            return self
        origin = str(self.config_path) if self.config_path else "settings"
        out = Settings.from_dict(self.to_dict(), base_dir=self.base_dir, origin=origin)
        out.config_path = self.config_path
        out._freeze()
        return out

    def save(self, path: str | Path) -> Path:
        """Write the settings to a TOML file (atomically) and return its path."""
        import tomli_w

        from .store import write_bytes_atomic

        return write_bytes_atomic(tomli_w.dumps(self.to_dict()).encode("utf-8"), path, private=True)

    # ------------------------------------------------------------- helpers
    def _overlap_problems(self) -> list[str]:
        """The run and history folders: each its own, and apart from the model, the inputs and the settings.

        A run folder's cleanup and permissions must never meet the history, the model or the exports (a
        run sets its root folder to ``[output] mode``).
        """
        o, problems = self.output, []
        resolved: dict[str, Path] = {}
        named = {"[output] dir": o.dir, "[output] history_dir": o.history_dir, "[model] dir": self.model.dir,
                 **{f"[[sources]] {src.name!r} path": src.path for src in self.sources},
                 **({"[deployment] interventions": self.deployment.interventions}
                    if self.deployment.interventions else {})}
        for what, value in named.items():
            if not str(value).strip():
                continue  # an empty path: refused on its own (_blank_problems), it overlaps nothing
            try:
                resolved[what] = self.resolve(value).resolve()
            except (OSError, RuntimeError):  # a loop of symbolic links (RuntimeError before Python 3.13):
                continue  # the machine's state, not a setting: the stage that uses the path says so (exit 6)
        if self.config_path is not None:
            resolved["the settings file"] = self.config_path
        for out in ("[output] dir", "[output] history_dir"):
            if out not in resolved:
                continue
            a = resolved[out]
            for what, b in resolved.items():
                if what == out or (out == "[output] history_dir" and what == "[output] dir"):
                    continue
                if a == b or a in b.parents or b in a.parents:
                    problems.append(f"{out} = {named[out]!r} and {what} ({b}) overlap; give the "
                                    f"{'runs' if out == '[output] dir' else 'history'} a folder of its own "
                                    "(a run's cleanup and permissions must never meet the history, the model, "
                                    "the exports or the settings)")
        return problems

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

    def _source_column_problems(self) -> list[str]:
        """``[sources.columns]`` targets and ``[sources.values.<column>]`` tables that name no canonical column.

        The canonical columns are those of ``data/schemas/spells.json`` and of the extension schemas of the
        institutions the source may emit (of every institution when it lists none). A target outside them
        (``ERFASST_AM = "recorded_dat"``) would leave the canonical column out without a word.
        """
        from .schema import institution_extension, load_schema, schema_names

        base = load_schema("spells").names
        every = [n.removeprefix("spells_").upper() for n in schema_names() if n.startswith("spells_")]
        problems = []
        for s in self.sources:
            codes = s.allowed_institutions or every
            extension = [c for code in codes if (e := institution_extension(code)) is not None for c in e.names]
            allowed = list(dict.fromkeys([*base, *extension]))
            where = "data/schemas/spells.json" + ("" if not extension else
                                                  f" and the extension schema of {', '.join(codes)}"
                                                  if s.allowed_institutions else " and the extension schemas")
            bad = {k: v for k, v in s.columns.items() if v not in allowed}
            if bad:
                problems.append(f"[[sources]] {s.name}: [sources.columns] {bad}: no canonical column; map export "
                                f"columns onto columns of {where} ({', '.join(allowed)}); leave a column you do "
                                "not need unmapped, or list it in drop_columns")
            unknown = sorted(set(s.values) - set(allowed))
            if unknown:
                problems.append(f"[[sources]] {s.name}: [sources.values] tables {unknown} name no canonical column; "
                                f"values are mapped in columns of {where} ({', '.join(allowed)}), e.g. "
                                "[sources.values.exit_reason]")
        return problems

    def check(self, origin: str = "settings") -> None:
        """Raise :class:`ConfigError` naming every inconsistent value at once."""
        from .schema import load_schema

        problems = []
        known = set(self.institutions)
        codes = ", ".join(self.institutions)
        d, w, o, h = self.deployment, self.worklist, self.output, self.health
        if d.errors not in {"raise", "quarantine"}:
            problems.append(f"[deployment] errors = {d.errors!r}: use 'raise' or 'quarantine'")
        bad_extra = [c for c in d.extra_institutions if not re.fullmatch(r"[A-Z][A-Z0-9_]{0,15}", c)]
        if bad_extra:
            problems.append(f"[deployment] extra_institutions {bad_extra}: codes are upper-case letters, "
                            "digits and '_' (at most 16)")
        try:
            re.compile(d.pseudonym_pattern)
        except re.error as exc:
            problems.append(f"[deployment] pseudonym_pattern is not a regular expression ({exc})")
        if d.contact is not None and (not d.contact.strip() or len(d.contact) > 500):
            problems.append("[deployment] contact: the office a person asks about their data (name, address, "
                            "e-mail or telephone), non-empty and at most 500 characters")
        if d.corrections and d.corrections.strip() and \
                Path(d.corrections).suffix.lower() not in {".csv", ".parquet"}:  # an empty one: _blank_problems
            problems.append(f"[deployment] corrections = {d.corrections!r}: a .csv or .parquet file "
                            "(iizrisk.corrections)")
        for s in self.sources:
            if s.format not in {None, "csv", "parquet"}:
                problems.append(f"[[sources]] {s.name}: format {s.format!r}: use 'csv' or 'parquet'")
            if s.decimal not in {".", ","}:
                problems.append(f"[[sources]] {s.name}: decimal {s.decimal!r}: use '.' or ','")
            if s.date_format is not None and not _is_day_format(s.date_format):
                problems.append(f"[[sources]] {s.name}: date_format {s.date_format!r} is no date format that "
                                "gives back the day it writes; use strftime codes for day, month and year, "
                                "e.g. '%d.%m.%Y' or '%Y-%m-%d'")
            if s.institution is not None and s.institution not in known:
                problems.append(
                    f"[[sources]] {s.name}: institution {s.institution!r} is not a known code "
                    f"({codes}); add it to [deployment] extra_institutions"
                )
            unknown = sorted(set(s.institutions or ()) - known)
            if unknown:
                problems.append(f"[[sources]] {s.name}: institutions {unknown} are not known codes ({codes})")
            if s.institution is not None and s.institutions and list(s.institutions) != [s.institution]:
                problems.append(f"[[sources]] {s.name}: institution = {s.institution!r} and institutions = "
                                f"{s.institutions} disagree; keep one")
        problems += self._source_column_problems()
        problems += _blank_problems(self)
        problems += _non_finite_problems(self)
        # periods are bounded (100 years, MAX_DAYS and MAX_MONTHS): larger ones overflow the date arithmetic
        for name in ("merge_gap_days", "transition_gap_days"):
            if not 0 <= getattr(d, name) <= MAX_DAYS:
                problems.append(f"[deployment] {name} must be between 0 and {MAX_DAYS:,} days")
        if not 1 <= d.window_months <= MAX_MONTHS:
            problems.append(f"[deployment] window_months must be a whole number of months from 1 to {MAX_MONTHS}")
        if not _known_outcome(self.model.outcome):
            problems.append(f"[model] outcome = {self.model.outcome!r} is no outcome iizrisk knows: use one of "
                            f"{', '.join(_outcome_names())} (or register your own in Python before loading)")
        if not 1 <= self.model.horizon_months <= MAX_MONTHS:
            problems.append(f"[model] horizon_months must be a whole number of months from 1 to {MAX_MONTHS}")
        if not 1 <= w.capacity <= MAX_COUNT:
            problems.append(f"[worklist] capacity must be a whole number from 1 to {MAX_COUNT:,}")
        if not 0 <= w.exclude_assessed_months <= MAX_MONTHS:
            problems.append(f"[worklist] exclude_assessed_months must be between 0 and {MAX_MONTHS} months")
        for table in ("capacity_per_institution", "language_per_institution"):
            unknown = sorted(set(getattr(w, table)) - known)
            if unknown:
                problems.append(f"[worklist] {table}: {unknown} are not known institution codes ({codes})")
        cantons = list(load_schema("spells").field("canton").enum or ())
        not_cantons = [k for k in w.capacity_per_canton if k not in cantons]
        if not_cantons:  # a misspelt canton's limit would be ignored without a word
            upper = {k: k.strip().upper() for k in not_cantons if k.strip().upper() in cantons}
            problems.append(f"[worklist] capacity_per_canton: {not_cantons} are not canton codes; use the two-letter "
                            f"upper-case codes ({', '.join(cantons)})"
                            + (f": {', '.join(f'{v} for {k!r}' for k, v in upper.items())}" if upper else ""))
        for table in ("capacity_per_institution", "capacity_per_canton"):
            bad = {k: v for k, v in getattr(w, table).items() if not _is_int(v) or not 1 <= v <= MAX_COUNT}
            if bad:
                problems.append(f"[worklist] {table}: {bad}: capacities are whole numbers from 1 to {MAX_COUNT:,}")
        unknown = sorted(set(w.disclose_institutions) - known)
        if unknown:
            problems.append(f"[worklist] disclose_institutions: {unknown} are not known institution codes "
                            f"({codes})")
        langs = {"language": w.language, **{f"language_per_institution.{k}": v
                                            for k, v in w.language_per_institution.items()}}
        for where, lang in langs.items():
            if lang not in LANGUAGES:
                problems.append(f"[worklist] {where} = {lang!r}: use one of {', '.join(LANGUAGES)}")
        bands = w.risk_bands
        if (len(bands) != 2 or any(not _is_number(b) for b in bands) or list(bands) != sorted(set(bands))
                or any(not 0 < b < 1 for b in bands)):
            problems.append(f"[worklist] risk_bands {bands}: two strictly increasing probabilities between 0 "
                            "and 1 (low < first <= medium < second <= high), e.g. [0.10, 0.25]")
        band_names = ("low", "medium", "high")
        for where, b in {"min_band": w.min_band, **{f"min_band_per_institution.{k}": v
                                                    for k, v in w.min_band_per_institution.items()}}.items():
            if b not in band_names:
                problems.append(f"[worklist] {where} = {b!r}: use one of {', '.join(band_names)}")
        unknown = sorted(set(w.min_band_per_institution) - known)
        if unknown:
            problems.append(f"[worklist] min_band_per_institution: {unknown} are not known institution codes ({codes})")
        if w.rank_by not in RANK_BY:
            problems.append(f"[worklist] rank_by = {w.rank_by!r}: use one of {', '.join(RANK_BY)}")
        elif w.rank_by != "risk" and not w.benefit_model:
            problems.append(f"[worklist] rank_by = {w.rank_by!r} needs benefit_model, the file that "
                            "`iizrisk policy --save-model FILE` writes with its offline evaluation; or "
                            "set rank_by = \"risk\"")
        problems += _review_problems(self.reviews)
        problems += self._overlap_problems()
        if not 1 <= o.history_keep_days <= MAX_DAYS:
            problems.append(f"[output] history_keep_days must be from 1 (tonight's history is always kept) to "
                            f"{MAX_DAYS:,} days")
        try:
            mode = file_mode(o.mode)
        except ValueError:
            problems.append(f"[output] mode = {o.mode!r}: an octal permission such as '0640'")
        else:
            if mode & 0o007:
                problems.append(f"[output] mode = {o.mode!r} lets every user of the machine read or write "
                                "pseudonyms and risks; use '0640' (group may read) or '0600'")
            if not mode & 0o600 == 0o600:
                problems.append(f"[output] mode = {o.mode!r}: the owner must be able to read and write")
        if not 1 <= self.privacy.min_cell_size <= MAX_COUNT:
            problems.append(f"[privacy] min_cell_size must be a whole number from 1 to {MAX_COUNT:,}")
        problems += _protected_attribute_problems(self.privacy)
        problems += _fairness_problems(self.privacy)
        if h.min_persons_scored < 1:
            problems.append("[health] min_persons_scored must be >= 1 (a run that scores nobody never passes)")
        for name in ("max_row_drop_percent", "max_quarantine_percent"):
            if not 0 <= getattr(h, name) <= 100:
                problems.append(f"[health] {name} must be between 0 and 100")
        for name in ("max_export_age_days", "max_as_of_after_data_days"):
            if not 0 <= getattr(h, name) <= MAX_DAYS:
                problems.append(f"[health] {name} must be between 0 and {MAX_DAYS:,} days")
        m = self.monitoring
        for name in ("feature_psi", "score_psi", "band_share_change", "min_list_jaccard", "precision_gap", "max_ece"):
            v = getattr(m, name)
            if not (0 <= v <= (1 if name in {"band_share_change", "min_list_jaccard", "precision_gap", "max_ece"}
                               else 10)):
                problems.append(f"[monitoring] {name} = {v!r}: "
                                + ("a share between 0 and 1" if name != "feature_psi" and name != "score_psi"
                                   else "a stability index between 0 and 10 (0.1 moderate, 0.25 large)"))
        if not 7 <= m.flow_window_days <= 366:
            problems.append(f"[monitoring] flow_window_days = {m.flow_window_days!r}: days from 7 to 366")
        if not 3 <= m.flow_baseline_windows <= 60:
            problems.append(f"[monitoring] flow_baseline_windows = {m.flow_baseline_windows!r}: "
                            "from 3 to 60 windows (a baseline needs a spread)")
        if not m.flow_z > 0:
            problems.append(f"[monitoring] flow_z = {m.flow_z!r}: standard errors above 0 (4 by default)")
        if not 0 <= m.flow_min_change <= 1:
            problems.append(f"[monitoring] flow_min_change = {m.flow_min_change!r}: a share between 0 and 1")
        if not m.flow_min_count >= 0:
            problems.append(f"[monitoring] flow_min_count = {m.flow_min_count!r}: a count of 0 or more")
        if any(c.isspace() for c in self.dask.scheduler):
            problems.append(f"[dask] scheduler = {self.dask.scheduler!r}: an address without spaces, "
                            "e.g. tcp://host:8786 (empty: a LocalCluster)")
        if not 1 <= self.dask.workers <= 1024:
            problems.append(f"[dask] workers = {self.dask.workers!r}: from 1 to 1024 worker processes")
        if problems:
            raise ConfigError(f"{origin}: " + "; ".join(problems))


def _not_a_config_file(path: Path, mode: int) -> OperatingSystemError:
    return OperatingSystemError(f"configuration file {path} is {file_kind(mode)}, not a regular file; give the path "
                                "of the TOML settings file (reading anything else could block or never end)")


def _read_config_text(path: Path) -> str:
    """The text of a settings file: a regular file only, never blocking on a FIFO or a device.

    A missing file is a :class:`ConfigError` (exit 2); a folder, a FIFO, a device or a socket is the machine's
    state, an :class:`OperatingSystemError` (exit 6, as a folder gave before); it is opened without blocking
    (``O_NONBLOCK``) and checked again once open, in case it was replaced in between.
    """
    try:
        data = read_regular(path, lambda mode: _not_a_config_file(path, mode))[0]
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    try:  # universal newlines, as text mode reads them
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not UTF-8 text") from exc


def _leaves(value: Any, where: str, top: bool = True):
    """``(where, value)`` for every leaf of a TOML value (lists and tables walked), and ``(where, name)`` for
    the names of its tables' keys: ``where`` reads ``[section] key``, then ``.sub`` and ``[i]`` below it."""
    if isinstance(value, dict | types.MappingProxyType):
        for k, v in value.items():
            yield f"a setting name in {where}", str(k)
            yield from _leaves(v, f"{where} {k}" if top else f"{where}.{k}", False)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{where}[{i}]", False)
    else:
        yield where, value


def _strings(value: Any, where: str):
    """``(where, text)`` for every string of a TOML value: the values, and the names of tables' keys."""
    return [(w, v) for w, v in _leaves(value, where) if isinstance(v, str)]


def refuse_ahv_numbers(data: dict[str, Any], origin: str) -> None:
    """Refuse (:class:`ConfigError`, exit 2) settings holding an AHV number in any spelling, in any value or
    name: a deployment name or a reference would be copied into reports (dpia, selection) and messages.

    Every string is scanned in one call of :func:`iizrisk.pseudonym.looks_like_ahv`; the message names
    the settings, never the values.
    """
    from .pseudonym import looks_like_ahv

    found = []
    for section, value in data.items():
        where = f"[{section}]"
        if section == "sources" and isinstance(value, list):
            found += [pair for i, v in enumerate(value) for pair in _strings(v, f"[[sources]] #{i + 1}")]
        else:
            found += [("a section name", str(section)), *_strings(value, where)]
    if not found:
        return
    hits = looks_like_ahv([text for _, text in found])
    if hits.any():
        names = list(dict.fromkeys(where for (where, _), hit in zip(found, hits, strict=True) if hit))
        raise ConfigError(f"{origin}: {', '.join(names)} hold(s) a value shaped like an AHV number (withheld here); "
                          "settings are copied into reports and messages: remove the number (a path: rename "
                          "the file or folder)")


def _protected_attribute_problems(p: PrivacySettings) -> list[str]:
    """Unknown, repeated or no protected attributes: each would make the nightly fairness check skip an
    attribute (or all of them) without a word. An empty list is refused, not an opt-out: the check is a
    safeguard that no setting switches off (leave the key out for the default attributes)."""
    attrs = list(p.protected_attributes)
    out = []
    unknown = [a for a in attrs if a not in PROTECTED_ATTRIBUTES]
    if unknown:
        out.append(f"[privacy] protected_attributes: {unknown} are not attributes the fairness check knows (it "
                   f"would skip them); use {', '.join(PROTECTED_ATTRIBUTES)} (age as age_band)")
    if not attrs:
        out.append(f"[privacy] protected_attributes = []: name at least one of {', '.join(PROTECTED_ATTRIBUTES)}; "
                   "the nightly fairness check cannot be switched off (leave the key out for the default "
                   f"{PrivacySettings().protected_attributes})")
    repeated = sorted({a for a in attrs if attrs.count(a) > 1})
    if repeated:
        out.append(f"[privacy] protected_attributes: {repeated} named more than once; name each once")
    return out


#: Settings naming the deployment, a file, a folder, a key, a group or a pattern: empty (or blank), each would
#: silently mean "none", the configuration's own folder, a pattern no pseudonym matches, or a report naming no
#: deployment. (section, key, what, optional)
_NAMING_TEXTS = (
    ("deployment", "name", "the deployment's name, which reports, model cards and messages show", False),
    ("deployment", "interventions", "the interventions file (CSV or Parquet)", True),
    ("deployment", "corrections", "the corrections table (CSV or Parquet)", True),
    ("deployment", "pseudonym_pattern", "a regular expression every person_id matches in full", False),
    ("model", "dir", "the model folder", False),
    ("model", "signing_key_file", "the file holding the model signing key", True),
    ("model", "signing_key_env", "the name of the environment variable holding the model signing key", True),
    ("output", "dir", "the folder of the runs", False),
    ("output", "history_dir", "the folder of the history", False),
    ("output", "group", "the group owning runs and history", True),
)
#: The same for each ``[[sources]]`` table (a separator may be a space or a tab: only "" is refused there).
_SOURCE_TEXTS = (("name", "a name", False), ("path", "a file, a glob or a folder", False),
                 ("encoding", "an encoding such as 'cp1252'", True), ("separator", "a separator such as ';'", True))


def _blank_problems(s: Settings) -> list[str]:
    """Empty or blank texts where a file, folder, key, group or pattern is named (refused when read: later
    they would mean "none", the configuration's folder or "no pseudonym is valid", with a wrong fix)."""
    out = []

    def blank(key: str, value: str | None) -> bool:
        return value is not None and (value == "" if key == "separator" else not value.strip())

    for section, key, what, optional in _NAMING_TEXTS:
        value = getattr(getattr(s, section), key)
        if blank(key, value):
            default = getattr(type(getattr(s, section))(), key)
            out.append(f"[{section}] {key} = {value!r} is {_empty(value)}: give {what}, or leave the key out"
                       + (" (none)" if optional else f" (default {default!r})"))
    for i, src in enumerate(s.sources):
        label = src.name if src.name.strip() else f"#{i + 1}"
        for key, what, optional in _SOURCE_TEXTS:
            value = getattr(src, key)
            if blank(key, value):
                out.append(f"[[sources]] {label}: {key} = {value!r} is {_empty(value)}: give {what}"
                           + (", or leave the key out (detected from the file)" if optional else ""))
    bm = s.worklist.benefit_model
    if bm and not bm.strip():  # "" is the annotated example's "none" (rank_by = "risk")
        out.append(f"[worklist] benefit_model = {bm!r} is blank: give the benefit model file, or leave the key out")
    return out


def _empty(value: str) -> str:
    return "empty" if value == "" else "blank"


def _non_finite_problems(s: Settings) -> list[str]:
    """Infinite or NaN numbers (TOML has ``inf`` and ``nan``): a threshold that never or always fires."""
    out = []
    for f in dataclasses.fields(s):
        section = getattr(s, f.name)
        if not isinstance(section, _Section):
            continue  # the sources hold no numbers
        defaults = type(section)()
        for g in dataclasses.fields(section):
            for where, v in _leaves(getattr(section, g.name), f"[{f.name}] {g.name}", top=False):
                if isinstance(v, float) and not math.isfinite(v):
                    out.append(f"{where} = {v!r} is not a finite number: give a finite one (default "
                               f"{getattr(defaults, g.name)!r})")
    return out


def _fairness_problems(p: PrivacySettings) -> list[str]:
    """The fairness rule's settings, checked by the rule itself (one definition of what is valid)."""
    from .fairness_rule import FairnessRule

    try:
        FairnessRule(min_ratio=p.fairness_min_ratio, ratio_metrics=tuple(p.fairness_ratio_metrics),
                     max_difference=dict(p.fairness_max_differences))
    except ConfigError as exc:
        return [f"[privacy] fairness_min_ratio / fairness_ratio_metrics / fairness_max_differences: {exc}"]
    return []


def _is_day_format(fmt: object) -> bool:
    """A strftime format that writes a day and reads the same day back (``%Q`` or a stray ``%``: no)."""
    import datetime as dt

    if not isinstance(fmt, str) or not fmt.strip():
        return False
    day = dt.datetime(2024, 11, 23)  # day, month and year all differ: each must be in the format
    try:
        return dt.datetime.strptime(day.strftime(fmt), fmt) == day
    except ValueError:
        return False


def _review_problems(r: ReviewSettings) -> list[str]:
    """What is wrong in ``[reviews]``: unknown or misspelt decisions, non-positive days."""
    out = []
    bad = [d for d in r.decisions if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", d)]
    if bad or not r.decisions or len(set(r.decisions)) != len(r.decisions):
        out.append(f"[reviews] decisions {list(r.decisions)}: distinct codes of lower-case letters, digits and "
                   "'_' (at most 40), at least one")
    for table in ("keep_off_days", "interventions", "summary_decisions"):
        unknown = sorted(set(getattr(r, table)) - set(r.decisions))
        if unknown:
            out.append(f"[reviews] {table}: {unknown} are not in [reviews] decisions; add them there or remove them")
    bad_days = {k: v for k, v in r.keep_off_days.items() if not _is_int(v) or not 1 <= v <= MAX_DAYS}
    if bad_days:
        out.append(f"[reviews] keep_off_days: {bad_days}: days are whole numbers from 1 to {MAX_DAYS:,}")
    bad_types = {k: v for k, v in r.interventions.items() if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", v)}
    if bad_types:
        out.append(f"[reviews] interventions: {bad_types}: intervention types are lower-case codes such as "
                   "'joint_assessment'")
    return out


def file_mode(text: str | int) -> int:
    """The permission bits of ``[output] mode`` (``"0640"`` -> ``0o640``).

    >>> oct(file_mode("0640")), oct(dir_mode(file_mode("0640")))
    ('0o640', '0o750')
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and re.fullmatch(r"0?o?[0-7]{3}", text.strip()):
        value = int(text.strip().lstrip("0o") or "0", 8)
    else:
        raise ValueError(f"not an octal mode: {text!r}")
    if not 0 <= value <= 0o777:
        raise ValueError(f"not a permission mode: {text!r}")
    return value


def dir_mode(mode: int) -> int:
    """Folders get the search bit wherever files get the read bit."""
    return mode | ((mode & 0o444) >> 2)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _build(klass, data: Any, origin: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a table, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(klass)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{origin}: unknown setting(s) {unknown}; known: {sorted(names)}")
    hints = typing.get_type_hints(klass)
    bad = [f"{k} = {v!r} (expected {_type_name(hints[k])})" for k, v in data.items()
           if not _matches(v, hints[k])]
    if bad:
        raise ConfigError(f"{origin}: wrong type: " + "; ".join(bad))
    try:
        return klass(**data)
    except TypeError as exc:
        raise ConfigError(f"{origin}: {exc}") from exc


def _matches(value: Any, hint: Any) -> bool:
    """Whether a TOML value fits a field's type hint (bool is not a number here)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return _is_int(value)
    if hint is float:
        return _is_number(value)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    return True


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")
