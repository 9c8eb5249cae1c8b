"""Figures for the experiments: data and fits, training curves, decision regions, gradients, confusion
matrices, weights, convolution filters and feature maps.

matplotlib is an optional extra (``pip install 'numnet[plot]'``), so it is imported inside each function and
``import numnet.plots`` works without it. Figures are built as ``matplotlib.figure.Figure`` objects on the
non-interactive Agg canvas rather than through pyplot: nothing global (the current figure, the backend) is
touched and no window ever opens, so the functions are safe in scripts, tests and servers.

Every function returns its Figure and, when ``path`` is given, also writes it there atomically: the image
is written to a temporary file in the same folder and renamed over the target, so a reader never sees a
half-written file and a failed write leaves any previous file intact.
"""

import math
import os
from collections.abc import Mapping

import numpy as np

from numnet import errors, plot_labels
from numnet.atomic import write_atomically
from numnet.conv import Conv2D
from numnet.doctor import UPDATE_RATIO_HIGH, UPDATE_RATIO_LOW
from numnet.evidence import as_numpy_outputs, can_die, layer_outputs, unit_statistics
from numnet.metrics import as_class_indices, confusion_matrix
from numnet.training import History
from numnet.validation import check_integer

DEFAULT_FIGSIZE = (6.4, 4.8)
DEFAULT_DPI = 100
# A fitted curve or a decision grid reaches this fraction of the data's range beyond the outermost
# points, so the model's behaviour just outside the data is visible too.
GRID_PADDING_FRACTION = 0.1
# Padding used on an axis where all points share one value (a zero range would give an empty grid).
DEGENERATE_AXIS_PADDING = 0.5
REGRESSION_GRID_POINTS = 300
WEIGHT_TILE_GAP = 1  # pixels of background between the tiles of plot_weights
# The diagnosis figure: histograms of at most this many layers, of this many bins, and curves smoothed over
# at most this many steps (per-step ratios are noisy; 25 keeps the trend and the first hundred steps).
DIAGNOSIS_MAX_LAYERS = 6
DIAGNOSIS_HISTOGRAM_BINS = 50
DIAGNOSIS_SMOOTHING = 25
# The language of the labels of the figures save_figure writes (set_language); "en" leaves them as drawn.
_SETTINGS = {"language": "en"}


# ---------------------------------------------------------------------------------------------------------
# Figures and saving


def _new_figure(figsize, dpi):
    """An empty Figure attached to an Agg canvas, after checking ``figsize`` and ``dpi``."""
    figure_module = errors.require("matplotlib.figure", "plot", "drawing plots")
    agg = errors.require("matplotlib.backends.backend_agg", "plot", "drawing plots")
    figsize = _check_figsize(figsize)
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not dpi > 0:
        raise ValueError(f"dpi must be a positive number of dots per inch, e.g. 100; got {dpi!r}")
    figure = figure_module.Figure(figsize=figsize, dpi=dpi, layout="constrained")
    agg.FigureCanvasAgg(figure)
    return figure


def _check_figsize(figsize):
    """``figsize`` as a (width, height) tuple of positive inches, or a ValueError saying what is wrong."""
    try:
        width, height = (float(size) for size in figsize)
    except (TypeError, ValueError):
        raise ValueError(
            f"figsize must be (width, height) in inches, e.g. (6.4, 4.8); got {figsize!r}"
        ) from None
    if not (width > 0 and height > 0 and math.isfinite(width) and math.isfinite(height)):
        raise ValueError(f"figsize must hold two positive finite numbers of inches; got {figsize!r}")
    return (width, height)


def _finish(figure, path):
    """Save ``figure`` to ``path`` when one is given, and return the figure."""
    if path is not None:
        save_figure(figure, path)
    return figure


def save_figure(figure, path):
    """Write ``figure`` to ``path`` atomically, in the format named by the path's suffix.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure to write, at its own size and dpi.
    path : str or os.PathLike
        The target file. Its suffix chooses the format (``.png``, ``.pdf``, ``.svg``, ...); a path without a
        suffix gets a PNG. Missing parent folders are created.

    Raises
    ------
    TypeError
        If ``path`` is not a str or path-like object.
    ValueError
        If the suffix names a format matplotlib cannot write.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a str or os.PathLike, e.g. 'figures/loss.png'; got {type(path).__name__}"
        )
    path = os.path.abspath(os.fspath(path))
    image_format = _image_format(figure, path)
    plot_labels.relabel(figure, _SETTINGS["language"])
    # dpi="figure" so a user's savefig.dpi setting cannot change the size a caller asked for.
    write_atomically(path, lambda stream: figure.savefig(stream, format=image_format, dpi="figure"))


def set_language(language):
    """Write the titles, axis labels and legends of the figures saved from now on in ``language``.

    :func:`save_figure`, and so every function here given a ``path``, then translates each text of a figure
    that the language's table (:data:`numnet.plot_labels.LANGUAGES`) knows, in place, and draws it in a
    font that renders the language; a text the table lacks stays as it is. The documentation's Chinese
    build sets ``"zh_CN"``.

    Parameters
    ----------
    language : str
        ``"en"`` (the labels as drawn, the default) or ``"zh_CN"`` (Simplified Chinese).

    Returns
    -------
    str
        The language set before, so that a caller can restore it.

    Raises
    ------
    ValueError
        If no table is kept for ``language``.
    TypeError
        If ``language`` is not a string.

    Examples
    --------
    >>> from numnet import plots
    >>> previous = plots.set_language("zh_CN")
    >>> plots.set_language(previous)
    'zh_CN'
    """
    previous, _SETTINGS["language"] = _SETTINGS["language"], plot_labels.check_language(language)
    return previous


def _image_format(figure, path):
    """The image format named by ``path``'s suffix (PNG when there is none), checked against matplotlib."""
    suffix = os.path.splitext(path)[1].lstrip(".").lower()
    image_format = suffix or "png"
    supported = figure.canvas.get_supported_filetypes()
    if image_format not in supported:
        raise ValueError(
            f"cannot write a figure to {path!r}: unknown image format {suffix!r}; "
            f"use one of the suffixes: {', '.join('.' + name for name in sorted(supported))}"
        )
    return image_format


# ---------------------------------------------------------------------------------------------------------
# Input checks shared by several plots


def _as_history(history):
    """``history`` as a History; a dict (e.g. read back from JSON) is converted with History.from_dict."""
    if isinstance(history, History):
        return history
    if isinstance(history, Mapping):
        return History.from_dict(history)
    raise TypeError(
        f"history must be the numnet.training.History returned by fit (or its to_dict()); "
        f"got {type(history).__name__}"
    )


