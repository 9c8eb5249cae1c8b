"""Loss functions (value and gradient), the fused softmax/sigmoid cross-entropies, and the LOSSES table.

Every loss is a mean over the batch: C = (1/n) Σ_i C_i, so a loss does not grow with the batch size and the
learning rate means the same thing for every batch size.

Targets reach a loss as a float matrix of shape (n_samples, n_outputs): one-hot rows for softmax
cross-entropy, 0/1 entries for binary cross-entropy, real values for mean squared error, counts (>= 0) for
the Poisson deviance. The network converts class indices to that form once, at the boundary of ``fit``.
A sequence model's outputs (n_samples, time_steps, n_classes) take class indices (n_samples, time_steps)
instead (token ids: one-hot rows of a vocabulary would not fit in memory), and softmax cross-entropy is then
the mean over the tokens it counts (every target but ``ignore_index``).

Every loss also takes optional per-sample weights and is then a weighted mean over the batch (see Loss).
"""

import numpy as np

from ._registry import lookup
from .backend import holds_integers, namespace, squared_norm
from .validation import Integer, declare

#: Smallest probability fed to a log when cross-entropy is evaluated from probabilities instead of logits
#: (only in :func:`log_loss`); the losses below work from logits and need no clipping.
PROBABILITY_FLOOR = 1e-15


class Loss:
    """Base class.

    A plain loss gives C(a, y) and dC/da from the network's output ``a``; the network multiplies by f'(z)
    (BP1). A fused loss (``fused_activation`` set) works from the logits ``z`` and gives dC/dz directly,
    because for its output activation the product collapses to (a - y) / n.

    A subclass says what one sample costs (:meth:`sample_values`, C_i) and how that cost changes with the
    sample's output (:meth:`sample_gradients`, dC_i/da_i); the batch mean and its weighting are written
    once, here.

    Sample weights: ``value`` and ``gradient`` take optional per-sample ``weights`` w (shape (n_samples,), non-negative, on
    the output's backend). They need not be normalised: the loss becomes the weighted mean
    C = Σ_i w_i C_i / Σ_i w_i and its gradient row i is w_i / Σ_j w_j · dC_i/da_i, so weights of all ones,
    or all twos, give the plain mean, and an integer weight counts a sample that many times. A batch whose
    weights are all zero holds no sample: its loss and gradient are 0.
    """

    name = "loss"
    #: The name the playground's menu shows (its ``name`` where a class sets none).
    display_name = None
    #: The output activation this loss is fused with, or None for a loss that works with any.
    fused_activation = None
    #: Whether the loss's outputs are class probabilities (classification) or real values (regression).
    is_classification = False
    #: Whether targets must be >= 0 (a Poisson rate is never negative).
    needs_non_negative_targets = False

    def value(self, output, target, weights=None):
        """The mean loss over the batch, or the weighted mean Σ w_i C_i / Σ w_i (a Python float).

        Parameters
        ----------
        output : ndarray, shape (n_samples, n_outputs)
            The network's output ``a``, or the logits ``z`` for a fused loss.
        target : ndarray, shape (n_samples, n_outputs)
        weights : ndarray, shape (n_samples,), optional
            Non-negative sample weights (see the class docstring); None weighs every sample equally.
        """
        return weighted_mean(self.sample_values(output, target), weights)

    def value_from_forward(self, output, target, weights=None, log_normalizer=None):
        """:meth:`value` for the training forward pass just run, which may have computed part of it already:
        ``log_normalizer`` is log Σ_k e^{z_k} of each row of the logits when the output layer's softmax
        computed it on the way (``Layer.log_normalizer``), else None. A loss that has no use for it (this
        default) computes :meth:`value`."""
        return self.value(output, target, weights)

    def gradient(self, output, target, weights=None):
        """dC/da for a plain loss, or dC/dz for a fused loss (given the *activated* output ``a``).

        Returns a new array of shape (n_samples, n_outputs): row i is dC_i/da_i / n, or
        w_i / Σ w · dC_i/da_i with ``weights``.
        """
        return _mean_of_rows(self.sample_gradients(output, target), weights)

    def count(self, target, weights=None):
        """What the loss is a mean over, for weighting batches against each other (an epoch's loss, the
        data-parallel ranks' shares): the samples, or with ``weights`` the sum of their weights."""
        return target.shape[0] if weights is None else float(namespace(weights).sum(weights))

    def sample_values(self, output, target):
        """C_i for each sample, shape (n_samples,) (``output`` as in :meth:`value`)."""
        raise NotImplementedError

    def sample_gradients(self, output, target):
        """dC_i/da_i (dC_i/dz_i for a fused loss) for each sample, a new array of shape (n_samples, n_outputs)."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


def weighted_mean(values, weights=None):
    """(1/n) Σ_i v_i, or Σ_i w_i v_i / Σ_i w_i with weights (0 when every weight is 0); a Python float.

    Parameters
    ----------
    values : ndarray, shape (n_samples,)
    weights : ndarray, shape (n_samples,), optional
    """
    xp = namespace(values)
    if weights is None:
        return float(xp.sum(values)) / values.shape[0]
    return float(xp.vecdot(values, _shares(weights)))


def _shares(weights):
    """w_i / Σ w: each sample's share of a weighted mean (zeros for a batch of zero weights)."""
    xp = namespace(weights)
    total = float(xp.sum(weights))
    return weights / total if total > 0 else xp.zeros_like(weights)


