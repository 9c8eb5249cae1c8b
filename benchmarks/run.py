"""Speed benchmark: numnet against scikit-learn's MLPClassifier, PyTorch and the book's code, on the CPU, in
one process: every model family numnet has, each against its PyTorch counterpart on the same work.

Run from the repository root::

    python benchmarks/run.py                      # every workload, medians over 3 repeats (~25 minutes)
    python benchmarks/run.py --quick              # 1 repeat, fewer epochs: a smoke run of a few minutes
    python benchmarks/run.py --workloads digits mnist --repeats 3
    python benchmarks/run.py --workloads char-lstm --threads 1
    python benchmarks/run.py --workloads seq2seq-dates --repeats 1
    python benchmarks/run.py --workloads simpleconvnet digits-cnn mnist-cnn gpt --quick

Five families of models. The MLP workloads (digits, mnist, wide, inference) race numnet against
scikit-learn's MLPClassifier and PyTorch. The CNN workloads (simpleconvnet, digits-cnn, mnist-cnn) are
benchmarks/cnn.py's: its networks, data and recipes, raced against the same network in PyTorch and the
book's im2col code ("Deep Learning from Scratch"), which cnn.py defines. The char-lstm workload, a
character LSTM language model (Embedding 64, LSTM 256, Dense softmax over the characters; 64 time steps,
batch 32, Adam, the gradient's global norm clipped to 1) on windows of the census names
(numnet.datasets.load_names), races numnet against the same model in PyTorch (nn.LSTM) and against the
book's loop over the time steps (benchmarks/book_rnnlm.py, "Deep Learning from Scratch 2"). The seq2seq-dates
workload, the book's chapter 8 attention seq2seq (numnet.Seq2Seq with attention and the input reversed:
embedding 16, LSTM 256, batch 128, Adam, clipping at 5, teacher forcing) on the first 12,800 rows of
numnet.datasets.load_dates, races numnet against the same model written plainly in PyTorch (two nn.LSTM,
torch.bmm attention), scored by the exact match of greedy decoding on 1,000 test dates. The gpt workload is
the tiny GPT at nanoGPT's CPU recipe (numnet.experiments.NANOGPT_CPU: AdamW, the warmup-cosine schedule of the
2,000-step run, clipping at 1) on the census names as ``numnet train --data text`` reads them, raced against
nanoGPT's model and loop in PyTorch (benchmarks/gpt_reference.py); its "epochs" are 100 steps of 12 windows
drawn with replacement, and its test set is the validation split. The sequence workloads feed every contender
the same batches in the same order. A contender that has no such model (scikit-learn and the flat NumPy loop
for all but the MLPs; the book's code for the MLPs, the seq2seq and the GPT) sits that workload out.

Every contender trains the same architecture with Adam (learning rate 1e-3; the GPT with its recipe's AdamW),
the same batch size and number of epochs (at least 5 for the MLPs, so that effects which build up over
training, such as subnormal optimiser state, show; 2 for the CNNs on 28 x 28 images and the LSTMs, whose
epochs are long; 3 of 100 steps for the GPT; the tables print the first and the last epoch's time), no early
stopping and no weight penalty, from fixed seeds, in float32. numnet runs twice: with the optional compiled
kernels (numnet.kernels, when numba is installed) and with the NumPy rules alone. Next to the contenders the
script times the *GEMM floor*: the workload's matrix products alone (for an MLP, per batch, one product per
layer forward and two per layer backward but the first; for the CNNs, cnn.GemmFloor; for the sequence models,
LstmGemmFloor, Seq2SeqGemmFloor and GptGemmFloor), called with np.matmul in the same BLAS with the same shapes
and dtype. No NumPy implementation can beat that floor, so numnet's time over it is the overhead left to
remove. See benchmarks/README.md for the results and benchmarks/NOTES.md for the engine optimisations.
"""

import argparse
import contextlib
import gc
import io
import json
import math
import os
import platform
import statistics
import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import threadpoolctl

import numnet
import numnet.kernels

#: Adam's learning rate for every contender.
LEARNING_RATE = 1e-3
#: Calls of predict_proba averaged inside one repeat of the inference workload (one call is ~0.05 s,
#: too short to time alone on a shared machine).
INFERENCE_CALLS_PER_REPEAT = 5
CONTENDERS = ("numnet", "numnet-numpy", "sklearn", "torch", "textbook")
#: Not run unless asked for (--contenders ... numpy): the bound for any NumPy engine, see NumpyBound.
REFERENCES = ("numpy",)


# ---- workloads and their data ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """One benchmark: an architecture, a data set and a training recipe (or inference only)."""

    name: str
    description: str
    data: str  # "digits", "images", "names", "dates", "text" or (a CNN's) the workload's name
    #: an MLP's widths, input first; a char LSTM's or a seq2seq's (embedding, hidden); a CNN's layer specs
    #: (benchmarks/cnn.py); a GPT's (blocks, heads, width)
    layer_sizes: tuple
    batch_size: int
    epochs: int
    inference: bool = False  # time predict_proba on the test set instead of training
    family: str = "mlp"  # "mlp", "cnn", "char-lstm", "seq2seq" or "gpt": which contenders have the model
    time_steps: int = 0  # a char LSTM's window length
    clip_norm: float = None  # clip the gradient's global norm to this before each update
    #: steps of batches drawn with replacement that make an "epoch" (the GPT's); 0: one pass over the data
    steps_per_epoch: int = 0


WORKLOADS = {
    "digits": Workload("digits", "8x8 digits, 64-128-10 relu, batch 32, 30 epochs", "digits",
                       (64, 128, 10), 32, 30),
    "mnist": Workload("mnist", "60,000 x 784 synthetic, 784-256-128-10 relu, batch 128, 5 epochs", "images",
                      (784, 256, 128, 10), 128, 5),
    "wide": Workload("wide", "60,000 x 784 synthetic, 784-1024-1024-10 relu, batch 256, 5 epochs", "images",
                     (784, 1024, 1024, 10), 256, 5),
    "inference": Workload("inference", "predict_proba on 10,000 x 784 with the mnist model", "images",
                          (784, 256, 128, 10), 128, 5, inference=True),
    "char-lstm": Workload("char-lstm", "character LSTM language model on 3,200 windows of 64 census-name "
                          "characters, embedding 64, LSTM 256, batch 32, clip 1, 2 epochs", "names",
                          (64, 256), 32, 2, family="char-lstm", time_steps=64, clip_norm=1.0),
    "seq2seq-dates": Workload("seq2seq-dates", "attention seq2seq on the first 12,800 dates (29 characters in, "
                              "11 out), embedding 16, LSTM 256, input reversed, batch 128, clip 5, 2 epochs",
                              "dates", (16, 256), 128, 2, family="seq2seq", clip_norm=5.0),
}


def cnn_spec(name):
    """benchmarks/cnn.py's workload ``name`` (imported here, not above: cnn.py imports this module)."""
    import cnn

    return cnn.WORKLOADS[name]


def cnn_workload(name):
    """benchmarks/cnn.py's workload ``name`` (its network, data, batch size and epochs) as a Workload here."""
    spec = cnn_spec(name)
    return Workload(name, spec.description, name, spec.layers, spec.batch_size, spec.epochs, family="cnn")


