"""CNN speed benchmark: numnet against PyTorch on the CPU, the book's im2col code, and the GEMM floor.

Run from the repository root::

    python benchmarks/cnn.py                    # both workloads, medians over 3 interleaved repeats
    python benchmarks/cnn.py --quick            # 1 repeat, fewer images: a smoke run in about a minute
    python benchmarks/cnn.py --workloads simpleconvnet --repeats 5 --threads 1
    python benchmarks/cnn.py --tricks           # what each convolution trick buys (CPU ms, one thread)
    python benchmarks/cnn.py --compiled --threads 1   # the compiled kernels against the NumPy path (paired A/B)

Three workloads: the book's SimpleConvNet (conv 30 filters 5x5, relu, max pool 2x2, dense 100 relu, dense 10
softmax; weights N(0, 0.01²), Adam lr 0.001, batch 100) on MNIST-sized synthetic images (1 x 28 x 28), the
CNN ``numnet train --model cnn`` builds for the 8x8 digits (conv 16 3x3 pad 1, conv 32 3x3 pad 1, pool 2,
dense 64, dense 10; He-normal weights, batch 32), on the real digits, and an MNIST-size two-convolution
network (conv 16 3x3 pad 1, pool 2, conv 32 3x3 pad 1, pool 2, dense 64, dense 10; He-normal weights,
batch 64) on the synthetic 28 x 28 images. The contenders train the same network
in float32 from the same kind of initial weights:

- numnet: ``Network.fit`` with the layers of numnet/conv.py;
- torch: ``torch.nn.Sequential`` (Conv2d, ReLU, MaxPool2d, Flatten, Linear), a plain loop over shuffled
  index batches, ``torch.set_num_threads`` equal to the BLAS threads the others get;
- textbook: the book's own implementation ("Deep Learning from Scratch", common/layers.py and util.py:
  im2col and col2im by loops over the kernel, Convolution, Pooling by im2col and argmax, Relu, Affine,
  SoftmaxWithLoss, its Adam), written out below, fed float32 (its ``np.zeros`` take the input's dtype, so
  that no step falls back to float64 as the original's would);
- gemm floor: the matrix products numnet computes, alone, with preallocated operands (per batch: each
  layer's forward product, its weight-gradient product, and its input-gradient product except for the first
  layer): what no im2col engine in NumPy can beat.

Each repeat trains every contender once, in turn (interleaved, so all see the same machine load); the
tables give the median over repeats of seconds per epoch, the first and last epoch of the median repeat,
test accuracy, and the ratios. See benchmarks/README.md ("Convolutional networks") for the results and
benchmarks/NOTES.md ("Convolution") for what each trick bought.
"""

import argparse
import math
import os
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import threadpoolctl

import numnet
from numnet.initializers import Normal
from run import blas_info, epoch_batch_sizes, load_digits_data, machine_lines, make_image_data, timed, train_torch

LEARNING_RATE = 1e-3
WEIGHT_STD = 0.01
CONTENDERS = ("numnet", "torch", "textbook")


