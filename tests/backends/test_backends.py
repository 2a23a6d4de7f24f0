"""One suite for every backend and dtype (Caffe's typed tests, MatConvNet's device x dtype grid).

Every op of every backend, forward and backward, equals the naive loops of ``backends/reference/loops.py``;
every layer's gradient passes a check along a random direction in float64; bad input is refused with the
same message everywhere; and one SGD step of a small net (conv, ReLU, LRN, pool, FC, dropout, soft-max)
gives the NumPy float64 numbers. The backends: ``numpy`` (its fast engine), ``reference`` (the readable
ops alone), ``numba`` (in the CUDA simulator when there is no GPU: ``conftest.py`` switches it on; tiny
shapes) and ``cupy`` (where a GPU is present). A backend that cannot run here is skipped, saying why.
"""
import sys

import numpy as np
import pytest

import minivgg
from minivgg import gradcheck
from minivgg.backend import supports
from minivgg.backends.reference import loops
from minivgg.gradcheck import relative_error
from minivgg.layers import (Conv2d, Dropout, Flatten, GlobalAveragePool, Linear, LocalResponseNorm, MaxPool2d, ReLU,
                            Sequential, SoftmaxCrossEntropyLoss)

from conftest import away_from_kinks, distinct_values

BACKENDS = ("numpy", "reference", "numba", "cupy")
DTYPES = (np.float64, np.float32)
# float32 against float64 loops: a few units in the last place of sums of up to ~100 terms
TOLERANCE = {np.float64: 1e-10, np.float32: 2e-5}
USABLE = {}


def _usable(name):
    if name not in USABLE:
        try:
            minivgg.set_backend(name)
            USABLE[name] = None
        except ImportError as error:
            USABLE[name] = str(error)
        minivgg.set_backend("numpy")
    return USABLE[name]


@pytest.fixture(params=BACKENDS)
def backend(request):
    reason = _usable(request.param)
    if reason is not None:
        pytest.skip(reason)
    module = minivgg.set_backend(request.param)
    if request.param != "numba":
        yield module
        return
    switch_interval = sys.getswitchinterval()
    module.speed_up_simulator()  # the simulator's threads take turns faster (a no-op on a GPU)
    yield module
    sys.setswitchinterval(switch_interval)


@pytest.fixture(params=DTYPES, ids=lambda dtype: np.dtype(dtype).name)
def dtype(request):
    return request.param


