"""Lesson 1's exercises: the convolution by its definition, im2col, and questions on shapes and costs.

Write ``conv_forward_naive(x, W, b, stride, padding)`` (nested loops over images, filters and output pixels)
and ``im2col(x, kh, kw, stride, padding)``, then check them::

    from minivgg.exercises import convolution
    convolution.check_conv_forward(conv_forward_naive)
    convolution.check_im2col(im2col)
    convolution.check_answers(output_side=..., im2col_shape=..., dot_products=..., im2col_growth=...)
"""
import numpy as np

from ..backends.shapes import output_size
from . import library
from .checking import Case, Mistake, Question, check_answers as _check_answers, compare_with_library
from .configurations import summary_row

__all__ = ["check_conv_forward", "check_im2col", "QUESTIONS", "check_answers"]


def _conv_cases():
    """Realistic inputs: pixels minus the mean with N(0, 0.01^2) weights (conv1_1 of a fresh net), and
    activations near 1 with He-sized weights; the paper's 3x3/1/1, C's 1x1, the shallow net's 5x5, FC1 as a
    7x7 convolution, and stride 2 with an input the windows do not tile."""
    rng = np.random.default_rng(1)
    cases = []
    for shape, filters, kernel, stride, padding, dtype, pixels in [
            ((2, 3, 8, 8), 4, 3, 1, 1, np.float32, True), ((1, 4, 7, 6), 3, 3, 2, 1, np.float64, False),
            ((2, 5, 5, 5), 3, 1, 1, 0, np.float64, False), ((1, 3, 9, 9), 2, 5, 1, 2, np.float32, False),
            ((1, 2, 7, 7), 3, 7, 1, 0, np.float64, False), ((1, 2, 7, 8), 2, 3, 2, 0, np.float64, False)]:
        x = rng.normal(0, 60 if pixels else 1, shape)
        std = 0.01 if pixels else np.sqrt(2 / (shape[1] * kernel ** 2))
        W = rng.normal(0, std, (filters, shape[1], kernel, kernel))
        b = rng.normal(0, 0.1, filters)
        description = (f"x {shape} {np.dtype(dtype).name}, {filters} filters {kernel}x{kernel}, stride {stride}, "
                       f"padding {padding}")
        cases.append(Case(description, (x.astype(dtype), W.astype(dtype), b.astype(dtype), stride, padding)))
    return cases


