"""Dropout and BatchNorm: forward, backward and running statistics against PyTorch in float64, random stacks
against central differences, the masks' random stream, the batch-of-one rule, gradient checking, saving and
resuming."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numnet
from numnet.initializers import Normal
from oracles import as_numpy, assign, max_relative_difference, torch_stack_reference

# float64 against PyTorch float64 with the same weights and masks: the two sum the same few products in
# different orders, a few ulps apart (measured below 1e-14 of each array's scale).
TORCH_TOLERANCE = 1e-10
# Five-point central differences in float64 at two steps: error ~1e-16·|C|/h from rounding plus
# ~h⁴·|fifth derivative| from truncation. Step 1e-4 keeps rounding near 1e-12, small beside the vanishing
# gradients of deep sigmoid stacks; step 1e-5 keeps truncation small where stacked BatchNorms of two
# samples bend the loss within 1e-3 of a parameter (there step 1e-4 was 1e-4 off). Over 3,000 random stacks
# each gradient agreed with backprop at one step or the other; a wrong backprop agrees at neither.
STEPS = (1e-4, 1e-5)
#: Random stacks per run; set NUMNET_STACK_EXAMPLES=3000 for the long run quoted above.
STACK_EXAMPLES = int(os.environ.get("NUMNET_STACK_EXAMPLES", "60"))
GRADIENT_TOLERANCE = 1e-6
# A parameter whose exact gradient is zero (a Dense bias right before BatchNorm, whose shift the
# normalisation removes) has no meaningful relative error: its numerical gradient is rounding noise, which
# must stay below this fraction of the whole gradient's norm.
ZERO_GRADIENT_TOLERANCE = 1e-8


def data(n_samples=12, n_features=4, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_samples, n_features)), rng.integers(0, n_classes, size=n_samples)


def assert_close_by_name(network, actual, expected):
    """Each array within TORCH_TOLERANCE of its scale; a parameter whose exact gradient is zero (and that
    therefore only holds rounding) within ZERO_GRADIENT_TOLERANCE of the scale of all of them."""
    whole = max(float(np.max(np.abs(value))) for value in expected.values())
    zero = exact_zero_gradients(network)
    for name, array in actual.items():
        if name in zero:
            assert float(np.max(np.abs(as_numpy(array) - expected[name]))) < ZERO_GRADIENT_TOLERANCE * whole, name
        else:
            assert max_relative_difference(array, expected[name]) < TORCH_TOLERANCE, name


def assert_matches_pytorch(network, X, y, dropout_seed=None):
    """numnet's training pass (masks from ``default_rng(dropout_seed)``) equals PyTorch's twin's."""
    pytest.importorskip("torch")
    reference = torch_stack_reference(network, X, y, dropout_seed=dropout_seed)
    rng = None if dropout_seed is None else np.random.default_rng(dropout_seed)
    Xp, Yp = network.prepare_inputs(X), network.prepare_targets(y, len(X))
    loss = network.loss_and_gradients(Xp, Yp, rng)
    assert max_relative_difference(network.output, reference.output) < TORCH_TOLERANCE
    assert loss == pytest.approx(reference.loss, rel=TORCH_TOLERANCE)
    gradients = network.gradients()
    assert set(gradients) == set(reference.gradients)
    assert_close_by_name(network, gradients, reference.gradients)
    for name, array in network.state().items():  # the running statistics one training pass moved
        assert max_relative_difference(array, reference.state[name]) < TORCH_TOLERANCE, name


# ---------------------------------------------------------------------------------------------------------
# Against PyTorch
# ---------------------------------------------------------------------------------------------------------


def test_dropout_forward_and_backward_match_pytorch_with_the_same_mask():
    network = numnet.Network(layers=[numnet.Dense(4, 6, "tanh"), numnet.Dropout(0.4), numnet.Dense(6, 3, "softmax")],
                             dtype="float64", seed=1)
    assert_matches_pytorch(network, *data(), dropout_seed=7)


