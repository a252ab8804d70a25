"""Model cards: content from the manifest, protected attributes, the audit section, languages, files."""

from __future__ import annotations

import json
import re
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from iizrisk.fairness import FairnessAudit, FairnessGapWarning, labelled_period
from iizrisk.features import PointInTimeFeatures, ProtectedAttributeWarning
from iizrisk.modelcard import CARD_FILES, ModelCard, write_model_card

AS_OF = "2023-02-28"


def with_attributes(spells: pd.DataFrame, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = pd.unique(spells["person_id"])
    attr = pd.DataFrame({"person_id": ids, "sex": rng.choice(["F", "M"], len(ids)),
                         "nationality_group": rng.choice(["CH", "EU_EFTA", "THIRD"], len(ids), p=[.6, .25, .15]),
                         "canton": rng.choice(["ZH", "BE", "VD"], len(ids))})
    out = spells.merge(attr, on="person_id", how="left")
    out["person_id"] = out["person_id"].astype("str")
    return out


KEY = b"a model signing key of the model card tests (32+ bytes)"

@pytest.fixture(scope="module")
def spells(random_spells):
    return with_attributes(random_spells)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, spells):
    from iizrisk.model import save_model, train

    model, _ = train(spells, outcome="revolving_door", compare=False, max_train_rows=4000, model="logistic")
    return model, save_model(model, tmp_path_factory.mktemp("card") / "model", key=KEY)


@pytest.fixture(scope="module")
def audit(trained, spells):
    data = labelled_period(trained[0], spells, AS_OF)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessGapWarning)
        a = FairnessAudit(capacity=100, n_bootstrap=30).fit(data)
    a.as_of_ = AS_OF
    return a, data


def test_card_files_and_content(trained, tmp_path):
    model, model_dir = trained
    paths = write_model_card(model_dir, tmp_path)
    assert {k: p.name for k, p in paths.items()} == CARD_FILES
    card = json.loads(paths["json"].read_text(encoding="utf-8"))
    manifest = json.loads((model_dir / "manifest.json").read_text())
    # intended use: a hint for a human review, never an automated decision
    iu = card["intended_use"]
    assert "never an automated decision" in iu["statement"]
    assert {"nDSG Art. 21", "GDPR Art. 22", "Art. 35a AVG", "Art. 32 ATSG"} <= set(iu["legal_basis"])
    assert any("decisions on benefits" in x for x in iu["not_intended_for"])
    # data period and population, outcome, metrics, fingerprints and versions from the manifest
    assert card["data"]["periods"] == manifest["training"]["periods"]
    assert card["data"]["observed_until"] == manifest["training"]["observed_until"]
    assert "spell open at a month end" in card["data"]["population"]
    assert card["outcome"]["name"] == "revolving_door" and "BFS" in card["outcome"]["description"]
    assert card["metrics"] == manifest["metrics"]
    assert card["calibration"] == {"method": "isotonic", "ece": manifest["metrics"]["logistic"]["ece"],
                                   "brier": manifest["metrics"]["logistic"]["brier"]}
    assert card["fingerprints"]["model_sha256"] == manifest["model_sha256"]
    assert card["fingerprints"]["data_fingerprint"] == manifest["training"]["data_fingerprint"]
    assert card["versions"] == manifest["versions"]
    # every feature with its description from the catalogue
    names = [f["name"] for f in card["features"]]
    assert names == [f["name"] for f in manifest["features"]] == list(model.feature_names_in_)
    assert all(f["description"] and f["unit"] for f in card["features"])
    # protected attributes: none are inputs by default, and the card says so
    prot = card["protected_attributes"]
    assert prot["used_as_inputs"] == [] and prot["include_protected"] is False
    # IV inputs stand for disability: the card says so (it used to say "no protected attribute"); age is
    # no input by default (a protected ground, left out on the evidence of benchmarks/fairness_age.py)
    assert prot["configured"] == ["sex", "nationality_group"] and "Inputs related to a protected ground" in prot["statement"]
    assert "age" not in prot["related_inputs"] and "age" not in model.feature_names_in_
    assert card["fairness"] is None
    md = paths["md"].read_text(encoding="utf-8")
    for heading in ("## Intended use", "## Features", "## Metrics", "## Calibration", "## Known limitations",
                    "## Fingerprints and versions", "## Protected attributes"):
        assert heading in md
    assert "iizrisk audit" in md  # no audit yet: says how to get one
    assert manifest["model_sha256"] in md


