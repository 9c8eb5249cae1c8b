"""numnet.metrics against scikit-learn's metrics and hand-worked examples."""

import numpy as np
import pytest

from numnet import metrics as numnet_metrics
from numnet.losses import SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy


# ---------------------------------------------------------------------------------------------------------
# perplexity: closed forms


def test_perplexity_of_a_uniform_guess_among_v_tokens_is_v_and_overflows_to_inf():
    for size in (2, 28, 10_000):
        # a uniform guess puts 1/V on the right token: loss ln V per token, perplexity V
        assert numnet_metrics.perplexity(np.log(size)) == pytest.approx(size, rel=1e-12)
    assert numnet_metrics.perplexity(0.0) == 1.0  # a certain, right model
    assert numnet_metrics.perplexity(710.0) == float("inf")  # e^710 exceeds the largest float64
    assert numnet_metrics.perplexity(709.0) == pytest.approx(np.exp(709.0), rel=1e-12)


# ---------------------------------------------------------------------------------------------------------
# confusion_matrix against oracles


def test_confusion_matrix_matches_a_hand_worked_example():
    y_true = [0, 0, 1, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 1, 1, 1, 0, 2, 2, 1, 2]
    # true 0: predicted 0 once, 1 once            -> [1, 1, 0]
    # true 1: predicted 1 twice, 0 once           -> [1, 2, 0]
    # true 2: predicted 2 three times, 1 once     -> [0, 1, 3]
    expected = np.array([[1, 1, 0], [1, 2, 0], [0, 1, 3]])
    np.testing.assert_array_equal(numnet_metrics.confusion_matrix(y_true, y_pred), expected)


def test_confusion_matrix_takes_the_argmax_of_one_hot_and_probability_rows():
    y_true = np.eye(3)[[0, 2, 1]]
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])  # argmax 0, 2, 0
    # true 0 -> 0, true 2 -> 2, true 1 -> 0.
    expected = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(numnet_metrics.confusion_matrix(y_true, probabilities), expected)


def test_confusion_matrix_pads_to_n_classes():
    # Only classes 0 and 1 occur; n_classes=4 adds two empty rows and columns.
    matrix = numnet_metrics.confusion_matrix([0, 1], [1, 1], n_classes=4)
    expected = np.zeros((4, 4), dtype=int)
    expected[0, 1] = expected[1, 1] = 1
    np.testing.assert_array_equal(matrix, expected)


def test_confusion_matrix_agrees_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 5, size=500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 5, size=500))
    expected = metrics.confusion_matrix(y_true, y_pred, labels=np.arange(5))
    np.testing.assert_array_equal(numnet_metrics.confusion_matrix(y_true, y_pred, n_classes=5), expected)


def test_confusion_matrix_refuses_mismatched_lengths_and_bad_labels():
    with pytest.raises(ValueError, match="y_true has 2 labels but y_pred has 3"):
        numnet_metrics.confusion_matrix([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="non-negative integer"):
        numnet_metrics.confusion_matrix([0, -1], [0, 1])
    with pytest.raises(ValueError, match="class index 3.*n_classes=2"):
        numnet_metrics.confusion_matrix([0, 3], [0, 1], n_classes=2)


# ---------------------------------------------------------------------------------------------------------
# Classification report


def test_classification_metrics_match_sklearn_including_a_class_never_predicted():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 3, size=200))  # class 3 never predicted
    ours = numnet_metrics.classification_metrics(y_true, y_pred, 4)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(y_true, y_pred, labels=range(4),
                                                                             zero_division=0)
    np.testing.assert_allclose(ours["precision"], precision, rtol=1e-12, atol=0)
    np.testing.assert_allclose(ours["recall"], recall, rtol=1e-12, atol=0)
    np.testing.assert_allclose(ours["f1"], f1, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(ours["support"], support)


# ---------------------------------------------------------------------------------------------------------
# Predictions and batch accuracy


def test_softmax_outputs_predict_their_argmax_and_count_correct_rows():
    outputs = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])  # argmax 1, 0, 2
    targets = np.eye(3)[[1, 2, 2]]  # the second row is wrong: 2 of 3 correct
    np.testing.assert_array_equal(numnet_metrics.outputs_to_predictions(outputs, SoftmaxCrossEntropy()), [1, 0, 2])
    assert numnet_metrics.batch_accuracy(outputs, targets, SoftmaxCrossEntropy()) == 2


def test_sigmoid_outputs_need_every_label_right_to_count_a_row():
    outputs = np.array([[0.9, 0.2], [0.4, 0.8], [0.6, 0.7]])  # labels (1, 0), (0, 1), (1, 1)
    targets = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])  # the second row has one label wrong
    np.testing.assert_array_equal(numnet_metrics.outputs_to_predictions(outputs, SigmoidBinaryCrossEntropy()),
                                  [[1, 0], [0, 1], [1, 1]])
    assert numnet_metrics.batch_accuracy(outputs, targets, SigmoidBinaryCrossEntropy()) == 2


def test_a_single_sigmoid_output_predicts_class_one_above_one_half_and_scores_both_classes():
    outputs = np.array([[0.2], [0.8]])
    np.testing.assert_array_equal(numnet_metrics.predicted_classes(outputs), [0, 1])
    np.testing.assert_allclose(numnet_metrics.class_scores(outputs), [[0.8, 0.2], [0.2, 0.8]])
