"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every file numnet writes (models, figures, reports, predictions, downloads) goes through
:func:`write_atomically`: the content is written to a temporary file beside the target, flushed to disk
(fsync), renamed over the target (atomic on POSIX and Windows), and the folder is flushed too, so that the
rename itself survives a power cut. A failed or interrupted write leaves any earlier file intact and removes
its temporary. A killed process (SIGKILL, a power cut) cannot remove its temporary, which for a model can
be tens of MB: the next write of the same target removes it, and never the temporary of a live writer.

How a later write tells a killed writer's temporary from a live one: the writer holds an exclusive
``flock`` on its temporary from its creation until after the rename, and the kernel drops the lock the
moment the process dies, however it dies. A temporary whose lock can be taken is abandoned. This is more
robust than asking whether the process id in the name runs: process ids mean nothing across containers
(each container's saver is often pid 1, every run) and get reused, while a lock is seen by every process on
the machine, and by two threads of one process too (flock locks belong to each ``open``). Where ``fcntl`` is
missing (Windows), a file open in any process cannot be deleted, which protects a live writer, and an age
covers the instant between its close and its rename.
"""

import contextlib
import os
import re
import secrets
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

#: Temporaries are ``.<target name>.<pid>.<16 random hex digits>.tmp``: hidden and beside the target, so that
#: a later write of the same target finds them; the process id tells a person which process wrote one.
TEMPORARY_SUFFIX = ".tmp"
#: Created with this mode, which the umask then narrows: the permissions any ordinary new file gets.
NEW_FILE_MODE = 0o666
#: Without file locks (Windows), an unlocked temporary counts as abandoned only once unmodified this long:
#: a live writer's file is closed, unlocked, only for the instant between its last write and its rename, and
#: an hour leaves room for the clock of a network share's server to differ from ours.
UNLOCKED_MINIMUM_AGE_SECONDS = 3600


def write_atomically(path, write):
    """Write a file by calling ``write(stream)`` on a temporary file, then rename it over ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The target. Missing parent folders are created.
    write : callable
        Called once with a binary stream open for writing; whatever it writes becomes the file. An exception
        it raises (for example a failed checksum) aborts the write: the temporary is removed and the
        exception propagates.

    Returns
    -------
    pathlib.Path
        ``path``, as a Path.

    Raises
    ------
    TypeError
        If ``path`` is not a str or path-like object.
    OSError
        When the folder cannot be created or written, or the disk is full. An error of the write or the
        rename names ``path`` (its ``filename``), never the temporary, whose name means nothing to the caller.

    Examples
    --------
    >>> write_atomically("notes.txt", lambda stream: stream.write(b"hello\\n"))  # doctest: +SKIP
    PosixPath('notes.txt')
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}: {path!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_temporaries(path)  # first, so that their space is free for this write
    temporary, descriptor, lock = _create_temporary(path)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            write(_TargetStream(stream, path, temporary))
            with _naming_the_target(path, temporary):
                stream.flush()
                os.fsync(stream.fileno())
        with _naming_the_target(path, temporary):
            os.replace(temporary, path)  # after the close: Windows cannot rename an open file
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    finally:
        if lock is not None:
            os.close(lock)  # only now, after the rename: until then the temporary is visibly in use
    _sync_folder(path.parent)
    return path


def _create_temporary(path):
    """Create a new temporary beside ``path``, locked where files can be; returns (temporary, descriptor, lock)."""
    while True:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}{TEMPORARY_SUFFIX}")
        with _naming_the_target(path, temporary):
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                                 NEW_FILE_MODE)  # O_EXCL: never someone else's file
        lock = _lock(descriptor)
        if lock is None or _is_still_named(temporary, descriptor):
            return temporary, descriptor, lock
        # Another write of the target took the file, unlocked for an instant after its creation, for
        # abandoned and removed it: start again with a new name.
        os.close(lock)
        os.close(descriptor)


def _lock(descriptor):
    """A duplicate of ``descriptor`` holding an exclusive flock on its file, or None where files cannot be locked.

    A duplicate, so that the lock outlives the stream's close and still holds during the rename.
    """
    if fcntl is None:
        return None
    lock = os.dup(descriptor)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits out another write that holds it for an instant to test it
    except OSError:  # a file system without locks: no write can take the lock either, so none removes it
        os.close(lock)
        return None
    return lock


