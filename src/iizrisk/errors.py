"""Exceptions raised by iizrisk, and the exit codes the command line maps them to.

Every error derives from :class:`IizriskError`. Messages name the file, the
column, the rows and what would fix the problem; they never contain raw
identifiers (AHV numbers) or pseudonyms.

Exit codes of the ``iizrisk`` command line:

====  ==========================================================================
code  meaning
====  ==========================================================================
0     success
1     invalid input (validation report printed) or a failed health gate
2     usage or configuration error
3     model problem (missing, tampered, unsigned, mismatching input)
4     another run holds the lock
5     internal error (a bug: please report it)
6     operating-system failure: a file or folder that cannot be read or
      written (permissions, full disk, a folder or device where a file is
      expected), or not enough memory
====  ==========================================================================

Input a user controls (options, files, data) never gives exit code 5: the
command line maps an :class:`OSError` to 6 with the path and the fix, and
the sub-commands check their options before any work starts.

The errors about user input -- :class:`ConfigError` (settings, options) and
:class:`ValidationError` (data; with :class:`RawIdentifierError`) -- are also
:class:`ValueError`, as scikit-learn's ``NotFittedError`` is also a
``ValueError``: Python code that guards a call with ``except ValueError``
catches them as the bad values they are. The command line looks at
:class:`IizriskError` first, so their exit codes stay 2 and 1. Model, lock,
operating-system, schema and internal errors are not ``ValueError``.
"""

from __future__ import annotations

import logging
import re

__all__ = [
    "EXIT_OK",
    "EXIT_INVALID_INPUT",
    "EXIT_USAGE",
    "EXIT_MODEL",
    "EXIT_LOCKED",
    "EXIT_INTERNAL",
    "EXIT_OS",
    "IizriskError",
    "ConfigError",
    "withhold_long_numbers",
    "WithholdingFormatter",
    "SchemaError",
    "ValidationError",
    "RawIdentifierError",
    "PseudonymisationError",
    "KeyFileError",
    "ModelError",
    "InputMismatchError",
    "LockedError",
    "OperatingSystemError",
    "InternalError",
]

#: Exit codes of the ``iizrisk`` command line (documented in the README).
EXIT_OK = 0
EXIT_INVALID_INPUT = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_LOCKED = 4
EXIT_INTERNAL = 5
EXIT_OS = 6


class IizriskError(Exception):
    """Base class of every error raised on purpose by iizrisk."""

    exit_code: int = EXIT_INVALID_INPUT


class ConfigError(IizriskError, ValueError):
    """The deployment configuration (TOML) or a settings value is wrong."""

    exit_code = EXIT_USAGE


class SchemaError(IizriskError):
    """A schema file is missing or malformed (a packaging problem, not user input)."""

    exit_code = EXIT_INTERNAL


class ValidationError(IizriskError, ValueError):
    """Input data failed validation; ``report`` holds every problem found."""

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class RawIdentifierError(ValidationError):
    """A column holds values shaped like AHV numbers: raw identifiers are refused."""


class PseudonymisationError(IizriskError):
    """Pseudonymisation could not be carried out."""


class KeyFileError(PseudonymisationError):
    """The secret key for pseudonymisation or model signing is missing or unusable."""

    exit_code = EXIT_USAGE


class ModelError(IizriskError):
    """A model directory is missing, tampered with, or does not fit the request."""

    exit_code = EXIT_MODEL


class InputMismatchError(ModelError):
    """Scoring input does not match what the model was fitted on."""


class LockedError(IizriskError):
    """Another run holds the lock on the output folder."""

    exit_code = EXIT_LOCKED


class OperatingSystemError(IizriskError):
    """A file or folder could not be read or written, or memory ran out (not the data's fault).

    The command line turns every :class:`OSError` (and :class:`MemoryError`)
    into this error's exit code, with the path and the fix in the message.
    """

    exit_code = EXIT_OS


class InternalError(IizriskError):
    """An invariant of iizrisk itself was violated (a bug: please report it); nothing was written."""

    exit_code = EXIT_INTERNAL


#: Nine or more digits in a row, also with the separators AHV numbers are written with: never echoed.
_LONG_NUMBER = re.compile(r"\d(?:[\s.'\u2019\-]?\d){8,}")
#: What may stand between the groups of an AHV number (also Unicode spaces, dashes, middle dots, slashes).
_AHV_SEP = (r"[\s._/\\|,:;'\u2019\u00b7\u2022\u2027\u2219\u22c5\u2e31\u30fb\uff65\u2044\u2215\u2236"
            r"\-\u2010-\u2015\u2212\ufe58\ufe63\uff0c\uff0d\uff0e\uff0f\uff1a\uff1b\uff3f\u200b-\u200d\u2060\u00ad]")
#: An AHV number with up to three of those between its groups (756_1234_5678_97, 756 . 1234 . 5678 . 97), and
#: with thousands separators (7,561,234,567,897): withheld though the long-number pattern does not see them.
_AHV_SPELLED = re.compile(
    rf"(?<!\d)[7\uff17]{_AHV_SEP}{{0,3}}[5\uff15]{_AHV_SEP}{{0,3}}[6\uff16](?:{_AHV_SEP}{{0,3}}\d){{10}}(?!\d)")


def withhold_long_numbers(text: str) -> str:
    """``text`` for a message, every long number in it (an AHV number in any spelling) withheld.

    >>> withhold_long_numbers("unknown code '756.1234.5678.97'; 10,065,912 rows, 2024-06-30")
    "unknown code '<withheld>'; 10,065,912 rows, 2024-06-30"
    >>> withhold_long_numbers("756_1234_5678_97, 756·1234·5678·97, 756 : 1234 : 5678 : 97; rows 1, 2, 3")
    '<withheld>, <withheld>, <withheld>; rows 1, 2, 3'
    """
    return _LONG_NUMBER.sub("<withheld>", _AHV_SPELLED.sub("<withheld>", text))


class WithholdingFormatter(logging.Formatter):
    """Every log line (and traceback) with its long numbers withheld: a path or a value in a message
    may hold an AHV number (a file named after a person). Used for the console and each run's ``run.log``."""

    def format(self, record: logging.LogRecord) -> str:
        return withhold_long_numbers(super().format(record))
