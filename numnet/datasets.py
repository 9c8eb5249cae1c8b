"""Data for the reference experiments: synthetic generators, the 8x8 digits, MNIST (IDX files) and CSV files.

Generators take a ``seed`` and draw from their own ``numpy.random.Generator``, never the global NumPy state,
so the same seed gives the same data everywhere. Features come back as float arrays of the requested dtype
(float32 by default, see :func:`numnet.backend.resolve_dtype`); class labels come back as int64 indices.

MNIST is read from the four standard IDX files in a local folder (see :func:`mnist_folder`); downloading is
opt-in (``download=True``), checked against the SHA-256 of the official files and written atomically.
"""

import csv
import dataclasses
import gzip
import hashlib
import http.client
import numbers
import os
import pathlib
import shutil
import tempfile
import urllib.request
import zlib

import numpy as np

from numnet import backend, preprocessing
from numnet.errors import CorruptFileError, require
from numnet.validation import check_integer

DATA_ENVIRONMENT_VARIABLE = "NUMNET_DATA"
DEFAULT_DATA_ROOT = pathlib.Path("~/.cache/numnet")
MNIST_SUBFOLDER = "mnist"

# SHA-256 of the four official gzip files (sizes 9,912,422 / 28,881 / 1,648,877 / 4,542 bytes), as published
# by torchvision's mirror and reproduced independently in many projects that verify their MNIST download.
MNIST_FILES = {
    "train_images": (
        "train-images-idx3-ubyte",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train_labels": (
        "train-labels-idx1-ubyte",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "test_images": (
        "t10k-images-idx3-ubyte",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    "test_labels": (
        "t10k-labels-idx1-ubyte",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
}
# Tried in order. yann.lecun.com is the original home but often refuses automated downloads, so it comes last.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
DOWNLOAD_TIMEOUT_SECONDS = 30
MNIST_IMAGE_SHAPE = (28, 28)
DIGITS_IMAGE_SHAPE = (8, 8)
MNIST_CLASSES = 10
PIXEL_MAX = 255

# IDX type codes (third byte of the magic number) and their big-endian element types.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
IDX_DIMENSION_BYTES = 4

# Field values read as "missing" in a CSV file (compared after strip and lower-case).
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "?"})


# ----------------------------------------------------------------------------------------------------------
# Synthetic data (E1, E2, E3)
# ----------------------------------------------------------------------------------------------------------


def make_line(n_samples=10, noise=0.2, seed=0, *, dtype="float32"):
    """A noisy line for 1-D regression (experiment E1): y = x + N(0, noise²).

    Parameters
    ----------
    n_samples : int, default 10
    noise : float, default 0.2
        Standard deviation of the Gaussian noise added to y.
    seed : int, numpy.random.Generator or None, default 0
    dtype : str or numpy dtype, default "float32"

    Returns
    -------
    X : numpy.ndarray, shape (n_samples, 1)
        Evenly spaced in [-1, 1], ends included.
    y : numpy.ndarray, shape (n_samples, 1)
    """
    dtype = backend.resolve_dtype(dtype)
    check_integer(n_samples, "n_samples")
    _check_noise(noise)
    rng = np.random.default_rng(seed)
    X = np.linspace(-1.0, 1.0, n_samples).reshape(-1, 1)  # (n_samples, 1)
    y = X + rng.normal(0.0, noise, size=X.shape)  # (n_samples, 1)
    return X.astype(dtype), y.astype(dtype)


def make_xor(*, dtype="float32"):
    """The four points of XOR (experiment E2).

    Returns
    -------
    X : numpy.ndarray, shape (4, 2)
        (0, 0), (0, 1), (1, 0), (1, 1).
    y : numpy.ndarray, shape (4, 1)
        0, 1, 1, 0: one column of 0/1 targets for a sigmoid output.
    """
    dtype = backend.resolve_dtype(dtype)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    y = np.array([[0], [1], [1], [0]], dtype=dtype)
    return X, y


def make_spiral(n_per_class=100, n_classes=3, noise=0.2, seed=0, *, dtype="float32"):
    """Interleaved spiral arms, one per class (experiment E3, after the cs231n notes).

    For class j the radius runs r = linspace(0, 1, N), the angle t = linspace(4j, 4(j + 1), N) plus
    noise·N(0, 1), and the points are (r sin t, r cos t).

    Parameters
    ----------
    n_per_class : int, default 100
        N, the number of points per class.
    n_classes : int, default 3
        K, the number of classes (arms).
    noise : float, default 0.2
        Standard deviation of the Gaussian noise on the angle (cs231n multiplies randn by 0.2).
    seed : int, numpy.random.Generator or None, default 0
    dtype : str or numpy dtype, default "float32"

    Returns
    -------
    X : numpy.ndarray, shape (N * K, 2)
        Class j occupies rows j*N .. (j+1)*N - 1.
    y : numpy.ndarray of int64, shape (N * K,)
        Class indices 0..K-1.
    """
    dtype = backend.resolve_dtype(dtype)
    check_integer(n_per_class, "n_per_class")
    check_integer(n_classes, "n_classes")
    _check_noise(noise)
    rng = np.random.default_rng(seed)
    radius = np.linspace(0.0, 1.0, n_per_class)
    arms = []
    for j in range(n_classes):
        angle = np.linspace(4.0 * j, 4.0 * (j + 1), n_per_class) + rng.standard_normal(n_per_class) * noise
        arms.append(np.column_stack([radius * np.sin(angle), radius * np.cos(angle)]))  # (N, 2)
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    return np.concatenate(arms).astype(dtype), y


def _check_noise(noise):
    """Require a finite, non-negative noise standard deviation."""
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real):
        raise TypeError(f"noise must be a number (a standard deviation), got {type(noise).__name__}: {noise!r}")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise is a standard deviation and must be finite and >= 0, got {noise}")


