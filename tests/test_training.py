"""Tests of numnet.fit: reproducibility, input validation, divergence, the History it records (checked step
by step against PyTorch), early stopping, and the dtype of everything training creates."""

import math

import numpy as np
import pytest

import numnet
from numnet.training import DIVERGENCE_GROWTH
from oracles import as_numpy, assign, max_relative_difference, numpy_dtype, torch_reference

# Float64 training steps against PyTorch gradients and a NumPy SGD update: a few ulps per step.
TORCH_TOLERANCE = 1e-10

N_SAMPLES = 24
N_FEATURES = 3
N_CLASSES = 3


def classification_data(seed=0, n_samples=N_SAMPLES):
    """Three Gaussian blobs in 3-D, labels 0..2 (float64 inputs, int64 labels)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % N_CLASSES
    centres = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
    return centres[y] + rng.normal(size=(n_samples, N_FEATURES)), y


def classifier(seed=0, **options):
    return numnet.Network([N_FEATURES, 6, 5, N_CLASSES], activation="tanh", output_activation="softmax",
                          seed=seed, **options)


def train(network, X, y, **options):
    """fit with mini-batches of 5 (5 steps per epoch of 24 samples), Adam, and the given options."""
    settings = {"epochs": 3, "batch_size": 5, "optimizer": "adam", "learning_rate": 0.01, "seed": 11}
    settings.update(options)
    return network.fit(X, y, **settings)


# ---------------------------------------------------------------------------------------------------------
# Reproducibility
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampling", ["epoch", "replacement"])
def test_the_same_seeds_give_bit_identical_weights_and_history(sampling):
    X, y = classification_data()
    first, second = classifier(seed=5), classifier(seed=5)
    history_1 = train(first, X, y, sampling=sampling)
    history_2 = train(second, X, y, sampling=sampling)
    assert np.array_equal(first.flat_parameters, second.flat_parameters)
    assert np.array_equal(history_1.iteration_loss, history_2.iteration_loss)
    assert np.array_equal(history_1.accuracy, history_2.accuracy)
    for name, values in history_1.gradient_mean_abs.items():
        assert np.array_equal(values, history_2.gradient_mean_abs[name])


@pytest.mark.parametrize("sampling", ["epoch", "replacement"])
def test_different_training_seeds_visit_different_batches(sampling):
    X, y = classification_data()
    first, second = classifier(seed=5), classifier(seed=5)
    history_1 = train(first, X, y, sampling=sampling, seed=1)
    history_2 = train(second, X, y, sampling=sampling, seed=2)
    assert not np.array_equal(history_1.iteration_loss, history_2.iteration_loss)
    assert not np.array_equal(first.flat_parameters, second.flat_parameters)


def test_steps_per_epoch_sets_how_often_an_epoch_ends_when_batches_are_drawn_with_replacement():
    """nanoGPT's eval_interval: 11 steps in epochs of 4 end three epochs (4, 4, 3 steps), each with its
    validation and its progress call; the steps are those of one run of 11 (batches depend on (seed, epoch))."""
    X, y = classification_data()
    reports = []
    history = train(classifier(seed=5), X, y, epochs=None, iterations=11, sampling="replacement", steps_per_epoch=4,
                    validation_data=(X[:6], y[:6]), progress=reports.append)
    assert len(history.iteration_loss) == 11
    assert len(history.epoch_loss) == len(history.val_loss) == len(reports) == 3
    assert history.epoch_loss[0] == pytest.approx(np.mean(history.iteration_loss[:4]))  # equal batches of 5
    with pytest.raises(ValueError, match="steps_per_epoch=4 needs sampling='replacement'"):
        train(classifier(seed=5), X, y, steps_per_epoch=4)


@pytest.mark.parametrize("sampling", ["epoch", "replacement"])
def test_two_fits_of_k_epochs_equal_one_fit_of_2k_epochs(sampling):
    # Epoch k's batches depend only on (seed, k), and the second fit reuses the network's optimiser (with
    # its Adam moments) and seed, so the split run is the same computation as the whole one.
    X, y = classification_data()
    whole, split = classifier(seed=5), classifier(seed=5)
    history = train(whole, X, y, epochs=4, sampling=sampling)
    first_half = train(split, X, y, epochs=2, sampling=sampling)
    second_half = split.fit(X, y, epochs=2, batch_size=5, sampling=sampling)
    assert np.array_equal(whole.flat_parameters, split.flat_parameters)
    assert np.array_equal(history.iteration_loss, first_half.iteration_loss + second_half.iteration_loss)
    for name in ("m", "v"):
        assert np.array_equal(whole.optimizer.state[name], split.optimizer.state[name])
    assert (split.epochs_trained, split.iterations_trained) == (4, 4 * 5)


# ---------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------


def _with_value(array, index, value):
    array = np.array(array, dtype=np.float64)
    array[index] = value
    return array


X_GOOD, Y_GOOD = classification_data(n_samples=6)

# (id, X, y, fit options, expected message)
BAD_INPUTS = [
    ("rows_differ", X_GOOD, Y_GOOD[:5], {}, r"X has 6 samples but y has 5"),
    ("wrong_feature_count", X_GOOD[:, :2], Y_GOOD, {}, r"X has 2 features but the network expects 3"),
    ("nan_in_x", _with_value(X_GOOD, (2, 1), np.nan), Y_GOOD, {},
     r"X contains NaN or infinity \(first at index \[2, 1\]: nan\)"),
    ("inf_in_x", _with_value(X_GOOD, (0, 0), np.inf), Y_GOOD, {}, r"X contains NaN or infinity"),
    ("nan_in_y", X_GOOD, _with_value(Y_GOOD, 3, np.nan), {}, r"y contains NaN or infinity \(first at index \[3\]"),
    ("label_too_large", X_GOOD, [0, 1, 2, 3, 0, 1], {}, r"class label 3 is out of range.*labels must be 0..2"),
    ("negative_label", X_GOOD, [0, 1, -1, 2, 0, 1], {}, r"class label -1 is out of range"),
    ("non_integer_label", X_GOOD, [0, 1, 1.5, 2, 0, 1], {}, r"class labels must be integers 0..2, got the "
                                                             r"non-integer value 1.5"),
    ("wrong_one_hot_width", X_GOOD, np.eye(4)[[0, 1, 2, 3, 0, 1]], {},
     r"one-hot y has 4 columns but the network has 3 classes"),
    ("empty_x", np.empty((0, 3)), np.empty(0), {}, r"X is empty \(shape \(0, 3\)\)"),
    ("zero_learning_rate", X_GOOD, Y_GOOD, {"learning_rate": 0.0}, r"learning_rate must be a finite number > 0"),
    ("negative_learning_rate", X_GOOD, Y_GOOD, {"optimizer": "sgd", "learning_rate": -0.1},
     r"learning_rate must be a finite number > 0, got -0.1"),
    ("zero_epochs", X_GOOD, Y_GOOD, {"epochs": 0}, r"epochs must be a positive integer, got 0"),
    ("zero_iterations", X_GOOD, Y_GOOD, {"iterations": 0}, r"iterations must be a positive integer, got 0"),
    ("zero_batch_size", X_GOOD, Y_GOOD, {"batch_size": 0}, r"batch_size must be a positive integer"),
    ("negative_batch_size", X_GOOD, Y_GOOD, {"batch_size": -2}, r"batch_size must be a positive integer.*-2"),
    ("epochs_and_iterations", X_GOOD, Y_GOOD, {"epochs": 2, "iterations": 10},
     r"give epochs or iterations, not both"),
    ("unknown_sampling", X_GOOD, Y_GOOD, {"sampling": "bootstrap"},
     r"sampling must be one of epoch, replacement, got 'bootstrap'"),
    ("validation_split_of_one", X_GOOD, Y_GOOD, {"validation_split": 1.0}, r"validation_split must be in \[0, 1\)"),
    ("zero_patience", X_GOOD, Y_GOOD, {"patience": 0}, r"patience must be a positive integer, got 0"),
    ("short_sample_weight", X_GOOD, Y_GOOD, {"sample_weight": np.ones(5)},
     r"sample_weight must have shape \(6,\), one weight per sample, got shape \(5,\)"),
    ("negative_sample_weight", X_GOOD, Y_GOOD, {"sample_weight": [1, 1, -1, 1, 1, 1]},
     r"sample_weight must be >= 0, got the value -1"),
    ("zero_sample_weights", X_GOOD, Y_GOOD, {"sample_weight": np.zeros(6)}, r"sample_weight is all zeros"),
    ("validation_data_of_four", X_GOOD, Y_GOOD, {"validation_data": (X_GOOD, Y_GOOD, None, None)},
     r"validation_data must be a pair \(X_val, y_val\) or a triple"),
]


@pytest.mark.parametrize("X, y, options, message", [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_raises_value_error_naming_the_problem_and_leaves_weights_alone(X, y, options, message):
    network = classifier()
    before = as_numpy(network.flat_parameters)
    with pytest.raises(ValueError, match=message):
        network.fit(X, y, **options)
    assert np.array_equal(network.flat_parameters, before)


@pytest.mark.parametrize("options, message", [({"epochs": 1.5}, r"epochs must be a positive integer, got 1.5"),
                                             ({"batch_size": "32"}, r"batch_size must be a positive integer"),
                                             ({"seed": True}, r"seed must be a non-negative integer, got True"),
                                             ({"validation_split": "a"}, r"validation_split must be a real number")])
def test_counts_of_the_wrong_type_raise_type_error_naming_the_option(options, message):
    network = classifier()
    before = as_numpy(network.flat_parameters)
    with pytest.raises(TypeError, match=message):
        network.fit(X_GOOD, Y_GOOD, **options)
    assert np.array_equal(network.flat_parameters, before)


def test_regression_targets_of_the_wrong_width_are_refused():
    network = numnet.Network([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match="y has 3 columns but the network has 2 outputs"):
        network.fit(X_GOOD, np.zeros((6, 3)), epochs=1)


def test_binary_labels_outside_zero_one_are_refused():
    network = numnet.Network([3, 4, 1], output_activation="sigmoid", seed=0)
    with pytest.raises(ValueError, match=r"needs labels in \[0, 1\], got values from 0 to 2"):
        network.fit(X_GOOD, [0, 1, 2, 0, 1, 0], epochs=1)


# ---------------------------------------------------------------------------------------------------------
# Divergence
# ---------------------------------------------------------------------------------------------------------


def test_a_diverging_run_raises_and_keeps_the_last_weights_whose_loss_was_finite():
    # Targets of size 1e3 and SGD with learning rate 1 on a mean-squared-error regression: the weights grow
    # geometrically until the loss passes DIVERGENCE_GROWTH times its first value (or overflows).
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 3)), 1e3 * rng.normal(size=(16, 1))
    network = numnet.Network([3, 4, 1], activation="tanh", loss="mse", seed=0)
    # Full batch: one step per epoch, so the progress callback sees the weights after every step.
    weights_after_step = [as_numpy(network.flat_parameters)]
    with pytest.raises(numnet.DivergenceError) as caught:
        network.fit(X, y, epochs=500, batch_size=None, optimizer="sgd", learning_rate=1.0, seed=0,
                    progress=lambda report: weights_after_step.append(as_numpy(network.flat_parameters)))
    message = str(caught.value)
    assert "training diverged at iteration" in message and "the last finite loss was" in message
    assert "Try a smaller learning rate (now 1)" in message
    # The loss at the latest weights diverged, so the step that produced them is undone.
    assert len(weights_after_step) > 2
    assert np.all(np.isfinite(network.flat_parameters))
    assert np.array_equal(network.flat_parameters, weights_after_step[-2])
    first_loss = network.history.iteration_loss[0]
    kept_loss = network.loss_value(X, y)
    assert math.isfinite(kept_loss) and kept_loss <= DIVERGENCE_GROWTH * first_loss
    undone_loss = _loss_at(weights_after_step[-1], network, X, y)
    assert not (math.isfinite(undone_loss) and undone_loss <= DIVERGENCE_GROWTH * first_loss)
    # One step per epoch: undoing the last step also undoes the epoch it completed, and the History holds
    # exactly the steps and epochs that were kept.
    assert network.epochs_trained == network.iterations_trained == len(weights_after_step) - 2
    assert network.history.iterations == network.iterations_trained
    assert network.history.epochs == network.epochs_trained == len(network.history.learning_rate)


def _loss_at(flat_parameters, network, X, y):
    """The network's loss at the given flat weights, in the network's dtype (float32 here, as in training)."""
    probe = network.copy()
    assign(probe.flat_parameters, flat_parameters)
    with np.errstate(over="ignore", invalid="ignore"):
        return probe.loss_value(X, y)


# ---------------------------------------------------------------------------------------------------------
# History contents
# ---------------------------------------------------------------------------------------------------------


def test_iteration_loss_has_one_entry_per_step_and_epoch_loss_is_their_mean_weighted_by_batch_size():
    X, y = classification_data()
    # 24 samples in batches of 5: 5 steps per epoch (the last of 4 samples); 12 iterations = 5 + 5 + 2
    history = train(classifier(), X, y, epochs=None, iterations=12)
    assert history.iterations == 12 and history.epochs == 3
    losses = history.iteration_loss
    sizes = [5, 5, 5, 5, 4]  # a short last batch counts for the 4 samples it holds, not as much as 5
    expected = [np.average(losses[0:5], weights=sizes), np.average(losses[5:10], weights=sizes),
                np.mean(losses[10:12])]
    np.testing.assert_allclose(history.epoch_loss, expected, rtol=1e-12)
    assert len(history.accuracy) == 3 and history.val_loss == [] and history.val_accuracy == []
    assert set(history.gradient_mean_abs) == {"dense_0.W", "dense_1.W", "dense_2.W"}
    assert all(len(values) == 12 for values in history.gradient_mean_abs.values())
    assert history.learning_rate == [0.01, 0.01, 0.01]


def test_regression_history_has_losses_but_no_accuracy():
    X, _ = classification_data()
    history = numnet.Network([3, 4, 1], seed=0).fit(X, X.sum(axis=1), epochs=2, batch_size=8, seed=0)
    assert history.iterations == 6 and history.epochs == 2
    assert history.accuracy == [] and history.val_accuracy == []


def test_validation_split_holds_out_samples_and_records_validation_metrics():
    X, y = classification_data()
    # 25% of 24 = 6 held out; 18 left in batches of 5: 4 steps per epoch
    history = train(classifier(), X, y, validation_split=0.25)
    assert history.iterations == 3 * 4
    assert len(history.val_loss) == len(history.val_accuracy) == 3
    assert all(value * 6 == round(value * 6) for value in history.val_accuracy)  # counts out of 6


def test_an_unseeded_validation_split_is_reproducible_from_the_recorded_training_seed():
    # Without a seed fit draws one and records it; the held-out samples must come from that seed too,
    # so that a second fit holds out the same samples (and never trains on the first fit's validation set).
    X, y = classification_data()
    unseeded, seeded = classifier(), classifier()
    history = train(unseeded, X, y, validation_split=0.25, seed=None)
    replay = train(seeded, X, y, validation_split=0.25, seed=unseeded.training_seed)
    assert np.array_equal(history.val_loss, replay.val_loss)
    assert np.array_equal(unseeded.flat_parameters, seeded.flat_parameters)


def test_without_record_gradients_no_gradient_curves_are_kept():
    X, y = classification_data()
    history = train(classifier(), X, y, record_gradients=False)
    assert history.gradient_mean_abs == {}


def test_full_batch_steps_match_pytorch_gradients_and_a_numpy_sgd_update():
    pytest.importorskip("torch")
    X, y = classification_data()
    X_val, y_val = classification_data(seed=1, n_samples=9)
    learning_rate, steps = 0.5, 3
    network = classifier(dtype="float64", l2=0.01)
    # The shadow starts from bit-identical weights (same seed) and is stepped by PyTorch's gradients and a
    # plain NumPy update W ← W - lr·dW, independently of numnet's optimiser.
    shadow = classifier(dtype="float64", l2=0.01)
    expected = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [], "gradient_mean_abs": []}
    for _ in range(steps):
        reference = torch_reference(shadow, X, y)
        expected["loss"].append(reference.loss)
        expected["accuracy"].append(np.mean(np.argmax(reference.output, axis=1) == y))
        expected["gradient_mean_abs"].append({name: np.mean(np.abs(gradient))
                                              for name, gradient in reference.gradients.items()})
        shadow.set_parameters({name: as_numpy(value) - learning_rate * reference.gradients[name]
                               for name, value in shadow.parameters().items()})
        validation = torch_reference(shadow, X_val, y_val)
        expected["val_loss"].append(validation.loss)
        expected["val_accuracy"].append(np.mean(np.argmax(validation.output, axis=1) == y_val))

    history = network.fit(X, y, epochs=steps, batch_size=None, optimizer="sgd", learning_rate=learning_rate,
                          shuffle=False, validation_data=(X_val, y_val), seed=0)

    assert max_relative_difference(history.iteration_loss, expected["loss"]) < TORCH_TOLERANCE
    assert max_relative_difference(history.val_loss, expected["val_loss"]) < TORCH_TOLERANCE
    assert history.accuracy == expected["accuracy"]
    assert history.val_accuracy == expected["val_accuracy"]
    for name in network.weight_names():
        recorded = history.gradient_mean_abs[name]
        recomputed = [means[name] for means in expected["gradient_mean_abs"]]
        assert max_relative_difference(recorded, recomputed) < TORCH_TOLERANCE, name
    assert max_relative_difference(network.flat_parameters, shadow.flat_parameters) < TORCH_TOLERANCE


# ---------------------------------------------------------------------------------------------------------
# Early stopping
# ---------------------------------------------------------------------------------------------------------


def _diverging_validation_run(restore_best):
    """A linear regression fitting y while validated against -y: the validation loss rises every epoch."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    y = X @ np.array([1.5, -2.0])
    network = numnet.Network([2, 1], activation="linear", dtype="float64", seed=0)
    weights_after_epoch = []
    history = network.fit(X, y, epochs=50, batch_size=None, optimizer="sgd", learning_rate=0.1, seed=0,
                          validation_data=(X, -y), patience=3, restore_best=restore_best,
                          progress=lambda report: weights_after_epoch.append(as_numpy(network.flat_parameters)))
    return network, history, weights_after_epoch


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    network, history, weights_after_epoch = _diverging_validation_run(restore_best=False)
    # epoch 1 sets the best validation loss; epochs 2, 3 and 4 do not improve on it: stop after 4
    assert history.epochs == 4 and len(weights_after_epoch) == 4
    assert np.all(np.diff(history.val_loss) > 0)
    assert np.array_equal(network.flat_parameters, weights_after_epoch[-1])


