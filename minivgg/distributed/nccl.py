"""Summing gradients between GPUs with NCCL through CuPy (``cupy.cuda.nccl``), its unique id sent over MPI.

As ChainerMN did: rank 0 makes an NCCL unique id, MPI broadcasts it, every rank joins the NCCL communicator
on its own GPU (this machine's rank r takes GPU r), and gradient buckets are summed on the device by
``ncclAllReduce`` on a separate stream, so the sum of one bucket overlaps the backward pass of the layers
below it. MPI still carries the small things (statistics, agreement to stop, parameter checksums).

UNVERIFIED: written without a GPU to run it on; the CPU tests cover everything else through MPI.
"""
import time

import numpy as np

from .communicator import RankLostError

__all__ = ["NCCLCommunicator"]


class NCCLCommunicator:
    """The ranks of ``mpi`` (an ``MPICommunicator``), one GPU each, summing device arrays with NCCL."""

    def __init__(self, mpi):
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as error:
            raise ImportError("--gpus needs CuPy with NCCL: pip install 'minivgg[cupy]' (NCCL comes with "
                              "CuPy's CUDA wheels on Linux)") from error
        self.cupy, self.nccl_module, self.mpi = cupy, nccl, mpi
        self.rank, self.size, self.local_rank = mpi.rank, mpi.size, mpi.local_rank
        self.timeout_seconds = mpi.timeout_seconds
        devices = cupy.cuda.runtime.getDeviceCount()
        if self.local_rank >= devices:
            raise ValueError(f"rank {self.rank} is the {self.local_rank + 1}-th on its machine, which has "
                             f"{devices} GPU(s): start at most one rank per GPU")
        cupy.cuda.Device(self.local_rank).use()
        unique_id = nccl.get_unique_id() if self.rank == 0 else None
        unique_id = mpi.comm.bcast(unique_id, root=0)
        self.comm = nccl.NcclCommunicator(self.size, unique_id, self.rank)
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.xp = cupy
        self._types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64,
                       np.dtype(np.float16): nccl.NCCL_FLOAT16}

    def start_sum(self, buffer):
        """Begin the in-place sum of the device array ``buffer``; returns an event recorded after it."""
        ready = self.cupy.cuda.Event()
        ready.record()                       # the gradient was written on the current stream
        self.stream.wait_event(ready)
        self.comm.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, self._types[buffer.dtype],
                            self.nccl_module.NCCL_SUM, self.stream.ptr)
        done = self.cupy.cuda.Event()
        done.record(self.stream)
        return done

    def progress(self, requests):
        pass  # NCCL runs on its own stream

    def wait(self, requests, what="gradients"):
        deadline = time.monotonic() + self.timeout_seconds
        for done in requests:
            while not done.done:
                if time.monotonic() > deadline:
                    raise RankLostError(f"rank {self.rank}: NCCL sum of {what} not done after "
                                        f"{self.timeout_seconds:g} s; another rank probably died")
                time.sleep(1e-4)
            self.cupy.cuda.get_current_stream().wait_event(done)

    def sum(self, values, what="statistics"):
        return self.mpi.sum(values, what)

    def broadcast(self, buffer, root=0):
        return self.mpi.broadcast(buffer, root)

    def gather_object(self, value):
        return self.mpi.gather_object(value)

    def abort(self, code=1):
        self.mpi.abort(code)
