"""The ``numnet`` command: train, evaluate, predict, gradcheck, experiments, explain, playground, doctor,
lr-find, export.

``numnet train`` with no options is the main job: it trains a sound classifier of scikit-learn's 8x8 digits
(64-128-10, relu, softmax cross-entropy, Adam, mini-batches of 32) in a few seconds, prints its test accuracy
and a per-class report, and writes the model and its plots to ``./numnet-output``; ``numnet train --model cnn``
trains a convolutional network of the digits (or MNIST) instead. Every other command is described by
``numnet <command> --help``.

Errors (a missing file, a bad option value, layer sizes that do not fit the data, a corrupted model file, a
diverged run) end the command with one line on stderr, ``numnet: error: ...``, and exit status 1; usage
errors caught by the argument parser exit with status 2. Set the environment variable NUMNET_DEBUG=1 to get
the full traceback instead.
"""

import argparse
import contextlib
import csv
import dataclasses
import importlib.util
import io
import json
import math
import os
import pathlib
import shutil
import sys
import time

import numpy as np

from numnet import __version__, backend, datasets, experiments, explain, plots, preprocessing
from numnet._registry import unknown_name_message
from numnet.activations import ACTIVATIONS
from numnet.atomic import write_text_atomically
from numnet.backend import to_numpy
from numnet.conv import Conv2D
from numnet.doctor import diagnose
from numnet.errors import DivergenceError, MissingDependencyError, NumnetError
from numnet.gradcheck import gradient_check
from numnet.initializers import Normal
from numnet.losses import LOSSES, get_loss
from numnet.lr_finder import find_learning_rate
from numnet.model_spec import DIGITS_CNN, SIMPLE_CONV_NET, layers_from_string, parse_layer_string
from numnet.model_spec import EXAMPLES as LAYER_STRING_EXAMPLES
from numnet.metrics import class_scores, classification_report, predicted_classes
from numnet.network import Network
from numnet.onnx_export import OPSET, to_onnx
from numnet.optimizers import OPTIMIZERS
from numnet.distributed import get_communicator, stop_all_ranks_on_failure
from numnet.persistence import load_model, save_model
from numnet.validation import check_integer

ERROR_PREFIX = "numnet: error: "
DEBUG_ENVIRONMENT_VARIABLE = "NUMNET_DEBUG"
BROKEN_PIPE_STATUS = 141  # 128 + SIGPIPE, what a shell reports for a writer killed by a closed pipe
DATA_NAMES = ("digits", "spiral", "xor", "line", "mnist")
DEFAULT_DATA = "digits"
DEFAULT_OUTPUT = "numnet-output"
DEFAULT_EXPERIMENTS_OUTPUT = "numnet-experiments"
MODEL_FILE_NAME = "model.npz"
CHECKPOINT_FILE_NAME = "checkpoint.npz"
DIAGNOSIS_FILE_NAME = "diagnosis.png"
LR_FINDER_FILE_NAME = "lr_find.png"
#: Below this many parameters, training runs on one BLAS thread (see _blas_threads_for).
SMALL_NETWORK_PARAMETERS = 100_000
TEST_SIZE = 0.2
# The train/test split is fixed, whatever --seed says, so that `numnet evaluate MODEL digits` can rebuild
# exactly the test rows that training held out.
SPLIT_SEED = 1
DATA_SEED = 0
LINE_SAMPLES = 100
# A gradient check passes when backprop and central differences (float64) agree to this relative error.
GRADCHECK_THRESHOLD = 1e-6
GRADCHECK_BIAS_STD = 0.1
# Gradient curves are smoothed over this many iterations (at most) in the plot `train` writes.
GRADIENT_SMOOTHING = 25
# Pixels per side below which a square input is not shown as an image of weights (a 1x1 "image" says
# nothing).
SMALLEST_WEIGHT_IMAGE = 4
MAX_PORT = 65535


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Defaults of ``numnet train`` for one kind of data (every one can be overridden by an option)."""

    hidden: tuple
    epochs: int
    learning_rate: float
    batch_size: int = 32
    #: The layer string of ``--model cnn`` (image data only).
    cnn: str = None


RECIPES = {
    "digits": Recipe(hidden=(128,), epochs=30, learning_rate=1e-3, cnn=DIGITS_CNN),
    "mnist": Recipe(hidden=(128,), epochs=10, learning_rate=1e-3, batch_size=64, cnn=SIMPLE_CONV_NET),
    "spiral": Recipe(hidden=(64, 64), epochs=300, learning_rate=1e-2),
    "xor": Recipe(hidden=(8,), epochs=500, learning_rate=5e-2),
    "line": Recipe(hidden=(16,), epochs=300, learning_rate=1e-2),
    "csv": Recipe(hidden=(64,), epochs=100, learning_rate=3e-3),
}


# ---------------------------------------------------------------------------------------------------------
# Data


@dataclasses.dataclass
class LoadedData:
    """Features and targets split into training and test rows, with what describes them.

    ``y_*`` hold class indices (int64, shape (n,)) for classification, real values (n, n_outputs) for
    regression. ``class_names`` is None for regression.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    kind: str
    description: str
    class_names: list = None
    feature_names: list = None
    target: object = -1
    image_shape: tuple = None

    @property
    def is_classification(self):
        return self.class_names is not None

    @property
    def n_features(self):
        return self.X_train.shape[1]


def load_data(source, *, target=None, dtype="float32"):
    """Load a named data set or a CSV file and split it 80/20 (stratified for classes, seed 1).

    Parameters
    ----------
    source : str
        One of DATA_NAMES, or the path of a CSV file (numeric features, one label column).
    target : str or int, optional
        The CSV's label column (name or index); default the last column.
    dtype : str

    Returns
    -------
    LoadedData
    """
    name = source.strip().lower()
    if name == "mnist":
        return _load_mnist(dtype)
    if name in DATA_NAMES:
        X, y, details = _load_named(name, dtype)
    else:
        X, y, details = _load_csv(source, target, dtype)
    if name == "xor":
        # Four points cannot be split: XOR is learnt and tested on the same four points.
        return LoadedData(X, y, X, y, **details)
    stratify = details["class_names"] is not None
    X_train, X_test, y_train, y_test = preprocessing.train_test_split(X, y, TEST_SIZE, stratify=stratify,
                                                                      seed=SPLIT_SEED)
    return LoadedData(X_train, y_train, X_test, y_test, **details)


