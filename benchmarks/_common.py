"""Shared benchmark helpers: timing with peak memory, table printing, random canonical spells."""

from __future__ import annotations

import json
import platform
import resource
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

CACHE = Path(__file__).resolve().parent / ".cache"
#: The format of the cached inputs: raise it when the files the project writes change, so that a cache
#: written before is built again (2: pseudonyms as plain Parquet values, no dictionary per row group).
CACHE_FORMAT = 2


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


class _PeakSampler:
    """Samples the resident set size every 20 ms (ru_maxrss never goes down, so a stage's
    own peak needs sampling)."""

    def __init__(self):
        self.peak = _rss_mib()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mib())
            time.sleep(0.02)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_mib())


@contextmanager
def stage(table: list, name: str, *, cpu: bool = False, **extra):
    """Time a block; append {stage, seconds, peak_rss_mib, ...} to ``table``.

    ``cpu=True`` adds ``cpu_seconds``, the process's CPU time in the block (the figure to compare on a
    loaded machine, where wall time says little).
    """
    with _PeakSampler() as s:
        t0, c0 = time.perf_counter(), time.process_time()
        yield
        secs, cpu_secs = time.perf_counter() - t0, time.process_time() - c0
    row = {"stage": name, "seconds": round(secs, 2), "peak_rss_mib": round(s.peak), **extra}
    if cpu:
        row["cpu_seconds"] = round(cpu_secs, 2)
    table.append(row)


def print_table(rows: list, title: str) -> None:
    df = pd.DataFrame(rows)
    print(f"\n## {title}\n")
    print(df.to_markdown(index=False) if _has_tabulate() else df.to_string(index=False))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def machine() -> dict:
    import os

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpus": os.cpu_count(), "memory_gib": round(mem, 1), "python": platform.python_version(),
            "platform": platform.platform(), "numpy": np.__version__, "pandas": pd.__version__}


def save_json(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=str))


def cached(path: Path) -> bool:
    """True when ``path`` (a cached file or folder) exists in the current :data:`CACHE_FORMAT`.

    An older or unstamped one is removed, so the caller builds it again and then calls
    :func:`stamp`.
    """
    import shutil

    mark = path.parent / f"{path.name}.format"
    if path.exists() and mark.exists() and mark.read_text().strip() == str(CACHE_FORMAT):
        return True
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    mark.unlink(missing_ok=True)
    return False


def stamp(path: Path) -> Path:
    """Record that ``path`` was built in the current :data:`CACHE_FORMAT`; returns ``path``."""
    (path.parent / f"{path.name}.format").write_text(f"{CACHE_FORMAT}\n")
    return path