def _as_float_array(values, name):
    """``values`` as a float64 NumPy array, with a TypeError naming the argument when it is not numeric."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array-like; got {type(values).__name__}") from None


def _as_curve(values, name):
    """A recorded curve as a 1-D float array, with a clear error if it is not one."""
    array = _as_float_array(values, name)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of numbers; got shape {array.shape}")
    return array


def _padded_range(values, n_points):
    """``n_points`` evenly spaced values spanning ``values`` plus GRID_PADDING_FRACTION on each side."""
    low, high = float(np.min(values)), float(np.max(values))
    padding = (high - low) * GRID_PADDING_FRACTION or DEGENERATE_AXIS_PADDING
    return np.linspace(low - padding, high + padding, n_points)


def _as_predict_function(predict, name="predict"):
    """A callable from ``predict``: a function, or an object with a ``predict`` method (a Network)."""
    if callable(predict):
        return predict
    method = getattr(predict, "predict", None)
    if callable(method):
        return method
    raise TypeError(
        f"{name} must be a callable mapping an array of samples to predictions (or a model with a "
        f"predict method); got {type(predict).__name__}"
    )


def _check_class_names(class_names, n_classes):
    """``class_names`` as a list of str covering ``n_classes`` classes (default: "0", "1", ...)."""
    if class_names is None:
        return [str(index) for index in range(n_classes)]
    if isinstance(class_names, str) or not hasattr(class_names, "__len__"):
        raise TypeError(f"class_names must be a list of names, e.g. ['cat', 'dog']; got {class_names!r}")
    if len(class_names) < n_classes:
        raise ValueError(
            f"class_names has {len(class_names)} names but the labels use {n_classes} classes; "
            f"give one name per class index 0..{n_classes - 1}"
        )
    return [str(name) for name in class_names]


def _use_integer_x_ticks(axes):
    """Put x ticks on whole numbers only: epochs and iterations are counts, never 2.5."""
    axes.xaxis.get_major_locator().set_params(integer=True)


def _class_colors(n_classes):
    """``n_classes`` distinguishable colours: tab10 or tab20 while they suffice, else samples of viridis."""
    colormaps = errors.require("matplotlib", "plot", "drawing plots").colormaps
    if n_classes <= 10:
        return [colormaps["tab10"](index) for index in range(n_classes)]
    if n_classes <= 20:
        return [colormaps["tab20"](index) for index in range(n_classes)]
    return [colormaps["viridis"](value) for value in np.linspace(0.0, 1.0, n_classes)]


# ---------------------------------------------------------------------------------------------------------
# Data and fitted curve


def plot_regression(X, y, predict=None, *, path=None, title=None, figsize=DEFAULT_FIGSIZE, dpi=DEFAULT_DPI):
    """Scatter 1-D regression data and, optionally, the curve a model fitted to it.

    Parameters
    ----------
    X : array-like, shape (n_samples, 1) or (n_samples,)
        The inputs: one feature.
    y : array-like, shape (n_samples, 1) or (n_samples,)
        The targets.
    predict : callable or model, optional
        Maps an (m, 1) float64 array to predictions of shape (m, 1) or (m,); a model with a ``predict``
        method (such as a Network) is accepted too. It is evaluated on a dense grid a little wider than
        the data, and drawn as a line.
    path : str or os.PathLike, optional
        Where to save the figure (format from the suffix, PNG by default).
    title : str, optional
        Defaults to "Data and fitted curve" (or "Data" without ``predict``).
    figsize : (float, float)
        Width and height in inches.
    dpi : float
        Dots per inch; the image is figsize * dpi pixels.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If X has more than one feature, the lengths of X and y differ, or ``predict`` returns the wrong
        number of values.

    Examples
    --------
    >>> X = np.linspace(-1, 1, 10).reshape(-1, 1)
    >>> figure = plot_regression(X, 2 * X, lambda grid: 2 * grid)
    """
    inputs, targets = _check_regression_data(X, y)
    figure = _new_figure(figsize, dpi)
    axes = figure.add_subplot()
    axes.scatter(inputs, targets, color="tab:blue", zorder=3, label="data")
    if predict is not None:
        grid, predictions = _predict_on_line(_as_predict_function(predict), inputs)
        axes.plot(grid, predictions, color="tab:orange", linewidth=2, label="model")
    if title is None:
        title = "Data and fitted curve" if predict is not None else "Data"
    axes.set_title(title)
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.legend()
    axes.grid(alpha=0.3)
    return _finish(figure, path)


def _check_regression_data(X, y):
    """X and y of 1-D regression data, flattened to two equal-length 1-D arrays."""
    inputs = _as_float_array(X, "X")
    targets = _as_float_array(y, "y")
    if inputs.ndim == 2 and inputs.shape[1] == 1:
        inputs = inputs[:, 0]
    if inputs.ndim != 1:
        raise ValueError(
            "plot_regression draws 1-D data: X must have one feature, shape (n_samples, 1); "
            f"got shape {inputs.shape}"
        )
    if targets.ndim == 2 and targets.shape[1] == 1:
        targets = targets[:, 0]
    if targets.ndim != 1 or targets.size != inputs.size:
        raise ValueError(
            f"y must hold one target per sample, shape ({inputs.size}, 1) or ({inputs.size},); "
            f"got shape {targets.shape}"
        )
    if inputs.size == 0:
        raise ValueError("X and y are empty; plot_regression needs at least one sample")
    return inputs, targets


def _predict_on_line(predict, inputs):
    """A dense grid over the data's x-range and ``predict``'s values on it, both 1-D."""
    grid = _padded_range(inputs, REGRESSION_GRID_POINTS)
    predictions = np.asarray(predict(grid.reshape(-1, 1)), dtype=np.float64)
    if predictions.size != grid.size:
        raise ValueError(
            f"predict must return one value per grid point, shape ({grid.size}, 1) or ({grid.size},) for an "
            f"input of shape ({grid.size}, 1); got shape {predictions.shape}"
        )
    return grid, predictions.reshape(-1)


# ---------------------------------------------------------------------------------------------------------
# Training curves


def plot_loss(
    history,
    *,
    path=None,
    per="epoch",
    log_scale=False,
    title="Loss",
    figsize=DEFAULT_FIGSIZE,
    dpi=DEFAULT_DPI,
):
    """Training (and, when recorded, validation) loss curves of a run.

    Parameters
    ----------
    history : History or dict
        What ``fit`` returned (or its ``to_dict()``).
    path : str or os.PathLike, optional
        Where to save the figure.
    per : {"epoch", "iteration"}
        Plot the mean loss of each epoch, or the loss of every mini-batch. Validation loss is measured
        once per epoch; in the per-iteration view it is drawn at the last iteration of each epoch.
    log_scale : bool
        Use a logarithmic loss axis (useful when the loss falls by orders of magnitude).
    title : str
    figsize : (float, float)
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``per`` is not "epoch" or "iteration", or the history holds no loss for it.
    """
    history = _as_history(history)
    figure = _new_figure(figsize, dpi)
    _draw_loss(figure.add_subplot(), history, per=per, log_scale=log_scale, title=title)
    return _finish(figure, path)


def _draw_loss(axes, history, *, per, log_scale, title):
    """Draw the loss curves of ``history`` on ``axes`` (shared by plot_loss and plot_training)."""
    if per not in ("epoch", "iteration"):
        raise ValueError(f"per must be 'epoch' or 'iteration'; got {per!r}")
    recorded = history.epoch_loss if per == "epoch" else history.iteration_loss
    training = _as_curve(recorded, f"history.{per}_loss")
    if training.size == 0:
        raise ValueError(
            f"the history has no {per} loss recorded; train for at least one "
            f"{'epoch' if per == 'epoch' else 'iteration'} first"
        )
    axes.plot(np.arange(1, training.size + 1), training, label="training")
    validation = _as_curve(history.val_loss, "history.val_loss")
    if validation.size and history.epochs:
        # One epoch spans iterations / epochs steps, so epoch k ends at step k * iterations / epochs.
        steps_per_point = 1 if per == "epoch" else history.iterations / history.epochs
        positions = np.arange(1, validation.size + 1) * steps_per_point
        axes.plot(positions, validation, marker="o" if per == "iteration" else None, label="validation")
    if log_scale:
        axes.set_yscale("log")
    axes.set_title(title)
    axes.set_xlabel(per)
    _use_integer_x_ticks(axes)
    axes.set_ylabel("loss")
    axes.legend()
    axes.grid(alpha=0.3)


def plot_accuracy(history, *, path=None, title="Accuracy", figsize=DEFAULT_FIGSIZE, dpi=DEFAULT_DPI):
    """Training and validation accuracy per epoch.

    Parameters
    ----------
    history : History or dict
        What ``fit`` returned for a classification run.
    path : str or os.PathLike, optional
    title : str
    figsize : (float, float)
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If the history has no accuracy (a regression run): plot its loss with :func:`plot_loss` instead.
    """
    history = _as_history(history)
    _check_has_accuracy(history)
    figure = _new_figure(figsize, dpi)
    _draw_accuracy(figure.add_subplot(), history, title=title)
    return _finish(figure, path)


def _check_has_accuracy(history):
    """Raise a ValueError explaining why a history without accuracy (a regression run) cannot be plotted."""
    if not history.accuracy and not history.val_accuracy:
        raise ValueError(
            "the history has no accuracy: accuracy is recorded only for classification losses, so this looks "
            "like a regression run; plot its loss with plot_loss instead"
        )


def _draw_accuracy(axes, history, *, title):
    """Draw the accuracy curves of ``history`` on ``axes`` (shared by plot_accuracy and plot_training)."""
    _draw_epoch_curves(axes, history.accuracy, history.val_accuracy, quantity="accuracy", title=title)


def _draw_epoch_curves(axes, training, validation, *, quantity, title):
    """Draw a training and a validation curve per epoch (either may be empty) on ``axes``."""
    for values, label in ((training, "training"), (validation, "validation")):
        curve = _as_curve(values, f"history.{label} {quantity}")
        if curve.size:
            axes.plot(np.arange(1, curve.size + 1), curve, label=label)
    axes.set_title(title)
    axes.set_xlabel("epoch")
    _use_integer_x_ticks(axes)
    axes.set_ylabel(quantity)
    axes.legend()
    axes.grid(alpha=0.3)


def plot_training(history, *, path=None, per="epoch", log_scale=False, figsize=None, dpi=DEFAULT_DPI):
    """Loss and accuracy side by side; just the loss for a regression run (no accuracy recorded); a
    language model's perplexity (``History.perplexity``) in a third panel.

    Parameters
    ----------
    history : History or dict
        What ``fit`` returned.
    path : str or os.PathLike, optional
    per : {"epoch", "iteration"}
        Passed to the loss panel, see :func:`plot_loss`.
    log_scale : bool
        Logarithmic loss axis.
    figsize : (float, float), optional
        Defaults to 6.4 inches of width per panel by 4.8 inches.
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure
    """
    history = _as_history(history)
    has_accuracy = bool(history.accuracy or history.val_accuracy)
    has_perplexity = bool(history.perplexity or history.val_perplexity)
    n_panels = 1 + has_accuracy + has_perplexity
    if figsize is None:
        figsize = (DEFAULT_FIGSIZE[0] * n_panels, DEFAULT_FIGSIZE[1])
    figure = _new_figure(figsize, dpi)
    panels = figure.subplots(1, n_panels, squeeze=False)[0]
    _draw_loss(panels[0], history, per=per, log_scale=log_scale, title="Loss")
    if has_accuracy:
        _draw_accuracy(panels[1], history, title="Accuracy")
    if has_perplexity:
        _draw_epoch_curves(panels[-1], history.perplexity, history.val_perplexity, quantity="perplexity",
                           title="Perplexity")
    return _finish(figure, path)


# ---------------------------------------------------------------------------------------------------------
# Decision regions


def plot_decision_regions(
    predict,
    X,
    y,
    *,
    path=None,
    resolution=300,
    class_names=None,
    title="Decision regions",
    figsize=DEFAULT_FIGSIZE,
    dpi=DEFAULT_DPI,
):
    """The class a 2-D classifier predicts everywhere around the data, with the data on top.

    Parameters
    ----------
    predict : callable or model
        Maps an (m, 2) float64 array to class indices of shape (m,); a model with a ``predict`` method is
        accepted too. For a network that returns probabilities, pass
        ``lambda X: network.predict(X).argmax(axis=1)``.
    X : array-like, shape (n_samples, 2)
        The data points.
    y : array-like, shape (n_samples,) or (n_samples, n_classes)
        Class indices, or one-hot rows (their argmax is used).
    path : str or os.PathLike, optional
    resolution : int
        Grid points along each axis; ``predict`` is called once on resolution**2 points.
    class_names : sequence of str, optional
        Legend names for the classes 0, 1, ...; defaults to the indices.
    title : str
    figsize : (float, float)
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If X does not have exactly 2 features, y does not match X, ``resolution`` is below 2, or ``predict``
        returns something other than one class index per grid point.
    """
    points, labels = _check_classification_data(X, y)
    check_integer(resolution, "resolution", minimum=2, meaning="grid points per axis")
    grid_x, grid_y, regions = _predict_on_grid(_as_predict_function(predict), points, int(resolution))
    n_classes = int(max(labels.max(initial=-1), regions.max(initial=-1))) + 1
    names = _check_class_names(class_names, n_classes)
    colors = _class_colors(n_classes)
    figure = _new_figure(figsize, dpi)
    axes = figure.add_subplot()
    listed_colormap = errors.require("matplotlib.colors", "plot", "drawing plots").ListedColormap
    # Levels halfway between the integers give every class index its own band of the filled contour.
    levels = np.arange(n_classes + 1) - 0.5
    axes.contourf(grid_x, grid_y, regions, levels=levels, cmap=listed_colormap(colors), alpha=0.35)
    for index in np.unique(labels):
        chosen = labels == index
        axes.scatter(points[chosen, 0], points[chosen, 1], color=colors[index], edgecolors="black",
                     linewidths=0.4, s=20, label=names[index])
    axes.set_title(title)
    axes.set_xlabel("feature 0")
    axes.set_ylabel("feature 1")
    axes.legend(title="class", loc="best")
    return _finish(figure, path)


def _check_classification_data(X, y):
    """2-D points and their class indices, checked to match."""
    points = _as_float_array(X, "X")
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(
            f"decision regions can be drawn only for 2-D data: X must have shape (n_samples, 2); got shape "
            f"{points.shape}. Plot two chosen features, e.g. X[:, [0, 1]], with a model trained on them"
        )
    if points.shape[0] == 0:
        raise ValueError("X is empty; decision regions need at least one sample to set the plotting range")
    labels = as_class_indices(y, "y")
    if labels.size != points.shape[0]:
        raise ValueError(
            f"y has {labels.size} labels but X has {points.shape[0]} samples; give one label per row of X"
        )
    return points, labels


def _predict_on_grid(predict, points, resolution):
    """Mesh coordinates around ``points`` and the class ``predict`` gives each mesh point, all (r, r)."""
    grid_x, grid_y = np.meshgrid(
        _padded_range(points[:, 0], resolution), _padded_range(points[:, 1], resolution)
    )
    samples = np.column_stack([grid_x.ravel(), grid_y.ravel()])  # (resolution**2, 2)
    predictions = np.asarray(predict(samples))
    if predictions.ndim == 2 and predictions.shape[1] > 1:
        raise ValueError(
            f"predict must return class indices of shape ({samples.shape[0]},), not scores of shape "
            f"{predictions.shape}; wrap it, e.g. lambda X: network.predict(X).argmax(axis=1)"
        )
    if predictions.size != samples.shape[0]:
        raise ValueError(
            f"predict must return one class index per row of its (m, 2) input, shape ({samples.shape[0]},); "
            f"got shape {predictions.shape}"
        )
    regions = as_class_indices(predictions.reshape(-1), "predict's output")
    return grid_x, grid_y, regions.reshape(grid_x.shape)


# ---------------------------------------------------------------------------------------------------------
# Gradient magnitudes


def plot_gradient_magnitudes(
    history, *, path=None, smooth=1, title=None, figsize=DEFAULT_FIGSIZE, dpi=DEFAULT_DPI
):
    """Mean absolute gradient of every weight matrix per iteration: the vanishing-gradient picture.

    Parameters
    ----------
    history : History or dict
        What ``fit`` returned; uses ``history.gradient_mean_abs`` ({"dense_0.W": [...], ...}).
    path : str or os.PathLike, optional
    smooth : int
        Width of a moving-average window applied to each curve (1: no smoothing). Point i of a smoothed
        curve is drawn at the window's last iteration.
    title : str, optional
    figsize : (float, float)
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The y axis is logarithmic, so iterations whose mean gradient is exactly zero (e.g. all-dead ReLUs)
    leave gaps in the line.

    Raises
    ------
    ValueError
        If no gradients were recorded, or ``smooth`` is not a positive integer no longer than a curve.
    """
    history = _as_history(history)
    if not history.gradient_mean_abs:
        raise ValueError(
            "the history has no gradient_mean_abs recorded; train for at least one iteration first"
        )
    check_integer(smooth, "smooth", minimum=1, meaning="iterations of moving average (1: no smoothing)")
    figure = _new_figure(figsize, dpi)
    axes = figure.add_subplot()
    for name, values in history.gradient_mean_abs.items():
        curve = _moving_average(_as_curve(values, f"gradient_mean_abs[{name!r}]"), int(smooth), name)
        axes.plot(np.arange(smooth, smooth + curve.size), curve, label=name)
    axes.set_yscale("log")
    axes.set_title(title if title is not None else _gradient_title(smooth))
    axes.set_xlabel("iteration")
    _use_integer_x_ticks(axes)
    axes.set_ylabel("mean |gradient|")
    axes.legend()
    axes.grid(alpha=0.3, which="both")
    return _finish(figure, path)


def _gradient_title(smooth):
    """The default title of plot_gradient_magnitudes, naming the smoothing window when there is one."""
    title = "Mean absolute gradient per weight matrix"
    return title if smooth == 1 else f"{title} (moving average over {smooth} iterations)"


def _moving_average(curve, window, name):
    """The mean of each run of ``window`` consecutive values of ``curve`` (len(curve) - window + 1 values)."""
    if window > curve.size:
        raise ValueError(
            f"smooth={window} is longer than the {curve.size} iterations recorded for {name!r}; "
            f"choose smooth <= {curve.size}"
        )
    return np.convolve(curve, np.full(window, 1.0 / window), mode="valid")


def plot_confusion_matrix(
    y_true,
    y_pred,
    *,
    class_names=None,
    normalize=False,
    path=None,
    title=None,
    figsize=DEFAULT_FIGSIZE,
    dpi=DEFAULT_DPI,
):
    """The confusion matrix as a heat map with each cell's number written in it.

    Parameters
    ----------
    y_true, y_pred : array-like, shape (n_samples,) or (n_samples, n_classes)
        See :func:`confusion_matrix`.
    class_names : sequence of str, optional
        Names of the classes 0..K-1; their count also fixes K (so a class never seen still gets a row).
    normalize : bool
        Divide each row by its total, so cell [i, j] is the fraction of class i predicted as j (a row
        with no samples stays zero).
    path : str or os.PathLike, optional
    title : str, optional
    figsize : (float, float)
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure
    """
    counts = confusion_matrix(y_true, y_pred, None if class_names is None else len(class_names))
    names = _check_class_names(class_names, counts.shape[0])
    values = _normalize_rows(counts) if normalize else counts
    figure = _new_figure(figsize, dpi)
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else max(int(counts.max()), 1))
    figure.colorbar(image, ax=axes, label="fraction of the true class" if normalize else "samples")
    _write_cell_numbers(axes, values, normalize)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, names, rotation=45 if max(map(len, names)) > 3 else 0)
    axes.set_yticks(ticks, names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if title is None:
        title = "Confusion matrix (row-normalised)" if normalize else "Confusion matrix"
    axes.set_title(title)
    return _finish(figure, path)


def _normalize_rows(counts):
    """Each row of ``counts`` divided by its total; rows with no samples stay zero instead of 0/0 = nan."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)


