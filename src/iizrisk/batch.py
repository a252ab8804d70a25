"""The nightly job: from raw exports to per-institution worklists, crash-safe.

``iizrisk run CONFIG [--as-of YYYY-MM-DD]`` (and :func:`run_nightly` in
Python) ingests and validates every source, builds the point-in-time view at
the as-of date, computes flags and features, scores everyone with a spell
open on that day, explains the worklist rows, checks the run-health gates
and publishes one run folder (see :mod:`iizrisk.publish`)::

    runs/
      2024-06-30 -> .store/2024-06-30.3f2a9c1e     (symlink, swapped atomically)
      latest     -> 2024-06-30
      .store/2024-06-30.3f2a9c1e/
        scores.parquet  flags.parquet  worklists/ALV.csv  worklists/ALV.parquet  worklists/ALV.xlsx
        worklists/ALV_2024-06-30.csv  worklists/ALV_2024-06-30.xlsx (dated copies to send) ...
        quarantine.parquet (only with errors="quarantine" and bad rows)
        history/ (this run's history entry)  manifest.json  summary.md  summary.html
        timings.json  run.log

Guarantees
----------
* Everything is written to a temporary folder first; publication is one
  atomic symlink swap, so readers see the old run or the new one, never half,
  and no link ever dangles.
* Re-running the same as-of date with the same inputs gives byte-identical
  files (all but ``timings.json`` and ``run.log``).
* An flock stops a second concurrent run (exit 4); it ends with its process.
* ``kill -9`` at any moment leaves the published runs intact; the next run
  cleans up the leftovers and completes normally.
* The run and its history entry are published together: the run folder
  carries the entry, and the next night restores it into the history store
  if a crash came between the two.
* Bad input: exit 1 with the validation report, nothing published (or, with
  ``errors = "quarantine"``, bad rows set aside in ``quarantine.parquet``).
* A run that fails a health gate (:mod:`iizrisk.health`) exits 1 and
  publishes nothing, unless forced with a reason that the manifest records.
* An as-of date after today, or long after the newest data, is refused
  unless forced; retention never removes tonight's history or a newer one.
* Files are written with ``[output] mode`` (default ``0640``), never readable
  by every user of the machine.

Exit codes: 0 ok, 1 invalid input or failed health gate, 2 usage/configuration,
3 model problem, 4 locked by another run, 5 internal error, 6 operating-system
failure (a path that cannot be read or written).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # scikit-learn is imported only when the lists are ordered by benefit
    from .benefit import BenefitModel

from . import __version__, _time
from ._arrays import group_max
from ._memory import release_memory
from ._progress import Steps
from .config import Settings
from .errors import ConfigError, ModelError, WithholdingFormatter
from .fairness_rule import FairnessRule
from .health import GateFailure, HealthError, HealthReport, RunFacts, check_health
from .history import HISTORY_SCORE_COLUMNS, HistoryStore
from .io import Ingestion, ingest
from .publish import Permissions, RunLock, check_root, cleanup, publish_run, run_links
from .reviews import (
    decision_counts,
    interventions_from_reviews,
    keep_off,
    review_frame,
    write_review_file,
)
from .spells import positions
from .store import write_bytes_atomic, write_parquet_atomic
from .view import Definitions, View
from .worklist import (
    NOTICE,
    WorklistSet,
    build_worklists,
    open_cases_at,
    recently_assessed,
    write_worklist_csv,
)

__all__ = ["RunResult", "RunLock", "run_nightly", "check_run", "STAGES"]

logger = logging.getLogger("iizrisk")

STAGES = ("ingest", "timeline", "flags", "model", "reviews", "score", "benefit", "worklists", "explain", "fairness",
          "monitor", "health", "write", "publish", "history")
_FAULT_ENV = "IIZRISK_FAULT_AT"  # testing hook: SIGKILL the process when this stage starts


# ------------------------------------------------------------------ progress
class _Progress:
    """Stage timings, the crash-test hook, and a bar on stderr when it is a terminal (nothing in cron)."""

    def __init__(self, enabled: bool | None = None):
        self.steps = Steps(STAGES, enabled, label="run").__enter__()
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
        self.steps.step(name)

    def done(self) -> dict[str, float]:
        self.stage("_end")
        self.timings.pop("_end", None)
        self.timings["total"] = round(time.perf_counter() - self.t0, 3)
        self.close()
        return self.timings

    def close(self) -> None:
        self.steps.__exit__(None, None, None)


# ------------------------------------------------------------------ result
@dataclass
class RunResult:
    """What a nightly run published (or, for :func:`check_run`, would publish)."""

    folder: Path | None
    as_of: dt.date
    manifest: dict
    worklists: WorklistSet
    scores: pd.DataFrame = field(repr=False)
    health: HealthReport = field(default_factory=HealthReport)
    published: bool = True

    def _repr_html_(self) -> str:
        where = (f"published at <code>{self.folder}</code>" if self.published
                 else "<b>not published</b> (a check)")
        return (f"<b>Run {self.as_of}</b>: {self.manifest['persons_scored']:,} persons scored, "
                f"{where}; " + self.health._repr_html_() + self.worklists._repr_html_())


# ------------------------------------------------------------------ helpers
def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_json(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def _resolved(settings: Settings | str | Path) -> Settings:
    """The settings of this run, resolved once: checked and read-only for every stage."""
    return (settings if isinstance(settings, Settings) else Settings.load(settings)).resolved()


def _resolve_as_of(as_of) -> dt.date:
    """The as-of date: yesterday by default; text must be ISO ``YYYY-MM-DD`` (never read month first)."""
    if as_of is None:
        return dt.date.today() - dt.timedelta(days=1)
    return _time.parse_iso_date(as_of, "as-of date")


def _check_as_of(t: dt.date, *, force: bool) -> None:
    if not force:
        _time.not_after_today(t, why="a run cannot see the future, and its history would replace tomorrow's",
                              fix="give a date up to today (or --force --reason \"...\" if the clock is wrong)")


# ------------------------------------------------------------------ the run
def _refuse_ahv_numbers_in_the_record(settings: Settings, reason: str | None) -> None:
    """Refuse (exit 2) a ``--reason`` or a settings file name holding an AHV number: both go into the manifest."""
    from .pseudonym import looks_like_ahv

    named = {"--reason": reason or "", "the settings file's path": str(settings.config_path or "")}
    hits = looks_like_ahv(list(named.values()))
    found = [what for what, hit in zip(named, hits, strict=True) if hit]
    if found:
        raise ConfigError(f"{' and '.join(found)} hold(s) a number shaped like an AHV number (withheld here): the "
                          "manifest records it; write the reason without it (a path: rename the file)")


def run_nightly(settings: Settings | str | Path, *, as_of=None, progress: bool | None = None,
                model=None, force: bool = False, reason: str | None = None) -> RunResult:
    """Run the nightly job once and publish its run folder.

    Parameters
    ----------
    settings : Settings or path to the deployment TOML
    as_of : date-like or ISO text, optional
        Default: yesterday. A date after today, or more than ``[health]
        max_as_of_after_data_days`` after the newest data, is refused unless forced.
    progress : bool, optional
        Show a progress bar on stderr (default: only when stderr is a terminal).
    model : RiskModel, optional
        Use this fitted model instead of loading ``[model] dir`` (notebooks).
    force : bool
        Publish although health gates failed (or the as-of date looks wrong).
    reason : str
        Required with ``force``: why; recorded in the manifest.

    Raises
    ------
    ValidationError, RawIdentifierError, HealthError
        Invalid input or a failed health gate (exit 1); nothing is published.
    ConfigError
        A wrong setting or as-of date (exit 2).
    ModelError
        The model is missing, tampered with, unsigned or does not fit (exit 3).
    LockedError
        Another run holds the lock (exit 4).
    """
    settings = _resolved(settings)
    if force and not (reason and reason.strip()):
        raise ConfigError("--force needs --reason \"...\": the manifest records why the gates were overridden")
    _refuse_ahv_numbers_in_the_record(settings, reason)
    t = _resolve_as_of(as_of)
    _check_as_of(t, force=force)
    _check_output_folders(settings, t)  # also check_root of an existing run folder (a new one is empty)
    root = settings.resolve(settings.output.dir)
    history = HistoryStore(settings.resolve(settings.output.history_dir))
    with Permissions(settings.output.mode, settings.output.group) as perms:
        root.mkdir(parents=True, exist_ok=True)
        perms.apply(root, recursive=False)  # what iizrisk wrote, never the rest of a folder it was given
        with RunLock(root / ".lock"):
            perms.apply_written(root, [root / ".lock", *([root / ".store"] if (root / ".store").is_dir() else [])])
            cleanup(root)
            _restore_history(root, history, settings, t, perms)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{t.isoformat()}-", dir=root))
            handler = logging.FileHandler(tmp / "run.log", encoding="utf-8")
            handler.setFormatter(WithholdingFormatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
            prog = _Progress(progress)
            try:
                night = _Night.compute(settings, t, history, prog, model, force=force)
                health = night.health(force=force)
                forced = ({"reason": (reason or "").strip(), "failed_gates": health.to_records()}
                          if force else None)
                if force and not health.ok:
                    logger.warning("forced despite %d failed gate(s): %s", len(health.failures), reason)
                result = night.write_and_publish(tmp, root, history, prog, perms, health, forced)
            except BaseException:
                prog.close()
                logger.removeHandler(handler)
                handler.close()
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            logger.removeHandler(handler)
            handler.close()
            return result


def check_run(settings: Settings | str | Path, *, as_of=None, model=None) -> RunResult:
    """Would tonight's run publish? Everything :func:`run_nightly` does, up to publishing.

    The same quarantine policy, model checks and health gates, and the same
    errors (so the same exit codes); nothing is written and no lock is taken.
    Returns the result that would have been published (``published=False``).

    Raises
    ------
    HealthError
        A gate failed (exit 1); ``report`` holds every failure.
    """
    settings = _resolved(settings)
    t = _resolve_as_of(as_of)
    _check_as_of(t, force=False)
    _check_output_folders(settings, t)
    history = HistoryStore(settings.resolve(settings.output.history_dir))
    prog = _Progress(False)
    night = _Night.compute(settings, t, history, prog, model)
    health = night.health(force=False)
    manifest = night.manifest(None, None)
    return RunResult(folder=None, as_of=t, manifest=manifest, worklists=night.worklists,
                     scores=night.scores, health=health, published=False)


def _check_output_folders(settings: Settings, t: dt.date) -> None:
    """What :func:`run_nightly` checks of its folders before any work, without writing: the group exists
    (exit 2), the run and history folders are folders or can be made, and tonight's entries of the run
    folder are iizrisk's (exit 6). ``validate`` said "would publish" where the run then failed."""
    from .errors import OperatingSystemError

    Permissions(settings.output.mode, settings.output.group)  # an unknown group: ConfigError, as the run
    for key, value in (("[output] dir", settings.output.dir), ("[output] history_dir", settings.output.history_dir)):
        folder = settings.resolve(value)
        existing = next(p for p in (folder, *folder.parents) if p.exists() or p == p.parent)
        if not existing.is_dir():
            raise OperatingSystemError(f"{key} = {value!r}: {existing} is a file, not a folder; give {key} a folder "
                                       "(new, or the one earlier runs used)")
        # the folder and the folders the run writes into (the history's tables, the runs' store): a run
        # published, then failed on the history; an operator's own folders there are not the run's business
        if not folder.is_dir():
            inside = []
        elif key == "[output] history_dir":
            inside = [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]
        else:
            inside = [folder / ".store"] if (folder / ".store").is_dir() else []
        for p in (existing, *inside):
            if not os.access(p, os.W_OK | os.X_OK):
                raise OperatingSystemError(f"{key}: {p} is not writable by this account; give the service account "
                                           "write access to it (`chown` or `chmod u+w`), nothing was published")
    root = settings.resolve(settings.output.dir)
    if root.is_dir():
        check_root(root, t)


