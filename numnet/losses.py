"""Loss functions (value and gradient), the fused softmax/sigmoid cross-entropies, and the LOSSES table.

Every loss is a mean over the batch: C = (1/n) Σ_i C_i, so a loss does not grow with the batch size and the
learning rate means the same thing for every batch size.

Targets reach a loss as a float matrix of shape (n_samples, n_outputs): one-hot rows for softmax
cross-entropy, 0/1 entries for binary cross-entropy, real values for mean squared error. The network
converts class indices to that form once, at the boundary of ``fit``.
"""

import numpy as np

from ._registry import lookup
from .backend import namespace, squared_norm

#: Smallest probability fed to a log when cross-entropy is evaluated from probabilities instead of logits
#: (only in :func:`log_loss`); the losses below work from logits and need no clipping.
PROBABILITY_FLOOR = 1e-15


class Loss:
    """Base class.

    A plain loss gives C(a, y) and dC/da from the network's output ``a``; the network multiplies by f'(z)
    (BP1). A fused loss (``fused_activation`` set) works from the logits ``z`` and gives dC/dz directly,
    because for its output activation the product collapses to (a - y) / n.
    """

    name = "loss"
    #: The output activation this loss is fused with, or None for a loss that works with any.
    fused_activation = None
    #: Whether the loss's outputs are class probabilities (classification) or real values (regression).
    is_classification = False

    def value(self, output, target):
        """The mean loss over the batch (a Python float).

        Parameters
        ----------
        output : ndarray, shape (n_samples, n_outputs)
            The network's output ``a``, or the logits ``z`` for a fused loss.
        target : ndarray, shape (n_samples, n_outputs)
        """
        raise NotImplementedError

    def gradient(self, output, target):
        """dC/da for a plain loss, or dC/dz for a fused loss (given the *activated* output ``a``)."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class MeanSquaredError(Loss):
    """Half the squared error, summed over outputs and averaged over samples.

    C = 1/(2n) Σ_i ||a_i - y_i||², so dC/da = (a - y) / n. The ½ (the convention of Nielsen's book and of
    scikit-learn's MLP) cancels the 2 of the derivative; for a single output C is half the usual MSE.
    """

    name = "mse"

    def value(self, output, target):
        residual = output - target
        return squared_norm(residual) / (2.0 * output.shape[0])

    def gradient(self, output, target):
        gradient = output - target
        gradient /= output.shape[0]
        return gradient


class SoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy from logits, fused with a softmax output.

    C = (1/n) Σ_i [logsumexp(z_i) - z_i · y_i] for one-hot (or any probability) rows y_i, which must sum to
    1 (the network's targets always do); written with the log-sum-exp so that logits of any size neither
    overflow nor lose the loss to log(0). Fused gradient: dC/dz = (softmax(z) - y) / n.
    """

    name = "softmax_cross_entropy"
    fused_activation = "softmax"
    is_classification = True

    def value(self, logits, target):
        xp = namespace(logits)
        row_max = xp.max(logits, axis=1, keepdims=True)
        with np.errstate(under="ignore"):  # e^(z - max) underflowing to 0 is the exact limit
            log_sum_exp = xp.log(xp.sum(xp.exp(logits - row_max), axis=1)) + row_max[:, 0]
        # Σ_i z_i · y_i as one dot product over the whole batch: the loss is evaluated at every step, and at
        # batch 32 each array call counts (benchmarks/NOTES.md, "cross-entropy as two sums").
        dot = xp.vecdot(xp.reshape(logits, (-1,)), xp.reshape(target, (-1,)))
        return (float(xp.sum(log_sum_exp)) - float(dot)) / logits.shape[0]

    def gradient(self, probabilities, target):
        delta = probabilities - target
        delta /= probabilities.shape[0]
        return delta


class SigmoidBinaryCrossEntropy(Loss):
    """Binary cross-entropy from logits, fused with a sigmoid output; one or several independent 0/1 outputs.

    C = (1/n) Σ_i Σ_k [max(z,0) - z·y + log(1 + e^{-|z|})]_{ik}, the stable form of
    -[y log σ(z) + (1-y) log(1-σ(z))]; summed over outputs (multi-label) and averaged over samples.
    Fused gradient: dC/dz = (σ(z) - y) / n.
    """

    name = "binary_cross_entropy"
    fused_activation = "sigmoid"
    is_classification = True

    def value(self, logits, target):
        xp = namespace(logits)
        with np.errstate(under="ignore"):  # e^-|z| underflowing to 0 is the exact limit
            softplus = xp.maximum(logits, 0.0) + xp.log1p(xp.exp(-xp.abs(logits)))
        return float(xp.sum(softplus - logits * target)) / logits.shape[0]

    def gradient(self, probabilities, target):
        delta = probabilities - target
        delta /= probabilities.shape[0]
        return delta


LOSSES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "squared_error": MeanSquaredError,
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "cross_entropy": SoftmaxCrossEntropy,
    "categorical_cross_entropy": SoftmaxCrossEntropy,
    "binary_cross_entropy": SigmoidBinaryCrossEntropy,
    "bce": SigmoidBinaryCrossEntropy,
    "log_loss": SigmoidBinaryCrossEntropy,
}

#: The loss each output activation implies when only the activation is given.
DEFAULT_LOSS_FOR_OUTPUT = {"softmax": "softmax_cross_entropy", "sigmoid": "binary_cross_entropy"}


def get_loss(name):
    """Return the loss called ``name`` (or ``name`` itself if it is a Loss).

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    return lookup(LOSSES, name, "loss", base=Loss)


def log_loss(probabilities, target):
    """Cross-entropy of predicted probabilities (n, K) against one-hot targets (n, K), averaged over samples.

    For reporting only (training uses the fused losses above, which work from logits); probabilities are
    floored at PROBABILITY_FLOOR because log(0) is -inf.
    """
    xp = namespace(probabilities)
    clipped = xp.clip(probabilities, PROBABILITY_FLOOR, 1.0)
    return float(-xp.sum(target * xp.log(clipped)) / probabilities.shape[0])
