"""Inverted dropout (Sect. 3.1: ratio 0.5 on the first two FC layers), with its random numbers made in the kernel.

A GPU kernel cannot call a sequential generator: a million threads would queue for its state. Instead each
number is a *hash* of its position: the k-th number of the stream with key ``key`` is ``hash(key, k)``, and
thread t computes number ``first + t`` by itself (a counter-based generator, like cuRAND's Philox). The same
seed gives the same mask on a GPU and in the simulator. The masks are not NumPy's: the NumPy backend draws
with ``numpy.random.Generator``.
"""
from collections import namedtuple

import numpy as np
from numba import cuda

from .arrays import MemoryLayout, array_module, check_same_dtype, device_function, grid_for, on_device

DropoutCache = namedtuple("DropoutCache", "keep_flat scale layout")

_LOW_32_BITS = np.uint64(0xFFFFFFFF)
_SHIFTS = (np.uint64(16), np.uint64(15), np.uint64(8), np.uint64(32))
_MULTIPLIERS = (np.uint64(0x7FEB352D), np.uint64(0x846CA68B))


def mix32(value):
    """A 32-bit integer hash: each input bit flips about half the output bits ("lowbias32", C. Wellons).

    ``value``: a uint64 below 2**32; every product stays below 2**64, so it never overflows, in CUDA or in
    NumPy. Plain Python here (for the host); ``_mix32`` below is the same function compiled for the GPU.
    """
    value ^= value >> _SHIFTS[0]
    value = (value * _MULTIPLIERS[0]) & _LOW_32_BITS
    value ^= value >> _SHIFTS[1]
    value = (value * _MULTIPLIERS[1]) & _LOW_32_BITS
    value ^= value >> _SHIFTS[0]
    return value


_mix32 = device_function(mix32)


@device_function
def uniform(key_low, key_high, counter):
    """The ``counter``-th number of stream (key_low, key_high), uniform on [0, 1) with 24 random bits.

    The key enters before and between two rounds of mixing, so two keys give unrelated streams (not one
    stream shifted).
    """
    count = np.uint64(counter)
    bits = _mix32((count & _LOW_32_BITS) ^ key_low)
    bits = _mix32(bits ^ key_high ^ (count >> _SHIFTS[3]))
    return (bits >> _SHIFTS[2]) * 2.0 ** -24  # top 24 bits: exact in float32


class CounterBasedGenerator:
    """The random state of this backend: a seed, and how many numbers have been drawn from its stream.

    Parameters
    ----------
    seed : int, 0 <= seed < 2**64
    """

    def __init__(self, seed):
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= int(seed) < 2 ** 64:
            raise ValueError(f"CounterBasedGenerator: seed must be an integer in [0, 2**64), got {seed!r}")
        self.seed = int(seed)
        self.drawn = 0
        low, high = np.uint64(self.seed & 0xFFFFFFFF), np.uint64(self.seed >> 32)
        self.key_low = mix32(low ^ mix32(high))
        self.key_high = mix32(self.key_low ^ np.uint64(0x9E3779B9))  # any odd constant: the two keys differ

    def __repr__(self):
        return f"CounterBasedGenerator(seed={self.seed}, drawn={self.drawn})"

    def take(self, count):
        """Reserve the next ``count`` numbers of the stream; returns the counter of the first."""
        first = self.drawn
        self.drawn += int(count)
        return first


@cuda.jit
def dropout_forward_kernel(x, keep, out, key_low, key_high, first, p, scale, draw):
    """``out[k] = x[k] * scale`` where ``keep[k]``, else 0; with ``draw``, first ``keep[k] = uniform(first + k) >= p``.

    All arrays 1-D. ``scale = 1 / (1 - p)`` in x's dtype.
    """
    for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        if draw:
            keep[k] = uniform(key_low, key_high, first + k) >= p
        if keep[k]:
            out[k] = x[k] * scale
        else:
            out[k] = 0


@cuda.jit
def dropout_backward_kernel(dout, keep, scale, dx):
    """``dx[k] = dout[k] * scale`` where ``keep[k]``, else 0: the same units are dropped and scaled."""
    for k in range(cuda.grid(1), dout.size, cuda.gridsize(1)):
        if keep[k]:
            dx[k] = dout[k] * scale
        else:
            dx[k] = 0


def dropout_forward(x, p, rng, mask=None):
    """Zero each unit with probability ``p`` and scale the survivors by ``1 / (1 - p)``.

    Parameters
    ----------
    x : array of any shape
    p : float in [0, 1), the probability of dropping a unit
    rng : CounterBasedGenerator (from ``random_generator``), draws the mask (unused when ``mask`` is given)
    mask : optional boolean array of ``x``'s shape (host or device), True where a unit is kept; used exactly

    Returns
    -------
    out : array of ``x``'s shape and memory layout
    cache : DropoutCache
    """
    xp = array_module()
    check_same_dtype("dropout_forward", x=x)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout_forward: p must be in [0, 1), got {p!r}")
    layout = MemoryLayout(x)
    x_flat = layout.flatten(x)
    draw = mask is None
    if draw:
        if not isinstance(rng, CounterBasedGenerator):
            raise TypeError(f"dropout_forward: expected rng from this backend's random_generator(seed) "
                            f"(a CounterBasedGenerator), got {type(rng).__name__}")
        keep_flat = xp.empty(x_flat.shape, dtype=bool)
        key_low, key_high, first = rng.key_low, rng.key_high, rng.take(x_flat.size)
    else:
        mask = xp.asarray(mask)
        if mask.dtype != bool:
            raise TypeError(f"dropout_forward: mask must be a boolean array (True = keep), got dtype {mask.dtype}")
        keep_flat = layout.flatten(mask, "mask")
        key_low = key_high = np.uint64(0)
        first = 0
    scale = x.dtype.type(1.0 / (1.0 - p))  # in x's dtype, as the reference scales
    out_flat = xp.empty_like(x_flat)
    dropout_forward_kernel[grid_for(x_flat.size)](on_device(x_flat), on_device(keep_flat), on_device(out_flat),
                                                  key_low, key_high, first, p, scale, draw)
    return layout.restore(out_flat), DropoutCache(keep_flat, scale, layout)


def dropout_backward(dout, cache):
    """``dx = dout * mask / (1 - p)``, in the forward input's memory layout."""
    keep_flat, scale, layout = cache
    check_same_dtype("dropout_backward", dout=dout)
    dout_flat = layout.flatten(dout, "dout")
    dx_flat = array_module().empty_like(dout_flat)
    dropout_backward_kernel[grid_for(dout_flat.size)](on_device(dout_flat), on_device(keep_flat), scale,
                                                      on_device(dx_flat))
    return layout.restore(dx_flat)
