"""Plots: each returns the Axes with the expected artists and labels on small data, suppresses small
cells of people counts, and raises no warning; the nightly HTML summary in a headless browser."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

from iizrisk import plots
from iizrisk._texts import text
from iizrisk.errors import ConfigError, ValidationError
from iizrisk.model import precision_recall_at_k

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def rows(*specs) -> pd.DataFrame:
    """Spells from (person, institution, start, end[, exit_reason]) tuples."""
    recs = [dict(zip(["person_id", "institution", "start_date", "end_date", "exit_reason"], s, strict=False))
            for s in specs]
    df = pd.DataFrame(recs)
    if "exit_reason" not in df:
        df["exit_reason"] = None
    df["start_date"] = pd.to_datetime(df["start_date"])
    df["end_date"] = pd.to_datetime(df["end_date"])
    return df


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts if t.get_gid() != "footnote"]


def footnotes(ax) -> str:
    return " ".join(t.get_text() for t in ax.texts if t.get_gid() == "footnote")


# ------------------------------------------------------------------ transitions
def test_transition_heatmap_counts_people_and_hides_small_cells():
    # 8 people ALV -> SH, 2 people ALV -> IV (hidden), 6 people SH -> IV; all in 2023
    spec = []
    for i in range(8):
        spec += [(f"a{i}", "ALV", "2023-01-01", "2023-03-31"), (f"a{i}", "SH", "2023-04-15", None)]
    for i in range(2):
        spec += [(f"b{i}", "ALV", "2023-01-01", "2023-03-31"), (f"b{i}", "IV", "2023-05-01", None)]
    for i in range(6):
        spec += [(f"c{i}", "SH", "2023-01-01", "2023-06-30"), (f"c{i}", "IV", "2023-07-01", None)]
    spells = rows(*spec)
    ax = plots.plot_transitions(spells, 2023)
    assert isinstance(ax, Axes) and len(ax.images) == 1
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [t.get_text() for t in ax.get_yticklabels()] == ["ALV", "IV", "SH"]
    cells = [(r, c) for r in labels for c in labels]
    grid = dict(zip(cells, texts(ax), strict=True))
    assert grid[("ALV", "IV")] == "·"  # two people: suppressed
    assert grid[("ALV", "ALV")] == "–"  # no transition to the same institution
    assert "hidden" in footnotes(ax)
    # without suppression (internal use) every cell is shown; the suppressed view shows the same
    # numbers where it shows any, and only zeros or at least 5 people
    full = plots.plot_transitions(spells, 2023, min_cell_size=0, ax=plt.figure().subplots())
    exact = dict(zip(cells, texts(full), strict=True))
    assert exact[("ALV", "SH")] == "8" and exact[("SH", "IV")] == "6" and exact[("ALV", "IV")] == "2"
    assert "hidden" not in footnotes(full)
    shown = {c: v for c, v in grid.items() if v not in ("·", "–")}
    assert shown and all(exact[c] == v and (int(v) == 0 or int(v) >= 5) for c, v in shown.items())
    hidden_per_row = pd.Series([v == "·" for v in grid.values()], index=pd.MultiIndex.from_tuples(cells))
    assert (hidden_per_row.groupby(level=0).sum().isin([0, 2, 3])).all()  # never a lone hidden cell

def test_transition_heatmap_from_a_long_table_and_rates():
    t = pd.DataFrame({"from": ["ALV", "ALV", "SH", "SH", "(none)", "(none)"],
                      "to": ["ALV", "SH", "ALV", "SH", "ALV", "SH"],
                      "transitions": [0, 40, 12, 0, 300, 200], "persons": [0, 38, 12, 0, 290, 190],
                      "rate": [0.0, 0.1, 0.05, 0.0, np.nan, np.nan]})
    ax = plots.plot_transitions(t, value="rate")
    assert "10.0%" in texts(ax) and "5.0%" in texts(ax)
    assert [x.get_text() for x in ax.get_yticklabels()] == ["ALV", "SH"]  # entries left out
    ax = plots.plot_transitions(t, entries=True, ax=plt.figure().subplots())
    assert [x.get_text() for x in ax.get_yticklabels()] == ["ALV", "SH", "(none)"]
    # entries have no rate (nobody is registered at "(none)"): not shown as hidden cells, not counted
    ax = plots.plot_transitions(t, value="rate", entries=True, ax=plt.figure().subplots())
    assert texts(ax)[-2:] == ["–", "–"] and "hidden" not in footnotes(ax)
    with pytest.raises(ValueError, match="value"):
        plots.plot_transitions(t, value="share")
    with pytest.raises(ValueError, match="year"):
        plots.plot_transitions(rows(("a", "ALV", "2023-01-01", None)))


# ------------------------------------------------------------------ flows
def test_flows_count_people_per_month_and_suppress():
    spec = [(f"p{i}", "ALV", "2023-01-10", "2023-01-20") for i in range(7)]
    spec += [(f"p{i}", "ALV", "2023-01-21", "2023-01-31") for i in range(7)]  # touching: the same spell
    spec += [(f"q{i}", "ALV", "2023-02-03", None) for i in range(3)]  # 3 people: hidden
    spec += [(f"r{i}", "ALV", "2023-03-03", None) for i in range(9)]
    spec += [(f"s{i}", "SH", "2023-01-05", None) for i in range(5)]
    spec += [(f"t{i}", "SH", "2023-03-05", None) for i in range(6)]
    ax = plots.plot_flows(rows(*spec))
    assert isinstance(ax, Axes)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert list(lines) == ["ALV", "SH"]
    y = np.vstack([lines["ALV"].get_ydata(), lines["SH"].get_ydata()])
    exact = np.array([[7, 3, 9], [5, 0, 6]])  # touching rows are one spell; people, not rows
    assert np.isnan(y[0, 1])  # three people: hidden
    shown = ~np.isnan(y)
    assert (y[shown] == exact[shown]).all() and ((exact[shown] == 0) | (exact[shown] >= 5)).all()
    # no line (an institution's months, a month's institutions) with a single hidden cell
    assert not ((~shown).sum(axis=0) == 1).any() and not ((~shown).sum(axis=1) == 1).any()
    assert "hidden" in footnotes(ax)
    full = plots.plot_flows(rows(*spec), min_cell_size=0, ax=plt.figure().subplots())
    assert np.array_equal(np.vstack([ln.get_ydata() for ln in full.get_lines()]), exact)
    ax = plots.plot_flows(rows(*spec), min_cell_size=0, institutions=["SH"], ax=plt.figure().subplots())
    assert [ln.get_label() for ln in ax.get_lines()] == ["SH"]
    assert ax.get_lines()[0].get_ydata().tolist() == [5, 0, 6]


def test_flows_start_by_default_where_the_export_holds_every_registration():
    """An export holds old registrations only if still open: from 1975 the line rose from decades of zeros."""
    spec = [(f"old{i}", "IV", f"{1975 + i}-03-01", None) for i in range(3)]  # left-censored stock
    spec += [(f"p{i}", "ALV", "2019-02-10", "2019-04-30") for i in range(6)]  # the first end: 2019-04
    spec += [(f"q{i}", "ALV", "2019-05-03", None) for i in range(7)]
    ax = plots.plot_flows(rows(*spec), min_cell_size=0)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert pd.DatetimeIndex(lines["ALV"].get_xdata()).strftime("%Y-%m").tolist() == ["2019-04", "2019-05"]
    assert lines["ALV"].get_ydata().tolist() == [0, 7] and lines["IV"].get_ydata().tolist() == [0, 0]
    assert "from 2019-04, the first end of a spell: 9 earlier starts not shown" in footnotes(ax)
    ax = plots.plot_flows(rows(*spec), min_cell_size=0, start="1975-01-01", freq="year", ax=plt.figure().subplots())
    assert ax.get_lines()[1].get_ydata()[0] == 1 and "earlier starts" not in footnotes(ax)  # asked: shown
    open_only = plots.plot_flows(rows(*spec[:3]), min_cell_size=0, freq="year", ax=plt.figure().subplots())
    assert len(open_only.get_lines()[0].get_xdata()) == 3  # nothing ended: from the first start (1975-1977)


def test_flows_by_quarter_on_random_spells(random_spells):
    ax = plots.plot_flows(random_spells, start="2018-01-01", end="2019-12-31", freq="quarter")
    y = np.column_stack([ln.get_ydata() for ln in ax.get_lines()])
    assert y.shape == (8, 5) and ax.get_xlabel() == "quarter"
    shown = y[~np.isnan(y)]
    assert ((shown == 0) | (shown >= 5)).all()
    with pytest.raises(ValueError, match="freq"):
        plots.plot_flows(random_spells, freq="week")


# ------------------------------------------------------------------ timeline
def test_timeline_shows_the_point_in_time_view():
    spells = rows(("x", "ALV", "2022-01-01", "2022-05-31", "benefit_exhausted"),
                  ("x", "SH", "2022-06-01", "2022-12-31", "other"),
                  ("x", "ALV", "2023-02-01", "2023-09-30"),  # ends after T: open at T
                  ("x", "IV", "2023-08-01", None),  # starts after T: not known at T
                  ("y", "IV", "2020-01-01", None))
    ax = plots.plot_timeline(spells, "x", as_of="2023-06-30")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ALV", "SH"]
    handles, labels = ax.get_legend_handles_labels()
    assert {"spell", "open spell", "transition", "re-entry", "benefits exhausted", "as of"} <= set(labels)
    asof = [ln for ln in ax.get_lines() if ln.get_label() == "as of"][0]
    assert pd.Timestamp(asof.get_xdata()[0]) == pd.Timestamp("2023-06-30")
    # the open spell runs to the end of day T, not to its later end
    import matplotlib.dates as mdates

    right = max(p.get_x() + p.get_width() for p in ax.patches if p.get_height() == 0.5)
    assert mdates.num2date(right).date() == pd.Timestamp("2023-07-01").date()
    lo, hi = (mdates.num2date(x).date() for x in ax.get_xlim())  # the 24-month window is in view
    assert lo < pd.Timestamp("2021-07-01").date() and hi > pd.Timestamp("2023-06-30").date()
    assert "revolving door" in ax.get_title(loc="left")
    assert "x" not in ax.get_title(loc="left").split()  # the pseudonym is not shown
    with pytest.raises(ValueError, match="no spell"):
        plots.plot_timeline(spells, "x", as_of="2021-12-31")


@pytest.mark.parametrize("language", ["de", "fr", "it"])
def test_timeline_speaks_the_coordinators_language(language):
    """The case lookup's figure was English on a French or Italian list: the legend, the title and the
    flags come from the text catalogue (words the lists and the case tables already use)."""
    from iizrisk._texts import text

    spells = rows(("x", "ALV", "2022-01-01", "2022-05-31", "benefit_exhausted"),
                  ("x", "SH", "2022-06-01", "2022-12-31", "other"), ("x", "ALV", "2023-02-01", "2023-09-30"))
    ax = plots.plot_timeline(spells, "x", as_of="2023-06-30", language=language)
    _, labels = ax.get_legend_handles_labels()
    assert set(labels) == {text(f"plot.timeline_{k}", language) for k in ("spell", "open", "transition", "reentry",
                                                                             "as_of")} | {
        text("plot.timeline_window", language, months=24), text("exit_reasons.benefit_exhausted", language)}
    title = ax.get_title(loc="left")
    assert title.startswith(text("plot.timeline_title", language)) and "2023-06-30" in title
    assert title.endswith(", " + text("card.outcome_names.revolving_door", language))
    assert "spell" not in title and "as of" not in title


def test_timeline_of_the_full_data_has_no_as_of_line():
    spells = rows(("x", "ALV", "2022-01-01", None), ("x", "BB", "2021-01-01", "2021-06-30"))
    ax = plots.plot_timeline(spells, "x", label="Person 1")
    assert ax.get_title(loc="left") == "Person 1"
    assert not [ln for ln in ax.get_lines() if ln.get_label() == "as of"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ALV", "BB"]


# ------------------------------------------------------------------ risk bands
def test_risk_bands_histogram_suppresses_small_bins():
    rng = np.random.default_rng(0)
    risk = np.r_[rng.uniform(0, 0.1, 300), rng.uniform(0.1, 0.25, 60), [0.5, 0.52, 0.9]]
    s = pd.DataFrame({"risk": risk, "risk_band": np.where(risk < 0.1, "low", np.where(risk < 0.25, "medium",
                                                                                        "high"))})
    ax = plots.plot_risk_bands(s, bins=20)
    assert isinstance(ax, Axes)
    # 3 high people: hidden, with a medium bin (the high total would follow from the published band counts)
    assert [c.get_label().split(" (")[0] for c in ax.containers] == ["low", "medium"]
    heights = np.array([p.get_height() for c in ax.containers for p in c.patches])
    assert heights[heights > 0].min() >= 5 and heights.sum() <= 360
    assert [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == "--"] == [0.10, 0.25]
    assert "never a decision" in footnotes(ax) and "hidden" in footnotes(ax)
    # a band with hidden bins still says its count, which the run publishes (it said "high (·)" beside
    # "high: 470" in the summary), with the language's separator (it was 10,611 in German)
    more = pd.concat([s] * 40, ignore_index=True)  # 12,000 low, 2,400 medium, 120 high
    more.loc[more.index[-1], "risk"] = 0.99  # one person alone in the top bin: hidden
    ax = plots.plot_risk_bands(more, bins=20, language="de", ax=plt.figure().subplots())
    assert [c.get_label() for c in ax.containers] == ["tief (12’000)", "mittel (2’400)", "hoch (120)"]
    assert [ln for ln in ax.get_lines() if ln.get_marker() == "|"]  # the hidden bins' marks
    ax = plots.plot_risk_bands(s, min_cell_size=0, language="de", ax=plt.figure().subplots())
    assert [c.get_label() for c in ax.containers] == ["tief (300)", "mittel (60)", "hoch (3)"]
    assert ax.get_xlabel() == "Risiko (kalibriert)" and "hidden" not in footnotes(ax)
    assert sum(p.get_height() for c in ax.containers for p in c.patches) == 363
    assert plots.plot_risk_bands(s, log=True, ax=plt.figure().subplots()).get_yscale() == "log"
    for log in (True, False):  # the tallest bar stays inside the frame; risks read in percent
        ax = plots.plot_risk_bands(s, log=log, ax=plt.figure().subplots())
        tallest = max(p.get_y() + p.get_height() for c in ax.containers for p in c.patches)
        assert ax.get_ylim()[1] > tallest
        ax.figure.canvas.draw()
        assert all(t.get_text().endswith("%") for t in ax.get_xticklabels() if t.get_text())


# ------------------------------------------------------------------ calibration and capacity
def test_calibration_curve_of_calibrated_scores_follows_the_diagonal():
    rng = np.random.default_rng(1)
    p = rng.beta(1, 6, 20000)
    y = rng.random(20000) < p
    ax = plots.plot_calibration(y, {"model": p, "constant": np.full(20000, y.mean())}, n_bins=8)
    lines = {ln.get_label().split(" (")[0]: ln for ln in ax.get_lines()}
    assert set(lines) == {"model", "constant", "perfect calibration"}
    x, obs = lines["model"].get_xdata(), lines["model"].get_ydata()
    assert len(x) == 8 and np.abs(x - obs).max() < 0.03
    assert len(lines["constant"].get_xdata()) == 8  # ties split into equal-count bins
    # bins with fewer rows than the cell size are not drawn
    ax = plots.plot_calibration(y[:30], p[:30], n_bins=10, ax=plt.figure().subplots())
    assert len(ax.get_lines()[0].get_xdata()) == 0
    with pytest.raises(ValueError, match="values for"):
        plots.plot_calibration(y, p[:10])


def test_capacity_curves_equal_precision_and_recall_at_k():
    rng = np.random.default_rng(2)
    n = 900
    d = rng.choice(pd.to_datetime(["2023-01-31", "2023-02-28", "2023-03-31"]).to_numpy(), n)
    s = rng.random(n).round(2)  # ties, broken the same way
    y = rng.random(n) < s * 0.4
    ks = [1, 5, 20, 100, 400]
    ax = plots.plot_capacity(y, {"model": s, "random": rng.random(n)}, as_of=d, capacities=ks, mark=20)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    days = (pd.DatetimeIndex(d) - pd.Timestamp("1970-01-01")).days.to_numpy()
    for i, k in enumerate(ks):
        prec, rec = precision_recall_at_k(y, s, days, k=k)
        assert lines["model: precision"].get_ydata()[i] == pytest.approx(prec)
        assert lines["model: recall"].get_ydata()[i] == pytest.approx(rec)
    assert lines["precision of a random list"].get_ydata()[0] == pytest.approx(y.mean())
    assert any(t.get_text() == "capacity 20" for t in ax.texts)
    with pytest.raises(ValueError, match=">= 1"):
        plots.plot_capacity(y, s, capacities=[0, 3])


# ------------------------------------------------------------------ fairness
def test_group_metrics_from_a_fairness_audit():
    from iizrisk.fairness import FairnessAudit

    rng = np.random.default_rng(3)
    n = 800
    data = pd.DataFrame({"score": rng.random(n), "sex": rng.choice(["F", "M"], n),
                         "canton": rng.choice(["ZH", "BE", "UR"], n, p=[.6, .395, .005])})
    data["label"] = rng.random(n) < data["score"] * 0.6
    audit = FairnessAudit(groups=["sex", "canton"], capacity=80, n_bootstrap=20, max_gap=1.0).fit(data)
    ax = plots.plot_group_metrics(audit)
    assert len(ax.containers) == 3
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "sex: F" in labels[0] and any(lab.endswith("(ref)") for lab in labels)
    assert any(lab.startswith("canton: UR") for lab in labels)
    assert "·" in " ".join(texts(ax))  # UR's few people: suppressed values are marked, not drawn
    assert len([ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]) == 3  # overall values
    ax = plots.plot_group_metrics(audit.summary, metrics=["recall"], attributes=["sex"],
                                  ax=plt.figure().subplots())
    assert len(ax.containers) == 1 and len(ax.get_yticklabels()) == 2
    with pytest.raises(ValueError, match="not in the audit"):
        plots.plot_group_metrics(audit, metrics=["accuracy"])
    # an attribute the audit does not hold drew an empty plot without a word (a ConfigError is a ValueError)
    with pytest.raises(ConfigError, match=r"attributes: 'gender' not in the audit; give a list of the audited "
                                          r"attributes \['sex', 'canton'\]"):
        plots.plot_group_metrics(audit, attributes=["gender"])
    with pytest.raises(ConfigError, match=r"must be a list of attributes, e.g. \['sex'\]"):
        plots.plot_group_metrics(audit, attributes="sex")


# ------------------------------------------------------------------ explanations
def test_contributions_waterfall_adds_up_to_the_model_output():
    from iizrisk.explain import explain
    from iizrisk.model import RiskModel

    rng = np.random.default_rng(4)
    X = pd.DataFrame({"n_transitions_24m": rng.poisson(1.0, 400), "n_reentries_24m": rng.poisson(0.5, 400),
                      "age": rng.integers(18, 65, 400), "current_days_alv": rng.integers(0, 700, 400)}
                     ).astype("float32")
    y = (X["n_transitions_24m"] + 0.5 * X["n_reentries_24m"] + rng.normal(size=400) > 2).to_numpy()
    model = RiskModel(model="logistic", calibration=None).fit(X, y)
    ex = explain(model, X.head(3))
    ax = plots.plot_contributions(ex, 1, top=2, language="de")
    assert len(ax.patches) == 3  # two features and "2 other features"
    bars = sorted(ax.patches, key=lambda p: -p.get_y())  # top to bottom
    assert bars[0].get_x() == pytest.approx(ex.base_value)
    assert bars[-1].get_x() + bars[-1].get_width() == pytest.approx(ex.output[1], abs=1e-5)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "2 weitere Merkmale" and "Monaten" in " ".join(labels)
    colours = [tuple(np.round(p.get_facecolor()[:3], 2)) for p in bars]
    widths = [p.get_width() for p in bars]
    assert all((c == (0.84, 0.27, 0.27)) == (w > 0) for c, w in zip(colours, widths, strict=True))
    # by index label too
    ax = plots.plot_contributions(ex, ex.values.index[1], top=10, ax=plt.figure().subplots())
    assert len(ax.patches) == 4


def _explanation():
    from iizrisk.explain import Explanation

    names = ["n_transitions_24m", "age", "n_reentries_24m", "current_days_alv"]
    return Explanation(values=pd.DataFrame([[0.8, -0.2, 0.3, 0.1], [0.1, 0.2, -0.4, 0.5]], columns=names),
                       base_value=-3.0, data=pd.DataFrame([[3.0, 41.0, 1.0, 200.0], [1.0, 30.0, 0.0, 20.0]],
                                                          columns=names), output=np.array([-2.0, -2.6]))


def _words(ax) -> dict[str, str]:
    """The words of a contributions figure besides the feature sentences."""
    notes = {t.get_text() for t in ax.texts if t.get_gid() != "footnote"}
    return {"rest": ax.get_yticklabels()[-1].get_text(), "marks": " | ".join(sorted(notes)),
            "axis": ax.get_xlabel(), "note": footnotes(ax)}


@pytest.mark.parametrize("language", ["de", "fr", "it"])
def test_contributions_speak_the_language_in_every_word(language):
    """With language="fr" the feature sentences were French, but "46 other features", "base", "this
    person", the axis label and the footnote stayed English."""
    ex = _explanation()
    english = _words(plots.plot_contributions(ex, 0, top=2, language="en", ax=plt.figure().subplots()))
    ax = plots.plot_contributions(ex, 0, top=2, language=language, ax=plt.figure().subplots())
    words = _words(ax)
    assert words == {"rest": text("plot.contrib_rest", language, n=2),
                     "marks": " | ".join(sorted([text("plot.contrib_base", language),
                                                 text("plot.contrib_person", language)])),
                     "axis": text("plot.contrib_axis", language), "note": text("plot.contrib_note", language)}
    assert all(words[k] != english[k] for k in words), (words, english)
    one = plots.plot_contributions(ex, 0, top=3, language=language, ax=plt.figure().subplots())
    assert one.get_yticklabels()[-1].get_text() == text("plot.contrib_rest_one", language)


