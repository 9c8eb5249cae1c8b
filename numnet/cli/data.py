"""The data the commands train on: the named data sets and CSV files, their 80/20 split, and each kind's
recipe (the defaults of ``numnet train``)."""

import dataclasses

import numpy as np

from numnet import datasets, preprocessing
from numnet.model_spec import DIGITS_CNN, SIMPLE_CONV_NET

DATA_NAMES = ("digits", "spiral", "xor", "line", "mnist")
DEFAULT_DATA = "digits"
#: --data text (the census names) or text:PATH (a UTF-8 file): text for a language model (numnet/cli/corpus.py).
TEXT_DATA = "text"
#: The sequel book's toy sets for a seq2seq model (numnet.datasets.load_addition, load_dates).
SEQ2SEQ_DATA = ("addition", "dates")
TEST_SIZE = 0.2
# The train/test split is fixed, whatever --seed says, so that `numnet evaluate MODEL digits` can rebuild
# exactly the test rows that training held out.
SPLIT_SEED = 1
DATA_SEED = 0
LINE_SAMPLES = 100


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Defaults of ``numnet train`` for one kind of data (every one can be overridden by an option)."""

    hidden: tuple
    epochs: int
    learning_rate: float
    batch_size: int = 32
    #: The layer string of ``--model cnn`` (image data only).
    cnn: str = None
    #: A language model's (text only): the embedding size, the steps of each training sequence and the
    #: gradient norm clipping caps (``hidden`` then holds the recurrent layer's size).
    embedding: int = None
    time_steps: int = None
    clip_norm: float = None

    def batch_size_for(self, option):
        """The batch size for the --batch-size value ``option``: None (the option left out) means the
        recipe's, 0 the whole training set (returned as None, fit's spelling of full-batch)."""
        if option is None:
            return self.batch_size
        return None if option == 0 else option

    def learning_rate_for(self, optimizer):
        """The recipe's learning rate for the default optimiser (Adam); None (the optimiser's own) otherwise."""
        return self.learning_rate if optimizer == "adam" else None


RECIPES = {
    "digits": Recipe(hidden=(128,), epochs=30, learning_rate=1e-3, cnn=DIGITS_CNN),
    "mnist": Recipe(hidden=(128,), epochs=10, learning_rate=1e-3, batch_size=64, cnn=SIMPLE_CONV_NET),
    "spiral": Recipe(hidden=(64, 64), epochs=300, learning_rate=1e-2),
    "xor": Recipe(hidden=(8,), epochs=500, learning_rate=5e-2),
    "line": Recipe(hidden=(16,), epochs=300, learning_rate=1e-2),
    "csv": Recipe(hidden=(64,), epochs=100, learning_rate=3e-3),
    # Measured on the census names (numnet/cli/corpus.py): an epoch of the LSTM takes 12-14 s of one core
    # and brings the validation perplexity to 9.2, the second to 8.8 (a uniform guess: 28; learning rates
    # 5e-3 and 1e-2 gave 8.8 too, batches of 64 no faster epochs)
    "text": Recipe(hidden=(128,), epochs=2, learning_rate=3e-3, embedding=32, time_steps=32, clip_norm=1.0),
}


@dataclasses.dataclass
class LoadedData:
    """Features and targets split into training and test rows, with what describes them.

    ``y_*`` hold class indices (int64, shape (n,)) for classification, real values (n, n_outputs) for
    regression. ``class_names`` is None for regression.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    kind: str
    description: str
    class_names: list = None
    feature_names: list = None
    target: object = -1
    image_shape: tuple = None

    @property
    def is_classification(self):
        return self.class_names is not None

    @property
    def n_features(self):
        return self.X_train.shape[1]

    @property
    def n_outputs(self):
        """The natural output size: one per class, or one per regression target column."""
        if self.is_classification:
            return len(self.class_names)
        return self.y_train.shape[1]

    @property
    def recipe(self):
        """The Recipe of this kind of data."""
        return RECIPES[self.kind]


