"""The ``iizrisk`` command line.

Sub-commands live in :mod:`iizrisk._commands`, one module each, discovered at
start-up: a module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Errors derived from :class:`~iizrisk.errors.IizriskError`
become a clear message on stderr and the documented exit code:

====  ==========================================================
code  meaning
====  ==========================================================
0     success
1     invalid input (validation report printed) or a failed health gate
2     usage or configuration error
3     model problem (missing, tampered, unsigned, mismatching input)
4     another run holds the lock
5     internal error (a bug: please report it)
6     operating-system failure: a path that cannot be read or written
      (permissions, full disk, read-only file system, a folder or device
      where a file is expected), or not enough memory
====  ==========================================================

An :class:`OSError` becomes exit code 6 with the path and the fix (e.g. make
the folder writable by the service account, free disk space); a
:class:`MemoryError` too. Input a user controls never gives exit code 5: the
options are checked by argparse types (:mod:`iizrisk._commands._args`), an
``--as-of`` date must be ``YYYY-MM-DD`` in every command. Messages never
contain data values, identifiers or pseudonyms.

``-v``/``-vv`` (more log output) and ``-q`` (only warnings and errors) may
stand before or after the sub-command: ``iizrisk -q run CONFIG`` and
``iizrisk run CONFIG -q`` are the same. The command line configures the
``iizrisk`` logger for itself (INFO by default, on stderr); the library never
sets logger levels.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import pkgutil
import re
import sys
from typing import NoReturn

from . import __version__
from .errors import (
    EXIT_INTERNAL,
    EXIT_OS,
    EXIT_USAGE,
    ConfigError,
    IizriskError,
    OperatingSystemError,
    WithholdingFormatter,
    withhold_long_numbers,
)

__all__ = ["main", "build_parser"]

logger = logging.getLogger("iizrisk")


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors never echo a long number (an AHV number given as a choice)."""

    def error(self, message: str) -> NoReturn:
        super().error(withhold_long_numbers(message))


def _command_modules():
    from . import _commands

    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        yield info.name.replace("_", "-"), importlib.import_module(f"{_commands.__name__}.{info.name}")


