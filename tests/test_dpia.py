"""DPIA draft: every section, no required field left empty without the mark, every linked test exists."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from iizrisk._texts import LANGUAGES
from iizrisk.cli import main
from iizrisk.config import Settings
from iizrisk.dpia import DPIA_FILES, MEASURES, OPEN_MARK, RISKS, SECTIONS, dpia_draft
from iizrisk.errors import ConfigError
from iizrisk.model import save_model, train

TESTS = Path(__file__).parent
CONTACT = "IIZ-Fachstelle Kanton Test, 8000 Testikon"


def _test_names() -> set[str]:
    """Every module-level test function of the tests folder, as ``tests/<file>::<name>``."""
    names = set()
    for path in sorted(TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {f"tests/{path.name}::{node.name}" for node in tree.body
                  if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
    return names


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, random_spells):
    tmp = tmp_path_factory.mktemp("dpia")
    model, _ = train(random_spells, outcome="revolving_door", compare=False, max_train_rows=4000, model="logistic")
    save_model(model, tmp / "model", key=b"a model signing key of the dpia test, long enough")
    cfg = {"deployment": {"name": "Kanton Test – IIZ", "contact": CONTACT},
           "sources": [{"name": "alv", "institution": "ALV", "path": "alv.csv"},
                       {"name": "sh", "institution": "SH", "path": "sh.csv"}],
           "model": {"dir": "model"},
           "worklist": {"disclose_institutions": ["SH"], "capacity_per_institution": {"SH": 12},
                        "language_per_institution": {"SH": "fr"}},
           "output": {"history_keep_days": 400}}
    return Settings.from_dict(cfg, base_dir=tmp).save(tmp / "iizrisk.toml")


def _fields_filled_or_marked(draft) -> list[str]:
    bad = []
    for s in draft.sections:
        for f in s.fields:
            if f.open:
                if not (f.todo or "").strip():
                    bad.append(f"{s.key}: {f.label} is open without saying what to fill in")
            elif not draft._value(f).strip() or draft._value(f) in {"-", "None"}:
                bad.append(f"{s.key}: {f.label} is empty and not marked")
    return bad


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_section_is_present_and_no_required_field_is_left_unmarked(deployment, lang):
    draft = dpia_draft(deployment, language=lang)
    assert [s.key for s in draft.sections] == list(SECTIONS)
    assert all(s.title and (s.paragraphs or s.fields or s.tables) for s in draft.sections)
    assert not _fields_filled_or_marked(draft)
    md = draft.to_markdown()
    for i, s in enumerate(draft.sections, start=1):
        assert f"## {i}. {s.title}\n" in md
    # in the Markdown: every field line has a value or the mark, and every open field is listed in section 10
    for line in md.splitlines():
        m = re.match(r"- \*\*(.+?)\*\*: (.*)$", line)
        if m:
            assert m.group(2).strip() not in {"", "-", "None"}, line
    last = draft.sections[-1].tables[0][1]
    assert {(t, f.label) for t, f in draft.open_fields()} <= {(r[0], r[1]) for r in last}
    assert md.count(OPEN_MARK) >= len(draft.open_fields())


def test_filled_from_the_configuration_model_card_and_rule(deployment):
    draft = dpia_draft(deployment, language="en")
    by = {s.key: s for s in draft.sections}
    values = {f.label: draft._value(f) for s in draft.sections for f in s.fields}
    assert values["Contact for persons concerned"] == CONTACT
    assert values["Controller"] == "Kanton Test – IIZ"
    assert values["History kept (days)"] == "400" and values["Features' look-back (months)"] == "60"
    related = values["Inputs related to a protected ground"]
    # age is no input by default (a protected ground); the IV inputs stand for disability
    assert values["Model"] == "logistic regression" and "age (" not in related and "disability" in related
    assert "between 0.8 and 1.25" in values["Fairness rule"]
    header, rows = by["recipients"].tables[0]
    table = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    assert sorted(table) == ["ALV", "SH"] and table["SH"]["List size"] == 12 and table["SH"]["Language"] == "fr"
    assert table["ALV"]["Institutions named"] == "SH" and table["SH"]["Institutions named"] == "none (count only)"
    # without a contact or a model, those fields are open and marked, not empty
    s = Settings.load(deployment)
    s.deployment.contact = None
    s.model.dir = "no-model-here"
    bare = dpia_draft(s, language="de")
    open_labels = {f.label for _, f in bare.open_fields()}
    assert {"Kontakt für betroffene Personen", "Eingesetztes Modell", "Modell"} <= open_labels
    assert not _fields_filled_or_marked(bare)


def test_every_measure_links_a_test_that_exists_and_every_risk_has_a_measure():
    names = _test_names()
    assert len(names) > 100  # the walk found the tests folder
    missing = {m: t for m, (_, t) in MEASURES.items() if t not in names}
    assert not missing, f"measures linked to tests that do not exist: {missing}"
    for risks, _ in MEASURES.values():
        assert set(risks) <= set(RISKS)
    assert {r for risks, _ in MEASURES.values() for r in risks} == set(RISKS)
    draft = dpia_draft(Settings(), language="it")
    rows = next(s for s in draft.sections if s.key == "measures").tables[0][1]
    assert [r[2] for r in rows] == [t for _, t in MEASURES.values()]


def test_the_command_writes_markdown_html_and_json(deployment, tmp_path, capsys):
    assert main(["dpia", str(deployment), "--out", str(tmp_path / "d"), "--language", "fr"]) == 0
    assert "[OPEN]" in capsys.readouterr().out
    for name in DPIA_FILES.values():
        assert (tmp_path / "d" / name).is_file()
    data = json.loads((tmp_path / "d" / DPIA_FILES["json"]).read_text(encoding="utf-8"))
    assert [s["key"] for s in data["sections"]] == list(SECTIONS) and data["language"] == "fr"
    html = (tmp_path / "d" / DPIA_FILES["html"]).read_text(encoding="utf-8")
    assert html.count('class="open"') == sum(f["open"] for s in data["sections"] for f in s["fields"])


def test_oversight_figures_fill_their_field_once_reviews_are_recorded(deployment, tmp_path):
    import pandas as pd

    from iizrisk.history import REVIEW_COLUMNS, HistoryStore

    s = Settings.load(deployment)
    s.output.history_dir = str(tmp_path / "history")
    s.privacy.min_cell_size = 1
    assert any(f.label == "Oversight figures" for _, f in dpia_draft(s, language="en").open_fields())
    h = HistoryStore(tmp_path / "history")
    people = [f"p{i}" for i in range(6)]
    h.write("2023-06-28", worklists=pd.DataFrame({"institution": "ALV", "person_id": people,
                                                  "rank": range(1, 7), "risk": 0.3}))
    reviews = pd.DataFrame({"institution": "ALV", "person_id": people[:4], "case_id": "A-1",
                            "review_date": pd.Timestamp("2023-06-29"), "decision": "not_suitable", "note": "",
                            "decided_by": "IIZ ALV", "listed": True, "list_as_of": pd.Timestamp("2023-06-28"), "band_at_review": "medium"})
    h.write_reviews(reviews[list(REVIEW_COLUMNS)])
    draft = dpia_draft(s, language="en")
    assert not any(f.label == "Oversight figures" for _, f in draft.open_fields())
    measures = next(x for x in draft.sections if x.key == "measures")
    header, rows = measures.tables[1]
    row = dict(zip(header, rows[0], strict=True))
    assert (row["Institution"], row["Listed"], row["Reviewed"]) == ("ALV", 6, 4)
    assert not _fields_filled_or_marked(draft)


def test_a_failed_write_leaves_no_draft_in_part(deployment, tmp_path, capsys):
    """One file that cannot be written (a folder in its place stands in for a full disk): none is left."""
    out = tmp_path / "d"
    (out / DPIA_FILES["json"]).mkdir(parents=True)
    assert main(["dpia", str(deployment), "--out", str(out)]) == 6
    assert sorted(p.name for p in out.iterdir()) == [DPIA_FILES["json"]]
    assert ".tmp" not in capsys.readouterr().err
    (out / DPIA_FILES["md"]).write_text("the earlier draft")  # an earlier draft is not half replaced
    assert main(["dpia", str(deployment), "--out", str(out)]) == 6
    assert (out / DPIA_FILES["md"]).read_text() == "the earlier draft"


@pytest.mark.parametrize("where", ["name", "contact"])
def test_an_ahv_number_in_a_setting_is_refused_naming_the_setting(deployment, tmp_path, capsys, where):
    text = deployment.read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith(f"{where} = "))
    bad = tmp_path / "ahv.toml"
    bad.write_text(text.replace(line, f'{where} = "Kanton 756_6604_8764_70"'), encoding="utf-8")
    assert main(["dpia", str(bad), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert f"[deployment] {where}" in err and "AHV number" in err and "6604" not in err, err
    assert not (tmp_path / "d").exists()
    with pytest.raises(ConfigError, match=r"\[deployment\] name.*withheld") as exc:
        Settings.from_dict({"deployment": {"name": "756.1234.5678.97"}})
    assert "1234" not in str(exc.value)
    with pytest.raises(ConfigError, match=r"\[\[sources\]\] #1 path"):
        Settings.from_dict({"sources": [{"name": "a", "path": "in/756 1234 5678 97.csv"}]})
    Settings.from_dict({"deployment": {"name": "Kanton ZH, Fall ALV-2023-000123, 2024-06-30"}})  # no number
