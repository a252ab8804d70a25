"""Tonight's flag-rate ratios (iizrisk.list_fairness) against a slow, obvious reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iizrisk._texts import text
from iizrisk.fairness import MISSING
from iizrisk.fairness_rule import FairnessRule
from iizrisk.list_fairness import COLUMNS, flag_rate_ratios, list_fairness


def _reference(people: pd.DataFrame, listed: np.ndarray, attr: str, k: int) -> dict[str, dict]:
    """Per group, by plain Python: size, listed, rate, ratio to the largest group, hidden."""
    values = [MISSING if pd.isna(v) else str(v) for v in people[attr]]
    sizes: dict[str, int] = {}
    flagged: dict[str, int] = {}
    for v, f in zip(values, listed, strict=True):
        sizes[v] = sizes.get(v, 0) + 1
        flagged[v] = flagged.get(v, 0) + int(f)
    named = sorted(g for g in sizes if g != MISSING) or [MISSING]
    ref = max(named, key=lambda g: sizes[g])  # the largest group with a value; ties: the first in sorted order
    out = {}
    for g in sizes:
        rate = flagged[g] / sizes[g]
        ref_rate = flagged[ref] / sizes[ref]
        out[g] = {"n": sizes[g], "n_listed": flagged[g], "rate": rate,
                  "ratio": rate / ref_rate if ref_rate else (np.inf if rate else np.nan), "reference": ref,
                  "hidden": sizes[g] < k or flagged[g] < k or sizes[g] - flagged[g] < k}
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C", None]), st.booleans()), min_size=1, max_size=300),
       st.integers(0, 6))
def test_counts_rates_ratios_and_hiding_equal_the_reference(rows, k):
    people = pd.DataFrame({"g": [r[0] for r in rows]})
    listed = np.array([r[1] for r in rows])
    t = flag_rate_ratios(people, listed, attributes=["g"], rule=FairnessRule(), min_cell_size=k, n_bootstrap=20)
    ref = _reference(people, listed, "g", k)
    assert list(t.columns) == list(COLUMNS)
    assert sorted(t["group"]) == sorted(ref)
    assert t["group"].tolist()[-1] == MISSING or MISSING not in ref  # the missing group comes last
    for r in t.itertuples():
        want = ref[r.group]
        assert r.reference == want["reference"] and bool(r.hidden) == want["hidden"]
        if want["hidden"]:
            assert pd.isna(r.n) and pd.isna(r.n_listed) and pd.isna(r.ratio)
            assert r.verdict == "not_judged" and pd.isna(r.n_needed)  # a verdict would tell of the hidden cells
            continue
        assert (r.n, r.n_listed) == (want["n"], want["n_listed"])
        assert r.flag_rate == pytest.approx(want["rate"])
        if np.isfinite(want["ratio"]):
            assert r.ratio == pytest.approx(want["ratio"])


def test_intervals_equal_a_person_level_bootstrap_within_groups():
    """The binomial replicates are the person-level bootstrap within groups: same quantiles up to noise."""
    rng = np.random.default_rng(3)
    n = 3000
    people = pd.DataFrame({"g": rng.choice(["CH", "EU", "THIRD"], n, p=[0.6, 0.2, 0.2])})
    listed = rng.random(n) < np.where(people["g"] == "THIRD", 0.09, 0.04)
    t = flag_rate_ratios(people, listed, attributes=["g"], rule=FairnessRule(), n_bootstrap=4000).set_index("group")
    # the slow way: draw people with replacement within each group, B times
    B = 2000
    idx = {g: np.flatnonzero(people["g"].to_numpy() == g) for g in ("CH", "EU", "THIRD")}
    rates = {g: np.array([listed[rng.choice(ix, len(ix))].mean() for _ in range(B)]) for g, ix in idx.items()}
    for g in ("EU", "THIRD"):
        boot = rates[g] / rates["CH"]
        lo, hi = np.quantile(boot, [0.025, 0.975])
        assert np.log(t.loc[g, "ratio_lo"]) == pytest.approx(np.log(lo), abs=0.06)
        assert np.log(t.loc[g, "ratio_hi"]) == pytest.approx(np.log(hi), abs=0.06)


def test_the_rule_flags_a_threefold_ratio_and_not_one_whose_interval_holds_one():
    # the demo's situation: third-country flag rate 0.94 % against 0.29 % for Swiss nationals
    people = pd.DataFrame({"nationality_group": ["CH"] * 20_000 + ["THIRD"] * 6_000 + ["EU_EFTA"] * 2_000})
    listed = np.zeros(len(people), dtype=bool)
    listed[:58] = True  # CH: 0.29 %
    listed[20_000:20_056] = True  # THIRD: 0.93 %
    listed[26_000:26_007] = True  # EU/EFTA: 0.35 %, a smaller group: cannot tell
    t = flag_rate_ratios(people, listed, attributes=["nationality_group"], rule=FairnessRule(), min_cell_size=0,
                         n_bootstrap=2000).set_index("group")
    assert t.loc["THIRD", "ratio"] == pytest.approx(3.2, abs=0.05) and t.loc["THIRD", "verdict"] == "exceeds"
    assert t.loc["EU_EFTA", "ratio_lo"] < 1 < t.loc["EU_EFTA", "ratio_hi"]
    assert t.loc["EU_EFTA", "verdict"] == "cannot_tell" and t.loc["EU_EFTA", "n_needed"] > 2_000
    assert t.loc["CH", "verdict"] == "not_judged" and bool(t.loc["CH", "is_reference"])
    # a looser rule lets the threefold ratio through; a rule without flag-rate ratios judges nothing
    loose = flag_rate_ratios(people, listed, attributes=["nationality_group"], rule=FairnessRule(min_ratio=0.1),
                             min_cell_size=0).set_index("group")
    assert loose.loc["THIRD", "verdict"] == "within"
    off = flag_rate_ratios(people, listed, attributes=["nationality_group"],
                           rule=FairnessRule(ratio_metrics=("precision",)), min_cell_size=0)
    assert set(off["verdict"]) == {"not_judged"}


def test_list_fairness_takes_the_attributes_at_t(random_spells):
    from iizrisk.fairness import age_bands, disability_proxy
    from iizrisk.view import View

    as_of = "2023-06-30"
    codes = pd.factorize(random_spells["person_id"])[0]
    spells = random_spells.assign(sex=np.where(codes % 3 == 0, "F", np.where(codes % 7 == 0, None, "M")))
    view = View.at(spells, as_of)
    tl = view.timeline
    scores = pd.DataFrame({"person_id": tl.person_ids.astype(str)[::2]})
    listed = scores["person_id"].to_numpy()[::5]
    t = list_fairness(view, scores, listed, attributes=["sex", "age_band", "disability", "no_such_column"],
                      rule=FairnessRule(), min_cell_size=0, n_bootstrap=50)
    assert set(t["attribute"]) <= {"sex", "age_band", "disability"}
    codes = tl.person_ids.get_indexer(pd.Index(scores["person_id"]))
    on = scores["person_id"].isin(listed).to_numpy()
    direct = {
        "sex": pd.Series(tl.persons["sex"].to_numpy()[codes]).fillna(MISSING).astype(str),
        "disability": pd.Series(disability_proxy(tl, as_of)[codes]),
        "age_band": pd.Series(np.asarray(age_bands(tl.persons["birth_year"].to_numpy()[codes], as_of),
                                         dtype=object)).fillna(MISSING).astype(str),
    }
    for attr, values in direct.items():
        want = pd.DataFrame({"g": values, "on": on}).groupby("g")["on"].agg(["size", "sum"])
        got = t[t["attribute"] == attr].set_index("group")
        assert sorted(got.index) == sorted(want.index)
        assert (got["n"].astype(int) == want["size"].reindex(got.index)).all()
        assert (got["n_listed"].astype(int) == want["sum"].reindex(got.index)).all()
    bands = t.loc[t["attribute"] == "age_band", "group"].tolist()
    assert bands == sorted(bands, key=lambda b: (b == MISSING, b != "<25", b))  # the bands in age order
    # the nightly run hands over the codes it looked up when scoring: the same table
    given = list_fairness(view, scores, listed, attributes=["sex", "age_band", "disability"],
                          rule=FairnessRule(), min_cell_size=0, n_bootstrap=50, codes=codes)
    pd.testing.assert_frame_equal(given, t)
    with pytest.raises(ValueError, match="codes for"):
        list_fairness(view, scores, listed, attributes=["sex"], rule=FairnessRule(), codes=codes[1:])


def test_summary_section_hides_small_cells_in_every_language():
    from iizrisk._texts import swiss_number
    from iizrisk.report import _fairness_section
    from iizrisk.tables import value_name

    people = pd.DataFrame({"sex": ["F"] * 4000 + ["M"] * 5000 + ["X"] * 3})
    listed = np.zeros(len(people), dtype=bool)
    listed[:400] = True
    listed[4000:4200] = True
    listed[9000] = True
    t = flag_rate_ratios(people, listed, attributes=["sex"], rule=FairnessRule(), min_cell_size=5)
    seen = set()
    for lang in ("de", "fr", "it", "en"):
        title, intro, heads, rows = _fairness_section(t, FairnessRule(), lang)
        seen.add(title)
        assert len(rows) == 2 and all(len(r) == len(heads) for r in rows)  # F and X; M is the reference
        x = next(r for r in rows if r[1] == "X")
        assert x[3] == x[4] == x[5] == "·"  # the group of three: no count, no rate, no ratio
        assert "0.8" in intro and "1.25" in intro
        women, men = (value_name("group", code, lang) for code in ("F", "M"))  # named as in the audit
        f = next(r for r in rows if r[1] == women)
        assert f[2] == men and women != "F" and men != "M"  # the codes were shown in every language
        assert f[3] == swiss_number(4000, lang) != "4000" and f[5] == "10.00"  # 400 of 4000, in percent
    assert len(seen) == 4


@pytest.mark.parametrize("lang, outside", [("de", "ausserhalb der Regel"), ("fr", "hors de la règle"),
                                           ("it", "fuori dalla regola"), ("en", "outside the rule")])
def test_a_ratio_far_below_the_rule_is_outside_it_in_the_summary(lang, outside):
    """A group flagged at a twentieth of the reference's rate (ratio 0.05, rule 0.8 to 1.25) does not
    "exceed" the rule: the run summary says it lies outside it, with the intro's words; the code stays."""
    from iizrisk.report import _fairness_section

    people = pd.DataFrame({"age_band": ["25-49"] * 6000 + ["65+"] * 4000})
    listed = np.zeros(len(people), dtype=bool)
    listed[:600] = True  # 10 % of the reference
    listed[6000:6020] = True  # 0.5 % of the older people
    t = flag_rate_ratios(people, listed, attributes=["age_band"], rule=FairnessRule(), min_cell_size=5)
    row = t[t["group"] == "65+"].iloc[0]
    assert row["verdict"] == "exceeds" and row["ratio"] == pytest.approx(0.05)
    _, intro, heads, rows = _fairness_section(t, FairnessRule(), lang)
    (older,) = [r for r in rows if r[1] == "65+"]
    assert older[heads.index(text("list_fairness.verdict", lang))] == outside
    assert f"1 {outside}" in intro


