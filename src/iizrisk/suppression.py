"""Small-cell suppression: the one disclosure-control helper for every aggregate.

Aggregates that leave the system (tables, plots, reports) must not show
cells with fewer than ``k`` people (docs/domain.md section 6; default 5,
``[privacy] min_cell_size``). Hiding the small cells alone is not enough when
a total is published or can be computed: *total minus the published others*
would give the hidden cell back. This module therefore applies

primary suppression
    every cell counting ``1 .. k-1`` people is hidden (zeros are published
    unless ``suppress_zeros=True``; a zero says "nobody", which is usually
    harmless and often structural);
secondary (complementary) suppression
    every *line* -- a set of cells whose sum is a published or computable
    total -- that holds hidden cells must hold at least two of them, and
    together they must count at least ``k``. Otherwise the smallest published
    non-zero cell of the line is hidden too (a zero only when nothing else is
    left), or the line's total when every member is already hidden. This is
    repeated until every line is safe, because each new hidden cell may break
    another line.

What counts as a line
    In a *long table* (dimension columns plus a count column) a line along
    dimension ``d`` is a group of rows that agree on every other dimension.
    If one row of the group has ``d == total_label`` ("Total") it is the
    line's total; otherwise the total is treated as *known* when
    ``known_totals=True`` (the default, conservative: totals are usually
    published somewhere, or computable from shares). ``margins`` restricts the
    dimensions along which sums make sense (e.g. not across systems when one
    person can be in several).
    A *crosstab* (rows by columns, optionally with a ``Total`` row and column)
    is the same with two dimensions.

Derived columns (shares, rates) of a hidden cell are hidden as well, and so
are those of every cell whose line total is hidden (a published count and
share would give the total back: total = count / share).

The protection is against recovering a hidden cell from one line's equation
(total minus the published others) and against hidden groups smaller than
``k``; it is not a full linear-programming audit (tau-ARGUS style), which
tables of a few dozen cells from this library do not need.

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"system": ["ALV", "IV", "SH", "Total"], "persons": [120, 3, 40, 163]})
>>> res = suppress_table(t, "persons", dims=["system"], k=5)
>>> res.table["persons"].tolist()
[120, <NA>, <NA>, 163]
>>> res.status.tolist()
['published', 'primary', 'secondary', 'published']
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from ._checks import is_whole
from ._time import _shown
from .errors import ConfigError

__all__ = [
    "PUBLISHED",
    "PRIMARY",
    "SECONDARY",
    "SuppressionResult",
    "suppress_table",
    "suppress_crosstab",
    "protect_cells",
]

logger = logging.getLogger("iizrisk")

PUBLISHED = "published"
PRIMARY = "primary"
SECONDARY = "secondary"
_STATUS = np.array([PUBLISHED, PRIMARY, SECONDARY], dtype=object)


@dataclass
class SuppressionResult:
    """A suppressed table and which cells were hidden, and why.

    Attributes
    ----------
    table : DataFrame
        The table with hidden counts (and their derived columns) set to
        ``pd.NA``; count columns become nullable ``Int64``, derived ones ``Float64``.
    status : Series or DataFrame
        ``"published"``, ``"primary"`` (fewer than ``k`` people) or
        ``"secondary"`` (hidden so that a total cannot reveal a primary cell),
        aligned with ``table`` (a Series for long tables, a DataFrame for crosstabs).
    k : int
        The minimum cell size applied.
    """

    table: pd.DataFrame
    status: pd.Series | pd.DataFrame
    k: int
    dims: list[str] = field(default_factory=list)

    @property
    def n_primary(self) -> int:
        """Number of cells hidden because they count fewer than ``k`` people."""
        return int((np.asarray(self.status) == PRIMARY).sum())

    @property
    def n_secondary(self) -> int:
        """Number of cells hidden to protect the primary ones."""
        return int((np.asarray(self.status) == SECONDARY).sum())

    @property
    def suppressed(self) -> pd.DataFrame:
        """One row per hidden cell: its dimensions and the reason."""
        if isinstance(self.status, pd.DataFrame):
            st = self.status.rename_axis(index=self.status.index.name or "row",
                                         columns=self.status.columns.name or "column").stack()
            st = st[st != PUBLISHED]
            return st.rename("reason").reset_index()
        mask = (self.status != PUBLISHED).to_numpy()
        out = self.table.loc[mask, self.dims].copy() if self.dims else pd.DataFrame(index=self.table.index[mask])
        out["reason"] = self.status[mask].to_numpy()
        return out.reset_index(drop=True)

    def _repr_html_(self) -> str:
        head = (f"<p><b>Suppressed table</b> (k = {self.k}): {self.n_primary} primary, "
                f"{self.n_secondary} secondary cell(s) hidden</p>")
        return head + self.table.to_html(na_rep="&middot;")


# ----------------------------------------------------------------------------- core
#: The largest cell size accepted: beyond it every cell of any table would be hidden.
MAX_MIN_CELL_SIZE = 1_000_000


def check_min_cell_size(value, name: str = "min_cell_size") -> int:
    """``min_cell_size`` checked: a whole number from 0 (no suppression) to :data:`MAX_MIN_CELL_SIZE`.

    ``nan``, a negative number, a fraction or a bool would silently publish small cells (every comparison
    with ``nan`` is false), so they are refused.

    Raises
    ------
    ConfigError
        Naming the value given and the rule.

    Examples
    --------
    >>> check_min_cell_size(5)
    5
    """
    if not is_whole(value) or not 0 <= value <= MAX_MIN_CELL_SIZE:
        raise ConfigError(f"{name} must be a whole number of people from 0 (no suppression) to "
                          f"{MAX_MIN_CELL_SIZE:,}, e.g. 5 (as [privacy] min_cell_size); got {_shown(repr(value))}")
    return int(value)


def protect_cells(counts, people, lines: Sequence[tuple[npt.ArrayLike, int]], *, k: int = 5,
                  suppress_zeros: bool = False) -> np.ndarray:
    """Primary and secondary suppression on a flat list of cells.

    Parameters
    ----------
    counts : array of int
        Additive value of each cell (what the line totals add up).
    people : array of int
        Number of people in each cell, used for the primary rule (often equal
        to ``counts``).
    lines : sequence of (members, total)
        Each line is the indices of its member cells and the index of its
        total cell, or ``-1`` when the total is known but not a cell of the table.
    k : int
        Minimum number of people per published cell.
    suppress_zeros : bool
        Hide cells with zero people as well.

    Returns
    -------
    ndarray of int8
        0 published, 1 primary, 2 secondary, per cell.

    Examples
    --------
    >>> protect_cells([10, 2, 7, 19], [10, 2, 7, 19], [([0, 1, 2], 3)], k=5).tolist()
    [0, 1, 2, 0]
    """
    k = check_min_cell_size(k, "k")  # nan, -1 or 2.5 would publish small cells (every comparison false)
    counts = np.asarray(counts, dtype=np.int64)
    people = np.asarray(people, dtype=np.int64)
    status = np.zeros(len(counts), dtype=np.int8)
    small = people < k
    if not suppress_zeros:
        small &= people > 0
    status[small] = 1
    groups = [(np.asarray(m, dtype=np.int64), int(t)) for m, t in lines]
    changed = True
    while changed:
        changed = False
        for members, total in groups:
            if len(members) == 0 or (total >= 0 and status[total] != 0):
                continue  # no published total: this line reveals nothing
            hidden = members[status[members] != 0]
            if len(hidden) == 0:
                continue
            if len(hidden) >= 2 and counts[hidden].sum() >= k:
                continue
            shown = members[status[members] == 0]
            if len(shown):
                nonzero = shown[counts[shown] > 0]
                pool = nonzero if len(nonzero) else shown
                pick = pool[np.argmin(counts[pool])]  # first of the smallest
                status[pick] = 2
                changed = True
            elif total >= 0:
                status[total] = 2
                changed = True
            # else: every member hidden and the total is external; nothing left to hide
    return status


# ----------------------------------------------------------------------- long tables
def suppress_table(
    table: pd.DataFrame,
    count: str,
    *,
    dims: Sequence[str] | None = None,
    k: int = 5,
    people: str | None = None,
    total_label: str = "Total",
    margins: Sequence[str] | None = None,
    known_totals: bool = True,
    derived: Sequence[str] = (),
    also_hide: Sequence[str] = (),
    suppress_zeros: bool = False,
) -> SuppressionResult:
    """Suppress small cells of a long table (dimension columns plus a count column).

    Parameters
    ----------
    table : DataFrame
        One row per cell. Rows whose value in a dimension is ``total_label``
        are the margins along that dimension.
    count : str
        Column with the additive count of each cell.
    dims : list of str, optional
        Dimension columns; default every column that is not numeric.
    k : int, default 5
        Minimum number of people per published cell (``< 1`` disables suppression).
    people : str, optional
        Column with the number of distinct people per cell for the primary
        rule, when ``count`` counts something else (e.g. transitions).
    total_label : str, default "Total"
        Label of margin rows.
    margins : list of str, optional
        Dimensions along which cells add up to a total; default all of ``dims``.
    known_totals : bool, default True
        Treat the sum of a line without a total row as known (published elsewhere
        or computable from shares); conservative.
    derived : list of str
        Columns computed from the counts (shares, rates); hidden with the cell
        and wherever the cell's line total is hidden.
    also_hide : list of str
        Further count columns to hide together with ``count`` (e.g. ``people``).
    suppress_zeros : bool, default False
        Hide zero cells too.

    Returns
    -------
    SuppressionResult

    Examples
    --------
    >>> t = pd.DataFrame({"profile": ["a", "b", "c", "Total"], "persons": [50, 4, 30, 84],
    ...                   "share": [50 / 84, 4 / 84, 30 / 84, 1.0]})
    >>> r = suppress_table(t, "persons", dims=["profile"], derived=["share"])
    >>> r.table["share"].isna().tolist()
    [False, True, True, False]
    """
    if dims is None:
        dims = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c]) and c != count]
    dims = list(dims)
    margins = list(dims if margins is None else margins)
    bad = [c for c in [count, *dims, *([people] if people else []), *derived, *also_hide] if c not in table]
    if bad:
        raise KeyError(f"suppress_table: column(s) {bad} not in the table; columns: {list(table.columns)}")
    n = len(table)
    counts = pd.to_numeric(table[count]).fillna(0).to_numpy(dtype=np.int64)
    ppl = counts if people is None else pd.to_numeric(table[people]).fillna(0).to_numpy(dtype=np.int64)
    keys = {d: table[d].astype(object).to_numpy() for d in dims}
    lines: list[tuple[np.ndarray, int]] = []
    row_lines: list[list[int]] = [[] for _ in range(n)]  # line indices a row belongs to as a member
    for d in margins:
        others = [o for o in dims if o != d]
        if others:
            group_keys = pd.MultiIndex.from_arrays([keys[o] for o in others]) if len(others) > 1 \
                else pd.Index(keys[others[0]])
            codes = pd.factorize(group_keys)[0]
        else:
            codes = np.zeros(n, dtype=np.int64)
        is_total = keys[d] == total_label
        for g in np.unique(codes):
            rows = np.flatnonzero(codes == g)
            tot = rows[is_total[rows]]
            members = rows[~is_total[rows]]
            if len(tot) > 1:
                raise ValueError(f"suppress_table: more than one {total_label!r} row along {d!r} in one line")
            if len(tot) == 0 and not known_totals:
                continue
            li = len(lines)
            lines.append((members, int(tot[0]) if len(tot) else -1))
            for r in members:
                row_lines[r].append(li)
    k = check_min_cell_size(k, "k")  # nan would skip the suppression below (nan >= 1 is false)
    status = protect_cells(counts, ppl, lines, k=k, suppress_zeros=suppress_zeros) if k >= 1 \
        else np.zeros(n, dtype=np.int8)

    out = table.copy()
    hide = status != 0
    for c in [count, *([people] if people and people != count else []), *also_hide]:
        col = pd.array(pd.to_numeric(out[c]), dtype="Int64")
        col[hide] = pd.NA
        out[c] = col
    if derived:
        hide_d = hide.copy()
        for r in range(n):
            for li in row_lines[r]:
                t = lines[li][1]
                if t >= 0 and status[t] != 0:
                    hide_d[r] = True
        for c in derived:
            col = pd.array(pd.to_numeric(out[c]), dtype="Float64")
            col[hide_d] = pd.NA
            out[c] = col
    if status.any():
        logger.debug("suppression: %d primary, %d secondary of %d cells",
                     int((status == 1).sum()), int((status == 2).sum()), n)
    return SuppressionResult(table=out, status=pd.Series(_STATUS[status], index=table.index, name="status"),
                             k=k, dims=dims)


# --------------------------------------------------------------------------- crosstabs
def suppress_crosstab(
    crosstab: pd.DataFrame,
    *,
    k: int = 5,
    people: pd.DataFrame | None = None,
    total_label: str = "Total",
    known_totals: bool = True,
    suppress_zeros: bool = False,
) -> SuppressionResult:
    """Suppress small cells of a 2-D crosstab (counts), margins included.

    A row or column labelled ``total_label`` is taken as the margin of the
    others; without margins the sums are treated as known when
    ``known_totals=True``.

    Parameters
    ----------
    crosstab : DataFrame
        Counts, rows by columns.
    k : int, default 5
    people : DataFrame, optional
        Distinct people per cell (same shape) for the primary rule.
    total_label : str, default "Total"
    known_totals : bool, default True
    suppress_zeros : bool, default False

    Returns
    -------
    SuppressionResult
        ``table`` has the crosstab's shape with hidden cells ``pd.NA``;
        ``status`` is a DataFrame of the same shape.

    Examples
    --------
    >>> ct = pd.DataFrame({"IV": [2, 30, 32], "SH": [40, 9, 49], "Total": [42, 39, 81]},
    ...                   index=pd.Index(["ALV", "SH", "Total"], name="from"))
    >>> r = suppress_crosstab(ct, k=5)
    >>> int(r.table.isna().sum().sum())
    4
    """
    rname = crosstab.index.name or "row"
    cname = crosstab.columns.name or "column"
    if rname == cname:
        cname = cname + "_"
    long = crosstab.rename_axis(index=rname, columns=cname).stack(future_stack=True).rename("_count").reset_index()
    people_col = None
    if people is not None:
        pl = people.reindex(index=crosstab.index, columns=crosstab.columns)
        long["_people"] = pl.rename_axis(index=rname, columns=cname).stack(future_stack=True).to_numpy()
        people_col = "_people"
    for c in (rname, cname):
        long[c] = long[c].astype(object)
    res = suppress_table(long, "_count", dims=[rname, cname], k=k, people=people_col, total_label=total_label,
                         known_totals=known_totals, suppress_zeros=suppress_zeros)
    table = res.table.pivot(index=rname, columns=cname, values="_count")
    table = table.reindex(index=list(crosstab.index), columns=list(crosstab.columns))
    table.index.name, table.columns.name = crosstab.index.name, crosstab.columns.name
    st = pd.DataFrame({rname: long[rname], cname: long[cname], "s": res.status.to_numpy()})
    status = st.pivot(index=rname, columns=cname, values="s").reindex(
        index=list(crosstab.index), columns=list(crosstab.columns))
    status.index.name, status.columns.name = crosstab.index.name, crosstab.columns.name
    return SuppressionResult(table=table, status=status, k=k, dims=[])
