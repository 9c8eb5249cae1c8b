"""The ``numnet`` command end to end, run as a user runs it: ``python -m numnet ...`` in a subprocess.

Oracles: scikit-learn's precision/recall/F1 for the classification report, PyTorch autograd (float64) for
the numbers `numnet explain` prints, closed forms and the reference numbers of the experiments' specifications
(docs/tutorials/eNN-*.md, "Specification") for the experiments report. Outputs go to pytest's tmp_path; plots are drawn with matplotlib's Agg backend.
"""

import ast
import base64
import csv
import dataclasses
import io
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import numnet
from numnet import cli, experiments, preprocessing
from numnet.persistence import load_model

# Generous: the default job takes ~3 s and the experiments ~6 s on an idle machine; the suite shares 2 cores.
COMMAND_TIMEOUT_SECONDS = 300
# The main job's promise (E4's sound recipe: docs/tutorials/e04-digits.md, Specification).
MAIN_JOB_ACCURACY = 0.97
# `numnet explain` prints six decimals, so a printed number is within half a unit of the sixth decimal of
# the exact value; parsed inputs are exact (the walk-through uses round numbers).
PRINTED_TOLERANCE = 5e-7 + 1e-12
# The report prints three decimals: a printed metric is within half a unit of the third decimal.
REPORT_TOLERANCE = 5e-4 + 1e-12
GRADCHECK_THRESHOLD = 1e-6


def run_numnet(*arguments, cwd=None):
    """Run ``python -m numnet *arguments`` and return the CompletedProcess (text output)."""
    environment = dict(os.environ, MPLBACKEND="Agg")
    environment.pop(cli.DEBUG_ENVIRONMENT_VARIABLE, None)
    return subprocess.run([sys.executable, "-m", "numnet", *map(str, arguments)], capture_output=True,
                          text=True, env=environment, cwd=cwd, timeout=COMMAND_TIMEOUT_SECONDS)


def number_after(label, text):
    """The number printed right after ``label`` in ``text``."""
    match = re.search(re.escape(label) + r"\s*(-?[0-9.]+(?:e[-+]?[0-9]+)?)", text)
    assert match, f"{label!r} not found in:\n{text}"
    return float(match.group(1))


# ---------------------------------------------------------------------------------------------------------
# The main job


@pytest.fixture(scope="module")
def default_job(tmp_path_factory):
    """One run of the default main job, `numnet train --quiet --output DIR`, shared by several tests."""
    output = tmp_path_factory.mktemp("default-job")
    completed = run_numnet("train", "--quiet", "--output", output)
    return completed, output


def test_default_train_exceeds_97_percent_test_accuracy_on_the_digits(default_job):
    completed, _ = default_job
    assert completed.returncode == 0, completed.stderr
    assert number_after("test accuracy:", completed.stdout) > MAIN_JOB_ACCURACY


def test_default_train_writes_the_model_and_its_plots(default_job):
    completed, output = default_job
    expected = {"model.npz", "training.png", "gradients.png", "confusion_matrix.png", "weights.png"}
    assert expected <= {path.name for path in output.iterdir()}
    network = load_model(output / "model.npz")
    assert network.layer_sizes == [64, 128, 10]
    assert network.metadata["class_names"] == [str(digit) for digit in range(10)]
    assert network.metadata["n_features"] == 64
    assert len(network.metadata["scaler"]["mean"]) == 64


def test_quiet_train_prints_only_the_summary(default_job):
    completed, _ = default_job
    assert "epoch 1/" not in completed.stdout
    assert completed.stderr == ""
    assert len(completed.stdout.splitlines()) <= 5


