"""RNN, LSTM and GRU: forward and backpropagation through time against PyTorch's nn.RNN, nn.LSTM and nn.GRU
in float64 with the same weights, stateful batches against one PyTorch run over the whole sequence, random
small layers against five-point differences, the carried state's rules, shapes and configuration."""

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numnet
from numnet.layers import LAYERS
from oracles import as_numpy, assign, built, max_relative_difference, on_backend
from test_dropout_batchnorm import five_point_gradient

# float64 against PyTorch float64 with the same weights: the two compute the same products and gate
# functions in different orders (one stacked input product here, PyTorch's per-step or fused kernels
# there; σ as 1/(1 + e^−z) here), a few ulps apart: measured below 3e-15 of each array's scale.
TORCH_TOLERANCE = 1e-10
# Five-point central differences in float64: rounding ~1e-16·|C|/h plus truncation ~h⁴·|C'''''|; with
# step 1e-4 and the small, smooth (tanh and σ) layers below both stay below 1e-9 of the gradient.
STEP = 1e-4
GRADIENT_TOLERANCE = 1e-6
# A gradient whose exact value is zero (Wh when every hₜ₋₁ it multiplies is the zero initial state: one time
# step and no carried state) has no relative error: its numerical gradient is rounding noise, which must
# stay below this fraction of the norm of every gradient together.
ZERO_GRADIENT_TOLERANCE = 1e-8
#: Random layers per run; the array-API rerun only has to prove the standard code path.
EXAMPLES = int(os.environ.get("NUMNET_RECURRENT_EXAMPLES", "25" if numnet.get_backend().name == "numpy" else "4"))

KINDS = {"RNN": numnet.RNN, "LSTM": numnet.LSTM, "GRU": numnet.GRU}


def torch_twin(layer):
    """PyTorch's layer of the same kind, float64, batch_first, holding ``layer``'s weights: the weights
    transposed; LSTM's and RNN's one b as bias_ih with bias_hh zero, GRU's bx and bh as they are."""
    torch = pytest.importorskip("torch")
    kind, sizes = type(layer).__name__, (layer.input_size, layer.hidden_size)
    module = {"RNN": lambda: torch.nn.RNN(*sizes, nonlinearity="tanh", batch_first=True),
              "LSTM": lambda: torch.nn.LSTM(*sizes, batch_first=True),
              "GRU": lambda: torch.nn.GRU(*sizes, batch_first=True)}[kind]().double()
    params = {key: torch.tensor(as_numpy(value)) for key, value in layer.params.items()}
    with torch.no_grad():
        module.weight_ih_l0.copy_(params["Wx"].T)
        module.weight_hh_l0.copy_(params["Wh"].T)
        module.bias_ih_l0.copy_(params.get("b", params.get("bx")))
        module.bias_hh_l0.copy_(params["bh"] if "bh" in params else torch.zeros_like(module.bias_hh_l0))
    return module


def torch_gradients(layer, module):
    """PyTorch's parameter gradients under numnet's names and layouts."""
    gradients = {"Wx": module.weight_ih_l0.grad.numpy().T, "Wh": module.weight_hh_l0.grad.numpy().T}
    if "bh" in layer.params:
        gradients.update(bx=module.bias_ih_l0.grad.numpy(), bh=module.bias_hh_l0.grad.numpy())
    else:
        gradients["b"] = module.bias_ih_l0.grad.numpy()
    return gradients


def assert_close(actual, expected, what):
    difference = max_relative_difference(as_numpy(actual), expected)
    assert difference < TORCH_TOLERANCE, f"{what}: {difference:.2e} of its scale"


# ---------------------------------------------------------------------------------------------------------
# Each layer against PyTorch
# ---------------------------------------------------------------------------------------------------------

SHAPES = {
    # name: (n_samples, time_steps, input_size, hidden_size)
    "small": (3, 5, 4, 6),
    "one step, one sample": (1, 1, 2, 3),
    "long, wide input": (2, 12, 7, 2),
}


