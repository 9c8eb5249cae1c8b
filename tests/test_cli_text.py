"""``numnet train --data text``, ``numnet generate`` and a language model under ``evaluate`` and ``doctor``,
run as a user runs them (``python -m numnet ...``) or through ``numnet.cli.main``.

Oracles: a uniform guess among the V ids of the vocabulary, whose perplexity is V (a model that learnt
anything scores below it); the perplexity recomputed here from the saved model's softmax on the held-out
windows, cut from the file's last tenth with NumPy slicing and Python's set of characters; the engine's own
constructor for the network the builder makes; Python's UTF-8 decoder for the byte offset of a bad byte.
"""

import math
import random
import re
import sys

import numpy as np
import pytest

import numnet
from numnet import cli
from numnet.cli.corpus import VALIDATION_FRACTION, load_corpus
from numnet.persistence import load_model
from test_cli import number_after, run_numnet

#: Small enough to train in a second or two: the file's sentences are a pattern an LSTM of 32 learns.
SMALL_OPTIONS = ("--epochs", "4", "--embedding", "8", "--hidden", "32", "--time-steps", "16", "--learning-rate", "0.02")
TIME_STEPS = 16
EPOCHS = 4
#: Perplexity is printed with three decimals; the model computes in float32 (a relative 1e-5 apart).
PRINTED_TOLERANCE = 5e-4 + 1e-12
FLOAT32_TOLERANCE = 1e-5
SENTENCES = ("the cat sat on the mat", "a dog ran far", "birds sing at dawn", "the dog sat on a log")


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    """A text of about 6 KB: 300 lines, each one of four sentences (a fixed draw)."""
    draw = random.Random(0)
    path = tmp_path_factory.mktemp("text") / "sentences.txt"
    path.write_text("".join(draw.choice(SENTENCES) + "\n" for _ in range(300)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def text_job(tmp_path_factory, text_file):
    """One `numnet train --data text:PATH` run, shared by several tests."""
    output = tmp_path_factory.mktemp("text-job")
    completed = run_numnet("train", "--data", f"text:{text_file}", *SMALL_OPTIONS, "--output", output)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout, output / "model.npz"


def held_out_windows(text):
    """(X, y) of the file's last tenth, from the definition: ids 1, 2, ... for the sorted distinct characters,
    the last round(n / 10) of them, windows of TIME_STEPS that tile it, targets one character later."""
    ids = {character: index for index, character in enumerate(sorted(set(text)), start=1)}
    stream = np.array([ids[character] for character in text])
    tail = stream[-round(len(stream) * VALIDATION_FRACTION):]
    n_windows = (len(tail) - 1 - TIME_STEPS) // TIME_STEPS + 1
    starts = np.arange(n_windows)[:, None] * TIME_STEPS + np.arange(TIME_STEPS)
    return tail[starts], tail[starts + 1]


def perplexity_from_probabilities(network, X, y):
    """e to the mean of -ln p(next character), the probabilities read from the model's softmax."""
    probabilities = np.asarray(network.forward(X), dtype=np.float64)  # (n, TIME_STEPS, V)
    chosen = np.take_along_axis(probabilities, y[..., None], axis=-1)[..., 0]
    return math.exp(-np.mean(np.log(chosen)))


def test_a_language_model_of_a_text_file_beats_a_uniform_guess_and_saves_its_vocabulary(text_job, text_file):
    stdout, model_path = text_job
    network = load_model(model_path)
    text = text_file.read_text(encoding="utf-8")
    assert network.vocabulary.symbols == tuple(sorted(set(text)))
    assert len(network.vocabulary) == len(set(text)) + 1  # and the unknown token
    validation = number_after("validation perplexity:", stdout)
    training = number_after("training perplexity:", stdout)
    assert math.isfinite(validation) and math.isfinite(training)
    # A uniform guess among the V ids has perplexity V; a model that learnt the sentences does far better
    assert 1.0 <= validation < len(network.vocabulary) / 2
    assert network.metadata["task"] == "language_model" and network.metadata["data"]["time_steps"] == TIME_STEPS
    assert {"training.png", "gradients.png"} <= {path.name for path in model_path.parent.iterdir()}


def test_the_printed_validation_perplexity_is_e_to_the_cross_entropy_on_the_files_last_tenth(text_job, text_file):
    stdout, model_path = text_job
    network = load_model(model_path)
    expected = perplexity_from_probabilities(network, *held_out_windows(text_file.read_text(encoding="utf-8")))
    printed = number_after("validation perplexity:", stdout)
    assert abs(printed - expected) <= PRINTED_TOLERANCE + FLOAT32_TOLERANCE * expected


def test_every_epoch_prints_its_perplexities_and_a_sample(text_job):
    stdout, _ = text_job
    epoch_lines = [line for line in stdout.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == EPOCHS
    assert all("perplexity" in line and "val_perplexity" in line for line in epoch_lines)
    samples = [line for line in stdout.splitlines() if line.startswith("  sample: ")]
    assert len(samples) == EPOCHS
    assert "sample (temperature 1, seed 0):" in stdout


def test_evaluate_prints_the_perplexity_of_the_held_out_tail(text_job, text_file):
    stdout, model_path = text_job
    completed = run_numnet("evaluate", model_path, f"text:{text_file}")
    assert completed.returncode == 0, completed.stderr
    network = load_model(model_path)
    X, y = held_out_windows(text_file.read_text(encoding="utf-8"))
    expected = perplexity_from_probabilities(network, X, y)
    assert abs(number_after("perplexity:", completed.stdout) - expected) <= PRINTED_TOLERANCE + FLOAT32_TOLERANCE * expected
    assert number_after("loss:", completed.stdout) == pytest.approx(math.log(expected), abs=5e-5 + 1e-5)
    predicted = np.asarray(network.forward(X)).argmax(axis=-1)
    assert number_after("accuracy per token:", completed.stdout) == pytest.approx(np.mean(predicted == y), abs=5e-5)
    assert f"{y.size:,} tokens in {X.shape[0]:,} windows of {TIME_STEPS}" in completed.stdout


def test_the_doctor_examines_a_language_model_on_its_text(text_job, text_file, tmp_path, capsys):
    _, model_path = text_job
    assert cli.main(["doctor", str(model_path), f"text:{text_file}", "--plot", str(tmp_path / "diagnosis.png")]) == 0
    output = capsys.readouterr().out
    assert "char-level language model, Embedding -> LSTM -> Dense" in output
    assert re.search(r"^doctor: ", output, re.MULTILINE)
    assert "unscaled_inputs" not in output  # token ids are categories, not magnitudes
    assert (tmp_path / "diagnosis.png").stat().st_size > 0


def test_generate_gives_the_same_text_for_the_same_seed_and_the_asked_length(text_job, capsys):
    _, model_path = text_job
    texts = []
    for seed in ("3", "3", "4"):
        assert cli.main(["generate", str(model_path), "--length", "120", "--seed", seed]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] and texts[0] != texts[2]
    generated = texts[0][:-1]  # print's line break
    assert len(generated) == 120  # characters, the default prompt (a line break) left out
    assert set(generated) <= set(load_model(model_path).vocabulary.symbols) | {"\ufffd"}


def test_generate_continues_a_prompt_and_greedy_decoding_needs_no_seed(text_job, capsys):
    _, model_path = text_job
    outputs = []
    for _ in range(2):
        assert cli.main(["generate", str(model_path), "--prompt", "the c", "--length", "8", "--temperature", "0"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].startswith("the c") and len(outputs[0]) == len("the c") + 8 + 1


def test_a_stateful_gru_reads_parallel_streams_and_saves_its_layout(text_file, tmp_path, capsys):
    arguments = ["train", "--data", f"text:{text_file}", "--model", "gru", "--stateful", "--batch-size", "4",
                 "--epochs", "1", "--embedding", "4", "--hidden", "8", "--time-steps", "8", "--output", str(tmp_path)]
    assert cli.main(arguments) == 0
    assert "rows of parallel streams, in order, of 8 tokens" in capsys.readouterr().out
    network = load_model(tmp_path / "model.npz")
    assert isinstance(network.layers[1], numnet.GRU) and network.layers[1].stateful
    assert network.metadata["data"]["batch_size"] == 4


def test_train_on_a_terminal_shows_the_perplexity_on_the_bar_and_the_samples_under_it(text_file, tmp_path,
                                                                                        monkeypatch, capsys):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("COLUMNS", "160")  # room for the whole bar
    status = cli.main(["train", "--data", f"text:{text_file}", "--epochs", "2", "--embedding", "4", "--hidden", "8",
                       "--time-steps", "8", "--output", str(tmp_path)])
    output = capsys.readouterr().out
    assert status == 0
    assert "2/2" in output and "loss=" in output and "validation perplexity=" in output
    assert output.count("  sample: ") == 2 and "epoch 1/2" not in output


def test_the_builder_makes_from_a_spec_what_the_engine_builds_from_those_layers(text_file):
    data = load_corpus(f"text:{text_file}")
    spec = cli.NetworkSpec(model="gru", embedding=5, hidden=7, stateful=True, dropout=0.2, l2=1e-3, dtype="float64",
                           seed=3)
    network = cli.build_network(spec, data)
    size = len(data.vocabulary)
    reference = numnet.Network(layers=[numnet.Embedding(size, 5), numnet.GRU(5, 7, stateful=True), numnet.Dropout(0.2),
                                       numnet.Dense(7, size, "softmax")],
                               loss="softmax_cross_entropy", l2=1e-3, dtype="float64", seed=3)
    assert network.summary() == reference.summary()
    for name, value in reference.parameters().items():
        np.testing.assert_array_equal(network.parameters()[name], value)


def test_the_names_corpus_holds_every_census_name_once_in_a_shuffled_order():
    pytest.importorskip("names")
    data = load_corpus("text")
    names = numnet.datasets.load_names().splitlines()
    text = data.vocabulary.decode(np.concatenate([data.train_ids, data.validation_ids]))
    assert sorted(text.splitlines()) == sorted(names) and text.endswith("\n")
    assert text.splitlines()[:50] != names[:50]
    assert len(data.validation_ids) == round(len(text) * VALIDATION_FRACTION)


def test_the_default_text_without_the_names_package_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "names", None)  # `import names` now fails as if it were not installed
    assert cli.main(["train", "--data", "text", "--output", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("numnet: error: ") and "pip install 'numnet[text]'" in error


def bad_byte_file(folder):
    """A file whose second line holds 0xff; returns its path and the offset Python's decoder reports."""
    content = "hello\nwor".encode() + b"\xff" + "ld\n".encode()
    path = folder / "latin.txt"
    path.write_bytes(content)
    with pytest.raises(UnicodeDecodeError) as caught:
        content.decode("utf-8")
    return path, caught.value.start


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """A small model that was not trained on text."""
    output = tmp_path_factory.mktemp("xor")
    assert cli.main(["train", "--data", "xor", "--epochs", "1", "--quiet", "--output", str(output)]) == 0
    return output / "model.npz"


def error_cases(folder, text_file, text_model, digits_model):
    bad_file, offset = bad_byte_file(folder)
    return {
        "mlp on text": (["train", "--data", f"text:{text_file}", "--model", "mlp"], "--model mlp is not a language model"),
        "layer string on text": (["train", "--data", f"text:{text_file}", "--model", "dense8"], "text trains one of lstm"),
        "lstm on digits": (["train", "--model", "lstm"], "--model lstm builds a language model, which trains on text"),
        "generate on a digits model": (["generate", digits_model], "this model was not trained on text"),
        "a text model evaluated on digits": (["evaluate", text_model, "digits"], "this model is a language model"),
        "a digits model evaluated on text": (["evaluate", digits_model, f"text:{text_file}"],
                                             "this model was not trained on text"),
        "predict with a text model": (["predict", text_model, text_file], "is a language model"),
        "a file that is not UTF-8": (["train", "--data", f"text:{bad_file}"], f"line 2: not UTF-8 text (byte 0xff at "
                                                                            f"offset {offset}"),
        "no file after the colon": (["train", "--data", "text:"], "names no file"),
        "a missing text file": (["train", "--data", f"text:{folder}/absent.txt"], "absent.txt"),
        "windows longer than the text": (["train", "--data", f"text:{text_file}", "--time-steps", "10000"],
                                         "fewer than the 10001"),
        "stateful without a fixed batch": (["train", "--data", f"text:{text_file}", "--stateful", "--batch-size",
                                            "full"], "give --batch-size a number"),
        "text for lr-find": (["lr-find", "--data", "text"], "which `numnet train` trains"),
    }


def test_each_mistake_with_text_is_one_line_on_stderr(text_job, text_file, digits_model, tmp_path, capsys):
    _, text_model = text_job
    for case, (arguments, phrase) in error_cases(tmp_path, text_file, text_model, digits_model).items():
        status = cli.main([str(argument) for argument in arguments] + ["--output", str(tmp_path)]
                          if arguments[0] == "train" else [str(argument) for argument in arguments])
        captured = capsys.readouterr()
        assert status == 1, case
        lines = captured.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("numnet: error: "), (case, captured.err)
        assert phrase in lines[0], (case, lines[0])


def help_text(capsys, *arguments):
    """What ``numnet *arguments --help`` prints (argparse exits with status 0 after printing it)."""
    with pytest.raises(SystemExit) as exit_status:
        cli.main([*arguments, "--help"])
    assert exit_status.value.code == 0
    return capsys.readouterr().out


def test_the_help_of_train_and_generate_describes_the_text_options(capsys):
    train = help_text(capsys, "train")
    for option in ("text:PATH", "--model", "lstm", "--level", "--embedding", "--hidden", "--time-steps",
                   "--stateful", "--temperature", "--clip-norm", "numnet generate"):
        assert option in train, option
    generate = help_text(capsys, "generate")
    for option in ("MODEL", "--prompt", "--length", "--temperature", "--top-k", "--seed"):
        assert option in generate, option
    assert "sample text from a saved language model" in help_text(capsys)
