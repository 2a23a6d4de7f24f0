"""Summing gradients between GPUs with NCCL through CuPy (``cupy.cuda.nccl``), its unique id sent over MPI.

As ChainerMN did: rank 0 makes an NCCL unique id, MPI broadcasts it, every rank joins the NCCL communicator
on its own GPU, and gradient buckets are summed on the device by ``ncclAllReduce`` on a separate stream, so
the sum of one bucket overlaps the backward pass of the layers below it. MPI still carries the small things
(statistics, agreement to stop, parameter checksums).

Which GPU. A machine's r-th rank takes its r-th visible GPU; under a scheduler that shows each rank only
its own GPU (``CUDA_VISIBLE_DEVICES`` with one device per rank) every rank takes its one device. Two ranks
of one machine on the same GPU are refused before NCCL starts (``choose_device``, ``check_distinct_gpus``).

NCCL itself is not in CuPy's wheels: ``pip install nvidia-nccl-cu13`` (part of ``minivgg[cupy]``). CuPy
imports without it and sets ``cupy.cuda.nccl.available = False``, which is checked here first.

UNVERIFIED on a GPU: the CPU tests run it over MPI through a stand-in of ``cupy.cuda.nccl``.
"""
import socket
import time

import numpy as np

from .communicator import RankLostError

__all__ = ["NCCLCommunicator", "choose_device", "check_distinct_gpus", "NCCL_INSTALL_COMMAND"]

NCCL_INSTALL_COMMAND = "pip install nvidia-nccl-cu13"  # NCCL for CUDA 13; also in pip install 'minivgg[cupy]'


def choose_device(local_rank, visible_devices):
    """The index, among this process's visible GPUs, that the machine's ``local_rank``-th rank takes.

    ``local_rank`` when there are enough visible devices; 0 when the process sees exactly one (a scheduler
    gave each rank its own GPU through ``CUDA_VISIBLE_DEVICES``); otherwise a ValueError.
    """
    if visible_devices < 1:
        raise ValueError("--gpus: this process sees no GPU (CUDA_VISIBLE_DEVICES empty?)")
    if local_rank < visible_devices:
        return local_rank
    if visible_devices == 1:
        return 0
    raise ValueError(f"rank {local_rank} of this machine sees {visible_devices} GPUs: start at most one rank per "
                     f"GPU (or give each rank its own GPU with CUDA_VISIBLE_DEVICES)")


def check_distinct_gpus(places, rank):
    """ValueError if another rank sits on the same GPU of the same machine as ``rank``.

    ``places`` : one ``(host name, PCI bus id)`` per rank, in rank order.
    """
    for other, place in enumerate(places):
        if other != rank and place == places[rank]:
            raise ValueError(f"ranks {min(rank, other)} and {max(rank, other)} would share the GPU {place[1]} of "
                             f"{place[0]}: start at most one rank per GPU")


class NCCLCommunicator:
    """The ranks of ``mpi`` (an ``MPICommunicator``), one GPU each, summing device arrays with NCCL."""

    def __init__(self, mpi):
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as error:
            raise ImportError(f"--gpus needs CuPy with NCCL: pip install 'minivgg[cupy]' ({error})") from error
        if not getattr(nccl, "available", False):  # CuPy imports without NCCL and says so here
            raise ImportError(f"--gpus needs NCCL, which CuPy {cupy.__version__} could not load: install it with "
                              f"`{NCCL_INSTALL_COMMAND}` (or pip install 'minivgg[cupy]')")
        self.cupy, self.nccl_module, self.mpi = cupy, nccl, mpi
        self.rank, self.size, self.local_rank = mpi.rank, mpi.size, mpi.local_rank
        self.timeout_seconds = mpi.timeout_seconds
        device = cupy.cuda.Device(choose_device(self.local_rank, cupy.cuda.runtime.getDeviceCount()))
        check_distinct_gpus(mpi.gather_object((socket.gethostname(), device.pci_bus_id)), self.rank)
        device.use()
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
