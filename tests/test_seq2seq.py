"""Encoder–decoder models: the Attention layer against PyTorch, the whole Seq2Seq (plain, peeky, attention,
reversed input) against central differences and against a PyTorch re-implementation with the same weights,
greedy decoding against the teacher-forced forward pass, save/load/resume, and a user's own two-input model
trained with tuple inputs through fit, validation_split, shuffling, gradient checking and saving."""

import numpy as np
import pytest

import numnet
from oracles import as_numpy, max_relative_difference, registered

TORCH_TOLERANCE = 1e-10
GRADIENT_TOLERANCE = 1e-6

VARIANTS = {
    "plain": {},
    "peeky": {"peeky": True},
    "attention": {"attention": True},
    "peeky, reversed": {"peeky": True, "reverse_input": True},
    "attention, reversed": {"attention": True, "reverse_input": True},
}


def toy_pairs(n=6, vocab_size=9, source_steps=5, target_steps=4, seed=0, start_id=1):
    """Random source ids (n, source_steps) and targets (n, target_steps) that begin with the start token."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, vocab_size, (n, source_steps))
    Y = rng.integers(0, vocab_size, (n, target_steps))
    Y[:, 0] = start_id
    return X, Y


def small_model(seed=1, dtype="float64", **options):
    return numnet.Seq2Seq(vocab_size=9, embedding_dim=3, hidden_size=4, dtype=dtype, seed=seed, **options)


# ---------------------------------------------------------------------------------------------------------
# The Attention layer against PyTorch
# ---------------------------------------------------------------------------------------------------------

def test_attention_matches_pytorch_forward_and_backward_in_float64():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    decoder, encoder, upstream = rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 6, 5)), rng.normal(size=(3, 4, 5))
    layer = numnet.Attention()
    context = layer.forward((decoder, encoder), training=True)
    d_decoder, d_encoder = layer.backward(upstream)
    torch_decoder = torch.tensor(decoder, requires_grad=True)
    torch_encoder = torch.tensor(encoder, requires_grad=True)
    weights = torch.softmax(torch_decoder @ torch_encoder.transpose(1, 2), dim=-1)
    expected = weights @ torch_encoder
    expected.backward(torch.tensor(upstream))
    assert max_relative_difference(context, expected.detach().numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(layer.attention_weights, weights.detach().numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(d_decoder, torch_decoder.grad.numpy()) < TORCH_TOLERANCE
    assert max_relative_difference(d_encoder, torch_encoder.grad.numpy()) < TORCH_TOLERANCE
    np.testing.assert_allclose(layer.attention_weights.sum(axis=-1), 1.0, rtol=1e-12)


def test_attention_refuses_inputs_it_cannot_pair_and_names_the_shapes():
    layer = numnet.Attention()
    with pytest.raises(ValueError, match=r"takes a tuple \(decoder states, encoder states\)"):
        layer.forward(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match=r"same n and H, got \(1, 2, 3\) and \(1, 2, 4\)"):
        layer.forward((np.zeros((1, 2, 3)), np.zeros((1, 2, 4))))


# ---------------------------------------------------------------------------------------------------------
# The whole model: central differences and PyTorch
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_every_variant_backpropagates_like_central_differences(options):
    model = small_model(**options)
    inputs, targets = model.teacher_forced(*toy_pairs(n=3))
    errors = numnet.gradient_check(model, inputs, targets)
    assert max(errors.values()) < GRADIENT_TOLERANCE, errors


def torch_seq2seq_loss(model, X, Y):
    """The model's teacher-forced loss recomputed by PyTorch from its weights (nn.LSTM for both LSTMs,
    explicit embedding lookups, attention and output layer), and every gradient under numnet's names."""
    torch = pytest.importorskip("torch")
    body = model.encoder_decoder
    prefix = f"{body.name}."
    weights = {name: torch.tensor(as_numpy(value), requires_grad=True) for name, value in model.parameters().items()}

    def lstm(name, x, state=None):
        module = torch.nn.LSTM(x.shape[-1], body.hidden_size, batch_first=True).double()
        with torch.no_grad():
            module.weight_ih_l0.copy_(weights[f"{prefix}{name}.Wx"].T)
            module.weight_hh_l0.copy_(weights[f"{prefix}{name}.Wh"].T)
            module.bias_ih_l0.copy_(weights[f"{prefix}{name}.b"])
            module.bias_hh_l0.zero_()
        output, _ = module(x, state)
        return output, module

    source = torch.tensor(X[:, ::-1].copy() if body.reverse_input else X)
    decoder_input, targets = torch.tensor(Y[:, :-1]), torch.tensor(Y[:, 1:])
    encoder_states, encoder_module = lstm("encoder_lstm", weights[f"{prefix}encoder_embedding.W"][source])
    h = encoder_states[:, -1]
    embedded = weights[f"{prefix}decoder_embedding.W"][decoder_input]
    steps = decoder_input.shape[1]
    if body.peeky:
        embedded = torch.cat([embedded, h[:, None].expand(-1, steps, -1)], dim=-1)
    decoder_states, decoder_module = lstm("decoder_lstm", embedded, (h[None], torch.zeros_like(h)[None]))
    features = decoder_states
    if body.attention:
        attention = torch.softmax(decoder_states @ encoder_states.transpose(1, 2), dim=-1)
        features = torch.cat([attention @ encoder_states, decoder_states], dim=-1)
    elif body.peeky:
        features = torch.cat([decoder_states, h[:, None].expand(-1, steps, -1)], dim=-1)
    logits = features @ weights["output.W"] + weights["output.b"]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss.backward()
    gradients = {name: tensor.grad.numpy() for name, tensor in weights.items() if tensor.grad is not None}
    for name, module in (("encoder_lstm", encoder_module), ("decoder_lstm", decoder_module)):
        gradients[f"{prefix}{name}.Wx"] = module.weight_ih_l0.grad.numpy().T
        gradients[f"{prefix}{name}.Wh"] = module.weight_hh_l0.grad.numpy().T
        gradients[f"{prefix}{name}.b"] = module.bias_ih_l0.grad.numpy()
    return float(loss.detach()), gradients


