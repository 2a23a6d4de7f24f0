"""Lesson 2's exercises: col2im, max-pooling's backward, LRN's backward, and questions on gradient checking.

Each backward is compared with the library's on random inputs (several shapes, strides, float32 and float64,
ties included for max-pooling) and then checked against central differences of the library's forward in
float64 (``minivgg.gradcheck``)::

    from minivgg.exercises import backpropagation
    backpropagation.check_col2im(col2im)                       # col2im(dcols, x_shape, kh, kw, stride, padding)
    backpropagation.check_max_pool_backward(max_pool_backward) # max_pool_backward(dout, x, kernel_size, stride)
    backpropagation.check_lrn_backward(lrn_backward)           # lrn_backward(dout, x, size, alpha, beta, k)
"""
import numpy as np

from ..gradcheck import numerical_gradient
from ..backends.shapes import output_size
from . import library
from .checking import (Case, Mistake, Question, both, check_answers as _check_answers, check_gradient,
                       compare_with_library)

__all__ = ["check_col2im", "check_max_pool_backward", "check_lrn_backward", "QUESTIONS", "check_answers"]


# ---- col2im -------------------------------------------------------------------------------------------------

def _col2im_cases():
    rng = np.random.default_rng(3)
    cases = []
    for shape, kernel, stride, padding, dtype in [
            ((2, 3, 5, 6), 3, 1, 1, np.float64), ((1, 2, 7, 7), 3, 2, 1, np.float32),
            ((1, 2, 6, 6), 3, 2, 0, np.float64), ((2, 2, 4, 4), 2, 2, 0, np.float64),
            ((1, 2, 6, 5), 5, 1, 2, np.float64)]:
        out_h, out_w = output_size(shape[2], kernel, stride, padding), output_size(shape[3], kernel, stride, padding)
        rows = shape[0] * out_h * out_w
        dcols = rng.normal(0, 1, (rows, shape[1] * kernel * kernel)).astype(dtype)
        cases.append(Case(f"x_shape {shape}, {kernel}x{kernel} windows, stride {stride}, padding {padding}, "
                          f"{np.dtype(dtype).name}", (dcols, shape, kernel, kernel, stride, padding)))
    return cases


def _col2im_assigning(dcols, x_shape, kh, kw, stride, padding):
    """Each window's gradient written over the previous ones instead of added to them."""
    n, c, h, w = x_shape
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    dx = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=dcols.dtype)
    rows = dcols.reshape(n, out_h, out_w, c, kh, kw)
    for image in range(n):
        for y in range(out_h):
            for x in range(out_w):
                dx[image, :, y * stride:y * stride + kh, x * stride:x * stride + kw] = rows[image, y, x]
    return dx[:, :, padding:padding + h, padding:padding + w]


def _col2im_reading_i_j_c(dcols, x_shape, kh, kw, stride, padding):
    rows = dcols.reshape(len(dcols), kh * kw, x_shape[1]).transpose(0, 2, 1).reshape(len(dcols), -1)
    return library.col2im(np.ascontiguousarray(rows), x_shape, kh, kw, stride, padding)


def _padding_kept(case, got, want):
    _, x_shape, _, _, _, padding = case.arguments
    return padding > 0 and np.shape(got)[2:] == (x_shape[2] + 2 * padding, x_shape[3] + 2 * padding)


COL2IM_MISTAKES = (
    Mistake(("you return the padded array: drop the p rows and columns of padding on each side (their gradient "
             "goes nowhere)",), _padding_kept),
    Mistake.computing(_col2im_assigning,
                      "right where windows do not overlap, wrong where they do: a pixel in several windows must "
                      "receive the sum of their gradients",
                      "add (+=) each window's gradient onto the padded array; do not assign (=)"),
    Mistake.computing(_col2im_reading_i_j_c,
                      "you read each row in (i, j, c) order; im2col wrote it in (c, i, j): a transposed reshape",
                      "reshape row m as (C, kh, kw), the order of W[f].reshape(-1)"),
)


