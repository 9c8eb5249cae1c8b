"""The playground's settings, every choice the page offers with its default, and the parsers of request bodies.

The page sends settings as a JSON object (and keeps them in its URL); :func:`parse_settings` turns any JSON
value into a :class:`Settings` or raises :class:`SettingsError`, whose message starts with the offending
field's name. The bodies of the other requests (train, upload) are checked here too, with the same field
checks, so that nothing else in the playground trusts a value from a request.
"""

import dataclasses
import math
import numbers

from numnet._registry import unknown_name_message
from numnet.activations import ACTIVATIONS
from numnet.losses import get_loss
from numnet.optimizers import OPTIMIZERS
from numnet.preprocessing import PLANE_FEATURES

MAX_HIDDEN_LAYERS = 6
MAX_NEURONS = 64
MIN_SAMPLES = 20
MAX_SAMPLES = 2000
MAX_NOISE = 0.5
TRAIN_FRACTION_RANGE = (0.1, 0.9)
MAX_LEARNING_RATE = 10.0
MAX_REGULARIZATION_RATE = 10.0
MAX_DROPOUT = 0.9
MAX_BATCH_SIZE = MAX_SAMPLES
#: One training request trains at most this many epochs, or for at most this many seconds.
MAX_EPOCHS_PER_REQUEST = 1000
MAX_SECONDS_PER_REQUEST = 1.0
#: An uploaded file's name is shown and written into the exported script; longer names are refused.
MAX_FILE_NAME_LENGTH = 200
# Seeds are kept below 2**31 so that JavaScript's numbers (and URLs) carry them exactly.
MAX_SEED = 2 ** 31 - 1

PROBLEMS = ("classification", "regression")
#: Data sets by problem; "csv" is the user's uploaded file, of either kind.
CLASSIFICATION_DATASETS = ("circle", "xor", "gauss", "spiral", "moons")
REGRESSION_DATASETS = ("plane", "multigauss")
UPLOADED_DATASET = "csv"
DATASETS = CLASSIFICATION_DATASETS + REGRESSION_DATASETS + (UPLOADED_DATASET,)
#: The losses the playground's outputs are built for (numnet.playground.model); the output follows from the loss.
LOSSES = ("binary_cross_entropy", "softmax_cross_entropy", "mse")
REGULARIZATIONS = ("none", "l1", "l2")


def hidden_activations():
    """The names of every activation in numnet's ACTIVATIONS table, each once (aliases such as "logistic" left
    out), but those that say they are ``output_only`` (softmax, exp): read at each call, so an activation
    registered with numnet.register_activation is offered too."""
    return tuple(name for name, activation in ACTIVATIONS.items()
                 if name == activation.name and not activation.output_only)


def menus():
    """The choices of the page's menus, each ``{"value": name, "label": shown}``, from the tables they come
    from: activations and optimisers from numnet's, losses and data sets (by problem) from the playground's.
    A label is the thing's own ``display_name`` where it has one, else its name."""
    activations = [(name, ACTIVATIONS[name]) for name in hidden_activations()]
    return {
        "activation": _entries(activations),
        "optimizer": _entries(sorted(OPTIMIZERS.items())),
        "loss": _entries((name, type(get_loss(name))) for name in LOSSES),
        "dataset": {"classification": _entries((name, None) for name in CLASSIFICATION_DATASETS),
                    "regression": _entries((name, None) for name in REGRESSION_DATASETS)},
    }


def _entries(named):
    """[{"value": name, "label": label}] for (name, class) pairs."""
    return [{"value": name, "label": getattr(kind, "display_name", None) or name} for name, kind in named]


