"""Layers for images (n_samples, channels, height, width): Conv2D, MaxPool2D and Flatten.

Chapter 7 of "Deep Learning from Scratch": a convolution becomes one matrix product once every receptive
field is laid out as a column (im2col), and its backward pass is two products and the inverse layout
(col2im). The columns are laid out per image, (n, C·kh·kw, out_h·out_w), as Caffe's im2col does, so that the
product W (out_channels, C·kh·kw) @ columns gives the output already in (n, channels, height, width) order:
no transpose forward, none backward (the book's one big (n·out_h·out_w, C·kh·kw) matrix needs one each way:
forward and dC/dW measured 1.5x and 1.8x slower; benchmarks/NOTES.md, "im2col per image").

Shapes: ``x`` is (n, C, H, W); a window is kh × kw pixels taken every (sh, sw) pixels from the input padded
by (ph, pw) on each side, so the output is out_h × out_w with out_h = (H + 2·ph - kh) // sh + 1. Pixels left
over at the bottom or right, where no further window fits, are not seen (their gradient is 0), as in
PyTorch. ``W`` is (out_channels, in_channels, kh, kw) and ``b`` (out_channels,), PyTorch's layout and the
book's.

The layers register their kinds (conv2d, max_pool2d, flatten) in :data:`numnet.layers.LAYERS` when this
module is imported (``import numnet`` does), so saved models holding them load.
"""

import math

import numpy as np

from .activations import ReLU
from .backend import apply, multiply_by_mask, namespace, sliding_windows
from .kernels import MIN_CHUNK, compilable, load_compiled_module, one_chunk, run_in_chunks
from .layers import AffineLayer, Layer, register_layer
from .validation import Boolean, Integer, check_integer, declare


class _SlidingWindow:
    """What Conv2D and MaxPool2D share: a window (kh, kw) slid at steps (sh, sw) over the padded image.

    A mixin of methods only, with no ``__init__`` and no base class: each layer runs its own base's
    ``__init__`` and then :meth:`_set_window`, so a change to Layer or AffineLayer cannot break it.
    """

    def _set_window(self, kernel_size, stride, padding, *, kernel_name):
        self.kernel_size = _pair(kernel_size, kernel_name, minimum=1)
        self._window_noun = "kernel" if kernel_name == "kernel_size" else "pool window"
        self.stride = _pair(stride, "stride", minimum=1)
        self.padding = _pair(padding, "padding", minimum=0)

    #: The channel count the layer takes (None: any) and gives (None: the same as it takes).
    in_channels = out_channels = None

    def output_shape(self, input_shape):
        if input_shape is None:
            return (self.out_channels, None, None)
        if len(input_shape) != 3:
            raise ValueError("takes images, one sample of shape (channels, height, width)")
        channels, height, width = input_shape
        if self.in_channels is not None and channels is not None and channels != self.in_channels:
            raise ValueError(f"takes {self.in_channels} channels, samples of shape ({self.in_channels}, height, width)")
        if height is not None and width is not None:
            self._check_window_fits(height, width)
        out_h, out_w = (None if size is None else (size + 2 * pad - kernel) // stride + 1
                        for size, kernel, stride, pad in zip((height, width), self.kernel_size, self.stride,
                                                             self.padding))
        return (self.out_channels or channels, out_h, out_w)

    def _check_window_fits(self, height, width):
        """ValueError when the window is larger than the padded image (not even one window fits)."""
        padded = self._padded_size((None, None, height, width))
        if any(size < kernel for size, kernel in zip(padded, self.kernel_size)):
            padding = _shown_pair(self.padding, equal_as_one=True)
            raise ValueError(f"has a {_shown_pair(self.kernel_size)} {self._window_noun}, larger than its "
                             f"input of {height}x{width} pixels padded by {padding} ({_shown_pair(padded)})")

    def _offsets(self):
        """The (i, j) positions inside a window, in row-major order."""
        return [(i, j) for i in range(self.kernel_size[0]) for j in range(self.kernel_size[1])]

    def _output_size(self, input_shape):
        """(out_h, out_w) for an input of ``input_shape`` (n, C, H, W)."""
        return tuple((size - kernel) // stride + 1
                     for size, kernel, stride in zip(self._padded_size(input_shape), self.kernel_size, self.stride))

    def _window_arguments(self):
        """kh, kw, sh, sw, ph, pw: the window as the compiled kernels take it (numnet._compiled_conv)."""
        return (*self.kernel_size, *self.stride, *self.padding)

    def _padded_size(self, input_shape):
        """(H + 2·ph, W + 2·pw) for an input of ``input_shape`` (n, C, H, W)."""
        return tuple(size + 2 * pad for size, pad in zip(input_shape[2:], self.padding))

    def _geometry(self):
        """"5x5, stride 1, padding 0" for describe()."""
        return (f"{_shown_pair(self.kernel_size)}, stride {_shown_pair(self.stride, equal_as_one=True)}, "
                f"padding {_shown_pair(self.padding, equal_as_one=True)}")


