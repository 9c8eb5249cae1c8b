"""Embedding: integer token ids to learned vectors, the first layer of a network that reads text; and
PositionEmbedding, a learned vector per position added to them (a transformer's).

A sequence of token ids (n_samples, time_steps) becomes a sequence of vectors (n_samples, time_steps, dim):
row ``ids[s, t]`` of the weight matrix ``W`` (vocab_size, dim). It is the product of a one-hot row with
``W``, computed as a lookup; its backward pass adds each position's gradient onto the row of ``W`` it was
read from, a scatter-add (:func:`scatter_add_rows`) that counts every repeated id.

The layers register their kinds (embedding, position_embedding) in :data:`numnet.layers.LAYERS` when this
module is imported (``import numnet`` does), so saved models holding them load.
"""

import math

import numpy as np

from .backend import holds_integers, namespace, to_numpy
from .initializers import Normal
from .layers import Layer, _fill, register_layer
from .validation import Integer, declare


@register_layer
class Embedding(Layer):
    """A lookup table of learned vectors: token id ``k`` becomes row ``W[k]``; ``(n, T)`` ids → ``(n, T, dim)``.

    ``W`` is ``(vocab_size, dim)``, PyTorch's ``nn.Embedding.weight`` as it is (no transpose) and ONNX's
    ``Gather`` data. It starts N(0, 1), PyTorch's default, and L2 (or L1) penalises it.

    The layer takes integer ids (``takes_token_ids``): the network keeps its input as integers, and the
    layer refuses ids of any other dtype (TypeError) or outside ``[0, vocab_size)`` (ValueError naming the
    first bad id and its position), where a lookup would silently wrap around or fail.

    Its backward pass fills dC/dW, each row the sum of the gradients at every position holding that id
    (see :func:`scatter_add_rows`), and returns None: the ids have no gradient, so an Embedding comes
    first in its network.

    Parameters
    ----------
    vocab_size : int
        How many distinct ids there are: ids lie in ``[0, vocab_size)``.
    dim : int
        The length of each vector.
    name : str, optional
        Set by the network ("embedding_0", ...) when not given.

    Examples
    --------
    >>> import numpy as np
    >>> layer = Embedding(5, 2)
    >>> layer.bind({"W": np.arange(10.0).reshape(5, 2)}, {"W": np.zeros((5, 2))})
    >>> layer.forward(np.array([[0, 4, 4]]))
    array([[[0., 1.],
            [8., 9.],
            [8., 9.]]])
    """

    takes_token_ids = True
    position_wise = True  # each id's vector alone

    @declare(vocab_size=Integer(), dim=Integer())
    def __init__(self, vocab_size, dim, *, name=None):
        super().__init__(name=name)
        self.vocab_size = vocab_size
        self.dim = dim

    def parameter_shapes(self):
        return {"W": (self.vocab_size, self.dim)}

    def penalized_parameters(self):
        return ("W",)

    def expected_input_shape(self):
        return (None,)  # a sequence of ids of any length

    def output_shape(self, input_shape):
        if input_shape is None:
            return (None, self.dim)
        if len(input_shape) != 1:
            raise ValueError("takes sequences of token ids, one sample of shape (time_steps,)")
        return (input_shape[0], self.dim)

    def initialize(self, rng):
        """W from N(0, 1), PyTorch's default, drawn in float64 from ``rng`` and stored in the layer's dtype."""
        _fill(self.params["W"], rng.standard_normal((self.vocab_size, self.dim)))

    def forward(self, x, training=False, rng=None):
        """Row ``W[x[s, t]]`` for every id of ``x`` (n_samples, time_steps): (n_samples, time_steps, dim).

        Raises
        ------
        TypeError
            When ``x`` does not hold integers.
        ValueError
            When ``x`` is not 2-D, or an id lies outside ``[0, vocab_size)``.
        """
        self._check_ids(x)
        xp = namespace(x)
        ids = xp.reshape(x, (math.prod(x.shape),))  # (n·T,): the standard's take reads 1-D indices
        vectors = xp.take(self.params["W"], ids, axis=0)  # (n·T, dim)
        self._cache = ids if training else None
        return xp.reshape(vectors, (*x.shape, self.dim))

    def backward(self, grad_output, propagate=True):
        """Fill dC/dW from dC/d(output) (n_samples, time_steps, dim); returns None (ids have no gradient)."""
        ids = self._require_cache()
        xp = namespace(grad_output)
        rows = xp.reshape(grad_output, (ids.shape[0], self.dim))  # (n·T, dim), one row per id
        # BP4 for a lookup: dC/dW[k] = Σ over the positions p holding id k of dC/d(output)[p]
        scatter_add_rows(self.grads["W"], ids, rows)
        return None

    def _check_ids(self, x):
        """TypeError for ids that are not integers, ValueError for a wrong shape or an id out of range."""
        who = f"layer {self.name or self.kind} (Embedding)"
        if not holds_integers(x):
            dtype = str(x.dtype).rsplit(".", 1)[-1]  # "float64", also for array_api_strict.float64
            raise TypeError(f"{who} takes integer token ids, got an array of dtype {dtype}; convert the ids "
                            "with ids.astype(numpy.int64) (whole-valued floats: round them first)")
        if x.ndim != 2:
            raise ValueError(f"{who} takes token ids of shape (n_samples, time_steps), got shape {tuple(x.shape)}")
        if math.prod(x.shape) == 0:
            return
        xp = namespace(x)
        if int(xp.min(x)) >= 0 and int(xp.max(x)) < self.vocab_size:
            return
        ids = to_numpy(x)
        row, step = (int(index) for index in np.argwhere((ids < 0) | (ids >= self.vocab_size))[0])
        raise ValueError(f"{who} was given token id {int(ids[row, step])} at sample {row}, time step {step}, "
                         f"outside its vocabulary of {self.vocab_size} ids [0, {self.vocab_size}); map every "
                         f"token to an id below {self.vocab_size} (an unknown-token id), or build the layer "
                         "with a larger vocab_size")

    def describe(self):
        return f"Embedding {self.vocab_size} ids -> {self.dim}"


