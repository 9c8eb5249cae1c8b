"""Why numnet's test accuracy on the mnist workload trails PyTorch's (issue 26): one ingredient at a time.

    python benchmarks/mnist_accuracy.py --sklearn            # every variant, seeds 0 1 2 (run.py's), 5 epochs
    python benchmarks/mnist_accuracy.py --variants defaults "torch init on both" --seeds $(seq 0 19)
    python benchmarks/mnist_accuracy.py --checks             # the arithmetic at equal weights alone

The mnist workload of ``benchmarks/run.py`` (784-256-128-10 relu on 60,000 synthetic images, batch 128,
5 epochs, Adam at 1e-3, float32) is trained by numnet's ``fit`` and by PyTorch (``nn.Linear`` layers,
``torch.optim.Adam``, ``nn.CrossEntropyLoss``'s mean) over the same seeds, and each variant changes one
ingredient on both sides so that they differ in nothing else:

- initial weights: numnet's own ("auto": He normal before relu, Xavier uniform before the softmax, biases
  0), or PyTorch's ``nn.Linear`` init (U(±1/√fan_in) for W and b), copied value for value from the torch
  model of the same seed into numnet, or numnet's copied into torch;
- the batch order: ``torch.randperm``'s, or fit's (:func:`run.fit_batch_order`) on both;
- the last partial batch (60,000 = 468·128 + 96): kept on both (both libraries' default) or dropped on both;
- float64 on both instead of float32, and numnet's NumPy rules instead of its compiled kernels.

``--checks`` compares the arithmetic at equal weights: the loss and its gradient on one batch (is the
reduction the same mean?), Adam's update on the same gradients bit for bit against ``torch.optim.Adam``
(one step and a hundred), and the weights after a whole epoch from the same weights on the same batches.
Accuracy does not depend on the machine's load (one thread by default, so that runs repeat to the digit);
on the 2-core AMD machine under a load of 6 the first command took 15 minutes, ``--checks`` 25 seconds.
Results and what they mean: benchmarks/README.md, "mnist accuracy".
"""

import argparse
import statistics

import numpy as np
import threadpoolctl
import torch

import numnet
import numnet.kernels
from run import LEARNING_RATE, WORKLOADS, TorchContender, fit_batch_order, make_image_data

WORKLOAD = WORKLOADS["mnist"]
LAYER_SIZES = WORKLOAD.layer_sizes
BATCH_SIZE = WORKLOAD.batch_size


# ---- one side's recipe ----------------------------------------------------------------------------------

def numnet_side(init="numnet", drop_last=False, dtype="float32", kernels="auto"):
    """numnet's settings as a hashable tuple (results are kept per side, so a shared side trains once)."""
    return ("numnet", init, "fit", drop_last, dtype, kernels)


def torch_side(init="torch", order="randperm", drop_last=False, dtype="float32"):
    """PyTorch's settings, the same fields as :func:`numnet_side` (kernels: always "torch")."""
    return ("torch", init, order, drop_last, dtype, "torch")


#: name -> (numnet's side, torch's side): each changes one ingredient against "defaults" on both sides.
VARIANTS = {
    "defaults": (numnet_side(), torch_side()),
    "torch init on both": (numnet_side(init="torch"), torch_side()),
    "numnet init on both": (numnet_side(), torch_side(init="numnet")),
    "sklearn-scale init on both": (numnet_side(init="sklearn"), torch_side(init="sklearn")),
    "last partial batch dropped": (numnet_side(drop_last=True), torch_side(drop_last=True)),
    "fit's batch order on both": (numnet_side(), torch_side(order="fit")),
    "same weights, same batches": (numnet_side(init="torch"), torch_side(order="fit")),
    "float64 on both": (numnet_side(dtype="float64"), torch_side(dtype="float64")),
    "numnet's NumPy rules": (numnet_side(kernels="numpy"), torch_side()),
}


# ---- initial weights ------------------------------------------------------------------------------------

def torch_model(seed, dtype="float32"):
    """The benchmark's torch MLP (run.TorchContender.build: nn.Linear's own init from ``seed``)."""
    return TorchContender().build(LAYER_SIZES, seed).to(getattr(torch, dtype))


