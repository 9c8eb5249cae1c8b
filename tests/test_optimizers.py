"""Tests of numnet.optimizers: trajectories against torch.optim in float64, hand-worked first steps,
hyperparameter validation, bit-for-bit continuation after saving and restoring the state, no subnormal
drift in the state, AdamW against torch.optim.AdamW, and a rule of one's own written only in this file.
Every test runs with the NumPy rules and, when numba is installed, with the compiled kernels
(numnet.kernels)."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numnet
import numnet.optimizers
from numnet.backend import get_backend, namespace, to_numpy
from numnet.kernels import compiled_available, set_kernel_threads, use_kernels
from numnet.optimizers import (FLUSH_INTERVAL, MAX_FLUSH_FACTOR, OPTIMIZERS, RULE_CHUNK, SGD, AdaGrad, Adam, AdamW,
                               Momentum, Nesterov, Optimizer, RMSProp, Rule, flush_interval, flush_thresholds,
                               get_optimizer)
from numnet.schedules import StepDecay, WarmupCosine
from oracles import as_numpy, max_relative_difference, torch_linear_layers

# numnet and torch.optim apply the same float64 formulas in a slightly different order; after ten steps
# parameters and displacements agree to ~1e-14 (measured), so 1e-12 leaves room without hiding a wrong rule.
TORCH_TOLERANCE = 1e-12
# A few roundings of numbers of size ~1.
FLOAT64_EPS = np.finfo(np.float64).eps
N_STEPS = 10
N_PARAMETERS = 6
FAST = settings(max_examples=30, deadline=None, derandomize=True)


@pytest.fixture(autouse=True, params=["numpy"] + (["numba"] if compiled_available() else []))
def kernel_choice(request):
    """Run the test with the NumPy rules (the reference), then with the compiled kernels."""
    with use_kernels(request.param):
        yield request.param


class Problem:
    """A quadratic bowl whose gradient A·p + b_t depends on the parameters and changes each step."""

    def __init__(self, seed=0, steps=N_STEPS):
        rng = np.random.default_rng(seed)
        A = rng.standard_normal((N_PARAMETERS, N_PARAMETERS))
        self.A = A @ A.T / N_PARAMETERS + np.eye(N_PARAMETERS)  # symmetric positive definite
        self.offsets = rng.standard_normal((steps, N_PARAMETERS))
        self.start = rng.standard_normal(N_PARAMETERS)

    def gradient(self, parameters, step):
        return self.A @ parameters + self.offsets[step]


def numnet_trajectory(optimizer, problem, steps=N_STEPS):
    """The parameters after each of ``steps`` updates, shape (steps, N_PARAMETERS)."""
    parameters, path = problem.start.copy(), []
    for step in range(steps):
        optimizer.step(parameters, problem.gradient(parameters, step))
        path.append(parameters.copy())
    return np.array(path)


def torch_trajectory(make_optimizer, problem, steps=N_STEPS, make_scheduler=None):
    """The same trajectory with a torch.optim optimiser (and optionally an lr scheduler) in float64."""
    torch = pytest.importorskip("torch")
    parameter = torch.tensor(problem.start.copy(), requires_grad=True)
    optimizer = make_optimizer(torch.optim, [parameter])
    scheduler = make_scheduler(torch.optim.lr_scheduler, optimizer) if make_scheduler else None
    path = []
    for step in range(steps):
        parameter.grad = torch.from_numpy(problem.gradient(parameter.detach().numpy().copy(), step))
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        path.append(parameter.detach().numpy().copy())
    return np.array(path)


def assert_same_trajectory(ours, theirs, start):
    """Parameters and displacements from the start agree to TORCH_TOLERANCE, relatively."""
    np.testing.assert_allclose(ours, theirs, rtol=TORCH_TOLERANCE, atol=0)
    np.testing.assert_allclose(ours - start, theirs - start, rtol=TORCH_TOLERANCE, atol=0)


TORCH_CASES = {
    "sgd": (lambda: SGD(learning_rate=0.1), lambda optim, params: optim.SGD(params, lr=0.1)),
    "sgd_momentum": (lambda: SGD(learning_rate=0.1, momentum=0.9),
                     lambda optim, params: optim.SGD(params, lr=0.1, momentum=0.9)),
    "nesterov": (lambda: SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
                 lambda optim, params: optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True)),
    # torch's defaults: eps = 1e-10, initial_accumulator_value = 0, lr_decay = 0.
    "adagrad": (lambda: AdaGrad(learning_rate=0.1), lambda optim, params: optim.Adagrad(params, lr=0.1)),
    # torch's alpha is our rho.
    "rmsprop": (lambda: RMSProp(learning_rate=0.01, rho=0.9, epsilon=1e-8),
                lambda optim, params: optim.RMSprop(params, lr=0.01, alpha=0.9, eps=1e-8)),
    "adam": (lambda: Adam(learning_rate=0.01), lambda optim, params: optim.Adam(params, lr=0.01)),
    "adamw": (lambda: AdamW(learning_rate=0.01, weight_decay=0.1),
              lambda optim, params: optim.AdamW(params, lr=0.01, weight_decay=0.1)),
}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_first_ten_steps_match_torch_optim_in_float64(case):
    make_ours, make_theirs = TORCH_CASES[case]
    problem = Problem(seed=1)
    ours = numnet_trajectory(make_ours(), problem)
    assert not np.allclose(ours[0], ours[-1])  # the parameters really moved
    assert_same_trajectory(ours, torch_trajectory(make_theirs, problem), problem.start)


def test_momentum_and_nesterov_classes_match_torch_with_momentum_nine_tenths():
    problem = Problem(seed=2)
    for ours, nesterov in ((Momentum(learning_rate=0.05), False), (Nesterov(learning_rate=0.05), True)):
        theirs = torch_trajectory(lambda optim, params: optim.SGD(params, lr=0.05, momentum=0.9, nesterov=nesterov),
                                  problem)
        assert_same_trajectory(numnet_trajectory(ours, problem), theirs, problem.start)


def test_adam_with_a_step_schedule_matches_torch_adam_with_step_lr():
    problem = Problem(seed=3)
    ours = numnet_trajectory(Adam(learning_rate=0.05, schedule=StepDecay(step_size=3, factor=0.5)), problem)
    theirs = torch_trajectory(lambda optim, params: optim.Adam(params, lr=0.05), problem,
                              make_scheduler=lambda schedulers, opt: schedulers.StepLR(opt, step_size=3, gamma=0.5))
    assert_same_trajectory(ours, theirs, problem.start)


# ---------------------------------------------------------------------------------------------------------
# Hand-worked steps
# ---------------------------------------------------------------------------------------------------------


def test_adam_first_step_of_a_hand_worked_example():
    # p = 1, g = 0.5, lr = 0.1, β1 = 0.9, β2 = 0.999, ε = 1e-8:
    #   m = 0.1·0.5 = 0.05, v = 0.001·0.25 = 0.00025, m̂ = 0.05/0.1 = 0.5, v̂ = 0.00025/0.001 = 0.25,
    #   p ← 1 - 0.1·0.5/(√0.25 + 1e-8) = 1 - 0.05/0.50000001 = 0.900000002 (to float64 precision).
    optimizer = Adam(learning_rate=0.1)
    parameters = np.array([1.0])
    optimizer.step(parameters, np.array([0.5]))
    assert parameters[0] == pytest.approx(0.900000002, abs=2 * FLOAT64_EPS)
    assert optimizer.state["step"] == 1
    assert optimizer.state["m"][0] == pytest.approx(0.05, rel=2 * FLOAT64_EPS)
    assert optimizer.state["v"][0] == pytest.approx(0.00025, rel=2 * FLOAT64_EPS)


def test_sgd_momentum_first_two_steps_of_a_hand_worked_example():
    # lr = 0.1, μ = 0.9, p = 1, gradients 2 then 1:
    #   step 1: v = 2,             p = 1 - 0.1·2 = 0.8
    #   step 2: v = 0.9·2 + 1 = 2.8, p = 0.8 - 0.1·2.8 = 0.52
    optimizer = SGD(learning_rate=0.1, momentum=0.9)
    parameters = np.array([1.0])
    optimizer.step(parameters, np.array([2.0]))
    assert parameters[0] == pytest.approx(0.8, abs=2 * FLOAT64_EPS)
    optimizer.step(parameters, np.array([1.0]))
    assert optimizer.state["velocity"][0] == pytest.approx(2.8, abs=4 * FLOAT64_EPS)
    assert parameters[0] == pytest.approx(0.52, abs=4 * FLOAT64_EPS)


def test_nesterov_first_two_steps_of_a_hand_worked_example():
    # lr = 0.1, μ = 0.9, p = 1, gradients 2 then 1; p ← p - lr·(g + μ·v) after v ← μ·v + g:
    #   step 1: v = 2,   p = 1 - 0.1·(2 + 1.8) = 0.62
    #   step 2: v = 2.8, p = 0.62 - 0.1·(1 + 2.52) = 0.268
    optimizer = SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    parameters = np.array([1.0])
    optimizer.step(parameters, np.array([2.0]))
    assert parameters[0] == pytest.approx(0.62, abs=2 * FLOAT64_EPS)
    optimizer.step(parameters, np.array([1.0]))
    assert parameters[0] == pytest.approx(0.268, abs=4 * FLOAT64_EPS)


# Gradients of 0 or of size 1e-300 .. 1e3: below that, m = 0.1·g is subnormal and keeps too few digits for
# a ulp-level comparison (a property of floating point, not of Adam).
adam_gradients = st.floats(-1e3, 1e3, allow_nan=False).filter(lambda g: g == 0 or abs(g) > 1e-300)


@FAST
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=6), elements=adam_gradients),
       st.floats(1e-4, 1.0))
def test_adam_first_step_has_size_lr_times_g_over_abs_g_plus_epsilon(gradient, learning_rate):
    # With m̂ = g and v̂ = g² after one step, Δp = -lr·g/(|g| + ε): about lr·sign(g) for any |g| >> ε.
    optimizer = Adam(learning_rate=learning_rate)
    parameters = np.zeros_like(gradient)
    optimizer.step(parameters, gradient)
    expected = -learning_rate * gradient / (np.abs(gradient) + 1e-8)
    np.testing.assert_allclose(parameters, expected, rtol=8 * FLOAT64_EPS, atol=0)


@FAST
@given(hnp.arrays(np.float64, st.integers(1, 20), elements=st.floats(-1e3, 1e3, allow_nan=False)),
       st.floats(1e-4, 1.0))
def test_plain_sgd_step_is_parameters_minus_lr_times_gradient(gradient, learning_rate):
    parameters = np.linspace(-1.0, 1.0, gradient.size)
    expected = parameters - learning_rate * gradient
    SGD(learning_rate=learning_rate).step(parameters, gradient)
    np.testing.assert_array_equal(parameters, expected)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_state_keeps_the_parameter_dtype_and_counts_steps(name):
    optimizer = get_optimizer(name)
    parameters = np.ones(4, dtype=np.float32)
    for _ in range(3):
        optimizer.step(parameters, np.full(4, 0.5, dtype=np.float32))
    assert parameters.dtype == np.float32 and np.all(parameters < 1)
    assert optimizer.state["step"] == 3
    for state_name in optimizer.state_names:
        assert optimizer.state[state_name].dtype == np.float32


# ---------------------------------------------------------------------------------------------------------
# Saving and restoring the state
# ---------------------------------------------------------------------------------------------------------


def saved(state):
    """A copy of an optimiser's state, as a checkpoint would hold it (the live dict is updated in place)."""
    return {key: np.array(value, copy=True) if isinstance(value, np.ndarray) else value
            for key, value in state.items()}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_a_restored_state_continues_bit_for_bit(case):
    make_optimizer, _ = TORCH_CASES[case]
    problem = Problem(seed=4)
    original, parameters = make_optimizer(), problem.start.copy()
    original.schedule = StepDecay(step_size=2, factor=0.5)  # so the restored step count matters too
    for step in range(3):
        original.step(parameters, problem.gradient(parameters, step))
    checkpoint, parameters_at_checkpoint = saved(original.state), parameters.copy()

    restored = make_optimizer()
    restored.schedule = StepDecay(step_size=2, factor=0.5)
    restored.load_state(checkpoint)
    restored_parameters = parameters_at_checkpoint.copy()
    for step in range(3, N_STEPS):
        original.step(parameters, problem.gradient(parameters, step))
        restored.step(restored_parameters, problem.gradient(restored_parameters, step))
    np.testing.assert_array_equal(restored_parameters, parameters)
    assert restored.state["step"] == original.state["step"] == N_STEPS
    for state_name in original.state_names:
        np.testing.assert_array_equal(restored.state[state_name], original.state[state_name])


