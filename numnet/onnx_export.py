"""ONNX export: a trained network as a standard ONNX model, runnable by ONNX Runtime and any other ONNX tool.

Every layer kind maps to standard ONNX operators at opset :data:`OPSET` through one table,
:data:`LAYER_EXPORTERS` (a user's own layer kind is added with :func:`register_onnx_exporter`), and every
activation through its own ``onnx_nodes`` method (:meth:`numnet.activations.Activation.onnx_nodes`):

====================  ========================================================================================
layer kind            ONNX operators
====================  ========================================================================================
dense                 MatMul, Add (without a bias: none), then its activation
activation            its activation: Relu, Sigmoid, Tanh, Softmax (last axis), Exp, identity for linear, and
                      leaky relu as Max(x, α·x) with α in the model's dtype (ONNX Runtime's LeakyRelu has no
                      float64 kernel; Max(x, α·x) is the same number, so float64 networks agree to rounding)
dropout               Identity (dropout is the identity at inference)
batch_norm            BatchNormalization in inference form (the running mean and variance)
conv2d                Conv, then its activation; in a float64 model Cast to float32, Conv with float32 copies of
                      W and b, Cast back (ONNX Runtime's CPU provider has no float64 Conv kernel), with one
                      PrecisionWarning per export
max_pool2d            MaxPool
flatten               Flatten (axis 1)
embedding             Gather (axis 0) of W's rows by the int64 ids
rnn lstm gru          ONNX's RNN (activation Tanh), LSTM and GRU (``linear_before_reset=1``, PyTorch's and
                      numnet's candidate gate), with the gate blocks reordered (:data:`ONNX_GATE_BLOCKS`),
                      after a Transpose to time-major order (ONNX Runtime runs only ``layout=0``), then a
                      Squeeze and a Transpose back of every step's h (``Y``) or, with
                      ``return_sequences=False``, a Squeeze of the last (``Y_h``). In a float64 model computed
                      in float32 between two Casts, like Conv (ONNX Runtime's CPU provider has no float64 RNN,
                      LSTM or GRU kernel)
sequential            its layers' nodes, one after the other
residual              its layers' nodes, then an Add of the input (the skip connection)
layer_norm            LayerNormalization over the last axis (Scale γ, and B β unless ``bias=False``)
position_embedding    an Add of the first T rows of W, a Slice whose end is read from the input's Shape
multi_head_attention  MatMul (and Add) to q, k, v; Split; Reshape and Transpose to (n, heads, T, head size);
                      MatMul of q and kᵀ, Mul by 1/√(head size); when causal a Where that gives every later
                      key the dtype's lowest value, over a mask built from Range (any T); Softmax; MatMul
                      with v; Transpose and Reshape back; the output MatMul (and Add)
gpt                   Gather of the token embedding's W, its layers' nodes, and the tied output: a MatMul with
                      the Transpose of the same W (stored once), then Softmax
====================  ========================================================================================

A recurrent layer exports as its stateless function: the ONNX operator starts from h₀ = 0 (and c₀ = 0),
as numnet's prediction does; a stateful layer's carried training state is not part of the model.

A network that reads sequences (its first layer an Embedding or a recurrent layer) takes inputs with a free
time axis, named ``time``: int64 token ids (batch, time) for an Embedding; its outputs are (batch, time,
n_outputs) when its last layer gives one row per time step.

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
#: The name of a sequence model's time dimension, left free in the graph (numnet's recurrent layers and
#: ONNX's take sequences of any length).
TIME_DIMENSION = "time"


class _Graph:
    """The ONNX graph being built: nodes, constants (initialisers), and fresh names for intermediate values."""

    def __init__(self, onnx, dtype):
        self.onnx = onnx
        self.dtype = np.dtype(dtype)
        self.nodes, self.constants = [], []
        self.float32_layers = {}  # layer name -> ONNX operator, for the layers a float64 graph computes in float32
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

    def node(self, op_type, inputs, hint=None, *, output_index=0, **attributes):
        """Add a node and return the name of its one output used, at ``output_index`` among the operator's
        outputs (the ones before it left out, as ONNX allows for optional outputs)."""
        output = self.name(hint or op_type.lower())
        outputs = [""] * output_index + [output]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), outputs, **attributes))
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
        z = _in_float32(graph, layer, x, _conv, "Conv")
    else:
        z = _conv(graph, layer, x, graph.dtype)
    return _activation(graph, z, layer.activation)


def _conv(graph, layer, x, dtype):
    """The Conv node of a Conv2D layer, its input and its W and b initialisers in ``dtype``."""
    inputs = [x, graph.constant(f"{layer.name}.W", layer.params["W"], dtype=dtype)]
    if "b" in layer.params:
        inputs.append(graph.constant(f"{layer.name}.b", layer.params["b"], dtype=dtype))
    return graph.node("Conv", inputs, hint=layer.name, **_window_attributes(layer))


def _in_float32(graph, layer, x, nodes, op_type):
    """A float64 graph's layer computed in float32 between two Casts, ``nodes(graph, layer, x, np.float32)``
    adding its operators with float32 constants: ONNX Runtime's CPU provider has no float64 kernel for
    ``op_type`` (Conv, RNN, LSTM, GRU), so a float64 node would make a model it refuses to load or run."""
    float32, float64 = graph.onnx.TensorProto.FLOAT, graph.onnx.TensorProto.DOUBLE
    narrowed = graph.node("Cast", [x], hint=f"{layer.name}.input_float32", to=float32)
    z = nodes(graph, layer, narrowed, np.float32)
    graph.float32_layers[layer.name] = op_type
    return graph.node("Cast", [z], hint=f"{layer.name}.output_float64", to=float64)


def _max_pool2d(graph, layer, x):
    # ONNX pads MaxPool with -inf, as numnet and PyTorch do: a padded cell never wins a window. ONNX Runtime's
    # CPU provider has a float64 MaxPool (unlike Conv), so it stays in the model's dtype.
    return graph.node("MaxPool", [x], hint=layer.name, **_window_attributes(layer))


def _flatten(graph, layer, x):
    return graph.node("Flatten", [x], hint=layer.name, axis=1)  # row-major (C, H, W), as numnet flattens


def _embedding(graph, layer, x):
    # Row ids[s, t] of W (vocab_size, dim): (n, T) int64 ids -> (n, T, dim), W as it is (ONNX's Gather data)
    return graph.node("Gather", [graph.constant(f"{layer.name}.W", layer.params["W"]), x], hint=layer.name, axis=0)


#: ONNX's operator for each recurrent layer kind.
RECURRENT_OPERATORS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
#: ONNX's gate blocks, in its order, as indices of numnet's (PyTorch's) blocks of H columns: LSTM i, o, f, c
#: from numnet's i, f, g, o (c is numnet's g); GRU z, r, h from r, z, n; RNN's one block.
ONNX_GATE_BLOCKS = {"rnn": (0,), "lstm": (0, 3, 1, 2), "gru": (1, 0, 2)}


def _recurrent(graph, layer, x):
    """ONNX's RNN, LSTM or GRU on ``x`` (n, T, input_size): (n, T, H), or (n, H) without return_sequences.

    ONNX Runtime runs only the time-major layout (``layout=0``: X (T, n, input_size), Y (T, 1, n, H), Y_h
    (1, n, H)), hence the Transposes and Squeezes around the operator."""
    time_major = graph.node("Transpose", [x], hint=f"{layer.name}.time_major", perm=[1, 0, 2])
    if graph.dtype == np.float64:
        # The Casts lie right around the operator, the Transposes outside them: ONNX Runtime 1.32's graph
        # optimisations crash (a segmentation fault) on a float32 Transpose, Cast to float64, MatMul (the
        # next Dense), so the float32 region never ends with a Transpose.
        h = _in_float32(graph, layer, time_major, _recurrent_operator, RECURRENT_OPERATORS[layer.kind])
    else:
        h = _recurrent_operator(graph, layer, time_major, graph.dtype)
    if not layer.return_sequences:  # Y_h (1, n, H) -> (n, H)
        return graph.node("Squeeze", [h, graph.constant("direction_axis", [0], dtype=np.int64)], hint=layer.name)
    squeezed = graph.node("Squeeze", [h, graph.constant("direction_axis", [1], dtype=np.int64)])  # (T, n, H)
    return graph.node("Transpose", [squeezed], hint=layer.name, perm=[1, 0, 2])  # (n, T, H)


def _recurrent_operator(graph, layer, time_major, dtype):
    """The layer's ONNX operator, its weights in ``dtype``: Y, every step's h, or with
    ``return_sequences=False`` Y_h, the last step's. No initial state is given, so the operator starts from
    zeros, as numnet's prediction does."""
    op_type = RECURRENT_OPERATORS[layer.kind]
    inputs = [time_major] + [graph.constant(f"{layer.name}.{key}", values, dtype=dtype)
                             for key, values in _onnx_recurrent_weights(layer).items()]
    attributes = {"hidden_size": layer.hidden_size}
    if op_type == "RNN":
        attributes["activations"] = ["Tanh"]
    if op_type == "GRU":
        attributes["linear_before_reset"] = 1  # r ⊙ (h·Whₙ + bhₙ): PyTorch's and numnet's candidate
    return graph.node(op_type, inputs, hint=layer.name, output_index=0 if layer.return_sequences else 1,
                      **attributes)


