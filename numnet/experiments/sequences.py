"""E13, language models: a character model of the census names with an RNN, an LSTM and a GRU of one hidden
size; the vanishing and exploding gradient through time of "Deep Learning from Scratch 2", chapter 6; and
training with and without gradient clipping."""

import numpy as np

from numnet import datasets, plots
from numnet.embedding import Embedding
from numnet.errors import DivergenceError
from numnet.evidence import gradient_through_time, growth_per_step
from numnet.layers import Dense
from numnet.network import Network
from numnet.recurrent import GRU, LSTM, RNN
from numnet.text import UNKNOWN_ID, Vocabulary, generate

from .results import INFORMATION, NOT_COMPARABLE, ExperimentResult, experiment_folder, verdict_of

# ---------------------------------------------------------------------------------------------------------
# E13 part A: a character language model of names, RNN against LSTM against GRU

#: The census names are shuffled once with this seed; the validation names are the last ones.
E13_SPLIT_SEED = 0
#: Training names: about as many as makemore's names.txt (32,033); --quick trains on 2,000.
E13_TRAINING_NAMES = 30_000
E13_QUICK_TRAINING_NAMES = 2_000
E13_VALIDATION_NAMES = 5_000
E13_QUICK_VALIDATION_NAMES = 500
E13_EMBEDDING = 32
E13_HIDDEN = 128
E13_QUICK_HIDDEN = 32
E13_EPOCHS = 4
E13_QUICK_EPOCHS = 3
E13_BATCH_SIZE = 128
E13_QUICK_BATCH_SIZE = 32
E13_LEARNING_RATE = 0.01
E13_CLIP_NORM = 1.0
E13_MODELS = (("RNN", RNN), ("LSTM", LSTM), ("GRU", GRU))
#: Names sampled from each trained model (one seed for all three), each at most E13_LONGEST_SAMPLE letters.
E13_SAMPLES = 10
E13_SAMPLE_SEED = 0
E13_LONGEST_SAMPLE = 20
#: Reported in makemore's README (karpathy/makemore): its default Transformer reaches a test loss of about
#: 1.92 nats per character on names.txt (32,033 first names of the US Social Security records, 2018).
E13_MAKEMORE_LOSS = 1.92
#: The first names makemore's README shows from that model.
E13_MAKEMORE_SAMPLES = ("dontell", "khylum", "camatena", "aeriline", "najlah")
#: Reported for the book's LSTM language model (ch06/train_rnnlm.py: hidden 100, SGD lr 20, clipping 0.25,
#: 4 epochs): test perplexity about 136 on the Penn Treebank (word level).
E13_BOOK_LSTM_PERPLEXITY = 136


def e13_names(n_training, n_validation, seed=E13_SPLIT_SEED):
    """(training names, validation names) of the census lists (:func:`numnet.datasets.load_names`),
    shuffled once with ``seed``: the first ``n_training`` and the last ``n_validation``, disjoint."""
    names = datasets.load_names().splitlines()
    if n_training + n_validation > len(names):
        raise ValueError(f"there are {len(names):,} names; {n_training:,} training and {n_validation:,} validation "
                         "names do not fit")
    order = np.random.default_rng(seed).permutation(len(names))
    shuffled = [names[index] for index in order]
    return shuffled[:n_training], shuffled[len(names) - n_validation:]


def name_rows(names, vocabulary, time_steps):
    """One name per row, makemore's layout: inputs ``"\\n" + name``, targets ``name + "\\n"`` (each
    character predicts the next; the line break starts a name and ends it), padded with the unknown token's
    id in the inputs and -1 (not counted) in the targets up to ``time_steps``.

    Returns
    -------
    X, y : numpy.ndarray of int64, shape (len(names), time_steps)

    Raises
    ------
    ValueError
        When a name is longer than ``time_steps - 1`` characters.
    """
    X = np.full((len(names), time_steps), UNKNOWN_ID, dtype=np.int64)
    y = np.full((len(names), time_steps), -1, dtype=np.int64)
    for row, name in enumerate(names):
        if len(name) >= time_steps:
            raise ValueError(f"the name {name!r} has {len(name)} characters; rows of {time_steps} steps hold at most "
                             f"{time_steps - 1}")
        ids = vocabulary.encode("\n" + name + "\n")
        X[row, :len(ids) - 1], y[row, :len(ids) - 1] = ids[:-1], ids[1:]  # y is X one character later
    return X, y