def test_load_state_copies_the_arrays_it_is_given():
    checkpoint = {"step": 2, "m": np.ones(3), "v": np.ones(3)}
    optimizer = Adam()
    optimizer.load_state(checkpoint)
    checkpoint["m"][:] = 99.0
    np.testing.assert_array_equal(optimizer.state["m"], np.ones(3))
    assert optimizer.state["step"] == 2


def test_load_state_without_a_required_array_raises_value_error_naming_it():
    with pytest.raises(ValueError, match="lacks v"):
        Adam().load_state({"step": 1, "m": np.zeros(3)})


# ---------------------------------------------------------------------------------------------------------
# Hyperparameters
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make, message", [
    (lambda: SGD(learning_rate=0.0), r"learning_rate must be a finite number > 0, got 0\.0"),
    (lambda: SGD(learning_rate=-0.1), r"learning_rate .* got -0\.1"),
    (lambda: Adam(learning_rate=float("nan")), r"learning_rate .* got nan"),
    (lambda: RMSProp(learning_rate=math.inf), r"learning_rate .* got inf"),
    (lambda: SGD(momentum=1.0), r"momentum must be in \[0, 1\), got 1\.0"),
    (lambda: SGD(momentum=1.5), r"momentum .* got 1\.5"),
    (lambda: SGD(momentum=-0.1), r"momentum .* got -0\.1"),
    (lambda: SGD(momentum=float("nan")), r"momentum .* got nan"),
    (lambda: SGD(learning_rate=0.1, nesterov=True), r"nesterov=True needs a momentum > 0"),
    (lambda: Momentum(momentum=0.0, nesterov=True), r"nesterov=True needs a momentum > 0"),
    (lambda: Adam(beta1=1.0), r"beta1 must be in \[0, 1\)"),
    (lambda: Adam(beta2=1.0), r"beta2 must be in \[0, 1\)"),
    (lambda: RMSProp(rho=1.0), r"rho must be in \[0, 1\)"),
    (lambda: AdaGrad(epsilon=0.0), r"epsilon must be a finite number > 0"),
    (lambda: Adam(epsilon=-1e-8), r"epsilon must be a finite number > 0"),
    (lambda: AdamW(weight_decay=-0.01), r"weight_decay must be a finite number >= 0, got -0\.01"),
    (lambda: AdamW(weight_decay=math.inf), r"weight_decay must be a finite number >= 0, got inf"),
    (lambda: AdamW(decay="biases"), r"decay must be one of all, matrices, got 'biases'"),
])
def test_invalid_hyperparameters_raise_value_error_naming_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_learning_rate_that_is_not_a_number_raises_type_error():
    with pytest.raises(TypeError, match="learning_rate must be a real number"):
        SGD(learning_rate="fast")


