"""Optimisers: SGD (momentum, Nesterov), AdaGrad, RMSProp, Adam, AdamW, and the OPTIMIZERS table.

An update rule is one record (:class:`Rule`): the names of its state arrays, its update as a function of
(param, grad, state, scratch) and of *named* hyperparameters, and, optionally, the compiled kernel that
performs the same update in one pass (numnet.kernels), with the kernel's scalars computed from the same
names. An optimiser class holds the hyperparameters and the state and names its record in ``rule``; the
OPTIMIZERS table maps a name to the class. A new rule is written in one place, its record and its class, and
registered in that table, with no edit elsewhere: everything around the update, the same for every rule,
is one execution strategy (:class:`RuleRunner`).

The rules update in place, with one preallocated scratch buffer, rather than returning new arrays: the
network keeps all parameters in one flat buffer, so each line below is one pass over every parameter of the
model, with no temporaries (benchmarks/NOTES.md, "fused in-place optimiser"). The forms follow PyTorch's, so
that the first steps can be compared with torch.optim to rounding.

State that decays geometrically drifts into subnormal floats: a relu parameter whose gradient is exactly
zero has its momentum multiplied by 0.9 every step until, a few hundred steps later, it is non-zero but
below the dtype's smallest normal, where some CPUs compute about 15 times slower (issue 10). Every
``FLUSH_INTERVAL`` steps the optimiser sets to zero the state values that could reach that range before
the next flush (:func:`flush_thresholds`); the flush is keyed on the saved step count, so a resumed run
flushes at the same steps and stays bit-identical (benchmarks/NOTES.md, "subnormal optimiser state").
"""

import dataclasses
import functools
import inspect
import itertools
import math
import operator

from ._registry import lookup
from .backend import apply, namespace, to_numpy
from .kernels import (compilable, compiled_chosen, current_choice, fused_step, in_chunks, kernel_arguments,
                      run_in_chunks, scalars)
from .schedules import get_schedule
from .validation import Boolean, OneOf, Real, declare

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
#: The hyperparameters an optimiser fills at each step rather than from its attributes: the scheduled
#: learning rate and the step count t (from 1).
STEP_VALUES = ("learning_rate", "step")
#: The choices of AdamW's ``decay``: which parameters its weight decay shrinks.
DECAY_CHOICES = ("all", "matrices")


# ---- the update rules, in NumPy (the reference) ----------------------------------------------------------

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


def adamw_update(param, grad, state, scratch, *, learning_rate, beta1, beta2, epsilon, weight_decay, step):
    """AdamW (Loshchilov & Hutter 2019) as torch.optim.AdamW applies it: the weights shrink first, by the
    scheduled rate, p ← p·(1 - lr·λ), then Adam's step (:func:`adam_update`) with the gradient alone, which
    the decay never enters (unlike an L2 penalty, whose gradient λ·p Adam would divide by √v̂).

    Where ``state`` holds a "decayed" array (1 for a parameter that decays, 0 for one that does not: AdamW's
    ``decay="matrices"``), only the first shrink; a parameter that does not is left exactly as it was.
    """
    xp = namespace(param)
    keep = 1.0 - learning_rate * weight_decay
    decayed = state.get("decayed")
    if decayed is None:
        param *= keep
    else:
        apply(xp.multiply, param, keep, out=scratch)
        param[...] = xp.where(decayed != 0, scratch, param)
    adam_update(param, grad, state, scratch, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                epsilon=epsilon, step=step)