def gpt_workload(name):
    """The tiny GPT at nanoGPT's CPU recipe (numnet.experiments.NANOGPT_CPU), GPT_EPOCHS epochs of
    GPT_STEPS_PER_EPOCH steps."""
    from numnet.experiments import NANOGPT_CPU as recipe

    description = (f"the tiny GPT at nanoGPT's CPU recipe on the census names ({recipe.n_layer} blocks of "
                   f"{recipe.n_head} heads, width {recipe.n_embd}, block {recipe.block_size}, batch "
                   f"{recipe.batch_size}, AdamW, clip {recipe.clip_norm:g}), {GPT_EPOCHS} epochs of "
                   f"{GPT_STEPS_PER_EPOCH} steps")
    return Workload(name, description, "text", (recipe.n_layer, recipe.n_head, recipe.n_embd), recipe.batch_size,
                    GPT_EPOCHS, family="gpt", clip_norm=recipe.clip_norm, steps_per_epoch=GPT_STEPS_PER_EPOCH)


#: The GPT's "epoch": steps of batches drawn with replacement (as nanoGPT draws them), the first and last of
#: which the tables print; a few epochs are the first few hundred steps of the 2,000-step reference run.
GPT_STEPS_PER_EPOCH, GPT_EPOCHS = 100, 3
#: Workloads that another script defines (benchmarks/cnn.py, numnet.experiments), made when asked for.
DEFINED_ELSEWHERE = {"simpleconvnet": cnn_workload, "digits-cnn": cnn_workload, "mnist-cnn": cnn_workload,
                     "gpt": gpt_workload}
#: --quick keeps the data and the shapes (so seconds per epoch stay comparable) but trains fewer epochs.
QUICK_EPOCHS = {"digits": 5, "mnist": 1, "wide": 1, "inference": 1, "simpleconvnet": 1, "digits-cnn": 3,
                "mnist-cnn": 1, "char-lstm": 1, "seq2seq-dates": 1, "gpt": 1}
#: The steps of the warm-up run of a workload of sampled steps (enough to compile every kernel once).
WARM_UP_STEPS = 2
#: The char-lstm workload's windows: 100 batches of 32 per epoch (about 8 s of numnet on one quiet core),
#: and a held-out set for the test loss.
NAMES_TRAIN_WINDOWS, NAMES_TEST_WINDOWS = 3200, 256
#: The seq2seq-dates workload's rows: the first 12,800 of load_dates' 45,000 training dates (100 batches of
#: 128 per epoch, a tenth of an epoch of the book's chapter 8 run), and the first 1,000 of its 5,000 test dates.
DATES_TRAIN_ROWS, DATES_TEST_ROWS = 12_800, 1_000


@dataclass
class Dataset:
    """Train and test arrays: float32 inputs in [0, 1] and int64 class labels; or (for a language model) int64
    token ids (n, time_steps) and the ids that follow them; or (for a seq2seq model) int64 source ids
    (n, T_in) and target ids (n, T_out)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int = 0  # a language model's vocabulary size (0: the MLPs', read from their layer sizes)
    #: y holds target sequences led by the start token (seq2seq): the decoder reads y[:, :-1] and learns
    #: y[:, 1:] (teacher forcing), and the test accuracy is greedy decoding's exact match.
    teacher_forced: bool = False


def workload_named(name):
    """The Workload called ``name``, from WORKLOADS or DEFINED_ELSEWHERE."""
    return WORKLOADS[name] if name in WORKLOADS else DEFINED_ELSEWHERE[name](name)


def load_digits_data(seed):
    """scikit-learn's 8x8 digits scaled to [0, 1], split 80/20 stratified by class."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, digits.target.astype(np.int64), test_size=0.2,
                                                        stratify=digits.target, random_state=seed)
    return Dataset(X_train, y_train, X_test, y_test)


def make_image_data(seed, n_train=60_000, n_test=10_000, n_features=784, n_classes=10, contrast=0.1):
    """MNIST-sized synthetic images: x = contrast · prototype[class] + (1 - contrast) · uniform noise.

    Every pixel stays in [0, 1]. The low contrast keeps the classes learnable but not trivially separable
    (a good model reaches about 90-97% test accuracy), so accuracy means something.
    """
    rng = np.random.default_rng(seed)
    prototypes = rng.random((n_classes, n_features), dtype=np.float32)
    labels = rng.integers(0, n_classes, size=n_train + n_test)
    X = rng.random((n_train + n_test, n_features), dtype=np.float32)
    X *= np.float32(1.0 - contrast)
    X += np.float32(contrast) * prototypes[labels]
    return Dataset(X[:n_train], labels[:n_train], X[n_train:], labels[n_train:])


def load_names_windows(seed, time_steps, n_train=NAMES_TRAIN_WINDOWS, n_test=NAMES_TEST_WINDOWS):
    """Windows of ``time_steps`` characters of the census names (numnet.datasets.load_names: 91,910 lowercase
    names, one a line: 718,110 characters, 28 ids; needs numnet's ``text`` extra) and the characters that follow.

    The text is cut into windows that tile it (numnet.text.windows), ``n_train + n_test`` of which are drawn
    without replacement from ``seed``: the first ``n_train`` for training, the rest for the test loss.
    """
    from numnet.datasets import load_names
    from numnet.text import Vocabulary, windows

    text = load_names()
    vocabulary = Vocabulary.from_text(text)
    X, y = windows(vocabulary.encode(text), time_steps)
    chosen = np.random.default_rng(seed).permutation(len(X))[:n_train + n_test]
    train, test = chosen[:n_train], chosen[n_train:]
    return Dataset(X[train], y[train], X[test], y[test], n_classes=len(vocabulary))


def load_dates_rows(n_train=DATES_TRAIN_ROWS, n_test=DATES_TEST_ROWS):
    """The first ``n_train`` training and ``n_test`` test rows of the book's date set
    (numnet.datasets.load_dates: question ids (n, 29), answer ids (n, 11) led by the start token ``_``)."""
    from numnet.datasets import load_dates

    (X_train, Y_train), (X_test, Y_test), vocabulary = load_dates()
    return Dataset(X_train[:n_train], Y_train[:n_train], X_test[:n_test], Y_test[:n_test],
                   n_classes=len(vocabulary), teacher_forced=True)


def load_text_windows():
    """The census names as ``numnet train --data text`` reads them (numnet.cli.corpus), cut as nanoGPT draws
    them (numnet.experiments.gpt_windows): a training window at every offset, the validation split's windows
    side by side as the test set."""
    from numnet.cli.corpus import load_corpus
    from numnet.experiments import NANOGPT_CPU, gpt_windows

    corpus = load_corpus("text")
    (X_train, y_train), (X_test, y_test) = gpt_windows(corpus.train_ids, corpus.validation_ids,
                                                       NANOGPT_CPU.block_size)
    return Dataset(X_train, y_train, X_test, y_test, n_classes=len(corpus.vocabulary))


def gpt_recipe(workload, epochs):
    """NANOGPT_CPU for ``epochs`` epochs of the workload's steps: evaluation intervals (numnet fit's epochs,
    whose seeds draw the batches) of ``steps_per_epoch``, so that gpt_reference.batch_starts draws numnet's
    batches; the schedule stays the 2,000-step run's."""
    from numnet.experiments import NANOGPT_CPU

    return replace(NANOGPT_CPU, eval_interval=workload.steps_per_epoch, max_iters=epochs * workload.steps_per_epoch)


def fit_batch_order(seed, epoch, n_samples):
    """The sample order of epoch ``epoch`` (from 0) that numnet's fit(shuffle=True, seed=seed) draws, so that
    the other contenders can train on the same batches in the same order."""
    return np.random.default_rng([seed, epoch]).permutation(n_samples)


# ---- the contenders ------------------------------------------------------------------------------------

