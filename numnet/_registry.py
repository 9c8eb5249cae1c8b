"""The single lookup-by-name helper that every table (activations, losses, optimisers, ...) uses."""

import difflib


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
