"""Network: a stack of layers, its forward pass, its backward pass (BP1-BP4), and named parameters.

All parameters live in one flat buffer and all gradients in another; each layer's parameters are views
into them. Optimisers then update every parameter with a handful of whole-buffer operations instead of a
loop over layers, and a data-parallel run can average all gradients with one message (benchmarks/NOTES.md,
"flat parameter buffer"). Non-trainable layer state (BatchNorm's running statistics) lives in a third flat
buffer, which optimisers and penalties never see.

The network talks to its layers only through the Layer contract (numnet/layers.py): any layer fits.
"""

import copy
import math

import numpy as np

from .backend import (as_float_array, as_float_matrix, as_numeric_array, as_token_ids, get_backend, namespace,
                      resolve_dtype, squared_norm, to_numpy)
from .activations import get_activation
from .inputs import check_same_rows, count_rows, is_multiple
from .layers import Activation, BatchNorm, Dense, Dropout, Layer, auto_weight_init, get_layer_class, named_layers
from .losses import DEFAULT_LOSS_FOR_OUTPUT, get_loss
from .metrics import batch_accuracy, outputs_to_predictions
from .targets import as_sample_weights, as_targets
from .validation import Boolean, Real, Seed, check_integer, declare


class Network:
    """A neural network: a stack of layers trained by backpropagation.

    Build a multi-layer perceptron from layer sizes::

        net = Network([2, 50, 50, 3], activation="relu", output_activation="softmax", seed=0)
        net = Network([64, 128, 10], output_activation="softmax", dropout=0.2, batch_norm=True)

    or from explicit layers (any :class:`numnet.Layer`)::

        net = Network(layers=[Dense(2, 50), BatchNorm(50), Activation("relu"), Dropout(0.1),
                              Dense(50, 3, "softmax")])

    Parameters
    ----------
    layer_sizes : sequence of int, optional
        Input size, hidden sizes, output size, e.g. ``[784, 100, 10]``.
    layers : sequence of Layer, optional
        Instead of ``layer_sizes``: the layers themselves; each must take what the one before it gives
        (checked through ``Layer.output_shape``).
    activation : str or activation function, default "relu"
        Hidden-layer activation (with ``layer_sizes``).
    output_activation : str or activation function, optional
        Output activation (with ``layer_sizes``); by default the one the loss implies (softmax for softmax
        cross-entropy, sigmoid for binary cross-entropy, linear for mean squared error).
    loss : str or Loss, optional
        By default the loss the output activation implies (with ``layers``, the last layer's activation):
        softmax cross-entropy for softmax, binary cross-entropy for sigmoid, mean squared error otherwise.
    weight_init : str or Initializer, default "auto"
        "auto": He for relu-like layers, Xavier otherwise.
    bias_init : float, str or Initializer, default 0.0
    dropout : float in [0, 1), default 0.0
        With ``layer_sizes``: a Dropout layer of this rate after every hidden layer.
    batch_norm : bool, default False
        With ``layer_sizes``: every hidden layer becomes Dense (linear) → BatchNorm → Activation, the order
        of the classic course.
    l2 : float, default 0.0
        L2 penalty λ: the loss gains ½·λ·Σ‖W‖² over the penalised parameters (the weight matrices) and
        each of their gradients gains λ·W; biases, BatchNorm's γ and β are not penalised.
    l1 : float, default 0.0
        L1 penalty: the loss gains l1·Σ|W| and each penalised gradient l1·sign(W).
    input_shape : tuple of int, optional
        One sample's shape, e.g. (1, 28, 28) for a convolutional network, when the first layer does not fix
        it; without it the data decides at the first call.
    dtype : {"float32", "float64"}, default "float32"
    seed : int or numpy.random.Generator, optional
        Seeds the initial weights; the same seed gives bit-identical weights.
    backend : str or Backend, optional
        The array library that holds the parameters and does the math: "numpy" (default), "cupy" (GPU) or
        any array-API library such as "array_api_strict"; default from ``$NUMNET_BACKEND``. Inputs move
        to it once per call; public results come back as NumPy arrays.

    Raises
    ------
    ValueError
        For layers that do not fit together, unknown names, or a loss that cannot pair with the output.
    TypeError
        For something in ``layers`` that is not a Layer.
    """

    #: The name a saved file gives the model's class (numnet.models' classes have their own): see MODELS.
    model_kind = "network"

    @declare(dropout=Real(at_least=0, below=1, meaning="the probability of dropping a unit"),
             batch_norm=Boolean(), l2=Real(at_least=0), l1=Real(at_least=0), seed=Seed())
    def __init__(self, layer_sizes=None, *, layers=None, activation="relu", output_activation=None, loss=None,
                 weight_init="auto", bias_init=0.0, dropout=0.0, batch_norm=False, l2=0.0, l1=0.0,
                 input_shape=None, dtype=None, seed=None, backend=None):
        self.dtype = resolve_dtype(dtype)
        self.backend = get_backend(backend)
        self.l2 = l2
        self.l1 = l1
        if (layer_sizes is None) == (layers is None):
            raise ValueError("give exactly one of layer_sizes (e.g. [2, 50, 3]) or layers (a list of layers)")
        if layers is None:
            output_activation, self.loss = _resolve_output_and_loss(output_activation, loss)
            layers = dense_stack(layer_sizes, activation=activation, output_activation=output_activation,
                                 weight_init=weight_init, bias_init=bias_init, dropout=dropout,
                                 batch_norm=batch_norm)
        else:
            _check_unused_with_layers(output_activation=output_activation, dropout=dropout, batch_norm=batch_norm)
            layers = list(layers)
            self.loss = _loss_for_layers(layers, loss)
        self.layers = named_layers(layers, "layers")
        self._check_output_pairing()
        self._declared_input_shape = _declared_input_shape(input_shape, self.layers)
        self._output_shapes = self._infer_shapes(self._declared_input_shape)
        self._allocate_buffers()
        self.initialize(seed)
        self._training_output = None
        #: Set by ``fit``: the optimiser (with its state) and the progress through training, so that a
        #: second call, or a run loaded from a checkpoint, continues where the last one stopped.
        self.optimizer = None
        self.history = None  # the History of every fit so far, appended to by each call
        self.training_seed = None
        #: A language model's numnet.text.Vocabulary (its ids' symbols), saved with it; None for other models.
        self.vocabulary = None
        self.epochs_trained = 0
        self.iterations_trained = 0

    # ---- construction --------------------------------------------------------------------------------

    def _check_output_pairing(self):
        fused = self.loss.fused_activation
        if fused is None:
            return
        last = self.layers[-1]
        output = last.activation.name if last.activation is not None else None
        if output != fused:
            ends = f"uses {output!r}" if output is not None else f"is {last.name} ({type(last).__name__})"
            raise ValueError(
                f"loss {self.loss.name!r} is computed from logits and needs output_activation={fused!r}, "
                f"but the output layer {ends}; set output_activation={fused!r} (or leave it unset), or end "
                f"the layers with Dense(..., {fused!r}) or Activation({fused!r})"
            )

    def _infer_shapes(self, input_shape):
        """Each layer's output shape for one sample's ``input_shape``; ValueError naming both layers when a
        layer cannot take what the one before it gives."""
        shapes, shape = [], input_shape
        for index, layer in enumerate(self.layers):
            try:
                next_shape = layer.output_shape(shape)
            except ValueError as error:
                source = ("the input" if index == 0 else
                          f"layers[{index - 1}] ({self.layers[index - 1].name})")
                raise ValueError(f"layers[{index}] ({layer.name}) {error}, but {source} gives shape "
                                 f"{_shown(shape)}; make the sizes match") from None
            shapes.append(None if next_shape is None else tuple(next_shape))
            shape = shapes[-1]
        final = shapes[-1]
        if final is None or len(final) not in (1, 2) or final[-1] is None:
            raise ValueError(f"the last layer ({self.layers[-1].name}) must give one vector per sample (or one "
                             f"per time step), of a known size, but gives shape {_shown(final)}; end the network "
                             "with a Dense layer")
        return shapes

    def _allocate_buffers(self):
        xp, dtype = self.backend.xp, self.backend.dtype(self.dtype)
        parameter_count = sum(math.prod(shape) for layer in self.layers for shape in layer.parameter_shapes().values())
        state_count = sum(math.prod(shape) for layer in self.layers for shape in layer.state_shapes().values())
        self.flat_parameters = xp.zeros(parameter_count, dtype=dtype)
        self.flat_gradients = xp.zeros(parameter_count, dtype=dtype)
        self.flat_state = xp.zeros(state_count, dtype=dtype)
        self._slices = _layout(self.layers, "parameter_shapes")
        self._state_slices = _layout(self.layers, "state_shapes")
        self._bind_layers()

    def _bind_layers(self):
        """Give every layer views of its parameters, gradients and state in the flat buffers."""
        parameters, gradients = self.unflatten(self.flat_parameters), self.unflatten(self.flat_gradients)
        state = _views(self.flat_state, self._state_slices)
        for layer in self.layers:
            layer.bind({key: parameters[f"{layer.name}.{key}"] for key in layer.parameter_shapes()},
                       {key: gradients[f"{layer.name}.{key}"] for key in layer.parameter_shapes()})
            layer.bind_state({key: state[f"{layer.name}.{key}"] for key in layer.state_shapes()})

    def __setstate__(self, state):
        # pickle and copy.deepcopy copy every array on its own, so each layer's parameters would stop being
        # views into the flat buffers and the optimiser's steps would no longer reach them: bind them again.
        state.setdefault("vocabulary", None)  # a network pickled by numnet 0.2 had none
        self.__dict__.update(state)
        self._bind_layers()

    def initialize(self, seed=None):
        """(Re)draw every parameter and reset every state array from the layers' initialisers, seeded by
        ``seed``."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        for layer in self.layers:
            layer.initialize(rng)
        self.flat_gradients[...] = 0

    # ---- shapes and names ----------------------------------------------------------------------------

    @property
    def input_shape(self):
        """One sample's input shape, e.g. (64,) or (1, 28, 28); None marks a size the data has not fixed yet."""
        return self._declared_input_shape

    @property
    def output_shapes(self):
        """Each layer's output shape for one sample, e.g. [(128,), (128,), (10,)] (None: not known yet)."""
        return list(self._output_shapes)

    @property
    def n_inputs(self):
        """Number of input features per sample (the product of the input shape; None while unknown)."""
        shape = self.input_shape
        if shape is None or self.layers[0].input_count > 1 or None in shape:
            return None
        return math.prod(shape)

    @property
    def n_outputs(self):
        """Number of outputs (classes for softmax) per sample, or per time step of a sequence model."""
        return self._output_shapes[-1][-1]

    @property
    def counts_tokens(self):
        """Whether the loss is a mean over tokens: softmax cross-entropy over a sequence model's outputs
        (time_steps, n_classes), whose targets are class indices (numnet.losses); its History then also
        records perplexity."""
        return len(self._output_shapes[-1]) > 1 and self.loss.fused_activation == "softmax"

    @property
    def layer_sizes(self):
        """[n_inputs, the output size of every layer with weights...]: for a multi-layer perceptron its layer
        sizes, whatever Dropout, BatchNorm or Activation layers lie between (None for a size still unknown)."""
        sizes = [self.n_inputs]
        for layer, shape in zip(self.layers, self._output_shapes):
            if layer.penalized_parameters():
                sizes.append(None if shape is None or None in shape else math.prod(shape))
        return sizes

    @property
    def n_parameters(self):
        """Number of trainable numbers."""
        return int(self.flat_parameters.size)

    @property
    def is_classifier(self):
        """True when the loss is a cross-entropy (outputs are class probabilities)."""
        return self.loss.is_classification

    @property
    def needs_rng(self):
        """Whether a training forward pass needs random numbers (a Dropout layer)."""
        return any(layer.needs_rng for layer in self.layers)

    def parameters(self):
        """Every parameter by name ("dense_0.W", "dense_0.b", ...): writable views into the model."""
        return {f"{layer.name}.{key}": array for layer in self.layers for key, array in layer.params.items()}

    def gradients(self):
        """The gradient of every parameter from the last ``backward``, by the same names."""
        return {f"{layer.name}.{key}": array for layer in self.layers for key, array in layer.grads.items()}

    def state(self):
        """Every non-trainable state array by name ("batch_norm_1.running_mean", ...): writable views."""
        return {f"{layer.name}.{key}": array for layer in self.layers for key, array in layer.state.items()}

    def weight_names(self):
        """The names of the parameters the L2 and L1 penalties apply to (the weight matrices)."""
        return [f"{layer.name}.{key}" for layer in self.layers for key in layer.penalized_parameters()]

    def unflatten(self, flat):
        """Views of a flat array laid out like the parameters, by parameter name (for optimiser state)."""
        return _views(flat, self._slices)

    def set_parameters(self, values):
        """Copy arrays into parameters by name.

        Raises
        ------
        KeyError
            For a name the network does not have (the message lists the valid names).
        ValueError
            For a shape mismatch.
        """
        self._copy_into(self.parameters(), values, "parameter")

    def set_state(self, values):
        """Copy arrays into the layers' state (running statistics) by name; raises like set_parameters."""
        self._copy_into(self.state(), values, "state array")

    def _copy_into(self, current, values, what):
        for name, value in values.items():
            if name not in current:
                raise KeyError(f"no {what} named {name!r}; the network has: {', '.join(current) or 'none'}")
            value = np.asarray(to_numpy(value) if hasattr(value, "__array_namespace__") else value)
            if value.shape != tuple(current[name].shape):
                raise ValueError(f"{what} {name!r} has shape {current[name].shape}, got {value.shape}")
            current[name][...] = self.backend.asarray(value, self.dtype)

    def copy(self, dtype=None):
        """A new network with the same layers, loss, weights and state, optionally in another dtype.

        Built by the path a model file is loaded by (:meth:`from_config`), from each layer's own class (a
        user's layer need not be registered to be copied) and a copy of the loss with its options.
        """
        config = self.config()
        layers = rebuild_layers(config["layers"], [type(layer) for layer in self.layers])
        clone = Network.from_config(config, layers=layers, loss=copy.deepcopy(self.loss), dtype=dtype,
                                    backend=self.backend)
        clone.vocabulary = self.vocabulary  # its symbols are a tuple: shared, not copied
        xp = self.backend.xp
        clone.flat_parameters[...] = xp.astype(self.flat_parameters, clone.flat_parameters.dtype)
        clone.flat_state[...] = xp.astype(self.flat_state, clone.flat_state.dtype)
        return clone

    # ---- forward -------------------------------------------------------------------------------------

    def prepare_inputs(self, X):
        """Validate X and convert it once to the model's dtype (int64 token ids for a first layer that takes
        them) and backend; shape ``(n_samples, *input_shape)``."""
        X = self.validate_inputs(X)
        if is_multiple(X):
            return tuple(self.backend.asarray(part, part.dtype) for part in X)
        return self.backend.asarray(X, X.dtype)

    def validate_inputs(self, X):
        """Validate X and return it as a NumPy array of the model's dtype, shape ``(n_samples, *input_shape)``;
        token ids (n_samples, time_steps) as int64 when the first layer takes them (Embedding). For a first
        layer that takes several inputs (``input_count`` > 1), X is a tuple of arrays with one row per sample
        each, validated one by one and returned as a tuple.

        The first data seen fixes any input size the layers left open (a convolutional network's image
        size, a sequence's length), and every layer's shape is checked against it.
        """
        first = self.layers[0]
        if first.input_count > 1 or is_multiple(X):
            parts = self._input_parts(X)
            expected = self.input_shape or (None,) * len(parts)
            X = tuple(self._validated_array(part, takes_ids, shape, f"X[{index}]") for index, (part, takes_ids, shape)
                      in enumerate(zip(parts, _per_input(first.takes_token_ids, len(parts)), expected)))
            check_same_rows(X)
            self._check_sample_shape(tuple(tuple(part.shape[1:]) for part in X))
            return X
        X = self._validated_array(X, first.takes_token_ids, self.input_shape, "X")
        self._check_sample_shape(tuple(X.shape[1:]))
        return X

    def _input_parts(self, X):
        """The arrays of a tuple X, as many as the first layer takes; ValueError naming the mismatch."""
        first, count = self.layers[0], self.layers[0].input_count
        if count == 1:
            raise ValueError(f"X is a tuple of {len(X)} arrays, but the first layer ({first.name}) takes one input; "
                             "give X as one array (a tuple is for a model that takes several inputs)")
        if not is_multiple(X) or len(X) != count:
            given = f"a tuple of {len(X)} arrays" if is_multiple(X) else f"one {type(X).__name__}"
            raise ValueError(f"the first layer ({first.name}, {type(first).__name__}) takes {count} inputs, so X "
                             f"must be a tuple of {count} arrays with one row per sample each, but X is {given}")
        return tuple(to_numpy(part) if hasattr(part, "__array_namespace__") else part for part in X)

    def _validated_array(self, X, takes_ids, expected, name):
        """One input array, validated: int64 token ids when ``takes_ids``, else floats of the model's dtype
        with one axis per size of ``expected`` (one sample's shape) after the rows."""
        X = to_numpy(X) if hasattr(X, "__array_namespace__") else X
        if takes_ids:
            return as_token_ids(X, ndim=1 + (1 if expected is None else len(expected)), name=name)
        if expected is None or len(expected) == 1:
            return as_float_matrix(X, self.dtype, name)
        X = as_numeric_array(X, name)
        return as_float_array(X, self.dtype, name, ndim=len(expected) + 1, expected=_shown(expected),
                              how_to_fix=_reshape_advice(expected, X.shape))

    def _check_sample_shape(self, shape):
        """Check one sample's shape (a tuple of shapes for several inputs) against the input shape, and fix
        the sizes the data decides."""
        expected = self.input_shape
        if expected is not None and _is_known(expected):
            if shape != expected:
                raise ValueError(self._input_mismatch(shape))
            return
        if expected is not None and not _fits(expected, shape):
            raise ValueError(self._input_mismatch(shape))
        self._output_shapes = self._infer_shapes(shape)  # raises, naming the layer, when the data cannot pass
        # A sequence's length stays free: every layer that takes sequences runs over any number of steps,
        # so later data (prediction, generation, ONNX's graph) may be longer or shorter.
        free = self._with_free_lengths(shape)
        if free != shape:
            self._output_shapes = self._infer_shapes(free)
        self._declared_input_shape = free

    def _with_free_lengths(self, shape):
        """``shape`` with the time axis of every sequence input set to None."""
        first = self.layers[0]
        if first.input_count == 1:
            return _free_length(shape, first.takes_token_ids)
        return tuple(_free_length(part, takes_ids)
                     for part, takes_ids in zip(shape, _per_input(first.takes_token_ids, len(shape))))

    def _input_mismatch(self, shape):
        expected = self.input_shape
        if self.layers[0].input_count > 1:
            shown = ", ".join(f"X[{index}] {_shown(part)}" for index, part in enumerate(expected))
            given = ", ".join(f"X[{index}] {_shown(part)}" for index, part in enumerate(shape))
            return f"X has arrays of shapes {given}, but the network expects {shown}; reshape the data to match"
        if len(expected) == 1 and len(shape) == 1:
            return (f"X has {shape[0]} features but the network expects {expected[0]} (layer sizes "
                    f"{self.layer_sizes}); check the data or the first layer size")
        if len(expected) == len(shape) == 3 and expected[0] is not None and shape[0] != expected[0]:
            return (f"X has images of {shape[0]} channel(s), shape {shape}, but the first layer "
                    f"({self.layers[0].name}) takes {expected[0]}: X of shape {_shown(expected)}; give images "
                    "with that many channels or change the layer's in_channels")
        return (f"X has samples of shape {shape} but the network expects {expected}, i.e. X of shape "
                f"{_shown(expected)}; reshape the data (e.g. X.reshape(-1, "
                f"{', '.join('?' if size is None else str(size) for size in expected)}))")

    def prepare_targets(self, y, n_samples=None):
        """Validate targets and convert them once to what the loss takes, on the network's backend: a float
        matrix (n_samples, n_outputs) in the model's dtype for an output vector per sample.

        Softmax cross-entropy takes class indices (n_samples,) or one-hot rows (n_samples, n_classes);
        binary cross-entropy 0/1 labels (n_samples,) or (n_samples, n_outputs); mean squared error real
        values of either shape. A sequence model's softmax cross-entropy takes class indices
        (n_samples, time_steps), kept as int64 (numnet.targets.as_targets).
        """
        Y = self.validate_targets(y, n_samples)
        return self.backend.asarray(Y, Y.dtype)

    def validate_targets(self, y, n_samples=None):
        """Like :meth:`prepare_targets`, but returns a NumPy array (for splitting before the one transfer)."""
        return as_targets(y, self.loss, self._output_shapes[-1], self.dtype, n_samples)

    def forward(self, X, training=False, rng=None):
        """The network's output a_L for inputs X (validated and converted), shape (n_samples, n_outputs).

        With ``training=True`` every layer caches what ``backward`` needs (and Dropout needs ``rng``, a NumPy
        Generator; BatchNorm normalises with the batch's statistics and updates its running ones). Returns
        a NumPy array.
        """
        return to_numpy(self._forward(self.prepare_inputs(X), training, rng)[1])

    def _forward(self, X, training, rng=None):
        """(logits of the output layer, output) for already-validated X; the logits are the output itself
        unless the loss is fused with the output activation."""
        a = X
        for layer in self.layers[:-1]:
            a = layer.forward(a, training, rng)
        output_layer = self.layers[-1]
        if self.loss.fused_activation:
            logits, a = output_layer.forward_logits(a, training, rng)
        else:
            logits = a = output_layer.forward(a, training, rng)
        self._training_output = a if training else None
        return logits, a

    def loss_value(self, X, y, sample_weight=None):
        """The loss C (data term plus the penalties) on (X, y), in inference mode, without touching any cache.

        With ``sample_weight`` (n_samples,) the data term is the weighted mean Σ w_i C_i / Σ w_i.
        """
        X = self.prepare_inputs(X)
        Y = self.prepare_targets(y, count_rows(X))
        logits, output = self._forward(X, training=False)
        return self._loss_from(logits, output, Y, self.prepare_sample_weights(sample_weight, count_rows(X)))

    def prepare_sample_weights(self, sample_weight, n_samples):
        """Validate per-sample weights (>= 0, finite, not all zero) and convert them once to the model's
        dtype and backend, shape (n_samples,); None stays None (every sample weighs the same)."""
        weights = as_sample_weights(sample_weight, n_samples, self.dtype)
        return None if weights is None else self.backend.asarray(weights, self.dtype)

    def _loss_from(self, logits, output, Y, weights=None, log_normalizer=None):
        """The loss (the penalty included) of outputs just computed; ``log_normalizer``: the output layer's
        from a training pass (Loss.value_from_forward)."""
        if log_normalizer is None:
            data_term = self.loss.value(logits if self.loss.fused_activation else output, Y, weights)
        else:
            data_term = self.loss.value_from_forward(logits, Y, weights, log_normalizer)
        return data_term + self.penalty()

    def penalty(self):
        """½·l2·Σ‖W‖² + l1·Σ|W| over the penalised parameters (biases and BatchNorm's γ, β excluded)."""
        return self._penalty_value(self.l2, self.l1)

    def _penalty_value(self, l2, l1):
        total = 0.0
        if l2:
            total += 0.5 * l2 * sum(squared_norm(array) for array in self._penalized_arrays())
        if l1:
            total += l1 * sum(float(namespace(array).sum(namespace(array).abs(array)))
                              for array in self._penalized_arrays())
        return total

    def add_penalty(self, l2=0.0, l1=0.0):
        """Add a penalty ½·l2·Σ‖W‖² + l1·Σ|W| of the caller's, on top of the network's own, to the gradients
        of the backward pass just run, and return its value (to add to that pass's loss).

        The scikit-learn estimators use it for ``alpha``, which scikit-learn divides by each batch's size:
        a penalty of the training step's, which leaves the network's own ``l2`` and ``l1`` as they are.
        """
        self._add_penalty_gradients(l2, l1)
        return self._penalty_value(l2, l1)

    def _penalized_arrays(self):
        return [layer.params[key] for layer in self.layers for key in layer.penalized_parameters()]

    # ---- backward ------------------------------------------------------------------------------------

    def backward(self, Y, weights=None):
        """Fill every layer's gradients by backpropagation, after a training forward pass.

        Parameters
        ----------
        Y : ndarray, shape (n_samples, n_outputs)
            Targets already prepared by :meth:`prepare_targets`.
        weights : ndarray, shape (n_samples,), optional
            Sample weights prepared by :meth:`prepare_sample_weights`: the gradient of the weighted mean.
        """
        a_L = self._require_training_output()
        output_layer, propagate = self.layers[-1], len(self.layers) > 1
        if self.loss.fused_activation:
            # BP1, fused: delta_L = dC/dz_L = (a_L - y) / n for softmax or sigmoid with cross-entropy
            grad = output_layer.backward_delta(self.loss.gradient(a_L, Y, weights), propagate)
        else:
            # BP1: delta_L = ∇_a C ⊙ f'(z_L), computed inside the layer's backward
            grad = output_layer.backward(self.loss.gradient(a_L, Y, weights), propagate)
        for index in range(len(self.layers) - 2, -1, -1):
            # BP2: delta_l = (delta_{l+1} W_{l+1}ᵀ) ⊙ f'(z_l); BP3 and BP4 follow inside the layer
            grad = self.layers[index].backward(grad, propagate=index > 0)
        self._add_penalty_gradients(self.l2, self.l1)

    @property
    def output(self):
        """The output a_L of the last training forward pass (training accuracy is counted from it)."""
        return self._require_training_output()

    def _require_training_output(self):
        if self._training_output is None:
            raise RuntimeError("backward called without a preceding forward pass with training=True; call "
                               "forward(X, training=True) (or loss_and_gradients) first")
        return self._training_output

    def _add_penalty_gradients(self, l2, l1):
        if not (l2 or l1):
            return
        for layer in self.layers:
            for key in layer.penalized_parameters():
                W, grad = layer.params[key], layer.grads[key]
                if l2:
                    grad += l2 * W  # dC/dW gains λ·W from the ½·λ·‖W‖² term
                if l1:
                    grad += l1 * namespace(W).sign(W)  # and l1·sign(W) from l1·Σ|W|

    def loss_and_gradients(self, X, Y, rng=None, weights=None):
        """One training forward pass and backward pass on prepared (X, Y); returns the loss, fills gradients.

        An empty batch (a data-parallel rank whose shard of a small batch is empty) still runs both passes,
        so that its layers join every collective, and counts its loss as 0. ``weights``: prepared sample
        weights (:meth:`prepare_sample_weights`), making the loss and gradient a weighted mean.
        """
        logits, output = self._forward(X, training=True, rng=rng)
        # The fused softmax's log Σ e^z of this very pass, which the loss need not compute again
        normalizer = self.layers[-1].log_normalizer if self.loss.fused_activation else None
        loss = self._loss_from(logits, output, Y, weights, normalizer) if Y.shape[0] else 0.0  # Y has X's rows
        if weights is None:
            self.backward(Y)  # the one-argument call, which a subclass may override as backward(self, Y)
        else:
            self.backward(Y, weights)
        return loss

    def reset_states(self):
        """Forget the state every stateful layer carries from one training batch into the next: the next
        training batch starts its sequences from zeros (call it between unrelated streams of data)."""
        for layer in self.layers:
            layer.reset_carried_state()

    def carried_state(self):
        """A copy of the state every stateful layer carries into the next training batch, by layer name (what
        :meth:`set_carried_state` puts back)."""
        return {layer.name: {key: namespace(array).asarray(array, copy=True)
                             for key, array in layer.carried_state().items()}
                for layer in self.layers if layer.stateful}

    def set_carried_state(self, states):
        """Put back what :meth:`carried_state` returned; a layer that carried nothing then starts from zeros."""
        for layer in self.layers:
            if layer.name in states and states[layer.name]:
                layer.set_carried_state(states[layer.name])
            elif layer.stateful:
                layer.reset_carried_state()

    @property
    def is_stateful(self):
        """Whether a layer carries a state per row from one training batch into the next."""
        return any(layer.stateful for layer in self.layers)

    def clear_caches(self):
        """Drop every layer's forward cache (frees memory after training)."""
        self._training_output = None
        for layer in self.layers:
            layer.clear_cache()

    # ---- prediction ----------------------------------------------------------------------------------

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_outputs): softmax rows, or independent sigmoid outputs.

        Raises
        ------
        ValueError
            For a regression network (mean squared error), which has no probabilities.
        """
        if not self.is_classifier:
            raise ValueError(
                f"predict_proba needs a classification loss, but this network uses {self.loss.name!r}; "
                "use predict for real-valued outputs"
            )
        return self.forward(X)

    def predict(self, X):
        """Predictions: class indices (n_samples,) for softmax; 0/1 labels (n_samples, n_outputs) for sigmoid
        outputs; the real-valued outputs (n_samples, n_outputs) for regression."""
        output = self._forward(self.prepare_inputs(X), training=False)[1]
        return to_numpy(outputs_to_predictions(output, self.loss))

    def accuracy(self, X, y):
        """Fraction of samples classified correctly (all labels right, for multi-label outputs); of counted
        tokens for a sequence model."""
        X = self.prepare_inputs(X)
        Y = self.prepare_targets(y, count_rows(X))
        counted = self.loss.count(Y) if self.counts_tokens else count_rows(X)  # tokens of a sequence model
        return batch_accuracy(self._forward(X, training=False)[1], Y, self.loss) / counted

    # ---- description ---------------------------------------------------------------------------------

    def summary(self):
        """A text table: each layer, what it is, its output shape and parameter count, and the totals."""
        rows = [("layer", "type", "output shape", "parameters")]
        rows.append(("input", "", _shown(self.input_shape), "0"))
        for layer, shape in zip(self.layers, self._output_shapes):
            rows.append((layer.name, layer.describe(), _shown(shape), f"{layer.n_parameters:,}"))
            rows += _nested_rows(layer, depth=1)
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows]
        rule = "-" * len(lines[0])
        penalties = f"l2: {self.l2:g}" + (f"   l1: {self.l1:g}" if self.l1 else "")
        return "\n".join([lines[0], rule, *lines[1:], rule,
                          f"total parameters: {self.n_parameters:,}   loss: {self.loss.name}   "
                          f"dtype: {self.dtype.name}   {penalties}"])

    def config(self):
        """The architecture as plain data (layers, loss, penalties, dtype, input shape, and the model class
        when it is not Network itself), for saving."""
        config = {"layers": [layer.config() for layer in self.layers], "loss": self.loss.name,
                  "l2": self.l2, "dtype": self.dtype.name}
        if self.model_kind != Network.model_kind:
            config["model"] = self.model_kind
        if self.l1:
            config["l1"] = self.l1
        if not self._is_plain_mlp():
            config["input_shape"] = _as_lists(self.input_shape)
        return config

    @classmethod
    def from_config(cls, config, *, layers, loss, dtype=None, backend="numpy"):
        """A network of ``layers`` and ``loss`` with the penalties, dtype and input shape of ``config``
        (:meth:`config`'s output); its weights are drawn afresh, for the caller to overwrite.

        Parameters
        ----------
        config : dict
        layers : list of Layer
            Rebuilt from ``config["layers"]`` (``numnet.network.rebuild_layers``).
        loss : Loss
        dtype : str, optional
            Default: ``config["dtype"]``.
        backend : str or Backend, default "numpy"
        """
        network = cls.__new__(cls)  # a model class (numnet.models) rebuilds from its layers like a Network
        Network.__init__(network, layers=layers, loss=loss, l2=config["l2"], l1=config.get("l1", 0.0),
                         input_shape=_as_tuples(config.get("input_shape")), dtype=dtype or config["dtype"], seed=0,
                         backend=backend)
        return network

    def _is_plain_mlp(self):
        """Only Dense layers with biases and no L1: the layout every numnet since 0.1 reads (format version 1)."""
        return all(type(layer) is Dense and layer.bias for layer in self.layers) and not self.l1

    def __repr__(self):
        kinds = [layer.describe() for layer in self.layers]
        return f"Network({self.layer_sizes}, layers={kinds}, loss={self.loss.name!r})"

    def fit(self, X, y, *, sample_weight=None, epochs=None, iterations=None, batch_size=32, optimizer=None,
            learning_rate=None, shuffle=True, sampling="epoch", validation_data=None, validation_split=0.0,
            seed=None, record_gradients=True, patience=None, tolerance=1e-4, restore_best=False, progress=None,
            verbose=False, distributed=None, diagnose=False, clip_norm=None, steps_per_epoch=None):
        """Train the network on (X, y); every option is documented at :func:`numnet.fit`. Returns a History.

        The options are spelled out here, not forwarded as ``**options``, so that ``help(Network.fit)`` and
        an editor show them; tests/test_network.py checks that the two signatures stay the same.
        """
        # The loop lives in training.py, below optimisers in the import order, hence the import here.
        from .training import fit

        return fit(self, X, y, sample_weight=sample_weight, epochs=epochs, iterations=iterations,
                   batch_size=batch_size, optimizer=optimizer, learning_rate=learning_rate, shuffle=shuffle,
                   sampling=sampling, validation_data=validation_data, validation_split=validation_split, seed=seed,
                   record_gradients=record_gradients, patience=patience, tolerance=tolerance,
                   restore_best=restore_best, progress=progress, verbose=verbose, distributed=distributed,
                   diagnose=diagnose, clip_norm=clip_norm, steps_per_epoch=steps_per_epoch)


#: The model classes a saved file may name, by ``model_kind``: Network, and the models of numnet.models,
#: which are Networks whose layers they build themselves.
MODELS = {}


def register_model(model_class):
    """Let saved files of ``model_class`` (a Network subclass with its own ``model_kind``) load as that class."""
    if not (isinstance(model_class, type) and issubclass(model_class, Network)):
        raise TypeError(f"register_model takes a subclass of numnet.Network, got {model_class!r}")
    MODELS[model_class.model_kind] = model_class
    return model_class


register_model(Network)


def rebuild_layers(configs, classes=None):
    """Layers built from their configs (:meth:`Layer.config`'s output), each by ``classes`` (one per config)
    or else by the class registered under its "type" (numnet.layers.LAYERS: what a model file names)."""
    if classes is None:
        classes = [get_layer_class(config["type"]) for config in configs]
    return [layer_class.from_config(config) for layer_class, config in zip(classes, configs, strict=True)]


def dense_stack(layer_sizes, *, activation="relu", output_activation="linear", weight_init="auto", bias_init=0.0,
                dropout=0.0, batch_norm=False):
    """The layers of a multi-layer perceptron with the given sizes.

    Each hidden layer is ``Dense(n_in, n_out, activation)``, or with ``batch_norm`` the classic course's
    ``Dense(n_in, n_out, bias=False) → BatchNorm(n_out) → Activation(activation)``, followed by ``Dropout(dropout)``
    when ``dropout`` > 0; the output layer is ``Dense(n_in, n_outputs, output_activation)``.

    Returns
    -------
    list of Layer
    """
    sizes = _checked_sizes(layer_sizes)
    hidden, output = get_activation(activation), get_activation(output_activation)
    if batch_norm not in (True, False):
        raise TypeError(f"batch_norm must be True or False, got {batch_norm!r}")
    layers = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
        if batch_norm:
            init = auto_weight_init(hidden) if _is_auto(weight_init) else weight_init
            # No bias before BatchNorm: its β is the bias, and a bias there would have a zero gradient.
            layers += [Dense(n_in, n_out, "linear", weight_init=init, bias=False), BatchNorm(n_out),
                       Activation(hidden)]
        else:
            layers.append(Dense(n_in, n_out, hidden, weight_init=weight_init, bias_init=bias_init))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(sizes[-2], sizes[-1], output, weight_init=weight_init, bias_init=bias_init))
    return layers


def _is_auto(weight_init):
    return isinstance(weight_init, str) and weight_init.strip().lower() == "auto"


def _resolve_output_and_loss(output_activation, loss):
    """Fill in whichever of (output activation, loss) is missing from the other."""
    if loss is None:
        name = output_activation.name if hasattr(output_activation, "name") else output_activation
        loss = DEFAULT_LOSS_FOR_OUTPUT.get(str(name).strip().lower() if name is not None else None, "mse")
    loss = get_loss(loss)
    if output_activation is None:
        output_activation = loss.fused_activation or "linear"
    return get_activation(output_activation), loss


def _loss_for_layers(layers, loss):
    """The given loss, or the one the last layer's activation implies (softmax → softmax cross-entropy)."""
    if loss is not None:
        return get_loss(loss)
    last = layers[-1] if layers else None
    name = last.activation.name if isinstance(last, Layer) and last.activation is not None else None
    return get_loss(DEFAULT_LOSS_FOR_OUTPUT.get(name, "mse"))


def _check_unused_with_layers(**options):
    """output_activation, dropout and batch_norm describe a layer_sizes network; with layers they would be lost."""
    given = [name for name, value in options.items() if value not in (None, 0.0, False)]
    if given:
        raise ValueError(f"{', '.join(given)} apply to a network built from layer_sizes; with layers=, put the "
                         "activation, Dropout or BatchNorm layers in the list itself")


def _checked_sizes(layer_sizes):
    try:
        sizes = list(layer_sizes)
    except TypeError as error:
        raise TypeError(f"layer_sizes must be a list of integers such as [2, 50, 3], got {layer_sizes!r}") from error
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size, e.g. [2, 3]; got {sizes}")
    return [check_integer(size, f"layer size {index} in {sizes}") for index, size in enumerate(sizes)]


def _declared_input_shape(input_shape, layers):
    """One sample's input shape: the one given, else the first layer's own (Dense: (n_inputs,)), else None;
    a tuple of them for a first layer that takes several inputs."""
    if input_shape is None:
        input_shape = layers[0].expected_input_shape()
        if input_shape is None:
            return None
    if layers[0].input_count > 1:
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) != layers[0].input_count:
            raise ValueError(f"the first layer takes {layers[0].input_count} inputs, so input_shape must be a tuple "
                             f"of as many sample shapes, got {input_shape!r}")
        return tuple(_one_input_shape(part) for part in input_shape)
    return _one_input_shape(input_shape)


def _one_input_shape(input_shape):
    """One input's sample shape from a size or a sequence of sizes (None for a size the data decides); None
    stays None (a shape the data will give)."""
    if input_shape is None:
        return None
    if isinstance(input_shape, (int, np.integer)) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"input_shape must be a tuple of sizes such as (1, 28, 28), got {input_shape!r}") from None
    return tuple(None if size is None else check_integer(size, "every size in input_shape") for size in shape)


