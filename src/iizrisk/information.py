"""A person's right to information (nDSG Art. 25): everything iizrisk holds about one person.

``iizrisk information-request CONFIG --institution ALV --person PSEUDONYM --out DIR``
(and :func:`information_request`) writes one HTML document, in the person's
language, that an office hands to the person who asked. It holds:

* every **registration** the deployment's exports deliver about the person
  (institution, dates, exit reason) with its **source** (the ``[[sources]]``
  export(s) that deliver that institution's rows), and the recorded
  **interventions** (joint assessments);
* the **flags** at the as-of date (multi-registration, revolving door...);
* every **score** in the history store and every **worklist** the person was
  on, with the date and the **reasons** given with the list (re-worded in the
  person's language from the list's reason codes and the values the
  registrations known on that night give);
* the coordinators' **reviews and decisions**;
* the **corrections** of the person's rows and what became of each
  (:mod:`iizrisk.corrections`);
* the model's **purpose and logic** in plain words, from the model card;
* **retention** (``[output] history_keep_days``, the features' look-back) and
  **whom to contact** (``[deployment] contact``).

Whose request it is
-------------------
The office answering for one institution (``institution``): the document
names every institution that holds a registration of the person (the data
are the person's own; Art. 25 covers them all), but shows case numbers only
of that institution and of those the disclosure policy may name
(``[worklist] disclose_institutions``); another institution's case number is
its own file reference, which the person asks that institution for.

The pseudonym is computed at the office from the AHV number with ``iizrisk
pseudonymise`` and the deployment's key; the AHV number never enters iizrisk
(a value shaped like one is refused, unrepeated). The document never shows
the pseudonym, and nothing of any other person: every table is a filter on
this one pseudonym (``tests/test_information.py`` plants another person's
values and checks their absence).

Examples
--------
>>> from iizrisk.information import information_request  # doctest: +SKIP
>>> doc = information_request("iizrisk.toml", person="3f...", institution="ALV")  # doctest: +SKIP
>>> doc.save("answers/2025-03-01")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._html import page
from ._html import table as html_table
from ._results import OutputTable, ResultMixin
from ._texts import check_language, load_locale, swiss_number, text
from .errors import ConfigError, RawIdentifierError, ValidationError

__all__ = ["InformationDocument", "information_request", "INFORMATION_FILE"]

logger = logging.getLogger("iizrisk")

#: the file :meth:`InformationDocument.save` writes into the output folder
INFORMATION_FILE = "information.html"


def _t(key: str, lang: str, **fields: Any) -> str:
    return text(f"info.{key}", lang, **fields)


@dataclass
class InformationDocument(ResultMixin):
    """What iizrisk holds about one person, as one office may answer (see the module documentation).

    Every table holds only this person's rows and no pseudonym.
    """

    institution: str
    as_of: dt.date
    language: str
    deployment: str
    contact: str
    registrations: pd.DataFrame
    interventions: pd.DataFrame
    flags: pd.DataFrame
    scores: pd.DataFrame
    lists: pd.DataFrame
    reviews: pd.DataFrame
    corrections: pd.DataFrame = field(default_factory=pd.DataFrame)
    model: dict[str, Any] = field(default_factory=dict)
    retention: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> pd.DataFrame:
        """The registrations."""
        return self.registrations

    @property
    def nothing_held(self) -> bool:
        """Whether iizrisk holds nothing about the person."""
        return not any(len(df) for df in (self.registrations, self.interventions, self.scores, self.lists,
                                          self.reviews, self.corrections))

    def _title(self) -> str:
        return _t("title", self.language)

    def _default_min_cell_size(self) -> int:
        return 1  # one person's own data, for that person: nothing to aggregate

    def to_dir(self, path: str | Path, *, min_cell_size: int | None = None, plots: bool = True,
               language: str | None = None, xlsx: bool | None = None) -> list[Path]:
        """Write the document's tables (CSV for people, Parquet) into ``path``; returns the files.

        The CSV (and xlsx) headers are in the person's language unless
        ``language`` says otherwise (:meth:`iizrisk._results.ResultMixin.to_dir`).
        """
        return self._write_dir(path, min_cell_size=min_cell_size, plots=plots, language=language or self.language,
                               xlsx=xlsx)

    def _output_tables(self, k: int) -> list[OutputTable]:
        return [OutputTable(name, df) for name, df in (
            ("registrations", self.registrations), ("interventions", self.interventions), ("flags", self.flags),
            ("scores", self.scores), ("lists", self.lists), ("reviews", self.reviews),
            ("corrections", self.corrections)) if len(df)]

    def summary_text(self, decimals: int = 3) -> str:
        lang = self.language
        parts = [self._title(), ""]
        for key, df in self._sections():
            parts += [_t(key, lang), _presented(df, lang).to_string(index=False) if len(df) else _t("none", lang), ""]
        text_ = "\n".join(parts)
        _refuse_raw_identifiers(text_)
        return text_

    def _sections(self) -> list[tuple[str, pd.DataFrame]]:
        return [("registrations", self.registrations), ("interventions", self.interventions),
                ("flags", self.flags), ("scores", self.scores), ("lists", self.lists),
                ("reviews", self.reviews), ("corrections", self.corrections)]

    # ------------------------------------------------------------------ the document
    def to_html(self) -> str:
        """The document: one self-contained HTML page in the person's language."""
        lang = self.language
        e = html.escape
        date = _date_text(self.as_of, lang)
        out = [f"<h1>{e(self._title())}</h1>",
               f"<p>{e(_t('intro', lang, office=self.deployment, date=date))}</p>",
               f"<p>{e(_t('answered_for', lang, institution=self.institution))}</p>"]
        if self.nothing_held:
            out.append(f"<p><strong>{e(_t('nothing_held', lang))}</strong></p>")
        sections = {
            "registrations": _t("registrations_text", lang),
            "interventions": _t("interventions_text", lang),
            "flags": _t("flags_text", lang, date=date),
            "scores": _t("scores_text", lang),
            "lists": _t("lists_text", lang),
            "reviews": _t("reviews_text", lang),
            "corrections": _t("corrections_text", lang),
        }
        for key, df in self._sections():
            out.append(f"<h2>{e(_t(key, lang))}</h2><p>{e(sections[key])}</p>")
            out.append(_table_html(df, lang) if len(df) else f"<p><em>{e(_t('none', lang))}</em></p>")
        m = self.model
        out.append(f"<h2>{e(_t('model', lang))}</h2>")
        for para in m.get("paragraphs", []):
            out.append(f"<p>{e(para)}</p>")
        if m.get("inputs"):
            out.append(f"<p>{e(_t('model_inputs', lang))}</p><ul>"
                       + "".join(f"<li>{e(x)}</li>" for x in m["inputs"]) + "</ul>")
        if m.get("not_for"):
            out.append(f"<p>{e(_t('model_not_for', lang))}</p><ul>"
                       + "".join(f"<li>{e(x)}</li>" for x in m["not_for"]) + "</ul>")
        r = self.retention
        out.append(f"<h2>{e(_t('retention', lang))}</h2>"
                   f"<p>{e(_t('retention_text', lang, days=swiss_number(r['history_keep_days'], lang), months=r['lookback_months']))}</p>")
        out.append(f"<h2>{e(_t('contact', lang))}</h2><p>{e(_t('contact_text', lang))}</p>"
                   f"<p class=\"contact\">{e(self.contact)}</p>")
        document = page(self._title(), "\n".join(out), lang)
        _refuse_raw_identifiers(document)
        return document

    def _repr_html_(self) -> str:
        return self.to_html()

    def save(self, out_dir: str | Path) -> Path:
        """Write :data:`INFORMATION_FILE` into ``out_dir`` (readable by the owner only) and return its path."""
        from .store import write_text_atomic

        return write_text_atomic(self.to_html(), Path(out_dir) / INFORMATION_FILE, private=True)


