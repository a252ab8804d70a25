"""Case lookup: one person as one institution may see them, found by that institution's case number.

Coordinators hold a case number, not a pseudonym. :func:`case_lookup` (and
``iizrisk case CONFIG --institution ALV --case-id RAV-123``) finds the person
among the cases *of that institution only* and shows, under the deployment's
disclosure policy (docs/domain.md section 6):

* the timeline: the person's spells at this institution (with its case
  numbers) and at the institutions whose involvement may be named
  (``[worklist] disclose_institutions``; without case numbers); other
  institutions appear only as a count;
* the flags at the as-of date and, when the person was on that night's list,
  the reasons given there;
* the risk across the runs up to the as-of date (history store);
* the reviews of this institution up to the as-of date.

Everything is as it was known at the as-of date: a case opened (or recorded)
later is not found, and later runs and reviews are not shown.

A case number that is not one of the institution's gets the same answer as
one that does not exist, so a lookup never reveals another institution's
cases; no output holds the pseudonym.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import _time
from ._results import OutputFigure, OutputTable, ResultMixin
from ._texts import colon, text
from .errors import ValidationError

__all__ = ["CaseView", "case_lookup"]


@dataclass
class CaseView(ResultMixin):
    """One case as its institution may see it (no pseudonym anywhere; see :func:`case_lookup`)."""

    institution: str
    case_id: str
    as_of: dt.date
    timeline: pd.DataFrame
    n_other_institutions: int
    flags: pd.DataFrame
    reasons: pd.DataFrame
    risk_history: pd.DataFrame
    reviews: pd.DataFrame
    language: str = "de"
    _spells: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    _person: str = field(default="", repr=False)

    @property
    def summary(self) -> pd.DataFrame:
        """The timeline table."""
        return self.timeline

    def _title(self) -> str:
        return f"{text('case.title', self.language)}{colon(self.language)} {self.institution} {self.case_id} ({self.as_of})"

    def _sections(self) -> list[tuple[str, pd.DataFrame]]:
        """The lookup's tables with their titles, as the coordinator reads them: headers, bands, decisions,
        exit reasons and yes/no in the list's language, risks in percent (:func:`iizrisk.tables.present`)."""
        from .tables import present

        lang = self.language
        return [(text(f"case.{key}", lang), _blank_missing(present(df, lang))) for key, df in (
            ("timeline", self.timeline), ("flags", self.flags), ("reasons", self.reasons),
            ("risk_history", self.risk_history), ("reviews", self.reviews))]

    def summary_text(self, decimals: int = 3) -> str:
        parts = [self._title()]  # (decimals: the protocol's; the tables are written as the lists are)
        for i, (title, df) in enumerate(self._sections()):
            if i == 2 and not len(df):  # no reasons: the case was not on that night's list
                continue
            parts += ["", title, df.to_string(index=False) if len(df) else "-"]
            if i == 0 and self.n_other_institutions:
                parts.append(f"+ {self.n_other_institutions} × {text('case.other_institution', self.language)}")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        out = [f"<b>{html.escape(self._title())}</b>"]
        for title, df in self._sections():
            if len(df):
                out.append(f"<h4>{html.escape(title)}</h4>" + df.to_html(index=False))
        return "".join(out)

    def plot(self, ax=None, *, language: str | None = None):
        """The timeline of the spells this institution may see, the as-of line and the flags, in ``language``
        (default: the institution's list language, :attr:`language`)."""
        from .plots import plot_timeline

        return plot_timeline(self._spells, self._person, as_of=self.as_of,
                             label=f"{self.institution} {self.case_id}",
                             language=self.language if language is None else language,
                             flags=self.flags.iloc[0] if len(self.flags) else None, ax=ax)

    def to_dir(self, path: str | Path, *, min_cell_size: int | None = None, plots: bool = True,
               language: str | None = None, xlsx: bool | None = None) -> list[Path]:
        """Write the lookup's tables (CSV, xlsx and/or Parquet) and its timeline (PNG), as the coordinator read them.

        As :meth:`iizrisk._results.ResultMixin.to_dir`, but ``language`` defaults to the view's
        own: the object's ``output_language`` when set, else :attr:`language` (the institution's
        list language, that of :meth:`plot` and the HTML), so the files a coordinator keeps match
        what they saw. A code the catalogue lacks raises :class:`~iizrisk.errors.ConfigError`.
        """
        if language is None:
            language = self.output_language if self.output_language is not None else self.language
        return self._write_dir(path, min_cell_size=min_cell_size, plots=plots, language=language, xlsx=xlsx)

    def _default_min_cell_size(self) -> int:
        return 1  # one person, for that person's own case work: nothing to aggregate

    def _output_tables(self, k: int) -> list[OutputTable]:
        # every table, an empty one with its headers: a folder written for another case before holds no
        # table of that case next to this one's (a case not on the list has no reasons)
        return [OutputTable(name, df) for name, df in (("timeline", self.timeline), ("flags", self.flags),
                                                        ("reasons", self.reasons), ("risk_history", self.risk_history),
                                                        ("reviews", self.reviews))]

    def _output_figures(self, tables, language: str = "en") -> list[OutputFigure]:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 2.6))
        self.plot(ax=fig.subplots(), language=language)
        return [OutputFigure("timeline", fig)]