class NumnetContender:
    """numnet.Network with a softmax output (or numnet.Seq2Seq), trained by its fit in float32; the GPT by
    numnet.experiments.train_gpt.

    ``kernels`` is numnet.kernels' choice: "auto" (the compiled kernels when numba is installed, contender
    "numnet") or "numpy" (the NumPy rules alone, what an install without the extra runs: "numnet-numpy").
    """

    families = ("mlp", "cnn", "char-lstm", "seq2seq", "gpt")

    def __init__(self, kernels="auto"):
        self.kernels = kernels
        self.name = "numnet" if kernels == "auto" else "numnet-numpy"

    def build(self, workload, data, seed):
        """The workload's network: an MLP; benchmarks/cnn.py's CNN; Embedding, LSTM and a softmax Dense layer
        over the characters; or the book's attention seq2seq with the input reversed."""
        if workload.family == "cnn":
            import cnn

            return cnn.NumnetContender().build(cnn_spec(workload.name), seed)
        if workload.family == "seq2seq":
            embedding, hidden = workload.layer_sizes
            return numnet.Seq2Seq(data.n_classes, embedding, hidden, attention=True, reverse_input=True,
                                  dtype="float32", seed=seed)
        if workload.family == "char-lstm":
            embedding, hidden = workload.layer_sizes
            layers = [numnet.Embedding(data.n_classes, embedding), numnet.LSTM(embedding, hidden),
                      numnet.Dense(hidden, data.n_classes, "softmax")]
            return numnet.Network(layers=layers, dtype="float32", seed=seed)
        return numnet.Network(list(workload.layer_sizes), activation="relu", output_activation="softmax",
                              dtype="float32", seed=seed)

    def train(self, workload, data, epochs, seed):
        """(the trained network, seconds of each epoch as fit's progress callback measured them)."""
        epoch_seconds = []
        if workload.family == "gpt":
            from numnet.experiments import train_gpt

            recipe, training = gpt_recipe(workload, epochs), (data.X_train, data.y_train)
            with numnet.kernels.use_kernels(self.kernels):
                model, _ = train_gpt(recipe, training, None, data.n_classes, seed=seed,
                                     progress=lambda report: epoch_seconds.append(report.seconds))
            return model, epoch_seconds
        net = self.build(workload, data, seed)
        # record_gradients=False: the per-step mean |dC/dW| diagnostic is off, as sklearn and torch have none.
        with numnet.kernels.use_kernels(self.kernels):
            net.fit(data.X_train, data.y_train, epochs=epochs, batch_size=workload.batch_size, optimizer="adam",
                    learning_rate=LEARNING_RATE, seed=seed, record_gradients=False, clip_norm=workload.clip_norm,
                    progress=lambda report: epoch_seconds.append(report.seconds))
        return net, epoch_seconds

    def predict_proba(self, model, X):
        return model.predict_proba(X)

    def exact_match(self, model, X, Y):
        return model.exact_match(X, Y)

    def dtype(self, model):
        return str(model.flat_parameters.dtype)


class SklearnContender:
    """sklearn.neural_network.MLPClassifier, fed float32 so that it trains in float32."""

    name = "sklearn"
    families = ("mlp",)

    def train(self, workload, data, epochs, seed):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        # tol=0 and n_iter_no_change > max_iter: no early stop, so it runs exactly ``epochs`` epochs;
        # alpha=0: no L2 penalty (numnet's default l2 is 0).
        model = MLPClassifier(hidden_layer_sizes=workload.layer_sizes[1:-1], activation="relu", solver="adam",
                              alpha=0.0, batch_size=workload.batch_size, learning_rate_init=LEARNING_RATE,
                              max_iter=epochs, shuffle=True, random_state=seed, tol=0.0,
                              n_iter_no_change=epochs + 1, early_stopping=False)
        # verbose=True prints one line at the end of every epoch: its timestamps give the epochs' times
        # without touching the estimator's code path.
        clock = _EpochClock()
        model.set_params(verbose=True)
        with warnings.catch_warnings(), contextlib.redirect_stdout(clock):
            warnings.simplefilter("ignore", ConvergenceWarning)  # "max_iter reached": intended here
            model.fit(data.X_train, data.y_train)
        if model.n_iter_ != epochs:
            raise RuntimeError(f"MLPClassifier ran {model.n_iter_} epochs instead of {epochs}; check its settings")
        return model, clock.epoch_seconds()

    def predict_proba(self, model, X):
        return model.predict_proba(X)

    def dtype(self, model):
        return str(model.coefs_[0].dtype)


class _EpochClock(io.StringIO):
    """A stdout that notes the time of every "Iteration N" line scikit-learn's verbose fit prints."""

    def __init__(self):
        super().__init__()
        self.times = [time.perf_counter()]

    def write(self, text):
        if text.startswith("Iteration"):
            self.times.append(time.perf_counter())
        return super().write(text)

    def epoch_seconds(self):
        return [end - start for start, end in zip(self.times[:-1], self.times[1:])]


def train_torch(model, data, epochs, batch_size, seed, learning_rate, adam_options=None, *, clip_norm=None,
                same_batches_as_fit=False):
    """Train a torch model as its users do: ``torch.optim.Adam``, cross-entropy on the logits (the mean over
    the samples, or over every token of a sequence), a plain loop over ``torch.randperm`` index batches (no
    DataLoader); returns the seconds of every epoch.

    ``clip_norm``: ``torch.nn.utils.clip_grad_norm_`` before each step. ``same_batches_as_fit``: numnet
    fit's batches in fit's order (:func:`fit_batch_order`) instead of ``torch.randperm``'s. With
    ``data.teacher_forced`` the model is called as ``model(source, decoder_input)``.
    """
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, **(adam_options or {}))
    loss_function = torch.nn.CrossEntropyLoss()
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    generator = torch.Generator().manual_seed(seed)
    epoch_seconds = []
    for epoch in range(epochs):
        started = time.perf_counter()
        order = (torch.from_numpy(fit_batch_order(seed, epoch, X.shape[0])) if same_batches_as_fit
                 else torch.randperm(X.shape[0], generator=generator))
        for batch in order.split(batch_size):
            optimizer.zero_grad(set_to_none=True)
            inputs, targets = inputs_and_targets(X[batch], y[batch], data.teacher_forced)
            loss_function(model(*inputs), targets).backward()
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - started)
    return epoch_seconds


def inputs_and_targets(X, y, teacher_forced):
    """(the model's inputs as a tuple, the targets) of rows of X and y (NumPy arrays or torch tensors); with
    teacher forcing the decoder reads the targets without their last token and learns them without their
    first (the start token), as numnet.Seq2Seq.fit does."""
    if teacher_forced:
        return (X, y[:, :-1]), y[:, 1:]
    return (X,), y


