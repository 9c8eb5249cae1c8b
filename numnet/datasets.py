"""Data for the reference experiments: synthetic generators, the 8x8 digits, MNIST (IDX files) and CSV files;
text for language models: any UTF-8 file (:func:`load_text`) and the US census name lists (:func:`load_names`);
the two toy sets of sequence-to-sequence models in *Deep Learning from Scratch 2* (:func:`load_addition`,
:func:`load_dates`).

The generators include TensorFlow Playground's data sets in the square [-6, 6]² (circle, XOR quadrants,
Gaussian blobs, plane, multi-Gaussian), which ``numnet playground`` draws, and scikit-learn's moons.

Generators take a ``seed`` and draw from their own ``numpy.random.Generator``, never the global NumPy state,
so the same seed gives the same data everywhere. Features come back as float arrays of the requested dtype
(float32 by default, see :func:`numnet.backend.resolve_dtype`); class labels come back as int64 indices.

MNIST is read from the four standard IDX files in a local folder (see :func:`mnist_folder`); downloading is
opt-in (``download=True``), checked against the SHA-256 of the official files and written atomically.
"""

import codecs
import csv
import dataclasses
import datetime
import gzip
import hashlib
import http.client
import importlib.resources
import importlib.util
import io
import math
import numbers
import os
import pathlib
import re
import struct
import urllib.request
import zlib

import numpy as np

from numnet import backend, preprocessing
from numnet.atomic import write_atomically
from numnet.errors import CorruptFileError, DataFileError, MissingDependencyError, require
from numnet.text import Vocabulary
from numnet.validation import Seed, check_integer, declare

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
DOWNLOAD_CHUNK_BYTES = 1 << 20
MNIST_IMAGE_SHAPE = (28, 28)
DIGITS_IMAGE_SHAPE = (8, 8)
#: scikit-learn's 8x8 digits: images and pixels per image.
DIGITS_COUNT, DIGITS_PIXELS = 1797, 64
#: A digits pixel counts the set bits of a 4x4 block (0..16); the digits are 0..9.
DIGITS_PIXEL_MAX = 16
DIGITS_CLASSES = 10
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
IDX_MAX_DIMENSIONS = 64  # NumPy 2's limit on an array's dimensions
IDX_FIRST_CHUNK_BYTES = 1 << 16

# Field values read as "missing" in a CSV file (compared after strip and lower-case).
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "?"})
# A class label written as an integer ("7", "-3", also "7.0" as spreadsheets export whole numbers). Such
# labels are read from their digits, never through a float, so large ones neither round nor merge.
INTEGER_LABEL = re.compile(r"[+-]?[0-9]+(?:\.0*)?")
INT64_RANGE = (-(2**63), 2**63 - 1)
UTF8_BOM = b"\xef\xbb\xbf"
#: The census name lists of the ``names`` package (the ``text`` extra) that :func:`load_names` reads, by kind:
#: first names (the female list, then the male) and last names, each with the most common name first.
NAMES_FILES = {"first": ("dist.female.first", "dist.male.first"), "last": ("dist.all.last",)}
NAMES_FILES["all"] = NAMES_FILES["first"] + NAMES_FILES["last"]


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


# ----------------------------------------------------------------------------------------------------------
# Points in the plane (after TensorFlow Playground's data sets)
# ----------------------------------------------------------------------------------------------------------

#: Half the side of the square [-6, 6]² that TensorFlow Playground draws; its data sets live inside it.
PLANE_HALF_WIDTH = 6.0
CIRCLE_RADIUS = 5.0
# Inner class: radius up to half of CIRCLE_RADIUS; outer ring from 0.7 of it to all of it (a gap between).
CIRCLE_INNER_FRACTION = 0.5
CIRCLE_OUTER_FRACTION = 0.7
XOR_HALF_WIDTH = 5.0
# Points are pushed this far away from the axes, so that no noise-free point sits on a class boundary.
XOR_PADDING = 0.3
GAUSS_CENTRE = 2.0
# The blobs' variance grows linearly with the noise, from 0.5 (noise 0) to 4 (noise 0.5), as in the Playground.
GAUSS_VARIANCE_AT_ZERO_NOISE = 0.5
GAUSS_VARIANCE_PER_NOISE = 7.0
# The plane's target (x + y) / 10 spans [-1.2, 1.2] over the square.
PLANE_TARGET_DIVISOR = 10.0
# (centre x, centre y, sign) of the six bumps of make_multi_gaussian, the Playground's layout.
MULTI_GAUSSIAN_BUMPS = ((-4.0, 2.5, 1.0), (0.0, 2.5, -1.0), (4.0, 2.5, 1.0),
                        (-4.0, -2.5, -1.0), (0.0, -2.5, 1.0), (4.0, -2.5, -1.0))
MULTI_GAUSSIAN_WIDTH = 1.0


def make_circle(n_samples=500, noise=0.0, seed=0, *, dtype="float32"):
    """A disc of one class inside a ring of the other (TensorFlow Playground's "Circle").

    Half the points (class 1) have a radius drawn uniformly from [0, 2.5], the other half (class 0) from
    [3.5, 5], at a uniform angle. Each point is then moved by ``noise · 5 · U(-1, 1)`` along each axis, so
    with noise the classes overlap.

    Parameters
    ----------
    n_samples : int, default 500
        Class 1 gets ``n_samples // 2`` points, class 0 the rest.
    noise : float, default 0.0
        The displacement as a fraction of the radius 5 (the Playground's slider goes from 0 to 0.5).
    seed : int, numpy.random.Generator or None, default 0
    dtype : str or numpy dtype, default "float32"

    Returns
    -------
    X : numpy.ndarray, shape (n_samples, 2)
        Class 1 first, then class 0.
    y : numpy.ndarray of int64, shape (n_samples,)
    """
    rng, dtype = _plane_arguments(n_samples, noise, seed, dtype)
    n_inside = n_samples // 2
    radius = np.concatenate([
        rng.uniform(0.0, CIRCLE_INNER_FRACTION * CIRCLE_RADIUS, n_inside),
        rng.uniform(CIRCLE_OUTER_FRACTION * CIRCLE_RADIUS, CIRCLE_RADIUS, n_samples - n_inside),
    ])
    angle = rng.uniform(0.0, 2.0 * np.pi, n_samples)
    X = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])  # (n_samples, 2)
    y = np.repeat(np.array([1, 0], dtype=np.int64), [n_inside, n_samples - n_inside])
    return _displaced(X, noise * CIRCLE_RADIUS, rng).astype(dtype), y


