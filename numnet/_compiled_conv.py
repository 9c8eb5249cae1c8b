"""The numba kernels behind numnet.conv: im2col, col2im, max pooling with its argmax and its scatter, bias + relu.

Imported only by numnet.conv, the first time a compiled kernel would run, when numba is installed (the
loading and the on-disk cache are numnet.kernels', :func:`numnet.kernels.load_compiled_module`). Each kernel
takes whole images (n, C, H, W) and the layers run it on slices of the batch, images [start:stop], on
numnet.kernels' threads (the kernels are serial and release the GIL). They do what the NumPy code of
numnet/conv.py does, value for value: im2col and pooling's maximum are copies and comparisons, and col2im
adds each pixel's window values in the NumPy code's order (window position (i, j) in row-major order, onto
zero), so the results are bit-identical (tests/test_compiled_conv.py). Padding is never materialised: a
pixel outside the image reads as the padding value (0 for a convolution, -inf for pooling), and the
gradient of a padding pixel, which the NumPy code crops away, is not written.

The innermost loops run over ``range(count)`` on slices (views) of rows, never over indices that numba
must check for being negative: it vectorises the first only (numnet._compiled_kernels).
"""

import numba
import numpy as np

# Caching is turned on by numnet.kernels in the user's cache folder, never beside this file.
_KERNEL = {"nogil": True, "error_model": "numpy"}


