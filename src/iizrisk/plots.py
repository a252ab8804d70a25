"""Plots for analysts: matplotlib figures of spells, flows, scores, models and explanations.

Every function takes ``ax=None`` (a new figure is made when it is None) and
returns the matplotlib ``Axes`` it drew on, so plots compose into subplots
and can be restyled afterwards (lifelines style). Data preparation is
vectorised (sorts, ``bincount``, ``searchsorted``); nothing loops over people.

Disclosure control (docs/domain.md section 6): plots that show *counts of people*
and may leave the system -- transitions between institutions, registrations
per month, the risk distribution -- pass their counts through
:mod:`iizrisk.suppression` (``min_cell_size``, default 5; 0 switches it off
for internal use only). Hidden cells are drawn as gaps or ``·`` and a
footnote says how many were hidden. A person's timeline and explanation are
individual views for the coordinator's own case work: they never show the
pseudonym unless a ``label`` is given, and must not be published.

Scores are hints for a human review, never decisions; the plots of scores
say so in their footnotes.

=================================  ============================================
function                           shows
=================================  ============================================
:func:`plot_transitions`           heatmap of transitions between institutions
:func:`plot_flows`                 registrations per institution per month
:func:`plot_timeline`              one person's spells, as-of line and flags
:func:`plot_risk_bands`            distribution of calibrated risks by band
:func:`plot_calibration`           observed rate against predicted risk
:func:`plot_capacity`              precision and recall against capacity
:func:`plot_group_metrics`         fairness metrics per group
:func:`plot_contributions`         one person's contributions (waterfall)
=================================  ============================================

Examples
--------
>>> import pandas as pd
>>> from matplotlib.figure import Figure
>>> rows = pd.DataFrame({"person_id": ["a", "a", "a"], "institution": ["ALV", "SH", "ALV"],
...     "start_date": pd.to_datetime(["2022-01-01", "2022-06-01", "2023-03-01"]),
...     "end_date": pd.to_datetime(["2022-05-31", "2022-12-31", None])})
>>> ax = plot_timeline(rows, "a", as_of="2023-06-30", ax=Figure().subplots())
>>> [t.get_text() for t in ax.get_yticklabels()]
['ALV', 'SH']
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import _texts, _time
from ._time import OPEN_END
from .errors import ConfigError, ValidationError

__all__ = [
    "BAND_COLOURS",
    "plot_calibration",
    "plot_capacity",
    "plot_contributions",
    "plot_flows",
    "plot_group_metrics",
    "plot_risk_bands",
    "plot_timeline",
    "plot_transitions",
]

logger = logging.getLogger("iizrisk")

#: Colours of the risk bands (as in the nightly summary).
BAND_COLOURS: dict[str, str] = {"low": "#8fbc8f", "medium": "#f0b429", "high": "#d64545"}
_HIDDEN = "·"
_GREY = "#8c959f"

def _w(key: str, language: str, **fields: Any) -> str:
    """A word on a plot from the text catalogue (``plot.*``, band names ``risk_bands.*``); English by default."""
    return _texts.text(key if key.startswith("risk_bands.") else f"plot.{key}", _texts.or_english(language), **fields)


def _language(language: str | None) -> str:
    """A plot's ``language`` checked (:func:`iizrisk._texts.check_language`): ConfigError for a code the
    catalogue lacks ("FR", "fr-CH"), never a plot silently in English; None is English."""
    return "en" if language is None else _texts.check_language(language)


def _known_institutions(institutions, known: Sequence[str]) -> list[str] | None:
    """``institutions`` (codes to draw) as a list, each one of ``known``; None stays None (all).

    A code that is not known ("alv" for "ALV", a typo) would draw an empty plot without a word: it is
    refused, naming the known codes.
    """
    if institutions is None:
        return None
    if isinstance(institutions, str | bytes) or not len(institutions):
        raise ConfigError("institutions must list one or more institution codes, e.g. ['ALV', 'IV', 'SH'] "
                          "(or be left out: every institution with a spell)")
    wanted = [str(i) for i in institutions]
    unknown = [i for i in wanted if i not in known]
    if unknown:
        cased = [k for u in unknown for k in known if k.lower() == u.lower()]
        raise ConfigError(f"institutions: {', '.join(_time._shown(u) for u in unknown)} not known; use codes of "
                          f"{', '.join(known)}" + (f" (case matters: {', '.join(map(repr, cased))})" if cased else ""))
    return wanted


# --------------------------------------------------------------------------- helpers
def _axes(ax, figsize: tuple[float, float]):
    """The given axes, or new ones on a new pyplot figure (shown inline in Jupyter)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


