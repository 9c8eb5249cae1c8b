"""Sequence to sequence: an encoder LSTM reads the source, a decoder LSTM writes the target from its state.

"Deep Learning from Scratch 2", chapters 7 and 8, as a model of numnet layers. The encoder embeds the
source ids and runs an LSTM over them; its last hidden state h starts the decoder's LSTM, which reads the
target shifted right (the start token first: teacher forcing) and whose every state a Dense softmax turns
into the next token's probabilities. Three of the book's improvements are options:

- ``reverse_input``: the source is read backwards, so that its first tokens sit close to the first
  tokens the decoder writes (the model reverses it itself, in fit and generate alike);
- ``peeky``: h is also fed to every decoder step, beside the embedded token, and to the output layer,
  beside the decoder's state;
- ``attention``: every decoder state looks at every encoder state (:class:`numnet.attention.Attention`),
  and the output layer reads the context beside the decoder's state.

:class:`EncoderDecoder` is the model's body, a composite layer of two Embeddings, two LSTMs and the
attention, with its forward and backward written out; :class:`Seq2Seq` is the Network of that body and the
output Dense layer, with the book's teacher forcing in ``fit`` and greedy decoding in ``generate``.
"""

import numpy as np

from ..attention import Attention
from ..backend import as_token_ids, namespace, to_numpy
from ..composite import CompositeModel
from ..embedding import Embedding
from ..inputs import count_rows
from ..layers import Dense, register_layer
from ..network import Network, register_model
from ..recurrent import LSTM
from ..validation import Boolean, Integer, Optional, check_integer, declare