def test_contributions_name_the_rows_there_are():
    """plot_contributions(ex, 99) raised pandas' "single positional indexer is out-of-bounds"."""
    ex = _explanation()
    with pytest.raises(ConfigError, match=r"row 99: the explanation has 2 row\(s\); give a position from 0 to 1"):
        plots.plot_contributions(ex, 99)
    with pytest.raises(ConfigError, match="row -3"):
        plots.plot_contributions(ex, -3)
    with pytest.raises(ConfigError, match="not in the explanation's index") as err:
        plots.plot_contributions(ex, "someone")
    assert "someone" not in str(err.value)  # a label may be a pseudonym: not echoed
    last = plots.plot_contributions(ex, -1, top=10, ax=plt.figure().subplots())
    assert sum(p.get_width() for p in last.patches) == pytest.approx(0.4)  # the second row's contributions


def test_risk_bands_name_a_missing_column():
    """A frame without risk_band gave KeyError: 'risk_band' from inside pandas."""
    s = pd.DataFrame({"risk": [0.05, 0.2, 0.4] * 10})
    with pytest.raises(ValidationError, match=r"scores has no column 'risk_band'.*risk_bands\(scores\['risk'\]\)"):
        plots.plot_risk_bands(s)
    with pytest.raises(ValidationError, match="no column 'risk' and 'risk_band'"):
        plots.plot_risk_bands(pd.DataFrame({"x": [1]}))


