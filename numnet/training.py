"""The training loop: batching, one epoch, evaluation, the stopping decisions, and the History it records."""

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .backend import get_backend, namespace
from .distributed import BatchContext, get_communicator
from .errors import DivergenceError
from .evidence import TrainingMonitor, probe_rows
from .inputs import count_rows, is_multiple, take_rows
from .metrics import batch_accuracy, perplexity
from .optimizers import get_optimizer
from .step import EpochLoss, Guard, TrainingStep
from .targets import as_sample_weights
from .validation import Boolean, Integer, OneOf, Optional, Real, declare

SAMPLING_MODES = ("epoch", "replacement")
#: The entropy key of Dropout's random stream, beside (seed, epoch) of the batch order: the masks of step t
#: come from default_rng([seed, DROPOUT_STREAM, t]), a stream no batch order can share.
DROPOUT_STREAM = 0x64726F70  # "drop"
#: A loss that grows past this factor of its first value (at least 1) counts as diverging, like
#: gradcheck.gradient_descent's rule: no sound run multiplies its loss by a million.
DIVERGENCE_GROWTH = 1e6


@dataclass
class History:
    """What a call to ``fit`` recorded.

    Attributes
    ----------
    iteration_loss : list of float
        The loss of every mini-batch (L2 term included), measured before that batch's update.
    epoch_loss : list of float
        The mean of ``iteration_loss`` over each epoch, each batch weighted by what its loss counts (its
        samples, or with sample weights their sum): a short last batch counts for what it holds.
    val_loss : list of float
        The loss on the validation data after each epoch (empty without validation data).
    accuracy : list of float
        Training accuracy per epoch, counted over the epoch's mini-batches as they were seen
        (classification losses only; empty for regression).
    val_accuracy : list of float
        Validation accuracy after each epoch (classification with validation data only).
    gradient_mean_abs : dict of str to list of float
        For every weight matrix, by parameter name ("dense_0.W"), the mean absolute gradient at every
        iteration: the curve that shows vanishing gradients.
    learning_rate : list of float
        The learning rate used at each epoch's first iteration.
    update_ratio : dict of str to list of float
        With ``fit(diagnose=True)``: for every weight, the update-to-weight ratio ‖ΔW‖/‖W‖ of every step.
    gradient_norm : list of float
        With ``fit(diagnose=True)``: the norm ‖g‖ of the whole gradient at every step.
    clipped_fraction : list of float
        With ``fit(clip_norm=...)``: the fraction of each epoch's steps whose gradient was clipped.
    perplexity, val_perplexity : list of float
        For a loss over tokens (a sequence model's softmax cross-entropy): e to the mean loss per token of
        each epoch's training batches and of the validation data, without the penalty term.
    time_gradient_growth : dict of str to list of float
        With ``fit(diagnose=True)``: per recurrent layer, after every epoch, the factor by which a gradient
        grows (> 1) or shrinks (< 1) per step as it flows back through time (numnet.evidence).
    dead_units, saturated_units : dict of str to list of float
        With ``fit(diagnose=True)``: per layer whose activation can die (relu), the fraction of units zero on
        every probe row, and per layer whose activation saturates (sigmoid, tanh) the fraction of (unit,
        probe row) pairs on its flat tails, where the derivative is under a tenth of its maximum, after every
        epoch (numnet.evidence.dead_fraction and saturated_fraction; numnet 0.2.0 counted the units under 1% of
        the maximum on over 90% of the rows).
    """

    iteration_loss: list = field(default_factory=list)
    epoch_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    gradient_mean_abs: dict = field(default_factory=dict)
    learning_rate: list = field(default_factory=list)
    update_ratio: dict = field(default_factory=dict)
    gradient_norm: list = field(default_factory=list)
    clipped_fraction: list = field(default_factory=list)
    perplexity: list = field(default_factory=list)
    val_perplexity: list = field(default_factory=list)
    dead_units: dict = field(default_factory=dict)
    saturated_units: dict = field(default_factory=dict)
    time_gradient_growth: dict = field(default_factory=dict)

    @property
    def epochs(self):
        """Number of epochs recorded."""
        return len(self.epoch_loss)

    @property
    def iterations(self):
        """Number of optimiser steps recorded."""
        return len(self.iteration_loss)

    def to_dict(self):
        """A plain dict of lists (JSON-ready), for saving."""
        data = {name: list(getattr(self, name)) for name in _CURVES}
        data.update({table: {name: list(values) for name, values in getattr(self, table).items()}
                     for table in _NAMED_CURVES})
        return data

    @classmethod
    def from_dict(cls, data):
        """The inverse of :meth:`to_dict`; a field an older numnet did not save comes back empty."""
        history = cls(**{name: [float(v) for v in data.get(name, [])] for name in _CURVES})
        for table in _NAMED_CURVES:
            setattr(history, table, {str(name): [float(v) for v in values]
                                     for name, values in data.get(table, {}).items()})
        return history

    def lengths(self):
        """How many values each curve holds now: a mark to pass to :meth:`since` later."""
        marks = {name: len(getattr(self, name)) for name in _CURVES}
        marks.update({table: {name: len(values) for name, values in getattr(self, table).items()}
                      for table in _NAMED_CURVES})
        return marks

    def since(self, marks):
        """A new History holding only what was recorded after ``marks`` (from :meth:`lengths`)."""
        recent = History(**{name: list(getattr(self, name)[marks.get(name, 0):]) for name in _CURVES})
        for table in _NAMED_CURVES:
            start = marks.get(table, {})
            setattr(recent, table, {name: list(values[start.get(name, 0):])
                                    for name, values in getattr(self, table).items()})
        return recent

    def drop_last_iteration(self, gradients_recorded=True):
        """Forget the latest step's records (a step the divergence guard undid); its gradient magnitudes
        too when that step recorded them."""
        if self.iteration_loss:
            self.iteration_loss.pop()
        if gradients_recorded:
            for values in self.gradient_mean_abs.values():
                if values:
                    values.pop()

    def drop_last_epoch(self):
        """Forget the latest epoch's records (an epoch whose last step was undone)."""
        n_epochs = len(self.epoch_loss)
        for name in _EPOCH_CURVES:  # every per-epoch curve that holds a value for that epoch
            values = getattr(self, name)
            if n_epochs and len(values) == n_epochs:
                values.pop()

    def extend(self, other):
        """Append another History (a resumed run) to this one, in place."""
        for name in _CURVES:
            getattr(self, name).extend(getattr(other, name))
        for table in _NAMED_CURVES:
            for name, values in getattr(other, table).items():
                getattr(self, table).setdefault(name, []).extend(values)
        return self


