"""Fully-connected layer, ``out = x W^T + b`` (the three FC layers of Table 1)."""
from collections import namedtuple

LinearCache = namedtuple("LinearCache", "x W")


def linear_forward(x, W, b):
    """Affine map of a batch of vectors.

    Parameters
    ----------
    x : (N, in) array
    W : (out, in) array, stored as PyTorch and Caffe store it
    b : (out,) array

    Returns
    -------
    out : (N, out) array, ``x @ W.T + b``
    cache : LinearCache
    """
    return x @ W.T + b, LinearCache(x, W)


def linear_backward(dout, cache):
    """Gradients of ``linear_forward``.

    Returns
    -------
    dx : (N, in) array, ``dout @ W``
    dW : (out, in) array, ``dout.T @ x``
    db : (out,) array, ``dout`` summed over the batch
    """
    x, W = cache
    return dout @ W, dout.T @ x, dout.sum(axis=0)
