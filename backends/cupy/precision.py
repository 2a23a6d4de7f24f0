"""Which arithmetic the CuPy backend's cuDNN convolutions use: fp32 or TF32.

    fp32   float32 products (no tensor cores): matches the NumPy reference to about 1e-6.
    tf32   float32 storage, products on TF32 tensor cores (10-bit mantissa inputs, float32 accumulation):
           relative error ~1e-3. The default, as in PyTorch's convolutions.

float64 inputs (gradient checks) always compute in float64: they take the reference's im2col route.
The setting is read at every convolution. The FC layers' products are CuPy's ``matmul`` (the reference's
``x @ W.T``), which reads its own switch, the ``CUPY_TF32`` environment variable, once, at its first product.
(A bf16 mixed-precision mode existed before; it needed every op rewritten for bfloat16 and was never
measured, so it went with them. ``round_like_tensor_cores`` shows on the host what each mode keeps.)
"""
import numpy as np

PRECISIONS = ("fp32", "tf32")
DEFAULT_PRECISION = "tf32"
MANTISSA_BITS = {"fp32": 23, "tf32": 10, "bf16": 7}

_current = DEFAULT_PRECISION


def set_precision(precision):
    """Choose ``"fp32"`` or ``"tf32"`` (the default) for this backend's convolutions; returns the previous one.

    Raises TypeError if ``precision`` is not a string, ValueError if it is not one of ``PRECISIONS``.
    """
    global _current
    if not isinstance(precision, str):
        raise TypeError(f"set_precision: expected one of {PRECISIONS} as a string, got {type(precision).__name__} "
                        f"{precision!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"set_precision: unknown precision {precision!r}; choose one of {PRECISIONS}")
    previous, _current = _current, precision
    return previous


def get_precision():
    """The precision set with ``set_precision`` (``"tf32"`` unless changed)."""
    return _current


def uses_tensor_cores(precision=None):
    """Whether float32 convolutions may run on TF32 tensor cores under ``precision`` (default: the current one)."""
    return (precision or _current) == "tf32"


def round_like_tensor_cores(array, precision):
    """Host emulation (NumPy) of what a product's inputs keep: float32 values with their mantissa rounded to
    nearest-even at 10 bits (``"tf32"``) or 7 bits (``"bf16"``); ``"fp32"`` leaves them unchanged.

    For lessons and tests: it shows the input rounding that accounts for most of TF32's error, not the exact
    rounding of any one kernel. Shapes: any array in, a float32 array of its shape out.
    """
    if precision not in MANTISSA_BITS:
        raise ValueError(f"round_like_tensor_cores: unknown precision {precision!r}; choose one of "
                         f"{tuple(MANTISSA_BITS)}")
    values = np.asarray(array, dtype=np.float32)
    dropped = 23 - MANTISSA_BITS[precision]
    if dropped == 0:
        return values.copy()
    bits = values.view(np.uint32).astype(np.uint64)  # 64-bit: the rounding carry may not overflow
    bits += (1 << (dropped - 1)) - 1 + ((bits >> dropped) & 1)
    bits &= ~np.uint64((1 << dropped) - 1)
    rounded = bits.astype(np.uint32).view(np.float32)
    return np.where(np.isfinite(values), rounded, values)