# ---- the records: one per rule ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Rule:
    """An update rule as one record: what numnet needs to know to run, flush and save it.

    An optimiser class names its record in ``rule`` (:class:`Optimizer`); :class:`RuleRunner` runs every
    record the same way.

    Parameters
    ----------
    name : str
        The rule's name, for messages.
    update : callable
        ``update(param, grad, state, scratch, **hyperparameters)``: the rule in NumPy, the reference. It
        updates ``param`` and the arrays of the dict ``state`` (all shaped like ``param``) in place, using
        ``scratch`` (an array like ``param``) for its intermediate values. Its keyword-only parameters are the
        hyperparameters it reads, filled by name at every step: ``learning_rate`` (the scheduled rate),
        ``step`` (t, counting from 1) and, for every other name, the optimiser's attribute of that name.
    state_names : tuple of str, default ()
        The state arrays, each shaped like the parameters: zero at the start, saved with a model.
    decays : callable, optional
        ``decays(hyperparameters)``: {state name: the factor the update multiplies that state by each step,
        in [0, 1]}, from which the flush against subnormal drift is computed (:func:`flush_thresholds`).
        Default: no state is flushed.
    constant_names : tuple of str, default ()
        Arrays shaped like the parameters that the update reads, never changes and never saves: the
        optimiser's ``constants``, which its ``bind`` makes (AdamW's "decayed" mask).
    kernel : str or callable, optional
        The compiled kernel that performs the update in one pass: a name in numnet's table of kernels
        (numnet._compiled_kernels.KERNELS) or a numba function of one's own. Its arguments are matched by
        name: ``kept``, ``p``, ``g`` (numnet.kernels.fused_step), then arrays named like the state and
        constant arrays it reads, then scalars, each either ``flush_<state name>`` (that state's flush
        threshold; 0 when no flush is due) or a name that ``kernel_scalars`` gives. Without a kernel, the
        NumPy update always runs.
    kernel_scalars : callable, optional
        ``kernel_scalars(hyperparameters)``: {kernel argument name: value}, the kernel's other scalars (as
        Python floats; they are rounded to the parameters' dtype as NumPy rounds them).
    """

    name: str
    update: object
    state_names: tuple = ()
    decays: object = None
    constant_names: tuple = ()
    kernel: object = None
    kernel_scalars: object = None
    #: The update's keyword-only parameters: the hyperparameters each step fills by name.
    hyperparameter_names: tuple = dataclasses.field(init=False, repr=False)
    #: Those of them read from the optimiser's attributes (all but ``learning_rate`` and ``step``).
    attribute_names: tuple = dataclasses.field(init=False, repr=False)
    #: Whether the update reads the scheduled learning rate, and the step count.
    reads_learning_rate: bool = dataclasses.field(init=False, repr=False)
    reads_step: bool = dataclasses.field(init=False, repr=False)
    #: The state names, then the constant names: every array the rule reads besides param and grad.
    array_names: tuple = dataclasses.field(init=False, repr=False)
    #: (state name, its kernel argument "flush_<state name>") for every state array.
    flush_names: tuple = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        if self.decays is None:
            object.__setattr__(self, "decays", _no_decays)
        if (self.kernel is None) != (self.kernel_scalars is None):
            raise ValueError(f"rule {self.name!r}: give a kernel and its kernel_scalars together, or neither")
        names = tuple(name for name, parameter in inspect.signature(self.update).parameters.items()
                      if parameter.kind is inspect.Parameter.KEYWORD_ONLY)
        object.__setattr__(self, "hyperparameter_names", names)
        object.__setattr__(self, "attribute_names", tuple(name for name in names if name not in STEP_VALUES))
        object.__setattr__(self, "reads_learning_rate", "learning_rate" in names)
        object.__setattr__(self, "reads_step", "step" in names)
        object.__setattr__(self, "array_names", tuple(self.state_names) + tuple(self.constant_names))
        object.__setattr__(self, "flush_names", tuple((name, f"flush_{name}") for name in self.state_names))


def _no_decays(hyperparameters):
    return {}


def _adam_kernel_scalars(hyperparameters):
    """The scalars of adam_step: 1-β1, 1-β2 and the bias corrections folded into ε and the step size."""
    beta1, beta2 = hyperparameters["beta1"], hyperparameters["beta2"]
    corrected_epsilon, step_size = adam_corrections(hyperparameters["learning_rate"], beta1, beta2,
                                                    hyperparameters["epsilon"], hyperparameters["step"])
    return {"one_minus_beta1": 1.0 - beta1, "one_minus_beta2": 1.0 - beta2,
            "corrected_epsilon": corrected_epsilon, "step_size": step_size}


def _adamw_kernel_scalars(hyperparameters):
    """adam_step's scalars and ``keep`` = 1 - lr·λ, the factor the decayed weights shrink by."""
    keep = 1.0 - hyperparameters["learning_rate"] * hyperparameters["weight_decay"]
    return {"keep": keep, **_adam_kernel_scalars(hyperparameters)}


def _momentum_decays(hyperparameters):
    return {"velocity": hyperparameters["momentum"]}


def _momentum_kernel_scalars(hyperparameters):
    return {"momentum": hyperparameters["momentum"], "learning_rate": hyperparameters["learning_rate"]}


