"""Tests of numnet.preprocessing against scikit-learn, hand-worked examples and exact invariants."""

import json
import math
import os
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numnet.errors import NotFittedError
from numnet.persistence import load_model
from numnet.preprocessing import (
    PLANE_FEATURES,
    MinMaxScaler,
    StandardScaler,
    label_encode,
    one_hot,
    plane_features,
    scaler_from_metadata,
    train_test_split,
)

# Scalers compute in float64; agreement with scikit-learn is limited only by float64 rounding.
FLOAT64_TOLERANCE = 1e-12
# A float32 result holds about 7 significant digits.
FLOAT32_TOLERANCE = 1e-6
# Round trips through a scaler lose a few ulps relative to the data's magnitude (values here are <= 1e3).
ROUND_TRIP_TOLERANCE = 1e-9

FAST = settings(max_examples=40, deadline=None)

finite_matrices = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=12),
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


# ---------------------------------------------------------------------------------------------------------
# one_hot
# ---------------------------------------------------------------------------------------------------------


def test_one_hot_of_a_hand_worked_example():
    # label 2 -> [0, 0, 1], label 0 -> [1, 0, 0], label 1 -> [0, 1, 0]
    expected = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    encoded = one_hot([2, 0, 1])
    assert encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded, expected)


def test_one_hot_matches_scikit_learn_one_hot_encoder():
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    labels = np.random.default_rng(3).integers(0, 7, size=50)
    encoder = preprocessing.OneHotEncoder(categories=[list(range(7))], sparse_output=False)
    expected = encoder.fit_transform(labels.reshape(-1, 1))
    np.testing.assert_array_equal(one_hot(labels, 7, dtype="float64"), expected)


@FAST
@given(hnp.arrays(np.int64, st.integers(1, 30), elements=st.integers(0, 9)), st.integers(0, 3))
def test_one_hot_argmax_gives_the_labels_back(labels, extra_classes):
    n_classes = int(labels.max()) + 1 + extra_classes
    encoded = one_hot(labels, n_classes)
    assert encoded.shape == (labels.size, n_classes)
    np.testing.assert_array_equal(encoded.sum(axis=1), np.ones(labels.size))
    np.testing.assert_array_equal(encoded.argmax(axis=1), labels)


def test_one_hot_infers_n_classes_from_the_largest_label():
    assert one_hot([0, 4]).shape == (2, 5)


def test_one_hot_accepts_whole_number_floats_and_returns_float64_on_request():
    encoded = one_hot(np.array([1.0, 0.0]), 2, dtype="float64")
    assert encoded.dtype == np.float64
    np.testing.assert_array_equal(encoded, [[0, 1], [1, 0]])


def test_one_hot_of_empty_labels_with_n_classes_is_an_empty_matrix():
    assert one_hot(np.array([], dtype=int), 4).shape == (0, 4)


@pytest.mark.parametrize(
    ("labels", "n_classes", "message"),
    [
        ([0, 1.5], None, "whole numbers"),
        ([0, np.nan], None, "whole numbers"),
        ([0, -1], None, "non-negative"),
        ([0, 3], 3, "out of range"),
        ([[0], [1]], None, "1-D"),
        ([], None, "n_classes"),
        ([0, 1], 0, "n_classes must be a positive integer"),
    ],
)
def test_one_hot_rejects_invalid_labels_with_a_clear_message(labels, n_classes, message):
    with pytest.raises(ValueError, match=message):
        one_hot(labels, n_classes)


def test_one_hot_of_string_labels_points_to_label_encode():
    with pytest.raises(TypeError, match="label_encode"):
        one_hot(["cat", "dog"])


def test_one_hot_rejects_an_integer_dtype():
    with pytest.raises(ValueError, match="float32"):
        one_hot([0, 1], dtype="int32")


# ---------------------------------------------------------------------------------------------------------
# label_encode
# ---------------------------------------------------------------------------------------------------------


def test_label_encode_of_strings_is_sorted_alphabetically():
    # sorted classes: cat=0, dog=1, emu=2
    indices, classes = label_encode(["dog", "cat", "emu", "dog"])
    assert classes.tolist() == ["cat", "dog", "emu"]
    assert indices.tolist() == [1, 0, 2, 1]
    assert indices.dtype == np.int64


def test_label_encode_matches_scikit_learn_label_encoder():
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    labels = np.array([7, -2, 7, 3, 3, 10])
    encoder = preprocessing.LabelEncoder()
    expected = encoder.fit_transform(labels)
    indices, classes = label_encode(labels)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(classes, encoder.classes_)