def language_model(recurrent_class, vocabulary_size, hidden_size, *, seed=0):
    """``Embedding(V, E13_EMBEDDING)`` -> ``recurrent_class(E13_EMBEDDING, hidden_size)`` -> a Dense softmax over
    V at every step: makemore's RNN/LSTM/GRU models and the book's Rnnlm, one recurrent layer each."""
    return Network(layers=[Embedding(vocabulary_size, E13_EMBEDDING), recurrent_class(E13_EMBEDDING, hidden_size),
                           Dense(hidden_size, vocabulary_size, "softmax")], seed=seed)


def bigram_perplexity(training, validation, vocabulary_size):
    """The validation perplexity of a bigram model counted on the training rows (add-one smoothing):
    makemore's first model, a baseline that involves no training. ``training`` and ``validation`` are (X, y)
    from :func:`name_rows`; only the counted targets (not -1) enter."""
    X, y = training
    counts = np.ones((vocabulary_size, vocabulary_size))  # add-one: no pair has probability 0
    np.add.at(counts, (X[y >= 0], y[y >= 0]), 1.0)
    probabilities = counts / counts.sum(axis=1, keepdims=True)  # row: P(next | this character)
    X, y = validation
    return float(np.exp(-np.mean(np.log(probabilities[X[y >= 0], y[y >= 0]]))))


def sample_names(network, vocabulary, count=E13_SAMPLES, seed=E13_SAMPLE_SEED):
    """``count`` names generated from a line break at temperature 1, each cut at its first line break."""
    rng = np.random.default_rng(seed)
    return [generate(network, vocabulary, "\n", E13_LONGEST_SAMPLE, seed=rng).split("\n")[0] for _ in range(count)]


def _e13_language_models(result, folder, data, *, quick, seed):
    """Part A: the three models trained alike; rows (their samples among them) and the perplexity figure."""
    (training, validation), vocabulary, census = data
    hidden, epochs = (E13_QUICK_HIDDEN, E13_QUICK_EPOCHS) if quick else (E13_HIDDEN, E13_EPOCHS)
    batch_size = E13_QUICK_BATCH_SIZE if quick else E13_BATCH_SIZE
    bigram = bigram_perplexity(training, validation, len(vocabulary))
    curves, final, samples = {}, {}, {}
    for label, recurrent_class in E13_MODELS:
        network = language_model(recurrent_class, len(vocabulary), hidden, seed=seed)
        history = network.fit(*training, epochs=epochs, batch_size=batch_size, optimizer="adam",
                              learning_rate=E13_LEARNING_RATE, clip_norm=E13_CLIP_NORM, validation_data=validation,
                              seed=seed, record_gradients=False)
        curves[f"{label}: training"], curves[f"{label}: validation"] = history.perplexity, history.val_perplexity
        final[label] = history.val_perplexity[-1]
        samples[label] = sample_names(network, vocabulary)
        result.log.append(f"{label}: perplexity per epoch, training {_rounded(history.perplexity)}, validation "
                          f"{_rounded(history.val_perplexity)}; clipped fraction {_rounded(history.clipped_fraction)}")
    _e13_perplexity_rows(result, final, bigram, len(vocabulary), epochs=epochs, quick=quick)
    for label, names_sampled in samples.items():
        known = sum(name in census for name in names_sampled)
        result.add_row(f"{label}: {E13_SAMPLES} names sampled after {epochs} epochs",
                       f"{', '.join(names_sampled)} ({known} of them census names)",
                       f"name-like, e.g. makemore's {', '.join(E13_MAKEMORE_SAMPLES)} (reported)", INFORMATION)
    curves["bigram (counted): validation"] = [bigram] * epochs
    plots.plot_comparison_curves(curves, path=folder / "perplexity.png", xlabel="epoch", ylabel="perplexity",
                                 title=f"Names: perplexity per epoch, hidden size {hidden}")
    result.add_figure("Training and validation perplexity per epoch of the RNN, LSTM and GRU, and the bigram's",
                      folder / "perplexity.png")
    return hidden, epochs