def test_html_is_self_contained(trained, audit, tmp_path):
    a, _ = audit
    paths = write_model_card(trained[1], tmp_path, audit=a)
    html = paths["html"].read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert "data:image/png;base64," in html  # the audit plot is embedded
    assert not re.search(r"""(src|href)=['"](?!data:)""", html), "external resources"
    assert "<script" not in html and "<link" not in html


def test_card_is_written_from_the_manifest_only(trained, tmp_path):
    """A broken model file does not matter: the card never unpickles the model."""
    shutil.copytree(trained[1], tmp_path / "model")
    (tmp_path / "model" / "model.joblib").write_bytes(b"not a pickle")
    paths = write_model_card(tmp_path / "model", tmp_path / "card")
    assert json.loads(paths["json"].read_text())["model"]["kind"] == "logistic"


def test_card_beside_the_model_keeps_it_loadable(trained):
    """Integration at training time: the card files in the model directory do not break loading."""
    from iizrisk.model import load_model

    write_model_card(trained[1], trained[1])
    assert load_model(trained[1], key=KEY).outcome == "revolving_door"


def test_audit_section(trained, audit, tmp_path):
    a, data = audit
    paths = write_model_card(trained[1], tmp_path, audit=a)
    card = json.loads(paths["json"].read_text())
    fair = card["fairness"]
    assert fair["as_of"] == AS_OF and fair["flagged"] == 100 and fair["min_cell_size"] == 5
    assert len(fair["summary"]) == len(a.summary)
    for rec in fair["summary"]:
        for c in ("n", "n_positive", "n_flagged"):
            assert rec[c] is None or rec[c] == 0 or rec[c] >= 5
    assert len(fair["gaps_exceeding"]) == len(a.flagged_gaps_)
    md = paths["md"].read_text()
    assert "## Metrics per group (fairness audit)" in md and "· = " not in md
    assert "cells with fewer than 5 people are suppressed (·)" in md
    # no pseudonym of the audited people appears in the card (the HTML adds only a base64 plot)
    text = paths["md"].read_text(encoding="utf-8") + paths["json"].read_text(encoding="utf-8")
    html = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", paths["html"].read_text(encoding="utf-8"))
    ids = set(data["person_id"])
    assert not {t for t in re.findall(r"\bp\d+\b", text + html) if t in ids}


def test_protected_attributes_enabled_are_warned_and_recorded(spells, tmp_path):
    from iizrisk.model import save_model, train

    with pytest.warns(ProtectedAttributeWarning):
        model, _ = train(spells, outcome="revolving_door", compare=False, max_train_rows=3000, model="logistic",
                         first_as_of="2019-06-30", features=PointInTimeFeatures(include_protected=True))
    assert {"sex_female", "nationality_eu_efta", "nationality_third"} <= set(model.feature_names_in_)
    d = save_model(model, tmp_path / "model")
    card = json.loads(write_model_card(d, tmp_path / "card")["json"].read_text())
    prot = card["protected_attributes"]
    assert prot["include_protected"] is True
    assert prot["used_as_inputs"] == ["sex_female", "nationality_eu_efta", "nationality_third"]
    assert prot["statement"].startswith("WARNING: protected attributes are model inputs")
    html = (tmp_path / "card" / "model_card.html").read_text()
    assert "class='warn'" in html and "sex_female" in html
    # the same from the fitted model in memory (notebooks)
    assert ModelCard.from_model(model).protected_inputs() == prot["used_as_inputs"]


