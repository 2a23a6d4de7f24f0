"""Max-pooling (Sect. 2.1: "max-pooling is performed over a 2x2 pixel window, with stride 2").

Loops over the ``k * k`` window offsets, never over pixels, keeping the index of the winning offset (the
"argmax mask" the backward routes the gradient through). Works channels-last inside, so that the output of a
channels-last convolution (``fast_conv.py``) stays channels-last for the next one. Array-module generic.
Windows that do not tile the input are handled as PyTorch's default (floor) mode: the rows and columns that
no full window covers are dropped, and receive zero gradient.
"""
from collections import namedtuple

from ..shapes import output_size

from .array_module import array_module

PoolCache = namedtuple("PoolCache", "argmax x_shape kernel_size stride")


def _window(x_nhwc, i, j, stride, out_h, out_w):
    """The (N, out_h, out_w, C) view of the input pixel at offset (i, j) inside every window."""
    return x_nhwc[:, i:i + stride * out_h:stride, j:j + stride * out_w:stride, :]


def max_pool2d_forward(x, kernel_size=2, stride=2):
    """Maximum over each ``kernel_size`` square window, windows ``stride`` apart.

    Parameters
    ----------
    x : (N, C, H, W) array
    kernel_size, stride : int

    Returns
    -------
    out : (N, C, Ho, Wo) array, ``Ho = (H - k) // s + 1``
    cache : PoolCache; ``argmax`` holds, per output, the row-major index ``i * k + j`` of the winning
        offset. On ties the *first* maximum in row-major window order wins (as in Caffe), and the whole
        gradient goes to it.
    """
    xp = array_module(x)
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, kernel_size, stride, 0), output_size(w, kernel_size, stride, 0)
    x_nhwc = x.transpose(0, 2, 3, 1)
    out = _window(x_nhwc, 0, 0, stride, out_h, out_w).copy()
    argmax = xp.zeros(out.shape, dtype=xp.int8 if kernel_size ** 2 < 128 else xp.int32)
    for offset in range(1, kernel_size * kernel_size):
        i, j = divmod(offset, kernel_size)
        candidate = _window(x_nhwc, i, j, stride, out_h, out_w)
        better = candidate > out  # strict: an equal later value does not take a tie
        # argmax = offset where better: arithmetic, several times faster than a masked write.
        argmax += better * (offset - argmax)
        xp.maximum(out, candidate, out=out)
    return out.transpose(0, 3, 1, 2), PoolCache(argmax, x.shape, kernel_size, stride)


def max_pool2d_backward(dout, cache):
    """Route each output gradient to the input pixel that won its window.

    Parameters
    ----------
    dout : (N, C, Ho, Wo) array
    cache : PoolCache

    Returns
    -------
    dx : (N, C, H, W) array; overlapping windows (stride < kernel) add their gradients.
    """
    xp = array_module(dout)
    argmax, (n, c, h, w), kernel_size, stride = cache
    dout_nhwc = dout.transpose(0, 2, 3, 1)
    _, out_h, out_w, _ = dout_nhwc.shape
    dx = xp.zeros((n, h, w, c), dtype=dout.dtype)
    disjoint = stride >= kernel_size  # each input pixel in at most one window: write instead of add
    for offset in range(kernel_size * kernel_size):
        i, j = divmod(offset, kernel_size)
        window = _window(dx, i, j, stride, out_h, out_w)
        if disjoint:
            xp.multiply(dout_nhwc, argmax == offset, out=window)
        else:
            window += dout_nhwc * (argmax == offset)
    return dx.transpose(0, 3, 1, 2)
