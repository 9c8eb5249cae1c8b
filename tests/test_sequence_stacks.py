"""Random stacks of sequence layers against central differences (issue 23): Embedding or float sequences,
then RNN, LSTM, GRU and Dense (on the last axis) in any order, ending in a Dense softmax with the sequence
cross-entropy, every parameter's gradient checked by numnet.gradient_check in float64.

The stacks end in a sequence tagger's output (n, T, classes) with class ids (n, T), some of them
ignore_index = -1, or, when the last recurrent layer keeps only its last step, a classifier's output
(n, classes) with class ids (n,). Gradient clipping (``fit(clip_norm=...)``) plays no part: it rescales
the finished gradient before the optimiser, and gradient_check compares the gradient itself.
"""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numnet
from numnet.gradcheck import NETWORK_STEP
from oracles import as_numpy

#: numnet.gradient_check's own bar: float64 backprop and central differences (step h = 1e-5, truncation
#: ~h²·|C'''|) agree to well below it wherever rounding allows (the worst parameter of each stack: 1e-9 in
#: the median, measured over 600 random stacks).
GRADIENT_TOLERANCE = 1e-6
#: The loss's rounding relative to it: C is computed to about ε·|C|, so each entry of a central difference
#: carries up to ~ε·|C|/h of rounding, and a parameter array √size times that. A vanishing gradient, so
#: small that this floor is more than a millionth of it (an LSTM's Wh behind two one-unit LSTMs: norm 4e-9
#: against a floor of 3e-11 at C ≈ 0.7), cannot be checked to GRADIENT_TOLERANCE; it is held to the floor
#: instead. Measured: of 600 stacks' 5,040 gradients, 18 missed 1e-6 (by up to 4e-4), each within 0.42 of
#: its floor; the others stayed within 20 floors (their truncation error, not rounding).
ROUNDING = np.finfo(np.float64).eps
#: The same sums over positions, some holding zeros, perhaps added in another order: a few ulps apart.
REORDERING_TOLERANCE = 1e-12
#: Stacks per ignore-or-not case: each costs two forward passes per parameter entry (a few hundred entries).
EXAMPLES = 25
RECURRENT = {"RNN": numnet.RNN, "LSTM": numnet.LSTM, "GRU": numnet.GRU}
#: Smooth activations only: at a kink (relu at 0) a central difference straddles two slopes.
DENSE_ACTIVATIONS = ("tanh", "sigmoid", "linear")


@dataclasses.dataclass(frozen=True)
class Stack:
    """A random stack's description (hypothesis prints it for a failing example)."""

    vocab_size: int | None  # an Embedding first when set, else float sequences of ``features``
    features: int
    hidden: tuple  # (kind, units, Dense activation or None) per layer, in order
    last_step_only: bool  # the last recurrent layer returns only its last step (return_sequences=False)
    classes: int
    n_samples: int
    time_steps: int
    seed: int

    def layers(self):
        """The layers, with the final Dense softmax."""
        last_recurrent = max(i for i, (kind, _, _) in enumerate(self.hidden) if kind in RECURRENT)
        layers = [numnet.Embedding(self.vocab_size, self.features)] if self.vocab_size else []
        width = self.features
        for index, (kind, units, activation) in enumerate(self.hidden):
            if kind == "Dense":
                layers.append(numnet.Dense(width, units, activation))
            else:
                keep_sequence = not (self.last_step_only and index == last_recurrent)
                layers.append(RECURRENT[kind](width, units, return_sequences=keep_sequence))
            width = units
        return [*layers, numnet.Dense(width, self.classes, "softmax")]


@st.composite
def stacks(draw):
    kinds = draw(st.lists(st.sampled_from(["RNN", "LSTM", "GRU", "Dense"]), min_size=1, max_size=3)
                 .filter(lambda kinds: any(kind in RECURRENT for kind in kinds)))
    activations = [draw(st.sampled_from(DENSE_ACTIVATIONS)) if kind == "Dense" else None for kind in kinds]
    hidden = tuple((kind, draw(st.integers(1, 3)), activation) for kind, activation in zip(kinds, activations))
    return Stack(vocab_size=draw(st.one_of(st.none(), st.integers(1, 4))), features=draw(st.integers(1, 3)),
                 hidden=hidden, last_step_only=draw(st.booleans()), classes=draw(st.integers(2, 4)),
                 n_samples=draw(st.integers(1, 3)), time_steps=draw(st.integers(1, 4)),
                 seed=draw(st.integers(0, 2 ** 16)))


