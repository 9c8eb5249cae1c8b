"""The array library, the dtype policy, and the one place where user inputs are converted.

Every array numnet computes with is created or converted here, once, at the boundary of a public call
(``fit``, ``predict``, a loader). Inside the engine arrays are trusted to have the model's dtype, so no
operation silently upcasts float32 to float64.

The engine does its math through the namespace ``xp`` of the arrays it is given, using only functions of
the Python array API standard, so the same code runs on NumPy (the default), CuPy on a GPU, or any other
standard library (``array_api_strict`` proves it in the tests). The standard has no ``out=`` arguments; the
few hot spots that write in place call :func:`apply`, which uses ``out=`` on NumPy and CuPy (no temporary
array) and plain assignment elsewhere, so the engine itself stays one code path.
"""

import contextlib
import importlib
import os
import types

import numpy as np

from .errors import MissingDependencyError

DEFAULT_DTYPE = "float32"
SUPPORTED_DTYPES = ("float32", "float64")
BACKEND_ENVIRONMENT_VARIABLE = "NUMNET_BACKEND"
DEFAULT_BACKEND = "numpy"

#: Array types whose library functions take ``out=`` (NumPy's ufuncs; CuPy's once it is loaded).
_TAKES_OUT = {np.ndarray}


class Backend:
    """An array library: its namespace ``xp`` and conversions to and from NumPy.

    Parameters
    ----------
    name : str
        "numpy", "cupy" or "array_api_strict".
    xp : module
        The array namespace.
    """

    def __init__(self, name, xp):
        self.name = name
        self.xp = xp

    def __repr__(self):
        return f"Backend({self.name!r})"

    def __reduce__(self):
        # A backend is pickled by name: modules cannot be pickled, and the name finds the same library.
        return (get_backend, (self.name,))

    def dtype(self, dtype):
        """This library's dtype object for a NumPy float dtype."""
        return getattr(self.xp, np.dtype(dtype).name)

    def asarray(self, array, dtype):
        """``array`` (usually NumPy) on this backend with ``dtype``: one transfer, copying only when needed."""
        if self.xp is np:
            return np.asarray(array, dtype=dtype)
        return self.xp.asarray(np.asarray(array), dtype=self.dtype(dtype))

    def take_rows(self, array, indices):
        """Rows ``indices`` (a NumPy integer array) of ``array``."""
        if self.xp is np:
            return array[indices]
        return self.xp.take(array, self.xp.asarray(indices), axis=0)


def to_numpy(array):
    """A NumPy array with the values of ``array`` from any backend (a no-op for NumPy arrays)."""
    if isinstance(array, np.ndarray):
        return array
    if hasattr(array, "get"):  # CuPy: copy from the GPU
        return array.get()
    if not hasattr(array, "__dlpack__"):  # NumPy scalars (np.float64(3.0)) carry a namespace but no DLPack
        return np.asarray(array)
    return np.from_dlpack(array)


def _numpy_reduction(method_name):
    """A standard-style reduction ``f(x, axis=..., keepdims=...)`` that calls the ndarray method.

    NumPy's functions np.max, np.sum and np.mean pass through a Python-level dispatcher that costs about
    1 µs per call; the methods skip it. At batch 32 the loss and softmax make several such calls per step,
    which added 9% to the digits epoch (benchmarks/NOTES.md, "reductions as methods").
    """
    def reduce(x, /, *, axis=None, keepdims=False, **options):
        return getattr(x, method_name)(axis=axis, keepdims=keepdims, **options)

    reduce.__name__ = method_name
    return reduce


#: NumPy as the engine sees it: every NumPy name, with the hot reductions called as methods.
NUMPY_NAMESPACE = types.SimpleNamespace(**{name: value for name, value in vars(np).items()
                                           if not name.startswith("__")})
for _name in ("max", "sum", "mean", "argmax"):
    setattr(NUMPY_NAMESPACE, _name, _numpy_reduction(_name))


