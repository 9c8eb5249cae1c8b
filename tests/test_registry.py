"""Tests of name lookup (numnet._registry) through every table: activations, losses, optimisers,
initialisers and schedules."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numnet import _registry
from numnet.activations import ACTIVATIONS, Activation, ReLU, get_activation
from numnet.initializers import INITIALIZERS, Initializer, get_initializer
from numnet.losses import LOSSES, Loss, get_loss
from numnet.optimizers import OPTIMIZERS, Adam, Optimizer, get_optimizer
from numnet.schedules import SCHEDULES, Schedule, StepDecay, get_schedule

FAST = settings(max_examples=50, deadline=None, derandomize=True)

# kind (as error messages name it) -> (getter, table, base class, a typo, the name it should suggest)
KINDS = {
    "activation": (get_activation, ACTIVATIONS, Activation, "rleu", "relu"),
    "loss": (get_loss, LOSSES, Loss, "mes", "mse"),
    "optimizer": (get_optimizer, OPTIMIZERS, Optimizer, "adm", "adam"),
    "initializer": (get_initializer, INITIALIZERS, Initializer, "xavir", "xavier"),
    "schedule": (get_schedule, SCHEDULES, Schedule, "constnt", "constant"),
}
ALL_NAMES = [(kind, name) for kind, (_, table, *_rest) in KINDS.items() for name in sorted(table)]


@pytest.mark.parametrize("kind, name", ALL_NAMES)
def test_every_table_name_resolves_to_an_instance_of_its_class(kind, name):
    getter, table, base, *_ = KINDS[kind]
    resolved = getter(name)
    assert isinstance(resolved, base) and type(resolved) is table[name]


@pytest.mark.parametrize("kind, name", ALL_NAMES)
def test_every_table_key_is_already_stripped_and_lower_case(kind, name):
    assert name == name.strip().lower()


@pytest.mark.parametrize("kind, name", ALL_NAMES)
def test_every_resolved_object_names_a_canonical_entry_of_its_table(kind, name):
    # Saving writes ``obj.name``; looking that name up again must give the same class.
    getter = KINDS[kind][0]
    assert type(getter(getter(name).name)) is type(getter(name))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_unknown_name_lists_the_valid_names_and_suggests_the_close_match(kind):
    getter, table, _, typo, suggestion = KINDS[kind]
    with pytest.raises(ValueError) as raised:
        getter(typo)
    message = str(raised.value)
    assert message.startswith(f"unknown {kind} {typo!r}; choose one of: ")
    assert all(name in message for name in table)
    assert message.endswith(f"(did you mean {suggestion!r}?)")


def test_the_relu_typo_message_is_exactly_the_documented_one():
    with pytest.raises(ValueError) as raised:
        get_activation("rleu")
    assert str(raised.value) == (
        "unknown activation 'rleu'; choose one of: exp, gelu, gelu_tanh, identity, leaky_relu, linear, logistic, "
        "relu, sigmoid, softmax, tanh (did you mean 'relu'?)"
    )


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_unknown_name_with_no_close_match_offers_no_suggestion(kind):
    getter = KINDS[kind][0]
    with pytest.raises(ValueError, match="choose one of") as raised:
        getter("qqqqqqqq")
    assert "did you mean" not in str(raised.value)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("bad", [None, 3.5j, ["relu"], b"relu", object()])
def test_a_value_that_is_neither_a_name_nor_an_instance_raises_type_error(kind, bad):
    getter, _, base, *_ = KINDS[kind]
    with pytest.raises(TypeError, match=f"{kind} must be a string or a {base.__name__} instance"):
        getter(bad)


@pytest.mark.parametrize("getter", [get_activation, get_loss, get_optimizer, get_schedule])
def test_a_number_is_not_a_name_and_raises_type_error(getter):
    with pytest.raises(TypeError):
        getter(3)


def test_a_boolean_is_not_a_constant_initializer_and_raises_type_error():
    # Numbers mean constant initialisers, but True is far more likely a mistake than the constant 1.
    with pytest.raises(TypeError, match="initializer must be"):
        get_initializer(True)


@pytest.mark.parametrize("getter, instance", [
    (get_activation, ReLU()), (get_loss, get_loss("mse")), (get_optimizer, Adam(learning_rate=0.5)),
    (get_initializer, get_initializer("he")), (get_schedule, StepDecay(step_size=7)),
])
def test_an_instance_is_returned_as_is(getter, instance):
    assert getter(instance) is instance


@pytest.mark.parametrize("getter, spelling, expected", [
    (get_activation, "  ReLU ", "relu"),
    (get_activation, "TANH", "tanh"),
    (get_loss, "\tCross_Entropy\n", "softmax_cross_entropy"),
    (get_optimizer, " Adam", "adam"),
    (get_initializer, "He ", "he"),
    (get_schedule, "STEP", "step"),
])
def test_names_are_stripped_and_lower_cased(getter, spelling, expected):
    assert getter(spelling).name == expected


@pytest.mark.parametrize("getter, alias, canonical", [
    (get_activation, "identity", "linear"),
    (get_activation, "logistic", "sigmoid"),
    (get_initializer, "glorot", "xavier"),
    (get_initializer, "glorot_uniform", "xavier"),
    (get_initializer, "glorot_normal", "xavier_normal"),
    (get_initializer, "he_normal", "he"),
    (get_loss, "cross_entropy", "softmax_cross_entropy"),
    (get_loss, "bce", "binary_cross_entropy"),
    (get_loss, "mean_squared_error", "mse"),
    (get_schedule, "invscaling", "inverse_scaling"),
    (get_schedule, "step_decay", "step"),
])
def test_aliases_resolve_to_the_same_class_as_the_canonical_name(getter, alias, canonical):
    assert type(getter(alias)) is type(getter(canonical))
    assert getter(alias).name == canonical


def test_identity_and_linear_compute_the_same_values():
    z = np.array([[-1.5, 0.0, 2.0]])
    np.testing.assert_array_equal(get_activation("identity").forward(z), get_activation("linear").forward(z))


def test_glorot_and_xavier_draw_the_same_weights_from_the_same_seed():
    draws = [get_initializer(name)((4, 5), np.random.default_rng(0), np.float64) for name in ("glorot", "xavier")]
    np.testing.assert_array_equal(draws[0], draws[1])


def test_each_lookup_by_name_returns_a_fresh_instance():
    # Optimisers hold state, so two lookups must never share one object.
    assert get_optimizer("adam") is not get_optimizer("adam")


def test_lookup_without_a_base_class_accepts_only_strings():
    table = {"one": lambda: 1}
    assert _registry.lookup(table, " ONE ", "number") == 1
    with pytest.raises(TypeError, match="number must be a string, got int: 1"):
        _registry.lookup(table, 1, "number")


@FAST
@given(st.data())
def test_any_capitalisation_and_padding_of_a_valid_name_resolves_to_it(data):
    kind = data.draw(st.sampled_from(sorted(KINDS)))
    getter, table, *_ = KINDS[kind]
    name = data.draw(st.sampled_from(sorted(table)))
    upper = data.draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    padding = st.text(alphabet=" \t\n", max_size=3)
    spelled = data.draw(padding) + "".join(c.upper() if u else c for c, u in zip(name, upper)) + data.draw(padding)
    assert type(getter(spelled)) is table[name]
