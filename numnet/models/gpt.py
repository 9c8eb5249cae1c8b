"""A GPT: GPT-2's decoder-only transformer, as Karpathy's nanoGPT writes it in ``model.py``, of numnet layers.

The token ids (n, T) become vectors by a token embedding ``wte`` plus a learned position embedding ``wpe``;
``n_layer`` blocks refine them, each pre-LayerNorm with two residual connections,

    x ← x + attention(LayerNorm₁(x)),    x ← x + MLP(LayerNorm₂(x)),   MLP = Dense(4·d, gelu) → Dense(d),

the attention causal (step t sees steps 0..t) and split over ``n_head`` heads; a last LayerNorm, and the
logits of the next token are the final vectors times the token embedding's matrix transposed: the output
projection is *tied* to ``wte`` (one parameter, read twice, its gradient the sum of what both uses send
back, saved once).

:class:`GPT` is that model as one composite layer, whose backward pass is written out: the tied projection
first (dC/dW_te gets δᵀ·h, the blocks get δ·W_te), then the blocks from the last to the first through their
Residual and Sequential layers, then the embeddings, after which the token embedding's own gradient (the
scatter-add of its lookup) is added to the projection's. :func:`gpt` builds a Network of it, initialised
as nanoGPT initialises its model.
"""

import math

import numpy as np

from ..activations import forward_for_fused_loss, get_activation
from ..backend import namespace
from ..composite import CompositeModel, Residual, Sequential
from ..embedding import Embedding, PositionEmbedding
from ..initializers import Normal
from ..layer_norm import LayerNorm
from ..layers import Dense, Dropout, _fill, register_layer
from ..multi_head_attention import MultiHeadAttention
from ..network import Network
from ..validation import Boolean, Integer, Real, declare

#: nanoGPT's initial standard deviation of every matrix (and of both embeddings).
INITIAL_STD = 0.02
_SOFTMAX = get_activation("softmax")


def transformer_block(n_embd, n_head, *, dropout=0.0, bias=False, name=None):
    """One pre-LayerNorm block: Sequential(Residual(LayerNorm, causal attention[, Dropout]),
    Residual(LayerNorm, Dense 4·d gelu, Dense d[, Dropout])), nanoGPT's ``Block``."""
    attention = [LayerNorm(n_embd, bias=bias, name="ln_1"),
                 MultiHeadAttention(n_embd, n_head, causal=True, dropout=dropout, bias=bias, name="attn")]
    mlp = [LayerNorm(n_embd, bias=bias, name="ln_2"),
           Dense(n_embd, 4 * n_embd, "gelu", bias=bias, weight_init=Normal(std=INITIAL_STD), name="c_fc"),
           Dense(4 * n_embd, n_embd, bias=bias, weight_init=Normal(std=INITIAL_STD), name="c_proj")]
    if dropout:  # nanoGPT's resid_dropout, after each branch's projection
        attention.append(Dropout(dropout, name="attn_dropout"))
        mlp.append(Dropout(dropout, name="mlp_dropout"))
    return Sequential(Residual(*attention, name="attention"), Residual(*mlp, name="mlp"), name=name)


