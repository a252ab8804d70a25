"""Reading a file a user names without ever blocking: regular files only.

A named pipe opened for reading waits for a writer, and a device may never end: the nightly run would hang
while it holds the run lock. :func:`read_regular` refuses both before and after opening (the path may be
replaced in between), opening without blocking. Each caller supplies the error that names the file's role
and the fix, so the settings, an export and a key file each say what to do.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

__all__ = ["file_kind", "read_regular"]

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What a path that is not a regular file is, in words ("a named pipe (FIFO)"), from its ``st_mode``."""
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


def read_regular(path: str | Path, refuse: Callable[[int], Exception]) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file and its status, read without ever blocking.

    Parameters
    ----------
    path : path
        The file.
    refuse : callable
        Given the ``st_mode`` of a path that is not a regular file, the exception to raise.

    Raises
    ------
    OSError
        The path is missing or cannot be opened (left to the caller, whose message says what to check).
    Exception
        ``refuse(mode)`` when the path, or what it was replaced with once opened, is not a regular file.
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise refuse(mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb", closefd=True) as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):  # replaced since the first look
            raise refuse(st.st_mode)
        return fh.read(), st
