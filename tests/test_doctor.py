"""The training doctor: each finding's code fires on a case planted for it, none fires on the healthy digits
run of `numnet train`, diagnose leaves the network bit for bit as it was, and fit(diagnose=True) records
evidence that agrees with NumPy recomputing it.

Oracles: NumPy recomputing each measurement from the weights (dead units, update-to-weight ratios),
closed forms (the chance levels ln K, ln 2, half the variance), and hand-written Histories whose findings
follow from the rules by counting (written next to each).
"""

import functools
import json
import math
import os
import subprocess
import sys
from statistics import NormalDist

import numpy as np
import pytest

import numnet
from numnet import Activation, BatchNorm, Dense, Dropout, Layer, datasets, preprocessing
from numnet import activations
from numnet.activations import ReLU
from numnet.doctor import CODES, INPUT_SCALE_THRESHOLD, chance_loss, diagnose
from numnet.evidence import layer_outputs, unit_statistics
from numnet.initializers import Normal
from numnet.training import History

# `numnet train` takes ~3 s on an idle machine; the suite shares 2 cores with other work.
COMMAND_TIMEOUT_SECONDS = 300


@pytest.fixture(scope="module")
def digits():
    """The digits split as `numnet train` splits it (80/20, seed 1), standardised on the training rows."""
    X, y = datasets.load_digits()
    X_train, X_test, y_train, y_test = preprocessing.train_test_split(X, y, 0.2, seed=1)
    scaler = preprocessing.StandardScaler().fit(X_train)
    return scaler.transform(X_train), y_train, scaler.transform(X_test), y_test


def codes(findings):
    return {finding.code for finding in findings}


def softmax_network(sizes, **options):
    return numnet.Network(sizes, output_activation="softmax", seed=0, **options)


# ---------------------------------------------------------------------------------------------------------
# The healthy run
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def healthy_job(tmp_path_factory):
    """`numnet train --diagnose --quiet` (the digits run with its defaults), as a user runs it."""
    output = tmp_path_factory.mktemp("healthy")
    environment = dict(os.environ, MPLBACKEND="Agg")
    completed = subprocess.run([sys.executable, "-m", "numnet", "train", "--diagnose", "--quiet", "--output",
                                str(output)], capture_output=True, text=True, env=environment,
                               timeout=COMMAND_TIMEOUT_SECONDS)
    assert completed.returncode == 0, completed.stderr
    return completed, output


def test_no_code_fires_on_the_healthy_digits_run_of_numnet_train(healthy_job, digits):
    completed, output = healthy_job
    assert "doctor: no problems found" in completed.stdout
    assert (output / "diagnosis.png").stat().st_size > 0
    network = numnet.load_model(output / "model.npz")
    X_train, y_train, X_test, y_test = digits
    assert diagnose(network, X_train, y_train, history=network.history) == []
    assert diagnose(network, X_test, y_test, history=network.history) == []


