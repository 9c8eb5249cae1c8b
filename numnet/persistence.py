"""Saving and loading networks: one file, no pickle, checksummed, written atomically.

File format (versions 1 and 2)
------------------------------
A NumPy ``.npz`` archive (an uncompressed zip of ``.npy`` arrays), readable with NumPy alone:

``numnet.json``
    One UTF-8 JSON document stored as a 1-D uint8 array::

        {"format": "numnet", "format_version": 1 or 2, "numnet_version": "0.2.0",
         "network": {"layers": [{"type": "dense", "n_inputs", "n_outputs", "activation", "name",
                                 "activation_options", "weight_init", "bias_init"}, ...],
                     "loss", "loss_options", "l2", "dtype"; version 2 also "l1", "input_shape"},
         "optimizer": {"name", "hyperparameters", "state": {"step"} or null} or null,
         "training": {"epochs_trained", "iterations_trained", "training_seed"},
         "history": History.to_dict() or null,
         "metadata": {...},
         "arrays": {key: {"dtype", "shape", "sha256"}, ...}}

``parameters/<name>``
    Every parameter by its network name (``parameters/dense_0.W``), in the network's dtype.
``optimizer/<state>/<name>``
    Every optimiser state array, split by parameter name (``optimizer/m/dense_0.W``), so the state is
    tied to the parameter it belongs to rather than to a position in the flat buffer.
``state/<name>`` (version 2)
    Every layer's non-trainable state by name (``state/batch_norm_1.running_mean``).

Each layer is saved as its ``Layer.config()``, whose ``"type"`` is looked up in ``numnet.layers.LAYERS``
(a user's own layer class must be registered with ``register_layer`` before loading) and rebuilt with
``from_config``. A network of Dense layers only (without L1) is written in version 1, byte for byte the
layout numnet 0.1 wrote and reads; any other network needs version 2, which numnet 0.1 refuses with a
message asking to upgrade.

Why this shape: arrays are read with ``np.load(..., allow_pickle=False)``, which refuses object arrays, so
opening a file can never run code; names read from the file are resolved only through numnet's tables
(ACTIVATIONS, LOSSES, INITIALIZERS, OPTIMIZERS, SCHEDULES). Each array's SHA-256 (of its little-endian
C-order bytes) is recorded in the document, on top of the zip's own CRC-32, so a damaged or edited array
is reported instead of silently loaded. JSON floats are written with Python's shortest round-trip repr,
so every number in the document (l2, learning rates, the history) comes back bit for bit.
"""

import contextlib
import hashlib
import json
import os
import secrets
import zipfile
from pathlib import Path

import numpy as np

from ._registry import constructor_options, rebuild
from .backend import to_numpy
from .errors import CorruptFileError
from .layers import get_layer_class
from .losses import get_loss
from .network import Network
from .optimizers import get_optimizer
from .schedules import get_schedule
from .training import History
from .validation import check_integer

FORMAT_NAME = "numnet"
#: Raised whenever the layout changes in a way an older numnet could not read. Version 2 adds layer state
#: arrays and layers other than Dense; a Dense-only network is still written as version 1.
FORMAT_VERSION = 2
PLAIN_FORMAT_VERSION = 1
DOCUMENT_KEY = "numnet.json"
#: The first bytes of a zip archive (a local file header), which every .npz starts with.
ZIP_SIGNATURE = b"PK\x03\x04"
PARAMETER_PREFIX = "parameters/"
OPTIMIZER_PREFIX = "optimizer/"
STATE_PREFIX = "state/"
#: Parameters and optimiser state are float arrays; nothing else is accepted from a file.
ARRAY_DTYPES = ("float32", "float64")
#: What reading an .npz can raise for a file that is damaged or not an archive at all.
_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError)


def save_model(network, path, *, metadata=None):
    """Write ``network`` (architecture, parameters, optimiser state, progress, history) to one file.

    The path is used exactly as given (no suffix is added; ".npz" is the natural one). The file is
    written to a temporary file in the same folder, flushed to disk and then renamed over ``path``, so
    a crash or an error mid-write leaves any earlier file at ``path`` intact. Missing parent folders are
    created.

    Parameters
    ----------
    network : Network
    path : str or os.PathLike
    metadata : dict, optional
        Anything JSON can hold (dicts with string keys, lists, strings, numbers, booleans, None), e.g.
        class names or scaler parameters; tuples come back as lists. By default the network's own
        ``metadata`` (set by :func:`load_model`) is kept, so load-train-save does not lose it; pass
        ``{}`` to drop it.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``network`` is not a Network, or ``metadata`` is not a JSON-serialisable dict.
    ValueError
        If a component (activation, loss, initialiser, optimiser, schedule) is not one of numnet's
        registered classes, so that a loader could not rebuild it.
    """
    if not isinstance(network, Network):
        raise TypeError(f"network must be a numnet Network, got {type(network).__name__}")
    path = _as_path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder; give a file path such as {str(path / 'model.npz')!r}")
    if metadata is None:
        metadata = getattr(network, "metadata", None) or {}
    _check_metadata(metadata)
    arrays = _network_arrays(network)
    document = _document(network, arrays, metadata)
    arrays[DOCUMENT_KEY] = np.frombuffer(json.dumps(document, ensure_ascii=False).encode("utf-8"), np.uint8)
    _write_atomically(path, arrays)
    return path