def make_xor_quadrants(n_samples=500, noise=0.0, seed=0, *, dtype="float32"):
    """Points in the four quadrants, labelled by the sign of x·y (TensorFlow Playground's "Exclusive or").

    x and y are drawn uniformly from [-5, 5] and pushed 0.3 away from the axes; the label is 1 where x·y > 0
    (first and third quadrants) and 0 elsewhere. Each point is then moved by ``noise · 5 · U(-1, 1)`` along
    each axis. (:func:`make_xor` is the four-point truth table.)

    Parameters
    ----------
    n_samples : int, default 500
    noise : float, default 0.0
        The displacement as a fraction of the half-width 5.
    seed : int, numpy.random.Generator or None, default 0
    dtype : str or numpy dtype, default "float32"

    Returns
    -------
    X : numpy.ndarray, shape (n_samples, 2)
    y : numpy.ndarray of int64, shape (n_samples,)
    """
    rng, dtype = _plane_arguments(n_samples, noise, seed, dtype)
    X = rng.uniform(-XOR_HALF_WIDTH, XOR_HALF_WIDTH, (n_samples, 2))
    X += np.where(X > 0, XOR_PADDING, -XOR_PADDING)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    return _displaced(X, noise * XOR_HALF_WIDTH, rng).astype(dtype), y


def make_gauss(n_samples=500, noise=0.0, seed=0, *, dtype="float32"):
    """Two round Gaussian blobs, class 1 around (2, 2) and class 0 around (-2, -2) (the Playground's "Gaussian").

    Each coordinate has variance ``0.5 + 7 · noise``: 0.5 without noise, 4 at the Playground's largest
    noise, 0.5, where the blobs overlap.

    Parameters
    ----------
    n_samples : int, default 500
        Class 1 gets ``n_samples // 2`` points, class 0 the rest.
    noise : float, default 0.0
    seed : int, numpy.random.Generator or None, default 0
    dtype : str or numpy dtype, default "float32"

    Returns
    -------
    X : numpy.ndarray, shape (n_samples, 2)
        Class 1 first, then class 0.
    y : numpy.ndarray of int64, shape (n_samples,)
    """
    rng, dtype = _plane_arguments(n_samples, noise, seed, dtype)
    n_positive = n_samples // 2
    deviation = np.sqrt(GAUSS_VARIANCE_AT_ZERO_NOISE + GAUSS_VARIANCE_PER_NOISE * noise)
    centres = np.repeat([[GAUSS_CENTRE, GAUSS_CENTRE], [-GAUSS_CENTRE, -GAUSS_CENTRE]],
                        [n_positive, n_samples - n_positive], axis=0)  # (n_samples, 2)
    X = centres + rng.normal(0.0, deviation, (n_samples, 2))
    y = np.repeat(np.array([1, 0], dtype=np.int64), [n_positive, n_samples - n_positive])
    return X.astype(dtype), y


def make_moons(n_samples=500, noise=0.0, seed=0, *, dtype="float32"):
    """Two interleaving half circles, as scikit-learn's ``make_moons(shuffle=False)`` draws them.

    Class 0 is the upper arc (cos t, sin t), class 1 the lower arc (1 - cos t, 0.5 - sin t), each with t
    evenly spaced over [0, π]; Gaussian noise of standard deviation ``noise`` is added to every coordinate.

    Parameters
    ----------
    n_samples : int, default 500
        Class 0 gets ``n_samples // 2`` points, class 1 the rest.
    noise : float, default 0.0
        Standard deviation of the Gaussian noise, in the moons' own units (their radius is 1).
    seed : int, numpy.random.Generator or None, default 0
    dtype : str or numpy dtype, default "float32"

    Returns
    -------
    X : numpy.ndarray, shape (n_samples, 2)
        Inside [-1, 2] x [-0.5, 1] before noise; class 0 first.
    y : numpy.ndarray of int64, shape (n_samples,)
    """
    rng, dtype = _plane_arguments(n_samples, noise, seed, dtype)
    n_upper = n_samples // 2
    upper = np.linspace(0.0, np.pi, n_upper)
    lower = np.linspace(0.0, np.pi, n_samples - n_upper)
    X = np.concatenate([np.column_stack([np.cos(upper), np.sin(upper)]),
                        np.column_stack([1.0 - np.cos(lower), 0.5 - np.sin(lower)])])  # (n_samples, 2)
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_upper, n_samples - n_upper])
    return (X + rng.normal(0.0, noise, X.shape)).astype(dtype), y


def make_plane(n_samples=500, noise=0.0, seed=0, *, dtype="float32"):
    """Regression on a tilted plane: target (x + y) / 10 over the square [-6, 6]² (the Playground's "Plane").

    The target is that of the drawn point; the point is then moved by ``noise · 6 · U(-1, 1)`` along each
    axis, so with noise the inputs no longer fix the target exactly.

    Parameters
    ----------
    n_samples : int, default 500
    noise : float, default 0.0
        The displacement as a fraction of the half-width 6.
    seed : int, numpy.random.Generator or None, default 0
    dtype : str or numpy dtype, default "float32"

    Returns
    -------
    X : numpy.ndarray, shape (n_samples, 2)
    y : numpy.ndarray, shape (n_samples, 1)
        In [-1.2, 1.2].
    """
    rng, dtype = _plane_arguments(n_samples, noise, seed, dtype)
    X = rng.uniform(-PLANE_HALF_WIDTH, PLANE_HALF_WIDTH, (n_samples, 2))
    y = (X[:, 0] + X[:, 1]).reshape(-1, 1) / PLANE_TARGET_DIVISOR
    return _displaced(X, noise * PLANE_HALF_WIDTH, rng).astype(dtype), y.astype(dtype)


