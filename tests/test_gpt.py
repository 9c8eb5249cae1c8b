"""The GPT model (numnet.models.gpt): loss and every gradient against nanoGPT's model written plainly in
PyTorch with the same weights (the output tied to the token embedding), central differences on random small
transformers, nanoGPT's initialisation, what AdamW's decay="matrices" decays, save/load/resume, generation."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numnet
from numnet.models.gpt import GPT, INITIAL_STD
from oracles import as_numpy, max_relative_difference

TORCH_TOLERANCE = 1e-10
GRADIENT_TOLERANCE = 1e-6


def small_gpt(bias=False, seed=0, dtype="float64", **sizes):
    options = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)
    options.update(sizes)
    return numnet.models.gpt(**options, bias=bias, dtype=dtype, seed=seed)


def token_batch(model, n=3, steps=6, seed=0):
    rng = np.random.default_rng(seed)
    vocab_size = model.layers[0].vocab_size
    return rng.integers(0, vocab_size, (n, steps)), rng.integers(0, vocab_size, (n, steps))


def torch_gpt_loss(model, X, y):
    """nanoGPT's GPT.forward(idx, targets) with the model's weights, in float64: the loss and every gradient
    under numnet's names (lm_head.weight is wte.weight, as nanoGPT ties them)."""
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    body = model.layers[0]
    prefix = f"{body.name}."
    weights = {name[len(prefix):]: torch.tensor(as_numpy(value), requires_grad=True)
               for name, value in model.parameters().items()}

    def linear(x, name, weight, bias):  # nanoGPT's nn.Linear: x @ weight.T + bias, weight = numnet's W.T
        out = x @ weights[f"{name}.{weight}"]
        return out + weights[f"{name}.{bias}"] if f"{name}.{bias}" in weights else out

    def layer_norm(x, name):
        return functional.layer_norm(x, (body.n_embd,), weights[f"{name}.gamma"], weights.get(f"{name}.beta"), 1e-5)

    idx, T = torch.tensor(X), X.shape[1]
    x = weights["wte.W"][idx] + weights["wpe.W"][torch.arange(T)]
    size = body.n_embd // body.n_head
    for block in range(body.n_layer):
        name = f"h_{block}"
        q, k, v = linear(layer_norm(x, f"{name}.attention.ln_1"), f"{name}.attention.attn", "W_qkv", "b_qkv").split(
            body.n_embd, dim=2)
        q, k, v = (part.view(len(X), T, body.n_head, size).transpose(1, 2) for part in (q, k, v))
        attended = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        attended = attended.transpose(1, 2).contiguous().view(len(X), T, body.n_embd)
        x = x + linear(attended, f"{name}.attention.attn", "W_o", "b_o")
        hidden = functional.gelu(linear(layer_norm(x, f"{name}.mlp.ln_2"), f"{name}.mlp.c_fc", "W", "b"))
        x = x + linear(hidden, f"{name}.mlp.c_proj", "W", "b")
    logits = layer_norm(x, "ln_f") @ weights["wte.W"].T
    loss = functional.cross_entropy(logits.view(-1, logits.shape[-1]), torch.tensor(y).view(-1))
    loss.backward()
    return float(loss.detach()), {prefix + name: tensor.grad.numpy() for name, tensor in weights.items()}


@pytest.mark.parametrize("bias", [False, True], ids=["no biases (nanoGPT's default)", "biases"])
def test_loss_and_every_gradient_equal_nanogpts_model_in_pytorch(bias):
    model = small_gpt(bias=bias)
    X, y = token_batch(model)
    expected_loss, expected = torch_gpt_loss(model, X, y)
    loss = model.loss_and_gradients(model.prepare_inputs(X), model.prepare_targets(y))
    assert abs(loss - expected_loss) < TORCH_TOLERANCE * expected_loss
    gradients = model.gradients()
    assert set(gradients) == set(expected)
    for name, value in expected.items():  # wte's gradient: the lookup's and the tied projection's, summed
        assert max_relative_difference(as_numpy(gradients[name]), value) < TORCH_TOLERANCE, name