def check_col2im(col2im):
    """Compare ``col2im(dcols, x_shape, kh, kw, stride, padding) -> dx`` with the library's, then check that it
    is the adjoint of im2col: the gradient of ``sum(im2col(x) * dcols)`` with respect to x."""
    exercise = "col2im"
    compared = compare_with_library(exercise, col2im, library.col2im, _col2im_cases(), COL2IM_MISTAKES,
                                    ("col2im adds every row of dcols back onto the pixels im2col copied it from",
                                     "loop over the rows (n, y, x); reshape the row as (C, kh, kw) and add it to "
                                     "dx_pad[n, :, y*s : y*s + kh, x*s : x*s + kw]; finally drop the padding"))
    rng = np.random.default_rng(4)
    cases = [Case(f"x {shape}, {k}x{k}, stride {s}, padding {p}", (rng.normal(0, 1, shape), k, k, s, p))
             for shape, k, s, p in [((1, 2, 5, 5), 3, 1, 1), ((1, 2, 5, 6), 3, 2, 1)]]
    def as_gradient(dout, x, kh, kw, stride, padding):
        return col2im(dout, x.shape, kh, kw, stride, padding)

    return both(compared, lambda: check_gradient(exercise, as_gradient, library.im2col, cases))


# ---- max-pooling's backward -----------------------------------------------------------------------------------

def _library_max_pool_backward(dout, x, kernel_size, stride):
    return library.max_pool2d_backward(dout, library.max_pool2d_forward(x, kernel_size, stride)[1])


def _distinct(rng, shape):
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 10.0


def _max_pool_cases():
    rng = np.random.default_rng(5)
    cases = []
    for shape, kernel, stride, values, dtype in [
            ((2, 3, 4, 4), 2, 2, "distinct", np.float64), ((1, 2, 7, 7), 3, 2, "distinct", np.float64),
            ((1, 2, 7, 6), 2, 2, "distinct", np.float32), ((2, 2, 6, 6), 2, 2, "ties", np.float64),
            ((1, 3, 7, 7), 3, 2, "ties", np.float32)]:
        # Ties as a ReLU makes them (windows of zeros) and as integer pixels make them.
        x = _distinct(rng, shape) if values == "distinct" else np.maximum(rng.integers(-3, 3, shape), 0)
        out_shape = (shape[0], shape[1], output_size(shape[2], kernel, stride, 0),
                     output_size(shape[3], kernel, stride, 0))
        dout = rng.normal(0, 1, out_shape)
        cases.append(Case(f"x {shape} {np.dtype(dtype).name} ({values} values), {kernel}x{kernel} windows, "
                          f"stride {stride}", (dout.astype(dtype), x.astype(dtype), kernel, stride)))
    return cases


def _max_pool_backward_by(choose):
    """A max-pool backward that sends each window's gradient to the inputs ``choose(window)`` marks."""
    def backward(dout, x, kernel_size, stride):
        dx = np.zeros_like(x)
        for image, channel, y, column in np.ndindex(*dout.shape):
            rows = slice(y * stride, y * stride + kernel_size)
            cols = slice(column * stride, column * stride + kernel_size)
            dx[image, channel, rows, cols] += choose(x[image, channel, rows, cols]) * dout[image, channel, y, column]
        return dx
    return backward


def _last_maximum(window):
    mask = np.zeros(window.shape, bool)
    flat = window.reshape(-1)
    mask.reshape(-1)[len(flat) - 1 - int(np.argmax(flat[::-1]))] = True
    return mask


def _every_maximum(window):
    return window == window.max()


def _assigning(dout, x, kernel_size, stride):
    dx = np.zeros_like(x)
    for image, channel, y, column in np.ndindex(*dout.shape):
        window = x[image, channel, y * stride:y * stride + kernel_size, column * stride:column * stride + kernel_size]
        i, j = divmod(int(np.argmax(window)), kernel_size)
        dx[image, channel, y * stride + i, column * stride + j] = dout[image, channel, y, column]
    return dx


MAX_POOL_MISTAKES = (
    Mistake.computing(_max_pool_backward_by(_last_maximum),
                      "right except on windows with a tie: there your gradient goes to the last maximum; the "
                      "library, as Caffe, gives all of it to the first maximum in row-major order",
                      "np.argmax(window) (of the flattened window) returns the first maximum; divmod(index, k) "
                      "gives its (i, j)"),
    Mistake.computing(_max_pool_backward_by(_every_maximum),
                      "right except on windows with a tie: you send the gradient to every maximum of the window; "
                      "the output took one value, so one input gets its gradient: the first maximum, row-major",
                      "use np.argmax (the first maximum) instead of the mask window == window.max()"),
    Mistake.computing(_assigning,
                      "right for 2x2 windows with stride 2, wrong for overlapping 3x3 windows with stride 2: a pixel "
                      "that wins two windows must receive both gradients",
                      "add (+=) into dx instead of assigning"),
)


