"""The training doctor: why didn't it learn? :func:`diagnose` examines a network on data (and its training
History) and returns findings, each with a fixed code, what it measured and one sentence on what to change.

The codes are fixed so that tests and scripts can rely on them (:data:`CODES`). Each threshold below is a
named constant with the reason for its value. The measurements come from numnet.evidence, which talks
to the Layer contract only, so every layer type is covered.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

from .backend import namespace, to_numpy
from .evidence import (SATURATION_DERIVATIVE_FRACTION, examined_layers, gradient_through_time, growth_per_step,
                       layer_inputs, layer_outputs, recurrent_layers, unit_statistics)
from .inputs import count_rows, is_multiple
from .network import Network
from .training import History

#: Every finding's code, in the order diagnose reports them.
CODES = ("unscaled_inputs", "dead_relu", "saturated", "vanishing_gradient", "exploding_gradient",
         "vanishing_through_time", "exploding_through_time", "frequent_clipping",
         "learning_rate_too_high", "learning_rate_too_low", "not_learning", "overfitting")

#: dead_relu: more than half of a relu layer's units zero on every sample. Past half, the layer has lost
#: most of its width, and the dead units never come back (their gradient is exactly zero).
DEAD_UNITS_THRESHOLD = 0.5
#: saturated: more than half of a saturating (sigmoid, tanh) layer's (unit, sample) pairs on the flat tails,
#: where f' is under a tenth of its maximum (numnet.evidence.saturated_fraction): most of what the layer
#: passes back is then cut tenfold. Measured on E8's networks (5 layers of 100, N(0, 1) or standardised
#: digits inputs, seeds 0-2): weights of std 1 put 51-72% of a sigmoid layer's pairs there and 79-86% of a
#: tanh layer's; Xavier at most 7%, std 0.01 none, and a sigmoid or tanh network trained on the digits with
#: Adam at 1e-3 at most 18%.
SATURATED_UNITS_THRESHOLD = 0.5
#: ... while the loss on the data is still above a quarter of the chance level (:func:`chance_loss`):
#: saturation matters because it starves learning of gradient, and a network below a quarter of chance has
#: learnt much of what separates its classes (on the digits: 0.58 against guessing's ln 10 = 2.30). Small
#: networks that fit sharp boundaries put their units on the tails by design: the playground's default (4
#: and 2 tanh units on the circle) is at 98% training accuracy after 10 epochs, its loss 0.16 of chance,
#: with 65% of a layer's pairs there. A loss without a chance level is always judged.
SATURATION_CHANCE_FRACTION = 0.25
#: vanishing / exploding: the first weight's mean ``|dC/dW|`` 1000 times below or above the last one's. Healthy
#: networks keep the two within a factor of 10 or so (the digits network: about 1/3); three orders of
#: magnitude means the early layers learn a thousand times slower (or faster) than the late ones.
GRADIENT_RATIO_THRESHOLD = 1e3
#: exploding: the gradient norm at the end of training 10 times its value at the start. Training normally
#: shrinks the gradient as the loss falls; growing tenfold means the steps are feeding on themselves.
GRADIENT_GROWTH_THRESHOLD = 10.0
#: The fraction of the recorded steps averaged at each end to compare the gradient norm (and the loss) at
#: the start and at the end of training: single steps are too noisy.
TRAINING_WINDOW_FRACTION = 0.1
#: learning_rate_too_high: the last epoch's loss above twice the very first step's. Training that merely
#: stalls keeps its loss near where it began; ending at double means the steps threw the weights away
#: (Adam at a learning rate of 10 ends thousands of times above) ...
LOSS_GROWTH_THRESHOLD = 2.0
#: ... or the epoch loss rising over this many epochs in a row at the end of training ...
RISING_EPOCHS = 3
#: ... or oscillating: more than half of the last 10 epoch-to-epoch changes upward. A descending run
#: rises now and then through noise; rising more often than falling means the steps overshoot.
OSCILLATION_WINDOW = 10
OSCILLATION_FRACTION = 0.5
#: Epoch-to-epoch changes within this fraction of the loss count as noise, neither up nor down: a run that
#: has converged keeps moving its epoch loss by a few percent through mini-batch noise (the playground's
#: default and the spiral recipe wobble by up to 3% at losses near 0.01), while overshooting steps move
#: it by tens of percent or more.
LOSS_NOISE_FRACTION = 0.05
#: ... or the update-to-weight ratio ‖ΔW‖/‖W‖ above 0.1: each step rewrites a tenth of the weights, which
#: no stable run does (a healthy Adam run sits near 1e-3, Karpathy's rule of thumb).
UPDATE_RATIO_HIGH = 0.1
#: learning_rate_too_low: every weight's ratio below 1e-5 (a hundred times under the healthy 1e-3): at
#: that pace a thousand steps change the weights by 1% ...
UPDATE_RATIO_LOW = 1e-5
#: ... while the loss barely moves: it fell by less than 1% between the start and the end of training.
LOSS_BARELY_MOVES = 0.01
#: The ratio is judged on the median of (at most) the last this many steps: the end of training is what
#: the next run would continue, and a median ignores the odd large step.
UPDATE_RATIO_STEPS = 100
#: not_learning: the data loss still above 90% of the chance level (the loss of the best constant
#: prediction: ln K for K balanced classes). A network that learnt anything about ten digits is far below
#: 0.9·ln 10 ≈ 2.07 (the healthy digits run ends near 0.01).
CHANCE_FRACTION = 0.9
#: ... and at most twice it: a loss far above guessing is not a network that failed to start but one whose
#: steps threw its weights away, which learning_rate_too_high reports.
CHANCE_CEILING = 2.0
#: ... after at least this many epochs: a healthy run may sit near chance for its first epoch or two
#: while its first layers organise (the playground's default does, at 0.93 of chance after one epoch).
NOT_LEARNING_EPOCHS = 5
#: overfitting: the validation loss rising over this many epochs in a row at the end, while the training
#: loss fell over them. Three rises in a row are rare noise in a loss that still falls (none in the
#: healthy digits run).
OVERFITTING_EPOCHS = 3
#: unscaled_inputs: some feature's ``|mean|`` or standard deviation above 10. The initialisers (He, Xavier)
#: assume inputs of unit scale; features ten times larger push the first layer's pre-activations ten times
#: past what they were designed for. Features inside [0, 1] (pixels/16, /255) and constant columns pass.
INPUT_SCALE_THRESHOLD = 10.0
#: Seed of the Dropout masks of the doctor's one training pass, so the same call gives the same findings.
DIAGNOSIS_SEED = 0
#: vanishing_through_time / exploding_through_time: a gradient flowing back through a recurrent layer that
#: shrinks below a millionth, or grows past a thousandfold, within TIME_HORIZON steps ("Deep Learning from
#: Scratch 2", chapter 6, draws both over 20 steps). Asymmetric, as measured: an LSTM or GRU at PyTorch's
#: initial weights already passes back 1e-4 to 1e-5 over 20 steps (its forget gate near 0.5, and it learns
#: to keep more), while a plain RNN whose Wh is too small (scaled by 0.5) passes back 1e-12; a gradient that
#: grows a thousandfold (tanh RNN, Wh scaled by 8: 2e4) already throws single steps far away.
TIME_VANISHING_THRESHOLD = 1e-6
TIME_EXPLODING_THRESHOLD = 1e3
TIME_HORIZON = 20
#: frequent_clipping: more than half of the last epochs' steps clipped (History.clipped_fraction). Clipping is
#: a guard against the odd exploding step; when most steps need it, the clip norm is the step size.
CLIPPED_FRACTION_THRESHOLD = 0.5


@dataclass(frozen=True)
class Finding:
    """One problem the doctor found.

    Attributes
    ----------
    code : str
        One of :data:`CODES`.
    layer : str
        The layer it concerns ("dense_0"), "input" for the data, or "training" for the History.
    measured : float
        The figure measured (for example the fraction of dead units).
    threshold : float
        The threshold it crossed.
    quantity : str
        What ``measured`` is, in words.
    advice : str
        One sentence on what to change.
    """

    code: str
    layer: str
    measured: float
    threshold: float
    quantity: str
    advice: str

    def to_dict(self):
        """A JSON-ready dict (a measured figure that is not finite becomes None)."""
        data = asdict(self)
        data["measured"] = self.measured if math.isfinite(self.measured) else None
        return data

    def line(self):
        """One line for a terminal: code, layer, the figure against its threshold, and the advice."""
        return f"{self.code} [{self.layer}]: {self.quantity} {self.measured:.3g} (threshold {self.threshold:g}). {self.advice}"


def diagnose(network, X, y, history=None):
    """Examine ``network`` on (X, y), and its training when ``history`` is given; return the findings.

    One inference pass through the layers measures the activations (dead relu units, saturated sigmoid
    and tanh units), and one training forward and backward pass measures the gradients of every weight;
    the network's parameters, gradients and layer state (BatchNorm's running statistics) are left exactly
    as they were, bit for bit. ``history`` (a History, or its ``to_dict()``) adds the checks of training:
    learning rate, progress and overfitting; a History recorded with ``fit(diagnose=True)`` adds the
    update-to-weight ratios and the gradient norm over training. After a DivergenceError,
    ``network.history`` holds exactly the steps the network kept.

    Parameters
    ----------
    network : Network
    X : array_like, shape (n_samples, n_features) or ``(n_samples, *input_shape)``
        The inputs as the network sees them (scaled, if training scaled them).
    y : array_like
        Targets in any form ``fit`` takes.
    history : History or dict, optional

    Returns
    -------
    list of Finding
        In the order of :data:`CODES`; empty when nothing is wrong.

    Raises
    ------
    TypeError
        When ``network`` is not a Network or ``history`` not a History.
    ValueError
        For data the network cannot take (the message says why).

    Examples
    --------
    >>> for finding in numnet.diagnose(network, X, y, history=network.history):   # doctest: +SKIP
    ...     print(finding.line())
    """
    if not isinstance(network, Network):
        raise TypeError(f"diagnose needs a numnet Network, got {type(network).__name__}")
    history = _as_history(history)
    X_prepared = network.prepare_inputs(X)
    Y = network.prepare_targets(y, count_rows(X_prepared))
    # Token ids are row indices of an Embedding, not magnitudes: there is nothing to scale
    findings = []
    for part in map(to_numpy, X_prepared if is_multiple(X_prepared) else (X_prepared,)):
        findings += _input_findings(part) if part.dtype.kind == "f" else []
    data_loss, gradients = _one_training_pass(network, X_prepared, Y)
    chance = chance_loss(network.loss, to_numpy(Y))
    findings += _unit_findings(network, X_prepared, still_learning=_still_learning(data_loss, chance))
    findings += _gradient_findings(network, gradients, history)
    findings += _through_time_findings(network, X_prepared)
    if history is not None:
        findings += _clipping_findings(history)
        findings += _learning_rate_findings(history)
    findings += _progress_findings(network, data_loss, chance, history)
    order = {code: index for index, code in enumerate(CODES)}
    return sorted(findings, key=lambda finding: order[finding.code])


def _as_history(history):
    if history is None or isinstance(history, History):
        return history
    if isinstance(history, dict):
        return History.from_dict(history)
    raise TypeError(f"history must be the History fit returned (or its to_dict()), got {type(history).__name__}")


def _one_training_pass(network, X, Y):
    """(the data loss, {weight name: mean |dC/dW|}) from one training pass, leaving the network untouched."""
    xp = namespace(network.flat_parameters)
    saved_gradients = xp.asarray(network.flat_gradients, copy=True)
    saved_state = xp.asarray(network.flat_state, copy=True)
    try:
        rng = np.random.default_rng(DIAGNOSIS_SEED) if network.needs_rng else None
        with np.errstate(over="ignore", invalid="ignore"):
            loss = network.loss_and_gradients(X, Y, rng) - network.penalty()
        gradients = network.gradients()
        magnitudes = {name: float(xp.mean(xp.abs(gradients[name]))) for name in network.weight_names()}
    finally:
        network.flat_gradients[...] = saved_gradients
        network.flat_state[...] = saved_state  # BatchNorm's running statistics moved in that forward pass
        network.clear_caches()
    return loss, magnitudes


# ---- the checks ------------------------------------------------------------------------------------------


def _input_findings(X):
    """unscaled_inputs: the feature with the largest |mean| or standard deviation, when it exceeds the limit."""
    flat = np.asarray(X, dtype=np.float64).reshape(X.shape[0], -1)
    inside_unit_interval = (flat.min(axis=0) >= 0.0) & (flat.max(axis=0) <= 1.0)
    constant = flat.max(axis=0) == flat.min(axis=0)
    scale = np.maximum(np.abs(flat.mean(axis=0)), flat.std(axis=0))
    scale[inside_unit_interval | constant] = 0.0
    worst = int(np.argmax(scale))
    if not scale[worst] > INPUT_SCALE_THRESHOLD:
        return []
    return [Finding("unscaled_inputs", "input", float(scale[worst]), INPUT_SCALE_THRESHOLD,
                    f"largest |mean| or standard deviation of a feature (feature {worst})",
                    "Standardise the inputs (numnet.preprocessing.StandardScaler fitted on the training rows) "
                    "so that every feature has mean 0 and standard deviation 1.")]


def _still_learning(data_loss, chance):
    """Whether the loss is still above SATURATION_CHANCE_FRACTION of the chance level (or has none to compare)."""
    return chance is None or not chance > 0.0 or not data_loss < SATURATION_CHANCE_FRACTION * chance


def _unit_findings(network, X, *, still_learning):
    """dead_relu and saturated, one per examined layer past its threshold; saturated only ``still_learning``."""
    if not examined_layers(network):
        return []
    dead, saturated = unit_statistics(network, layer_outputs(network, X), X)
    findings = [Finding("dead_relu", name, fraction, DEAD_UNITS_THRESHOLD, "fraction of units zero on every sample",
                        "Most of this relu layer's units output 0 for every input and so never learn again: lower "
                        "the learning rate, start the biases at 0, or use leaky_relu.")
                for name, fraction in dead.items() if fraction > DEAD_UNITS_THRESHOLD]
    findings += [Finding("saturated", name, fraction, SATURATED_UNITS_THRESHOLD,
                         f"fraction of (unit, sample) pairs with f' under {SATURATION_DERIVATIVE_FRACTION:.0%} of its "
                         "maximum",
                         "This layer's units sit on the flat tails of their activation for most samples, where "
                         "they pass back almost no gradient: use smaller initial weights (weight_init='xavier'), "
                         "scale the inputs, or use relu.")
                 for name, fraction in saturated.items() if still_learning and fraction > SATURATED_UNITS_THRESHOLD]
    return findings


def _gradient_findings(network, magnitudes, history):
    """vanishing_gradient / exploding_gradient from the first and last weights' gradients and, with a
    diagnosed History, from the gradient norm's growth over training."""
    findings = []
    names = network.weight_names()
    if len(names) >= 2 and magnitudes[names[-1]] > 0.0:
        ratio = magnitudes[names[0]] / magnitudes[names[-1]]
        layer = names[0].rsplit(".", 1)[0]
        quantity = f"mean |dC/dW| of {names[0]} divided by that of {names[-1]}"
        if ratio <= 1.0 / GRADIENT_RATIO_THRESHOLD:
            findings.append(Finding("vanishing_gradient", layer, ratio, 1.0 / GRADIENT_RATIO_THRESHOLD, quantity,
                                    "The first layer's gradient is a thousand times smaller than the last layer's, so "
                                    "the early layers barely learn: use relu with He initialisation, add BatchNorm, "
                                    "or use fewer layers."))
        elif ratio >= GRADIENT_RATIO_THRESHOLD:
            findings.append(Finding("exploding_gradient", layer, ratio, GRADIENT_RATIO_THRESHOLD, quantity,
                                    _EXPLODING_ADVICE))
    growth = _growth(history.gradient_norm) if history is not None else None
    if growth is not None and growth >= GRADIENT_GROWTH_THRESHOLD and not findings:
        findings.append(Finding("exploding_gradient", "training", growth, GRADIENT_GROWTH_THRESHOLD,
                                "gradient norm at the end of training divided by that at the start",
                                _EXPLODING_ADVICE))
    return findings