def load_model(path):
    """Rebuild a network saved by :func:`save_model`, bit for bit.

    The returned Network has the saved architecture, dtype and parameters, its optimiser with its state
    (``network.optimizer``), its progress (``epochs_trained``, ``iterations_trained``,
    ``training_seed``), its ``history``, and ``network.metadata`` (``{}`` when none was saved). Calling
    ``fit`` on it without ``optimizer`` and ``seed`` continues training exactly where the saved run
    stopped.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Network
        On the NumPy backend, whichever backend the saved network trained on.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    CorruptFileError
        If the file is truncated, damaged, not a numnet model, holds pickled (object) arrays, or was
        written by a newer numnet; the message names the file and the problem.
    """
    path = _as_path(path)
    if not path.exists():
        raise FileNotFoundError(f"no numnet model file at {str(path)!r}")
    document, arrays = _read_archive(path)
    with _invalid_part(path, "its network description"):
        network = _build_network(document["network"], arrays)
    with _invalid_part(path, "its parameters"):
        network.set_parameters({name: _stored(arrays, PARAMETER_PREFIX + name, array)
                                for name, array in network.parameters().items()})
        network.set_state({name: _stored(arrays, STATE_PREFIX + name, array)
                           for name, array in network.state().items()})
    with _invalid_part(path, "its optimiser"):
        network.optimizer = _build_optimizer(document["optimizer"], network, arrays)
    with _invalid_part(path, "its training progress, history or metadata"):
        _restore_progress(network, document)
    unexpected = sorted(set(arrays) - set(_network_arrays(network)))
    if unexpected:
        raise _corrupt(path, f"it holds arrays this network has no place for: {', '.join(unexpected)}")
    return network


# ---- saving --------------------------------------------------------------------------------------------


def _as_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}: {path!r}")
    return Path(path)


def _check_metadata(metadata):
    """Raise TypeError unless ``metadata`` is a dict JSON can write."""
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}: {metadata!r}")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"metadata must be JSON-serialisable (dicts with string keys, lists, strings, numbers, booleans, "
            f"None): {error}; convert NumPy arrays with .tolist() and NumPy scalars with int() or float()"
        ) from error


def _network_arrays(network):
    """Every array to store, by archive key: the parameters, then the optimiser's state per parameter."""
    arrays = {PARAMETER_PREFIX + name: to_numpy(array) for name, array in network.parameters().items()}
    arrays.update({STATE_PREFIX + name: to_numpy(array) for name, array in network.state().items()})
    optimizer = network.optimizer
    if optimizer is None or optimizer.state is None:
        return arrays
    for state_name in optimizer.state_names:
        flat = optimizer.state[state_name]
        if flat.shape != network.flat_parameters.shape:
            raise ValueError(
                f"the optimiser's {state_name!r} state has shape {flat.shape} but the network has "
                f"{network.n_parameters} parameters; it was used on another network"
            )
        for name, view in network.unflatten(flat).items():
            arrays[f"{OPTIMIZER_PREFIX}{state_name}/{name}"] = to_numpy(view)
    return arrays


def _document(network, arrays, metadata):
    """The JSON document: everything but the arrays, plus a checksum of every array."""
    from . import __version__  # the package's own version; imported here so no import cycle can form

    optimizer = network.optimizer
    return {
        "format": FORMAT_NAME,
        "format_version": PLAIN_FORMAT_VERSION if network._is_plain_mlp() else FORMAT_VERSION,
        "numnet_version": __version__,
        "network": _architecture(network),
        "optimizer": None if optimizer is None else _optimizer_record(optimizer),
        "training": {"epochs_trained": int(network.epochs_trained),
                     "iterations_trained": int(network.iterations_trained),
                     "training_seed": None if network.training_seed is None else int(network.training_seed)},
        # The round trip through from_dict turns NumPy scalars a caller may have appended into floats.
        "history": None if network.history is None else History.from_dict(network.history.to_dict()).to_dict(),
        "metadata": metadata,
        "arrays": {key: _array_record(array) for key, array in arrays.items()},
    }


def _architecture(network):
    """network.config() (every layer's config) plus the loss's options, checked to survive JSON."""
    architecture = network.config()
    architecture["loss_options"] = constructor_options(network.loss, get_loss, "loss")
    for layer, layer_config in zip(network.layers, architecture["layers"]):
        _check_layer_config(layer, layer_config)
    return architecture


