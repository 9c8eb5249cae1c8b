"""A model's inputs X: one array, or a tuple of arrays whose rows belong together.

A model with several inputs (a seq2seq model reads the source sentence and the decoder's input) takes X as
a tuple of arrays with the same number of rows, row i of every array being one sample. Everything that
cuts X by rows (mini-batches, shuffling, ``validation_split``, data-parallel shards, the doctor's probe)
goes through :func:`take_rows`, so a sample's parts are never separated, and counts rows with
:func:`count_rows`.
"""


def is_multiple(X):
    """Whether ``X`` is a tuple of input arrays rather than one array."""
    return isinstance(X, tuple)


def count_rows(X):
    """The number of samples in ``X`` (one array, or a tuple of arrays with as many rows each)."""
    return X[0].shape[0] if isinstance(X, tuple) else X.shape[0]


def take_rows(backend, X, rows):
    """Rows ``rows`` (a NumPy integer array) of ``X``, of each of its arrays alike when it is a tuple."""
    if isinstance(X, tuple):  # is_multiple, spelled out: asked at every training step
        return tuple(backend.take_rows(part, rows) for part in X)
    return backend.take_rows(X, rows)


def check_same_rows(parts, name="X"):
    """Raise ValueError unless the arrays ``parts`` (the members of a tuple X) have one number of rows.

    Raises
    ------
    ValueError
        Naming each part's row count: the parts of one sample must sit in the same row of each array.
    """
    counts = [part.shape[0] if part.ndim else 0 for part in parts]
    if len(set(counts)) > 1:
        listed = ", ".join(f"{name}[{index}] has {count}" for index, count in enumerate(counts))
        raise ValueError(f"the arrays of {name} must have the same number of rows, one per sample, but {listed}; "
                         "row i of every array must belong to sample i")


__all__ = ["is_multiple", "count_rows", "take_rows", "check_same_rows"]