@dataclass
class EpochReport:
    """What the progress callback receives after each epoch."""

    epoch: int
    epochs: int
    loss: float
    accuracy: float = None
    val_loss: float = None
    val_accuracy: float = None
    seconds: float = 0.0
    learning_rate: float = 0.0
    #: For a loss over tokens (History.perplexity): the epoch's training and validation perplexity.
    perplexity: float = None
    val_perplexity: float = None

    def line(self):
        """A one-line summary, e.g. for a log."""
        parts = [f"epoch {self.epoch}/{self.epochs}", f"loss {self.loss:.4f}"]
        if self.accuracy is not None:
            parts.append(f"accuracy {self.accuracy:.4f}")
        if self.perplexity is not None:
            parts.append(f"perplexity {self.perplexity:.4g}")
        if self.val_loss is not None:
            parts.append(f"val_loss {self.val_loss:.4f}")
        if self.val_accuracy is not None:
            parts.append(f"val_accuracy {self.val_accuracy:.4f}")
        if self.val_perplexity is not None:
            parts.append(f"val_perplexity {self.val_perplexity:.4g}")
        parts.append(f"{self.seconds:.2f}s")
        return "  ".join(parts)


#: The History's per-epoch curves, its plain curves (those and the per-step ones), and its tables of curves
#: by parameter or layer name.
_EPOCH_CURVES = ("epoch_loss", "val_loss", "accuracy", "val_accuracy", "learning_rate", "clipped_fraction",
                 "perplexity", "val_perplexity")
_CURVES = ("iteration_loss", *_EPOCH_CURVES, "gradient_norm")
_NAMED_CURVES = ("gradient_mean_abs", "update_ratio", "dead_units", "saturated_units", "time_gradient_growth")


@dataclass
class TrainingData:
    """Validated training (and validation) arrays, converted once to the model's dtype and backend."""

    X: np.ndarray
    Y: np.ndarray
    X_val: np.ndarray = None
    Y_val: np.ndarray = None
    #: Per-sample weights of the training and validation rows, shape (n,); None: every sample weighs 1.
    weights: np.ndarray = None
    val_weights: np.ndarray = None

    @property
    def n_samples(self):
        return self.Y.shape[0]  # X's rows (X may be a tuple of arrays), asked at every step

    @property
    def has_validation(self):
        return self.X_val is not None


@declare(epochs=Optional(Integer()), iterations=Optional(Integer()),
         batch_size=Optional(Integer(meaning="or None for the whole training set")),
         learning_rate=Optional(Real(above=0)), shuffle=Boolean(), sampling=OneOf(*SAMPLING_MODES),
         validation_split=Real(at_least=0, below=1), seed=Optional(Integer(0)), record_gradients=Boolean(),
         patience=Optional(Integer()), tolerance=Real(at_least=0), restore_best=Boolean(), verbose=Boolean(),
         diagnose=Boolean(), clip_norm=Optional(Real(above=0)), steps_per_epoch=Optional(Integer()))
