"""Tests of numnet.sklearn against scikit-learn: its estimator check suite, and its own MLP on the same data."""

import copy
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import neural_network  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_breast_cancer, load_digits, load_iris, load_wine, make_friedman1, make_multilabel_classification)
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import numnet  # noqa: E402
from fresh_interpreter import missing_package_message, run_fresh  # noqa: E402
from numnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

#: Epochs for scikit-learn's estimator checks: the 100 its own checks give its MLP (instead of the default
#: 200, to halve the suite's time); enough to clear their accuracy (0.83) and R² (0.5) bars.
CHECK_MAX_ITER = 100
#: Largest accepted gap between numnet's and scikit-learn's test scores (accuracy or R²). The two differ
#: in initial biases (zero vs uniform) and batch order; over seeds 0-3 the largest gap measured was 0.032,
#: and either library's own test score moves by up to 0.05 from one seed to the next.
SCORE_GAP = 0.05
#: Relative tolerance for a loss computed two ways in float64 (a few roundings of sums over ~150 terms).
LOSS_RTOL = 1e-10

IGNORE_CONVERGENCE = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def spiral(n_per_class=100, n_classes=3, seed=0):
    """E3 (docs/tutorials/e03-spiral.md, Specification): r = linspace(0, 1), t = linspace(4j, 4(j+1)) + N(0, 0.2²),
    x = (r sin t, r cos t)."""
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    angle = np.concatenate([np.linspace(4 * j, 4 * (j + 1), n_per_class) for j in range(n_classes)])
    angle += rng.normal(0.0, 0.2, angle.size)
    return np.column_stack([radius * np.sin(angle), radius * np.cos(angle)]), labels


def scaled_iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def scaled_split(X, y, seed=0, stratify=True):
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed,
                                                        stratify=y if stratify else None)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


# ---- scikit-learn's own estimator checks ---------------------------------------------------------------


@IGNORE_CONVERGENCE
@parametrize_with_checks([MLPClassifier(max_iter=CHECK_MAX_ITER), MLPRegressor(max_iter=CHECK_MAX_ITER)])
def test_estimators_pass_scikit_learns_estimator_checks(estimator, check):
    # No check is marked as an expected failure: both estimators pass every check that applies to them.
    check(estimator)


def _dropout_cannot_equal_repeated_rows(estimator):
    reason = "dropout draws one mask per row, so a row of weight 2 and two copies of it see different masks"
    return {f"check_sample_weight_equivalence_on_{kind}_data": reason for kind in ("dense", "sparse")}


@IGNORE_CONVERGENCE
@parametrize_with_checks([MLPClassifier(max_iter=CHECK_MAX_ITER, dropout=0.1)],
                         expected_failed_checks=_dropout_cannot_equal_repeated_rows)
def test_the_dropout_estimator_passes_every_check_but_weights_as_repeated_rows(estimator, check):
    check(estimator)


# ---- optional dependency --------------------------------------------------------------------------------


def test_importing_numnet_does_not_import_scikit_learn():
    run_fresh("import sys, numnet; assert 'sklearn' not in sys.modules, sorted(sys.modules)")


def test_importing_the_estimators_without_scikit_learn_says_how_to_install_it():
    assert "pip install 'numnet[sklearn]'" in missing_package_message("sklearn", "import numnet.sklearn")


# ---- fitted attributes and output shapes, against scikit-learn's MLP --------------------------------------


def _targets(kind, rng, n_samples):
    X = rng.normal(size=(n_samples, 4))
    if kind == "binary":
        return X, np.where(X[:, 0] > 0, "yes", "no")
    if kind == "multiclass":
        return X, np.digitize(X[:, 0], [-0.5, 0.5])
    if kind == "multilabel":
        return X, (X[:, :3] > 0).astype(np.int64)
    if kind == "single_output":
        return X, X @ np.array([1.0, -2.0, 0.5, 0.0])
    return X, X[:, :2] * np.array([1.0, -3.0])


