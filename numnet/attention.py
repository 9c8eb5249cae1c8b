"""Attention: a decoder looks at every state of its encoder ("Deep Learning from Scratch 2", chapter 8).

For each decoder step t and each encoder step s, the score is the dot product of the decoder's state and
the encoder's, e_ts = h_dec,t · h_enc,s; the weights are their softmax over the encoder's steps,
a_ts = softmax_s(e_ts), a distribution that says where step t looks; the layer returns the context, the
weighted sum of the encoder's states, c_t = Σ_s a_ts h_enc,s. It has no parameters: what it learns, the
encoder's and decoder's LSTMs learn, by making the states that belong together point the same way.

The book computes a step at a time (AttentionWeight, WeightSum); here every step at once, as batched
matrix products over (n, T_out, T_in). The backward pass, with g = dC/dc:

- through the weighted sum: dC/da = g·H_encᵀ, and H_enc receives aᵀ·g;
- through the softmax (its Jacobian diag(a) − a aᵀ per row): dC/de = a ⊙ (dC/da − Σ_s a_s dC/da_s);
- through the scores e = H_dec·H_encᵀ: dC/dH_dec = dC/de·H_enc, and H_enc receives (dC/de)ᵀ·H_dec too.
"""

from .activations import get_activation
from .backend import namespace
from .layers import Layer, register_layer

_SOFTMAX = get_activation("softmax")


@register_layer
class Attention(Layer):
    """Dot-product attention of decoder states over encoder states, without parameters (the book's).

    Takes two inputs as a tuple (``input_count = 2``): the decoder's states ``(n, T_out, H)`` and the
    encoder's ``(n, T_in, H)``; returns the contexts ``(n, T_out, H)``, each a weighted sum of the encoder's
    states with the weights softmax(h_dec · h_encᵀ) over the encoder's steps. After a forward pass
    ``attention_weights`` holds the weights ``(n, T_out, T_in)``, each row a distribution over the encoder's
    steps (what :func:`numnet.plots.plot_attention` draws). ``backward`` returns (dC/dH_dec, dC/dH_enc).

    Parameters
    ----------
    name : str, optional
        Set by the network or the model holding it ("attention_0", ...) when not given.

    Examples
    --------
    >>> import numpy as np
    >>> decoder = np.array([[[1.0, 0.0]]])  # one step, looking along the first axis
    >>> encoder = np.array([[[5.0, 0.0], [0.0, 5.0]]])  # two steps
    >>> Attention().forward((decoder, encoder)).round(3)
    array([[[4.967, 0.033]]])
    """

    input_count = 2

    def __init__(self, *, name=None):
        super().__init__(name=name)
        #: The weights of the last forward pass, (n, T_out, T_in); None before one.
        self.attention_weights = None

    def output_shape(self, input_shape):
        if input_shape is None:
            return None
        decoder, encoder = input_shape
        if decoder is None or encoder is None:
            return decoder
        if len(decoder) != 2 or len(encoder) != 2 or None not in (decoder[1], encoder[1]) \
                and decoder[1] != encoder[1]:
            raise ValueError("takes the decoder's states (T_out, H) and the encoder's (T_in, H), with the same H")
        return decoder

    def forward(self, x, training=False, rng=None):
        decoder, encoder = self._checked(x)
        xp = namespace(decoder)
        scores = decoder @ xp.permute_dims(encoder, (0, 2, 1))  # e = H_dec·H_encᵀ, (n, T_out, T_in)
        weights = _SOFTMAX.forward(scores)  # over the encoder's steps, the last axis
        self.attention_weights = weights
        if training:
            self._cache = (decoder, encoder, weights)
        return weights @ encoder  # c = a·H_enc, (n, T_out, H)

    def backward(self, grad_output, propagate=True):
        decoder, encoder, weights = self._require_cache()
        xp = namespace(grad_output)
        # Through the weighted sum c = a·H_enc: dC/da = g·H_encᵀ, and H_enc's first share aᵀ·g
        d_weights = grad_output @ xp.permute_dims(encoder, (0, 2, 1))
        d_encoder = xp.permute_dims(weights, (0, 2, 1)) @ grad_output
        # Through the softmax over the encoder's steps, row by row: dC/de = a ⊙ (dC/da − Σ a·dC/da)
        d_scores = _SOFTMAX.backward(d_weights, weights)
        # Through e = H_dec·H_encᵀ: dC/dH_dec = dC/de·H_enc, and H_enc's second share (dC/de)ᵀ·H_dec
        d_decoder = d_scores @ encoder
        d_encoder += xp.permute_dims(d_scores, (0, 2, 1)) @ decoder
        return d_decoder, d_encoder

    def _checked(self, x):
        """(decoder states, encoder states) from the tuple ``x``, after checking their shapes."""
        if not isinstance(x, tuple) or len(x) != 2:
            raise ValueError(f"layer {self.name or self.kind} (Attention) takes a tuple (decoder states, encoder "
                             f"states), got {type(x).__name__}")
        decoder, encoder = x
        if decoder.ndim != 3 or encoder.ndim != 3 or decoder.shape[0] != encoder.shape[0] \
                or decoder.shape[2] != encoder.shape[2]:
            raise ValueError(f"layer {self.name or self.kind} (Attention) takes decoder states (n, T_out, H) and "
                             f"encoder states (n, T_in, H) with the same n and H, got {tuple(decoder.shape)} and "
                             f"{tuple(encoder.shape)}")
        return decoder, encoder

    def clear_cache(self):
        super().clear_cache()
        self.attention_weights = None

    def describe(self):
        return "Attention (dot product, over the encoder's steps)"


__all__ = ["Attention"]
