"""Optimisers: SGD (momentum, Nesterov), AdaGrad, RMSProp, Adam, and the OPTIMIZERS table.

Each update rule is a small function of (param, grad, state, scratch, hyperparameters) that updates the
parameter and the state in place; the classes only hold the state and the hyperparameters and apply the
rule in one place. The rules update in place, with one preallocated scratch buffer, rather than returning
new arrays: the network keeps all parameters in one flat buffer, so each line below is one pass over
every parameter of the model, with no temporaries (benchmarks/NOTES.md, "fused in-place optimiser").

The forms follow PyTorch's, so that the first steps can be compared with torch.optim to rounding.

State that decays geometrically drifts into subnormal floats: a relu parameter whose gradient is exactly
zero has its momentum multiplied by 0.9 every step until, a few hundred steps later, it is non-zero but
below the dtype's smallest normal, where some CPUs compute about 15 times slower (issue 10). Every
``FLUSH_INTERVAL`` steps the optimiser sets to zero the state values that could reach that range before
the next flush (:func:`flush_thresholds`); the flush is keyed on the saved step count, so a resumed run
flushes at the same steps and stays bit-identical (benchmarks/NOTES.md, "subnormal optimiser state").
"""

import functools
import math

from ._registry import lookup
from .backend import apply, namespace, to_numpy
from .kernels import compiled_chosen, current_choice, fused_step, in_chunks, run_in_chunks, scalars
from .schedules import get_schedule

#: Steps between two flushes of the optimiser state (fewer for state that decays very fast): one flush
#: costs about three passes over each state array, 1% of the steps between flushes at this interval.
FLUSH_INTERVAL = 32
#: A flush zeroes values up to this many times the smallest normal, at most: the largest Adam step such a
#: value makes, lr·m/ε ≈ 1e-3 · 2e-31 / 1e-8 in float32, is far below the rounding of any parameter.
MAX_FLUSH_FACTOR = 2.0 ** 24
#: Elements per chunk of the NumPy rules (2¹⁷: each of the five arrays Adam touches 512 KiB, together
#: within a core's 2 MiB L2): wide's Adam step 7.0 ms whole, 4.8 ms in chunks (benchmarks/NOTES.md). A
#: second thread takes chunks only when there are two per thread or more: each chunk is a dozen NumPy
#: calls, and on fewer, larger-than-nothing chunks the threads mostly wait for each other's GIL
#: (benchmarks/NOTES.md, "NumPy rules in chunks": mnist's Adam step 1.0 ms on one thread, 1.1-1.5 ms on two).
RULE_CHUNK = 2 ** 17
#: Headroom for rounding: the decays between two flushes, rounded each step, shrink a value by a little
#: more than decay**interval (interval·2⁻²⁴ relatively, in float32); a factor of 2 covers that with room.
FLUSH_ROUNDING_HEADROOM = 2.0


def sgd_update(param, grad, state, scratch, *, learning_rate, momentum=0.0, nesterov=False):
    """Stochastic gradient descent, with optional (Nesterov) momentum; modifies ``param`` and ``state``.

    Plain: p ← p - lr·g. Momentum (PyTorch's form; equal to v ← μv - lr·g, p ← p + v for a constant lr):
    v ← μ·v + g, then p ← p - lr·v, or with Nesterov p ← p - lr·(g + μ·v).
    """
    xp = namespace(param)
    if momentum == 0.0:
        apply(xp.multiply, grad, learning_rate, out=scratch)
    else:
        velocity = state["velocity"]
        velocity *= momentum
        velocity += grad
        if nesterov:
            apply(xp.multiply, velocity, momentum, out=scratch)
            scratch += grad
            scratch *= learning_rate
        else:
            apply(xp.multiply, velocity, learning_rate, out=scratch)
    param -= scratch


def adagrad_update(param, grad, state, scratch, *, learning_rate, epsilon):
    """AdaGrad (Duchi et al. 2011): G ← G + g², p ← p - lr·g / (√G + ε)."""
    xp = namespace(param)
    squares = state["sum_squares"]
    apply(xp.multiply, grad, grad, out=scratch)
    squares += scratch
    _scaled_step(param, grad, squares, scratch, learning_rate, epsilon)


def rmsprop_update(param, grad, state, scratch, *, learning_rate, rho, epsilon):
    """RMSProp (Tieleman & Hinton 2012): s ← ρ·s + (1-ρ)·g², p ← p - lr·g / (√s + ε)."""
    xp = namespace(param)
    mean_square = state["mean_square"]
    apply(xp.multiply, grad, grad, out=scratch)
    scratch *= 1.0 - rho
    mean_square *= rho
    mean_square += scratch
    _scaled_step(param, grad, mean_square, scratch, learning_rate, epsilon)


