"""The ``iizrisk`` command line.

Sub-commands live in :mod:`iizrisk._commands`, one module each, discovered at
start-up: a module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Errors derived from :class:`~iizrisk.errors.IizriskError`
become a clear message on stderr and the documented exit code:

====  ==========================================================
code  meaning
====  ==========================================================
0     success
1     invalid input (validation report printed)
2     usage or configuration error
3     model problem (missing, tampered, mismatching input)
4     another run holds the lock
5     internal error (a bug: please report it)
====  ==========================================================
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from . import __version__
from .errors import EXIT_INTERNAL, EXIT_USAGE, IizriskError

__all__ = ["main", "build_parser"]

logger = logging.getLogger("iizrisk")


def _command_modules():
    from . import _commands

    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        yield info.name.replace("_", "-"), importlib.import_module(f"{_commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="iizrisk",
        description=(
            "iizrisk: join pseudonymised registrations of ALV, IV, SH and other institutions, "
            "flag multi-registration and revolving doors, score risk with explanations. "
            "Scores are hints for a human review, never decisions."
        ),
        epilog="Exit codes: 0 ok, 1 invalid input, 2 usage/configuration, 3 model problem, "
        "4 locked by another run, 5 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"iizrisk {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _command_modules():
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
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
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USAGE
    _configure_logging(args.verbose, args.quiet)
    try:
        return int(args._run(args) or 0)
    except IizriskError as exc:
        report = getattr(exc, "report", None)
        if report is not None:
            print(report.to_text(), file=sys.stderr)
        print(f"iizrisk {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"iizrisk {args.command}: interrupted", file=sys.stderr)
        return 130
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
