"""Direct nested-loop forwards: slow, obviously right, and the yardstick the fast ops are tested against.

Each loop is the formula in the docstring of its fast twin, written out element by element (as the
CS231n assignments keep a naive version beside the fast one). Use them on tiny inputs only.
"""
import numpy as np

from .conv import output_size


def conv2d_forward_loops(x, W, b, stride=1, padding=0):
    """``out[n, f, y, x] = b[f] + sum_{c, i, j} W[f, c, i, j] * x_pad[n, c, y*s + i, x*s + j]``.

    Shapes as ``conv.conv2d_forward``: x (N, C, H, W), W (F, C, kh, kw), b (F,) -> (N, F, Ho, Wo).
    """
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    out = np.zeros((n, f, out_h, out_w), dtype=np.result_type(x, W))
    for image in range(n):
        for filt in range(f):
            for y in range(out_h):
                for x_ in range(out_w):
                    window = x_pad[image, :, y * stride:y * stride + kh, x_ * stride:x_ * stride + kw]
                    out[image, filt, y, x_] = np.sum(window * W[filt]) + b[filt]
    return out


def max_pool2d_forward_loops(x, kernel_size=2, stride=2):
    """``out[n, c, y, x] = max_{i, j < k} x[n, c, y*s + i, x*s + j]``; shapes as ``pool.max_pool2d_forward``."""
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, kernel_size, stride, 0), output_size(w, kernel_size, stride, 0)
    out = np.zeros((n, c, out_h, out_w), dtype=x.dtype)
    for image in range(n):
        for channel in range(c):
            for y in range(out_h):
                for x_ in range(out_w):
                    window = x[image, channel, y * stride:y * stride + kernel_size,
                               x_ * stride:x_ * stride + kernel_size]
                    out[image, channel, y, x_] = window.max()
    return out


def lrn_forward_loops(x, size=5, alpha=1e-4, beta=0.75, k=2.0, alpha_divided_by_size=False):
    """``y[c] = x[c] / (k + alpha' * sum_{c' = c - (size-1)//2}^{c + size//2} x[c']**2) ** beta``, per pixel."""
    alpha_eff = alpha / size if alpha_divided_by_size else alpha
    n, c, h, w = x.shape
    out = np.zeros_like(x)
    for channel in range(c):
        lo, hi = max(0, channel - (size - 1) // 2), min(c, channel + size // 2 + 1)
        energy = (x[:, lo:hi] ** 2).sum(axis=1)
        out[:, channel] = x[:, channel] / (k + alpha_eff * energy) ** beta
    return out
