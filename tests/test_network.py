"""Tests of numnet.Network: PyTorch as the oracle for forward, loss and backprop; construction, names,
views, summaries, dtypes and reproducible initialisation."""

import numpy as np
import pytest

import numnet
from numnet.initializers import Normal
from oracles import as_numpy, assign, backend_array, max_relative_difference, numpy_dtype, torch_reference

# Forward pass, loss and gradients in float64 against PyTorch in float64: both sum the same few products
# in different orders, so they differ by a few ulps (measured: at most 4.6e-16 of each array's scale).
TORCH_TOLERANCE = 1e-10
# A float32 result holds about 7 significant digits.
FLOAT32_TOLERANCE = 1e-6

# (id, layer sizes, hidden activation, output activation, loss, l2)
TORCH_CASES = [
    ("relu_softmax_cross_entropy", [3, 5, 4], "relu", "softmax", "softmax_cross_entropy", 0.0),
    ("deep_relu_softmax_cross_entropy_l2", [5, 8, 8, 8, 4], "relu", "softmax", "softmax_cross_entropy", 1e-3),
    ("tanh_two_sigmoid_outputs_bce_l2", [3, 6, 6, 2], "tanh", "sigmoid", "binary_cross_entropy", 0.01),
    ("sigmoid_one_sigmoid_output_bce", [2, 4, 1], "sigmoid", "sigmoid", "binary_cross_entropy", 0.0),
    ("leaky_relu_linear_output_mse_l2", [4, 5, 3], "leaky_relu", "linear", "mse", 0.1),
    ("sigmoid_tanh_output_mse", [3, 4, 4, 2], "sigmoid", "tanh", "mse", 0.0),
    ("tanh_softmax_output_mse", [3, 5, 3], "tanh", "softmax", "mse", 0.0),
    ("linear_hidden_sigmoid_output_mse_l2", [2, 3, 3, 2], "linear", "sigmoid", "mse", 0.05),
    ("tanh_exp_output_poisson_l2", [3, 5, 2], "tanh", "exp", "poisson", 0.01),
]


