"""Tests of numnet.initializers: shapes, dtypes, reproducibility, and the statistics of large draws
against the closed-form standard deviations and bounds of each scheme."""

import math

import numpy as np
import pytest

from numnet.initializers import INITIALIZERS, Constant, Normal, get_initializer

# Large draws so the sample statistics are tight: N = 400 · 500 = 200,000 entries.
FAN_IN, FAN_OUT = 400, 500
N_DRAWS = FAN_IN * FAN_OUT
# Tolerances are this many standard errors of the statistic; for a (derandomised) fixed seed a 6-sigma
# bound fails with probability ~2e-9, so a failure means the scheme's scale is wrong, not bad luck.
SIGMAS = 6
# Standard error of a sample standard deviation, relative to the true one:
#   normal draws: 1/sqrt(2N); uniform draws on (-r, r): sqrt(Var(x²))/(2·E[x²]·sqrt(N)) = sqrt(1/5)/sqrt(N).
NORMAL_STD_RELATIVE_ERROR = SIGMAS / math.sqrt(2 * N_DRAWS)  # ≈ 0.0095
UNIFORM_STD_RELATIVE_ERROR = SIGMAS * math.sqrt(0.2 / N_DRAWS)  # ≈ 0.0060


def draw(name_or_initializer, shape=(FAN_IN, FAN_OUT), seed=0, dtype=np.float64):
    """Draw from an initialiser with a fresh generator seeded with ``seed``."""
    return get_initializer(name_or_initializer)(shape, np.random.default_rng(seed), dtype)


def assert_mean_near_zero(values, std):
    """|sample mean| within SIGMAS standard errors (std/sqrt(N)) of 0."""
    assert abs(values.mean()) < SIGMAS * std / math.sqrt(values.size)


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float32", "float64"])
def test_every_initializer_returns_the_requested_shape_and_dtype(name, dtype):
    values = draw(name, shape=(3, 5), dtype=dtype)
    assert values.shape == (3, 5)
    assert values.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(values))


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_every_initializer_accepts_a_bias_vector_shape(name):
    assert draw(name, shape=(7,)).shape == (7,)


@pytest.mark.parametrize("name", ["normal", "xavier", "xavier_normal", "he", "he_uniform"])
def test_the_same_seed_gives_the_same_weights_and_another_seed_different_ones(name):
    first, again, other = draw(name, (20, 30), seed=5), draw(name, (20, 30), seed=5), draw(name, (20, 30), seed=6)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("name", ["normal", "xavier", "xavier_normal", "he", "he_uniform"])
def test_float32_weights_are_the_float64_draw_rounded(name):
    # Draws are made in float64 and then cast, so both precisions of a model start from the same weights.
    single = draw(name, (10, 10), seed=3, dtype=np.float32)
    np.testing.assert_array_equal(single, draw(name, (10, 10), seed=3).astype(np.float32))


def test_he_normal_has_std_sqrt_two_over_fan_in():
    values = draw("he")
    expected_std = math.sqrt(2 / FAN_IN)  # = 0.0707...
    assert values.std() == pytest.approx(expected_std, rel=NORMAL_STD_RELATIVE_ERROR)
    assert_mean_near_zero(values, expected_std)


def test_he_uniform_stays_within_sqrt_six_over_fan_in_and_has_its_std():
    values = draw("he_uniform")
    limit = math.sqrt(6 / FAN_IN)
    assert np.max(np.abs(values)) <= limit
    # U(-r, r) has std r/sqrt(3) = sqrt(2/fan_in), the same as He normal.
    assert values.std() == pytest.approx(limit / math.sqrt(3), rel=UNIFORM_STD_RELATIVE_ERROR)


def test_xavier_uniform_stays_within_sqrt_six_over_fan_sum_and_fills_that_range():
    values = draw("xavier")
    limit = math.sqrt(6 / (FAN_IN + FAN_OUT))  # = 0.0816...
    assert np.max(np.abs(values)) <= limit
    # P(all N draws avoid the outer 0.1% of the range) = 0.999^N = e^-200: the range must be reached.
    assert np.max(np.abs(values)) > 0.999 * limit
    assert values.std() == pytest.approx(limit / math.sqrt(3), rel=UNIFORM_STD_RELATIVE_ERROR)
    assert_mean_near_zero(values, limit / math.sqrt(3))


def test_xavier_normal_has_std_sqrt_two_over_fan_sum():
    values = draw("xavier_normal")
    expected_std = math.sqrt(2 / (FAN_IN + FAN_OUT))
    assert values.std() == pytest.approx(expected_std, rel=NORMAL_STD_RELATIVE_ERROR)
    assert_mean_near_zero(values, expected_std)


def test_normal_with_std_one_tenth_has_that_std_and_mean():
    values = draw(Normal(std=0.1))
    assert values.std() == pytest.approx(0.1, rel=NORMAL_STD_RELATIVE_ERROR)
    assert_mean_near_zero(values, 0.1)


def test_normal_default_is_small_weights_of_std_one_hundredth():
    assert draw("normal").std() == pytest.approx(0.01, rel=NORMAL_STD_RELATIVE_ERROR)


def test_normal_with_a_mean_is_shifted_by_that_mean():
    values = draw(Normal(std=0.1, mean=2.0))
    assert abs(values.mean() - 2.0) < SIGMAS * 0.1 / math.sqrt(N_DRAWS)


@pytest.mark.parametrize("std", [0.0, -0.1, float("nan")])
def test_normal_rejects_a_non_positive_std(std):
    with pytest.raises(ValueError, match="std must be a finite number > 0"):
        Normal(std=std)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_number_is_a_constant_bias_init_of_exactly_that_value(dtype):
    values = draw(0.1, shape=(4,), dtype=dtype)
    np.testing.assert_array_equal(values, np.full(4, 0.1, dtype=dtype))
    assert values.dtype == dtype


def test_constant_and_zeros_initializers_fill_every_entry():
    np.testing.assert_array_equal(draw(Constant(-2.5), shape=(2, 3)), np.full((2, 3), -2.5))
    np.testing.assert_array_equal(draw("zeros", shape=(2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(draw("constant", shape=(3,)), np.zeros(3))
    np.testing.assert_array_equal(draw(0, shape=(3,)), np.zeros(3))


def test_constant_initializers_do_not_consume_randomness():
    rng = np.random.default_rng(0)
    get_initializer("zeros")((5,), rng, np.float64)
    np.testing.assert_array_equal(rng.standard_normal(3), np.random.default_rng(0).standard_normal(3))
