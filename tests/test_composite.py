"""Layers made of layers (numnet.composite): Sequential and Residual against PyTorch, and a model of one's
own, written as the sequel book writes its models, trained, checked, saved and resumed through numnet's
machinery with no edit to numnet. Oracles: PyTorch autograd in float64, central differences."""

import numpy as np
import pytest

import numnet
from oracles import registered

#: float64 products of a few dozen terms, as in the other PyTorch comparisons.
TORCH_TOLERANCE = 1e-10


def data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), np.arange(n) % 2


def residual_network(seed=0, **options):
    return numnet.Network(layers=[numnet.Dense(3, 4, "tanh"),
                                  numnet.Residual(numnet.Dense(4, 6, "relu"), numnet.Dense(6, 4)),
                                  numnet.Sequential(numnet.Dense(4, 5, "tanh"), numnet.Residual(numnet.Dense(5, 5, "tanh"))),
                                  numnet.Dense(5, 2, "softmax")], dtype="float64", seed=seed, **options)


def test_residual_and_sequential_equal_the_same_blocks_in_pytorch():
    torch = pytest.importorskip("torch")
    X, y = data()
    network = residual_network()
    parameters = network.parameters()
    weights = {name: torch.tensor(np.array(value), requires_grad=True) for name, value in parameters.items()}

    def dense(prefix, x):
        return x @ weights[f"{prefix}.W"] + weights[f"{prefix}.b"]

    a = torch.tanh(dense("dense_0", torch.tensor(X)))
    a = a + dense("residual_1.dense_1", torch.relu(dense("residual_1.dense_0", a)))
    a = torch.tanh(dense("sequential_2.dense_0", a))
    a = a + torch.tanh(dense("sequential_2.residual_1.dense_0", a))
    logits = dense("dense_3", a)
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor(y))
    expected.backward()
    loss = network.loss_and_gradients(network.prepare_inputs(X), network.prepare_targets(y))
    assert loss == pytest.approx(float(expected.detach()), rel=TORCH_TOLERANCE)
    for name, gradient in network.gradients().items():
        np.testing.assert_allclose(gradient, weights[name].grad.numpy(), rtol=TORCH_TOLERANCE, atol=1e-14,
                                   err_msg=name)


def test_nested_composites_pass_the_gradient_check_and_show_their_nesting():
    X, y = data()
    network = residual_network()
    assert max(numnet.gradient_check(network, X, y).values()) < 1e-6
    lines = network.summary().splitlines()
    assert [line.split()[0] for line in lines[3:11]] == ["dense_0", "residual_1", "dense_0", "dense_1",
                                                          "sequential_2", "dense_0", "residual_1", "dense_0"]
    assert lines[9].startswith("  residual_1") and lines[10].startswith("    dense_0")  # indented by depth


@pytest.mark.parametrize("optimizer", sorted(numnet.OPTIMIZERS))
def test_every_optimiser_trains_the_layers_inside_a_composite(optimizer):
    X, y = data(n=24)
    network = residual_network(l2=1e-3)
    inside = np.array(network.parameters()["sequential_2.residual_1.dense_0.W"])
    history = network.fit(X, y, epochs=20, batch_size=8, optimizer=optimizer, seed=0)
    assert not np.array_equal(network.parameters()["sequential_2.residual_1.dense_0.W"], inside)
    assert history.epoch_loss[-1] < history.epoch_loss[0]
    assert "sequential_2.residual_1.dense_0.W" in network.weight_names()  # L2 reaches it too


def test_a_composite_model_saves_copies_and_resumes_bit_for_bit(tmp_path):
    X, y = data(n=24)
    straight = residual_network()
    straight.fit(X, y, epochs=4, batch_size=8, seed=0)
    first = residual_network()
    first.fit(X, y, epochs=2, batch_size=8, seed=0)
    numnet.save_model(first, tmp_path / "model.npz")
    resumed = numnet.load_model(tmp_path / "model.npz")
    np.testing.assert_array_equal(resumed.predict_proba(X), first.predict_proba(X))
    np.testing.assert_array_equal(first.copy().predict_proba(X), first.predict_proba(X))
    resumed.fit(X, y, epochs=2, batch_size=8)
    np.testing.assert_array_equal(resumed.flat_parameters, straight.flat_parameters)


