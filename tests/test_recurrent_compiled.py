"""The LSTM's walk over the time steps by numnet._compiled_recurrent's kernels against NumPy's walk (the
reference, numnet.recurrent.LSTM): the kernels repeat its operations in the same order on scalars of the
arrays' dtype and leave exp and tanh to NumPy, so every output, gradient and state must be the same bit for
bit, in float32 and float64, whatever the shapes. (Both walks against PyTorch: tests/test_recurrent.py, run
with either choice of kernels.)"""

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numnet
from numnet.kernels import use_kernels

pytest.importorskip("numba")

FAST = settings(max_examples=40, deadline=None, derandomize=True)


def layer_of(input_size, hidden_size, dtype, seed, **options):
    """An LSTM in a Network of ``dtype``, its weights drawn from ``seed``."""
    return numnet.Network(layers=[numnet.LSTM(input_size, hidden_size, **options)], dtype=dtype,
                          seed=seed).layers[0]


def walk(layer, choice, x, upstream, initial_state):
    """Everything a training forward and backward pass by kernels ``choice`` produces: the output, dC/dx,
    the parameters' gradients, dC/d(initial state), and forward_from's output and last state."""
    with use_kernels(choice):
        output = layer.forward(x, training=True, initial_state=initial_state)
        d_x = layer.backward(upstream)
        predicted, last = layer.forward_from(x, initial_state)
    return {"output": output, "dC/dx": d_x, "predicted": predicted,
            **{f"dC/d{key}": value.copy() for key, value in layer.grads.items()},
            **{f"dC/d{key}0": value for key, value in layer.initial_state_gradients.items()},
            **{f"last {key}": value for key, value in last.items()}}


def assert_same_bits(reference, compiled):
    assert reference.keys() == compiled.keys()
    for key, expected in reference.items():
        assert compiled[key].dtype == expected.dtype, key
        np.testing.assert_array_equal(compiled[key], expected, err_msg=key, strict=True)


@FAST
@given(n=st.integers(1, 5), time_steps=st.integers(1, 6), input_size=st.integers(1, 5), hidden_size=st.integers(1, 9),
       dtype=st.sampled_from(["float32", "float64"]), return_sequences=st.booleans(), given_state=st.booleans(),
       scale=st.sampled_from([0.1, 1.0, 60.0]), seed=st.integers(0, 2 ** 32 - 1))
def test_the_compiled_lstm_walk_equals_numpys_bit_for_bit(n, time_steps, input_size, hidden_size, dtype,
                                                          return_sequences, given_state, scale, seed):
    # scale 60 drives gates into saturation and e^−z past float32's overflow (σ = 0 exactly on both walks)
    rng = np.random.default_rng(seed)
    layer = layer_of(input_size, hidden_size, dtype, seed, return_sequences=return_sequences)
    x = (rng.standard_normal((n, time_steps, input_size)) * scale).astype(dtype)
    upstream = rng.standard_normal((n, time_steps, hidden_size) if return_sequences else (n, hidden_size)).astype(dtype)
    state = ({key: rng.standard_normal((n, hidden_size)).astype(dtype) for key in ("h", "c")} if given_state
             else None)
    assert_same_bits(walk(layer, "numpy", x, upstream, state), walk(layer, "numba", x, upstream, state))


def test_at_the_char_lstm_benchmarks_shapes_the_compiled_walk_runs_and_equals_numpys():
    # batch 32, 64 steps, embedding 64, hidden 256, float32: benchmarks/run.py's char-lstm workload
    rng = np.random.default_rng(0)
    layer = layer_of(64, 256, "float32", seed=0)
    x = rng.standard_normal((32, 64, 64)).astype(np.float32)
    upstream = (rng.standard_normal((32, 64, 256)) * 0.01).astype(np.float32)
    reference = walk(layer, "numpy", x, upstream, None)
    compiled = walk(layer, "numba", x, upstream, None)
    assert "numnet._compiled_recurrent" in sys.modules  # the kernels ran, not NumPy's walk twice
    assert_same_bits(reference, compiled)


def test_a_stateful_lstm_carries_the_same_state_with_either_walk():
    rng = np.random.default_rng(5)
    batches = rng.standard_normal((3, 4, 7, 3))  # three consecutive chunks of 4 sequences
    carried = {}
    for choice in ("numpy", "numba"):
        layer = layer_of(3, 5, "float64", seed=1, stateful=True)
        with use_kernels(choice):
            for batch in batches:
                layer.forward(batch, training=True)
                layer.backward(np.ones((4, 7, 5)))
        carried[choice] = {**layer.carried_state(), **{f"dC/d{k}": v.copy() for k, v in layer.grads.items()}}
    assert_same_bits(carried["numpy"], carried["numba"])
