"""An activation carries its own facts: a contributor's SiLU, written once here and registered with
numnet.register_activation, works everywhere numnet takes an activation, with no other edit.

SiLU (x·σ(x)) is the contributor's case because its derivative σ(z)(1 + z(1 − σ(z))) is not a function of its
output: it uses the contract's ``derivative_from = "z"``. Oracles: PyTorch autograd of
torch.nn.functional.silu in float64 (outputs, losses, gradients, f′ itself), central differences
(numnet.gradient_check), ONNX Runtime, and scikit-learn's MLP's fitted attributes read back through PyTorch.
An activation written to numnet 0.2's contract (``forward(z, out=None)`` and ``derivative(a)`` only) is
checked to keep working beside it.
"""

import numpy as np
import pytest

import numnet
from numnet import Activation, Dense
from numnet.activations import ACTIVATIONS, Sigmoid
from numnet.layers import auto_weight_init
from oracles import max_relative_difference

#: numnet.gradient_check's own bar in float64: backprop and central differences agree to well under it.
GRADIENT_CHECK_TOLERANCE = 1e-6
#: numnet's float64 backward pass against PyTorch autograd: the same few products, rounded differently.
AUTOGRAD_TOLERANCE = 1e-12
#: ONNX Runtime against numnet: the float64 graph agrees to rounding, float32 to float32's.
ONNX_TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
#: Largest accepted shortfall of the estimator's training accuracy against scikit-learn's MLP (test_sklearn's).
SCORE_GAP = 0.05
#: The doctor's count of tail pairs against PyTorch's: pairs within rounding of the limit may go either way,
#: far fewer than one in 10^4 of the 20,000 pairs here.
TAIL_COUNT_TOLERANCE = 1e-4


class SiLU(numnet.activations.Activation):
    """SiLU (swish): f(z) = z·σ(z), f'(z) = σ(z)(1 + z(1 − σ(z))), computed from z (it is no function of a)."""

    name = "silu"
    display_name = "SiLU"
    derivative_from = "z"
    default_weight_init = "he"  # relu-like: near 0 below zero, the identity far above it
    # f'(z*) at z* ≈ 2.3994, the root of f''(z) = σ(1 − σ)(2 + z(1 − 2σ)). SiLU neither saturates (f' → 1
    # as z → +∞) nor dies (f' is 0 at z ≈ −1.278 only), as the base class assumes.
    derivative_maximum = 1.0998393201288668

    def forward(self, z, out=None):
        result = z * Sigmoid().forward(z)  # numnet's sigmoid: no overflow for z of any size
        if out is None:
            return result
        out[...] = result
        return out

    def derivative(self, z):
        sigmoid = Sigmoid().forward(z)
        return sigmoid * (1.0 + z * (1.0 - sigmoid))

    def onnx_nodes(self, graph, x):
        return graph.node("Mul", [x, graph.node("Sigmoid", [x])], hint="silu")


@pytest.fixture
def silu():
    """SiLU registered for the test, and unregistered after it."""
    numnet.register_activation(SiLU)
    yield SiLU
    del ACTIVATIONS["silu"]


def torch_silu_classifier(weights, X, y):
    """PyTorch's float64 (loss, gradients) of softmax(silu(X W0 + b0) W1 + b1) with cross-entropy, for
    ``weights`` [W0, b0, W1, b1] in numnet's layout (W is (n_in, n_out))."""
    torch = pytest.importorskip("torch")
    tensors = [torch.tensor(np.asarray(value, dtype=np.float64), requires_grad=True) for value in weights]
    W0, b0, W1, b1 = tensors
    logits = torch.nn.functional.silu(torch.tensor(X) @ W0 + b0) @ W1 + b1
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y))
    loss.backward()
    return float(loss.detach()), [tensor.grad.numpy() for tensor in tensors]


def torch_silu_derivative(z):
    """f'(z) of SiLU by PyTorch autograd, elementwise, in float64."""
    torch = pytest.importorskip("torch")
    tensor = torch.tensor(np.asarray(z, dtype=np.float64), requires_grad=True)
    torch.nn.functional.silu(tensor).sum().backward()
    return tensor.grad.numpy()


def classification_data(n_samples=12, n_features=4, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_samples, n_features)) * 2.0, rng.integers(0, n_classes, size=n_samples)


# ---------------------------------------------------------------------------------------------------------
# The function and its facts
# ---------------------------------------------------------------------------------------------------------


