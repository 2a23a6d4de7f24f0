"""The NumPy backend's fully-connected layer: ``linear.py``'s maths with its products split over all cores.

One BLAS thread per core, each on a block of rows or columns (``parallel.matmul``), instead of one
multi-threaded BLAS call whose idle threads then spin on the cores the convolution's chunks need
(``parallel.py`` has the measurement). Tested equal to ``linear.py``.
"""
from ..reference.linear import LinearCache
from .parallel import matmul, one_blas_thread


@one_blas_thread
def linear_forward(x, W, b):
    """``linear.linear_forward``: (N, in), (out, in), (out,) -> (N, out) ``x @ W.T + b``, and its cache."""
    out = matmul(x, W.T)
    out += b
    return out, LinearCache(x, W)


@one_blas_thread
def linear_backward(dout, cache):
    """``linear.linear_backward``: ``dx = dout @ W``, ``dW = dout.T @ x``, ``db`` = ``dout`` summed over the batch."""
    x, W = cache
    return matmul(dout, W), matmul(dout.T, x), dout.sum(axis=0)