def test_numnet_doctor_prints_the_findings_of_a_saved_model_as_json(healthy_job):
    _, output = healthy_job
    completed = subprocess.run([sys.executable, "-m", "numnet", "doctor", str(output / "model.npz"), "digits",
                                "--json"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == []


def test_the_saved_history_carries_the_evidence_of_every_step_and_epoch(healthy_job):
    _, output = healthy_job
    history = numnet.load_model(output / "model.npz").history
    assert set(history.update_ratio) == {"dense_0.W", "dense_1.W"}
    assert all(len(values) == history.iterations for values in history.update_ratio.values())
    assert len(history.gradient_norm) == history.iterations
    assert list(history.dead_units) == ["dense_0"] and len(history.dead_units["dense_0"]) == history.epochs


# ---------------------------------------------------------------------------------------------------------
# Each code on its planted case
# ---------------------------------------------------------------------------------------------------------


def planted_dead_relu(data):
    """Relu layers whose biases start at -10: z = xW - 10 is negative on (almost) every sample."""
    X, y = data[:2]
    return softmax_network([64, 32, 32, 10], bias_init=-10.0), X, y, None


def planted_saturated(data):
    """Sigmoid layers with weights of std 10: |z| ~ 80, far out on the flat tails."""
    X, y = data[:2]
    return softmax_network([64, 32, 32, 10], activation="sigmoid", weight_init=Normal(std=10.0)), X, y, None


def planted_vanishing_gradient(data):
    """Eight sigmoid layers: each multiplies the gradient flowing back by at most f'(z) <= 1/4."""
    X, y = data[:2]
    return softmax_network([64] + [32] * 8 + [10], activation="sigmoid"), X, y, None


def planted_exploding_gradient_across_layers(data):
    """An output layer with weights of std 10^4 multiplies every gradient it sends back by ~10^4."""
    X, y = data[:2]
    layers = [Dense(64, 32, "relu"), Dense(32, 32, "relu"), Dense(32, 10, "softmax", weight_init=Normal(std=1e4))]
    return numnet.Network(layers=layers, seed=0), X, y, None


def diverged(network, X, y, **options):
    """``network`` after a fit that raised DivergenceError (the test fails if it did not)."""
    with pytest.raises(numnet.DivergenceError), np.errstate(over="ignore", invalid="ignore"):
        network.fit(X, y, epochs=3, batch_size=32, seed=0, diagnose=True, **options)
    return network


def planted_exploding_gradient_over_training(data):
    """Plain SGD at a learning rate of 3 diverges, the gradient norm growing step after step."""
    X, y = data[:2]
    network = diverged(softmax_network([64, 128, 10]), X, y, optimizer="sgd", learning_rate=3.0)
    return network, X, y, network.history


def planted_learning_rate_too_high(data):
    """Adam at a learning rate of 10: every step throws the weights far away."""
    X, y = data[:2]
    network = softmax_network([64, 128, 10])
    with np.errstate(over="ignore", invalid="ignore"):
        network.fit(X, y, epochs=3, batch_size=32, learning_rate=10.0, seed=0, diagnose=True)
    return network, X, y, network.history


def planted_learning_rate_too_high_diverged(data):
    """SGD at a learning rate of 10 diverges at once; the History keeps the steps before it."""
    X, y = data[:2]
    network = diverged(softmax_network([64, 128, 10]), X, y, optimizer="sgd", learning_rate=10.0)
    return network, X, y, network.history


def planted_learning_rate_too_low(data):
    """SGD at 1e-7: each step moves the weights by about 1e-8 of their size."""
    X, y = data[:2]
    network = softmax_network([64, 128, 10])
    network.fit(X, y, epochs=2, batch_size=32, optimizer="sgd", learning_rate=1e-7, seed=0, diagnose=True)
    return network, X, y, network.history


def planted_not_learning(data):
    """Labels drawn at random: there is nothing to learn, and a small network stays at ln 10."""
    X = data[0]
    y = np.random.default_rng(0).integers(0, 10, size=X.shape[0])
    network = softmax_network([64, 16, 10])
    network.fit(X, y, epochs=5, batch_size=32, seed=0, diagnose=True)
    return network, X, y, network.history


def planted_overfitting(data):
    """30 training samples for 500 epochs: the network memorises them and the validation loss turns up."""
    X_train, y_train, X_test, y_test = data
    network = softmax_network([64, 128, 10])
    network.fit(X_train[:30], y_train[:30], epochs=500, batch_size=32, learning_rate=1e-2,
                validation_data=(X_test[:100], y_test[:100]), seed=0, diagnose=True)
    return network, X_train[:30], y_train[:30], network.history


def planted_unscaled_inputs(data):
    """Standardised inputs multiplied by 1000."""
    X, y = data[:2]
    return softmax_network([64, 32, 10]), X * 1000.0, y, None


def _token_model(kind, wh_scale=1.0, seed=0):
    network = numnet.Network(layers=[numnet.Embedding(10, 8), getattr(numnet, kind)(8, 32),
                                     Dense(32, 10, "softmax")], dtype="float64", seed=seed)
    network.layers[1].params["Wh"][...] *= wh_scale
    return network


def _tokens(rows=16, steps=40, seed=0):
    ids = np.random.default_rng(seed).integers(0, 10, size=(rows, steps + 1))
    return ids[:, :-1], ids[:, 1:]


def planted_vanishing_through_time(data):
    """A plain RNN whose Wh is scaled by 0.5 (the book's chapter 6 case), on random token sequences."""
    return (_token_model("RNN", wh_scale=0.5), *_tokens(), None)


def planted_exploding_through_time(data):
    """A plain RNN whose Wh is scaled by 8."""
    return (_token_model("RNN", wh_scale=8.0), *_tokens(), None)


def planted_frequent_clipping(data):
    """An LSTM trained with a clip norm of 1e-3, which every step's gradient exceeds."""
    X, y = _tokens(rows=8, steps=12)
    network = _token_model("LSTM")
    history = network.fit(X, y, epochs=3, batch_size=4, clip_norm=1e-3, seed=0)
    return network, X, y, history


#: The codes whose figure falls below its threshold; every other one rises above it.
FIRES_BELOW = {"vanishing_gradient", "vanishing_through_time", "learning_rate_too_low"}

PLANTED = [
    ("dead_relu", planted_dead_relu),
    ("saturated", planted_saturated),
    ("vanishing_gradient", planted_vanishing_gradient),
    ("exploding_gradient", planted_exploding_gradient_across_layers),
    ("exploding_gradient", planted_exploding_gradient_over_training),
    ("vanishing_through_time", planted_vanishing_through_time),
    ("exploding_through_time", planted_exploding_through_time),
    ("frequent_clipping", planted_frequent_clipping),
    ("learning_rate_too_high", planted_learning_rate_too_high),
    ("learning_rate_too_high", planted_learning_rate_too_high_diverged),
    ("learning_rate_too_low", planted_learning_rate_too_low),
    ("not_learning", planted_not_learning),
    ("overfitting", planted_overfitting),
    ("unscaled_inputs", planted_unscaled_inputs),
]


@pytest.mark.parametrize("code, plant", PLANTED, ids=[plant.__name__.removeprefix("planted_") for _, plant in PLANTED])
def test_each_code_fires_on_the_case_planted_for_it(code, plant, digits):
    network, X, y, history = plant(digits)
    findings = diagnose(network, X, y, history=history)
    fired = [finding for finding in findings if finding.code == code]
    assert fired, f"{code} did not fire; found {[finding.line() for finding in findings]}"
    for finding in fired:
        assert finding.advice and finding.quantity
        if code in FIRES_BELOW:
            assert finding.measured <= finding.threshold
        else:
            assert finding.measured >= finding.threshold
    order = [CODES.index(finding.code) for finding in findings]
    assert order == sorted(order)


def test_every_code_has_a_planted_case():
    assert {code for code, _ in PLANTED} == set(CODES)


def test_dead_relu_reports_the_fraction_numpy_counts_from_the_weights(digits):
    network, X, y, _ = planted_dead_relu(digits)
    W, b = (np.asarray(network.parameters()[f"dense_0.{key}"], dtype=np.float64) for key in ("W", "b"))
    a = np.maximum(X @ W + b, 0.0)
    expected = float(np.mean(np.all(a <= 0.0, axis=0)))  # units zero on every sample
    finding = next(f for f in diagnose(network, X, y) if f.code == "dead_relu" and f.layer == "dense_0")
    assert finding.measured == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Saturation, judged on each activation's own scale
# ---------------------------------------------------------------------------------------------------------

#: Where f'(z) falls to a tenth of its maximum, in closed form: tanh'(z) = sech²(z) = 1/10 at cosh z = √10,
#: and sigmoid'(z) = sech²(z/2) / 4, a tenth of its 1/4 at cosh(z/2) = √10 (|z| ≈ 1.82 and 3.64).
TAIL_START = {"tanh": math.acosh(math.sqrt(10.0)), "sigmoid": 2.0 * math.acosh(math.sqrt(10.0))}
#: Pairs whose |z| lies within rounding (float64) of TAIL_START may be counted either way: far fewer than
#: one in 10^5 of the 143,700 pairs of a digits layer.
TAIL_COUNT_TOLERANCE = 1e-5


def tail_fractions(network, X):
    """NumPy's share of each hidden layer's pre-activations z beyond TAIL_START, from the weights in float64."""
    a, fractions = np.asarray(X, dtype=np.float64), {}
    for layer in network.layers[:-1]:
        W, b = (np.asarray(network.parameters()[f"{layer.name}.{key}"], dtype=np.float64) for key in ("W", "b"))
        z = a @ W + b
        name = layer.activation.name
        fractions[layer.name] = float(np.mean(np.abs(z) > TAIL_START[name]))
        a = np.tanh(z) if name == "tanh" else 0.5 * (1.0 + np.tanh(z / 2.0))  # sigmoid, without overflow
    return fractions


def saturated_findings(network, X, y, history=None):
    return {finding.layer: finding for finding in diagnose(network, X, y, history=history)
            if finding.code == "saturated"}


# E8's stack (five layers of 100) on the standardised digits: weights of std 1 put the units on the tails,
# Xavier and std 0.01 do not; tanh saturates sooner than sigmoid with the same weights.
E8_CASES = [("sigmoid", "std 1", Normal(1.0), True), ("sigmoid", "Xavier", "xavier", False),
            ("sigmoid", "std 0.01", Normal(0.01), False), ("tanh", "std 1", Normal(1.0), True)]


@pytest.mark.parametrize("activation, label, weight_init, saturated", E8_CASES,
                         ids=[f"{activation}, {label}" for activation, label, _, _ in E8_CASES])
def test_e8s_layers_are_saturated_with_weights_of_std_1_and_not_with_xavier_or_std_001(
        activation, label, weight_init, saturated, digits):
    X, y = digits[:2]
    network = softmax_network([64] + [100] * 5 + [10], activation=activation, weight_init=weight_init,
                              dtype="float64")
    expected = tail_fractions(network, X)
    measured = unit_statistics(network, layer_outputs(network, network.prepare_inputs(X)))[1]
    assert measured == pytest.approx(expected, abs=TAIL_COUNT_TOLERANCE)
    findings = saturated_findings(network, X, y)
    assert bool(findings) == saturated, {name: round(value, 3) for name, value in expected.items()}
    assert set(findings) == {name for name, fraction in expected.items() if fraction > 0.5}


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize("share", [0.30, 0.60, 0.85, 0.99])
def test_a_layer_is_saturated_when_most_of_its_pre_activations_lie_on_the_tails(activation, share):
    # One layer with W = s·I on N(0, 1) inputs: z = s·x, and P(|z| > t) = share at s = t / Φ⁻¹(1 - share / 2).
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((1000, 20)), rng.integers(0, 2, size=1000)
    scale = TAIL_START[activation] / NormalDist().inv_cdf(1.0 - share / 2.0)
    network = numnet.Network(layers=[Dense(20, 20, activation), Dense(20, 2, "softmax")], seed=0, dtype="float64")
    network.set_parameters({"dense_0.W": scale * np.eye(20), "dense_0.b": np.zeros(20)})
    expected = float(np.mean(np.abs(scale * X) > TAIL_START[activation]))
    assert expected == pytest.approx(share, abs=0.01)  # 20,000 pairs: a sampling error of at most 0.0035
    findings = saturated_findings(network, X, y)
    if share > 0.5:
        assert list(findings) == ["dense_0"]
        assert findings["dense_0"].measured == pytest.approx(expected, abs=TAIL_COUNT_TOLERANCE)
    else:
        assert findings == {}


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_a_healthy_sigmoid_or_tanh_network_raises_no_finding(activation, digits):
    X, y = digits[:2]
    network = softmax_network([64, 100, 10], activation=activation)
    history = network.fit(X, y, epochs=10, batch_size=32, seed=0, diagnose=True)
    assert diagnose(network, X, y, history=history) == []
    assert all(fraction < 0.5 for fraction in history.saturated_units["dense_0"])


def test_units_on_the_tails_of_a_network_that_has_learnt_its_data_are_not_a_finding(digits):
    # Adam at 1e-2 fits the training rows (loss ~1e-4, far below a quarter of ln 10) with most of the second
    # layer's pairs on the tails: the sharp units it learnt, not a start it cannot leave.
    X, y = digits[:2]
    network = softmax_network([64, 100, 100, 10], activation="tanh", dtype="float64")
    network.fit(X, y, epochs=30, batch_size=32, learning_rate=1e-2, seed=0)
    assert max(tail_fractions(network, X).values()) > 0.5
    probabilities = np.asarray(network.predict_proba(X), dtype=np.float64)
    assert -np.mean(np.log(probabilities[np.arange(len(y)), y])) < 0.25 * math.log(10)
    assert saturated_findings(network, X, y) == {}


class ScaledTanhOldContract(activations.Activation):
    """LeCun's 1.7159·tanh(2z/3), written to the contract before activations stated their facts."""

    name = "scaled_tanh"
    AMPLITUDE, SLOPE = 1.7159, 2.0 / 3.0

    def forward(self, z, out=None):
        result = self.AMPLITUDE * np.tanh(self.SLOPE * z)
        if out is None:
            return result
        out[...] = result
        return out

    def derivative(self, a):
        return self.AMPLITUDE * self.SLOPE * (1.0 - (a / self.AMPLITUDE) ** 2)


class ScaledTanh(ScaledTanhOldContract):
    """The same activation stating its facts: f' at most 1.7159 · 2/3 (at z = 0), and it saturates."""

    derivative_maximum = ScaledTanhOldContract.AMPLITUDE * ScaledTanhOldContract.SLOPE
    saturates = True


@pytest.mark.parametrize("activation, examined", [(ScaledTanh, True), (ScaledTanhOldContract, False)])
def test_a_users_activation_is_judged_by_the_facts_it_states(activation, examined, digits):
    # Weights of std 10 on 64 standardised features: |z| ~ 80, beyond 1.5·arccosh(√10) ≈ 2.7 almost always.
    X, y = digits[:2]
    layers = [Dense(64, 32, activation(), weight_init=Normal(std=10.0)), Dense(32, 10, "softmax")]
    network = numnet.Network(layers=layers, seed=0, dtype="float64")
    history = network.fit(X, y, iterations=1, batch_size=32, seed=0, diagnose=True)
    findings = saturated_findings(network, X, y)
    if examined:
        z = np.asarray(X, dtype=np.float64) @ network.parameters()["dense_0.W"] + network.parameters()["dense_0.b"]
        expected = float(np.mean(np.abs(z) > 1.5 * TAIL_START["tanh"]))
        assert findings["dense_0"].measured == pytest.approx(expected, abs=TAIL_COUNT_TOLERANCE)
        assert list(history.saturated_units) == ["dense_0"]
    else:  # not known to saturate: left alone, without an error
        assert findings == {} and history.saturated_units == {}


# ---------------------------------------------------------------------------------------------------------
# The Layer contract: a layer of one's own is examined like numnet's
# ---------------------------------------------------------------------------------------------------------


class ShiftedReLU(Layer):
    """relu(x - shift): a user's layer that ends with an activation function, and nothing numnet knows of."""

    def __init__(self, shift, *, name=None):
        super().__init__(name=name)
        self.shift = shift
        self.activation = ReLU()

    def forward(self, x, training=False, rng=None):
        a = self.activation.forward(x - self.shift)
        self._cache = a if training else None
        return a

    def backward(self, grad_output, propagate=True):
        a = self._require_cache()
        return self.activation.backward(grad_output, a) if propagate else None


def test_a_layer_of_ones_own_with_an_activation_is_examined_through_the_contract(digits):
    X, y = digits[:2]
    layers = [Dense(64, 16), BatchNorm(16), ShiftedReLU(100.0), Dropout(0.1), Dense(16, 10, "softmax")]
    network = numnet.Network(layers=layers, seed=0)
    findings = diagnose(network, X, y)
    assert any(finding.code == "dead_relu" and finding.layer == "shifted_re_lu_2" for finding in findings)


# ---------------------------------------------------------------------------------------------------------
# diagnose changes nothing
# ---------------------------------------------------------------------------------------------------------


def test_diagnose_leaves_parameters_gradients_state_optimiser_and_history_bit_identical(digits):
    X, y = digits[:2]
    layers = [Dense(64, 32), BatchNorm(32), Activation("relu"), Dropout(0.2), Dense(32, 10, "softmax")]
    network = numnet.Network(layers=layers, seed=0)
    network.fit(X, y, epochs=1, batch_size=32, seed=0, diagnose=True)
    before = {name: np.array(getattr(network, name), copy=True)
              for name in ("flat_parameters", "flat_gradients", "flat_state")}
    moments = {key: np.array(value, copy=True) for key, value in network.optimizer.state.items() if key != "step"}
    history = network.history.to_dict()
    diagnose(network, X, y, history=network.history)
    for name, array in before.items():
        assert np.array_equal(getattr(network, name), array), name
    for key, array in moments.items():
        assert np.array_equal(network.optimizer.state[key], array), key
    assert network.history.to_dict() == history


# ---------------------------------------------------------------------------------------------------------
# fit(diagnose=True): the evidence, and nothing else changes
# ---------------------------------------------------------------------------------------------------------


def test_the_update_ratio_and_gradient_norm_of_a_step_equal_numpys(digits):
    X, y = digits[:2]
    network = softmax_network([64, 16, 10], dtype="float64")
    before = {name: np.array(value, copy=True) for name, value in network.parameters().items()}
    history = network.fit(X, y, iterations=1, batch_size=32, seed=0, diagnose=True)
    for name in ("dense_0.W", "dense_1.W"):
        change = np.linalg.norm(network.parameters()[name] - before[name]) / np.linalg.norm(before[name])
        assert history.update_ratio[name] == [pytest.approx(change, rel=1e-12)]
    assert history.gradient_norm == [pytest.approx(float(np.linalg.norm(network.flat_gradients)), rel=1e-12)]


def test_training_with_diagnose_gives_bit_identical_weights_and_losses(digits):
    X, y = digits[:2]
    plain, diagnosed = softmax_network([64, 16, 10]), softmax_network([64, 16, 10])
    history = plain.fit(X, y, epochs=2, batch_size=32, seed=3)
    diagnosed_history = diagnosed.fit(X, y, epochs=2, batch_size=32, seed=3, diagnose=True)
    assert np.array_equal(plain.flat_parameters, diagnosed.flat_parameters)
    assert history.iteration_loss == diagnosed_history.iteration_loss
    assert history.update_ratio == {} and history.gradient_norm == [] and history.dead_units == {}


def test_after_a_divergence_the_evidence_holds_exactly_the_kept_steps(digits):
    X, y = digits[:2]
    network = diverged(softmax_network([64, 128, 10]), X, y, optimizer="sgd", learning_rate=10.0)
    history = network.history
    assert history.iterations == network.iterations_trained
    assert len(history.gradient_norm) == history.iterations
    assert all(len(values) == history.iterations for values in history.update_ratio.values())
    assert all(len(values) == history.epochs for values in history.dead_units.values())


def test_a_history_with_evidence_round_trips_and_an_old_history_loads_without_it():
    history = History(iteration_loss=[2.0, 1.5], epoch_loss=[1.75], update_ratio={"dense_0.W": [1e-3, 2e-3]},
                      gradient_norm=[0.5, 0.25], dead_units={"dense_0": [0.1]}, saturated_units={"dense_1": [0.0]})
    assert History.from_dict(json.loads(json.dumps(history.to_dict()))) == history
    old = {"iteration_loss": [2.0], "epoch_loss": [2.0], "val_loss": [], "accuracy": [0.5], "val_accuracy": [],
           "gradient_mean_abs": {"dense_0.W": [0.1]}, "learning_rate": [0.001]}  # what numnet 0.2.0 saved
    loaded = History.from_dict(old)
    assert loaded.accuracy == [0.5] and loaded.update_ratio == {} and loaded.gradient_norm == []
    assert loaded.since(History().lengths()) == loaded


# ---------------------------------------------------------------------------------------------------------
# The rules on hand-written histories
# ---------------------------------------------------------------------------------------------------------


TWO_POINTS = ([[0.0, 1.0], [1.0, 0.0]], [0, 1])


@functools.cache
def learnt_two_points():
    """A 2-3-2 network that has learnt two separable points: on its own it raises no finding."""
    network = numnet.Network([2, 3, 2], output_activation="softmax", seed=0)
    network.fit(*TWO_POINTS, epochs=200, batch_size=2, learning_rate=0.05, seed=0)
    return network


def training_findings(history):
    """The findings of a hand-written ``history`` for a network and data that raise none themselves."""
    return diagnose(learnt_two_points(), *TWO_POINTS, history=history)


def test_a_loss_rising_over_the_last_three_epochs_means_the_learning_rate_is_too_high():
    # Changes 1.0 -> 0.8 -> 0.9 -> 1.0 -> 1.1: the last three are rises (1.1 / 0.8 = 1.375).
    history = History(iteration_loss=[1.0], epoch_loss=[1.0, 0.8, 0.9, 1.0, 1.1])
    finding = next(f for f in training_findings(history) if f.code == "learning_rate_too_high")
    assert finding.measured == pytest.approx(1.1 / 0.8)


def test_an_oscillating_loss_means_the_learning_rate_is_too_high():
    # 11 epochs, 10 changes alternating up and down with one extra rise: 6 of 10 upward (each by 12% or
    # more, beyond the 5% noise) > half. The last change is a fall, so the rising rule does not fire first.
    losses = [1.0, 1.4, 1.0, 1.4, 1.0, 1.4, 1.2, 1.4, 1.6, 1.8, 1.4]
    history = History(iteration_loss=[1.0], epoch_loss=losses)
    finding = next(f for f in training_findings(history) if f.code == "learning_rate_too_high")
    assert finding.measured == pytest.approx(0.6)


def test_a_converged_loss_wobbling_within_the_noise_is_not_an_oscillation():
    # A run down from 1.0 to about 0.01, then moving by at most 3% per epoch, up more often than down.
    losses = [1.0, 0.3, 0.1, 0.03] + [0.0100, 0.0103, 0.0101, 0.0104, 0.0102, 0.0105, 0.0103, 0.0106, 0.0104,
                                      0.0107, 0.0105]
    assert training_findings(History(iteration_loss=[1.0], epoch_loss=losses)) == []


def test_a_falling_loss_with_small_updates_is_healthy_and_tiny_updates_with_a_flat_loss_are_too_low():
    healthy = History(iteration_loss=[1.0] * 5 + [0.5] * 5, epoch_loss=[1.0, 0.5],
                      update_ratio={"dense_0.W": [1e-3] * 10})
    assert training_findings(healthy) == []
    # The loss moves by 0.5% (< 1%) and the median ratio is 1e-6 (< 1e-5).
    stuck = History(iteration_loss=[1.0] * 5 + [0.995] * 5, epoch_loss=[1.0, 0.995],
                    update_ratio={"dense_0.W": [1e-6] * 10})
    assert codes(training_findings(stuck)) == {"learning_rate_too_low"}


def test_a_gradient_norm_growing_tenfold_over_training_is_an_exploding_gradient():
    # First tenth of 20 steps: (1 + 1) / 2 = 1; last tenth: (10 + 12) / 2 = 11 -> growth 11 >= 10.
    history = History(iteration_loss=[1.0] * 20, gradient_norm=[1.0, 1.0] + [5.0] * 16 + [10.0, 12.0])
    finding = next(f for f in training_findings(history) if f.code == "exploding_gradient")
    assert finding.layer == "training" and finding.measured == pytest.approx(11.0)


def test_validation_loss_rising_three_epochs_while_training_loss_falls_is_overfitting():
    rising = History(iteration_loss=[1.0], epoch_loss=[1.0, 0.8, 0.6, 0.5, 0.4],
                     val_loss=[1.0, 0.9, 0.95, 1.0, 1.05])  # three rises at the end
    assert next(f for f in training_findings(rising) if f.code == "overfitting").measured == 3.0
    two = History(iteration_loss=[1.0], epoch_loss=[1.0, 0.8, 0.6, 0.5, 0.4], val_loss=[1.0, 0.9, 0.8, 0.85, 0.9])
    assert "overfitting" not in codes(training_findings(two))


def test_the_chance_level_is_the_loss_of_the_best_constant_prediction():
    softmax, sigmoid, mse = (numnet.get_loss(name) for name in ("softmax_cross_entropy", "bce", "mse"))
    assert chance_loss(softmax, np.eye(4)) == pytest.approx(math.log(4))  # four balanced classes: ln 4
    assert chance_loss(sigmoid, np.array([[0.0], [1.0]])) == pytest.approx(math.log(2))  # rate 1/2: ln 2
    # Targets 0 and 2: variance 1, so predicting the mean 1 costs 1/2 · 1.
    assert chance_loss(mse, np.array([[0.0], [2.0]])) == pytest.approx(0.5)


def test_inputs_in_the_unit_interval_and_constant_columns_are_not_unscaled():
    network = numnet.Network([3, 4, 2], output_activation="softmax", seed=0)
    X = np.column_stack([np.linspace(0, 1, 20), np.full(20, 500.0), np.linspace(-3, 3, 20)])
    assert "unscaled_inputs" not in codes(diagnose(network, X, np.arange(20) % 2))


def test_token_ids_are_categories_and_never_unscaled_inputs():
    # ids 0..99 have mean ~50: as numbers they would be far past the threshold, but an Embedding reads each as
    # a row index, so no scaling could help (or apply)
    ids = np.random.default_rng(0).integers(0, 100, size=(16, 13))
    network = numnet.Network(layers=[numnet.Embedding(100, 8), numnet.LSTM(8, 16), Dense(16, 100, "softmax")],
                             dtype="float64", seed=0)
    assert ids.mean() > INPUT_SCALE_THRESHOLD
    assert "unscaled_inputs" not in codes(diagnose(network, ids[:, :-1], ids[:, 1:]))


# ---------------------------------------------------------------------------------------------------------
# Findings as data, errors, and the figure
# ---------------------------------------------------------------------------------------------------------


def test_findings_are_json_ready_and_print_as_one_line(digits):
    network, X, y, _ = planted_dead_relu(digits)
    findings = diagnose(network, X, y)
    data = json.loads(json.dumps([finding.to_dict() for finding in findings]))
    assert {"code", "layer", "measured", "threshold", "quantity", "advice"} <= set(data[0])
    assert all("\n" not in finding.line() for finding in findings)


def test_diagnose_refuses_what_is_not_a_network_or_a_history(digits):
    X, y = digits[:2]
    with pytest.raises(TypeError, match="Network"):
        diagnose("model.npz", X, y)
    with pytest.raises(TypeError, match="History"):
        diagnose(softmax_network([64, 10]), X, y, history=[1.0, 0.5])


def test_the_diagnosis_figure_shows_histograms_ratios_and_gradients(digits, tmp_path):
    pytest.importorskip("matplotlib")
    from numnet import plots

    X, y = digits[:2]
    network = softmax_network([64, 32, 16, 10])
    network.fit(X, y, epochs=1, batch_size=64, seed=0, diagnose=True)
    figure = plots.plot_diagnosis(network, X, network.history, path=tmp_path / "diagnosis.png")
    assert (tmp_path / "diagnosis.png").stat().st_size > 0
    titles = [axes.get_title() for axes in figure.axes]
    assert titles[0].startswith("dense_0 (relu)") and titles[1].startswith("dense_1 (relu)")
    assert len(figure.axes[2].get_lines()) == 3 + 2  # three weights' ratios and the two threshold lines
    assert len(figure.axes[3].get_lines()) == 3  # three weights' gradient curves


def test_the_diagnosis_figure_titles_a_tanh_layer_with_its_share_on_the_tails(tmp_path):
    pytest.importorskip("matplotlib")
    from numnet import plots

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((200, 8)), np.arange(200) % 3
    network = numnet.Network([8, 16, 3], activation="tanh", output_activation="softmax", weight_init=Normal(1.0),
                             dtype="float64", seed=0)
    figure = plots.plot_diagnosis(network, X, None, path=tmp_path / "diagnosis.png")
    share = tail_fractions(network, X)["dense_0"]
    assert figure.axes[0].get_title() == f"dense_0 (tanh)\n{100 * share:.0f}% on the flat tails"


def test_convolution_layers_are_examined_without_a_case_of_their_own():
    conv = pytest.importorskip("numnet.conv")
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 1, 8, 8)), rng.integers(0, 3, size=40)
    layers = [conv.Conv2D(1, 4, 3, activation="relu", bias_init=-10.0), conv.MaxPool2D(2), conv.Flatten(),
              Dense(36, 3, "softmax")]
    network = numnet.Network(layers=layers, input_shape=(1, 8, 8), seed=0)
    history = network.fit(X, y, epochs=2, batch_size=8, seed=0, diagnose=True)
    assert len(history.dead_units["conv2d_0"]) == 2 and history.dead_units["conv2d_0"][-1] == 1.0
    assert set(history.update_ratio) == {"conv2d_0.W", "dense_3.W"}
    assert any(f.code == "dead_relu" and f.layer == "conv2d_0" for f in diagnose(network, X, y, history=history))


