"""Targets and sample weights: validating them and converting them once to the arrays every loss works with."""

import numpy as np

from . import backend


def as_targets(y, loss, output_shape, dtype, n_samples=None):
    """Validate ``y`` for a network whose output per sample has ``output_shape`` and return the targets its
    loss takes: a float matrix (:func:`as_target_matrix`) for an output vector per sample; for a sequence
    model's outputs (time_steps, n_classes) with softmax cross-entropy, class indices (n_samples,
    time_steps) as int64, ``loss.ignore_index`` allowed; for its other losses, floats shaped like the output.

    Raises
    ------
    ValueError
        For targets of the wrong shape or values, naming the problem.
    """
    if len(output_shape) == 1:
        return as_target_matrix(y, loss, output_shape[0], dtype, n_samples)
    array = backend.as_numeric_array(y, "y")
    positions = tuple(output_shape[:-1])
    expected = positions if loss.fused_activation == "softmax" else tuple(output_shape)
    if array.ndim != len(expected) + 1 or any(e is not None and e != s for e, s in zip(expected, array.shape[1:])):
        shown = ", ".join("?" if size is None else str(size) for size in expected)
        what = "a class index per position" if loss.fused_activation == "softmax" else "one target per output"
        raise ValueError(f"y must have shape (n_samples, {shown}), {what}, got shape {array.shape}")
    if n_samples is not None and array.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {array.shape[0]}; they need one target per row of X")
    backend.check_finite(array, "y")
    if loss.fused_activation != "softmax":
        return np.ascontiguousarray(array, dtype=dtype)
    return _token_targets(array, output_shape[-1], loss.ignore_index)


def _token_targets(array, n_classes, ignore_index):
    """Class indices of every position as int64: integers in [0, n_classes), or ``ignore_index``."""
    if array.dtype.kind == "f" and not np.all(array == np.round(array)):
        raise ValueError(f"y must hold class indices (integers 0..{n_classes - 1}) at every position, got the "
                         f"non-integer value {array[array != np.round(array)][0]}")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"y must hold class indices (integers 0..{n_classes - 1}), got dtype {array.dtype}")
    labels = array.astype(np.int64)
    bad = (labels != ignore_index) & ((labels < 0) | (labels >= n_classes))
    if bad.any():
        position = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"y holds the class index {labels[position]} at {position}, outside 0..{n_classes - 1} "
                         f"(the output size); use {ignore_index} (the loss's ignore_index) for positions that "
                         "should count for nothing")
    return np.ascontiguousarray(labels)


