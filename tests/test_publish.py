"""Publishing run folders: links never dangle, nothing outside the store is deleted, the lock, permissions."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from iizrisk import publish
from iizrisk.errors import ConfigError, LockedError, OperatingSystemError
from iizrisk.publish import Permissions, RunLock, check_root, cleanup, publish_run, run_links

D = dt.date(2024, 6, 30)


def _tmp_run(root: Path, content: str) -> Path:
    tmp = root / f".tmp-{D.isoformat()}-abc"
    tmp.mkdir(parents=True)
    (tmp / "manifest.json").write_text(content)
    return tmp


def _assert_links_resolve(root: Path) -> None:
    for name in (D.isoformat(), "latest"):
        link = root / name
        if link.is_symlink():
            assert (link / "manifest.json").is_file(), f"{name} dangles"


def test_same_input_rerun_never_leaves_a_link_dangling(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    publish_run(_tmp_run(root, "a"), root, D, "0123456789")
    # every file-system step of the second publication leaves both links resolving
    real_replace, real_rmtree = os.replace, shutil.rmtree
    steps = []

    def replace(src, dst):
        real_replace(src, dst)
        steps.append("replace")
        _assert_links_resolve(root)

    def rmtree(path, *a, **k):
        real_rmtree(path, *a, **k)
        steps.append("rmtree")
        _assert_links_resolve(root)

    monkeypatch.setattr(publish.os, "replace", replace)
    monkeypatch.setattr(publish.shutil, "rmtree", rmtree)
    publish_run(_tmp_run(root, "a"), root, D, "0123456789")  # same token: same content
    assert "rmtree" in steps and (root / "latest" / "manifest.json").read_text() == "a"
    assert len(list((root / ".store").iterdir())) == 1  # the replaced folder is gone


def test_publishing_never_deletes_outside_the_store(tmp_path):
    root = tmp_path / "runs"
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("x")
    root.mkdir()
    os.symlink(outside, root / D.isoformat())  # a date link pointing anywhere
    with pytest.raises(OperatingSystemError, match="not a link that iizrisk made") as exc:
        check_root(root, D)
    assert str(root / D.isoformat()) in str(exc.value) and exc.value.exit_code == 6
    # even without the check, publishing does not remove what the old link pointed to
    publish_run(_tmp_run(root, "new"), root, D, "0123456789")
    assert (outside / "keep.txt").read_text() == "x"
    assert (root / D.isoformat() / "manifest.json").read_text() == "new"


@pytest.mark.parametrize("name", [D.isoformat(), "latest", ".store"])
def test_a_plain_folder_where_a_link_belongs_is_refused(tmp_path, name):
    root = tmp_path / "runs"
    (root / name).mkdir(parents=True)
    if name == ".store":
        (root / ".store").rmdir()
        (root / ".store").write_text("a file")
    with pytest.raises(OperatingSystemError, match="move it out of the run folder"):
        check_root(root, D)


def test_cleanup_touches_only_what_iizrisk_wrote(tmp_path):
    root = tmp_path / "runs"
    publish_run(_tmp_run(root, "a"), root, D, "0123456789")
    ours = [root / ".tmp-2024-07-01-x1y2", root / ".store" / "2024-05-31.abcdef0123"]
    theirs = [root / ".tmp", root / ".tmp-notes", root / ".store" / "backup", root / "2024-05-31"]
    for p in ours + theirs:
        p.mkdir(parents=True)
    cleanup(root)
    assert not any(p.exists() for p in ours) and all(p.exists() for p in theirs)
    assert list(run_links(root)) == [D]


_HOLD = """
import sys, time
from iizrisk.publish import RunLock
lock = RunLock(sys.argv[1]); lock.acquire(); print("held", flush=True); time.sleep(60)
"""


def test_lock_is_exclusive_and_dies_with_its_process(tmp_path):
    path = tmp_path / ".lock"
    with subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE, text=True) as p:
        try:
            assert p.stdout.readline().strip() == "held"
            with pytest.raises(LockedError, match=f"pid {p.pid}"):
                RunLock(path).acquire()
        finally:
            p.kill()
            p.wait()
    with RunLock(path) as lock:  # kill -9 released it: no stale lock to take over
        assert lock.held
        with pytest.raises(LockedError):
            RunLock(path).acquire()
    assert path.exists()  # the file stays; only the lock on it counts


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_files_and_folders_written_are_never_open_to_everyone(tmp_path):
    """Whatever the umask (022 is common), what iizrisk writes is at most group-readable; private is 0600."""
    from iizrisk.store import make_dirs, write_parquet_atomic, write_text_atomic

    old = os.umask(0o022)
    try:
        f = write_text_atomic("x", tmp_path / "a" / "b" / "f.txt")
        p = write_parquet_atomic(__import__("pandas").DataFrame({"x": [1]}), tmp_path / "p.parquet")
        secret = write_text_atomic("k", tmp_path / "s.txt", private=True)
        d = make_dirs(tmp_path / "c" / "d")
    finally:
        os.umask(old)
    assert stat.S_IMODE(f.stat().st_mode) == 0o640 and stat.S_IMODE(p.stat().st_mode) == 0o640
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "c", d):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o750, folder
    with pytest.raises(NotADirectoryError, match="not a folder"):
        make_dirs(f)


def test_a_synthetic_population_written_from_python_is_not_open_to_everyone(tmp_path):
    """From a notebook under umask 022: the population, its exports, its settings and the indicators."""
    from iizrisk.indicators import bfs_indicators
    from iizrisk.synth import generate

    old = os.umask(0o022)
    try:
        pop = generate(300, "2018-01-01", "2021-12-31", seed=2)
        pop.to_dir(tmp_path / "pop", exports=True)
        bfs_indicators(pop.spells, 2021).to_dir(tmp_path / "ind")
    finally:
        os.umask(old)
    made = [p for p in tmp_path.rglob("*") if not p.is_symlink()]
    assert len(made) > 10 and any(p.suffix == ".csv" for p in made)
    assert [str(p) for p in made if stat.S_IMODE(p.stat().st_mode) & 0o007] == []


def test_the_console_script_creates_nothing_open_to_everyone(tmp_path, random_spells):
    """A one-off command (here flags) under umask 022: its output and folders are not world-readable."""
    from iizrisk.store import write_parquet_atomic

    spells = write_parquet_atomic(random_spells.iloc[:200], tmp_path / "spells.parquet")
    out = tmp_path / "o" / "flags.csv"
    code = "import os, sys; os.umask(0o022); from iizrisk.cli import console; sys.exit(console())"
    done = subprocess.run([sys.executable, "-c", code, "-q", "flags", "--spells", str(spells), "--as-of",
                           "2023-06-30", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) & 0o007 == 0
    assert stat.S_IMODE(out.parent.stat().st_mode) & 0o007 == 0


def test_permissions_never_world_readable(tmp_path):
    before = _umask()
    perms = Permissions("0640")
    with perms:
        (tmp_path / "a").mkdir()
        (tmp_path / "a" / "f.txt").write_text("x")
    assert stat.S_IMODE((tmp_path / "a" / "f.txt").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o750
    os.chmod(tmp_path / "a" / "f.txt", 0o666)
    perms.apply(tmp_path / "a")
    assert stat.S_IMODE((tmp_path / "a" / "f.txt").stat().st_mode) == 0o640
    assert _umask() == before  # restored on leaving
    with pytest.raises(ConfigError, match="no such group"):
        Permissions("0640", group="no-such-group-iizrisk")


def _two_files(contents: dict[str, str]):
    def write(tmp: Path) -> list[Path]:
        out = []
        for name, text in contents.items():
            (tmp / name).write_text(text)
            out.append(tmp / name)
        return out
    return write


def test_files_written_together_replace_the_old_ones_and_leave_no_temporary_folder(tmp_path):
    from iizrisk.store import write_files_together

    out = tmp_path / "o"
    out.mkdir()
    (out / "a.csv").write_text("old a")
    (out / "mine.txt").write_text("mine")
    written = write_files_together(out, _two_files({"a.csv": "new a", "b.csv": "new b"}), label="t")
    assert written == [out / "a.csv", out / "b.csv"]
    assert {p.name: p.read_text() for p in out.iterdir()} == {"a.csv": "new a", "b.csv": "new b", "mine.txt": "mine"}


def test_a_failed_write_leaves_the_folder_as_it_was_and_names_the_published_file(tmp_path):
    """The error names o/b.csv, not the hidden temporary folder; a folder the call created goes again."""
    import errno

    from iizrisk.store import write_files_together

    def full_disk(tmp: Path) -> list[Path]:
        (tmp / "a.csv").write_text("a")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "b.csv"))

    out = tmp_path / "new" / "o"
    with pytest.raises(OSError) as exc:
        write_files_together(out, full_disk, label="t")
    assert exc.value.filename == str(out / "b.csv")
    assert not (tmp_path / "new").exists()  # both folders it made are gone
    kept = tmp_path / "kept"
    kept.mkdir()
    with pytest.raises(OSError):
        write_files_together(kept, full_disk, label="t")
    assert kept.is_dir() and list(kept.iterdir()) == []  # a folder that was there stays


def test_a_folder_where_a_file_goes_is_refused_before_anything_moves(tmp_path):
    from iizrisk.store import write_files_together

    out = tmp_path / "o"
    out.mkdir()
    (out / "a.csv").write_text("old a")
    (out / "b.csv").mkdir()
    with pytest.raises(IsADirectoryError) as exc:
        write_files_together(out, _two_files({"a.csv": "new a", "b.csv": "new b"}), label="t")
    assert exc.value.filename == str(out / "b.csv")
    assert (out / "a.csv").read_text() == "old a"
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.csv"]


def test_a_move_that_fails_puts_back_what_the_earlier_moves_replaced(tmp_path, monkeypatch):
    """All or none even when the second rename fails: the first file is the old one again, a new one goes."""
    import errno

    import iizrisk.store
    from iizrisk.store import write_files_together

    out = tmp_path / "o"
    out.mkdir()
    (out / "a.csv").write_text("old a")
    real = os.replace

    def fails_on_c(src, dst):
        if Path(dst).name == "c.csv":
            raise OSError(errno.EIO, "Input/output error", str(dst))
        return real(src, dst)

    monkeypatch.setattr(iizrisk.store.os, "replace", fails_on_c)
    with pytest.raises(OSError, match="Input/output"):
        write_files_together(out, _two_files({"a.csv": "new a", "b.csv": "new b", "c.csv": "new c"}), label="t")
    monkeypatch.undo()
    assert {p.name: p.read_text() for p in out.iterdir()} == {"a.csv": "old a"}


def test_a_link_where_a_file_goes_is_refused_and_left_alone(tmp_path):
    from iizrisk.store import write_files_together

    out = tmp_path / "o"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text("not ours")
    (out / "a.csv").symlink_to(elsewhere)
    with pytest.raises(FileExistsError) as exc:
        write_files_together(out, _two_files({"a.csv": "new a"}), label="t")
    assert exc.value.filename == str(out / "a.csv")
    assert (out / "a.csv").is_symlink() and elsewhere.read_text() == "not ours"


def test_a_write_that_fails_without_a_file_name_names_the_file(tmp_path):
    """pyarrow's 'Error writing bytes to file' (a full disk) names no file: the message said 'a file or folder'."""
    import errno

    from iizrisk.store import _atomic

    def full_disk(tmp):
        raise OSError(errno.ENOSPC, "Error writing bytes to file")

    with pytest.raises(OSError) as err:
        _atomic(tmp_path / "runs" / "ALV.parquet", full_disk, private=False)
    assert err.value.filename == str(tmp_path / "runs" / "ALV.parquet")
    assert not list((tmp_path / "runs").iterdir())  # the temporary file is gone

    def named(tmp):
        raise PermissionError(errno.EACCES, "Permission denied", "/elsewhere/x")

    with pytest.raises(OSError) as err:
        _atomic(tmp_path / "runs" / "ALV.parquet", named, private=False)
    assert err.value.filename == "/elsewhere/x"  # a name the error has is kept
