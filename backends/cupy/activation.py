"""ReLU (Sect. 2.1) and inverted dropout (Sect. 3.1) as single-pass CUDA kernels.

Both are elementwise, so they run over the flat memory of their input whatever its layout
(``layout.as_packed``) and return the output in the same layout: an NCHW view of NHWC memory stays one.

ReLU keeps its *output* for the backward pass, not a mask: ``out > 0`` exactly where ``x > 0``, and the
output is kept alive anyway as the next layer's input, so the cache costs no memory (the NumPy
reference keeps a boolean mask). Dropout draws its mask inside the kernel from a counter-based hash
(``counter_random``): no array of random numbers, and CUDA-graph replays draw fresh masks.
"""
from collections import namedtuple

import numpy as np

from .counter_random import DEVICE_SOURCE, CounterRandom
from .device import cupy
from .kernels import compute_scalar, get_kernel, index, launch
from .layout import as_packed, in_order, inverse_order

ReLUCache = namedtuple("ReLUCache", "output_flat order")
DropoutCache = namedtuple("DropoutCache", "keep_flat scale order")

RELU_FORWARD_SOURCE = r"""
extern "C" __global__ void relu_forward(const value_t* x, value_t* out, long long n) {
    GRID_STRIDE_LOOP(i, n) {
        compute_t v = load(x[i]);
        out[i] = store(v > 0 ? v : (compute_t)0);
    }
}
"""

RELU_BACKWARD_SOURCE = r"""
extern "C" __global__ void relu_backward(const value_t* dout, const value_t* out, value_t* dx, long long n) {
    GRID_STRIDE_LOOP(i, n) {
        dx[i] = load(out[i]) > 0 ? dout[i] : store((compute_t)0);
    }
}
"""

DROPOUT_FORWARD_SOURCE = DEVICE_SOURCE + r"""
extern "C" __global__ void dropout_forward(const value_t* x, value_t* out, unsigned char* keep, long long n,
                                           unsigned long long seed, const unsigned long long* step,
                                           float p, compute_t scale) {
    unsigned long long replay = *step;
    GRID_STRIDE_LOOP(i, n) {
        unsigned char kept = counter_uniform(seed, replay, i) >= p;
        keep[i] = kept;
        out[i] = store(kept ? load(x[i]) * scale : (compute_t)0);
    }
}
"""

DROPOUT_MASKED_SOURCE = r"""
extern "C" __global__ void dropout_masked(const value_t* dout, const unsigned char* keep, value_t* dx,
                                          long long n, compute_t scale) {
    GRID_STRIDE_LOOP(i, n) {
        dx[i] = store(keep[i] ? load(dout[i]) * scale : (compute_t)0);
    }
}
"""

UNIFORM_SOURCE = DEVICE_SOURCE + r"""
extern "C" __global__ void draw_uniform(float* out, long long n, unsigned long long seed,
                                        const unsigned long long* step) {
    unsigned long long replay = *step;
    GRID_STRIDE_LOOP(i, n) { out[i] = counter_uniform(seed, replay, i); }
}
"""

_step_counter = None


def step_counter():
    """The device counter mixed into every dropout mask: 0 in eager mode, advanced by CUDA-graph replays."""
    global _step_counter
    if _step_counter is None:
        _step_counter = cupy.zeros(1, dtype=cupy.uint64)
    return _step_counter


def _same_dtype(op, a, b, names):
    if a.dtype != b.dtype:
        raise TypeError(f"{op}: {names[0]} has dtype {a.dtype} but {names[1]} has dtype {b.dtype}; they must match")


def relu_forward(x):
    """``out = max(0, x)`` elementwise.

    Parameters
    ----------
    x : CuPy array of any shape and layout (float32, float64 or bfloat16)

    Returns
    -------
    out : array of the same shape, dtype and memory layout
    cache : ReLUCache, the output itself (``out > 0`` is the mask)
    """
    flat, order, restore = as_packed(x)
    out = cupy.empty_like(flat)
    launch(get_kernel("relu_forward", RELU_FORWARD_SOURCE, flat.dtype), flat.size, (flat, out, index(flat.size)))
    return restore(out), ReLUCache(out, order)


