"""One training step, the same for every loop: ``fit``, the scikit-learn estimators and the learning-rate
finder all train a batch by calling :class:`TrainingStep`.

A step is a training forward pass and a backward pass on one batch (the penalty included), the
data-parallel average of the gradients, the clipping of their global norm (when asked), and the optimiser's
update. What differs between the loops is a
choice each passes in, never a copy of the step:

- where Dropout's masks come from (``rng``);
- a penalty scaled by each batch's size (scikit-learn divides ``alpha`` by it; the network's own ``l2``
  and ``l1`` are not);
- a :class:`Guard`, which sees the batch's loss before the update and the weights after it: ``fit``'s
  undoes a diverging step and raises, and records the History and the doctor's evidence; the finder's
  stops at a diverging loss; the estimators keep scikit-learn's behaviour (no guard).

The loss of an epoch is the mean of its batches' losses weighted by what each loss counts (its samples,
or their weights' sum): :class:`EpochLoss`.
"""

import math

from .backend import squared_norm
from .distributed import SingleProcess
from .inputs import count_rows

#: Added to the global norm before dividing by it, as ``torch.nn.utils.clip_grad_norm_`` does, so that a zero
#: gradient is never divided by zero (and the two clip the same gradients by the same factor).
CLIP_EPSILON = 1e-6


def clip_by_global_norm(gradients, max_norm):
    """Scale ``gradients`` (the flat buffer of every parameter's gradient) in place so that their global
    norm ‖g‖₂ is at most ``max_norm``: g ← g · max_norm / (‖g‖ + ε) when that factor is below 1, as
    ``torch.nn.utils.clip_grad_norm_`` does. Returns the norm before clipping.

    A recurrent network's gradient can grow exponentially through time ("Deep Learning from Scratch 2",
    chapter 6): rescaling the whole gradient keeps its direction and bounds the step.
    """
    norm = math.sqrt(squared_norm(gradients))
    scale = max_norm / (norm + CLIP_EPSILON)
    if scale < 1.0:  # also for an infinite norm (scale 0), as PyTorch's clamp does
        gradients *= scale
    return norm


class Guard:
    """What a loop does around the update; this base approves every update and keeps nothing."""

    def approve(self, loss):
        """Whether to update the weights after a batch whose loss (over every rank) is ``loss``; may raise
        instead (fit's divergence guard)."""
        return True

    def previous_parameters(self):
        """An array shaped like the flat parameters that receives them as they were before the update, or
        None when nobody keeps them."""
        return None

    def after_update(self, loss, previous):
        """Called after the update with the batch's loss and ``previous`` (the weights before it, or None)."""


class TrainingStep:
    """Train ``network`` (its optimiser set) on one batch at a time.

    Parameters
    ----------
    network : Network
    communicator : numnet.distributed communicator, optional
        The data-parallel ranks whose gradients are averaged (default: this process alone).
    batch_scaled_l2 : float, default 0.0
        An L2 penalty of strength ``batch_scaled_l2 / Σw`` per batch (Σw: the batch's samples, or the sum
        of their weights), on top of the network's own ``l2``: scikit-learn's ``alpha``.
    guard : Guard, optional
        The loop's policy around each update (:class:`Guard`).
    clip_norm : float, optional
        Clip the global norm of the gradient to this after it is complete (after the data-parallel
        average) and before the update (:func:`clip_by_global_norm`).

    Attributes
    ----------
    gradient_norm : float or None
        With ``clip_norm``: the global norm of the last step's gradient, before clipping.
    clipped : bool
        Whether the last step's gradient was clipped.
    """

    def __init__(self, network, *, communicator=None, batch_scaled_l2=0.0, guard=None, clip_norm=None):
        self.network = network
        self.communicator = communicator if communicator is not None else SingleProcess()
        self.batch_scaled_l2 = float(batch_scaled_l2)
        self.guard = guard if guard is not None else Guard()
        self.clip_norm = clip_norm
        self.gradient_norm = None
        self.clipped = False
        # What the optimiser's rule needs to know of the parameters (AdamW: which ones decay), for every loop.
        network.optimizer.bind(network)

    def __call__(self, X, Y, weights=None, *, rng=None, counts=None):
        """Train on the prepared batch (X, Y) (this rank's shard of it) and return its loss before the update.

        Parameters
        ----------
        X, Y : arrays on the network's backend, as the network prepares them
        weights : array, shape (n,), optional
            Prepared sample weights: the loss and gradient become their weighted mean.
        rng : numpy.random.Generator, optional
            Dropout's masks for this step.
        counts : tuple (share, whole), optional
            With several ranks: this shard's count and the global batch's (samples or weight sums), which
            weight each rank's mean in the global one (numnet.distributed).

        Returns
        -------
        float or None
            The loss of the (global) batch, penalty included; None when the guard refused the update.
        """
        network = self.network
        loss = network.loss_and_gradients(X, Y, rng, weights=weights)
        if self.batch_scaled_l2:
            batch_weight = count_rows(X) if weights is None else float(weights.sum())
            loss += network.add_penalty(l2=self.batch_scaled_l2 / batch_weight)
        if counts is not None:
            loss = self.communicator.combine_gradients(network.flat_gradients, loss, *counts)
        if not self.guard.approve(loss):
            return None
        if self.clip_norm is not None:
            self.gradient_norm = clip_by_global_norm(network.flat_gradients, self.clip_norm)
            self.clipped = self.gradient_norm + CLIP_EPSILON > self.clip_norm
        previous = self.guard.previous_parameters()
        network.optimizer.step(network.flat_parameters, network.flat_gradients, previous=previous)
        network.iterations_trained += 1
        self.guard.after_update(loss, previous)
        return loss


class EpochLoss:
    """The mean loss of an epoch's batches, each weighted by what its loss counts (samples, or weights)."""

    def __init__(self):
        self.total = 0.0
        self.count = 0.0

    def add(self, loss, count):
        self.total += loss * count
        self.count += count

    @property
    def mean(self):
        """The weighted mean (0.0 before any batch counted anything)."""
        return self.total / self.count if self.count else 0.0