def _write_cell_numbers(axes, values, normalize):
    """Write each cell's count (or fraction) in it, white on dark cells so it stays readable."""
    threshold = (1.0 if normalize else max(float(values.max()), 1.0)) / 2
    font_size = "small" if values.shape[0] > 8 else "medium"
    for (row, column), value in np.ndenumerate(values):
        text = f"{value:.2f}" if normalize else str(int(value))
        color = "white" if value > threshold else "black"
        axes.text(column, row, text, ha="center", va="center", color=color, fontsize=font_size)


# ---------------------------------------------------------------------------------------------------------
# Weights as images


def plot_weights(
    W, *, image_shape=None, path=None, max_images=100, title=None, figsize=(8.0, 8.0), dpi=DEFAULT_DPI
):
    """First-layer weights as a grid of images, one per hidden unit, on a colour scale symmetric about 0.

    Parameters
    ----------
    W : array-like, shape (n_inputs, n_units)
        The weight matrix of the first Dense layer (e.g. ``network.params["dense_0.W"]``).
    image_shape : (int, int), optional
        (rows, columns) of one input image, with rows * columns == n_inputs. Inferred as a square when
        n_inputs is a perfect square (64 -> 8x8, 784 -> 28x28).
    path : str or os.PathLike, optional
    max_images : int
        Show at most this many units (the first ones).
    title : str, optional
    figsize : (float, float)
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If W is not 2-D, or n_inputs is not a perfect square and ``image_shape`` is not given (or does not
        match n_inputs).
    """
    weights = _as_float_array(W, "W")
    if weights.ndim != 2:
        raise ValueError(f"W must be a weight matrix of shape (n_inputs, n_units); got shape {weights.shape}")
    rows, columns = _check_image_shape(image_shape, weights.shape[0])
    check_integer(max_images, "max_images", minimum=1, meaning="images")
    shown = weights[:, : int(max_images)]  # (n_inputs, n_shown)
    if title is None:
        title = f"First-layer weights: {shown.shape[1]} of {weights.shape[1]} units, {rows}x{columns} each"
    return _finish(_weight_mosaic(shown.T.reshape(-1, rows, columns), title, figsize, dpi), path)


