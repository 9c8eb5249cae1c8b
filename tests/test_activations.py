"""Tests of numnet.activations: values against PyTorch and closed forms, derivatives against central
differences in float64, and numerical stability for inputs of any magnitude."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numnet
from numnet.activations import ACTIVATIONS, LeakyReLU, Softmax, get_activation

# Step of the central differences: truncation error ~h²·|f'''|/6 ≈ 2e-11 and rounding error ~eps/h ≈ 2e-11
# for these functions, so h = 1e-5 keeps the numerical derivative good to ~1e-9 relative on inputs in [-4, 4]
# (the smallest derivative there, tanh'(4) ≈ 1.3e-3, sets the worst case).
CENTRAL_STEP = 1e-5
# The acceptance bound for analytic vs numerical derivatives (measured worst case here: ~3e-9, tanh).
DERIVATIVE_TOLERANCE = 1e-7
# An elementwise function evaluated by NumPy and by PyTorch in float64 differs by at most a few ulps
# (measured: 4e-16 relative for sigmoid, 2e-16 for tanh).
ELEMENTWISE_FORWARD_TOLERANCE = 1e-15
# Softmax adds K exponentials and divides; its rounding grows with the row length (measured 7e-16, K = 40).
SOFTMAX_FORWARD_TOLERANCE = 1e-14
# Backward passes of numnet and torch autograd are the same few multiplications, rounded differently.
AUTOGRAD_TOLERANCE = 1e-14
# One float64 rounding of a result near 1.
FLOAT64_EPS = np.finfo(np.float64).eps
# Denominator floor of the relative error, so two zero derivatives compare as equal.
TINY = 1e-300

ELEMENTWISE_NAMES = ["sigmoid", "tanh", "relu", "leaky_relu", "linear", "exp"]
FAST = settings(max_examples=30, deadline=None, derandomize=True)


def relative_error(analytic, numeric):
    """Largest entrywise |analytic - numeric| / max(|analytic|, |numeric|, TINY)."""
    analytic, numeric = np.asarray(analytic), np.asarray(numeric)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), TINY)
    return float(np.max(np.abs(analytic - numeric) / scale))


def inputs_away_from_zero(shape, seed, limit=4.0):
    """Uniform inputs in [-limit, limit] with |z| >= 0.01, away from the kinks of relu and leaky relu at 0."""
    z = np.random.default_rng(seed).uniform(-limit, limit, size=shape)
    return np.where(np.abs(z) < 0.01, 0.5, z)


def torch_reference(name):
    """The PyTorch function that is the same activation as numnet's ``name``."""
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    return {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": functional.relu,
        "leaky_relu": lambda z: functional.leaky_relu(z, negative_slope=0.01),
        "linear": lambda z: z.clone(),
        "softmax": lambda z: torch.softmax(z, dim=1),
        "exp": torch.exp,
    }[name]


# ---------------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ELEMENTWISE_NAMES)
def test_elementwise_activation_values_match_torch_in_float64(name):
    torch = pytest.importorskip("torch")
    z = np.random.default_rng(0).uniform(-30, 30, size=(50, 40))
    expected = torch_reference(name)(torch.from_numpy(z)).numpy()
    assert relative_error(get_activation(name).forward(z), expected) < ELEMENTWISE_FORWARD_TOLERANCE


def test_softmax_values_match_torch_in_float64():
    torch = pytest.importorskip("torch")
    z = np.random.default_rng(1).uniform(-30, 30, size=(50, 40))
    expected = torch.softmax(torch.from_numpy(z), dim=1).numpy()
    assert relative_error(get_activation("softmax").forward(z), expected) < SOFTMAX_FORWARD_TOLERANCE