def make_multi_gaussian(n_samples=500, noise=0.0, seed=0, *, dtype="float32"):
    """Regression on six signed Gaussian bumps over the square [-6, 6]² (after the Playground's "Multi Gaussian").

    Bumps of height +1 or -1 sit at (-4, 2.5)+, (0, 2.5)-, (4, 2.5)+, (-4, -2.5)-, (0, -2.5)+, (4, -2.5)-;
    each is ``sign · exp(-d² / 2)`` at distance d from its centre, and the target is the bump largest in
    absolute value there. The Playground's bumps are cones ``1 - d / 2``; these are true Gaussians of width 1.
    Points are then moved by ``noise · 6 · U(-1, 1)`` along each axis, as in :func:`make_plane`.

    Parameters
    ----------
    n_samples : int, default 500
    noise : float, default 0.0
        The displacement as a fraction of the half-width 6.
    seed : int, numpy.random.Generator or None, default 0
    dtype : str or numpy dtype, default "float32"

    Returns
    -------
    X : numpy.ndarray, shape (n_samples, 2)
    y : numpy.ndarray, shape (n_samples, 1)
        In [-1, 1].
    """
    rng, dtype = _plane_arguments(n_samples, noise, seed, dtype)
    X = rng.uniform(-PLANE_HALF_WIDTH, PLANE_HALF_WIDTH, (n_samples, 2))
    centres = np.array([bump[:2] for bump in MULTI_GAUSSIAN_BUMPS])  # (6, 2)
    signs = np.array([bump[2] for bump in MULTI_GAUSSIAN_BUMPS])  # (6,)
    squared_distance = ((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)  # (n_samples, 6)
    bumps = signs * np.exp(-squared_distance / (2.0 * MULTI_GAUSSIAN_WIDTH ** 2))  # (n_samples, 6)
    y = np.take_along_axis(bumps, np.abs(bumps).argmax(axis=1)[:, None], axis=1)  # (n_samples, 1)
    return _displaced(X, noise * PLANE_HALF_WIDTH, rng).astype(dtype), y.astype(dtype)


def _plane_arguments(n_samples, noise, seed, dtype):
    """(rng, dtype) after checking the arguments every plane generator shares."""
    check_integer(n_samples, "n_samples")
    _check_noise(noise)
    return np.random.default_rng(seed), backend.resolve_dtype(dtype)


def _displaced(X, largest_shift, rng):
    """X with every coordinate moved by a uniform draw from [-largest_shift, largest_shift]."""
    return X + rng.uniform(-1.0, 1.0, X.shape) * largest_shift


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
    X, y = _digits_as_shipped()
    if scale:
        X = X / float(DIGITS_PIXEL_MAX)  # the digits' pixels are counts 0..16 of set bits in 4x4 blocks
    if images:
        X = X.reshape(-1, 1, *DIGITS_IMAGE_SHAPE)  # the rows hold the pixels row by row
    return X.astype(dtype), y.astype(np.int64)


def _digits_as_shipped():
    """(pixels (1797, 64) float64, digits (1797,)): scikit-learn's digits.csv.gz read as it ships
    (``_read_digits_table``), without importing scikit-learn: that import takes over a second, a third of
    the README's main job. Through sklearn.datasets where the file is not where scikit-learn keeps it."""
    path = _scikit_learn_file("datasets", "data", "digits.csv.gz")
    if path is None:
        sklearn_datasets = require("sklearn.datasets", "sklearn", "loading the 8x8 digits")
        return sklearn_datasets.load_digits(return_X_y=True)
    table = _read_digits_table(path)
    return table[:, :-1], table[:, -1]


def _read_digits_table(path):
    """scikit-learn's digits.csv.gz at ``path``: 1,797 rows of 64 pixel counts (0..16) and the digit (0..9),
    comma-separated, gzip-compressed; a float64 array (1797, 65).

    Raises
    ------
    numnet.errors.CorruptFileError
        When the file is not that table (damaged: scikit-learn's own loader would fail or load wrong digits
        from it), naming the file and saying to reinstall scikit-learn.
    """
    def corrupt(reason):
        return CorruptFileError(f"{path} is not scikit-learn's 8x8 digits table ({reason}); reinstall "
                                "scikit-learn: pip install --force-reinstall scikit-learn")

    try:
        with gzip.open(path, "rt", encoding="ascii") as text:
            table = np.loadtxt(text, delimiter=",", ndmin=2)
    except (OSError, EOFError, zlib.error, ValueError) as error:  # damaged gzip, bytes, or numbers
        raise corrupt(str(error)) from error
    if table.shape != (DIGITS_COUNT, DIGITS_PIXELS + 1):
        raise corrupt(f"shape {table.shape}, not {(DIGITS_COUNT, DIGITS_PIXELS + 1)}")
    limits = np.full(DIGITS_PIXELS + 1, DIGITS_PIXEL_MAX, dtype=np.float64)
    limits[-1] = DIGITS_CLASSES - 1  # the digit
    with np.errstate(invalid="ignore"):  # NaN compares False: refused below
        whole_in_range = (table == np.round(table)) & (table >= 0) & (table <= limits)
    if not whole_in_range.all():
        row, column = (int(index) for index in np.argwhere(~whole_in_range)[0])
        raise corrupt(f"row {row + 1}, column {column + 1} holds {table[row, column]!r}, not a whole number "
                      f"in 0..{int(limits[column])}")
    return table


def _scikit_learn_file(*parts):
    """The path of a file inside the installed scikit-learn package, found without importing it; None where
    scikit-learn is not installed (or its import is blocked) or the file is not there."""
    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError):  # ValueError: a module "sklearn" without a spec
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = pathlib.Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.is_file() else None


# ----------------------------------------------------------------------------------------------------------
# IDX files and MNIST (E5)
# ----------------------------------------------------------------------------------------------------------


def read_idx(path):
    """Read an IDX file (the MNIST format), raw or gzip-compressed.

    Compression is detected from the content (gzip's magic bytes 1f 8b), not from the file name. The header is
    two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64),
    the number of dimensions, then each dimension as a big-endian uint32; the values follow, big-endian.
    The header is checked before the values are read, and a compressed file is inflated in chunks, so the
    memory used never exceeds what the file really holds, whatever its header claims.

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
        For a bad gzip stream, a wrong magic number or type code, more dimensions than NumPy allows (64),
        dimensions too large for any array, or a payload whose length does not match the dimensions
        (truncated or over-long file).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    with open(path, "rb") as file:
        compressed = file.read(len(GZIP_MAGIC)) == GZIP_MAGIC
        file.seek(0)
        if not compressed:
            return _read_idx_stream(file, path, size=os.fstat(file.fileno()).st_size)
        try:
            with gzip.GzipFile(fileobj=file, mode="rb") as stream:
                return _read_idx_stream(stream, path, size=None)
        except (OSError, EOFError, zlib.error) as error:
            raise CorruptFileError(f"{path} is not a valid gzip file ({error}); download it again") from error


def _read_idx_stream(stream, path, *, size):
    """The array in an IDX byte stream; ``size`` is the stream's length when known (an uncompressed file)."""
    dtype, shape, header_size = _parse_idx_header(stream, path)
    expected = math.prod(shape) * dtype.itemsize
    if size is not None and size - header_size != expected:  # known without reading the values
        _raise_wrong_idx_length(path, dtype, shape, header_size, expected, size - header_size)
    payload = _read_at_most(stream, expected + 1)  # one byte more tells an over-long file
    if len(payload) != expected:
        _raise_wrong_idx_length(path, dtype, shape, header_size, expected, len(payload), at_least=True)
    values = np.frombuffer(payload, dtype=dtype)  # a view of the (writable) bytearray: no copy
    if dtype.itemsize > 1 and np.little_endian:  # IDX values are big-endian: swap them in place
        values = values.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return values.reshape(shape)


