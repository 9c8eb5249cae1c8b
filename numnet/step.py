"""One training step, the same for every loop: ``fit``, the scikit-learn estimators and the learning-rate
finder all train a batch by calling :class:`TrainingStep`.

A step is a training forward pass and a backward pass on one batch (the penalty included), the
data-parallel average of the gradients, and the optimiser's update. What differs between the loops is a
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

from .distributed import SingleProcess


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
    """

    def __init__(self, network, *, communicator=None, batch_scaled_l2=0.0, guard=None):
        self.network = network
        self.communicator = communicator if communicator is not None else SingleProcess()
        self.batch_scaled_l2 = float(batch_scaled_l2)
        self.guard = guard if guard is not None else Guard()

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
            batch_weight = X.shape[0] if weights is None else float(weights.sum())
            loss += network.add_penalty(l2=self.batch_scaled_l2 / batch_weight)
        if counts is not None:
            loss = self.communicator.combine_gradients(network.flat_gradients, loss, *counts)
        if not self.guard.approve(loss):
            return None
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
