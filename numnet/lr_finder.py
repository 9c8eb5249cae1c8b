"""The learning-rate finder: Leslie Smith's range test (Smith 2017, "Cyclical Learning Rates for Training
Neural Networks", section 3.3), run on a copy of the network.

The learning rate grows exponentially from a tiny value at every mini-batch step; the loss first stays
flat (too small a step), then falls fast, then turns up and blows up (too large). The rate to train with
sits on the steep fall, below the minimum.
"""

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from .inputs import count_rows, take_rows
from .network import Network
from .optimizers import Optimizer, get_optimizer
from .step import Guard, TrainingStep
from .schedules import get_schedule
from .validation import check_integer

#: The range test's default span: from a rate at which no optimiser moves a weight measurably to one at
#: which every optimiser diverges.
START_LEARNING_RATE = 1e-7
END_LEARNING_RATE = 10.0
#: A few hundred steps: enough for the smoothed loss to resolve each decade of rates (about 30 steps per
#: decade over the default eight decades), few enough to cost a couple of digits epochs.
RANGE_TEST_STEPS = 240
#: Weight of the past in the loss's exponential moving average (fastai's choice): single mini-batch
#: losses are too noisy to find a minimum in, and 0.98 averages over roughly the last 50 steps.
SMOOTHING = 0.98
#: The test stops once the smoothed loss exceeds this multiple of its lowest value: it is diverging, and
#: the rates beyond tell nothing more (fastai stops at 4).
DIVERGENCE_FACTOR = 4.0
#: The suggestion: the rate at the smoothed loss's minimum divided by 10. At the minimum the steps are
#: already too large (the loss turns up right after); a decade below it the loss still falls steeply
#: and stably (Smith's and fastai's "lr_min / 10" rule).
SUGGESTION_DIVISOR = 10.0


@dataclass
class LearningRateFinderResult:
    """What :func:`find_learning_rate` measured.

    Attributes
    ----------
    learning_rates : list of float
        The rate of every step taken, growing exponentially.
    losses : list of float
        The smoothed (bias-corrected moving-average) mini-batch loss at each of those rates.
    raw_losses : list of float
        The mini-batch losses themselves.
    suggested_learning_rate : float
        The rate at the smoothed loss's minimum divided by SUGGESTION_DIVISOR.
    diverged : bool
        Whether the test stopped because the loss diverged (before reaching the last rate).
    """

    learning_rates: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    raw_losses: list = field(default_factory=list)
    suggested_learning_rate: float = math.nan
    diverged: bool = False

    @property
    def minimum_learning_rate(self):
        """The rate at which the smoothed loss was lowest."""
        return self.learning_rates[int(np.argmin(self.losses))]

    def to_dict(self):
        """A JSON-ready dict."""
        return {"learning_rates": list(self.learning_rates), "losses": list(self.losses),
                "raw_losses": list(self.raw_losses), "suggested_learning_rate": self.suggested_learning_rate,
                "diverged": self.diverged}


