"""minivgg: the VGG paper (Simonyan & Zisserman, ICLR 2015) in readable Python.

Layers, models, training and evaluation are written once; the maths runs on the backend chosen with
``set_backend("numpy" | "cupy" | "numba")``.
"""
from .backend import (BackendUnavailableError, asarray, available_backends, get_backend, register_backend,
                      registered_backends, set_backend, to_host)
from . import gradcheck, layers

__version__ = "0.1.0"

__all__ = ["BackendUnavailableError", "asarray", "available_backends", "get_backend", "register_backend",
           "registered_backends", "set_backend", "to_host", "gradcheck", "layers", "__version__"]
