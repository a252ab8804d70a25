"""Small-cell suppression: primary, secondary, derived columns, crosstabs (Hypothesis properties)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iizrisk.suppression import (
    PRIMARY,
    PUBLISHED,
    SECONDARY,
    protect_cells,
    suppress_crosstab,
    suppress_table,
)

counts_st = st.integers(min_value=0, max_value=40)


def _one_dim(values, with_total=True):
    df = pd.DataFrame({"group": [f"g{i}" for i in range(len(values))], "persons": values})
    if with_total:
        df = pd.concat([df, pd.DataFrame({"group": ["Total"], "persons": [sum(values)]})], ignore_index=True)
    df["share"] = df["persons"] / max(sum(values), 1)
    return df


def _check_line(published: np.ndarray, hidden: np.ndarray, values: np.ndarray, total_known: bool, k: int):
    """A line with a known total: no hidden cell alone, and hidden cells hold >= k together."""
    if not total_known or not hidden.any():
        return
    if published.any():
        assert hidden.sum() >= 2, "one hidden cell = total minus the published others"
        assert values[hidden].sum() >= k, "a hidden group smaller than k"


@settings(max_examples=200, deadline=None)
@given(values=st.lists(counts_st, min_size=1, max_size=8), k=st.integers(2, 10), with_total=st.booleans())
def test_one_dimensional_tables_are_safe(values, k, with_total):
    df = _one_dim(values, with_total)
    res = suppress_table(df, "persons", dims=["group"], k=k, derived=["share"])
    out = res.table
    shown = out["persons"].notna().to_numpy()
    # no published cell counts 1 .. k-1 people
    assert not np.any(shown & (df["persons"].to_numpy() > 0) & (df["persons"].to_numpy() < k))
    # published counts are unchanged
    assert (out.loc[shown, "persons"].astype(int).to_numpy() == df.loc[shown, "persons"].to_numpy()).all()
    # shares of hidden cells are hidden too
    assert out.loc[~shown, "share"].isna().all()
    members = (df["group"] != "Total").to_numpy()
    total_shown = (not with_total) or bool(shown[~members][0])
    vals = df["persons"].to_numpy()
    _check_line(shown[members], ~shown[members], vals[members], total_shown, k)
    # if the total is hidden, every share is hidden (count / share would give it back)
    if with_total and not total_shown:
        assert out["share"].isna().all()
    # the status says why
    assert set(res.status.unique()) <= {PUBLISHED, PRIMARY, SECONDARY}
    assert ((res.status == PRIMARY).to_numpy() == (~shown & (vals > 0) & (vals < k))).all()


@settings(max_examples=150, deadline=None)
@given(cells=st.lists(st.lists(counts_st, min_size=2, max_size=5), min_size=2, max_size=5),
       k=st.integers(2, 8))
def test_crosstabs_with_margins_are_safe(cells, k):
    width = min(len(r) for r in cells)
    inner = np.array([r[:width] for r in cells])
    rows = [f"r{i}" for i in range(inner.shape[0])]
    cols = [f"c{j}" for j in range(width)]
    ct = pd.DataFrame(inner, index=rows, columns=cols)
    ct["Total"] = ct.sum(axis=1)
    ct.loc["Total"] = ct.sum(axis=0)
    res = suppress_crosstab(ct, k=k)
    shown = res.table.notna().to_numpy()
    vals = ct.to_numpy()
    assert not np.any(shown & (vals > 0) & (vals < k))
    assert (res.table.to_numpy()[shown].astype(int) == vals[shown]).all()
    n_r, n_c = vals.shape
    for i in range(n_r):  # rows (the last is the margin row)
        _check_line(shown[i, :-1], ~shown[i, :-1], vals[i, :-1], bool(shown[i, -1]), k)
    for j in range(n_c):
        _check_line(shown[:-1, j], ~shown[:-1, j], vals[:-1, j], bool(shown[-1, j]), k)
    assert res.status.shape == ct.shape
    assert (res.status.to_numpy() != PUBLISHED).sum() == res.n_primary + res.n_secondary


def test_single_small_cell_gets_a_partner():
    t = pd.DataFrame({"system": ["ALV", "IV", "SH", "Total"], "persons": [120, 3, 40, 163]})
    res = suppress_table(t, "persons", dims=["system"], k=5)
    assert res.status.tolist() == [PUBLISHED, PRIMARY, SECONDARY, PUBLISHED]
    assert res.table["persons"].isna().tolist() == [False, True, True, False]
    assert res.suppressed["system"].tolist() == ["IV", "SH"]


def test_total_is_hidden_when_no_other_cell_is_left():
    t = pd.DataFrame({"g": ["a", "b", "Total"], "persons": [2, 2, 4]})
    res = suppress_table(t, "persons", dims=["g"], k=5)
    # both members are small (primary) and the total counts 4 (primary as well)
    assert res.table["persons"].isna().all()


def test_known_totals_without_a_total_row():
    t = pd.DataFrame({"g": ["a", "b", "c"], "persons": [50, 2, 30]})
    assert suppress_table(t, "persons", dims=["g"], k=5).table["persons"].isna().sum() == 2
    # totals not known anywhere: the small cell alone is enough
    assert suppress_table(t, "persons", dims=["g"], k=5, known_totals=False).table["persons"].isna().sum() == 1


def test_people_column_drives_primary_rule():
    t = pd.DataFrame({"from": ["ALV", "ALV", "SH"], "to": ["SH", "IV", "ALV"],
                      "transitions": [9, 30, 25], "persons": [3, 28, 20]})
    res = suppress_table(t, "transitions", dims=["from", "to"], people="persons", k=5)
    assert res.status.iloc[0] == PRIMARY  # 9 transitions but only 3 people
    assert res.table["persons"].isna().iloc[0]


def test_zeros_are_published_unless_asked():
    t = pd.DataFrame({"g": ["a", "b", "c", "Total"], "persons": [0, 50, 60, 110]})
    assert suppress_table(t, "persons", dims=["g"]).n_primary == 0
    assert suppress_table(t, "persons", dims=["g"], suppress_zeros=True).n_primary == 1


def test_margins_restrict_the_lines():
    # persons can be in several systems: no sum across systems, only along status
    t = pd.DataFrame({"system": ["ALV", "ALV", "ALV", "IV", "IV", "IV"],
                      "status": ["yes", "no", "Total"] * 2, "persons": [40, 30, 70, 3, 50, 53]})
    res = suppress_table(t, "persons", dims=["system", "status"], margins=["status"], k=5)
    assert res.table["persons"].isna().tolist() == [False, False, False, True, True, False]


def test_k_below_one_disables_suppression():
    t = _one_dim([1, 2, 3])
    assert suppress_table(t, "persons", dims=["group"], k=0).table["persons"].notna().all()


def test_protect_cells_terminates_on_nested_lines():
    # a 2x2 table with every margin: 4 inner cells, 2 row totals, 2 column totals, grand total
    counts = [1, 9, 9, 9, 10, 18, 10, 18, 28]
    lines = [([0, 1], 4), ([2, 3], 5), ([0, 2], 6), ([1, 3], 7), ([4, 5], 8), ([6, 7], 8)]
    status = protect_cells(counts, counts, lines, k=5)
    assert status[0] == 1
    hidden = status != 0
    for members, total in lines:
        if not hidden[total] and hidden[members].any():
            assert hidden[members].sum() >= 2


def test_missing_columns_are_named():
    with pytest.raises(KeyError, match="persons"):
        suppress_table(pd.DataFrame({"g": ["a"]}), "persons", dims=["g"])
