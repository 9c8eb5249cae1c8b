"""The ``numnet`` command: train, evaluate, predict, generate, gradcheck, experiments, explain, playground,
doctor, lr-find, export.

``numnet train`` with no options is the main job: it trains a sound classifier of scikit-learn's 8x8 digits
(64-128-10, relu, softmax cross-entropy, Adam, mini-batches of 32) in a few seconds, prints its test accuracy
and a per-class report, and writes the model and its plots to ``./numnet-output``; ``numnet train --model cnn``
trains a convolutional network of the digits (or MNIST) instead, and ``numnet train --data text`` a
character-level language model of the census names (or of any text file, ``--data text:PATH``) that
``numnet generate`` samples from. Every other command is described by ``numnet <command> --help``.

Errors (a missing file, a bad option value, layer sizes that do not fit the data, a corrupted model file, a
diverged run) end the command with one line on stderr, ``numnet: error: ...``, and exit status 1; usage
errors caught by the argument parser exit with status 2. Set the environment variable NUMNET_DEBUG=1 to get
the full traceback instead.

The command is an application of the engine, one module per command (``train``, ``evaluate``, ``predict``,
``generate``, ``gradcheck``, ``explain``, ``experiments``, ``playground``, ``doctor``, ``lr_find``,
``export``: each adds its own subparser and runs it), over a few shared modules: ``data`` (data sets, CSV
files, the split and the recipes), ``corpus`` (the text of a language model, its vocabulary and held-out
tail), ``model`` (the NetworkSpec the options describe and the network built from it),
``saved_model`` (a saved model on new data), ``reporting`` (progress and findings), ``options`` (the option
types) and ``command`` (the parser and :func:`main`). The names below are this package's public ones,
importable as ``numnet.cli.NAME`` as they were when the command was one module.
"""

from numnet.preprocessing import StandardScaler, scaler_from_metadata

from .command import BROKEN_PIPE_STATUS, DEBUG_ENVIRONMENT_VARIABLE, ERROR_PREFIX, build_parser, error_message, main
from .data import (DATA_NAMES, DATA_SEED, DEFAULT_DATA, LINE_SAMPLES, RECIPES, SPLIT_SEED, TEST_SIZE, LoadedData,
                   Recipe, load_data)
from .doctor import command_doctor
from .evaluate import command_evaluate
from .experiments import DEFAULT_EXPERIMENTS_OUTPUT, command_experiments
from .explain import command_explain
from .export import command_export
from .generate import command_generate
from .gradcheck import GRADCHECK_BIAS_STD, GRADCHECK_THRESHOLD, command_gradcheck
from .lr_find import LR_FINDER_FILE_NAME, command_lr_find
from .model import (SMALL_NETWORK_PARAMETERS, NetworkSpec, build_network, layer_sizes_for, network_targets,
                    takes_images, training_inputs)
from .options import DEFAULT_OUTPUT
from .playground import MAX_PORT, command_playground
from .predict import command_predict, prediction_table, read_feature_rows
from .saved_model import evaluation_data
from .train import (CHECKPOINT_FILE_NAME, DIAGNOSIS_FILE_NAME, GRADIENT_SMOOTHING, MODEL_FILE_NAME,
                    SMALLEST_WEIGHT_IMAGE, command_train)

# The 0.2 name of the scaler's record writer (the record's format lives in numnet.preprocessing):
# scaler_to_metadata(scaler) is scaler.to_metadata().
scaler_to_metadata = StandardScaler.to_metadata

__all__ = [
    "BROKEN_PIPE_STATUS", "CHECKPOINT_FILE_NAME", "DATA_NAMES", "DATA_SEED", "DEBUG_ENVIRONMENT_VARIABLE",
    "DEFAULT_DATA", "DEFAULT_EXPERIMENTS_OUTPUT", "DEFAULT_OUTPUT", "DIAGNOSIS_FILE_NAME", "ERROR_PREFIX",
    "GRADCHECK_BIAS_STD", "GRADCHECK_THRESHOLD", "GRADIENT_SMOOTHING", "LINE_SAMPLES", "LR_FINDER_FILE_NAME",
    "MAX_PORT", "MODEL_FILE_NAME", "RECIPES", "SMALLEST_WEIGHT_IMAGE", "SMALL_NETWORK_PARAMETERS", "SPLIT_SEED",
    "TEST_SIZE", "LoadedData", "NetworkSpec", "Recipe", "build_network", "build_parser", "command_doctor",
    "command_evaluate", "command_experiments", "command_explain", "command_export", "command_generate",
    "command_gradcheck",
    "command_lr_find", "command_playground", "command_predict", "command_train", "error_message",
    "evaluation_data", "layer_sizes_for", "load_data", "main", "network_targets", "prediction_table",
    "read_feature_rows", "scaler_from_metadata", "scaler_to_metadata", "takes_images", "training_inputs",
]
