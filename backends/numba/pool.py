"""Max-pooling (Sect. 2.1: "max-pooling is performed over a 2x2 pixel window, with stride 2"), as two kernels.

Channels-last inside, like ``conv.py``: consecutive threads take consecutive channels of one pixel, so their
loads and stores are coalesced. As in the reference, windows that do not tile the input are dropped (floor
mode), ties go to the first maximum in row-major window order, and the cache holds that winner's offset.
"""
from numba import cuda

from ..shapes import output_size

from ..reference.pool import PoolCache
from .arrays import (array_module, check_same_dtype, device_function, grid_for, index_type, kernel_for_index,
                     on_device)


@device_function
def nhwc_position(index, height, width, channels):
    """``(n, y, x, c)`` of element ``index`` of a C-contiguous (N, height, width, channels) array."""
    c = index % channels
    pixel = index // channels
    return pixel // (width * height), (pixel // width) % height, pixel % width, c


def _max_pool_forward_kernel(index):
    @cuda.jit
    def max_pool_forward_kernel(x, out, argmax, kernel_size, stride):
        """``out[n, y, x, c] = max_{i, j < k} x[n, y*s + i, x*s + j, c]``; ``argmax`` the winning ``i * k + j``.

        Shapes: x (N, H, W, C), out and argmax (N, Ho, Wo, C). One thread per output (grid-stride); the flat
        index is split into (n, y, x, c) in ``index`` arithmetic (int32 where the sizes allow).
        """
        _, out_h, out_w, channels = out.shape
        out_h, out_w, channels = index(out_h), index(out_w), index(channels)
        kernel_size, stride = index(kernel_size), index(stride)
        for position in range(index(cuda.grid(1)), index(out.size), index(cuda.gridsize(1))):
            n, y_out, x_out, c = nhwc_position(position, out_h, out_w, channels)
            best = x[n, y_out * stride, x_out * stride, c]
            best_offset = 0
            for offset in range(index(1), kernel_size * kernel_size):
                value = x[n, y_out * stride + offset // kernel_size, x_out * stride + offset % kernel_size, c]
                if value > best:  # strict: a later equal value does not take the tie
                    best = value
                    best_offset = offset
            out[n, y_out, x_out, c] = best
            argmax[n, y_out, x_out, c] = best_offset
    return max_pool_forward_kernel


def _max_pool_backward_kernel(index):
    @cuda.jit
    def max_pool_backward_kernel(dout, argmax, dx, kernel_size, stride, zero):
        """``dx[n, y, x, c] = sum of dout over the windows that contain (y, x) and whose maximum it was``.

        Shapes: dout and argmax (N, Ho, Wo, C), dx (N, H, W, C). One thread per *input* pixel gathers from the
        windows over it (at most ceil(k / s)^2 of them), so no two threads write one address: no atomics. The
        sum starts from ``zero``, in dout's precision.
        """
        _, out_h, out_w, _ = dout.shape
        _, height, width, channels = dx.shape
        out_h, out_w, height, width, channels = index(out_h), index(out_w), index(height), index(width), \
            index(channels)
        kernel_size, stride = index(kernel_size), index(stride)
        for position in range(index(cuda.grid(1)), index(dx.size), index(cuda.gridsize(1))):
            n, y_in, x_in, c = nhwc_position(position, height, width, channels)
            # Windows y_out with y_out * s <= y_in < y_out * s + k: ceil((y_in - k + 1) / s) <= y_out <= y_in / s.
            first_y = max(index(0), (y_in - kernel_size + stride) // stride)
            first_x = max(index(0), (x_in - kernel_size + stride) // stride)
            last_y = min(out_h - 1, y_in // stride)
            last_x = min(out_w - 1, x_in // stride)
            total = zero
            for y_out in range(first_y, last_y + 1):
                for x_out in range(first_x, last_x + 1):
                    offset = (y_in - y_out * stride) * kernel_size + (x_in - x_out * stride)
                    if argmax[n, y_out, x_out, c] == offset:
                        total += dout[n, y_out, x_out, c]
            dx[n, y_in, x_in, c] = total
    return max_pool_backward_kernel


max_pool_forward_kernel = kernel_for_index(_max_pool_forward_kernel)
max_pool_backward_kernel = kernel_for_index(_max_pool_backward_kernel)


def max_pool2d_forward(x, kernel_size=2, stride=2):
    """Maximum over each ``kernel_size`` square window, windows ``stride`` apart.

    Parameters
    ----------
    x : (N, C, H, W) array (NCHW views of NHWC memory cost no copy)
    kernel_size, stride : int

    Returns
    -------
    out : (N, C, Ho, Wo) array, a view of NHWC memory, ``Ho = (H - k) // s + 1``
    cache : PoolCache (the reference's), ``argmax`` (N, Ho, Wo, C) the row-major offset of each winner
    """
    xp = array_module()
    check_same_dtype("max_pool2d_forward", x=x)
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, kernel_size, stride, 0), output_size(w, kernel_size, stride, 0)
    x_nhwc = xp.ascontiguousarray(x.transpose(0, 2, 3, 1))
    out = xp.empty((n, out_h, out_w, c), dtype=x.dtype)
    argmax = xp.empty(out.shape, dtype=xp.int8 if kernel_size ** 2 < 128 else xp.int32)
    max_pool_forward_kernel(index_type(x_nhwc, out))[grid_for(out.size)](
        on_device(x_nhwc), on_device(out), on_device(argmax), kernel_size, stride)
    return out.transpose(0, 3, 1, 2), PoolCache(argmax, x.shape, kernel_size, stride)


def max_pool2d_backward(dout, cache):
    """Route each output gradient to the input pixel that won its window.

    Parameters
    ----------
    dout : (N, C, Ho, Wo) array
    cache : PoolCache

    Returns
    -------
    dx : (N, C, H, W) array, a view of NHWC memory; overlapping windows (stride < kernel) add up.
    """
    xp = array_module()
    argmax, (n, c, h, w), kernel_size, stride = cache
    check_same_dtype("max_pool2d_backward", dout=dout)
    dout_nhwc = xp.ascontiguousarray(dout.transpose(0, 2, 3, 1))
    if dout_nhwc.shape != argmax.shape:
        raise ValueError(f"max_pool2d_backward: expected dout of shape {(n, c) + tuple(argmax.shape[1:3])}, "
                         f"got {tuple(dout.shape)}")
    dx = xp.empty((n, h, w, c), dtype=dout.dtype)
    max_pool_backward_kernel(index_type(dout_nhwc, dx))[grid_for(dx.size)](
        on_device(dout_nhwc), on_device(argmax), on_device(dx), kernel_size, stride, dx.dtype.type(0))
    return dx.transpose(0, 3, 1, 2)
