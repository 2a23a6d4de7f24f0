"""The Numba-CUDA backend: the reference's operations written as CUDA kernels in Python.

This is the backend to read to see how a GPU computes a convolutional net ("how would I write this kernel
myself"). It starts from the reference (``backends/reference``: every op there is here, with the same
signature) and replaces these pairs by kernels, one file per concept:

    conv.py        convolution forward, data gradient and weight gradient: tiled shared-memory implicit GEMM
    bias.py        the bias gradient (column sums); the bias itself is added in the convolution kernel
    pool.py        max-pooling forward and backward
    activation.py  ReLU
    lrn.py         local response normalisation (A-LRN)
    loss.py        soft-max and the cross-entropy loss (block-per-row tree reductions)
    optimizer.py   the SGD update with momentum and weight decay
    arrays.py      where the arrays live (CuPy on a GPU, NumPy under the simulator) and how kernels are launched

Every other op (the FC layer, dropout, global average pooling, the Euclidean loss, and any op added to the
reference later) is the reference's own function run on this backend's arrays (``install_reference``):
on a GPU its array expressions run through CuPy, the FC layer's products through cuBLAS. Dropout's masks
are the reference's counter-based ones, so they are the same on every backend.

Choosing it needs an NVIDIA GPU with CuPy, or ``NUMBA_ENABLE_CUDASIM=1`` (the CUDA simulator, on NumPy
arrays, very slow). Importing it needs neither.
"""
import numpy as np

from ..contract import install_reference
from .activation import relu_backward, relu_forward
from .arrays import SIMULATOR, array_module, check_available, speed_up_simulator  # noqa: F401
from .conv import conv2d_backward, conv2d_forward
from .loss import softmax, softmax_cross_entropy_backward, softmax_cross_entropy_forward
from .lrn import lrn_backward, lrn_forward
from .optimizer import sgd_momentum_update
from .pool import max_pool2d_backward, max_pool2d_forward

name = "numba"
capabilities = frozenset()


def __getattr__(attribute):
    """``xp``, the array module (CuPy on a GPU, NumPy under the simulator), looked up when first asked for,
    so that importing this backend never imports CuPy."""
    if attribute == "xp":
        return array_module()
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


def asarray(array, dtype=None):
    """A host array (or anything NumPy accepts) on this backend's device, cast only if ``dtype`` asks."""
    return array_module().asarray(array, dtype=dtype)


def to_host(array):
    """This backend's array to a NumPy array."""
    xp = array_module()
    return np.asarray(array) if xp is np else xp.asnumpy(array)


OVERRIDES = install_reference(globals())
