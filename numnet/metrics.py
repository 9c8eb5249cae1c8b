"""Metrics: predictions from outputs, accuracy, perplexity, the confusion matrix and the per-class report.

One module for every way numnet scores a classifier, so that training (batch accuracy), the Network
(predict, accuracy), the plots (the confusion matrix) and the command line (the per-class report) count
the same way.
"""

import math

import numpy as np

from .backend import holds_integers, namespace
from .validation import check_integer

#: Probability above which a sigmoid output counts as class 1.
DECISION_THRESHOLD = 0.5
#: The largest x whose e^x a float holds (e^709.78 ≈ 1.8e308): perplexity is inf past it.
MAX_EXPONENT = math.log(np.finfo(np.float64).max)


def outputs_to_predictions(output, loss):
    """Turn network outputs into predictions (see :meth:`Network.predict`)."""
    xp = namespace(output)
    if loss.fused_activation == "softmax":
        return xp.argmax(output, axis=-1)  # a class per sample, or per time step of a sequence model
    if loss.fused_activation == "sigmoid":
        return xp.astype(output > DECISION_THRESHOLD, xp.int64)
    return output


def batch_accuracy(output, Y, loss):
    """Number of correctly classified rows of a batch, or tokens of a sequence model's batch (a count, not a
    fraction, so batches can be summed)."""
    xp = namespace(output)
    if loss.fused_activation == "softmax":
        predicted = xp.argmax(output, axis=-1)
        # Class indices per token (ignore_index counts for nothing); targets of the output's own dtype object
        # are rows, known so without holds_integers (0.25 µs of every step: benchmarks/NOTES.md, "per-step
        # overhead of the digits step").
        if Y.dtype is not output.dtype and holds_integers(Y):
            return int(xp.count_nonzero((predicted == Y) & (Y != loss.ignore_index)))
        return int(xp.count_nonzero(predicted == xp.argmax(Y, axis=-1)))
    return int(xp.count_nonzero(xp.all((output > DECISION_THRESHOLD) == (Y > DECISION_THRESHOLD), axis=1)))


def perplexity(mean_token_loss):
    """e to the mean cross-entropy per token (in nats): the number of equally likely tokens that would leave
    a model as unsure; inf once the loss is too large to exponentiate.

    A model that guesses uniformly among V tokens has perplexity V, so a language model that learnt anything
    scores below its vocabulary's size.

    Parameters
    ----------
    mean_token_loss : float
        The mean softmax cross-entropy per predicted token, without any penalty term.

    Returns
    -------
    float

    Examples
    --------
    >>> round(perplexity(math.log(28)), 6)  # a uniform guess among 28 characters
    28.0
    """
    return math.exp(mean_token_loss) if mean_token_loss < MAX_EXPONENT else math.inf


def predicted_classes(outputs):
    """Class indices (n,) from network outputs (n, k): argmax, or output > DECISION_THRESHOLD for a single output."""
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > DECISION_THRESHOLD).astype(np.int64)
    return outputs.argmax(axis=1)


def class_scores(outputs):
    """One score per class (n, K): the outputs, or (1 - p, p) for a single sigmoid output."""
    if outputs.shape[1] == 1:
        return np.column_stack([1.0 - outputs[:, 0], outputs[:, 0]])
    return outputs