@register_layer
class EncoderDecoder(CompositeModel):
    """The body of a seq2seq model: source ids and decoder input ids in, the decoder's features out.

    Takes a tuple (source ids ``(n, T_in)``, decoder input ids ``(n, T_out)``) and returns, per decoder
    step, the features the output layer reads ``(n, T_out, feature_size)``: the decoder LSTM's state h_t
    (H values); with ``peeky``, h_t beside the encoder's last state (2H); with ``attention``, the context
    beside h_t (2H).

    Parameters
    ----------
    vocab_size : int
        Ids lie in ``[0, vocab_size)``, in the source and the target alike (one vocabulary, as the book's).
    embedding_dim : int
    hidden_size : int
        H, the size of both LSTMs' states.
    peeky, attention, reverse_input : bool, default False
        The book's improvements (see :mod:`numnet.models.seq2seq`).
    start_id, target_length : int, optional
        The start token and the number of tokens to write, which :meth:`Seq2Seq.fit` records and
        :meth:`Seq2Seq.generate` defaults to.
    name : str, optional
    """

    input_count = 2

    @declare(vocab_size=Integer(), embedding_dim=Integer(), hidden_size=Integer(), peeky=Boolean(),
             attention=Boolean(), reverse_input=Boolean(), start_id=Optional(Integer(0)),
             target_length=Optional(Integer()))
    def __init__(self, vocab_size, embedding_dim, hidden_size, *, peeky=False, attention=False, reverse_input=False,
                 start_id=None, target_length=None, name=None):
        self.vocab_size, self.embedding_dim, self.hidden_size = vocab_size, embedding_dim, hidden_size
        self.peeky, self.attention, self.reverse_input = peeky, attention, reverse_input
        self.start_id, self.target_length = start_id, target_length
        decoder_input_size = embedding_dim + (hidden_size if peeky else 0)  # peeky: h beside each token
        layers = [Embedding(vocab_size, embedding_dim, name="encoder_embedding"),
                  LSTM(embedding_dim, hidden_size, name="encoder_lstm"),
                  Embedding(vocab_size, embedding_dim, name="decoder_embedding"),
                  LSTM(decoder_input_size, hidden_size, name="decoder_lstm")]
        if attention:
            layers.append(Attention(name="attention"))
        super().__init__(*layers, name=name)
        #: The attention weights of the last forward pass or generation, (n, T_out, T_in), over the source's
        #: steps in the order they were given (also with reverse_input); None without attention.
        self.attention_weights = None

    @property
    def feature_size(self):
        """The features per decoder step that the output layer reads: H, or 2H with peeky or attention."""
        return self.hidden_size * (2 if self.peeky or self.attention else 1)

    def _child(self, name):
        return next(child for child in self.children if child.name == name)

    # ---- shapes --------------------------------------------------------------------------------------

    def expected_input_shape(self):
        return ((None,), (None,))  # source and decoder input, ids of any length

    def output_shape(self, input_shape):
        if input_shape is not None:
            for part, what in zip(input_shape, ("the source", "the decoder's input")):
                if part is not None and len(part) != 1:
                    raise ValueError(f"takes token ids (n, time_steps) for {what}, not samples of shape {part}")
        steps = None if input_shape is None or input_shape[1] is None else input_shape[1][0]
        return (steps, self.feature_size)

    # ---- forward -------------------------------------------------------------------------------------

    def forward(self, x, training=False, rng=None):
        source, decoder_input = x
        encoder_states = self.encode(source, training)
        if training:
            self._cache = encoder_states.shape[1]  # the source's steps, for the backward pass
        h = encoder_states[:, -1, :]
        lstm_input = self._decoder_lstm_input(decoder_input, h, training)
        xp = namespace(h)
        start = {"h": h, "c": xp.zeros(h.shape, dtype=h.dtype)}  # the book starts the cell from zeros
        decoder_states = self._child("decoder_lstm").forward(lstm_input, training, initial_state=start)
        return self._features(decoder_states, encoder_states, h, training)

    def encode(self, source, training=False):
        """The encoder's states (n, T_in, H) for source ids (n, T_in), read backwards with reverse_input."""
        if self.reverse_input:
            source = namespace(source).flip(source, axis=1)
        embedded = self._child("encoder_embedding").forward(source, training)
        return self._child("encoder_lstm").forward(embedded, training)

    def _decoder_lstm_input(self, ids, h, training):
        """What the decoder's LSTM reads: the embedded ids, with peeky h beside each."""
        embedded = self._child("decoder_embedding").forward(ids, training)
        return _beside(embedded, h) if self.peeky else embedded

    def _features(self, decoder_states, encoder_states, h, training):
        """What the output layer reads per step, from the decoder's states (n, T, H)."""
        if self.attention:
            attention = self._child("attention")
            context = attention.forward((decoder_states, encoder_states), training)
            self.attention_weights = self._in_source_order(attention.attention_weights)
            return namespace(context).concat((context, decoder_states), axis=-1)
        return _beside(decoder_states, h) if self.peeky else decoder_states

    def _in_source_order(self, weights):
        return namespace(weights).flip(weights, axis=-1) if self.reverse_input else weights

    def decode_step(self, ids, encoder_states, state):
        """One step of greedy decoding: (features (n, 1, feature_size), the decoder's next state) for the
        previous tokens ``ids`` (n, 1), from the decoder's ``state`` (``"h"``, ``"c"``)."""
        h = encoder_states[:, -1, :]
        lstm_input = self._decoder_lstm_input(ids, h, training=False)
        decoder_states, state = self._child("decoder_lstm").forward_from(lstm_input, state)
        return self._features(decoder_states, encoder_states, h, training=False), state

    # ---- backward ------------------------------------------------------------------------------------

    def backward(self, grad_output, propagate=True):
        """Backpropagate from dC/d(features) (n, T_out, feature_size) through the decoder, the attention
        and the encoder; the ids have no gradient, so it returns (None, None) (None without ``propagate``)."""
        H = self.hidden_size
        xp = namespace(grad_output)
        decoder_lstm = self._child("decoder_lstm")
        d_peeked = None  # dC/dh through the peeky copies of the encoder's last state
        d_encoder_states = None
        if self.attention:
            # BP2 through concat(context, h_dec), then through the attention to both LSTMs' states
            d_context, d_decoder_states = grad_output[..., :H], grad_output[..., H:]
            d_from_attention, d_encoder_states = self._child("attention").backward(d_context)
            d_decoder_states = d_decoder_states + d_from_attention
        elif self.peeky:
            d_decoder_states, d_peeked = grad_output[..., :H], xp.sum(grad_output[..., H:], axis=1)
        else:
            d_decoder_states = grad_output
        d_lstm_input = decoder_lstm.backward(d_decoder_states)
        d_embedded = d_lstm_input
        if self.peeky:  # the LSTM's input was concat(embedded token, h): split its gradient the same way
            d_embedded = d_lstm_input[..., :self.embedding_dim]
            d_peeked = d_peeked + xp.sum(d_lstm_input[..., self.embedding_dim:], axis=1)
        self._child("decoder_embedding").backward(d_embedded, propagate=False)
        # The encoder's last state h started the decoder (and was peeked at): its gradient joins the step's
        d_h = decoder_lstm.initial_state_gradients["h"] + (d_peeked if d_peeked is not None else 0.0)
        if d_encoder_states is None:
            d_encoder_states = xp.zeros((d_h.shape[0], self._require_cache(), H), dtype=d_h.dtype)
        d_encoder_states[:, -1, :] += d_h
        d_embedded_source = self._child("encoder_lstm").backward(d_encoder_states)
        self._child("encoder_embedding").backward(d_embedded_source, propagate=False)
        return (None, None) if propagate else None

    # ---- description -------------------------------------------------------------------------------------

    def describe(self):
        options = [option for option in ("peeky", "attention", "reverse_input") if getattr(self, option)]
        return (f"EncoderDecoder LSTM {self.embedding_dim} -> {self.hidden_size}"
                + (f" ({', '.join(options)})" if options else ""))