def _check_layer_config(layer, config):
    """Refuse, before writing, a layer that a loader could not rebuild: unregistered, or a config that is
    not plain JSON data."""
    try:
        registered = get_layer_class(config.get("type"))
    except (ValueError, TypeError):
        registered = None
    if registered is not type(layer):
        raise ValueError(
            f"cannot save layer {layer.name} ({type(layer).__name__}): its type {config.get('type')!r} is not "
            "registered, so a loader could not rebuild it; register the class first with "
            f"numnet.layers.register_layer({type(layer).__name__})"
        )
    try:
        json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"cannot save layer {layer.name}: its config() is not plain JSON data ({error}); "
                         "make config() return numbers, strings, lists and dicts") from error


def _optimizer_record(optimizer):
    hyperparameters = optimizer.hyperparameters()
    constructor_options(optimizer, get_optimizer, "optimizer")  # checks that the name rebuilds this class
    constructor_options(optimizer.schedule, get_schedule, "schedule")
    state = None if optimizer.state is None else {"step": int(optimizer.state["step"])}
    return {"name": optimizer.name, "hyperparameters": hyperparameters, "state": state}


def _array_record(array):
    return {"dtype": array.dtype.name, "shape": list(array.shape), "sha256": _sha256(array)}


def _sha256(array):
    """SHA-256 of the array's little-endian C-order bytes (the same on every machine)."""
    little_endian = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return hashlib.sha256(little_endian.tobytes()).hexdigest()


def _write_atomically(path, arrays):
    """Write the archive to a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # O_EXCL: never reuse someone else's file; mode 0o666 lets the umask set the final permissions.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder):
    """fsync the folder so the rename itself survives a power cut (skipped where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# ---- loading -------------------------------------------------------------------------------------------


def _corrupt(path, problem):
    return CorruptFileError(f"cannot load {str(path)!r} as a numnet model: {problem}")


@contextlib.contextmanager
def _invalid_part(path, part):
    """Turn the errors that a malformed document raises while rebuilding into CorruptFileError."""
    try:
        yield
    except CorruptFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise _corrupt(path, f"{part} is invalid ({type(error).__name__}: {error})") from error


def _read_archive(path):
    """(document, arrays) from the file, every array checked against the document's checksums."""
    with open(path, "rb") as handle:
        # Checked first so that np.load never takes its .npy or pickle branches for a foreign file.
        start = handle.read(len(ZIP_SIGNATURE))
        if start != ZIP_SIGNATURE:
            raise _corrupt(path, f"it is not a zip (.npz) archive (it starts with {start!r})")
        handle.seek(0)
        try:
            archive = np.load(handle, allow_pickle=False)
        except _READ_ERRORS as error:
            raise _corrupt(path, f"it is not a readable NumPy .npz archive ({error})") from error
        with archive:
            document = _read_document(path, archive)
            arrays = _read_arrays(path, archive, document)
    return document, arrays


def _read_member(path, archive, key):
    try:
        return archive[key]
    except _READ_ERRORS as error:
        # numpy's message says which: a bad CRC-32 (damage) or an object array (refused: unpickling runs code)
        raise _corrupt(path, f"its array {key!r} cannot be read: {error}") from error


def _read_document(path, archive):
    """The JSON document, after checking that it is numnet's and that this numnet can read its version."""
    if DOCUMENT_KEY not in archive.files:
        raise _corrupt(path, f"it is a NumPy archive without numnet's {DOCUMENT_KEY!r} document; "
                             "it was not written by numnet's save_model")
    raw = _read_member(path, archive, DOCUMENT_KEY)
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"expected a 1-D uint8 array, got {raw.dtype} with shape {raw.shape}")
        document = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _corrupt(path, f"its {DOCUMENT_KEY!r} document is not valid JSON text ({error})") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise _corrupt(path, f"its {DOCUMENT_KEY!r} document does not describe a numnet model")
    _check_format_version(path, document)
    return document


def _check_format_version(path, document):
    from . import __version__

    try:
        version = check_integer(document.get("format_version"), "its format version")
    except (TypeError, ValueError) as error:
        raise _corrupt(path, str(error)) from error
    if version > FORMAT_VERSION:
        raise _corrupt(
            path, f"it uses file format version {version} (written by numnet "
                  f"{document.get('numnet_version', 'unknown')}), but numnet {__version__} reads versions up to "
                  f"{FORMAT_VERSION}; upgrade numnet (pip install --upgrade numnet) to load it"
        )


