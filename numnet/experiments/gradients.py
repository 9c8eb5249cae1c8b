"""E5 and E6, gradients: the MNIST two-layer net, with backprop checked and timed against numerical
gradients, and numerical derivatives and gradient descent on plain functions."""

import time

import numpy as np

from numnet import datasets, plots
from numnet.backend import to_numpy
from numnet.errors import DivergenceError
from numnet.gradcheck import gradient_check, gradient_descent, numerical_derivative, numerical_gradient
from numnet.initializers import Normal
from numnet.network import Network

from .results import (INFORMATION, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED, ExperimentResult, experiment_folder,
                      verdict_of, verdict_within)

# ---------------------------------------------------------------------------------------------------------
# E5: MNIST two-layer net

E5_ITERATIONS = 10_000
E5_QUICK_ITERATIONS = 600
E5_BATCH_SIZE = 100
E5_LEARNING_RATE = 0.1
E5_REFERENCE_ACCURACY = 0.95
E5_ACCURACY_TOLERANCE = 0.02
E5_CHECK_SAMPLES = 3
# Entries of each parameter compared by central differences: a random sample, because the full numerical
# gradient of 39,760 parameters takes ~80,000 forward passes. Its cost is extrapolated from the sample.
E5_CHECK_ENTRIES = 100
E5_QUICK_CHECK_ENTRIES = 20
# The write-up's mean |backprop - numerical| is about 1e-10; below this bound counts as the same agreement.
E5_GRADIENT_BOUND = 1e-8
# Floor of a measured duration, so a backprop pass faster than the clock's resolution cannot divide by zero.
SHORTEST_TIMING = 1e-9


def run_e5(output_dir, *, quick=False, seed=0):
    """E5: the 784 -> 50 -> 10 sigmoid/softmax net on MNIST (10,000 iterations of random batches of 100).

    Runs only when the MNIST files are in the cache (see :func:`numnet.datasets.load_mnist`); otherwise the
    result is marked skipped with the loader's message. ``quick`` runs 600 iterations.
    """
    result = ExperimentResult("E5", "MNIST two-layer net (784 -> 50 -> 10)")
    try:
        X_train, y_train, X_test, y_test = datasets.load_mnist()
    except FileNotFoundError as error:
        result.skipped = " ".join(str(error).split())
        return result
    folder = experiment_folder(output_dir, "E5")
    iterations = E5_QUICK_ITERATIONS if quick else E5_ITERATIONS
    network = Network([X_train.shape[1], 50, 10], activation="sigmoid", output_activation="softmax",
                      weight_init=Normal(0.01), seed=seed)
    history = network.fit(X_train, y_train, iterations=iterations, batch_size=E5_BATCH_SIZE,
                          sampling="replacement", optimizer="sgd", learning_rate=E5_LEARNING_RATE,
                          validation_data=(X_test, y_test), seed=seed, record_gradients=False)
    for name, accuracy in (("training", network.accuracy(X_train, y_train)),
                           ("test", network.accuracy(X_test, y_test))):
        verdict = NOT_COMPARABLE if quick else verdict_of(accuracy >= E5_REFERENCE_ACCURACY - E5_ACCURACY_TOLERANCE)
        result.add_row(f"{name} accuracy after {iterations:,} iterations", f"{accuracy:.3f}",
                       f"about {E5_REFERENCE_ACCURACY}", verdict)
    entries = E5_QUICK_CHECK_ENTRIES if quick else E5_CHECK_ENTRIES
    difference, slowdown = sampled_gradient_check(network, X_train[:E5_CHECK_SAMPLES], y_train[:E5_CHECK_SAMPLES],
                                                  entries, np.random.default_rng(seed))
    result.add_row("largest mean |backprop - numerical| over the parameters", f"{difference:.1e}", "about 1e-10",
                   verdict_of(difference < E5_GRADIENT_BOUND))
    result.add_row("numerical gradient time / backprop time", f"{slowdown:,.0f}", "thousands of times",
                   verdict_of(slowdown > 100))
    plots.plot_loss(history, path=folder / "loss.png", per="iteration", title="MNIST: loss per iteration")
    result.add_figure("Loss per iteration (and test loss per epoch)", folder / "loss.png")
    plots.plot_accuracy(history, path=folder / "accuracy.png", title="MNIST: accuracy per epoch")
    result.add_figure("Training and test accuracy per epoch of 600 iterations", folder / "accuracy.png")
    result.notes.append(f"Gradients compared on {entries} random entries per parameter and {E5_CHECK_SAMPLES} "
                        "images, in float64; the full numerical gradient's time is extrapolated from them.")
    return result


