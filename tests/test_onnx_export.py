"""ONNX export: onnx.checker accepts every exported model, and ONNX Runtime's outputs equal numnet's
predict_proba / predict on random architectures of every layer type, on the digits model `numnet train`
writes (raw features in, class names out), and on a scikit-learn estimator's network.

Oracle: ONNX Runtime, which shares no code with numnet.
"""

import pathlib
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

import numnet  # noqa: E402  (after the skips, so the suite runs without onnx)
from numnet import Activation, BatchNorm, Dense, Dropout, cli, datasets  # noqa: E402
from numnet.errors import MissingDependencyError, PrecisionWarning  # noqa: E402
from numnet.onnx_export import LAYER_EXPORTERS, OPSET, register_onnx_exporter, to_onnx  # noqa: E402

#: The issue's agreement: float32 networks to 1e-5, float64 ones to 1e-10 (rounding of a few operations in
#: either library, far under both; the leaky relu's Max(x, αx) keeps float64 exact).
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
#: A float64 convolutional network's exported convolutions run in float32 and the rest in float64: its
#: rounding is at most a float32 network's, so the float32 agreement holds for it (the largest difference
#: measured on the test's CNN over 20 batches was 2.6e-7).
FLOAT32_CONVOLUTION_TOLERANCE = TOLERANCE["float32"]
HIDDEN_ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "linear")


def run(model, X):
    """ONNX Runtime's outputs for ``X``, by output name."""
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": X})))


