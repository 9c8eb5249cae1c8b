"""E8-E11, the training tricks of the next chapter: initial weights, optimisers, batch normalisation, and
overfitting with L2 and dropout against it; on the digits always, and on MNIST when its files are present."""

import numpy as np

from numnet import datasets, plots, preprocessing
from numnet.backend import to_numpy
from numnet.errors import DivergenceError
from numnet.initializers import Normal
from numnet.network import Network
from numnet.optimizers import get_optimizer

from .first_networks import digits_split
from .results import INFORMATION, NOT_COMPARABLE, ExperimentResult, experiment_folder, verdict_of

# ---------------------------------------------------------------------------------------------------------
# What E8-E11 share: the data, the network and the judgement of a run

CHANCE_LOSS_DIGITS = float(np.log(10))  # softmax cross-entropy of a uniform guess over 10 classes
# Below this many times chance, a run has "learnt"; a network still within 5% of chance has not.
STALL_FRACTION = 0.95
# A network whose training accuracy stays below twice chance (10 classes) has stalled.
STALLED_ACCURACY = 0.2
TRICKS_HIDDEN = 100


def _tricks_datasets(n_train=None):
    """[(name, X_train, y_train, X_test, y_test)]: the digits (E4's split) always, MNIST when its files are
    present; standardised with the training rows' statistics, ``n_train`` training rows when given."""
    X_train, X_test, y_train, y_test = digits_split()
    splits = [("digits", X_train, y_train, X_test, y_test)]
    try:
        M_train, m_train, M_test, m_test = datasets.load_mnist()
        splits.append(("MNIST", M_train, m_train, M_test, m_test))
    except FileNotFoundError:
        pass
    prepared = []
    for name, X, y, X_held, y_held in splits:
        X, y = (X[:n_train], y[:n_train]) if n_train else (X, y)
        scaler = preprocessing.StandardScaler().fit(X)
        prepared.append((name, scaler.transform(X), y, scaler.transform(X_held), y_held))
    return prepared


def _tricks_data_note(splits):
    names = " and ".join(name for name, *_ in splits)
    absent = "" if len(splits) > 1 else " (the MNIST files are not in the cache, so MNIST was not run)"
    return f"Data: {names}, standardised with the training rows' statistics{absent}."


def _relu_stack(n_inputs, n_hidden, *, weight_init="he", seed=0, **options):
    """n_hidden relu layers of TRICKS_HIDDEN units and a softmax output over 10 classes."""
    return Network([n_inputs, *[TRICKS_HIDDEN] * n_hidden, 10], activation="relu", output_activation="softmax",
                   weight_init=weight_init, seed=seed, **options)


def _smoothed(values, at, window=50):
    """The mean of ``values`` over the ``window`` steps up to step ``at`` (1-based): a noise-free reading."""
    return float(np.mean(values[max(0, at - window):at]))


# ---- E8: initial weights

E8_HISTOGRAM_LAYERS = 5
E8_HISTOGRAM_SAMPLES = 1000
E8_ITERATIONS = 2000
E8_QUICK_ITERATIONS = 300
E8_BATCH_SIZE = 128
E8_LEARNING_RATE = 0.01
E8_HISTOGRAM_CASES = (("sigmoid", "std 1", Normal(1.0)), ("sigmoid", "std 0.01", Normal(0.01)),
                      ("sigmoid", "Xavier", "xavier"), ("relu", "std 0.01", Normal(0.01)),
                      ("relu", "Xavier", "xavier"), ("relu", "He", "he"))
# Sigmoid outputs within 0.1 of 0 or 1 count as saturated; "pile at 0 and 1" means most of them are.
E8_SATURATION_MARGIN = 0.1
# An activation spread (standard deviation) below this is "all the same": no diversity left.
E8_NO_DIVERSITY = 0.05
# He "keeps every layer's spread": the last layer's standard deviation within a factor 2 of the first's.
E8_KEPT_SPREAD = 0.5


