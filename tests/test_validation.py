"""Tests of numnet.validation: declared constraints give the same error, in the same words, for the same
mistake in every constructor, in fit and in the estimators. Oracles: the messages written out by hand."""

import numpy as np
import pytest

import numnet
from numnet.validation import Boolean, Integer, OneOf, Optional, Real, Seed, declare

X = np.random.default_rng(0).normal(size=(12, 2))
Y = np.arange(12) % 2


def network():
    return numnet.Network([2, 3, 2], output_activation="softmax", seed=0)


def estimator_fit(**parameters):
    sklearn = pytest.importorskip("numnet.sklearn")
    return sklearn.MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, **parameters).fit(X, Y)


#: (what to call with the bad value, the argument's name): every place a real number enters numnet.
REAL_ARGUMENTS = [
    (lambda value: numnet.Network([2, 3, 2], l2=value), "l2"),
    (lambda value: numnet.Network([2, 3, 2], l1=value), "l1"),
    (lambda value: numnet.Dropout(value), "rate"),
    (lambda value: numnet.BatchNorm(3, momentum=value), "momentum"),
    (lambda value: numnet.BatchNorm(3, eps=value), "eps"),
    (lambda value: network().fit(X, Y, epochs=1, learning_rate=value), "learning_rate"),
    (lambda value: network().fit(X, Y, epochs=1, validation_split=value), "validation_split"),
    (lambda value: network().fit(X, Y, epochs=1, patience=2, tolerance=value), "tolerance"),
    (lambda value: numnet.Adam(learning_rate=value), "learning_rate"),
    (lambda value: numnet.Adam(beta2=value), "beta2"),
    (lambda value: numnet.SGD(momentum=value), "momentum"),
    (lambda value: numnet.AdamW(weight_decay=value), "weight_decay"),
    (lambda value: numnet.RMSProp(epsilon=value), "epsilon"),
    (lambda value: numnet.schedules.StepDecay(factor=value), "factor"),
    (lambda value: numnet.schedules.ReduceOnPlateau(tolerance=value), "tolerance"),
    (lambda value: numnet.initializers.Normal(std=value), "std"),
    (lambda value: estimator_fit(alpha=value), "alpha"),
    (lambda value: estimator_fit(learning_rate_init=value), "learning_rate_init"),
]


@pytest.mark.parametrize("call, name", REAL_ARGUMENTS)
@pytest.mark.parametrize("value, shown", [(True, "bool: True"), ("0.01", "str: '0.01'"), (1j, "complex: 1j")])
def test_a_bool_or_a_numeric_string_is_never_a_number(call, name, value, shown):
    with pytest.raises(TypeError, match=f"^{name} must be a real number, got {shown}$"):
        call(value)


@pytest.mark.parametrize("call, name", REAL_ARGUMENTS)
@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_a_number_out_of_range_is_a_value_error_naming_the_range_and_the_value(call, name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be (a finite number [<>]=? 0|in [\[(]0, 1[\])])"
                                          rf".*, got {value!r}$"):
        call(value)


#: (what to call with the bad value, the argument's name): switches.
BOOLEAN_ARGUMENTS = [
    (lambda value: numnet.Dense(2, 3, bias=value), "bias"),
    (lambda value: numnet.Conv2D(1, 2, 3, bias=value), "bias"),
    (lambda value: numnet.Network([2, 3, 2], batch_norm=value), "batch_norm"),
    (lambda value: numnet.SGD(momentum=0.9, nesterov=value), "nesterov"),
    (lambda value: network().fit(X, Y, epochs=1, shuffle=value), "shuffle"),
    (lambda value: network().fit(X, Y, epochs=1, restore_best=value), "restore_best"),
    (lambda value: estimator_fit(early_stopping=value), "early_stopping"),
]


@pytest.mark.parametrize("call, name", BOOLEAN_ARGUMENTS)
@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_a_switch_takes_true_or_false_and_nothing_that_merely_compares_equal(call, name, value):
    with pytest.raises(TypeError, match=f"^{name} must be True or False, got {value!r}$"):
        call(value)


def test_declared_arguments_arrive_converted_and_defaults_are_trusted():
    @declare(rate=Real(at_least=0, below=1), count=Integer(), switch=Boolean(), kind=OneOf("a", "b"),
             limit=Optional(Integer(0)), seed=Seed())
    def take(rate=0.5, count=1, switch=False, kind="a", limit=None, seed=None):
        return rate, count, switch, kind, limit, seed

    taken = take(np.float32(0.25), np.int64(3), np.bool_(True), "b", None, 7)
    assert taken == (0.25, 3, True, "b", None, 7)
    assert [type(value) for value in taken[:3]] == [float, int, bool]
    assert take() == (0.5, 1, False, "a", None, None)
    assert take.parameter_constraints["rate"].description() == "in [0, 1)"


def test_a_declaration_naming_no_parameter_is_refused_when_it_is_written():
    with pytest.raises(TypeError, match="has no parameter learnig_rate"):
        @declare(learnig_rate=Real(above=0))
        def step(learning_rate=0.1):
            return learning_rate
