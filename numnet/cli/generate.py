"""``numnet generate``: text sampled from a saved language model (``numnet train --data text``)."""

from numnet.persistence import load_model
from numnet.text import generate

from .options import integer_option, non_negative_float

#: The prompt when none is given: a line break, the start of a line (of a name, for --data text).
DEFAULT_PROMPT = "\n"
DEFAULT_LENGTH = 200


def language_model(path):
    """The model saved at ``path``, which must be a language model (one saved with its vocabulary).

    Raises
    ------
    ValueError
        For a model without a vocabulary, saying how to train one.
    """
    network = load_model(path)
    if network.vocabulary is None:
        raise ValueError(f"this model was not trained on text: {path} has no vocabulary; train a language model "
                         "with `numnet train --data text` (or --data text:PATH) and generate from its model.npz")
    return network


def command_generate(args):
    """Print the text the model generates after --prompt (the prompt first, when one is given)."""
    network = language_model(args.model)
    text = generate(network, prompt=args.prompt, length=args.length, temperature=args.temperature,
                    top_k=args.top_k, seed=args.seed)
    print(_continued(args.prompt, text, network.vocabulary.level))
    return 0


def _continued(prompt, text, level):
    """The prompt and its continuation as one text: words apart by a space (as the vocabulary decodes them),
    characters as they come; the default prompt, a bare line break, is left out."""
    if prompt == DEFAULT_PROMPT:
        return text
    if level == "word" and not prompt.endswith("\n") and not text.startswith("\n"):
        return f"{prompt} {text}"
    return prompt + text


def add_parser(commands):
    """Add ``numnet generate`` to the subparsers ``commands``."""
    command = commands.add_parser(
        "generate", help="sample text from a saved language model",
        description="Print text sampled from a language model that `numnet train --data text` (or --data "
                    "text:PATH) saved: the prompt, then --length tokens drawn one at a time from the model's "
                    "softmax at --temperature, among the --top-k likeliest when given. The model file holds its "
                    "vocabulary. The same --seed gives the same text.")
    command.add_argument("model", metavar="MODEL")
    command.add_argument("--prompt", default=DEFAULT_PROMPT, metavar="TEXT",
                         help="the text to continue (default: a line break, the start of a new line)")
    command.add_argument("--length", type=integer_option(0), default=DEFAULT_LENGTH, metavar="N",
                         help="tokens to generate: characters, or words for a word-level model (default "
                              "%(default)s)")
    command.add_argument("--temperature", type=non_negative_float, default=1.0, metavar="T",
                         help="below 1 surer, above 1 more varied, 0 always the likeliest token (default "
                              "%(default)s)")
    command.add_argument("--top-k", type=integer_option(1), metavar="K",
                         help="sample among the K likeliest tokens only (default: all)")
    command.add_argument("--seed", type=integer_option(0), metavar="S",
                         help="seed of the draws, for the same text every time (default: fresh draws)")
    command.set_defaults(run=command_generate)
