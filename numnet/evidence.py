"""The evidence the training doctor reads: what each layer's activation does on data, and the measurements
``fit(diagnose=True)`` takes while it trains (:class:`TrainingMonitor`).

Everything here talks to the Layer contract only. A layer is examined through its ``activation`` (the
function it applies last, or None) and a network's weights are its ``penalized_parameters()``, so Dense
with its fused activation, an Activation layer, a convolution with an activation, or a user's own layer
are all covered without a case for any class; Dropout, BatchNorm, pooling and Flatten carry no activation
and are looked through. Unit statistics treat axis 1 as the units (a dense layer's neurons, a
convolution's channels) and every other axis (samples, pixels) as samples, as BatchNorm does. Whether a
layer's units can die or saturate, and the derivative maximum saturation is measured against, are facts
its activation carries (``dies``, ``saturates``, ``derivative_maximum``: numnet.activations), so a user's
own activation is examined once it states them; an activation whose derivative is computed from z
(``derivative_from``) is judged on its z, recomputed from the layer's input.
"""

import math

import numpy as np

from .backend import namespace, squared_norm, to_numpy

#: A unit is on the flat tails of a saturating activation, for one sample, when f'(z) there is under this
#: fraction of the activation's own ``derivative_maximum``: it passes back less than a tenth of the gradient
#: it would at its centre, an order of magnitude lost in that one layer. Judged against each activation's own
#: maximum, one fraction fits both: sigmoid beyond ``|z|`` = 2 arccosh(√10) ≈ 3.64 (outputs within 0.026 of 0
#: or 1, f' under 0.025), tanh beyond ``|z|`` = arccosh(√10) ≈ 1.82 (within 0.051 of ±1); where E8's histograms
#: pile up at the ends. (1% of the maximum, tried first, puts sigmoid's tails beyond ``|z|`` ≈ 6: a sigmoid layer
#: with weights of std 1, which E8 shows saturated, then had only 29-55% of its pairs there.)
SATURATION_DERIVATIVE_FRACTION = 0.1
#: Training rows fit(diagnose=True) pushes through the network after each epoch to count dead and
#: saturated units: enough that "zero on every sample" means something for ten or more classes, few enough
#: that the pass costs well under 1% of an epoch of MNIST (benchmarks/doctor_cost.py).
PROBE_SAMPLES = 256
#: The entropy key of the probe rows' random stream, beside the fit's seed ("prob").
PROBE_STREAM = 0x70726F62
#: The update-to-weight ratio ‖ΔW‖/‖W‖ of a weight with more entries than this is measured on this many of
#: them, drawn once at random: the ratio of the two norms over 4096 entries is within a few percent of the
#: whole weight's (the doctor's thresholds sit a hundredfold from healthy values), and two gathers of a few
#: thousand numbers cost far less than the three passes over every parameter the whole weights take: the
#: monitor's share of an MNIST epoch fell from 11% to about 5% (benchmarks/doctor_cost.py).
RATIO_SAMPLE_SIZE = 4096
#: The seed of those entries: the same ones in every run ("rati").
RATIO_SAMPLE_SEED = 0x72617469


def can_die(activation):
    """Whether ``activation`` says that its units can die (its ``dies`` fact; relu's units can)."""
    return bool(getattr(activation, "dies", False))


def can_saturate(activation):
    """Whether ``activation`` says that it saturates and gives the derivative maximum to measure that against.

    An activation written before these facts existed (or any object without them) is not known to saturate.
    """
    return bool(getattr(activation, "saturates", False)) and getattr(activation, "derivative_maximum", None) is not None


def examined_layers(network):
    """The hidden layers whose activation can die or saturate, in order (the output layer is left out:
    confident outputs are the aim there, not a fault)."""
    return [layer for layer in network.layers[:-1]
            if layer.activation is not None and (can_die(layer.activation) or can_saturate(layer.activation))]


