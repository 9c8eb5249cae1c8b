"""E14 and E15, encoder–decoder models ("Deep Learning from Scratch 2", chapters 7 and 8): seq2seq on the
addition set, plain, with the input reversed, and peeky with the input reversed; attention seq2seq on the
date set, with the attention drawn.

:func:`train_seq2seq` is the book's training loop for both (teacher forcing, Adam, clipping, the exact-match
accuracy on the test set after every epoch), which ``numnet train --data addition|dates`` runs too.
"""

import dataclasses
import html

import numpy as np

from numnet import datasets, plots
from numnet.models import Seq2Seq

from .results import INFORMATION, NOT_COMPARABLE, ExperimentResult, experiment_folder, verdict_of


@dataclasses.dataclass(frozen=True)
class Seq2SeqRecipe:
    """The book's settings for one data set (its chapter 7 and 8 scripts), and the quick run's."""

    embedding_dim: int
    hidden_size: int
    epochs: int
    batch_size: int = 128
    learning_rate: float = 1e-3  # Adam's default, the book's
    clip_norm: float = 5.0
    #: Training and test rows of a quick run (the docs build, ``--quick``): the first of each split.
    quick_training_rows: int = 5_000
    quick_test_rows: int = 500
    quick_epochs: int = 3
    quick_hidden_size: int = 64


#: ch07/train_seq2seq.py: wordvec_size 16, hidden_size 128, batch_size 128, max_epoch 25, max_grad 5.0.
ADDITION_RECIPE = Seq2SeqRecipe(embedding_dim=16, hidden_size=128, epochs=25)
#: ch08/train.py: wordvec_size 16, hidden_size 256, batch_size 128, max_epoch 10, max_grad 5.0.
DATES_RECIPE = Seq2SeqRecipe(embedding_dim=16, hidden_size=256, epochs=10, quick_epochs=2)
RECIPES = {"addition": ADDITION_RECIPE, "dates": DATES_RECIPE}

#: Read off the book's figures 7-23, 7-25 and 7-26: the exact-match test accuracy after 25 epochs of the
#: plain model, with the input reversed, and peeky with the input reversed.
BOOK_ADDITION_ACCURACY = {"plain": 0.10, "reversed": 0.50, "peeky, reversed": 0.99}
#: The book's figure 8-26: the attention model on dates is near 100% after two or three epochs.
BOOK_DATES_ACCURACY = 0.999
E14_VARIANTS = {"plain": {}, "reversed": {"reverse_input": True}, "peeky, reversed": {"peeky": True, "reverse_input": True}}
#: Test examples shown in the reports and the HTML page, and attention maps drawn (the first of the test set).
EXAMPLES_SHOWN = 10
ATTENTION_MAPS = 3


@dataclasses.dataclass
class Seq2SeqRun:
    """A trained model, its data and its exact-match accuracy after every epoch."""

    model: Seq2Seq
    training: tuple
    test: tuple
    vocabulary: object
    accuracy: list


def load_seq2seq_data(name, *, quick=False):
    """(training (X, Y), test (X, Y), vocabulary) of ``name`` ("addition" or "dates"); a quick run's subsets."""
    (X_train, Y_train), (X_test, Y_test), vocabulary = {"addition": datasets.load_addition,
                                                          "dates": datasets.load_dates}[name]()
    if quick:
        recipe = RECIPES[name]
        X_train, Y_train = X_train[:recipe.quick_training_rows], Y_train[:recipe.quick_training_rows]
        X_test, Y_test = X_test[:recipe.quick_test_rows], Y_test[:recipe.quick_test_rows]
    return (X_train, Y_train), (X_test, Y_test), vocabulary


def train_seq2seq(name, *, quick=False, seed=0, epochs=None, hidden_size=None, progress=None, **options):
    """Train a :class:`numnet.Seq2Seq` on ``name``'s data with the book's recipe, measuring the exact-match
    accuracy on the test set after every epoch (the book's ``eval_seq2seq``).

    Parameters
    ----------
    name : {"addition", "dates"}
    quick : bool
        Train on the first rows only, for fewer epochs, a smaller model (the recipe's quick settings).
    seed : int
    epochs, hidden_size : int, optional
        Instead of the recipe's.
    progress : callable, optional
        Called after every epoch with (the EpochReport, the test accuracy).
    **options
        ``peeky``, ``attention``, ``reverse_input``.

    Returns
    -------
    Seq2SeqRun
    """
    recipe = RECIPES[name]
    training, test, vocabulary = load_seq2seq_data(name, quick=quick)
    hidden = hidden_size or (recipe.quick_hidden_size if quick else recipe.hidden_size)
    model = Seq2Seq(len(vocabulary), recipe.embedding_dim, hidden, seed=seed, **options)
    model.vocabulary = vocabulary
    accuracy = []

    def after_epoch(report):
        accuracy.append(model.exact_match(*test))
        if progress is not None:
            progress(report, accuracy[-1])

    model.fit(*training, epochs=epochs or (recipe.quick_epochs if quick else recipe.epochs),
              batch_size=recipe.batch_size, optimizer="adam", learning_rate=recipe.learning_rate,
              clip_norm=recipe.clip_norm, seed=seed, record_gradients=False, progress=after_epoch,
              validation_data=test)
    return Seq2SeqRun(model, training, test, vocabulary, accuracy)


