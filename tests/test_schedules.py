"""Tests of numnet.schedules against their closed forms, alone and inside an optimiser."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numnet.optimizers import SGD
from numnet.schedules import (
    SCHEDULES, Constant, InverseScaling, ReduceOnPlateau, StepDecay, WarmupCosine, get_schedule, track_plateau)

# A schedule value is one or two float64 operations on the base rate: a few ulps.
FLOAT64_RTOL = 4 * np.finfo(np.float64).eps
FAST = settings(max_examples=40, deadline=None, derandomize=True)


def test_constant_schedule_returns_the_base_rate_at_every_step():
    schedule = get_schedule("constant")
    assert [schedule(0.3, step) for step in (0, 1, 10, 10**6)] == [0.3, 0.3, 0.3, 0.3]


def test_step_decay_of_a_hand_worked_example():
    # step_size 3, factor 0.5, base 0.8: steps 0-2 → 0.8, 3-5 → 0.4, 6-8 → 0.2, 9 → 0.1
    schedule = StepDecay(step_size=3, factor=0.5)
    rates = [schedule(0.8, step) for step in range(10)]
    assert rates == [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2, 0.1]


def test_inverse_scaling_of_a_hand_worked_example():
    # decay 1, power 0.5, base 0.6: 0.6/√1 = 0.6, 0.6/√4 = 0.3 at step 3, 0.6/√9 = 0.2 at step 8
    schedule = InverseScaling(decay=1.0, power=0.5)
    assert schedule(0.6, 0) == 0.6
    assert schedule(0.6, 3) == pytest.approx(0.3, rel=FLOAT64_RTOL)
    assert schedule(0.6, 8) == pytest.approx(0.2, rel=FLOAT64_RTOL)


@FAST
@given(st.floats(1e-6, 10.0), st.integers(1, 50), st.floats(0.01, 1.0), st.integers(0, 10**5))
def test_step_decay_is_lr_times_factor_to_the_number_of_completed_periods(rate, step_size, factor, step):
    expected = rate * factor ** (step // step_size)
    assert StepDecay(step_size=step_size, factor=factor)(rate, step) == pytest.approx(expected, rel=FLOAT64_RTOL)


@FAST
@given(st.floats(1e-6, 10.0), st.floats(0.0, 2.0), st.floats(0.0, 2.0), st.integers(0, 10**5))
def test_inverse_scaling_is_lr_over_one_plus_decay_t_to_the_power(rate, decay, power, step):
    expected = rate / (1.0 + decay * step) ** power
    assert InverseScaling(decay=decay, power=power)(rate, step) == pytest.approx(expected, rel=FLOAT64_RTOL)


@pytest.mark.parametrize("schedule", [StepDecay(step_size=2, factor=0.1), InverseScaling(decay=0.5, power=1.0)])
def test_schedules_never_increase_the_rate(schedule):
    rates = [schedule(1.0, step) for step in range(20)]
    assert all(later <= earlier for earlier, later in zip(rates, rates[1:]))
    assert rates[-1] < rates[0]


@pytest.mark.parametrize("make, message", [
    (lambda: StepDecay(step_size=0), "step_size must be a positive integer, got 0"),
    (lambda: StepDecay(factor=0.0), r"factor must be in \(0, 1\], got 0.0"),
    (lambda: StepDecay(factor=1.5), r"factor must be in \(0, 1\], got 1.5"),
    (lambda: InverseScaling(decay=-1.0), "decay must be a finite number >= 0, got -1.0"),
    (lambda: InverseScaling(power=-0.5), "power must be a finite number >= 0, got -0.5"),
])
def test_invalid_schedule_arguments_raise_value_error_naming_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_config_names_the_schedule_and_its_arguments():
    assert StepDecay(step_size=5, factor=0.25).config() == {"name": "step", "step_size": 5, "factor": 0.25}
    assert InverseScaling(decay=0.1, power=0.75).config() == {"name": "inverse_scaling", "decay": 0.1, "power": 0.75}
    assert Constant().config() == {"name": "constant"}


def test_every_table_entry_is_a_schedule_whose_name_is_in_the_table():
    for name in SCHEDULES:
        schedule = get_schedule(name)
        assert schedule.name in SCHEDULES and isinstance(schedule, SCHEDULES[schedule.name])


# ---------------------------------------------------------------------------------------------------------
# Warmup and cosine (nanoGPT's get_lr)
# ---------------------------------------------------------------------------------------------------------


def test_warmup_cosine_of_a_hand_worked_example_at_its_boundaries():
    # base 0.9, warmup 2, decay 12, floor 0.1. Warmup: 0.9·1/3 = 0.3 at t = 0, 0.9·2/3 = 0.6 at t = 1 (the
    # full rate is never reached inside the warmup). t = 2 = warmup: r = 0, ½(1 + cos 0) = 1 → 0.9. t = 7:
    # r = 5/10, ½(1 + cos(π/2)) = ½ → 0.1 + ½·0.8 = 0.5. t = 12 = decay: r = 1, ½(1 + cos π) = 0 → 0.1;
    # after it the floor: 0.1 at t = 13 and at t = 10⁶.
    schedule = WarmupCosine(warmup_steps=2, decay_steps=12, min_learning_rate=0.1)
    rates = [schedule(0.9, step) for step in (0, 1, 2, 7, 12, 13, 10**6)]
    np.testing.assert_allclose(rates, [0.3, 0.6, 0.9, 0.5, 0.1, 0.1, 0.1], rtol=FLOAT64_RTOL)
    assert schedule(0.9, 13) == schedule(0.9, 10**6) == 0.1  # the floor itself, not a cosine near it
    # t = 4: r = 0.2, ½(1 + cos 36°) with cos 36° = (1 + √5)/4 (the golden ratio's half) → 0.1 + 0.8·that
    golden_coefficient = 0.5 * (1 + (1 + math.sqrt(5)) / 4)
    assert schedule(0.9, 4) == pytest.approx(0.1 + 0.8 * golden_coefficient, rel=FLOAT64_RTOL)


def test_warmup_cosine_without_warmup_starts_at_the_full_rate():
    # warmup 0: t = 0 is the cosine's start, r = 0 → the base rate; halfway (t = 5 of 10) the mean of base
    # and floor, (1 + 0)/2 = 0.5
    schedule = WarmupCosine(warmup_steps=0, decay_steps=10, min_learning_rate=0.0)
    assert schedule(1.0, 0) == 1.0
    assert schedule(1.0, 5) == pytest.approx(0.5, rel=FLOAT64_RTOL)
    assert schedule(1.0, 10) == 0.0  # r = 1 exactly, and cos(math.pi) rounds to -1 exactly


@FAST
@given(st.floats(1e-4, 10.0), st.integers(0, 50), st.integers(1, 200), st.floats(0.0, 1.0))
def test_warmup_cosine_rises_then_falls_to_its_floor(rate, warmup_steps, decay_length, floor_fraction):
    """Strictly rising in the warmup, never rising after it, the base rate at the warmup's end and the floor
    from decay_steps on, for any floor between 0 and the base rate."""
    floor = rate * floor_fraction
    schedule = WarmupCosine(warmup_steps, warmup_steps + decay_length, floor)
    rates = np.array([schedule(rate, step) for step in range(warmup_steps + decay_length + 3)])
    warmup, rest = rates[:warmup_steps + 1], rates[warmup_steps:]
    assert np.all(np.diff(warmup) > 0)
    assert np.all(np.diff(rest) <= FLOAT64_RTOL * rate)  # flat stretches may wobble by a rounding
    assert rates[warmup_steps] == pytest.approx(rate, rel=FLOAT64_RTOL)
    np.testing.assert_allclose(rates[warmup_steps + decay_length:], floor, rtol=FLOAT64_RTOL, atol=1e-16 * rate)


@pytest.mark.parametrize("options, error, message", [
    ({"warmup_steps": 10, "decay_steps": 10}, ValueError,
     "decay_steps must be greater than warmup_steps, got decay_steps=10 and warmup_steps=10"),
    ({"warmup_steps": 3000}, ValueError, "got decay_steps=2000 and warmup_steps=3000"),  # against the default
    ({"warmup_steps": -1}, ValueError, "warmup_steps must be a non-negative integer, got -1"),
    ({"decay_steps": 0}, ValueError, "decay_steps must be a positive integer, got 0"),
    ({"decay_steps": 20.0}, TypeError, "decay_steps must be a positive integer, got 20.0"),
    ({"min_learning_rate": -1e-4}, ValueError, "min_learning_rate must be a finite number >= 0, got -0.0001"),
    ({"min_learning_rate": "0"}, TypeError, "min_learning_rate must be a real number, got str"),
])
def test_invalid_warmup_cosine_arguments_are_refused_saying_why(options, error, message):
    with pytest.raises(error, match=message):
        WarmupCosine(**options)


def test_warmup_cosine_is_named_in_the_table_and_rebuilt_from_its_config():
    schedule = WarmupCosine(warmup_steps=5, decay_steps=50, min_learning_rate=1e-5)
    config = schedule.config()
    assert config == {"name": "warmup_cosine", "warmup_steps": 5, "decay_steps": 50, "min_learning_rate": 1e-5}
    rebuilt = type(get_schedule(config.pop("name")))(**config)
    assert vars(rebuilt) == vars(schedule)
    # the defaults: nanoGPT's character-level Shakespeare run on a CPU (100 warmup steps, decay over 2,000 to 1e-4)
    assert vars(get_schedule(" Warmup_Cosine ")) == {"warmup_steps": 100, "decay_steps": 2000,
                                                      "min_learning_rate": 1e-4}


# ---------------------------------------------------------------------------------------------------------
# Reduce on plateau (scikit-learn's learning_rate="adaptive")
# ---------------------------------------------------------------------------------------------------------


def test_plateau_count_of_a_hand_worked_loss_sequence():
    # tolerance 0.1, best starts at inf. 1.0: beats inf → count 0, best 1.0. 0.95: not below 1.0 - 0.1 →
    # count 1, but better → best 0.95. 0.8: below 0.95 - 0.1 = 0.85 → count 0, best 0.8. 0.9: count 1.
    count, best, seen = 0, float("inf"), []
    for loss in (1.0, 0.95, 0.8, 0.9):
        count, best = track_plateau(loss, best, count, tolerance=0.1)
        seen.append((count, best))
    assert seen == [(0, 1.0), (1, 0.95), (0, 0.8), (1, 0.8)]


def test_plateau_count_of_a_score_counts_epochs_that_do_not_rise_by_the_tolerance():
    # mode "max", tolerance 0.05, best -inf: 0.5 → (0, 0.5); 0.52 < 0.55 → (1, 0.52); 0.6 ≥ 0.57 → (0, 0.6)
    count, best, seen = 0, float("-inf"), []
    for score in (0.5, 0.52, 0.6):
        count, best = track_plateau(score, best, count, tolerance=0.05, mode="max")
        seen.append((count, best))
    assert seen == [(0, 0.5), (1, 0.52), (0, 0.6)]


def test_a_nan_restarts_the_plateau_count_and_never_becomes_the_best_as_in_scikit_learn():
    assert track_plateau(float("nan"), 1.0, 4, tolerance=0.1) == (0, 1.0)
    assert track_plateau(float("nan"), 0.5, 4, tolerance=0.1, mode="max") == (0, 0.5)


def test_reduce_on_plateau_divides_the_rate_after_more_than_patience_stalled_epochs():
    # scikit-learn's code, not its docstring ("two consecutive epochs"): with patience 3 the first cut
    # comes at the 4th epoch in a row without improvement. Constant loss 1.0, tolerance 1e-4: epoch 1
    # improves on inf; epochs 2-5 stall (count 1..4); at count 4 > 3 the rate goes 0.1 → 0.02.
    schedule = ReduceOnPlateau(factor=0.2, patience=3, tolerance=1e-4)
    rates = []
    for _ in range(9):
        assert schedule.end_epoch(1.0, 0.1) is False
        rates.append(schedule(0.1, step=0))
    # the count restarts after each cut: epochs 6-9 stall again (count 1..4) and the 9th cuts to 0.004
    np.testing.assert_allclose(rates, [0.1] * 4 + [0.02] * 4 + [0.004], rtol=FLOAT64_RTOL)


def test_reduce_on_plateau_asks_to_stop_once_the_rate_is_at_its_minimum():
    # base 1e-5, factor 0.2, min 1e-6, patience 0: epoch 1 improves on inf; every later epoch stalls and
    # falls due: 1e-5 → 2e-6, then 2e-6 > 1e-6 → 4e-7, then 4e-7 <= 1e-6 → stop
    schedule = ReduceOnPlateau(factor=0.2, patience=0, tolerance=1.0, min_learning_rate=1e-6)
    decisions = [schedule.end_epoch(1.0, 1e-5) for _ in range(4)]
    assert decisions == [False, False, False, True]
    assert schedule(1e-5, step=0) == pytest.approx(4e-7, rel=FLOAT64_RTOL)


def test_reduce_on_plateau_with_infinite_patience_never_reduces():
    schedule = ReduceOnPlateau(patience=math.inf, tolerance=1e9)
    assert not any(schedule.end_epoch(1.0, 0.1) for _ in range(50))
    assert schedule(0.1, step=0) == 0.1 and schedule.epochs_without_improvement == 49


def test_reduce_on_plateau_rebuilt_from_its_config_continues_exactly():
    schedule = ReduceOnPlateau(factor=0.5, patience=1, tolerance=0.0)
    for loss in (3.0, 2.0, 2.5, 2.5):  # two stalled epochs after the best 2.0 → one cut
        schedule.end_epoch(loss, 1.0)
    config = schedule.config()
    rebuilt = type(get_schedule(config.pop("name")))(**config)
    assert vars(rebuilt) == vars(schedule) and rebuilt.scale == 0.5
    assert [rebuilt.end_epoch(2.5, 1.0) for _ in range(2)] == [schedule.end_epoch(2.5, 1.0) for _ in range(2)]
    assert rebuilt(1.0, 0) == schedule(1.0, 0) == 0.25


def test_step_schedules_never_ask_to_stop():
    assert not any(schedule.end_epoch(1.0, 0.1) for schedule in (Constant(), StepDecay(), InverseScaling()))


@pytest.mark.parametrize("options, message", [
    ({"factor": 1.0}, r"factor must be in \(0, 1\)"),
    ({"patience": -1}, "patience must be a non-negative integer"),
    ({"mode": "maximum"}, "mode must be one of min, max"),
    ({"tolerance": -0.1}, "tolerance must be a finite number >= 0, got -0.1"),
    ({"min_learning_rate": -1.0}, "min_learning_rate must be a finite number >= 0, got -1.0"),
])
def test_invalid_reduce_on_plateau_arguments_raise_value_error(options, message):
    with pytest.raises(ValueError, match=message):
        ReduceOnPlateau(**options)


# ---------------------------------------------------------------------------------------------------------
# Inside an optimiser
# ---------------------------------------------------------------------------------------------------------


def descend_with_unit_gradient(optimizer, steps):
    """Parameters after each of ``steps`` plain SGD steps on the gradient 1: p_t = -Σ_{s<t} lr_s."""
    parameters, path, rates = np.zeros(1), [], []
    for _ in range(steps):
        rates.append(optimizer.current_learning_rate)
        optimizer.step(parameters, np.ones(1))
        path.append(parameters[0])
    return np.array(path), rates


def test_sgd_with_step_decay_takes_steps_of_the_decayed_rate():
    # base 0.1, halved every 2 steps: rates 0.1, 0.1, 0.05, 0.05, 0.025, 0.025
    optimizer = SGD(learning_rate=0.1, schedule=StepDecay(step_size=2, factor=0.5))
    path, rates = descend_with_unit_gradient(optimizer, 6)
    expected_rates = [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    assert rates == expected_rates
    # with gradient 1, the parameter is minus the running sum of the rates: -0.1, -0.2, -0.25, -0.3, ...
    np.testing.assert_allclose(path, -np.cumsum(expected_rates), rtol=FLOAT64_RTOL)
    assert optimizer.current_learning_rate == 0.0125


def test_sgd_with_inverse_scaling_takes_steps_of_the_closed_form_rate():
    optimizer = SGD(learning_rate=0.2, schedule=InverseScaling(decay=0.5, power=0.5))
    path, rates = descend_with_unit_gradient(optimizer, 8)
    expected_rates = 0.2 / np.sqrt(1.0 + 0.5 * np.arange(8))  # lr_t = 0.2 / (1 + 0.5 t)^0.5, t from 0
    np.testing.assert_allclose(rates, expected_rates, rtol=FLOAT64_RTOL)
    np.testing.assert_allclose(path, -np.cumsum(expected_rates), rtol=FLOAT64_RTOL)


def test_sgd_with_a_schedule_given_by_name_uses_that_schedule():
    optimizer = SGD(learning_rate=0.1, schedule=" Inverse_Scaling ")
    assert isinstance(optimizer.schedule, InverseScaling)
    assert optimizer.hyperparameters()["schedule"] == {"name": "inverse_scaling", "decay": 1.0, "power": 0.5}


def test_the_first_learning_rate_is_the_base_rate_before_any_step():
    assert SGD(learning_rate=0.1, schedule=StepDecay(step_size=1, factor=0.5)).current_learning_rate == 0.1


def test_a_saved_model_keeps_its_reduce_on_plateau_state(tmp_path):
    import numnet

    X = np.random.default_rng(0).normal(size=(20, 3))
    network = numnet.Network([3, 4, 1], seed=0)
    schedule = ReduceOnPlateau(patience=1, tolerance=10.0)  # every epoch after the first stalls
    network.fit(X, X[:, 0], epochs=5, optimizer=SGD(0.01, schedule=schedule), seed=0)
    numnet.save_model(network, tmp_path / "model.npz")
    loaded = numnet.load_model(tmp_path / "model.npz").optimizer.schedule
    assert vars(loaded) == vars(schedule) and schedule.scale < 1.0


def test_a_saved_model_keeps_its_warmup_cosine_schedule_and_step(tmp_path):
    import numnet

    X = np.random.default_rng(1).normal(size=(20, 3))
    network = numnet.Network([3, 4, 1], seed=0)
    schedule = WarmupCosine(warmup_steps=3, decay_steps=30, min_learning_rate=1e-4)
    optimizer = numnet.optimizers.AdamW(learning_rate=0.01, schedule=schedule)
    network.fit(X, X[:, 0], epochs=2, batch_size=5, optimizer=optimizer, seed=0)  # 8 steps: past the warmup
    loaded = numnet.load_model(numnet.save_model(network, tmp_path / "model.npz")).optimizer
    assert type(loaded.schedule) is WarmupCosine and vars(loaded.schedule) == vars(schedule)
    # t = 8: r = 5/27 → 1e-4 + ½(1 + cos(5π/27))·(0.01 - 1e-4)
    expected = 1e-4 + 0.5 * (1 + math.cos(5 * math.pi / 27)) * (0.01 - 1e-4)
    assert loaded.current_learning_rate == pytest.approx(expected, rel=FLOAT64_RTOL)
