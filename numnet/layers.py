"""Layers: forward and backward side by side. Today the fully connected (Dense) layer."""

import numpy as np

from .activations import Activation, get_activation
from .backend import apply, namespace
from .initializers import get_initializer
from .validation import check_integer


class Dense:
    """A fully connected layer: z = x W + b, a = f(z).

    Parameters
    ----------
    n_inputs, n_outputs : int
        W has shape (n_inputs, n_outputs) and b shape (n_outputs,).
    activation : str or Activation, default "linear"
    weight_init : str, Initializer or "auto", default "auto"
        "auto" chooses He for relu-like activations and Xavier otherwise.
    bias_init : float, str or Initializer, default 0.0
    name : str, optional
        Set by the network ("dense_0", ...) when not given.

    Attributes
    ----------
    params, grads : dict of str to ndarray
        "W" and "b", and their gradients dC/dW, dC/db after ``backward``. Both are views into the
        network's flat parameter and gradient buffers once the layer is part of a Network.
    """

    def __init__(self, n_inputs, n_outputs, activation="linear", *, weight_init="auto", bias_init=0.0,
                 name=None):
        self.n_inputs = check_integer(n_inputs, "n_inputs")
        self.n_outputs = check_integer(n_outputs, "n_outputs")
        self.activation = get_activation(activation)
        self.weight_init = _resolve_weight_init(weight_init, self.activation)
        self.bias_init = get_initializer(bias_init)
        self.name = name
        self.params = {}
        self.grads = {}
        self._cache = None

    def parameter_shapes(self):
        """The shape of each parameter, by name, in storage order."""
        return {"W": (self.n_inputs, self.n_outputs), "b": (self.n_outputs,)}

    def bind(self, params, grads):
        """Use the given arrays (views into a network's flat buffers) as this layer's parameters and gradients."""
        self.params = params
        self.grads = grads

    def initialize(self, rng):
        """Fill W and b in place from the layer's initialisers, drawing from ``rng`` (a NumPy Generator)."""
        for key, initializer in (("W", self.weight_init), ("b", self.bias_init)):
            array = self.params[key]
            xp = namespace(array)
            array[...] = xp.asarray(initializer(array.shape, rng, np.float64), dtype=array.dtype)

    def forward(self, x, training=True, return_logits=False):
        """Compute a = f(x W + b).

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_inputs)
        training : bool
            When True, cache x and a for ``backward``; when False, cache nothing (and drop any old cache).
        return_logits : bool
            Also return z (used by the fused losses, which work from logits).

        Returns
        -------
        a : ndarray, shape (n_samples, n_outputs), or (z, a) when ``return_logits``.
        """
        z = x @ self.params["W"]  # (n_samples, n_outputs)
        z += self.params["b"]
        if return_logits:
            a = self.activation.forward(z)
        else:
            # z is not needed after this (every derivative is computed from a), so a overwrites it
            # (benchmarks/NOTES.md, "activations in place").
            a = self.activation.forward(z, out=z)
        self._cache = (x, a) if training else None
        return (z, a) if return_logits else a

    @property
    def output(self):
        """The activation ``a`` cached by the last training forward pass."""
        return self._require_cache()[1]

    def backward(self, grad_output, propagate=True):
        """Backpropagate dC/da through the activation and the affine map.

        Parameters
        ----------
        grad_output : ndarray, shape (n_samples, n_outputs)
            dC/da for this layer's output. Not modified.
        propagate : bool
            Whether to return dC/dx; the first layer skips that product.

        Returns
        -------
        ndarray, shape (n_samples, n_inputs), or None when ``propagate`` is False.
        """
        _, a = self._require_cache()
        # BP2 (its second factor; BP1 for the output layer): delta = dC/da ⊙ f'(z)
        delta = self.activation.backward(grad_output, a)
        return self.backward_delta(delta, propagate)

    def backward_delta(self, delta, propagate=True):
        """Fill ``grads`` from delta = dC/dz and return dC/dx = delta Wᵀ (or None when not ``propagate``)."""
        x, _ = self._require_cache()
        # BP4: dC/dW = a_prevᵀ delta, summed over the batch by the matrix product
        xp = namespace(delta)
        apply(xp.matmul, x.T, delta, out=self.grads["W"])
        # BP3: dC/db = delta, summed over the batch
        apply(xp.sum, delta, axis=0, out=self.grads["b"])
        if not propagate:
            return None
        # BP2 (its first factor): dC/da_prev = delta Wᵀ; the previous layer multiplies by its f'(z)
        return delta @ self.params["W"].T

    def _require_cache(self):
        if self._cache is None:
            raise RuntimeError(
                f"backward called on layer {self.name or 'dense'} without a preceding forward pass with "
                "training=True; call forward(x, training=True) first"
            )
        return self._cache

    def clear_cache(self):
        """Drop what the last training forward pass cached."""
        self._cache = None

    @property
    def n_parameters(self):
        """Number of trainable numbers: n_inputs * n_outputs + n_outputs."""
        return self.n_inputs * self.n_outputs + self.n_outputs

    def config(self):
        """The layer's constructor arguments as plain data (for summaries and saving)."""
        return {
            "type": "dense",
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "activation": self.activation.name,
            "name": self.name,
        }

    def __repr__(self):
        return (f"Dense({self.n_inputs}, {self.n_outputs}, activation={self.activation.name!r}, "
                f"name={self.name!r})")


def _resolve_weight_init(spec, activation):
    if isinstance(spec, str) and spec.strip().lower() == "auto":
        return get_initializer("he" if activation.name in ("relu", "leaky_relu") else "xavier")
    return get_initializer(spec)


__all__ = ["Dense", "Activation"]
