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
         "vocabulary": Vocabulary.to_metadata() (only when the network has one),
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

Why this shape: opening a file can never run code. Members are read with the standard library's zipfile
and their ``.npy`` headers parsed by a regular expression (never eval, never pickle: only float32, float64
and uint8 arrays, in either byte order, are accepted), and each member's declared dtype, shape and size are
compared with the document and with the file's size before its values are inflated, so a damaged or
hostile file is refused in time and memory bounded by its size. Names read from the file are resolved
only through numnet's tables (LAYERS, ACTIVATIONS, LOSSES, INITIALIZERS, OPTIMIZERS, SCHEDULES). Each
array's SHA-256 (of its little-endian C-order bytes) is recorded in the document, on top of the zip's own
CRC-32, so a damaged or edited array is reported instead of silently loaded. JSON floats are written with Python's shortest round-trip repr,
so every number in the document (l2, learning rates, the history) comes back bit for bit.

A language model's vocabulary (:class:`numnet.text.Vocabulary`, ``network.vocabulary``) is saved in the
document as its plain JSON record, so that a loaded model generates text by itself
(:func:`numnet.text.generate`). The key is written only when there is a vocabulary: other files are
unchanged, and a numnet that predates it loads the network and ignores the key.
"""

import contextlib
import hashlib
import json
import math
import os
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._registry import constructor_options, rebuild
from .atomic import write_atomically
from .backend import to_numpy
from .errors import CorruptFileError
from .losses import get_loss
from .layers import get_layer_class
from .network import MODELS, Network, rebuild_layers
from .optimizers import get_optimizer
from .schedules import get_schedule
from .text import Vocabulary
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
#: The state a stateful recurrent layer carries per row into the next training batch (Layer.carried_state).
CARRIED_PREFIX = "carried/"
#: Parameters and optimiser state are float arrays; nothing else is accepted from a file.
ARRAY_DTYPES = ("float32", "float64")
#: What zipfile, zlib and struct raise for a damaged archive (see _damaged_archive).
_ZIP_DAMAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, OSError,
               zlib.error, struct.error, ValueError, OverflowError, LookupError)
NPY_SUFFIX = ".npy"
#: Zip member compression numnet reads: np.savez stores members; deflate is what zip tools re-pack with.
READABLE_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
#: Zip flags numnet refuses: 0x1 encrypted, 0x20 compressed patched data, 0x40 strong encryption.
ZIP_ENCRYPTED = 0x1
ZIP_UNSUPPORTED_FLAGS = ZIP_ENCRYPTED | 0x20 | 0x40
#: All members together may inflate to this many times the file's size. numnet's own (stored) members
#: never exceed 1; deflate gains ~1.1x on float arrays and ~5x on JSON; a zip bomb gains ~1000x.
MAX_INFLATION = 16
NPY_MAGIC = b"\x93NUMPY"
#: Bytes of the header-length field by .npy format version (NEP 1): 2 in version 1, 4 in versions 2 and 3.
NPY_LENGTH_BYTES = {(1, 0): 2, (2, 0): 4, (3, 0): 4}
MAX_NPY_HEADER_BYTES = 10_000  # numpy.lib.format's own default limit
#: The dtypes of numnet's arrays in either byte order, and of the JSON document (uint8).
NPY_DESCRIPTORS = ("<f4", ">f4", "<f8", ">f8", "|u1")
MAX_DIMENSION_DIGITS = 20  # 2**64 has 20 digits; no array dimension can have more
#: The header NumPy writes: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }, its three entries
#: in any order. Each part is delimited by a quote, colon or comma, so matching never backtracks far.
_NPY_ENTRY = r"'(descr|fortran_order|shape)'\s*:\s*('[^']*'|True|False|\([0-9 ,]*\))"
NPY_HEADER = re.compile(rf"\{{\s*{_NPY_ENTRY}\s*,\s*{_NPY_ENTRY}\s*,\s*{_NPY_ENTRY}\s*(?:,\s*)?\}}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def save_model(network, path, *, metadata=None, vocabulary=None):
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
    vocabulary : numnet.text.Vocabulary, optional
        A language model's vocabulary, which :func:`load_model` restores as ``network.vocabulary``; by
        default the network's own ``vocabulary`` attribute, when it has one.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``network`` is not a Network, ``metadata`` is not a JSON-serialisable dict, or ``vocabulary`` is
        not a Vocabulary.
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
    if vocabulary is None:
        vocabulary = network.vocabulary
    if vocabulary is not None and not isinstance(vocabulary, Vocabulary):
        raise TypeError(f"vocabulary must be a numnet.text.Vocabulary, got {type(vocabulary).__name__}")
    arrays = _network_arrays(network)
    document = _document(network, arrays, metadata)
    if vocabulary is not None:
        document["vocabulary"] = vocabulary.to_metadata()
    arrays[DOCUMENT_KEY] = np.frombuffer(json.dumps(document, ensure_ascii=False).encode("utf-8"), np.uint8)
    _write_atomically(path, arrays)
    return path


def load_model(path):
    """Rebuild a network saved by :func:`save_model`, bit for bit.

    The returned Network has the saved architecture, dtype and parameters, its optimiser with its state
    (``network.optimizer``), its progress (``epochs_trained``, ``iterations_trained``,
    ``training_seed``), its ``history``, ``network.metadata`` (``{}`` when none was saved) and
    ``network.vocabulary`` (a :class:`numnet.text.Vocabulary`, or None when none was saved). Calling
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
        _restore_carried_state(network, arrays)
    with _invalid_part(path, "its optimiser"):
        network.optimizer = _build_optimizer(document["optimizer"], network, arrays)
    with _invalid_part(path, "its training progress, history or metadata"):
        _restore_progress(network, document)
    with _invalid_part(path, "its vocabulary"):
        record = document.get("vocabulary")
        network.vocabulary = None if record is None else Vocabulary.from_metadata(record)
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
    arrays.update({f"{CARRIED_PREFIX}{layer.name}.{key}": to_numpy(array)
                   for layer in network.layers for key, array in layer.carried_state().items()})
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
    """Write the archive with numnet's one atomic-write helper (temporary beside ``path``, fsync, rename)."""
    write_atomically(path, lambda stream: np.savez(stream, allow_pickle=False, **arrays))


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
    except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
        # ArithmeticError: a number too large for a float (OverflowError), e.g. an l2 of 10**400
        raise _corrupt(path, f"{part} is invalid ({type(error).__name__}: {error})") from error


