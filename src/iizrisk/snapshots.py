"""Snapshots as a dataset: point-in-time features and labels for many as-of dates, built once.

Training, model selection, the fairness audit and the research study all need
the same thing: the features of everyone with an open spell at many as-of
dates (month ends), and each snapshot's outcome over the horizon. Built in one
go for a national population they do not fit in memory (3.7 million persons
at 60 month ends are 220 million rows), and built again by each of them they
cost the same hour several times. :func:`build_snapshots` writes them once, to
a partitioned Parquet dataset::

    DIR/
      dataset.json                       what was built, from what, how
      as_of=2023-01-31/bucket=00.parquet
      as_of=2023-01-31/bucket=01.parquet ...

* **Partitioned by as-of date and by person bucket.** A person's bucket is a
  fixed hash of the pseudonym (:func:`person_bucket`), so a bucket holds the
  same persons at every date: reading some buckets is a random sample of
  persons with all their snapshots (what :func:`iizrisk.model.train`'s
  ``max_persons`` and :func:`read_snapshots` ``buckets=`` use).
* **Bounded memory.** One bucket's spells are built into features one date at
  a time: memory depends on the bucket, not on the population or the number
  of dates. Features and labels of a person depend on that person's rows only,
  so a bucket's snapshots equal the whole population's rows of those persons
  (a test checks it).
* **Crash-safe and resumable.** Each partition file is written atomically
  (:mod:`iizrisk.store`): it is complete or absent. A second call with the same
  data and settings skips the partitions that exist; with other data or
  settings it refuses (``dataset.json`` records both), so a dataset never mixes
  two builds.
* **No dictionary per row group.** Pseudonyms are written as plain strings (a
  categorical's dictionary would be repeated in every row group).
* **On Dask** (``client=``, :mod:`iizrisk.distributed`): each bucket is a task
  that writes its own partitions into the folder (shared storage); the files
  are byte-identical to the single-process build, and either path finishes
  a build the other started.

Examples
--------
>>> import tempfile, pandas as pd
>>> rows = pd.DataFrame({
...     "person_id": ["a", "a", "b", "c"], "institution": ["ALV", "SH", "ALV", "IV"],
...     "start_date": pd.to_datetime(["2022-01-01", "2022-06-01", "2022-03-01", "2022-02-01"]),
...     "end_date": pd.to_datetime(["2022-05-15", None, "2022-04-30", None])})
>>> snaps = build_snapshots(rows, tempfile.mkdtemp(), as_of=["2022-06-30", "2022-07-31"], buckets=2,
...                         horizon_months=1, observed_until="2022-12-31")
>>> X, labels = snaps.read()
>>> sorted(X.index.get_level_values("person_id").unique())
['a', 'c']
>>> labels.columns.tolist()
['outcome', 'observed']
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__, _time
from ._checks import whole_number
from ._progress import Steps
from .errors import ConfigError, ValidationError, withhold_long_numbers
from .features import PointInTimeFeatures
from .outcomes import compute_outcome, get_outcome, pension_starts
from .outcomes import observed_until as _observed_until
from .schema import data_fingerprint, input_info
from .spells import as_of_day, build_timeline
from .store import write_json_atomic, write_parquet_atomic

__all__ = ["SnapshotSet", "build_snapshots", "person_bucket", "person_fraction", "read_snapshots"]

logger = logging.getLogger("iizrisk")

META_FILE = "dataset.json"
#: the hash behind buckets and samples; part of every dataset's meta so that a change is noticed
HASH_METHOD = "pandas.util.hash_array (SipHash-2-4, key 0123456789123456) of the pseudonym"


def _hash(ids) -> np.ndarray:
    """A fixed 64-bit hash per pseudonym (vectorised; the same on every machine)."""
    values = np.asarray(pd.Index(ids).astype("str"), dtype=object)
    return pd.util.hash_array(values, hash_key="0123456789123456", categorize=False)


def person_bucket(ids, buckets: int) -> np.ndarray:
    """The bucket ``0 .. buckets-1`` of each pseudonym: a fixed hash modulo ``buckets``.

    >>> bool(person_bucket(["a", "b", "a"], 16)[2] == person_bucket(["a"], 16)[0])
    True
    """
    whole_number(buckets, "buckets", 1, 4096, example="64")
    return (_hash(ids) % np.uint64(buckets)).astype(np.int64)


def person_fraction(ids) -> np.ndarray:
    """A fixed position in ``[0, 1)`` per pseudonym: ``person_fraction(ids) < f`` samples a share ``f``.

    Independent of the buckets (other bits of the hash), so a sample is spread over every bucket.
    """
    return (_hash(ids) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _rows_of(spells: pd.DataFrame, mask_of_ids) -> pd.DataFrame:
    """The rows of the persons for whom ``mask_of_ids(unique ids)`` is True (ids hashed once each)."""
    codes, uniques = pd.factorize(spells["person_id"])
    keep = np.asarray(mask_of_ids(uniques), dtype=bool)
    return spells.loc[keep[codes]] if len(codes) else spells


def sample_spells(spells: pd.DataFrame, max_persons: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows of a fixed random sample of about ``max_persons`` persons, and what was sampled.

    The sample is ``person_fraction(id) < max_persons / persons``: the same
    persons for the same data, whatever the row order, and nested (a larger
    sample holds a smaller one).
    """
    whole_number(max_persons, "max_persons", 1, unit="persons", example="300000")
    n = int(spells["person_id"].nunique())
    if n <= max_persons:
        return spells, {"persons": n, "of_persons": n, "fraction": 1.0, "method": "all persons"}
    f = max_persons / n
    out = _rows_of(spells, lambda ids: person_fraction(ids) < f)
    return out, {"persons": int(out["person_id"].nunique()), "of_persons": n, "fraction": f,
                 "method": f"person_fraction(person_id) < {f:.6g}; {HASH_METHOD}"}