def _rmsprop_kernel_scalars(hyperparameters):
    rho = hyperparameters["rho"]
    return {"rho": rho, "one_minus_rho": 1.0 - rho, "learning_rate": hyperparameters["learning_rate"],
            "epsilon": hyperparameters["epsilon"]}


def _adam_decays(hyperparameters):
    return {"m": hyperparameters["beta1"], "v": hyperparameters["beta2"]}


# Plain SGD keeps a velocity too (zero, never updated): the SGD class saves the same arrays whatever its
# momentum, as numnet 0.2 did.
SGD_RULE = Rule("sgd", sgd_update, state_names=("velocity",), kernel="sgd_step",
                kernel_scalars=lambda hyperparameters: {"learning_rate": hyperparameters["learning_rate"]})
MOMENTUM_RULE = Rule("momentum", sgd_update, state_names=("velocity",), decays=_momentum_decays,
                     kernel="momentum_step", kernel_scalars=_momentum_kernel_scalars)
NESTEROV_RULE = Rule("nesterov", sgd_update, state_names=("velocity",), decays=_momentum_decays,
                     kernel="nesterov_step", kernel_scalars=_momentum_kernel_scalars)
# A sum: it never shrinks (decay 1), but tiny gradients can make it subnormal.
ADAGRAD_RULE = Rule("adagrad", adagrad_update, state_names=("sum_squares",),
                    decays=lambda hyperparameters: {"sum_squares": 1.0}, kernel="adagrad_step",
                    kernel_scalars=lambda hyperparameters: {"learning_rate": hyperparameters["learning_rate"],
                                                            "epsilon": hyperparameters["epsilon"]})
RMSPROP_RULE = Rule("rmsprop", rmsprop_update, state_names=("mean_square",),
                    decays=lambda hyperparameters: {"mean_square": hyperparameters["rho"]}, kernel="rmsprop_step",
                    kernel_scalars=_rmsprop_kernel_scalars)
ADAM_RULE = Rule("adam", adam_update, state_names=("m", "v"), decays=_adam_decays, kernel="adam_step",
                 kernel_scalars=_adam_kernel_scalars)
ADAMW_RULE = Rule("adamw", adamw_update, state_names=("m", "v"), decays=_adam_decays, kernel="adamw_step",
                  kernel_scalars=_adamw_kernel_scalars)
# decay="matrices": the same update, reading the mask of the parameters that decay (AdamW.bind).
ADAMW_MATRICES_RULE = Rule("adamw", adamw_update, state_names=("m", "v"), decays=_adam_decays,
                           constant_names=("decayed",), kernel="adamw_masked_step",
                           kernel_scalars=_adamw_kernel_scalars)


# ---- the flush against subnormal drift -------------------------------------------------------------------

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


def due_flush_thresholds(decays, step, parameters):
    """{state name: threshold} when a flush of state with these ``decays`` is due at ``step`` (by the
    saved step count, so a resumed run flushes at the same steps), else {}."""
    interval = flush_interval(tuple(decays.values()))
    if not decays or step % interval:
        return {}
    smallest_normal = float(namespace(parameters).finfo(parameters.dtype).smallest_normal)
    return flush_thresholds(decays, smallest_normal, interval)


# ---- the execution strategy, one for every rule ----------------------------------------------------------

