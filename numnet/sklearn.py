"""scikit-learn estimators, MLPClassifier and MLPRegressor, trained by numnet's own engine.

They are drop-in replacements for ``sklearn.neural_network.MLPClassifier`` and ``MLPRegressor``: the same
parameters with the same meanings and defaults, the same fitted attributes, errors and warnings, and they pass
scikit-learn's own MLP test module (tests/test_sklearn_suite.py runs it on them) and its estimator checks. So
they work with Pipeline, GridSearchCV, cross_val_score and clone. ``solver`` takes scikit-learn's names
("lbfgs", "sgd", "adam") and also numnet's optimisers ("momentum", "nesterov", "adagrad", "rmsprop"); ``dtype``
is numnet's own addition.

The network is a :class:`numnet.Network`; its loss, gradient and optimiser steps are numnet's. Around them the
estimators follow scikit-learn's procedure, so that the same ``random_state`` gives (up to rounding) the same
model as scikit-learn's:

- weights and biases start Glorot-uniform, drawn from ``random_state`` in scikit-learn's order;
- "lbfgs" minimises the full-batch loss with SciPy's L-BFGS-B (:func:`numnet.lbfgs.minimize_lbfgs`);
- the stochastic solvers visit shuffled mini-batches, and each batch's L2 term is ½·alpha·Σ‖W‖² divided by
  the batch's sample count (or its weights' sum), as in scikit-learn;
- between epochs, scikit-learn's stopping rule: stop once the training loss (with early stopping, the
  validation score) has not improved by ``tol`` for more than ``n_iter_no_change`` epochs; with
  ``learning_rate="adaptive"`` the rate is divided by 5 instead (:class:`numnet.schedules.ReduceOnPlateau`);
- divergence is scikit-learn's too: training runs on, and ``fit`` raises a ValueError when the final weights
  are not finite (with early stopping the best weights, which are, are kept).

This module imports scikit-learn, which numnet does not otherwise need: ``import numnet`` never imports it,
and importing this module without scikit-learn installed raises MissingDependencyError saying how to
install it.
"""

import math
import numbers
import warnings

import numpy as np

from . import backend, errors
from .activations import get_activation
from .lbfgs import minimize_lbfgs
from .layers import Dense
from .network import Network
from .optimizers import SGD, Adam, get_optimizer
from .schedules import ReduceOnPlateau, track_plateau
from .step import EpochLoss, TrainingStep
from .losses import get_loss
from .targets import as_sample_weights, as_target_matrix
from .validation import Boolean, Integer, OneOf, Real, check_declared, check_integer

_PURPOSE = "the scikit-learn estimators (numnet.sklearn)"
# Loaded through require so that a missing scikit-learn gives a message that says how to install it.
_base = errors.require("sklearn.base", "sklearn", _PURPOSE)
_exceptions = errors.require("sklearn.exceptions", "sklearn", _PURPOSE)
_metaestimators = errors.require("sklearn.utils.metaestimators", "sklearn", _PURPOSE)
_metrics = errors.require("sklearn.metrics", "sklearn", _PURPOSE)
_model_selection = errors.require("sklearn.model_selection", "sklearn", _PURPOSE)
_multiclass = errors.require("sklearn.utils.multiclass", "sklearn", _PURPOSE)
_preprocessing = errors.require("sklearn.preprocessing", "sklearn", _PURPOSE)
_utils = errors.require("sklearn.utils", "sklearn", _PURPOSE)
_validation = errors.require("sklearn.utils.validation", "sklearn", _PURPOSE)
_sparse = errors.require("scipy.sparse", "sklearn", _PURPOSE)

#: Input dtypes kept as they are; any other input is converted to the first (scikit-learn's rule).
INPUT_DTYPES = (np.float64, np.float32)
#: Sparse formats accepted; others are converted to the first. The engine then works on a dense copy.
SPARSE_FORMATS = ("csr", "csc")
#: The batch size "auto" means min(AUTO_BATCH_SIZE, n_samples), as in scikit-learn.
AUTO_BATCH_SIZE = 200
#: The names scikit-learn reports in ``out_activation_`` for numnet's output activations.
SKLEARN_ACTIVATION_NAMES = {"sigmoid": "logistic", "linear": "identity"}
#: Glorot & Bengio's uniform bound sqrt(factor / (fan_in + fan_out)): 6 in general, 2 for logistic
#: hidden layers (scikit-learn's _init_coef).
GLOROT_FACTOR = 6.0
GLOROT_FACTOR_LOGISTIC = 2.0
#: The smallest validation set early stopping accepts (a score needs at least two samples).
MIN_VALIDATION_SAMPLES = 2
#: learning_rate="adaptive": on a plateau the rate is divided by 5 until it is at most 1e-6, then
#: training stops (scikit-learn's SGDOptimizer.trigger_stopping).
ADAPTIVE_FACTOR = 0.2
ADAPTIVE_MIN_LEARNING_RATE = 1e-6
#: The learning-rate schedules of scikit-learn's MLP (used by the SGD solvers only, as there).
LEARNING_RATES = ("constant", "invscaling", "adaptive")
#: The solvers that are SGD with (Nesterov) momentum, to which ``learning_rate`` and ``power_t`` apply.
SGD_SOLVERS = ("sgd", "momentum", "nesterov")
#: MLPRegressor's losses, by scikit-learn name: numnet's loss name and the output activation it implies.
REGRESSION_LOSSES = {"squared_error": "mse", "poisson": "poisson"}
#: validate_data's marker for "no targets to validate" (prediction).
NO_TARGETS = "no_validation"
#: scikit-learn's message when training ends with NaN or infinite weights (its tests match it).
NON_FINITE_WEIGHTS_MESSAGE = ("Solver produced non-finite parameter weights. The input data may contain large "
                              "values and need to be preprocessed.")