# ---- workloads -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """A network (``layers``: ("conv", filters, kernel, padding), ("pool", size), ("dense", units); relu
    after every conv and hidden dense layer, softmax at the end), its data and its training recipe."""

    name: str
    description: str
    data: str  # "images" (synthetic 1 x 28 x 28) or "digits" (1 x 8 x 8)
    image_shape: tuple
    layers: tuple
    batch_size: int
    epochs: int
    n_train: int = 0  # images of the synthetic set (0 for the digits)
    weight_std: float = None  # N(0, weight_std²) weights; None: He-normal, N(0, 2 / fan_in)


#: The synthetic images' share of their class's prototype (the rest is uniform noise): at 0.3 SimpleConvNet
#: separates the classes within an epoch, so every contender ends on the plateau and the accuracy column
#: checks that all three learn; at run.py's 0.1 (made for MLPs) a 5x5-filter network barely starts in 2 epochs.
IMAGE_CONTRAST = 0.3


WORKLOADS = {
    "simpleconvnet": Workload(
        "simpleconvnet", "the book's SimpleConvNet on 10,000 synthetic 1x28x28 images, batch 100, 2 epochs",
        "images", (1, 28, 28), (("conv", 30, 5, 0), ("pool", 2), ("dense", 100), ("dense", 10)), 100, 2,
        n_train=10_000, weight_std=WEIGHT_STD),
    "digits-cnn": Workload(
        "digits-cnn", "8x8 digits, conv 16 3x3 pad 1, conv 32 3x3 pad 1, pool 2, dense 64, dense 10, batch 32, "
        "10 epochs", "digits", (1, 8, 8),
        (("conv", 16, 3, 1), ("conv", 32, 3, 1), ("pool", 2), ("dense", 64), ("dense", 10)), 32, 10),
    "mnist-cnn": Workload(
        "mnist-cnn", "10,000 synthetic 1x28x28 images, conv 16 3x3 pad 1, pool 2, conv 32 3x3 pad 1, pool 2, "
        "dense 64, dense 10, batch 64, 2 epochs", "images", (1, 28, 28),
        (("conv", 16, 3, 1), ("pool", 2), ("conv", 32, 3, 1), ("pool", 2), ("dense", 64), ("dense", 10)), 64, 2,
        n_train=10_000),
}
QUICK = {"simpleconvnet": {"n_train": 2_000, "epochs": 1}, "digits-cnn": {"epochs": 3},
         "mnist-cnn": {"n_train": 2_000, "epochs": 1}}


@dataclass
class Dataset:
    X_train: np.ndarray  # (n, C, H, W) float32 in [0, 1]
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    teacher_forced: bool = False  # what run.train_torch asks of a data set: images are one input, no decoder


def workload_data(workload, n_train, seed):
    """The workload's images, (n, C, H, W) float32, and labels."""
    shape = workload.image_shape
    if workload.data == "digits":
        flat = load_digits_data(seed)
    else:
        flat = make_image_data(seed, n_train=n_train, n_test=n_train // 5, n_features=math.prod(shape),
                               contrast=IMAGE_CONTRAST)
    return Dataset(flat.X_train.reshape(-1, *shape), flat.y_train, flat.X_test.reshape(-1, *shape), flat.y_test)


def weight_std(workload, input_shape, spec):
    """The standard deviation of a layer's initial weights: the workload's, or He's sqrt(2 / fan_in)."""
    if workload.weight_std is not None:
        return workload.weight_std
    fan_in = input_shape[0] * spec[2] ** 2 if spec[0] == "conv" else math.prod(input_shape)
    return math.sqrt(2.0 / fan_in)


def layer_shapes(workload):
    """Per layer of the spec: (kind, input shape, output shape) of one sample."""
    shapes, shape = [], tuple(workload.image_shape)
    for spec in workload.layers:
        if spec[0] == "conv":
            _, filters, kernel, padding = spec
            out = (filters, shape[1] + 2 * padding - kernel + 1, shape[2] + 2 * padding - kernel + 1)
        elif spec[0] == "pool":
            out = (shape[0], shape[1] // spec[1], shape[2] // spec[1])
        else:
            out = (spec[1],)
        shapes.append((spec[0], shape, out))
        shape = out
    return shapes


# ---- the contenders ------------------------------------------------------------------------------------

class NumnetContender:
    name = "numnet"

    def build(self, workload, seed):
        layers = []
        for index, (kind, input_shape, output_shape) in enumerate(layer_shapes(workload)):
            last, spec = index == len(workload.layers) - 1, workload.layers[index]
            if kind == "conv":
                _, filters, kernel, padding = workload.layers[index]
                layers.append(numnet.Conv2D(input_shape[0], filters, kernel, padding=padding, activation="relu",
                                            weight_init=Normal(weight_std(workload, input_shape, spec))))
            elif kind == "pool":
                layers.append(numnet.MaxPool2D(workload.layers[index][1]))
            else:
                if len(input_shape) > 1:
                    layers.append(numnet.Flatten())
                layers.append(numnet.Dense(math.prod(input_shape), output_shape[0], "softmax" if last else "relu",
                                           weight_init=Normal(weight_std(workload, input_shape, spec))))
        return numnet.Network(layers=layers, input_shape=workload.image_shape, dtype="float32", seed=seed)

    def train(self, workload, data, epochs, seed):
        network, seconds = self.build(workload, seed), []
        # record_gradients=False: the per-step mean |dC/dW| diagnostic is off, as the others have none.
        network.fit(data.X_train, data.y_train, epochs=epochs, batch_size=workload.batch_size, optimizer="adam",
                    learning_rate=LEARNING_RATE, seed=seed, record_gradients=False,
                    progress=lambda report: seconds.append(report.seconds))
        return network, seconds

    def predict(self, model, X):
        return model.predict(X)


class TorchContender:
    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch

    def build(self, workload, seed):
        torch = self.torch
        torch.manual_seed(seed)
        modules, stds = [], []
        for index, (kind, input_shape, output_shape) in enumerate(layer_shapes(workload)):
            if kind != "pool":
                stds.append(weight_std(workload, input_shape, workload.layers[index]))
            if kind == "conv":
                _, filters, kernel, padding = workload.layers[index]
                modules += [torch.nn.Conv2d(input_shape[0], filters, kernel, padding=padding), torch.nn.ReLU()]
            elif kind == "pool":
                modules.append(torch.nn.MaxPool2d(workload.layers[index][1]))
            else:
                if len(input_shape) > 1:
                    modules.append(torch.nn.Flatten())
                modules += [torch.nn.Linear(math.prod(input_shape), output_shape[0]), torch.nn.ReLU()]
        model = torch.nn.Sequential(*modules[:-1])  # logits out; the loss applies log-softmax
        with torch.no_grad():
            weighted = [module for module in model if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear))]
            for module, std in zip(weighted, stds):
                module.weight.normal_(0.0, std)
                module.bias.zero_()
        return model

    def train(self, workload, data, epochs, seed):
        model = self.build(workload, seed)
        return model, train_torch(model, data, epochs, workload.batch_size, seed, LEARNING_RATE)

    def predict(self, model, X):
        with self.torch.inference_mode():
            return model(self.torch.from_numpy(X)).argmax(dim=1).numpy()


