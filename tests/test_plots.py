"""Tests of numnet.plots: every figure is written, read back, and checked for size and content."""

import os

import numpy as np
import pytest

import numnet
from fresh_interpreter import missing_package_message

pytest.importorskip("matplotlib")
import matplotlib.image  # noqa: E402  (after the skip, so the suite runs without matplotlib)

from numnet import plots  # noqa: E402
from numnet.training import History  # noqa: E402

DPI = 100
# A drawn figure has axes, text and lines: well over this many distinct colours (antialiasing alone adds
# dozens), while a blank or single-colour image has one or two.
MIN_DISTINCT_COLORS = 20
# Fraction of pixels that differ from white; axes frames, ticks and labels alone exceed 1%.
MIN_NON_WHITE_FRACTION = 0.01


def _read_image(path):
    """The saved image as an (height, width, channels) float array in [0, 1]."""
    return matplotlib.image.imread(os.fspath(path))


def _assert_drawn_image(path, figsize, dpi=DPI):
    """The file at ``path`` is a figsize*dpi PNG with real content, not a blank canvas."""
    image = _read_image(path)
    width, height = figsize
    assert image.shape[:2] == (round(height * dpi), round(width * dpi))
    rgb = image[..., :3]
    n_colors = len(np.unique(rgb.reshape(-1, 3), axis=0))
    assert n_colors > MIN_DISTINCT_COLORS
    non_white = np.any(rgb < 0.98, axis=-1).mean()
    assert non_white > MIN_NON_WHITE_FRACTION


def _classification_history(n_epochs=20, iterations_per_epoch=5):
    """A synthetic classification History with falling loss and rising accuracy."""
    n_iterations = n_epochs * iterations_per_epoch
    steps = np.arange(n_iterations)
    iteration_loss = list(2.0 * np.exp(-steps / 30.0) + 0.05)
    epochs = np.arange(1, n_epochs + 1)
    return History(
        iteration_loss=iteration_loss,
        epoch_loss=[float(np.mean(iteration_loss[i : i + iterations_per_epoch]))
                    for i in range(0, n_iterations, iterations_per_epoch)],
        val_loss=list(2.0 * np.exp(-epochs / 6.0) + 0.1),
        accuracy=list(1.0 - 0.7 * np.exp(-epochs / 5.0)),
        val_accuracy=list(1.0 - 0.7 * np.exp(-epochs / 5.0) - 0.03),
        gradient_mean_abs={
            "dense_0.W": list(1e-4 * np.exp(-steps / 50.0) + 1e-6),
            "dense_1.W": list(1e-2 * np.exp(-steps / 50.0) + 1e-4),
        },
        learning_rate=[0.1] * n_epochs,
    )


def _regression_history(n_epochs=10):
    """A synthetic regression History: losses only, no accuracy."""
    epochs = np.arange(1, n_epochs + 1)
    loss = list(1.0 / epochs)
    return History(iteration_loss=loss, epoch_loss=loss, learning_rate=[0.01] * n_epochs)