def _read_archive(path):
    """(document, arrays) from the file, every array checked against the document before and after reading.

    The zip is read with the standard library's zipfile, member by member, so that nothing is inflated or
    allocated before its declared size has been compared with the file's size and with the document.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        start = handle.read(len(ZIP_SIGNATURE))
        if start != ZIP_SIGNATURE:
            raise _corrupt(path, f"it is not a zip (.npz) archive (it starts with {start!r})")
        handle.seek(0)
        with _damaged_archive(path), zipfile.ZipFile(handle) as archive:
            members = _archive_members(path, archive, size)
            document = _read_document(path, archive, members)
            arrays = _read_arrays(path, archive, members, document)
    return document, arrays


@contextlib.contextmanager
def _damaged_archive(path):
    """Turn what zipfile and zlib raise for a damaged archive into CorruptFileError naming the file.

    zipfile signals damage with many classes: BadZipFile, NotImplementedError (an unknown zip version),
    RuntimeError (encryption), EOFError, OSError (a seek outside the file), zlib.error, struct.error,
    UnicodeDecodeError (a member name), OverflowError; the members' own checks come first, with messages
    of their own.
    """
    try:
        yield
    except CorruptFileError:
        raise
    except _ZIP_DAMAGE as error:
        raise _corrupt(path, f"its zip structure is damaged ({type(error).__name__}: {error})") from error


def _archive_members(path, archive, size):
    """{array key: ZipInfo} of the archive's members, each checked to be one numnet could have written."""
    members, total = {}, 0
    for info in archive.infolist():
        if not info.filename.endswith(NPY_SUFFIX):
            raise _corrupt(path, f"its member {info.filename!r} is not a .npy array")
        key = info.filename[:-len(NPY_SUFFIX)]
        if key in members:
            raise _corrupt(path, f"it holds two members named {info.filename!r}")
        _check_member(path, info, size)
        members[key] = info
        total += info.file_size
    if total > MAX_INFLATION * size:
        raise _corrupt(path, f"its members would inflate to {total:,} bytes from a file of {size:,} bytes, "
                             f"more than {MAX_INFLATION} times its size; numnet writes uncompressed archives, "
                             "so this is not a numnet model (or a zip bomb)")
    return members