@pytest.mark.parametrize("return_sequences", [True, False], ids=["every step", "last step"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("kind", KINDS)
def test_forward_and_backpropagation_through_time_match_pytorch(kind, shape, return_sequences):
    torch = pytest.importorskip("torch")
    n, time_steps, input_size, hidden_size = shape
    rng = np.random.default_rng(0)
    layer = built(KINDS[kind](input_size, hidden_size, return_sequences=return_sequences), rng)
    module = torch_twin(layer)
    x = rng.normal(size=(n, time_steps, input_size))
    output = layer.forward(on_backend(x), training=True)
    grad_output = rng.normal(size=tuple(output.shape))  # a random upstream gradient dC/d(output)
    grad_input = layer.backward(on_backend(grad_output))

    x_torch = torch.tensor(x, requires_grad=True)
    expected = module(x_torch)[0]
    expected = expected if return_sequences else expected[:, -1]
    expected.backward(torch.tensor(grad_output))
    assert_close(output, expected.detach().numpy(), "output")
    assert_close(grad_input, x_torch.grad.numpy(), "dC/dx")
    for key, gradient in torch_gradients(layer, module).items():
        assert_close(layer.grads[key], gradient, f"dC/d{key}")


@pytest.mark.parametrize("kind", KINDS)
def test_three_stateful_batches_match_one_pytorch_run_over_the_whole_sequence(kind):
    """Batch k + 1's rows continue batch k's: the outputs equal PyTorch's over the concatenated sequence,
    and each batch's gradients equal PyTorch's with the state detached between the batches."""
    torch = pytest.importorskip("torch")
    n, time_steps, input_size, hidden_size = 3, 4, 2, 5
    rng = np.random.default_rng(1)
    layer = built(KINDS[kind](input_size, hidden_size, stateful=True), rng)
    module = torch_twin(layer)
    sequence = rng.normal(size=(n, 3 * time_steps, input_size))
    whole = module(torch.tensor(sequence))[0].detach().numpy()  # one run over the concatenated sequence
    state = None
    for k in range(3):
        steps = slice(k * time_steps, (k + 1) * time_steps)
        output = layer.forward(on_backend(sequence[:, steps]), training=True)
        grad_output = rng.normal(size=tuple(output.shape))
        grad_input = layer.backward(on_backend(grad_output))

        module.zero_grad()
        x_torch = torch.tensor(sequence[:, steps], requires_grad=True)
        expected, state = module(x_torch, state)
        state = tuple(part.detach() for part in state) if kind == "LSTM" else state.detach()  # truncated BPTT
        expected.backward(torch.tensor(grad_output))
        assert_close(output, whole[:, steps], f"batch {k}: output")
        assert_close(output, expected.detach().numpy(), f"batch {k}: output")
        assert_close(grad_input, x_torch.grad.numpy(), f"batch {k}: dC/dx")
        for key, gradient in torch_gradients(layer, module).items():
            assert_close(layer.grads[key], gradient, f"batch {k}: dC/d{key}")
    carried = layer.carried_state()
    expected_state = state if kind == "LSTM" else (state,)
    for key, value in zip(("h", "c"), expected_state):
        assert_close(carried[key], value[0].numpy(), f"carried {key}")


# ---------------------------------------------------------------------------------------------------------
# Random small layers against five-point differences
# ---------------------------------------------------------------------------------------------------------


@st.composite
def small_layers(draw):
    kind = draw(st.sampled_from(sorted(KINDS)))
    sizes = [draw(st.integers(1, 3)) for _ in range(4)]  # n, time_steps, input_size, hidden_size
    return kind, sizes, draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 2 ** 16))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_layers())
def test_random_small_layers_backpropagate_like_five_point_differences(case):
    """C = Σ output ⊙ R for a fixed random R, so dC/d(output) = R; the initial state is zero or (with
    ``carried``) a random carried state, fixed, as a stateful layer's next batch sees it."""
    kind, (n, time_steps, input_size, hidden_size), return_sequences, carried, seed = case
    rng = np.random.default_rng(seed)
    layer = built(KINDS[kind](input_size, hidden_size, return_sequences=return_sequences, stateful=carried), rng)
    x = rng.normal(size=(n, time_steps, input_size))
    initial = {key: rng.normal(size=(n, hidden_size)) for key in type(layer).state_names} if carried else {}
    weights = rng.normal(size=(n, time_steps, hidden_size) if return_sequences else (n, hidden_size))

    def cost(x_values):
        layer.set_carried_state(initial)
        return float(np.sum(as_numpy(layer.forward(on_backend(x_values), training=True)) * weights))

    cost(x)
    analytic_x = as_numpy(layer.backward(on_backend(weights)))
    analytic = {key: as_numpy(gradient) for key, gradient in layer.grads.items()}
    assert numnet.relative_error(analytic_x, five_point_gradient(cost, x.copy(), STEP)) < GRADIENT_TOLERANCE
    scale = math.sqrt(sum(np.sum(gradient ** 2) for gradient in [analytic_x, *analytic.values()]))
    for key in analytic:
        values = as_numpy(layer.params[key])

        def cost_of_parameter(parameter_values, key=key):
            assign(layer.params[key], parameter_values)
            return cost(x)

        numeric = five_point_gradient(cost_of_parameter, values.copy(), STEP)
        assign(layer.params[key], values)
        if not np.any(analytic[key]):  # exactly zero: only rounding noise is allowed
            assert np.linalg.norm(numeric) < ZERO_GRADIENT_TOLERANCE * scale, key
        else:
            assert numnet.relative_error(analytic[key], numeric) < GRADIENT_TOLERANCE, key