@register_layer
class Conv2D(_SlidingWindow, AffineLayer):
    """A 2-D convolution of images, then an activation: z = W ⋆ x + b, a = f(z).

    As in PyTorch and the book, ⋆ is cross-correlation (the kernel is not flipped):
    z[n, o, y, x] = Σ_c Σ_i Σ_j W[o, c, i, j] · x_padded[n, c, y·sh + i, x·sw + j] + b[o].

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
        (kh, kw); one number for a square kernel.
    stride : int or (int, int), default 1
    padding : int or (int, int), default 0
        Zeros added on each side of the height and width.
    activation : str or activation function, default "linear"
        Applied to every value (it must be elementwise: softmax belongs after Flatten and Dense).
    weight_init : str, Initializer or "auto", default "auto"
        "auto": He for relu-like activations, Xavier otherwise, with PyTorch's fans
        (fan_in = in_channels·kh·kw, fan_out = out_channels·kh·kw).
    bias_init : float, str or Initializer, default 0.0
    bias : bool, default True
        False for a layer without b, z = W ⋆ x: right before a BatchNorm, whose β replaces the bias (a bias
        there has an exact gradient of zero and would only drift with rounding).
    name : str, optional

    Attributes
    ----------
    params, grads : dict of str to ndarray
        "W" (out_channels, in_channels, kh, kw) and "b" (out_channels,), and their gradients.

    Examples
    --------
    The book's SimpleConvNet on MNIST::

        numnet.Network(layers=[numnet.Conv2D(1, 30, 5, activation="relu"), numnet.MaxPool2D(2),
                               numnet.Flatten(), numnet.Dense(30 * 12 * 12, 100, "relu"),
                               numnet.Dense(100, 10, "softmax")], input_shape=(1, 28, 28))
    """

    @declare(in_channels=Integer(), out_channels=Integer(), bias=Boolean())
    def __init__(self, in_channels, out_channels, kernel_size, *, stride=1, padding=0, activation="linear",
                 weight_init="auto", bias_init=0.0, bias=True, name=None):
        super().__init__(name=name)
        self._set_window(kernel_size, stride, padding, kernel_name="kernel_size")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self._set_components(activation, weight_init, bias_init, bias)
        if not self.activation.elementwise:
            raise ValueError(f"Conv2D's activation must act on each value alone, got {self.activation.name!r}; "
                             f"put {self.activation.name} on a Dense layer after Flatten")

    def parameter_shapes(self):
        shapes = {"W": (self.out_channels, self.in_channels, *self.kernel_size)}
        if self.bias:
            shapes["b"] = (self.out_channels,)
        return shapes

    def penalized_parameters(self):
        return ("W",)

    def expected_input_shape(self):
        return (self.in_channels, None, None)

    # ---- forward (AffineLayer.forward: a = f(z), z from _affine) ------------------------------------------

    def _activate_in_place(self, z):
        """AffineLayer's f(z + b) over z, with relu(z + b) in one compiled pass over the images where the
        kernels apply."""
        if self.bias and type(self.activation) is ReLU and self._compiled_bias_and_relu(z):
            return z
        return super()._activate_in_place(z)

    def _compiled_bias_and_relu(self, z):
        """z ← max(z + b, 0) in place by the compiled kernel, over the images on the kernels' threads; whether
        it ran. ReLU.add_and_forward's numbers (``z += b``, then the maximum with 0): its own kernel takes a
        Dense layer's (n, units) rows, not images with one bias per channel."""
        compiled, b = _compiled_kernels(z), self.params["b"]
        if compiled is None or b.dtype != z.dtype:
            return False
        rows = z.reshape(z.shape[0], self.out_channels, z.shape[2] * z.shape[3])  # (n, out_channels, oh·ow), a view
        _over_images(lambda start, stop: compiled.bias_relu_channels(rows[start:stop], b), z)
        return True

    def _affine(self, x):
        """((x's shape, columns (n, C·kh·kw, out_h·out_w)), W ⋆ x (n, out_channels, out_h, out_w)): what BP2
        and BP4 need of x, and z without the bias."""
        xp = namespace(x)
        n = x.shape[0]
        out_h, out_w = self._output_size(x.shape)
        # im2col: per image, one column of the C·kh·kw pixels under each of the out_h·out_w windows
        columns = self._compiled_columns(x, out_h * out_w)
        if columns is None:
            # (n, C, kh, kw, oh, ow), a view; the reshape copies it into the columns
            windows = sliding_windows(_pad(x, self.padding, 0.0), self.kernel_size, self.stride)
            columns = xp.reshape(windows, (n, self.in_channels * math.prod(self.kernel_size), out_h * out_w))
        # The convolution as one matrix product, stacked over the images: (out, C·kh·kw) @ (n, C·kh·kw, oh·ow)
        z = self._weight_matrix() @ columns  # (n, out_channels, oh·ow)
        return (tuple(x.shape), columns), xp.reshape(z, (n, self.out_channels, out_h, out_w))

    def _compiled_columns(self, x, positions):
        """im2col by the compiled kernel over the images, on the kernels' threads; None where it does not apply
        (benchmarks/NOTES.md, "compiled convolution (issue 26)")."""
        compiled = _compiled_kernels(x)
        if compiled is None:
            return None
        columns = np.empty((x.shape[0], self.in_channels * math.prod(self.kernel_size), positions), x.dtype)
        window = self._window_arguments()
        _over_images(lambda start, stop: compiled.im2col(x[start:stop], *window, columns[start:stop]), columns)
        return columns

    def _bias_term(self):
        """b as (out_channels, 1, 1): one bias per filter, broadcast over the images and pixels."""
        b = self.params["b"]
        return namespace(b).reshape(b, (self.out_channels, 1, 1))

    def _weight_matrix(self):
        """W as (out_channels, in_channels·kh·kw): one row per filter, in the columns' pixel order."""
        W = self.params["W"]
        return namespace(W).reshape(W, (self.out_channels, -1))

    # ---- backward (AffineLayer.backward: delta = dC/da ⊙ f'(z), then backward_delta) -------------------

    def _activation_backward(self, grad_output, f_input):
        """AffineLayer's dC/da ⊙ f'(z) with each image's values as one row (n, out_channels·oh·ow): the
        activation is elementwise, so the numbers are the same, and ReLU's compiled backward, which takes rows,
        applies."""
        delta = self.activation.backward(_as_rows(grad_output), _as_rows(f_input))
        return namespace(grad_output).reshape(delta, grad_output.shape)

    def backward_delta(self, delta, propagate=True):
        """Fill ``grads`` from delta = dC/dz (n, out_channels, out_h, out_w) and return dC/dx (or None)."""
        (input_shape, columns), _ = self._require_cache()
        xp = namespace(delta)
        n, _, out_h, out_w = delta.shape
        delta_rows = xp.reshape(delta, (n, self.out_channels, out_h * out_w))  # (n, out, oh·ow)
        # BP4: dC/dW = Σ_images delta · columnsᵀ: a stacked product (n, out, C·kh·kw), summed over the batch
        # (1.8x faster than one product over a transposed copy; benchmarks/NOTES.md, "im2col per image")
        dW = xp.sum(delta_rows @ columns.mT, axis=0)  # (out, C·kh·kw)
        self.grads["W"][...] = xp.reshape(dW, self.grads["W"].shape)
        if self.bias:
            # BP3: dC/db = delta summed over the batch and every output position
            apply(xp.sum, delta_rows, axis=(0, 2), out=self.grads["b"])
        if not propagate:  # the first layer: dC/dx is not needed, and col2im is skipped
            return None
        # BP2 (its first factor): the gradient of every column, Wᵀ delta (n, C·kh·kw, oh·ow), then col2im:
        # each column's values added back onto the pixels they were read from
        column_grads = self._weight_matrix().mT @ delta_rows
        compiled = _compiled_kernels(column_grads)
        if compiled is not None:
            images, window = np.zeros(input_shape, column_grads.dtype), self._window_arguments()
            _over_images(lambda start, stop: compiled.col2im(column_grads[start:stop], *window, images[start:stop]),
                         column_grads)
            return images
        kh, kw = self.kernel_size
        windows = xp.reshape(column_grads, (n, self.in_channels, kh, kw, out_h, out_w))
        pieces = [windows[:, :, i, j, ...] for i, j in self._offsets()]
        return _crop(_add_windows(pieces, self.kernel_size, self._padded_size(input_shape), self.stride),
                     self.padding)

    # ---- description ---------------------------------------------------------------------------------

    def config(self):
        return {"type": self.kind, "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding),
                "name": self.name, **self._components()}

    @classmethod
    def from_config(cls, config):
        return cls(config["in_channels"], config["out_channels"], config["kernel_size"], stride=config["stride"],
                   padding=config["padding"], name=config["name"], **cls._components_from(config))

    def describe(self):
        return (f"Conv2D {self.in_channels} -> {self.out_channels}, {self._geometry()}, {self.activation.name}"
                + ("" if self.bias else ", no bias"))