@numba.njit(inline="always")
def _inside(first, step, size, count):
    """(lo, hi): the outputs k in [lo, hi) of ``count`` whose pixel first + k·step lies in [0, size)."""
    lo = 0 if first >= 0 else min(count, (-first + step - 1) // step)
    last = size - 1 - first  # k·step <= last
    hi = 0 if last < 0 else min(count, last // step + 1)
    return lo, max(lo, hi)


@numba.njit(**_KERNEL)
def im2col(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, columns):
    """columns[s, (c·kh + i)·kw + j, y·out_w + x] ← x_padded[s, c, y·sh + i, x·sw + j]: x (n, C, H, W), padded by
    zeros, into columns (n, C·kh·kw, out_h·out_w), as sliding_windows(...).reshape(...) in numnet.conv."""
    n, channels, height, width = x.shape
    out_w = (width + 2 * pad_w - kernel_w) // stride_w + 1
    out_h = columns.shape[2] // out_w
    padded = pad_h > 0 or pad_w > 0
    for s in range(n):
        for c in range(channels):
            for i in range(kernel_h):
                y_lo, y_hi = _inside(i - pad_h, stride_h, height, out_h)
                for j in range(kernel_w):
                    row = columns[s, (c * kernel_h + i) * kernel_w + j]
                    x_lo, x_hi = _inside(j - pad_w, stride_w, width, out_w)
                    if padded:
                        row[:] = 0
                    for y in range(y_lo, y_hi):
                        source = x[s, c, y * stride_h + i - pad_h, x_lo * stride_w + j - pad_w::stride_w]
                        target = row[y * out_w + x_lo:y * out_w + x_hi]
                        for k in range(target.shape[0]):
                            target[k] = source[k]


@numba.njit(**_KERNEL)
def col2im(column_grads, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, images):
    """images[s, c] ← the values of column_grads (n, C·kh·kw, out_h·out_w) added back onto the pixels they were
    read from, window position by position in row-major order onto zero; written (=) rather than added where
    no two windows share a pixel, as numnet.conv._add_windows does. ``images`` (n, C, H, W) must be zeros."""
    n, channels, height, width = images.shape
    out_w = (width + 2 * pad_w - kernel_w) // stride_w + 1
    out_h = column_grads.shape[2] // out_w
    overlapping = stride_h < kernel_h or stride_w < kernel_w
    for s in range(n):
        for c in range(channels):
            for i in range(kernel_h):
                y_lo, y_hi = _inside(i - pad_h, stride_h, height, out_h)
                for j in range(kernel_w):
                    row = column_grads[s, (c * kernel_h + i) * kernel_w + j]
                    x_lo, x_hi = _inside(j - pad_w, stride_w, width, out_w)
                    for y in range(y_lo, y_hi):
                        target = images[s, c, y * stride_h + i - pad_h, x_lo * stride_w + j - pad_w::stride_w]
                        source = row[y * out_w + x_lo:y * out_w + x_hi]
                        if overlapping:
                            for k in range(source.shape[0]):
                                target[k] += source[k]
                        else:
                            for k in range(source.shape[0]):
                                target[k] = source[k]


@numba.njit(inline="always")
def _running_maximum(best, where, value, position):
    """(best, where) after the window's next ``value`` at ``position``: NumPy's ``maximum(best, value)`` (NaN
    wins; a tie takes the later value, so 0.0 then -0.0 gives -0.0), and the position moved only by a strictly
    larger value, so that it stays at the first of tied values, the one MaxPool2D's backward finds by ==.
    Selects of values already loaded, never a conditional store, which compiles to a branch that random data
    mispredicts (3.5 times slower)."""
    where = position if value > best else where
    best = best if (best > value) | (best != best) else value
    return best, where


@numba.njit(**_KERNEL)
def max_pool(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, pooled, first_max):
    """pooled (n, C, out_h, out_w) ← the maximum of each window of x (n, C, H, W) padded by -inf, and
    first_max ← the row-major position i·kw + j in its window of the first value equal to it (-1 when the
    maximum is NaN, which equals nothing), as a number of x's dtype: positions kept as int32 beside float32
    values ran 3 times slower, the loop no longer in SIMD lanes.

    The running maximum of MaxPool2D.forward, over the positions in row-major order (_running_maximum)."""
    if kernel_h == 2 and kernel_w == 2 and pad_h == 0 and pad_w == 0:
        _max_pool_2x2(x, stride_h, stride_w, pooled, first_max)
        return
    n, channels, height, width = x.shape
    out_h, out_w = pooled.shape[2], pooled.shape[3]
    for s in range(n):
        for c in range(channels):
            plane, pooled_plane, position_plane = x[s, c], pooled[s, c], first_max[s, c]
            for y in range(out_h):
                # A row of windows position by position, a loop over the row that runs in SIMD lanes (one over
                # each window's few values, whose count numba does not know, ran 3 to 4 times slower). A
                # padding pixel (-inf) changes neither a maximum that starts at -inf nor its position: skipped.
                best, where = pooled_plane[y], position_plane[y]
                best[:] = -np.inf
                where[:] = 0
                for i in range(kernel_h):
                    row = y * stride_h + i - pad_h
                    if row < 0 or row >= height:
                        continue
                    for j in range(kernel_w):
                        x_lo, x_hi = _inside(j - pad_w, stride_w, width, out_w)
                        values = plane[row, x_lo * stride_w + j - pad_w::stride_w]
                        running, positions = best[x_lo:x_hi], where[x_lo:x_hi]
                        position = where.dtype.type(i * kernel_w + j)
                        for k in range(running.shape[0]):
                            running[k], positions[k] = _running_maximum(running[k], positions[k], values[k], position)
                for k in range(out_w):
                    where[k] = where[k] if best[k] == best[k] else -1


@numba.njit(inline="always")
def _max_pool_2x2(x, stride_h, stride_w, pooled, first_max):
    """max_pool for 2x2 windows without padding, the usual pooling: each window's four values in registers,
    3 times faster than the row-by-row passes (SimpleConvNet's pooling, 0.9 against 2.9 ms)."""
    n, channels = x.shape[:2]
    out_h, out_w = pooled.shape[2], pooled.shape[3]
    for s in range(n):
        for c in range(channels):
            plane = x[s, c]
            for y in range(out_h):
                top, bottom = plane[y * stride_h], plane[y * stride_h + 1]
                best_row, where_row = pooled[s, c, y], first_max[s, c, y]
                for k in range(out_w):
                    left = k * stride_w
                    best, where = top[left], where_row.dtype.type(0)
                    best, where = _running_maximum(best, where, top[left + 1], 1)
                    best, where = _running_maximum(best, where, bottom[left], 2)
                    best, where = _running_maximum(best, where, bottom[left + 1], 3)
                    best_row[k] = best
                    where_row[k] = where if best == best else -1


@numba.njit(**_KERNEL)
def max_pool_backward(grad_pooled, first_max, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, images):
    """images (n, C, H, W), zeros, ← each window's gradient times 1 at its first maximum and times 0 at its
    other positions (so an infinite or NaN gradient leaves NaN there, as multiplying by NumPy's mask does),
    scattered back as col2im does: position by position in row-major order, added where windows overlap."""
    overlapping = stride_h < kernel_h or stride_w < kernel_w
    if kernel_h == 2 and kernel_w == 2 and pad_h == 0 and pad_w == 0 and not overlapping:
        _max_pool_2x2_backward(grad_pooled, first_max, stride_h, stride_w, images)
        return
    n, channels, height, width = images.shape
    out_h, out_w = grad_pooled.shape[2], grad_pooled.shape[3]
    for s in range(n):
        for c in range(channels):
            plane, gradient_plane, position_plane = images[s, c], grad_pooled[s, c], first_max[s, c]
            for i in range(kernel_h):
                y_lo, y_hi = _inside(i - pad_h, stride_h, height, out_h)
                for j in range(kernel_w):
                    position = first_max.dtype.type(i * kernel_w + j)
                    x_lo, x_hi = _inside(j - pad_w, stride_w, width, out_w)
                    for y in range(y_lo, y_hi):
                        target = plane[y * stride_h + i - pad_h, x_lo * stride_w + j - pad_w::stride_w]
                        gradients, positions = gradient_plane[y, x_lo:x_hi], position_plane[y, x_lo:x_hi]
                        if overlapping:
                            for k in range(gradients.shape[0]):
                                target[k] += gradients[k] * (positions[k] == position)
                        else:
                            for k in range(gradients.shape[0]):
                                target[k] = gradients[k] * (positions[k] == position)


@numba.njit(inline="always")
def _max_pool_2x2_backward(grad_pooled, first_max, stride_h, stride_w, images):
    """max_pool_backward for 2x2 windows side by side (stride >= 2, no padding): each window's four pixels
    written at once: 0.8 against 1.8 ms by four passes over the rows (SimpleConvNet's pooling)."""
    n, channels = images.shape[:2]
    out_h, out_w = grad_pooled.shape[2], grad_pooled.shape[3]
    for s in range(n):
        for c in range(channels):
            plane = images[s, c]
            for y in range(out_h):
                top, bottom = plane[y * stride_h], plane[y * stride_h + 1]
                gradients, positions = grad_pooled[s, c, y], first_max[s, c, y]
                for k in range(out_w):
                    left, gradient, position = k * stride_w, gradients[k], positions[k]
                    top[left] = gradient * (position == 0)
                    top[left + 1] = gradient * (position == 1)
                    bottom[left] = gradient * (position == 2)
                    bottom[left + 1] = gradient * (position == 3)


@numba.njit(**_KERNEL)
def bias_relu_channels(z, b):
    """z ← max(z + b[o], 0) in place for z (n, out_channels, positions): Conv2D's forward with relu, ``z += b``
    then ``maximum(z, 0)`` as in numnet._compiled_kernels.bias_relu, one bias per channel."""
    for s in range(z.shape[0]):
        for o in range(z.shape[1]):
            row, bias = z[s, o], b[o]
            for k in range(row.shape[0]):
                value = row[k] + bias
                row[k] = 0 if value < 0 else value


#: Every kernel, by its name (numnet.kernels.load_compiled_module caches each one's machine code).
KERNELS = {kernel.__name__: kernel for kernel in (im2col, col2im, max_pool, max_pool_backward, bias_relu_channels)}
