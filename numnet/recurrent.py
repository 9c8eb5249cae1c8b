"""Recurrent layers: RNN, LSTM and GRU, with backpropagation through time written out.

A recurrent layer reads a sequence x (n_samples, time_steps, input_size) one step at a time, carrying a
hidden state h (n_samples, H) from each step to the next: hₜ = step(xₜ, hₜ₋₁), h₀ = 0. It returns every hₜ,
(n_samples, time_steps, H), or with ``return_sequences=False`` only the last, (n_samples, H), for sequence
classification.

Every layer here computes its gates from two affine maps, one of the input and one of the previous state:
xₜ·Wx (+ b) with ``Wx`` (input_size, blocks·H) and hₜ₋₁·Wh with ``Wh`` (H, blocks·H), the columns in blocks
of H, one block per gate (RNN 1, GRU 3, LSTM 4). The input's product does not depend on the recurrence, so
it is computed for all time steps as ONE matrix product, (time_steps·n, input_size) @ (input_size,
blocks·H); only hₜ₋₁·Wh and the element-wise gate math run step by step.

Backpropagation through time (BPTT) is backpropagation through the network unrolled over the time steps,
whose layers all share Wx, Wh and b. Walking the steps backwards, dC/dhₜ is the sum of what the layer's
output at step t receives from above and of what step t + 1 sends back through Wh (BP2 through time,
dC/dhₜ₋₁ = dC/dgatesₜ·Whᵀ); each step's gate gradients dC/dgatesₜ are kept in a (time_steps, n, blocks·H)
buffer, and once the walk is done the shared weights' gradients are sums over the steps, each ONE product
over the stacked steps: dC/dWx = Σₜ xₜᵀ·dC/dgatesₜ, dC/dWh = Σₜ hₜ₋₁ᵀ·dC/dgatesₜ (BP4) and dC/db =
Σₜ dC/dgatesₜ summed over the batch (BP3). Inside the layer the arrays are time-major, (time_steps, n, ...),
so that every step's slice and the stack of every hₜ₋₁ are C-contiguous blocks of one buffer.

The layouts are PyTorch's up to a transpose: ``Wx`` is ``weight_ih_l0.T``, ``Wh`` is ``weight_hh_l0.T``,
with the gate blocks in PyTorch's order (LSTM i, f, g, o; GRU r, z, n). ONNX orders them differently (LSTM
i, o, f, c; GRU z, r, h with ``linear_before_reset=1``), so an exporter reorders the blocks.

Stateful training (``stateful=True``): the last state of each row of a training batch is carried into the
same row of the next training batch as its initial state, so that a long sequence cut into consecutive
chunks (row r of batch k + 1 continuing row r of batch k) is read as one (truncated backpropagation through
time). The carried state is a copy, detached from the graph: the backward pass of a batch stops at its
first step, because the previous batch's graph is gone (its cache replaced) and backpropagating further
would make the cost of a step grow with the length of the whole sequence. ``Network.reset_states()``
forgets it; prediction and validation (``training=False``) start from zeros and leave it untouched.
``forward_from(x, state)`` predicts from a given state and returns the last one with the output, so that
a sequence can be read in pieces, each from where the previous one ended (:func:`numnet.text.generate`
feeds one token at a time so).

The layers register their kinds (rnn, lstm, gru) in :data:`numnet.layers.LAYERS` when this module is
imported (``import numnet`` does), so saved models holding them load.
"""

import math

import numpy as np

from .activations import get_activation
from .backend import apply, namespace, to_numpy
from .kernels import compilable, load_compiled_module
from .layers import Layer, _fill, register_layer
from .validation import Boolean, Integer, declare

#: The gates' derivatives, from numnet's activation objects, each computed from the activation's value
#: (σ' = σ(1 − σ), tanh' = 1 − tanh²); tanh itself from the same object, σ itself by :func:`_sigmoid`.
_SIGMOID = get_activation("sigmoid")
_TANH = get_activation("tanh")


def _sigmoid(z):
    """σ(z) = 1/(1 + e^−z), the gates' sigmoid, in z's dtype.

    For z below about −88 (float32) or −709 (float64) e^−z overflows to infinity and σ is 0, the exact
    limit, so the overflow is silenced. One exponential and three cheap passes, against the activation's
    form (e^−|z| and a branch by ``where``, free of overflow): an LSTM forward at batch 32, 64 steps,
    H = 256 took 33 instead of 44 ms (benchmarks/NOTES.md, "gate sigmoid by one exponential").
    """
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + namespace(z).exp(-z))


