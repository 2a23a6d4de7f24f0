"""Output sizes: the one place the arithmetic of a sliding window lives.

Every backend, the layers' ``output_shape``, the summary and the receptive-field arithmetic call it, so the
maths (``backends/``) needs nothing from the package above it.
"""

__all__ = ["output_size"]


def output_size(size, kernel, stride, padding, ceil_mode=False):
    """Output side of a convolution or pooling window along one axis: ``floor((size + 2p - k) / s) + 1``.

    ``ceil_mode``: Caffe's pooling, ``ceil((size + 2p - k) / s) + 1``, whose last window may hang over the
    bottom or right edge so that every input row and column is pooled; a last window that would start in
    the padding or beyond is dropped (as Caffe does).
    """
    if not ceil_mode:
        return (size + 2 * padding - kernel) // stride + 1
    out = -(-(size + 2 * padding - kernel) // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out
