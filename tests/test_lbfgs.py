"""Tests of numnet.lbfgs: full-batch L-BFGS-B on a Network, against closed-form least squares."""

import numpy as np
import pytest

pytest.importorskip("scipy")

import numnet  # noqa: E402
from numnet.lbfgs import minimize_lbfgs  # noqa: E402

#: L-BFGS stops once every gradient entry is below this; the least-squares weights are then within about
#: that much (the Hessian of these well-conditioned problems has eigenvalues of order 1).
TIGHT_TOLERANCE = 1e-10
WEIGHT_ATOL = 1e-7


def linear_problem(seed=0, n_samples=40):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 3))
    return X, X @ np.array([[1.5], [-2.0], [0.5]]) + 0.3 + 0.1 * rng.normal(size=(n_samples, 1))


def least_squares(X, y, weights):
    """argmin Σ w_i (x_i·W + b - y_i)²: the weighted normal equations, solved by NumPy's lstsq."""
    design = np.column_stack([X, np.ones(len(X))]) * np.sqrt(weights)[:, None]
    solution = np.linalg.lstsq(design, y[:, 0] * np.sqrt(weights), rcond=None)[0]
    return solution[:-1], solution[-1]


@pytest.mark.parametrize("weighted", [False, True])
def test_a_linear_network_reaches_the_least_squares_solution(weighted):
    X, y = linear_problem()
    weights = np.random.default_rng(1).uniform(0.0, 4.0, len(X)) if weighted else None
    network = numnet.Network([3, 1], dtype="float64", seed=0)
    result = minimize_lbfgs(network, X, y, sample_weight=weights, max_iter=1000, tolerance=TIGHT_TOLERANCE)
    assert result.status == 0
    W, b = least_squares(X, y, np.ones(len(X)) if weights is None else weights)
    np.testing.assert_allclose(network.layers[0].params["W"][:, 0], W, atol=WEIGHT_ATOL)
    np.testing.assert_allclose(network.layers[0].params["b"], [b], atol=WEIGHT_ATOL)


def test_integer_weights_reach_the_model_of_repeated_rows():
    X, y = linear_problem(seed=2)
    counts = np.random.default_rng(3).integers(0, 4, len(X))
    weighted, repeated = (numnet.Network([3, 1], dtype="float64", seed=0) for _ in "ab")
    minimize_lbfgs(weighted, X, y, sample_weight=counts, max_iter=1000, tolerance=TIGHT_TOLERANCE)
    minimize_lbfgs(repeated, np.repeat(X, counts, axis=0), np.repeat(y, counts, axis=0), max_iter=1000,
                   tolerance=TIGHT_TOLERANCE)
    np.testing.assert_allclose(weighted.flat_parameters, repeated.flat_parameters, atol=WEIGHT_ATOL)


def test_a_float32_network_stays_float32_and_stops_at_max_iter():
    X, y = linear_problem()
    network = numnet.Network([3, 5, 1], activation="tanh", dtype="float32", seed=0)
    result = minimize_lbfgs(network, X, y, max_iter=3)
    assert result.status == 1 and result.nit == 3  # SciPy's status 1: the iteration limit
    assert network.flat_parameters.dtype == np.float32
    assert network.loss_value(X, y) == pytest.approx(result.fun, rel=1e-6)  # the network ends at result.x


@pytest.mark.parametrize("options, error, message", [
    ({"max_iter": 0}, ValueError, "max_iter must be a positive integer"),
    ({"max_fun": 1.5}, TypeError, "max_fun must be a positive integer"),
    ({"tolerance": -1.0}, ValueError, "tolerance must be a number >= 0"),
    ({"sample_weight": np.ones(3)}, ValueError, r"sample_weight must have shape \(40,\)"),
    ({"sample_weight": np.zeros(40)}, ValueError, "all zeros"),
])
def test_invalid_arguments_raise_errors_that_name_them(options, error, message):
    X, y = linear_problem()
    with pytest.raises(error, match=message):
        minimize_lbfgs(numnet.Network([3, 1], dtype="float64", seed=0), X, y, **options)
