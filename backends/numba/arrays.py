"""Where the Numba backend's arrays live, and how kernels are launched on them: the one place that knows
whether a real GPU or the CUDA simulator runs the kernels.

On a GPU the arrays are CuPy arrays (so this backend and the CuPy backend can hand data to each other), and
a kernel receives them through ``__cuda_array_interface__``: a pointer, a shape and strides, no copy. Under
Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, no GPU needed) the very same kernels run on NumPy arrays,
one Python thread per CUDA thread: slow, but every index can be checked on a laptop.

CuPy is imported only when a real GPU is used, so importing this backend never needs CuPy or a GPU.
"""
import math
import sys
import threading

import numba
import numpy as np
from numba import config, cuda

from ..contract import BackendUnavailableError

# Numba reads NUMBA_ENABLE_CUDASIM once, when it is first imported; so does this flag.
SIMULATOR = bool(config.ENABLE_CUDASIM)

# Threads per block of the one-thread-per-element kernels, and the most blocks they launch: beyond that a
# grid-stride loop (each thread steps by the whole grid) covers any size. The simulator starts one Python
# thread per CUDA thread, so it gets few.
THREADS_PER_BLOCK = 32 if SIMULATOR else 256
MAX_BLOCKS = 2 if SIMULATOR else 4096
# Blocks wanted for a long reduction split into ranges (``reduction_splits``): several waves over an H100's
# 132 SMs; under the simulator a few, so that tiny tests still split.
REDUCTION_BLOCKS = 3 if SIMULATOR else 1024


def _make_simulated_shared_arrays_thread_safe():
    """Give every thread of a simulated block the same ``cuda.shared.array``, as on a GPU.

    The simulator hands out shared arrays from a per-block table keyed by the calling source line, filled
    on first use without a lock: when the interpreter switched threads between the look-up and the insert
    (in 2 of 6 runs of the simulator tests on a busy machine), two threads of one block got two different
    "shared" arrays and the block computed garbage. Here the look-up and the insert happen under one lock.
    The key is the same (file, line) the simulator uses, read from the caller's frame.
    """
    from numba.cuda.simulator import kernelapi

    simulator_array = kernelapi.FakeCUDAShared.array
    lock = threading.Lock()

    def array(self, shape, dtype):
        if shape == 0:  # dynamic shared memory: one buffer for the block, no table to race on
            return simulator_array(self, shape, dtype)
        caller = sys._getframe(1)
        site = (caller.f_code.co_filename, caller.f_lineno)
        with lock:
            allocated = self._allocations.get(site)
            if allocated is None:
                if isinstance(dtype, kernelapi.types.Type):
                    dtype = kernelapi.numpy_support.as_dtype(dtype)
                allocated = self._allocations[site] = np.empty(shape, dtype)
        return allocated

    kernelapi.FakeCUDAShared.array = array


if SIMULATOR:
    _make_simulated_shared_arrays_thread_safe()


def array_module():
    """The module whose arrays this backend uses: CuPy on a GPU, NumPy under the simulator."""
    if SIMULATOR:
        return np
    import cupy  # only on a real GPU; check_available says so when it is missing
    return cupy


def check_available():
    """Raise ``BackendUnavailableError`` unless the kernels can run here (a CUDA GPU with CuPy, or the simulator)."""
    if SIMULATOR:
        return
    if not cuda.is_available():
        raise BackendUnavailableError(
            "Numba sees no CUDA GPU (numba.cuda.is_available() is False) and the CUDA simulator is off "
            "(NUMBA_ENABLE_CUDASIM is not 1).")
    try:
        import cupy  # noqa: F401
    except ImportError as error:
        raise BackendUnavailableError(
            f"on a GPU it keeps its arrays in CuPy, which cannot be imported ({error}): "
            "pip install cupy-cuda13x.") from error


def device_function(function):
    """Compile ``function`` as a CUDA device function, inlined into the kernels that call it (so that the
    small arrays it fills can stay in registers). The simulator runs it as plain Python."""
    if SIMULATOR:
        return cuda.jit(device=True)(function)
    return cuda.jit(device=True, forceinline=True)(function)


def on_device(array):
    """The argument a kernel launch gets for ``array``.

    A CuPy array is wrapped once as a Numba device array: a launch then costs about 50 us instead of 130
    (measured on an H100, see the anchors). ``sync=False``: both libraries queue work on the same default
    stream, so it runs in order without the host waiting for the GPU before every launch.
    """
    if SIMULATOR:
        return array
    return cuda.as_cuda_array(array, sync=False)