def test_categorical_attributes_give_the_table_of_plain_text(random_spells):
    """Ingestion gives sex and nationality as categoricals (categories in schema order): the groups, the
    reference and every figure are those of the same values as plain text."""
    from iizrisk.view import View

    codes = pd.factorize(random_spells["person_id"])[0]
    sex = np.where(codes % 3 == 0, "M", np.where(codes % 7 == 0, None, "F"))
    nat = np.where(codes % 5 == 0, "THIRD", "CH")
    plain = random_spells.assign(sex=pd.Series(sex, dtype="str"), nationality_group=pd.Series(nat, dtype="str"))
    cat = random_spells.assign(sex=pd.Categorical(sex, categories=["M", "F"]),
                               nationality_group=pd.Categorical(nat, categories=["THIRD", "EU", "CH"]))
    tables = []
    for spells in (plain, cat):
        view = View.at(spells, "2023-06-30")
        scores = pd.DataFrame({"person_id": view.timeline.person_ids.astype(str)[::2]})
        tables.append(list_fairness(view, scores, scores["person_id"].to_numpy()[::7],
                                    attributes=["sex", "nationality_group"], rule=FairnessRule(),
                                    min_cell_size=0, n_bootstrap=100))
    assert str(View.at(cat, "2023-06-30").timeline.persons["sex"].dtype) == "category"
    pd.testing.assert_frame_equal(tables[1], tables[0])
    assert tables[0]["group"].tolist()[:2] == ["F", "M"]


