"""The CuPy backend's glue, run on the CPU through the GPU stand-ins (``tests/standins``): the same numbers as the
NumPy reference, and every failure a GPU user would meet first, each met here and handled.

What passes here is the logic around the GPU (which route a layer takes, which memory lives how long, which
stream waits for which); the kernels, cuDNN's plans and CUDA's capture are the stand-ins', not a GPU's.
"""
import warnings

import numpy as np
import pytest

import minivgg
from minivgg.fused_layers import fuse_conv_relu
from minivgg.training.recorded_step import CapturedTrainingStep
from minivgg.layers import (Conv2d, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU, Sequential,
                            SoftmaxCrossEntropyLoss)
from minivgg.training.optimiser import SGD

BATCH = 4


def _net(seed=3, dtype=np.float32):
    init = dict(rng=np.random.default_rng(seed), weight_init="glorot", dtype=dtype)
    return Sequential(Conv2d(3, 8, 3, padding=1, **init), ReLU(), LocalResponseNorm(), MaxPool2d(2, 2),
                      Conv2d(8, 8, 3, stride=2, padding=1, **init), ReLU(), Flatten(),
                      Linear(8 * 2 * 2, 6, **init), ReLU(), Linear(6, 5, **init))


def _batches(count=4, dtype=np.float32, size=8):
    rng = np.random.default_rng(7)
    return [(rng.standard_normal((BATCH, 3, size, size)).astype(dtype), rng.integers(0, 5, BATCH))
            for _ in range(count)]


def _train(backend_name, batches, dtype=np.float32):
    """Plain SGD steps on ``backend_name``; returns (losses, parameters as float64 host arrays)."""
    minivgg.set_backend(backend_name)
    net, loss_layer = _net(dtype=dtype), SoftmaxCrossEntropyLoss()
    optimizer, losses = SGD(net), []
    for x, labels in batches:
        losses.append(float(loss_layer.forward(net.forward(minivgg.asarray(x)), labels)))
        net.backward(loss_layer.backward(), input_gradient=False)
        optimizer.step(0.05)
    return losses, [np.asarray(minivgg.to_host(layer.params[key]), np.float64)
                    for _, layer, key in net.named_parameters()]


def _assert_same_training(found, expected, rtol):
    np.testing.assert_allclose(found[0], expected[0], rtol=rtol)
    for a, b in zip(found[1], expected[1]):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


@pytest.fixture
def reference_training():
    return _train("numpy", _batches())


def test_training_steps_on_the_cupy_backend_match_the_numpy_reference(standin_gpu, reference_training):
    """4 float32 SGD steps with conv+ReLU fused in cuDNN graphs: the reference's losses and weights."""
    standin_gpu()
    from standins.counting import COUNTS
    before = COUNTS.snapshot()
    _assert_same_training(_train("cupy", _batches()), reference_training, rtol=2e-5)
    counted = COUNTS.since(before)
    assert counted["cudnn_executions"] == 4 * (2 + 2 + 1)  # per step: 2 fprop, 2 wgrad, 1 dgrad (not the first)


def test_float64_takes_the_reference_route_and_matches_it_exactly(standin_gpu):
    reference = _train("numpy", _batches(2, np.float64), np.float64)
    standin_gpu()
    from standins.counting import COUNTS
    before = COUNTS.snapshot()
    _assert_same_training(_train("cupy", _batches(2, np.float64), np.float64), reference, rtol=1e-11)
    assert COUNTS.since(before)["cudnn_executions"] == 0


# --- issue 2: a missing cuDNN is found when the backend is chosen, never a silent im2col -----------------

@pytest.mark.parametrize("missing, named", [("missing", r"cuDNN library \(libcudnn\).*pip install nvidia-cudnn-cu13"),
                                            ("absent", r"frontend cannot be imported.*nvidia-cudnn-frontend")])
def test_choosing_the_backend_without_cudnn_says_what_to_install(standin_gpu, missing, named):
    _, _, backend = standin_gpu(cudnn=missing)
    with pytest.raises(minivgg.BackendUnavailableError, match=named):
        minivgg.set_backend("cupy")
    with pytest.raises(minivgg.BackendUnavailableError, match=named):
        backend.set_convolution_route("cudnn")
    assert "cuDNN unavailable" in backend.frontend_status()  # a status line, never an exception


def test_without_cudnn_the_im2col_route_runs_only_when_asked_for(standin_gpu, reference_training):
    _, _, backend = standin_gpu(cudnn="missing")
    from standins.counting import COUNTS
    backend.set_convolution_route("im2col")
    try:
        before = COUNTS.snapshot()
        _assert_same_training(_train("cupy", _batches()), reference_training, rtol=2e-5)
        assert COUNTS.since(before)["cudnn_executions"] == 0
    finally:
        backend.set_convolution_route("auto")


