"""Learning-rate schedules and the SCHEDULES table.

A schedule maps (base learning rate, step number t counted from 0) to the learning rate of step t.
"""

from ._registry import lookup
from .validation import check_integer


class Schedule:
    """Base class: ``schedule(learning_rate, step)`` returns the learning rate for that step."""

    name = "schedule"

    def __call__(self, learning_rate, step):
        raise NotImplementedError

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

    def __init__(self, step_size=1000, factor=0.5):
        step_size = check_integer(step_size, "step_size")
        if not 0 < float(factor) <= 1:
            raise ValueError(f"factor must be in (0, 1], got {factor}")
        self.step_size = int(step_size)
        self.factor = float(factor)

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

    def __init__(self, decay=1.0, power=0.5):
        if float(decay) < 0 or float(power) < 0:
            raise ValueError(f"decay and power must be >= 0, got decay={decay}, power={power}")
        self.decay = float(decay)
        self.power = float(power)

    def __call__(self, learning_rate, step):
        return learning_rate / (1.0 + self.decay * step) ** self.power


SCHEDULES = {
    "constant": Constant,
    "step": StepDecay,
    "step_decay": StepDecay,
    "inverse_scaling": InverseScaling,
    "invscaling": InverseScaling,
}


def get_schedule(name):
    """Return the schedule called ``name`` (or ``name`` itself if it is a Schedule).

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    return lookup(SCHEDULES, name, "schedule", base=Schedule)
