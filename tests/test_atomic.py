"""Tests for numnet.atomic: the one atomic-write helper every writer of numnet uses.

Oracles: the operating system itself (the mode an ordinary ``open(..., "w")`` gives a new file under the
same umask, the kind of file each fsync was called on, the process table for which writers are alive), and
real writer processes killed with SIGKILL or paused mid-write, in this pid namespace or a new one.
"""

import errno
import functools
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

import numnet as nn
from numnet import atomic
from numnet.atomic import write_atomically, write_text_atomically

#: A writer process: it writes about 1 MB through the helper, prints its process id once the temporary
#: holds that data, then kills itself with SIGKILL ("kill") or waits for a line on stdin and finishes ("pause").
WRITER = """
import os, signal, sys
from numnet.atomic import write_atomically

def write_part_then_stop(stream):
    stream.write(b"half a model " * 80_000)
    stream.flush()
    print(os.getpid(), flush=True)
    if sys.argv[2] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.readline()
    stream.write(b"and the rest")

write_atomically(sys.argv[1], write_part_then_stop)
"""
#: What the writer's file holds when it finishes.
WRITER_CONTENT = b"half a model " * 80_000 + b"and the rest"


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
    assert seen[0].startswith(f".model.npz.{os.getpid()}.") and seen[0].endswith(atomic.TEMPORARY_SUFFIX)


def _temporaries(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(atomic.TEMPORARY_SUFFIX))


def _start_writer(target, mode, prefix=()):
    """Start WRITER on ``target`` (under the command ``prefix``, if any); returns it once its temporary holds data."""
    writer = subprocess.Popen([*prefix, sys.executable, "-c", WRITER, str(target), mode], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    writer.process_id = int(writer.stdout.readline())
    return writer


def _finish(writer):
    """Let a paused writer go on; returns its exit status."""
    writer.communicate("go on\n")
    return writer.returncode


def _small_network(seed):
    return nn.Network([4, 8, 3], output_activation="softmax", seed=seed)


def _assert_same_parameters(loaded, network):
    assert all(np.array_equal(loaded.parameters()[name], network.parameters()[name])
               for name in network.parameters())


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_a_save_killed_mid_write_keeps_the_old_file_and_the_next_save_removes_its_temporary(tmp_path):
    target = tmp_path / "model.npz"
    nn.save_model(_small_network(seed=0), target)
    old = target.read_bytes()
    writer = _start_writer(target, "pause")
    writer.kill()
    writer.wait()
    leftover = _temporaries(tmp_path)
    assert len(leftover) == 1 and (tmp_path / leftover[0]).stat().st_size >= 1_000_000
    assert target.read_bytes() == old
    newer = _small_network(seed=1)
    nn.save_model(newer, target)
    assert os.listdir(tmp_path) == ["model.npz"]
    _assert_same_parameters(nn.load_model(target), newer)


def test_a_live_writers_temporary_is_kept_and_its_write_completes(tmp_path):
    target = write_text_atomically(tmp_path / "model.npz", "old")
    writer = _start_writer(target, "pause")
    try:
        live = _temporaries(tmp_path)
        write_text_atomically(target, "meanwhile")
        assert _temporaries(tmp_path) == live and target.read_text() == "meanwhile"
    finally:
        assert _finish(writer) == 0
    assert target.read_bytes() == WRITER_CONTENT and os.listdir(tmp_path) == ["model.npz"]


def test_a_live_temporary_of_another_thread_of_this_process_is_kept(tmp_path):
    # flock locks belong to each open file, not to the process as fcntl's record locks do: a write of the same
    # target in a second thread must see the first thread's temporary as in use.
    target = tmp_path / "model.npz"
    temporary_exists, other_write_done, failures = threading.Event(), threading.Event(), []

    def write_slowly(stream):
        stream.write(b"first")
        temporary_exists.set()
        other_write_done.wait(timeout=60)

    def first_writer():
        try:
            write_atomically(target, write_slowly)
        except Exception as error:  # reported by the assertion below, in the test's own thread
            failures.append(error)

    thread = threading.Thread(target=first_writer)
    thread.start()
    try:
        assert temporary_exists.wait(timeout=60)
        write_text_atomically(target, "second")
        assert len(_temporaries(tmp_path)) == 1
    finally:
        other_write_done.set()
        thread.join()
    assert failures == [] and target.read_bytes() == b"first" and os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.skipif(os.name != "posix", reason="without flock (Windows) a leftover must also be an hour old")
def test_an_unlocked_leftover_carrying_this_process_id_is_removed(tmp_path):
    # A container's saver often has the same process id (1) every run, so a killed run's temporary carries
    # the id of the process that writes next: the id says nothing about whether its writer is alive.
    leftover = tmp_path / f".model.npz.{os.getpid()}.0123456789abcdef.tmp"
    leftover.write_bytes(b"half a model")
    write_text_atomically(tmp_path / "model.npz", "new")
    assert os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.skipif(os.name != "posix", reason="symbolic links need privileges on Windows")
def test_files_that_are_not_temporaries_of_the_target_are_untouched(tmp_path):
    dead = _dead_process_id()
    unrelated = [
        f".other.npz.{dead}.0123456789abcdef.tmp",  # another target's abandoned temporary
        f".model.npz.{dead}.0123456789ABCDEF.tmp",  # not numnet's lower-case hex
        f".model.npz.{dead}.0123456789abcdef.tmp.bak",
        f".model.npz.{dead}.0123456789abcde.tmp",  # 15 digits
        f"model.npz.{dead}.0123456789abcdef.tmp",  # not hidden
        ".model.npz.swp", ".model.npz.notes.tmp", ".hidden",
    ]
    for name in unrelated:
        (tmp_path / name).write_bytes(b"keep me")
    folder = tmp_path / f".model.npz.{dead}.00000000000000aa.tmp"
    folder.mkdir()
    link = tmp_path / f".model.npz.{dead}.00000000000000bb.tmp"
    link.symlink_to(tmp_path / ".hidden")
    write_text_atomically(tmp_path / "model.npz", "new")
    assert sorted(os.listdir(tmp_path)) == sorted([*unrelated, folder.name, link.name, "model.npz"])
    assert all((tmp_path / name).read_bytes() == b"keep me" for name in unrelated)


@functools.lru_cache(maxsize=None)
def _can_choose_process_ids_in_a_new_pid_namespace():
    """Whether ``unshare`` can run a process in a new pid namespace whose next process id we set."""
    if shutil.which("unshare") is None:
        return False
    probe = _in_new_pid_namespace(999, [sys.executable, "-c", "import os; print(os.getpid())"])
    completed = subprocess.run(probe, capture_output=True, text=True)
    return completed.returncode == 0 and completed.stdout.strip() == "1000"


def _in_new_pid_namespace(previous_process_id, command):
    """``command`` run in a new pid namespace (as a container runs it) with the process id after ``previous``."""
    script = f"echo {previous_process_id} > /proc/sys/kernel/ns_last_pid && \"$@\"; status=$?; exit $status"
    return ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc", "sh", "-c", script,
            "sh", *command]


