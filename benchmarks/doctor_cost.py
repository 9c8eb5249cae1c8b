"""What fit(diagnose=True) costs: an MNIST-size epoch with the training doctor's evidence on and off.

Run from the repository root::

    python benchmarks/doctor_cost.py                 # 5 interleaved repeats of each, one BLAS thread
    python benchmarks/doctor_cost.py --repeats 9 --threads 2

The workload is the one the issue names: 784-256-128-10 relu with a softmax output, Adam (1e-3), batches
of 128, one epoch over 60,000 samples of MNIST's shape (random pixels in [0, 1] and random labels: the
cost of a step does not depend on the values), float32. Each repeat trains a fresh network from the same
seed with diagnose off and then on, so both see the same machine load; the overhead is the ratio of the
medians, and of the minima (the least disturbed runs). On a shared machine that comparison is noisy; two
steadier measures follow: the monitor's own work per step (TrainingMonitor.after_step, and its after_epoch
pass on the probe rows) against a whole step, and the seconds spent in the monitor timed inside diagnosed
fits, against the rest of those same fits.
"""

import argparse
import json
import platform
import statistics
import time

import numpy as np
import threadpoolctl

import numnet
from numnet import training
from numnet.evidence import TrainingMonitor
from numnet.training import History

N_SAMPLES = 60_000
LAYER_SIZES = [784, 256, 128, 10]
BATCH_SIZE = 128
#: The issue's budget: evidence collection must stay under 10% of an epoch.
BUDGET = 0.10


def mnist_shaped_data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((N_SAMPLES, LAYER_SIZES[0]), dtype=np.float32)
    return X, rng.integers(0, LAYER_SIZES[-1], size=N_SAMPLES)


def epoch_seconds(X, y, diagnose):
    network = numnet.Network(LAYER_SIZES, activation="relu", output_activation="softmax", seed=0)
    started = time.perf_counter()
    network.fit(X, y, epochs=1, batch_size=BATCH_SIZE, learning_rate=1e-3, seed=0, diagnose=diagnose)
    return time.perf_counter() - started


class TimedMonitor(TrainingMonitor):
    """The monitor, adding up the seconds its calls take (in the training loop itself, under the same load)."""

    seconds = 0.0

    def after_step(self, previous_parameters):
        started = time.perf_counter()
        super().after_step(previous_parameters)
        TimedMonitor.seconds += time.perf_counter() - started

    def after_epoch(self):
        started = time.perf_counter()
        super().after_epoch()
        TimedMonitor.seconds += time.perf_counter() - started


def monitor_share_inside_fit(X, y):
    """The fraction of a diagnosed epoch spent in the monitor, both timed in the same run: a machine's load
    slows the two alike, so the share holds where comparing separate runs is noisy."""
    TimedMonitor.seconds = 0.0
    original, training.TrainingMonitor = training.TrainingMonitor, TimedMonitor
    try:
        seconds = epoch_seconds(X, y, diagnose=True)
    finally:
        training.TrainingMonitor = original
    return TimedMonitor.seconds / (seconds - TimedMonitor.seconds)


def monitor_seconds_per_step(X, y, steps=50):
    """(seconds of one training step, of after_step, of after_epoch), medians over ``steps`` steps."""
    network = numnet.Network(LAYER_SIZES, activation="relu", output_activation="softmax", seed=0)
    network.optimizer = numnet.get_optimizer("adam", 1e-3)
    history = History()
    monitor = TrainingMonitor(network, history, network.prepare_inputs(X[:256]))
    X_batch, Y_batch = network.prepare_inputs(X[:BATCH_SIZE]), network.prepare_targets(y[:BATCH_SIZE])
    previous = np.empty_like(network.flat_parameters)
    step_times, monitor_times, epoch_times = [], [], []
    for _ in range(steps):
        started = time.perf_counter()
        network.loss_and_gradients(X_batch, Y_batch)
        previous[...] = network.flat_parameters
        network.optimizer.step(network.flat_parameters, network.flat_gradients)
        step_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        monitor.after_step(previous)
        monitor_times.append(time.perf_counter() - started)
    for _ in range(steps):  # apart from the steps: its forward pass would evict their arrays from the caches
        started = time.perf_counter()
        monitor.after_epoch()
        epoch_times.append(time.perf_counter() - started)
    return statistics.median(step_times), statistics.median(monitor_times), statistics.median(epoch_times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    X, y = mnist_shaped_data()
    with threadpoolctl.threadpool_limits(args.threads, user_api="blas"):
        epoch_seconds(X[:5000], y[:5000], True)  # warm up: first-call allocations, BLAS start-up
        times = {False: [], True: []}
        for _ in range(args.repeats):
            for diagnose in (False, True):
                times[diagnose].append(epoch_seconds(X, y, diagnose))
        step, after_step, after_epoch = monitor_seconds_per_step(X, y)
        shares = [monitor_share_inside_fit(X, y) for _ in range(args.repeats)]
    steps_per_epoch = -(-N_SAMPLES // BATCH_SIZE)
    results = {
        "cpu": platform.processor() or platform.machine(),
        "blas_threads": args.threads,
        "epoch_seconds_off": times[False],
        "epoch_seconds_on": times[True],
        "overhead_of_medians": statistics.median(times[True]) / statistics.median(times[False]) - 1.0,
        "overhead_of_minima": min(times[True]) / min(times[False]) - 1.0,
        "step_seconds": step,
        "after_step_seconds": after_step,
        "after_epoch_seconds": after_epoch,
        "monitor_share_of_an_epoch": (after_step * steps_per_epoch + after_epoch) / (step * steps_per_epoch),
        "monitor_share_inside_fit": shares,
    }
    print(f"MNIST-size epoch ({LAYER_SIZES}, batch {BATCH_SIZE}, {args.threads} BLAS thread(s)), "
          f"{args.repeats} repeats")
    print(f"  diagnose off: median {statistics.median(times[False]):.3f} s, min {min(times[False]):.3f} s")
    print(f"  diagnose on:  median {statistics.median(times[True]):.3f} s, min {min(times[True]):.3f} s")
    print(f"  overhead: {100 * results['overhead_of_medians']:+.1f}% (medians), "
          f"{100 * results['overhead_of_minima']:+.1f}% (minima); budget {100 * BUDGET:.0f}%")
    print(f"  per step: training {1e3 * step:.2f} ms, monitor {1e3 * after_step:.3f} ms; after each epoch "
          f"{1e3 * after_epoch:.2f} ms: the monitor's own work is "
          f"{100 * results['monitor_share_of_an_epoch']:.2f}% of an epoch")
    print(f"  timed inside diagnosed fits: the monitor takes {100 * statistics.median(shares):.2f}% (median of "
          f"{len(shares)}; min {100 * min(shares):.2f}%, max {100 * max(shares):.2f}%) on top of the rest of the epoch")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