def _e8_activations(activation, weight_init, seed):
    """Each layer's activations for 1,000 N(0, 1) inputs through 5 layers of 100 units (no training)."""
    network = Network([TRICKS_HIDDEN] * (E8_HISTOGRAM_LAYERS + 1), activation=activation, output_activation=activation,
                      weight_init=weight_init, loss="mse", dtype="float64", seed=seed)
    a = network.prepare_inputs(np.random.default_rng(seed).standard_normal((E8_HISTOGRAM_SAMPLES, TRICKS_HIDDEN)))
    activations = []
    for layer in network.layers:
        a = layer.forward(a)
        activations.append(to_numpy(a))
    return activations


def _e8_histogram_rows(result, histograms):
    last = {label: layers[-1] for label, layers in histograms.items()}
    saturated = float(np.mean(np.abs(last["sigmoid, std 1"] - 0.5) > 0.5 - E8_SATURATION_MARGIN))
    result.add_row("sigmoid, std 1: last layer's outputs within 0.1 of 0 or 1", f"{saturated:.2f}",
                   "most (they pile at 0 and 1)", verdict_of(saturated > 0.5))
    for label in ("sigmoid, std 0.01", "relu, std 0.01"):
        spread = float(np.std(last[label]))
        result.add_row(f"{label}: last layer's standard deviation", f"{spread:.4f}", "near 0 (no diversity)",
                       verdict_of(spread < E8_NO_DIVERSITY))
    spread = float(np.std(last["sigmoid, Xavier"]))
    result.add_row("sigmoid, Xavier: last layer's standard deviation", f"{spread:.3f}", "spread",
                   verdict_of(spread >= E8_NO_DIVERSITY))
    for label, kept in (("relu, Xavier", False), ("relu, He", True)):
        ratio = float(np.std(histograms[label][-1]) / np.std(histograms[label][0]))
        expected = "about 1 (kept in every layer)" if kept else "shrinking with depth"
        held = E8_KEPT_SPREAD <= ratio <= 1 / E8_KEPT_SPREAD
        result.add_row(f"{label}: spread of layer 5 / layer 1", f"{ratio:.2f}", expected, verdict_of(held == kept))


def run_e8(output_dir, *, quick=False, seed=0):
    """E8: how the initial weights shape the activations, and whether the network learns at all."""
    result = ExperimentResult("E8", "Initial weights: activation histograms and training")
    folder = experiment_folder(output_dir, "E8")
    histograms = {f"{activation}, {label}": _e8_activations(activation, init, seed)
                  for activation, label, init in E8_HISTOGRAM_CASES}
    _e8_histogram_rows(result, histograms)
    for activation in ("sigmoid", "relu"):
        rows = {label: layers for label, layers in histograms.items() if label.startswith(activation)}
        plots.plot_activation_histograms(rows, path=folder / f"{activation}_histograms.png",
                                         value_range=(0.0, 1.0) if activation == "sigmoid" else None,
                                         title=f"{activation}: activations of 5 layers, by initial weights")
        result.add_figure(f"{activation}: each layer's activations for 1,000 random inputs", folder /
                          f"{activation}_histograms.png")
    iterations = E8_QUICK_ITERATIONS if quick else E8_ITERATIONS
    splits = _tricks_datasets()
    for name, X_train, y_train, _, _ in splits:
        losses = {}
        for label, init in (("std 0.01", Normal(0.01)), ("Xavier", "xavier"), ("He", "he")):
            network = _relu_stack(X_train.shape[1], 4, weight_init=init, seed=seed)
            losses[label] = _plain_sgd(network, X_train, y_train, iterations=iterations, batch_size=E8_BATCH_SIZE,
                                       learning_rate=E8_LEARNING_RATE, seed=seed).iteration_loss
        _e8_training_rows(result, name, losses, iterations, quick)
        plots.plot_comparison_curves(losses, path=folder / f"{name}_loss.png",
                                     title=f"{name}: 4 relu layers, SGD lr 0.01, by initial weights")
        result.add_figure(f"{name}: training loss per iteration", folder / f"{name}_loss.png")
    result.notes += [
        "Histograms: 5 layers of 100 units fed 1,000 N(0, 1) inputs, biases 0, no training (the book's "
        "weight_init_activation_histogram.py).",
        f"Training: 4 hidden relu layers of 100 units, SGD lr {E8_LEARNING_RATE}, batches of {E8_BATCH_SIZE}, "
        f"{iterations:,} iterations (the book's weight_init_compare.py). {_tricks_data_note(splits)}",
    ]
    return result


