"""Lesson 8b's exercises: the index maths of the Numba backend's implicit-GEMM convolution, and questions on
its tiles.

::

    from minivgg.exercises import gpu_kernels
    gpu_kernels.check_input_pixel_read_by(input_pixel_read_by)   # (y, x, i, j, stride, padding, height, width)
    gpu_kernels.check_output_pixel_fed_by(output_pixel_fed_by)   # the same arguments, for the data gradient

Both return ``(row, column, inside)``; where ``inside`` is False the row and column are not compared.
"""
import itertools

import numpy as np

from . import library
from .checking import Case, Mistake, Question, check_answers as _check_answers, compare_with_library

__all__ = ["check_input_pixel_read_by", "check_output_pixel_fed_by", "QUESTIONS", "check_answers"]

# (stride, padding, kernel, height, width) of the layers whose index maths the cases walk: VGG's 3x3, a stride-2
# layer, 1x1 (configuration C) and the shallow net's 5x5.
LAYERS = ((1, 1, 3, 5, 6), (2, 1, 3, 7, 6), (1, 0, 1, 4, 4), (1, 2, 5, 6, 5), (2, 0, 3, 7, 7))


def _table(function, forward):
    """Every (y, x, i, j) of every layer in ``LAYERS`` through ``function``: rows (inside, row, column), the
    row and column set to -1 where the pixel is outside."""
    rows = []
    for stride, padding, kernel, height, width in LAYERS:
        out_h, out_w = (height + 2 * padding - kernel) // stride + 1, (width + 2 * padding - kernel) // stride + 1
        ys, xs = (range(out_h), range(out_w)) if forward else (range(height), range(width))
        bound_h, bound_w = (height, width) if forward else (out_h, out_w)
        for y, x, i, j in itertools.product(ys, xs, range(kernel), range(kernel)):
            row, column, inside = function(y, x, i, j, stride, padding, bound_h, bound_w)
            rows.append((bool(inside), row if inside else -1, column if inside else -1))
    return np.array(rows, dtype=np.int64)


def _case(forward):
    what = "output pixel, tap" if forward else "input pixel, tap"
    return [Case(f"every ({what}) of 3x3/1/1, 3x3/2/1, 1x1/1/0, 5x5/1/2 and 3x3/2/0 layers", (forward,))]


def _read_without_padding(y, x, i, j, stride, padding, height, width):
    row, column = y * stride + i, x * stride + j
    return row, column, 0 <= row < height and 0 <= column < width


def _read_without_stride(y, x, i, j, stride, padding, height, width):
    row, column = y - padding + i, x - padding + j
    return row, column, 0 <= row < height and 0 <= column < width


def _read_no_bounds(y, x, i, j, stride, padding, height, width):
    return y * stride - padding + i, x * stride - padding + j, True


def _fed_without_divisibility(y, x, i, j, stride, padding, height, width):
    row, column = (y + padding - i) // stride, (x + padding - j) // stride
    return row, column, y + padding - i >= 0 and x + padding - j >= 0 and row < height and column < width


def _fed_without_upper_bound(y, x, i, j, stride, padding, height, width):
    fed = library.kernel_index_maths()[1]
    return fed(y, x, i, j, stride, padding, 10 ** 6, 10 ** 6)  # an output so large that every row is inside


def _fed_plus(y, x, i, j, stride, padding, height, width):
    row, column = y - padding + i, x - padding + j
    if row < 0 or column < 0 or row % stride or column % stride:
        return row, column, False
    return row // stride, column // stride, row // stride < height and column // stride < width


def _as_table(function):
    """``function`` as a function of the case's one argument, ``forward``: its whole table."""
    return lambda forward: _table(function, forward)


READ_MISTAKES = (
    Mistake.computing(_as_table(_read_without_padding),
                      "every pixel you read is shifted by the padding: row y*s + i is a row of the padded input, "
                      "which the kernel never builds; subtract p", "row = y * stride - padding + i"),
    Mistake.computing(_as_table(_read_without_stride),
                      "right for stride 1, wrong for stride 2: output pixel y's window starts at input row y * s - p"),
    Mistake.computing(_as_table(_read_no_bounds),
                      "the right pixels, but `inside` is always True: a row or column outside [0, height) or [0, "
                      "width) is the zero padding, and the kernel must load a 0 there"),
)

FED_MISTAKES = (
    Mistake.computing(_as_table(_fed_without_divisibility),
                      "right for stride 1, wrong for stride 2: an input row y was read through tap i only if "
                      "y + p - i is a multiple of the stride", "return inside=False when (y + p - i) % stride != 0"),
    Mistake.computing(_as_table(_fed_without_upper_bound),
                      "some pixels feed outputs that do not exist: check the output row and column against the "
                      "output's height and width"),
    Mistake.computing(_as_table(_fed_plus),
                      "you ran the forward mapping backwards with the wrong signs: input y was read by output "
                      "(y + p - i) / s, since the forward read y = out * s - p + i"),
)


def check_input_pixel_read_by(input_pixel_read_by):
    """Compare ``input_pixel_read_by(y, x, i, j, stride, padding, height, width) -> (row, column, inside)``
    (the input pixel output pixel (y, x) reads through tap (i, j); ``height, width`` the input's) with the Numba
    backend's, on every output pixel and tap of five layers."""
    return compare_with_library("input_pixel_read_by", _as_table(input_pixel_read_by),
                                _as_table(library.kernel_index_maths()[0]), _case(True), READ_MISTAKES,
                                ("output (y, x) reads the window whose top-left corner is (y * s - p, x * s - p) in "
                                 "the unpadded input; tap (i, j) is i rows and j columns into it",))


def check_output_pixel_fed_by(output_pixel_fed_by):
    """Compare ``output_pixel_fed_by(y, x, i, j, stride, padding, height, width) -> (row, column, inside)``
    (the output pixel that input pixel (y, x) fed through tap (i, j); ``height, width`` the output's) with the
    Numba backend's, on every input pixel and tap of five layers."""
    return compare_with_library("output_pixel_fed_by", _as_table(output_pixel_fed_by),
                                _as_table(library.kernel_index_maths()[1]), _case(False), FED_MISTAKES,
                                ("invert the forward mapping y = out * s - p + i for out, and keep only whole "
                                 "numbers inside the output",))


def _tilings():
    return library.gpu_tilings()


def _reuse_of_widest():
    rows, cols, depth, _, _ = next(tiling for tiling in _tilings() if tiling.rows == tiling.cols == 128)
    return rows * cols * depth / ((rows + cols) * depth)


def _steps(channels=64, depth=None):
    depth = depth or _tilings()[0].depth
    return 9 * -(-channels // depth)


QUESTIONS = {
    "reuse_of_widest_tile": Question(
        "The Numba backend's 128 x 128 GPU tile (depth 8): how many multiply-adds does a block do per number it "
        "loads from global memory?", _reuse_of_widest, tolerance=1e-9,
        hints=("per step it loads (rows + cols) x depth numbers and does rows x cols x depth multiply-adds",)),
    "reduction_steps": Question(
        "A 3x3 convolution with 64 input channels and a tile depth of 8: how many steps does a block take along the "
        "reduction?", _steps, hints=("9 taps, and ceil(64 / 8) channel steps at each",)),
}


def check_answers(**answers):
    """Check the pen-and-paper answers (keywords as in ``QUESTIONS``; ``None`` = not answered yet)."""
    return _check_answers(QUESTIONS, answers)
