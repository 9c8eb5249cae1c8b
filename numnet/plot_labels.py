"""The labels of numnet's figures in other languages, and the fonts that render each language.

``numnet.plots.set_language("zh_CN")`` makes :func:`numnet.plots.save_figure` (and so every plotting function
given a ``path``) translate a figure's titles, axis labels and legend entries from the tables below before it
writes the figure; the documentation's Chinese build turns it on. A text a table lacks stays as it is.

A table maps an English label to its translation. ``{}`` in a key matches any text, which ``{}`` in the
translation repeats in order (``{0}``, ``{1}``, ... reorder): ``"{}: layer {}"`` translates
``"relu: layer 2"`` to ``"relu：第 2 层"``. The terms follow the glossary of the documentation
(docs/glossary.md), which follows the Chinese editions of *Deep Learning from Scratch*.
"""

import dataclasses
import functools
import re

from numnet import _registry


@dataclasses.dataclass(frozen=True)
class Language:
    """A language of the figures' labels.

    Parameters
    ----------
    fonts : tuple of str
        Font families that render the language, the first one installed wins (matplotlib falls back to the
        figure's own font for a glyph the family lacks).
    labels : dict of str to str
        English label (or pattern with ``{}``) to its translation.
    """

    fonts: tuple
    labels: dict


# Simplified Chinese: fonts from Debian (fonts-noto-cjk, fonts-wqy-microhei), macOS and Windows.
ZH_CN_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
               "PingFang SC", "Microsoft YaHei", "SimHei")

