"""Published outputs of the evaluation: suppressed tables, their plots, the words for the axes.

Disclosure control (docs/domain.md section 6, :mod:`iizrisk.suppression`): every
count of people between 1 and ``k - 1`` is hidden, and so is everything
computed from it: an outcome row whose group sizes or (for 0/1 outcomes)
numbers of people with and without the outcome are small; a covariate whose
0/1 counts in a group are small; survival months with few exits (and the
months after a hidden run, until the hidden exits add up to ``k``), and the
tail of a curve once fewer than ``k`` people are at risk; the numbers at risk
are rounded to a multiple of ``k`` (their differences would count the people
censored). Small integers in diagnostic messages are written as ``<k``.

The plots are drawn from these suppressed tables only.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ._balance import SMD_THRESHOLD

_DAYS_RE = re.compile(r"^days_registered_next_(\d+)m$")
_NEW_RE = re.compile(r"^new_spells_next_(\d+)m$")


# --------------------------------------------------------------------------- words
def mask_small_integers(text: str, k: int) -> str:
    """Write integers 1 .. k-1 standing alone (not part of a decimal or a percentage) as ``<k``.

    Examples
    --------
    >>> mask_small_integers("3 of 120 treated (2.5%), 0 left", 5)
    '<5 of 120 treated (2.5%), 0 left'
    """
    return re.sub(r"(?<![\d.,])(\d+)(?![\d.,%])",
                  lambda m: f"<{k}" if 0 < int(m.group(1)) < k else m.group(1), text)


def effect_axis(outcome: str, language: str = "en") -> tuple[str, float]:
    """The words of an effect's axis (in ``language``) and the factor from the estimate to them.

    Examples
    --------
    >>> effect_axis("days_registered_next_12m")
    ('difference in days registered in the next 12 months', 1.0)
    >>> effect_axis("revolving_door_next_12m")
    ('difference in the share with the outcome (percentage points)', 100.0)
    """
    m = _DAYS_RE.match(outcome)
    if m:
        return _w("axis_days", language, months=m.group(1)), 1.0
    m = _NEW_RE.match(outcome)
    if m:
        return _w("axis_spells", language, months=m.group(1)), 1.0
    return _w("axis_share", language), 100.0


def _w(key: str, language: str, **fields) -> str:
    """A word of the study's plots in ``language`` (the catalogue's ``study_plot`` section)."""
    from .._texts import text

    return text(f"study_plot.{key}", language, **fields)


def method_words(estimator, language: str = "en") -> str:
    """A short name of an estimator's adjustment in ``language``, for titles ("propensity-score matching")."""
    from .._texts import load_locale

    names = load_locale(language)["study_plot"]["methods"]
    return names.get(type(estimator).__name__) or (getattr(estimator, "_method_words", "") if language == "en"
                                                    else "") or names["default"]


def balance_verdict(bal: pd.DataFrame, method: str = "adjustment", *, limit: int = 5, language: str = "en") -> str:
    """One sentence: do covariates remain above |SMD| :data:`SMD_THRESHOLD` after ``method``?

    ``bal`` is a balance table (``smd_before``, ``smd_after``; suppressed rows NaN).

    Examples
    --------
    >>> bal = pd.DataFrame({"smd_before": [0.5, 0.3], "smd_after": [0.15, 0.02]}, index=["age", "alv"])
    >>> balance_verdict(bal, "matching")
    '1 of 2 covariates remain above |SMD| 0.1 after matching: age (0.15).'
    """
    after = bal["smd_after"].abs() if "smd_after" in bal else pd.Series(dtype=float)
    shown = after.dropna()
    if not len(shown):
        return _w("verdict_none", language, method=method)
    bad = shown[shown > SMD_THRESHOLD].sort_values(ascending=False)
    if not len(bad):
        return _w("verdict_all", language, n=len(shown), threshold=SMD_THRESHOLD, method=method)
    names = ", ".join(f"{name} ({value:.2f})" for name, value in bad.head(limit).items())
    if len(bad) == 1 and len(shown) == 1:
        return _w("verdict_one_of_one", language, threshold=SMD_THRESHOLD, method=method, names=names)
    more = _w("more", language, n=len(bad) - limit) if len(bad) > limit else ""
    return _w("verdict_some", language, bad=len(bad), n=len(shown), threshold=SMD_THRESHOLD, method=method,
              names=names, more=more)


# --------------------------------------------------------------------------- suppression
def small(counts, k: int) -> np.ndarray:
    """Counts of 1 .. k-1 people (primary rule of iizrisk.suppression), for each value."""
    from ..suppression import suppress_table

    c = pd.Series(np.asarray(counts, dtype=np.float64)).fillna(0).round().astype(np.int64)
    tab = pd.DataFrame({"cell": np.arange(len(c)).astype(str), "n": c.to_numpy()})
    res = suppress_table(tab, "n", dims=["cell"], k=k, margins=[], known_totals=False)
    return (res.status != "published").to_numpy()


