"""Playground sessions: one browser tab's settings, points and network, and the store that keeps them bounded.

A session trains with numnet's own ``Network.fit``, one epoch per call, so that the page can ask for a new
picture after any epoch. Epoch k's batches depend only on (seed, k), so training in many short calls gives
exactly the weights of one long call, which is what lets the exported script reproduce the page. Each call
records the doctor's evidence (``fit(diagnose=True)``, with the test points as validation data), and
``numnet.diagnose`` reads the last DOCTOR_EPOCHS epochs of it for the findings the page shows. Memory stays
bounded: the network's History is dropped after every epoch (the page keeps the curves, the doctor its
window), and the store keeps at most MAX_SESSIONS sessions, dropping any idle for IDLE_SECONDS.
"""

import collections
import dataclasses
import pathlib
import secrets
import tempfile
import threading
import time

import numpy as np

from numnet.doctor import diagnose
from numnet.errors import DivergenceError
from numnet.persistence import save_model
from numnet.training import History
from numnet.preprocessing import plane_features

from . import pictures
from .data import DOMAIN, make_data, read_upload
from .model import build_network, fit_arguments, output_layout
from .settings import UPLOADED_DATASET, Settings

MAX_SESSIONS = 32
IDLE_SECONDS = 600
#: Epochs of training evidence the doctor reads: enough for its rules (rising, oscillating and overfitting
#: losses look at the last 10 epochs at most), bounded so a long session's memory stays bounded.
DOCTOR_EPOCHS = 50
#: The doctor examines the network (one forward and backward pass, a few milliseconds) at most this often,
#: so that frames stay fast while training; a paused page gets a fresh examination with every frame.
DOCTOR_INTERVAL_SECONDS = 0.5
#: The data settings: changing any of them draws new points (any other change only rebuilds the network).
DATA_FIELDS = ("problem", "dataset", "n_samples", "noise", "train_fraction", "data_seed")


class SessionNotFound(KeyError):
    """A request named a session that expired or never existed."""

    def __str__(self):
        return self.args[0]


class TrainingStopped(RuntimeError):
    """Training was asked of a session whose last run diverged."""


@dataclasses.dataclass
class EpochRecord:
    """One epoch's numbers for the page: losses (without the penalty), accuracies, mean |dC/dW| per layer."""

    epoch: int
    train_loss: float
    test_loss: float
    train_accuracy: float = None
    test_accuracy: float = None
    gradients: list = None


