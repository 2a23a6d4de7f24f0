"""Which arithmetic the CuPy backend's convolutions and matrix products use: fp32, TF32 or bf16.

    fp32   float32 storage, float32 products (no tensor cores): the slowest, and the one that matches
           the NumPy reference to about 1e-6.
    tf32   float32 storage; convolutions and matrix products on TF32 tensor cores (10-bit mantissa
           inputs, float32 accumulation): about 8x the fp32 rate on an H100, relative error ~1e-3.
           The default, as in PyTorch's convolutions.
    bf16   mixed precision: parameters stay float32 (the "master weights" the SGD step updates), while
           activations and their gradients are bfloat16 and every product runs on bf16 tensor cores with
           float32 accumulation; weight gradients come back float32. Relative error ~1e-2.

float64 inputs (gradient checks) always compute in float64, whatever the setting.

The setting is this backend's own state, read at every call: ``set_precision("fp32")`` takes effect at
the next convolution. CuPy's own ``cupy.matmul`` reads ``CUPY_TF32`` once, at its first product, so this
backend never uses it: its products go through cuBLAS or cuDNN with the compute type chosen here.
"""
import numpy as np

from .device import is_bfloat16, require_bfloat16

PRECISIONS = ("fp32", "tf32", "bf16")
DEFAULT_PRECISION = "tf32"

_current = DEFAULT_PRECISION


def set_precision(precision):
    """Choose ``"fp32"``, ``"tf32"`` (the default) or ``"bf16"`` for this backend; returns the previous one.

    Raises
    ------
    TypeError if ``precision`` is not a string; ValueError if it is not one of ``PRECISIONS``;
    ImportError for ``"bf16"`` when the ml_dtypes package (CuPy's bfloat16 dtype) is missing.
    """
    global _current
    if not isinstance(precision, str):
        raise TypeError(f"set_precision: expected one of {PRECISIONS} as a string, got {type(precision).__name__} "
                        f"{precision!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"set_precision: unknown precision {precision!r}; choose one of {PRECISIONS}")
    if precision == "bf16":
        require_bfloat16()
    previous, _current = _current, precision
    return previous


def get_precision():
    """The precision set with ``set_precision`` (``"tf32"`` unless changed)."""
    return _current


def activation_dtype(input_dtype, precision=None):
    """The dtype a layer's output has when its input has ``input_dtype``.

    float64 stays float64 and bfloat16 stays bfloat16; float32 becomes bfloat16 under ``"bf16"``
    (the first convolution casts the images) and stays float32 otherwise.
    """
    precision = precision or _current
    dtype = np.dtype(input_dtype)
    if dtype == np.float32 and precision == "bf16":
        return require_bfloat16()
    if dtype in (np.float32, np.float64) or is_bfloat16(dtype):
        return dtype
    raise TypeError(f"the cupy backend computes in float32, float64 or bfloat16; got dtype {dtype}")


def uses_tensor_cores(compute_dtype, precision=None):
    """Whether products in ``compute_dtype`` may run on tensor cores under ``precision``.

    bfloat16 always does; float32 only under ``"tf32"``; float64 never (there are FP64 tensor cores,
    but cuDNN and cuBLAS use them only where they give full float64 accuracy, so nothing to switch).
    """
    precision = precision or _current
    dtype = np.dtype(compute_dtype)
    if is_bfloat16(dtype):
        return True
    return dtype == np.float32 and precision == "tf32"


MANTISSA_BITS = {"fp32": 23, "tf32": 10, "bf16": 7}


def round_like_tensor_cores(array, precision):
    """Host emulation (NumPy) of what a product's inputs keep under ``precision``: float32 values with their
    mantissa rounded to nearest-even at 10 bits (TF32) or 7 bits (bfloat16); fp32 leaves them unchanged.

    For lessons and tests: it shows the input rounding that accounts for most of TF32's and bf16's error,
    not the exact rounding mode of any one kernel.

    Parameters
    ----------
    array : NumPy array (cast to float32)
    precision : "fp32", "tf32" or "bf16"

    Returns
    -------
    float32 array of ``array``'s shape
    """
    if precision not in MANTISSA_BITS:
        raise ValueError(f"round_like_tensor_cores: unknown precision {precision!r}; choose one of {PRECISIONS}")
    values = np.asarray(array, dtype=np.float32)
    dropped = 23 - MANTISSA_BITS[precision]
    if dropped == 0:
        return values.copy()
    bits = values.view(np.uint32).astype(np.uint64)  # 64-bit: the rounding carry may not overflow
    bits += (1 << (dropped - 1)) - 1 + ((bits >> dropped) & 1)
    bits &= ~np.uint64((1 << dropped) - 1)
    rounded = bits.astype(np.uint32).view(np.float32)
    return np.where(np.isfinite(values), rounded, values)