def _date_text(d, lang: str) -> str:
    d = pd.Timestamp(d)
    return d.strftime("%Y-%m-%d") if lang == "en" else d.strftime("%d.%m.%Y")


def _cell(v: Any, col: str, lang: str) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return ""
    if isinstance(v, bool | np.bool_):
        return text(f"table.{'yes' if v else 'no'}", lang)
    if isinstance(v, pd.Timestamp | dt.date):
        return _date_text(v, lang)
    if col == "risk":
        return f"{100 * float(v):.1f}"  # under "Risk (%)": a decimal point, as on the lists and the model card
    if isinstance(v, int | np.integer) and col not in ("birth_year",):
        return swiss_number(v, lang)
    return str(v)


def _header(col: str, lang: str) -> str:
    from .tables import header

    own = load_locale(lang)["info"]["columns"]
    return own[col] if col in own else header(col, lang)


def _presented(df: pd.DataFrame, lang: str) -> pd.DataFrame:
    """``df`` as the document shows it: headers and cells in ``lang`` (the text display's table)."""
    return pd.DataFrame({_header(c, lang): [_cell(v, c, lang) for v in df[c].tolist()] for c in df.columns},
                        columns=[_header(c, lang) for c in df.columns])


def _table_html(df: pd.DataFrame, lang: str) -> str:
    return html_table([_header(c, lang) for c in df.columns],
                      [[_cell(v, c, lang) for c, v in zip(df.columns, r, strict=True)]
                       for r in df.itertuples(index=False, name=None)])


