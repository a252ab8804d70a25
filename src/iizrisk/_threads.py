"""One task in a second thread: work that releases the GIL (hashing, sorting) beside the main thread's.

Ground floor: imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["in_background"]

T = TypeVar("T")


def in_background(fn: Callable[..., T], /, *args: Any, name: str) -> Future[T]:
    """``fn(*args)`` started in a thread of its own named ``iizrisk-<name>``; ``.result()`` waits for it.

    The thread ends with its one task; an exception it raises is raised again by ``.result()``.

    >>> in_background(sum, [1, 2, 3], name="example").result()
    6
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"iizrisk-{name}")
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)
