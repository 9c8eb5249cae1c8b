"""The engine on sequences: outputs (n, time_steps, classes) with class-index targets (n, time_steps), a
Dense layer applied at every time step, the loss over counted tokens in a batch and an epoch, perplexity.

Oracles: PyTorch autograd (nn.Linear on 3-D inputs, cross_entropy with ignore_index) in float64, closed forms
written from the targets."""

import math

import numpy as np
import pytest

import numnet

#: float64 products and sums of a few dozen terms.
TORCH_TOLERANCE = 1e-12
N, STEPS, FEATURES, CLASSES = 10, 4, 3, 5


def sequence_data(seed=0, ignored=0.25):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, STEPS, FEATURES))
    y = rng.integers(0, CLASSES, size=(N, STEPS))
    y[rng.random((N, STEPS)) < ignored] = -1
    return X, y


def time_distributed(seed=0):
    """Dense layers applied at every time step: a sequence tagger without recurrence."""
    return numnet.Network(layers=[numnet.Dense(FEATURES, 6, "tanh"), numnet.Dense(6, CLASSES, "softmax")],
                          input_shape=(STEPS, FEATURES), dtype="float64", seed=seed)


def test_a_dense_layer_at_every_time_step_is_torchs_linear_on_a_3d_input():
    torch = pytest.importorskip("torch")
    X, y = sequence_data()
    network = time_distributed()
    W0, b0, W1, b1 = [torch.tensor(np.array(layer.params[key]), requires_grad=True)
                      for layer in network.layers for key in ("W", "b")]
    logits = torch.tanh(torch.tensor(X) @ W0 + b0) @ W1 + b1  # (N, STEPS, CLASSES)
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, CLASSES), torch.tensor(y).reshape(-1),
                                                 ignore_index=-1)
    expected.backward()
    loss = network.loss_and_gradients(network.prepare_inputs(X), network.prepare_targets(y))
    assert loss == pytest.approx(float(expected.detach()), rel=TORCH_TOLERANCE)
    gradients = network.gradients()
    for name, tensor in zip(("dense_0.W", "dense_0.b", "dense_1.W", "dense_1.b"), (W0, b0, W1, b1)):
        np.testing.assert_allclose(gradients[name], tensor.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(network.forward(X), torch.softmax(logits, -1).detach().numpy(), rtol=1e-12)
    assert "(None, 4, 6)" in network.summary().splitlines()[3]  # dense_0: 6 outputs at each of 4 steps


def test_an_epochs_loss_weighs_each_batch_by_its_counted_tokens_and_perplexity_is_its_exponential():
    X, y = sequence_data(seed=1, ignored=0.4)
    network = time_distributed()
    history = network.fit(X, y, epochs=1, batch_size=3, shuffle=False, optimizer="sgd", learning_rate=0.1, seed=0)
    counts = [np.count_nonzero(y[start:start + 3] != -1) for start in range(0, N, 3)]
    assert len(set(counts)) > 1  # the batches count different numbers of tokens
    expected = np.average(history.iteration_loss, weights=counts)
    assert history.epoch_loss == [pytest.approx(expected, rel=1e-12)]
    assert history.perplexity == [pytest.approx(math.exp(expected), rel=1e-12)]  # no penalty here


def test_accuracy_counts_tokens_and_skips_ignored_ones():
    X, y = sequence_data(seed=2)
    network = time_distributed()
    predicted = network.predict(X)
    assert predicted.shape == (N, STEPS)
    counted = y != -1
    assert network.accuracy(X, y) == pytest.approx(np.mean(predicted[counted] == y[counted]))


def test_validation_records_loss_accuracy_and_perplexity_over_tokens():
    X, y = sequence_data(seed=3)
    network = time_distributed()
    history = network.fit(X, y, epochs=2, batch_size=4, validation_data=(X[:4], y[:4]), seed=0)
    assert len(history.val_perplexity) == 2 and len(history.perplexity) == 2
    assert history.val_perplexity[-1] == pytest.approx(math.exp(network.loss_value(X[:4], y[:4])))
    assert history.val_accuracy[-1] == pytest.approx(network.accuracy(X[:4], y[:4]))


def test_each_epochs_report_carries_its_perplexities_and_its_line_shows_them():
    X, y = sequence_data(seed=4)
    network = time_distributed()
    reports = []
    history = network.fit(X, y, epochs=2, batch_size=5, validation_data=(X[:4], y[:4]), seed=0,
                          progress=reports.append)
    for report, loss, val_loss in zip(reports, history.epoch_loss, history.val_loss):
        # no penalty here, so perplexity is e to the loss per token
        assert report.perplexity == pytest.approx(math.exp(loss), rel=1e-12)
        assert report.val_perplexity == pytest.approx(math.exp(val_loss), rel=1e-12)
        assert f"perplexity {report.perplexity:.4g}" in report.line()
        assert f"val_perplexity {report.val_perplexity:.4g}" in report.line()


def test_a_classifier_of_one_vector_per_sample_records_no_perplexity():
    rng = np.random.default_rng(0)
    network = numnet.Network([3, 4, 2], output_activation="softmax", seed=0)
    reports = []
    history = network.fit(rng.normal(size=(8, 3)), np.arange(8) % 2, epochs=1, progress=reports.append)
    assert history.perplexity == [] and not network.counts_tokens
    assert reports[0].perplexity is None and "perplexity" not in reports[0].line()


@pytest.mark.parametrize("targets, message", [
    (np.zeros((N, STEPS + 1), dtype=int), r"y must have shape \(n_samples, 4\), a class index per position"),
    (np.full((N, STEPS), 5), r"y holds the class index 5 at \(0, 0\), outside 0\.\.4"),
    (np.full((N, STEPS), -2), r"class index -2 .* use -1 \(the loss's ignore_index\)"),
    (np.full((N, STEPS), 0.5), r"class indices .* non-integer value 0\.5"),
])
def test_sequence_targets_that_do_not_fit_are_refused_saying_why(targets, message):
    X, _ = sequence_data()
    with pytest.raises(ValueError, match=message):
        time_distributed().fit(X, targets, epochs=1)


def test_a_network_ending_in_image_maps_is_still_refused():
    with pytest.raises(ValueError, match="must give one vector per sample"):
        numnet.Network(layers=[numnet.Conv2D(1, 2, 3)], input_shape=(1, 5, 5))


# ---------------------------------------------------------------------------------------------------------
# A language model: Embedding, a recurrent layer and Dense, stateful across batches
# ---------------------------------------------------------------------------------------------------------

VOCABULARY, EMBEDDING, HIDDEN = 6, 4, 5


def language_model(kind="LSTM", stateful=False, seed=0):
    recurrent = getattr(numnet, kind)(EMBEDDING, HIDDEN, stateful=stateful)
    return numnet.Network(layers=[numnet.Embedding(VOCABULARY, EMBEDDING), recurrent,
                                  numnet.Dense(HIDDEN, VOCABULARY, "softmax")], dtype="float64", seed=seed)


def token_streams(rows=4, steps=3, seed=0):
    """Inputs and next-token targets of a random token stream, ``rows`` rows of ``steps`` ids each."""
    ids = np.random.default_rng(seed).integers(0, VOCABULARY, size=(rows, steps + 1))
    return ids[:, :-1], ids[:, 1:]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_a_language_model_passes_the_gradient_check_stateful_or_not(kind):
    X, y = token_streams()
    for stateful in (False, True):
        network = language_model(kind, stateful)
        network.fit(X, y, epochs=2, batch_size=2, shuffle=False, seed=0)  # a stateful one now carries a state
        before = network.carried_state()
        errors = numnet.gradient_check(network, X[:2], y[:2])
        assert max(errors.values()) < 1e-6, (kind, stateful, errors)
        after = network.carried_state()
        assert before.keys() == after.keys()
        for name in before:
            for key in before[name]:
                np.testing.assert_array_equal(after[name][key], before[name][key])  # left as it was


def test_a_stateful_network_refuses_shuffled_or_uneven_batches():
    X, y = token_streams(rows=5)
    with pytest.raises(ValueError, match=r"batches must come in order: fit\(\.\.\., shuffle=False\)"):
        language_model(stateful=True).fit(X, y, epochs=1, batch_size=5)
    with pytest.raises(ValueError, match="leave a last batch of 1"):
        language_model(stateful=True).fit(X, y, epochs=1, batch_size=2, shuffle=False)


def test_reset_states_starts_the_next_batch_from_zeros():
    X, y = token_streams()
    network = language_model(stateful=True)
    network.fit(X, y, epochs=1, batch_size=2, shuffle=False, seed=0)
    assert set(network.carried_state()["lstm_1"]) == {"h", "c"}
    network.reset_states()
    assert network.carried_state() == {"lstm_1": {}}


def test_a_checkpoint_keeps_the_carried_state_and_a_resumed_run_is_bit_identical(tmp_path):
    X, y = token_streams(rows=4, steps=5, seed=1)
    straight = language_model(stateful=True)
    straight.fit(X, y, epochs=4, batch_size=2, shuffle=False, seed=0, optimizer="adam", learning_rate=0.01)
    first = language_model(stateful=True)
    first.fit(X, y, epochs=2, batch_size=2, shuffle=False, seed=0, optimizer="adam", learning_rate=0.01)
    numnet.save_model(first, tmp_path / "checkpoint.npz")
    resumed = numnet.load_model(tmp_path / "checkpoint.npz")
    for key, array in first.carried_state()["lstm_1"].items():
        np.testing.assert_array_equal(resumed.carried_state()["lstm_1"][key], array)
    resumed.fit(X, y, epochs=2, batch_size=2, shuffle=False)
    np.testing.assert_array_equal(resumed.flat_parameters, straight.flat_parameters)
    for key, array in straight.carried_state()["lstm_1"].items():
        np.testing.assert_array_equal(resumed.carried_state()["lstm_1"][key], array)


def test_a_sequence_models_length_stays_free_after_training_on_one_length():
    X, y = token_streams(rows=4, steps=5)
    network = language_model()
    network.fit(X, y, epochs=1, batch_size=2, seed=0)
    assert network.input_shape == (None,) and network.output_shapes[-1] == (None, VOCABULARY)
    longer = np.random.default_rng(1).integers(0, VOCABULARY, size=(3, 9))
    probabilities = network.predict_proba(longer)
    assert probabilities.shape == (3, 9, VOCABULARY)
    # a causal model: the first five steps do not depend on what comes after them
    np.testing.assert_allclose(network.predict_proba(longer[:, :5]), probabilities[:, :5], rtol=1e-12)


def test_a_copy_keeps_the_language_models_vocabulary():
    from numnet.text import Vocabulary
    network = language_model()
    assert network.vocabulary is None
    network.vocabulary = Vocabulary.from_text("abcde")
    assert network.copy().vocabulary == network.vocabulary