def numnet_model(seed, dtype="float32"):
    """The benchmark's numnet MLP (weight_init="auto", biases 0, drawn from ``seed``)."""
    return numnet.Network(list(LAYER_SIZES), activation="relu", output_activation="softmax", dtype=dtype,
                          seed=seed)


def torch_weights(model):
    """numnet's parameter names -> arrays of a torch MLP (W transposed to numnet's (n_in, n_out))."""
    linears = [module for module in model if isinstance(module, torch.nn.Linear)]
    weights = {}
    for index, linear in enumerate(linears):
        weights[f"dense_{index}.W"] = linear.weight.detach().numpy().T.copy()
        weights[f"dense_{index}.b"] = linear.bias.detach().numpy().copy()
    return weights


def set_torch_weights(model, weights):
    """Copy numnet-named arrays into a torch MLP."""
    linears = [module for module in model if isinstance(module, torch.nn.Linear)]
    with torch.no_grad():
        for index, linear in enumerate(linears):
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights[f"dense_{index}.W"].T)))
            linear.bias.copy_(torch.from_numpy(weights[f"dense_{index}.b"]))


def sklearn_weights(seed):
    """scikit-learn MLPClassifier's init for these sizes: W and b from U(±√(6/(fan_in + fan_out)))."""
    rng = np.random.default_rng(seed)
    weights = {}
    for index, (n_in, n_out) in enumerate(zip(LAYER_SIZES[:-1], LAYER_SIZES[1:])):
        bound = np.sqrt(6.0 / (n_in + n_out))
        weights[f"dense_{index}.W"] = rng.uniform(-bound, bound, (n_in, n_out))
        weights[f"dense_{index}.b"] = rng.uniform(-bound, bound, n_out)
    return weights


def initial_weights(init, seed, dtype):
    """The initial weights a side asks for, by numnet's names, in ``dtype``."""
    if init == "torch":
        weights = torch_weights(torch_model(seed))  # drawn in float32, as torch draws them by default
    elif init == "numnet":
        weights = {name: array.copy() for name, array in numnet_model(seed).parameters().items()}
    else:
        weights = sklearn_weights(seed)
    return {name: array.astype(dtype) for name, array in weights.items()}


# ---- training -------------------------------------------------------------------------------------------

