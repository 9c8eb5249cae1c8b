"""The ``numnet`` command itself: its argument parser, built from each command's module, and ``main``,
which runs one command and turns any error into one line on stderr."""

import argparse
import os
import sys

from numnet import __version__
from numnet.errors import NumnetError

from . import (doctor, evaluate, experiments, explain, export, generate, gradcheck, lr_find, playground, predict,
               train)

ERROR_PREFIX = "numnet: error: "
DEBUG_ENVIRONMENT_VARIABLE = "NUMNET_DEBUG"
BROKEN_PIPE_STATUS = 141  # 128 + SIGPIPE, what a shell reports for a writer killed by a closed pipe
INTERRUPTED_STATUS = 130  # 128 + SIGINT
# The modules of the commands, in the order `numnet --help` lists them; each adds its own subparser.
COMMANDS = (train, evaluate, predict, generate, gradcheck, explain, experiments, playground, doctor, lr_find, export)


class ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr, like every other numnet error."""

    def error(self, message):
        self.exit(2, f"{ERROR_PREFIX}{message} (see '{self.prog} --help')\n")


def build_parser():
    """The argument parser of the ``numnet`` command."""
    parser = ArgumentParser(prog="numnet", description="Neural networks from scratch on NumPy.")
    parser.add_argument("--version", action="version", version=f"numnet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def error_message(error):
    """One line describing ``error`` for the user."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.strerror}: {error.filename}"
    elif isinstance(error, (NumnetError, OSError, ValueError, TypeError, KeyError, ArithmeticError)):
        text = str(error) or type(error).__name__
    else:
        text = (f"unexpected {type(error).__name__}: {error} (set {DEBUG_ENVIRONMENT_VARIABLE}=1 to see the "
                "traceback)")
    return " ".join(text.split())


def main(argv=None):
    """Run the ``numnet`` command with ``argv`` (default: sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("choose a command: train, evaluate, predict, generate, gradcheck, experiments, explain, "
                     "playground, doctor, lr-find or export")
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{ERROR_PREFIX}interrupted", file=sys.stderr)
        return INTERRUPTED_STATUS
    except BrokenPipeError:
        # The reader of our output went away (e.g. `numnet predict ... | head`): not an error worth a
        # message. Point stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_STATUS
    except Exception as error:  # every failure becomes one line; NUMNET_DEBUG=1 shows the traceback
        if os.environ.get(DEBUG_ENVIRONMENT_VARIABLE):
            raise
        print(ERROR_PREFIX + error_message(error), file=sys.stderr)
        return 1
