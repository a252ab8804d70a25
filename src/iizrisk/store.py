"""Writing files: every file iizrisk writes goes through here, atomically.

A writer puts the bytes into a temporary file beside the target and renames
it over the target (:func:`os.replace`, atomic on POSIX): a reader sees the
old file or the new one, never half of one, and a crash leaves at most a
``.<name>.*.tmp`` file, never a truncated target.

Permissions: a file is created ``0660 & ~umask`` and a folder ``0770 & ~umask``
(the deployment's :class:`~iizrisk.publish.Permissions` set the umask of a
nightly run): readable by the deployment's group at most, never by everyone,
whatever the umask. With ``private=True`` a file is owner-only ``0600``
(settings, model cards, anything that may hold secrets).

The reading side is :mod:`iizrisk.io`; publishing run folders and the history
store build on these writers (:mod:`iizrisk.publish`, :mod:`iizrisk.history`).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the writers take frames; importing the store (the command line does) loads no pandas
    import pandas as pd

__all__ = ["SWISS_CSV", "CsvFormat", "flush_to_disk", "sha256_bytes", "sha256_file", "umask", "write_bytes_atomic",
           "make_dirs", "write_csv_atomic", "write_files_together", "write_json_atomic", "write_parquet_atomic",
           "write_png_atomic", "write_text_atomic"]


@dataclass(frozen=True)
class CsvFormat:
    """How a table becomes CSV text (:meth:`pandas.DataFrame.to_csv` options and a BOM)."""

    sep: str = ";"
    bom: bool = True
    index: bool = False
    float_format: str | None = None
    na_rep: str = ""


#: Separator ``;`` and a UTF-8 BOM: what spreadsheets with Swiss settings expect.
SWISS_CSV = CsvFormat()


def umask() -> int:
    """The process's current umask, read without changing it where Linux shows it (``/proc/self/status``).

    Elsewhere it is set to 0 and back, which for an instant would give a file another thread creates
    the wrong mode.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The permission bits iizrisk never gives: read, write or enter for everyone.
NOT_FOR_EVERYONE = 0o007


def _mode(private: bool) -> int:
    return 0o600 if private else 0o666 & ~umask() & ~NOT_FOR_EVERYONE


def make_dirs(path: str | Path) -> Path:
    """Create the folder ``path`` and its missing parents, ``0770 & ~umask`` each (never open to everyone).

    :meth:`pathlib.Path.mkdir` with ``parents=True`` gives the parents the default mode, ``0777 & ~umask``:
    with the common umask 022 a folder anyone may list.

    Raises
    ------
    TypeError
        ``path`` is no path (a DataFrame given in its place, None).
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"the output folder must be a path (str or pathlib.Path), got {type(path).__name__}")
    path = Path(path)
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o777 & ~NOT_FOR_EVERYONE)
        except FileExistsError:  # made meanwhile by another process; a file there fails below
            pass
    if not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a folder")
    return path


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic(path: str | Path, write, *, private: bool) -> Path:
    """Create ``path``'s folder, call ``write(tmp_path)``, set the mode, rename over ``path``."""
    path = Path(path)
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _mode(private))  # mkstemp creates 0600
        flush_to_disk(tmp)  # the contents on disk before the name: a power failure leaves the old file or the new one
        os.replace(tmp, path)
        flush_to_disk(path.parent, folder=True)  # and the new name itself
    except OSError as exc:
        if not getattr(exc, "filename", None):  # pyarrow's "Error writing bytes" names no file: name ours
            exc.filename = str(path)
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def flush_to_disk(path: str | Path, *, folder: bool = False) -> None:
    """Flush a file's contents (or a folder's entries) to disk; a file system that cannot sync is left be.

    Without it a rename is atomic for running processes but not across a power failure: the history's
    reviews table, replaced in place on every import, could come back empty. A link is not followed. An
    I/O error is raised naming ``path``.
    """
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else
                           getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # a file system that cannot sync: nothing to do
            exc.filename = str(path)
            raise
    finally:
        os.close(fd)


def _missing_folders(path: Path) -> list[Path]:
    """The folders :func:`make_dirs` would create for ``path``, the deepest first."""
    missing = []
    p = path
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing


def _final_names(exc: OSError, tmp: Path, folder: Path) -> None:
    """An error while writing names the file as it would have been published, not its temporary path."""
    for attr in ("filename", "filename2"):
        name = getattr(exc, attr, None)
        if isinstance(name, str | os.PathLike) and str(name).startswith(str(tmp) + os.sep):
            setattr(exc, attr, str(folder / os.path.relpath(name, tmp)))


