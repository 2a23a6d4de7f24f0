"""Convolution as im2col followed by one matrix product (Sect. 2.1: every weight layer of VGG).

Layout. The API is NCHW with weights ``(out, in, kh, kw)``, as Caffe and PyTorch store them. Inside, this
file works channels-last (NHWC): an im2col row is then ``kh * kw`` contiguous runs of ``C`` channels, so
building it is ``kh * kw`` large slice copies instead of ``C * kh * kw`` small ones, and the one big product
runs on contiguous memory. The output is returned as an NCHW-shaped *view* of an NHWC buffer; the next
layer's ``transpose(0, 2, 3, 1)`` is then free (PyTorch calls this memory format "channels last").

Chunks. The unfolded matrix is ``kh * kw`` times larger than the input (9x for 3x3: 3.7 GB for VGG-16's
first layers at batch 32). So it is built and multiplied one chunk at a time (a few whole images, or a band
of output rows of one image) small enough to stay in the processor's cache between the copy and the
product, and the backward pass unfolds again instead of keeping it. Memory stays bounded by the
activations, and the products read from cache instead of main memory.
"""
from collections import namedtuple

import numpy as np

ConvCache = namedtuple("ConvCache", "x_nhwc cols W_mat W_shape stride padding out_hw")

KEEP_BYTES = 64 * 2 ** 20  # unfolded matrices up to this size are built whole and kept for the backward
CHUNK_BYTES = 16 * 2 ** 20  # one unfolded chunk: fits a last-level cache, and keeps the products large (measured best of 2-64 MB)


def output_size(size, kernel, stride, padding):
    """Spatial output size of a convolution or pooling window: floor((size + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _valid_outputs(lo, hi, offset, stride, padding, in_size):
    """The outputs ``o`` in [lo, hi) whose input ``o * stride + offset - padding`` is inside [0, in_size):
    the others read the zero padding."""
    first = max(lo, -(-(padding - offset) // stride))  # ceil((padding - offset) / stride)
    last = min(hi, (in_size - 1 + padding - offset) // stride + 1)
    return first, max(first, last)


def _input_slice(first, last, offset, stride, padding):
    """The input indices read by outputs first..last-1 at kernel offset ``offset``."""
    start = first * stride + offset - padding
    return slice(start, start + (last - first - 1) * stride + 1, stride)


def im2col(x_nhwc, kh, kw, stride, padding, out_h, out_w, rows=None):
    """Unfold every receptive field of an NHWC batch into a row, zero padding included.

    Parameters
    ----------
    x_nhwc : (N, H, W, C) array
    kh, kw, stride, padding : int
    out_h, out_w : int, the output size (``output_size``)
    rows : optional (y0, y1), unfold only output rows y0..y1-1 (default: all)

    Returns
    -------
    cols : (N, y1 - y0, out_w, kh, kw, C) array; ``cols[n, y, x, i, j, c] = x_pad[n, (y0 + y) * stride + i,
        x * stride + j, c]``. Reshaped to ``(-1, kh * kw * C)`` it is the left factor of the convolution's
        matrix product.
    """
    n, h, w, c = x_nhwc.shape
    y0, y1 = rows or (0, out_h)
    cols = np.empty((n, y1 - y0, out_w, kh, kw, c), dtype=x_nhwc.dtype)
    # One copy per kernel offset: a loop over kh * kw (9 for a 3x3 kernel), never over pixels.
    for i in range(kh):
        ya, yb = _valid_outputs(y0, y1, i, stride, padding, h)
        for j in range(kw):
            xa, xb = _valid_outputs(0, out_w, j, stride, padding, w)
            window = cols[:, :, :, i, j, :]
            if ya < yb and xa < xb:
                window[:, ya - y0:yb - y0, xa:xb] = x_nhwc[:, _input_slice(ya, yb, i, stride, padding),
                                                           _input_slice(xa, xb, j, stride, padding), :]
            # The zero padding: only the border strips this offset reads outside the image.
            window[:, :max(0, ya - y0)] = 0
            window[:, max(0, yb - y0):] = 0
            window[:, :, :xa] = 0
            window[:, :, xb:] = 0
    return cols


def col2im(dcols, dx_nhwc, stride, padding, rows=None):
    """Adjoint of ``im2col``: add every row's gradient back onto the input pixels it came from.

    Parameters
    ----------
    dcols : (N, y1 - y0, out_w, kh, kw, C) array, gradients of the unfolded rows
    dx_nhwc : (N, H, W, C) array, accumulated into in place (gradients that fell on padding are dropped)
    stride, padding : int
    rows : optional (y0, y1), the output rows ``dcols`` covers

    Returns
    -------
    dx_nhwc. Overlapping windows (stride < kernel) add up, as they must.
    """
    _, band, out_w, kh, kw, _ = dcols.shape
    _, h, w, _ = dx_nhwc.shape
    y0, y1 = rows or (0, band)
    for i in range(kh):
        ya, yb = _valid_outputs(y0, y1, i, stride, padding, h)
        for j in range(kw):
            xa, xb = _valid_outputs(0, out_w, j, stride, padding, w)
            if ya < yb and xa < xb:
                dx_nhwc[:, _input_slice(ya, yb, i, stride, padding), _input_slice(xa, xb, j, stride, padding),
                        :] += dcols[:, ya - y0:yb - y0, xa:xb, i, j, :]
    return dx_nhwc


def chunks(n, out_h, row_bytes):
    """Split (images, output rows) into pieces whose unfolded matrix takes about ``CHUNK_BYTES``.

    Yields ``(n0, n1, y0, y1)``: several whole images when one image is small, bands of rows of one
    image when it is large. Either way the piece of the output is contiguous in NHWC memory.
    """
    rows_per_chunk = max(1, CHUNK_BYTES // row_bytes)
    if rows_per_chunk >= out_h:
        images = max(1, rows_per_chunk // out_h)
        for n0 in range(0, n, images):
            yield n0, min(n, n0 + images), 0, out_h
    else:
        for n0 in range(n):
            for y0 in range(0, out_h, rows_per_chunk):
                yield n0, n0 + 1, y0, min(out_h, y0 + rows_per_chunk)


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
        x_pad[n, c, y*s + i, x*s + j]`` with ``Ho = (H + 2p - kh) // s + 1`` (likewise ``Wo``);
        computed as ``im2col(x) @ W_mat + b``, chunk by chunk.
    cache : ConvCache for ``conv2d_backward``.
    """
    n, _, h, w = x.shape
    f, c, kh, kw = W.shape
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # free when x came from another layer of this backend
    W_mat = np.ascontiguousarray(W.transpose(2, 3, 1, 0).reshape(kh * kw * c, f))  # rows in im2col's (i, j, c) order
    out = np.empty((n, out_h, out_w, f), dtype=np.result_type(x, W))
    row_bytes = out_w * W_mat.shape[0] * x.itemsize
    # A small problem is unfolded whole and kept for the backward; a large one in chunks, unfolded again.
    keep = n * out_h * row_bytes <= KEEP_BYTES
    pieces = [(0, n, 0, out_h)] if keep else list(chunks(n, out_h, row_bytes))
    for n0, n1, y0, y1 in pieces:
        cols = im2col(x_nhwc[n0:n1], kh, kw, stride, padding, out_h, out_w, rows=(y0, y1))
        out_piece = out[n0:n1, y0:y1].reshape(-1, f)  # a view: the piece is contiguous
        np.matmul(cols.reshape(-1, W_mat.shape[0]), W_mat, out=out_piece)
        out_piece += b
    cache = ConvCache(x_nhwc, cols if keep else None, W_mat, W.shape, stride, padding, (out_h, out_w))
    return out.transpose(0, 3, 1, 2), cache


