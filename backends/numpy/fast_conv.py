"""The NumPy backend's convolution engine: ``conv.py``'s maths, rearranged for a CPU's caches and cores.

``conv.py`` is the readable reference (im2col, one product, col2im). This file computes the same numbers
(tested equal in float64 on every shape of the gradient tests) and is what the NumPy backend exports.

Layout. The API is NCHW with weights ``(out, in, kh, kw)``, as Caffe and PyTorch store them. Inside, this
file works channels-last (NHWC): an im2col row is then ``kh`` contiguous runs of ``kw * C`` numbers, so
building the matrix is one strided copy of a window view (``unfold``), and the product runs on contiguous
memory. The output is returned as an NCHW-shaped *view* of an NHWC buffer; the next
layer's ``transpose(0, 2, 3, 1)`` is then free (PyTorch calls this memory format "channels last").

Chunks. The unfolded matrix is ``kh * kw`` times larger than the input (9x for 3x3: 3.7 GB for VGG-16's
first layers at batch 32). So it is built and multiplied one chunk at a time (a few whole images, or a band
of output rows of one image) small enough to stay in the processor's cache between the copy and the
product, and the backward pass unfolds again instead of keeping it. Each chunk also pads only the input
rows it reads, so no padded copy of the whole batch is made. Memory stays bounded by the activations, and
the products read from cache instead of main memory. The chunks are independent, so they run on all cores
at once (``parallel.py``).

Backward. With stride 1 the data gradient is a convolution too (of the output gradient with the turned
filters), so it reuses the forward's unfolding and product instead of col2im's kh * kw scattered additions.
"""
from collections import namedtuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..shapes import output_size

from .parallel import WORKERS, one_blas_thread, run_pieces

ConvCache = namedtuple("ConvCache", "x_nhwc W_krsc stride padding out_hw")

# One unfolded chunk: stays in cache between its copy and its product. Unfolding again in the backward
# pass measured faster than keeping the whole unfolded matrix (a large fresh array: page faults the threads
# contend for).
CHUNK_BYTES = 4 * 2 ** 20


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


def padded_rows(x_nhwc, images, rows, pad_h, pad_w):
    """Rows ``rows = (r0, r1)`` of images ``images = (n0, n1)`` of the batch padded by ``pad_h`` rows and
    ``pad_w`` columns of zeros on each side, rows counted in the padded image; a view when there is no
    padding, else a new array in which only the borders are zeroed and the interior is written once.

    A worker pads just the rows its chunk reads, in its own cache, instead of one padded copy of the
    whole batch going through main memory first.
    """
    n0, n1 = images
    r0, r1 = rows
    _, h, w, c = x_nhwc.shape
    if pad_h == 0 and pad_w == 0:
        return x_nhwc[n0:n1, r0:r1]
    band = np.empty((n1 - n0, r1 - r0, w + 2 * pad_w, c), dtype=x_nhwc.dtype)
    top = min(max(r0, pad_h), r1)  # the first padded row inside the image ...
    bottom = max(min(r1, h + pad_h), top)  # ... and the end of them
    band[:, :top - r0] = 0
    band[:, bottom - r0:] = 0
    inside = band[:, top - r0:bottom - r0]
    inside[:, :, :pad_w] = 0
    inside[:, :, w + pad_w:] = 0
    inside[:, :, pad_w:w + pad_w] = x_nhwc[n0:n1, top - pad_h:bottom - pad_h]
    return band


def unfold(x_padded, kh, kw, stride, out_h, out_w, rows=None):
    """``conv.im2col`` of an already padded NHWC batch, columns in (i, j, c) order: one strided copy of a
    window view, no loop in Python.

    A view with two more axes sees every (kh, kw) window of the padded images without copying: window
    (y, x) starts at pixel (y * stride, x * stride), and its offset (i, j) is one more pixel step. In
    im2col's order (channels last) one copy writes the unfolded rows from it. Each window row (kw pixels x
    C channels) is contiguous on both sides of that copy, so it moves in runs of ``kw * C`` numbers.
    """
    y0, y1 = rows or (0, out_h)
    n, _, _, c = x_padded.shape
    step_n, step_y, step_x, step_c = x_padded.strides
    windows = as_strided(x_padded[:, y0 * stride:], (n, y1 - y0, out_w, kh, kw, c),
                         (step_n, step_y * stride, step_x * stride, step_y, step_x, step_c), writeable=False)
    cols = np.empty(windows.shape, dtype=x_padded.dtype)
    cols[...] = windows
    return cols