@FAST
# NumPy's fixed-width strings drop trailing NUL characters, so NUL is left out of the alphabet.
@given(st.lists(st.text(st.characters(blacklist_characters="\x00"), max_size=3), min_size=1, max_size=20))
def test_label_encode_classes_indexed_by_indices_give_the_labels_back(labels):
    indices, classes = label_encode(labels)
    assert classes[indices].tolist() == labels
    assert sorted(set(labels)) == classes.tolist()


@pytest.mark.parametrize(
    ("labels", "message"), [([], "empty"), ([[1, 2]], "1-D"), ([1.0, np.nan], "NaN")]
)
def test_label_encode_rejects_invalid_labels(labels, message):
    with pytest.raises(ValueError, match=message):
        label_encode(labels)


# ---------------------------------------------------------------------------------------------------------
# train_test_split
# ---------------------------------------------------------------------------------------------------------


def test_split_partitions_the_rows_and_keeps_x_and_y_paired():
    X = np.arange(40, dtype=np.float32).reshape(20, 2)  # row i is (2i, 2i + 1)
    y = np.arange(20) * 10.5  # continuous, so a plain random split
    X_train, X_test, y_train, y_test = train_test_split(X, y, seed=0)
    rows = np.concatenate([X_train[:, 0], X_test[:, 0]]) / 2
    assert sorted(rows.tolist()) == list(range(20))
    np.testing.assert_array_equal(np.concatenate([y_train, y_test]), rows * 10.5)
    assert X_train.dtype == np.float32 and X_test.shape == (4, 2)


@pytest.mark.parametrize(("n_samples", "test_size"), [(10, 0.25), (10, 0.2), (7, 0.5), (101, 0.1), (10, 3)])
def test_split_sizes_match_scikit_learn(n_samples, test_size):
    model_selection = pytest.importorskip("sklearn.model_selection")
    X = np.zeros((n_samples, 1))
    expected = model_selection.train_test_split(X, test_size=test_size, random_state=0)
    _, X_test, _, _ = train_test_split(X, np.linspace(0, 1.5, n_samples), test_size=test_size, seed=0)
    assert X_test.shape[0] == expected[1].shape[0]


@FAST
@given(
    st.lists(st.integers(2, 30), min_size=1, max_size=5),
    st.floats(0.05, 0.95),
    st.integers(0, 2**32 - 1),
)
def test_stratified_split_keeps_each_class_proportion_within_one_sample(class_sizes, test_size, seed):
    y = np.repeat(np.arange(len(class_sizes)), class_sizes)
    n_samples = y.size
    n_test = int(np.ceil(test_size * n_samples))
    if not 1 <= n_test <= n_samples - 1:
        return
    X = np.arange(n_samples).reshape(-1, 1)
    _, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, seed=seed)
    assert y_test.size == n_test
    np.testing.assert_array_equal(y[X_test[:, 0]], y_test)
    for k, size in enumerate(class_sizes):
        exact_share = n_test * size / n_samples
        assert abs(np.sum(y_test == k) - exact_share) < 1
        assert np.sum(y_test == k) + np.sum(y_train == k) == size


def test_stratified_split_of_string_labels_keeps_the_ratio():
    # 30 "a" and 10 "b", test 25% = 10 samples: exactly 7.5 -> 7 or 8 "a", 2.5 -> 2 or 3 "b"
    y = np.array(["a"] * 30 + ["b"] * 10)
    _, _, _, y_test = train_test_split(np.zeros((40, 3)), y, test_size=0.25, seed=4)
    assert np.sum(y_test == "a") in (7, 8)
    assert np.sum(y_test == "b") in (2, 3)
    assert y_test.size == 10


def test_stratified_split_of_one_hot_targets_uses_the_class_of_each_row():
    # 18 of class 0 and 2 of class 2; 50% test -> exactly 9 and 1
    labels = np.array([0] * 18 + [2] * 2)
    _, _, _, y_test = train_test_split(np.zeros((20, 1)), one_hot(labels), test_size=0.5, seed=0)
    assert y_test.shape == (10, 3)
    np.testing.assert_array_equal(np.bincount(y_test.argmax(axis=1), minlength=3), [9, 0, 1])


def test_split_with_the_same_seed_is_identical_and_another_seed_differs():
    X, y = np.arange(100).reshape(-1, 1), np.arange(100) % 4
    first = train_test_split(X, y, seed=7)
    second = train_test_split(X, y, seed=7)
    other = train_test_split(X, y, seed=8)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])