def on(backend, array, dtype, channels_last=False):
    """``array`` as ``dtype`` on ``backend``'s device; ``channels_last`` hands it over as an NCHW view of NHWC
    memory, as one layer passes its output to the next."""
    array = np.array(array, dtype=dtype)  # a copy: ops that work in place must not touch the caller's array
    if channels_last:
        return backend.asarray(np.ascontiguousarray(array.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    return backend.asarray(array)


def assert_close(backend, got, expected, dtype, what):
    error = relative_error(np.asarray(backend.to_host(got), np.float64), expected)
    assert error < TOLERANCE[dtype], f"{backend.name} {np.dtype(dtype).name} {what}: relative error {error:.2e}"


def _as(dtype, *arrays):
    """The float64 arrays the loops get: the values the backend got, rounded to ``dtype`` first."""
    return [np.asarray(a, dtype=dtype).astype(np.float64) for a in arrays]


# --- every op against its loops -------------------------------------------------------------------------------

CONV_CASES = {
    "3x3-pad1-odd": ((2, 3, 5, 7), (4, 3, 3, 3), 1, 1),   # the VGG layer
    "3x3-stride2-pad1": ((1, 2, 7, 6), (3, 2, 3, 3), 2, 1),
    "1x1": ((1, 3, 4, 5), (2, 3, 1, 1), 1, 0),             # configuration C
    "5x5-pad2": ((1, 2, 6, 5), (4, 2, 5, 5), 1, 2),         # the shallow net of Sect. 4.1
    "3x3-pad3": ((1, 2, 4, 4), (3, 2, 3, 3), 1, 3),         # padding beyond the kernel's reach
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_convolution_is_its_loops(backend, dtype, rng, case):
    x_shape, w_shape, stride, padding = CONV_CASES[case]
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out, cache = backend.conv2d_forward(on(backend, x, dtype, dtype == np.float32), on(backend, W, dtype),
                                        on(backend, b, dtype), stride, padding)
    x, W, b = _as(dtype, x, W, b)
    expected = loops.conv2d_forward_loops(x, W, b, stride, padding)
    assert_close(backend, out, expected, dtype, "out")
    dout = rng.standard_normal(expected.shape)
    dx, dW, db = backend.conv2d_backward(on(backend, dout, dtype), cache)
    for name, got, want in zip(("dx", "dW", "db"), (dx, dW, db),
                               loops.conv2d_backward_loops(*_as(dtype, dout), x, W, stride, padding)):
        assert_close(backend, got, want, dtype, name)
    no_dx, dW_alone, _ = backend.conv2d_backward(on(backend, dout, dtype), cache, input_gradient=False)
    assert no_dx is None  # a network's first layer: nobody reads the images' gradient
    assert_close(backend, dW_alone, np.asarray(backend.to_host(dW), np.float64), dtype, "dW without dx")


POOL_CASES = {"2x2-stride2-odd": ((2, 3, 5, 7), 2, 2), "3x3-stride2-overlapping": ((1, 2, 7, 6), 3, 2),
              "2x2-stride1": ((1, 2, 4, 5), 2, 1)}


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_is_its_loops(backend, dtype, rng, case):
    shape, kernel, stride = POOL_CASES[case]
    x = distinct_values(rng, shape)  # no ties: the winner is the same in float32 and float64
    out, cache = backend.max_pool2d_forward(on(backend, x, dtype, dtype == np.float32), kernel, stride)
    (x,) = _as(dtype, x)
    expected = loops.max_pool2d_forward_loops(x, kernel, stride)
    assert_close(backend, out, expected, dtype, "out")
    dout = rng.standard_normal(expected.shape)
    dx = backend.max_pool2d_backward(on(backend, dout, dtype), cache)
    assert_close(backend, dx, loops.max_pool2d_backward_loops(*_as(dtype, dout), x, kernel, stride), dtype, "dx")


def test_max_pool_tie_sends_the_whole_gradient_to_the_first_maximum(backend, dtype):
    """On a constant input every window ties: the gradient goes to its top-left pixel, as in Caffe."""
    _, cache = backend.max_pool2d_forward(on(backend, np.ones((1, 2, 4, 4)), dtype), 2, 2)
    dx = np.asarray(backend.to_host(backend.max_pool2d_backward(on(backend, np.ones((1, 2, 2, 2)), dtype), cache)))
    expected = np.zeros((1, 2, 4, 4))
    expected[:, :, ::2, ::2] = 1
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("size, divided", [(5, False), (5, True), (4, False), (3, True)])
def test_lrn_is_its_loops(backend, dtype, rng, size, divided):
    """Size 4 has a lopsided window: the backward's turned-around window differs from the forward's."""
    options = dict(size=size, alpha=0.3, beta=0.75, k=2.0, alpha_divided_by_size=divided)
    x = 2 * rng.standard_normal((2, 6, 3, 2))
    out, cache = backend.lrn_forward(on(backend, x, dtype), **options)
    (x,) = _as(dtype, x)
    assert_close(backend, out, loops.lrn_forward_loops(x, **options), dtype, "out")
    dout = rng.standard_normal(x.shape)
    dx = backend.lrn_backward(on(backend, dout, dtype), cache)
    assert_close(backend, dx, loops.lrn_backward_loops(*_as(dtype, dout), x, **options), dtype, "dx")


def test_relu_is_its_loops(backend, dtype, rng):
    x = away_from_kinks(rng.standard_normal((2, 3, 4, 5)))
    out, cache = backend.relu_forward(on(backend, x, dtype, dtype == np.float32))
    (x,) = _as(dtype, x)
    assert_close(backend, out, loops.relu_forward_loops(x), dtype, "out")
    dout = rng.standard_normal(x.shape)
    dx = backend.relu_backward(on(backend, dout, dtype), cache)
    assert_close(backend, dx, loops.relu_backward_loops(*_as(dtype, dout), x), dtype, "dx")


def test_linear_is_its_loops(backend, dtype, rng):
    x, W, b = rng.standard_normal((4, 7)), rng.standard_normal((5, 7)), rng.standard_normal(5)
    out, cache = backend.linear_forward(on(backend, x, dtype), on(backend, W, dtype), on(backend, b, dtype))
    x, W, b = _as(dtype, x, W, b)
    assert_close(backend, out, loops.linear_forward_loops(x, W, b), dtype, "out")
    dout = rng.standard_normal((4, 5))
    for name, got, want in zip(("dx", "dW", "db"), backend.linear_backward(on(backend, dout, dtype), cache),
                               loops.linear_backward_loops(*_as(dtype, dout), x, W)):
        assert_close(backend, got, want, dtype, name)


def test_global_average_pool_is_its_loops(backend, dtype, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    out, cache = backend.global_average_pool_forward(on(backend, x, dtype))
    (x,) = _as(dtype, x)
    assert_close(backend, out, loops.global_average_pool_forward_loops(x), dtype, "out")
    dout = rng.standard_normal((2, 3))
    dx = backend.global_average_pool_backward(on(backend, dout, dtype), cache)
    assert_close(backend, dx, loops.global_average_pool_backward_loops(*_as(dtype, dout), x.shape), dtype, "dx")


def test_softmax_cross_entropy_is_its_loops(backend, dtype, rng):
    """Scores up to 1000: exp would overflow without the shift by the row's maximum."""
    scores, labels = 3 * rng.standard_normal((5, 11)), rng.integers(0, 11, 5)
    scores[0, 0] = 1000.0
    loss, cache = backend.softmax_cross_entropy_forward(on(backend, scores, dtype), backend.asarray(labels))
    (scores,) = _as(dtype, scores)
    assert_close(backend, loss, loops.softmax_cross_entropy_forward_loops(scores, labels), dtype, "loss")
    dscores = backend.softmax_cross_entropy_backward(0.5, cache)
    assert_close(backend, dscores, loops.softmax_cross_entropy_backward_loops(0.5, scores, labels), dtype, "dscores")
    probabilities = backend.softmax(on(backend, scores, dtype))
    # softmax = (softmax - onehot) + onehot, the loops' gradient at dloss = N
    assert_close(backend, probabilities, loops.softmax_cross_entropy_backward_loops(5.0, scores, labels)
                 + np.eye(11)[labels], dtype, "softmax")


def test_euclidean_loss_is_its_loops(backend, dtype, rng):
    predictions, targets = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    loss, cache = backend.euclidean_loss_forward(on(backend, predictions, dtype), on(backend, targets, dtype))
    predictions, targets = _as(dtype, predictions, targets)
    assert_close(backend, loss, loops.euclidean_loss_forward_loops(predictions, targets), dtype, "loss")
    assert_close(backend, backend.euclidean_loss_backward(2.0, cache),
                 loops.euclidean_loss_backward_loops(2.0, predictions, targets), dtype, "dpredictions")


def test_sgd_update_is_its_loop(backend, dtype, rng):
    param, grad, velocity = (rng.standard_normal((3, 7)) for _ in range(3))
    param_device, velocity_device = on(backend, param, dtype), on(backend, velocity, dtype)
    backend.sgd_momentum_update(param_device, on(backend, grad, dtype), velocity_device, 0.01, 0.9, 5e-4)
    param, grad, velocity = _as(dtype, param, grad, velocity)
    loops.sgd_momentum_update_loops(param, grad, velocity, 0.01, 0.9, 5e-4)
    assert_close(backend, param_device, param, dtype, "param")
    assert_close(backend, velocity_device, velocity, dtype, "velocity")


# --- gradients along a random direction, float64 ----------------------------------------------------------------

def _directional_errors(layer, x):
    """``check_directional`` for the input and every parameter of ``layer``: f = sum(forward(x) * dout)."""
    backend = minivgg.get_backend()
    dout = backend.asarray(np.random.default_rng(1).standard_normal(layer.forward(x).shape))
    host = lambda a: np.asarray(backend.to_host(a), np.float64)  # noqa: E731

    def for_array(array, gradient_of):
        def f_and_grad():
            value = float((host(layer.forward(x)) * host(dout)).sum())
            dx = layer.backward(dout)
            return value, dx if gradient_of is None else layer.grads[gradient_of]
        return gradcheck.check_directional(f_and_grad, array)

    errors = {"x": for_array(x, None)}
    errors.update({key: for_array(layer.params[key], key) for key in layer.params})
    return errors


LAYERS = {
    "conv 3x3": (lambda rng: Conv2d(3, 4, 3, padding=1, rng=rng, dtype=np.float64, weight_init="glorot"), (2, 3, 5, 6)),
    "conv 3x3 stride 2": (lambda rng: Conv2d(2, 3, 3, 2, 1, rng=rng, dtype=np.float64, weight_init="glorot"),
                          (1, 2, 7, 6)),
    "max-pool": (lambda rng: MaxPool2d(2, 2), (2, 3, 4, 6)),
    "lrn": (lambda rng: LocalResponseNorm(size=3, alpha=0.5, k=1.0), (2, 5, 3, 3)),
    "relu": (lambda rng: ReLU(), (2, 3, 4, 5)),
    "linear": (lambda rng: Linear(7, 5, rng=rng, dtype=np.float64, weight_init="glorot"), (4, 7)),
    "global average pool": (lambda rng: GlobalAveragePool(), (2, 3, 4, 5)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_gradients_along_a_random_direction(backend, rng, name):
    make, shape = LAYERS[name]
    layer = make(rng).to_backend()
    x = distinct_values(rng, shape) - 0.5 * np.prod(shape) * 1e-2 if name == "max-pool" else rng.standard_normal(shape)
    errors = _directional_errors(layer, backend.asarray(away_from_kinks(x)))
    assert max(errors.values()) < 1e-7, errors


# --- bad input, on every backend --------------------------------------------------------------------------------

def test_bad_input_is_refused_naming_the_layer(backend):
    x = backend.asarray(np.zeros((2, 4, 6, 6), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*3 channels.*with 4"):
        Conv2d(3, 8, 3).to_backend().forward(x)
    with pytest.raises(ValueError, match=r"float64 does not match the parameters' float32"):
        Conv2d(4, 2, 3).to_backend().forward(backend.asarray(np.zeros((1, 4, 6, 6))))
    with pytest.raises(TypeError, match=rf"ReLU\(\).*{backend.xp.__name__}.ndarray.*got list"):
        ReLU().forward([[1.0, -1.0]])
    with pytest.raises(ValueError, match=r"\[0, 5\).*found 5"):
        SoftmaxCrossEntropyLoss().forward(backend.asarray(np.zeros((2, 5), np.float32)), np.array([0, 5]))


# --- one SGD step of a small net, as on NumPy in float64 -------------------------------------------------------

def _one_step(backend_name, dtype, x, labels, mask):
    from minivgg.training.optimiser import SGD
    minivgg.set_backend(backend_name)
    init = dict(rng=np.random.default_rng(5), weight_init="glorot", dtype=dtype)
    dropout = Dropout(0.5, seed=0)
    dropout.fixed_mask = minivgg.asarray(mask)
    net = Sequential(Conv2d(3, 4, 3, padding=1, **init), ReLU(), LocalResponseNorm(3, alpha=0.1), MaxPool2d(2, 2),
                     Conv2d(4, 5, 1, **init), ReLU(), Flatten(), Linear(5 * 3 * 2, 6, **init), ReLU(), dropout,
                     Linear(6, 4, **init))
    loss_layer = SoftmaxCrossEntropyLoss()
    loss = loss_layer.forward(net.forward(minivgg.asarray(x, dtype=dtype)), labels)
    dx = minivgg.to_host(net.backward(loss_layer.backward()))
    numbers = {"loss": np.array(loss), "dx": dx}
    numbers.update({f"grad {name}": minivgg.to_host(layer.grads[key]) for name, layer, key in net.named_parameters()})
    SGD(net).step(0.1)
    numbers.update({f"param {name}": minivgg.to_host(layer.params[key]) for name, layer, key in net.named_parameters()})
    return numbers


def test_a_training_step_of_a_small_net_gives_the_numpy_float64_numbers(backend, dtype, rng):
    x, labels, mask = rng.standard_normal((2, 3, 6, 5)), np.array([1, 3]), rng.random((2, 6)) >= 0.5
    expected = _one_step("numpy", np.float64, x, labels, mask)
    got = _one_step(backend.name, dtype, x, labels, mask)
    errors = {name: relative_error(np.asarray(got[name], np.float64), expected[name]) for name in expected}
    assert len(errors) == 2 + 2 * 4 * 2 and max(errors.values()) < {np.float64: 1e-10, np.float32: 1e-4}[dtype], errors


# --- on a GPU: VGG-16's own layer shapes ------------------------------------------------------------------------

# Configuration D's distinct convolutions (Table 1): (in channels, out channels, input side at 224).
VGG16_CONVOLUTIONS = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56),
                      (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 14)]


@pytest.mark.gpu
@pytest.mark.parametrize("channels, filters, size", VGG16_CONVOLUTIONS)
def test_vgg16_convolutions_match_the_reference_on_a_gpu(backend, rng, channels, filters, size):
    """Batch 2, float32, fp32 products: relative error below 1e-5 against the NumPy backend."""
    if backend.name in ("numpy", "reference") or getattr(backend, "SIMULATOR", False):
        pytest.skip(f"{backend.name}: these shapes are for a GPU backend on a GPU")
    from minivgg.backends import numpy as cpu
    previous = backend.set_precision("fp32") if supports("precision") else None
    try:
        x = rng.standard_normal((2, channels, size, size), dtype=np.float32)
        W = (rng.standard_normal((filters, channels, 3, 3)) * 0.05).astype(np.float32)
        b = rng.standard_normal(filters).astype(np.float32)
        out, cache = backend.conv2d_forward(backend.asarray(x), backend.asarray(W), backend.asarray(b), 1, 1)
        expected, expected_cache = cpu.conv2d_forward(x, W, b, 1, 1)
        dout = rng.standard_normal(expected.shape, dtype=np.float32)
        got = (out,) + backend.conv2d_backward(backend.asarray(dout), cache)
        want = (expected,) + cpu.conv2d_backward(dout, expected_cache)
        errors = {name: relative_error(np.asarray(backend.to_host(g), np.float64), w)
                  for name, g, w in zip(("out", "dx", "dW", "db"), got, want)}
        assert max(errors.values()) < 1e-5, errors
    finally:
        if previous is not None:
            backend.set_precision(previous)