def _plain_sgd(network, X, y, *, iterations=None, epochs=None, batch_size, learning_rate, seed, **options):
    """Mini-batch SGD as the book's scripts run it, without the per-step gradient record."""
    return network.fit(X, y, iterations=iterations, epochs=epochs, batch_size=batch_size, optimizer="sgd",
                       learning_rate=learning_rate, seed=seed, record_gradients=False, **options)


def _e8_training_rows(result, name, losses, iterations, quick):
    stalled = _smoothed(losses["std 0.01"], iterations)
    verdict = NOT_COMPARABLE if quick else verdict_of(stalled > STALL_FRACTION * CHANCE_LOSS_DIGITS)
    result.add_row(f"{name}: std 0.01, loss after {iterations:,} iterations", f"{stalled:.3f}",
                   f"stays at chance, ln 10 = {CHANCE_LOSS_DIGITS:.3f}", verdict)
    at = iterations // 4
    he, xavier = _smoothed(losses["He"], at), _smoothed(losses["Xavier"], at)
    result.add_row(f"{name}: loss after {at:,} iterations, He vs Xavier", f"{he:.3f} vs {xavier:.3f}",
                   "He learns fastest", NOT_COMPARABLE if quick else verdict_of(he < xavier))


# ---- E9: optimisers

E9_START = (-7.0, 2.0)
E9_STEPS = 30
E9_PATH_OPTIMIZERS = (("SGD", "sgd", 0.95), ("Momentum", "momentum", 0.1), ("Nesterov", "nesterov", 0.1),
                      ("AdaGrad", "adagrad", 1.5), ("RMSProp", "rmsprop", 0.3), ("Adam", "adam", 0.3))
# The book's four (SGD, momentum, AdaGrad, Adam with these rates) plus numnet's Nesterov and RMSProp.
E9_BOOK_PATHS = ("SGD", "Momentum", "AdaGrad", "Adam")
# SGD "zig-zags": y changes sign at most steps; the others head for the minimum, changing sign at most a
# third as often.
E9_ZIGZAG_FRACTION = 0.8
E9_ITERATIONS = 2000
E9_QUICK_ITERATIONS = 300
E9_BATCH_SIZE = 128
# The book's optimizer_compare_mnist.py: SGD, momentum and AdaGrad at lr 0.01, Adam at 0.001.
E9_TRAINING_OPTIMIZERS = (("SGD", "sgd", 0.01), ("Momentum", "momentum", 0.01), ("Nesterov", "nesterov", 0.01),
                          ("AdaGrad", "adagrad", 0.01), ("RMSProp", "rmsprop", 0.001), ("Adam", "adam", 0.001))


def e9_function(x, y):
    """The book's f(x, y) = x²/20 + y², steep in y and shallow in x."""
    return x * x / 20.0 + y * y


def _e9_path(optimizer_name, learning_rate):
    """The optimiser's 31 points from (-7, 2) on f, with the exact gradient (x/10, 2y)."""
    optimizer = get_optimizer(optimizer_name, learning_rate)
    point = np.array(E9_START)
    path = [point.copy()]
    for _ in range(E9_STEPS):
        optimizer.step(point, np.array([point[0] / 10.0, 2.0 * point[1]]))
        path.append(point.copy())
    return np.array(path)


def _sign_changes(values):
    return int(np.sum(np.sign(values[1:]) != np.sign(values[:-1])))