@register_model
class Seq2Seq(Network):
    """The sequel book's seq2seq model: train with teacher forcing, decode greedily.

    ``fit(X, Y, ...)`` takes source ids ``X`` (n, T_in) and target ids ``Y`` (n, T_out) whose first column is
    the start token; the decoder reads Y without its last token and learns to write Y without its first
    (the book's teacher forcing), with every option of :meth:`numnet.Network.fit` (optimiser, clipping,
    validation, checkpoints, ...). ``generate(X, start_id, length)`` writes ``length`` tokens greedily from
    the start token. ``save_model`` and ``load_model`` keep it a Seq2Seq.

    Parameters
    ----------
    vocab_size : int
        One vocabulary for source and target (ids in ``[0, vocab_size)``).
    embedding_dim : int
    hidden_size : int
    peeky, attention, reverse_input : bool, default False
        The book's improvements: see :mod:`numnet.models.seq2seq`.
    dtype, seed, backend
        As for :class:`numnet.Network`.

    Examples
    --------
    >>> import numpy as np, numnet
    >>> model = numnet.Seq2Seq(vocab_size=12, embedding_dim=4, hidden_size=8, attention=True, seed=0)
    >>> X = np.array([[3, 4, 5], [5, 4, 3]]); Y = np.array([[1, 5, 4, 3], [1, 3, 4, 5]])
    >>> history = model.fit(X, Y, epochs=2, batch_size=2, optimizer="adam", seed=0)
    >>> model.generate(X, start_id=1, length=3).shape, model.attention_weights.shape
    ((2, 3), (2, 3, 3))
    """

    model_kind = "seq2seq"

    @declare(peeky=Boolean(), attention=Boolean(), reverse_input=Boolean())
    def __init__(self, vocab_size, embedding_dim, hidden_size, *, peeky=False, attention=False, reverse_input=False,
                 dtype=None, seed=None, backend=None):
        body = EncoderDecoder(vocab_size, embedding_dim, hidden_size, peeky=peeky, attention=attention,
                              reverse_input=reverse_input)
        output = Dense(body.feature_size, vocab_size, "softmax", name="output")
        super().__init__(layers=[body, output], dtype=dtype, seed=seed, backend=backend)

    @property
    def encoder_decoder(self):
        """The model's body (:class:`EncoderDecoder`)."""
        return self.layers[0]

    @property
    def attention_weights(self):
        """The attention weights (n, T_out, T_in) of the last forward pass or :meth:`generate`, over the
        source's steps in the order they were given; None for a model without attention or before a pass."""
        return self.encoder_decoder.attention_weights

    def fit(self, X, Y, **options):
        """Train on source ids X (n, T_in) and target ids Y (n, T_out) starting with the start token, by
        teacher forcing; ``validation_data=(X_val, Y_val)`` alike. Every other option is
        :meth:`numnet.Network.fit`'s; returns its History."""
        inputs, targets = self.teacher_forced(X, Y)
        if options.get("validation_data") is not None:
            X_val, Y_val, *weights = options["validation_data"]
            options["validation_data"] = (*self.teacher_forced(X_val, Y_val, name="validation"), *weights)
        return super().fit(inputs, targets, **options)

    def teacher_forced(self, X, Y, *, name="training"):
        """((X, Y without its last token), Y without its first): the decoder's input and its targets; records
        the start token and the answer length for :meth:`generate`.

        Raises
        ------
        ValueError
            For Y with fewer than two columns, or whose first column is not one start token.
        """
        Y = as_token_ids(to_numpy(Y) if hasattr(Y, "__array_namespace__") else Y, ndim=2, name="Y")
        if Y.shape[1] < 2:
            raise ValueError(f"the {name} targets Y must hold the start token and at least one token to learn per "
                             f"row, shape (n_samples, T_out >= 2), got shape {Y.shape}")
        starts = np.unique(Y[:, 0])
        if starts.size > 1:
            raise ValueError(f"the first column of the {name} targets Y must be the start token, the same in every "
                             f"row, but it holds {starts.size} different ids ({', '.join(map(str, starts[:5]))}"
                             f"{', ...' if starts.size > 5 else ''}); put the start token first in every row")
        body = self.encoder_decoder
        if starts.size:
            body.start_id, body.target_length = int(starts[0]), Y.shape[1] - 1
        return (X, Y[:, :-1]), Y[:, 1:]

    def generate(self, X, start_id=None, length=None):
        """Decode greedily: from ``start_id``, feed each step the most probable token of the step before.

        Parameters
        ----------
        X : array of int, shape (n, T_in)
            Source ids.
        start_id : int, optional
            The start token; by default the one the training targets began with.
        length : int, optional
            How many tokens to write; by default as many as the training targets held after the start.

        Returns
        -------
        numpy.ndarray of int64, shape (n, length)
            The ids written, without the start token. ``attention_weights`` then holds the weights of every
            step written, (n, length, T_in).

        Raises
        ------
        ValueError
            For a start id or length missing (the model has not been trained) or out of range, or source
            ids the encoder refuses.
        """
        body = self.encoder_decoder
        start_id = _known(body.start_id if start_id is None else start_id, "start_id")
        length = _known(body.target_length if length is None else length, "length")
        check_integer(start_id, "start_id", minimum=0)
        check_integer(length, "length")
        source = self.backend.asarray(as_token_ids(to_numpy(X) if hasattr(X, "__array_namespace__") else X, ndim=2),
                                      np.int64)
        encoder_states = body.encode(source)
        xp = namespace(encoder_states)
        h = encoder_states[:, -1, :]
        state = {"h": h, "c": xp.zeros(h.shape, dtype=h.dtype)}
        ids = xp.full((count_rows(source), 1), int(start_id), dtype=xp.int64)
        written, weights = [], []
        for _ in range(length):
            features, state = body.decode_step(ids, encoder_states, state)
            ids = xp.astype(xp.argmax(self.layers[1].forward(features), axis=-1), xp.int64)  # (n, 1)
            written.append(ids)
            if body.attention:
                weights.append(body.attention_weights)
        if body.attention:
            body.attention_weights = xp.concat(weights, axis=1)
        return to_numpy(xp.concat(written, axis=1))

    def exact_match(self, X, Y):
        """The fraction of rows whose generated answer equals Y's after the start token, every token of it
        (the book's accuracy for the addition and date sets)."""
        Y = as_token_ids(Y, ndim=2, name="Y")
        written = self.generate(X, start_id=int(Y[0, 0]), length=Y.shape[1] - 1)
        return float(np.mean(np.all(written == Y[:, 1:], axis=1)))


def _beside(sequence, vector):
    """concat(sequence (n, T, a), vector (n, b) repeated at every step) → (n, T, a + b)."""
    xp = namespace(sequence)
    repeated = xp.broadcast_to(vector[:, None, :], (*sequence.shape[:2], vector.shape[-1]))
    return xp.concat((sequence, repeated), axis=-1)


def _known(value, name):
    if value is None:
        raise ValueError(f"{name} is not known yet: give it, or train the model first (fit records the start token "
                         "and the answer length from its targets)")
    return value


__all__ = ["EncoderDecoder", "Seq2Seq"]
