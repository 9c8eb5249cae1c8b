"""Layers: the Layer contract every layer follows, and the layers numnet ships, forward and backward side by side.

A layer is whatever implements the contract of :class:`Layer`; the Network, L2, ``summary``, ``copy``,
persistence, checkpoints, gradient checking and data-parallel training talk only to that contract, so a
user's own subclass trains, is gradient-checked, summarised and (once registered with
:func:`register_layer`) saved without any change to numnet.

The layers here, in the order of the classic course: Dense (the fully connected layer of the MLP, with its
activation fused in), Activation (an activation as a layer of its own, for Dense → BatchNorm → ReLU),
Dropout and BatchNorm (chapter 6 of "Deep Learning from Scratch").
"""

import inspect
import math
import re
from types import MappingProxyType

import numpy as np

from ._registry import constructor_options, lookup_class, rebuild
from .activations import forward_for_fused_loss, get_activation
from .backend import apply, namespace
from .initializers import XavierUniform, get_initializer
from .validation import Boolean, Integer, Real, check_integer, declare

#: The parameters, gradients and state of a layer that holds none: read-only, so a subclass that forgets
#: ``super().__init__()`` still reads empty tables but can never write into a table shared by every layer.
_NOTHING = MappingProxyType({})


def _snake_case(class_name):
    """"BatchNorm" → "batch_norm", "MaxPool2D" → "max_pool2d", "Dense" → "dense"."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])|(?<=[a-z])(?=[A-Z])", "_", class_name).lower()


class Layer:
    """The contract of a layer; subclass it and implement ``forward`` and ``backward``.

    A layer declares what it holds, and the Network allocates it:

    - :meth:`parameter_shapes` — the trainable parameters by name (``{"W": (3, 5), "b": (5,)}``, possibly
      empty). The network keeps them in its flat parameter buffer and binds views as ``self.params``, with
      the matching gradients as ``self.grads`` (same keys).
    - :meth:`state_shapes` — non-trainable state by name (BatchNorm's running mean and variance), bound as
      ``self.state``: kept in the model, saved and restored, identical on every MPI rank, never touched by
      an optimiser or by L2.
    - :meth:`penalized_parameters` — which parameters L2 (and L1) penalise (Dense: ``("W",)``).
    - :meth:`output_shape` — one sample's output shape for one sample's input shape (``None`` for a
      dimension the data will decide), which the network uses to check that the layers fit together.

    and implements:

    - :meth:`initialize` (rng) — fill the parameters and state;
    - :meth:`forward` (x, training=False, rng=None) — in training, cache what backward needs;
    - :meth:`backward` (grad_output, propagate=True) — fill ``self.grads[name]`` for every parameter, return
      dC/dx (or None when ``propagate`` is False: the first layer skips that product);
    - :meth:`clear_cache`, :meth:`config` / :meth:`from_config`, :meth:`describe`.

    Every method but ``forward`` and ``backward`` has a default: no parameters, no state, the shape
    unchanged, Xavier-uniform matrices and zero vectors, the constructor's arguments read back from the
    attributes of the same names, and ``kind`` — the prefix of the layer's parameter names — the class name
    in snake_case (``BatchNorm`` → ``batch_norm``). So a small layer is small::

        class Scale(numnet.Layer):
            def __init__(self, factor, *, name=None):
                super().__init__(name=name)
                self.factor = factor
            def forward(self, x, training=False, rng=None):
                return x * self.factor
            def backward(self, grad_output, propagate=True):
                return grad_output * self.factor if propagate else None

    The fused losses (softmax and sigmoid cross-entropy from logits) need the output layer's logits: a
    layer that ends with an activation function sets ``activation`` to it and implements
    :meth:`forward_logits` and :meth:`backward_delta` (Dense and Activation do), so both
    ``Dense(..., "softmax")`` and a trailing ``Activation("softmax")`` train with the fused loss. A layer
    whose training ``forward_logits`` ends in a softmax may also set ``log_normalizer`` (log Σ e^z of each
    row, which the softmax computed on the way): the loss then reads it instead of computing it again.

    A layer that takes several inputs (an attention layer: the decoder's states and the encoder's; a
    seq2seq model: the source and the decoder's input) sets ``input_count``: its ``forward`` receives them
    as a tuple, :meth:`output_shape` a tuple of their sample shapes, and its ``backward`` returns a tuple of
    dC/d(input), one per input (None for one it cannot propagate into, such as token ids). When it is a
    network's first layer, X is a tuple of arrays with one row per sample each (numnet.inputs).

    A layer that reads integer token ids sets ``takes_token_ids`` (:class:`numnet.embedding.Embedding`); a
    layer that carries a state per row from one training batch into the next sets ``stateful`` and
    implements :meth:`carried_state`, :meth:`set_carried_state` and :meth:`reset_carried_state` (the
    recurrent layers of :mod:`numnet.recurrent`). A layer whose output at each time step of a sequence
    depends only on its input at that step sets ``position_wise`` (Dense, Activation, Dropout, Embedding),
    so that :func:`numnet.text.generate` may feed the network one step at a time.

    Attributes
    ----------
    name : str or None
        Set by the network to ``<kind>_<index>`` when not given.
    context : numnet.distributed.BatchContext or None
        Set by ``fit`` while it trains: where this process's rows sit in the global batch (Dropout and
        BatchNorm use it in data-parallel training). None means the input is the whole batch.
    """

    #: The prefix of the layer's parameter names; the class name in snake_case unless a class sets it.
    kind = "layer"
    #: The activation function the layer applies last, or None: the hook of the fused losses.
    activation = None
    #: log Σ_k e^{z_k} of each row of the last training ``forward_logits`` whose activation computed it on
    #: the way (a softmax; numnet.activations.forward_for_fused_loss), else None: the fused loss's input.
    log_normalizer = None
    #: Whether ``forward`` in training needs ``rng`` (Dropout's masks); fit then derives one per step.
    needs_rng = False
    #: How many inputs ``forward`` takes: more than one arrive as a tuple (see the class docstring).
    input_count = 1
    #: Whether the layer takes integer token ids (Embedding): the network then keeps its input as integers
    #: instead of converting it to the model's float dtype, and the layer checks the ids' dtype and range.
    #: A layer with several inputs gives one bool for all, or a tuple of them, one per input.
    takes_token_ids = False
    #: Whether the layer carries a state per row from one training batch into the next (a recurrent layer
    #: built with ``stateful=True``): see :meth:`carried_state`.
    stateful = False
    #: Whether, in prediction, the output at each time step of a sequence (n, time_steps, ...) depends only
    #: on the input at that step: text generation then feeds the network one step at a time instead of
    #: reading the whole text again for every new token. False (the safe answer) unless a class says so.
    position_wise = False
    name = None
    context = None
    params = grads = state = _NOTHING
    _cache = None

    def __init_subclass__(cls, **options):
        super().__init_subclass__(**options)
        if "kind" not in vars(cls):
            cls.kind = _snake_case(cls.__name__)

    def __init__(self, *, name=None):
        self.name = name
        self.params, self.grads, self.state = {}, {}, {}
        self._cache = None

    # ---- what the layer holds ------------------------------------------------------------------------

    def parameter_shapes(self):
        """The shape of each trainable parameter, by name, in storage order (default: none)."""
        return {}

    def state_shapes(self):
        """The shape of each non-trainable state array, by name (default: none)."""
        return {}

    def penalized_parameters(self):
        """The names of the parameters the L2 and L1 penalties apply to (default: none)."""
        return ()

    def expected_input_shape(self):
        """One sample's input shape when the layer itself fixes it (Dense: ``(n_inputs,)``), else None."""
        return None

    def output_shape(self, input_shape):
        """One sample's output shape for one sample's ``input_shape`` (a tuple; None marks a dimension
        still unknown; ``input_shape`` itself is None when nothing is known yet).

        When the layer cannot take that input, raise ValueError with a phrase saying what it takes
        ("takes 5 inputs per sample"): the network completes it with the layers' names and the shape they
        give. Default: the shape unchanged."""
        return tuple(input_shape) if input_shape is not None else None

    def sublayers(self):
        """The layers this one holds (a composite layer's children, numnet.composite); none by default."""
        return []

    def min_batch_size(self, input_shape):
        """The fewest samples a training batch may hold (BatchNorm needs two values per feature)."""
        return 1

    @property
    def n_parameters(self):
        """Number of trainable numbers."""
        return sum(math.prod(shape) for shape in self.parameter_shapes().values())

    def bind(self, params, grads):
        """Use the given arrays (views into a network's flat buffers) as the parameters and gradients."""
        self.params = params
        self.grads = grads

    def bind_state(self, state):
        """Use the given arrays (views into a network's flat state buffer) as the layer's state."""
        self.state = state

    def initialize(self, rng):
        """Fill the parameters from ``rng`` (a NumPy Generator): Xavier-uniform for arrays of two or more
        dimensions, zeros for vectors; state arrays start at zero."""
        for key, array in self.params.items():
            values = XavierUniform()(array.shape, rng, np.float64) if array.ndim >= 2 else np.zeros(array.shape)
            _fill(array, values)
        for array in self.state.values():
            array[...] = 0

    # ---- forward and backward ------------------------------------------------------------------------

    def forward(self, x, training=False, rng=None):
        """The layer's output for ``x``, shape ``(n_samples, *input_shape)``. With ``training=True`` cache what
        ``backward`` needs; with False cache nothing (and drop any older cache). ``rng``: a NumPy
        Generator, given in training to layers that set ``needs_rng``."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x, training=False, rng=None)")

    def backward(self, grad_output, propagate=True):
        """Given dC/d(output), fill ``self.grads`` and return dC/dx (None when ``propagate`` is False)."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward(grad_output, propagate=True)")

    def forward_logits(self, x, training=False, rng=None):
        """(z, a): the pre-activation and the output, for the fused losses (layers with an ``activation``)."""
        raise TypeError(f"layer {self.name or self.kind} does not end with an activation function, so it cannot "
                        "hand logits to a fused loss")

    def backward_delta(self, delta, propagate=True):
        """Backward from delta = dC/dz, the gradient at the logits (the fused losses' BP1)."""
        raise TypeError(f"layer {self.name or self.kind} does not end with an activation function")

    def clear_cache(self):
        """Drop what the last training forward pass cached."""
        self._cache = self.log_normalizer = None

    # ---- state carried from one training batch into the next (stateful recurrent layers) ---------------

    def carried_state(self):
        """The state this layer carries per row into the next training batch, by name (a stateful LSTM:
        ``{"h": (n, H), "c": (n, H)}``); empty when there is none (the default, and after a reset).

        Unlike :attr:`state` (fixed shapes, the same on every MPI rank), it has one row per row of the
        batch, each rank carrying its own rows. Checkpoints save it and :meth:`set_carried_state` restores it.
        """
        return {}

    def set_carried_state(self, arrays):
        """Restore what :meth:`carried_state` returned (NumPy arrays are moved to the layer's backend).

        Raises
        ------
        ValueError
            The default: the layer carries no state, so only an empty mapping is accepted.
        """
        if arrays:
            raise ValueError(f"layer {self.name or self.kind} carries no state between batches, but was given "
                             f"{', '.join(sorted(arrays))}; the checkpoint belongs to another model")

    def reset_carried_state(self):
        """Forget the carried state: the next training batch starts from zeros (default: nothing to forget)."""

    def _require_cache(self):
        if self._cache is None:
            raise RuntimeError(
                f"backward called on layer {self.name or self.kind} without a preceding forward pass with "
                "training=True; call forward(x, training=True) first"
            )
        return self._cache

    # ---- description and rebuilding ------------------------------------------------------------------

    def config(self):
        """The constructor's arguments as plain data, with ``"type"`` (the kind) and ``"name"``.

        The default reads each constructor parameter back from the attribute of the same name; override it
        when a layer stores its arguments otherwise.
        """
        arguments = {}
        for parameter in inspect.signature(type(self)).parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) or parameter.name == "name":
                continue
            if not hasattr(self, parameter.name):
                raise TypeError(
                    f"{type(self).__name__}.config() cannot find the constructor argument {parameter.name!r} "
                    f"as an attribute; store it as self.{parameter.name} or override config()"
                )
            arguments[parameter.name] = getattr(self, parameter.name)
        return {"type": self.kind, **arguments, "name": self.name}

    @classmethod
    def from_config(cls, config):
        """A new layer built from :meth:`config`'s output."""
        return cls(**{key: value for key, value in config.items() if key != "type"})

    def describe(self):
        """One line for ``summary()``: the class name and what sets this layer apart."""
        return type(self).__name__

    def __repr__(self):
        try:
            arguments = ", ".join(f"{key}={value!r}" for key, value in self.config().items() if key != "type")
        except TypeError:  # a layer whose config() cannot be read back still gets a repr
            arguments = f"name={self.name!r}"
        return f"{type(self).__name__}({arguments})"