def _mean_of_rows(per_sample, weights):
    """Scale per-sample rows (n, k) in place into the gradient of the (weighted) batch mean."""
    if weights is None:
        per_sample /= per_sample.shape[0]
    else:
        per_sample *= namespace(per_sample).reshape(_shares(weights), (-1, 1))
    return per_sample


class MeanSquaredError(Loss):
    """Half the squared error, summed over outputs and averaged over samples.

    C = 1/(2n) Σ_i ||a_i - y_i||², so dC/da = (a - y) / n. The ½ (the convention of Nielsen's book and of
    scikit-learn's MLP) cancels the 2 of the derivative; for a single output C is half the usual MSE.
    """

    name = "mse"
    display_name = "mean squared error"

    def value(self, output, target, weights=None):
        if weights is not None:
            return super().value(output, target, weights)
        residual = output - target
        return squared_norm(residual) / (2.0 * output.shape[0])  # one BLAS dot for the plain mean

    def sample_values(self, output, target):
        residual = output - target
        return namespace(residual).sum(residual * residual, axis=1) / 2.0

    def sample_gradients(self, output, target):
        return output - target


class SoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy from logits, fused with a softmax output.

    C = (1/n) Σ_i [logsumexp(z_i) - z_i · y_i] for one-hot (or any probability) rows y_i, which must sum to
    1 (the network's targets always do); written with the log-sum-exp so that logits of any size neither
    overflow nor lose the loss to log(0). Fused gradient: dC/dz = (softmax(z) - y) / n.

    Class-index targets: logits (n, ..., K) with integer targets (n, ...) (a sequence model's token ids)
    give the mean over the counted tokens, C = (1/N) Σ_{i,t} [logsumexp(z_it) - z_it[y_it]] with N the
    number of targets that are not ``ignore_index`` (those count for nothing: padding), and dC/dz_it =
    (softmax(z_it) - onehot(y_it)) / N. This is ``torch.nn.functional.cross_entropy(..., ignore_index=...)``.

    Parameters
    ----------
    ignore_index : int, default -1
        A class-index target equal to this counts for nothing.
    """

    name = "softmax_cross_entropy"
    display_name = "softmax cross-entropy"
    fused_activation = "softmax"
    is_classification = True

    @declare(ignore_index=Integer(minimum=-2 ** 63))
    def __init__(self, ignore_index=-1):
        self.ignore_index = ignore_index

    def count(self, target, weights=None):
        if not _class_indices(target):
            return super().count(target, weights)
        return float(namespace(target).sum(self._token_weights(target, weights)))

    def value(self, logits, target, weights=None):
        if weights is not None and not _class_indices(target, logits):
            return super().value(logits, target, weights)  # Σ w_i C_i / Σ w from sample_values
        return self._value(logits, target, weights, _log_sum_exp(logits))

    def value_from_forward(self, logits, target, weights=None, log_normalizer=None):
        # The softmax's own log Σ e^z (the same numbers), unless absent, or a subclass computes its own value,
        # or the weighted rows' path (sample_values) computes it.
        if (log_normalizer is None or type(self).value is not SoftmaxCrossEntropy.value
                or (weights is not None and not _class_indices(target, logits))):
            return self.value(logits, target, weights)
        return self._value(logits, target, weights, log_normalizer)

    def _value(self, logits, target, weights, log_sum_exp):
        """The loss of class-index targets, or of unweighted rows, from the logits and their log Σ_k e^{z_k}
        (one per row, or per position of a sequence)."""
        xp = namespace(logits)
        if _class_indices(target, logits):
            shares = self._token_shares(target, weights, logits.dtype)
            picked = _picked(logits, self._safe(target))
            return float(xp.sum(shares * (log_sum_exp - picked)))
        # Σ_i z_i · y_i as one dot product over the whole batch: the loss is evaluated at every step, and at
        # batch 32 each array call counts (benchmarks/NOTES.md, "cross-entropy as two sums").
        dot = xp.vecdot(xp.reshape(logits, (-1,)), xp.reshape(target, (-1,)))
        return (float(xp.sum(log_sum_exp)) - float(dot)) / logits.shape[0]

    def gradient(self, probabilities, target, weights=None):
        if not _class_indices(target, probabilities):
            # The base class's, named rather than found by super(): 0.2 µs a step (benchmarks/NOTES.md,
            # "per-step overhead of the digits step")
            return Loss.gradient(self, probabilities, target, weights)
        # dC/dz_it = (p_it - onehot(y_it)) · m_it·w_i / Σ m·w, m the counted tokens
        xp = namespace(probabilities)
        delta = probabilities - _one_hot(self._safe(target), probabilities.shape[-1], probabilities.dtype)
        delta *= xp.expand_dims(self._token_shares(target, weights, probabilities.dtype), axis=-1)
        return delta

    def sample_values(self, logits, target):
        return _log_sum_exp(logits) - namespace(logits).vecdot(logits, target, axis=-1)

    def sample_gradients(self, probabilities, target):
        return probabilities - target

    def _safe(self, target):
        """The targets with ``ignore_index`` replaced by class 0, so that every one can index the logits
        (their tokens' shares are 0, so the class they pick does not matter)."""
        xp = namespace(target)
        return xp.where(target == self.ignore_index, xp.zeros_like(target), target)

    def _token_weights(self, target, weights):
        """m_it·w_i for every target token (m: 1 where the target counts, 0 at ``ignore_index``), as floats."""
        xp = namespace(target)
        counted = xp.astype(target != self.ignore_index, xp.float64)
        if weights is not None:
            counted = counted * xp.reshape(xp.astype(weights, xp.float64), (-1,) + (1,) * (target.ndim - 1))
        return counted

    def _token_shares(self, target, weights, dtype):
        """Each token's share of the mean, m_it·w_i / Σ m·w (all zero when nothing counts), in ``dtype``
        (counted in float64, which is exact for any number of tokens a batch holds)."""
        xp = namespace(target)
        counted = self._token_weights(target, weights)
        total = float(xp.sum(counted))
        return xp.astype(counted / total if total > 0 else counted, dtype)


def _class_indices(target, outputs=None):
    """Whether ``target`` holds class indices (an integer array) rather than one-hot or probability rows.

    Targets whose dtype is the very dtype object of the (float) ``outputs`` are rows, and are known so
    without holds_integers: 0.4 µs less at each of a step's two calls (benchmarks/NOTES.md, "per-step
    overhead of the digits step")."""
    if outputs is not None and target.dtype is outputs.dtype:
        return False
    return holds_integers(target)


def _picked(logits, classes):
    """z_it[y_it]: each position's logit of its target class, shape ``classes.shape``."""
    xp = namespace(logits)
    return xp.take_along_axis(logits, xp.expand_dims(classes, axis=-1), axis=-1)[..., 0]


def _one_hot(classes, n_classes, dtype):
    """(…, n_classes) rows of zeros with a one at each class index."""
    xp = namespace(classes)
    return xp.astype(xp.expand_dims(classes, axis=-1) == xp.arange(n_classes), dtype)


def _log_sum_exp(logits):
    """log Σ_k e^{z_k} over the last axis, shape ``logits.shape[:-1]``, shifted by the maximum so it never
    overflows."""
    xp = namespace(logits)
    row_max = xp.max(logits, axis=-1, keepdims=True)
    with np.errstate(under="ignore"):  # e^(z - max) underflowing to 0 is the exact limit
        return xp.log(xp.sum(xp.exp(logits - row_max), axis=-1)) + row_max[..., 0]


class SigmoidBinaryCrossEntropy(Loss):
    """Binary cross-entropy from logits, fused with a sigmoid output; one or several independent 0/1 outputs.

    ``C = (1/n) Σ_i Σ_k [max(z,0) - z·y + log(1 + e^{-|z|})]_{ik}``, the stable form of
    ``-[y log σ(z) + (1-y) log(1-σ(z))]``; summed over outputs (multi-label) and averaged over samples.
    Fused gradient: dC/dz = (σ(z) - y) / n.
    """

    name = "binary_cross_entropy"
    display_name = "binary cross-entropy"
    fused_activation = "sigmoid"
    is_classification = True

    def value(self, logits, target, weights=None):
        if weights is not None:
            return super().value(logits, target, weights)
        return float(namespace(logits).sum(self._entries(logits, target))) / logits.shape[0]

    def sample_values(self, logits, target):
        return namespace(logits).sum(self._entries(logits, target), axis=1)

    @staticmethod
    def _entries(logits, target):
        xp = namespace(logits)
        with np.errstate(under="ignore"):  # e^-|z| underflowing to 0 is the exact limit
            softplus = xp.maximum(logits, 0.0) + xp.log1p(xp.exp(-xp.abs(logits)))
        return softplus - logits * target

    def sample_gradients(self, probabilities, target):
        return probabilities - target


class PoissonDeviance(Loss):
    """Half the Poisson deviance from log-rates, fused with an exponential output (the log link).

    For a predicted rate μ = e^z and a count y >= 0, one output costs y log(y/μ) - y + μ
    = e^z - y·z + [y log y - y], summed over outputs and averaged over samples: scikit-learn's "poisson"
    loss, and PyTorch's PoissonNLLLoss (μ - y log μ) plus the bracket, which does not depend on z and makes
    the loss 0 at μ = y (with 0 log 0 = 0). Fused gradient: dC/dz = (e^z - y) / n = (μ - y) / n.
    """

    name = "poisson"
    display_name = "Poisson deviance"
    fused_activation = "exp"
    needs_non_negative_targets = True

    def sample_values(self, logits, target):
        xp = namespace(logits)
        # y log y with 0 log 0 = 0, written so that log never sees a zero
        y_log_y = target * xp.log(xp.where(target > 0, target, xp.ones_like(target)))
        return xp.sum(xp.exp(logits) - target * logits + y_log_y - target, axis=1)

    def sample_gradients(self, rate, target):
        return rate - target


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
    "poisson": PoissonDeviance,
    "poisson_deviance": PoissonDeviance,
}

#: The loss each output activation implies when only the activation is given.
DEFAULT_LOSS_FOR_OUTPUT = {"softmax": "softmax_cross_entropy", "sigmoid": "binary_cross_entropy", "exp": "poisson"}


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
