"""Inverted dropout, applied to the first two FC layers with ratio 0.5 (Sect. 3.1)."""
from collections import namedtuple

import numpy as np

DropoutCache = namedtuple("DropoutCache", "scaled_mask")


def dropout_forward(x, p, rng, mask=None):
    """Zero each unit with probability ``p`` and scale the survivors by ``1 / (1 - p)``.

    Scaling at training time ("inverted" dropout) keeps the expected activation unchanged, so
    evaluation is the identity and needs no rescaling.

    Parameters
    ----------
    x : array of any shape
    p : float in [0, 1), the probability of dropping a unit
    rng : numpy.random.Generator, draws the mask (ignored when ``mask`` is given)
    mask : optional boolean array of ``x``'s shape, True where a unit is kept; a fixed mask makes the
        layer deterministic, which gradient checks need

    Returns
    -------
    out : array of ``x``'s shape
    cache : DropoutCache
    """
    if mask is None:
        mask = rng.random(x.shape, dtype=np.float32) >= p
    scaled_mask = mask * np.asarray(1.0 / (1.0 - p), dtype=x.dtype)
    return x * scaled_mask, DropoutCache(scaled_mask)


def dropout_backward(dout, cache):
    """``dx = dout * mask / (1 - p)``: the same units are dropped and scaled."""
    return dout * cache.scaled_mask