def layer_outputs(network, X):
    """Every layer's output for prepared inputs ``X`` in inference mode, by layer name, in order.

    Runs the layers one by one with ``training=False``, so nothing is cached and no state moves.
    """
    outputs, a = {}, X
    for layer in network.layers:
        a = layer.forward(a, training=False)
        outputs[layer.name] = a
    return outputs


def _units_last(a):
    """``a`` (n_samples, units, *positions) as (n_samples · positions, units): each pixel counts as a sample;
    a sequence's ``a`` (n_samples, time_steps, units) as (n_samples · time_steps, units)."""
    xp = namespace(a)
    if a.ndim == 2:
        return a
    if a.ndim == 3:  # numnet's 3-D outputs are sequences: units on the last axis (images are 4-D)
        return xp.reshape(a, (-1, a.shape[-1]))
    moved = xp.moveaxis(a, 1, -1)
    return xp.reshape(moved, (-1, a.shape[1]))


def dead_fraction(a):
    """The fraction of units (axis 1 of a relu output ``a``) that are zero on every sample."""
    xp = namespace(a)
    alive = xp.any(_units_last(a) > 0, axis=0)  # (units,)
    return 1.0 - float(xp.mean(xp.astype(alive, a.dtype)))


def saturated_fraction(activation, a):
    """The fraction of (unit, sample) pairs on the flat tails of ``activation``: f'(z) under
    SATURATION_DERIVATIVE_FRACTION of its ``derivative_maximum``.

    Pairs, not units stuck on nearly every sample: a layer whose weights are too large sends each unit to one
    tail on some samples and to the other on others (in E8's sigmoid and tanh layers with weights of std 1,
    the median unit is on a tail for 49-86% of the samples, and at most a third of the units for over 90%),
    and the gradient the layer loses is the share of pairs there.

    Parameters
    ----------
    activation : Activation
        One that ``can_saturate``.
    a : ndarray, shape (n_samples, n_units) or ``(n_samples, n_units, *positions)``
        What its derivative is computed from: its output, or its input z for an activation whose
        ``derivative_from`` is ``"z"``. Every entry is one (unit, sample) pair, whatever the layout.
    """
    xp = namespace(a)
    limit = SATURATION_DERIVATIVE_FRACTION * activation.derivative_maximum
    return float(xp.mean(xp.astype(activation.derivative(a) < limit, a.dtype)))


def unit_statistics(network, outputs, X=None):
    """({layer: dead fraction}, {layer: saturated fraction}) of the examined layers, from ``layer_outputs``.

    ``X`` is the input those outputs came from; it is needed only when the first layer's activation
    saturates and computes its derivative from z (its z is recomputed from the layer's input).
    """
    dead, saturated = {}, {}
    for layer in examined_layers(network):
        if can_die(layer.activation):
            dead[layer.name] = dead_fraction(outputs[layer.name])
        else:
            argument = derivative_argument(network, layer, outputs, X)  # a, or z where f' is computed from z
            saturated[layer.name] = saturated_fraction(layer.activation, argument)
    return dead, saturated


def derivative_argument(network, layer, outputs, X=None):
    """What the derivative of ``layer``'s activation is computed from: its output (from ``layer_outputs``), or
    for an activation whose ``derivative_from`` is ``"z"`` its z, recomputed by the layer's ``forward_logits``
    from its input (the previous layer's output, or ``X`` for the first layer) in inference mode."""
    if layer.activation.derivative_from != "z":
        return outputs[layer.name]
    index = next(position for position, candidate in enumerate(network.layers) if candidate is layer)
    layer_input = X if index == 0 else outputs[network.layers[index - 1].name]
    if layer_input is None:
        raise ValueError(f"layer {layer.name}'s activation {layer.activation.name!r} computes its derivative from "
                         "z, which needs the network's input: pass X to unit_statistics")
    return layer.forward_logits(layer_input, training=False)[0]


def recurrent_layers(network):
    """The layers that carry a state through time (RNN, LSTM, GRU), in order."""
    from .recurrent import GRU, LSTM, RNN  # the sequence layers sit beside this module, not below it

    return [layer for layer in network.layers if isinstance(layer, (RNN, LSTM, GRU))]