def test_batchnorm_forward_and_backward_match_pytorch():
    network = numnet.Network(layers=[numnet.Dense(4, 6, bias_init=Normal(0.5)), numnet.BatchNorm(6, momentum=0.3),
                                     numnet.Activation("tanh"), numnet.Dense(6, 3, "softmax")],
                             dtype="float64", seed=2)
    network.set_parameters({"batch_norm_1.gamma": np.linspace(0.5, 2.0, 6), "batch_norm_1.beta": np.linspace(-1, 1, 6)})
    assert_matches_pytorch(network, *data())


def test_batchnorm_and_dropout_together_with_mean_squared_error_match_pytorch():
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))
    network = numnet.Network([3, 8, 8, 2], activation="sigmoid", batch_norm=True, dropout=0.3, loss="mse",
                             dtype="float64", seed=3)
    assert_matches_pytorch(network, X, Y, dropout_seed=11)


def test_batchnorm_running_statistics_after_several_sgd_steps_match_pytorch():
    pytest.importorskip("torch")
    X, y = data(n_samples=16)
    network = numnet.Network([4, 5, 3], activation="tanh", output_activation="softmax", batch_norm=True,
                             dtype="float64", seed=4)
    reference = torch_stack_reference(network, X, y, steps=6, learning_rate=0.1)
    network.fit(X, y, epochs=6, batch_size=None, shuffle=False, optimizer="sgd", learning_rate=0.1, seed=0)
    # The reference takes one more training forward (for its gradients), which moves the statistics once
    # more; compare the parameters after six steps and the statistics after the reference's seventh pass.
    assert_close_by_name(network, network.parameters(), reference.parameters)
    network.forward(X, training=True)
    for name, value in reference.state.items():
        assert max_relative_difference(network.state()[name], value) < TORCH_TOLERANCE, name


