"""ONNX export of transformers: the GPT (Gather, Slice of the position table, LayerNormalization, the
attention as MatMul/Softmax with a Where mask built from Range, Erf-based GELU, the tied output as a MatMul
with the token embedding transposed) and a non-causal attention block, through one exported file at several
batch sizes and sequence lengths.

Oracle: ONNX Runtime, which shares no code with numnet.
"""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

import numnet  # noqa: E402  (after the skips, so the suite runs without onnx)
from numnet.onnx_export import to_onnx  # noqa: E402

#: Probabilities in [0, 1], float32: each operator rounds on its own (ONNX Runtime's Erf and LayerNormalization
#: kernels against numnet's formulas), a few ulps per layer; measured at most 3e-8. Float64: 1e-11 (numnet's
#: erf and ONNX's traced one are the same formula, evaluated in another order).
TOLERANCE = {"float32": 1e-6, "float64": 1e-10}
SHAPES = [(1, 1), (3, 5), (2, 8)]  # (batch, time steps), up to the block size


def session(network, path):
    to_onnx(network, path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("bias", [False, True], ids=["no biases", "biases"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_gpt_exports_and_onnx_runtime_gives_its_probabilities_at_every_length(tmp_path, dtype, bias):
    model = numnet.models.gpt(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, bias=bias, dtype=dtype,
                              seed=1)
    runtime = session(model, tmp_path / "gpt.onnx")
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        ids = rng.integers(0, 11, shape)
        probabilities, label = runtime.run(None, {"input": ids})
        assert probabilities.shape == (*shape, 11)
        np.testing.assert_allclose(probabilities, model.predict_proba(ids), atol=TOLERANCE[dtype], rtol=0)
        np.testing.assert_array_equal(label, model.predict(ids))


def test_the_tied_matrix_is_stored_once(tmp_path):
    model = numnet.models.gpt(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8, seed=1)
    to_onnx(model, tmp_path / "gpt.onnx")
    W_te = model.parameters()["gpt_0.wte.W"]
    stored = [initializer for initializer in onnx.load(tmp_path / "gpt.onnx").graph.initializer
              if tuple(initializer.dims) in ((11, 8), (8, 11))]
    assert len(stored) == 1
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(stored[0]), W_te)


def test_a_non_causal_attention_block_exports_too(tmp_path):
    network = numnet.Network(layers=[
        numnet.Embedding(9, 8), numnet.PositionEmbedding(6, 8),
        numnet.Residual(numnet.LayerNorm(8), numnet.MultiHeadAttention(8, 4, causal=False)),
        numnet.Dense(8, 3, "softmax")], seed=2)
    runtime = session(network, tmp_path / "block.onnx")
    ids = np.random.default_rng(1).integers(0, 9, (4, 6))
    np.testing.assert_allclose(runtime.run(None, {"input": ids})[0], network.predict_proba(ids),
                               atol=TOLERANCE["float32"], rtol=0)
