"""A data-protection impact assessment (DPIA) draft for a deployment (nDSG Art. 22).

Profiling with a high risk (Art. 5 lit. g and Art. 22 nDSG) needs a DPIA before
the processing starts. ``iizrisk dpia CONFIG --out DIR`` (and :func:`dpia_draft`)
writes a draft that follows the structure the FDPIC (EDÖB) describes for
Art. 22 (description of the processing, assessment of the risks to the
persons concerned, the measures against them), filled in from what the
software knows:

1. description of the processing (controller, contact, software, the nightly run);
2. data categories and sources (``[[sources]]``, the data contract
   :func:`iizrisk.schema.load_schema`, interventions);
3. purpose (the model card's intended use and the uses it excludes);
4. recipients per institution, with the disclosure policy (``[worklist]``);
5. retention (``[output] history_keep_days``, the features' look-back);
6. profiling logic (the model card: model, outcome, inputs related to
   protected grounds; bands and capacity; the fairness rule of ``[privacy]``);
7. necessity and proportionality;
8. risks to persons;
9. the measures the software takes, each linked to the test that proves it
   (:data:`MEASURES`: test file and test name);
10. open points the office must fill in.

Whatever the software cannot know (the legal basis, the assessment of each
risk's likelihood and severity, the hosting's technical measures, the
data-protection officer's opinion, signatures) is a required field left open
and marked visibly (:data:`OPEN_MARK`); every open field is listed again in
section 10. ``tests/test_dpia.py`` checks that every section is present, that
no required field is empty without the mark, and that every linked test exists.

Examples
--------
>>> from iizrisk.config import Settings
>>> d = dpia_draft(Settings(), language="en")
>>> [s.key for s in d.sections][:3]
['description', 'data', 'purpose']
>>> any(f.open for s in d.sections for f in s.fields)
True
"""

from __future__ import annotations

import datetime as dt
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._html import page
from ._html import table as html_table
from ._texts import check_language, load_locale, swiss_number, text, text_items

__all__ = ["DpiaDraft", "DpiaSection", "DpiaField", "dpia_draft", "MEASURES", "RISKS", "SECTIONS", "OPEN_MARK",
           "DPIA_FILES"]

#: the sections, in order (keys of ``dpia.sections.*``)
SECTIONS = ("description", "data", "purpose", "recipients", "retention", "logic", "necessity", "risks",
            "measures", "open_points")

#: the risks to persons considered (keys of ``dpia.risks.*``)
RISKS = ("disclosure", "exchange", "automated_decision", "discrimination", "stale_or_wrong_data", "opacity",
         "function_creep", "tampering")

