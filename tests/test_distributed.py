"""Data-parallel training over MPI agrees with one process (run only where mpi4py and mpiexec exist)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import numnet
from numnet.datasets import make_spiral

pytest.importorskip("mpi4py")
# pip installs MPICH's launcher beside the interpreter, which is not always on PATH (pyenv, venvs).
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec on PATH (pip install 'numnet[mpi]')")

WORKER = Path(__file__).with_name("mpi_worker.py")
sys.path.insert(0, str(WORKER.parent))
from mpi_worker import build_network, sample_weights, training_data  # noqa: E402 - what the ranks use
# N ranks sum the same products in another order: agreement to rounding, amplified a little by training.
RELATIVE_TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
EPOCHS = 4
BATCH_SIZE = 25  # 120 training samples: 5 global batches, the last of 20 (uneven shards on 3 ranks)


def run_ranks(n_ranks, *arguments, expect_success=True):
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [MPIEXEC, "-n", str(n_ranks), sys.executable, str(WORKER), *map(str, arguments)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment)
    if expect_success:
        assert completed.returncode == 0, completed.stderr
    return completed


def single_process_fit(dtype, architecture="mlp", batch_size=BATCH_SIZE, sample_weight=None):
    X, y = training_data(architecture)
    network = build_network(architecture, dtype)
    history = network.fit(X, y, sample_weight=sample_weight, epochs=EPOCHS, batch_size=batch_size,
                          optimizer="adam", learning_rate=0.01, seed=3, validation_split=0.2)
    return network, history


def relative_difference(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("n_ranks", [2, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("architecture", ["mlp", "batch_norm_dropout", "residual"])
def test_n_ranks_train_the_same_weights_as_one_process(tmp_path, n_ranks, dtype, architecture):
    output = tmp_path / "result.npz"
    run_ranks(n_ranks, output, dtype, BATCH_SIZE, EPOCHS, "--architecture", architecture)
    network, history = single_process_fit(dtype, architecture)
    assert_same_training(np.load(output), network, history, dtype)


def assert_same_training(result, network, history, dtype):
    assert result["parameters"].dtype == np.dtype(dtype)
    assert relative_difference(result["parameters"], network.flat_parameters) < RELATIVE_TOLERANCE[dtype]
    if network.flat_state.size:  # BatchNorm's running statistics: of the global batches, on every rank
        assert relative_difference(result["state"], network.flat_state) < RELATIVE_TOLERANCE[dtype]
    assert relative_difference(result["iteration_loss"], np.array(history.iteration_loss)) < 10 * RELATIVE_TOLERANCE[dtype]
    # Accuracy counts are reduced across ranks: the same fractions as one process sees.
    assert np.allclose(result["accuracy"], history.accuracy, atol=1e-12)
    assert np.allclose(result["val_accuracy"], history.val_accuracy, atol=1e-12)
    assert np.allclose(result["val_loss"], history.val_loss, rtol=10 * RELATIVE_TOLERANCE[dtype])


@pytest.mark.parametrize("architecture", ["batch_norm_dropout", "cnn"])
def test_a_rank_with_an_empty_shard_still_joins_batchnorm_and_agrees_with_one_process(tmp_path, architecture):
    # 120 training samples in batches of 59: the last batch holds 2 samples, so on 3 ranks one shard is
    # empty; that rank still runs every layer (and BatchNorm's reductions) on zero rows.
    output = tmp_path / "result.npz"
    run_ranks(3, output, "float64", 59, EPOCHS, "--architecture", architecture)
    network, history = single_process_fit("float64", architecture, batch_size=59)
    assert_same_training(np.load(output), network, history, "float64")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_ranks_train_a_cnn_like_one_process(tmp_path, dtype):
    # Conv2D, BatchNorm over (n, C, H, W), Dropout on images, MaxPool2D and Flatten, on uneven shards
    output = tmp_path / "result.npz"
    run_ranks(2, output, dtype, BATCH_SIZE, EPOCHS, "--architecture", "cnn")
    network, history = single_process_fit(dtype, "cnn")
    assert_same_training(np.load(output), network, history, dtype)


@pytest.mark.parametrize("n_ranks", [2, 3])
def test_n_ranks_train_a_language_model_like_one_process_counting_tokens(tmp_path, n_ranks):
    # The shards hold different numbers of counted tokens (a third of the targets are ignored): each rank's
    # mean is weighted by its tokens, for the loss, its gradient, accuracy, perplexity and validation.
    output = tmp_path / "result.npz"
    run_ranks(n_ranks, output, "float64", BATCH_SIZE, EPOCHS, "--architecture", "lstm")
    network, history = single_process_fit("float64", "lstm")
    result = np.load(output)
    assert_same_training(result, network, history, "float64")
    assert np.allclose(result["perplexity"], history.perplexity, rtol=10 * RELATIVE_TOLERANCE["float64"])
    assert np.allclose(result["val_perplexity"], history.val_perplexity, rtol=10 * RELATIVE_TOLERANCE["float64"])


def test_two_ranks_train_a_seq2seq_model_on_tuple_inputs_like_one_process(tmp_path):
    # X = (source, decoder input): each rank takes the same rows of both arrays, so the attention model
    # trains the weights of one process, validation split included.
    output = tmp_path / "result.npz"
    run_ranks(2, output, "float64", BATCH_SIZE, EPOCHS, "--architecture", "seq2seq")
    network, history = single_process_fit("float64", "seq2seq")
    assert_same_training(np.load(output), network, history, "float64")


def test_n_ranks_combine_their_weighted_sums_into_the_weighted_run_of_one_process(tmp_path):
    # Each rank's weighted mean counts with its shard's share of the global batch's weight sum (integer
    # weights 0-3, zeros included); the validation loss is combined the same way.
    output = tmp_path / "result.npz"
    run_ranks(3, output, "float64", BATCH_SIZE, EPOCHS, "--weighted")
    network, history = single_process_fit("float64", sample_weight=sample_weights(150))
    assert_same_training(np.load(output), network, history, "float64")


def test_a_failing_rank_stops_every_rank_and_the_last_checkpoint_resumes(tmp_path):
    checkpoint = tmp_path / "checkpoint.npz"
    completed = run_ranks(2, tmp_path / "unused.npz", "float64", BATCH_SIZE, EPOCHS, "--fail-rank", 1,
                          "--fail-epoch", 2, "--checkpoint", checkpoint, expect_success=False)
    assert completed.returncode != 0
    assert "rank 1 of 2 failed: RuntimeError: simulated failure after epoch 2" in completed.stderr
    assert not (tmp_path / "unused.npz").exists()
    # Rank 0 wrote a checkpoint after each epoch it finished before the job stopped: resume from it.
    resumed = numnet.load_model(checkpoint)
    assert resumed.epochs_trained >= 2
    X, y = make_spiral(n_per_class=50, n_classes=3, seed=0)
    resumed.fit(X, y, epochs=EPOCHS - resumed.epochs_trained, batch_size=BATCH_SIZE, validation_split=0.2)
    uninterrupted, _ = single_process_fit("float64")
    assert relative_difference(resumed.flat_parameters, uninterrupted.flat_parameters) < RELATIVE_TOLERANCE["float64"]


def test_numnet_train_distributed_writes_the_model_of_a_single_process_run(tmp_path):
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    common = ["train", "--quiet", "--data", "spiral", "--epochs", "3", "--dtype", "float64"]
    ranks = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "numnet", *common, "--distributed",
                            "--output", str(tmp_path / "ranks")], capture_output=True, text=True, timeout=180,
                           env=environment)
    single = subprocess.run([sys.executable, "-m", "numnet", *common, "--output", str(tmp_path / "single")],
                            capture_output=True, text=True, timeout=180, env=environment)
    assert ranks.returncode == 0 and single.returncode == 0, ranks.stderr + single.stderr
    # Only rank 0 prints: one summary, not two.
    assert ranks.stdout.count("test accuracy") == 1
    distributed, reference = (numnet.load_model(tmp_path / name / "model.npz") for name in ("ranks", "single"))
    assert relative_difference(distributed.flat_parameters, reference.flat_parameters) < RELATIVE_TOLERANCE["float64"]
