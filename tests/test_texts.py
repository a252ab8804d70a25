"""The text catalogue: every key in every language, the same placeholders, no texts left in modules."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest

import iizrisk
from iizrisk import _texts
from iizrisk._texts import LANGUAGES, load_locale, swiss_number, text, text_items

SRC = Path(iizrisk.__file__).parent


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
    with pytest.raises(ValueError, match="not available"):
        text("card.title", "rm")


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
