"""The C allocator and the memory of commands that build and drop gigabytes of arrays.

numpy takes its arrays from glibc's ``malloc``. By default glibc maps every
allocation above 32 MiB afresh from the operating system and unmaps it when
freed, so each large temporary array costs a page fault for every page it
touches. :func:`keep_freed_memory` makes glibc keep freed memory for the next
array instead; :func:`release_memory` hands back what a finished stage freed.
Both are best effort: they do nothing where the C library is not glibc.

Ground floor: imports nothing of the package.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["keep_freed_memory", "release_memory"]

# mallopt(3) parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_TRIM_THRESHOLD = 2**31 - 1  # the largest a C int holds: free memory at the heap's top is kept up to 2 GiB
_TOP_PAD = 256 * 2**20  # the heap grows in steps of 256 MiB


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:  # pragma: no cover - no C library to load
        return None


def keep_freed_memory() -> bool:
    """Let glibc serve large arrays from its heap and keep what is freed for the next ones; Arrow's
    memory comes from jemalloc where pyarrow has it.

    For long single-process commands whose stages allocate and drop arrays of
    hundreds of megabytes. The fairness audit at national scale: its system time,
    spent on page faults, fell from about 30 % to below 20 % of its wall time, the
    whole run from about 50 s to 44 s, and its peak stayed within 2 % (glibc's
    setting alone: 21 % and 3-5 % more at the peak; Arrow's default mimalloc
    keeps more). Memory returns to the system when the process ends, or at
    :func:`release_memory`.

    The settings last for the whole process: the console script applies them for the commands that
    ask (``KEEPS_FREED_MEMORY``: ``audit``, ``run`` and ``train``), never a call from Python
    (:func:`iizrisk.cli.main`). An Arrow pool chosen with ``ARROW_DEFAULT_MEMORY_POOL`` is kept.

    The nightly run at 10M spells: 25.0-26.8 s instead of 26.4-30.6 s over six alternated pairs, its
    system time 7.6-9.0 s instead of 9.4-13.8 s, its peak 4.3 GB instead of 3.95 GB. (An earlier day's
    measurement showed no gain: how much the page faults cost varies with the machine's state, and
    these settings make the run less dependent on it.)

    Returns True when glibc took its settings, False where the C library is not glibc (Arrow's
    pool may still have been switched).
    """
    import os

    import pyarrow as pa

    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        try:
            pa.set_memory_pool(pa.jemalloc_memory_pool())
        except (AttributeError, NotImplementedError):  # a pyarrow built without jemalloc: its default stays
            pass
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    # each call returns 1 on success; a large request still gets its own mapping when the heap cannot grow
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD), (_M_TOP_PAD, _TOP_PAD)))


def release_memory() -> None:
    """Hand memory freed by a stage back to the operating system.

    glibc's heap and Arrow's allocator keep freed pages for reuse; after
    ingesting ten million rows that is gigabytes the next stages would stack
    their peak on. Best effort: skipped where the calls do not exist.
    """
    import pyarrow as pa

    try:
        pa.default_memory_pool().release_unused()
    except (AttributeError, NotImplementedError):  # pragma: no cover - older pyarrow
        pass
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)