class _Recurrent(Layer):
    """What RNN, LSTM and GRU share: parameters, shapes, the stacked input product, the carried state, and
    the weight gradients summed over the steps.

    A subclass sets ``blocks`` (gates per step) and ``state_names``, and implements ``_run`` (the forward
    walk over the steps) and ``_through_time`` (the backward walk).
    """

    #: Blocks of H columns in Wx and Wh: one per gate.
    blocks = 1
    #: The states a step hands to the next (and a stateful layer carries between batches).
    state_names = ("h",)
    #: The bias added to the input's product (GRU has a second one, inside the recurrent term).
    input_bias = "b"
    #: Whether the last forward pass was given its initial state (whose gradient backward then computes).
    _state_given = False

    @declare(input_size=Integer(), hidden_size=Integer(), return_sequences=Boolean(), stateful=Boolean())
    def __init__(self, input_size, hidden_size, *, return_sequences=True, stateful=False, name=None):
        super().__init__(name=name)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.return_sequences = return_sequences
        self.stateful = stateful
        self._carried = {}
        #: dC/d(initial_state) after a backward pass whose forward was given ``initial_state``, by name.
        self.initial_state_gradients = {}

    # ---- what the layer holds ------------------------------------------------------------------------

    def parameter_shapes(self):
        width = self.blocks * self.hidden_size
        return {"Wx": (self.input_size, width), "Wh": (self.hidden_size, width), "b": (width,)}

    def penalized_parameters(self):
        return ("Wx", "Wh")

    def expected_input_shape(self):
        return (None, self.input_size)  # sequences of any length

    def output_shape(self, input_shape):
        if input_shape is not None:
            if len(input_shape) != 2 or input_shape[1] not in (None, self.input_size):
                raise ValueError(f"takes sequences of shape (time_steps, {self.input_size})")
        time_steps = None if input_shape is None else input_shape[0]
        return (time_steps, self.hidden_size) if self.return_sequences else (self.hidden_size,)

    def initialize(self, rng):
        """Every parameter from U(−k, k), k = 1/√H, PyTorch's default for its recurrent layers, drawn in float64
        from ``rng`` and stored in the layer's dtype."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for array in self.params.values():
            _fill(array, rng.uniform(-bound, bound, size=array.shape))

    # ---- forward -------------------------------------------------------------------------------------

    def forward(self, x, training=False, rng=None, *, initial_state=None):
        """Read ``x`` (n_samples, time_steps, input_size); return every hₜ (n_samples, time_steps, H), or
        with ``return_sequences=False`` the last (n_samples, H).

        With ``training=True``, cache what backward needs and, for a stateful layer, start from the carried
        state and carry this batch's last state on; with False, start from zeros and cache nothing.

        ``initial_state`` starts the layer from a given state instead, a mapping like :meth:`forward_from`'s
        (``"h"``; LSTM also ``"c"``, each (n_samples, H)), part of the graph: a seq2seq decoder starts from
        the encoder's last state, and after :meth:`backward` the gradient that state receives is in
        ``initial_state_gradients`` (same keys), for the encoder's backward pass.

        Raises
        ------
        ValueError
            For input of another shape, a state with other names or shapes, ``initial_state`` for a stateful
            layer, or a stateful training batch whose row count differs from the carried state's.
        """
        n, _ = self._check_input(x)
        if initial_state is None:
            initial = self._initial_state(x, training)
        elif self.stateful:
            raise ValueError(f"layer {self.name or self.kind} is stateful: it starts each batch from the state it "
                             "carried, so it cannot also take an initial_state; build it with stateful=False")
        else:
            initial = self._checked_state(initial_state, n)
        self._state_given = initial_state is not None
        output, last = self._read(x, initial, training)
        if training and self.stateful:
            # Detached: a copy of the values, which no backward pass reaches (truncated BPTT)
            xp = namespace(x)
            self._carried = {key: xp.asarray(value, copy=True) for key, value in last.items()}
        return output

    def forward_from(self, x, state=None):
        """Predict from a given initial state and return the last one too: (output, last state).

        What :meth:`forward` computes with ``training=False``, but starting from ``state`` instead of zeros:
        reading a sequence in pieces, each from the state the previous piece ended in, gives the outputs of
        reading it whole (text generation feeds one token at a time so, :func:`numnet.text.generate`).
        Nothing is cached and the carried state is left as it is.

        Parameters
        ----------
        x : array, shape (n_samples, time_steps, input_size)
        state : dict, optional
            Each of the layer's states (``"h"``; LSTM also ``"c"``), (n_samples, H), as a previous call
            returned it; None starts from zeros.

        Returns
        -------
        output : array
            As :meth:`forward` returns it.
        state : dict
            The state after the last step, by name, each (n_samples, H).

        Raises
        ------
        ValueError
            For input of another shape, or a state with other names or shapes.
        """
        n, _ = self._check_input(x)
        if state is None:
            return self._read(x, self._initial_state(x, training=False), training=False)
        return self._read(x, self._checked_state(state, n), training=False)

    def _checked_state(self, state, n):
        """``state`` after checking that it holds each of ``state_names``, (n, H) each."""
        if set(state) != set(self.state_names) or any(tuple(value.shape) != (n, self.hidden_size)
                                                      for value in state.values()):
            shapes = ", ".join(f"{key} {tuple(value.shape)}" for key, value in sorted(state.items()))
            raise ValueError(f"layer {self.name or self.kind} starts from {', '.join(self.state_names)}, each of "
                             f"shape ({n}, {self.hidden_size}), but was given {shapes or 'nothing'}")
        return state

    def _read(self, x, initial, training):
        """(output, last state) of reading ``x`` from the state ``initial``; with ``training``, cache for
        backward."""
        xp = namespace(x)
        n, time_steps = x.shape[0], x.shape[1]
        # (time_steps·n, input_size), time-major: row t·n + s is xₜ of sample s
        x_rows = xp.reshape(_swap_batch_and_time(x), (time_steps * n, self.input_size))
        # Every step's input term xₜ·Wx + b at once, as one matrix product over the stacked steps
        x_terms = x_rows @ self.params["Wx"]  # (time_steps·n, blocks·H)
        x_terms += self.params[self.input_bias]
        hidden, saved, last = self._run(xp.reshape(x_terms, (time_steps, n, -1)), initial)
        self._cache = (x_rows, hidden, saved) if training else None
        if not self.return_sequences:
            return last["h"], last
        return _swap_batch_and_time(hidden[1:, ...]), last  # (n, time_steps, H)

    def _check_input(self, x):
        """(n_samples, time_steps) of ``x``, after checking that it is (n, time_steps >= 1, input_size)."""
        if x.ndim != 3 or x.shape[2] != self.input_size or x.shape[1] == 0:
            raise ValueError(f"layer {self.name or self.kind} ({type(self).__name__}) takes sequences of shape "
                             f"(n_samples, time_steps, {self.input_size}) with at least one time step, got shape "
                             f"{tuple(x.shape)}")
        return x.shape[0], x.shape[1]

    def _initial_state(self, x, training):
        """Each of ``state_names`` at the first step, (n, H): zeros, or the carried state in stateful training."""
        xp = namespace(x)
        n = x.shape[0]
        if not (training and self.stateful and self._carried):
            return {key: xp.zeros((n, self.hidden_size), dtype=x.dtype) for key in self.state_names}
        carried_rows = self._carried["h"].shape[0]
        if carried_rows != n:
            raise ValueError(
                f"layer {self.name or self.kind} is stateful: it carries each row's last state into the same "
                f"row of the next training batch, so a stateful layer needs every training batch to have the "
                f"same number of rows; this batch has {n} rows and the carried state {carried_rows}. Make the "
                "number of training sequences a multiple of batch_size, or call network.reset_states() before "
                "a batch of another size"
            )
        return self._carried

    def _run(self, x_terms, initial):
        """Walk forward over the steps; ``x_terms`` (time_steps, n, blocks·H) holds xₜ·Wx + b.

        Returns (hidden (time_steps + 1, n, H) with hidden[0] the initial h, what ``_through_time`` needs,
        the last state of each of ``state_names``)."""
        raise NotImplementedError

    # ---- backward ------------------------------------------------------------------------------------

    def backward(self, grad_output, propagate=True):
        """Backpropagate through time from dC/d(output); fill every parameter's gradient and return dC/dx
        (n_samples, time_steps, input_size), or None when ``propagate`` is False."""
        x_rows, hidden, saved = self._require_cache()
        xp = namespace(grad_output)
        time_steps, n = hidden.shape[0] - 1, hidden.shape[1]
        d_x_terms, d_h_terms, direct = self._through_time(self._step_gradients(grad_output, hidden), hidden, saved)
        if self._state_given:
            # BP2 through time to the given initial state: through h₀·Wh, plus the paths around Wh (the cell's)
            d_initial = d_h_terms[0, ...] @ self.params["Wh"].T
            self.initial_state_gradients = {"h": d_initial + direct["h"] if "h" in direct else d_initial,
                                            **{key: value for key, value in direct.items() if key != "h"}}
        d_x_rows = xp.reshape(d_x_terms, (time_steps * n, -1))  # (time_steps·n, blocks·H)
        d_h_rows = xp.reshape(d_h_terms, (time_steps * n, -1))
        # BP4, summed over the steps as one product each: dC/dWx = Σₜ xₜᵀ·dC/d(xₜWx), dC/dWh = Σₜ hₜ₋₁ᵀ·dC/d(hₜ₋₁Wh)
        apply(xp.matmul, x_rows.T, d_x_rows, out=self.grads["Wx"])
        h_previous_rows = xp.reshape(hidden[:-1, ...], (time_steps * n, self.hidden_size))  # h₀ … h_{T−1}
        apply(xp.matmul, h_previous_rows.T, d_h_rows, out=self.grads["Wh"])
        self._bias_gradients(d_x_rows, d_h_rows)
        if not propagate:
            return None
        # BP2 to the layer's input, every step at once: dC/dxₜ = dC/d(xₜWx)·Wxᵀ
        d_x = d_x_rows @ self.params["Wx"].T  # (time_steps·n, input_size)
        return _swap_batch_and_time(xp.reshape(d_x, (time_steps, n, self.input_size)))

    def _step_gradients(self, grad_output, hidden):
        """dC/dhₜ from above, for every step (time_steps, n, H): the output's gradient, time-major, or with
        ``return_sequences=False`` zeros but at the last step."""
        if self.return_sequences:
            return _swap_batch_and_time(grad_output)
        xp = namespace(grad_output)
        from_above = xp.zeros((hidden.shape[0] - 1, *hidden.shape[1:]), dtype=grad_output.dtype)
        from_above[-1, ...] = grad_output
        return from_above

    def _bias_gradients(self, d_x_rows, d_h_rows):
        """dC/db from the gradient of the term b is added to (xₜ·Wx + b), (time_steps·n, blocks·H)."""
        # BP3: dC/db = dC/d(xₜ·Wx + b), summed over the steps and the batch
        apply(namespace(d_x_rows).sum, d_x_rows, axis=0, out=self.grads["b"])

    def _through_time(self, from_above, hidden, saved):
        """Walk backward over the steps from dC/dhₜ ``from_above`` (time_steps, n, H).

        Returns (dC/d(xₜ·Wx + b), dC/d(hₜ₋₁·Wh)), both (time_steps, n, blocks·H), and what the initial state
        receives along the paths that do not pass through Wh, by state name (LSTM: c₀ through the cell)."""
        raise NotImplementedError

    # ---- the state carried between training batches --------------------------------------------------

    def carried_state(self):
        """The last state of each row of the last training batch, by name (``"h"``; LSTM also ``"c"``), each
        (n_samples, H); empty unless the layer is stateful and has trained since the last reset."""
        return dict(self._carried)

    def set_carried_state(self, arrays):
        """Carry ``arrays`` (a mapping like :meth:`carried_state`'s, NumPy or the layer's backend) into the
        next training batch; an empty mapping forgets the state.

        Raises
        ------
        ValueError
            For names other than the layer's states, or arrays not all of shape (n_samples, H).
        RuntimeError
            When the layer has no parameters yet (the state takes their backend and dtype).
        """
        if not arrays:
            self._carried = {}
            return
        if set(arrays) != set(self.state_names):
            raise ValueError(f"layer {self.name or self.kind} carries {', '.join(self.state_names)}, but was given "
                             f"{', '.join(sorted(arrays))}; the state belongs to another kind of layer")
        if "Wh" not in self.params:
            raise RuntimeError(f"layer {self.name or self.kind} has no parameters yet; add it to a Network before "
                               "restoring its carried state")
        arrays = {key: np.array(to_numpy(value), copy=True) for key, value in arrays.items()}  # not the caller's
        rows = arrays["h"].shape[0] if arrays["h"].ndim == 2 else None
        if any(value.shape != (rows, self.hidden_size) for value in arrays.values()):
            shapes = ", ".join(f"{key} {value.shape}" for key, value in sorted(arrays.items()))
            raise ValueError(f"layer {self.name or self.kind} carries arrays of shape (n_samples, "
                             f"{self.hidden_size}), all with the same n_samples, but was given {shapes}")
        Wh = self.params["Wh"]
        xp = namespace(Wh)
        self._carried = {key: xp.asarray(value, dtype=Wh.dtype) for key, value in arrays.items()}

    def reset_carried_state(self):
        """Forget the carried state: the next training batch starts from zeros."""
        self._carried = {}

    def describe(self):
        output = "every step" if self.return_sequences else "last step"
        return (f"{type(self).__name__} {self.input_size} -> {self.hidden_size}, {output}"
                + (", stateful" if self.stateful else ""))


@register_layer
class RNN(_Recurrent):
    """The Elman recurrent layer: hₜ = tanh(xₜ·Wx + hₜ₋₁·Wh + b), h₀ = 0.

    Weights: ``Wx`` (input_size, H), ``Wh`` (H, H), ``b`` (H,). PyTorch's ``nn.RNN(nonlinearity="tanh",
    batch_first=True)`` holds the same numbers as ``weight_ih_l0 = Wx.T``, ``weight_hh_l0 = Wh.T`` and two
    biases whose sum is ``b`` (``bias_ih_l0 + bias_hh_l0``); ONNX's ``RNN`` (activation Tanh) as
    ``W = Wx.T`` (1, H, input_size), ``R = Wh.T`` (1, H, H) and ``B = [b, 0]`` (1, 2H). All start
    U(−k, k), k = 1/√H (PyTorch draws both of its biases so; their sum, our ``b``, then spreads over
    (−2k, 2k)). L2 penalises ``Wx`` and ``Wh``.

    Parameters
    ----------
    input_size : int
        The features of each step's input.
    hidden_size : int
        H, the size of the hidden state.
    return_sequences : bool, default True
        Return every hₜ, (n_samples, time_steps, H); False returns only the last, (n_samples, H).
    stateful : bool, default False
        Carry each row's last state into the next training batch (see :mod:`numnet.recurrent`).
    name : str, optional
        Set by the network ("rnn_0", ...) when not given.
    """

    def _run(self, x_terms, initial):
        xp = namespace(x_terms)
        time_steps, n, _ = x_terms.shape
        Wh = self.params["Wh"]
        hidden = xp.empty((time_steps + 1, n, self.hidden_size), dtype=x_terms.dtype)
        hidden[0, ...] = initial["h"]
        for t in range(time_steps):
            z = hidden[t, ...] @ Wh
            z += x_terms[t, ...]  # zₜ = xₜ·Wx + b + hₜ₋₁·Wh
            hidden[t + 1, ...] = _TANH.forward(z)
        return hidden, None, {"h": hidden[time_steps, ...]}

    def _through_time(self, from_above, hidden, saved):
        xp = namespace(from_above)
        time_steps = from_above.shape[0]
        Wh = self.params["Wh"]
        deltas = xp.empty(from_above.shape, dtype=from_above.dtype)  # dC/dzₜ, (time_steps, n, H)
        d_hidden = from_above[-1, ...]  # dC/dh at the last step: only from above
        for t in reversed(range(time_steps)):
            # BP2's second factor: dC/dzₜ = dC/dhₜ ⊙ tanh'(zₜ), tanh' from hₜ
            deltas[t, ...] = d_hidden * _TANH.derivative(hidden[t + 1, ...])
            if t > 0:
                # BP2 through time: dC/dhₜ₋₁ = dC/dzₜ·Whᵀ, plus what hₜ₋₁'s own output receives
                d_hidden = deltas[t, ...] @ Wh.T + from_above[t - 1, ...]
        return deltas, deltas, {}


@register_layer
class LSTM(_Recurrent):
    """Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate), PyTorch's equations:

    - gates: iₜ = σ(·), fₜ = σ(·), gₜ = tanh(·), oₜ = σ(·) of the four blocks of xₜ·Wx + hₜ₋₁·Wh + b;
    - cell: cₜ = fₜ ⊙ cₜ₋₁ + iₜ ⊙ gₜ;
    - output: hₜ = oₜ ⊙ tanh(cₜ), with h₀ = c₀ = 0.

    Weights: ``Wx`` (input_size, 4H), ``Wh`` (H, 4H), ``b`` (4H,), the four blocks of H columns in
    PyTorch's gate order i, f, g, o. PyTorch's ``nn.LSTM(batch_first=True)`` holds the same numbers as
    ``weight_ih_l0 = Wx.T``, ``weight_hh_l0 = Wh.T`` and ``bias_ih_l0 + bias_hh_l0 = b`` (our one ``b`` is
    the sum of its two). ONNX's ``LSTM`` orders the gates i, o, f, c (c is our g): its ``W`` (1, 4H, input_size)
    is ``Wx.T`` and ``R`` (1, 4H, H) is ``Wh.T`` with the blocks reordered, ``B`` (1, 8H) is ``[b, 0]``
    reordered likewise. All start U(−k, k),
    k = 1/√H, PyTorch's default (for our single ``b`` too, where PyTorch's sum of two spreads over
    (−2k, 2k)). A stateful LSTM carries h and c. L2 penalises ``Wx`` and ``Wh``.

    Parameters
    ----------
    input_size : int
        The features of each step's input.
    hidden_size : int
        H, the size of the hidden and cell states.
    return_sequences : bool, default True
        Return every hₜ, (n_samples, time_steps, H); False returns only the last, (n_samples, H).
    stateful : bool, default False
        Carry each row's last h and c into the next training batch (see :mod:`numnet.recurrent`).
    name : str, optional
        Set by the network ("lstm_0", ...) when not given.
    """

    blocks = 4
    state_names = ("h", "c")

    def _run(self, x_terms, initial):
        if compilable(x_terms):
            return self._run_compiled(x_terms, initial)
        xp = namespace(x_terms)
        time_steps, n, _ = x_terms.shape
        H, Wh = self.hidden_size, self.params["Wh"]
        hidden = xp.empty((time_steps + 1, n, H), dtype=x_terms.dtype)
        cells = xp.empty((time_steps + 1, n, H), dtype=x_terms.dtype)  # c₀ … c_T
        gates = xp.empty(x_terms.shape, dtype=x_terms.dtype)  # iₜ, fₜ, gₜ, oₜ side by side, (time_steps, n, 4H)
        tanh_cells = xp.empty((time_steps, n, H), dtype=x_terms.dtype)  # tanh(cₜ), for backward
        hidden[0, ...], cells[0, ...] = initial["h"], initial["c"]
        for t in range(time_steps):
            z = hidden[t, ...] @ Wh
            z += x_terms[t, ...]  # the four gates' pre-activations, xₜ·Wx + b + hₜ₋₁·Wh
            gates[t, :, :2 * H] = _sigmoid(z[:, :2 * H])  # i, f
            gates[t, :, 2 * H:3 * H] = _TANH.forward(z[:, 2 * H:3 * H])  # g
            gates[t, :, 3 * H:] = _sigmoid(z[:, 3 * H:])  # o
            i, f, g, o = _blocks(gates[t, ...], H)
            cells[t + 1, ...] = f * cells[t, ...] + i * g
            tanh_cells[t, ...] = _TANH.forward(cells[t + 1, ...])
            hidden[t + 1, ...] = o * tanh_cells[t, ...]
        return hidden, (cells, gates, tanh_cells), {"h": hidden[time_steps, ...], "c": cells[time_steps, ...]}

    def _through_time(self, from_above, hidden, saved):
        if compilable(from_above):
            return self._through_time_compiled(from_above, saved)
        cells, gates, tanh_cells = saved
        xp = namespace(from_above)
        time_steps = from_above.shape[0]
        H, Wh = self.hidden_size, self.params["Wh"]
        deltas = xp.empty(gates.shape, dtype=gates.dtype)  # dC/d(gate pre-activations), (time_steps, n, 4H)
        d_hidden = from_above[-1, ...]  # dC/dh at the last step: only from above
        d_cell = xp.zeros(d_hidden.shape, dtype=d_hidden.dtype)  # dC/dc from the step after: none at the last
        for t in reversed(range(time_steps)):
            i, f, g, o = _blocks(gates[t, ...], H)
            # dC/dcₜ: through hₜ = oₜ ⊙ tanh(cₜ), and from cₜ₊₁ = fₜ₊₁ ⊙ cₜ + ...
            d_cell = d_cell + d_hidden * o * _TANH.derivative(tanh_cells[t, ...])
            # BP2's second factor for each gate: dC/d(pre-activation) = dC/d(gate) ⊙ its derivative
            deltas[t, :, :H] = d_cell * g * _SIGMOID.derivative(i)
            deltas[t, :, H:2 * H] = d_cell * cells[t, ...] * _SIGMOID.derivative(f)
            deltas[t, :, 2 * H:3 * H] = d_cell * i * _TANH.derivative(g)
            deltas[t, :, 3 * H:] = d_hidden * tanh_cells[t, ...] * _SIGMOID.derivative(o)
            d_cell = d_cell * f  # dC/dcₜ₋₁ through the cell's own path
            if t > 0:
                # BP2 through time: dC/dhₜ₋₁ = dC/d(gates)·Whᵀ, plus what hₜ₋₁'s own output receives
                d_hidden = deltas[t, ...] @ Wh.T + from_above[t - 1, ...]
        return deltas, deltas, {"c": d_cell}  # d_cell is dC/dc₀ after the walk

    # ---- the same walks by compiled kernels ------------------------------------------------------------
    # numnet._compiled_recurrent repeats the NumPy walks' operations above in the same order, so the numbers
    # are the same bit for bit; a step is a few calls instead of about twenty (benchmarks/NOTES.md, "compiled
    # LSTM walk (issue 23)").

    def _run_compiled(self, x_terms, initial):
        """_run by the compiled kernels, with NumPy's exp and tanh (numnet._compiled_recurrent says why)."""
        compiled = load_compiled_module("numnet._compiled_recurrent")
        time_steps, n, _ = x_terms.shape
        H, Wh, dtype = self.hidden_size, self.params["Wh"], x_terms.dtype
        hidden, cells = np.empty((time_steps + 1, n, H), dtype), np.empty((time_steps + 1, n, H), dtype)
        gates, tanh_cells = np.empty(x_terms.shape, dtype), np.empty((time_steps, n, H), dtype)
        h_terms, exponents = np.empty((n, 4 * H), dtype), np.empty((n, 3 * H), dtype)  # one step's, reused
        hidden[0, ...], cells[0, ...] = initial["h"], initial["c"]
        one = dtype.type(1)
        with np.errstate(over="ignore"):  # e^−z overflowing gives σ = 0, the exact limit (_sigmoid)
            for t in range(time_steps):
                np.matmul(hidden[t, ...], Wh, out=h_terms)
                compiled.lstm_exponents(h_terms, x_terms[t, ...], exponents, gates[t, ...])
                np.exp(exponents, out=exponents)
                np.tanh(gates[t, :, 2 * H:3 * H], out=gates[t, :, 2 * H:3 * H])
                compiled.lstm_cell(exponents, gates[t, ...], cells[t, ...], cells[t + 1, ...], one)
                np.tanh(cells[t + 1, ...], out=tanh_cells[t, ...])
                compiled.lstm_hidden(gates[t, ...], tanh_cells[t, ...], hidden[t + 1, ...])
        return hidden, (cells, gates, tanh_cells), {"h": hidden[time_steps, ...], "c": cells[time_steps, ...]}

    def _through_time_compiled(self, from_above, saved):
        """_through_time by the compiled kernel: per step, dC/d(gates)ₜ₊₁·Whᵀ and one kernel call."""
        compiled = load_compiled_module("numnet._compiled_recurrent")
        cells, gates, tanh_cells = saved
        time_steps, n, H = from_above.shape
        Wh_transposed, one = self.params["Wh"].T, from_above.dtype.type(1)
        deltas = np.empty(gates.shape, gates.dtype)  # dC/d(gate pre-activations), (time_steps, n, 4H)
        d_cell = np.zeros((n, H), from_above.dtype)  # dC/dc from the step after: none at the last
        d_hidden = np.empty((n, H), from_above.dtype)
        nothing_more = from_above[0, :0, :]  # at the last step dC/dh comes only from above
        for t in reversed(range(time_steps)):
            if t == time_steps - 1:
                step_arguments = (from_above[t, ...], nothing_more)
            else:
                # BP2 through time: dC/dhₜ = dC/d(gates)ₜ₊₁·Whᵀ, plus what hₜ's own output receives (the kernel adds)
                np.matmul(deltas[t + 1, ...], Wh_transposed, out=d_hidden)
                step_arguments = (d_hidden, from_above[t, ...])
            compiled.lstm_step_backward(*step_arguments, gates[t, ...], cells[t, ...], tanh_cells[t, ...], d_cell,
                                        deltas[t, ...], one)
        return deltas, deltas, {"c": d_cell}  # d_cell is dC/dc₀ after the walk


