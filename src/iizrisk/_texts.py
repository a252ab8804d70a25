"""Texts in German, French, Italian and English: feature descriptions and reason sentences.

The sentences live in ``iizrisk/locale/<language>.json``, one file per
language, so that translators edit JSON, not Python. A feature belongs to a
*family* (``n_transitions``, ``open``, ...) with parameters (window in months,
institution, exit reason, education level); each family has a description and
a sentence template per language:

``template``  sentence with ``{value}`` (and ``{window}``, ``{institution}``...)
``one``       the same sentence for the value 1 (singular), optional
``true`` / ``false``  sentences of yes/no features
``missing``   sentence for an unknown value, optional

Examples
--------
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
from typing import Any

__all__ = ["LANGUAGES", "load_locale", "describe", "render", "check_language"]

LANGUAGES: tuple[str, ...] = ("de", "fr", "it", "en")


def check_language(language: str) -> str:
    """Return ``language`` if texts exist for it, else raise ValueError naming the choices."""
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not available; choose one of {', '.join(LANGUAGES)}")
    return language


@cache
def load_locale(language: str) -> dict[str, Any]:
    """The parsed ``locale/<language>.json``."""
    check_language(language)
    path = resources.files("iizrisk") / "locale" / f"{language}.json"
    return json.loads(path.read_text(encoding="utf-8"))


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
    """The reason sentence of one feature with the person's value, in ``language``."""
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
    if value == 1 and "one" in fam:
        return fam["one"].format(**ctx)
    label = loc.get("bfs_profiles", {}).get(_number(value), _number(value))
    return fam["template"].format(value=_number(value), value_label=label, **ctx)
