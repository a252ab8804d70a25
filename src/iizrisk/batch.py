"""The nightly job: from raw exports to per-institution worklists, crash-safe.

``iizrisk run CONFIG [--as-of YYYY-MM-DD]`` (and :func:`run_nightly` in
Python) ingests and validates every source, builds the point-in-time view at
the as-of date, computes flags and features, scores everyone with a spell
open on that day, explains the worklist rows and publishes one run folder::

    runs/
      2024-06-30 -> .store/2024-06-30.3f2a9c1e     (symlink, swapped atomically)
      latest     -> 2024-06-30
      .store/2024-06-30.3f2a9c1e/
        scores.parquet  flags.parquet  worklists/ALV.csv  worklists/ALV.parquet ...
        quarantine.parquet (only with errors="quarantine" and bad rows)
        manifest.json  summary.md  summary.html  timings.json  run.log

Reliability
-----------
* Everything is written to a temporary folder first; publication is one
  atomic symlink swap, so readers see the old run or the new one, never half.
* Re-running the same as-of date with the same inputs gives byte-identical
  files (all but ``timings.json`` and ``run.log``, which record when and how
  long) and replaces that date's run atomically.
* A lock file stops a second concurrent run (exit 4); a lock left by a dead
  process on this host is detected and removed.
* ``kill -9`` at any moment leaves the published runs intact; the next run
  cleans up the leftovers and completes normally.
* Bad input: exit 1 with the validation report, nothing published (or, with
  ``errors = "quarantine"``, bad rows set aside in ``quarantine.parquet``).

Exit codes: 0 ok, 1 invalid input, 2 usage/configuration, 3 model problem,
4 locked by another run, 5 internal error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from . import __version__, _time
from .config import Settings
from .errors import LockedError
from .history import HistoryStore
from .io import ingest, read_interventions, write_parquet_atomic
from .spells import positions
from .worklist import NOTICE, WorklistSet, build_worklists, open_cases_at, recently_assessed

__all__ = ["RunResult", "RunLock", "run_nightly", "STAGES"]

logger = logging.getLogger("iizrisk")

STAGES = ("ingest", "timeline", "flags", "model", "score", "explain", "worklists", "write", "publish",
          "history")
_FAULT_ENV = "IIZRISK_FAULT_AT"  # testing hook: SIGKILL the process when this stage starts


# ------------------------------------------------------------------ lock
class RunLock:
    """An exclusive lock file (``O_CREAT | O_EXCL``) holding pid, host and start time.

    A lock whose process no longer runs on this host is stale and is removed.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._held = False

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def _is_stale(self, info: dict) -> bool:
        if not info:  # unreadable or half-written: stale if older than a minute
            try:
                return time.time() - self.path.stat().st_mtime > 60
            except FileNotFoundError:
                return True
        if info.get("host") != socket.gethostname():
            return False
        try:
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, KeyError, ValueError):
            return False
        return False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = self._read()
                if self._is_stale(info):
                    logger.warning("removing stale lock %s (pid %s no longer runs)", self.path, info.get("pid"))
                    self.path.unlink(missing_ok=True)
                    continue
                raise LockedError(
                    f"another run holds the lock {self.path} (pid {info.get('pid', '?')} on "
                    f"{info.get('host', '?')}, started {info.get('started', '?')}); wait for it to finish. "
                    "If no run is active, delete the lock file.") from None
            with os.fdopen(fd, "w") as fh:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": dt.datetime.now().isoformat(timespec="seconds")}, fh)
            self._held = True
            return
        raise LockedError(f"could not take the lock {self.path}")

    def release(self) -> None:
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# ------------------------------------------------------------------ progress
class _Progress:
    """Stage progress on stderr when it is a terminal; nothing in cron."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.t0 = time.perf_counter()
        self.timings: dict[str, float] = {}
        self._stage: str | None = None
        self._t = self.t0

    def stage(self, name: str) -> None:
        now = time.perf_counter()
        if self._stage is not None:
            self.timings[self._stage] = round(now - self._t, 3)
        self._stage, self._t = name, now
        if name == "_end":
            return
        if os.environ.get(_FAULT_ENV) == name:
            os.kill(os.getpid(), signal.SIGKILL)
        logger.info("stage %s", name)
        if self.enabled:
            i = STAGES.index(name) + 1 if name in STAGES else 0
            bar = "#" * i + "." * (len(STAGES) - i)
            sys.stderr.write(f"\r[{bar}] {i}/{len(STAGES)} {name:<10} {now - self.t0:6.1f}s")
            sys.stderr.flush()

    def done(self) -> dict[str, float]:
        self.stage("_end")
        self.timings.pop("_end", None)
        self.timings["total"] = round(time.perf_counter() - self.t0, 3)
        if self.enabled:
            sys.stderr.write("\n")
        return self.timings


# ------------------------------------------------------------------ result
@dataclass
class RunResult:
    """What a nightly run published."""

    folder: Path
    as_of: dt.date
    manifest: dict
    worklists: WorklistSet
    scores: pd.DataFrame = field(repr=False)

    def _repr_html_(self) -> str:
        return (f"<b>Run {self.as_of}</b>: {self.manifest['persons_scored']:,} persons scored, "
                f"published at <code>{self.folder}</code>" + self.worklists._repr_html_())


# ------------------------------------------------------------------ helpers
def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_json(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def _cleanup(root: Path) -> None:
    """Remove leftovers of interrupted runs: temporary folders and unreferenced stores."""
    for p in root.glob(".tmp-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(".*.link-tmp"):
        p.unlink(missing_ok=True)
    store = root / ".store"
    if store.exists():
        referenced = {os.path.realpath(p) for p in root.iterdir() if p.is_symlink()}
        for p in store.iterdir():
            if os.path.realpath(p) not in referenced:
                shutil.rmtree(p, ignore_errors=True)


def _swap_symlink(link: Path, target: str) -> None:
    tmp = link.parent / f".{link.name}.link-tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _publish(tmp: Path, root: Path, as_of: dt.date, token: str) -> Path:
    store = root / ".store"
    store.mkdir(exist_ok=True)
    final = store / f"{as_of.isoformat()}.{token}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(store)
    link = root / as_of.isoformat()
    old = os.path.realpath(link) if link.is_symlink() else None
    if link.exists() and not link.is_symlink():
        raise LockedError(f"{link} exists and is not a run link; move it away")
    _swap_symlink(link, os.path.join(".store", final.name))
    latest = max((p.name for p in root.iterdir() if p.is_symlink() and _is_date(p.name)), default=None)
    if latest:
        _swap_symlink(root / "latest", latest)
    _fsync_dir(root)
    if old and old != os.path.realpath(final):
        shutil.rmtree(old, ignore_errors=True)
    return link


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_date(name: str) -> bool:
    try:
        dt.date.fromisoformat(name)
    except ValueError:
        return False
    return True


def _resolve_as_of(as_of) -> dt.date:
    if as_of is None:
        return dt.date.today() - dt.timedelta(days=1)
    return pd.Timestamp(as_of).date()


# ------------------------------------------------------------------ the run
def run_nightly(settings: Settings | str | Path, *, as_of=None, progress: bool | None = None,
                model=None) -> RunResult:
    """Run the nightly job once and publish its run folder.

    Parameters
    ----------
    settings : Settings or path to the deployment TOML
    as_of : date-like, optional
        Default: yesterday.
    progress : bool, optional
        Show a progress bar on stderr (default: only when stderr is a terminal).
    model : RiskModel, optional
        Use this fitted model instead of loading ``[model] dir`` (notebooks).

    Raises
    ------
    ValidationError, RawIdentifierError
        Invalid input (exit 1); nothing is published.
    ModelError
        The model is missing, tampered with or does not fit the input (exit 3).
    LockedError
        Another run holds the lock (exit 4).
    """
    from .flags import compute_flags
    from .model import load_model, read_manifest, score, signing_key
    from .spells import build_timeline

    if not isinstance(settings, Settings):
        settings = Settings.load(settings)
    t = _resolve_as_of(as_of)
    root = settings.resolve(settings.output.dir)
    root.mkdir(parents=True, exist_ok=True)
    history = HistoryStore(settings.resolve(settings.output.history_dir))
    with RunLock(root / ".lock"):
        _cleanup(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{t.isoformat()}-", dir=root))
        handler = logging.FileHandler(tmp / "run.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
        try:
            result = _run(settings, t, root, tmp, history, progress, model,
                          build_timeline, compute_flags, load_model, read_manifest, score, signing_key)
        except BaseException:
            logger.removeHandler(handler)
            handler.close()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.removeHandler(handler)
        handler.close()
        return result


def _release_memory() -> None:
    """Hand memory freed by a stage back to the operating system.

    glibc's heap and Arrow's allocator keep freed pages for reuse; after
    ingesting ten million rows that is gigabytes the next stages would stack
    their peak on. Best effort: skipped where the calls do not exist.
    """
    import ctypes
    import ctypes.util

    try:
        pa.default_memory_pool().release_unused()
    except (AttributeError, NotImplementedError):  # pragma: no cover - older pyarrow
        pass
    name = ctypes.util.find_library("c")
    try:
        if name:
            ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def _run(settings, t, root, tmp, history, progress, model, build_timeline, compute_flags,
         load_model, read_manifest, score, signing_key) -> RunResult:
    from .explain import explain, reason_codes

    prog = _Progress(progress)
    prog.stage("ingest")
    ing = ingest(settings)
    spells = ing.spells
    interventions = None
    if settings.deployment.interventions:
        interventions = read_interventions(settings.resolve(settings.deployment.interventions))
        interventions = interventions[pd.to_datetime(interventions["date"]) <= pd.Timestamp(t)]

    _release_memory()
    prog.stage("timeline")
    tl = build_timeline(spells, as_of=t, merge_gap_days=settings.deployment.merge_gap_days)

    prog.stage("flags")
    flags = compute_flags(tl, t, window_months=settings.deployment.window_months,
                          transition_gap_days=settings.deployment.transition_gap_days)

    prog.stage("model")
    if model is None:
        mdir = settings.resolve(settings.model.dir)
        key = signing_key(env=settings.model.signing_key_env,
                          file=settings.resolve(settings.model.signing_key_file)
                          if settings.model.signing_key_file else None)
        model = load_model(mdir, key=key)
        model_hash = read_manifest(mdir).get("model_sha256", "")
    else:
        mdir, model_hash = None, ""

    prog.stage("score")
    gap = int(model.features.merge_gap_days) if model.features is not None else 0
    same_view = gap == tl.merge_gap_days  # the flags' view serves the features too
    scores, X = score(model, spells, as_of=t, interventions=interventions,
                      bands=tuple(settings.worklist.risk_bands), return_features=True,
                      timeline=tl if same_view else None)
    prev = history.previous(t)
    since = _time.day(prev) if prev else _time.day(t) - 1
    from .features import _group_max

    latest = _group_max(tl.person, tl.start, tl.n_persons, -np.inf)  # latest start per person in the view
    codes = tl.codes_of(scores["person_id"])
    scores["new_registration"] = np.where(codes >= 0, latest[np.maximum(codes, 0)], -np.inf) > since

    _release_memory()
    prog.stage("explain")
    oc = open_cases_at(tl)
    excluded = recently_assessed(interventions, t, settings.worklist.exclude_assessed_months)
    canton_of = None
    if settings.worklist.capacity_per_canton and "canton" in tl.persons.columns:
        canton_of = pd.Series(tl.persons["canton"].to_numpy(), index=tl.person_ids.astype("str"))
    common = dict(capacity=settings.worklist.capacity,
                  capacity_per_institution=settings.worklist.capacity_per_institution,
                  capacity_per_canton=settings.worklist.capacity_per_canton, canton_of=canton_of,
                  exclude=excluded)
    prev_lists = history.read("worklists", as_of=prev) if prev else None
    worklists = build_worklists(
        scores, oc, **common, previous=prev_lists, flags=flags,
        disclose_institutions=settings.worklist.disclose_institutions,
        language_of=settings.worklist.language_per_institution,
        default_language=settings.worklist.language)
    # explain only the worklist rows, each list in its language and within its disclosure policy
    explain_ids = pd.unique(worklists.rows()["person_id"]) if len(worklists) else np.array([], dtype=object)
    if len(explain_ids):
        expl = explain(model, X.iloc[positions(pd.Index(scores["person_id"]), explain_ids)])
        ids = pd.Index(np.asarray(explain_ids, dtype=object).astype(str), name="person_id")
        disclose = set(settings.worklist.disclose_institutions)
        for inst, wl in worklists.lists.items():
            rows = ids.get_indexer(wl["person_id"].astype(str))
            lang = settings.worklist.language_per_institution.get(inst, settings.worklist.language)
            rc = reason_codes(_subset(expl, rows), language=lang, allowed_institutions={inst} | disclose)
            rc.index = ids[rows]
            tail = ["new_on_list", "language", "notice"]
            worklists.lists[inst] = wl.join(rc, on="person_id")[[*[c for c in wl.columns if c not in tail],
                                                                 *rc.columns, *tail]]
        overall = reason_codes(expl, language=settings.worklist.language)
        overall.index = ids
        scores = scores.join(overall, on="person_id")

    prog.stage("worklists")

    prog.stage("write")
    scores_out = scores.assign(as_of=pd.Timestamp(t).to_datetime64().astype("datetime64[s]"))
    write_parquet_atomic(scores_out, tmp / "scores.parquet")
    write_parquet_atomic(flags, tmp / "flags.parquet")
    (tmp / "worklists").mkdir()
    for inst, df in worklists.lists.items():
        public = df.drop(columns=["person_id"])  # case ids suffice; the pseudonym stays inside
        write_parquet_atomic(public, tmp / "worklists" / f"{inst}.parquet")
        public.to_csv(tmp / "worklists" / f"{inst}.csv", index=False, sep=";", encoding="utf-8-sig",
                      lineterminator="\n")
    if len(ing.quarantine):
        write_parquet_atomic(ing.quarantine, tmp / "quarantine.parquet")
    manifest = _manifest(settings, t, ing, scores, worklists, excluded, mdir, model, model_hash, tmp)
    _write_json(manifest, tmp / "manifest.json")
    from .report import run_summary

    md, html = run_summary(manifest, scores, worklists, language=settings.worklist.language,
                           min_cell_size=settings.privacy.min_cell_size)
    (tmp / "summary.md").write_text(md, encoding="utf-8")
    (tmp / "summary.html").write_text(html, encoding="utf-8")
    token = _sha256_bytes(json.dumps(manifest, sort_keys=True, default=str).encode())[:10]

    prog.stage("publish")
    timings = dict(prog.timings)
    _write_json({"as_of": t.isoformat(), "timings_seconds": timings,
                 "finished": dt.datetime.now().isoformat(timespec="seconds")}, tmp / "timings.json")
    link = _publish(tmp, root, t, token)

    prog.stage("history")
    history.write(t, scores=scores_out[["person_id", "outcome", "risk", "risk_band", "rank",
                                        "new_registration"]],
                  worklists=worklists.rows()[["institution", "person_id", "rank", "risk"]]
                  if len(worklists) else pd.DataFrame({"institution": [], "person_id": []}))
    history.prune(settings.output.history_keep_days, today=t)
    timings = prog.done()
    logger.info("published %s in %.1f s", link, timings["total"])
    return RunResult(folder=link, as_of=t, manifest=manifest, worklists=worklists, scores=scores)


def _subset(expl, rows: np.ndarray):
    """The explanation of some of its rows."""
    from dataclasses import replace

    return replace(expl, values=expl.values.iloc[rows], data=expl.data.iloc[rows],
                   output=np.asarray(expl.output)[rows])


def _manifest(settings, t, ing, scores, worklists, excluded, mdir, model, model_hash, tmp) -> dict:
    import platform

    import sklearn

    cfg = settings.config_path
    versions = {"iizrisk": __version__, "python": platform.python_version(), "numpy": np.__version__,
                "pandas": pd.__version__, "scikit-learn": sklearn.__version__}
    files = ing.files.to_dict("records") if len(ing.files) else []
    for f in files:
        f.pop("seconds", None)
    return {
        "as_of": t.isoformat(),
        "notice": NOTICE["en"],
        "config": {"path": str(cfg) if cfg else None,
                   "sha256": hashlib.sha256(cfg.read_bytes()).hexdigest() if cfg else None},
        "inputs": files,
        "rows": {"read": int(sum(ing.report.rows_read.values())), "accepted": int(len(ing.spells)),
                 "rejected": int(ing.report.rows_rejected), "quarantined": int(ing.report.rows_quarantined),
                 "warnings": [p.to_text() for p in ing.report.warnings]},
        "persons_scored": int(len(scores)),
        "new_registrations": int(scores["new_registration"].sum()),
        "risk_bands": {str(k): int(v) for k, v in scores["risk_band"].value_counts().sort_index().items()},
        "left_off_recent_assessment_persons": int(len(excluded)),
        "worklists": {r["institution"]: {k: int(v) for k, v in r.items() if k != "institution"}
                      for r in worklists.summary().to_dict("records")},
        "model": {"dir": str(mdir) if mdir else None, "sha256": model_hash,
                  "outcome": getattr(model, "outcome", None),
                  "horizon_months": getattr(model, "horizon_months", None)},
        "outputs": sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*")
                          if p.is_file() and p.name not in {"run.log"}),
        "versions": versions,
        "timings": "timings.json",
    }
