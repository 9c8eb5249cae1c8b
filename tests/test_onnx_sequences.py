"""ONNX export of sequence models: Embedding (Gather) and RNN, LSTM, GRU (ONNX's own operators, the gate
blocks reordered), with every step's output or only the last, through one exported file at several batch
sizes and sequence lengths.

Oracle: ONNX Runtime, which shares no code with numnet: its RNN, LSTM and GRU kernels follow ONNX's
equations and gate order, so a wrong reordering of numnet's (PyTorch's) blocks or a wrong bias split shows
as a difference of a few hundredths (0.05 with the LSTM's or GRU's blocks left in numnet's order), not 1e-7.
"""

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

import numnet  # noqa: E402  (after the skips, so the suite runs without onnx)
from numnet import GRU, LSTM, RNN, Dense, Embedding  # noqa: E402
from numnet.errors import PrecisionWarning  # noqa: E402
from numnet.onnx_export import RECURRENT_OPERATORS, to_onnx  # noqa: E402

#: Float32 agreement on probabilities in [0, 1]: numnet and ONNX Runtime round each step's sums, tanh,
#: sigmoid and exp differently (each within a few float32 ulps, 6e-8 near 1), and a recurrence with numnet's
#: default weights (U(-1/sqrt(H), 1/sqrt(H))) contracts rather than amplifies those differences over the
#: steps: the largest difference measured over every case below was 1.2e-7 (float32's epsilon, two ulps just
#: below 1), so 1e-6 leaves a margin of 8 while still catching any error in the export (a wrong gate order
#: is off by 0.05).
#: A float64 model's recurrent operators run in float32 (ONNX Runtime has none in float64), so its outputs
#: carry float32 rounding too and share the tolerance.
TOLERANCE = 1e-6
VOCABULARY, EMBEDDING, HIDDEN = 13, 5, 7
#: (batch size, time steps) of the id arrays sent through one exported file: one step, one row, and longer.
SHAPES = [(1, 1), (3, 5), (8, 12), (2, 30)]
LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def language_model(kind, dtype, *, stateful=False):
    """Embedding, a recurrent layer with every step's output and a softmax over the vocabulary at each step."""
    return numnet.Network(layers=[Embedding(VOCABULARY, EMBEDDING),
                                  LAYERS[kind](EMBEDDING, HIDDEN, stateful=stateful),
                                  Dense(HIDDEN, VOCABULARY, "softmax")], dtype=dtype, seed=3)


def sequence_classifier(kind, dtype):
    """Embedding, a recurrent layer with only its last step's output, and a softmax over 4 classes."""
    return numnet.Network(layers=[Embedding(VOCABULARY, EMBEDDING),
                                  LAYERS[kind](EMBEDDING, HIDDEN, return_sequences=False),
                                  Dense(HIDDEN, 4, "softmax")], dtype=dtype, seed=4)


