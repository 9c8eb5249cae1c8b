"""Layer strings (numnet.model_spec): what each entry builds, the shapes it reaches, and malformed strings."""

import pytest

import numnet
from numnet.model_spec import DIGITS_CNN, SIMPLE_CONV_NET, layers_from_string, parse_layer_string


def described(text, input_shape=(1, 8, 8), n_outputs=10, **options):
    return [layer.describe() for layer in layers_from_string(text, input_shape, n_outputs, **options)]


def test_a_layer_string_builds_conv_pool_flatten_dense_and_the_output_layer():
    assert described("conv16x3p1, conv32x3p1, pool2, dense64") == [
        "Conv2D 1 -> 16, 3x3, stride 1, padding 1, relu", "Conv2D 16 -> 32, 3x3, stride 1, padding 1, relu",
        "MaxPool2D 2x2, stride 2, padding 0", "Flatten", "Dense 512 -> 64, relu", "Dense 64 -> 10, softmax"]


def test_strides_padding_dropout_and_activations_are_read_from_the_string():
    # 8x8, 3x3 stride 2 padding 1: (8 + 2 - 3) // 2 + 1 = 4; pool 3 stride 1: 2; 8 maps of 2x2 = 32 values
    assert described("CONV8x3s2p1,pool3s1,dropout0.25,dense10", activation="tanh", output_activation="sigmoid",
                     n_outputs=1) == [
        "Conv2D 1 -> 8, 3x3, stride 2, padding 1, tanh", "MaxPool2D 3x3, stride 1, padding 0", "Dropout rate 0.25",
        "Flatten", "Dense 32 -> 10, tanh", "Dense 10 -> 1, sigmoid"]
    assert described("conv8x3p1s2") == described("conv8x3s2p1")


def test_the_recipes_build_networks_of_the_expected_size():
    digits = numnet.Network(layers=layers_from_string(DIGITS_CNN, (1, 8, 8), 10), input_shape=(1, 8, 8), seed=0)
    # 1·16·9 + 16, 16·32·9 + 32, 512·64 + 64, 64·10 + 10
    assert digits.n_parameters == 160 + 4_640 + 32_832 + 650
    mnist = numnet.Network(layers=layers_from_string(SIMPLE_CONV_NET, (1, 28, 28), 10), input_shape=(1, 28, 28),
                           seed=0)
    assert mnist.output_shapes[:3] == [(30, 24, 24), (30, 12, 12), (4320,)] and mnist.n_parameters == 433_890


def test_parse_layer_string_returns_each_entry_and_its_numbers():
    assert parse_layer_string("conv16x5s2,pool2,dense64,dropout0.5") == [
        ("conv16x5s2", "conv", {"filters": "16", "kernel": "5", "stride": "2"}), ("pool2", "pool", {"size": "2"}),
        ("dense64", "dense", {"units": "64"}), ("dropout0.5", "dropout", {"rate": "0.5"})]


@pytest.mark.parametrize("text, message", [
    ("", r"the layer string '' is empty"),
    ("convx3", r"'convx3' in the layer string 'convx3' is not a layer; write conv<filters>x<kernel>"),
    ("conv16x3,,pool2", r"'' in the layer string 'conv16x3,,pool2' is not a layer"),
    ("conv16x3p1p2", r"'conv16x3p1p2' .* is not a layer"),
    ("dense64,pool2", r"'pool2' in the layer string 'dense64,pool2' comes after a dense layer"),
    ("conv16x9", r"'conv16x9' in the layer string 'conv16x9': Conv2D 1 -> 16, 9x9.* has a 9x9 kernel, larger than "
                 r"its input of 8x8 pixels padded by 0 \(8x8\), but receives samples of shape \(1, 8, 8\)"),
    ("conv4x3,pool2,pool2,pool2", r"'pool2' .*has a 2x2 pool window, larger than its input of 1x1 pixels"),
    ("dropout1.5", r"'dropout1.5' in the layer string 'dropout1.5': rate must be in \[0, 1\)"),
    ("conv0x3", r"'conv0x3' in the layer string 'conv0x3': out_channels must be a positive integer"),
])
def test_a_malformed_or_misfitting_layer_string_is_a_value_error_naming_the_entry(text, message):
    with pytest.raises(ValueError, match=message):
        layers_from_string(text, (1, 8, 8), 10)