def namespace(array):
    """The array library ``array`` belongs to (NumPy checked first: it is the common, hot case)."""
    if isinstance(array, np.ndarray):
        return NUMPY_NAMESPACE
    return array.__array_namespace__()


def apply(function, *arguments, out=None, **options):
    """``function(*arguments, **options)``, written into ``out`` when given.

    NumPy and CuPy write straight into ``out`` (no temporary: the hot loop allocates nothing); other
    libraries compute the result and assign it (benchmarks/NOTES.md, "in place through the backend").
    """
    if out is None:
        return function(*arguments, **options)
    if type(out) in _TAKES_OUT:
        return function(*arguments, out=out, **options)
    out[...] = function(*arguments, **options)
    return out


def multiply_by_mask(values, mask):
    """``values`` where ``mask`` is True, else 0 (a new array): relu's backward pass.

    NumPy multiplies by the boolean mask directly, twice as fast as ``where`` (benchmarks/NOTES.md,
    "relu backward by mask"); the standard does not mix booleans into arithmetic, so others cast first.
    """
    if type(values) in _TAKES_OUT:
        return values * mask
    return values * namespace(values).astype(mask, values.dtype)


def sliding_windows(images, window, stride):
    """Every ``window`` (kh, kw) of ``images`` (n, C, H, W) taken at steps of ``stride`` (sh, sw), as an
    array of shape (n, C, kh, kw, out_h, out_w) with out_h = (H - kh) // sh + 1: ``windows[:, :, i, j]`` holds
    pixel (i, j) of every window, i.e. the images shifted by (i, j) and sampled every (sh, sw) pixels.

    NumPy returns a strided view (sliding_window_view: no copy; a reshape copies once, straight into the
    im2col layout); the standard has no strided views, so other libraries stack the kh·kw shifted slices
    (benchmarks/NOTES.md, "im2col by strided windows").
    """
    (kh, kw), (sh, sw) = window, stride
    out_h, out_w = (images.shape[2] - kh) // sh + 1, (images.shape[3] - kw) // sw + 1
    if type(images) is np.ndarray:
        view = np.lib.stride_tricks.sliding_window_view(images, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        return view.transpose(0, 1, 4, 5, 2, 3)  # (n, C, kh, kw, out_h, out_w)
    xp = namespace(images)
    shifted = [images[:, :, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw]
               for i in range(kh) for j in range(kw)]  # kh·kw arrays (n, C, out_h, out_w)
    n, channels = images.shape[:2]
    return xp.reshape(xp.stack(shifted, axis=2), (n, channels, kh, kw, out_h, out_w))


def squared_norm(array):
    """Σ array², as a Python float (NumPy: one BLAS dot product, no temporary)."""
    if isinstance(array, np.ndarray):
        return float(np.vdot(array, array))
    xp = namespace(array)
    with np.errstate(over="ignore"):  # as silent as NumPy's BLAS dot: an overflow here is a diverging run,
        return float(xp.sum(array * array))  # which the training loop's guard reports


def _load_numpy():
    return Backend("numpy", np)


def _load_array_api_strict():
    module = _import_backend("array_api_strict", "pip install array-api-strict")
    return Backend("array_api_strict", module)


def _load_cupy():
    module = _import_backend("cupy", "pip install cupy-cuda12x (or the build for your CUDA), on a machine with "
                                     "an NVIDIA GPU")
    try:
        module.cuda.runtime.getDeviceCount()
    except Exception as error:  # CuPy raises its own CUDARuntimeError when there is no GPU or driver
        raise MissingDependencyError(f"backend 'cupy' needs a CUDA GPU, but none is usable here: {error}") from error
    _TAKES_OUT.add(module.ndarray)
    return Backend("cupy", module)


def _import_backend(module_name, how_to_install):
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise MissingDependencyError(
            f"backend {module_name!r} is not installed; {how_to_install}"
        ) from error


_BACKENDS = {"numpy": _load_numpy, "cupy": _load_cupy, "array_api_strict": _load_array_api_strict}


def get_backend(name=None):
    """Return the backend called ``name``, or the one chosen by ``$NUMNET_BACKEND`` (default NumPy).

    Parameters
    ----------
    name : str or Backend, optional
        "numpy", "cupy" or "array_api_strict".

    Raises
    ------
    ValueError
        For an unknown backend name.
    MissingDependencyError
        When the library (or, for CuPy, a GPU) is missing.
    """
    if isinstance(name, Backend):
        return name
    if name is None:
        name = os.environ.get(BACKEND_ENVIRONMENT_VARIABLE) or DEFAULT_BACKEND
    key = str(name).strip().lower()
    if key not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(sorted(_BACKENDS))}")
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