def inputs_and_targets(stack, ignored, rng):
    """Token ids (n, T) or float sequences (n, T, features); class ids (n, T), with ``ignored`` some of them
    -1 (at least one ignored and one counted where there are two positions), or (n,) for a classifier."""
    shape = (stack.n_samples, stack.time_steps)
    X = (rng.integers(0, stack.vocab_size, size=shape) if stack.vocab_size
         else rng.normal(size=(*shape, stack.features)))
    if stack.last_step_only:
        return X, rng.integers(0, stack.classes, size=stack.n_samples)
    y = rng.integers(0, stack.classes, size=shape)
    if ignored:
        count = rng.integers(1, y.size) if y.size > 1 else 0  # 1 to all but one of the positions
        y.flat[rng.permutation(y.size)[:count]] = -1
    return X, y


@pytest.mark.parametrize("ignored", [False, True], ids=["every target counts", "some targets ignored"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stack=stacks())
def test_random_sequence_stacks_backpropagate_like_central_differences(stack, ignored):
    if ignored:
        stack = dataclasses.replace(stack, last_step_only=False)  # ignore_index applies to sequence targets
    rng = np.random.default_rng(stack.seed)
    input_shape = None if stack.vocab_size else (None, stack.features)  # an Embedding knows its own
    network = numnet.Network(layers=stack.layers(), input_shape=input_shape, dtype="float64", seed=stack.seed)
    X, y = inputs_and_targets(stack, ignored, rng)
    loss = network.loss_and_gradients(network.prepare_inputs(X), network.prepare_targets(y))
    norms = {name: float(np.linalg.norm(as_numpy(gradient))) for name, gradient in network.gradients().items()}
    errors = numnet.gradient_check(network, X, y)
    assert set(errors) == set(norms)
    for name, error in errors.items():
        floor = ROUNDING * abs(loss) / NETWORK_STEP * math.sqrt(math.prod(network.parameters()[name].shape))
        assert error < GRADIENT_TOLERANCE or difference_bound(error, norms[name]) < floor, (name, error, errors)


def difference_bound(error, norm):
    """‖a − n‖ from the relative error ``error`` = ‖a − n‖ / max(‖a‖, ‖n‖) and ‖a‖ = ``norm``: at most
    error·‖a‖/(1 − error), since ‖n‖ <= ‖a‖ + ‖a − n‖; unbounded for an error of 1 (a or n zero alone)."""
    return error * norm / (1 - error) if error < 1 else math.inf


def test_ignored_targets_leave_the_gradient_as_if_their_positions_were_absent():
    """A tagger's gradient with the last step's targets ignored equals its gradient on the sequences without
    that step (backprop of a truncated input, no mask), since the steps before it do not depend on it: every
    layer reads forward in time."""
    rng = np.random.default_rng(0)
    layers = [numnet.Embedding(5, 3), numnet.GRU(3, 4), numnet.Dense(4, 3, "tanh"), numnet.LSTM(3, 2),
              numnet.Dense(2, 4, "softmax")]
    network = numnet.Network(layers=layers, dtype="float64", seed=0)
    X, y = rng.integers(0, 5, size=(3, 6)), rng.integers(0, 4, size=(3, 6))
    ignored = y.copy()
    ignored[:, -1] = -1
    network.loss_and_gradients(network.prepare_inputs(X), network.prepare_targets(ignored))
    with_ignored = {name: as_numpy(gradient) for name, gradient in network.gradients().items()}
    network.loss_and_gradients(network.prepare_inputs(X[:, :-1]), network.prepare_targets(y[:, :-1]))
    for name, gradient in network.gradients().items():
        np.testing.assert_allclose(with_ignored[name], as_numpy(gradient), rtol=REORDERING_TOLERANCE,
                                   atol=REORDERING_TOLERANCE * np.max(np.abs(with_ignored[name])), err_msg=name)
