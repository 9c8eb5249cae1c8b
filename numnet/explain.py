"""``numnet explain``: one forward and one backward pass through a tiny network, every step printed.

The walk-through computes BP1-BP4 by hand with NumPy, on a 2-3-2 sigmoid/softmax network with round
weights, prints each matrix with its shape, and then checks its loss and gradients against the engine's
``Network.loss_and_gradients``: the lesson and the library compute the same numbers.
"""

import numpy as np

from .network import Network

# The printed gradients of `numnet explain` are computed by the same float64 operations as numnet's, so
# they agree to a few rounding steps; anything larger means the walk-through and the engine disagree.
EXPLAIN_TOLERANCE = 1e-12

# ---------------------------------------------------------------------------------------------------------
# numnet explain

# Round numbers, so the walk-through can be followed (and re-computed) by hand.
EXPLAIN_X = [[1.0, 2.0], [0.5, -1.0]]  # (2 samples, 2 features)
EXPLAIN_CLASSES = [0, 1]
EXPLAIN_PARAMETERS = {
    "dense_0.W": [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]],  # (2, 3)
    "dense_0.b": [0.1, 0.0, -0.1],
    "dense_1.W": [[0.7, -0.8], [-0.9, 1.0], [0.2, 0.3]],  # (3, 2)
    "dense_1.b": [0.05, -0.05],
}


def show_matrix(name, array):
    """Print ``name  shape (r, c)`` and then the rows of ``array`` with six decimals (1-D: one row)."""
    array = np.asarray(array)
    print(f"{name}  shape {array.shape}")
    for row in np.atleast_2d(array):
        print("    " + "  ".join(f"{value:10.6f}" for value in row))


def _explain_network():
    """The 2-3-2 sigmoid/softmax network of the walk-through, float64, with the round weights above."""
    # NumPy always: the lesson prints and writes the weights as NumPy arrays.
    network = Network([2, 3, 2], activation="sigmoid", output_activation="softmax", dtype="float64", seed=0,
                      backend="numpy")
    network.set_parameters({name: np.array(values) for name, values in EXPLAIN_PARAMETERS.items()})
    return network


def _explain_forward(network, X):
    """Run and print the forward pass layer by layer; returns the (input, z, a) of every layer."""
    print("\nFORWARD PASS: each layer computes z = a_prev W + b, then a = f(z); a0 is the input X")
    steps, a = [], X
    for number, layer in enumerate(network.layers, start=1):
        W, b = layer.params["W"], layer.params["b"]
        z, a_next = layer.forward_logits(a)
        print(f"\nlayer {number}: z{number} = a{number - 1} W{number} + b{number}:  {a.shape} x {W.shape} + "
              f"{b.shape} -> {z.shape}")
        show_matrix(f"z{number}", z)
        print(f"a{number} = {layer.activation.name}(z{number})")
        show_matrix(f"a{number}", a_next)
        steps.append((a, z, a_next))
        a = a_next
    return steps


def _explain_backward(network, steps, Y):
    """Compute the deltas and gradients by BP1-BP4 by hand; returns (deltas, gradients by parameter name)."""
    n_samples = Y.shape[0]
    deltas = [None] * len(steps)
    # BP1 (fused softmax + cross-entropy): delta_L = (a_L - Y) / n
    deltas[-1] = (steps[-1][2] - Y) / n_samples
    for index in range(len(steps) - 2, -1, -1):
        # BP2: delta_l = (delta_{l+1} W_{l+1}^T) * f'(z_l), with f'(z_l) computed from a_l
        W_next = network.layers[index + 1].params["W"]
        deltas[index] = (deltas[index + 1] @ W_next.T) * network.layers[index].activation.derivative(steps[index][2])
    gradients = {}
    for index, layer in enumerate(network.layers):
        gradients[f"{layer.name}.b"] = deltas[index].sum(axis=0)  # BP3
        gradients[f"{layer.name}.W"] = steps[index][0].T @ deltas[index]  # BP4
    return deltas, gradients


def _print_backward(network, deltas, gradients):
    """Print BP1 to BP4 in words and numbers."""
    last = len(deltas)
    print("\nBACKWARD PASS")
    print(f"\nBP1, the error of the output layer: delta{last} = dC/dz{last} = dC/da{last} * softmax'(z{last}); for "
          f"softmax with cross-entropy this collapses to (a{last} - Y) / n, with n = {deltas[-1].shape[0]} samples")
    show_matrix(f"delta{last}", deltas[-1])
    for number in range(last - 1, 0, -1):
        activation = network.layers[number - 1].activation.name
        print(f"\nBP2, the error moves back one layer: delta{number} = (delta{number + 1} W{number + 1}^T) * "
              f"{activation}'(z{number}), where {activation}'(z{number}) = a{number} (1 - a{number}) and * "
              "multiplies entry by entry")
        show_matrix(f"delta{number}", deltas[number - 1])
    print("\nBP3, the gradient of a bias is the layer's error summed over the samples: dC/db_l = sum of delta_l")
    for number in range(last, 0, -1):
        show_matrix(f"dC/db{number}", gradients[f"{network.layers[number - 1].name}.b"])
    print("\nBP4, the gradient of a weight matrix is the layer's input times its error: dC/dW_l = a_(l-1)^T "
          "delta_l")
    for number in range(last, 0, -1):
        show_matrix(f"dC/dW{number}", gradients[f"{network.layers[number - 1].name}.W"])


def walk_through():
    """Walk a 2-3-2 network through one forward and one backward pass, printing every step (BP1-BP4 by
    hand), then check the printed loss and gradients against numnet's own; returns 0 when they agree, 1
    otherwise (the exit status of ``numnet explain``)."""
    network = _explain_network()
    X = np.array(EXPLAIN_X)
    Y = network.prepare_targets(np.array(EXPLAIN_CLASSES), X.shape[0])  # (2, 2) one-hot
    print("numnet explain: one forward and one backward pass through a 2-3-2 network")
    print("hidden layer: sigmoid; output layer: softmax; loss C: cross-entropy averaged over the samples")
    show_matrix("X", X)
    show_matrix("Y", Y)
    for number, layer in enumerate(network.layers, start=1):
        show_matrix(f"W{number}", layer.params["W"])
        show_matrix(f"b{number}", layer.params["b"])
    steps = _explain_forward(network, X)
    loss = network.loss.value(steps[-1][1], Y)
    print(f"\nloss C = -(1/n) sum over samples of log(probability of the true class) = {loss:.6f}")
    deltas, gradients = _explain_backward(network, steps, Y)
    _print_backward(network, deltas, gradients)
    return _explain_check(network, X, Y, loss, gradients)


def _explain_check(network, X, Y, loss, gradients):
    """Compare the printed loss and gradients with numnet's own backward pass; 0 when they agree."""
    numnet_loss = network.loss_and_gradients(X, Y)
    network.clear_caches()
    print("\nCHECK against numnet: net.loss_and_gradients(X, Y), then net.gradients()")
    largest = abs(numnet_loss - loss)
    print(f"  loss       numnet {numnet_loss:.6f}   difference {largest:.1e}")
    for name, gradient in network.gradients().items():
        difference = float(np.max(np.abs(gradient - gradients[name])))
        largest = max(largest, difference)
        print(f"  {name:<10} largest |printed - numnet| = {difference:.1e}")
    agree = largest <= EXPLAIN_TOLERANCE
    print("the printed gradients equal net.gradients()" if agree else "MISMATCH between the walk-through and numnet")
    return 0 if agree else 1