def sampled_gradient_check(network, X, y, n_entries, rng):
    """Compare backprop with central differences on a random sample of each parameter's entries.

    Parameters
    ----------
    network : Network
        Copied to float64; not modified.
    X, y : array_like
        A small batch.
    n_entries : int
        Entries sampled per parameter (all of them when a parameter has fewer).
    rng : numpy.random.Generator

    Returns
    -------
    largest_difference : float
        The largest, over parameters, mean ``|backprop - numerical|`` of the sampled entries.
    slowdown : float
        Estimated time of the full numerical gradient divided by the time of one backprop pass.
    """
    model = network.copy(dtype="float64")
    X = model.prepare_inputs(X)
    Y = model.prepare_targets(y, X.shape[0])
    started = time.perf_counter()
    model.loss_and_gradients(X, Y)
    backprop_seconds = time.perf_counter() - started
    analytic = np.array(to_numpy(model.flat_gradients))
    model.clear_caches()
    # Each parameter's entries as positions in the flat buffer, so one entry can be perturbed at a time.
    positions = model.unflatten(np.arange(model.n_parameters))
    chosen = [rng.choice(flat.reshape(-1), size=min(n_entries, flat.size), replace=False)
              for flat in positions.values()]
    started = time.perf_counter()
    numeric = [np.array([numerical_derivative(_loss_with_entry(model, X, Y, int(index)),
                                              float(model.flat_parameters[int(index)])) for index in entries])
               for entries in chosen]
    seconds_per_entry = (time.perf_counter() - started) / sum(entries.size for entries in chosen)
    differences = [float(np.mean(np.abs(analytic[entries] - values))) for entries, values in zip(chosen, numeric)]
    slowdown = seconds_per_entry * model.n_parameters / max(backprop_seconds, SHORTEST_TIMING)
    return max(differences), slowdown


def _loss_with_entry(model, X, Y, index):
    """The loss as a function of one flat parameter entry (restored after each evaluation)."""
    def loss(value):
        original = model.flat_parameters[index]
        model.flat_parameters[index] = value
        try:
            return model.loss_value(X, Y)
        finally:
            model.flat_parameters[index] = original
    return loss


# ---------------------------------------------------------------------------------------------------------
# E6: numerical derivatives and gradient descent on plain functions

E6_STEP_BUG_H = 1e-4
# Central differences with h = 1e-4 on these quadratics are exact up to rounding, about 1e-12 in float64;
# 1e-7 leaves room for that and still tells 0.2 from anything else.
E6_DERIVATIVE_TOLERANCE = 1e-7
E6_DESCENT_TOLERANCE = 1e-8
E6_GRADIENT_CHECK_BOUND = 1e-6


def _e6_line(x):
    """f(x) = 0.01x² + 0.1x."""
    return 0.01 * x ** 2 + 0.1 * x


def _e6_bowl(x):
    """f(x0, x1) = x0² + x1²."""
    return float(np.sum(x ** 2))