def find_learning_rate(network, X, y, *, optimizer="adam", start_learning_rate=START_LEARNING_RATE,
                       end_learning_rate=END_LEARNING_RATE, steps=RANGE_TEST_STEPS, batch_size=32, seed=0):
    """Run the learning-rate range test on a copy of ``network`` and suggest a learning rate.

    Step t (from 0) trains one mini-batch at rate start·(end/start)^(t/(steps-1)), and records the loss
    before the update; the test stops early when the smoothed loss passes DIVERGENCE_FACTOR times its
    minimum or stops being finite. ``network`` itself is left untouched: its weights, layer state,
    optimiser (and its state) and history.

    Parameters
    ----------
    network : Network
    X : array_like, shape (n_samples, n_features) or ``(n_samples, *input_shape)``
    y : array_like
        Targets in any form ``fit`` takes.
    optimizer : str or Optimizer, default "adam"
        A name, or an optimiser whose hyperparameters (momentum, betas) are used; it is copied, its
        schedule replaced by the test's rates, and its state started afresh.
    start_learning_rate, end_learning_rate : float, 0 < start < end
    steps : int >= 2
    batch_size : int
        The batch size you will train with (the right rate depends on it).
    seed : int
        Seeds the batches and Dropout's masks.

    Returns
    -------
    LearningRateFinderResult

    Raises
    ------
    TypeError, ValueError
        For a bad network, data or option (the message names it).
    """
    if not isinstance(network, Network):
        raise TypeError(f"find_learning_rate needs a numnet Network, got {type(network).__name__}")
    rates = _rates(start_learning_rate, end_learning_rate, check_integer(steps, "steps", minimum=2))
    batch_size = check_integer(batch_size, "batch_size")
    trial = network.copy()
    trial.optimizer = _fresh_optimizer(optimizer)
    X_prepared = trial.prepare_inputs(X)
    Y = trial.prepare_targets(y, count_rows(X_prepared))
    result = LearningRateFinderResult()
    guard = _RangeTestGuard(result)
    train_step = TrainingStep(trial, guard=guard)
    with np.errstate(over="ignore", invalid="ignore"):
        for step, indices in enumerate(_batches(count_rows(X_prepared), batch_size, len(rates), seed)):
            trial.optimizer.learning_rate = guard.rate = rates[step]
            rng = np.random.default_rng([seed, step]) if trial.needs_rng else None
            X_batch, Y_batch = take_rows(trial.backend, X_prepared, indices), trial.backend.take_rows(Y, indices)
            if train_step(X_batch, Y_batch, rng=rng) is None:
                result.diverged = True
                break
    if not result.losses:
        raise ValueError("the loss was not finite at the first step of the range test, before any update; "
                         "check the data and the network (numnet.diagnose can help)")
    result.suggested_learning_rate = result.minimum_learning_rate / SUGGESTION_DIVISOR
    return result


def _rates(start, end, steps):
    """``steps`` learning rates growing exponentially from ``start`` to ``end``."""
    for value, name in ((start, "start_learning_rate"), (end, "end_learning_rate")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not start < end:
        raise ValueError(f"start_learning_rate ({start:g}) must be below end_learning_rate ({end:g})")
    return [float(rate) for rate in np.geomspace(start, end, steps)]


def _fresh_optimizer(optimizer):
    """An optimiser of the kind asked for, with no state and a constant schedule (the test sets the rate)."""
    if isinstance(optimizer, Optimizer):
        fresh = copy.deepcopy(optimizer)
        fresh.state = None  # step() starts it afresh
    else:
        fresh = get_optimizer(optimizer)
    fresh.schedule = get_schedule("constant")
    return fresh


def _batches(n_samples, batch_size, steps, seed):
    """``steps`` index arrays of ``batch_size`` rows, through a new random order each pass over the data."""
    rng = np.random.default_rng(seed)
    batch_size = min(batch_size, n_samples)
    taken = 0
    while taken < steps:
        order = rng.permutation(n_samples)
        for start in range(0, n_samples - batch_size + 1, batch_size):
            if taken == steps:
                return
            yield order[start:start + batch_size]
            taken += 1


class _RangeTestGuard(Guard):
    """Record each step's loss at its rate; refuse the update (and so end the test) once the loss diverged."""

    def __init__(self, result):
        self.result = result
        self.rate = None  # the rate of the step being taken, set by the loop

    def approve(self, loss):
        return _record(self.result, self.rate, loss)


def _record(result, rate, loss):
    """Add one step's loss to ``result``; False when the test must stop (the loss diverged)."""
    if not math.isfinite(loss):
        return False
    count = len(result.raw_losses) + 1
    previous = result.losses[-1] * (1.0 - SMOOTHING ** (count - 1)) if result.losses else 0.0
    average = SMOOTHING * previous + (1.0 - SMOOTHING) * loss
    smoothed = average / (1.0 - SMOOTHING ** count)  # bias-corrected, as Adam's moments
    result.learning_rates.append(rate)
    result.raw_losses.append(float(loss))
    result.losses.append(smoothed)
    return smoothed <= DIVERGENCE_FACTOR * min(result.losses)


__all__ = ["LearningRateFinderResult", "find_learning_rate"]