def check_max_pool_backward(max_pool_backward):
    """Compare ``max_pool_backward(dout, x, kernel_size, stride) -> dx`` with the library's (ties included),
    then with central differences of the forward on inputs without ties."""
    exercise = "max_pool_backward"
    compared = compare_with_library(exercise, max_pool_backward, _library_max_pool_backward, _max_pool_cases(),
                                    MAX_POOL_MISTAKES,
                                    ("each output's gradient goes to the one input of its window that won the max",
                                     "for output (n, c, y, x), find (i, j) of the maximum of x[n, c, y*s : y*s + k, "
                                     "x*s : x*s + k] and add dout[n, c, y, x] to dx[n, c, y*s + i, x*s + j]"))
    rng = np.random.default_rng(6)
    cases = [Case(f"x {shape}, {k}x{k}, stride {s}", (_distinct(rng, shape), k, s))
             for shape, k, s in [((1, 2, 4, 4), 2, 2), ((1, 2, 5, 5), 3, 2)]]
    return both(compared, lambda: check_gradient(exercise, max_pool_backward, library.max_pool2d_forward_loops, cases))


# ---- LRN's backward -----------------------------------------------------------------------------------------

def _library_lrn_backward(dout, x, size, alpha, beta, k):
    return library.lrn_backward(dout, library.lrn_forward(x, size, alpha, beta, k)[1])


def _lrn_cases():
    rng = np.random.default_rng(7)
    cases = []
    # The paper's parameters on activations of the size conv1 gives (tens), and an even window on small ones.
    for shape, size, alpha, beta, k, spread, dtype in [((2, 7, 3, 3), 5, 1e-4, 0.75, 2.0, 60.0, np.float64),
                                                       ((1, 6, 2, 3), 4, 0.5, 0.75, 1.0, 1.0, np.float64),
                                                       ((2, 8, 2, 2), 5, 1e-4, 0.75, 2.0, 60.0, np.float32)]:
        x, dout = rng.normal(0, spread, shape), rng.normal(0, 1, shape)
        cases.append(Case(f"x {shape} {np.dtype(dtype).name}, size {size}, alpha {alpha}, beta {beta}, k {k}",
                          (dout.astype(dtype), x.astype(dtype), size, alpha, beta, k)))
    return cases