def test_a_residual_block_must_give_the_shape_it_takes():
    with pytest.raises(ValueError, match=r"adds its input to what its layers give.*\(4,\).*\(5,\)"):
        numnet.Network(layers=[numnet.Dense(3, 4), numnet.Residual(numnet.Dense(4, 5)), numnet.Dense(5, 2)])


# ---------------------------------------------------------------------------------------------------------
# A model of one's own: a composite layer with its forward and backward written in plain code
# ---------------------------------------------------------------------------------------------------------


class Highway(numnet.CompositeLayer):
    """y = g ⊙ h + (1 − g) ⊙ x with h = tanh(x·Wh + bh), g = σ(x·Wg + bg): two Dense children, combined by
    hand, as the book writes a model from its layers (Srivastava et al. 2015)."""

    def __init__(self, size=None, *layers, name=None):
        if not layers:
            layers = (numnet.Dense(size, size, "tanh", name="transform"),
                      numnet.Dense(size, size, "sigmoid", name="gate"))
        super().__init__(*layers, name=name)
        self.transform, self.gate = self.children

    def output_shape(self, input_shape):
        return input_shape

    def forward(self, x, training=False, rng=None):
        h = self.transform.forward(x, training)
        g = self.gate.forward(x, training)
        self._cache = (x, h, g) if training else None
        return g * h + (1.0 - g) * x

    def backward(self, grad_output, propagate=True):
        x, h, g = self._require_cache()
        grad_x = self.transform.backward(grad_output * g)  # through h
        grad_x = grad_x + self.gate.backward(grad_output * (h - x))  # through g
        return grad_x + grad_output * (1.0 - g) if propagate else None  # and the carry path

    @classmethod
    def from_config(cls, config):
        children = [numnet.layers.get_layer_class(child["type"]).from_config(child) for child in config["layers"]]
        return cls(None, *children, name=config["name"])


@pytest.fixture
def highway():
    """Highway registered for the test (so that its models load), and unregistered after it."""
    with registered(Highway):
        yield Highway


def highway_network(seed=0):
    return numnet.Network(layers=[numnet.Dense(3, 4, "tanh"), Highway(4), numnet.Dense(4, 2, "softmax")],
                          dtype="float64", seed=seed)


def test_a_model_of_ones_own_trains_checks_saves_and_resumes_without_editing_numnet(tmp_path, highway):
    X, y = data(n=24)
    network = highway_network()
    assert max(numnet.gradient_check(network, X[:6], y[:6]).values()) < 1e-6
    history = network.fit(X, y, epochs=30, batch_size=8, optimizer="adam", learning_rate=0.05, seed=0,
                          clip_norm=5.0, diagnose=True)
    assert history.epoch_loss[-1] < history.epoch_loss[0]
    numnet.save_model(network, tmp_path / "highway.npz")
    loaded = numnet.load_model(tmp_path / "highway.npz")
    np.testing.assert_array_equal(loaded.predict_proba(X), network.predict_proba(X))
    assert "highway_1.gate.W" in loaded.parameters()
    assert isinstance(numnet.diagnose(loaded, X, y, history=loaded.history), list)


def test_a_model_of_ones_own_equals_pytorch():
    torch = pytest.importorskip("torch")
    X, y = data()
    network = highway_network()
    weights = {name: torch.tensor(np.array(value), requires_grad=True) for name, value in network.parameters().items()}
    x = torch.tanh(torch.tensor(X) @ weights["dense_0.W"] + weights["dense_0.b"])
    h = torch.tanh(x @ weights["highway_1.transform.W"] + weights["highway_1.transform.b"])
    g = torch.sigmoid(x @ weights["highway_1.gate.W"] + weights["highway_1.gate.b"])
    logits = (g * h + (1 - g) * x) @ weights["dense_2.W"] + weights["dense_2.b"]
    torch.nn.functional.cross_entropy(logits, torch.tensor(y)).backward()
    network.loss_and_gradients(network.prepare_inputs(X), network.prepare_targets(y))
    for name, gradient in network.gradients().items():
        np.testing.assert_allclose(gradient, weights[name].grad.numpy(), rtol=TORCH_TOLERANCE, atol=1e-14,
                                   err_msg=name)