def load_data(source, *, target=None, dtype="float32"):
    """Load a named data set or a CSV file and split it 80/20 (stratified for classes, seed 1).

    Parameters
    ----------
    source : str
        One of DATA_NAMES, or the path of a CSV file (numeric features, one label column).
    target : str or int, optional
        The CSV's label column (name or index); default the last column.
    dtype : str

    Returns
    -------
    LoadedData
    """
    name = source.strip().lower()
    if is_text_source(source):
        raise ValueError(f"--data {source.strip()} is text for a language model, which `numnet train` trains; "
                         f"this command takes {', '.join(DATA_NAMES)} or a CSV file")
    if name == "mnist":
        return _load_mnist(dtype)
    if name in DATA_NAMES:
        X, y, details = _load_named(name, dtype)
    else:
        X, y, details = _load_csv(source, target, dtype)
    if name == "xor":
        # Four points cannot be split: XOR is learnt and tested on the same four points.
        return LoadedData(X, y, X, y, **details)
    stratify = details["class_names"] is not None
    X_train, X_test, y_train, y_test = preprocessing.train_test_split(X, y, TEST_SIZE, stratify=stratify,
                                                                      seed=SPLIT_SEED)
    return LoadedData(X_train, y_train, X_test, y_test, **details)


def is_text_source(source):
    """Whether the --data value ``source`` names text: "text" or "text:PATH" (any case)."""
    name = source.strip().lower()
    return name == TEXT_DATA or name.startswith(TEXT_DATA + ":")


def _load_named(name, dtype):
    """(X, y, description fields) of a built-in data set other than MNIST."""
    if name == "digits":
        X, y = datasets.load_digits(dtype=dtype)
        return X, y, _details("digits", "scikit-learn's 8x8 digits (1,797 images, pixels / 16)",
                              [str(d) for d in range(10)], image_shape=(8, 8))
    if name == "spiral":
        X, y = datasets.make_spiral(100, 3, 0.2, seed=DATA_SEED, dtype=dtype)
        return X, y, _details("spiral", "three-arm spiral (100 points per arm, angle noise 0.2, seed 0)",
                              ["0", "1", "2"])
    if name == "xor":
        X, y = datasets.make_xor(dtype=dtype)
        return X, y[:, 0].astype(np.int64), _details("xor", "the four points of XOR", ["0", "1"])
    X, y = datasets.make_line(LINE_SAMPLES, 0.2, seed=DATA_SEED, dtype=dtype)
    return X, y, _details("line", f"noisy line y = x + N(0, 0.2^2), {LINE_SAMPLES} points, seed 0", None)


def _details(kind, description, class_names, *, feature_names=None, target=-1, image_shape=None):
    """The LoadedData fields that describe the data."""
    return {"kind": kind, "description": description, "class_names": class_names,
            "feature_names": feature_names, "target": target, "image_shape": image_shape}


def _load_mnist(dtype):
    """MNIST from the cache, with its own 60,000 / 10,000 split."""
    X_train, y_train, X_test, y_test = datasets.load_mnist(dtype=dtype)
    return LoadedData(X_train, y_train, X_test, y_test, kind="mnist",
                      description=f"MNIST ({X_train.shape[0]:,} training and {X_test.shape[0]:,} test images)",
                      class_names=[str(d) for d in range(10)], image_shape=(28, 28))


def _load_csv(path, target, dtype):
    """(X, y, description fields) of a CSV file; y as class indices, or an (n, 1) column for regression."""
    target = csv_target(target)
    data = datasets.load_csv(path, target=target, dtype=dtype)
    class_names = None if data.classes is None else [str(label) for label in data.classes]
    y = data.y if class_names is not None else data.y.reshape(-1, 1)
    description = f"{path}: {data.X.shape[0]} rows, {data.X.shape[1]} features, target {data.target_name!r}"
    return data.X, y, _details("csv", description, class_names, feature_names=list(data.feature_names),
                                     target=target)


def csv_target(target):
    """The --target value as a column index when it is an integer, else as a column name (default -1)."""
    if target is None:
        return -1
    if isinstance(target, int):
        return target
    text = str(target).strip()
    try:
        return int(text)
    except ValueError:
        return text