def binary_cells(values: np.ndarray, groups) -> list[float] | None:
    """People with and without a 0/1 value in each group, or None for a value that is not 0/1."""
    if not np.isin(values, [0.0, 1.0]).all():
        return None
    cells: list[float] = []
    for g in groups:
        cells += [float(values[g].sum()), float(g.sum() - values[g].sum())]
    return cells


_CELL_BLOCK = 1 << 16  # rows per block of the 0/1 check


def binary_cells_of_columns(X: np.ndarray, groups) -> list[list[float] | None]:
    """:func:`binary_cells` of every column of ``X``, in one pass over the rows.

    A national study's balance table has millions of rows: the group sums are
    one matrix product, and the 0/1 check reads the matrix in blocks of rows.
    """
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    is01 = np.ones(p, dtype=bool)
    for a in range(0, n, _CELL_BLOCK):
        b = X[a:a + _CELL_BLOCK]
        is01 &= ((b == 0.0) | (b == 1.0)).all(axis=0)
    G = np.column_stack([np.asarray(g, dtype=np.float64) for g in groups]) if len(groups) else np.zeros((n, 0))
    ones = G.T @ X  # people with the value 1, per group and column
    size = G.sum(axis=0)
    return [[float(v) for i in range(G.shape[1]) for v in (ones[i, j], size[i] - ones[i, j])] if is01[j] else None
            for j in range(p)]


def suppress_summary(s: pd.DataFrame, cells: list[list[float] | None], k: int, alpha: float) -> pd.DataFrame:
    """An effect summary (one row per outcome or estimand) with rows resting on fewer than ``k`` hidden.

    ``cells`` holds per row the 0/1 outcome's counts of people (None: not a 0/1 outcome).
    """
    s = s.copy()
    lvl = f"{1 - alpha:.0%}"
    s = s.rename(columns=lambda c: c.replace(f" {lvl}", f"_{lvl.rstrip('%')}").replace(" ", "_"))
    hide = np.zeros(len(s), dtype=bool)
    for i, c in enumerate(cells):
        if c is not None:
            hide[i] |= small(c, k).any()
    for c in (s["n_treated"], s["n_control"]):
        hide |= small(c, k)
    values = [c for c in s.columns if c not in ("n_treated", "n_control")]
    s[["n_treated", "n_control"]] = s[["n_treated", "n_control"]].astype("Int64")
    s.loc[hide, ["n_treated", "n_control"]] = pd.NA
    s.loc[hide, values] = np.nan
    s.insert(0, "suppressed", hide)
    return s


def suppress_balance(bal: pd.DataFrame, group_sizes, cells: Sequence[list[float] | None | bool],
                     k: int) -> pd.DataFrame:
    """A balance table with the covariates whose 0/1 counts are small hidden (all when a group is small).

    ``cells`` per covariate: its counts (a 0/1 covariate), None (not 0/1) or True (unknown: hidden).
    """
    bal = bal.copy()
    hide = np.zeros(len(bal), dtype=bool)
    for j, c in enumerate(cells):
        if c is True:
            hide[j] = True
        elif c is not None:
            hide[j] = small(c, k).any()
    if small(list(group_sizes), k).any():
        hide[:] = True
    bal.loc[hide, :] = np.nan
    bal.insert(0, "suppressed", hide)
    return bal


