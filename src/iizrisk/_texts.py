"""The catalogue of texts in German, French, Italian and English, and Swiss number formatting.

Every user-facing text in the four languages lives in
``iizrisk/locale/<language>.json``, one file per language, so that
translators edit JSON, not Python. Each area has its namespace:

=====================  =====================================================
``summary.*``          the nightly run's summary (Markdown and HTML)
``list_fairness.*``    the summary's section on whom tonight's lists flag
``monitor.*``          the summary's monitoring section
``card.*``             model cards
``audit.*``            the fairness audit and the proxy analysis (text, HTML, rule)
``plot.*``             words on plots
``worklist.notice``    the statement every worklist row carries
``table.*``            headers, yes/no of the tables people open (iizrisk.tables)
``review.*``           review files and decisions
``oversight.*``        "does a human decide?" (summary, card, command)
``case.*``             the case lookup
``info.*``             the information document (nDSG Art. 25)
``dpia.*``             the DPIA draft (nDSG Art. 22)
``risk_bands.*``       names of the risk bands (summary and plots)
``families`` ...       feature descriptions and reason sentences (below)
=====================  =====================================================

:func:`text` returns one text with its ``{placeholders}`` filled in,
:func:`text_items` a list of texts (bullet points), and :func:`swiss_number`
writes a whole number with the thousands separator of the language (the
catalogue's ``thousands_separator``). Every key exists in every language with
the same placeholders (``tests/test_texts.py``).

A feature belongs to a
*family* (``n_transitions``, ``open``, ...) with parameters (window in months,
institution, exit reason, education level); each family has a description and
a sentence template per language:

``template``  sentence with ``{value}`` (and ``{window}``, ``{institution}``...)
``one``       the same sentence for the value 1 (singular), optional
``true`` / ``false``  sentences of yes/no features
``missing``   sentence for an unknown value, optional

Examples
--------
>>> text("summary.hidden", "it", k=5)
'nascosto: meno di 5 persone, o nascosto affinché i totali non rivelino celle piccole'
>>> swiss_number(20645, "de"), swiss_number(20645, "en")
('20’645', '20,645')
>>> render("n_transitions", {"window": 24}, 3, "de")
'3 Wechsel zwischen Institutionen in den letzten 24 Monaten'
>>> render("open", {"institution": "SH"}, 1.0, "fr")
"actuellement inscrit·e auprès de l'aide sociale"
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any, SupportsIndex

from ._time import _shown
from .errors import ConfigError

__all__ = ["LANGUAGES", "check_language", "colon", "describe", "load_locale", "or_english", "render", "swiss_number",
           "text", "text_items"]

LANGUAGES: tuple[str, ...] = ("de", "fr", "it", "en")


def or_english(language: str | None) -> str:
    """``language`` when the catalogue has it, else English (for words that must be shown in some language).

    >>> or_english("fr"), or_english("rm"), or_english(None)
    ('fr', 'en', 'en')
    """
    return language if language in LANGUAGES else "en"


def colon(language: str) -> str:
    """The colon after a label in ``language``: French sets a no-break space before it ("Fiche du modèle : …").

    >>> "Titre" + colon("fr"), "Titel" + colon("de")
    ('Titre\xa0:', 'Titel:')
    """
    return "\u00a0:" if language == "fr" else ":"


def check_language(language: str, what: str = "language") -> str:
    """Return ``language`` if the catalogue has texts for it, else raise ConfigError naming ``what`` and the choices.

    The one rule of every public ``language=`` argument (tables, plots, result
    objects' ``to_dir``, reasons): a code the catalogue lacks ("FR", "fr-CH",
    "rm") is refused, never silently replaced by English. :func:`or_english`
    stays for internal fallbacks where a text may be missing.

    Parameters
    ----------
    language : str
        The code to check.
    what : str, default "language"
        The argument's name in the message (``--language``, ``[worklist] language``...).

    Raises
    ------
    ConfigError
        ``language`` is not one of :data:`LANGUAGES` (a ``ValueError`` too).

    Examples
    --------
    >>> check_language("fr")
    'fr'
    >>> check_language("FR")
    Traceback (most recent call last):
    ...
    iizrisk.errors.ConfigError: language 'FR': use one of de, fr, it, en
    """
    if isinstance(language, str) and language in LANGUAGES:
        return language
    shown = _shown(language) if isinstance(language, str) else repr(language)
    raise ConfigError(f"{what} {shown}: use one of {', '.join(LANGUAGES)}")


@cache
def load_locale(language: str) -> dict[str, Any]:
    """The parsed ``locale/<language>.json``."""
    check_language(language)
    path = resources.files("iizrisk") / "locale" / f"{language}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _lookup(key: str, language: str) -> Any:
    node: Any = load_locale(language)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"no text {key!r} in language {language!r}")
        node = node[part]
    return node


def text(key: str, language: str, **fields: Any) -> str:
    """The catalogue's text ``key`` in ``language`` with its placeholders filled in.

    Parameters
    ----------
    key : str
        Dotted key, such as ``"card.title"`` or ``"worklist.notice"``.
    language : {"de", "fr", "it", "en"}
    **fields
        Values of the text's placeholders (``{k}``, ``{names}``...).

    Raises
    ------
    ConfigError
        ``language`` has no catalogue (:func:`check_language`).
    KeyError
        ``key`` is not a text, or a placeholder has no value in ``fields``.

    Examples
    --------
    >>> text("card.title", "fr")
    'Fiche du modèle'
    """
    value = _lookup(key, language)
    if not isinstance(value, str):
        raise KeyError(f"{key!r} is not a single text (use text_items for lists)")
    return value.format(**fields)


def text_items(key: str, language: str) -> tuple[str, ...]:
    """The catalogue's list of texts ``key`` (bullet points) in ``language``.

    Examples
    --------
    >>> text_items("card.not_for_items", "en")[0]
    'decisions on benefits, sanctions, eligibility or access to measures'
    """
    value = _lookup(key, language)
    if not isinstance(value, list):
        raise KeyError(f"{key!r} is not a list of texts (use text for single texts)")
    return tuple(value)


def swiss_number(n: SupportsIndex, language: str = "de") -> str:
    """A whole number (an int or a NumPy integer) with the thousands separator used in Switzerland
    for ``language``.

    20’645 in German and Italian, 20 645 with a narrow no-break space in French,
    20,645 in English (and for a language without catalogue).

    Examples
    --------
    >>> swiss_number(20645), swiss_number(20645, "fr") == "20\u202f645", swiss_number(1234567, "en")
    ('20’645', True, '1,234,567')
    """
    sep = load_locale(language)["thousands_separator"] if language in LANGUAGES else ","
    return f"{int(n):,}".replace(",", sep)


def _context(loc: dict, params: dict) -> dict[str, str]:
    ctx = {"window": str(params.get("window", ""))}
    if "institution" in params:
        ctx["institution"] = loc["institutions"].get(params["institution"], params["institution"])
    if "reason" in params:
        ctx["reason"] = loc["exit_reasons"].get(params["reason"], params["reason"])
    if "level" in params:
        ctx["level"] = loc["education"].get(params["level"], params["level"])
    if "group" in params:
        ctx["group"] = loc["nationality_group"].get(params["group"], params["group"])
    return ctx


def _family(loc: dict, family: str) -> dict[str, str]:
    try:
        return loc["families"][family]
    except KeyError:
        raise KeyError(f"no texts for feature family {family!r} in language {loc['language']!r}") from None


def describe(family: str, params: dict, language: str) -> str:
    """Description of one feature in ``language``."""
    loc = load_locale(language)
    return _family(loc, family)["description"].format(**_context(loc, params))


def _number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.1f}"


def render(family: str, params: dict, value, language: str) -> str:
    """The reason sentence of one feature with the person's value, in ``language``.

    A family's ``zero`` and ``one`` texts say 0 and 1 in words ("currently not registered at IV",
    "for 1 day"); other values fill its ``template``.

    >>> render("current_days", {"institution": "IV"}, 0, "de"), render("current_days", {"institution": "IV"}, 1, "en")
    ('zurzeit nicht bei der IV angemeldet', 'registered at disability insurance (IV) for 1 day')
    """
    loc = load_locale(language)
    fam = _family(loc, family)
    ctx = _context(loc, params)
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if missing:
        if "missing" in fam:
            return fam["missing"].format(**ctx)
        if "template" in fam:
            return fam["template"].format(value=loc["missing"], value_label=loc["missing"], **ctx)
        return fam["description"].format(**ctx) + f": {loc['missing']}"
    value = float(value)
    if "true" in fam:
        return fam["true" if value >= 0.5 else "false"].format(**ctx)
    if value == 0 and "zero" in fam:  # "none", never "registered at IV for 0 days"
        return fam["zero"].format(**ctx)
    if value == 1 and "one" in fam:
        return fam["one"].format(**ctx)
    label = loc.get("bfs_profiles", {}).get(_number(value), _number(value))
    return fam["template"].format(value=_number(value), value_label=label, **ctx)
