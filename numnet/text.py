"""Text for sequence models: a vocabulary of characters or words, the two layouts of a token stream for
training, and generation by sampling.

A language model reads token ids and predicts, at every position, the id that comes next: inputs ``X``
(n, time_steps) and targets ``y``, the same ids shifted by one (n, time_steps). The pieces, in the order a
program uses them::

    text = numnet.datasets.load_names()                  # or load_text(path): any UTF-8 file
    vocabulary = Vocabulary.from_text(text)              # characters (level="word": words)
    ids = vocabulary.encode(text)                        # int64 ids, 0 the unknown token
    X, y = stream_batches(ids, batch_size=32, time_steps=35)        # for a stateful layer, in order
    network = numnet.Network(layers=[numnet.Embedding(len(vocabulary), 16),
                                     numnet.LSTM(16, 128, stateful=True),
                                     numnet.Dense(128, len(vocabulary), "softmax")])
    network.fit(X, y, batch_size=32, shuffle=False, clip_norm=5.0)
    network.vocabulary = vocabulary                      # save_model keeps it in the file
    generate(network, prompt="\\n", length=200, temperature=0.8, seed=0)

**Two layouts.** :func:`stream_batches` lays the stream out as ``batch_size`` parallel streams, each a
contiguous stretch of the text, cut into pieces of ``time_steps``: row i of one batch continues row i of
the batch before it, which a stateful recurrent layer (``stateful=True``, ``fit(..., shuffle=False)``)
turns into truncated backpropagation through time, the training loop of *Deep Learning from Scratch 2*
(chapters 5-6, its ``RnnlmTrainer``). :func:`windows` cuts windows of ``time_steps`` for shuffled batches
and a layer that starts every window from zeros.

**Generation** (:func:`generate`) feeds the prompt, then samples one token at a time from
softmax(logits / temperature), optionally among the ``top_k`` most likely, with a seeded NumPy Generator.
A network whose layers are recurrent (``forward_from``, :mod:`numnet.recurrent`) or position-wise (Dense,
Embedding, Activation, Dropout: ``Layer.position_wise``) is fed one new token per step from the state the
last step ended in, so each step costs the same; any other network reads the whole text again at every
step (exact, quadratic in the length).
"""

import collections
import re

import numpy as np

from .backend import as_token_ids, to_numpy
from .network import Network
from .validation import Integer, OneOf, Optional, Real, Seed, declare

#: The levels a vocabulary can cut text at: single characters, or words (see :class:`Vocabulary`).
LEVELS = ("char", "word")
#: The id of the unknown token, which stands for every symbol the vocabulary does not hold.
UNKNOWN_ID = 0
#: The unknown token's symbol by level: U+FFFD (the replacement character, what decoders print for an
#: unreadable character) for characters, ``<unk>`` (the Penn Treebank's) for words.
DEFAULT_UNKNOWN = {"char": "\ufffd", "word": "<unk>"}
#: A word-level token: a line break, a run of letters, digits and underscores, or one other non-space
#: character (a punctuation mark), so that "end." is "end" and "." and the vocabulary stays small.
WORD_TOKEN = re.compile(r"\n|\w+|[^\w\s]")
#: The keys of a vocabulary's record in a model file (:meth:`Vocabulary.to_metadata`).
RECORD_KEYS = ("level", "unknown", "symbols")