def _load_named(name, dtype):
    """(X, y, description fields) of a built-in data set other than MNIST."""
    if name == "digits":
        X, y = datasets.load_digits(dtype=dtype)
        return X, y, _details("digits", "scikit-learn's 8x8 digits (1,797 images, pixels / 16)",
                              [str(d) for d in range(10)], image_shape=(8, 8))
    if name == "spiral":
        X, y = datasets.make_spiral(100, 3, 0.2, seed=DATA_SEED, dtype=dtype)
        return X, y, _details("spiral", "three-arm spiral (100 points per arm, angle noise 0.2, seed 0)",
                              ["0", "1", "2"])
    if name == "xor":
        X, y = datasets.make_xor(dtype=dtype)
        return X, y[:, 0].astype(np.int64), _details("xor", "the four points of XOR", ["0", "1"])
    X, y = datasets.make_line(LINE_SAMPLES, 0.2, seed=DATA_SEED, dtype=dtype)
    return X, y, _details("line", f"noisy line y = x + N(0, 0.2^2), {LINE_SAMPLES} points, seed 0", None)


def _details(kind, description, class_names, *, feature_names=None, target=-1, image_shape=None):
    """The LoadedData fields that describe the data."""
    return {"kind": kind, "description": description, "class_names": class_names,
            "feature_names": feature_names, "target": target, "image_shape": image_shape}


def _load_mnist(dtype):
    """MNIST from the cache, with its own 60,000 / 10,000 split."""
    X_train, y_train, X_test, y_test = datasets.load_mnist(dtype=dtype)
    return LoadedData(X_train, y_train, X_test, y_test, kind="mnist",
                      description=f"MNIST ({X_train.shape[0]:,} training and {X_test.shape[0]:,} test images)",
                      class_names=[str(d) for d in range(10)], image_shape=(28, 28))


def _load_csv(path, target, dtype):
    """(X, y, description fields) of a CSV file; y as class indices, or an (n, 1) column for regression."""
    target = _csv_target(target)
    data = datasets.load_csv(path, target=target, dtype=dtype)
    class_names = None if data.classes is None else [str(label) for label in data.classes]
    y = data.y if class_names is not None else data.y.reshape(-1, 1)
    description = f"{path}: {data.X.shape[0]} rows, {data.X.shape[1]} features, target {data.target_name!r}"
    return data.X, y, _details("csv", description, class_names, feature_names=list(data.feature_names),
                                     target=target)


def _csv_target(target):
    """The --target value as a column index when it is an integer, else as a column name."""
    if target is None:
        return -1
    if isinstance(target, int):
        return target
    text = str(target).strip()
    try:
        return int(text)
    except ValueError:
        return text


# ---------------------------------------------------------------------------------------------------------
# Scaling, targets and predictions


# The 0.2 names of the scaler's record, kept for importers: the format lives in numnet.preprocessing.
scaler_to_metadata = preprocessing.StandardScaler.to_metadata
scaler_from_metadata = preprocessing.scaler_from_metadata


def network_targets(network, y, n_classes):
    """Class indices (n,) in the form the network's loss expects.

    Softmax cross-entropy takes the indices; a single sigmoid (or linear) output takes a 0/1 column; several
    sigmoid or linear outputs take one-hot rows. Regression targets pass through unchanged.
    """
    if n_classes is None or network.loss.fused_activation == "softmax":
        return y
    if network.n_outputs == 1:
        return y.reshape(-1, 1).astype(network.dtype)
    return preprocessing.one_hot(y, network.n_outputs, dtype=network.dtype)


# ---------------------------------------------------------------------------------------------------------
# numnet train


def layer_sizes_for(args, data):
    """The layer sizes from --layers (checked against the data) or the data's default recipe.

    Raises
    ------
    ValueError
        When --layers does not start with the data's feature count or end with its output count.
    """
    n_outputs = _output_count(data)
    if args.layers is None:
        return [data.n_features, *RECIPES[data.kind].hidden, n_outputs]
    sizes = list(args.layers)
    shown = ",".join(map(str, sizes))
    if sizes[0] != data.n_features:
        raise ValueError(
            f"--layers {shown} starts with {sizes[0]} inputs, but the {data.kind} data has {data.n_features} "
            f"features; start the list with {data.n_features} (e.g. --layers {data.n_features},"
            f"{','.join(map(str, sizes[1:]))})"
        )
    allowed = _allowed_output_counts(args, data, n_outputs)
    if sizes[-1] not in allowed:
        what = f"{len(data.class_names)} classes" if data.is_classification else f"{n_outputs} target column(s)"
        raise ValueError(
            f"--layers {shown} ends with {sizes[-1]} outputs, but the {data.kind} data has {what}; end the list "
            f"with {n_outputs} (e.g. --layers {','.join(map(str, sizes[:-1]))},{n_outputs})"
        )
    return sizes


def _output_count(data):
    """The natural output size: one per class, or one per regression target column."""
    if data.is_classification:
        return len(data.class_names)
    return data.y_train.shape[1]


def _allowed_output_counts(args, data, n_outputs):
    """Two classes may also use a single sigmoid output (binary cross-entropy)."""
    single_sigmoid = (args.output_activation or "").lower() == "sigmoid" or (args.loss or "").lower() in (
        "binary_cross_entropy", "bce", "log_loss")
    if data.is_classification and len(data.class_names) == 2 and single_sigmoid:
        return (n_outputs, 1)
    return (n_outputs,)


def build_network(args, data):
    """The Network the options describe, for ``data``: an MLP, or with --model a convolutional network."""
    loss = args.loss
    if loss is None and args.output_activation is None:
        loss = "softmax_cross_entropy" if data.is_classification else "mse"
    if args.model != "mlp":
        return _convolutional_network(args, data, loss)
    return Network(layer_sizes_for(args, data), activation=args.activation,
                   output_activation=args.output_activation, loss=loss, l2=args.l2, dropout=args.dropout,
                   batch_norm=args.batch_norm, dtype=args.dtype, seed=args.seed, backend=args.backend)


def _convolutional_network(args, data, loss):
    """The network of --model cnn (the data's recipe) or --model LAYERS, on images (1, height, width).

    Raises
    ------
    ValueError
        For data that are not images, --layers given as well, or a layer string that does not fit.
    """
    if data.image_shape is None:
        raise ValueError(f"--model {args.model} builds a convolutional network, which needs images; the "
                         f"{data.kind} data are not images: use --data digits or --data mnist, or leave --model out")
    if args.layers is not None:
        raise ValueError("--layers sets the sizes of an MLP; with --model, the layer string gives the layers "
                         "(e.g. --model conv16x3,pool2,dense64): leave --layers out")
    if args.dropout or args.batch_norm:
        raise ValueError("--dropout and --batch-norm shape an MLP's hidden layers; with --model, write dropout "
                         "in the layer string (e.g. --model conv16x3,pool2,dropout0.25,dense64)")
    spec = RECIPES[data.kind].cnn if args.model == "cnn" else args.model
    output_activation = args.output_activation or get_loss(loss).fused_activation or "linear"
    input_shape = (1, *data.image_shape)
    layers = layers_from_string(spec, input_shape, _output_count(data), activation=args.activation,
                                output_activation=output_activation)
    return Network(layers=layers, loss=loss, l2=args.l2, input_shape=input_shape, dtype=args.dtype,
                   seed=args.seed, backend=args.backend)