class RuleRunner:
    """How every rule runs: the flush, the choice between the compiled kernel and the NumPy update, and the
    chunks and threads either runs in. An optimiser holds one, with the scratch buffer of its NumPy updates
    and its compiled update.

    The compiled kernel runs where the rule has one, the compiled kernels are chosen (numnet.kernels) and
    every array suits them; otherwise the NumPy update, on whole arrays, or on arrays larger than
    ``RULE_CHUNK`` in cache-sized chunks over the kernel threads: twelve passes over a chunk that stays in
    the core's cache instead of over the whole buffer (benchmarks/NOTES.md, "NumPy rules in chunks"). Both
    give the same numbers bit for bit (tests/test_kernels.py).
    """

    def __init__(self):
        self.scratch = None  # an array like the parameters: the NumPy updates' workspace
        self._compiled = None  # (rule, kernels choice, the arrays, what _compile made): see _compiled_update

    def __getstate__(self):
        return {"scratch": None, "_compiled": None}  # the compiled update cannot be pickled: made again

    def fits(self, parameters):
        """Whether the scratch buffer is made for arrays like ``parameters`` (else :meth:`prepare` first)."""
        scratch = self.scratch
        return scratch is not None and type(scratch) is type(parameters) and scratch.shape == parameters.shape

    def prepare(self, parameters):
        """Make the scratch buffer for arrays like ``parameters``; None forgets it."""
        self.scratch = None if parameters is None else namespace(parameters).empty_like(parameters)

    def run(self, rule, hyperparameters, arrays, parameters, gradients, *, step, flush, previous):
        """One step of ``rule``: update ``parameters`` and the rule's arrays in ``arrays`` (a dict holding at
        least its state and constant arrays, by name) in place from ``gradients``, with ``hyperparameters`` by
        name, then flush the state if a flush is due at ``step`` (and ``flush`` is on); ``previous`` (or None)
        receives the parameters as they were."""
        thresholds = due_flush_thresholds(rule.decays(hyperparameters), step, parameters) if flush else {}
        # Asked first: without the kernels, the NumPy path pays none of their bookkeeping (3 µs a step).
        if rule.kernel is not None and compiled_chosen():
            compiled = self._compiled_update(rule, hyperparameters, parameters, gradients, arrays)
            if compiled is not None:
                update, ordered, no_flush = compiled
                values = rule.kernel_scalars(hyperparameters)
                if thresholds:
                    for state_name, flush_name in rule.flush_names:
                        values[flush_name] = thresholds.get(state_name, 0.0)
                else:  # most steps: every threshold 0, from one dict made with the update
                    values.update(no_flush)
                # The zeros from one dict, the scalars picked by itemgetter and the cheaper checks of
                # _compiled_update: Adam's step over the digits 15.7 -> 14.3 µs (benchmarks/NOTES.md,
                # "per-step overhead of the digits step").
                update(*scalars(parameters.dtype, *ordered(values)), previous=previous)
                return
        if parameters.size <= RULE_CHUNK:
            _update_part(rule, hyperparameters, thresholds, parameters, gradients, self.scratch, arrays, previous)
        else:
            self._run_in_chunks(rule, hyperparameters, thresholds, parameters, gradients, arrays, previous)

    def _run_in_chunks(self, rule, hyperparameters, thresholds, parameters, gradients, arrays, previous):
        """The NumPy update and the due flush of arrays larger than a chunk: in chunks, when they are NumPy
        arrays that can be cut in chunks, else whole."""
        arrays = {name: arrays[name] for name in rule.array_names}
        everything = (parameters, gradients, self.scratch, *arrays.values(), *([] if previous is None else [previous]))
        if not in_chunks(*everything):
            _update_part(rule, hyperparameters, thresholds, parameters, gradients, self.scratch, arrays, previous)
            return
        flat_parameters, flat_gradients, flat_scratch = (array.reshape(-1) for array in everything[:3])
        flat_arrays = {name: array.reshape(-1) for name, array in arrays.items()}
        flat_previous = None if previous is None else previous.reshape(-1)

        def update_chunk(start, stop):
            _update_part(rule, hyperparameters, thresholds, flat_parameters[start:stop], flat_gradients[start:stop],
                         flat_scratch[start:stop], {name: array[start:stop] for name, array in flat_arrays.items()},
                         None if flat_previous is None else flat_previous[start:stop])

        run_in_chunks(update_chunk, parameters.size, min_chunk=2 * RULE_CHUNK, max_chunk=RULE_CHUNK)

    def _compiled_update(self, rule, hyperparameters, parameters, gradients, arrays):
        """(the compiled update, a function that orders a dict of its scalars by their names, {every flush
        argument: 0.0}) for these arrays, or None where the kernel does not apply: checked once and kept
        while the same rule, kernels choice and arrays come back (every step of a fit steps the network's
        flat buffers): the checks cost 9 µs, 8% of a digits step."""
        cached = self._compiled
        if (cached is None or cached[0] is not rule or cached[1] != current_choice()
                or cached[2] is not parameters or cached[3] is not gradients
                or not all(map(operator.is_, map(arrays.__getitem__, rule.array_names), cached[4]))):
            arrays_read = tuple(arrays[name] for name in rule.array_names)
            cached = self._compiled = (rule, current_choice(), parameters, gradients, arrays_read,
                                       _compile(rule, hyperparameters, parameters, gradients, arrays))
        return cached[5]


