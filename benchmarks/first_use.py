"""What the compiled kernels cost the first time a process uses them (issue 26), in fresh interpreters.

Run from the repository root::

    python benchmarks/first_use.py                   # 3 interleaved runs of each case
    python benchmarks/first_use.py --runs 5 --cases train

Two jobs, each started as a new process so that nothing is loaded yet, interleaved so that all cases see
the same machine load:

- ``train``: the README's main job, ``numnet train`` (the digits classifier, its plots and its model file
  written to a temporary folder), with the kernels and a warm cache, with ``NUMNET_KERNELS=numpy``, and
  with the kernels and a cold (new, empty) cache.
- ``mnist``: benchmarks/run.py's mnist workload (784-256-128-10 relu, Adam, batch 128, 5 epochs over
  60,000 synthetic images, one BLAS thread), fitted twice in one process: the first fit pays the kernels'
  first use (numba's import and first dispatch, and with a cold cache the compilation of the three kernels
  the fit calls), the second pays nothing. Cases: cold cache, warm cache, NumPy.

Every case uses a temporary cache folder ($NUMNET_CACHE_DIR), never the user's. Each line gives the wall
seconds and the CPU seconds (user + system, every thread) of the process or fit; on a shared machine
the CPU seconds are the steadier figure.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))

#: Fits benchmarks/run.py's mnist workload twice in this process; prints [[wall, cpu], [wall, cpu]] as JSON.
MNIST_FITS = f"""
import gc, json, sys, time
sys.path.insert(0, {BENCHMARKS!r})
import run
data = run.make_image_data(0)
contender = run.NumnetContender()
fits = []
for _ in range(2):
    gc.collect()  # as run.timed does, outside the timing
    cpu, started = time.process_time(), time.perf_counter()
    contender.train(run.WORKLOADS["mnist"], data, run.WORKLOADS["mnist"].epochs, 0)
    fits.append([time.perf_counter() - started, time.process_time() - cpu])
print(json.dumps(fits))
"""


def child_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(command, cache, kernels):
    """(stdout, wall seconds, CPU seconds) of ``command`` in a new process with this cache folder and kernels."""
    environment = dict(os.environ, NUMNET_CACHE_DIR=cache, NUMNET_KERNELS=kernels, OPENBLAS_NUM_THREADS="1")
    cpu, started = child_cpu_seconds(), time.perf_counter()
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    return result.stdout, time.perf_counter() - started, child_cpu_seconds() - cpu


def train_case(warm_cache, kernels, cold):
    """[(wall, cpu)] of one ``numnet train`` process."""
    with tempfile.TemporaryDirectory() as scratch:
        cache = os.path.join(scratch, "cache") if cold else warm_cache
        command = [sys.executable, "-m", "numnet", "train", "--output", os.path.join(scratch, "model")]
        _, wall, cpu = run_child(command, cache, kernels)
    return [(wall, cpu)]


def mnist_case(warm_cache, kernels, cold):
    """[(wall, cpu) of the first fit, (wall, cpu) of the second] in one process."""
    with tempfile.TemporaryDirectory() as scratch:
        output, _, _ = run_child([sys.executable, "-c", MNIST_FITS], scratch if cold else warm_cache, kernels)
    return [tuple(fit) for fit in json.loads(output)]


CASES = {"train": train_case, "mnist": mnist_case}
#: (label, kernels choice, cold cache) of each case.
SETTINGS = [("kernels, warm cache", "auto", False), ("NUMNET_KERNELS=numpy", "numpy", False),
            ("kernels, cold cache", "auto", True)]


def measure(job, runs, warm_cache):
    """{label: [[(wall, cpu) per fit] per run]}, the settings interleaved run by run."""
    CASES[job](warm_cache, "auto", False)  # fills the warm cache (untimed)
    results = {label: [] for label, _, _ in SETTINGS}
    for _ in range(runs):
        for label, kernels, cold in SETTINGS:
            results[label].append(CASES[job](warm_cache, kernels, cold))
    return results


def report(job, results):
    print(f"{job}: minimum (median) over {len(next(iter(results.values())))} runs, seconds")
    for label, runs in results.items():
        for index in range(len(runs[0])):
            walls = sorted(run[index][0] for run in runs)
            cpus = sorted(run[index][1] for run in runs)
            name = label if len(runs[0]) == 1 else f"{label}, fit {index + 1}"
            print(f"  {name:36s} wall {walls[0]:6.2f} ({walls[len(walls) // 2]:6.2f})   "
                  f"cpu {cpus[0]:6.2f} ({cpus[len(cpus) // 2]:6.2f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each case (default 3)")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    arguments = parser.parse_args(argv)
    print("load average at start (1, 5, 15 min): " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
    with tempfile.TemporaryDirectory() as warm_cache:
        for job in sorted(arguments.cases, reverse=True):  # train first: the README's job
            report(job, measure(job, arguments.runs, warm_cache))
    print("load average at end (1, 5, 15 min): " + " ".join(f"{load:.2f}" for load in os.getloadavg()))


if __name__ == "__main__":
    main()