def _onnx_recurrent_weights(layer):
    """ONNX's W (1, blocks·H, input_size), R (1, blocks·H, H) and B (1, 2·blocks·H) = [Wb, Rb] of a recurrent
    layer: numnet's Wx and Wh transposed, every one with its gate blocks in ONNX's order."""
    order, H = ONNX_GATE_BLOCKS[layer.kind], layer.hidden_size
    params = {key: to_numpy(value) for key, value in layer.params.items()}
    input_bias = params[layer.input_bias]
    recurrent_bias = params.get("bh", np.zeros_like(input_bias))  # RNN and LSTM: one bias, b = Wb + Rb with Rb = 0
    return {"W": _reordered(params["Wx"], order, H).T[None],
            "R": _reordered(params["Wh"], order, H).T[None],
            "B": np.concatenate([_reordered(input_bias, order, H), _reordered(recurrent_bias, order, H)])[None]}


def _reordered(array, order, size):
    """``array``'s last axis, blocks of ``size`` columns, with its blocks taken in ``order``."""
    blocks = array.reshape(*array.shape[:-1], len(order), size)
    return blocks[..., list(order), :].reshape(array.shape)


#: How each layer kind becomes ONNX operators: a function (graph, layer, input name) -> output name.
# ---- transformers and layers made of layers ----------------------------------------------------------------