def _update_part(rule, hyperparameters, thresholds, parameters, gradients, scratch, arrays, previous):
    """Keep the previous parameters (when ``previous`` is given), apply the rule's NumPy update, flush: on
    whole arrays, or on views of one chunk of them."""
    if previous is not None:
        previous[...] = parameters
    rule.update(parameters, gradients, arrays, scratch, **hyperparameters)
    for name, threshold in thresholds.items():
        flush_below(arrays[name], threshold)


def _compile(rule, hyperparameters, parameters, gradients, arrays):
    """(numnet.kernels.fused_step's update of ``rule``'s kernel over these arrays, a function that picks the
    scalars it takes from a dict, in its order, {every flush argument: 0.0}), or None where it does not
    apply."""
    if not compilable(parameters, gradients, *[arrays[name] for name in rule.array_names]):
        return None
    names = kernel_arguments(rule.kernel)
    array_names = tuple(itertools.takewhile(rule.array_names.__contains__, names[3:]))
    scalar_names = names[3 + len(array_names):]
    _check_kernel_arguments(rule, names, scalar_names, hyperparameters)
    update = fused_step(rule.kernel, parameters, gradients, *(arrays[name] for name in array_names))
    if update is None:
        return None
    return update, _picker(scalar_names), {flush_name: 0.0 for _, flush_name in rule.flush_names}


def _picker(names):
    """A function of a dict that returns the tuple of its values for ``names``, in order: itemgetter, one C
    call, rather than a list comprehension at every step; a tuple for one name too."""
    if len(names) == 1:
        return lambda values: (values[names[0]],)
    return operator.itemgetter(*names) if names else lambda values: ()


def _check_kernel_arguments(rule, names, scalar_names, hyperparameters):
    """Raise TypeError unless the kernel's arguments are ``kept, p, g``, arrays the rule has, then scalars the
    rule gives (its flush thresholds and ``kernel_scalars``), each of them taken."""
    flushes = {flush_name for _, flush_name in rule.flush_names}
    given = set(rule.kernel_scalars(hyperparameters))
    unknown = [name for name in scalar_names if name not in given and name not in flushes]
    untaken = sorted(given.difference(scalar_names))
    if names[:3] == ("kept", "p", "g") and not unknown and not untaken:
        return
    raise TypeError(
        f"the kernel {rule.kernel!r} of rule {rule.name!r} takes ({', '.join(names)}); a rule's kernel takes "
        f"kept, p, g, then arrays named like its state or constant arrays "
        f"({', '.join(rule.state_names + rule.constant_names) or 'none'}), then scalars, each a flush threshold "
        f"flush_<state name> or a name its kernel_scalars gives ({', '.join(sorted(given)) or 'none'})"
        + (f"; not given: {', '.join(unknown)}" if unknown else "")
        + (f"; given but not taken: {', '.join(untaken)}" if untaken else ""))


# ---- the optimisers: hyperparameters and state, applied by the runner --------------------------------------