def takes_images(network):
    """Whether ``network`` takes images (n, channels, height, width) rather than rows of features."""
    return network.input_shape is not None and len(network.input_shape) > 1


def training_inputs(network, data):
    """(scaler, X_train, X_test) for ``network``: rows standardised with the training rows' statistics for an
    MLP; for a convolutional network the pixels as loaded (already in [0, 1]: a scaler would blur what a
    pixel means to a filter) shaped as images, and no scaler."""
    if not takes_images(network):
        scaler = preprocessing.StandardScaler().fit(data.X_train)
        return scaler, scaler.transform(data.X_train), scaler.transform(data.X_test)
    return None, *(_as_images(network, X, f"the {data.kind} data") for X in (data.X_train, data.X_test))


def _as_images(network, X, source):
    """Rows of pixels X (n, C·H·W) as the images (n, C, H, W) the network takes."""
    if X.shape[1] != network.n_inputs:
        raise ValueError(f"{source} has {X.shape[1]} values per sample, but the model takes images of shape "
                         f"{network.input_shape} ({network.n_inputs} pixels); use data of that size")
    return X.reshape(-1, *network.input_shape)


def command_train(args):
    """Train a network, print its test results, and save the model and plots in the output folder.

    With --distributed (under ``mpiexec -n N``) every rank trains on its shard of each batch; only rank 0
    prints and writes files, and a failure on any rank stops them all with a message naming that rank.
    """
    communicator = get_communicator(args.distributed)
    with stop_all_ranks_on_failure(communicator):
        return _train(args, communicator)


def _train(args, communicator):
    quiet = args.quiet or not communicator.is_root
    say = _printer(quiet)
    data = load_data(args.data, target=args.target, dtype=args.dtype)
    network = load_model(args.resume) if args.resume else build_network(args, data)
    scaler, X_train, X_test = training_inputs(network, data)
    recipe = RECIPES[data.kind]
    epochs = _remaining_epochs(args.epochs or recipe.epochs, network, args.resume)
    say(f"data: {data.description}; {X_train.shape[0]} training and {X_test.shape[0]} test rows")
    say(network.summary())
    say("(val_loss and val_accuracy below are measured on the held-out test rows)")
    n_classes = len(data.class_names) if data.is_classification else None
    output = pathlib.Path(args.output)
    started = time.perf_counter()
    # A run that blows up overflows on its way to NaN; the divergence guard reports that as one clear
    # error, so NumPy's overflow warnings would only repeat it as noise.
    with (_ProgressReporter(quiet, epochs) as progress, np.errstate(over="ignore", invalid="ignore"),
          _blas_threads_for(network)):
        after_epoch = _checkpointing(progress, network, output, _metadata(data, scaler),
                                     enabled=args.checkpoint and communicator.is_root)
        y_train = network_targets(network, data.y_train, n_classes)
        try:
            network.fit(X_train, y_train, epochs=epochs, batch_size=_batch_size(args, recipe),
                        **_optimizer_options(args, recipe),
                        validation_data=(X_test, network_targets(network, data.y_test, n_classes)),
                        seed=None if args.resume else args.seed, progress=after_epoch, distributed=communicator,
                        diagnose=args.diagnose)
        except DivergenceError:
            if args.diagnose and communicator.is_root:  # the findings explain the failure the error reports
                _print_findings(diagnose(network, X_train, y_train, history=network.history))
            raise
    seconds = time.perf_counter() - started
    if not communicator.is_root:
        return 0
    model_path = save_model(network, output / MODEL_FILE_NAME, metadata=_metadata(data, scaler))
    print(f"trained {epochs} epochs in {seconds:.2f} s")
    _print_test_results(network, data, X_test, quiet=args.quiet)
    figures = _write_training_plots(network, network.history, data, scaler, X_test, output)
    if args.diagnose:
        _print_findings(diagnose(network, X_train, y_train, history=network.history))
        figures += _write_plot(lambda: plots.plot_diagnosis(network, X_train, network.history,
                                                             path=output / DIAGNOSIS_FILE_NAME), DIAGNOSIS_FILE_NAME)
    print(f"model saved to {model_path}")
    if figures:
        print(f"plots saved to {output}: {', '.join(figures)}")
    return 0


def _blas_threads_for(network):
    """One BLAS thread for small networks, where threads only add synchronisation; all of them otherwise.

    The digits network's products (32 x 64 x 128) run faster on one thread; the mnist-sized ones gain
    from two (benchmarks/README.md, the 1- and 2-thread tables).
    """
    if network.n_parameters < SMALL_NETWORK_PARAMETERS:
        return backend.one_blas_thread()
    return contextlib.nullcontext()


def _remaining_epochs(total, network, resume):
    """Epochs still to train: all of them, or for --resume what the checkpoint has not trained yet."""
    if not resume:
        return total
    remaining = total - network.epochs_trained
    if remaining < 1:
        raise ValueError(f"the checkpoint {resume} has already trained {network.epochs_trained} epochs; "
                         f"ask for more with --epochs (now {total})")
    return remaining


def _optimizer_options(args, recipe):
    """A fresh optimiser from the options, or none for --resume (the checkpoint's, state and all, goes on)."""
    if args.resume:
        return {"optimizer": None}
    return {"optimizer": args.optimizer,
            "learning_rate": args.learning_rate or _default_learning_rate(args, recipe)}


def _checkpointing(progress, network, output, metadata, *, enabled):
    """The progress callback, extended to save a checkpoint after every epoch when ``enabled``."""
    if not enabled:
        return progress

    def after_epoch(report):
        save_model(network, output / CHECKPOINT_FILE_NAME, metadata=metadata)
        if progress is not None:
            progress(report)

    return after_epoch


def _printer(quiet):
    """print, or a function that prints nothing under --quiet."""
    return (lambda *parts: None) if quiet else print


