"""scikit-learn estimators, MLPClassifier and MLPRegressor, trained by numnet's own engine.

They follow scikit-learn's estimator conventions: constructor arguments are stored as given and validated
in ``fit``; fitted attributes end in an underscore; and they pass ``sklearn.utils.estimator_checks``. So they
work with Pipeline, GridSearchCV, cross_val_score and clone. The parameters are those of
``sklearn.neural_network.MLPClassifier`` and mean the same thing. The optimiser is chosen by ``solver``,
which takes scikit-learn's names ("adam", "sgd") and also numnet's ("momentum", "nesterov", "adagrad",
"rmsprop"); lbfgs is not available.

The training itself is :func:`numnet.fit`, called one epoch at a time. Between epochs the estimator decides
whether to stop, with scikit-learn's rules: without early stopping it stops once the training loss has
not improved by ``tol`` for more than ``n_iter_no_change`` epochs. With early stopping it uses the same
rule on the validation score (accuracy or R²) and ends with the best weights. Fitting warns with a
:class:`ConvergenceWarning` when ``max_iter`` epochs end before that happens.

This module imports scikit-learn, which numnet does not otherwise need: ``import numnet`` never imports it,
and importing this module without scikit-learn installed raises MissingDependencyError saying how to
install it.
"""

import numbers
import warnings

import numpy as np

from . import backend, errors
from .activations import get_activation
from .network import Network
from .optimizers import SGD, Adam, get_optimizer
from .training import fit as train

_PURPOSE = "the scikit-learn estimators (numnet.sklearn)"
# Loaded through require so that a missing scikit-learn gives a message that says how to install it.
_base = errors.require("sklearn.base", "sklearn", _PURPOSE)
_exceptions = errors.require("sklearn.exceptions", "sklearn", _PURPOSE)
_metrics = errors.require("sklearn.metrics", "sklearn", _PURPOSE)
_model_selection = errors.require("sklearn.model_selection", "sklearn", _PURPOSE)
_multiclass = errors.require("sklearn.utils.multiclass", "sklearn", _PURPOSE)
_preprocessing = errors.require("sklearn.preprocessing", "sklearn", _PURPOSE)
_utils = errors.require("sklearn.utils", "sklearn", _PURPOSE)
_validation = errors.require("sklearn.utils.validation", "sklearn", _PURPOSE)

#: Input dtypes kept as they are; any other input is converted to the first (scikit-learn's rule).
INPUT_DTYPES = (np.float64, np.float32)
#: The batch size "auto" means min(AUTO_BATCH_SIZE, n_samples), as in scikit-learn.
AUTO_BATCH_SIZE = 200
#: Seeds are drawn below this bound from the random_state.
SEED_BOUND = np.iinfo(np.int32).max
#: The names scikit-learn reports in ``out_activation_`` for numnet's output activations.
SKLEARN_ACTIVATION_NAMES = {"sigmoid": "logistic", "linear": "identity"}
#: Weights start Glorot-uniform, as in scikit-learn's MLP; biases start at zero.
WEIGHT_INIT = "xavier"
#: The smallest validation set early stopping accepts (a score needs at least two samples).
MIN_VALIDATION_SAMPLES = 2


class ConvergenceWarning(errors.ConvergenceWarning, _exceptions.ConvergenceWarning):
    """``max_iter`` epochs ended before the loss (or validation score) stopped improving.

    Both numnet's ConvergenceWarning and scikit-learn's, so either can filter it.
    """


