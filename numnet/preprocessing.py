"""Preparing data for a network: one-hot targets, label encoding, train/test splits, feature scaling, and
the features of points in the plane (x, y, x², y², xy, sin x, sin y) that ``numnet playground`` offers.

Everything here runs once, on the NumPy side, before training. Scalers are fitted on the training rows only
and then applied unchanged to the test rows, so no information from the test set leaks into training.
"""

import numbers

import numpy as np

from numnet import backend
from numnet._registry import unknown_name_message
from numnet.errors import NotFittedError
from numnet.validation import check_integer

# A feature whose spread (std or max - min) is below the smallest normal float64 is treated as constant:
# such a spread is underflow, not signal, and dividing by it would overflow to infinity.
SMALLEST_SPREAD = np.finfo(np.float64).tiny
#: The ``type`` of a StandardScaler's record in a model file's metadata (:meth:`StandardScaler.to_metadata`).
STANDARD_SCALER_TYPE = "standard"


def one_hot(labels, n_classes=None, dtype="float32"):
    """Turn integer class indices into one-hot rows.

    Parameters
    ----------
    labels : array_like of int, shape (n_samples,)
        Class indices in 0..n_classes-1. Floats are accepted when they hold whole numbers (``2.0``).
    n_classes : int, optional
        The number of classes K. Default: ``max(labels) + 1``.
    dtype : str or numpy dtype, default "float32"
        float32 or float64.

    Returns
    -------
    numpy.ndarray, shape (n_samples, n_classes)
        Row i is all zeros except a one in column ``labels[i]``; ``argmax(axis=1)`` gives ``labels`` back.

    Raises
    ------
    TypeError
        For string or object labels (encode them first with :func:`label_encode`).
    ValueError
        For labels that are not 1-D, not whole numbers, negative, or not below ``n_classes``.

    Examples
    --------
    >>> one_hot([0, 2, 1], dtype="float64")
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]])
    """
    dtype = backend.resolve_dtype(dtype)
    indices = _as_class_indices(labels)
    n_classes = _check_n_classes(indices, n_classes)
    encoded = np.zeros((indices.shape[0], n_classes), dtype=dtype)  # (n_samples, K)
    encoded[np.arange(indices.shape[0]), indices] = 1
    return encoded


def _as_class_indices(labels):
    """Validate ``labels`` as a 1-D array of non-negative whole numbers and return them as int64."""
    array = np.asarray(labels)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"labels must be integer class indices, got dtype {array.dtype}; "
            "map other labels (e.g. strings) to indices first with numnet.preprocessing.label_encode"
        )
    if array.ndim != 1:
        raise ValueError(
            f"labels must be a 1-D array of class indices, got shape {array.shape}; "
            "pass labels.ravel() for a column of labels"
        )
    if array.dtype.kind == "f":
        whole = np.isfinite(array) & (array == np.round(array))
        if not whole.all():
            first = int(np.argmin(whole))
            raise ValueError(
                f"labels must be whole numbers, got {array[first]!r} at index {first}; "
                "one_hot takes class indices 0..K-1, not scores or probabilities"
            )
    if array.size and array.min() < 0:
        first = int(np.argmax(array < 0))
        raise ValueError(f"labels must be non-negative class indices, got {array[first]!r} at index {first}")
    return array.astype(np.int64)


def _check_n_classes(indices, n_classes):
    """Return the number of classes, checking that every index is below it."""
    if n_classes is None:
        if indices.size == 0:
            raise ValueError("cannot infer n_classes from empty labels; pass n_classes explicitly")
        return int(indices.max()) + 1
    n_classes = check_integer(n_classes, "n_classes")
    if indices.size and indices.max() >= n_classes:
        first = int(np.argmax(indices >= n_classes))
        raise ValueError(
            f"label {indices[first]} at index {first} is out of range for n_classes={n_classes} "
            f"(valid labels are 0..{n_classes - 1}); raise n_classes or fix the labels"
        )
    return int(n_classes)