def _batch_size(args, recipe):
    """--batch-size (0 means the whole training set), else the recipe's."""
    if args.batch_size is None:
        return recipe.batch_size
    return None if args.batch_size == 0 else args.batch_size


def _default_learning_rate(args, recipe):
    """The recipe's learning rate for the default optimiser (Adam); an optimiser's own default otherwise."""
    return recipe.learning_rate if args.optimizer == "adam" else None


def _metadata(data, scaler):
    """What `evaluate` and `predict` need to use the model on new data, as JSON-ready values."""
    return {
        "task": "classification" if data.is_classification else "regression",
        "class_names": data.class_names,
        "n_features": data.n_features,
        "feature_names": data.feature_names,
        "scaler": None if scaler is None else scaler.to_metadata(),
        "data": {"source": data.kind, "description": data.description, "target": data.target,
                 "test_size": TEST_SIZE, "split_seed": SPLIT_SEED},
    }


class _ProgressReporter:
    """The fit progress callback: a tqdm bar on a terminal, one line per epoch otherwise, nothing if quiet."""

    def __init__(self, quiet, epochs):
        self.bar = None
        self.callback = None
        if quiet:
            return
        if sys.stdout.isatty() and importlib.util.find_spec("tqdm") is not None:
            import tqdm

            # shutil falls back to 80x24 where a terminal reports a size of 0x0 (some ptys do), on which
            # tqdm itself would draw nothing.
            columns, lines = shutil.get_terminal_size()
            self.bar = tqdm.tqdm(total=epochs, unit="epoch", file=sys.stdout, ncols=columns, nrows=lines)
            self.callback = self._update_bar
        else:
            self.callback = lambda report: print(report.line(), flush=True)

    def _update_bar(self, report):
        postfix = {"loss": f"{report.loss:.4f}"}
        if report.val_accuracy is not None:
            postfix["test accuracy"] = f"{report.val_accuracy:.4f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    def __enter__(self):
        return self.callback

    def __exit__(self, *exception):
        if self.bar is not None:
            self.bar.close()
        return False


def _print_test_results(network, data, X_test, *, quiet):
    """Test loss and accuracy (classification) or error (regression), and the per-class report."""
    outputs = network.forward(X_test)
    if not data.is_classification:
        loss = network.loss_value(X_test, data.y_test)
        rmse = float(np.sqrt(np.mean((outputs - data.y_test) ** 2)))
        print(f"test loss: {loss:.4f}   test RMSE: {rmse:.4f}")
        return
    n_classes = len(data.class_names)
    loss = network.loss_value(X_test, network_targets(network, data.y_test, n_classes))
    predicted = predicted_classes(outputs)
    correct = int(np.sum(predicted == data.y_test))
    print(f"test loss: {loss:.4f}   test accuracy: {correct / data.y_test.size:.4f} "
          f"({correct} of {data.y_test.size})")
    if not quiet:
        print(classification_report(data.y_test, predicted, data.class_names))


def _print_findings(findings):
    """The doctor's findings, one per line, or a line saying there are none."""
    if not findings:
        print("doctor: no problems found")
        return
    print(f"doctor: {len(findings)} finding{'s' if len(findings) > 1 else ''}")
    for finding in findings:
        print(f"  {finding.line()}")


def _write_plot(draw, name):
    """[name] after ``draw()`` wrote it, or [] with a warning when matplotlib is missing."""
    try:
        draw()
    except MissingDependencyError as error:
        print(f"numnet: warning: {name} not written: {error}", file=sys.stderr)
        return []
    return [name]


def _write_training_plots(network, history, data, scaler, X_test, output):
    """Write the plots that fit the data; returns their file names (none when matplotlib is missing)."""
    try:
        return _training_plots(network, history, data, scaler, X_test, output)
    except MissingDependencyError as error:
        print(f"numnet: warning: no plots written: {error}", file=sys.stderr)
        return []