def _log_options(dest_prefix: str = "") -> _Parser:
    """``-v`` and ``-q``, shared by the main parser and every sub-command (no defaults: see main)."""
    common = _Parser(add_help=False)
    group = common.add_argument_group("log output")
    group.add_argument("-v", "--verbose", dest=f"{dest_prefix}verbose", action="count", default=argparse.SUPPRESS,
                       help="more log output (-vv for debug); before or after the command")
    group.add_argument("-q", "--quiet", dest=f"{dest_prefix}quiet", action="store_true",
                       default=argparse.SUPPRESS, help="only warnings and errors; before or after the command")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command (their parsers are of the same class)."""
    parser = _Parser(
        prog="iizrisk",
        description=(
            "iizrisk: join pseudonymised registrations of ALV, IV, SH and other institutions, "
            "flag multi-registration and revolving doors, score risk with explanations. "
            "Scores are hints for a human review, never decisions."
        ),
        epilog="Exit codes: 0 ok, 1 invalid input, 2 usage/configuration, 3 model problem, "
        "4 locked by another run, 5 internal error (a bug), 6 operating-system failure (permissions, "
        "full disk, not a regular file, memory). -v/-q may also follow the command.",
        parents=[_log_options()],
    )
    parser.add_argument("--version", action="version", version=f"iizrisk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # after the command: other names, so that `-v run -v` counts twice (a sub-command's
    # namespace is copied over the main one)
    after = _log_options("_sub_")
    for name, module in _command_modules():
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
                           parents=[after])
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _parser=p, _keeps_freed_memory=getattr(module, "KEEPS_FREED_MEMORY", False))
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (tests swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(WithholdingFormatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(level)


#: errno -> what went wrong and what fixes it (the path is named before).
_OS_FIXES = {
    errno.EACCES: "permission denied: make the folder (and the files in it) readable and writable by the "
                  "service account that runs iizrisk (owner, group, mode)",
    errno.EPERM: "operation not permitted: make the folder (and the files in it) readable and writable by the "
                 "service account that runs iizrisk (owner, group, mode)",
    errno.EROFS: "the file system is read-only: choose a folder on a writable file system",
    errno.ENOSPC: "no space left on the device: free disk space or choose a folder on another disk",
    errno.EDQUOT: "disk quota exceeded: free disk space or ask for a larger quota",
    errno.EFBIG: "file too large for the file system: choose a folder on another file system",
    errno.EISDIR: "is a folder where a file is expected: give a file name",
    errno.ENOTDIR: "a part of the path is a file, not a folder: correct the path",
    errno.ENOENT: "no such file or folder: check the path (and that its folder exists)",
    errno.EEXIST: "already exists: remove it or choose another name",
    errno.ENOTEMPTY: "the folder is not empty: empty it or choose another folder",
    errno.ENXIO: "not a regular file (a FIFO, socket or device without a reader): give a regular file",
    errno.ESPIPE: "not a regular file (a FIFO, pipe or device): give a regular file",
    errno.ENODEV: "a device, not a regular file: give a regular file",
    errno.ELOOP: "too many symbolic links (a loop?): correct the path",
    errno.ENAMETOOLONG: "the path is too long: choose a shorter path",
    errno.EMFILE: "too many open files: raise the limit of open files (ulimit -n) of the service account",
    errno.ENFILE: "too many open files on the system: retry later or raise the system's limit",
    errno.EIO: "input/output error: check the disk or the network share",
    errno.EBUSY: "the file or device is busy: retry when the other program has finished",
    errno.EXDEV: "the temporary and the final file lie on different file systems: keep them on one",
    errno.EPIPE: "the output was closed early (a pipe whose reader stopped): read the whole output",
    errno.ETIMEDOUT: "timed out: check the network share",
}


def _is_non_folder(path: str) -> bool:
    import os

    return os.path.lexists(path) and not os.path.isdir(path)


def _os_message(exc: OSError) -> str:
    """The path(s) and the fix of an operating-system error; never data values nor long numbers."""
    return withhold_long_numbers(_os_text(exc))


def _os_text(exc: OSError) -> str:
    code = exc.errno
    detail = None
    if code is None:  # e.g. pyarrow: "Failed to open local file '...'. Detail: [errno 13] Permission denied"
        detail = str(exc).splitlines()[0][:300] if str(exc) else None
        m = re.search(r"\[errno (\d+)\]", str(exc), re.IGNORECASE)
        code = int(m.group(1)) if m else None
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(paths) if paths else (detail or "a file or folder")
    fix = _OS_FIXES.get(code) if code is not None else None
    if code in (errno.EEXIST, errno.ENOTDIR) and paths and _is_non_folder(paths[0]):
        fix = "exists and is not a folder, but a folder is needed there: correct the path"
    if fix is None:
        reason = exc.strerror or (errno.errorcode.get(code, "") if code else "") or type(exc).__name__
        fix = f"{reason}: check the path, its permissions and the file system"
    return f"{where}: {fix}"


#: OpenMP threads (the boosting model's predictions and fits) that wait for work sleep instead of spinning.
#: Spinning threads compete for the cores with the process's other threads (OpenBLAS's, Arrow's) and with
#: other jobs on the machine: on a loaded 2-core machine the demo's nightly check took 14.7-16.7 s with
#: libgomp's default and 11.3-13.4 s with passive waiting (21.8-27.2 s when spinning only).
OPENMP_WAIT = ("OMP_WAIT_POLICY", "PASSIVE")


def console() -> int:
    """Entry point of the ``iizrisk`` console script and of ``python -m iizrisk``: :func:`main` in a
    process of its own, which a command may tune for itself (:mod:`iizrisk._memory`).

    Before anything loads OpenMP, its waiting threads are set to sleep (:data:`OPENMP_WAIT`) unless
    the environment chooses otherwise (``OMP_WAIT_POLICY`` set by the operator is kept).
    """
    os.environ.setdefault(*OPENMP_WAIT)
    return main(own_process=True)


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """Run one command; returns the exit code.

    ``own_process``: the command runs in a process of its own (the console script), so settings
    that last for the whole process may be made (a command's ``KEEPS_FREED_MEMORY``). Called
    from Python (a notebook, a service, the tests), nothing of the process is changed.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except OperatingSystemError as exc:  # a path option the machine cannot reach (plain_path): as for any path
        print(f"iizrisk: error: {withhold_long_numbers(str(exc))}", file=sys.stderr)
        return exc.exit_code
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USAGE
    if own_process:
        from .store import NOT_FOR_EVERYONE

        os.umask(os.umask(0) | NOT_FOR_EVERYONE)  # nothing this process creates is open to everyone
        if args._keeps_freed_memory:
            from ._memory import keep_freed_memory

            keep_freed_memory()
    if isinstance(getattr(args, "as_of", None), str):  # every command's --as-of is YYYY-MM-DD
        from ._commands._args import parse_as_of

        try:
            as_of = parse_as_of(args.as_of)
        except ConfigError as exc:
            args._parser.error(f"argument --as-of: {exc}")
        if not hasattr(args, "force"):  # `run` decides itself (--force: the clock may be wrong)
            from ._time import not_after_today

            try:
                not_after_today(as_of, why="no data can hold the future, and open spells would be stretched to it")
            except ConfigError as exc:
                args._parser.error(f"argument {exc}")
        args.as_of = as_of.isoformat()
    verbose = getattr(args, "verbose", 0) + getattr(args, "_sub_verbose", 0)
    quiet = getattr(args, "quiet", False) or getattr(args, "_sub_quiet", False)
    for name in ("_sub_verbose", "_sub_quiet"):
        if hasattr(args, name):
            delattr(args, name)
    args.verbose, args.quiet = verbose, quiet
    _configure_logging(verbose, quiet)
    try:
        return int(args._run(args) or 0)
    except IizriskError as exc:
        report = getattr(exc, "report", None)
        if report is not None:  # names files and values too (a review file named after a person)
            print(withhold_long_numbers(report.to_text()), file=sys.stderr)
        # a value the user gave may come back in the message (an unknown code, a specification): never a
        # long number, which may be an AHV number typed into the wrong option
        print(f"iizrisk {args.command}: error: {withhold_long_numbers(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"iizrisk {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        logger.debug("operating-system error", exc_info=True)
        print(f"iizrisk {args.command}: error: {_os_message(exc)}", file=sys.stderr)
        return EXIT_OS
    except MemoryError:
        logger.debug("out of memory", exc_info=True)
        print(f"iizrisk {args.command}: error: not enough memory: run on a machine with more memory, "
              "or on less data (e.g. one canton or a shorter period)", file=sys.stderr)
        return EXIT_OS
    except Exception as exc:  # pragma: no cover - last resort, keep identifiers out
        logger.debug("internal error", exc_info=True)
        print(
            f"iizrisk {args.command}: internal error ({type(exc).__name__}); "
            "rerun with -vv for the traceback and please report it",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