def test_batchnorm_normalises_images_per_channel_like_pytorch_batchnorm2d():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.normal(2.0, 3.0, size=(3, 4, 5, 6))  # (n, C, H, W)
    layer = numnet.BatchNorm(4, momentum=0.2)
    layer.bind({"gamma": rng.normal(size=4), "beta": rng.normal(size=4)}, {"gamma": np.zeros(4), "beta": np.zeros(4)})
    layer.bind_state({"running_mean": np.zeros(4), "running_var": np.ones(4)})
    reference = torch.nn.BatchNorm2d(4, eps=layer.eps, momentum=0.2, dtype=torch.float64)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.params["gamma"]))
        reference.bias.copy_(torch.tensor(layer.params["beta"]))
    x_torch = torch.tensor(x, requires_grad=True)
    output = reference(x_torch)
    grad_output = rng.normal(size=x.shape)
    output.backward(torch.tensor(grad_output))
    assert max_relative_difference(layer.forward(x, training=True), output.detach().numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(layer.backward(grad_output), x_torch.grad.numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(layer.grads["gamma"], reference.weight.grad.numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(layer.grads["beta"], reference.bias.grad.numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(layer.state["running_var"], reference.running_var.numpy()) < TORCH_TOLERANCE
    reference.eval()
    assert max_relative_difference(layer.forward(x), reference(x_torch).detach().numpy()) < TORCH_TOLERANCE


# ---------------------------------------------------------------------------------------------------------
# Random stacks against central differences
# ---------------------------------------------------------------------------------------------------------


@st.composite
def stacks(draw):
    """A random stack of Dense, Activation, BatchNorm and Dropout(0.0) layers with smooth activations (no
    relu kinks for central differences to straddle), a loss, and a batch."""
    n_inputs = draw(st.integers(1, 4))
    layers, width = [], n_inputs
    for _ in range(draw(st.integers(1, 3))):
        out = draw(st.integers(1, 5))
        activation = draw(st.sampled_from(["tanh", "sigmoid", "linear"]))
        extras = draw(st.lists(st.sampled_from(["activation", "batch_norm", "dropout"]), max_size=3))
        layers.append(numnet.Dense(width, out, activation, bias_init=Normal(0.3)))
        for extra in extras:
            layers.append({"activation": lambda: numnet.Activation(draw(st.sampled_from(["tanh", "sigmoid"]))),
                           "batch_norm": lambda: numnet.BatchNorm(out), "dropout": lambda: numnet.Dropout(0.0)}[extra]())
        width = out
    loss = draw(st.sampled_from(["softmax_cross_entropy", "mse"]))
    n_outputs = draw(st.integers(2, 4))
    layers.append(numnet.Dense(width, n_outputs, "softmax" if loss != "mse" else "linear"))
    n_samples = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2 ** 16))
    return layers, loss, n_samples, seed


def five_point_gradient(f, x, h):
    """df/dx by the five-point central difference (-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h)) / 12h, perturbing
    each entry of ``x`` in place and restoring it (error O(h⁴))."""
    gradient = np.zeros(x.shape)
    for index in np.ndindex(*x.shape):
        original = float(x[index])
        values = []
        for offset in (2 * h, h, -h, -2 * h):
            x[index] = original + offset
            values.append(float(f(x)))
        x[index] = original
        gradient[index] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * h)
    return gradient


def exact_zero_gradients(network):
    """Names of the biases right before a BatchNorm (possibly through Dropout(0)): their gradient is zero."""
    names = []
    for index, layer in enumerate(network.layers[:-1]):
        following = next((later for later in network.layers[index + 1:] if not isinstance(later, numnet.Dropout)),
                         None)
        if isinstance(layer, numnet.Dense) and isinstance(following, numnet.BatchNorm):
            names.append(f"{layer.name}.b")
    return names


@settings(max_examples=STACK_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
def test_random_stacks_backprop_matches_central_differences(stack):
    layers, loss, n_samples, seed = stack
    network = numnet.Network(layers=layers, loss=loss, dtype="float64", seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, layers[0].n_inputs))
    y = rng.integers(0, network.n_outputs, size=n_samples) if loss != "mse" else rng.normal(size=(n_samples, network.n_outputs))
    Xp, Yp = network.prepare_inputs(X), network.prepare_targets(y, n_samples)
    network.loss_and_gradients(Xp, Yp)
    analytic = {name: as_numpy(gradient) for name, gradient in network.gradients().items()}
    state = as_numpy(network.flat_state)

    def training_loss(_):
        logits, output = network._forward(Xp, training=True)
        assign(network.flat_state, state)
        return network._loss_from(logits, output, Yp)

    numerics = [{name: five_point_gradient(training_loss, parameter, step)
                 for name, parameter in network.parameters().items()} for step in STEPS]
    whole = np.sqrt(sum(float(np.sum(value ** 2)) for value in analytic.values()))
    for name in analytic:
        # Relative to the parameter's own gradient, or, for a gradient that is exactly zero (a Dense bias
        # right before BatchNorm) or nearly so (the weights feeding a BatchNorm of two samples, whose
        # output is ±1 whatever they are), relative to the whole gradient.
        errors = [(numnet.relative_error(analytic[name], numeric[name]),
                   float(np.linalg.norm(analytic[name] - numeric[name]))) for numeric in numerics]
        assert any(relative < GRADIENT_TOLERANCE or absolute < ZERO_GRADIENT_TOLERANCE * whole
                   for relative, absolute in errors), (name, errors, whole)


def test_gradient_check_handles_batchnorm_and_dropout_and_leaves_the_model_as_it_was():
    X, y = data(n_samples=8)
    network = numnet.Network(layers=[numnet.Dense(4, 6, "tanh"), numnet.BatchNorm(6), numnet.Dropout(0.5),
                                     numnet.Dense(6, 3, "softmax")], dtype="float64", seed=6)
    network.set_state({"batch_norm_1.running_mean": np.full(6, 0.25), "batch_norm_1.running_var": np.full(6, 2.0)})
    parameters, state = as_numpy(network.flat_parameters), as_numpy(network.flat_state)
    errors = numnet.gradient_check(network, X, y)
    # Every pass is a training pass with the same masks, so even the dropped units' weights agree.
    assert max(errors.values()) < GRADIENT_TOLERANCE, errors
    np.testing.assert_array_equal(network.flat_parameters, parameters)
    np.testing.assert_array_equal(network.flat_state, state)


# ---------------------------------------------------------------------------------------------------------
# Dropout's behaviour and random stream
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate, error", [(-0.1, ValueError), (1.0, ValueError), (float("nan"), ValueError),
                                         ("0.5", TypeError), (True, TypeError)])
def test_a_dropout_rate_outside_zero_to_one_is_refused(rate, error):
    with pytest.raises(error, match="rate must"):
        numnet.Dropout(rate)


