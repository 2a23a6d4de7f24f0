"""Counter-based random numbers: each draw is a pure function of where it is used, not of a generator's history.

A dropout mask must be the same however a batch is split (one process or several, whole batch or accumulated
device batches) and on every backend. So the uniform number for unit ``j`` of sample ``i`` at step ``t`` is a
hash of ``(seed, t, i, j)`` -- the splitmix64 finaliser (Steele, Lea & Flood, "Fast splittable pseudorandom
number generators", 2014) applied twice -- computed with unsigned 64-bit integer arithmetic that NumPy, CuPy
and a Numba kernel all do the same way.
"""
import numpy

_MASK64 = (1 << 64) - 1
_GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_MIX_1 = 0xBF58476D1CE4E5B9
_MIX_2 = 0x94D049BB133111EB


def mix64_scalar(z):
    """splitmix64's finaliser on a Python int (exact, no overflow warnings)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * _MIX_1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX_2) & _MASK64
    return z ^ (z >> 31)


def mix64(xp, z):
    """splitmix64's finaliser on a uint64 array of module ``xp`` (products wrap modulo 2**64)."""
    z = (z ^ (z >> xp.uint64(30))) * xp.uint64(_MIX_1)
    z = (z ^ (z >> xp.uint64(27))) * xp.uint64(_MIX_2)
    return z ^ (z >> xp.uint64(31))


def stream_key(seed, step):
    """The 64-bit key of one (seed, step) pair."""
    return mix64_scalar((int(seed) * _GOLDEN_GAMMA + int(step)) & _MASK64)


def uniform(xp, seed, step, first_sample, shape):
    """Uniform float32 numbers in [0, 1), keyed by position.

    Parameters
    ----------
    xp : the array module (numpy or cupy)
    seed, step : ints; the stream (a layer's seed, the SGD step)
    first_sample : int, the global index of the batch's first sample
    shape : (N, ...) the shape to fill; element ``[n, *rest]`` depends only on
        ``(seed, step, first_sample + n, flat index of rest)``

    Returns
    -------
    array of ``shape``, float32, multiples of 2**-24
    """
    shape = tuple(int(s) for s in shape)
    if not shape:
        raise ValueError("counter_random.uniform: shape must have a sample axis")
    per_sample = 1
    for size in shape[1:]:
        per_sample *= size
    if per_sample >= 1 << 32 or first_sample < 0 or first_sample + shape[0] >= 1 << 32:
        raise ValueError(f"counter_random.uniform: sample index or units per sample out of range for shape {shape}")
    key = xp.uint64(stream_key(seed, step))
    samples = xp.arange(first_sample, first_sample + shape[0], dtype=xp.uint64)[:, None]
    units = xp.arange(per_sample, dtype=xp.uint64)[None, :]
    counter = (samples << xp.uint64(32)) | units
    bits = mix64(xp, mix64(xp, counter ^ key) + key)
    # The top 24 bits make a float32 exactly (24-bit significand).
    return ((bits >> xp.uint64(40)).astype(xp.float32) * xp.float32(2.0 ** -24)).reshape(shape)


def uniform_numpy(seed, step, first_sample, shape):
    """``uniform`` on the host, for tests and lessons."""
    return uniform(numpy, seed, step, first_sample, shape)