def _raise_wrong_idx_length(path, dtype, shape, header_size, expected, actual, *, at_least=False):
    """CorruptFileError for values of the wrong length (``at_least``: more may follow ``actual``)."""
    problem = "truncated" if actual < expected else "longer than its header says"
    found = f"at least {actual}" if at_least and actual > expected else str(actual)
    raise CorruptFileError(
        f"IDX file {path} is {problem}: dimensions {shape} of {dtype.itemsize}-byte values need "
        f"{expected} bytes of data after the {header_size}-byte header, found {found}; download the file again"
    )


def _read_at_most(stream, limit):
    """Up to ``limit`` bytes of ``stream``, read in chunks so that memory follows what the stream holds.

    Each chunk is as large as what has arrived so far (64 kB at first): a read of n bytes may allocate n
    at once, so doubling keeps memory within twice the content while large files take few reads.
    """
    payload = bytearray()
    while len(payload) < limit:
        chunk = stream.read(min(max(IDX_FIRST_CHUNK_BYTES, len(payload)), limit - len(payload)))
        if not chunk:
            break
        payload += chunk
    return payload


def _parse_idx_header(stream, path):
    """Return (big-endian dtype, shape, header size in bytes), read from the start of an IDX stream."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise CorruptFileError(
            f"{path} is too short to be an IDX file: {len(magic)} bytes, but the magic number alone takes 4"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise CorruptFileError(
            f"{path} is not an IDX file: its magic number starts with bytes {magic[0]:#04x} {magic[1]:#04x}, "
            "expected 0x00 0x00"
        )
    type_code, n_dimensions = magic[2], magic[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"{code:#04x}" for code in IDX_DTYPES)
        raise CorruptFileError(f"{path} has unknown IDX type code {type_code:#04x}; known codes are {known}")
    if not 1 <= n_dimensions <= IDX_MAX_DIMENSIONS:
        raise CorruptFileError(
            f"{path} declares {n_dimensions} dimensions; an IDX file needs at least one, and NumPy arrays "
            f"have at most {IDX_MAX_DIMENSIONS}"
        )
    header_size = 4 + IDX_DIMENSION_BYTES * n_dimensions
    sizes = stream.read(header_size - 4)
    if len(sizes) < header_size - 4:
        raise CorruptFileError(
            f"{path} is truncated inside its header: {n_dimensions} dimensions need a {header_size}-byte "
            f"header, the file has {4 + len(sizes)} bytes"
        )
    shape = struct.unpack(f">{n_dimensions}I", sizes)
    dtype = IDX_DTYPES[type_code]
    # Python's ints cannot overflow, NumPy's sizes can: a product beyond NumPy's index range is refused
    # here, zero-sized dimensions aside (NumPy refuses such shapes even when one dimension is 0).
    if math.prod(size for size in shape if size) * dtype.itemsize > np.iinfo(np.intp).max:
        raise CorruptFileError(
            f"{path} declares dimensions {shape}, whose product is too large for any array; the header is damaged"
        )
    return dtype, shape, header_size


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
    """Download ``url`` to ``destination`` with numnet's atomic-write helper, checking its SHA-256 first.

    The digest is taken while the bytes stream to the temporary file; a mismatch aborts the write, so an
    interrupted or forged download never appears under the real name for the next run to trust.
    """

    def copy_and_check(stream):
        digest = hashlib.sha256()
        with opener(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
            for chunk in iter(lambda: response.read(DOWNLOAD_CHUNK_BYTES), b""):
                digest.update(chunk)
                stream.write(chunk)
        _check_sha256(digest.hexdigest(), sha256, destination)

    write_atomically(destination, copy_and_check)


def _check_sha256(actual, expected, path):
    """Raise CorruptFileError naming ``path`` unless the hex digests ``actual`` and ``expected`` agree."""
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
        The sorted unique class labels, so ``classes[y]`` gives the labels as written in the file: int64 for
        integer labels (an object array of Python ints when one is beyond int64's range, so that none wraps
        or merges), an object array of str for text labels; None for a regression target.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple
    target_name: str
    classes: np.ndarray = None


def load_csv(path, target=-1, *, delimiter=",", header="infer", dtype="float32"):
    """Read a CSV file of numeric features and one target column (experiment E7).

    The target decides the task: integers (``7``, ``-3``, also ``7.0``) or text are class labels (``y``
    holds indices into ``classes``, the sorted unique labels, kept exactly as written); any other numbers
    make a regression target (``y`` floats, ``classes`` None). Blank lines are skipped. The file must be
    UTF-8 (a byte-order mark is allowed); quoting follows RFC 4180.

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
        The dtype of ``X`` (and of ``y`` for regression); a value beyond its range is an error, not inf.

    Returns
    -------
    Dataset
        With ``X`` (n_samples, n_features), ``y`` (n_samples,), the feature and target names (``column_<i>``
        without a header) and ``classes``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    numnet.errors.DataFileError
        (a ValueError) For text that is not UTF-8, a quote that is never closed, a missing value (empty, NA,
        n/a, nan, null, ?), a non-numeric, infinite or out-of-range feature, a row with the wrong number of
        fields, an unknown target, or a file without data; the message names the file, the line and the
        column.
    ValueError, TypeError
        For a ``header`` or ``target`` argument of the wrong kind.
    """
    dtype = backend.resolve_dtype(dtype)
    if header not in ("infer", True, False):
        raise ValueError(f'header must be "infer", True or False, got {header!r}')
    path = pathlib.Path(path)
    rows = _read_csv_rows(path, delimiter)
    target_index = _target_index(target, rows[0][1], header, path)
    names, data = _split_header(rows, target_index, target, header, path)
    _check_row_lengths(data, len(names), path)
    feature_columns = [i for i in range(len(names)) if i != target_index]
    X = _parse_features(data, feature_columns, names, path, dtype)
    y, classes = _parse_target(data, target_index, names[target_index], path, dtype)
    feature_names = tuple(names[i] for i in feature_columns)
    return Dataset(X=X, y=y, feature_names=feature_names, target_name=names[target_index], classes=classes)


def load_csv_features(path, n_features, *, feature_names=None, delimiter=",", dtype="float32"):
    """Read a CSV file of feature rows for a trained model (what ``numnet predict`` reads).

    The file is read by the same rules as :func:`load_csv` (UTF-8, quoting, missing values, finite numbers
    in ``dtype``'s range, the same messages). The first row is a header when any field is text. With a
    header that names every one of ``feature_names``, those columns are used in that order and any others
    (a label, an id) are ignored; otherwise the file must have exactly ``n_features`` columns.

    Parameters
    ----------
    path : str or os.PathLike
    n_features : int
        The number of features the model expects.
    feature_names : sequence of str, optional
        The training columns' names, to pick them out of a file with a header.
    delimiter : str, default ","
    dtype : str or numpy dtype, default "float32"

    Returns
    -------
    numpy.ndarray, shape (n_samples, n_features), of ``dtype``

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    numnet.errors.DataFileError
        (a ValueError) For the problems :func:`load_csv` reports, and a file with another number of columns.
    TypeError
        When ``feature_names`` is not a sequence of str.
    """
    dtype = backend.resolve_dtype(dtype)
    n_features = check_integer(n_features, "n_features")
    if feature_names is not None and (isinstance(feature_names, str)
                                      or not all(isinstance(name, str) for name in feature_names)):
        raise TypeError(f"feature_names must be a sequence of column names (str), got {feature_names!r}")
    path = pathlib.Path(path)
    rows = _read_csv_rows(path, delimiter)
    first_line, first_row = rows[0]
    has_header = _is_header(first_row)
    names = first_row if has_header else [f"column_{i}" for i in range(len(first_row))]
    if has_header and feature_names and all(name in first_row for name in feature_names):
        columns = [first_row.index(name) for name in feature_names]
    elif len(first_row) == n_features:
        columns = list(range(n_features))
    else:
        raise DataFileError(
            f"{path} has {len(first_row)} columns but the model expects {n_features} features; give one "
            "column per feature (or a header naming the training columns)"
        )
    data = rows[1:] if has_header else rows
    if not data:
        raise DataFileError(f"{path} has a header (line {first_line}) but no data rows")
    _check_row_lengths(data, len(first_row), path)
    return _parse_features(data, columns, names, path, dtype)


def _read_csv_rows(path, delimiter):
    """All non-blank rows of the file as (line number where the row starts, stripped fields)."""
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    text = _read_utf8(path)
    # newline="" hands line endings inside quoted fields to csv untouched, as the csv module requires;
    # strict=True makes a quote that is never closed an error instead of a field swallowing the file's rest.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows, row_start = [], 1
    try:
        for fields in reader:
            if any(field.strip() for field in fields):
                rows.append((row_start, [field.strip() for field in fields]))
            row_start = reader.line_num + 1
    except csv.Error as error:
        raise DataFileError(_csv_error_message(path, error, row_start, reader.line_num)) from error
    if not rows:
        raise DataFileError(f"{path} contains no data rows")
    return rows


def _read_utf8(path):
    """The file's text, without a leading byte-order mark; DataFileError at the first byte that is not UTF-8."""
    return _read_text(path, "utf-8", advice="save the file as UTF-8 (a spreadsheet program's \"CSV UTF-8\")")


def _read_text(path, encoding, *, advice):
    """The file's text in ``encoding`` (UTF-8 without a leading byte-order mark); DataFileError naming the
    line and byte offset of the first byte that is not text in that encoding, then ``advice``."""
    raw = path.read_bytes()
    is_utf8 = codecs.lookup(encoding).name == "utf-8"
    start = len(UTF8_BOM) if is_utf8 and raw.startswith(UTF8_BOM) else 0  # spreadsheet programs write a BOM
    try:
        return raw[start:].decode(encoding)
    except UnicodeDecodeError as error:
        offset = start + error.start
        line = _line_breaks_before(raw, offset) + 1
        raise DataFileError(
            f"{path}, line {line}: not {'UTF-8' if is_utf8 else encoding} text (byte {raw[offset]:#04x} at "
            f"offset {offset}: {error.reason}); {advice}"
        ) from None


def _line_breaks_before(raw, offset):
    """How many line breaks (\\n, \\r\\n or a lone \\r) the bytes hold before ``offset``."""
    return raw.count(b"\n", 0, offset) + raw.count(b"\r", 0, offset) - raw.count(b"\r\n", 0, offset)


def _csv_error_message(path, error, row_start, line):
    """What csv's error means, naming the line where the row that failed starts."""
    if "unexpected end of data" in str(error):
        return (f"{path}, line {row_start}: a quoted field opened in this row is never closed, so it would "
                'take in the rest of the file; close the quote (a quote inside a quoted field is written "")')
    return f"{path}, line {line}: not valid CSV ({error})"


def _target_index(target, first_row, header, path):
    """Resolve ``target`` to a column index; names are looked up in the first row (the header)."""
    n_columns = len(first_row)
    if n_columns < 2:
        raise DataFileError(
            f"{path} has {n_columns} column; it needs at least one feature and a target column"
        )
    if isinstance(target, str):
        if header is False:
            raise ValueError(
                f"target={target!r} is a column name, which needs a header; pass header=True or a column index"
            )
        if first_row.count(target) != 1:
            problem = "is not a column" if target not in first_row else "names several columns"
            raise DataFileError(
                f"target {target!r} {problem} of {path}; the header has: {', '.join(first_row)}"
            )
        return first_row.index(target)
    if isinstance(target, bool) or not isinstance(target, numbers.Integral):
        raise TypeError(
            f"target must be a column index (int) or name (str), got {type(target).__name__}: {target!r}"
        )
    if not -n_columns <= target < n_columns:
        raise DataFileError(f"target index {target} is out of range for {path}, which has {n_columns} columns")
    return int(target) % n_columns


def _split_header(rows, target_index, target, header, path):
    """Return (column names, data rows), taking the first row as a header when there is one."""
    first_line, first_row = rows[0]
    if header == "infer":
        header = isinstance(target, str) or _is_header(first_row, skip=target_index)
    if not header:
        return [f"column_{i}" for i in range(len(first_row))], rows
    if len(rows) < 2:
        raise DataFileError(f"{path} has a header (line {first_line}) but no data rows")
    return first_row, rows[1:]


def _is_header(fields, skip=None):
    """Whether a first row is a header: one of its fields (but the target's) is text, not a number."""
    return any(not _is_missing(field) and _to_number(field) is None
               for i, field in enumerate(fields) if i != skip)


def _check_row_lengths(data, n_columns, path):
    """Raise DataFileError naming the first row whose field count differs from the header's."""
    for line, fields in data:
        if len(fields) != n_columns:
            raise DataFileError(
                f"{path}, line {line}: found {len(fields)} fields, expected {n_columns} like the first row; "
                "check for a missing or extra delimiter"
            )


def _parse_features(data, columns, names, path, dtype):
    """The feature columns as a (n_samples, n_features) array of ``dtype``, or DataFileError at a bad field."""
    try:  # the common case, every field a finite number, in one pass
        X = np.array([[float(fields[i]) for i in columns] for _, fields in data], dtype=np.float64)
    except ValueError:
        X = None
    if X is None or not np.isfinite(X).all():  # find and name the first bad field ("nan" is a marker too)
        X = np.array([[_parse_feature(fields[i], line, names[i], path) for i in columns] for line, fields in data],
                     dtype=np.float64)
    return _in_dtype(X, dtype, lambda row, column: _field_at(data, columns, names, path, row, column))


def _parse_feature(field, line, name, path):
    """One feature value as a finite float, or DataFileError naming the file, line and column."""
    where = f"{path}, line {line}, column {name!r}"
    if _is_missing(field):
        raise DataFileError(f"{where}: missing value ({field!r}); fill in or drop the incomplete rows first")
    value = _to_number(field)
    if value is None:
        raise DataFileError(f"{where}: {field!r} is not a number; feature columns must be numeric")
    if not math.isfinite(value):
        raise DataFileError(f"{where}: {field!r} is not finite; feature values must be finite numbers")
    return value


def _in_dtype(values, dtype, field_at):
    """``values`` (finite float64) cast to ``dtype``, or DataFileError for one that would become infinite.

    ``field_at(row, column)`` gives (where, text) of an entry for the message.
    """
    with np.errstate(over="ignore"):
        cast = values.astype(dtype)
    overflowed = np.isinf(cast)
    if overflowed.any():
        where, text = field_at(*(int(i) for i in np.argwhere(overflowed)[0]))
        raise DataFileError(
            f"{where}: {text!r} is beyond the range of {dtype.name} (magnitudes up to "
            f"{float(np.finfo(dtype).max):.4g}); read the file with dtype='float64' or rescale the column"
        )
    return cast


def _field_at(data, columns, names, path, row, column):
    """(where, text) of the field in data row ``row`` and selected column ``column``."""
    line, fields = data[row]
    return f"{path}, line {line}, column {names[columns[column]]!r}", fields[columns[column]]


def _parse_target(data, target_index, target_name, path, dtype):
    """Return (y, classes): class indices and labels, or regression floats and None."""
    for line, fields in data:
        if _is_missing(fields[target_index]):
            raise DataFileError(f"{path}, line {line}, column {target_name!r}: missing target value")
    texts = [fields[target_index] for _, fields in data]
    if all(INTEGER_LABEL.fullmatch(text) for text in texts):
        return _integer_classes(texts, data, target_name, path)
    numbers_read = [_to_number(text) for text in texts]
    if any(value is None or not math.isfinite(value) for value in numbers_read):
        # An object array holds each label at its own length; a fixed-width str array would give every
        # label the longest one's, a cost quadratic in the file's size.
        return preprocessing.label_encode(np.array(texts, dtype=object))
    values = np.array(numbers_read, dtype=np.float64)
    y = _in_dtype(values.reshape(-1, 1), dtype, lambda row, column: (
        f"{path}, line {data[row][0]}, column {target_name!r}", texts[row]))
    return y.reshape(-1), None


def _integer_classes(texts, data, target_name, path):
    """(indices, classes) of integer labels, read exactly: int64 when every one fits, Python ints otherwise."""
    labels = []
    for text, (line, _) in zip(texts, data):
        try:
            labels.append(int(text.partition(".")[0]))
        except ValueError as error:  # beyond Python's int-string limit (4,300 digits by default)
            raise DataFileError(f"{path}, line {line}, column {target_name!r}: the label is an integer of "
                                f"{len(text)} characters, too long to read ({error})") from None
    if all(INT64_RANGE[0] <= label <= INT64_RANGE[1] for label in labels):
        return preprocessing.label_encode(np.array(labels, dtype=np.int64))
    return preprocessing.label_encode(np.array(labels, dtype=object))


def _is_missing(field):
    """Whether ``field`` is one of the missing-value markers."""
    return field.strip().lower() in MISSING_MARKERS


def _to_number(field):
    """``field`` as a float, or None when it is not a number."""
    try:
        return float(field)
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------------------------
# Text for language models (numnet.text)
# ----------------------------------------------------------------------------------------------------------


def load_text(path, *, encoding="utf-8"):
    r"""Read a text file for a language model: its whole text, line breaks as ``\n``.

    Line breaks are read as one character whatever the file uses (``\r\n``, ``\r``), so a model learns
    the same text on every system; a UTF-8 byte-order mark is dropped.

    Parameters
    ----------
    path : str or os.PathLike
    encoding : str, default "utf-8"
        Any encoding Python's codecs know ("latin-1", "cp1252", ...).

    Returns
    -------
    str

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    IsADirectoryError
        When ``path`` is a folder.
    numnet.errors.DataFileError
        (a ValueError) For bytes that are not text in ``encoding`` (the message names the line and the byte
        offset) or a file without text.
    ValueError
        For an encoding Python does not know.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "poem.txt"
    >>> _ = path.write_bytes("line one\r\nline two\r\n".encode("utf-8"))
    >>> load_text(path)
    'line one\nline two\n'
    """
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError) as error:
        raise ValueError(f"unknown text encoding {encoding!r}; give one of Python's codecs, such as 'utf-8' or "
                         "'latin-1'") from error
    path = pathlib.Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the path of a text file inside it")
    if not path.is_file():
        raise FileNotFoundError(f"text file not found: {path}")
    advice = ("save the file as UTF-8, or give its encoding (load_text(path, encoding='latin-1'))"
              if codecs.lookup(encoding).name == "utf-8" else "give the file's own encoding")
    text = _read_text(path, encoding, advice=advice)
    if not text:
        raise DataFileError(f"{path} is empty: there is no text to learn from")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load_names(kind="all"):
    r"""The US census name lists (1990) as text: one lowercase name per line, for learning to make names.

    The lists ship as data files in the ``names`` package on PyPI (MIT licence, the data public domain),
    installed with numnet's ``text`` extra: 4,275 female and 1,219 male first names and 88,799 last names.
    The names come in a fixed order, the same on every Python version and system: first names (the female
    list, then the male), then last names, each list with the most common name first; a name on several
    lists stays at its first place. This is the task of Karpathy's *makemore*: a character-level model
    trained on the lines generates new, name-like ones (:func:`numnet.text.generate` with the prompt
    ``"\n"``).

    Parameters
    ----------
    kind : {"all", "first", "last"}, default "all"
        All 91,910 distinct names, the 5,163 first names or the 88,799 last names.

    Returns
    -------
    str
        The names, each followed by ``\n``.

    Raises
    ------
    numnet.errors.MissingDependencyError
        When the ``names`` package is not installed (``pip install 'numnet[text]'``), or lacks its lists.
    ValueError
        For another ``kind``.

    Examples
    --------
    >>> load_names("first").splitlines()[:4]
    ['mary', 'patricia', 'linda', 'barbara']
    """
    if kind not in NAMES_FILES:
        raise ValueError(f"kind must be one of {', '.join(sorted(NAMES_FILES))}, got {kind!r}")
    package = require("names", "text", "loading the census name lists")
    names = {}  # a dict keeps the first place of each name, in order
    for file_name in NAMES_FILES[kind]:
        resource = importlib.resources.files(package).joinpath(file_name)
        if not resource.is_file():
            raise MissingDependencyError(f"the installed names package has no {file_name} list; reinstall it "
                                         "with: pip install --force-reinstall 'names>=0.3'")
        # Each line: NAME, its frequency (%), the cumulative frequency, its rank
        for line in resource.read_text(encoding="ascii").splitlines():
            if line.strip():
                names.setdefault(line.split()[0].lower(), None)
    return "".join(f"{name}\n" for name in names)


