"""numnet.sklearn against scikit-learn's MLP: test accuracy and fit time for solver="lbfgs" and for
learning_rate="adaptive", side by side.

Run from the repository root::

    python benchmarks/sklearn_solvers.py            # ten random states per row (~1 minute)
    python benchmarks/sklearn_solvers.py --repeats 3

Each row trains both libraries with the same settings, on the same standardised, stratified 75/25 split,
once per random state (0-9), on one BLAS thread; it reports the mean test accuracy and the median fit time.
Both libraries draw the same initial weights from a random_state, so their accuracies should agree closely:
the test suite asserts numnet's mean is at most one point below scikit-learn's
(tests/test_sklearn.py::test_lbfgs_test_accuracy_over_ten_random_states_is_scikit_learns_within_a_point).
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import threadpoolctl
from sklearn import neural_network
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from numnet import sklearn as numnet_sklearn
from run import cpu_model  # benchmarks/run.py, beside this script

#: (name, loader, estimator settings): the rows of the table; the settings are those of the parity tests.
ROWS = (
    ("iris", load_iris, dict(solver="lbfgs", hidden_layer_sizes=(10,))),
    ("wine", load_wine, dict(solver="lbfgs", hidden_layer_sizes=(20,))),
    ("breast cancer", load_breast_cancer, dict(solver="lbfgs", hidden_layer_sizes=(30,))),
    ("digits", load_digits, dict(solver="sgd", learning_rate="adaptive", hidden_layer_sizes=(64,),
                                 learning_rate_init=0.1, tol=1e-3, n_iter_no_change=3)),
)
CONTENDERS = (("scikit-learn", neural_network.MLPClassifier), ("numnet", numnet_sklearn.MLPClassifier))


def scaled_split(load):
    """The 75/25 stratified split (random_state 0), standardised on the training part."""
    X, y = load(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def measure(model_class, data, settings, random_states):
    """(mean test accuracy, median fit seconds, mean iterations) over ``random_states``."""
    X_train, X_test, y_train, y_test = data
    accuracies, seconds, iterations = [], [], []
    for seed in random_states:
        model = model_class(random_state=seed, **settings)
        started = time.perf_counter()
        model.fit(X_train, y_train)
        seconds.append(time.perf_counter() - started)
        accuracies.append(model.score(X_test, y_test))
        iterations.append(model.n_iter_)
    return float(np.mean(accuracies)), statistics.median(seconds), float(np.mean(iterations))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="random states per row (default 10)")
    arguments = parser.parse_args()
    print(f"CPU: {cpu_model()}, one BLAS thread, "
          f"random states 0-{arguments.repeats - 1}\n")
    print("| data | solver | hidden | accuracy scikit-learn | accuracy numnet | fit scikit-learn | fit numnet "
          "| iterations |")
    print("|---|---|---|---|---|---|---|---|")
    with threadpoolctl.threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, load, settings in ROWS:
            data = scaled_split(load)
            results = [measure(model_class, data, settings, range(arguments.repeats))
                       for _, model_class in CONTENDERS]
            solver = settings["solver"] + (" adaptive" if settings.get("learning_rate") == "adaptive" else "")
            (theirs_accuracy, theirs_time, _), (ours_accuracy, ours_time, ours_iterations) = results
            print(f"| {name} | {solver} | {settings['hidden_layer_sizes']} | {theirs_accuracy:.4f} | "
                  f"{ours_accuracy:.4f} | {theirs_time * 1e3:.1f} ms | {ours_time * 1e3:.1f} ms | "
                  f"{ours_iterations:.0f} |", flush=True)


if __name__ == "__main__":
    main()
