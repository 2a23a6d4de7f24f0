"""The fast forwards (im2col, offset loops) equal direct nested loops on tiny inputs."""
import numpy as np
import pytest

from minivgg.backends.numpy import conv2d_forward, lrn_forward, max_pool2d_forward
from minivgg.backends.reference.loops import conv2d_forward_loops, lrn_forward_loops, max_pool2d_forward_loops


@pytest.mark.parametrize("shape, w_shape, stride, padding", [
    ((2, 3, 5, 7), (4, 3, 3, 3), 1, 1), ((1, 2, 8, 7), (3, 2, 3, 3), 2, 1), ((2, 4, 3, 5), (2, 4, 1, 1), 1, 0),
    ((1, 2, 6, 6), (3, 2, 5, 5), 1, 2), ((2, 3, 7, 7), (2, 3, 7, 7), 1, 0), ((1, 1, 9, 10), (2, 1, 3, 3), 3, 0),
])
def test_conv_matches_loops(rng, shape, w_shape, stride, padding):
    x, W, b = rng.standard_normal(shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out, _ = conv2d_forward(x, W, b, stride, padding)
    np.testing.assert_allclose(out, conv2d_forward_loops(x, W, b, stride, padding), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, kernel, stride", [((2, 3, 4, 6), 2, 2), ((1, 2, 7, 5), 3, 2), ((1, 2, 5, 5), 2, 1)])
def test_max_pool_matches_loops(rng, shape, kernel, stride):
    x = rng.standard_normal(shape)
    out, _ = max_pool2d_forward(x, kernel, stride)
    np.testing.assert_array_equal(out, max_pool2d_forward_loops(x, kernel, stride))


@pytest.mark.parametrize("size, divided", [(5, False), (5, True), (3, False), (4, True)])
def test_lrn_matches_loops(rng, size, divided):
    x = rng.standard_normal((2, 7, 3, 4))
    out, _ = lrn_forward(x, size, 0.3, 0.75, 2.0, divided)
    np.testing.assert_allclose(out, lrn_forward_loops(x, size, 0.3, 0.75, 2.0, divided), rtol=1e-12)


def test_max_pool_tie_sends_gradient_to_first_maximum():
    from minivgg.backends.numpy import max_pool2d_backward
    x = np.ones((1, 1, 2, 2))
    out, cache = max_pool2d_forward(x, 2, 2)
    dx = max_pool2d_backward(np.full((1, 1, 1, 1), 5.0), cache)
    np.testing.assert_array_equal(dx[0, 0], [[5.0, 0.0], [0.0, 0.0]])


def test_lrn_default_is_the_alexnet_formula(rng):
    """alpha multiplies the sum itself unless alpha_divided_by_size (Caffe, PyTorch) is asked for."""
    x = rng.standard_normal((1, 5, 1, 1))
    alexnet, _ = lrn_forward(x, 5, 1e-4, 0.75, 2.0)
    centre = 2
    expected = x[0, centre, 0, 0] / (2.0 + 1e-4 * (x[0, :, 0, 0] ** 2).sum()) ** 0.75
    assert alexnet[0, centre, 0, 0] == pytest.approx(expected, rel=1e-12)
    caffe, _ = lrn_forward(x, 5, 5e-4, 0.75, 2.0, alpha_divided_by_size=True)
    np.testing.assert_allclose(caffe, alexnet, rtol=1e-12)


def test_two_3x3_layers_see_5x5(rng):
    """Sect. 2.3: the gradient of one output of two stacked 3x3 convs reaches exactly a 5x5 input patch."""
    from minivgg.layers import Conv2d, Sequential
    net = Sequential(Conv2d(1, 1, 3, padding=1, rng=rng, dtype=np.float64),
                     Conv2d(1, 1, 3, padding=1, rng=rng, dtype=np.float64))
    out = net.forward(rng.standard_normal((1, 1, 11, 11)))
    dout = np.zeros_like(out)
    dout[0, 0, 5, 5] = 1.0
    support = np.argwhere(net.backward(dout)[0, 0] != 0)
    assert support.min(axis=0).tolist() == [3, 3] and support.max(axis=0).tolist() == [7, 7]