def _scaled_step(param, grad, accumulator, scratch, learning_rate, epsilon):
    """p ← p - lr·g / (√accumulator + ε), through ``scratch``."""
    xp = namespace(param)
    apply(xp.sqrt, accumulator, out=scratch)
    scratch += epsilon
    apply(xp.divide, grad, scratch, out=scratch)
    scratch *= learning_rate
    param -= scratch


def adam_update(param, grad, state, scratch, *, learning_rate, beta1, beta2, epsilon, step):
    """Adam (Kingma & Ba 2015), bias-corrected, ε outside the square root; ``step`` t counts from 1.

    m ← β1·m + (1-β1)·g;  v ← β2·v + (1-β2)·g²;  p ← p - lr · m̂ / (√v̂ + ε) with m̂ = m/(1-β1^t),
    v̂ = v/(1-β2^t). Evaluated as the paper's section 2 rearranges it, which saves a pass:
    p ← p - lr·√(1-β2^t)/(1-β1^t) · m / (√v + ε·√(1-β2^t)), the same number up to rounding.
    """
    xp = namespace(param)
    m, v = state["m"], state["v"]
    apply(xp.subtract, grad, m, out=scratch)
    scratch *= 1.0 - beta1
    m += scratch  # m ← m + (1-β1)(g - m) = β1·m + (1-β1)·g
    apply(xp.multiply, grad, grad, out=scratch)
    scratch -= v
    scratch *= 1.0 - beta2
    v += scratch  # v ← v + (1-β2)(g² - v) = β2·v + (1-β2)·g²
    corrected_epsilon, step_size = adam_corrections(learning_rate, beta1, beta2, epsilon, step)
    apply(xp.sqrt, v, out=scratch)
    scratch += corrected_epsilon
    apply(xp.divide, m, scratch, out=scratch)
    scratch *= step_size
    param -= scratch


def adam_corrections(learning_rate, beta1, beta2, epsilon, step):
    """(ε·√(1-β2^t), lr·√(1-β2^t)/(1-β1^t)): Adam's bias corrections folded into its ε and step size."""
    root_bias_correction2 = math.sqrt(1.0 - beta2 ** step)
    return epsilon * root_bias_correction2, learning_rate * root_bias_correction2 / (1.0 - beta1 ** step)


@functools.lru_cache(maxsize=256)  # called every step with the same few tuples: 2.5 µs, 2% of a digits step
def flush_interval(decays):
    """Steps between flushes for state with these decay factors (a tuple): ``FLUSH_INTERVAL``, or fewer
    where a decay is so small that a value at ``MAX_FLUSH_FACTOR`` times the smallest normal would fall
    below the smallest normal in fewer steps."""
    interval = FLUSH_INTERVAL
    for decay in decays:
        if 0.0 < decay < 1.0:
            steps = math.log(MAX_FLUSH_FACTOR / FLUSH_ROUNDING_HEADROOM) / -math.log(decay)
            interval = min(interval, max(1, math.floor(steps)))
    return interval


def flush_thresholds(decays, smallest_normal, interval):
    """For each state array, the magnitude below which a flush sets its values to zero.

    A value x ≥ 2·smallest_normal / decay^interval, multiplied by ``decay`` at each of the ``interval``
    steps to the next flush (what happens when its gradient stays zero), is still a normal number there;
    smaller values are zeroed now, before they can get below the smallest normal. A state that does not
    decay (AdaGrad's sum of squares; decay 1) or forgets itself at every step (decay 0) only needs its
    subnormal values cleared.

    Parameters
    ----------
    decays : dict of str to float
        State name -> the factor the rule multiplies that state by each step (in [0, 1]).
    smallest_normal : float
        The dtype's smallest positive normal number (``finfo(dtype).smallest_normal``).
    interval : int
        Steps between flushes (:func:`flush_interval`).
    """
    thresholds = {}
    for name, decay in decays.items():
        shrink = decay ** interval if 0.0 < decay < 1.0 else 1.0
        thresholds[name] = FLUSH_ROUNDING_HEADROOM * smallest_normal / shrink
    return thresholds


def flush_below(array, threshold):
    """Set to zero, in place, the entries of ``array`` whose magnitude is below ``threshold`` (NaN is kept)."""
    xp = namespace(array)
    array[xp.abs(array) < threshold] = 0