#: measure key -> (risks it addresses, the test that proves it: ``file::name``)
MEASURES: dict[str, tuple[tuple[str, ...], str]] = {
    "pseudonyms": (("disclosure",), "tests/test_pseudonym.py::test_hmac_matches_stdlib"),
    "raw_identifiers_refused": (("disclosure",), "tests/test_privacy.py::test_run_refuses_raw_identifiers_and_shows_none"),
    "free_text_guarded": (("disclosure",), "tests/test_privacy.py::test_ahv_numbers_inside_free_text_reach_no_output"),
    "own_case_ids": (("exchange",), "tests/test_privacy.py::test_each_institution_sees_only_its_own_case_ids"),
    "others_counted": (("exchange",),
                       "tests/test_privacy.py::test_other_institutions_are_a_count_and_named_only_when_disclosed"),
    "no_pseudonyms_published": (("disclosure",), "tests/test_privacy.py::test_published_worklists_hold_no_pseudonyms"),
    "case_lookup": (("exchange",), "tests/test_case.py::test_another_institutions_case_is_not_found_and_not_named"),
    "small_cells": (("disclosure",), "tests/test_suppression.py::test_crosstabs_with_margins_are_safe"),
    "hint_not_decision": (("automated_decision", "function_creep"), "tests/test_batch.py::test_run_publishes_worklists"),
    "excluded_uses": (("function_creep", "opacity"), "tests/test_modelcard.py::test_card_files_and_content"),
    "reviews_recorded": (("automated_decision",), "tests/test_reviews.py::test_three_nights_with_reviews_between_them"),
    "oversight": (("automated_decision",), "tests/test_oversight.py::test_oversight_equals_the_reference"),
    "no_protected_inputs": (("discrimination",), "tests/test_fairness.py::test_default_model_uses_no_protected_attribute"),
    "related_inputs": (("discrimination", "opacity"),
                       "tests/test_modelcard.py::test_the_card_names_every_input_related_to_a_protected_ground"),
    "ratio_rule": (("discrimination",), "tests/test_fairness.py::test_the_ratio_rule_flags_the_demos_third_country_ratio"),
    "proxies": (("discrimination",), "tests/test_fairness.py::test_proxy_analysis_finds_nationality_planted_into_a_feature"),
    "point_in_time": (("stale_or_wrong_data",), "tests/test_features.py::test_nothing_after_as_of_changes_a_feature"),
    "features_expire": (("stale_or_wrong_data",), "tests/test_features.py::test_every_feature_looks_back_at_most_the_maximum"),
    "retention": (("stale_or_wrong_data", "disclosure"), "tests/test_health.py::test_retention_never_removes_tonight_or_newer"),
    "information": (("opacity",), "tests/test_information.py::test_nothing_of_anyone_else_reaches_the_document"),
    "corrections": (("stale_or_wrong_data",), "tests/test_corrections.py::test_round_trip_contest_apply_rescore_conflict"),
    "signed_model": (("tampering",), "tests/test_model_files.py::test_tampering_with_one_byte_is_refused"),
    "permissions": (("disclosure",), "tests/test_publish.py::test_permissions_never_world_readable"),
}

#: what marks a required field the office must fill in (visible in every format)
OPEN_MARK = "[OPEN]"

#: file names written by :meth:`DpiaDraft.save`, by kind
DPIA_FILES = {"md": "dpia.md", "html": "dpia.html", "json": "dpia.json"}


@dataclass
class DpiaField:
    """One field of a section: a label and its value, or open (to be filled in by the office)."""

    label: str
    value: Any = None
    #: what the office must fill in, when the software cannot (the field is then open)
    todo: str | None = None

    @property
    def open(self) -> bool:
        return self.todo is not None


@dataclass
class DpiaSection:
    """One section: a title, paragraphs, fields and optional tables (header, rows)."""

    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    fields: list[DpiaField] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[Any]]]] = field(default_factory=list)