class AffineLayer(Layer):
    """What Dense and Conv2D share: z, an affine map of x with weights W (and bias b unless ``bias`` is
    False), then a = f(z), with the hook of the fused losses.

    A subclass sets ``activation``, ``weight_init``, ``bias_init`` and ``bias`` and implements
    ``_affine(x)`` → (what ``backward_delta`` needs of x, the product part of z, without the bias),
    ``_bias_term()`` (b shaped to broadcast over z) and ``backward_delta(delta, propagate)``.
    """

    bias = True
    #: z, kept by a training forward pass for an activation whose derivative is computed from z (else None:
    #: the cache's a serves, and z was overwritten by it).
    _z = None

    def _set_components(self, activation, weight_init, bias_init, bias):
        """Resolve and store the activation, the initialisers ("auto": He before relu, else Xavier) and the
        bias switch (checked by the subclass's declaration)."""
        self.activation = get_activation(activation)
        self.weight_init = _resolve_weight_init(weight_init, self.activation)
        self.bias_init = get_initializer(bias_init)
        self.bias = bias

    def initialize(self, rng):
        """Fill W and b in place from the layer's initialisers, drawing from ``rng`` (a NumPy Generator)."""
        for key, initializer in (("W", self.weight_init), ("b", self.bias_init)):
            if key in self.params:
                array = self.params[key]
                _fill(array, initializer(array.shape, rng, np.float64))

    def forward(self, x, training=False, rng=None):
        """a = f(z) for x ``(n_samples, *input_shape)``; returns ``(n_samples, *output_shape)``.

        With ``training=True``, cache what backward needs of x, and a; with False, cache nothing (and drop
        any old cache).
        """
        if self.activation.derivative_from == "z":
            return self.forward_logits(x, training, rng)[1]  # z stays: backward computes f'(z) from it
        saved, z = self._affine(x)
        a = self._activate_in_place(z)
        self._cache = (saved, a) if training else None
        self._z = None
        return a

    def _activate_in_place(self, z):
        """a = f(z + b), written over z: z is not needed after this (the derivative is computed from a), so the
        bias and then a overwrite it (benchmarks/NOTES.md, "activations in place"); Dense's relu(z + b) is one
        compiled pass when numnet.kernels applies ("compiled bias and relu"), the same numbers."""
        if self.bias:
            return self.activation.add_and_forward(z, self._bias_term())
        return self.activation.forward(z, out=z)

    def forward_logits(self, x, training=False, rng=None):
        """(z, a): the logits stay, for the fused losses (and for an activation whose derivative is computed
        from z, cached for backward)."""
        saved, z = self._affine(x)
        if self.bias:
            z += self._bias_term()
        a, self.log_normalizer = forward_for_fused_loss(self.activation, z, training)
        self._cache = (saved, a) if training else None
        self._z = z if training and self.activation.derivative_from == "z" else None
        return z, a

    @property
    def output(self):
        """The activation ``a`` cached by the last training forward pass."""
        return self._require_cache()[1]

    def backward(self, grad_output, propagate=True):
        """Backpropagate dC/da (not modified) through the activation and the affine map; returns dC/dx, or
        None when ``propagate`` is False."""
        _, a = self._require_cache()
        # BP2 (its second factor; BP1 for the output layer): delta = dC/da ⊙ f'(z), f' computed from a or z
        delta = self._activation_backward(grad_output, a if self._z is None else self._z)
        return self.backward_delta(delta, propagate)

    def _activation_backward(self, grad_output, f_input):
        """dC/da ⊙ f'(z), f' computed from ``f_input`` (a, or z where the activation says)."""
        return self.activation.backward(grad_output, f_input)

    def clear_cache(self):
        super().clear_cache()
        self._z = None

    def _components(self):
        """The activation, initialisers and bias switch as config entries (rebuilt by _components_from)."""
        components = {"activation": self.activation.name,
                      "activation_options": constructor_options(self.activation, get_activation, "activation"),
                      "weight_init": _component(self.weight_init), "bias_init": _component(self.bias_init)}
        if not self.bias:
            components["bias"] = False
        return components

    @staticmethod
    def _components_from(config):
        """The constructor's activation, weight_init, bias_init and bias keywords from a saved config."""
        components = {key: rebuild(get_initializer, config[key]["name"], config[key]["options"])
                      for key in ("weight_init", "bias_init") if key in config}
        return {"activation": _activation_from(config), "bias": config.get("bias", True), **components}