def label_encode(labels):
    """Map arbitrary class labels (strings, integers, ...) to indices 0..K-1.

    Parameters
    ----------
    labels : array_like, shape (n_samples,)
        Any sortable labels, e.g. ``["cat", "dog", "cat"]``.

    Returns
    -------
    indices : numpy.ndarray of int64, shape (n_samples,)
        ``classes[indices]`` gives ``labels`` back.
    classes : numpy.ndarray, shape (K,)
        The sorted unique labels; index k stands for ``classes[k]``.

    Raises
    ------
    ValueError
        For labels that are empty, not 1-D, or contain NaN.
    TypeError
        For labels of mixed types that cannot be sorted (e.g. strings and numbers together).

    Examples
    --------
    >>> indices, classes = label_encode(["dog", "cat", "dog"])
    >>> indices.tolist(), classes.tolist()
    ([1, 0, 1], ['cat', 'dog'])
    """
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {array.shape}; pass labels.ravel() for a column")
    if array.size == 0:
        raise ValueError("labels is empty; it needs at least one label")
    if array.dtype.kind in "fc" and np.isnan(array).any():
        raise ValueError("labels contain NaN; remove or fill missing labels before encoding")
    try:
        classes, indices = np.unique(array, return_inverse=True)
    except TypeError as error:
        raise TypeError(
            f"labels could not be sorted ({error}); make all labels the same type, e.g. all strings"
        ) from error
    return indices.reshape(-1).astype(np.int64), classes


def train_test_split(X, y, test_size=0.2, *, stratify=True, seed=None):
    """Split samples into a training and a test set, keeping class proportions when y holds classes.

    The split is stratified (each class appears in train and test in the same proportion, to within one
    sample) when ``stratify`` is true and ``y`` holds class labels: a 1-D array (or an (n, 1) column) of
    integers, booleans, strings or whole-number floats, or a 2-D one-hot matrix. Otherwise (``stratify=False``,
    or a continuous target such as regression values) the rows are split at random.

    Parameters
    ----------
    X : array_like, shape (n_samples, ...)
    y : array_like, shape (n_samples,) or (n_samples, n_outputs)
    test_size : float in (0, 1) or int, default 0.2
        The fraction of samples (rounded up, as scikit-learn does) or the number of samples for the test set.
    stratify : bool, default True
        Keep class proportions when ``y`` holds class labels.
    seed : int, numpy.random.Generator or None
        Source of randomness for the shuffle; None draws fresh entropy.

    Returns
    -------
    X_train, X_test, y_train, y_test : numpy.ndarray
        Rows of ``X`` and ``y`` (dtypes unchanged), each part in shuffled order.

    Raises
    ------
    ValueError
        For mismatched row counts, a test_size that leaves either part empty, or (when stratifying) a class
        with fewer than two samples.
    TypeError
        For a test_size that is not a number.
    """
    X, y = np.asarray(X), np.asarray(y)
    n_samples = _check_same_rows(X, y)
    n_test = _test_count(test_size, n_samples)
    rng = np.random.default_rng(seed)
    labels = _class_labels(y) if stratify else None
    if labels is None:
        order = rng.permutation(n_samples)
        test_rows, train_rows = order[:n_test], order[n_test:]
    else:
        train_rows, test_rows = _stratified_rows(labels, n_test, rng)
    return X[train_rows], X[test_rows], y[train_rows], y[test_rows]


def _check_same_rows(X, y):
    """Return the number of samples, checking that X and y have the same number of rows."""
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError("X and y must be arrays with one row per sample, got a scalar")
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y must have the same number of rows (samples), got X with {X.shape[0]} "
            f"(shape {X.shape}) and y with {y.shape[0]} (shape {y.shape})"
        )
    return X.shape[0]