@IGNORE_CONVERGENCE
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "single_output", "multi_output"])
def test_fitted_attributes_and_output_shapes_match_scikit_learn(kind):
    X, y = _targets(kind, np.random.default_rng(0), 40)
    is_classification = kind in ("binary", "multiclass", "multilabel")
    ours_class, theirs_class = ((MLPClassifier, neural_network.MLPClassifier) if is_classification
                                else (MLPRegressor, neural_network.MLPRegressor))
    settings = dict(hidden_layer_sizes=(7, 5), max_iter=3, random_state=0)
    ours, theirs = ours_class(**settings).fit(X, y), theirs_class(**settings).fit(X, y)
    assert [w.shape for w in ours.coefs_] == [w.shape for w in theirs.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in theirs.intercepts_]
    for name in ("n_features_in_", "n_outputs_", "n_layers_", "out_activation_", "n_iter_"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert len(ours.loss_curve_) == len(theirs.loss_curve_) == 3
    assert ours.predict(X).shape == theirs.predict(X).shape
    if is_classification:
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
        assert ours.predict_proba(X).shape == theirs.predict_proba(X).shape
        assert set(np.unique(ours.predict(X))) <= set(np.unique(y))


def test_string_labels_are_learned_and_predicted_as_strings():
    X, y = scaled_iris()
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = MLPClassifier(hidden_layer_sizes=(10,), learning_rate_init=0.01, max_iter=200, random_state=0)
    model.fit(X, names)
    np.testing.assert_array_equal(model.classes_, ["setosa", "versicolor", "virginica"])
    assert model.predict(X).dtype.kind == "U"
    # Iris is nearly separable after scaling: scikit-learn's MLP with these settings scores 0.98.
    assert model.score(X, names) >= 0.95


@IGNORE_CONVERGENCE
def test_binary_probabilities_are_one_minus_p_and_p_and_log_probabilities_their_logs():
    X, y = _targets("binary", np.random.default_rng(1), 30)
    model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0).fit(X, y)
    probabilities = model.predict_proba(X)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(model.predict(X), model.classes_[np.argmax(probabilities, axis=1)])
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(probabilities), rtol=1e-15)


@IGNORE_CONVERGENCE
def test_multilabel_predictions_are_an_indicator_matrix_scored_like_scikit_learn():
    X, Y = make_multilabel_classification(n_samples=300, n_features=10, n_classes=4, random_state=0)
    X_train, X_test, Y_train, Y_test = scaled_split(X, Y, stratify=False)
    settings = dict(hidden_layer_sizes=(50,), max_iter=100, random_state=0)
    ours = MLPClassifier(**settings).fit(X_train, Y_train)
    theirs = neural_network.MLPClassifier(**settings).fit(X_train, Y_train)
    predicted = ours.predict(X_test)
    assert predicted.shape == Y_test.shape and set(np.unique(predicted)) <= {0, 1}
    # Subset accuracy (every label right) on 75 test samples: one sample is 0.013.
    assert abs(ours.score(X_test, Y_test) - theirs.score(X_test, Y_test)) <= 2 * SCORE_GAP


# ---- loss, batch size and stopping rules, against scikit-learn's definitions ------------------------------


@pytest.mark.parametrize("kind", ["binary", "multiclass", "single_output"])
def test_loss_is_scikit_learns_loss_plus_alpha_over_2n_times_the_squared_weights(kind):
    X, y = _targets(kind, np.random.default_rng(2), 60)
    alpha = 0.3
    model_class = MLPRegressor if kind == "single_output" else MLPClassifier
    model = model_class(hidden_layer_sizes=(6,), alpha=alpha, batch_size=60, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        model.fit(X, y)
    if kind == "single_output":
        data_term = 0.5 * np.mean((y - model.predict(X)) ** 2)  # scikit-learn's squared_loss: mean / 2
    else:
        data_term = log_loss(y, model.predict_proba(X), labels=model.classes_)
    penalty = alpha / (2 * len(X)) * sum(np.sum(W ** 2) for W in model.coefs_)
    # One full-batch epoch: loss_ is the loss at the weights before its single update.
    model.partial_fit(X, y)
    np.testing.assert_allclose(model.loss_, data_term + penalty, rtol=LOSS_RTOL)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_fit_leaves_the_networks_own_l2_as_it_found_it(solver):
    # scikit-learn's alpha is divided by each batch's size: a penalty of the training step's, which must not
    # leak into network_.l2 (summary, save_model and loss_value would then report alpha / last batch size).
    X, y = _targets("multiclass", np.random.default_rng(0), 50)
    model = MLPClassifier(hidden_layer_sizes=(5,), alpha=0.3, batch_size=16, max_iter=4, solver=solver,
                          random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        model.fit(X, y)
        assert model.network_.l2 == 0.0
        model.partial_fit(X, y) if solver != "lbfgs" else model.fit(X, y)
    assert model.network_.l2 == 0.0 and model.network_.l1 == 0.0
    # so the network's own loss is the data term alone, as scikit-learn's log_loss computes it
    loss = model.network_.loss_value(X, _class_indices(model, y))
    np.testing.assert_allclose(loss, log_loss(y, model.predict_proba(X), labels=model.classes_), rtol=LOSS_RTOL)


@IGNORE_CONVERGENCE
@pytest.mark.parametrize("n_samples, steps_per_epoch", [(450, 3), (150, 1)])
def test_auto_batch_size_is_200_or_all_samples(n_samples, steps_per_epoch):
    # "auto" = min(200, n_samples): 450 samples -> batches of 200, 200, 50 (3 steps); 150 -> one batch.
    X, y = _targets("single_output", np.random.default_rng(3), n_samples)
    model = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y)
    assert model.network_.optimizer.state["step"] == 2 * steps_per_epoch


@IGNORE_CONVERGENCE
def test_batch_size_above_the_sample_count_warns_and_uses_every_sample():
    X, y = _targets("single_output", np.random.default_rng(3), 50)
    with pytest.warns(UserWarning, match="batch_size=80 is larger than the 50"):
        model = MLPRegressor(hidden_layer_sizes=(3,), batch_size=80, max_iter=2, random_state=0).fit(X, y)
    assert model.network_.optimizer.state["step"] == 2


@pytest.mark.parametrize("early_stopping", [False, True])
def test_stopping_after_n_iter_no_change_epochs_matches_scikit_learn(early_stopping):
    # With tol=1e9 only epoch 1 counts as progress (on the starting best, an infinite loss or a score
    # of -inf); epochs 2, 3, 4, 5 are idle and the count, 4, first exceeds n_iter_no_change=3 at epoch 5.
    # No ConvergenceWarning: the rule stopped training.
    X, y = scaled_iris()
    settings = dict(hidden_layer_sizes=(5,), tol=1e9, n_iter_no_change=3, early_stopping=early_stopping,
                    random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SklearnConvergenceWarning)
        ours = MLPClassifier(**settings).fit(X, y)
        theirs = neural_network.MLPClassifier(**settings).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 5
    assert (ours.validation_scores_ is None) == (theirs.validation_scores_ is None) == (not early_stopping)


def test_reaching_max_iter_warns_with_scikit_learns_and_numnets_convergence_warning():
    X, y = scaled_iris()
    with pytest.warns(SklearnConvergenceWarning, match=r"Maximum iterations \(2\)") as record:
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0).fit(X, y)
    assert any(isinstance(entry.message, numnet.ConvergenceWarning) for entry in record)


