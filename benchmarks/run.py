"""Speed benchmark: numnet against scikit-learn's MLPClassifier and PyTorch, on the CPU, in one process.

Run from the repository root::

    python benchmarks/run.py                      # every workload, medians over 3 repeats (~10 minutes)
    python benchmarks/run.py --quick              # 1 repeat, fewer epochs: a smoke run in about a minute
    python benchmarks/run.py --workloads digits mnist --repeats 3

Every contender trains the same architecture with Adam (learning rate 1e-3), the same batch size and
number of epochs (at least 5, so that effects which build up over training, such as subnormal optimiser
state, show; the tables print the first and the last epoch's time), no early stopping and no weight
penalty, from fixed seeds, in float32. numnet runs twice: with the optional compiled kernels
(numnet.kernels, when numba is installed) and with the NumPy rules alone. Next to the contenders the
script times the *GEMM floor*: the workload's matrix products alone (per batch, one product
per layer forward and two per layer backward but the first), called with np.matmul in the same BLAS with
the same shapes and dtype. No Python MLP can beat that floor, so numnet's time over it is the overhead left
to remove. See benchmarks/README.md for the results and benchmarks/NOTES.md for the engine optimisations.
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
from dataclasses import dataclass, field

import numpy as np
import threadpoolctl

import numnet
import numnet.kernels

#: Adam's learning rate for every contender.
LEARNING_RATE = 1e-3
#: Calls of predict_proba averaged inside one repeat of the inference workload (one call is ~0.05 s,
#: too short to time alone on a shared machine).
INFERENCE_CALLS_PER_REPEAT = 5
CONTENDERS = ("numnet", "numnet-numpy", "sklearn", "torch")
#: Not run unless asked for (--contenders ... numpy): the bound for any NumPy engine, see NumpyBound.
REFERENCES = ("numpy",)


# ---- workloads and their data ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """One benchmark: an architecture, a data set and a training recipe (or inference only)."""

    name: str
    description: str
    data: str  # "digits" or "images"
    layer_sizes: tuple
    batch_size: int
    epochs: int
    inference: bool = False  # time predict_proba on the test set instead of training


WORKLOADS = {
    "digits": Workload("digits", "8x8 digits, 64-128-10 relu, batch 32, 30 epochs", "digits",
                       (64, 128, 10), 32, 30),
    "mnist": Workload("mnist", "60,000 x 784 synthetic, 784-256-128-10 relu, batch 128, 5 epochs", "images",
                      (784, 256, 128, 10), 128, 5),
    "wide": Workload("wide", "60,000 x 784 synthetic, 784-1024-1024-10 relu, batch 256, 5 epochs", "images",
                     (784, 1024, 1024, 10), 256, 5),
    "inference": Workload("inference", "predict_proba on 10,000 x 784 with the mnist model", "images",
                          (784, 256, 128, 10), 128, 5, inference=True),
}

#: --quick keeps the data and the shapes (so seconds per epoch stay comparable) but trains fewer epochs.
QUICK_EPOCHS = {"digits": 5, "mnist": 1, "wide": 1, "inference": 1}


@dataclass
class Dataset:
    """Train and test arrays: float32 inputs in [0, 1] and int64 class labels."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


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


# ---- the contenders ------------------------------------------------------------------------------------

class NumnetContender:
    """numnet.Network with a softmax output, trained by Network.fit in float32.

    ``kernels`` is numnet.kernels' choice: "auto" (the compiled kernels when numba is installed, contender
    "numnet") or "numpy" (the NumPy rules alone, what an install without the extra runs: "numnet-numpy").
    """

    def __init__(self, kernels="auto"):
        self.kernels = kernels
        self.name = "numnet" if kernels == "auto" else "numnet-numpy"

    def train(self, workload, data, epochs, seed):
        """(the trained network, seconds of each epoch as fit's progress callback measured them)."""
        net = numnet.Network(list(workload.layer_sizes), activation="relu", output_activation="softmax",
                             dtype="float32", seed=seed)
        epoch_seconds = []
        # record_gradients=False: the per-step mean |dC/dW| diagnostic is off, as sklearn and torch have none.
        with numnet.kernels.use_kernels(self.kernels):
            net.fit(data.X_train, data.y_train, epochs=epochs, batch_size=workload.batch_size, optimizer="adam",
                    learning_rate=LEARNING_RATE, seed=seed, record_gradients=False,
                    progress=lambda report: epoch_seconds.append(report.seconds))
        return net, epoch_seconds

    def predict_proba(self, model, X):
        return model.predict_proba(X)

    def dtype(self, model):
        return str(model.flat_parameters.dtype)


class SklearnContender:
    """sklearn.neural_network.MLPClassifier, fed float32 so that it trains in float32."""

    name = "sklearn"

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


