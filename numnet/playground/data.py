"""The points a playground session learns from: the data sets in the square [-6, 6]², an uploaded CSV, the split.

Every data set comes from a generator in numnet.datasets, mapped into the square the page draws; an
uploaded CSV is read by numnet.datasets.load_csv from a temporary folder (and nowhere else) and scaled into
the square. The same steps, written as code, open the script the page exports (see :meth:`PlaneData.code`),
so the script sees exactly these points.
"""

import dataclasses
import pathlib
import tempfile

import numpy as np

from numnet import datasets
from numnet.preprocessing import MinMaxScaler, train_test_split

from .settings import MAX_SAMPLES, UPLOADED_DATASET, SettingsError

#: The page draws the square [-DOMAIN, DOMAIN]², as TensorFlow Playground does.
DOMAIN = datasets.PLANE_HALF_WIDTH
#: An uploaded file's points are scaled into [-CSV_EXTENT, CSV_EXTENT]², leaving a margin inside the square.
CSV_EXTENT = 5.0
#: The page has a colour for at most this many classes.
MAX_CLASSES = 10
UPLOAD_FILE_NAME = "upload.csv"


@dataclasses.dataclass(frozen=True)
class Generator:
    """A data set of the page: a numnet.datasets generator, its arguments, and its map into the square.

    ``arguments`` turns (n_samples, noise, seed) into the generator's keyword arguments. The generator's
    points are then moved into the square: ``(X - centre) * stretch``, in float32.
    """

    problem: str
    function: object
    arguments: object
    centre: tuple = (0.0, 0.0)
    stretch: float = 1.0

    def make(self, n_samples, noise, seed):
        """(X, y) in the square: X float32 (n, 2); y int64 classes (n,) or float32 targets (n, 1)."""
        X, y = self.function(**self.arguments(n_samples, noise, seed))
        if self.centre != (0.0, 0.0):
            X = X - np.array(self.centre, dtype=np.float32)
        if self.stretch != 1.0:
            X = X * np.float32(self.stretch)
        return X, y

    def code(self, n_samples, noise, seed):
        """The lines of Python that make the same (X, y)."""
        options = ", ".join(f"{key}={value!r}" for key, value in self.arguments(n_samples, noise, seed).items())
        lines = [f"X, y = datasets.{self.function.__name__}({options})"]
        if self.centre != (0.0, 0.0):
            lines.append(f"X = X - np.array({list(self.centre)!r}, dtype=np.float32)")
        if self.stretch != 1.0:
            lines.append(f"X = X * np.float32({self.stretch!r})  # into the square [-{DOMAIN:g}, {DOMAIN:g}]²")
        return lines


def _plane_arguments(n_samples, noise, seed):
    return {"n_samples": n_samples, "noise": noise, "seed": seed}


