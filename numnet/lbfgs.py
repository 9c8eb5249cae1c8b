"""Full-batch training by L-BFGS-B: SciPy's quasi-Newton minimiser over the network's flat parameter buffer.

This is scikit-learn's ``solver="lbfgs"``. The objective is the network's own loss on the whole training set
(the data term, weighted by the sample weights if any, plus the L2 term) and its gradient is backpropagation's:
each evaluation writes the candidate point into ``network.flat_parameters``, runs one training forward and
backward pass, and hands SciPy the loss and the flat gradient buffer. A float32 network computes in float32
(as scikit-learn's MLP does for float32 data); SciPy keeps its own iterates in float64.

SciPy comes with scikit-learn (``pip install 'numnet[sklearn]'``) and is imported only when this runs.
"""

import numpy as np

from .backend import to_numpy
from .errors import require
from .validation import check_integer, check_real


def minimize_lbfgs(network, X, y, *, sample_weight=None, max_iter=200, max_fun=15000, tolerance=1e-5, l2=0.0):
    """Train ``network`` on (X, y) by L-BFGS-B and return SciPy's result; the network ends at its minimum.

    Parameters
    ----------
    network : Network
    X : array_like, shape (n_samples, n_features)
    y : array_like
        Targets as :meth:`Network.prepare_targets` takes them.
    sample_weight : array_like, shape (n_samples,), optional
        Non-negative weights: the loss becomes the weighted mean over the samples.
    max_iter : int, default 200
        The most L-BFGS iterations (SciPy's ``maxiter``).
    max_fun : int, default 15000
        The most loss evaluations (SciPy's ``maxfun``); an iteration may take several.
    tolerance : float, default 1e-5
        Stop once every entry of the gradient is at most this in size (SciPy's ``gtol``; scikit-learn's
        ``tol``).
    l2 : float, default 0.0
        An L2 penalty ½·l2·Σ‖W‖² minimised on top of the network's own ``l2`` and ``l1``, which stay as they
        are (the estimators pass scikit-learn's alpha over the sample count).

    Raises
    ------
    ValueError, TypeError
        For bad data, weights or limits.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``fun`` (the final loss), ``nit`` (iterations), ``nfev`` (evaluations), ``status`` (0 when the
        tolerance was met; 1 when max_iter or max_fun ran out) and ``message``.

    Examples
    --------
    >>> import numpy as np, numnet
    >>> X = np.linspace(-1, 1, 40).reshape(-1, 1)
    >>> network = numnet.Network([1, 8, 1], activation="tanh", dtype="float64", seed=0)
    >>> result = minimize_lbfgs(network, X, X ** 2, max_iter=500)
    >>> bool(result.fun < 1e-4)
    True
    """
    max_iter = check_integer(max_iter, "max_iter")
    max_fun = check_integer(max_fun, "max_fun", meaning="the most loss evaluations")
    if not float(tolerance) >= 0:
        raise ValueError(f"tolerance must be a number >= 0, got {tolerance!r}")
    l2 = check_real(l2, "l2")
    if not l2 >= 0:
        raise ValueError(f"l2 must be a number >= 0, got {l2!r}")
    optimize = require("scipy.optimize", "sklearn", "L-BFGS training (numnet.lbfgs)")
    X = network.prepare_inputs(X)
    Y = network.prepare_targets(y, X.shape[0])
    weights = network.prepare_sample_weights(sample_weight, X.shape[0])

    def loss_and_gradient(theta):
        # SciPy's float64 point, written once into the network's own buffer (and dtype)
        network.flat_parameters[...] = network.backend.asarray(theta, network.dtype)
        loss = network.loss_and_gradients(X, Y, weights=weights) + network.add_penalty(l2=l2)
        return loss, np.asarray(to_numpy(network.flat_gradients), dtype=np.float64)

    start = np.asarray(to_numpy(network.flat_parameters), dtype=np.float64)
    try:
        result = optimize.minimize(loss_and_gradient, start, method="L-BFGS-B", jac=True,
                                   options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tolerance})
    finally:
        network.clear_caches()
    network.flat_parameters[...] = network.backend.asarray(result.x, network.dtype)
    return result
