"""The reference-experiments runner (numnet.experiments): the long ones in quick mode, and the HTML report.

E1, E2, E6 and E7 run through the command line in tests/test_cli.py; here E3, E4, E5 and E12 run in-process
with quick schedules. Oracles: the reference numbers of the experiments' specifications (the "Specification"
section of each docs/tutorials/eNN-*.md page), closed forms, and tiny MNIST-format
files written here byte by byte (the IDX layout: two zero bytes, type 0x08, the number of dimensions, each
dimension as a big-endian uint32, then the bytes).
"""

import base64
import struct

import numpy as np
import pytest

from numnet import Network, experiments
from numnet.initializers import Normal
from numnet.experiments import NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED, ExperimentResult

pytest.importorskip("matplotlib")


def row(result, quantity_start):
    """The (quantity, numnet, reference, verdict) row whose quantity starts with ``quantity_start``."""
    matches = [entry for entry in result.rows if entry[0].startswith(quantity_start)]
    assert len(matches) == 1, f"{quantity_start!r} matches {len(matches)} rows of {result.rows}"
    return matches[0]


def embedded_images(report):
    """The number of <img> tags and of base64 PNG data URIs in the report."""
    return report.count("<img "), report.count('src="data:image/png;base64,')


@pytest.fixture(scope="module")
def quick_e3_e4(tmp_path_factory):
    """E3 and E4 in quick mode, and their report (about 8 s together)."""
    folder = tmp_path_factory.mktemp("experiments")
    results = experiments.run_experiments(["e3", "E4"], folder, quick=True)
    report = experiments.write_report(results, folder / "report.html")
    return results, report.read_text(encoding="utf-8")


def test_quick_e3_reports_relu_vs_sigmoid_with_the_reference_numbers(quick_e3_e4):
    e3 = quick_e3_e4[0][0]
    assert e3.id == "E3"
    for quantity, reference in (("relu: final loss", "0.11"), ("relu: training accuracy", "0.99"),
                                ("sigmoid: final loss", "0.47"), ("sigmoid: training accuracy", "0.96")):
        assert row(e3, quantity)[2] == reference
        # 2,000 of 50,000 iterations cannot be judged against the full run's numbers.
        assert row(e3, quantity)[3] == NOT_COMPARABLE


def test_quick_e3_shows_the_vanishing_gradient_lesson(quick_e3_e4):
    e3 = quick_e3_e4[0][0]
    relu_loss, sigmoid_loss = (float(value) for value in row(e3, "loss at iteration 1,000")[1].split(" / "))
    assert sigmoid_loss > relu_loss
    assert float(row(e3, "mean |dC/dW| of the first layer over iterations 1-1,000")[1]) < 0.5
    captions = " ".join(caption for caption, _ in e3.figures)
    assert "relu net" in captions and "sigmoid net" in captions and "Mean |dC/dW|" in captions


def test_quick_e4_sound_recipe_exceeds_97_percent_and_the_write_up_recipe_is_poor(quick_e3_e4):
    e4 = quick_e3_e4[0][1]
    assert float(row(e4, "sound recipe: test accuracy")[1]) > 0.97
    assert float(row(e4, "write-up recipe")[1]) < 0.9
    assert all(entry[3] == REPRODUCED for entry in e4.rows)


def test_the_report_embeds_every_figure_and_shows_the_reference_figures(quick_e3_e4):
    results, report = quick_e3_e4
    figures = [path for result in results for _, path in result.figures]
    assert len(figures) == 7  # E3: two decision regions, loss, gradients; E4: loss, confusion, weights
    assert embedded_images(report) == (len(figures), len(figures))
    for path in figures:
        assert base64.b64encode(path.read_bytes()).decode("ascii") in report
    for reference in ("<td>0.11</td>", "<td>0.99</td>", "<td>0.47</td>", "<td>0.96</td>", "<td>&gt; 0.97</td>"):
        assert reference in report


