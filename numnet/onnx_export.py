"""ONNX export: a trained network as a standard ONNX model, runnable by ONNX Runtime and any other ONNX tool.

Every layer kind maps to standard ONNX operators at opset :data:`OPSET` through one table,
:data:`LAYER_EXPORTERS` (a user's own layer kind is added with :func:`register_onnx_exporter`), and every
activation through its own ``onnx_nodes`` method (:meth:`numnet.activations.Activation.onnx_nodes`):

=============  ======================================================================================
layer kind     ONNX operators
=============  ======================================================================================
dense          MatMul, Add (without a bias: none), then its activation
activation     its activation: Relu, Sigmoid, Tanh, Softmax (last axis), Exp, identity for linear, and
               leaky relu as Max(x, α·x) with α in the model's dtype (ONNX Runtime's LeakyRelu has no
               float64 kernel; Max(x, α·x) is the same number, so float64 networks agree to rounding)
dropout        Identity (dropout is the identity at inference)
batch_norm     BatchNormalization in inference form (the running mean and variance)
conv2d         Conv, then its activation; in a float64 model Cast to float32, Conv with float32 copies of
               W and b, Cast back (ONNX Runtime's CPU provider has no float64 Conv kernel), with one
               PrecisionWarning per export
max_pool2d     MaxPool
flatten        Flatten (axis 1)
=============  ======================================================================================

A model trained by ``numnet train`` carries its input scaling (metadata "scaler") and class names; the
exported graph then starts with the scaling, so it takes raw features, and its ``label`` output gives
class names. Outputs: ``probabilities`` (what ``predict_proba`` returns) and ``label`` (what ``predict``
returns, or the class names it indexes) for classifiers; ``predictions`` for regression networks.

onnx is an optional extra (``pip install 'numnet[onnx]'``), imported only when a model is exported.
"""

import json
import warnings

import numpy as np

from .atomic import write_atomically
from .backend import to_numpy
from .errors import PrecisionWarning, require
from .metrics import DECISION_THRESHOLD
from .network import Network
from .preprocessing import scaler_from_metadata

#: The ONNX operator set the graph uses: 17 (ONNX 1.12, 2022) has every operator above in its current form
#: (Softmax over one axis, Squeeze taking its axes as an input) and every ONNX Runtime since 1.12 runs it.
OPSET = 17
#: The ONNX file format (IR) version matching opset 17.
IR_VERSION = 8
INPUT_NAME = "input"
#: The name of the batch dimension, left free in the graph.
BATCH_DIMENSION = "batch"


class _Graph:
    """The ONNX graph being built: nodes, constants (initialisers), and fresh names for intermediate values."""

    def __init__(self, onnx, dtype):
        self.onnx = onnx
        self.dtype = np.dtype(dtype)
        self.nodes, self.constants = [], []
        self.float32_layers = []  # names of the layers computed in float32 in a float64 graph
        self._count = 0

    def name(self, hint):
        self._count += 1
        return f"{hint}_{self._count}"

    def constant(self, hint, values, dtype=None):
        """Add a constant tensor (in the model's dtype unless given) and return its name."""
        values = to_numpy(values) if hasattr(values, "__array_namespace__") else values
        array = np.asarray(values, dtype=dtype or self.dtype)
        name = self.name(hint)
        self.constants.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def strings(self, hint, values):
        """Add a constant tensor of strings and return its name."""
        name = self.name(hint)
        self.constants.append(self.onnx.helper.make_tensor(
            name, self.onnx.TensorProto.STRING, [len(values)], [str(value).encode("utf-8") for value in values]))
        return name

    def node(self, op_type, inputs, hint=None, **attributes):
        """Add a node with one output and return the output's name."""
        output = self.name(hint or op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [output], **attributes))
        return output


# ---- activations -----------------------------------------------------------------------------------------


def _activation(graph, x, activation):
    """The activation's own ONNX operators (its ``onnx_nodes``) after ``x``; ``x`` itself without one."""
    return x if activation is None else activation.onnx_nodes(graph, x)


# ---- layers ----------------------------------------------------------------------------------------------


def _dense(graph, layer, x):
    z = graph.node("MatMul", [x, graph.constant(f"{layer.name}.W", layer.params["W"])], hint=layer.name)
    if "b" in layer.params:  # Dense(bias=False), before a BatchNorm, has none
        z = graph.node("Add", [z, graph.constant(f"{layer.name}.b", layer.params["b"])], hint=layer.name)
    return _activation(graph, z, layer.activation)


def _activation_layer(graph, layer, x):
    return _activation(graph, x, layer.activation)


def _dropout(graph, layer, x):
    return graph.node("Identity", [x], hint=layer.name)


def _batch_norm(graph, layer, x):
    inputs = [x] + [graph.constant(f"{layer.name}.{key}", source[key])
                    for source, key in ((layer.params, "gamma"), (layer.params, "beta"),
                                        (layer.state, "running_mean"), (layer.state, "running_var"))]
    return graph.node("BatchNormalization", inputs, hint=layer.name, epsilon=float(layer.eps))