# --- issue 3: all three graphs checked before a layer takes cuDNN; a layer without one takes im2col ------

@pytest.mark.parametrize("kind", ["fprop", "dgrad", "wgrad"])
def test_a_graph_kind_without_a_plan_sends_its_layers_to_im2col(standin_gpu, reference_training, kind):
    standin_gpu(cudnn_no_plan=kind)
    from standins.counting import COUNTS
    before = COUNTS.snapshot()
    with pytest.warns(RuntimeWarning, match=rf"takes the reference's im2col route.*no cuDNN plan for the {kind}"):
        trained = _train("cupy", _batches())
    _assert_same_training(trained, reference_training, rtol=2e-5)
    assert COUNTS.since(before)["cudnn_executions"] == 0  # every layer of this net fell back, forward and backward


def test_fp32_without_tensor_core_plans_falls_back_and_tf32_keeps_cudnn(standin_gpu, reference_training):
    _, _, backend = standin_gpu(cudnn_tensor_core_only="dgrad")
    from standins.counting import COUNTS
    minivgg.set_backend("cupy")
    previous = backend.set_precision("fp32")  # deselects the tensor-core plans: the data gradient has none left
    try:
        with pytest.warns(RuntimeWarning, match="no cuDNN plan for the dgrad graph"):
            _assert_same_training(_train("cupy", _batches()), reference_training, rtol=2e-5)
        backend.set_precision("tf32")
        before = COUNTS.snapshot()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback in tf32
            _train("cupy", _batches(1))
        assert COUNTS.since(before)["cudnn_executions"] == 5
    finally:
        backend.set_precision(previous)


def test_a_later_batch_shape_whose_backward_has_no_plan_is_computed_by_the_reference(standin_gpu, rng):
    """The layer's geometry had all three plans at its first shape; a new shape's data gradient has none."""
    _, cudnn, backend = standin_gpu()
    minivgg.set_backend("cupy")
    x, W, b = (rng.standard_normal(shape).astype(np.float32) for shape in [(2, 3, 8, 8), (4, 3, 3, 3), (4,)])
    backend.conv2d_forward(*(minivgg.asarray(a) for a in (x, W, b)), 1, 1)  # the route is chosen: cuDNN
    cudnn.STANDIN.no_plan = {"dgrad"}
    x = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    out, cache = backend.conv2d_forward(*(minivgg.asarray(a) for a in (x, W, b)), 1, 1)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    with pytest.warns(RuntimeWarning, match="this backward takes the reference's im2col route"):
        found = backend.conv2d_backward(minivgg.asarray(dout), cache)
    from minivgg.backends.reference import conv as reference
    _, reference_cache = reference.conv2d_forward(x.astype(np.float64), W.astype(np.float64), b, 1, 1)
    for a, e in zip(found, reference.conv2d_backward(dout.astype(np.float64), reference_cache)):
        np.testing.assert_allclose(minivgg.to_host(a), e, rtol=1e-4, atol=1e-4 * np.abs(e).max())


# --- issues 4 and 9: the recorded step --------------------------------------------------------------------

def _recorded_and_eager(batches, between=None):
    """Losses and weights of SGD steps on ``batches``: recorded once and replayed, and eager; ``between(net)``
    runs after the recording (an evaluation at an epoch's end)."""
    results = []
    for recorded in (True, False):
        net, loss_layer = _net(), SoftmaxCrossEntropyLoss()
        optimizer, losses = SGD(net), []
        net.forward(minivgg.asarray(batches[0][0]))  # a forward before training builds graphs and a workspace
        step = CapturedTrainingStep(net, loss_layer, optimizer) if recorded else None
        for i, (x, labels) in enumerate(batches):
            if step is not None:
                losses.append(float(step(x, labels, 0.05)[1]))
            else:
                losses.append(float(loss_layer.forward(net.forward(minivgg.asarray(x)), labels)))
                net.backward(loss_layer.backward(), input_gradient=False)
                optimizer.step(0.05)
            if i == 1 and between is not None:
                between(net)
        results.append((losses, [np.asarray(minivgg.to_host(layer.params[key]), np.float64)
                                 for _, layer, key in net.named_parameters()]))
    return results


def test_a_recorded_step_replays_the_eager_numbers(standin_gpu):
    standin_gpu()
    from standins.counting import COUNTS
    minivgg.set_backend("cupy")
    before = COUNTS.snapshot()
    recorded, eager = _recorded_and_eager(_batches(5))
    _assert_same_training(recorded, eager, rtol=2e-5)
    assert COUNTS.since(before)["graph_launches"] == 4  # the first step ran eagerly, then 4 replays


