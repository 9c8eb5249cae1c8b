"""numnet.text and the text readers: vocabularies, the two training layouts, generation, load_text and the
census names.

Oracles: hand-counted examples; the training loop of Deep Learning from Scratch 2 (its RnnlmTrainer's
batch indexing, written out here) run in PyTorch with the state carried across batches; PyTorch's forward
pass for the greedy continuation and the sampling distribution; a model trained on "abcabc..." that must
continue the pattern; Python's own UTF-8 decoder for the fuzzed text files; the census lists' known first
names."""

import hashlib
import io
import json
import re
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numnet
from fuzzing import Tally, fuzz_cases, mutate
from numnet.datasets import load_names, load_text
from numnet.errors import CorruptFileError, DataFileError, MissingDependencyError
from numnet.text import UNKNOWN_ID, Vocabulary, generate, stream_batches, windows

#: float64 training of a few steps here and in PyTorch: the same sums in other orders, a few ulps apart.
TORCH_TOLERANCE = 1e-10
UTF8_BOM = b"\xef\xbb\xbf"


# ---------------------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------------------


def test_a_character_vocabulary_numbers_its_symbols_after_the_unknown_token():
    vocabulary = Vocabulary.from_text("hello world")
    # distinct characters in code-point order: " " < "d" < "e" < "h" < "l" < "o" < "r" < "w"
    assert vocabulary.symbols == (" ", "d", "e", "h", "l", "o", "r", "w")
    assert len(vocabulary) == 9 and UNKNOWN_ID == 0
    np.testing.assert_array_equal(vocabulary.encode("held!"), [4, 3, 5, 2, 0])  # "!" is unknown
    assert vocabulary.encode("held!").dtype == np.int64
    assert vocabulary.decode([4, 3, 5, 2, 0]) == "held\ufffd"
    assert vocabulary.decode(vocabulary.encode("hello world")) == "hello world"
    assert vocabulary.decode([]) == "" and vocabulary.encode("").shape == (0,)


def test_a_word_vocabulary_keeps_punctuation_and_line_breaks_as_words_of_their_own():
    vocabulary = Vocabulary.from_text("The cat sat.\nThe dog, too!", level="word")
    assert vocabulary.tokens("The cat sat.\nThe dog") == ["The", "cat", "sat", ".", "\n", "The", "dog"]
    assert vocabulary.symbols == ("\n", "!", ",", ".", "The", "cat", "dog", "sat", "too")
    ids = vocabulary.encode("The bird sat.\n")
    np.testing.assert_array_equal(ids, [5, 0, 8, 4, 1])
    assert vocabulary.decode(ids) == "The <unk> sat .\n"  # spaces between words, none around a line break


def test_min_count_and_max_size_keep_the_most_frequent_symbols():
    text = "aaaabbbccd"  # counts a 4, b 3, c 2, d 1
    assert Vocabulary.from_text(text, min_count=2).symbols == ("a", "b", "c")
    assert Vocabulary.from_text(text, max_size=3).symbols == ("a", "b")  # 2 symbols and the unknown token
    assert Vocabulary.from_text("ba", max_size=2).symbols == ("a",)  # a tie goes to the earlier symbol
    np.testing.assert_array_equal(Vocabulary.from_text(text, min_count=3).encode("abcd"), [1, 2, 0, 0])


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=40).filter(lambda text: text != "\ufffd" * len(text)))
def test_decoding_the_encoding_of_a_text_gives_the_text_back(text):
    vocabulary = Vocabulary.from_text(text)  # U+FFFD, if the text holds it, is the unknown token's symbol
    assert vocabulary.decode(vocabulary.encode(text)) == text
    words = Vocabulary(["x"], level="word")
    # at the word level the tokens come back, whatever white space separated them
    if words.tokens(text):
        word_vocabulary = Vocabulary.from_text(text, level="word")
        assert words.tokens(word_vocabulary.decode(word_vocabulary.encode(text))) == words.tokens(text)


