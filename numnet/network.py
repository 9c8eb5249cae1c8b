"""Network: a stack of layers, its forward pass, its backward pass (BP1-BP4), and named parameters.

All parameters live in one flat buffer and all gradients in another; each layer's W and b are views into
them. Optimisers then update every parameter with a handful of whole-buffer operations instead of a loop
over layers, and a data-parallel run can average all gradients with one message (benchmarks/NOTES.md,
"flat parameter buffer").
"""

import numpy as np

from .backend import as_float_matrix, get_backend, namespace, resolve_dtype, squared_norm, to_numpy
from .activations import get_activation
from .layers import Dense
from .losses import DEFAULT_LOSS_FOR_OUTPUT, get_loss
from .metrics import batch_accuracy, outputs_to_predictions
from .targets import as_target_matrix
from .validation import check_integer

class Network:
    """A multi-layer perceptron.

    Build it from layer sizes::

        net = Network([2, 50, 50, 3], activation="relu", output_activation="softmax", seed=0)

    or from explicit layers::

        net = Network(layers=[Dense(2, 50, "relu"), Dense(50, 3, "softmax")], loss="cross_entropy")

    Parameters
    ----------
    layer_sizes : sequence of int, optional
        Input size, hidden sizes, output size, e.g. ``[784, 100, 10]``.
    layers : sequence of Dense, optional
        Instead of ``layer_sizes``: the layers themselves, each layer's n_inputs equal to the previous
        layer's n_outputs.
    activation : str or Activation, default "relu"
        Hidden-layer activation (with ``layer_sizes``).
    output_activation : str or Activation, optional
        Output activation; by default the one the loss implies (softmax for softmax cross-entropy,
        sigmoid for binary cross-entropy, linear for mean squared error).
    loss : str or Loss, optional
        By default the loss the output activation implies (mean squared error for linear outputs).
    weight_init : str or Initializer, default "auto"
        "auto": He for relu-like layers, Xavier otherwise.
    bias_init : float, str or Initializer, default 0.0
    l2 : float, default 0.0
        L2 penalty λ: the loss gains ½·λ·Σ‖W‖² and each dC/dW gains λ·W; biases are not penalised.
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
        For inconsistent sizes, unknown names, or a loss that cannot pair with the output activation.
    """

    def __init__(self, layer_sizes=None, *, layers=None, activation="relu", output_activation=None, loss=None,
                 weight_init="auto", bias_init=0.0, l2=0.0, dtype=None, seed=None, backend=None):
        self.dtype = resolve_dtype(dtype)
        self.backend = get_backend(backend)
        self.l2 = _non_negative_float(l2, "l2")
        if (layer_sizes is None) == (layers is None):
            raise ValueError("give exactly one of layer_sizes (e.g. [2, 50, 3]) or layers (a list of Dense)")
        output_activation, self.loss = _resolve_output_and_loss(output_activation, loss)
        if layers is None:
            layers = _dense_stack(layer_sizes, activation, output_activation, weight_init, bias_init)
        self.layers = _checked_layers(layers)
        self._check_output_pairing()
        self._allocate_buffers()
        self.initialize(seed)
        #: Set by ``fit``: the optimiser (with its state) and the progress through training, so that a
        #: second call, or a run loaded from a checkpoint, continues where the last one stopped.
        self.optimizer = None
        self.history = None  # the History of every fit so far, appended to by each call
        self.training_seed = None
        self.epochs_trained = 0
        self.iterations_trained = 0

    # ---- construction --------------------------------------------------------------------------------

    def _check_output_pairing(self):
        output = self.layers[-1].activation.name
        fused = self.loss.fused_activation
        if fused is not None and output != fused:
            raise ValueError(
                f"loss {self.loss.name!r} is computed from logits and needs output_activation={fused!r}, "
                f"but the output layer uses {output!r}; set output_activation={fused!r} (or leave it unset)"
            )

    def _allocate_buffers(self):
        sizes = [layer.n_parameters for layer in self.layers]
        xp, dtype = self.backend.xp, self.backend.dtype(self.dtype)
        self.flat_parameters = xp.zeros(sum(sizes), dtype=dtype)
        self.flat_gradients = xp.zeros(sum(sizes), dtype=dtype)
        self._slices = {}
        offset = 0
        for index, layer in enumerate(self.layers):
            if layer.name is None:
                layer.name = f"dense_{index}"
            params, grads = {}, {}
            for key, shape in layer.parameter_shapes().items():
                size = int(np.prod(shape))
                self._slices[f"{layer.name}.{key}"] = (slice(offset, offset + size), shape)
                params[key] = xp.reshape(self.flat_parameters[offset:offset + size], shape)
                grads[key] = xp.reshape(self.flat_gradients[offset:offset + size], shape)
                offset += size
            layer.bind(params, grads)

    def __setstate__(self, state):
        # pickle and copy.deepcopy copy every array on its own, so each layer's W and b would stop being
        # views into the flat buffers and the optimiser's steps would no longer reach them: bind them again.
        self.__dict__.update(state)
        parameters, gradients = self.unflatten(self.flat_parameters), self.unflatten(self.flat_gradients)
        for layer in self.layers:
            keys = layer.parameter_shapes()
            layer.bind({key: parameters[f"{layer.name}.{key}"] for key in keys},
                       {key: gradients[f"{layer.name}.{key}"] for key in keys})

    def initialize(self, seed=None):
        """(Re)draw every parameter from the layers' initialisers, seeded by ``seed``."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        for layer in self.layers:
            layer.initialize(rng)
        self.flat_gradients[...] = 0

    # ---- shapes and names ----------------------------------------------------------------------------

    @property
    def n_inputs(self):
        """Number of input features."""
        return self.layers[0].n_inputs

    @property
    def n_outputs(self):
        """Number of outputs (classes for softmax)."""
        return self.layers[-1].n_outputs

    @property
    def layer_sizes(self):
        """[n_inputs, hidden sizes..., n_outputs]."""
        return [self.n_inputs] + [layer.n_outputs for layer in self.layers]

    @property
    def n_parameters(self):
        """Number of trainable numbers."""
        return int(self.flat_parameters.size)

    @property
    def is_classifier(self):
        """True when the loss is a cross-entropy (outputs are class probabilities)."""
        return self.loss.is_classification

    def parameters(self):
        """Every parameter by name ("dense_0.W", "dense_0.b", ...): writable views into the model."""
        return {f"{layer.name}.{key}": array for layer in self.layers for key, array in layer.params.items()}

    def gradients(self):
        """The gradient of every parameter from the last ``backward``, by the same names."""
        return {f"{layer.name}.{key}": array for layer in self.layers for key, array in layer.grads.items()}

    def weight_names(self):
        """The names of the weight matrices (the parameters L2 penalises)."""
        return [f"{layer.name}.W" for layer in self.layers]

    def unflatten(self, flat):
        """Views of a flat array laid out like the parameters, by parameter name (for optimiser state)."""
        xp = namespace(flat)
        return {name: xp.reshape(flat[part], shape) for name, (part, shape) in self._slices.items()}

    def set_parameters(self, values):
        """Copy arrays into parameters by name.

        Raises
        ------
        KeyError
            For a name the network does not have (the message lists the valid names).
        ValueError
            For a shape mismatch.
        """
        current = self.parameters()
        for name, value in values.items():
            if name not in current:
                raise KeyError(f"no parameter named {name!r}; the network has: {', '.join(current)}")
            value = np.asarray(to_numpy(value) if hasattr(value, "__array_namespace__") else value)
            if value.shape != tuple(current[name].shape):
                raise ValueError(f"parameter {name!r} has shape {current[name].shape}, got {value.shape}")
            current[name][...] = self.backend.asarray(value, self.dtype)

    def copy(self, dtype=None):
        """A new network with the same architecture and weights, optionally in another dtype."""
        clone = Network(layers=[_clone_layer(layer) for layer in self.layers], loss=type(self.loss)(),
                        l2=self.l2, dtype=dtype or self.dtype, seed=0, backend=self.backend)
        clone.flat_parameters[...] = self.backend.xp.astype(self.flat_parameters, clone.flat_parameters.dtype)
        return clone

    # ---- forward -------------------------------------------------------------------------------------

    def prepare_inputs(self, X):
        """Validate X and convert it once to the model's dtype and backend; shape (n_samples, n_inputs)."""
        return self.backend.asarray(self.validate_inputs(X), self.dtype)

    def validate_inputs(self, X):
        """Validate X and return it as a NumPy array of the model's dtype, shape (n_samples, n_inputs)."""
        X = as_float_matrix(to_numpy(X) if hasattr(X, "__array_namespace__") else X, self.dtype, "X")
        if X.shape[1] != self.n_inputs:
            raise ValueError(
                f"X has {X.shape[1]} features but the network expects {self.n_inputs} "
                f"(layer sizes {self.layer_sizes}); check the data or the first layer size"
            )
        return X

    def prepare_targets(self, y, n_samples=None):
        """Validate targets and convert them once to a float matrix (n_samples, n_outputs) in the model's dtype.

        Softmax cross-entropy takes class indices (n_samples,) or one-hot rows (n_samples, n_classes);
        binary cross-entropy 0/1 labels (n_samples,) or (n_samples, n_outputs); mean squared error real
        values of either shape.
        """
        return self.backend.asarray(self.validate_targets(y, n_samples), self.dtype)

    def validate_targets(self, y, n_samples=None):
        """Like :meth:`prepare_targets`, but returns a NumPy array (for splitting before the one transfer)."""
        return as_target_matrix(y, self.loss, self.n_outputs, self.dtype, n_samples)

    def forward(self, X, training=False):
        """The network's output a_L for inputs X (validated and converted), shape (n_samples, n_outputs).

        With ``training=True`` every layer caches what ``backward`` needs. Returns a NumPy array.
        """
        return to_numpy(self._forward(self.prepare_inputs(X), training)[1])

    def _forward(self, X, training):
        """(logits of the output layer, output) for already-validated X."""
        a = X
        for layer in self.layers[:-1]:
            a = layer.forward(a, training)
        return self.layers[-1].forward(a, training, return_logits=True)

    def loss_value(self, X, y):
        """The loss C (data term plus the L2 term) on (X, y), without touching any cache."""
        X = self.prepare_inputs(X)
        Y = self.prepare_targets(y, X.shape[0])
        logits, output = self._forward(X, training=False)
        return self._loss_from(logits, output, Y)

    def _loss_from(self, logits, output, Y):
        data_term = self.loss.value(logits if self.loss.fused_activation else output, Y)
        return data_term + self.l2_penalty()

    def l2_penalty(self):
        """½·λ·Σ_l ‖W_l‖² (biases excluded)."""
        if self.l2 == 0.0:
            return 0.0
        return 0.5 * self.l2 * sum(squared_norm(layer.params["W"]) for layer in self.layers)

    # ---- backward ------------------------------------------------------------------------------------

    def backward(self, Y):
        """Fill every layer's gradients by backpropagation, after a training forward pass.

        Parameters
        ----------
        Y : ndarray, shape (n_samples, n_outputs)
            Targets already prepared by :meth:`prepare_targets`.
        """
        output_layer = self.layers[-1]
        a_L = output_layer.output
        if self.loss.fused_activation:
            # BP1, fused: delta_L = dC/dz_L = (a_L - y) / n for softmax or sigmoid with cross-entropy
            delta = self.loss.gradient(a_L, Y)
            grad = output_layer.backward_delta(delta, propagate=len(self.layers) > 1)
        else:
            # BP1: delta_L = ∇_a C ⊙ f'(z_L), computed inside the layer's backward
            grad = output_layer.backward(self.loss.gradient(a_L, Y), propagate=len(self.layers) > 1)
        for index in range(len(self.layers) - 2, -1, -1):
            # BP2: delta_l = (delta_{l+1} W_{l+1}ᵀ) ⊙ f'(z_l); BP3 and BP4 follow inside the layer
            grad = self.layers[index].backward(grad, propagate=index > 0)
        self._add_l2_gradient()

    def _add_l2_gradient(self):
        if self.l2 == 0.0:
            return
        for layer in self.layers:
            # dC/dW gains λ·W from the ½·λ·‖W‖² term; biases are not regularised
            layer.grads["W"] += self.l2 * layer.params["W"]

    def loss_and_gradients(self, X, Y):
        """One training forward pass and backward pass on prepared (X, Y); returns the loss, fills gradients."""
        logits, output = self._forward(X, training=True)
        loss = self._loss_from(logits, output, Y)
        self.backward(Y)
        return loss

    def clear_caches(self):
        """Drop every layer's forward cache (frees memory after training)."""
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
        """Fraction of samples classified correctly (all labels right, for multi-label outputs)."""
        X = self.prepare_inputs(X)
        Y = self.prepare_targets(y, X.shape[0])
        return batch_accuracy(self._forward(X, training=False)[1], Y, self.loss) / X.shape[0]

    # ---- description ---------------------------------------------------------------------------------

    def summary(self):
        """A text table: each layer, its output shape and parameter count, and the totals."""
        rows = [("layer", "activation", "output shape", "parameters")]
        rows.append(("input", "", f"(None, {self.n_inputs})", "0"))
        for layer in self.layers:
            rows.append((layer.name, layer.activation.name, f"(None, {layer.n_outputs})",
                         f"{layer.n_parameters:,}"))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows]
        rule = "-" * len(lines[0])
        return "\n".join([lines[0], rule, *lines[1:], rule,
                          f"total parameters: {self.n_parameters:,}   loss: {self.loss.name}   "
                          f"dtype: {self.dtype.name}   l2: {self.l2:g}"])

    def config(self):
        """The architecture as plain data (layers, loss, l2, dtype), for saving."""
        return {"layers": [layer.config() for layer in self.layers], "loss": self.loss.name,
                "l2": self.l2, "dtype": self.dtype.name}

    def __repr__(self):
        activations = [layer.activation.name for layer in self.layers]
        return f"Network({self.layer_sizes}, activations={activations}, loss={self.loss.name!r})"

    def fit(self, X, y, **options):
        """Train the network; see :func:`numnet.training.fit` for every option. Returns a History."""
        # The loop lives in training.py (it needs optimisers, which sit below this module); this method
        # is the familiar entry point and only forwards to it.
        from .training import fit

        return fit(self, X, y, **options)


