"""Convolution as im2col followed by one matrix product (Sect. 2.1: every weight layer of VGG).

The textbook route (Chellapilla, Puri & Simard 2006; Caffe's and Chainer's ``im2col``; CS231n):

    forward    cols = im2col(x)                        (N * Ho * Wo, C * kh * kw): one row per receptive field
               out  = cols @ W.reshape(F, -1).T + b    one matrix product
    backward   dW   = dout_mat.T @ cols                the transposed products ...
               dx   = col2im(dout_mat @ W.reshape(F, -1))   ... and col2im adds each row back where it came from
               db   = dout_mat summed over its rows

``dout_mat`` is the output gradient as an (N * Ho * Wo, F) matrix, rows in im2col's order. Every function
takes its array module from its arguments (``array_module``), so this file runs unchanged on NumPy and
CuPy. The NumPy backend exports a faster engine of the same maths (``fast_conv.py``: channels-last,
cache-sized chunks on all cores), tested equal to this file.
"""
from collections import namedtuple

from ..shapes import output_size

from .array_module import array_module

ConvCache = namedtuple("ConvCache", "cols x_shape W stride padding")


def im2col(x, kh, kw, stride, padding):
    """Unfold every receptive field of a batch into a row, zero padding included.

    Parameters
    ----------
    x : (N, C, H, W) array
    kh, kw, stride, padding : int

    Returns
    -------
    cols : (N * Ho * Wo, C * kh * kw) array; row ``(n * Ho + y) * Wo + x`` is
        ``x_pad[n, :, y*s : y*s + kh, x*s : x*s + kw]`` flattened in (c, i, j) order, the order of
        ``W[f].reshape(-1)``. ``Ho = output_size(H, kh, s, p)``, likewise ``Wo``.
    """
    xp = array_module(x)
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = xp.empty((n, c, kh, kw, out_h, out_w), dtype=x.dtype)
    for i in range(kh):  # a loop over the kernel's offsets, never over pixels
        for j in range(kw):
            cols[:, :, i, j] = x_pad[:, :, i:i + stride * out_h:stride, j:j + stride * out_w:stride]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * out_h * out_w, c * kh * kw)


def col2im(dcols, x_shape, kh, kw, stride, padding):
    """Adjoint of ``im2col``: add every row's gradient back onto the input pixels it was copied from.

    Parameters
    ----------
    dcols : (N * Ho * Wo, C * kh * kw) array, gradients of the unfolded rows
    x_shape : (N, C, H, W), the shape ``im2col`` was given
    kh, kw, stride, padding : int

    Returns
    -------
    dx : (N, C, H, W) array. Overlapping windows (stride < kernel) add up; gradients that fell on the
        padding are dropped.
    """
    xp = array_module(dcols)
    n, c, h, w = x_shape
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    dcols = dcols.reshape(n, out_h, out_w, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    dx_pad = xp.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=dcols.dtype)
    for i in range(kh):  # within one offset no pixel is hit twice, so += is exact
        for j in range(kw):
            dx_pad[:, :, i:i + stride * out_h:stride, j:j + stride * out_w:stride] += dcols[:, :, i, j]
    return dx_pad[:, :, padding:padding + h, padding:padding + w]


def conv2d_forward(x, W, b, stride=1, padding=0):
    """Cross-correlation of a batch with a filter bank, plus bias.

    Parameters
    ----------
    x : (N, C, H, W) array
    W : (F, C, kh, kw) array
    b : (F,) array
    stride, padding : int

    Returns
    -------
    out : (N, F, Ho, Wo) array, ``out[n, f, y, x] = b[f] + sum_{c,i,j} W[f, c, i, j] * x_pad[n, c, y*s + i, x*s + j]``,
        ``Ho = (H + 2p - kh) // s + 1`` (likewise ``Wo``); computed as ``im2col(x) @ W.reshape(F, -1).T + b``
        and returned as an NCHW view of the product's (N, Ho, Wo, F) memory
    cache : ConvCache for ``conv2d_backward``
    """
    n, _, h, w = x.shape
    f, _, kh, kw = W.shape
    cols = im2col(x, kh, kw, stride, padding)
    out = cols @ W.reshape(f, -1).T + b
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    return out.reshape(n, out_h, out_w, f).transpose(0, 3, 1, 2), ConvCache(cols, x.shape, W, stride, padding)


def conv2d_backward(dout, cache, input_gradient=True):
    """Gradients of ``conv2d_forward``.

    Parameters
    ----------
    dout : (N, F, Ho, Wo) array, the loss gradient with respect to the output
    cache : ConvCache
    input_gradient : bool, False to skip ``dx`` (returned as None): a network's first layer, in training

    Returns
    -------
    dx : (N, C, H, W) array, ``col2im(dout_mat @ W.reshape(F, -1))``
    dW : (F, C, kh, kw) array, ``(dout_mat.T @ cols).reshape(W.shape)``
    db : (F,) array, ``dout`` summed over batch and space
    """
    cols, x_shape, W, stride, padding = cache
    f, _, kh, kw = W.shape
    dout_mat = dout.transpose(0, 2, 3, 1).reshape(-1, f)
    dW = (dout_mat.T @ cols).reshape(W.shape)
    db = dout_mat.sum(axis=0)
    if not input_gradient:
        return None, dW, db
    return col2im(dout_mat @ W.reshape(f, -1), x_shape, kh, kw, stride, padding), dW, db