def _weight_mosaic(images, title, figsize, dpi, grid_columns=None):
    """A Figure of (n, rows, columns) weight images side by side, on a colour scale symmetric about 0."""
    mosaic = _tile_images(images, grid_columns)
    # A symmetric scale keeps 0 at the colormap's neutral middle, so the sign of a weight reads as its hue.
    limit = float(np.max(np.abs(images))) or 1.0
    figure = _new_figure(figsize, dpi)
    axes = figure.add_subplot()
    image = axes.imshow(mosaic, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    figure.colorbar(image, ax=axes, label="weight", shrink=0.8)
    axes.set_axis_off()
    axes.set_title(title)
    return figure


def plot_filters(W, *, path=None, max_filters=64, title=None, figsize=(8.0, 8.0), dpi=DEFAULT_DPI):
    """A convolution's filters as a grid of small images, one per filter and input channel (a row per filter
    when there are several channels), on a colour scale symmetric about 0 (like :func:`plot_weights`).

    Parameters
    ----------
    W : array-like, shape (out_channels, in_channels, kh, kw)
        The kernels of a Conv2D layer (e.g. ``network.parameters()["conv2d_0.W"]``).
    path : str or os.PathLike, optional
    max_filters : int
        Show at most this many filters (the first ones), each with all its input channels.
    title : str, optional
    figsize : (float, float)
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If W is not 4-D.
    """
    kernels = _as_float_array(W, "W")
    if kernels.ndim != 4:
        raise ValueError(f"W must be convolution kernels of shape (out_channels, in_channels, kh, kw); got shape "
                         f"{kernels.shape}")
    check_integer(max_filters, "max_filters", minimum=1, meaning="filters")
    shown = kernels[: int(max_filters)]  # (n_shown, in_channels, kh, kw)
    if title is None:
        channels = f" x {kernels.shape[1]} channels" if kernels.shape[1] > 1 else ""
        title = (f"Filters: {shown.shape[0]} of {kernels.shape[0]}{channels}, "
                 f"{kernels.shape[2]}x{kernels.shape[3]} each")
    # One row per filter, one column per input channel; a single channel's filters fill a square grid.
    grid_columns = kernels.shape[1] if kernels.shape[1] > 1 else None
    return _finish(_weight_mosaic(shown.reshape(-1, *kernels.shape[2:]), title, figsize, dpi, grid_columns), path)


def plot_feature_maps(network, sample, *, path=None, max_maps=32, maps_per_row=8, title=None, dpi=DEFAULT_DPI):
    """One sample and its feature maps after each Conv2D layer of ``network``: the input's channels first,
    then each layer's maps, ``maps_per_row`` to a row (what each filter responds to, and where).

    Parameters
    ----------
    network : numnet.Network
        A network with at least one Conv2D layer.
    sample : array-like, shape (channels, height, width)
        One input image (e.g. ``X_test[0]``).
    path : str or os.PathLike, optional
    max_maps : int
        Show at most this many maps per layer (the first ones).
    maps_per_row : int
    title : str, optional
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If the network has no Conv2D layer, or ``sample`` does not fit it.
    """
    check_integer(max_maps, "max_maps", minimum=1, meaning="maps per layer")
    check_integer(maps_per_row, "maps_per_row", minimum=1)
    sample = _as_float_array(sample, "sample")
    # prepare_inputs checks the sample's shape against the network
    outputs = as_numpy_outputs(layer_outputs(network, network.prepare_inputs(sample[None])))
    panels = {"input": sample}
    panels.update((layer.name, outputs[layer.name][0]) for layer in network.layers if isinstance(layer, Conv2D))
    if len(panels) == 1:
        raise ValueError("the network has no Conv2D layer, so it has no feature maps to show")
    shown = {name: maps[: int(max_maps)] for name, maps in panels.items()}
    rows = {name: math.ceil(len(maps) / maps_per_row) for name, maps in shown.items()}
    figure = _new_figure((1.3 * maps_per_row, 1.45 * sum(rows.values()) + 0.5), dpi)
    grid = figure.subplots(sum(rows.values()), maps_per_row, squeeze=False)
    first_row = 0
    for name, maps in shown.items():
        for index, axes in enumerate(grid[first_row:first_row + rows[name]].flat):
            axes.set_axis_off()
            if index < len(maps):
                axes.imshow(maps[index], cmap="gray" if name == "input" else "viridis", interpolation="nearest")
        what = f"{len(maps)} channel(s)" if name == "input" else f"{len(maps)} of {len(panels[name])} maps"
        grid[first_row][0].set_title(f"{name}: {what}, {maps.shape[1]}x{maps.shape[2]}", loc="left",
                                     fontsize="small")
        first_row += rows[name]
    figure.suptitle(title if title is not None else "One sample and its feature maps after each convolution")
    return _finish(figure, path)


def _check_image_shape(image_shape, n_inputs):
    """(rows, columns) of one weight image: ``image_shape`` checked, or a square inferred from n_inputs."""
    if image_shape is None:
        side = math.isqrt(n_inputs)
        if side * side != n_inputs:
            raise ValueError(
                f"W has {n_inputs} inputs per unit, which is not a perfect square, so the image shape cannot "
                f"be inferred; pass image_shape=(rows, columns) with rows * columns == {n_inputs}"
            )
        return side, side
    try:
        rows, columns = (int(size) for size in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be (rows, columns), e.g. (28, 28); got {image_shape!r}") from None
    if rows < 1 or columns < 1 or rows * columns != n_inputs:
        raise ValueError(
            f"image_shape {tuple(image_shape)} holds {rows * columns} pixels but W has {n_inputs} inputs per "
            f"unit; choose rows * columns == {n_inputs}"
        )
    return rows, columns


def _tile_images(images, grid_columns=None):
    """Lay (n, rows, columns) images out in a mosaic of ``grid_columns`` images per row (default: near
    square), separated by NaN gaps (background)."""
    n_images, rows, columns = images.shape
    grid_columns = grid_columns or math.ceil(math.sqrt(n_images))
    grid_rows = math.ceil(n_images / grid_columns)
    step_y, step_x = rows + WEIGHT_TILE_GAP, columns + WEIGHT_TILE_GAP
    mosaic = np.full((grid_rows * step_y - WEIGHT_TILE_GAP, grid_columns * step_x - WEIGHT_TILE_GAP), np.nan)
    for index, image in enumerate(images):
        top, left = (index // grid_columns) * step_y, (index % grid_columns) * step_x
        mosaic[top : top + rows, left : left + columns] = image
    return mosaic


# ---------------------------------------------------------------------------------------------------------
# Several named curves


def plot_comparison_curves(
    curves,
    *,
    x=None,
    path=None,
    ylabel="loss",
    xlabel="iteration",
    log_scale=False,
    log_x=False,
    title=None,
    figsize=DEFAULT_FIGSIZE,
    dpi=DEFAULT_DPI,
):
    """Several named curves on one axes, e.g. the loss of a sigmoid and a relu network.

    Parameters
    ----------
    curves : dict of str to sequence of float
        Each curve's legend name and its values; curves may differ in length. Point i is drawn at x = i + 1,
        or at ``x[i]`` when ``x`` is given. NaN values leave gaps.
    x : sequence of float, optional
        The abscissae shared by every curve (each curve then has as many values), e.g. weight scales.
    path : str or os.PathLike, optional
    ylabel, xlabel : str
        Axis labels.
    log_scale : bool
        Logarithmic y axis.
    log_x : bool
        Logarithmic x axis.
    title : str, optional
        Defaults to "<ylabel> by <xlabel>".
    figsize : (float, float)
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError
        If ``curves`` is not a mapping.
    ValueError
        If it is empty or a curve is empty or not 1-D.

    Examples
    --------
    >>> figure = plot_comparison_curves({"sigmoid": [1.1, 0.9, 0.8], "relu": [1.1, 0.5, 0.2]})
    """
    if not isinstance(curves, Mapping):
        raise TypeError(
            "curves must be a dict of name -> list of values, e.g. {'relu': [1.0, 0.5]}; "
            f"got {type(curves).__name__}"
        )
    if not curves:
        raise ValueError("curves is empty; give at least one named curve, e.g. {'relu': [1.0, 0.5]}")
    abscissae = None if x is None else _as_curve(x, "x")
    figure = _new_figure(figsize, dpi)
    axes = figure.add_subplot()
    for name, values in curves.items():
        curve = _as_curve(values, f"curves[{name!r}]")
        if curve.size == 0:
            raise ValueError(f"curves[{name!r}] is empty; every curve needs at least one value")
        if abscissae is not None and abscissae.size != curve.size:
            raise ValueError(f"curves[{name!r}] has {curve.size} values but x has {abscissae.size}; give one x per value")
        axes.plot(np.arange(1, curve.size + 1) if abscissae is None else abscissae, curve, label=str(name),
                  marker="o" if abscissae is not None else None, markersize=3)
    if log_scale:
        axes.set_yscale("log")
    if log_x:
        axes.set_xscale("log")
    axes.set_title(title if title is not None else f"{ylabel.capitalize()} by {xlabel}")
    axes.set_xlabel(xlabel)
    if abscissae is None:
        _use_integer_x_ticks(axes)
    axes.set_ylabel(ylabel)
    axes.legend()
    axes.grid(alpha=0.3)
    return _finish(figure, path)


# ---------------------------------------------------------------------------------------------------------
# Activation histograms and optimiser paths (the training-tricks experiments E8, E9)


def plot_activation_histograms(rows, *, path=None, bins=30, value_range=None, title=None, dpi=DEFAULT_DPI):
    """A grid of histograms: one row per configuration, one column per layer (the book's figure of how the
    initial weights shape every layer's activations).

    Parameters
    ----------
    rows : dict of str to sequence of array_like
        For each configuration's name (e.g. "sigmoid, std 1"), the activations of each layer in order; every
        row must hold the same number of layers.
    path : str or os.PathLike, optional
    bins : int, default 30
    value_range : (float, float), optional
        The histograms' common x range; by default each row's own range over its layers.
    title : str, optional
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError, ValueError
        For rows that are not a non-empty mapping of equally long sequences of numeric arrays.
    """
    if not isinstance(rows, Mapping) or not rows:
        raise TypeError("rows must be a non-empty dict of name -> list of per-layer activations")
    arrays = {name: [_as_float_array(values, f"rows[{name!r}]").ravel() for values in layers]
              for name, layers in rows.items()}
    n_layers = {len(layers) for layers in arrays.values()}
    if len(n_layers) != 1 or 0 in n_layers:
        raise ValueError(f"every row needs the same, non-zero number of layers; got {sorted(n_layers)}")
    check_integer(bins, "bins", minimum=1, meaning="bars per histogram")
    columns = n_layers.pop()
    figure = _new_figure((2.0 * columns + 0.6, 1.6 * len(arrays) + 0.6), dpi)
    grid = figure.subplots(len(arrays), columns, squeeze=False, sharey="row")
    for row, (name, layers) in zip(grid, arrays.items()):
        limits = value_range or (min(float(a.min()) for a in layers), max(float(a.max()) for a in layers))
        if limits[0] == limits[1]:
            limits = (limits[0] - DEGENERATE_AXIS_PADDING, limits[1] + DEGENERATE_AXIS_PADDING)
        for index, (axes, values) in enumerate(zip(row, layers)):
            axes.hist(values, bins=bins, range=limits, color="tab:blue")
            axes.set_title(f"{name}: layer {index + 1}", fontsize="small")
            axes.tick_params(labelsize="x-small")
    if title is not None:
        figure.suptitle(title)
    return _finish(figure, path)


def plot_descent_paths(function, paths, *, path=None, extent=None, title=None, figsize=DEFAULT_FIGSIZE,
                       dpi=DEFAULT_DPI):
    """The contours of a function of two variables and the path each optimiser took on it.

    Parameters
    ----------
    function : callable
        ``function(x, y)`` on NumPy arrays of the same shape (broadcasting), e.g. ``lambda x, y: x**2 / 20 + y**2``.
    paths : dict of str to array_like of shape (n_points, 2)
        Each optimiser's successive points.
    path : str or os.PathLike, optional
    extent : (x_min, x_max, y_min, y_max), optional
        By default the paths' range, padded.
    title : str, optional
    figsize, dpi

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not callable(function):
        raise TypeError(f"function must be callable as function(x, y), got {type(function).__name__}")
    if not isinstance(paths, Mapping) or not paths:
        raise TypeError("paths must be a non-empty dict of name -> (n_points, 2) array of points")
    points = {name: _as_float_array(values, f"paths[{name!r}]") for name, values in paths.items()}
    for name, values in points.items():
        if values.ndim != 2 or values.shape[1] != 2 or values.shape[0] == 0:
            raise ValueError(f"paths[{name!r}] must have shape (n_points, 2), got {values.shape}")
    if extent is None:
        every = np.concatenate(list(points.values()))
        x_range, y_range = _padded_range(every[:, 0], 200), _padded_range(every[:, 1], 200)
    else:
        x_min, x_max, y_min, y_max = (float(value) for value in extent)
        x_range, y_range = np.linspace(x_min, x_max, 200), np.linspace(y_min, y_max, 200)
    grid_x, grid_y = np.meshgrid(x_range, y_range)
    figure = _new_figure(figsize, dpi)
    axes = figure.add_subplot()
    axes.contour(grid_x, grid_y, function(grid_x, grid_y), levels=20, cmap="Greys", linewidths=0.6)
    for name, values in points.items():
        axes.plot(values[:, 0], values[:, 1], marker="o", markersize=3, linewidth=1, label=str(name))
    axes.plot([0], [0], marker="+", color="black", markersize=12)
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_title(title or "Optimiser paths")
    axes.legend(fontsize="small")
    return _finish(figure, path)


# ---------------------------------------------------------------------------------------------------------
# The training doctor and the learning-rate finder


def plot_diagnosis(network, X, history=None, *, path=None, max_layers=DIAGNOSIS_MAX_LAYERS, figsize=None,
                   dpi=DEFAULT_DPI):
    """The figure of a diagnosis: each hidden layer's activation histogram on ``X``, the update-to-weight
    ratio of every weight over training, and the mean ``|gradient|`` of every weight over training.

    Parameters
    ----------
    network : Network
    X : array_like
        Inputs as the network sees them (scaled).
    history : History or dict, optional
        The training record; the ratio needs ``fit(diagnose=True)``, the gradients ``record_gradients``.
    path : str or os.PathLike, optional
    max_layers : int
        Histograms of at most this many layers (the first ones with an activation).
    figsize : (float, float), optional
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure
    """
    history = None if history is None else _as_history(history)
    check_integer(max_layers, "max_layers")
    inputs = network.prepare_inputs(X)
    raw_outputs = layer_outputs(network, inputs)
    saturated = unit_statistics(network, raw_outputs, inputs)[1]
    outputs = as_numpy_outputs(raw_outputs)
    shown = [layer for layer in network.layers[:-1] if layer.activation is not None][:max_layers]
    columns = max(1, len(shown))
    figure = _new_figure(figsize or (max(6.4, 2.6 * columns), 8.0), dpi)
    grid = figure.add_gridspec(3, columns)
    for column, layer in enumerate(shown):
        _draw_activation_histogram(figure.add_subplot(grid[0, column]), layer, outputs[layer.name],
                                   saturated.get(layer.name))
    if not shown:
        _draw_note(figure.add_subplot(grid[0, :]), "no hidden layer with an activation to show")
    ratios = history.update_ratio if history is not None else {}
    _draw_named_curves(figure.add_subplot(grid[1, :]), ratios, "update-to-weight ratio |dW|/|W|",
                       "Update-to-weight ratio per step", thresholds=(UPDATE_RATIO_HIGH, UPDATE_RATIO_LOW),
                       missing="not recorded: train with fit(..., diagnose=True)")
    gradients = history.gradient_mean_abs if history is not None else {}
    _draw_named_curves(figure.add_subplot(grid[2, :]), gradients, "mean |gradient|",
                       "Mean absolute gradient per step", missing="not recorded: train with record_gradients=True")
    return _finish(figure, path)


def _draw_activation_histogram(axes, layer, values, saturated):
    """One layer's output values as a histogram, titled with its dead fraction or its ``saturated`` one
    (from unit_statistics; None for a layer that does not saturate)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    axes.hist(values[np.isfinite(values)], bins=DIAGNOSIS_HISTOGRAM_BINS, color="tab:blue")
    title = f"{layer.name} ({layer.activation.name})"
    if can_die(layer.activation):
        title += f"\n{100 * float(np.mean(values <= 0)):.0f}% of outputs zero"
    elif saturated is not None:
        title += f"\n{100 * saturated:.0f}% on the flat tails"
    axes.set_title(title, fontsize="small")
    axes.set_xlabel("activation")
    axes.set_yscale("log")


def _draw_named_curves(axes, curves, ylabel, title, *, missing, thresholds=()):
    """Curves by name per step on a log axis (smoothed when long), or a note when there are none."""
    drawn = {name: _as_curve(values, name) for name, values in curves.items() if len(values)}
    if not drawn:
        _draw_note(axes, missing)
        axes.set_title(title)
        return
    for name, curve in drawn.items():
        window = max(1, min(DIAGNOSIS_SMOOTHING, curve.size // 10))
        smoothed = _moving_average(curve, window, name)
        axes.plot(np.arange(window, window + smoothed.size), smoothed, label=name)
    for threshold in thresholds:
        axes.axhline(threshold, color="gray", linestyle="--", linewidth=1)
    axes.set_yscale("log")
    axes.set_title(title)
    axes.set_xlabel("iteration")
    axes.set_ylabel(ylabel)
    _use_integer_x_ticks(axes)
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3, which="both")


def _draw_note(axes, text):
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def plot_learning_rate_finder(result, *, path=None, title="Learning-rate range test", figsize=DEFAULT_FIGSIZE,
                              dpi=DEFAULT_DPI):
    """The range test's smoothed loss against the learning rate (log axis), the suggestion marked.

    Parameters
    ----------
    result : LearningRateFinderResult
        What :func:`numnet.find_learning_rate` returned.
    path : str or os.PathLike, optional
    title : str
    figsize : (float, float)
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure
    """
    rates = _as_curve(result.learning_rates, "learning_rates")
    losses = _as_curve(result.losses, "losses")
    if rates.size == 0 or rates.size != losses.size:
        raise ValueError(f"the result needs as many losses as learning rates (got {losses.size} and {rates.size})")
    figure = _new_figure(figsize, dpi)
    axes = figure.add_subplot()
    axes.plot(rates, _as_curve(result.raw_losses, "raw_losses"), color="lightgray", label="mini-batch loss")
    axes.plot(rates, losses, color="tab:blue", label="smoothed loss")
    axes.axvline(result.suggested_learning_rate, color="tab:red", linestyle="--",
                 label=f"suggested {result.suggested_learning_rate:.3g}")
    axes.set_xscale("log")
    axes.set_ylim(top=float(np.max(losses)) * 1.1, bottom=min(0.0, float(np.min(losses))))
    axes.set_title(title)
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss")
    axes.legend()
    axes.grid(alpha=0.3, which="both")
    return _finish(figure, path)


# ---------------------------------------------------------------------------------------------------------
# Attention


def plot_attention(model, source_ids, *, layer=None, head=None, path=None, title=None, figsize=None,
                   dpi=DEFAULT_DPI):
    """Where a model looks: one example's attention weights, output tokens against input tokens.

    A seq2seq model (one with ``generate``, :class:`numnet.Seq2Seq`) writes its answer to ``source_ids``
    greedily and the map shows, for each token it wrote (rows), its weights over the source's tokens
    (columns). Any other model reads ``source_ids`` in one forward pass and the map shows a self-attention
    layer's weights (rows: the positions that look, columns: the positions looked at). The tokens are
    labelled with ``model.vocabulary`` when the model has one (a space is drawn as ␣, a line break as ↵),
    else with their ids.

    Parameters
    ----------
    model : numnet.Network
        A network holding at least one attention layer (a layer, possibly inside a composite one, with
        ``attention_weights``: :class:`numnet.Attention`, :class:`numnet.MultiHeadAttention`).
    source_ids : array of int, shape (T_in,)
        One example's input ids.
    layer : int or str, optional
        Which attention layer, by position among the model's attention layers or by name; by default the
        only one, or with several the last.
    head : int, optional
        Which head of a multi-head layer; by default every head, side by side.
    path : str or os.PathLike, optional
    title : str, optional
    figsize : (float, float), optional
        By default about a quarter inch per token.
    dpi : float

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        For a model without attention, an unknown layer or head, or ``source_ids`` that is not one example.
    """
    attention = _attention_layer(model, layer)
    source_ids = np.asarray(source_ids)
    if source_ids.ndim != 1:
        raise ValueError(f"source_ids must be one example's ids, shape (T_in,), got shape {source_ids.shape}; "
                         "pick one row, e.g. X[0]")
    if hasattr(model, "generate"):
        rows = model.generate(source_ids[None])[0]
        weights = np.asarray(model.attention_weights)[0]
    else:
        rows = source_ids
        model.forward(source_ids[None])
        weights = np.asarray(attention.attention_weights)[0]
    maps = _attention_maps(weights, head)
    labels = _token_labels(model, source_ids), _token_labels(model, rows)
    side = 0.28 * max(len(labels[0]), 4)
    figure = _new_figure(figsize or (side * len(maps) + 1.5, 0.28 * max(len(labels[1]), 4) + 1.2), dpi)
    for index, (name, values) in enumerate(maps):
        axes = figure.add_subplot(1, len(maps), index + 1)
        axes.imshow(values, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
        axes.set_xticks(np.arange(len(labels[0])), labels[0])
        axes.set_yticks(np.arange(len(labels[1])), labels[1])
        axes.set_xlabel("input")
        if index == 0:
            axes.set_ylabel("output" if hasattr(model, "generate") else "position")
        if name:
            axes.set_title(name)
    figure.suptitle(title or f"Attention ({attention.name})")
    return _finish(figure, path)


def _attention_layer(model, layer):
    """The attention layer ``layer`` (position or name) of ``model``, walking into composite layers."""
    found = []

    def visit(layers):
        for each in layers:
            if hasattr(each, "attention_weights") and not each.sublayers():  # the attention itself, not a holder
                found.append(each)
            visit(each.sublayers())

    visit(model.layers)
    if not found:
        raise ValueError("the model has no attention layer (numnet.Attention or numnet.MultiHeadAttention) whose "
                         "weights could be drawn")
    if layer is None:
        return found[-1]
    if isinstance(layer, str):
        named = [each for each in found if each.name == layer]
        if not named:
            raise ValueError(f"no attention layer is named {layer!r}; the model's are "
                             f"{', '.join(each.name for each in found)}")
        return named[0]
    index = check_integer(layer, "layer", minimum=0)
    if index >= len(found):
        raise ValueError(f"layer={index}, but the model has {len(found)} attention layer(s): "
                         f"{', '.join(each.name for each in found)}")
    return found[index]


def _attention_maps(weights, head):
    """[(title, (T_out, T_in) map)] to draw: the one map, the chosen head's, or every head's."""
    if weights.ndim == 2:
        if head not in (None, 0):
            raise ValueError(f"head={head}, but this attention layer has one head")
        return [("", weights)]
    if head is None:
        return [(f"head {index}", values) for index, values in enumerate(weights)]
    index = check_integer(head, "head", minimum=0)
    if index >= weights.shape[0]:
        raise ValueError(f"head={index}, but the layer has {weights.shape[0]} heads (0 to {weights.shape[0] - 1})")
    return [(f"head {index}", weights[index])]


def _token_labels(model, ids):
    """Each id's symbol from the model's vocabulary (a space shown as ␣, a line break as ↵), or the id itself."""
    vocabulary = getattr(model, "vocabulary", None)
    if vocabulary is None:
        return [str(int(token)) for token in ids]
    return [vocabulary.decode([int(token)]).replace(" ", "␣").replace("\n", "↵") or "∅" for token in ids]
