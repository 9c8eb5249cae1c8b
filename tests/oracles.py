"""Shared reference helpers for the engine tests: independent oracles, never numnet's own code path.

The PyTorch oracle rebuilds a numnet Network as a float64 ``torch.nn.Sequential`` with the same weights and
computes the output, the loss (with the ½·λ·ΣW² term) and every parameter gradient by autograd. It reads
only the network's architecture (layer sizes, activation and loss names) and its weights; everything it
computes comes from PyTorch.

The array helpers read and write a network's internal arrays (parameters, gradients, caches, optimiser
state) on whichever backend it runs ($NUMNET_BACKEND): a test snapshots them as NumPy copies, asks for their
NumPy dtype, and writes hand-worked values into them, without the NumPy-only methods (``copy``, ``astype``,
``tobytes``) that other array libraries lack.

The data builders write the reference experiments' data sets with NumPy exactly as the "Specification"
sections of docs/tutorials/e01-noisy-line.md to e03-spiral.md state them, so the experiment tests do not
depend on numnet.datasets.
"""

import contextlib
from dataclasses import dataclass

import numpy as np

from numnet.backend import get_backend, namespace, to_numpy

#: Denominator floor of a relative difference, so that two all-zero arrays compare as equal.
TINY = 1e-300

def max_relative_difference(actual, expected):
    """max |actual - expected| / max(max |expected|, TINY): the error relative to the array's scale.

    Relative to the largest entry rather than entry by entry, because float64 rounding in a sum of
    products is proportional to the size of the terms, not to the size of a result that cancels to ~0.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shapes differ: {actual.shape} vs {expected.shape}"
    scale = max(float(np.max(np.abs(expected), initial=0.0)), TINY)
    return float(np.max(np.abs(actual - expected), initial=0.0)) / scale

# ---------------------------------------------------------------------------------------------------------
# A network's internal arrays on any backend
# ---------------------------------------------------------------------------------------------------------

def as_numpy(array):
    """A NumPy copy of ``array`` from any backend: a snapshot that later in-place updates cannot change."""
    return np.array(to_numpy(array), copy=True)

def numpy_dtype(array):
    """The NumPy dtype of ``array`` from any backend (array_api_strict's dtypes compare unequal to NumPy's)."""
    return to_numpy(array).dtype

def backend_array(values, like):
    """``values`` (a list or NumPy array) as an array of ``like``'s library and dtype."""
    return namespace(like).asarray(np.asarray(values, dtype=numpy_dtype(like)))

def on_backend(values, dtype=np.float64):
    """NumPy ``values`` on the backend the suite runs ($NUMNET_BACKEND)."""
    return get_backend().asarray(values, dtype)


def built(layer, rng, dtype=np.float64):
    """``layer`` with its parameters bound on the suite's backend and drawn by its own ``initialize``."""
    shapes = layer.parameter_shapes()
    layer.bind({key: on_backend(np.zeros(shape), dtype) for key, shape in shapes.items()},
               {key: on_backend(np.zeros(shape), dtype) for key, shape in shapes.items()})
    layer.initialize(rng)
    return layer


@contextlib.contextmanager
def registered(layer_class):
    """``layer_class`` registered (so that models holding it save and load) for the ``with`` block only."""
    from numnet.layers import LAYERS, register_layer

    register_layer(layer_class)
    try:
        yield layer_class
    finally:
        del LAYERS[layer_class.kind]


def assign(view, values):
    """Write ``values`` (a list or NumPy array, broadcast to ``view``'s shape) into the backend array ``view``."""
    view[...] = backend_array(values, like=view)

# ---------------------------------------------------------------------------------------------------------
# PyTorch float64 twin of a numnet Network
# ---------------------------------------------------------------------------------------------------------

@dataclass
class TorchReference:
    """What PyTorch computes for a network on (X, y): output (n, k), scalar loss, gradients by numnet name."""

    output: np.ndarray
    loss: float
    gradients: dict

def torch_activation(activation):
    """The torch module for a numnet activation, chosen by its name (and slope for leaky relu)."""
    import torch

    name = activation.name
    if name == "leaky_relu":
        return torch.nn.LeakyReLU(negative_slope=activation.negative_slope)
    modules = {
        "sigmoid": torch.nn.Sigmoid,
        "tanh": torch.nn.Tanh,
        "relu": torch.nn.ReLU,
        "linear": torch.nn.Identity,
        "softmax": lambda: torch.nn.Softmax(dim=1),
        "exp": _TorchExp,
    }
    return modules[name]()