# ----------------------------------------------------------------------------------------------------------
# scikit-learn's 8x8 digits (E4)
# ----------------------------------------------------------------------------------------------------------


def load_digits(dtype="float32", scale=True, *, images=False):
    """The 1,797 8x8 handwritten digits that ship with scikit-learn (no download; experiments E4 and E12).

    Parameters
    ----------
    dtype : str or numpy dtype, default "float32"
    scale : bool, default True
        Divide the pixel values (0..16) by 16, into [0, 1].
    images : bool, default False
        Return X as one-channel images (1797, 1, 8, 8), the (n, channels, height, width) layout of
        :class:`numnet.Conv2D`, instead of rows of 64 pixels.

    Returns
    -------
    X : numpy.ndarray, shape (1797, 64), or (1797, 1, 8, 8) with ``images``
    y : numpy.ndarray of int64, shape (1797,)
        Digits 0..9.

    Raises
    ------
    numnet.errors.MissingDependencyError
        When scikit-learn is not installed (``pip install 'numnet[sklearn]'``).
    """
    dtype = backend.resolve_dtype(dtype)
    sklearn_datasets = require("sklearn.datasets", "sklearn", "loading the 8x8 digits")
    X, y = sklearn_datasets.load_digits(return_X_y=True)
    if scale:
        X = X / 16.0  # the digits' pixels are counts 0..16 of set bits in 4x4 blocks
    if images:
        X = X.reshape(-1, 1, *DIGITS_IMAGE_SHAPE)  # the rows hold the pixels row by row
    return X.astype(dtype), y.astype(np.int64)


# ----------------------------------------------------------------------------------------------------------
# IDX files and MNIST (E5)
# ----------------------------------------------------------------------------------------------------------


def read_idx(path):
    """Read an IDX file (the MNIST format), raw or gzip-compressed.

    Compression is detected from the content (gzip's magic bytes 1f 8b), not from the file name. The header is
    two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64),
    the number of dimensions, then each dimension as a big-endian uint32; the values follow, big-endian.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    numpy.ndarray
        Shape as given by the header, in native byte order, e.g. (n, 28, 28) uint8 for MNIST images.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    numnet.errors.CorruptFileError
        For a bad gzip stream, a wrong magic number or type code, or a payload whose length does not match
        the dimensions (truncated or over-long file).
    """
    path = pathlib.Path(path)
    data = _read_maybe_gzip(path)
    dtype, shape, header_size = _parse_idx_header(data, path)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "longer than its header says"
        raise CorruptFileError(
            f"IDX file {path} is {problem}: dimensions {shape} of {dtype.itemsize}-byte values need "
            f"{expected} bytes of data after the {header_size}-byte header, found {actual}; "
            "download the file again"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_size)
    return values.astype(dtype.newbyteorder("=")).reshape(shape)


