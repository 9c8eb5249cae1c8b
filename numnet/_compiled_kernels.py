"""The numba kernels behind numnet.kernels: one fused, parallel pass per optimiser step, Dense's relu, GELU.

Imported only by numnet.kernels, the first time a compiled kernel would run, when numba is installed. Each
kernel repeats, element by element, the operations of its NumPy rule in numnet/optimizers.py in the same
order, on scalars of the arrays' dtype, so that every rounding is the same: ``error_model="numpy"`` makes a
division by zero give inf or NaN as NumPy does, and fastmath stays off (it would reorder and contract the
arithmetic).

A rule's record (numnet.optimizers.Rule) names its kernel in :data:`KERNELS`, and the kernel's arguments are
matched to the rule by name, never by position: ``kept`` (receives the parameters before the update, which
fit's divergence guard keeps: copied in the same pass rather than in one of their own), the flat parameters
``p`` and gradients ``g`` (updated and read in place), then arrays named like the rule's state and constant
arrays (``m``, ``v``, ``decayed``), then scalars: those the record's ``kernel_scalars`` computes, by name,
and for each state array its flush threshold ``flush_<state>`` (state values whose magnitude is below it are
stored as zero; 0 when no flush is due, see numnet.optimizers.flush_thresholds). The parameter update uses
the state before that flush, as the NumPy path, which flushes after the update, does. The kernels are serial
and release the GIL: numnet.kernels runs them on chunks of the arrays (views) from several threads. A loop
over ``range(p.shape[0])`` is vectorised; one over ``range(start, stop)`` is not (numba must allow for
negative indices there), and ran 8 times slower.
"""

import numba
import numpy as np

# Not ``cache=True``: that would write the machine code beside this file, inside the installed package;
# numnet.kernels turns caching on in the user's cache folder (numnet.cache) once the kernels are imported.
_KERNEL = {"nogil": True, "error_model": "numpy"}


@numba.njit(inline="always")
def _flushed(value, threshold):
    """``value``, or zero when its magnitude is below ``threshold`` (NaN is kept, as by flush_below)."""
    return 0 if abs(value) < threshold else value


@numba.njit(**_KERNEL)
def sgd_step(kept, p, g, learning_rate):
    """p ← p - lr·g (sgd_update without momentum)."""
    for i in range(p.shape[0]):
        kept[i] = p[i]
        p[i] -= g[i] * learning_rate


@numba.njit(**_KERNEL)
def momentum_step(kept, p, g, velocity, momentum, learning_rate, flush_velocity):
    """v ← μ·v + g, p ← p - lr·v (sgd_update with momentum)."""
    for i in range(p.shape[0]):
        kept[i] = p[i]
        v = velocity[i] * momentum + g[i]
        p[i] -= v * learning_rate
        velocity[i] = _flushed(v, flush_velocity)


@numba.njit(**_KERNEL)
def nesterov_step(kept, p, g, velocity, momentum, learning_rate, flush_velocity):
    """v ← μ·v + g, p ← p - lr·(g + μ·v) (sgd_update with Nesterov momentum)."""
    for i in range(p.shape[0]):
        kept[i] = p[i]
        v = velocity[i] * momentum + g[i]
        p[i] -= (v * momentum + g[i]) * learning_rate
        velocity[i] = _flushed(v, flush_velocity)


@numba.njit(**_KERNEL)
def adagrad_step(kept, p, g, sum_squares, learning_rate, epsilon, flush_sum_squares):
    """G ← G + g², p ← p - lr·g / (√G + ε) (adagrad_update)."""
    for i in range(p.shape[0]):
        kept[i] = p[i]
        squares = sum_squares[i] + g[i] * g[i]
        p[i] -= (g[i] / (np.sqrt(squares) + epsilon)) * learning_rate
        sum_squares[i] = _flushed(squares, flush_sum_squares)


@numba.njit(**_KERNEL)
def rmsprop_step(kept, p, g, mean_square, rho, one_minus_rho, learning_rate, epsilon, flush_mean_square):
    """s ← ρ·s + (1-ρ)·g², p ← p - lr·g / (√s + ε) (rmsprop_update)."""
    for i in range(p.shape[0]):
        kept[i] = p[i]
        square = mean_square[i] * rho + (g[i] * g[i]) * one_minus_rho
        p[i] -= (g[i] / (np.sqrt(square) + epsilon)) * learning_rate
        mean_square[i] = _flushed(square, flush_mean_square)