def test_an_adamw_decay_that_is_not_a_string_raises_type_error():
    with pytest.raises(TypeError, match=r"decay must be one of all, matrices, got True"):
        AdamW(decay=True)


def test_get_optimizer_passes_the_learning_rate_and_options_on():
    optimizer = get_optimizer(" SGD ", learning_rate=0.5, momentum=0.9, nesterov=True)
    assert isinstance(optimizer, SGD)
    hyperparameters = optimizer.hyperparameters()
    assert hyperparameters["learning_rate"] == 0.5
    assert hyperparameters["momentum"] == 0.9 and hyperparameters["nesterov"] is True
    assert hyperparameters["schedule"] == {"name": "constant"}


def test_get_optimizer_with_invalid_options_raises_value_error():
    with pytest.raises(ValueError, match="learning_rate"):
        get_optimizer("adam", learning_rate=-1.0)


@pytest.mark.parametrize("name, expected", [
    ("sgd", {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}),
    ("momentum", {"learning_rate": 0.01, "momentum": 0.9, "nesterov": False}),
    ("nesterov", {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True}),
    ("adagrad", {"learning_rate": 0.01, "epsilon": 1e-10}),
    ("rmsprop", {"learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-8}),
    ("adam", {"learning_rate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}),
    ("adamw", {"learning_rate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "weight_decay": 0.01,
               "decay": "all"}),
])
def test_default_hyperparameters_are_the_documented_ones(name, expected):
    hyperparameters = get_optimizer(name).hyperparameters()
    assert {key: hyperparameters[key] for key in expected} == expected


# ---------------------------------------------------------------------------------------------------------
# No subnormal drift
# ---------------------------------------------------------------------------------------------------------

#: The optimisers whose state decays geometrically (by 0.9 a step) when a gradient stays zero.
DECAYING_STATE = ["adam", "adamw", "momentum", "nesterov", "rmsprop"]
#: One-hot inputs, one sample a step, in order: input k's weights get a non-zero gradient only at step k, so
#: their momentum, about 1e-2 then, is multiplied by 0.9 at each of the ~1000 - k steps after it and
#: crosses the smallest float32 normal (1.2e-38) about 790 steps later.
N_ONE_HOT = 1000


def subnormal_count(array):
    """How many entries of ``array`` (any backend) are non-zero but below the dtype's smallest normal."""
    values = np.abs(to_numpy(array))
    return int(np.count_nonzero((values > 0) & (values < np.finfo(values.dtype).smallest_normal)))


def fit_one_hot(optimizer_name, flush_subnormals):
    """A 1000-8-3 relu network after one epoch of the one-hot workload (N_ONE_HOT steps) in float32."""
    X = np.eye(N_ONE_HOT, dtype=np.float32)
    y = np.random.default_rng(0).integers(0, 3, N_ONE_HOT)
    network = numnet.Network([N_ONE_HOT, 8, 3], output_activation="softmax", dtype="float32", seed=0)
    optimizer = get_optimizer(optimizer_name)
    optimizer.flush_subnormals = flush_subnormals
    network.fit(X, y, epochs=1, batch_size=1, shuffle=False, optimizer=optimizer, seed=0, record_gradients=False)
    return network


@pytest.mark.parametrize("name", DECAYING_STATE)
def test_a_fit_long_enough_to_underflow_returns_with_no_subnormal_value_in_the_optimiser_state(name, kernel_choice):
    if kernel_choice == "numba" and get_backend().name != "numpy":
        pytest.skip("the compiled kernels run on NumPy arrays only; this backend runs the rules of the numpy case")
    drifted = fit_one_hot(name, flush_subnormals=False)
    assert sum(subnormal_count(drifted.optimizer.state[key]) for key in drifted.optimizer.state_names) > 100
    flushed = fit_one_hot(name, flush_subnormals=True)
    # The last flush was N_ONE_HOT % FLUSH_INTERVAL = 8 steps before the end: the threshold covers those too.
    assert flushed.optimizer.state["step"] % FLUSH_INTERVAL != 0
    for key in flushed.optimizer.state_names:
        assert subnormal_count(flushed.optimizer.state[key]) == 0, key
    # What the flush zeroes is too small to move any float32 parameter: the two runs are the same.
    np.testing.assert_array_equal(to_numpy(flushed.flat_parameters), to_numpy(drifted.flat_parameters))


#: float32 gradients that feed every kind of state a subnormal: 1e-40 is subnormal itself (momentum, Adam's
#: m), and 1e-20 has a subnormal square (AdaGrad's sum, RMSProp's mean square, Adam's v).
TINY_GRADIENTS = np.array([1e-40, 1e-20, -1e-40, -1e-20], dtype=np.float32)


@pytest.mark.parametrize("name", ["adagrad", *DECAYING_STATE])
def test_subnormal_state_from_tiny_gradients_lasts_only_until_the_next_flush(name):
    optimizer = get_optimizer(name)
    parameters = np.ones_like(TINY_GRADIENTS)
    interval = flush_interval(tuple(optimizer.decays.values()))
    for _ in range(interval - 1):
        optimizer.step(parameters, TINY_GRADIENTS)
    assert all(subnormal_count(optimizer.state[key]) > 0 for key in optimizer.state_names)
    optimizer.step(parameters, TINY_GRADIENTS)  # step `interval`: a flush is due
    assert all(subnormal_count(optimizer.state[key]) == 0 for key in optimizer.state_names)


@FAST
@given(st.floats(1e-3, 0.9999), st.sampled_from([np.float32, np.float64]))
def test_a_value_at_the_flush_threshold_is_still_normal_when_the_next_flush_comes(decay, dtype):
    smallest_normal = np.finfo(dtype).smallest_normal
    interval = flush_interval((decay,))
    threshold = flush_thresholds({"state": decay}, float(smallest_normal), interval)["state"]
    assert 1 <= interval <= FLUSH_INTERVAL
    assert threshold <= MAX_FLUSH_FACTOR * smallest_normal
    value = dtype(threshold)
    for _ in range(interval):  # what the state's rule does to it while its gradient stays zero
        value = value * dtype(decay)
    assert value >= smallest_normal


def test_a_state_restored_between_flushes_continues_bit_for_bit_across_them():
    # Float32 gradients that stop for half the parameters after step 5: their m, about 0.1, is 1e-42 (a
    # subnormal) by step 900 without flushes. The checkpoint is taken at step 450, between two flushes.
    rng = np.random.default_rng(6)
    gradients = rng.standard_normal((900, 64)).astype(np.float32)
    gradients[5:, :32] = 0
    original, parameters = Adam(learning_rate=0.01), np.zeros(64, dtype=np.float32)
    for step in range(450):
        original.step(parameters, gradients[step])
    restored, restored_parameters = Adam(learning_rate=0.01), parameters.copy()
    restored.load_state(saved(original.state))
    for step in range(450, 900):
        original.step(parameters, gradients[step])
        restored.step(restored_parameters, gradients[step])
    np.testing.assert_array_equal(restored_parameters, parameters)
    for state_name in ("m", "v"):
        np.testing.assert_array_equal(restored.state[state_name], original.state[state_name])
    assert np.count_nonzero(original.state["m"][:32]) == 0  # the flushes cleared the stopped half


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_step_given_previous_leaves_the_parameters_from_before_the_update_there(name):
    rng = np.random.default_rng(7)
    parameters = rng.standard_normal(3 * 2 ** 16).astype(np.float32)  # several chunks for the kernels
    before, previous = parameters.copy(), np.empty_like(parameters)
    get_optimizer(name).step(parameters, rng.standard_normal(parameters.size).astype(np.float32), previous=previous)
    np.testing.assert_array_equal(previous, before)
    assert not np.array_equal(parameters, before)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_buffer_stepped_in_chunks_on_several_threads_equals_whole_array_steps_bit_for_bit(name, monkeypatch):
    rng = np.random.default_rng(8)
    size = 3 * RULE_CHUNK + 5
    start = rng.standard_normal(size).astype(np.float32)
    gradients = rng.standard_normal((FLUSH_INTERVAL + 1, size)).astype(np.float32)
    gradients[2:, : size // 2] = 0  # so that the flush at step 32 has values to clear
    results = []
    # Whole arrays, then 7 chunks on three threads (a thread takes chunks from two chunks' worth up)
    for chunk, threads in ((10 * size, 1), (size // 7, 3)):
        monkeypatch.setattr(numnet.optimizers, "RULE_CHUNK", chunk)
        set_kernel_threads(threads)
        optimizer, parameters = get_optimizer(name), start.copy()
        for gradient in gradients:
            optimizer.step(parameters, gradient)
        results.append((parameters, [optimizer.state[key] for key in optimizer.state_names]))
    set_kernel_threads(None)
    (whole, whole_state), (chunked, chunked_state) = results
    np.testing.assert_array_equal(chunked, whole)
    for whole_array, chunked_array in zip(whole_state, chunked_state):
        np.testing.assert_array_equal(chunked_array, whole_array)


# ---------------------------------------------------------------------------------------------------------
# AdamW: decoupled weight decay, against torch.optim.AdamW
# ---------------------------------------------------------------------------------------------------------

#: AdamW's trajectories run 50 steps and are held to TORCH_TOLERANCE: numnet and torch apply the same
#: float64 formulas in a slightly different order (Adam's bias corrections folded into ε and the step size,
#: v updated as v + (1-β2)(g² - v)); the parameters agree to 6e-14 relatively and their displacements to
#: 2e-15 (measured), while a decay applied after Adam's step instead of before misses by 0.5.
ADAMW_STEPS = 50
#: A network trained by numnet and by torch: the gradients come from two different backward passes too,
#: a few ulps apart at every step, and 50 Adam steps carry the differences on: 2e-13 measured; decaying the
#: biases as well (decay="all") misses by 4e-2.
NETWORK_TORCH_TOLERANCE = 1e-11
#: λ large enough that the decay moves the weights by far more than the tolerance: 50 steps at lr 0.01
#: shrink them by about 5%.
ADAMW_WEIGHT_DECAY = 0.1


@pytest.mark.parametrize("with_schedule", [False, True], ids=["constant", "step_decay"])
def test_adamw_matches_torch_adamw_over_fifty_steps_in_float64(with_schedule):
    problem = Problem(seed=9, steps=ADAMW_STEPS)
    schedule = StepDecay(step_size=10, factor=0.5) if with_schedule else "constant"
    ours = numnet_trajectory(AdamW(learning_rate=0.01, weight_decay=ADAMW_WEIGHT_DECAY, schedule=schedule),
                             problem, steps=ADAMW_STEPS)
    theirs = torch_trajectory(lambda optim, params: optim.AdamW(params, lr=0.01, weight_decay=ADAMW_WEIGHT_DECAY),
                              problem, steps=ADAMW_STEPS,
                              make_scheduler=(lambda schedulers, opt: schedulers.StepLR(opt, step_size=10, gamma=0.5))
                              if with_schedule else None)
    assert_same_trajectory(ours, theirs, problem.start)
    # The decay is what this test checks: without it (Adam), the path ends far outside the tolerance.
    adam = numnet_trajectory(Adam(learning_rate=0.01, schedule=schedule), problem, steps=ADAMW_STEPS)
    assert max_relative_difference(adam[-1] - problem.start, ours[-1] - problem.start) > 1e-4


def test_adamw_without_weight_decay_steps_exactly_as_adam():
    # λ = 0: p·(1 - lr·0) = p·1 = p exactly, so every step is Adam's, bit for bit.
    problem = Problem(seed=10)
    ours = numnet_trajectory(AdamW(learning_rate=0.01, weight_decay=0.0), problem)
    np.testing.assert_array_equal(ours, numnet_trajectory(Adam(learning_rate=0.01), problem))


def dense_classification(seed=12):
    """A float64 4-6-3 tanh/softmax network (Dense layers only) and 24 samples of 3 classes."""
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((24, 4)), rng.integers(0, 3, 24)
    network = numnet.Network([4, 6, 3], activation="tanh", output_activation="softmax", dtype="float64", seed=seed)
    return network, X, y


def test_adamw_decaying_matrices_only_matches_torch_adamw_with_two_parameter_groups():
    torch = pytest.importorskip("torch")
    network, X, y = dense_classification()
    linears = torch_linear_layers(network)
    weights = [linear.weight for linear in linears]
    biases = [linear.bias for linear in linears]
    theirs = torch.optim.AdamW([{"params": weights, "weight_decay": ADAMW_WEIGHT_DECAY},
                                {"params": biases, "weight_decay": 0.0}], lr=0.01)
    inputs, targets = torch.tensor(X), torch.tensor(y)
    for _ in range(ADAMW_STEPS):  # full batches, in order: the same batches as fit's below
        theirs.zero_grad()
        torch.nn.functional.cross_entropy(linears[1](torch.tanh(linears[0](inputs))), targets).backward()
        theirs.step()
    ours = AdamW(learning_rate=0.01, weight_decay=ADAMW_WEIGHT_DECAY, decay="matrices")
    network.fit(X, y, epochs=ADAMW_STEPS, batch_size=len(X), shuffle=False, optimizer=ours, seed=0)
    for layer, linear in zip(network.layers, linears):
        # numnet's W is (n_in, n_out), torch's weight (n_out, n_in)
        np.testing.assert_allclose(as_numpy(layer.params["W"]), linear.weight.detach().numpy().T,
                                   rtol=NETWORK_TORCH_TOLERANCE, atol=0)
        np.testing.assert_allclose(as_numpy(layer.params["b"]), linear.bias.detach().numpy(),
                                   rtol=NETWORK_TORCH_TOLERANCE, atol=0)


#: nanoGPT's schedule over the 50 steps: 10 of warmup, the cosine down to the floor at step 40, then 9 at the
#: floor, so that every branch of get_lr is taken.
WARMUP_STEPS, DECAY_STEPS, MIN_LEARNING_RATE, BASE_LEARNING_RATE = 10, 40, 1e-3, 0.01


def nanogpt_get_lr(it):
    """nanoGPT's train.py get_lr (its names, its order of operations): the oracle of WarmupCosine."""
    if it < WARMUP_STEPS:
        return BASE_LEARNING_RATE * (it + 1) / (WARMUP_STEPS + 1)
    if it > DECAY_STEPS:
        return MIN_LEARNING_RATE
    decay_ratio = (it - WARMUP_STEPS) / (DECAY_STEPS - WARMUP_STEPS)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return MIN_LEARNING_RATE + coeff * (BASE_LEARNING_RATE - MIN_LEARNING_RATE)


@pytest.mark.parametrize("decay", ["matrices", "all"])
def test_adamw_with_warmup_cosine_matches_torch_adamw_with_nanogpts_lambda_lr(decay):
    """50 steps of AdamW under WarmupCosine against torch.optim.AdamW under a LambdaLR of nanoGPT's get_lr,
    both fed the same gradients (numnet's, at numnet's parameters), so that only the update and the
    schedule are compared. torch decays the weights only, or everything, as two parameter groups say."""
    torch = pytest.importorskip("torch")
    network, X, y = dense_classification(seed=16)
    linears = torch_linear_layers(network)
    weights, biases = [linear.weight for linear in linears], [linear.bias for linear in linears]
    theirs = torch.optim.AdamW([{"params": weights, "weight_decay": ADAMW_WEIGHT_DECAY},
                                {"params": biases, "weight_decay": ADAMW_WEIGHT_DECAY if decay == "all" else 0.0}],
                               lr=BASE_LEARNING_RATE)
    # LambdaLR scales the base rate by the factor of the step it is at: step t runs at get_lr(t)
    scheduler = torch.optim.lr_scheduler.LambdaLR(theirs, lambda it: nanogpt_get_lr(it) / BASE_LEARNING_RATE)
    schedule = WarmupCosine(WARMUP_STEPS, DECAY_STEPS, MIN_LEARNING_RATE)
    ours = AdamW(learning_rate=BASE_LEARNING_RATE, weight_decay=ADAMW_WEIGHT_DECAY, decay=decay,
                 schedule=schedule).bind(network)
    inputs, targets = network.prepare_inputs(X), network.prepare_targets(y)
    our_rates, their_rates = [], []
    for _ in range(ADAMW_STEPS):
        network.loss_and_gradients(inputs, targets)
        gradients = {name: as_numpy(gradient) for name, gradient in network.gradients().items()}
        for layer, linear in zip(network.layers, linears):
            linear.weight.grad = torch.tensor(gradients[f"{layer.name}.W"].T.copy())  # torch's (n_out, n_in)
            linear.bias.grad = torch.tensor(gradients[f"{layer.name}.b"])
        our_rates.append(ours.current_learning_rate)
        their_rates.append(theirs.param_groups[0]["lr"])
        ours.step(network.flat_parameters, network.flat_gradients)
        theirs.step()
        scheduler.step()
    # The rates: torch's base·(get_lr/base) against numnet's get_lr, a rounding apart; every branch taken.
    # Fed the same gradients, the parameters differ only by the update's order of operations and those
    # roundings: 8e-16 relatively after 50 steps (measured), well inside TORCH_TOLERANCE.
    np.testing.assert_allclose(our_rates, their_rates, rtol=4 * FLOAT64_EPS, atol=0)
    assert our_rates[0] == pytest.approx(BASE_LEARNING_RATE / 11) and max(our_rates) == our_rates[WARMUP_STEPS]
    assert our_rates[-1] == MIN_LEARNING_RATE
    for layer, linear in zip(network.layers, linears):
        np.testing.assert_allclose(as_numpy(layer.params["W"]), linear.weight.detach().numpy().T,
                                   rtol=TORCH_TOLERANCE, atol=0)
        np.testing.assert_allclose(as_numpy(layer.params["b"]), linear.bias.detach().numpy(),
                                   rtol=TORCH_TOLERANCE, atol=0)


def test_adamw_decaying_matrices_decays_what_l2_penalises_and_leaves_the_rest_as_adam_does():
    # One step from the same weights and gradients: every parameter l2 does not penalise (the biases, and
    # BatchNorm's gamma and beta) moves exactly as under Adam; every weight is Adam's step from p·(1 - lr·λ).
    network = numnet.Network([4, 6, 3], output_activation="softmax", batch_norm=True, dtype="float64", seed=13)
    rng = np.random.default_rng(13)
    gradients = namespace(network.flat_parameters).asarray(rng.standard_normal(network.n_parameters))
    steps = {}
    for name, optimizer in (("adam", Adam(learning_rate=0.01)),
                            ("adamw", AdamW(learning_rate=0.01, weight_decay=0.5, decay="matrices"))):
        parameters = network.copy()
        optimizer.bind(parameters).step(parameters.flat_parameters, gradients)
        steps[name] = {key: as_numpy(value) for key, value in parameters.parameters().items()}
    penalized = set(network.weight_names())
    assert penalized == {"dense_0.W", "dense_3.W"}
    for key, start in network.parameters().items():
        start = as_numpy(start)
        if key in penalized:
            # Adam's first step is -lr·g/(|g| + ε) whatever the start: from p·(1 - 0.005) instead of p. Each
            # side rounds a few times at the size of p and of the step (0.01), against a difference of
            # 0.005·p: 1e-9 relatively, and 1e-15 absolutely for the weights nearest zero.
            np.testing.assert_allclose(steps["adamw"][key] - steps["adam"][key], -0.005 * start,
                                       rtol=1e-9, atol=1e-15)
        else:
            np.testing.assert_array_equal(steps["adamw"][key], steps["adam"][key])


def test_adamw_decaying_matrices_stepped_before_it_knows_the_network_raises_runtime_error():
    optimizer = AdamW(decay="matrices")
    with pytest.raises(RuntimeError, match=r"call optimizer.bind\(network\) first"):
        optimizer.step(np.ones(4), np.ones(4))


def fit_checkpointed(make_optimizer, tmp_path, epochs=(2, 2)):
    """(a network trained for sum(epochs) epochs in one fit, the same trained for epochs[0], saved, loaded and
    trained for epochs[1]): a float64 network with BatchNorm, on NumPy (load_model rebuilds there)."""
    rng = np.random.default_rng(14)
    X, y = rng.standard_normal((40, 5)), np.arange(40) % 3
    runs = []
    for chunks in ((sum(epochs),), epochs):
        network = numnet.Network([5, 8, 3], output_activation="softmax", batch_norm=True, dtype="float64",
                                 seed=14, backend="numpy")
        network.fit(X, y, epochs=chunks[0], batch_size=16, optimizer=make_optimizer(), seed=15)
        for more in chunks[1:]:
            network = numnet.load_model(numnet.save_model(network, tmp_path / "checkpoint.npz"))
            network.fit(X, y, epochs=more, batch_size=16)  # the optimiser, its state and the seed from the file
        runs.append(network)
    return runs


def assert_same_training(uninterrupted, resumed):
    np.testing.assert_array_equal(resumed.flat_parameters, uninterrupted.flat_parameters)
    assert resumed.history.iteration_loss == uninterrupted.history.iteration_loss
    assert type(resumed.optimizer) is type(uninterrupted.optimizer)
    assert resumed.optimizer.hyperparameters() == uninterrupted.optimizer.hyperparameters()
    assert resumed.optimizer.state["step"] == uninterrupted.optimizer.state["step"]
    for name in uninterrupted.optimizer.state_names:
        np.testing.assert_array_equal(resumed.optimizer.state[name], uninterrupted.optimizer.state[name])


def test_adamw_decaying_matrices_resumes_from_a_file_bit_for_bit(tmp_path):
    uninterrupted, resumed = fit_checkpointed(
        lambda: AdamW(learning_rate=0.01, weight_decay=0.1, decay="matrices", schedule=StepDecay(5, 0.5)), tmp_path)
    assert_same_training(uninterrupted, resumed)
    assert resumed.optimizer.decay == "matrices"


# ---------------------------------------------------------------------------------------------------------
# A rule of one's own, written in this file and registered in one place (OPTIMIZERS), with no edit to numnet
# ---------------------------------------------------------------------------------------------------------


def lion_update(param, grad, state, scratch, *, learning_rate, beta1, beta2):
    """Lion (Chen et al. 2023, "Symbolic discovery of optimization algorithms"), without weight decay:
    p ← p - lr·sign(β1·m + (1-β1)·g), then m ← β2·m + (1-β2)·g."""
    xp = namespace(param)
    m = state["m"]
    scratch[...] = xp.sign(m * beta1 + grad * (1.0 - beta1))
    param -= scratch * learning_rate
    m *= beta2
    m += grad * (1.0 - beta2)


LION_RULE = Rule("lion", lion_update, state_names=("m",),
                 decays=lambda hyperparameters: {"m": hyperparameters["beta2"]})


class Lion(Optimizer):
    """Lion: the record above and this class are all a rule of one's own needs."""

    name = "lion"
    rule = LION_RULE

    def __init__(self, learning_rate=1e-4, beta1=0.9, beta2=0.99, schedule="constant"):
        super().__init__(learning_rate, schedule)
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)


@pytest.fixture
def lion_registered(monkeypatch):
    """Lion in the table of optimisers for the test, as a contributor registers a rule."""
    monkeypatch.setitem(OPTIMIZERS, "lion", Lion)


def test_lion_first_step_is_minus_lr_times_the_sign_of_the_gradient():
    # m = 0 at the start: sign(β1·0 + (1-β1)·g) = sign(g), so p ← p - lr·sign(g); then m = (1-β2)·g.
    gradient = np.array([3.0, -0.5, 0.0, 1e-300])
    parameters = np.ones(4)
    optimizer = Lion(learning_rate=0.25)
    optimizer.step(parameters, gradient)
    np.testing.assert_array_equal(parameters, [0.75, 1.25, 1.0, 0.75])
    # 1 - 0.99 is 0.01 to 9e-16 relatively in float64.
    np.testing.assert_allclose(optimizer.state["m"], 0.01 * gradient, rtol=1e-15)


@pytest.mark.usefixtures("lion_registered")
def test_a_rule_written_only_here_trains_with_fit_saves_and_resumes_bit_for_bit(tmp_path):
    make = lambda: Lion(learning_rate=0.003, schedule=StepDecay(step_size=5, factor=0.5))  # noqa: E731
    uninterrupted, resumed = fit_checkpointed(make, tmp_path)
    assert_same_training(uninterrupted, resumed)
    assert uninterrupted.history.epoch_loss[-1] < uninterrupted.history.epoch_loss[0]
    assert type(get_optimizer("lion")) is Lion
    # Without a compiled kernel, "auto" runs its NumPy update: the same numbers as "numpy".
    for choice in ("numpy", "auto"):
        with use_kernels(choice):
            again, _ = fit_checkpointed(make, tmp_path, epochs=(4,))
        np.testing.assert_array_equal(again.flat_parameters, uninterrupted.flat_parameters)


def lion_compiled_rule():
    """LION_RULE with a numba kernel of its own, written here as the NumPy update computes (same roundings)."""
    numba = pytest.importorskip("numba")

    @numba.njit(nogil=True, error_model="numpy")
    def lion_step(kept, p, g, m, beta1, one_minus_beta1, beta2, one_minus_beta2, learning_rate, flush_m):
        for i in range(p.shape[0]):
            kept[i] = p[i]
            p[i] -= np.sign(m[i] * beta1 + g[i] * one_minus_beta1) * learning_rate
            value = m[i] * beta2 + g[i] * one_minus_beta2
            m[i] = 0 if abs(value) < flush_m else value

    def kernel_scalars(hyperparameters):
        beta1, beta2 = hyperparameters["beta1"], hyperparameters["beta2"]
        return {"beta1": beta1, "one_minus_beta1": 1.0 - beta1, "beta2": beta2, "one_minus_beta2": 1.0 - beta2,
                "learning_rate": hyperparameters["learning_rate"]}

    return dataclasses.replace(LION_RULE, kernel=lion_step, kernel_scalars=kernel_scalars)


def test_a_compiled_kernel_of_ones_own_runs_and_equals_its_numpy_update_bit_for_bit():
    class CompiledLion(Lion):
        rule = lion_compiled_rule()

    rng = np.random.default_rng(16)
    gradients = (rng.standard_normal((2 * FLUSH_INTERVAL, 300)) * 10.0 ** rng.uniform(-40, 0, 300)).astype(np.float32)
    gradients[3:, :150] = 0  # so that m decays, past the flushes at steps 32 and 64
    results = []
    for choice in ("numpy", "numba"):
        with use_kernels(choice):
            optimizer, parameters = CompiledLion(learning_rate=0.01), np.zeros(300, np.float32)
            for gradient in gradients:
                optimizer.step(parameters, gradient)
        results.append((parameters, optimizer.state["m"]))
    assert CompiledLion.rule.kernel.signatures  # numba compiled it: the kernel ran
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])
    # Gradients down to 1e-40 give m subnormal values; the flush at the last step (64) has cleared them.
    assert subnormal_count(results[0][1]) == 0


def test_an_optimiser_class_without_a_rule_raises_type_error_at_its_first_step():
    class Ruleless(Optimizer):
        name = "ruleless"

    with pytest.raises(TypeError, match=r"Ruleless names no update rule: set the class attribute rule"):
        Ruleless(learning_rate=0.1).step(np.ones(3), np.ones(3))


def test_a_kernel_whose_arguments_do_not_match_its_rule_by_name_raises_type_error_naming_them():
    numba = pytest.importorskip("numba")

    @numba.njit
    def misnamed_step(kept, p, g, m, lr):
        p -= lr * g

    class Misnamed(Lion):
        rule = dataclasses.replace(LION_RULE, kernel=misnamed_step,
                                   kernel_scalars=lambda hyperparameters: {"learning_rate": 1.0})

    with use_kernels("numba"), pytest.raises(TypeError, match=r"not given: lr; given but not taken: learning_rate"):
        Misnamed().step(np.ones(4), np.ones(4))