def _e9_path_rows(result, paths):
    flips = {label: _sign_changes(points[:, 1]) for label, points in paths.items()}
    result.add_row(f"SGD (lr 0.95): steps of {E9_STEPS} on which y changes sign", str(flips["SGD"]),
                   "zig-zags", verdict_of(flips["SGD"] >= E9_ZIGZAG_FRACTION * E9_STEPS))
    for label in E9_BOOK_PATHS[1:]:
        result.add_row(f"{label}: steps on which y changes sign", str(flips[label]), "heads for the minimum",
                       verdict_of(flips[label] <= flips["SGD"] / 3))
    for label in ("Nesterov", "RMSProp"):
        ending = paths[label][-1]
        result.add_row(f"{label} (beyond the book): sign changes, end point", f"{flips[label]}, "
                       f"({ending[0]:.2f}, {ending[1]:.2f})", "-", INFORMATION)


def run_e9(output_dir, *, quick=False, seed=0):
    """E9: the optimisers' paths on x²/20 + y², and the same network trained by each."""
    result = ExperimentResult("E9", "Optimisers: paths on a ravine and training speed")
    folder = experiment_folder(output_dir, "E9")
    paths = {label: _e9_path(name, rate) for label, name, rate in E9_PATH_OPTIMIZERS}
    _e9_path_rows(result, paths)
    plots.plot_descent_paths(e9_function, {label: paths[label] for label in E9_BOOK_PATHS}, path=folder / "paths.png",
                             extent=(-10, 10, -5, 5), title="f(x, y) = x²/20 + y² from (-7, 2), 30 steps")
    result.add_figure("The book's four optimisers on x²/20 + y²", folder / "paths.png")
    iterations = E9_QUICK_ITERATIONS if quick else E9_ITERATIONS
    splits = _tricks_datasets()
    for name, X_train, y_train, _, _ in splits:
        losses = {}
        for label, optimizer, rate in E9_TRAINING_OPTIMIZERS:
            network = _relu_stack(X_train.shape[1], 4, seed=seed)
            losses[label] = network.fit(X_train, y_train, iterations=iterations, batch_size=E9_BATCH_SIZE,
                                        optimizer=optimizer, learning_rate=rate, seed=seed,
                                        record_gradients=False).iteration_loss
        final = {label: _smoothed(values, iterations) for label, values in losses.items()}
        slowest = max(final, key=final.get)
        result.add_row(f"{name}: optimiser with the highest loss after {iterations:,} iterations",
                       f"{slowest} ({', '.join(f'{label} {value:.3g}' for label, value in final.items())})",
                       "SGD (slowest)", NOT_COMPARABLE if quick else verdict_of(slowest == "SGD"))
        plots.plot_comparison_curves(losses, path=folder / f"{name}_loss.png", log_scale=True,
                                     title=f"{name}: 4 relu layers, batch 128, by optimiser")
        result.add_figure(f"{name}: training loss per iteration of each optimiser", folder / f"{name}_loss.png")
    result.notes += [
        "Paths: the book's optimizer_compare_naive.py settings (SGD 0.95, momentum 0.1, AdaGrad 1.5, Adam 0.3); "
        "Nesterov and RMSProp are numnet's additions. Momentum is PyTorch's form, which equals the book's "
        "v = 0.9 v - lr g for a constant learning rate.",
        f"Training: 4 hidden relu layers of 100 units (He), batches of {E9_BATCH_SIZE}, {iterations:,} "
        f"iterations, the book's rates (SGD, momentum, AdaGrad 0.01; Adam 0.001). {_tricks_data_note(splits)}",
    ]
    return result


# ---- E10: batch normalisation

E10_TRAINING_SAMPLES = 1000
E10_HIDDEN_LAYERS = 5
E10_EPOCHS = 20
E10_QUICK_EPOCHS = 5
E10_BATCH_SIZE = 100
E10_LEARNING_RATE = 0.01
E10_SCALES = np.logspace(0, -4, 16)
E10_QUICK_SCALES = E10_SCALES[::5]
# A network with BatchNorm "trains" when its training accuracy passes this; "almost every scale" is all but
# a quarter of them, and "most scales stall" more than half of them.
E10_TRAINED_ACCURACY = 0.5


