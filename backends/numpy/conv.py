"""Convolution as im2col followed by one matrix product (Sect. 2.1: every weight layer of VGG).

Layout. The API is NCHW with weights ``(out, in, kh, kw)``, as Caffe and PyTorch store them. Inside, this
file works channels-last (NHWC): an im2col row is then ``kh * kw`` contiguous runs of ``C`` channels, so
building it is ``kh * kw`` large slice copies instead of ``C * kh * kw`` small ones, and the one big product
runs on contiguous memory. The output is returned as an NCHW-shaped *view* of an NHWC buffer; the next
layer's ``transpose(0, 2, 3, 1)`` is then free (PyTorch calls this memory format "channels last").
"""
from collections import namedtuple

import numpy as np

ConvCache = namedtuple("ConvCache", "cols W_mat x_shape W_shape stride padding out_hw")


def output_size(size, kernel, stride, padding):
    """Spatial output size of a convolution or pooling window: floor((size + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x_padded, kh, kw, stride, out_h, out_w):
    """Unfold every receptive field of a padded NHWC image batch into a row.

    Parameters
    ----------
    x_padded : (N, Hp, Wp, C) array
    kh, kw, stride : int
    out_h, out_w : int, the output size (``output_size``)

    Returns
    -------
    cols : (N, out_h, out_w, kh, kw, C) array; ``cols[n, y, x]`` is the window whose top-left input pixel
        is ``(y * stride, x * stride)``. Reshaped to ``(N * out_h * out_w, kh * kw * C)`` it is the left
        factor of the convolution's matrix product.
    """
    n, _, _, c = x_padded.shape
    cols = np.empty((n, out_h, out_w, kh, kw, c), dtype=x_padded.dtype)
    # One copy per kernel offset: a loop over kh * kw (9 for a 3x3 kernel), never over pixels.
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = x_padded[:, i:i + stride * out_h:stride, j:j + stride * out_w:stride, :]
    return cols


def col2im(dcols, padded_shape, stride):
    """Adjoint of ``im2col``: add every row's gradient back to the input pixels it came from.

    Parameters
    ----------
    dcols : (N, out_h, out_w, kh, kw, C) array
    padded_shape : (N, Hp, Wp, C), the shape ``im2col`` read from
    stride : int

    Returns
    -------
    dx_padded : (N, Hp, Wp, C) array. Overlapping windows (stride < kernel) add up, as they must.
    """
    _, out_h, out_w, kh, kw, _ = dcols.shape
    dx_padded = np.zeros(padded_shape, dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx_padded[:, i:i + stride * out_h:stride, j:j + stride * out_w:stride, :] += dcols[:, :, :, i, j, :]
    return dx_padded


def pad_nhwc(x_nhwc, padding):
    """Zero-pad the two spatial axes of an NHWC batch by ``padding`` pixels on every side."""
    if padding == 0:
        return x_nhwc
    return np.pad(x_nhwc, ((0, 0), (padding, padding), (padding, padding), (0, 0)))


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
    out : (N, F, Ho, Wo) array, ``out[n, f, y, x] = b[f] + sum_{c,i,j} W[f, c, i, j] *
        x_pad[n, c, y*s + i, x*s + j]`` with ``Ho = (H + 2p - kh) // s + 1`` (likewise ``Wo``).
    cache : ConvCache for ``conv2d_backward``.
    """
    n, _, h, w = x.shape
    f, c, kh, kw = W.shape
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    cols = im2col(pad_nhwc(x.transpose(0, 2, 3, 1), padding), kh, kw, stride, out_h, out_w)
    # Weight rows in the same (i, j, c) order as an im2col row.
    W_mat = W.transpose(2, 3, 1, 0).reshape(kh * kw * c, f)
    out = cols.reshape(n * out_h * out_w, -1) @ W_mat
    out += b
    cache = ConvCache(cols, W_mat, x.shape, W.shape, stride, padding, (out_h, out_w))
    return out.reshape(n, out_h, out_w, f).transpose(0, 3, 1, 2), cache


def conv2d_backward(dout, cache):
    """Gradients of ``conv2d_forward``.

    Parameters
    ----------
    dout : (N, F, Ho, Wo) array, the loss gradient with respect to the output
    cache : ConvCache

    Returns
    -------
    dx : (N, C, H, W) array, ``col2im(dout_mat @ W_mat.T)``
    dW : (F, C, kh, kw) array, ``cols.T @ dout_mat`` reshaped
    db : (F,) array, ``dout`` summed over batch and space
    """
    cols, W_mat, (n, c, h, w), W_shape, stride, padding, (out_h, out_w) = cache
    f, _, kh, kw = W_shape
    dout_mat = dout.transpose(0, 2, 3, 1).reshape(n * out_h * out_w, f)
    cols_mat = cols.reshape(n * out_h * out_w, -1)
    dW = np.ascontiguousarray((cols_mat.T @ dout_mat).reshape(kh, kw, c, f).transpose(3, 2, 0, 1))
    db = dout_mat.sum(axis=0)
    dcols = (dout_mat @ W_mat.T).reshape(n, out_h, out_w, kh, kw, c)
    padded_shape = (n, h + 2 * padding, w + 2 * padding, c)
    dx_padded = col2im(dcols, padded_shape, stride)
    dx = dx_padded[:, padding:padding + h, padding:padding + w, :]
    return dx.transpose(0, 3, 1, 2), dW, db