class Session:
    """One tab's playground: settings, points, network and training progress.

    Every method that reads or changes the session must run under ``session.lock`` (the server holds it
    for the whole request).
    """

    def __init__(self, session_id, settings):
        self.id = session_id
        self.lock = threading.Lock()
        self.last_used = 0.0
        self.upload = None
        self.data = None
        self.data_version = 0
        self.configure(settings)

    # ---- setting up ----------------------------------------------------------------------------------

    def configure(self, settings):
        """Use ``settings``: new points if a data setting changed, and always a new network at epoch 0.

        Nothing changes when the settings are refused (SettingsError).
        """
        data = self.data if self._keeps_data(settings) else make_data(settings, self.upload)
        layout = output_layout(settings, data.n_classes)
        network = build_network(settings, layout)
        if data is not self.data:
            self.data_version += 1
        self.settings, self.data, self.layout, self.network = settings, data, layout, network
        self.features_train = plane_features(data.X_train, settings.features)
        self.features_test = plane_features(data.X_test, settings.features)
        self.targets_train = layout.targets(data.y_train)
        self.targets_test = layout.targets(data.y_test)
        self.divergence = None
        self.recent_history = collections.deque(maxlen=DOCTOR_EPOCHS)  # one History per epoch trained
        self.findings, self._diagnosed = [], None  # (epoch, time) of the last examination

    def _keeps_data(self, settings):
        return self.data is not None and all(
            getattr(settings, name) == getattr(self.settings, name) for name in DATA_FIELDS)

    def reset(self):
        """Start the same network again from its seeded initial weights (epoch 0)."""
        self.configure(self.settings)

    def use_upload(self, file_name, text):
        """Read an uploaded CSV (see data.read_upload) and switch to it; returns the new Settings."""
        upload = read_upload(file_name, text)
        loss = self.settings.loss
        if upload.problem == "regression":
            loss = "mse"
        elif loss == "binary_cross_entropy" and len(upload.classes) > 2:
            loss = "softmax_cross_entropy"
        settings = dataclasses.replace(self.settings, dataset=UPLOADED_DATASET, problem=upload.problem, loss=loss)
        previous = self.upload, self.data
        self.upload, self.data = upload, None  # the points must be read from the new file
        try:
            self.configure(settings)
        except Exception:
            self.upload, self.data = previous
            raise
        return settings

    # ---- training ------------------------------------------------------------------------------------

    def train(self, max_epochs, seconds=None):
        """Train whole epochs: ``max_epochs``, or fewer once ``seconds`` have passed (at least one).

        Returns
        -------
        list of EpochRecord
            One per epoch trained; training stops early (and ``divergence`` says why) if the loss became
            non-finite.

        Raises
        ------
        TrainingStopped
            When the last run diverged: reset or change a setting first.
        """
        if self.divergence is not None:
            raise TrainingStopped(f"training diverged ({self.divergence}); reset or change a setting to start again")
        started = time.perf_counter()
        records = []
        while len(records) < max_epochs:
            record = self._train_one_epoch()
            if record is None:
                break
            records.append(record)
            if seconds is not None and time.perf_counter() - started >= seconds:
                break
        return records

    def _train_one_epoch(self):
        network = self.network
        options = fit_arguments(self.settings) if network.optimizer is None else {
            "batch_size": self.settings.batch_size}
        # diagnose and validation_data only record (the doctor's evidence, the test loss per epoch): the
        # weights are those of the exported script's fit without them.
        try:
            history = network.fit(self.features_train, self.targets_train, epochs=1, diagnose=True,
                                  validation_data=(self.features_test, self.targets_test), **options)
        except DivergenceError as error:
            self.divergence = str(error)
            self.recent_history.append(network.history)  # the kept steps of the diverged epoch: evidence too
            return None
        finally:
            network.history = None  # fit records into the network's History; the page keeps the curves
        self.recent_history.append(history)
        record = self.evaluate()
        record.gradients = [_finite_or_none(np.mean(values)) for values in history.gradient_mean_abs.values()]
        return record

    def examine(self, *, now=None):
        """The doctor's findings (``numnet.diagnose`` on the training points and the recent History), as
        JSON-ready dicts; re-examined when training moved on and DOCTOR_INTERVAL_SECONDS have passed."""
        now = time.monotonic() if now is None else now
        epoch = self.network.epochs_trained
        if self._diagnosed is not None:
            last_epoch, last_time = self._diagnosed
            if epoch == last_epoch or (now - last_time < DOCTOR_INTERVAL_SECONDS and self.divergence is None):
                return self.findings
        window = History()
        for history in self.recent_history:
            window.extend(history)
        findings = diagnose(self.network, self.features_train, self.targets_train,
                            history=window if self.recent_history else None)
        self.findings = [finding.to_dict() for finding in findings]
        self._diagnosed = (epoch, now)
        return self.findings

    def evaluate(self):
        """The EpochRecord of the network as it is now (no gradients)."""
        train_loss, train_accuracy = self._scores(self.features_train, self.targets_train, self.data.y_train)
        test_loss, test_accuracy = self._scores(self.features_test, self.targets_test, self.data.y_test)
        return EpochRecord(self.network.epochs_trained, train_loss, test_loss, train_accuracy, test_accuracy)

    def _scores(self, features, targets, y):
        """(loss without the penalty, accuracy or None) on one part of the data."""
        network = self.network
        loss = _finite_or_none(network.loss_value(features, targets) - network.penalty())
        if self.layout.kind == "value":
            return loss, None
        accuracy = float(np.mean(self.layout.classes(network.forward(features)) == y))
        return loss, accuracy

    # ---- what the page receives ----------------------------------------------------------------------

    def frame(self, records=(), *, with_data=False):
        """The JSON-ready picture of the session now, with the epochs just trained (``records``)."""
        current = records[-1] if records else self.evaluate()
        frame = {
            "session": self.id,
            "epoch": self.network.epochs_trained,
            "current": dataclasses.asdict(current),
            "records": [dataclasses.asdict(record) for record in records],
            "divergence": self.divergence,
            "data_version": self.data_version,
            "output": self._output_picture(),
            "neurons": {"size": pictures.NEURON_GRID,
                        "layers": [pictures.encode(layer) for layer in
                                   pictures.neuron_pictures(self.network, self.settings.features)]},
            "weights": pictures.weight_pictures(self.network),
            "findings": self.examine(),
        }
        if with_data:
            frame["settings"] = self.settings.to_json()
            frame["network"] = self.description()
            frame["data"] = self._points()
        return frame

    def _output_picture(self):
        outputs = pictures.output_picture(self.network, self.settings.features)
        lowest, highest = self.data.target_range if self.layout.kind == "value" else (-1.0, 1.0)
        return {"size": pictures.OUTPUT_GRID, "domain": DOMAIN, "kind": self.layout.kind,
                "activation": self.layout.activation, "n_outputs": self.layout.n_outputs,
                "range": [lowest, highest], "values": pictures.encode(outputs)}

    def _points(self):
        data = self.data
        labels = (lambda y: y.tolist()) if data.class_names is not None else (lambda y: y.ravel().tolist())
        return {"version": self.data_version, "problem": self.settings.problem, "class_names": data.class_names,
                "file_name": None if self.upload is None else self.upload.file_name,
                "train": pictures.encode(data.X_train), "train_labels": labels(data.y_train),
                "test": pictures.encode(data.X_test), "test_labels": labels(data.y_test)}

    def description(self):
        """The network as the engine has it: layer sizes, its layers, their activations, the loss."""
        network = self.network
        return {"layer_sizes": network.layer_sizes, "layers": [type(layer).__name__ for layer in network.layers],
                "activations": [layer.activation.name for layer in network.layers if layer.activation is not None],
                "loss": network.loss.name, "n_parameters": network.n_parameters,
                "epochs_trained": network.epochs_trained, "iterations_trained": network.iterations_trained}

    # ---- taking it away ------------------------------------------------------------------------------

    def model_file(self):
        """The network as numnet.save_model writes it (bytes of a .npz), with the settings as metadata."""
        metadata = {"playground": {"settings": self.settings.to_json(), "features": list(self.settings.features),
                                   "class_names": self.data.class_names, "output": self.layout.kind}}
        with tempfile.TemporaryDirectory(prefix="numnet-playground-") as folder:
            return save_model(self.network, pathlib.Path(folder) / "model.npz", metadata=metadata).read_bytes()