class TorchContender:
    """A torch.nn.Sequential MLP or CNN (benchmarks/cnn.py's), or the char LSTM (:func:`torch_char_lstm`)
    or the attention seq2seq (:func:`torch_seq2seq`) on numnet fit's batches, trained by a plain loop over
    shuffled index batches (no DataLoader); or nanoGPT's model and loop (benchmarks/gpt_reference.py) on
    numnet fit's batches.

    ``fused_adam=False`` is what ``torch.optim.Adam(params, lr)`` gives on the CPU (a loop over the
    parameter tensors); ``fused_adam=True`` asks for the fused kernel, PyTorch's fastest CPU Adam. The GPT
    keeps nanoGPT's AdamW as gpt_reference.py configures it.
    """

    name = "torch"
    families = ("mlp", "cnn", "char-lstm", "seq2seq", "gpt")

    def __init__(self, fused_adam=False):
        import torch

        self.torch = torch
        self.adam_options = {"fused": True} if fused_adam else {}

    def build(self, layer_sizes, seed):
        torch = self.torch
        torch.manual_seed(seed)
        modules = []
        for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
            modules += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
        return torch.nn.Sequential(*modules[:-1])  # logits out; the loss applies log-softmax

    def train(self, workload, data, epochs, seed):
        if workload.family == "gpt":
            return self.train_gpt(workload, data, epochs, seed)
        if workload.family == "cnn":
            import cnn

            model = cnn.TorchContender().build(cnn_spec(workload.name), seed)
            return model, train_torch(model, data, epochs, workload.batch_size, seed, LEARNING_RATE, self.adam_options)
        if workload.family in ("char-lstm", "seq2seq"):
            self.torch.manual_seed(seed)
            build = torch_char_lstm if workload.family == "char-lstm" else torch_seq2seq
            model = build(data.n_classes, *workload.layer_sizes)
            return model, train_torch(model, data, epochs, workload.batch_size, seed, LEARNING_RATE,
                                      self.adam_options, clip_norm=workload.clip_norm, same_batches_as_fit=True)
        model = self.build(workload.layer_sizes, seed)
        return model, train_torch(model, data, epochs, workload.batch_size, seed, LEARNING_RATE, self.adam_options)

    def train_gpt(self, workload, data, epochs, seed):
        """nanoGPT's GPT from its own initialisation, trained by gpt_reference.train_torch on numnet fit's
        batches; (the model, with its logits as predict_proba reads them; seconds of each epoch, the sums of
        its steps')."""
        import gpt_reference

        recipe, step_seconds = gpt_recipe(workload, epochs), []
        self.torch.manual_seed(seed)
        twin = gpt_reference.torch_gpt(recipe, data.n_classes)
        gpt_reference.train_torch(recipe, twin, (data.X_train, data.y_train), recipe.max_iters, seed, step_seconds)
        steps = workload.steps_per_epoch
        epoch_seconds = [sum(step_seconds[start:start + steps]) for start in range(0, len(step_seconds), steps)]
        return vocabulary_second(twin), epoch_seconds

    def predict_proba(self, model, X):
        torch = self.torch
        with torch.inference_mode():
            inputs = X if isinstance(X, tuple) else (X,)  # a seq2seq's (source, decoder input)
            logits = model(*(torch.from_numpy(part) for part in inputs))
            # The sequence models' logits are (n, V, time_steps), the layout cross-entropy takes
            return torch.softmax(logits, dim=1).movedim(1, -1).numpy()

    def exact_match(self, model, X, Y):
        """The fraction of rows whose greedily decoded answer equals Y after its start token (the torch twin
        of numnet.Seq2Seq.exact_match): each step reads the most probable token of the step before."""
        torch = self.torch
        with torch.inference_mode():
            Y = torch.from_numpy(Y)
            encoder_states, h = model.encode(torch.from_numpy(X))
            state, ids, written = (h, torch.zeros_like(h)), Y[:, :1], []
            for _ in range(Y.shape[1] - 1):
                logits, state = model.decode(ids, encoder_states, state)
                ids = logits.argmax(dim=-1)  # (n, 1)
                written.append(ids)
            return float((torch.cat(written, dim=1) == Y[:, 1:]).all(dim=1).double().mean())

    def dtype(self, model):
        return str(next(model.parameters()).dtype).replace("torch.", "")


def torch_char_lstm(vocabulary_size, embedding, hidden):
    """The char LSTM in PyTorch: nn.Embedding, nn.LSTM(batch_first=True), nn.Linear; its forward returns the
    logits as (n, V, time_steps), the layout nn.CrossEntropyLoss takes with (n, time_steps) targets."""
    import torch

    class CharLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(vocabulary_size, embedding)
            self.lstm = torch.nn.LSTM(embedding, hidden, batch_first=True)
            self.output = torch.nn.Linear(hidden, vocabulary_size)

        def forward(self, ids):
            hidden_states, _ = self.lstm(self.embedding(ids))
            return self.output(hidden_states).transpose(1, 2)

    return CharLSTM()


def vocabulary_second(model):
    """``model`` with its logits (n, T, V) turned to (n, V, T), the char LSTM's layout, which
    TorchContender.predict_proba reads."""
    import torch

    class VocabularySecond(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, ids):
            return self.model(ids).transpose(1, 2)

    return VocabularySecond()


