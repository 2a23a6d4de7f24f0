"""The Numba-CUDA backend: the reference's operations written as CUDA kernels in Python.

This is the backend to read to see how a GPU computes a convolutional net. Every op of the reference
(``backends/numpy``) is here with the same signature and the same ``(out, cache)`` / ``backward(dout,
cache)`` pairs, one file per concept:

    conv.py        convolution forward, data gradient and weight gradient: tiled shared-memory implicit GEMM
    bias.py        the bias gradient (column sums); the bias itself is added in the convolution kernel
    pool.py        max-pooling forward and backward
    activation.py  ReLU
    lrn.py         local response normalisation (A-LRN)
    dropout.py     dropout, with a counter-based random generator computed in the kernel
    loss.py        soft-max and the cross-entropy loss (block-per-row tree reductions)
    optimizer.py   the SGD update with momentum and weight decay
    arrays.py      where the arrays live (CuPy on a GPU, NumPy under the simulator) and how kernels are launched

Three ops are the reference's own code run on this backend's arrays: the fully-connected layer (on a GPU its
products are cuBLAS matrix products through CuPy's ``matmul``), global average pooling and the Euclidean
loss (a mean and a sum, through CuPy's reductions). They use only array methods, which CuPy provides.

Choosing it needs an NVIDIA GPU with CuPy, or ``NUMBA_ENABLE_CUDASIM=1`` (the CUDA simulator, on NumPy
arrays, very slow). Importing it needs neither.
"""
import numpy as np

from ..numpy.batchnorm import batch_norm2d_backward, batch_norm2d_forward  # the reference's, array-module generic
from ..numpy.linear import linear_backward, linear_forward
from ..numpy.loss import euclidean_loss_backward, euclidean_loss_forward
from ..numpy.pooling_global import global_average_pool_backward, global_average_pool_forward
from .activation import relu_backward, relu_forward
from .arrays import SIMULATOR, array_module, check_available, speed_up_simulator
from .conv import conv2d_backward, conv2d_forward
from .dropout import CounterBasedGenerator, dropout_backward, dropout_forward
from .loss import softmax, softmax_cross_entropy_backward, softmax_cross_entropy_forward
from .lrn import lrn_backward, lrn_forward
from .optimizer import sgd_momentum_update
from .pool import max_pool2d_backward, max_pool2d_forward

name = "numba"

__all__ = ["conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward", "relu_forward",
           "relu_backward", "lrn_forward", "lrn_backward", "dropout_forward", "dropout_backward", "linear_forward",
           "linear_backward", "global_average_pool_forward", "global_average_pool_backward", "softmax",
           "softmax_cross_entropy_forward", "softmax_cross_entropy_backward", "euclidean_loss_forward",
           "euclidean_loss_backward", "sgd_momentum_update", "asarray", "to_host", "random_generator",
           "check_available", "name", "SIMULATOR", "CounterBasedGenerator", "speed_up_simulator"]


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


def random_generator(seed):
    """The random state dropout draws its masks from: a seed and a counter (see ``dropout.py``)."""
    return CounterBasedGenerator(seed)
