"""``numnet export``: a saved model as an ONNX file."""

from numnet.onnx_export import OPSET, to_onnx
from numnet.persistence import load_model


def command_export(args):
    """Write a saved model as an ONNX file."""
    network = load_model(args.model)
    to_onnx(network, args.onnx)
    scaled = "raw features, scaled inside the graph" if (network.metadata or {}).get("scaler") else "features"
    outputs = "probabilities, label" if network.is_classifier else "predictions"
    print(f"exported {args.model} to {args.onnx} (ONNX opset {OPSET}): input 'input' ({scaled}), outputs {outputs}")
    return 0


def add_parser(commands):
    """Add ``numnet export`` to the subparsers ``commands``."""
    export = commands.add_parser(
        "export", help="export a saved model to ONNX",
        description=f"Write MODEL.npz as an ONNX model (opset {OPSET}); a model from `numnet train` takes raw "
                    "features and outputs probabilities and the class label.")
    export.add_argument("model", metavar="MODEL.npz")
    export.add_argument("onnx", metavar="MODEL.onnx")
    export.set_defaults(run=command_export)