def _e10_accuracy(X, y, scale, batch_norm, *, epochs, seed):
    """Training accuracy after ``epochs``, or None when the divergence guard stopped the run."""
    network = _relu_stack(X.shape[1], E10_HIDDEN_LAYERS, weight_init=Normal(float(scale)), seed=seed,
                          batch_norm=batch_norm)
    try:
        _plain_sgd(network, X, y, epochs=epochs, batch_size=E10_BATCH_SIZE, learning_rate=E10_LEARNING_RATE,
                   seed=seed)
    except DivergenceError:
        return None
    return network.accuracy(X, y)


def run_e10(output_dir, *, quick=False, seed=0):
    """E10: the same 5-layer network with and without BatchNorm over 16 initial weight scales."""
    result = ExperimentResult("E10", "Batch normalisation over initial weight scales")
    folder = experiment_folder(output_dir, "E10")
    scales, epochs = (E10_QUICK_SCALES, E10_QUICK_EPOCHS) if quick else (E10_SCALES, E10_EPOCHS)
    splits = _tricks_datasets(E10_TRAINING_SAMPLES)
    for name, X_train, y_train, _, _ in splits:
        accuracies = {label: [_e10_accuracy(X_train, y_train, scale, batch_norm, epochs=epochs, seed=seed)
                              for scale in scales]
                      for label, batch_norm in (("without BatchNorm", False), ("with BatchNorm", True))}
        plain, normalised = accuracies["without BatchNorm"], accuracies["with BatchNorm"]
        trained = sum(accuracy is not None and accuracy > E10_TRAINED_ACCURACY for accuracy in normalised)
        stalled = sum(accuracy is None or accuracy < STALLED_ACCURACY for accuracy in plain)
        diverged = sum(accuracy is None for accuracy in plain)
        result.add_row(f"{name}: scales at which BatchNorm trains (accuracy > {E10_TRAINED_ACCURACY})",
                       f"{trained} of {len(scales)}", "almost every scale",
                       NOT_COMPARABLE if quick else verdict_of(trained >= 0.75 * len(scales)))
        result.add_row(f"{name}: scales at which the plain network stalls or diverges",
                       f"{stalled} of {len(scales)} ({diverged} stopped by the divergence guard)", "most scales",
                       NOT_COMPARABLE if quick else verdict_of(stalled > 0.5 * len(scales)))
        _e10_figure(folder / f"{name}_scales.png", scales, accuracies, name)
        result.add_figure(f"{name}: training accuracy after {epochs} epochs by initial weight std",
                          folder / f"{name}_scales.png")
    result.notes += [
        f"{E10_TRAINING_SAMPLES} training samples, 5 hidden relu layers of 100 units, SGD lr {E10_LEARNING_RATE}, "
        f"batches of {E10_BATCH_SIZE}, {E10_EPOCHS} epochs, weights N(0, std²) for std in logspace(0, -4, 16) "
        "(the book's batch_norm_test.py); the BatchNorm network is Dense (no bias) -> BatchNorm -> relu. "
        "A run the divergence guard stopped counts as stalled. " + _tricks_data_note(splits),
    ]
    return result


def _e10_figure(path, scales, accuracies, name):
    """Accuracy against the initial weight scale; a run the divergence guard stopped leaves a gap."""
    curves = {label: [np.nan if value is None else value for value in values] for label, values in accuracies.items()}
    plots.plot_comparison_curves(curves, x=scales, log_x=True, path=path, xlabel="initial weight std",
                                 ylabel="training accuracy", title=f"{name}: with and without BatchNorm")


# ---- E11: overfitting, and L2 and dropout against it

E11_TRAINING_SAMPLES = 300
E11_HIDDEN_LAYERS = 6
E11_BATCH_SIZE = 100
E11_LEARNING_RATE = 0.01
E11_L2 = 0.1
E11_DROPOUT = 0.2
# (label, Network options, epochs): the book's overfit_weight_decay.py and overfit_dropout.py.
E11_CASES = (("no regularisation", {}, 200), (f"L2 {E11_L2}", {"l2": E11_L2}, 200),
             (f"dropout {E11_DROPOUT}", {"dropout": E11_DROPOUT}, 300))