def _restore_history(root: Path, history: HistoryStore, settings: Settings, t: dt.date,
                     perms: Permissions) -> None:
    """Bring the history store in line with the published runs within the retention window."""
    limit = min(t, dt.date.today()) - dt.timedelta(days=settings.output.history_keep_days)
    for d, folder in run_links(root).items():
        if d >= limit:
            perms.apply_written(history.root, history.restore(d, folder))


#: Libraries the later stages import (the model file, the explanations, the summary's figure).
_LATER_IMPORTS = ("sklearn.ensemble", "skops.io", "shap", "matplotlib.figure", "matplotlib.backends.backend_agg")


def _warm_imports() -> threading.Thread:
    """Import the later stages' libraries on a second thread while the timeline is built.

    The timeline's numpy work releases the GIL in long stretches, so the imports (about 2 s at any
    data size) mostly overlap with it instead of adding to the run. During ingestion, whose many
    short steps each wait for the GIL again, they made ingestion 1-2 s slower than they saved.
    An import that fails here is left to fail where the stage imports it, with its own error.

    The model stage joins the thread before it imports anything itself: two threads importing
    scikit-learn at once can see one of its modules half initialised (``cannot import name 'clone'
    from partially initialized module 'sklearn.base'``), which ended a small night with exit 5
    about once in eight runs.
    """
    import importlib

    def work() -> None:
        for name in _LATER_IMPORTS:
            try:
                importlib.import_module(name)
            except Exception:  # the stage that needs it reports it
                return

    th = threading.Thread(target=work, name="iizrisk-imports")  # joined at exit: never cut off mid-import
    th.start()
    return th


