"""The transformer's pieces: erf and the two GELUs (numnet.activations), LayerNorm, MultiHeadAttention and
PositionEmbedding, each against an independent oracle.

Oracles: ``math.erf`` (the C library's) for erf; PyTorch float64 with the same weights for every layer
(``nn.GELU``, ``nn.LayerNorm``, nanoGPT's attention written in PyTorch around
``F.scaled_dot_product_attention``, an explicit softmax for the weights and the dropout, ``nn.Embedding``
read at 0..T-1): outputs and every gradient, the parameters' and the input's; central differences
(numnet.gradient_check) through a small GPT built from them; closed forms (a causal layer's output on a
prefix is its output's prefix).
"""

import math

import numpy as np
import pytest

import numnet
from numnet.activations import GELU, GELUTanh, erf, get_activation
from numnet.layers import LAYERS
from oracles import as_numpy, built, max_relative_difference, on_backend

#: float64 against PyTorch float64 with the same weights: the same products and sums, in other orders and
#: groupings (measured at most 6.5e-16 of an array's scale, the attention's dC/dx).
TORCH_TOLERANCE = 1e-10
#: An activation's values and derivatives against PyTorch's: a handful of roundings of numbers near 1
#: (measured at most 4.5e-15, gelu_tanh's derivative, whose 1 - tanh² loses digits beside tanh ≈ ±1).
ACTIVATION_TOLERANCE = 1e-14
#: erf against math.erf, absolute: the values lie in [-1, 1], where one float64 rounding of a number near 1
#: is 1.1e-16, and Cody's approximations are made for double precision: what remains is the rounding of the
#: last few operations.
ERF_TOLERANCE = 2e-16
#: numnet.gradient_check's own bar in float64.
GRADIENT_CHECK_TOLERANCE = 1e-6


# ---------------------------------------------------------------------------------------------------------
# erf
# ---------------------------------------------------------------------------------------------------------


def math_erf(x):
    return np.array([math.erf(value) for value in np.asarray(x).ravel()]).reshape(np.shape(x))


def erf_points():
    """A dense grid over every range of Cody's approximation (and across its breaks at 0.46875 and 4, and
    the underflow of erfc at 26.5), and random points of several scales."""
    rng = np.random.default_rng(0)
    grid = np.linspace(-30.0, 30.0, 600_001)  # steps of 1e-4
    breaks = np.concatenate([edge + np.linspace(-1e-6, 1e-6, 2001) for edge in (0.46875, 4.0, 26.543)])
    random = np.concatenate([rng.normal(size=100_000) * scale for scale in (1e-8, 0.3, 1.0, 3.0, 10.0)])
    return np.concatenate([grid, breaks, -breaks, random])


def test_erf_matches_math_erf_to_float64_rounding_on_a_dense_grid_and_random_points():
    x = erf_points()
    expected = math_erf(x)
    assert float(np.max(np.abs(erf(x) - expected))) <= ERF_TOLERANCE * float(np.max(np.abs(expected)))


def test_erf_is_accurate_relative_to_its_value_near_zero():
    # erf(x) ≈ 2x/√π: tiny values must keep their own relative precision, not 1e-16 absolute.
    x = np.concatenate([np.geomspace(1e-300, 0.46875, 10_000), -np.geomspace(1e-300, 0.46875, 10_000)])
    expected = math_erf(x)
    assert float(np.max(np.abs(erf(x) - expected) / np.abs(expected))) <= 2 * np.finfo(np.float64).eps


def test_erf_is_odd_exact_at_the_ends_and_silent_for_any_input():
    x = np.array([0.0, 1e-320, 0.3, 2.0, 5.0, 26.0, 27.0, 1e10, 1e300, np.inf])
    with np.errstate(all="raise"):
        positive, negative = erf(x), erf(-x)
    np.testing.assert_array_equal(negative, -positive)
    np.testing.assert_array_equal(positive[-5:], 1.0)  # erfc(x) < 2^-54 past x ≈ 5.9
    assert np.isnan(erf(np.array([np.nan])))[0]


