"""The CuPy backend: the NumPy reference on an NVIDIA GPU, plus what the device forces.

Every op of the reference (``backends/reference``) is written against ``xp = array_module(x)``, so given CuPy
arrays it runs on the GPU unchanged: this backend starts from those functions (``install_reference``) and
replaces only

    conv.py           the convolution pair through cuDNN (the im2col fallback is the reference itself), and
                      the fused conv+bias+ReLU pair (capability ``fused_conv_relu``)
    conv_cudnn.py     the three cuDNN graphs per shape, their cache and the shared workspace
    precision.py      ``set_precision("fp32" | "tf32")`` for the convolutions (capability ``precision``);
                      ``weights_frozen()`` (capability ``frozen_weights``): weights laid out once while evaluating
    graph_capture.py  a whole training step as one CUDA graph (capability ``graph_capture``)
    optimizer.py      the SGD update as one elementwise kernel per parameter instead of six
    device.py         finding CuPy and a GPU, host/device transfers, a stream for copies that overlap the
                      computation (capability ``copy_stream``)

Each override's docstring says what justifies it. Two elementwise kernels of its own, each counted through the
stand-ins: the fused ReLU's backward (no mask array) and the SGD update (one kernel per parameter instead of
six); ReLU, pooling, LRN, losses and dropout are the reference's array expressions.

Importing this module needs neither CuPy nor a GPU; ``check_available`` (called by ``set_backend``) says
which one is missing, or which part of cuDNN (the frontend or the library), with the command to install it.
"""
from ..contract import install_reference
from .conv import (ROUTES, check_cudnn, conv2d_backward, conv2d_forward, conv2d_relu_backward,  # noqa: F401
                   conv2d_relu_forward, get_convolution_route, set_convolution_route, weights_frozen)
from .conv_cudnn import frontend_status  # noqa: F401
from .device import asarray, check_device, copy_stream, cupy, to_host  # noqa: F401
from .graph_capture import capture_step  # noqa: F401
from .optimizer import sgd_momentum_update  # noqa: F401
from .precision import PRECISIONS, get_precision, set_precision  # noqa: F401

name = "cupy"
xp = cupy  # None when CuPy is not installed; check_available() then refuses the backend
capabilities = frozenset({"fused_conv_relu", "graph_capture", "precision", "frozen_weights", "copy_stream"})


def check_available():
    """Raise ``BackendUnavailableError`` unless CuPy sees a GPU and, unless the convolution route was set to
    ``"im2col"`` first, cuDNN (its frontend and its library) can run: never a silent im2col fallback."""
    check_device()
    check_cudnn()

OVERRIDES = install_reference(globals())