def _finite_or_none(value):
    """A float for the page, or None (JSON null) for an infinity or NaN, which JSON cannot carry."""
    value = float(value)
    return value if np.isfinite(value) else None


class SessionStore:
    """The live sessions, at most ``max_sessions``, each dropped after ``idle_seconds`` without a request.

    When a new session would exceed the limit, the least recently used one is dropped. ``clock`` is
    time.monotonic unless a test gives another.
    """

    def __init__(self, *, max_sessions=MAX_SESSIONS, idle_seconds=IDLE_SECONDS, clock=time.monotonic):
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._sessions = collections.OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def create(self, settings=None):
        """A new session with ``settings`` (default: the default setup); raises SettingsError for bad ones."""
        session = Session(secrets.token_urlsafe(18), settings or Settings())
        with self._lock:
            self._drop_idle()
            while len(self._sessions) >= self.max_sessions:
                self._sessions.popitem(last=False)
            session.last_used = self.clock()
            self._sessions[session.id] = session
        return session

    def get(self, session_id):
        """The session called ``session_id``, marked as used now; SessionNotFound when it is gone."""
        with self._lock:
            self._drop_idle()
            session = self._sessions.get(session_id)
            if session is None:
                raise SessionNotFound(
                    f"session {session_id[:40]!r} has expired (idle for over {self.idle_seconds // 60:g} minutes, or "
                    f"one of more than {self.max_sessions} open tabs) or never existed; reload the page to start "
                    "a new one")
            session.last_used = self.clock()
            self._sessions.move_to_end(session_id)
            return session

    def close(self, session_id):
        """Drop a session now (the page closes its own when the tab goes away)."""
        with self._lock:
            self._sessions.pop(session_id, None)

    def __len__(self):
        with self._lock:
            self._drop_idle()
            return len(self._sessions)

    def _drop_idle(self):
        deadline = self.clock() - self.idle_seconds
        for session_id in [key for key, session in self._sessions.items() if session.last_used < deadline]:
            del self._sessions[session_id]
