"""argparse types shared by the sub-commands (a module starting with ``_`` is not a command).

Every option a user types is checked here, before any work starts: a wrong
value is a usage error (exit code 2, with the expected form), never a
``ValueError`` deep inside the library (exit code 5 is kept for bugs).

:func:`parse_as_of` is also the check for Python callers (``run_nightly``
receives strings from notebooks too): an as-of date is ISO ``YYYY-MM-DD``
only. ``01.02.2025`` is refused with the ISO spelling of 1 February as the
fix; it is never read month first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import math
import os
import stat
from pathlib import Path
from typing import NoReturn

from .._time import _shown, parse_iso_date
from ..config import MAX_DAYS, MAX_MONTHS
from ..errors import ConfigError, OperatingSystemError

__all__ = ["parse_as_of", "parse_iso_date", "iso_date", "int_at_least", "int_between", "float_at_least",
           "finite_float", "output_file", "no_ahv_path", "MAX_MONTHS", "MAX_DAYS", "check_input", "read_spells_input", "refuse_empty_result", "refuse_overwriting_inputs", "refuse_writing_into_the_deployment", "plain_path", "output_folder", "CSV_SUFFIXES", "PARQUET_SUFFIXES"]

#: Output suffixes written as CSV (``;``, UTF-8 with BOM) and as Parquet.
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")


def parse_as_of(value) -> dt.date:
    """An as-of date: ``YYYY-MM-DD`` text or a date, as :class:`datetime.date`.

    For the command line and for Python callers alike (``run_nightly(as_of=...)``):
    ``"2025-02-30"``, ``"yesterday"``, ``""`` and ``"01.02.2025"`` raise
    :class:`~iizrisk.errors.ConfigError` (exit code 2) naming the expected form.

    Examples
    --------
    >>> parse_as_of(" 2025-02-01 ")
    datetime.date(2025, 2, 1)
    """
    return parse_iso_date(value, "as-of date")


def iso_date(value: str) -> str:
    """argparse type: a YYYY-MM-DD date, returned as that text."""
    try:
        return parse_iso_date(value).isoformat()
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("date ")) from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a whole number") from None




def int_at_least(minimum: int, maximum: int | None = None):
    """argparse type: a whole number of at least ``minimum`` (and at most ``maximum``, when given)."""
    def parse(text: str) -> int:
        value = _int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is above the maximum {maximum}")
        return value

    return parse


def int_between(minimum: int, maximum: int):
    """argparse type: a whole number from ``minimum`` to ``maximum``."""
    def parse(text: str) -> int:
        value = _int(text)
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not between {minimum} and {maximum}")
        return value

    return parse


def finite_float(maximum: float = math.inf):
    """argparse type: a finite number of at most ``maximum`` (no ``nan``, no ``inf``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not a finite number")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is above the maximum {maximum:g}")
        return value

    return parse


def float_at_least(minimum: float):
    """argparse type: a finite number of at least ``minimum``."""
    finite = finite_float()

    def parse(text: str) -> float:
        value = finite(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is below the minimum {minimum:g}")
        return value

    return parse


#: The fix of a path holding an AHV number (as ``pseudonymise`` says it).
_RENAME = "rename it (and its folders) so that no AHV number appears in a path"


def _ahv_in_path(text) -> bool:
    from ..pseudonym import looks_like_ahv

    return bool(looks_like_ahv([str(text)]).any())


def no_ahv_path(text: str) -> str:
    """argparse type: a path holding no AHV number in any spelling (refused without echoing it).

    A file or folder named after a person (``756.1234.5678.97.xlsx``) would put the number into every
    message, log line and the name of what is written: refused at input, as ``pseudonymise`` does.
    """
    if _ahv_in_path(text):
        raise argparse.ArgumentTypeError(f"the path holds a value shaped like an AHV number (withheld here); "
                                         f"{_RENAME}")
    return text


def output_file(*suffixes: str):
    """argparse type: an output file whose name ends in one of ``suffixes`` (case ignored), holding no
    AHV number (:func:`no_ahv_path`)."""
    def parse(text: str) -> Path:
        path = Path(no_ahv_path(text))
        if not text or path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"{_shown(text)}: give a file name ending in {' or '.join(suffixes)} "
                "(the ending chooses the format)")
        return path

    return parse


def read_spells_input(path, columns: list[str] | None = None, extra_institutions: list[str] | None = None):
    """Canonical spells from a command's ``--spells`` (:func:`iizrisk.io.read_canonical`), never none.

    ``extra_institutions``: the deployment's own codes (``[deployment] extra_institutions`` of a command's
    ``--config``); any other code outside the schema's list is refused, as are implausible dates.

    Raises
    ------
    ValidationError
        Exit code 1: the file or folder holds no rows (nothing to flag, count or score); or what
        :func:`~iizrisk.io.read_canonical` raises.
    """
    from ..errors import ValidationError
    from ..io import read_canonical

    spells = read_canonical(check_input(path, "spells"), columns=columns, extra_institutions=extra_institutions)
    if not len(spells):
        raise ValidationError(f"{path}: no spells: the export has its columns but no rows; check the export "
                              "(was it written before the data arrived?)")
    return spells


