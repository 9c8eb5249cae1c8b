"""LayerNorm: each sample's (or each time step's) features normalised by their own mean and variance.

Batch normalisation (:class:`numnet.layers.BatchNorm`) takes its statistics over the batch, per feature;
layer normalisation (Ba, Kiros & Hinton 2016) takes them over the features, per row: y = γ ⊙ (x - μ)/√(σ² + ε)
+ β with μ and σ² the mean and (biased) variance of each row's last axis. Nothing is shared between rows, so
training and prediction compute the same function, no running statistics are kept, a batch of one is fine,
and on a sequence (n, time_steps, dim) every time step is normalised alone: the normalisation of the
transformer, before (GPT-2) or after (the original) each attention and feed-forward block.

The layer registers its kind (layer_norm) in :data:`numnet.layers.LAYERS` when this module is imported
(``import numnet`` does), so saved models holding it load.
"""

import numpy as np

from .backend import apply, namespace
from .layers import Layer, _fill, register_layer
from .validation import Boolean, Integer, Real, declare


@register_layer
class LayerNorm(Layer):
    """Layer normalisation over the last axis: y = γ ⊙ (x - μ)/√(σ² + ε) + β, μ and σ² per row.

    ``x`` may have any leading shape, (n_samples, dim) or (n_samples, time_steps, dim): each vector along the
    last axis is normalised by its own mean and biased variance. ``gamma`` (dim,) starts at 1 and ``beta``
    (dim,) at 0, PyTorch's ``nn.LayerNorm(dim, eps, bias=bias)`` ``weight`` and ``bias`` as they are; neither is
    penalised by L2. Training and prediction compute the same function (no running statistics).

    Parameters
    ----------
    dim : int
        The length of the last axis.
    eps : float > 0, default 1e-5
        Added to the variance before the square root (PyTorch's default).
    bias : bool, default True
        False for a layer without β, y = γ ⊙ x̂ (nanoGPT's ``bias=False``).
    name : str, optional
        Set by the network ("layer_norm_0", ...) when not given.

    Examples
    --------
    >>> import numpy as np
    >>> layer = LayerNorm(3)
    >>> layer.bind({"gamma": np.ones(3), "beta": np.zeros(3)}, {"gamma": np.zeros(3), "beta": np.zeros(3)})
    >>> layer.forward(np.array([[1.0, 2.0, 3.0]])).round(4)
    array([[-1.2247,  0.    ,  1.2247]])
    """

    position_wise = True  # each time step normalised alone

    @declare(dim=Integer(), eps=Real(above=0, meaning="it keeps the square root away from zero"), bias=Boolean())
    def __init__(self, dim, eps=1e-5, bias=True, *, name=None):
        super().__init__(name=name)
        self.dim = dim
        self.eps = eps
        self.bias = bias

    def parameter_shapes(self):
        shapes = {"gamma": (self.dim,)}
        if self.bias:
            shapes["beta"] = (self.dim,)
        return shapes

    def output_shape(self, input_shape):
        if input_shape is not None and (len(input_shape) == 0 or input_shape[-1] not in (None, self.dim)):
            raise ValueError(f"normalises vectors of {self.dim} features along the last axis")
        return None if input_shape is None else tuple(input_shape)

    def initialize(self, rng):
        """γ = 1 and β = 0: the layer starts as the plain normalisation."""
        _fill(self.params["gamma"], np.ones(self.dim))
        if self.bias:
            _fill(self.params["beta"], np.zeros(self.dim))

    def forward(self, x, training=False, rng=None):
        """y for x (..., dim); with ``training=True`` cache x̂ and 1/√(σ² + ε) for backward.

        Raises
        ------
        ValueError
            When the last axis of ``x`` is not ``dim`` long.
        """
        if x.ndim < 2 or x.shape[-1] != self.dim:
            raise ValueError(f"layer {self.name or self.kind} (LayerNorm) normalises inputs of shape (..., {self.dim}) "
                             f"with samples first, got shape {tuple(x.shape)}")
        xp = namespace(x)
        centered = x - xp.mean(x, axis=-1, keepdims=True)
        variance = xp.mean(centered * centered, axis=-1, keepdims=True)  # biased, as PyTorch's LayerNorm
        inv_std = 1.0 / xp.sqrt(variance + self.eps)  # (..., 1): one per row
        x_hat = centered * inv_std
        self._cache = (x_hat, inv_std) if training else None
        y = x_hat * self.params["gamma"]
        return y + self.params["beta"] if self.bias else y

    def backward(self, grad_output, propagate=True):
        """Fill dC/dγ (and dC/dβ) from dC/dy (..., dim) and return dC/dx, or None when ``propagate`` is False."""
        x_hat, inv_std = self._require_cache()
        xp = namespace(grad_output)
        rows = tuple(range(grad_output.ndim - 1))  # every axis but the features: the batch and the time steps
        if self.bias:
            # BP3 (β is the bias of y = γ ⊙ x̂ + β): dC/dβ = dC/dy, summed over every row
            apply(xp.sum, grad_output, axis=rows, out=self.grads["beta"])
        # BP4 (γ weighs each normalised feature): dC/dγ = Σ dC/dy ⊙ x̂ over every row
        apply(xp.sum, grad_output * x_hat, axis=rows, out=self.grads["gamma"])
        if not propagate:
            return None
        # BP2 through the normalisation of each row, ĝ = γ ⊙ dC/dy:
        # dC/dx = (ĝ - mean(ĝ) - x̂ ⊙ mean(ĝ ⊙ x̂)) / √(σ² + ε), the means over the row's features
        g_hat = grad_output * self.params["gamma"]
        mean_g = xp.mean(g_hat, axis=-1, keepdims=True)
        mean_g_x_hat = xp.mean(g_hat * x_hat, axis=-1, keepdims=True)
        return inv_std * (g_hat - mean_g - x_hat * mean_g_x_hat)

    def describe(self):
        return f"LayerNorm {self.dim} features" + ("" if self.bias else ", no bias")


__all__ = ["LayerNorm"]
