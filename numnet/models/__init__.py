"""Models that numnet builds for you from its layers: networks with a structure of their own.

- :class:`~numnet.models.seq2seq.Seq2Seq`: the sequel book's encoder–decoder (with its peeky, attention and
  reversed-input options), trained by teacher forcing and decoded greedily (:mod:`numnet.models.seq2seq`).
- :func:`~numnet.models.gpt.gpt`: GPT-2's decoder-only transformer as nanoGPT writes it, its output tied to
  its token embedding (:mod:`numnet.models.gpt`).

Each is a :class:`numnet.Network` (``fit``, ``save_model``, ``load_model``, gradient checking and the doctor
all work on it) whose layers it builds itself, and which a saved file names, so that it loads as itself.
"""

from .gpt import GPT, gpt, transformer_block
from .seq2seq import EncoderDecoder, Seq2Seq

__all__ = ["EncoderDecoder", "Seq2Seq", "GPT", "gpt", "transformer_block"]
