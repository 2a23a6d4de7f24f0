"""Compiling and launching this backend's CUDA kernels, for float32, float64 and bfloat16 arrays alike.

Every kernel is written once against three names that a short prelude defines per dtype:

    value_t    how an element is stored: float, double, or the 16 bits of a bfloat16
    compute_t  what arithmetic runs in: float for float32 and bfloat16, double for float64
    load(v) / store(c)   value_t <-> compute_t; for bfloat16 a shift, and round-to-nearest-even back
    exponential, logarithm, power   the maths functions in compute_t

So a bfloat16 kernel reads half the bytes of a float32 one but adds in float32, which is what mixed
precision means, and no kernel depends on CUDA's bfloat16 headers. Kernels are compiled by NVRTC on first
use (CuPy caches the binaries on disk) and kept here per (kernel, dtype).

Loops are grid-stride loops over 64-bit indices: one launch covers any size, and a VGG-16 activation
at batch 64 (205 M elements) is far from the 32-bit limit but a batch of 1,024 would not be.
"""
import numpy as np

from .device import cupy, is_bfloat16

THREADS_PER_BLOCK = 256
MAX_BLOCKS = 65536  # beyond this each thread takes several elements: enough blocks to fill any GPU

_PRELUDES = {
    "float32": """
typedef float value_t;
typedef float compute_t;
__device__ __forceinline__ compute_t load(value_t v) { return v; }
__device__ __forceinline__ value_t store(compute_t c) { return c; }
__device__ __forceinline__ compute_t exponential(compute_t a) { return expf(a); }
__device__ __forceinline__ compute_t logarithm(compute_t a) { return logf(a); }
__device__ __forceinline__ compute_t power(compute_t a, compute_t b) { return powf(a, b); }
""",
    "float64": """
typedef double value_t;
typedef double compute_t;
__device__ __forceinline__ compute_t load(value_t v) { return v; }
__device__ __forceinline__ value_t store(compute_t c) { return c; }
__device__ __forceinline__ compute_t exponential(compute_t a) { return exp(a); }
__device__ __forceinline__ compute_t logarithm(compute_t a) { return log(a); }
__device__ __forceinline__ compute_t power(compute_t a, compute_t b) { return pow(a, b); }
""",
    # bfloat16 is the upper half of a float32: widen by shifting, narrow by rounding to nearest even.
    "bfloat16": """
typedef unsigned short value_t;
typedef float compute_t;
__device__ __forceinline__ compute_t load(value_t v) { return __uint_as_float(((unsigned int)v) << 16); }
__device__ __forceinline__ value_t store(compute_t c) {
    unsigned int bits = __float_as_uint(c);
    if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu)) return 0x7fc0;  /* NaN stays NaN */
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (unsigned short)(bits >> 16);
}
__device__ __forceinline__ compute_t exponential(compute_t a) { return expf(a); }
__device__ __forceinline__ compute_t logarithm(compute_t a) { return logf(a); }
__device__ __forceinline__ compute_t power(compute_t a, compute_t b) { return powf(a, b); }
""",
}

_COMMON = """
#define GRID_STRIDE_LOOP(i, n) \\
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \\
         i += (long long)blockDim.x * gridDim.x)
"""

_compiled = {}


def dtype_key(dtype):
    """``"float32"``, ``"float64"`` or ``"bfloat16"``: the prelude a kernel for ``dtype`` is compiled with."""
    dtype = np.dtype(dtype)
    if is_bfloat16(dtype):
        return "bfloat16"
    if dtype in (np.float32, np.float64):
        return dtype.name
    raise TypeError(f"the cupy backend's kernels take float32, float64 or bfloat16 arrays; got dtype {dtype}")


def kernel_source(source, dtype):
    """The full CUDA source of ``source`` specialised for ``dtype`` (the prelude, then the kernel)."""
    return _PRELUDES[dtype_key(dtype)] + _COMMON + source


def get_kernel(name, source, dtype):
    """The compiled ``cupy.RawKernel`` called ``name`` in ``source``, specialised for ``dtype`` (cached)."""
    key = (name, source, dtype_key(dtype))
    kernel = _compiled.get(key)
    if kernel is None:
        kernel = cupy.RawKernel(kernel_source(source, dtype), name, options=("--std=c++17",))
        _compiled[key] = kernel
    return kernel


def blocks_for(count, threads=THREADS_PER_BLOCK, max_blocks=MAX_BLOCKS):
    """Blocks for a grid-stride loop over ``count`` elements: one element a thread, at most ``max_blocks``."""
    if count < 0:
        raise ValueError(f"blocks_for: count must be >= 0, got {count}")
    return max(1, min(max_blocks, -(-count // threads)))


def launch(kernel, count, args):
    """Run a grid-stride ``kernel`` over ``count`` elements on the current stream (nothing for 0)."""
    if count:
        kernel((blocks_for(count),), (THREADS_PER_BLOCK,), args)


def compute_scalar(dtype, value):
    """``value`` as the kernel's ``compute_t``: float64 for float64 arrays, float32 otherwise."""
    return np.float64(value) if np.dtype(dtype) == np.float64 else np.float32(value)


def index(value):
    """An element count or offset as the kernels' ``long long``."""
    return np.int64(value)