class Dense(AffineLayer):
    """A fully connected layer: z = x W + b, a = f(z).

    Parameters
    ----------
    n_inputs, n_outputs : int
        W has shape (n_inputs, n_outputs) and b shape (n_outputs,).
    activation : str or Activation function, default "linear"
    weight_init : str, Initializer or "auto", default "auto"
        "auto" chooses He for relu-like activations and Xavier otherwise.
    bias_init : float, str or Initializer, default 0.0
    bias : bool, default True
        False for a layer without b, z = x W: right before a BatchNorm, whose β replaces the bias (a bias
        there has an exact gradient of zero and would only drift with rounding).
    name : str, optional
        Set by the network ("dense_0", ...) when not given.

    Attributes
    ----------
    params, grads : dict of str to ndarray
        "W" and "b", and their gradients dC/dW, dC/db after ``backward``. Both are views into the
        network's flat parameter and gradient buffers once the layer is part of a Network.
    """

    position_wise = True  # on a sequence, the same affine map at every time step

    @declare(n_inputs=Integer(), n_outputs=Integer(), bias=Boolean())
    def __init__(self, n_inputs, n_outputs, activation="linear", *, weight_init="auto", bias_init=0.0,
                 bias=True, name=None):
        super().__init__(name=name)
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self._set_components(activation, weight_init, bias_init, bias)

    def parameter_shapes(self):
        shapes = {"W": (self.n_inputs, self.n_outputs)}
        if self.bias:
            shapes["b"] = (self.n_outputs,)
        return shapes

    def penalized_parameters(self):
        return ("W",)

    def expected_input_shape(self):
        return (self.n_inputs,)

    def output_shape(self, input_shape):
        # A vector per sample, or one per time step of a sequence (time_steps, n_inputs): the last axis.
        if input_shape is not None and len(input_shape) == 2:
            if input_shape[-1] is not None and input_shape[-1] != self.n_inputs:
                raise ValueError(f"takes {self.n_inputs} inputs per time step")
            return (input_shape[0], self.n_outputs)
        if input_shape is not None and tuple(input_shape) != (self.n_inputs,) and None not in input_shape:
            raise ValueError(f"takes {self.n_inputs} inputs per sample")
        return (self.n_outputs,)

    def _affine(self, x):
        """(x, x W): x (n_samples, n_inputs) is what BP4 needs; x W is (n_samples, n_outputs). A sequence
        x (n_samples, time_steps, n_inputs) is mapped at every time step by the same W and b."""
        return x, x @ self.params["W"]

    def _bias_term(self):
        return self.params["b"]  # (n_outputs,), broadcast over the rows of x W

    def backward_delta(self, delta, propagate=True):
        """Fill ``grads`` from delta = dC/dz and return dC/dx = delta Wᵀ (or None when not ``propagate``)."""
        x, _ = self._require_cache()
        xp = namespace(delta)
        sequence_shape = None  # x's shape when it is a sequence, given back to dC/dx
        if x.ndim > 2:  # every time step is a row of the batch for the sums over it (one product each)
            sequence_shape = x.shape
            x, delta = xp.reshape(x, (-1, x.shape[-1])), xp.reshape(delta, (-1, delta.shape[-1]))
        # BP4: dC/dW = a_prevᵀ delta, summed over the batch by the matrix product
        apply(xp.matmul, x.T, delta, out=self.grads["W"])
        if self.bias:
            # BP3: dC/db = delta, summed over the batch
            apply(xp.sum, delta, axis=0, out=self.grads["b"])
        if not propagate:
            return None
        # BP2 (its first factor): dC/da_prev = delta Wᵀ; the previous layer multiplies by its f'(z)
        grad_input = delta @ self.params["W"].T
        return grad_input if sequence_shape is None else xp.reshape(grad_input, sequence_shape)

    def config(self):
        """Plain data, the format-version-1 layout older numnet reads: sizes, activation and initialisers
        (and ``"bias": false`` for a layer without bias, which only format version 2 holds)."""
        components = self._components()
        # In 0.1's key order, so that a Dense-only model's file stays byte for byte what 0.1 wrote
        return {"type": "dense", "n_inputs": self.n_inputs, "n_outputs": self.n_outputs,
                "activation": components.pop("activation"), "name": self.name, **components}

    @classmethod
    def from_config(cls, config):
        return cls(config["n_inputs"], config["n_outputs"], name=config["name"], **cls._components_from(config))

    def describe(self):
        return f"Dense {self.n_inputs} -> {self.n_outputs}, {self.activation.name}" + ("" if self.bias else ", no bias")

    def __repr__(self):
        """``Dense(n_inputs, n_outputs, ...)`` with every setting that differs from the constructor's default
        (an initialiser counts as a default when it is the one "auto" or 0.0 gives)."""
        default = Dense(self.n_inputs, self.n_outputs, self.activation)
        settings = [f"activation={_shown_activation(self.activation)}"] if self.activation.name != "linear" else []
        settings += [f"{key}={getattr(self, key)!r}" for key in ("weight_init", "bias_init")
                     if _component(getattr(self, key)) != _component(getattr(default, key))]
        settings += [] if self.bias else ["bias=False"]
        settings += [] if self.name is None else [f"name={self.name!r}"]
        return f"Dense({', '.join([str(self.n_inputs), str(self.n_outputs), *settings])})"


