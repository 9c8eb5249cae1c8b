"""MultiHeadAttention: scaled dot-product self-attention over a sequence, in several heads, the transformer's
mixing of time steps, with its backward pass written out.

For a sequence x (n, T, dim), every time step asks (query q), offers (key k) and carries (value v) a
vector; each head compares its queries with every key, scores = q kᵀ/√head_size (n, T, T), turns each row of
scores into weights by a softmax, and returns the weighted sum of the values (Vaswani et al. 2017). The
heads see different head_size = dim/n_heads column slices of q, k and v; their outputs, side by side, go
through an output projection.

Layout, nanoGPT's (``CausalSelfAttention``) up to a transpose: ``W_qkv`` (dim, 3·dim) and ``b_qkv`` (3·dim,)
compute q, k and v in one product, x·W_qkv + b_qkv = [q | k | v], each dim columns split into n_heads heads of
head_size consecutive columns (its ``c_attn.weight.T``, ``c_attn.bias`` and ``view(B, T, n_head, hs)``);
``W_o`` (dim, dim) and ``b_o`` (dim,) are its ``c_proj.weight.T`` and ``c_proj.bias``. PyTorch's
``nn.MultiheadAttention`` holds the same numbers as ``in_proj_weight = W_qkv.T``, ``in_proj_bias = b_qkv``,
``out_proj.weight = W_o.T``, ``out_proj.bias = b_o``.

The backward pass, head by head, in the reverse order of the forward one: the output projection (BP4, BP3,
then BP2 into the heads' outputs), the weighted sum of values (into the weights and the values), the
attention dropout's mask, the softmax of each row (its Jacobian diag(a) - a aᵀ, which gives the masked
entries, whose weight is exactly 0, a gradient of 0: the causal mask's backward is nothing more), the scores
(into q and k), and the fused projection (BP4, BP3, BP2 into x).

The layer registers its kind (multi_head_attention) in :data:`numnet.layers.LAYERS` when this module is
imported (``import numnet`` does), so saved models holding it load.
"""

import math

import numpy as np

from .activations import get_activation
from .backend import apply, namespace, to_numpy
from .initializers import Normal
from .layers import Layer, _fill, _keep_mask, register_layer
from .validation import Boolean, Integer, Real, declare

#: The standard deviation of the initial weights, GPT-2's and nanoGPT's N(0, 0.02²) for every projection.
INITIAL_STD = 0.02

#: Each row of scores to weights: numnet's softmax over the last axis (shifted by the row's maximum; e^-inf
#: of a masked score is exactly 0).
_SOFTMAX = get_activation("softmax")