def test_silus_value_and_derivative_match_torch_autograd_in_float64():
    torch = pytest.importorskip("torch")
    z = np.random.default_rng(0).uniform(-30, 30, size=(50, 40))
    expected = torch.nn.functional.silu(torch.tensor(z)).numpy()
    assert max_relative_difference(SiLU().forward(z), expected) < AUTOGRAD_TOLERANCE
    assert max_relative_difference(SiLU().derivative(z), torch_silu_derivative(z)) < AUTOGRAD_TOLERANCE


def test_silus_stated_derivative_maximum_is_the_largest_slope_torch_finds():
    # A grid step of 1e-5 near z* misses the maximum by at most f''' · step² / 2 ≈ 1e-11.
    grid = np.arange(0.0, 5.0, 1e-5)
    assert SiLU.derivative_maximum == pytest.approx(float(np.max(torch_silu_derivative(grid))), rel=1e-9)


def test_a_registered_activation_is_found_by_name_and_its_facts_reach_the_initialiser(silu):
    assert isinstance(numnet.get_activation(" SiLU "), silu)
    assert auto_weight_init(silu()) == "he"
    assert Dense(4, 6, "silu").weight_init.name == "he"
    assert silu().display_name == "SiLU"


# ---------------------------------------------------------------------------------------------------------
# In Dense, in Activation, in Conv2D: backprop against PyTorch and central differences
# ---------------------------------------------------------------------------------------------------------


def silu_networks():
    """The same function twice: SiLU fused into Dense, and as an Activation layer after a linear Dense."""
    fused = numnet.Network(layers=[Dense(4, 6, "silu"), Dense(6, 3, "softmax")], dtype="float64", seed=0)
    separate = numnet.Network(layers=[Dense(4, 6), Activation("silu"), Dense(6, 3, "softmax")], dtype="float64",
                              seed=1)
    return fused, separate


@pytest.mark.parametrize("which", ["dense", "activation_layer"])
def test_silu_in_dense_and_in_an_activation_layer_backpropagates_as_torch_autograd(silu, which):
    network = dict(zip(["dense", "activation_layer"], silu_networks()))[which]
    X, y = classification_data()
    parameters = network.parameters()
    names = [name for name in parameters if name.endswith((".W", ".b"))]  # W0, b0, W1, b1 in layer order
    loss = network.loss_and_gradients(network.prepare_inputs(X), network.prepare_targets(y, len(y)))
    expected_loss, expected_gradients = torch_silu_classifier([parameters[name] for name in names], X, y)
    assert loss == pytest.approx(expected_loss, rel=AUTOGRAD_TOLERANCE)
    gradients = network.gradients()
    for name, expected in zip(names, expected_gradients):
        assert max_relative_difference(gradients[name], expected) < AUTOGRAD_TOLERANCE, name


@pytest.mark.parametrize("layers", [
    lambda: [Dense(4, 6, "silu"), Dense(6, 3, "softmax")],
    lambda: [Dense(4, 6), Activation("silu"), Dense(6, 3, "softmax")],
    # SiLU at the output with mse: no fused loss, so the output layer's own backward uses the kept z
    lambda: [Dense(4, 5, "silu"), Dense(5, 3, "silu")],
], ids=["dense", "activation_layer", "output_layer"])
def test_networks_with_silu_pass_gradient_check_in_float64(silu, layers):
    layers = layers()
    X, y = classification_data()
    loss = "mse" if layers[-1].activation.name == "silu" else None
    network = numnet.Network(layers=layers, loss=loss, dtype="float64", seed=0)
    targets = np.eye(3)[y] if loss == "mse" else y
    errors = numnet.gradient_check(network, X, targets)
    assert max(errors.values()) < GRADIENT_CHECK_TOLERANCE, errors


def test_a_convolution_with_silu_passes_gradient_check_in_float64(silu):
    X = np.random.default_rng(0).normal(size=(4, 1, 5, 5))
    y = np.array([0, 1, 2, 1])
    layers = [numnet.Conv2D(1, 2, 3, activation="silu"), numnet.Flatten(), Dense(2 * 3 * 3, 3, "softmax")]
    network = numnet.Network(layers=layers, input_shape=(1, 5, 5), dtype="float64", seed=0)
    errors = numnet.gradient_check(network, X, y)
    assert max(errors.values()) < GRADIENT_CHECK_TOLERANCE, errors