class Vocabulary:
    """The symbols of a text (characters or words), each with an id; id 0 is the unknown token.

    The symbols get ids 1, 2, ... in code-point order, and :data:`UNKNOWN_ID` (0) stands for every symbol
    outside the vocabulary: :meth:`encode` gives it to a symbol it has not seen, and a network trained on
    text where ``min_count`` or ``max_size`` left rare symbols out learns what it means.

    At ``level="char"`` every character is a symbol (line breaks too). At ``level="word"`` the text is cut
    by :data:`WORD_TOKEN`: a run of letters and digits (``\\w+``, Unicode-aware), a single punctuation mark
    or a line break is a symbol, and other white space only separates them; :meth:`decode` joins words with
    single spaces (none around a line break), so "Hello, world." comes back as "Hello , world .".

    Parameters
    ----------
    symbols : sequence of str
        The distinct symbols, ids 1, 2, ... in this order (:meth:`from_text` sorts them).
    level : {"char", "word"}, default "char"
    unknown : str, optional
        The unknown token's symbol, which :meth:`decode` writes for id 0; by default
        :data:`DEFAULT_UNKNOWN` of the level.

    Raises
    ------
    TypeError
        For symbols that are not strings.
    ValueError
        For an unknown level, a repeated or empty symbol, a symbol the level cannot cut out of text (more
        than one character at the char level, white space inside a word), or a symbol equal to ``unknown``.

    Examples
    --------
    >>> vocabulary = Vocabulary.from_text("hello")
    >>> vocabulary.symbols, len(vocabulary)
    (('e', 'h', 'l', 'o'), 5)
    >>> vocabulary.encode("hole!")
    array([2, 4, 3, 1, 0])
    >>> vocabulary.decode([2, 1, 3, 3, 4])
    'hello'
    """

    @declare(level=OneOf(*LEVELS))
    def __init__(self, symbols, level="char", *, unknown=None):
        self.level = level
        self.unknown = DEFAULT_UNKNOWN[level] if unknown is None else unknown
        if (not isinstance(self.unknown, str) or not self.unknown or not _is_unicode(self.unknown)
                or (level == "word" and _has_space(self.unknown))):
            raise ValueError(f"unknown must be a non-empty string (without white space at the word level), got "
                             f"{self.unknown!r}")
        if isinstance(symbols, str):
            raise TypeError("symbols must be a sequence of strings, one per symbol, not one string; use "
                            "Vocabulary.from_text(text) to collect the symbols of a text")
        self.symbols = tuple(symbols)
        for symbol in self.symbols:
            self._check_symbol(symbol)
        self._ids = {symbol: index for index, symbol in enumerate(self.symbols, start=UNKNOWN_ID + 1)}
        if len(self._ids) != len(self.symbols):
            repeated = next(symbol for symbol, count in collections.Counter(self.symbols).items() if count > 1)
            raise ValueError(f"the symbols must be distinct, but {repeated!r} appears more than once")
        self._lookup = np.array([self.unknown, *self.symbols], dtype=object)  # id -> symbol, for decode

    def _check_symbol(self, symbol):
        """Raise unless ``symbol`` is one that this level could cut out of a text."""
        if not isinstance(symbol, str):
            raise TypeError(f"symbols must be strings, got {type(symbol).__name__}: {symbol!r}")
        if not _is_unicode(symbol):
            raise ValueError(f"the symbol {symbol!r} is not Unicode text (it holds a lone surrogate, which UTF-8 "
                             "cannot write)")
        if symbol == self.unknown:
            raise ValueError(f"the symbol {symbol!r} is the unknown token's; choose another unknown")
        if self.level == "char" and len(symbol) != 1:
            raise ValueError(f"a character vocabulary's symbols are single characters, got {symbol!r}")
        if self.level == "word" and not WORD_TOKEN.fullmatch(symbol):
            raise ValueError(f"a word vocabulary's symbols are words, punctuation marks or a line break as "
                             f"numnet.text.WORD_TOKEN cuts them, got {symbol!r}")

    @classmethod
    @declare(level=OneOf(*LEVELS), min_count=Integer(), max_size=Optional(Integer()))
    def from_text(cls, text, level="char", *, min_count=1, max_size=None):
        """The vocabulary of ``text``: its symbols that appear at least ``min_count`` times.

        Parameters
        ----------
        text : str
        level : {"char", "word"}, default "char"
        min_count : int, default 1
            Rarer symbols are left out (the unknown token stands for them).
        max_size : int, optional
            At most this many ids, the unknown token's included: the ``max_size - 1`` most frequent
            symbols are kept (ties go to the earlier symbol in code-point order).

        Returns
        -------
        Vocabulary
            The kept symbols in code-point order, ids 1, 2, ...

        Raises
        ------
        TypeError
            When ``text`` is not a str.
        ValueError
            When no symbol is kept (an empty text, or ``min_count`` above every count).

        Examples
        --------
        >>> Vocabulary.from_text("the cat saw the dog.", level="word", min_count=2).symbols
        ('the',)
        """
        counts = collections.Counter(_tokens(text, level))
        kept = sorted((symbol for symbol, count in counts.items() if count >= min_count),
                      key=lambda symbol: (-counts[symbol], symbol))
        if max_size is not None:
            kept = kept[:max_size - 1]
        unknown = DEFAULT_UNKNOWN[level]
        kept = [symbol for symbol in kept if symbol != unknown]  # a text holding U+FFFD: it is unknown
        if not kept:
            raise ValueError(f"the text holds no symbol that appears at least {min_count} time(s) (it has "
                             f"{len(counts)} distinct symbols at the {level!r} level); give a longer text or a "
                             "smaller min_count")
        return cls(sorted(kept), level)

    def __len__(self):
        """The number of ids, the unknown token's included: the size of a language model's input and output."""
        return len(self.symbols) + 1

    def __eq__(self, other):
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return (self.level, self.unknown, self.symbols) == (other.level, other.unknown, other.symbols)

    __hash__ = None  # equal vocabularies compare equal; they are not dictionary keys

    def __repr__(self):
        shown = ", ".join(repr(symbol) for symbol in self.symbols[:8])
        more = ", ..." if len(self.symbols) > 8 else ""
        return f"Vocabulary([{shown}{more}], level={self.level!r}) with {len(self)} ids"

    def tokens(self, text):
        """The symbols of ``text`` in order, as this vocabulary's level cuts it (whether known or not).

        Examples
        --------
        >>> Vocabulary(["a"], level="word").tokens("Hello, world.")
        ['Hello', ',', 'world', '.']
        """
        return _tokens(text, self.level)

    def encode(self, text):
        """The ids of ``text``'s symbols, :data:`UNKNOWN_ID` for a symbol the vocabulary does not hold.

        Parameters
        ----------
        text : str

        Returns
        -------
        numpy.ndarray of int64, shape (n_tokens,)

        Raises
        ------
        TypeError
            When ``text`` is not a str.
        """
        ids = self._ids
        return np.fromiter((ids.get(symbol, UNKNOWN_ID) for symbol in _tokens(text, self.level)),
                           dtype=np.int64)

    def decode(self, ids):
        """The text of ``ids``: characters joined as they are, words with single spaces (no space around a
        line break); id 0 becomes the unknown token's symbol.

        Parameters
        ----------
        ids : array-like of int, shape (n_tokens,)

        Returns
        -------
        str

        Raises
        ------
        ValueError, TypeError
            For ids that are not integers of one dimension, or lie outside ``[0, len(self))``.
        """
        ids = as_token_ids(ids, 1, "ids")
        outside = (ids < 0) | (ids >= len(self))
        if outside.any():
            position = int(np.argmax(outside))
            raise ValueError(f"ids must lie in [0, {len(self)}) for this vocabulary of {len(self)} ids, got "
                             f"{int(ids[position])} at position {position}")
        symbols = self._lookup[ids].tolist()
        if self.level == "char":
            return "".join(symbols)
        return re.sub(r" ?\n ?", "\n", " ".join(symbols))

    def to_metadata(self):
        """The vocabulary as plain JSON data, the record a model file keeps (:func:`numnet.save_model`).

        Returns
        -------
        dict
            ``{"level": "char", "unknown": "\\ufffd", "symbols": ["a", "b", ...]}``.
        """
        return {"level": self.level, "unknown": self.unknown, "symbols": list(self.symbols)}

    @classmethod
    def from_metadata(cls, record):
        """The vocabulary a :meth:`to_metadata` record describes, checked.

        Parameters
        ----------
        record : dict
            ``{"level", "unknown", "symbols"}``, as a model file holds it.

        Returns
        -------
        Vocabulary

        Raises
        ------
        TypeError
            When ``record`` is not a dict.
        ValueError
            For a damaged record, naming the problem: a missing or unexpected key, symbols that are not a
            list of distinct strings the level could cut out of text, an unknown level.

        Examples
        --------
        >>> Vocabulary.from_metadata({"level": "char", "unknown": "?", "symbols": ["a", "b"]}).encode("abc")
        array([1, 2, 0])
        """
        if not isinstance(record, dict):
            raise TypeError(f"a vocabulary record must be a dict such as Vocabulary.to_metadata() returns, got "
                            f"{type(record).__name__}")
        if set(record) != set(RECORD_KEYS):
            missing = [key for key in RECORD_KEYS if key not in record]
            unexpected = sorted(str(key)[:40] for key in set(record) - set(RECORD_KEYS))
            raise ValueError(f"a vocabulary record holds exactly {', '.join(RECORD_KEYS)}; this one misses "
                             f"{missing or 'nothing'} and has unexpected keys {unexpected or 'none'}")
        if not isinstance(record["symbols"], list) or not isinstance(record["level"], str):
            raise ValueError("a vocabulary record's symbols must be a list of strings and its level a string, got "
                             f"{type(record['symbols']).__name__} and {type(record['level']).__name__}")
        try:
            return cls(record["symbols"], record["level"], unknown=record["unknown"])
        except (TypeError, ValueError) as error:
            raise ValueError(f"invalid vocabulary record: {error}") from error