def test_early_stopping_ends_with_the_weights_of_the_best_validation_epoch():
    X, y = scaled_iris()
    settings = dict(hidden_layer_sizes=(10,), learning_rate_init=0.01, early_stopping=True,
                    validation_fraction=0.2, n_iter_no_change=5, random_state=0)
    model = MLPClassifier(max_iter=300, **settings).fit(X, y)
    scores = model.validation_scores_
    best_epoch = int(np.argmax(scores))  # the first epoch reaching the best score (later ties do not count)
    assert len(scores) == model.n_iter_ < 300 and model.best_loss_ is None
    assert model.best_validation_score_ == scores[best_epoch] and best_epoch < model.n_iter_ - 1
    # The same run cut off right after its best epoch ends with that epoch's weights, bit for bit.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        shorter = MLPClassifier(max_iter=best_epoch + 1, **settings).fit(X, y)
    for ours, reference in zip(model.coefs_ + model.intercepts_, shorter.coefs_ + shorter.intercepts_,
                               strict=True):
        np.testing.assert_array_equal(ours, reference)


# ---- warm start, partial_fit, pickling -------------------------------------------------------------------


@IGNORE_CONVERGENCE
def test_warm_start_continues_training_and_a_cold_refit_starts_over():
    X, y = scaled_iris()
    settings = dict(hidden_layer_sizes=(10,), max_iter=5, random_state=0)
    cold = MLPClassifier(**settings).fit(X, y)
    first_curve = list(cold.loss_curve_)
    cold.fit(X, y)
    assert cold.loss_curve_ == first_curve  # same random_state: the same run, bit for bit
    warm = MLPClassifier(warm_start=True, **settings).fit(X, y).fit(X, y)
    assert len(warm.loss_curve_) == 10 and warm.n_iter_ == 5
    assert warm.loss_curve_[5] < warm.loss_curve_[0]  # a restart would repeat loss_curve_[0] exactly


def test_partial_fit_needs_classes_first_and_runs_one_epoch_per_call():
    X, y = scaled_iris()
    model = MLPClassifier(hidden_layer_sizes=(10,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        model.partial_fit(X, y)
    model.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])  # the first batch may miss a class
    for calls in range(2, 31):
        model.partial_fit(X, y)
        assert model.n_iter_ == 1 and len(model.loss_curve_) == calls
    assert model.loss_curve_[-1] < model.loss_curve_[1]
    with pytest.raises(ValueError, match="classes"):
        model.partial_fit(X, np.where(y == 2, 7, y))


def test_partial_fit_refuses_early_stopping():
    X, y = scaled_iris()
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


@IGNORE_CONVERGENCE
@pytest.mark.parametrize("duplicate", [lambda model: pickle.loads(pickle.dumps(model)), copy.deepcopy],
                         ids=["pickle", "deepcopy"])
def test_a_pickled_or_copied_model_keeps_training_exactly_like_the_original(duplicate):
    X, y = _targets("single_output", np.random.default_rng(4), 80)
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    duplicated = duplicate(model)
    before = model.predict(X)
    np.testing.assert_array_equal(duplicated.predict(X), before)
    model.partial_fit(X, y)
    duplicated.partial_fit(X, y)
    assert not np.array_equal(duplicated.predict(X), before)
    np.testing.assert_array_equal(duplicated.predict(X), model.predict(X))
    np.testing.assert_array_equal(duplicated.coefs_[0], model.coefs_[0])


