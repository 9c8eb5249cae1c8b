"""Embedding: the lookup and its scatter-add backward against PyTorch's nn.Embedding in float64, repeated ids
summed exactly on every backend, five-point differences, refused ids, shapes and configuration."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numnet
from numnet.embedding import scatter_add_rows
from numnet.layers import LAYERS
from oracles import as_numpy, assign, built, max_relative_difference, on_backend
from test_dropout_batchnorm import five_point_gradient

# float64 against PyTorch float64: the lookup copies rows (exact), and each row of dC/dW sums the same
# terms, perhaps in another order (a few ulps apart; measured 0 or below 1e-16 of the array's scale).
TORCH_TOLERANCE = 1e-10
# Five-point differences of a cost linear in W: only rounding, ~1e-16·|C|/h, remains.
STEP = 1e-4
GRADIENT_TOLERANCE = 1e-6


def test_lookup_and_gradient_match_pytorch_with_repeated_ids():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    layer = built(numnet.Embedding(7, 5), rng)
    ids = rng.integers(0, 7, size=(4, 9))  # 36 ids among 7: every id repeats
    ids[0, :3] = 6  # and one three times in a row
    output = layer.forward(on_backend(ids, np.int64), training=True)
    grad_output = rng.normal(size=(4, 9, 5))
    assert layer.backward(on_backend(grad_output)) is None  # ids have no gradient

    module = torch.nn.Embedding(7, 5).double()
    with torch.no_grad():
        module.weight.copy_(torch.tensor(as_numpy(layer.params["W"])))
    expected = module(torch.tensor(ids))
    expected.backward(torch.tensor(grad_output))
    np.testing.assert_array_equal(as_numpy(output), expected.detach().numpy())  # a lookup copies rows
    assert max_relative_difference(as_numpy(layer.grads["W"]), module.weight.grad.numpy()) < TORCH_TOLERANCE


def loop_sum(n_rows, indices, rows):
    """The scatter-add written as a Python loop: row k is the sum of rows[p] over every p with indices[p] = k."""
    expected = np.zeros((n_rows, rows.shape[1]))
    for index, row in zip(indices, rows):
        expected[index] += row
    return expected


@pytest.mark.parametrize("ids", [[2, 2, 2, 2, 2, 2], [0, 3, 0, 3, 1, 0], [4, 3, 2, 1, 0, 4]],
                         ids=["one id six times", "interleaved repeats", "every id, one twice"])
def test_repeated_ids_sum_every_gradient_exactly_as_a_loop_does(ids):
    """Values that are multiples of 1/8 below 2⁸ add without rounding in any order, so the sums must be
    bit for bit the loop's, whatever order the backend adds in."""
    rng = np.random.default_rng(1)
    layer = built(numnet.Embedding(5, 3), rng)
    grad_output = rng.integers(-64, 64, size=(1, len(ids), 3)) / 8.0
    layer.forward(on_backend(np.array([ids]), np.int64), training=True)
    layer.backward(on_backend(grad_output))
    np.testing.assert_array_equal(as_numpy(layer.grads["W"]), loop_sum(5, ids, grad_output[0]))


def test_both_scatter_add_paths_sum_like_a_loop():
    """NumPy's add.at path and the one-hot product that array-API libraries without a scatter-add use."""
    array_api_strict = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(2)
    indices = rng.integers(0, 6, size=40)
    rows = rng.integers(-64, 64, size=(40, 4)) / 8.0
    expected = loop_sum(6, indices, rows)
    target = np.full((6, 4), np.nan)  # overwritten, not added to
    scatter_add_rows(target, indices, rows)
    np.testing.assert_array_equal(target, expected)
    strided = np.full((6, 8), np.nan)[:, ::2]  # a target whose flat view would be a copy
    scatter_add_rows(strided, indices, rows)
    np.testing.assert_array_equal(strided, expected)
    strict_target = array_api_strict.zeros((6, 4), dtype=array_api_strict.float64)
    scatter_add_rows(strict_target, array_api_strict.asarray(indices), array_api_strict.asarray(rows))
    np.testing.assert_array_equal(as_numpy(strict_target), expected)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 3), time_steps=st.integers(1, 4), vocab_size=st.integers(1, 4), dim=st.integers(1, 3),
       seed=st.integers(0, 2 ** 16))
