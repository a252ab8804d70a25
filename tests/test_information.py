"""A person's right to information: exactly their rows, nothing of anyone else, in their language."""

from __future__ import annotations

import re

import pandas as pd
import pytest

import test_reviews
from iizrisk.batch import run_nightly
from iizrisk.cli import main
from iizrisk.config import Settings
from iizrisk.errors import ConfigError
from iizrisk.history import REVIEW_COLUMNS, HistoryStore
from iizrisk.information import INFORMATION_FILE, _published_row, _reasons_in, information_request
from iizrisk.store import write_parquet_atomic

trained = test_reviews.trained  # the trained model fixture, shared
NIGHTS = ("2023-06-28", "2023-06-30")
CONTACT = "IIZ-Fachstelle Kanton Test, Postfach 12, 8000 Testikon, iiz@test.example"
NEIGHBOUR_NOTE = "Nachbarnotiz-QX7 vertraulich"
OWN_NOTE = "Termin mit RAV vereinbart"


def _token(value: str) -> re.Pattern:
    return re.compile(rf"(?<![\w-]){re.escape(value)}(?![\w-])")


@pytest.fixture(scope="module")
def answered(tmp_path_factory, random_spells, trained):
    """Two nights; the person asked about (on ALV's list, with SH spells SH may not disclose) and a
    neighbour on the same list whose case numbers and review note are planted to be recognisable."""
    tmp = tmp_path_factory.mktemp("info")
    cfg = test_reviews.deployment(tmp, random_spells, trained, worklist={"disclose_institutions": ["IV"]},
                                  deployment={"contact": CONTACT})
    first = run_nightly(cfg, as_of=NIGHTS[1], progress=False)
    listed = first.worklists["ALV"]["person_id"].astype(str).tolist()
    sh = set(random_spells.loc[random_spells["institution"].astype(str) == "SH", "person_id"].astype(str))
    person = next(p for p in listed if p in sh)
    neighbour = next(p for p in listed if p != person)
    spells = random_spells.copy()
    spells["case_id"] = spells["case_id"].astype(object)
    nb = (spells["person_id"].astype(str) == neighbour).to_numpy()
    spells.loc[nb, "case_id"] = [f"ALV-NB{i:03d}" for i in range(int(nb.sum()))]
    write_parquet_atomic(spells, tmp / "exports" / "spells.parquet")
    for night in NIGHTS:
        run_nightly(cfg, as_of=night, progress=False)
    history = HistoryStore(tmp / "history")
    mine = spells[spells["person_id"].astype(str) == person]
    alv_case = mine.loc[mine["institution"].astype(str) == "ALV", "case_id"].astype(str).iloc[0]
    sh_case = mine.loc[mine["institution"].astype(str) == "SH", "case_id"].astype(str).iloc[0]
    reviews = pd.DataFrame([
        ("ALV", person, alv_case, "2023-06-29", "not_suitable", "IIZ ALV", OWN_NOTE, True, "2023-06-28", "medium"),
        ("SH", person, sh_case, "2023-06-29", "other", "Fallführung SH", None, False, "2023-06-28", "low"),
        ("ALV", neighbour, "ALV-NB000", "2023-06-29", "data_error", "IIZ ALV", NEIGHBOUR_NOTE, True, "2023-06-28",
         "medium"),
    ], columns=list(REVIEW_COLUMNS))
    for c in ("review_date", "list_as_of"):
        reviews[c] = pd.to_datetime(reviews[c]).astype("datetime64[s]")
    history.write_reviews(reviews)
    doc = information_request(cfg, person=person, institution="ALV", language="de")
    return cfg, spells, person, neighbour, history, doc


