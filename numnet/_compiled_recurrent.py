"""The numba kernels of the LSTM's walk over the time steps: its element-wise work in a few passes per step.

Imported only by numnet.recurrent (through :func:`numnet.kernels.load_compiled_module`), the first time an LSTM
walks with the compiled kernels chosen and numba installed. NumPy's walk (numnet.recurrent.LSTM) is the
reference: these kernels repeat its operations element by element, in the same order, on scalars of the
arrays' dtype (``one`` is 1 in that dtype), so that every rounding is the same and the walk's results are
bit-identical (tests/test_recurrent_compiled.py). fastmath stays off (it would reorder and contract the
arithmetic).

The exponentials and tanh stay NumPy's: numba's are the C library's scalar calls, which LLVM does not
vectorise without Intel's SVML (sigmoid 3.4 and tanh 18.6 ns per value against NumPy's 1.4 and 2.6 ns;
benchmarks/NOTES.md, "a numba-compiled LSTM cell"), and they would differ from NumPy's SIMD float32
functions in the last bit. So a forward step is: the kernel that adds the input term and lays out the
exponents, NumPy's exp and tanh, the kernel that makes the gates and the cell, NumPy's tanh of the cell,
and the kernel that makes h. A backward step needs no transcendental function (every derivative comes from
the stored values) and is one kernel. The kernels release the GIL, as numnet._compiled_kernels' do, but
numnet.recurrent calls them from one thread: halves of the batch's rows on two threads cost more CPU in
hand-overs and were not kept (benchmarks/NOTES.md, "compiled LSTM walk (issue 23)").

Arrays are (n_rows, ·), C-contiguous or slices of rows of such arrays; the LSTM's gates are four blocks of
H columns in PyTorch's order i, f, g, o.
"""

import numba

# As numnet._compiled_kernels: not ``cache=True`` (numnet.kernels caches in the user's folder).
_KERNEL = {"nogil": True, "error_model": "numpy"}


@numba.njit(**_KERNEL)
def lstm_exponents(h_terms, x_terms, exponents, gates):
    """Each gate's pre-activation z = hₜ₋₁·Wh + (xₜ·Wx + b): −z of i, f and o into ``exponents`` (n, 3H), for
    NumPy's exp (σ(z) = 1/(1 + e^−z)), and z of g into its block of ``gates`` (n, 4H), for NumPy's tanh."""
    H = gates.shape[1] // 4
    for r in range(gates.shape[0]):
        h_row, x_row, e_row = h_terms[r], x_terms[r], exponents[r]
        for j in range(2 * H):  # i and f, side by side in both
            e_row[j] = -(h_row[j] + x_row[j])
        h_g, x_g, g = h_row[2 * H:3 * H], x_row[2 * H:3 * H], gates[r, 2 * H:3 * H]
        for j in range(H):
            g[j] = h_g[j] + x_g[j]
        h_o, x_o, e_o = h_row[3 * H:], x_row[3 * H:], e_row[2 * H:]
        for j in range(H):
            e_o[j] = -(h_o[j] + x_o[j])


@numba.njit(**_KERNEL)
def lstm_cell(exponentials, gates, cell_before, cell, one):
    """σ of i, f and o from their ``exponentials`` e^−z into ``gates`` (whose g block holds tanh(z) already),
    and the cell cₜ = fₜ ⊙ cₜ₋₁ + iₜ ⊙ gₜ into ``cell``."""
    H = cell.shape[1]
    for r in range(cell.shape[0]):
        e_row, gate_row = exponentials[r], gates[r]
        for j in range(2 * H):  # i and f
            gate_row[j] = one / (one + e_row[j])
        e_o, o = e_row[2 * H:], gate_row[3 * H:]
        for j in range(H):
            o[j] = one / (one + e_o[j])
        i, f, g, c_before, c = gate_row[:H], gate_row[H:2 * H], gate_row[2 * H:3 * H], cell_before[r], cell[r]
        for j in range(H):
            c[j] = f[j] * c_before[j] + i[j] * g[j]


@numba.njit(**_KERNEL)
def lstm_hidden(gates, tanh_cell, hidden):
    """hₜ = oₜ ⊙ tanh(cₜ)."""
    H = hidden.shape[1]
    for r in range(hidden.shape[0]):
        o, tanh_c, h = gates[r, 3 * H:], tanh_cell[r], hidden[r]
        for j in range(H):
            h[j] = o[j] * tanh_c[j]


@numba.njit(**_KERNEL)
def lstm_step_backward(d_hidden, from_above, gates, cell_before, tanh_cell, d_cell, deltas, one):
    """One step of the LSTM's backward walk (numnet.recurrent.LSTM._through_time's loop body).

    dC/dhₜ is ``d_hidden`` (n, H), dC/d(gates)ₜ₊₁·Whᵀ, plus ``from_above`` (what hₜ's own output receives,
    added into ``d_hidden`` in place), or ``d_hidden`` alone when ``from_above`` has no rows (the last step,
    where d_hidden is what the output receives). The gate pre-activations' gradients go into ``deltas``
    (n, 4H), and ``d_cell``, dC/dcₜ from the step after, is updated in place to dC/dcₜ₋₁.
    """
    H = d_cell.shape[1]
    for r in range(d_cell.shape[0]):
        d_h = d_hidden[r]
        if from_above.shape[0]:
            above = from_above[r]
            for j in range(H):
                d_h[j] = d_h[j] + above[j]
        gate_row, delta_row = gates[r], deltas[r]
        i, f, g, o = gate_row[:H], gate_row[H:2 * H], gate_row[2 * H:3 * H], gate_row[3 * H:]
        d_i, d_f, d_g, d_o = delta_row[:H], delta_row[H:2 * H], delta_row[2 * H:3 * H], delta_row[3 * H:]
        c_before, tanh_c, d_c = cell_before[r], tanh_cell[r], d_cell[r]
        for j in range(H):
            # dC/dcₜ through hₜ = oₜ ⊙ tanh(cₜ), and from cₜ₊₁; then BP2's second factor for each gate
            through_cell = d_c[j] + d_h[j] * o[j] * (one - tanh_c[j] * tanh_c[j])
            d_i[j] = through_cell * g[j] * (i[j] * (one - i[j]))
            d_f[j] = through_cell * c_before[j] * (f[j] * (one - f[j]))
            d_g[j] = through_cell * i[j] * (one - g[j] * g[j])
            d_o[j] = d_h[j] * tanh_c[j] * (o[j] * (one - o[j]))
            d_c[j] = through_cell * f[j]


#: Every kernel, by its name: numnet.kernels places the on-disk cache of each.
KERNELS = {kernel.__name__: kernel for kernel in (lstm_exponents, lstm_cell, lstm_hidden, lstm_step_backward)}