def torch_seq2seq(vocabulary_size, embedding, hidden):
    """The attention seq2seq in PyTorch, written plainly as the book's: nn.Embedding and nn.LSTM for the
    reversed source, nn.Embedding and nn.LSTM for the decoder started from (the encoder's last h, zeros),
    dot-product attention (torch.bmm, softmax over the encoder's steps), nn.Linear over concat(context, h_dec).
    Its forward returns the logits as (n, V, T_out), the layout nn.CrossEntropyLoss takes."""
    import torch

    class AttentionSeq2Seq(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder_embedding = torch.nn.Embedding(vocabulary_size, embedding)
            self.encoder = torch.nn.LSTM(embedding, hidden, batch_first=True)
            self.decoder_embedding = torch.nn.Embedding(vocabulary_size, embedding)
            self.decoder = torch.nn.LSTM(embedding, hidden, batch_first=True)
            self.output = torch.nn.Linear(2 * hidden, vocabulary_size)

        def encode(self, source):
            """(the encoder's states (n, T_in, H), its last h (1, n, H)) for source ids read backwards."""
            encoder_states, (h, _) = self.encoder(self.encoder_embedding(source.flip(1)))
            return encoder_states, h

        def decode(self, ids, encoder_states, state):
            """(logits (n, T, V), the decoder's last state) for decoder input ids (n, T) from ``state``."""
            decoder_states, state = self.decoder(self.decoder_embedding(ids), state)
            scores = torch.bmm(decoder_states, encoder_states.transpose(1, 2))  # (n, T_out, T_in)
            context = torch.bmm(torch.softmax(scores, dim=-1), encoder_states)  # (n, T_out, H)
            return self.output(torch.cat((context, decoder_states), dim=-1)), state

        def forward(self, source, decoder_input):
            encoder_states, h = self.encode(source)
            logits, _ = self.decode(decoder_input, encoder_states, (h, torch.zeros_like(h)))
            return logits.transpose(1, 2)

    return AttentionSeq2Seq()


class TextbookContender:
    """The book's RNNLM ("Deep Learning from Scratch 2"; benchmarks/book_rnnlm.py): a Python loop over the
    time steps, one LSTM cell object per step with its own x·Wx product, trained by the book's Adam after its
    clip_grads, on numnet fit's batches in fit's order; for a CNN, the book's im2col layers and Adam
    ("Deep Learning from Scratch"), as benchmarks/cnn.py writes and trains them."""

    name = "textbook"
    families = ("cnn", "char-lstm")

    def train(self, workload, data, epochs, seed):
        if workload.family == "cnn":
            import cnn

            return cnn.TextbookContender().train(cnn_spec(workload.name), data, epochs, seed)
        import book_rnnlm

        model = book_rnnlm.Rnnlm(data.n_classes, *workload.layer_sizes, seed=seed)
        optimizer = book_rnnlm.Adam(lr=LEARNING_RATE)
        epoch_seconds = []
        for epoch in range(epochs):
            started = time.perf_counter()
            order = fit_batch_order(seed, epoch, len(data.X_train))
            for start in range(0, len(order), workload.batch_size):
                batch = order[start:start + workload.batch_size]
                model.train_step(data.X_train[batch], data.y_train[batch], optimizer, workload.clip_norm)
            epoch_seconds.append(time.perf_counter() - started)
        return model, epoch_seconds

    def predict_proba(self, model, X):
        if isinstance(model, list):  # a CNN's book layers
            import cnn

            return cnn.TextbookContender().predict_proba(model, X)
        return model.predict_proba(X)

    def dtype(self, model):
        return str((model[0].W if isinstance(model, list) else model.params[0]).dtype)


class NumpyBound:
    """The same training written as one flat NumPy loop: no layers, no validation, no History.

    Same math as numnet (He-normal weights, relu, softmax cross-entropy from logits with its per-batch loss
    value, Adam over one flat buffer with one scratch array), so the time numnet takes over this one is
    what its structure costs; this one's time over the GEMM floor is what NumPy itself costs.
    """

    name = "numpy"
    families = ("mlp",)

    def make_model(self, layer_sizes, seed):
        """The flat model this loop trains (benchmarks/digits_bound.py gives one with its softmax and loss
        fused)."""
        return _FlatMLP(layer_sizes, seed)

    def train(self, workload, data, epochs, seed):
        model = self.make_model(workload.layer_sizes, seed)
        targets = np.eye(workload.layer_sizes[-1], dtype=np.float32)[data.y_train]
        epoch_seconds = []
        for epoch in range(epochs):
            started = time.perf_counter()
            order = np.random.default_rng([seed, epoch]).permutation(len(data.X_train))
            for start in range(0, len(order), workload.batch_size):
                batch = order[start:start + workload.batch_size]
                model.step(data.X_train[batch], targets[batch])
            epoch_seconds.append(time.perf_counter() - started)
        return model, epoch_seconds

    def predict_proba(self, model, X):
        return model.forward(X)[0][-1]

    def dtype(self, model):
        return str(model.parameters.dtype)


class _FlatMLP:
    """W and b of every layer as views into one flat float32 buffer, trained by :meth:`step`."""

    def __init__(self, layer_sizes, seed, beta1=0.9, beta2=0.999, epsilon=1e-8):
        rng = np.random.default_rng(seed)
        shapes = [(n_in, n_out) for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:])]
        self.parameters = np.zeros(sum(n_in * n_out + n_out for n_in, n_out in shapes), np.float32)
        self.gradients, self.scratch = np.zeros_like(self.parameters), np.empty_like(self.parameters)
        self.m, self.v, self.t = np.zeros_like(self.parameters), np.zeros_like(self.parameters), 0
        self.W, self.b, self.dW, self.db, offset = [], [], [], [], 0
        for n_in, n_out in shapes:
            for views, flat in ((self.W, self.parameters), (self.dW, self.gradients)):
                views.append(flat[offset:offset + n_in * n_out].reshape(n_in, n_out))
            self.W[-1][...] = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
            offset += n_in * n_out
            self.b.append(self.parameters[offset:offset + n_out])
            self.db.append(self.gradients[offset:offset + n_out])
            offset += n_out
        self.betas, self.epsilon = (beta1, beta2), epsilon

    def forward(self, X, Y=None):
        """(activations of every layer, the input first and the softmax probabilities last; loss or None)."""
        activations = [X]
        for index, (W, b) in enumerate(zip(self.W, self.b)):
            z = activations[-1] @ W
            z += b
            if index < len(self.W) - 1:
                np.maximum(z, 0.0, out=z)
            activations.append(z)
        return activations, self.softmax_in_place(activations[-1], Y)

    def softmax_in_place(self, logits, Y=None):
        """Overwrite ``logits`` with their softmax; return the batch's loss against ``Y`` (None without)."""
        loss = None if Y is None else _softmax_cross_entropy(logits, Y)
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return loss

    def step(self, X, Y):
        """One forward pass, backward pass and Adam step on the batch (X, Y)."""
        activations, self.loss = self.forward(X, Y)
        delta = (activations[-1] - Y) / len(X)
        for index in range(len(self.W) - 1, -1, -1):
            np.matmul(activations[index].T, delta, out=self.dW[index])
            np.sum(delta, axis=0, out=self.db[index])
            if index:
                delta = (delta @ self.W[index].T) * (activations[index] > 0)
        self.adam(learning_rate=LEARNING_RATE)

    def adam(self, learning_rate):
        """Adam in place, in the rearranged form numnet uses: 12 passes over the flat buffer."""
        (beta1, beta2), m, v, s = self.betas, self.m, self.v, self.scratch
        self.t += 1
        np.subtract(self.gradients, m, out=s)
        s *= 1.0 - beta1
        m += s
        np.multiply(self.gradients, self.gradients, out=s)
        s -= v
        s *= 1.0 - beta2
        v += s
        root_correction2, correction1 = math.sqrt(1.0 - beta2 ** self.t), 1.0 - beta1 ** self.t
        np.sqrt(v, out=s)
        s += self.epsilon * root_correction2
        np.divide(m, s, out=s)
        s *= learning_rate * root_correction2 / correction1
        self.parameters -= s


def _softmax_cross_entropy(logits, Y):
    """Mean softmax cross-entropy from logits (log-sum-exp form), as a Python float."""
    row_max = logits.max(axis=1, keepdims=True)
    log_sum_exp = np.log(np.exp(logits - row_max).sum(axis=1)) + row_max[:, 0]
    return float((log_sum_exp - (logits * Y).sum(axis=1)).mean())


def make_contender(name, torch_fused_adam=False):
    """The contender called ``name`` (one of CONTENDERS or REFERENCES)."""
    if name == "torch":
        return TorchContender(fused_adam=torch_fused_adam)
    if name.startswith("numnet"):
        return NumnetContender("numpy" if name == "numnet-numpy" else "auto")
    return {"sklearn": SklearnContender, "numpy": NumpyBound, "textbook": TextbookContender}[name]()


# ---- the GEMM floor ------------------------------------------------------------------------------------

class GemmFloor:
    """The matrix products of one epoch (or one inference call), alone, with preallocated operands.

    Training, per batch of b rows and per layer l with W_l of shape (n_in, n_out):
    forward z = a_prev @ W (b, n_out); backward dW = a_prevᵀ @ delta (n_in, n_out) and, for every layer
    but the first, delta @ Wᵀ (b, n_in). That is the minimum any backpropagation must compute.
    """

    def __init__(self, layer_sizes, batch_sizes, dtype=np.float32, seed=0):
        rng = np.random.default_rng(seed)
        self.batch_sizes = list(batch_sizes)
        self.layers = []
        for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
            operands = {"W": rng.random((n_in, n_out), dtype=dtype), "dW": np.empty((n_in, n_out), dtype)}
            for b in set(self.batch_sizes):
                operands[b] = {"a": rng.random((b, n_in), dtype=dtype), "z": np.empty((b, n_out), dtype),
                               "delta": rng.random((b, n_out), dtype=dtype),
                               "grad_in": np.empty((b, n_in), dtype)}
            self.layers.append(operands)

    def forward(self):
        """The forward products of every batch; returns seconds."""
        started = time.perf_counter()
        for b in self.batch_sizes:
            for layer in self.layers:
                np.matmul(layer[b]["a"], layer["W"], out=layer[b]["z"])
        return time.perf_counter() - started

    def training_epoch(self):
        """Forward and backward products of every batch; returns seconds."""
        started = time.perf_counter()
        for b in self.batch_sizes:
            for layer in self.layers:
                np.matmul(layer[b]["a"], layer["W"], out=layer[b]["z"])
            for index in range(len(self.layers) - 1, -1, -1):
                layer = self.layers[index]
                np.matmul(layer[b]["a"].T, layer[b]["delta"], out=layer["dW"])
                if index > 0:
                    np.matmul(layer[b]["delta"], layer["W"].T, out=layer[b]["grad_in"])
        return time.perf_counter() - started