def _check_member(path, info, size):
    """Refuse a member that is encrypted, compressed other than by deflate, or larger than the file allows."""
    name = info.filename
    if info.flag_bits & ZIP_UNSUPPORTED_FLAGS:
        what = "is encrypted" if info.flag_bits & ZIP_ENCRYPTED else "uses zip features numnet does not read"
        raise _corrupt(path, f"its member {name!r} {what} (zip flags {info.flag_bits:#06x}); numnet writes "
                             "plain, unencrypted members")
    if info.compress_type not in READABLE_COMPRESSION:
        raise _corrupt(path, f"its member {name!r} uses zip compression method {info.compress_type}; numnet "
                             "reads stored (uncompressed) and deflated members")
    if info.compress_size > size:
        raise _corrupt(path, f"its member {name!r} claims {info.compress_size:,} bytes, more than the whole "
                             f"file ({size:,} bytes): it is truncated or damaged")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise _corrupt(path, f"its member {name!r} is stored uncompressed, but its zip entry gives two sizes "
                             f"({info.compress_size:,} and {info.file_size:,} bytes)")


def _read_member(path, archive, info, key, check):
    """The array in one member, in native byte order; ``check(dtype, shape)`` runs before values are read.

    ``check`` returns None to accept the declared dtype and shape, or the problem with them.
    """
    with archive.open(info) as stream:
        dtype, shape, fortran_order, header_size = _read_npy_header(path, stream, key)
        problem = check(dtype, shape)
        if problem:
            raise _corrupt(path, f"array {key!r} {problem}")
        n_bytes = math.prod(shape) * dtype.itemsize
        if info.file_size != header_size + n_bytes:
            raise _corrupt(path, f"array {key!r} of shape {shape} needs {n_bytes:,} bytes after its header, "
                                 f"but its zip entry holds {info.file_size - header_size:,}")
        data = stream.read(n_bytes)  # reading to the member's end also checks its CRC-32
    if len(data) != n_bytes:
        raise _corrupt(path, f"array {key!r} is truncated: {len(data):,} of {n_bytes:,} bytes")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    # A file written on a big-endian machine loads here too: same values, native order, writable.
    return np.array(array, dtype=dtype.newbyteorder("="), order="C")