def run_e6(output_dir, *, quick=False, seed=0):
    """E6: central differences, numerical gradients, gradient descent (and its divergence), a net's gradient.

    ``quick`` changes nothing: everything here takes milliseconds.
    """
    result = ExperimentResult("E6", "Gradient descent and numerical derivatives on plain functions")
    folder = experiment_folder(output_dir, "E6")
    for x, reference in ((5.0, 0.2), (10.0, 0.3)):
        derivative = numerical_derivative(_e6_line, x)
        result.add_row(f"d/dx (0.01x^2 + 0.1x) at x = {x:g}", f"{derivative:.10f}", f"{reference}",
                       verdict_within(derivative, reference, E6_DERIVATIVE_TOLERANCE))
    h = E6_STEP_BUG_H
    buggy = (_e6_line(5.0 + h) - _e6_line(5.0 - h)) / 2 * h
    result.add_row("the write-up's (f(x+h) - f(x-h)) / 2*h at x = 5", f"{buggy:.3g}",
                   "0.2 (the precedence bug multiplies by h)", INFORMATION)
    for point, reference in (((3.0, 4.0), (6.0, 8.0)), ((0.0, 2.0), (0.0, 4.0)), ((3.0, 0.0), (6.0, 0.0))):
        gradient = numerical_gradient(_e6_bowl, np.array(point))
        result.add_row(f"gradient of x0^2 + x1^2 at {point}", _pair(gradient), _pair(reference),
                       verdict_of(np.allclose(gradient, reference, rtol=0, atol=E6_DERIVATIVE_TOLERANCE)))
    paths = _e6_descent_rows(result)
    plots.plot_comparison_curves(paths, path=folder / "descent.png", ylabel="f(x) = x0^2 + x1^2", xlabel="step",
                                 log_scale=True, title="Gradient descent from (-3, 4)")
    result.add_figure("f(x) along gradient descent from (-3, 4) with three learning rates (lr 10 stops at "
                      "the divergence guard)", folder / "descent.png")
    _e6_network_row(result, seed)
    return result


def _pair(values, decimals=6):
    """Numbers as "(a, b)" with the given decimals."""
    return "(" + ", ".join(f"{float(value):.{decimals}f}" for value in values) + ")"


def _e6_descent_rows(result):
    """Gradient descent from (-3, 4) with lr 0.1, 10 and 1e-10; returns f along each path."""
    start = np.array([-3.0, 4.0])
    converged = gradient_descent(_e6_bowl, start, learning_rate=0.1, steps=100)
    distance = float(np.linalg.norm(converged.x))
    result.add_row("lr 0.1, 100 steps: distance of the end point from (0, 0)", f"{distance:.2e}", "< 1e-8",
                   verdict_of(distance < E6_DESCENT_TOLERANCE))
    try:
        diverged = gradient_descent(_e6_bowl, start, learning_rate=10.0, steps=100)
        outcome, values = f"no divergence reported, ended at {_pair(diverged.x)}", diverged.values
        verdict = NOT_REPRODUCED
    except DivergenceError as error:
        outcome, values, verdict = f"DivergenceError: {error}", error.result.values, REPRODUCED
    result.add_row("lr 10, 100 steps", outcome, "diverges (values near 1e13), reported clearly", verdict)
    stuck = gradient_descent(_e6_bowl, start, learning_rate=1e-10, steps=100)
    moved = float(np.linalg.norm(stuck.x - start))
    result.add_row("lr 1e-10, 100 steps: end point", f"{_pair(stuck.x, 8)} (moved {moved:.1e})",
                   "barely moves from (-3, 4)", verdict_of(moved < 1e-6))
    return {"lr 0.1": converged.values, "lr 10 (diverges)": values, "lr 1e-10": stuck.values}


def _e6_network_row(result, seed):
    """The write-up's simple net (2 inputs, 3 softmax outputs) on x = (0.6, 0.9), t = class 2."""
    network = Network([2, 3], output_activation="softmax", dtype="float64", seed=seed)
    errors = gradient_check(network, np.array([[0.6, 0.9]]), np.array([2]))
    worst = max(errors.values())
    result.add_row("2 -> 3 softmax net: largest relative error, backprop vs numerical gradient", f"{worst:.1e}",
                   "they match", verdict_of(worst < E6_GRADIENT_CHECK_BOUND))


