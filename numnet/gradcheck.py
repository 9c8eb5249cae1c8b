"""Numerical derivatives by central differences, gradient checking of a network, and plain gradient descent.

Central differences: f'(x) ≈ (f(x + h) - f(x - h)) / (2h), with 2h in the denominator (one classic
write-up divides by 2 and then multiplies by h, an operator-precedence bug). Its truncation error is
O(h²) and its rounding error ``O(ε·|f|/h)``; h = 1e-4 balances them for float64 functions of size ~1, and the
network check uses 1e-5 on float64 models.
"""

import math
from dataclasses import dataclass

import numpy as np

from .backend import namespace, to_numpy
from .errors import DivergenceError
from .inputs import count_rows
from .training import DIVERGENCE_GROWTH
from .validation import check_integer

#: Step of the central difference for plain functions (the classic choice for float64).
DEFAULT_STEP = 1e-4
#: Step used by gradient_check on network parameters (float64 models); 1e-6 lets rounding noise
#: (about 1e-16·|C|/h) exceed 1e-6 relative on small gradients, measured on random networks.
NETWORK_STEP = 1e-5
#: Denominator floor of the relative error, so two zero gradients compare as equal.
TINY = 1e-30
#: gradient_descent reports divergence once |f(x)| exceeds this multiple of max(|f(x0)|, 1): the same rule
#: as the training loop's guard.
DIVERGENCE_RATIO = DIVERGENCE_GROWTH
#: Seed of the Dropout masks of every pass of gradient_check (the same masks each time).
MASK_SEED = 0


def numerical_derivative(f, x, h=DEFAULT_STEP):
    """Central-difference derivative of a scalar function at a scalar ``x``: (f(x+h) - f(x-h)) / (2h).

    Examples
    --------
    >>> round(numerical_derivative(lambda x: 0.01 * x**2 + 0.1 * x, 5.0), 10)
    0.2
    """
    h = _positive_step(h)
    return (f(x + h) - f(x - h)) / (2 * h)


def numerical_gradient(f, x, h=DEFAULT_STEP):
    """Central-difference gradient of a scalar function ``f`` at the float array ``x``, of any shape.

    Each entry of ``x`` is perturbed in place by ±h and restored, so ``f`` may read ``x`` by reference
    (as a network's loss reads its weights).

    Parameters
    ----------
    f : callable
        ``f(x)`` returns a real number.
    x : float array of any array-API library (NumPy, a network's parameter on another backend), any shape
        Modified during the call and restored exactly before it returns.
    h : float

    Returns
    -------
    ndarray, same shape as ``x``, float64
    """
    h = _positive_step(h)
    _check_float_array(x)
    gradient = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(*x.shape):
        original = x[index]
        x[index] = original + h
        f_plus = float(f(x))
        x[index] = original - h
        f_minus = float(f(x))
        x[index] = original
        gradient[index] = (f_plus - f_minus) / (2 * h)
    return gradient


def _check_float_array(x):
    """numerical_gradient writes into x: it must be a float array, not a list or an integer array."""
    is_array = hasattr(x, "__array_namespace__")
    if not (is_array and x.__array_namespace__().isdtype(x.dtype, "real floating")):
        raise TypeError(
            "numerical_gradient perturbs x in place, so x must be a float array (e.g. a NumPy float64 "
            f"array); got {type(x).__name__}{' of dtype ' + str(x.dtype) if is_array else ''}"
        )


