"""What the commands show while and after they run: the training progress, the doctor's findings, and
plots written only where matplotlib is installed."""

import importlib.util
import shutil
import sys

from numnet.errors import MissingDependencyError
from numnet.text import generate

#: A language model's samples: this many tokens under each epoch (line breaks shown as " / ") and at the
#: end (as written), by the vocabulary's level; from a line break, with a fixed seed so that the samples of
#: successive epochs differ only by what the model learnt.
EPOCH_SAMPLE_LENGTH = {"char": 80, "word": 20}
FINAL_SAMPLE_LENGTH = {"char": 200, "word": 60}
SAMPLE_SEED = 0


class ProgressReporter:
    """The fit progress callback: a tqdm bar on a terminal, one line per epoch otherwise, nothing if quiet.

    Use it as a context manager: ``with ProgressReporter(quiet, epochs) as progress: fit(..., progress=progress)``
    (``progress`` is None when quiet); leaving the block closes the bar. ``notes``, a function of the
    EpochReport, gives text to show under each epoch (a language model's sample).
    """

    def __init__(self, quiet, epochs, *, notes=None):
        self.bar = None
        self.callback = None
        self.notes = notes
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
            self.callback = self._print_line

    def _print_line(self, report):
        print(report.line(), flush=True)
        if self.notes is not None:
            print(self.notes(report), flush=True)

    def _update_bar(self, report):
        postfix = {"loss": f"{report.loss:.4f}"}
        # A language model's held-out perplexity says more than its token accuracy (its training perplexity
        # is e to the loss, shown already)
        if report.val_perplexity is not None:
            postfix["validation perplexity"] = f"{report.val_perplexity:.3f}"
        elif report.val_accuracy is not None:
            postfix["test accuracy"] = f"{report.val_accuracy:.4f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)
        if self.notes is not None:
            self.bar.write(self.notes(report), file=sys.stdout)

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


def epoch_sample(network, *, temperature):
    """One line: a short text the language model ``network`` generates now (its line breaks as " / ")."""
    text = generate(network, length=EPOCH_SAMPLE_LENGTH[network.vocabulary.level], temperature=temperature,
                    seed=SAMPLE_SEED)
    return "  sample: " + " / ".join(text.strip("\n").split("\n"))


def print_language_model_results(network, *, temperature):
    """The last epoch's training and validation perplexity (against a uniform guess's: the vocabulary's
    size), the validation accuracy per token, and a longer sample."""
    history = network.history
    size = len(network.vocabulary)
    print(f"training perplexity: {history.perplexity[-1]:.3f}   validation perplexity: "
          f"{history.val_perplexity[-1]:.3f}   (a uniform guess: {size})   validation accuracy per token: "
          f"{history.val_accuracy[-1]:.4f}")
    text = generate(network, length=FINAL_SAMPLE_LENGTH[network.vocabulary.level], temperature=temperature,
                    seed=SAMPLE_SEED)
    print(f"sample (temperature {temperature:g}, seed {SAMPLE_SEED}):")
    for line in text.strip("\n").split("\n"):
        print(f"  {line}")
