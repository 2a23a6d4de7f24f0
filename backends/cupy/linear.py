"""Fully-connected layer, ``out = x W^T + b``, as one cuBLAS product onto a bias-filled output.

In bf16 mode the float32 weights are cast once per forward (what PyTorch's autocast does), the
products run in bf16 with float32 accumulation, and the weight gradient is written straight in float32
by the product itself, so the master weights never see a bf16 rounding of their gradient.
"""
from collections import namedtuple

import numpy as np

from .device import cupy
from .gemm import gemm
from .kernels import get_kernel, index, launch
from .precision import activation_dtype
from .reductions import channel_sum

LinearCache = namedtuple("LinearCache", "x W_compute param_dtype")

BIAS_FILL_SOURCE = r"""
extern "C" __global__ void bias_fill(value_t* out, const compute_t* bias, long long n, long long features) {
    GRID_STRIDE_LOOP(i, n) { out[i] = store(bias[i % features]); }
}
"""


def fill_with_bias(out, b):
    """Write ``b[j]`` into every row of the C-contiguous (rows, features) ``out``, casting to ``out``'s dtype.

    ``b`` must be of ``out``'s compute type: float64 for float64, float32 for float32 and bfloat16.
    """
    compute = np.float64 if out.dtype == np.float64 else np.float32
    if b.dtype != compute:
        raise TypeError(f"bias of dtype {b.dtype} cannot fill an output of dtype {out.dtype} (expected {compute})")
    launch(get_kernel("bias_fill", BIAS_FILL_SOURCE, out.dtype), out.size,
           (out, cupy.ascontiguousarray(b), index(out.size), index(b.size)))
    return out


def linear_forward(x, W, b):
    """Affine map of a batch of vectors.

    Parameters
    ----------
    x : (N, in) CuPy array
    W : (out, in) array, stored as PyTorch and Caffe store it
    b : (out,) array

    Returns
    -------
    out : (N, out) array, ``x @ W.T + b``, in ``x``'s dtype (bfloat16 in bf16 mode)
    cache : LinearCache
    """
    compute = activation_dtype(x.dtype)
    x = cupy.ascontiguousarray(x, dtype=compute)
    W_compute = cupy.ascontiguousarray(W, dtype=compute)
    out = cupy.empty((x.shape[0], W.shape[0]), dtype=compute)
    fill_with_bias(out, b)
    gemm(x, W_compute, out, transpose_b=True, accumulate=True)
    return out, LinearCache(x, W_compute, W.dtype)


def linear_backward(dout, cache):
    """Gradients of ``linear_forward``.

    Returns
    -------
    dx : (N, in) array, ``dout @ W``, in the activations' dtype
    dW : (out, in) array, ``dout.T @ x``, in the parameters' dtype (float32 in bf16 mode)
    db : (out,) array, ``dout`` summed over the batch, in the parameters' dtype
    """
    x, W_compute, param_dtype = cache
    if dout.dtype != x.dtype:
        raise TypeError(f"linear_backward: dout has dtype {dout.dtype}, the forward ran in {x.dtype}")
    dout = cupy.ascontiguousarray(dout)
    dx = gemm(dout, W_compute, cupy.empty(x.shape, dtype=x.dtype))
    dW = gemm(dout, x, cupy.empty(W_compute.shape, dtype=param_dtype), transpose_a=True)
    db = channel_sum(dout, param_dtype)
    return dx, dW, db