def _check_model_fits(model, settings: Settings) -> None:
    """The model must predict what ``[model]`` asks for, on the deployment's definitions."""
    want = (settings.model.outcome, int(settings.model.horizon_months))
    got = (getattr(model, "outcome", None), getattr(model, "horizon_months", None))
    if got != want:
        raise ModelError(
            f"the model predicts {got[0]!r} over {got[1]} months, but [model] asks for {want[0]!r} over "
            f"{want[1]} months; train a model for these settings or correct [model] outcome / horizon_months")
    ft = getattr(model, "features", None)
    if ft is None:
        return
    names = {"window_months": "bfs_window_months"}
    diff = [f"[deployment] {name} = {want!r} but the model's features use {names.get(name, name)} = {got!r}"
            for name, want, got in Definitions.from_settings(settings).differences(Definitions.of_features(ft))]
    if diff:
        raise ModelError("the model was trained on other definitions than the deployment's: " + "; ".join(diff)
                         + "; retrain the model with the deployment's definitions or correct [deployment]")


# ------------------------------------------------------------------ the stages
# Each stage is a function with named inputs (its parameters, taken from what the stages before it
# returned) and named outputs (the keys of the dict it returns). The night runs them top to bottom;
# the stage timings come from this list.
def _ingest(settings: Settings, t: dt.date, force: bool) -> dict:
    ing = ingest(settings)
    interventions = ing.interventions  # [deployment] interventions, read with the same guards
    if interventions is not None:
        interventions = interventions[pd.to_datetime(interventions["date"]) <= pd.Timestamp(t)]
    newest = _newest_dates(ing.spells, t)
    newest_all = max((d for d in newest.values() if d is not None), default=None)
    lag = settings.health.max_as_of_after_data_days
    if newest_all is not None and (t - newest_all).days > lag and not force:
        raise ConfigError(
            f"--as-of {t.isoformat()} lies {(t - newest_all).days} days after the newest date in the data "
            f"({newest_all.isoformat()}; at most {lag} allowed by [health] max_as_of_after_data_days): "
            "give an earlier --as-of, deliver current exports, or --force --reason \"...\"")
    release_memory()
    return {"ing": ing, "spells": ing.spells, "interventions": interventions, "newest": newest}


def _model(settings: Settings, model, imports: threading.Thread) -> dict:
    imports.join()  # never import beside the warming thread (see _warm_imports)
    if model is None:
        from .model import load_model, model_key

        mdir = settings.resolve(settings.model.dir)
        model = load_model(mdir, key=model_key(settings), allow_unsigned=settings.model.allow_unsigned_model)
        model_hash = model.manifest_.get("model_sha256", "")  # the verified manifest
    else:
        mdir, model_hash = None, ""
    _check_model_fits(model, settings)
    return {"model": model, "mdir": mdir, "model_hash": model_hash, "ranking": _ranking(settings)}


@dataclass
class _Ranking:
    """How tonight's lists are ordered: by risk, or by the benefit model's estimate (with its evidence)."""

    rank_by: str = "risk"
    model: BenefitModel | None = None
    path: Path | None = None
    sha256: str | None = None
    evidence: str | None = None

    def manifest(self) -> dict:
        return {"rank_by": self.rank_by, "benefit_model": str(self.path) if self.path else None,
                "benefit_model_sha256": self.sha256, "evidence": self.evidence}