@pytest.mark.parametrize("arguments, error, message", [
    ((["a", "a"],), ValueError, "distinct, but 'a' appears more than once"),
    ((["ab"],), ValueError, "single characters, got 'ab'"),
    ((["a b"], "word"), ValueError, "words, punctuation marks or a line break"),
    (([1],), TypeError, "symbols must be strings, got int"),
    (("abc",), TypeError, "not one string"),
    ((["a"], "byte"), ValueError, "level must be one of char, word"),
    ((["\ufffd"],), ValueError, "is the unknown token's"),
    ((["\ud800"],), ValueError, "lone surrogate"),
])
def test_a_vocabulary_that_text_could_not_give_is_refused_saying_why(arguments, error, message):
    with pytest.raises(error, match=message):
        Vocabulary(*arguments)


def test_an_empty_text_or_too_high_a_min_count_gives_no_vocabulary():
    with pytest.raises(ValueError, match="no symbol that appears at least 1 time"):
        Vocabulary.from_text("")
    with pytest.raises(ValueError, match="at least 5 time"):
        Vocabulary.from_text("abc", min_count=5)
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        Vocabulary.from_text(b"abc")


def test_decode_refuses_ids_outside_the_vocabulary():
    vocabulary = Vocabulary.from_text("ab")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 3\) .* got 3 at position 1"):
        vocabulary.decode([1, 3])
    with pytest.raises(ValueError, match="integer token ids"):
        vocabulary.decode([0.5])


@pytest.mark.parametrize("level", ["char", "word"])
def test_the_metadata_record_is_plain_json_and_rebuilds_an_equal_vocabulary(level):
    vocabulary = Vocabulary.from_text("Hello, wörld.\nNew line", level=level)
    record = json.loads(json.dumps(vocabulary.to_metadata()))
    assert set(record) == {"level", "unknown", "symbols"}
    restored = Vocabulary.from_metadata(record)
    assert restored == vocabulary and restored.to_metadata() == vocabulary.to_metadata()
    np.testing.assert_array_equal(restored.encode("Hello wörld"), vocabulary.encode("Hello wörld"))


# The fuzzed records draw mostly from a small alphabet with a character of each kind: word characters,
# punctuation, spaces, a line break and a lone surrogate (which UTF-8 cannot write).
FUZZ_ALPHABET = "ab1_é.,? \t\n\ud800"


def is_word(symbol):
    """A word symbol by its definition: a line break, a run of word characters (str.isalnum, or "_": what
    Python's \\w matches) or one other character that is not white space."""
    return (symbol == "\n" or (symbol != "" and all(character.isalnum() or character == "_" for character in symbol))
            or (len(symbol) == 1 and not symbol.isspace()))


def is_valid_record(record):
    """Whether ``record`` describes a vocabulary, from the definition (not from numnet's checks)."""
    if not isinstance(record, dict) or set(record) != {"level", "unknown", "symbols"}:
        return False
    level, unknown, symbols = record["level"], record["unknown"], record["symbols"]
    if level not in ("char", "word") or not isinstance(unknown, str) or not unknown or "\ud800" in unknown:
        return False
    if level == "word" and any(character.isspace() for character in unknown):
        return False
    if not isinstance(symbols, list) or not all(isinstance(symbol, str) for symbol in symbols):
        return False
    if len(set(symbols)) != len(symbols) or unknown in symbols or any("\ud800" in symbol for symbol in symbols):
        return False
    if level == "char":
        return all(len(symbol) == 1 for symbol in symbols)
    return all(is_word(symbol) for symbol in symbols)


def check_record(record):
    """A record is read back exactly when it is valid, and refused with ValueError or TypeError otherwise."""
    try:
        vocabulary = Vocabulary.from_metadata(record)
    except (ValueError, TypeError):
        assert not is_valid_record(record), f"a valid record was refused: {record!r}"
        return
    assert is_valid_record(record), f"an invalid record was read: {record!r}"
    assert vocabulary.to_metadata() == record


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(FUZZ_ALPHABET, max_size=3),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8)
symbols_lists = st.lists(st.text(FUZZ_ALPHABET, max_size=3), max_size=6)
vocabulary_records = st.one_of(
    json_values,
    st.fixed_dictionaries({"level": st.sampled_from(["char", "word", "Char", ""]) | json_values,
                           "unknown": st.sampled_from(["\ufffd", "<unk>", "?"]) | st.text(FUZZ_ALPHABET, max_size=3),
                           "symbols": symbols_lists | json_values},
                          optional={"extra": json_values}),
    st.fixed_dictionaries({"level": st.just("char"), "unknown": st.just("?"),
                           "symbols": st.lists(st.characters(codec="utf-8"), unique=True, max_size=8)}),
)