def _resolve_output_and_loss(output_activation, loss):
    """Fill in whichever of (output activation, loss) is missing from the other."""
    if loss is None:
        name = output_activation.name if hasattr(output_activation, "name") else output_activation
        loss = DEFAULT_LOSS_FOR_OUTPUT.get(str(name).strip().lower() if name is not None else None, "mse")
    loss = get_loss(loss)
    if output_activation is None:
        output_activation = loss.fused_activation or "linear"
    return get_activation(output_activation), loss


def _dense_stack(layer_sizes, activation, output_activation, weight_init, bias_init):
    sizes = _checked_sizes(layer_sizes)
    hidden = get_activation(activation)
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        is_output = index == len(sizes) - 2
        layers.append(Dense(n_in, n_out, output_activation if is_output else hidden,
                            weight_init=weight_init, bias_init=bias_init))
    return layers


def _checked_sizes(layer_sizes):
    try:
        sizes = list(layer_sizes)
    except TypeError as error:
        raise TypeError(f"layer_sizes must be a list of integers such as [2, 50, 3], got {layer_sizes!r}") from error
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size, e.g. [2, 3]; got {sizes}")
    return [check_integer(size, f"layer size {index} in {sizes}") for index, size in enumerate(sizes)]


def _checked_layers(layers):
    layers = list(layers)
    if not layers:
        raise ValueError("layers is empty; give at least one Dense layer")
    for index, layer in enumerate(layers):
        if not isinstance(layer, Dense):
            raise TypeError(f"layers[{index}] must be a Dense layer, got {type(layer).__name__}")
    for index, (previous, layer) in enumerate(zip(layers[:-1], layers[1:]), start=1):
        if layer.n_inputs != previous.n_outputs:
            raise ValueError(
                f"layers[{index}] takes {layer.n_inputs} inputs but layers[{index - 1}] gives "
                f"{previous.n_outputs} outputs; make the sizes match"
            )
    # Unnamed layers will be called dense_<index> (see _allocate_buffers); an explicit name may collide.
    names = [layer.name or f"dense_{index}" for index, layer in enumerate(layers)]
    if len(names) != len(set(names)):
        raise ValueError(f"layer names must be unique, got {names}")
    return layers


def _clone_layer(layer):
    return Dense(layer.n_inputs, layer.n_outputs, layer.activation, name=layer.name)


def _non_negative_float(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a number, got {value!r}") from error
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value