def _ranking(settings: Settings) -> _Ranking:
    """The benefit model of ``[worklist] rank_by``, refused unless its own offline evaluation supports it."""
    w = settings.worklist
    if w.rank_by == "risk":
        if w.benefit_model:
            logger.info("[worklist] benefit_model is set but rank_by = 'risk': the lists are ordered by risk")
        return _Ranking()
    from .benefit import load_benefit_model

    path = settings.resolve(str(w.benefit_model))
    bm = load_benefit_model(path)  # ModelError (exit 3): missing, a link, foreign types, not a benefit model
    want = f"{settings.model.outcome}_next_{int(settings.model.horizon_months)}m"
    if bm.outcome != want:
        raise ConfigError(f"[worklist] benefit_model {path}: estimates the benefit on {bm.outcome!r}, but [model] "
                          f"scores {want!r}; evaluate a benefit model for the same outcome and horizon "
                          "(iizrisk policy --outcome --horizon-months) or set rank_by = \"risk\"")
    ev = bm.evidence(w.rank_by)
    if not ev.supported:
        raise ConfigError(f"[worklist] rank_by = {w.rank_by!r} is not supported by {path}: {ev.reason}. Keep "
                          "rank_by = \"risk\" until an offline evaluation on more past assessments shows the "
                          "change preventing more (iizrisk policy --save-model)")
    logger.info("worklists ranked by %s: %s", w.rank_by, ev.reason)
    return _Ranking(w.rank_by, bm, path, getattr(bm, "file_sha256_", None), ev.reason)


def _view(settings: Settings, t: dt.date, spells: pd.DataFrame) -> dict:
    imports = _warm_imports()  # the model stage, after the flags, needs scikit-learn and skops
    view = View.at(spells, t, Definitions.from_settings(settings))
    return {"view": view, "imports": imports}


def _flags(view: View) -> dict:
    return {"flags": view.flags}


def _reviews(settings: Settings, t: dt.date, history: HistoryStore, interventions) -> dict:
    """The coordinators' reviews up to T; the decisions that record interventions join the interventions
    (``recorded``: those interventions alone; ``from_file``: the interventions file's)."""
    reviews = history.reviews(until=t)
    from_file = interventions
    recorded = interventions_from_reviews(reviews, settings.reviews.interventions)
    if len(recorded):
        if interventions is not None and len(interventions):
            recorded["date"] = recorded["date"].astype(interventions["date"].dtype)
            keep = [c for c in interventions.columns if c in recorded.columns]
            interventions = pd.concat([interventions, recorded[keep]], ignore_index=True).drop_duplicates(
                ["person_id", "date", "type"], ignore_index=True)
        else:
            interventions = recorded
        logger.info("reviews: %d intervention(s) recorded by reviews", len(recorded))
    return {"reviews": reviews, "interventions": interventions, "recorded": recorded, "from_file": from_file}


def _score(settings: Settings, t: dt.date, spells, interventions, view: View, model,
           history: HistoryStore) -> dict:
    from .model import score

    # the model's definitions equal the deployment's (checked in _model): the view's transitions,
    # re-entries and flags serve the features too
    scores, X = score(model, spells, as_of=t, interventions=interventions,
                      bands=tuple(settings.worklist.risk_bands), return_features=True, view=view)
    prev = history.previous(t)
    since = _time.day(prev) if prev else _time.day(t) - 1
    tl = view.timeline
    latest = group_max(tl.person, tl.start, tl.n_persons, -np.inf)  # latest start per person
    codes = tl.codes_of(scores["person_id"])
    scores["new_registration"] = np.where(codes >= 0, latest[np.maximum(codes, 0)], -np.inf) > since
    release_memory()
    return {"scores": scores, "X": X, "prev": prev, "score_codes": codes}


def _benefit(t: dt.date, spells, interventions, view: View, ranking: _Ranking) -> dict:
    """The cases open tonight and, when the lists are ordered by benefit, the expected benefit of an
    assessment for people with an open ALV, IV or SH case (NaN outside the benefit model's situations)."""
    oc = open_cases_at(view)
    if ranking.model is None:
        return {"open_cases": oc, "benefit": None}
    from .benefit import benefit_at

    core = oc.loc[oc["institution"].astype("str").isin(("ALV", "IV", "SH")), "person_id"]
    persons = pd.unique(core.astype("str").to_numpy())
    benefit = benefit_at(ranking.model, spells, interventions, persons, t)
    logger.info("benefit: %d of %d people with an open ALV/IV/SH case inside the benefit model's situations",
                int(benefit.notna().sum()), len(benefit))
    return {"open_cases": oc, "benefit": benefit}


def _worklists(settings: Settings, t: dt.date, view: View, scores, from_file, recorded, flags, reviews,
               history: HistoryStore, prev, model, X, ranking: _Ranking, benefit, open_cases) -> dict:
    w, tl, oc = settings.worklist, view.timeline, open_cases
    # left off after a recent assessment: those of the interventions file ("recent assessment"), and those a
    # coordinator's review recorded, at every institution ("left off by a review")
    excluded = recently_assessed(from_file, t, w.exclude_assessed_months)
    assessed_by_review = recently_assessed(recorded, t, w.exclude_assessed_months)
    kept_off = keep_off(reviews, scores, t, settings.reviews.keep_off_days)
    if len(assessed_by_review):
        pairs = oc.loc[oc["person_id"].astype("str").isin(pd.Index(assessed_by_review).astype("str")),
                       ["institution", "person_id"]].astype("str")
        kept_off = pd.concat([kept_off, pairs], ignore_index=True).drop_duplicates(ignore_index=True)
    canton_of = None
    if w.capacity_per_canton:
        if "canton" not in tl.persons.columns:
            raise ConfigError("[worklist] capacity_per_canton is set, but no source maps a canton column; map one "
                              "in [sources.columns] or remove capacity_per_canton")
        canton_of = pd.Series(tl.persons["canton"].to_numpy(), index=tl.person_ids.astype("str"))
    prev_lists = history.read("worklists", as_of=prev) if prev else None
    past_lists = history.read("worklists", until=t - dt.timedelta(days=1))
    reasons = _ListReasons(model, X, scores, w.disclose_institutions)
    worklists = build_worklists(
        scores, oc, capacity=w.capacity, capacity_per_institution=w.capacity_per_institution,
        capacity_per_canton=w.capacity_per_canton, canton_of=canton_of, exclude=excluded,
        keep_off=kept_off,
        min_band=w.min_band, min_band_per_institution=w.min_band_per_institution,
        previous=prev_lists, history=past_lists, reviews=reviews, as_of=t, flags=flags,
        disclose_institutions=w.disclose_institutions, reasons=reasons,
        language_of=w.language_per_institution, default_language=w.language,
        rank_by=ranking.rank_by, benefit=benefit, benefit_outcome=settings.model.outcome)
    since = prev if prev else t - dt.timedelta(days=1)
    review_counts = decision_counts(reviews, settings.reviews.decisions, since=since, until=t)
    return {"worklists": worklists, "excluded": excluded, "review_counts": review_counts}