# ----------------------------------------------------------------------------------------------------------
# Toy sets for sequence-to-sequence models (Deep Learning from Scratch 2, chapter 7)
# ----------------------------------------------------------------------------------------------------------

#: The symbol every answer of :func:`load_addition` and :func:`load_dates` starts with, as in the book: the
#: first input of the decoder, whose id is ``vocabulary.encode(START_SYMBOL)[0]``.
START_SYMBOL = "_"
#: The examples in each toy set, as many as the lines of the book's addition.txt and date.txt.
SEQUENCE_EXAMPLES = 50_000
#: The default seed of the toy sets: the seed of the book's ``sequence.load_data``.
SEQUENCE_SEED = 1984
ADDITION_MAX_DIGITS = 3
ADDITION_WIDTHS = (7, 5)  # the longest question "999+999", the longest answer "_1998"
DATES_WIDTHS = (29, 11)  # the longest question "wednesday, september 30, 1987", the answer "_1987-09-30"
FIRST_DATE = datetime.date(1970, 1, 1)
LAST_DATE = datetime.date(2017, 12, 31)
# English names written out, not strftime's %B and %A, which follow the machine's locale
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")  # date.weekday()
#: The book's families of date questions (date.txt): ``August 19, 2003``, ``Sep 30, 1981``,
#: ``Tuesday, September 25, 1984`` and ``2/10/93``, each written in :data:`DATE_CASINGS`.
DATE_FORMATS = ("{month} {day}, {year}", "{month_abbreviation} {day}, {year}", "{weekday}, {month} {day}, {year}",
                "{month_number}/{day}/{short_year}")
