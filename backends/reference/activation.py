"""The rectified linear unit, ``max(0, x)``, after every hidden weight layer (Sect. 2.1)."""
from collections import namedtuple

ReLUCache = namedtuple("ReLUCache", "positive")


def relu_forward(x):
    """``out = max(0, x)`` elementwise.

    Parameters
    ----------
    x : array of any shape

    Returns
    -------
    out : array of the same shape and memory layout
    cache : ReLUCache, the mask ``x > 0``
    """
    positive = x > 0
    return x * positive, ReLUCache(positive)


def relu_backward(dout, cache):
    """``dx = dout`` where the input was positive, 0 elsewhere (the subgradient 0 is taken at ``x = 0``)."""
    return dout * cache.positive
