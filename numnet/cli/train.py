"""``numnet train``: train a network, print its test results, save the model and its plots."""

import pathlib
import sys
import time

import numpy as np

from numnet import plots
from numnet.backend import to_numpy
from numnet.conv import Conv2D
from numnet.distributed import get_communicator, stop_all_ranks_on_failure
from numnet.doctor import diagnose
from numnet.errors import DivergenceError, MissingDependencyError
from numnet.metrics import classification_report, predicted_classes
from numnet.model_spec import EXAMPLES as LAYER_STRING_EXAMPLES
from numnet.optimizers import OPTIMIZERS
from numnet.persistence import load_model, save_model

from .data import RECIPES, SPLIT_SEED, TEST_SIZE, load_data
from .model import NetworkSpec, blas_threads_for, build_network, network_targets, training_inputs
from .options import (DEFAULT_OUTPUT, add_data_options, add_network_options, batch_size_option, dropout_rate,
                      integer_option, model_option, name_in, network_options, positive_float)
from .reporting import ProgressReporter, print_findings, printer, write_plot

MODEL_FILE_NAME = "model.npz"
CHECKPOINT_FILE_NAME = "checkpoint.npz"
DIAGNOSIS_FILE_NAME = "diagnosis.png"
# Gradient curves are smoothed over this many iterations (at most) in the plot `train` writes.
GRADIENT_SMOOTHING = 25
# Pixels per side below which a square input is not shown as an image of weights (a 1x1 "image" says
# nothing).
SMALLEST_WEIGHT_IMAGE = 4


def command_train(args):
    """Train a network, print its test results, and save the model and plots in the output folder.

    With --distributed (under ``mpiexec -n N``) every rank trains on its shard of each batch; only rank 0
    prints and writes files, and a failure on any rank stops them all with a message naming that rank.
    """
    communicator = get_communicator(args.distributed)
    with stop_all_ranks_on_failure(communicator):
        return _train(args, communicator)


def _network_spec(args):
    """The network the options ask for."""
    return NetworkSpec(**network_options(args), model=args.model, dropout=args.dropout,
                       batch_norm=args.batch_norm, dtype=args.dtype, backend=args.backend)


def _train(args, communicator):
    quiet = args.quiet or not communicator.is_root
    say = printer(quiet)
    data = load_data(args.data, target=args.target, dtype=args.dtype)
    network = load_model(args.resume) if args.resume else build_network(_network_spec(args), data)
    scaler, X_train, X_test = training_inputs(network, data)
    epochs = _remaining_epochs(args.epochs or data.recipe.epochs, network, args.resume)
    say(f"data: {data.description}; {X_train.shape[0]} training and {X_test.shape[0]} test rows")
    say(network.summary())
    say("(val_loss and val_accuracy below are measured on the held-out test rows)")
    n_classes = len(data.class_names) if data.is_classification else None
    output = pathlib.Path(args.output)
    started = time.perf_counter()
    # A run that blows up overflows on its way to NaN; the divergence guard reports that as one clear
    # error, so NumPy's overflow warnings would only repeat it as noise.
    with (ProgressReporter(quiet, epochs) as progress, np.errstate(over="ignore", invalid="ignore"),
          blas_threads_for(network)):
        after_epoch = _checkpointing(progress, network, output, _metadata(data, scaler),
                                     enabled=args.checkpoint and communicator.is_root)
        y_train = network_targets(network, data.y_train, n_classes)
        try:
            network.fit(X_train, y_train, epochs=epochs, batch_size=data.recipe.batch_size_for(args.batch_size),
                        **_optimizer_options(args.optimizer, args.learning_rate, data.recipe, resume=args.resume),
                        validation_data=(X_test, network_targets(network, data.y_test, n_classes)),
                        seed=None if args.resume else args.seed, progress=after_epoch, distributed=communicator,
                        diagnose=args.diagnose)
        except DivergenceError:
            if args.diagnose and communicator.is_root:  # the findings explain the failure the error reports
                print_findings(diagnose(network, X_train, y_train, history=network.history))
            raise
    seconds = time.perf_counter() - started
    if not communicator.is_root:
        return 0
    model_path = save_model(network, output / MODEL_FILE_NAME, metadata=_metadata(data, scaler))
    print(f"trained {epochs} epochs in {seconds:.2f} s")
    _print_test_results(network, data, X_test, quiet=args.quiet)
    figures = _write_training_plots(network, network.history, data, scaler, X_test, output)
    if args.diagnose:
        print_findings(diagnose(network, X_train, y_train, history=network.history))
        figures += write_plot(lambda: plots.plot_diagnosis(network, X_train, network.history,
                                                            path=output / DIAGNOSIS_FILE_NAME), DIAGNOSIS_FILE_NAME)
    print(f"model saved to {model_path}")
    if figures:
        print(f"plots saved to {output}: {', '.join(figures)}")
    return 0