class TextbookContender:
    """The book's SimpleConvNet code path: its layers, in the order of its ``gradient()``, and its Adam."""

    name = "textbook"

    def build(self, workload, seed):
        rng, layers = np.random.default_rng(seed), []
        for index, (kind, input_shape, output_shape) in enumerate(layer_shapes(workload)):
            if kind == "conv":
                _, filters, kernel, padding = workload.layers[index]
                std = weight_std(workload, input_shape, workload.layers[index])
                W = (std * rng.standard_normal((filters, input_shape[0], kernel, kernel))).astype(np.float32)
                layers += [BookConvolution(W, np.zeros(filters, np.float32), pad=padding), BookRelu()]
            elif kind == "pool":
                size = workload.layers[index][1]
                layers.append(BookPooling(size, size, stride=size))
            else:
                std = weight_std(workload, input_shape, workload.layers[index])
                W = (std * rng.standard_normal((math.prod(input_shape), output_shape[0]))).astype(np.float32)
                layers += [BookAffine(W, np.zeros(output_shape[0], np.float32)), BookRelu()]
        return layers[:-1]  # the last Affine gives the scores; SoftmaxWithLoss follows

    def train(self, workload, data, epochs, seed):
        layers, seconds = self.build(workload, seed), []
        last_layer, optimizer = BookSoftmaxWithLoss(), BookAdam(lr=LEARNING_RATE)
        targets = np.eye(10, dtype=np.float32)[data.y_train]
        for epoch in range(epochs):
            started = time.perf_counter()
            order = np.random.default_rng([seed, epoch]).permutation(len(data.X_train))
            for start in range(0, len(order), workload.batch_size):
                batch = order[start:start + workload.batch_size]
                x = data.X_train[batch]
                for layer in layers:
                    x = layer.forward(x)
                last_layer.forward(x, targets[batch])
                dout = last_layer.backward()
                for layer in reversed(layers):
                    dout = layer.backward(dout)
                optimizer.update(*_book_parameters_and_gradients(layers))
            seconds.append(time.perf_counter() - started)
        return layers, seconds

    def predict(self, model, X):
        return np.argmax(self.predict_proba(model, X), axis=1)

    def predict_proba(self, model, X, batch_size=100):
        """The softmax of the book's scores, batch by batch (its layers cache every forward pass's columns)."""
        probabilities = []
        for start in range(0, len(X), batch_size):
            x = X[start:start + batch_size]
            for layer in model:
                x = layer.forward(x)
            x = np.exp(x - x.max(axis=1, keepdims=True))
            probabilities.append(x / x.sum(axis=1, keepdims=True))
        return np.concatenate(probabilities)


def make_contender(name):
    return {"numnet": NumnetContender, "torch": TorchContender, "textbook": TextbookContender}[name]()


