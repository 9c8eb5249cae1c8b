"""Tests of numnet.step: the one training step that fit, the estimators and the learning-rate finder share.

Oracles: PyTorch autograd and torch.optim.SGD on the same weights (float64), and closed forms."""

import numpy as np
import pytest

import numnet
from numnet.step import EpochLoss, Guard, TrainingStep, clip_by_global_norm

#: float64 products of a few terms: the same values up to a few roundings.
TORCH_TOLERANCE = 1e-12


def regression_network():
    network = numnet.Network([3, 4, 2], activation="tanh", dtype="float64", seed=0)
    network.optimizer = numnet.optimizers.SGD(learning_rate=0.1)
    return network


def batch(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.normal(size=(n, 2)), rng.uniform(0.5, 2.0, size=n)


def torch_step(network, X, Y, weights, batch_scaled_l2):
    """The loss and the weights after one SGD step in PyTorch: ½·Σw‖a - y‖²/Σw + ½·(alpha/Σw)·Σ‖W‖²."""
    torch = pytest.importorskip("torch")
    parameters = [torch.tensor(np.array(layer.params[key]), requires_grad=True)
                  for layer in network.layers for key in ("W", "b")]
    W0, b0, W1, b1 = parameters
    a = torch.tanh(torch.tensor(X) @ W0 + b0) @ W1 + b1
    w = torch.tensor(weights)
    data = (w * 0.5 * ((a - torch.tensor(Y)) ** 2).sum(dim=1)).sum() / w.sum()
    loss = data + 0.5 * (batch_scaled_l2 / w.sum()) * ((W0 ** 2).sum() + (W1 ** 2).sum())
    optimizer = torch.optim.SGD(parameters, lr=0.1)
    loss.backward()
    optimizer.step()
    return float(loss.detach()), [p.detach().numpy() for p in parameters]


def test_a_step_with_a_batch_scaled_penalty_is_torchs_loss_and_sgd_update():
    network = regression_network()
    X, Y, weights = batch()
    expected_loss, expected_parameters = torch_step(network, X, Y, weights, batch_scaled_l2=0.3)
    loss = TrainingStep(network, batch_scaled_l2=0.3)(X, Y, network.prepare_sample_weights(weights, len(X)))
    assert loss == pytest.approx(expected_loss, rel=TORCH_TOLERANCE)
    actual = [layer.params[key] for layer in network.layers for key in ("W", "b")]
    for value, expected in zip(actual, expected_parameters, strict=True):
        np.testing.assert_allclose(value, expected, rtol=TORCH_TOLERANCE, atol=TORCH_TOLERANCE)
    assert network.iterations_trained == 1 and network.l2 == 0.0  # the step's penalty is not the network's


class Refuse(Guard):
    def __init__(self):
        self.seen = []

    def approve(self, loss):
        self.seen.append(loss)
        return False


def test_a_refused_update_leaves_the_weights_and_counters_and_returns_none():
    network = regression_network()
    before = network.flat_parameters.copy()
    guard = Refuse()
    X, Y, _ = batch()
    assert TrainingStep(network, guard=guard)(X, Y) is None
    assert len(guard.seen) == 1 and np.isfinite(guard.seen[0])
    np.testing.assert_array_equal(network.flat_parameters, before)
    assert network.iterations_trained == 0


class Keep(Guard):
    def __init__(self, network):
        self.buffer = np.empty_like(network.flat_parameters)
        self.calls = []

    def previous_parameters(self):
        return self.buffer

    def after_update(self, loss, previous):
        self.calls.append((loss, previous))


def test_the_guard_receives_the_weights_before_the_update():
    network = regression_network()
    before = network.flat_parameters.copy()
    guard = Keep(network)
    X, Y, _ = batch()
    loss = TrainingStep(network, guard=guard)(X, Y)
    assert guard.calls == [(loss, guard.buffer)]
    np.testing.assert_array_equal(guard.buffer, before)
    assert not np.array_equal(network.flat_parameters, before)


def test_the_epoch_loss_weights_each_batch_by_what_it_counts():
    epoch = EpochLoss()
    assert epoch.mean == 0.0
    for loss, count in ((1.0, 3), (4.0, 1)):
        epoch.add(loss, count)
    assert epoch.mean == pytest.approx((1.0 * 3 + 4.0 * 1) / 4)  # 1.75, not the plain mean 2.5


@pytest.mark.parametrize("max_norm", [0.05, 1.0, 1e6])
def test_clipping_by_the_global_norm_is_torchs_clip_grad_norm(max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    pieces = [rng.normal(size=shape) for shape in ((3, 4), (4,), (4, 2))]
    flat = np.concatenate([piece.ravel() for piece in pieces])
    tensors = [torch.tensor(piece, requires_grad=True) for piece in pieces]
    for tensor, piece in zip(tensors, pieces):
        tensor.grad = torch.tensor(piece)
    expected_norm = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
    norm = clip_by_global_norm(flat, max_norm)
    assert norm == pytest.approx(expected_norm, rel=TORCH_TOLERANCE)
    expected = np.concatenate([tensor.grad.numpy().ravel() for tensor in tensors])
    np.testing.assert_allclose(flat, expected, rtol=TORCH_TOLERANCE, atol=0)


def test_fit_with_clip_norm_takes_torchs_clipped_sgd_steps_and_records_how_often_it_clipped():
    torch = pytest.importorskip("torch")
    X, Y, _ = batch(n=8, seed=1)
    network = regression_network()
    W0, b0, W1, b1 = [torch.tensor(np.array(layer.params[key]), requires_grad=True)
                      for layer in network.layers for key in ("W", "b")]
    optimizer = torch.optim.SGD([W0, b0, W1, b1], lr=0.1)
    for _ in range(3):  # full batches: the same three steps on both sides
        optimizer.zero_grad()
        a = torch.tanh(torch.tensor(X) @ W0 + b0) @ W1 + b1
        (0.5 * ((a - torch.tensor(Y)) ** 2).sum(dim=1).mean()).backward()
        torch.nn.utils.clip_grad_norm_([W0, b0, W1, b1], 0.01)
        optimizer.step()
    history = network.fit(X, Y, epochs=3, batch_size=None, optimizer=numnet.optimizers.SGD(learning_rate=0.1),
                          clip_norm=0.01, seed=0)
    expected = [p.detach().numpy() for p in (W0, b0, W1, b1)]
    actual = [layer.params[key] for layer in network.layers for key in ("W", "b")]
    for value, reference in zip(actual, expected, strict=True):
        np.testing.assert_allclose(value, reference, rtol=TORCH_TOLERANCE, atol=TORCH_TOLERANCE)
    assert history.clipped_fraction == [1.0, 1.0, 1.0]  # a norm of 0.01 is below every gradient's here
    unclipped = regression_network().fit(X, Y, epochs=2, batch_size=4, clip_norm=1e9, seed=0)
    assert unclipped.clipped_fraction == [0.0, 0.0]
    assert regression_network().fit(X, Y, epochs=1, seed=0).clipped_fraction == []  # no clipping asked
