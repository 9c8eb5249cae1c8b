"""Conv2D, MaxPool2D and Flatten: forward and backward against PyTorch in float64, random convolutional stacks
against central differences, odd shapes, bad input, gradient checking, saving and resuming."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import numnet
from numnet.initializers import Normal
from oracles import as_numpy, assign, max_relative_difference, torch_activation
# The same comparisons as the Dense, Dropout and BatchNorm stacks: PyTorch's twin, five-point differences
from test_dropout_batchnorm import assert_matches_pytorch, five_point_gradient

# float64 against PyTorch float64 with the same weights: the two sum the same products in different orders
# (im2col and a matrix product here, a direct or blocked convolution there), a few ulps apart; measured
# below 1e-14 of each array's scale.
TORCH_TOLERANCE = 1e-10
# Five-point central differences in float64, as in test_dropout_batchnorm.py: step 1e-4 keeps rounding near
# 1e-12; where two stacked BatchNorms of few values bend the loss sharply, step 1e-5 keeps truncation small.
STEPS = (1e-4, 1e-5)
GRADIENT_TOLERANCE = 1e-6
# A gradient whose exact value is zero (a Conv2D bias right before BatchNorm) holds only rounding noise,
# which must stay below this fraction of the whole gradient's norm.
ZERO_GRADIENT_TOLERANCE = 1e-8
# Max pooling has a kink wherever two values of a window tie: central differences that straddle one
# disagree with any one-sided derivative. Random stacks whose windows hold two values closer than this
# (~1000 steps h) are skipped; they are rare with normal data.
POOL_TIE_MARGIN = 1e-3
#: Random stacks per run; set NUMNET_CONV_STACK_EXAMPLES=500 for a long run. The array-API rerun only has to
#: prove the standard code path (its every operation costs ~20x NumPy's), so it checks a few.
STACK_EXAMPLES = int(os.environ.get("NUMNET_CONV_STACK_EXAMPLES",
                                    "25" if numnet.get_backend().name == "numpy" else "4"))


def backend_arrays(values):
    """NumPy float64 ``values`` (a dict) on the backend the suite runs ($NUMNET_BACKEND)."""
    backend = numnet.get_backend()
    return {key: backend.asarray(value, np.float64) for key, value in values.items()}


def bound(layer, rng):
    """``layer`` holding random float64 parameters (N(0, 0.5²)) and zero gradients on the suite's backend."""
    shapes = layer.parameter_shapes()
    layer.bind(backend_arrays({key: rng.normal(0.0, 0.5, size=shape) for key, shape in shapes.items()}),
               backend_arrays({key: np.zeros(shape) for key, shape in shapes.items()}))
    return layer