@register_layer
class PositionEmbedding(Layer):
    """A learned vector per position, added to a sequence: y[:, t] = x[:, t] + W[t] (GPT-2's ``wpe``).

    Attention compares time steps by their content alone, so a transformer adds to each step's vector one
    that says where it stands: row ``t`` of ``W`` (block_size, dim), learned like any weight. Inputs
    (n_samples, time_steps, dim) of any length up to ``block_size`` (the longest context the model has
    positions for) use the first ``time_steps`` rows; a longer one is refused (a ValueError that says so).

    ``W`` is PyTorch's ``nn.Embedding(block_size, dim).weight`` as it is, read at positions 0..T-1 (nanoGPT's
    ``wpe(arange(T))``). It starts N(0, 0.02²), nanoGPT's initialisation, and L2 (or L1) penalises it.

    Parameters
    ----------
    block_size : int
        The number of positions: the longest sequence the layer takes.
    dim : int
        The features of each time step, in and out.
    name : str, optional
        Set by the network ("position_embedding_0", ...) when not given.

    Examples
    --------
    >>> import numpy as np
    >>> layer = PositionEmbedding(4, 2)
    >>> layer.bind({"W": np.arange(8.0).reshape(4, 2)}, {"W": np.zeros((4, 2))})
    >>> layer.forward(np.zeros((1, 3, 2)))
    array([[[0., 1.],
            [2., 3.],
            [4., 5.]]])
    """

    @declare(block_size=Integer(), dim=Integer())
    def __init__(self, block_size, dim, *, name=None):
        super().__init__(name=name)
        self.block_size = block_size
        self.dim = dim

    def parameter_shapes(self):
        return {"W": (self.block_size, self.dim)}

    def penalized_parameters(self):
        return ("W",)

    def expected_input_shape(self):
        return (None, self.dim)  # sequences of any length up to block_size

    def output_shape(self, input_shape):
        if input_shape is not None:
            if len(input_shape) != 2 or input_shape[1] not in (None, self.dim):
                raise ValueError(f"takes sequences of shape (time_steps, {self.dim})")
            if input_shape[0] is not None and input_shape[0] > self.block_size:
                raise ValueError(f"has positions for at most {self.block_size} time steps (block_size)")
        return (None, self.dim) if input_shape is None else tuple(input_shape)

    def initialize(self, rng):
        """W from N(0, 0.02²), nanoGPT's, drawn in float64 from ``rng`` and stored in the layer's dtype."""
        _fill(self.params["W"], Normal(std=0.02)((self.block_size, self.dim), rng, np.float64))

    def forward(self, x, training=False, rng=None):
        """x + W[:T] for x (n_samples, T, dim), T <= block_size.

        Raises
        ------
        ValueError
            For input of another shape, or longer than ``block_size``.
        """
        if x.ndim != 3 or x.shape[2] != self.dim or not 0 < x.shape[1] <= self.block_size:
            raise ValueError(f"layer {self.name or self.kind} (PositionEmbedding) takes sequences of shape "
                             f"(n_samples, time_steps, {self.dim}) with 1 to {self.block_size} time steps (its "
                             f"block_size), got shape {tuple(x.shape)}; cut longer sequences into windows of at "
                             f"most {self.block_size} steps, or build the layer with a larger block_size")
        self._cache = x.shape[1] if training else None
        return x + self.params["W"][:x.shape[1], :]

    def backward(self, grad_output, propagate=True):
        """Fill dC/dW from dC/dy (n_samples, T, dim) and return dC/dx = dC/dy (or None when not ``propagate``)."""
        time_steps = self._require_cache()
        xp = namespace(grad_output)
        # BP4 for an added table: dC/dW[t] = Σ over the batch of dC/dy[:, t] for each position read; 0 beyond
        self.grads["W"][:time_steps, :] = xp.sum(grad_output, axis=0)
        self.grads["W"][time_steps:, :] = 0
        # BP2: y = x + W[:T], so dC/dx = dC/dy (the same array; backward never writes into it)
        return grad_output if propagate else None

    def describe(self):
        return f"PositionEmbedding {self.block_size} positions x {self.dim}"


