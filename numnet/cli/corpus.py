"""The text a language model trains on: ``--data text`` (the census names, one per line) or ``--data
text:PATH`` (any UTF-8 file), its vocabulary, the held-out tail, and the sequences ``fit`` reads.

The last :data:`VALIDATION_FRACTION` of the tokens is held out for the validation perplexity: a tail rather
than a random sample of windows, so that no validation window shares text with a training one. ``numnet
evaluate`` and ``numnet doctor`` rebuild the same tail from the same text with the model's vocabulary.
"""

import dataclasses

import numpy as np

from numnet import datasets
from numnet.text import Vocabulary, stream_batches, windows

from .data import RECIPES, TEXT_DATA, is_text_source

#: The held-out tail: this fraction of the tokens, at the end of the text.
VALIDATION_FRACTION = 0.1
#: ``--data text`` reads the census names (:func:`numnet.datasets.load_names`) in an order shuffled with this
#: seed: the lists run from common to rare names and the rare last names in reverse alphabetical order, so
#: unshuffled the held-out tail would be the a-to-p names nobody uses, and a model would learn that a name
#: starts like the one before it (makemore shuffles its names too).
NAMES_SHUFFLE_SEED = 0
NAMES_DESCRIPTION = "the US census names (numnet.datasets.load_names), one per line, shuffled (seed 0)"


@dataclasses.dataclass(frozen=True)
class TextData:
    """A text cut into token ids for a language model, split into a training head and a held-out tail.

    Attributes
    ----------
    source : str
        The --data value: "text" or "text:PATH".
    description : str
    vocabulary : Vocabulary
    train_ids, validation_ids : numpy.ndarray of int64, shape (n_tokens,)
        The first 90% of the tokens and the last 10%.
    """

    source: str
    description: str
    vocabulary: Vocabulary
    train_ids: np.ndarray
    validation_ids: np.ndarray
    kind = TEXT_DATA

    @property
    def recipe(self):
        """The Recipe of text: the defaults of ``numnet train --data text``."""
        return RECIPES[TEXT_DATA]


def load_corpus(source, *, level="char", vocabulary=None):
    """Read the text ``source`` names, build (or apply) its vocabulary and split its tokens.

    Parameters
    ----------
    source : str
        "text" (the census names: needs the ``names`` package, ``pip install 'numnet[text]'``) or
        "text:PATH" (a UTF-8 text file).
    level : {"char", "word"}, default "char"
        The vocabulary's level when it is built here.
    vocabulary : Vocabulary, optional
        A saved model's vocabulary: the text is encoded with it (its level wins; symbols it lacks become
        the unknown token) instead of a new one built from the whole text.

    Returns
    -------
    TextData

    Raises
    ------
    numnet.errors.MissingDependencyError
        For "text" without the ``names`` package.
    numnet.errors.DataFileError
        (a ValueError) For a file that is not UTF-8 text: the message names the line and byte offset.
    ValueError
        For a source that is not text, or a text too short to hold out a tail.
    """
    text, description = _read(source)
    if vocabulary is None:
        vocabulary = Vocabulary.from_text(text, level)
    ids = vocabulary.encode(text)
    held_out = int(round(len(ids) * VALIDATION_FRACTION))
    if held_out < 2 or len(ids) - held_out < 2:
        raise ValueError(f"{description} has {len(ids)} {_plural(vocabulary.level)}, too few to train on and "
                         f"hold out the last {VALIDATION_FRACTION:.0%} for validation; give a text of at least "
                         f"{int(np.ceil(2 / VALIDATION_FRACTION))}")
    description += (f": {len(ids):,} {_plural(vocabulary.level)}, a vocabulary of {len(vocabulary)} ids "
                    "(the unknown token's included)")
    return TextData(source.strip(), description, vocabulary, ids[:-held_out], ids[-held_out:])


def _read(source):
    """(text, description) of a --data text value."""
    if not is_text_source(source):
        raise ValueError(f"a language model trains on text: --data {TEXT_DATA} (the census names) or "
                         f"{TEXT_DATA}:PATH (a UTF-8 file), got {source!r}")
    path = source.strip()[len(TEXT_DATA) + 1:]
    if source.strip().lower() == TEXT_DATA:
        return _shuffled_names(), NAMES_DESCRIPTION
    if not path.strip():
        raise ValueError(f"--data {source.strip()} names no file; write the path after the colon, e.g. "
                         f"--data {TEXT_DATA}:poems.txt")
    return datasets.load_text(path), path


def _shuffled_names():
    """The census names, one per line, in the order :data:`NAMES_SHUFFLE_SEED` draws."""
    names = datasets.load_names().splitlines()
    order = np.random.default_rng(NAMES_SHUFFLE_SEED).permutation(len(names))
    return "".join(names[index] + "\n" for index in order)


def _plural(level):
    return "characters" if level == "char" else "words"


def training_sequences(data, *, time_steps, batch_size, stateful):
    """(X, y) for ``fit``: the training tokens as windows of ``time_steps`` (shuffled by fit, each read from
    a zero state), or for a stateful layer as ``batch_size`` parallel streams (truncated backpropagation
    through time, :func:`numnet.text.stream_batches`).

    Raises
    ------
    ValueError
        When the training text is too short for one window (or one batch of streams), naming the options.
    """
    n_tokens = len(data.train_ids)
    needed = batch_size * time_steps + 1 if stateful else time_steps + 1
    if n_tokens < needed:
        what = (f"{batch_size} streams (--batch-size) of {time_steps} steps (--time-steps)" if stateful
                else f"one window of {time_steps} steps (--time-steps)")
        raise ValueError(f"the training part of {data.source} holds {n_tokens} tokens, fewer than the {needed} "
                         f"that {what} need; give a longer text or smaller sizes")
    if stateful:
        return stream_batches(data.train_ids, batch_size, time_steps)
    return windows(data.train_ids, time_steps)


def validation_sequences(data, time_steps):
    """(X, y): the held-out tail as windows of ``time_steps`` (shorter when the tail is: a model reads
    sequences of any length), each read from a zero state."""
    return windows(data.validation_ids, min(time_steps, len(data.validation_ids) - 1))