def test_erf_keeps_float32_and_runs_on_an_array_api_backend():
    array_api_strict = pytest.importorskip("array_api_strict")
    x = erf_points()[::50]
    single = erf(x.astype(np.float32))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, math_erf(x.astype(np.float32)), rtol=0, atol=4e-7)  # ~3 float32 ulps of 1
    strict = erf(array_api_strict.asarray(x))
    assert float(np.max(np.abs(as_numpy(strict) - math_erf(x)))) <= ERF_TOLERANCE


# ---------------------------------------------------------------------------------------------------------
# GELU, exact and tanh
# ---------------------------------------------------------------------------------------------------------

GELUS = {"gelu": "none", "gelu_tanh": "tanh"}  # numnet's name: PyTorch's approximate=


def torch_gelu(z, approximate):
    """(f(z), f'(z)) by PyTorch in float64."""
    torch = pytest.importorskip("torch")
    tensor = torch.tensor(np.asarray(z, dtype=np.float64), requires_grad=True)
    value = torch.nn.functional.gelu(tensor, approximate=approximate)
    value.sum().backward()
    return value.detach().numpy(), tensor.grad.numpy()


@pytest.mark.parametrize("name", sorted(GELUS))
def test_gelu_values_and_derivatives_match_torch_in_float64(name):
    rng = np.random.default_rng(1)
    z = np.concatenate([rng.uniform(-12, 12, size=5000), rng.normal(size=5000), [-50.0, -10.0, 0.0, 10.0, 50.0]])
    expected_value, expected_derivative = torch_gelu(z, GELUS[name])
    activation = get_activation(name)
    assert max_relative_difference(activation.forward(z), expected_value) < ACTIVATION_TOLERANCE
    # from z: derivative_from = "z"
    assert max_relative_difference(activation.derivative(z), expected_derivative) < ACTIVATION_TOLERANCE


@pytest.mark.parametrize("name", sorted(GELUS))
def test_gelus_stay_finite_and_silent_for_inputs_of_1e300(name):
    z = np.array([-1e300, -1e30, -1000.0, 1000.0, 1e30, 1e300])
    with np.errstate(all="raise"):
        activation = get_activation(name)
        value, derivative = activation.forward(z), activation.derivative(z)
    # the limits: f(z) = 0 and f'(z) = 0 far below zero, f(z) = z and f'(z) = 1 far above it
    np.testing.assert_array_equal(value, [0.0, 0.0, 0.0, 1000.0, 1e30, 1e300])
    np.testing.assert_array_equal(derivative, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("name", sorted(GELUS))
def test_gelus_stated_derivative_maximum_is_the_largest_slope_torch_finds(name):
    # A grid step of 1e-5 near the maximum misses it by at most |f'''|·step²/2 < 1e-10.
    _, slopes = torch_gelu(np.arange(0.0, 4.0, 1e-5), GELUS[name])
    assert get_activation(name).derivative_maximum == pytest.approx(float(np.max(slopes)), rel=1e-9)


def test_gelus_carry_their_facts_and_are_offered_by_name():
    assert (GELU.derivative_from, GELU.display_name, GELUTanh.display_name) == ("z", "GELU", "GELU (tanh)")
    assert numnet.Dense(4, 3, "gelu").weight_init.name == "he"  # relu-like: He's initialisation
    assert not (GELU.saturates or GELU.dies or GELU.output_only)
    assert numnet.ACTIVATIONS["gelu"] is GELU and numnet.ACTIVATIONS["gelu_tanh"] is GELUTanh


def gelu_classifier(name, fused, seed=0):
    """softmax(gelu(X W0 + b0) W1 + b1): GELU fused into Dense, or as an Activation layer after a linear one."""
    first = [numnet.Dense(4, 6, name)] if fused else [numnet.Dense(4, 6), numnet.Activation(name)]
    return numnet.Network(layers=[*first, numnet.Dense(6, 3, "softmax")], dtype="float64", seed=seed)


@pytest.mark.parametrize("fused", [True, False], ids=["dense", "activation_layer"])
@pytest.mark.parametrize("name", sorted(GELUS))
def test_gelu_networks_backpropagate_as_torch_autograd(name, fused):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(12, 4)) * 2.0, rng.integers(0, 3, size=12)
    network = gelu_classifier(name, fused)
    names = [key for key in network.parameters() if key.endswith((".W", ".b"))]  # W0, b0, W1, b1
    W0, b0, W1, b1 = (torch.tensor(as_numpy(network.parameters()[key]), requires_grad=True) for key in names)
    hidden = torch.nn.functional.gelu(torch.tensor(X) @ W0 + b0, approximate=GELUS[name])
    expected = torch.nn.functional.cross_entropy(hidden @ W1 + b1, torch.tensor(y))
    expected.backward()
    loss = network.loss_and_gradients(network.prepare_inputs(X), network.prepare_targets(y, len(y)))
    assert loss == pytest.approx(float(expected.detach()), rel=TORCH_TOLERANCE)
    for key, tensor in zip(names, (W0, b0, W1, b1)):
        assert max_relative_difference(as_numpy(network.gradients()[key]), tensor.grad.numpy()) < TORCH_TOLERANCE


