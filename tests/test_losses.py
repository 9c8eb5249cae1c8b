"""Tests of numnet.losses: values and gradients against PyTorch (float64) and central differences,
stability for huge logits, and targets given as class indices or one-hot rows."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numnet
from numnet.activations import get_activation
from numnet.losses import LOSSES, PROBABILITY_FLOOR, get_loss, log_loss
from numnet.targets import as_target_matrix

# Central-difference step: the classic float64 choice; measured gradient errors with it are ~2e-10 for
# the cross-entropies (truncation, O(h²)) and ~1e-11 for the quadratic MSE (rounding only).
CENTRAL_STEP = 1e-4
# The acceptance bound for analytic vs numerical gradients (norm-wise relative error, see
# numnet.relative_error: entrywise ratios would be dominated by rounding on near-zero entries).
GRADIENT_TOLERANCE = 1e-7
# numnet and torch compute the same float64 sums in a different order: a few ulps of the loss.
TORCH_VALUE_TOLERANCE = 1e-14
# The fused gradient (a - y)/n and torch's autograd differ only by the rounding of softmax/sigmoid.
TORCH_GRADIENT_TOLERANCE = 1e-14
FLOAT64_EPS = np.finfo(np.float64).eps
FAST = settings(max_examples=25, deadline=None, derandomize=True)

# loss name -> the output activation whose output the loss's gradient takes
OUTPUT_ACTIVATION = {"mse": "linear", "softmax_cross_entropy": "softmax", "binary_cross_entropy": "sigmoid",
                     "poisson": "exp"}
LOSS_NAMES = list(OUTPUT_ACTIVATION)


def random_targets(loss_name, shape, rng):
    """Targets of the kind each loss takes: reals (mse), one-hot rows (softmax), 0/1 entries (binary),
    counts (poisson)."""
    n_samples, n_outputs = shape
    if loss_name == "mse":
        return rng.standard_normal(shape)
    if loss_name == "softmax_cross_entropy":
        return np.eye(n_outputs)[rng.integers(0, n_outputs, n_samples)]
    if loss_name == "poisson":
        return rng.poisson(2.0, shape).astype(np.float64)  # counts, zeros included
    return (rng.random(shape) < 0.5).astype(np.float64)


def gradient_errors(loss_name, z, Y):
    """Norm-wise relative error of the analytic gradient (dC/da, or dC/dz for a fused loss) vs central
    differences of the loss value in z."""
    loss = get_loss(loss_name)
    numeric = numnet.numerical_gradient(lambda x: loss.value(x, Y), z.copy(), h=CENTRAL_STEP)
    analytic = loss.gradient(get_activation(OUTPUT_ACTIVATION[loss_name]).forward(z), Y)
    return numnet.relative_error(analytic, numeric)


# ---------------------------------------------------------------------------------------------------------
# Values against PyTorch and hand-worked examples
# ---------------------------------------------------------------------------------------------------------


def test_mse_is_torch_sum_of_squares_over_two_n():
    # numnet's MSE is C = 1/(2n) Σ ||a - y||², i.e. F.mse_loss(reduction="sum") / (2n): summed over outputs,
    # averaged over samples, with Nielsen's ½ (it is *not* F.mse_loss's default mean over all entries).
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, Y = rng.standard_normal((7, 3)), rng.standard_normal((7, 3))
    expected = torch.nn.functional.mse_loss(torch.from_numpy(a), torch.from_numpy(Y), reduction="sum") / (2 * 7)
    assert get_loss("mse").value(a, Y) == pytest.approx(expected.item(), rel=TORCH_VALUE_TOLERANCE)


def test_mse_of_a_hand_worked_example():
    # residuals [[1, -2], [0, 3]]: squares sum to 1 + 4 + 0 + 9 = 14; C = 14 / (2·2) = 3.5
    a = np.array([[1.0, 0.0], [2.0, 3.0]])
    Y = np.array([[0.0, 2.0], [2.0, 0.0]])
    assert get_loss("mse").value(a, Y) == 3.5
    # dC/da = (a - y)/n = [[0.5, -1], [0, 1.5]]
    np.testing.assert_array_equal(get_loss("mse").gradient(a, Y), [[0.5, -1.0], [0.0, 1.5]])


def test_softmax_cross_entropy_matches_torch_cross_entropy_with_class_indices():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    logits, labels = 3 * rng.standard_normal((9, 4)), rng.integers(0, 4, 9)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels))
    value = get_loss("softmax_cross_entropy").value(logits, np.eye(4)[labels])
    assert value == pytest.approx(expected.item(), rel=TORCH_VALUE_TOLERANCE)


def test_softmax_cross_entropy_matches_torch_cross_entropy_with_probability_targets():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    logits, probabilities = 3 * rng.standard_normal((9, 4)), rng.dirichlet(np.ones(4), size=9)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(probabilities))
    value = get_loss("softmax_cross_entropy").value(logits, probabilities)
    assert value == pytest.approx(expected.item(), rel=TORCH_VALUE_TOLERANCE)


def test_softmax_cross_entropy_of_a_hand_worked_example():
    # logits [0, ln 3]: softmax = [1/4, 3/4]; label 1 costs -ln(3/4) = ln(4/3) = 0.28768207245178...
    logits = np.array([[0.0, np.log(3.0)]])
    value = get_loss("softmax_cross_entropy").value(logits, np.array([[0.0, 1.0]]))
    assert value == pytest.approx(np.log(4 / 3), rel=8 * FLOAT64_EPS)


def test_binary_cross_entropy_matches_torch_with_logits_summed_over_outputs_and_averaged_over_samples():
    # numnet's BCE is F.binary_cross_entropy_with_logits(reduction="sum") / n_samples.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    logits, Y = 3 * rng.standard_normal((8, 3)), (rng.random((8, 3)) < 0.5).astype(np.float64)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(logits), torch.from_numpy(Y), reduction="sum") / 8
    assert get_loss("binary_cross_entropy").value(logits, Y) == pytest.approx(expected.item(),
                                                                            rel=TORCH_VALUE_TOLERANCE)


def test_binary_cross_entropy_of_a_hand_worked_example():
    # z = 0 gives p = 1/2 whatever the label: each entry costs ln 2; two samples × one output → C = ln 2.
    value = get_loss("binary_cross_entropy").value(np.zeros((2, 1)), np.array([[0.0], [1.0]]))
    assert value == pytest.approx(np.log(2.0), rel=4 * FLOAT64_EPS)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_is_a_mean_over_samples_so_a_repeated_batch_gives_the_same_value(name):
    rng = np.random.default_rng(4)
    z = rng.standard_normal((5, 3))
    Y = random_targets(name, z.shape, rng)
    loss = get_loss(name)
    doubled = loss.value(np.vstack([z, z]), np.vstack([Y, Y]))
    assert isinstance(doubled, float)
    assert doubled == pytest.approx(loss.value(z, Y), rel=4 * FLOAT64_EPS)


# ---------------------------------------------------------------------------------------------------------
# Gradients against central differences and torch autograd
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_gradient_matches_central_differences(name):
    rng = np.random.default_rng(5)
    z = 2 * rng.standard_normal((6, 4))
    assert gradient_errors(name, z, random_targets(name, z.shape, rng)) < GRADIENT_TOLERANCE


def test_softmax_cross_entropy_gradient_matches_central_differences_for_probability_targets():
    rng = np.random.default_rng(6)
    z, Y = 2 * rng.standard_normal((6, 4)), rng.dirichlet(np.ones(4), size=6)
    assert gradient_errors("softmax_cross_entropy", z, Y) < GRADIENT_TOLERANCE


@pytest.mark.parametrize("name, torch_loss", [
    ("mse", lambda F, z, Y: F.mse_loss(z, Y, reduction="sum") / (2 * z.shape[0])),
    ("softmax_cross_entropy", lambda F, z, Y: F.cross_entropy(z, Y)),
    ("binary_cross_entropy",
     lambda F, z, Y: F.binary_cross_entropy_with_logits(z, Y, reduction="sum") / z.shape[0]),
    # e^z - y·z: the Poisson deviance less its z-free term y log y - y
    ("poisson", lambda F, z, Y: F.poisson_nll_loss(z, Y, log_input=True, reduction="sum") / z.shape[0]),
])
def test_loss_gradient_matches_torch_autograd(name, torch_loss):
    # Fused losses: dC/dz = (softmax(z) - y)/n, (sigmoid(z) - y)/n, (e^z - y)/n; MSE: dC/da = (a - y)/n.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    z = 3 * rng.standard_normal((6, 4))
    Y = random_targets(name, z.shape, rng)
    z_torch = torch.tensor(z, requires_grad=True)
    torch_loss(torch.nn.functional, z_torch, torch.from_numpy(Y)).backward()
    analytic = get_loss(name).gradient(get_activation(OUTPUT_ACTIVATION[name]).forward(z), Y)
    assert numnet.relative_error(analytic, z_torch.grad.numpy()) < TORCH_GRADIENT_TOLERANCE


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_gradient_leaves_its_inputs_unchanged(name):
    rng = np.random.default_rng(8)
    a = get_activation(OUTPUT_ACTIVATION[name]).forward(rng.standard_normal((3, 2)))
    Y = random_targets(name, a.shape, rng)
    a_before, Y_before = a.copy(), Y.copy()
    get_loss(name).gradient(a, Y)
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(Y, Y_before)


@FAST
@given(st.sampled_from(LOSS_NAMES),
       st.integers(1, 5), st.integers(2, 5), st.integers(0, 2**32 - 1))
def test_loss_gradient_matches_central_differences_for_random_shapes(name, n_samples, n_outputs, seed):
    rng = np.random.default_rng(seed)
    z = 3 * rng.standard_normal((n_samples, n_outputs))
    assert gradient_errors(name, z, random_targets(name, z.shape, rng)) < GRADIENT_TOLERANCE


# ---------------------------------------------------------------------------------------------------------
# Huge logits
# ---------------------------------------------------------------------------------------------------------


def test_softmax_cross_entropy_reaches_its_limits_for_logits_of_1e4():
    logits = np.array([[1e4, -1e4], [-1e4, 1e4]])
    loss = get_loss("softmax_cross_entropy")
    # Overflow, division by zero and invalid operations raise; e^-20000 underflowing to 0 is the exact limit.
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        right = loss.value(logits, np.eye(2))  # confident and correct: -ln(1) = 0
        wrong = loss.value(logits, np.eye(2)[::-1])  # confident and wrong: logsumexp - z_y = 1e4 - (-1e4)
        delta = loss.gradient(get_activation("softmax").forward(logits), np.eye(2)[::-1])
    assert right == 0.0
    assert wrong == 2e4
    # (softmax - y)/n = ([1, 0] - [0, 1])/2 = [0.5, -0.5] per row (with the rows mirrored)
    np.testing.assert_array_equal(delta, [[0.5, -0.5], [-0.5, 0.5]])


def test_binary_cross_entropy_reaches_its_limits_for_logits_of_1e4():
    logits = np.array([[1e4], [1e4], [-1e4], [-1e4]])
    labels = np.array([[1.0], [0.0], [1.0], [0.0]])
    loss = get_loss("binary_cross_entropy")
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        value = loss.value(logits, labels)
        delta = loss.gradient(get_activation("sigmoid").forward(logits), labels)
    # per sample: right 0, wrong 1e4, wrong 1e4, right 0 → mean 2e4 / 4 = 5000
    assert value == 5000.0
    # (σ(z) - y)/n = [0, 1, -1, 0] / 4
    np.testing.assert_array_equal(delta, [[0.0], [0.25], [-0.25], [0.0]])


@pytest.mark.parametrize("name, torch_loss", [
    ("softmax_cross_entropy", lambda F, z, Y: F.cross_entropy(z, Y)),
    ("binary_cross_entropy",
     lambda F, z, Y: F.binary_cross_entropy_with_logits(z, Y, reduction="sum") / z.shape[0]),
])
def test_huge_mixed_logits_give_the_same_finite_loss_as_torch(name, torch_loss):
    torch = pytest.importorskip("torch")
    logits = np.array([[1e4, -1e4, 3.0], [-1e4, -1e4 + 2.0, -1e4 + 1.0], [0.5, 1e4, 1e4]])
    Y = np.eye(3)[[2, 1, 0]]
    value = get_loss(name).value(logits, Y)
    assert np.isfinite(value)
    expected = torch_loss(torch.nn.functional, torch.from_numpy(logits), torch.from_numpy(Y)).item()
    assert value == pytest.approx(expected, rel=TORCH_VALUE_TOLERANCE)


# ---------------------------------------------------------------------------------------------------------
# Targets: class indices and one-hot rows
# ---------------------------------------------------------------------------------------------------------


def test_class_indices_and_one_hot_targets_give_the_same_loss():
    rng = np.random.default_rng(9)
    logits, labels = rng.standard_normal((6, 3)), np.array([0, 2, 1, 1, 0, 2])
    loss = get_loss("softmax_cross_entropy")
    from_indices = as_target_matrix(labels, loss, 3, np.float64)
    from_one_hot = as_target_matrix(np.eye(3)[labels], loss, 3, np.float64)
    np.testing.assert_array_equal(from_indices, from_one_hot)
    assert loss.value(logits, from_indices) == loss.value(logits, from_one_hot)


def test_network_loss_is_the_same_for_class_indices_and_one_hot_labels():
    network = numnet.Network([2, 3], loss="cross_entropy", dtype="float64", seed=0)
    X, labels = np.random.default_rng(10).standard_normal((5, 2)), np.array([2, 0, 1, 2, 2])
    np.testing.assert_array_equal(network.prepare_targets(labels), np.eye(3)[labels])
    assert network.loss_value(X, labels) == network.loss_value(X, np.eye(3)[labels])


def test_binary_labels_as_a_vector_become_one_output_column():
    target = as_target_matrix([1, 0, 1], get_loss("bce"), 1, np.float64)
    np.testing.assert_array_equal(target, [[1.0], [0.0], [1.0]])


@pytest.mark.parametrize("labels, message", [
    ([0, 3], "out of range"),
    ([0.5, 1.0], "non-integer"),
    ([[0.5, 0.6, 0.0]], "sum to 1"),
])
def test_invalid_class_targets_raise_value_error_saying_why(labels, message):
    with pytest.raises(ValueError, match=message):
        as_target_matrix(labels, get_loss("softmax_cross_entropy"), 3, np.float64)


def test_binary_labels_outside_zero_to_one_raise_value_error():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        as_target_matrix([0, 2], get_loss("binary_cross_entropy"), 1, np.float64)


# ---------------------------------------------------------------------------------------------------------
# Metadata and the reporting log loss
# ---------------------------------------------------------------------------------------------------------


def test_each_loss_declares_its_output_activation_and_task():
    assert get_loss("mse").fused_activation is None and not get_loss("mse").is_classification
    assert get_loss("cross_entropy").fused_activation == "softmax" and get_loss("cross_entropy").is_classification
    assert get_loss("bce").fused_activation == "sigmoid" and get_loss("bce").is_classification
    assert get_loss("poisson").fused_activation == "exp" and not get_loss("poisson").is_classification
    assert {type(get_loss(name)).__name__ for name in LOSSES} == {
        "MeanSquaredError", "SoftmaxCrossEntropy", "SigmoidBinaryCrossEntropy", "PoissonDeviance"}


def test_log_loss_of_probabilities_of_a_hand_worked_example():
    # true-class probabilities 0.5 and 0.9: C = -(ln 0.5 + ln 0.9) / 2 = 0.39925384...
    probabilities = np.array([[0.5, 0.5], [0.1, 0.9]])
    value = log_loss(probabilities, np.eye(2))
    assert value == pytest.approx(-(np.log(0.5) + np.log(0.9)) / 2, rel=4 * FLOAT64_EPS)


def test_log_loss_floors_a_zero_probability_instead_of_returning_infinity():
    # true-class probability 0 is floored at PROBABILITY_FLOOR: C = -ln(1e-15) / 1 = 34.538776...
    value = log_loss(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert value == pytest.approx(-np.log(PROBABILITY_FLOOR), rel=4 * FLOAT64_EPS)


# ---------------------------------------------------------------------------------------------------------
# Sample weights and the Poisson deviance
# ---------------------------------------------------------------------------------------------------------

# A weighted mean is a dot product of n per-sample losses with n shares: a few ulps more than the plain mean.
WEIGHTED_TORCH_TOLERANCE = 1e-13


def torch_sample_losses(name, F, output, Y):
    """PyTorch's per-sample losses (reduction="none", summed over outputs) from ``output``: the logits z of
    a fused loss, the activation a for mse."""
    import torch

    if name == "mse":
        return F.mse_loss(output, Y, reduction="none").sum(dim=1) / 2
    if name == "softmax_cross_entropy":
        return F.cross_entropy(output, Y.argmax(dim=1), reduction="none")
    if name == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(output, Y, reduction="none").sum(dim=1)
    # PoissonNLLLoss(log_input=False) is μ - y log μ; the deviance adds y log y - y (0 log 0 = 0).
    rate = torch.exp(output)
    nll = F.poisson_nll_loss(rate, Y, log_input=False, reduction="none", eps=0.0)
    return (nll + torch.special.xlogy(Y, Y) - Y).sum(dim=1)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_weighted_loss_and_gradient_match_torch_weighted_mean_of_unreduced_losses(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    z = 2 * rng.standard_normal((7, 3))
    Y = random_targets(name, z.shape, rng)
    weights = rng.uniform(0.0, 3.0, 7)
    z_torch, w_torch = torch.tensor(z, requires_grad=True), torch.from_numpy(weights)
    per_sample = torch_sample_losses(name, torch.nn.functional, z_torch, torch.from_numpy(Y))
    expected = (w_torch * per_sample).sum() / w_torch.sum()
    expected.backward()
    loss = get_loss(name)
    assert loss.value(z, Y, weights) == pytest.approx(expected.item(), rel=WEIGHTED_TORCH_TOLERANCE)
    analytic = loss.gradient(get_activation(OUTPUT_ACTIVATION[name]).forward(z), Y, weights)
    assert numnet.relative_error(analytic, z_torch.grad.numpy()) < WEIGHTED_TORCH_TOLERANCE


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_integer_weights_equal_repeating_each_sample_that_many_times(name):
    rng = np.random.default_rng(12)
    z = rng.standard_normal((6, 2))
    Y = random_targets(name, z.shape, rng)
    counts = np.array([0, 1, 3, 2, 0, 1])
    loss, activation = get_loss(name), get_activation(OUTPUT_ACTIVATION[name])
    repeated_z, repeated_Y = np.repeat(z, counts, axis=0), np.repeat(Y, counts, axis=0)
    expected = loss.value(repeated_z, repeated_Y)
    assert loss.value(z, Y, counts.astype(np.float64)) == pytest.approx(expected, rel=4 * FLOAT64_EPS)
    # Each weighted row is the sum of its copies' rows; a zero-weight row is zero.
    repeated_gradient = loss.gradient(activation.forward(repeated_z), repeated_Y)
    owner = np.repeat(np.arange(6), counts)
    summed = np.stack([repeated_gradient[owner == i].sum(axis=0) for i in range(6)])
    np.testing.assert_allclose(loss.gradient(activation.forward(z), Y, counts.astype(np.float64)), summed,
                               rtol=8 * FLOAT64_EPS, atol=0)


@FAST
@given(st.sampled_from(LOSS_NAMES), st.integers(1, 6), st.floats(1e-3, 1e3), st.integers(0, 2**32 - 1))
def test_weights_all_equal_to_any_constant_give_the_plain_mean(name, n_samples, constant, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_samples, 3))
    Y = random_targets(name, z.shape, rng)
    loss, a = get_loss(name), get_activation(OUTPUT_ACTIVATION[name]).forward(z)
    weights = np.full(n_samples, constant)
    # Σ c·C_i / (n·c): the shares c / (n·c) carry one rounding each.
    assert loss.value(z, Y, weights) == pytest.approx(loss.value(z, Y), rel=16 * FLOAT64_EPS, abs=1e-300)
    np.testing.assert_allclose(loss.gradient(a, Y, weights), loss.gradient(a, Y), rtol=16 * FLOAT64_EPS)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_a_batch_whose_weights_are_all_zero_has_zero_loss_and_zero_gradient(name):
    rng = np.random.default_rng(13)
    z = rng.standard_normal((3, 2))
    Y = random_targets(name, z.shape, rng)
    loss, a = get_loss(name), get_activation(OUTPUT_ACTIVATION[name]).forward(z)
    assert loss.value(z, Y, np.zeros(3)) == 0.0
    np.testing.assert_array_equal(loss.gradient(a, Y, np.zeros(3)), np.zeros((3, 2)))


def test_poisson_deviance_of_a_hand_worked_example():
    # y log(y/μ) - y + μ per entry: (y=1, μ=e^0=1) → 0 - 1 + 1 = 0; (y=0, μ=e^{ln 2}=2) → 0 - 0 + 2 = 2;
    # (y=2, μ=e^{ln 2}=2) → 2 ln 1 - 2 + 2 = 0. Samples [0 + 2] and [0 + ... ] → rows cost 2 and 0 → C = 1.
    logits = np.array([[0.0, np.log(2.0)], [np.log(2.0), np.log(2.0)]])
    counts = np.array([[1.0, 0.0], [2.0, 2.0]])
    assert get_loss("poisson").value(logits, counts) == pytest.approx(1.0, rel=4 * FLOAT64_EPS)
    # dC/dz = (μ - y)/n = ([1, 2] - [1, 0]) / 2 = [0, 1] and ([2, 2] - [2, 2]) / 2 = [0, 0]
    delta = get_loss("poisson").gradient(get_activation("exp").forward(logits), counts)
    np.testing.assert_allclose(delta, [[0.0, 1.0], [0.0, 0.0]], rtol=0, atol=4 * FLOAT64_EPS)


def test_poisson_deviance_is_zero_where_the_rate_equals_the_count_and_positive_elsewhere():
    counts = np.array([[0.5], [3.0], [7.0]])
    loss = get_loss("poisson")
    assert loss.value(np.log(counts), counts) == pytest.approx(0.0, abs=8 * FLOAT64_EPS)
    assert loss.value(np.log(counts) + 0.1, counts) > 0 and loss.value(np.log(counts) - 0.1, counts) > 0


def test_poisson_targets_must_not_be_negative():
    with pytest.raises(ValueError, match="counts >= 0"):
        as_target_matrix([1.0, -0.5], get_loss("poisson"), 1, np.float64)


# ---------------------------------------------------------------------------------------------------------
# Class-index targets over sequences (a language model's tokens), ignore_index
# ---------------------------------------------------------------------------------------------------------

#: float64 sums of a few dozen terms: equal to rounding.
SEQUENCE_TOLERANCE = 1e-12


def _sequence_case(seed=0, n=3, steps=5, classes=7):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, steps, classes)) * 3.0
    targets = rng.integers(0, classes, size=(n, steps))
    targets[rng.random((n, steps)) < 0.2] = -1  # padding: counts for nothing
    return logits, targets


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("ignore_index", [-1, 3])
def test_token_cross_entropy_is_torchs_cross_entropy_with_ignore_index(ignore_index):
    torch = pytest.importorskip("torch")
    logits, targets = _sequence_case()
    targets[targets == -1] = ignore_index
    loss = get_loss("softmax_cross_entropy") if ignore_index == -1 else numnet.losses.SoftmaxCrossEntropy(ignore_index)
    z = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(z.reshape(-1, 7), torch.tensor(targets).reshape(-1),
                                                 ignore_index=ignore_index)
    expected.backward()
    assert loss.value(logits, targets) == pytest.approx(float(expected.detach()), rel=SEQUENCE_TOLERANCE)
    np.testing.assert_allclose(loss.gradient(_softmax(logits), targets), z.grad.numpy(),
                               rtol=SEQUENCE_TOLERANCE, atol=1e-17)
    assert loss.count(targets) == np.count_nonzero(targets != ignore_index)


def test_token_cross_entropy_with_sample_weights_weighs_each_rows_counted_tokens():
    torch = pytest.importorskip("torch")
    logits, targets = _sequence_case(seed=1)
    weights = np.array([2.0, 0.5, 1.0])
    z = torch.tensor(logits, requires_grad=True)
    per_token = torch.nn.functional.cross_entropy(z.permute(0, 2, 1), torch.tensor(targets), ignore_index=-1,
                                                  reduction="none")  # (n, T), 0 at ignored tokens
    token_weights = torch.tensor(weights)[:, None] * torch.tensor(targets != -1, dtype=torch.float64)
    expected = (per_token * token_weights).sum() / token_weights.sum()
    expected.backward()
    loss = get_loss("softmax_cross_entropy")
    assert loss.value(logits, targets, weights) == pytest.approx(float(expected.detach()), rel=SEQUENCE_TOLERANCE)
    np.testing.assert_allclose(loss.gradient(_softmax(logits), targets, weights), z.grad.numpy(),
                               rtol=SEQUENCE_TOLERANCE, atol=1e-17)
    assert loss.count(targets, weights) == pytest.approx(float(token_weights.sum()))


def test_a_batch_whose_every_target_is_ignored_counts_nothing_and_has_no_gradient():
    logits, targets = _sequence_case()
    targets[...] = -1
    loss = get_loss("softmax_cross_entropy")
    assert loss.value(logits, targets) == 0.0 and loss.count(targets) == 0.0
    assert not np.any(loss.gradient(_softmax(logits), targets))


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(2, 9), st.integers(0, 2 ** 31))
def test_token_cross_entropy_gradient_matches_central_differences(n, steps, classes, seed):
    logits, targets = _sequence_case(seed, n, steps, classes)
    loss = get_loss("softmax_cross_entropy")
    numeric = numnet.numerical_gradient(lambda z: loss.value(z, targets), logits.copy())
    assert numnet.relative_error(loss.gradient(_softmax(logits), targets), numeric) < 1e-7


# ---- softmax and its loss from one pass (the training step's log normaliser) ---------------------------------

@FAST
@given(shape=st.lists(st.integers(1, 9), min_size=2, max_size=3), scale=st.sampled_from([1.0, 30.0, 1e4]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 16))
def test_softmax_log_normalizer_is_the_losss_log_sum_exp_bit_for_bit_and_float64_logaddexp(shape, scale, dtype,
                                                                                          seed):
    from numnet.losses import _log_sum_exp

    z = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)
    softmax = get_activation("softmax")
    probabilities, log_normalizer = softmax.forward_with_log_normalizer(z)
    assert np.array_equal(probabilities, softmax.forward(z))
    assert np.array_equal(log_normalizer, _log_sum_exp(z))
    # an independent oracle: log Σ e^z by pairwise logaddexp in float64
    oracle = np.logaddexp.reduce(z.astype(np.float64), axis=-1)
    np.testing.assert_allclose(log_normalizer, oracle, rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps)


def _first_step_losses(layers_or_network, X, y, **fit_options):
    """(the loss fit's first step reports, the network's loss on the same batch at the same weights)."""
    network = layers_or_network
    before = network.copy()
    history = network.fit(X, y, epochs=1, batch_size=len(y), shuffle=False, **fit_options)
    return history.iteration_loss[0], before.loss_value(X, y, fit_options.get("sample_weight"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_training_steps_loss_from_the_softmaxs_normalizer_equals_loss_value_bit_for_bit(dtype, weighted):
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((40, 6)), rng.integers(0, 4, 40)
    network = numnet.Network([6, 8, 4], activation="tanh", output_activation="softmax", dtype=dtype, seed=1)
    options = {"sample_weight": rng.random(40) + 0.5} if weighted else {}
    step_loss, oracle = _first_step_losses(network, X, y, optimizer="sgd", **options)
    assert step_loss == oracle


def test_a_sequence_models_training_loss_from_the_normalizer_equals_loss_value_with_ignored_tokens():
    rng = np.random.default_rng(4)
    X = rng.integers(0, 7, (12, 5))
    y = rng.integers(0, 7, (12, 5))
    y[:, -1] = -1  # ignore_index: counts for nothing
    layers = [numnet.Embedding(7, 4), numnet.LSTM(4, 6), numnet.Dense(6, 7, "softmax")]
    network = numnet.Network(layers=layers, dtype="float64", seed=2)
    step_loss, oracle = _first_step_losses(network, X, y, optimizer="sgd")
    assert step_loss == oracle


def test_a_subclass_that_computes_its_own_value_keeps_it_in_training():
    class Shifted(numnet.losses.SoftmaxCrossEntropy):
        name = "shifted_cross_entropy"

        def value(self, logits, target, weights=None):
            return super().value(logits, target, weights) + 1.0

    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((16, 3)), rng.integers(0, 3, 16)
    network = numnet.Network([3, 3], output_activation="softmax", loss=Shifted(), dtype="float64", seed=0)
    plain = numnet.Network([3, 3], output_activation="softmax", dtype="float64", seed=0)
    shifted_loss, _ = _first_step_losses(network, X, y, optimizer="sgd")
    plain_loss, _ = _first_step_losses(plain, X, y, optimizer="sgd")
    assert shifted_loss == pytest.approx(plain_loss + 1.0, rel=1e-15)


def test_the_output_layer_keeps_a_log_normalizer_only_from_a_training_pass():
    network = numnet.Network([3, 4], output_activation="softmax", dtype="float64", seed=0)
    X = np.random.default_rng(6).standard_normal((5, 3))
    output_layer = network.layers[-1]
    network.forward(X, training=True)
    assert output_layer.log_normalizer.shape == (5,)
    network.forward(X, training=False)
    assert output_layer.log_normalizer is None
    network.forward(X, training=True)
    network.clear_caches()
    assert output_layer.log_normalizer is None