def test_dropout_is_the_identity_at_inference_and_scales_kept_units_in_training():
    x = np.arange(1.0, 2001.0).reshape(20, 100)
    layer = numnet.Dropout(0.25)
    np.testing.assert_array_equal(layer.forward(x), x)
    y = layer.forward(x, training=True, rng=np.random.default_rng(0))
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.75, rtol=1e-15)
    assert abs(kept.mean() - 0.75) < 0.03  # 2,000 Bernoulli(0.75) draws: the standard error is 0.0097
    grad = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(grad, kept / 0.75, rtol=1e-15)


class Recorder(numnet.Layer):
    """The identity, remembering every training batch it sees."""

    def __init__(self, *, name=None):
        super().__init__(name=name)
        self.batches = []

    def forward(self, x, training=False, rng=None):
        if training:
            self.batches.append(np.array(x))
            self._cache = ()
        return x

    def backward(self, grad_output, propagate=True):
        return grad_output if propagate else None


def test_adding_dropout_changes_neither_the_batches_nor_the_reproducibility_of_a_run():
    X, y = data(n_samples=30)
    plain_recorder, dropout_recorder = Recorder(), Recorder()
    plain = numnet.Network(layers=[plain_recorder, numnet.Dense(4, 5, "relu"), numnet.Dense(5, 3, "softmax")],
                           input_shape=(4,), seed=0)
    dropped = numnet.Network(layers=[dropout_recorder, numnet.Dense(4, 5, "relu"), numnet.Dropout(0.5),
                                     numnet.Dense(5, 3, "softmax")], input_shape=(4,), seed=0)
    plain.fit(X, y, epochs=3, batch_size=8, seed=9)
    dropped.fit(X, y, epochs=3, batch_size=8, seed=9)
    assert len(plain_recorder.batches) == len(dropout_recorder.batches) == 12
    for seen_plain, seen_dropped in zip(plain_recorder.batches, dropout_recorder.batches):
        np.testing.assert_array_equal(seen_plain, seen_dropped)
    again = numnet.Network(layers=[Recorder(), numnet.Dense(4, 5, "relu"), numnet.Dropout(0.5),
                                   numnet.Dense(5, 3, "softmax")], input_shape=(4,), seed=0)
    again.fit(X, y, epochs=3, batch_size=8, seed=9)
    np.testing.assert_array_equal(again.flat_parameters, dropped.flat_parameters)
    assert again.history.to_dict() == dropped.history.to_dict()
    other = numnet.Network(layers=[Recorder(), numnet.Dense(4, 5, "relu"), numnet.Dropout(0.5),
                                   numnet.Dense(5, 3, "softmax")], input_shape=(4,), seed=0)
    other.fit(X, y, epochs=3, batch_size=8, seed=10)
    assert not np.array_equal(other.flat_parameters, dropped.flat_parameters)


def test_validation_and_the_loss_value_see_dropout_as_the_identity():
    X, y = data(n_samples=40)
    network = numnet.Network([4, 16, 3], output_activation="softmax", dropout=0.5, seed=0)
    history = network.fit(X[:30], y[:30], epochs=2, batch_size=10, validation_data=(X[30:], y[30:]), seed=0)
    assert history.val_loss[-1] == pytest.approx(network.loss_value(X[30:], y[30:]), rel=1e-6)
    np.testing.assert_array_equal(network.predict_proba(X), network.predict_proba(X))


# ---------------------------------------------------------------------------------------------------------
# BatchNorm's behaviour
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arguments, error, message", [
    ((0,), ValueError, "n_features must be a positive integer"),
    ((4, 0.0), ValueError, r"momentum must be in \(0, 1\]"),
    ((4, 1.5), ValueError, r"momentum must be in \(0, 1\]"),
    ((4, 0.1, 0.0), ValueError, "eps must be a finite number > 0"),
    ((4, 0.1, float("inf")), ValueError, "eps must be a finite number > 0"),
    ((4, "0.1"), TypeError, "momentum must be a real number, got str: '0.1'"),
    ((4, 0.1, True), TypeError, "eps must be a real number, got bool: True"),
])
def test_batchnorm_refuses_bad_arguments(arguments, error, message):
    with pytest.raises(error, match=message):
        numnet.BatchNorm(*arguments)