def require_interventions_of_type(interventions, path, kind: str, option: str | None = "--intervention-type") -> None:
    """Refuse an interventions file without a row of the studied type (exit 1), naming the types it holds.

    A header-only file or a type spelled otherwise ('foo', 'Joint_Assessment') is the user's to fix,
    so the message says which types the file has and where the type is chosen.

    Raises
    ------
    ValidationError
        Naming ``path``, the type and the types present.
    """
    from ..errors import ValidationError, withhold_long_numbers
    from ..schema import load_schema

    if interventions is None or not len(interventions):
        raise ValidationError(f"{path}: no interventions: the file has its columns but no rows; a study of "
                              f"{kind!r} needs the days they were held")
    types = sorted(set(interventions["type"].dropna().astype(str)))
    if kind not in types:
        choose = f"; choose one with {option}" if option else ""
        raise ValidationError(withhold_long_numbers(
            f"{path}: no intervention of type {kind!r}; the file holds {', '.join(map(repr, types)) or 'none'}"
            f"{choose} (the schema's types: {', '.join(load_schema('interventions').field('type').enum or ())})"))


def refuse_empty_result(spells, path, as_of, what: str) -> NoReturn:
    """Refuse a result with nobody in it (exit 1), naming the days the spells cover (``as_of`` outside them).

    Called by the commands whose result is one row per person at an as-of date (``flags``, ``features``)
    when it has no row: an as-of date long before the data gives an empty table, never a result.

    Raises
    ------
    ValidationError
        Naming ``path``, the as-of date and the spells' first start and last observed day.
    """
    from .._time import to_date, to_days
    from ..errors import ValidationError
    from ..spells import observed_until

    starts = to_days(spells["start_date"])
    first = to_date(int(starts.min())) if len(starts) else None
    last = to_date(observed_until(spells)) if len(starts) else None
    raise ValidationError(
        f"{path}: nobody to {what} at {as_of}: the spells cover {first} to {last}; give an as-of date "
        "within that period")


def check_period(first: str | None, last: str | None) -> None:
    """Refuse ``--from`` after ``--to`` (ISO dates, compared as text), naming both (exit 2).

    Without it a reversed period reads as an empty one: a table of nothing, or "no figures".
    """
    if first and last and first > last:
        from ..errors import ConfigError

        raise ConfigError(f"--from {first} lies after --to {last}: give the earlier date with --from")


def check_input(path, what: str = "input") -> Path:
    """``path`` unless it is a FIFO, a device or a socket (reading one would block or never end).

    Called by the commands before reading (not an argparse type: argparse
    would not pass the error on). A missing path is left to the reader, which
    says so in its own words.

    Raises
    ------
    ConfigError
        Exit code 2: the path holds an AHV number (withheld in the message; see :func:`no_ahv_path`).
    OperatingSystemError
        Exit code 6, naming the path and the fix.
    """
    if _ahv_in_path(path):
        raise ConfigError(f"the {what} path holds a value shaped like an AHV number (withheld here); {_RENAME}")
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        return p
    except OSError as exc:  # a link loop, a file where a folder belongs, no permission, a name too long
        why = {errno.ELOOP: "a loop of symbolic links",
               errno.ENOTDIR: "a part of the path is a file, not a folder",
               errno.EACCES: "permission denied to this account on the way to it"}.get(
            exc.errno or 0, exc.strerror or type(exc).__name__)
        raise OperatingSystemError(f"{p}: {why}; give the {what} as a path this account can reach") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise OperatingSystemError(f"{p}: {_special_kind(mode)}, not a regular file or folder; give the {what} as a "
                                   "regular file (reading it would block or never end)")
    return p


def refuse_unwritable_output(out, option: str, *, fix: str = "give a file name") -> None:
    """Refuse (exit 6) an output file whose place holds a folder, a FIFO, a device or a socket, before any work.

    The atomic rename replaced a FIFO or socket someone had put there (and exited 0), and a folder
    was found only once the whole input had been read (exit 6 at the end).
    """
    try:
        mode = Path(str(out)).lstat().st_mode
    except OSError:  # absent (the usual case), or unreachable: the write says why, naming the path
        return
    if os.path.isdir(str(out)):  # also through a link
        raise OperatingSystemError(f"{option} {out}: is a folder where a file is expected: {fix}")
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise OperatingSystemError(f"{option} {out}: {_special_kind(mode)}, not a regular file; writing would "
                                   "replace it: give the name of a regular file")