def _is_still_named(temporary, descriptor):
    """Whether the name ``temporary`` is still the file open as ``descriptor``."""
    try:
        return os.path.samestat(os.stat(temporary), os.fstat(descriptor))
    except FileNotFoundError:
        return False


class _TargetStream:
    """The temporary's stream as ``write`` sees it: a failed write names the target (a full disk, say).

    Everything but ``write`` is the stream's own, so libraries can seek, tell and ask for its fileno.
    """

    def __init__(self, stream, path, temporary):
        self._stream, self._path, self._temporary = stream, path, temporary

    def write(self, data):
        with _naming_the_target(self._path, self._temporary):
            return self._stream.write(data)

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def _naming_the_target(path, temporary):
    """Re-raise an OSError of writing or renaming the temporary naming ``path``, the file the caller asked
    for, where it named the temporary or no file.

    Used around the helper's own file operations only, so that the errors of the caller's ``write`` (a
    download's broken connection, say) keep their own words. OSError(errno, ...) picks the subclass
    (PermissionError, IsADirectoryError, ...) from the number.
    """
    try:
        yield
    except OSError as error:
        if error.errno is None or error.filename not in (None, str(temporary), os.fsencode(temporary)):
            raise
        raise OSError(error.errno, error.strerror, str(path)) from error


def _remove_abandoned_temporaries(path):
    """Delete the temporaries of ``path`` whose writers are gone (killed mid-write), and no other file.

    numnet 0.2.0 named its temporaries ``.<name>.<pid>-<hex>.tmp`` and did not lock them: such a file is
    removed when no process with its id runs here. When one does (the id was reused, or it is this process's
    own id, as for a container's pid 1), the file stays until that process is gone.
    """
    prefix, suffix = re.escape(f".{path.name}."), re.escape(TEMPORARY_SUFFIX)
    locked = re.compile(prefix + r"\d+\.[0-9a-f]{16}" + suffix)
    by_process_id = re.compile(prefix + r"(\d+)-[0-9a-f]{16}" + suffix)
    try:
        entries = [entry for entry in os.scandir(path.parent) if entry.is_file(follow_symlinks=False)]
    except OSError:
        return
    for entry in entries:
        if locked.fullmatch(entry.name):
            _remove_if_unlocked(Path(entry.path))
        elif (match := by_process_id.fullmatch(entry.name)) and not _is_running(int(match.group(1))):
            Path(entry.path).unlink(missing_ok=True)


def _remove_if_unlocked(temporary):
    """Delete ``temporary`` if no process holds its lock (where locks are missing: if it is old and closed)."""
    if fcntl is None:
        _remove_if_old(temporary)
        return
    try:
        # For writing: NFS emulates flock with a byte-range lock, whose exclusive form needs a writable file.
        descriptor = os.open(temporary, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return  # gone already (its writer finished), or another user's to remove
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        temporary.unlink(missing_ok=True)  # under the lock, so its writer, if just starting, sees it go
    except OSError:
        pass  # locked: its writer is alive (or this file system cannot lock: then nobody can tell, so keep it)
    finally:
        os.close(descriptor)


def _remove_if_old(temporary):
    """Delete ``temporary`` if unmodified for UNLOCKED_MINIMUM_AGE_SECONDS (Windows refuses while it is open)."""
    try:
        if time.time() - os.stat(temporary).st_mtime > UNLOCKED_MINIMUM_AGE_SECONDS:
            os.unlink(temporary)
    except OSError:
        pass  # open in a live writer (PermissionError), or gone already


def _is_running(pid):
    """Whether process ``pid`` runs on this machine (assumed so where that cannot be asked safely)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) would send Ctrl+C to the process on Windows
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or an id this machine cannot have): leave its file alone
    return True


def _sync_folder(folder):
    """fsync the folder so the rename itself survives a power cut (skipped where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_text_atomically(path, text):
    """Write ``text`` as UTF-8 to ``path`` with :func:`write_atomically`; returns ``path`` as a Path."""
    return write_atomically(path, lambda stream: stream.write(text.encode("utf-8")))