def layer_inputs(network, X):
    """Every layer's input for prepared inputs ``X`` in inference mode, by layer name (the first's is X)."""
    inputs, a = {}, X
    for layer in network.layers:
        inputs[layer.name] = a
        a = layer.forward(a, training=False)
    return inputs


def gradient_through_time(layer, x):
    """‖dC/dxₜ‖ at every time step t of a recurrent layer's input x (n, T, features), when only its last
    step's output receives a gradient (the same unit vector for every row): how the error shrinks or grows
    as it flows back through time, the experiment of "Deep Learning from Scratch 2", chapter 6. Each step
    multiplies it by Whᵀ and the gates' derivatives, so the norms fall (vanish) or rise (explode) about
    geometrically. The layer is left as it was: its carried state, cache and gradients.

    Returns
    -------
    ndarray, shape (T,)
        The norms, from the first step to the last (NumPy float64).
    """
    xp = namespace(x)
    carried = {key: xp.asarray(value, copy=True) for key, value in layer.carried_state().items()}
    saved = {key: xp.asarray(gradient, copy=True) for key, gradient in layer.grads.items()}
    try:
        output = layer.forward(x, training=True)
        upstream = xp.zeros_like(output)
        unit = xp.full((output.shape[-1],), 1.0 / math.sqrt(output.shape[-1]), dtype=output.dtype)
        if output.ndim == 3:
            upstream[:, -1, :] = unit
        else:
            upstream[...] = unit
        grad_input = to_numpy(layer.backward(upstream, propagate=True)).astype(np.float64)
        return np.sqrt(np.sum(grad_input * grad_input, axis=(0, 2)))
    finally:
        layer.clear_cache()
        if carried:
            layer.set_carried_state(carried)
        else:
            layer.reset_carried_state()
        for key, gradient in saved.items():
            layer.grads[key][...] = gradient


def growth_per_step(norms):
    """The factor by which a gradient's norm changes per step back through time: the geometric mean of
    ‖dC/dxₜ₋₁‖ / ‖dC/dxₜ‖ from the last step to the first (1 when there is one step or the norm is 0)."""
    if len(norms) < 2 or not norms[-1] > 0.0:
        return 1.0
    if not norms[0] > 0.0:
        return 0.0
    return float((norms[0] / norms[-1]) ** (1.0 / (len(norms) - 1)))


def probe_rows(n_samples, seed):
    """Indices of the PROBE_SAMPLES training rows the monitor examines: a fixed random subset, so that data
    sorted by class still gives every class its share."""
    if n_samples <= PROBE_SAMPLES:
        return np.arange(n_samples)
    rng = np.random.default_rng([seed, PROBE_STREAM])
    return np.sort(rng.choice(n_samples, size=PROBE_SAMPLES, replace=False))


