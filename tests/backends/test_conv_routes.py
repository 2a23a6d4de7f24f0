"""The NumPy backend's convolution engine (fast_conv.py): its internal routes give the same numbers: the batch unfolded in few large chunks
or in many one-row ones, the data gradient as a convolution (stride 1) or by col2im (stride 2,
wide padding), and the backward that skips the data gradient of a network's first layer."""
import os

import numpy as np
import pytest

from minivgg.backends.numpy import fast_conv as conv
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


def _blas_threads():
    from threadpoolctl import threadpool_info
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_pieces_run_in_order_on_all_workers_at_once_and_blas_is_restored():
    import threading
    from minivgg.backends.numpy import parallel
    blas_threads = _blas_threads()
    # Each of the first WORKERS pieces waits until WORKERS threads hold one: only concurrent threads get past.
    together = threading.Barrier(parallel.WORKERS, timeout=30)

    def work(piece):
        if piece < parallel.WORKERS:
            together.wait()
        return piece, threading.current_thread().name, _blas_threads()

    results = parallel.run_pieces(work, range(3 * parallel.WORKERS))
    assert [piece for piece, _, _ in results] == list(range(3 * parallel.WORKERS))
    assert len({name for _, name, _ in results}) == parallel.WORKERS
    if parallel.WORKERS > 1:
        assert all(threads == [1] * len(blas_threads) for _, _, threads in results)
    assert _blas_threads() == blas_threads
    assert parallel.run_pieces(lambda piece: threading.current_thread().name, [0]) == [threading.current_thread().name]


def test_a_failing_piece_raises_after_every_worker_has_stopped():
    import threading
    from minivgg.backends.numpy import parallel
    running = set()
    lock = threading.Lock()

    def work(piece):
        with lock:
            running.add(piece)
        try:
            if piece == 1:
                raise ValueError("piece 1 failed")
            return piece
        finally:
            with lock:
                running.discard(piece)

    with pytest.raises(ValueError, match="piece 1 failed"):
        parallel.run_pieces(work, range(8))
    assert not running


def test_one_blas_thread_inside_the_backends_products_and_restored_after():
    from minivgg.backends.numpy import parallel
    blas_threads = _blas_threads()
    inside = parallel.one_blas_thread(_blas_threads)()
    if parallel.WORKERS > 1:
        assert inside == [1] * len(blas_threads)
    assert _blas_threads() == blas_threads


@pytest.mark.parametrize("shape_a, shape_b", [((37, 11), (11, 5)), ((5, 11), (11, 37)), ((1, 3), (3, 1)),
                                              ((1100, 7), (7, 3))])  # the last splits rows on up to 16 workers
def test_the_parallel_matmul_splits_rows_or_columns_and_gives_the_product(rng, monkeypatch, shape_a, shape_b):
    from minivgg.backends.numpy import parallel
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_MACS", 0)  # split even these small products
    np.testing.assert_allclose(parallel.matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(parallel.matmul(b.T, a.T), (a @ b).T, rtol=1e-12, atol=1e-12)


def test_the_weight_gradient_is_the_same_to_the_bit_whichever_thread_ran_which_chunk(rng, monkeypatch):
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1)  # many one-row chunks, taken by whichever thread is free
    x, W = rng.standard_normal((3, 4, 9, 7)).astype(np.float32), rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    out, cache = conv.conv2d_forward(x, W, np.zeros(5, np.float32), 1, 1)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    first = conv.conv2d_backward(dout, cache)
    for _ in range(5):
        for a, c in zip(first, conv.conv2d_backward(dout, cache)):
            np.testing.assert_array_equal(c, a)


@pytest.mark.parametrize("pad_h, pad_w", [(0, 0), (1, 1), (2, 1), (0, 2), (3, 0)])
def test_padded_rows_are_the_rows_of_the_padded_batch(rng, pad_h, pad_w):
    """Every band of rows, whether inside the image, across its border or all padding."""
    x = rng.standard_normal((3, 4, 5, 2))
    padded = np.pad(x, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)))
    height = padded.shape[1]
    for r0 in range(height):
        for r1 in range(r0 + 1, height + 1):
            np.testing.assert_array_equal(conv.padded_rows(x, (1, 3), (r0, r1), pad_h, pad_w), padded[1:3, r0:r1],
                                          err_msg=f"rows {r0}..{r1}")


# Every convolution shape of the gradient tests (tests/test_gradients.py): (x shape, W shape, stride, padding).
GRADIENT_TEST_SHAPES = [
    ((2, 3, 5, 7), (4, 3, 3, 3), 1, 1), ((1, 2, 4, 4), (3, 2, 3, 3), 1, 1), ((2, 3, 7, 6), (2, 3, 3, 3), 2, 1),
    ((1, 3, 8, 5), (2, 3, 3, 3), 2, 0), ((2, 4, 3, 5), (3, 4, 1, 1), 1, 0), ((2, 2, 6, 5), (3, 2, 5, 5), 1, 2),
    ((2, 3, 7, 7), (2, 3, 7, 7), 1, 0), ((1, 2, 9, 8), (2, 2, 7, 7), 1, 0), ((1, 2, 3, 3), (3, 2, 3, 3), 1, 2),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", GRADIENT_TEST_SHAPES)
def test_the_engine_computes_the_readable_references_numbers(rng, x_shape, w_shape, stride, padding):
    """fast_conv (what the NumPy backend exports) against conv.py (im2col, one product, col2im), float64."""
    from minivgg.backends.reference import conv as reference
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out, cache = conv.conv2d_forward(x, W, b, stride, padding)
    expected, expected_cache = reference.conv2d_forward(x, W, b, stride, padding)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    for name, got, want in zip(("dx", "dW", "db"), conv.conv2d_backward(dout, cache),
                               reference.conv2d_backward(dout, expected_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)


def test_the_engines_fc_layer_computes_the_references_numbers(rng, monkeypatch):
    from minivgg.backends.numpy import fast_linear, parallel
    from minivgg.backends.reference import linear
    monkeypatch.setattr(parallel, "PARALLEL_MIN_MACS", 0)  # split even this small product over the workers
    x, W, b = rng.standard_normal((130, 7)), rng.standard_normal((5, 7)), rng.standard_normal(5)
    out, cache = fast_linear.linear_forward(x, W, b)
    expected, expected_cache = linear.linear_forward(x, W, b)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(fast_linear.linear_backward(dout, cache), linear.linear_backward(dout, expected_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks a process (POSIX)")
def test_a_process_forked_after_the_pool_ran_runs_pieces_of_its_own(monkeypatch):
    # A forked child inherits the pool object but none of its threads: without a pool of its own, a piece handed
    # over waits forever (mutmut and multiprocessing's "fork" start both fork such a process).
    import select
    import signal
    from minivgg.backends.numpy import parallel
    monkeypatch.setattr(parallel, "WORKERS", 2)  # a pool thread even on one core
    assert parallel.run_pieces(lambda piece: piece * piece, range(6)) == [0, 1, 4, 9, 16, 25]
    assert parallel._pool is not None
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # the child: run pieces, say what they gave, and leave without pytest's clean-up
        try:
            os.write(writing, repr(parallel.run_pieces(lambda piece: piece + 1, range(6))).encode())
        finally:
            os._exit(0)
    os.close(writing)
    try:
        ready, _, _ = select.select([reading], [], [], 30)
        answer = os.read(reading, 1000).decode() if ready else None
    finally:
        if not ready:
            os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(reading)
    assert answer == "[1, 2, 3, 4, 5, 6]", "the forked child's pieces never ran"