class _ListReasons:
    """The reasons of a list's rows (``build_worklists``'s ``reasons``): explained on demand, each list in its
    language and within its disclosure policy."""

    def __init__(self, model, X, scores, disclose):
        self.model, self.X, self.disclose = model, X, set(disclose)
        self.rows = pd.Index(scores["person_id"].astype(str))

    def explain(self, person_ids):
        from .explain import explain

        return explain(self.model, self.X.iloc[positions(self.rows, np.asarray(person_ids, dtype=object))])

    def __call__(self, institution: str, person_ids: pd.Index, language: str) -> pd.DataFrame:
        from .explain import reason_codes

        rc = reason_codes(self.explain(person_ids), language=language,
                          allowed_institutions={institution} | self.disclose, list_institution=institution)
        rc.index = pd.Index(person_ids.astype(str), name="person_id")
        return rc


def _explain(settings: Settings, model, X, scores, worklists: WorklistSet) -> dict:
    """Reasons in the deployment's language for the scores of everyone on a list (the lists carry their own)."""
    from .explain import reason_codes

    ids = pd.unique(worklists.rows()["person_id"]) if len(worklists) else np.array([], dtype=object)
    if len(ids):
        overall = reason_codes(_ListReasons(model, X, scores, ()).explain(ids), language=settings.worklist.language)
        overall.index = pd.Index(np.asarray(ids, dtype=object).astype(str), name="person_id")
        scores = scores.join(overall, on="person_id")
    return {"scores": scores}


def _fairness(settings: Settings, view: View, scores, worklists: WorklistSet, score_codes) -> dict:
    """Tonight's flag rates per protected group against the reference group, judged by the fairness rule
    (:func:`iizrisk.list_fairness.list_fairness`: the one metric of the rule that needs no outcome)."""
    from .list_fairness import list_fairness

    rows = worklists.rows()
    listed = rows["person_id"].to_numpy() if len(rows) else np.array([], dtype=object)
    p = settings.privacy
    table = list_fairness(view, scores, listed, attributes=tuple(p.protected_attributes),
                          rule=FairnessRule.from_settings(settings), min_cell_size=p.min_cell_size,
                          codes=score_codes)
    return {"list_fairness": table}


def _monitor(settings: Settings, t: dt.date, ing, view: View, model, X, scores, worklists: WorklistSet,
             history: HistoryStore) -> dict:
    """Tonight's monitoring figures (:func:`iizrisk.monitoring.monitor_night`): drift against the model's
    training reference, risk bands, list churn, expected and realised precision."""
    from .monitoring import monitor_night, reference_of

    manifest = getattr(model, "manifest_", None) or {}
    reference = manifest.get("reference") or reference_of(model)
    rows = worklists.rows()
    lists = rows[["institution", "person_id", "risk"]] if len(rows) else None
    table = monitor_night(as_of=t, X=X, scores=scores, worklists=lists, reference=reference, history=history,
                          spells=ing.spells, outcome=getattr(model, "outcome", None),
                          horizon_months=int(getattr(model, "horizon_months", 12) or 12),
                          thresholds=settings.monitoring,
                          band_thresholds=tuple(settings.worklist.risk_bands),
                          language=settings.worklist.language,  # the run summary shows the messages
                          timeline=view.timeline)  # past runs' labels as known tonight, no second build
    return {"monitoring": table}


def _gates(settings: Settings, t: dt.date, ing, scores, open_cases, worklists, newest, history) -> dict:
    return {"facts": _facts(settings, t, ing, scores, open_cases, worklists, newest, history)}


#: the night before anything is written, top to bottom
_COMPUTE = (("ingest", _ingest), ("timeline", _view), ("flags", _flags), ("model", _model),
            ("reviews", _reviews), ("score", _score), ("benefit", _benefit), ("worklists", _worklists), ("explain", _explain),
            ("fairness", _fairness), ("monitor", _monitor), ("health", _gates))


