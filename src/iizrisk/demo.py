"""The demo: a synthetic canton from raw exports to one night's worklists.

``iizrisk demo --out DIR`` (run by ``make demo``) generates a synthetic canton
with institution-style raw exports (``;`` CSV, Windows-1252, ``dd.mm.yyyy``,
duplicated and split rows, a few invalid rows), writes its deployment
configuration, trains a model on the ingested exports, runs the nightly job
for the last day and says where the worklists and the HTML summary are. It is
the same path a cantonal IIZ office takes, on data that can be shipped.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DemoResult", "run_demo"]

logger = logging.getLogger("iizrisk")


@dataclass
class DemoResult:
    """Where the demo put things, and how long each step took."""

    out: Path
    config: Path
    model_dir: Path
    run_folder: Path
    timings: dict
    training_metrics: object

    def describe(self) -> str:
        wl = sorted((self.run_folder / "worklists").glob("*.csv"))
        lines = [
            f"demo finished in {self.timings['total']:.0f} s ("
            + ", ".join(f"{k} {v:.0f} s" for k, v in self.timings.items() if k != "total") + ")",
            f"  configuration : {self.config}",
            f"  model         : {self.model_dir} (signed; model card and metrics in manifest.json)",
            f"  run folder    : {self.run_folder}",
            f"  HTML summary  : {self.run_folder / 'summary.html'}",
            "  worklists     : " + ", ".join(p.name for p in wl),
            "Each worklist is a hint for a human review, never a decision.",
        ]
        return "\n".join(lines)


def run_demo(out: str | Path, *, persons: int = 50_000, years: int = 10, seed: int = 2024,
             end: str | None = None, canton: str = "ZH", max_train_rows: int = 150_000,
             progress: bool | None = None) -> DemoResult:
    """Generate a synthetic canton, train a model, run the nightly job for the last day.

    Parameters
    ----------
    out : path
        Folder for everything (created; an earlier demo there is replaced).
    persons : int, default 50,000
        People with at least one registration in the period.
    years : int, default 10
        Length of the period, ending at ``end``.
    end : 'YYYY-MM-DD', optional
        Export date; default the last day of the previous year.
    """
    from .batch import run_nightly
    from .config import Settings
    from .io import ingest
    from .model import save_model, signing_key, train
    from .modelcard import write_model_card
    from .synth import generate

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(out).resolve()
    end_d = dt.date.fromisoformat(end) if end else dt.date(dt.date.today().year - 1, 12, 31)
    start_d = dt.date(end_d.year - years, end_d.month, end_d.day) + dt.timedelta(days=1)

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
    settings.worklist.language_per_institution = {"SH": "fr", "IV": "it"} | dict(
        settings.worklist.language_per_institution)
    settings.save(cfg_path)
    settings = Settings.load(cfg_path)

    t = time.perf_counter()
    ing = ingest(settings)
    interventions = ing.interventions
    logger.info("demo: %s", ing.report.summary_line())
    timings["ingest"] = time.perf_counter() - t

    t = time.perf_counter()
    model, report = train(ing.spells, interventions=interventions, outcome=settings.model.outcome,
                          horizon_months=settings.model.horizon_months, max_train_rows=max_train_rows)
    model_dir = save_model(model, settings.resolve(settings.model.dir), key=signing_key(file=key_path))
    write_model_card(model_dir, model_dir)  # the card beside the model, from its manifest
    timings["train"] = time.perf_counter() - t

    t = time.perf_counter()
    result = run_nightly(settings, as_of=end_d, progress=progress)
    timings["nightly run"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return DemoResult(out=out, config=cfg_path, model_dir=Path(model_dir), run_folder=result.folder,
                      timings={k: round(v, 1) for k, v in timings.items()},
                      training_metrics=report.metrics)


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
