"""The experiments by id (EXPERIMENTS), and running a selection of them."""

import time

from numnet.backend import one_blas_thread

from .convolution import run_e12
from .encoder_decoder import run_e14, run_e15
from .first_networks import run_e1, run_e2, run_e3, run_e4, run_e7
from .gradients import run_e5, run_e6
from .sequences import run_e13
from .transformer import run_e16
from .tricks import run_e8, run_e9, run_e10, run_e11

# ---------------------------------------------------------------------------------------------------------
# Running a selection and writing the report

EXPERIMENTS = {"E1": run_e1, "E2": run_e2, "E3": run_e3, "E4": run_e4, "E5": run_e5, "E6": run_e6, "E7": run_e7,
               "E8": run_e8, "E9": run_e9, "E10": run_e10, "E11": run_e11, "E12": run_e12,
               "E13": run_e13, "E14": run_e14, "E15": run_e15, "E16": run_e16}


def check_experiment_ids(ids):
    """The experiment ids normalised to "E1".."E16" (all of them for None or empty), in the order given.

    Raises
    ------
    ValueError
        For an id that is not one of E1..E16.
    """
    if not ids:
        return list(EXPERIMENTS)
    normalised = []
    for identifier in ids:
        key = str(identifier).strip().upper()
        if key not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {identifier!r}; choose from {', '.join(EXPERIMENTS)}")
        if key not in normalised:
            normalised.append(key)
    return normalised


def run_experiments(ids, output_dir, *, quick=False, progress=None):
    """Run the chosen experiments with their default seeds; figures go to ``output_dir/<id>/``.

    Parameters
    ----------
    ids : sequence of str or None
        E.g. ["E1", "e3"]; None or empty runs all of them.
    output_dir : str or os.PathLike
    quick : bool, default False
        Shorten the long schedules (E3-E5, E8-E16).
    progress : callable, optional
        Called with each ExperimentResult as soon as it is done.

    Returns
    -------
    list of ExperimentResult
    """
    results = []
    for key in check_experiment_ids(ids):
        started = time.perf_counter()
        with one_blas_thread():
            result = EXPERIMENTS[key](output_dir, quick=quick)
        result.seconds = time.perf_counter() - started
        results.append(result)
        if progress is not None:
            progress(result)
    return results