def test_train_with_reduced_epochs_prints_one_line_per_epoch_and_the_report(tmp_path):
    completed = run_numnet("train", "--epochs", "3", "--layers", "64,32,10", "--output", tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert [line for line in completed.stdout.splitlines() if line.startswith("epoch ")][-1].startswith("epoch 3/3")
    assert "precision" in completed.stdout and "weighted avg" in completed.stdout
    assert load_model(tmp_path / "model.npz").layer_sizes == [64, 32, 10]


def test_evaluate_prints_the_same_accuracy_as_training_and_sklearns_per_class_metrics(default_job):
    completed, output = default_job
    evaluated = run_numnet("evaluate", output / "model.npz", "digits")
    assert evaluated.returncode == 0, evaluated.stderr
    accuracy = number_after("accuracy:", evaluated.stdout)
    assert accuracy == number_after("test accuracy:", completed.stdout)
    metrics = pytest.importorskip("sklearn.metrics")
    y_test, predicted = saved_model_test_predictions(output / "model.npz")
    precision, recall, f1, support = metrics.precision_recall_fscore_support(y_test, predicted, zero_division=0)
    assert accuracy == pytest.approx(metrics.accuracy_score(y_test, predicted), abs=5e-5)
    for digit in range(10):
        printed = report_row(evaluated.stdout, str(digit))
        np.testing.assert_allclose(printed[:3], [precision[digit], recall[digit], f1[digit]], atol=REPORT_TOLERANCE)
        assert printed[3] == support[digit]


def saved_model_test_predictions(model_path):
    """The held-out digits (the split `train` documents: 80/20, stratified, seed 1) and the model's classes."""
    X, y = numnet.datasets.load_digits()
    _, X_test, _, y_test = preprocessing.train_test_split(X, y, 0.2, stratify=True, seed=1)
    network = load_model(model_path)
    scaler = network.metadata["scaler"]
    scaled = (X_test - np.array(scaler["mean"])) / np.array(scaler["scale"])
    return y_test, network.forward(scaled).argmax(axis=1)


def report_row(text, label):
    """(precision, recall, f1, support) of the report line for ``label``."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[0] == label:
            return [float(value) for value in fields[1:]]
    raise AssertionError(f"no report row for {label!r} in:\n{text}")


def test_predict_writes_one_row_per_input_with_probabilities_summing_to_one(default_job, tmp_path):
    _, output = default_job
    X, y = numnet.datasets.load_digits(dtype="float64")  # the units the model was trained in: pixels / 16
    features = tmp_path / "features.csv"
    np.savetxt(features, X[:50], delimiter=",", fmt="%.17g")
    predictions = tmp_path / "predictions.csv"
    completed = run_numnet("predict", output / "model.npz", features, "--output", predictions)
    assert completed.returncode == 0, completed.stderr
    rows = list(csv.DictReader(predictions.open()))
    assert len(rows) == 50
    probabilities = np.array([[float(row[f"probability_{digit}"]) for digit in range(10)] for row in rows])
    # Six printed decimals on each of ten probabilities: the sum is within 10 * 5e-7 of 1.
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=10 * 5e-7 + 1e-12)
    assert [row["prediction"] for row in rows] == [str(np.argmax(p)) for p in probabilities]
    # The first 50 digits include training rows, which the model fits almost perfectly.
    assert np.mean([int(row["prediction"]) for row in rows] == y[:50]) > 0.9


def test_a_csv_with_text_labels_trains_evaluates_and_predicts_class_names(tmp_path):
    pytest.importorskip("sklearn")
    path = experiments.write_iris_csv(tmp_path / "iris.csv")
    trained = run_numnet("train", "--data", path, "--quiet", "--output", tmp_path / "out")
    assert trained.returncode == 0, trained.stderr
    # Iris is easy: a linear model reaches over 0.9; the 30 test flowers allow at most 3 mistakes here.
    assert number_after("test accuracy:", trained.stdout) >= 0.9
    evaluated = run_numnet("evaluate", tmp_path / "out" / "model.npz", path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert number_after("accuracy:", evaluated.stdout) >= 0.9
    # The training file itself, header and label column included: the label column is ignored by name.
    predicted = run_numnet("predict", tmp_path / "out" / "model.npz", path)
    assert predicted.returncode == 0, predicted.stderr
    rows = list(csv.DictReader(io.StringIO(predicted.stdout)))
    assert len(rows) == 150
    assert {row["prediction"] for row in rows} <= {"setosa", "versicolor", "virginica"}
    truth = [row["species"] for row in csv.DictReader(path.open())]
    assert np.mean([row["prediction"] == label for row, label in zip(rows, truth)]) >= 0.9


def test_train_with_dropout_and_batch_norm_builds_those_layers_and_the_model_evaluates(tmp_path):
    completed = run_numnet("train", "--quiet", "--dropout", "0.2", "--batch-norm", "--epochs", "15",
                           "--output", tmp_path)
    assert completed.returncode == 0, completed.stderr
    network = load_model(tmp_path / "model.npz")
    assert [layer.kind for layer in network.layers] == ["dense", "batch_norm", "activation", "dropout", "dense"]
    assert network.layers[3].rate == 0.2 and network.layer_sizes == [64, 128, 10]
    trained_accuracy = number_after("test accuracy:", completed.stdout)
    assert trained_accuracy > MAIN_JOB_ACCURACY
    evaluated = run_numnet("evaluate", tmp_path / "model.npz", "digits")
    assert evaluated.returncode == 0, evaluated.stderr
    # evaluate rebuilds the same held-out rows: the saved running statistics give the same accuracy
    assert number_after("accuracy:", evaluated.stdout) == trained_accuracy


@pytest.mark.parametrize("rate", ["1", "-0.1", "half"])
def test_a_dropout_rate_outside_zero_to_one_is_a_usage_error(rate):
    completed = run_numnet("train", "--dropout", rate)
    assert completed.returncode == 2
    assert "argument --dropout: must be" in completed.stderr


def test_train_on_a_terminal_shows_a_tqdm_progress_bar(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    status = cli.main(["train", "--data", "xor", "--epochs", "5", "--output", str(tmp_path)])
    output = capsys.readouterr().out
    assert status == 0
    assert "5/5" in output and "epoch" in output
    assert "epoch 1/5" not in output  # the bar replaces the one-line-per-epoch log


# ---------------------------------------------------------------------------------------------------------
# gradcheck and explain


def test_gradcheck_passes_with_every_relative_error_below_1e_6():
    completed = run_numnet("gradcheck", "--layers", "3,4,4,2", "--activation", "sigmoid", "--l2", "0.1")
    assert completed.returncode == 0, completed.stderr
    errors = [float(value) for value in re.findall(r"dense_\d\.[Wb]\s+([0-9.e+-]+)\s+PASS", completed.stdout)]
    assert len(errors) == 6
    assert max(errors) < GRADCHECK_THRESHOLD
    assert "FAIL" not in completed.stdout


def test_gradcheck_exits_1_and_prints_fail_when_an_error_is_too_large(monkeypatch, capsys):
    monkeypatch.setattr(cli.gradcheck, "gradient_check", lambda network, X, y: {"dense_0.W": 1e-9, "dense_0.b": 0.3})
    assert cli.main(["gradcheck"]) == 1
    output = capsys.readouterr().out
    assert re.search(r"dense_0\.b\s+3\.00e-01\s+FAIL", output)


@pytest.fixture(scope="module")
def explained():
    """The output of one `numnet explain` run."""
    return run_numnet("explain")


def parse_matrices(text):
    """Every ``name  shape (r, c)`` block that `numnet explain` prints, as float arrays by name."""
    lines = text.splitlines()
    matrices = {}
    for index, line in enumerate(lines):
        match = re.fullmatch(r"(\S+)  shape \(([0-9, ]*)\)", line)
        if match:
            shape = tuple(int(size) for size in match.group(2).replace(" ", "").split(",") if size)
            n_rows = shape[0] if len(shape) == 2 else 1
            rows = [[float(value) for value in lines[index + 1 + row].split()] for row in range(n_rows)]
            matrices[match.group(1)] = np.array(rows).reshape(shape)
    return matrices


def test_explain_walks_through_bp1_to_bp4_and_confirms_numnet_agrees(explained):
    assert explained.returncode == 0, explained.stderr
    positions = [explained.stdout.index(f"BP{number}") for number in (1, 2, 3, 4)]
    assert positions == sorted(positions)
    assert "z1 = a0 W1 + b1" in explained.stdout and "(2, 2) x (2, 3) + (3,) -> (2, 3)" in explained.stdout
    assert "the printed gradients equal net.gradients()" in explained.stdout


def test_explain_prints_the_numbers_torch_autograd_computes(explained):
    torch = pytest.importorskip("torch")
    printed = parse_matrices(explained.stdout)
    tensors = {name: torch.tensor(printed[name], dtype=torch.float64, requires_grad=name[0] in "Wb")
               for name in ("X", "W1", "b1", "W2", "b2")}
    z1 = tensors["X"] @ tensors["W1"] + tensors["b1"]
    z1.retain_grad()
    z2 = torch.sigmoid(z1) @ tensors["W2"] + tensors["b2"]
    z2.retain_grad()
    classes = torch.tensor(printed["Y"].argmax(axis=1))
    loss = torch.nn.functional.cross_entropy(z2, classes)
    loss.backward()
    expected = {"z1": z1, "a1": torch.sigmoid(z1), "z2": z2, "a2": torch.softmax(z2, dim=1),
                "delta2": z2.grad, "delta1": z1.grad, "dC/dW1": tensors["W1"].grad, "dC/db1": tensors["b1"].grad,
                "dC/dW2": tensors["W2"].grad, "dC/db2": tensors["b2"].grad}
    for name, tensor in expected.items():
        np.testing.assert_allclose(printed[name], tensor.detach().numpy(), rtol=0, atol=PRINTED_TOLERANCE,
                                   err_msg=name)
    assert number_after("loss C = -(1/n) sum over samples of log(probability of the true class) =",
                        explained.stdout) == pytest.approx(loss.item(), abs=PRINTED_TOLERANCE)


# ---------------------------------------------------------------------------------------------------------
# experiments


def test_experiments_quick_writes_a_report_with_every_figure_and_the_reference_numbers(tmp_path):
    completed = run_numnet("experiments", "E1", "E2", "E6", "E7", "--quick", "--output", tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    figures = sorted(tmp_path.glob("E*/*.png"))
    assert len(figures) == 8  # E1: 2 fits + loss; E2: loss + regions; E6: descent; E7: training + confusion
    assert report.count('<img alt="') == report.count("data:image/png;base64,") == len(figures)
    for figure in figures:
        assert base64.b64encode(figure.read_bytes()).decode("ascii") in report
    for reference in ("(10, 3)", "(10, 1)", "4 of 4", "<td>0.2</td>", "<td>0.3</td>", "(6.000000, 8.000000)",
                      "(0.000000, 4.000000)", "(6.000000, 0.000000)", "&lt; 1e-8", "DivergenceError"):
        assert reference in report, reference
    assert "not reproduced" not in completed.stdout
    assert "E7. A CSV file" in completed.stdout


def test_experiments_rejects_an_unknown_id_with_one_line():
    completed = run_numnet("experiments", "E99")
    assert completed.returncode == 1
    assert completed.stderr.strip() == ("numnet: error: unknown experiment 'E99'; choose from E1, E2, E3, E4, E5, E6, "
                                        "E7, E8, E9, E10, E11, E12, E13, E14, E15, E16")


# ---------------------------------------------------------------------------------------------------------
# Errors: one line on stderr, a non-zero status, never a traceback


@pytest.fixture(scope="module")
def broken_files(tmp_path_factory, default_job):
    """A garbage model, a truncated copy of a real one, a features CSV with text, and a folder."""
    folder = tmp_path_factory.mktemp("broken")
    (folder / "garbage.npz").write_bytes(b"not a zip archive")
    model_bytes = (default_job[1] / "model.npz").read_bytes()
    (folder / "truncated.npz").write_bytes(model_bytes[: len(model_bytes) // 2])
    first_row, second_row = ["1"] * 64, ["1", "2", "seven"] + ["1"] * 61
    (folder / "text.csv").write_text(",".join(first_row) + "\n" + ",".join(second_row) + "\n")
    (folder / "latin1.csv").write_bytes(("é," * 63 + "1\n").encode("latin-1"))
    (folder / "a-folder").mkdir()
    return folder, default_job[1] / "model.npz"


ERROR_CASES = {
    "missing data file": (["train", "--data", "{folder}/absent.csv"], "CSV file not found"),
    "missing model file": (["evaluate", "{folder}/absent.npz", "digits"], "no numnet model file"),
    "model path is a folder": (["evaluate", "{folder}/a-folder", "digits"], "a-folder"),
    "garbage model file": (["evaluate", "{folder}/garbage.npz", "digits"], "cannot load"),
    "truncated model file": (["evaluate", "{folder}/truncated.npz", "digits"], "cannot load"),
    "non-numeric feature": (["predict", "{model}", "{folder}/text.csv"], "line 2, column 'column_2': 'seven' is not a"),
    "wrong number of feature columns": (["predict", "{model}", "{folder}/garbage.npz"], "expects 64 features"),
    "features file not UTF-8": (["predict", "{model}", "{folder}/latin1.csv"], "line 1: not UTF-8 text"),
    "first layer does not match the data": (["train", "--layers", "32,128,10"], "has 64 features"),
    "last layer does not match the classes": (["train", "--data", "xor", "--layers", "2,8,3"], "2 classes"),
    "unknown activation": (["train", "--activation", "rleu"], "did you mean 'relu'?"),
    "unknown optimizer": (["train", "--optimizer", "adma"], "unknown optimizer 'adma'"),
    "unknown loss": (["gradcheck", "--loss", "hinge"], "unknown loss 'hinge'"),
    "negative learning rate": (["train", "--learning-rate", "-1"], "must be a finite number > 0"),
    "layer sizes that are not numbers": (["train", "--layers", "64,many,10"], "comma-separated integers"),
    "malformed layer string": (["train", "--model", "conv16x3,pol2"], "'pol2' in the layer string"),
    "layer string that does not fit the images": (["train", "--model", "conv8x9"], "has a 9x9 kernel"),
    "convolutional network on data that are not images": (["train", "--model", "cnn", "--data", "spiral"],
                                                          "needs images"),
    "layer sizes with a convolutional network": (["train", "--model", "cnn", "--layers", "64,10"],
                                                 "leave --layers out"),
    "divergence": (["train", "--data", "spiral", "--optimizer", "sgd", "--learning-rate", "1e6", "--epochs", "3",
                    "--output", "{folder}/out"], "diverged"),
    "no command": ([], "choose a command"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_an_error_is_one_line_on_stderr_with_a_nonzero_status_and_no_traceback(case, broken_files):
    folder, model = broken_files
    arguments, phrase = ERROR_CASES[case]
    completed = run_numnet(*(argument.format(folder=folder, model=model) for argument in arguments))
    assert completed.returncode != 0
    assert "Traceback" not in completed.stderr + completed.stdout
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("numnet: error: ")
    assert phrase in lines[0]


def test_usage_errors_exit_2_and_runtime_errors_exit_1(broken_files):
    folder, _ = broken_files
    assert run_numnet("train", "--epochs", "zero").returncode == 2
    assert run_numnet("evaluate", folder / "garbage.npz", "digits").returncode == 1


# ---------------------------------------------------------------------------------------------------------
# A convolutional network


@pytest.fixture(scope="module")
def cnn_job(tmp_path_factory):
    """`numnet train --model cnn --quiet`: the digits CNN with the default recipe (30 epochs)."""
    output = tmp_path_factory.mktemp("cnn-job")
    return run_numnet("train", "--model", "cnn", "--quiet", "--output", output), output


def test_the_cnn_beats_the_default_mlp_on_the_digits(cnn_job, default_job):
    assert cnn_job[0].returncode == 0, cnn_job[0].stderr
    assert number_after("test accuracy:", cnn_job[0].stdout) > number_after("test accuracy:", default_job[0].stdout)
    files = {path.name for path in cnn_job[1].iterdir()}
    assert {"model.npz", "training.png", "confusion_matrix.png", "filters.png", "feature_maps.png"} <= files
    model = load_model(cnn_job[1] / "model.npz")
    assert model.input_shape == (1, 8, 8) and isinstance(model.layers[0], numnet.Conv2D)
    assert model.metadata["scaler"] is None  # the pixels are taken as loaded, in [0, 1]


def test_a_saved_cnn_evaluates_and_predicts_rows_of_pixels(cnn_job, tmp_path):
    model_path = cnn_job[1] / "model.npz"
    evaluated = run_numnet("evaluate", model_path, "digits")
    assert evaluated.returncode == 0, evaluated.stderr
    assert number_after("accuracy:", evaluated.stdout) == number_after("test accuracy:", cnn_job[0].stdout)
    X, y = numnet.datasets.load_digits()
    rows = tmp_path / "rows.csv"
    np.savetxt(rows, X[:20], delimiter=",", fmt="%.6f")
    predicted = run_numnet("predict", model_path, rows)
    assert predicted.returncode == 0, predicted.stderr
    table = list(csv.reader(io.StringIO(predicted.stdout)))
    model = load_model(model_path)
    assert [int(entry[0]) for entry in table[1:]] == list(model.predict(X[:20].reshape(-1, 1, 8, 8)))


# ---------------------------------------------------------------------------------------------------------
# Entry points


def test_version_is_printed_by_python_dash_m_and_by_the_console_script():
    assert run_numnet("--version").stdout.strip() == f"numnet {numnet.__version__}"
    script = shutil.which("numnet")
    if script is None:
        pytest.skip("the numnet console script is not on PATH (package not installed)")
    completed = subprocess.run([script, "--version"], capture_output=True, text=True,
                               timeout=COMMAND_TIMEOUT_SECONDS)
    assert completed.stdout.strip() == f"numnet {numnet.__version__}"


def test_train_resumed_from_its_checkpoint_ends_exactly_like_an_uninterrupted_run(tmp_path):
    interrupted, uninterrupted = tmp_path / "interrupted", tmp_path / "uninterrupted"
    first = run_numnet("train", "--quiet", "--epochs", 3, "--checkpoint", "--output", interrupted)
    assert first.returncode == 0, first.stderr
    assert load_model(interrupted / cli.CHECKPOINT_FILE_NAME).epochs_trained == 3
    resumed = run_numnet("train", "--quiet", "--epochs", 5, "--resume", interrupted / cli.CHECKPOINT_FILE_NAME,
                         "--output", interrupted)
    straight = run_numnet("train", "--quiet", "--epochs", 5, "--output", uninterrupted)
    assert resumed.returncode == 0 and straight.returncode == 0, resumed.stderr + straight.stderr
    assert "trained 2 epochs" in resumed.stdout
    finished, reference = (load_model(folder / cli.MODEL_FILE_NAME) for folder in (interrupted, uninterrupted))
    assert finished.epochs_trained == reference.epochs_trained == 5
    # Same batches (seed and epoch index) and the optimiser's state from the checkpoint: bit for bit.
    assert np.array_equal(finished.flat_parameters, reference.flat_parameters)
    assert finished.history.epoch_loss == reference.history.epoch_loss


def test_resume_with_no_epochs_left_is_one_clear_error(tmp_path):
    first = run_numnet("train", "--quiet", "--epochs", 2, "--checkpoint", "--output", tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_numnet("train", "--epochs", 2, "--resume", tmp_path / cli.CHECKPOINT_FILE_NAME,
                       "--output", tmp_path)
    assert again.returncode == 1
    assert again.stderr.startswith("numnet: error: ") and "already trained 2 epochs" in again.stderr
    assert "Traceback" not in again.stderr and again.stderr.count("\n") == 1


def test_train_on_the_array_api_strict_backend_matches_numpy(tmp_path):
    pytest.importorskip("array_api_strict")
    strict = run_numnet("train", "--quiet", "--epochs", 3, "--backend", "array_api_strict", "--output",
                        tmp_path / "strict")
    numpy_run = run_numnet("train", "--quiet", "--epochs", 3, "--backend", "numpy", "--output", tmp_path / "numpy")
    assert strict.returncode == 0 and numpy_run.returncode == 0, strict.stderr + numpy_run.stderr
    # The same float32 arithmetic through another array library: the same test accuracy to the printed digit.
    assert number_after("test accuracy:", strict.stdout) == number_after("test accuracy:", numpy_run.stdout)


def test_asking_for_cupy_without_it_is_one_clear_line(tmp_path):
    if shutil.which("nvidia-smi") is not None:
        pytest.skip("a GPU machine may have CuPy")
    completed = run_numnet("train", "--backend", "cupy", "--epochs", 1, "--output", tmp_path)
    assert completed.returncode == 1
    assert completed.stderr.startswith("numnet: error: backend 'cupy'") and completed.stderr.count("\n") == 1


def test_predict_reads_its_rows_with_the_data_readers_rules_and_the_training_columns(tmp_path):
    network = numnet.Network([2, 3], output_activation="softmax", seed=0)
    network.metadata = {"feature_names": ["b", "a"]}
    path = tmp_path / "rows.csv"
    path.write_text("a,label,b\n1.5,x,2e3\n-0.25,y,7\n")
    table = numnet.datasets.load_csv(path, target="label")
    np.testing.assert_array_equal(cli.read_feature_rows(path, network), table.X[:, ::-1])
    path.write_text("a,label,b\n1.5,x,1e39\n")
    with pytest.raises(numnet.DataFileError, match=r"rows\.csv, line 2, column 'b': '1e39' is beyond the range"):
        cli.read_feature_rows(path, network)


FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
# `numnet predict` prints probabilities with six decimals: within half a unit of the sixth decimal.
PREDICTED_TOLERANCE = 5e-7 + 1e-12


def test_a_model_written_by_numnet_0_2_train_predicts_its_raw_rows_as_it_did_then(tmp_path):
    # The file `numnet train --batch-norm --dropout 0.2` wrote at commit 958fab0 (tests/test_persistence.py
    # says how); its probabilities then, for raw features in the training columns' order, are the oracle.
    expected = np.load(os.path.join(FIXTURES, "predictions_v0.2.0.npz"))
    rows = tmp_path / "rows.csv"
    rows.write_text("depth,width,height\n" + "".join(f"{depth!r},{width!r},{height!r}\n" for width, height, depth
                                                     in expected["batchnorm_dropout_X_raw"].tolist()))
    completed = run_numnet("predict", os.path.join(FIXTURES, "batchnorm_dropout_v0.2.0.npz"), rows)
    assert completed.returncode == 0, completed.stderr
    table = list(csv.reader(io.StringIO(completed.stdout)))
    assert table[0] == ["prediction", "probability_a", "probability_b", "probability_c"]
    probabilities = np.array([[float(value) for value in row[1:]] for row in table[1:]])
    np.testing.assert_allclose(probabilities, expected["batchnorm_dropout_proba"], rtol=0, atol=PREDICTED_TOLERANCE)
    assert [row[0] for row in table[1:]] == [["a", "b", "c"][index]
                                             for index in expected["batchnorm_dropout_proba"].argmax(axis=1)]


# ---------------------------------------------------------------------------------------------------------
# The command as a package (issue 22)

# Every public name numnet/cli.py had in numnet 0.2.0 (commit 958fab0), importable from the package.
NAMES_OF_0_2 = (
    "BROKEN_PIPE_STATUS", "CHECKPOINT_FILE_NAME", "DATA_NAMES", "DATA_SEED", "DEBUG_ENVIRONMENT_VARIABLE",
    "DEFAULT_DATA", "DEFAULT_EXPERIMENTS_OUTPUT", "DEFAULT_OUTPUT", "DIAGNOSIS_FILE_NAME", "ERROR_PREFIX",
    "GRADCHECK_BIAS_STD", "GRADCHECK_THRESHOLD", "GRADIENT_SMOOTHING", "LINE_SAMPLES", "LR_FINDER_FILE_NAME",
    "LoadedData", "MAX_PORT", "MODEL_FILE_NAME", "RECIPES", "Recipe", "SMALLEST_WEIGHT_IMAGE",
    "SMALL_NETWORK_PARAMETERS", "SPLIT_SEED", "TEST_SIZE", "build_network", "build_parser", "command_doctor",
    "command_evaluate", "command_experiments", "command_explain", "command_export", "command_gradcheck",
    "command_lr_find", "command_playground", "command_predict", "command_train", "error_message",
    "evaluation_data", "layer_sizes_for", "load_data", "main", "network_targets", "prediction_table",
    "read_feature_rows", "scaler_from_metadata", "scaler_to_metadata", "takes_images", "training_inputs",
)


def test_every_name_numnet_cli_had_in_0_2_is_still_importable_from_it():
    missing = [name for name in NAMES_OF_0_2 if not hasattr(cli, name)]
    assert not missing, f"numnet.cli lost {missing}"
    scaler = preprocessing.StandardScaler().fit(np.array([[1.0], [3.0]]))
    assert cli.scaler_to_metadata(scaler) == {"type": "standard", "mean": [2.0], "scale": [1.0]}


def test_the_network_builder_takes_a_network_spec_and_builds_what_the_engine_builds_from_those_settings():
    data = cli.load_data("spiral", dtype="float64")
    spec = cli.NetworkSpec(layers=[2, 16, 3], activation="tanh", l2=1e-3, dropout=0.1, batch_norm=True,
                           dtype="float64", seed=5)
    network = cli.build_network(spec, data)
    # The oracle: the engine's own constructor with the same settings (and the loss classes imply).
    reference = numnet.Network([2, 16, 3], activation="tanh", loss="softmax_cross_entropy", l2=1e-3, dropout=0.1,
                               batch_norm=True, dtype="float64", seed=5)
    assert network.summary() == reference.summary()
    for name, value in reference.parameters().items():
        np.testing.assert_array_equal(network.parameters()[name], value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 6


def test_a_spec_with_the_defaults_builds_the_recipes_network_for_the_data():
    data = cli.load_data("digits")
    assert cli.build_network(cli.NetworkSpec(), data).layer_sizes == [64, *cli.RECIPES["digits"].hidden, 10]
    assert isinstance(cli.build_network(cli.NetworkSpec(model="cnn"), data).layers[0], numnet.Conv2D)


APPLICATIONS = ("numnet.cli", "numnet.experiments", "numnet.playground")


def _imported_modules(path):
    """The absolute names of the modules a numnet/*.py file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "numnet" if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names += [module, *(f"{module}.{alias.name}" for alias in node.names)]
    return names


def test_the_engine_never_imports_the_applications():
    # The layout of issue 22: the engine is numnet/*.py; the command, the experiments and the playground are
    # packages beside it that import the engine. `python -m numnet` (__main__.py) is the command's door.
    package = pathlib.Path(numnet.__file__).parent
    engine = [path for path in sorted(package.glob("*.py")) if path.name != "__main__.py"]
    assert {"network.py", "layers.py", "explain.py", "preprocessing.py"} <= {path.name for path in engine}
    wrong = [f"{path.name} imports {name}" for path in engine for name in _imported_modules(path)
             if name.startswith(APPLICATIONS)]
    assert not wrong, wrong
    assert all((package / name.split(".")[1] / "__init__.py").is_file() for name in APPLICATIONS)