# ---- the book's code (common/util.py, common/layers.py, common/optimizer.py), float32 throughout --------

def book_im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    N, C, H, W = input_data.shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    img = np.pad(input_data, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((N, C, filter_h, filter_w, out_h, out_w), dtype=input_data.dtype)
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            col[:, :, y, x, :, :] = img[:, :, y:y_max:stride, x:x_max:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * out_h * out_w, -1)


def book_col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    N, C, H, W = input_shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    col = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1), dtype=col.dtype)
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            img[:, :, y:y_max:stride, x:x_max:stride] += col[:, :, y, x, :, :]
    return img[:, :, pad:H + pad, pad:W + pad]


class BookConvolution:
    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b, self.stride, self.pad = W, b, stride, pad

    def forward(self, x):
        FN, C, FH, FW = self.W.shape
        N, C, H, W = x.shape
        out_h = 1 + int((H + 2 * self.pad - FH) / self.stride)
        out_w = 1 + int((W + 2 * self.pad - FW) / self.stride)
        col = book_im2col(x, FH, FW, self.stride, self.pad)
        col_W = self.W.reshape(FN, -1).T
        out = np.dot(col, col_W) + self.b
        out = out.reshape(N, out_h, out_w, -1).transpose(0, 3, 1, 2)
        self.x, self.col, self.col_W = x, col, col_W
        return out

    def backward(self, dout):
        FN, C, FH, FW = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
        self.db = np.sum(dout, axis=0)
        self.dW = np.dot(self.col.T, dout).transpose(1, 0).reshape(FN, C, FH, FW)
        dcol = np.dot(dout, self.col_W.T)
        return book_col2im(dcol, self.x.shape, FH, FW, self.stride, self.pad)


class BookPooling:
    def __init__(self, pool_h, pool_w, stride=1, pad=0):
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad

    def forward(self, x):
        N, C, H, W = x.shape
        out_h = int(1 + (H - self.pool_h) / self.stride)
        out_w = int(1 + (W - self.pool_w) / self.stride)
        col = book_im2col(x, self.pool_h, self.pool_w, self.stride, self.pad).reshape(-1, self.pool_h * self.pool_w)
        self.arg_max = np.argmax(col, axis=1)
        out = np.max(col, axis=1).reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)
        self.x = x
        return out

    def backward(self, dout):
        dout = dout.transpose(0, 2, 3, 1)
        pool_size = self.pool_h * self.pool_w
        dmax = np.zeros((dout.size, pool_size), dtype=dout.dtype)
        dmax[np.arange(self.arg_max.size), self.arg_max.flatten()] = dout.flatten()
        dmax = dmax.reshape(dout.shape + (pool_size,))
        dcol = dmax.reshape(dmax.shape[0] * dmax.shape[1] * dmax.shape[2], -1)
        return book_col2im(dcol, self.x.shape, self.pool_h, self.pool_w, self.stride, self.pad)


class BookRelu:
    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout[self.mask] = 0
        return dout


class BookAffine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return np.dot(self.x, self.W) + self.b

    def backward(self, dout):
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return dx.reshape(*self.original_x_shape)


class BookSoftmaxWithLoss:
    def forward(self, x, t):
        self.t = t
        x = x - x.max(axis=1, keepdims=True)
        self.y = np.exp(x) / np.sum(np.exp(x), axis=1, keepdims=True)
        return -np.sum(t * np.log(self.y + 1e-7)) / x.shape[0]

    def backward(self):
        return (self.y - self.t) / self.t.shape[0]


class BookAdam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.iter, self.m, self.v = lr, beta1, beta2, 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m += (1 - self.beta1) * (g - m)
            v += (1 - self.beta2) * (g ** 2 - v)
            p -= (lr_t * m / (np.sqrt(v) + 1e-7)).astype(p.dtype)


def _book_parameters_and_gradients(layers):
    params, grads = [], []
    for layer in layers:
        if isinstance(layer, (BookConvolution, BookAffine)):
            params += [layer.W, layer.b]
            grads += [layer.dW, layer.db]
    return params, grads


# ---- the GEMM floor ------------------------------------------------------------------------------------

