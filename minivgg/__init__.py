"""minivgg: the VGG paper (Simonyan & Zisserman, ICLR 2015) in readable Python.

Layers, models, training and evaluation are written once; the maths runs on the backend chosen with
``set_backend("numpy" | "cupy" | "numba")``.
"""
from . import checkout  # noqa: F401  (a bare checkout: backends/ and data/ as setup.py maps them)
from .backend import (BackendUnavailableError, asarray, available_backends, get_backend, register_backend,
                      registered_backends, set_backend, to_host)
from . import class_names, gradcheck, layers, models, receptive_field, summary, weights
from .models import (VGG, vgg, vgg11, vgg11_bn, vgg11_lrn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg16_c, vgg19,
                     vgg19_bn)
from .hub import pretrained
from .prediction import Prediction, decode_predictions, predict

__version__ = "0.1.0"

__all__ = ["BackendUnavailableError", "asarray", "available_backends", "get_backend", "register_backend",
           "registered_backends", "set_backend", "to_host", "class_names", "gradcheck", "layers", "models",
           "receptive_field", "summary", "weights", "VGG", "vgg", "vgg11", "vgg11_lrn", "vgg13", "vgg16", "vgg16_c",
           "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "pretrained", "Prediction", "decode_predictions",
           "predict", "__version__"]