# ---- dtypes and seeds ---------------------------------------------------------------------------------------


@IGNORE_CONVERGENCE
def test_float32_input_trains_float32_weights_like_scikit_learn_unless_dtype_says_otherwise():
    X, y = _targets("single_output", np.random.default_rng(5), 40)
    X32 = X.astype(np.float32)
    theirs = neural_network.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2).fit(X32, y)
    ours = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2).fit(X32, y)
    assert ours.coefs_[0].dtype == theirs.coefs_[0].dtype == np.float32
    assert ours.predict(X).dtype == np.float32
    forced = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, dtype="float64").fit(X32, y)
    assert forced.coefs_[0].dtype == np.float64


@IGNORE_CONVERGENCE
def test_a_random_state_instance_seeds_the_run_like_its_integer():
    X, y = scaled_iris()
    settings = dict(hidden_layer_sizes=(5,), max_iter=3)
    from_instance = MLPClassifier(random_state=np.random.RandomState(7), **settings).fit(X, y)
    from_integer = MLPClassifier(random_state=7, **settings).fit(X, y)
    assert from_instance.loss_curve_ == from_integer.loss_curve_


# ---- scikit-learn tooling -------------------------------------------------------------------------------


@IGNORE_CONVERGENCE
def test_clone_gives_an_unfitted_copy_with_the_same_parameters():
    model = MLPClassifier(hidden_layer_sizes=(3, 2), solver="rmsprop", alpha=0.5, random_state=3)
    model.fit(*scaled_iris())
    cloned = clone(model)
    assert cloned.get_params() == model.get_params()
    assert not hasattr(cloned, "network_") and not hasattr(cloned, "coefs_")


@IGNORE_CONVERGENCE
def test_pipeline_grid_search_and_cross_validation_work_and_score_like_scikit_learn():
    X, y = load_iris(return_X_y=True)
    ours = make_pipeline(StandardScaler(), MLPClassifier(max_iter=150, random_state=0))
    search = GridSearchCV(ours, {"mlpclassifier__hidden_layer_sizes": [(2,), (20,)]}, cv=3).fit(X, y)
    assert search.best_params_ == {"mlpclassifier__hidden_layer_sizes": (20,)}
    theirs = make_pipeline(StandardScaler(), neural_network.MLPClassifier(max_iter=150, random_state=0))
    our_scores = cross_val_score(ours, X, y, cv=3)
    their_scores = cross_val_score(theirs, X, y, cv=3)
    assert abs(our_scores.mean() - their_scores.mean()) <= SCORE_GAP


