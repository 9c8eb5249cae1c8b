"""What the commands show while and after they run: the training progress, the doctor's findings, and
plots written only where matplotlib is installed."""

import importlib.util
import shutil
import sys

from numnet.errors import MissingDependencyError


class ProgressReporter:
    """The fit progress callback: a tqdm bar on a terminal, one line per epoch otherwise, nothing if quiet.

    Use it as a context manager: ``with ProgressReporter(quiet, epochs) as progress: fit(..., progress=progress)``
    (``progress`` is None when quiet); leaving the block closes the bar.
    """

    def __init__(self, quiet, epochs):
        self.bar = None
        self.callback = None
        if quiet:
            return
        if sys.stdout.isatty() and importlib.util.find_spec("tqdm") is not None:
            import tqdm

            # shutil falls back to 80x24 where a terminal reports a size of 0x0 (some ptys do), on which
            # tqdm itself would draw nothing.
            columns, lines = shutil.get_terminal_size()
            self.bar = tqdm.tqdm(total=epochs, unit="epoch", file=sys.stdout, ncols=columns, nrows=lines)
            self.callback = self._update_bar
        else:
            self.callback = lambda report: print(report.line(), flush=True)

    def _update_bar(self, report):
        postfix = {"loss": f"{report.loss:.4f}"}
        if report.val_accuracy is not None:
            postfix["test accuracy"] = f"{report.val_accuracy:.4f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    def __enter__(self):
        return self.callback

    def __exit__(self, *exception):
        if self.bar is not None:
            self.bar.close()
        return False


def printer(quiet):
    """print, or a function that prints nothing under --quiet."""
    return (lambda *parts: None) if quiet else print


def print_findings(findings):
    """The doctor's findings, one per line, or a line saying there are none."""
    if not findings:
        print("doctor: no problems found")
        return
    print(f"doctor: {len(findings)} finding{'s' if len(findings) > 1 else ''}")
    for finding in findings:
        print(f"  {finding.line()}")


def write_plot(draw, name):
    """[name] after ``draw()`` wrote it, or [] with a warning when matplotlib is missing."""
    try:
        draw()
    except MissingDependencyError as error:
        print(f"numnet: warning: {name} not written: {error}", file=sys.stderr)
        return []
    return [name]