def as_target_matrix(y, loss, n_outputs, dtype, n_samples=None):
    """Validate ``y`` for ``loss`` and return it as a float matrix of shape (n_samples, n_outputs).

    Parameters
    ----------
    y : array_like
        Softmax cross-entropy: class indices (n_samples,) in [0, n_outputs), or one-hot rows
        (n_samples, n_outputs). Binary cross-entropy: labels in [0, 1], shape (n_samples,) when there is
        one output, else (n_samples, n_outputs). Mean squared error: real values, (n_samples,) for one
        output or (n_samples, n_outputs). Poisson: counts or rates >= 0, shaped like mean squared error's.
    loss : Loss
    n_outputs : int
        The network's output size.
    dtype : numpy dtype
    n_samples : int, optional
        The number of rows X has; a different number of targets is an error.

    Raises
    ------
    ValueError
        Wrong number of rows, wrong width, NaN or infinity, class labels that are not integers or are out
        of range, binary labels outside [0, 1], negative targets for the Poisson loss.
    """
    array = backend.as_numeric_array(y, "y")
    if array.ndim == 0 or array.ndim > 2:
        raise ValueError(f"y must have shape (n_samples,) or (n_samples, n_outputs), got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError("y is empty; it needs one target per sample")
    if n_samples is not None and array.shape[0] != n_samples:
        raise ValueError(
            f"X has {n_samples} samples but y has {array.shape[0]}; they need one target per row of X"
        )
    backend.check_finite(array, "y")
    if loss.fused_activation == "softmax":
        return _class_targets(array, n_outputs, dtype)
    matrix = _as_column_matrix(array, n_outputs)
    if loss.fused_activation == "sigmoid" and (matrix.min() < 0 or matrix.max() > 1):
        raise ValueError(
            f"binary cross-entropy needs labels in [0, 1], got values from {matrix.min()} to {matrix.max()}"
        )
    if loss.needs_non_negative_targets and matrix.min() < 0:
        raise ValueError(
            f"the {loss.name} loss needs counts >= 0 as targets (it models a rate), got the value "
            f"{matrix.min()}; remove or correct the negative targets"
        )
    return np.ascontiguousarray(matrix, dtype=dtype)


def _as_column_matrix(array, n_outputs):
    if array.ndim == 1:
        if n_outputs != 1:
            raise ValueError(
                f"y has shape {array.shape} (one target per sample) but the network has {n_outputs} outputs; "
                f"give y of shape (n_samples, {n_outputs})"
            )
        return array.reshape(-1, 1)
    if array.shape[1] != n_outputs:
        raise ValueError(
            f"y has {array.shape[1]} columns but the network has {n_outputs} outputs; they must match"
        )
    return array


def _class_targets(array, n_classes, dtype):
    """One-hot matrix from class indices, or validated one-hot rows."""
    if array.ndim == 2 and array.shape[1] == 1 and n_classes != 1:
        array = array[:, 0]
    if array.ndim == 2:
        if array.shape[1] != n_classes:
            raise ValueError(
                f"one-hot y has {array.shape[1]} columns but the network has {n_classes} classes; "
                "they must match (or give class indices of shape (n_samples,))"
            )
        if array.min() < 0 or not np.allclose(array.sum(axis=1), 1.0):
            raise ValueError("one-hot y must have non-negative rows that sum to 1")
        return np.ascontiguousarray(array, dtype=dtype)
    labels = class_indices(array, n_classes)
    one_hot = np.zeros((labels.size, n_classes), dtype=dtype)
    one_hot[np.arange(labels.size), labels] = 1
    return one_hot


def class_indices(labels, n_classes):
    """Validate class labels as integers in [0, n_classes) and return them as int64.

    Raises
    ------
    ValueError
        For non-integer values or labels out of range.
    """
    labels = np.asarray(labels)
    if labels.dtype.kind == "f":
        if not np.all(labels == np.round(labels)):
            bad = labels[labels != np.round(labels)][0]
            raise ValueError(
                f"class labels must be integers 0..{n_classes - 1}, got the non-integer value {bad}; "
                "for string or arbitrary labels encode them first (numnet.preprocessing.label_encode)"
            )
    elif labels.dtype.kind not in "biu":
        raise ValueError(f"class labels must be integers 0..{n_classes - 1}, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= n_classes:
        bad = labels[(labels < 0) | (labels >= n_classes)][0]
        raise ValueError(
            f"class label {bad} is out of range: the network has {n_classes} outputs, so labels must be "
            f"0..{n_classes - 1}"
        )
    return labels


def as_sample_weights(weights, n_samples, dtype, name="sample_weight"):
    """Validate per-sample weights and return them as a float vector of shape (n_samples,), or None.

    Parameters
    ----------
    weights : array_like or None
        One non-negative, finite weight per sample; None weighs every sample equally. The losses divide by
        the weights' sum, so they need not be normalised.
    n_samples : int
        The number of rows X has.
    dtype : numpy dtype
    name : str, default "sample_weight"
        The argument's name, for the messages.

    Raises
    ------
    ValueError
        Wrong shape, NaN or infinity, negative weights, or weights that are all zero.
    """
    if weights is None:
        return None
    array = backend.as_numeric_array(weights, name)
    if array.ndim != 1 or array.shape[0] != n_samples:
        raise ValueError(f"{name} must have shape ({n_samples},), one weight per sample, got shape {array.shape}")
    backend.check_finite(array, name)
    if array.min() < 0:
        raise ValueError(f"{name} must be >= 0, got the value {array.min()}")
    if not array.any():
        raise ValueError(f"{name} is all zeros, which leaves nothing to train on; give some weight > 0")
    return np.ascontiguousarray(array, dtype=dtype)
