"""STAND-IN for ``cupy.cuda.nccl`` (tests only): NCCL's communicator, summing over MPI.

As CuPy 14.2 (``cupy/cuda/nccl.py``): when the NCCL library cannot be loaded the module still imports, with
``available = False`` and none of the names below (``STANDIN_NCCL=missing`` makes it so here). Otherwise
``get_unique_id()`` gives the 128 bytes rank 0 hands the others, and ``NcclCommunicator(ndev, commId, rank)``
joins them; this stand-in joins ``MPI.COMM_WORLD`` and checks what NCCL checks: the same id on every rank,
the rank and size MPI has, and no two ranks of one machine on the same GPU ("Duplicate GPU detected").
``allReduce`` reads and writes raw device pointers on the given stream, summing through ``MPI.Allreduce``.
"""
import os

available = os.environ.get("STANDIN_NCCL", "available") != "missing"

if available:
    import socket
    import types

    import numpy

    from standins import device as _device
    from standins.counting import COUNTS

    NCCL_UNIQUE_ID_BYTES = 128
    (NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32, NCCL_INT64, NCCL_UINT64, NCCL_FLOAT16, NCCL_FLOAT32,
     NCCL_FLOAT64, NCCL_BFLOAT16) = range(10)
    NCCL_CHAR, NCCL_INT, NCCL_HALF, NCCL_FLOAT, NCCL_DOUBLE = NCCL_INT8, NCCL_INT32, NCCL_FLOAT16, NCCL_FLOAT32, \
        NCCL_FLOAT64
    NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN, NCCL_AVG = range(5)
    _DTYPES = {NCCL_INT8: numpy.int8, NCCL_UINT8: numpy.uint8, NCCL_INT32: numpy.int32, NCCL_UINT32: numpy.uint32,
               NCCL_INT64: numpy.int64, NCCL_UINT64: numpy.uint64, NCCL_FLOAT16: numpy.float16,
               NCCL_FLOAT32: numpy.float32, NCCL_FLOAT64: numpy.float64}

    class NcclError(RuntimeError):
        def __init__(self, status, message=""):
            self.status = status
            super().__init__(f"NCCL_ERROR: {message}")

    def get_version():
        return 23203

    def get_build_version():
        return 23203

    def get_unique_id():
        return os.urandom(NCCL_UNIQUE_ID_BYTES)

    def groupStart():
        pass

    def groupEnd():
        pass

    class _OneRank:
        """MPI's world of one process, without starting MPI (a communicator of one GPU)."""

        def Get_size(self):
            return 1

        def Get_rank(self):
            return 0

        def allgather(self, value):
            return [value]

        def Allreduce(self, send, receive, op=None):
            receive[...] = send

    def _world(ndev):
        if ndev == 1:
            return types.SimpleNamespace(SUM=None, PROD=None, MAX=None, MIN=None), _OneRank()
        from mpi4py import MPI
        return MPI, MPI.COMM_WORLD

    class NcclCommunicator:
        """``NcclCommunicator(ndev, commId, rank)``: this rank's member of an NCCL communicator."""

        def __init__(self, ndev, commId, rank, config=None):
            if len(commId) != NCCL_UNIQUE_ID_BYTES:
                raise ValueError(f"commId length {len(commId)} != {NCCL_UNIQUE_ID_BYTES}.")
            self._mpi, self._world = _world(ndev)
            if self._world.Get_size() != ndev or self._world.Get_rank() != rank:
                raise NcclError(4, f"ncclInvalidArgument: rank {rank} of {ndev}, but MPI has rank "
                                   f"{self._world.Get_rank()} of {self._world.Get_size()}")
            if len(set(self._world.allgather(bytes(commId)))) != 1:
                raise NcclError(5, "ncclInvalidUsage: the ranks joined with different unique ids")
            self._device = _device.STATE.device
            where = (socket.gethostname(), _device.physical_device(self._device))
            places = self._world.allgather(where)
            for other, place in enumerate(places):
                if place == where and other != rank:
                    raise NcclError(5, f"ncclInvalidUsage: Duplicate GPU detected : rank {rank} and rank {other} "
                                       f"both on CUDA device {self._device} of {where[0]}")
            self._rank, self._size = rank, ndev

        def device_id(self):
            return self._device

        def rank_id(self):
            return self._rank

        def size(self):
            return self._size

        def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
            dtype = numpy.dtype(_DTYPES[datatype])
            shape, strides = (int(count),), (dtype.itemsize,)
            send, send_block = _device.array_at(sendbuf, shape, strides, dtype, "allReduce sendbuf")
            receive, receive_block = _device.array_at(recvbuf, shape, strides, dtype, "allReduce recvbuf")
            for block in (send_block, receive_block):
                if block.device != self._device:
                    raise NcclError(4, f"ncclInvalidArgument: a buffer on device {block.device}, the "
                                       f"communicator's is {self._device}")
            stream_object = _device._STREAMS.get(stream)
            if stream_object is None:
                raise NcclError(4, f"ncclInvalidArgument: unknown stream {stream:#x}")
            _device.touch([send_block], [receive_block], "ncclAllReduce", stream_object)
            COUNTS.add("nccl_all_reduces")
            operation = {NCCL_SUM: self._mpi.SUM, NCCL_PROD: self._mpi.PROD, NCCL_MAX: self._mpi.MAX,
                         NCCL_MIN: self._mpi.MIN}[op]
            total = numpy.empty_like(send)
            self._world.Allreduce(numpy.ascontiguousarray(send), total, op=operation)
            receive[...] = total

        def destroy(self):
            pass

        def abort(self):
            pass
