"""Independent pieces of the NumPy backend's work on all the processor's cores, with a one-thread BLAS.

NumPy's copies and BLAS products release Python's global interpreter lock, so plain Python threads run them
in parallel. The pieces are cache-sized chunks of a convolution's unfolded matrix (``conv.py``): each worker
unfolds its chunk and multiplies it while it is still in cache; or blocks of a fully-connected layer's
product (``matmul``).

BLAS is held to one thread throughout the backend's products (``one_blas_thread``), for two reasons:
every core runs its own chunk instead of every chunk's product spreading over all cores; and a
multi-threaded BLAS call leaves OpenBLAS's worker threads spinning, waiting for the next one, for a
fraction of a second afterwards, on the very cores the pieces need. Measured on a 2-core machine
(configuration D at width 1/4, 32x32, batch 64, one SGD step): 135-145 ms with BLAS free between the
pieces, 86 ms with it held to one thread, the whole process using 265 ms and 135 ms of CPU time.
"""
import functools
import itertools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# The cores this process may run on: one each for N data-parallel ranks that mpirun bound to a core apiece.
WORKERS = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 16))

# Products below this many multiply-adds run in the calling thread: handing them over costs more.
PARALLEL_MIN_MACS = 2 ** 22

_pool = None
_blas = None
_blas_modules = 0  # len(sys.modules) when the controller scanned the libraries
_lock = threading.Lock()
_PREFIX = "minivgg-numpy"  # the pool's thread names: a piece that runs pieces itself runs them serially


def _executor_and_blas():
    """The worker pool and the BLAS controller, made on first use.

    The controller knows the BLAS libraries loaded when it scanned them; one loaded later (SciPy's or
    scikit-learn's OpenBLAS, imported after the first convolution) would keep its threads spinning beside the
    pool's. A new library only arrives with an imported extension module, so the scan is redone whenever
    ``sys.modules`` has grown, which costs nothing on the hot path otherwise.
    """
    global _pool, _blas, _blas_modules
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, WORKERS - 1), thread_name_prefix=_PREFIX)
        if _blas is None or len(sys.modules) != _blas_modules:
            from threadpoolctl import ThreadpoolController
            _blas, _blas_modules = ThreadpoolController(), len(sys.modules)
    return _pool, _blas


def _forget_pool_in_a_forked_child():
    """A process forked from one whose pool has run holds the pool object but none of its threads: a piece
    handed to it would wait forever. The child makes its own pool, and its own lock (one held by another thread
    at the fork would never be released), on first use."""
    global _pool, _blas, _blas_modules, _lock
    _pool, _blas, _blas_modules, _lock = None, None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_a_forked_child)


def one_blas_thread(op):
    """Decorator: ``op`` runs with BLAS held to one thread (restored afterwards); its products run on all
    cores through ``run_pieces`` instead."""
    if WORKERS < 2:
        return op

    @functools.wraps(op)
    def with_one_blas_thread(*args, **kwargs):
        _, blas = _executor_and_blas()
        with blas.limit(limits=1, user_api="blas"):
            return op(*args, **kwargs)

    return with_one_blas_thread


def run_pieces(work, pieces):
    """``[work(piece) for piece in pieces]``, the pieces spread over ``WORKERS`` threads, in order.

    The calling thread and ``WORKERS - 1`` pool threads each take the next piece not yet taken until none
    is left: one hand-over per thread instead of one per piece (a future per piece cost as much as a small
    piece's copy), and a thread on a busy core simply takes fewer pieces. A single piece, or a single
    worker, runs in the calling thread.
    """
    pieces = list(pieces)
    if len(pieces) < 2 or WORKERS < 2 or threading.current_thread().name.startswith(_PREFIX):
        return [work(piece) for piece in pieces]
    pool, blas = _executor_and_blas()
    results = [None] * len(pieces)
    next_index = itertools.count().__next__  # atomic: one C call under the interpreter lock

    def take_pieces():
        for index in iter(next_index, None):
            if index >= len(pieces):
                return
            results[index] = work(pieces[index])

    with blas.limit(limits=1, user_api="blas"):
        helpers = [pool.submit(take_pieces) for _ in range(min(WORKERS, len(pieces)) - 1)]
        try:
            take_pieces()
        finally:
            for helper in helpers:  # wait for all before returning or raising: none may still be writing
                helper.exception()
        for helper in helpers:
            helper.result()
    return results


def matmul(a, b):
    """``a @ b`` for 2-D arrays on all cores: the rows of ``a`` split into one block per worker, or, when ``a``
    has few rows (a batch of feature vectors), the columns of ``b``."""
    m, k = a.shape
    n = b.shape[1]
    if WORKERS < 2 or m * k * n < PARALLEL_MIN_MACS:
        return a @ b
    out = np.empty((m, n), dtype=np.result_type(a, b))
    split_rows = m >= 64 * WORKERS
    size = m if split_rows else n
    blocks = [(size * i // WORKERS, size * (i + 1) // WORKERS) for i in range(WORKERS)]

    def block(bounds):
        lo, hi = bounds
        if split_rows:
            np.matmul(a[lo:hi], b, out=out[lo:hi])
        else:
            np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])

    run_pieces(block, blocks)
    return out
