"""The GPU stand-ins (``tests/standins``) enforce what real CuPy, cuDNN and CUDA graphs enforce, so that the tests
of the CuPy backend built on them can fail: implicit host conversion refused, host reads counted, races
between streams, capture that records without running, replays through dangling pointers, the cuDNN frontend
without its library. (These test the stand-ins, not any GPU code.)"""
import numpy as np
import pytest


def test_arrays_refuse_implicit_conversion_and_count_host_reads(standin_gpu):
    cupy, _, _ = standin_gpu()
    from standins.counting import COUNTS
    a = cupy.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type"):
        a + np.ones((2, 3), np.float32)
    before = COUNTS.snapshot()
    total = a.sum()
    assert isinstance(total, cupy.ndarray) and total.shape == ()  # reductions stay on the device
    assert isinstance(np.exp(a), cupy.ndarray)                   # NumPy functions dispatch to the device
    assert COUNTS.since(before)["host_syncs"] == 0
    assert float(total) == 15.0 and int(a[1, 2]) == 5
    counted = COUNTS.since(before)
    assert counted["host_syncs"] == 2 and counted["bytes_to_host"] == 8
    assert any("test_standins.py" in site for site in counted["sync_sites"])


def test_views_share_memory_and_launch_nothing(standin_gpu):
    cupy, _, _ = standin_gpu()
    from standins.counting import COUNTS
    a = cupy.zeros((2, 3, 4), np.float32)
    before = COUNTS.snapshot()
    view = a.transpose(0, 2, 1)
    view[0, 1, 2] = 7.0
    assert float(a[0, 2, 1]) == 7.0 and view.data.ptr == a.data.ptr
    assert COUNTS.since(before)["kernel_launches"] == 1  # the assignment, not the transpose
    assert not cupy.ascontiguousarray(view).data.ptr == a.data.ptr


def test_an_array_on_another_device_is_refused(standin_gpu):
    cupy, _, _ = standin_gpu(gpus=2)
    with cupy.cuda.Device(1):
        b = cupy.ones(3, np.float32)
    with pytest.raises(ValueError, match="different from the current device"):
        b * 2


def test_a_read_on_another_stream_without_an_event_is_a_race(standin_gpu):
    cupy, _, _ = standin_gpu()
    from standins.device import StandinRaceError
    x = cupy.asarray(np.ones(4, np.float32))  # uploaded on the default stream
    side = cupy.cuda.Stream(non_blocking=True)
    with side, pytest.raises(StandinRaceError, match="race"):
        x * 2
    side.wait_event(cupy.cuda.get_current_stream().record())
    with side:
        y = x * 2
    with pytest.raises(StandinRaceError):
        float(y.sum())  # read back on the default stream: not ordered after the side stream
    side.synchronize()
    assert float(y.sum()) == 8.0


def test_capture_records_without_running_and_a_replay_runs(standin_gpu):
    cupy, _, _ = standin_gpu()
    x = cupy.asarray(np.ones(3, np.float32))
    stream = cupy.cuda.Stream(non_blocking=True)
    stream.wait_event(cupy.cuda.get_current_stream().record())
    with stream:
        stream.begin_capture()
        x += 1
        with pytest.raises(cupy.cuda.runtime.CUDARuntimeError, match="capturing"):
            float(x[0])
        graph = stream.end_capture()
    stream.synchronize()
    assert x.get().tolist() == [1, 1, 1]  # nothing ran during the capture
    graph.launch(stream)
    graph.launch(stream)
    stream.synchronize()
    assert x.get().tolist() == [3, 3, 3]


