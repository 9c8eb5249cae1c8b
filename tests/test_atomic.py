"""Tests for numnet.atomic: the one atomic-write helper every writer of numnet uses.

Oracles: the operating system itself (the mode an ordinary ``open(..., "w")`` gives a new file under the
same umask, the kind of file each fsync was called on, the process table for which writers are alive).
"""

import errno
import os
import stat
import subprocess
import sys

import pytest

from numnet import atomic
from numnet.atomic import write_atomically, write_text_atomically


def _dead_process_id():
    """The id of a process that has exited (it ran and was reaped before this returns)."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    return int(finished.stdout)


def test_the_file_gets_the_mode_of_an_ordinary_new_file_under_the_umask(tmp_path):
    ordinary = tmp_path / "ordinary.txt"
    with open(ordinary, "w") as stream:
        stream.write("x")
    written = write_text_atomically(tmp_path / "atomic.txt", "x")
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(ordinary.stat().st_mode)


def test_the_content_arrives_whole_and_parent_folders_are_created(tmp_path):
    target = tmp_path / "a" / "b" / "report.html"
    assert write_text_atomically(target, "héllo\n") == target
    assert target.read_bytes() == "héllo\n".encode("utf-8")
    assert sorted(os.listdir(target.parent)) == ["report.html"]


def test_the_file_and_then_its_folder_are_flushed_to_disk(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(descriptor):
        synced.append(stat.S_IFMT(os.fstat(descriptor).st_mode))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    write_atomically(tmp_path / "model.npz", lambda stream: stream.write(b"data"))
    assert synced == [stat.S_IFREG, stat.S_IFDIR]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = write_text_atomically(tmp_path / "model.npz", "old")

    def fail_midway(stream):
        stream.write(b"half a file")
        raise RuntimeError("interrupted (simulated)")

    with pytest.raises(RuntimeError, match="simulated"):
        write_atomically(target, fail_midway)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE is POSIX")
def test_a_write_the_file_system_refuses_names_the_requested_path_not_the_temporary(tmp_path):
    # A file-size limit makes the kernel refuse the write with EFBIG, as a full disk refuses with ENOSPC;
    # in a child process, so that the limit and the ignored SIGXFSZ do not reach the test run.
    target = tmp_path / "model.npz"
    script = (
        "import resource, signal, sys\n"
        "from numnet.atomic import write_atomically\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
        "try:\n"
        f"    write_atomically({str(target)!r}, lambda stream: stream.write(b'x' * 100_000))\n"
        "except OSError as error:\n"
        "    print(error.errno, error.filename, error, sep='|')\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    number, filename, message = completed.stdout.strip().split("|")
    assert int(number) == errno.EFBIG and filename == str(target) and ".tmp" not in message
    assert os.listdir(tmp_path) == []


def test_an_os_error_of_the_writers_own_work_keeps_its_own_message(tmp_path):
    def connection_reset(stream):  # e.g. a download whose server hung up
        raise ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))

    with pytest.raises(ConnectionResetError) as caught:
        write_atomically(tmp_path / "data.gz", connection_reset)
    assert caught.value.filename is None
    assert os.listdir(tmp_path) == []


def test_renaming_over_a_folder_fails_naming_the_folder_with_the_right_error_class(tmp_path):
    folder = tmp_path / "model.npz"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        write_text_atomically(folder, "x")
    assert caught.value.filename == str(folder) and ".tmp" not in str(caught.value)
    assert os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.skipif(os.name != "posix", reason="liveness of a writer is asked with os.kill(pid, 0)")
def test_temporaries_of_dead_writers_of_the_same_target_are_removed_and_no_others(tmp_path):
    dead, alive = _dead_process_id(), os.getppid()
    stale = tmp_path / f".model.npz.{dead}-0123456789abcdef.tmp"
    live_writer = tmp_path / f".model.npz.{alive}-00000000000000ff.tmp"
    other_target = tmp_path / f".other.npz.{dead}-0123456789abcdef.tmp"
    look_alike = tmp_path / ".model.npz.notes.tmp"
    for path in (stale, live_writer, other_target, look_alike):
        path.write_bytes(b"x" * 1000)
    write_text_atomically(tmp_path / "model.npz", "new")
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["model.npz", live_writer.name, other_target.name, look_alike.name])


def test_a_path_that_is_not_a_path_is_a_type_error():
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        write_atomically(42, lambda stream: None)


def test_the_temporary_carries_the_writers_process_id_beside_the_target(tmp_path):
    seen = []
    write_atomically(tmp_path / "model.npz", lambda stream: seen.extend(os.listdir(tmp_path)))
    assert len(seen) == 1
    assert seen[0].startswith(f".model.npz.{os.getpid()}-") and seen[0].endswith(atomic.TEMPORARY_SUFFIX)
