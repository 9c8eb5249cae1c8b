"""``numnet evaluate``: the loss, accuracy and per-class report of a saved model on a data set or CSV file."""

import numpy as np

from numnet.metrics import classification_report, perplexity, predicted_classes
from numnet.models import Seq2Seq
from numnet.persistence import load_model

from .model import network_targets, takes_images
from .saved_model import (check_label_range, evaluation_data, is_language_model, language_model_description,
                          model_class_names, model_inputs, seq2seq_evaluation_data, text_evaluation_data)


def command_evaluate(args):
    """Print the loss, accuracy and per-class report of a saved model on a data set or CSV file; a language
    model's loss, perplexity and accuracy per token on a text's held-out tail."""
    network = load_model(args.model)
    if isinstance(network, Seq2Seq):
        return _evaluate_seq2seq(network, args)
    if is_language_model(network, args.data):
        return _evaluate_language_model(network, args)
    X, y, description = evaluation_data(args.data, network, args.target)
    X = model_inputs(network, X, args.data)
    shape = f"images {network.input_shape}, " if takes_images(network) else ""
    print(f"model: {args.model} ({shape}{network.layer_sizes}, loss {network.loss.name})")
    print(f"data: {description}")
    class_names = model_class_names(network)
    if class_names is None:
        outputs = network.forward(X)
        rmse = float(np.sqrt(np.mean((outputs - y) ** 2)))
        print(f"loss: {network.loss_value(X, y):.4f}   RMSE: {rmse:.4f}")
        return 0
    check_label_range(y, class_names)
    loss = network.loss_value(X, network_targets(network, y, len(class_names)))
    predicted = predicted_classes(network.forward(X))
    correct = int(np.sum(predicted == y))
    print(f"loss: {loss:.4f}   accuracy: {correct / y.size:.4f} ({correct} of {y.size})")
    print(classification_report(y, predicted, class_names))
    return 0


def _evaluate_seq2seq(network, args):
    """The teacher-forced loss and accuracy per token, and the exact match of greedy answers, on the test set."""
    (X, Y), description = seq2seq_evaluation_data(args.data, network)
    inputs, targets = network.teacher_forced(X, Y)
    print(f"model: {args.model} ({network.encoder_decoder.describe()}, {len(network.vocabulary)} ids)")
    print(f"data: {description}")
    print(f"loss: {network.loss_value(inputs, targets):.4f}   accuracy per token: {network.accuracy(inputs, targets):.4f}"
          f"   exact match: {network.exact_match(X, Y):.4f}")
    return 0


def _evaluate_language_model(network, args):
    """The loss, perplexity and accuracy per token on the held-out windows of the text args.data."""
    X, y, description = text_evaluation_data(args.data, network)
    print(f"model: {args.model} ({language_model_description(network)})")
    print(f"data: {description}")
    loss = network.loss_value(X, y)
    print(f"loss: {loss:.4f}   perplexity: {perplexity(loss - network.penalty()):.3f} (a uniform guess: "
          f"{len(network.vocabulary)})   accuracy per token: {network.accuracy(X, y):.4f}")
    return 0


def add_parser(commands):
    """Add ``numnet evaluate`` to the subparsers ``commands``."""
    evaluate = commands.add_parser(
        "evaluate", help="evaluate a saved model", description="Print the loss, accuracy and per-class report "
        "of a saved model. DATA is a data set name (evaluated on the held-out 20%% that train kept aside) or a "
        "CSV file (all of its rows); for a language model, text or text:PATH (evaluated on the last 10%% of the "
        "text, the part train held out): its loss, perplexity and accuracy per token; for a seq2seq model, addition or "
        "dates (their test questions): its loss and accuracy per token, and the exact match of its answers.")
    evaluate.add_argument("model", metavar="MODEL")
    evaluate.add_argument("data", metavar="DATA")
    evaluate.add_argument("--target", metavar="COLUMN", help="label column of the CSV (default: the training one)")
    evaluate.set_defaults(run=command_evaluate)