def _sequential(graph, layer, x):
    for child in layer.sublayers():
        x = _exported_layer(graph, child, x)
    return x


def _residual(graph, layer, x):
    # y = x + f(x): the children one after the other, then the skip connection's Add
    return graph.node("Add", [x, _sequential(graph, layer, x)], hint=layer.name)


def _layer_norm(graph, layer, x):
    inputs = [x, graph.constant(f"{layer.name}.gamma", layer.params["gamma"])]
    if "beta" in layer.params:
        inputs.append(graph.constant(f"{layer.name}.beta", layer.params["beta"]))
    return graph.node("LayerNormalization", inputs, hint=layer.name, axis=-1, epsilon=float(layer.eps))


def _time_steps(graph, x):
    """A one-element int64 tensor holding T, the time axis of ``x`` (n, T, ...), known only when it runs."""
    shape = graph.node("Shape", [x])
    return graph.node("Gather", [shape, graph.constant("time_axis", [1], np.int64)], axis=0)


def _position_embedding(graph, layer, x):
    # x + W[:T]: the first T rows of the (block_size, dim) table, T read from x's shape
    rows = graph.node("Slice", [graph.constant(f"{layer.name}.W", layer.params["W"]),
                                graph.constant("zero", [0], np.int64), _time_steps(graph, x),
                                graph.constant("axis_0", [0], np.int64)], hint=layer.name)
    return graph.node("Add", [x, rows], hint=layer.name)