def test_activation_values_of_a_hand_worked_example():
    z = np.array([[-2.0, 0.0, 3.0]])
    # relu: max(0, z) = [0, 0, 3]; leaky relu (slope 0.01): [-0.02, 0, 3]; identity: z.
    np.testing.assert_array_equal(get_activation("relu").forward(z), [[0.0, 0.0, 3.0]])
    np.testing.assert_allclose(get_activation("leaky_relu").forward(z), [[-0.02, 0.0, 3.0]], rtol=FLOAT64_EPS)
    np.testing.assert_array_equal(get_activation("linear").forward(z), z)
    # sigmoid(0) = 1/2 and tanh(0) = 0 exactly; sigmoid(3) = 1/(1 + e^-3) = 0.95257412682243...
    sigmoid = get_activation("sigmoid").forward(z)
    assert sigmoid[0, 1] == 0.5
    assert sigmoid[0, 2] == pytest.approx(0.9525741268224334, rel=2 * FLOAT64_EPS)
    assert get_activation("tanh").forward(z)[0, 1] == 0.0
    # softmax([0, ln 2, ln 3]) = [1, 2, 3] / 6
    softmax = get_activation("softmax").forward(np.log([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(softmax, [[1 / 6, 2 / 6, 3 / 6]], rtol=4 * FLOAT64_EPS)


@pytest.mark.parametrize("name", ELEMENTWISE_NAMES + ["softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_keeps_the_input_dtype_and_leaves_the_input_unchanged(name, dtype):
    z = inputs_away_from_zero((4, 3), seed=2).astype(dtype)
    original = z.copy()
    a = get_activation(name).forward(z)
    assert a.dtype == dtype and a.shape == z.shape
    np.testing.assert_array_equal(z, original)


@pytest.mark.parametrize("name", ELEMENTWISE_NAMES + ["softmax"])
def test_forward_into_the_input_buffer_gives_the_same_values(name):
    z = inputs_away_from_zero((5, 3), seed=3)
    expected = get_activation(name).forward(z)
    buffer = z.copy()
    result = get_activation(name).forward(buffer, out=buffer)
    assert result is buffer
    np.testing.assert_array_equal(buffer, expected)


def test_float32_sigmoid_agrees_with_float64_to_float32_precision():
    z = np.random.default_rng(4).uniform(-20, 20, size=(30, 10))
    sigmoid = get_activation("sigmoid")
    single = sigmoid.forward(z.astype(np.float32))
    # Rounding z to float32 moves sigmoid by at most |z|·eps32·sigmoid'(z) <= 20·6e-8/4, plus the float32
    # rounding of the result itself, relative to a value in (0, 1): 1e-6 absolute covers both.
    np.testing.assert_allclose(single, sigmoid.forward(z), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# Derivatives against central differences
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ELEMENTWISE_NAMES)
def test_derivative_from_the_output_matches_central_differences(name):
    activation = get_activation(name)
    z = inputs_away_from_zero((20, 10), seed=5)
    numeric = numnet.numerical_derivative(activation.forward, z, h=CENTRAL_STEP)
    analytic = activation.derivative(activation.forward(z))
    assert relative_error(analytic, numeric) < DERIVATIVE_TOLERANCE


@pytest.mark.parametrize("name", ELEMENTWISE_NAMES + ["softmax"])
def test_backward_matches_central_differences_of_the_weighted_output(name):
    # backward(g, a) is the vector-Jacobian product dC/dz for C = Σ g ⊙ f(z).
    activation = get_activation(name)
    z = inputs_away_from_zero((6, 4), seed=6)
    grad_a = np.random.default_rng(7).standard_normal(z.shape)
    numeric = numnet.numerical_gradient(lambda x: np.sum(grad_a * activation.forward(x)), z.copy(), h=CENTRAL_STEP)
    analytic = activation.backward(grad_a, activation.forward(z))
    assert numnet.relative_error(analytic, numeric) < DERIVATIVE_TOLERANCE


@pytest.mark.parametrize("name", ELEMENTWISE_NAMES + ["softmax"])
def test_backward_matches_torch_autograd(name):
    torch = pytest.importorskip("torch")
    z = inputs_away_from_zero((8, 5), seed=8)
    grad_a = np.random.default_rng(9).standard_normal(z.shape)
    z_torch = torch.tensor(z, requires_grad=True)
    torch_reference(name)(z_torch).backward(torch.from_numpy(grad_a))
    activation = get_activation(name)
    analytic = activation.backward(grad_a, activation.forward(z))
    assert numnet.relative_error(analytic, z_torch.grad.numpy()) < AUTOGRAD_TOLERANCE


@pytest.mark.parametrize("name", ELEMENTWISE_NAMES + ["softmax"])
def test_backward_leaves_its_inputs_unchanged(name):
    activation = get_activation(name)
    a = activation.forward(inputs_away_from_zero((3, 4), seed=10))
    grad_a = np.ones_like(a)
    a_before, grad_before = a.copy(), grad_a.copy()
    result = activation.backward(grad_a, a)
    assert result is not grad_a
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(grad_a, grad_before)


def test_softmax_jacobian_matches_central_differences():
    softmax = Softmax()
    z = np.random.default_rng(11).uniform(-3, 3, size=(4, 5))
    numeric = np.empty((4, 5, 5))  # numeric[i, k, j] = d a_ik / d z_ij
    for j in range(5):
        step = np.zeros_like(z)
        step[:, j] = CENTRAL_STEP  # rows are independent, so one column step gives every row's column j
        numeric[:, :, j] = (softmax.forward(z + step) - softmax.forward(z - step)) / (2 * CENTRAL_STEP)
    analytic = softmax.jacobian(softmax.forward(z))
    assert analytic.shape == (4, 5, 5)
    assert numnet.relative_error(analytic, numeric) < DERIVATIVE_TOLERANCE


def test_softmax_jacobian_of_a_hand_worked_example():
    # a = [1/4, 3/4]: J = diag(a) - a aᵀ = [[1/4 - 1/16, -3/16], [-3/16, 3/4 - 9/16]] = [[3, -3], [-3, 3]] / 16
    jacobian = Softmax().jacobian(np.array([[0.25, 0.75]]))
    np.testing.assert_array_equal(jacobian, [[[3 / 16, -3 / 16], [-3 / 16, 3 / 16]]])


def test_softmax_has_no_elementwise_derivative():
    with pytest.raises(TypeError, match="jacobian"):
        Softmax().derivative(np.full((1, 3), 1 / 3))


def test_relu_derivative_is_zero_at_zero_like_torch():
    # At the kink PyTorch uses relu'(0) = 0; numnet documents the same choice.
    assert get_activation("relu").derivative(np.zeros((1, 1)))[0, 0] == 0.0


def test_leaky_relu_uses_its_negative_slope_on_both_sides():
    activation = LeakyReLU(negative_slope=0.2)
    z = np.array([[-5.0, 5.0]])
    # forward: [-5·0.2, 5] = [-1, 5]; derivative: [0.2, 1]
    np.testing.assert_allclose(activation.forward(z), [[-1.0, 5.0]], rtol=FLOAT64_EPS)
    np.testing.assert_array_equal(activation.derivative(activation.forward(z)), [[0.2, 1.0]])


@pytest.mark.parametrize("slope", [-0.1, 1.0, 2.0, float("nan")])
def test_leaky_relu_rejects_a_slope_outside_zero_to_one(slope):
    with pytest.raises(ValueError, match="negative_slope"):
        LeakyReLU(negative_slope=slope)


# ---------------------------------------------------------------------------------------------------------
# Stability for inputs of any magnitude
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_stays_finite_and_silent_for_inputs_up_to_1e30(dtype):
    z = np.array([[-1e30, -1e4, -1000.0, -100.0, 0.0, 100.0, 1000.0, 1e4, 1e30]], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        a = get_activation("sigmoid").forward(z)
    assert a.dtype == dtype
    assert np.all(np.isfinite(a)) and np.all((a >= 0) & (a <= 1))
    # The limits: exactly 0 far left, 1/2 at 0, exactly 1 far right (1 - e^-100 rounds to 1).
    assert a[0, 0] == 0.0 and a[0, 1] == 0.0 and a[0, 4] == 0.5 and np.all(a[0, 5:] == 1.0)
    # sigmoid(-100) = e^-100 / (1 + e^-100) ≈ 3.72e-44: representable in both dtypes (float32 as subnormal)
    assert a[0, 3] > 0
    # A float32 subnormal is only good to its spacing, the smallest subnormal (1.4e-45), absolutely.
    spacing = np.finfo(np.float32).smallest_subnormal if dtype == np.float32 else 0.0
    np.testing.assert_allclose(a[0, 3], np.exp(-100.0), rtol=4 * FLOAT64_EPS, atol=spacing)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_stays_finite_and_sums_to_one_for_logits_of_1e4(dtype):
    z = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, 1e4], [-1e4, -1e4, -1e4 + 1], [-1e4, 1e4, 1e4]], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        a = get_activation("softmax").forward(z)
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=4 * np.finfo(dtype).eps)
    np.testing.assert_array_equal(a[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(a[1], 1 / 3, rtol=2 * np.finfo(dtype).eps)
    # softmax([0, 0, 1]) = [1, 1, e] / (2 + e)
    expected_last_row = np.array([1.0, 1.0, np.e]) / (2 + np.e)
    np.testing.assert_allclose(a[2], expected_last_row, rtol=8 * np.finfo(dtype).eps)
    np.testing.assert_allclose(a[3], [0.0, 0.5, 0.5], rtol=2 * np.finfo(dtype).eps)


@pytest.mark.parametrize("name", ["tanh", "relu", "leaky_relu", "linear"])
def test_other_activations_stay_finite_and_silent_for_inputs_of_1e30(name):
    z = np.array([[-1e30, -1000.0, 1000.0, 1e30]])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        activation = get_activation(name)
        a = activation.forward(z)
        derivative = activation.derivative(a)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(derivative))


# ---------------------------------------------------------------------------------------------------------
# Properties over random shapes
# ---------------------------------------------------------------------------------------------------------

logit_matrices = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
    elements=st.floats(-50, 50, allow_nan=False, allow_infinity=False),
)


@FAST
@given(logit_matrices, st.data())
def test_softmax_rows_sum_to_one_and_ignore_a_constant_added_per_row(z, data):
    shifts = data.draw(hnp.arrays(np.float64, (z.shape[0], 1), elements=st.floats(-100, 100)))
    softmax = get_activation("softmax")
    a = softmax.forward(z)
    assert np.all(a >= 0)
    # A row of K entries sums with a rounding error of at most about K ulps.
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=0, atol=z.shape[1] * FLOAT64_EPS)
    # z + c is rounded to within ulp(150) ≈ 3e-14, which changes each e^z by that much relatively.
    np.testing.assert_allclose(softmax.forward(z + shifts), a, rtol=1e-12, atol=1e-300)


@FAST
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=8),
                  elements=st.floats(allow_nan=False, allow_infinity=False)))