#: The book's casings of a date question: ``september 27, 1994``, ``September 27, 1994``, ``SEPTEMBER 27, 1994``.
DATE_CASINGS = (str.lower, str.title, str.upper)


@declare(seed=Seed())
def load_addition(*, seed=SEQUENCE_SEED):
    """The book's addition set: 50,000 sums such as ``"16+75  _91  "``, as token ids for a seq2seq model.

    *Deep Learning from Scratch 2*'s addition.txt, generated the same way rather than downloaded: each of
    the two numbers has 1 to 3 digits (the count drawn uniformly, then each digit, so ``07`` is 7), and no
    two questions add the same two numbers (``16+75`` or ``75+16``, whichever was drawn first), so the few
    sums of small numbers come early and the later lines are mostly of 2 and 3 digits, as in the book's
    file. The lines are laid out as the book's ``sequence.load_data`` lays them out: the question padded
    with spaces to 7 characters, the answer (:data:`START_SYMBOL`, then the sum) to 5, the space a symbol
    like any other; the rows are shuffled and the last tenth held out for testing (45,000 and 5,000 rows).

    The vocabulary holds the symbols in the order they first appear in the lines (a question, then its
    answer), as the book's ``get_vocab`` numbers them, but its ids are the book's plus 1: id 0 is the
    unknown token of :class:`numnet.text.Vocabulary`. The start token's id is
    ``vocabulary.encode(START_SYMBOL)[0]``.

    Parameters
    ----------
    seed : int, numpy.random.Generator or None, default 1984
        The draws of the numbers and of the shuffle: the same seed gives the same set on every machine.

    Returns
    -------
    (X_train, Y_train), (X_test, Y_test) : numpy.ndarray of int64
        Question ids (n, 7) and answer ids (n, 5); n is 45,000 and 5,000.
    vocabulary : numnet.text.Vocabulary
        The 13 symbols (digits, ``+``, space, ``_``) and the unknown token: 14 ids.

    Raises
    ------
    TypeError, ValueError
        For a seed that is not a non-negative integer, a Generator or None.

    Examples
    --------
    >>> (X_train, Y_train), (X_test, Y_test), vocabulary = load_addition()
    >>> X_train.shape, Y_train.shape, X_test.shape, len(vocabulary)
    ((45000, 7), (45000, 5), (5000, 7), 14)
    >>> vocabulary.decode(X_train[0]) + vocabulary.decode(Y_train[0])
    '48+425 _473 '
    """
    rng = np.random.default_rng(seed)
    return _sequence_set(_distinct_examples(_draw_additions, rng, _write_addition), ADDITION_WIDTHS, rng)


