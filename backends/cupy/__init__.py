"""The CuPy backend: every op of the NumPy reference on an NVIDIA GPU, chosen with ``minivgg.set_backend("cupy")``.

Same names, signatures and ``(out, cache)`` / ``backward(dout, cache)`` pairs as ``backends/numpy`` (its
``OPS``), so layers, models, training and evaluation run unchanged. What the device changes:

    conv.py          cuDNN graphs (frontend ``cudnn``), bias and optionally ReLU fused; im2col fallback
    conv_cudnn.py    the three graphs per shape, their cache and the shared workspace
    conv_im2col.py   im2col / col2im CUDA kernels + cuBLAS, chunked over the batch
    gemm.py          cuBLAS products with the compute type of the precision setting
    linear.py        FC layers; activation.py (ReLU, dropout), pool.py, lrn.py, loss.py, optimizer.py:
                     one CUDA kernel per op instead of chains of temporaries
    reductions.py    bias gradients (per-channel sums), with ReLU's backward fused in
    precision.py     ``set_precision("fp32" | "tf32" | "bf16")``; TF32 by default
    graph_capture.py a whole training step as one CUDA graph
    layout.py        NCHW at the API, NHWC inside; kernels.py, device.py, counter_random.py: plumbing

Reused from the reference as they are (CuPy runs their array expressions): ``softmax``, the Euclidean loss
and global average pooling.

Importing this module needs neither CuPy nor a GPU; ``check_available`` (called by ``set_backend``) says
which one is missing.
"""
from ..numpy.batchnorm import batch_norm2d_backward, batch_norm2d_forward  # the reference's, array-module generic
from ..numpy.pooling_global import global_average_pool_backward, global_average_pool_forward
from .activation import dropout_backward, dropout_forward, relu_backward, relu_forward
from .conv import (ROUTES, conv2d_backward, conv2d_forward, conv2d_relu_backward, conv2d_relu_forward,
                   get_convolution_route, set_convolution_route)
from .conv_cudnn import frontend_status
from .counter_random import CounterRandom
from .device import asarray, check_available, cupy, to_host
from .linear import linear_backward, linear_forward
from .loss import (euclidean_loss_backward, euclidean_loss_forward, softmax, softmax_cross_entropy_backward,
                   softmax_cross_entropy_forward)
from .lrn import lrn_backward, lrn_forward
from .optimizer import sgd_momentum_update
from .pool import max_pool2d_backward, max_pool2d_forward
from .precision import PRECISIONS, activation_dtype, get_precision, set_precision

name = "cupy"
xp = cupy  # None when CuPy is not installed; check_available() then refuses the backend


def random_generator(seed):
    """A counter-based generator for dropout masks (``counter_random``): the masks are a pure function of
    ``seed`` and the element index, so they can be recomputed on the host and replayed in CUDA graphs."""
    return CounterRandom(seed)


__all__ = [
    "name", "xp", "asarray", "to_host", "random_generator", "check_available",
    "conv2d_forward", "conv2d_backward", "conv2d_relu_forward", "conv2d_relu_backward",
    "max_pool2d_forward", "max_pool2d_backward", "relu_forward", "relu_backward", "lrn_forward", "lrn_backward",
    "dropout_forward", "dropout_backward", "linear_forward", "linear_backward",
    "global_average_pool_forward", "global_average_pool_backward",
    "softmax", "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
    "euclidean_loss_forward", "euclidean_loss_backward", "sgd_momentum_update",
    "PRECISIONS", "set_precision", "get_precision", "activation_dtype",
    "ROUTES", "set_convolution_route", "get_convolution_route", "frontend_status",
]