def _remaining_epochs(total, network, resume):
    """Epochs still to train: all of them, or for --resume what the checkpoint has not trained yet."""
    if not resume:
        return total
    remaining = total - network.epochs_trained
    if remaining < 1:
        raise ValueError(f"the checkpoint {resume} has already trained {network.epochs_trained} epochs; "
                         f"ask for more with --epochs (now {total})")
    return remaining


def _optimizer_options(optimizer, learning_rate, recipe, *, resume):
    """A fresh optimiser from the options, or none for --resume (the checkpoint's, state and all, goes on)."""
    if resume:
        return {"optimizer": None}
    return {"optimizer": optimizer, "learning_rate": learning_rate or recipe.learning_rate_for(optimizer)}


def _checkpointing(progress, network, output, metadata, *, enabled):
    """The progress callback, extended to save a checkpoint after every epoch when ``enabled``."""
    if not enabled:
        return progress

    def after_epoch(report):
        save_model(network, output / CHECKPOINT_FILE_NAME, metadata=metadata)
        if progress is not None:
            progress(report)

    return after_epoch


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


def add_parser(commands):
    """Add ``numnet train`` and its options to the subparsers ``commands``."""
    train = commands.add_parser(
        "train", help="train a network (default: the 8x8 digits classifier)",
        description="Train a network, print its test accuracy and per-class report, and write the model "
                    "(model.npz) and plots to the output folder. Without options: scikit-learn's 8x8 digits, "
                    "64-128-10 relu/softmax, Adam (lr 0.001), batches of 32, 30 epochs. Data is split 80/20 "
                    "(stratified for classes, seed 1) and standardised with the training rows' statistics "
                    "(an MLP's; a convolutional network, --model cnn, takes the pixels in [0, 1]).")
    add_data_options(train, target_help="the label column of a CSV file: a name or an index "
                                        "(default: the last column)")
    train.add_argument("--model", type=model_option, default="mlp", metavar="MODEL",
                       help="mlp (default: Dense layers, sized by --layers), cnn (a convolutional network for "
                            "images: digits "
                            f"{RECIPES['digits'].cnn}, mnist {RECIPES['mnist'].cnn} (the book's SimpleConvNet)), or "
                            "a layer string of hidden layers, comma-separated: conv<filters>x<kernel> with "
                            "optional p<padding> and s<stride>, pool<size> with optional s<stride>, dense<units>, "
                            f"dropout<rate> (e.g. {LAYER_STRING_EXAMPLES}); the output layer is added. A "
                            "convolutional network takes the pixels as loaded, in [0, 1], without standardising")
    add_network_options(train, training=True)
    train.add_argument("--dropout", type=dropout_rate, default=0.0, metavar="RATE",
                       help="add a Dropout layer of this rate after every hidden layer (inverted dropout, "
                            "training only; default 0: none)")
    train.add_argument("--batch-norm", action="store_true",
                       help="batch-normalise every hidden layer: Dense -> BatchNorm -> activation (the order "
                            "of the classic course)")
    train.add_argument("--optimizer", type=name_in(OPTIMIZERS, "optimizer"), default="adam",
                       help=f"{', '.join(sorted(OPTIMIZERS))} (default %(default)s)")
    train.add_argument("--learning-rate", type=positive_float, metavar="RATE",
                       help="step size (default: the recipe's for adam, else the optimiser's own)")
    train.add_argument("--epochs", type=integer_option(1), help="passes over the training data (default: the recipe's)")
    train.add_argument("--batch-size", type=batch_size_option, metavar="SIZE",
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
