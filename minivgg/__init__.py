"""minivgg: the VGG paper (Simonyan & Zisserman, ICLR 2015) in readable Python.

Layers, models, training and evaluation are written once; the maths runs on the backend chosen with
``set_backend("numpy" | "cupy" | "numba")``.
"""
import importlib.util as _importlib_util
import pathlib as _pathlib
import sys as _sys


def _register_checkout_folders():
    """``import minivgg`` from a checkout that was never installed: setup.py installs ``backends/`` as
    ``minivgg.backends`` and ``data/`` as ``minivgg.resources``; without an installation each is registered
    here from its folder beside ``minivgg/``, when and only when Python cannot find it otherwise."""
    root = _pathlib.Path(__file__).resolve().parent.parent
    for name, folder in {"minivgg.backends": "backends", "minivgg.resources": "data"}.items():
        init = root / folder / "__init__.py"
        if name in _sys.modules or _importlib_util.find_spec(name) is not None or not init.is_file():
            continue
        spec = _importlib_util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
        module = _importlib_util.module_from_spec(spec)
        _sys.modules[name] = module
        spec.loader.exec_module(module)
        globals()[name.rpartition(".")[2]] = module  # as the import system does: ``minivgg.backends`` works


_register_checkout_folders()

from .backends.contract import BackendUnavailableError  # noqa: E402
from .backend import (asarray, available_backends, get_backend, register_backend, registered_backends,  # noqa: E402
                      set_backend, to_host)
from . import class_names, gradcheck, layers, models, receptive_field, summary, weights  # noqa: E402
from .models import (VGG, vgg, vgg11, vgg11_bn, vgg11_lrn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg16_c,  # noqa: E402
                     vgg19, vgg19_bn)

__version__ = "0.1.0"

# Published weights and prediction pull in image decoding and the evaluation loop: imported when first used,
# so that ``import minivgg`` (every command's start) stays as light as the layers and models.
_LAZY = {"pretrained": "weights.published", "Prediction": "evaluation.prediction",
         "decode_predictions": "evaluation.prediction", "predict": "evaluation.prediction"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

__all__ = ["BackendUnavailableError", "asarray", "available_backends", "get_backend", "register_backend",
           "registered_backends", "set_backend", "to_host", "class_names", "gradcheck", "layers", "models",
           "receptive_field", "summary", "weights", "VGG", "vgg", "vgg11", "vgg11_lrn", "vgg13", "vgg16", "vgg16_c",
           "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "pretrained", "Prediction", "decode_predictions",
           "predict", "__version__"]