def test_a_silu_network_trains_and_saves_and_loads_by_its_registered_name(silu, tmp_path):
    X, y = classification_data(n_samples=60)
    network, _ = silu_networks()
    history = network.fit(X, y, epochs=30, batch_size=10, learning_rate=1e-2, seed=0)
    assert history.epoch_loss[-1] < history.epoch_loss[0]
    numnet.save_model(network, tmp_path / "model.npz")
    loaded = numnet.load_model(tmp_path / "model.npz")
    assert isinstance(loaded.layers[0].activation, silu)
    np.testing.assert_array_equal(loaded.predict_proba(X), network.predict_proba(X))


# ---------------------------------------------------------------------------------------------------------
# The doctor
# ---------------------------------------------------------------------------------------------------------


def test_the_doctor_examines_silu_by_its_facts_neither_dead_nor_saturated(silu):
    # Weights of 10·I: z = 10x. A tanh or sigmoid layer here is far out on its tails; SiLU states that it has
    # none, so the doctor reports nothing about it during or after training.
    X, y = np.random.default_rng(0).standard_normal((200, 20)), np.arange(200) % 2
    network = numnet.Network(layers=[Dense(20, 20, "silu"), Dense(20, 2, "softmax")], dtype="float64", seed=0)
    network.set_parameters({"dense_0.W": 10.0 * np.eye(20), "dense_0.b": np.zeros(20)})
    history = network.fit(X, y, epochs=2, batch_size=50, seed=0, diagnose=True)
    findings = numnet.diagnose(network, X, y, history=history)
    assert not [finding for finding in findings if finding.code in ("saturated", "dead_relu")]
    assert history.saturated_units == {} and history.dead_units == {}


def test_the_doctor_measures_the_tails_of_an_activation_whose_derivative_needs_z_on_z(silu):
    class SaturatingSiLU(silu):
        """SiLU stating that it saturates, so that the doctor measures f' < 10% of the maximum on its z."""

        saturates = True

    # z = 10x − 5 for x ~ N(0, 1): about two thirds of the pairs lie where f'(z) is under 0.11.
    X, y = np.random.default_rng(0).standard_normal((1000, 20)), np.arange(1000) % 2
    network = numnet.Network(layers=[Dense(20, 20, SaturatingSiLU()), Dense(20, 2, "softmax")], dtype="float64",
                             seed=0)
    network.set_parameters({"dense_0.W": 10.0 * np.eye(20), "dense_0.b": np.full(20, -5.0)})
    slopes = torch_silu_derivative(10.0 * X - 5.0)
    expected = float(np.mean(slopes < 0.1 * SiLU.derivative_maximum))
    assert expected > 0.5
    findings = {finding.layer: finding for finding in numnet.diagnose(network, X, y) if finding.code == "saturated"}
    assert findings["dense_0"].measured == pytest.approx(expected, abs=TAIL_COUNT_TOLERANCE)


# ---------------------------------------------------------------------------------------------------------
# ONNX export
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_silu_exports_to_onnx_as_x_times_its_sigmoid(silu, dtype):
    onnxruntime = pytest.importorskip("onnxruntime")
    layers = [Dense(4, 6, "silu"), Dense(6, 5), Activation("silu"), Dense(5, 3, "softmax")]
    network = numnet.Network(layers=layers, dtype=dtype, seed=0)
    model = numnet.to_onnx(network)
    assert [node.op_type for node in model.graph.node].count("Sigmoid") == 2
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    X = np.random.default_rng(0).normal(size=(30, 4)).astype(dtype) * 3.0
    probabilities = session.run(["probabilities"], {"input": X})[0]
    np.testing.assert_allclose(probabilities, network.predict_proba(X), rtol=0, atol=ONNX_TOLERANCE[dtype])


# ---------------------------------------------------------------------------------------------------------
# The applications: the command line, the estimators, the playground
# ---------------------------------------------------------------------------------------------------------