@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_loss_and_every_gradient_equal_a_pytorch_seq2seq_with_the_same_weights(options):
    model = small_model(**options)
    X, Y = toy_pairs(n=5)
    expected_loss, expected = torch_seq2seq_loss(model, X, Y)
    inputs, targets = model.teacher_forced(X, Y)
    loss = model.loss_and_gradients(model.prepare_inputs(inputs), model.prepare_targets(targets))
    assert abs(loss - expected_loss) < TORCH_TOLERANCE * abs(expected_loss)
    gradients = model.gradients()
    assert set(gradients) == set(expected)
    for name, value in expected.items():
        assert max_relative_difference(as_numpy(gradients[name]), value) < TORCH_TOLERANCE, name


# ---------------------------------------------------------------------------------------------------------
# Decoding, training, saving
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_greedy_decoding_writes_what_the_teacher_forced_pass_predicts_from_its_own_tokens(options):
    """Fed back as the decoder's input, the tokens generate wrote are each the argmax of the full forward
    pass at their step (decoding a step at a time equals reading the whole answer at once), and with
    attention the weights of both agree."""
    model = small_model(**options)
    X, _ = toy_pairs(n=4)
    written = model.generate(X, start_id=1, length=4)
    generated_weights = model.attention_weights
    decoder_input = np.concatenate([np.ones((4, 1), dtype=np.int64), written[:, :-1]], axis=1)
    probabilities = model.forward((X, decoder_input))
    np.testing.assert_array_equal(probabilities.argmax(axis=-1), written)
    if model.encoder_decoder.attention:
        assert generated_weights.shape == (4, 4, 5)
        np.testing.assert_allclose(generated_weights, model.attention_weights, rtol=1e-12, atol=1e-15)
    else:
        assert generated_weights is None


def test_reversed_input_is_the_plain_model_on_reversed_sources_and_weights_follow_the_source_order():
    reversed_model = small_model(attention=True, reverse_input=True)
    plain = small_model(attention=True)
    plain.set_parameters(reversed_model.parameters())
    X, Y = toy_pairs(n=3)
    inputs, _ = reversed_model.teacher_forced(X, Y)
    np.testing.assert_array_equal(reversed_model.forward(inputs), plain.forward((X[:, ::-1], inputs[1])))
    np.testing.assert_array_equal(reversed_model.attention_weights, plain.attention_weights[..., ::-1])


def test_a_model_learns_to_copy_its_input_and_fit_records_what_generate_needs():
    rng = np.random.default_rng(0)
    X = rng.integers(2, 8, (200, 4))
    Y = np.concatenate([np.ones((200, 1), dtype=np.int64), X], axis=1)
    model = numnet.Seq2Seq(vocab_size=8, embedding_dim=8, hidden_size=32, attention=True, seed=0)
    history = model.fit(X, Y, epochs=40, batch_size=20, optimizer="adam", learning_rate=0.01, clip_norm=5.0,
                        seed=0, validation_split=0.1)
    assert history.val_loss[-1] < 0.3 * history.val_loss[0]
    assert model.exact_match(X, Y) > 0.9
    np.testing.assert_array_equal(model.generate(X[:5]), model.generate(X[:5], start_id=1, length=4))


