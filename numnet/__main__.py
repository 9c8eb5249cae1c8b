"""``python -m numnet``: the same command as ``numnet`` (see :mod:`numnet.cli`)."""

import sys

from numnet.cli import main

if __name__ == "__main__":
    sys.exit(main())