def _window_attributes(layer):
    """ONNX's kernel_shape, strides and pads (begin then end of each axis) of a Conv2D or MaxPool2D."""
    height_pad, width_pad = layer.padding
    return {"kernel_shape": list(layer.kernel_size), "strides": list(layer.stride),
            "pads": [height_pad, width_pad, height_pad, width_pad]}


def _conv2d(graph, layer, x):
    # W is (out_channels, in_channels, kh, kw), ONNX's own layout; numnet's convolution is ONNX's (a
    # cross-correlation, no kernel flip), zero padding, dilation 1.
    if graph.dtype == np.float64:
        z = _conv_in_float32(graph, layer, x)
    else:
        z = _conv(graph, layer, x, graph.dtype)
    return _activation(graph, z, layer.activation)


def _conv(graph, layer, x, dtype):
    """The Conv node of a Conv2D layer, its input and its W and b initialisers in ``dtype``."""
    inputs = [x, graph.constant(f"{layer.name}.W", layer.params["W"], dtype=dtype)]
    if "b" in layer.params:
        inputs.append(graph.constant(f"{layer.name}.b", layer.params["b"], dtype=dtype))
    return graph.node("Conv", inputs, hint=layer.name, **_window_attributes(layer))


def _conv_in_float32(graph, layer, x):
    """A float64 graph's Conv, computed in float32 between two Casts: ONNX Runtime's CPU provider has no
    float64 Conv kernel, so a float64 Conv node makes a model it refuses to load."""
    float32, float64 = graph.onnx.TensorProto.FLOAT, graph.onnx.TensorProto.DOUBLE
    narrowed = graph.node("Cast", [x], hint=f"{layer.name}.input_float32", to=float32)
    z = _conv(graph, layer, narrowed, np.float32)
    graph.float32_layers.append(layer.name)
    return graph.node("Cast", [z], hint=f"{layer.name}.output_float64", to=float64)


def _max_pool2d(graph, layer, x):
    # ONNX pads MaxPool with -inf, as numnet and PyTorch do: a padded cell never wins a window. ONNX Runtime's
    # CPU provider has a float64 MaxPool (unlike Conv), so it stays in the model's dtype.
    return graph.node("MaxPool", [x], hint=layer.name, **_window_attributes(layer))


def _flatten(graph, layer, x):
    return graph.node("Flatten", [x], hint=layer.name, axis=1)  # row-major (C, H, W), as numnet flattens


#: How each layer kind becomes ONNX operators: a function (graph, layer, input name) -> output name.
LAYER_EXPORTERS = {"dense": _dense, "activation": _activation_layer, "dropout": _dropout, "batch_norm": _batch_norm,
                   "conv2d": _conv2d, "max_pool2d": _max_pool2d, "flatten": _flatten}


def register_onnx_exporter(kind, exporter):
    """Teach :func:`to_onnx` a layer kind of your own.

    Parameters
    ----------
    kind : str
        The layer's ``kind``.
    exporter : callable
        ``exporter(graph, layer, input_name) -> output_name``; ``graph.node(op_type, inputs, **attributes)``
        adds an operator and ``graph.constant(hint, array)`` a tensor, each returning the new value's name.
    """
    if not callable(exporter):
        raise TypeError(f"exporter must be a function (graph, layer, input_name) -> output_name, got {exporter!r}")
    LAYER_EXPORTERS[str(kind)] = exporter
    return exporter


# ---- the model -------------------------------------------------------------------------------------------


def to_onnx(network, path=None, *, metadata=None):
    """Export ``network`` as an ONNX model, and write it to ``path`` when given (atomically).

    Parameters
    ----------
    network : Network
        Any network whose layer kinds are in LAYER_EXPORTERS, in float32 or float64 (the graph computes
        in the network's dtype, except a float64 network's convolutions: see Warns).
    path : str or os.PathLike, optional
    metadata : dict, optional
        The model's metadata; default ``network.metadata`` (what load_model read, e.g. from ``numnet
        train``). Its "scaler" (``{"type": "standard", "mean", "scale"}``) puts the input scaling at the
        start of the graph, and its "class_names" make the ``label`` output give names.

    Returns
    -------
    onnx.ModelProto

    Raises
    ------
    numnet.MissingDependencyError
        When onnx is not installed.
    TypeError
        When ``network`` is not a Network.
    ValueError
        For a layer kind or activation with no ONNX form (the message lists those numnet has).

    Warns
    -----
    numnet.PrecisionWarning
        Once, for a float64 network with Conv2D layers: their convolutions run in float32 in the model
        (ONNX Runtime's CPU provider has no float64 Conv kernel), so its outputs agree with numnet's to
        float32 rounding.
    """
    onnx = require("onnx", "onnx", "exporting to ONNX")
    if not isinstance(network, Network):
        raise TypeError(f"to_onnx needs a numnet Network, got {type(network).__name__}")
    metadata = dict(getattr(network, "metadata", None) or {}) if metadata is None else dict(metadata)
    graph = _Graph(onnx, network.dtype)
    x = _scaled_input(graph, metadata.get("scaler"))
    for layer in network.layers:
        exporter = LAYER_EXPORTERS.get(layer.kind)
        if exporter is None:
            raise ValueError(f"no ONNX form for layer {layer.name} of kind {layer.kind!r}; numnet exports: "
                             f"{', '.join(sorted(LAYER_EXPORTERS))} (add one with register_onnx_exporter)")
        x = exporter(graph, layer, x)
    _warn_of_float32_layers(graph)
    outputs = _outputs(graph, network, x, metadata.get("class_names"))
    model = _model(onnx, graph, network, outputs, metadata)
    onnx.checker.check_model(model)
    if path is not None:
        serialized = model.SerializeToString()
        write_atomically(path, lambda stream: stream.write(serialized))
    return model