def decoded_examples(run, count=EXAMPLES_SHOWN):
    """[(question, prediction, truth)] for the first ``count`` test rows, as text (padding kept)."""
    X, Y = run.test[0][:count], run.test[1][:count]
    written = run.model.generate(X, start_id=int(Y[0, 0]), length=Y.shape[1] - 1)
    decode = run.vocabulary.decode
    return [(decode(question), decode(answer), decode(truth[1:])) for question, answer, truth in zip(X, written, Y)]


def attention_maps(run, folder, count=ATTENTION_MAPS):
    """Draw the attention of the first ``count`` test examples; returns the files written."""
    paths = []
    for index in range(count):
        path = folder / f"attention_{index}.png"
        plots.plot_attention(run.model, run.test[0][index], path=path,
                             title=f"Attention: {run.vocabulary.decode(run.test[0][index]).strip()}")
        paths.append(path)
    return paths


def write_examples_page(run, path, title, maps=()):
    """An HTML page of test examples (input, prediction, truth, right or wrong) and attention maps."""
    rows = "\n".join(
        f"<tr class=\"{'right' if prediction == truth else 'wrong'}\"><td>{html.escape(question)}</td>"
        f"<td>{html.escape(prediction)}</td><td>{html.escape(truth)}</td>"
        f"<td>{'✓' if prediction == truth else '✗'}</td></tr>"
        for question, prediction, truth in decoded_examples(run))
    images = "\n".join(f"<img src=\"{html.escape(map_path.name)}\" alt=\"attention map {index}\">"
                       for index, map_path in enumerate(maps))
    accuracy = f"{run.accuracy[-1]:.1%}" if run.accuracy else "not measured"
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td{font-family:monospace;white-space:pre;"
            "padding:0 1em}.wrong{color:#b00}img{max-width:32%;margin:0.5em}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>Exact-match accuracy on the test set: {accuracy}.</p>"
            "<table><tr><th>input</th><th>prediction</th><th>truth</th><th></th></tr>\n"
            f"{rows}\n</table>{images}</body></html>\n")
    path.write_text(page, encoding="utf-8")
    return path


def _curve_label(values):
    return "[" + ", ".join(f"{value:.3f}" for value in values) + "]"


# ---------------------------------------------------------------------------------------------------------
# E14: seq2seq on addition


def run_e14(output_dir, *, quick=False, seed=0):
    """E14: the book's chapter 7 on the addition set: plain seq2seq, the input reversed, and peeky with the
    input reversed; exact-match test accuracy per epoch against the book's figures."""
    result = ExperimentResult("E14", "Seq2seq on addition: plain, reversed, peeky")
    folder = experiment_folder(output_dir, "E14")
    curves, final, characters = {}, {}, {}
    for label, options in E14_VARIANTS.items():
        run = train_seq2seq("addition", quick=quick, seed=seed, **options)
        curves[label], final[label] = run.accuracy, run.accuracy[-1]
        result.log.append(f"{label}: exact-match test accuracy per epoch {_curve_label(run.accuracy)}; per "
                          f"character (teacher forced) {_curve_label(run.model.history.val_accuracy)}")
        characters[label] = run.model.history.val_accuracy[-1]
        if label == "peeky, reversed":
            examples = decoded_examples(run, 5)
    for label, value in final.items():
        book = BOOK_ADDITION_ACCURACY[label]
        result.add_row(f"{label}: exact-match test accuracy after {len(curves[label])} epochs", f"{value:.1%}",
                       f"about {book:.0%} (the book's figure, read off)", INFORMATION)
    result.add_row("per-character test accuracy, the decoder reading the true answer (teacher forced)",
                   ", ".join(f"{label} {value:.1%}" for label, value in characters.items()),
                   "above a guess among the 13 symbols (7.7%)", verdict_of(min(characters.values()) > 1 / 13))
    ordered = final["plain"] < final["reversed"] < final["peeky, reversed"]
    result.add_row("each improvement helps: plain < reversed < peeky and reversed",
                   " < ".join(f"{final[label]:.1%}" for label in E14_VARIANTS),
                   "the book's order", NOT_COMPARABLE if quick else verdict_of(ordered))
    result.add_row("peeky, reversed: test examples (question -> answer)",
                   "; ".join(f"{question.strip()} -> {prediction.strip()}" for question, prediction, _ in examples),
                   "correct sums", INFORMATION)
    plots.plot_comparison_curves({label: values for label, values in curves.items()}, path=folder / "accuracy.png",
                                 xlabel="epoch", ylabel="exact-match test accuracy",
                                 title="Seq2seq on addition: test accuracy per epoch")
    result.add_figure("Exact-match test accuracy per epoch of the three models", folder / "accuracy.png")
    recipe = ADDITION_RECIPE
    result.notes += [
        f"Data: numnet.datasets.load_addition() (the book's format, generated; 45,000 training and 5,000 test "
        f"questions{'; quick: the first ' + format(recipe.quick_training_rows, ',') + ' and ' + str(recipe.quick_test_rows) if quick else ''}).",
        f"Settings (the book's ch07/train_seq2seq.py): embedding {recipe.embedding_dim}, hidden "
        f"{recipe.quick_hidden_size if quick else recipe.hidden_size}, batches of {recipe.batch_size}, Adam lr "
        f"{recipe.learning_rate:g}, gradient norm clipped at {recipe.clip_norm:g}, "
        f"{recipe.quick_epochs if quick else recipe.epochs} epochs, seed {seed}; the accuracy counts a question "
        "right only when every character of the answer is.",
        "numnet's layers start as PyTorch's (LSTM U(-1/sqrt(H), 1/sqrt(H)), Embedding N(0, 1)) where the book's "
        "start at randn/sqrt(D) and randn/100, so the curves differ in detail.",
    ]
    return result