@dataclass
class _Night:
    """Everything one night computes before anything is written."""

    settings: Settings
    t: dt.date
    ing: Ingestion
    interventions: pd.DataFrame | None
    flags: pd.DataFrame
    model: object
    mdir: Path | None
    model_hash: str
    ranking: _Ranking
    scores: pd.DataFrame
    worklists: WorklistSet
    excluded: pd.Index
    facts: RunFacts
    review_counts: pd.DataFrame
    open_cases: pd.DataFrame
    monitoring: pd.DataFrame
    list_fairness: pd.DataFrame

    @classmethod
    def compute(cls, settings: Settings, t: dt.date, history: HistoryStore, prog: _Progress, model, *,
                force: bool = False):
        import inspect

        ctx = {"settings": settings, "t": t, "history": history, "model": model, "force": force}
        for name, stage in _COMPUTE:
            prog.stage(name)
            ctx.update(stage(**{p: ctx[p] for p in inspect.signature(stage).parameters}))
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in ctx.items() if k in fields})

    # -------------------------------------------------------------- health
    def health(self, *, force: bool) -> HealthReport:
        report = check_health(self.facts, self.settings.health)
        warned = self.monitoring_warnings()
        if warned and self.settings.monitoring.fail_on_warning:
            report.failures.append(GateFailure(
                "monitoring", f"{len(warned)} warning(s)", "; ".join(warned[:5]),
                "check the inputs and the model (iizrisk monitor CONFIG); retrain or correct the exports, or set "
                "[monitoring] fail_on_warning = false to report warnings without failing"))
        if not report.ok and not force:
            raise HealthError(f"run health: {len(report.failures)} gate(s) failed; nothing is published",
                              report)
        if self.facts.persons_scored == 0:  # --force overrides a judgement, never an empty night
            raise HealthError("run health: nobody was scored, so there is nothing to publish, also with --force "
                              "(min_persons_scored); check the exports and the as-of date",
                              dataclasses.replace(report, outcome="empty"))
        return dataclasses.replace(report, outcome="forced") if force else report

    def monitoring_warnings(self) -> list[str]:
        from .monitoring import warnings_of

        return warnings_of(self.monitoring)

    # -------------------------------------------------------------- output
    def manifest(self, tmp: Path | None, forced: dict | None) -> dict:
        return _manifest(self, tmp, forced)

    def write_and_publish(self, tmp: Path, root: Path, history: HistoryStore, prog: _Progress,
                          perms: Permissions, health: HealthReport, forced: dict | None) -> RunResult:
        from .report import run_summary

        t, settings = self.t, self.settings
        prog.stage("write")
        scores_out = self.scores.assign(as_of=pd.Timestamp(t).to_datetime64().astype("datetime64[s]"))
        write_parquet_atomic(scores_out, tmp / "scores.parquet")
        write_parquet_atomic(self.flags, tmp / "flags.parquet")
        (tmp / "worklists").mkdir()
        w = settings.worklist
        lists = dict(self.worklists.lists)
        # an institution with open cases but nobody listed tonight gets an empty list, not no file: its
        # coordinators tell "nobody" from a failed job (the columns of tonight's lists, else the core ones)
        template = next(iter(lists.values())).iloc[:0] if lists else pd.DataFrame(
            {c: pd.Series([], dtype=object)
             for c in ("institution", "rank", "person_id", "case_ids", "risk", "risk_band")})
        for inst in sorted(set(self.worklists.eligible) - set(lists)):
            lists[inst] = template.assign(institution=pd.Series([], dtype=template["institution"].dtype))
        for inst, df in lists.items():
            public = df.drop(columns=["person_id"])  # case ids suffice; the pseudonym stays inside
            lang = w.language_per_institution.get(inst, w.language)
            write_parquet_atomic(public, tmp / "worklists" / f"{inst}.parquet")
            # the tables people open: in the list's language, CSV injection neutralised; the .xlsx to fill
            # in and send back (iizrisk reviews import); dated copies beside the latest ones
            latest = [write_worklist_csv(review_frame(df), tmp / "worklists" / f"{inst}.csv", language=lang),
                      write_review_file(df, tmp / "worklists" / f"{inst}.xlsx", institution=inst, as_of=t,
                                        language=lang, decisions=settings.reviews.decisions)]
            for path in latest:  # the dated copies: the same bytes
                write_bytes_atomic(path.read_bytes(), path.with_name(f"{inst}_{t.isoformat()}{path.suffix}"))
        if len(self.ing.quarantine):
            write_parquet_atomic(self.ing.quarantine, tmp / "quarantine.parquet")
        wl_rows = self.worklists.rows()
        entry = {
            "scores": scores_out[list(HISTORY_SCORE_COLUMNS)],
            "worklists": wl_rows[["institution", "person_id", "rank", "risk"]] if len(wl_rows)
            else pd.DataFrame({"institution": pd.Series([], dtype="str"),
                               "person_id": pd.Series([], dtype="str")}),
        }
        # the run's own history entry: its worklists and (below) its runs row; the scores entry is
        # the history columns of scores.parquet (HistoryStore.restore reads them there)
        write_parquet_atomic(entry["worklists"], tmp / "history" / "worklists.parquet")
        entry["monitoring"] = self.monitoring
        write_parquet_atomic(self.monitoring, tmp / "history" / "monitoring.parquet")
        manifest = self.manifest(tmp, forced)
        token = _sha256_bytes(json.dumps(manifest, sort_keys=True, default=str).encode())[:10]
        entry["runs"] = _runs_entry(self.facts, token, forced is not None, self.open_cases)
        write_parquet_atomic(entry["runs"], tmp / "history" / "runs.parquet")
        _write_json(manifest, tmp / "manifest.json")
        from .oversight import oversight

        # the nights before from the history, tonight's lists from this run (its history entry is written
        # after publication; a forced rerun of the night must not count the earlier run's lists as well)
        lists = history.read("worklists", until=t - dt.timedelta(days=1))
        tonight = entry["worklists"][["institution", "person_id"]].assign(as_of=pd.Timestamp(t))
        lists = pd.concat([lists, tonight], ignore_index=True) if len(lists) else tonight
        recent = oversight(lists, history.reviews(until=t),
                           start=t - dt.timedelta(days=62), end=t, min_cell_size=settings.privacy.min_cell_size,
                           decisions=tuple(settings.reviews.decisions))
        md, html = run_summary(manifest, self.scores, self.worklists, language=settings.worklist.language,
                               min_cell_size=settings.privacy.min_cell_size, review_counts=self.review_counts,
                               summary_decisions=settings.reviews.summary_decisions, oversight=recent.summary,
                               bands=tuple(settings.worklist.risk_bands), fairness=self.list_fairness,
                               fairness_rule=FairnessRule.from_settings(settings))
        md, html = _with_monitoring(md, html, self.monitoring_warnings(), settings.worklist.language)
        (tmp / "summary.md").write_text(md, encoding="utf-8")
        (tmp / "summary.html").write_text(html, encoding="utf-8")

        prog.stage("publish")
        _write_json({"as_of": t.isoformat(), "timings_seconds": dict(prog.timings),
                     "finished": dt.datetime.now().isoformat(timespec="seconds")}, tmp / "timings.json")
        perms.apply(tmp)
        link = publish_run(tmp, root, t, token)  # the commit point

        prog.stage("history")
        perms.apply_written(history.root, history.write(t, **entry))
        history.prune(settings.output.history_keep_days, today=t)
        timings = prog.done()
        logger.info("published %s in %.1f s", link, timings["total"])
        return RunResult(folder=link, as_of=t, manifest=manifest, worklists=self.worklists,
                         scores=self.scores, health=health)