def exported_session(network, path):
    """ONNX Runtime's session on ``network`` exported to ``path`` (checked in full by onnx.checker)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=PrecisionWarning)  # float64: tested on its own below
        to_onnx(network, path)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    return model, onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def largest_difference(network, session, rng):
    """The largest |ONNX Runtime - numnet| over probabilities of random ids of every shape in SHAPES, after
    checking that the labels equal numnet's predictions wherever the top two probabilities are apart."""
    largest = 0.0
    for n_samples, time_steps in SHAPES:
        ids = rng.integers(0, VOCABULARY, size=(n_samples, time_steps))
        probabilities, labels = session.run(["probabilities", "label"], {"input": ids})
        # A copy for each length: a Network fixes its time steps at the first data it sees, the file does not
        twin = network.copy()
        expected = twin.predict_proba(ids)
        assert probabilities.dtype == network.dtype and probabilities.shape == expected.shape
        largest = max(largest, float(np.max(np.abs(probabilities - expected))))
        top_two = np.sort(expected, axis=-1)[..., -2:]
        clear = top_two[..., 1] - top_two[..., 0] > 2 * TOLERANCE
        assert np.array_equal(labels[clear], twin.predict(ids)[clear])
    return largest


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_a_language_model_gives_onnx_runtimes_probabilities_at_every_step_for_any_batch_and_length(kind, dtype,
                                                                                                 tmp_path):
    network = language_model(kind, dtype)
    model, session = exported_session(network, tmp_path / "model.onnx")
    assert [node.op_type for node in model.graph.node if node.op_type in RECURRENT_OPERATORS.values()] == \
        [RECURRENT_OPERATORS[kind]]
    declared = model.graph.input[0].type.tensor_type
    assert declared.elem_type == onnx.TensorProto.INT64
    assert [dim.dim_param for dim in declared.shape.dim] == ["batch", "time"]
    assert largest_difference(network, session, np.random.default_rng(0)) <= TOLERANCE


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_a_sequence_classifier_gives_onnx_runtimes_probabilities_from_the_last_step(kind, dtype, tmp_path):
    network = sequence_classifier(kind, dtype)
    _, session = exported_session(network, tmp_path / "model.onnx")
    assert [output.shape for output in session.get_outputs()] == [["batch", 4], ["batch"]]
    assert largest_difference(network, session, np.random.default_rng(1)) <= TOLERANCE


def test_a_float64_sequence_model_computes_its_recurrent_layer_in_float32_with_one_warning():
    network = numnet.Network(layers=[Embedding(VOCABULARY, EMBEDDING), LSTM(EMBEDDING, HIDDEN),
                                     GRU(HIDDEN, HIDDEN, return_sequences=False), Dense(HIDDEN, 3, "softmax")],
                             dtype="float64", seed=5)
    with pytest.warns(PrecisionWarning, match=r"lstm_1, gru_2 in float32 .*no float64 LSTM or GRU kernel") as record:
        model = to_onnx(network)
    assert sum(issubclass(warning.category, PrecisionWarning) for warning in record) == 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert largest_difference(network, session, np.random.default_rng(2)) <= TOLERANCE


def test_a_stateful_layer_exports_as_its_stateless_function_starting_from_zeros(tmp_path):
    network = language_model("lstm", "float32", stateful=True)
    ids = np.random.default_rng(3).integers(0, VOCABULARY, size=(4, 6))
    carrier = network.copy()  # trained on a copy: the exported network's time steps stay free
    carrier.forward(ids, training=True)
    carried = carrier.layers[1].carried_state()
    assert np.abs(carried["c"]).max() > 0.01  # a training batch left a state to carry into the next
    network.layers[1].set_carried_state(carried)
    _, session = exported_session(network, tmp_path / "model.onnx")
    # predict starts from zeros, whatever state training carries; so does the file
    assert largest_difference(network, session, np.random.default_rng(4)) <= TOLERANCE


def test_a_recurrent_network_of_real_valued_sequences_exports_with_a_free_time_axis(tmp_path):
    # No Embedding: float sequences (n, T, 3) in, a real value per step out (mean squared error)
    network = numnet.Network(layers=[GRU(3, HIDDEN), Dense(HIDDEN, 2, "linear")], dtype="float32", seed=6)
    _, session = exported_session(network, tmp_path / "model.onnx")
    assert session.get_inputs()[0].shape == ["batch", "time", 3]
    rng = np.random.default_rng(5)
    for n_samples, time_steps in SHAPES:
        X = rng.normal(size=(n_samples, time_steps, 3)).astype(np.float32)
        (predictions,) = session.run(["predictions"], {"input": X})
        np.testing.assert_allclose(predictions, network.copy().predict(X), rtol=0, atol=TOLERANCE)


def test_a_token_model_refuses_a_scaler_in_its_metadata():
    scaler = {"type": "standard", "mean": [0.0], "scale": [1.0]}
    with pytest.raises(ValueError, match="takes integer token ids, which are not scaled"):
        to_onnx(language_model("rnn", "float32"), metadata={"scaler": scaler})