def _spiral_like_data(rng, n_per_class=30, n_classes=3):
    """Points in three angular sectors of the unit disc, labelled by sector."""
    angle = rng.uniform(0, 2 * np.pi, size=n_per_class * n_classes)
    radius = rng.uniform(0.2, 1.0, size=angle.size)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    y = (angle // (2 * np.pi / n_classes)).astype(int)
    return X, y


def _sector_classifier(samples):
    """The exact classifier of _spiral_like_data: the angular sector of each point."""
    angle = np.mod(np.arctan2(samples[:, 1], samples[:, 0]), 2 * np.pi)
    return (angle // (2 * np.pi / 3)).astype(int)


# ---------------------------------------------------------------------------------------------------------
# Every plot writes a real image of the requested size


def test_plot_regression_writes_data_and_fitted_curve(tmp_path):
    X = np.linspace(-1, 1, 10).reshape(-1, 1)
    y = X + 0.1 * np.sin(7 * X)
    path = tmp_path / "regression.png"
    figure = plots.plot_regression(X, y, lambda grid: 0.9 * grid, path=path)
    _assert_drawn_image(path, plots.DEFAULT_FIGSIZE)
    line = figure.axes[0].lines[0]
    # The curve spans the data range plus GRID_PADDING_FRACTION of it on each side: [-1.2, 1.2].
    assert line.get_xdata().min() == pytest.approx(-1.2)
    assert line.get_xdata().max() == pytest.approx(1.2)


def test_plot_regression_without_model_draws_only_the_data(tmp_path):
    path = tmp_path / "data.png"
    figure = plots.plot_regression(np.arange(5.0), np.arange(5.0) ** 2, path=path)
    _assert_drawn_image(path, plots.DEFAULT_FIGSIZE)
    assert len(figure.axes[0].lines) == 0


def test_plot_regression_accepts_a_model_with_a_predict_method(tmp_path):
    class Model:
        def predict(self, X):
            return 2 * X  # (m, 1)

    figure = plots.plot_regression(np.arange(4.0), 2 * np.arange(4.0), Model())
    assert figure.axes[0].lines[0].get_ydata()[0] == pytest.approx(2 * figure.axes[0].lines[0].get_xdata()[0])


@pytest.mark.parametrize("per", ["epoch", "iteration"])
def test_plot_loss_draws_training_and_validation_curves(tmp_path, per):
    path = tmp_path / f"loss_{per}.png"
    figure = plots.plot_loss(_classification_history(), path=path, per=per, log_scale=True)
    _assert_drawn_image(path, plots.DEFAULT_FIGSIZE)
    assert [line.get_label() for line in figure.axes[0].lines] == ["training", "validation"]
    assert figure.axes[0].get_yscale() == "log"


def test_plot_loss_places_validation_at_the_end_of_each_epoch_in_iteration_view():
    figure = plots.plot_loss(_classification_history(n_epochs=4, iterations_per_epoch=5), per="iteration")
    validation = figure.axes[0].lines[1]
    # 4 epochs of 5 iterations: epochs end at iterations 5, 10, 15, 20.
    np.testing.assert_allclose(validation.get_xdata(), [5, 10, 15, 20])


def test_plot_loss_accepts_a_history_dict(tmp_path):
    path = tmp_path / "loss.png"
    plots.plot_loss(_classification_history().to_dict(), path=path)
    _assert_drawn_image(path, plots.DEFAULT_FIGSIZE)


def test_plot_accuracy_draws_training_and_validation_accuracy(tmp_path):
    path = tmp_path / "accuracy.png"
    figure = plots.plot_accuracy(_classification_history(), path=path, figsize=(5, 3))
    _assert_drawn_image(path, (5, 3))
    assert len(figure.axes[0].lines) == 2


def test_plot_training_has_two_panels_for_classification(tmp_path):
    path = tmp_path / "training.png"
    figure = plots.plot_training(_classification_history(), path=path)
    _assert_drawn_image(path, (2 * plots.DEFAULT_FIGSIZE[0], plots.DEFAULT_FIGSIZE[1]))
    assert len(figure.axes) == 2


def test_plot_training_adds_a_perplexity_panel_with_e_to_the_loss_for_a_language_model(tmp_path):
    history = _classification_history()
    # perplexity is e to the mean loss per token: the closed form the panel must draw
    history.perplexity = [float(np.exp(loss)) for loss in history.epoch_loss]
    history.val_perplexity = [float(np.exp(loss)) for loss in history.val_loss]
    path = tmp_path / "training.png"
    figure = plots.plot_training(history, path=path)
    _assert_drawn_image(path, (3 * plots.DEFAULT_FIGSIZE[0], plots.DEFAULT_FIGSIZE[1]))
    panel = figure.axes[2]
    assert panel.get_title() == "Perplexity" and panel.get_ylabel() == "perplexity"
    training, validation = panel.lines
    np.testing.assert_allclose(training.get_ydata(), np.exp(history.epoch_loss), rtol=1e-12)
    np.testing.assert_allclose(validation.get_ydata(), np.exp(history.val_loss), rtol=1e-12)


def test_plot_training_omits_the_accuracy_panel_for_regression(tmp_path):
    path = tmp_path / "training.png"
    figure = plots.plot_training(_regression_history(), path=path)
    _assert_drawn_image(path, plots.DEFAULT_FIGSIZE)
    assert len(figure.axes) == 1


def test_plot_decision_regions_colours_the_plane_by_predicted_class(tmp_path):
    X, y = _spiral_like_data(np.random.default_rng(0))
    path = tmp_path / "regions.png"
    figure = plots.plot_decision_regions(
        _sector_classifier, X, y, path=path, resolution=60, class_names=["a", "b", "c"]
    )
    _assert_drawn_image(path, plots.DEFAULT_FIGSIZE)
    legend_names = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend_names == ["a", "b", "c"]


def test_plot_decision_regions_accepts_one_hot_labels(tmp_path):
    X, y = _spiral_like_data(np.random.default_rng(1))
    path = tmp_path / "regions.png"
    plots.plot_decision_regions(_sector_classifier, X, np.eye(3)[y], path=path, resolution=40)
    _assert_drawn_image(path, plots.DEFAULT_FIGSIZE)


def test_plot_gradient_magnitudes_draws_one_log_line_per_weight_matrix(tmp_path):
    history = _classification_history()
    path = tmp_path / "gradients.png"
    figure = plots.plot_gradient_magnitudes(history, path=path, smooth=5)
    _assert_drawn_image(path, plots.DEFAULT_FIGSIZE)
    axes = figure.axes[0]
    assert axes.get_yscale() == "log"
    assert [line.get_label() for line in axes.lines] == ["dense_0.W", "dense_1.W"]
    # A valid moving average of window 5 over 100 iterations has 96 points, the first at iteration 5.
    assert len(axes.lines[0].get_xdata()) == 96
    assert axes.lines[0].get_xdata()[0] == 5


def test_plot_confusion_matrix_writes_counts_in_the_cells(tmp_path):
    path = tmp_path / "confusion.png"
    figure = plots.plot_confusion_matrix([0, 1, 1, 2, 2, 2], [0, 1, 2, 2, 2, 0], path=path)
    _assert_drawn_image(path, plots.DEFAULT_FIGSIZE)
    cell_texts = [text.get_text() for text in figure.axes[0].texts]
    # Row by row: true 0 -> [1, 0, 0]; true 1 -> [0, 1, 1]; true 2 -> [1, 0, 2].
    assert cell_texts == ["1", "0", "0", "0", "1", "1", "1", "0", "2"]


def test_plot_confusion_matrix_normalises_rows(tmp_path):
    path = tmp_path / "confusion.png"
    figure = plots.plot_confusion_matrix(
        [0, 1, 1, 2, 2, 2], [0, 1, 2, 2, 2, 0], normalize=True, class_names=["x", "y", "z", "w"], path=path
    )
    _assert_drawn_image(path, plots.DEFAULT_FIGSIZE)
    cell_texts = [text.get_text() for text in figure.axes[0].texts]
    # Row totals 1, 2, 3 and an unseen class "w" (total 0, left at zero rather than 0/0):
    # true 1 -> [0, 1/2, 1/2]; true 2 -> [1/3, 0, 2/3].
    assert cell_texts[4:8] == ["0.00", "0.50", "0.50", "0.00"]
    assert cell_texts[8:11] == ["0.33", "0.00", "0.67"]
    assert cell_texts[12:] == ["0.00"] * 4


def test_plot_weights_tiles_each_unit_as_an_image(tmp_path):
    W = np.random.default_rng(2).normal(size=(64, 12))  # 12 units of 8x8 inputs
    path = tmp_path / "weights.png"
    figure = plots.plot_weights(W, path=path)
    _assert_drawn_image(path, (8.0, 8.0))
    image = figure.axes[0].images[0]
    # 12 tiles in a 4x3 grid of 8x8 images with 1-pixel gaps: 3*8 + 2 rows, 4*8 + 3 columns.
    assert image.get_array().shape == (26, 35)
    low, high = image.get_clim()
    assert low == -high == -np.abs(W).max()


def test_plot_weights_uses_image_shape_and_max_images(tmp_path):
    W = np.random.default_rng(3).normal(size=(6, 30))
    path = tmp_path / "weights.png"
    figure = plots.plot_weights(W, image_shape=(2, 3), max_images=4, path=path, figsize=(4, 4))
    _assert_drawn_image(path, (4, 4))
    # 4 tiles of 2x3 in a 2x2 grid with 1-pixel gaps: 2*2 + 1 rows, 2*3 + 1 columns.
    assert figure.axes[0].images[0].get_array().shape == (5, 7)


def test_plot_filters_tiles_one_image_per_filter_and_a_row_per_filter_with_several_channels(tmp_path):
    W = np.random.default_rng(4).normal(size=(9, 1, 5, 5))  # 9 one-channel 5x5 filters
    path = tmp_path / "filters.png"
    figure = plots.plot_filters(W, path=path)
    _assert_drawn_image(path, (8.0, 8.0))
    # 9 tiles in a 3x3 grid of 5x5 with 1-pixel gaps: 3*5 + 2 in each direction.
    assert figure.axes[0].images[0].get_array().shape == (17, 17)
    assert figure.axes[0].images[0].get_clim() == (-np.abs(W).max(), np.abs(W).max())
    several = plots.plot_filters(np.ones((4, 3, 2, 2)), max_filters=2)
    # 2 filters x 3 channels of 2x2: 2 rows and 3 columns of tiles, 2*2 + 1 by 3*2 + 2 pixels.
    assert several.axes[0].images[0].get_array().shape == (5, 8)


def test_plot_feature_maps_shows_the_input_and_every_conv_layers_maps(tmp_path):
    network = numnet.Network(layers=[numnet.Conv2D(1, 3, 3, activation="relu"), numnet.MaxPool2D(2),
                                     numnet.Conv2D(3, 10, 2), numnet.Flatten(), numnet.Dense(10, 2, "softmax")],
                             input_shape=(1, 6, 6), seed=0)
    sample = np.random.default_rng(5).random((1, 6, 6))
    path = tmp_path / "maps.png"
    figure = plots.plot_feature_maps(network, sample, path=path, maps_per_row=4)
    # Rows of 4 panels: the input (1 row), conv2d_0's 3 maps (1 row), conv2d_2's 10 maps (3 rows).
    _assert_drawn_image(path, (1.3 * 4, 1.45 * 5 + 0.5))
    drawn = [axes.images[0].get_array() for axes in figure.axes if axes.images]
    assert len(drawn) == 1 + 3 + 10
    np.testing.assert_allclose(drawn[0], sample[0])
    # The first map is relu(W[0] ⋆ sample + b[0]), written out as the sum over the 3x3 window
    W, b = (np.asarray(network.parameters()[f"conv2d_0.{key}"], dtype=np.float64) for key in ("W", "b"))
    expected = np.array([[max(0.0, float(np.sum(W[0, 0] * sample[0, y:y + 3, x:x + 3])) + b[0])
                          for x in range(4)] for y in range(4)])
    np.testing.assert_allclose(drawn[1], expected, rtol=1e-5, atol=1e-6)
    assert drawn[4].shape == (1, 1)  # conv2d_2: a 2x2 kernel on the 2x2 pooled maps


def test_plot_feature_maps_refuses_a_network_without_convolutions():
    with pytest.raises(ValueError, match="no Conv2D layer"):
        plots.plot_feature_maps(numnet.Network([4, 2], seed=0), np.zeros(4))


def test_plot_filters_refuses_a_weight_matrix():
    with pytest.raises(ValueError, match=r"\(out_channels, in_channels, kh, kw\); got shape \(4, 3\)"):
        plots.plot_filters(np.zeros((4, 3)))


def test_plot_comparison_curves_draws_every_named_curve(tmp_path):
    steps = np.arange(200)
    curves = {"sigmoid": list(1.1 * np.exp(-steps / 150)), "relu": list(1.1 * np.exp(-steps / 20))[:150]}
    path = tmp_path / "comparison.png"
    figure = plots.plot_comparison_curves(curves, path=path, log_scale=True, title="sigmoid vs relu")
    _assert_drawn_image(path, plots.DEFAULT_FIGSIZE)
    assert [line.get_label() for line in figure.axes[0].lines] == ["sigmoid", "relu"]


def test_dpi_and_figsize_set_the_pixel_size(tmp_path):
    path = tmp_path / "small.png"
    plots.plot_comparison_curves({"a": [3, 2, 1]}, path=path, figsize=(3, 2), dpi=50)
    _assert_drawn_image(path, (3, 2), dpi=50)


# ---------------------------------------------------------------------------------------------------------
# Saving


def test_save_creates_parent_folders_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "new" / "deeper" / "loss.png"
    plots.plot_loss(_classification_history(), path=path)
    plots.plot_loss(_regression_history(), path=path)  # overwrite an existing file
    assert sorted(os.listdir(path.parent)) == ["loss.png"]
    _assert_drawn_image(path, plots.DEFAULT_FIGSIZE)


def test_save_uses_the_format_named_by_the_suffix(tmp_path):
    path = tmp_path / "loss.svg"
    plots.plot_loss(_classification_history(), path=str(path))
    assert path.read_text()[:200].lstrip().startswith("<?xml")


def test_unknown_suffix_is_refused_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"unknown image format 'nope'.*\.png"):
        plots.plot_loss(_classification_history(), path=tmp_path / "loss.nope")
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_the_previous_file_and_removes_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "loss.png"
    plots.plot_loss(_classification_history(), path=path)
    before = path.read_bytes()
    figure = plots.plot_loss(_regression_history())

    def failing_savefig(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(figure, "savefig", failing_savefig)
    with pytest.raises(OSError, match="disk full"):
        plots.save_figure(figure, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["loss.png"]


def test_importing_plots_does_not_import_matplotlib_and_missing_matplotlib_is_explained():
    message = missing_package_message("matplotlib", "import numnet.plots as plots\n"
                                                    "plots.plot_comparison_curves({'a': [1.0]})")
    assert "pip install 'numnet[plot]'" in message


# ---------------------------------------------------------------------------------------------------------
# Bad input


def test_decision_regions_refuses_data_without_exactly_two_features():
    X = np.zeros((5, 3))
    with pytest.raises(ValueError, match=r"2-D data.*\(n_samples, 2\).*\(5, 3\)"):
        plots.plot_decision_regions(lambda samples: np.zeros(len(samples)), X, np.zeros(5))


def test_decision_regions_refuses_probability_output_and_suggests_argmax():
    X, y = _spiral_like_data(np.random.default_rng(5))
    with pytest.raises(ValueError, match="argmax"):
        plots.plot_decision_regions(lambda samples: np.ones((len(samples), 3)) / 3, X, y, resolution=10)


def test_decision_regions_refuses_labels_of_another_length():
    with pytest.raises(ValueError, match="y has 3 labels but X has 4 samples"):
        plots.plot_decision_regions(lambda samples: np.zeros(len(samples)), np.zeros((4, 2)), [0, 1, 0])


def test_plot_accuracy_refuses_a_regression_history():
    with pytest.raises(ValueError, match="no accuracy.*regression.*plot_loss"):
        plots.plot_accuracy(_regression_history())


def test_plot_weights_refuses_a_non_square_input_without_image_shape():
    with pytest.raises(ValueError, match="10 inputs.*not a perfect square.*image_shape"):
        plots.plot_weights(np.zeros((10, 4)))


def test_plot_weights_refuses_an_image_shape_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"image_shape \(3, 3\) holds 9 pixels but W has 10"):
        plots.plot_weights(np.zeros((10, 4)), image_shape=(3, 3))


def test_plot_regression_refuses_several_features():
    with pytest.raises(ValueError, match=r"one feature.*\(10, 2\)"):
        plots.plot_regression(np.zeros((10, 2)), np.zeros(10))


def test_plot_loss_refuses_an_unknown_per():
    with pytest.raises(ValueError, match="per must be 'epoch' or 'iteration'; got 'batch'"):
        plots.plot_loss(_classification_history(), per="batch")


def test_plot_loss_refuses_an_empty_history():
    with pytest.raises(ValueError, match="no epoch loss"):
        plots.plot_loss(History())


def test_plot_gradient_magnitudes_refuses_a_window_longer_than_the_run():
    with pytest.raises(ValueError, match="smooth=500 is longer than the 100 iterations"):
        plots.plot_gradient_magnitudes(_classification_history(), smooth=500)


def test_history_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="History"):
        plots.plot_loss([1.0, 0.5])


def test_comparison_curves_refuses_an_empty_mapping():
    with pytest.raises(ValueError, match="curves is empty"):
        plots.plot_comparison_curves({})


def test_bad_figsize_is_explained():
    with pytest.raises(ValueError, match="figsize"):
        plots.plot_comparison_curves({"a": [1.0]}, figsize=(0, 3))