@pytest.mark.parametrize("name", sorted(GELUS))
def test_gelu_networks_pass_the_gradient_check(name):
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(10, 4)), rng.integers(0, 3, size=10)
    for fused in (True, False):
        errors = numnet.gradient_check(gelu_classifier(name, fused), X, y)
        assert max(errors.values()) < GRADIENT_CHECK_TOLERANCE, errors


#: ONNX Runtime against numnet: the float64 graph agrees to rounding, float32 to float32's (test_onnx_export's).
ONNX_TOLERANCE = {"float64": 1e-10, "float32": 1e-5}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(GELUS))
def test_gelus_export_to_onnx_in_the_models_dtype(name, dtype):
    onnxruntime = pytest.importorskip("onnxruntime")
    layers = [numnet.Dense(4, 6, name), numnet.Dense(6, 5), numnet.Activation(name), numnet.Dense(5, 3, "softmax")]
    network = numnet.Network(layers=layers, dtype=dtype, seed=0)
    # Weights of 3 and inputs of 3: pre-activations over every range of erf (and past 6, where it is ±1)
    network.set_parameters({"dense_0.W": np.random.default_rng(16).normal(size=(4, 6)) * 3.0})
    model = numnet.to_onnx(network)
    operators = [node.op_type for node in model.graph.node]
    # ONNX Runtime has Erf in float32 only: a float64 model computes numnet's erf in its own operators
    assert operators.count("Erf") == (2 if name == "gelu" and dtype == "float32" else 0)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    X = np.random.default_rng(17).normal(size=(200, 4)).astype(dtype) * 3.0
    probabilities = session.run(["probabilities"], {"input": X})[0]
    assert probabilities.dtype == dtype
    np.testing.assert_allclose(probabilities, network.predict_proba(X), rtol=0, atol=ONNX_TOLERANCE[dtype])


# ---------------------------------------------------------------------------------------------------------
# LayerNorm
# ---------------------------------------------------------------------------------------------------------


def torch_twin_gradients(module_output, inputs, grad_output):
    """Backpropagate ``grad_output`` through PyTorch's output; the gradients of ``inputs`` (tensors)."""
    import torch

    module_output.backward(torch.tensor(grad_output))
    return [tensor.grad.numpy() for tensor in inputs]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 5)], ids=["rows", "sequences"])