def _warn_of_float32_layers(graph):
    """One PrecisionWarning for the whole export, naming every layer the graph computes in float32."""
    if graph.float32_layers:
        warnings.warn(f"the exported float64 model computes the convolutions of {', '.join(graph.float32_layers)} "
                      "in float32 (Cast to float32 and back around each Conv), because ONNX Runtime's CPU "
                      "provider has no float64 Conv kernel; its outputs agree with numnet's to float32 "
                      "rounding, not float64's. Export network.copy(dtype='float32') for a float32 model "
                      "throughout", PrecisionWarning, stacklevel=3)


def _scaled_input(graph, record):
    """The graph's input, standardised with the model's saved scaler (its metadata record) when it has one."""
    scaler = scaler_from_metadata(record)
    if scaler is None:
        return INPUT_NAME
    centred = graph.node("Sub", [INPUT_NAME, graph.constant("scaler.mean", scaler.mean)])
    return graph.node("Div", [centred, graph.constant("scaler.scale", scaler.scale)], hint="scaled_input")


def _outputs(graph, network, output, class_names):
    """[(name, element type, shape)] of the graph's outputs, after adding the nodes of ``label``."""
    onnx, element = graph.onnx, graph.onnx.helper.np_dtype_to_tensor_dtype(graph.dtype)
    n_outputs = network.n_outputs
    if not network.is_classifier:
        graph.nodes.append(onnx.helper.make_node("Identity", [output], ["predictions"]))
        return [("predictions", element, [BATCH_DIMENSION, n_outputs])]
    graph.nodes.append(onnx.helper.make_node("Identity", [output], ["probabilities"]))
    if network.loss.fused_activation == "softmax":
        label, shape = graph.node("ArgMax", [output], axis=1, keepdims=0), [BATCH_DIMENSION]
    else:  # sigmoid outputs: 0/1 per output, as Network.predict gives them
        above = graph.node("Greater", [output, graph.constant("decision_threshold", DECISION_THRESHOLD)])
        label, shape = graph.node("Cast", [above], to=onnx.TensorProto.INT64), [BATCH_DIMENSION, n_outputs]
    label_type = onnx.TensorProto.INT64
    if class_names and (len(shape) == 1 or n_outputs == 1):
        if len(shape) == 2:  # one sigmoid output: its 0/1 is the index of the class name
            label = graph.node("Squeeze", [label, graph.constant("output_axis", [1], dtype=np.int64)])
        label, shape, label_type = graph.node("Gather", [graph.strings("class_names", class_names), label]), \
            [BATCH_DIMENSION], onnx.TensorProto.STRING
    graph.nodes.append(onnx.helper.make_node("Identity", [label], ["label"]))
    return [("probabilities", element, [BATCH_DIMENSION, n_outputs]), ("label", label_type, shape)]


def _model(onnx, graph, network, outputs, metadata):
    from . import __version__  # the package's own version; imported here so no import cycle can form

    helper = onnx.helper
    element = helper.np_dtype_to_tensor_dtype(graph.dtype)
    input_shape = [BATCH_DIMENSION, *(size if size is not None else f"size_{index}"
                                      for index, size in enumerate(network.input_shape or (None,)))]
    onnx_graph = helper.make_graph(
        graph.nodes, "numnet", [helper.make_tensor_value_info(INPUT_NAME, element, input_shape)],
        [helper.make_tensor_value_info(name, kind, shape) for name, kind, shape in outputs], graph.constants)
    model = helper.make_model(onnx_graph, producer_name="numnet", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", OPSET)],
                              doc_string=f"numnet network {network.layer_sizes}, loss {network.loss.name}")
    model.ir_version = IR_VERSION
    properties = {"layers": json.dumps([layer.describe() for layer in network.layers])}
    if metadata.get("class_names"):
        properties["class_names"] = json.dumps([str(name) for name in metadata["class_names"]])
    helper.set_model_props(model, properties)
    return model


__all__ = ["OPSET", "LAYER_EXPORTERS", "register_onnx_exporter", "to_onnx"]
