"""What every reference experiment returns: an :class:`ExperimentResult` whose rows put numnet's figure
next to the reference figure with a verdict, and the folder its figures go to."""

import dataclasses
import pathlib

# Verdicts of a row.
REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_COMPARABLE = "not comparable (quick run)"
INFORMATION = "information"


@dataclasses.dataclass
class ExperimentResult:
    """What one experiment produced.

    Attributes
    ----------
    id : str
        "E1" .. "E12".
    title : str
    figures : list of (str, pathlib.Path)
        (caption, PNG file) for every figure written.
    rows : list of (str, str, str, str)
        (quantity, numnet's figure, the reference figure, verdict); the verdict is one of
        REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE or INFORMATION.
    notes : list of str
        How the run differs from the write-up, and why.
    log : list of str
        The progress lines the write-up printed (loss every N steps, ...).
    skipped : str or None
        Why the experiment did not run (E5 without the MNIST files); None when it ran.
    seconds : float
        Wall-clock time of the run.
    """

    id: str
    title: str
    figures: list = dataclasses.field(default_factory=list)
    rows: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    log: list = dataclasses.field(default_factory=list)
    skipped: str = None
    seconds: float = 0.0

    def add_row(self, quantity, value, reference, verdict):
        """Append a table row; ``value`` and ``reference`` are shown as given (format numbers first)."""
        self.rows.append((str(quantity), str(value), str(reference), str(verdict)))

    def add_figure(self, caption, path):
        """Record a figure already written to ``path``."""
        self.figures.append((str(caption), pathlib.Path(path)))

    @property
    def reproduced(self):
        """False when any row was judged NOT_REPRODUCED; True otherwise (also for skipped experiments)."""
        return all(row[3] != NOT_REPRODUCED for row in self.rows)


# ---------------------------------------------------------------------------------------------------------
# Verdicts and the output folder


def verdict_within(value, reference, tolerance):
    """REPRODUCED when |value - reference| <= tolerance (the tolerance says how close counts as the same)."""
    return REPRODUCED if abs(value - reference) <= tolerance else NOT_REPRODUCED


def verdict_of(condition):
    """REPRODUCED when ``condition`` holds, else NOT_REPRODUCED."""
    return REPRODUCED if condition else NOT_REPRODUCED


def experiment_folder(output_dir, experiment_id):
    """The experiment's own folder under ``output_dir``, created if missing."""
    folder = pathlib.Path(output_dir) / experiment_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder

