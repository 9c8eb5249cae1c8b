"""E1-E4 and E7, first networks that learn: a noisy line, XOR, the spiral (sigmoid against relu), the 8x8
digits (the write-up's poor recipe against a sound one) and a CSV file."""

import csv
import pathlib
import warnings

import numpy as np

from numnet import datasets, plots, preprocessing
from numnet.errors import require
from numnet.initializers import Normal
from numnet.network import Network

from .results import (INFORMATION, NOT_COMPARABLE, ExperimentResult, experiment_folder, verdict_of,
                      verdict_within)

# ---------------------------------------------------------------------------------------------------------
# The write-ups' loop and accuracy, shared by E1-E4


def _plain_descent(network, X, y, *, steps, learning_rate, seed, record_gradients=True):
    """Full-batch gradient descent in the samples' order: the write-ups' ``W -= lr * dW`` loop."""
    return network.fit(X, y, iterations=steps, batch_size=None, shuffle=False, optimizer="sgd",
                       learning_rate=learning_rate, seed=seed, record_gradients=record_gradients)


def _log_every(values, every, label):
    """Log lines "label step k: loss v" for every ``every``-th step (1-based) of ``values``."""
    return [f"{label} step {step}: loss {values[step - 1]:.6f}" for step in range(every, len(values) + 1, every)]


def _accuracy_of(network, X, y):
    """Fraction of rows whose predicted class (argmax, or threshold 0.5 for one output) equals ``y``."""
    output = network.forward(X)
    predicted = (output[:, 0] > 0.5).astype(np.int64) if output.shape[1] == 1 else output.argmax(axis=1)
    return float(np.mean(predicted == np.asarray(y).reshape(-1)))


# ---------------------------------------------------------------------------------------------------------
# E1: noisy line, one hidden layer

E1_SAMPLES = 10
E1_NOISE = 0.2
E1_STEPS = 300
E1_LOG_EVERY = 10
# The write-up's loss is the plain mean squared error mean((a - y)²); numnet's "mse" is half of it (its
# gradient is half as large), so the write-up's step 0.01 on its loss is numnet's step 0.02 on "mse".
E1_WRITEUP_LEARNING_RATE = 0.01
E1_LEARNING_RATE = 2 * E1_WRITEUP_LEARNING_RATE
E1_EXPECTED_SHAPES = ((E1_SAMPLES, 3), (E1_SAMPLES, 1))


def _line_network(activation, seed):
    """The write-up's 1 -> 3 -> 1 net: weights N(0, 0.1²), biases 0.1, linear output, float64."""
    return Network([1, 3, 1], activation=activation, loss="mse", weight_init=Normal(std=0.1), bias_init=0.1,
                   dtype="float64", seed=seed)


def untrained_shapes(network, X):
    """The output shape of every layer in a forward pass of ``network`` on ``X`` (without training).

    Returns
    -------
    list of tuple
        E.g. [(10, 3), (10, 1)] for the 1 -> 3 -> 1 net on 10 samples.
    """
    a = network.prepare_inputs(X)
    shapes = []
    for layer in network.layers:
        a = layer.forward(a, training=False)
        shapes.append(a.shape)
    return shapes


def run_e1(output_dir, *, quick=False, seed=0):
    """E1: fit 10 noisy points of y = x with a 1 -> 3 -> 1 relu net (and the same net with tanh).

    ``quick`` changes nothing: the 300 steps already take well under a second.
    """
    result = ExperimentResult("E1", "Noisy line, one hidden layer (regression)")
    folder = experiment_folder(output_dir, "E1")
    X, y = datasets.make_line(E1_SAMPLES, E1_NOISE, seed=seed, dtype="float64")
    for index, (shape, expected) in enumerate(zip(untrained_shapes(_line_network("relu", seed), X),
                                                  E1_EXPECTED_SHAPES), start=1):
        result.add_row(f"untrained forward pass: shape after layer {index}", shape, expected,
                       verdict_of(tuple(shape) == expected))
    curves = {}
    for activation in ("relu", "tanh"):
        network = _line_network(activation, seed)
        history = _plain_descent(network, X, y, steps=E1_STEPS, learning_rate=E1_LEARNING_RATE, seed=seed)
        # iteration_loss is numnet's half-MSE before each step; doubled it is the write-up's MSE.
        curves[f"{activation} hidden layer"] = [2 * value for value in history.iteration_loss]
        result.log += _log_every(curves[f"{activation} hidden layer"], E1_LOG_EVERY, activation)
        final_mse = 2 * network.loss_value(X, y)
        result.add_row(f"{activation}: mean squared error after {E1_STEPS} steps", f"{final_mse:.4f}",
                       "lower than at the start (the write-up shows only the curve)",
                       verdict_of(final_mse < curves[f"{activation} hidden layer"][0]))
        plots.plot_regression(X, y, network, path=folder / f"fit_{activation}.png",
                              title=f"Data and fitted curve, {activation} hidden layer")
        result.add_figure(f"Data and the curve fitted by the 1-3-1 {activation} net",
                          folder / f"fit_{activation}.png")
    plots.plot_comparison_curves(curves, path=folder / "loss.png", ylabel="mean squared error", xlabel="step",
                                 title="E1 loss per step")
    result.add_figure("Loss per gradient-descent step, relu and tanh", folder / "loss.png")
    result.notes += [
        "Loss is the plain mean squared error mean((a - y)^2); numnet's 'mse' is half of it, so the "
        f"write-up's learning rate {E1_WRITEUP_LEARNING_RATE} is applied as {E1_LEARNING_RATE} to numnet's loss.",
        "After 300 small steps the tiny net is still far from the line; the write-up shows its curves and gives "
        "no number to compare with.",
    ]
    return result


# ---------------------------------------------------------------------------------------------------------
# E2: XOR

E2_STEPS = 10_000
E2_LEARNING_RATE = 0.1
E2_LOG_EVERY = 1_000


def run_e2(output_dir, *, quick=False, seed=1):
    """E2: a 2 -> 3 -> 1 sigmoid net learns XOR with binary cross-entropy (10,000 full-batch steps).

    ``quick`` changes nothing: the whole run takes about a second.
    """
    result = ExperimentResult("E2", "XOR (binary classification)")
    folder = experiment_folder(output_dir, "E2")
    X, y = datasets.make_xor(dtype="float64")
    network = Network([2, 3, 1], activation="sigmoid", output_activation="sigmoid", loss="binary_cross_entropy",
                      dtype="float64", seed=seed)
    history = _plain_descent(network, X, y, steps=E2_STEPS, learning_rate=E2_LEARNING_RATE, seed=seed)
    result.log += _log_every(history.iteration_loss, E2_LOG_EVERY, "xor")
    probabilities = network.forward(X)[:, 0]
    correct = int(np.sum((probabilities > 0.5) == (y[:, 0] > 0.5)))
    result.add_row("points classified correctly", f"{correct} of 4", "4 of 4", verdict_of(correct == 4))
    for point, probability, target in zip(X, probabilities, y[:, 0]):
        result.add_row(f"P(class 1 | x = ({point[0]:g}, {point[1]:g}))", f"{probability:.4f}", f"{target:g}",
                       verdict_of((probability > 0.5) == (target > 0.5)))
    result.add_row("final loss", f"{network.loss_value(X, y):.4f}", "-", INFORMATION)
    plots.plot_loss(history, path=folder / "loss.png", per="iteration", log_scale=True, title="XOR loss")
    result.add_figure("Binary cross-entropy per step", folder / "loss.png")
    plots.plot_decision_regions(network, X, y, path=folder / "regions.png", title="XOR decision regions")
    result.add_figure("Decision regions of the trained XOR net", folder / "regions.png")
    result.notes.append(
        "numnet's version runs as written (the write-up's undefined names, missing assignment and overwritten "
        "y are not reproduced); weights use Xavier initialisation, seed 1."
    )
    return result


