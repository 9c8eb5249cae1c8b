"""The Python script the page exports: numnet's public API rebuilding and training a session's network.

It draws the same points, builds the same network with the same seed and trains it for the same number of
steps, so with the same numnet and NumPy it ends with exactly the weights the page showed.
"""

from numnet import __version__

from .model import fit_arguments, network_arguments

SCRIPT_FILE_NAME = "numnet_playground.py"
MODEL_FILE_NAME = "playground-model.npz"


def session_script(session):
    """The script's text for ``session`` (whose lock the caller holds)."""
    settings, layout, network = session.settings, session.layout, session.network
    lines = [
        f'"""Rebuild and train the network of a numnet playground session (numnet {__version__}).',
        "",
        f"Run it with `python {SCRIPT_FILE_NAME}`: it draws the same points, builds the same network with the",
        "same seed and trains it as the page did, then prints its scores and saves it to",
        f"{MODEL_FILE_NAME}, whose weights match the model the page exports.",
        '"""',
        "",
        "import numpy as np",
        "",
        "import numnet",
        "from numnet import datasets, preprocessing",
        "",
        *session.data.code,
        f"features = {list(settings.features)!r}",
        "F_train = preprocessing.plane_features(X_train, features)",
        "F_test = preprocessing.plane_features(X_test, features)",
        f"T_train = {layout.targets_code('y_train')}",
        f"T_test = {layout.targets_code('y_test')}",
        "",
        f"network = numnet.Network({_arguments(network_arguments(settings, layout))})",
        *_training_lines(settings, network, session.features_train.shape[0]),
        "print(network.summary())",
        'print(f"train loss {network.loss_value(F_train, T_train):.4f}   test loss '
        '{network.loss_value(F_test, T_test):.4f}   (penalty included)")',
        f"numnet.save_model(network, {MODEL_FILE_NAME!r})",
    ]
    return "\n".join(lines) + "\n"


def _training_lines(settings, network, n_train):
    """The fit call that repeats the page's training: whole epochs, or the steps done before a divergence."""
    if network.iterations_trained == 0:
        return ["# The page had not trained this network yet."]
    steps_per_epoch = -(-n_train // min(settings.batch_size, n_train))
    if network.iterations_trained == network.epochs_trained * steps_per_epoch:
        length = {"epochs": network.epochs_trained}
    else:  # training diverged part-way through an epoch: repeat the steps that were kept
        length = {"iterations": network.iterations_trained}
    return [f"history = network.fit(F_train, T_train, {_arguments({**length, **fit_arguments(settings)})})"]


def _arguments(arguments):
    """Keyword arguments as Python source: ``layer_sizes`` first and positional, the rest by name."""
    parts = [repr(arguments["layer_sizes"])] if "layer_sizes" in arguments else []
    parts += [f"{key}={value!r}" for key, value in arguments.items() if key != "layer_sizes"]
    return ", ".join(parts)
