"""The device side of the CuPy backend: importing CuPy without needing it, finding a GPU, moving arrays.

Importing this module never needs CuPy or a GPU (CI has neither): ``cupy`` is None when the package is
missing, and ``check_available`` is where a missing package or device turns into a clear error, raised
when someone chooses the backend with ``minivgg.set_backend("cupy")``.
"""
import numpy as np

from minivgg.backend import BackendUnavailableError

try:
    import cupy
except ImportError:  # no CuPy here: the backend is registered but cannot be chosen
    cupy = None

try:  # bfloat16 for NumPy and CuPy arrays comes from ml_dtypes (CuPy 14 uses it when present)
    import ml_dtypes
    bfloat16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:
    ml_dtypes = None
    bfloat16 = None

CUPY_INSTALL_HINT = "install it with `pip install cupy-cuda13x` (or the wheel matching your CUDA version)"


def check_available():
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
    """A host array (or anything NumPy accepts), or a CuPy array, on the current GPU.

    ``dtype`` may be ``"bfloat16"`` (needs the ``ml_dtypes`` package); other dtypes as NumPy spells them.
    """
    if isinstance(dtype, str) and dtype == "bfloat16":
        dtype = require_bfloat16()
    return cupy.asarray(array, dtype=dtype)


def to_host(array):
    """A CuPy array (or anything NumPy accepts) as a NumPy array; copies device memory to the host."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return array.get()
    return np.asarray(array)


def random_generator(seed):
    """A CuPy random generator, for dropout masks drawn on the device.

    The masks differ from the NumPy backend's for the same seed (another generator), but a given seed
    gives the same masks on every run, which is what resuming a run needs.
    """
    return cupy.random.default_rng(seed)


def require_bfloat16():
    """The bfloat16 dtype, or an ImportError saying how to get it."""
    if bfloat16 is None:
        raise ImportError("bfloat16 arrays need the ml_dtypes package (CuPy 14 reads its dtype): "
                          "`pip install ml_dtypes`")
    return bfloat16


def is_bfloat16(dtype):
    """True for the ml_dtypes bfloat16 dtype (NumPy reports its kind as 'V', so test by name)."""
    return np.dtype(dtype).name == "bfloat16"
