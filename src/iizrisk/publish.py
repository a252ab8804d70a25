"""Publishing run folders: the lock, permissions, and one atomic switch.

The nightly job writes everything into a temporary folder under the run
root, then publishes it with one atomic symlink swap::

    runs/
      2024-06-30 -> .store/2024-06-30.3f2a9c1e     (symlink, swapped atomically)
      latest     -> 2024-06-30
      .store/2024-06-30.3f2a9c1e/ ...

Rules this module keeps, each tested:

* Readers see the old run or the new one, never half of one, and a link
  never dangles, not even for a moment: the new folder gets a name of its own
  and the old one is removed only after the links point away from it.
* Every file of the run is flushed to disk before the date link is switched,
  and the folders after each rename: a power failure cannot leave a link to
  empty files.
* Nothing outside ``runs/.store`` is ever deleted, whatever a date link points
  to, and only entries whose names iizrisk itself writes are cleaned up.
* The lock is an ``flock`` on ``runs/.lock``: the kernel releases it when the
  holder dies, so a stale lock cannot exist and no take-over race is possible.
* Files get ``[output] mode`` (default ``0640``) and folders the matching
  ``0750``; with ``[output] group`` they belong to that group. Nothing is ever
  readable by every user of the machine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import stat
from pathlib import Path

from .config import dir_mode, file_mode
from .errors import ConfigError, LockedError, OperatingSystemError

__all__ = ["RunLock", "Permissions", "publish_run", "cleanup", "run_links", "store_token"]

logger = logging.getLogger("iizrisk")

_STORE_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})\.([0-9a-f]{10})(?:\.(\d+))?")
_TMP_NAME = re.compile(r"\.tmp-\d{4}-\d{2}-\d{2}-[A-Za-z0-9_]+")
_LINK_TMP = re.compile(r"\.(\d{4}-\d{2}-\d{2}|latest)\.link-tmp")


# ------------------------------------------------------------------ lock
class RunLock:
    """An exclusive ``flock`` on a lock file holding pid, host and start time.

    The kernel drops the lock when its holder exits, however it exits
    (``kill -9`` included), so there is no stale lock to take over. The file
    itself stays; only the lock on it counts.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd: int | None = None

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        from .store import make_dirs

        make_dirs(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self._holder()
            raise LockedError(
                f"another run holds the lock {self.path} (pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}, started {holder.get('started', '?')}); wait for it to finish "
                "(the lock ends with its process)") from None
        except OSError:
            os.close(fd)
            raise
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": dt.datetime.now().isoformat(timespec="seconds")}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# ------------------------------------------------------------------ permissions
class Permissions:
    """``[output] mode`` and ``group`` applied to what a run writes.

    Used as a context manager it also sets the process umask for the run, so
    that no file is ever created more open than the mode (there is no window
    in which a fresh file is world-readable).
    """

    def __init__(self, mode: str | int = "0640", group: str | None = None):
        self.file_mode = file_mode(mode)
        self.dir_mode = dir_mode(self.file_mode)
        self.gid = -1
        if group is not None:
            import grp

            try:
                self.gid = grp.getgrnam(group).gr_gid
            except KeyError:
                raise ConfigError(f"[output] group = {group!r}: no such group on this machine; "
                                  "create it or name an existing group") from None
        self._old_umask: int | None = None

    def __enter__(self) -> Permissions:
        self._old_umask = os.umask(0o777 & ~self.dir_mode)
        return self

    def __exit__(self, *exc) -> None:
        if self._old_umask is not None:
            os.umask(self._old_umask)
            self._old_umask = None

    def apply(self, path: Path, *, recursive: bool = True) -> None:
        """Set mode (and group) on ``path`` and, for a folder, on everything inside it (``recursive``)."""
        walk = recursive and path.is_dir() and not path.is_symlink()
        paths = [path, *path.rglob("*")] if walk else [path]
        for p in paths:
            if p.is_symlink():
                continue
            if self.gid >= 0:
                os.chown(p, -1, self.gid)
            os.chmod(p, self.dir_mode if p.is_dir() else self.file_mode)

    def apply_written(self, root: Path, paths) -> None:
        """Set mode (and group) on files written below ``root`` and on the folders from them up
        to ``root``, without walking everything else the folder holds (the history of years)."""
        root = Path(root)
        seen: set[Path] = set()
        for path in paths:
            for p in (Path(path), *Path(path).parents):
                if p in seen or not (p == root or root in p.parents):
                    break
                seen.add(p)
                self.apply(p, recursive=False)


# ------------------------------------------------------------------ store
def _is_date(name: str) -> bool:
    try:
        dt.date.fromisoformat(name)
    except ValueError:
        return False
    return len(name) == 10


def run_links(root: Path) -> dict[dt.date, Path]:
    """The published date links of a run root and the store folders they point to."""
    out: dict[dt.date, Path] = {}
    if not root.is_dir():
        return out
    store = os.path.realpath(root / ".store")
    for p in root.iterdir():
        if p.is_symlink() and _is_date(p.name):
            target = Path(os.path.realpath(p))
            if str(target.parent) == store and target.is_dir():
                out[dt.date.fromisoformat(p.name)] = target
    return dict(sorted(out.items()))


def store_token(folder: Path) -> str | None:
    """The content token of a store folder's name (``2024-06-30.3f2a9c1e`` -> ``3f2a9c1e``)."""
    m = _STORE_NAME.fullmatch(folder.name)
    return m.group(2) if m else None


def cleanup(root: Path) -> None:
    """Remove leftovers of interrupted runs: iizrisk's own temporary folders and unlinked stores.

    Only names iizrisk writes are touched, and only inside ``root`` and ``root/.store``.
    """
    if not root.is_dir():
        return
    for p in root.iterdir():
        if _TMP_NAME.fullmatch(p.name) and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        elif _LINK_TMP.fullmatch(p.name) and p.is_symlink():
            p.unlink(missing_ok=True)
    store = root / ".store"
    if store.is_dir() and not store.is_symlink():
        referenced = {os.path.realpath(p) for p in root.iterdir() if p.is_symlink()}
        for p in store.iterdir():
            if (_STORE_NAME.fullmatch(p.name) and p.is_dir() and not p.is_symlink()
                    and os.path.realpath(p) not in referenced):
                shutil.rmtree(p, ignore_errors=True)


def check_root(root: Path, as_of: dt.date) -> None:
    """Fail before any work if the run root cannot take tonight's run (names the path and the fix)."""
    for name in (as_of.isoformat(), "latest", ".store"):
        p = root / name
        if name == ".store":
            bad = p.exists() and (p.is_symlink() or not p.is_dir())
        else:
            bad = p.exists() and not p.is_symlink() or (p.is_symlink() and not _points_into_store(root, p))
        if bad:
            raise OperatingSystemError(
                f"{p} is not a link that iizrisk made into {root / '.store'}; move it out of the run "
                "folder (iizrisk never deletes what it did not write)")


def _points_into_store(root: Path, link: Path) -> bool:
    target = os.path.realpath(link)
    if link.name == "latest":
        return os.path.dirname(target) == os.path.realpath(root / ".store") or not os.path.exists(target)
    return os.path.dirname(target) == os.path.realpath(root / ".store")


def _swap_symlink(link: Path, target: str) -> None:
    tmp = link.parent / f".{link.name}.link-tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _fsync_dir(path: Path) -> None:
    """Flush a folder's entries (:func:`iizrisk.store.flush_to_disk`), where the folder can be opened."""
    from .store import flush_to_disk

    with contextlib.suppress(OSError):
        flush_to_disk(path, folder=True)


def _fsync_tree(folder: Path) -> None:
    """Flush every regular file below ``folder``, then each folder, to disk (links are not followed).

    The date link is made durable by the folder syncs of :func:`publish_run`; without this, a power
    failure soon after could leave the link on disk pointing to files whose contents never were:
    a published run of empty or truncated worklists. The files iizrisk writes itself are flushed as
    they are written (:func:`iizrisk.store.flush_to_disk`); this also covers the others (the run's log).
    A file that cannot be flushed (an I/O error) fails the run before the switch, naming the file.
    """
    from .store import flush_to_disk

    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(path).st_mode):  # a link or a special file: nothing of the run's own
                flush_to_disk(path)
        _fsync_dir(Path(dirpath))


