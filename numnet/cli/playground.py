"""``numnet playground``: serve the playground page (:mod:`numnet.playground`) until Ctrl-C."""

from .options import integer_option

MAX_PORT = 65535


def command_playground(args):
    """Serve the playground page (numnet.playground.serve) until Ctrl-C; returns 0."""
    from numnet import playground  # only this command needs the web server

    if args.port > MAX_PORT:
        raise ValueError(f"--port must be a port number from 0 to {MAX_PORT} (0: a free one), got {args.port}")
    return playground.serve(args.host, args.port, open_browser=not args.no_browser)


def add_parser(commands):
    """Add ``numnet playground`` and its options to the subparsers ``commands``."""
    playground = commands.add_parser(
        "playground", help="watch a network learn, live, in the browser",
        description="Start a local web server with numnet's engine behind a TensorFlow-Playground-like page: "
                    "choose data, features, layers, activation, loss, optimiser and regularisation, press play "
                    "and watch every neuron, the weights, the losses and the gradients change; download the "
                    "model and a script that retrains it. Ctrl-C stops the server.")
    playground.add_argument("--port", type=integer_option(0), default=0,
                            help="port to listen on (default: a free one, printed at start)")
    playground.add_argument("--host", metavar="ADDRESS",
                            help="address to listen on (default 127.0.0.1: this machine only); with --host, anyone "
                                 "who can reach the address can use the playground")
    playground.add_argument("--no-browser", action="store_true", help="do not open the default web browser")
    playground.set_defaults(run=command_playground)
