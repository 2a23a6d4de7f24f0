"""The reference ops' contract beyond their maths, which the gradient checks cannot see: each keeps its input's
dtype, their defaults are the ones documented, and the soft-max stays exact where ``exp`` would overflow.
(Found by mutation testing: a float32 input turned into float64 columns, a default stride of 2 and a backward
that skips the data gradient by default all passed every gradient check. benchmarks/RESULTS.md.)"""
import math

import numpy as np
import pytest

from minivgg.backends.reference import conv, loops, loss
from minivgg.gradcheck import relative_error


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_convolution_keeps_its_input_s_dtype_forward_and_backward(rng, dtype):
    x, W, b = (rng.standard_normal(shape).astype(dtype) for shape in ((2, 3, 6, 5), (4, 3, 3, 3), (4,)))
    cols = conv.im2col(x, 3, 3, 1, 1)
    assert cols.dtype == dtype
    assert conv.col2im(cols, x.shape, 3, 3, 1, 1).dtype == dtype
    out, cache = conv.conv2d_forward(x, W, b, 1, 1)
    dx, dW, db = conv.conv2d_backward(rng.standard_normal(out.shape).astype(dtype), cache)
    assert [a.dtype for a in (out, dx, dW, db)] == [dtype] * 4


def test_the_convolution_s_defaults_are_stride_1_no_padding_and_the_data_gradient(rng):
    x, W, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = conv.conv2d_forward(x, W, b)
    assert out.shape == (2, 4, 5, 4)
    expected = loops.conv2d_forward_loops(x, W, b, 1, 0)
    assert relative_error(out, expected) < 1e-12
    dout = rng.standard_normal(out.shape)
    dx, dW, db = conv.conv2d_backward(dout, cache)
    assert dx is not None and dx.shape == x.shape
    given = conv.conv2d_backward(dout, cache, input_gradient=True)
    assert all(relative_error(a, c) == 0 for a, c in zip((dx, dW, db), given))
    assert conv.conv2d_backward(dout, cache, input_gradient=False)[0] is None


def test_softmax_is_its_definition_and_stays_exact_for_huge_scores(rng):
    scores = rng.standard_normal((4, 7)) * 3
    expected = np.array([[math.exp(s) / sum(math.exp(t) for t in row) for s in row] for row in scores])
    probabilities = loss.softmax(scores)
    assert relative_error(probabilities, expected) < 1e-14
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-14)
    # exp(1000) overflows; subtracting each row's maximum keeps the answer exact.
    shifted = loss.softmax(scores + 1000.0)
    assert relative_error(shifted, expected) < 1e-12
    assert loss.softmax(scores.astype(np.float32)).dtype == np.float32
    # Over the last axis, whatever the array's rank (a (N, K) batch, or one more axis in front).
    stacked = loss.softmax(np.stack([scores, scores[::-1]]))
    assert relative_error(stacked, np.stack([expected, expected[::-1]])) < 1e-14


def test_a_gradient_that_is_not_finite_or_missing_is_as_wrong_as_can_be():
    assert relative_error([1.0, 2.0], [1.0, 2.0]) == 0
    for analytic, numeric in (([1.0, float("nan")], [1.0, 2.0]), (None, [1.0, 2.0]), ([1.0, 2.0], [float("inf"), 2.0])):
        assert relative_error(analytic, numeric) == float("inf")