class SettingsError(ValueError):
    """A setting that cannot be used; ``field`` names it and the message starts with it."""

    def __init__(self, field, problem):
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclasses.dataclass(frozen=True)
class Settings:
    """One complete setup of the playground (TensorFlow Playground's defaults, with Adam).

    Attributes
    ----------
    problem : {"classification", "regression"}
    dataset : str
        One of DATASETS; "csv" is the file uploaded to the session.
    n_samples : int
        Points drawn by the generator (ignored for "csv").
    noise : float in [0, 0.5]
    train_fraction : float in [0.1, 0.9]
        The share of points used for training; the rest are the test points.
    data_seed : int
        Seeds the generator and the train/test split ("regenerate" draws a new one).
    features : tuple of str
        Input features, names from numnet.preprocessing.PLANE_FEATURES.
    hidden : tuple of int
        Neurons per hidden layer, 0 to 6 layers of 1 to 64.
    activation : str
        Hidden-layer activation.
    loss : str
        binary_cross_entropy (one sigmoid output), softmax_cross_entropy (one softmax output per class) or
        mse (tanh outputs with targets ±1 for classes, a linear output for regression).
    optimizer : str
        Any of numnet's optimisers.
    learning_rate : float in (0, 10]
    batch_size : int
    regularization : {"none", "l1", "l2"}
    regularization_rate : float in [0, 10]
    dropout : float in [0, 0.9]
        A Dropout layer of this rate after every hidden layer (0: none).
    batch_norm : bool
        Every hidden layer becomes Dense → BatchNorm → activation.
    seed : int
        Seeds the initial weights and the batch order.
    """

    problem: str = "classification"
    dataset: str = "circle"
    n_samples: int = 500
    noise: float = 0.0
    train_fraction: float = 0.5
    data_seed: int = 0
    features: tuple = ("x", "y")
    hidden: tuple = (4, 2)
    activation: str = "tanh"
    loss: str = "binary_cross_entropy"
    optimizer: str = "adam"
    learning_rate: float = 0.03
    batch_size: int = 10
    regularization: str = "none"
    regularization_rate: float = 0.0
    dropout: float = 0.0
    batch_norm: bool = False
    seed: int = 0

    def to_json(self):
        """The settings as a JSON-ready dict (tuples as lists)."""
        return {field.name: list(value) if isinstance(value, tuple) else value
                for field, value in ((field, getattr(self, field.name)) for field in dataclasses.fields(self))}


FIELD_NAMES = tuple(field.name for field in dataclasses.fields(Settings))


def parse_settings(value, base=None):
    """Check a JSON value of settings and return them complete.

    Parameters
    ----------
    value : object
        A dict of settings (as ``json.loads`` gives it); missing fields keep their value in ``base``.
    base : Settings, optional
        Default: ``Settings()``, the default setup.

    Returns
    -------
    Settings

    Raises
    ------
    SettingsError
        For anything but a dict, an unknown field, a value of the wrong type or out of range (NaN and
        infinities included), or a data set that does not fit the problem; the message names the field.
    """
    base = Settings() if base is None else base
    if not isinstance(value, dict):
        raise SettingsError("settings", f"must be a JSON object of settings, got {_json_type(value)}")
    for key in value:
        if key not in FIELD_NAMES:
            raise SettingsError(str(key)[:80], unknown_name_message(dict.fromkeys(FIELD_NAMES), key, "setting"))
    checked = {name: _CHECKS[name](name, value[name]) for name in FIELD_NAMES if name in value}
    settings = dataclasses.replace(base, **checked)
    _check_combination(settings)
    return settings


def _check_combination(settings):
    """The checks that involve more than one field."""
    if settings.dataset != UPLOADED_DATASET:
        expected = "classification" if settings.dataset in CLASSIFICATION_DATASETS else "regression"
        if settings.problem != expected:
            raise SettingsError("dataset", f"{settings.dataset!r} is a {expected} data set, but problem is "
                                           f"{settings.problem!r}; choose a {settings.problem} data set")
    if settings.problem == "regression" and settings.loss != "mse":
        raise SettingsError("loss", f"regression is trained with 'mse', got {settings.loss!r}")