def test_split_leaves_the_global_random_state_alone():
    state = np.random.get_state()[1].copy()
    train_test_split(np.arange(10), np.arange(10) % 2, seed=1)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_unstratified_split_accepts_a_class_with_a_single_sample():
    y = np.array([0, 0, 0, 0, 1])
    _, X_test, _, _ = train_test_split(np.zeros((5, 1)), y, test_size=2, stratify=False, seed=0)
    assert X_test.shape == (2, 1)


def test_stratified_split_rejects_a_class_with_a_single_sample_and_suggests_stratify_false():
    with pytest.raises(ValueError, match="stratify=False"):
        train_test_split(np.zeros((5, 1)), np.array([0, 0, 0, 0, 1]), seed=0)


@pytest.mark.parametrize("test_size", [0.0, 1.0, 1.5, -0.2, 0, 10, 12])
def test_split_rejects_a_test_size_that_leaves_a_part_empty(test_size):
    with pytest.raises(ValueError, match="test"):
        train_test_split(np.zeros((10, 1)), np.linspace(0, 1.5, 10), test_size=test_size)


@pytest.mark.parametrize("test_size", ["0.2", None, True])
def test_split_rejects_a_test_size_that_is_not_a_number(test_size):
    with pytest.raises(TypeError, match="test_size"):
        train_test_split(np.zeros((10, 1)), np.zeros(10), test_size=test_size)


def test_split_rejects_x_and_y_of_different_lengths():
    with pytest.raises(ValueError, match="same number of rows.*10.*9"):
        train_test_split(np.zeros((10, 2)), np.zeros(9))


# ---------------------------------------------------------------------------------------------------------
# StandardScaler and MinMaxScaler
# ---------------------------------------------------------------------------------------------------------


def _train_and_test_data():
    rng = np.random.default_rng(0)
    scales = np.array([1.0, 100.0, 0.01])
    return rng.normal(5, 1, (30, 3)) * scales, rng.normal(5, 2, (8, 3)) * scales


def test_standard_scaler_of_a_hand_worked_example():
    # column [1, 3, 5]: mean 3, population std sqrt((4 + 0 + 4) / 3) = sqrt(8/3)
    X = np.array([[1.0], [3.0], [5.0]])
    scaled = StandardScaler().fit_transform(X)
    np.testing.assert_allclose(scaled.ravel(), np.array([-2, 0, 2]) / np.sqrt(8 / 3), rtol=FLOAT64_TOLERANCE)


def test_standard_scaler_matches_scikit_learn_on_train_and_test_data():
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    X_train, X_test = _train_and_test_data()
    ours, theirs = StandardScaler().fit(X_train), preprocessing.StandardScaler().fit(X_train)
    np.testing.assert_allclose(ours.transform(X_test), theirs.transform(X_test), rtol=FLOAT64_TOLERANCE)
    np.testing.assert_allclose(ours.mean, theirs.mean_, rtol=FLOAT64_TOLERANCE)
    np.testing.assert_allclose(ours.scale, theirs.scale_, rtol=FLOAT64_TOLERANCE)


def test_min_max_scaler_of_a_hand_worked_example():
    # column [2, 4, 6] into (-1, 1): slope 2 / (6 - 2) = 0.5; 2 -> -1, 4 -> 0, 6 -> 1, and 8 -> 2 (no clipping)
    scaler = MinMaxScaler(feature_range=(-1, 1)).fit(np.array([[2.0], [4.0], [6.0]]))
    scaled = scaler.transform(np.array([[2.0], [4.0], [6.0], [8.0]]))
    np.testing.assert_array_equal(scaled.ravel(), [-1, 0, 1, 2])


def test_min_max_scaler_matches_scikit_learn_on_train_and_test_data():
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    X_train, X_test = _train_and_test_data()
    ours = MinMaxScaler(feature_range=(-2, 3)).fit(X_train)
    theirs = preprocessing.MinMaxScaler(feature_range=(-2, 3)).fit(X_train)
    np.testing.assert_allclose(ours.transform(X_test), theirs.transform(X_test), rtol=FLOAT64_TOLERANCE)


@pytest.mark.parametrize("scaler_class", [StandardScaler, MinMaxScaler])
def test_scalers_handle_a_constant_column_like_scikit_learn_without_warnings(scaler_class):
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    X = np.array([[0.1, 1.0], [0.1, 2.0], [0.1, 4.0]])  # first column constant
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            scaler = scaler_class().fit(X)
            scaled = scaler.transform(X)
            restored = scaler.inverse_transform(scaled)
    expected = getattr(preprocessing, scaler_class.__name__)().fit_transform(X)
    np.testing.assert_allclose(scaled, expected, atol=FLOAT64_TOLERANCE)
    np.testing.assert_array_equal(scaled[:, 0], [0, 0, 0])
    np.testing.assert_allclose(restored, X, rtol=FLOAT64_TOLERANCE)