class GemmFloor:
    """numnet's matrix products of one epoch, alone, with preallocated float32 operands.

    Conv2D (columns K = C·kh·kw, positions P = out_h·out_w): forward (out, K) @ (b, K, P), weights
    (b, out, P) @ (b, P, K), input (K, out) @ (b, out, P). Dense: forward (b, n_in) @ (n_in, n_out), weights
    (n_in, b) @ (b, n_out), input (b, n_out) @ (n_out, n_in). The first layer has no input-gradient product.
    """

    def __init__(self, workload, batch_sizes, seed=0):
        rng, self.batch_sizes, self.products = np.random.default_rng(seed), list(batch_sizes), []
        for b in sorted(set(self.batch_sizes)):
            for index, shapes in enumerate(self._shapes(workload, b)):
                for left, right in shapes[:2] if index == 0 else shapes:
                    pair = (rng.random(left, dtype=np.float32), rng.random(right, dtype=np.float32))
                    self.products.append((b, pair, np.matmul(*pair)))

    @staticmethod
    def _shapes(workload, b):
        """Per layer with weights: [(forward), (weight gradient), (input gradient)] operand shapes."""
        layers = []
        for spec, (kind, input_shape, output_shape) in zip(workload.layers, layer_shapes(workload)):
            if kind == "conv":
                K, P, out = input_shape[0] * spec[2] ** 2, output_shape[1] * output_shape[2], output_shape[0]
                layers.append([((out, K), (b, K, P)), ((b, out, P), (b, P, K)), ((K, out), (b, out, P))])
            elif kind == "dense":
                n_in, n_out = math.prod(input_shape), output_shape[0]
                layers.append([((b, n_in), (n_in, n_out)), ((n_in, b), (b, n_out)), ((b, n_out), (n_out, n_in))])
        return layers

    def training_epoch(self):
        """Seconds for every product of every batch of one epoch (run.py's floors' name)."""
        started = time.perf_counter()
        for b in self.batch_sizes:
            for size, (left, right), out in self.products:
                if size == b:
                    np.matmul(left, right, out=out)
        return time.perf_counter() - started


# ---- measuring and reporting ---------------------------------------------------------------------------