def _refuse_raw_identifiers(page: str) -> None:
    """Defensive: no value shaped like an AHV number leaves in a document (the inputs were guarded)."""
    from .pseudonym import ahv_in_free_text

    tokens = pd.Series(re.split(r"[<>]", page))
    # also 756 and ten more digits in any grouping or with a wrong check digit (a note stored before the
    # import refused them): a document handed out of the office holds no AHV number, however written
    if ahv_in_free_text(tokens).any():
        raise RawIdentifierError("information request: a value shaped like an AHV number reached the document; "
                                 "nothing written; correct the data it came from (withheld here)")


# --------------------------------------------------------------------------- building
def _check_person(person: str, settings) -> str:
    from .pseudonym import looks_like_ahv

    p = str(person).strip()
    if looks_like_ahv(pd.Series([p])).any():  # a usage error (exit 2), as an AHV number in --reason
        raise ConfigError("--person holds a value shaped like an AHV number (withheld here); the AHV "
                          "number never enters iizrisk: compute the pseudonym with `iizrisk pseudonymise` "
                          "and the deployment's key, and pass that")
    if not re.fullmatch(settings.deployment.pseudonym_pattern, p):
        case = (" It matches in lower case: pass the pseudonym as `iizrisk pseudonymise` wrote it, in lower case"
                if p != p.lower() and re.fullmatch(settings.deployment.pseudonym_pattern, p.lower()) else "")
        raise ConfigError("--person is not a pseudonym of this deployment (it does not match [deployment] "
                          "pseudonym_pattern; value withheld); compute it from the AHV number with "
                          "`iizrisk pseudonymise` and the deployment's key." + case)
    return p


def _sources_of(settings) -> dict[str, str]:
    """Institution code -> the ``[[sources]]`` name(s) that may deliver its rows."""
    out: dict[str, list[str]] = {}
    for s in settings.sources:
        codes = s.allowed_institutions or settings.institutions
        for c in codes:
            out.setdefault(c, []).append(s.name)
    return {k: " / ".join(v) for k, v in out.items()}