def _read_arrays(path, archive, document):
    """Every array named in the document, each checked for dtype, shape and SHA-256."""
    manifest = document.get("arrays")
    if not isinstance(manifest, dict):
        raise _corrupt(path, "its document has no table of arrays")
    stored = set(archive.files) - {DOCUMENT_KEY}
    if stored != set(manifest):
        missing, extra = sorted(set(manifest) - stored), sorted(stored - set(manifest))
        raise _corrupt(path, f"its arrays do not match its table of arrays (missing: {missing}, "
                             f"not listed: {extra})")
    arrays = {}
    for key, record in manifest.items():
        array = _read_member(path, archive, key)
        with _invalid_part(path, f"the table entry of array {key!r}"):
            expected = (record["dtype"], list(record["shape"]), record["sha256"])
        if array.dtype.name not in ARRAY_DTYPES or (array.dtype.name, list(array.shape)) != expected[:2]:
            raise _corrupt(path, f"array {key!r} has dtype {array.dtype} and shape {array.shape}, but the "
                                 f"file lists {expected[0]} and {tuple(expected[1])}")
        if _sha256(array) != expected[2]:
            raise _corrupt(path, f"array {key!r} fails its SHA-256 check: its bytes were damaged or changed")
        arrays[key] = array
    return arrays


def _build_network(architecture, arrays):
    """A Network with the saved architecture (its weights are overwritten afterwards).

    The layers are rebuilt first, which allocates nothing, and the shapes they declare are compared with
    the arrays the file holds before the Network allocates its buffers: a document that claims huge layers
    costs nothing to refuse.
    """
    layers = [get_layer_class(config["type"]).from_config(config) for config in architecture["layers"]]
    _check_declared_shapes(layers, arrays)
    loss = rebuild(get_loss, architecture["loss"], architecture.get("loss_options", {}))
    input_shape = architecture.get("input_shape")
    # Rebuilt on NumPy, whatever backend trained it: the file holds NumPy arrays and loading is exact there.
    return Network(layers=layers, loss=loss, l2=architecture["l2"], l1=architecture.get("l1", 0.0),
                   input_shape=None if input_shape is None else tuple(input_shape), dtype=architecture["dtype"],
                   seed=0, backend="numpy")


def _check_declared_shapes(layers, arrays):
    """Every parameter and state array the layers declare must be in the file with that shape."""
    for index, layer in enumerate(layers):
        name = layer.name or f"{layer.kind}_{index}"
        declared = [(PARAMETER_PREFIX, key, shape) for key, shape in layer.parameter_shapes().items()]
        declared += [(STATE_PREFIX, key, shape) for key, shape in layer.state_shapes().items()]
        for prefix, key, shape in declared:
            array = arrays.get(f"{prefix}{name}.{key}")
            if array is None or tuple(array.shape) != tuple(shape):
                found = "is missing" if array is None else f"has shape {tuple(array.shape)}"
                raise ValueError(f"layer {name} declares {prefix}{name}.{key} of shape {tuple(shape)}, but the "
                                 f"file's array {found}")


def _stored(arrays, key, like):
    """arrays[key], checked to match ``like`` in shape and dtype (a silent cast would not be bit for bit)."""
    if key not in arrays:
        raise KeyError(f"the array {key!r} is missing")
    array = arrays[key]
    if array.shape != like.shape or array.dtype != like.dtype:
        raise ValueError(f"array {key!r} has dtype {array.dtype} and shape {array.shape}; the network "
                         f"needs {like.dtype} and {like.shape}")
    return array


def _build_optimizer(record, network, arrays):
    """The saved optimiser with its hyperparameters, schedule and state, or None."""
    if record is None:
        return None
    hyperparameters = dict(record["hyperparameters"])
    schedule = dict(hyperparameters.pop("schedule", {"name": "constant"}))
    hyperparameters["schedule"] = rebuild(get_schedule, schedule.pop("name"), schedule)
    optimizer = type(get_optimizer(record["name"]))(**hyperparameters)
    if record["state"] is not None:
        state = {"step": check_integer(record["state"]["step"], "step", minimum=0)}
        for state_name in optimizer.state_names:
            state[state_name] = np.zeros_like(network.flat_parameters)
            for name, view in network.unflatten(state[state_name]).items():
                view[...] = _stored(arrays, f"{OPTIMIZER_PREFIX}{state_name}/{name}", view)
        optimizer.load_state(state)
    return optimizer


def _restore_progress(network, document):
    training = document["training"]
    network.epochs_trained = check_integer(training["epochs_trained"], "epochs_trained", minimum=0)
    network.iterations_trained = check_integer(training["iterations_trained"], "iterations_trained", minimum=0)
    seed = training["training_seed"]
    network.training_seed = None if seed is None else check_integer(seed, "training_seed", minimum=0)
    history = document["history"]
    network.history = None if history is None else History.from_dict(history)
    metadata = document.get("metadata", {})
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a JSON object, got {type(metadata).__name__}")
    network.metadata = metadata


