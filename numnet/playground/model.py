"""The network a playground session trains: its output layer and targets, built from the settings.

The loss decides the output layer (TensorFlow Playground has only the last of these):

- binary_cross_entropy: one sigmoid output, P(class 1), trained on 0/1 labels (two classes only);
- softmax_cross_entropy: one softmax output per class, trained on class indices;
- mse on classes: tanh outputs trained on targets ±1 (one output for two classes, else one per class);
- mse on a regression target: one linear output.

The network's constructor arguments, the fit arguments and the targets are each written once, as data, and
both the session and the exported script are built from them.
"""

import dataclasses

import numpy as np

from numnet.metrics import predicted_classes
from numnet.network import Network
from numnet.preprocessing import one_hot

from .settings import SettingsError

#: The network's dtype: float32, numnet's default; the page's pictures are float32 too.
DTYPE = "float32"


@dataclasses.dataclass(frozen=True)
class OutputLayout:
    """What the output layer is and how its numbers read.

    kind : {"probability", "sign", "classes", "value"}
        One sigmoid output P(class 1); one tanh output whose sign is the class; one output per class (the
        largest wins); a regression value.
    """

    kind: str
    n_outputs: int
    activation: str
    loss: str
    n_classes: int = None

    def targets(self, y):
        """The training targets for labels or regression values ``y`` (see :meth:`targets_code`)."""
        if self.kind == "sign":
            return (2 * y - 1).reshape(-1, 1).astype(np.float32)
        if self.kind == "classes" and self.loss == "mse":
            return 2 * one_hot(y, self.n_classes) - 1
        return y

    def targets_code(self, name):
        """The Python expression that :meth:`targets` computes, for the exported script."""
        if self.kind == "sign":
            return f"(2 * {name} - 1).reshape(-1, 1).astype(np.float32)"
        if self.kind == "classes" and self.loss == "mse":
            return f"2 * preprocessing.one_hot({name}, {self.n_classes}) - 1"
        return name

    def classes(self, outputs):
        """Predicted class indices (n,) from outputs (n, n_outputs)."""
        if self.kind == "sign":
            return (outputs[:, 0] > 0).astype(np.int64)  # tanh outputs: the sign is the class
        return predicted_classes(outputs)


def output_layout(settings, n_classes):
    """The OutputLayout for the settings' loss and the data's number of classes (None for regression).

    Raises
    ------
    SettingsError
        For binary cross-entropy on more than two classes.
    """
    if n_classes is None:
        return OutputLayout("value", 1, "linear", "mse")
    if settings.loss == "binary_cross_entropy":
        if n_classes != 2:
            raise SettingsError("loss", f"binary_cross_entropy has one output for two classes, but the data has "
                                        f"{n_classes}; choose softmax_cross_entropy or mse")
        return OutputLayout("probability", 1, "sigmoid", settings.loss, n_classes)
    if settings.loss == "softmax_cross_entropy":
        return OutputLayout("classes", n_classes, "softmax", settings.loss, n_classes)
    if n_classes == 2:
        return OutputLayout("sign", 1, "tanh", "mse", n_classes)
    return OutputLayout("classes", n_classes, "tanh", "mse", n_classes)


def network_arguments(settings, layout):
    """The keyword arguments of numnet.Network for these settings (layer sizes included)."""
    arguments = {
        "layer_sizes": [len(settings.features), *settings.hidden, layout.n_outputs],
        "activation": settings.activation,
        "output_activation": layout.activation,
        "loss": layout.loss,
        "dtype": DTYPE,
        "seed": settings.seed,
        # The pictures are drawn with NumPy, whatever $NUMNET_BACKEND says.
        "backend": "numpy",
    }
    if settings.regularization != "none":
        arguments[settings.regularization] = settings.regularization_rate  # l1=... or l2=...
    if settings.dropout:
        arguments["dropout"] = settings.dropout
    if settings.batch_norm:
        arguments["batch_norm"] = True
    return arguments


def fit_arguments(settings):
    """The keyword arguments of the first Network.fit call (later calls continue with the same optimiser)."""
    return {"batch_size": settings.batch_size, "optimizer": settings.optimizer,
            "learning_rate": settings.learning_rate, "seed": settings.seed}


def build_network(settings, layout):
    """A freshly initialised Network for the settings."""
    return Network(**network_arguments(settings, layout))
