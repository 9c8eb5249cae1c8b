"""Optional compiled kernels: each optimiser's update fused into one parallel pass over the parameters.

The update rules in optimizers.py are the reference. Written with NumPy ufuncs, Adam makes twelve passes
over every parameter per step, on one core; the kernels here make one pass, on every core, and perform
the same float operations in the same order on each element (every intermediate rounded to the
parameters' dtype, no fused multiply-add), so their results are bit-identical to the NumPy rules
(tests/test_kernels.py). They also flush subnormal state inline, at the thresholds the optimiser passes
(zero when no flush is due), with the same test as :func:`numnet.optimizers.flush_below`.

The kernels need numba (``pip install 'numnet[fast]'``), imported the first time an optimiser steps NumPy
arrays, never at ``import numnet``. Without numba, for arrays of another library or non-contiguous ones,
or with ``NUMNET_KERNELS=numpy`` in the environment (or inside ``with use_kernels("numpy"):``), the NumPy
rules run instead. benchmarks/NOTES.md, "fused compiled optimiser step", has the measurements.
"""

import contextlib
import importlib.util
import os

import numpy as np

from .errors import require

KERNELS_ENVIRONMENT_VARIABLE = "NUMNET_KERNELS"
#: "auto": the compiled kernels when numba is installed; "numba": require them; "numpy": never.
KERNEL_CHOICES = ("auto", "numba", "numpy")

_choice = None  # set by set_kernels; None means "read the environment variable"
_compiled = None  # the module of compiled functions, once built


def set_kernels(choice):
    """Choose where the optimisers' update rules run: "auto" (the default), "numba" or "numpy".

    Parameters
    ----------
    choice : str or None
        None goes back to ``$NUMNET_KERNELS`` (default "auto").

    Raises
    ------
    ValueError
        For another name.
    MissingDependencyError
        For "numba" when numba is not installed.
    """
    global _choice
    if choice is not None:
        choice = _checked_choice(choice, "set_kernels")
        if choice == "numba":
            _load()
    _choice = choice


@contextlib.contextmanager
def use_kernels(choice):
    """Run the enclosed code with :func:`set_kernels` (``choice``), then restore the previous choice."""
    previous = _choice
    set_kernels(choice)
    try:
        yield
    finally:
        set_kernels(previous)


def current_choice():
    """The choice in force: the one given to :func:`set_kernels`, else ``$NUMNET_KERNELS``, else "auto"."""
    if _choice is not None:
        return _choice
    return _checked_choice(os.environ.get(KERNELS_ENVIRONMENT_VARIABLE) or "auto", KERNELS_ENVIRONMENT_VARIABLE)


def compiled_available():
    """Whether numba is installed (checked without importing it)."""
    return importlib.util.find_spec("numba") is not None


def fused_step(rule, *arrays):
    """The compiled kernel for optimiser ``rule`` ("sgd", "momentum", "nesterov", "adagrad", "rmsprop",
    "adam") when it applies to ``arrays`` (parameters, gradients, then the state arrays), else None.

    It applies when the compiled kernels are chosen and available and every array is a C-contiguous
    NumPy float32 or float64 array of the parameters' dtype and size. The kernel is called with the
    arrays flattened (:func:`flat`) and the rule's scalars converted to that dtype (:func:`scalars`).
    """
    choice = current_choice()
    if choice == "numpy" or (choice == "auto" and not compiled_available()):
        return None
    first = arrays[0]
    if not all(type(array) is np.ndarray and array.flags.c_contiguous and array.dtype == first.dtype
               and array.size == first.size for array in arrays):
        return None
    if first.dtype not in (np.float32, np.float64):
        return None
    return getattr(_load(), rule + "_step")


def flat(array):
    """``array`` as a 1-D view (it is C-contiguous)."""
    return array.reshape(-1)


def scalars(dtype, *values):
    """``values`` as scalars of ``dtype``: the rounding NumPy applies to a Python float in a ufunc (NEP 50)."""
    return tuple(dtype.type(value) for value in values)


def _checked_choice(choice, where):
    key = str(choice).strip().lower()
    if key not in KERNEL_CHOICES:
        raise ValueError(f"{where}: unknown kernels {choice!r}; choose one of: {', '.join(KERNEL_CHOICES)}")
    return key


def _load():
    """Build (once) and return the module of compiled kernels; compiled code is cached on disk by numba."""
    global _compiled
    if _compiled is None:
        require("numba", "fast", "the compiled optimiser kernels")
        _compiled = importlib.import_module("numnet._compiled_kernels")
    return _compiled