def test_numnet_train_takes_activation_silu(silu, tmp_path, capsys):
    from numnet import cli

    status = cli.main(["train", "--activation", "silu", "--epochs", "1", "--quiet", "--output", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    model = numnet.load_model(tmp_path / "model.npz")
    hidden = [layer.activation for layer in model.layers[:-1] if layer.activation is not None]
    assert hidden and all(isinstance(activation, silu) for activation in hidden)


def test_the_estimators_take_activation_silu(silu):
    pytest.importorskip("sklearn")
    torch = pytest.importorskip("torch")
    from sklearn import neural_network
    from sklearn.datasets import load_iris
    from sklearn.preprocessing import StandardScaler

    from numnet.sklearn import MLPClassifier

    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    options = {"hidden_layer_sizes": (8,), "learning_rate_init": 1e-2, "max_iter": 300, "random_state": 0}
    estimator = MLPClassifier(activation="silu", **options).fit(X, y)
    # As well as scikit-learn's own MLP with relu, its nearest activation, on the same data and settings
    reference = neural_network.MLPClassifier(activation="relu", **options).fit(X, y)
    assert estimator.score(X, y) >= reference.score(X, y) - SCORE_GAP
    # Its probabilities are softmax(silu(X W0 + b0) W1 + b1) of its own coefs_ and intercepts_, by PyTorch.
    W0, W1 = (torch.tensor(W) for W in estimator.coefs_)
    b0, b1 = (torch.tensor(b) for b in estimator.intercepts_)
    expected = torch.softmax(torch.nn.functional.silu(torch.tensor(X) @ W0 + b0) @ W1 + b1, dim=1).numpy()
    np.testing.assert_allclose(estimator.predict_proba(X), expected, rtol=0, atol=AUTOGRAD_TOLERANCE)


def test_the_playgrounds_menu_offers_silu_and_a_session_trains_with_it(silu):
    from test_playground import running_server

    with running_server() as client:
        status, _, menus = client.request("GET", "/api/menus")
        assert status == 200
        assert {"value": "silu", "label": "SiLU"} in menus["activation"]
        frame = client.new_session({"activation": "silu", "hidden": [4]})
        assert frame["network"]["activations"] == ["silu", "sigmoid"]
        trained = client.train(frame["session"], 20)
        assert trained["current"]["train_loss"] < frame["current"]["train_loss"]


# ---------------------------------------------------------------------------------------------------------
# numnet 0.2's contract, and the registration's checks
# ---------------------------------------------------------------------------------------------------------


class Softsign(numnet.activations.Activation):
    """z / (1 + |z|), written to numnet 0.2's contract: forward and a derivative from a, (1 − |a|)², no facts."""

    name = "softsign"

    def forward(self, z, out=None):
        result = z / (1.0 + np.abs(z))
        if out is None:
            return result
        out[...] = result
        return out

    def derivative(self, a):
        return (1.0 - np.abs(a)) ** 2


@pytest.mark.parametrize("layers", [
    lambda: [Dense(4, 6, Softsign()), Dense(6, 3, "softmax")],
    lambda: [Dense(4, 6), Activation(Softsign()), Dense(6, 3, "softmax")],
], ids=["dense", "activation_layer"])
def test_an_activation_written_to_the_0_2_contract_still_backpropagates_exactly(layers):
    network = numnet.Network(layers=layers(), dtype="float64", seed=0)
    errors = numnet.gradient_check(network, *classification_data())
    assert max(errors.values()) < GRADIENT_CHECK_TOLERANCE, errors


def test_an_activation_without_facts_gets_the_defaults_and_a_clear_onnx_error():
    pytest.importorskip("onnx")
    activation = Softsign()
    assert (activation.derivative_from, activation.display_name, auto_weight_init(activation)) == \
        ("a", "softsign", "xavier")
    network = numnet.Network(layers=[Dense(4, 6, activation), Dense(6, 3, "softmax")], seed=0)
    with pytest.raises(ValueError, match="no ONNX form for the activation 'softsign'.*onnx_nodes"):
        numnet.to_onnx(network)


def test_register_activation_refuses_what_cannot_be_looked_up(silu):
    with pytest.raises(TypeError, match="subclass of numnet.activations.Activation"):
        numnet.register_activation(Dense)
    with pytest.raises(ValueError, match="already registered for SiLU"):
        numnet.register_activation(type("OtherSiLU", (numnet.activations.Activation,), {"name": "silu"}))
    with pytest.raises(ValueError, match="lower-case name of its own"):
        numnet.register_activation(type("Nameless", (numnet.activations.Activation,), {}))
    assert numnet.register_activation(silu) is silu  # registering the same class again changes nothing


def test_an_activation_class_must_say_a_or_z_for_its_derivative():
    with pytest.raises(ValueError, match="derivative_from must be 'a'.*or 'z'"):
        type("Confused", (numnet.activations.Activation,), {"name": "confused", "derivative_from": "output"})