def _lrn_window(channel, channels, size):
    return range(max(0, channel - (size - 1) // 2), min(channels, channel + size // 2 + 1))


def _lrn_backward_variant(cross=True, factor=2.0, window_of_j=False):
    """The LRN backward with one slip: no cross-channel term, another factor than 2, or the sum taken over
    window(j) instead of the channels c whose window holds j."""
    def backward(dout, x, size, alpha, beta, k):
        channels = x.shape[1]
        scale = np.stack([k + alpha * sum(x[:, d] ** 2 for d in _lrn_window(c, channels, size))
                          for c in range(channels)], axis=1)
        dx = dout * scale ** -beta
        if not cross:
            return dx
        for j in range(channels):
            feeds = (_lrn_window(j, channels, size) if window_of_j
                     else [c for c in range(channels) if j in _lrn_window(c, channels, size)])
            for c in feeds:
                dx[:, j] -= dout[:, c] * factor * alpha * beta * x[:, c] * x[:, j] * scale[:, c] ** (-beta - 1)
        return dx
    return backward


LRN_MISTAKES = (
    Mistake.computing(_lrn_backward_variant(cross=False),
                      "you have the direct term dout[j] * s[j]^-beta only: x[j] also enters the scale s[c] of "
                      "every channel c whose window holds j",
                      "add -2 alpha beta x[j] * sum over those c of dout[c] * y[c] / s[c]"),
    Mistake.computing(_lrn_backward_variant(factor=1.0),
                      "the cross-channel term is half what it should be: d(x^2)/dx = 2x"),
    Mistake.computing(_lrn_backward_variant(window_of_j=True),
                      "right for odd window sizes, wrong for even ones: x[j] feeds the channels c whose window holds "
                      "j, which is not window(j) when the window is not symmetric",
                      "window(c) runs from c - (size - 1) // 2 to c + size // 2; loop over c and add to every j in it"),
)


def check_lrn_backward(lrn_backward):
    """Compare ``lrn_backward(dout, x, size, alpha, beta, k) -> dx`` with the library's, then with central
    differences of the forward. ``alpha`` multiplies the window's sum of squares as it is (the AlexNet
    paper's formula, the library's default): ``s[c] = k + alpha * sum_{c' in window(c)} x[c']^2``,
    ``y[c] = x[c] * s[c]^-beta``."""
    exercise = "lrn_backward"
    compared = compare_with_library(exercise, lrn_backward, _library_lrn_backward, _lrn_cases(), LRN_MISTAKES,
                                    ("write y[c] = x[c] s[c]^-beta and differentiate: x[j] enters y[j] directly and "
                                     "s[c] for every c whose window holds j",
                                     "dx[j] = dout[j] s[j]^-beta - 2 alpha beta x[j] sum over those c of "
                                     "dout[c] x[c] s[c]^(-beta - 1)"))
    rng = np.random.default_rng(8)
    cases = [Case(f"x (1, {c}, 2, 2), size {size}", (rng.normal(0, 1, (1, c, 2, 2)), size, 0.5, 0.75, 1.0))
             for c, size in [(5, 3), (6, 4)]]
    return both(compared, lambda: check_gradient(exercise, lrn_backward, library.lrn_forward_loops, cases))


# ---- questions ------------------------------------------------------------------------------------------------

def _forward_passes():
    calls = []
    weights = np.zeros((4, 3, 3, 3))
    numerical_gradient(lambda: calls.append(1) or 0.0, weights)
    return len(calls)


def _truncation_order():
    """The slope of log error against log h for central differences of LRN, where truncation dominates."""
    rng = np.random.default_rng(9)
    x, dout = rng.normal(0, 1, (1, 5, 2, 2)), rng.normal(0, 1, (1, 5, 2, 2))
    exact = library.lrn_backward_loops(dout, x, 3, 0.5, 0.75, 1.0)
    steps = np.array([1e-1, 3e-2, 1e-2])
    errors = [np.linalg.norm(numerical_gradient(lambda: float(np.sum(library.lrn_forward_loops(x, 3, 0.5, 0.75, 1.0)
                                                                     * dout)), x, h) - exact) for h in steps]
    return round(float(np.polyfit(np.log(steps), np.log(errors), 1)[0]))


def _share_receiving_gradient():
    x = _distinct(np.random.default_rng(10), (1, 2, 8, 8))
    dx = _library_max_pool_backward(np.ones((1, 2, 4, 4)), x, 2, 2)
    return float(np.mean(dx != 0))


def _windows_per_pixel():
    hits = library.col2im(library.im2col(np.ones((1, 1, 6, 6)), 3, 3, 1, 1), (1, 1, 6, 6), 3, 3, 1, 1)[0, 0]
    return int(hits[3, 3]), int(hits[0, 0])


QUESTIONS = {
    "forward_passes": Question(
        "numerical_gradient on a conv layer's weights of shape (4, 3, 3, 3): how many times does it evaluate the "
        "objective?", _forward_passes,
        hints=("central differences evaluate f twice per number: at a + h and at a - h",),
        mistakes=((lambda: _forward_passes() // 2, ("twice per number: a + h and a - h",)),)),
    "truncation_order": Question(
        "The truncation error of central differences shrinks like h to which power?", _truncation_order,
        hints=("expand f(a + h) and f(a - h) in Taylor series: the h^2 terms cancel in the difference, the h^3 "
               "terms do not; divide by 2h",),
        mistakes=((lambda: 1, ("that is the one-sided difference (f(a + h) - f(a)) / h; the central one is "
                               "more accurate",)),)),
    "max_pool_share": Question(
        "2x2 max-pooling with stride 2 on an input without ties: what fraction of the input pixels get a non-zero "
        "gradient?", _share_receiving_gradient, tolerance=1e-9,
        hints=("each window of 4 pixels passes its gradient to one of them",)),
    "windows_per_pixel": Question(
        "A 3x3 convolution, stride 1, padding 1, on a 6x6 image: col2im of an all-ones im2col matrix gives, at an "
        "interior pixel and at a corner, what? Answer (interior, corner).", _windows_per_pixel,
        hints=("count the 3x3 windows (centred on every output pixel) that contain the pixel",)),
}


def check_answers(**answers):
    """Check the pen-and-paper answers (keywords as in ``QUESTIONS``; ``None`` = not answered yet)."""
    return _check_answers(QUESTIONS, answers)