def _through_time_findings(network, X):
    """vanishing_through_time / exploding_through_time for each recurrent layer, from how a gradient at its
    last step grows or shrinks per step back through time on the data (numnet.evidence)."""
    findings = []
    inputs = layer_inputs(network, X) if recurrent_layers(network) else {}
    for layer in recurrent_layers(network):
        growth = growth_per_step(gradient_through_time(layer, inputs[layer.name]))
        over_horizon = growth ** TIME_HORIZON
        quantity = f"factor by which a gradient changes over {TIME_HORIZON} steps back through time"
        if over_horizon <= TIME_VANISHING_THRESHOLD:
            findings.append(Finding(
                "vanishing_through_time", layer.name, over_horizon, TIME_VANISHING_THRESHOLD, quantity,
                "The error fades within a few steps back in time, so the layer cannot learn what depends on the "
                "distant past: use an LSTM or GRU instead of a plain RNN, or scale Wh up (its spectral radius "
                "near 1)."))
        elif over_horizon >= TIME_EXPLODING_THRESHOLD:
            findings.append(Finding(
                "exploding_through_time", layer.name, over_horizon, TIME_EXPLODING_THRESHOLD, quantity,
                "The error grows at every step back in time, so one batch can throw the weights far away: clip "
                "the gradient's norm (fit(clip_norm=1.0)) and start Wh smaller."))
    return findings