@dataclass
class DpiaDraft:
    """The DPIA draft of one deployment (see the module documentation)."""

    deployment: str
    language: str
    created: dt.date
    sections: list[DpiaSection]

    def open_fields(self) -> list[tuple[str, DpiaField]]:
        """Every open field with the title of its section."""
        return [(s.title, f) for s in self.sections for f in s.fields if f.open]

    def _value(self, f: DpiaField) -> str:
        if f.open:
            return f"**{OPEN_MARK}** {f.todo}"
        return _text_of(f.value, self.language)

    def to_markdown(self) -> str:
        lang = self.language
        md = [f"# {_t('title', lang)}: {self.deployment}", "",
              f"_{_t('draft_note', lang, date=_date(self.created, lang))}_", ""]
        for i, s in enumerate(self.sections, start=1):
            md += [f"## {i}. {s.title}", ""]
            for p in s.paragraphs:
                md += [p, ""]
            if s.fields:
                md += [f"- **{f.label}**: {self._value(f)}" for f in s.fields] + [""]
            for header, rows in s.tables:
                md += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                md += ["| " + " | ".join(_text_of(c, lang).replace("|", "/") for c in r) + " |" for r in rows]
                md += [""]
        return "\n".join(md)

    def to_html(self) -> str:
        lang, e = self.language, html.escape
        out = [f"<h1>{e(_t('title', lang))}: {e(self.deployment)}</h1>",
               f"<p><em>{e(_t('draft_note', lang, date=_date(self.created, lang)))}</em></p>"]
        for i, s in enumerate(self.sections, start=1):
            out.append(f"<h2>{i}. {e(s.title)}</h2>")
            out += [f"<p>{e(p)}</p>" for p in s.paragraphs]
            if s.fields:
                out.append("<ul>" + "".join(
                    f"<li><strong>{e(f.label)}</strong>: "
                    + (f"<span class=\"open\">{e(OPEN_MARK)}</span> {e(f.todo or '')}" if f.open
                       else e(_text_of(f.value, lang))) + "</li>" for f in s.fields) + "</ul>")
            for header, rows in s.tables:
                out.append(html_table(header, [[_text_of(c, lang) for c in r] for r in rows]))
        return page(_t("title", lang), "\n".join(out), lang)

    def to_dict(self) -> dict[str, Any]:
        return {"format": "iizrisk-dpia/1", "deployment": self.deployment, "language": self.language,
                "created": self.created.isoformat(), "open_mark": OPEN_MARK,
                "sections": [{"key": s.key, "title": s.title, "paragraphs": s.paragraphs,
                              "fields": [{"label": f.label, "value": None if f.open else _text_of(f.value, self.language),
                                          "open": f.open, "todo": f.todo} for f in s.fields],
                              "tables": [{"header": h, "rows": [[_text_of(c, self.language) for c in r] for r in rows]}
                                         for h, rows in s.tables]} for s in self.sections]}

    def _repr_html_(self) -> str:
        return self.to_html()

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write :data:`DPIA_FILES` into ``out_dir``, all or none; return their paths by kind.

        The files are written together (:func:`iizrisk.store.write_files_together`): when one cannot
        be written, ``out_dir`` is left as it was (no draft in part, no earlier draft half replaced).
        """
        from .store import write_files_together, write_json_atomic, write_text_atomic

        def write(tmp: Path) -> list[Path]:
            return [write_text_atomic(self.to_markdown(), tmp / DPIA_FILES["md"]),
                    write_text_atomic(self.to_html(), tmp / DPIA_FILES["html"]),
                    write_json_atomic(self.to_dict(), tmp / DPIA_FILES["json"])]

        written = write_files_together(out_dir, write, label="dpia")
        return dict(zip(("md", "html", "json"), written, strict=True))


def _t(key: str, lang: str, **fields: Any) -> str:
    return text(f"dpia.{key}", lang, **fields)


def _word(lang: str, table: str, code: str) -> str:
    """A code (metric, attribute, relation) in words, the code itself when the catalogue has none."""
    return load_locale(lang)["dpia"][table].get(code, code)


def _date(d, lang: str) -> str:
    return d.isoformat() if lang == "en" else d.strftime("%d.%m.%Y")


def _text_of(v: Any, lang: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return text(f"table.{'yes' if v else 'no'}", lang)
    if isinstance(v, int):
        return swiss_number(v, lang)
    if isinstance(v, list | tuple):
        return ", ".join(_text_of(x, lang) for x in v) if v else text("info.none", lang)
    return str(v)


# --------------------------------------------------------------------------- building
def dpia_draft(settings, *, language: str | None = None, today=None) -> DpiaDraft:
    """The DPIA draft of a deployment, from its configuration, schemas, model card and fairness rule.

    Parameters
    ----------
    settings : Settings or path to the deployment TOML
    language : {"de", "fr", "it", "en"}, optional
        Default: the deployment's ``[worklist] language`` (the office's).
    today : date, optional
        The draft's date (default today).
    """
    from .config import Settings

    settings = (settings if isinstance(settings, Settings) else Settings.load(settings)).resolved()
    lang = language or settings.worklist.language
    check_language(lang)
    manifest, card = _card(settings, lang)
    created = today or dt.date.today()
    sections = [_description(settings, lang, manifest), _data(settings, lang), _purpose(settings, lang, card),
                _recipients(settings, lang), _retention(settings, lang, manifest), _logic(settings, lang, card),
                _necessity(lang), _risks(lang), _measures(settings, lang)]
    sections.append(_open_points(lang, sections))
    return DpiaDraft(deployment=settings.deployment.name, language=lang, created=created, sections=sections)


def _open(lang: str, key: str) -> str:
    return _t(f"todo.{key}", lang)


def _title(lang: str, key: str) -> str:
    return _t(f"sections.{key}", lang)


def _card(settings, lang: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    from .errors import ModelError
    from .model import read_manifest
    from .modelcard import ModelCard

    directory = settings.resolve(settings.model.dir)
    try:
        manifest = read_manifest(directory)
    except (ModelError, OSError):
        if os.path.lexists(directory / "manifest.json"):  # a damaged model read as none: "train a model" (exit 0)
            raise
        return {}, None  # no model yet: its fields stay [OPEN]
    return manifest, ModelCard(manifest, language=lang,
                               protected_attributes=tuple(settings.privacy.protected_attributes)).to_dict()


def _description(settings, lang: str, manifest: dict[str, Any]) -> DpiaSection:
    from . import __version__

    d = settings.deployment
    named = d.name != type(d)().name
    fields = [
        DpiaField(_t("f.controller", lang), d.name if named else None, None if named else _open(lang, "controller")),
        DpiaField(_t("f.contact", lang), d.contact, None if d.contact else _open(lang, "contact")),
        DpiaField(_t("f.dpo", lang), None, _open(lang, "dpo")),
        DpiaField(_t("f.software", lang), f"iizrisk {__version__}"),
        DpiaField(_t("f.model", lang), f"{manifest.get('model')} ({manifest.get('created')})" if manifest else None,
                  None if manifest else _open(lang, "model")),
        DpiaField(_t("f.start", lang), None, _open(lang, "start")),
    ]
    return DpiaSection("description", _title(lang, "description"), list(text_items("dpia.description_text", lang)),
                       fields)


def _data(settings, lang: str) -> DpiaSection:
    from .schema import load_schema
    from .tables import header

    schema = load_schema("spells")
    used = set()
    for s in settings.sources:
        used |= set(s.columns.values())
    own = {**load_locale(lang)["dpia"]["columns"], **load_locale(lang)["info"]["columns"]}
    rows = [[f.name, header(f.name, lang) if header(f.name, lang) != f.name else own.get(f.name, ""),
             text("table.yes" if f.required else "table.no", lang),
             text("table.yes" if f.protected else "table.no", lang)] for f in schema.fields]
    src_rows = [[s.name, ", ".join(s.allowed_institutions or settings.institutions), s.format or Path(s.path).suffix[1:]]
                for s in settings.sources]
    paragraphs = list(text_items("dpia.data_text", lang))
    tables = [([_t("h.column", lang), _t("h.name", lang), _t("h.required", lang), _t("h.protected", lang)], rows)]
    fields = [DpiaField(_t("f.sources", lang), len(settings.sources) or None,
                        None if settings.sources else _open(lang, "sources")),
              DpiaField(_t("f.interventions", lang), settings.deployment.interventions is not None),
              DpiaField(_t("f.sensitive", lang), None, _open(lang, "sensitive"))]
    if src_rows:
        tables.insert(0, ([_t("h.source", lang), _t("h.institutions", lang), _t("h.format", lang)], src_rows))
    return DpiaSection("data", _title(lang, "data"), paragraphs, fields, tables)


def _purpose(settings, lang: str, card: dict[str, Any] | None) -> DpiaSection:
    paragraphs = [text("card.intended_text", lang)]
    name, horizon = ((card["outcome"]["name"], card["outcome"]["horizon_months"]) if card
                     else (settings.model.outcome, settings.model.horizon_months))
    outcome = load_locale(lang)["info"]["outcomes"].get(str(name), str(name))
    fields = [DpiaField(_t("f.outcome", lang), f"{outcome} ({horizon} {text('card.months', lang)})"),
              DpiaField(_t("f.not_for", lang), list(text_items("card.not_for_items", lang))),
              DpiaField(_t("f.legal_basis", lang), None, _open(lang, "legal_basis"))]
    return DpiaSection("purpose", _title(lang, "purpose"), paragraphs, fields)


def _recipients(settings, lang: str) -> DpiaSection:
    w = settings.worklist
    codes = sorted({c for s in settings.sources for c in (s.allowed_institutions or settings.institutions)})
    disclosed = list(w.disclose_institutions)
    bands = load_locale(lang)["risk_bands"]
    rows = [[c, w.capacity_per_institution.get(c, w.capacity), w.language_per_institution.get(c, w.language),
             bands[w.min_band_per_institution.get(c, w.min_band)], c,
             ", ".join(x for x in disclosed if x != c) or _t("none_named", lang)] for c in codes]
    policy = (_t("policy_named", lang, names=", ".join(disclosed)) if disclosed else _t("policy_count", lang))
    return DpiaSection("recipients", _title(lang, "recipients"), [_t("recipients_text", lang), policy],
                       [DpiaField(_t("f.roles", lang), None, _open(lang, "roles"))],
                       [([_t("h.institution", lang), _t("h.capacity", lang), _t("h.language", lang),
                          _t("h.min_band", lang), _t("h.case_ids", lang), _t("h.named", lang)], rows)])


def _retention(settings, lang: str, manifest: dict[str, Any]) -> DpiaSection:
    lookback = (manifest.get("feature_params") or {}).get("max_lookback_months")
    fields = [DpiaField(_t("f.history_days", lang), settings.output.history_keep_days),
              DpiaField(_t("f.lookback", lang), lookback, None if lookback else _open(lang, "model")),
              DpiaField(_t("f.exports_retention", lang), None, _open(lang, "exports_retention")),
              DpiaField(_t("f.runs_retention", lang), None, _open(lang, "runs_retention"))]
    return DpiaSection("retention", _title(lang, "retention"), [_t("retention_text", lang)], fields)


def _logic(settings, lang: str, card: dict[str, Any] | None) -> DpiaSection:
    w, p = settings.worklist, settings.privacy
    rule = _t("rule_text", lang, ratio=p.fairness_min_ratio, upper=round(1 / p.fairness_min_ratio, 4),
              metrics=", ".join(_word(lang, "metrics", m) for m in p.fairness_ratio_metrics),
              differences=", ".join(f"{_word(lang, 'metrics', k)} ≤ {v}" for k, v in p.fairness_max_differences.items())
              or "-")
    kind = load_locale(lang)["card"]["kinds"].get(str(card["model"]["kind"]), card["model"]["kind"]) if card else None
    fields = [DpiaField(_t("f.model_kind", lang), kind,
                        None if card else _open(lang, "model")),
              DpiaField(_t("f.n_inputs", lang), card["model"]["n_features"] if card else None,
                        None if card else _open(lang, "model")),
              DpiaField(_t("f.related", lang),
                        [f"{n} ({', '.join(_word(lang, 'attributes', a) for a in r['attribute'].split(', '))}: "
                         f"{_word(lang, 'relations', r['relation'])})"
                         for n, r in card["protected_attributes"]["related_inputs"].items()] if card else None,
                        None if card else _open(lang, "model")),
              DpiaField(_t("f.bands", lang), f"{w.risk_bands[0]:g} / {w.risk_bands[1]:g}"),
              DpiaField(_t("f.audited", lang), [_word(lang, "attributes", a) for a in p.protected_attributes]),
              DpiaField(_t("f.rule", lang), rule),
              DpiaField(_t("f.audit_result", lang), None, _open(lang, "audit_result"))]
    return DpiaSection("logic", _title(lang, "logic"), [_t("logic_text", lang)], fields)


def _necessity(lang: str) -> DpiaSection:
    return DpiaSection("necessity", _title(lang, "necessity"), list(text_items("dpia.necessity_text", lang)),
                       [DpiaField(_t("f.alternatives", lang), None, _open(lang, "alternatives")),
                        DpiaField(_t("f.consent", lang), None, _open(lang, "consent"))])


def _risks(lang: str) -> DpiaSection:
    rows = []
    for r in RISKS:
        measures = [m for m, (risks, _) in MEASURES.items() if r in risks]
        rows.append([_t(f"risks.{r}", lang), ", ".join(_t(f"measures.{m}", lang).split(":")[0].strip() for m in measures),
                     f"{OPEN_MARK} {_open(lang, 'likelihood')}", f"{OPEN_MARK} {_open(lang, 'severity')}"])
    fields = [DpiaField(_t("f.residual", lang), None, _open(lang, "residual"))]
    return DpiaSection("risks", _title(lang, "risks"), [_t("risks_text", lang)], fields,
                       [([_t("h.risk", lang), _t("h.measures", lang), _t("h.likelihood", lang),
                          _t("h.severity", lang)], rows)])


def _measures(settings, lang: str) -> DpiaSection:
    rows = [[_t(f"measures.{m}", lang), ", ".join(_t(f"risks.{r}", lang).split(":")[0].strip() for r in risks), test]
            for m, (risks, test) in MEASURES.items()]
    tables = [([_t("h.measure", lang), _t("h.risks", lang), _t("h.test", lang)], rows)]
    oversight = _oversight(settings, lang)
    fields = [DpiaField(_t("f.toms", lang), None, _open(lang, "toms")),
              DpiaField(_t("f.oversight", lang), _t("oversight_text", lang) if oversight else None,
                        None if oversight else _open(lang, "oversight"))]
    if oversight:
        tables.append(oversight)
    return DpiaSection("measures", _title(lang, "measures"), [_t("measures_text", lang)], fields, tables)


#: the oversight columns the draft shows (iizrisk.oversight; suppressed there)
_OVERSIGHT_COLUMNS = ("institution", "month", "listed", "reviewed", "overrides", "agreement_share")


def _oversight(settings, lang: str) -> tuple[list[str], list[list[Any]]] | None:
    """The last three months of oversight figures in the history store (cells suppressed), or None."""
    from .oversight import oversight_of
    from .tables import header

    table = oversight_of(settings).summary
    if not len(table) or "reviewed" not in table.columns or not table["reviewed"].fillna(0).astype(float).sum():
        return None
    months = sorted(set(table["month"].astype(str)))[-3:]
    table = table[table["month"].astype(str).isin(months)]
    cols = [c for c in _OVERSIGHT_COLUMNS if c in table.columns]
    rows = [[None if pd.isna(v) else (int(v) if isinstance(v, int | np.integer) else v) for v in r]
            for r in table[cols].itertuples(index=False, name=None)]
    return [header(c, lang) for c in cols], rows


def _open_points(lang: str, sections: list[DpiaSection]) -> DpiaSection:
    rows = [[s.title, f.label, f.todo] for s in sections for f in s.fields if f.open]
    fields = [DpiaField(_t("f.fdpic", lang), None, _open(lang, "fdpic")),
              DpiaField(_t("f.signature", lang), None, _open(lang, "signature"))]
    rows += [[_title(lang, "open_points"), f.label, f.todo] for f in fields]
    return DpiaSection("open_points", _title(lang, "open_points"), [_t("open_text", lang, mark=OPEN_MARK)], fields,
                       [([_t("h.section", lang), _t("h.field", lang), _t("h.todo", lang)], rows)])