def train_torch(model, data, epochs, batch_size, seed, learning_rate, adam_options=None):
    """Train a torch model as its users do: ``torch.optim.Adam``, cross-entropy on the logits, a plain loop
    over ``torch.randperm`` index batches (no DataLoader); returns the seconds of every epoch."""
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, **(adam_options or {}))
    loss_function = torch.nn.CrossEntropyLoss()
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    generator = torch.Generator().manual_seed(seed)
    epoch_seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        for batch in torch.randperm(X.shape[0], generator=generator).split(batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss_function(model(X[batch]), y[batch]).backward()
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - started)
    return epoch_seconds


class TorchContender:
    """A torch.nn.Sequential MLP, trained by a plain loop over shuffled index batches (no DataLoader).

    ``fused_adam=False`` is what ``torch.optim.Adam(params, lr)`` gives on the CPU (a loop over the
    parameter tensors); ``fused_adam=True`` asks for the fused kernel, PyTorch's fastest CPU Adam.
    """

    name = "torch"

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
        model = self.build(workload.layer_sizes, seed)
        return model, train_torch(model, data, epochs, workload.batch_size, seed, LEARNING_RATE, self.adam_options)

    def predict_proba(self, model, X):
        torch = self.torch
        with torch.inference_mode():
            return torch.softmax(model(torch.from_numpy(X)), dim=1).numpy()

    def dtype(self, model):
        return str(next(model.parameters()).dtype).replace("torch.", "")


class NumpyBound:
    """The same training written as one flat NumPy loop: no layers, no validation, no History.

    Same math as numnet (He-normal weights, relu, softmax cross-entropy from logits with its per-batch loss
    value, Adam over one flat buffer with one scratch array), so the time numnet takes over this one is
    what its structure costs; this one's time over the GEMM floor is what NumPy itself costs.
    """

    name = "numpy"

    def train(self, workload, data, epochs, seed):
        model = _FlatMLP(workload.layer_sizes, seed)
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
        logits = activations[-1]
        loss = None if Y is None else _softmax_cross_entropy(logits, Y)
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return activations, loss

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
    return {"sklearn": SklearnContender, "numpy": NumpyBound}[name]()


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