class _MultilayerPerceptron(_base.BaseEstimator):
    """What MLPClassifier and MLPRegressor share: parameters, validation, training and the stopping rule."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate_init=0.001, max_iter=200, shuffle=True, random_state=None,
                 tol=1e-4, verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10, dtype=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype

    # ---- fitted attributes that live in the network --------------------------------------------------

    @property
    def coefs_(self):
        """list of ndarray: the weight matrix of each layer, shape (n_in, n_out); views into the model."""
        _validation.check_is_fitted(self, "network_")
        return [layer.params["W"] for layer in self.network_.layers]

    @property
    def intercepts_(self):
        """list of ndarray: the bias vector of each layer, shape (n_out,); views into the model."""
        _validation.check_is_fitted(self, "network_")
        return [layer.params["b"] for layer in self.network_.layers]

    # ---- fitting -------------------------------------------------------------------------------------

    def fit(self, X, y):
        """Train on (X, y) for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like, shape (n_samples,) or (n_samples, n_outputs)
            Class labels (or a multilabel indicator matrix) for the classifier, real values for the regressor.

        Returns
        -------
        self

        Raises
        ------
        ValueError, TypeError
            For invalid parameters or data (the message names the offending value).
        numnet.DivergenceError
            When the loss becomes NaN or infinite (try a smaller learning_rate_init or scale X).
        """
        return self._fit(X, y, incremental=False)

    def _fit(self, X, y, incremental):
        """The body of fit and partial_fit (incremental: one epoch, keeping network and optimiser)."""
        self._check_parameters()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True; set early_stopping=False")
        first_pass = not hasattr(self, "network_") or not (self.warm_start or incremental)
        X, Y = self._validate_training_data(X, y, reset=first_pass, incremental=incremental)
        rng = _utils.check_random_state(self.random_state)
        init_seed, split_seed, batch_seed = (int(seed) for seed in rng.randint(SEED_BOUND, size=3))
        if first_pass:
            self._initialize(X, Y, init_seed)
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {Y.shape[1]} outputs but the model was fitted with {self.n_outputs_}; "
                "give y of the same width or refit with warm_start=False"
            )
        if not incremental or self.network_.optimizer is None:
            # scikit-learn's rule: fit (even with warm_start) starts a fresh optimiser; partial_fit keeps it.
            self.network_.optimizer = self._new_optimizer()
        X = np.ascontiguousarray(X, dtype=self.network_.dtype)
        Y = np.ascontiguousarray(Y, dtype=self.network_.dtype)
        self._run_epochs(X, Y, incremental=incremental, split_seed=split_seed, batch_seed=batch_seed)
        return self

    def _initialize(self, X, Y, seed):
        """Build a fresh network and reset every fitted attribute."""
        dtype = self.dtype if self.dtype is not None else X.dtype
        layer_sizes = [X.shape[1], *_hidden_layer_sizes(self.hidden_layer_sizes), Y.shape[1]]
        # NumPy always: scikit-learn's world is NumPy arrays, and coefs_/intercepts_ are views of the weights.
        self.network_ = Network(layer_sizes, activation=_hidden_activation(self.activation),
                                loss=self._loss_name(), weight_init=WEIGHT_INIT, dtype=dtype, seed=seed,
                                backend="numpy")
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_sizes)
        output_activation = self.network_.layers[-1].activation.name
        self.out_activation_ = SKLEARN_ACTIVATION_NAMES.get(output_activation, output_activation)
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf
        self._best_parameters = self.network_.flat_parameters.copy()

    def _new_optimizer(self):
        """The optimiser ``solver`` names, with ``learning_rate_init`` (and ``momentum`` for the SGD family)."""
        solver = self.solver.strip().lower()
        if solver == "adam":
            return Adam(self.learning_rate_init)
        if solver in ("sgd", "momentum", "nesterov"):
            # scikit-learn's "sgd" is SGD with (Nesterov) momentum 0.9 by default; numnet's momentum and
            # nesterov fix the Nesterov switch and keep the momentum.
            nesterov = {"sgd": self.nesterovs_momentum, "momentum": False, "nesterov": True}[solver]
            return SGD(self.learning_rate_init, momentum=self.momentum,
                       nesterov=bool(nesterov) and self.momentum > 0)
        return get_optimizer(solver, self.learning_rate_init)

    def _run_epochs(self, X, Y, *, incremental, split_seed, batch_seed):
        """Train epoch by epoch until the stopping rule fires or the epochs run out."""
        X_train, Y_train, validation = X, Y, None
        if self.early_stopping:
            X_train, Y_train, validation = self._split_validation(X, Y, split_seed)
        batch_size = self._resolved_batch_size(X_train.shape[0])
        # scikit-learn's penalty is ½·alpha·ΣW² divided by the batch's sample count; numnet's l2 is not
        # divided, so l2 = alpha / batch_size gives the same loss and gradient for every full batch.
        self.network_.l2 = float(self.alpha) / batch_size
        self.n_iter_ = 0
        for _ in range(1 if incremental else self.max_iter):
            self.loss_ = self._train_one_epoch(X_train, Y_train, batch_size, batch_seed)
            self.n_iter_ += 1
            self.t_ += X_train.shape[0]
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            self._update_no_improvement_count(validation)
            if self._no_improvement_count > self.n_iter_no_change:
                if self.verbose:
                    print(self._stopping_message())
                break
            if not incremental and self.n_iter_ == self.max_iter:
                warnings.warn(f"Maximum iterations ({self.max_iter}) reached and the optimization hasn't "
                              "converged yet; raise max_iter or tol", ConvergenceWarning, stacklevel=4)
        if self.early_stopping:
            self.network_.flat_parameters[...] = self._best_parameters

    def _train_one_epoch(self, X, Y, batch_size, seed):
        """One pass of numnet.fit over (X, Y); returns the epoch's loss averaged over samples."""
        history = train(self.network_, X, Y, epochs=1, batch_size=batch_size, optimizer=self.network_.optimizer,
                        shuffle=bool(self.shuffle), seed=seed, record_gradients=False)
        losses = np.asarray(history.iteration_loss)
        # Every batch holds batch_size samples except the last; weight each batch's mean loss by its size.
        sizes = np.full(losses.size, batch_size)
        sizes[-1] = X.shape[0] - batch_size * (losses.size - 1)
        return float(np.dot(losses, sizes) / X.shape[0])

    def _split_validation(self, X, Y, seed):
        """(X_train, Y_train, (X_val, Y_val)): hold out ``validation_fraction``, stratified for single-output
        classification as in scikit-learn."""
        stratify = Y if self._stratifies_split() else None
        X_train, X_val, Y_train, Y_val = _model_selection.train_test_split(
            X, Y, test_size=self.validation_fraction, random_state=seed, stratify=stratify)
        if X_val.shape[0] < MIN_VALIDATION_SAMPLES:
            raise ValueError(
                f"the validation set has {X_val.shape[0]} sample(s) (validation_fraction="
                f"{self.validation_fraction} of {X.shape[0]}); increase validation_fraction or use more data"
            )
        return X_train, Y_train, (X_val, Y_val)

    def _update_no_improvement_count(self, validation):
        """scikit-learn's stopping rule: count epochs that did not improve the best value by ``tol``."""
        if validation is None:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
            return
        score = self._validation_score(*validation)
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            np.copyto(self._best_parameters, self.network_.flat_parameters)

    def _stopping_message(self):
        watched = "Validation score" if self.early_stopping else "Training loss"
        return (f"{watched} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} "
                "consecutive epochs. Stopping.")

    def _resolved_batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(AUTO_BATCH_SIZE, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(f"batch_size={self.batch_size} is larger than the {n_samples} training samples; "
                          f"using {n_samples}", UserWarning, stacklevel=5)
        return min(int(self.batch_size), n_samples)

    # ---- validation ----------------------------------------------------------------------------------

    def _check_parameters(self):
        """Validate every constructor argument (scikit-learn validates in fit, never in __init__)."""
        _hidden_layer_sizes(self.hidden_layer_sizes)
        _hidden_activation(self.activation)
        _check_solver(self.solver)
        _check_real(self.alpha, "alpha", minimum=0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_integer(self.batch_size, "batch_size", minimum=1, alternative="'auto' or ")
        _check_real(self.learning_rate_init, "learning_rate_init", minimum=0.0, strict=True)
        _check_integer(self.max_iter, "max_iter", minimum=1)
        _check_real(self.tol, "tol", minimum=0.0)
        _check_real(self.momentum, "momentum", minimum=0.0, maximum=1.0)
        _check_real(self.validation_fraction, "validation_fraction", minimum=0.0, maximum=1.0, strict=True)
        _check_integer(self.n_iter_no_change, "n_iter_no_change", minimum=1)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.verbose, (bool, np.bool_, numbers.Integral)):
            raise TypeError(f"verbose must be True, False or an integer, got {self.verbose!r}")
        if self.dtype is not None:
            backend.resolve_dtype(self.dtype)  # raises ValueError naming float32 and float64

    def _validate_input(self, X):
        """X for prediction: validated against the fitted model (n_features_in_, feature names)."""
        _validation.check_is_fitted(self, "network_")
        return _validation.validate_data(self, X, reset=False, dtype=INPUT_DTYPES)

    def _forward(self, X):
        """The network's output for validated X, shape (n_samples, n_outputs_)."""
        return self.network_.forward(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # the engine works on dense arrays only
        return tags


class MLPClassifier(_base.ClassifierMixin, _MultilayerPerceptron):
    """A multi-layer perceptron classifier with scikit-learn's interface, trained by numnet.

    Binary targets get one sigmoid output, multiclass targets a softmax output and multilabel indicator
    matrices one sigmoid output per label, all trained on cross-entropy, as in scikit-learn.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (100,)
        The size of each hidden layer.
    activation : {"relu", "tanh", "logistic", "identity", "sigmoid", "leaky_relu", "linear"}, default "relu"
        Hidden-layer activation ("logistic" is scikit-learn's name for "sigmoid").
    solver : {"adam", "sgd", "momentum", "nesterov", "adagrad", "rmsprop"}, default "adam"
        The optimiser. "adam" and "sgd" mean what they mean in scikit-learn ("sgd" uses ``momentum``
        and ``nesterovs_momentum``); the others are numnet's optimisers. lbfgs is not available.
    alpha : float, default 0.0001
        L2 penalty: the loss gains ½·alpha·Σ‖W‖² / batch_size, as in scikit-learn.
    batch_size : int or "auto", default "auto"
        Samples per step; "auto" is min(200, n_samples).
    learning_rate_init : float, default 0.001
    max_iter : int, default 200
        The most epochs one call to ``fit`` runs.
    shuffle : bool, default True
        Visit the samples in a new random order every epoch.
    random_state : int, RandomState or None, default None
        Seeds the initial weights, the batch order and the validation split.
    tol : float, default 1e-4
        The improvement of the training loss (or validation score) that counts as progress.
    verbose : bool, default False
        Print the loss after every epoch.
    warm_start : bool, default False
        ``fit`` continues from the current weights (with a fresh optimiser) instead of starting over.
    momentum : float in [0, 1), default 0.9
        Momentum of the "sgd", "momentum" and "nesterov" solvers.
    nesterovs_momentum : bool, default True
        Whether "sgd" uses Nesterov momentum.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data (stratified), stop when its accuracy has not
        improved by ``tol`` for more than ``n_iter_no_change`` epochs, and keep the best weights.
    validation_fraction : float in (0, 1), default 0.1
    n_iter_no_change : int, default 10
    dtype : {None, "float32", "float64"}, default None
        The precision of the weights; None follows the training data (float32 stays float32, anything
        else becomes float64), as in scikit-learn.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str, shape (n_features_in_,)
        Only when X had string column names.
    n_iter_ : int
        Epochs run by the last call to fit or partial_fit.
    loss_ : float
        The last epoch's training loss (cross-entropy plus the L2 term).
    loss_curve_ : list of float
        The training loss of every epoch so far.
    best_loss_ : float or None
        The lowest training loss so far (None with early stopping).
    validation_scores_ : list of float or None
        The validation accuracy after every epoch (None without early stopping).
    best_validation_score_ : float or None
    coefs_ : list of ndarray, shape (n_in, n_out) each
    intercepts_ : list of ndarray, shape (n_out,) each
    n_outputs_, n_layers_ : int
    out_activation_ : str
    t_ : int
        Training samples seen.
    network_ : numnet.Network
        The trained network itself.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> model = MLPClassifier(hidden_layer_sizes=(20,), max_iter=300, random_state=0).fit(X, y)
    >>> model.predict_proba(X[:2]).shape
    (2, 3)
    """

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the current weights and optimiser.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like, shape (n_samples,) or (n_samples, n_labels)
        classes : array_like, shape (n_classes,), optional
            Every class that will ever appear; required on the first call, ignored later.

        Returns
        -------
        self
        """
        if not hasattr(self, "classes_"):
            if classes is None and _multiclass.type_of_target(y) != "multilabel-indicator":
                raise ValueError("classes must be passed on the first call to partial_fit, "
                                 "e.g. classes=numpy.unique(y_all)")
            self._label_binarizer = _preprocessing.LabelBinarizer()
            is_multilabel = _multiclass.type_of_target(y) == "multilabel-indicator"
            self._label_binarizer.fit(y if is_multilabel else classes)
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={classes!r} differs from the classes of the first call, {self.classes_}")
        return self._fit(X, y, incremental=True)

    def _stratifies_split(self):
        return self._label_binarizer.y_type_ != "multilabel-indicator"

    def _loss_name(self):
        binarizer = self._label_binarizer
        return "softmax_cross_entropy" if binarizer.y_type_ == "multiclass" else "binary_cross_entropy"

    def _validate_training_data(self, X, y, *, reset, incremental):
        """(X, Y): validated inputs and the binarized targets, shape (n_samples, n_outputs)."""
        X, y = _validation.validate_data(self, X, y, reset=reset, multi_output=True, dtype=INPUT_DTYPES)
        if y.ndim == 2 and y.shape[1] == 1:
            y = _validation.column_or_1d(y, warn=True)
        _multiclass.check_classification_targets(y)
        if reset and not incremental:
            self._label_binarizer = _preprocessing.LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            _check_known_classes(_multiclass.unique_labels(y), self.classes_, same=not incremental)
        return X, self._label_binarizer.transform(y)

    def _validation_score(self, X_val, Y_val):
        predicted = self._label_binarizer.inverse_transform(self._forward_for_labels(X_val))
        return _metrics.accuracy_score(self._label_binarizer.inverse_transform(Y_val), predicted)

    def _forward_for_labels(self, X):
        output = self._forward(X)
        return output.ravel() if self.n_outputs_ == 1 else output

    def predict(self, X):
        """Predicted labels, shape (n_samples,), or (n_samples, n_labels) for multilabel targets."""
        X = self._validate_input(X)
        return self._label_binarizer.inverse_transform(self._forward_for_labels(X))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``.

        Binary problems give [1 - p, p]; multilabel problems give each label's independent probability.
        """
        X = self._validate_input(X)
        output = self._forward(X)
        if self.n_outputs_ == 1:
            positive = output[:, 0]
            return np.column_stack([1.0 - positive, positive])
        return output

    def predict_log_proba(self, X):
        """The natural log of :meth:`predict_proba`, shape (n_samples, n_classes)."""
        probabilities = self.predict_proba(X)
        return np.log(probabilities, out=probabilities)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(_base.RegressorMixin, _MultilayerPerceptron):
    """A multi-layer perceptron regressor with scikit-learn's interface, trained by numnet.

    Linear outputs trained on half the squared error, C = 1/(2n) Σ_i ‖a_i - y_i‖², plus the L2 term. For
    several outputs numnet sums the squared errors over outputs where scikit-learn averages them, so
    ``loss_`` (and the meaning of ``tol``) is n_outputs times scikit-learn's; for one output they agree.

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate_init, max_iter, shuffle,
    random_state, tol, verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
    validation_fraction, n_iter_no_change, dtype
        As in :class:`MLPClassifier`; early stopping watches the validation R² (unstratified split).

    Attributes
    ----------
    n_features_in_, feature_names_in_, n_iter_, loss_, loss_curve_, best_loss_, validation_scores_,
    best_validation_score_, coefs_, intercepts_, n_outputs_, n_layers_, out_activation_, t_, network_
        As in :class:`MLPClassifier`, with validation scores in R².

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(-1, 1, 50).reshape(-1, 1)
    >>> model = MLPRegressor(hidden_layer_sizes=(10,), max_iter=500, random_state=0).fit(X, X[:, 0] ** 2)
    >>> model.predict(X[:3]).shape
    (3,)
    """

    def partial_fit(self, X, y):
        """One epoch over (X, y), continuing from the current weights and optimiser.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like, shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=True)

    def _stratifies_split(self):
        return False

    def _loss_name(self):
        return "mse"

    def _validate_training_data(self, X, y, *, reset, incremental):
        """(X, Y): validated inputs and targets as a matrix, shape (n_samples, n_outputs)."""
        X, y = _validation.validate_data(self, X, y, reset=reset, multi_output=True, y_numeric=True,
                                         dtype=INPUT_DTYPES)
        if y.ndim == 2 and y.shape[1] == 1:
            y = _validation.column_or_1d(y, warn=True)
        return X, y.reshape(-1, 1) if y.ndim == 1 else y

    def _validation_score(self, X_val, Y_val):
        return _metrics.r2_score(Y_val, self._forward(X_val))

    def predict(self, X):
        """Predicted values, shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        output = self._forward(self._validate_input(X))
        return output.ravel() if self.n_outputs_ == 1 else output

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _hidden_layer_sizes(value):
    """``hidden_layer_sizes`` as a list of positive ints (an int means one hidden layer)."""
    sizes = [value] if isinstance(value, numbers.Integral) else value
    try:
        sizes = list(sizes)
    except TypeError as error:
        raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints such as (100,), "
                        f"got {value!r}") from error
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"hidden_layer_sizes must hold positive integers, got {value!r}")
    return [int(size) for size in sizes]