def test_layer_norm_matches_torch_layer_norm(shape, bias):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    layer = built(numnet.LayerNorm(5, eps=1e-3, bias=bias), rng)
    # γ and β away from their initial 1 and 0, so that a mix-up between them shows
    for array in layer.params.values():
        array[...] = on_backend(rng.normal(size=array.shape))
    x = rng.normal(size=shape) * 3.0 + 1.0
    grad_output = rng.normal(size=shape)
    output = layer.forward(on_backend(x), training=True)
    grad_input = layer.backward(on_backend(grad_output))

    module = torch.nn.LayerNorm(5, eps=1e-3, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(as_numpy(layer.params["gamma"])))
        if bias:
            module.bias.copy_(torch.tensor(as_numpy(layer.params["beta"])))
    x_tensor = torch.tensor(x, requires_grad=True)
    expected = module(x_tensor)
    tensors = [x_tensor, module.weight] + ([module.bias] if bias else [])
    expected_gradients = torch_twin_gradients(expected, tensors, grad_output)
    assert max_relative_difference(as_numpy(output), expected.detach().numpy()) < TORCH_TOLERANCE
    actual = [as_numpy(grad_input), as_numpy(layer.grads["gamma"])] + ([as_numpy(layer.grads["beta"])] if bias else [])
    for name, value, reference in zip(["x", "gamma", "beta"], actual, expected_gradients):
        assert max_relative_difference(value, reference) < TORCH_TOLERANCE, name


def test_layer_norm_computes_the_same_function_in_training_and_prediction_and_starts_plain():
    rng = np.random.default_rng(5)
    layer = built(numnet.LayerNorm(6), rng)
    x = on_backend(rng.normal(size=(1, 3, 6)) * 4.0)  # a batch of one is fine: no statistics over the batch
    training, prediction = as_numpy(layer.forward(x, training=True)), as_numpy(layer.forward(x))
    np.testing.assert_array_equal(training, prediction)
    # γ = 1, β = 0: each row has mean 0 and variance 1 - ε/(σ² + ε) ≈ 1
    np.testing.assert_allclose(training.mean(axis=-1), 0.0, atol=1e-15)
    np.testing.assert_allclose(training.var(axis=-1), 1.0, atol=1e-5)
    assert layer.penalized_parameters() == () and layer.position_wise


# ---------------------------------------------------------------------------------------------------------
# MultiHeadAttention
# ---------------------------------------------------------------------------------------------------------

N, STEPS, DIM, HEADS = 3, 5, 8, 2


def attention_layer(rng, *, causal, bias, dropout=0.0):
    """A built layer whose weights (and biases) are of order 1, so that the softmax is far from uniform."""
    layer = built(numnet.MultiHeadAttention(DIM, HEADS, causal=causal, bias=bias, dropout=dropout), rng)
    for array in layer.params.values():
        array[...] = on_backend(rng.normal(size=array.shape) * 0.5)
    return layer