# (heads, head size): widths of 4 to 6. A LayerNorm over 2 values gives ±1 whatever they are, so its input's
# gradient is ~0 and central differences measure rounding noise there: no width below 4.
HEADS_AND_SIZES = [(1, 4), (2, 2), (2, 3), (1, 6)]


@settings(max_examples=6, deadline=None)
@given(n_layer=st.integers(1, 2), heads=st.sampled_from(HEADS_AND_SIZES), steps=st.integers(1, 5),
       bias=st.booleans(), seed=st.integers(0, 100))
def test_random_small_transformers_backpropagate_like_central_differences(n_layer, heads, steps, bias, seed):
    n_head, head_size = heads
    model = small_gpt(bias=bias, seed=seed, n_layer=n_layer, n_head=n_head, n_embd=n_head * head_size,
                      vocab_size=7, block_size=5)
    X, y = token_batch(model, n=2, steps=steps, seed=seed)
    errors = numnet.gradient_check(model, X, y)
    assert max(errors.values()) < GRADIENT_TOLERANCE, errors


def test_initialisation_is_nanogpts_and_the_output_reuses_the_token_embedding():
    model = small_gpt(n_layer=4, n_embd=64, n_head=4, vocab_size=50, block_size=32, seed=1)
    parameters = {name.split(".", 1)[1]: as_numpy(value) for name, value in model.parameters().items()}
    residual = INITIAL_STD / math.sqrt(2 * 4)
    for name, value in parameters.items():
        if name.endswith(("attn.W_o", "c_proj.W")):
            assert value.std() == pytest.approx(residual, rel=0.1), name
        elif name.endswith(("W", "W_qkv")):
            assert value.std() == pytest.approx(INITIAL_STD, rel=0.1), name
        elif name.endswith("gamma"):
            np.testing.assert_array_equal(value, 1.0)
    assert "lm_head" not in " ".join(parameters) and model.n_parameters == sum(v.size for v in parameters.values())


def test_adamw_decay_matrices_decays_the_matrices_and_embeddings_only():
    model = small_gpt(bias=True)
    mask = model.unflatten(numnet.AdamW(decay="matrices").bind(model).constants["decayed"])
    assert all(np.all(as_numpy(values) == values.flat[0]) for values in mask.values())  # whole parameters
    decayed = {name.split(".", 1)[1] for name, values in mask.items() if values.flat[0] == 1}
    assert decayed == {"wte.W", "wpe.W", *(f"h_{block}.{part}" for block in range(2) for part in (
        "attention.attn.W_qkv", "attention.attn.W_o", "mlp.c_fc.W", "mlp.c_proj.W"))}


def test_save_load_and_resume_are_bit_identical(tmp_path):
    X, y = token_batch(small_gpt(), n=12, steps=8, seed=2)
    continuous, paused = small_gpt(dtype="float32"), small_gpt(dtype="float32")
    for model, epochs in ((continuous, 3), (paused, 2)):
        model.fit(X, y, epochs=epochs, batch_size=4, clip_norm=1.0, seed=3,
                  optimizer=numnet.AdamW(learning_rate=1e-3, weight_decay=0.1, decay="matrices"))
    numnet.save_model(paused, tmp_path / "gpt.npz")
    loaded = numnet.load_model(tmp_path / "gpt.npz")
    assert isinstance(loaded.layers[0], GPT)
    loaded.fit(X, y, epochs=1, batch_size=4)
    np.testing.assert_array_equal(as_numpy(loaded.flat_parameters), as_numpy(continuous.flat_parameters))


def test_a_context_longer_than_the_block_size_is_refused_with_the_limit():
    model = small_gpt(block_size=4)
    with pytest.raises(ValueError, match="block_size"):
        model.predict_proba(np.zeros((1, 5), dtype=np.int64))
