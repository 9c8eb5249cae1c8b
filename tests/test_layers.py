"""Tests of numnet.Dense: shapes, a hand-worked forward pass, caching rules, and backward against central
differences for every activation."""

import numpy as np
import pytest

import numnet

# dC/dx, dC/dW and dC/db of one float64 layer against central differences (h = 1e-6): the truncation error
# is ~h²·|f'''| ~ 1e-12 and the rounding error ~ε·|C|/h ~ 1e-10 of each gradient's scale.
CENTRAL_DIFFERENCE_TOLERANCE = 1e-7
STEP = 1e-6
# Statistics of 200,000 initial weights: the sample standard deviation's relative error is about
# 1/sqrt(2·200,000) = 0.16%, so 1% is six standard errors.
INIT_STD_TOLERANCE = 0.01

ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "linear", "softmax"]


def bound_dense(n_inputs, n_outputs, activation="linear", dtype=np.float64, seed=0):
    """A Dense layer bound to its own parameter and gradient arrays and initialised from ``seed``."""
    layer = numnet.Dense(n_inputs, n_outputs, activation, name="layer")
    shapes = layer.parameter_shapes()
    layer.bind({key: np.zeros(shape, dtype) for key, shape in shapes.items()},
               {key: np.zeros(shape, dtype) for key, shape in shapes.items()})
    layer.initialize(np.random.default_rng(seed))
    layer.params["b"][...] = np.random.default_rng(seed + 1).normal(size=n_outputs)
    return layer


def test_dense_parameter_shapes_follow_samples_as_rows():
    layer = numnet.Dense(3, 5)
    assert layer.parameter_shapes() == {"W": (3, 5), "b": (5,)}
    assert layer.n_parameters == 3 * 5 + 5


def test_dense_inside_a_network_has_bound_parameters_and_gradients_of_those_shapes():
    network = numnet.Network([3, 5, 2], seed=0)
    layer = network.layers[0]
    assert layer.params["W"].shape == layer.grads["W"].shape == (3, 5)
    assert layer.params["b"].shape == layer.grads["b"].shape == (5,)


def test_dense_forward_computes_x_w_plus_b_on_a_hand_worked_example():
    layer = bound_dense(3, 2, "linear")
    layer.params["W"][...] = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    layer.params["b"][...] = [0.5, -1.0]
    x = np.array([[1.0, 0.0, -1.0], [1.0, 1.0, 1.0]])
    # row 1: (1 - 5 + 0.5, 2 - 6 - 1) = (-3.5, -5); row 2: (1 + 3 + 5 + 0.5, 2 + 4 + 6 - 1) = (9.5, 11)
    np.testing.assert_array_equal(layer.forward(x, training=False), [[-3.5, -5.0], [9.5, 11.0]])
    layer.activation = numnet.get_activation("relu")
    np.testing.assert_array_equal(layer.forward(x, training=False), [[0.0, 0.0], [9.5, 11.0]])


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_output_and_backward_input_gradient_have_the_expected_shapes(activation):
    layer = bound_dense(4, 3, activation)
    x = np.random.default_rng(0).normal(size=(6, 4))
    assert layer.forward(x, training=True).shape == (6, 3)
    assert layer.backward(np.ones((6, 3))).shape == (6, 4)
    assert layer.backward(np.ones((6, 3)), propagate=False) is None
    assert layer.grads["W"].shape == (4, 3) and layer.grads["b"].shape == (3,)


def test_forward_logits_gives_z_and_a():
    layer = bound_dense(2, 3, "tanh")
    x = np.array([[0.5, -1.0]])
    z, a = layer.forward_logits(x, training=False)
    np.testing.assert_allclose(z, x @ layer.params["W"] + layer.params["b"], rtol=1e-15)
    np.testing.assert_allclose(a, np.tanh(z), rtol=1e-15)


def test_forward_with_training_false_caches_nothing_so_backward_raises():
    layer = bound_dense(3, 2, "relu")
    layer.forward(np.ones((4, 3)), training=False)
    with pytest.raises(RuntimeError, match="backward called on layer layer without a preceding forward pass "
                                           r"with training=True; call forward\(x, training=True\) first"):
        layer.backward(np.ones((4, 2)))


def test_backward_before_any_forward_raises_runtime_error_not_attribute_error():
    layer = bound_dense(3, 2, "sigmoid")
    with pytest.raises(RuntimeError, match="without a preceding forward pass with training=True"):
        layer.backward(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="without a preceding forward pass with training=True"):
        layer.output  # noqa: B018 - the property access is the test


def test_a_prediction_forward_drops_the_cache_of_an_earlier_training_forward():
    layer = bound_dense(3, 2, "tanh")
    layer.forward(np.ones((4, 3)), training=True)
    layer.forward(np.ones((5, 3)), training=False)
    with pytest.raises(RuntimeError, match="without a preceding forward pass"):
        layer.backward(np.ones((4, 2)))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_does_not_modify_its_input_gradient_or_the_cache(activation):
    layer = bound_dense(4, 3, activation)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 4))
    x_before = x.copy()
    a = layer.forward(x, training=True)
    a_before = a.copy()
    grad_output = rng.normal(size=(5, 3))
    grad_before = grad_output.copy()
    layer.backward(grad_output)
    layer.backward_delta(grad_output)
    np.testing.assert_array_equal(grad_output, grad_before)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(layer.output, a_before)


def central_difference(function, array):
    """dfunction/darray by central differences in float64, perturbing ``array`` in place and restoring it."""
    gradient = np.zeros_like(array)
    for index in np.ndindex(*array.shape):
        original = array[index]
        array[index] = original + STEP
        plus = function()
        array[index] = original - STEP
        minus = function()
        array[index] = original
        gradient[index] = (plus - minus) / (2 * STEP)
    return gradient