@numba.njit(**_KERNEL)
def adam_step(kept, p, g, m, v, one_minus_beta1, one_minus_beta2, corrected_epsilon, step_size, flush_m, flush_v):
    """m ← m + (1-β1)(g - m), v ← v + (1-β2)(g² - v), p ← p - step_size · m / (√v + ε') (adam_update, with
    ε' = ``corrected_epsilon`` and ``step_size`` its bias-corrected ε·√(1-β2^t) and lr·√(1-β2^t)/(1-β1^t))."""
    for i in range(p.shape[0]):
        kept[i] = p[i]
        first = m[i] + (g[i] - m[i]) * one_minus_beta1
        second = v[i] + (g[i] * g[i] - v[i]) * one_minus_beta2
        p[i] -= (first / (np.sqrt(second) + corrected_epsilon)) * step_size
        m[i] = _flushed(first, flush_m)
        v[i] = _flushed(second, flush_v)


@numba.njit(**_KERNEL)
def adamw_step(kept, p, g, m, v, keep, one_minus_beta1, one_minus_beta2, corrected_epsilon, step_size, flush_m,
               flush_v):
    """p ← p·(1 - lr·λ), ``keep`` being that factor, then adam_step's update (adamw_update, every parameter
    decayed)."""
    for i in range(p.shape[0]):
        kept[i] = p[i]
        first = m[i] + (g[i] - m[i]) * one_minus_beta1
        second = v[i] + (g[i] * g[i] - v[i]) * one_minus_beta2
        p[i] = p[i] * keep - (first / (np.sqrt(second) + corrected_epsilon)) * step_size
        m[i] = _flushed(first, flush_m)
        v[i] = _flushed(second, flush_v)


@numba.njit(**_KERNEL)
def adamw_masked_step(kept, p, g, m, v, decayed, keep, one_minus_beta1, one_minus_beta2, corrected_epsilon,
                      step_size, flush_m, flush_v):
    """adamw_step where ``decayed`` is non-zero, adam_step's update elsewhere (adamw_update with a
    "decayed" array: decay="matrices")."""
    for i in range(p.shape[0]):
        kept[i] = p[i]
        first = m[i] + (g[i] - m[i]) * one_minus_beta1
        second = v[i] + (g[i] * g[i] - v[i]) * one_minus_beta2
        start = p[i] * keep if decayed[i] != 0 else p[i]
        p[i] = start - (first / (np.sqrt(second) + corrected_epsilon)) * step_size
        m[i] = _flushed(first, flush_m)
        v[i] = _flushed(second, flush_v)


# ---- Dense with relu -----------------------------------------------------------------------------------

@numba.njit(**_KERNEL)
def bias_relu(z, b):
    """z ← max(z + b, 0) in place, z of shape (n_rows, n_units) and b (n_units,): Dense's forward with relu,
    ``z += b`` then ``maximum(z, 0)`` (NaN stays NaN, as maximum propagates it)."""
    for i in range(z.shape[0]):
        row = z[i]
        for j in range(row.shape[0]):
            value = row[j] + b[j]
            row[j] = 0 if value < 0 else value


@numba.njit(**_KERNEL)
def relu_gradient(grad_a, a, out):
    """out ← grad_a · (a > 0) for arrays of shape (n_rows, n_units): relu's backward, the gradient times
    the boolean mask (a negative gradient times 0 is -0.0, an infinite one NaN, as in NumPy)."""
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = grad_a[i, j] * (a[i, j] > 0)


# ---- GELU ----------------------------------------------------------------------------------------------
# numnet.activations.GELU computes erf by fdlibm's forms (numnet.activations.erf): every form on every entry,
# about sixty NumPy passes. These kernels take each entry through the form its |x| selects, with that form's
# operations in the same order on scalars of the array's dtype (``c``: erf's and GELU's constants in that
# dtype, every coefficient rounded as NumPy rounds a Python float in a ufunc), so that every rounding is the
# same. The exponential form (1.25 <= |x| < 6, erf = 1 - erfc) needs exponentials, and those are
# NumPy's own: erf_tail_indices lists the entries in that form, erf_tail_exponents writes their exponents,
# numnet.kernels calls NumPy's exp on them, and a last kernel redoes those entries. numba's exp is the C
# library's, which differs from NumPy's SIMD float32 exp in the last bit for two inputs in five (and, as a
# scalar call, is slower: benchmarks/NOTES.md, "compiled GELU" and "a numba-compiled LSTM cell").