def survival_table(curves: dict, k: int, months: int, *, grid=None) -> pd.DataFrame:
    """Monthly Kaplan-Meier table per curve with small exit counts (and what reveals them) hidden.

    ``grid`` (whole numbers, ascending from 0) replaces the months 0 .. ``months``.
    """
    from ..suppression import suppress_table

    rows = []
    grid = np.arange(0, int(months) + 1, dtype=np.float64) if grid is None else np.asarray(grid, dtype=np.float64)
    for arm, km in curves.items():
        s = km.survival_function_at_times(grid).to_numpy()
        ci = km.confidence_interval_at_times(grid).to_numpy()
        at_risk = km.at_risk_at_times(grid).to_numpy()
        cum_ev = np.array([float(km.event_table.loc[km.event_table.index <= g, "observed"].sum()) for g in grid])
        exits = np.diff(np.r_[0.0, cum_ev])
        for m in range(len(grid)):
            rows.append({"arm": arm, "month": int(grid[m]), "at_risk": at_risk[m], "exits": exits[m],
                         "cumulative_exit": 1 - s[m], "lower": 1 - ci[m, 1], "upper": 1 - ci[m, 0]})
    tab = pd.DataFrame(rows)
    if tab.empty:
        return tab
    tab = tab[tab["at_risk"] >= k].reset_index(drop=True)  # the tail with fewer than k at risk: not published
    tab["at_risk"] = tab["at_risk"].round().astype(np.int64)
    tab["exits"] = tab["exits"].round().astype(np.int64)
    res = suppress_table(tab.assign(month=tab["month"].astype(str)), "exits", dims=["arm", "month"], k=k,
                         margins=["month"], derived=["cumulative_exit", "lower", "upper"], also_hide=["at_risk"])
    out = res.table.assign(month=tab["month"].to_numpy())
    hidden = np.array(res.status != "published", dtype=bool)
    # a published month after a hidden run reveals the run's total: extend the run until it holds >= k exits
    for arm in out["arm"].unique():
        idx = np.flatnonzero((out["arm"] == arm).to_numpy())
        run = 0
        for i in idx:
            if hidden[i]:
                run += int(tab.loc[i, "exits"])
            elif 0 < run < k:
                hidden[i] = True
                run += int(tab.loc[i, "exits"])
            else:
                run = 0
    # differences of the numbers at risk count the people who left (exits and censored): publish them
    # rounded to a multiple of k
    out["at_risk"] = (np.round(tab["at_risk"].to_numpy() / k) * k).astype(np.int64)
    out["at_risk"] = out["at_risk"].astype("Int64")
    out.loc[hidden, ["exits", "at_risk"]] = pd.NA
    out.loc[hidden, ["cumulative_exit", "lower", "upper"]] = np.nan
    out.insert(2, "suppressed", hidden)
    return out


# --------------------------------------------------------------------------- plots of suppressed tables
def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_survival_table(tab: pd.DataFrame, *, ylabel: str, title: str, xlabel: str | None = None,
                        language: str = "en"):
    """Cumulative incidence per arm from a suppressed survival table (published months only); the figure.

    Each run of consecutive published months is drawn on its own, each month's value up to the next month:
    a hidden month is a gap, never the last published value carried through it (the table's value at the
    end of a gap could differ from the level drawn). A note under the axis says so when there are gaps.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    gaps = False
    for i, (arm, g) in enumerate(tab.groupby("arm", sort=False)):
        g = g[~g["suppressed"]].sort_values("month")
        if not len(g):
            continue
        month = g["month"].to_numpy(dtype=np.int64)
        run = np.r_[0, np.cumsum(np.diff(month) != 1)]  # runs of consecutive published months
        gaps |= bool(run[-1] > 0)
        for j in range(int(run[-1]) + 1):  # a few runs per arm: a loop over the table's gaps, not its people
            r = g[run == j]
            x = np.r_[r["month"].to_numpy(dtype=np.float64), r["month"].iloc[-1] + 1.0]  # the last month lasts
            values = [np.r_[r[c].to_numpy(dtype=np.float64), float(r[c].iloc[-1])]
                      for c in ("cumulative_exit", "lower", "upper")]
            ax.step(x, values[0], where="post", color=f"C{i}", label=_arm(arm, language) if j == 0 else None)
            ax.fill_between(x, values[1], values[2], step="post", alpha=0.2, color=f"C{i}", linewidth=0)
    if gaps:  # below the axis label, in room made for it
        fig.subplots_adjust(bottom=0.2)
        fig.text(0.01, 0.015, _w("gaps", language), fontsize="small", color="0.35")
    ax.set_xlabel(_w("months_since", language) if xlabel is None else xlabel)
    ax.set_ylabel("\n".join(textwrap.wrap(ylabel, 34)))  # the words of some languages run past the axes
    ax.set_ylim(0, 1)
    ax.set_title("\n".join(textwrap.wrap(title, 72)), fontsize="medium")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    else:  # every month hidden: say so instead of an empty panel
        ax.text(0.5, 0.5, _w("all_hidden", language), ha="center", va="center",
                transform=ax.transAxes, color="0.35")
    return fig


def draw_balance(ax, bal: pd.DataFrame, *, method: str, after: bool = True, max_covariates: int | None = 40,
                 before_label: str | None = None, after_label: str | None = None,
                 labels: Callable[[str], str] | None = None, language: str = "en"):
    """Love plot of a balance table on ``ax``: title in words, the verdict on the SMD threshold below it.

    ``labels`` gives a covariate's name in words for its code (default: the code).
    """
    b = bal[~bal["suppressed"]] if "suppressed" in bal else bal
    order = b["smd_before"].abs().sort_values()
    if max_covariates is not None:
        order = order.tail(int(max_covariates))
    n_all = len(b)
    b = b.loc[order.index]
    y = np.arange(len(b))
    ax.scatter(b["smd_before"].abs(), y, facecolors="none", edgecolors="C3",
               label=_w("before", language) if before_label is None else before_label)
    if after and b["smd_after"].notna().any():
        ax.scatter(b["smd_after"].abs(), y, color="C0",
                   label=_w("after", language) if after_label is None else after_label)
    ax.axvline(SMD_THRESHOLD, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, [_tick(str(i), labels) for i in b.index], fontsize="small" if labels else None)
    ax.set_xlabel(_w("smd_axis", language))
    ax.set_title(_w("balance_title", language, method=method), fontsize="medium")
    verdict = balance_verdict(bal, method, language=language) if after else (
        _w("no_reweight", language, method=method[:1].upper() + method[1:]))
    if len(b) < n_all:
        verdict += " " + _w("shown_top", language, n=len(b))
    ax.annotate("\n".join(textwrap.wrap(verdict, 95)), xy=(0, 0), xycoords="axes fraction", xytext=(0, -36),
                textcoords="offset points", va="top", ha="left", fontsize="small",
                color="#cf222e" if after and _imbalanced(bal) else "#333333")
    ax.legend(fontsize="small")
    return ax


def plot_balance_table(bal: pd.DataFrame, *, method: str, after: bool = True,
                       labels: Callable[[str], str] | None = None, language: str = "en"):
    """The figure of :func:`draw_balance` for a suppressed balance table (the 40 most imbalanced before)."""
    plt = _pyplot()
    b = bal[~bal["suppressed"]]
    n = min(len(b), 40)
    # covariates in words take two lines and room to the left of the axes
    fig, ax = plt.subplots(figsize=(9.5 if labels else 6.5, 2.0 + (0.34 if labels else 0.22) * max(n, 1)))
    draw_balance(ax, bal, method=method, after=after, labels=labels, language=language)
    if labels:
        fig.subplots_adjust(left=0.36, right=0.97)
    return fig


def _tick(code: str, labels: Callable[[str], str] | None, width: int = 48) -> str:
    """An axis label: the code's name in words (at most two lines of ``width``), else the code."""
    if labels is None:
        return code
    lines = textwrap.wrap(labels(code) or code, width)
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), width, placeholder=" ...")]
    return "\n".join(lines)


