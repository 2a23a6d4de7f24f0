"""The backend registry: which module does the maths.

The active backend is the one global of minivgg. Backends are imported lazily, on first use, so that
importing minivgg never needs CuPy, Numba or a GPU; choosing one that cannot run raises
``BackendUnavailableError`` (an ``ImportError``) saying what is missing and how to get it.
"""
import importlib

from .backends.contract import CAPABILITIES, BackendUnavailableError, contract_problems

__all__ = ["BackendUnavailableError", "register_backend", "set_backend", "get_backend", "available_backends",
           "registered_backends", "supports", "asarray", "to_host", "weights_frozen"]


# name -> (module path, how to make it available)
_REGISTRY = {
    "numpy": ("minivgg.backends.numpy", "NumPy is a dependency of minivgg: reinstall it with `pip install minivgg`."),
    "reference": ("minivgg.backends.reference", "It is part of minivgg: reinstall it with `pip install minivgg`."),
    "cupy": ("minivgg.backends.cupy",
             "It needs an NVIDIA GPU with a CUDA 13 driver (R580 or newer) and `pip install 'minivgg[cupy]'` "
             "(CuPy with its CUDA libraries, cuDNN and its frontend, NCCL)."),
    "numba": ("minivgg.backends.numba",
              "It needs Numba with numba-cuda, CuPy and an NVIDIA GPU: `pip install 'minivgg[numba]'`; "
              "without a GPU, set NUMBA_ENABLE_CUDASIM=1 to run its kernels in the (slow) CUDA simulator."),
}
_loaded = {}
_active = None


def register_backend(name, module_path, install_hint=""):
    """Make a backend module choosable by ``set_backend(name)``.

    The module must honour the contract (``minivgg.backends.contract``); ``set_backend`` checks it.
    """
    _REGISTRY[name] = (module_path, install_hint)
    _loaded.pop(name, None)


def registered_backends():
    """Names of every registered backend, usable here or not."""
    return list(_REGISTRY)


def _load(name):
    if name not in _REGISTRY:
        raise ValueError(f"unknown backend {name!r}; registered backends are {registered_backends()}")
    if name in _loaded:
        return _loaded[name]
    module_path, install_hint = _REGISTRY[name]
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as error:
        raise BackendUnavailableError(
            f"backend {name!r} cannot be imported: module {error.name!r} is missing. {install_hint}") from error
    problems = contract_problems(module)
    if problems:
        raise TypeError(f"backend {name!r} ({module_path}) does not honour the backend contract: "
                        + "; ".join(problems))
    try:
        module.check_available()
    except BackendUnavailableError as error:
        raise BackendUnavailableError(f"backend {name!r} is unavailable: {error} {install_hint}") from error
    _loaded[name] = module
    return module


def set_backend(name):
    """Choose the module that runs every layer from now on, and return it.

    Parameters
    ----------
    name : str, one of ``registered_backends()``

    Raises
    ------
    ValueError for an unknown name; BackendUnavailableError (an ImportError) when the backend's package
    or device is missing.
    """
    global _active
    _active = _load(name)
    return _active


def get_backend():
    """The active backend module (NumPy unless ``set_backend`` chose another)."""
    global _active
    if _active is None:
        _active = _load("numpy")
    return _active


def available_backends():
    """Names of the registered backends that can run on this machine now."""
    names = []
    for name in _REGISTRY:
        try:
            _load(name)
        except ImportError:
            continue
        names.append(name)
    return names


def supports(capability, backend=None):
    """Whether ``backend`` (default: the active one) offers an optional capability of the contract.

    ``capability`` is one of ``minivgg.backends.contract.CAPABILITIES``: ``"fused_conv_relu"``,
    ``"graph_capture"``, ``"precision"``, ``"frozen_weights"``, ``"copy_stream"``; another name is a ValueError.
    """
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; the contract knows {sorted(CAPABILITIES)}")
    return capability in (backend or get_backend()).capabilities


def asarray(array, dtype=None):
    """A host array (or anything NumPy accepts) on the active backend's device."""
    return get_backend().asarray(array, dtype=dtype)


def to_host(array):
    """An array of any backend back to a NumPy array."""
    return get_backend().to_host(array)


def weights_frozen():
    """A context manager for code that reads the weights without changing them (evaluation): the active
    backend's ``weights_frozen()`` where it has the ``frozen_weights`` capability (it may then prepare each
    weight once for all batches), else nothing."""
    import contextlib
    backend = get_backend()
    return backend.weights_frozen() if supports("frozen_weights", backend) else contextlib.nullcontext()
