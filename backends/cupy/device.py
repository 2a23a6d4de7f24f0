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
    """A host array (or anything NumPy accepts), or a CuPy array, on the current GPU; cast only if ``dtype`` asks."""
    return cupy.asarray(array, dtype=dtype)


def to_host(array):
    """A CuPy array (or anything NumPy accepts) as a NumPy array; copies device memory to the host."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return array.get()
    return np.asarray(array)
