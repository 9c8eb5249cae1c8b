"""``numnet predict``: a saved model's predictions for the rows of a features CSV, as a CSV."""

import csv
import io
import sys

from numnet import datasets
from numnet.atomic import write_text_atomically
from numnet.metrics import class_scores, predicted_classes
from numnet.persistence import load_model

from .saved_model import model_class_names, model_inputs


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
    class_names = model_class_names(network)
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
    if network.vocabulary is not None:
        raise ValueError(f"{args.model} is a language model: it reads text, not rows of features; sample from it "
                         "with `numnet generate MODEL`, or score it with `numnet evaluate MODEL text:PATH`")
    X = model_inputs(network, read_feature_rows(args.input, network), args.input)
    table = prediction_table(network, X)
    if args.output is None:
        sys.stdout.write(table)
    else:
        path = write_text_atomically(args.output, table)
        print(f"{X.shape[0]} predictions written to {path}")
    return 0


def add_parser(commands):
    """Add ``numnet predict`` to the subparsers ``commands``."""
    predict = commands.add_parser(
        "predict", help="predict with a saved model", description="Predict the rows of a CSV of features "
        "(with or without a header). Writes a CSV: the predicted class and one probability column per class "
        "(or the predicted values of a regression model).")
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("input", metavar="INPUT.csv")
    predict.add_argument("--output", metavar="FILE", help="write the predictions here (default: standard output)")
    predict.set_defaults(run=command_predict)