def torch_attention(parameters, x, *, n_heads, causal, kept=None, dropout=0.0):
    """nanoGPT's CausalSelfAttention.forward in PyTorch float64, with numnet's parameters (W as (in, out)):
    (output, q, k, v, the attention weights); the tensors of ``parameters`` and ``x`` require grad.

    With ``kept`` (n, heads, T, T booleans), the weights are computed by an explicit softmax and dropped by
    that mask; without, the attention is ``F.scaled_dot_product_attention``'s (and the weights, for the
    comparison only, are an explicit softmax outside the graph)."""
    import torch

    n, time_steps, dim = x.shape
    qkv = x @ parameters["W_qkv"] + (parameters["b_qkv"] if "b_qkv" in parameters else 0.0)
    q, k, v = (part.view(n, time_steps, n_heads, dim // n_heads).transpose(1, 2) for part in qkv.split(dim, dim=2))
    scores = q @ k.transpose(-2, -1) / math.sqrt(dim // n_heads)
    if causal:
        mask = torch.tril(torch.ones(time_steps, time_steps, dtype=torch.bool))
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if kept is None:
        heads = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
    else:
        heads = (weights * torch.tensor(kept, dtype=torch.float64) / (1.0 - dropout)) @ v
    merged = heads.transpose(1, 2).contiguous().view(n, time_steps, dim)
    output = merged @ parameters["W_o"] + (parameters["b_o"] if "b_o" in parameters else 0.0)
    return output, weights.detach().numpy()


def compare_attention_with_torch(layer, x, grad_output, rng=None, kept=None):
    """numnet's forward and backward against torch_attention's; the largest relative difference of each."""
    torch = pytest.importorskip("torch")
    output = as_numpy(layer.forward(on_backend(x), training=True, rng=rng))
    grad_input = as_numpy(layer.backward(on_backend(grad_output)))
    parameters = {key: torch.tensor(as_numpy(value), requires_grad=True) for key, value in layer.params.items()}
    x_tensor = torch.tensor(x, requires_grad=True)
    expected, weights = torch_attention(parameters, x_tensor, n_heads=layer.n_heads, causal=layer.causal,
                                        kept=kept, dropout=layer.dropout)
    expected.backward(torch.tensor(grad_output))
    differences = {"output": max_relative_difference(output, expected.detach().numpy()),
                   "attention_weights": max_relative_difference(layer.attention_weights, weights),
                   "x": max_relative_difference(grad_input, x_tensor.grad.numpy())}
    for key, tensor in parameters.items():
        differences[key] = max_relative_difference(as_numpy(layer.grads[key]), tensor.grad.numpy())
    return differences


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_attention_matches_nanogpts_attention_in_torch(causal, bias):
    rng = np.random.default_rng(6)
    layer = attention_layer(rng, causal=causal, bias=bias)
    x, grad_output = rng.normal(size=(N, STEPS, DIM)), rng.normal(size=(N, STEPS, DIM))
    differences = compare_attention_with_torch(layer, x, grad_output)
    assert max(differences.values()) < TORCH_TOLERANCE, differences
    assert set(differences) == {"output", "attention_weights", "x", *layer.parameter_shapes()}


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_attention_holds_the_numbers_of_torchs_multihead_attention_up_to_a_transpose(causal):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(15)
    layer = attention_layer(rng, causal=causal, bias=True)
    x = rng.normal(size=(N, STEPS, DIM))
    module = torch.nn.MultiheadAttention(DIM, HEADS, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        module.in_proj_weight.copy_(torch.tensor(as_numpy(layer.params["W_qkv"]).T))
        module.in_proj_bias.copy_(torch.tensor(as_numpy(layer.params["b_qkv"])))
        module.out_proj.weight.copy_(torch.tensor(as_numpy(layer.params["W_o"]).T))
        module.out_proj.bias.copy_(torch.tensor(as_numpy(layer.params["b_o"])))
    future = torch.triu(torch.ones(STEPS, STEPS, dtype=torch.bool), diagonal=1) if causal else None
    x_tensor = torch.tensor(x)
    expected, weights = module(x_tensor, x_tensor, x_tensor, attn_mask=future, average_attn_weights=False)
    assert max_relative_difference(as_numpy(layer.forward(on_backend(x))), expected.detach().numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(layer.attention_weights, weights.detach().numpy()) < TORCH_TOLERANCE


def test_attention_dropout_drops_the_weights_as_torch_does_with_the_same_mask():
    rng = np.random.default_rng(7)
    layer = attention_layer(rng, causal=True, bias=True, dropout=0.3)
    x, grad_output = rng.normal(size=(N, STEPS, DIM)), rng.normal(size=(N, STEPS, DIM))
    # The mask as numnet.Dropout documents its draw: uniform float32 of the weights' shape, kept where >= rate
    kept = np.random.default_rng(8).random((N, HEADS, STEPS, STEPS), dtype=np.float32) >= 0.3
    assert 0 < kept.mean() < 1
    differences = compare_attention_with_torch(layer, x, grad_output, rng=np.random.default_rng(8), kept=kept)
    assert max(differences.values()) < TORCH_TOLERANCE, differences


def test_attention_without_dropout_in_prediction_equals_the_dropout_free_layer():
    rng = np.random.default_rng(9)
    dropping = attention_layer(rng, causal=False, bias=True, dropout=0.5)
    plain = built(numnet.MultiHeadAttention(DIM, HEADS), np.random.default_rng(0))
    for key, value in dropping.params.items():
        plain.params[key][...] = value
    x = on_backend(rng.normal(size=(N, STEPS, DIM)))
    np.testing.assert_array_equal(as_numpy(dropping.forward(x)), as_numpy(plain.forward(x, training=True)))
    assert dropping.needs_rng and not plain.needs_rng
    with pytest.raises(ValueError, match="needs rng .* attention dropout mask"):
        dropping.forward(x, training=True)


def test_a_causal_layer_reads_any_length_and_its_output_on_a_prefix_is_the_prefix_of_its_output():
    rng = np.random.default_rng(10)
    layer = attention_layer(rng, causal=True, bias=True)
    x = rng.normal(size=(N, 9, DIM))
    whole = as_numpy(layer.forward(on_backend(x)))
    for steps in (1, 4):
        np.testing.assert_allclose(as_numpy(layer.forward(on_backend(x[:, :steps]))), whole[:, :steps],
                                   rtol=0, atol=1e-14)
    weights = layer.attention_weights  # of the last call, 4 steps
    assert weights.shape == (N, HEADS, 4, 4)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-15)
    assert not weights[..., np.triu(np.ones((4, 4), dtype=bool), k=1)].any()  # no step attends to a later one


def test_attention_starts_as_gpt2_and_penalises_its_matrices():
    layer = built(numnet.MultiHeadAttention(64, 4), np.random.default_rng(11))
    weights = np.concatenate([as_numpy(layer.params[key]).ravel() for key in ("W_qkv", "W_o")])
    # 16,384 draws of N(0, 0.02²): the sample standard deviation within 3% of 0.02, the mean within 4 standard
    # errors (4·0.02/128 ≈ 6.3e-4) of 0
    assert abs(weights.std() / 0.02 - 1) < 0.03 and abs(weights.mean()) < 6.3e-4
    assert not as_numpy(layer.params["b_qkv"]).any() and not as_numpy(layer.params["b_o"]).any()
    assert layer.penalized_parameters() == ("W_qkv", "W_o") and layer.head_size == 16
    assert layer.parameter_shapes() == {"W_qkv": (64, 192), "b_qkv": (192,), "W_o": (64, 64), "b_o": (64,)}
    assert numnet.MultiHeadAttention(64, 4, bias=False).parameter_shapes() == {"W_qkv": (64, 192), "W_o": (64, 64)}


def test_attention_refuses_heads_that_do_not_divide_dim_and_inputs_of_another_shape():
    with pytest.raises(ValueError, match=r"dim \(10\) must be divisible by n_heads \(3\).*choose n_heads among "
                                         r"1, 2, 5, 10"):
        numnet.MultiHeadAttention(10, 3)
    with pytest.raises(TypeError, match="n_heads must be a positive integer"):
        numnet.MultiHeadAttention(8, 2.0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        numnet.MultiHeadAttention(8, 2, dropout=1.0)
    layer = built(numnet.MultiHeadAttention(8, 2, name="attention"), np.random.default_rng(12))
    with pytest.raises(ValueError, match=r"layer attention \(MultiHeadAttention\) takes sequences of shape "
                                         r"\(n_samples, time_steps, 8\).*got shape \(2, 8\)"):
        layer.forward(on_backend(np.zeros((2, 8))))
    with pytest.raises(RuntimeError, match="without a preceding forward pass with training=True"):
        layer.backward(on_backend(np.zeros((1, 2, 8))))


# ---------------------------------------------------------------------------------------------------------
# PositionEmbedding
# ---------------------------------------------------------------------------------------------------------


def test_position_embedding_adds_gpt2s_wpe_and_backpropagates_as_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(13)
    layer = built(numnet.PositionEmbedding(7, 4), rng)
    x, grad_output = rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 5, 4))
    output = layer.forward(on_backend(x), training=True)
    grad_input = layer.backward(on_backend(grad_output))

    wpe = torch.nn.Embedding(7, 4, dtype=torch.float64)
    with torch.no_grad():
        wpe.weight.copy_(torch.tensor(as_numpy(layer.params["W"])))
    x_tensor = torch.tensor(x, requires_grad=True)
    expected = x_tensor + wpe(torch.arange(5))  # nanoGPT: tok_emb + wpe(arange(T))
    expected.backward(torch.tensor(grad_output))
    assert max_relative_difference(as_numpy(output), expected.detach().numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(as_numpy(layer.grads["W"]), wpe.weight.grad.numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(as_numpy(grad_input), x_tensor.grad.numpy()) < TORCH_TOLERANCE
    assert not as_numpy(layer.grads["W"])[5:].any()  # positions 5 and 6 were not read


def test_position_embedding_refuses_sequences_longer_than_its_block_size():
    layer = built(numnet.PositionEmbedding(4, 2, name="positions"), np.random.default_rng(14))
    with pytest.raises(ValueError, match=r"layer positions \(PositionEmbedding\) takes sequences .* with 1 to 4 "
                                         r"time steps \(its block_size\), got shape \(1, 5, 2\).*larger block_size"):
        layer.forward(on_backend(np.zeros((1, 5, 2))))
    with pytest.raises(ValueError, match=r"has positions for at most 4 time steps \(block_size\)"):
        numnet.Network(layers=[numnet.Embedding(3, 2), numnet.PositionEmbedding(4, 2), numnet.Dense(2, 3)],
                       input_shape=(5,))
    network = numnet.Network(layers=[numnet.Embedding(3, 2), numnet.PositionEmbedding(4, 2),
                                     numnet.Dense(2, 3, "softmax")], seed=0)
    assert network.predict_proba(np.zeros((2, 4), dtype=int)).shape == (2, 4, 3)
    with pytest.raises(ValueError, match="has positions for at most 4 time steps"):
        network.predict_proba(np.zeros((2, 5), dtype=int))
    assert layer.penalized_parameters() == ("W",) and not layer.position_wise


# ---------------------------------------------------------------------------------------------------------
# Together: a small GPT
# ---------------------------------------------------------------------------------------------------------

VOCABULARY, BLOCK, WIDTH = 5, 6, 4


def small_gpt(*, dropout=0.0, activation="gelu", bias=True, seed=0, backend=None):
    """A pre-LN transformer block (nanoGPT's) between token and position embeddings and a softmax head:
    x + attention(ln(x)), then x + mlp(ln(x)), then ln and the head."""
    attention = numnet.Residual(numnet.LayerNorm(WIDTH, bias=bias),
                                numnet.MultiHeadAttention(WIDTH, 2, causal=True, dropout=dropout, bias=bias))
    mlp = numnet.Residual(numnet.LayerNorm(WIDTH, bias=bias), numnet.Dense(WIDTH, 4 * WIDTH, activation, bias=bias),
                          numnet.Dense(4 * WIDTH, WIDTH, bias=bias))
    layers = [numnet.Embedding(VOCABULARY, WIDTH), numnet.PositionEmbedding(BLOCK, WIDTH), attention, mlp,
              numnet.LayerNorm(WIDTH, bias=bias), numnet.Dense(WIDTH, VOCABULARY, "softmax")]
    network = numnet.Network(layers=layers, dtype="float64", seed=seed, backend=backend)
    # Weights of order 1, so that attention is far from uniform and every path carries gradient
    rng = np.random.default_rng(seed + 100)
    network.set_parameters({name: rng.normal(size=value.shape) * 0.5 for name, value in network.parameters().items()})
    return network


def token_data(rows=3, steps=5, seed=0):
    ids = np.random.default_rng(seed).integers(0, VOCABULARY, size=(rows, steps + 1))
    return ids[:, :-1], ids[:, 1:]


@pytest.mark.parametrize("options", [{}, {"dropout": 0.2}, {"activation": "gelu_tanh", "bias": False}],
                         ids=["plain", "attention_dropout", "gelu_tanh_no_bias"])
def test_a_small_gpt_passes_the_gradient_check(options):
    X, y = token_data()
    errors = numnet.gradient_check(small_gpt(**options), X, y)
    assert max(errors.values()) < GRADIENT_CHECK_TOLERANCE, errors
    assert any(".multi_head_attention_1.W_qkv" in name for name in errors)


def test_a_small_gpt_trains_with_attention_dropout_and_saves_and_loads(tmp_path):
    X, y = token_data(rows=24, seed=1)
    network = small_gpt(dropout=0.1)
    history = network.fit(X, y, epochs=15, batch_size=8, optimizer="adam", learning_rate=1e-2, seed=0)
    assert history.epoch_loss[-1] < history.epoch_loss[0]
    numnet.save_model(network, tmp_path / "gpt.npz")
    loaded = numnet.load_model(tmp_path / "gpt.npz")
    np.testing.assert_array_equal(loaded.predict_proba(X), network.predict_proba(X))
    assert [layer.config() for layer in loaded.layers] == [layer.config() for layer in network.layers]
    summary = loaded.summary()
    for text in ("PositionEmbedding 6 positions x 4", "LayerNorm 4 features",
                 "MultiHeadAttention 4, 2 heads, causal, dropout 0.1"):
        assert text in summary


def test_the_small_gpt_computes_the_same_on_an_array_api_backend():
    pytest.importorskip("array_api_strict")
    X, y = token_data()
    numpy_network, strict_network = small_gpt(), small_gpt(backend="array_api_strict")
    losses = [network.loss_and_gradients(network.prepare_inputs(X), network.prepare_targets(y))
              for network in (numpy_network, strict_network)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-14)
    for name, gradient in numpy_network.gradients().items():
        assert max_relative_difference(as_numpy(strict_network.gradients()[name]), as_numpy(gradient)) < 1e-13, name


@pytest.mark.parametrize("layer, config, description", [
    (numnet.LayerNorm(8, eps=1e-6, bias=False, name="norm"),
     {"type": "layer_norm", "dim": 8, "eps": 1e-6, "bias": False, "name": "norm"}, "LayerNorm 8 features, no bias"),
    (numnet.MultiHeadAttention(8, 4, causal=True, dropout=0.1, bias=False),
     {"type": "multi_head_attention", "dim": 8, "n_heads": 4, "causal": True, "dropout": 0.1, "bias": False,
      "name": None}, "MultiHeadAttention 8, 4 heads, causal, dropout 0.1, no bias"),
    (numnet.PositionEmbedding(16, 8), {"type": "position_embedding", "block_size": 16, "dim": 8, "name": None},
     "PositionEmbedding 16 positions x 8"),
], ids=["layer_norm", "multi_head_attention", "position_embedding"])
def test_each_layer_is_registered_and_rebuilt_from_its_config(layer, config, description):
    assert layer.config() == config
    assert LAYERS[config["type"]] is type(layer)
    assert type(layer).from_config(config).config() == config
    assert layer.describe() == description


def test_constructor_arguments_are_checked():
    with pytest.raises(TypeError, match="dim must be a positive integer"):
        numnet.LayerNorm(4.0)
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        numnet.LayerNorm(4, eps=0.0)
    with pytest.raises(TypeError, match="bias must be True or False"):
        numnet.LayerNorm(4, bias=1)
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        numnet.PositionEmbedding(0, 4)
    with pytest.raises(TypeError, match="causal must be True or False"):
        numnet.MultiHeadAttention(4, 2, causal="yes")
