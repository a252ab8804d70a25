"""History store: an append-only Parquet dataset of past scores and worklists.

Layout (Hive-style partitions, readable by pandas, pyarrow, DuckDB or Spark)::

    history/
      scores/as_of=2024-06-30/part-0.parquet
      worklists/as_of=2024-06-30/part-0.parquet
      runs/as_of=2024-06-30/part-0.parquet       (one row per institution: rows, cases, list size)
      reviews/reviews.parquet                    (the coordinators' reviews, iizrisk.reviews)

Each nightly run adds one partition per table; re-running an as-of date
replaces that partition atomically (file rename), so the store never holds
half a partition. The ``runs`` partition is written last and names the run
folder it belongs to: it marks the date's entry as complete. Every published
run folder also carries its own copy of the entry (``history/``), so the
nightly job can restore an entry that a crash kept from reaching the store
(:meth:`HistoryStore.restore`). Retention removes partitions older than the
configured number of days before the run's as-of date (never tonight's, never
a newer one, never more than ``keep_days >= 1`` allows). The store answers "who was on yesterday's list?" (new on the
list) and serves audits.

The reviews are one table, not partitioned by run: an import replaces the
file atomically (one rename) with the old rows and the new ones merged, so an
import is stored whole or not at all, and re-importing a file writes the
same bytes. Retention removes reviews dated before the limit.

Examples
--------
>>> import tempfile, pandas as pd
>>> h = HistoryStore(tempfile.mkdtemp())
>>> _ = h.write("2024-06-29", scores=pd.DataFrame({"person_id": ["a"], "risk": [0.3]}))
>>> _ = h.write("2024-06-30", scores=pd.DataFrame({"person_id": ["a", "b"], "risk": [0.2, 0.4]}))
>>> [d.isoformat() for d in h.as_of_dates()]
['2024-06-29', '2024-06-30']
>>> h.previous("2024-06-30").isoformat()
'2024-06-29'
>>> len(h.read("scores"))
3
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import warnings
from pathlib import Path

import pandas as pd

from .errors import ConfigError, ValidationError
from .io import read_canonical_table
from .store import write_parquet_atomic

__all__ = ["HistoryStore", "HISTORY_SCORE_COLUMNS", "REVIEW_COLUMNS"]

logger = logging.getLogger("iizrisk")

_TABLES = ("scores", "worklists", "monitoring", "runs")
#: the columns of a run's ``scores.parquet`` that the history keeps
HISTORY_SCORE_COLUMNS = ("person_id", "outcome", "risk", "risk_band", "rank", "new_registration")


#: the columns of the reviews table (see :mod:`iizrisk.reviews`)
REVIEW_COLUMNS = ("institution", "person_id", "case_id", "review_date", "decision", "decided_by", "note",
                  "listed", "list_as_of", "band_at_review")


def _empty_reviews() -> pd.DataFrame:
    return pd.DataFrame({
        "institution": pd.Series([], dtype="str"), "person_id": pd.Series([], dtype="str"),
        "case_id": pd.Series([], dtype="str"), "review_date": pd.Series([], dtype="datetime64[s]"),
        "decision": pd.Series([], dtype="str"), "decided_by": pd.Series([], dtype="str"),
        "note": pd.Series([], dtype="str"),
        "listed": pd.Series([], dtype=bool), "list_as_of": pd.Series([], dtype="datetime64[s]"),
        "band_at_review": pd.Series([], dtype="str")})


def _date(value) -> dt.date:
    return pd.Timestamp(value).date()


class HistoryStore:
    """Past scores and worklists, partitioned by as-of date."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _part(self, table: str, as_of) -> Path:
        if table not in _TABLES:
            raise ValueError(f"unknown history table {table!r}; tables: {_TABLES}")
        return self.root / table / f"as_of={_date(as_of).isoformat()}" / "part-0.parquet"

    def write(self, as_of, **tables: pd.DataFrame) -> list[Path]:
        """Write (or replace) the partitions of one as-of date, one atomic rename per file.

        ``runs`` goes last: it marks the date's entry as complete.
        """
        written = []
        order = sorted(tables, key=lambda k: k == "runs")
        for name in order:
            df = tables[name]
            if df is None:
                continue
            written.append(write_parquet_atomic(df, self._part(name, as_of)))
        return written

    def run_token(self, as_of) -> str | None:
        """The run folder token recorded in the ``runs`` entry of a date (None without an entry)."""
        if not self.has(as_of, "runs"):
            return None
        df = read_canonical_table(self._part("runs", as_of))
        return str(df["run"].iloc[0]) if len(df) and "run" in df.columns else None

    def restore(self, as_of, folder: Path) -> list[Path]:
        """Copy a published run's own history entry (``folder/history``, and the history columns of
        ``folder/scores.parquet``) into the store.

        Done when the store lacks the date's entry or holds one of another run
        (a crash between publishing and writing history). Returns the files written (none when
        the store already held the entry).
        """
        src = Path(folder) / "history"
        runs = src / "runs.parquet"
        if not runs.is_file():
            return []
        token = str(read_canonical_table(runs)["run"].iloc[0])
        try:
            held = self.run_token(as_of)
        except ValidationError:  # a damaged entry blocked every later night: the run folder holds a copy
            held = None
            logger.warning("history: the entry of %s cannot be read; writing it anew from %s", _date(as_of), folder)
        if held == token:
            return []
        tables = {t: read_canonical_table(src / f"{t}.parquet") for t in _TABLES
                  if (src / f"{t}.parquet").is_file()}
        scores = Path(folder) / "scores.parquet"
        if "scores" not in tables and scores.is_file():  # the run's scores hold the history's columns
            import pyarrow.parquet as pq

            tables["scores"] = pq.read_table(scores, columns=list(HISTORY_SCORE_COLUMNS)).to_pandas()
        written = self.write(as_of, **tables)
        logger.warning("history: restored the entry of %s from its published run folder", _date(as_of))
        return written

    def as_of_dates(self, table: str = "scores") -> list[dt.date]:
        """The as-of dates held, oldest first."""
        base = self.root / table
        if not base.exists():
            return []
        out = []
        for p in base.iterdir():
            if p.name.startswith("as_of=") and (p / "part-0.parquet").exists():
                try:
                    out.append(dt.date.fromisoformat(p.name[6:]))
                except ValueError:
                    logger.warning("history: ignoring unexpected folder %s", p)
        return sorted(out)

    def has(self, as_of, table: str = "scores") -> bool:
        return self._part(table, as_of).exists()

    def previous(self, as_of, table: str = "scores") -> dt.date | None:
        """The latest as-of date strictly before ``as_of``, or None."""
        t = _date(as_of)
        earlier = [d for d in self.as_of_dates(table) if d < t]
        return earlier[-1] if earlier else None

    def read(self, table: str = "scores", *, as_of=None, since=None, until=None,
             require: tuple[str, ...] = ()) -> pd.DataFrame:
        """Rows of one table, with an ``as_of`` column, for one date or a range.

        ``require``: columns every partition must hold (a partition without them is refused, naming it).
        """
        dates = self.as_of_dates(table)
        if as_of is not None:
            dates = [d for d in dates if d == _date(as_of)]
        if since is not None:
            dates = [d for d in dates if d >= _date(since)]
        if until is not None:
            dates = [d for d in dates if d <= _date(until)]
        frames = []
        for d in dates:
            df = read_canonical_table(self._part(table, d))
            missing = [c for c in require if c not in df.columns]
            if missing:  # another table in its place was counted as nobody (exit 0)
                raise ValidationError(f"{self._part(table, d)}: not the {table} table (no column(s) {missing}); the "
                                      "history store was changed by hand: restore the partition from a backup, or "
                                      "remove it")
            df["as_of"] = pd.Timestamp(d)
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # ------------------------------------------------------------------ reviews
    @property
    def reviews_path(self) -> Path:
        return self.root / "reviews" / "reviews.parquet"

    def reviews(self, *, until=None) -> pd.DataFrame:
        """The stored reviews (:data:`REVIEW_COLUMNS`), those dated up to ``until`` when given."""
        if not self.reviews_path.is_file():
            return _empty_reviews()
        df = read_canonical_table(self.reviews_path)
        missing = [c for c in ("person_id", "decision", "review_date", "list_as_of") if c not in df.columns]
        if missing:  # another table in its place: the store was changed by hand
            raise ValidationError(f"{self.reviews_path}: not the reviews table (no column(s) {missing}); the "
                                  "history store was changed by hand: restore the file from a backup")
        for col in ("review_date", "list_as_of"):
            try:
                with warnings.catch_warnings():  # text in a date column: refused below, not parsed one by one
                    warnings.simplefilter("ignore", UserWarning)
                    df[col] = pd.to_datetime(df[col]).astype("datetime64[s]")
            except (ValueError, TypeError, OverflowError):  # a date column changed by hand was an internal error
                raise ValidationError(f"{self.reviews_path}: column {col!r} holds values that are not dates; the "
                                      "history store was changed by hand: restore the file from a backup") from None
        if "decided_by" not in df.columns:  # reviews stored before the files asked who decided: not recorded
            df.insert(df.columns.get_loc("decision") + 1, "decided_by", pd.Series(None, index=df.index, dtype=object))
        if until is not None:
            df = df[df["review_date"] <= pd.Timestamp(_date(until))].reset_index(drop=True)
        return df

    def write_reviews(self, reviews: pd.DataFrame) -> Path:
        """Replace the reviews table with ``reviews`` (one atomic rename)."""
        out = reviews[list(REVIEW_COLUMNS)].sort_values(
            ["review_date", "institution", "person_id", "decision"], kind="stable").reset_index(drop=True)
        return write_parquet_atomic(out, self.reviews_path)

    def prune(self, keep_days: int, *, today=None) -> list[dt.date]:
        """Remove partitions older than ``keep_days`` before ``today``; return the dates removed.

        ``today`` is the run's as-of date; a date after the real today counts as
        today, so a mistaken future as-of date cannot wipe the store.
        """
        if isinstance(keep_days, bool) or not isinstance(keep_days, int) or keep_days < 1:
            raise ConfigError(f"history_keep_days = {keep_days!r}: keep at least 1 day "
                              "(tonight's partition is never removed)")
        today = min(_date(today or dt.date.today()), dt.date.today())
        limit = today - dt.timedelta(days=int(keep_days))
        removed = set()
        for table in _TABLES:
            for d in self.as_of_dates(table):
                if d < limit:
                    shutil.rmtree(self._part(table, d).parent, ignore_errors=True)
                    removed.add(d)
        if self.reviews_path.is_file():
            reviews = self.reviews()
            old = reviews["review_date"] < pd.Timestamp(limit)
            if old.any():
                self.write_reviews(reviews[~old])
                logger.info("history: removed %d review(s) dated before %s", int(old.sum()), limit)
        if removed:
            logger.info("history: removed %d as-of date(s) older than %s", len(removed), limit)
        return sorted(removed)
