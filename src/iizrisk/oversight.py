"""Oversight: figures that show whether a human decides (docs/domain.md section 10).

A court asks whether coordinators review the lists, decide, and sometimes
depart from the score (Austria's AMS case). :func:`oversight` answers from the
history store -- the nightly lists and the reviews sent back -- per
institution and calendar month:

``listed``
    people on the institution's list on at least one night of the month;
``reviewed``
    people the institution reviewed in the month (review date in the month),
    listed or not;
``median_days_to_review``
    the median, over reviews of listed people, of the days from the person's
    first night on the list (within the history kept) to the review;
``overrides`` and ``override_share``
    reviews of people who were not on the list the review answers, and their
    share of the reviews (in percent);
``proposed_listed_share`` and ``proposed_override_share``
    the share (percent) of joint assessments proposed or held among reviews of
    listed people and among overrides;
``agreeing`` and ``agreement_share``
    reviews of listed people whose decision agrees with the person's risk band
    on that list: a joint assessment proposed or held in the high band, any
    other decision below it (``[reviews]`` names the assessment decisions);
``repeatedly_listed_unreviewed``
    people on the list on at least ``repeat_nights`` nights of the month and
    never reviewed by the institution up to the month's end;
``decision:<code>``
    reviews per decision.

Cells of fewer than ``min_cell_size`` people are hidden in everything that
leaves the system (:mod:`iizrisk.suppression`, with secondary suppression
within each institution's months, and across each month's decisions, whose
total the reviews are); a share or a median is hidden with its count, and a
count or share whose rest is a small cell (reviews minus overrides, listed
reviews minus agreeing ones) is hidden too.

Examples
--------
>>> import pandas as pd
>>> lists = pd.DataFrame({"institution": "ALV", "person_id": ["a", "b", "a"],
...                       "as_of": pd.to_datetime(["2024-01-30", "2024-01-30", "2024-01-31"]), "risk": 0.3})
>>> reviews = pd.DataFrame({"institution": ["ALV"], "person_id": ["a"], "review_date": pd.to_datetime(["2024-02-02"]),
...                         "decision": ["not_suitable"], "listed": [True],
...                         "list_as_of": pd.to_datetime(["2024-01-31"]), "band_at_review": ["high"]})
>>> o = oversight(lists, reviews, min_cell_size=1)
>>> o.table[["institution", "month", "listed", "reviewed", "median_days_to_review"]].values.tolist()
[['ALV', '2024-01', 2, 0, nan], ['ALV', '2024-02', 0, 1, 3.0]]
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._results import OutputFigure, OutputTable, ResultMixin
from ._texts import text
from .suppression import protect_cells, suppress_table

__all__ = ["ASSESSMENT_DECISIONS", "Oversight", "oversight", "oversight_of"]

#: Decisions that propose (or hold) the joint assessment the list is for.
ASSESSMENT_DECISIONS = ("joint_assessment_proposed", "joint_assessment_held")
_COUNTS = ("listed", "reviewed", "overrides", "agreeing", "repeatedly_listed_unreviewed")


@dataclass
class Oversight(ResultMixin):
    """Per institution and month: listed, reviewed, days to review, decisions, overrides, agreement.

    ``table`` holds the figures as computed (internal use: tests, the run);
    ``summary`` the same with cells of fewer than ``min_cell_size`` people hidden.
    :meth:`~iizrisk._results.ResultMixin.to_dir` writes that suppressed table as
    ``oversight.csv`` (headers in ``language``; with ``xlsx`` also ``oversight.xlsx``)
    and ``oversight.parquet`` (codes), and with ``plots`` :meth:`plot` in ``language``
    as ``oversight.png``.
    """

    table: pd.DataFrame
    min_cell_size: int = 5
    decisions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> pd.DataFrame:
        return _suppressed(self.table, self.min_cell_size)

    def _title(self) -> str:
        return "Oversight: does a human decide?"

    def plot(self, ax=None, *, language: str = "en"):
        """Share of listed people reviewed per month, one line per institution (suppressed figures).

        The axis starts at 0 % (a share may pass 100 %: reviews count people reviewed in the month,
        listed or not). An institution whose figures are hidden draws no line: it is named in a note
        under the axes, not in the legend. Words in ``language``.

        Returns
        -------
        matplotlib Axes
        """
        from .plots import _axes

        return _plot(self.summary, int(self.min_cell_size), _axes(ax, (6.0, 2.8)), language)

    def _output_tables(self, k: int) -> list[OutputTable]:
        # the people's CSV (and xlsx) in the language, and Parquet for machines (cells hidden in both)
        table = _suppressed(self.table, k)
        table.attrs["min_cell_size"] = int(k)  # for the figure's note on hidden institutions
        return [OutputTable("oversight", table)]

    def _output_figures(self, tables, language: str = "en") -> list[OutputFigure]:
        from matplotlib.figure import Figure

        (table,) = [t for t in tables if t.name == "oversight"]
        fig = Figure(figsize=(6.0, 2.8))
        k = int(table.frame.attrs.get("min_cell_size", self._default_min_cell_size()))
        _plot(table.frame, k, fig.subplots(), language)  # the suppressed table written beside it
        return [OutputFigure("oversight", fig)]


def _plot(summary: pd.DataFrame, k: int, ax, language: str):
    """The plot of :meth:`Oversight.plot` from a suppressed table (``k``: the cells' minimum, for the note)."""
    from .plots import _footnote, _tidy

    months = sorted(set(summary["month"].astype(str)))
    at = {m: i for i, m in enumerate(months)}
    hidden, partly, top = [], [], 100.0
    for inst, part in summary.groupby("institution", sort=True):
        listed = part["listed"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        reviewed = part["reviewed"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(listed > 0, 100 * reviewed / listed, np.nan)
        if np.isnan(share).all():  # nothing to draw: hidden figures are said, months without a list are not
            if (np.isnan(listed) | np.isnan(reviewed)).any():
                hidden.append(str(inst))
            continue
        if (np.isnan(listed) | np.isnan(reviewed)).any():  # drawn with a gap where a month's figures are hidden
            partly.append(str(inst))
        ax.plot([at[m] for m in part["month"].astype(str)], share, marker="o", label=str(inst), clip_on=False)
        top = max(top, float(np.nanmax(share)))
    ax.set_ylim(0, 1.05 * top)
    step = max(1, -(-len(months) // 8))  # at most about 8 month labels
    ax.set_xticks(range(0, len(months), step), months[::step])
    if months:
        ax.set_xlim(-0.5, len(months) - 0.5)
    ax.set_ylabel(text("oversight.plot_axis", language))
    ax.set_title(text("oversight.plot_title", language))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize="small")
    else:
        ax.text(0.5, 0.5, textwrap.fill(text("oversight.plot_none", language, k=k), 50), ha="center",
                va="center", transform=ax.transAxes, fontsize="small", color="#57606a")
    notes = ([text("oversight.plot_hidden", language, k=k, names=", ".join(hidden))] if hidden else []) + (
        [text("oversight.plot_partly_hidden", language, k=k, names=", ".join(partly))] if partly else [])
    if notes:
        _footnote(ax, "\n".join(notes))
    _tidy(ax)
    return ax


def _month(values) -> np.ndarray:
    return pd.to_datetime(values).dt.strftime("%Y-%m").to_numpy(dtype=object) if len(values) else \
        np.array([], dtype=object)


def oversight(lists: pd.DataFrame, reviews: pd.DataFrame, *, start=None, end=None, min_cell_size: int = 5,
              decisions: Sequence[str] = (), assessment: Sequence[str] = ASSESSMENT_DECISIONS,
              repeat_nights: int = 3) -> Oversight:
    """The oversight figures from the history's lists and reviews (see the module documentation).

    Parameters
    ----------
    lists : DataFrame
        ``institution, person_id, as_of`` of every night's lists (``HistoryStore.read("worklists")``).
    reviews : DataFrame
        The stored reviews (``HistoryStore.reviews()``).
    start, end : date-like, optional
        Only months from ``start``'s to ``end``'s.
    decisions : sequence of str
        The decisions to count (default: those in the reviews).
    """
    lists = lists.assign(institution=lists["institution"].astype(str), person_id=lists["person_id"].astype(str),
                         as_of=pd.to_datetime(lists["as_of"])) if len(lists) else \
        pd.DataFrame({"institution": pd.Series([], dtype="str"), "person_id": pd.Series([], dtype="str"),
                      "as_of": pd.to_datetime([])})
    r = reviews.assign(institution=reviews["institution"].astype(str), person_id=reviews["person_id"].astype(str),
                       review_date=pd.to_datetime(reviews["review_date"])) if len(reviews) else \
        pd.DataFrame({"institution": pd.Series([], dtype="str"), "person_id": pd.Series([], dtype="str"),
                      "review_date": pd.to_datetime([]), "decision": pd.Series([], dtype="str"),
                      "listed": np.array([], dtype=bool), "band_at_review": pd.Series([], dtype=object)})
    if not len(lists) and not len(r):
        return Oversight(pd.DataFrame(columns=_columns(decisions)), min_cell_size=int(min_cell_size),
                         decisions=tuple(decisions))
    lists = lists.assign(month=_month(lists["as_of"]))
    r = r.assign(month=_month(r["review_date"]))
    decisions = tuple(decisions) or tuple(sorted(set(r["decision"].astype(str))))
    key = ["institution", "month"]
    listed = lists.drop_duplicates([*key, "person_id"]).groupby(key).size().rename("listed")
    reviewed = r.drop_duplicates([*key, "person_id"]).groupby(key).size().rename("reviewed")
    is_listed = r["listed"].astype(bool).to_numpy()
    overrides = r[~is_listed].groupby(key).size().rename("overrides")
    n_reviews = r.groupby(key).size().rename("reviews")
    # days to review: from the first night the person was on that institution's list, up to the review
    first = lists.groupby(["institution", "person_id"])["as_of"].min().rename("first_listed")
    rl = r[is_listed].join(first, on=["institution", "person_id"])
    rl = rl.assign(days=(rl["review_date"] - rl["first_listed"]).dt.days)
    median = rl[rl["days"] >= 0].groupby(key)["days"].median().rename("median_days_to_review")
    proposes = r["decision"].isin(list(assessment)).to_numpy()
    high = (r["band_at_review"].astype(object) == "high").to_numpy()
    known = r["band_at_review"].notna().to_numpy()
    agree = r[is_listed & known & (proposes == high)].groupby(key).size().rename("agreeing")
    judged = r[is_listed & known].groupby(key).size().rename("judged")
    prop_listed = r[is_listed & proposes].groupby(key).size().rename("proposed_listed")
    prop_over = r[~is_listed & proposes].groupby(key).size().rename("proposed_override")
    n_listed_reviews = r[is_listed].groupby(key).size().rename("listed_reviews")
    # listed on repeat_nights+ nights of the month and never reviewed there up to the month's end
    nights = lists.groupby([*key, "person_id"]).size().rename("nights").reset_index()
    month_end = pd.to_datetime(nights["month"] + "-01") + pd.offsets.MonthEnd(0)
    last_review = r.groupby(["institution", "person_id"])["review_date"].min().rename("first_review")
    nights = nights.join(last_review, on=["institution", "person_id"])
    unreviewed = nights[(nights["nights"] >= repeat_nights)
                        & ~(nights["first_review"] <= month_end)].groupby(key).size().rename(
        "repeatedly_listed_unreviewed")
    by_decision = (r.groupby([*key, "decision"]).size().unstack("decision")
                   .reindex(columns=list(decisions)).fillna(0).astype(np.int64)) if len(r) else \
        pd.DataFrame(columns=list(decisions), index=pd.MultiIndex.from_arrays([[], []], names=key))
    by_decision.columns = [f"decision:{d}" for d in by_decision.columns]
    parts = [listed, reviewed, median, overrides, n_reviews, agree, judged, prop_listed, prop_over,
             n_listed_reviews, unreviewed]
    t = pd.concat(parts, axis=1).join(by_decision)
    t.index = t.index.set_names(key) if len(t) else pd.MultiIndex.from_arrays([[], []], names=key)
    counts = ["listed", "reviewed", "overrides", "reviews", "agreeing", "judged", "proposed_listed",
              "proposed_override", "listed_reviews", "repeatedly_listed_unreviewed", *by_decision.columns]
    for c in counts:
        t[c] = t[c].fillna(0).astype(np.int64) if c in t else 0
    t = t.reset_index().sort_values(key, kind="stable").reset_index(drop=True)
    if start is not None:
        t = t[t["month"] >= pd.Timestamp(start).strftime("%Y-%m")]
    if end is not None:
        t = t[t["month"] <= pd.Timestamp(end).strftime("%Y-%m")]

    def share(num, den):
        return np.where(t[den] > 0, 100 * t[num] / t[den].where(t[den] > 0, 1), np.nan).round(1)

    t = t.assign(override_share=share("overrides", "reviews"),
                 proposed_listed_share=share("proposed_listed", "listed_reviews"),
                 proposed_override_share=share("proposed_override", "overrides"),
                 agreement_share=share("agreeing", "judged"))
    cols = _columns(decisions)
    return Oversight(t[cols].reset_index(drop=True), min_cell_size=int(min_cell_size), decisions=decisions)


def _columns(decisions) -> list[str]:
    return ["institution", "month", "listed", "reviewed", "median_days_to_review", "reviews", "overrides",
            "override_share", "proposed_listed_share", "proposed_override_share", "agreeing", "agreement_share",
            "repeatedly_listed_unreviewed", *[f"decision:{d}" for d in decisions], "judged", "listed_reviews",
            "proposed_listed", "proposed_override"]


#: derived column -> the count it hides with
_DERIVED = {"median_days_to_review": ("listed_reviews",), "override_share": ("overrides", "reviews"),
            "proposed_listed_share": ("proposed_listed", "listed_reviews"),
            "proposed_override_share": ("proposed_override", "overrides"), "agreement_share": ("agreeing", "judged")}


#: a published count -> the count it is part of: the rest (whole minus part) counts people too, and
#: a small rest is as telling as a small count (reviews minus overrides: the listed people reviewed)
_PART_OF = {"overrides": "reviews", "agreeing": "judged"}


def _people(t: pd.DataFrame, c: str) -> pd.Series:
    """The people a count's cell stands for in the small-cell rule: the count, or the rest of the count it
    is part of (:data:`_PART_OF`) when that rest is smaller and not zero."""
    if c not in _PART_OF:
        return t[c]
    rest = t[_PART_OF[c]] - t[c]
    return t[c].where((rest <= 0) | (t[c] <= rest), rest)


def _decisions_with_reviews(t: pd.DataFrame, k: int) -> dict[str, pd.Series]:
    """``reviews`` and the ``decision:<code>`` counts suppressed together.

    Each column's cells are one line, as every other count's (their sum over the months is taken as known),
    and so are each month's decisions, with its reviews as their total: one hidden decision would otherwise
    be the reviews minus the others.
    """
    cols = ["reviews", *[c for c in t.columns if c.startswith("decision:")]]
    n = len(t)
    values = t[cols].to_numpy(dtype=np.int64).T.ravel()  # cell j * n + i: column j, row i
    cell = np.arange(len(cols) * n).reshape(len(cols), n)
    lines = [(cell[j], -1) for j in range(len(cols))]
    if len(cols) > 1:
        lines += [(cell[1:, i], int(cell[0, i])) for i in range(n)]
    hidden = protect_cells(values, values, lines, k=k) != 0
    return {c: pd.Series(pd.array(t[c].to_numpy(dtype=np.int64), dtype="Int64"), index=t.index, name=c)
            .mask(hidden[cell[j]]) for j, c in enumerate(cols)}


def _suppressed(t: pd.DataFrame, k: int) -> pd.DataFrame:
    """Counts below ``k`` hidden (secondary suppression along each institution's months, and across the
    decisions of a month with their reviews), derived figures with their counts; the helper counts are
    dropped. A count is hidden when the rest of the count it is part of is small too (:data:`_PART_OF`)."""
    out = t[["institution", "month"]].copy()
    counts = [c for c in t.columns if c not in {"institution", "month", *_DERIVED}]
    if not len(t):
        safe = {c: t[c] for c in counts}
    else:
        safe = _decisions_with_reviews(t, k)
        for c in (c for c in counts if c not in safe):
            part = t[["institution", "month", c]].assign(_people=_people(t, c))
            safe[c] = suppress_table(part, c, dims=["month"], k=k, people="_people").table[c]
    for c in t.columns[2:]:
        if c in _DERIVED:
            # a share shows its count to anyone who knows the other: hidden when either is small (a zero
            # numerator says "none", as a published zero does), or when the rest (base minus count) is
            # small: the share and the base would give it back
            hide = np.zeros(len(t), dtype=bool)
            bases = _DERIVED[c]
            for j, base in enumerate(bases):
                small = (t[base] > 0) & (t[base] < k) if j == 0 and len(bases) == 2 else t[base] < k
                hide |= (safe[base].isna() | small).to_numpy()
            if len(bases) == 2:
                rest = t[bases[1]] - t[bases[0]]
                hide |= ((rest > 0) & (rest < k)).to_numpy()
            out[c] = t[c].where(~hide)
        elif c not in {"judged", "listed_reviews", "proposed_listed", "proposed_override"}:
            out[c] = safe[c]
    return out


def oversight_of(settings, *, start=None, end=None) -> Oversight:
    """:func:`oversight` of a deployment's history store (``[privacy] min_cell_size``, ``[reviews] decisions``)."""
    from .config import Settings
    from .history import HistoryStore

    settings = settings if isinstance(settings, Settings) else Settings.load(settings)
    history = HistoryStore(settings.resolve(settings.output.history_dir))
    lists = history.read("worklists", require=("institution", "person_id"))  # another table counted as nobody
    return oversight(lists, history.reviews(), start=start, end=end,
                     min_cell_size=settings.privacy.min_cell_size, decisions=tuple(settings.reviews.decisions),
                     assessment=tuple(d for d in ASSESSMENT_DECISIONS if d in settings.reviews.decisions)
                     or tuple(settings.reviews.interventions))