def relu_backward(dout, cache):
    """``dx = dout`` where the output was positive, 0 elsewhere; ``dx`` has the forward output's layout."""
    output_flat, order = cache
    _same_dtype("relu_backward", dout, output_flat, ("dout", "the forward output"))
    dout_flat = in_order(dout, order)
    dx = cupy.empty_like(output_flat)
    launch(get_kernel("relu_backward", RELU_BACKWARD_SOURCE, dx.dtype), dx.size,
           (dout_flat, output_flat, dx, index(dx.size)))
    return _restore_like(dx, dout.shape, order)


def _restore_like(flat, shape, order):
    """``flat`` (memory order ``order``) as an array of ``shape`` viewed through that order."""
    packed_shape = tuple(shape[axis] for axis in order)
    return flat.reshape(packed_shape).transpose(inverse_order(order))


def dropout_forward(x, p, rng, mask=None):
    """Zero each unit with probability ``p`` and scale the survivors by ``1 / (1 - p)``.

    Parameters
    ----------
    x : CuPy array of any shape
    p : float in [0, 1), the probability of dropping a unit
    rng : CounterRandom from ``random_generator(seed)``; unit i is kept when
        ``counter_random.uniform(rng.seed, step, i) >= p`` (i counts in ``x``'s memory order)
    mask : optional boolean array of ``x``'s shape, True where a unit is kept (for gradient checks)

    Returns
    -------
    out : array of ``x``'s shape, dtype and layout
    cache : DropoutCache, the kept units (one byte each) and the scale
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout_forward: p must be in [0, 1), got {p!r}")
    flat, order, restore = as_packed(x)
    scale = compute_scalar(flat.dtype, 1.0 / (1.0 - p))
    out = cupy.empty_like(flat)
    if mask is None:
        if not isinstance(rng, CounterRandom):
            raise TypeError(f"dropout_forward: expected the generator from this backend's random_generator(seed), "
                            f"got {type(rng).__name__}")
        keep = cupy.empty(flat.size, dtype=cupy.uint8)
        launch(get_kernel("dropout_forward", DROPOUT_FORWARD_SOURCE, flat.dtype), flat.size,
               (flat, out, keep, index(flat.size), np.uint64(rng.seed), step_counter(), np.float32(p), scale))
    else:
        mask = cupy.asarray(mask)
        if mask.shape != x.shape or mask.dtype != cupy.bool_:
            raise ValueError(f"dropout_forward: mask must be a boolean array of shape {x.shape}, got "
                             f"{mask.dtype} of shape {mask.shape}")
        keep = in_order(mask, order).view(cupy.uint8)
        launch(get_kernel("dropout_masked", DROPOUT_MASKED_SOURCE, flat.dtype), flat.size,
               (flat, keep, out, index(flat.size), scale))
    return restore(out), DropoutCache(keep, scale, order)


def dropout_backward(dout, cache):
    """``dx = dout * mask / (1 - p)``: the same units are dropped and scaled."""
    keep, scale, order = cache
    dout_flat = in_order(dout, order)
    dx = cupy.empty_like(dout_flat)
    launch(get_kernel("dropout_masked", DROPOUT_MASKED_SOURCE, dx.dtype), dx.size,
           (dout_flat, keep, dx, index(dx.size), compute_scalar(dx.dtype, scale)))
    return _restore_like(dx, dout.shape, order)


def draw_uniform(seed, size):
    """``counter_random.uniform(seed, step, n)`` on the device, shaped ``size`` (what CounterRandom.random returns)."""
    out = cupy.empty(size, dtype=cupy.float32)
    kernel = get_kernel("draw_uniform", UNIFORM_SOURCE, cupy.float32)
    launch(kernel, out.size, (out, index(out.size), np.uint64(seed), step_counter()))
    return out
