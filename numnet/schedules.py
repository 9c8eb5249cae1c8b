"""Learning-rate schedules and the SCHEDULES table.

A schedule maps (base learning rate, step number t counted from 0) to the learning rate of step t. A schedule
that reacts to progress (:class:`ReduceOnPlateau`) also hears, after every epoch, the value training
monitors (:meth:`Schedule.end_epoch`), and may ask training to stop.
"""

import math

from ._registry import lookup
from .validation import Integer, OneOf, Real, check_integer, declare

#: The directions a monitored value can improve in: "min" for a loss, "max" for a score such as accuracy.
MODES = ("min", "max")


class Schedule:
    """Base class: ``schedule(learning_rate, step)`` returns the learning rate for that step."""

    name = "schedule"

    def __call__(self, learning_rate, step):
        raise NotImplementedError

    def end_epoch(self, monitored, learning_rate):
        """Hear the value training monitors after an epoch; return True to end training.

        Parameters
        ----------
        monitored : float
            The validation loss when there is validation data, else the epoch's training loss.
        learning_rate : float
            The optimiser's base learning rate (the one this schedule scales).

        The default does nothing and never stops: most schedules depend on the step alone.
        """
        return False

    def config(self):
        """The schedule's name and arguments, for saving."""
        return {"name": self.name, **vars(self)}

    def __repr__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{type(self).__name__}({arguments})"


class Constant(Schedule):
    """The same learning rate at every step."""

    name = "constant"

    def __call__(self, learning_rate, step):
        return learning_rate