def test_verbose_prints_the_loss_of_every_epoch(capsys):
    X, y = scaled_iris()
    MLPClassifier(hidden_layer_sizes=(3,), tol=1e9, n_iter_no_change=1, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Iteration 1, loss = ") and lines[1].startswith("Iteration 2, loss = ")
    assert "did not improve" in lines[-1]


def test_feature_names_are_recorded_from_a_data_frame():
    pandas = pytest.importorskip("pandas")
    X, y = scaled_iris()
    frame = pandas.DataFrame(X, columns=["a", "b", "c", "d"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2).fit(frame, y)
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c", "d"])


@pytest.mark.parametrize("parameters, error, message", [
    ({"hidden_layer_sizes": (10, 0)}, ValueError, "hidden_layer_sizes must hold positive integers"),
    ({"activation": "rleu"}, ValueError, "did you mean 'relu'"),
    ({"activation": "softmax"}, ValueError, "output layers"),
    ({"learning_rate": "adaptve"}, ValueError, "learning_rate must be one of constant, invscaling, adaptive"),
    ({"solver": "adm"}, ValueError, "did you mean 'adam'"),
    ({"alpha": -1.0}, ValueError, "alpha must be a finite number >= 0, got -1.0"),
    ({"alpha": True}, TypeError, "alpha must be a real number, got bool: True"),
    ({"alpha": "0.1"}, TypeError, "alpha must be a real number, got str: '0.1'"),
    ({"batch_size": 0}, ValueError, r"batch_size must be a positive integer \(or 'auto'\), got 0"),
    ({"learning_rate_init": 0.0}, ValueError, "learning_rate_init must be a finite number > 0"),
    ({"max_iter": 0}, ValueError, "max_iter must be a positive integer, got 0"),
    ({"max_iter": 2.5}, TypeError, "max_iter must be a positive integer, got 2.5"),
    ({"max_fun": 0}, ValueError, "max_fun must be a positive integer"),
    ({"beta_2": 1.0}, ValueError, r"beta_2 must be in \[0, 1\), got 1.0"),
    ({"momentum": 1.0}, ValueError, r"momentum must be in \[0, 1\), got 1.0"),
    ({"validation_fraction": 1.0}, ValueError, r"validation_fraction must be in \(0, 1\), got 1.0"),
    ({"n_iter_no_change": 0}, ValueError, r"n_iter_no_change must be a positive integer \(or numpy.inf"),
    ({"shuffle": "yes"}, TypeError, "shuffle must be True or False"),
    ({"dtype": "int8"}, ValueError, "float32, float64"),
])
def test_invalid_parameters_are_reported_by_fit_with_the_offending_value(parameters, error, message):
    model = MLPClassifier(**parameters)  # the constructor stores anything; fit validates
    with pytest.raises(error, match=message):
        model.fit(*scaled_iris())


# ---- accuracy and R² next to scikit-learn's MLP ---------------------------------------------------------


def _digits():
    return scaled_split(*load_digits(return_X_y=True))


def _spiral():
    X, y = spiral()
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)  # already in [-1, 1]


def _friedman():
    return scaled_split(*make_friedman1(n_samples=800, noise=0.5, random_state=0), stratify=False)


@IGNORE_CONVERGENCE
@pytest.mark.parametrize("load, ours_class, theirs_class, settings", [
    (_digits, MLPClassifier, neural_network.MLPClassifier, dict(hidden_layer_sizes=(64,), max_iter=60)),
    (_spiral, MLPClassifier, neural_network.MLPClassifier,
     dict(hidden_layer_sizes=(50, 50), learning_rate_init=0.01, max_iter=300)),
    (_friedman, MLPRegressor, neural_network.MLPRegressor,
     dict(hidden_layer_sizes=(50,), learning_rate_init=0.01, max_iter=300)),
], ids=["digits", "spiral", "friedman1"])
def test_test_score_is_within_a_few_points_of_scikit_learns(load, ours_class, theirs_class, settings):
    X_train, X_test, y_train, y_test = load()
    ours = ours_class(random_state=0, **settings).fit(X_train, y_train)
    theirs = theirs_class(random_state=0, **settings).fit(X_train, y_train)
    assert abs(ours.score(X_test, y_test) - theirs.score(X_test, y_test)) <= SCORE_GAP


# ---- drop-in parity: lbfgs, learning-rate schedules, stopping, sample weights, Poisson -------------------

#: Central-difference step for the float64 lbfgs objective (numnet.gradcheck's NETWORK_STEP, for the
#: same reason: rounding noise ~1e-16·|C|/h stays far below the tolerance).
CENTRAL_STEP = 1e-5
#: Norm-wise relative error accepted between backprop's gradient and central differences: the O(h²)
#: truncation of smooth activations is ~1e-10 here; relu's kinks are avoided by the random inputs.
GRADIENT_TOLERANCE = 1e-7
#: numnet and scikit-learn run the same arithmetic in another order: losses and predictions agree to
#: rounding amplified by the optimiser (measured up to 8e-7 relative after 80 unconverged lbfgs iterations).
SAME_RUN_RTOL = 1e-5
#: numnet's Adam adds ε·√(1-β2^t) to √v where scikit-learn's adds ε (the same step up to ~1e-8 relative,
#: numnet.optimizers.adam_update); after 80 epochs the predictions differ by up to 2e-6 relative.
ADAM_RUN_RTOL = 1e-4
#: The accuracy parity tests: numnet's test accuracy, averaged over ten random states, may trail
#: scikit-learn's by at most one point.
ACCURACY_MARGIN = 0.01
TEN_RANDOM_STATES = range(10)


def _class_indices(model, y):
    """y as indices into model.classes_ (the targets numnet's Network takes)."""
    return np.searchsorted(model.classes_, y)


@pytest.mark.parametrize("n_labels", [2, 3])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_lbfgs_objective_gradient_matches_central_differences(n_labels, activation):
    # scikit-learn's test_gradient through the public API: the objective lbfgs minimises is network_'s loss
    # plus the L2 term alpha/n (Network.add_penalty), and its gradient is backprop's flat gradient buffer.
    rng = np.random.RandomState(42)
    X, y = rng.rand(5, 10), 1 + np.mod(np.arange(5) + 1, n_labels)
    model = MLPClassifier(activation=activation, hidden_layer_sizes=10, solver="lbfgs", alpha=1e-5,
                          max_iter=1, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        model.fit(X, y)
    network, targets, l2 = model.network_, _class_indices(model, y), 1e-5 / len(X)
    network.loss_and_gradients(network.prepare_inputs(X), network.prepare_targets(targets))
    network.add_penalty(l2=l2)
    analytic = network.flat_gradients.copy()
    theta = network.flat_parameters  # perturbed in place by numerical_gradient, and restored

    def objective(_):
        return network.loss_value(X, targets) + 0.5 * l2 * sum(np.sum(W ** 2) for W in model.coefs_)

    numeric = numnet.numerical_gradient(objective, theta, h=CENTRAL_STEP)
    assert numnet.relative_error(analytic, numeric) < GRADIENT_TOLERANCE


@pytest.mark.parametrize("model_class, X, y", [
    (MLPClassifier, *scaled_iris()),
    # one output: for several, scikit-learn's lbfgs is handed the mean over outputs as the loss but the
    # gradient of their sum, so its line searches differ from numnet's (which minimises the sum)
    (MLPRegressor, *_targets("single_output", np.random.default_rng(6), 80)),
])
def test_lbfgs_from_the_same_random_state_is_scikit_learns_run(model_class, X, y):
    settings = dict(solver="lbfgs", hidden_layer_sizes=(10,), random_state=3, max_iter=500)
    ours = model_class(**settings).fit(X, y)
    theirs = getattr(neural_network, model_class.__name__)(**settings).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=SAME_RUN_RTOL)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=SAME_RUN_RTOL, atol=SAME_RUN_RTOL)
    assert not hasattr(ours, "loss_curve_") and not hasattr(theirs, "loss_curve_")  # stochastic solvers only


