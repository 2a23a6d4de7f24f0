"""The device side of the CuPy backend: importing CuPy without needing it, finding a GPU, moving arrays.

Importing this module never needs CuPy or a GPU (CI has neither): ``cupy`` is None when the package is
missing, and ``check_available`` is where a missing package or device turns into a clear error, raised
when someone chooses the backend with ``minivgg.set_backend("cupy")``.
"""
import numpy as np

from ..contract import BackendUnavailableError

try:
    import cupy
except ImportError:  # no CuPy here: the backend is registered but cannot be chosen
    cupy = None

CUPY_INSTALL_HINT = "install it with `pip install 'cupy-cuda13x[ctk]'` (CUDA 13: an R580+ driver)"


def check_device():
    """Raise ``BackendUnavailableError`` unless CuPy is importable and sees at least one CUDA device."""
    if cupy is None:
        raise BackendUnavailableError(f"CuPy is not installed: {CUPY_INSTALL_HINT}.")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as error:  # no driver, or a driver older than CuPy's CUDA
        raise BackendUnavailableError(f"CuPy {cupy.__version__} is installed but no CUDA device was found "
                                      f"({error}).") from error
    if count == 0:
        raise BackendUnavailableError(f"CuPy {cupy.__version__} is installed but no CUDA device was found.")


def asarray(array, dtype=None):
    """A host array (or anything NumPy accepts), or a CuPy array, on the current GPU; cast only if ``dtype`` asks.

    The copy of a host array is asynchronous (``blocking=False``, CuPy's default, said here because it matters):
    CuPy stages the array in pinned memory and queues the copy on the current stream, so the host goes on at
    once and the copy runs in stream order before anything queued after it reads the result."""
    return cupy.asarray(array, dtype=dtype, blocking=False)


def to_host(array):
    """A CuPy array (or anything NumPy accepts) as a NumPy array; copies device memory to the host."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return array.get()
    return np.asarray(array)


class CopyStream:
    """Host-to-device copies on a CUDA stream of their own, ordered with the computing stream by events, never by
    the host waiting (the ``copy_stream`` capability of the backend contract).

    ``upload`` runs ``cupy.asarray`` on the copy stream: CuPy stages each host array in pinned memory and queues
    an asynchronous copy (``blocking=False``), so the host goes on at once and the copy engine moves the batch
    while the computing stream runs the previous step. ``take`` makes the computing stream wait for the copies
    (an event), and ``release`` records how far the computing stream has got when it no longer needs what it
    took: CuPy's memory pool hands a block freed by an array of the copy stream to the next allocation on that
    stream, so every later upload first waits for that event, or it could overwrite a batch not yet read.
    """

    def __init__(self):
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.released = None  # event on the computing stream: the arrays taken before it are read by then

    def upload(self, host_arrays):
        """Queue the copies of ``host_arrays``; ``(device arrays, event after the copies)``."""
        with self.stream:
            if self.released is not None:
                self.stream.wait_event(self.released)
            arrays = [cupy.asarray(array, blocking=False) for array in host_arrays]
            return arrays, self.stream.record()

    def take(self, uploaded):
        """The device arrays of an ``upload``, after which the current stream's work is ordered."""
        arrays, copied = uploaded
        cupy.cuda.get_current_stream().wait_event(copied)
        return arrays

    def release(self):
        """What was taken so far is read by the work queued so far on the current stream."""
        self.released = cupy.cuda.get_current_stream().record()


def copy_stream():
    """A ``CopyStream`` on the current device."""
    return CopyStream()
