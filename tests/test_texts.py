"""The text catalogue: every key in every language, the same placeholders, no texts left in modules."""

from __future__ import annotations

import ast
import html as _html
import json
import re
import string
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import iizrisk
import test_information
from iizrisk import _texts
from iizrisk._texts import LANGUAGES, load_locale, swiss_number, text, text_items
from iizrisk.errors import ConfigError

SRC = Path(iizrisk.__file__).parent
# a person's information request over two nightly runs (the fixtures of test_information)
answered, trained = test_information.answered, test_information.trained


def _leaves(node, prefix: str = "") -> dict[str, str | list]:
    """Every text of a catalogue by dotted key (lists of texts are one leaf)."""
    if isinstance(node, dict):
        out: dict[str, str | list] = {}
        for k, v in node.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: node}


def _fields(value: str | list) -> set[str]:
    items = value if isinstance(value, list) else [value]
    return {name for item in items for _, name, _, _ in string.Formatter().parse(item) if name is not None}


CATALOGUES = {lang: _leaves(load_locale(lang)) for lang in LANGUAGES}


def test_every_key_exists_in_every_language():
    keys = {lang: set(c) for lang, c in CATALOGUES.items()}
    every = set().union(*keys.values())
    missing = {lang: sorted(every - k) for lang, k in keys.items() if every - k}
    assert not missing, f"keys missing per language: {missing}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_text_is_a_non_empty_string_or_list_of_them(lang):
    for key, value in CATALOGUES[lang].items():
        items = value if isinstance(value, list) else [value]
        assert items and all(isinstance(x, str) and x for x in items), (lang, key)


def test_placeholders_are_the_same_in_every_translation():
    differ = {}
    for key in CATALOGUES["en"]:
        per_lang = {lang: _fields(CATALOGUES[lang][key]) for lang in LANGUAGES}
        if len({frozenset(f) for f in per_lang.values()}) > 1:
            differ[key] = per_lang
    assert not differ, f"placeholders differ between translations: {differ}"


def test_lists_have_the_same_length_in_every_language():
    for key, value in CATALOGUES["en"].items():
        if isinstance(value, list):
            assert {len(CATALOGUES[lang][key]) for lang in LANGUAGES} == {len(value)}, key


#: the person's consent to a data exchange between institutions (docs/domain.md section 6): Art. 35a of the
#: employment services act (AVG, French LSE, Italian LC) and Art. 32 ATSG (French and Italian LPGA); and the
#: limits on automated decisions (nDSG Art. 21, GDPR Art. 22)
CONSENT_LAW = {"de": "(Art. 35a AVG, Art. 32 ATSG)", "fr": "(art. 35a LSE, art. 32 LPGA)",
               "it": "(art. 35a LC, art. 32 LPGA)", "en": "(Art. 35a AVG, Art. 32 ATSG)"}
DECISION_LAW = {"de": "(Art. 21 DSG, Art. 22 DSGVO)", "fr": "(art. 21 LPD, art. 22 RGPD)",
                "it": "(art. 21 LPD, art. 22 RGPD)", "en": "(nDSG Art. 21, GDPR Art. 22)"}


def test_the_consent_to_exchange_data_cites_the_employment_services_act():
    """Not the unemployment insurance act (AVIG, French LACI, Italian LADI): every language cites Art. 35a AVG
    with Art. 32 ATSG, and the lists' notice names the law in every language."""
    wrong = re.compile(r"35a\s+(AVIG|LACI|LADI)")
    cited = [(lang, key) for lang, catalogue in CATALOGUES.items() for key, value in catalogue.items()
             if any(wrong.search(item) for item in (value if isinstance(value, list) else [value]))]
    assert not cited, f"Art. 35a of the unemployment insurance act cited: {cited}"
    for lang in LANGUAGES:
        for key in ("summary.notice", "card.intended_text", "dpia.necessity_text"):
            value = CATALOGUES[lang][key]
            assert CONSENT_LAW[lang] in " ".join(value if isinstance(value, list) else [value]), (lang, key)
        for key in ("summary.notice", "card.intended_text"):
            assert DECISION_LAW[lang] in CATALOGUES[lang][key], (lang, key)


