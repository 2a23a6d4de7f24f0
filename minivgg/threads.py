"""How many threads a process may use: the cores it may run on, and the environment that limits the BLAS and
OpenMP thread pools of a child process (the data-parallel ranks of ``distributed/launch.py``, the reproduction's
workers of ``reproduction/workers.py``), so that N children on N cores do not each start a pool per core."""
import os

__all__ = ["available_cores", "with_thread_limits"]

# Variables that set the BLAS and OpenMP thread pools.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def available_cores():
    """The CPU cores this process may run on (its affinity where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def with_thread_limits(environ, threads):
    """A copy of ``environ`` where each BLAS and OpenMP pool has ``threads`` threads, unless ``environ`` says."""
    environment = dict(environ)
    for variable in THREAD_VARIABLES:
        environment.setdefault(variable, str(threads))
    return environment