def _read_npy_header(path, stream, key):
    """(dtype, shape, Fortran order, header size) from a .npy header, parsed without eval.

    NumPy's own reader evaluates the header with ast.literal_eval, which a crafted header of a few kB
    can drive into MemoryError or RecursionError; numnet's headers are a fixed dict of three entries, read
    here by a regular expression of linear cost.
    """
    start = stream.read(len(NPY_MAGIC) + 2)
    if len(start) < len(NPY_MAGIC) + 2 or not start.startswith(NPY_MAGIC):
        raise _corrupt(path, f"its member for array {key!r} is not a .npy array (it starts with {start!r})")
    version = (start[-2], start[-1])
    if version not in NPY_LENGTH_BYTES:
        raise _corrupt(path, f"array {key!r} is in .npy format version {version[0]}.{version[1]}, which "
                             "numnet does not read")
    length_bytes = NPY_LENGTH_BYTES[version]
    length = int.from_bytes(stream.read(length_bytes), "little")
    if length > MAX_NPY_HEADER_BYTES:
        raise _corrupt(path, f"array {key!r} has a .npy header of {length:,} bytes; numnet's are under "
                             f"{MAX_NPY_HEADER_BYTES:,}")
    text = stream.read(length)
    match = NPY_HEADER.fullmatch(text.decode("latin-1").rstrip(" \n")) if len(text) == length else None
    entries = dict(zip(match.group(1, 3, 5), match.group(2, 4, 6))) if match else {}
    if set(entries) != {"descr", "fortran_order", "shape"}:
        raise _corrupt(path, f"array {key!r} has a damaged .npy header ({text[:80]!r})")
    descriptor = entries["descr"].strip("'")
    if descriptor not in NPY_DESCRIPTORS:
        refused = "holds pickled Python objects, which numnet never unpickles (that could run code)" \
            if "O" in descriptor else f"has dtype {descriptor!r}, which numnet never writes"
        raise _corrupt(path, f"array {key!r} {refused}")
    shape = _npy_shape(entries["shape"])
    if shape is None:
        raise _corrupt(path, f"array {key!r} has a damaged shape in its .npy header ({entries['shape']!r})")
    header_size = len(NPY_MAGIC) + 2 + length_bytes + length
    return np.dtype(descriptor), shape, entries["fortran_order"] == "True", header_size


def _npy_shape(text):
    """The tuple of a .npy header's shape, e.g. "(3, 4)" or "(3,)", or None when it is not one."""
    items = [item.strip() for item in text[1:-1].split(",")]
    if items[-1] == "":
        items.pop()  # the trailing comma of "(3,)"
    elif len(items) == 1:
        return () if items == [""] else None  # "()" is a 0-d shape; "(3)" is not a tuple
    if not all(item.isdigit() and len(item) <= MAX_DIMENSION_DIGITS for item in items):
        return None
    return tuple(int(item) for item in items)


def _read_document(path, archive, members):
    """The JSON document, after checking that it is numnet's and that this numnet can read its version."""
    if DOCUMENT_KEY not in members:
        raise _corrupt(path, f"it is a NumPy archive without numnet's {DOCUMENT_KEY!r} document; "
                             "it was not written by numnet's save_model")

    raw = _read_member(path, archive, members[DOCUMENT_KEY], DOCUMENT_KEY, _json_bytes)
    try:
        document = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError, JSONDecodeError and Python's int-string limit
        raise _corrupt(path, f"its {DOCUMENT_KEY!r} document is not valid JSON text ({error})") from error
    except RecursionError as error:
        raise _corrupt(path, f"its {DOCUMENT_KEY!r} document nests lists or objects deeper than Python can "
                             "read; numnet's documents nest a few levels") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise _corrupt(path, f"its {DOCUMENT_KEY!r} document does not describe a numnet model")
    _check_format_version(path, document)
    return document


def _json_bytes(dtype, shape):
    """The check for :func:`_read_member` that the document's member is a 1-D uint8 array (UTF-8 text)."""
    if dtype != np.uint8 or len(shape) != 1:
        return f"should be a 1-D uint8 array (JSON text), but has dtype {dtype} and shape {shape}"
    return None


def _check_format_version(path, document):
    from . import __version__

    try:
        version = check_integer(document.get("format_version"), "its format version")
    except (TypeError, ValueError) as error:
        raise _corrupt(path, str(error)) from error
    if version > FORMAT_VERSION:
        raise _corrupt(
            path, f"it uses file format version {version} (written by numnet "
                  f"{str(document.get('numnet_version', 'unknown'))[:40]}), but numnet {__version__} reads "
                  f"versions up to {FORMAT_VERSION}; upgrade numnet (pip install --upgrade numnet) to load it"
        )


