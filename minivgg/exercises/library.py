"""The library functions the exercises are checked against, named in one place.

Each exercise compares the learner's function with the one minivgg itself runs, so that "right" means "what
the library computes"; where the public API offers a function it is used, and the readable reference ops that
have no public name (im2col, col2im, the naive loops, the Numba kernels' index maths, the tensor-core
rounding) are imported here and nowhere else in the exercises.
"""
from ..backends.reference.conv import col2im, conv2d_forward, im2col
from ..backends.reference.loops import (conv2d_forward_loops, lrn_backward_loops, lrn_forward_loops,
                                        max_pool2d_backward_loops, max_pool2d_forward_loops)
from ..backends.reference.lrn import lrn_backward, lrn_forward
from ..backends.reference.optimizer import sgd_momentum_update
from ..backends.reference.pool import max_pool2d_backward, max_pool2d_forward

__all__ = ["col2im", "conv2d_forward", "im2col", "conv2d_forward_loops", "lrn_backward_loops", "lrn_forward_loops",
           "max_pool2d_backward_loops", "max_pool2d_forward_loops", "lrn_backward", "lrn_forward",
           "sgd_momentum_update", "max_pool2d_backward", "max_pool2d_forward", "round_like_tensor_cores",
           "kernel_index_maths", "gpu_tilings", "cupy_overrides"]


def round_like_tensor_cores(array, precision):
    """``minivgg.backends.cupy.precision.round_like_tensor_cores`` (host NumPy; CuPy is not needed)."""
    from ..backends.cupy.precision import round_like_tensor_cores as rounding
    return rounding(array, precision)


def kernel_index_maths():
    """The Numba convolution kernels' ``(input_pixel_read_by, output_pixel_fed_by)`` as plain Python
    functions (their ``py_func``); imports Numba, so only lesson 8b's exercises call it."""
    from ..backends.numba import conv
    return conv.input_pixel_read_by.py_func, conv.output_pixel_fed_by.py_func


def gpu_tilings():
    """The Numba backend's GPU tilings (``backends/numba/conv.py``'s ``GPU_TILINGS``); imports Numba."""
    from ..backends.numba import conv
    return conv.GPU_TILINGS


def cupy_overrides():
    """The ops the CuPy backend computes its own way (its ``OVERRIDES``); CuPy itself is not needed."""
    from ..backends import cupy
    return cupy.OVERRIDES
