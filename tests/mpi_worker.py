"""Run under ``mpiexec -n N`` by tests/test_distributed.py: one data-parallel fit, results saved by rank 0.

Usage: python mpi_worker.py [--weighted] OUTPUT.npz DTYPE BATCH_SIZE EPOCHS [FAIL_RANK FAIL_EPOCH CHECKPOINT]

--weighted trains with the sample weights of ``sample_weights()`` (zeros included).
"""

import sys

import numpy as np

import numnet
from numnet.datasets import make_spiral
from numnet.distributed import MPICommunicator, stop_all_ranks_on_failure


def sample_weights(n_samples):
    """Integer weights 0-3 per sample, the same on every rank and in the single-process reference."""
    return np.random.default_rng(5).integers(0, 4, n_samples).astype(np.float64)


def main(argv):
    weighted = "--weighted" in argv
    argv = [argument for argument in argv if argument != "--weighted"]
    output, dtype, batch_size, epochs = argv[0], argv[1], int(argv[2]), int(argv[3])
    fail_rank, fail_epoch, checkpoint = (int(argv[4]), int(argv[5]), argv[6]) if len(argv) > 4 else (-1, -1, None)
    communicator = MPICommunicator()
    X, y = make_spiral(n_per_class=50, n_classes=3, seed=0)
    network = numnet.Network([2, 16, 16, 3], activation="tanh", output_activation="softmax", dtype=dtype,
                             seed=0)

    def after_epoch(report):
        if checkpoint and communicator.is_root:
            numnet.save_model(network, checkpoint)
        if communicator.rank == fail_rank and report.epoch == fail_epoch:
            raise RuntimeError(f"simulated failure after epoch {report.epoch}")

    with stop_all_ranks_on_failure(communicator):
        history = network.fit(X, y, sample_weight=sample_weights(len(X)) if weighted else None, epochs=epochs, batch_size=batch_size, optimizer="adam", learning_rate=0.01,
                              seed=3, validation_split=0.2, distributed=communicator, progress=after_epoch)
    if communicator.is_root:
        np.savez(output, parameters=network.flat_parameters, iteration_loss=history.iteration_loss,
                 accuracy=history.accuracy, val_loss=history.val_loss, val_accuracy=history.val_accuracy)


if __name__ == "__main__":
    main(sys.argv[1:])