def col2im_nhwc(dcols, dx_nhwc, stride, padding, rows=None):
    """Adjoint of ``unfold`` (``conv.col2im``, channels-last and in place): add every row's gradient back onto
    the input pixels it came from.

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
        # Whole images: as many pieces as fit the budget, rounded up to a multiple of the workers, so that
        # every core gets the same share.
        pieces = -(-n * out_h // rows_per_chunk)
        pieces = min(n, -(-pieces // WORKERS) * WORKERS)
        if pieces == 0:  # an empty batch
            return
        bounds = [round(i * n / pieces) for i in range(pieces + 1)]
        for n0, n1 in zip(bounds, bounds[1:]):
            yield n0, n1, 0, out_h
    else:
        for n0 in range(n):
            for y0 in range(0, out_h, rows_per_chunk):
                yield n0, n0 + 1, y0, min(out_h, y0 + rows_per_chunk)


def unfold_piece(x_nhwc, piece, kh, kw, stride, pad_h, pad_w, out_w):
    """The unfolded rows of one chunk ``piece = (n0, n1, y0, y1)`` (``chunks``), padding included:
    ``unfold(pad(x))[n0:n1, y0:y1]``, but padding only the input rows the chunk reads."""
    n0, n1, y0, y1 = piece
    band = padded_rows(x_nhwc, (n0, n1), (y0 * stride, (y1 - 1) * stride + kh), pad_h, pad_w)
    return unfold(band, kh, kw, stride, y1 - y0, out_w)


def correlate(x_nhwc, W_mat, kh, kw, stride, pad_h, pad_w, out, bias=None):
    """``out = unfold(pad(x_nhwc)) @ W_mat (+ bias)`` into the C-contiguous (N, Ho, Wo, F) ``out``, ``W_mat``
    being (kh * kw * C, F), in chunks of about ``CHUNK_BYTES`` on all cores; each chunk is padded, unfolded,
    multiplied and dropped in one go."""
    n, out_h, out_w, f = out.shape
    k = W_mat.shape[0]

    def one_chunk(piece):
        n0, n1, y0, y1 = piece
        product = out[n0:n1, y0:y1].reshape(-1, f)
        np.matmul(unfold_piece(x_nhwc, piece, kh, kw, stride, pad_h, pad_w, out_w).reshape(-1, k), W_mat,
                  out=product)
        if bias is not None:
            product += bias  # while the chunk is still in cache, on its worker

    run_pieces(one_chunk, chunks(n, out_h, out_w * k * x_nhwc.itemsize))


@one_blas_thread
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
        computed as ``im2col(x) @ W_krsc.reshape(F, -1).T + b``, chunk by chunk, with ``W_krsc`` the filters
        laid out ``(F, kh, kw, C)``: each filter a row, in im2col's (i, j, c) order. BLAS reads the transposed
        operand as it is, so no transposed copy of the filters is made (a (C, F) transpose of 512x512
        filters costs 4.7 ms, against 1.2 ms for this layout).
    cache : ConvCache for ``conv2d_backward``.
    """
    n, _, h, w = x.shape
    f, c, kh, kw = W.shape
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # free when x came from another layer of this backend
    W_krsc = np.ascontiguousarray(W.transpose(0, 2, 3, 1))  # (F, kh, kw, C)
    out = np.empty((n, out_h, out_w, f), dtype=np.result_type(x, W))
    correlate(x_nhwc, W_krsc.reshape(f, -1).T, kh, kw, stride, padding, padding, out, bias=b)
    cache = ConvCache(x_nhwc, W_krsc, stride, padding, (out_h, out_w))
    return out.transpose(0, 3, 1, 2), cache