def _TorchExp():  # noqa: N802 - a module factory, like the classes beside it
    """e^z as a torch module (torch.nn has none)."""
    import torch

    class Exp(torch.nn.Module):
        def forward(self, z):
            return torch.exp(z)

    return Exp()

def torch_linear_layers(network):
    """One float64 ``torch.nn.Linear`` per numnet layer, holding the same W (transposed) and b."""
    import torch

    linears = []
    for layer in network.layers:
        linear = torch.nn.Linear(layer.n_inputs, layer.n_outputs, dtype=torch.float64)
        with torch.no_grad():
            # numnet stores W as (n_in, n_out) for x @ W; torch stores (n_out, n_in) for x @ weight.T
            linear.weight.copy_(torch.tensor(np.asarray(layer.params["W"], dtype=np.float64).T))
            linear.bias.copy_(torch.tensor(np.asarray(layer.params["b"], dtype=np.float64)))
        linears.append(linear)
    return linears

def torch_reference(network, X, y, sample_weight=None):
    """PyTorch's output, loss and gradients for ``network`` on (X, y), all in float64.

    Parameters
    ----------
    network : numnet.Network
    X : array_like, shape (n_samples, n_inputs)
    y : array_like
        Class indices (n_samples,) for softmax cross-entropy; 0/1 or real targets otherwise.
    sample_weight : array_like, shape (n_samples,), optional
        The data term is then PyTorch's unreduced losses' weighted mean, Σ w_i C_i / Σ w_i.
    """
    import torch

    linears = torch_linear_layers(network)
    activations = [torch_activation(layer.activation) for layer in network.layers]
    a = torch.tensor(np.asarray(X, dtype=np.float64))
    for linear, activation in zip(linears[:-1], activations[:-1]):
        a = activation(linear(a))
    logits = linears[-1](a)
    output = activations[-1](logits)
    data_term = _torch_data_loss(network.loss.name, logits, output, y, sample_weight)
    loss = data_term + _torch_l2_term(network.l2, linears)
    loss.backward()
    gradients = {}
    for layer, linear in zip(network.layers, linears):
        gradients[f"{layer.name}.W"] = linear.weight.grad.numpy().T.copy()
        gradients[f"{layer.name}.b"] = linear.bias.grad.numpy().copy()
    return TorchReference(output.detach().numpy().copy(), float(loss.item()), gradients)

def _torch_data_loss(loss_name, logits, output, y, sample_weight=None):
    """The mean of the per-sample losses, or their weighted mean Σ w_i C_i / Σ w_i."""
    import torch

    per_sample = _torch_sample_losses(loss_name, logits, output, y)
    if sample_weight is None:
        return per_sample.mean()
    weights = torch.tensor(np.asarray(sample_weight, dtype=np.float64))
    return (weights * per_sample).sum() / weights.sum()

def _torch_sample_losses(loss_name, logits, output, y):
    """Each sample's loss C_i, shape (n_samples,), from PyTorch's unreduced losses summed over outputs."""
    import torch
    import torch.nn.functional as functional

    n_samples = logits.shape[0]
    if loss_name == "softmax_cross_entropy":
        return functional.cross_entropy(logits, torch.tensor(np.asarray(y, dtype=np.int64)), reduction="none")
    target = torch.tensor(np.asarray(y, dtype=np.float64).reshape(n_samples, -1))
    if loss_name == "binary_cross_entropy":
        # summed over outputs (numnet's convention for several sigmoid outputs)
        return functional.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(dim=1)
    if loss_name == "mse":
        # C_i = ½ ||a_i - y_i||², the ½ convention
        return 0.5 * ((output - target) ** 2).sum(dim=1)
    if loss_name == "poisson":
        # PoissonNLLLoss (μ - y log μ) plus the deviance's z-free term y log y - y
        nll = functional.poisson_nll_loss(output, target, log_input=False, reduction="none", eps=0.0)
        return (nll + torch.special.xlogy(target, target) - target).sum(dim=1)
    raise ValueError(f"no torch oracle for loss {loss_name!r}")

def _torch_l2_term(l2, linears):
    return 0.5 * l2 * sum((linear.weight ** 2).sum() for linear in linears)

# ---------------------------------------------------------------------------------------------------------
# Reference experiments' data, built exactly as docs/tutorials/e0N-*.md, "Specification", states it
# ---------------------------------------------------------------------------------------------------------