@pytest.mark.skipif(os.name != "posix", reason="pid namespaces are Linux")
def test_a_killed_writer_in_another_pid_namespace_with_this_process_id_leaves_nothing_for_good(tmp_path):
    # The container case: the killed saver's id is the id of the process that saves next.
    if not _can_choose_process_ids_in_a_new_pid_namespace():
        pytest.skip("needs unprivileged user and pid namespaces (unshare) with a writable ns_last_pid")
    target = write_text_atomically(tmp_path / "model.npz", "old")
    writer = _start_writer(target, "kill", prefix=_in_new_pid_namespace(os.getpid() - 1, []))
    writer.wait()
    assert writer.process_id == os.getpid() and len(_temporaries(tmp_path)) == 1
    assert target.read_text() == "old"
    write_text_atomically(target, "new")
    assert os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.skipif(os.name != "posix", reason="pid namespaces are Linux")
def test_a_live_writer_in_another_pid_namespace_keeps_its_temporary(tmp_path):
    # Its process id names no process here, yet the writer is alive: only its lock can tell.
    if not _can_choose_process_ids_in_a_new_pid_namespace():
        pytest.skip("needs unprivileged user and pid namespaces (unshare) with a writable ns_last_pid")
    unused = _dead_process_id()
    target = write_text_atomically(tmp_path / "model.npz", "old")
    writer = _start_writer(target, "pause", prefix=_in_new_pid_namespace(unused - 1, []))
    try:
        assert writer.process_id == unused
        live = _temporaries(tmp_path)
        write_text_atomically(target, "meanwhile")
        assert _temporaries(tmp_path) == live
    finally:
        assert _finish(writer) == 0
    assert target.read_bytes() == WRITER_CONTENT and os.listdir(tmp_path) == ["model.npz"]
