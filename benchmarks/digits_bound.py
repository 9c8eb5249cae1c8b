"""How fast can any NumPy engine train the digits workload? scikit-learn, numnet, run.py's flat NumPy loop and
that loop with its softmax and loss fused, alternating in one process.

Issue 26 asks the digits workload to train 3x faster than scikit-learn's MLPClassifier. The flat loop
(run.py's ``NumpyBound``: no layers, no History, no training accuracy, no divergence guard) is what any
engine that calls NumPy can reach; this script adds the same loop with the softmax and the loss from one
pass (the max, the exponentials and the sums taken once), and prints each contender's seconds per epoch
(each whole fit's seconds over its epochs, as run.py's s/epoch, the minimum over the rounds) and scikit-learn's time over it.

Usage: ``python benchmarks/digits_bound.py [--rounds 7] [--seed 0]`` (about 10 s). Results:
benchmarks/README.md, "digits against scikit-learn".
"""

import argparse

import numpy as np

import run


class FusedFlatMLP(run._FlatMLP):
    """run.py's flat MLP whose softmax and loss come from one row maximum, one exponential and one row sum:
    loss = (Σ_i log s_i + Σ_i m_i - z·y) / n, s_i = Σ_k e^(z_ik - m_i)."""

    def softmax_in_place(self, logits, Y=None):
        row_max = logits.max(axis=1, keepdims=True)
        dot = None if Y is None else float(np.vecdot(logits.reshape(-1), Y.reshape(-1)))
        logits -= row_max
        np.exp(logits, out=logits)
        row_sum = logits.sum(axis=1, keepdims=True)
        logits /= row_sum
        return None if Y is None else (float(np.log(row_sum).sum()) + float(row_max.sum()) - dot) / len(logits)


class FusedNumpyBound(run.NumpyBound):
    """The flat NumPy loop with :class:`FusedFlatMLP`."""

    name = "numpy, softmax and loss fused"

    def make_model(self, layer_sizes, seed):
        return FusedFlatMLP(layer_sizes, seed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of every contender, alternating")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    workload, data = run.WORKLOADS["digits"], run.load_digits_data(options.seed)
    contenders = [run.SklearnContender(), run.NumnetContender("auto"), run.NumpyBound(), FusedNumpyBound()]
    seconds = {contender.name: [] for contender in contenders}
    for _ in range(options.rounds):
        for contender in contenders:
            _, fit_seconds = run.timed(contender.train, workload, data, workload.epochs, options.seed)
            seconds[contender.name].append(fit_seconds / workload.epochs)  # as run.py's s/epoch
    steps = len(run.epoch_batch_sizes(len(data.X_train), workload.batch_size))
    print(f"CPU: {run.cpu_model()}; digits, {workload.epochs} epochs of {steps} steps, minimum of "
          f"{options.rounds} rounds")
    print("| contender | s/epoch | µs/step | scikit-learn / contender |\n|---|---:|---:|---:|")
    sklearn = min(seconds["sklearn"])
    for name, values in seconds.items():
        best = min(values)
        print(f"| {name} | {best:.5f} | {best / steps * 1e6:.0f} | {sklearn / best:.2f} |")


if __name__ == "__main__":
    main()