def test_the_document_holds_exactly_the_persons_rows(answered):
    cfg, spells, person, _, history, doc = answered
    mine = spells[spells["person_id"].astype(str) == person]
    # registrations: every row of the person, no other, against a direct filter
    got = sorted(zip(doc.registrations["institution"], doc.registrations["start_date"], strict=True))
    want = sorted(zip(mine["institution"].astype(str), pd.to_datetime(mine["start_date"]).dt.date, strict=True))
    assert got == want and set(doc.registrations["source"]) == {"all"}
    # case numbers: ALV's own and the disclosed IV's shown, the others withheld
    inst = doc.registrations["institution"]
    shown = doc.registrations.loc[inst.isin(["ALV", "IV"]), "case_id"].tolist()
    assert shown == [str(c) for c in mine.sort_values(["start_date", "institution"], kind="stable").loc[
        mine["institution"].astype(str).isin(["ALV", "IV"]), "case_id"]]
    assert not set(doc.registrations.loc[~inst.isin(["ALV", "IV"]), "case_id"]) & set(mine["case_id"].astype(str))
    # scores and lists: every night the history holds for them
    scores = history.read("scores")
    scores = scores[scores["person_id"].astype(str) == person]
    assert [d.isoformat() for d in doc.scores["as_of"]] == [t.date().isoformat() for t in scores["as_of"]]
    assert doc.scores["risk"].tolist() == pytest.approx(scores["risk"].tolist())
    lists = history.read("worklists")
    lists = lists[lists["person_id"].astype(str) == person].sort_values(["as_of", "institution"])
    assert list(zip(doc.lists["institution"], doc.lists["rank"], strict=True)) == list(
        zip(lists["institution"].astype(str), lists["rank"], strict=True))
    assert len(doc.lists) >= len(NIGHTS) and (doc.lists["reasons"] != "").all()
    # reviews: theirs, the SH case number withheld
    assert sorted(doc.reviews["institution"]) == ["ALV", "SH"]
    assert doc.reviews.loc[doc.reviews["institution"] == "SH", "case_id"].iloc[0] == "(bei dieser Institution erfragen)"
    assert len(doc.flags) == 1


def test_nothing_of_anyone_else_reaches_the_document(answered, tmp_path):
    cfg, spells, person, neighbour, _, doc = answered
    page = doc.save(tmp_path).read_text(encoding="utf-8")
    theirs = spells[spells["person_id"].astype(str) == neighbour]
    assert len(theirs) and all(c.startswith("ALV-NB") for c in theirs["case_id"])
    for case in theirs["case_id"]:
        assert not _token(case).search(page), case
    assert NEIGHBOUR_NOTE not in page and OWN_NOTE in page
    assert not _token(person).search(page) and not _token(neighbour).search(page)
    mine = spells[spells["person_id"].astype(str) == person]
    inst = mine["institution"].astype(str)
    for case in mine.loc[inst.isin(["ALV", "IV"]), "case_id"].astype(str):
        assert _token(case).search(page), case
    for case in mine.loc[~inst.isin(["ALV", "IV"]), "case_id"].astype(str):
        assert not _token(case).search(page), case
    # nobody else's case number of any institution: every case id on the page is the person's
    others = set(spells.loc[spells["person_id"].astype(str) != person, "case_id"].astype(str))
    on_page = set(re.findall(r"(?<![\w-])[A-Z]{2,4}-[A-Z0-9]+(?![\w-])", page))
    assert not on_page & others


@pytest.mark.parametrize("number", ["756 66048 76470", "756.66.04.87.64.70", "756.6604.8764.71"])
def test_an_ahv_number_in_any_grouping_stored_earlier_never_reaches_the_document(answered, tmp_path, number):
    """A note stored before the import refused other groupings (or a mistyped check digit) went into the
    document handed to the person: the last guard let it through."""
    import dataclasses

    from iizrisk.errors import RawIdentifierError

    *_, doc = answered
    planted = dataclasses.replace(doc, reviews=doc.reviews.assign(note=f"Rückruf {number}"))
    with pytest.raises(RawIdentifierError) as err:
        planted.save(tmp_path)
    assert "6604" not in str(err.value) and not list(tmp_path.iterdir())


def test_the_reasons_are_reworded_in_the_persons_language(answered):
    cfg, spells, person, _, history, doc = answered
    settings = Settings.load(cfg)
    doc_fr = information_request(cfg, person=person, institution="ALV", language="fr")
    assert doc_fr.lists["reasons"].tolist() != doc.lists["reasons"].tolist()
    assert "mois" in doc_fr.lists["reasons"].iloc[-1]
    # re-worded from the codes and the values recomputed at that night, the German words are the list's own
    mine = spells[spells["person_id"].astype(str) == person]
    night = NIGHTS[-1]
    row = _published_row(settings.resolve(settings.output.dir) / night / "worklists" / "ALV.parquet",
                         set(mine.loc[mine["institution"].astype(str) == "ALV", "case_id"].astype(str)))
    codes = [row[f"reason_{j}"] for j in (1, 2, 3) if isinstance(row[f"reason_{j}"], str)]
    stored = [row[f"reason_{j}_text"] for j in (1, 2, 3) if isinstance(row[f"reason_{j}_text"], str)]
    from iizrisk.model import read_manifest

    manifest = read_manifest(settings.resolve(settings.model.dir))
    again = _reasons_in(mine, None, pd.Timestamp(night).date(), codes, stored, manifest, "de", {"language": "fr"})
    assert codes and again == stored
    # the text display speaks French too: headers, yes/no and risks as the document shows them
    shown = doc_fr.summary_text()
    assert "Risque" in shown or "risque" in shown
    assert not any(w in shown.split() for w in ("True", "False", "risk_band", "case_id", "NaN", "None")), shown


