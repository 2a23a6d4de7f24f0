"""Lesson 8's exercises: emulating the tensor cores' TF32 rounding on the host, and questions on backends and
precisions.

::

    from minivgg.exercises import gpu_precision
    gpu_precision.check_round_to_tf32(round_to_tf32)   # float32 array -> float32 array, 10-bit mantissa
"""
import numpy as np

from . import library
from .checking import Case, Mistake, Question, check_answers as _check_answers, compare_with_library

__all__ = ["check_round_to_tf32", "QUESTIONS", "check_answers"]


def _library_tf32(x):
    return library.round_like_tensor_cores(x, "tf32")


def _cases():
    rng = np.random.default_rng(18)
    one = np.float32(1.0)
    ulp = np.float32(2.0 ** -10)  # TF32's spacing just above 1
    # Exact halfway points between two TF32 numbers: round-to-nearest-even sends them to the even neighbour.
    halfway = np.array([one + ulp / 2, one + 3 * ulp / 2, -(one + ulp / 2), 2 * (one + 3 * ulp / 2)], np.float32)
    return [Case("weights of N(0, 0.01^2), float32", (rng.normal(0, 0.01, (64, 27)).astype(np.float32),)),
            Case("activations of N(0, 1), float32", (rng.normal(0, 1, (8, 100)).astype(np.float32),)),
            Case("pixels minus the mean, float32", (rng.normal(0, 60, (3, 50)).astype(np.float32),)),
            Case("weight gradients of about 1e-6, float32", (rng.normal(0, 1e-6, (16, 16)).astype(np.float32),)),
            Case("numbers exactly halfway between two TF32 values", (halfway,))]


def _round_with(bits, mode="nearest-even"):
    def rounding(x):
        values = np.asarray(x, np.float32)
        dropped = 23 - bits
        raw = values.view(np.uint32).astype(np.uint64)
        if mode == "nearest-even":
            raw += (1 << (dropped - 1)) - 1 + ((raw >> dropped) & 1)
        elif mode == "half-up":
            raw += 1 << (dropped - 1)
        raw &= ~np.uint64((1 << dropped) - 1)
        return raw.astype(np.uint32).view(np.float32)
    return rounding


MISTAKES = (
    Mistake.computing(_round_with(10, "truncate"),
                      "you truncate the mantissa (round toward zero): tensor cores round to the nearest TF32 value",
                      "add half of the dropped part before clearing the 13 low bits"),
    Mistake.computing(_round_with(10, "half-up"),
                      "right except on exact halfway points: there round to the neighbour whose last kept bit is 0 "
                      "(round half to even), which does not bias sums",
                      "add 0xFFF plus the lowest kept bit ((bits >> 13) & 1), then clear the 13 low bits"),
    Mistake.computing(_round_with(7), "you keep 7 mantissa bits: that is bfloat16; TF32 keeps 10"),
    Mistake.computing(lambda x: x.astype(np.float16).astype(np.float32),
                      "float16 keeps 10 mantissa bits too, but only 5 exponent bits: TF32 keeps float32's 8, so "
                      "small weights do not underflow", "work on the float32 bit pattern: x.view(np.uint32)"),
)


def check_round_to_tf32(round_to_tf32):
    """Compare ``round_to_tf32(x) -> float32 array`` (each float32 rounded to a 10-bit mantissa, to nearest,
    ties to even) with the library's host emulation, ``round_like_tensor_cores(x, "tf32")``."""
    return compare_with_library("round_to_tf32", round_to_tf32, _library_tf32, _cases(), MISTAKES,
                                ("float32 has 23 mantissa bits; TF32 keeps the top 10 of them",
                                 "view the array as np.uint32, round away the 13 low bits, view back as float32"),
                                rtol=0.0)


def _relative_spacing(precision):
    """The largest relative rounding error of ``precision`` measured on many float32 numbers (half its ulp)."""
    x = np.random.default_rng(19).uniform(1, 2, 200000).astype(np.float32)
    return float(np.max(np.abs(library.round_like_tensor_cores(x, precision).astype(np.float64) - x) / x))


def _cupy_overrides():
    return len(library.cupy_overrides())


QUESTIONS = {
    "tf32_rounding_error": Question(
        "TF32 keeps 10 mantissa bits: what is the largest relative error of rounding a float32 number to TF32? "
        "(answer as a power of two, e.g. 2 ** -12)", lambda: _relative_spacing("tf32"), tolerance=0.01,
        hints=("the spacing of 10-bit mantissas just above 1 is 2^-10; rounding to nearest errs by at most half of "
               "it, relative to a number at least 1",)),
    "bf16_over_tf32": Question(
        "How many times larger is bfloat16's largest relative rounding error than TF32's?",
        lambda: _relative_spacing("bf16") / _relative_spacing("tf32"), tolerance=0.01,
        hints=("bfloat16 keeps 7 mantissa bits, TF32 10",)),
    "cupy_overrides": Question(
        "How many of the reference ops does the CuPy backend compute its own way (its OVERRIDES)?", _cupy_overrides,
        hints=("lesson 8's first cell prints them",)),
}


def check_answers(**answers):
    """Check the pen-and-paper answers (keywords as in ``QUESTIONS``; ``None`` = not answered yet)."""
    return _check_answers(QUESTIONS, answers)
