"""The single lookup-by-name helper that every table (activations, losses, optimisers, ...) uses."""

import difflib
import inspect


def lookup(table, name, kind, base=None):
    """Resolve ``name`` in ``table`` to an instance.

    Parameters
    ----------
    table : dict[str, callable]
        Lower-case names mapped to classes or factories that take no required arguments.
    name : str or object
        A name (stripped and lower-cased before lookup) or an instance of ``base``, returned as is.
    kind : str
        What the table holds, for error messages ("activation", "loss", ...).
    base : type, optional
        The class instances must derive from.

    Returns
    -------
    object
        A new instance for a name, the given instance otherwise.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names and the closest match.
    TypeError
        For anything that is neither a string nor an instance of ``base``.
    """
    if base is not None and isinstance(name, base):
        return name
    if not isinstance(name, str):
        expected = f"a string or a {base.__name__} instance" if base is not None else "a string"
        raise TypeError(f"{kind} must be {expected}, got {type(name).__name__}: {name!r}")
    key = name.strip().lower()
    if key not in table:
        raise ValueError(unknown_name_message(table, name, kind))
    return table[key]()


def unknown_name_message(table, name, kind):
    """The message for an unknown name: the valid names and, when there is one, the closest match."""
    valid = sorted(table)
    message = f"unknown {kind} {name!r}; choose one of: {', '.join(valid)}"
    close = difflib.get_close_matches(str(name).strip().lower(), valid, n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message


def lookup_class(table, name, kind):
    """The class registered under ``name`` in ``table``, not an instance (for classes whose constructors
    need arguments, such as layers).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names and the closest match.
    TypeError
        When ``name`` is not a string.
    """
    if not isinstance(name, str):
        raise TypeError(f"{kind} must be a string, got {type(name).__name__}: {name!r}")
    key = name.strip().lower()
    if key not in table:
        raise ValueError(unknown_name_message(table, name, kind))
    return table[key]


def constructor_options(instance, resolve, kind):
    """The instance's constructor arguments as plain data, after checking that its name rebuilds its class.

    They are the instance attributes named like constructor parameters (e.g. LeakyReLU.negative_slope), so
    ``type(resolve(instance.name))(**options)`` rebuilds an equal object.

    Raises
    ------
    ValueError
        When ``instance.name`` does not resolve to the instance's class in its table (a user's own class
        that was never registered), so that a file could not rebuild it.
    """
    try:
        registered = type(resolve(instance.name))
    except (ValueError, TypeError):
        registered = None
    if registered is not type(instance):
        raise ValueError(
            f"cannot save the {kind} {instance!r}: its name {instance.name!r} does not rebuild its class "
            f"{type(instance).__name__} from numnet's {kind} table, so it could not be loaded; use a built-in "
            f"{kind} or add the class to that table"
        )
    accepted = inspect.signature(type(instance)).parameters
    return {key: value for key, value in vars(instance).items()
            if key in accepted and isinstance(value, (bool, int, float, str, type(None)))}


def rebuild(resolve, name, options):
    """An instance of the class registered under ``name``, built with ``options`` (never getattr)."""
    if not isinstance(name, str) or not isinstance(options, dict):
        raise TypeError(f"expected a name and a dict of options, got {name!r} and {options!r}")
    return type(resolve(name))(**options)