def draw_estimates(axes, est: pd.DataFrame, labels: Callable[[str], str] | None = None,
                   language: str = "en") -> None:
    """Forest plot of a suppressed estimates table: one panel per outcome, each on its own scale, in words.

    ``labels`` gives an outcome's name in words for its column (default: the column's name).
    """
    e = est[~est["suppressed"]] if "suppressed" in est else est
    lo = [c for c in e.columns if c.startswith("lower_")][0]
    hi = [c for c in e.columns if c.startswith("upper_")][0]
    nlo = [c for c in e.columns if c.startswith("naive_lower_")][0]
    nhi = [c for c in e.columns if c.startswith("naive_upper_")][0]
    for ax, (name, r) in zip(axes, e.iterrows(), strict=True):
        label, factor = effect_axis(str(name), language)
        # the interval as a segment from its bounds: a bootstrap percentile interval need not contain
        # the estimate (errorbar's xerr would be negative), and it is missing without bootstrap
        for y, point, low, high, colour, text in ((1, r["estimate"], r[lo], r[hi], "C0", _w("adjusted", language)),
                                                   (0, r["naive"], r[nlo], r[nhi], "C3", _w("naive", language))):
            if np.isfinite(low) and np.isfinite(high):
                ax.plot([low * factor, high * factor], [y, y], color=colour, linewidth=1.5, marker="|",
                        markersize=8)
            ax.plot([point * factor], [y], "o", color=colour, label=text)
        ax.axvline(0, color="grey", linewidth=1)
        ax.set_yticks([0, 1], [_w("naive", language), _w("adjusted", language)])
        ax.set_ylim(-0.6, 1.6)
        ax.set_title(str(name) if labels is None else f"{labels(str(name)) or name} ({name})", fontsize="small",
                     loc="left")
        ax.set_xlabel(_w("axis_effect", language, label=label), fontsize="small")


def plot_estimates_table(est: pd.DataFrame, labels: Callable[[str], str] | None = None, language: str = "en"):
    """The figure of :func:`draw_estimates` (published rows only)."""
    plt = _pyplot()
    n = int((~est["suppressed"]).sum()) if "suppressed" in est else len(est)
    fig, axes = plt.subplots(n, 1, figsize=(6.5, 1.1 + 1.2 * max(n, 1)), squeeze=False)
    draw_estimates(axes[:, 0], est, labels, language)
    fig.tight_layout()
    return fig


def _arm(arm, language: str) -> str:
    """An arm of the survival curves in ``language`` ("assessed", "matched controls")."""
    from ..tables import value_name

    return str(value_name("arm", str(arm), language))


def _imbalanced(bal: pd.DataFrame) -> bool:
    """Whether a covariate shown remains above |SMD| :data:`SMD_THRESHOLD` after adjustment (the verdict in red)."""
    return bool("smd_after" in bal and (bal["smd_after"].abs().dropna() > SMD_THRESHOLD).any())