def fit(network, X, y, *, sample_weight=None, epochs=None, iterations=None, batch_size=32, optimizer=None,
        learning_rate=None, shuffle=True, sampling="epoch", validation_data=None, validation_split=0.0,
        seed=None, record_gradients=True, patience=None, tolerance=1e-4, restore_best=False, progress=None,
        verbose=False, distributed=None, diagnose=False, clip_norm=None, steps_per_epoch=None):
    """Train ``network`` on (X, y) by mini-batch gradient descent and return a :class:`History`.

    Parameters
    ----------
    network : Network
    X : array_like, shape (n_samples, n_features), or ``(n_samples, *input_shape)`` for image networks
    y : array_like
        Class indices or one-hot rows for softmax, 0/1 labels for sigmoid, real values for regression.
    sample_weight : array_like, shape (n_samples,), optional
        Non-negative weights: every batch's loss and gradient become the weighted mean Σ w_i C_i / Σ w_i
        over its samples (so integer weights equal repeated samples for full-batch training), and so does
        the validation loss of a ``validation_split``. Accuracies still count samples.
    epochs : int, optional
        Passes over the data. Give ``epochs`` or ``iterations`` (default: 10 epochs).
    iterations : int, optional
        Total optimiser steps instead of epochs (the last epoch may be partial).
    batch_size : int or None, default 32
        Samples per step; None means the whole training set (full-batch gradient descent).
    optimizer : str or Optimizer, optional
        Default: the network's optimiser from an earlier fit, its kind and state kept (training continues),
        else "adam".
    learning_rate : float, optional
        With ``optimizer`` a name: that optimiser's learning rate instead of its default. Without
        ``optimizer``, on a network trained before: the rate its optimiser continues at (its kind and
        state are kept). Ignored with an Optimizer instance, which carries its own.
    shuffle : bool, default True
        With ``sampling="epoch"``: visit the samples in a new random order each epoch.
    sampling : {"epoch", "replacement"}, default "epoch"
        "epoch": each epoch visits every sample once. "replacement": each step draws ``batch_size``
        samples at random with replacement (an epoch is then ``steps_per_epoch`` steps).
    validation_data : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
    validation_split : float in [0, 1), default 0.0
        Hold out this random fraction of (X, y) for validation (ignored with ``validation_data``).
    seed : int, optional
        Seeds the batches, the validation split and Dropout's masks. Epoch k's order depends only on
        (seed, k) and step t's masks only on (seed, t), each from a stream of its own, so a run resumed
        from a checkpoint sees exactly the batches and masks it would have seen.
    record_gradients : bool, default True
        Record the mean absolute gradient of every weight matrix at every step (History.gradient_mean_abs).
    patience : int, optional
        Early stopping: stop when the monitored loss (validation loss if there is validation data,
        else the epoch's training loss) has not improved by ``tolerance`` for ``patience`` epochs.
    tolerance : float, default 1e-4
    restore_best : bool, default False
        End with the weights and layer state (BatchNorm's running statistics) of the epoch whose monitored
        loss was best (improving by at least ``tolerance``), with or without ``patience``.
    progress : callable, optional
        Called with an :class:`EpochReport` after every epoch.
    verbose : bool, default False
        Print one line per epoch.
    distributed : bool or communicator, optional
        True: data-parallel training over MPI (run under ``mpirun -n N``; see numnet.distributed). Every
        rank must call fit with the same data and options; each reads only its shard of every global batch
        of ``batch_size`` samples, and all ranks end with the same weights.
    diagnose : bool, default False
        Also record the evidence :func:`numnet.diagnose` reads (numnet.evidence.TrainingMonitor): the
        update-to-weight ratio of every weight and the gradient norm at every step, and the dead and
        saturated units of every relu, sigmoid and tanh layer after every epoch. Off, it costs nothing.
    clip_norm : float, optional
        Clip the global norm of the gradient over every parameter to this, after the gradient is complete
        (after the data-parallel average) and before the optimiser, as ``torch.nn.utils.clip_grad_norm_``
        does (numnet.step.clip_by_global_norm); ``History.clipped_fraction`` records how often it clipped.
        With ``diagnose``, ``History.gradient_norm`` holds the norms before clipping.
    steps_per_epoch : int, optional
        With ``sampling="replacement"``: the steps between two ends of epoch (the History's epoch records,
        validation, ``progress``, early stopping), nanoGPT's ``eval_interval``; default ceil(n_samples /
        batch_size).

    Returns
    -------
    History

    Raises
    ------
    ValueError
        For bad data or options (the message names the problem), including a batch too small for a
        BatchNorm layer (a last batch of one sample).
    DivergenceError
        When the loss becomes NaN or infinite, or grows past DIVERGENCE_GROWTH times its first value (at
        least 1), or the final weights give such a loss: the network keeps the last weights (and layer
        state) whose loss was finite, and its History holds exactly the steps it kept (the optimiser's
        moment estimates keep the undone step: start a new optimiser to retrain).
    """
    # Resolved first: the validation split must come from the same recorded seed as the batches, or a
    # second fit would hold out different samples and train on the first fit's validation set.
    seed = _resolve_seed(network, seed)
    data = _prepare_data(network, X, y, sample_weight, validation_data, validation_split, seed)
    batch_size = _resolve_batch_size(batch_size, data.n_samples)
    steps_per_epoch = _resolve_steps_per_epoch(steps_per_epoch, sampling, data.n_samples, batch_size)
    total_steps = _resolve_total_steps(epochs, iterations, steps_per_epoch)
    _check_batches_fit_the_layers(network, data.n_samples, batch_size, sampling)
    _check_stateful_batches(network, data.n_samples, batch_size, shuffle, sampling)
    network.optimizer = _resolve_optimizer(network, optimizer, learning_rate)
    run = _Run(network, data, batch_size=batch_size, sampling=sampling, shuffle=shuffle,
               seed=seed, record_gradients=record_gradients, communicator=get_communicator(distributed),
               diagnose=diagnose, clip_norm=clip_norm)
    stopper = _EarlyStopping(patience, tolerance, restore_best, network) \
        if patience is not None or restore_best else None
    n_epochs = math.ceil(total_steps / steps_per_epoch)
    try:
        for epoch in range(n_epochs):
            steps = min(steps_per_epoch, total_steps - epoch * steps_per_epoch)
            report = run.epoch(steps, n_epochs)
            if verbose:
                print(report.line(), flush=True)
            if progress is not None:
                progress(report)
            # A schedule that watches progress (ReduceOnPlateau) hears the monitored loss, and may end training.
            monitored = report.val_loss if report.val_loss is not None else report.loss
            schedule_stops = network.optimizer.schedule.end_epoch(monitored, network.optimizer.learning_rate)
            if (stopper is not None and stopper.should_stop(report)) or schedule_stops:
                break
        if stopper is not None:
            stopper.finish()
        run.check_final_weights()
    finally:
        run.detach()
    return network.history.since(run.start_marks)