def test_save_load_and_resume_are_bit_identical(tmp_path):
    X, Y = toy_pairs(n=12)
    continuous = small_model(peeky=True, reverse_input=True, dtype="float32")
    continuous.fit(X, Y, epochs=3, batch_size=4, optimizer="adam", seed=3)
    paused = small_model(peeky=True, reverse_input=True, dtype="float32")
    paused.fit(X, Y, epochs=2, batch_size=4, optimizer="adam", seed=3)
    numnet.save_model(paused, tmp_path / "seq2seq.npz")
    loaded = numnet.load_model(tmp_path / "seq2seq.npz")
    assert type(loaded) is numnet.Seq2Seq and loaded.encoder_decoder.peeky and loaded.encoder_decoder.reverse_input
    np.testing.assert_array_equal(loaded.generate(X), paused.generate(X))
    loaded.fit(X, Y, epochs=1, batch_size=4)
    np.testing.assert_array_equal(as_numpy(loaded.flat_parameters), as_numpy(continuous.flat_parameters))


def test_bad_targets_and_an_untrained_generate_say_what_to_do():
    model = small_model()
    X, Y = toy_pairs(n=3)
    Y[1, 0] = 2
    with pytest.raises(ValueError, match="first column of the training targets Y must be the start token"):
        model.fit(X, Y, epochs=1)
    with pytest.raises(ValueError, match=r"at least one token to learn per row"):
        model.fit(X, Y[:, :1], epochs=1)
    with pytest.raises(ValueError, match="start_id is not known yet"):
        model.generate(X)
    with pytest.raises(ValueError, match="ids"):
        model.generate(X + 100, start_id=1, length=2)


# ---------------------------------------------------------------------------------------------------------
# A model of one's own with two inputs, trained through fit with tuple inputs
# ---------------------------------------------------------------------------------------------------------

class BookSeq2seq(numnet.CompositeLayer):
    """The book's plain Seq2seq written by a user from numnet layers: the encoder's last state starts the
    decoder; forward and backward by hand, two inputs (source, decoder input)."""

    input_count = 2

    def __init__(self, vocab_size=None, size=None, *layers, name=None):
        if not layers:
            layers = (numnet.Embedding(vocab_size, size, name="source_embedding"),
                      numnet.LSTM(size, size, return_sequences=False, name="encoder"),
                      numnet.Embedding(vocab_size, size, name="target_embedding"),
                      numnet.LSTM(size, size, name="decoder"))
        super().__init__(*layers, name=name)
        self.source_embedding, self.encoder, self.target_embedding, self.decoder = self.children

    def expected_input_shape(self):
        return ((None,), (None,))

    def output_shape(self, input_shape):
        return (input_shape[1][0], self.decoder.hidden_size)

    def forward(self, x, training=False, rng=None):
        source, decoder_input = x
        h = self.encoder.forward(self.source_embedding.forward(source, training), training)
        start = {"h": h, "c": 0 * h}
        return self.decoder.forward(self.target_embedding.forward(decoder_input, training), training,
                                    initial_state=start)

    def backward(self, grad_output, propagate=True):
        self.target_embedding.backward(self.decoder.backward(grad_output), propagate=False)
        d_h = self.decoder.initial_state_gradients["h"]
        self.source_embedding.backward(self.encoder.backward(d_h), propagate=False)
        return (None, None) if propagate else None

    @classmethod
    def from_config(cls, config):
        children = [numnet.layers.get_layer_class(child["type"]).from_config(child) for child in config["layers"]]
        return cls(None, None, *children, name=config["name"])


@pytest.fixture
def book_seq2seq():
    with registered(BookSeq2seq):
        yield BookSeq2seq


def book_network(seed=0):
    return numnet.Network(layers=[BookSeq2seq(9, 6), numnet.Dense(6, 9, "softmax")], dtype="float64", seed=seed)


