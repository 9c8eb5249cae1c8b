"""A few lines of Python in a fresh interpreter: which modules an import pulls in, and what a user without an
optional package is told."""

import subprocess
import sys
import textwrap


def run_fresh(code):
    """The standard output of ``code`` run by a fresh interpreter; fails the test with its standard error if
    it exits with an error."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def missing_package_message(package, statements):
    """What numnet.MissingDependencyError says when ``statements`` run where ``package`` cannot be imported
    (``sys.modules[package] = None`` makes every import of it fail, as if it were not installed); "" when
    nothing is raised."""
    code = (f"import sys; sys.modules[{package!r}] = None\n"
            "import numnet\n"
            f"try:\n{textwrap.indent(statements, '    ')}\n"
            "except numnet.MissingDependencyError as error:\n    print(error)\n")
    return run_fresh(code)