def _tokens(text, level):
    """The symbols of ``text`` at ``level``: its characters, or its words as :data:`WORD_TOKEN` cuts them."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}; read a file with "
                        "numnet.datasets.load_text(path)")
    return list(text) if level == "char" else WORD_TOKEN.findall(text)


def _has_space(symbol):
    return any(character.isspace() for character in symbol)


def _is_unicode(symbol):
    """Whether ``symbol`` is text UTF-8 can write: no lone surrogate (which JSON's "\\ud800" can give)."""
    try:
        symbol.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ---- layouts of a token stream for training --------------------------------------------------------------


@declare(batch_size=Integer(), time_steps=Integer())
def stream_batches(ids, batch_size, time_steps):
    """Lay a token stream out as ``batch_size`` parallel streams, for truncated backpropagation through time.

    The stream's inputs ``ids[:-1]`` (targets ``ids[1:]``), of length D, are cut into ``batch_size``
    stretches, stream j starting at j·(D // batch_size) (the offsets of *Deep Learning from Scratch 2*'s
    ``RnnlmTrainer``), and each stretch into consecutive pieces of ``time_steps``. Batch k (rows k·B to
    k·B + B − 1) holds piece k of every stream, so row i of batch k + 1 continues row i of batch k: train
    a stateful recurrent layer on it with ``fit(X, y, batch_size=batch_size, shuffle=False)``. There are
    D // (batch_size·time_steps) batches; the rest of each stretch is left out.

    Each epoch reads the streams from their starts again, carrying the state each row ended the last epoch
    in (``fit`` does not reset it; call ``network.reset_states()`` between epochs to start from zeros).

    Parameters
    ----------
    ids : array-like of int, shape (n_tokens,)
        The token stream, e.g. ``vocabulary.encode(text)``.
    batch_size : int
        The number of parallel streams: the ``batch_size`` to give ``fit``.
    time_steps : int
        The length of each piece, the steps backpropagation goes back through.

    Returns
    -------
    X, y : numpy.ndarray of int64, shape (n_batches·batch_size, time_steps)
        Inputs and next-token targets (``y`` is ``X`` one token later).

    Raises
    ------
    ValueError
        When the stream is shorter than batch_size·time_steps + 1 tokens.

    Examples
    --------
    >>> X, y = stream_batches(range(13), batch_size=2, time_steps=3)
    >>> X  # batch 0 is rows 0-1, batch 1 rows 2-3; streams start at 0 and 6
    array([[ 0,  1,  2],
           [ 6,  7,  8],
           [ 3,  4,  5],
           [ 9, 10, 11]])
    >>> y[0]
    array([1, 2, 3])
    """
    ids = _token_stream(ids)
    length = len(ids) - 1  # D, the inputs ids[:-1] with their targets ids[1:]
    n_batches = length // (batch_size * time_steps)
    if n_batches == 0:
        raise ValueError(f"a stream of {len(ids)} tokens is too short for {batch_size} streams of "
                         f"{time_steps} steps: it needs at least batch_size·time_steps + 1 = "
                         f"{batch_size * time_steps + 1} tokens; give more text or smaller sizes")
    jump = length // batch_size  # where each stream starts: 0, jump, 2·jump, ...
    # Row k·B + i of X is piece k of stream i: it starts at i·jump + k·time_steps
    starts = (np.arange(n_batches)[:, None] * time_steps + np.arange(batch_size)[None, :] * jump).reshape(-1)
    positions = starts[:, None] + np.arange(time_steps)  # (n_batches·B, time_steps)
    return ids[positions], ids[positions + 1]


@declare(time_steps=Integer(), stride=Optional(Integer()))
def windows(ids, time_steps, *, stride=None):
    """Cut a token stream into windows of ``time_steps``, for shuffled batches of independent rows.

    Window r starts at r·``stride``; its targets are the same positions one token later. With the default
    stride (``time_steps``) the windows tile the stream, so an epoch predicts each token once; a smaller
    stride gives overlapping windows (``stride=1``: every window), ``time_steps / stride`` times the data.

    Parameters
    ----------
    ids : array-like of int, shape (n_tokens,)
    time_steps : int
    stride : int, optional
        The step between window starts; default ``time_steps``.

    Returns
    -------
    X, y : numpy.ndarray of int64, shape (n_windows, time_steps)

    Raises
    ------
    ValueError
        When the stream is shorter than time_steps + 1 tokens.

    Examples
    --------
    >>> X, y = windows(range(8), 3, stride=2)
    >>> X
    array([[0, 1, 2],
           [2, 3, 4],
           [4, 5, 6]])
    >>> y[-1]
    array([5, 6, 7])
    """
    ids = _token_stream(ids)
    stride = time_steps if stride is None else stride
    if len(ids) < time_steps + 1:
        raise ValueError(f"a stream of {len(ids)} tokens is too short for windows of {time_steps} steps with "
                         f"their targets: it needs at least {time_steps + 1} tokens")
    n_windows = (len(ids) - 1 - time_steps) // stride + 1
    positions = (np.arange(n_windows) * stride)[:, None] + np.arange(time_steps)
    return ids[positions], ids[positions + 1]


def _token_stream(ids):
    """``ids`` as a 1-D int64 NumPy array (ValueError or TypeError for anything else)."""
    return as_token_ids(ids, 1, "ids")


# ---- generation -----------------------------------------------------------------------------------------


@declare(length=Integer(minimum=0), temperature=Real(at_least=0), top_k=Optional(Integer()), seed=Seed())
def generate(network, vocabulary=None, prompt="\n", length=100, *, temperature=1.0, top_k=None, seed=None):
    """Continue ``prompt`` by ``length`` tokens sampled from a language model; the same seed, the same text.

    The prompt is fed from a zero state, then each token is drawn from softmax(logits / temperature) over
    the network's output at the last position, among the ``top_k`` most likely when given, and fed back. A
    network with a longest context (a layer with a ``block_size``: a transformer's position embedding) reads
    the last ``block_size`` tokens only, as nanoGPT's ``generate`` crops them.
    The network is only read: its weights, its caches' absence in training and the state a stateful
    layer carries between training batches are left as they were.

    Parameters
    ----------
    network : Network
        A language model: token ids (or one-hot rows) in, softmax over the vocabulary at every step out
        (n, time_steps, V), or at the last step only (n, V), trained with softmax cross-entropy.
    vocabulary : Vocabulary, optional
        By default ``network.vocabulary``, which :func:`numnet.save_model` keeps and
        :func:`numnet.load_model` restores.
    prompt : str, default "\\n"
        The text to continue, at least one symbol; by default a line break, the start of a line (of a
        name, with :func:`numnet.datasets.load_names`). A symbol outside the vocabulary is fed as the
        unknown token, as :meth:`Vocabulary.encode` gives it.
    length : int, default 100
        The number of tokens to generate.
    temperature : float, default 1.0
        Below 1 sharpens the distribution, above 1 flattens it; 0 takes the most likely token every
        time (greedy, the limit as the temperature goes to 0; ties go to the smaller id).
    top_k : int, optional
        Sample among the ``top_k`` most likely tokens only.
    seed : int or numpy.random.Generator, optional
        The draws' seed: the same seed gives the same text.

    Returns
    -------
    str
        The generated text alone, without the prompt (``prompt + text`` reads on at the char level).

    Raises
    ------
    TypeError
        When ``network`` is not a Network or ``vocabulary`` not a Vocabulary.
    ValueError
        When there is no vocabulary, the network's output size is not the vocabulary's size, its loss is
        not softmax cross-entropy, or the prompt holds no symbol.

    Examples
    --------
    >>> import numnet
    >>> vocabulary = Vocabulary.from_text("abc")
    >>> network = numnet.Network(layers=[numnet.Embedding(4, 3), numnet.GRU(3, 5),
    ...                                  numnet.Dense(5, 4, "softmax")], seed=0)
    >>> text = generate(network, vocabulary, prompt="a", length=6, seed=1)
    >>> len(text), text == generate(network, vocabulary, prompt="a", length=6, seed=1)
    (6, True)
    """
    vocabulary = _vocabulary_of(network, vocabulary)
    ids = vocabulary.encode(prompt)
    if ids.size == 0:
        raise ValueError(f"the prompt must hold at least one symbol to start from, got {prompt!r}; for a text "
                         "of lines such as names, '\\n' starts a new line")
    rng = np.random.default_rng(seed)
    # One new token per step from the last state when every layer allows it; else the whole text each step
    states = {} if _reads_one_step_at_a_time(network) else None
    context = _longest_context(network)
    read = ids[-context:] if context else ids
    generated = []
    for _ in range(length):
        logits = _next_logits(network, read, states, len(vocabulary))
        generated.append(_sample(logits, temperature, top_k, rng))
        read = np.array(generated[-1:]) if states is not None else np.concatenate([ids, generated])[-context:]
    return vocabulary.decode(np.array(generated, dtype=np.int64))


def _longest_context(network):
    """The fewest ``block_size`` of the network's layers (inside composite layers too), or 0 for none."""
    sizes = []

    def visit(layers):
        for layer in layers:
            if getattr(layer, "block_size", None):
                sizes.append(layer.block_size)
            visit(layer.sublayers())

    visit(network.layers)
    return min(sizes, default=0)


def _vocabulary_of(network, vocabulary):
    """The vocabulary to generate with, checked against the network."""
    if not isinstance(network, Network):
        raise TypeError(f"network must be a numnet Network, got {type(network).__name__}")
    vocabulary = getattr(network, "vocabulary", None) if vocabulary is None else vocabulary
    if vocabulary is None:
        raise ValueError("generate needs the vocabulary the network was trained with: pass it, or set "
                         "network.vocabulary (save_model keeps it in the file, load_model restores it)")
    if not isinstance(vocabulary, Vocabulary):
        raise TypeError(f"vocabulary must be a numnet.text.Vocabulary, got {type(vocabulary).__name__}")
    if network.loss.fused_activation != "softmax":
        raise ValueError(f"generate samples from a softmax output trained with softmax cross-entropy, but this "
                         f"network's loss is {network.loss.name!r}; end it with Dense(..., 'softmax')")
    if network.n_outputs != len(vocabulary):
        raise ValueError(f"the network gives {network.n_outputs} outputs per step but the vocabulary has "
                         f"{len(vocabulary)} ids (the unknown token's included); generate with the vocabulary "
                         "the network was trained with")
    return vocabulary


def _reads_one_step_at_a_time(network):
    """Whether a text can be fed in pieces: every layer is position-wise or recurrent (forward_from)."""
    return all(layer.position_wise or callable(getattr(layer, "forward_from", None)) for layer in network.layers)


def _next_logits(network, ids, states, vocabulary_size):
    """The output layer's logits (vocabulary_size,) at the last of ``ids``, in prediction; with ``states``
    (a dict by layer name, updated), the recurrent layers start from and keep their states."""
    x = network.backend.asarray(ids[None, :], np.int64)  # one row of ids (1, time_steps)
    if not network.layers[0].takes_token_ids:  # a network that reads one-hot rows (1, time_steps, V)
        x = network.backend.asarray(np.eye(vocabulary_size)[ids[None, :]], network.dtype)
    for layer in network.layers[:-1]:
        if states is not None and not layer.position_wise:
            x, states[layer.name] = layer.forward_from(x, states.get(layer.name))
        else:
            x = layer.forward(x, training=False)
    logits, _ = network.layers[-1].forward_logits(x, training=False)
    return to_numpy(logits).reshape(-1, vocabulary_size)[-1]


def _sample(logits, temperature, top_k, rng):
    """One id drawn from softmax(logits / temperature) among the top_k largest logits (argmax at 0)."""
    logits = np.asarray(logits, dtype=np.float64)
    if top_k is not None and top_k < logits.size:
        kept = np.argsort(-logits, kind="stable")[:top_k]  # ties go to the smaller id
        masked = np.full_like(logits, -np.inf)
        masked[kept] = logits[kept]
        logits = masked
    if temperature == 0:
        return int(np.argmax(logits))
    # The largest logit subtracted first: the exponent is <= 0, so no temperature can overflow it
    weights = np.exp((logits - logits.max()) / temperature)
    # Inverse-CDF sampling with one uniform draw; side="right" never lands on a token of weight 0
    cumulative = np.cumsum(weights)
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))


__all__ = ["Vocabulary", "stream_batches", "windows", "generate"]