@declare(seed=Seed())
def load_dates(*, seed=SEQUENCE_SEED):
    """The book's date set: 50,000 dates as people write them, each with its ISO form, for a seq2seq model.

    *Deep Learning from Scratch 2*'s date.txt, generated the same way rather than downloaded: a day of
    1970-2017 drawn uniformly, written in one of the book's families (:data:`DATE_FORMATS`: ``August 19,
    2003``, ``Sep 30, 1981``, ``Tuesday, September 25, 1984`` with the date's true weekday, ``2/10/93``)
    and casings (:data:`DATE_CASINGS`: ``september``, ``September``, ``SEPTEMBER``), each drawn uniformly;
    no question appears twice. The question is padded with spaces to 29 characters and the answer,
    :data:`START_SYMBOL` followed by the date as ``YYYY-MM-DD``, has 11. The rows are shuffled and the last
    tenth held out for testing, as :func:`load_addition` does.

    The vocabulary numbers the symbols in the order they first appear (ids the book's plus 1; id 0 is the
    unknown token); the start token's id is ``vocabulary.encode(START_SYMBOL)[0]``.

    Parameters
    ----------
    seed : int, numpy.random.Generator or None, default 1984
        The draws of the dates, their formats and the shuffle.

    Returns
    -------
    (X_train, Y_train), (X_test, Y_test) : numpy.ndarray of int64
        Question ids (n, 29) and answer ids (n, 11); n is 45,000 and 5,000.
    vocabulary : numnet.text.Vocabulary
        The letters of the month and weekday names in both cases, the digits, ``,``, ``/``, ``-``, space
        and ``_``.

    Raises
    ------
    TypeError, ValueError
        For a seed that is not a non-negative integer, a Generator or None.

    Examples
    --------
    >>> (X_train, Y_train), (X_test, Y_test), vocabulary = load_dates()
    >>> X_train.shape, Y_train.shape, X_test.shape
    ((45000, 29), (45000, 11), (5000, 29))
    >>> vocabulary.decode(X_train[0]) + vocabulary.decode(Y_train[0])
    'Wednesday, May 9, 2007       _2007-05-09'
    """
    rng = np.random.default_rng(seed)
    return _sequence_set(_distinct_examples(_draw_dates, rng), DATES_WIDTHS, rng)


