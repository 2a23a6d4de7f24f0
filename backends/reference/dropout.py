"""Inverted dropout, applied to the first two FC layers with ratio 0.5 (Sect. 3.1).

The mask is keyed by position: unit ``j`` of sample ``i`` (its index in the SGD step's global batch) at step
``t`` is kept iff ``counter_random.uniform(seed, t, i, j) >= p``. So the mask of a sample does not depend on
how the batch was split -- one batch of 256, accumulated device batches, or shards on N processes -- and it is
the same on every backend, since the uniform numbers are integer hashes every array module computes alike.
"""
from collections import namedtuple

from .counter_random import uniform

DropoutCache = namedtuple("DropoutCache", "scaled_mask")


def keep_mask(xp, p, seed, step, first_sample, shape):
    """The units dropout keeps, keyed by position.

    Parameters
    ----------
    xp : the array module (numpy or cupy) the mask is made with
    p : float in [0, 1), the probability of dropping a unit
    seed : int, the layer's seed
    step : int, the SGD step
    first_sample : int, the index of the batch's first sample in the step's global batch
    shape : (N, ...) the input's shape

    Returns
    -------
    boolean array of ``shape``: ``mask[n, ...]`` is ``uniform(seed, step, first_sample + n, unit) >= p``
    """
    return uniform(xp, seed, step, first_sample, shape) >= xp.float32(p)


def dropout_forward(x, p, mask):
    """Zero the units ``mask`` drops (each with probability ``p``) and scale the survivors by ``1 / (1 - p)``.

    Scaling at training time ("inverted" dropout) keeps the expected activation unchanged, so
    evaluation is the identity and needs no rescaling.

    Parameters
    ----------
    x : array of any shape
    p : float in [0, 1), the probability of dropping a unit
    mask : boolean array of ``x``'s shape, True where a unit is kept: ``keep_mask``, keyed by position, so
        that it is the same on every backend and however the batch is split

    Returns
    -------
    out : array of ``x``'s shape
    cache : DropoutCache
    """
    scaled_mask = mask.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))  # a scalar: any array module
    return x * scaled_mask, DropoutCache(scaled_mask)


def dropout_backward(dout, cache):
    """``dx = dout * mask / (1 - p)``: the same units are dropped and scaled."""
    return dout * cache.scaled_mask