def test_flows_read_start_and_end_as_iso_dates_only():
    """start="01.02.2018" was read month-first (2 January) without a word: the plot showed January."""
    spells = rows(*[(f"p{i}", "ALV", "2018-02-10", None) for i in range(6)])
    with pytest.raises(ConfigError, match="start '01.02.2018' is not in the form YYYY-MM-DD; for 1 February "
                                          "2018 write 2018-02-01"):
        plots.plot_flows(spells, start="01.02.2018", end="2018-03-01")
    with pytest.raises(ConfigError, match="end '03/01/2018' is ambiguous"):
        plots.plot_flows(spells, start="2018-02-01", end="03/01/2018")
    with pytest.raises(ConfigError, match="end 2018-01-31 lies before start 2018-02-01"):
        plots.plot_flows(spells, start="2018-02-01", end="2018-01-31")
    ax = plots.plot_flows(spells, start=pd.Timestamp("2018-02-01"), end="2018-03-01", min_cell_size=0)
    assert [str(x)[:10] for x in ax.get_lines()[0].get_xdata()] == ["2018-02-01", "2018-03-01"]
    assert ax.get_lines()[0].get_ydata().tolist() == [6, 0]


def test_unknown_institution_codes_are_refused_not_drawn_empty():
    """institutions=["alv"] drew empty axes (flows) and an empty image with RuntimeWarnings (transitions)."""
    spec = []
    for i in range(8):
        spec += [(f"a{i}", "ALV", "2023-01-01", "2023-03-31"), (f"a{i}", "SH", "2023-04-15", None)]
    spells = rows(*spec)
    for call in (lambda inst: plots.plot_flows(spells, institutions=inst, ax=plt.figure().subplots()),
                 lambda inst: plots.plot_transitions(spells, 2023, institutions=inst, ax=plt.figure().subplots())):
        with pytest.raises(ConfigError, match=r"institutions: 'alv' not known; use codes of ALV, IV, SH.*"
                                              r"\(case matters: 'ALV'\)"):
            call(["alv"])
        with pytest.raises(ConfigError, match="must list one or more institution codes"):
            call("ALV")
        call(["ALV", "KTG"])  # a known institution without a spell is drawn (zeros)
    drawn = plots.plot_transitions(spells, 2023, min_cell_size=0, ax=plt.figure().subplots())
    table = pd.DataFrame({"from": ["ALV", "SH"], "to": ["SH", "ALV"], "persons": [8, 0]})
    with pytest.raises(ConfigError, match="'IV' not known; use codes of ALV, SH$"):
        plots.plot_transitions(table, institutions=["ALV", "IV"])
    assert "8" in texts(drawn)


