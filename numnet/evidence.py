"""The evidence the training doctor reads: what each layer's activation does on data, and the measurements
``fit(diagnose=True)`` takes while it trains (:class:`TrainingMonitor`).

Everything here talks to the Layer contract only. A layer is examined through its ``activation`` (the
function it applies last, or None) and a network's weights are its ``penalized_parameters()``, so Dense
with its fused activation, an Activation layer, a convolution with an activation, or a user's own layer
are all covered without a case for any class; Dropout, BatchNorm, pooling and Flatten carry no activation
and are looked through. Unit statistics treat axis 1 as the units (a dense layer's neurons, a
convolution's channels) and every other axis (samples, pixels) as samples, as BatchNorm does.
"""

import math

import numpy as np

from .backend import namespace, squared_norm, to_numpy

#: Activations whose units can die: f'(z) = 0 on a whole half-line, so a unit below zero on every sample
#: never receives a gradient again (leaky relu keeps a slope there and cannot die).
DYING_ACTIVATIONS = ("relu",)
#: Saturating activations and the maximum of their derivative (sigmoid: 1/4 at z = 0; tanh: 1 at z = 0).
SATURATING_ACTIVATIONS = {"sigmoid": 0.25, "tanh": 1.0}
#: A unit is saturated on a sample when f'(z) is below this fraction of f''s maximum: it then passes back
#: at most 1% of the gradient it could (sigmoid beyond ``|z| ≈ 6``, tanh beyond ``|z| ≈ 3``).
SATURATION_DERIVATIVE_FRACTION = 0.01
#: ... and saturated as a unit when that holds on more than this fraction of the samples: a unit that
#: still responds on one sample in ten keeps learning, so only the stuck ones count.
SATURATED_SAMPLE_FRACTION = 0.9
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


def examined_layers(network):
    """The hidden layers whose activation can die or saturate, in order (the output layer is left out:
    confident outputs are the aim there, not a fault)."""
    return [layer for layer in network.layers[:-1]
            if layer.activation is not None
            and (layer.activation.name in DYING_ACTIVATIONS or layer.activation.name in SATURATING_ACTIVATIONS)]


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
    """``a`` (n_samples, units, *positions) as (n_samples · positions, units): each pixel counts as a sample."""
    xp = namespace(a)
    if a.ndim == 2:
        return a
    moved = xp.moveaxis(a, 1, -1)
    return xp.reshape(moved, (-1, a.shape[1]))


def dead_fraction(a):
    """The fraction of units (axis 1 of a relu output ``a``) that are zero on every sample."""
    xp = namespace(a)
    alive = xp.any(_units_last(a) > 0, axis=0)  # (units,)
    return 1.0 - float(xp.mean(xp.astype(alive, a.dtype)))


def saturated_fraction(activation, a):
    """The fraction of units whose derivative is below SATURATION_DERIVATIVE_FRACTION of its maximum on more
    than SATURATED_SAMPLE_FRACTION of the samples (``a``: the output of a sigmoid or tanh)."""
    xp = namespace(a)
    limit = SATURATION_DERIVATIVE_FRACTION * SATURATING_ACTIVATIONS[activation.name]
    flat = _units_last(a)
    stuck = xp.mean(xp.astype(activation.derivative(flat) < limit, a.dtype), axis=0)  # (units,)
    return float(xp.mean(xp.astype(stuck > SATURATED_SAMPLE_FRACTION, a.dtype)))


def unit_statistics(network, outputs):
    """({layer: dead fraction}, {layer: saturated fraction}) of the examined layers, from ``layer_outputs``."""
    dead, saturated = {}, {}
    for layer in examined_layers(network):
        a = outputs[layer.name]
        if layer.activation.name in DYING_ACTIVATIONS:
            dead[layer.name] = dead_fraction(a)
        else:
            saturated[layer.name] = saturated_fraction(layer.activation, a)
    return dead, saturated


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
    examined layer on the probe rows (``History.dead_units``, ``History.saturated_units``). The training
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
        self._entries, self._segments = _ratio_entries(network, self.weight_names)

    def after_step(self, previous_parameters):
        """Record the step that just moved the weights from ``previous_parameters`` (the flat buffer before it)."""
        network, history = self.network, self.history
        xp = namespace(network.flat_parameters)
        before = xp.take(previous_parameters, self._entries)
        change = xp.take(network.flat_parameters, self._entries) - before
        for name, (start, stop) in zip(self.weight_names, self._segments):
            size = math.sqrt(squared_norm(before[start:stop]))
            ratio = math.sqrt(squared_norm(change[start:stop])) / size if size > 0.0 else math.inf
            history.update_ratio[name].append(ratio)
        history.gradient_norm.append(math.sqrt(squared_norm(network.flat_gradients)))

    def after_epoch(self):
        """Record the examined layers' dead and saturated fractions on the probe rows."""
        dead, saturated = unit_statistics(self.network, layer_outputs(self.network, self.X_probe))
        for layer in self.examined:
            self._unit_curves(layer)[layer.name].append({**dead, **saturated}[layer.name])

    def forget_last_step(self):
        """Drop the latest step's records (an update the divergence guard undid)."""
        for name in self.weight_names:
            if self.history.update_ratio[name]:
                self.history.update_ratio[name].pop()
        if self.history.gradient_norm:
            self.history.gradient_norm.pop()

    def forget_last_epoch(self):
        """Drop the latest epoch's unit statistics (an epoch whose last update was undone)."""
        for layer in self.examined:
            curve = self._unit_curves(layer)[layer.name]
            if curve:
                curve.pop()

    def _unit_curves(self, layer):
        """The History table that holds ``layer``'s unit statistics: dead units for relu, saturated otherwise."""
        return self.history.dead_units if layer.activation.name in DYING_ACTIVATIONS else self.history.saturated_units


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