def test_restore_best_puts_back_the_weights_of_the_best_epoch():
    network, history, weights_after_epoch = _diverging_validation_run(restore_best=True)
    assert history.epochs == 4
    assert np.array_equal(network.flat_parameters, weights_after_epoch[0])


def _diverging_batch_norm_run(**options):
    """The diverging validation run through a BatchNorm layer, recording weights and running statistics
    after every epoch: the best epoch is the first."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 2))
    y = X @ np.array([1.5, -2.0])
    network = numnet.Network(layers=[numnet.Dense(2, 4, bias=False), numnet.BatchNorm(4),
                                     numnet.Dense(4, 1, "linear")], dtype="float64", seed=0)
    after_epoch = []
    network.fit(X, y, epochs=6, batch_size=8, optimizer="sgd", learning_rate=0.05, seed=0,
                validation_data=(X, -y), progress=lambda report: after_epoch.append(
                    (as_numpy(network.flat_parameters), as_numpy(network.flat_state))), **options)
    return network, after_epoch


@pytest.mark.parametrize("patience", [3, None])
def test_restore_best_puts_back_the_best_epochs_batch_norm_statistics_with_its_weights(patience):
    network, after_epoch = _diverging_batch_norm_run(patience=patience, restore_best=True)
    best_parameters, best_state = after_epoch[0]
    assert not np.array_equal(after_epoch[-1][1], best_state)  # the statistics moved after the best epoch
    np.testing.assert_array_equal(as_numpy(network.flat_parameters), best_parameters)
    np.testing.assert_array_equal(as_numpy(network.flat_state), best_state)
    assert len(after_epoch) == (4 if patience == 3 else 6)  # without patience every epoch runs


def test_a_second_fit_with_only_a_learning_rate_keeps_the_networks_optimiser_and_its_state():
    X, y = classification_data()
    network = classifier()
    train(network, X, y, epochs=2, optimizer="sgd", learning_rate=0.01)
    optimizer = network.optimizer
    steps, velocity = optimizer.state["step"], as_numpy(optimizer.state["velocity"])
    assert steps == 10
    network.fit(X, y, epochs=1, batch_size=5, learning_rate=0.5, seed=11)  # no optimizer: keep the SGD
    assert network.optimizer is optimizer and type(optimizer) is numnet.optimizers.SGD
    assert optimizer.learning_rate == 0.5 and optimizer.state["step"] == steps + 5
    assert network.history.learning_rate[-1] == 0.5
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        network.fit(X, y, epochs=1, learning_rate=-1.0)
    with pytest.raises(TypeError, match="learning_rate must be a real number"):
        network.fit(X, y, epochs=1, learning_rate="0.1")
    assert np.all(np.isfinite(velocity))


def test_finite_float32_weights_whose_sum_overflows_are_not_taken_for_divergence():
    # Three weights of 3e38 sum past float32's largest value (3.4e38) but multiply an input that is always 0,
    # so the loss stays finite and the run is sound.
    rng = np.random.default_rng(0)
    X = np.column_stack([np.zeros(16), rng.normal(size=16)]).astype(np.float32)
    y = (X[:, 1] > 0).astype(int)
    network = numnet.Network([2, 3, 2], activation="tanh", output_activation="softmax", dtype="float32", seed=0)
    network.layers[0].params["W"][0, :] = 3e38
    with np.errstate(over="ignore"):
        assert not np.isfinite(as_numpy(network.flat_parameters).sum())
    history = network.fit(X, y, epochs=2, batch_size=8, optimizer="sgd", learning_rate=0.01, seed=0)
    assert history.epochs == 2 and np.all(np.isfinite(history.iteration_loss))
    assert np.all(as_numpy(network.layers[0].params["W"])[0, :] == np.float32(3e38))


def test_early_stopping_without_validation_watches_the_training_loss():
    X, y = classification_data()
    # A learning rate of 1e-9 changes the loss by far less than the tolerance 1e-4 per epoch: the first
    # epoch sets the best loss and the next two fail to beat it.
    history = train(classifier(), X, y, epochs=20, optimizer="sgd", learning_rate=1e-9, patience=2)
    assert history.epochs == 3


# ---------------------------------------------------------------------------------------------------------
# Precision of what training creates
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer, state_names", [("adam", ("m", "v")), ("momentum", ("velocity",)),
                                                    ("rmsprop", ("mean_square",)), ("adagrad", ("sum_squares",))])
def test_float32_training_keeps_parameters_gradients_and_optimizer_state_float32(optimizer, state_names):
    X, y = classification_data()  # float64 inputs, int64 labels
    network = classifier(l2=1e-3)
    history = train(network, X, y, optimizer=optimizer)
    assert numpy_dtype(network.flat_parameters) == numpy_dtype(network.flat_gradients) == np.float32
    for name in state_names:
        assert numpy_dtype(network.optimizer.state[name]) == np.float32
    assert network.forward(X).dtype == np.float32
    assert all(isinstance(value, float) for value in history.iteration_loss)


def test_float32_training_on_integer_inputs_and_targets_stays_float32():
    X, _ = classification_data()
    network = numnet.Network([N_FEATURES, 4, 1], seed=0)
    train(network, np.rint(X).astype(np.int64), np.arange(N_SAMPLES) % 4)
    assert numpy_dtype(network.flat_parameters) == numpy_dtype(network.optimizer.state["v"]) == np.float32
    assert network.predict(np.rint(X).astype(np.int32)).dtype == np.float32


def test_float64_training_on_request_keeps_everything_float64():
    X, y = classification_data()
    network = classifier(dtype="float64")
    train(network, X.astype(np.float32), y)
    assert numpy_dtype(network.flat_parameters) == numpy_dtype(network.flat_gradients) == np.float64
    assert numpy_dtype(network.optimizer.state["m"]) == np.float64
    assert network.forward(X.astype(np.float32)).dtype == np.float64


def test_a_last_update_that_leaves_non_finite_weights_is_undone_and_reported():
    # One epoch of SGD at an absurd learning rate: the loss before every update is finite, but the last
    # update overflows the weights; fit must not return normally with them.
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
    network = numnet.Network([3, 4, 1], activation="tanh", loss="mse", seed=0)
    before = as_numpy(network.flat_parameters)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(numnet.DivergenceError, match="diverged"):
        network.fit(X, y, epochs=1, batch_size=None, optimizer="sgd", learning_rate=1e38, seed=0)
    np.testing.assert_array_equal(network.flat_parameters, before)
    assert math.isfinite(network.loss_value(X, y))
    assert network.iterations_trained == network.epochs_trained == 0
    assert network.history.iterations == 0 and network.history.epochs == 0


def test_a_loss_that_grows_a_millionfold_while_finite_stops_the_run():
    # float64 Adam at learning rate 1e300: every weight moves by ~1e300, tanh keeps the hidden units in
    # [-1, 1] and the log-sum-exp keeps the cross-entropy finite (about 1e300), so without the growth rule
    # the run would go on to the end.
    X, y = np.random.default_rng(2).normal(size=(20, 3)), np.arange(20) % 3
    network = numnet.Network([3, 5, 3], activation="tanh", output_activation="softmax", dtype="float64", seed=0)
    before = as_numpy(network.flat_parameters)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(numnet.DivergenceError) as caught:
        network.fit(X, y, epochs=5, batch_size=5, optimizer="adam", learning_rate=1e300, seed=0)
    assert "times its first value" in str(caught.value)
    # The first update already made the loss explode: it is undone, and nothing of it stays recorded.
    np.testing.assert_array_equal(network.flat_parameters, before)
    assert network.iterations_trained == network.history.iterations == 0
    assert network.history.epochs == network.epochs_trained == 0


def test_after_a_divergence_mid_epoch_the_history_and_the_counters_agree():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 3)), 1e3 * rng.normal(size=(64, 1))
    network = numnet.Network([3, 4, 1], activation="tanh", loss="mse", seed=0)
    with pytest.raises(numnet.DivergenceError):
        network.fit(X, y, epochs=200, batch_size=16, optimizer="sgd", learning_rate=3.0, seed=0,
                    validation_split=0.25)
    history = network.history
    assert history.iterations == network.iterations_trained
    assert history.epochs == network.epochs_trained == len(history.learning_rate) == len(history.val_loss)
    assert all(len(values) == history.iterations for values in history.gradient_mean_abs.values())


# ---------------------------------------------------------------------------------------------------------
# Sample weights and schedules that watch progress
# ---------------------------------------------------------------------------------------------------------

#: Full-batch float64 runs whose only difference is the order of the sums (weighted rows against repeated
#: rows): a few ulps per step, over 30 steps.
SAME_RUN_RTOL = 1e-10
COUNTS = np.array([2, 0, 1, 3, 1, 0, 2, 1, 1, 4, 0, 1, 2, 1, 3, 1, 1, 0, 2, 1, 1, 1, 2, 1])  # one per sample


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_integer_sample_weights_train_the_model_of_repeated_rows_with_full_batches(optimizer):
    X, y = classification_data()
    weighted, repeated = classifier(dtype="float64"), classifier(dtype="float64")
    settings = dict(epochs=30, batch_size=None, optimizer=optimizer, learning_rate=0.05, seed=1)
    weighted_history = weighted.fit(X, y, sample_weight=COUNTS, **settings)
    repeated_history = repeated.fit(np.repeat(X, COUNTS, axis=0), np.repeat(y, COUNTS), **settings)
    np.testing.assert_allclose(as_numpy(weighted.flat_parameters), as_numpy(repeated.flat_parameters), rtol=SAME_RUN_RTOL)
    np.testing.assert_allclose(weighted_history.epoch_loss, repeated_history.epoch_loss, rtol=SAME_RUN_RTOL)


def test_each_weighted_mini_batch_step_is_torchs_weighted_mean_gradient():
    # Batches of 5 in the recorded order: each step's loss is PyTorch's weighted mean over that batch.
    pytest.importorskip("torch")
    X, y = classification_data()
    network = classifier(dtype="float64")
    weights = np.random.default_rng(2).uniform(0.0, 3.0, N_SAMPLES)
    history = network.fit(X, y, sample_weight=weights, epochs=1, batch_size=5, optimizer="sgd", learning_rate=0.1,
                          shuffle=False, seed=0)
    shadow = classifier(dtype="float64")  # the same initial weights (seed 0), stepped by hand below
    for step, start in enumerate(range(0, N_SAMPLES, 5)):
        rows = slice(start, start + 5)
        reference = torch_reference(shadow, X[rows], y[rows], sample_weight=weights[rows])
        assert history.iteration_loss[step] == pytest.approx(reference.loss, rel=TORCH_TOLERANCE)
        for name, view in shadow.parameters().items():
            assign(view, as_numpy(view) - 0.1 * reference.gradients[name])
    assert max_relative_difference(as_numpy(network.flat_parameters), as_numpy(shadow.flat_parameters)) \
        < TORCH_TOLERANCE


def test_weighted_validation_loss_is_the_loss_on_repeated_validation_rows():
    X, y = classification_data()
    X_val, y_val = classification_data(seed=1, n_samples=9)
    counts_val = np.array([1, 0, 2, 3, 1, 1, 0, 2, 1])
    settings = dict(epochs=3, batch_size=8, optimizer="adam", learning_rate=0.01, seed=2)
    weighted = classifier(dtype="float64").fit(X, y, validation_data=(X_val, y_val, counts_val), **settings)
    repeated = classifier(dtype="float64").fit(
        X, y, validation_data=(np.repeat(X_val, counts_val, axis=0), np.repeat(y_val, counts_val)), **settings)
    np.testing.assert_allclose(weighted.val_loss, repeated.val_loss, rtol=SAME_RUN_RTOL)
    assert weighted.epoch_loss == repeated.epoch_loss  # training itself is the same


def test_a_validation_split_holds_out_the_weights_of_its_rows():
    # Weight 0 on every held-out row but one: the validation loss is that row's loss alone.
    X, y = classification_data()
    network = classifier(dtype="float64")
    history = network.fit(X, y, sample_weight=np.ones(N_SAMPLES), validation_split=0.25, epochs=2, seed=4)
    # fit's split (training._prepare_data): the first round(0.25 · 24) = 6 of default_rng(seed).permutation
    held_out = np.random.default_rng(4).permutation(N_SAMPLES)[:6]
    weights = np.ones(N_SAMPLES)
    weights[held_out[1:]] = 0.0
    rerun = classifier(dtype="float64").fit(X, y, sample_weight=weights, validation_split=0.25, epochs=2, seed=4)
    row = held_out[:1]
    assert history.epoch_loss == rerun.epoch_loss  # the training rows weigh 1 in both runs
    assert rerun.val_loss[-1] == pytest.approx(network.loss_value(X[row], y[row]), rel=1e-12)


def test_reduce_on_plateau_in_fit_cuts_the_rate_on_plateaus_and_stops_at_its_minimum():
    # tolerance 1e9: only epoch 1 improves. patience 2: epochs 2-4 stall and epoch 4 halves the rate; epochs
    # 5-7 stall and epoch 7 halves it again, to 0.0025 = min_learning_rate; at epoch 10 the next cut is due
    # with the rate at its minimum, so fit stops after 10 of 50 epochs.
    X, y = classification_data()
    schedule = numnet.schedules.ReduceOnPlateau(factor=0.5, patience=2, tolerance=1e9, min_learning_rate=0.0025)
    history = train(classifier(), X, y, epochs=50, optimizer=numnet.SGD(0.01, schedule=schedule))
    assert history.epochs == 10
    assert history.learning_rate == pytest.approx([0.01] * 4 + [0.005] * 3 + [0.0025] * 3, rel=1e-15)