def _special_kind(mode: int) -> str:
    """A path that is neither a file, a folder nor a link, in words."""
    return "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"


def plain_path(text: str) -> str:
    """argparse type: a path that is not empty, a FIFO, a device or a socket (e.g. a key file, an output
    folder) and holds no AHV number (:func:`no_ahv_path`); returned as given. An empty ``--out ''`` would
    have written into the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path: give a file or folder name")
    no_ahv_path(text)
    check_input(text, "file")  # OperatingSystemError: exit 6, as for every path the machine cannot use
    return text


def output_folder(text: str) -> str:
    """argparse type of an output folder (``--out DIR``): a :func:`plain_path` that is not an existing file.

    A file there made the command do all its work and fail at the end, when writing (exit 6); it is
    a usage error (exit 2) before any work starts, as ``demo``, ``synth`` and ``train`` had it.
    """
    plain_path(text)
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{_shown(text)} is a file, not a folder: give an output folder (new, "
                                         "or one written before)")
    return text


def _same_path(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one existing file or folder (also through a symbolic or hard link)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def refuse_overwriting_inputs(inputs: dict[str, object], *, files: dict[str, object] | None = None,
                              folders: dict[str, object] | None = None) -> None:
    """Refuse (exit code 2) an output that is, or would write into, one of a command's inputs.

    Called by the commands with their options before any work starts (``pseudonymise`` refuses
    OUT equal to IN the same way). ``inputs``, ``files`` (single output files) and ``folders``
    (output folders) map an option's name (``"--spells"``) to its path, or to ``None`` when
    not given. Refused:

    * an output that is an input under any path (the same file or folder, also through a link):
      the output would replace it, and the atomic rename ignores a read-only input's mode;
    * an output file directly inside an input folder, or an output folder that is an input
      folder: the written files would be read back as input the next time (a folder of
      Parquet spells reads every ``*.parquet`` in it) or replace one of its files.

    Raises
    ------
    ConfigError
        Exit code 2, naming both options and the fix.
    """
    outputs = [(o, p, False) for o, p in (files or {}).items()] + [(o, p, True) for o, p in (folders or {}).items()]
    for out_opt, out, is_folder in outputs:
        if out is None:
            continue
        o = Path(str(out))
        for in_opt, inp in inputs.items():
            if inp is None:
                continue
            i = Path(str(inp))
            kind = "folder" if is_folder else "file"
            if _same_path(o, i):
                what = "folder" if i.is_dir() else "file"
                raise ConfigError(f"{out_opt} {o} is the {in_opt} input {i} (the same {what}); writing there would "
                                  f"overwrite the input: give {out_opt} another {kind}")
            if not is_folder and i.is_dir() and _same_path(o.parent, i):
                raise ConfigError(f"{out_opt} {o} lies in the {in_opt} input folder {i}; writing there would change "
                                  f"the input (its files are read as {in_opt}): give {out_opt} a file outside it")


def refuse_writing_into_the_deployment(settings, config, *, files: dict[str, object] | None = None,
                                       folders: dict[str, object] | None = None) -> None:
    """Refuse (exit 2) an output of a command reading a deployment's settings that would replace one of its
    files (the settings, an export, the interventions, corrections or key file) or land in the folders its
    runs manage (the model, the runs, the history).

    An output there was written over whatever was at its path: ``validate --report`` replaced the settings
    file, an export, the model's manifest or a published worklist (and the command still exited 0).
    ``files`` and ``folders`` map options to paths (None: not given), as :func:`refuse_overwriting_inputs`.

    Raises
    ------
    ConfigError
        Naming the option, the folder or file and the fix.
    """
    inputs: dict[str, object] = {"CONFIG": config}
    for src in settings.sources:
        inputs[f"[[sources]] {src.name!r} path"] = settings.resolve(src.path)
    for key, value in (("[deployment] interventions", settings.deployment.interventions),
                       ("[deployment] corrections", settings.deployment.corrections),
                       ("[model] signing_key_file", settings.model.signing_key_file)):
        if value:
            inputs[key] = settings.resolve(value)
    refuse_overwriting_inputs(inputs, files=files, folders=folders)
    for option, out in [*(files or {}).items(), *(folders or {}).items()]:
        if out is None:
            continue
        target = Path(str(out)).resolve()
        for key, folder in (("[model] dir", settings.model.dir), ("[output] dir", settings.output.dir),
                            ("[output] history_dir", settings.output.history_dir)):
            root = settings.resolve(folder).resolve()
            if target == root or root in target.parents:
                raise ConfigError(f"{option} {out} lies in the {key} folder {root}: it would change what the runs "
                                  f"wrote or read; give {option} a place outside it")