# ---------------------------------------------------------------------------------------------------------
# E15: attention on dates


def run_e15(output_dir, *, quick=False, seed=0):
    """E15: the book's chapter 8 on the date set: attention seq2seq with the input reversed; exact-match
    test accuracy per epoch and the attention maps of a few test dates."""
    result = ExperimentResult("E15", "Attention on dates")
    folder = experiment_folder(output_dir, "E15")
    run = train_seq2seq("dates", quick=quick, seed=seed, attention=True, reverse_input=True)
    result.log.append(f"exact-match test accuracy per epoch {_curve_label(run.accuracy)}; per character (teacher "
                      f"forced) {_curve_label(run.model.history.val_accuracy)}")
    result.add_row("per-character test accuracy, the decoder reading the true answer (teacher forced)",
                   f"{run.model.history.val_accuracy[-1]:.1%}", f"above a guess among the {len(run.vocabulary) - 1} "
                   f"symbols ({1 / (len(run.vocabulary) - 1):.1%})",
                   verdict_of(run.model.history.val_accuracy[-1] > 1 / (len(run.vocabulary) - 1)))
    result.add_row(f"exact-match test accuracy after {len(run.accuracy)} epochs", f"{run.accuracy[-1]:.1%}",
                   f"about {BOOK_DATES_ACCURACY:.1%} from the second or third epoch on (the book's figure 8-26)",
                   NOT_COMPARABLE if quick else verdict_of(run.accuracy[-1] >= 0.99))
    examples = decoded_examples(run, 3)
    result.add_row("test examples (question -> answer)",
                   "; ".join(f"{question.strip()} -> {prediction.strip()}" for question, prediction, _ in examples),
                   "the dates in ISO form", INFORMATION)
    plots.plot_comparison_curves({"attention, reversed": run.accuracy}, path=folder / "accuracy.png", xlabel="epoch",
                                 ylabel="exact-match test accuracy", title="Attention seq2seq on dates")
    result.add_figure("Exact-match test accuracy per epoch", folder / "accuracy.png")
    for index, path in enumerate(attention_maps(run, folder)):
        result.add_figure(f"Attention of test date {index}: each output character (rows) over the input's "
                          "characters (columns)", path)
    recipe = DATES_RECIPE
    result.notes += [
        "Data: numnet.datasets.load_dates() (the book's formats and casings, generated; 45,000 training and "
        f"5,000 test dates{'; quick: the first ' + format(recipe.quick_training_rows, ',') + ' and ' + str(recipe.quick_test_rows) if quick else ''}).",
        f"Settings (the book's ch08/train.py): embedding {recipe.embedding_dim}, hidden "
        f"{recipe.quick_hidden_size if quick else recipe.hidden_size}, batches of {recipe.batch_size}, Adam lr "
        f"{recipe.learning_rate:g}, clipping at {recipe.clip_norm:g}, {recipe.quick_epochs if quick else recipe.epochs} "
        f"epochs, the input reversed, seed {seed}. The maps show the weights over the input in its written order.",
    ]
    return result