def _read_maybe_gzip(path):
    """The bytes of ``path``, decompressed when they start with gzip's magic bytes."""
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    data = path.read_bytes()
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise CorruptFileError(f"{path} is not a valid gzip file ({error}); download it again") from error


def _parse_idx_header(data, path):
    """Return (big-endian dtype, shape, header size in bytes) from the start of an IDX file."""
    if len(data) < 4:
        raise CorruptFileError(
            f"{path} is too short to be an IDX file: {len(data)} bytes, but the magic number alone takes 4"
        )
    if data[0] != 0 or data[1] != 0:
        raise CorruptFileError(
            f"{path} is not an IDX file: its magic number starts with bytes {data[0]:#04x} {data[1]:#04x}, "
            "expected 0x00 0x00"
        )
    type_code, n_dimensions = data[2], data[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"{code:#04x}" for code in IDX_DTYPES)
        raise CorruptFileError(f"{path} has unknown IDX type code {type_code:#04x}; known codes are {known}")
    if n_dimensions == 0:
        raise CorruptFileError(f"{path} declares 0 dimensions; an IDX file needs at least one")
    header_size = 4 + IDX_DIMENSION_BYTES * n_dimensions
    if len(data) < header_size:
        raise CorruptFileError(
            f"{path} is truncated inside its header: {n_dimensions} dimensions need a {header_size}-byte "
            f"header, the file has {len(data)} bytes"
        )
    shape = tuple(int(size) for size in np.frombuffer(data, dtype=">u4", count=n_dimensions, offset=4))
    return IDX_DTYPES[type_code], shape, header_size


def mnist_folder(cache_dir=None):
    """The folder where :func:`load_mnist` looks for (and downloads) the MNIST files.

    ``cache_dir`` when given; otherwise ``$NUMNET_DATA/mnist`` when the environment variable NUMNET_DATA (the
    root folder of numnet's data sets) is set; otherwise ``~/.cache/numnet/mnist``.

    Returns
    -------
    pathlib.Path
    """
    if cache_dir is not None:
        return pathlib.Path(cache_dir).expanduser()
    root = os.environ.get(DATA_ENVIRONMENT_VARIABLE)
    root = pathlib.Path(root) if root else DEFAULT_DATA_ROOT
    return root.expanduser() / MNIST_SUBFOLDER


def load_mnist(cache_dir=None, *, normalize=True, one_hot=False, flatten=True, images=False, download=False,
               dtype="float32"):
    """The MNIST handwritten digits from the four standard IDX files (experiment E5).

    The files are looked up in :func:`mnist_folder` under their standard names, gzip-compressed
    (``train-images-idx3-ubyte.gz``) or not (``train-images-idx3-ubyte``). Any number of images is accepted
    (the official files hold 60,000 training and 10,000 test images).

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        The folder holding the files; default see :func:`mnist_folder`.
    normalize : bool, default True
        Divide pixels (0..255) by 255, into [0, 1].
    one_hot : bool, default False
        Return labels as one-hot rows, shape (n, 10), in ``dtype``, instead of int64 indices, shape (n,).
    flatten : bool, default True
        Return images as rows of 784 pixels instead of (n, 28, 28).
    images : bool, default False
        Return one-channel images (n, 1, 28, 28), the (n, channels, height, width) layout of
        :class:`numnet.Conv2D` (``flatten`` is then ignored).
    download : bool, default False
        Fetch missing files from the official mirrors, verify their SHA-256 and save them in the folder.
    dtype : str or numpy dtype, default "float32"

    Returns
    -------
    X_train, y_train, X_test, y_test : numpy.ndarray
        X of shape (n, 784) (or (n, 28, 28), or (n, 1, 28, 28) with ``images``) in ``dtype``; y of shape (n,)
        int64 (or (n, 10) in ``dtype``).

    Raises
    ------
    FileNotFoundError
        When files are missing and ``download`` is False; the message names the files and the folder.
    ConnectionError
        When downloading fails on every mirror (for example on an offline machine).
    numnet.errors.CorruptFileError
        For a damaged file, a download whose checksum does not match, or images and labels that do not fit
        together (shapes, counts, labels outside 0..9).
    """
    dtype = backend.resolve_dtype(dtype)
    folder = mnist_folder(cache_dir)
    paths = _find_mnist_files(folder)
    missing = [key for key, path in paths.items() if path is None]
    if missing and not download:
        raise FileNotFoundError(_missing_mnist_message(folder, missing))
    for key in missing:
        file_name, sha256 = MNIST_FILES[key]
        paths[key] = _download(file_name + ".gz", folder, sha256)
    parts = []
    for split in ("train", "test"):
        pixels, labels = _read_mnist_split(paths[f"{split}_images"], paths[f"{split}_labels"])
        features = _mnist_features(pixels, normalize, flatten and not images, dtype)
        if images:
            features = features.reshape(-1, 1, *MNIST_IMAGE_SHAPE)
        parts += [features, _mnist_targets(labels, one_hot, dtype)]
    return tuple(parts)