def _check_batches_fit_the_layers(network, n_samples, batch_size, sampling):
    """Refuse, before the first step, a batch that a layer cannot train on (BatchNorm on a batch of one)."""
    last_batch = batch_size if sampling == "replacement" else n_samples - batch_size * (n_samples // batch_size)
    smallest = min(batch_size, last_batch or batch_size)
    shapes = [network.input_shape, *network.output_shapes[:-1]]
    for layer, input_shape in zip(network.layers, shapes):
        needed = layer.min_batch_size(input_shape)
        if smallest < needed:
            which = "every batch" if smallest == batch_size else "the last batch of each epoch"
            raise ValueError(
                f"layer {layer.name} ({type(layer).__name__}) needs at least {needed} samples in a training batch, "
                f"but {which} holds {smallest} ({n_samples} samples in batches of {batch_size}); choose a "
                f"batch_size that leaves no batch of {smallest} (e.g. {_batch_size_without_singles(n_samples, batch_size)}), "
                "or drop a sample"
            )


def _check_stateful_batches(network, n_samples, batch_size, shuffle, sampling):
    """A stateful layer carries row i of each batch into row i of the next: the batches must come in order
    and all hold the same number of rows (truncated backpropagation through time)."""
    if not network.is_stateful:
        return
    if shuffle or sampling != "epoch":
        raise ValueError("a stateful layer carries each row's state into the same row of the next batch, so the "
                         "batches must come in order: fit(..., shuffle=False) (lay the data out with "
                         "numnet.text's parallel streams)")
    if n_samples % batch_size:
        raise ValueError(f"a stateful layer needs every batch to hold the same number of rows, but {n_samples} "
                         f"samples in batches of {batch_size} leave a last batch of {n_samples % batch_size}; use "
                         f"a batch_size that divides {n_samples}, or drop the last rows")


def _batch_size_without_singles(n_samples, batch_size):
    """The nearest batch size above ``batch_size`` whose last batch is not a single sample."""
    for candidate in range(max(batch_size, 2), n_samples + 1):
        if n_samples % candidate != 1:
            return candidate
    return n_samples


class _Run(Guard):
    """The state of one call to fit: data, batching, the History being filled, and the guard of its training
    steps (numnet.step): a diverging step is undone and raises, every kept step is recorded."""

    def __init__(self, network, data, *, batch_size, sampling, shuffle, seed, record_gradients, communicator,
                 diagnose=False, clip_norm=None):
        self.network = network
        self.communicator = communicator
        self.data = data
        self.batch_size = batch_size
        self.sampling = sampling
        self.shuffle = shuffle
        self.seed = seed
        self.record_gradients = record_gradients
        # Recorded straight into the network's History, so a checkpoint saved between epochs holds all of
        # it; fit returns the part this call added.
        if network.history is None:
            network.history = History()
        self.history = network.history
        self.start_marks = self.history.lengths()
        self.steps_taken = 0
        self.steps_done_in_epoch = 0
        self.last_batch = None
        # The weights and layer state before the latest step: restored if that step diverged.
        xp = namespace(network.flat_parameters)
        self.last_good_parameters = xp.empty_like(network.flat_parameters)
        self.last_good_state = xp.empty_like(network.flat_state)
        self.weight_gradients = [(name, network.gradients()[name]) for name in network.weight_names()]
        if record_gradients:
            for name, _ in self.weight_gradients:
                self.history.gradient_mean_abs.setdefault(name, [])
        # Every layer sees where this process's rows sit in each global batch (Dropout, BatchNorm).
        self.context = BatchContext(communicator)
        for layer in network.layers:
            layer.context = self.context
        self.train_step = TrainingStep(network, communicator=communicator, guard=self, clip_norm=clip_norm)
        self.counts_tokens = network.counts_tokens  # the data's shapes are fixed by now; asked at every step
        self.last_good_carried = {}  # a stateful network's carried state before the latest step
        self.monitor = None
        if diagnose:
            X_probe = take_rows(network.backend, data.X, probe_rows(data.n_samples, seed))
            self.monitor = TrainingMonitor(network, self.history, X_probe)

    def detach(self):
        """Leave the network as it was outside fit: no caches, no batch context."""
        self.network.clear_caches()
        for layer in self.network.layers:
            layer.context = None

    def epoch(self, steps, n_epochs):
        """Run ``steps`` optimiser steps and the end-of-epoch evaluation; returns an EpochReport."""
        network, history = self.network, self.history
        epoch_index = network.epochs_trained
        rng = np.random.default_rng([self.seed, epoch_index])
        started = time.perf_counter()
        learning_rate = network.optimizer.current_learning_rate
        epoch_loss, correct, seen, clipped = EpochLoss(), 0, 0, 0
        self.steps_done_in_epoch = 0
        data_loss = EpochLoss()  # without the penalty: perplexity's exponent
        # Asked once an epoch, not at every step: at batch 32 of the digits each property call counts
        counts_tokens, needs_rng, stateful = self.counts_tokens, network.needs_rng, network.is_stateful
        classifier = network.is_classifier
        for indices in self._batches(rng, steps):
            X_batch, Y_batch, weights = self._take_shard(indices)
            rows = Y_batch.shape[0]  # X_batch's (X may be a tuple of arrays)
            # Dropout's masks: a stream of their own, keyed on the step, so batches and masks never interfere.
            masks = np.random.default_rng([self.seed, DROPOUT_STREAM, network.iterations_trained]) \
                if needs_rng else None
            penalty = network.penalty() if counts_tokens else 0.0  # at the weights the loss is taken at
            if stateful:  # the rows' state before this step, which an undone step must put back
                self.last_good_carried = network.carried_state()
            loss = self.train_step(X_batch, Y_batch, weights, rng=masks, counts=self.last_counts)
            epoch_loss.add(loss, self.last_counts[1])  # weighted by the global batch's count, on every rank
            if counts_tokens:
                data_loss.add(loss - penalty, self.last_counts[1])
            clipped += self.train_step.clipped
            if classifier and rows:
                correct += batch_accuracy(network.output, Y_batch, network.loss)
            # accuracy counts samples (or tokens), not their weights
            seen += network.loss.count(Y_batch) if counts_tokens else rows
            self.steps_done_in_epoch += 1
        if self.communicator.size > 1:
            correct, seen = (int(value) for value in self.communicator.sum([correct, seen]))
        network.epochs_trained += 1
        history.epoch_loss.append(epoch_loss.mean)
        history.learning_rate.append(learning_rate)
        if self.train_step.clip_norm is not None:
            history.clipped_fraction.append(clipped / steps)
        if network.counts_tokens:
            history.perplexity.append(perplexity(data_loss.mean))
        if self.monitor is not None:
            self.monitor.after_epoch()
        report = EpochReport(epoch=len(history.epoch_loss) - self.start_marks["epoch_loss"], epochs=n_epochs,
                             loss=history.epoch_loss[-1], learning_rate=learning_rate,
                             perplexity=history.perplexity[-1] if network.counts_tokens else None)
        if network.is_classifier:
            history.accuracy.append(correct / seen if seen else 0.0)
            report.accuracy = history.accuracy[-1]
        if self.data.has_validation:
            self._validate(report)
        report.seconds = time.perf_counter() - started
        return report

    def _batches(self, rng, steps):
        """Index arrays for ``steps`` batches, drawn from ``rng``."""
        n = self.data.n_samples
        if self.sampling == "replacement":
            for _ in range(steps):
                yield rng.integers(0, n, size=self.batch_size)
            return
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        for step in range(steps):
            yield order[step * self.batch_size:(step + 1) * self.batch_size]

    def _take_shard(self, indices):
        """This process's rows of the global batch ``indices``, after telling the layers where they sit."""
        start, stop = self.communicator.shard_bounds(len(indices))
        self.context.move_to(len(indices), start, stop - start)
        local = indices[start:stop]
        self.last_batch = local
        self.last_counts = self._counts(local, indices)
        data = self.data
        if local.size == data.n_samples and not self.shuffle and self.sampling == "epoch":
            return data.X, data.Y, data.weights  # full batch in order: no copy
        backend = self.network.backend
        weights = None if data.weights is None else backend.take_rows(data.weights, local)
        return take_rows(backend, data.X, local), backend.take_rows(data.Y, local), weights

    def _counts(self, local, indices):
        """(this shard's share, the global batch's whole): row counts, or with sample weights their sums.

        Each rank's loss is a (weighted) mean over its shard, so share / whole is the factor that makes the
        ranks' sum the global batch's mean.
        """
        network, data = self.network, self.data
        if data.weights is None and not self.counts_tokens:
            return local.size, len(indices)
        take_rows = network.backend.take_rows

        def count(rows):  # what the loss counts in these rows: samples, tokens, or their weights' sum
            if not rows.size:
                return 0.0
            return float(network.loss.count(take_rows(data.Y, rows),
                                            None if data.weights is None else take_rows(data.weights, rows)))

        # A batch that counts nothing (zero weights, every target ignored): every share is then 0 (not 0/0).
        return count(local), count(indices) or 1.0

    # ---- the guard of each training step (numnet.step.Guard) --------------------------------------------

    def approve(self, loss):
        """Undo the previous step and raise DivergenceError when ``loss`` diverged; else approve the update."""
        self._check_loss(loss)
        return True

    def previous_parameters(self):
        """Keep the layer state (BatchNorm's running statistics moved in this forward pass) and hand the
        optimiser the buffer that receives the weights as it updates them: with the compiled kernels that
        saves a pass over the weights (benchmarks/NOTES.md, "divergence guard's copy")."""
        self.last_good_state[...] = self.network.flat_state
        return self.last_good_parameters

    def after_update(self, loss, previous):
        """Record the kept step: its loss, its gradients' magnitudes, the doctor's evidence."""
        self.steps_taken += 1
        self.history.iteration_loss.append(loss)
        if self.record_gradients:
            for name, gradient in self.weight_gradients:
                xp = namespace(gradient)
                self.history.gradient_mean_abs[name].append(float(xp.mean(xp.abs(gradient))))
        if self.monitor is not None:
            self.monitor.after_step(previous, gradient_norm=self.train_step.gradient_norm)

    def _check_loss(self, loss, *, completed_epoch=None):
        """Raise DivergenceError, after undoing the update that led here, when ``loss`` is not finite or has
        grown past the limit. ``completed_epoch``: whether that update finished an epoch (by default: when no
        step of the current epoch has run yet, the previous update was the previous epoch's last)."""
        if math.isfinite(loss) and abs(loss) <= self._loss_limit(loss):
            return
        message = self._divergence_message(loss)
        if completed_epoch is None:
            completed_epoch = self.steps_done_in_epoch == 0
        self._undo_last_step(completed_epoch)
        raise DivergenceError(message)

    def _loss_limit(self, loss):
        """DIVERGENCE_GROWTH times the first loss this network recorded (or this one), and at least that
        many times 1: a loss that grows a millionfold is diverging even while it is still finite."""
        first = self.history.iteration_loss[0] if self.history.iteration_loss else loss
        return DIVERGENCE_GROWTH * max(abs(first), 1.0) if math.isfinite(first) else math.inf

    def check_final_weights(self):
        """After the last update: the weights must be finite and give a finite, bounded loss on the last
        batch, else that update is undone and DivergenceError raised (the guard before each update never
        sees the loss of the final weights)."""
        network = self.network
        if self.steps_taken == 0:
            return
        local_loss = 0.0
        if self.last_batch.size:
            backend = network.backend
            X, Y = take_rows(backend, self.data.X, self.last_batch), backend.take_rows(self.data.Y, self.last_batch)
            weights = None if self.data.weights is None else backend.take_rows(self.data.weights, self.last_batch)
            with np.errstate(over="ignore", invalid="ignore"):
                logits, output = network._forward(X, training=False)
                local_loss = network._loss_from(logits, output, Y, weights)
        share, whole = self.last_counts
        weight = share / whole
        loss = float(self.communicator.sum([local_loss * weight])[0])
        # Element by element: float32 weights that are all finite can still overflow a sum.
        xp = namespace(network.flat_parameters)
        parameters_finite = bool(xp.all(xp.isfinite(network.flat_parameters)))
        self._check_loss(loss if parameters_finite else math.nan, completed_epoch=True)

    def _undo_last_step(self, completed_epoch):
        """Put back the weights and state before the latest update and drop its records from the History
        (and the epoch's, when that update completed an epoch), so that History and counters agree."""
        if not self.steps_taken:
            return
        network, history = self.network, self.history
        network.flat_parameters[...] = self.last_good_parameters
        network.flat_state[...] = self.last_good_state
        if network.is_stateful:
            network.set_carried_state(self.last_good_carried)
        network.iterations_trained -= 1
        self.steps_taken -= 1
        history.drop_last_iteration(self.record_gradients)
        if self.monitor is not None:
            self.monitor.forget_last_step()
        if completed_epoch:
            network.epochs_trained -= 1
            history.drop_last_epoch()
            if self.monitor is not None:
                self.monitor.forget_last_epoch()

    def _divergence_message(self, loss):
        network = self.network
        kept = (f"the last finite loss was {self.history.iteration_loss[-1]:.6g}; "
                if self.history.iteration_loss else "")
        return (f"training diverged at iteration {network.iterations_trained}: the loss became {loss:.6g}"
                f"{'' if not math.isfinite(loss) else f' (over {DIVERGENCE_GROWTH:g} times its first value)'}; "
                f"{kept}the network keeps the last weights whose loss was finite. Try a smaller learning rate "
                f"(now {network.optimizer.current_learning_rate:g}) or scale the inputs.")

    def _validate(self, report):
        network, data = self.network, self.data
        n_validation = count_rows(data.X_val)
        X_val, Y_val, weights = data.X_val, data.Y_val, data.val_weights
        if self.communicator.size > 1:  # each rank evaluates its shard; the sums are reduced below
            shard = self.communicator.shard(np.arange(n_validation))
            backend = network.backend
            X_val, Y_val = take_rows(backend, X_val, shard), backend.take_rows(Y_val, shard)
            weights = None if weights is None else backend.take_rows(weights, shard)
        mean_loss, correct = 0.0, 0
        n_local = count_rows(X_val)
        if n_local:
            logits, output = network._forward(X_val, training=False)
            mean_loss = network._loss_from(logits, output, Y_val, weights)
            correct = batch_accuracy(output, Y_val, network.loss) if network.is_classifier else 0
        counted = network.loss.count(Y_val) if network.counts_tokens else n_local  # for accuracy
        if self.communicator.size > 1:
            share = network.loss.count(Y_val, weights) if n_local else 0.0
            loss_sum, correct, whole, counted = self.communicator.sum([mean_loss * share, correct, share, counted])
            mean_loss = float(loss_sum) / float(whole)
        report.val_loss = mean_loss
        self.history.val_loss.append(report.val_loss)
        if network.counts_tokens:
            self.history.val_perplexity.append(perplexity(mean_loss - network.penalty()))
            report.val_perplexity = self.history.val_perplexity[-1]
        if network.is_classifier:
            report.val_accuracy = float(correct) / float(counted) if counted else 0.0
            self.history.val_accuracy.append(report.val_accuracy)


class _EarlyStopping:
    """Track the best epoch (the monitored loss improving by ``tolerance``); with ``patience``, stop after that
    many epochs without improvement; with ``restore_best``, keep the best epoch's weights and layer state
    (BatchNorm's running statistics belong with the weights they were measured under) to end with."""

    def __init__(self, patience, tolerance, restore_best, network):
        self.patience = patience
        self.tolerance = tolerance
        self.restore_best = restore_best
        self.network = network
        self.best_loss = math.inf
        self.best = None
        if restore_best:
            self.best = [namespace(flat).asarray(flat, copy=True) for flat in (network.flat_parameters,
                                                                              network.flat_state)]
        self.epochs_without_improvement = 0

    def should_stop(self, report):
        monitored = report.val_loss if report.val_loss is not None else report.loss
        if monitored < self.best_loss - self.tolerance:
            self.best_loss = monitored
            self.epochs_without_improvement = 0
            if self.restore_best:
                self.best[0][...] = self.network.flat_parameters
                self.best[1][...] = self.network.flat_state
        else:
            self.epochs_without_improvement += 1
        return self.patience is not None and self.epochs_without_improvement >= self.patience

    def finish(self):
        if self.restore_best and math.isfinite(self.best_loss):
            self.network.flat_parameters[...] = self.best[0]
            self.network.flat_state[...] = self.best[1]


def _prepare_data(network, X, y, sample_weight, validation_data, validation_split, seed):
    """Validate in NumPy, split, then move every array to the network's backend once."""
    X = network.validate_inputs(X)
    n_samples = count_rows(X)
    Y = network.validate_targets(y, n_samples)
    weights = as_sample_weights(sample_weight, n_samples, network.dtype)
    if validation_data is not None:
        X_val, y_val, weights_val = _unpack_validation_data(validation_data)
        X_val = network.validate_inputs(X_val)
        n_validation = count_rows(X_val)
        return _on_backend(network, X=X, Y=Y, X_val=X_val, Y_val=network.validate_targets(y_val, n_validation),
                           weights=weights, val_weights=as_sample_weights(weights_val, n_validation, network.dtype,
                                                                          name="validation sample_weight"))
    if validation_split == 0.0:
        return _on_backend(network, X=X, Y=Y, weights=weights)
    n_validation = int(round(validation_split * n_samples))
    if n_validation < 1 or n_validation >= n_samples:
        raise ValueError(
            f"validation_split={validation_split} of {n_samples} samples leaves an empty training or "
            "validation set; use more data or another fraction"
        )
    order = np.random.default_rng(seed).permutation(n_samples)
    validation, training = order[:n_validation], order[n_validation:]
    rows = get_backend("numpy")  # still NumPy: split, then move to the network's backend once
    return _on_backend(network, X=take_rows(rows, X, training), Y=Y[training], X_val=take_rows(rows, X, validation),
                       Y_val=Y[validation], weights=None if weights is None else weights[training],
                       val_weights=None if weights is None else weights[validation])


def _unpack_validation_data(validation_data):
    """(X_val, y_val, sample_weight_val or None) from a pair or a triple."""
    try:
        parts = tuple(validation_data)
    except TypeError as error:
        raise ValueError("validation_data must be a pair (X_val, y_val) or a triple with sample weights") from error
    if len(parts) not in (2, 3):
        raise ValueError(f"validation_data must be a pair (X_val, y_val) or a triple (X_val, y_val, "
                         f"sample_weight_val), got {len(parts)} items")
    return parts if len(parts) == 3 else (*parts, None)


def _on_backend(network, **arrays):
    """TrainingData of the given NumPy arrays, each moved to the network's backend (a no-op for NumPy) in the
    dtype it was validated to: the model's float dtype, or int64 for token ids and class-index targets."""
    def moved(array):
        if is_multiple(array):
            return tuple(map(moved, array))
        return None if array is None else network.backend.asarray(array, array.dtype)

    return TrainingData(**{name: moved(array) for name, array in arrays.items()})


def _resolve_batch_size(batch_size, n_samples):
    if batch_size is None:
        return n_samples
    return min(batch_size, n_samples)


def _resolve_steps_per_epoch(steps_per_epoch, sampling, n_samples, batch_size):
    """The steps of an epoch: a pass over the data, or with sampling="replacement" the number asked."""
    if steps_per_epoch is None:
        return math.ceil(n_samples / batch_size)
    if sampling != "replacement":
        raise ValueError(f"steps_per_epoch={steps_per_epoch} needs sampling='replacement': with sampling='epoch' an "
                         "epoch is one pass over the data; draw batches with replacement, or leave steps_per_epoch out")
    return steps_per_epoch


def _resolve_total_steps(epochs, iterations, steps_per_epoch):
    if epochs is not None and iterations is not None:
        raise ValueError("give epochs or iterations, not both")
    if iterations is not None:
        return iterations
    return (10 if epochs is None else epochs) * steps_per_epoch


def _resolve_optimizer(network, optimizer, learning_rate):
    """The optimiser fit trains with: the one asked for, else the network's own (kept, at ``learning_rate``
    when one is given), else a new Adam."""
    current = getattr(network, "optimizer", None)
    if optimizer is None and current is not None:
        if learning_rate is not None:
            current.learning_rate = learning_rate
        return current
    return get_optimizer("adam" if optimizer is None else optimizer, learning_rate)


def _resolve_seed(network, seed):
    """The seed of the batch order: given, kept from an earlier fit, or drawn once and kept."""
    if seed is None:
        seed = network.training_seed
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2 ** 63))
    network.training_seed = int(seed)
    return network.training_seed