def _rounded(values):
    return "[" + ", ".join(f"{value:.3g}" for value in values) + "]"


def _e13_perplexity_rows(result, final, bigram, vocabulary_size, *, epochs, quick):
    """The validation perplexities judged against the book's and makemore's expectations."""
    figures = ", ".join(f"{label} {value:.2f}" for label, value in final.items())
    result.add_row(f"validation perplexity after {epochs} epochs, RNN vs LSTM", f"{final['RNN']:.2f} vs "
                   f"{final['LSTM']:.2f}", f"the LSTM's below the RNN's (the book, ch. 6; its LSTM model: about "
                   f"{E13_BOOK_LSTM_PERPLEXITY} on PTB words, reported)",
                   NOT_COMPARABLE if quick else verdict_of(final["LSTM"] < final["RNN"]))
    result.add_row("validation perplexity, every model below the bigram's (counted on the same names)",
                   f"{figures}; bigram {bigram:.2f}", "below the bigram's (makemore: the bigram is the weakest model)",
                   NOT_COMPARABLE if quick else verdict_of(max(final.values()) < bigram))
    best = min(final, key=final.get)
    result.add_row(f"best validation loss per character ({best})", f"{np.log(final[best]):.2f} nats (perplexity "
                   f"{final[best]:.2f}; uniform guessing: {vocabulary_size})",
                   f"makemore's Transformer on names.txt: about {E13_MAKEMORE_LOSS} nats (perplexity "
                   f"{np.exp(E13_MAKEMORE_LOSS):.1f}), reported; another corpus", INFORMATION)


# ---------------------------------------------------------------------------------------------------------
# E13 part B: the gradient through time, vanishing and exploding

#: The book's rnn_gradient_graph.py: 2 rows, H = 3, T = 20, np.random.seed(3), Wh = randn(H, H) (it
#: explodes) and randn(H, H) * 0.5 (it vanishes).
E13_BOOK_ROWS = 2
E13_BOOK_HIDDEN = 3
E13_BOOK_STEPS = 20
E13_BOOK_SEED = 3
E13_BOOK_SCALES = (1.0, 0.5)
#: numnet's RNN layer: Wh = s · randn(H, H) / √H, whose spectral radius is about s (the circular law).
E13_THROUGH_TIME_HIDDEN = 64
E13_THROUGH_TIME_INPUTS = 16
E13_THROUGH_TIME_ROWS = 8
E13_THROUGH_TIME_STEPS = 30
E13_THROUGH_TIME_SCALES = (0.5, 2.0)


def book_recurrent_weights(scale, seed=E13_BOOK_SEED, hidden_size=E13_BOOK_HIDDEN):
    """The book's Wh: ``np.random.seed(seed); np.random.randn(H, H) * scale``, drawn from a RandomState of
    its own (the same numbers, the global NumPy state untouched)."""
    return np.random.RandomState(seed).randn(hidden_size, hidden_size) * scale


def book_gradient_norms(Wh, steps=E13_BOOK_STEPS, rows=E13_BOOK_ROWS):
    """The book's experiment: dh starts as ones (rows, H) and is multiplied by Whᵀ ``steps`` times (BP2
    through time without tanh'); the norm ‖dh‖ / rows after each multiplication, shape (steps,)."""
    dh = np.ones((rows, Wh.shape[0]))
    norms = []
    for _ in range(steps):
        dh = dh @ Wh.T  # dC/dh_{t-1} = dC/dh_t · Whᵀ
        norms.append(float(np.sqrt(np.sum(dh * dh))) / rows)
    return np.array(norms)