def assert_layer_matches_torch(layer, torch_function, x, rng):
    """The layer's training forward, dC/dx and parameter gradients (for a random dC/dy) equal PyTorch's
    autograd of ``torch_function(x, parameters)``, all in float64."""
    torch = pytest.importorskip("torch")
    x_backend = numnet.get_backend().asarray(x, np.float64)
    output = as_numpy(layer.forward(x_backend, training=True))
    grad_output = rng.normal(size=output.shape)
    grad_input = as_numpy(layer.backward(numnet.get_backend().asarray(grad_output, np.float64)))
    x_torch = torch.tensor(x, requires_grad=True)
    parameters = {key: torch.tensor(as_numpy(value), requires_grad=True) for key, value in layer.params.items()}
    expected = torch_function(x_torch, parameters)
    expected.backward(torch.tensor(grad_output))
    assert max_relative_difference(output, expected.detach().numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(grad_input, x_torch.grad.numpy()) < TORCH_TOLERANCE
    for key, tensor in parameters.items():
        assert max_relative_difference(layer.grads[key], tensor.grad.numpy()) < TORCH_TOLERANCE, key


# ---------------------------------------------------------------------------------------------------------
# Each layer against PyTorch
# ---------------------------------------------------------------------------------------------------------

CONV_CASES = {
    # name: (n, in_channels, out_channels, kernel_size, stride, padding, (H, W), activation)
    "3x3 stride 1 no padding": (2, 1, 2, 3, 1, 0, (6, 6), "linear"),
    "several channels, padding 1, tanh": (3, 3, 4, 3, 1, 1, (5, 7), "tanh"),
    "stride 2, leftover pixels": (2, 2, 3, 3, 2, 0, (8, 6), "sigmoid"),
    "stride 2, padding 1": (2, 2, 3, 3, 2, 1, (8, 8), "relu"),
    "1x1 kernel": (2, 3, 5, 1, 1, 0, (4, 4), "linear"),
    "kernel equal to the input": (3, 2, 2, (4, 5), 1, 0, (4, 5), "tanh"),
    "rectangular kernel, mixed stride and padding": (2, 2, 3, (2, 3), (2, 1), (1, 0), (5, 6), "linear"),
    "batch of one, one channel": (1, 1, 1, 2, 1, 0, (3, 3), "tanh"),
}


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv2d_forward_and_backward_match_pytorch(case):
    torch = pytest.importorskip("torch")
    n, in_channels, out_channels, kernel_size, stride, padding, size, activation = case
    rng = np.random.default_rng(0)
    layer = bound(numnet.Conv2D(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                activation=activation), rng)

    def torch_conv(x, parameters):
        z = torch.nn.functional.conv2d(x, parameters["W"], parameters["b"], stride=stride, padding=padding)
        return torch_activation(layer.activation)(z)

    assert_layer_matches_torch(layer, torch_conv, rng.normal(size=(n, in_channels, *size)), rng)


def test_conv2d_hands_its_logits_to_a_fused_loss_like_dense():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    layer = bound(numnet.Conv2D(2, 3, 3, padding=1, activation="sigmoid"), rng)
    x = rng.normal(size=(2, 2, 4, 4))
    z, a = (as_numpy(value) for value in layer.forward_logits(numnet.get_backend().asarray(x, np.float64),
                                                              training=True))
    delta = rng.normal(size=z.shape)  # dC/dz, as a fused loss gives it
    grad_input = as_numpy(layer.backward_delta(numnet.get_backend().asarray(delta, np.float64)))
    x_torch = torch.tensor(x, requires_grad=True)
    W, b = (torch.tensor(as_numpy(layer.params[key]), requires_grad=True) for key in ("W", "b"))
    z_torch = torch.nn.functional.conv2d(x_torch, W, b, padding=1)
    z_torch.backward(torch.tensor(delta))
    assert max_relative_difference(z, z_torch.detach().numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(a, torch.sigmoid(z_torch).detach().numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(grad_input, x_torch.grad.numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(layer.grads["W"], W.grad.numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(layer.grads["b"], b.grad.numpy()) < TORCH_TOLERANCE


POOL_CASES = {
    # name: (n, channels, pool_size, stride, padding, (H, W))
    "2x2, stride equal to the pool": (2, 3, 2, None, 0, (6, 6)),
    "2x2, leftover pixels": (2, 2, 2, None, 0, (7, 5)),
    "3x3, stride 2 (overlapping)": (2, 2, 3, 2, 0, (7, 7)),
    "2x2, stride 1 (overlapping)": (1, 1, 2, 1, 0, (5, 5)),
    "3x3, padding 1": (2, 2, 3, 3, 1, (7, 8)),
    "rectangular pool, stride and padding": (2, 1, (2, 3), (1, 2), (1, 1), (6, 7)),
}


@pytest.mark.parametrize("ties", [False, True], ids=["distinct values", "many ties"])
@pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_max_pool2d_forward_and_backward_match_pytorch(case, ties):
    torch = pytest.importorskip("torch")
    n, channels, pool_size, stride, padding, size = case
    rng = np.random.default_rng(2)
    # With ties (values drawn from {0, 1, 2}) most windows hold their maximum twice or more: the gradient
    # must go to the same element PyTorch's max_pool2d picks, and only to it.
    x = rng.integers(0, 3, size=(n, channels, *size)).astype(np.float64) if ties else \
        rng.normal(size=(n, channels, *size))
    layer = numnet.MaxPool2D(pool_size, stride=stride, padding=padding)

    def torch_pool(x, parameters):
        return torch.nn.functional.max_pool2d(x, pool_size, stride=stride or pool_size, padding=padding)

    assert_layer_matches_torch(layer, torch_pool, x, rng)


def test_max_pool2d_gives_a_tied_windows_whole_gradient_to_its_first_maximum_in_row_major_order():
    # One 3x3 window whose maximum 5 appears at (0, 2), (1, 0) and (2, 1): only (0, 2), the first in
    # row-major order, receives the window's gradient 7.
    x = np.array([[[[1.0, 2.0, 5.0], [5.0, 0.0, 3.0], [4.0, 5.0, 1.0]]]])
    layer = numnet.MaxPool2D(3)
    backend = numnet.get_backend()
    assert float(as_numpy(layer.forward(backend.asarray(x, np.float64), training=True))[0, 0, 0, 0]) == 5.0
    grad_input = as_numpy(layer.backward(backend.asarray(np.full((1, 1, 1, 1), 7.0), np.float64)))
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 0, 2] = 7.0
    np.testing.assert_array_equal(grad_input, expected)


def test_flatten_matches_pytorch_flatten_forward_and_backward():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    assert_layer_matches_torch(numnet.Flatten(), lambda x, parameters: torch.nn.Flatten()(x),
                               rng.normal(size=(3, 2, 4, 5)), rng)


# ---------------------------------------------------------------------------------------------------------
# Whole convolutional networks against PyTorch
# ---------------------------------------------------------------------------------------------------------


def test_a_two_conv_network_with_pooling_matches_pytorch():
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(5, 2, 9, 9)), rng.integers(0, 4, size=5)
    network = numnet.Network(layers=[
        numnet.Conv2D(2, 4, 3, activation="relu", bias_init=Normal(0.1)), numnet.MaxPool2D(2),
        numnet.Conv2D(4, 3, 2, padding=1, activation="tanh", bias_init=Normal(0.1)), numnet.MaxPool2D(3, stride=2),
        numnet.Flatten(), numnet.Dense(3, 4, "softmax")], dtype="float64", seed=4)
    network.validate_inputs(X)  # 9x9: conv 3x3 → 7x7, pool 2 → 3x3, conv 2x2 padded by 1 → 4x4, pool 3/2 → 1x1
    assert network.output_shapes == [(4, 7, 7), (4, 3, 3), (3, 4, 4), (3, 1, 1), (3,), (4,)]
    assert_matches_pytorch(network, X, y)


def test_a_conv_network_with_batchnorm_dropout_and_mean_squared_error_matches_pytorch():
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(4, 1, 8, 8)), rng.normal(size=(4, 2))
    network = numnet.Network(layers=[
        numnet.Conv2D(1, 3, 3, stride=2, padding=1, bias=False), numnet.BatchNorm(3, momentum=0.3),
        numnet.Activation("relu"),
        numnet.Dropout(0.25), numnet.MaxPool2D(2, stride=1), numnet.Flatten(), numnet.Dense(27, 5, "tanh"),
        numnet.Dense(5, 2)], loss="mse", input_shape=(1, 8, 8), dtype="float64", seed=5)
    assert_matches_pytorch(network, X, Y, dropout_seed=6)


def test_the_books_simple_conv_net_shapes_and_parameter_count():
    # conv 30 filters 5x5 on 28x28: 30 x 24 x 24; pool 2x2: 30 x 12 x 12 = 4,320; then 100 and 10 units.
    # Parameters: 30·25 + 30 = 780, 4,320·100 + 100 = 432,100, 100·10 + 10 = 1,010: 433,890 in all.
    network = numnet.Network(layers=[numnet.Conv2D(1, 30, 5, activation="relu"), numnet.MaxPool2D(2),
                                     numnet.Flatten(), numnet.Dense(4320, 100, "relu"),
                                     numnet.Dense(100, 10, "softmax")], input_shape=(1, 28, 28), seed=0)
    assert network.output_shapes == [(30, 24, 24), (30, 12, 12), (4320,), (100,), (10,)]
    assert network.n_parameters == 433_890
    summary = network.summary()
    for shown in ("(None, 1, 28, 28)", "(None, 30, 24, 24)", "(None, 30, 12, 12)", "(None, 4320)"):
        assert shown in summary


# ---------------------------------------------------------------------------------------------------------
# Random convolutional stacks against central differences
# ---------------------------------------------------------------------------------------------------------


@st.composite
def conv_stacks(draw):
    """A random stack of one or two [Conv2D (smooth activation), BatchNorm?, MaxPool2D?] blocks, Flatten,
    a Dense output, a loss, a batch and a seed."""
    channels, height, width = draw(st.integers(1, 2)), draw(st.integers(3, 7)), draw(st.integers(3, 7))
    n_samples = draw(st.integers(1, 4))
    input_shape, layers, shape = (channels, height, width), [], (channels, height, width)
    for _ in range(draw(st.integers(1, 2))):
        padding = draw(st.integers(0, 1))
        kernel = tuple(draw(st.integers(1, min(3, size + 2 * padding))) for size in shape[1:])
        conv = numnet.Conv2D(shape[0], draw(st.integers(1, 3)), kernel, stride=draw(st.integers(1, 2)),
                             padding=padding, activation=draw(st.sampled_from(["tanh", "sigmoid", "linear"])),
                             bias_init=Normal(0.3))
        layers.append(conv)
        shape = conv.output_shape(shape)
        if draw(st.booleans()) and n_samples * shape[1] * shape[2] >= 2:
            layers.append(numnet.BatchNorm(shape[0]))
        pool = draw(st.integers(1, 2))
        if draw(st.booleans()) and min(shape[1:]) >= pool:
            layers.append(numnet.MaxPool2D(pool, stride=draw(st.integers(1, 2))))
            shape = layers[-1].output_shape(shape)
    loss = draw(st.sampled_from(["softmax_cross_entropy", "mse"]))
    n_outputs = draw(st.integers(2, 3))
    layers += [numnet.Flatten(), numnet.Dense(int(np.prod(shape)), n_outputs, "softmax" if loss != "mse" else "linear")]
    return layers, input_shape, loss, n_samples, draw(st.integers(0, 2 ** 16))


def smallest_pool_gap(network, X):
    """The smallest difference between the largest and second-largest value of any max-pooling window in a
    training pass on X (infinite without pooling): how close the pass runs to a kink. Computed with NumPy
    from each pooling layer's input."""
    gaps, a = [np.inf], X
    for layer in network.layers:
        if isinstance(layer, numnet.MaxPool2D):
            (ph, pw), (kh, kw), (sh, sw) = layer.padding, layer.pool_size, layer.stride
            padded = np.pad(as_numpy(a), ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
            windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
            ordered = np.sort(windows.reshape(*windows.shape[:4], -1), axis=-1)
            if ordered.shape[-1] > 1:
                with np.errstate(invalid="ignore"):
                    gaps.append(float(np.nanmin(ordered[..., -1] - ordered[..., -2])))
        a = layer.forward(a, training=True)
    return min(gaps)


@settings(max_examples=STACK_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_stacks())
def test_random_conv_stacks_backprop_matches_central_differences(stack):
    layers, input_shape, loss, n_samples, seed = stack
    network = numnet.Network(layers=layers, loss=loss, input_shape=input_shape, dtype="float64", seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, *input_shape))
    y = rng.integers(0, network.n_outputs, size=n_samples) if loss != "mse" else \
        rng.normal(size=(n_samples, network.n_outputs))
    Xp, Yp = network.prepare_inputs(X), network.prepare_targets(y, n_samples)
    state = as_numpy(network.flat_state)
    assume(smallest_pool_gap(network, Xp) > POOL_TIE_MARGIN)
    assign(network.flat_state, state)
    network.loss_and_gradients(Xp, Yp)
    analytic = {name: as_numpy(gradient) for name, gradient in network.gradients().items()}

    def training_loss(_):
        logits, output = network._forward(Xp, training=True)
        assign(network.flat_state, state)
        return network._loss_from(logits, output, Yp)

    whole = np.sqrt(sum(float(np.sum(value ** 2)) for value in analytic.values()))
    for name, parameter in network.parameters().items():
        agreed = False
        for step in STEPS:  # the second step only when the first disagrees
            numeric = five_point_gradient(training_loss, parameter, step)
            relative = numnet.relative_error(analytic[name], numeric)
            absolute = float(np.linalg.norm(analytic[name] - numeric))
            if relative < GRADIENT_TOLERANCE or absolute < ZERO_GRADIENT_TOLERANCE * whole:
                agreed = True
                break
        assert agreed, (name, relative, absolute, whole)


def test_gradient_check_passes_on_a_conv_network():
    rng = np.random.default_rng(7)
    network = numnet.Network(layers=[numnet.Conv2D(1, 2, 3, padding=1, activation="tanh", bias_init=Normal(0.1)),
                                     numnet.MaxPool2D(2), numnet.Flatten(), numnet.Dense(8, 3, "softmax")],
                             dtype="float64", seed=7)
    errors = numnet.gradient_check(network, rng.normal(size=(3, 1, 4, 4)), rng.integers(0, 3, size=3))
    assert set(errors) == {"conv2d_0.W", "conv2d_0.b", "dense_3.W", "dense_3.b"}
    assert max(errors.values()) < GRADIENT_TOLERANCE, errors


# ---------------------------------------------------------------------------------------------------------
# Shapes and bad input
# ---------------------------------------------------------------------------------------------------------


def small_cnn(**options):
    return numnet.Network(layers=[numnet.Conv2D(1, 4, 3, activation="relu"), numnet.MaxPool2D(2),
                                  numnet.Flatten(), numnet.Dense(36, 10, "softmax")], seed=0, **options)


def test_the_image_size_comes_from_the_first_data_and_is_then_checked():
    network = small_cnn()
    assert network.input_shape == (1, None, None)
    assert network.output_shapes[:3] == [(4, None, None), (4, None, None), (None,)]
    network.predict(np.zeros((2, 1, 8, 8)))  # 8 - 3 + 1 = 6, pooled 3: 4·3·3 = 36 features
    assert network.input_shape == (1, 8, 8)
    assert network.output_shapes[:3] == [(4, 6, 6), (4, 3, 3), (36,)]
    with pytest.raises(ValueError, match=r"X has samples of shape \(1, 9, 9\) but the network expects \(1, 8, 8\)"):
        network.predict(np.zeros((2, 1, 9, 9)))


def test_a_batch_of_one_and_leftover_pixels_train_and_predict():
    # 9x9 images: conv 3x3 stride 2 gives 4x4 (row and column 8 unused), pool 2 gives 2x2.
    network = numnet.Network(layers=[numnet.Conv2D(1, 2, 3, stride=2), numnet.MaxPool2D(2), numnet.Flatten(),
                                     numnet.Dense(8, 2, "softmax")], seed=0)
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(3, 1, 9, 9)), np.array([0, 1, 0])
    network.fit(X, y, epochs=2, batch_size=1, seed=0)
    assert network.iterations_trained == 6
    assert network.predict(X[:1]).shape == (1,)


@pytest.mark.parametrize("X, message", [
    (np.zeros((5, 64)), r"X must have 4 dimensions, shape \(None, 1, \?, \?\).*has shape \(5, 64\).*"
                        r"X\.reshape\(-1, 1, 8, 8\)"),
    (np.zeros((5, 8, 8)), r"has shape \(5, 8, 8\).*X\.reshape\(-1, 1, 8, 8\)"),
    (np.zeros((5, 3, 8, 8)), r"X has images of 3 channel\(s\), shape \(3, 8, 8\), but the first layer "
                             r"\(conv2d_0\) takes 1"),
    (np.zeros((5, 1, 2, 2)), r"layers\[0\] \(conv2d_0\) has a 3x3 kernel, larger than its input of 2x2 pixels "
                             r"padded by 0 \(2x2\), but the input gives shape \(None, 1, 2, 2\)"),
    (np.zeros((5, 1, 10, 10)), r"layers\[3\] \(dense_3\) takes 36 inputs per sample, but layers\[2\] "
                               r"\(flatten_2\) gives shape \(None, 64\)"),
])
def test_input_that_does_not_fit_a_conv_network_gets_an_error_naming_the_shapes(X, message):
    with pytest.raises(ValueError, match=message):
        small_cnn().predict(X)


def test_flat_rows_get_the_exact_reshape_when_the_network_knows_the_image_size():
    network = small_cnn(input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match=r"shape \(None, 1, 8, 8\).*X\.reshape\(-1, 1, 8, 8\)"):
        network.fit(np.zeros((4, 64)), np.zeros(4, dtype=int), epochs=1)


@pytest.mark.parametrize("layers, message", [
    (lambda: [numnet.Conv2D(1, 4, 5), numnet.Flatten(), numnet.Dense(4, 2)],
     r"layers\[0\] \(conv2d_0\) has a 5x5 kernel, larger than its input of 4x4 pixels padded by 0 \(4x4\)"),
    (lambda: [numnet.Conv2D(1, 4, 7, padding=1), numnet.Flatten(), numnet.Dense(4, 2)],
     r"has a 7x7 kernel, larger than its input of 4x4 pixels padded by 1 \(6x6\)"),
    (lambda: [numnet.Conv2D(1, 4, 3), numnet.Conv2D(3, 2, 1), numnet.Flatten(), numnet.Dense(8, 2)],
     r"layers\[1\] \(conv2d_1\) takes 3 channels, samples of shape \(3, height, width\), but layers\[0\] "
     r"\(conv2d_0\) gives shape \(None, 4, 2, 2\)"),
    (lambda: [numnet.Conv2D(1, 4, 3), numnet.Flatten(), numnet.Dense(5, 2)],
     r"layers\[2\] \(dense_2\) takes 5 inputs per sample, but layers\[1\] \(flatten_1\) gives shape \(None, 16\)"),
    (lambda: [numnet.Conv2D(1, 4, 3), numnet.Flatten(), numnet.MaxPool2D(2), numnet.Dense(16, 2)],
     r"layers\[2\] \(max_pool2d_2\) takes images, one sample of shape \(channels, height, width\)"),
    (lambda: [numnet.Conv2D(1, 4, 3), numnet.MaxPool2D(2)], r"must give one vector per sample"),
])
def test_layers_that_do_not_fit_together_are_refused_naming_both_shapes(layers, message):
    with pytest.raises(ValueError, match=message):
        numnet.Network(layers=layers(), input_shape=(1, 4, 4))


@pytest.mark.parametrize("build, error, message", [
    (lambda: numnet.Conv2D(1, 2, 0), ValueError, "kernel_size must be a positive integer"),
    (lambda: numnet.Conv2D(1, 2, (3, 3, 3)), ValueError, r"kernel_size must be an integer or a pair"),
    (lambda: numnet.Conv2D(1, 2, 3, stride=0), ValueError, "stride must be a positive integer"),
    (lambda: numnet.Conv2D(1, 2, 3, padding=-1), ValueError, "padding must be a non-negative integer"),
    (lambda: numnet.Conv2D(1.5, 2, 3), TypeError, "in_channels must be a positive integer"),
    (lambda: numnet.Conv2D(1, 2, "3"), TypeError, "kernel_size must be a positive integer"),
    (lambda: numnet.Conv2D(1, 2, 3, activation="softmax"), ValueError, "must act on each value alone"),
    (lambda: numnet.Conv2D(1, 2, 3, activation="rleu"), ValueError, "did you mean 'relu'"),
    (lambda: numnet.Conv2D(1, 2, 3, bias="no"), TypeError, "bias must be True or False"),
    (lambda: numnet.MaxPool2D(2, padding=2), ValueError, "padding must be at most half of pool_size"),
    (lambda: numnet.MaxPool2D(0), ValueError, "pool_size must be a positive integer"),
])
def test_bad_layer_arguments_are_refused_with_a_clear_message(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_conv_weights_use_pytorchs_fans():
    # fan_in = in_channels·kh·kw = 4·3·3 = 36: He's std is sqrt(2/36); fan_out = 8·9 = 72, so Xavier's
    # limit is sqrt(6/(36 + 72)).
    rng = np.random.default_rng(9)
    he = numnet.get_initializer("he")((2000, 4, 3, 3), rng, np.float64)
    assert he.std() == pytest.approx(np.sqrt(2 / 36), rel=0.01)  # 72,000 draws: std error 0.3%
    xavier = numnet.get_initializer("xavier")((8, 4, 3, 3), rng, np.float64)
    limit = np.sqrt(6 / (36 + 72))
    assert np.abs(xavier).max() <= limit and np.abs(xavier).max() > 0.9 * limit


# ---------------------------------------------------------------------------------------------------------
# Registry, saving and resuming
# ---------------------------------------------------------------------------------------------------------


def test_the_image_layers_are_registered_for_loading():
    assert numnet.layers.LAYERS["conv2d"] is numnet.Conv2D
    assert numnet.layers.LAYERS["max_pool2d"] is numnet.MaxPool2D
    assert numnet.layers.LAYERS["flatten"] is numnet.Flatten


def image_data(n_samples=40, seed=0):
    """Two classes of 8x8 one-channel images: a bright horizontal or vertical bar, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n_samples)
    X = rng.normal(0.0, 0.3, size=(n_samples, 1, 8, 8))
    rows = rng.integers(1, 7, size=n_samples)
    for index, (label, row) in enumerate(zip(y, rows)):
        if label:
            X[index, 0, :, row] += 1.0
        else:
            X[index, 0, row, :] += 1.0
    return X, y


def trained_cnn(epochs=3):
    X, y = image_data()
    # On NumPy, as load_model rebuilds every network: a resumed run then sums in the same order.
    network = numnet.Network(layers=[
        numnet.Conv2D(1, 4, 3, padding=1, weight_init=Normal(0.1), bias=False), numnet.BatchNorm(4),
        numnet.Activation("relu"),
        numnet.MaxPool2D(2), numnet.Conv2D(4, 6, (3, 2), stride=(1, 2), activation="relu"),
        numnet.MaxPool2D(2, stride=1), numnet.Flatten(), numnet.Dropout(0.2), numnet.Dense(6, 2, "softmax")],
        input_shape=(1, 8, 8), l2=1e-3, seed=5, backend="numpy")
    network.fit(X, y, epochs=epochs, batch_size=12, seed=2)
    return network, X, y


def test_a_conv_network_saves_and_loads_bit_for_bit(tmp_path):
    network, X, _ = trained_cnn()
    numnet.save_model(network, tmp_path / "cnn.npz")
    loaded = numnet.load_model(tmp_path / "cnn.npz")
    assert [layer.describe() for layer in loaded.layers] == [layer.describe() for layer in network.layers]
    assert loaded.input_shape == (1, 8, 8) and loaded.output_shapes == network.output_shapes
    np.testing.assert_array_equal(loaded.flat_parameters, network.flat_parameters)
    np.testing.assert_array_equal(loaded.predict_proba(X), network.predict_proba(X))


def test_a_conv_checkpoint_resumed_mid_training_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    uninterrupted, X, y = trained_cnn(epochs=4)
    partial, _, _ = trained_cnn(epochs=2)
    numnet.save_model(partial, tmp_path / "checkpoint.npz")
    resumed = numnet.load_model(tmp_path / "checkpoint.npz")
    resumed.fit(X, y, epochs=2, batch_size=12)
    np.testing.assert_array_equal(resumed.flat_parameters, uninterrupted.flat_parameters)
    np.testing.assert_array_equal(resumed.flat_state, uninterrupted.flat_state)
    assert resumed.history.to_dict() == uninterrupted.history.to_dict()


def test_a_small_cnn_learns_the_bars_on_the_suites_backend():
    X, y = image_data(n_samples=80)
    network = numnet.Network(layers=[numnet.Conv2D(1, 4, 3, activation="relu"), numnet.MaxPool2D(2),
                                     numnet.Flatten(), numnet.Dense(36, 2, "softmax")], seed=0)
    network.fit(X[:60], y[:60], epochs=15, batch_size=10, learning_rate=0.01, seed=0)
    # Bars one pixel wide against noise of std 0.3: a 3x3 filter that finds lines separates them.
    assert network.accuracy(X[60:], y[60:]) >= 0.9