#: The columns of the reasons table (the case's row on that night's list)
_REASON_COLUMNS = ["rank", "risk", "risk_band", "reason_1_text", "reason_2_text", "reason_3_text"]


def _blank_missing(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` for display with empty cells where values are missing (not "None", "NaN" or "<NA>"), whatever
    the column's dtype (a nullable integer refuses an empty string: made text first)."""
    out = df.astype(object)
    return out.where(out.notna(), "")


def case_lookup(settings, *, institution: str, case_id: str, as_of=None, spells: pd.DataFrame | None = None
                ) -> CaseView:
    """Look up one case of ``institution`` by its case number (see the module documentation).

    Parameters
    ----------
    settings : Settings or path to the deployment TOML
    institution : str
        The institution asking; only its own cases are searched.
    case_id : str
        The case number as in the institution's export.
    as_of : date-like, optional
        Default: the last run in the history store, else yesterday.
    spells : DataFrame, optional
        Canonical spells already read (default: ingest the deployment's sources).

    Raises
    ------
    ValidationError
        No case with this number at this institution (exit 1); the message
        names neither the case nor any other institution; an ``as_of`` given
        more than 14 days after the spells' last recorded date
        (:func:`~iizrisk.spells.refuse_as_of_after_data`).
    """
    from .config import Settings
    from .history import HistoryStore
    from .io import ingest
    from .spells import point_in_time, refuse_as_of_after_data
    from .view import Definitions, View

    settings = (settings if isinstance(settings, Settings) else Settings.load(settings)).resolved()
    history = HistoryStore(settings.resolve(settings.output.history_dir))
    runs = history.as_of_dates("runs")
    if institution not in settings.institutions:  # a wrong code is not a wrong case number
        from .errors import ConfigError

        raise ConfigError(f"case lookup: {_time._shown(str(institution))} is not an institution of this deployment; "
                          f"use one of {', '.join(settings.institutions)} (case matters)")
    t = _time.parse_iso_date(as_of, "as-of date") if as_of is not None else (
        runs[-1] if runs else dt.date.today() - dt.timedelta(days=1))
    _time.not_after_today(t, "case lookup: the as-of date")
    w = settings.worklist
    lang = w.language_per_institution.get(institution, w.language)
    spells = ingest(settings).spells if spells is None else spells
    if as_of is not None:  # a day long after the data: open registrations would be shown as running on unseen
        refuse_as_of_after_data(spells, _time.day(t), what="case lookup: the as-of date")
    ts = pd.Timestamp(t)
    # the rows as known on the evening of t: a case opened (or recorded) later is not known yet, an end
    # recorded later is open then
    known = point_in_time(spells, t)
    inst = known["institution"].astype("str")
    case = known["case_id"].astype("str") if "case_id" in known.columns else pd.Series("", index=known.index)
    hit = (inst == institution) & (case == str(case_id).strip())
    persons = pd.unique(known.loc[hit, "person_id"].astype(str))
    if len(persons) != 1:
        raise ValidationError(f"case lookup: {text('case.not_found', 'en', institution=institution)}; check the "
                              "case number in your case management system"
                              + ("" if not len(persons) else " (the number belongs to several people: a data "
                                 "error for the data steward)"))
    person = str(persons[0])
    own = known[(known["person_id"].astype(str) == person).to_numpy()]
    allowed = {institution} | set(w.disclose_institutions)
    show = own["institution"].astype(str).isin(allowed).to_numpy()
    shown = own[show]
    n_other = int(own.loc[~show, "institution"].astype(str).nunique())
    end = pd.to_datetime(shown["end_date"])  # NaT for an end after t, or recorded after it
    timeline = pd.DataFrame({
        "institution": shown["institution"].astype(str).to_numpy(),
        "case_ids": np.where(shown["institution"].astype(str) == institution,
                             shown["case_id"].astype(str) if "case_id" in shown else "", ""),
        "start_date": pd.to_datetime(shown["start_date"]).dt.date.to_numpy(),
        "end_date": np.where(end.isna(), None, end.dt.date.astype(object)),
        "exit_reason": np.where(end.isna(), None,
                                shown["exit_reason"].astype(object) if "exit_reason" in shown else None),
    }).sort_values(["start_date", "institution"], kind="stable").reset_index(drop=True)
    view = View.at(spells[(spells["person_id"].astype(str) == person).to_numpy()], t,
                   Definitions.from_settings(settings))
    flags = view.flags.drop(columns=["person_id"], errors="ignore")
    reasons = _reasons_on_list(settings, institution, str(case_id).strip(), t)
    risk = _risk_history(history, person, t, institution)
    reviews = history.reviews()
    reviews = reviews[(reviews["institution"].astype(str) == institution)
                      & (reviews["person_id"].astype(str) == person)
                      & (pd.to_datetime(reviews["review_date"]) <= ts)]
    reviews = reviews[["review_date", "decision", "decided_by", "note", "listed", "band_at_review"]]
    reviews = reviews.reset_index(drop=True)
    # a note stored before the import refused every spelling of an AHV number is never shown
    from .pseudonym import ahv_in_free_text

    for column in ("note", "decided_by"):
        raw = ahv_in_free_text(reviews[column])
        if raw.any():
            reviews.loc[raw, column] = text("case.withheld_ahv", lang)
    plot_spells = shown.drop(columns=[c for c in ("case_id",) if c in shown.columns])
    return CaseView(institution=institution, case_id=str(case_id).strip(), as_of=t, timeline=timeline,
                    n_other_institutions=n_other, flags=flags.reset_index(drop=True), reasons=reasons,
                    risk_history=risk, reviews=reviews, language=lang, _spells=plot_spells, _person=person)


def _reasons_on_list(settings, institution: str, case_id: str, t: dt.date) -> pd.DataFrame:
    """The row of the case on that night's published list of the institution (reasons in its language)."""
    folder = settings.resolve(settings.output.dir) / t.isoformat() / "worklists" / f"{institution}.parquet"
    if not Path(folder).is_file():  # no list that night: the table with its headers and no row
        return pd.DataFrame(columns=_REASON_COLUMNS)
    wl = pd.read_parquet(folder)
    on = wl["case_ids"].astype(str).str.split(";").map(lambda ids: case_id in ids)
    return wl.loc[on.to_numpy(dtype=bool), [c for c in _REASON_COLUMNS if c in wl.columns]].reset_index(drop=True)


def _risk_history(history, person: str, t: dt.date | None = None, institution: str | None = None) -> pd.DataFrame:
    """The person's risk, band and rank among everyone scored in every run (up to ``t``) the history holds
    (a filter per night); with ``institution`` also the rank on that institution's list that night (empty
    when not listed).

    The two ranks differ: the lists' "Rang" is the place on one institution's list, ``rank_all`` the place
    among everyone scored in the canton (the case lookup showed the latter under the list's header).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    ranks: dict[dt.date, int] = {}  # the nights the person was on the institution's list, from the history
    if institution is not None:
        lists = history.read("worklists", until=t, require=("institution", "person_id", "rank"))
        if len(lists):
            mine = lists[(lists["person_id"].astype(str) == person).to_numpy()
                         & (lists["institution"].astype(str) == institution).to_numpy()]
            ranks = dict(zip(pd.to_datetime(mine["as_of"]).dt.date, mine["rank"].astype(int), strict=True))
    rows = []
    for d in history.as_of_dates("scores"):
        if t is not None and d > t:
            break
        part = history.root / "scores" / f"as_of={d.isoformat()}" / "part-0.parquet"
        try:
            tab = pq.read_table(part, columns=["person_id", "risk", "risk_band", "rank"],
                                filters=[("person_id", "==", person)]).to_pandas()
        except (pa.ArrowException, OSError) as exc:  # a damaged partition was an internal error
            raise ValidationError(f"{part}: not a readable scores table ({exc}); the history store was changed by "
                                  "hand: restore the partition from a backup, or remove it") from None
        if len(tab):
            row: dict = {"as_of": d, "risk": float(tab["risk"].iloc[0]), "risk_band": str(tab["risk_band"].iloc[0])}
            if institution is not None:
                row["rank_on_list"] = ranks.get(d)
            rows.append({**row, "rank_all": int(tab["rank"].iloc[0])})
    cols = ["as_of", "risk", "risk_band", *(["rank_on_list"] if institution is not None else []), "rank_all"]
    out = pd.DataFrame(rows, columns=cols)
    if institution is not None:
        out["rank_on_list"] = out["rank_on_list"].astype("Int64")
    return out