@pytest.mark.parametrize("figure", ["contributions", "group_metrics", "risk_bands"])
def test_the_footnote_sits_below_the_axis_label(figure):
    """The footnote sat at a fixed 30 points under the axes, on top of a one-line x label; it now hangs
    under the label, also a label of two lines set afterwards."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from iizrisk.fairness import FairnessAudit

    rng = np.random.default_rng(3)
    risk = rng.beta(1.2, 9, 500)
    data = pd.DataFrame({"score": rng.random(400), "sex": rng.choice(["F", "M"], 400)})
    data["label"] = rng.random(400) < data["score"]
    draw = {"contributions": lambda ax: plots.plot_contributions(_explanation(), 0, top=2, language="fr", ax=ax),
            "group_metrics": lambda ax: plots.plot_group_metrics(
                FairnessAudit(groups=["sex"], capacity=40, n_bootstrap=0, max_gap=1.0).fit(data), ax=ax),
            "risk_bands": lambda ax: plots.plot_risk_bands(pd.DataFrame({"risk": risk, "risk_band": np.where(
                risk < .1, "low", np.where(risk < .25, "medium", "high"))}), language="fr", ax=ax)}[figure]
    for two_lines in (False, True):
        fig = Figure(figsize=(6, 3))
        ax = draw(fig.subplots())
        if two_lines:
            ax.set_xlabel(ax.get_xlabel() + "\n" + "a second line")
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        note = next(t for t in ax.texts if t.get_gid() == "footnote").get_window_extent(renderer)
        label = ax.xaxis.label.get_window_extent(renderer)
        ticks = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
        assert note.y1 < label.y0, (figure, two_lines, note, label)  # below the label, not on it
        assert all(note.y1 < b.y0 for b in ticks)
        assert note.x0 == pytest.approx(ax.get_window_extent(renderer).x0, abs=1)  # at the axes' left edge


# ------------------------------------------------------------------ the HTML summary
def _summary_html(tmp_path: Path, language: str = "de") -> Path:
    """The nightly run's summary.html (iizrisk.report) for a small scored population."""
    from iizrisk.model import risk_bands
    from iizrisk.report import run_summary
    from iizrisk.worklist import build_worklists

    rng = np.random.default_rng(5)
    n = 3000
    risk = rng.beta(1.2, 9, n)
    scores = pd.DataFrame({"person_id": [f"p{i}" for i in range(n)], "risk": risk,
                           "risk_band": risk_bands(risk)})
    insts = np.array(["ALV", "IV", "SH", "BB", "BSLB", "MIG", "UV", "KTG"])
    oc = pd.DataFrame({"person_id": scores["person_id"], "institution": rng.choice(insts, n),
                       "case_id": [f"c{i}" for i in range(n)]})
    wl = build_worklists(scores, oc, capacity=25)
    manifest = {"as_of": "2024-06-30", "persons_scored": n, "new_registrations": 120,
                "rows": {"read": 12000, "quarantined": 3},
                "risk_bands": scores["risk_band"].value_counts().sort_index().to_dict(),
                "model": {"outcome": "revolving_door", "horizon_months": 12, "sha256": "ab" * 32}}
    _, html = run_summary(manifest, scores, wl, language=language)
    path = tmp_path / "summary.html"
    path.write_text(html, encoding="utf-8")
    return path


