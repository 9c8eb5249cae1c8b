"""Samples per second of data-parallel training: one process with 2 BLAS threads vs 2 MPI ranks with 1 each.

Run from the repository root (needs `pip install -e ".[mpi,bench]"`):

    python benchmarks/distributed_scaling.py            # launches the 2-rank run itself through mpiexec

Workload: the MNIST-size synthetic data of benchmarks/run.py's shape (784-256-128-10 relu, batch 128 as the
global batch, Adam 1e-3, float32), trained for EPOCHS epochs on N_TRAIN samples.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

N_TRAIN = 20_000
EPOCHS = 2
LAYERS = [784, 256, 128, 10]
BATCH_SIZE = 128


def synthetic_images(n_samples, seed=0):
    """Images in [0, 1] drawn around 10 random class prototypes: learnable, like MNIST in shape."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, 784), dtype=np.float32)
    labels = rng.integers(0, 10, size=n_samples)
    noise = rng.random((n_samples, 784), dtype=np.float32)
    return (0.5 * prototypes[labels] + 0.5 * noise).astype(np.float32), labels


def train(distributed):
    import numnet

    X, y = synthetic_images(N_TRAIN)
    network = numnet.Network(LAYERS, activation="relu", output_activation="softmax", dtype="float32", seed=0)
    started = time.perf_counter()
    network.fit(X, y, epochs=EPOCHS, batch_size=BATCH_SIZE, optimizer="adam", learning_rate=1e-3, seed=0,
                record_gradients=False, distributed=distributed)
    seconds = time.perf_counter() - started
    return network, N_TRAIN * EPOCHS / seconds


def worker():
    """Body of each MPI rank: train, and let rank 0 print its throughput."""
    from numnet.distributed import MPICommunicator

    communicator = MPICommunicator()
    network, samples_per_second = train(communicator)
    if communicator.is_root:
        print(f"RESULT {samples_per_second:.1f} {network.n_parameters}")


def launch_ranks(n_ranks):
    launcher = shutil.which("mpiexec") or shutil.which("mpiexec", path=str(Path(sys.executable).parent))
    if launcher is None:
        sys.exit("mpiexec not found: pip install 'numnet[mpi]'")
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    output = subprocess.run([launcher, "-n", str(n_ranks), sys.executable, __file__, "--worker"],
                            capture_output=True, text=True, env=environment, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT"))
    return float(line.split()[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    if parser.parse_args().worker:
        worker()
        return
    network, single = train(distributed=False)
    from numnet.backend import one_blas_thread

    with one_blas_thread():
        _, single_one_thread = train(distributed=False)
    two_ranks = launch_ranks(2)
    allreduce_bytes = network.n_parameters * network.dtype.itemsize
    print(f"workload: {LAYERS} relu, global batch {BATCH_SIZE}, {N_TRAIN} samples x {EPOCHS} epochs, float32")
    print(f"{'configuration':40s} {'samples/s':>10s} {'speed-up':>9s}")
    print(f"{'1 process, BLAS threads as configured':40s} {single:10.0f} {1.0:9.2f}")
    print(f"{'1 process, 1 BLAS thread':40s} {single_one_thread:10.0f} {single_one_thread / single:9.2f}")
    print(f"{'2 MPI ranks, 1 BLAS thread each':40s} {two_ranks:10.0f} {two_ranks / single:9.2f}")
    print(f"Allreduce per step: {network.n_parameters:,} parameters x {network.dtype.itemsize} bytes = "
          f"{allreduce_bytes / 1e6:.2f} MB ({N_TRAIN // BATCH_SIZE + 1} steps per epoch)")


if __name__ == "__main__":
    main()