def _hidden_far_below() -> pd.DataFrame:
    """65+ has 3 of 4000 listed against 10 % of the reference: a ratio far outside the rule, but hidden."""
    people = pd.DataFrame({"age_band": ["25-49"] * 6000 + ["65+"] * 4000 + ["50-64"] * 3000})
    listed = np.zeros(len(people), dtype=bool)
    listed[:600] = True
    listed[6000:6003] = True
    listed[10_000:10_020] = True  # 50-64: 0.67 % of 3000, shown and outside the rule
    return flag_rate_ratios(people, listed, attributes=["age_band"], rule=FairnessRule(), min_cell_size=5)


@pytest.mark.parametrize("lang", ["de", "fr", "it", "en"])
def test_a_hidden_group_gets_no_verdict_in_the_table_the_counts_or_the_summary(lang):
    """A row of '·' was judged "outside the rule" and counted among those outside: the verdict said on which
    side of the bound its hidden counts lie. It is not judged, and the summary says why."""
    from iizrisk._texts import load_locale
    from iizrisk.list_fairness import verdict_counts
    from iizrisk.report import _fairness_section

    t = _hidden_far_below().set_index("group")
    assert bool(t.loc["65+", "hidden"]) and t.loc["65+", "verdict"] == "not_judged"
    assert pd.isna(t.loc["65+", "n_needed"])
    assert t.loc["50-64", "verdict"] == "exceeds" and not t.loc["50-64", "hidden"]
    assert verdict_counts(t.reset_index()) == {"exceeds": 1, "cannot_tell": 0, "within": 0}
    verdicts = load_locale(lang)["card"]["verdicts"]
    _, intro, heads, rows = _fairness_section(t.reset_index(), FairnessRule(), lang)
    (older,) = [r for r in rows if r[1] == "65+"]
    assert older[3:6] == ["·", "·", "·"]
    assert older[heads.index(text("list_fairness.verdict", lang))] == verdicts["not_judged"]
    assert f"1 {verdicts['exceeds']}" in intro and text("list_fairness.hidden", lang) in intro
    # nothing hidden: no sentence about hidden groups
    shown = t.reset_index()
    shown = shown[~shown["hidden"]]
    assert text("list_fairness.hidden", lang) not in _fairness_section(shown, FairnessRule(), lang)[1]