def _with_monitoring(md: str, html: str, warnings: list[str], language: str) -> tuple[str, str]:
    """The run summary with its monitoring section (the warnings, or that there are none)."""
    import html as _html

    from ._texts import text

    title = text("monitor.summary_title", language)
    head = text("monitor.summary_some", language, n=len(warnings)) if warnings else text("monitor.summary_none",
                                                                                           language)
    md = md.rstrip("\n") + f"\n\n## {title}\n\n{head}\n" + "".join(f"- {w}\n" for w in warnings)
    items = "".join(f"<li>{_html.escape(w)}</li>" for w in warnings)
    section = f"<h2>{_html.escape(title)}</h2><p>{_html.escape(head)}</p>" + (f"<ul>{items}</ul>" if items else "")
    html = html.replace("</body>", section + "</body>") if "</body>" in html else html + section
    return md, html


def _subset(expl, rows: np.ndarray):
    """The explanation of some of its rows."""
    from dataclasses import replace

    return replace(expl, values=expl.values.iloc[rows], data=expl.data.iloc[rows],
                   output=np.asarray(expl.output)[rows])


def _newest_dates(spells: pd.DataFrame, t: dt.date) -> dict[str, dt.date | None]:
    """Per institution, the newest date in its rows on or before ``t`` (starts, ends, recorded dates).

    On day numbers and institution codes: at 10M rows, turning the categorical institutions into
    strings and grouping on them took 3 of the 4 seconds this took before.
    """
    if not len(spells):
        return {}
    td, none = _time.day(t), np.iinfo(np.int32).min
    newest = np.full(len(spells), none, dtype=np.int64)
    for col in ("start_date", "end_date", "recorded_date"):
        if col in spells.columns:
            d = _time.to_days(spells[col], missing=none).astype(np.int64)
            np.maximum(newest, np.where(d <= td, d, none), out=newest)
    codes, names = pd.factorize(spells["institution"])  # a categorical's codes: no string is built
    known = codes >= 0
    out = pd.Series(newest[known]).groupby(codes[known]).max()
    return {str(names[int(k)]): (None if v == none else _time.to_date(int(v))) for k, v in out.items()}


def _newest_per_source(settings: Settings, newest: dict[str, dt.date | None]) -> dict[str, dt.date | None]:
    """A source's newest date: the newest of the institutions it delivers (a quiet small one is no sign)."""
    out: dict[str, dt.date | None] = {}
    claimed = {c for s in settings.sources for c in (s.allowed_institutions or [])}
    for s in settings.sources:
        codes = s.allowed_institutions
        if not codes:  # a canonical export naming its institutions in a column: those no other source claims
            codes = [c for c in newest if c not in claimed]
        dates = [d for d in (newest.get(c) for c in codes) if d is not None]
        if dates:
            out[s.name] = max(dates)
        elif any(c in newest for c in codes):  # rows, but none known at the as-of date: the gate says so
            out[s.name] = None
    return out


def _expected_institutions(settings: Settings) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s in settings.sources:
        for code in s.allowed_institutions or []:
            out.setdefault(code, []).append(s.name)
    return out


#: an empty list because everyone was assessed recently is an alarm only from this many people on ...
_FEW_TO_LIST = 5
#: ... and when at least this share of the institution's open cases were left off as assessed
_ASSESSED_SHARE = 0.9


def _suspicious(assessed: int, eligible: int) -> bool:
    """Whether recent assessments leave off (nearly) everyone with an open case: a wrong interventions file?"""
    return assessed >= _FEW_TO_LIST and assessed >= _ASSESSED_SHARE * eligible


def _facts(settings, t, ing, scores, oc, worklists, newest, history) -> RunFacts:
    spells = ing.spells
    # counted on the categorical's codes (as strings, 10M institutions took 2 s); unseen categories are no rows
    rows = {str(k): int(v) for k, v in spells["institution"].value_counts().items() if v > 0} if len(spells) else {}
    # the last run up to tonight: the run of an earlier night, or tonight's own earlier run when re-run
    last = [d for d in history.as_of_dates("runs") if d <= t]
    prev_rows, prev_as_of = None, (last[-1] if last else None)
    if prev_as_of is not None:
        pr = history.read("runs", as_of=prev_as_of)
        if "institution" in pr.columns and "rows" in pr.columns:
            prev_rows = {str(k): int(v) for k, v in zip(pr["institution"], pr["rows"], strict=True)}
    quarantined = (ing.quarantine["_source"].value_counts().to_dict()
                   if len(ing.quarantine) and "_source" in ing.quarantine.columns else {})
    per_source = {label: (int(n), int(quarantined.get(label, 0))) for label, n in ing.report.rows_read.items()}
    # the gate "an institution with open cases gets a list" asks about the people who could be listed:
    # people below the minimum band or kept off by a review are left off by design
    by_design = {k: worklists.below_min_band.get(k, 0) + worklists.left_off_reviewed.get(k, 0)
                 for k in worklists.eligible}
    open_per = {k: max(0, n - by_design.get(k, 0)) for k, n in worklists.eligible.items()}
    # people left off after a recent joint assessment are left off by design too, unless (nearly) everyone
    # with an open case was: then the interventions file is more likely wrong than the night (the gate asks)
    open_per = {k: (v if _suspicious(worklists.left_off_assessed.get(k, 0), worklists.eligible[k])
                    else max(0, v - worklists.left_off_assessed.get(k, 0))) for k, v in open_per.items()}
    listed = {k: len(v) for k, v in worklists.lists.items()}
    return RunFacts(as_of=t, persons_scored=len(scores), rows_per_institution={str(k): int(v) for k, v in rows.items()},
                    expected_institutions=_expected_institutions(settings),
                    previous_rows_per_institution=prev_rows, previous_as_of=prev_as_of,
                    quarantine_per_source=per_source,
                    newest_date_per_source=_newest_per_source(settings, newest),
                    open_cases_per_institution={str(k): int(v) for k, v in open_per.items()},
                    worklist_rows_per_institution=listed)