def _find_mnist_files(folder):
    """Map each MNIST file key to its path in ``folder`` (gzip name first, then raw), or None when absent."""
    found = {}
    for key, (base_name, _) in MNIST_FILES.items():
        candidates = [folder / (base_name + ".gz"), folder / base_name]
        found[key] = next((path for path in candidates if path.is_file()), None)
    return found


def _missing_mnist_message(folder, missing):
    """The FileNotFoundError message: which files, where to put them, how to change the folder."""
    names = "\n".join(f"  {MNIST_FILES[key][0]}.gz" for key in missing)
    return (
        f"MNIST files not found in {folder}. Missing (gzip-compressed or uncompressed, without .gz):\n{names}\n"
        f"Put the files in {folder}, pass cache_dir=<folder>, or set the environment variable "
        f"{DATA_ENVIRONMENT_VARIABLE} to a folder whose '{MNIST_SUBFOLDER}' subfolder holds them. "
        "On a machine with internet access, load_mnist(download=True) fetches them."
    )


def _read_mnist_split(images_path, labels_path):
    """Read one split's images (n, 28, 28) and labels (n,), checking that they belong together."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != MNIST_IMAGE_SHAPE:
        raise CorruptFileError(
            f"{images_path} should hold uint8 images of shape (n, 28, 28), got {images.dtype} of shape "
            f"{images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise CorruptFileError(
            f"{labels_path} should hold uint8 labels of shape (n,), got {labels.dtype} of shape {labels.shape}"
        )
    if labels.shape[0] != images.shape[0]:
        raise CorruptFileError(
            f"{images_path} has {images.shape[0]} images but {labels_path} has {labels.shape[0]} labels; "
            "the two files must come from the same split"
        )
    if labels.size and labels.max() >= MNIST_CLASSES:
        raise CorruptFileError(f"{labels_path} contains label {labels.max()}; MNIST labels are digits 0..9")
    return images, labels


def _mnist_features(images, normalize, flatten, dtype):
    """Images as ``dtype``, optionally scaled into [0, 1] and flattened to (n, 784)."""
    if flatten:
        images = images.reshape(images.shape[0], -1)
    if normalize:
        return np.divide(images, PIXEL_MAX, dtype=dtype)
    return images.astype(dtype)


def _mnist_targets(labels, one_hot, dtype):
    """Labels as int64 indices (n,), or one-hot rows (n, 10) in ``dtype``."""
    if one_hot:
        return preprocessing.one_hot(labels, MNIST_CLASSES, dtype=dtype)
    return labels.astype(np.int64)


def _download(file_name, folder, sha256, *, mirrors=MNIST_MIRRORS, opener=urllib.request.urlopen):
    """Fetch ``file_name`` from the first mirror that serves it with the right checksum; return its path.

    ``opener`` is urlopen's stand-in, so tests can serve local bytes without a network.
    """
    destination = folder / file_name
    failures, checksum_failed = [], False
    for mirror in mirrors:
        url = mirror + file_name
        try:
            _fetch_atomically(url, destination, sha256, opener)
            return destination
        except CorruptFileError as error:
            checksum_failed = True
            failures.append(f"  {url}: {error}")
        except (OSError, http.client.HTTPException) as error:
            failures.append(f"  {url}: {error}")
    details = "\n".join(failures)
    if checksum_failed:
        raise CorruptFileError(f"no mirror served a valid {file_name}:\n{details}")
    raise ConnectionError(
        f"could not download {file_name} from any mirror; this machine is probably offline:\n{details}\n"
        f"Download the four MNIST .gz files on another machine and put them in {folder} "
        f"(or set {DATA_ENVIRONMENT_VARIABLE} to a folder whose '{MNIST_SUBFOLDER}' subfolder holds them)."
    )


def _fetch_atomically(url, destination, sha256, opener):
    """Download ``url`` to a temporary file next to ``destination``, verify it, then rename it into place.

    The rename (os.replace) is atomic, so an interrupted download never leaves a half-written file under the
    real name for the next run to trust.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as output, opener(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
            shutil.copyfileobj(response, output)
            output.flush()
            os.fsync(output.fileno())
        _verify_sha256(temporary, sha256)
        os.replace(temporary, destination)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


def _verify_sha256(path, expected):
    """Raise CorruptFileError unless the SHA-256 of the file at ``path`` is ``expected`` (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    actual = digest.hexdigest()
    if actual != expected.lower():
        raise CorruptFileError(f"checksum mismatch for {path}: SHA-256 is {actual}, expected {expected}")


# ----------------------------------------------------------------------------------------------------------
# CSV files (E7)
# ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Features and target read from a file.

    Attributes
    ----------
    X : numpy.ndarray, shape (n_samples, n_features)
    y : numpy.ndarray, shape (n_samples,)
        int64 indices into ``classes`` for class labels; floats of X's dtype for a regression target.
    feature_names : tuple of str, length n_features
    target_name : str
    classes : numpy.ndarray or None, shape (n_classes,)
        The sorted unique class labels (strings or integers), so ``classes[y]`` gives the labels as written
        in the file; None for a regression target.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple
    target_name: str
    classes: np.ndarray = None


def load_csv(path, target=-1, *, delimiter=",", header="infer", dtype="float32"):
    """Read a CSV file of numeric features and one target column (experiment E7).

    The target decides the task: whole numbers or text are class labels (``y`` holds indices into
    ``classes``, the sorted unique labels); numbers with fractions make a regression target (``y`` floats,
    ``classes`` None). Blank lines are skipped.

    Parameters
    ----------
    path : str or os.PathLike
    target : int or str, default -1
        The target column: an index (negative counts from the end) or a header name.
    delimiter : str, default ","
    header : "infer", True or False, default "infer"
        "infer" reads the first row as a header when any of its feature fields is text (not a number and not
        a missing-value marker); a target given by name implies a header.
    dtype : str or numpy dtype, default "float32"
        The dtype of ``X`` (and of ``y`` for regression).

    Returns
    -------
    Dataset
        With ``X`` (n_samples, n_features), ``y`` (n_samples,), the feature and target names (``column_<i>``
        without a header) and ``classes``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        For a missing value (empty, NA, n/a, nan, null, ?), a non-numeric or infinite feature, a row with the
        wrong number of fields, an unknown target, or a file without data; the message names the file, the
        line and the column.
    """
    dtype = backend.resolve_dtype(dtype)
    path = pathlib.Path(path)
    rows = _read_csv_rows(path, delimiter)
    target_index = _target_index(target, rows[0][1], header, path)
    names, data = _split_header(rows, target_index, target, header, path)
    _check_row_lengths(data, len(names), path)
    feature_columns = [i for i in range(len(names)) if i != target_index]
    X = _parse_features(data, feature_columns, names, path).astype(dtype)
    y, classes = _parse_target(data, target_index, names[target_index], path, dtype)
    feature_names = tuple(names[i] for i in feature_columns)
    return Dataset(X=X, y=y, feature_names=feature_names, target_name=names[target_index], classes=classes)


def _read_csv_rows(path, delimiter):
    """All non-blank rows of the file as (line number, stripped fields)."""
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    rows = []
    # utf-8-sig drops the byte-order mark that spreadsheet programs put at the start of exported files.
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file, delimiter=delimiter)
        try:
            for fields in reader:
                if any(field.strip() for field in fields):
                    rows.append((reader.line_num, [field.strip() for field in fields]))
        except csv.Error as error:
            raise ValueError(f"{path}, line {reader.line_num}: not valid CSV ({error})") from error
    if not rows:
        raise ValueError(f"{path} contains no data rows")
    return rows


def _target_index(target, first_row, header, path):
    """Resolve ``target`` to a column index; names are looked up in the first row (the header)."""
    n_columns = len(first_row)
    if n_columns < 2:
        raise ValueError(f"{path} has {n_columns} column; it needs at least one feature and a target column")
    if isinstance(target, str):
        if header is False:
            raise ValueError(
                f"target={target!r} is a column name, which needs a header; pass header=True or a column index"
            )
        if first_row.count(target) != 1:
            problem = "is not a column" if target not in first_row else "names several columns"
            raise ValueError(f"target {target!r} {problem} of {path}; the header has: {', '.join(first_row)}")
        return first_row.index(target)
    if isinstance(target, bool) or not isinstance(target, numbers.Integral):
        raise TypeError(
            f"target must be a column index (int) or name (str), got {type(target).__name__}: {target!r}"
        )
    if not -n_columns <= target < n_columns:
        raise ValueError(f"target index {target} is out of range for {path}, which has {n_columns} columns")
    return int(target) % n_columns


def _split_header(rows, target_index, target, header, path):
    """Return (column names, data rows), taking the first row as a header when there is one."""
    if header not in ("infer", True, False):
        raise ValueError(f'header must be "infer", True or False, got {header!r}')
    first_line, first_row = rows[0]
    if header == "infer":
        header = isinstance(target, str) or any(
            not _is_missing(field) and _to_number(field) is None
            for i, field in enumerate(first_row)
            if i != target_index
        )
    if not header:
        return [f"column_{i}" for i in range(len(first_row))], rows
    if len(rows) < 2:
        raise ValueError(f"{path} has a header (line {first_line}) but no data rows")
    return first_row, rows[1:]


def _check_row_lengths(data, n_columns, path):
    """Raise ValueError naming the first row whose field count differs from the header's."""
    for line, fields in data:
        if len(fields) != n_columns:
            raise ValueError(
                f"{path}, line {line}: found {len(fields)} fields, expected {n_columns} like the first row; "
                "check for a missing or extra delimiter"
            )


def _parse_features(data, feature_columns, names, path):
    """The feature columns as a float64 matrix (n_samples, n_features), or ValueError at the first bad field."""
    X = np.empty((len(data), len(feature_columns)), dtype=np.float64)
    for row, (line, fields) in enumerate(data):
        for column, index in enumerate(feature_columns):
            X[row, column] = _parse_feature(fields[index], line, names[index], path)
    return X


def _parse_feature(field, line, name, path):
    """One feature value as a finite float, or ValueError naming the file, line and column."""
    where = f"{path}, line {line}, column {name!r}"
    if _is_missing(field):
        raise ValueError(f"{where}: missing value ({field!r}); fill in or drop the incomplete rows first")
    value = _to_number(field)
    if value is None:
        raise ValueError(f"{where}: {field!r} is not a number; feature columns must be numeric")
    if not np.isfinite(value):
        raise ValueError(f"{where}: {field!r} is not finite; feature values must be finite numbers")
    return value


def _parse_target(data, target_index, target_name, path, dtype):
    """Return (y, classes): class indices and labels, or regression floats and None."""
    for line, fields in data:
        if _is_missing(fields[target_index]):
            raise ValueError(f"{path}, line {line}, column {target_name!r}: missing target value")
    texts = [fields[target_index] for _, fields in data]
    numbers_read = [_to_number(text) for text in texts]
    if any(value is None or not np.isfinite(value) for value in numbers_read):
        return preprocessing.label_encode(np.array(texts))
    values = np.array(numbers_read, dtype=np.float64)
    if (values == np.round(values)).all():
        return preprocessing.label_encode(values.astype(np.int64))
    return values.astype(dtype), None


def _is_missing(field):
    """Whether ``field`` is one of the missing-value markers."""
    return field.strip().lower() in MISSING_MARKERS


def _to_number(field):
    """``field`` as a float, or None when it is not a number."""
    try:
        return float(field)
    except ValueError:
        return None