class Optimizer:
    """Base class: holds hyperparameters and state and applies an update rule to flat arrays.

    Parameters
    ----------
    learning_rate : float
        The base learning rate (> 0).
    schedule : str or Schedule, default "constant"
        How the learning rate changes with the step number.
    """

    name = "optimizer"
    #: The names of the state arrays this optimiser keeps, each shaped like the parameters.
    state_names = ()
    #: Whether the state is flushed of values near the subnormal range every few steps (see the module's
    #: docstring). Set it False on an instance only to watch the drift happen.
    flush_subnormals = True

    @property
    def decays(self):
        """State name -> the factor the update rule multiplies it by each step, for every state it updates.

        The flush against subnormal drift (:func:`flush_thresholds`) is computed from these.
        """
        return {}

    def __init__(self, learning_rate, schedule="constant"):
        self.learning_rate = _positive(learning_rate, "learning_rate")
        self.schedule = get_schedule(schedule)
        self.state = None
        self._scratch = None
        self._fused_update = None  # (rule and kernels choice, arrays, update): see _fused

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_fused_update"] = None  # holds a compiled function: made again at the next step
        return state

    def init(self, parameters):
        """Create zeroed state for ``parameters`` (a flat array); returns the state dict."""
        xp = namespace(parameters)
        self.state = {"step": 0}
        for state_name in self.state_names:
            self.state[state_name] = xp.zeros_like(parameters)
        self._scratch = xp.empty_like(parameters)
        return self.state

    @property
    def current_learning_rate(self):
        """The learning rate the next step will use."""
        return self.schedule(self.learning_rate, self.state["step"] if self.state else 0)

    def step(self, parameters, gradients, *, previous=None):
        """Update ``parameters`` in place from ``gradients`` (arrays of equal shape and dtype).

        ``previous``, an array like ``parameters``, receives the parameters as they were before the update
        (fit's divergence guard keeps them): with the compiled kernels each chunk is copied just before it
        is updated, while it is in cache, instead of in a pass of its own.
        """
        if self.state is None:
            self.init(parameters)
        elif (self._scratch is None or type(self._scratch) is not type(parameters)
              or self._scratch.shape != parameters.shape):
            self._adopt_state(parameters)
        learning_rate = self.current_learning_rate
        self.state["step"] += 1
        thresholds = self._due_flush_thresholds(parameters)
        # Asked first: without the kernels, the NumPy path pays none of their bookkeeping (3 µs a step).
        if compiled_chosen():
            arguments = self._kernel_arguments(learning_rate, thresholds)
            update = self._fused(arguments[0], parameters, gradients, *arguments[1]) if arguments else None
            if update is not None:
                update(*scalars(parameters.dtype, *arguments[2]), previous=previous)
                return
        self._apply_rule(parameters, gradients, learning_rate, thresholds, previous)

    def _apply_rule(self, parameters, gradients, learning_rate, thresholds, previous):
        """The update rule (the reference), then the due flush. NumPy arrays larger than a chunk go in
        cache-sized chunks over the kernel threads: twelve passes over a chunk that stays in the core's cache
        instead of over the whole buffer (benchmarks/NOTES.md, "NumPy rules in chunks")."""
        if parameters.size <= RULE_CHUNK:
            self._update_part(parameters, gradients, self._scratch, self.state, previous, learning_rate, thresholds)
            return
        state = {name: self.state[name] for name in self.state_names}
        arrays = (parameters, gradients, self._scratch, *state.values(), *([] if previous is None else [previous]))
        if not in_chunks(*arrays):
            self._update_part(parameters, gradients, self._scratch, state, previous, learning_rate, thresholds)
            return
        flat_parameters, flat_gradients, flat_scratch = (array.reshape(-1) for array in arrays[:3])
        flat_state = {name: array.reshape(-1) for name, array in state.items()}
        flat_previous = None if previous is None else previous.reshape(-1)

        def update_chunk(start, stop):
            self._update_part(flat_parameters[start:stop], flat_gradients[start:stop], flat_scratch[start:stop],
                              {name: array[start:stop] for name, array in flat_state.items()},
                              None if flat_previous is None else flat_previous[start:stop],
                              learning_rate, thresholds)

        run_in_chunks(update_chunk, parameters.size, min_chunk=2 * RULE_CHUNK, max_chunk=RULE_CHUNK)

    def _update_part(self, parameters, gradients, scratch, state, previous, learning_rate, thresholds):
        """Keep the previous parameters (when ``previous`` is given), apply the rule, flush: on whole arrays,
        or on views of one chunk of them."""
        if previous is not None:
            previous[...] = parameters
        self._apply(parameters, gradients, state, scratch, learning_rate)
        for name, threshold in thresholds.items():
            flush_below(state[name], threshold)

    def _apply(self, parameters, gradients, state, scratch, learning_rate):
        """The update rule: update ``parameters`` and the ``state`` arrays (shaped like them) in place."""
        raise NotImplementedError

    def _kernel_arguments(self, learning_rate, thresholds):
        """(the compiled kernel's rule name, its state arrays, its scalars) for this step (numnet.kernels),
        or None for a rule with no compiled kernel (an optimiser of one's own: ``_apply`` alone runs)."""
        return None

    def _fused(self, rule, *arrays):
        """``fused_step(rule, *arrays)``, checked once and kept while the same arrays come back (every step
        of a fit steps the network's flat buffers): the checks cost 9 µs, 8% of a digits step."""
        key = (rule, current_choice())
        cached = getattr(self, "_fused_update", None)  # None too in an optimiser pickled before it existed
        if cached is None or cached[0] != key or any(new is not old for new, old in zip(arrays, cached[1])):
            cached = self._fused_update = (key, arrays, fused_step(rule, *arrays))
        return cached[2]

    def _due_flush_thresholds(self, parameters):
        """{state name: threshold} at the steps where a flush is due (by the saved step count), else {}."""
        decays = self.decays
        interval = flush_interval(tuple(decays.values()))
        if not (decays and self.flush_subnormals) or self.state["step"] % interval:
            return {}
        smallest_normal = float(namespace(parameters).finfo(parameters.dtype).smallest_normal)
        return flush_thresholds(decays, smallest_normal, interval)

    def _adopt_state(self, parameters):
        """Move loaded state (NumPy arrays from a file) to the parameters' library and make the scratch buffer."""
        xp = namespace(parameters)
        for state_name in self.state_names:
            if tuple(self.state[state_name].shape) != tuple(parameters.shape):
                raise ValueError(f"the optimiser's {state_name!r} state has shape {self.state[state_name].shape}, "
                                 f"but the parameters have shape {parameters.shape}")
            if type(self.state[state_name]) is not type(parameters):
                self.state[state_name] = xp.asarray(to_numpy(self.state[state_name]), dtype=parameters.dtype)
        self._scratch = xp.empty_like(parameters)

    def hyperparameters(self):
        """The constructor arguments as plain data (for saving and printing)."""
        return {"learning_rate": self.learning_rate, "schedule": self.schedule.config()}

    def load_state(self, state):
        """Restore state saved from :attr:`state` (arrays are copied)."""
        missing = [name for name in ("step", *self.state_names) if name not in state]
        if missing:
            raise ValueError(f"optimiser state for {self.name} lacks {', '.join(missing)}")
        self.state = {"step": int(state["step"])}
        for state_name in self.state_names:
            array = state[state_name]
            self.state[state_name] = namespace(array).asarray(array, copy=True)
        self._scratch = None  # made at the next step, on the parameters' backend

    def __repr__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.hyperparameters().items()
                              if key != "schedule")
        return f"{type(self).__name__}({arguments})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and Nesterov momentum.

    Parameters
    ----------
    learning_rate : float, default 0.01
    momentum : float in [0, 1), default 0.0
    nesterov : bool, default False
    schedule : str or Schedule, default "constant"
    """

    name = "sgd"
    state_names = ("velocity",)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, schedule="constant"):
        super().__init__(learning_rate, schedule)
        self.momentum = _fraction(momentum, "momentum")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs a momentum > 0 (e.g. momentum=0.9)")

    @property
    def decays(self):
        return {"velocity": self.momentum} if self.momentum else {}

    def _apply(self, parameters, gradients, state, scratch, learning_rate):
        sgd_update(parameters, gradients, state, scratch, learning_rate=learning_rate, momentum=self.momentum,
                   nesterov=self.nesterov)

    def _kernel_arguments(self, learning_rate, thresholds):
        if not self.momentum:
            return "sgd", (), (learning_rate,)
        return ("nesterov" if self.nesterov else "momentum", (self.state["velocity"],),
                (self.momentum, learning_rate, thresholds.get("velocity", 0.0)))

    def hyperparameters(self):
        return {**super().hyperparameters(), "momentum": self.momentum, "nesterov": self.nesterov}


class Momentum(SGD):
    """SGD with momentum 0.9 by default."""

    name = "momentum"

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False, schedule="constant"):
        super().__init__(learning_rate, momentum, nesterov, schedule)


class Nesterov(SGD):
    """SGD with Nesterov momentum, 0.9 by default."""

    name = "nesterov"

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=True, schedule="constant"):
        super().__init__(learning_rate, momentum, nesterov, schedule)


class AdaGrad(Optimizer):
    """AdaGrad: per-parameter steps shrinking with the sum of squared gradients.

    Parameters
    ----------
    learning_rate : float, default 0.01
    epsilon : float, default 1e-10 (PyTorch's)
    schedule : str or Schedule, default "constant"
    """

    name = "adagrad"
    state_names = ("sum_squares",)

    def __init__(self, learning_rate=0.01, epsilon=1e-10, schedule="constant"):
        super().__init__(learning_rate, schedule)
        self.epsilon = _positive(epsilon, "epsilon")

    @property
    def decays(self):
        return {"sum_squares": 1.0}  # a sum: it never shrinks, but tiny gradients can make it subnormal

    def _apply(self, parameters, gradients, state, scratch, learning_rate):
        adagrad_update(parameters, gradients, state, scratch, learning_rate=learning_rate, epsilon=self.epsilon)

    def _kernel_arguments(self, learning_rate, thresholds):
        return ("adagrad", (self.state["sum_squares"],),
                (learning_rate, self.epsilon, thresholds.get("sum_squares", 0.0)))

    def hyperparameters(self):
        return {**super().hyperparameters(), "epsilon": self.epsilon}


class RMSProp(Optimizer):
    """RMSProp: steps scaled by a running mean of squared gradients.

    Parameters
    ----------
    learning_rate : float, default 0.001
    rho : float in [0, 1), default 0.9 (the decay of the running mean; PyTorch calls it alpha)
    epsilon : float, default 1e-8
    schedule : str or Schedule, default "constant"
    """

    name = "rmsprop"
    state_names = ("mean_square",)

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-8, schedule="constant"):
        super().__init__(learning_rate, schedule)
        self.rho = _fraction(rho, "rho")
        self.epsilon = _positive(epsilon, "epsilon")

    @property
    def decays(self):
        return {"mean_square": self.rho}

    def _apply(self, parameters, gradients, state, scratch, learning_rate):
        rmsprop_update(parameters, gradients, state, scratch, learning_rate=learning_rate, rho=self.rho,
                       epsilon=self.epsilon)

    def _kernel_arguments(self, learning_rate, thresholds):
        return ("rmsprop", (self.state["mean_square"],),
                (self.rho, 1.0 - self.rho, learning_rate, self.epsilon, thresholds.get("mean_square", 0.0)))

    def hyperparameters(self):
        return {**super().hyperparameters(), "rho": self.rho, "epsilon": self.epsilon}


class Adam(Optimizer):
    """Adam with bias-corrected moment estimates.

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta1, beta2 : float in [0, 1), defaults 0.9 and 0.999
    epsilon : float, default 1e-8
    schedule : str or Schedule, default "constant"
    """

    name = "adam"
    state_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, schedule="constant"):
        super().__init__(learning_rate, schedule)
        self.beta1 = _fraction(beta1, "beta1")
        self.beta2 = _fraction(beta2, "beta2")
        self.epsilon = _positive(epsilon, "epsilon")

    @property
    def decays(self):
        return {"m": self.beta1, "v": self.beta2}

    def _apply(self, parameters, gradients, state, scratch, learning_rate):
        adam_update(parameters, gradients, state, scratch, learning_rate=learning_rate, beta1=self.beta1,
                    beta2=self.beta2, epsilon=self.epsilon, step=self.state["step"])

    def _kernel_arguments(self, learning_rate, thresholds):
        corrections = adam_corrections(learning_rate, self.beta1, self.beta2, self.epsilon, self.state["step"])
        return ("adam", (self.state["m"], self.state["v"]),
                (1.0 - self.beta1, 1.0 - self.beta2, *corrections,
                 thresholds.get("m", 0.0), thresholds.get("v", 0.0)))

    def hyperparameters(self):
        return {**super().hyperparameters(), "beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon}


OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSProp,
    "adam": Adam,
}


def get_optimizer(name, learning_rate=None, **options):
    """Return an optimiser by name (with an optional learning rate and options), or an instance as is.

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones, or invalid hyperparameters.
    """
    if isinstance(name, Optimizer):
        return name
    optimizer_class = type(lookup(OPTIMIZERS, name, "optimizer", base=Optimizer))
    if learning_rate is not None:
        options["learning_rate"] = learning_rate
    return optimizer_class(**options)


def _positive(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a number, got {value!r}") from error
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def _fraction(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a number in [0, 1), got {value!r}") from error
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value