def test_the_workspace_of_a_recording_outlives_a_larger_one(standin_gpu):
    """A validation batch whose graphs need a larger workspace replaces the shared one: the recording's must
    stay allocated, or the replay writes into memory given to someone else (issue 4)."""
    cupy, cudnn, _ = standin_gpu()
    minivgg.set_backend("cupy")
    # Every graph needs the same workspace: the first forward allocates it, from the default pool, and the
    # recording uses that buffer.
    cudnn.STANDIN.workspace_bytes = lambda kind, x_dims, w_dims: 8192

    def evaluate_larger(net):
        cudnn.STANDIN.workspace_bytes = lambda kind, x_dims, w_dims: 1 << 20  # grows after the capture
        net.forward(minivgg.asarray(np.ones((BATCH + 3, 3, 8, 8), np.float32)))
        cupy.get_default_memory_pool().free_all_blocks()  # the pool hands its free blocks back

    recorded, eager = _recorded_and_eager(_batches(4), between=evaluate_larger)
    _assert_same_training(recorded, eager, rtol=2e-5)


def _held_bytes(cupy, recorded=None):
    pools = [cupy.get_default_memory_pool()] + ([recorded.recorded.pool] if recorded is not None else [])
    return sum(pool.total_bytes() for pool in pools)


def test_recording_a_step_holds_one_working_set_not_two(standin_gpu):
    """Device memory held after recording (every pool's blocks, in use or cached) against an eager step's."""
    cupy, _, _ = standin_gpu()
    minivgg.set_backend("cupy")
    x, labels = _batches(1, size=32)[0]
    init = dict(rng=np.random.default_rng(3), weight_init="glorot")
    make = lambda: Sequential(Conv2d(3, 16, 3, padding=1, **init), ReLU(), Conv2d(16, 16, 3, padding=1, **init),  # noqa: E731
                              ReLU(), MaxPool2d(2, 2), Flatten(), Linear(16 * 16 * 16, 5, **init))
    net, loss_layer = make(), SoftmaxCrossEntropyLoss()
    optimizer, fused = SGD(net), fuse_conv_relu(net)  # the eager step as training runs it: conv+ReLU fused
    loss_layer.forward(fused.forward(minivgg.asarray(x)), labels)
    fused.backward(loss_layer.backward(), input_gradient=False)
    optimizer.step(0.05)
    eager = _held_bytes(cupy)
    cupy.get_default_memory_pool().free_all_blocks()
    del net, fused, loss_layer, optimizer
    cupy.get_default_memory_pool().free_all_blocks()
    net = make()
    step = CapturedTrainingStep(net, SoftmaxCrossEntropyLoss(), SGD(net))
    step(x, labels, 0.05)
    recorded = _held_bytes(cupy, step)
    assert recorded < 1.25 * eager, f"recording holds {recorded} bytes, an eager step {eager}"


def test_the_fused_relu_backward_allocates_no_mask_and_no_masked_copy(standin_gpu, rng):
    standin_gpu()
    from standins.counting import COUNTS
    backend = minivgg.set_backend("cupy")
    x, W, b = (minivgg.asarray(rng.standard_normal(s).astype(np.float32)) for s in [(4, 8, 16, 16), (16, 8, 3, 3),
                                                                                      (16,)])
    dout = minivgg.asarray(rng.standard_normal((4, 16, 16, 16)).astype(np.float32))
    allocated = {}
    for fused in (False, True):
        forward, backward = ((backend.conv2d_relu_forward, backend.conv2d_relu_backward) if fused else
                             (backend.conv2d_forward, backend.conv2d_backward))
        _, cache = forward(x, W, b, 1, 1)
        before = COUNTS.snapshot()
        backward(dout, cache)
        allocated[fused] = COUNTS.since(before)["bytes_allocated"]
    assert allocated[True] <= allocated[False], allocated  # the ReLU's gradient costs no memory of its own


def test_the_benchmarks_recorded_step_waits_for_its_uploads(standin_gpu, monkeypatch):
    """bench_gpu.py's graph variant uploads on the default stream and warms up on the recording's own stream."""
    import os
    standin_gpu()
    repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    monkeypatch.syspath_prepend(os.path.join(repository, "benchmarks"))
    import bench_gpu
    import minivgg.models
    full_size = minivgg.models.vgg
    monkeypatch.setattr(minivgg.models, "vgg", lambda config, **kw: full_size(config, **dict(
        kw, width_multiplier=1 / 16, fc_width=16)))  # the benchmark's own step on a net the CPU runs fast
    step, synchronize = bench_gpu.minivgg_training_step("cupy", "A", 2, 32, "fp32", variant="graph")
    step()
    synchronize()