def as_float_array(values, dtype, name="X", *, ndim, expected, how_to_fix=None):
    """Validate ``values`` as a finite float array of ``ndim`` dimensions (images: (n, channels, height,
    width)) and ``dtype``, converted once; ``expected`` describes the shape and ``how_to_fix`` (optional)
    says how to reshape the data, for the error message.

    Raises
    ------
    ValueError
        Wrong number of dimensions (the message shows the expected shape and how to reshape), empty,
        non-numeric, NaN or infinite input.
    """
    array = as_numeric_array(values, name)
    if array.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimensions, shape {expected} (samples first), but has shape "
            f"{array.shape}; "
            + (how_to_fix or f"reshape flat rows of pixels with {name}.reshape(-1, ...) to that shape")
        )
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); it needs at least one sample")
    array = np.ascontiguousarray(array, dtype=dtype)
    check_finite(array, name)
    return array


def check_finite(array, name):
    """Raise ValueError naming the first NaN or infinite entry of ``array`` (a NumPy array)."""
    if array.dtype.kind in "biu":
        return
    # The sum of finite numbers is finite unless it overflows, and any NaN or infinity makes it
    # non-finite: one summing pass (einsum's, the fastest here) clears almost every input, and only a
    # non-finite sum pays for the element-wise check, which also finds where the problem is. That check
    # alone was 5% of predict_proba on 10,000 MNIST-sized rows (benchmarks/NOTES.md, "finiteness by one sum").
    with np.errstate(over="ignore", invalid="ignore"):
        if array.size and np.isfinite(np.einsum("i->", array.reshape(-1))):
            return
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        where = ", ".join(str(int(i)) for i in bad)
        raise ValueError(
            f"{name} contains NaN or infinity (first at index [{where}]: {array[tuple(bad)]}); "
            "remove or impute those values before training"
        )


def holds_integers(array):
    """Whether ``array``'s dtype is an integer one (bools are not): class indices, token ids.

    NumPy arrays are asked their dtype's kind: the standard's ``isdtype`` costs NumPy 2-3 µs, and the loss
    and the accuracy ask at every training step (8% of a digits step). Other libraries by ``isdtype``, or
    the kind of their dtype where they have none (CuPy's dtypes are NumPy's).
    """
    if isinstance(array, np.ndarray):
        return array.dtype.kind in "iu"
    xp = namespace(array)
    if hasattr(xp, "isdtype"):
        return xp.isdtype(array.dtype, "integral")
    return np.dtype(array.dtype).kind in "iu"


def as_token_ids(values, ndim, name="X"):
    """Token ids (integers, or floats that hold integers) as a C-contiguous int64 NumPy array of ``ndim``
    dimensions, e.g. (n_samples, time_steps); whether each id is in the vocabulary is the Embedding's check.

    Raises
    ------
    ValueError, TypeError
        For another number of dimensions, fractional values, NaN, or values that are not numbers.
    """
    array = as_numeric_array(values, name)
    if array.ndim != ndim:
        raise ValueError(f"{name} must hold token ids of shape (n_samples, time_steps), an integer per position, "
                         f"got shape {array.shape}")
    if array.dtype.kind == "f":
        check_finite(array, name)
        fractional = array != np.round(array)
        if fractional.any():
            raise ValueError(f"{name} must hold integer token ids, got {array[fractional][0]} at "
                             f"{tuple(int(i) for i in np.argwhere(fractional)[0])}")
    return np.ascontiguousarray(array, dtype=np.int64)


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
