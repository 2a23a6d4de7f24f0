"""Local Response Normalisation across channels (used only by VGG's A-LRN) as two channels-last kernels.

    scale[c] = k + alpha' * sum_{c' in window(c)} x[c']**2,     y[c] = x[c] * scale[c] ** -beta

with ``window(c)`` from ``c - (size - 1) // 2`` to ``c + size // 2``, clipped, as in the NumPy reference.
Channels are innermost, so each thread reads its ``size`` neighbours from one contiguous run. The backward
kernel sums over the transposed window, the channels whose window contains ``j``:

    dx[j] = dout[j] * scale[j]**-beta - 2 alpha' beta x[j] sum_{c : j in window(c)} dout[c] y[c] / scale[c]
"""
from collections import namedtuple

import numpy as np

from .device import cupy
from .kernels import compute_scalar, get_kernel, index, launch
from .layout import nchw_view, to_nhwc

LRNCache = namedtuple("LRNCache", "x scale y size alpha_eff beta")

LRN_FORWARD_SOURCE = r"""
extern "C" __global__ void lrn_forward(const value_t* x, value_t* y, compute_t* scale, long long count, int C,
                                       int before, int after, compute_t k, compute_t alpha, compute_t beta) {
    GRID_STRIDE_LOOP(i, count) {
        int c = i % C;
        const value_t* pixel = x + (i - c);
        compute_t energy = 0;
        for (int j = max(0, c - before); j <= min(C - 1, c + after); ++j) {
            compute_t v = load(pixel[j]);
            energy += v * v;
        }
        compute_t s = k + alpha * energy;
        scale[i] = s;
        y[i] = store(load(x[i]) * power(s, -beta));
    }
}
"""

LRN_BACKWARD_SOURCE = r"""
extern "C" __global__ void lrn_backward(const value_t* dout, const value_t* x, const value_t* y,
                                        const compute_t* scale, value_t* dx, long long count, int C,
                                        int before, int after, compute_t alpha, compute_t beta) {
    GRID_STRIDE_LOOP(i, count) {
        int j = i % C;
        long long pixel = i - j;
        compute_t through_scale = 0;
        for (int c = max(0, j - after); c <= min(C - 1, j + before); ++c) {
            long long o = pixel + c;
            through_scale += load(dout[o]) * load(y[o]) / scale[o];
        }
        dx[i] = store(load(dout[i]) * power(scale[i], -beta) - 2 * alpha * beta * load(x[i]) * through_scale);
    }
}
"""


def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0, alpha_divided_by_size=False):
    """Normalise each activation by the energy of its neighbouring channels.

    Parameters
    ----------
    x : (N, C, H, W) CuPy array, any layout
    size : int, channels in the window
    alpha, beta, k : float
    alpha_divided_by_size : bool, use ``alpha / size`` (Caffe, PyTorch) instead of ``alpha`` (AlexNet paper)

    Returns
    -------
    out : (N, C, H, W) array (an NCHW view of NHWC memory)
    cache : LRNCache
    """
    alpha_eff = alpha / size if alpha_divided_by_size else alpha
    x_nhwc = to_nhwc(x)
    y = cupy.empty_like(x_nhwc)
    scale = cupy.empty(x_nhwc.shape, dtype=cupy.float64 if x.dtype == cupy.float64 else cupy.float32)
    c = x_nhwc.shape[3]
    launch(get_kernel("lrn_forward", LRN_FORWARD_SOURCE, x.dtype), y.size,
           (x_nhwc, y, scale, index(y.size), np.int32(c), np.int32((size - 1) // 2), np.int32(size // 2),
            compute_scalar(x.dtype, k), compute_scalar(x.dtype, alpha_eff), compute_scalar(x.dtype, beta)))
    return nchw_view(y), LRNCache(x_nhwc, scale, y, size, alpha_eff, beta)


def lrn_backward(dout, cache):
    """Gradient of ``lrn_forward``: (N, C, H, W) ``dout`` -> (N, C, H, W) ``dx`` (an NCHW view of NHWC memory)."""
    x, scale, y, size, alpha_eff, beta = cache
    dout_nhwc = to_nhwc(dout)
    dx = cupy.empty_like(x)
    launch(get_kernel("lrn_backward", LRN_BACKWARD_SOURCE, x.dtype), dx.size,
           (dout_nhwc, x, y, scale, dx, index(dx.size), np.int32(x.shape[3]), np.int32((size - 1) // 2),
            np.int32(size // 2), compute_scalar(x.dtype, alpha_eff), compute_scalar(x.dtype, beta)))
    return nchw_view(dx)
