"""The NumPy convolution's internal routes give the same numbers: the batch unfolded in few large chunks
or in many one-row ones, the data gradient as a convolution (stride 1) or by col2im (stride 2,
wide padding), and the backward that skips the data gradient of a network's first layer."""
import numpy as np
import pytest

from minivgg.backends.numpy import conv
from minivgg.layers import Conv2d, Linear, ReLU, Sequential, Flatten, SoftmaxCrossEntropyLoss

CASES = [  # (x shape, W shape, stride, padding): which route the data gradient takes
    ((3, 4, 9, 7), (5, 4, 3, 3), 1, 1),   # stride 1: a convolution of dout with the turned filters
    ((2, 3, 8, 9), (4, 3, 5, 5), 1, 2),   # 5x5, stride 1
    ((2, 3, 9, 8), (4, 3, 3, 3), 2, 1),   # stride 2: col2im
    ((2, 2, 5, 5), (3, 2, 3, 3), 1, 3),   # padding beyond the kernel's reach: col2im
]


def _forward_backward(x, W, b, stride, padding, dout_rng):
    out, cache = conv.conv2d_forward(x, W, b, stride, padding)
    dout = dout_rng.standard_normal(out.shape)
    return (out,) + conv.conv2d_backward(dout, cache)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CASES)
def test_large_and_one_row_chunks_agree(rng, monkeypatch, x_shape, w_shape, stride, padding):
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    monkeypatch.setattr(conv, "CHUNK_BYTES", 2 ** 30)  # whole images, one piece per worker at most
    large = _forward_backward(x, W, b, stride, padding, np.random.default_rng(1))
    assert len(list(conv.chunks(x_shape[0], 9, 1000))) <= conv.WORKERS
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1)  # one output row of one image per chunk
    assert len(list(conv.chunks(2, 9, 1000))) == 18
    chunked = _forward_backward(x, W, b, stride, padding, np.random.default_rng(1))
    for name, a, c in zip(("out", "dx", "dW", "db"), large, chunked):
        np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CASES)
def test_an_empty_batch_gives_empty_outputs_and_zero_parameter_gradients(x_shape, w_shape, stride, padding):
    x = np.zeros((0,) + x_shape[1:])
    out, cache = conv.conv2d_forward(x, np.ones(w_shape), np.ones(w_shape[0]), stride, padding)
    dx, dW, db = conv.conv2d_backward(out, cache)
    assert out.shape[0] == 0 and dx.shape == x.shape
    assert dW.shape == w_shape and not dW.any() and db.shape == (w_shape[0],) and not db.any()


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CASES)
def test_the_data_gradient_is_the_adjoint_of_the_forward(rng, x_shape, w_shape, stride, padding):
    """<conv(x), dout> = <x, dx> for any dout, whichever route computed dx (the bias set to zero)."""
    x, W = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    out, cache = conv.conv2d_forward(x, W, np.zeros(w_shape[0]), stride, padding)
    dout = rng.standard_normal(out.shape)
    dx, _, _ = conv.conv2d_backward(dout, cache)
    assert np.vdot(out, dout) == pytest.approx(np.vdot(x, dx), rel=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CASES)
def test_skipping_the_data_gradient_keeps_the_weight_gradients(rng, x_shape, w_shape, stride, padding):
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out, cache = conv.conv2d_forward(x, W, b, stride, padding)
    dout = rng.standard_normal(out.shape)
    _, dW, db = conv.conv2d_backward(dout, cache)
    no_dx, dW_alone, db_alone = conv.conv2d_backward(dout, cache, input_gradient=False)
    assert no_dx is None
    np.testing.assert_array_equal(dW_alone, dW)
    np.testing.assert_array_equal(db_alone, db)


def test_a_network_backward_without_the_input_gradient(rng):
    """Training asks for no gradient of the images: same parameter gradients, None for the input."""
    net = Sequential(Conv2d(3, 4, 3, padding=1, rng=rng, dtype=np.float64), ReLU(),
                     Sequential(Conv2d(4, 4, 3, padding=1, rng=rng, dtype=np.float64), ReLU()),
                     Flatten(), Linear(4 * 5 * 5, 3, rng=rng, dtype=np.float64))
    x, labels = rng.standard_normal((2, 3, 5, 5)), np.array([0, 2])
    loss = SoftmaxCrossEntropyLoss()

    def gradients(input_gradient):
        loss.forward(net.forward(x), labels)
        dx = net.backward(loss.backward(), input_gradient=input_gradient)
        return dx, [layer.grads[key].copy() for layer in (net[0], net[2][0], net[4]) for key in ("W", "b")]

    dx, with_dx = gradients(True)
    no_dx, without_dx = gradients(False)
    assert dx.shape == x.shape and no_dx is None
    for a, c in zip(with_dx, without_dx):
        np.testing.assert_array_equal(c, a)
    # A first layer that cannot skip its data gradient (here a nested stack starting with ReLU) still returns it.
    relu_first = Sequential(ReLU(), Flatten())
    relu_first.forward(x)
    assert relu_first.backward(np.ones((2, 75)), input_gradient=False).shape == x.shape


def test_pieces_run_in_order_on_the_worker_threads_and_blas_is_restored():
    import threading
    from threadpoolctl import threadpool_info
    from minivgg.backends.numpy import parallel
    blas_threads = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    results = parallel.run_pieces(lambda piece: (piece, threading.current_thread().name), range(6))
    assert [piece for piece, _ in results] == list(range(6))
    if parallel.WORKERS > 1:
        assert all(name.startswith("minivgg-numpy") for _, name in results)
    assert [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"] == blas_threads
    assert parallel.run_pieces(lambda piece: threading.current_thread().name, [0]) == [threading.current_thread().name]
