"""Counter-based random numbers for dropout masks: ``uniform(seed, step, i)`` is a pure function.

A stateful generator (cuRAND) keeps its state on the host side of a kernel launch, so a training step
captured in a CUDA graph would replay the very same dropout mask forever. Here the i-th number is a hash
of (seed, step, i) instead, as Philox works in cuRAND and PyTorch:

    u = top 24 bits of splitmix64(seed XOR splitmix64(i + step * 2**40)) / 2**24     in [0, 1)

``seed`` comes from the Dropout layer (one per call, as on the NumPy backend), and ``step`` is a counter
in device memory that stays 0 in eager mode and that a captured CUDA graph advances at every replay
(``graph_capture``), so each replay draws a new mask without any host work. splitmix64 is Steele,
Lea & Flood's (2014) finaliser; it passes BigCrush when fed a counter, far more than a dropout mask needs.

``uniform`` below is the same function on the host in NumPy: the GPU tests check the device masks
against it bit for bit, and the CPU tests check its statistics.
"""
import numpy as np

GOLDEN_GAMMA = 0x9E3779B97F4A7C15
MIX_1, MIX_2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
STEP_SHIFT = 40  # element indices below 2**40 never collide with the next step's

DEVICE_SOURCE = r"""
__device__ __forceinline__ unsigned long long splitmix64(unsigned long long z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
__device__ __forceinline__ float counter_uniform(unsigned long long seed, unsigned long long step, long long i) {
    unsigned long long bits = splitmix64(seed ^ splitmix64((unsigned long long)i + (step << 40)));
    return (float)(bits >> 40) * (1.0f / 16777216.0f);
}
"""


def _splitmix64(z):
    with np.errstate(over="ignore"):  # the hash relies on arithmetic modulo 2**64
        z = z + np.uint64(GOLDEN_GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX_1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX_2)
    return z ^ (z >> np.uint64(31))


def uniform(seed, step, count):
    """The first ``count`` numbers of stream (``seed``, ``step``), as float32 in [0, 1), on the host.

    Parameters
    ----------
    seed : int in [0, 2**64)
    step : int in [0, 2**24), the replay counter (0 outside CUDA graphs)
    count : int < 2**40

    Returns
    -------
    (count,) float32 array, equal bit for bit to what the dropout kernel draws for elements 0..count-1
    """
    if not 0 <= seed < 2 ** 64:
        raise ValueError(f"uniform: seed must be in [0, 2**64), got {seed}")
    if not 0 <= count < 2 ** STEP_SHIFT:
        raise ValueError(f"uniform: count must be in [0, 2**{STEP_SHIFT}), got {count}")
    with np.errstate(over="ignore"):
        counters = np.arange(count, dtype=np.uint64) + (np.uint64(step) << np.uint64(STEP_SHIFT))
    bits = _splitmix64(np.uint64(seed) ^ _splitmix64(counters))
    return (bits >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 2 ** 24)


class CounterRandom:
    """What ``random_generator(seed)`` returns: a seed that the dropout kernel hashes with a counter.

    ``random(size, dtype)`` draws uniform numbers on the device like ``numpy.random.Generator.random``, so
    code written for a NumPy generator also runs; the dropout kernel skips the array and hashes in place.
    """

    def __init__(self, seed):
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= int(seed) < 2 ** 64:
            raise ValueError(f"CounterRandom: seed must be an integer in [0, 2**64), got {seed!r}")
        self.seed = int(seed)

    def __repr__(self):
        return f"CounterRandom(seed={self.seed})"

    def random(self, size, dtype=np.float32):
        """Uniform numbers in [0, 1) of shape ``size`` on the device (float32 only: 24 random bits)."""
        from .activation import draw_uniform
        if np.dtype(dtype) != np.float32:
            raise TypeError(f"CounterRandom.random: draws float32 (24 random bits), got dtype {np.dtype(dtype)}")
        return draw_uniform(self.seed, size)