def information_request(settings, *, person: str, institution: str, language: str | None = None,
                        as_of=None, spells: pd.DataFrame | None = None,
                        interventions: pd.DataFrame | None = None) -> InformationDocument:
    """Everything iizrisk holds about one person, as the office answering for ``institution`` may show it.

    Parameters
    ----------
    settings : Settings or path to the deployment TOML
    person : str
        The person's pseudonym (``iizrisk pseudonymise`` of the AHV number at the office).
    institution : str
        The institution the answering office acts for: its case numbers (and those of
        ``[worklist] disclose_institutions``) are shown, no other institution's.
    language : {"de", "fr", "it", "en"}, optional
        The person's language; default the institution's list language.
    as_of : date-like, optional
        The date of the flags; default the last run in the history store, else yesterday.
    spells, interventions : DataFrame, optional
        Canonical rows already read (default: ingest the deployment's sources).

    Raises
    ------
    ConfigError
        No ``[deployment] contact``; an unknown institution or language; ``person`` is not
        a pseudonym of the deployment.
    RawIdentifierError
        ``person`` holds a value shaped like an AHV number.
    """
    from .config import Settings
    from .history import HistoryStore
    from .io import ingest
    from .view import Definitions, View

    settings = (settings if isinstance(settings, Settings) else Settings.load(settings)).resolved()
    d, w = settings.deployment, settings.worklist
    if not d.contact:
        raise ConfigError(f"{settings.config_path or 'settings'}: [deployment] contact is not set; every answer "
                          "names whom the person may contact (office, address, e-mail or telephone)")
    if institution not in settings.institutions:
        raise ConfigError(f"--institution {institution!r} is not a known institution code "
                          f"({', '.join(settings.institutions)})")
    lang = language or w.language_per_institution.get(institution, w.language)
    check_language(lang)
    person = _check_person(person, settings)
    history = HistoryStore(settings.resolve(settings.output.history_dir))
    runs = history.as_of_dates("runs")
    t = pd.Timestamp(as_of).date() if as_of is not None else (runs[-1] if runs else dt.date.today()
                                                              - dt.timedelta(days=1))
    trail = None
    if spells is None:
        ing = ingest(settings)
        spells, interventions, trail = ing.spells, ing.interventions, ing.corrections
    elif d.corrections:
        from .io import read_corrections

        trail = read_corrections(settings.resolve(d.corrections), pseudonym_pattern=d.pseudonym_pattern)
    mine = spells[(spells["person_id"].astype(str) == person).to_numpy()]
    allowed = {institution} | set(w.disclose_institutions)
    registrations = _registrations(mine, allowed, _sources_of(settings), lang)
    ivs = _interventions(interventions, person, lang)
    known = mine
    if "recorded_date" in mine.columns:
        rec = pd.to_datetime(mine["recorded_date"])
        known = mine[(rec.isna() | (rec <= pd.Timestamp(t))).to_numpy()]
    known = known[(known["start_date"] <= pd.Timestamp(t)).to_numpy()]
    flags = pd.DataFrame()
    if len(known):
        flags = View.at(known, t, Definitions.from_settings(settings)).flags.drop(
            columns=["person_id"], errors="ignore").reset_index(drop=True)
    model_dir = settings.resolve(settings.model.dir)
    manifest = _manifest(model_dir)
    scores = _scores(history, person, lang)
    lists = _lists(settings, history, person, mine, allowed, lang, manifest, interventions)
    reviews = _reviews(history, person, allowed, lang)
    corrections = _corrections(trail, person, allowed, lang)
    lookback = int((manifest.get("feature_params") or {}).get("max_lookback_months") or 60)
    return InformationDocument(
        institution=institution, as_of=t, language=lang, deployment=d.name, contact=d.contact,
        registrations=registrations, interventions=ivs, flags=flags, scores=scores, lists=lists, reviews=reviews,
        corrections=corrections, model=_model_text(model_dir, manifest, lang),
        retention={"history_keep_days": settings.output.history_keep_days, "lookback_months": lookback})


def _registrations(mine: pd.DataFrame, allowed: set[str], sources: dict[str, str], lang: str) -> pd.DataFrame:
    loc = load_locale(lang)
    inst = mine["institution"].astype(str)
    case = mine["case_id"].astype("str").fillna("") if "case_id" in mine.columns else pd.Series("", index=mine.index)
    reason = mine["exit_reason"].astype(object) if "exit_reason" in mine.columns else pd.Series(None, index=mine.index)
    out = pd.DataFrame({
        "institution": inst.to_numpy(),
        "case_id": np.where(inst.isin(allowed), case.fillna("").astype(str), _t("case_withheld", lang)),
        "start_date": pd.to_datetime(mine["start_date"]).dt.date.to_numpy(),
        "end_date": pd.to_datetime(mine["end_date"]).dt.date.astype(object).to_numpy(),
        "exit_reason": [loc["exit_reasons"].get(str(r), str(r)) if isinstance(r, str) else None for r in reason],
        "source": [sources.get(i, "") for i in inst],
    })
    for col in ("canton", "birth_year", "sex", "nationality_group", "education"):
        if col in mine.columns:
            vals = mine[col].astype(object).to_numpy()
            if col == "nationality_group":
                vals = np.array([loc["nationality_group"].get(str(v), v) if isinstance(v, str) else v for v in vals],
                                dtype=object)
            if col == "education":
                vals = np.array([loc["education"].get(str(v), v) if isinstance(v, str) else v for v in vals],
                                dtype=object)
            out[col] = vals
    out["end_date"] = out["end_date"].where(pd.notna(out["end_date"]), None)
    return out.sort_values(["start_date", "institution"], kind="stable").reset_index(drop=True)