def _json_type(value):
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    for kind, name in ((str, "a string"), (numbers.Number, "a number"), (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _name(choices):
    """A check of a name among ``choices``: a tuple, or a function returning one, read at each check."""
    def check(field, value):
        choices_now = choices() if callable(choices) else choices
        return _check_name(field, value, choices_now)
    return check


def _check_name(field, value, choices):
    """``value`` lower-cased when it is one of ``choices``; else a SettingsError naming ``field``."""
    if not isinstance(value, str):
        raise SettingsError(field, f"must be one of {', '.join(choices)}, got {_json_type(value)}")
    name = value.strip().lower()
    if name not in choices:
        raise SettingsError(field, unknown_name_message(dict.fromkeys(choices), value[:80], field))
    return name


def _integer(low, high):
    def check(field, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Number):
            raise SettingsError(field, f"must be an integer from {low} to {high}, got {_json_type(value)}")
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise SettingsError(field, f"must be an integer from {low} to {high}, got {value}")
        if not low <= value <= high:
            raise SettingsError(field, f"must be an integer from {low} to {high}, got {value}")
        return int(value)
    return check


def _number(low, high, *, low_included=True):
    def check(field, value):
        interval = f"{'[' if low_included else '('}{low:g}, {high:g}]"
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise SettingsError(field, f"must be a finite number in {interval}, got {_json_type(value)}")
        value = float(value)
        too_low = value < low or (value == low and not low_included)
        if not math.isfinite(value) or too_low or value > high:
            raise SettingsError(field, f"must be a finite number in {interval}, got {value}")
        return value
    return check


def _boolean(field, value):
    if not isinstance(value, bool):
        raise SettingsError(field, f"must be true or false, got {_json_type(value)}")
    return value


def _features(field, value):
    if not isinstance(value, list) or not value:
        raise SettingsError(field, f"must be a non-empty list of feature names from {', '.join(PLANE_FEATURES)}, "
                                   f"got {_json_type(value)}")
    names = tuple(_name(tuple(PLANE_FEATURES))(field, name) for name in value)
    if len(set(names)) != len(names):
        raise SettingsError(field, f"must not repeat a feature, got {list(names)}")
    return names


def _hidden(field, value):
    if not isinstance(value, list):
        raise SettingsError(field, f"must be a list of neuron counts, one per hidden layer, got {_json_type(value)}")
    if len(value) > MAX_HIDDEN_LAYERS:
        raise SettingsError(field, f"has {len(value)} layers; the playground takes at most {MAX_HIDDEN_LAYERS}")
    neurons = _integer(1, MAX_NEURONS)
    return tuple(neurons(f"{field}[{index}]", count) for index, count in enumerate(value))


_CHECKS = {
    "problem": _name(PROBLEMS),
    "dataset": _name(DATASETS),
    "n_samples": _integer(MIN_SAMPLES, MAX_SAMPLES),
    "noise": _number(0.0, MAX_NOISE),
    "train_fraction": _number(*TRAIN_FRACTION_RANGE),
    "data_seed": _integer(0, MAX_SEED),
    "features": _features,
    "hidden": _hidden,
    "activation": _name(hidden_activations),
    "loss": _name(LOSSES),
    "optimizer": _name(tuple(sorted(OPTIMIZERS))),
    "learning_rate": _number(0.0, MAX_LEARNING_RATE, low_included=False),
    "batch_size": _integer(1, MAX_BATCH_SIZE),
    "regularization": _name(REGULARIZATIONS),
    "regularization_rate": _number(0.0, MAX_REGULARIZATION_RATE),
    "dropout": _number(0.0, MAX_DROPOUT),
    "batch_norm": _boolean,
    "seed": _integer(0, MAX_SEED),
}


def parse_training_request(value):
    """(epochs, seconds) from a train request's body ``{"epochs": n, "seconds": s}``.

    ``epochs`` (1 to MAX_EPOCHS_PER_REQUEST, default 1) is the most epochs to train; ``seconds`` (optional,
    up to MAX_SECONDS_PER_REQUEST) stops earlier, after the first epoch that ends past it.

    Raises
    ------
    SettingsError
        For anything else; the message names the field.
    """
    body = _object_with(value, ("epochs", "seconds"))
    epochs = _integer(1, MAX_EPOCHS_PER_REQUEST)("epochs", body.get("epochs", 1))
    seconds = body.get("seconds")
    if seconds is not None:
        seconds = _number(0.0, MAX_SECONDS_PER_REQUEST, low_included=False)("seconds", seconds)
    return epochs, seconds


def parse_upload_request(value):
    """(file name, text) from an upload request's body ``{"file_name": "points.csv", "text": "x,y,label\\n..."}``.

    Raises
    ------
    SettingsError
        For a missing or non-string field, or an empty or over-long file name.
    """
    body = _object_with(value, ("file_name", "text"))
    for field in ("file_name", "text"):
        if not isinstance(body.get(field), str):
            raise SettingsError(field, f"must be a string, got {_json_type(body.get(field))}")
    file_name = body["file_name"].strip()
    if not 0 < len(file_name) <= MAX_FILE_NAME_LENGTH or not file_name.isprintable():
        raise SettingsError("file_name", f"must be 1 to {MAX_FILE_NAME_LENGTH} printable characters")
    return file_name, body["text"]


def parse_settings_request(value, base):
    """The Settings of a settings request's body ``{"settings": {...}}``, missing fields taken from ``base``."""
    body = _object_with(value, ("settings",))
    return parse_settings(body.get("settings", {}), base)


def parse_empty_request(value):
    """Check that a request which takes no fields (reset, close) has none."""
    if value is not None and value != {}:
        _object_with(value, ())


def _object_with(value, fields):
    """``value`` itself, after checking that it is a JSON object with no keys but ``fields``."""
    if not isinstance(value, dict):
        raise SettingsError("body", f"must be a JSON object, got {_json_type(value)}")
    for key in value:
        if key not in fields:
            takes = f"the request takes {', '.join(fields)}" if fields else "the request takes no fields"
            raise SettingsError(str(key)[:80], f"unknown field; {takes}")
    return value