def rnn_gradient_norms(Wh, x, *, seed=0):
    """‖dC/dxₜ‖ at every step t of numnet's RNN layer with recurrent weights ``Wh`` (H, H) and bias 0 on the
    inputs ``x`` (n, T, features) when only the last step's output receives a gradient
    (:func:`numnet.evidence.gradient_through_time`); Wx is the layer's initial one (``seed``). Shape (T,)."""
    hidden_size, features = Wh.shape[0], x.shape[-1]
    network = Network(layers=[RNN(features, hidden_size), Dense(hidden_size, 1)], input_shape=(None, features),
                      loss="mse", dtype="float64", seed=seed)
    layer = network.layers[0]
    layer.params["Wh"][...] = Wh
    layer.params["b"][...] = 0.0
    return gradient_through_time(layer, x)


def _e13_through_time(result, folder, seed):
    """Part B: the book's product and numnet's RNN layer, small and large Wh; rows and two figures."""
    book = {f"Wh = randn(3, 3) × {scale:g}": book_gradient_norms(book_recurrent_weights(scale))
            for scale in E13_BOOK_SCALES}
    for (label, norms), expected in zip(book.items(), ("grows (explodes)", "shrinks (vanishes)")):
        grows = norms[-1] > norms[0]
        result.add_row(f"the book's product, {label}: ‖dh‖ after 1 and {E13_BOOK_STEPS} steps",
                       f"{norms[0]:.3g} -> {norms[-1]:.3g}", f"{expected} exponentially (the book, ch. 6)",
                       verdict_of(grows == expected.startswith("grows")))
    plots.plot_comparison_curves(book, x=np.arange(1, E13_BOOK_STEPS + 1), path=folder / "book_gradient.png",
                                 log_scale=True, xlabel="time steps back", ylabel="‖dh‖ / N",
                                 title="The book's dh · Whᵀ, 20 times (N = 2, H = 3, seed 3)")
    result.add_figure("The book's experiment: the norm of dh multiplied by Whᵀ at every step, small and large Wh",
                      folder / "book_gradient.png")
    curves = _e13_rnn_layer_curves(result, seed)
    plots.plot_comparison_curves(curves, x=np.arange(E13_THROUGH_TIME_STEPS), path=folder / "rnn_gradient.png",
                                 log_scale=True, xlabel="time steps back from the last",
                                 ylabel="‖dC/dxₜ‖ / ‖dC/dx_T‖",
                                 title=f"numnet's RNN layer (H = {E13_THROUGH_TIME_HIDDEN}), gradient through time")
    result.add_figure("numnet's RNN layer: the gradient reaching each earlier step, relative to the last step's, "
                      "for Wh of spectral radius about 0.5 and 2, with zero and with random inputs",
                      folder / "rnn_gradient.png")


def _e13_rnn_layer_curves(result, seed):
    """numnet's RNN layer at each scale, on zero inputs (h stays 0, tanh' = 1: the book's product exactly)
    and on N(0, 1) inputs; rows of the growth per step; curves relative to the last step, last step first."""
    rng = np.random.default_rng(seed)
    n, T, H = E13_THROUGH_TIME_ROWS, E13_THROUGH_TIME_STEPS, E13_THROUGH_TIME_HIDDEN
    random_inputs = rng.standard_normal((n, T, E13_THROUGH_TIME_INPUTS))
    directions = rng.standard_normal((H, H)) / np.sqrt(H)  # spectral radius about 1
    curves = {}
    for scale in E13_THROUGH_TIME_SCALES:
        for inputs, x in (("zero inputs", np.zeros_like(random_inputs)), ("N(0, 1) inputs", random_inputs)):
            norms = rnn_gradient_norms(scale * directions, x, seed=seed)
            growth = growth_per_step(norms)
            explodes = scale > 1
            result.add_row(f"numnet's RNN, Wh of spectral radius about {scale:g}, {inputs}: growth per step back "
                           f"(over {T - 1} steps)", f"{growth:.3g} (x{norms[0] / norms[-1]:.3g})",
                           "above 1 (explodes)" if explodes else "below 1 (vanishes)",
                           verdict_of((growth > 1) == explodes))
            curves[f"radius {scale:g}, {inputs}"] = norms[::-1] / norms[-1]
    return curves