def _training_plots(network, history, data, scaler, X_test, output):
    """Loss/accuracy curves, gradient magnitudes, and what suits the data (confusion matrix, weights, ...)."""
    written = []

    def save(name, draw):
        draw(output / name)
        written.append(name)

    save("training.png", lambda path: plots.plot_training(history, path=path))
    smooth = max(1, min(GRADIENT_SMOOTHING, history.iterations // 10))
    save("gradients.png", lambda path: plots.plot_gradient_magnitudes(
        history, path=path, smooth=smooth, title=f"Mean |dC/dW| per iteration (average of {smooth})"))

    def classes_of(points):
        return predicted_classes(network.forward(scaler.transform(points)))

    if data.is_classification:
        predicted = predicted_classes(network.forward(X_test))
        save("confusion_matrix.png", lambda path: plots.plot_confusion_matrix(
            data.y_test, predicted, class_names=data.class_names, path=path, title="Confusion matrix (test set)"))
        if data.n_features == 2:
            save("decision_regions.png", lambda path: plots.plot_decision_regions(
                classes_of, data.X_train, data.y_train, class_names=data.class_names, path=path,
                title="Decision regions (training data)"))
    elif data.n_features == 1:
        save("regression.png", lambda path: plots.plot_regression(
            data.X_train, data.y_train[:, 0], lambda points: network.forward(scaler.transform(points)),
            path=path))
    convolutions = [layer for layer in network.layers if isinstance(layer, Conv2D)]
    if convolutions:
        save("filters.png", lambda path: plots.plot_filters(
            to_numpy(convolutions[0].params["W"]), path=path, title=f"First-layer filters ({convolutions[0].name})"))
        save("feature_maps.png", lambda path: plots.plot_feature_maps(
            network, X_test[0], path=path, title="Feature maps of the first test image after each convolution"))
    elif data.image_shape is not None and min(data.image_shape) >= SMALLEST_WEIGHT_IMAGE:
        save("weights.png", lambda path: plots.plot_weights(
            network.parameters()["dense_0.W"], image_shape=data.image_shape, path=path, max_images=64))
    return written


# ---------------------------------------------------------------------------------------------------------
# numnet evaluate


def _model_class_names(network):
    """The class names saved with the model, or "0", "1", ... for a classifier saved without them."""
    names = (network.metadata or {}).get("class_names")
    if names:
        return [str(name) for name in names]
    if not network.is_classifier:
        return None
    return [str(index) for index in range(max(network.n_outputs, 2))]


def _scaled_features(network, X, source):
    """X checked against the model's input size and scaled with the model's saved scaler (an MLP), or shaped
    as the images a convolutional model takes."""
    if takes_images(network):
        return _as_images(network, np.asarray(X, dtype=network.dtype), source)
    if X.shape[1] != network.n_inputs:
        raise ValueError(
            f"{source} has {X.shape[1]} feature columns but the model expects {network.n_inputs}; "
            "use data with the same columns as the training data"
        )
    scaler = scaler_from_metadata((network.metadata or {}).get("scaler"))
    X = np.asarray(X, dtype=network.dtype)
    return X if scaler is None else scaler.transform(X)


def evaluation_data(source, network, target=None):
    """(X, y, description) to evaluate ``network`` on: a data set's held-out test rows, or a whole CSV file.

    ``y`` holds class indices in the model's class order, or real values (n, 1) for a regression model.
    """
    metadata = network.metadata or {}
    if source.strip().lower() in DATA_NAMES:
        data = load_data(source, dtype=network.dtype.name)
        return data.X_test, data.y_test, f"{data.description}, held-out test rows"
    if target is None:
        target = metadata.get("data", {}).get("target", -1)
    table = datasets.load_csv(source, target=_csv_target(target), dtype=network.dtype.name)
    description = f"{source}: {table.X.shape[0]} rows, target {table.target_name!r}"
    class_names = _model_class_names(network)
    if class_names is None:
        values = table.y if table.classes is None else table.classes[table.y].astype(np.float64)
        return table.X, np.asarray(values, dtype=np.float64).reshape(-1, 1), description
    if table.classes is None:
        raise ValueError(f"the target column {table.target_name!r} of {source} holds real numbers, but the "
                         "model is a classifier; choose the label column with --target")
    return table.X, _model_class_indices(table, class_names, source), description


def _model_class_indices(table, class_names, source):
    """The file's labels as indices into the model's class names."""
    position = {name: index for index, name in enumerate(class_names)}
    unknown = [str(label) for label in table.classes if str(label) not in position]
    if unknown:
        raise ValueError(
            f"{source} has labels the model was not trained on: {', '.join(unknown[:5])}; the model knows: "
            f"{', '.join(class_names)}"
        )
    mapping = np.array([position[str(label)] for label in table.classes], dtype=np.int64)
    return mapping[table.y]


def command_evaluate(args):
    """Print the loss, accuracy and per-class report of a saved model on a data set or CSV file."""
    network = load_model(args.model)
    X, y, description = evaluation_data(args.data, network, args.target)
    X = _scaled_features(network, X, args.data)
    shape = f"images {network.input_shape}, " if takes_images(network) else ""
    print(f"model: {args.model} ({shape}{network.layer_sizes}, loss {network.loss.name})")
    print(f"data: {description}")
    class_names = _model_class_names(network)
    if class_names is None:
        outputs = network.forward(X)
        rmse = float(np.sqrt(np.mean((outputs - y) ** 2)))
        print(f"loss: {network.loss_value(X, y):.4f}   RMSE: {rmse:.4f}")
        return 0
    _check_label_range(y, network, class_names)
    loss = network.loss_value(X, network_targets(network, y, len(class_names)))
    predicted = predicted_classes(network.forward(X))
    correct = int(np.sum(predicted == y))
    print(f"loss: {loss:.4f}   accuracy: {correct / y.size:.4f} ({correct} of {y.size})")
    print(classification_report(y, predicted, class_names))
    return 0


def _check_label_range(y, network, class_names):
    """Raise ValueError when a class index does not fit the model's outputs."""
    if y.size and int(y.max()) >= len(class_names):
        raise ValueError(f"the data has class {int(y.max())} but the model knows only {len(class_names)} classes")


# ---------------------------------------------------------------------------------------------------------
# numnet predict


def read_feature_rows(path, network):
    """The features CSV for ``network``, read by :func:`numnet.datasets.load_csv_features`: X (n, n_inputs).

    A header naming every feature the model was trained on picks those columns (in the model's order);
    otherwise the file must have exactly one column per feature.
    """
    feature_names = (network.metadata or {}).get("feature_names")
    return datasets.load_csv_features(path, network.n_inputs, feature_names=feature_names,
                                      dtype=network.dtype.name)


def prediction_table(network, X):
    """The predictions CSV as text: a "prediction" column, then one probability (or score) column per class."""
    outputs = network.forward(X)
    class_names = _model_class_names(network)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if class_names is None:
        names = ["prediction"] if outputs.shape[1] == 1 else [f"prediction_{k}" for k in range(outputs.shape[1])]
        writer.writerow(names)
        writer.writerows([[f"{value:.8g}" for value in row] for row in outputs])
        return buffer.getvalue()
    scores = class_scores(outputs)
    kind = "probability" if network.is_classifier else "score"
    writer.writerow(["prediction", *(f"{kind}_{name}" for name in class_names)])
    for index, row in zip(predicted_classes(outputs), scores):
        writer.writerow([class_names[index], *(f"{value:.6f}" for value in row)])
    return buffer.getvalue()


def command_predict(args):
    """Write the model's predictions for the rows of a features CSV (to --output, else to stdout)."""
    network = load_model(args.model)
    X = _scaled_features(network, read_feature_rows(args.input, network), args.input)
    table = prediction_table(network, X)
    if args.output is None:
        sys.stdout.write(table)
    else:
        path = write_text_atomically(args.output, table)
        print(f"{X.shape[0]} predictions written to {path}")
    return 0


# ---------------------------------------------------------------------------------------------------------
# numnet doctor, lr-find and export


def command_doctor(args):
    """Print the training doctor's findings on a saved model, its data and its saved history."""
    network = load_model(args.model)
    X, y, description = evaluation_data(args.data, network, args.target)
    X = _scaled_features(network, X, args.data)
    class_names = _model_class_names(network)
    if class_names is not None:
        _check_label_range(y, network, class_names)
        y = network_targets(network, y, len(class_names))
    findings = diagnose(network, X, y, history=network.history)
    if args.json:
        print(json.dumps([finding.to_dict() for finding in findings], indent=2))
    else:
        print(f"model: {args.model} ({network.layer_sizes}, loss {network.loss.name})")
        print(f"data: {description}")
        _print_findings(findings)
    if args.plot:
        plots.plot_diagnosis(network, X, network.history, path=args.plot)
    return 0


def command_lr_find(args):
    """Run the learning-rate range test on a fresh network for the data; print the suggestion, write the plot."""
    data = load_data(args.data, target=args.target, dtype=args.dtype)
    X_train = preprocessing.StandardScaler().fit(data.X_train).transform(data.X_train)
    network = build_network(args, data)
    n_classes = len(data.class_names) if data.is_classification else None
    recipe = RECIPES[data.kind]
    batch_size = _batch_size(args, recipe) or X_train.shape[0]
    with np.errstate(over="ignore", invalid="ignore"), _blas_threads_for(network):
        result = find_learning_rate(network, X_train, network_targets(network, data.y_train, n_classes),
                                    optimizer=args.optimizer, steps=args.steps, batch_size=batch_size, seed=args.seed)
    print(f"data: {data.description}; network {network.layer_sizes}, {args.optimizer}, batches of {batch_size}")
    print(f"range test: {len(result.learning_rates)} steps from {result.learning_rates[0]:.3g} to "
          f"{result.learning_rates[-1]:.3g}{' (stopped: the loss diverged)' if result.diverged else ''}")
    print(f"lowest smoothed loss {min(result.losses):.4f} at learning rate {result.minimum_learning_rate:.3g}")
    print(f"suggested learning rate: {result.suggested_learning_rate:.3g} (a tenth of that)")
    path = pathlib.Path(args.output) / LR_FINDER_FILE_NAME
    if _write_plot(lambda: plots.plot_learning_rate_finder(result, path=path), LR_FINDER_FILE_NAME):
        print(f"plot saved to {path}")
    return 0


def command_export(args):
    """Write a saved model as an ONNX file."""
    network = load_model(args.model)
    to_onnx(network, args.onnx)
    scaled = "raw features, scaled inside the graph" if (network.metadata or {}).get("scaler") else "features"
    outputs = "probabilities, label" if network.is_classifier else "predictions"
    print(f"exported {args.model} to {args.onnx} (ONNX opset {OPSET}): input 'input' ({scaled}), outputs {outputs}")
    return 0


# ---------------------------------------------------------------------------------------------------------
# numnet gradcheck


def _random_targets(network, n_samples, rng):
    """Random targets of the right kind for the network's loss."""
    if network.loss.fused_activation == "softmax":
        return rng.integers(0, network.n_outputs, size=n_samples)
    if network.loss.fused_activation == "sigmoid":
        return rng.integers(0, 2, size=(n_samples, network.n_outputs)).astype(np.float64)
    return rng.standard_normal((n_samples, network.n_outputs))


def command_gradcheck(args):
    """Compare backprop with central differences on a random float64 network; exit 1 when any check fails."""
    loss = args.loss
    if loss is None and args.output_activation is None:
        loss = "softmax_cross_entropy"
    # Random biases, not zeros: with zero biases a sample whose previous layer is all-dead relu units gets
    # z = b = 0 exactly, on relu's kink, where central differences and the one-sided derivative disagree.
    network = Network(args.layers or [4, 5, 3], activation=args.activation,
                      output_activation=args.output_activation, loss=loss, l2=args.l2,
                      bias_init=Normal(std=GRADCHECK_BIAS_STD), dtype="float64", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    X = rng.standard_normal((args.samples, network.n_inputs))
    errors = gradient_check(network, X, _random_targets(network, args.samples, rng))
    print(f"gradient check of {network!r}, l2 {network.l2:g}, {args.samples} random samples, float64")
    print(f"relative error |backprop - numerical| / max(|backprop|, |numerical|), pass below {GRADCHECK_THRESHOLD:g}")
    width = max(len(name) for name in errors)
    for name, error in errors.items():
        print(f"  {name:<{width}}  {error:.2e}  {'PASS' if error < GRADCHECK_THRESHOLD else 'FAIL'}")
    passed = all(error < GRADCHECK_THRESHOLD for error in errors.values())
    print("PASS: backprop agrees with central differences" if passed else "FAIL: backprop disagrees")
    return 0 if passed else 1


# ---------------------------------------------------------------------------------------------------------
# numnet experiments


def command_explain(args):
    """Walk a 2-3-2 network through one forward and one backward pass (numnet.explain); 0 when it agrees."""
    return explain.walk_through()


def command_experiments(args):
    """Run the reference experiments, write report.html and print a summary; exit 1 if one is not reproduced."""
    output = pathlib.Path(args.output)

    def announce(result):
        status = f"skipped: {result.skipped}" if result.skipped else f"done in {result.seconds:.1f} s"
        print(f"{result.id} {result.title}: {status}", flush=True)

    results = experiments.run_experiments(args.ids, output, quick=args.quick, progress=announce)
    report = experiments.write_report(results, output / "report.html")
    for result in results:
        print(f"\n{result.id}. {result.title}")
        for quantity, value, reference, verdict in result.rows:
            print(f"  {quantity}: numnet {value} | reference {reference} | {verdict}")
    print(f"\nreport written to {report}")
    failed = [result.id for result in results if not result.reproduced]
    if failed:
        print(f"not reproduced: {', '.join(failed)}")
        return 1
    return 0


# ---------------------------------------------------------------------------------------------------------
# numnet playground


def command_playground(args):
    """Serve the playground page (numnet.playground.serve) until Ctrl-C; returns 0."""
    from numnet import playground  # only this command needs the web server

    if args.port > MAX_PORT:
        raise ValueError(f"--port must be a port number from 0 to {MAX_PORT} (0: a free one), got {args.port}")
    return playground.serve(args.host, args.port, open_browser=not args.no_browser)


def _add_playground_parser(commands):
    playground = commands.add_parser(
        "playground", help="watch a network learn, live, in the browser",
        description="Start a local web server with numnet's engine behind a TensorFlow-Playground-like page: "
                    "choose data, features, layers, activation, loss, optimiser and regularisation, press play "
                    "and watch every neuron, the weights, the losses and the gradients change; download the "
                    "model and a script that retrains it. Ctrl-C stops the server.")
    playground.add_argument("--port", type=_integer_option(0), default=0,
                            help="port to listen on (default: a free one, printed at start)")
    playground.add_argument("--host", metavar="ADDRESS",
                            help="address to listen on (default 127.0.0.1: this machine only); with --host, anyone "
                                 "who can reach the address can use the playground")
    playground.add_argument("--no-browser", action="store_true", help="do not open the default web browser")
    playground.set_defaults(run=command_playground)


# ---------------------------------------------------------------------------------------------------------
# Options and the entry point


class _ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr, like every other numnet error."""

    def error(self, message):
        self.exit(2, f"{ERROR_PREFIX}{message} (see '{self.prog} --help')\n")


def _integer_option(minimum):
    """An option type accepting integers >= ``minimum`` (--epochs and --samples: 1, --seed: 0)."""
    def parse(text):
        try:
            return check_integer(_parse(int, text, "an integer"), "it", minimum=minimum)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix("it ")) from None
    parse.__name__ = "positive integer" if minimum == 1 else "non-negative integer"
    return parse


def _batch_size_option(text):
    """A batch size >= 1, or 0 / "full" for the whole training set."""
    if text.strip().lower() == "full":
        return 0
    value = _parse(int, text, "a positive integer or 'full'")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'full' (0 also means full), got {text!r}")
    return value


def _positive_float(text):
    """A finite number > 0 (for --learning-rate)."""
    value = _parse(float, text, "a number")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _non_negative_float(text):
    """A finite number >= 0 (for --l2)."""
    value = _parse(float, text, "a number")
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _dropout_rate(text):
    """A dropout rate in [0, 1)."""
    value = _parse(float, text, "a number in [0, 1)")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (the probability of dropping a unit), got {text!r}")
    return value


def _parse(kind, text, expected):
    """``kind(text)``, or an ArgumentTypeError saying what was expected."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None


def _layer_sizes_option(text):
    """Comma-separated positive layer sizes, at least an input and an output size: "64,128,10"."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        sizes = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers such as 64,128,10, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"needs at least an input and an output size, all positive, such as 64,128,10; got {text!r}")
    return sizes


def _model_option(text):
    """--model: "mlp", "cnn" or a layer string such as conv16x3,pool2,dense64 (checked for its form here, for
    its fit to the data when the network is built)."""
    name = text.strip().lower()
    if name in ("mlp", "cnn"):
        return name
    try:
        parse_layer_string(name)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"must be mlp, cnn or a layer string: {error}") from None
    return name


def _name_in(table, kind):
    """An option type accepting the names of one of numnet's tables (lower-cased), with numnet's message."""
    def parse(text):
        name = text.strip().lower()
        if name not in table:
            raise argparse.ArgumentTypeError(unknown_name_message(table, text, kind))
        return name
    parse.__name__ = kind
    return parse


def _add_network_options(parser, *, training):
    """--layers, --activation, --output-activation, --loss, --l2, --seed (shared by train and gradcheck)."""
    parser.add_argument("--layers", type=_layer_sizes_option, metavar="SIZES",
                        help="every layer size, input and output included, comma-separated, e.g. 64,128,10; the "
                             "first must equal the data's feature count and the last its number of classes "
                             "(or target columns). Default: " + ("the data's recipe (digits: 64,128,10)"
                                                                 if training else "4,5,3"))
    parser.add_argument("--activation", type=_name_in(ACTIVATIONS, "activation"),
                        default="relu" if training else "tanh",
                        help=f"hidden-layer activation: {', '.join(sorted(ACTIVATIONS))} (default %(default)s)")
    parser.add_argument("--output-activation", type=_name_in(ACTIVATIONS, "activation"),
                        help="output activation (default: the one the loss implies, e.g. softmax)")
    parser.add_argument("--loss", type=_name_in(LOSSES, "loss"),
                        help=f"loss: {', '.join(sorted(LOSSES))} (default: softmax_cross_entropy for classes, "
                             "mse for real-valued targets)")
    parser.add_argument("--l2", type=_non_negative_float, default=0.0, help="L2 penalty on the weights (default 0)")
    parser.add_argument("--seed", type=_integer_option(0), default=0,
                        help="seed of the initial weights" + (" and the batch order" if training else
                                                             " and the random data") + " (default 0)")


def _add_train_parser(commands):
    train = commands.add_parser(
        "train", help="train a network (default: the 8x8 digits classifier)",
        description="Train a network, print its test accuracy and per-class report, and write the model "
                    "(model.npz) and plots to the output folder. Without options: scikit-learn's 8x8 digits, "
                    "64-128-10 relu/softmax, Adam (lr 0.001), batches of 32, 30 epochs. Data is split 80/20 "
                    "(stratified for classes, seed 1) and standardised with the training rows' statistics "
                    "(an MLP's; a convolutional network, --model cnn, takes the pixels in [0, 1]).")
    train.add_argument("--data", default=DEFAULT_DATA, metavar="DATA",
                       help=f"{' | '.join(DATA_NAMES)} | PATH.csv (default %(default)s)")
    train.add_argument("--target", metavar="COLUMN", help="the label column of a CSV file: a name or an index "
                                                          "(default: the last column)")
    train.add_argument("--model", type=_model_option, default="mlp", metavar="MODEL",
                       help="mlp (default: Dense layers, sized by --layers), cnn (a convolutional network for "
                            "images: digits "
                            f"{RECIPES['digits'].cnn}, mnist {RECIPES['mnist'].cnn} (the book's SimpleConvNet)), or "
                            "a layer string of hidden layers, comma-separated: conv<filters>x<kernel> with "
                            "optional p<padding> and s<stride>, pool<size> with optional s<stride>, dense<units>, "
                            f"dropout<rate> (e.g. {LAYER_STRING_EXAMPLES}); the output layer is added. A "
                            "convolutional network takes the pixels as loaded, in [0, 1], without standardising")
    _add_network_options(train, training=True)
    train.add_argument("--dropout", type=_dropout_rate, default=0.0, metavar="RATE",
                       help="add a Dropout layer of this rate after every hidden layer (inverted dropout, "
                            "training only; default 0: none)")
    train.add_argument("--batch-norm", action="store_true",
                       help="batch-normalise every hidden layer: Dense -> BatchNorm -> activation (the order "
                            "of the classic course)")
    train.add_argument("--optimizer", type=_name_in(OPTIMIZERS, "optimizer"), default="adam",
                       help=f"{', '.join(sorted(OPTIMIZERS))} (default %(default)s)")
    train.add_argument("--learning-rate", type=_positive_float, metavar="RATE",
                       help="step size (default: the recipe's for adam, else the optimiser's own)")
    train.add_argument("--epochs", type=_integer_option(1), help="passes over the training data (default: the recipe's)")
    train.add_argument("--batch-size", type=_batch_size_option, metavar="SIZE",
                       help="samples per step, or 'full' for the whole training set (default 32)")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="floating-point precision (default %(default)s)")
    train.add_argument("--output", default=DEFAULT_OUTPUT, metavar="DIR",
                       help="folder for model.npz and the plots (default %(default)s)")
    train.add_argument("--quiet", action="store_true", help="print only the final summary")
    train.add_argument("--checkpoint", action="store_true",
                       help=f"save {CHECKPOINT_FILE_NAME} in the output folder after every epoch")
    train.add_argument("--resume", metavar="CHECKPOINT",
                       help="continue training a saved model (its optimiser, seed and epoch count) up to --epochs")
    train.add_argument("--backend", choices=("numpy", "cupy", "array_api_strict"),
                       help="array library that trains the network: numpy (default, or $NUMNET_BACKEND), "
                            "cupy (an NVIDIA GPU) or array_api_strict (the standard's reference)")
    train.add_argument("--distributed", action="store_true",
                       help="data-parallel training over MPI: run as `mpiexec -n N numnet train --distributed ...`")
    train.add_argument("--diagnose", action="store_true",
                       help=f"record the training doctor's evidence, print its findings after training and write "
                            f"{DIAGNOSIS_FILE_NAME}")
    train.set_defaults(run=command_train)


def _add_other_parsers(commands):
    evaluate = commands.add_parser(
        "evaluate", help="evaluate a saved model", description="Print the loss, accuracy and per-class report "
        "of a saved model. DATA is a data set name (evaluated on the held-out 20%% that train kept aside) or a "
        "CSV file (all of its rows).")
    evaluate.add_argument("model", metavar="MODEL")
    evaluate.add_argument("data", metavar="DATA")
    evaluate.add_argument("--target", metavar="COLUMN", help="label column of the CSV (default: the training one)")
    evaluate.set_defaults(run=command_evaluate)
    predict = commands.add_parser(
        "predict", help="predict with a saved model", description="Predict the rows of a CSV of features "
        "(with or without a header). Writes a CSV: the predicted class and one probability column per class "
        "(or the predicted values of a regression model).")
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("input", metavar="INPUT.csv")
    predict.add_argument("--output", metavar="FILE", help="write the predictions here (default: standard output)")
    predict.set_defaults(run=command_predict)
    gradcheck = commands.add_parser(
        "gradcheck", help="check backprop against central differences",
        description="Build a random float64 network and compare every parameter's backprop gradient with "
                    f"central differences; PASS below a relative error of {GRADCHECK_THRESHOLD:g}, exit 1 on FAIL.")
    _add_network_options(gradcheck, training=False)
    gradcheck.add_argument("--samples", type=_integer_option(1), default=5, help="random samples (default 5)")
    gradcheck.set_defaults(run=command_gradcheck)
    explain = commands.add_parser("explain", help="walk a tiny network through forward and backward passes",
                                  description="Print every step of one forward and one backward pass (BP1-BP4) "
                                              "of a 2-3-2 network on 2 samples, and check them against numnet.")
    explain.set_defaults(run=command_explain)
    runner = commands.add_parser("experiments", help="run the reference experiments E1-E12 and write a report",
                                 description="Run the reference experiments and write report.html.")
    runner.add_argument("ids", nargs="*", metavar="ID", help="experiments to run, e.g. E1 E3 (default: all)")
    runner.add_argument("--quick", action="store_true", help="shorten the long schedules (E3-E5, E8-E12)")
    runner.add_argument("--output", default=DEFAULT_EXPERIMENTS_OUTPUT, metavar="DIR",
                        help="folder for the figures and report.html (default %(default)s)")
    runner.set_defaults(run=command_experiments)


def _add_doctor_parsers(commands):
    doctor = commands.add_parser(
        "doctor", help="explain why a saved model did not learn",
        description="Examine a saved model on DATA (a data set name: its held-out test rows; or a CSV file) "
                    "and its saved training history; print each finding with what it measured and what to change.")
    doctor.add_argument("model", metavar="MODEL")
    doctor.add_argument("data", metavar="DATA")
    doctor.add_argument("--target", metavar="COLUMN", help="label column of the CSV (default: the training one)")
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    doctor.add_argument("--plot", metavar="FILE.png", help="also write the diagnosis figure here")
    doctor.set_defaults(run=command_doctor)
    finder = commands.add_parser(
        "lr-find", help="suggest a learning rate (Smith's range test)",
        description="Train a copy of a fresh network for a few hundred steps at an exponentially growing "
                    f"learning rate; print the suggested rate and write {LR_FINDER_FILE_NAME} to the output folder.")
    finder.add_argument("--data", default=DEFAULT_DATA, metavar="DATA",
                        help=f"{' | '.join(DATA_NAMES)} | PATH.csv (default %(default)s)")
    finder.add_argument("--target", metavar="COLUMN", help="the label column of a CSV file")
    _add_network_options(finder, training=True)
    finder.add_argument("--optimizer", type=_name_in(OPTIMIZERS, "optimizer"), default="adam",
                        help=f"{', '.join(sorted(OPTIMIZERS))} (default %(default)s)")
    finder.add_argument("--batch-size", type=_batch_size_option, metavar="SIZE", help="samples per step (default 32)")
    finder.add_argument("--steps", type=_integer_option(2), default=240, help="steps of the test (default %(default)s)")
    finder.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    finder.add_argument("--output", default=DEFAULT_OUTPUT, metavar="DIR", help="folder for the plot (default %(default)s)")
    finder.set_defaults(run=command_lr_find, backend=None, dropout=0.0, batch_norm=False, model="mlp")
    export = commands.add_parser(
        "export", help="export a saved model to ONNX",
        description=f"Write MODEL.npz as an ONNX model (opset {OPSET}); a model from `numnet train` takes raw "
                    "features and outputs probabilities and the class label.")
    export.add_argument("model", metavar="MODEL.npz")
    export.add_argument("onnx", metavar="MODEL.onnx")
    export.set_defaults(run=command_export)


def build_parser():
    """The argument parser of the ``numnet`` command."""
    parser = _ArgumentParser(prog="numnet", description="Neural networks from scratch on NumPy.")
    parser.add_argument("--version", action="version", version=f"numnet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train_parser(commands)
    _add_other_parsers(commands)
    _add_playground_parser(commands)
    _add_doctor_parsers(commands)
    return parser


def error_message(error):
    """One line describing ``error`` for the user."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.strerror}: {error.filename}"
    elif isinstance(error, (NumnetError, OSError, ValueError, TypeError, KeyError, ArithmeticError)):
        text = str(error) or type(error).__name__
    else:
        text = (f"unexpected {type(error).__name__}: {error} (set {DEBUG_ENVIRONMENT_VARIABLE}=1 to see the "
                "traceback)")
    return " ".join(text.split())


def main(argv=None):
    """Run the ``numnet`` command with ``argv`` (default: sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("choose a command: train, evaluate, predict, gradcheck, experiments, explain, playground, "
                     "doctor, lr-find or export")
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{ERROR_PREFIX}interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (e.g. `numnet predict ... | head`): not an error worth a
        # message. Point stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_STATUS
    except Exception as error:  # every failure becomes one line; NUMNET_DEBUG=1 shows the traceback
        if os.environ.get(DEBUG_ENVIRONMENT_VARIABLE):
            raise
        print(ERROR_PREFIX + error_message(error), file=sys.stderr)
        return 1
