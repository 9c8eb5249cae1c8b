"""``numnet lr-find``: Smith's learning-rate range test on a fresh network for the data."""

import pathlib

import numpy as np

from numnet import plots, preprocessing
from numnet.lr_finder import find_learning_rate
from numnet.optimizers import OPTIMIZERS

from .data import load_data
from .model import NetworkSpec, blas_threads_for, build_network, network_targets
from .options import (DEFAULT_OUTPUT, add_data_options, add_network_options, batch_size_option, integer_option,
                      name_in, network_options)
from .reporting import write_plot

LR_FINDER_FILE_NAME = "lr_find.png"


def command_lr_find(args):
    """Run the learning-rate range test on a fresh network for the data; print the suggestion, write the plot."""
    data = load_data(args.data, target=args.target, dtype=args.dtype)
    X_train = preprocessing.StandardScaler().fit(data.X_train).transform(data.X_train)
    network = build_network(NetworkSpec(**network_options(args), dtype=args.dtype), data)
    n_classes = len(data.class_names) if data.is_classification else None
    batch_size = data.recipe.batch_size_for(args.batch_size) or X_train.shape[0]
    with np.errstate(over="ignore", invalid="ignore"), blas_threads_for(network):
        result = find_learning_rate(network, X_train, network_targets(network, data.y_train, n_classes),
                                    optimizer=args.optimizer, steps=args.steps, batch_size=batch_size, seed=args.seed)
    print(f"data: {data.description}; network {network.layer_sizes}, {args.optimizer}, batches of {batch_size}")
    print(f"range test: {len(result.learning_rates)} steps from {result.learning_rates[0]:.3g} to "
          f"{result.learning_rates[-1]:.3g}{' (stopped: the loss diverged)' if result.diverged else ''}")
    print(f"lowest smoothed loss {min(result.losses):.4f} at learning rate {result.minimum_learning_rate:.3g}")
    print(f"suggested learning rate: {result.suggested_learning_rate:.3g} (a tenth of that)")
    path = pathlib.Path(args.output) / LR_FINDER_FILE_NAME
    if write_plot(lambda: plots.plot_learning_rate_finder(result, path=path), LR_FINDER_FILE_NAME):
        print(f"plot saved to {path}")
    return 0


def add_parser(commands):
    """Add ``numnet lr-find`` and its options to the subparsers ``commands``."""
    finder = commands.add_parser(
        "lr-find", help="suggest a learning rate (Smith's range test)",
        description="Train a copy of a fresh network for a few hundred steps at an exponentially growing "
                    f"learning rate; print the suggested rate and write {LR_FINDER_FILE_NAME} to the output folder.")
    add_data_options(finder, target_help="the label column of a CSV file")
    add_network_options(finder, training=True)
    finder.add_argument("--optimizer", type=name_in(OPTIMIZERS, "optimizer"), default="adam",
                        help=f"{', '.join(sorted(OPTIMIZERS))} (default %(default)s)")
    finder.add_argument("--batch-size", type=batch_size_option, metavar="SIZE", help="samples per step (default 32)")
    finder.add_argument("--steps", type=integer_option(2), default=240, help="steps of the test (default %(default)s)")
    finder.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    finder.add_argument("--output", default=DEFAULT_OUTPUT, metavar="DIR",
                        help="folder for the plot (default %(default)s)")
    finder.set_defaults(run=command_lr_find)