def test_text_fills_placeholders_and_refuses_what_is_not_there():
    assert text("summary.hidden", "de", k=5).startswith("verborgen: weniger als 5 Personen")
    assert text("worklist.notice", "en").startswith("A hint for a review")
    assert text_items("card.limitations_items", "fr")[0].startswith("Le modèle ne voit")
    with pytest.raises(KeyError, match="no text 'summary.nothing'"):
        text("summary.nothing", "de")
    with pytest.raises(KeyError):
        text("summary.hidden", "de")  # {k} not given
    with pytest.raises(KeyError, match="not a single text"):
        text("card.limitations_items", "en")
    with pytest.raises(KeyError, match="not a list"):
        text_items("card.title", "en")
    with pytest.raises(ConfigError, match="language 'rm': use one of de, fr, it, en"):
        text("card.title", "rm")


def _language_entry_points():
    """Every public entry point taking ``language=``: name -> call(language, folder), writing into folder."""
    from matplotlib.figure import Figure

    from iizrisk import plots, tables
    from iizrisk.evaluation import KaplanMeier
    from iizrisk.explain import Explanation, reason_codes
    from iizrisk.fairness import FairnessAudit
    from iizrisk.indicators import bfs_indicators

    frame = pd.DataFrame({"rank": [1, 2], "risk": [0.41, 0.2], "risk_band": ["high", "medium"]})
    spells = pd.DataFrame({"person_id": [f"p{i}" for i in range(12)] * 2, "institution": ["ALV", "SH"] * 12,
                           "start_date": pd.to_datetime(["2020-01-06"] * 12 + ["2020-09-01"] * 12),
                           "end_date": pd.to_datetime(["2020-08-31"] * 12 + ["2020-12-31"] * 12)})
    ex = Explanation(values=pd.DataFrame({"n_transitions_24m": [0.8], "age": [-0.2]}), base_value=-3.0,
                     data=pd.DataFrame({"n_transitions_24m": [3.0], "age": [41.0]}), output=np.array([-2.4]))
    audit_data = pd.DataFrame({"score": np.linspace(0, 1, 200), "sex": ["F", "M"] * 100,
                               "label": np.arange(200) % 3 == 0})

    def axes():
        return Figure().subplots()

    return {
        "check_language": lambda lang, d: _texts.check_language(lang),
        "tables.present": lambda lang, d: tables.present(frame, lang),
        "tables.write_table": lambda lang, d: tables.write_table(frame, d / "t.csv", language=lang),
        "tables.write_table xlsx": lambda lang, d: tables.write_table(frame, d / "t.xlsx", language=lang),
        "tables.write_xlsx": lambda lang, d: tables.write_xlsx(frame, d / "t.xlsx", language=lang),
        "tables.write_outputs": lambda lang, d: tables.write_outputs(frame, d, "t", language=lang, csv=False),
        "KaplanMeier.to_dir": lambda lang, d: KaplanMeier().fit([1, 2, 2, 3, 5, 6, 7], [1, 1, 0, 1, 0, 1, 1])
        .to_dir(d, language=lang),
        "FairnessAudit.to_dir": lambda lang, d: FairnessAudit(groups=["sex"], capacity=20, n_bootstrap=0,
                                                              max_gap=1.0).fit(audit_data).to_dir(d, language=lang),
        "BfsIndicators.to_dir": lambda lang, d: bfs_indicators(spells, 2020).to_dir(d, language=lang),
        "plot_timeline": lambda lang, d: plots.plot_timeline(spells, "p0", as_of="2020-12-31", language=lang,
                                                             ax=axes()),
        "plot_risk_bands": lambda lang, d: plots.plot_risk_bands(frame, language=lang, ax=axes()),
        "plot_contributions": lambda lang, d: plots.plot_contributions(ex, language=lang, ax=axes()),
        "reason_codes": lambda lang, d: reason_codes(ex, language=lang),
    }


@pytest.mark.parametrize("entry", list(_language_entry_points()))
def test_a_language_the_catalogue_lacks_is_refused_the_same_way_everywhere(entry, tmp_path):
    """"FR", "xx" or "rm" gave English tables and plots without a word in some places (to_dir, present,
    write_table, the plots), a ValueError in others and a ConfigError in a third: one rule now, a
    ConfigError naming the argument and the choices, before anything is written."""
    call = _language_entry_points()[entry]
    for code in ("FR", "xx", "rm", "fr-CH"):
        folder = tmp_path / code
        with pytest.raises(ConfigError) as err:
            call(code, folder)
        assert str(err.value) == f"language '{code}': use one of de, fr, it, en", entry
        assert not folder.exists() or not any(folder.iterdir()), (entry, sorted(folder.iterdir()))
    call("fr", tmp_path / "fr")  # a language the catalogue has is taken
    if entry not in ("check_language", "reason_codes"):  # None keeps its meaning: codes, or English on plots
        call(None, tmp_path / "none")


