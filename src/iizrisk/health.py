"""Run-health gates: a nightly run that looks wrong publishes nothing.

A run can succeed technically and still be wrong: an export arrived empty,
half of an institution's rows went missing, most of a source was
quarantined, an export is weeks old, or a worklist came out empty although
its institution has open cases. Each gate of ``[health]`` in the deployment
file (:class:`~iizrisk.config.HealthSettings`) catches one of these. A run
that fails a gate exits 1, names the source and the fix, and publishes
nothing, unless the operator forces it with a reason
(``iizrisk run CONFIG --force --reason "..."``), which the manifest records.

``iizrisk validate CONFIG`` applies the same gates, so it answers "would
tonight's run publish?" with the same exit code.

Examples
--------
>>> from iizrisk.config import HealthSettings
>>> facts = RunFacts(as_of="2024-06-30", persons_scored=0, rows_per_institution={"ALV": 0},
...                  expected_institutions={"ALV": ["alv"]})
>>> report = check_health(facts, HealthSettings())
>>> report.ok, [f.gate for f in report.failures]
(False, ['min_persons_scored', 'institution_rows'])
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from .config import HealthSettings
from .errors import ValidationError

__all__ = ["GateFailure", "HealthReport", "HealthError", "RunFacts", "check_health"]


@dataclass(frozen=True)
class GateFailure:
    """One failed gate: which, about what, what was seen, and what would fix it."""

    gate: str
    subject: str
    problem: str
    fix: str

    def to_text(self) -> str:
        return f"[health] {self.gate}: {self.subject}: {self.problem}; fix: {self.fix}"


@dataclass
class HealthReport:
    """The verdict of every gate on one run.

    ``outcome`` says what became of the run, for :meth:`to_text`: ``"refused"`` (nothing is published; an
    operator may force it), ``"forced"`` (published anyway with ``--force``) or ``"empty"`` (nobody was
    scored: nothing to publish, not even with ``--force``).
    """

    failures: list[GateFailure] = field(default_factory=list)
    outcome: str = "refused"

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_text(self) -> str:
        if self.ok:
            return "run health: every gate passed"
        what = {"refused": "nothing is published", "forced": "published anyway with --force",
                "empty": "nothing is published"}[self.outcome]
        lines = [f"run health: {len(self.failures)} gate(s) failed; {what}"]
        lines += ["  " + f.to_text() for f in self.failures]
        if self.outcome == "refused":
            lines.append("  an operator who has checked the cause may publish anyway with "
                         "`iizrisk run CONFIG --force --reason \"...\"` (the reason goes into the manifest)")
        return "\n".join(lines)

    def to_records(self) -> list[dict[str, str]]:
        return [{"gate": f.gate, "subject": f.subject, "problem": f.problem, "fix": f.fix}
                for f in self.failures]

    def _repr_html_(self) -> str:
        if self.ok:
            return "<b>Run health</b>: every gate passed"
        return "<b>Run health</b>: " + pd.DataFrame(self.to_records()).to_html(index=False)


class HealthError(ValidationError):
    """A run failed a health gate (exit 1); ``report`` holds every failure."""


@dataclass
class RunFacts:
    """What a run saw, reduced to the counts the gates judge (no person-level data)."""

    as_of: dt.date | str
    persons_scored: int
    rows_per_institution: dict[str, int] = field(default_factory=dict)
    #: institution -> the sources configured to deliver it
    expected_institutions: dict[str, list[str]] = field(default_factory=dict)
    previous_rows_per_institution: dict[str, int] | None = None
    previous_as_of: dt.date | None = None
    #: source label -> (rows read, rows quarantined)
    quarantine_per_source: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: source -> newest date (start, end or recorded) in its data on or before the as-of date
    newest_date_per_source: dict[str, dt.date | None] = field(default_factory=dict)
    open_cases_per_institution: dict[str, int] = field(default_factory=dict)
    worklist_rows_per_institution: dict[str, int] = field(default_factory=dict)


def check_health(facts: RunFacts, settings: HealthSettings) -> HealthReport:
    """Judge one run's facts against the ``[health]`` gates."""
    t = pd.Timestamp(facts.as_of).date()
    out: list[GateFailure] = []
    if facts.persons_scored < settings.min_persons_scored:
        out.append(GateFailure(
            "min_persons_scored", "the run",
            f"{facts.persons_scored:,} persons scored (at least {settings.min_persons_scored:,} required)",
            "check that every export is complete and covers the as-of date; "
            "`iizrisk validate CONFIG` shows what was read"))
    previous = facts.previous_rows_per_institution or {}
    # the institutions the sources are configured to deliver, and those the last run had rows of
    watched = sorted(set(facts.expected_institutions) | {k for k, v in previous.items() if v})
    for inst in watched:
        sources = facts.expected_institutions.get(inst, [])
        n = facts.rows_per_institution.get(inst, 0)
        where = f"institution {inst}" + (f" (source {', '.join(repr(s) for s in sources)})" if sources else "")
        if n == 0:
            out.append(GateFailure("institution_rows", where, "no accepted rows",
                                   "check that the export arrived and is not empty or all rejected"))
            continue
        prev = previous.get(inst)
        if prev:
            drop = 100.0 * (prev - n) / prev
            if drop > settings.max_row_drop_percent:
                out.append(GateFailure(
                    "max_row_drop_percent", where,
                    f"{n:,} accepted rows against {prev:,} in the run of {facts.previous_as_of}: "
                    f"{drop:.0f} % fewer (at most {settings.max_row_drop_percent:g} % allowed)",
                    "check that the export is complete (a partial or filtered extract?)"))
    for label, (read, quarantined) in sorted(facts.quarantine_per_source.items()):
        if read and 100.0 * quarantined / read > settings.max_quarantine_percent:
            out.append(GateFailure(
                "max_quarantine_percent", f"source {label!r}",
                f"{quarantined:,} of {read:,} rows quarantined ({100.0 * quarantined / read:.1f} %, "
                f"at most {settings.max_quarantine_percent:g} % allowed)",
                "read quarantine reasons with `iizrisk validate CONFIG` and fix the export or its "
                "[[sources]] mapping"))
    for source, newest in sorted(facts.newest_date_per_source.items()):
        if newest is None:  # rows, all after the as-of date: the night would score almost nobody
            out.append(GateFailure(
                "max_export_age_days", f"source {source!r}",
                "no date in its data lies on or before the as-of date: its registrations begin later",
                "give an as-of date within the period the exports cover"))
            continue
        age = (t - newest).days
        if age > settings.max_export_age_days:
            out.append(GateFailure(
                "max_export_age_days", f"source {source!r}",
                f"the newest date in its data is {newest.isoformat()}, {age} days before the as-of date "
                f"(at most {settings.max_export_age_days} allowed)",
                "deliver a current export, or run for an earlier --as-of"))
    if settings.require_worklists:
        for inst, n_open in sorted(facts.open_cases_per_institution.items()):
            if n_open and not facts.worklist_rows_per_institution.get(inst, 0):
                out.append(GateFailure(
                    "require_worklists", f"institution {inst}",
                    f"an empty worklist although {n_open:,} cases are open at the as-of date",
                    "check the exclusions ([worklist] exclude_assessed_months) and the interventions "
                    "file; if an empty list is right tonight, force the run with a reason"))
    return HealthReport(out)