# ---------------------------------------------------------------------------------------------------------
# E3: spiral, sigmoid vs relu

E3_ITERATIONS = 50_000
E3_QUICK_ITERATIONS = 2_000
E3_LEARNING_RATE = 0.1
E3_L2 = 1e-3
E3_LOG_EVERY = 1_000
# (final loss, training accuracy) in the write-up, and how far numnet may land from them and still count as
# the same result: the loss tolerance covers a different noise draw of the spiral, the accuracy one of
# 2/100 covers a handful of border points.
E3_REFERENCE = {"relu": (0.11, 0.99), "sigmoid": (0.47, 0.96)}
E3_LOSS_TOLERANCE = {"relu": 0.03, "sigmoid": 0.06}
E3_ACCURACY_TOLERANCE = 0.02
# "Much smaller": sigmoid's early first-layer gradients at most half of relu's (measured: about a fifth).
E3_VANISHING_RATIO = 0.5


def _spiral_network(activation, seed):
    """The write-up's 2 -> 50 -> 50 -> 3 net: weights 0.1·N(0, 1), biases 0, L2 1e-3, float64."""
    return Network([2, 50, 50, 3], activation=activation, output_activation="softmax", weight_init=Normal(0.1),
                   l2=E3_L2, dtype="float64", seed=seed)


def run_e3(output_dir, *, quick=False, seed=0):
    """E3: the three-arm spiral with a relu and a sigmoid net (full-batch descent, 50,000 iterations).

    ``quick`` runs 2,000 iterations instead.
    """
    result = ExperimentResult("E3", "Three-class spiral, two hidden layers (sigmoid vs relu)")
    folder = experiment_folder(output_dir, "E3")
    iterations = E3_QUICK_ITERATIONS if quick else E3_ITERATIONS
    X, y = datasets.make_spiral(100, 3, 0.2, seed=seed, dtype="float64")
    histories = {}
    for activation in ("relu", "sigmoid"):
        network = _spiral_network(activation, seed)
        histories[activation] = _plain_descent(network, X, y, steps=iterations, learning_rate=E3_LEARNING_RATE,
                                               seed=seed)
        result.log += _log_every(histories[activation].iteration_loss, E3_LOG_EVERY, activation)
        _e3_rows(result, activation, network.loss_value(X, y), network.accuracy(X, y), quick)
        plots.plot_decision_regions(network, X, y, path=folder / f"regions_{activation}.png",
                                    title=f"Spiral decision regions, {activation} hidden layers")
        result.add_figure(f"Decision regions of the {activation} net, with the data",
                          folder / f"regions_{activation}.png")
    _e3_learning_speed(result, histories)
    _e3_figures(result, histories, folder)
    result.notes.append(f"{iterations:,} full-batch iterations, step {E3_LEARNING_RATE}, L2 {E3_L2} on weights only.")
    return result


def _e3_rows(result, activation, loss, accuracy, quick):
    """The final loss and training accuracy of one net, judged against the write-up's."""
    reference_loss, reference_accuracy = E3_REFERENCE[activation]
    loss_verdict = NOT_COMPARABLE if quick else verdict_within(loss, reference_loss, E3_LOSS_TOLERANCE[activation])
    accuracy_verdict = NOT_COMPARABLE if quick else verdict_of(accuracy >= reference_accuracy - E3_ACCURACY_TOLERANCE)
    result.add_row(f"{activation}: final loss (data + L2)", f"{loss:.3f}", f"{reference_loss:.2f}", loss_verdict)
    result.add_row(f"{activation}: training accuracy", f"{accuracy:.3f}", f"{reference_accuracy:.2f}",
                   accuracy_verdict)