def test_the_document_names_the_contact_and_refuses_without_one(answered, tmp_path):
    cfg, spells, person, _, _, doc = answered
    assert CONTACT in doc.to_html()
    s = Settings.load(cfg)
    s.deployment.contact = None
    with pytest.raises(ConfigError, match=r"\[deployment\] contact"):
        information_request(s, person=person, institution="ALV")


def test_the_command_writes_one_document_and_guards_the_person(answered, tmp_path, capsys):
    cfg, spells, person, _, _, _ = answered
    assert main(["information-request", str(cfg), "--person", person, "--institution", "ALV",
                 "--out", str(tmp_path / "a"), "--language", "it"]) == 0
    page = (tmp_path / "a" / INFORMATION_FILE).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and 'lang="it"' in page and CONTACT in page
    assert person not in capsys.readouterr().out
    ahv = "756.1234.5678.97"
    assert main(["information-request", str(cfg), "--person", ahv, "--institution", "ALV",
                 "--out", str(tmp_path / "b")]) == 2  # a usage error, as an AHV number in --reason
    err = capsys.readouterr().err
    assert ahv not in err and "pseudonymise" in err and not (tmp_path / "b").exists()
    if person != person.upper():  # pasted in capitals from a spreadsheet: said so, not a bare refusal
        assert main(["information-request", str(cfg), "--person", person.upper(), "--institution", "ALV",
                     "--out", str(tmp_path / "b")]) == 2
        err = capsys.readouterr().err
        assert "matches in lower case" in err and person.upper() not in err and not (tmp_path / "b").exists()
    assert main(["information-request", str(cfg), "--person", "Meier", "--institution", "ALV",
                 "--out", str(tmp_path / "b")]) == 2
    assert "Meier" not in capsys.readouterr().err
    # a pseudonym that matches nothing: stop, unless the office confirms that nothing is held
    assert main(["information-request", str(cfg), "--person", "p99999999", "--institution", "ALV",
                 "--out", str(tmp_path / "b")]) == 1
    assert not (tmp_path / "b").exists()
    assert main(["information-request", str(cfg), "--person", "p99999999", "--institution", "ALV",
                 "--out", str(tmp_path / "b"), "--nothing-held"]) == 0
    assert "iizrisk bearbeitet keine Daten über Sie." in (tmp_path / "b" / INFORMATION_FILE).read_text("utf-8")


@pytest.mark.parametrize("lang", ["de", "fr", "it", "en"])
def test_interventions_are_named_in_the_persons_language(lang):
    """The German document showed the code joint_assessment; every type of the contract has a name in every
    language, and a type outside it (an institution's own) is shown as it is."""
    import json
    from importlib.resources import files

    from iizrisk._texts import load_locale
    from iizrisk.information import _interventions

    schema = json.loads(files("iizrisk").joinpath("schemas", "interventions.json").read_text(encoding="utf-8"))
    types = next(f for f in schema["fields"] if f["name"] == "type")["constraints"]["enum"]
    names = load_locale(lang)["intervention_types"]
    assert sorted(names) == sorted(types) and all(names[t] != t for t in types)
    iv = pd.DataFrame({"person_id": ["p1", "p1", "p2", "p1"], "type": ["joint_assessment", "other", "other", "own"],
                       "date": pd.to_datetime(["2023-01-05", "2022-03-01", "2023-01-01", "2023-02-01"]),
                       "institutions": ["ALV+IV", None, "SH", "SH"]})
    out = _interventions(iv, "p1", lang)
    assert out["type"].tolist() == [names["other"], names["joint_assessment"], "own"]
