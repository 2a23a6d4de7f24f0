"""The convolution without cuDNN: an im2col CUDA kernel and one cuBLAS product per chunk of images.

This is the NumPy reference's algorithm (``backends/numpy/conv.py``) on the GPU, and the route taken
when the cuDNN frontend is not installed, for float64, or when ``set_convolution_route("im2col")`` asks
for it. Channels-last again: the unfolded row of output pixel (y, x) is ``kh * kw`` runs of ``C``
contiguous channels, written by one thread per element (a naive ``as_strided`` + copy measured 8-10x
slower than cuDNN); with weights stored (F, kh, kw, C) the weight matrix is a free reshape, (F, kh*kw*C).

Memory stays bounded: the unfolded matrix is ``kh * kw`` times the input, so it is built for a few whole
images at a time (``CHUNK_BYTES`` of it), multiplied, and dropped; the backward pass unfolds again.
``col2im`` *gathers* (one thread per input pixel adds the unfolded entries that came from it), so
overlapping windows need no atomics and the result is deterministic.
"""
import numpy as np

from .device import cupy
from .gemm import gemm
from .kernels import get_kernel, index, launch
from .linear import fill_with_bias

CHUNK_BYTES = 256 * 2 ** 20  # one unfolded chunk: big products (good GPU efficiency), memory bounded

IM2COL_SOURCE = r"""
extern "C" __global__ void im2col_nhwc(const value_t* x, value_t* cols, long long count, int H, int W, int C,
                                       int out_h, int out_w, int kh, int kw, int s, int p) {
    GRID_STRIDE_LOOP(i, count) {  /* cols[n, oy, ox, ki, kj, c] = x_pad[n, oy*s + ki, ox*s + kj, c] */
        int c = i % C;
        long long t = i / C;
        int kj = t % kw; t /= kw;
        int ki = t % kh; t /= kh;
        int ox = t % out_w; t /= out_w;
        int oy = t % out_h;
        long long n = t / out_h;
        int y = oy * s + ki - p, x_ = ox * s + kj - p;
        cols[i] = (y >= 0 && y < H && x_ >= 0 && x_ < W) ? x[((n * H + y) * W + x_) * C + c] : store((compute_t)0);
    }
}
"""

COL2IM_SOURCE = r"""
extern "C" __global__ void col2im_nhwc(const value_t* dcols, value_t* dx, long long count, int H, int W, int C,
                                       int out_h, int out_w, int kh, int kw, int s, int p) {
    GRID_STRIDE_LOOP(i, count) {  /* dx[n, y, x, c] = sum of the unfolded entries that read x_pad[n, y+p, x+p, c] */
        int c = i % C;
        long long t = i / C;
        int x_ = t % W; t /= W;
        int y = t % H;
        long long n = t / H;
        compute_t total = 0;
        for (int ki = 0; ki < kh; ++ki) {
            int rows_from = y + p - ki;
            if (rows_from < 0 || rows_from % s) continue;
            int oy = rows_from / s;
            if (oy >= out_h) continue;
            for (int kj = 0; kj < kw; ++kj) {
                int cols_from = x_ + p - kj;
                if (cols_from < 0 || cols_from % s) continue;
                int ox = cols_from / s;
                if (ox >= out_w) continue;
                total += load(dcols[((((n * out_h + oy) * out_w + ox) * kh + ki) * kw + kj) * C + c]);
            }
        }
        dx[i] = store(total);
    }
}
"""


