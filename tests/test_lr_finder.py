"""The learning-rate finder: its suggestion trains the digits network past 97% test accuracy, it leaves the
network untouched, and its rates and stopping rule follow their closed forms.

Oracle: the held-out digits rows (accuracy), and the geometric sequence start·(end/start)^(t/(steps-1)).
"""

import numpy as np
import pytest

import numnet
from numnet import cli, datasets, preprocessing
from numnet.lr_finder import DIVERGENCE_FACTOR, SUGGESTION_DIVISOR, find_learning_rate

# The bar for the digits network trained at the suggested rate.
DIGITS_ACCURACY = 0.97


@pytest.fixture(scope="module")
def digits():
    """Pixels / 16 (as load_digits gives them), split 80/20 with seed 1."""
    X, y = datasets.load_digits()
    return preprocessing.train_test_split(X, y, 0.2, seed=1)


def test_training_at_the_suggested_rate_reaches_97_percent_test_accuracy_on_the_digits(digits):
    X_train, X_test, y_train, y_test = digits
    network = numnet.Network([64, 128, 10], activation="relu", output_activation="softmax", seed=0)
    result = find_learning_rate(network, X_train, y_train, batch_size=32, seed=0)
    assert result.suggested_learning_rate == pytest.approx(result.minimum_learning_rate / SUGGESTION_DIVISOR)
    network.fit(X_train, y_train, epochs=30, batch_size=32, learning_rate=result.suggested_learning_rate, seed=0)
    assert network.accuracy(X_test, y_test) >= DIGITS_ACCURACY


def test_the_network_keeps_its_weights_state_optimiser_and_history(digits):
    X_train, _, y_train, _ = digits
    network = numnet.Network([64, 16, 10], output_activation="softmax", batch_norm=True, dropout=0.1, seed=0)
    network.fit(X_train, y_train, epochs=1, batch_size=32, seed=0)
    arrays = {name: np.array(getattr(network, name), copy=True) for name in ("flat_parameters", "flat_state")}
    moments = {key: np.array(value, copy=True) for key, value in network.optimizer.state.items() if key != "step"}
    step, history = network.optimizer.state["step"], network.history.to_dict()
    find_learning_rate(network, X_train, y_train, steps=50)
    for name, array in arrays.items():
        assert np.array_equal(getattr(network, name), array)
    for key, array in moments.items():
        assert np.array_equal(network.optimizer.state[key], array)
    assert network.optimizer.state["step"] == step and network.history.to_dict() == history


def test_the_rates_grow_geometrically_and_the_test_stops_when_the_loss_diverges(digits):
    X_train, _, y_train, _ = digits
    network = numnet.Network([64, 32, 10], output_activation="softmax", seed=0)
    result = find_learning_rate(network, X_train, y_train, optimizer="sgd", start_learning_rate=1e-4,
                                end_learning_rate=1e4, steps=100)
    rates = np.array(result.learning_rates)
    # Eight decades over 99 intervals: each rate is 10^(8/99) times the one before.
    np.testing.assert_allclose(rates[1:] / rates[:-1], 10.0 ** (8 / 99), rtol=1e-12)
    assert result.diverged and len(rates) < 100
    assert result.losses[-1] > DIVERGENCE_FACTOR * min(result.losses) or not np.isfinite(result.raw_losses[-1])
    assert len(result.losses) == len(result.raw_losses) == len(rates)


def test_a_given_optimiser_lends_its_hyperparameters_and_is_not_changed(digits):
    X_train, _, y_train, _ = digits
    momentum = numnet.Momentum(learning_rate=0.5, momentum=0.8)
    result = find_learning_rate(numnet.Network([64, 8, 10], output_activation="softmax", seed=0), X_train, y_train,
                                optimizer=momentum, steps=20)
    assert len(result.learning_rates) == 20
    assert momentum.state is None and momentum.learning_rate == 0.5 and momentum.momentum == 0.8


@pytest.mark.parametrize("options, message", [
    ({"start_learning_rate": 1.0, "end_learning_rate": 0.1}, "below"),
    ({"start_learning_rate": -1.0}, "start_learning_rate"),
    ({"steps": 1}, "steps"),
])
def test_bad_options_are_refused_with_a_message_naming_them(options, message, digits):
    X_train, _, y_train, _ = digits
    with pytest.raises(ValueError, match=message):
        find_learning_rate(numnet.Network([64, 10], output_activation="softmax"), X_train, y_train, **options)


def test_numnet_lr_find_prints_the_suggestion_and_writes_the_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert cli.main(["lr-find", "--steps", "60", "--output", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "suggested learning rate:" in printed
    assert (tmp_path / cli.LR_FINDER_FILE_NAME).stat().st_size > 0