@register_layer
class MaxPool2D(_SlidingWindow, Layer):
    """Max pooling: the largest value of each window, channel by channel.

    The gradient of each window goes to its maximum. When several values of a window share the maximum,
    it goes to the first of them in row-major order (top row first, then left to right), the element
    PyTorch's max_pool2d picks; where windows overlap (stride < pool_size), a pixel that is the maximum of
    several windows receives the sum of their gradients. Padding counts as -∞, so it is never the maximum.

    Parameters
    ----------
    pool_size : int or (int, int)
        The window (kh, kw).
    stride : int or (int, int), optional
        Default: ``pool_size`` (windows side by side, not overlapping).
    padding : int or (int, int), default 0
        At most half of ``pool_size``, as in PyTorch, so that every window holds a pixel of the image.
    name : str, optional
    """

    def __init__(self, pool_size, *, stride=None, padding=0, name=None):
        super().__init__(name=name)
        self._set_window(pool_size, pool_size if stride is None else stride, padding, kernel_name="pool_size")
        if any(2 * pad > size for pad, size in zip(self.padding, self.kernel_size)):
            raise ValueError(f"padding must be at most half of pool_size (as in PyTorch, so that every window "
                             f"holds a pixel of the image), got padding {padding!r} for pool_size {pool_size!r}")

    @property
    def pool_size(self):
        """The window (kh, kw)."""
        return self.kernel_size

    def expected_input_shape(self):
        return (None, None, None)  # images of any size and channel count; the data fixes them

    def forward(self, x, training=False, rng=None):
        """The maximum of each window, per channel: (n, C, H, W) → (n, C, out_h, out_w)."""
        compiled = _compiled_kernels(x)
        if compiled is not None:
            return self._compiled_forward(compiled, x, training)
        xp = namespace(x)
        windows = sliding_windows(_pad(x, self.padding, -math.inf), self.kernel_size, self.stride)
        # A running maximum over the kh·kw positions of a window: kh·kw elementwise passes, 11x faster in
        # NumPy than a max over rows of im2col'd windows (benchmarks/NOTES.md, "max pooling by shifted maxima")
        a = xp.asarray(windows[:, :, 0, 0, ...], copy=True)  # (n, C, oh, ow)
        for i, j in self._offsets()[1:]:
            apply(xp.maximum, a, windows[:, :, i, j, ...], out=a)
        self._cache = (tuple(x.shape), windows, a) if training else None
        return a

    def _compiled_forward(self, compiled, x, training):
        """forward by the compiled kernel, over the images on the kernels' threads, which also finds each
        window's first maximum (its row-major position in the window), all that backward needs."""
        n, channels = x.shape[:2]
        a = np.empty((n, channels, *self._output_size(x.shape)), x.dtype)
        first_max = np.empty_like(a)
        window = self._window_arguments()
        _over_images(lambda start, stop: compiled.max_pool(x[start:stop], *window, a[start:stop],
                                                           first_max[start:stop]), x)
        self._cache = (tuple(x.shape), first_max, None) if training else None
        return a

    def backward(self, grad_output, propagate=True):
        """Route each window's dC/da (n, C, out_h, out_w) to its first maximum; returns dC/dx (n, C, H, W)."""
        input_shape, windows, a = self._require_cache()
        if not propagate:
            return None
        if a is None:  # the compiled forward left each window's first maximum in place of the windows
            return self._compiled_backward(grad_output, input_shape, windows)
        xp = namespace(grad_output)
        unclaimed = xp.ones(a.shape, dtype=xp.bool)  # windows whose gradient has not been routed yet
        pieces = []
        for i, j in self._offsets():  # row-major: the first maximum claims the gradient
            is_first_max = (windows[:, :, i, j, ...] == a) & unclaimed
            unclaimed = unclaimed & ~is_first_max
            pieces.append(multiply_by_mask(grad_output, is_first_max))
        return _crop(_add_windows(pieces, self.kernel_size, self._padded_size(input_shape), self.stride),
                     self.padding)

    def _compiled_backward(self, grad_output, input_shape, first_max):
        """backward by the compiled scatter over the images; the NumPy path's numbers, bit for bit."""
        compiled = load_compiled_module(_COMPILED_CONV)  # the forward pass ran it: numba is installed
        grad_output = np.ascontiguousarray(grad_output, dtype=first_max.dtype)  # no copy in fit's passes
        images, window = np.zeros(input_shape, grad_output.dtype), self._window_arguments()
        _over_images(lambda start, stop: compiled.max_pool_backward(grad_output[start:stop], first_max[start:stop],
                                                                    *window, images[start:stop]), images)
        return images

    def config(self):
        return {"type": self.kind, "pool_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "name": self.name}

    def describe(self):
        return f"MaxPool2D {self._geometry()}"


@register_layer
class Flatten(Layer):
    """Each sample's values as one vector, in row-major (C, H, W) order: (n, C, H, W) → (n, C·H·W).

    The order is PyTorch's ``nn.Flatten`` and the book's ``reshape(N, -1)``, so a Dense layer after it
    holds the same weights as theirs (transposed).
    """

    def output_shape(self, input_shape):
        if input_shape is None or None in input_shape:
            return (None,)
        return (math.prod(input_shape),)

    def forward(self, x, training=False, rng=None):
        self._cache = tuple(x.shape) if training else None
        # Explicit sizes, not -1: an empty shard (0 samples) of a data-parallel batch must reshape too
        return namespace(x).reshape(x, (x.shape[0], math.prod(x.shape[1:])))

    def backward(self, grad_output, propagate=True):
        input_shape = self._require_cache()
        return namespace(grad_output).reshape(grad_output, input_shape) if propagate else None

    def describe(self):
        return "Flatten"


# ---- helpers ---------------------------------------------------------------------------------------------


def _pair(value, name, *, minimum):
    """``value`` (an int, or a pair of ints for height and width) as a pair, each checked >= ``minimum``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an integer or a pair (height, width), got {value!r}")
        return tuple(check_integer(size, name, minimum=minimum) for size in value)
    size = check_integer(value, name, minimum=minimum)
    return (size, size)


def _shown_pair(pair, *, equal_as_one=False):
    """(5, 5) as "5x5", (1, 2) as "1x2"; with ``equal_as_one`` (strides, paddings), (1, 1) as "1"."""
    if equal_as_one and pair[0] == pair[1]:
        return str(pair[0])
    return "x".join(map(str, pair))


_COMPILED_CONV = "numnet._compiled_conv"


def _compiled_kernels(array):
    """numnet._compiled_conv when the compiled kernels run on ``array`` (numnet.kernels.compilable: its size,
    a C-contiguous NumPy float32 or float64 array, not ``NUMNET_KERNELS=numpy``); else None."""
    return load_compiled_module(_COMPILED_CONV) if compilable(array) else None


def _as_rows(images):
    """``images`` (n, C, H, W) as (n, C·H·W), each image one row (a view where the layout allows)."""
    return namespace(images).reshape(images, (images.shape[0], math.prod(images.shape[1:])))


def _over_images(work, largest):
    """``work(start, stop)`` over slices of the batch, on the kernels' threads: chunks of whole images,
    each at least MIN_CHUNK elements of ``largest`` (the biggest array the work touches, images first)."""
    n = largest.shape[0]  # 0 for an empty shard of a data-parallel batch
    images_per_chunk = max(1, MIN_CHUNK // max(1, math.prod(largest.shape[1:])))
    if one_chunk(n, images_per_chunk):
        work(0, n)
    else:
        run_in_chunks(work, n, min_chunk=images_per_chunk)


def _pad(images, padding, value):
    """``images`` (n, C, H, W) with (ph, pw) rows and columns of ``value`` added on each side (no copy
    without padding)."""
    pad_h, pad_w = padding
    if pad_h == pad_w == 0:
        return images
    xp = namespace(images)
    n, channels, height, width = images.shape
    padded = xp.full((n, channels, height + 2 * pad_h, width + 2 * pad_w), value, dtype=images.dtype)
    padded[:, :, pad_h:pad_h + height, pad_w:pad_w + width] = images
    return padded


def _crop(images, padding):
    """The inverse of :func:`_pad`: ``images`` without its (ph, pw) border rows and columns."""
    pad_h, pad_w = padding
    if pad_h == pad_w == 0:
        return images
    height, width = images.shape[2:]
    return images[:, :, pad_h:height - pad_h, pad_w:width - pad_w]


def _add_windows(pieces, kernel_size, image_size, stride):
    """col2im: images (n, C, *image_size) in which every window value of ``pieces`` is added back onto the
    pixel it was read from (where windows overlap, the values add up; pixels no window reached stay 0).

    ``pieces`` lists, for each position (i, j) of a ``kernel_size`` window in row-major order, the values at
    that position of every window, (n, C, out_h, out_w): the layout of ``sliding_windows(...)[:, :, i, j]``.
    """
    xp = namespace(pieces[0])
    n, channels, out_h, out_w = pieces[0].shape
    stride_h, stride_w = stride
    # Windows side by side (stride >= kernel) never share a pixel: each is written once, and a strided
    # write costs half a strided add (benchmarks/NOTES.md, "max pooling by shifted maxima").
    overlapping = stride_h < kernel_size[0] or stride_w < kernel_size[1]
    images = xp.zeros((n, channels, *image_size), dtype=pieces[0].dtype)
    for index, piece in enumerate(pieces):
        i, j = divmod(index, kernel_size[1])
        pixels = (slice(None), slice(None), slice(i, i + stride_h * (out_h - 1) + 1, stride_h),
                  slice(j, j + stride_w * (out_w - 1) + 1, stride_w))
        if overlapping:
            images[pixels] += piece
        else:
            images[pixels] = piece
    return images