def test_random_embeddings_backpropagate_like_five_point_differences(n, time_steps, vocab_size, dim, seed):
    rng = np.random.default_rng(seed)
    layer = built(numnet.Embedding(vocab_size, dim), rng)
    ids = on_backend(rng.integers(0, vocab_size, size=(n, time_steps)), np.int64)
    weights = rng.normal(size=(n, time_steps, dim))  # C = Σ output ⊙ weights

    def cost(W):
        assign(layer.params["W"], W)
        return float(np.sum(as_numpy(layer.forward(ids, training=True)) * weights))

    W = as_numpy(layer.params["W"])
    numeric = five_point_gradient(cost, W.copy(), STEP)
    assign(layer.params["W"], W)
    layer.forward(ids, training=True)
    layer.backward(on_backend(weights))
    assert numnet.relative_error(as_numpy(layer.grads["W"]), numeric) < GRADIENT_TOLERANCE


@pytest.mark.parametrize("bad, error, message", [
    ([[0, 1], [2, -1]], ValueError, r"token id -1 at sample 1, time step 1, outside its vocabulary of 4 ids \[0, 4\)"),
    ([[0, 4, 1]], ValueError, r"token id 4 at sample 0, time step 1, outside its vocabulary of 4 ids"),
    ([[0, 1, 9], [7, 0, 0]], ValueError, r"token id 9 at sample 0, time step 2"),
    ([[0.0, 1.0]], TypeError, r"takes integer token ids, got an array of dtype float64; convert the ids"),
    ([[True, False]], TypeError, r"takes integer token ids, got an array of dtype bool"),
    ([0, 1, 2], ValueError, r"takes token ids of shape \(n_samples, time_steps\), got shape \(3,\)"),
])
def test_bad_ids_are_refused_naming_the_id_its_position_and_the_vocabulary(bad, error, message):
    layer = built(numnet.Embedding(4, 2, name="words"), np.random.default_rng(3))
    values = np.array(bad)
    with pytest.raises(error, match=r"layer words \(Embedding\) .*" + message):
        layer.forward(on_backend(values, values.dtype))


def test_small_integer_ids_index_a_large_vocabulary_without_overflow():
    """uint8 ids times a row width of 300 exceed 255: the flat indices are computed in int64."""
    rng = np.random.default_rng(4)
    layer = built(numnet.Embedding(256, 300), rng)
    ids = np.array([[255, 3, 255]], dtype=np.uint8)
    output = layer.forward(on_backend(ids, np.uint8), training=True)
    np.testing.assert_array_equal(as_numpy(output)[0], as_numpy(layer.params["W"])[[255, 3, 255]])
    layer.backward(on_backend(np.ones((1, 3, 300))))
    expected = np.zeros((256, 300))
    expected[255], expected[3] = 2.0, 1.0
    np.testing.assert_array_equal(as_numpy(layer.grads["W"]), expected)


def test_weights_start_standard_normal_as_in_pytorch_and_are_penalised():
    layer = built(numnet.Embedding(100, 50), np.random.default_rng(5))
    values = as_numpy(layer.params["W"]).ravel()
    # 5,000 draws of N(0, 1): the sample mean is within 4 standard errors (4/√5000 ≈ 0.057) of 0 and the
    # sample standard deviation within 5% of 1
    assert abs(values.mean()) < 0.057 and abs(values.std() - 1) < 0.05
    assert layer.penalized_parameters() == ("W",)
    assert layer.takes_token_ids and not numnet.Dense(2, 2).takes_token_ids


def test_shapes_config_and_registration():
    layer = numnet.Embedding(30, 8, name="tokens")
    assert layer.parameter_shapes() == {"W": (30, 8)}
    assert layer.output_shape((12,)) == (12, 8) and layer.output_shape((None,)) == (None, 8)
    assert layer.expected_input_shape() == (None,)
    with pytest.raises(ValueError, match=r"takes sequences of token ids, one sample of shape \(time_steps,\)"):
        layer.output_shape((12, 3))
    config = layer.config()
    assert config == {"type": "embedding", "vocab_size": 30, "dim": 8, "name": "tokens"}
    assert LAYERS["embedding"] is numnet.Embedding
    assert numnet.Embedding.from_config(config).config() == config
    assert layer.describe() == "Embedding 30 ids -> 8"
    with pytest.raises(TypeError, match="vocab_size must be a positive integer"):
        numnet.Embedding(30.0, 8)
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        numnet.Embedding(30, 0)


def test_backward_without_a_training_forward_says_so():
    layer = built(numnet.Embedding(3, 2), np.random.default_rng(6))
    layer.forward(on_backend(np.array([[0, 1]]), np.int64))
    with pytest.raises(RuntimeError, match="without a preceding forward pass with training=True"):
        layer.backward(on_backend(np.zeros((1, 2, 2))))