@pytest.mark.parametrize("limit", [{"max_iter": 3}, {"max_fun": 5}])
def test_lbfgs_warns_when_its_iterations_or_evaluations_run_out(limit):
    X, y = scaled_iris()
    with pytest.warns(SklearnConvergenceWarning, match="lbfgs failed to converge") as record:
        model = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(10,), random_state=0, **limit).fit(X, y)
    assert any(isinstance(entry.message, numnet.ConvergenceWarning) for entry in record)
    assert model.n_iter_ <= limit.get("max_iter", limit.get("max_fun"))


@pytest.mark.parametrize("model_class", [MLPClassifier, MLPRegressor])
def test_lbfgs_has_no_partial_fit(model_class):
    assert not hasattr(model_class(solver="lbfgs"), "partial_fit")
    with pytest.raises(AttributeError) as raised:
        model_class(solver="lbfgs").partial_fit
    assert "lbfgs is not stochastic" in str(raised.value.__cause__)  # the reason, chained by available_if
    assert hasattr(model_class(solver="sgd"), "partial_fit")


def test_lbfgs_trains_float32_data_in_float32_and_agrees_with_float64():
    X, y = scaled_iris()
    settings = dict(solver="lbfgs", hidden_layer_sizes=(10,), random_state=0, max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        single = MLPClassifier(**settings).fit(X.astype(np.float32), y)
        double = MLPClassifier(**settings).fit(X, y)
    assert single.coefs_[0].dtype == np.float32 and double.coefs_[0].dtype == np.float64
    # 30 iterations in float32 (ε ≈ 1.2e-7) drift from float64 by far less than 1%
    np.testing.assert_allclose(single.loss_, double.loss_, rtol=1e-2)


@IGNORE_CONVERGENCE
def test_invscaling_rate_after_a_warm_start_counts_every_sample_seen():
    # scikit-learn's test_learning_rate_warmstart through network_: 4 samples, one epoch per fit; after
    # the second fit t = 8 samples seen, so the rate is 0.001 / (8 + 1)^0.25.
    X, y = [[3, 2], [1, 6], [5, 6], [-2, -4]], [1, 1, 1, 0]
    rates = {}
    for schedule in ("invscaling", "constant"):
        model = MLPClassifier(solver="sgd", hidden_layer_sizes=4, learning_rate=schedule, max_iter=1,
                              power_t=0.25, warm_start=True, random_state=0)
        rates[schedule] = [model.fit(X, y).network_.optimizer.current_learning_rate for _ in range(2)]
    assert rates["invscaling"][1] == pytest.approx(0.001 / 9 ** 0.25, rel=1e-15)
    assert rates["constant"] == [0.001, 0.001]


def test_adaptive_rate_is_divided_until_too_small_and_then_training_stops():
    # scikit-learn's test_adaptive_learning_rate through network_. With tol=0.5 no epoch after the first
    # improves, so every 11th epoch (count 11 > n_iter_no_change=10) divides the rate by 5: epochs 12, 23,
    # 34, 45, 56 take it from 1e-3 to 3.2e-7, and at epoch 67 it is at most 1e-6, so training stops.
    X, y = [[3, 2], [1, 6]], [1, 0]
    settings = dict(tol=0.5, max_iter=3000, solver="sgd", learning_rate="adaptive", random_state=0)
    model = MLPClassifier(**settings).fit(X, y)
    assert model.n_iter_ == 67 == neural_network.MLPClassifier(**settings).fit(X, y).n_iter_
    assert model.network_.optimizer.current_learning_rate == pytest.approx(1e-3 * 0.2 ** 5, rel=1e-12)


@pytest.mark.parametrize("n_iter_no_change", [2, 5, 10])
def test_training_stops_after_n_iter_no_change_plus_one_epochs_without_progress(n_iter_no_change):
    # scikit-learn's test_n_iter_no_change through loss_curve_: count, from the curve alone, the epochs in
    # a row whose loss failed to beat the best so far by tol; training stopped when that reached n + 1.
    X, y = _digits_binary()
    tol = 0.01
    model = MLPClassifier(tol=tol, max_iter=3000, solver="sgd", n_iter_no_change=n_iter_no_change,
                          random_state=0).fit(X, y)
    best, stalled = np.inf, []
    for loss in model.loss_curve_:
        stalled.append(stalled[-1] + 1 if stalled and loss > best - tol else (1 if loss > best - tol else 0))
        best = min(best, loss)
    assert stalled[-1] == n_iter_no_change + 1 and max(stalled[:-1]) <= n_iter_no_change
    assert model.n_iter_ == len(model.loss_curve_) < 3000


def test_infinite_n_iter_no_change_runs_every_epoch():
    # scikit-learn's test_n_iter_no_change_inf: with tol=1e9 no epoch but the first counts as progress,
    # and n_iter_no_change=inf never stops training, so it runs to max_iter and warns.
    X, y = _digits_binary()
    with pytest.warns(SklearnConvergenceWarning, match=r"Maximum iterations \(300\)"):
        model = MLPClassifier(tol=1e9, max_iter=300, solver="sgd", n_iter_no_change=np.inf,
                              random_state=0).fit(X, y)
    assert model.n_iter_ == len(model.loss_curve_) == 300


def _digits_binary():
    X, y = load_digits(n_class=2, return_X_y=True)
    return X[:100] / 16.0, y[:100]


@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
def test_integer_sample_weights_equal_repeated_rows_in_full_batch_training(solver):
    # Full batches (batch_size >= n): the weighted mean over the rows is the mean over the repeated rows,
    # and the same random_state draws the same initial weights; only the order of the sums differs.
    X, y = _targets("multiclass", np.random.default_rng(7), 30)
    counts = np.random.default_rng(8).integers(0, 4, 30)
    settings = dict(solver=solver, hidden_layer_sizes=(6,), batch_size=200, max_iter=40, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        weighted = MLPClassifier(**settings).fit(X, y, sample_weight=counts)
        repeated = MLPClassifier(**settings).fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=SAME_RUN_RTOL)
    assert weighted.n_iter_ == repeated.n_iter_


@IGNORE_CONVERGENCE
@pytest.mark.parametrize("solver, early_stopping", [("lbfgs", False), ("sgd", False), ("sgd", True)])
def test_sample_weights_give_scikit_learns_model(solver, early_stopping):
    # Mini-batches of 32 (each batch's L2 term over its weights' sum), and with early stopping the weighted
    # validation accuracy: the same run as scikit-learn's from the same random_state.
    X, y = scaled_iris()
    weights = np.random.default_rng(9).uniform(0.2, 3.0, len(y))
    settings = dict(solver=solver, hidden_layer_sizes=(8,), batch_size=32, max_iter=60, alpha=0.01,
                    learning_rate_init=0.05, early_stopping=early_stopping, random_state=0)
    ours = MLPClassifier(**settings).fit(X, y, sample_weight=weights)
    theirs = neural_network.MLPClassifier(**settings).fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=SAME_RUN_RTOL,
                               atol=SAME_RUN_RTOL)
    if early_stopping:
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=0, atol=1e-12)
    assert ours.score(X, y, sample_weight=weights) == theirs.score(X, y, sample_weight=weights)


