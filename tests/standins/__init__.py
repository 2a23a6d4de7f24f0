"""Stand-ins for CuPy, the cuDNN frontend and NCCL: the GPU stack imitated on the CPU, for the test suite only.

CI has no GPU. These small packages let the CuPy backend's glue run anyway, with NumPy doing the arithmetic
and every rule of the real stack that glue code can break enforced, so a test can see it break:

    cupy/    arrays in a simulated device memory that refuse implicit conversion to NumPy, as CuPy's do
             (``numpy.asarray(a)`` raises, ``float(a)`` is a counted synchronising host read); memory pools
             with free lists; streams with their ordering rules (a read on one stream of memory written on
             another without an event between them is an error); stream capture that records work instead
             of running it, and graph replay that refuses dangling pointers; ``cupy.cuda.nccl`` over MPI
    cudnn/   NVIDIA's cuDNN frontend: graphs described with raw pointers, strides and execution plans,
             computing the reference convolution; switchable failures: the library missing (the import works,
             the first call raises, as the real frontend does), a graph kind without a plan, a workspace
             that grows
    counting.py  what the stand-ins count: host synchronisations, uploads and downloads with their bytes,
             allocations, kernel launches, cuDNN graph builds and executions, NCCL sums

They were written from the sources of CuPy 14.2, cudnn-frontend 1.x (``python/cudnn/__init__.py``,
``pygraph.cpp``) and ``cupy_backends/cuda/libs/nccl.pyx``, keeping their names and signatures. They are
stand-ins: passing tests through them verifies the glue's logic, never the GPU code itself (kernels, plan
availability, capture on a real driver, NCCL on real links).

Use: the ``cupy_standin`` fixture (``tests/conftest.py``) puts this folder first on ``sys.path`` so that
``import cupy`` and ``import cudnn`` find the stand-ins, and reloads minivgg's CuPy backend on them. A
subprocess gets them with ``environment()`` (a ``PYTHONPATH``); switches there are environment variables
(``STANDIN_GPUS``, ``STANDIN_VISIBLE_DEVICE_PER_RANK``, ``STANDIN_NCCL``, ``STANDIN_CUDNN``,
``STANDIN_COUNTS_FILE``), read when the stand-ins are imported.
"""
import os

PACKAGES = os.path.dirname(os.path.abspath(__file__))
STANDIN_MODULES = ("cupy", "cupy_backends", "cudnn")


def environment(base=None, **switches):
    """``base`` (default ``os.environ``) with this folder and ``tests/`` first on ``PYTHONPATH``: a
    subprocess started with it imports the stand-ins as ``cupy`` and ``cudnn``. ``switches`` are set as
    ``STANDIN_<NAME>`` variables (``gpus=2`` -> ``STANDIN_GPUS=2``)."""
    environment = dict(os.environ if base is None else base)
    paths = [PACKAGES, os.path.dirname(PACKAGES)]
    if environment.get("PYTHONPATH"):
        paths.append(environment["PYTHONPATH"])
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    for name, value in switches.items():
        environment[f"STANDIN_{name.upper()}"] = str(value)
    return environment