class ConvergenceWarning(errors.ConvergenceWarning, _exceptions.ConvergenceWarning):
    """``max_iter`` (or ``max_fun``) ran out before the loss (or validation score) stopped improving.

    Both numnet's ConvergenceWarning and scikit-learn's, so either can filter it.
    """


class NonFiniteWeightsError(errors.DivergenceError, ValueError):
    """Training ended with NaN or infinite weights.

    Both numnet's DivergenceError and the ValueError scikit-learn raises, so either can catch it.
    """


def _partial_fit_is_available(estimator):
    """partial_fit exists for the stochastic solvers only (scikit-learn's rule, through ``available_if``)."""
    if isinstance(estimator.solver, str) and estimator.solver.strip().lower() == "lbfgs":
        raise AttributeError("partial_fit is only available for stochastic optimizers. lbfgs is not stochastic.")
    return True


class _MultilayerPerceptron(_base.BaseEstimator):
    """What MLPClassifier and MLPRegressor share: parameters, validation, the solvers and the stopping rule."""

    #: The declared constraint of each plain numeric, boolean or choice parameter (numnet.validation), checked
    #: in fit as scikit-learn checks its own (not named _parameter_constraints: scikit-learn reads that name
    #: with its own constraint types).
    _parameter_checks = {
        "learning_rate": OneOf(*LEARNING_RATES, ignore_case=True),
        **{name: Real(at_least=0) for name in ("alpha", "tol", "power_t")},
        **{name: Real(above=0) for name in ("learning_rate_init", "epsilon")},
        **{name: Real(at_least=0, below=1) for name in ("momentum", "beta_1", "beta_2", "dropout")},
        "validation_fraction": Real(above=0, below=1),
        "max_iter": Integer(),
        "max_fun": Integer(meaning="the most loss evaluations of lbfgs"),
        **{name: Boolean() for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping")},
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, dtype=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
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
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.dtype = dtype

    # ---- fitting -------------------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Train on (X, y): up to ``max_iter`` epochs (stochastic solvers) or L-BFGS iterations.

        Parameters
        ----------
        X : array_like or sparse matrix, shape (n_samples, n_features)
        y : array_like, shape (n_samples,) or (n_samples, n_outputs)
            Class labels (or a multilabel indicator matrix) for the classifier, real values for the regressor.
        sample_weight : array_like, shape (n_samples,), optional
            Non-negative weights: every loss becomes the weighted mean over each batch, and early stopping's
            validation score is weighted too.

        Returns
        -------
        self

        Raises
        ------
        ValueError, TypeError
            For invalid parameters or data (the message names the offending value).
        NonFiniteWeightsError
            A ValueError (and numnet DivergenceError): training ended with NaN or infinite weights (scale X
            or lower learning_rate_init).
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X, y, sample_weight, incremental):
        """The body of fit and partial_fit (incremental: one epoch, keeping the weights and optimiser)."""
        self._check_parameters()
        first_pass = not hasattr(self, "coefs_") or not (self.warm_start or incremental)
        X, Y = self._validate_training_data(X, y, reset=first_pass, incremental=incremental)
        weights = as_sample_weights(sample_weight, X.shape[0], np.float64)
        # One random stream for the initial weights, the validation split and the batch order, in
        # scikit-learn's order, so that a random_state gives the starting point scikit-learn's MLP starts from.
        rng = _utils.check_random_state(self.random_state)
        if first_pass:
            self._initialize(X, Y, rng)
        network = self._network_from_coefs()
        if Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs but the model was fitted with {self.n_outputs_}; "
                             "give y of the same width or refit with warm_start=False")
        X = np.ascontiguousarray(X, dtype=network.dtype)
        if weights is not None:
            weights = weights.astype(network.dtype)
        if self._solver_name() == "lbfgs":
            self._fit_lbfgs(X, np.asarray(Y, dtype=network.dtype), weights)
        else:
            self._fit_stochastic(X, Y, weights, incremental=incremental, rng=rng)
        if not np.isfinite(network.flat_parameters).all():
            raise NonFiniteWeightsError(f"{NON_FINITE_WEIGHTS_MESSAGE} (Scale X, for example with "
                                        "StandardScaler, or lower learning_rate_init.)")
        return self

    def _initialize(self, X, Y, rng):
        """Build a fresh network with scikit-learn's initial weights, and reset every fitted attribute."""
        dtype = self.dtype if self.dtype is not None else X.dtype
        layer_sizes = [X.shape[1], *_hidden_layer_sizes(self.hidden_layer_sizes), Y.shape[1]]
        self.network_ = self._new_network(layer_sizes, dtype)
        self._draw_initial_weights(rng)
        self.n_iter_ = 0
        self.t_ = 0
        self._best_parameters = self.network_.flat_parameters.copy()
        if self._solver_name() != "lbfgs":  # the epoch-by-epoch record belongs to the stochastic solvers
            self._start_epoch_record()

    def _start_epoch_record(self):
        """Empty loss curve, plateau count and best values, as scikit-learn starts them."""
        self.loss_curve_ = []
        self._epochs_without_improvement = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _new_network(self, layer_sizes, dtype):
        """A NumPy network of these sizes (scikit-learn's world is NumPy arrays; coefs_ are its views)."""
        network = Network(layer_sizes, activation=_hidden_activation(self.activation), loss=self._loss_name(),
                          dropout=self.dropout, dtype=dtype, seed=0, backend="numpy")
        self.n_layers_ = len(layer_sizes)
        self.n_outputs_ = layer_sizes[-1]
        output_activation = network.layers[-1].activation.name
        self.out_activation_ = SKLEARN_ACTIVATION_NAMES.get(output_activation, output_activation)
        return network

    def _draw_initial_weights(self, rng):
        """W and b of each layer ~ U(-r, r), r = sqrt(factor / (fan_in + fan_out)), drawn W then b, layer by
        layer, from the RandomState ``rng``: scikit-learn's _init_coef."""
        factor = GLOROT_FACTOR_LOGISTIC if _hidden_activation(self.activation) == "logistic" else GLOROT_FACTOR
        for layer in _dense_layers(self.network_):
            fan_in, fan_out = layer.params["W"].shape
            bound = math.sqrt(factor / (fan_in + fan_out))
            layer.params["W"][...] = rng.uniform(-bound, bound, (fan_in, fan_out))
            layer.params["b"][...] = rng.uniform(-bound, bound, fan_out)
        self._bind_coefs()

    def _bind_coefs(self):
        """coefs_ and intercepts_ as lists of views into the network's weights."""
        self.coefs_ = [layer.params["W"] for layer in _dense_layers(self.network_)]
        self.intercepts_ = [layer.params["b"] for layer in _dense_layers(self.network_)]

    def _network_from_coefs(self):
        """The network that holds coefs_ and intercepts_.

        They are plain, assignable lists, as in scikit-learn: when an entry (or a whole list) was assigned,
        its values are copied into the network (a new one when the sizes changed, or when there is none),
        and the lists become views of it again. (Unpickling also leaves them copies, of equal values.)
        """
        network = getattr(self, "network_", None)
        if network is not None and self._coefs_are_views(network):
            return network
        coefs = [np.asarray(W) for W in self.coefs_]
        intercepts = [np.asarray(b) for b in self.intercepts_]
        layer_sizes = _layer_sizes_of(coefs, intercepts)
        if network is None or network.layer_sizes != layer_sizes:
            dtype = self.dtype if self.dtype is not None else _float_dtype(coefs[0].dtype)
            network = self.network_ = self._new_network(layer_sizes, dtype)
        for layer, W, b in zip(_dense_layers(network), coefs, intercepts, strict=True):
            for view, value in ((layer.params["W"], W), (layer.params["b"], b)):
                # equal values are left alone: an unpickled model's lists are copies of its (possibly
                # read-only, memory-mapped) weights, not views
                if view is not value and not np.array_equal(view, value):
                    view[...] = value
        self._bind_coefs()
        return network

    def _coefs_are_views(self, network):
        arrays = [array for layer in _dense_layers(network) for array in (layer.params["W"], layer.params["b"])]
        assigned = [array for pair in zip(self.coefs_, self.intercepts_) for array in pair]
        return len(assigned) == len(arrays) and all(a is b for a, b in zip(assigned, arrays))

    # ---- L-BFGS --------------------------------------------------------------------------------------

    def _fit_lbfgs(self, X, Y, weights):
        """Full-batch L-BFGS-B; n_iter_ and loss_ as scikit-learn sets them, a warning at the limits."""
        network = self.network_
        # scikit-learn's L2 term is ½·alpha·Σ‖W‖² over the sample count (or the weights' sum), on top of
        # the network's own penalty (none), which stays as it is.
        l2 = float(self.alpha) / (X.shape[0] if weights is None else float(weights.sum()))
        result = minimize_lbfgs(network, X, Y, sample_weight=weights, max_iter=self.max_iter,
                                max_fun=self.max_fun, tolerance=self.tol, l2=l2)
        self.n_iter_ = min(int(result.nit), self.max_iter)
        self.loss_ = float(result.fun)
        if result.status != 0:
            warnings.warn(f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status={result.status}: "
                          f"{result.message}); raise max_iter (now {self.max_iter}) or max_fun (now "
                          f"{self.max_fun}), or scale the data", ConvergenceWarning, stacklevel=4)

    # ---- the stochastic solvers ------------------------------------------------------------------------

    def _fit_stochastic(self, X, Y, weights, *, incremental, rng):
        """Epochs of mini-batch steps until the stopping rule fires or the epochs run out."""
        network = self.network_
        if not incremental or network.optimizer is None:
            # scikit-learn's rule: fit (even with warm_start) starts a fresh optimiser; partial_fit keeps it.
            network.optimizer = self._new_optimizer()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True; set early_stopping=False")
        if not hasattr(self, "loss_curve_"):  # warm-started from an lbfgs fit, which keeps no such record
            self._start_epoch_record()
        if getattr(self, "_best_parameters", np.empty(0)).shape != network.flat_parameters.shape:
            self._best_parameters = network.flat_parameters.copy()  # coefs_ of new sizes were assigned
        train, validation = self._split_validation(X, Y, weights, rng)
        # Dropout's masks: a Generator seeded from random_state, drawn only with dropout so that the
        # RandomState's other draws stay scikit-learn's.
        self._dropout_masks = np.random.default_rng(rng.randint(np.iinfo(np.int32).max)) if self.dropout else None
        batch_size = self._resolved_batch_size(train[0].shape[0])
        # scikit-learn's L2 term is ½·alpha·Σ‖W‖² over each batch's sample count (or its weights' sum): a
        # penalty of the step's, which leaves the network's own l2 as it was.
        self._train_step = TrainingStep(network, batch_scaled_l2=float(self.alpha))
        self.n_iter_ = 0
        try:
            self._run_epochs(train, validation, batch_size, incremental=incremental, rng=rng)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", UserWarning, stacklevel=4)  # the model so far stays
        finally:
            network.clear_caches()
        if self.early_stopping:
            network.flat_parameters[...] = self._best_parameters

    def _run_epochs(self, train, validation, batch_size, *, incremental, rng):
        """Up to max_iter epochs (one for partial_fit), each followed by the stopping decision."""
        order = np.arange(train[0].shape[0])
        for _ in range(1 if incremental else self.max_iter):
            if self.shuffle:
                # scikit-learn reshuffles the previous epoch's order; this is the draw its
                # sklearn.utils.shuffle makes, without that function's per-call parameter validation,
                # which cost more than the training steps on small data sets.
                order = order[rng.permutation(order.size)]
            loss = self._train_one_epoch(*train, batch_size, order if self.shuffle else None)
            self._record_epoch(loss, train[0].shape[0])
            if self._stops_after_epoch(validation):
                return
            if not incremental and self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                              "optimization hasn't converged yet; raise max_iter or tol",
                              ConvergenceWarning, stacklevel=5)

    def _train_one_epoch(self, X, Y, weights, batch_size, order):
        """One pass over mini-batches in ``order`` (None: as stored); returns the epoch's loss (batch losses
        weighted by their sizes)."""
        n_samples = X.shape[0]
        epoch_loss = EpochLoss()
        for start in range(0, n_samples, batch_size):
            batch = slice(start, min(start + batch_size, n_samples))
            rows = order[batch] if order is not None else batch
            batch_weights = None if weights is None else weights[rows]
            # A batch of zero-weight samples holds nothing to learn from (scikit-learn divides by 0): no step.
            loss = 0.0 if batch_weights is not None and not batch_weights.any() else \
                self._train_step(X[rows], Y[rows], batch_weights, rng=self._dropout_masks)
            epoch_loss.add(loss, batch.stop - batch.start)
        return epoch_loss.mean

    def _record_epoch(self, loss, n_samples):
        self.loss_ = loss
        self.n_iter_ += 1
        self.t_ += n_samples
        self.loss_curve_.append(loss)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")

    def _stops_after_epoch(self, validation):
        """scikit-learn's end of an epoch: the plateau count, invscaling's rate, and the stopping decision."""
        self._update_plateau_count(validation)
        optimizer = self.network_.optimizer
        if self._learning_rate_name() == "invscaling" and self._solver_name() in SGD_SOLVERS:
            # lr = learning_rate_init / (t + 1)^power_t, t the samples seen (scikit-learn's iteration_ends)
            optimizer.learning_rate = float(self.learning_rate_init) / (self.t_ + 1) ** float(self.power_t)
        if getattr(self, "_epochs_without_improvement", 0) <= self.n_iter_no_change:
            return False
        watched = "Validation score" if self.early_stopping else "Training loss"
        message = (f"{watched} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} "
                   "consecutive epochs.")
        if isinstance(optimizer.schedule, ReduceOnPlateau):
            if optimizer.schedule.reduce(optimizer.learning_rate):
                self._epochs_without_improvement = 0
                if self.verbose:
                    print(f"{message} Setting learning rate to {optimizer.current_learning_rate:f}")
                return False
            message += " Learning rate too small."
        if self.verbose:
            print(f"{message} Stopping.")
        return True

    def _update_plateau_count(self, validation):
        """Count the epochs without improvement of the loss, or with early stopping of the validation score
        (whose best weights are kept)."""
        count = getattr(self, "_epochs_without_improvement", 0)
        if validation is None:
            self._epochs_without_improvement, self.best_loss_ = track_plateau(
                self.loss_curve_[-1], self.best_loss_, count, self.tol, mode="min")
            return
        score = self._validation_score(*validation)
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        previous_best = self.best_validation_score_
        self._epochs_without_improvement, self.best_validation_score_ = track_plateau(
            score, previous_best, count, self.tol, mode="max")
        if self.best_validation_score_ != previous_best:
            np.copyto(self._best_parameters, self.network_.flat_parameters)

    def _validation_score(self, X_val, y_val, weights_val):
        """Accuracy or R² on the validation set (weighted), NaN when the outputs are not finite."""
        output = self.network_.forward(X_val)
        if not np.isfinite(output).all():
            return float("nan")
        return float(self._score_outputs(y_val, output, weights_val))

    def _new_optimizer(self):
        """The optimiser ``solver`` names, with its hyperparameters and ``learning_rate``'s schedule."""
        solver = self._solver_name()
        if solver == "adam":
            return Adam(self.learning_rate_init, beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon)
        if solver in SGD_SOLVERS:
            # scikit-learn's "sgd" is SGD with (Nesterov) momentum 0.9 by default; numnet's momentum and
            # nesterov fix the Nesterov switch and keep the momentum.
            nesterov = {"sgd": self.nesterovs_momentum, "momentum": False, "nesterov": True}[solver]
            schedule = "constant"
            if self._learning_rate_name() == "adaptive":
                schedule = ReduceOnPlateau(factor=ADAPTIVE_FACTOR, patience=self.n_iter_no_change,
                                           tolerance=self.tol, mode="max" if self.early_stopping else "min",
                                           min_learning_rate=ADAPTIVE_MIN_LEARNING_RATE)
            return SGD(self.learning_rate_init, momentum=self.momentum,
                       nesterov=bool(nesterov) and self.momentum > 0, schedule=schedule)
        return get_optimizer(solver, self.learning_rate_init)

    def _split_validation(self, X, Y, weights, rng):
        """((X, Y, w) for training, (X, y, w) for validation or None): ``validation_fraction`` held out with
        early stopping, stratified for binary classification, as in scikit-learn's code."""
        dtype = self.network_.dtype
        if not self.early_stopping:
            return (X, np.asarray(Y, dtype=dtype), weights), None
        stratify = Y if self._stratifies_split() else None
        arrays = (X, Y) if weights is None else (X, Y, weights)
        parts = _model_selection.train_test_split(*arrays, random_state=rng, test_size=self.validation_fraction,
                                                  stratify=stratify)
        X_train, X_val, Y_train, Y_val = parts[:4]
        weights_train, weights_val = parts[4:] if weights is not None else (None, None)
        if X_val.shape[0] < MIN_VALIDATION_SAMPLES:
            raise ValueError(
                f"The validation set is too small: {X_val.shape[0]} sample(s) (validation_fraction="
                f"{self.validation_fraction} of {X.shape[0]}). Increase 'validation_fraction' or the size of "
                "your dataset."
            )
        return (X_train, np.asarray(Y_train, dtype=dtype), weights_train), \
            (X_val, self._validation_targets(Y_val), weights_val)

    def _resolved_batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(AUTO_BATCH_SIZE, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(f"batch_size={self.batch_size} is larger than the {n_samples} training samples; "
                          f"using {n_samples}", UserWarning, stacklevel=5)
        return min(int(self.batch_size), n_samples)

    # ---- validation ----------------------------------------------------------------------------------

    def _solver_name(self):
        return self.solver.strip().lower()

    def _learning_rate_name(self):
        return self.learning_rate.strip().lower()

    def _check_parameters(self):
        """Validate every constructor argument (scikit-learn validates in fit, never in __init__)."""
        _hidden_layer_sizes(self.hidden_layer_sizes)
        _hidden_activation(self.activation)
        _check_solver(self.solver)
        check_declared(self._parameter_checks, self.get_params(deep=False))
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            check_integer(self.batch_size, "batch_size", meaning="or 'auto'")
        if self.n_iter_no_change != math.inf:
            check_integer(self.n_iter_no_change, "n_iter_no_change", meaning="or numpy.inf for no limit")
        if not isinstance(self.verbose, (bool, np.bool_, numbers.Integral)):
            raise TypeError(f"verbose must be True, False or an integer, got {self.verbose!r}")
        if self.dropout and self._solver_name() == "lbfgs":
            raise ValueError(f"dropout={self.dropout} makes the loss random, which L-BFGS cannot minimise; use "
                             "solver='adam' or 'sgd', or dropout=0")
        if self.dtype is not None:
            backend.resolve_dtype(self.dtype)  # raises ValueError naming float32 and float64

    def _validated_X(self, X, y=NO_TARGETS, **options):
        """validate_data with scikit-learn's dtypes and sparse formats; a sparse X becomes dense here.

        Returns X, or (X, y) when ``y`` is given.
        """
        checked = _validation.validate_data(self, X, y, accept_sparse=SPARSE_FORMATS, dtype=INPUT_DTYPES,
                                            **options)
        X_checked, y_checked = checked if y is not NO_TARGETS else (checked, None)
        if _sparse.issparse(X_checked):
            X_checked = X_checked.toarray()
        return X_checked if y is NO_TARGETS else (X_checked, y_checked)

    def _validate_input(self, X):
        """X for prediction: validated against the fitted model (n_features_in_, feature names)."""
        _validation.check_is_fitted(self, "coefs_")
        return self._validated_X(X, reset=False)

    def _forward(self, X):
        """The network's output for validated X, shape (n_samples, n_outputs_)."""
        return self._network_from_coefs().forward(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # accepted, and densified once at the boundary
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
        Hidden-layer activation ("logistic" is scikit-learn's name for "sigmoid"), or any other name in
        :data:`numnet.ACTIVATIONS` (one registered with :func:`numnet.register_activation` included) but the
        output activations softmax and exp.
    solver : {"adam", "sgd", "lbfgs", "momentum", "nesterov", "adagrad", "rmsprop"}, default "adam"
        "lbfgs" is full-batch L-BFGS-B (SciPy); "adam" and "sgd" are scikit-learn's stochastic solvers ("sgd"
        uses ``momentum`` and ``nesterovs_momentum``); the others are numnet's optimisers.
    alpha : float, default 0.0001
        L2 penalty: each batch's loss gains ½·alpha·Σ‖W‖² / (its sample count, or its weights' sum).
    batch_size : int or "auto", default "auto"
        Samples per step; "auto" is min(200, n_samples). Not used by lbfgs.
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        The SGD solvers' schedule: "invscaling" sets the rate to learning_rate_init / (t + 1)^power_t after
        each epoch, t the samples seen; "adaptive" divides it by 5 whenever the stopping rule would stop,
        and stops once it is at most 1e-6 (:class:`numnet.schedules.ReduceOnPlateau`). scikit-learn's
        docstring says the rate drops after two epochs without improvement; its code, followed here, drops
        it after more than ``n_iter_no_change``.
    learning_rate_init : float, default 0.001
    power_t : float, default 0.5
        The exponent of "invscaling".
    max_iter : int, default 200
        The most epochs (stochastic solvers) or L-BFGS iterations one call to ``fit`` runs.
    shuffle : bool, default True
        Visit the samples in a new random order every epoch.
    random_state : int, RandomState or None, default None
        Draws the initial weights, the validation split and the batch order (in scikit-learn's order).
    tol : float, default 1e-4
        The improvement of the training loss (or validation score) that counts as progress; for lbfgs,
        the gradient size at which it stops.
    verbose : bool or int, default False
        Print the loss after every epoch.
    warm_start : bool, default False
        ``fit`` continues from the current weights (with a fresh optimiser) instead of starting over.
    momentum : float in [0, 1), default 0.9
        Momentum of the "sgd", "momentum" and "nesterov" solvers.
    nesterovs_momentum : bool, default True
        Whether "sgd" uses Nesterov momentum.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data (stratified for binary targets, as scikit-learn's code
        does), stop when its accuracy has not improved by ``tol`` for more than ``n_iter_no_change``
        epochs, and keep the best weights.
    validation_fraction : float in (0, 1), default 0.1
    beta_1, beta_2, epsilon : float, defaults 0.9, 0.999, 1e-8
        Adam's hyperparameters.
    n_iter_no_change : int or numpy.inf, default 10
    max_fun : int, default 15000
        The most loss evaluations of lbfgs.
    dropout : float in [0, 1), default 0.0
        numnet's addition: a Dropout layer of this rate after every hidden layer (inverted dropout, in
        training only; its masks come from ``random_state``). Stochastic solvers only: L-BFGS needs a
        deterministic loss.
    dtype : {None, "float32", "float64"}, default None
        The precision of the weights; None follows the training data (float32 stays float32, anything
        else becomes float64), as in scikit-learn.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str, shape (``n_features_in_``,)
        Only when X had string column names.
    n_iter_ : int
        Epochs (or L-BFGS iterations) run by the last call to fit or partial_fit.
    loss_ : float
        The last epoch's training loss (cross-entropy plus the L2 term); lbfgs: the final loss.
    loss_curve_ : list of float
        The training loss of every epoch so far (stochastic solvers only, as in scikit-learn).
    best_loss_ : float or None
        The lowest training loss so far (None with early stopping; stochastic solvers only).
    validation_scores_ : list of float or None
        The validation accuracy after every epoch (None without early stopping; stochastic solvers only).
    best_validation_score_ : float or None
    coefs_ : list of ndarray, shape (n_in, n_out) each
        Views into the network; assignable, as in scikit-learn.
    intercepts_ : list of ndarray, shape (n_out,) each
    n_outputs_, n_layers_ : int
    out_activation_ : str
    t_ : int
        Training samples seen by the stochastic solvers.
    network_ : numnet.Network
        The trained network itself.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> model = MLPClassifier(hidden_layer_sizes=(20,), solver="lbfgs", random_state=0).fit(X, y)
    >>> model.predict_proba(X[:2]).shape
    (2, 3)
    """

    #: The loss scikit-learn's MLPClassifier reports (not a parameter there either).
    loss = "log_loss"

    @_metaestimators.available_if(_partial_fit_is_available)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), continuing from the current weights and optimiser (stochastic solvers only).

        Parameters
        ----------
        X : array_like or sparse matrix, shape (n_samples, n_features)
        y : array_like, shape (n_samples,) or (n_samples, n_labels)
        sample_weight : array_like, shape (n_samples,), optional
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
        return self._fit(X, y, sample_weight, incremental=True)

    def _stratifies_split(self):
        # scikit-learn's code stratifies when there is one output, i.e. for binary targets only (its
        # docstring says "except in a multilabel setting", but multiclass targets have several outputs too)
        return self.n_outputs_ == 1

    def _loss_name(self):
        binarizer = self._label_binarizer
        return "softmax_cross_entropy" if binarizer.y_type_ == "multiclass" else "binary_cross_entropy"

    def _validate_training_data(self, X, y, *, reset, incremental):
        """(X, Y): validated inputs and the binarized targets, a bool matrix (n_samples, n_outputs)."""
        X, y = self._validated_X(X, y, reset=reset, multi_output=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = _validation.column_or_1d(y, warn=True)
        _multiclass.check_classification_targets(y)
        if not hasattr(self, "classes_") or not (self.warm_start or incremental):
            self._label_binarizer = _preprocessing.LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            _check_known_classes(_multiclass.unique_labels(y), self.classes_, same=self.warm_start)
        # bool, as in scikit-learn: the stratified split then names the classes as it does ('True')
        return X, self._label_binarizer.transform(y).astype(bool)

    def _validation_targets(self, Y_val):
        return self._label_binarizer.inverse_transform(Y_val)

    def _score_outputs(self, y_val, output, weights_val):
        return _metrics.accuracy_score(y_val, self._labels(output), sample_weight=weights_val)

    def _labels(self, output):
        return self._label_binarizer.inverse_transform(output.ravel() if self.n_outputs_ == 1 else output)

    def predict(self, X):
        """Predicted labels, shape (n_samples,), or (n_samples, n_labels) for multilabel targets."""
        return self._labels(self._forward(self._validate_input(X)))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``.

        Binary problems give [1 - p, p]; multilabel problems give each label's independent probability.
        """
        output = self._forward(self._validate_input(X))
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

    ``loss="squared_error"``: linear outputs trained on half the squared error, C = 1/(2n) Σ_i ‖a_i - y_i‖²,
    plus the L2 term. For several outputs numnet sums the squared errors over outputs where scikit-learn's
    reported loss averages them (its gradient sums them, as numnet's does), so ``loss_`` is n_outputs times
    scikit-learn's data term; for one output they agree. ``loss="poisson"``: an exponential output (the log
    link) trained on half the Poisson deviance, for counts or rates y >= 0.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default "squared_error"
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, learning_rate_init, power_t,
    max_iter, shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
    validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun, dtype
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
    >>> model = MLPRegressor(hidden_layer_sizes=(10,), solver="lbfgs", random_state=0).fit(X, X[:, 0] ** 2)
    >>> model.predict(X[:3]).shape
    (3,)
    """

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, dtype=None):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
            max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
            beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, dropout=dropout,
            dtype=dtype)
        self.loss = loss

    @_metaestimators.available_if(_partial_fit_is_available)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights and optimiser (stochastic solvers only).

        Parameters
        ----------
        X : array_like or sparse matrix, shape (n_samples, n_features)
        y : array_like, shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array_like, shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _check_parameters(self):
        super()._check_parameters()
        OneOf(*REGRESSION_LOSSES, ignore_case=True).check(self.loss, "loss")

    def _stratifies_split(self):
        return False

    def _loss_name(self):
        return REGRESSION_LOSSES[self.loss.strip().lower()]

    def _validate_training_data(self, X, y, *, reset, incremental):
        """(X, Y): validated inputs and targets as a matrix, shape (n_samples, n_outputs)."""
        X, y = self._validated_X(X, y, reset=reset, multi_output=True, y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = _validation.column_or_1d(y, warn=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        # the loss's own checks (Poisson needs counts >= 0)
        return X, as_target_matrix(Y, get_loss(self._loss_name()), Y.shape[1], np.float64)

    def _validation_targets(self, Y_val):
        return Y_val

    def _score_outputs(self, y_val, output, weights_val):
        return _metrics.r2_score(y_val, output, sample_weight=weights_val)

    def predict(self, X):
        """Predicted values, shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        output = self._forward(self._validate_input(X))
        return output.ravel() if self.n_outputs_ == 1 else output

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _dense_layers(network):
    """The network's Dense layers, whose W and b are coefs_ and intercepts_ (Dropout layers hold nothing)."""
    return [layer for layer in network.layers if isinstance(layer, Dense)]


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
    """The numnet activation name for ``name`` (scikit-learn's or any of ACTIVATIONS); one that says it is
    ``output_only`` (softmax, exp) is refused."""
    if not isinstance(name, str):
        raise TypeError(f"activation must be a string such as 'relu', got {name!r}")
    key = name.strip().lower()
    # raises ValueError listing the valid names (scikit-learn's "logistic" is one)
    if get_activation(key).output_only:
        raise ValueError(f"activation={name!r} is for output layers; choose relu, tanh, logistic or identity")
    return key


def _layer_sizes_of(coefs, intercepts):
    """[n_inputs, ..., n_outputs] from assigned coefs_ and intercepts_, checked to chain."""
    if len(coefs) == 0 or len(coefs) != len(intercepts):
        raise ValueError(f"coefs_ and intercepts_ need one array per layer each, got {len(coefs)} and "
                         f"{len(intercepts)}")
    sizes = [coefs[0].shape[0]] + [W.shape[1] for W in coefs]
    for index, (W, b) in enumerate(zip(coefs, intercepts)):
        if W.ndim != 2 or W.shape[0] != sizes[index] or b.shape != (W.shape[1],):
            raise ValueError(f"coefs_[{index}] has shape {W.shape} and intercepts_[{index}] shape {b.shape}; "
                             f"layer {index} needs ({sizes[index]}, n_out) and (n_out,)")
    return [int(size) for size in sizes]


def _float_dtype(dtype):
    """float32 stays float32; any other dtype means float64 (scikit-learn's rule for inputs)."""
    return np.float32 if dtype == np.float32 else np.float64


def _check_solver(solver):
    if not isinstance(solver, str):
        raise TypeError(f"solver must be a string such as 'adam', got {solver!r}")
    if solver.strip().lower() != "lbfgs":
        get_optimizer(solver)  # raises ValueError listing the valid names for an unknown one


def _check_known_classes(labels, classes, same):
    """Labels of a later fit must be the fitted classes (warm_start) or a subset of them (partial_fit).

    The messages are scikit-learn's (its tests match them).
    """
    if same and set(labels) != set(classes):
        raise ValueError("warm_start can only be used where `y` has the same classes as in the previous call "
                         f"to fit. Previously got {classes}, `y` has {labels}")
    if not same and np.setdiff1d(labels, classes).size:
        raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {classes}. 'y' has "
                         f"{labels}.")