def test_a_replay_through_memory_freed_since_the_capture_is_refused(standin_gpu):
    cupy, _, _ = standin_gpu()
    from standins.device import StandinDanglingPointer
    held = {"buffer": cupy.zeros(256, np.float32)}  # kept by its owner during the capture
    stream = cupy.cuda.Stream(non_blocking=True)
    stream.wait_event(cupy.cuda.get_current_stream().record())
    with stream:
        stream.begin_capture()
        held["buffer"] += 1
        graph = stream.end_capture()
    stream.synchronize()
    graph.launch(stream)
    stream.synchronize()  # the replay is over before its memory changes hands: the next one is what is tested
    held.clear()  # its owner lets it go: back to the default pool, which hands it to the next allocation
    other = cupy.zeros(256, np.float32)
    with pytest.raises(StandinDanglingPointer, match="freed and handed out again"):
        graph.launch(stream)
    assert float(other.sum()) == 0.0


def test_the_frontend_without_its_library_imports_and_fails_at_the_first_call(standin_gpu):
    _, cudnn, _ = standin_gpu(cudnn="missing")
    assert cudnn.__version__.startswith("1.")
    with pytest.raises(RuntimeError, match="Unable to find symbol cudnnGetVersion"):
        cudnn.backend_version()


def test_the_cudnn_stand_in_computes_the_reference_convolution_through_pointers(standin_gpu, rng):
    cupy, cudnn, _ = standin_gpu()
    from minivgg.backends.reference import conv as reference
    x = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    expected, _ = reference.conv2d_forward(x.astype(np.float64), W.astype(np.float64), np.zeros(4), 2, 1)
    x_nhwc = cupy.asarray(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    W_krsc = cupy.asarray(np.ascontiguousarray(W.transpose(0, 2, 3, 1)))
    out = cupy.empty((2, 3, 3, 4), np.float32)
    graph = cudnn.pygraph(io_data_type=cudnn.data_type.FLOAT, handle=cudnn.create_handle())
    nhwc = lambda n, c, h, w: [h * w * c, 1, w * c, c]  # noqa: E731
    X = graph.tensor(name="X", dim=[2, 3, 6, 5], stride=nhwc(2, 3, 6, 5), data_type=cudnn.data_type.FLOAT)
    Wt = graph.tensor(name="W", dim=[4, 3, 3, 3], stride=nhwc(4, 3, 3, 3), data_type=cudnn.data_type.FLOAT)
    Y = graph.conv_fprop(image=X, weight=Wt, padding=[1, 1], stride=[2, 2], dilation=[1, 1])
    Y.set_output(True).set_data_type(cudnn.data_type.FLOAT).set_dim([2, 4, 3, 3]).set_stride(nhwc(2, 4, 3, 3))
    graph.validate()
    graph.build_operation_graph()
    graph.create_execution_plans([cudnn.heur_mode.A])
    graph.check_support()
    graph.build_plans()
    workspace = cupy.empty(graph.get_workspace_size(), np.uint8)
    graph.execute({X: x_nhwc.data.ptr, Wt: W_krsc.data.ptr, Y: out.data.ptr}, workspace.data.ptr)
    np.testing.assert_allclose(out.get().transpose(0, 3, 1, 2), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(Exception, match="lies in no allocated device memory"):
        graph.execute({X: x_nhwc.data.ptr, Wt: W_krsc.data.ptr, Y: 0x10}, workspace.data.ptr)


def test_a_block_handed_out_again_on_its_stream_remembers_reads_queued_on_another(standin_gpu):
    """CuPy's pool gives a freed block to the next allocation on the stream that allocated it, without waiting
    for other streams: an upload into it must first wait for the stream that still reads the old contents."""
    cupy, _, _ = standin_gpu()
    from standins.device import StandinRaceError
    copies, computing = cupy.cuda.Stream(non_blocking=True), cupy.cuda.get_current_stream()
    with copies:
        batch = cupy.asarray(np.ones(256, np.float32))
        copied = copies.record()
    computing.wait_event(copied)
    total = batch.sum()  # read on the computing stream
    del batch  # freed to the copy stream's free list while that read may still be queued
    with copies:
        with pytest.raises(StandinRaceError, match="may still be reading"):
            cupy.asarray(np.zeros(256, np.float32))
    with copies:
        copies.wait_event(computing.record())  # the copy stream waits for the read: no race
        again = cupy.asarray(np.zeros(256, np.float32))
    assert float(total) == 256.0 and again.shape == (256,)