def _hidden_activation(name):
    """The numnet activation name for ``name``; softmax is an output activation only."""
    if not isinstance(name, str):
        raise TypeError(f"activation must be a string such as 'relu', got {name!r}")
    key = name.strip().lower()
    if key == "softmax":
        raise ValueError("activation='softmax' is for output layers; choose relu, tanh, logistic or identity")
    get_activation(key)  # raises ValueError listing the valid names (scikit-learn's "logistic" is one)
    return key


def _check_solver(solver):
    if not isinstance(solver, str):
        raise TypeError(f"solver must be a string such as 'adam', got {solver!r}")
    if solver.strip().lower() == "lbfgs":
        raise ValueError("solver='lbfgs' is not available in numnet; use 'adam' or 'sgd'")
    get_optimizer(solver)  # raises ValueError listing the valid names for an unknown one


def _check_real(value, name, *, minimum, maximum=None, strict=False):
    """Raise unless ``value`` is a real number >= minimum (> with strict) and < maximum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    too_small = value <= minimum if strict else value < minimum
    if not np.isfinite(value) or too_small or (maximum is not None and value >= maximum):
        bound = f"{'>' if strict else '>='} {minimum}" + (f" and < {maximum}" if maximum is not None else "")
        raise ValueError(f"{name} must be {bound}, got {value!r}")


def _check_integer(value, name, *, minimum, alternative=""):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be {alternative}an integer >= {minimum}, got {value!r}")


def _check_known_classes(labels, classes, same):
    """Labels of a later fit must be the fitted classes (warm_start) or a subset of them (partial_fit)."""
    unknown = np.setdiff1d(labels, classes)
    if unknown.size or (same and len(labels) != len(classes)):
        raise ValueError(
            f"y has classes {labels} but the model was fitted with classes {classes}; warm_start and "
            "partial_fit need the same classes (refit with warm_start=False to change them)"
        )