def test_a_users_two_input_model_trains_checks_saves_and_loads_through_tuple_inputs(tmp_path, book_seq2seq):
    X, Y = toy_pairs(n=30, seed=2)
    inputs, targets = (X, Y[:, :-1]), Y[:, 1:]
    network = book_network()
    assert max(numnet.gradient_check(network, (X[:3], Y[:3, :-1]), targets[:3]).values()) < GRADIENT_TOLERANCE
    history = network.fit(inputs, targets, epochs=20, batch_size=8, optimizer="adam", learning_rate=0.05,
                          clip_norm=5.0, validation_split=0.2, seed=0, diagnose=True)
    assert history.epoch_loss[-1] < history.epoch_loss[0] and len(history.val_loss) == 20
    assert network.summary().splitlines()[2].split()[1:3] == ["(None,", "?),"]
    numnet.save_model(network, tmp_path / "book.npz")
    loaded = numnet.load_model(tmp_path / "book.npz")
    np.testing.assert_array_equal(loaded.predict_proba(inputs), network.predict_proba(inputs))
    assert isinstance(numnet.diagnose(network, inputs, targets, history), list)


def test_tuple_rows_stay_together_through_shuffled_batches_and_the_validation_split(book_seq2seq):
    """A tuple's rows permuted alike train exactly as the unpermuted rows in one batch; validation_split
    holds out whole samples: its validation loss is the loss of the rows its seeded permutation chose, each
    source with its own decoder input."""
    X, Y = toy_pairs(n=20, seed=5)
    inputs, targets = (X, Y[:, :-1]), Y[:, 1:]
    order = np.random.default_rng(1).permutation(20)
    one, other = book_network(), book_network()
    one.fit(inputs, targets, epochs=1, batch_size=20, shuffle=False, seed=0)
    other.fit((X[order], Y[order, :-1]), targets[order], epochs=1, batch_size=20, shuffle=False, seed=0)
    np.testing.assert_allclose(as_numpy(one.flat_parameters), as_numpy(other.flat_parameters), rtol=1e-12)
    split = book_network()
    history = split.fit(inputs, targets, epochs=1, batch_size=4, validation_split=0.25, seed=7)
    validation_rows = np.random.default_rng(7).permutation(20)[:5]
    held_out = split.loss_value((X[validation_rows], Y[validation_rows, :-1]), targets[validation_rows])
    assert history.val_loss[-1] == pytest.approx(held_out, rel=1e-12)


def test_tuple_inputs_of_the_wrong_count_or_row_numbers_are_refused_with_what_to_do(book_seq2seq):
    X, Y = toy_pairs(n=4)
    network = book_network()
    with pytest.raises(ValueError, match=r"takes 2 inputs, so X must be a tuple of 2 arrays.*but X is one ndarray"):
        network.predict(X)
    with pytest.raises(ValueError, match=r"X\[0\] has 4, X\[1\] has 3"):
        network.predict((X, Y[:3]))
    plain = numnet.Network([3, 2])
    with pytest.raises(ValueError, match="X is a tuple of 2 arrays, but the first layer .* takes one input"):
        plain.predict((np.zeros((2, 3)), np.zeros((2, 3))))


# ---------------------------------------------------------------------------------------------------------
# The attention drawn


def test_plot_attention_draws_the_weights_of_the_answer_generate_writes_labelled_by_the_vocabulary(tmp_path):
    pytest.importorskip("matplotlib")
    from numnet import plots
    from numnet.text import Vocabulary

    model = small_model(attention=True, reverse_input=True)
    model.vocabulary = Vocabulary(list("abcd +_="))
    X, Y = toy_pairs(n=2)
    model.teacher_forced(X, Y)  # records the start token and the answer's length, as fit does
    figure = plots.plot_attention(model, X[0], path=tmp_path / "attention.png")
    written = model.generate(X[:1])  # the recorded start token and length, as plot_attention wrote them
    axes = figure.axes[0]
    image = axes.get_images()[0].get_array()
    np.testing.assert_allclose(image, model.attention_weights[0], rtol=1e-12)
    assert [label.get_text() for label in axes.get_xticklabels()] == [
        model.vocabulary.decode([token]).replace(" ", "␣") or "∅" for token in X[0]]
    assert len(axes.get_yticklabels()) == written.shape[1]
    assert (tmp_path / "attention.png").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="one example's ids"):
        plots.plot_attention(model, X)
    with pytest.raises(ValueError, match=r"layer=1, but the model has 1 attention layer\(s\): attention"):
        plots.plot_attention(model, X[0], layer=1)
    with pytest.raises(ValueError, match="this attention layer has one head"):
        plots.plot_attention(model, X[0], head=2)
    with pytest.raises(ValueError, match="has no attention layer"):
        plots.plot_attention(small_model(), X[0])