@register_layer
class GRU(_Recurrent):
    """The gated recurrent unit (Cho et al. 2014), PyTorch's equations:

    - reset and update gates: rₜ = σ(xₜ·Wxᵣ + bxᵣ + hₜ₋₁·Whᵣ + bhᵣ), zₜ = σ(xₜ·Wx_z + bx_z + hₜ₋₁·Wh_z + bh_z);
    - candidate: nₜ = tanh(xₜ·Wxₙ + bxₙ + rₜ ⊙ (hₜ₋₁·Whₙ + bhₙ));
    - state: hₜ = (1 − zₜ) ⊙ nₜ + zₜ ⊙ hₜ₋₁, with h₀ = 0.

    Weights: ``Wx`` (input_size, 3H), ``Wh`` (H, 3H), ``bx`` (3H,) and ``bh`` (3H,), the three blocks of H
    columns in PyTorch's order r, z, n. Two biases, because the reset gate multiplies the recurrent term
    with its bias (bhₙ inside r ⊙ (...)), so the two cannot be summed as in the LSTM. PyTorch's
    ``nn.GRU(batch_first=True)`` holds the same numbers as ``weight_ih_l0 = Wx.T``, ``weight_hh_l0 = Wh.T``,
    ``bias_ih_l0 = bx``, ``bias_hh_l0 = bh``. ONNX's ``GRU`` with ``linear_before_reset=1`` (which is this
    form) orders the gates z, r, h: its ``W`` (1, 3H, input_size) is ``Wx.T`` and ``R`` (1, 3H, H) is
    ``Wh.T`` with the blocks reordered, ``B`` (1, 6H) is ``[bx, bh]`` reordered likewise. All start U(−k, k), k = 1/√H, PyTorch's default. L2 penalises ``Wx``
    and ``Wh``.

    Parameters
    ----------
    input_size : int
        The features of each step's input.
    hidden_size : int
        H, the size of the hidden state.
    return_sequences : bool, default True
        Return every hₜ, (n_samples, time_steps, H); False returns only the last, (n_samples, H).
    stateful : bool, default False
        Carry each row's last state into the next training batch (see :mod:`numnet.recurrent`).
    name : str, optional
        Set by the network ("gru_0", ...) when not given.
    """

    blocks = 3
    input_bias = "bx"

    def parameter_shapes(self):
        width = 3 * self.hidden_size
        return {"Wx": (self.input_size, width), "Wh": (self.hidden_size, width), "bx": (width,), "bh": (width,)}

    def _run(self, x_terms, initial):
        xp = namespace(x_terms)
        time_steps, n, _ = x_terms.shape
        H, Wh, bh = self.hidden_size, self.params["Wh"], self.params["bh"]
        hidden = xp.empty((time_steps + 1, n, H), dtype=x_terms.dtype)
        reset_update = xp.empty((time_steps, n, 2 * H), dtype=x_terms.dtype)  # rₜ and zₜ side by side
        candidates = xp.empty((time_steps, n, H), dtype=x_terms.dtype)  # nₜ
        h_candidate_terms = xp.empty((time_steps, n, H), dtype=x_terms.dtype)  # hₜ₋₁·Whₙ + bhₙ
        hidden[0, ...] = initial["h"]
        for t in range(time_steps):
            h_terms = hidden[t, ...] @ Wh
            h_terms += bh  # hₜ₋₁·Wh + bh, (n, 3H)
            reset_update[t, ...] = _sigmoid(x_terms[t, :, :2 * H] + h_terms[:, :2 * H])
            r, z = reset_update[t, :, :H], reset_update[t, :, H:]
            h_candidate_terms[t, ...] = h_terms[:, 2 * H:]
            candidates[t, ...] = _TANH.forward(x_terms[t, :, 2 * H:] + r * h_candidate_terms[t, ...])
            hidden[t + 1, ...] = (1.0 - z) * candidates[t, ...] + z * hidden[t, ...]
        return hidden, (reset_update, candidates, h_candidate_terms), {"h": hidden[time_steps, ...]}

    def _through_time(self, from_above, hidden, saved):
        reset_update, candidates, h_candidate_terms = saved
        xp = namespace(from_above)
        time_steps, n, H = from_above.shape
        Wh = self.params["Wh"]
        # The gradients of the two affine terms differ in the candidate's block: r multiplies the recurrent one
        d_x_terms = xp.empty((time_steps, n, 3 * H), dtype=from_above.dtype)  # dC/d(xₜ·Wx + bx)
        d_h_terms = xp.empty((time_steps, n, 3 * H), dtype=from_above.dtype)  # dC/d(hₜ₋₁·Wh + bh)
        d_hidden = from_above[-1, ...]  # dC/dh at the last step: only from above
        for t in reversed(range(time_steps)):
            r, z = reset_update[t, :, :H], reset_update[t, :, H:]
            candidate = candidates[t, ...]
            # BP2's second factor for each gate, through hₜ = (1 − zₜ) ⊙ nₜ + zₜ ⊙ hₜ₋₁
            d_candidate = d_hidden * (1.0 - z) * _TANH.derivative(candidate)  # at nₜ's pre-activation
            d_update = d_hidden * (hidden[t, ...] - candidate) * _SIGMOID.derivative(z)
            d_reset = d_candidate * h_candidate_terms[t, ...] * _SIGMOID.derivative(r)
            d_x_terms[t, :, :H], d_x_terms[t, :, H:2 * H], d_x_terms[t, :, 2 * H:] = d_reset, d_update, d_candidate
            d_h_terms[t, :, :2 * H] = d_x_terms[t, :, :2 * H]
            d_h_terms[t, :, 2 * H:] = d_candidate * r
            if t > 0:
                # BP2 through time: dC/dhₜ₋₁ = dC/d(hₜ₋₁·Wh)·Whᵀ + dC/dhₜ ⊙ zₜ (the direct path), plus what
                # hₜ₋₁'s own output receives
                d_hidden = d_h_terms[t, ...] @ Wh.T + d_hidden * z + from_above[t - 1, ...]
        return d_x_terms, d_h_terms, {"h": d_hidden * z}  # h₀'s direct path, zₜ of the first step

    def _bias_gradients(self, d_x_rows, d_h_rows):
        """dC/dbx and dC/dbh from the gradients of the two terms they are added to."""
        xp = namespace(d_x_rows)
        # BP3 for both biases: dC/dbx = dC/d(xₜ·Wx + bx) and dC/dbh = dC/d(hₜ₋₁·Wh + bh), summed over the
        # steps and the batch
        apply(xp.sum, d_x_rows, axis=0, out=self.grads["bx"])
        apply(xp.sum, d_h_rows, axis=0, out=self.grads["bh"])


# ---- helpers ---------------------------------------------------------------------------------------------


def _blocks(array, size):
    """The four blocks of ``size`` columns of ``array`` (n, 4·size): an LSTM's i, f, g, o."""
    return tuple(array[:, k * size:(k + 1) * size] for k in range(4))


def _swap_batch_and_time(array):
    """A new C-contiguous array holding ``array`` with its first two axes swapped: (n, T, ...) ↔ (T, n, ...)."""
    xp = namespace(array)
    swapped = xp.empty((array.shape[1], array.shape[0], *array.shape[2:]), dtype=array.dtype)
    swapped[...] = xp.permute_dims(array, (1, 0, *range(2, array.ndim)))
    return swapped


__all__ = ["RNN", "LSTM", "GRU"]
