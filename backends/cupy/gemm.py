"""Matrix products through cuBLAS ``cublasGemmEx``, with the compute type this backend's precision asks for.

Why not ``cupy.matmul``: CuPy chooses TF32 once, from ``CUPY_TF32`` at its first product, so it cannot
follow ``set_precision``; and it cannot write a float32 product of bfloat16 inputs, which is how weight
gradients reach the float32 master weights in mixed precision. ``cublasGemmEx`` takes the input, output
and compute types separately: float32 inputs with ``CUBLAS_COMPUTE_32F`` (exact float32) or
``CUBLAS_COMPUTE_32F_FAST_TF32`` (tensor cores), bfloat16 inputs with float32 accumulation and a bfloat16
or float32 output, float64 throughout in float64.

cuBLAS is column-major and our arrays are row-major: a row-major (r, c) matrix is the column-major (c, r)
matrix of its transpose. So ``out = op(a) @ op(b)`` is computed as ``out.T = op(b).T @ op(a).T`` with
the roles of ``a`` and ``b`` swapped; ``gemm_arguments`` does that bookkeeping, and the tests check it
against NumPy with a column-major emulation of ``cublasGemmEx``.
"""
from collections import namedtuple

import numpy as np

from .device import cupy, is_bfloat16
from .precision import uses_tensor_cores

# cudaDataType_t values (CUDA's library_types.h) and cuBLAS enums (cublas_api.h)
CUDA_R_32F, CUDA_R_64F, CUDA_R_16BF = 0, 1, 14
CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_COMPUTE_64F = 68, 77, 70
CUBLAS_GEMM_DEFAULT = -1

GemmArguments = namedtuple("GemmArguments", "transa transb m n k lda ldb ldc")

# alpha and beta live on the host (cuBLAS's default pointer mode) and must outlive the call
_ONE32, _ZERO32 = np.ones(1, np.float32), np.zeros(1, np.float32)
_ONE64, _ZERO64 = np.ones(1, np.float64), np.zeros(1, np.float64)

_handles = {}


def gemm_arguments(a_shape, b_shape, transpose_a=False, transpose_b=False):
    """The column-major ``cublasGemmEx`` arguments for row-major ``out = op(a) @ op(b)``.

    Parameters
    ----------
    a_shape, b_shape : (rows, cols) of the C-contiguous row-major operands as stored
    transpose_a, transpose_b : bool, whether op transposes the operand

    Returns
    -------
    GemmArguments: cuBLAS's ``A`` is our ``b`` and its ``B`` is our ``a``; ``m, n, k`` are N, M, K for
    ``op(a)`` of shape (M, K) and ``op(b)`` of shape (K, N), and the output is (M, N) with ``ldc = N``.
    """
    m_rows, k_a = (a_shape[1], a_shape[0]) if transpose_a else tuple(a_shape)
    k_b, n_cols = (b_shape[1], b_shape[0]) if transpose_b else tuple(b_shape)
    if k_a != k_b:
        raise ValueError(f"gemm: inner dimensions differ: op(a) is {m_rows}x{k_a}, op(b) is {k_b}x{n_cols}")
    return GemmArguments(transa=CUBLAS_OP_T if transpose_b else CUBLAS_OP_N,
                         transb=CUBLAS_OP_T if transpose_a else CUBLAS_OP_N,
                         m=n_cols, n=m_rows, k=k_a, lda=b_shape[1], ldb=a_shape[1], ldc=n_cols)


def _cuda_type(dtype):
    if is_bfloat16(dtype):
        return CUDA_R_16BF
    return {np.dtype(np.float32): CUDA_R_32F, np.dtype(np.float64): CUDA_R_64F}[np.dtype(dtype)]


def compute_type(input_dtype, precision=None):
    """The cuBLAS compute type for products of ``input_dtype`` under ``precision``."""
    dtype = np.dtype(input_dtype)
    if dtype == np.float64:
        return CUBLAS_COMPUTE_64F
    if dtype == np.float32 and uses_tensor_cores(dtype, precision):
        return CUBLAS_COMPUTE_32F_FAST_TF32
    if dtype == np.float32 or is_bfloat16(dtype):
        return CUBLAS_COMPUTE_32F
    raise TypeError(f"gemm: products of float32, float64 or bfloat16 only; got dtype {dtype}")


def _handle():
    """This backend's own cuBLAS handle on the current device (CuPy's may be left in device pointer mode)."""
    from cupy_backends.cuda.libs import cublas
    device = cupy.cuda.Device().id
    if device not in _handles:
        _handles[device] = cublas.create()
    return cublas, _handles[device]


def gemm(a, b, out, transpose_a=False, transpose_b=False, accumulate=False):
    """``out = op(a) @ op(b)`` (or ``out += ...`` with ``accumulate``), in place, on the current stream.

    Parameters
    ----------
    a, b : 2-D CuPy arrays of one dtype (float32, float64 or bfloat16); made C-contiguous if they are not
    out : C-contiguous 2-D CuPy array, the dtype of ``a`` and ``b``, or float32 when they are bfloat16
    transpose_a, transpose_b : bool

    Returns
    -------
    out
    """
    if a.dtype != b.dtype:
        raise TypeError(f"gemm: operands must share a dtype, got {a.dtype} and {b.dtype}")
    if not (out.dtype == a.dtype or (is_bfloat16(a.dtype) and out.dtype == np.float32)):
        raise TypeError(f"gemm: output dtype {out.dtype} does not fit inputs of dtype {a.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("gemm: the output must be C-contiguous")
    a, b = cupy.ascontiguousarray(a), cupy.ascontiguousarray(b)
    args = gemm_arguments(a.shape, b.shape, transpose_a, transpose_b)
    if out.shape != (args.n, args.m):
        raise ValueError(f"gemm: output has shape {out.shape}, the product has shape {(args.n, args.m)}")
    if out.size == 0:
        return out
    if args.k == 0:  # an empty sum: cuBLAS may not touch the output, so do it here
        if not accumulate:
            out.fill(0)
        return out
    computation = compute_type(a.dtype)
    one, zero = (_ONE64, _ZERO64) if computation == CUBLAS_COMPUTE_64F else (_ONE32, _ZERO32)
    cublas, handle = _handle()
    # cupy's gemmEx binding sets the handle's stream to the current CuPy stream before the call.
    cublas.gemmEx(handle, args.transa, args.transb, args.m, args.n, args.k,
                  one.ctypes.data, b.data.ptr, _cuda_type(b.dtype), args.lda,
                  a.data.ptr, _cuda_type(a.dtype), args.ldb,
                  (one if accumulate else zero).ctypes.data, out.data.ptr, _cuda_type(out.dtype), args.ldc,
                  computation, CUBLAS_GEMM_DEFAULT)
    return out