class ProductsFloor:
    """The matrix products of one epoch of a sequence model, alone, with preallocated operands.

    ``products(b)`` lists, for a batch of b rows, each product as (left shape, right shape, times per batch);
    3-D shapes are batched products (np.matmul over the first axis).
    """

    def __init__(self, products, batch_sizes, dtype=np.float32, seed=0):
        rng = np.random.default_rng(seed)
        self.batch_sizes = list(batch_sizes)
        self.products = {}  # batch size -> [(a, b, out, times per batch)]
        for b in set(self.batch_sizes):
            self.products[b] = [(rng.random(left, dtype=dtype), rng.random(right, dtype=dtype),
                                 np.empty((*left[:-1], right[-1]), dtype), times) for left, right, times in products(b)]

    def training_epoch(self):
        """Every product of every batch; returns seconds."""
        started = time.perf_counter()
        for b in self.batch_sizes:
            for left, right, out, times in self.products[b]:
                for _ in range(times):
                    np.matmul(left, right, out=out)
        return time.perf_counter() - started


def lstm_products(b, T, D, H, *, initial_state=False):
    """An LSTM layer's products over b sequences of T steps of D inputs, as numnet computes them: forward,
    the input's product over the stacked steps (T·b, D) @ (D, 4H) and the recurrence's (b, H) @ (H, 4H) at
    each step; backward, the recurrence's (b, 4H) @ (4H, H) at every step but the first (and at the first
    too for a layer started from a given ``initial_state``, whose gradient it returns), dWx (D, T·b) @
    (T·b, 4H), dWh (H, T·b) @ (T·b, 4H) and the input gradient (T·b, 4H) @ (4H, D)."""
    return [((T * b, D), (D, 4 * H), 1), ((b, H), (H, 4 * H), T), ((b, 4 * H), (4 * H, H), T - 1 + initial_state),
            ((D, T * b), (T * b, 4 * H), 1), ((H, T * b), (T * b, 4 * H), 1), ((T * b, 4 * H), (4 * H, D), 1)]


def dense_products(rows, n_in, n_out):
    """A Dense layer's products on ``rows`` rows: forward (rows, n_in) @ (n_in, n_out); backward dW
    (n_in, rows) @ (rows, n_out) and the input gradient (rows, n_out) @ (n_out, n_in)."""
    return [((rows, n_in), (n_in, n_out), 1), ((n_in, rows), (rows, n_out), 1), ((rows, n_out), (n_out, n_in), 1)]


def attention_products(b, T_out, T_in, H):
    """Dot-product attention's batched products (numnet.attention): forward the scores H_dec·H_encᵀ and the
    context a·H_enc; backward g·H_encᵀ, aᵀ·g, dC/de·H_enc and (dC/de)ᵀ·H_dec."""
    scores, context = ((b, T_out, H), (b, H, T_in)), ((b, T_out, T_in), (b, T_in, H))
    transposed = ((b, T_in, T_out), (b, T_out, H))
    return [(*scores, 1), (*context, 1), (*scores, 1), (*transposed, 1), (*context, 1), (*transposed, 1)]


class LstmGemmFloor(ProductsFloor):
    """The matrix products of one char-lstm epoch, alone: per batch of b windows of T steps, embedding E,
    hidden H, vocabulary V, the LSTM's (:func:`lstm_products`) and the output layer's on the stacked steps,
    (T·b, H) @ (H, V) forward, dW (H, T·b) @ (T·b, V) and the input gradient (T·b, V) @ (V, H)."""

    def __init__(self, workload, n_classes, batch_sizes, dtype=np.float32, seed=0):
        (E, H), T, V = workload.layer_sizes, workload.time_steps, n_classes
        super().__init__(lambda b: lstm_products(b, T, E, H) + dense_products(T * b, H, V), batch_sizes, dtype, seed)


class Seq2SeqGemmFloor(ProductsFloor):
    """The matrix products of one seq2seq-dates epoch, alone: per batch of b rows, the encoder LSTM's over
    the T_in source steps, the decoder LSTM's over the T_out decoder steps (started from the encoder's
    state, so with the gradient to it), the attention's batched products and the output layer's on
    (T_out·b, 2H) (:func:`lstm_products`, :func:`attention_products`, :func:`dense_products`)."""

    def __init__(self, workload, data, batch_sizes, dtype=np.float32, seed=0):
        (E, H), V = workload.layer_sizes, data.n_classes
        T_in, T_out = data.X_train.shape[1], data.y_train.shape[1] - 1  # the decoder reads Y without its last

        def products(b):
            return (lstm_products(b, T_in, E, H) + lstm_products(b, T_out, E, H, initial_state=True)
                    + attention_products(b, T_out, T_in, H) + dense_products(T_out * b, 2 * H, V))

        super().__init__(products, batch_sizes, dtype, seed)