@st.composite
def networks(draw):
    """A random network of Dense (any activation), Activation, Dropout and BatchNorm layers, with a softmax,
    sigmoid or linear output, in float32 or float64, its BatchNorm statistics drawn at random."""
    dtype = draw(st.sampled_from(("float32", "float64")))
    width = draw(st.integers(1, 6))
    layers = []
    for _ in range(draw(st.integers(0, 3))):
        n_out = draw(st.integers(1, 6))
        kind = draw(st.sampled_from(("dense", "dense+batch_norm", "dense+activation")))
        activation = draw(st.sampled_from(HIDDEN_ACTIVATIONS))
        if kind == "dense":
            layers.append(Dense(width, n_out, activation))
        elif kind == "dense+batch_norm":
            layers += [Dense(width, n_out, bias=draw(st.booleans())), BatchNorm(n_out), Activation(activation)]
        else:
            layers += [Dense(width, n_out, "linear"), Activation(activation)]
        if draw(st.booleans()):
            layers.append(Dropout(draw(st.sampled_from((0.0, 0.3)))))
        width = n_out
    output = draw(st.sampled_from(("softmax", "sigmoid", "linear")))
    n_outputs = draw(st.integers(2, 5)) if output == "softmax" else draw(st.integers(1, 3))
    layers.append(Dense(width, n_outputs, output))
    network = numnet.Network(layers=layers, dtype=dtype, seed=draw(st.integers(0, 2**16)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    network.set_state({name: rng.uniform(0.5, 2.0, size=array.shape) if name.endswith("var")
                       else rng.normal(size=array.shape) for name, array in network.state().items()})
    return network, rng.normal(size=(17, network.n_inputs)) * 2.0


def assert_agrees(network, outputs, X, tolerance):
    """ONNX Runtime's outputs equal predict_proba (or the predictions) within ``tolerance`` and the labels
    equal predict, except on rows numnet itself places within ``tolerance`` of a decision boundary."""
    if not network.is_classifier:
        np.testing.assert_allclose(outputs["predictions"], network.predict(X), rtol=0, atol=tolerance)
        return
    probabilities = network.predict_proba(X)
    np.testing.assert_allclose(outputs["probabilities"], probabilities, rtol=0, atol=tolerance)
    if network.loss.fused_activation == "softmax":
        top_two = np.sort(probabilities, axis=1)[:, -2:]
        clear = top_two[:, 1] - top_two[:, 0] > 2 * tolerance
    else:
        clear = np.all(np.abs(probabilities - 0.5) > 2 * tolerance, axis=1)
    assert np.array_equal(outputs["label"][clear], network.predict(X)[clear])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_onnx_runtime_agrees_with_numnet_on_random_architectures_of_every_layer_type(case):
    network, X = case
    model = to_onnx(network)  # runs onnx.checker.check_model
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == OPSET
    X = X.astype(network.dtype)
    assert_agrees(network, run(model, X), X, TOLERANCE[network.dtype.name])


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """The digits model `numnet train` writes (3 epochs: the export, not the accuracy, is under test)."""
    output = tmp_path_factory.mktemp("digits-model")
    assert cli.main(["train", "--quiet", "--epochs", "3", "--output", str(output)]) == 0
    return output / cli.MODEL_FILE_NAME


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_cli_digits_model_takes_raw_features_and_gives_probabilities_and_class_names(dtype, digits_model,
                                                                                         tmp_path, capsys):
    path = digits_model
    if dtype == "float64":  # the same model in float64, with the same metadata
        network = numnet.load_model(path).copy(dtype="float64")
        network.metadata = numnet.load_model(path).metadata
        path = tmp_path / "model64.npz"
        numnet.save_model(network, path)
    assert cli.main(["export", str(path), str(tmp_path / "model.onnx")]) == 0
    assert "opset" in capsys.readouterr().out
    model = onnx.load(tmp_path / "model.onnx")
    onnx.checker.check_model(model, full_check=True)
    network = numnet.load_model(path)
    raw = datasets.load_digits(dtype=dtype)[0]
    outputs = run(model, raw)
    scaled = cli.scaler_from_metadata(network.metadata["scaler"]).transform(raw)
    np.testing.assert_allclose(outputs["probabilities"], network.predict_proba(scaled), rtol=0,
                               atol=TOLERANCE[dtype])
    names = np.array(network.metadata["class_names"])
    assert outputs["label"].dtype.kind in "OU" and np.array_equal(outputs["label"], names[network.predict(scaled)])


def test_a_model_numnet_0_2_train_wrote_exports_and_predicts_its_raw_rows_as_the_cli_did(tmp_path):
    # The CLI's file from commit 958fab0 (Dense, BatchNorm, Dropout; its scaler in the metadata) and the
    # probabilities the CLI computed then for raw rows (tests/test_persistence.py says how both were made).
    fixtures = pathlib.Path(__file__).parent / "fixtures"
    expected = np.load(fixtures / "predictions_v0.2.0.npz")
    assert cli.main(["export", str(fixtures / "batchnorm_dropout_v0.2.0.npz"), str(tmp_path / "model.onnx")]) == 0
    raw = expected["batchnorm_dropout_X_raw"].astype(np.float32)
    outputs = run(onnx.load(tmp_path / "model.onnx"), raw)
    np.testing.assert_allclose(outputs["probabilities"], expected["batchnorm_dropout_proba"], rtol=0,
                               atol=TOLERANCE["float32"])
    assert outputs["label"].tolist() == [["a", "b", "c"][index]
                                         for index in expected["batchnorm_dropout_proba"].argmax(axis=1)]


@pytest.mark.filterwarnings("ignore::numnet.ConvergenceWarning")  # 30 epochs are enough for the export
@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_scikit_learn_estimators_network_exports_with_its_classes(n_classes):
    pytest.importorskip("sklearn")
    from numnet.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    y = np.array(["cat", "dog", "emu"])[(X[:, 0] > 0).astype(int) + (n_classes == 3) * (X[:, 1] > 0.5)]
    estimator = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, y)
    model = to_onnx(estimator.network_, metadata={"class_names": estimator.classes_.tolist()})
    outputs = run(model, X)
    np.testing.assert_allclose(outputs["probabilities"], estimator.network_.predict_proba(X), rtol=0,
                               atol=TOLERANCE["float32"])
    assert np.array_equal(outputs["label"].astype(str), estimator.predict(X))


def test_the_model_is_written_atomically_and_reads_back(tmp_path):
    network = numnet.Network([3, 4, 2], output_activation="softmax", seed=0)
    path = tmp_path / "sub" / "net.onnx"
    model = to_onnx(network, path)
    assert onnx.load(path) == model
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["net.onnx"]  # no temporary file left


class Scale(numnet.Layer):
    """x · factor: a layer of one's own."""

    def __init__(self, factor, *, name=None):
        super().__init__(name=name)
        self.factor = factor

    def forward(self, x, training=False, rng=None):
        return x * self.factor

    def backward(self, grad_output, propagate=True):
        return grad_output * self.factor if propagate else None


def test_a_layer_kind_without_an_onnx_form_is_refused_until_an_exporter_is_registered():
    network = numnet.Network(layers=[Dense(3, 4, "relu"), Scale(2.0), Dense(4, 2, "softmax")], seed=0)
    with pytest.raises(ValueError, match="no ONNX form for layer scale_1 of kind 'scale'"):
        to_onnx(network)
    register_onnx_exporter("scale", lambda graph, layer, x: graph.node("Mul", [x, graph.constant("f", layer.factor)]))
    try:
        X = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
        outputs = run(to_onnx(network), X)
        np.testing.assert_allclose(outputs["probabilities"], network.predict_proba(X), atol=TOLERANCE["float32"])
    finally:
        del LAYER_EXPORTERS["scale"]


def test_without_onnx_the_export_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"numnet\[onnx\]"):
        to_onnx(numnet.Network([2, 2], output_activation="softmax"))