def epoch_batch_sizes(n_samples, batch_size):
    """The batch sizes of one epoch: full batches, then the remainder."""
    sizes = [batch_size] * (n_samples // batch_size)
    return sizes + ([n_samples % batch_size] if n_samples % batch_size else [])


# ---- measuring -----------------------------------------------------------------------------------------

@dataclass
class Measurement:
    """Seconds per epoch (or per inference call) of every repeat, its first and last epoch's seconds, and
    the test accuracy of every repeat's model."""

    seconds: list = field(default_factory=list)
    first_epoch: list = field(default_factory=list)
    last_epoch: list = field(default_factory=list)
    accuracies: list = field(default_factory=list)
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


def timed(function, *args):
    """(result, seconds) of one call, after a garbage collection so that none lands inside the timing."""
    gc.collect()
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def accuracy_on_test_set(contender, model, data):
    """Fraction of the test set classified correctly (argmax of predict_proba)."""
    return float(np.mean(np.argmax(contender.predict_proba(model, data.X_test), axis=1) == data.y_test))


def run_training(workload, data, contenders, epochs, repeats, seed):
    """Train every contender ``repeats`` times (interleaved, so all see the same machine load).

    Repeat r trains every contender from seed ``seed + r`` (weights and batch order; the data stay
    ``seed``'s): the accuracy is then a mean over seeds, not one draw, since one model's test accuracy on
    these workloads moves by a point or more from epoch to epoch and from seed to seed.
    """
    results = {contender.name: Measurement() for contender in contenders}
    floor = GemmFloor(workload.layer_sizes, epoch_batch_sizes(len(data.X_train), workload.batch_size))
    results["gemm floor"] = Measurement(dtype="float32")
    for repeat in range(repeats):
        for contender in contenders:
            (model, epoch_seconds), seconds = timed(contender.train, workload, data, epochs, seed + repeat)
            result = results[contender.name]
            result.seconds.append(seconds / epochs)
            result.add_epochs(epoch_seconds)
            result.accuracies.append(accuracy_on_test_set(contender, model, data))
            result.dtype = contender.dtype(model)
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
            result.accuracies.append(accuracy_on_test_set(contender, model, data))
            result.dtype = contender.dtype(model)
        floor_seconds = [floor.forward() for _ in range(INFERENCE_CALLS_PER_REPEAT)]
        results["gemm floor"].seconds.append(statistics.mean(floor_seconds))
        print(f"  {workload.name} repeat {repeat + 1}/{repeats}: "
              + ", ".join(f"{name} {m.seconds[-1]:.4f}s" for name, m in results.items()), flush=True)
    return results


def _repeat_calls(function, *args):
    for _ in range(INFERENCE_CALLS_PER_REPEAT):
        function(*args)


def warm_up(contenders, data, seed):
    """One short training run per contender, so first-call costs (thread pools, lazy imports) are paid."""
    small = Dataset(data.X_train[:256], data.y_train[:256], data.X_test[:64], data.y_test[:64])
    workload = WORKLOADS["digits"]
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
    return [
        f"CPU: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}",
        f"NumPy {np.__version__} BLAS: {blas['internal_api']} {blas.get('version')} "
        f"({blas.get('architecture', '?')} kernels, {blas.get('threading_layer', '?')}), {blas['num_threads']} threads",
        f"numnet {numnet.__version__}; scikit-learn {sklearn.__version__} (same NumPy BLAS); "
        f"torch {torch.__version__} (BLAS {torch_blas}), torch.set_num_threads({threads})",
    ]


def print_tables(workloads, all_results, data_sizes):
    """A markdown table per contender and workload, then the ratio table, under the CPU's name."""
    print(f"\nCPU: {cpu_model()}. s/epoch is each whole fit divided by its epochs, the first epoch included "
          "(the first epoch alone is not the quoted figure); first and last epoch: medians over the repeats; test "
          "accuracy: the mean over the repeats, each trained from its own seed.")
    print("\n| workload | contender | dtype | s/epoch (s/call), median | min | first epoch | last epoch | "
          "last/first | samples/s | test accuracy |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for workload in workloads:
        for name, result in all_results[workload.name].items():
            rate = data_sizes[workload.name] / result.median
            accuracy = "" if name == "gemm floor" else f"{result.accuracy:.4f}"
            if result.first_epoch:
                first, last = statistics.median(result.first_epoch), statistics.median(result.last_epoch)
                epochs = f"{first:.4f} | {last:.4f} | {last / first:.2f}"
            else:
                epochs = " | | "
            print(f"| {workload.name} | {name} | {result.dtype} | {result.median:.4f} | {result.best:.4f} | "
                  f"{epochs} | {rate:,.0f} | {accuracy} |")
    ours = [name for name in all_results[workloads[0].name] if name.startswith("numnet")]
    rivals = [name for name in all_results[workloads[0].name] if not name.startswith("numnet")]
    if not ours:
        return
    # A ratio below 1 means numnet is faster; numnet/GEMM floor is numnet's time over the products alone.
    print("\n| workload | numnet | " + " | ".join(f"/{name}" for name in rivals) + " |")
    print("|---|---|" + "---:|" * len(rivals))
    for workload in workloads:
        results = all_results[workload.name]
        for mine in ours:
            ratios = [results[mine].median / results[name].median for name in rivals]
            print(f"| {workload.name} | {mine} | " + " | ".join(f"{ratio:.2f}" for ratio in ratios) + " |")


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS + REFERENCES, default=list(CONTENDERS),
                        help="add 'numpy' for the flat NumPy loop that bounds any NumPy engine")
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
    """Measure one workload; returns {contender or "gemm floor": Measurement}."""
    data = datasets[workload.data]
    epochs = QUICK_EPOCHS[workload.name] if arguments.quick else workload.epochs
    print(f"{workload.name}: {workload.description}" + (f" (quick: {epochs} epochs)" if arguments.quick else ""),
          flush=True)
    runner = run_inference if workload.inference else run_training
    results = runner(workload, data, contenders, epochs, arguments.repeats, arguments.seed)
    # Other work on the machine slows every contender, multi-threaded BLAS most: say how busy it was.
    print(f"  load average after {workload.name}: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
    return results


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
        workloads = [WORKLOADS[name] for name in arguments.workloads]
        datasets = {"digits": load_digits_data(arguments.seed)}
        if any(workload.data == "images" for workload in workloads):
            datasets["images"] = make_image_data(arguments.seed)
        warm_up(contenders, datasets["digits"], arguments.seed)
        all_results = {workload.name: run_workload(workload, contenders, datasets, arguments)
                       for workload in workloads}
    data_sizes = {workload.name: len(datasets[workload.data].X_test if workload.inference
                                     else datasets[workload.data].X_train) for workload in workloads}
    print_tables(workloads, all_results, data_sizes)
    if arguments.json:
        write_json(arguments.json, machine_lines(blas_info(), threads), vars(arguments), all_results)
    return all_results


def write_json(path, machine, arguments, all_results):
    """Save the raw timings (every repeat) with the machine description and the options used."""
    results = {workload: {name: {"seconds": m.seconds, "first_epoch": m.first_epoch, "last_epoch": m.last_epoch,
                                 "accuracy": m.accuracies, "dtype": m.dtype}
                          for name, m in measurements.items()}
               for workload, measurements in all_results.items()}
    with open(path, "w") as file:
        json.dump({"machine": machine, "arguments": arguments, "results": results}, file, indent=1)


if __name__ == "__main__":
    main()