def test_summary_html_is_self_contained(tmp_path):
    html = _summary_html(tmp_path, "fr").read_text(encoding="utf-8")
    assert 'lang="fr"' in html and "pas une décision" in html
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in html and "<script" not in html and "@import" not in html


def _screenshot_module():
    spec = importlib.util.spec_from_file_location("iizrisk_screenshot", ROOT / "scripts" / "screenshot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(_screenshot_module().find_chromium() is None,
                    reason="Chromium is not installed (apt-get install chromium); CI does not install it")
def test_summary_renders_on_one_screen_in_headless_chromium(tmp_path):
    from PIL import Image

    shot = _screenshot_module()
    html = _summary_html(tmp_path)
    png = shot.render(html, tmp_path / "summary.png", width=1280, height=900)
    img = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    assert img.shape == (900, 1280, 3)
    # the embedded plot was drawn: pixels in the colours of the three risk bands
    for colour in ("#8fbc8f", "#f0b429", "#d64545"):
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(img - rgb).sum(axis=2) < 12).sum() > 50, colour
    # the notice is rendered (its yellow background) and the whole page fits on one screen
    assert (np.abs(img - np.array([255, 248, 197])).sum(axis=2) < 6).sum() > 5000
    assert 0 < shot.content_height(html, width=1280) <= 900


