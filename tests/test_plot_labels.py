"""Figures in another language: numnet.plots.set_language and the label tables of numnet.plot_labels.

The expected translations are written out here by hand from the tables' documented rule (``{}`` matches any
text, repeated in order; ``{0}``, ``{1}`` reorder); the font is checked through matplotlib's own font
lookup and its missing-glyph warning.
"""

import os
import re
import string
import warnings

import pytest

from numnet import plot_labels, plots

matplotlib = pytest.importorskip("matplotlib")
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def chinese():
    """numnet.plots in Chinese for one test, English again after it."""
    previous = plots.set_language("zh_CN")
    yield
    plots.set_language(previous)


def require_chinese_font():
    if plot_labels.font_family("zh_CN") is None:
        if os.environ.get("CI"):
            pytest.fail("no font renders Chinese, but .ci/run installs one")
        pytest.skip("no font renders Chinese (Debian: fonts-wqy-microhei)")


def test_exact_and_patterned_labels_translate():
    assert plot_labels.translate("Loss", "zh_CN") == "损失"
    assert plot_labels.translate("relu: layer 2", "zh_CN") == "relu：第 2 层"
    # "First-layer weights: {} of {} units, {}x{} each" -> "第一层的权重：{1} 个单元中的 {0} 个，每个 {2}x{3}"
    assert (plot_labels.translate("First-layer weights: 64 of 100 units, 8x8 each", "zh_CN")
            == "第一层的权重：100 个单元中的 64 个，每个 8x8")
    assert plot_labels.translate("a label nobody wrote down", "zh_CN") is None
    assert plot_labels.translate("Loss", "en") is None


def test_each_translation_repeats_as_many_texts_as_its_pattern_matches():
    for key, translation in plot_labels.ZH_CN_LABELS.items():
        fields = [field for _, field, _, _ in string.Formatter().parse(translation) if field is not None]
        # "{}" fields take the texts in order, "{0}", "{1}" ... by number
        repeated = len(fields) if set(fields) <= {""} else len(set(fields))
        assert repeated == key.count("{}"), f"{key!r} -> {translation!r}"


def test_set_language_returns_the_previous_one_and_names_the_valid_ones():
    assert plots.set_language("zh-cn") == "en"
    assert plots.set_language("en") == "zh_CN"
    with pytest.raises(ValueError, match=r"unknown figure language 'fr'; choose one of: en, zh_CN"):
        plots.set_language("fr")
    with pytest.raises(TypeError, match="language must be a string"):
        plots.set_language(None)
    assert plots.set_language("en") == "en"


def test_saved_figure_has_chinese_title_axis_labels_and_legend_in_a_chinese_font(chinese, tmp_path):
    require_chinese_font()
    history = {"epoch_loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.6, 0.4]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # matplotlib's missing-glyph warning among them
        figure = plots.plot_loss(history, path=tmp_path / "loss.png")
    axes = figure.axes[0]
    assert (axes.get_title(), axes.get_xlabel(), axes.get_ylabel()) == ("损失", "epoch", "损失")
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["训练数据", "验证数据"]
    assert axes.title.get_fontfamily()[0] == plot_labels.font_family("zh_CN")
    assert (tmp_path / "loss.png").stat().st_size > 1000
    assert plot_labels.untranslated_labels(figure, "zh_CN") == []


def test_english_figures_are_left_as_drawn(tmp_path):
    figure = plots.plot_loss({"epoch_loss": [1.0, 0.5]}, path=tmp_path / "loss.png", title="My loss")
    assert figure.axes[0].get_title() == "My loss"
    assert figure.axes[0].get_ylabel() == "loss"


def test_a_label_the_table_lacks_stays_and_is_reported(chinese, tmp_path):
    require_chinese_font()
    figure = plots.plot_loss({"epoch_loss": [1.0, 0.5]}, title="A title of my own")
    assert plot_labels.untranslated_labels(figure, "zh_CN") == ["A title of my own"]
    plots.save_figure(figure, tmp_path / "loss.png")
    assert figure.axes[0].get_title() == "A title of my own"
    assert HAN.search(figure.axes[0].get_ylabel())
