"""The demo: a synthetic canton from raw exports to one night's worklists.

``iizrisk demo --out DIR`` (run by ``make demo``) generates a synthetic canton
with institution-style raw exports (``;`` CSV, Windows-1252, ``dd.mm.yyyy``,
duplicated and split rows, a few invalid rows), writes its deployment
configuration, trains a model on the ingested exports, runs the nightly job
for the last day, then shows the coordinator's loop: coordinators review the
top of each list (:func:`simulate_reviews`: filled-in ``.xlsx`` review files,
decisions with some noise, a few cases not on the list), ``iizrisk reviews
import`` stores them, and a second night's lists respect them. It says where
the worklists and the HTML summary are. It is the same path a cantonal IIZ
office takes, on data that can be shipped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .reviews import ReviewImport

__all__ = ["DemoResult", "run_demo", "simulate_reviews", "MIN_PERSONS", "MIN_YEARS", "MAX_YEARS"]

logger = logging.getLogger("iizrisk")

#: The smallest canton and period the demo runs with: fewer people or years leave the training without
#: outcomes of both kinds (a model cannot be trained) or an institution without recent rows (the health
#: gates stop the nightly run). Measured: 500 persons over 4 years ran with every seed tried (5 in ZH, 2 in
#: AI); 200 failed the health gates; 3 years never trained, not even with 1,000 persons. Twice 500 for margin.
MIN_PERSONS = 1_000
MIN_YEARS = 4
#: The longest period: a demo of several decades shows nothing more and takes long.
MAX_YEARS = 50
#: What the demo writes into its folder: a folder holding only these (with ``data/synth.json``) is an
#: earlier demo, which a new one replaces; any other non-empty folder is refused.
_DEMO_ENTRIES = ("data", "secrets", "model", "runs", "history", "reviews")


@dataclass
class DemoResult:
    """Where the demo put things, and how long each step took."""

    out: Path
    config: Path
    model_dir: Path
    run_folder: Path
    timings: dict
    training_metrics: object
    first_run_folder: Path | None = None
    reviews: ReviewImport | None = None

    def describe(self) -> str:
        wl = sorted((self.run_folder / "worklists").glob("*.parquet"))  # one per list (the dated copies have none)
        lines = [
            f"demo finished in {self.timings['total']:.0f} s ("
            + ", ".join(f"{k} {v:.0f} s" for k, v in self.timings.items() if k != "total") + ")",
            f"  configuration : {self.config}",
            f"  model         : {self.model_dir} (signed; model card in model_card.html, metrics in "
            "manifest.json)",
            *([f"  first night   : {self.first_run_folder}",
               f"  reviews       : {self.reviews.summary_text()} (iizrisk reviews import)",
               "  second night  : the lists respect the decisions (kept off, assessed, history columns)"]
              if self.first_run_folder is not None and self.reviews is not None else []),
            f"  run folder    : {self.run_folder}",
            f"  HTML summary  : {self.run_folder / 'summary.html'}",
            f"  worklists     : {self.run_folder / 'worklists'} (" + ", ".join(p.stem for p in wl)
            + ": .csv to read, .xlsx to fill in and import, .parquet)",
            "  then try      : iizrisk monitor CONFIG; iizrisk oversight CONFIG; iizrisk dpia CONFIG --out DIR; "
            "iizrisk information-request CONFIG --person PSEUDONYM --institution ALV --out DIR "
            "(CONFIG: the configuration above; PSEUDONYM: a person_id of the run's scores.parquet)",
            "Each worklist is a hint for a human review, never a decision.",
        ]
        return "\n".join(lines)


def run_demo(out: str | Path, *, persons: int = 50_000, years: int = 10, seed: int = 2024,
             end: str | None = None, canton: str = "ZH", max_train_rows: int = 150_000,
             progress: bool | None = None, reviews: bool = True) -> DemoResult:
    """Generate a synthetic canton, train a model, run the nightly job for the last day.

    Parameters
    ----------
    out : path
        Folder for everything: a new or empty folder, or an earlier demo's, which is replaced once the new
        demo has finished. A demo that fails or is interrupted leaves the folder as it was.
    persons : int, default 50,000
        People with at least one registration in the period: :data:`MIN_PERSONS` (1,000) to 10,000,000.
    years : int, default 10
        Length of the period, ending at ``end``: :data:`MIN_YEARS` (4) to :data:`MAX_YEARS` (50).
    end : 'YYYY-MM-DD', optional
        Export date; default the last day of the previous year.
    reviews : bool, default True
        After the first night, coordinators review the lists (simulated), the
        reviews are imported and a second night runs a week later.

    Raises
    ------
    ConfigError
        Exit code 2, before anything is written: ``persons``, ``years`` or ``end`` out of range, or
        ``out`` a file or a non-empty folder that is not an earlier demo's.
    """
    t0 = time.perf_counter()
    out, start_d, end_d = _check_arguments(out, persons=persons, years=years, end=end, seed=seed)
    with _all_or_nothing(out):
        return _run(out, start_d, end_d, persons=persons, seed=seed, canton=canton, max_train_rows=max_train_rows,
                    progress=progress, reviews=reviews, t0=t0)


def _run(out: Path, start_d: dt.date, end_d: dt.date, *, persons: int, seed: int, canton: str,
         max_train_rows: int, progress: bool | None, reviews: bool, t0: float) -> DemoResult:
    """The demo's steps, into ``out`` (see :func:`run_demo`)."""
    from .batch import run_nightly
    from .config import Settings
    from .io import ingest
    from .model import save_model, signing_key, train
    from .modelcard import write_model_card
    from .synth import generate

    timings: dict[str, float] = {}
    logger.info("demo: generating %s persons in canton %s, %s to %s", f"{persons:,}", canton, start_d, end_d)
    pop = generate(persons, start_d.isoformat(), end_d.isoformat(), seed=seed, canton=canton)
    data = out / "data"
    pop.to_dir(data, exports=True)
    timings["synthesise"] = time.perf_counter() - t0

    cfg_path = data / "iizrisk.toml"
    settings = Settings.load(cfg_path)
    settings.model.dir = str(out / "model")
    settings.output.dir = str(out / "runs")
    settings.output.history_dir = str(out / "history")
    settings.deployment.interventions = "interventions.parquet"
    # the signed path: a random model-signing key, readable by the owner only (a real deployment
    # keeps it outside the data folders, e.g. /etc/iizrisk/model.key)
    key_path = _signing_key_file(out / "secrets" / "model.key")
    settings.model.signing_key_file = str(key_path)
    # whom a person asks about their data (every information document names it); a real office sets its own
    settings.deployment.contact = settings.deployment.contact or (
        "Datenschutz IIZ, Synthetischer Kanton (Demo), Musterstrasse 1, 8000 Zürich, datenschutz@example.invalid")
    settings.worklist.language_per_institution = {"SH": "fr", "IV": "it"} | dict(
        settings.worklist.language_per_institution)
    settings.save(cfg_path)
    settings = Settings.load(cfg_path)

    t = time.perf_counter()
    ing = ingest(settings)
    interventions = ing.interventions
    logger.info("demo: %s%s", ing.report.summary_line(),  # what was found, without its examples (cell values)
                "".join(f"\n  [{q.severity}] {q.source}: {q.column}: {q.problem} ({q.n_rows:,} rows)"
                        for q in ing.report.problems))
    timings["ingest"] = time.perf_counter() - t

    t = time.perf_counter()
    model, report = train(ing.spells, interventions=interventions, outcome=settings.model.outcome,
                          horizon_months=settings.model.horizon_months, max_train_rows=max_train_rows)
    model_dir = save_model(model, settings.resolve(settings.model.dir), key=signing_key(file=key_path))
    # the card beside the model, from its manifest, in the deployment's language and naming its protected
    # attributes (the defaults named two of the four and wrote English for a German-speaking office)
    write_model_card(model_dir, model_dir, language=settings.worklist.language,
                     protected_attributes=list(settings.privacy.protected_attributes))
    timings["train"] = time.perf_counter() - t

    t = time.perf_counter()
    result = run_nightly(settings, as_of=end_d, progress=progress)
    assert result.folder is not None  # run_nightly publishes (check_run would not)
    timings["nightly run"] = time.perf_counter() - t
    first, imported = None, None
    second_d = min(end_d + dt.timedelta(days=7), dt.date.today() - dt.timedelta(days=1))
    if reviews and second_d > end_d + dt.timedelta(days=1):
        from .reviews import import_reviews

        t = time.perf_counter()
        files = simulate_reviews(result.folder, ing.spells, review_date=end_d + dt.timedelta(days=1),
                                 out=out / "reviews", seed=seed, decisions=settings.reviews.decisions)
        imported = import_reviews(settings, files)
        first = result.folder
        result = run_nightly(settings, as_of=second_d, progress=progress)
        assert result.folder is not None
        timings["reviews and second night"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    assert result.folder is not None
    return DemoResult(out=out, config=cfg_path, model_dir=Path(model_dir), run_folder=result.folder,
                      timings={k: round(v, 1) for k, v in timings.items()},
                      training_metrics=report.metrics, first_run_folder=first, reviews=imported)


#: How simulated coordinators decide, by risk band: (decision, probability).
_DECIDE = {"high": (("joint_assessment_proposed", .45), ("joint_assessment_held", .15), ("not_suitable", .15),
                    ("already_in_iiz", .1), ("consent_declined", .05), ("data_error", .03), ("other", .07)),
           "medium": (("joint_assessment_proposed", .2), ("joint_assessment_held", .05), ("not_suitable", .4),
                      ("already_in_iiz", .15), ("consent_declined", .05), ("data_error", .05), ("other", .1)),
           "low": (("joint_assessment_proposed", .05), ("not_suitable", .7), ("already_in_iiz", .1),
                   ("data_error", .05), ("other", .1))}


def simulate_reviews(run_folder: str | Path, spells, *, review_date, out: str | Path, seed: int = 0,
                     share: float = 0.6, overrides: int = 2, decisions=None) -> list[Path]:
    """Coordinators fill in a night's review files: the top ``share`` of each list, with noise.

    Each institution's ``.xlsx`` review file in ``run_folder/worklists`` gets,
    for the first ``share`` of its rows, the review date and a decision drawn
    by the row's risk band (:data:`_DECIDE`: more proposals in the high band,
    more "not suitable" below; decisions not in ``decisions`` are skipped),
    plus ``overrides`` rows for cases of that institution open on the night
    but not on its list (a joint assessment proposed). Synthetic data only;
    returns the filled files written to ``out``.
    """
    import numpy as np
    import pandas as pd
    from openpyxl import load_workbook

    from .reviews import decision_label
    from .store import make_dirs, write_bytes_atomic
    from .tables import header

    rng = np.random.default_rng(seed)
    run_folder, out = Path(run_folder), make_dirs(out)
    night = pd.Timestamp(run_folder.resolve().name.split(".")[0])
    allowed = set(decisions) if decisions is not None else None
    written = []
    for pq_path in sorted(p for p in (run_folder / "worklists").glob("*.parquet")):
        inst = pq_path.stem
        wl = pd.read_parquet(pq_path)
        if not len(wl):  # an empty list (nobody listed tonight): nothing to review; its language unknown here
            continue
        wb = load_workbook(run_folder / "worklists" / f"{inst}.xlsx")
        ws = wb[inst]
        lang = str(wl["language"].iloc[0])
        head = [c.value for c in ws[1]]
        col = {c: head.index(header(c, lang)) + 1 for c in ("case_ids", "review_date", "decision", "decided_by")}
        coordinator = f"IIZ {inst}"  # who decided: a role, never a name
        n = int(np.ceil(share * len(wl)))
        for i in range(n):
            options = [(d, p) for d, p in _DECIDE.get(str(wl["risk_band"].iloc[i]), _DECIDE["low"])
                       if allowed is None or d in allowed]
            if not options:
                continue
            names, probs = zip(*options, strict=True)
            decision = rng.choice(names, p=np.asarray(probs) / sum(probs))
            ws.cell(row=i + 2, column=col["review_date"], value=pd.Timestamp(review_date).date())
            ws.cell(row=i + 2, column=col["decision"], value=decision_label(str(decision), lang))
            ws.cell(row=i + 2, column=col["decided_by"], value=coordinator)
        listed = set(wl["case_ids"].astype(str).str.split(";").explode())
        is_open = ((spells["institution"].astype(str) == inst) & (spells["start_date"] <= night)
                   & (spells["end_date"].isna() | (spells["end_date"] > night)) & spells["case_id"].notna())
        pool = sorted(set(spells.loc[is_open, "case_id"].astype(str)) - listed)
        row = ws.max_row
        if allowed is None or "joint_assessment_proposed" in allowed:
            for case in rng.choice(pool, size=min(overrides, len(pool)), replace=False) if pool else []:
                row += 1
                ws.cell(row=row, column=col["case_ids"], value=str(case))
                ws.cell(row=row, column=col["review_date"], value=pd.Timestamp(review_date).date())
                ws.cell(row=row, column=col["decision"], value=decision_label("joint_assessment_proposed", lang))
                ws.cell(row=row, column=col["decided_by"], value=coordinator)
        buf = io.BytesIO()
        wb.save(buf)
        written.append(write_bytes_atomic(buf.getvalue(), out / f"{inst}_reviewed.xlsx"))
    return written


def _check_arguments(out: str | Path, *, persons, years, end, seed: int = 0) -> tuple[Path, dt.date, dt.date]:
    """The resolved ``out`` folder, first and last day of the period; ConfigError before anything is written."""
    from ._time import not_after_today, parse_iso_date
    from .config import MAX_COUNT
    from .errors import ConfigError

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:  # numpy refuses it after the training
        raise ConfigError(f"--seed {seed!r}: give a whole number of at least 0")

    for name, value, lo, hi, why in (
            ("persons", persons, MIN_PERSONS, MAX_COUNT, "fewer leave too few outcomes to train a model"),
            ("years", years, MIN_YEARS, MAX_YEARS, "a shorter period leaves too few months to train a model")):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(f"--{name} {value!r}: give a whole number from {lo:,} to {hi:,} ({why})")
    end_d = parse_iso_date(end, "--end") if end is not None else dt.date(dt.date.today().year - 1, 12, 31)
    # the nightly run would refuse it, after the synthesis and the training
    not_after_today(end_d, "--end", why="no export comes from the future", fix="give an export date up to today")
    if end_d.year - years < 1900:
        raise ConfigError(f"--end {end_d} with --years {years}: the period would begin before 1900; give a "
                          "later --end or fewer --years")
    try:
        before = end_d.replace(year=end_d.year - years)
    except ValueError:  # 29 February, in a year that has none
        before = end_d.replace(year=end_d.year - years, day=28)
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: a file, not a folder; give a new or empty folder for the demo")
    if out.is_dir():
        entries = sorted(p.name for p in out.iterdir())
        foreign = [e for e in entries if e not in _DEMO_ENTRIES]
        if foreign or (entries and not (out / "data" / "synth.json").is_file()):
            shown = ", ".join(foreign[:3] or entries[:3]) + (", ..." if len(foreign or entries) > 3 else "")
            raise ConfigError(f"--out {out}: the folder is not empty and holds no earlier demo ({shown}); give a "
                              f"new or empty folder (the demo writes {', '.join(_DEMO_ENTRIES)} into it)")
    return out, before + dt.timedelta(days=1), end_d


@contextlib.contextmanager
def _all_or_nothing(out: Path) -> Iterator[None]:
    """Replace ``out`` only if the demo succeeds: a failed or interrupted demo leaves it as it was.

    An earlier demo is moved aside (to ``.<name>.earlier-demo`` beside ``out``), then removed once the new one
    has finished, or put back after the new one's files are removed. A folder left aside by a demo that was
    killed is removed first when it holds a demo; anything else there is refused (exit 2), untouched.
    """
    import shutil

    from .errors import ConfigError

    earlier = None
    if out.is_dir() and any(out.iterdir()):  # an earlier demo (_check_arguments refused anything else)
        earlier = out.with_name(f".{out.name}.earlier-demo")
        if earlier.exists() or earlier.is_symlink():
            if earlier.is_symlink() or not (earlier / "data" / "synth.json").is_file():
                raise ConfigError(f"--out {out}: {earlier} is in the way of the earlier demo, which is moved there "
                                  "until the new one has finished; move it away")
            shutil.rmtree(earlier)  # left by a demo that was killed
        out.rename(earlier)
    existed = out.is_dir()
    try:
        yield
    except BaseException:
        if existed:  # an empty folder given: empty again
            for name in _DEMO_ENTRIES:
                entry = out / name
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
        else:
            shutil.rmtree(out, ignore_errors=True)
        if earlier is not None:
            earlier.rename(out)
        raise
    if earlier is not None:
        shutil.rmtree(earlier, ignore_errors=True)


def _signing_key_file(path: Path) -> Path:
    """A new random signing key in a file only its owner may read (kept if it exists)."""
    import os
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    return path