#: Where each constant sits in the tuple ``c`` the GELU kernels take (numnet.activations._erf_constants builds
#: it in this order): a plain tuple rather than a named one, because numba pickles a class that appears in a
#: kernel's signature by its name into the cache, and a cache naming a class that no longer exists fails to
#: load instead of being rebuilt.
(SQRT_HALF, HALF, MINUS_HALF, ONE, DENSITY_SCALE, SMALL_LIMIT, NEAR_ONE_LIMIT, MIDDLE_LIMIT, ERF_ONE,
 ERF_OF_ONE_SINGLE, SPLIT_SCALE, SPLIT_OFFSET, SMALL_NUMERATOR, SMALL_DENOMINATOR, NEAR_ONE_NUMERATOR,
 NEAR_ONE_DENOMINATOR, MIDDLE_NUMERATOR, MIDDLE_DENOMINATOR, LARGE_NUMERATOR, LARGE_DENOMINATOR) = range(20)


@numba.njit(inline="always")
def _polynomial(t, coefficients):
    """c₀ + t(c₁ + t(c₂ + ...)), Horner's form from the last coefficient, as numnet.activations._polynomial."""
    result = coefficients[-1]
    for index in range(len(coefficients) - 2, -1, -1):
        result = coefficients[index] + t * result
    return result


@numba.njit(inline="always")
def _signed(x, magnitude):
    return -magnitude if x < 0 else magnitude


@numba.njit(inline="always")
def _erf_outside_tail(x, y, c):
    """erf(x), |x| = y, for y below 1.25 or from 6 up (a value of no meaning in the tail or for NaN).

    Without branches, so that a loop of it runs in SIMD lanes: both rational forms' polynomials, then the
    quotient of the pair y selects (one division, the one numnet.activations.erf keeps)."""
    small = y < c[SMALL_LIMIT]
    small_t, near_one_t = x * x, y - c[ONE]
    small_numerator = _polynomial(small_t, c[SMALL_NUMERATOR])
    small_denominator = _polynomial(small_t, c[SMALL_DENOMINATOR])
    near_one_numerator = _polynomial(near_one_t, c[NEAR_ONE_NUMERATOR])
    near_one_denominator = _polynomial(near_one_t, c[NEAR_ONE_DENOMINATOR])
    ratio = ((small_numerator if small else near_one_numerator)
             / (small_denominator if small else near_one_denominator))
    magnitude = c[ERF_OF_ONE_SINGLE] + ratio if y < c[NEAR_ONE_LIMIT] else c[ONE]
    return x + x * ratio if small else _signed(x, magnitude)


@numba.njit(**_KERNEL)
def erf_tail_indices(z, c, tail_index):
    """The indices of the entries of z whose erf(z/√2) takes the exponential form (1.25 <= |z/√2| < 6, and
    NaN, as erf's ``where``s choose), in order, into the start of ``tail_index``; returns how many. Every
    index is written and the count grows by the test's outcome: no branch to mispredict."""
    count = 0
    for i in range(z.shape[0]):
        y = abs(z[i] * c[SQRT_HALF])
        tail_index[count] = i
        count += not y < c[NEAR_ONE_LIMIT] and not y >= c[ERF_ONE]
    return count