class StepDecay(Schedule):
    """Multiply the rate by ``factor`` every ``step_size`` steps: lr · factor^(t // step_size).

    Parameters
    ----------
    step_size : int, default 1000
    factor : float, default 0.5
    """

    name = "step"

    @declare(step_size=Integer(), factor=Real(above=0, at_most=1))
    def __init__(self, step_size=1000, factor=0.5):
        self.step_size = step_size
        self.factor = factor

    def __call__(self, learning_rate, step):
        return learning_rate * self.factor ** (step // self.step_size)


class InverseScaling(Schedule):
    """lr / (1 + decay · t)^power: slowly decaying steps (power 0.5 is scikit-learn's "invscaling" shape).

    Parameters
    ----------
    decay : float, default 1.0
    power : float, default 0.5
    """

    name = "inverse_scaling"

    @declare(decay=Real(at_least=0), power=Real(at_least=0))
    def __init__(self, decay=1.0, power=0.5):
        self.decay = decay
        self.power = power

    def __call__(self, learning_rate, step):
        return learning_rate / (1.0 + self.decay * step) ** self.power


class WarmupCosine(Schedule):
    """Linear warmup, then a cosine down to a floor: nanoGPT's ``get_lr``, step for step.

    For step t (counted from 0, the iteration number of nanoGPT's training loop) and base rate lr:

    - warmup, t < ``warmup_steps``: lr · (t + 1) / (warmup_steps + 1), which rises in equal steps and reaches
      lr itself at t = warmup_steps (nanoGPT's form: the first step already moves, at lr/(warmup_steps + 1));
    - cosine, warmup_steps <= t <= ``decay_steps``: min + ½·(1 + cos(π·r))·(lr − min), with
      r = (t − warmup_steps) / (decay_steps − warmup_steps) going from 0 (lr) to 1 (min);
    - after, t > ``decay_steps``: ``min_learning_rate``.

    The floor is an absolute rate, not a fraction of lr (nanoGPT's ``min_lr``; its configs use lr/10); a
    floor above lr would make the "decay" rise, so keep it below the optimiser's rate.

    The defaults are the issue's reference run, nanoGPT's character-level Shakespeare model on a CPU: 100
    warmup steps and a decay over 2,000 steps to 1e-4 (its rate is 1e-3).

    Parameters
    ----------
    warmup_steps : int >= 0, default 100
        Steps of linear warmup (0: start at the full rate).
    decay_steps : int > warmup_steps, default 2000
        The step at which the cosine reaches ``min_learning_rate`` (nanoGPT's ``lr_decay_iters``).
    min_learning_rate : float >= 0, default 1e-4
        The rate at the end of the cosine and from then on.

    Raises
    ------
    ValueError
        When ``decay_steps`` is not greater than ``warmup_steps`` (the cosine would have no steps), or an
        argument is out of its range.

    Examples
    --------
    >>> schedule = WarmupCosine(warmup_steps=3, decay_steps=13, min_learning_rate=0.1)
    >>> [round(schedule(0.9, step), 10) for step in (0, 2, 3, 8, 13, 50)]
    [0.225, 0.675, 0.9, 0.5, 0.1, 0.1]
    """

    name = "warmup_cosine"

    @declare(warmup_steps=Integer(0), decay_steps=Integer(), min_learning_rate=Real(at_least=0))
    def __init__(self, warmup_steps=100, decay_steps=2000, min_learning_rate=1e-4):
        if decay_steps <= warmup_steps:
            raise ValueError(f"decay_steps must be greater than warmup_steps, got decay_steps={decay_steps} and "
                             f"warmup_steps={warmup_steps}; the cosine runs from the end of the warmup to "
                             "decay_steps, so give decay_steps at least warmup_steps + 1")
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps
        self.min_learning_rate = min_learning_rate

    def __call__(self, learning_rate, step):
        # The operations in nanoGPT's order (train.py, get_lr), so that its rates are reproduced to the ulp
        if step < self.warmup_steps:
            return learning_rate * (step + 1) / (self.warmup_steps + 1)
        if step > self.decay_steps:
            return self.min_learning_rate
        ratio = (step - self.warmup_steps) / (self.decay_steps - self.warmup_steps)
        coefficient = 0.5 * (1.0 + math.cos(math.pi * ratio))
        return self.min_learning_rate + coefficient * (learning_rate - self.min_learning_rate)


def track_plateau(value, best, count, tolerance, mode="min"):
    """One epoch of scikit-learn's plateau count: returns (count, best) after seeing ``value``.

    The count grows by one when ``value`` fails to beat ``best`` by at least ``tolerance`` (for "min":
    value > best - tolerance) and restarts at 0 otherwise; ``best`` becomes ``value`` when it is better at
    all. Written with scikit-learn's comparisons, so a NaN value restarts the count and never becomes the
    best (its MLP then keeps training a diverged model to max_iter; numnet's estimators do the same).

    Parameters
    ----------
    value, best : float
    count : int
        Epochs in a row without improvement so far.
    tolerance : float
    mode : {"min", "max"}
        Whether smaller values (a loss) or larger ones (a score) are better.
    """
    if mode == "min":
        stalled, better = value > best - tolerance, value < best
    else:
        stalled, better = value < best + tolerance, value > best
    return (count + 1 if stalled else 0), (value if better else best)


class ReduceOnPlateau(Schedule):
    """Multiply the rate by ``factor`` when the monitored value stops improving (PyTorch's ReduceLROnPlateau).

    After every epoch ``fit`` reports the monitored value (the validation loss if there is validation data,
    else the epoch's training loss). An epoch that fails to beat the best value so far by ``tolerance``
    adds one to a count (:func:`track_plateau`); when the count exceeds ``patience`` the rate is multiplied
    by ``factor`` and the count restarts. If the rate is already at or below ``min_learning_rate`` when a
    reduction falls due, the schedule asks ``fit`` to stop instead.

    This is scikit-learn's ``learning_rate="adaptive"``, with factor 1/5, patience ``n_iter_no_change`` and
    ``min_learning_rate`` 1e-6. Its docstring says the rate drops "each time two consecutive epochs fail to
    decrease training loss by at least tol"; its code (``_update_no_improvement_count`` and
    ``SGDOptimizer.trigger_stopping``) drops it after *more than* ``n_iter_no_change`` such epochs, and
    that code is what this follows.

    Parameters
    ----------
    factor : float in (0, 1), default 0.2
    patience : int >= 0 or math.inf, default 10
        Epochs without improvement tolerated before a reduction (inf: never reduce).
    tolerance : float >= 0, default 1e-4
    mode : {"min", "max"}, default "min"
        "min" for a loss; "max" when the monitored value is a score.
    min_learning_rate : float >= 0, default 1e-6
    scale, best, epochs_without_improvement : optional
        The schedule's state (the product of the reductions so far, the best value, the current count),
        for resuming a saved run; new schedules start at 1, none and 0.

    Examples
    --------
    >>> schedule = ReduceOnPlateau(factor=0.5, patience=1, tolerance=0.1)
    >>> [schedule.end_epoch(loss, 0.1) for loss in (1.0, 1.0, 1.0)], schedule(0.1, step=30)
    ([False, False, False], 0.05)
    """

    name = "reduce_on_plateau"

    @declare(factor=Real(above=0, below=1), tolerance=Real(at_least=0), mode=OneOf(*MODES),
             min_learning_rate=Real(at_least=0), scale=Real(above=0), epochs_without_improvement=Integer(0))
    def __init__(self, factor=0.2, patience=10, tolerance=1e-4, mode="min", min_learning_rate=1e-6, *,
                 scale=1.0, best=None, epochs_without_improvement=0):
        self.factor = factor
        # math.inf: never reduce (scikit-learn's n_iter_no_change=inf)
        self.patience = patience if patience == math.inf else check_integer(patience, "patience", minimum=0)
        self.tolerance = tolerance
        self.mode = mode
        self.min_learning_rate = min_learning_rate
        self.scale = scale
        self.best = float(best) if best is not None else (math.inf if mode == "min" else -math.inf)
        self.epochs_without_improvement = epochs_without_improvement

    def __call__(self, learning_rate, step):
        return learning_rate * self.scale

    def end_epoch(self, monitored, learning_rate):
        self.epochs_without_improvement, self.best = track_plateau(
            monitored, self.best, self.epochs_without_improvement, self.tolerance, self.mode)
        if self.epochs_without_improvement <= self.patience:
            return False
        if not self.reduce(learning_rate):
            return True
        self.epochs_without_improvement = 0
        return False

    def reduce(self, learning_rate):
        """Multiply the rate by ``factor``, unless it (``learning_rate`` · scale) is already at or below
        ``min_learning_rate``; returns whether it did."""
        if learning_rate * self.scale <= self.min_learning_rate:
            return False
        self.scale *= self.factor
        return True


SCHEDULES = {
    "constant": Constant,
    "step": StepDecay,
    "step_decay": StepDecay,
    "inverse_scaling": InverseScaling,
    "invscaling": InverseScaling,
    "warmup_cosine": WarmupCosine,
    "reduce_on_plateau": ReduceOnPlateau,
    "plateau": ReduceOnPlateau,
}


def get_schedule(name):
    """Return the schedule called ``name`` (or ``name`` itself if it is a Schedule).

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    return lookup(SCHEDULES, name, "schedule", base=Schedule)