def _draw_additions(rng, size):
    """``size`` keys and rows ``[16, 75]`` of two numbers, each of 1 to 3 uniform digits (the count drawn, then
    each digit); the key is the two numbers in order, so 16+75 and 75+16 are one sum, kept once."""
    digits = rng.integers(1, ADDITION_MAX_DIGITS + 1, size=(size, 2))
    terms = rng.integers(0, 10 ** digits)  # (size, 2); d uniform digits, leading zeros and all
    keys = terms.min(axis=1) * 10 ** ADDITION_MAX_DIGITS + terms.max(axis=1)
    return keys.tolist(), terms.tolist()


def _write_addition(a, b):
    """The question and answer of a + b: ``("16+75", "91")``."""
    return f"{a}+{b}", str(a + b)


def _draw_dates(rng, size):
    """``size`` questions and answers ``("Sep 30, 1981", "1981-09-30")``: a uniform day, format and casing."""
    days = rng.integers(FIRST_DATE.toordinal(), LAST_DATE.toordinal() + 1, size=size)
    formats = rng.integers(len(DATE_FORMATS), size=size)
    casings = rng.integers(len(DATE_CASINGS), size=size)
    questions, answers = [], []
    for day, form, casing in zip(days.tolist(), formats.tolist(), casings.tolist()):
        date = datetime.date.fromordinal(day)
        questions.append(DATE_CASINGS[casing](DATE_FORMATS[form].format(**_date_fields(date))))
        answers.append(date.isoformat())
    return questions, answers


def _date_fields(date):
    """The fields of :data:`DATE_FORMATS` for ``date``, in English."""
    month = MONTHS[date.month - 1]
    return {"weekday": WEEKDAYS[date.weekday()], "month": month, "month_abbreviation": month[:3],
            "day": date.day, "month_number": date.month, "year": date.year, "short_year": f"{date.year % 100:02d}"}


def _distinct_examples(draw, rng, write=None, n_examples=SEQUENCE_EXAMPLES):
    """``n_examples`` examples from ``draw(rng, size)``, which gives ``size`` keys and rows: the first row of
    each key, in the order drawn, so that no test question is a training question. ``write(*row)`` makes a
    row a (question, answer) pair; without it, the key is the question and the row its answer."""
    kept = {}
    while len(kept) < n_examples:
        keys, rows = draw(rng, n_examples - len(kept))
        for key, row in zip(keys, rows):
            kept.setdefault(key, row)
    return list(kept.items()) if write is None else [write(*row) for row in kept.values()]


def _sequence_set(examples, widths, rng):
    """What the book's ``load_data`` and ``get_vocab`` give for (question, answer) pairs: padded ids, the
    vocabulary in order of first appearance, and the book's shuffled split."""
    question_width, answer_width = widths
    questions = [question.ljust(question_width) for question, _ in examples]
    answers = [(START_SYMBOL + answer).ljust(answer_width) for _, answer in examples]
    lines = "".join(question + answer for question, answer in zip(questions, answers))
    vocabulary = Vocabulary(tuple(dict.fromkeys(lines)), level="char")  # a dict keeps first appearances
    X = _encode_ascii(vocabulary, "".join(questions)).reshape(len(examples), question_width)
    Y = _encode_ascii(vocabulary, "".join(answers)).reshape(len(examples), answer_width)
    return (*_book_split(X, Y, rng), vocabulary)


def _encode_ascii(vocabulary, text):
    """``vocabulary.encode(text)`` for an ASCII text of known symbols, all characters at once: encode reads
    one character at a time, a second for the 1.5 million of the date set."""
    symbols = "".join(vocabulary.symbols)
    ids = np.zeros(128, dtype=np.int64)  # by ASCII code
    ids[np.frombuffer(symbols.encode("ascii"), dtype=np.uint8)] = vocabulary.encode(symbols)
    return ids[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]


def _book_split(X, Y, rng):
    """The book's split: rows shuffled together, the last ``len // 10`` of them the test set."""
    order = rng.permutation(len(X))
    X, Y = X[order], Y[order]
    split = len(X) - len(X) // 10
    return (X[:split], Y[:split]), (X[split:], Y[split:])