def torch_case_data(sizes, loss, n_samples=7, seed=0):
    """Inputs and targets suited to ``loss`` for a network with the given layer sizes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, sizes[0]))
    if loss == "softmax_cross_entropy":
        return X, rng.integers(0, sizes[-1], size=n_samples)
    if loss == "binary_cross_entropy":
        return X, rng.integers(0, 2, size=(n_samples, sizes[-1])).astype(np.float64)
    if loss == "poisson":
        return X, rng.poisson(1.5, size=(n_samples, sizes[-1])).astype(np.float64)
    return X, rng.normal(size=(n_samples, sizes[-1]))


@pytest.mark.parametrize("sizes, activation, output_activation, loss, l2",
                         [case[1:] for case in TORCH_CASES], ids=[case[0] for case in TORCH_CASES])
def test_output_loss_and_every_gradient_match_pytorch(sizes, activation, output_activation, loss, l2):
    pytest.importorskip("torch")
    network = numnet.Network(sizes, activation=activation, output_activation=output_activation, loss=loss,
                             bias_init=Normal(0.3), l2=l2, dtype="float64", seed=3)
    X, y = torch_case_data(sizes, loss)
    reference = torch_reference(network, X, y)

    assert max_relative_difference(network.forward(X), reference.output) < TORCH_TOLERANCE
    assert network.loss_value(X, y) == pytest.approx(reference.loss, rel=TORCH_TOLERANCE)
    loss_value = network.loss_and_gradients(network.prepare_inputs(X), network.prepare_targets(y, len(X)))
    assert loss_value == pytest.approx(reference.loss, rel=TORCH_TOLERANCE)
    gradients = network.gradients()
    assert set(gradients) == set(reference.gradients)
    for name, gradient in gradients.items():
        assert max_relative_difference(gradient, reference.gradients[name]) < TORCH_TOLERANCE, name


@pytest.mark.parametrize("sizes, activation, output_activation, loss, l2",
                         [case[1:] for case in TORCH_CASES], ids=[case[0] for case in TORCH_CASES])
def test_weighted_loss_and_every_gradient_match_pytorchs_weighted_mean(sizes, activation, output_activation,
                                                                        loss, l2):
    pytest.importorskip("torch")
    network = numnet.Network(sizes, activation=activation, output_activation=output_activation, loss=loss,
                             bias_init=Normal(0.3), l2=l2, dtype="float64", seed=4)
    X, y = torch_case_data(sizes, loss, seed=1)
    weights = np.array([0.0, 2.5, 1.0, 0.3, 4.0, 1.0, 0.7])  # a zero weight included
    reference = torch_reference(network, X, y, sample_weight=weights)
    assert network.loss_value(X, y, sample_weight=weights) == pytest.approx(reference.loss, rel=TORCH_TOLERANCE)
    loss_value = network.loss_and_gradients(network.prepare_inputs(X), network.prepare_targets(y, len(X)),
                                            weights=network.prepare_sample_weights(weights, len(X)))
    assert loss_value == pytest.approx(reference.loss, rel=TORCH_TOLERANCE)
    for name, gradient in network.gradients().items():
        assert max_relative_difference(gradient, reference.gradients[name]) < TORCH_TOLERANCE, name


def test_l2_penalty_is_half_lambda_times_sum_of_squared_weights_without_biases():
    network = numnet.Network([2, 2, 1], activation="linear", l2=0.5, dtype="float64")
    network.set_parameters({"dense_0.W": [[1.0, 2.0], [0.0, -1.0]], "dense_0.b": [10.0, 10.0],
                            "dense_1.W": [[3.0], [0.0]], "dense_1.b": [10.0]})
    # ½·0.5·(1 + 4 + 0 + 1 + 9 + 0) = 3.75; the biases (10) do not count
    assert network.penalty() == 3.75


# ---------------------------------------------------------------------------------------------------------
# Construction
# ---------------------------------------------------------------------------------------------------------


def test_network_from_layer_sizes_names_layers_and_sets_activations():
    network = numnet.Network([2, 50, 50, 3], activation="tanh", output_activation="softmax", seed=0)
    assert network.layer_sizes == [2, 50, 50, 3]
    assert [layer.name for layer in network.layers] == ["dense_0", "dense_1", "dense_2"]
    assert [layer.activation.name for layer in network.layers] == ["tanh", "tanh", "softmax"]
    assert network.loss.name == "softmax_cross_entropy"
    assert (network.n_inputs, network.n_outputs) == (2, 3)


def test_network_from_explicit_layers_keeps_their_activations_and_names():
    layers = [numnet.Dense(2, 4, "relu"), numnet.Dense(4, 4, "sigmoid", name="middle"),
              numnet.Dense(4, 3, "softmax")]
    network = numnet.Network(layers=layers, loss="cross_entropy", seed=0)
    assert network.layer_sizes == [2, 4, 4, 3]
    assert [layer.name for layer in network.layers] == ["dense_0", "middle", "dense_2"]
    assert list(network.parameters()) == ["dense_0.W", "dense_0.b", "middle.W", "middle.b", "dense_2.W",
                                          "dense_2.b"]
    assert network.layers[1].params["W"].shape == (4, 4)


def test_explicit_layers_whose_sizes_do_not_chain_are_refused():
    with pytest.raises(ValueError, match=r"layers\[1\] \(dense_1\) takes 5 inputs per sample, but layers\[0\] "
                                         r"\(dense_0\) gives shape \(None, 4\)"):
        numnet.Network(layers=[numnet.Dense(2, 4, "relu"), numnet.Dense(5, 1)])


def test_an_explicit_layer_name_that_collides_with_an_automatic_one_is_refused():
    # The unnamed second layer would be called dense_1 too, and its parameters would vanish from
    # parameters() behind the first layer's.
    with pytest.raises(ValueError, match=r"layer names must be unique, got \['dense_1', 'dense_1'\]"):
        numnet.Network(layers=[numnet.Dense(2, 3, "relu", name="dense_1"), numnet.Dense(3, 1)])


@pytest.mark.parametrize("arguments", [{}, {"layer_sizes": [2, 1], "layers": [numnet.Dense(2, 1)]}])
def test_network_needs_exactly_one_of_layer_sizes_or_layers(arguments):
    with pytest.raises(ValueError, match="exactly one of layer_sizes"):
        numnet.Network(**arguments)


@pytest.mark.parametrize("sizes", [[3], [2, 0, 1], [2, 1.5, 1]])
def test_invalid_layer_sizes_are_refused_with_the_sizes_in_the_message(sizes):
    # A fractional size is a TypeError, a size below 1 or too few sizes a ValueError; all name the sizes.
    with pytest.raises((ValueError, TypeError), match="layer size|at least an input and an output"):
        numnet.Network(sizes)


def test_unknown_activation_lists_valid_names_and_a_close_match():
    with pytest.raises(ValueError) as caught:
        numnet.Network([2, 3, 1], activation="rleu")
    message = str(caught.value)
    assert "unknown activation 'rleu'" in message
    for name in ("leaky_relu", "linear", "relu", "sigmoid", "softmax", "tanh"):
        assert name in message
    assert "did you mean 'relu'?" in message


def test_cross_entropy_with_a_sigmoid_output_is_refused_and_the_fix_is_named():
    with pytest.raises(ValueError, match="needs output_activation='softmax'.*uses 'sigmoid'"):
        numnet.Network([2, 3, 2], output_activation="sigmoid", loss="cross_entropy")


def test_binary_cross_entropy_with_a_linear_output_is_refused():
    with pytest.raises(ValueError, match="needs output_activation='sigmoid'"):
        numnet.Network([2, 3, 1], output_activation="linear", loss="bce")


@pytest.mark.parametrize("output_activation, loss, expected_output, expected_loss", [
    ("softmax", None, "softmax", "softmax_cross_entropy"),
    ("sigmoid", None, "sigmoid", "binary_cross_entropy"),
    (None, None, "linear", "mse"),
    (None, "bce", "sigmoid", "binary_cross_entropy"),
    (None, "cross_entropy", "softmax", "softmax_cross_entropy"),
    ("tanh", None, "tanh", "mse"),
    ("softmax", "mse", "softmax", "mse"),
])
def test_output_activation_and_loss_default_from_each_other(output_activation, loss, expected_output,
                                                             expected_loss):
    network = numnet.Network([2, 3, 2], output_activation=output_activation, loss=loss, seed=0)
    assert network.layers[-1].activation.name == expected_output
    assert network.loss.name == expected_loss


def test_negative_l2_is_refused():
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0, got -0.1"):
        numnet.Network([2, 1], l2=-0.1)


# ---------------------------------------------------------------------------------------------------------
# Named parameters, views, set_parameters, summary
# ---------------------------------------------------------------------------------------------------------


def hand_worked_network():
    """2 → 2 (relu) → 1 (linear) with the weights of the example in the test below."""
    network = numnet.Network([2, 2, 1], activation="relu", loss="mse", dtype="float64", seed=0)
    parameters = network.parameters()
    assign(parameters["dense_0.W"], [[1.0, -1.0], [2.0, 0.0]])
    assign(parameters["dense_0.b"], [0.0, 1.0])
    assign(parameters["dense_1.W"], [[1.0], [3.0]])
    assign(parameters["dense_1.b"], [0.5])
    return network


def test_parameters_and_gradients_are_named_by_layer_and_kind():
    network = numnet.Network([3, 4, 2], seed=0)
    expected = ["dense_0.W", "dense_0.b", "dense_1.W", "dense_1.b"]
    assert list(network.parameters()) == expected
    assert list(network.gradients()) == expected
    assert network.weight_names() == ["dense_0.W", "dense_1.W"]
    shapes = {name: array.shape for name, array in network.parameters().items()}
    assert shapes == {"dense_0.W": (3, 4), "dense_0.b": (4,), "dense_1.W": (4, 2), "dense_1.b": (2,)}
    assert network.n_parameters == 3 * 4 + 4 + 4 * 2 + 2


def test_writing_through_parameters_changes_predictions():
    network = hand_worked_network()
    # x = (1, 1):  z = (1·1 + 1·2 + 0, 1·(-1) + 1·0 + 1) = (3, 0) → relu (3, 0) → 3·1 + 0·3 + 0.5 = 3.5
    # x = (-1, 2): z = (-1 + 4 + 0, 1 + 0 + 1) = (3, 2) → relu (3, 2) → 3 + 6 + 0.5 = 9.5
    np.testing.assert_array_equal(network.predict([[1.0, 1.0], [-1.0, 2.0]]), [[3.5], [9.5]])


def test_parameters_are_views_into_the_flat_buffer():
    network = numnet.Network([3, 4, 2], seed=0)
    for array in network.parameters().values():
        assert np.shares_memory(array, network.flat_parameters)
    network.flat_parameters[...] = 0.25
    assert all(np.all(array == 0.25) for array in network.parameters().values())


def test_set_parameters_copies_values_by_name():
    network = hand_worked_network()
    new_weights = np.array([[2.0], [0.0]])
    network.set_parameters({"dense_1.W": new_weights})
    new_weights[0, 0] = 100.0  # the network holds a copy
    # x = (1, 1): hidden (3, 0) → 3·2 + 0 + 0.5 = 6.5
    np.testing.assert_array_equal(network.predict([[1.0, 1.0]]), [[6.5]])


def test_set_parameters_with_an_unknown_name_lists_the_valid_names():
    network = numnet.Network([3, 4, 2], seed=0)
    with pytest.raises(KeyError, match="no parameter named 'dense_5.W'; the network has: dense_0.W, dense_0.b"):
        network.set_parameters({"dense_5.W": np.zeros((3, 4))})


def test_set_parameters_with_a_wrong_shape_names_both_shapes():
    network = numnet.Network([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match=r"'dense_0.W' has shape \(3, 4\), got \(4, 3\)"):
        network.set_parameters({"dense_0.W": np.zeros((4, 3))})


def test_summary_lists_layers_shapes_and_parameter_counts():
    network = numnet.Network([2, 50, 50, 3], activation="relu", output_activation="softmax", seed=0)
    text = network.summary()
    # dense_0: 2·50 + 50 = 150; dense_1: 50·50 + 50 = 2,550; dense_2: 50·3 + 3 = 153; total 2,853
    lines = text.splitlines()
    for name, shape, count in [("dense_0", "(None, 50)", "150"), ("dense_1", "(None, 50)", "2,550"),
                               ("dense_2", "(None, 3)", "153")]:
        row = next(line for line in lines if line.startswith(name))
        assert shape in row and row.rstrip().endswith(count)
    assert "(None, 2)" in text  # the input
    assert "total parameters: 2,853" in text
    assert "relu" in text and "softmax" in text and "softmax_cross_entropy" in text


# ---------------------------------------------------------------------------------------------------------
# Forward, backward and prediction
# ---------------------------------------------------------------------------------------------------------


def test_backward_after_a_prediction_only_forward_raises_runtime_error():
    network = numnet.Network([3, 4, 2], output_activation="softmax", seed=0)
    X = np.ones((2, 3))
    network.forward(X)  # training=False
    with pytest.raises(RuntimeError, match="without a preceding forward pass with training=True"):
        network.backward(network.prepare_targets([0, 1], 2))


def test_backward_after_a_training_forward_fills_the_same_gradients_as_loss_and_gradients():
    network = numnet.Network([3, 4, 2], output_activation="softmax", dtype="float64", seed=0)
    X = np.random.default_rng(0).normal(size=(5, 3))
    Y = network.prepare_targets([0, 1, 1, 0, 1], 5)
    network.loss_and_gradients(network.prepare_inputs(X), Y)
    expected = {name: as_numpy(gradient) for name, gradient in network.gradients().items()}
    network.flat_gradients[...] = 0
    network.forward(X, training=True)
    network.backward(Y)
    for name, gradient in network.gradients().items():
        np.testing.assert_array_equal(gradient, expected[name])


def test_predict_returns_class_indices_for_softmax_labels_for_sigmoid_and_values_for_regression():
    X = np.random.default_rng(0).normal(size=(4, 3))
    softmax = numnet.Network([3, 5, 4], output_activation="softmax", seed=0)
    np.testing.assert_array_equal(softmax.predict(X), np.argmax(softmax.predict_proba(X), axis=1))
    assert softmax.predict(X).shape == (4,)
    sigmoid = numnet.Network([3, 5, 2], output_activation="sigmoid", seed=0)
    labels = sigmoid.predict(X)
    assert labels.shape == (4, 2) and set(np.unique(labels)) <= {0, 1}
    np.testing.assert_array_equal(labels, (sigmoid.predict_proba(X) > 0.5).astype(int))
    regression = numnet.Network([3, 5, 2], seed=0)
    np.testing.assert_array_equal(regression.predict(X), regression.forward(X))


def test_predict_proba_of_a_regression_network_is_refused():
    with pytest.raises(ValueError, match="predict_proba needs a classification loss.*'mse'"):
        numnet.Network([3, 2], seed=0).predict_proba(np.ones((1, 3)))


def test_accuracy_counts_correct_argmax_rows():
    classifier = numnet.Network([2, 2], activation="linear", output_activation="softmax", dtype="float64")
    classifier.set_parameters({"dense_0.W": np.eye(2), "dense_0.b": np.zeros(2)})
    # the logits are the inputs themselves: argmax of (2, 1), (0, 3), (5, 4) is 0, 1, 0; labels 0, 0, 0
    assert classifier.accuracy([[2.0, 1.0], [0.0, 3.0], [5.0, 4.0]], [0, 0, 0]) == pytest.approx(2 / 3)


def test_mean_squared_error_loss_value_uses_the_half_convention():
    # output 3.5 for x = (1, 1) (see the hand-worked example above) against target 3: C = ½·(3.5 - 3)² = 0.125
    assert hand_worked_network().loss_value([[1.0, 1.0]], [[3.0]]) == 0.125


# ---------------------------------------------------------------------------------------------------------
# Precision
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "linear"])
@pytest.mark.parametrize("output_activation", ["softmax", "sigmoid", "linear"])
def test_float32_network_stays_float32_through_forward_and_backward(activation, output_activation):
    network = numnet.Network([3, 4, 3], activation=activation, output_activation=output_activation,
                             l2=0.1, seed=0)
    assert network.dtype == np.float32
    X = network.prepare_inputs(np.random.default_rng(0).normal(size=(5, 3)))  # float64 in
    Y = network.prepare_targets(np.array([0, 1, 2, 1, 0]) if output_activation == "softmax"
                                else np.ones((5, 3), dtype=np.int64), 5)
    assert numpy_dtype(X) == np.float32 and numpy_dtype(Y) == np.float32
    network.loss_and_gradients(X, Y)
    for layer in network.layers:
        assert numpy_dtype(layer.output) == np.float32
        grad_out = backend_array(np.ones((5, layer.n_outputs), dtype=np.float32), like=layer.output)
        assert numpy_dtype(layer.backward(grad_out)) == np.float32
    for array in [*network.parameters().values(), *network.gradients().values()]:
        assert numpy_dtype(array) == np.float32


@pytest.mark.parametrize("inputs", [np.arange(6, dtype=np.int64).reshape(2, 3),
                                    np.ones((2, 3), dtype=np.float64),
                                    [[1, 2, 3], [4, 5, 6]]])
def test_float32_network_returns_float32_for_int_float64_and_list_inputs(inputs):
    network = numnet.Network([3, 4, 2], output_activation="softmax", seed=0)
    assert network.forward(inputs).dtype == np.float32
    assert network.predict_proba(inputs).dtype == np.float32


def test_float64_network_on_request_stays_float64_when_fed_float32():
    network = numnet.Network([3, 4, 2], output_activation="softmax", dtype="float64", seed=0)
    X = np.ones((2, 3), dtype=np.float32)
    assert network.forward(X).dtype == np.float64
    network.loss_and_gradients(network.prepare_inputs(X), network.prepare_targets([0, 1], 2))
    for array in [*network.parameters().values(), *network.gradients().values()]:
        assert numpy_dtype(array) == np.float64


def test_float32_and_float64_networks_with_one_seed_start_from_the_same_weights():
    single = numnet.Network([3, 4, 2], seed=7)
    double = numnet.Network([3, 4, 2], seed=7, dtype="float64")
    np.testing.assert_allclose(single.flat_parameters, double.flat_parameters, rtol=FLOAT32_TOLERANCE)


@pytest.mark.parametrize("dtype", ["float16", "int32", "complex128"])
def test_unsupported_dtypes_are_refused(dtype):
    with pytest.raises(ValueError, match="dtype must be one of float32, float64"):
        numnet.Network([2, 1], dtype=dtype)


# ---------------------------------------------------------------------------------------------------------
# Reproducible initialisation
# ---------------------------------------------------------------------------------------------------------


def test_the_same_seed_gives_bit_identical_weights():
    first = numnet.Network([4, 8, 8, 3], output_activation="softmax", seed=42)
    second = numnet.Network([4, 8, 8, 3], output_activation="softmax", seed=42)
    assert np.array_equal(first.flat_parameters, second.flat_parameters)


def test_different_seeds_give_different_weights():
    first = numnet.Network([4, 8, 3], seed=1)
    second = numnet.Network([4, 8, 3], seed=2)
    assert not np.array_equal(first.parameters()["dense_0.W"], second.parameters()["dense_0.W"])


def test_copy_has_equal_weights_in_the_requested_dtype_and_is_independent():
    network = numnet.Network([3, 4, 2], output_activation="softmax", seed=0)
    clone = network.copy(dtype="float64")
    assert clone.dtype == np.float64 and clone.loss.name == network.loss.name
    np.testing.assert_array_equal(clone.flat_parameters, as_numpy(network.flat_parameters).astype(np.float64))
    clone.flat_parameters[...] = 0
    assert np.any(network.flat_parameters != 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_single_non_finite_input_among_huge_finite_ones_is_found(bad):
    # 3e38 is finite in float32 but any sum of two overflows: the fast one-sum check must fall through to
    # the element-wise check, which finds the one bad entry and names its position.
    X = np.full((4, 3), 3e38, dtype=np.float32)
    X[2, 1] = bad
    network = numnet.Network([3, 2], loss="mse", seed=0)
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at index \[2, 1\]"):
        network.predict(X)
    X[2, 1] = 3e38
    numnet.backend.check_finite(X, "X")  # all finite: no error, although their sum overflows


@pytest.mark.parametrize("scalar", [np.float64(3.0), np.float32(3.0), np.int64(3)])
def test_a_numpy_scalar_input_is_refused_as_not_two_dimensional(scalar):
    network = numnet.Network([1, 2], loss="mse", seed=0)
    with pytest.raises(ValueError, match=r"X must be a 2-D array.*got 0 dimensions"):
        network.predict(scalar)


class ScaledSquaredError(numnet.losses.MeanSquaredError):
    """A loss of a user's with an option: the copy must carry the option, not a default-built loss."""

    name = "scaled_squared_error"

    def __init__(self, scale):
        self.scale = scale

    def value(self, output, target, weights=None):
        return self.scale * super().value(output, target, weights)

    def gradient(self, output, target, weights=None):
        return self.scale * super().gradient(output, target, weights)


def test_copy_keeps_the_losss_options_and_rebuilds_as_loading_does():
    network = numnet.Network([2, 3, 1], activation="tanh", loss=ScaledSquaredError(3.0), l2=0.1, dtype="float64",
                             seed=0)
    clone = network.copy(dtype="float32")
    assert type(clone.loss) is ScaledSquaredError and clone.loss.scale == 3.0 and clone.loss is not network.loss
    assert clone.l2 == 0.1 and clone.dtype == np.float32 and clone.config()["layers"] == network.config()["layers"]
    X, y = np.array([[0.5, -1.0], [1.0, 2.0]]), np.array([[1.0], [0.0]])
    assert clone.loss_value(X, y) == pytest.approx(network.loss_value(X, y), rel=1e-6)