def test_a_deployments_own_protected_attributes(trained):
    """A deployment that declares education protected sees the education features named in the card."""
    card = ModelCard.from_model(trained[1], protected_attributes=["sex", "nationality_group", "education"])
    used = card.protected_inputs()
    assert used and all(n.startswith("education_") for n in used)
    assert "WARNING" in card.to_dict()["protected_attributes"]["statement"]


@pytest.mark.parametrize("lang, words", [("de", ["## Verwendungszweck", "Art. 21 DSG", "Am Stichtag"]),
                                         ("fr", ["## Usage prévu", "art. 21 LPD"]),
                                         ("it", ["## Uso previsto", "art. 21 LPD"])])
def test_languages(trained, lang, words):
    md = ModelCard.from_model(trained[1], language=lang).to_markdown()
    for w in words:
        assert w in md


def test_bad_language_and_unfitted_audit(trained):
    with pytest.raises(ValueError, match="language"):
        ModelCard.from_model(trained[1], language="rm")
    with pytest.raises(ValueError, match="fitted FairnessAudit"):
        ModelCard({"model": "logistic"}, audit=FairnessAudit())


def test_missing_manifest_is_a_model_error(tmp_path):
    from iizrisk.errors import ModelError

    with pytest.raises(ModelError, match="manifest.json"):
        write_model_card(tmp_path, tmp_path / "card")


def test_in_memory_model_and_repr(trained):
    model, _ = trained
    card = ModelCard.from_model(model)  # loaded models carry their manifest
    assert card.to_dict()["fingerprints"]["model_sha256"] is None  # trained in memory, not loaded
    html = card._repr_html_()
    assert "never an automated decision" in html and "ROC AUC" in html


def test_writing_twice_gives_identical_files(trained, audit, tmp_path):
    a, _ = audit
    first = {k: p.read_bytes() for k, p in write_model_card(trained[1], tmp_path / "a", audit=a).items()}
    second = {k: p.read_bytes() for k, p in write_model_card(trained[1], tmp_path / "b", audit=a).items()}
    assert first == second


def test_the_card_names_every_input_related_to_a_protected_ground():
    """Age is an input (a protected ground, Art. 8(2) BV); IV inputs stand for disability, MIG for origin."""
    from iizrisk.features import feature_specs
    from iizrisk.modelcard import ModelCard

    names = [s.name for s in feature_specs(include_age=True)]
    card = ModelCard({"model": "boosting", "outcome": "revolving_door",
                      "features": [{"name": n} for n in names]}, language="de")
    prot = card.to_dict()["protected_attributes"]
    related = prot["related_inputs"]
    assert related["age"] == {"attribute": "age_band", "relation": "direct"}
    want_iv = {n for n in names if "iv" in n.split("_")}
    assert {n for n, r in related.items() if r["attribute"] == "disability"} == want_iv and want_iv
    assert related["open_mig"]["attribute"] == "nationality_group"
    assert "age (Altersgruppe, direkt)" in prot["statement"] and "Kein geschütztes Merkmal" not in prot["statement"]
    without = ModelCard({"model": "boosting", "outcome": "revolving_door",
                         "features": [{"name": "n_spells_6m"}]}, language="de").to_dict()
    assert without["protected_attributes"]["related_inputs"] == {}