def epoch_order(side, seed, epoch, n_samples, generator):
    """The sample order of one epoch, without the last partial batch when the side drops it."""
    _, _, order, drop_last, _, _ = side
    if order == "fit":
        indices = fit_batch_order(seed, epoch, n_samples)
    else:
        indices = torch.randperm(n_samples, generator=generator).numpy()
    return indices[:n_samples // BATCH_SIZE * BATCH_SIZE] if drop_last else indices


def train_numnet(side, data, seed, epochs):
    """numnet's fit, one call per epoch on the epoch's rows in order (shuffle=False), the optimiser kept
    between calls: the same batches as ``fit(shuffle=True, seed=seed)``, which keeps the partial batch."""
    _, init, _, _, dtype, kernels = side
    net = numnet_model(seed, dtype)
    net.set_parameters(initial_weights(init, seed, dtype))
    X, y = data.X_train.astype(dtype), data.y_train
    with numnet.kernels.use_kernels(kernels):
        for epoch in range(epochs):
            rows = epoch_order(side, seed, epoch, len(X), None)
            net.fit(X[rows], y[rows], epochs=1, batch_size=BATCH_SIZE, shuffle=False, record_gradients=False,
                    optimizer="adam" if epoch == 0 else None, learning_rate=LEARNING_RATE)
    return lambda X_test: net.predict_proba(X_test.astype(dtype))


def train_torch(side, data, seed, epochs):
    """The plain torch loop of run.train_torch, on the side's batches (randperm from ``seed`` as there)."""
    _, init, _, _, dtype, _ = side
    model = torch_model(seed, dtype)
    set_torch_weights(model, initial_weights(init, seed, dtype))
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_function = torch.nn.CrossEntropyLoss()
    X, y = torch.from_numpy(data.X_train.astype(dtype)), torch.from_numpy(data.y_train)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.from_numpy(epoch_order(side, seed, epoch, len(X), generator))
        for batch in order.split(BATCH_SIZE):
            optimizer.zero_grad(set_to_none=True)
            loss_function(model(X[batch]), y[batch]).backward()
            optimizer.step()

    def predict(X_test):
        with torch.inference_mode():
            return model(torch.from_numpy(X_test.astype(dtype))).numpy()

    return predict


def test_accuracy(side, data, seed, epochs):
    """The test accuracy of one side trained from ``seed`` (argmax of its outputs against the labels)."""
    train = train_numnet if side[0] == "numnet" else train_torch
    predict = train(side, data, seed, epochs)
    return float(np.mean(np.argmax(predict(data.X_test), axis=1) == data.y_test))


def difference_error(ours, theirs):
    """The standard error of the difference of two means over independent seeds (nan for one seed): the
    scale against which a gap between the means is told from the draw of the seeds."""
    if len(ours) < 2 or len(theirs) < 2:
        return float("nan")
    return (statistics.variance(ours) / len(ours) + statistics.variance(theirs) / len(theirs)) ** 0.5


def sklearn_accuracy(data, seed, epochs):
    """run.SklearnContender's MLPClassifier (its own init and order) trained from ``seed``."""
    from run import SklearnContender

    model, _ = SklearnContender().train(WORKLOAD, data, epochs, seed)
    return float(np.mean(model.predict(data.X_test) == data.y_test))


def run_variants(names, data, seeds, epochs, with_sklearn):
    """Print one table row per variant: each side's accuracy per seed and mean, and their difference."""
    cache = {}

    def accuracies(side):
        if side not in cache:
            cache[side] = [test_accuracy(side, data, seed, epochs) for seed in seeds]
        return cache[side]

    print("| variant | numnet per seed | torch per seed | numnet mean | torch mean | numnet - torch "
          "| its standard error |")
    print("|---|---|---|---:|---:|---:|---:|")
    for name in names:
        ours, theirs = (accuracies(side) for side in VARIANTS[name])
        print(f"| {name} | {' '.join(f'{a:.4f}' for a in ours)} | {' '.join(f'{a:.4f}' for a in theirs)} | "
              f"{statistics.mean(ours):.4f} | {statistics.mean(theirs):.4f} | "
              f"{statistics.mean(ours) - statistics.mean(theirs):+.4f} | {difference_error(ours, theirs):.4f} |",
              flush=True)
    if with_sklearn:
        scores = [sklearn_accuracy(data, seed, epochs) for seed in seeds]
        print(f"| sklearn (its defaults) | {' '.join(f'{a:.4f}' for a in scores)} | | "
              f"{statistics.mean(scores):.4f} | | |")


# ---- the arithmetic at equal weights --------------------------------------------------------------------

def compare_gradients(data, seed):
    """The loss and every gradient of numnet and torch on fit's first batch from the same weights."""
    weights = initial_weights("torch", seed, "float64")
    net, model = numnet_model(seed, "float64"), torch_model(seed, "float64")
    net.set_parameters(weights)
    set_torch_weights(model, weights)
    rows = fit_batch_order(seed, 0, len(data.X_train))[:BATCH_SIZE]
    X, y = data.X_train[rows].astype(np.float64), data.y_train[rows]
    loss = net.loss_and_gradients(net.prepare_inputs(X), net.prepare_targets(y))
    torch_loss = torch.nn.CrossEntropyLoss()(model(torch.from_numpy(X)), torch.from_numpy(y))
    torch_loss.backward()
    ours, theirs = net.gradients(), torch_gradients(model)
    worst = max(np.abs(ours[name] - theirs[name]).max() / np.abs(theirs[name]).max() for name in ours)
    ratio = statistics.mean(float(np.abs(ours[n]).sum() / np.abs(theirs[n]).sum()) for n in ours)
    print(f"loss on one batch, float64: numnet {loss:.12f}, torch {torch_loss.item():.12f}; gradients: "
          f"largest difference {worst:.1e} of the largest entry, mean |numnet| / |torch| {ratio:.6f}")


def torch_gradients(model):
    """numnet's names -> the .grad arrays of a torch MLP."""
    linears = [module for module in model if isinstance(module, torch.nn.Linear)]
    grads = {}
    for index, linear in enumerate(linears):
        grads[f"dense_{index}.W"] = linear.weight.grad.numpy().T
        grads[f"dense_{index}.b"] = linear.bias.grad.numpy()
    return grads


def compare_adam(steps, kernels, seed=0, size=100_000):
    """numnet's Adam against torch.optim.Adam in float32 on the same parameters and gradients: how many
    entries differ after ``steps`` steps, and by how many ulps at most."""
    rng = np.random.default_rng(seed)
    start = rng.standard_normal(size).astype(np.float32)
    gradients = [(rng.standard_normal(size) * 10.0 ** rng.uniform(-6, 0)).astype(np.float32) for _ in range(steps)]
    ours = start.copy()
    optimizer = numnet.optimizers.Adam(learning_rate=LEARNING_RATE)
    optimizer.init(ours)
    theirs = torch.from_numpy(start.copy()).requires_grad_()
    reference = torch.optim.Adam([theirs], lr=LEARNING_RATE)
    with numnet.kernels.use_kernels(kernels):
        for gradient in gradients:
            optimizer.step(ours, gradient)
            theirs.grad = torch.from_numpy(gradient)
            reference.step()
    theirs = theirs.detach().numpy()
    ulps = np.abs(ours.view(np.int32).astype(np.int64) - theirs.view(np.int32).astype(np.int64))
    moved = np.abs(theirs - start)
    print(f"Adam, {steps} step(s), numnet kernels={kernels}: {np.count_nonzero(ulps)} of {size} entries differ, "
          f"at most {ulps.max()} ulp; largest difference {np.abs(ours - theirs).max():.2e} against a mean "
          f"move of {moved.mean():.2e}")


def compare_epoch(data, seed):
    """The weights and test accuracy of numnet and torch after one epoch from the same weights on the same
    batches, in float32."""
    side = ("numnet", "torch", "fit", False, "float32", "auto")
    weights = initial_weights("torch", seed, "float32")
    net, model = numnet_model(seed), torch_model(seed)
    net.set_parameters(weights)
    set_torch_weights(model, weights)
    rows = epoch_order(side, seed, 0, len(data.X_train), None)
    net.fit(data.X_train[rows], data.y_train[rows], epochs=1, batch_size=BATCH_SIZE, shuffle=False,
            record_gradients=False, optimizer="adam", learning_rate=LEARNING_RATE)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    for batch in torch.from_numpy(rows).split(BATCH_SIZE):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.CrossEntropyLoss()(model(X[batch]), y[batch]).backward()
        optimizer.step()
    ours, theirs = net.parameters(), torch_weights(model)
    for name in ours:
        change = np.abs(theirs[name] - weights[name]).mean()
        print(f"  after one epoch, {name}: mean |numnet - torch| {np.abs(ours[name] - theirs[name]).mean():.2e}, "
              f"mean |torch's change| {change:.2e}")
    with torch.inference_mode():
        torch_predictions = model(torch.from_numpy(data.X_test)).argmax(dim=1).numpy()
    numnet_predictions = net.predict(data.X_test)
    print(f"  test accuracy after one epoch: numnet {np.mean(numnet_predictions == data.y_test):.4f}, torch "
          f"{np.mean(torch_predictions == data.y_test):.4f}; predictions that differ: "
          f"{np.count_nonzero(numnet_predictions != torch_predictions)} of {len(data.y_test)}")


def run_checks(data, seed):
    compare_gradients(data, seed)
    for kernels in ("numpy", "auto"):
        for steps in (1, 100):
            compare_adam(steps, kernels)
    compare_epoch(data, seed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="one training run per seed (weights and order); the data are always seed 0's")
    parser.add_argument("--epochs", type=int, default=WORKLOAD.epochs)
    parser.add_argument("--sklearn", action="store_true", help="also train MLPClassifier over the seeds")
    parser.add_argument("--checks", action="store_true", help="the gradient and Adam comparisons, no variants")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (accuracy does not care)")
    arguments = parser.parse_args(argv)
    torch.set_num_threads(arguments.threads)
    data = make_image_data(0)
    with threadpoolctl.threadpool_limits(arguments.threads):
        if arguments.checks:
            run_checks(data, arguments.seeds[0])
        else:
            run_variants(arguments.variants, data, arguments.seeds, arguments.epochs, arguments.sklearn)


if __name__ == "__main__":
    main()
