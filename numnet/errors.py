"""numnet's own exception and warning classes.

Bad values raise the built-in ValueError and bad types TypeError, as everywhere in Python; the classes here
are for conditions that are numnet's own: a run that diverged, a file that is not a valid numnet or data
file, and an optional dependency that is not installed.
"""


class NumnetError(Exception):
    """Base class of every exception numnet defines."""


class DivergenceError(NumnetError, ArithmeticError):
    """Training or gradient descent produced a non-finite or exploding value and was stopped.

    The model (or the returned point) keeps its last finite state; the message says at which step the
    run diverged and what to change (usually a smaller learning rate).
    """


class CorruptFileError(NumnetError, ValueError):
    """A file is truncated, corrupted or not of the expected format."""


class DataFileError(NumnetError, ValueError):
    """A data file (a CSV table) cannot be read as data: not UTF-8, malformed rows, missing or bad values.

    The message names the file, the line and the column, and says how to fix the file.
    """


class MissingDependencyError(NumnetError, ImportError):
    """An optional dependency (matplotlib, scikit-learn, tqdm, torch, ...) is needed but not installed."""


class NotFittedError(NumnetError, RuntimeError):
    """A method that needs a trained or built model was called too early."""


class NumnetWarning(UserWarning):
    """Base class of numnet's warnings: recoverable conditions the user should know about."""


class ConvergenceWarning(NumnetWarning):
    """Training stopped before the loss stopped improving."""


class PrecisionWarning(NumnetWarning):
    """Part of a computation runs in a lower precision than the network's dtype.

    For example an exported float64 network's convolutions, which run in float32 because ONNX Runtime's
    CPU provider has no float64 Conv kernel.
    """


def require(module_name, extra, purpose):
    """Import an optional dependency, or raise MissingDependencyError saying how to install it.

    Parameters
    ----------
    module_name : str
        The module to import, e.g. ``"matplotlib.pyplot"``.
    extra : str
        The numnet extra that installs it, e.g. ``"plot"``.
    purpose : str
        What it is needed for, e.g. ``"drawing plots"``.
    """
    import importlib

    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        top = module_name.split(".")[0]
        raise MissingDependencyError(
            f"{purpose} needs the optional package '{top}', which is not installed; "
            f"install it with: pip install 'numnet[{extra}]'"
        ) from error
