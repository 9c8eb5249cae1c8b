"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every file numnet writes (models, figures, reports, predictions, downloads) goes through
:func:`write_atomically`: the content is written to a temporary file beside the target, flushed to disk
(fsync), renamed over the target (atomic on POSIX and Windows), and the folder is flushed too, so that the
rename itself survives a power cut. A failed or interrupted write leaves any earlier file intact and removes
its temporary; the temporaries that a killed process could not remove (a model's can be tens of MB) are
removed by the next successful write of the same target.
"""

import contextlib
import os
import re
import secrets
from pathlib import Path

#: Temporaries are ``.<target name>.<pid>-<random hex>.tmp``: hidden, beside the target, and carrying the
#: writer's process id so that a later write can tell a dead writer's leftover from a live writer's file.
TEMPORARY_SUFFIX = ".tmp"
#: Created with this mode, which the umask then narrows: the permissions any ordinary new file gets.
NEW_FILE_MODE = 0o666


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
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(8)}{TEMPORARY_SUFFIX}")
    with _naming_the_target(path, temporary):
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                             NEW_FILE_MODE)  # O_EXCL: never someone else's file
    try:
        with os.fdopen(descriptor, "wb") as stream:
            write(_TargetStream(stream, path, temporary))
            with _naming_the_target(path, temporary):
                stream.flush()
                os.fsync(stream.fileno())
        with _naming_the_target(path, temporary):
            os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _remove_stale_temporaries(path)
    _sync_folder(path.parent)
    return path


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


def _remove_stale_temporaries(path):
    """Delete temporaries of ``path`` left by writers that no longer run (killed mid-write)."""
    pattern = re.compile(re.escape(f".{path.name}.") + r"(\d+)-[0-9a-f]+" + re.escape(TEMPORARY_SUFFIX))
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and not _is_running(int(match.group(1))):
            Path(entry.path).unlink(missing_ok=True)


def _is_running(pid):
    """Whether process ``pid`` runs on this machine (assumed so where that cannot be asked safely)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows
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