def _interventions(interventions: pd.DataFrame | None, person: str, lang: str) -> pd.DataFrame:
    cols = ["date", "type", "institutions"]
    if interventions is None or not len(interventions):
        return pd.DataFrame(columns=cols)
    iv = interventions[(interventions["person_id"].astype(str) == person).to_numpy()]
    types = load_locale(lang)["intervention_types"]
    out = pd.DataFrame({"date": pd.to_datetime(iv["date"]).dt.date.to_numpy(),
                        "type": [types.get(t, t) for t in iv["type"].astype(str)],  # in words: the codes are ours
                        "institutions": (iv["institutions"].astype(object).to_numpy() if "institutions" in iv
                                         else np.full(len(iv), None))})
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def _manifest(model_dir: Path) -> dict[str, Any]:
    from .errors import ModelError
    from .model import read_manifest

    try:
        return read_manifest(model_dir)
    except (ModelError, OSError):
        return {}


def _scores(history, person: str, lang: str) -> pd.DataFrame:
    """Every score the history holds for the person (the case lookup's risk history), bands in ``lang``."""
    from .case import _risk_history

    out = _risk_history(history, person)
    bands = load_locale(lang)["risk_bands"]
    out["risk_band"] = [bands.get(str(b), str(b)) for b in out["risk_band"]]
    return out


def _lists(settings, history, person: str, mine: pd.DataFrame, allowed: set[str], lang: str,
           manifest: dict[str, Any], interventions) -> pd.DataFrame:
    """Every list the person was on (history store), with the reasons given with it, in ``lang``."""
    cols = ["as_of", "institution", "rank", "risk", "risk_band", "case_ids", "reasons"]
    wl = history.read("worklists")
    if not len(wl) or "person_id" not in wl.columns:
        return pd.DataFrame(columns=cols)
    wl = wl[(wl["person_id"].astype(str) == person).to_numpy()]
    if not len(wl):
        return pd.DataFrame(columns=cols)
    runs = settings.resolve(settings.output.dir)
    inst_all = mine["institution"].astype(str)
    cases = mine["case_id"].astype("str") if "case_id" in mine.columns else pd.Series("", index=mine.index)
    rows = []
    for r in wl.sort_values(["as_of", "institution"], kind="stable").to_dict("records"):
        d, inst = pd.Timestamp(r["as_of"]).date(), str(r["institution"])
        own_cases = set(cases[(inst_all == inst).to_numpy()].dropna().astype(str))
        listed = _published_row(runs / d.isoformat() / "worklists" / f"{inst}.parquet", own_cases)
        codes: list[str] = []
        stored: list[str] = []
        if listed is not None:
            codes = [v for v in (listed.get(f"reason_{j}") for j in range(1, 10)) if isinstance(v, str)]
            stored = [v for v in (listed.get(f"reason_{j}_text") for j in range(1, 10)) if isinstance(v, str)]
        reasons = _reasons_in(mine, interventions, d, codes, stored, manifest, lang, listed)
        shown_cases = ";".join(sorted(own_cases)) if inst in allowed else _t("case_withheld", lang)
        rows.append({"as_of": d, "institution": inst, "rank": int(r["rank"]), "risk": float(r["risk"]),
                     "risk_band": (load_locale(lang)["risk_bands"].get(str(listed.get("risk_band")), "")
                                   if listed is not None else ""),
                     "case_ids": shown_cases, "reasons": "; ".join(reasons)})
    return pd.DataFrame(rows, columns=cols)


def _published_row(path: Path, own_cases: set[str]) -> dict[str, Any] | None:
    """The row of the person on a published list, found by the institution's case numbers."""
    if not own_cases or not path.is_file():
        return None
    wl = pd.read_parquet(path)
    on = wl["case_ids"].astype(str).str.split(";").map(lambda ids: bool(own_cases & set(ids)))
    hit = wl.loc[on.to_numpy(dtype=bool)]
    return hit.iloc[0].to_dict() if len(hit) else None