# ---------------------------------------------------------------------------------------------------------
# E13 part C: training with and without clipping

#: Plain SGD at a step this large makes the plain RNN's loss spike without clipping (measured on seeds 0-3:
#: its largest training loss 9-50 times the first) and still trains with clip_norm=1.0.
E13_CLIPPING_LEARNING_RATE = 3.0
E13_CLIPPING_BATCH_SIZE = 32
E13_CLIPPING_EPOCHS = 2
#: Training names of part C (the first of part A's); --quick uses all of part A's quick ones.
E13_CLIPPING_NAMES = 10_000
#: A training loss above this many times the first counts as a spike.
E13_SPIKE = 2.0


def clipping_run(training, validation, vocabulary_size, clip_norm, *, seed=0):
    """The plain RNN language model (hidden E13_HIDDEN) trained by SGD at E13_CLIPPING_LEARNING_RATE, with or
    without clipping; returns (History, the step the divergence guard stopped at or None)."""
    network = language_model(RNN, vocabulary_size, E13_HIDDEN, seed=seed)
    try:
        network.fit(*training, epochs=E13_CLIPPING_EPOCHS, batch_size=E13_CLIPPING_BATCH_SIZE, optimizer="sgd",
                    learning_rate=E13_CLIPPING_LEARNING_RATE, clip_norm=clip_norm, validation_data=validation,
                    seed=seed, record_gradients=False)
    except DivergenceError:
        # The guard keeps the last good weights; network.history holds exactly the steps it kept.
        return network.history, network.iterations_trained + 1
    return network.history, None


def _e13_clipping(result, folder, data, *, quick, seed):
    """Part C: SGD with and without clipping; rows and the loss figure."""
    (training, validation), vocabulary, _ = data
    if not quick:
        training = tuple(rows[:E13_CLIPPING_NAMES] for rows in training)
    runs = {label: clipping_run(training, validation, len(vocabulary), clip_norm, seed=seed)
            for label, clip_norm in (("without clipping", None), (f"clip_norm={E13_CLIP_NORM:g}", E13_CLIP_NORM))}
    (plain, plain_stop), (clipped, clipped_stop) = runs.values()
    judge = _not_judged if quick else verdict_of
    first = plain.iteration_loss[0]
    for (label, (history, stop)), expected in zip(runs.items(), ("spikes", "no spike")):
        largest = max(history.iteration_loss)
        stopped = f"; the divergence guard stopped it at step {stop}" if stop else ""
        result.add_row(f"SGD lr {E13_CLIPPING_LEARNING_RATE:g}, {label}: largest training loss / the first",
                       f"{largest:.3g} / {first:.3g}{stopped}", f"{expected} (the book, ch. 6: exploding gradients, "
                       "and clipping against them)", judge((largest > E13_SPIKE * first) == (expected == "spikes")))
    result.add_row(f"SGD lr {E13_CLIPPING_LEARNING_RATE:g}: validation perplexity without vs with clipping",
                   f"{_last(plain.val_perplexity)} vs {_last(clipped.val_perplexity)}", "lower with clipping",
                   judge(_final(clipped) < _final(plain)))
    result.add_row(f"clip_norm={E13_CLIP_NORM:g}: fraction of steps clipped per epoch",
                   _rounded(clipped.clipped_fraction), "-", INFORMATION)
    plots.plot_comparison_curves({label: history.iteration_loss for label, (history, _) in runs.items()},
                                 path=folder / "clipping.png", log_scale=True, ylabel="training loss",
                                 title=f"Plain RNN, SGD lr {E13_CLIPPING_LEARNING_RATE:g}, with and without clipping")
    result.add_figure("Training loss per step of the plain RNN, SGD with and without gradient clipping",
                      folder / "clipping.png")
    return len(training[0])


