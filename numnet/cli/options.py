"""The option types of the ``numnet`` command (each value checked as argparse reads it, with numnet's
messages) and the options several commands share."""

import argparse
import math

from numnet._registry import unknown_name_message
from numnet.activations import ACTIVATIONS
from numnet.losses import LOSSES
from numnet.model_spec import parse_layer_string
from numnet.validation import check_integer

from .data import DATA_NAMES, DEFAULT_DATA, SEQ2SEQ_DATA, TEXT_DATA
from .model import RECURRENT_MODELS

DEFAULT_OUTPUT = "numnet-output"


def integer_option(minimum):
    """An option type accepting integers >= ``minimum`` (--epochs and --samples: 1, --seed: 0)."""
    def parse(text):
        try:
            return check_integer(_parse(int, text, "an integer"), "it", minimum=minimum)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix("it ")) from None
    parse.__name__ = "positive integer" if minimum == 1 else "non-negative integer"
    return parse


def batch_size_option(text):
    """A batch size >= 1, or 0 / "full" for the whole training set."""
    if text.strip().lower() == "full":
        return 0
    value = _parse(int, text, "a positive integer or 'full'")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'full' (0 also means full), got {text!r}")
    return value


def positive_float(text):
    """A finite number > 0 (for --learning-rate)."""
    value = _parse(float, text, "a number")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def non_negative_float(text):
    """A finite number >= 0 (for --l2)."""
    value = _parse(float, text, "a number")
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def dropout_rate(text):
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


def layer_sizes_option(text):
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


def model_option(text):
    """--model: "mlp", "cnn", a layer string such as conv16x3,pool2,dense64 or a language model's "lstm",
    "gru" or "rnn" (checked for its form here, for its fit to the data when the network is built)."""
    name = text.strip().lower()
    if name in ("mlp", "cnn", "seq2seq", "gpt", *RECURRENT_MODELS):
        return name
    try:
        parse_layer_string(name)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"must be mlp, cnn, a layer string, for text "
                                         f"{', '.join(RECURRENT_MODELS)} or gpt, or seq2seq: {error}") from None
    return name


def name_in(table, kind):
    """An option type accepting the names of one of numnet's tables (lower-cased), with numnet's message."""
    def parse(text):
        name = text.strip().lower()
        if name not in table:
            raise argparse.ArgumentTypeError(unknown_name_message(table, text, kind))
        return name
    parse.__name__ = kind
    return parse


def add_data_options(parser, *, target_help, text=False):
    """--data and --target (train and lr-find); ``text``: --data also takes text for a language model."""
    text_help = (f" | {TEXT_DATA} (the census names, one per line, for a language model) | {TEXT_DATA}:PATH "
                 f"(a UTF-8 text file) | {' | '.join(SEQ2SEQ_DATA)} (the sequel book's sets, for --model seq2seq)"
                 ) if text else ""
    parser.add_argument("--data", default=DEFAULT_DATA, metavar="DATA",
                        help=f"{' | '.join(DATA_NAMES)} | PATH.csv{text_help} (default %(default)s)")
    parser.add_argument("--target", metavar="COLUMN", help=target_help)


def add_network_options(parser, *, training):
    """--layers, --activation, --output-activation, --loss, --l2, --seed (train, lr-find and gradcheck); read
    them back with :func:`network_options`."""
    parser.add_argument("--layers", type=layer_sizes_option, metavar="SIZES",
                        help="every layer size, input and output included, comma-separated, e.g. 64,128,10; the "
                             "first must equal the data's feature count and the last its number of classes "
                             "(or target columns). Default: " + ("the data's recipe (digits: 64,128,10)"
                                                                 if training else "4,5,3"))
    parser.add_argument("--activation", type=name_in(ACTIVATIONS, "activation"),
                        default="relu" if training else "tanh",
                        help=f"hidden-layer activation: {', '.join(sorted(ACTIVATIONS))} (default %(default)s)")
    parser.add_argument("--output-activation", type=name_in(ACTIVATIONS, "activation"),
                        help="output activation (default: the one the loss implies, e.g. softmax)")
    parser.add_argument("--loss", type=name_in(LOSSES, "loss"),
                        help=f"loss: {', '.join(sorted(LOSSES))} (default: softmax_cross_entropy for classes, "
                             "mse for real-valued targets)")
    parser.add_argument("--l2", type=non_negative_float, default=0.0, help="L2 penalty on the weights (default 0)")
    parser.add_argument("--seed", type=integer_option(0), default=0,
                        help="seed of the initial weights" + (" and the batch order" if training else
                                                             " and the random data") + " (default 0)")


def network_options(args):
    """{name: value} of the options :func:`add_network_options` adds, named as NetworkSpec's fields."""
    return {"layers": args.layers, "activation": args.activation, "output_activation": args.output_activation,
            "loss": args.loss, "l2": args.l2, "seed": args.seed}