# Labels drawn by numnet.plots itself, by `numnet train`, and on the translated pages of the documentation.
ZH_CN_LABELS = {
    # numnet.plots' own titles and labels
    "Data": "数据",
    "Data and fitted curve": "数据与拟合曲线",
    "data": "数据",
    "model": "模型",
    "x": "x",
    "y": "y",
    "Loss": "损失",
    "loss": "损失",
    "Accuracy": "识别精度",
    "accuracy": "识别精度",
    "Perplexity": "困惑度",
    "perplexity": "困惑度",
    "training": "训练数据",
    "validation": "验证数据",
    "epoch": "epoch",
    "iteration": "迭代次数",
    "step": "步数",
    "Decision regions": "决策区域",
    "feature 0": "特征 0",
    "feature 1": "特征 1",
    "mean |gradient|": "梯度绝对值的均值",
    "Mean absolute gradient per weight matrix": "各权重矩阵的梯度绝对值均值",
    "Mean absolute gradient per weight matrix (moving average over {} iterations)":
        "各权重矩阵的梯度绝对值均值（{} 次迭代的移动平均）",
    "Confusion matrix": "混淆矩阵",
    "Confusion matrix (row-normalised)": "混淆矩阵（按行归一化）",
    "predicted class": "预测类别",
    "true class": "真实类别",
    "samples": "样本数",
    "fraction of the true class": "占真实类别的比例",
    "weight": "权重",
    "First-layer weights: {} of {} units, {}x{} each": "第一层的权重：{1} 个单元中的 {0} 个，每个 {2}x{3}",
    "One sample and its feature maps after each convolution": "一个样本及其每次卷积后的特征图",
    "Loss by iteration": "损失随迭代次数的变化",
    "{}: layer {}": "{}：第 {} 层",
    "Optimiser paths": "最优化方法的更新路径",
    "activation": "激活值",
    "Update-to-weight ratio per step": "每步的更新量与权重之比",
    "Mean absolute gradient per step": "每步的梯度绝对值均值",
    "Learning-rate range test": "学习率范围测试",
    "learning rate": "学习率",
    "mini-batch loss": "mini-batch 的损失",
    "smoothed loss": "平滑后的损失",
    "suggested {}": "建议值 {}",
    # numnet train (numnet/cli/train.py)
    "Mean |dC/dW| per iteration (average of {})": "每次迭代的 |dC/dW| 均值（{} 次的平均）",
    "Confusion matrix (test set)": "混淆矩阵（测试数据）",
    "Decision regions (training data)": "决策区域（训练数据）",
    # the tutorials' own figures, E1-E7
    "1-3-1 {} net after 300 steps": "训练 300 步后的 1-3-1 {} 网络",
    "mean squared error": "均方误差",
    "E1: loss per gradient-descent step": "E1：梯度下降法每一步的损失",
    "XOR: loss per step": "XOR：每一步的损失",
    "XOR decision regions": "XOR 的决策区域",
    "Spiral, {} hidden layers, 2,000 iterations": "螺旋数据：隐藏层用 {}，迭代 2,000 次",
    "Spiral: loss per iteration": "螺旋数据：每次迭代的损失",
    "Mean |dC/dW| of each hidden weight matrix": "各隐藏层权重矩阵的 |dC/dW| 均值",
    "write-up recipe (half squared error)": "原文的方案（平方误差的一半）",
    "sound recipe (cross-entropy)": "可靠的方案（交叉熵）",
    "Digits: training loss": "手写数字：训练时的损失",
    "Sound recipe: confusion matrix (test set)": "可靠的方案：混淆矩阵（测试数据）",
    "First-layer weights as 8x8 images": "第一层的权重（画成 8x8 图像）",
    "Loss per iteration": "每次迭代的损失",
    "Accuracy per epoch": "每个 epoch 的识别精度",
    "lr 0.1": "学习率 0.1",
    "lr 10 (diverges)": "学习率 10（发散）",
    "lr 1e-10": "学习率 1e-10",
    "f(x) = x0² + x1²": "f(x) = x0² + x1²",
    "Gradient descent from (-3, 4)": "从 (-3, 4) 出发的梯度下降法",
    "The path of lr 0.1 on x0² + x1²": "学习率 0.1 在 x0² + x1² 上的路径",
    "Iris: confusion matrix (test set)": "鸢尾花：混淆矩阵（测试数据）",
    # the tutorials' own figures (docs/tutorials), E8-E13
    "{}: activations of 5 layers, by initial weights": "{}：5 层的激活值，按权重初始值比较",
    "Digits: 4 relu layers, SGD lr 0.01, by initial weights": "手写数字：4 个 relu 层，SGD 学习率 0.01，按权重初始值比较",
    "f(x, y) = x²/20 + y² from (-7, 2), 30 steps": "f(x, y) = x²/20 + y²，从 (-7, 2) 出发，30 步",
    "Digits: 4 relu layers, batch 128, by optimiser": "手写数字：4 个 relu 层，批大小 128，按最优化方法比较",
    "Digits: 5 relu layers, 20 epochs, with and without BatchNorm": "手写数字：5 个 relu 层，20 个 epoch，使用与不使用 BatchNorm",
    "initial weight std": "权重初始值的标准差",
    "training accuracy": "训练数据上的识别精度",
    "without BatchNorm": "不使用 BatchNorm",
    "with BatchNorm": "使用 BatchNorm",
    "Digits: 300 samples, 6 relu layers of 100": "手写数字：300 个样本，6 个各有 100 个神经元的 relu 层",
    "no regularisation: train": "无正则化：训练数据",
    "no regularisation: test": "无正则化：测试数据",
    "L2 0.1: train": "L2 0.1：训练数据",
    "L2 0.1: test": "L2 0.1：测试数据",
    "dropout 0.2: train": "Dropout 0.2：训练数据",
    "dropout 0.2: test": "Dropout 0.2：测试数据",
    "Digits: test accuracy per epoch": "手写数字：每个 epoch 的测试识别精度",
    "test accuracy": "测试数据上的识别精度",
    "digits CNN": "手写数字 CNN",
    "The digits CNN's 16 first-layer filters": '手写数字 CNN 第一层的 16 个滤波器',
    "input: {} channel(s), {}x{}": "输入：{} 个通道，{}x{}",
    "{}: {} of {} maps, {}x{}": "{0}：{2} 个特征图中的 {1} 个，{3}x{4}",
    "Names: perplexity per epoch, hidden size 32": "名字：每个 epoch 的困惑度，隐藏层大小 32",
    "{}: training": "{}：训练数据",
    "{}: validation": "{}：验证数据",
    "The book's dh · Whᵀ, 20 times": '书中的 dh · Whᵀ，重复 20 次',
    "time steps back": "往回的时间步数",
    "‖dh‖ / N": "‖dh‖ / N",
    "numnet's RNN layer (H = 64), gradient through time": 'numnet 的 RNN 层（H = 64）沿时间传播的梯度',
    "time steps back from the last": "从最后一步往回的时间步数",
    "‖dC/dxₜ‖ / ‖dC/dx_T‖": "‖dC/dxₜ‖ / ‖dC/dx_T‖",
    "radius {}, zero inputs": "谱半径 {}，全零输入",
    "radius {}, N(0, 1) inputs": "谱半径 {}，N(0, 1) 输入",
    "Plain RNN, SGD step 3, with and without clipping": "普通 RNN，SGD 学习率 3，有无梯度裁剪的对比",
    "training loss": "训练损失",
    "without clipping": "不裁剪",
    # E14-E16 and plots.plot_attention
    "Seq2seq on addition (quick setting)": "Seq2seq 学习加法（快速设置）",
    "exact-match test accuracy": "测试数据上的完全匹配正确率",
    "plain": "普通",
    "reversed": "反转输入",
    "peeky, reversed": "Peeky 加反转输入",
    "Attention after the quick setting": "快速设置训练后的注意力",
    "The last block's heads after the quick setting": '快速设置训练后最后一个块的各个头',
    "input": "输入",
    "output": "输出",
    "position": "位置",
    "head {}": "头 {}",
    # the how-to guides" figures (numnet train"s convolution and diagnosis plots)
    "class": "类别",
    "First-layer filters ({})": "第一层的滤波器（{}）",
    "Feature maps of the first test image after each convolution": "第一张测试图像在每次卷积之后的特征图",
    "{} ({})\n{}% on the flat tails": "{}（{}）\n{}% 处于平坦的尾部",
    "{} ({})\n{}% of outputs zero": "{}（{}）\n{}% 的输出为零",
    "update-to-weight ratio |dW|/|W|": "更新量与权重之比 |dW|/|W|",
}