class GptGemmFloor(ProductsFloor):
    """The matrix products of one gpt epoch, alone: per step of b windows of T tokens, width C, h heads and
    vocabulary V, in every block the attention's projections (C to 3C, C to C) and the MLP's (C to 4C, 4C to
    C) on the stacked tokens (:func:`dense_products`) and the heads' scores and contexts
    (:func:`attention_products` over b·h sequences of C/h); then the output head, C to V (its matrix is the
    token embedding's; the embeddings themselves are look-ups, no products)."""

    def __init__(self, workload, data, batch_sizes, dtype=np.float32, seed=0):
        (n_blocks, heads, C), T, V = workload.layer_sizes, data.X_train.shape[1], data.n_classes

        def products(b):
            block = (dense_products(b * T, C, 3 * C) + attention_products(b * heads, T, T, C // heads)
                     + dense_products(b * T, C, C) + dense_products(b * T, C, 4 * C) + dense_products(b * T, 4 * C, C))
            return [(left, right, times * n_blocks) for left, right, times in block] + dense_products(b * T, C, V)

        super().__init__(products, batch_sizes, dtype, seed)


def gemm_floor(workload, data, batch_sizes):
    """The GEMM floor of the workload's family for batches of ``batch_sizes``."""
    if workload.family == "cnn":
        import cnn

        return cnn.GemmFloor(cnn_spec(workload.name), batch_sizes)
    if workload.family == "gpt":
        return GptGemmFloor(workload, data, batch_sizes)
    if workload.family == "char-lstm":
        return LstmGemmFloor(workload, data.n_classes, batch_sizes)
    if workload.family == "seq2seq":
        return Seq2SeqGemmFloor(workload, data, batch_sizes)
    return GemmFloor(workload.layer_sizes, batch_sizes)


def epoch_batch_sizes(n_samples, batch_size):
    """The batch sizes of one epoch: full batches, then the remainder."""
    sizes = [batch_size] * (n_samples // batch_size)
    return sizes + ([n_samples % batch_size] if n_samples % batch_size else [])


def workload_batch_sizes(workload, data):
    """The batch sizes of one of the workload's epochs: a pass over the training set, or its sampled steps."""
    if workload.steps_per_epoch:
        return [workload.batch_size] * workload.steps_per_epoch
    return epoch_batch_sizes(len(data.X_train), workload.batch_size)


def samples_per_epoch(workload, data):
    """The samples (windows, images, rows) one epoch trains on, or one inference call predicts."""
    if workload.inference:
        return len(data.X_test)
    return sum(workload_batch_sizes(workload, data))


# ---- measuring -----------------------------------------------------------------------------------------

@dataclass
class Measurement:
    """Seconds per epoch (or per inference call) of every repeat, its first and last epoch's seconds, and
    the test accuracy and test loss of every repeat's model."""

    seconds: list = field(default_factory=list)
    first_epoch: list = field(default_factory=list)
    last_epoch: list = field(default_factory=list)
    accuracies: list = field(default_factory=list)
    test_losses: list = field(default_factory=list)
    dtype: str = ""

    def add_epochs(self, epoch_seconds):
        """Record one repeat's epoch times (the first and the last of them)."""
        self.first_epoch.append(epoch_seconds[0])
        self.last_epoch.append(epoch_seconds[-1])

    @property
    def median(self):
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def best(self):
        return min(self.seconds) if self.seconds else float("nan")

    @property
    def accuracy(self):
        """The mean test accuracy over the repeats (each trained from its own seed, when training)."""
        return statistics.mean(self.accuracies) if self.accuracies else float("nan")

    @property
    def test_loss(self):
        """The mean test loss over the repeats."""
        return statistics.mean(self.test_losses) if self.test_losses else float("nan")

    def add_scores(self, contender, model, data):
        """Record the test accuracy and the test loss of ``model`` (one repeat's); a seq2seq model's accuracy
        is its greedy answers' exact match and its loss the teacher-forced cross-entropy per target token."""
        inputs, targets = inputs_and_targets(data.X_test, data.y_test, data.teacher_forced)
        probabilities = contender.predict_proba(model, inputs if data.teacher_forced else data.X_test)
        if data.teacher_forced:
            self.accuracies.append(contender.exact_match(model, data.X_test, data.y_test))
        else:
            self.accuracies.append(float(np.mean(np.argmax(probabilities, axis=-1) == targets)))
        self.test_losses.append(cross_entropy(probabilities, targets))
        self.dtype = contender.dtype(model)


def timed(function, *args):
    """(result, seconds) of one call, after a garbage collection so that none lands inside the timing."""
    gc.collect()
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def cross_entropy(probabilities, labels):
    """The mean of -log p(label) over every sample (and, for sequences, every position), in nats; p floored
    at the float32 tiny so that a confident mistake costs 87 nats, not infinity."""
    picked = np.take_along_axis(probabilities, labels[..., None], axis=-1)
    return float(-np.mean(np.log(np.maximum(picked, np.finfo(np.float32).tiny))))


def run_training(workload, data, contenders, epochs, repeats, seed):
    """Train every contender ``repeats`` times (interleaved, so all see the same machine load).

    Repeat r trains every contender from seed ``seed + r`` (weights and batch order; the data stay
    ``seed``'s): the accuracy is then a mean over seeds, not one draw, since one model's test accuracy on
    these workloads moves by a point or more from epoch to epoch and from seed to seed.
    """
    results = {contender.name: Measurement() for contender in contenders}
    floor = gemm_floor(workload, data, workload_batch_sizes(workload, data))
    results["gemm floor"] = Measurement(dtype="float32")
    for repeat in range(repeats):
        for contender in contenders:
            (model, epoch_seconds), seconds = timed(contender.train, workload, data, epochs, seed + repeat)
            result = results[contender.name]
            result.seconds.append(seconds / epochs)
            result.add_epochs(epoch_seconds)
            result.add_scores(contender, model, data)
        floor_epochs = [floor.training_epoch() for _ in range(epochs)]
        results["gemm floor"].seconds.append(statistics.median(floor_epochs))
        results["gemm floor"].add_epochs(floor_epochs)
        print(f"  {workload.name} repeat {repeat + 1}/{repeats}: "
              + ", ".join(f"{name} {m.seconds[-1]:.3f}s" for name, m in results.items()), flush=True)
    return results


def run_inference(workload, data, contenders, epochs, repeats, seed):
    """Train each contender once (untimed), then time predict_proba on the test set ``repeats`` times."""
    models = {contender.name: contender.train(workload, data, epochs, seed)[0] for contender in contenders}
    results = {contender.name: Measurement() for contender in contenders}
    floor = GemmFloor(workload.layer_sizes, [len(data.X_test)])
    results["gemm floor"] = Measurement(dtype="float32")
    for contender in contenders:
        contender.predict_proba(models[contender.name], data.X_test)  # warm-up
    for repeat in range(repeats):
        for contender in contenders:
            model = models[contender.name]
            _, seconds = timed(_repeat_calls, contender.predict_proba, model, data.X_test)
            result = results[contender.name]
            result.seconds.append(seconds / INFERENCE_CALLS_PER_REPEAT)
            result.add_scores(contender, model, data)
        floor_seconds = [floor.forward() for _ in range(INFERENCE_CALLS_PER_REPEAT)]
        results["gemm floor"].seconds.append(statistics.mean(floor_seconds))
        print(f"  {workload.name} repeat {repeat + 1}/{repeats}: "
              + ", ".join(f"{name} {m.seconds[-1]:.4f}s" for name, m in results.items()), flush=True)
    return results


def _repeat_calls(function, *args):
    for _ in range(INFERENCE_CALLS_PER_REPEAT):
        function(*args)


def warm_up(contenders, workload, data, seed):
    """One short training run per contender on the workload's first 64 samples (of WARM_UP_STEPS steps, for
    a workload of sampled steps), so that first-call costs (thread pools, lazy imports, compiled kernels) are
    paid before the timing."""
    small = replace(data, X_train=data.X_train[:64], y_train=data.y_train[:64], X_test=data.X_test[:64],
                    y_test=data.y_test[:64])
    if workload.steps_per_epoch:
        workload = replace(workload, steps_per_epoch=WARM_UP_STEPS)
    for contender in contenders:
        contender.train(workload, small, 1, seed)


# ---- reporting -----------------------------------------------------------------------------------------

def kernels_line():
    """Which kernels the "numnet" contender runs, on how many threads."""
    if not numnet.kernels.compiled_available():
        return "numnet kernels: numba is not installed, so 'numnet' runs the NumPy code as 'numnet-numpy' does"
    import numba

    return (f"numnet kernels: 'numnet' runs the compiled kernels (numba {numba.__version__}) on "
            f"{numnet.kernels.kernel_threads()} threads; 'numnet-numpy' the NumPy code alone")


def blas_info():
    """threadpoolctl's record of the BLAS that NumPy (hence numnet and scikit-learn) calls."""
    numpy_directory = os.path.dirname(np.__file__)
    libraries = [info for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    for info in libraries:
        if info["filepath"].startswith(numpy_directory) or "numpy" in os.path.basename(
                os.path.dirname(info["filepath"])):
            return info
    return libraries[0] if libraries else {"internal_api": "unknown", "num_threads": os.cpu_count()}


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (or platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_lines(blas, threads):
    """The machine description printed above the tables."""
    import sklearn
    import torch

    torch_blas = next((part.split("=", 1)[1] for part in torch.__config__.show().replace(",", "\n").split()
                       if part.startswith("BLAS_INFO=")), "unknown")
    # OpenBLAS picks its kernels by the CPU unless OPENBLAS_CORETYPE names them: say which ran, and why
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    chosen_by = f"OPENBLAS_CORETYPE={coretype}" if coretype else "chosen by the CPU"
    return [
        f"CPU: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}",
        f"NumPy {np.__version__} BLAS: {blas['internal_api']} {blas.get('version')} "
        f"({blas.get('architecture', '?')} kernels, {chosen_by}; {blas.get('threading_layer', '?')}), "
        f"{blas['num_threads']} threads",
        f"numnet {numnet.__version__}; scikit-learn {sklearn.__version__} (same NumPy BLAS); "
        f"torch {torch.__version__} (BLAS {torch_blas}), torch.set_num_threads({threads})",
    ]


def print_tables(workloads, all_results, data_sizes):
    """A markdown table per contender and workload, then the ratio table, under the CPU's name."""
    print(f"\nCPU: {cpu_model()}. s/epoch is each whole fit divided by its epochs, the first epoch included "
          "(the first epoch alone is not the quoted figure); gpt's epochs are "
          f"{GPT_STEPS_PER_EPOCH} steps; first and last epoch: medians over the repeats; test accuracy (per character "
          "for char-lstm and gpt; for seq2seq-dates the exact match of the greedily decoded answers) and test loss "
          "(cross-entropy, nats per sample or character, teacher forced for seq2seq-dates; for gpt on the validation "
          "split): means over the repeats, each trained from its own seed.")
    print("\n| workload | contender | dtype | s/epoch (s/call), median | min | first epoch | last epoch | "
          "last/first | samples/s | test accuracy | test loss |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for workload in workloads:
        for name, result in all_results[workload.name].items():
            rate = data_sizes[workload.name] / result.median
            scores = " | " if name == "gemm floor" else f"{result.accuracy:.4f} | {result.test_loss:.4f}"
            if result.first_epoch:
                first, last = statistics.median(result.first_epoch), statistics.median(result.last_epoch)
                epochs = f"{first:.4f} | {last:.4f} | {last / first:.2f}"
            else:
                epochs = " | | "
            print(f"| {workload.name} | {name} | {result.dtype} | {result.median:.4f} | {result.best:.4f} | "
                  f"{epochs} | {rate:,.0f} | {scores} |")
    print_ratios(workloads, all_results)


def print_ratios(workloads, all_results):
    """numnet's median time over every rival's, per workload (blank where a rival sat the workload out)."""
    names = list(dict.fromkeys(name for workload in workloads for name in all_results[workload.name]))
    ours = [name for name in names if name.startswith("numnet")]
    rivals = [name for name in names if not name.startswith("numnet")]
    if not ours:
        return
    # A ratio below 1 means numnet is faster; numnet/GEMM floor is numnet's time over the products alone.
    print("\n| workload | numnet | " + " | ".join(f"/{name}" for name in rivals) + " |")
    print("|---|---|" + "---:|" * len(rivals))
    for workload in workloads:
        results = all_results[workload.name]
        for mine in (name for name in ours if name in results):
            ratios = [f"{results[mine].median / results[name].median:.2f}" if name in results else ""
                      for name in rivals]
            print(f"| {workload.name} | {mine} | " + " | ".join(ratios) + " |")


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = list(WORKLOADS) + list(DEFINED_ELSEWHERE)
    parser.add_argument("--workloads", nargs="+", choices=names, default=names)
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS + REFERENCES, default=list(CONTENDERS),
                        help="add 'numpy' for the flat NumPy loop that bounds any NumPy engine (MLPs only); "
                             "'textbook' is the book's code (the CNNs and char-lstm only)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per workload (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="1 repeat and fewer epochs (a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS and torch threads (default: what threadpoolctl reports for NumPy's BLAS)")
    parser.add_argument("--torch-fused-adam", action="store_true",
                        help="give PyTorch its fused CPU Adam kernel (default: torch.optim.Adam's default)")
    parser.add_argument("--json", metavar="PATH", help="also write every timing (all repeats) to this JSON file")
    arguments = parser.parse_args(argv)
    if arguments.repeats is None:
        arguments.repeats = 1 if arguments.quick else 3
    if arguments.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {arguments.repeats}")
    return arguments


def run_workload(workload, contenders, datasets, arguments):
    """Measure one workload with the contenders that have its model; returns {contender or "gemm floor":
    Measurement}."""
    data = datasets[workload.data]
    epochs = QUICK_EPOCHS[workload.name] if arguments.quick else workload.epochs
    print(f"{workload.name}: {workload.description}" + (f" (quick: {epochs} epochs)" if arguments.quick else ""),
          flush=True)
    contenders = [contender for contender in contenders if workload.family in contender.families]
    warm_up(contenders, workload, data, arguments.seed)
    runner = run_inference if workload.inference else run_training
    results = runner(workload, data, contenders, epochs, arguments.repeats, arguments.seed)
    # Other work on the machine slows every contender, multi-threaded BLAS most: say how busy it was.
    print(f"  load average after {workload.name}: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
    return results


def load_datasets(workloads, seed):
    """The data sets the workloads train on, by name (each made or read once)."""
    datasets = {}
    for workload in workloads:
        if workload.data not in datasets:
            datasets[workload.data] = load_data(workload, seed)
    return datasets


def load_data(workload, seed):
    """The data set ``workload`` trains on; a CNN's as benchmarks/cnn.py makes it (images (n, C, H, W))."""
    if workload.family == "cnn":
        import cnn

        spec = cnn_spec(workload.name)
        return cnn.workload_data(spec, spec.n_train, seed)
    loaders = {"digits": lambda: load_digits_data(seed), "images": lambda: make_image_data(seed),
               "names": lambda: load_names_windows(seed, workload.time_steps), "dates": load_dates_rows,
               "text": load_text_windows}
    return loaders[workload.data]()


def main(argv=None):
    arguments = parse_arguments(argv)
    blas = blas_info()
    threads = arguments.threads or blas["num_threads"]
    with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
        contenders = [make_contender(name, arguments.torch_fused_adam) for name in arguments.contenders]
        import torch

        torch.set_num_threads(threads)
        numnet.kernels.set_kernel_threads(threads)  # the kernels' threads, like the BLAS's and torch's
        for line in machine_lines(blas_info(), threads) + [kernels_line()]:
            print(line)
        print("load average at start (1, 5, 15 min): " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
        print("numnet trains with record_gradients=False (the per-step gradient diagnostic is off); PyTorch's "
              f"Adam: {'fused kernel' if arguments.torch_fused_adam else 'default (for-loop) implementation'}.",
              flush=True)
        workloads = [workload_named(name) for name in arguments.workloads]
        datasets = load_datasets(workloads, arguments.seed)
        all_results = {workload.name: run_workload(workload, contenders, datasets, arguments)
                       for workload in workloads}
    data_sizes = {workload.name: samples_per_epoch(workload, datasets[workload.data]) for workload in workloads}
    print_tables(workloads, all_results, data_sizes)
    if arguments.json:
        write_json(arguments.json, machine_lines(blas_info(), threads), vars(arguments), all_results)
    return all_results


def write_json(path, machine, arguments, all_results):
    """Save the raw timings (every repeat) with the machine description and the options used."""
    results = {workload: {name: {"seconds": m.seconds, "first_epoch": m.first_epoch, "last_epoch": m.last_epoch,
                                 "accuracy": m.accuracies, "test_loss": m.test_losses, "dtype": m.dtype}
                          for name, m in measurements.items()}
               for workload, measurements in all_results.items()}
    with open(path, "w") as file:
        json.dump({"machine": machine, "arguments": arguments, "results": results}, file, indent=1)


if __name__ == "__main__":
    main()