def write_files_together(folder: str | Path, write: Callable[[Path], Iterable[Path]], *, label: str) -> list[Path]:
    """Files written into ``folder`` all or none: a command's output that must not be left half written.

    ``write(tmp)`` writes the files into a hidden temporary folder inside ``folder``
    (``.<label>-tmp-*``) and returns their paths; only when it has written every one
    are they moved into ``folder`` (:func:`os.replace`, each atomic, over files of the
    same name). The files lie directly in the temporary folder (as
    :meth:`~iizrisk._results.ResultMixin.to_dir` writes them).

    When anything fails, ``folder`` is left as it was: the temporary folder goes;
    a folder or link where one of the files would go is refused before any file
    is moved; a move that fails puts back what the earlier moves replaced; and a
    ``folder`` this call created is removed again. An :class:`OSError` names the
    file as it would have been published, never the temporary folder.

    Returns
    -------
    list of Path
        The files in ``folder``, in the order ``write`` returned them.
    """
    created = _missing_folders(Path(folder))
    folder = make_dirs(folder)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{label}-tmp-"))
    moved: list[tuple[Path, Path | None]] = []  # each file in place, and the copy of the file it replaced
    done = False
    try:
        files = [Path(f) for f in write(tmp)]
        targets = [folder / f.name for f in files]
        for target in targets:  # before anything moves: a folder or a link is never replaced
            if target.is_symlink():  # followed, it would write wherever the link points
                raise FileExistsError(errno.EEXIST, "a link is where a file goes", str(target))
            if target.is_dir():
                raise IsADirectoryError(errno.EISDIR, "a folder is where a file goes", str(target))
        kept = tmp / ".replaced"
        kept.mkdir()
        for f, target in zip(files, targets, strict=True):
            backup = None
            if os.path.lexists(target):  # kept (a second name, the file stays in place) until all are moved
                backup = kept / target.name
                try:
                    os.link(target, backup)
                except OSError:  # a file system without hard links
                    shutil.copy2(target, backup)
            os.replace(f, target)
            moved.append((target, backup))
        done = True
    except OSError as exc:
        _final_names(exc, tmp, folder)
        raise
    finally:
        if not done:
            for target, backup in reversed(moved):  # the folder as it was
                try:
                    if backup is None:
                        os.unlink(target)
                    else:
                        os.replace(backup, target)
                except OSError:
                    pass
        shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            for d in created:  # only the folders this call made, and only while empty
                try:
                    d.rmdir()
                except OSError:
                    break
    return [target for target, _ in moved]


def write_bytes_atomic(data: bytes, path: str | Path, *, private: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    return _atomic(path, lambda tmp: Path(tmp).write_bytes(data), private=private)


def write_text_atomic(text: str, path: str | Path, *, private: bool = False) -> Path:
    """Write ``text`` as UTF-8 (line ends as given) atomically."""
    return write_bytes_atomic(text.encode("utf-8"), path, private=private)


def write_json_atomic(obj: Any, path: str | Path, *, private: bool = False, sort_keys: bool = True,
                      indent: int = 2, ensure_ascii: bool = True) -> Path:
    """Write ``obj`` as JSON (``default=str``, a final newline) atomically."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=str, ensure_ascii=ensure_ascii) + "\n"
    return write_text_atomic(text, path, private=private)


#: Categories above which a categorical column is written as plain values (:func:`write_parquet_atomic`).
LARGE_DICTIONARY = 65_536


def write_parquet_atomic(df: pd.DataFrame, path: str | Path, *, private: bool = False) -> Path:
    """Write a DataFrame to Parquet atomically.

    The file is deterministic for the same data (no pandas index, no schema
    metadata, zstd compression, no creation timestamps). A categorical column
    with more than :data:`LARGE_DICTIONARY` categories (pseudonyms) is written
    as its values: Parquet stores a column's dictionary in every row group,
    and 3.7 million pseudonyms in each of ten row groups made a 297 MB file
    1.38 GB and reading it 5 times slower. It reads back as text.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)
    for i, f in enumerate(table.schema):  # a large dictionary would be repeated in every row group
        if pa.types.is_dictionary(f.type) and max((len(c.dictionary) for c in table.column(i).chunks),
                                                  default=0) > LARGE_DICTIONARY:
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
    return _atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd", write_statistics=True),
                   private=private)


def write_csv_atomic(frame: pd.DataFrame, path: str | Path, fmt: CsvFormat = SWISS_CSV, *,
                     private: bool = False) -> Path:
    """Write ``frame`` as CSV in ``fmt`` (``\\n`` line ends, UTF-8, a BOM if ``fmt.bom``) atomically."""
    text = frame.to_csv(sep=fmt.sep, index=fmt.index, float_format=fmt.float_format, na_rep=fmt.na_rep,
                        lineterminator="\n")
    return write_bytes_atomic(("\ufeff" if fmt.bom else "").encode("utf-8") + text.encode("utf-8"), path,
                              private=private)


def write_png_atomic(fig, path: str | Path, *, dpi: int = 96, private: bool = False) -> Path:
    """Save a matplotlib figure as PNG (no software stamp: same figure, same bytes), atomically.

    A pyplot figure is closed afterwards.
    """
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    finally:
        if getattr(fig, "number", None) is not None:  # a pyplot figure: free it
            import matplotlib.pyplot as plt

            plt.close(fig)
    return write_bytes_atomic(buf.getvalue(), path, private=private)