@settings(max_examples=fuzz_cases(300), deadline=None)
@given(vocabulary_records)
def test_fuzzed_vocabulary_records_are_read_exactly_when_valid(record):
    check_record(record)


def test_fuzzed_bytes_of_a_vocabulary_record_are_read_exactly_when_valid():
    valid = json.dumps(Vocabulary.from_text("ab a1. b,\n_?", level="word").to_metadata()).encode("utf-8")
    rng = np.random.default_rng(20270105)
    outcomes = {"read": 0, "refused": 0}
    for _ in range(fuzz_cases(300)):
        try:
            record = json.loads(mutate(valid, rng).decode("utf-8"))
        except ValueError:  # bytes that are no longer JSON: the model file's reader refuses them earlier
            continue
        check_record(record)
        outcomes["read" if is_valid_record(record) else "refused"] += 1
    assert outcomes["read"] and outcomes["refused"], outcomes


# ---------------------------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------------------------


def book_batches(corpus, batch_size, time_size):
    """The batches of one epoch of Deep Learning from Scratch 2's RnnlmTrainer, its indexing written out."""
    xs, ts = corpus[:-1], corpus[1:]
    data_size = len(xs)
    jump = data_size // batch_size
    offsets = [i * jump for i in range(batch_size)]
    time_idx = 0
    for _ in range(data_size // (batch_size * time_size)):  # max_iters
        batch_x = np.empty((batch_size, time_size), dtype=np.int64)
        batch_t = np.empty((batch_size, time_size), dtype=np.int64)
        for time in range(time_size):
            for i, offset in enumerate(offsets):
                batch_x[i, time] = xs[(offset + time_idx) % data_size]
                batch_t[i, time] = ts[(offset + time_idx) % data_size]
            time_idx += 1
        yield batch_x, batch_t


@pytest.mark.parametrize("n_tokens, batch_size, time_steps", [(13, 2, 3), (100, 4, 5), (57, 3, 7), (9, 1, 8)])
def test_stream_batches_are_the_books_batches_in_order(n_tokens, batch_size, time_steps):
    corpus = np.random.default_rng(n_tokens).integers(0, 50, size=n_tokens)
    X, y = stream_batches(corpus, batch_size, time_steps)
    expected = list(book_batches(corpus, batch_size, time_steps))
    assert X.shape == y.shape == (len(expected) * batch_size, time_steps) and X.dtype == np.int64
    for k, (batch_x, batch_t) in enumerate(expected):
        np.testing.assert_array_equal(X[k * batch_size:(k + 1) * batch_size], batch_x, err_msg=f"batch {k}")
        np.testing.assert_array_equal(y[k * batch_size:(k + 1) * batch_size], batch_t, err_msg=f"batch {k}")


def test_windows_tile_the_stream_by_default_and_overlap_with_a_smaller_stride():
    X, y = windows(np.arange(10), 3)  # windows at 0, 3, 6; the last target is token 9
    np.testing.assert_array_equal(X, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    np.testing.assert_array_equal(y, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    X, y = windows(np.arange(5), 3, stride=1)
    np.testing.assert_array_equal(X, [[0, 1, 2], [1, 2, 3]])
    np.testing.assert_array_equal(y, [[1, 2, 3], [2, 3, 4]])


def test_a_stream_too_short_for_the_layout_is_refused_with_the_length_it_needs():
    with pytest.raises(ValueError, match="at least batch_size·time_steps \\+ 1 = 13 tokens"):
        stream_batches(np.arange(12), 3, 4)
    with pytest.raises(ValueError, match="at least 5 tokens"):
        windows(np.arange(4), 4)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        stream_batches(np.arange(12), 0, 4)
    with pytest.raises(ValueError, match="token ids of shape"):
        windows(np.zeros((3, 4), dtype=int), 2)


def language_model(vocabulary_size, *, embedding=3, hidden=4, kind="LSTM", stateful=False, seed=0,
                   dtype="float64"):
    recurrent = getattr(numnet, kind)(embedding, hidden, stateful=stateful)
    return numnet.Network(layers=[numnet.Embedding(vocabulary_size, embedding), recurrent,
                                  numnet.Dense(hidden, vocabulary_size, "softmax")], dtype=dtype, seed=seed)


def torch_language_model(network):
    """PyTorch's Embedding, LSTM and Linear holding ``network``'s weights (float64), the LSTM's bias_hh fixed
    at zero."""
    torch = pytest.importorskip("torch")
    embedding_layer, lstm_layer, dense_layer = network.layers
    embedding = torch.nn.Embedding(*embedding_layer.params["W"].shape).double()
    lstm = torch.nn.LSTM(lstm_layer.input_size, lstm_layer.hidden_size, batch_first=True).double()
    linear = torch.nn.Linear(*dense_layer.params["W"].shape).double()
    with torch.no_grad():
        embedding.weight.copy_(torch.tensor(np.array(embedding_layer.params["W"])))
        lstm.weight_ih_l0.copy_(torch.tensor(np.array(lstm_layer.params["Wx"])).T)
        lstm.weight_hh_l0.copy_(torch.tensor(np.array(lstm_layer.params["Wh"])).T)
        lstm.bias_ih_l0.copy_(torch.tensor(np.array(lstm_layer.params["b"])))
        lstm.bias_hh_l0.zero_()
        linear.weight.copy_(torch.tensor(np.array(dense_layer.params["W"])).T)
        linear.bias.copy_(torch.tensor(np.array(dense_layer.params["b"])))
    # numnet's one b is PyTorch's two biases summed: the second stays zero and out of training, or SGD would
    # move the sum twice as far
    lstm.bias_hh_l0.requires_grad_(False)
    return embedding, lstm, linear


def test_fit_on_the_stream_layout_with_a_stateful_lstm_is_the_books_truncated_bptt_loop_in_pytorch():
    """Two epochs of plain SGD: numnet's fit on stream_batches equals PyTorch over the book's batches, the
    state (h, c) carried from each batch into the next, detached between them (and across the epochs)."""
    torch = pytest.importorskip("torch")
    vocabulary_size, batch_size, time_steps, learning_rate = 5, 2, 3, 0.5
    corpus = np.random.default_rng(4).integers(0, vocabulary_size, size=20)  # 3 batches of 2 streams
    network = language_model(vocabulary_size, stateful=True)
    embedding, lstm, linear = torch_language_model(network)
    X, y = stream_batches(corpus, batch_size, time_steps)
    network.fit(X, y, epochs=2, batch_size=batch_size, shuffle=False, optimizer="sgd",
                learning_rate=learning_rate, seed=0)

    parameters = [*embedding.parameters(), *lstm.parameters(), *linear.parameters()]
    optimizer = torch.optim.SGD(parameters, lr=learning_rate)
    state = None
    for _ in range(2):
        for batch_x, batch_t in book_batches(corpus, batch_size, time_steps):
            optimizer.zero_grad()
            hidden, state = lstm(embedding(torch.tensor(batch_x)), state)
            logits = linear(hidden)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocabulary_size),
                                                     torch.tensor(batch_t).reshape(-1))
            loss.backward()
            optimizer.step()
            state = tuple(part.detach() for part in state)  # truncated backpropagation through time
    embedding_layer, lstm_layer, dense_layer = network.layers
    expected = {"W": (embedding_layer, embedding.weight), "Wx": (lstm_layer, lstm.weight_ih_l0.T),
                "Wh": (lstm_layer, lstm.weight_hh_l0.T), "b": (lstm_layer, lstm.bias_ih_l0 + lstm.bias_hh_l0),
                "dense W": (dense_layer, linear.weight.T), "dense b": (dense_layer, linear.bias)}
    for name, (layer, tensor) in expected.items():
        np.testing.assert_allclose(layer.params[name.split()[-1]], tensor.detach().numpy(), rtol=TORCH_TOLERANCE,
                                   atol=TORCH_TOLERANCE, err_msg=name)
    for key, value in zip(("h", "c"), state):
        np.testing.assert_allclose(network.carried_state()["lstm_1"][key], value[0].numpy(),
                                   rtol=TORCH_TOLERANCE, atol=TORCH_TOLERANCE, err_msg=key)


# ---------------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------------


def torch_next_logits(modules, ids):
    """PyTorch's logits at the last position of ``ids``, read whole from zeros."""
    torch = pytest.importorskip("torch")
    embedding, lstm, linear = modules
    with torch.no_grad():
        return linear(lstm(embedding(torch.tensor(np.array(ids))[None]))[0])[0, -1].numpy()


SYMBOLS = "abcdefg"  # 8 ids with the unknown token


def test_greedy_generation_takes_pytorchs_most_likely_token_at_every_step():
    vocabulary = Vocabulary(list(SYMBOLS))
    network = language_model(len(vocabulary), embedding=4, hidden=6, seed=3)
    modules = torch_language_model(network)
    ids = list(vocabulary.encode("bad"))
    for _ in range(12):
        ids.append(int(np.argmax(torch_next_logits(modules, ids))))
    expected = vocabulary.decode(ids[3:])
    assert generate(network, vocabulary, "bad", 12, temperature=0) == expected
    assert generate(network, vocabulary, "bad", 12, temperature=1e-300, seed=0) == expected  # the limit


def test_the_first_token_is_drawn_from_softmax_of_the_logits_over_the_temperature_among_the_top_k():
    vocabulary = Vocabulary(list(SYMBOLS))
    network = language_model(len(vocabulary), embedding=4, hidden=6, seed=5)
    logits = torch_next_logits(torch_language_model(network), vocabulary.encode("ce"))
    temperature, top_k, draws = 0.5, 4, 2000
    kept = np.argsort(-logits)[:top_k]
    expected = np.zeros(len(vocabulary))
    expected[kept] = np.exp((logits[kept] - logits.max()) / temperature)
    expected /= expected.sum()
    drawn = [generate(network, vocabulary, "ce", 1, temperature=temperature, top_k=top_k, seed=seed)
             for seed in range(draws)]
    frequencies = np.array([drawn.count(vocabulary.decode([index])) for index in range(len(vocabulary))]) / draws
    assert np.all(frequencies[expected == 0] == 0)  # nothing outside the top k
    # Five standard errors of a frequency over 2000 draws: a fixed set of seeds, so the test is deterministic
    np.testing.assert_array_less(np.abs(frequencies - expected), 5 * np.sqrt(expected * (1 - expected) / draws) + 1e-12)


def test_the_same_seed_gives_the_same_text_and_another_seed_another():
    vocabulary = Vocabulary(list(SYMBOLS))
    network = language_model(len(vocabulary), kind="GRU", seed=1)
    text = generate(network, vocabulary, "a", 40, seed=7)
    assert len(text) == 40 and text == generate(network, vocabulary, "a", 40, seed=7)
    assert text != generate(network, vocabulary, "a", 40, seed=8)
    rng = np.random.default_rng(7)
    assert generate(network, vocabulary, "a", 40, seed=rng) == text  # a Generator is used as it is


class Identity(numnet.Layer):
    """A layer that says nothing of positions (``position_wise`` left False): generation must read the
    whole text at every step."""

    def forward(self, x, training=False, rng=None):
        return x

    def backward(self, grad_output, propagate=True):
        return grad_output


@pytest.mark.parametrize("return_sequences", [True, False], ids=["every step", "last step"])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_feeding_one_token_per_step_gives_the_text_of_reading_it_whole_every_step(kind, return_sequences):
    """A network with a layer that is not position-wise is read whole at every step: the same text, whether
    the recurrent layer returns every step's output or only the last."""
    vocabulary = Vocabulary(list(SYMBOLS))
    layers = [numnet.Embedding(len(vocabulary), 3), getattr(numnet, kind)(3, 4, return_sequences=return_sequences),
              numnet.Dense(4, len(vocabulary), "softmax")]
    stepped = numnet.Network(layers=layers, dtype="float64", seed=2)
    whole = numnet.Network(layers=[*(layer.from_config(layer.config()) for layer in layers[:2]), Identity(),
                                   layers[2].from_config(layers[2].config())], dtype="float64")
    for source, target in zip(stepped.layers, [whole.layers[0], whole.layers[1], whole.layers[3]]):
        for key, value in source.params.items():
            target.params[key][...] = value
    for temperature in (0, 1.0):
        assert (generate(stepped, vocabulary, "fab", 30, temperature=temperature, seed=4)
                == generate(whole, vocabulary, "fab", 30, temperature=temperature, seed=4))


def test_a_network_that_reads_one_hot_rows_generates_as_one_with_an_identity_embedding():
    vocabulary = Vocabulary(list(SYMBOLS))
    one_hot = numnet.Network(layers=[numnet.GRU(len(vocabulary), 5), numnet.Dense(5, len(vocabulary), "softmax")],
                             dtype="float64", seed=6)
    embedded = numnet.Network(layers=[numnet.Embedding(len(vocabulary), len(vocabulary)),
                                      numnet.GRU(len(vocabulary), 5), numnet.Dense(5, len(vocabulary), "softmax")],
                              dtype="float64")
    embedded.layers[0].params["W"][...] = np.eye(len(vocabulary))  # id k looks up the one-hot row k
    for source, target in zip(one_hot.layers, embedded.layers[1:]):
        for key, value in source.params.items():
            target.params[key][...] = value
    assert (generate(one_hot, vocabulary, "gag", 25, seed=2) == generate(embedded, vocabulary, "gag", 25, seed=2))


def test_generation_leaves_the_weights_and_the_carried_state_of_training_untouched():
    vocabulary = Vocabulary(list(SYMBOLS))
    network = language_model(len(vocabulary), stateful=True)
    X, y = stream_batches(np.random.default_rng(0).integers(0, 8, size=40), 2, 4)
    network.fit(X, y, epochs=1, batch_size=2, shuffle=False, seed=0)
    parameters, carried = network.flat_parameters.copy(), network.carried_state()
    generate(network, vocabulary, "abc", 20, seed=0)
    np.testing.assert_array_equal(network.flat_parameters, parameters)
    for key, value in carried["lstm_1"].items():
        np.testing.assert_array_equal(network.carried_state()["lstm_1"][key], value)


def test_a_symbol_outside_the_vocabulary_in_the_prompt_is_fed_as_the_unknown_token():
    vocabulary = Vocabulary(list(SYMBOLS))
    network = language_model(len(vocabulary))
    assert generate(network, vocabulary, "a?b", 10, seed=1) == generate(network, vocabulary, "a\ufffdb", 10, seed=1)


@pytest.mark.parametrize("setup, error, message", [
    (lambda: (language_model(8), None, "a"), ValueError, "needs the vocabulary the network was trained with"),
    (lambda: (language_model(6), Vocabulary(list(SYMBOLS)), "a"), ValueError,
     "gives 6 outputs per step but the vocabulary has 8 ids"),
    (lambda: (language_model(8), Vocabulary(list(SYMBOLS)), ""), ValueError, "at least one symbol"),
    (lambda: (numnet.Network([3, 8], output_activation="linear"), Vocabulary(list(SYMBOLS)), "a"), ValueError,
     "loss is 'mse'"),
    (lambda: ("network", Vocabulary(list(SYMBOLS)), "a"), TypeError, "must be a numnet Network"),
    (lambda: (language_model(8), ["a"], "a"), TypeError, "must be a numnet.text.Vocabulary"),
])
def test_generation_refuses_what_it_cannot_sample_from_saying_why(setup, error, message):
    network, vocabulary, prompt = setup()
    with pytest.raises(error, match=message):
        generate(network, vocabulary, prompt, 5)
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        generate(language_model(8), Vocabulary(list(SYMBOLS)), "a", 5, temperature=-1)


@pytest.fixture(scope="module")
def abc_model():
    """A small LSTM trained on "abcabc...": the pattern is the oracle of what it generates."""
    text = "abc" * 40
    vocabulary = Vocabulary.from_text(text)
    X, y = windows(vocabulary.encode(text), 8, stride=2)
    network = language_model(len(vocabulary), embedding=4, hidden=8, seed=0)
    network.fit(X, y, epochs=30, batch_size=8, optimizer="adam", learning_rate=0.05, seed=0)
    network.vocabulary = vocabulary
    return network


def test_a_model_trained_on_a_repeated_pattern_continues_it_greedily(abc_model):
    assert generate(abc_model, prompt="a", length=14, temperature=0) == "bcabcabcabcabc"
    assert generate(abc_model, prompt="bcab", length=5, temperature=0) == "cabca"


def test_a_saved_model_keeps_its_vocabulary_and_generates_the_same_text(tmp_path, abc_model):
    path = numnet.save_model(abc_model, tmp_path / "abc.npz")
    loaded = numnet.load_model(path)
    assert loaded.vocabulary == abc_model.vocabulary
    expected = generate(abc_model, abc_model.vocabulary, "ca", 30, temperature=1.5, top_k=3, seed=11)
    assert generate(loaded, prompt="ca", length=30, temperature=1.5, top_k=3, seed=11) == expected


def read_document(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(np.load(io.BytesIO(archive.read("numnet.json.npy"))).tobytes().decode("utf-8"))


def write_document(path, document):
    """The model file at ``path`` with its JSON document replaced (its arrays untouched)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8))
    members["numnet.json.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_model_without_a_vocabulary_is_saved_as_before_and_loads_without_one(tmp_path):
    network = language_model(8)
    path = numnet.save_model(network, tmp_path / "plain.npz")
    assert "vocabulary" not in read_document(path)
    assert numnet.load_model(path).vocabulary is None
    vocabulary = Vocabulary(list(SYMBOLS))
    path = numnet.save_model(network, tmp_path / "given.npz", vocabulary=vocabulary)
    assert read_document(path)["vocabulary"] == vocabulary.to_metadata()
    with pytest.raises(TypeError, match="vocabulary must be a numnet.text.Vocabulary, got dict"):
        numnet.save_model(network, tmp_path / "bad.npz", vocabulary=vocabulary.to_metadata())


@pytest.mark.parametrize("damage, message", [
    (lambda record: record.update(symbols=["a", "a"]), "distinct"),
    (lambda record: record.update(level="bytes"), "level must be one of char, word"),
    (lambda record: record.pop("unknown"), "misses \\['unknown'\\]"),
    (lambda record: record.update(symbols="abc"), "must be a list of strings"),
])
def test_a_damaged_vocabulary_in_a_model_file_is_refused_naming_the_file_and_the_problem(tmp_path, damage, message):
    path = numnet.save_model(language_model(8), tmp_path / "model.npz", vocabulary=Vocabulary(list(SYMBOLS)))
    document = read_document(path)
    damage(document["vocabulary"])
    write_document(path, document)
    with pytest.raises(CorruptFileError, match=f"{re.escape(str(path))}.*its vocabulary is invalid.*{message}"):
        numnet.load_model(path)


# ---------------------------------------------------------------------------------------------------------
# load_text
# ---------------------------------------------------------------------------------------------------------


def test_load_text_reads_any_line_breaks_as_newlines_and_drops_a_byte_order_mark(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_bytes(UTF8_BOM + "Zwei Zeilen\r\nmit Umlaut: ä\rund Ende\n".encode("utf-8"))
    assert load_text(path) == "Zwei Zeilen\nmit Umlaut: ä\nund Ende\n"
    path.write_bytes("café".encode("latin-1"))
    assert load_text(str(path), encoding="latin-1") == "café"


def test_load_text_says_what_is_wrong_with_a_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="text file not found: .*absent.txt"):
        load_text(tmp_path / "absent.txt")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        load_text(tmp_path)
    (tmp_path / "empty.txt").write_bytes(UTF8_BOM)
    with pytest.raises(DataFileError, match="empty.txt is empty"):
        load_text(tmp_path / "empty.txt")
    (tmp_path / "latin1.txt").write_bytes("ok\nnot ok: café\n".encode("latin-1"))
    # "ok\n" is 3 bytes, "not ok: caf" 11 more: é (0xe9) is byte 14, on line 2
    with pytest.raises(DataFileError, match=r"latin1.txt, line 2: not UTF-8 text \(byte 0xe9 at offset 14.*"
                                            r"encoding='latin-1'"):
        load_text(tmp_path / "latin1.txt")
    with pytest.raises(ValueError, match="unknown text encoding 'klingon'"):
        load_text(tmp_path / "latin1.txt", encoding="klingon")


TEXT_ALPHABET = ["a", "Z", " ", "\n", "\r\n", "\r", "é", "€", "😀", "\t", "."]


def expected_text(raw):
    """What load_text must return for ``raw`` (Python's strict UTF-8 decoder, BOM dropped, line breaks as
    \\n), or None when it must refuse the file."""
    body = raw[len(UTF8_BOM):] if raw.startswith(UTF8_BOM) else raw
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n") or None


def check_refusal_names_the_first_bad_byte(raw, path):
    """A file refused for its bytes: the message's offset is where the valid UTF-8 ends, on the line named."""
    try:
        load_text(path)
    except DataFileError as error:
        found = re.search(r"line (\d+): not UTF-8 text \(byte 0x[0-9a-f]{2} at offset (\d+)", str(error))
        if found is None:
            assert raw in (b"", UTF8_BOM), f"an unexplained refusal: {error}"
            return
        line, offset = int(found[1]), int(found[2])
        start = len(UTF8_BOM) if raw.startswith(UTF8_BOM) else 0
        raw[start:offset].decode("utf-8")  # everything before the offset is text
        with pytest.raises(UnicodeDecodeError) as failure:
            raw[offset:].decode("utf-8")
        assert failure.value.start == 0  # and the bytes at the offset are not
        assert line == len(re.split(rb"\r\n|\r|\n", raw[:offset]))


def test_fuzzed_text_files_load_exactly_or_raise_a_data_file_error_naming_the_file(tmp_path):
    tally = Tally(DataFileError)
    rng = np.random.default_rng(20270106)
    for case in range(fuzz_cases(300)):
        path = tmp_path / f"case{case % 10}.txt"
        pieces = rng.choice(TEXT_ALPHABET, size=int(rng.integers(0, 30)))
        raw = (UTF8_BOM if rng.random() < 0.2 else b"") + "".join(pieces).encode("utf-8")
        if rng.random() < 0.6:
            raw = mutate(raw, rng)
        path.write_bytes(raw)
        loaded = tally.run(case, load_text, path)
        expected = expected_text(raw)
        assert loaded == expected, f"fuzz case {case}: {raw!r} read as {loaded!r}, expected {expected!r}"
        if loaded is None:
            check_refusal_names_the_first_bad_byte(raw, path)
    tally.report("text files")
    assert tally.counts["loaded"] and tally.counts["rejected"]


# ---------------------------------------------------------------------------------------------------------
# The census names (the text extra)
# ---------------------------------------------------------------------------------------------------------


def test_the_census_names_are_lowercase_lines_in_a_fixed_order():
    pytest.importorskip("names")
    first, last, every = (load_names(kind).splitlines() for kind in ("first", "last", "all"))
    # The 1990 census's most common female, male and last names head the lists
    assert first[:5] == ["mary", "patricia", "linda", "barbara", "elizabeth"] and "james" in first
    assert last[:3] == ["smith", "johnson", "williams"]
    assert (len(first), len(last), len(every)) == (5163, 88799, 91910)
    first_names = set(first)
    assert every == first + [name for name in last if name not in first_names]  # each name at its first place
    assert len(set(every)) == len(every) and all(re.fullmatch("[a-z]+", name) for name in every)
    # The same bytes on every Python version and system (names 0.3.0's lists)
    text = load_names()
    assert text.endswith("\n") and text == load_names()
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == \
        "7688c4c0d572ce0a6b040d959815e920bf0d99ed507f00e22dafc383a776f3f3"


def test_the_census_names_without_their_package_say_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "names", None)  # an import of names now fails
    with pytest.raises(MissingDependencyError, match=r"pip install 'numnet\[text\]'"):
        load_names()
    with pytest.raises(ValueError, match="kind must be one of all, first, last"):
        load_names("middle")
