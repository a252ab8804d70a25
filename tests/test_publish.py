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


# ------------------------------------------------------------------ the lock file, permissions
def test_the_lock_file_is_not_open_to_everyone_and_names_no_process_once_released(tmp_path):
    """Under umask 022 the lock file is not world-readable; it names its holder while held, nobody after."""
    import json

    path = tmp_path / "runs" / ".lock"
    old = os.umask(0o022)
    try:
        lock = RunLock(path)
        lock.acquire()
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0
        assert json.loads(path.read_text())["pid"] == os.getpid()
    finally:
        lock.release()
    assert not lock.held and path.read_text() == ""


def test_permissions_never_follow_a_link_out_of_the_folder(tmp_path):
    """A link inside a run folder is skipped: the file it points to keeps its own mode (and group)."""
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    os.chmod(outside, 0o600)
    run = tmp_path / "run"
    run.mkdir()
    (run / "f.txt").write_text("x")
    (run / "link").symlink_to(outside)
    Permissions("0640").apply(run)
    assert stat.S_IMODE(outside.stat().st_mode) == 0o600
    assert stat.S_IMODE((run / "f.txt").stat().st_mode) == 0o640


def test_permissions_of_written_files_reach_up_to_the_root_and_no_further(tmp_path):
    root = tmp_path / "history"
    (root / "scores" / "as_of=2024-06-30").mkdir(parents=True)
    f = root / "scores" / "as_of=2024-06-30" / "part-0.parquet"
    f.write_text("x")
    untouched = root / "other.txt"
    untouched.write_text("y")
    for p in (tmp_path, root, root / "scores", f.parent, f, untouched):
        os.chmod(p, 0o700)
    Permissions("0640").apply_written(root, [f])
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    for folder in (root, root / "scores", f.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o750, folder
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700  # above the root: left alone
    assert stat.S_IMODE(untouched.stat().st_mode) == 0o700  # not written: not walked


# ------------------------------------------------------------------ publishing
def test_publishing_syncs_the_run_and_the_store_before_the_switch_and_the_root_after_it(tmp_path, monkeypatch):
    """Every file of the run and the renamed folder's entry are on disk before the date link points to them
    (a power failure must not leave a published run of empty files); the links are synced after."""
    root = tmp_path / "runs"
    tmp = _tmp_run(root, "a")
    (tmp / "history").mkdir()
    (tmp / "history" / "runs.parquet").write_bytes(b"PAR1")
    (tmp / "link.csv").symlink_to(tmp / "manifest.json")  # not followed, nothing of its own to flush
    (root / ".store").mkdir()
    inode = {p.stat().st_ino: f"fsync {p.relative_to(tmp)}" for p in [tmp, *tmp.rglob("*")] if not p.is_symlink()}
    inode |= {(root / ".store").stat().st_ino: "fsync store", root.stat().st_ino: "fsync root"}
    events: list[str] = []
    real_replace, real_fsync = os.replace, os.fsync

    def replace(src, dst):
        real_replace(src, dst)
        events.append(f"replace {Path(dst).relative_to(root)}")

    def fsync(fd):
        real_fsync(fd)
        events.append(inode.get(os.fstat(fd).st_ino, "fsync other"))

    monkeypatch.setattr(publish.os, "replace", replace)
    monkeypatch.setattr(publish.os, "fsync", fsync)
    publish_run(tmp, root, D, "0123456789")
    first = events.index(f"replace .store/{D.isoformat()}.0123456789")
    assert sorted(events[:first]) == sorted(inode[k] for k in inode if inode[k] not in ("fsync store", "fsync root"))
    assert events[first:] == [f"replace .store/{D.isoformat()}.0123456789", "fsync store",
                              f"replace {D.isoformat()}", "replace latest", "fsync root"]


def test_a_run_file_that_cannot_be_flushed_is_not_published(tmp_path, monkeypatch):
    """An I/O error while flushing fails the publication before the switch and names the file."""
    import errno

    root = tmp_path / "runs"
    publish_run(_tmp_run(root, "old"), root, D, "0123456789")
    tmp = _tmp_run(root, "new")
    real_fsync = os.fsync
    bad = (tmp / "manifest.json").stat().st_ino

    def fsync(fd):
        if os.fstat(fd).st_ino == bad:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(publish.os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output") as exc:
        publish_run(tmp, root, D, "abcdef0123")
    monkeypatch.undo()
    assert exc.value.filename == str(tmp / "manifest.json")
    assert (root / "latest" / "manifest.json").read_text() == "old"
    cleanup(root)  # the next night removes the unpublished folder
    assert not tmp.exists() and [p.name for p in (root / ".store").iterdir()] == [f"{D.isoformat()}.0123456789"]


def test_publishing_removes_no_folder_outside_the_store_even_when_named_like_a_store_folder(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    outside = tmp_path / "elsewhere" / f"{D.isoformat()}.abcdef0123"
    outside.mkdir(parents=True)
    (outside / "keep.txt").write_text("x")
    os.symlink(outside, root / D.isoformat())
    publish_run(_tmp_run(root, "new"), root, D, "0123456789")
    assert (outside / "keep.txt").read_text() == "x"
    assert (root / D.isoformat() / "manifest.json").read_text() == "new"


def test_publishing_removes_no_folder_in_the_store_that_iizrisk_did_not_name(tmp_path):
    root = tmp_path / "runs"
    backup = root / ".store" / "backup"
    backup.mkdir(parents=True)
    (backup / "keep.txt").write_text("x")
    os.symlink(os.path.join(".store", "backup"), root / D.isoformat())
    check_root(root, D)  # a link into the store: accepted
    publish_run(_tmp_run(root, "new"), root, D, "0123456789")
    assert (backup / "keep.txt").read_text() == "x"
    assert (root / D.isoformat() / "manifest.json").read_text() == "new"


def test_a_date_link_left_dangling_by_hand_is_replaced_by_the_new_run(tmp_path):
    """The link points to the very name the new folder gets: the new folder must survive its publication."""
    root = tmp_path / "runs"
    (root / ".store").mkdir(parents=True)
    os.symlink(os.path.join(".store", f"{D.isoformat()}.0123456789"), root / D.isoformat())
    check_root(root, D)
    publish_run(_tmp_run(root, "new"), root, D, "0123456789")
    assert (root / D.isoformat() / "manifest.json").read_text() == "new"
    assert (root / "latest" / "manifest.json").read_text() == "new"


def test_latest_points_to_the_newest_date_whatever_the_order_of_publication(tmp_path):
    root = tmp_path / "runs"
    days = [D, D - dt.timedelta(days=1), D + dt.timedelta(days=1), D - dt.timedelta(days=30)]
    for i, day in enumerate(days):
        tmp = root / f".tmp-{day.isoformat()}-x{i}"
        tmp.mkdir(parents=True)
        (tmp / "manifest.json").write_text(day.isoformat())
        publish_run(tmp, root, day, f"{i:010x}")
        newest = max(days[: i + 1])
        assert os.readlink(root / "latest") == newest.isoformat()
        assert (root / "latest" / "manifest.json").read_text() == newest.isoformat()
    assert list(run_links(root)) == sorted(days)


def test_a_date_link_pointing_out_of_the_store_is_no_published_run(tmp_path):
    root = tmp_path / "runs"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    root.mkdir()
    os.symlink(outside, root / (D + dt.timedelta(days=5)).isoformat())  # newer, but not a run
    publish_run(_tmp_run(root, "a"), root, D, "0123456789")
    assert list(run_links(root)) == [D]
    assert os.readlink(root / "latest") == D.isoformat()


def test_cleanup_removes_only_its_own_links_under_a_link_tmp_name(tmp_path):
    root = tmp_path / "runs"
    publish_run(_tmp_run(root, "a"), root, D, "0123456789")
    (root / ".latest.link-tmp").write_text("someone's file")
    (root / f".{D.isoformat()}.link-tmp").symlink_to(D.isoformat())  # an interrupted swap
    cleanup(root)
    assert (root / ".latest.link-tmp").read_text() == "someone's file"
    assert not os.path.lexists(root / f".{D.isoformat()}.link-tmp")


def test_a_store_that_is_a_link_is_refused(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / ".store")
    with pytest.raises(OperatingSystemError, match="move it out of the run folder") as exc:
        check_root(root, D)
    assert exc.value.exit_code == 6


def test_a_dangling_latest_link_is_accepted_and_repaired(tmp_path):
    """The run latest named was removed by hand: tonight's run may go ahead and points latest anew."""
    root = tmp_path / "runs"
    publish_run(_tmp_run(root, "a"), root, D, "0123456789")
    os.unlink(root / D.isoformat())  # latest now dangles
    assert (root / "latest").is_symlink() and not (root / "latest").exists()
    day = D + dt.timedelta(days=1)
    check_root(root, day)
    tmp = root / f".tmp-{day.isoformat()}-b"
    tmp.mkdir()
    (tmp / "manifest.json").write_text("b")
    publish_run(tmp, root, day, "abcdef0123")
    assert (root / "latest" / "manifest.json").read_text() == "b"


def test_a_crash_while_switching_a_link_leaves_the_old_link(tmp_path, monkeypatch):
    """The link is switched by renaming a new link over it: a failure before the rename keeps the old one."""
    root = tmp_path / "runs"
    publish_run(_tmp_run(root, "old"), root, D, "0123456789")

    def no_symlink(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish.os, "symlink", no_symlink)
    with pytest.raises(OSError, match="No space"):
        publish_run(_tmp_run(root, "new"), root, D, "abcdef0123")
    monkeypatch.undo()
    assert (root / D.isoformat() / "manifest.json").read_text() == "old"
    assert (root / "latest" / "manifest.json").read_text() == "old"


def test_every_atomic_write_reaches_the_disk_before_and_after_its_rename(tmp_path, monkeypatch):
    """A rename is atomic for running processes, not across a power failure: the history's reviews table,
    replaced in place on every import, could come back empty. The file is flushed before it takes the name,
    and the folder after."""
    import iizrisk.store as store

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(a, b):
        events.append(("replace", str(b)))
        return real_replace(a, b)

    monkeypatch.setattr(store.os, "fsync", fsync)
    monkeypatch.setattr(store.os, "replace", replace)
    target = store.write_text_atomic("reviews", tmp_path / "h" / "reviews.txt")
    kinds = [k for k, _ in events]
    assert kinds == ["fsync", "replace", "fsync"], events
    assert events[0][1].startswith(str(tmp_path / "h" / ".reviews.txt."))  # the temporary file, with its contents
    assert events[1][1] == str(target) and events[2][1] == str(tmp_path / "h")  # then the folder's new entry


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_the_umask_is_read_without_being_changed(mask, monkeypatch):
    """It was set to 0 and back: for that instant a file created by another thread got the wrong mode."""
    import iizrisk.store as store

    old = os.umask(mask)
    try:
        if os.path.exists("/proc/self/status"):
            calls = []
            real = os.umask
            monkeypatch.setattr(store.os, "umask", lambda m: calls.append(m) or real(m))
            assert store.umask() == mask and calls == []
        else:
            assert store.umask() == mask
    finally:
        os.umask(old)