@register_layer
class GPT(CompositeModel):
    """GPT-2's architecture as one layer: token ids (n, T) in, the next token's logits (n, T, vocab_size) out.

    Its activation is the softmax, so that ``fit`` trains it with the fused softmax cross-entropy over the
    counted tokens; ``forward`` gives the probabilities. T may be anything up to ``block_size``.

    Parameters
    ----------
    vocab_size, block_size, n_layer, n_head, n_embd : int
        nanoGPT's ``GPTConfig``: the ids, the longest context, the blocks, the heads of each attention and
        the width (a multiple of ``n_head``).
    dropout : float, default 0.0
        On the embeddings' sum, the attention weights and after each residual branch (training only).
    bias : bool, default False
        Biases in the Dense, attention and LayerNorm layers (nanoGPT's ``bias``).
    name : str, optional
    """

    @declare(vocab_size=Integer(), block_size=Integer(), n_layer=Integer(), n_head=Integer(), n_embd=Integer(),
             dropout=Real(at_least=0, below=1, meaning="the probability of dropping a value"), bias=Boolean())
    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd, *, dropout=0.0, bias=False, name=None):
        self.vocab_size, self.block_size, self.n_layer = vocab_size, block_size, n_layer
        self.n_head, self.n_embd, self.dropout, self.bias = n_head, n_embd, dropout, bias
        layers = [Embedding(vocab_size, n_embd, name="wte"), PositionEmbedding(block_size, n_embd, name="wpe")]
        if dropout:
            layers.append(Dropout(dropout, name="drop"))
        layers += [transformer_block(n_embd, n_head, dropout=dropout, bias=bias, name=f"h_{index}")
                   for index in range(n_layer)]
        layers.append(LayerNorm(n_embd, bias=bias, name="ln_f"))
        super().__init__(*layers, name=name)
        self.activation = _SOFTMAX  # the fused loss's hook: forward_logits and backward_delta below

    @property
    def token_embedding(self):
        return self.children[0]

    # ---- shapes and initialisation -------------------------------------------------------------------

    def output_shape(self, input_shape):
        steps = None if input_shape is None else input_shape[0]
        if steps is not None and steps > self.block_size:
            raise ValueError(f"reads at most block_size = {self.block_size} tokens at a time")
        return (steps, self.vocab_size)

    def initialize(self, rng):
        """nanoGPT's ``_init_weights``: every matrix and both embeddings N(0, 0.02²), biases 0, LayerNorms
        γ = 1 and β = 0; then the two projections back into the residual stream of each block (the
        attention's ``W_o`` and the MLP's ``c_proj``) N(0, (0.02/√(2·n_layer))²)."""
        super().initialize(rng)
        W_te = self.token_embedding.params["W"]  # an Embedding alone starts N(0, 1), PyTorch's default
        _fill(W_te, Normal(std=INITIAL_STD)(W_te.shape, rng, np.float64))
        residual_std = INITIAL_STD / math.sqrt(2 * self.n_layer)
        for block in self.children:
            if isinstance(block, Sequential):
                attention, mlp = (branch.children for branch in block.children)
                for array in (attention[1].params["W_o"], mlp[2].params["W"]):
                    _fill(array, Normal(std=residual_std)(array.shape, rng, np.float64))

    # ---- forward -------------------------------------------------------------------------------------

    def forward(self, x, training=False, rng=None):
        return self.forward_logits(x, training, rng)[1]

    def forward_logits(self, x, training=False, rng=None):
        """(logits (n, T, vocab_size), their softmax) for token ids x (n, T)."""
        h = super().forward(x, training, rng)  # the embeddings, the blocks and ln_f, one after the other
        logits = h @ namespace(h).permute_dims(self.token_embedding.params["W"], (1, 0))  # tied: h·W_teᵀ
        probabilities, self.log_normalizer = forward_for_fused_loss(_SOFTMAX, logits, training)
        self._cache = (h, probabilities) if training else None
        return logits, probabilities

    # ---- backward ------------------------------------------------------------------------------------

    def backward(self, grad_output, propagate=True):
        """From dC/d(probabilities): through the softmax, then :meth:`backward_delta`."""
        _, probabilities = self._require_cache()
        return self.backward_delta(_SOFTMAX.backward(grad_output, probabilities), propagate)

    def backward_delta(self, delta, propagate=True):
        """From δ = dC/d(logits) (n, T, vocab_size): fill every gradient; the ids have none (returns None)."""
        h, _ = self._require_cache()
        xp = namespace(delta)
        W = self.token_embedding.params["W"]
        rows = xp.reshape(delta, (-1, delta.shape[-1]))
        # BP4 of the tied projection logits = h·W_teᵀ: its share of dC/dW_te is δᵀ·h, summed over every token
        tied_gradient = xp.permute_dims(rows, (1, 0)) @ xp.reshape(h, (-1, h.shape[-1]))
        # BP2: dC/dh = δ·W_te, then back through ln_f, the blocks and the embeddings (Sequential's chain)
        super().backward(delta @ W, propagate=False)
        # The lookup's own gradient (just written by the token embedding's backward) plus the projection's
        self.token_embedding.grads["W"][...] += tied_gradient
        return None

    # ---- description -------------------------------------------------------------------------------------

    def describe(self):
        return (f"GPT {self.n_layer} blocks x {self.n_head} heads, width {self.n_embd}, context {self.block_size}, "
                "output tied to wte")


def gpt(vocab_size, block_size, n_layer, n_head, n_embd, dropout=0.0, bias=False, *, dtype=None, seed=None,
        backend=None):
    """A Network of one :class:`GPT` layer, nanoGPT's model with its initialisation, trained with the fused
    softmax cross-entropy over the next tokens.

    Examples
    --------
    >>> import numnet
    >>> model = numnet.models.gpt(vocab_size=28, block_size=16, n_layer=2, n_head=2, n_embd=16, seed=0)
    >>> model.n_parameters  # wte 448 + wpe 256 + 2 blocks x 3,104 + ln_f 16; the output reuses wte
    6928
    """
    return Network(layers=[GPT(vocab_size, block_size, n_layer, n_head, n_embd, dropout=dropout, bias=bias)],
                   dtype=dtype, seed=seed, backend=backend)


__all__ = ["GPT", "gpt", "transformer_block", "INITIAL_STD"]