def noisy_line(n_samples=10, noise=0.2, seed=0):
    """E1: x evenly spaced in [-1, 1], y = x + N(0, noise²); both of shape (n_samples, 1), float64."""
    rng = np.random.default_rng(seed)
    X = np.linspace(-1.0, 1.0, n_samples).reshape(-1, 1)
    return X, X + rng.normal(0.0, noise, size=X.shape)

def xor():
    """E2: the four XOR points (4, 2) and their 0/1 labels (4, 1)."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return X, np.array([[0.0], [1.0], [1.0], [0.0]])

def spiral(n_per_class=100, n_classes=3, noise=0.2, seed=0):
    """E3: per class j, r = linspace(0, 1, N), t = linspace(4j, 4(j+1), N) + N(0, noise²), x = (r sin t, r cos t).

    Returns X (N·K, 2) float64 and class indices y (N·K,) int64.
    """
    rng = np.random.default_rng(seed)
    radius = np.linspace(0.0, 1.0, n_per_class)
    arms = []
    for j in range(n_classes):
        angle = np.linspace(4.0 * j, 4.0 * (j + 1), n_per_class) + noise * rng.standard_normal(n_per_class)
        arms.append(np.column_stack([radius * np.sin(angle), radius * np.cos(angle)]))
    return np.concatenate(arms), np.repeat(np.arange(n_classes), n_per_class)


# ---------------------------------------------------------------------------------------------------------
# PyTorch float64 twin of any stack of Dense, Activation, BatchNorm, Dropout, Conv2D, MaxPool2D and Flatten
# ---------------------------------------------------------------------------------------------------------

def dropout_masks(network, X, seed):
    """The keep-masks a training pass of ``network`` on X draws from ``default_rng(seed)``: for each Dropout
    layer in order, uniform float32 draws of the layer's input shape, kept where >= rate (inverted dropout,
    as numnet.layers.Dropout documents it and docs/tutorials/e11-overfitting.md explains it). Data for the
    oracle, drawn here with NumPy alone."""
    rng = np.random.default_rng(seed)
    masks, shape = [], (len(X),) + tuple(network.input_shape)
    for layer, output_shape in zip(network.layers, network.output_shapes):
        if type(layer).__name__ == "Dropout" and layer.rate > 0:
            masks.append(rng.random(shape, dtype=np.float32) >= layer.rate)
        shape = (len(X),) + tuple(output_shape)
    return masks

def torch_stack_reference(network, X, y, *, dropout_seed=None, steps=0, learning_rate=0.1):
    """PyTorch's output, loss and gradients (float64) for a training pass of ``network``, which may hold
    Dense, Activation, BatchNorm, Dropout, Conv2D, MaxPool2D and Flatten layers, rebuilt module by module
    (torch.nn.Conv2d, MaxPool2d, Flatten for the image layers) with the same parameters, running statistics
    and Dropout masks (from ``dropout_seed``, see :func:`dropout_masks`).

    With ``steps`` > 0, first takes that many plain SGD steps (torch.optim.SGD) on the same batch, each with
    the same masks, and also returns the parameters and running statistics reached, by numnet name.
    """
    import torch

    modules = [_torch_module(layer) for layer in network.layers]
    fused = network.loss.fused_activation is not None
    masks = dropout_masks(network, X, dropout_seed) if dropout_seed is not None else []
    parameters = [p for module in modules for p in module.parameters()]
    optimizer = torch.optim.SGD(parameters, lr=learning_rate) if steps else None
    for _ in range(steps):
        optimizer.zero_grad()
        output, logits = _torch_stack_forward(network, modules, X, masks, fused)
        _torch_data_loss(network.loss.name, logits, output, y).backward()
        optimizer.step()
    for module in modules:
        module.zero_grad()
    output, logits = _torch_stack_forward(network, modules, X, masks, fused)
    loss = _torch_data_loss(network.loss.name, logits, output, y)
    loss.backward()
    reference = TorchReference(output.detach().numpy().copy(), float(loss.item()), {})
    reference.parameters, reference.state = {}, {}
    for layer, module in zip(network.layers, modules):
        for key, tensor in _torch_named_tensors(layer, module).items():
            target = reference.state if key.startswith("running") else reference.parameters
            # numnet's Dense holds W as (n_in, n_out), torch.nn.Linear as (n_out, n_in); Conv2D's W is torch's
            transposed = key == "W" and type(layer).__name__ == "Dense"
            value = tensor.detach().numpy().copy()
            target[f"{layer.name}.{key}"] = value.T.copy() if transposed else value
            if tensor.grad is not None:
                gradient = tensor.grad.numpy()
                reference.gradients[f"{layer.name}.{key}"] = gradient.T.copy() if transposed else gradient.copy()
    return reference

def _torch_module(layer):
    import torch

    kind = type(layer).__name__
    if kind == "Dense":
        linear = torch.nn.Linear(layer.n_inputs, layer.n_outputs, bias=layer.bias, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(np.asarray(layer.params["W"], dtype=np.float64).T))
            if layer.bias:
                linear.bias.copy_(torch.tensor(np.asarray(layer.params["b"], dtype=np.float64)))
        return torch.nn.ModuleDict({"linear": linear, "activation": torch_activation(layer.activation)})
    if kind == "Activation":
        return torch.nn.ModuleDict({"activation": torch_activation(layer.activation)})
    if kind == "BatchNorm":
        norm = torch.nn.BatchNorm1d(layer.n_features, eps=layer.eps, momentum=layer.momentum, dtype=torch.float64)
        with torch.no_grad():
            norm.weight.copy_(torch.tensor(np.asarray(layer.params["gamma"], dtype=np.float64)))
            norm.bias.copy_(torch.tensor(np.asarray(layer.params["beta"], dtype=np.float64)))
            norm.running_mean.copy_(torch.tensor(np.asarray(layer.state["running_mean"], dtype=np.float64)))
            norm.running_var.copy_(torch.tensor(np.asarray(layer.state["running_var"], dtype=np.float64)))
        norm.train()
        return torch.nn.ModuleDict({"norm": norm})
    if kind == "Dropout":
        return torch.nn.ModuleDict({})
    if kind == "Conv2D":
        conv = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                               padding=layer.padding, bias=layer.bias, dtype=torch.float64)
        with torch.no_grad():
            conv.weight.copy_(torch.tensor(np.asarray(layer.params["W"], dtype=np.float64)))
            if layer.bias:
                conv.bias.copy_(torch.tensor(np.asarray(layer.params["b"], dtype=np.float64)))
        return torch.nn.ModuleDict({"conv": conv, "activation": torch_activation(layer.activation)})
    if kind == "MaxPool2D":
        return torch.nn.ModuleDict({"pool": torch.nn.MaxPool2d(layer.pool_size, stride=layer.stride,
                                                               padding=layer.padding)})
    if kind == "Flatten":
        return torch.nn.ModuleDict({"flatten": torch.nn.Flatten()})
    raise ValueError(f"no torch oracle for layer {kind}")

def _torch_stack_forward(network, modules, X, masks, fused):
    """(output, logits) of the torch twin; BatchNorm1d takes (n, C, L), so images are flattened per channel."""
    import torch

    a, logits, masks = torch.tensor(np.asarray(X, dtype=np.float64)), None, list(masks)
    for index, (layer, module) in enumerate(zip(network.layers, modules)):
        last = index == len(network.layers) - 1
        kind = type(layer).__name__
        if kind in ("Dense", "Conv2D"):
            z = module["linear" if kind == "Dense" else "conv"](a)
            logits, a = z, module["activation"](z)
        elif kind == "MaxPool2D":
            a = module["pool"](a)
        elif kind == "Flatten":
            a = module["flatten"](a)
        elif kind == "Activation":
            logits, a = a, module["activation"](a)
        elif kind == "BatchNorm":
            shape = a.shape
            a = module["norm"](a.reshape(shape[0], shape[1], -1) if a.ndim > 2 else a).reshape(shape)
        elif kind == "Dropout" and layer.rate > 0:
            a = a * torch.tensor(masks.pop(0).astype(np.float64)) / (1.0 - layer.rate)
        if not last:
            logits = None
    return a, (logits if fused else a)

def _torch_named_tensors(layer, module):
    kind = type(layer).__name__
    if kind == "Dense":
        tensors = {"W": module["linear"].weight, "b": module["linear"].bias}
        return {key: tensor for key, tensor in tensors.items() if tensor is not None}
    if kind == "Conv2D":
        tensors = {"W": module["conv"].weight, "b": module["conv"].bias}
        return {key: tensor for key, tensor in tensors.items() if tensor is not None}
    if kind == "BatchNorm":
        norm = module["norm"]
        return {"gamma": norm.weight, "beta": norm.bias, "running_mean": norm.running_mean,
                "running_var": norm.running_var}
    return {}