def _per_input(value, count):
    """A per-input attribute of a layer that takes ``count`` inputs: one value for all, or one per input."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * count


def _is_known(shape):
    """Whether every size of ``shape`` (one sample's shape, or a tuple of them) is known."""
    return all(_is_known(size) if isinstance(size, tuple) else size is not None for size in shape)


def _fits(expected, shape):
    """Whether ``shape`` has ``expected``'s sizes where those are known (nested for several inputs)."""
    if expected is None:
        return True
    if len(expected) != len(shape):
        return False
    return all(_fits(want, size) if isinstance(want, tuple) else want is None or want == size
               for want, size in zip(expected, shape))


def _free_length(shape, takes_token_ids):
    """One input's sample shape with its time axis set to None when it is a sequence: token ids
    (time_steps,) for a layer that takes them, or (time_steps, features)."""
    if len(shape) == 2 or (len(shape) == 1 and takes_token_ids):
        return (None, *shape[1:])
    return shape


def _reshape_advice(expected, shape):
    """How to reshape X of ``shape`` into (n_samples, *expected): a concrete ``X.reshape`` when the sizes
    allow one (square images when only the channels are known), for the error message."""
    target = expected
    per_sample = math.prod(shape[1:])
    if None in expected and len(expected) == 3 and expected[0] is not None and per_sample % expected[0] == 0:
        side = math.isqrt(per_sample // expected[0])
        target = (expected[0], side, side) if side * side * expected[0] == per_sample else expected
    if None in target or math.prod(target) != per_sample:
        return f"reshape it to {_shown(expected)}, e.g. flat rows of pixels with X.reshape(-1, ...)"
    sizes = ", ".join(map(str, target))
    return (f"reshape it with X.reshape(-1, {sizes}) (flat rows of pixels are read row by row, channels "
            "first)")


def _layout(layers, shapes_method):
    """{"<layer>.<key>": (slice, shape)} for the arrays ``layer.<shapes_method>()`` declares, end to end."""
    layout, offset = {}, 0
    for layer in layers:
        for key, shape in getattr(layer, shapes_method)().items():
            size = math.prod(shape)
            layout[f"{layer.name}.{key}"] = (slice(offset, offset + size), tuple(shape))
            offset += size
    return layout


def _views(flat, layout):
    xp = namespace(flat)
    return {name: xp.reshape(flat[part], shape) for name, (part, shape) in layout.items()}


def _nested_rows(layer, depth):
    """summary()'s rows for the layers inside a composite layer, indented by their depth (no output shape:
    the composite's row gives what the block returns)."""
    rows = []
    for child in layer.sublayers():
        rows.append(("  " * depth + child.name, child.describe(), "", f"{child.n_parameters:,}"))
        rows += _nested_rows(child, depth + 1)
    return rows


def _as_lists(shape):
    """A sample shape (or a tuple of them) as JSON's nested lists; None stays None."""
    return None if shape is None else [_as_lists(size) if isinstance(size, tuple) else size for size in shape]


def _as_tuples(shape):
    """:func:`_as_lists`' inverse."""
    return None if shape is None else tuple(_as_tuples(size) if isinstance(size, list) else size for size in shape)


def _shown(shape):
    """A per-sample shape as the table shows it, with the batch dimension: (None, 50); several inputs' shapes
    side by side."""
    if shape is None:
        return "(None, ?)"
    if shape and isinstance(shape[0], tuple):
        return ", ".join(map(_shown, shape))
    return "(None, " + ", ".join("?" if size is None else str(size) for size in shape) + ")"