class Optimizer:
    """Base class: holds the hyperparameters and the state of a rule (:class:`Rule`) and applies it to flat
    arrays.

    A subclass names its record in ``rule`` and takes its hyperparameters as constructor arguments stored
    in attributes of the same names, which the rule's update reads by name; the rest (state, flush,
    compiled kernel, saving) comes from this class.

    Parameters
    ----------
    learning_rate : float
        The base learning rate (> 0).
    schedule : str or Schedule, default "constant"
        How the learning rate changes with the step number.
    """

    name = "optimizer"
    #: The update rule (a :class:`Rule`); a property where the hyperparameters choose it (SGD's momentum).
    rule = None
    #: Whether the state is flushed of values near the subnormal range every few steps (see the module's
    #: docstring). Set it False on an instance only to watch the drift happen.
    flush_subnormals = True

    @declare(learning_rate=Real(above=0))
    def __init__(self, learning_rate, schedule="constant"):
        self.learning_rate = learning_rate
        self.schedule = get_schedule(schedule)
        self.state = None
        #: Arrays shaped like the parameters that the rule reads and nobody saves (``Rule.constant_names``).
        self.constants = {}
        self._runner = RuleRunner()

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "_runner" not in state:  # pickled by numnet 0.2, before the runner and the constants
            self._runner, self.constants = RuleRunner(), {}

    @property
    def state_names(self):
        """The names of the state arrays this optimiser keeps, each shaped like the parameters.

        Raises
        ------
        TypeError
            For an optimiser class that names no rule (asked before its first step, by ``init``).
        """
        if self.rule is None:
            raise TypeError(f"{type(self).__name__} names no update rule: set the class attribute rule to a "
                            "numnet.optimizers.Rule (see Adam's)")
        return self.rule.state_names

    @property
    def decays(self):
        """State name -> the factor the update rule multiplies it by each step, for every state it updates.

        The flush against subnormal drift (:func:`flush_thresholds`) is computed from these.
        """
        step = self.state["step"] if self.state else 0
        return self.rule.decays(self._hyperparameters_now(self.rule, self.current_learning_rate, step))

    def bind(self, network):
        """Learn from ``network`` what the rule needs to know about its parameters besides their values (fit
        calls it before training); returns the optimiser. Only AdamW with ``decay="matrices"`` needs
        anything: which parameters decay."""
        return self

    def init(self, parameters):
        """Create zeroed state for ``parameters`` (a flat array); returns the state dict."""
        xp = namespace(parameters)
        self.state = {"step": 0}
        for state_name in self.state_names:
            self.state[state_name] = xp.zeros_like(parameters)
        self._runner.prepare(parameters)
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
        elif not self._runner.fits(parameters):
            self._adopt_state(parameters)
        learning_rate = self.current_learning_rate
        self.state["step"] += 1
        rule, step = self.rule, self.state["step"]
        self._runner.run(rule, self._hyperparameters_now(rule, learning_rate, step), self._arrays(rule),
                         parameters, gradients, step=step, flush=self.flush_subnormals, previous=previous)

    def _hyperparameters_now(self, rule, learning_rate, step):
        """The rule's hyperparameters for a step, by name (``Rule.hyperparameter_names``): this optimiser's
        attributes of those names, the scheduled learning rate and the step count t."""
        hyperparameters = {name: getattr(self, name) for name in rule.attribute_names}
        if rule.reads_learning_rate:
            hyperparameters["learning_rate"] = learning_rate
        if rule.reads_step:
            hyperparameters["step"] = step
        return hyperparameters

    def _arrays(self, rule):
        """A dict holding the rule's arrays by name: the state (as it is: the NumPy path reads it by name),
        and the constants when the rule reads any."""
        if not rule.constant_names:
            return self.state
        missing = [name for name in rule.constant_names if name not in self.constants]
        if missing:
            raise RuntimeError(f"{self!r} needs to know which parameters are which before it steps "
                               f"({', '.join(missing)}): fit tells it; to step it yourself, call "
                               "optimizer.bind(network) first")
        return {**self.state, **self.constants}

    def _adopt_state(self, parameters):
        """Move loaded state (NumPy arrays from a file) to the parameters' library and make the scratch buffer."""
        xp = namespace(parameters)
        for state_name in self.state_names:
            if tuple(self.state[state_name].shape) != tuple(parameters.shape):
                raise ValueError(f"the optimiser's {state_name!r} state has shape {self.state[state_name].shape}, "
                                 f"but the parameters have shape {parameters.shape}")
            if type(self.state[state_name]) is not type(parameters):
                self.state[state_name] = xp.asarray(to_numpy(self.state[state_name]), dtype=parameters.dtype)
        self._runner.prepare(parameters)

    def hyperparameters(self):
        """The constructor arguments as plain data (for saving and printing): the learning rate, the schedule's
        config, then the attributes named like the other constructor arguments."""
        others = [name for name in inspect.signature(type(self)).parameters
                  if name not in ("learning_rate", "schedule")]
        return {"learning_rate": self.learning_rate, "schedule": self.schedule.config(),
                **{name: getattr(self, name) for name in others}}

    def load_state(self, state):
        """Restore state saved from :attr:`state` (arrays are copied)."""
        missing = [name for name in ("step", *self.state_names) if name not in state]
        if missing:
            raise ValueError(f"optimiser state for {self.name} lacks {', '.join(missing)}")
        self.state = {"step": int(state["step"])}
        for state_name in self.state_names:
            array = state[state_name]
            self.state[state_name] = namespace(array).asarray(array, copy=True)
        self._runner.prepare(None)  # made at the next step, on the parameters' backend

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

    @declare(momentum=Real(at_least=0, below=1), nesterov=Boolean())
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, schedule="constant"):
        super().__init__(learning_rate, schedule)
        self.momentum = momentum
        self.nesterov = nesterov
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs a momentum > 0 (e.g. momentum=0.9)")

    @property
    def rule(self):
        """Plain, momentum or Nesterov: one compiled kernel each."""
        if not self.momentum:
            return SGD_RULE
        return NESTEROV_RULE if self.nesterov else MOMENTUM_RULE


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
    rule = ADAGRAD_RULE

    @declare(epsilon=Real(above=0))
    def __init__(self, learning_rate=0.01, epsilon=1e-10, schedule="constant"):
        super().__init__(learning_rate, schedule)
        self.epsilon = epsilon


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
    rule = RMSPROP_RULE

    @declare(rho=Real(at_least=0, below=1), epsilon=Real(above=0))
    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-8, schedule="constant"):
        super().__init__(learning_rate, schedule)
        self.rho = rho
        self.epsilon = epsilon


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
    rule = ADAM_RULE

    @declare(beta1=Real(at_least=0, below=1), beta2=Real(at_least=0, below=1), epsilon=Real(above=0))
    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, schedule="constant"):
        super().__init__(learning_rate, schedule)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon


class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``.

    Each step first shrinks the decayed parameters by the scheduled learning rate lrₜ, p ← p·(1 - lrₜ·λ),
    then takes Adam's step (:class:`Adam`) with the gradient alone (:func:`adamw_update`).

    The decay and the network's ``l2`` penalty are two different things, and they add up when both are set.
    ``Network(l2=λ₂)`` adds λ₂·W to the gradient of every penalised weight; in Adam that term enters the
    moments and is divided by √v̂ with the rest of the gradient, so it shrinks weights whose gradients are
    large less than others. AdamW's decay does not touch the gradient: it shrinks every decayed weight by the
    same fraction lrₜ·λ per step. With both, the weights get the penalty's gradient and the decay. AdamW is
    usually run with ``l2=0``.

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta1, beta2 : float in [0, 1), defaults 0.9 and 0.999
    epsilon : float, default 1e-8
    weight_decay : float >= 0, default 0.01 (PyTorch's)
        λ: the fraction of themselves the decayed parameters lose per step, times the learning rate.
    decay : {"all", "matrices"}, default "all"
        Which parameters decay: every one (what ``torch.optim.AdamW`` does when given all of a model's
        parameters), or only those the layers name in ``penalized_parameters()``, the ones ``l2`` penalises:
        Dense's and Conv2D's weight matrices, never a bias or BatchNorm's γ and β (``fit`` tells the
        optimiser which they are: :meth:`bind`).
    schedule : str or Schedule, default "constant"

    Examples
    --------
    >>> import numnet
    >>> optimizer = numnet.optimizers.AdamW(learning_rate=0.001, weight_decay=0.01, decay="matrices")
    >>> optimizer.hyperparameters()["decay"]
    'matrices'
    """

    name = "adamw"

    @declare(beta1=Real(at_least=0, below=1), beta2=Real(at_least=0, below=1), epsilon=Real(above=0), weight_decay=Real(at_least=0),
             decay=OneOf(*DECAY_CHOICES, ignore_case=True))
    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01, decay="all",
                 schedule="constant"):
        super().__init__(learning_rate, schedule)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weight_decay = weight_decay
        self.decay = decay.strip().lower()

    @property
    def rule(self):
        """ADAMW_RULE, or with decay="matrices" the same update reading the mask of the decayed parameters."""
        return ADAMW_MATRICES_RULE if self.decay == "matrices" else ADAMW_RULE

    def bind(self, network):
        """With decay="matrices", keep the mask of the parameters that decay: 1 on those ``network``'s layers
        name in ``penalized_parameters()``, 0 elsewhere, laid out like its flat parameters; returns the
        optimiser."""
        self.constants = {}
        if self.decay == "matrices":
            decayed = namespace(network.flat_parameters).zeros_like(network.flat_parameters)
            views = network.unflatten(decayed)
            for name in network.weight_names():
                views[name][...] = 1
            self.constants["decayed"] = decayed
        return self


OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSProp,
    "adam": Adam,
    "adamw": AdamW,
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
