"""``numnet gradcheck``: backprop against central differences on a random float64 network."""

import numpy as np

from numnet.gradcheck import gradient_check
from numnet.initializers import Normal
from numnet.network import Network

from .options import add_network_options, integer_option

# A gradient check passes when backprop and central differences (float64) agree to this relative error.
GRADCHECK_THRESHOLD = 1e-6
GRADCHECK_BIAS_STD = 0.1
DEFAULT_LAYERS = (4, 5, 3)


def _random_targets(network, n_samples, rng):
    """Random targets of the right kind for the network's loss."""
    if network.loss.fused_activation == "softmax":
        return rng.integers(0, network.n_outputs, size=n_samples)
    if network.loss.fused_activation == "sigmoid":
        return rng.integers(0, 2, size=(n_samples, network.n_outputs)).astype(np.float64)
    return rng.standard_normal((n_samples, network.n_outputs))


def command_gradcheck(args):
    """Compare backprop with central differences on a random float64 network; exit 1 when any check fails."""
    loss = args.loss
    if loss is None and args.output_activation is None:
        loss = "softmax_cross_entropy"
    # Random biases, not zeros: with zero biases a sample whose previous layer is all-dead relu units gets
    # z = b = 0 exactly, on relu's kink, where central differences and the one-sided derivative disagree.
    network = Network(args.layers or list(DEFAULT_LAYERS), activation=args.activation,
                      output_activation=args.output_activation, loss=loss, l2=args.l2,
                      bias_init=Normal(std=GRADCHECK_BIAS_STD), dtype="float64", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    X = rng.standard_normal((args.samples, network.n_inputs))
    errors = gradient_check(network, X, _random_targets(network, args.samples, rng))
    print(f"gradient check of {network!r}, l2 {network.l2:g}, {args.samples} random samples, float64")
    print(f"relative error |backprop - numerical| / max(|backprop|, |numerical|), pass below {GRADCHECK_THRESHOLD:g}")
    width = max(len(name) for name in errors)
    for name, error in errors.items():
        print(f"  {name:<{width}}  {error:.2e}  {'PASS' if error < GRADCHECK_THRESHOLD else 'FAIL'}")
    passed = all(error < GRADCHECK_THRESHOLD for error in errors.values())
    print("PASS: backprop agrees with central differences" if passed else "FAIL: backprop disagrees")
    return 0 if passed else 1


def add_parser(commands):
    """Add ``numnet gradcheck`` and its options to the subparsers ``commands``."""
    gradcheck = commands.add_parser(
        "gradcheck", help="check backprop against central differences",
        description="Build a random float64 network and compare every parameter's backprop gradient with "
                    f"central differences; PASS below a relative error of {GRADCHECK_THRESHOLD:g}, exit 1 on FAIL.")
    add_network_options(gradcheck, training=False)
    gradcheck.add_argument("--samples", type=integer_option(1), default=5, help="random samples (default 5)")
    gradcheck.set_defaults(run=command_gradcheck)