@one_blas_thread
def conv2d_backward(dout, cache, input_gradient=True):
    """Gradients of ``conv2d_forward``, chunk by chunk, unfolding the input again.

    Parameters
    ----------
    dout : (N, F, Ho, Wo) array, the loss gradient with respect to the output
    cache : ConvCache
    input_gradient : bool, False to skip ``dx`` (returned as None): a network's first layer, in training

    Returns
    -------
    dx : (N, C, H, W) array. With stride 1 the data gradient is itself a convolution: ``dout`` padded by
        ``k - 1 - p``, correlated with the filters turned by 180 degrees and with their in and out channels
        swapped, which costs one unfolding and one product like the forward. Otherwise (stride > 1, or
        padding beyond ``k - 1``) ``col2im(dout_mat @ W_krsc.reshape(F, -1))``.
    dW : (F, C, kh, kw) array, ``dout_mat.T @ im2col(x)`` reshaped
    db : (F,) array, ``dout`` summed over batch and space
    """
    x_nhwc, W_krsc, stride, padding, (out_h, out_w) = cache
    f, kh, kw, c = W_krsc.shape
    k = kh * kw * c
    n = x_nhwc.shape[0]
    dout_nhwc = np.ascontiguousarray(dout.transpose(0, 2, 3, 1))  # free when dout came from this backend
    dout_mat = dout_nhwc.reshape(-1, f)
    # The bias gradient as a matrix-vector product: one BLAS pass, 3-12x faster than sum(axis=0) here.
    db = np.ones(len(dout_mat), dtype=dout_mat.dtype) @ dout_mat
    pieces = list(chunks(n, out_h, out_w * k * x_nhwc.itemsize))

    def share_dW(share):
        partial = None
        for n0, n1, y0, y1 in share:
            cols = unfold_piece(x_nhwc, (n0, n1, y0, y1), kh, kw, stride, padding, padding, out_w)
            product = dout_nhwc[n0:n1, y0:y1].reshape(-1, f).T @ cols.reshape(-1, k)
            partial = product if partial is None else np.add(partial, product, out=partial)
        return partial

    # One partial dW per worker's share of the chunks, the shares in parallel, then summed in a fixed order,
    # so the result does not depend on which thread ran what. Faster even for 512x512 filters than one
    # accumulator with a multi-threaded BLAS (VGG-16's 14x14 layers: 55 ms against 75 ms).
    shares = [pieces[i * len(pieces) // WORKERS:(i + 1) * len(pieces) // WORKERS] for i in range(WORKERS)]
    partials = [partial for partial in run_pieces(share_dW, shares) if partial is not None]
    dW_krsc = partials[0] if partials else np.zeros((f, k), dtype=W_krsc.dtype)
    for partial in partials[1:]:
        dW_krsc += partial
    dW = np.ascontiguousarray(dW_krsc.reshape(f, kh, kw, c).transpose(0, 3, 1, 2))

    if not input_gradient:
        return None, dW, db
    dx_nhwc = np.empty(x_nhwc.shape, dtype=dout.dtype)
    if stride == 1 and padding <= min(kh, kw) - 1:
        # Row (i, j, f) of the turned filters is W[f, :, kh-1-i, kw-1-j]: in im2col's (i, j, c) order for dout.
        W_turned = np.ascontiguousarray(W_krsc[:, ::-1, ::-1].transpose(1, 2, 0, 3))
        correlate(dout_nhwc, W_turned.reshape(kh * kw * f, c), kh, kw, 1, kh - 1 - padding, kw - 1 - padding,
                  dx_nhwc)
    else:
        dx_nhwc[...] = 0
        W_rows = W_krsc.reshape(f, k)
        for n0, n1, y0, y1 in pieces:
            dcols = dout_nhwc[n0:n1, y0:y1].reshape(-1, f) @ W_rows
            col2im_nhwc(dcols.reshape(n1 - n0, y1 - y0, out_w, kh, kw, c), dx_nhwc[n0:n1], stride, padding,
                        rows=(y0, y1))
    return dx_nhwc.transpose(0, 3, 1, 2), dW, db