@st.composite
def convolutional_networks(draw, conv, dtype):
    """A random network in ``dtype`` of Conv2D (any elementwise activation, stride, padding), BatchNorm,
    MaxPool2D, Dropout, Flatten and a softmax Dense layer, on small images."""
    channels, height, width = draw(st.integers(1, 3)), draw(st.integers(6, 9)), draw(st.integers(6, 9))
    layers = []
    for _ in range(draw(st.integers(1, 2))):
        out_channels, kernel = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        layers.append(conv.Conv2D(channels, out_channels, kernel, stride=draw(st.integers(1, 2)),
                                  padding=draw(st.integers(0, 1)), activation=draw(st.sampled_from(HIDDEN_ACTIVATIONS))))
        channels = out_channels
        if draw(st.booleans()):
            layers.append(BatchNorm(channels))
        if draw(st.booleans()):
            layers.append(conv.MaxPool2D(2, padding=draw(st.integers(0, 1))))
        if draw(st.booleans()):
            layers.append(Dropout(0.25))
    layers.append(conv.Flatten())
    channels_in = layers[0].in_channels
    shape = (channels_in, height, width)
    try:
        flat = numnet.Network(layers=layers, input_shape=shape, seed=0).output_shapes[-1][0]
    except ValueError:  # the windows shrank the image below a kernel: not a network
        assume(False)
    network = numnet.Network(layers=[type(layer).from_config(layer.config()) for layer in layers]
                             + [Dense(flat, draw(st.integers(2, 4)), "softmax")], input_shape=shape,
                             dtype=dtype, seed=draw(st.integers(0, 2**16)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    network.set_state({name: rng.uniform(0.5, 2.0, size=array.shape) if name.endswith("var")
                       else rng.normal(size=array.shape) for name, array in network.state().items()})
    return network, rng.normal(size=(9, channels_in, height, width)).astype(dtype)


@pytest.mark.filterwarnings("ignore::numnet.PrecisionWarning")  # float64: the float32 convolutions are the point
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_onnx_runtime_agrees_with_numnet_on_random_convolutional_networks(dtype):
    # A float64 network's convolutions run in float32 in the model (ONNX Runtime has no float64 Conv kernel),
    # so both dtypes agree to float32 rounding.
    conv = pytest.importorskip("numnet.conv")

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(convolutional_networks(conv, dtype))
    def check(case):
        network, X = case
        assert_agrees(network, run(to_onnx(network), X), X, FLOAT32_CONVOLUTION_TOLERANCE)

    check()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_exp_activation_exports_as_onnx_exp(dtype):
    # A Poisson regression network: exp in a hidden layer and at the output (outputs from ~0.05 to ~4e6, so
    # the agreement is relative: exp turns an absolute rounding of z into a relative one of e^z).
    network = numnet.Network(layers=[Dense(4, 6, "exp"), Dense(6, 2, "exp")], dtype=dtype, seed=0)
    X = np.random.default_rng(0).normal(size=(50, 4)).astype(dtype)
    predictions = run(to_onnx(network), X)["predictions"]
    np.testing.assert_allclose(predictions, network.predict(X), rtol=TOLERANCE[dtype], atol=0)


@pytest.mark.parametrize("name", sorted(numnet.ACTIVATIONS))
def test_every_activation_numnet_trains_exports(name):
    network = numnet.Network(layers=[Dense(3, 5), Activation(name), Dense(5, 2, "softmax")], dtype="float64", seed=0)
    X = np.random.default_rng(2).normal(size=(20, 3))
    assert_agrees(network, run(to_onnx(network), X), X, TOLERANCE["float64"])


def small_cnn(dtype):
    """Conv2D, MaxPool2D, Conv2D, Flatten and a softmax Dense layer on 2×8×8 images, in ``dtype``."""
    layers = [numnet.Conv2D(2, 4, 3, padding=1, activation="relu"), numnet.MaxPool2D(2),
              numnet.Conv2D(4, 3, 3, activation="tanh"), numnet.Flatten(), Dense(3 * 2 * 2, 3, "softmax")]
    return numnet.Network(layers=layers, input_shape=(2, 8, 8), dtype=dtype, seed=0)


def test_a_float64_cnn_runs_in_onnx_runtime_with_float32_convolutions_and_one_warning():
    network = small_cnn("float64")
    with pytest.warns(PrecisionWarning, match="conv2d_0, conv2d_2 in float32.*no float64 Conv kernel") as record:
        model = to_onnx(network)
    assert sum(issubclass(warning.category, PrecisionWarning) for warning in record) == 1  # two Conv2D, one warning
    X = np.random.default_rng(1).normal(size=(50, 2, 8, 8)) * 3.0
    outputs = run(model, X)
    assert outputs["probabilities"].dtype == np.float64
    assert_agrees(network, outputs, X, FLOAT32_CONVOLUTION_TOLERANCE)


@pytest.mark.parametrize("network", [small_cnn("float32"), numnet.Network([3, 4, 2], output_activation="softmax",
                                                                         dtype="float64", seed=0)],
                         ids=["float32-cnn", "float64-dense"])
def test_a_network_computed_in_its_own_dtype_exports_without_a_precision_warning(network):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        to_onnx(network)
    assert not [warning for warning in record if issubclass(warning.category, PrecisionWarning)]