def test_e5_is_skipped_with_the_loaders_message_when_mnist_is_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMNET_DATA", str(tmp_path / "empty"))
    result = experiments.run_e5(tmp_path / "out", quick=True)
    assert result.skipped.startswith("MNIST files not found in")
    assert result.rows == [] and result.figures == []
    report = experiments.write_report([result], tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Skipped: MNIST files not found" in report


def write_idx(path, array):
    """An IDX file of uint8 values (type 0x08)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", size) for size in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_tiny_mnist(folder, rng):
    """300 training and 100 test 28x28 images in which the row of a bright bar gives the digit."""
    folder.mkdir(parents=True)
    for split, count in (("train", 300), ("t10k", 100)):
        labels = rng.integers(0, 10, size=count)
        images = rng.integers(0, 40, size=(count, 28, 28))
        for image, label in zip(images, labels):
            image[2 + 2 * label: 4 + 2 * label, 4:24] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels)


def test_e5_runs_on_mnist_files_and_backprop_matches_numerical_gradients(tmp_path, monkeypatch):
    write_tiny_mnist(tmp_path / "data" / "mnist", np.random.default_rng(0))
    monkeypatch.setenv("NUMNET_DATA", str(tmp_path / "data"))
    result = experiments.run_experiments(["E5"], tmp_path / "out", quick=True)[0]
    assert result.skipped is None
    # The bar's row is the label, an easy task: the sigmoid net learns it within 600 quick iterations.
    assert float(row(result, "test accuracy")[1]) > 0.9
    assert float(row(result, "largest mean |backprop - numerical|")[1]) < 1e-8
    assert len(result.figures) == 2 and all(path.is_file() for _, path in result.figures)


def test_quick_e12_runs_simpleconvnet_and_the_mlp_on_the_digits_and_says_mnist_was_not_run(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMNET_DATA", str(tmp_path / "empty"))
    result = experiments.run_experiments(["e12"], tmp_path / "out", quick=True)[0]
    assert result.id == "E12" and result.skipped is None
    assert float(row(result, "digits (1x8x8): SimpleConvNet test accuracy after 2 epochs")[1]) > 0.1  # 10 classes
    assert row(result, "digits (1x8x8): MLP 64-100-10")[3] == "information"
    cnn_against_mlp = row(result, "digits: numnet's CNN")
    assert cnn_against_mlp[2] == "the CNN is better" and cnn_against_mlp[3] == NOT_COMPARABLE
    assert row(result, "MNIST: SimpleConvNet")[1] == "not run (no MNIST files)"
    assert row(result, "MNIST: SimpleConvNet")[2] == "about 0.99 (the book, 20 epochs)"
    assert any(note.startswith("MNIST part skipped: MNIST files not found") for note in result.notes)
    assert len(result.figures) == 3 and all(path.is_file() for _, path in result.figures)
    assert result.reproduced


def test_quick_e12_trains_simpleconvnet_on_mnist_files_when_present(tmp_path, monkeypatch):
    write_tiny_mnist(tmp_path / "data" / "mnist", np.random.default_rng(1))
    monkeypatch.setenv("NUMNET_DATA", str(tmp_path / "data"))
    result = experiments.run_e12(tmp_path / "out", quick=True)
    mnist = row(result, "MNIST (1x28x28): SimpleConvNet test accuracy after 2 epochs")
    assert mnist[2] == "about 0.99 (the book, 20 epochs)" and mnist[3] == NOT_COMPARABLE
    assert 0.0 <= float(mnist[1]) <= 1.0
    assert row(result, "MNIST (1x28x28): MLP 784-100-10")[3] == "information"
    captions = " ".join(caption for caption, _ in result.figures)
    assert "MNIST (1x28x28): test accuracy per epoch" in captions and "digits (1x8x8)" in captions


def test_sampled_gradient_check_finds_a_wrong_gradient(monkeypatch):
    """A corrupted backward pass must show up as a large difference (the check is not vacuous)."""
    network = Network([4, 3, 2], activation="tanh", output_activation="softmax", dtype="float64", seed=0)
    X, y = np.random.default_rng(0).standard_normal((3, 4)), np.array([0, 1, 1])
    honest, _ = experiments.sampled_gradient_check(network, X, y, 5, np.random.default_rng(0))
    original = Network.loss_and_gradients

    def doubled(self, X, Y):
        loss = original(self, X, Y)
        self.flat_gradients *= 2
        return loss

    monkeypatch.setattr(Network, "loss_and_gradients", doubled)
    broken, _ = experiments.sampled_gradient_check(network, X, y, 5, np.random.default_rng(0))
    assert honest < 1e-8 < broken


def test_e1_untrained_shapes_are_10_by_3_then_10_by_1():
    network = Network([1, 3, 1], activation="relu", loss="mse", weight_init=Normal(0.1), bias_init=0.1, seed=0)
    assert experiments.untrained_shapes(network, np.zeros((10, 1))) == [(10, 3), (10, 1)]


def test_experiment_ids_are_normalised_and_unknown_ones_rejected():
    assert experiments.check_experiment_ids(["e2", "E1", "e2"]) == ["E2", "E1"]
    assert experiments.check_experiment_ids(None) == [f"E{number}" for number in range(1, 17)]
    with pytest.raises(ValueError, match="unknown experiment 'E99'; choose from E1, E2"):
        experiments.check_experiment_ids(["E99"])


def test_write_report_escapes_text_and_leaves_no_temporary_file(tmp_path):
    result = ExperimentResult("E9", "A <title> & more")
    result.add_row("x < y", "1", "2", NOT_REPRODUCED)
    result.notes.append("<script>alert(1)</script>")
    path = experiments.write_report([result], tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "A &lt;title&gt; &amp; more" in text and "<td>x &lt; y</td>" in text
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert [entry.name for entry in tmp_path.iterdir()] == ["report.html"]
    assert not result.reproduced


# ---------------------------------------------------------------------------------------------------------
# E8-E11: the training tricks (quick runs here; the full run's verdicts are in the closing notes)


@pytest.fixture(scope="module")
def quick_tricks(tmp_path_factory):
    """E8-E11 in quick mode on the digits (MNIST absent), and their report."""
    folder = tmp_path_factory.mktemp("tricks")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NUMNET_DATA", str(folder / "no-mnist"))
        results = experiments.run_experiments(["E8", "E9", "E10", "E11"], folder, quick=True)
    return {result.id: result for result in results}, experiments.write_report(results, folder / "report.html")


def test_quick_e8_histograms_show_what_each_initialisation_does(quick_tricks):
    e8 = quick_tricks[0]["E8"]
    for quantity in ("sigmoid, std 1", "sigmoid, std 0.01", "relu, std 0.01", "sigmoid, Xavier", "relu, Xavier",
                     "relu, He"):
        assert row(e8, quantity)[3] == REPRODUCED, row(e8, quantity)
    assert float(row(e8, "relu, He")[1]) > 0.5 > float(row(e8, "relu, Xavier")[1])
    # Even 300 iterations show the lessons: std 0.01 sits at chance, He is ahead of Xavier.
    assert float(row(e8, "digits: std 0.01")[1]) > 0.95 * np.log(10)
    he, xavier = (float(value) for value in row(e8, "digits: loss after")[1].split(" vs "))
    assert he < xavier


def test_quick_e9_sgd_zig_zags_on_the_ravine_and_trains_slowest(quick_tricks):
    e9 = quick_tricks[0]["E9"]
    for quantity in ("SGD (lr 0.95)", "Momentum:", "AdaGrad:", "Adam:"):
        assert row(e9, quantity)[3] == REPRODUCED, row(e9, quantity)
    assert row(e9, "digits: optimiser with the highest loss")[1].startswith("SGD")


def test_e9_paths_follow_the_update_rules_on_the_ravine():
    # SGD at lr 0.95 on f = x²/20 + y²: y ← y - 0.95·2y = -0.9·y, x ← x - 0.95·x/10 = 0.905·x, exactly.
    path = experiments._e9_path("sgd", 0.95)
    np.testing.assert_allclose(path[:, 1], 2.0 * (-0.9) ** np.arange(31), rtol=1e-12)
    np.testing.assert_allclose(path[:, 0], -7.0 * 0.905 ** np.arange(31), rtol=1e-12)


def test_quick_e10_and_e11_run_and_report_every_figure(quick_tricks):
    results, report = quick_tricks
    assert row(results["E10"], "digits: scales at which BatchNorm trains")[3] == NOT_COMPARABLE
    gaps = row(results["E11"], "digits: train-test accuracy gap, dropout")[1]
    assert all(0.0 <= float(value) <= 1.0 for value in gaps.split(" vs "))
    figures = [path for result in results.values() for _, path in result.figures]
    assert embedded_images(report.read_text(encoding="utf-8")) == (len(figures), len(figures))
    assert all("MNIST was not run" in " ".join(result.notes) for result in results.values())


def test_e10_batch_norm_trains_where_the_plain_network_stalls():
    # The full 20 epochs at two of the book's scales, on 1,000 standardised digits.
    _, X, y, _, _ = experiments._tricks_datasets(experiments.E10_TRAINING_SAMPLES)[0]
    for scale in (0.01, 0.001):
        plain = experiments._e10_accuracy(X, y, scale, False, epochs=experiments.E10_EPOCHS, seed=0)
        normalised = experiments._e10_accuracy(X, y, scale, True, epochs=experiments.E10_EPOCHS, seed=0)
        assert plain < experiments.STALLED_ACCURACY < experiments.E10_TRAINED_ACCURACY < normalised


def test_e11_full_run_overfits_without_regularisation_and_l2_and_dropout_shrink_the_gap(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMNET_DATA", str(tmp_path / "no-mnist"))
    result = experiments.run_e11(tmp_path)
    assert result.reproduced and all(entry[3] == REPRODUCED for entry in result.rows), result.rows


def test_the_tricks_run_on_mnist_too_when_its_files_are_present(tmp_path, monkeypatch):
    write_tiny_mnist(tmp_path / "data" / "mnist", np.random.default_rng(1))
    monkeypatch.setenv("NUMNET_DATA", str(tmp_path / "data"))
    result = experiments.run_e11(tmp_path / "out", quick=True)
    assert {entry[0].split(":")[0] for entry in result.rows} == {"digits", "MNIST"}
    assert any(caption.startswith("MNIST") for caption, _ in result.figures)
    assert "digits and MNIST" in " ".join(result.notes)


# ---------------------------------------------------------------------------------------------------------
# E13: language models (a quick run; the full run's numbers are in the tutorial's specification)


@pytest.fixture(scope="module")
def quick_e13(tmp_path_factory):
    """E13 in quick mode (about 10 s) and its report."""
    pytest.importorskip("names")
    folder = tmp_path_factory.mktemp("e13")
    result = experiments.run_experiments(["E13"], folder, quick=True)[0]
    return result, experiments.write_report([result], folder / "report.html").read_text(encoding="utf-8")


def test_quick_e13_draws_its_four_figures_and_judges_the_gradient_through_time(quick_e13):
    result, report = quick_e13
    assert result.id == "E13" and result.skipped is None
    names = [path.name for _, path in result.figures]
    assert names == ["perplexity.png", "book_gradient.png", "rnn_gradient.png", "clipping.png"]
    assert all(path.is_file() for _, path in result.figures)
    assert embedded_images(report) == (4, 4)
    # Part B does not depend on the schedule: judged in a quick run too, and as the book expects.
    through_time = [entry for entry in result.rows if "the book's product" in entry[0] or "numnet's RNN" in entry[0]]
    assert len(through_time) == 6 and all(entry[3] == REPRODUCED for entry in through_time), through_time
    # Parts A and C are judged on the full schedule only.
    for quantity in ("validation perplexity after 3 epochs, RNN vs LSTM", "validation perplexity, every model",
                     "SGD lr 3, without clipping", "SGD lr 3, clip_norm=1"):
        assert row(result, quantity)[3] == NOT_COMPARABLE
    assert result.reproduced


def test_quick_e13_lstm_and_gru_predict_names_better_than_uniform_guessing(quick_e13):
    result, _ = quick_e13
    # 26 letters, the line break and the unknown token: a uniform guess has perplexity 28.
    figures = row(result, "validation perplexity, every model")[1]
    perplexities = dict(part.split() for part in figures.replace(";", ",").split(", "))
    assert float(perplexities["LSTM"]) < 28 and float(perplexities["GRU"]) < 28
    for label in ("RNN", "LSTM", "GRU"):
        samples = row(result, f"{label}: 10 names sampled")[1].split(" (")[0].split(", ")
        assert len(samples) == 10 and all(set(name) <= set("abcdefghijklmnopqrstuvwxyz") for name in samples)


def test_quick_e13_sgd_spikes_without_clipping_and_not_with_it(quick_e13):
    # Measured on seeds 0-3: without clipping the largest loss is 9-50 times the first, with clip_norm=1
    # at most 1.4 times.
    result, _ = quick_e13
    plain, clipped = (row(result, f"SGD lr 3, {label}")[1].split(" / ")
                      for label in ("without clipping", "clip_norm=1"))
    assert float(plain[0]) > experiments.E13_SPIKE * float(plain[1])
    assert float(clipped[0]) < experiments.E13_SPIKE * float(clipped[1])


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_the_gradient_through_time_with_wh_a_multiple_of_the_identity_is_its_power(scale):
    # Zero inputs keep h at 0, where tanh' = 1: each step back multiplies the error by Whᵀ = s·I exactly, so
    # ‖dC/dxₜ‖ = s^(T-1-t)·‖dC/dx_T‖. The book's product from ones (N, H): ‖dh‖/N = s^k·√(N·H)/N after k
    # steps.
    steps, hidden = 12, 5
    norms = experiments.rnn_gradient_norms(scale * np.eye(hidden), np.zeros((3, steps, 4)))
    np.testing.assert_allclose(norms, norms[-1] * scale ** np.arange(steps - 1, -1, -1), rtol=1e-12)
    book = experiments.book_gradient_norms(scale * np.eye(3), steps=steps, rows=2)
    np.testing.assert_allclose(book, scale ** np.arange(1, steps + 1) * np.sqrt(2 * 3) / 2, rtol=1e-12)


def test_name_rows_predict_each_next_character_and_count_no_padding():
    from numnet.text import Vocabulary
    vocabulary = Vocabulary.from_text("ab\nb\n")  # ids: '\n' 1, 'a' 2, 'b' 3 (0 the unknown token)
    X, y = experiments.name_rows(["ab", "b"], vocabulary, 4)
    # "\nab\n" -> inputs 1 2 3, targets 2 3 1; "\nb\n" -> inputs 1 3, targets 3 1; then padding
    np.testing.assert_array_equal(X, [[1, 2, 3, 0], [1, 3, 0, 0]])
    np.testing.assert_array_equal(y, [[2, 3, 1, -1], [3, 1, -1, -1]])
    with pytest.raises(ValueError, match="'abcd' has 4 characters; rows of 4 steps hold at most 3"):
        experiments.name_rows(["abcd"], Vocabulary.from_text("abcd"), 4)


def test_the_bigram_baseline_counts_pairs_with_add_one_smoothing():
    # Three ids; the training pair 1 -> 2 seen twice: row 1's counts are 1 + [0, 0, 2] = [1, 1, 3], so
    # P(2 | 1) = 3/5 and one validation pair 1 -> 2 has perplexity 5/3.
    training = (np.array([[1, 1]]), np.array([[2, 2]]))
    validation = (np.array([[1, 0]]), np.array([[2, -1]]))
    assert experiments.bigram_perplexity(training, validation, 3) == pytest.approx(5 / 3, rel=1e-12)


# ---------------------------------------------------------------------------------------------------------
# E14 and E15: encoder-decoder models (quick runs; the full runs' numbers are in the tutorials)


@pytest.fixture(scope="module")
def quick_e14_e15(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e14")
    results = experiments.run_experiments(["E14", "E15"], folder, quick=True)
    return results, experiments.write_report(results, folder / "report.html").read_text(encoding="utf-8")


def test_quick_e14_trains_the_three_models_and_each_reads_answers_better_than_guessing(quick_e14_e15):
    (e14, _), report = quick_e14_e15
    assert e14.id == "E14" and [path.name for _, path in e14.figures] == ["accuracy.png"]
    for label in ("plain", "reversed", "peeky, reversed"):
        assert row(e14, f"{label}: exact-match test accuracy after 3 epochs")[2].startswith("about ")
    assert row(e14, "per-character test accuracy")[3] == REPRODUCED
    assert row(e14, "each improvement helps")[3] == NOT_COMPARABLE
    examples = row(e14, "peeky, reversed: test examples")[1].split("; ")
    assert len(examples) == 5 and all("+" in example.split(" -> ")[0] for example in examples)


def test_quick_e15_draws_its_accuracy_and_three_attention_maps(quick_e14_e15):
    (_, e15), report = quick_e14_e15
    names = [path.name for _, path in e15.figures]
    assert names == ["accuracy.png", "attention_0.png", "attention_1.png", "attention_2.png"]
    assert all(path.is_file() for _, path in e15.figures)
    assert row(e15, "per-character test accuracy")[3] == REPRODUCED
    assert embedded_images(report) == (5, 5)


def test_quick_e16_trains_a_gpt_and_an_lstm_and_draws_every_head(tmp_path):
    pytest.importorskip("names")
    result = experiments.run_experiments(["E16"], tmp_path, quick=True)[0]
    assert [path.name for _, path in result.figures] == ["loss.png", "attention.png"]
    gpt_loss = float(row(result, "GPT (")[1].split()[0])
    assert gpt_loss < np.log(28)  # below a uniform guess among the names' 28 ids
    assert len(row(result, "names sampled from the GPT")[1].split(", ")) == 8
    assert row(result, "LSTM of E13")[3] == NOT_COMPARABLE