def conv2d_backward(dout, cache):
    """Gradients of ``conv2d_forward``, chunk by chunk, unfolding the input again.

    Parameters
    ----------
    dout : (N, F, Ho, Wo) array, the loss gradient with respect to the output
    cache : ConvCache

    Returns
    -------
    dx : (N, C, H, W) array, ``col2im(dout_mat @ W_mat.T)``
    dW : (F, C, kh, kw) array, ``im2col(x).T @ dout_mat`` reshaped
    db : (F,) array, ``dout`` summed over batch and space
    """
    x_nhwc, kept_cols, W_mat, W_shape, stride, padding, (out_h, out_w) = cache
    f, c, kh, kw = W_shape
    n = x_nhwc.shape[0]
    dout_nhwc = np.ascontiguousarray(dout.transpose(0, 2, 3, 1))  # free when dout came from this backend
    dW_mat = np.zeros_like(W_mat)
    dx_nhwc = np.zeros(x_nhwc.shape, dtype=dout.dtype)
    pieces = [(0, n, 0, out_h)] if kept_cols is not None else chunks(n, out_h, out_w * W_mat.shape[0] * x_nhwc.itemsize)
    for n0, n1, y0, y1 in pieces:
        cols = kept_cols if kept_cols is not None else im2col(x_nhwc[n0:n1], kh, kw, stride, padding, out_h,
                                                              out_w, rows=(y0, y1))
        dout_piece = dout_nhwc[n0:n1, y0:y1].reshape(-1, f)
        dW_mat += cols.reshape(-1, W_mat.shape[0]).T @ dout_piece
        dcols = (dout_piece @ W_mat.T).reshape(cols.shape)
        col2im(dcols, dx_nhwc[n0:n1], stride, padding, rows=(y0, y1))
    dW = np.ascontiguousarray(dW_mat.reshape(kh, kw, c, f).transpose(3, 2, 0, 1))
    db = dout_nhwc.reshape(-1, f).sum(axis=0)
    return dx_nhwc.transpose(0, 3, 1, 2), dW, db
