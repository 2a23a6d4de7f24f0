"""Output sizes: the one place the arithmetic of a sliding window lives.

Every backend, the layers' ``output_shape``, the summary and the receptive-field arithmetic call it, so the
maths (``backends/``) needs nothing from the package above it.
"""

__all__ = ["output_size"]


def output_size(size, kernel, stride, padding):
    """Output side of a convolution or pooling window along one axis: ``floor((size + 2p - k) / s) + 1``."""
    return (size + 2 * padding - kernel) // stride + 1