def _shown_activation(activation):
    """'relu', or the object's repr when it carries options (LeakyReLU(negative_slope=0.2))."""
    try:
        options = constructor_options(activation, get_activation, "activation")
    except ValueError:  # a user's own activation, not in the table: its own repr says what it is
        return repr(activation)
    return repr(activation) if options else repr(activation.name)


class Activation(Layer):
    """An activation function as a layer of its own: a = f(x), shape unchanged (Keras' ``Activation``).

    It lets the book's order Dense → BatchNorm → ReLU be written; a trailing ``Activation("softmax")``
    trains with the fused softmax cross-entropy like ``Dense(..., "softmax")``. Not to be confused with
    :class:`numnet.activations.Activation`, the base class of the activation *functions* this layer applies.

    Parameters
    ----------
    activation : str or activation function
        "relu", "sigmoid", "tanh", "leaky_relu", "linear", "softmax", or an instance.
    name : str, optional
    """

    position_wise = True  # element-wise, or softmax over the last axis

    def __init__(self, activation, *, name=None):
        super().__init__(name=name)
        self.activation = get_activation(activation)

    def forward(self, x, training=False, rng=None):
        # A new array, never x itself: x is the previous layer's output, which its backward may still need.
        a = self.activation.forward(x)
        # What backward's f' is computed from: a, or x itself (this layer's z) when the activation says "z"
        kept = x if self.activation.derivative_from == "z" else a
        self._cache = kept if training else None
        return a

    def forward_logits(self, x, training=False, rng=None):
        return x, self.forward(x, training, rng)

    def backward(self, grad_output, propagate=True):
        kept = self._require_cache()
        if not propagate:
            return None
        # BP2's second factor, on its own: dC/dx = dC/da ⊙ f'(x)
        return self.activation.backward(grad_output, kept)

    def backward_delta(self, delta, propagate=True):
        self._require_cache()
        # z is this layer's input, so dC/dx is delta itself (the fused loss already applied f')
        return delta if propagate else None

    def config(self):
        return {"type": self.kind, "activation": self.activation.name,
                "activation_options": constructor_options(self.activation, get_activation, "activation"),
                "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(_activation_from(config), name=config["name"])

    def describe(self):
        return f"Activation {self.activation.name}"


class Dropout(Layer):
    """Inverted dropout: in training each value is zeroed with probability ``rate`` and the rest are scaled
    by 1/(1 - rate), so the expected output equals the input; at inference it is the identity.

    The masks come from the ``rng`` fit passes for each step, drawn from a stream of their own (derived
    from the fit's seed and the step number, not from the generator that shuffles the batches): adding
    Dropout does not change which batches a run sees, the same seed gives the same weights, and a resumed
    run draws the same masks. In data-parallel training the mask is drawn for the global batch and each
    rank keeps its shard's rows, so every rank drops exactly what one process would.

    Parameters
    ----------
    rate : float in [0, 1)
        The probability of dropping each value.
    name : str, optional
    """

    needs_rng = True
    position_wise = True  # the identity in prediction

    @declare(rate=Real(at_least=0, below=1, meaning="the probability of dropping a unit"))
    def __init__(self, rate, *, name=None):
        super().__init__(name=name)
        self.rate = rate

    def forward(self, x, training=False, rng=None):
        if not training:
            self._cache = None
            return x
        if self.rate == 0.0:
            self._cache = (None,)  # the identity, remembered so that backward knows a forward happened
            return x
        if rng is None:
            raise ValueError(f"layer {self.name or self.kind} needs rng (a numpy.random.Generator) to draw its "
                             "mask in training; fit passes one")
        xp = namespace(x)
        # (n_samples, *shape) 1/(1 - rate) where kept, 0 where dropped
        kept = _keep_mask(x.shape, self.rate, rng, self.context)
        scale = xp.asarray(kept, dtype=x.dtype) * (1.0 / (1.0 - self.rate))
        self._cache = (scale,)
        return x * scale

    def backward(self, grad_output, propagate=True):
        (scale,) = self._require_cache()
        if not propagate:
            return None
        # The same mask and scale as forward: dC/dx = dC/dy ⊙ mask / (1 - rate)
        return grad_output if scale is None else grad_output * scale

    def describe(self):
        return f"Dropout rate {self.rate:g}"


class BatchNorm(Layer):
    """Batch normalisation (Ioffe & Szegedy 2015): y = γ·(x - μ)/√(σ² + ε) + β per feature.

    On (n_samples, n_features) the statistics are per feature over the batch; on images
    (n_samples, channels, height, width) per channel over the batch and every pixel, as convolutional
    networks use it. Training normalises with the batch's mean and (biased) variance and updates the
    running statistics; inference (predict, evaluate, validation, the loss value) uses the running ones.

    Running statistics follow PyTorch's momentum convention:
    ``running = (1 - momentum)·running + momentum·batch_statistic`` with momentum 0.1 by default
    (Keras calls 1 - momentum its momentum, 0.99 by default). ``running_var`` accumulates the unbiased
    batch variance (n/(n-1)·σ²), as PyTorch does; it starts at 1 and ``running_mean`` at 0.

    γ (``gamma``, starts at 1) and β (``beta``, starts at 0) are trainable and not penalised by L2. In
    data-parallel training the statistics are summed over every rank (synchronised batch normalisation),
    so they are those of the global batch.

    Parameters
    ----------
    n_features : int
        Features (or channels) of the input.
    momentum : float in (0, 1], default 0.1
    eps : float > 0, default 1e-5
        Added to the variance before the square root.
    name : str, optional
    """

    @declare(n_features=Integer(), momentum=Real(above=0, at_most=1, meaning="the weight of each batch's statistics"),
             eps=Real(above=0, meaning="it keeps the square root away from zero"))
    def __init__(self, n_features, momentum=0.1, eps=1e-5, *, name=None):
        super().__init__(name=name)
        self.n_features = n_features
        self.momentum = momentum
        self.eps = eps

    def parameter_shapes(self):
        return {"gamma": (self.n_features,), "beta": (self.n_features,)}

    def state_shapes(self):
        return {"running_mean": (self.n_features,), "running_var": (self.n_features,)}

    def output_shape(self, input_shape):
        if input_shape is None:
            return None
        if len(input_shape) not in (1, 3):
            raise ValueError("normalises (n_samples, n_features) or (n_samples, channels, height, width)")
        if input_shape[0] is not None and input_shape[0] != self.n_features:
            raise ValueError(f"normalises {self.n_features} features (or channels)")
        return tuple(input_shape)

    def min_batch_size(self, input_shape):
        # Each feature needs two values in a training batch; an image gives one per pixel already.
        pixels = math.prod(input_shape[1:]) if input_shape is not None and None not in input_shape else 1
        return 2 if pixels < 2 else 1

    def initialize(self, rng):
        _fill(self.params["gamma"], np.ones(self.n_features))
        _fill(self.params["beta"], np.zeros(self.n_features))
        _fill(self.state["running_mean"], np.zeros(self.n_features))
        _fill(self.state["running_var"], np.ones(self.n_features))

    def forward(self, x, training=False, rng=None):
        xp = namespace(x)
        axes, shape = _feature_axes(x)
        if not training:
            self._cache = None
            mean, var = (xp.reshape(self.state[key], shape) for key in ("running_mean", "running_var"))
            return (x - mean) / xp.sqrt(var + self.eps) * xp.reshape(self.params["gamma"], shape) \
                + xp.reshape(self.params["beta"], shape)
        count = self._global_count(x)
        mean = self._sum(x, axes) / count  # (n_features,), the global batch's
        centered = x - xp.reshape(mean, shape)
        var = self._sum(centered * centered, axes) / count  # biased, as the normalisation uses it
        inv_std = 1.0 / xp.sqrt(var + self.eps)  # (n_features,)
        x_hat = centered * xp.reshape(inv_std, shape)
        self._update_running_statistics(mean, var, count)
        self._cache = (x_hat, inv_std, count)
        return x_hat * xp.reshape(self.params["gamma"], shape) + xp.reshape(self.params["beta"], shape)

    def _global_count(self, x):
        """Values per feature in the whole (global) training batch; at least two are needed."""
        rows = x.shape[0] if self.context is None else self.context.global_size
        count = rows * math.prod(x.shape[2:])
        if count < 2:
            raise ValueError(
                f"layer {self.name or self.kind} (BatchNorm) needs at least 2 values per feature in a training "
                f"batch, but the batch holds {rows} sample(s) of shape {tuple(x.shape[1:])}; its variance would "
                "be 0/0. Use a batch_size of 2 or more so that no batch holds a single sample"
            )
        return count

    def _sum(self, values, axes):
        """Σ over the batch (and pixels) per feature, over every rank in data-parallel training."""
        local = namespace(values).sum(values, axis=axes)
        return local if self.context is None else self.context.sum(local)

    def _update_running_statistics(self, mean, var, count):
        momentum = self.momentum
        running_mean, running_var = self.state["running_mean"], self.state["running_var"]
        running_mean[...] = (1.0 - momentum) * running_mean + momentum * mean
        # The unbiased variance n/(n-1)·σ², as PyTorch accumulates it
        running_var[...] = (1.0 - momentum) * running_var + momentum * var * (count / (count - 1))

    def backward(self, grad_output, propagate=True):
        x_hat, inv_std, count = self._require_cache()
        xp = namespace(grad_output)
        axes, shape = _feature_axes(grad_output)
        # dC/dβ = Σ dC/dy and dC/dγ = Σ dC/dy ⊙ x̂, over the batch (and pixels)
        apply(xp.sum, grad_output, axis=axes, out=self.grads["beta"])
        apply(xp.sum, grad_output * x_hat, axis=axes, out=self.grads["gamma"])
        if not propagate:
            return None
        # dC/dx = γ/σ · (g - mean(g) - x̂ · mean(g ⊙ x̂)), the means over the whole (global) batch
        mean_grad, mean_grad_x_hat = self._global_means(self.grads["beta"], self.grads["gamma"], count)
        scale = xp.reshape(self.params["gamma"] * inv_std, shape)
        return scale * (grad_output - xp.reshape(mean_grad, shape) - x_hat * xp.reshape(mean_grad_x_hat, shape))

    def _global_means(self, sum_grad, sum_grad_x_hat, count):
        """The batch means of g and g ⊙ x̂, in this shard's scale of the loss.

        Each rank's g is the gradient of its shard's mean loss, which is its share w = n_local/n_global of
        the global mean's: the global sums weight every rank's sums by its w, and dividing by this rank's w
        brings the means back to its own scale (in one process w = 1 and they are plain means).
        """
        if self.context is None or not self.context.is_distributed:
            return sum_grad / count, sum_grad_x_hat / count
        weight = self.context.weight
        totals = [self.context.sum(values * weight) for values in (sum_grad, sum_grad_x_hat)]
        if weight == 0.0:  # an empty shard joins the collectives but has no rows to send a gradient to
            return totals[0] * 0.0, totals[1] * 0.0
        return totals[0] / (count * weight), totals[1] / (count * weight)

    def describe(self):
        return f"BatchNorm {self.n_features} features, momentum {self.momentum:g}"


#: Every layer class by its kind, as saved in a model file. Persistence looks the saved "type" up here and
#: rebuilds the layer from its config; :func:`register_layer` adds a user's own class.
LAYERS = {"dense": Dense, "activation": Activation, "dropout": Dropout, "batch_norm": BatchNorm}


def register_layer(layer_class):
    """Add a Layer subclass to :data:`LAYERS` under its ``kind``, so that models holding it can be loaded.

    Returns the class, so it can decorate the class definition.

    Raises
    ------
    TypeError
        When ``layer_class`` is not a subclass of Layer.
    ValueError
        When another class is registered under the same kind.
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, Layer)):
        raise TypeError(f"register_layer needs a subclass of numnet.Layer, got {layer_class!r}")
    registered = LAYERS.get(layer_class.kind)
    if registered is not None and registered is not layer_class:
        raise ValueError(f"the layer kind {layer_class.kind!r} is already registered for {registered.__name__}; "
                         "set a different `kind` class attribute")
    LAYERS[layer_class.kind] = layer_class
    return layer_class


def named_layers(layers, where):
    """The layers as a list, each a Layer, named ``<kind>_<index>`` unless named already, names unique: a
    network's layers, or a composite layer's. ``where`` names what held them, for the messages.

    Raises
    ------
    ValueError
        For no layers, one layer object twice, or names that repeat.
    TypeError
        For something that is not a Layer.
    """
    layers = list(layers)
    if not layers:
        raise ValueError(f"{where} is empty; give at least one layer (e.g. a Dense layer)")
    for index, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"{where}[{index}] must be a numnet Layer (e.g. numnet.Dense), got {type(layer).__name__}")
    if len({id(layer) for layer in layers}) != len(layers):
        raise ValueError(f"the same layer object appears twice in {where}; create a new layer for each position")
    # Unnamed layers are called <kind>_<index>; an explicit name may collide with one of those.
    names = [layer.name or f"{layer.kind}_{index}" for index, layer in enumerate(layers)]
    if len(names) != len(set(names)):
        raise ValueError(f"layer names must be unique, got {names}")
    for layer, name in zip(layers, names):
        layer.name = name
    return layers


def get_layer_class(kind):
    """The class registered under ``kind`` (a saved layer's "type").

    Raises
    ------
    ValueError
        For a kind nobody registered, listing the known ones.
    """
    try:
        return lookup_class(LAYERS, kind, "layer type")
    except ValueError as error:
        raise ValueError(f"{error}; a layer class of your own must be registered with "
                         "numnet.layers.register_layer(YourLayer) before the model is loaded") from None


# ---- helpers ---------------------------------------------------------------------------------------------


def _fill(array, values):
    """Write NumPy ``values`` into ``array`` (a parameter or state view on any backend), in its dtype."""
    array[...] = namespace(array).asarray(np.asarray(values), dtype=array.dtype)


def _keep_mask(shape, rate, rng, context):
    """Which values of an array of ``shape`` (rows first) survive inverted dropout at ``rate``, a NumPy bool
    array: drawn for the global batch (``context``'s rows in data-parallel training, else ``shape[0]``) and
    cut to this shard's rows, so every rank drops exactly what one process would. Dropout's masks, and
    MultiHeadAttention's on its attention weights."""
    global_rows, start = shape[0], 0
    if context is not None:
        global_rows, start = context.global_size, context.start
    uniform = rng.random((global_rows, *shape[1:]), dtype=np.float32)
    return uniform[start:start + shape[0]] >= rate


def _feature_axes(x):
    """(the axes BatchNorm sums over, the shape its per-feature vectors broadcast as) for x of 2 or 4 dims."""
    if x.ndim == 2:
        return (0,), (1, x.shape[1])
    return (0, 2, 3), (1, x.shape[1], 1, 1)


def auto_weight_init(activation):
    """The initialiser ``weight_init="auto"`` picks for a layer followed by ``activation``: the activation's
    own ``default_weight_init`` fact.

    He keeps the spread of relu-like layers (they zero half their inputs); Xavier keeps that of the others.

    Parameters
    ----------
    activation : Activation
        The activation object (from :data:`numnet.ACTIVATIONS`) that follows the layer's weights.

    Returns
    -------
    str
        A name of :data:`numnet.INITIALIZERS`: ``"he"`` for relu and leaky_relu, ``"xavier"`` for numnet's
        other activations and for an activation that does not state the fact.

    Examples
    --------
    >>> from numnet.activations import get_activation
    >>> auto_weight_init(get_activation("relu")), auto_weight_init(get_activation("tanh"))
    ('he', 'xavier')
    """
    return getattr(activation, "default_weight_init", "xavier")


def _resolve_weight_init(spec, activation):
    if isinstance(spec, str) and spec.strip().lower() == "auto":
        return get_initializer(auto_weight_init(activation))
    return get_initializer(spec)


def _component(initializer):
    """{"name", "options"} of a registered initialiser."""
    return {"name": initializer.name, "options": constructor_options(initializer, get_initializer, "initializer")}


def _activation_from(config):
    return rebuild(get_activation, config["activation"], config.get("activation_options", {}))


__all__ = ["Layer", "AffineLayer", "Dense", "Activation", "Dropout", "BatchNorm", "LAYERS", "register_layer",
           "get_layer_class", "auto_weight_init", "named_layers"]