def test_the_ratio_of_a_large_weight_measured_on_sampled_entries_is_within_5_percent_of_the_whole():
    # Oracle: NumPy on every entry. 4096 random entries estimate a ratio of two norms to ~2% (1/sqrt(4096)
    # per norm); 5% leaves room for the spread of Adam's per-entry steps.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 100)), rng.integers(0, 10, size=64)
    network = numnet.Network([100, 200, 10], output_activation="softmax", seed=0, dtype="float64")
    before = np.array(network.parameters()["dense_0.W"], copy=True)  # 20,000 entries: sampled
    history = network.fit(X, y, iterations=1, batch_size=64, seed=0, diagnose=True)
    exact = np.linalg.norm(network.parameters()["dense_0.W"] - before) / np.linalg.norm(before)
    assert history.update_ratio["dense_0.W"][0] == pytest.approx(exact, rel=0.05)



# ---------------------------------------------------------------------------------------------------------
# Sequence models: the gradient through time, and clipping
# ---------------------------------------------------------------------------------------------------------


def test_the_gradient_through_time_of_a_linear_rnn_shrinks_by_its_weights_norm_at_every_step():
    # An RNN with inputs of zero keeps h at 0, where tanh' = 1: the error at step t - 1 is the one at t times
    # Whᵀ exactly. With Wh = 0.5·I every step halves it: a closed form for the norms and the growth.
    from numnet.evidence import gradient_through_time, growth_per_step
    layer = numnet.Network(layers=[numnet.RNN(3, 4), Dense(4, 2)], input_shape=(None, 3), dtype="float64",
                           seed=0).layers[0]
    layer.params["Wh"][...] = 0.5 * np.eye(4)
    layer.params["b"][...] = 0.0
    norms = gradient_through_time(layer, np.zeros((2, 6, 3)))
    expected = norms[-1] * 0.5 ** np.arange(5, -1, -1)  # ‖dC/dxₜ‖ ∝ 0.5^(T-1-t)
    np.testing.assert_allclose(norms, expected, rtol=1e-12)
    assert growth_per_step(norms) == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_gated_layers_at_their_initial_weights_raise_no_through_time_finding(kind):
    X, y = _tokens()
    codes = [finding.code for finding in diagnose(_token_model(kind), X, y)]
    assert not {"vanishing_through_time", "exploding_through_time"} & set(codes)


def test_diagnosed_training_records_the_gradients_growth_through_time_and_rare_clipping_is_no_finding():
    X, y = _tokens(rows=8, steps=12)
    network = _token_model("LSTM")
    history = network.fit(X, y, epochs=3, batch_size=4, diagnose=True, clip_norm=1e3, seed=0)
    growth = history.time_gradient_growth["lstm_1"]
    assert len(growth) == 3 and all(0.0 < value < 1.0 for value in growth)
    assert history.clipped_fraction == [0.0, 0.0, 0.0]
    assert "frequent_clipping" not in [finding.code for finding in diagnose(network, X, y, history=history)]