def classification_metrics(y_true, y_pred, n_classes):
    """Per-class precision, recall, F1 and support, computed from the confusion matrix.

    Parameters
    ----------
    y_true, y_pred : array_like of int, shape (n_samples,)
    n_classes : int

    Returns
    -------
    dict of str to numpy.ndarray, each of shape (n_classes,)
        "precision" (correct / predicted as the class), "recall" (correct / truly of the class), "f1" (their
        harmonic mean) and "support" (samples truly of the class). A ratio with a zero denominator is 0, as
        in scikit-learn's ``zero_division=0``.
    """
    counts = confusion_matrix(y_true, y_pred, n_classes)  # (K, K), rows true, columns predicted
    correct = np.diag(counts).astype(np.float64)
    predicted, support = counts.sum(axis=0), counts.sum(axis=1)
    precision = np.divide(correct, predicted, out=np.zeros(n_classes), where=predicted > 0)
    recall = np.divide(correct, support, out=np.zeros(n_classes), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(n_classes), where=both > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def classification_report(y_true, y_pred, class_names):
    """A text table of :func:`classification_metrics`, with accuracy and the macro and weighted averages."""
    metrics = classification_metrics(y_true, y_pred, len(class_names))
    support = metrics["support"]
    width = max(12, *(len(name) for name in class_names))
    lines = [f"{'':>{width}}  precision     recall   f1-score    support", ""]
    for index, name in enumerate(class_names):
        lines.append(_report_line(name, width, *(metrics[key][index] for key in ("precision", "recall", "f1")),
                                  support[index]))
    total = int(support.sum())
    accuracy = float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if total else 0.0
    lines += ["", f"{'accuracy':>{width}}  {'':>9}  {'':>9}  {accuracy:9.3f}  {total:9d}"]
    weights = support / total if total else np.zeros_like(support, dtype=np.float64)
    for label, average in (("macro avg", np.mean), ("weighted avg", lambda v: float(np.sum(v * weights)))):
        values = [average(metrics[key]) for key in ("precision", "recall", "f1")]
        lines.append(_report_line(label, width, *values, total))
    return "\n".join(lines)


def _report_line(label, width, precision, recall, f1, support):
    """One row of the classification report."""
    return f"{label:>{width}}  {precision:9.3f}  {recall:9.3f}  {f1:9.3f}  {int(support):9d}"


def confusion_matrix(y_true, y_pred, n_classes=None):
    """Count how often each true class was predicted as each class.

    Parameters
    ----------
    y_true, y_pred : array-like, shape (n_samples,) or (n_samples, n_classes)
        Class indices, or one-hot / probability rows (their argmax is used).
    n_classes : int, optional
        The number of classes K; defaults to the largest index in either array plus one.

    Returns
    -------
    numpy.ndarray of int64, shape (K, K)
        Entry [i, j] counts the samples of true class i predicted as class j (rows true, columns predicted).

    Raises
    ------
    ValueError
        If the arrays differ in length, hold something other than non-negative integers, or an index is
        not below ``n_classes``.

    Examples
    --------
    >>> confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2])
    array([[1, 0, 0],
           [0, 1, 1],
           [0, 0, 1]])
    """
    true = as_class_indices(y_true, "y_true")
    predicted = as_class_indices(y_pred, "y_pred")
    if true.size != predicted.size:
        raise ValueError(
            f"y_true has {true.size} labels but y_pred has {predicted.size}; they must match one to one"
        )
    n_classes = _check_n_classes(n_classes, true, predicted)
    # Each (true, predicted) pair gets its own bin true * K + predicted; reshaping the K*K counts to (K, K)
    # puts the true class on the rows.
    counts = np.bincount(true * n_classes + predicted, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def _check_n_classes(n_classes, true, predicted):
    """``n_classes`` checked against the labels, or inferred from them when None."""
    largest = int(max(true.max(initial=-1), predicted.max(initial=-1)))
    if n_classes is None:
        if largest < 0:
            raise ValueError("the labels are empty, so the number of classes is unknown; pass n_classes")
        return largest + 1
    check_integer(n_classes, "n_classes", minimum=1, meaning="classes")
    if largest >= n_classes:
        raise ValueError(
            f"the labels contain class index {largest}, but n_classes={n_classes} allows only "
            f"0..{n_classes - 1}; pass n_classes={largest + 1} or fix the labels"
        )
    return int(n_classes)


def _as_float_array(values, name):
    """``values`` as a float64 NumPy array, with a TypeError naming the argument when it is not numeric."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array-like; got {type(values).__name__}") from None


def as_class_indices(values, name):
    """Class labels as a 1-D int array; one-hot or probability rows (n, K) become their argmax."""
    array = _as_float_array(values, name)
    if array.ndim == 2 and array.shape[1] > 1:
        array = array.argmax(axis=1)
    elif array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{name} must hold one class index per sample, shape (n_samples,); got shape {array.shape}"
        )
    if array.size and (not np.all(np.isfinite(array)) or np.any(array != np.round(array)) or array.min() < 0):
        raise ValueError(
            f"{name} must hold non-negative integer class indices (0, 1, ..., K-1); "
            f"got values such as {array[:5].tolist()}"
        )
    return array.astype(np.int64)
