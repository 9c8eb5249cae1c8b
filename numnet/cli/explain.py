"""``numnet explain``: the walk-through of one forward and one backward pass (:mod:`numnet.explain`)."""

from numnet import explain


def command_explain(args):
    """Walk a 2-3-2 network through one forward and one backward pass (numnet.explain); 0 when it agrees."""
    return explain.walk_through()


def add_parser(commands):
    """Add ``numnet explain`` to the subparsers ``commands``."""
    parser = commands.add_parser("explain", help="walk a tiny network through forward and backward passes",
                                 description="Print every step of one forward and one backward pass (BP1-BP4) "
                                             "of a 2-3-2 network on 2 samples, and check them against numnet.")
    parser.set_defaults(run=command_explain)