E11_QUICK_EPOCHS = 30
# The gap is read as the mean over the last epochs, so one lucky epoch cannot decide the verdict.
E11_GAP_EPOCHS = 20
# "Training accuracy reaches 1.0": within one sample in a hundred.
E11_MEMORISED = 0.99


def _e11_curves(network, X_train, y_train, X_test, y_test, *, epochs, seed):
    """Per-epoch (training accuracy, test accuracy), both measured as inference sees the network."""
    curve = []
    _plain_sgd(network, X_train, y_train, epochs=epochs, batch_size=E11_BATCH_SIZE,
               learning_rate=E11_LEARNING_RATE, seed=seed,
               progress=lambda report: curve.append((network.accuracy(X_train, y_train),
                                                     network.accuracy(X_test, y_test))))
    return np.array(curve)


def run_e11(output_dir, *, quick=False, seed=0):
    """E11: a large network on 300 samples overfits; L2 and dropout shrink the train-test gap."""
    result = ExperimentResult("E11", "Overfitting: L2 and dropout on 300 training samples")
    folder = experiment_folder(output_dir, "E11")
    splits = _tricks_datasets(E11_TRAINING_SAMPLES)
    for name, X_train, y_train, X_test, y_test in splits:
        gaps, curves = {}, {}
        for label, options, epochs in E11_CASES:
            network = _relu_stack(X_train.shape[1], E11_HIDDEN_LAYERS, seed=seed, **options)
            curve = _e11_curves(network, X_train, y_train, X_test, y_test,
                                epochs=E11_QUICK_EPOCHS if quick else epochs, seed=seed)
            gaps[label] = float(np.mean(curve[-E11_GAP_EPOCHS:, 0] - curve[-E11_GAP_EPOCHS:, 1]))
            curves[f"{label}: train"], curves[f"{label}: test"] = curve[:, 0], curve[:, 1]
            result.log.append(f"{name}, {label}: train {curve[-1, 0]:.3f}, test {curve[-1, 1]:.3f} after "
                              f"{len(curve)} epochs")
        plain = E11_CASES[0][0]
        memorised = float(curves[f"{plain}: train"][-1])
        result.add_row(f"{name}: training accuracy without regularisation", f"{memorised:.3f}", "reaches 1.0",
                       NOT_COMPARABLE if quick else verdict_of(memorised >= E11_MEMORISED))
        for label, _, _ in E11_CASES[1:]:
            result.add_row(f"{name}: train-test accuracy gap, {label} vs none", f"{gaps[label]:.3f} vs {gaps[plain]:.3f}",
                           "the gap shrinks", NOT_COMPARABLE if quick else verdict_of(gaps[label] < gaps[plain]))
        plots.plot_comparison_curves(curves, path=folder / f"{name}_accuracy.png", xlabel="epoch", ylabel="accuracy",
                                     title=f"{name}: 300 samples, 6 relu layers of 100")
        result.add_figure(f"{name}: training and test accuracy per epoch", folder / f"{name}_accuracy.png")
    result.notes += [
        f"{E11_TRAINING_SAMPLES} training samples, 6 hidden relu layers of 100 units (He), SGD lr "
        f"{E11_LEARNING_RATE}, batches of {E11_BATCH_SIZE}; 200 epochs without regularisation and with L2 "
        f"{E11_L2} (½·λ·ΣW², as the book's weight decay), 300 with dropout {E11_DROPOUT}; both accuracies "
        f"measured in inference mode after each epoch; the gap is the mean over the last {E11_GAP_EPOCHS} epochs.",
        "On the digits the inputs are standardised: with raw pixels / 16 the regularised networks of this "
        "size underfit under plain SGD at lr 0.01 within the book's epochs, so train and test fall together. "
        + _tricks_data_note(splits),
    ]
    return result