#: The languages of the figures' labels, by the name :func:`numnet.plots.set_language` takes.
LANGUAGES = {
    "en": Language(fonts=(), labels={}),
    "zh_CN": Language(fonts=ZH_CN_FONTS, labels=ZH_CN_LABELS),
}


def check_language(language):
    """``language`` as a key of LANGUAGES ("zh-cn" and "zh_CN" both give "zh_CN"), or a ValueError naming them."""
    if not isinstance(language, str):
        raise TypeError(f"language must be a string such as 'en' or 'zh_CN', got {type(language).__name__}")
    names = {name.lower().replace("-", "_"): name for name in LANGUAGES}
    key = language.strip().lower().replace("-", "_")
    if key not in names:
        raise ValueError(_registry.unknown_name_message(LANGUAGES, language, "figure language"))
    return names[key]


@functools.lru_cache(maxsize=None)
def _patterns(language):
    """[(compiled pattern, translation)] for the keys of ``language``'s table that hold ``{}``."""
    return [(re.compile("(.+?)".join(map(re.escape, key.split("{}")))), translation)
            for key, translation in LANGUAGES[language].labels.items() if "{}" in key]


def translate(text, language):
    """``text`` translated into ``language``, or None when its table has no entry for it."""
    labels = LANGUAGES[language].labels
    if text in labels:
        return labels[text]
    for pattern, translation in _patterns(language):
        match = pattern.fullmatch(text)
        if match:
            return translation.format(*match.groups())
    return None


@functools.lru_cache(maxsize=None)
def font_family(language):
    """The first of ``language``'s fonts that matplotlib finds installed, or None."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((name for name in LANGUAGES[language].fonts if name in installed), None)


def relabel(figure, language):
    """Translate, in place, every text of ``figure`` that ``language``'s table knows, in a font that renders it.

    The font goes first in each translated text's family list; matplotlib draws a glyph that font lacks in
    the text's own font (fallback needs matplotlib 3.6). Without an installed font the text is translated
    all the same, and matplotlib's missing-glyph warning says so when the figure is drawn.
    """
    from matplotlib.text import Text

    if not LANGUAGES[language].labels:
        return
    family = font_family(language)
    for text in figure.findobj(Text):
        translation = translate(text.get_text(), language)
        if translation is None or translation == text.get_text():
            continue
        text.set_text(translation)
        if family is not None:
            text.set_fontfamily([family, *text.get_fontfamily()])


@functools.lru_cache(maxsize=None)
def _translations(language):
    """A pattern matching any translation of ``language``'s table (its ``{}`` fields matching any text)."""
    fields = re.compile(r"\{\d*\}")
    alternatives = ["(.+?)".join(map(re.escape, fields.split(translation)))
                    for translation in LANGUAGES[language].labels.values()]
    return re.compile("|".join(alternatives) or "(?!)")


def untranslated_labels(figure, language):
    """The titles and axis labels of ``figure`` that ``language``'s table has no entry for, in order (a text
    already translated, by a save before, is not one of them)."""
    texts = [figure.get_suptitle()] if hasattr(figure, "get_suptitle") else []
    for axes in figure.axes:
        texts += [axes.get_title(loc) for loc in ("left", "center", "right")]
        texts += [axes.get_xlabel(), axes.get_ylabel()]
    return [text for text in texts if text.strip() and translate(text, language) is None
            and not _translations(language).fullmatch(text)]