def _test_count(test_size, n_samples):
    """The number of test samples for ``test_size`` (a fraction or a count), leaving both parts non-empty."""
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"test_size must be a fraction in (0, 1) or an integer count, got {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
    elif 0 < test_size < 1:
        n_test = int(np.ceil(test_size * n_samples))
    else:
        raise ValueError(f"test_size must be a fraction strictly between 0 and 1, got {test_size}")
    if not 1 <= n_test <= n_samples - 1:
        raise ValueError(
            f"test_size={test_size} gives {n_test} test samples out of {n_samples}; both the training and the "
            f"test set need at least one sample, so the test set must have 1..{n_samples - 1} samples"
        )
    return n_test


def _class_labels(y):
    """Class labels of ``y`` as a 1-D array, or None when ``y`` is a continuous (regression) target."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2 and _is_one_hot(y):
        return y.argmax(axis=1)
    if y.ndim != 1:
        return None
    if y.dtype.kind == "f" and not (np.isfinite(y) & (y == np.round(y))).all():
        return None
    if y.dtype.kind not in "biufUSO":
        return None
    return y


def _is_one_hot(y):
    """Whether every row of the 2-D array ``y`` is zeros with a single one."""
    if y.dtype.kind not in "biuf":
        return False
    return bool(np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all())


def _stratified_rows(labels, n_test, rng):
    """Train and test row indices with each class split in proportion (largest-remainder rounding)."""
    classes, class_of_row, counts = np.unique(labels, return_inverse=True, return_counts=True)
    class_of_row = class_of_row.reshape(-1)
    if counts.min() < 2:
        rare = classes[int(np.argmin(counts))]
        raise ValueError(
            f"class {rare!r} has only {counts.min()} sample; a stratified split needs at least 2 samples per "
            "class (one for training, one for testing). Add samples, drop the class, or pass stratify=False"
        )
    test_per_class = _apportion(n_test, counts, rng)
    train_rows, test_rows = [], []
    for k, n_test_k in enumerate(test_per_class):
        rows = rng.permutation(np.flatnonzero(class_of_row == k))
        test_rows.append(rows[:n_test_k])
        train_rows.append(rows[n_test_k:])
    return rng.permutation(np.concatenate(train_rows)), rng.permutation(np.concatenate(test_rows))


def _apportion(total, counts, rng):
    """Split ``total`` into integer shares proportional to ``counts``, each within 1 of its exact share."""
    exact = total * counts / counts.sum()
    shares = np.floor(exact).astype(np.int64)
    remainders = exact - shares
    # Hand the leftover units to the largest remainders; a random tie-break avoids always favouring class 0.
    order = np.lexsort((rng.random(len(counts)), -remainders))
    shares[order[: total - shares.sum()]] += 1
    return shares


class _Scaler:
    """Shared plumbing of the scalers: input checks, dtype policy and the fitted flag."""

    def __init__(self):
        self.n_features = None

    @property
    def is_fitted(self):
        """Whether :meth:`fit` has been called."""
        return self.n_features is not None

    def fit_transform(self, X):
        """Fit to ``X`` and return ``X`` transformed; shape (n_samples, n_features), dtype of ``X``."""
        return self.fit(X).transform(X)

    def _check_input(self, X, fitting):
        """``X`` as a 2-D finite float array, keeping float32/float64 and turning other numbers into float32."""
        if not fitting:
            self._check_fitted()
        array = np.asarray(X)
        dtype = array.dtype if array.dtype.name in backend.SUPPORTED_DTYPES else backend.resolve_dtype(None)
        if array.ndim != 2:
            raise ValueError(
                f"X must be a 2-D array of shape (n_samples, n_features), got shape {array.shape}; "
                "reshape a single feature with X.reshape(-1, 1)"
            )
        array = backend.as_float_matrix(array, dtype, name="X")
        if not fitting and array.shape[1] != self.n_features:
            raise ValueError(
                f"X has {array.shape[1]} features but {type(self).__name__} was fitted on "
                f"{self.n_features}; transform data with the same columns as the training data"
            )
        return array

    def _check_fitted(self):
        """Raise NotFittedError, saying what to call, before the scaler has been fitted."""
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X_train) (on the training data only) "
                "before transform or inverse_transform"
            )


class StandardScaler(_Scaler):
    """Scale each feature to zero mean and unit variance: ``(x - mean) / scale``.

    Statistics are computed in float64 on the data passed to :meth:`fit` (the training set) and reused for
    every later :meth:`transform`. ``scale`` is the population standard deviation (ddof=0, as scikit-learn).
    A constant column (all values equal, or a spread below ``SMALLEST_SPREAD``, the smallest normal float64) gets ``scale = 1``, so it
    is mapped to zeros instead of dividing by zero, and :meth:`inverse_transform` still restores it.

    Attributes
    ----------
    mean : numpy.ndarray of float64, shape (n_features,)
    scale : numpy.ndarray of float64, shape (n_features,)
    n_features : int or None
        None until fitted.

    Examples
    --------
    >>> scaler = StandardScaler().fit([[1.0], [3.0]])
    >>> scaler.transform([[1.0], [3.0], [5.0]]).ravel().tolist()
    [-1.0, 1.0, 3.0]
    """

    def __init__(self):
        super().__init__()
        self.mean = None
        self.scale = None

    def fit(self, X):
        """Learn per-feature mean and standard deviation from ``X``, shape (n_samples, n_features).

        Returns
        -------
        StandardScaler
            self, so that ``StandardScaler().fit(X_train).transform(X_test)`` reads in one line.

        Raises
        ------
        ValueError
            For input that is not 2-D, empty, or contains NaN or infinity.
        """
        X = self._check_input(X, fitting=True).astype(np.float64)
        # Test constancy with max == min, not std == 0: the float64 mean of equal values can be off by one
        # rounding step, leaving a tiny std that would blow rounding noise up to order-one values. Such a
        # column gets its exact value as mean, so it maps to exact zeros.
        equal = X.max(axis=0) == X.min(axis=0)
        self.mean = np.where(equal, X[0], X.mean(axis=0))
        std = X.std(axis=0)
        self.scale = np.where(equal | (std < SMALLEST_SPREAD), 1.0, std)
        self.n_features = X.shape[1]
        return self

    def transform(self, X):
        """Return ``(X - mean) / scale``, shape (n_samples, n_features), in the dtype of ``X``.

        Raises
        ------
        numnet.errors.NotFittedError
            Before :meth:`fit`.
        ValueError
            For input that is not 2-D, or has a different number of features than the training data.
        """
        X = self._check_input(X, fitting=False)
        return ((X - self.mean) / self.scale).astype(X.dtype)

    def inverse_transform(self, X):
        """Undo :meth:`transform`: return ``X * scale + mean`` in the dtype of ``X``."""
        X = self._check_input(X, fitting=False)
        return (X * self.scale + self.mean).astype(X.dtype)

    def to_metadata(self):
        """The fitted scaler as the JSON-ready record a model file keeps in its metadata under "scaler".

        ``numnet train`` saves this record with the model; ``numnet evaluate``, ``numnet predict`` and ONNX
        export read it back with :meth:`from_metadata`, so there is one format for all of them.

        Returns
        -------
        dict
            ``{"type": "standard", "mean": [...], "scale": [...]}``, one Python float per feature (JSON
            writes a float's shortest exact form, so the record reads back bit for bit).

        Raises
        ------
        numnet.errors.NotFittedError
            Before :meth:`fit`.
        """
        self._check_fitted()
        return {"type": STANDARD_SCALER_TYPE, "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_metadata(cls, record):
        """The fitted StandardScaler that a :meth:`to_metadata` record describes.

        Parameters
        ----------
        record : dict
            ``{"type": "standard", "mean": [...], "scale": [...]}``, as a model file's metadata holds it.

        Returns
        -------
        StandardScaler

        Raises
        ------
        TypeError
            If ``record`` is not a dict.
        ValueError
            If its type is not "standard", or mean and scale are not equally long lists of finite numbers
            with every scale above zero.
        """
        if not isinstance(record, dict):
            raise TypeError(f"a scaler record must be a dict such as StandardScaler.to_metadata() returns, got "
                            f"{type(record).__name__}")
        if record.get("type") != STANDARD_SCALER_TYPE:
            raise ValueError(f"the model's scaler has unknown type {record.get('type')!r}; expected "
                             f"{STANDARD_SCALER_TYPE!r}")
        scaler = cls()
        scaler.mean, scaler.scale = (_record_vector(record, key) for key in ("mean", "scale"))
        if scaler.mean.shape != scaler.scale.shape or not np.all(scaler.scale > 0):
            raise ValueError(f"the model's scaler needs one mean and one scale above zero per feature, got "
                             f"{scaler.mean.size} means and scales {scaler.scale.tolist()}")
        scaler.n_features = scaler.mean.size
        return scaler


def scaler_from_metadata(record):
    """The scaler of a model file's metadata (``metadata["scaler"]``), or None when the model has none.

    The one reader of the record :meth:`StandardScaler.to_metadata` writes: the CLI scales new rows with
    it, and ONNX export puts it at the start of the graph.

    Parameters
    ----------
    record : dict or None
        The record, or None (or an empty dict) for a model trained without scaling, such as a CNN.

    Returns
    -------
    StandardScaler or None

    Raises
    ------
    TypeError, ValueError
        For a record :meth:`StandardScaler.from_metadata` cannot read.
    """
    if record is None or record == {}:
        return None
    return StandardScaler.from_metadata(record)


def _record_vector(record, key):
    """``record[key]`` as a non-empty 1-D float64 array of finite numbers, or ValueError naming the key."""
    try:
        vector = np.asarray(record[key], dtype=np.float64)
    except KeyError:
        raise ValueError(f"the model's scaler has no {key!r}; the record must hold type, mean and scale") from None
    except (TypeError, ValueError):
        raise ValueError(f"the model's scaler {key} must be a list of numbers, got {record[key]!r}") from None
    if vector.ndim != 1 or vector.size == 0 or not np.all(np.isfinite(vector)):
        raise ValueError(f"the model's scaler {key} must be a non-empty list of finite numbers, got "
                         f"{record[key]!r}")
    return vector


class MinMaxScaler(_Scaler):
    """Scale each feature linearly so that its training minimum and maximum map to ``feature_range``.

    ``x_scaled = low + (x - data_min) * (high - low) / (data_max - data_min)``. A constant column (a range
    below ``SMALLEST_SPREAD``) is treated as having range 1, so it maps to ``low`` instead of dividing by
    zero, and :meth:`inverse_transform` still restores it. Test data outside the training range maps outside
    ``feature_range``; it is not clipped.

    Parameters
    ----------
    feature_range : tuple (low, high), default (0, 1)
        Finite numbers with low < high.

    Attributes
    ----------
    data_min, data_max : numpy.ndarray of float64, shape (n_features,)
    n_features : int or None
        None until fitted.

    Examples
    --------
    >>> scaler = MinMaxScaler().fit([[2.0], [6.0]])
    >>> scaler.transform([[2.0], [4.0], [6.0]]).ravel().tolist()
    [0.0, 0.5, 1.0]
    """

    def __init__(self, feature_range=(0, 1)):
        super().__init__()
        self.feature_range = _check_feature_range(feature_range)
        self.data_min = None
        self.data_max = None

    def fit(self, X):
        """Learn per-feature minimum and maximum from ``X``, shape (n_samples, n_features); returns self.

        Raises
        ------
        ValueError
            For input that is not 2-D, empty, or contains NaN or infinity.
        """
        X = self._check_input(X, fitting=True).astype(np.float64)
        self.data_min = X.min(axis=0)
        self.data_max = X.max(axis=0)
        self.n_features = X.shape[1]
        return self

    def _slope(self):
        """Output units per input unit, per feature; a constant column counts as having range 1."""
        low, high = self.feature_range
        data_range = self.data_max - self.data_min
        return (high - low) / np.where(data_range < SMALLEST_SPREAD, 1.0, data_range)

    def transform(self, X):
        """Return ``X`` mapped into ``feature_range``, shape (n_samples, n_features), in the dtype of ``X``.

        Raises
        ------
        numnet.errors.NotFittedError
            Before :meth:`fit`.
        ValueError
            For input that is not 2-D, or has a different number of features than the training data.
        """
        X = self._check_input(X, fitting=False)
        low = self.feature_range[0]
        return (low + (X - self.data_min) * self._slope()).astype(X.dtype)

    def inverse_transform(self, X):
        """Undo :meth:`transform`, returning values in the original units and in the dtype of ``X``."""
        X = self._check_input(X, fitting=False)
        low = self.feature_range[0]
        return ((X - low) / self._slope() + self.data_min).astype(X.dtype)


def _check_feature_range(feature_range):
    """Validate ``feature_range`` as two finite numbers (low, high) with low < high."""
    try:
        low, high = feature_range
        low, high = float(low), float(high)
    except (TypeError, ValueError) as error:
        raise TypeError(f"feature_range must be a pair of numbers (low, high), got {feature_range!r}") from error
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"feature_range must be finite with low < high, got {feature_range!r}")
    return (low, high)


# ---------------------------------------------------------------------------------------------------------
# Features of points in the plane
# ---------------------------------------------------------------------------------------------------------

#: TensorFlow Playground's input features: each maps the coordinates (x, y) of a point to one column.
PLANE_FEATURES = {
    "x": lambda x, y: x,
    "y": lambda x, y: y,
    "x2": lambda x, y: x * x,
    "y2": lambda x, y: y * y,
    "xy": lambda x, y: x * y,
    "sinx": lambda x, y: np.sin(x),
    "siny": lambda x, y: np.sin(y),
}


def plane_features(X, names):
    """The chosen features of points (x, y), one column per name, in the order given.

    Parameters
    ----------
    X : array_like, shape (n_samples, 2)
        The points' coordinates, x in column 0 and y in column 1.
    names : sequence of str
        Names from :data:`PLANE_FEATURES`: "x", "y", "x2" (x²), "y2" (y²), "xy", "sinx", "siny".

    Returns
    -------
    numpy.ndarray, shape (n_samples, len(names))
        In the dtype of ``X`` (float32 stays float32).

    Raises
    ------
    ValueError
        For X that is not (n_samples, 2), no names, a repeated name or an unknown one.

    Examples
    --------
    >>> plane_features([[2.0, 3.0]], ["x", "xy", "y2"]).tolist()
    [[2.0, 6.0, 9.0]]
    """
    X = np.asarray(X)
    if X.dtype.kind not in "f":
        X = X.astype(np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must hold points (x, y), shape (n_samples, 2), got shape {X.shape}")
    names = [str(name).strip().lower() for name in names]
    if not names:
        raise ValueError(f"choose at least one feature from: {', '.join(PLANE_FEATURES)}")
    for name in names:
        if name not in PLANE_FEATURES:
            raise ValueError(unknown_name_message(PLANE_FEATURES, name, "feature"))
    if len(set(names)) != len(names):
        raise ValueError(f"features must not repeat, got {names}")
    x, y = X[:, 0], X[:, 1]
    return np.column_stack([PLANE_FEATURES[name](x, y) for name in names]).astype(X.dtype, copy=False)