@pytest.mark.parametrize("scaler_class", [StandardScaler, MinMaxScaler])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scalers_keep_the_float_dtype_of_their_input(scaler_class, dtype):
    X_train, X_test = (part.astype(dtype) for part in _train_and_test_data())
    scaler = scaler_class().fit(X_train)
    assert scaler.transform(X_test).dtype == dtype
    assert scaler.inverse_transform(X_test).dtype == dtype
    assert scaler.fit_transform(X_train).dtype == dtype


def test_scalers_turn_integer_input_into_float32():
    assert StandardScaler().fit_transform(np.array([[1, 2], [3, 5]])).dtype == np.float32


def test_float32_standard_scaling_agrees_with_float64_to_float32_precision():
    X_train, X_test = _train_and_test_data()
    reference = StandardScaler().fit(X_train).transform(X_test)
    single = StandardScaler().fit(X_train.astype(np.float32)).transform(X_test.astype(np.float32))
    np.testing.assert_allclose(single, reference, rtol=FLOAT32_TOLERANCE, atol=FLOAT32_TOLERANCE)


@FAST
@given(finite_matrices, st.sampled_from([StandardScaler, MinMaxScaler]))
def test_inverse_transform_undoes_transform(X, scaler_class):
    scaler = scaler_class().fit(X)
    restored = scaler.inverse_transform(scaler.transform(X))
    np.testing.assert_allclose(restored, X, rtol=ROUND_TRIP_TOLERANCE, atol=ROUND_TRIP_TOLERANCE * 1e3)


@FAST
@given(finite_matrices)
def test_min_max_scaled_training_data_lies_in_the_feature_range(X):
    scaled = MinMaxScaler(feature_range=(-1, 1)).fit_transform(X)
    assert scaled.min() >= -1 - ROUND_TRIP_TOLERANCE and scaled.max() <= 1 + ROUND_TRIP_TOLERANCE


@pytest.mark.parametrize("scaler_class", [StandardScaler, MinMaxScaler])
@pytest.mark.parametrize("method", ["transform", "inverse_transform"])
def test_scalers_used_before_fit_raise_not_fitted_error_saying_to_call_fit(scaler_class, method):
    assert not scaler_class().is_fitted
    with pytest.raises(NotFittedError, match=r"call fit\(X_train\)"):
        getattr(scaler_class(), method)(np.zeros((2, 2)))


@pytest.mark.parametrize("scaler_class", [StandardScaler, MinMaxScaler])
def test_scalers_reject_data_with_a_different_number_of_features(scaler_class):
    scaler = scaler_class().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="3 features.*fitted on 2"):
        scaler.transform(np.zeros((3, 3)))


@pytest.mark.parametrize(
    ("X", "message"),
    [(np.zeros(4), "reshape"), (np.array([[1.0, np.nan]]), "NaN"), (np.zeros((0, 2)), "empty")],
)
def test_scalers_reject_invalid_training_data(X, message):
    with pytest.raises(ValueError, match=message):
        StandardScaler().fit(X)


@pytest.mark.parametrize("feature_range", [(1, 1), (2, 0), (0, np.inf)])
def test_min_max_scaler_rejects_an_empty_or_reversed_feature_range(feature_range):
    with pytest.raises(ValueError, match="low < high"):
        MinMaxScaler(feature_range=feature_range)


def test_min_max_scaler_rejects_a_feature_range_that_is_not_a_pair():
    with pytest.raises(TypeError, match="pair"):
        MinMaxScaler(feature_range=1)


# ---------------------------------------------------------------------------------------------------------
# The scaler's record in a model file (StandardScaler.to_metadata / from_metadata)
# ---------------------------------------------------------------------------------------------------------

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def test_a_scaler_record_of_a_hand_worked_example():
    # column [1, 3, 5]: mean 3, population std sqrt(8/3); column [2, 2, 2] is constant: scale 1
    record = StandardScaler().fit(np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])).to_metadata()
    assert record == {"type": "standard", "mean": [3.0, 2.0], "scale": [math.sqrt(8 / 3), 1.0]}


