"""A seeded byte mutator, an outcome tally and a memory probe for testing numnet's file readers.

Every reader promises: any sequence of bytes either loads exactly what was written or raises one of
numnet's own errors naming the file. A fuzz test builds valid files, mutates them with :func:`mutate`
(truncation, bit flips, overwritten, inserted, deleted and repeated spans) and runs the reader through
:meth:`Tally.run`, which counts each outcome and fails the test on anything else, naming the case.

The number of cases per reader is ``NUMNET_FUZZ_CASES`` (environment variable) or the test's default, a
few hundred, so CI takes seconds and a long run (``NUMNET_FUZZ_CASES=5000``) is one setting away.
"""

import collections
import os
import tracemalloc

import numpy as np
import pytest

FUZZ_CASES_VARIABLE = "NUMNET_FUZZ_CASES"
#: Mutations per damaged file: one to a few, so files stay close enough to valid to reach deep checks.
MAX_MUTATIONS = 3


def fuzz_cases(default):
    """The number of fuzz cases to run: $NUMNET_FUZZ_CASES when set, else ``default``."""
    return int(os.environ.get(FUZZ_CASES_VARIABLE, default))


def mutate(data, rng, *, n_mutations=None):
    """``data`` (bytes) with one to MAX_MUTATIONS random edits, drawn from ``rng``."""
    data = bytearray(data)
    n_mutations = n_mutations or int(rng.integers(1, MAX_MUTATIONS + 1))
    for _ in range(n_mutations):
        edit = EDITS[int(rng.integers(len(EDITS)))]
        data = edit(data, rng)
    return bytes(data)


def _position(data, rng):
    return int(rng.integers(0, max(len(data), 1)))


def _truncate(data, rng):
    return data[:_position(data, rng)]


def _flip_bit(data, rng):
    if data:
        data[_position(data, rng)] ^= 1 << int(rng.integers(8))
    return data


def _overwrite(data, rng):
    start = _position(data, rng)
    span = rng.integers(0, 256, size=int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    return data[:start] + span + data[start + len(span):]


def _insert(data, rng):
    start = _position(data, rng)
    return data[:start] + rng.integers(0, 256, size=int(rng.integers(1, 9)), dtype=np.uint8).tobytes() + data[start:]


def _delete(data, rng):
    start = _position(data, rng)
    return data[:start] + data[start + int(rng.integers(1, 17)):]


def _repeat(data, rng):
    start = _position(data, rng)
    return data[:start] + data[start:start + int(rng.integers(1, 65))] * 2 + data[start + 64:]


EDITS = (_truncate, _flip_bit, _flip_bit, _overwrite, _insert, _delete, _repeat)


class Tally:
    """Counts of what a reader did with each fuzz case: "loaded" or "rejected" (with its error named).

    Parameters
    ----------
    errors : exception class or tuple of classes
        numnet's errors the reader may raise; anything else fails the test.
    """

    def __init__(self, errors):
        self.errors = errors
        self.counts = collections.Counter()

    def run(self, case, read, path):
        """``read(path)``; returns its result, or None when it refused the file with one of ``errors``."""
        self.counts["cases"] += 1
        try:
            result = read(path)
        except self.errors as error:
            if str(path) not in str(error):
                pytest.fail(f"fuzz case {case}: the {type(error).__name__} does not name the file: {error}")
            self.counts["rejected"] += 1
            return None
        except Exception as error:  # the contract is broken: name the case so it can be replayed
            pytest.fail(f"fuzz case {case}: {type(error).__name__} escaped: {error}")
        self.counts["loaded"] += 1
        return result

    def report(self, reader):
        """One line of counts, printed for ``pytest -s`` and the issue's closing note."""
        counts = ", ".join(f"{key} {value}" for key, value in sorted(self.counts.items()))
        print(f"\nfuzz {reader}: {counts}")


def peak_memory(function):
    """The peak of memory allocated through Python's allocators (tracemalloc) while ``function()`` runs.

    NumPy reports its array buffers to tracemalloc too, so an array allocated from a hostile header counts.
    """
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