def _clipping_findings(history):
    """frequent_clipping, when most of the last epochs' steps had their gradient clipped."""
    fractions = history.clipped_fraction
    if not fractions:
        return []
    fraction = float(np.mean(fractions[-_window(fractions):]))
    if fraction <= CLIPPED_FRACTION_THRESHOLD:
        return []
    return [Finding("frequent_clipping", "training", fraction, CLIPPED_FRACTION_THRESHOLD,
                    "fraction of the last epochs' steps whose gradient was clipped",
                    "Clipping is doing the work of the learning rate: lower the learning rate (or raise clip_norm) "
                    "until only the odd step is clipped.")]


_EXPLODING_ADVICE = ("The gradient grows as it flows back (or as training goes on), so steps get ever larger: lower "
                     "the learning rate, start from smaller weights (He or Xavier), or add BatchNorm.")


def _learning_rate_findings(history):
    """learning_rate_too_high (rising or oscillating loss, or large updates) and learning_rate_too_low."""
    losses = history.epoch_loss
    if losses and history.iteration_loss and history.iteration_loss[0] > 0.0:
        growth = losses[-1] / history.iteration_loss[0]
        if growth > LOSS_GROWTH_THRESHOLD:
            return [_too_high(growth, LOSS_GROWTH_THRESHOLD, "last epoch's loss divided by the first step's")]
    rises = _rises(losses)
    if len(rises) >= RISING_EPOCHS and np.all(rises[-RISING_EPOCHS:]):
        return [_too_high(float(losses[-1] / losses[-1 - RISING_EPOCHS]), 1.0,
                          f"epoch loss now divided by that of {RISING_EPOCHS} epochs ago (rising every epoch)")]
    if len(rises) >= OSCILLATION_WINDOW:
        upward = float(np.mean(rises[-OSCILLATION_WINDOW:]))
        if upward > OSCILLATION_FRACTION:
            return [_too_high(upward, OSCILLATION_FRACTION,
                              f"fraction of the last {OSCILLATION_WINDOW} epoch-to-epoch loss changes upward")]
    ratios = {name: float(np.median(values[-UPDATE_RATIO_STEPS:])) for name, values in history.update_ratio.items()
              if values}
    if not ratios:
        return []
    largest = max(ratios, key=ratios.get)
    if ratios[largest] > UPDATE_RATIO_HIGH:
        return [_too_high(ratios[largest], UPDATE_RATIO_HIGH, f"median update-to-weight ratio |dW|/|W| of {largest}",
                          layer=largest.rsplit(".", 1)[0])]
    # Epoch means when there are two or more: single mini-batch losses differ by several percent by chance.
    progress = _relative_decrease(history.epoch_loss if len(history.epoch_loss) >= 2 else history.iteration_loss)
    if ratios[largest] < UPDATE_RATIO_LOW and progress is not None and progress < LOSS_BARELY_MOVES:
        return [Finding("learning_rate_too_low", "training", ratios[largest], UPDATE_RATIO_LOW,
                        "largest median update-to-weight ratio |dW|/|W| of any weight",
                        f"Each step changes the weights by under {UPDATE_RATIO_LOW:g} of their size and the loss "
                        f"moved by only {100 * abs(progress):.2g}%: raise the learning rate tenfold or more "
                        "(numnet.find_learning_rate suggests one).")]
    return []