def _spiral_arguments(n_samples, noise, seed):
    # Two arms, as in the Playground; numnet's spiral noise is the standard deviation of the angle.
    return {"n_per_class": n_samples // 2, "n_classes": 2, "noise": noise, "seed": seed}


GENERATORS = {
    "circle": Generator("classification", datasets.make_circle, _plane_arguments),
    "xor": Generator("classification", datasets.make_xor_quadrants, _plane_arguments),
    "gauss": Generator("classification", datasets.make_gauss, _plane_arguments),
    # numnet's spiral has radius 1; the Playground's has radius 5.
    "spiral": Generator("classification", datasets.make_spiral, _spiral_arguments, stretch=5.0),
    # The moons span [-1, 2] x [-0.5, 1]; centred and stretched four times they span [-6, 6] x [-3, 3].
    "moons": Generator("classification", datasets.make_moons, _plane_arguments, centre=(0.5, 0.25), stretch=4.0),
    "plane": Generator("regression", datasets.make_plane, _plane_arguments),
    "multigauss": Generator("regression", datasets.make_multi_gaussian, _plane_arguments),
}


@dataclasses.dataclass(frozen=True)
class Upload:
    """A CSV file the user uploaded: two features and a target, already read and checked."""

    file_name: str
    X: np.ndarray  # (n_samples, 2) float32, in the file's units
    y: np.ndarray  # (n_samples,) int64 class indices, or float32 targets
    classes: tuple = None  # the labels as written in the file; None for a regression target

    @property
    def problem(self):
        return "regression" if self.classes is None else "classification"


@dataclasses.dataclass(frozen=True)
class PlaneData:
    """A session's points, split into training and test points.

    Attributes
    ----------
    X_train, X_test : numpy.ndarray of float32, shape (n, 2)
        Coordinates in the square.
    y_train, y_test : numpy.ndarray
        int64 class indices (n,) for classification; float32 targets (n, 1) for regression.
    class_names : tuple of str or None
    code : tuple of str
        The lines of Python that rebuild exactly these arrays (for the exported script).
    """

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    code: tuple

    @property
    def n_classes(self):
        return None if self.class_names is None else len(self.class_names)

    @property
    def target_range(self):
        """(lowest, highest) target over all points (regression), for the colour scale."""
        both = np.concatenate([self.y_train.ravel(), self.y_test.ravel()])
        return float(both.min()), float(both.max())


def make_data(settings, upload=None):
    """The points for ``settings``: drawn by the data set's generator, or the session's upload, then split.

    Raises
    ------
    SettingsError
        For dataset "csv" without an uploaded file, or an uploaded file of the other problem type.
    """
    if settings.dataset == UPLOADED_DATASET:
        X, y, class_names, code = _uploaded_points(settings, upload)
    else:
        generator = GENERATORS[settings.dataset]
        X, y = generator.make(settings.n_samples, settings.noise, settings.data_seed)
        class_names = ("0", "1") if generator.problem == "classification" else None
        code = generator.code(settings.n_samples, settings.noise, settings.data_seed)
    n_test = X.shape[0] - round(settings.train_fraction * X.shape[0])
    stratify = class_names is not None
    X_train, X_test, y_train, y_test = train_test_split(X, y, n_test, stratify=stratify, seed=settings.data_seed)
    code = [*code, f"X_train, X_test, y_train, y_test = preprocessing.train_test_split(X, y, {n_test}, "
                   f"stratify={stratify}, seed={settings.data_seed})"]
    return PlaneData(X_train, X_test, y_train, y_test, class_names, tuple(code))


def _uploaded_points(settings, upload):
    """(X in the square, y, class names, code) of the session's uploaded file."""
    if upload is None:
        raise SettingsError("dataset", "'csv' needs a CSV file: upload one first")
    if upload.problem != settings.problem:
        raise SettingsError("problem", f"the uploaded file {upload.file_name!r} holds a {upload.problem} "
                                       f"target; set problem to {upload.problem!r}")
    scaler = MinMaxScaler(feature_range=(-CSV_EXTENT, CSV_EXTENT)).fit(upload.X)
    y = upload.y if upload.classes is not None else upload.y.reshape(-1, 1)
    code = [f"data = datasets.load_csv({upload.file_name!r})  # the file uploaded to the playground",
            f"X = preprocessing.MinMaxScaler(feature_range=({-CSV_EXTENT:g}, {CSV_EXTENT:g})).fit(data.X)"
            ".transform(data.X)",
            "y = data.y" if upload.classes is not None else "y = data.y.reshape(-1, 1)"]
    names = None if upload.classes is None else tuple(str(label) for label in upload.classes)
    return scaler.transform(upload.X), y, names, code


def read_upload(file_name, text):
    """Read an uploaded CSV with numnet.datasets.load_csv, from a temporary folder removed right after.

    Parameters
    ----------
    file_name : str
        The name the user's file had (shown in messages and in the exported script).
    text : str
        The file's content.

    Returns
    -------
    Upload

    Raises
    ------
    SettingsError
        (field "file") for anything load_csv refuses, a file without exactly two feature columns, more
        than MAX_SAMPLES rows, or fewer than two or more than MAX_CLASSES classes.
    """
    with tempfile.TemporaryDirectory(prefix="numnet-playground-") as folder:
        path = pathlib.Path(folder) / UPLOAD_FILE_NAME
        path.write_text(text, encoding="utf-8")
        try:
            data = datasets.load_csv(path, target=-1, dtype="float32")
        except ValueError as error:
            # The message names the temporary path; the user knows the file by its own name.
            raise SettingsError("file", str(error).replace(str(path), file_name)) from None
    _check_upload_shape(file_name, data)
    classes = None if data.classes is None else tuple(data.classes.tolist())
    return Upload(file_name=file_name, X=data.X, y=data.y, classes=classes)


def _check_upload_shape(file_name, data):
    n_samples, n_features = data.X.shape
    if n_features != 2:
        raise SettingsError("file", f"{file_name} has {n_features} feature columns; the playground draws points "
                                    "in the plane and needs exactly two (x, y) before the target column")
    if n_samples > MAX_SAMPLES:
        raise SettingsError("file", f"{file_name} has {n_samples} rows; the playground takes at most {MAX_SAMPLES}")
    if data.classes is not None and not 2 <= len(data.classes) <= MAX_CLASSES:
        raise SettingsError("file", f"{file_name} has {len(data.classes)} classes; the playground takes 2 to "
                                    f"{MAX_CLASSES} (or a target with fractions, for regression)")