def test_sigmoid_of_minus_z_is_one_minus_sigmoid_of_z(z):
    sigmoid = get_activation("sigmoid")
    with np.errstate(all="raise"):
        left, right = sigmoid.forward(-z), 1.0 - sigmoid.forward(z)
    # sigmoid(z) and 1 - sigmoid(z) each carry about one rounding of a number in [0, 1].
    np.testing.assert_allclose(left, right, rtol=0, atol=2 * FLOAT64_EPS)


@FAST
@given(st.sampled_from(ELEMENTWISE_NAMES), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_derivative_matches_central_differences_for_random_shapes(name, n_samples, n_units, seed):
    activation = get_activation(name)
    z = inputs_away_from_zero((n_samples, n_units), seed)
    numeric = numnet.numerical_derivative(activation.forward, z, h=CENTRAL_STEP)
    assert relative_error(activation.derivative(activation.forward(z)), numeric) < DERIVATIVE_TOLERANCE


def test_every_activation_in_the_table_has_a_derivative_or_a_jacobian():
    for name in ACTIVATIONS:
        activation = get_activation(name)
        a = activation.forward(inputs_away_from_zero((2, 3), seed=12))
        if activation.elementwise:
            assert activation.derivative(a).shape == a.shape
        else:
            assert activation.jacobian(a).shape == (2, 3, 3)