def _e3_learning_speed(result, histories):
    """Rows for the vanishing-gradient lesson: sigmoid starts slower and its first-layer gradients are smaller."""
    checkpoint = min(E3_LOG_EVERY, len(histories["relu"].iteration_loss))
    relu_loss = histories["relu"].iteration_loss[checkpoint - 1]
    sigmoid_loss = histories["sigmoid"].iteration_loss[checkpoint - 1]
    result.add_row(f"loss at iteration {checkpoint:,}: relu / sigmoid", f"{relu_loss:.3f} / {sigmoid_loss:.3f}",
                   "sigmoid learns much more slowly at first", verdict_of(sigmoid_loss > relu_loss))
    early = _first_layer_gradient_ratio(histories, slice(0, checkpoint))
    result.add_row(f"mean |dC/dW| of the first layer over iterations 1-{checkpoint:,}, sigmoid / relu",
                   f"{early:.3f}", "much smaller than 1 (vanishing gradients)",
                   verdict_of(early < E3_VANISHING_RATIO))
    whole = _first_layer_gradient_ratio(histories, slice(None))
    result.add_row("the same ratio over the whole run", f"{whole:.3f}", "-", INFORMATION)
    result.notes.append(
        "The vanishing-gradient gap is an early-training effect: once the relu net has fitted the data its "
        "gradients shrink too, while the sigmoid net is still learning, so over a long run the ratio can reach 1."
    )


def _first_layer_gradient_ratio(histories, iterations):
    """Mean |dC/dW| of the first weight matrix over ``iterations``: sigmoid's divided by relu's."""
    relu = np.mean(histories["relu"].gradient_mean_abs["dense_0.W"][iterations])
    sigmoid = np.mean(histories["sigmoid"].gradient_mean_abs["dense_0.W"][iterations])
    return float(sigmoid / relu)


def _e3_figures(result, histories, folder):
    """Loss curves of both nets and the mean |gradient| of each hidden weight matrix per iteration."""
    losses = {activation: history.iteration_loss for activation, history in histories.items()}
    plots.plot_comparison_curves(losses, path=folder / "loss.png", ylabel="loss", log_scale=True,
                                 title="Spiral: loss per iteration")
    result.add_figure("Loss per iteration, relu and sigmoid", folder / "loss.png")
    gradients = {f"{activation} {name}": history.gradient_mean_abs[name]
                 for activation, history in histories.items() for name in ("dense_0.W", "dense_1.W")}
    plots.plot_comparison_curves(gradients, path=folder / "gradients.png", ylabel="mean |gradient|",
                                 log_scale=True, title="Mean absolute gradient of each hidden weight matrix")
    result.add_figure("Mean |dC/dW| per iteration of the two hidden weight matrices (dense_0 feeds the first "
                      "hidden layer)", folder / "gradients.png")


# ---------------------------------------------------------------------------------------------------------
# E4: the 8x8 digits, the write-up's recipe and a sound one

E4_SPLIT_SEED = 1
E4_POOR_STEPS = 10_000
E4_QUICK_POOR_STEPS = 500
E4_POOR_LEARNING_RATE = 0.1
E4_SOUND_EPOCHS = 30
E4_SOUND_BATCH_SIZE = 32
E4_SOUND_LEARNING_RATE = 1e-3
E4_SOUND_TARGET = 0.97
# Test accuracy below which a recipe counts as "poor" (a sound recipe gets above 0.97 on this split).
E4_POOR_CEILING = 0.9


def digits_split(seed=E4_SPLIT_SEED, dtype="float32"):
    """The digits (pixels in [0, 1]) split 80/20, stratified: (X_train, X_test, y_train, y_test)."""
    X, y = datasets.load_digits(dtype=dtype)
    return preprocessing.train_test_split(X, y, 0.2, stratify=True, seed=seed)


def _e4_poor(X_train, X_test, y_train, y_test, *, steps, seed):
    """The write-up's recipe; returns (network, history, test accuracy)."""
    network = Network([64, 128, 10], activation="sigmoid", output_activation="sigmoid", loss="mse",
                      weight_init=Normal(1.0), bias_init=Normal(1.0), seed=seed)
    # The write-up sums the squared error over the samples instead of averaging it, so its gradient is
    # n_train times numnet's mean-based "mse" gradient: its step 0.1 is a step of 0.1 * n_train here.
    learning_rate = E4_POOR_LEARNING_RATE * X_train.shape[0]
    history = _plain_descent(network, X_train, preprocessing.one_hot(y_train, 10), steps=steps,
                             learning_rate=learning_rate, seed=seed, record_gradients=False)
    return network, history, _accuracy_of(network, X_test, y_test)


def e4_sound_network(X_train, X_test, y_train, y_test, *, seed):
    """relu + softmax cross-entropy + Adam + mini-batches + He init on standardised pixels."""
    scaler = preprocessing.StandardScaler().fit(X_train)
    network = Network([64, 128, 10], activation="relu", output_activation="softmax", seed=seed)
    history = network.fit(scaler.transform(X_train), y_train, epochs=E4_SOUND_EPOCHS,
                          batch_size=E4_SOUND_BATCH_SIZE, optimizer="adam", learning_rate=E4_SOUND_LEARNING_RATE,
                          seed=seed, record_gradients=False)
    return network, history, scaler


def run_e4(output_dir, *, quick=False, seed=1):
    """E4: the write-up's sigmoid/sigmoid recipe (10,000 full-batch steps) against a sound recipe.

    ``quick`` runs the poor recipe for 500 steps; the sound recipe always runs in full (about a second).
    """
    result = ExperimentResult("E4", "Handwritten digits, 8x8")
    folder = experiment_folder(output_dir, "E4")
    X_train, X_test, y_train, y_test = digits_split()
    steps = E4_QUICK_POOR_STEPS if quick else E4_POOR_STEPS
    _, poor_history, poor_accuracy = _e4_poor(X_train, X_test, y_train, y_test, steps=steps, seed=seed)
    result.add_row(f"write-up recipe ({steps:,} steps): test accuracy", f"{poor_accuracy:.3f}",
                   "poor (saturated sigmoids)", verdict_of(poor_accuracy < E4_POOR_CEILING))
    sound, sound_history, scaler = e4_sound_network(X_train, X_test, y_train, y_test, seed=seed)
    predicted = sound.predict(scaler.transform(X_test))
    sound_accuracy = float(np.mean(predicted == y_test))
    result.add_row("sound recipe: test accuracy", f"{sound_accuracy:.3f}", f"> {E4_SOUND_TARGET}",
                   verdict_of(sound_accuracy > E4_SOUND_TARGET))
    curves = {"write-up recipe (half squared error)": poor_history.iteration_loss,
              "sound recipe (cross-entropy)": sound_history.iteration_loss}
    plots.plot_comparison_curves(curves, path=folder / "loss.png", log_scale=True, title="Digits: training loss")
    result.add_figure("Training loss per step of both recipes", folder / "loss.png")
    plots.plot_confusion_matrix(y_test, predicted, class_names=[str(d) for d in range(10)],
                                path=folder / "confusion.png", title="Sound recipe: confusion matrix (test set)")
    result.add_figure("Confusion matrix of the sound recipe on the test set", folder / "confusion.png")
    plots.plot_weights(sound.parameters()["dense_0.W"], path=folder / "weights.png", max_images=64)
    result.add_figure("First-layer weights of the sound recipe as 8x8 images", folder / "weights.png")
    result.notes += [
        "Split: 80/20 stratified with numnet's own shuffle (seed 1), so the rows differ from scikit-learn's "
        "random_state=1 split; pixels divided by 16.",
        "Write-up recipe: 64-128-10, sigmoid hidden and output, weights and biases N(0, 1), squared error summed "
        "over the samples (a step of 0.1 on the sum), full batch.",
        f"Sound recipe: standardised pixels, relu, He initialisation, softmax cross-entropy, Adam (lr "
        f"{E4_SOUND_LEARNING_RATE}), mini-batches of {E4_SOUND_BATCH_SIZE}, {E4_SOUND_EPOCHS} epochs.",
    ]
    return result


# ---------------------------------------------------------------------------------------------------------
# E7: a CSV file