@numba.njit(**_KERNEL)
def erf_tail_exponents(z, c, first, second):
    """For entries z whose erf(z/√2) takes the exponential form (gathered by erf_tail_indices' indices): the
    exponents of erfc(y) = e^(-s² - 0.5625)·e^((s - y)(s + y) + R/S)/y, y = |z/√2|, s = y cut to 16 bits after
    the point (numnet.activations._erfc_tail), into ``first`` and ``second``. Both rational forms are evaluated
    and one divided, without branches, so that the loop runs in SIMD lanes (it would not on z[tail_index[k]]:
    the gathered loop ran 6 times slower)."""
    for k in range(z.shape[0]):
        y = abs(z[k] * c[SQRT_HALF])
        inverse_square = c[ONE] / (y * y)
        middle = y < c[MIDDLE_LIMIT]
        middle_numerator = _polynomial(inverse_square, c[MIDDLE_NUMERATOR])
        middle_denominator = _polynomial(inverse_square, c[MIDDLE_DENOMINATOR])
        large_numerator = _polynomial(inverse_square, c[LARGE_NUMERATOR])
        large_denominator = _polynomial(inverse_square, c[LARGE_DENOMINATOR])
        correction = ((middle_numerator if middle else large_numerator)
                      / (middle_denominator if middle else large_denominator))
        split = np.trunc(y * c[SPLIT_SCALE]) / c[SPLIT_SCALE]
        first[k] = -split * split - c[SPLIT_OFFSET]
        second[k] = (split - y) * (split + y) + correction


@numba.njit(inline="always")
def _erf_in_tail(x, c, first_exponential, second_exponential):
    """erf(x) in the exponential form, from the exponentials of erf_tail_exponents's exponents: ±(1 - e₁·e₂/y)."""
    return _signed(x, c[ONE] - first_exponential * second_exponential / abs(x))


@numba.njit(**_KERNEL)
def gelu_values(z, c, out):
    """out ← ½z(1 + erf(z/√2)), GELU.forward, for every entry outside erf's exponential form
    (gelu_tail_values overwrites the others)."""
    for i in range(z.shape[0]):
        x = z[i] * c[SQRT_HALF]
        out[i] = c[HALF] * z[i] * (c[ONE] + _erf_outside_tail(x, abs(x), c))


@numba.njit(**_KERNEL)
def gelu_tail_values(z, c, tail_index, first_exponential, second_exponential, out):
    """out ← ½z(1 + erf(z/√2)) at the entries ``tail_index``, from the exponentials of their exponents."""
    for k in range(tail_index.shape[0]):
        i = tail_index[k]
        erf = _erf_in_tail(z[i] * c[SQRT_HALF], c, first_exponential[k], second_exponential[k])
        out[i] = c[HALF] * z[i] * (c[ONE] + erf)


@numba.njit(inline="always")
def _gelu_gradient(gradient, z, erf, density, c):
    """gradient · (Φ(z) + z·φ(z)), GELU.backward: Φ(z) = ½(1 + erf), φ(z) = ``density``·1/√(2π) with
    ``density`` = e^(-½z²)."""
    return gradient * (c[HALF] * (c[ONE] + erf) + z * (density * c[DENSITY_SCALE]))


@numba.njit(**_KERNEL)
def gelu_gradient(grad_a, z, c, density, out):
    """out ← grad_a · GELU'(z) for every entry outside erf's exponential form (gelu_tail_gradient overwrites
    the others); ``density`` = e^(-½z²)."""
    for i in range(z.shape[0]):
        x = z[i] * c[SQRT_HALF]
        out[i] = _gelu_gradient(grad_a[i], z[i], _erf_outside_tail(x, abs(x), c), density[i], c)


@numba.njit(**_KERNEL)
def gelu_tail_gradient(grad_a, z, c, density, tail_index, first_exponential, second_exponential, out):
    """out ← grad_a · GELU'(z) at the entries ``tail_index``, from the exponentials of their exponents."""
    for k in range(tail_index.shape[0]):
        i = tail_index[k]
        erf = _erf_in_tail(z[i] * c[SQRT_HALF], c, first_exponential[k], second_exponential[k])
        out[i] = _gelu_gradient(grad_a[i], z[i], erf, density[i], c)


#: Every kernel, by its name: the optimiser rules' records name theirs here (numnet.optimizers.Rule), and
#: numnet.kernels places the on-disk cache of each.
KERNELS = {kernel.__name__: kernel for kernel in (sgd_step, momentum_step, nesterov_step, adagrad_step, rmsprop_step,
                                                  adam_step, adamw_step, adamw_masked_step, bias_relu, relu_gradient,
                                                  erf_tail_indices, erf_tail_exponents, gelu_values, gelu_tail_values,
                                                  gelu_gradient, gelu_tail_gradient)}
