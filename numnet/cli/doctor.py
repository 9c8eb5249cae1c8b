"""``numnet doctor``: the training doctor's findings on a saved model, its data and its saved history."""

import json

from numnet import plots
from numnet.doctor import diagnose
from numnet.models import Seq2Seq
from numnet.persistence import load_model

from .model import network_targets
from .reporting import print_findings
from .saved_model import (check_label_range, evaluation_data, is_language_model, language_model_description,
                          model_class_names, model_inputs, seq2seq_evaluation_data, text_evaluation_data)


def command_doctor(args):
    """Print the training doctor's findings on a saved model, its data and its saved history."""
    network = load_model(args.model)
    if isinstance(network, Seq2Seq):
        (X, Y), description = seq2seq_evaluation_data(args.data, network)
        X, y = network.teacher_forced(X, Y)
        shown = network.encoder_decoder.describe()
    elif is_language_model(network, args.data):
        X, y, description = text_evaluation_data(args.data, network)
        shown = language_model_description(network)
    else:
        X, y, description = _rows(network, args)
        shown = f"{network.layer_sizes}, loss {network.loss.name}"
    findings = diagnose(network, X, y, history=network.history)
    if args.json:
        print(json.dumps([finding.to_dict() for finding in findings], indent=2))
    else:
        print(f"model: {args.model} ({shown})")
        print(f"data: {description}")
        print_findings(findings)
    if args.plot:
        plots.plot_diagnosis(network, X, network.history, path=args.plot)
    return 0


def _rows(network, args):
    """(X, y, description): the data's rows as the model takes them, with targets in its loss's form."""
    X, y, description = evaluation_data(args.data, network, args.target)
    X = model_inputs(network, X, args.data)
    class_names = model_class_names(network)
    if class_names is not None:
        check_label_range(y, class_names)
        y = network_targets(network, y, len(class_names))
    return X, y, description


def add_parser(commands):
    """Add ``numnet doctor`` to the subparsers ``commands``."""
    doctor = commands.add_parser(
        "doctor", help="explain why a saved model did not learn",
        description="Examine a saved model on DATA (a data set name: its held-out test rows; a CSV file; for a "
                    "language model, text or text:PATH: the last 10%% of the text) "
                    "and its saved training history; print each finding with what it measured and what to change.")
    doctor.add_argument("model", metavar="MODEL")
    doctor.add_argument("data", metavar="DATA")
    doctor.add_argument("--target", metavar="COLUMN", help="label column of the CSV (default: the training one)")
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    doctor.add_argument("--plot", metavar="FILE.png", help="also write the diagnosis figure here")
    doctor.set_defaults(run=command_doctor)