@pytest.mark.parametrize("weights, message", [
    (np.ones(5), r"shape \(150,\)"),
    (-np.ones(150), "must be >= 0"),
    (np.full(150, np.nan), "NaN or infinity"),
])
def test_invalid_sample_weights_raise_value_error(weights, message):
    with pytest.raises(ValueError, match=message):
        MLPClassifier(max_iter=1).fit(*scaled_iris(), sample_weight=weights)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_poisson_regressor_is_scikit_learns_model(solver):
    rng = np.random.default_rng(10)
    X = rng.uniform(-1, 1, (120, 3))
    y = rng.poisson(np.exp(X @ np.array([0.8, -0.5, 0.3]) + 0.5))
    settings = dict(loss="poisson", solver=solver, hidden_layer_sizes=(5,), max_iter=80, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        ours, theirs = MLPRegressor(**settings).fit(X, y), neural_network.MLPRegressor(**settings).fit(X, y)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    rtol = ADAM_RUN_RTOL if solver == "adam" else SAME_RUN_RTOL
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=rtol)
    assert (ours.predict(X) > 0).all()


def test_poisson_regressor_refuses_negative_targets():
    with pytest.raises(ValueError, match="counts >= 0"):
        MLPRegressor(loss="poisson").fit(np.ones((3, 1)), [1.0, -2.0, 0.0])


def test_non_finite_weights_raise_scikit_learns_value_error_which_is_also_a_divergence_error():
    X = np.finfo(np.float64).max * np.random.default_rng(11).uniform(size=(10, 2))
    with warnings.catch_warnings(), pytest.raises(numnet.DivergenceError) as raised:
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in the products, as in scikit-learn
        MLPRegressor(max_iter=5).fit(X, np.ones(10))
    assert isinstance(raised.value, ValueError)
    assert str(raised.value).startswith("Solver produced non-finite parameter weights.")


