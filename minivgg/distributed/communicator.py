"""The ranks of a data-parallel run and the collectives they need: an in-place sum, a broadcast, a gather.

Every collective is non-blocking underneath and waited on with a deadline: if a rank dies, ``mpirun`` normally
ends the others at once; should it not (a rank hung, a launcher that does not watch its children), the ones
still alive give up after ``timeout_seconds`` with ``RankLostError`` instead of waiting forever.
"""
import os
import time

import numpy as np

__all__ = ["LocalCommunicator", "MPICommunicator", "RankLostError", "launched_by_mpi", "world_size_from_environment"]

# What MPI launchers put into each rank's environment: Open MPI, MPICH/Intel MPI (Hydra, PMI), PMIx, Slurm.
_WORLD_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")

# A waiting rank looks at its requests after 20 us, then ever less often, up to every millisecond: a quick sum
# is seen at once, and a long wait (a slower rank) costs few wake-ups. (MPI's own Wait would spin on a core.)
_FIRST_PAUSE, _LAST_PAUSE = 2e-5, 1e-3


class RankLostError(RuntimeError):
    """Another rank stopped answering: it died, hung, or left the run."""


def world_size_from_environment():
    """The number of ranks an MPI launcher started this process among, or None when no launcher did."""
    for variable in _WORLD_SIZE_VARIABLES:
        value = os.environ.get(variable)
        if value is not None and value.isdigit():
            return int(value)
    return None


def launched_by_mpi():
    """Whether this process is one of several ranks started by ``mpirun``/``mpiexec``."""
    size = world_size_from_environment()
    return size is not None and size > 1


class LocalCommunicator:
    """One rank alone: every collective is the identity. The single-process counterpart of MPICommunicator."""

    rank, size, local_rank = 0, 1, 0
    timeout_seconds = None

    def start_sum(self, buffer):
        return "done"  # the sum over one rank is the buffer itself

    def wait(self, requests, what="gradients"):
        pass

    def progress(self, requests):
        pass

    def sum(self, values):
        return np.asarray(values, dtype=np.float64)

    def broadcast(self, buffer, root=0):
        return buffer

    def gather_object(self, value):
        return [value]

    def abort(self, code=1):
        raise SystemExit(code)


class MPICommunicator:
    """The ranks of ``MPI.COMM_WORLD`` (or ``comm``), through mpi4py.

    Parameters
    ----------
    comm : an mpi4py communicator (default ``MPI.COMM_WORLD``)
    timeout_seconds : float, how long a collective may wait for the other ranks before ``RankLostError``
    """

    def __init__(self, comm=None, timeout_seconds=300.0):
        try:
            from mpi4py import MPI
        except ImportError as error:
            raise ImportError("data-parallel training needs mpi4py and an MPI library: "
                              "pip install 'minivgg[mpi]' (or mpi4py built against the cluster's MPI)") from error
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.local_rank = self.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()  # this machine's ranks
        self.timeout_seconds = float(timeout_seconds)

    def start_sum(self, buffer):
        """Begin the in-place sum of ``buffer`` (a contiguous host array) over all ranks; returns a request."""
        return self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)

    def progress(self, requests):
        """Let MPI move started sums along (MPI progresses non-blocking operations inside MPI calls)."""
        if requests:
            self.MPI.Request.Testall(requests)

    def wait(self, requests, what="gradients"):
        """Wait for ``requests``, at most ``timeout_seconds``; RankLostError if they are still pending then."""
        deadline, pause = time.monotonic() + self.timeout_seconds, _FIRST_PAUSE
        while not self.MPI.Request.Testall(requests):
            if time.monotonic() > deadline:
                raise RankLostError(f"rank {self.rank}: the other {self.size - 1} rank(s) sent no {what} for "
                                    f"{self.timeout_seconds:g} s; one of them probably died (see its output). "
                                    f"Resume from the last checkpoint with --resume")
            time.sleep(pause)
            pause = min(2 * pause, _LAST_PAUSE)

    def sum(self, values, what="statistics"):
        """The float64 sum over all ranks of a small array of ``values``."""
        buffer = np.array(values, dtype=np.float64)
        self.wait([self.start_sum(buffer)], what)
        return buffer

    def broadcast(self, buffer, root=0):
        """Overwrite ``buffer`` (contiguous host array) on every rank with the root's."""
        self.wait([self.comm.Ibcast(buffer, root=root)], "parameters")
        return buffer

    def gather_object(self, value):
        """``[value of rank 0, value of rank 1, ...]`` on every rank (small picklable values: ints, strings)."""
        return self.comm.allgather(value)

    def abort(self, code=1):
        """End every rank of the run now (MPI_Abort): after an error on one rank, the others must not wait."""
        self.comm.Abort(code)
