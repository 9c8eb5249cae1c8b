"""Data-parallel training: how one global batch is split over processes and their gradients combined.

Every process (an MPI rank) holds the same network and draws the same global batch order from the same
seed. Each rank reads only its shard of every global batch, computes the mean loss and gradient over that
shard, weights them by shard size / global batch size, and one Allreduce (a sum) over the single flat
gradient buffer gives every rank the gradient of the whole global batch. Every rank then applies the same
optimiser step, so the weights stay identical everywhere without ever being sent.

Because every loss is a mean over the batch, Σ_r (n_r / n) · mean_r = mean over the global batch: the
result equals a single process's up to the order of floating-point sums.
"""

import sys
import time
from contextlib import contextmanager

import numpy as np

from .backend import namespace, to_numpy
from .errors import require

#: Pause between printing a failure and aborting: MPI_Abort kills the job at once, and mpiexec may exit
#: before it has forwarded what the failing rank just wrote to stderr (seen with MPICH's Hydra).
ABORT_GRACE_SECONDS = 1.0


class SingleProcess:
    """The trivial communicator of an ordinary, one-process run: every reduction is the identity."""

    rank = 0
    size = 1
    is_root = True

    def shard_bounds(self, n_rows):
        """(start, stop) of this rank's rows in a global batch of ``n_rows`` (here: all of them)."""
        return 0, n_rows

    def shard(self, indices):
        """This rank's part of a global batch: ``indices[start:stop]`` of :meth:`shard_bounds`."""
        start, stop = self.shard_bounds(len(indices))
        return indices[start:stop]

    def combine_gradients(self, flat_gradients, loss, local_count, global_count):
        """Return the loss of the global batch; ``flat_gradients`` becomes its gradient (here: unchanged)."""
        return loss

    def sum(self, values):
        """Element-wise sum of a small float64 vector over all ranks (here: unchanged)."""
        return np.asarray(values, dtype=np.float64)

    def abort(self, code=1):
        """Stop every rank (here: just this process)."""
        raise SystemExit(code)


class MPICommunicator(SingleProcess):
    """Data parallelism over MPI ranks through mpi4py.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        Default: ``MPI.COMM_WORLD``.

    Raises
    ------
    MissingDependencyError
        When mpi4py is not installed (``pip install 'numnet[mpi]'``).
    """

    def __init__(self, comm=None):
        mpi = require("mpi4py.MPI", "mpi", "distributed training")
        self._mpi = mpi
        self.comm = comm if comm is not None else mpi.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.is_root = self.rank == 0

    def shard_bounds(self, n_rows):
        # Contiguous, nearly equal pieces: rank r gets the r-th of `size` slices of the global batch.
        bounds = np.linspace(0, n_rows, self.size + 1).round().astype(int)
        return int(bounds[self.rank]), int(bounds[self.rank + 1])

    def combine_gradients(self, flat_gradients, loss, local_count, global_count):
        weight = local_count / global_count
        flat_gradients *= weight
        # One message for every parameter of the model: the flat buffer the layers' gradients view.
        self.comm.Allreduce(self._mpi.IN_PLACE, flat_gradients, op=self._mpi.SUM)
        return float(self.sum([loss * weight])[0])

    def sum(self, values):
        values = np.array(values, dtype=np.float64)
        self.comm.Allreduce(self._mpi.IN_PLACE, values, op=self._mpi.SUM)
        return values

    def abort(self, code=1):
        self.comm.Abort(code)


class BatchContext:
    """Where this process's rows sit in the current global batch, for layers that look across the batch.

    Dropout draws its mask for the whole global batch and keeps this shard's rows, so every rank drops
    exactly the units one process would; BatchNorm sums its statistics over every rank (synchronised batch
    normalisation), so they are the global batch's. ``fit`` hands one context to every layer
    (``layer.context``) and moves it along each step; outside ``fit`` a layer has no context and its input
    is the whole batch. A small object passed to the layers, not a global, so two networks training in one
    process never see each other's batches.

    Parameters
    ----------
    communicator : SingleProcess or MPICommunicator
    """

    def __init__(self, communicator):
        self.communicator = communicator
        self.global_size = 0
        self.start = 0
        self.local_size = 0

    def move_to(self, global_size, start, local_size):
        """Describe the next step's batch: ``local_size`` rows from ``start`` of ``global_size``."""
        self.global_size, self.start, self.local_size = int(global_size), int(start), int(local_size)

    @property
    def is_distributed(self):
        """Whether other processes hold the rest of the batch."""
        return self.communicator.size > 1

    @property
    def weight(self):
        """This shard's share of the global batch, n_local / n_global: the factor of its mean loss."""
        return self.local_size / self.global_size

    def sum(self, array):
        """The element-wise sum of ``array`` (any backend) over every rank; the array itself in one process."""
        if not self.is_distributed:
            return array
        xp = namespace(array)
        total = self.communicator.sum(np.reshape(to_numpy(array), -1))  # float64 on every rank
        return xp.reshape(xp.asarray(total, dtype=array.dtype), tuple(array.shape))


def get_communicator(distributed):
    """``SingleProcess()`` for False/None, an :class:`MPICommunicator` for True, or the given communicator."""
    if distributed is None or distributed is False:
        return SingleProcess()
    if distributed is True:
        return MPICommunicator()
    if isinstance(distributed, SingleProcess):
        return distributed
    raise TypeError(f"distributed must be True, False or a communicator, got {type(distributed).__name__}")


@contextmanager
def stop_all_ranks_on_failure(communicator, stream=None):
    """Turn an exception on one rank into a clear message naming that rank and a stop of every rank.

    Without this, the other ranks would wait forever in their next Allreduce for the rank that failed.
    """
    try:
        yield
    except BaseException as error:  # noqa: BLE001 - any failure must stop the whole job, SystemExit included
        if communicator.size == 1:
            raise
        if isinstance(error, SystemExit) and not error.code:
            raise
        stream = stream or sys.stderr
        print(f"numnet: error: rank {communicator.rank} of {communicator.size} failed: "
              f"{type(error).__name__}: {error}; stopping every rank", file=stream, flush=True)
        time.sleep(ABORT_GRACE_SECONDS)
        communicator.abort(1)