@pytest.mark.parametrize("lang", ["de", "fr", "it"])
def test_the_card_has_no_english_labels_and_swiss_numbers(trained, audit, lang):
    """Every table header and label in the card's language (no code, no English word), counts with the
    language's thousands separator, and the disparities table with ratios, intervals and verdicts."""
    from iizrisk._texts import load_locale, swiss_number

    a, _ = audit
    card = ModelCard.from_model(trained[1], audit=a, language=lang)
    md = card.to_markdown()
    english = {str(v) for table in ("columns", "facts", "verdicts", "attributes", "feature_groups")
               for v in load_locale("en")["card"][table].values()}
    own = {str(v) for table in ("columns", "facts", "verdicts", "attributes", "feature_groups")
           for v in load_locale(lang)["card"][table].values()}
    foreign = english - own
    lines = md.splitlines()
    headers = [line for i, line in enumerate(lines[:-1]) if line.startswith("| ") and lines[i + 1].startswith("|---")]
    cells = [c.strip() for line in headers for c in line.strip("|").split("|")]
    labels = [line.strip("|").split("|")[0].strip() for line in lines
              if line.startswith("| ") and not line.startswith("|---") and line not in headers]
    facts = labels[: len(card._facts(card.to_dict()))]
    for c in cells + facts:
        assert not re.fullmatch(r"[a-z]+(_[a-z0-9]+)+", c), f"code {c!r} as a label in the {lang} card"
        assert c not in foreign, f"English label {c!r} in the {lang} card"
    assert not re.search(r"\|\s*yes\s*\|", md)
    d = card.to_dict()["fairness"]
    assert swiss_number(d["n"], lang) in md and (d["n"] < 1000 or swiss_number(d["n"], "en") not in md)
    judged = a.gaps[a.gaps["verdict"].isin(["exceeds", "cannot_tell"])]
    header, rows = card._gap_rows()
    assert {"ratio", "ratio_lo", "ratio_hi", "verdict"} <= set(header) and len(rows) == len(judged)
    words = load_locale(lang)["card"]["verdicts"]
    assert {r[header.index("verdict")] for r in rows} <= {words["exceeds"], words["cannot_tell"]}
    if len(judged):
        assert words["cannot_tell" if "cannot_tell" in set(judged["verdict"]) else "exceeds"] in md


# --------------------------------------------------------------------------- human oversight
def oversight_history(seed: int = 4):
    """Two months of nights: a large institution (ALV: most figures published) and a small one (IV: its
    small cells hidden); reviews of listed people, overrides and people left unreviewed."""
    from iizrisk.oversight import oversight

    rng = np.random.default_rng(seed)
    nights = pd.date_range("2024-01-08", "2024-02-26", freq="7D")
    rows = []
    for inst, n_people, per_night in (("ALV", 60, 25), ("IV", 9, 4)):
        people = [f"{inst}{i:03d}" for i in range(n_people)]
        rows += [(inst, p, night) for night in nights for p in rng.choice(people, per_night, replace=False)]
    lists = pd.DataFrame(rows, columns=["institution", "person_id", "as_of"])
    decisions = ["joint_assessment_proposed", "not_suitable", "other"]
    picked = lists.sample(frac=0.35, random_state=seed).drop_duplicates(["institution", "person_id"])
    listed = rng.random(len(picked)) < 0.85
    reviews = pd.DataFrame({
        "institution": picked["institution"].to_numpy(),
        "person_id": np.where(listed, picked["person_id"].to_numpy(), [f"X{i}" for i in range(len(picked))]),
        "review_date": picked["as_of"].to_numpy() + pd.to_timedelta(rng.integers(1, 12, len(picked)), unit="D"),
        "decision": rng.choice(decisions, len(picked)), "listed": listed,
        "band_at_review": rng.choice(["high", "medium", "low"], len(picked))})
    return oversight(lists, reviews, min_cell_size=5, decisions=tuple(decisions))


MANIFEST = {"model": "logistic", "outcome": "revolving_door", "horizon_months": 12}


def _section(md: str, title: str) -> list[str]:
    """The Markdown table rows (cells stripped) of the section headed ``## title``."""
    lines = md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0].splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines
            if line.startswith("| ") and not line.startswith("|---")]


@pytest.mark.parametrize("lang", ["de", "fr", "it", "en"])
def test_the_oversight_section_shows_the_suppressed_summary(lang):
    """The card's 'Human oversight' section: the oversight summary's figures, per institution and month, in
    the card's language (Markdown, HTML, JSON), with the small cells hidden as in the summary."""
    from iizrisk._texts import load_locale, text
    from iizrisk.fairness import _fmt

    ov = oversight_history()
    summary = ov.summary
    hidden = summary.drop(columns=["institution", "month"]).isna()
    assert hidden.to_numpy().any() and (~hidden).to_numpy().any()  # the example hides some cells, not all
    card = ModelCard(MANIFEST, language=lang, oversight=ov)
    d = card.to_dict()["oversight"]
    assert d["attached"] and d["period"] == ["2024-01", "2024-03"]
    want = summary.astype(object).where(summary.notna(), None).to_dict("records")
    assert d["rows"] == want
    assert ModelCard(MANIFEST, language=lang, oversight=summary).to_dict()["oversight"] == d
    # the Markdown table: one row per institution and month, the summary's figures in the section's columns
    title = load_locale(lang)["card"]["oversight"]
    head, *rows = _section(card.to_markdown(), title)
    heads, values = card._oversight_rows()
    assert head == heads and len(rows) == len(summary)
    cols = ["institution", "month", "listed", "reviewed", "median_days_to_review",
            *[c for c in summary.columns if c.startswith("decision:")], "override_share", "agreement_share",
            "repeatedly_listed_unreviewed"]
    expected = [[_fmt(v, lang, 1) for v in row]
                for row in summary[cols].astype(object).where(summary[cols].notna(), None).values.tolist()]
    assert rows == expected
    assert sum(c == "·" for r in rows for c in r) == int(summary[cols].isna().to_numpy().sum())
    # headers in the card's language: decisions by type named by the review catalogue
    words = load_locale(lang)["review"]["decisions"]
    assert f"{text('table.columns.decision', lang)} ({words['not_suitable']})" in head
    assert text("table.columns.median_days_to_review", lang) in head
    html = card.to_html()
    assert f"<h2>{title}</h2>" in html.replace("&#x27;", "'")
    for r in expected:  # the cells, numbers right-aligned (class "n") and words not
        assert "".join(f"<td>{c}</td>" for c in r) in html.replace("&#x27;", "'").replace(' class="n"', "")
    assert f'<td>{expected[0][0]}</td><td>{expected[0][1]}</td><td class="n">{expected[0][2]}</td>' in html


@pytest.mark.parametrize("lang", ["de", "fr", "it", "en"])
def test_without_oversight_figures_the_section_says_so(lang):
    from iizrisk._texts import load_locale

    words = load_locale(lang)["card"]
    card = ModelCard(MANIFEST, language=lang)
    md = card.to_markdown()
    assert f"## {words['oversight']}\n\n{words['no_oversight']}" in md
    assert card.to_dict()["oversight"] == {"attached": False, "statement": words["no_oversight"], "period": None,
                                           "rows": []}
    assert "<p class='warn'>" in card.to_html()
    empty = ModelCard(MANIFEST, language=lang, oversight=oversight_history().summary.iloc[:0])
    assert empty.to_dict()["oversight"]["statement"] == words["oversight_empty"]


def test_the_card_refuses_unsuppressed_oversight_figures():
    ov = oversight_history()
    with pytest.raises(ValueError, match="unsuppressed"):
        ModelCard(MANIFEST, oversight=ov.table)
    with pytest.raises(TypeError, match="Oversight"):
        ModelCard(MANIFEST, oversight=[1, 2])


# --------------------------------------------------------------------------- the fairness figure and verdicts
#: the card's words for a disparity the rule judges beyond its bounds, above or below
OUTSIDE = {"de": "ausserhalb der Regel", "fr": "hors de la règle", "it": "fuori dalla regola", "en": "outside the rule"}
PLAIN_MANIFEST = {"model": "logistic", "outcome": "revolving_door", "horizon_months": 12, "features": []}


def planted_disparities(n: int = 12_000, seed: int = 0) -> pd.DataFrame:
    """Third-country nationals flagged three times as often as the Swiss, people of 65+ a tenth as often
    as the reference age band and almost never with the outcome: their flag rate is published, their
    recall and precision are hidden (too few flagged with the outcome)."""
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"sex": rng.choice(["F", "M"], n),
                      "nationality_group": rng.choice(["CH", "EU_EFTA", "THIRD"], n, p=[.6, .28, .12]),
                      "age_band": rng.choice(["<25", "25-34", "35-49", "50-64", "65+"], n,
                                             p=[.15, .3, .25, .2, .1])})
    older = (d["age_band"] == "65+").to_numpy()
    d["flagged"] = rng.random(n) < np.where(d["nationality_group"] == "THIRD", 0.15, 0.05) * np.where(older, 0.1, 1)
    d["score"] = rng.random(n)
    d["label"] = rng.random(n) < np.where(older, 0.02, 0.2)
    d["person_id"] = [f"p{i}" for i in range(n)]
    return d