def publish_run(tmp: Path, root: Path, as_of: dt.date, token: str) -> Path:
    """Move a finished temporary folder into the store and switch the date link to it.

    The date link is the commit point: before the swap the old run is
    published, after it the new one. The folder that the link pointed to
    before is removed afterwards, and only if it lies in ``root/.store``.
    """
    store = root / ".store"
    store.mkdir(exist_ok=True)
    name, n = f"{as_of.isoformat()}.{token}", 1
    while (store / name).exists():  # a same-input rerun: never replace what a link points to
        name, n = f"{as_of.isoformat()}.{token}.{n}", n + 1
    final = store / name
    _fsync_tree(tmp)  # the contents on disk before any name that publishes them
    os.replace(tmp, final)
    _fsync_dir(store)
    link = root / as_of.isoformat()
    old = os.path.realpath(link) if link.is_symlink() else None
    _swap_symlink(link, os.path.join(".store", final.name))
    latest = max(run_links(root), default=None)
    if latest:
        _swap_symlink(root / "latest", latest.isoformat())
    _fsync_dir(root)
    if (old and old != os.path.realpath(final) and os.path.dirname(old) == os.path.realpath(store)
            and _STORE_NAME.fullmatch(os.path.basename(old))):
        shutil.rmtree(old, ignore_errors=True)
    return link