@FAST
@given(X=finite_matrices)
def test_a_scaler_read_back_from_its_json_record_transforms_bit_for_bit_like_the_original(X):
    original = StandardScaler().fit(X)
    restored = StandardScaler.from_metadata(json.loads(json.dumps(original.to_metadata())))
    assert restored.n_features == original.n_features
    np.testing.assert_array_equal(restored.transform(X), original.transform(X))
    np.testing.assert_array_equal(restored.transform(X.astype(np.float32)), original.transform(X.astype(np.float32)))


def test_the_scaler_record_numnet_0_2_train_wrote_reads_back():
    network = load_model(os.path.join(FIXTURES, "batchnorm_dropout_v0.2.0.npz"))
    record = network.metadata["scaler"]
    X = np.load(os.path.join(FIXTURES, "predictions_v0.2.0.npz"))["batchnorm_dropout_X_raw"]
    expected = (X - np.array(record["mean"])) / np.array(record["scale"])  # the record's meaning, by hand
    np.testing.assert_array_equal(scaler_from_metadata(record).transform(X), expected)


@pytest.mark.parametrize("record", [None, {}])
def test_a_model_without_a_scaler_record_has_no_scaler(record):
    assert scaler_from_metadata(record) is None


@pytest.mark.parametrize(
    ("record", "message"),
    [({"type": "min_max", "mean": [0.0], "scale": [1.0]}, "unknown type 'min_max'; expected 'standard'"),
     ({"type": "standard", "mean": [0.0]}, "no 'scale'"),
     ({"type": "standard", "mean": ["a"], "scale": [1.0]}, "mean must be a list of numbers"),
     ({"type": "standard", "mean": [[0.0]], "scale": [1.0]}, "mean must be a non-empty list of finite numbers"),
     ({"type": "standard", "mean": [0.0], "scale": [float("nan")]}, "scale must be a non-empty list of finite"),
     ({"type": "standard", "mean": [0.0, 1.0], "scale": [1.0]}, "one mean and one scale above zero per feature"),
     ({"type": "standard", "mean": [0.0], "scale": [0.0]}, "one mean and one scale above zero per feature")],
)
def test_a_scaler_record_that_cannot_be_read_is_refused_with_what_is_wrong(record, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        scaler_from_metadata(record)


def test_a_scaler_record_that_is_not_a_dict_is_a_type_error():
    with pytest.raises(TypeError, match="must be a dict"):
        StandardScaler.from_metadata([0.0, 1.0])


def test_an_unfitted_scaler_has_no_record():
    with pytest.raises(NotFittedError, match=r"call fit\(X_train\)"):
        StandardScaler().to_metadata()


# ---------------------------------------------------------------------------------------------------------
# plane_features
# ---------------------------------------------------------------------------------------------------------


def test_plane_features_of_a_hand_worked_point():
    # (x, y) = (2, 3): x 2, y 3, x² 4, y² 9, xy 6, sin x sin(2), sin y sin(3)
    expected = [[2.0, 3.0, 4.0, 9.0, 6.0, math.sin(2.0), math.sin(3.0)]]
    names = ["x", "y", "x2", "y2", "xy", "sinx", "siny"]
    np.testing.assert_allclose(plane_features(np.array([[2.0, 3.0]]), names), expected, atol=FLOAT64_TOLERANCE)


@FAST
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 20), st.just(2)), elements=st.floats(-6, 6, width=32)),
       st.lists(st.sampled_from(sorted(PLANE_FEATURES)), min_size=1, max_size=7, unique=True))
def test_plane_features_keep_float32_and_the_order_of_the_names(X, names):
    features = plane_features(X, names)
    assert features.dtype == np.float32 and features.shape == (X.shape[0], len(names))
    for column, name in enumerate(names):
        x, y = X[:, 0].astype(np.float64), X[:, 1].astype(np.float64)
        expected = {"x": x, "y": y, "x2": x * x, "y2": y * y, "xy": x * y, "sinx": np.sin(x), "siny": np.sin(y)}[name]
        np.testing.assert_allclose(features[:, column], expected, rtol=FLOAT32_TOLERANCE, atol=FLOAT32_TOLERANCE)


@pytest.mark.parametrize(("X", "names", "message"), [
    (np.zeros((3, 3)), ["x"], "shape"),
    (np.zeros((3, 2)), [], "at least one"),
    (np.zeros((3, 2)), ["x", "x"], "repeat"),
    (np.zeros((3, 2)), ["sin_x"], "did you mean 'sinx'"),
])
def test_plane_features_reject_bad_points_and_names(X, names, message):
    with pytest.raises(ValueError, match=message):
        plane_features(X, names)