@IGNORE_CONVERGENCE
def test_assigned_coefs_are_the_ones_predict_uses():
    X, y = _targets("single_output", np.random.default_rng(12), 20)
    model = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y)
    rng = np.random.default_rng(13)
    W0, b0, W1, b1 = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(3, 1)), rng.normal(size=1)
    model.coefs_[0] = W0  # one entry replaced
    model.intercepts_ = [b0, b1]  # a whole list replaced
    model.coefs_[1] = W1
    # relu hidden layer, identity output: ŷ = max(0, X W0 + b0) W1 + b1
    np.testing.assert_allclose(model.predict(X), (np.maximum(X @ W0 + b0, 0) @ W1 + b1)[:, 0], rtol=1e-12)
    assert model.coefs_[0] is model.network_.layers[0].params["W"]  # views again after the update


def test_sparse_input_trains_the_same_model_as_dense_input():
    sparse = pytest.importorskip("scipy.sparse")
    X, y = _digits_binary()
    settings = dict(solver="lbfgs", hidden_layer_sizes=(15,), random_state=1)
    dense_model = MLPClassifier(**settings).fit(X, y)
    sparse_model = MLPClassifier(**settings).fit(sparse.csr_matrix(X), y)
    np.testing.assert_array_equal(sparse_model.predict_proba(sparse.csc_matrix(X)), dense_model.predict_proba(X))


def _scaled_split_of(load):
    return scaled_split(*load(return_X_y=True))


def _mean_test_accuracy(model_class, data, settings, random_states):
    X_train, X_test, y_train, y_test = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        return np.mean([model_class(random_state=seed, **settings).fit(X_train, y_train).score(X_test, y_test)
                        for seed in random_states])


@pytest.mark.parametrize("load, hidden_layer_sizes", [
    (load_iris, (10,)), (load_wine, (20,)), (load_breast_cancer, (30,)),
], ids=["iris", "wine", "breast_cancer"])
def test_lbfgs_test_accuracy_over_ten_random_states_is_scikit_learns_within_a_point(load, hidden_layer_sizes):
    data = _scaled_split_of(load)
    settings = dict(solver="lbfgs", hidden_layer_sizes=hidden_layer_sizes)
    ours = _mean_test_accuracy(MLPClassifier, data, settings, TEN_RANDOM_STATES)
    theirs = _mean_test_accuracy(neural_network.MLPClassifier, data, settings, TEN_RANDOM_STATES)
    assert ours >= theirs - ACCURACY_MARGIN


def test_adaptive_test_accuracy_on_digits_over_ten_random_states_is_scikit_learns_within_a_point():
    # tol=1e-3 and n_iter_no_change=3 make plateaus, and so rate cuts, happen within ~50 epochs; training
    # ends when the rate falls to 1e-6 (measured: ~54 epochs, accuracy 0.974 for both libraries).
    data = _digits()
    settings = dict(solver="sgd", learning_rate="adaptive", hidden_layer_sizes=(64,), learning_rate_init=0.1,
                    tol=1e-3, n_iter_no_change=3)
    ours = _mean_test_accuracy(MLPClassifier, data, settings, TEN_RANDOM_STATES)
    theirs = _mean_test_accuracy(neural_network.MLPClassifier, data, settings, TEN_RANDOM_STATES)
    assert ours >= theirs - ACCURACY_MARGIN


# ---- numnet's dropout hyperparameter -------------------------------------------------------------------


@IGNORE_CONVERGENCE
def test_dropout_adds_a_dropout_layer_keeps_coefs_and_is_reproducible_from_random_state():
    X, y = spiral()
    model = MLPClassifier((32, 32), dropout=0.25, max_iter=30, random_state=3).fit(X, y)
    kinds = [layer.kind for layer in model.network_.layers]
    assert kinds == ["dense", "dropout", "dense", "dropout", "dense"]
    assert [W.shape for W in model.coefs_] == [(2, 32), (32, 32), (32, 3)]
    assert all(np.shares_memory(W, model.network_.flat_parameters) for W in model.coefs_)
    again = MLPClassifier((32, 32), dropout=0.25, max_iter=30, random_state=3).fit(X, y)
    np.testing.assert_array_equal(again.network_.flat_parameters, model.network_.flat_parameters)
    other = MLPClassifier((32, 32), dropout=0.25, max_iter=30, random_state=4).fit(X, y)
    assert not np.array_equal(other.network_.flat_parameters, model.network_.flat_parameters)
    # At prediction time dropout is the identity: the same input gives the same probabilities.
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("options, message", [({"dropout": 1.0}, "dropout must be"),
                                              ({"dropout": 0.2, "solver": "lbfgs"}, "L-BFGS cannot minimise")])
def test_bad_dropout_settings_are_refused_with_the_reason(options, message):
    X, y = spiral()
    with pytest.raises(ValueError, match=message):
        MLPClassifier((8,), max_iter=2, **options).fit(X, y)