def grid_for(size):
    """``(blocks, threads)`` for a one-thread-per-element kernel over ``size`` elements (grid-stride beyond
    ``MAX_BLOCKS * THREADS_PER_BLOCK``)."""
    return max(1, min(MAX_BLOCKS, math.ceil(size / THREADS_PER_BLOCK))), THREADS_PER_BLOCK


INDEX_LIMIT = 2 ** 31  # elements an int32 index reaches


def index_type(*arrays):
    """``numba.int32`` when every array has fewer than 2**31 elements, else ``numba.int64``.

    GPUs do 32-bit integer arithmetic natively and emulate 64-bit division and remainder in tens of
    instructions, while ``cuda.grid`` and ``array.size`` are 64-bit: a kernel that splits a flat index into
    (pixel, channel) pays for it per element. Kernels made by ``kernel_for_index`` take this type and cast
    their loop bounds to it, so their index arithmetic is 32-bit whenever that is safe.
    """
    return numba.int32 if all(array.size < INDEX_LIMIT for array in arrays) else numba.int64


def kernel_for_index(make):
    """``make(index)`` -> a kernel, built once per index type: ``variants(index_type(...))`` launches the one
    with 32-bit or 64-bit index arithmetic (``index_type``)."""
    built = {}

    def variant(index):
        if index not in built:
            built[index] = make(index)
        return built[index]
    return variant


def check_same_dtype(op, **arrays):
    """Raise ``ValueError`` unless every array has one floating dtype: the kernels do not mix precisions."""
    dtypes = {name: array.dtype for name, array in arrays.items()}
    first = next(iter(dtypes.values()))
    if first.kind != "f" or any(dtype != first for dtype in dtypes.values()):
        described = ", ".join(f"{name} {dtype}" for name, dtype in dtypes.items())
        raise ValueError(f"{op}: expected arrays of one floating dtype (float32 or float64), got {described}")


class MemoryLayout:
    """The order an array's axes have in memory, to run elementwise kernels on its flat buffer.

    The ops receive NCHW-shaped arrays that are often views of NHWC memory (a convolution's output). An
    elementwise kernel does not care about axes, only about visiting each element once: so it runs on the
    1-D buffer, and the result is given back the input's shape *and* memory order. A second array (a
    gradient, a mask) is flattened in the same order, copied only if its memory differs.

    Parameters
    ----------
    like : array whose memory order is followed
    """

    def __init__(self, like):
        # Axes from the largest stride to the smallest: a C-contiguous array gives 0, 1, ..., ndim - 1.
        self.order = tuple(sorted(range(like.ndim), key=lambda axis: -abs(like.strides[axis])))
        self.inverse = tuple(int(axis) for axis in np.argsort(self.order))
        self.shape_in_order = tuple(like.shape[axis] for axis in self.order)
        self.shape = tuple(like.shape)

    def flatten(self, array, what="array"):
        """(shape) array -> 1-D array of its elements in this memory order (a view when already so laid out).

        ``what`` names the array in the error raised when its shape is not the layout's.
        """
        if tuple(array.shape) != self.shape:
            raise ValueError(f"expected {what} of shape {self.shape}, got {tuple(array.shape)}")
        return array_module().ascontiguousarray(array.transpose(self.order)).reshape(-1)

    def restore(self, flat):
        """1-D array in this memory order -> an array of the original shape (a view, no copy)."""
        return flat.reshape(self.shape_in_order).transpose(self.inverse)


def reduction_splits(length, blocks_without_split, step, blocks_wanted):
    """Split a reduction of ``length`` terms into ranges, one block each, so that about ``blocks_wanted``
    blocks run: ``(splits, chunk)``, ``chunk`` a multiple of ``step``, ``splits * chunk >= length``.

    A long sum computed by a few blocks leaves most of the GPU idle; split into ranges summed afterwards,
    it keeps every SM busy. Each range keeps at least 8 steps, so a block's setup is not most of its work.
    """
    splits = max(1, min(math.ceil(blocks_wanted / blocks_without_split), math.ceil(length / (8 * step))))
    chunk = math.ceil(math.ceil(length / splits) / step) * step
    return max(1, math.ceil(length / chunk)), chunk


def speed_up_simulator(switch_interval=1e-5):
    """Let the CUDA simulator's threads take turns faster: about 5-10x quicker kernels, nothing else changes.

    The simulator runs one Python thread per CUDA thread, and its main thread polls them at every
    ``syncthreads``; with Python's default 5 ms switch interval most of the time goes to waiting for a turn.
    This sets the interpreter's switch interval (a process-wide setting, hence a call the caller makes, not
    a side effect of importing), and does nothing on a real GPU.
    """
    if SIMULATOR:
        sys.setswitchinterval(switch_interval)