@dataclass
class Measurement:
    """Per repeat: seconds of every epoch; the test accuracy of the last repeat."""

    epochs: list = field(default_factory=list)
    accuracy: float = float("nan")

    @property
    def per_epoch(self):
        return [statistics.mean(seconds) for seconds in self.epochs]

    @property
    def median(self):
        return statistics.median(self.per_epoch)

    def median_repeat(self):
        """The epoch times of the repeat whose mean is the median (the lower median for an even count)."""
        order = sorted(range(len(self.epochs)), key=lambda index: self.per_epoch[index])
        return self.epochs[order[(len(order) - 1) // 2]]


def run_workload(workload, contenders, repeats, seed, quick):
    settings = QUICK[workload.name] if quick else {}
    epochs = settings.get("epochs", workload.epochs)
    data = workload_data(workload, settings.get("n_train", workload.n_train), seed)
    print(f"{workload.name}: {workload.description}" + (f" (quick: {settings})" if quick else ""), flush=True)
    floor = GemmFloor(workload, epoch_batch_sizes(len(data.X_train), workload.batch_size))
    results = {contender.name: Measurement() for contender in contenders}
    results["gemm floor"] = Measurement()
    small = Dataset(data.X_train[:2 * workload.batch_size], data.y_train[:2 * workload.batch_size],
                    data.X_test[:10], data.y_test[:10])
    for contender in contenders:  # first-call costs (thread pools, lazy imports) paid outside the timing
        contender.train(workload, small, 1, seed)
    for repeat in range(repeats):
        for contender in contenders:
            (model, seconds), _ = timed(contender.train, workload, data, epochs, seed)
            results[contender.name].epochs.append(seconds)
            results[contender.name].accuracy = float(np.mean(contender.predict(model, data.X_test) == data.y_test))
        results["gemm floor"].epochs.append([floor.training_epoch() for _ in range(epochs)])
        print(f"  repeat {repeat + 1}/{repeats}: " + ", ".join(f"{name} {m.per_epoch[-1]:.3f} s/epoch"
                                                             for name, m in results.items()), flush=True)
    print("  load average after: " + " ".join(f"{load:.2f}" for load in os.getloadavg()), flush=True)
    return results, len(data.X_train)


def print_tables(all_results):
    print("\n| workload | contender | s/epoch, median | first epoch | last epoch | images/s | test accuracy |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, (results, n_images) in all_results.items():
        for contender, m in results.items():
            epochs = m.median_repeat()
            accuracy = "" if contender == "gemm floor" else f"{m.accuracy:.4f}"
            print(f"| {name} | {contender} | {m.median:.3f} | {epochs[0]:.3f} | {epochs[-1]:.3f} | "
                  f"{n_images / m.median:,.0f} | {accuracy} |")
    print("\n| workload | numnet/torch | textbook/numnet | numnet/gemm floor | accuracy numnet - torch |")
    print("|---|---:|---:|---:|---:|")
    for name, (results, _) in all_results.items():
        numnet_result = results.get("numnet")
        if numnet_result is None:
            continue
        def ratio(top, bottom):
            return f"{results[top].median / results[bottom].median:.2f}" if top in results and bottom in results else ""
        gap = f"{numnet_result.accuracy - results['torch'].accuracy:+.4f}" if "torch" in results else ""
        print(f"| {name} | {ratio('numnet', 'torch')} | {ratio('textbook', 'numnet')} | "
              f"{ratio('numnet', 'gemm floor')} | {gap} |")
    print("\nTargets (issue 26): numnet/torch <= 1.3 on two threads and <= 1.1 on one, textbook/numnet >= 2, "
          "|accuracy numnet - torch| <= 0.01.")


# ---- what each trick buys (--tricks) ---------------------------------------------------------------------

def cpu_milliseconds(function, repeats=30):
    """Median CPU time of ``function()`` in ms (process time: other jobs on a shared machine barely move it)."""
    times = []
    for _ in range(repeats):
        started = time.process_time()
        function()
        times.append(time.process_time() - started)
    return 1e3 * statistics.median(times)


def _add_windows_always(pieces, kernel_size, image_size, stride):
    """numnet's col2im as it was before "col2im writes where windows never overlap": += for every window."""
    n, channels, out_h, out_w = pieces[0].shape
    images = np.zeros((n, channels, *image_size), dtype=pieces[0].dtype)
    for index, piece in enumerate(pieces):
        i, j = divmod(index, kernel_size[1])
        images[:, :, i:i + stride[0] * (out_h - 1) + 1:stride[0], j:j + stride[1] * (out_w - 1) + 1:stride[1]] += piece
    return images


def measure_tricks(seed=0):
    """A/B CPU times of the convolution tricks on SimpleConvNet's shapes (batch 100, 1x28x28, 30 filters
    5x5, pool 2x2 on 30x24x24), float32, one thread: benchmarks/NOTES.md, "Convolution"."""
    from numnet import conv
    from numnet.backend import sliding_windows

    rng = np.random.default_rng(seed)
    x = rng.random((100, 1, 28, 28), dtype=np.float32)
    W = (0.01 * rng.standard_normal((30, 1, 5, 5))).astype(np.float32)
    b = np.zeros(30, np.float32)
    delta = rng.standard_normal((100, 30, 24, 24), dtype=np.float32)
    book_columns = book_im2col(x, 5, 5)  # (n·24·24, 25)
    columns = sliding_windows(x, (5, 5), (1, 1)).reshape(100, 25, 576)  # (n, 25, 24·24)
    W_matrix = W.reshape(30, 25)

    def book_forward():
        np.ascontiguousarray((np.dot(book_columns, W_matrix.T) + b).reshape(100, 24, 24, 30).transpose(0, 3, 1, 2))

    def book_weight_gradient():
        np.dot(book_columns.T, delta.transpose(0, 2, 3, 1).reshape(-1, 30))

    pool_input = np.maximum(rng.standard_normal((100, 30, 24, 24), dtype=np.float32), 0)
    pool_grad = rng.standard_normal((100, 30, 12, 12), dtype=np.float32)
    book_pool, numnet_pool = BookPooling(2, 2, stride=2), numnet.MaxPool2D(2)

    def book_pooling():
        book_pool.forward(pool_input)
        book_pool.backward(pool_grad)

    def numnet_pooling():
        numnet_pool.forward(pool_input, training=True)
        numnet_pool.backward(pool_grad)

    pieces = [pool_grad] * 4
    rows = [
        ("im2col (the book's loop and layout / strided windows, per image)",
         lambda: book_im2col(x, 5, 5), lambda: sliding_windows(x, (5, 5), (1, 1)).reshape(100, 25, 576)),
        ("forward product + bias, output in NCHW (one big product / stacked per image)",
         book_forward, lambda: np.matmul(W_matrix, columns) + b[:, None]),
        ("dC/dW (one big product over a transposed copy / stacked per image, summed)",
         book_weight_gradient, lambda: np.matmul(delta.reshape(100, 30, 576), columns.transpose(0, 2, 1)).sum(0)),
        ("first layer's dC/dx (col2im, computed / skipped)",
         lambda: book_col2im(np.dot(delta.transpose(0, 2, 3, 1).reshape(-1, 30), W_matrix), x.shape, 5, 5),
         lambda: None),
        ("max pooling 2x2, forward + backward (argmax over im2col / shifted maxima)", book_pooling, numnet_pooling),
        ("col2im of pooling's gradient (+= / = where windows never overlap)",
         lambda: _add_windows_always(pieces, (2, 2), (24, 24), (2, 2)),
         lambda: conv._add_windows(pieces, (2, 2), (24, 24), (2, 2))),
    ]
    print("\n| step (before / after) | before, ms | after, ms | saved |")
    print("|---|---:|---:|---:|")
    for name, before, after in rows:
        before_ms, after_ms = cpu_milliseconds(before), cpu_milliseconds(after)
        print(f"| {name} | {before_ms:.2f} | {after_ms:.2f} | {before_ms - after_ms:.2f} |")


# ---- what the compiled convolution buys (--compiled) -------------------------------------------------------

#: Rounds of the paired A/B: the NumPy path and the compiled kernels alternate, and each keeps its minimum.
AB_ROUNDS = 9


def paired_minimum(before, after, rounds=AB_ROUNDS, calls=10, clock=time.thread_time):
    """(before, after): the minimum over ``rounds`` of the mean time in ms of ``calls`` calls, the two
    alternating in every round so that both see the same load (one process, thread CPU time by default)."""
    best = {before: math.inf, after: math.inf}
    for _ in range(rounds):
        for function in (before, after):
            started = clock()
            for _ in range(calls):
                function()
            best[function] = min(best[function], (clock() - started) / calls * 1e3)
    return best[before], best[after]


def _layer_pass(layer, x, grad_output, choice, *, backward):
    """One training forward pass of ``layer`` (and its backward, with ``backward``) under kernels ``choice``."""
    def run():
        with numnet.kernels.use_kernels(choice):
            layer.forward(x, training=True)
            if backward:
                layer.backward(grad_output)
    return run


def _layer_cases(seed):
    """(name, layer, input, dC/d output) on the workloads' shapes, float32, the layers bound to a network."""
    rng, cases = np.random.default_rng(seed), []
    for name, layer, shape, n in (
            ("SimpleConvNet conv 1->30 5x5 (first layer: no col2im), batch 100",
             numnet.Conv2D(1, 30, 5, activation="relu"), (1, 28, 28), 100),
            ("SimpleConvNet max pool 2x2 on 30x24x24, batch 100", numnet.MaxPool2D(2), (30, 24, 24), 100),
            ("digits conv 16->32 3x3 pad 1 (with col2im), batch 32",
             numnet.Conv2D(16, 32, 3, padding=1, activation="relu"), (16, 8, 8), 32),
            ("mnist-cnn conv 16->32 3x3 pad 1 (with col2im), batch 64",
             numnet.Conv2D(16, 32, 3, padding=1, activation="relu"), (16, 14, 14), 64),
            ("mnist-cnn max pool 2x2 on 16x28x28, batch 64", numnet.MaxPool2D(2), (16, 28, 28), 64)):
        if isinstance(layer, numnet.Conv2D):
            numnet.Network(layers=[layer, numnet.Flatten()], input_shape=shape, dtype="float32", seed=seed)
        x = np.maximum(rng.standard_normal((n, *shape), dtype=np.float32), 0)
        grad_output = rng.standard_normal((n, *layer.output_shape(shape)), dtype=np.float32)
        cases.append((name, layer, x, grad_output))
    return cases


def _convolution_kernels(on):
    """Turn numnet.conv's compiled kernels on or off, leaving Dense's and the optimiser's as they are: off is
    the engine before issue 26 (no kernels, and Conv2D's activation backward on images, not rows)."""
    from numnet import conv
    from numnet.layers import AffineLayer

    if not hasattr(_convolution_kernels, "compiled"):
        _convolution_kernels.compiled = (conv._compiled_kernels, conv.Conv2D.backward)
    compiled_kernels, backward = _convolution_kernels.compiled
    conv._compiled_kernels = compiled_kernels if on else (lambda array: None)
    conv.Conv2D.backward = backward if on else AffineLayer.backward


def measure_compiled(workload_names, seed=0, n_steps=10):
    """Paired A/B of numnet/_compiled_conv.py: each layer's pass with NUMNET_KERNELS=numpy and with the
    kernels, then whole training steps of each workload with the convolution's kernels off and on (the rest of
    the engine as it is); thread CPU time on one thread, wall time on more: benchmarks/NOTES.md, "compiled
    convolution (issue 26)"."""
    threads = numnet.kernels.kernel_threads()
    clock, unit = (time.thread_time, "CPU") if threads == 1 else (time.perf_counter, "wall")
    print(f"\n| layer pass, float32 ({threads} thread(s), {unit} ms) | NumPy path | compiled | ratio |")
    print("|---|---:|---:|---:|")
    for name, layer, x, grad_output in _layer_cases(seed):
        for direction, backward in (("forward", False), ("forward + backward", True)):
            before, after = paired_minimum(_layer_pass(layer, x, grad_output, "numpy", backward=backward),
                                           _layer_pass(layer, x, grad_output, "numba", backward=backward), clock=clock)
            print(f"| {name}, {direction} | {before:.2f} | {after:.2f} | {before / after:.2f} |", flush=True)
    print(f"\n| workload ({threads} thread(s), {unit} ms per step) | convolution kernels off | on | ratio |")
    print("|---|---:|---:|---:|")
    for name in workload_names:
        workload = WORKLOADS[name]
        data = workload_data(workload, 2_000, seed)
        X, y = data.X_train[:n_steps * workload.batch_size], data.y_train[:n_steps * workload.batch_size]
        networks = {on: NumnetContender().build(workload, seed) for on in (False, True)}

        def steps(on):
            def run():
                _convolution_kernels(on)
                networks[on].fit(X, y, epochs=1, batch_size=workload.batch_size, optimizer="adam",
                                 learning_rate=LEARNING_RATE, seed=seed, record_gradients=False)
            return run

        before, after = paired_minimum(steps(False), steps(True), calls=1, clock=clock)
        _convolution_kernels(True)
        print(f"| {name} | {before / n_steps:.2f} | {after / n_steps:.2f} | {before / after:.2f} |", flush=True)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--repeats", type=int, default=None, help="repeats per workload (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, fewer images and epochs (a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS and torch threads (default: what threadpoolctl reports for NumPy's BLAS)")
    parser.add_argument("--compiled", action="store_true",
                        help="instead: paired A/B of the compiled convolution kernels against the NumPy path, per "
                             "layer and per training step (CPU ms on one thread, wall ms on more)")
    parser.add_argument("--tricks", action="store_true",
                        help="instead: the CPU time of each convolution trick against what it replaced (NOTES.md)")
    arguments = parser.parse_args(argv)
    if arguments.repeats is None:
        arguments.repeats = 1 if arguments.quick else 3
    if arguments.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {arguments.repeats}")
    return arguments


def main(argv=None):
    arguments = parse_arguments(argv)
    if arguments.tricks:
        with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
            print(machine_lines(blas_info(), 1)[0])
            measure_tricks(arguments.seed)
        return None
    threads = arguments.threads or blas_info()["num_threads"]
    numnet.kernels.set_kernel_threads(threads)  # the compiled kernels' threads, like the BLAS's and torch's
    if arguments.compiled:
        with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
            print(machine_lines(blas_info(), threads)[0])
            measure_compiled(arguments.workloads, arguments.seed)
        return None
    with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
        import torch

        torch.set_num_threads(threads)
        for line in machine_lines(blas_info(), threads):
            print(line)
        print("load average at start (1, 5, 15 min): " + " ".join(f"{load:.2f}" for load in os.getloadavg()),
              flush=True)
        contenders = [make_contender(name) for name in arguments.contenders]
        all_results = {name: run_workload(WORKLOADS[name], contenders, arguments.repeats, arguments.seed,
                                          arguments.quick) for name in arguments.workloads}
    print_tables(all_results)
    return all_results


if __name__ == "__main__":
    main()