def _tidy(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _footnote(ax, text: str) -> None:
    """A small grey note under the axes and below the x-axis label (hidden cells, the review notice).

    Its left edge is the axes' and its top 4 points under the bottom of the x-axis label, wherever
    the tick labels put that label (a fixed offset of -30 points sat on a one-line label): the
    position is taken from the label's extent each time the figure is drawn, so a label set or
    changed later moves the note too.
    """
    if text:
        ax.annotate(text, xy=(0, 0), xycoords=("axes fraction", ax.xaxis.label), xytext=(0, -4),
                    textcoords="offset points", ha="left", va="top", fontsize="x-small", color=_GREY,
                    gid="footnote")


def _hidden_note(n_hidden: int, k: int, language: str = "en") -> str:
    return _w("hidden", language, n=n_hidden, k=k) if n_hidden else ""


def _as_scorers(scores) -> dict[str, np.ndarray]:
    if isinstance(scores, Mapping):
        return {str(k): np.asarray(v, dtype=np.float64) for k, v in scores.items()}
    return {"model": np.asarray(scores, dtype=np.float64)}


def _month_start(day_numbers: np.ndarray) -> np.ndarray:
    return (np.datetime64("1970-01-01", "D") + np.asarray(day_numbers, dtype=np.int64).astype("timedelta64[D]")
            ).astype("datetime64[M]")


# --------------------------------------------------------------------------- transitions
def plot_transitions(data: pd.DataFrame, year: int | None = None, *, value: str = "persons",
                     institutions: Sequence[str] | None = None, gap_days: int = 90, entries: bool = False,
                     min_cell_size: int = 5, cmap: str = "Blues", ax=None):
    """Heatmap of transitions between institutions (rows: from, columns: to).

    Parameters
    ----------
    data : DataFrame
        Canonical spells (the transitions whose destination spell starts in
        ``year`` are computed with :func:`iizrisk.indicators.transition_matrix`,
        small cells suppressed), or the long table that function returns
        (``from``, ``to``, ``transitions``, ``persons``, ``rate``; it is drawn
        as given, so pass only a suppressed one).
    year : int, optional
        Required with spells.
    value : {"persons", "transitions", "rate"}, default "persons"
        Distinct people per cell, spell pairs, or people moving from A to B
        per person registered at A in the year.
    institutions : list of str, optional
        Institutions to show (default: every institution with a spell); a code that is neither a
        known institution nor in ``data`` raises :class:`~iizrisk.errors.ConfigError` (codes are
        case-sensitive: ``"ALV"``).
    gap_days : int, default 90
        A spell at B starting at most this many days after a spell at A ended
        counts as a transition (docs/domain.md section 5).
    entries : bool, default False
        Also show a row "(none)": spells without an origin (entries).
    min_cell_size : int, default 5
        Cells with fewer people are hidden (with secondary suppression).
    cmap : str, default "Blues"
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One image; each cell annotated with its value, ``·`` when hidden.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> t = pd.DataFrame({"from": ["ALV", "ALV", "SH", "SH"], "to": ["ALV", "SH", "ALV", "SH"],
    ...                   "transitions": [0, 40, 12, 0], "persons": [0, 38, 12, 0]})
    >>> ax = plot_transitions(t, ax=Figure().subplots())
    >>> sorted(x.get_text() for x in ax.texts if x.get_text() not in ("", "–"))
    ['12', '38']
    """
    if value not in {"persons", "transitions", "rate"}:
        raise ValueError(f"value {value!r}: choose 'persons', 'transitions' or 'rate'")
    if {"from", "to"} <= set(data.columns) and value in data.columns:
        long = data
        if institutions is not None:  # the table's own codes are the known ones
            given = pd.unique(np.r_[data["from"].astype(str).to_numpy(), data["to"].astype(str).to_numpy()])
            institutions = _known_institutions(institutions, [c for c in given if c not in ("(none)", "Total")])
    else:
        if year is None:
            raise ValueError("give the year of the transitions when passing spells")
        from .indicators import transition_matrix
        from .spells import DEFAULT_INSTITUTIONS

        if institutions is not None and "institution" in data.columns:
            seen = set(pd.unique(data["institution"].astype(str)))
            institutions = _known_institutions(
                institutions, [*DEFAULT_INSTITUTIONS, *sorted(seen - set(DEFAULT_INSTITUTIONS))])
        long = transition_matrix(data, int(year), gap_days=gap_days, institutions=institutions,
                                 min_cell_size=min_cell_size)
    long = long[long["from"].astype(str) != "Total"]
    if not entries:
        long = long[long["from"].astype(str) != "(none)"]
    order = list(dict.fromkeys([*long["from"].astype(str), *long["to"].astype(str)]))
    order = [x for x in order if x != "(none)"] + (["(none)"] if "(none)" in order else [])
    rows = [x for x in order if x in set(long["from"].astype(str))]
    cols = [x for x in order if x in set(long["to"].astype(str))]  # the same order as the rows
    if institutions is not None:
        keep = [str(i) for i in institutions]
        rows = [r for r in rows if r in keep or r == "(none)"]
        cols = [c for c in cols if c in keep]
    grid = long.assign(**{"from": long["from"].astype(str), "to": long["to"].astype(str)}).pivot_table(
        index="from", columns="to", values=value, aggfunc="first", dropna=False)
    grid = grid.reindex(index=rows, columns=cols)
    vals = grid.to_numpy(dtype=np.float64, na_value=np.nan)
    same = np.asarray(grid.index)[:, None] == np.asarray(grid.columns)[None, :]
    if value == "rate":  # entries come from nowhere: a share of "people registered at (none)" does not exist
        same |= (np.asarray(grid.index) == "(none)")[:, None] & np.ones(len(cols), dtype=bool)[None, :]
    hidden = np.isnan(vals) & ~same
    ax = _axes(ax, (1.2 + 0.75 * len(cols), 1.0 + 0.6 * len(rows)))
    import matplotlib

    shown = np.ma.masked_where(np.isnan(vals) | same, vals)
    img = ax.imshow(shown, cmap=matplotlib.colormaps[cmap].with_extremes(bad="#f3f4f6"), aspect="auto")
    top = float(shown.max()) if shown.count() else 1.0
    fmt = (lambda v: f"{v:.1%}") if value == "rate" else (lambda v: f"{v:,.0f}")
    r_idx, c_idx = np.indices(vals.shape)
    for i, j, v, h, s in zip(r_idx.ravel(), c_idx.ravel(), vals.ravel(), hidden.ravel(), same.ravel(),
                             strict=True):
        text = "–" if s else (_HIDDEN if h else fmt(v))
        dark = (not s and not h and v > 0.6 * top)
        ax.text(j, i, text, ha="center", va="center", fontsize="medium" if h else "small",
                color="white" if dark else ("#57606a" if (s or h) else "#1f2328"))
    ax.set_xticks(np.arange(len(cols)), cols)
    ax.set_yticks(np.arange(len(rows)), rows)
    ax.set_xlabel("to (institution of the new spell)")
    ax.set_ylabel("from")
    what = {"persons": "people", "transitions": "transitions", "rate": "share of people registered at 'from'"}
    ax.set_title(f"Transitions between institutions{f' {year}' if year is not None else ''} ({what[value]})",
                 fontsize="medium")
    ax.figure.colorbar(img, ax=ax, shrink=0.8)
    _footnote(ax, _hidden_note(int(hidden.sum()), min_cell_size))
    return ax


# --------------------------------------------------------------------------- flows
def plot_flows(spells: pd.DataFrame, *, start=None, end=None, institutions: Sequence[str] | None = None,
               freq: str = "month", min_cell_size: int = 5, merge_gap_days: int = 0, ax=None):
    """Registrations per institution per month: people starting a (merged) spell.

    Parameters
    ----------
    spells : DataFrame
        Canonical spells (merged first: rows that overlap or touch are one spell).
    start, end : str or date, optional
        Months to show, as ``YYYY-MM-DD`` text or a
        date; other text ("01.02.2018") raises :class:`~iizrisk.errors.ConfigError` with the ISO
        spelling (:func:`iizrisk._time.parse_iso_date`). By default from the month in which a spell
        first ended (before it an export holds only the registrations still open then, so the
        counts are incomplete: a line rising from decades of near-zero) to the last start; the
        footnote says so.
    institutions : list of str, optional
        Institutions to draw (default: all with a spell, in code order); a code that is not known
        (``"alv"`` for ``"ALV"``) raises :class:`~iizrisk.errors.ConfigError` naming the known ones.
    freq : {"month", "quarter", "year"}, default "month"
        Period of the counts (quarters keep small data above the cell size).
    min_cell_size : int, default 5
        Period cells with fewer people are hidden (gaps in the lines), with
        secondary suppression along months and institutions
        (:func:`iizrisk.suppression.suppress_table`); 0 switches it off.
    merge_gap_days : int, default 0
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One line per institution, labelled with its code.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> rows = pd.DataFrame({"person_id": [f"p{i}" for i in range(24)],
    ...     "institution": ["ALV"] * 12 + ["SH"] * 12,
    ...     "start_date": pd.to_datetime(["2023-01-05"] * 6 + ["2023-02-05"] * 6 + ["2023-01-09"] * 12),
    ...     "end_date": pd.NaT})
    >>> ax = plot_flows(rows, ax=Figure().subplots())
    >>> [line.get_label() for line in ax.get_lines()]
    ['ALV', 'SH']
    """
    from .spells import build_timeline
    from .suppression import suppress_table

    steps = {"month": 1, "quarter": 3, "year": 12}
    if freq not in steps:
        raise ValueError(f"freq {freq!r}: choose 'month', 'quarter' or 'year'")
    step = steps[freq]
    tl = build_timeline(spells, merge_gap_days=merge_gap_days)
    month = _month_start(tl.start).astype(np.int64) // step  # periods since 1970
    lo = int(month.min()) if len(month) else 0
    hi = int(month.max()) if len(month) else 0
    ended = tl.end[tl.end != OPEN_END]
    notes = []
    if start is None and len(ended):  # before the first end the export holds only what was still open
        first_end = int(_month_start(np.array([ended.min()])).astype(np.int64)[0]) // step
        if first_end > lo:
            notes.append(f"from {_period_label(first_end, step)}, the first end of a spell: "
                         f"{int((month < first_end).sum()):,} earlier starts not shown (incomplete counts)")
        lo = min(max(lo, first_end), hi)
    first = None if start is None else _time.parse_iso_date(start, "start")
    last = None if end is None else _time.parse_iso_date(end, "end")
    if first is not None:
        lo = int(np.datetime64(first, "M").astype(np.int64)) // step
    if last is not None:
        hi = int(np.datetime64(last, "M").astype(np.int64)) // step
    if hi < lo:
        raise ConfigError(f"end {last if last is not None else '(the last registration in the data)'} lies "
                          f"before start {first if first is not None else '(the first registration in the data)'}; "
                          "give an end on or after the start")
    insts = [i for i in tl.institutions if tl.inst_code(i) in set(np.unique(tl.inst).tolist())]
    chosen = _known_institutions(institutions, tl.institutions)
    if chosen is not None:
        insts = chosen
    codes = np.array([tl.inst_code(i) for i in insts], dtype=np.int64)
    n_m, n_i = hi - lo + 1, len(insts)
    slot = np.full(len(tl.institutions), -1, dtype=np.int64)
    slot[codes] = np.arange(n_i)
    keep = (month >= lo) & (month <= hi) & (slot[tl.inst] >= 0)
    # distinct people per (institution, month): one count even with two spells in a month
    key = np.unique((tl.person[keep].astype(np.int64) * n_i + slot[tl.inst[keep]]) * n_m + (month[keep] - lo))
    counts = np.bincount(key % (n_i * n_m), minlength=n_i * n_m).reshape(n_i, n_m)
    months = pd.DatetimeIndex((np.arange(lo, hi + 1) * step).astype("datetime64[M]").astype("datetime64[s]"))
    long = pd.DataFrame({"institution": np.repeat(np.asarray(insts, dtype=object), n_m),
                         "month": np.tile(months.strftime("%Y-%m").to_numpy(dtype=object), n_i),
                         "persons": counts.ravel()})
    res = suppress_table(long, "persons", dims=["institution", "month"], k=min_cell_size)
    shown = res.table["persons"].to_numpy(dtype=np.float64, na_value=np.nan).reshape(n_i, n_m)
    ax = _axes(ax, (8.0, 3.6))
    for j, inst in enumerate(insts):
        ax.plot(months, shown[j], label=inst, lw=1.4)
    ax.set_ylabel("people starting a registration")
    ax.set_xlabel(freq)
    ax.set_title(f"Registrations per institution and {freq}", fontsize="medium")
    ax.set_ylim(bottom=0)
    if n_i:
        ax.legend(frameon=False, fontsize="small", ncols=min(n_i, 4))
    _tidy(ax)
    hidden = _hidden_note(res.n_primary + res.n_secondary, min_cell_size)
    _footnote(ax, "\n".join(n for n in (*notes, hidden) if n))
    return ax


def _period_label(period: int, step: int) -> str:
    """A period number of :func:`plot_flows` (months since 1970 divided by ``step``) as ``YYYY-MM``."""
    return str(np.datetime64(period * step, "M"))


# --------------------------------------------------------------------------- one person
def plot_timeline(spells: pd.DataFrame, person_id: str, *, as_of=None, window_months: int = 24,
                  transition_gap_days: int = 90, merge_gap_days: int = 0, label: str | None = None,
                  language: str = "en", flags: Mapping[str, Any] | None = None, ax=None):
    """One person's spells: a row per institution, spells as bars, the as-of line and the flags.

    With ``as_of`` only the point-in-time view at that date is drawn (what a
    coordinator knew that evening): spells open at T run to T, hatched; the
    window of ``window_months`` months ending at T is shaded. Markers show
    transitions (a new spell while, or shortly after, another institution's),
    re-entries (a new spell at the same institution) and exhausted benefits
    (*Aussteuerung*). The title gives the flags at T.

    This is an individual view for the person's own case work, never for
    publication; the pseudonym is not shown unless passed as ``label``.

    Parameters
    ----------
    spells : DataFrame
        Canonical spells (of anyone; the person's rows are selected).
    person_id : str
        The person's pseudonym.
    as_of : date-like, optional
        Default: the full data (open spells run to the last date in the data).
    window_months : int, default 24
    transition_gap_days, merge_gap_days : int
    label : str, optional
        Title prefix (e.g. "Person 3 on the ALV list").
    language : {"de", "fr", "it", "en"}, default "en"
        Language of the title, legend and the flags (a coordinator's case lookup: its list's language);
        None is English, another code raises :class:`~iizrisk.errors.ConfigError`.
    flags : mapping, optional
        The flags at ``as_of`` for the title (``n_registered``, ``n_institutions_window``,
        ``n_spells_window``, ``revolving_door``): the case lookup passes those of all the person's
        spells while it draws only the spells its institution may see. Default: computed from
        ``spells``.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    ValueError
        The person has no spell (in the view at ``as_of``).
    """
    from .flags import compute_flags, reentry_mask, transition_mask
    from .spells import build_timeline

    language = _language(language)
    rows = spells[(spells["person_id"].astype("str") == str(person_id)).to_numpy()]
    tl = build_timeline(rows, as_of=as_of, merge_gap_days=merge_gap_days)
    if not len(tl):
        when = "" if as_of is None else f" on or before {pd.Timestamp(as_of).date()}"
        raise ValueError(f"the person has no spell{when}")
    t = None if as_of is None else _time.day(as_of)
    closed = tl.end != OPEN_END
    last = t if t is not None else int(max(tl.start.max(), tl.end[closed].max() if closed.any() else 0))
    end = np.where(closed, tl.end, last).astype(np.int64)
    present = sorted(set(tl.inst.tolist()))
    names = [tl.institutions[c] for c in present]
    ypos = np.full(len(tl.institutions), -1, dtype=np.int64)
    ypos[present] = np.arange(len(present))[::-1]
    y = ypos[tl.inst]
    ax = _axes(ax, (8.0, 1.2 + 0.5 * len(present)))
    x0 = np.datetime64("1970-01-01", "D")
    start_d = (x0 + tl.start.astype(np.int64).astype("timedelta64[D]")).astype("datetime64[s]")
    end_d = (x0 + (end + 1).astype("timedelta64[D]")).astype("datetime64[s]")
    if t is not None:
        w0 = int(_time.window_start(t, window_months))
        ax.axvspan(pd.Timestamp(_time.to_date(w0)), pd.Timestamp(_time.to_date(t)), color="#f6f8fa", zorder=0,
                   label=_w("timeline_window", language, months=window_months))
    ax.barh(y[closed], (end_d - start_d)[closed], left=start_d[closed], height=0.5, color="#3b6ea8",
            label=_w("timeline_spell", language))
    if (~closed).any():
        ax.barh(y[~closed], (end_d - start_d)[~closed], left=start_d[~closed], height=0.5, color="#9ab8dc",
                hatch="//", edgecolor="#3b6ea8", label=_w("timeline_open", language))
    tr = transition_mask(tl, gap_days=transition_gap_days)
    re = reentry_mask(tl)
    if tr.any():
        ax.scatter(start_d[tr], y[tr] + 0.38, marker="v", color="#d64545", zorder=3,
                   label=_w("timeline_transition", language))
    if re.any():
        ax.scatter(start_d[re], y[re] - 0.38, marker="o", facecolors="none", edgecolors="#7a3e9d", zorder=3,
                   label=_w("timeline_reentry", language))
    from .spells import EXIT_REASONS

    exhausted = closed & (tl.exit_reason == EXIT_REASONS.index("benefit_exhausted"))
    if exhausted.any():
        ax.scatter(end_d[exhausted], y[exhausted], marker="X", color="#1f2328", zorder=3,
                   label=_texts.text("exit_reasons.benefit_exhausted", language))
    title = label or _w("timeline_title", language)
    if t is not None:
        ax.axvline(pd.Timestamp(_time.to_date(t)), color="#cf222e", lw=1.2, ls="--", label=_w("timeline_as_of", language))
        r = flags
        if r is None:
            f = compute_flags(tl, t, window_months=window_months, transition_gap_days=transition_gap_days)
            r = f.iloc[0] if len(f) else None
        if r is not None:
            title += _w("timeline_flags", language, date=_time.to_date(t), n=int(r["n_registered"]),
                        k=int(r["n_institutions_window"]), m=int(r["n_spells_window"]), months=window_months)
            if bool(r["revolving_door"]):
                title += ", " + _texts.text("card.outcome_names.revolving_door", language)
    ax.set_yticks(np.arange(len(present))[::-1], names)
    ax.set_ylim(-0.6, len(present) - 0.2)
    if t is not None:  # the whole window and the as-of date in view
        lo = min(int(tl.start.min()), int(_time.window_start(t, window_months)))
        pad = max(15, (t - lo) // 40)
        ax.set_xlim(pd.Timestamp(_time.to_date(lo - pad)), pd.Timestamp(_time.to_date(t + pad)))
    # few, short date labels (the year once, then months): a long history overlapped its ISO dates
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_title(title, fontsize="small", loc="left")
    ax.legend(frameon=False, fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _tidy(ax)
    return ax


# --------------------------------------------------------------------------- scores
def plot_risk_bands(scores: pd.DataFrame, *, bands: Sequence[float] = (0.10, 0.25), bins: int = 40,
                    min_cell_size: int = 5, log: bool = False, language: str = "en", ax=None):
    """Histogram of calibrated risks, coloured by risk band, small bins suppressed.

    Parameters
    ----------
    scores : DataFrame
        ``risk`` and ``risk_band`` (``low``, ``medium``, ``high``), one row per
        person, as from :func:`iizrisk.model.score` or a run's ``scores.parquet``.
    bands : (float, float), default (0.10, 0.25)
        Band thresholds, drawn as dashed lines.
    bins : int, default 40
        Equal-width bins from 0 to the largest risk.
    min_cell_size : int, default 5
        Bins with fewer people are hidden, with secondary suppression so that
        the band counts and the number of people scored (published with every
        run) cannot give them back (:func:`iizrisk.suppression.protect_cells`);
        0 switches it off. The legend gives each drawn band's count of people (the run
        publishes them in its summary).
    log : bool, default False
        Logarithmic count axis (most people have low risks; the tail is what matters).
    language : {"de", "fr", "it", "en"}, default "en"
        Language of the labels, band names and the footnote; None is English, another code raises
        :class:`~iizrisk.errors.ConfigError`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One bar container per band present; hidden bins are marked ``·`` on
        the axis.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> s = pd.DataFrame({"risk": np.r_[np.full(30, .05), np.full(20, .2), np.full(5, .4), np.full(2, .6)]})
    >>> s["risk_band"] = np.where(s["risk"] < 0.1, "low", np.where(s["risk"] < 0.25, "medium", "high"))
    >>> ax = plot_risk_bands(s, bins=10, ax=Figure().subplots())
    >>> [c.get_label() for c in ax.containers]  # 2 people at 0.6: hidden, and the 5 at 0.4 with them
    ['low (30)', 'medium (20)']
    """
    from .suppression import protect_cells

    language = _language(language)
    missing = [c for c in ("risk", "risk_band") if c not in scores.columns]
    if missing:
        fix = ("; or add the bands: scores.assign(risk_band=iizrisk.model.risk_bands(scores['risk']))"
               if missing == ["risk_band"] else "")
        raise ValidationError(f"scores has no column {' and '.join(map(repr, missing))}: give the frame that "
                              f"iizrisk.model.score returns (or a run's scores.parquet){fix}")
    risk = scores["risk"].to_numpy(dtype=np.float64)
    band = scores["risk_band"].astype("str").to_numpy()
    top = max(0.05, float(risk.max()) if len(risk) else 1.0)
    # equal-width bins, split at the band thresholds so that each bin lies in one band
    edges = np.unique(np.r_[np.linspace(0.0, top, int(bins) + 1), [b for b in bands if 0 < b < top]])
    nb = len(edges) - 1
    b = np.clip(np.searchsorted(edges, risk, side="right") - 1, 0, nb - 1)
    names = [n for n in ("low", "medium", "high") if (band == n).any()]
    names += sorted(set(band) - set(names))
    code = pd.Index(names).get_indexer(band)
    # cells: the (band, bin) pairs with people. A band's bins add up to the band's count and all
    # bins to the people scored, both published elsewhere (the run's manifest): known totals.
    cell, counts = np.unique(code.astype(np.int64) * nb + b, return_counts=True)
    band_of = cell // nb
    lines = [(np.flatnonzero(band_of == j), -1) for j in range(len(names))] + [(np.arange(len(cell)), -1)]
    status = protect_cells(counts, counts, lines, k=min_cell_size) if min_cell_size > 0 else \
        np.zeros(len(cell), dtype=np.int8)
    shown = np.zeros((len(names), nb))
    shown[band_of, cell % nb] = np.where(status == 0, counts, np.nan)
    ax = _axes(ax, (6.0, 2.6))
    width = np.diff(edges)
    bottom = np.zeros(nb)
    for j, name in enumerate(names):
        h = np.nan_to_num(shown[j])
        if not h.any():
            continue
        # the band's count, as the run publishes it beside the plot (its hidden bins are protected against it:
        # the suppression counts the bands' totals as known), with the language's thousands separator
        n = _texts.swiss_number(int(counts[band_of == j].sum()), language)
        ax.bar(edges[:-1], h, width=width, bottom=bottom, align="edge", color=BAND_COLOURS.get(name, _GREY),
               label=f"{_w(f'risk_bands.{name}', language) if name in BAND_COLOURS else name} ({n})")
        bottom += h
    hidden_bins = np.isnan(shown).any(axis=0)
    if hidden_bins.any():
        # the marks sit on the axis in axes coordinates: at y = 0 in data coordinates a log axis would put
        # them at minus infinity, and a tight bounding box would stretch the figure to tens of thousands of
        # pixels
        ax.plot((edges[:-1] + width / 2)[hidden_bins], np.zeros(int(hidden_bins.sum())), ls="none", marker="|",
                color=_GREY, ms=8, clip_on=False, transform=ax.get_xaxis_transform())
    for thr in bands:
        ax.axvline(float(thr), color="#57606a", lw=0.8, ls="--")
    tallest = float(bottom.max()) if len(bottom) else 0.0
    if log and np.nan_to_num(shown).any():  # every cell hidden (a tiny run): nothing to put on a log axis
        ax.set_yscale("log")
        lowest = float(np.nanmin(np.where(bottom > 0, bottom, np.nan)))
        ax.set_ylim(max(0.5, lowest / 2), tallest * 2)  # room above the tallest bar (it was cut at the frame)
    elif tallest:
        ax.set_ylim(0, tallest * 1.08)
    ax.set_xlim(0, top)
    from matplotlib.ticker import PercentFormatter

    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))  # risks in percent, as the footnote
    ax.set_xlabel(_w("risk", language))
    ax.set_ylabel(_w("persons", language))
    ax.set_title(_w("risk_title", language), fontsize="medium")
    if ax.containers:
        ax.legend(frameon=False, fontsize="small", loc="upper right")
    _tidy(ax)
    note = _hidden_risks(edges, cell % nb, status, min_cell_size, language)
    _footnote(ax, "; ".join(x for x in (note, _w("hint", language)) if x))
    return ax


def _hidden_risks(edges: np.ndarray, cell_bin: np.ndarray, status: np.ndarray, k: int, language: str) -> str:
    """What the suppression hid, in words: how many cells, at which risks, and whether the top of the list."""
    hidden = status != 0
    if not hidden.any():
        return ""
    lo, hi = edges[cell_bin[hidden].min()], edges[cell_bin[hidden].max() + 1]
    lang = _texts.or_english(language)
    note = _texts.text("table.hidden_risks", lang, n=int(hidden.sum()), k=k, lo=f"{100 * lo:.0f}",
                       hi=f"{100 * hi:.0f}")
    if cell_bin[hidden].max() >= cell_bin.max():  # the highest risks are among the hidden
        note += _texts.text("table.hidden_top", lang)
    return note


def plot_calibration(y_true, scores, *, n_bins: int = 10, strategy: str = "quantile", min_cell_size: int = 5,
                     ax=None):
    """Calibration curve: observed outcome rate against mean predicted risk, per risk bin.

    Parameters
    ----------
    y_true : array of bool
        Observed outcomes.
    scores : array or dict of str to array
        Predicted probabilities; a dict draws one curve per scorer (a model and
        its baselines), labelled with the expected calibration error.
    n_bins : int, default 10
    strategy : {"quantile", "uniform"}, default "quantile"
        Bins with equal numbers of rows (by rank, so that tied scores may share
        neighbouring bins), or of equal width.
    min_cell_size : int, default 5
        Bins with fewer rows are not drawn.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One line per scorer plus the diagonal (perfect calibration).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> rng = np.random.default_rng(0)
    >>> p = rng.random(2000)
    >>> ax = plot_calibration(rng.random(2000) < p, {"model": p}, ax=Figure().subplots())
    >>> ax.get_lines()[0].get_label().startswith("model (ECE")
    True
    """
    from .model import expected_calibration_error

    if strategy not in {"quantile", "uniform"}:
        raise ValueError(f"strategy {strategy!r}: choose 'quantile' or 'uniform'")
    y = np.asarray(y_true, dtype=np.float64)
    ax = _axes(ax, (4.6, 4.2))
    top = 0.0
    for name, p in _as_scorers(scores).items():
        if len(p) != len(y):
            raise ValueError(f"scores {name!r} has {len(p)} values for {len(y)} outcomes")
        m = max(min(int(n_bins), len(p)), 1)
        if strategy == "quantile":
            # equal-count bins by rank: calibrated scores have many ties (isotonic steps)
            rank = np.empty(len(p), dtype=np.int64)
            rank[np.argsort(p, kind="stable")] = np.arange(len(p))
            b = rank * m // max(len(p), 1)
        else:
            b = np.clip((p * m).astype(np.int64), 0, m - 1)
        n = np.bincount(b, minlength=m)
        mean_p = np.bincount(b, weights=p, minlength=m) / np.maximum(n, 1)
        rate = np.bincount(b, weights=y, minlength=m) / np.maximum(n, 1)
        ok = n >= max(int(min_cell_size), 1)
        ece = expected_calibration_error(y, p)
        ax.plot(mean_p[ok], rate[ok], marker="o", ms=4, label=f"{name} (ECE {ece:.3f})")
        if ok.any():
            top = max(top, float(mean_p[ok].max()), float(rate[ok].max()))
    top = max(top * 1.05, 0.01)
    ax.plot([0, top], [0, top], color="#999999", lw=0.8, ls="--", label="perfect calibration")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("mean predicted risk")
    ax.set_ylabel("observed outcome rate")
    ax.set_title("Calibration", fontsize="medium")
    ax.legend(frameon=False, fontsize="small")
    _tidy(ax)
    return ax


def _capacity_curves(y: np.ndarray, s: np.ndarray, d: np.ndarray, ks: np.ndarray,
                     random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean precision and recall over dates at each capacity in ``ks`` (one sort, cumulative sums)."""
    tie = np.random.default_rng(random_state).random(len(y))
    order = np.lexsort((tie, -s, d))
    y, d = y[order], d[order]
    first = np.r_[0, np.flatnonzero(d[1:] != d[:-1]) + 1]
    size = np.diff(np.r_[first, len(y)])
    cum = np.r_[0.0, np.cumsum(y)]
    taken = np.minimum(ks[None, :], size[:, None])  # dates x capacities
    hits = cum[first[:, None] + taken] - cum[first][:, None]
    pos = cum[first + size] - cum[first]
    precision = np.mean(hits / np.maximum(taken, 1), axis=0)
    has = pos > 0
    recall = np.mean(hits[has] / pos[has, None], axis=0) if has.any() else np.full(len(ks), np.nan)
    return precision, recall


def plot_capacity(y_true, scores, *, as_of=None, capacities: Sequence[int] | None = None,
                  mark: int | None = None, random_state: int = 0, ax=None):
    """Precision and recall against capacity: how many of the reviewed people had the outcome.

    At a capacity of k, the k highest scores of each as-of date are reviewed
    (ties broken at random with ``random_state``, as in
    :func:`iizrisk.model.precision_recall_at_k`); precision is the share of
    them with the outcome, recall the share of the date's outcomes among them,
    both averaged over dates.

    Parameters
    ----------
    y_true : array of bool
    scores : array or dict of str to array
        One pair of curves (precision solid, recall dashed) per scorer.
    as_of : array, optional
        As-of date of each row (capacity per date); default one date.
    capacities : list of int, optional
        Default 1 to the size of the largest date, about 60 points.
    mark : int, optional
        A capacity to mark (e.g. the worklist's).
    random_state : int, default 0
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> y = np.array([1, 0, 1, 0, 0, 1], dtype=bool)
    >>> ax = plot_capacity(y, {"model": [.9, .8, .7, .3, .2, .1]}, capacities=[1, 2, 3],
    ...                    ax=Figure().subplots())
    >>> ax.get_lines()[0].get_ydata().round(3).tolist()  # precision at 1, 2, 3
    [1.0, 0.5, 0.667]
    """
    y = np.asarray(y_true, dtype=bool)
    d = np.zeros(len(y), dtype=np.int64) if as_of is None else _time.to_days(pd.Series(pd.to_datetime(
        np.asarray(as_of)))).astype(np.int64)
    if capacities is None:
        largest = int(np.bincount(pd.factorize(d)[0]).max()) if len(d) else 1
        ks = np.unique(np.geomspace(1, max(largest, 1), 60).round().astype(np.int64))
    else:
        ks = np.asarray(sorted({int(k) for k in capacities}), dtype=np.int64)
        if (ks < 1).any():
            raise ValueError("capacities must be >= 1")
    ax = _axes(ax, (5.6, 3.8))
    for i, (name, s) in enumerate(_as_scorers(scores).items()):
        if len(s) != len(y):
            raise ValueError(f"scores {name!r} has {len(s)} values for {len(y)} outcomes")
        prec, rec = _capacity_curves(y.astype(np.float64), s, d, ks, random_state)
        colour = f"C{i}"
        ax.plot(ks, prec, color=colour, lw=1.6, label=f"{name}: precision")
        ax.plot(ks, rec, color=colour, lw=1.2, ls="--", label=f"{name}: recall")
    if len(y):
        ax.axhline(float(y.mean()), color="#999999", lw=0.8, ls=":", label="precision of a random list")
    if mark is not None:
        ax.axvline(int(mark), color="#57606a", lw=0.8)
        ax.annotate(f"capacity {int(mark)}", xy=(int(mark), 1.0), xycoords=("data", "axes fraction"),
                    ha="left", va="top", fontsize="x-small", color="#57606a")
    if len(ks) > 1 and ks.max() / ks.min() > 20:
        ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("capacity: people reviewed per as-of date")
    ax.set_ylabel("precision / recall")
    ax.set_title("Precision and recall against capacity", fontsize="medium")
    ax.legend(frameon=False, fontsize="x-small")
    _tidy(ax)
    return ax


# --------------------------------------------------------------------------- fairness
def plot_group_metrics(audit, *, metrics: Sequence[str] = ("flag_rate", "precision", "recall"),
                       attributes: Sequence[str] | None = None, ax=None):
    """Fairness metrics per group (one-way groups of a fairness audit) against the overall value.

    Parameters
    ----------
    audit : FairnessAudit or DataFrame
        A fitted :class:`iizrisk.fairness.FairnessAudit` or its ``summary``
        (``attribute``, ``group``, the metrics; suppressed values ``<NA>``).
    metrics : list of str, default ("flag_rate", "precision", "recall")
    attributes : list of str, optional
        Attributes to show (default: every one-way attribute).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One horizontal bar container per metric; the overall value of each
        metric is a dotted line; suppressed values are written ``·``; groups
        with a flagged gap are marked ``!``.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> summary = pd.DataFrame({"attribute": ["overall", "sex", "sex"], "group": ["all", "F", "M"],
    ...     "is_reference": [False, False, True], "gap_flag": [False, True, False],
    ...     "flag_rate": [0.1, 0.05, 0.15], "precision": [0.3, pd.NA, 0.3]})
    >>> ax = plot_group_metrics(summary, metrics=["flag_rate", "precision"], ax=Figure().subplots())
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['sex: F !', 'sex: M (ref)']
    """
    summary = audit if isinstance(audit, pd.DataFrame) else audit.summary
    missing = [m for m in metrics if m not in summary.columns]
    if missing:
        raise ConfigError(f"metric(s) {missing} not in the audit; available: "
                          f"{[c for c in summary.columns if summary[c].dtype.kind == 'f']}")
    overall = summary[summary["attribute"].astype(str) == "overall"]
    groups = summary[(summary["attribute"].astype(str) != "overall")
                     & ~summary["attribute"].astype(str).str.contains(":", regex=False)]
    if attributes is not None:
        known = list(dict.fromkeys(groups["attribute"].astype(str)))
        unknown = [a for a in attributes if a not in known]
        if isinstance(attributes, str):
            raise ConfigError(f"attributes must be a list of attributes, e.g. [{_time._shown(attributes)}]")
        if unknown:  # an empty plot would say nothing
            raise ConfigError(f"attributes: {', '.join(_time._shown(str(a)) for a in unknown)} not in the audit; "
                              f"give a list of the audited attributes {known} (case matters)")
        groups = groups[groups["attribute"].isin(list(attributes))]
    n, m = len(groups), len(metrics)
    ax = _axes(ax, (6.4, 1.0 + 0.28 * max(n, 1) * max(m, 1)))
    ypos = np.arange(n)[::-1].astype(np.float64)
    h = 0.8 / max(m, 1)
    vals = np.column_stack([groups[m].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
                            for m in metrics]) if m else np.zeros((n, 0))
    for j, metric in enumerate(metrics):
        off = ypos + 0.4 - h * (j + 0.5)
        v = vals[:, j]
        ax.barh(off, np.nan_to_num(v), height=h * 0.9, color=f"C{j}", label=metric.replace("_", " "))
        for yy in off[np.isnan(v)]:
            ax.text(0.0, yy, f" {_HIDDEN}", va="center", ha="left", fontsize="large", fontweight="bold",
                    color=f"C{j}")
        if len(overall) and metric in overall.columns and pd.notna(overall[metric].iloc[0]):
            ax.axvline(float(overall[metric].iloc[0]), color=f"C{j}", lw=0.9, ls=":")
    ref = groups["is_reference"].to_numpy(dtype=bool) if "is_reference" in groups else np.zeros(n, bool)
    gap = (groups["gap_flag"].fillna(False).to_numpy(dtype=bool) if "gap_flag" in groups
           else np.zeros(n, bool))
    labels = [f"{a}: {g}" + (" (ref)" if r else "") + (" !" if gf else "") for a, g, r, gf in
              zip(groups["attribute"].astype(str), groups["group"].astype(str), ref, gap, strict=True)]
    ax.set_yticks(ypos, labels)
    ax.set_xlabel("value (dotted: all people)")
    ax.set_title("Metrics per group at the worklist capacity", fontsize="medium")
    ax.legend(frameon=False, fontsize="small", loc="lower right")
    _tidy(ax)
    _footnote(ax, f"{_HIDDEN} suppressed (fewer than the minimum cell size); ! gap to the reference group "
                  "above the configured limit")
    return ax


# --------------------------------------------------------------------------- explanations
def plot_contributions(explanation, row: Any = 0, *, top: int = 8, language: str = "en", ax=None):
    """Waterfall of one person's contributions: from the base value to the model's output.

    Parameters
    ----------
    explanation : Explanation
        From :func:`iizrisk.explain.explain` (log-odds before calibration).
    row : int or index label, default 0
        Position of the row (an int, negative from the end) or its index label (``(person_id, as_of)``);
        a position outside the explanation's rows or a label not in its index raises
        :class:`~iizrisk.errors.ConfigError`.
    top : int, default 8
        Features with the largest absolute contributions; the others are one bar.
    language : {"de", "fr", "it", "en"}, default "en"
        Language of every word on the figure: the feature sentences (the person's values), the bar of the
        other features, the base and output marks, the axis label and the footnote. None is English,
        another code raises :class:`~iizrisk.errors.ConfigError`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One bar per feature shown (red raises the risk, blue lowers it),
        the base value and the output as lines.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from iizrisk.explain import Explanation
    >>> ex = Explanation(values=pd.DataFrame({"n_transitions_24m": [0.8], "age": [-0.2]}), base_value=-3.0,
    ...                  data=pd.DataFrame({"n_transitions_24m": [3.0], "age": [41.0]}), output=np.array([-2.4]))
    >>> ax = plot_contributions(ex, ax=Figure().subplots())
    >>> len(ax.patches), ax.get_yticklabels()[0].get_text()
    (2, '3 moves between institutions in the last 24 months')
    """
    from .explain import feature_spec_of

    language = _language(language)
    i = _row_position(explanation.values.index, row)
    contrib = explanation.values.iloc[i].to_numpy(dtype=np.float64)
    value = explanation.data.iloc[i].to_numpy(dtype=np.float64)
    names = np.asarray(explanation.values.columns, dtype=object)
    order = np.argsort(-np.abs(contrib), kind="stable")
    shown, rest = order[: int(top)], order[int(top):]
    labels = []
    for j in shown:
        spec = feature_spec_of(str(names[j]), explanation.specs)
        labels.append(spec.sentence(value[j], language) if spec is not None else f"{names[j]} = {value[j]:g}")
    c = contrib[shown]
    if len(rest):
        c = np.r_[c, contrib[rest].sum()]
        labels.append(_w("contrib_rest_one", language) if len(rest) == 1 else _w("contrib_rest", language, n=len(rest)))
    base = float(explanation.base_value)
    left = base + np.r_[0.0, np.cumsum(c)[:-1]]
    ax = _axes(ax, (7.0, 1.2 + 0.38 * len(c)))
    ypos = np.arange(len(c))[::-1]
    colours = np.where(c > 0, "#d64545", "#3b6ea8")
    ax.barh(ypos, c, left=left, color=colours, height=0.6)
    ax.axvline(base, color="#57606a", lw=0.8, ls=":")
    out = base + float(c.sum())
    ax.axvline(out, color="#1f2328", lw=1.0)
    ax.annotate(_w("contrib_base", language), xy=(base, 1.0), xycoords=("data", "axes fraction"), ha="center",
                va="bottom", fontsize="x-small", color="#57606a")
    ax.annotate(_w("contrib_person", language), xy=(out, 1.0), xycoords=("data", "axes fraction"), ha="center",
                va="bottom", fontsize="x-small")
    ax.set_yticks(ypos, labels, fontsize="small")
    ax.set_xlabel(_w("contrib_axis", language))
    _tidy(ax)
    _footnote(ax, _w("contrib_note", language))
    return ax


def _row_position(index: pd.Index, row: Any) -> int:
    """The position of ``row`` (a position, negative from the end, or an index label) among ``index``'s rows.

    Raises ConfigError naming the rows there are; a label is not echoed (it holds a pseudonym).
    """
    n = len(index)
    if not n:
        raise ConfigError("row: the explanation has no rows; explain at least one row first")
    if isinstance(row, int | np.integer) and not isinstance(row, bool):
        if not -n <= int(row) < n:
            raise ConfigError(f"row {int(row)}: the explanation has {n} row(s); give a position from 0 to {n - 1} "
                              f"(or -1 to {-n} from the end), or a row's index label")
        return int(row) % n
    try:
        where = index.get_loc(row)
    except (KeyError, TypeError):
        raise ConfigError(f"row: this label is not in the explanation's index ({n} row(s)); give a position "
                          f"from 0 to {n - 1} or a label of explanation.values.index") from None
    if not isinstance(where, int | np.integer):  # a label of several rows: a slice or a mask
        raise ConfigError("row: this label names several rows of the explanation; give the row's position")
    return int(where)
