"""Max-pooling (Sect. 2.1: 2x2 windows, stride 2) as two channels-last CUDA kernels.

Forward: one thread per output element scans its k x k window, keeps the first maximum in row-major
window order (strict ``>``, as the NumPy reference and Caffe) and records the winning offset
``i * k + j`` in one byte. Backward *gathers*: one thread per input element adds the gradients of the
outputs whose window contains it and chose it. Overlapping windows (stride < kernel) then add up without
atomics, so the result is the same on every run. Floor mode: rows and columns no full window covers get
zero gradient.
"""
from collections import namedtuple

import numpy as np

from ..numpy.conv import output_size
from .device import cupy
from .kernels import get_kernel, index, launch
from .layout import nchw_view, to_nhwc

PoolCache = namedtuple("PoolCache", "argmax x_shape kernel_size stride")

MAX_POOL_FORWARD_SOURCE = r"""
extern "C" __global__ void max_pool_forward(const value_t* x, value_t* out, offset_t* argmax, long long count,
                                            int H, int W, int C, int out_h, int out_w, int k, int s) {
    GRID_STRIDE_LOOP(i, count) {
        int c = i % C;
        long long t = i / C;
        int ox = t % out_w; t /= out_w;
        int oy = t % out_h;
        long long n = t / out_h;
        const value_t* corner = x + ((n * H + (long long)oy * s) * W + (long long)ox * s) * C + c;
        compute_t best = load(corner[0]);
        int best_offset = 0;
        for (int offset = 1; offset < k * k; ++offset) {
            compute_t v = load(corner[((long long)(offset / k) * W + offset % k) * C]);
            if (v > best) { best = v; best_offset = offset; }  /* strict: the first maximum keeps a tie */
        }
        out[i] = store(best);
        argmax[i] = (offset_t)best_offset;
    }
}
"""

MAX_POOL_BACKWARD_SOURCE = r"""
extern "C" __global__ void max_pool_backward(const value_t* dout, const offset_t* argmax, value_t* dx,
                                             long long count, int H, int W, int C, int out_h, int out_w,
                                             int k, int s) {
    GRID_STRIDE_LOOP(i, count) {
        int c = i % C;
        long long t = i / C;
        int x = t % W; t /= W;
        int y = t % H;
        long long n = t / H;
        /* outputs whose window [o*s, o*s + k) contains this pixel */
        int oy_first = y < k ? 0 : (y - k) / s + 1, oy_last = min(y / s, out_h - 1);
        int ox_first = x < k ? 0 : (x - k) / s + 1, ox_last = min(x / s, out_w - 1);
        compute_t total = 0;
        for (int oy = oy_first; oy <= oy_last; ++oy) {
            for (int ox = ox_first; ox <= ox_last; ++ox) {
                long long o = ((n * out_h + oy) * out_w + ox) * C + c;
                if ((int)argmax[o] == (y - oy * s) * k + (x - ox * s)) total += load(dout[o]);
            }
        }
        dx[i] = store(total);
    }
}
"""


def offset_type(kernel_size):
    """The smallest integer type that holds a window offset ``i * k + j``: int8 up to 11x11 windows."""
    return (np.int8, "signed char") if kernel_size ** 2 < 128 else (np.int32, "int")


def _source(source, kernel_size):
    return f"typedef {offset_type(kernel_size)[1]} offset_t;\n" + source


def max_pool2d_forward(x, kernel_size=2, stride=2):
    """Maximum over each ``kernel_size`` square window, windows ``stride`` apart.

    Parameters
    ----------
    x : (N, C, H, W) CuPy array, any layout
    kernel_size, stride : int

    Returns
    -------
    out : (N, C, Ho, Wo) array (an NCHW view of NHWC memory), ``Ho = (H - k) // s + 1``
    cache : PoolCache; ``argmax`` (N, Ho, Wo, C) holds the row-major offset of each window's first maximum
    """
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, kernel_size, stride, 0), output_size(w, kernel_size, stride, 0)
    x_nhwc = to_nhwc(x)
    out = cupy.empty((n, out_h, out_w, c), dtype=x.dtype)
    argmax = cupy.empty(out.shape, dtype=offset_type(kernel_size)[0])
    kernel = get_kernel("max_pool_forward", _source(MAX_POOL_FORWARD_SOURCE, kernel_size), x.dtype)
    launch(kernel, out.size, (x_nhwc, out, argmax, index(out.size), np.int32(h), np.int32(w), np.int32(c),
                              np.int32(out_h), np.int32(out_w), np.int32(kernel_size), np.int32(stride)))
    return nchw_view(out), PoolCache(argmax, x.shape, kernel_size, stride)


def max_pool2d_backward(dout, cache):
    """Route each output gradient to the input pixel that won its window.

    Parameters
    ----------
    dout : (N, C, Ho, Wo) CuPy array, any layout
    cache : PoolCache

    Returns
    -------
    dx : (N, C, H, W) array (an NCHW view of NHWC memory); overlapping windows add their gradients
    """
    argmax, (n, c, h, w), kernel_size, stride = cache
    dout_nhwc = to_nhwc(dout)
    _, out_h, out_w, _ = dout_nhwc.shape
    dx = cupy.empty((n, h, w, c), dtype=dout.dtype)
    kernel = get_kernel("max_pool_backward", _source(MAX_POOL_BACKWARD_SOURCE, kernel_size), dout.dtype)
    launch(kernel, dx.size, (dout_nhwc, argmax, dx, index(dx.size), np.int32(h), np.int32(w), np.int32(c),
                             np.int32(out_h), np.int32(out_w), np.int32(kernel_size), np.int32(stride)))
    return nchw_view(dx)