def _multi_head_attention(graph, layer, x):
    """MatMul (and Add) to q, k, v; Split; Reshape and Transpose to (n, heads, T, head_size); the scaled
    scores, the causal mask as a Where over Range-built positions; Softmax; MatMul with v; back to (n, T, d)
    and the output projection."""
    d, heads = layer.dim, layer.n_heads
    qkv = _projection(graph, layer, x, "W_qkv", "b_qkv")
    parts = [graph.name(f"{layer.name}.{part}") for part in "qkv"]
    graph.nodes.append(graph.onnx.helper.make_node("Split", [qkv, graph.constant("split", [d, d, d], np.int64)],
                                                   parts, axis=-1))
    per_head = graph.constant("per_head", [0, 0, heads, d // heads], np.int64)  # 0: keep n and T
    q, k, v = (graph.node("Transpose", [graph.node("Reshape", [part, per_head])], perm=[0, 2, 1, 3])
               for part in parts)
    scores = graph.node("MatMul", [q, graph.node("Transpose", [k], perm=[0, 1, 3, 2])])
    scores = graph.node("Mul", [scores, graph.constant("scale", 1.0 / np.sqrt(d // heads))])
    if layer.causal:
        scores = _causal_mask(graph, scores, x)
    weights = graph.node("Softmax", [scores], axis=-1, hint=f"{layer.name}.weights")
    heads_out = graph.node("Transpose", [graph.node("MatMul", [weights, v])], perm=[0, 2, 1, 3])
    merged = graph.node("Reshape", [heads_out, graph.constant("merged", [0, 0, d], np.int64)])
    return _projection(graph, layer, merged, "W_o", "b_o")


def _projection(graph, layer, x, weight, bias):
    z = graph.node("MatMul", [x, graph.constant(f"{layer.name}.{weight}", layer.params[weight])], hint=layer.name)
    if bias in layer.params:
        z = graph.node("Add", [z, graph.constant(f"{layer.name}.{bias}", layer.params[bias])], hint=layer.name)
    return z


def _causal_mask(graph, scores, x):
    """``scores`` (n, heads, T, T) with every key after its query set to the dtype's lowest value, so that
    the softmax gives it a weight of exactly 0, as numnet's mask does; T read from x's shape."""
    steps = graph.node("Squeeze", [_time_steps(graph, x), graph.constant("axis_0", [0], np.int64)])
    positions = graph.node("Range", [graph.constant("zero", 0, np.int64), steps, graph.constant("one", 1, np.int64)])
    queries = graph.node("Unsqueeze", [positions, graph.constant("last", [1], np.int64)])  # (T, 1)
    later = graph.node("Greater", [positions, queries])  # [t, s]: key s comes after query t
    return graph.node("Where", [later, graph.constant("lowest", np.finfo(graph.dtype).min), scores])


def _gpt(graph, layer, x):
    """The GPT's layers one after the other (the token embedding a Gather), then its tied output: a MatMul
    with the token embedding's matrix transposed (the same constant, once), and the softmax."""
    token_embedding, *rest = layer.sublayers()
    W_te = graph.constant(f"{token_embedding.name}.W", token_embedding.params["W"])
    h = graph.node("Gather", [W_te, x], hint=token_embedding.name, axis=0)
    for child in rest:
        h = _exported_layer(graph, child, h)
    logits = graph.node("MatMul", [h, graph.node("Transpose", [W_te], perm=[1, 0])], hint=layer.name)
    return _activation(graph, logits, layer.activation)


def _exported_layer(graph, layer, x):
    """``layer``'s ONNX nodes after ``x``, by its kind's exporter."""
    exporter = LAYER_EXPORTERS.get(layer.kind)
    if exporter is None:
        raise ValueError(f"no ONNX form for layer {layer.name} of kind {layer.kind!r}; numnet exports: "
                         f"{', '.join(sorted(LAYER_EXPORTERS))} (add one with register_onnx_exporter)")
    return exporter(graph, layer, x)


LAYER_EXPORTERS = {"dense": _dense, "activation": _activation_layer, "dropout": _dropout, "batch_norm": _batch_norm,
                   "conv2d": _conv2d, "max_pool2d": _max_pool2d, "flatten": _flatten, "embedding": _embedding,
                   "rnn": _recurrent, "lstm": _recurrent, "gru": _recurrent, "sequential": _sequential,
                   "residual": _residual, "layer_norm": _layer_norm, "position_embedding": _position_embedding,
                   "multi_head_attention": _multi_head_attention, "gpt": _gpt}


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
        in the network's dtype, except a float64 network's convolutions and recurrent layers: see Warns).
        A network that reads sequences takes inputs of any length: the graph's time axis is free.
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
        For a layer kind or activation with no ONNX form (the message lists those numnet has), or a
        scaler in the metadata of a network that takes token ids.

    Warns
    -----
    numnet.PrecisionWarning
        Once, for a float64 network with Conv2D, RNN, LSTM or GRU layers: they run in float32 in the model
        (ONNX Runtime's CPU provider has no float64 Conv, RNN, LSTM or GRU kernel), so its outputs agree
        with numnet's to float32 rounding.
    """
    onnx = require("onnx", "onnx", "exporting to ONNX")
    if not isinstance(network, Network):
        raise TypeError(f"to_onnx needs a numnet Network, got {type(network).__name__}")
    metadata = dict(getattr(network, "metadata", None) or {}) if metadata is None else dict(metadata)
    graph = _Graph(onnx, network.dtype)
    x = _scaled_input(graph, network, metadata.get("scaler"))
    for layer in network.layers:
        x = _exported_layer(graph, layer, x)
    _warn_of_float32_layers(graph)
    outputs = _outputs(graph, network, x, metadata.get("class_names"), _leading_dimensions(network))
    model = _model(onnx, graph, network, outputs, metadata)
    onnx.checker.check_model(model)
    if path is not None:
        serialized = model.SerializeToString()
        write_atomically(path, lambda stream: stream.write(serialized))
    return model


def _warn_of_float32_layers(graph):
    """One PrecisionWarning for the whole export, naming every layer the graph computes in float32."""
    if graph.float32_layers:
        operators = " or ".join(dict.fromkeys(graph.float32_layers.values()))  # each once, in layer order
        warnings.warn(f"the exported float64 model computes {', '.join(graph.float32_layers)} in float32 (Cast to "
                      f"float32 and back around each {operators}), because ONNX Runtime's CPU provider has no "
                      f"float64 {operators} kernel; its outputs agree with numnet's to float32 rounding, not "
                      "float64's. Export network.copy(dtype='float32') for a float32 model throughout",
                      PrecisionWarning, stacklevel=3)


def _scaled_input(graph, network, record):
    """The graph's input, standardised with the model's saved scaler (its metadata record) when it has one."""
    scaler = scaler_from_metadata(record)
    if scaler is None:
        return INPUT_NAME
    if network.layers[0].takes_token_ids:
        raise ValueError("the metadata holds a scaler, but the network takes integer token ids, which are not "
                         "scaled; export it with metadata that has no 'scaler' record")
    centred = graph.node("Sub", [INPUT_NAME, graph.constant("scaler.mean", scaler.mean)])
    return graph.node("Div", [centred, graph.constant("scaler.scale", scaler.scale)], hint="scaled_input")


def _outputs(graph, network, output, class_names, rows):
    """[(name, element type, shape)] of the graph's outputs, after adding the nodes of ``label``; ``rows``
    are the output's dimensions before the last, the outputs' own (a sample's, or a time step's)."""
    onnx, element = graph.onnx, graph.onnx.helper.np_dtype_to_tensor_dtype(graph.dtype)
    n_outputs = network.n_outputs
    if not network.is_classifier:
        graph.nodes.append(onnx.helper.make_node("Identity", [output], ["predictions"]))
        return [("predictions", element, [*rows, n_outputs])]
    graph.nodes.append(onnx.helper.make_node("Identity", [output], ["probabilities"]))
    one_per_row = network.loss.fused_activation == "softmax"
    if one_per_row:
        label, shape = graph.node("ArgMax", [output], axis=-1, keepdims=0), rows
    else:  # sigmoid outputs: 0/1 per output, as Network.predict gives them
        above = graph.node("Greater", [output, graph.constant("decision_threshold", DECISION_THRESHOLD)])
        label, shape = graph.node("Cast", [above], to=onnx.TensorProto.INT64), [*rows, n_outputs]
    label_type = onnx.TensorProto.INT64
    if class_names and (one_per_row or n_outputs == 1):
        if not one_per_row:  # one sigmoid output: its 0/1 is the index of the class name
            label = graph.node("Squeeze", [label, graph.constant("output_axis", [-1], dtype=np.int64)])
        label, shape, label_type = graph.node("Gather", [graph.strings("class_names", class_names), label]), \
            rows, onnx.TensorProto.STRING
    graph.nodes.append(onnx.helper.make_node("Identity", [label], ["label"]))
    return [("probabilities", element, [*rows, n_outputs]), ("label", label_type, shape)]


def _reads_sequences(network):
    """Whether the network's input is a sequence of any length: its first layer an Embedding or recurrent."""
    first = network.layers[0]
    return first.takes_token_ids or first.kind in RECURRENT_OPERATORS


def _input_shape(network):
    """The graph input's shape: the batch, then one sample's shape, a sequence model's time axis left free
    (a Network fixes its time steps at the first data it sees, the ONNX graph need not)."""
    shape = list(network.input_shape or (None,))
    if _reads_sequences(network):
        shape[0] = TIME_DIMENSION
    return [BATCH_DIMENSION, *(size if size is not None else f"size_{index}" for index, size in enumerate(shape))]


def _leading_dimensions(network):
    """The output's dimensions before its last: (batch, time) for a sequence model's output per time step,
    (batch,) otherwise."""
    if _reads_sequences(network) and len(network.output_shapes[-1]) == 2:
        return [BATCH_DIMENSION, TIME_DIMENSION]
    return [BATCH_DIMENSION]


def _model(onnx, graph, network, outputs, metadata):
    from . import __version__  # the package's own version; imported here so no import cycle can form

    helper = onnx.helper
    element = helper.np_dtype_to_tensor_dtype(graph.dtype)
    input_element = onnx.TensorProto.INT64 if network.layers[0].takes_token_ids else element
    onnx_graph = helper.make_graph(
        graph.nodes, "numnet", [helper.make_tensor_value_info(INPUT_NAME, input_element, _input_shape(network))],
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


__all__ = ["OPSET", "LAYER_EXPORTERS", "RECURRENT_OPERATORS", "ONNX_GATE_BLOCKS", "register_onnx_exporter",
           "to_onnx"]