def _shifted_by_one_pixel(case, got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape or min(want.shape[2:]) < 3:
        return False
    for axis in (2, 3):
        for shift in (1, -1):
            a = np.take(got, range(max(0, shift), want.shape[axis] + min(0, shift)), axis=axis)
            b = np.take(want, range(max(0, -shift), want.shape[axis] + min(0, -shift)), axis=axis)
            if np.linalg.norm(a - b) <= 1e-4 * np.linalg.norm(b):
                return True
    return False


def _unpadded(case, got, want):
    x, W, _, stride, padding = case.arguments
    return padding > 0 and np.shape(got)[2:] == (output_size(x.shape[2], W.shape[2], stride, 0),
                                                  output_size(x.shape[3], W.shape[3], stride, 0))


def _wrong_dtype(case, got, want):
    return np.shape(got) == np.shape(want) and np.asarray(got).dtype != np.asarray(want).dtype


def _window_at_y_not_ys(x, W, b, stride, padding):
    """A window that starts at (y, x) instead of (y*s, x*s): stride 1, then the first Ho x Wo outputs."""
    out = library.conv2d_forward_loops(x, W, b, 1, padding)
    return out[:, :, :output_size(x.shape[2], W.shape[2], stride, padding),
               :output_size(x.shape[3], W.shape[3], stride, padding)]


CONV_HINTS = ("your output differs from the library's: compare one output pixel by hand with the formula "
              "out[n, f, y, x] = b[f] + sum over c, i, j of W[f, c, i, j] * x_pad[n, c, y*s + i, x*s + j]",
              "loop over n, f, y, x; take the window x_pad[n, :, y*s : y*s + k, x*s : x*s + k] of the padded "
              "input; multiply it element by element with W[f], sum, add b[f]")

CONV_MISTAKES = (
    Mistake(("your output has the size of an unpadded convolution: pad the input with p zeros on every side "
             "first", "np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))), then slide the windows over the padded array"),
            _unpadded),
    Mistake(("your output is shifted by one pixel: check the padding (the window of output (y, x) starts at "
             "row y*s of the padded input, that is y*s - p of the original)",
             "with padding p, pad once and index the padded array from 0; do not subtract or add p again"),
            _shifted_by_one_pixel),
    Mistake.computing(lambda x, W, b, s, p: library.conv2d_forward_loops(x, W[:, :, ::-1, ::-1], b, s, p),
                      "you flipped the kernel: that is the convolution of signal processing, but a CNN layer "
                      "(Caffe, PyTorch, minivgg) computes the cross-correlation",
                      "use W[f, c, i, j] with x_pad[..., y*s + i, x*s + j], not W[f, c, k-1-i, k-1-j]"),
    Mistake.computing(lambda x, W, b, s, p: library.conv2d_forward_loops(x, W, np.zeros_like(b), s, p),
                      "every output of filter f is off by the same number: add the bias b[f]"),
    Mistake.computing(_window_at_y_not_ys,
                      "right with stride 1, wrong with stride 2: the window of output (y, x) starts at (y*s, x*s)"),
    Mistake(("your output is not of the input's dtype: create it with np.zeros(..., dtype=x.dtype)",
             "float32 in, float32 out: the layers keep the dtype (half the memory and twice the speed of float64)"),
            _wrong_dtype),
)


def check_conv_forward(conv_forward_naive):
    """Compare ``conv_forward_naive(x, W, b, stride, padding) -> out`` with the library's loops on six cases.

    Returns a ``Verdict`` (printed in a notebook): passed, failed with graded hints, or not attempted yet.
    """
    return compare_with_library("conv_forward_naive", conv_forward_naive, library.conv2d_forward_loops,
                                _conv_cases(), CONV_MISTAKES, CONV_HINTS)


def _im2col_cases():
    rng = np.random.default_rng(2)
    cases = []
    for shape, kernel, stride, padding, dtype in [
            ((2, 3, 5, 6), 3, 1, 1, np.float64), ((1, 2, 7, 7), 3, 2, 1, np.float32),
            ((2, 4, 3, 3), 1, 1, 0, np.float64), ((1, 2, 6, 5), 5, 1, 2, np.float64)]:
        x = rng.normal(0, 1, shape).astype(dtype)
        cases.append(Case(f"x {shape} {np.dtype(dtype).name}, {kernel}x{kernel} windows, stride {stride}, "
                          f"padding {padding}", (x, kernel, kernel, stride, padding)))
    return cases


def _columns_i_j_c(x, kh, kw, stride, padding):
    cols = library.im2col(x, kh, kw, stride, padding)
    return cols.reshape(len(cols), x.shape[1], kh * kw).transpose(0, 2, 1).reshape(len(cols), -1)


def _rows_permuted(case, got, want):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    return np.array_equal(np.sort(got.round(6), axis=0), np.sort(want.round(6), axis=0))


def _transposed(case, got, want):
    return np.shape(got) == np.shape(want)[::-1] and np.shape(got) != np.shape(want)


IM2COL_MISTAKES = (
    Mistake.computing(_columns_i_j_c,
                      "your columns hold the right numbers in another order: (i, j, c) where the library has "
                      "(c, i, j), a transposed reshape",
                      "the columns must follow W[f].reshape(-1), whose order is (c, i, j): channel first, then "
                      "kernel row, then kernel column; reshape the window (C, kh, kw) as it is, without moving "
                      "the channel axis"),
    Mistake(("you return the transpose: one row per output pixel, one column per (c, i, j)",), _transposed),
    Mistake(("your rows are the right windows in the wrong order: row (n * Ho + y) * Wo + x is output pixel "
             "(n, y, x)", "loop (or reshape) with n outermost, then y, then x"), _rows_permuted),
)

IM2COL_HINTS = ("compare your first row with the padded input's top-left window: "
                "np.pad(x, ...)[0, :, 0:kh, 0:kw].reshape(-1)",
                "row (n * Ho + y) * Wo + x is x_pad[n, :, y*s : y*s + kh, x*s : x*s + kw] flattened; there are "
                "N * Ho * Wo rows of C * kh * kw numbers")


def check_im2col(im2col):
    """Compare ``im2col(x, kh, kw, stride, padding) -> (N*Ho*Wo, C*kh*kw)`` with the library's on four cases."""
    return compare_with_library("im2col", im2col, library.im2col, _im2col_cases(), IM2COL_MISTAKES, IM2COL_HINTS)


def _conv3_1():
    row = summary_row("D", "conv3_1")
    return row.output_shape[0], row.parameters // row.output_shape[0] - 1  # F, and C*k*k (weights per filter)


def _growth():
    x = np.zeros((1, 3, 32, 32))
    return library.im2col(x, 3, 3, 1, 1).size / x.size


QUESTIONS = {
    "output_side": Question(
        "A 7x7 convolution with stride 2 and padding 3 (the first layer of later nets) on a 224x224 image: how "
        "many pixels wide is its output?", lambda: output_size(224, 7, 2, 3),
        hints=("use floor((H + 2p - k) / s) + 1",)),
    "im2col_shape": Question(
        "VGG-16's conv1_1 on one 224x224 RGB image: what is the (rows, columns) shape of its im2col matrix?",
        lambda: (summary_row("D", "conv1_1").output_shape[1] ** 2, 3 * 3 * 3),
        hints=("one row per output pixel, one column per number a filter multiplies",),
        mistakes=((lambda: (27, 224 * 224), ("that is its transpose: one row per output pixel",)),
                  (lambda: (224 * 224, 9), ("each filter also runs over the 3 colour channels",)))),
    "dot_products": Question(
        "Configuration D's conv3_1: per output pixel, how many dot products does it compute, and how long is "
        "each? Answer (how many, length).", _conv3_1,
        hints=("one dot product per filter; each runs over the whole C x k x k window",),
        mistakes=((lambda: _conv3_1()[::-1], ("swapped: F dot products, each of length C * k * k",)),
                  (lambda: (_conv3_1()[0], 9), ("a filter of conv3_1 covers every input channel, not only one",)))),
    "im2col_growth": Question(
        "A 3x3 convolution with stride 1 and padding 1: how many times more numbers does the im2col matrix hold "
        "than the input?", _growth,
        hints=("every input pixel is copied once for each window it falls in",)),
}


def check_answers(**answers):
    """Check the pen-and-paper answers (keywords as in ``QUESTIONS``; ``None`` = not answered yet)."""
    return _check_answers(QUESTIONS, answers)
