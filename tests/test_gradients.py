"""Every layer's hand-written backward agrees with central differences in float64 (relative error < 1e-6),
on shapes that catch the usual bugs: odd sizes, batch 1, padded borders, stride 2, 1x1/5x5/7x7 kernels,
pooling windows that do not tile the input; for the NumPy backend's engine and for the readable reference.
(Every backend and dtype is checked along random directions in ``test_backends.py``.)"""
import numpy as np
import pytest

import minivgg
from minivgg import gradcheck
from minivgg.layers import (Conv2d, Dropout, Flatten, GlobalAveragePool, Linear, LocalResponseNorm, MaxPool2d, ReLU,
                            Sequential, SoftmaxCrossEntropyLoss, EuclideanLoss)

from conftest import away_from_kinks, distinct_values

TOLERANCE = 1e-6


@pytest.fixture(autouse=True, params=["numpy", "reference"])
def cpu_backend(request):
    return minivgg.set_backend(request.param)


def assert_all_small(errors):
    failing = {name: error for name, error in errors.items() if not error < TOLERANCE}  # NaN fails too
    assert not failing, f"relative errors above {TOLERANCE:g}: {failing} (all: {errors})"


@pytest.mark.parametrize("in_c, out_c, k, stride, padding, shape", [
    (3, 4, 3, 1, 1, (2, 3, 5, 7)),     # the VGG layer, odd sizes, padded borders
    (2, 3, 3, 1, 1, (1, 2, 4, 4)),     # batch 1
    (3, 2, 3, 2, 1, (2, 3, 7, 6)),     # stride 2 with padding: windows skip pixels
    (3, 2, 3, 2, 0, (1, 3, 8, 5)),     # stride 2 that does not tile the input
    (4, 3, 1, 1, 0, (2, 4, 3, 5)),     # 1x1, configuration C
    (2, 3, 5, 1, 2, (2, 2, 6, 5)),     # 5x5, the shallow net of Sect. 4.1
    (3, 2, 7, 1, 0, (2, 3, 7, 7)),     # 7x7 covering the input: FC1 as a convolution (Sect. 3.2)
    (2, 2, 7, 1, 0, (1, 2, 9, 8)),     # 7x7 on a larger input: a score map
    (2, 3, 3, 1, 2, (1, 2, 3, 3)),     # padding wider than the kernel's reach
])
def test_conv2d_gradients(rng, in_c, out_c, k, stride, padding, shape):
    layer = Conv2d(in_c, out_c, k, stride, padding, rng=rng, dtype=np.float64, weight_init="glorot")
    layer.params["b"][:] = rng.standard_normal(out_c)
    assert_all_small(gradcheck.check_layer(layer, rng.standard_normal(shape)))


@pytest.mark.parametrize("kernel, stride, shape", [
    (2, 2, (2, 3, 4, 6)),   # the VGG pool
    (2, 2, (1, 2, 5, 7)),   # odd sizes: the last row and column are not covered
    (3, 2, (2, 2, 7, 6)),   # overlapping windows (AlexNet's pool)
    (3, 3, (1, 2, 8, 7)),   # windows that do not tile the input
    (2, 1, (1, 2, 4, 3)),   # stride 1: every pixel in several windows
])
def test_max_pool_gradients(rng, kernel, stride, shape):
    assert_all_small(gradcheck.check_layer(MaxPool2d(kernel, stride), distinct_values(rng, shape)))


@pytest.mark.parametrize("divided", [False, True])
@pytest.mark.parametrize("size, shape", [(5, (2, 7, 3, 3)), (3, (1, 4, 2, 5)), (4, (2, 6, 2, 2)), (5, (1, 3, 2, 2))])
def test_lrn_gradients(rng, size, shape, divided):
    # alpha and k chosen so the normalisation is far from the identity, which a weak test would miss.
    layer = LocalResponseNorm(size=size, alpha=0.5, beta=0.75, k=1.0, alpha_divided_by_size=divided)
    assert_all_small(gradcheck.check_layer(layer, rng.standard_normal(shape)))


def test_relu_gradients(rng):
    assert_all_small(gradcheck.check_layer(ReLU(), away_from_kinks(rng.standard_normal((3, 2, 4, 5)))))


def test_linear_gradients(rng):
    layer = Linear(7, 5, rng=rng, dtype=np.float64, weight_init="glorot")
    layer.params["b"][:] = rng.standard_normal(5)
    assert_all_small(gradcheck.check_layer(layer, rng.standard_normal((4, 7))))


def test_dropout_gradients_with_fixed_mask(rng):
    layer = Dropout(0.5)
    x = rng.standard_normal((4, 6))
    layer.fixed_mask = rng.random(x.shape) > 0.5
    assert_all_small(gradcheck.check_layer(layer, x))


def test_flatten_and_global_average_pool_gradients(rng):
    assert_all_small(gradcheck.check_layer(Flatten(), rng.standard_normal((2, 3, 2, 3))))
    assert_all_small(gradcheck.check_layer(GlobalAveragePool(), rng.standard_normal((2, 3, 4, 5))))


def test_softmax_cross_entropy_gradient(rng):
    loss = SoftmaxCrossEntropyLoss()
    scores = rng.standard_normal((5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    numeric = gradcheck.numerical_gradient(lambda: loss.forward(scores, labels), scores)
    loss.forward(scores, labels)
    assert gradcheck.relative_error(loss.backward(), numeric) < TOLERANCE


def test_euclidean_loss_gradient(rng):
    loss = EuclideanLoss()
    predictions, targets = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    numeric = gradcheck.numerical_gradient(lambda: loss.forward(predictions, targets), predictions)
    loss.forward(predictions, targets)
    assert gradcheck.relative_error(loss.backward(), numeric) < TOLERANCE


def test_whole_small_net_end_to_end(rng):
    """conv, ReLU, LRN, pool, conv, ReLU, pool, flatten, linear, ReLU, dropout (fixed mask), linear, softmax loss."""
    init = dict(rng=rng, dtype=np.float64, weight_init="glorot")
    net = Sequential(
        Conv2d(3, 4, 3, padding=1, **init), ReLU(), LocalResponseNorm(size=3, alpha=0.5, k=1.0), MaxPool2d(2, 2),
        Conv2d(4, 5, 3, padding=1, **init), ReLU(), MaxPool2d(2, 2),
        Flatten(), Linear(5 * 2 * 2, 6, **init), ReLU(), Dropout(0.5), Linear(6, 3, **init))
    for _, layer, key in net.named_parameters():
        if key == "b":
            layer.params["b"][:] = rng.uniform(0.05, 0.2, size=layer.params["b"].shape)
    net[10].fixed_mask = np.array([[True, False, True, True, False, True]] * 2)
    x = rng.standard_normal((2, 3, 9, 8))
    errors = gradcheck.check_model(net, SoftmaxCrossEntropyLoss(), x, np.array([2, 0]))
    assert len(errors) == 1 + 2 * 4
    assert_all_small(errors)


def test_directional_check_detects_a_wrong_gradient(rng):
    """The cheap check along a random direction passes the true gradient and fails a wrong one."""
    a = rng.standard_normal(50)
    ok = gradcheck.check_directional(lambda: (float((a ** 3).sum()), 3 * a ** 2), a)
    wrong = gradcheck.check_directional(lambda: (float((a ** 3).sum()), 2 * a ** 2), a)
    assert ok < 1e-8 and wrong > 1e-2


def test_gradcheck_refuses_float32(rng):
    with pytest.raises(ValueError, match="float64"):
        gradcheck.numerical_gradient(lambda: 0.0, np.zeros(3, np.float32))
