"""Checks of scalar arguments at the boundary of public calls, declared once and written once.

A wrong type (a float, a string or a bool where a count is expected; a bool or a numeric string where a
number is) raises TypeError; a value of the right type outside its range raises ValueError; both messages
name the argument, the value received and what was expected, in the same words everywhere. The checks run
once, where a value enters numnet, so the same mistake gets the same error from every module, and the code
inside trusts what it was given.

A public function or constructor declares its arguments' constraints beside its signature with
:func:`declare` (scikit-learn's ``_parameter_constraints`` is the model)::

    @declare(learning_rate=Real(above=0), momentum=Real(at_least=0, below=1), nesterov=Boolean())
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False): ...

and receives each declared argument checked and converted (a NumPy float as a Python float).
"""

import functools
import inspect
import math
import numbers

import numpy as np


def check_integer(value, name, *, minimum=1, meaning=None):
    """Return ``value`` as a Python int after checking that it is an integer >= ``minimum``.

    Parameters
    ----------
    value : object
        Accepted: Python and NumPy integers (bools are refused: ``True`` is no count).
    name : str
        The argument's name, for the message.
    minimum : int, default 1
    meaning : str, optional
        What the number counts ("grid points per axis"), added to the message.

    Raises
    ------
    TypeError
        When ``value`` is not an integer.
    ValueError
        When it is smaller than ``minimum``.

    Examples
    --------
    >>> check_integer(3, "epochs")
    3
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{_expected(name, minimum, meaning)}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{_expected(name, minimum, meaning)}, got {value!r}")
    return int(value)


def check_real(value, name):
    """Return ``value`` as a Python float after checking that it is a real number (not a bool or a string).

    Parameters
    ----------
    value : object
        Accepted: Python and NumPy integers and floats.
    name : str
        The argument's name, for the message.

    Raises
    ------
    TypeError
        When ``value`` is not a real number; the caller checks the range.

    Examples
    --------
    >>> check_real(0.25, "validation_split")
    0.25
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    return float(value)


def _expected(name, minimum, meaning):
    if minimum == 1:
        kind = "a positive integer"
    elif minimum == 0:
        kind = "a non-negative integer"
    else:
        kind = f"an integer of at least {minimum}"
    return f"{name} must be {kind}" + (f" ({meaning})" if meaning else "")


# ---- declared constraints ------------------------------------------------------------------------------


class Real:
    """A finite real number (not a bool, not a string) in a range: ``Real(above=0)`` is > 0,
    ``Real(at_least=0, below=1)`` is in [0, 1); given as a Python float."""

    def __init__(self, *, at_least=None, above=None, at_most=None, below=None, meaning=None):
        self.lower = (at_least, True) if above is None else (above, False)
        self.upper = (at_most, True) if below is None else (below, False)
        self.meaning = meaning

    def check(self, value, name):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
        value = float(value)
        (low, low_closed), (high, high_closed) = self.lower, self.upper
        inside = math.isfinite(value) and (
            low is None or (value >= low if low_closed else value > low)) and (
            high is None or (value <= high if high_closed else value < high))
        if not inside:
            meaning = f" ({self.meaning})" if self.meaning else ""
            raise ValueError(f"{name} must be {self.description()}{meaning}, got {value!r}")
        return value

    def description(self):
        """"in [0, 1)", "a finite number > 0", "a finite number": the range, in the words every message uses."""
        (low, low_closed), (high, high_closed) = self.lower, self.upper
        if low is not None and high is not None:
            return f"in {'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"
        if low is not None:
            return f"a finite number {'>=' if low_closed else '>'} {low:g}"
        if high is not None:
            return f"a finite number {'<=' if high_closed else '<'} {high:g}"
        return "a finite number"


class Integer:
    """An integer (not a bool, not a float) of at least ``minimum``, as :func:`check_integer` checks it."""

    def __init__(self, minimum=1, *, meaning=None):
        self.minimum = minimum
        self.meaning = meaning

    def check(self, value, name):
        return check_integer(value, name, minimum=self.minimum, meaning=self.meaning)


class Boolean:
    """True or False (NumPy's bools too), given as a Python bool; never a number or a string."""

    def check(self, value, name):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {value!r}")
        return bool(value)


class OneOf:
    """One of a few strings, exactly as written (or, with ``ignore_case``, whatever their case and spaces)."""

    def __init__(self, *choices, ignore_case=False):
        self.choices = choices
        self.ignore_case = ignore_case

    def check(self, value, name):
        key = value.strip().lower() if self.ignore_case and isinstance(value, str) else value
        if not isinstance(value, str) or key not in self.choices:
            error = ValueError if isinstance(value, str) else TypeError
            raise error(f"{name} must be one of {', '.join(self.choices)}, got {value!r}")
        return value


def check_declared(constraints, values):
    """Check each of ``values`` (a mapping of argument names to values) against its constraint in
    ``constraints``: for objects that validate their settings later, as scikit-learn's estimators do in fit."""
    for name, constraint in constraints.items():
        constraint.check(values[name], name)


class Optional:
    """None, or a value that ``constraint`` accepts."""

    def __init__(self, constraint):
        self.constraint = constraint

    def check(self, value, name):
        return None if value is None else self.constraint.check(value, name)


class Seed:
    """A seed of random draws: None (fresh entropy), a non-negative integer, or a NumPy Generator as it is."""

    def check(self, value, name):
        if value is None or isinstance(value, np.random.Generator):
            return value
        return check_integer(value, name, minimum=0, meaning="or None, or a numpy.random.Generator")


def declare(**constraints):
    """Decorate a function or ``__init__`` so that each argument named in ``constraints`` is checked (and
    converted) by its constraint before the call; arguments left at their defaults are trusted.

    The constraints stay readable as the decorated function's ``parameter_constraints``.

    Examples
    --------
    >>> @declare(rate=Real(at_least=0, below=1))
    ... def keep(rate=0.5):
    ...     return 1 - rate
    >>> keep(0.25)
    0.75
    >>> keep(True)
    Traceback (most recent call last):
    ...
    TypeError: rate must be a real number, got bool: True
    """
    def decorate(function):
        signature = inspect.signature(function)
        unknown = set(constraints) - set(signature.parameters)
        if unknown:  # a declaration that names no parameter is a typo that would check nothing
            raise TypeError(f"{function.__qualname__} has no parameter {', '.join(sorted(unknown))}")

        @functools.wraps(function)
        def checked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            for name, constraint in constraints.items():
                if name in bound.arguments:
                    bound.arguments[name] = constraint.check(bound.arguments[name], name)
            return function(*bound.args, **bound.kwargs)

        checked.parameter_constraints = constraints
        return checked

    return decorate