def test_log_histogram_keeps_its_size_and_says_which_risks_are_hidden():
    import io

    from matplotlib.figure import Figure
    from PIL import Image

    rng = np.random.default_rng(0)
    r = np.r_[rng.beta(1, 12, 5000), [0.55, 0.6, 0.62]]  # the top three: fewer than 5 people per bin
    s = pd.DataFrame({"risk": r, "risk_band": np.where(r < .1, "low", np.where(r < .25, "medium", "high"))})
    fig = Figure(figsize=(6, 2.6))
    ax = plots.plot_risk_bands(s, log=True, language="de", ax=fig.subplots())
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    width, height = Image.open(buf).size
    assert width < 1000 and height < 600, (width, height)  # was 547 x 152,517 px
    note = next(t.get_text() for t in ax.texts if t.get_gid() == "footnote")
    assert "weniger als 5 Personen" in note and "die höchsten Risiken" in note
    lo, hi = [float(x) for x in note.split("Risiken von ")[1].split(" %")[0].split("–")]
    assert lo <= 55 and hi >= 62  # the hidden range covers the top three


def test_run_summary_uses_the_one_histogram_and_says_what_it_hides():
    import iizrisk.report as report

    assert not hasattr(report, "_histogram") and "plot_risk_bands" in report._risk_figure.__code__.co_names


def test_timeline_dates_do_not_overlap_over_a_long_history():
    """A case with eight years of spells had its ISO dates run into each other ("2023-072023-10...")."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    spells = rows(("x", "IV", "2016-01-01", "2018-05-31"), ("x", "IV", "2019-06-01", "2020-12-31"),
                  ("x", "SH", "2021-02-01", "2022-09-30"), ("x", "IV", "2023-02-01", None))
    for as_of in ("2024-06-30", "2023-05-31"):
        fig = Figure(figsize=(7, 2.6))
        ax = plots.plot_timeline(spells, "x", as_of=as_of, ax=fig.subplots())
        renderer = FigureCanvasAgg(fig).get_renderer()
        boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
        assert 3 <= len(boxes) <= 8
        assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:], strict=False)), [t.get_text() for t in
                                                                                  ax.get_xticklabels()]