def _not_judged(condition):
    """A quick run's verdict: its schedule is not the one the expectation is for."""
    return NOT_COMPARABLE


def _last(values):
    return f"{values[-1]:.4g}" if values else "none recorded"


def _final(history):
    return history.val_perplexity[-1] if history.val_perplexity else float("inf")


def run_e13(output_dir, *, quick=False, seed=0):
    """E13: a character language model of the census names with an RNN, an LSTM and a GRU of one hidden size
    (perplexity per epoch, sampled names); the book's vanishing and exploding gradient through time; and the
    plain RNN trained by SGD with and without gradient clipping.

    ``quick`` trains on 2,000 names (hidden size 32) and part C on those; part B is the same in both.
    """
    result = ExperimentResult("E13", "Language models: RNN, LSTM and GRU on names")
    folder = experiment_folder(output_dir, "E13")
    n_training, n_validation = ((E13_QUICK_TRAINING_NAMES, E13_QUICK_VALIDATION_NAMES) if quick
                                else (E13_TRAINING_NAMES, E13_VALIDATION_NAMES))
    training_names, validation_names = e13_names(n_training, n_validation)
    vocabulary = Vocabulary.from_text("\n".join(training_names) + "\n")
    time_steps = max(len(name) for name in training_names + validation_names) + 1
    rows = (name_rows(training_names, vocabulary, time_steps), name_rows(validation_names, vocabulary, time_steps))
    data = (rows, vocabulary, set(datasets.load_names().splitlines()))
    hidden, epochs = _e13_language_models(result, folder, data, quick=quick, seed=seed)
    _e13_through_time(result, folder, seed)
    clipping_names = _e13_clipping(result, folder, data, quick=quick, seed=seed)
    result.notes += [
        f"Data: the census names (numnet.datasets.load_names, 91,910, mostly surnames) shuffled with seed "
        f"{E13_SPLIT_SEED}: {n_training:,} training and {n_validation:,} validation names, one per row as makemore "
        f"lays them out (inputs '\\n' + name, targets name + '\\n', padding not counted), {len(vocabulary)} ids.",
        f"Part A: Embedding {E13_EMBEDDING} -> RNN, LSTM or GRU of {hidden} units -> Dense softmax; Adam lr "
        f"{E13_LEARNING_RATE}, batches of {E13_QUICK_BATCH_SIZE if quick else E13_BATCH_SIZE}, clip_norm "
        f"{E13_CLIP_NORM:g}, {epochs} epochs, seed {seed}, the same for all three. Samples: temperature 1 from a "
        f"line break, seed {E13_SAMPLE_SEED}. The bigram counts character pairs of the training rows (add-one).",
        "makemore's figure comes from another corpus (32,033 first names); here most names are surnames, which "
        "are harder to guess: the bigram's perplexity is the yardstick measured on the same names.",
        f"Part B: the book's rnn_gradient_graph.py exactly; numnet's RNN layer with Wh = "
        f"s·randn(H, H)/√H with H = {E13_THROUGH_TIME_HIDDEN}, bias 0, {E13_THROUGH_TIME_STEPS} steps, the gradient "
        "sent into the last step only (numnet.evidence.gradient_through_time). With zero inputs h stays 0 and "
        "tanh' = 1, so each step multiplies by Whᵀ alone; random inputs saturate tanh, which damps growth.",
        f"Part C: the plain RNN ({E13_HIDDEN} units) on {clipping_names:,} training names, SGD lr "
        f"{E13_CLIPPING_LEARNING_RATE:g}, batches of {E13_CLIPPING_BATCH_SIZE}, {E13_CLIPPING_EPOCHS} epochs, "
        f"without clipping and with clip_norm {E13_CLIP_NORM:g} (the global norm, as the book's clip_grads); a "
        f"spike is a training loss above {E13_SPIKE:g} times the first.",
    ]
    return result