def test_swiss_numbers():
    assert [swiss_number(20645, lang) for lang in LANGUAGES] == ["20’645", "20\u202f645", "20’645", "20,645"]
    assert swiss_number(999, "de") == "999" and swiss_number(1234567, "it") == "1’234’567"
    assert swiss_number(1000, "rm") == "1,000"  # no catalogue: English separators


def test_the_modules_read_the_catalogue():
    from iizrisk.modelcard import _t as card
    from iizrisk.plots import _w as plot
    from iizrisk.report import BAND_NAMES
    from iizrisk.report import _t as summary
    from iizrisk.worklist import NOTICE

    assert summary("title", "fr") == "Traitement nocturne CII"
    assert card("title", "it") == "Scheda del modello"
    assert plot("risk_bands.high", "fr") == "élevé" and plot("persons", "xx") == "Persons"
    assert dict(BAND_NAMES["it"]) == {"low": "basso", "medium": "medio", "high": "alto"}
    assert list(NOTICE) == list(LANGUAGES) and NOTICE["de"] == text("worklist.notice", "de")
    with pytest.raises(TypeError):
        NOTICE["de"] = "changed"  # type: ignore[index]


def _four_language_dicts(path: Path) -> list[int]:
    """Lines of ``path`` holding a dict keyed by at least three of de/fr/it/en (literal or dict(...))."""
    langs = set(LANGUAGES)
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        keys: set[str] = set()
        if isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            keys = {kw.arg for kw in node.keywords if kw.arg}
        if len(keys & langs) >= 3:
            lines.append(node.lineno)
    return lines


def test_no_module_holds_a_four_language_dict():
    found = {str(p.relative_to(SRC)): lines for p in sorted(SRC.rglob("*.py"))
             if p.name != "_texts.py" and (lines := _four_language_dicts(p))}
    assert not found, f"texts per language belong in locale/*.json (module: lines): {found}"


