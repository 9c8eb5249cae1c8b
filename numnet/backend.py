"""The array namespace, the dtype policy, and the one place where user inputs are converted.

Every array numnet computes with is created or converted here, once, at the boundary of a public call
(``fit``, ``predict``, a loader). Inside the engine arrays are trusted to have the model's dtype, so no
operation silently upcasts float32 to float64.

The engine does its math through the namespace ``xp`` held by a :class:`Backend`. Today that is NumPy;
keeping every array call behind ``xp`` is what lets another array library take its place later without a
rewrite of the engine.
"""

import contextlib
import os

import numpy as np

DEFAULT_DTYPE = "float32"
SUPPORTED_DTYPES = ("float32", "float64")
BACKEND_ENVIRONMENT_VARIABLE = "NUMNET_BACKEND"
DEFAULT_BACKEND = "numpy"


class Backend:
    """An array library and the few helpers the engine needs from it.

    Parameters
    ----------
    name : str
        The backend's name ("numpy").
    xp : module
        The array namespace.
    """

    def __init__(self, name, xp):
        self.name = name
        self.xp = xp

    def __repr__(self):
        return f"Backend({self.name!r})"

    def asarray(self, array, dtype):
        """``array`` on this backend with ``dtype``, copying only when needed."""
        return self.xp.asarray(array, dtype=dtype)

    def to_numpy(self, array):
        """A NumPy view or copy of ``array`` for the public API's return values."""
        return np.asarray(array)


_BACKENDS = {"numpy": lambda: Backend("numpy", np)}


def get_backend(name=None):
    """Return the backend called ``name``, or the one chosen by ``$NUMNET_BACKEND`` (default NumPy).

    Raises
    ------
    ValueError
        For an unknown backend name.
    """
    if isinstance(name, Backend):
        return name
    if name is None:
        name = os.environ.get(BACKEND_ENVIRONMENT_VARIABLE, DEFAULT_BACKEND)
    key = str(name).strip().lower()
    if key not in _BACKENDS:
        raise ValueError(
            f"unknown backend {name!r}; choose one of: {', '.join(sorted(_BACKENDS))}"
        )
    return _BACKENDS[key]()


def resolve_dtype(dtype):
    """Return ``dtype`` as a NumPy float dtype, accepting only float32 and float64.

    Parameters
    ----------
    dtype : str, numpy dtype, type or None
        None means the default, float32.

    Raises
    ------
    ValueError
        For any other dtype.
    """
    if dtype is None:
        dtype = DEFAULT_DTYPE
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise ValueError(
            f"dtype must be one of {', '.join(SUPPORTED_DTYPES)}, got {dtype!r}"
        ) from error
    if resolved.name not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(SUPPORTED_DTYPES)}, got {resolved.name!r}")
    return resolved


def as_float_matrix(values, dtype, name="X"):
    """Validate ``values`` as a 2-D finite float array of ``dtype`` (converted once, copied only if needed).

    A 1-D input is read as one feature per sample, shape (n_samples, 1).

    Parameters
    ----------
    values : array_like, shape (n_samples, n_features) or (n_samples,)
    dtype : numpy dtype
        The model's dtype (see :func:`resolve_dtype`).
    name : str
        What the array is called in error messages.

    Returns
    -------
    numpy.ndarray, shape (n_samples, n_features), C-contiguous

    Raises
    ------
    ValueError
        Empty, more than 2-D, non-numeric, NaN or infinite input.
    """
    array = as_numeric_array(values, name)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features), got {array.ndim} dimensions "
            f"with shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); it needs at least one sample and one feature")
    array = np.ascontiguousarray(array, dtype=dtype)
    check_finite(array, name)
    return array


def check_finite(array, name):
    """Raise ValueError naming the first NaN or infinite entry of ``array``."""
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        where = ", ".join(str(int(i)) for i in bad)
        raise ValueError(
            f"{name} contains NaN or infinity (first at index [{where}]: {array[tuple(bad)]}); "
            "remove or impute those values before training"
        )


def as_numeric_array(values, name):
    """Turn ``values`` into a real NumPy array, refusing strings, objects and complex numbers.

    Raises
    ------
    ValueError, TypeError
        When ``values`` cannot be read as real numbers; the message names ``name``.
    """
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name} could not be read as a numeric array: {error}") from error
    if array.dtype.kind == "c":
        raise TypeError(f"{name} must be real-valued, got complex dtype {array.dtype}")
    if array.dtype.kind not in "biuf":
        try:
            array = array.astype(np.float64)
        except (ValueError, TypeError) as error:
            raise TypeError(
                f"{name} must contain numbers, got dtype {array.dtype} ({error}); "
                "convert strings or objects to numbers first"
            ) from error
    return array


@contextlib.contextmanager
def one_blas_thread():
    """Run the enclosed code with a single BLAS thread when threadpoolctl is installed (else unchanged).

    Products of a few hundred numbers gain nothing from BLAS threads, which only add synchronisation; on
    a busy 2-core machine the threads spin against other processes, and E3's full-batch step was measured
    ten times slower with the default thread count there.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