def _runs_entry(facts: RunFacts, token: str, forced: bool, open_cases: pd.DataFrame) -> pd.DataFrame:
    open_per = open_cases["institution"].astype("str").value_counts().to_dict() if len(open_cases) else {}
    insts = sorted(set(facts.rows_per_institution) | set(open_per))
    return pd.DataFrame({
        "institution": pd.Series(insts, dtype="str"),
        "rows": [facts.rows_per_institution.get(i, 0) for i in insts],
        "open_cases": [int(open_per.get(i, 0)) for i in insts],
        "on_list": [facts.worklist_rows_per_institution.get(i, 0) for i in insts],
        "persons_scored": facts.persons_scored,
        "run": token,
        "forced": forced,
    })


def _fairness_entry(table: pd.DataFrame, settings: Settings) -> dict:
    """The manifest's fairness entry: the rule, the verdicts counted, and the disparities beyond the rule
    (ratio and interval rounded; no counts of people). A hidden group is not judged
    (:func:`~iizrisk.list_fairness.flag_rate_ratios`): it is neither counted nor listed, as in the summary."""
    from .list_fairness import verdict_counts

    beyond = table[(table["verdict"] == "exceeds") & ~table["hidden"].astype(bool)] if len(table) else table
    judged = sorted(set(table["attribute"].astype(str))) if len(table) else []
    return {"metric": "flag_rate", "rule": FairnessRule.from_settings(settings).to_dict(),
            "attributes": judged,
            # configured, but absent from the data (no column mapped): said, not silently dropped
            "not_in_the_data": list(table.attrs.get("not_in_the_data", [])),
            "verdicts": verdict_counts(table),
            "exceeds": [{"attribute": str(r.attribute), "group": str(r.group), "reference": str(r.reference),
                         "ratio": round(float(r.ratio), 2),
                         "ratio_ci": [round(float(r.ratio_lo), 2), round(float(r.ratio_hi), 2)]}
                        for r in beyond.itertuples()]}


def _manifest(night: _Night, tmp: Path | None, forced: dict | None) -> dict:
    import platform

    import sklearn

    settings, t, ing, scores, worklists = night.settings, night.t, night.ing, night.scores, night.worklists
    cfg = settings.config_path
    versions = {"iizrisk": __version__, "python": platform.python_version(), "numpy": np.__version__,
                "pandas": pd.__version__, "scikit-learn": sklearn.__version__}
    files = ing.files.to_dict("records") if len(ing.files) else []
    for f in files:
        f.pop("seconds", None)
    return {
        "as_of": t.isoformat(),
        "deployment": settings.deployment.name,
        "notice": NOTICE["en"],
        "config": {"path": str(cfg) if cfg else None,
                   "sha256": hashlib.sha256(cfg.read_bytes()).hexdigest() if cfg else None},
        "inputs": files,
        "rows": {"read": int(sum(ing.report.rows_read.values())), "accepted": int(len(ing.spells)),
                 "rejected": int(ing.report.rows_rejected), "quarantined": int(ing.report.rows_quarantined),
                 "warnings": [p.to_text() for p in ing.report.warnings]},
        "corrections": {k: int(v) for k, v in ing.correction_counts.items()},
        "monitoring": {"warnings": night.monitoring_warnings()},
        "fairness": _fairness_entry(night.list_fairness, settings),
        "persons_scored": int(len(scores)),
        "new_registrations": int(scores["new_registration"].sum()),
        "risk_bands": {str(k): int(v) for k, v in scores["risk_band"].value_counts().sort_index().items()},
        "left_off_recent_assessment_persons": int(len(night.excluded)),
        "reviews_since_last_run": {str(k): int(v) for k, v in
                                   night.review_counts.groupby("decision")["n"].sum().sort_index().items()}
        if len(night.review_counts) else {},
        "worklists": {r["institution"]: {k: int(v) for k, v in r.items() if k != "institution"}
                      for r in worklists.summary().to_dict("records")},
        "ranking": night.ranking.manifest(),
        "model": {"dir": str(night.mdir) if night.mdir else None, "sha256": night.model_hash,
                  "outcome": getattr(night.model, "outcome", None),
                  "horizon_months": getattr(night.model, "horizon_months", None)},
        "health": {"gates": "passed" if forced is None or not forced["failed_gates"] else "forced",
                   "forced": forced},
        "outputs": sorted({str(p.relative_to(tmp)) for p in tmp.rglob("*")
                           if p.is_file() and p.name not in {"run.log"}}
                          # written after the manifest: the run's history row, the manifest, summary, timings
                          | {"history/runs.parquet", "manifest.json", "summary.md", "summary.html", "timings.json"})
        if tmp is not None else [],
        "versions": versions,
        "timings": "timings.json",
    }