class TrainingMonitor:
    """What ``fit(diagnose=True)`` records besides the loss: a few reductions per step, one small pass per epoch.

    Per step: ‖ΔW‖/‖W‖ of every weight (the update-to-weight ratio, ``History.update_ratio``, measured on
    RATIO_SAMPLE_SIZE entries of a larger weight) and ‖g‖ over
    every parameter (``History.gradient_norm``). Per epoch: the dead and saturated fractions of every
    examined layer on the probe rows (``History.dead_units``, ``History.saturated_units``: see
    :func:`dead_fraction` and :func:`saturated_fraction`), and how a gradient grows or shrinks per step
    back through time in every recurrent layer (``History.time_gradient_growth``: :func:`growth_per_step`
    of :func:`gradient_through_time`). The training
    loop calls :meth:`after_step`, :meth:`after_epoch`, and :meth:`forget_last_step` /
    :meth:`forget_last_epoch` when its divergence guard undoes an update, so the History keeps exactly the
    steps the network kept.

    Parameters
    ----------
    network : Network
    history : History
        Filled in place.
    X_probe : array
        The probe rows, already on the network's backend and dtype.
    """

    def __init__(self, network, history, X_probe):
        self.network = network
        self.history = history
        self.X_probe = X_probe
        self.weight_names = network.weight_names()
        for name in self.weight_names:
            history.update_ratio.setdefault(name, [])
        self.examined = examined_layers(network)
        for layer in self.examined:
            self._unit_curves(layer).setdefault(layer.name, [])
        self.recurrent = recurrent_layers(network)
        for layer in self.recurrent:
            history.time_gradient_growth.setdefault(layer.name, [])
        self._entries, self._segments = _ratio_entries(network, self.weight_names)

    def after_step(self, previous_parameters, gradient_norm=None):
        """Record the step that just moved the weights from ``previous_parameters`` (the flat buffer before it);
        ``gradient_norm``: the gradient's norm before clipping, when the step clipped it (else measured here)."""
        network, history = self.network, self.history
        xp = namespace(network.flat_parameters)
        before = xp.take(previous_parameters, self._entries)
        change = xp.take(network.flat_parameters, self._entries) - before
        for name, (start, stop) in zip(self.weight_names, self._segments):
            size = math.sqrt(squared_norm(before[start:stop]))
            ratio = math.sqrt(squared_norm(change[start:stop])) / size if size > 0.0 else math.inf
            history.update_ratio[name].append(ratio)
        if gradient_norm is None:
            gradient_norm = math.sqrt(squared_norm(network.flat_gradients))
        history.gradient_norm.append(gradient_norm)

    def after_epoch(self):
        """Record the examined layers' dead and saturated fractions on the probe rows."""
        dead, saturated = unit_statistics(self.network, layer_outputs(self.network, self.X_probe), self.X_probe)
        for layer in self.examined:
            self._unit_curves(layer)[layer.name].append({**dead, **saturated}[layer.name])
        if self.recurrent:
            inputs = layer_inputs(self.network, self.X_probe)
            for layer in self.recurrent:
                growth = growth_per_step(gradient_through_time(layer, inputs[layer.name]))
                self.history.time_gradient_growth[layer.name].append(growth)

    def forget_last_step(self):
        """Drop the latest step's records (an update the divergence guard undid)."""
        for name in self.weight_names:
            if self.history.update_ratio[name]:
                self.history.update_ratio[name].pop()
        if self.history.gradient_norm:
            self.history.gradient_norm.pop()

    def forget_last_epoch(self):
        """Drop the latest epoch's unit statistics (an epoch whose last update was undone)."""
        curves = [self._unit_curves(layer)[layer.name] for layer in self.examined]
        curves += [self.history.time_gradient_growth[layer.name] for layer in self.recurrent]
        for curve in curves:
            if curve:
                curve.pop()

    def _unit_curves(self, layer):
        """The History table that holds ``layer``'s unit statistics: dead units for relu, saturated otherwise."""
        return self.history.dead_units if can_die(layer.activation) else self.history.saturated_units


def _ratio_entries(network, weight_names):
    """(positions in the flat parameter buffer of the entries the ratio reads, on the network's backend;
    each weight's [start, stop) among them): every entry of a small weight, RATIO_SAMPLE_SIZE of a large one."""
    positions = network.unflatten(np.arange(network.n_parameters))  # each parameter's flat positions
    rng = np.random.default_rng(RATIO_SAMPLE_SEED)
    chosen, segments, start = [], [], 0
    for name in weight_names:
        entries = positions[name].reshape(-1)
        if entries.size > RATIO_SAMPLE_SIZE:
            entries = np.sort(rng.choice(entries, size=RATIO_SAMPLE_SIZE, replace=False))
        chosen.append(entries)
        segments.append((start, start + entries.size))
        start += entries.size
    entries = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return network.backend.xp.asarray(entries), segments


def as_numpy_outputs(outputs):
    """``layer_outputs`` as NumPy arrays (for plotting)."""
    return {name: to_numpy(value) for name, value in outputs.items()}
