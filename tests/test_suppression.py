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


def _one_line_reference(counts: list[int], people: list[int], k: int, total_row: bool) -> list[int]:
    """Status of the cells of one line (members, then the total when ``total_row``), by the module's rule
    written out: primary 1..k-1 people; while the hidden members are fewer than two or count fewer than k,
    hide the smallest published non-zero member (first of ties; a zero only when no non-zero one is left),
    or the total when every member is hidden."""
    m = len(counts) - total_row
    status = [1 if 0 < p < k else 0 for p in people]
    if total_row and status[m] == 1:
        return status  # the total is hidden already: the line reveals nothing
    while True:
        hidden = [i for i in range(m) if status[i]]
        if not hidden or (len(hidden) >= 2 and sum(counts[i] for i in hidden) >= k):
            return status
        shown = [i for i in range(m) if not status[i]]
        if not shown:
            if total_row:
                status[m] = 2
            return status
        pool = [i for i in shown if counts[i] > 0] or shown
        status[min(pool, key=lambda i: (counts[i], i))] = 2


@settings(max_examples=150, deadline=None)
@given(cells=st.lists(st.tuples(counts_st, counts_st), min_size=1, max_size=7), k=st.integers(2, 10),
       total_row=st.booleans())
def test_one_line_matches_the_rule_written_out(cells, k, total_row):
    # which cell becomes the partner matters (the smallest non-zero, not a zero: a hidden zero protects nothing),
    # and so does hiding the total when no member is left to hide
    counts = [c for c, _ in cells]
    people = [p for _, p in cells]
    members = list(range(len(cells)))
    if total_row:
        counts, people = counts + [sum(counts)], people + [sum(people)]
    got = protect_cells(counts, people, [(members, len(cells) if total_row else -1)], k=k)
    assert got.tolist() == _one_line_reference(counts, people, k, total_row)


def test_the_partner_is_the_smallest_non_zero_cell_not_a_zero():
    t = pd.DataFrame({"g": ["a", "b", "c", "d", "Total"], "persons": [0, 3, 10, 20, 33]})
    res = suppress_table(t, "persons", dims=["g"], k=5)
    assert res.status.tolist() == [PUBLISHED, PRIMARY, SECONDARY, PUBLISHED, PUBLISHED]


def test_the_total_is_hidden_when_its_members_are_and_count_fewer_than_k():
    # 4 transitions by 11 people: no cell is small in people, but the two hidden transition counts (2 + 2)
    # are fewer than k together, and the published total 4 would give their sum
    t = pd.DataFrame({"g": ["a", "b", "Total"], "transitions": [2, 2, 4], "persons": [2, 9, 11]})
    res = suppress_table(t, "transitions", dims=["g"], people="persons", k=5)
    assert res.status.tolist() == [PRIMARY, SECONDARY, SECONDARY]


def _two_way_long(inner: np.ndarray) -> pd.DataFrame:
    R, C = inner.shape
    rows = []
    for i in range(R + 1):
        for j in range(C + 1):
            a, b = (f"r{i}" if i < R else "Total"), (f"c{j}" if j < C else "Total")
            v = inner[i if i < R else slice(None), j if j < C else slice(None)].sum()
            rows.append((a, b, int(v)))
    df = pd.DataFrame(rows, columns=["a", "b", "n"])
    df["share"] = df["n"] / max(int(inner.sum()), 1)
    return df


@settings(max_examples=50, deadline=None)
@given(cells=st.lists(st.lists(st.integers(0, 14), min_size=2, max_size=3), min_size=2, max_size=3),
       k=st.integers(2, 6))
def test_a_derived_value_is_published_only_when_its_line_totals_are(cells, k):
    width = min(len(r) for r in cells)
    df = _two_way_long(np.array([r[:width] for r in cells]))
    res = suppress_table(df, "n", dims=["a", "b"], k=k, derived=["share"])
    hidden = dict(zip(zip(df["a"], df["b"], strict=True), (res.status != PUBLISHED).to_numpy(), strict=True))
    for (a, b), shown in zip(zip(df["a"], df["b"], strict=True), res.table["share"].notna(), strict=True):
        if not shown:
            continue
        assert not hidden[(a, b)]
        # count / share gives the line's total back: a published share needs published line totals
        if b != "Total":
            assert not hidden[(a, "Total")]
        if a != "Total":
            assert not hidden[("Total", b)]


def test_a_share_of_a_published_cell_is_hidden_when_its_row_total_is():
    df = _two_way_long(np.array([[7, 4, 4], [0, 1, 0], [2, 12, 9]]))
    res = suppress_table(df, "n", dims=["a", "b"], k=5, derived=["share"])
    row = (df["a"] == "r1") & (df["b"] == "c0")
    assert res.status[row].tolist() == [PUBLISHED] and res.status[(df["a"] == "r1") & (df["b"] == "Total")].iloc[0] \
        != PUBLISHED
    assert res.table.loc[row, "share"].isna().all()


@pytest.mark.parametrize("k", [float("nan"), -1, 2.5, True, "5"])
def test_a_cell_size_that_is_no_whole_number_is_refused_not_a_table_published(k):
    """suppress_table(k=nan) published every small cell (nan >= 1 is false: no suppression at all)."""
    from iizrisk.errors import ConfigError
    from iizrisk.suppression import protect_cells, suppress_crosstab, suppress_table

    t = pd.DataFrame({"group": ["a", "b", "c"], "n": [1, 40, 2]})
    for call in (lambda: suppress_table(t, "n", dims=["group"], k=k),
                 lambda: suppress_crosstab(pd.DataFrame({"x": [1, 40], "y": [3, 50]}, index=["a", "b"]), k=k),
                 lambda: protect_cells([1, 40, 2], [1, 40, 2], [([0, 1, 2], -1)], k=k)):
        with pytest.raises(ConfigError, match="k must be a whole number of people from 0"):
            call()