def test_batchnorm_parameters_start_at_one_and_zero_and_are_not_penalised():
    network = numnet.Network([3, 4, 2], batch_norm=True, l2=0.5, seed=0)
    np.testing.assert_array_equal(network.parameters()["batch_norm_1.gamma"], np.ones(4))
    np.testing.assert_array_equal(network.parameters()["batch_norm_1.beta"], np.zeros(4))
    np.testing.assert_array_equal(network.state()["batch_norm_1.running_mean"], np.zeros(4))
    np.testing.assert_array_equal(network.state()["batch_norm_1.running_var"], np.ones(4))
    assert network.weight_names() == ["dense_0.W", "dense_3.W"]
    W0, W3 = (as_numpy(network.parameters()[name]) for name in ("dense_0.W", "dense_3.W"))
    assert network.penalty() == pytest.approx(0.25 * (np.sum(W0 ** 2) + np.sum(W3 ** 2)), rel=1e-6)


def test_a_training_batch_of_one_sample_is_a_value_error_naming_the_layer_not_a_nan():
    network = numnet.Network([3, 4, 2], batch_norm=True, seed=0)
    with pytest.raises(ValueError, match=r"layer batch_norm_1 \(BatchNorm\) needs at least 2 values per feature"):
        network.forward(np.ones((1, 3)), training=True)
    assert network.predict(np.ones((1, 3))).shape == (1, 2)  # inference uses the running statistics


@pytest.mark.parametrize("n_samples, batch_size, which", [(33, 32, "the last batch of each epoch"),
                                                          (10, 1, "every batch")])
def test_fit_refuses_a_batch_of_one_before_the_first_step_and_says_how_to_avoid_it(n_samples, batch_size, which):
    X, y = data(n_samples=n_samples)
    network = numnet.Network([4, 5, 3], output_activation="softmax", batch_norm=True, seed=0)
    before = as_numpy(network.flat_parameters)
    with pytest.raises(ValueError, match=rf"batch_norm_1 \(BatchNorm\) needs at least 2 samples.*{which} holds 1.*"
                                         r"choose a batch_size"):
        network.fit(X, y, epochs=1, batch_size=batch_size)
    np.testing.assert_array_equal(network.flat_parameters, before)
    assert network.iterations_trained == 0


# ---------------------------------------------------------------------------------------------------------
# Saving, loading and resuming
# ---------------------------------------------------------------------------------------------------------


def trained_network(epochs=3):
    X, y = data(n_samples=40)
    # On NumPy, as load_model rebuilds every network: a resumed run then sums in the same order.
    network = numnet.Network([4, 8, 6, 3], output_activation="softmax", batch_norm=True, dropout=0.3, l2=1e-3,
                             seed=5, backend="numpy")
    network.fit(X, y, epochs=epochs, batch_size=12, seed=2)
    return network, X, y


def test_a_network_with_batchnorm_and_dropout_saves_and_loads_bit_for_bit(tmp_path):
    network, X, _ = trained_network()
    numnet.save_model(network, tmp_path / "model.npz")
    loaded = numnet.load_model(tmp_path / "model.npz")
    assert [layer.describe() for layer in loaded.layers] == [layer.describe() for layer in network.layers]
    np.testing.assert_array_equal(loaded.flat_state, network.flat_state)
    np.testing.assert_array_equal(loaded.predict_proba(X), network.predict_proba(X))


def test_a_checkpoint_resumed_mid_training_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    uninterrupted, X, y = trained_network(epochs=5)
    partial, _, _ = trained_network(epochs=2)
    numnet.save_model(partial, tmp_path / "checkpoint.npz")
    resumed = numnet.load_model(tmp_path / "checkpoint.npz")
    resumed.fit(X, y, epochs=3, batch_size=12)  # the saved seed and optimiser go on
    np.testing.assert_array_equal(resumed.flat_parameters, uninterrupted.flat_parameters)
    np.testing.assert_array_equal(resumed.flat_state, uninterrupted.flat_state)
    assert resumed.history.to_dict() == uninterrupted.history.to_dict()