def relative_error(analytic, numeric):
    """||analytic - numeric|| / max(||analytic||, ||numeric||), judged on the whole array."""
    return np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic), np.linalg.norm(numeric), 1e-300)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_matches_central_differences_of_a_weighted_sum_of_outputs(activation):
    # C = Σ G ⊙ f(x W + b) for a fixed random G, so dC/da = G: backward(G) must return dC/dx and fill
    # dC/dW, dC/db. Inputs are offset from 0 so that no relu pre-activation sits at its kink.
    layer = bound_dense(4, 3, activation, seed=2)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 4))
    weights = rng.normal(size=(5, 3))

    def cost():
        return float(np.sum(weights * layer.forward(x, training=False)))

    z = layer.forward_logits(x, training=False)[0]
    assert np.min(np.abs(z)) > 1e-3, "pre-activation too close to a kink for a central difference"
    layer.forward(x, training=True)
    grad_x = layer.backward(weights)
    assert relative_error(grad_x, central_difference(cost, x)) < CENTRAL_DIFFERENCE_TOLERANCE
    for key in ("W", "b"):
        numeric = central_difference(cost, layer.params[key])
        assert relative_error(layer.grads[key], numeric) < CENTRAL_DIFFERENCE_TOLERANCE, key


def test_backward_delta_applies_bp3_and_bp4_to_a_hand_worked_delta():
    layer = bound_dense(2, 2, "linear")
    layer.params["W"][...] = [[1.0, 2.0], [3.0, 4.0]]
    x = np.array([[1.0, 0.0], [2.0, 1.0]])
    layer.forward(x, training=True)
    delta = np.array([[1.0, -1.0], [0.5, 2.0]])
    grad_x = layer.backward_delta(delta)
    # BP4: xᵀ delta = [[1·1 + 2·0.5, 1·(-1) + 2·2], [0·1 + 1·0.5, 0·(-1) + 1·2]] = [[2, 3], [0.5, 2]]
    np.testing.assert_array_equal(layer.grads["W"], [[2.0, 3.0], [0.5, 2.0]])
    # BP3: column sums of delta = (1.5, 1)
    np.testing.assert_array_equal(layer.grads["b"], [1.5, 1.0])
    # BP2's first factor: delta Wᵀ = [[1 - 2, 3 - 4], [0.5 + 4, 1.5 + 8]] = [[-1, -1], [4.5, 9.5]]
    np.testing.assert_array_equal(grad_x, [[-1.0, -1.0], [4.5, 9.5]])


@pytest.mark.parametrize("value, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                          (True, TypeError), ("4", TypeError)])
def test_dense_refuses_sizes_that_are_not_positive_integers(value, error):
    with pytest.raises(error, match=f"n_inputs must be a positive integer, got {value!r}"):
        numnet.Dense(value, 3)


def test_dense_with_an_unknown_activation_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'sigmod'; choose one of: .*sigmoid.*"
                                         r"\(did you mean 'sigmoid'\?\)"):
        numnet.Dense(2, 3, "sigmod")


@pytest.mark.parametrize("activation, expected_std", [
    ("relu", np.sqrt(2.0 / 1000)),           # He: 2 / fan_in
    ("leaky_relu", np.sqrt(2.0 / 1000)),
    ("tanh", np.sqrt(6.0 / 1200) / np.sqrt(3)),  # Xavier uniform U(-r, r), r = sqrt(6/(1000+200)), std r/√3
    ("sigmoid", np.sqrt(6.0 / 1200) / np.sqrt(3)),
])
def test_automatic_weight_init_is_he_for_relu_like_and_xavier_otherwise(activation, expected_std):
    layer = bound_dense(1000, 200, activation)
    assert layer.params["W"].std() == pytest.approx(expected_std, rel=INIT_STD_TOLERANCE)


def test_a_dense_layer_without_bias_computes_x_w_and_has_no_b():
    layer = numnet.Dense(3, 2, bias=False)
    assert layer.parameter_shapes() == {"W": (3, 2)} and layer.n_parameters == 6
    layer.bind({"W": np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])}, {"W": np.zeros((3, 2))})
    x = np.array([[1.0, 0.0, -1.0]])
    # (1 - 5, 2 - 6) = (-4, -4)
    np.testing.assert_array_equal(layer.forward(x, training=True), [[-4.0, -4.0]])
    layer.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(layer.grads["W"], x.T @ np.ones((1, 2)))  # BP4 only; no BP3
    assert layer.config()["bias"] is False and numnet.Dense.from_config(layer.config()).bias is False
    with pytest.raises(TypeError, match="bias must be True or False"):
        numnet.Dense(3, 2, bias="no")


@pytest.mark.parametrize("layer, shown", [
    (numnet.Dense(3, 4), "Dense(3, 4)"),
    (numnet.Dense(3, 4, "relu"), "Dense(3, 4, activation='relu')"),  # He: what "auto" gives before relu
    (numnet.Dense(3, 4, "tanh", weight_init="xavier"), "Dense(3, 4, activation='tanh')"),
    (numnet.Dense(3, 4, "relu", weight_init=numnet.initializers.Normal(0.01), bias_init=0.1, bias=False, name="h"),
     "Dense(3, 4, activation='relu', weight_init=Normal(std=0.01, mean=0.0), bias_init=Constant(0.1), "
     "bias=False, name='h')"),
    (numnet.Dense(3, 4, numnet.activations.LeakyReLU(0.2)), "Dense(3, 4, activation=LeakyReLU(negative_slope=0.2))"),
])
def test_dense_repr_shows_every_setting_that_differs_from_the_defaults(layer, shown):
    assert repr(layer) == shown