def _too_high(measured, threshold, quantity, layer="training"):
    return Finding("learning_rate_too_high", layer, measured, threshold, quantity,
                   "The steps overshoot: divide the learning rate by 10 (numnet.find_learning_rate suggests one).")


def _progress_findings(network, data_loss, chance, history):
    """not_learning (after some training) and overfitting (with a validation curve)."""
    findings = []
    epochs = max(network.epochs_trained, history.epochs if history is not None else 0)
    trained = epochs >= NOT_LEARNING_EPOCHS
    if trained and chance is not None and chance > 0.0 and \
            CHANCE_FRACTION * chance < data_loss <= CHANCE_CEILING * chance:
        findings.append(Finding("not_learning", "training", data_loss / chance, CHANCE_FRACTION,
                                "loss on the data divided by the chance level (the best constant prediction's)",
                                "The loss is still where guessing puts it: check that the labels belong to the inputs, "
                                "then the learning rate and the other findings."))
    if history is not None and len(history.val_loss) > OVERFITTING_EPOCHS:
        rises = _rising_run(history.val_loss)
        n = len(history.epoch_loss)
        if rises >= OVERFITTING_EPOCHS and n > rises and history.epoch_loss[-1] < history.epoch_loss[-1 - rises]:
            findings.append(Finding("overfitting", "training", float(rises), float(OVERFITTING_EPOCHS),
                                    "epochs in a row, at the end, in which the validation loss rose while the "
                                    "training loss fell",
                                    "The network is memorising the training rows: stop earlier (fit(patience=..., "
                                    "restore_best=True)), add l2 or Dropout, or train on more data."))
    return findings


# ---- figures from curves ---------------------------------------------------------------------------------


def chance_loss(loss, Y):
    """The loss of the best constant prediction for targets ``Y`` (n_samples, n_outputs), or None for a loss
    without a known chance level: the entropy of the class frequencies for softmax cross-entropy (ln K
    for K balanced classes), the summed binary entropies of the label rates for binary cross-entropy, and
    half the summed variances for the mean squared error (predicting the mean)."""
    Y = np.asarray(Y, dtype=np.float64)
    if loss.fused_activation == "softmax":
        return _entropy(Y.mean(axis=0))
    if loss.fused_activation == "sigmoid":
        rate = Y.mean(axis=0)
        return _entropy(rate) + _entropy(1.0 - rate)
    if loss.name == "mse":
        return 0.5 * float(np.sum(Y.var(axis=0)))
    return None


def _entropy(probabilities):
    """-Σ p ln p, with 0 ln 0 = 0."""
    p = probabilities[probabilities > 0]
    return float(-np.sum(p * np.log(p)))


def _rises(losses):
    """For each epoch-to-epoch change of ``losses``, whether it is a rise beyond LOSS_NOISE_FRACTION of the
    loss before it."""
    losses = np.asarray(losses, dtype=np.float64)
    return np.diff(losses) > LOSS_NOISE_FRACTION * np.abs(losses[:-1])


def _window(values):
    return max(1, int(len(values) * TRAINING_WINDOW_FRACTION))


def _growth(values):
    """The mean of the last window of ``values`` divided by the mean of the first, or None for too few values."""
    if len(values) < 2:
        return None
    width = _window(values)
    start = float(np.mean(values[:width]))
    return float(np.mean(values[-width:])) / start if start > 0.0 else None


def _relative_decrease(values):
    """(start - end) / |start| over windows at both ends of ``values``, or None for too few values."""
    if len(values) < 2:
        return None
    width = _window(values)
    start, end = float(np.mean(values[:width])), float(np.mean(values[-width:]))
    return (start - end) / abs(start) if start != 0.0 else None


def _rising_run(values):
    """How many epoch-to-epoch changes in a row at the end of ``values`` are rises."""
    run = 0
    for change in np.diff(values)[::-1]:
        if change <= 0:
            break
        run += 1
    return run


__all__ = ["CODES", "Finding", "diagnose", "chance_loss"]