def _read_arrays(path, archive, members, document):
    """Every array named in the document, each checked for dtype and shape before reading, SHA-256 after."""
    manifest = document.get("arrays")
    if not isinstance(manifest, dict):
        raise _corrupt(path, "its document has no table of arrays")
    stored = set(members) - {DOCUMENT_KEY}
    if stored != set(manifest):
        missing, extra = sorted(set(manifest) - stored), sorted(stored - set(manifest))
        raise _corrupt(path, f"its arrays do not match its table of arrays (missing: {missing[:10]}, "
                             f"not listed: {extra[:10]})")
    arrays = {}
    for key, record in manifest.items():
        dtype_name, shape, sha256 = _array_entry(path, key, record)
        array = _read_member(path, archive, members[key], key, _as_listed(dtype_name, shape))
        if _sha256(array) != sha256:
            raise _corrupt(path, f"array {key!r} fails its SHA-256 check: its bytes were damaged or changed")
        arrays[key] = array
    return arrays


def _as_listed(dtype_name, shape):
    """The check for :func:`_read_member` that a header declares the dtype and shape the document lists."""

    def check(dtype, declared):
        if (dtype.name, declared) != (dtype_name, shape):
            return f"has dtype {dtype.name} and shape {declared}, but the file lists {dtype_name} and {shape}"
        return None

    return check


def _array_entry(path, key, record):
    """(dtype name, shape, SHA-256) of an array's entry in the document's table, checked."""
    if not isinstance(record, dict):
        raise _corrupt(path, f"the table entry of array {key!r} is not an object")
    dtype_name, shape, sha256 = record.get("dtype"), record.get("shape"), record.get("sha256")
    if dtype_name not in ARRAY_DTYPES:
        raise _corrupt(path, f"the table lists array {key!r} with dtype {str(dtype_name)[:40]!r}; numnet's "
                             f"arrays are {' or '.join(ARRAY_DTYPES)}")
    if not (isinstance(shape, list) and all(type(size) is int and size >= 0 for size in shape)):
        raise _corrupt(path, f"the table lists array {key!r} with an invalid shape {str(shape)[:80]}")
    if not (isinstance(sha256, str) and SHA256_HEX.fullmatch(sha256)):
        raise _corrupt(path, f"the table lists array {key!r} without a valid SHA-256")
    return dtype_name, tuple(shape), sha256


def _build_network(architecture, arrays):
    """A Network with the saved architecture (its weights are overwritten afterwards).

    The layers are rebuilt first, which allocates nothing, and the shapes they declare are compared with
    the arrays the file holds before the Network allocates its buffers: a document that claims huge layers
    costs nothing to refuse.
    """
    layers = rebuild_layers(architecture["layers"])
    _check_declared_shapes(layers, arrays)
    loss = rebuild(get_loss, architecture["loss"], architecture.get("loss_options", {}))
    kind = architecture.get("model", Network.model_kind)
    if kind not in MODELS:
        raise ValueError(f"it holds a model of kind {str(kind)[:40]!r}, which this numnet does not know (it knows "
                         f"{', '.join(sorted(MODELS))}); load it with the numnet that saved it")
    # Rebuilt on NumPy, whatever backend trained it: the file holds NumPy arrays and loading is exact there.
    return MODELS[kind].from_config(architecture, layers=layers, loss=loss, backend="numpy")


def _restore_carried_state(network, arrays):
    """Hand each stateful layer the rows' state it carried when the file was written (a checkpoint taken
    between batches of truncated backpropagation through time)."""
    for layer in network.layers:
        prefix = f"{CARRIED_PREFIX}{layer.name}."
        carried = {key[len(prefix):]: array for key, array in arrays.items() if key.startswith(prefix)}
        if carried:
            layer.set_carried_state(carried)


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