E7_FILE_NAME = "iris.csv"
E7_HIDDEN = 16
E7_EPOCHS = 100
E7_BATCH_SIZE = 16
E7_LEARNING_RATE = 1e-2
# numnet counts as matching scikit-learn's MLP when its test accuracy is at most this much lower: 1/30 is
# one test flower of the 30.
E7_ACCURACY_TOLERANCE = 1 / 30 + 1e-9


def write_iris_csv(path):
    """Write Fisher's iris data (from scikit-learn) as a CSV with a header and the species name last.

    Returns
    -------
    pathlib.Path
    """
    sklearn_datasets = require("sklearn.datasets", "sklearn", "writing the iris CSV of experiment E7")
    iris = sklearn_datasets.load_iris()
    names = [name.replace(" (cm)", "").replace(" ", "_") for name in iris.feature_names]
    path = pathlib.Path(path)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([*names, "species"])
        for features, label in zip(iris.data, iris.target):
            writer.writerow([*(f"{value:g}" for value in features), iris.target_names[label]])
    return path


def run_e7(output_dir, *, quick=False, seed=0):
    """E7: write the iris flowers as a CSV (label last), load it with load_csv, train and test a classifier.

    The reference figure is scikit-learn's MLPClassifier with the same hidden size on the same split.
    ``quick`` changes nothing: the run takes about a second.
    """
    result = ExperimentResult("E7", "A CSV file")
    folder = experiment_folder(output_dir, "E7")
    data = datasets.load_csv(write_iris_csv(folder / E7_FILE_NAME))
    X_train, X_test, y_train, y_test = preprocessing.train_test_split(data.X, data.y, 0.2, stratify=True,
                                                                      seed=seed)
    scaler = preprocessing.StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    network = Network([X_train.shape[1], E7_HIDDEN, len(data.classes)], activation="relu",
                      output_activation="softmax", seed=seed)
    history = network.fit(X_train, y_train, epochs=E7_EPOCHS, batch_size=E7_BATCH_SIZE, optimizer="adam",
                          learning_rate=E7_LEARNING_RATE, seed=seed, validation_data=(X_test, y_test))
    accuracy = network.accuracy(X_test, y_test)
    reference = _sklearn_accuracy(X_train, X_test, y_train, y_test, seed)
    result.add_row("rows x columns read", f"{data.X.shape[0]} x {data.X.shape[1] + 1}", "150 x 5",
                   verdict_of(data.X.shape == (150, 4)))
    result.add_row("classes read from the last column", ", ".join(map(str, data.classes)),
                   "setosa, versicolor, virginica", verdict_of(list(data.classes) == ["setosa", "versicolor",
                                                                                    "virginica"]))
    result.add_row("test accuracy (reference: scikit-learn MLPClassifier, same split)", f"{accuracy:.3f}",
                   f"{reference:.3f}", verdict_of(accuracy >= reference - E7_ACCURACY_TOLERANCE))
    plots.plot_training(history, path=folder / "training.png")
    result.add_figure("Loss and accuracy per epoch (training, and the test set as validation)",
                      folder / "training.png")
    plots.plot_confusion_matrix(y_test, network.predict(X_test), class_names=list(data.classes),
                                path=folder / "confusion.png", title="Iris: confusion matrix (test set)")
    result.add_figure("Confusion matrix on the test set", folder / "confusion.png")
    result.notes.append(f"The CSV is {folder / E7_FILE_NAME}: Fisher's iris flowers, 4 measurements and the "
                        "species name in the last column. Train and test features are standardised with the "
                        "training rows' statistics.")
    return result


def _sklearn_accuracy(X_train, X_test, y_train, y_test, seed):
    """Test accuracy of scikit-learn's MLPClassifier with the same hidden size (the independent reference)."""
    neural_network = require("sklearn.neural_network", "sklearn", "the scikit-learn reference of E7")
    classifier = neural_network.MLPClassifier(hidden_layer_sizes=(E7_HIDDEN,), max_iter=2000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classifier.fit(X_train, y_train)
    return float(np.mean(classifier.predict(X_test) == y_test))


