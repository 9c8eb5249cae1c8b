"""Checks of scalar arguments at the boundary of public calls, written once for every module.

A wrong type (a float, a string or a bool where a count is expected) raises TypeError; a value of the right
type outside its range raises ValueError; both messages name the argument, the value received and the
range expected. The checks run once, where a value enters numnet, so the same mistake gets the same error
from every module, and the code inside trusts what it was given.
"""

import numbers


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