@register_layer
class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product self-attention on sequences (n_samples, time_steps, dim).

    With qkv = x·W_qkv + b_qkv split into q, k, v and each into ``n_heads`` heads of head_size = dim/n_heads
    columns, each head computes softmax(q kᵀ/√head_size) v; the heads' outputs side by side, (n, T, dim), go
    through W_o and b_o. With ``causal=True`` time step t attends only to steps 0..t (a language model's
    mask, built for the length of each input: the sequence length is free). See :mod:`numnet.multi_head_attention`
    for the layout of the parameters (nanoGPT's, PyTorch's up to a transpose).

    The matrices start N(0, 0.02²), the biases at 0 (GPT-2's initialisation); L2 (or L1) penalises
    ``W_qkv`` and ``W_o``. After every forward pass, ``attention_weights`` holds its weights.

    Parameters
    ----------
    dim : int
        The features of each time step, in and out.
    n_heads : int
        The number of heads; must divide ``dim``.
    causal : bool, default False
        Mask the future: step t attends to steps 0..t only.
    dropout : float in [0, 1), default 0.0
        In training, each attention weight is dropped with this probability and the others scaled by
        1/(1 - dropout) (inverted dropout, as :class:`numnet.Dropout` draws its masks, from the ``rng`` fit
        passes); prediction uses every weight.
    bias : bool, default True
        False for a layer without ``b_qkv`` and ``b_o`` (nanoGPT's ``bias=False``).
    name : str, optional
        Set by the network ("multi_head_attention_0", ...) when not given.

    Raises
    ------
    ValueError
        When ``n_heads`` does not divide ``dim``.
    """

    @declare(dim=Integer(), n_heads=Integer(), causal=Boolean(),
             dropout=Real(at_least=0, below=1, meaning="the probability of dropping an attention weight"),
             bias=Boolean())
    def __init__(self, dim, n_heads, *, causal=False, dropout=0.0, bias=True, name=None):
        if dim % n_heads:
            raise ValueError(f"dim ({dim}) must be divisible by n_heads ({n_heads}): each head takes dim / n_heads "
                             f"consecutive columns of q, k and v; choose n_heads among "
                             f"{', '.join(str(k) for k in range(1, dim + 1) if dim % k == 0)}")
        super().__init__(name=name)
        self.dim = dim
        self.n_heads = n_heads
        self.causal = causal
        self.dropout = dropout
        self.bias = bias
        self._attention_weights = None

    @property
    def head_size(self):
        """dim / n_heads: the columns of q, k and v each head sees."""
        return self.dim // self.n_heads

    @property
    def needs_rng(self):
        """Whether a training forward pass draws a dropout mask (``dropout`` > 0)."""
        return self.dropout > 0

    @property
    def attention_weights(self):
        """The attention weights of the last forward pass (before dropout), a NumPy array (n_samples, n_heads,
        time_steps, time_steps): row t of a head's matrix is how much step t drew from each step. None before
        the first forward pass."""
        return None if self._attention_weights is None else np.asarray(to_numpy(self._attention_weights))

    # ---- what the layer holds ------------------------------------------------------------------------

    def parameter_shapes(self):
        shapes = {"W_qkv": (self.dim, 3 * self.dim), "b_qkv": (3 * self.dim,),
                  "W_o": (self.dim, self.dim), "b_o": (self.dim,)}
        return shapes if self.bias else {key: shapes[key] for key in ("W_qkv", "W_o")}

    def penalized_parameters(self):
        return ("W_qkv", "W_o")

    def expected_input_shape(self):
        return (None, self.dim)  # sequences of any length

    def output_shape(self, input_shape):
        if input_shape is not None and (len(input_shape) != 2 or input_shape[1] not in (None, self.dim)):
            raise ValueError(f"takes sequences of shape (time_steps, {self.dim})")
        return (None, self.dim) if input_shape is None else tuple(input_shape)

    def initialize(self, rng):
        """The matrices from N(0, 0.02²) (GPT-2's), drawn in float64 from ``rng``; the biases 0."""
        for key, array in self.params.items():
            values = Normal(std=INITIAL_STD)(array.shape, rng, np.float64) if key.startswith("W") else 0.0
            _fill(array, values)

    # ---- forward -------------------------------------------------------------------------------------

    def forward(self, x, training=False, rng=None):
        """The attention's output for ``x`` (n_samples, time_steps, dim), the same shape.

        With ``training=True`` cache what backward needs (and draw the dropout mask from ``rng``); with
        False cache nothing. Either way keep the attention weights in ``attention_weights``.

        Raises
        ------
        ValueError
            For input of another shape, or a training pass with dropout but no ``rng``.
        """
        self._check_input(x)
        xp = namespace(x)
        n, time_steps, dim = x.shape
        x_rows = xp.reshape(x, (n * time_steps, dim))
        qkv = x_rows @ self.params["W_qkv"]  # (n·T, 3·dim): [q | k | v]
        if self.bias:
            qkv += self.params["b_qkv"]
        heads = self._split_heads(qkv, n, time_steps)  # (3, n, H, T, head_size): q, k, v
        q, k, v = heads[0, ...], heads[1, ...], heads[2, ...]
        scores = q @ xp.matrix_transpose(k)  # (n, H, T, T)
        scores *= 1.0 / math.sqrt(self.head_size)
        if self.causal:
            scores = xp.where(_causal_mask(xp, time_steps), scores, xp.asarray(-math.inf, dtype=scores.dtype))
        weights = _SOFTMAX.forward(scores, out=scores)  # each row sums to 1
        self._attention_weights = weights
        scale = self._dropout_scale(weights, training, rng)
        used = weights if scale is None else weights * scale
        # The heads' outputs side by side, (n·T, dim): each head's product written into its columns, not merged
        # by a copy; with the backward's, 2 ms, 2.5% of a GPT step (benchmarks/NOTES.md, "attention's heads in
        # place")
        merged = xp.empty((n * time_steps, dim), dtype=x.dtype)
        apply(xp.matmul, used, v, out=self._split_heads(merged, n, time_steps)[0, ...])
        output = merged @ self.params["W_o"]
        if self.bias:
            output += self.params["b_o"]
        self._cache = (x_rows, heads, weights, scale, merged) if training else None
        return xp.reshape(output, (n, time_steps, dim))

    def _split_heads(self, rows, n, time_steps):
        """(n·T, blocks·dim) → (blocks, n, H, T, head_size): each block's dim columns in heads of head_size, a
        view of ``rows`` (a reshape and a transpose), so that what is written into it lands in ``rows``."""
        xp = namespace(rows)
        blocks = rows.shape[1] // self.dim
        split = xp.reshape(rows, (n, time_steps, blocks, self.n_heads, self.head_size))
        return xp.permute_dims(split, (2, 0, 3, 1, 4))

    def _dropout_scale(self, weights, training, rng):
        """The inverted-dropout factors of the weights (mask / (1 - dropout)), or None when nothing is dropped."""
        if not training or self.dropout == 0.0:
            return None
        if rng is None:
            raise ValueError(f"layer {self.name or self.kind} needs rng (a numpy.random.Generator) to draw its "
                             "attention dropout mask in training; fit passes one")
        kept = _keep_mask(weights.shape, self.dropout, rng, self.context)
        return namespace(weights).asarray(kept, dtype=weights.dtype) * (1.0 / (1.0 - self.dropout))

    def _check_input(self, x):
        if x.ndim != 3 or x.shape[2] != self.dim or x.shape[1] == 0:
            raise ValueError(f"layer {self.name or self.kind} (MultiHeadAttention) takes sequences of shape "
                             f"(n_samples, time_steps, {self.dim}) with at least one time step, got shape "
                             f"{tuple(x.shape)}")

    # ---- backward ------------------------------------------------------------------------------------

    def backward(self, grad_output, propagate=True):
        """Fill every parameter's gradient from dC/d(output) (n_samples, time_steps, dim) and return dC/dx, or
        None when ``propagate`` is False."""
        x_rows, heads, weights, scale, merged = self._require_cache()
        xp = namespace(grad_output)
        n, time_steps, dim = grad_output.shape
        rows = xp.reshape(grad_output, (n * time_steps, dim))
        # BP4 for the output projection: dC/dW_o = Yᵀ·dC/d(output), Y the heads' outputs side by side
        apply(xp.matmul, merged.T, rows, out=self.grads["W_o"])
        if self.bias:
            # BP3: dC/db_o = dC/d(output), summed over the batch and the time steps
            apply(xp.sum, rows, axis=0, out=self.grads["b_o"])
        # BP2 into the heads' outputs: dC/dY = dC/d(output)·W_oᵀ, split back into heads (n, H, T, head_size)
        d_head_outputs = self._split_heads(rows @ self.params["W_o"].T, n, time_steps)[0, ...]
        d_qkv = xp.empty((n * time_steps, 3 * dim), dtype=grad_output.dtype)  # dC/d[q | k | v]
        self._through_heads(d_head_outputs, heads, weights, scale, out=self._split_heads(d_qkv, n, time_steps))
        # BP4 for the fused projection: dC/dW_qkv = xᵀ·dC/d(qkv)
        apply(xp.matmul, x_rows.T, d_qkv, out=self.grads["W_qkv"])
        if self.bias:
            # BP3: dC/db_qkv = dC/d(qkv), summed over the batch and the time steps
            apply(xp.sum, d_qkv, axis=0, out=self.grads["b_qkv"])
        if not propagate:
            return None
        # BP2 into the layer's input: dC/dx = dC/d(qkv)·W_qkvᵀ
        return xp.reshape(d_qkv @ self.params["W_qkv"].T, (n, time_steps, dim))

    def _through_heads(self, d_head_outputs, heads, weights, scale, out):
        """Write dC/dq, dC/dk, dC/dv into ``out`` (3, n, H, T, head_size), from dC/d(each head's output)
        (n, H, T, hs): ``out`` is a view of dC/d[q | k | v]'s columns, so that the three products land in place
        (benchmarks/NOTES.md, "attention's heads in place")."""
        xp = namespace(d_head_outputs)
        q, k, v = heads[0, ...], heads[1, ...], heads[2, ...]
        used = weights if scale is None else weights * scale
        # The heads' outputs are used·v: dC/dv = usedᵀ·dC/dout and dC/d(used) = dC/dout·vᵀ
        apply(xp.matmul, xp.matrix_transpose(used), d_head_outputs, out=out[2, ...])
        d_used = d_head_outputs @ xp.matrix_transpose(v)  # (n, H, T, T)
        # The dropout mask and its scale, as forward applied them
        d_weights = d_used if scale is None else d_used * scale
        # BP2 through each row's softmax, J = diag(a) - a aᵀ; a masked score's weight is 0, so is its gradient
        d_scores = _SOFTMAX.backward(d_weights, weights)
        d_scores *= 1.0 / math.sqrt(self.head_size)
        # scores = q kᵀ/√hs: dC/dq = dC/d(scores)·k/√hs and dC/dk = dC/d(scores)ᵀ·q/√hs
        apply(xp.matmul, d_scores, k, out=out[0, ...])
        apply(xp.matmul, xp.matrix_transpose(d_scores), q, out=out[1, ...])

    def describe(self):
        settings = [f"{self.n_heads} heads"] + (["causal"] if self.causal else [])
        settings += [f"dropout {self.dropout:g}"] if self.dropout else []
        settings += [] if self.bias else ["no bias"]
        return f"MultiHeadAttention {self.dim}, " + ", ".join(settings)


def _causal_mask(xp, time_steps):
    """(T, T) booleans, True where step t (the row) may attend to step s (the column): s <= t."""
    steps = xp.arange(time_steps)
    return steps[None, :] <= steps[:, None]


__all__ = ["MultiHeadAttention"]