def image_chunks(n, bytes_per_image, chunk_bytes=CHUNK_BYTES):
    """Split a batch of ``n`` images into runs whose unfolded matrix takes at most about ``chunk_bytes``.

    Yields ``(n0, n1)``; at least one image a chunk, even when one image alone is larger than the budget
    (a 224x224 VGG image unfolds to at most 115 MB in float32, so that never happens with the default).
    """
    if bytes_per_image <= 0:
        raise ValueError(f"image_chunks: bytes_per_image must be positive, got {bytes_per_image}")
    images = max(1, chunk_bytes // bytes_per_image)
    for n0 in range(0, n, images):
        yield n0, min(n, n0 + images)


def _geometry(x_nhwc, W_krsc, stride, padding, out_h, out_w):
    _, h, w, c = x_nhwc.shape
    _, kh, kw, _ = W_krsc.shape
    return (np.int32(h), np.int32(w), np.int32(c), np.int32(out_h), np.int32(out_w), np.int32(kh), np.int32(kw),
            np.int32(stride), np.int32(padding))


def im2col(x_nhwc, W_krsc, stride, padding, out_h, out_w):
    """Unfold (n, H, W, C) images into the (n * out_h * out_w, kh * kw * C) left factor of the product."""
    n = x_nhwc.shape[0]
    f, kh, kw, c = W_krsc.shape
    cols = cupy.empty((n * out_h * out_w, kh * kw * c), dtype=x_nhwc.dtype)
    launch(get_kernel("im2col_nhwc", IM2COL_SOURCE, x_nhwc.dtype), cols.size,
           (x_nhwc, cols, index(cols.size)) + _geometry(x_nhwc, W_krsc, stride, padding, out_h, out_w))
    return cols


def col2im(dcols, dx_nhwc, W_krsc, stride, padding, out_h, out_w):
    """Adjoint of ``im2col``: write into ``dx_nhwc`` (n, H, W, C) the sum of each pixel's unfolded gradients."""
    launch(get_kernel("col2im_nhwc", COL2IM_SOURCE, dx_nhwc.dtype), dx_nhwc.size,
           (dcols, dx_nhwc, index(dx_nhwc.size)) + _geometry(dx_nhwc, W_krsc, stride, padding, out_h, out_w))
    return dx_nhwc


def conv_forward(x_nhwc, W_krsc, b, out_nhwc, stride, padding):
    """``out = im2col(x) @ W^T + b`` chunk by chunk, into the C-contiguous (N, Ho, Wo, F) ``out_nhwc``.

    ``b`` is in the compute type (float32 for float32 and bfloat16 activations, float64 for float64).
    """
    n, out_h, out_w, f = out_nhwc.shape
    W_rows = W_krsc.reshape(f, -1)  # (F, kh*kw*C): a free view of the (F, kh, kw, C) weights
    fill_with_bias(out_nhwc.reshape(-1, f), b)
    bytes_per_image = out_h * out_w * W_rows.shape[1] * x_nhwc.itemsize
    for n0, n1 in image_chunks(n, bytes_per_image):
        cols = im2col(x_nhwc[n0:n1], W_krsc, stride, padding, out_h, out_w)
        gemm(cols, W_rows, out_nhwc[n0:n1].reshape(-1, f), transpose_b=True, accumulate=True)
    return out_nhwc


def conv_backward(x_nhwc, W_krsc, dpre_nhwc, stride, padding, dW_dtype, input_gradient=True):
    """Data and weight gradients, chunk by chunk, unfolding the input again.

    Parameters
    ----------
    x_nhwc : (N, H, W, C) forward input
    W_krsc : (F, kh, kw, C) weights in the compute dtype
    dpre_nhwc : (N, Ho, Wo, F) C-contiguous gradient of the convolution's output (before any ReLU)
    stride, padding : int
    dW_dtype : dtype of the weight gradient (the parameters' dtype; float32 in bf16 mode)
    input_gradient : bool, False to skip ``dx`` (returned as None)

    Returns
    -------
    dx_nhwc : (N, H, W, C) array, ``col2im(dout_rows @ W_rows)``
    dW_krsc : (F, kh, kw, C) array, ``dout_rows.T @ im2col(x)``, summed over the chunks
    """
    n, out_h, out_w, f = dpre_nhwc.shape
    W_rows = W_krsc.reshape(f, -1)
    dx_nhwc = cupy.empty_like(x_nhwc) if input_gradient else None
    dW_rows = cupy.empty(W_rows.shape, dtype=dW_dtype)
    if n == 0:  # no image, no gradient
        dW_rows.fill(0)
    bytes_per_image = out_h * out_w * W_rows.shape[1] * x_nhwc.itemsize
    for n0, n1 in image_chunks(n, bytes_per_image):
        cols = im2col(x_nhwc[n0:n1], W_krsc, stride, padding, out_h, out_w)
        dout_rows = dpre_nhwc[n0:n1].reshape(-1, f)
        gemm(dout_rows, cols, dW_rows, transpose_a=True, accumulate=n0 > 0)
        del cols  # free it before the same-sized dcols is allocated
        if not input_gradient:
            continue
        dcols = gemm(dout_rows, W_rows, cupy.empty((dout_rows.shape[0], W_rows.shape[1]), dtype=x_nhwc.dtype))
        col2im(dcols, dx_nhwc[n0:n1], W_krsc, stride, padding, out_h, out_w)
    return dx_nhwc, dW_rows.reshape(W_krsc.shape)