def _reasons_in(mine, interventions, d: dt.date, codes: list[str], stored: list[str],
                manifest: dict[str, Any], lang: str, listed) -> list[str]:
    """The list's reasons in ``lang``: the codes' sentences with the values the person's rows known on ``d``
    give; the list's own words when that language is the list's or a value cannot be recomputed."""
    if not codes:
        return stored
    if listed is not None and str(listed.get("language")) == lang:
        return stored
    from .explain import feature_spec_of
    from .features import PointInTimeFeatures, ProtectedAttributeWarning

    params: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v)
                              for k, v in (manifest.get("feature_params") or {}).items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ProtectedAttributeWarning)
            ft = PointInTimeFeatures(**params).fit(None)
        iv = None
        if interventions is not None and len(interventions):
            iv = interventions[interventions["person_id"].isin(pd.unique(mine["person_id"]))]
        X = ft.transform(mine, as_of=d, interventions=iv)
    except (TypeError, ValueError, ValidationError):
        return stored
    if len(X) != 1:
        return stored
    specs = getattr(ft, "specs_", None)
    out = []
    for i, code in enumerate(codes):
        spec = feature_spec_of(code, specs)
        if spec is None or code not in X.columns:
            out.append(stored[i] if i < len(stored) else code)
        else:
            out.append(spec.sentence(float(X[code].iloc[0]), lang))
    return out


def _reviews(history, person: str, allowed: set[str], lang: str) -> pd.DataFrame:
    cols = ["review_date", "institution", "case_id", "decision", "decided_by", "note"]
    rv = history.reviews()
    rv = rv[(rv["person_id"].astype(str) == person).to_numpy()]
    if not len(rv):
        return pd.DataFrame(columns=cols)
    labels = load_locale(lang)["review"]["decisions"]
    inst = rv["institution"].astype(str)
    out = pd.DataFrame({
        "review_date": pd.to_datetime(rv["review_date"]).dt.date.to_numpy(),
        "institution": inst.to_numpy(),
        "case_id": np.where(inst.isin(allowed), rv["case_id"].astype(str), _t("case_withheld", lang)),
        "decision": [labels.get(str(x), str(x)) for x in rv["decision"]],
        "decided_by": rv["decided_by"].astype(object).where(rv["decided_by"].notna(), None).to_numpy(),
        "note": rv["note"].astype(object).where(rv["note"].notna(), None).to_numpy(),
    })
    return out.sort_values(["review_date", "institution"], kind="stable").reset_index(drop=True)


def _corrections(trail: pd.DataFrame | None, person: str, allowed: set[str], lang: str) -> pd.DataFrame:
    """The corrections of the person's rows, with what became of each at the last ingestion."""
    cols = ["date", "institution", "case_id", "field", "old_value", "new_value", "reason", "by_role", "status"]
    if trail is None or not len(trail):
        return pd.DataFrame(columns=cols)
    c = trail[(trail["person_id"].astype(str) == person).to_numpy()]
    loc = load_locale(lang)["info"]
    inst = c["institution"].astype(str)
    return pd.DataFrame({
        "date": [dt.date.fromisoformat(x) for x in c["date"]],
        "institution": inst.to_numpy(),
        "case_id": np.where(inst.isin(allowed), c["case_id"].astype(str), _t("case_withheld", lang)),
        "field": [_header(f, lang) for f in c["field"]],
        "old_value": c["old_value"].to_numpy(), "new_value": c["new_value"].to_numpy(),
        "reason": c["reason"].to_numpy(), "by_role": c["by_role"].to_numpy(),
        "status": [loc["statuses"].get(str(x), str(x)) for x in (c["status"] if "status" in c else [""] * len(c))],
    }, columns=cols).sort_values("date", kind="stable").reset_index(drop=True)


def _model_text(model_dir: Path, manifest: dict[str, Any], lang: str) -> dict[str, Any]:
    """The model's purpose and logic in plain words, from its model card (the manifest)."""
    if not manifest:
        return {"paragraphs": [_t("model_unknown", lang)]}
    from .modelcard import ModelCard

    card = ModelCard(manifest, language=lang).to_dict()
    outcome = card["outcome"]
    paragraphs = [card["intended_use"]["statement"],
                  _t("model_logic", lang, horizon=outcome.get("horizon_months") or "?",
                     outcome=_outcome_text(outcome.get("name"), lang))]
    seen, inputs = set(), []
    for f in card["features"]:
        desc = f.get("description") or f["name"]
        if desc not in seen:
            seen.add(desc)
            inputs.append(desc)
    return {"paragraphs": paragraphs, "inputs": inputs, "not_for": card["intended_use"]["not_intended_for"]}


def _outcome_text(name, lang: str) -> str:
    outcomes = load_locale(lang)["info"]["outcomes"]
    return outcomes.get(str(name), str(name))