# ------------------------------------------------------------------ the dataset
@dataclass(frozen=True)
class SnapshotSet:
    """A snapshot dataset on disk (:func:`build_snapshots`); read it with :meth:`read`."""

    path: Path
    meta: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path) -> SnapshotSet:
        """Open a dataset folder (its ``dataset.json`` must exist)."""
        path = Path(path)
        try:
            meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: not a snapshot dataset (no {META_FILE}); build it with "
                              "`iizrisk snapshots`") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValidationError(f"{path / META_FILE}: not readable JSON ({exc}); rebuild the dataset") from exc
        _check_meta(meta, path / META_FILE)
        return cls(path, meta)

    @property
    def dates(self) -> list[pd.Timestamp]:
        """The as-of dates of the dataset."""
        return [pd.Timestamp(d) for d in self.meta["as_of"]]

    @property
    def buckets(self) -> int:
        return int(self.meta["buckets"])

    def features(self) -> PointInTimeFeatures:
        """The fitted feature transformer the snapshots were built with."""
        try:
            return PointInTimeFeatures(**self.meta["features"]).fit()
        except (TypeError, ValueError) as exc:  # a dataset.json edited by hand or of another version
            raise ValidationError(withhold_long_numbers(
                f"{self.path / META_FILE}: its features cannot be rebuilt ({exc}); build the dataset anew with "
                "`iizrisk snapshots`")) from None

    def partition(self, as_of, bucket: int) -> Path:
        return self.path / f"as_of={pd.Timestamp(as_of).date().isoformat()}" / f"bucket={bucket:03d}.parquet"

    def missing(self) -> list[tuple[pd.Timestamp, int]]:
        """Partitions not (yet) written: a build that stopped is resumed by building again."""
        return [(d, b) for d in self.dates for b in range(self.buckets) if not self.partition(d, b).exists()]

    def read(self, *, as_of=None, buckets=None, columns: list[str] | None = None,
             observed_only: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Features and labels of some dates and buckets.

        Parameters
        ----------
        as_of : date-like or sequence, optional
            Dates to read (default: all).
        buckets : sequence of int, optional
            Buckets to read (default: all): a random sample of persons.
        columns : list of str, optional
            Feature columns to read (default: all).
        observed_only : bool
            Leave out snapshots whose horizon is not yet observed.

        Returns
        -------
        (X, labels)
            ``X`` as :meth:`PointInTimeFeatures.transform` returns it (index
            ``person_id``, ``as_of``; sorted by as-of, then bucket); ``labels``
            with the same index: ``outcome`` (nullable boolean), ``observed``.

        Raises
        ------
        ValidationError
            A partition asked for is missing (an unfinished build).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        dates = self.dates if as_of is None else [pd.Timestamp(d) for d in
                                                   ([as_of] if np.ndim(as_of) == 0 or isinstance(as_of, str)
                                                    else as_of)]
        known = set(self.dates)
        unknown = [d.date().isoformat() for d in dates if d not in known]
        if unknown:
            raise ConfigError(f"{self.path}: no snapshots at {unknown}; the dataset holds "
                              f"{self.meta['as_of'][0]} to {self.meta['as_of'][-1]}")
        bks = range(self.buckets) if buckets is None else [int(b) for b in buckets]
        cols = None if columns is None else ["person_id", "as_of", *columns, "outcome", "observed"]
        parts = []
        for d in dates:
            for b in bks:
                p = self.partition(d, b)
                if not p.exists():
                    raise ValidationError(f"{p}: partition missing (the build stopped before it); run "
                                          "`iizrisk snapshots` again with the same arguments to finish it")
                try:
                    parts.append(pq.read_table(p, columns=cols))
                except (pa.ArrowException, ValueError) as exc:  # another file put there, or damaged
                    raise ValidationError(_foreign_partition(p, exc)) from None
        try:
            table = pa.concat_tables(parts) if parts else None
        except (pa.ArrowException, ValueError) as exc:  # a partition of other columns
            raise ValidationError(f"{self.path}: its partitions do not share their columns ({exc.__class__.__name__}); "
                                  "a file was put there by something else: delete the folder and build it again "
                                  "with `iizrisk snapshots`") from None
        frame = table.to_pandas() if table is not None else pd.DataFrame(columns=cols or [])
        if observed_only and len(frame):
            frame = frame[frame["observed"].to_numpy(dtype=bool)]
        frame["person_id"] = frame["person_id"].astype("str")
        frame = frame.set_index(["person_id", "as_of"])
        labels = frame[["outcome", "observed"]].copy()
        labels["outcome"] = labels["outcome"].astype("boolean")
        return frame.drop(columns=["outcome", "observed"]), labels


#: what dataset.json must hold (a file of another tool, or edited by hand, was an internal error)
_META_KEYS = {"as_of": list, "buckets": int, "outcome": str, "horizon_months": int, "observed_until": str,
              "features": dict}


def _check_meta(meta: Any, where: Path) -> None:
    """Refuse a ``dataset.json`` that :func:`build_snapshots` did not write (exit 1), naming what is wrong."""
    fix = "it is not a dataset written by `iizrisk snapshots`: build one with it (into a new folder)"
    if not isinstance(meta, dict):
        kind = {list: "list", str: "text", type(None): "null"}.get(type(meta), "number")
        raise ValidationError(f"{where}: holds a JSON {kind}, not the description of a snapshot dataset; {fix}")
    bad = sorted(k for k, kind in _META_KEYS.items()
                 if not isinstance(meta.get(k), kind) or isinstance(meta.get(k), bool))
    if bad:
        raise ValidationError(f"{where}: lacks {', '.join(bad)} (or holds the wrong type); {fix}")
    try:
        days = [pd.Timestamp(d) for d in meta["as_of"]]
        pd.Timestamp(meta["observed_until"])
    except (TypeError, ValueError):
        raise ValidationError(f"{where}: as_of or observed_until holds something other than dates; {fix}") from None
    if not days or not 1 <= meta["buckets"] <= 4096 or not 1 <= meta["horizon_months"]:
        raise ValidationError(f"{where}: no as-of date, or a number of buckets or a horizon out of range; {fix}")


def _foreign_partition(p: Path, exc: Exception) -> str:
    """The message of a partition that cannot be read as one (a file put there, or damaged)."""
    return (f"{p}: not a partition of this dataset ({exc.__class__.__name__}: a damaged file or one put there by "
            "something else); delete it and run `iizrisk snapshots` again with the same arguments to rebuild it")


def read_snapshots(path: str | Path, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``SnapshotSet.open(path).read(**kwargs)``."""
    return SnapshotSet.open(path).read(**kwargs)


def _fingerprint(spells: pd.DataFrame, interventions: pd.DataFrame | None) -> str:
    """The spells' data fingerprint, combined with the interventions' when there are any."""
    import hashlib

    fp = data_fingerprint(spells)
    if interventions is None or not len(interventions):
        return fp
    h = pd.util.hash_pandas_object(interventions.reset_index(drop=True), index=False).to_numpy()
    return hashlib.sha256(fp.encode() + h.tobytes()).hexdigest()


def build_snapshots(spells: pd.DataFrame, out: str | Path, *, as_of, interventions: pd.DataFrame | None = None,
                    outcome: str = "revolving_door", horizon_months: int = 12,
                    features: PointInTimeFeatures | None = None, buckets: int = 16, observed_until=None,
                    progress: bool | None = None, client: Any = None, jobs: int = 1) -> SnapshotSet:
    """Write the features and labels of everyone with an open spell at each as-of date.

    Parameters
    ----------
    spells : DataFrame
        Canonical spells of the whole export (the future included: labels need it).
    out : path
        The dataset folder (created; resumed when it holds the same build).
    as_of : sequence of date-like
        The as-of dates, e.g. :func:`iizrisk.features.as_of_dates` month ends.
    interventions : DataFrame, optional
    outcome : str, default "revolving_door"
    horizon_months : int, default 12
    features : PointInTimeFeatures, optional
        Its parameters are recorded; default the standard features.
    buckets : int, default 16
        Person buckets per date: memory is about one bucket's features at one date.
    observed_until : date-like, optional
        The export's last observed day (default from the data); later horizons are
        labelled ``pd.NA`` with ``observed`` False.
    progress : bool, optional
        A progress bar on stderr (default: only on a terminal).
    client : distributed.Client, optional
        Build the buckets as tasks on this Dask cluster (:mod:`iizrisk.distributed`):
        each task builds one bucket and writes its partitions into ``out``, which
        every worker must see at the same path (shared storage). The client
        splits the spells into buckets and sends each to a worker. The
        partitions are byte-identical to the single-process build, and a build
        stopped on Dask is finished by either path.
    jobs : int, default 1
        Buckets built at once in separate processes on this machine (joblib); 2 on
        a 2-core machine about halves the time. Each process holds one bucket, so
        memory grows by about one bucket's working set per extra job. The
        partitions are byte-identical to ``jobs=1``. Not with ``client``.

    Returns
    -------
    SnapshotSet

    Raises
    ------
    ConfigError
        ``out`` holds a dataset of other data or settings (nothing is written);
        with ``client``: Dask is not installed, a worker runs other package
        versions, or a worker cannot see ``out``.
    """
    get_outcome(outcome)
    whole_number(jobs, "jobs", 1, 256, unit="processes", example="2")
    if client is not None and jobs != 1:
        raise ConfigError("jobs is for processes on this machine; with a Dask client the cluster's workers "
                          "build the buckets (leave jobs at 1)")
    if client is not None:
        from .distributed import require_dask

        require_dask()  # before anything is written
    out = Path(out)
    dates = sorted({pd.Timestamp(_time.to_date(as_of_day(d))) for d in
                    ([as_of] if np.ndim(as_of) == 0 or isinstance(as_of, str) else as_of)})
    if not dates:
        raise ConfigError("as_of holds no date")
    ft = (features or PointInTimeFeatures())
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in ft.get_params().items()}
    params = json.loads(json.dumps(params, default=lambda v: list(np.atleast_1d(v)) if np.ndim(v) else v))
    ft = PointInTimeFeatures(**params).fit()
    last_day = _observed_until(spells) if observed_until is None else as_of_day(observed_until)
    meta = {
        "format": 1, "iizrisk": __version__, "as_of": [d.date().isoformat() for d in dates],
        "buckets": int(buckets), "outcome": outcome, "horizon_months": int(horizon_months),
        "observed_until": _time.to_date(last_day).isoformat(), "features": params,
        "data_fingerprint": _fingerprint(spells, interventions), "hash": HASH_METHOD,
        "spells_rows": int(len(spells)), "input_info": input_info(spells, interventions),
    }
    person_bucket(["x"], buckets)  # checks the number of buckets before anything is read
    old = out / META_FILE
    _refuse_foreign_folder(out, old)
    if old.exists():
        have = SnapshotSet.open(out).meta
        same = {k: have.get(k) for k in meta if k != "iizrisk"} == {k: v for k, v in meta.items() if k != "iizrisk"}
        if not same:
            diff = sorted(k for k in meta if k != "iizrisk" and have.get(k) != meta[k])
            which = ""
            if "as_of" in diff and have.get("as_of") and meta.get("as_of"):  # the month ends, say which
                which = (f": it holds {len(have['as_of'])} month ends {have['as_of'][0]} to {have['as_of'][-1]}, "
                         f"asked {len(meta['as_of'])} from {meta['as_of'][0]} to {meta['as_of'][-1]}")
            raise ConfigError(f"{out} holds snapshots of other data or settings ({', '.join(diff)} differ{which}); "
                              "give an empty folder, or delete this one to rebuild")
    else:
        write_json_atomic(meta, old)
    snaps = SnapshotSet(out, meta)
    todo = snaps.missing()
    if not todo:
        logger.info("snapshots: all %d partitions of %s exist", len(dates) * buckets, out)
        return snaps
    need = sorted({b for _, b in todo})
    codes, uniques = pd.factorize(spells["person_id"])
    row_bucket = person_bucket(uniques, buckets)[codes] if len(codes) else np.zeros(0, np.int64)
    iv_bucket = (person_bucket(interventions["person_id"], buckets)
                 if interventions is not None and len(interventions) else None)

    def bucket_input(b: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        iv = interventions.loc[iv_bucket == b] if interventions is not None and iv_bucket is not None \
            else interventions
        return spells.loc[row_bucket == b], iv

    paths = {b: [snaps.partition(d, b) for d in dates] for b in need}
    if client is not None:
        _build_on_dask(client, snaps, need, bucket_input, ft, dates, paths, outcome, int(horizon_months), last_day,
                       progress)
    elif jobs > 1 and len(need) > 1:
        _build_in_processes(int(jobs), need, bucket_input, ft, dates, paths, outcome, int(horizon_months), last_day,
                            progress)
    else:
        with Steps([f"bucket {b}" for b in need], progress, label="snapshots") as bar:
            for b in need:
                bar.step(f"bucket {b}")
                rows, iv = bucket_input(b)
                _build_bucket(ft, rows, iv, dates, paths[b], outcome, horizon_months, last_day)
                logger.debug("snapshots: bucket %d of %d written (%d rows of spells)", b + 1, buckets, len(rows))
    logger.info("snapshots: %d partitions written to %s", len(todo), out)
    return snaps


def _refuse_foreign_folder(out: Path, meta_file: Path) -> None:
    """Refuse (exit 2) a folder that holds files but no dataset: the partitions would be mixed with them.

    Hidden entries (a temporary file of a build that stopped) do not count; a build that stopped
    has its ``dataset.json`` (written first) and is resumed.
    """
    if meta_file.exists() or not out.is_dir():
        return
    try:
        entries = sorted(e.name for e in out.iterdir() if not e.name.startswith("."))
    except OSError:  # the build's own write says why, naming the folder
        return
    if entries:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise ConfigError(withhold_long_numbers(
            f"{out} holds other files ({shown}) and no snapshot dataset ({META_FILE}): the partitions would be "
            "mixed with them; give a new or empty folder, or one `iizrisk snapshots` wrote"))


def _build_bucket(ft: PointInTimeFeatures, rows: pd.DataFrame, iv, dates: list[pd.Timestamp], paths: list[Path],
                  outcome: str, horizon_months: int, last_day: int) -> int:
    """Write one bucket's missing partitions (``paths[i]`` for ``dates[i]``); the number written."""
    # labels exactly as compute_outcome(rows, ...) makes them, with the full timeline built once
    full = build_timeline(rows) if len(rows) else None
    opts = {"pension_starts": pension_starts(rows, full)} if outcome == "disintegration" and full else {}
    n = 0
    for d, path in zip(dates, paths, strict=True):
        if path.exists():
            continue
        write_parquet_atomic(_partition(ft, rows, d, iv, full, outcome, horizon_months, last_day, opts), path)
        n += 1
    return n


def _bucket_job(b: int, ft: PointInTimeFeatures, rows: pd.DataFrame, iv, dates: list[pd.Timestamp],
                paths: list[Path], outcome: str, horizon_months: int, last_day: int) -> int:
    """One bucket in a worker process of :func:`_build_in_processes`; returns the bucket."""
    _build_bucket(ft, rows, iv, dates, paths, outcome, horizon_months, last_day)
    return b


def _build_in_processes(jobs: int, need: list[int], bucket_input, ft: PointInTimeFeatures,
                        dates: list[pd.Timestamp], paths: dict[int, list[Path]], outcome: str, horizon_months: int,
                        last_day: int, progress: bool | None) -> None:
    """The buckets ``need``, ``jobs`` at once in worker processes on this machine (joblib's loky backend).

    Each process gets one bucket's rows through a pipe (``max_nbytes=None``: no
    memory-mapped copy of the data in a temporary folder) and writes its
    partitions itself, atomically; a bucket is handed out only when a process
    is free, so the parent holds at most ``jobs`` buckets' copies at a time.
    """
    from joblib import Parallel, delayed

    tasks = (delayed(_bucket_job)(b, ft, *bucket_input(b), dates, paths[b], outcome, horizon_months, last_day)
             for b in need)
    with Steps([f"bucket {b}" for b in need], progress, label=f"snapshots ({jobs} processes)") as bar:
        done = Parallel(n_jobs=min(jobs, len(need)), backend="loky", max_nbytes=None, pre_dispatch="n_jobs",
                        return_as="generator_unordered")(tasks)
        for b in done:
            bar.step(f"bucket {b}")
    logger.info("snapshots: %d buckets built in %d processes", len(need), min(jobs, len(need)))


def _bucket_task(meta_file: str, ft: PointInTimeFeatures, rows: pd.DataFrame, iv, dates: list[pd.Timestamp],
                 paths: list[str], outcome: str, horizon_months: int, last_day: int) -> dict[str, Any]:
    """One bucket as a Dask task, on a worker: :func:`_build_bucket`, with the worker's cost.

    Refuses to write when the worker does not see the dataset's ``dataset.json``
    (the folder is not on storage shared with the client).
    """
    import os
    import time

    if not Path(meta_file).exists():
        raise ConfigError(f"a Dask worker ({os.uname().nodename}) does not see {meta_file}: the dataset folder "
                          "must be on storage every worker mounts at the same path")
    t0, c0 = time.perf_counter(), time.process_time()
    n = _build_bucket(ft, rows, iv, dates, [Path(p) for p in paths], outcome, horizon_months, last_day)
    return {"written": n, "rows": len(rows), "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0, "pid": os.getpid()}


def _build_on_dask(client, snaps: SnapshotSet, need: list[int], bucket_input, ft: PointInTimeFeatures,
                   dates: list[pd.Timestamp], paths: dict[int, list[Path]], outcome: str, horizon_months: int,
                   last_day: int, progress: bool | None) -> list[dict[str, Any]]:
    """The buckets ``need`` as Dask tasks (:func:`iizrisk.distributed.run_tasks`); each task's cost."""
    from .distributed import check_workers, run_tasks

    n_workers = check_workers(client)
    meta_file = str((snaps.path / META_FILE).resolve())
    args = ((meta_file, ft, *bucket_input(b), dates, [str(p.resolve()) for p in paths[b]], outcome,
             horizon_months, last_day) for b in need)
    with Steps([f"bucket {b}" for b in need], progress, label="snapshots on Dask") as bar:
        done = run_tasks(client, _bucket_task, args, on_done=lambda i, _: bar.step(f"bucket {need[i]}"))
    logger.info("snapshots: %d buckets built on Dask (%d workers at the start)", len(need), n_workers)
    left = [(d, b) for d, b in snaps.missing() if b in set(need)]
    if left:
        raise ValidationError(f"{snaps.path}: {len(left)} partition(s) still missing after the Dask build; the "
                              "workers wrote elsewhere (the folder must be shared storage at the same path)")
    return done


def _partition(ft: PointInTimeFeatures, rows: pd.DataFrame, d: pd.Timestamp, iv, full, outcome: str,
               horizon_months: int, last_day: int, opts: dict) -> pd.DataFrame:
    """One (date, bucket) partition: ``person_id``, ``as_of``, the features, ``outcome``, ``observed``."""
    X = ft.transform(rows, as_of=d, interventions=iv) if len(rows) else None
    if X is None or not len(X):
        cols = {"person_id": pd.Series([], dtype="str"), "as_of": pd.Series([], dtype="datetime64[s]")}
        cols |= {c: pd.Series([], dtype="float32") for c in ft.get_feature_names_out()}
        return pd.DataFrame(cols | {"outcome": pd.Series([], dtype="boolean"),
                                    "observed": pd.Series([], dtype="bool")})
    lab = compute_outcome(full, outcome=outcome, horizon_months=horizon_months, pairs=X.index,
                          observed_until=last_day, **opts)
    frame = X.reset_index()
    frame["person_id"] = frame["person_id"].astype("str")
    frame["as_of"] = frame["as_of"].astype("datetime64[s]")
    frame["outcome"] = pd.array(lab["outcome"].array, dtype="boolean")
    frame["observed"] = lab["observed"].to_numpy(dtype=bool)
    return frame


def default_dates(spells: pd.DataFrame, *, first=None, last=None, burn_in_months: int = 24,
                  horizon_months: int | None = None, latest: int | None = None) -> list[pd.Timestamp]:
    """Month ends from ``burn_in_months`` after the first start (or ``first``) to the last observed day (or ``last``).

    ``first`` before the first start and ``last`` after the last observed day
    are narrowed to the data (with a log line): a month end before anyone's
    first spell holds nobody, and one after the last observed day would treat
    every open spell as still open on days nobody has reported yet (the
    point-in-time rule: nothing at an as-of date may need data after the
    export). A given ``last`` and the default end at the same day, so they give
    the same month ends.

    Parameters
    ----------
    spells : DataFrame
        Canonical spells; their first start and last observed day
        (:func:`iizrisk.outcomes.observed_until`) bound the dates.
    first, last : date-like, optional
        The range asked for (``iizrisk snapshots --from/--to``).
    burn_in_months : int, default 24
        With no ``first``: the history before the first month end.
    horizon_months : int, optional
        Only the month ends whose label horizon the data observe (the
        labelled ones: all that training and model selection learn from).
    latest : int, optional
        With no ``first``: only the last ``latest`` of the month ends (the
        burn-in still holds), as ``iizrisk train`` keeps to its last
        labelled months (:func:`iizrisk.selection.snapshot_dates`).

    Raises
    ------
    ConfigError
        No month end within ``first`` and ``last``: names the data's period.
    ValidationError
        No month end by default: the export is too short (names its period).
    """
    start = _time.to_days(spells["start_date"])
    start = start[start != _time.MISSING_DAY]
    if not len(start):
        raise ValidationError("spells: no start dates; nothing to snapshot")
    earliest = pd.Timestamp(_time.to_date(int(start.min())))
    observed_day = _observed_until(spells)
    observed = pd.Timestamp(_time.to_date(observed_day))
    lo = pd.Timestamp(first) if first is not None else pd.Timestamp(
        _time.to_date(int(_time.add_months(int(start.min()), burn_in_months))))
    hi = pd.Timestamp(last) if last is not None else observed
    if lo < earliest:
        logger.info("snapshots: from %s, the first start, not %s: nobody is open before it",
                    earliest.date(), lo.date())
        lo = earliest
    if hi > observed:  # the same end as the default: no month end after the last observed day
        logger.info("snapshots: up to %s, the last observed day, not %s: the data end there, and a month end "
                    "after it is not fully observed", observed.date(), hi.date())
        hi = observed
    dates = pd.date_range(lo, hi, freq="ME")
    if horizon_months is not None and len(dates):
        ends = _time.add_months(_time.to_days(dates), int(horizon_months))
        dates = dates[ends <= observed_day]
    if latest is not None and first is None:
        dates = dates[max(len(dates) - int(latest), 0):]
    if not len(dates):
        data = f"the spells start on {earliest.date()} and are observed until {observed.date()}"
        labelled = (f" whose {horizon_months}-month horizon is observed" if horizon_months is not None else "")
        if first is not None or last is not None:
            raise ConfigError(f"no month end{labelled} between {lo.date()} and {hi.date()}: {data}; give --from "
                              "and --to within that period")
        raise ValidationError(f"no month end{labelled} to snapshot: {data}, and the first month end comes "
                              f"{burn_in_months} months after the first start (a history to look back on); "
                              "the export is too short")
    return list(dates)
