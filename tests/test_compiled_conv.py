"""The compiled convolution kernels (numnet/_compiled_conv.py) against numnet.conv's NumPy path, the reference:
Conv2D and MaxPool2D forward and backward, bit for bit, in float32 and float64, over random shapes, strides
and padding, with ties, infinities, NaN and signed zeros in pooling, on one thread and on several.

The two paths do the same arithmetic (im2col, col2im and pooling are copies, comparisons and sums in the same
order; the products are the same BLAS calls on the same columns), so exact equality is the point here; the
PyTorch and central-difference oracles of tests/test_conv.py hold for either path."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numnet
from numnet import conv
from numnet.kernels import set_kernel_threads, use_kernels

numba = pytest.importorskip("numba")

FAST = settings(max_examples=40, deadline=None, derandomize=True)
DTYPES = st.sampled_from([np.float32, np.float64])
#: Pooling inputs: few distinct values, so that windows tie often, with the values NumPy's maximum treats
#: specially (signed zeros, infinities, NaN).
POOL_VALUES = [-2.0, -0.0, 0.0, 1.0, 1.0, 3.0, np.inf, -np.inf, np.nan]


def assert_same_bits(expected, actual):
    """Equal shapes and dtypes, NaN where NaN is, and the same bits everywhere else (-0.0 where -0.0 is).

    Not a NaN's sign and payload: x86 gives the sign of the NaN an addition of two NaNs returns by operand
    order, which a C compiler may swap (it did in NumPy's ``+=``), so they carry no meaning."""
    expected, actual = np.ascontiguousarray(expected), np.ascontiguousarray(actual)
    assert expected.shape == actual.shape and expected.dtype == actual.dtype
    is_nan = np.isnan(expected)
    np.testing.assert_array_equal(is_nan, np.isnan(actual))
    assert expected[~is_nan].tobytes() == actual[~is_nan].tobytes(), f"{np.sum(expected != actual)} values differ"


def forward_and_backward(layer, x, grad_output, choice):
    """(a, dC/dx, {name: gradient}) of one training forward and backward pass with kernels ``choice``."""
    with use_kernels(choice), np.errstate(invalid="ignore"):  # inf · 0 in pooling's mask gives NaN, as intended
        a = layer.forward(x, training=True).copy()
        grad_input = layer.backward(grad_output)
    return a, grad_input, {name: gradient.copy() for name, gradient in getattr(layer, "grads", {}).items()}


def assert_paths_agree(layer, x, grad_output):
    expected = forward_and_backward(layer, x, grad_output, "numpy")
    actual = forward_and_backward(layer, x, grad_output, "numba")
    assert_same_bits(expected[0], actual[0])
    assert_same_bits(expected[1], actual[1])
    assert expected[2].keys() == actual[2].keys()
    for name in expected[2]:
        assert_same_bits(expected[2][name], actual[2][name])


@st.composite
def windows(draw, *, pooling):
    """(kernel, stride, padding) pairs and an image size (H, W) that at least one window fits."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, size // 2 if pooling else 2)) for size in kernel)
    size = tuple(draw(st.integers(max(1, k - 2 * p), k - 2 * p + 7)) for k, p in zip(kernel, padding))
    return kernel, stride, padding, size


@FAST
@given(windows(pooling=False), st.integers(1, 4), st.integers(1, 3), st.integers(1, 4),
       st.sampled_from(["relu", "tanh", "linear", "gelu"]), st.booleans(), DTYPES, st.integers(0, 2 ** 16))
def test_compiled_conv2d_forward_and_backward_equal_the_numpy_path(window, n, in_channels, out_channels, activation,
                                                                    bias, dtype, seed):
    kernel, stride, padding, size = window
    layer = numnet.Conv2D(in_channels, out_channels, kernel, stride=stride, padding=padding, activation=activation,
                          bias=bias, bias_init=numnet.initializers.Normal(0.5))
    numnet.Network(layers=[layer, numnet.Flatten()], input_shape=(in_channels, *size), dtype=np.dtype(dtype).name,
                   seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, in_channels, *size)).astype(dtype)
    grad_output = rng.standard_normal((n, *layer.output_shape((in_channels, *size)))).astype(dtype)
    assert_paths_agree(layer, x, grad_output)


@FAST
@given(windows(pooling=True), st.integers(1, 4), st.integers(1, 3), DTYPES, st.integers(0, 2 ** 16))
def test_compiled_max_pooling_forward_and_backward_equal_the_numpy_path_with_ties_infinities_and_nan(
        window, n, channels, dtype, seed):
    kernel, stride, padding, size = window
    layer = numnet.MaxPool2D(kernel, stride=stride, padding=padding)
    rng = np.random.default_rng(seed)
    x = rng.choice(POOL_VALUES, size=(n, channels, *size)).astype(dtype)
    grad_output = rng.choice([-1.5, -0.0, 2.0, np.inf, np.nan], size=(n, *layer.output_shape((channels, *size))),
                             p=[0.4, 0.1, 0.4, 0.05, 0.05]).astype(dtype)
    assert_paths_agree(layer, x, grad_output)


@pytest.mark.parametrize("layer", [numnet.Conv2D(3, 8, 3, padding=1, activation="relu"), numnet.MaxPool2D(2),
                                   numnet.MaxPool2D(3, stride=2, padding=1)], ids=["conv", "pool", "pool-overlapping"])
def test_the_kernels_threads_split_the_batch_into_the_same_numbers(layer):
    # 600 images of 3x16x16: several chunks of at least MIN_CHUNK elements, so two threads share the batch
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 3, 16, 16)).astype(np.float32)
    if isinstance(layer, numnet.Conv2D):
        numnet.Network(layers=[layer, numnet.Flatten()], input_shape=(3, 16, 16), dtype="float32", seed=0)
    grad_output = rng.standard_normal((600, *layer.output_shape((3, 16, 16)))).astype(np.float32)
    assert not conv.one_chunk(600, max(1, conv.MIN_CHUNK // (3 * 16 * 16)))
    results = []
    for threads in (1, 2):
        set_kernel_threads(threads)
        try:
            results.append(forward_and_backward(layer, x, grad_output, "numba"))
        finally:
            set_kernel_threads(None)
    for one_thread, two_threads in zip(results[0][:2], results[1][:2]):
        assert_same_bits(one_thread, two_threads)
    assert_same_bits(forward_and_backward(layer, x, grad_output, "numpy")[1], results[1][1])


def test_the_numpy_path_runs_without_the_kernels_and_for_arrays_they_do_not_take():
    images = np.ones((2, 1, 4, 4), np.float32)
    with use_kernels("numpy"):
        assert conv._compiled_kernels(images) is None
    with use_kernels("numba"):
        assert conv._compiled_kernels(images) is not None
        assert conv._compiled_kernels(images.astype(np.float16)) is None  # a dtype the kernels were not built for
        assert conv._compiled_kernels(images[:, :, ::2]) is None  # a strided view


@pytest.mark.parametrize("stride", [1, 2, 3, (2, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_2x2_pooling_equals_the_numpy_path(stride, dtype):
    # 2x2 windows without padding have kernels of their own (side by side, or overlapping at stride 1)
    layer = numnet.MaxPool2D(2, stride=stride)
    rng = np.random.default_rng(3)
    x = rng.choice(POOL_VALUES, size=(4, 3, 9, 10)).astype(dtype)
    grad_output = rng.choice([-1.5, -0.0, 2.0, np.inf, np.nan], size=(4, *layer.output_shape((3, 9, 10))),
                             p=[0.4, 0.1, 0.4, 0.05, 0.05]).astype(dtype)
    assert_paths_agree(layer, x, grad_output)