def relative_error(analytic, numeric):
    """‖analytic - numeric‖ / max(‖analytic‖, ‖numeric‖, TINY), the error of a whole gradient array.

    The norm-wise form is used rather than the largest entry-wise ratio because central differences
    carry an absolute rounding error of about ``ε·|f|/h``: on entries far smaller than the rest of the
    gradient that noise would dominate an entry-wise ratio without saying anything about backprop.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    scale = max(float(np.linalg.norm(analytic)), float(np.linalg.norm(numeric)), TINY)
    return float(np.linalg.norm(analytic - numeric)) / scale


def gradient_check(model, X, y, h=NETWORK_STEP):
    """Compare backprop's gradient of every parameter with central differences.

    Every loss evaluation, the backprop pass's and each perturbed one, is a training-mode forward pass,
    because that is the function backprop differentiates: BatchNorm normalises with the batch's own
    statistics, and Dropout draws the same masks each time (from a generator seeded alike for every
    pass). BatchNorm's running statistics and the state a stateful recurrent layer carries, which each
    training pass moves, are put back after every pass, so that every pass computes the same function
    and the check leaves the model as it found it.

    Parameters
    ----------
    model : Network
        Best in float64; a float32 model agrees only to about 1e-2.
    X, y : array_like
        A small batch (the numerical gradient costs two forward passes per parameter entry).
    h : float

    Returns
    -------
    dict of str to float
        For each parameter name, the relative error (see :func:`relative_error`) between backprop and
        the numerical gradient; below 1e-6 means the two agree.
    """
    X = model.prepare_inputs(X)
    Y = model.prepare_targets(y, count_rows(X))
    state = namespace(model.flat_state).asarray(model.flat_state, copy=True)
    carried = model.carried_state()

    def masks():
        return np.random.default_rng(MASK_SEED)

    def restore_state():
        model.flat_state[...] = state
        model.set_carried_state(carried)

    try:
        model.loss_and_gradients(X, Y, masks())
        restore_state()
        analytic = {name: np.array(to_numpy(gradient)) for name, gradient in model.gradients().items()}

        def training_loss(_):
            logits, output = model._forward(X, training=True, rng=masks())
            restore_state()
            return model._loss_from(logits, output, Y)

        return {
            name: relative_error(analytic[name], numerical_gradient(training_loss, parameter, h))
            for name, parameter in model.parameters().items()
        }
    finally:
        restore_state()
        model.clear_caches()


@dataclass
class DescentResult:
    """The outcome of :func:`gradient_descent`: the final point and the path (steps + 1 points)."""

    x: np.ndarray
    path: np.ndarray
    values: np.ndarray


def gradient_descent(f, x0, learning_rate=0.01, steps=100, gradient=None):
    """Minimise ``f`` by plain gradient descent: x ← x - learning_rate · ∇f(x).

    Parameters
    ----------
    f : callable
        ``f(x)`` returns a real number for a float64 array ``x``.
    x0 : array_like
        The starting point (any shape; not modified).
    learning_rate : float > 0
    steps : int > 0
    gradient : callable, optional
        ∇f; by default :func:`numerical_gradient` of ``f``.

    Returns
    -------
    DescentResult

    Raises
    ------
    DivergenceError
        When x or f(x) becomes non-finite or ``|f(x)|`` grows past ``DIVERGENCE_RATIO · max(|f(x0)|, 1)``: the
        learning rate is too large. The error's ``result`` holds the path up to the last finite point.
    """
    if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    check_integer(steps, "steps")
    gradient = gradient or (lambda point: numerical_gradient(f, point))
    x = np.array(x0, dtype=np.float64)
    path, values = [x.copy()], [float(f(x))]
    limit = DIVERGENCE_RATIO * max(abs(values[0]), 1.0)
    for step in range(1, steps + 1):
        candidate = x - learning_rate * np.asarray(gradient(x), dtype=np.float64)
        value = float(f(candidate)) if np.all(np.isfinite(candidate)) else math.nan
        if not math.isfinite(value) or abs(value) > limit:
            error = DivergenceError(
                f"gradient descent diverged at step {step} of {steps}: f(x) went from {values[0]:.6g} to "
                f"{value:.6g} (|x| = {float(np.max(np.abs(candidate))):.3g}); the learning rate "
                f"{learning_rate:g} is too large for this function, try a smaller one"
            )
            error.result = DescentResult(x, np.array(path), np.array(values))
            raise error
        x = candidate
        path.append(x.copy())
        values.append(value)
    return DescentResult(x, np.array(path), np.array(values))


def _positive_step(h):
    if not (isinstance(h, (int, float)) and math.isfinite(h) and h > 0):
        raise ValueError(f"the step h must be a finite number > 0, got {h!r}")
    return float(h)