# ---------------------------------------------------------------------------------------------------------
# The carried state
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_prediction_starts_from_zeros_and_leaves_the_carried_state_untouched(kind):
    rng = np.random.default_rng(2)
    layer = built(KINDS[kind](2, 3, stateful=True), rng)
    stateless = built(KINDS[kind](2, 3), np.random.default_rng(2))  # the same weights, no state
    layer.forward(on_backend(rng.normal(size=(4, 3, 2))), training=True)
    before = {key: as_numpy(value) for key, value in layer.carried_state().items()}
    assert sorted(before) == sorted(type(layer).state_names)
    assert all(np.any(value != 0) for value in before.values())
    x = on_backend(rng.normal(size=(5, 3, 2)))  # another batch size is fine outside training
    np.testing.assert_array_equal(as_numpy(layer.forward(x)), as_numpy(stateless.forward(x, training=True)))
    after = {key: as_numpy(value) for key, value in layer.carried_state().items()}
    assert sorted(after) == sorted(before)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


@pytest.mark.parametrize("return_sequences", [True, False], ids=["every step", "last step"])
@pytest.mark.parametrize("kind", KINDS)
def test_forward_from_a_given_state_matches_pytorch_from_that_state_and_returns_the_last(kind, return_sequences):
    """forward_from(x, state) is PyTorch's module(x, h0) (and c0): a sequence read in two pieces, the second
    from the state the first ended in, gives PyTorch's outputs and final state over the whole; the carried
    state stays as it was."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    layer = built(KINDS[kind](2, 3, return_sequences=return_sequences, stateful=True), rng)
    module = torch_twin(layer)
    layer.forward(on_backend(rng.normal(size=(2, 4, 2))), training=True)  # a carried state to leave alone
    carried = {key: as_numpy(value).copy() for key, value in layer.carried_state().items()}
    start = {key: rng.normal(size=(2, 3)) for key in type(layer).state_names}
    x = rng.normal(size=(2, 5, 2))
    torch_start = tuple(torch.tensor(start[key])[None] for key in type(layer).state_names)
    expected, expected_last = module(torch.tensor(x), torch_start if kind == "LSTM" else torch_start[0])
    expected_last = expected_last if kind == "LSTM" else (expected_last,)
    first, middle = layer.forward_from(on_backend(x[:, :2]), {key: on_backend(v) for key, v in start.items()})
    second, last = layer.forward_from(on_backend(x[:, 2:]), middle)
    if return_sequences:
        assert_close(first, expected[:, :2].detach().numpy(), "output of the first piece")
        assert_close(second, expected[:, 2:].detach().numpy(), "output of the second piece")
    else:
        assert_close(second, expected[:, -1].detach().numpy(), "last output")
    for key, value in zip(type(layer).state_names, expected_last):
        assert_close(last[key], value[0].detach().numpy(), f"last {key}")
    zero_start, _ = layer.forward_from(on_backend(x))
    np.testing.assert_array_equal(as_numpy(zero_start), as_numpy(layer.forward(on_backend(x))))
    for key, value in layer.carried_state().items():
        np.testing.assert_array_equal(as_numpy(value), carried[key])
    with pytest.raises(ValueError, match=r"starts from .* each of shape \(2, 3\), but was given .*h \(1, 3\)"):
        layer.forward_from(on_backend(x), {key: on_backend(np.zeros((1, 3))) for key in type(layer).state_names})


@pytest.mark.parametrize("return_sequences", [True, False], ids=["every step", "last step"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_given_initial_state_is_part_of_the_graph_and_receives_pytorchs_gradient(kind, return_sequences):
    """forward(x, training=True, initial_state=...) starts from that state (a seq2seq decoder from the
    encoder's); backward fills the weights' gradients and leaves dC/d(initial state) in
    initial_state_gradients, both PyTorch's for module(x, h0) (and c0) with h0 and c0 requiring grad."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    layer = built(KINDS[kind](3, 4, return_sequences=return_sequences), rng)
    module = torch_twin(layer)
    x, start = rng.normal(size=(2, 5, 3)), {key: rng.normal(size=(2, 4)) for key in type(layer).state_names}
    upstream = rng.normal(size=(2, 5, 4) if return_sequences else (2, 4))
    torch_start = [torch.tensor(start[key])[None].requires_grad_() for key in type(layer).state_names]
    torch_x = torch.tensor(x, requires_grad=True)
    output, _ = module(torch_x, tuple(torch_start) if kind == "LSTM" else torch_start[0])
    (output if return_sequences else output[:, -1]).backward(torch.tensor(upstream))
    actual = layer.forward(on_backend(x), training=True, initial_state={k: on_backend(v) for k, v in start.items()})
    assert_close(actual, (output if return_sequences else output[:, -1]).detach().numpy(), "output")
    d_x = layer.backward(on_backend(upstream))
    assert_close(d_x, torch_x.grad.numpy(), "dC/dx")
    for key, value in torch_gradients(layer, module).items():
        assert_close(layer.grads[key], value, f"dC/d{key}")
    for key, tensor in zip(type(layer).state_names, torch_start):
        assert_close(layer.initial_state_gradients[key], tensor.grad[0].numpy(), f"dC/d{key}0")
    stateful = built(KINDS[kind](3, 4, stateful=True), rng)
    with pytest.raises(ValueError, match="stateful: it starts each batch from the state it carried"):
        stateful.forward(on_backend(x), training=True, initial_state={k: on_backend(v) for k, v in start.items()})


@pytest.mark.parametrize("kind", KINDS)
def test_a_stateful_training_batch_of_another_row_count_is_refused_with_what_to_do(kind):
    rng = np.random.default_rng(3)
    layer = built(KINDS[kind](2, 3, stateful=True, name="memory"), rng)
    layer.forward(on_backend(rng.normal(size=(4, 3, 2))), training=True)
    with pytest.raises(ValueError, match=r"layer memory is stateful.*needs every training batch to have the same "
                                         r"number of rows; this batch has 3 rows and the carried state 4.*"
                                         r"network\.reset_states\(\)"):
        layer.forward(on_backend(rng.normal(size=(3, 3, 2))), training=True)
    layer.reset_carried_state()
    assert layer.carried_state() == {}
    layer.forward(on_backend(rng.normal(size=(3, 3, 2))), training=True)  # after a reset, any size
    assert layer.carried_state()["h"].shape == (3, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_the_carried_state_is_a_detached_copy_that_a_restore_brings_back(kind):
    """The carried state is the last step's state, copied (the cache's later use cannot change it);
    set_carried_state with NumPy arrays restores it so that the next batch continues exactly alike."""
    rng = np.random.default_rng(4)
    layer = built(KINDS[kind](2, 3, stateful=True), rng)
    first, second = (on_backend(rng.normal(size=(2, 4, 2))) for _ in range(2))
    output = as_numpy(layer.forward(first, training=True))
    saved = {key: as_numpy(value) for key, value in layer.carried_state().items()}
    np.testing.assert_array_equal(saved["h"], output[:, -1])
    layer.backward(on_backend(np.ones(output.shape)))
    for key, value in layer.carried_state().items():
        np.testing.assert_array_equal(as_numpy(value), saved[key])
    continued = as_numpy(layer.forward(second, training=True))
    layer.reset_carried_state()
    layer.set_carried_state(saved)
    np.testing.assert_array_equal(as_numpy(layer.forward(second, training=True)), continued)


def test_a_restored_state_with_wrong_names_or_shapes_is_refused():
    layer = built(numnet.LSTM(2, 3, stateful=True, name="lstm_0"), np.random.default_rng(5))
    with pytest.raises(ValueError, match="layer lstm_0 carries h, c, but was given h"):
        layer.set_carried_state({"h": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"shape \(n_samples, 3\), all with the same n_samples, but was given "
                                         r"c \(2, 3\), h \(4, 3\)"):
        layer.set_carried_state({"h": np.zeros((4, 3)), "c": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="carries no state between batches"):
        numnet.Dense(2, 3).set_carried_state({"h": np.zeros((2, 3))})
    layer.set_carried_state({})
    assert layer.carried_state() == {}


# ---------------------------------------------------------------------------------------------------------
# Shapes, parameters, configuration
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, blocks", [("RNN", 1), ("LSTM", 4), ("GRU", 3)])
def test_parameters_have_pytorchs_shapes_up_to_a_transpose_and_only_weights_are_penalised(kind, blocks):
    layer = KINDS[kind](5, 7)
    biases = {"bx": (3 * 7,), "bh": (3 * 7,)} if kind == "GRU" else {"b": (blocks * 7,)}
    assert layer.parameter_shapes() == {"Wx": (5, blocks * 7), "Wh": (7, blocks * 7), **biases}
    assert layer.penalized_parameters() == ("Wx", "Wh")
    assert not layer.takes_token_ids


@pytest.mark.parametrize("kind", KINDS)
def test_initial_parameters_are_uniform_within_one_over_root_h_as_in_pytorch(kind):
    hidden_size = 64
    layer = built(KINDS[kind](32, hidden_size), np.random.default_rng(6))
    bound = 1 / math.sqrt(hidden_size)
    for key, value in layer.params.items():
        values = as_numpy(value).ravel()
        assert np.all(np.abs(values) <= bound), key
        if values.size > 1000:  # U(−k, k) has variance k²/3; thousands of draws put the sample's within 10%
            assert abs(values.var() / (bound ** 2 / 3) - 1) < 0.1, key


@pytest.mark.parametrize("kind", KINDS)
def test_output_shapes_follow_return_sequences_and_a_wrong_feature_size_is_named(kind):
    every, last = KINDS[kind](8, 4), KINDS[kind](8, 4, return_sequences=False)
    assert every.output_shape((10, 8)) == (10, 4) and every.output_shape((None, 8)) == (None, 4)
    assert last.output_shape((10, 8)) == (4,) and last.output_shape(None) == (4,)
    assert every.expected_input_shape() == (None, 8)
    for shape in [(10, 7), (8,), (2, 10, 8)]:
        with pytest.raises(ValueError, match=r"takes sequences of shape \(time_steps, 8\)"):
            every.output_shape(shape)
    layer = built(KINDS[kind](8, 4, name="reader"), np.random.default_rng(7))
    with pytest.raises(ValueError, match=r"layer reader .* takes sequences of shape \(n_samples, time_steps, 8\)"):
        layer.forward(on_backend(np.zeros((2, 3, 7))))
    with pytest.raises(ValueError, match="at least one time step"):
        layer.forward(on_backend(np.zeros((2, 0, 8))))


@pytest.mark.parametrize("kind", KINDS)
def test_float32_layers_compute_and_backpropagate_in_float32(kind):
    rng = np.random.default_rng(8)
    layer = built(KINDS[kind](3, 4, return_sequences=False), rng, np.float32)
    output = layer.forward(on_backend(rng.normal(size=(2, 5, 3)), np.float32), training=True)
    grad_input = layer.backward(on_backend(np.ones((2, 4)), np.float32))
    arrays = [output, grad_input, *layer.grads.values(), *layer.carried_state().values()]
    assert all(np.dtype(str(array.dtype).split(".")[-1]) == np.float32 for array in arrays)


@pytest.mark.parametrize("kind", KINDS)
def test_backward_without_a_training_forward_says_so(kind):
    layer = built(KINDS[kind](2, 3), np.random.default_rng(9))
    layer.forward(on_backend(np.zeros((1, 2, 2))))  # prediction caches nothing
    with pytest.raises(RuntimeError, match="without a preceding forward pass with training=True"):
        layer.backward(on_backend(np.zeros((1, 2, 3))))


@pytest.mark.parametrize("kind", KINDS)
def test_config_rebuilds_the_layer_and_the_kind_is_registered(kind):
    layer = KINDS[kind](6, 5, return_sequences=False, stateful=True, name="encoder")
    config = layer.config()
    assert config == {"type": kind.lower(), "input_size": 6, "hidden_size": 5, "return_sequences": False,
                      "stateful": True, "name": "encoder"}
    assert LAYERS[kind.lower()] is KINDS[kind]
    rebuilt = KINDS[kind].from_config(config)
    assert rebuilt.config() == config and rebuilt.stateful
    assert layer.describe() == f"{kind} 6 -> 5, last step, stateful"


@pytest.mark.parametrize("arguments, error, message", [
    ((0, 3), ValueError, "input_size must be a positive integer"),
    ((2, 2.0), TypeError, "hidden_size must be a positive integer"),
    ((2, 3, "yes"), TypeError, "return_sequences must be True or False"),
])
def test_bad_arguments_are_refused_by_the_common_checks(arguments, error, message):
    *sizes, return_sequences = arguments if len(arguments) == 3 else (*arguments, True)
    with pytest.raises(error, match=message):
        numnet.LSTM(*sizes, return_sequences=return_sequences)