def scatter_add_rows(target, indices, rows):
    """``target[indices[p]] = Σ rows[p]`` over every p with that index, every other row of ``target`` 0.

    Exact for repeated indices on every backend: each row of ``target`` receives all of its terms (a plain
    ``target[indices] += rows`` would keep only one of them).

    - NumPy and CuPy: ``add.at`` over the flattened arrays (one index per value), which adds the terms one
      by one in NumPy (in position order) and by atomic adds on a GPU (all terms, in no fixed order). It was
      the fastest exact way measured in NumPy 2.4 (one thread, 2048 ids of 64 values): 0.26 ms, against
      1.4-2.2 ms for ``add.at`` over whole rows (only the flat form takes NumPy's fast path), 0.25-0.44 ms for
      sorting and
      ``add.reduceat``, 0.3-0.6 ms for a one-hot product over 65 ids and 5-18 ms over 1000; with 10,000 ids
      ``add.at`` stayed 2-4x faster than sorting (benchmarks/NOTES.md, "embedding scatter-add").
    - Other array API libraries (``array_api_strict``), which have no scatter-add: the one-hot product
      ``onehotᵀ @ rows`` with ``onehot[p, k] = (indices[p] == k)``. Still exact: each sum holds the same
      nonzero terms (the zeros add nothing), only perhaps in another order; it costs a
      (len(target), len(indices)) temporary, fine for the test backend it serves.

    Parameters
    ----------
    target : array, shape (n_rows, width)
        Overwritten.
    indices : integer array, shape (n,)
        Each in ``[0, n_rows)`` (checked by the caller).
    rows : array, shape (n, width)
    """
    xp = namespace(rows)
    n_rows, width = target.shape
    indices = xp.astype(indices, xp.int64)  # int64, so that index · width cannot overflow a small id dtype
    add = getattr(xp, "add", None)
    if hasattr(add, "at"):
        # Summed straight into target when its flat view is one (a network's gradient always is)
        summed = xp.reshape(target, (-1,)) if target.flags.c_contiguous else xp.empty(n_rows * width, rows.dtype)
        summed[...] = 0
        flat_indices = xp.reshape(indices[:, None] * width + xp.arange(width), (-1,))  # (n·width,)
        add.at(summed, flat_indices, xp.reshape(rows, (-1,)))
        if not target.flags.c_contiguous:
            target[...] = xp.reshape(summed, target.shape)
        return
    onehot = xp.astype(indices[None, :] == xp.arange(n_rows, dtype=xp.int64)[:, None], rows.dtype)  # (n_rows, n)
    target[...] = onehot @ rows


__all__ = ["Embedding", "PositionEmbedding", "scatter_add_rows"]