def test_the_guard_sees_a_four_language_dict(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('A = {"de": "Ja", "fr": "Oui", "it": "Sì", "en": "Yes"}\nB = dict(de=1, fr=2, en=3)\n')
    assert _four_language_dicts(f) == [1, 2]
    assert _texts.__name__ == "iizrisk._texts"


# --------------------------------------------------------------------------- no English left in documents
#: English fragments shorter than this are words a translation may share (``ROC AUC``, ``Brier``).
MIN_SENTENCE = 13


def _english_sentences(lang: str) -> set[str]:
    """The en catalogue's texts (and the literal pieces of its templates) of at least :data:`MIN_SENTENCE`
    characters that no text of ``lang``'s catalogue contains: English a reader of ``lang`` must not meet."""
    own = [str(x) for v in CATALOGUES[lang].values() for x in (v if isinstance(v, list) else [v])]
    out = set()
    for value in CATALOGUES["en"].values():
        for item in value if isinstance(value, list) else [value]:
            for piece, *_ in string.Formatter().parse(item):
                piece = piece.strip(" :;,.()")
                if len(piece) >= MIN_SENTENCE and not any(piece in t for t in own):
                    out.add(piece)
    return out


def _readable(document: str) -> str:
    """A rendered text or HTML page as a reader sees it: entities decoded, embedded images dropped."""
    return _html.unescape(re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", document))


def _assert_no_english(lang: str, documents: dict[str, str]) -> None:
    english = _english_sentences(lang)
    found = {}
    for name, doc in documents.items():
        readable = _readable(doc)  # whole words: the code n_interventions_24m is no English text "interventions"
        found[name] = sorted(s for s in english if s in readable
                             and re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", readable))
    assert not {k: v for k, v in found.items() if v}, f"English catalogue texts in the {lang} documents: {found}"


@pytest.fixture(scope="module")
def audit_and_proxies():
    """A small fitted audit (sex, nationality group, the disability proxy) and a proxy analysis."""
    from iizrisk.fairness import FairnessAudit
    from iizrisk.proxies import ProxyAnalysis

    rng = np.random.default_rng(3)
    n = 1500
    data = pd.DataFrame({"score": rng.random(n), "sex": rng.choice(["F", "M"], n),
                         "nationality_group": rng.choice(["CH", "EU_EFTA", "THIRD"], n, p=[.6, .25, .15]),
                         "disability": rng.choice(["IV", "no_IV"], n, p=[.3, .7])})
    data["score"] = np.clip(data["score"] + 0.2 * (data["disability"] == "IV"), 0, 1)
    data["label"] = rng.random(n) < data["score"] * 0.4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = FairnessAudit(capacity=150, n_bootstrap=40).fit(data)
    X = pd.DataFrame({"open_iv": (data["disability"] == "IV").astype(float) * (rng.random(n) < 0.9),
                      "n_spells_24m": rng.poisson(2, n).astype(float)})
    proxies = ProxyAnalysis(n_splits=3).fit(X, data[["nationality_group", "disability"]])
    return audit, proxies


def _card_manifest() -> dict:
    from iizrisk.features import feature_specs

    metrics = {"roc_auc": 0.71, "average_precision": 0.2, "brier": 0.08, "ece": 0.01, "precision_at_k": 0.3,
               "recall_at_k": 0.1, "k": 50, "prevalence": 0.1}
    return {"model": "boosting", "outcome": "revolving_door", "horizon_months": 12, "calibration": "isotonic",
            "features": [{"name": s.name} for s in feature_specs(include_age=True)],
            "metrics": {"boosting": metrics, "logistic": metrics, "bfs_rule": metrics},
            "training": {"periods": {"train": ["2018-01-31", "2020-01-31"]}, "observed_until": "2024-03-19",
                         "snapshots": 54966, "train_rows": 12000, "data_fingerprint": "f2e2"},
            "model_sha256": "5bc6", "signature": "x"}


@pytest.mark.parametrize("lang", ["de", "fr", "it"])
def test_the_audit_proxies_and_model_card_are_free_of_english(lang, audit_and_proxies):
    """Issue 19 item 7: the audit (text, HTML), the proxy analysis (text, HTML) and the model card (Markdown,
    HTML, JSON; with and without an audit and oversight figures) hold no English catalogue text, and their counts
    carry the language's Swiss thousands separator."""
    from iizrisk.modelcard import ModelCard
    from test_modelcard import oversight_history

    audit, proxies = audit_and_proxies
    full = ModelCard(_card_manifest(), audit=audit, language=lang, oversight=oversight_history())
    bare = ModelCard(_card_manifest(), language=lang)
    documents = {"audit text": audit.to_text(language=lang), "audit HTML": audit._repr_html_(language=lang),
                 "proxy text": proxies.summary_text(language=lang), "proxy HTML": proxies._repr_html_(language=lang),
                 "card": full.to_markdown(), "card HTML": full.to_html(), "card repr": full._repr_html_(),
                 "bare card": bare.to_markdown(), "bare card HTML": bare.to_html()}
    _assert_no_english(lang, documents)
    # the JSON keeps codes (a feature's group "interventions"), but no English sentence
    card_json = json.dumps(full.to_dict(), ensure_ascii=False, default=str)
    assert not [s for s in _english_sentences(lang) if " " in s and s in card_json]
    n = swiss_number(audit.n_, lang)
    assert n != swiss_number(audit.n_, "en")  # 1,500 in English: the test sees the separator
    assert n in documents["audit text"] and n in documents["card"]
    assert text("audit.title", lang) in documents["audit text"]
    for code in ("THIRD", "no_IV", "exceeds", "cannot_tell", "flag_rate", "revolving_door", "isotonic"):
        assert not re.search(rf"(?<![\w-]){code}(?![\w-])", _readable(documents["card HTML"])), code


@pytest.mark.parametrize("lang", ["de", "fr", "it"])
def test_the_information_document_is_free_of_english(lang, answered):
    """A person's information document (information.py) in their language holds no English catalogue text."""
    from iizrisk.information import information_request

    cfg, _, person, *_ = answered
    doc = information_request(cfg, person=person, institution="ALV", language=lang)
    _assert_no_english(lang, {"information HTML": doc.to_html(), "information text": doc.summary_text()})


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_reason_never_says_registered_for_0_days(lang):
    """0 of a count or a duration is said in words: "currently not registered at IV" (as the ``open``
    family says it), never "registered at IV for 0 days"; 1 in the singular."""
    from iizrisk._texts import render

    params = {"institution": "IV", "window": 24, "reason": "other"}
    assert render("current_days", params, 0, lang) == render("open", params, 0, lang)
    families = load_locale(lang)["families"]
    counted = [f for f, fam in families.items() if "template" in fam and "{value}" in fam["template"]
               and f not in ("age", "bfs_profile", "days_since_last_start", "days_since_last_exit",
                             "days_since_joint_assessment")]
    assert len(counted) >= 14
    for family in counted:
        zero = render(family, params, 0, lang)
        assert not re.search(r"\b0\b", zero), (family, zero)
        one = render(family, params, 1.0, lang)
        assert not re.search(r"\b1 (Tagen|days|jours|giorni)\b", one), (family, one)  # "1 Tag", "1 day"
    assert "17" in render("current_days", params, 17, lang)


#: "new" in each language, as the n_spells family says it
_NEW = {"de": r"\bneue?\b", "fr": r"\bnouvelles?\b", "it": r"\bnuov[ae]\b", "en": r"\bnew\b"}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_counts_of_registrations_started_in_a_window_say_new(lang):
    """n_spells_<inst>_<k>m counts the registrations that STARTED in the window: "no registration at SH in the
    last 60 months" stood next to "registered at SH for 1826 days" on the same row. Zero, one and many say
    "new", as n_spells does; Swiss spelling (no sharp s)."""
    from iizrisk._texts import render

    params = {"institution": "SH", "window": 60}
    for family in ("n_spells", "n_spells_inst"):
        fam = load_locale(lang)["families"][family]
        assert set(fam) >= {"template", "one", "zero"}
        for value in (0, 1, 3):
            said = render(family, params, value, lang)
            assert re.search(_NEW[lang], said), (family, value, said)
            assert "ß" not in said


def _monitoring_nights():
    """Three nights of the history's monitoring table: a drifting input, a rising high band, both precisions."""
    nights = pd.to_datetime(["2025-01-31", "2025-02-28", "2025-03-31"])
    rows = []
    for i, t in enumerate(nights):
        rows += [{"as_of": t, "kind": "drift", "name": "age", "institution": "", "value": 0.05 + 0.2 * i,
                  "threshold": 0.2, "warning": i > 0},
                 {"as_of": t, "kind": "score", "name": "share_high", "institution": "", "value": 0.1 + 0.05 * i,
                  "threshold": np.nan, "warning": False},
                 {"as_of": t, "kind": "expected", "name": "expected_precision", "institution": "all",
                  "value": 0.3 - 0.03 * i, "threshold": np.nan, "warning": False},
                 {"as_of": t, "kind": "realised", "name": "realised_precision", "institution": "all",
                  "value": 0.25 + 0.04 * i, "threshold": np.nan, "warning": False},
                 {"as_of": t, "kind": "churn", "name": "jaccard", "institution": "ALV", "value": 0.6,
                  "threshold": 0.3, "warning": False}]
    table = pd.DataFrame(rows).assign(run_as_of=pd.NaT, message="")
    return table[["as_of", "kind", "name", "institution", "run_as_of", "value", "threshold", "warning", "message"]]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_monitoring_trends_speak_the_deployments_language(lang, tmp_path):
    """`iizrisk monitor` wrote its sentences, report, plots and table headers in English only, beside a
    nightly summary in the deployment's language."""
    from iizrisk.monitoring import MonitoringTrends
    from iizrisk.tables import header
    from test_tables import spreadsheet_rows

    result = MonitoringTrends(_monitoring_nights(), language=lang)
    said = result.changes()
    assert said[0] == text("monitor.trends_drift", lang, feature="age", since="2025-02-28", psi="0.45",
                           date="2025-03-31")
    assert said[1] == text("monitor.trends_share_high", lang, before="10.0%", d0="2025-01-31", after="20.0%",
                           d1="2025-03-31")
    assert said[-1] == text("monitor.trends_warnings", lang, n=2, d0="2025-01-31", d1="2025-03-31")
    assert len(said) == 6  # the three precisions and shares moved, the gap between the precisions
    report = result.to_html()
    assert f"<h1>{_html.escape(text('monitor.trends_title', lang))}</h1>" in report
    assert _html.escape(header("max_feature_psi", lang)) in report
    assert result.plot(what="churn").get_title() == text("monitor.plot_churn", lang)
    if lang != "en":
        _assert_no_english(lang, {"changes": "\n".join(said), "report": report})
    result.to_dir(tmp_path, language=lang, plots=False)
    for name in ("monitoring_trends", "monitoring_rows"):
        head = spreadsheet_rows(tmp_path / f"{name}.csv")[0]
        codes = list(pd.read_parquet(tmp_path / f"{name}.parquet").columns)
        assert head == [header(c, lang) for c in codes] and not set(head) & set(codes), (name, head)
    with pytest.raises(ConfigError, match="language"):
        MonitoringTrends(_monitoring_nights(), language="rm")