@pytest.fixture(scope="module")
def planted_audit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessGapWarning)
        return FairnessAudit(groups=["sex", "nationality_group", "age_band"], flagged_column="flagged",
                             n_bootstrap=100).fit(planted_disparities())


def _boxes_overlap(a, b) -> bool:
    """Whether two display boxes share more than an edge (half a pixel of tolerance)."""
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5) and (min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5)


@pytest.mark.parametrize("lang", ["de", "fr", "it", "en"])
def test_the_fairness_figure_labels_every_point_with_its_own_group(planted_audit, lang):
    """Each panel (flag rate, recall, precision) has its own groups: the label beside a point is that point's
    group (a shared y axis once put the last panel's labels on every panel), its colour is its verdict's,
    the legend names the colours, and no text runs into another."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PathCollection
    from matplotlib.colors import to_rgba

    from iizrisk._texts import load_locale, text
    from iizrisk.fairness import VERDICT_COLOURS, _in_words

    a = planted_audit
    rows = {m: a.plotted_rows(m) for m in ("flag_rate", "recall", "precision")}
    assert "65+" in set(rows["flag_rate"]["group"]) and "65+" not in set(rows["recall"]["group"])
    fig = ModelCard(PLAIN_MANIFEST, audit=a, language=lang)._figure()
    panels = [ax for ax in fig.axes if any(isinstance(c, PathCollection) for c in ax.collections)]
    assert len(panels) == len(rows)
    for ax, (metric, g) in zip(panels, rows.items(), strict=True):
        assert ax.get_xlabel() == text("audit.plot_difference", lang, metric=load_locale(lang)["card"]["columns"][metric])
        words = _in_words(g[["attribute", "group", "reference"]], lang)
        want = {text("audit.plot_vs", lang, attribute=at, group=gr, reference=rf): (float(x), v)
                for at, gr, rf, x, v in zip(words["attribute"], words["group"], words["reference"],
                                            g["difference"], g["verdict"], strict=True)}
        assert len(want) == len(g)
        ticks = {round(float(y)): t.get_text() for y, t in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)}
        assert sorted(ticks.values()) == sorted(want)
        points = next(c for c in ax.collections if isinstance(c, PathCollection))
        offsets, colours = points.get_offsets(), points.get_facecolors()
        assert len(offsets) == len(g)
        for (x, y), colour in zip(offsets, colours, strict=True):
            difference, verdict = want[ticks[round(float(y))]]
            assert x == pytest.approx(difference)
            assert tuple(colour) == pytest.approx(to_rgba(VERDICT_COLOURS[verdict]))
    (legend,) = fig.legends
    shown = pd.concat(rows.values())["verdict"]
    assert [t.get_text() for t in legend.get_texts()] == [load_locale(lang)["card"]["verdicts"][v]
                                                          for v in ("exceeds", "cannot_tell", "within", "not_judged")
                                                          if v in set(shown)]
    # nothing overlaps: the tick labels, axis labels and legend texts, nor a text with another panel
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    texts = [(i, t) for i, ax in enumerate(panels)
             for t in [ax.xaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()]]
    texts += [(-1, t) for t in legend.get_texts()]
    boxes = [(i, t.get_text(), t.get_window_extent(renderer)) for i, t in texts if t.get_visible() and t.get_text()]
    for k, (i, s, box) in enumerate(boxes):
        for _, s2, box2 in boxes[k + 1:]:
            assert not _boxes_overlap(box, box2), f"{s!r} overlaps {s2!r} in the {lang} figure"
        for j, ax in enumerate(panels):
            if j != i:
                assert not _boxes_overlap(box, ax.get_window_extent(renderer)), f"{s!r} runs into panel {j}"


@pytest.mark.parametrize("lang", ["de", "fr", "it", "en"])
def test_a_ratio_below_the_rule_is_outside_it_not_exceeding(planted_audit, lang):
    """People of 65+ flagged at a tenth of the reference's rate: the card says "outside the rule", not
    "exceeds"; the machine code stays "exceeds"."""
    a = planted_audit
    row = a.gaps[(a.gaps["group"] == "65+") & (a.gaps["metric"] == "flag_rate")].iloc[0]
    assert row["verdict"] == "exceeds" and row["ratio_hi"] < 0.8
    card = ModelCard(PLAIN_MANIFEST, audit=a, language=lang)
    header, rows = card._gap_rows()
    verdicts = {(r[header.index("group")], r[header.index("metric")]): r[header.index("verdict")] for r in rows}
    metric = card._headers(["flag_rate"])[0]
    assert verdicts[("65+", metric)] == OUTSIDE[lang]
    assert OUTSIDE[lang] in card.to_markdown()
    summary_header, summary = card._audit_rows()
    flagged = {r[summary_header.index("group")]: r[summary_header.index("gap_flag")] for r in summary}
    assert flagged["65+"] is True
    assert {r["verdict"] for r in card.to_dict()["fairness"]["gaps_exceeding"]} == {"exceeds"}


def test_the_french_card_sets_a_space_before_the_colon():
    """French typography: "Fiche du modèle : ...", "Usages exclus :" (a no-break space before the colon);
    the other languages keep "Model card: ..."."""
    from iizrisk._texts import text

    for lang in ("fr", "de", "it", "en"):
        card = ModelCard(PLAIN_MANIFEST, language=lang)
        md, html, short = card.to_markdown(), card.to_html(), card._repr_html_()
        colon = "\u00a0:" if lang == "fr" else ":"
        labels = [text(f"card.{k}", lang) for k in ("title", "not_for", "configured")]
        for label in labels:
            assert f"{label}{colon}" in md and f"{label}{colon}" in html, (lang, label)
            if lang == "fr":
                assert f"{label}:" not in md and f"{label}:" not in html and f"{label} :" not in md, label
        assert f"{text('card.months', lang)}){colon} " in md and f"{labels[0]}</b>{colon} " in short
    md = ModelCard(PLAIN_MANIFEST, language="fr").to_markdown()
    assert "les sorties vers l'emploi, l'étranger ou nulle part se ressemblent" in md


@pytest.mark.parametrize("lang", ["de", "fr", "it", "en"])
def test_the_card_says_what_the_model_learnt_from_when_training_sampled(lang):
    """The card said "one snapshot per person and month" while the model learnt from 98,546 of 430,000:
    the samples of persons (--max-persons) and of rows (max_train_rows) are stated; without them, nothing."""
    from iizrisk._texts import swiss_number, text

    training = {"sample": {"persons": 200_000, "of_persons": 3_700_000, "fraction": 0.0547},  # 5.4 % drawn
                "fit_sample": {"rows": 150_000, "of_rows": 431_250, "max_train_rows": 150_000}}
    md = ModelCard({**PLAIN_MANIFEST, "training": training}, language=lang).to_markdown()
    assert text("card.sample_persons", lang, persons=swiss_number(200_000, lang),
                of=swiss_number(3_700_000, lang), share="5.4 %") in md
    assert text("card.sample_rows", lang, rows=swiss_number(150_000, lang), of=swiss_number(431_250, lang)) in md
    plain = ModelCard(PLAIN_MANIFEST, language=lang).to_markdown()
    assert text("card.population_text", lang) in plain and "150" not in plain


def test_training_records_its_row_sample_in_the_manifest(random_spells):
    from iizrisk.model import train

    model, _ = train(random_spells, outcome="revolving_door", compare=False, max_train_rows=3000, model="logistic")
    fit = model.training_["fit_sample"]
    assert fit["rows"] == 3000 < fit["of_rows"]  # train and calibration rows come from it (minus the gap)
    assert model.training_["train_rows"] + model.training_["calibration_rows"] <= 3000
