"""Where numnet keeps files it can rebuild: the user's cache folder, never the installed package.

Today that is the compiled kernels' machine code (numba's cache, :mod:`numnet.kernels`). Writing it beside
the package's own modules, numba's default, breaks two things: a read-only install (a system Python, a
container run as another user) cannot be written, and pip's uninstall does not know the files, so a
reinstall leaves ``site-packages/numnet/__pycache__/`` behind, which later interpreters import as an empty
namespace package called ``numnet``.

The folder, first match wins:

1. ``$NUMNET_CACHE_DIR`` (numnet's own setting);
2. ``$NUMBA_CACHE_DIR``, numba's setting, for the compiled kernels;
3. the platform's per-user cache folder (``~/.cache/numnet`` on Linux, ``~/Library/Caches/numnet`` on
   macOS, ``%LOCALAPPDATA%\\numnet\\Cache`` on Windows), as platformdirs names it.

A folder that cannot be made or written (read-only, or a path under a regular file) is not an error: the
kernels then compile in memory in each process, and one :class:`CacheWarning` says why.
"""

import os
import warnings

from .errors import NumnetWarning

CACHE_ENVIRONMENT_VARIABLE = "NUMNET_CACHE_DIR"
NUMBA_ENVIRONMENT_VARIABLE = "NUMBA_CACHE_DIR"


class CacheWarning(NumnetWarning):
    """numnet's cache folder cannot be used; the work it would have saved is done again in memory."""


def cache_folder(purpose):
    """The folder for ``purpose``'s cached files ("numba" for the compiled kernels), or None with one
    :class:`CacheWarning` when no usable folder can be named or written.

    Parameters
    ----------
    purpose : str
        A subfolder name under numnet's cache folder. ``$NUMBA_CACHE_DIR`` applies to "numba" only and is
        used as it is, without a subfolder, as numba itself would use it.

    Returns
    -------
    str or None
        An absolute path to an existing, writable folder.
    """
    folder = _named_folder(purpose)
    if folder is None:
        warnings.warn(f"numnet's {purpose} cache is off: set ${CACHE_ENVIRONMENT_VARIABLE} to a writable folder "
                      "or install platformdirs (pip install 'numnet[fast]') to keep compiled code between "
                      "runs; compiling in memory instead", CacheWarning, stacklevel=3)
        return None
    problem = _unwritable(folder)
    if problem is not None:
        warnings.warn(f"numnet's {purpose} cache folder {folder!r} cannot be used ({problem}); compiling in "
                      f"memory instead. Set ${CACHE_ENVIRONMENT_VARIABLE} to a writable folder to keep "
                      "compiled code between runs", CacheWarning, stacklevel=3)
        return None
    return folder


def _named_folder(purpose):
    """The folder the settings name for ``purpose`` (not yet checked), or None when none can be named."""
    own = os.environ.get(CACHE_ENVIRONMENT_VARIABLE)
    if own:
        return os.path.abspath(os.path.join(os.path.expanduser(own), purpose))
    numba_setting = os.environ.get(NUMBA_ENVIRONMENT_VARIABLE)
    if purpose == "numba" and numba_setting:
        return os.path.abspath(os.path.expanduser(numba_setting))
    try:
        import platformdirs
    except ImportError:
        return None
    return os.path.join(platformdirs.user_cache_dir("numnet", appauthor=False), purpose)


def _unwritable(folder):
    """Why ``folder`` cannot hold cache files (a short phrase), or None when it can: made if missing, and
    a file can be created in it (the test numba applies before it writes)."""
    import tempfile  # here, not at the top: 4 ms of ``import numnet``, needed only when kernels load

    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        return error.strerror or type(error).__name__
    return None
