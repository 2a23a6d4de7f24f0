"""The CuPy backend: its pure-Python logic on any machine, and every op against the NumPy reference on a GPU.

Without a GPU (CI) the ``gpu`` tests skip with the reason ``check_available`` gives; the rest check what
needs no device: the precision switch, the cuDNN graph keys and strides, the column-major bookkeeping of
the cuBLAS calls, the im2col chunking, the layout helpers, the counter-based dropout hash, and (where CuPy
and NVRTC are installed) that every CUDA kernel compiles for float32, float64 and bfloat16.
"""
import itertools

import numpy as np
import pytest

import minivgg
from minivgg.backend import BackendUnavailableError
from minivgg.backends import cupy as cupy_backend
from minivgg.backends.cupy import (activation, conv, conv_cudnn, conv_im2col, counter_random, device, gemm,
                                   graph_capture, kernels, layout, linear, loss, lrn, optimizer, pool, precision,
                                   reductions)
from minivgg.backends.numpy import OPS

try:
    cupy_backend.check_available()
    NO_GPU_REASON = None
except BackendUnavailableError as error:
    NO_GPU_REASON = str(error)



def on_gpu(test):
    """Mark ``test`` as a GPU test (``pytest -m gpu``) that skips, saying why, where the backend cannot run."""
    return pytest.mark.gpu(pytest.mark.skipif(NO_GPU_REASON is not None, reason=f"no GPU: {NO_GPU_REASON}")(test))


@pytest.fixture
def restore_precision():
    previous = precision.get_precision()
    yield
    precision.set_precision(previous)


# --- without a GPU ------------------------------------------------------------------------------------------

def test_backend_exports_the_contract_and_its_own_switches():
    missing = [op for op in OPS if not hasattr(cupy_backend, op)]
    assert missing == []
    assert cupy_backend.name == "cupy"
    for extra in ("set_precision", "get_precision", "conv2d_relu_forward", "conv2d_relu_backward",
                  "set_convolution_route"):
        assert callable(getattr(cupy_backend, extra))


@pytest.mark.skipif(NO_GPU_REASON is None, reason="a GPU is present")
def test_choosing_cupy_without_a_gpu_says_what_is_missing():
    with pytest.raises(BackendUnavailableError) as caught:
        minivgg.set_backend("cupy")
    message = str(caught.value)
    if device.cupy is None:
        assert "CuPy is not installed" in message and "pip install" in message
    else:
        assert "no CUDA device was found" in message
    assert minivgg.get_backend().name == "numpy"


def test_precision_is_tf32_by_default_and_validated(restore_precision):
    assert precision.DEFAULT_PRECISION == "tf32"
    with pytest.raises(ValueError, match="'fp16'.*fp32.*tf32.*bf16"):
        precision.set_precision("fp16")
    with pytest.raises(TypeError, match="int 32"):
        precision.set_precision(32)
    previous = precision.get_precision()
    assert precision.set_precision("fp32") == previous
    assert precision.get_precision() == "fp32"


def test_bf16_needs_ml_dtypes(monkeypatch, restore_precision):
    monkeypatch.setattr(device, "bfloat16", None)
    with pytest.raises(ImportError, match="ml_dtypes"):
        precision.set_precision("bf16")


def test_which_products_use_tensor_cores():
    assert precision.uses_tensor_cores(np.float32, "tf32")
    assert not precision.uses_tensor_cores(np.float32, "fp32")
    assert not precision.uses_tensor_cores(np.float64, "tf32")
    assert precision.activation_dtype(np.float64, "bf16") == np.float64
    assert precision.activation_dtype(np.float32, "tf32") == np.float32
    with pytest.raises(TypeError, match="int32"):
        precision.activation_dtype(np.int32, "fp32")
    if device.bfloat16 is not None:
        assert precision.uses_tensor_cores(device.bfloat16, "fp32")
        assert precision.activation_dtype(np.float32, "bf16") == device.bfloat16


def test_tensor_core_rounding_keeps_10_or_7_mantissa_bits(rng):
    x = rng.standard_normal(10_000).astype(np.float32) * 1e3
    np.testing.assert_array_equal(precision.round_like_tensor_cores(x, "fp32"), x)
    for name, bits in (("tf32", 10), ("bf16", 7)):
        rounded = precision.round_like_tensor_cores(x, name)
        assert not (rounded.view(np.uint32) & np.uint32((1 << (23 - bits)) - 1)).any()  # dropped bits are zero
        assert np.max(np.abs(rounded - x) / np.abs(x)) <= 2.0 ** -(bits + 1)  # round to nearest
    if device.bfloat16 is not None:
        np.testing.assert_array_equal(precision.round_like_tensor_cores(x, "bf16"),
                                      x.astype(device.bfloat16).astype(np.float32))
    with pytest.raises(ValueError, match="fp8"):
        precision.round_like_tensor_cores(x, "fp8")


def test_cudnn_graph_keys_separate_what_changes_the_plan():
    base = dict(x_shape=(64, 3, 224, 224), w_shape=(64, 3, 3, 3), stride=1, padding=1, dtype="float32")
    keys = {conv_cudnn.graph_key(kind, **base, tensor_cores=tc, relu=relu)
            for kind in conv_cudnn.GRAPH_KINDS for tc in (True, False) for relu in (True, False)}
    assert len(keys) == 3 * 2 * 2 - 2 * 2  # relu only matters to fprop: dgrad and wgrad keys coincide
    bf16 = conv_cudnn.graph_key("fprop", **{**base, "dtype": "bfloat16"}, tensor_cores=False)
    assert bf16.tensor_cores  # bf16 products always run on tensor cores
    assert conv_cudnn.output_shape(bf16) == (64, 64, 224, 224)
    with pytest.raises(ValueError, match="kind"):
        conv_cudnn.graph_key("backward", **base, tensor_cores=True)
    with pytest.raises(ValueError, match="one C"):
        conv_cudnn.graph_key("fprop", **{**base, "w_shape": (64, 4, 3, 3)}, tensor_cores=True)
    with pytest.raises(ValueError, match="float64"):
        conv_cudnn.graph_key("fprop", **{**base, "dtype": "float64"}, tensor_cores=True)


def test_nhwc_strides_describe_channels_last_memory(rng):
    x_nhwc = rng.standard_normal((2, 5, 7, 3)).astype(np.float32)
    x_nchw_view = x_nhwc.transpose(0, 3, 1, 2)
    expected = tuple(s // x_nhwc.itemsize for s in x_nchw_view.strides)
    assert conv_cudnn.nhwc_strides(*x_nchw_view.shape) == expected


def test_workspace_only_grows():
    sizes = [0, 10, 5, 300, 7]
    current = 0
    for needed in sizes:
        current = conv_cudnn.grown_workspace(current, needed)
    assert current == 300


def _emulate_cublas_gemm(args, a, b):
    """Column-major cublasGemmEx on the flat memory of row-major ``a`` and ``b``: what cuBLAS would write."""
    def column_major(flat, rows, cols, ld, op):
        matrix = flat.reshape(-1, ld)[:cols, :rows].T  # element (i, j) at flat[i + j * ld]
        return matrix.T if op == gemm.CUBLAS_OP_T else matrix
    cublas_a = column_major(b.ravel(), *((args.k, args.m) if args.transa == gemm.CUBLAS_OP_T else (args.m, args.k)),
                            args.lda, args.transa)
    cublas_b = column_major(a.ravel(), *((args.n, args.k) if args.transb == gemm.CUBLAS_OP_T else (args.k, args.n)),
                            args.ldb, args.transb)
    c = cublas_a @ cublas_b  # (m, n), column-major into a row-major (n, m) output with ldc = m
    out = np.zeros(args.n * args.ldc)
    for j in range(args.n):
        out[j * args.ldc:j * args.ldc + args.m] = c[:, j]
    return out.reshape(args.n, args.ldc)


@pytest.mark.parametrize("transpose_a, transpose_b", list(itertools.product((False, True), repeat=2)))
def test_gemm_arguments_turn_row_major_products_into_column_major_calls(rng, transpose_a, transpose_b):
    m, k, n = 3, 5, 4
    a = rng.standard_normal((k, m) if transpose_a else (m, k))
    b = rng.standard_normal((n, k) if transpose_b else (k, n))
    args = gemm.gemm_arguments(a.shape, b.shape, transpose_a, transpose_b)
    expected = (a.T if transpose_a else a) @ (b.T if transpose_b else b)
    np.testing.assert_allclose(_emulate_cublas_gemm(args, a, b), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="inner dimensions"):
        gemm.gemm_arguments((m, k + 1) if not transpose_a else (k + 1, m), b.shape, transpose_a, transpose_b)


def test_gemm_compute_type_follows_the_precision():
    assert gemm.compute_type(np.float32, "tf32") == gemm.CUBLAS_COMPUTE_32F_FAST_TF32
    assert gemm.compute_type(np.float32, "fp32") == gemm.CUBLAS_COMPUTE_32F
    assert gemm.compute_type(np.float64, "tf32") == gemm.CUBLAS_COMPUTE_64F
    if device.bfloat16 is not None:
        assert gemm.compute_type(device.bfloat16, "bf16") == gemm.CUBLAS_COMPUTE_32F


def test_im2col_chunks_cover_the_batch_within_the_memory_budget():
    per_image = 224 * 224 * 576 * 4  # VGG-16's second conv, float32: 115 MB unfolded per image
    chunks = list(conv_im2col.image_chunks(64, per_image))
    assert chunks[0] == (0, 2) and chunks[-1][1] == 64
    assert all(n0 == previous[1] for n0, previous in zip((c[0] for c in chunks[1:]), chunks))
    assert max((n1 - n0) * per_image for n0, n1 in chunks) <= conv_im2col.CHUNK_BYTES
    assert list(conv_im2col.image_chunks(3, 10 * conv_im2col.CHUNK_BYTES)) == [(0, 1), (1, 2), (2, 3)]
    with pytest.raises(ValueError, match="bytes_per_image"):
        list(conv_im2col.image_chunks(3, 0))


def test_launch_sizes():
    assert kernels.blocks_for(0) == 1 and kernels.blocks_for(256) == 1 and kernels.blocks_for(257) == 2
    assert kernels.blocks_for(10 ** 12) == kernels.MAX_BLOCKS
    assert reductions.row_blocks_for(1) == 1 and reductions.row_blocks_for(64 * 224 * 224) == reductions.MAX_ROW_BLOCKS
    with pytest.raises(ValueError):
        kernels.blocks_for(-1)
    with pytest.raises(TypeError, match="int64"):
        kernels.dtype_key(np.int64)
    assert "typedef double value_t" in kernels.kernel_source("", np.float64)


def test_convolution_route_choice():
    assert conv.choose_route(np.dtype(np.float32), "auto", True) == "cudnn"
    assert conv.choose_route(np.dtype(np.float32), "auto", False) == "im2col"
    assert conv.choose_route(np.dtype(np.float64), "cudnn", True) == "im2col"  # cuDNN graphs here: fp32, bf16
    assert conv.choose_route(np.dtype(np.float32), "im2col", True) == "im2col"
    with pytest.raises(ValueError, match="fast"):
        conv.choose_route(np.dtype(np.float32), "fast", True)
    with pytest.raises(ValueError, match="fast"):
        conv.set_convolution_route("fast")


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_packed_order_finds_every_axis_order(rng, order):
    shape = (2, 3, 4, 5)
    memory = rng.standard_normal(tuple(shape[axis] for axis in order)).astype(np.float32)
    array = memory.transpose(layout.inverse_order(order))  # shape (2, 3, 4, 5), laid out in `order`
    assert array.shape == shape
    assert layout.packed_order(array.shape, array.strides, array.itemsize) == order
    flat, found, restore = layout.as_packed(array)
    assert np.shares_memory(flat, memory)  # no copy
    doubled = restore(flat * 2)
    np.testing.assert_array_equal(doubled, array * 2)
    assert doubled.strides == array.strides
    np.testing.assert_array_equal(layout.in_order(array, found), flat)


def test_packed_order_rejects_gaps_and_broadcasts(rng):
    x = rng.standard_normal((4, 6, 8)).astype(np.float32)
    assert layout.packed_order(x[:, ::2].shape, x[:, ::2].strides, 4) is None
    broadcast = np.broadcast_to(x[:1], (4, 6, 8))
    assert layout.packed_order(broadcast.shape, broadcast.strides, 4) is None
    flat, _, restore = layout.as_packed(x[:, ::2])  # copied, still round-trips
    np.testing.assert_array_equal(restore(flat), x[:, ::2])
    assert layout.packed_order((3, 1, 5), (20, 999, 4), 4) == (1, 0, 2)  # a length-1 axis has no real stride


def test_nchw_views_of_nhwc_memory_convert_for_free(rng):
    x_nhwc = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    view = layout.nchw_view(x_nhwc)
    assert view.shape == (2, 3, 4, 5)
    assert np.shares_memory(layout.to_nhwc(view), x_nhwc)
    assert not np.shares_memory(layout.to_nhwc(np.ascontiguousarray(view)), x_nhwc)


def test_counter_random_is_a_pure_function_of_seed_step_and_index():
    a = counter_random.uniform(7, 0, 100_000)
    np.testing.assert_array_equal(a, counter_random.uniform(7, 0, 100_000))
    np.testing.assert_array_equal(a[:1000], counter_random.uniform(7, 0, 1000))  # the i-th number depends on i only
    assert a.dtype == np.float32 and a.min() >= 0 and a.max() < 1
    assert abs(a.mean() - 0.5) < 0.005 and abs(a.var() - 1 / 12) < 0.002
    for other in (counter_random.uniform(8, 0, 100_000), counter_random.uniform(7, 1, 100_000)):
        assert abs(np.corrcoef(a, other)[0, 1]) < 0.02
    kept = counter_random.uniform(123, 0, 200_000) >= 0.5
    assert abs(kept.mean() - 0.5) < 0.005
    assert abs(np.corrcoef(kept[:-1], kept[1:])[0, 1]) < 0.02  # neighbours independent


def test_counter_random_validates_its_seed():
    with pytest.raises(ValueError, match="seed"):
        counter_random.CounterRandom(-1)
    with pytest.raises(ValueError, match="seed"):
        counter_random.CounterRandom(1.5)
    assert cupy_backend.random_generator(5).seed == 5
    with pytest.raises(ValueError, match="count"):
        counter_random.uniform(1, 0, 2 ** 41)


def _kernel_sources():
    modules = (activation, conv_im2col, graph_capture, linear, loss, lrn, optimizer, pool, reductions)
    for module in modules:
        for attribute in dir(module):
            source = getattr(module, attribute)
            if attribute.endswith("_SOURCE") and "__global__" in source:
                yield f"{module.__name__.rsplit('.', 1)[1]}.{attribute}", source


@pytest.mark.skipif(device.cupy is None or device.bfloat16 is None, reason="needs CuPy and ml_dtypes")
def test_every_kernel_compiles_for_every_dtype():
    from cupy.cuda import compiler
    if not hasattr(compiler, "_NVRTCProgram"):
        pytest.skip("this CuPy version has no _NVRTCProgram to compile without a device")
    failures = []
    for (name, source), dtype in itertools.product(_kernel_sources(), (np.float32, np.float64, device.bfloat16)):
        for kernel_size in ((2, 12) if "offset_t" in source else (None,)):  # int8 and int32 pooling offsets
            text = pool._source(source, kernel_size) if kernel_size else source
            program = compiler._NVRTCProgram(kernels.kernel_source(text, dtype), "kernel.cu", (), (), method="ptx")
            try:
                program.compile(("-arch=compute_90", "--std=c++17", "--device-as-default-execution-space"))
            except Exception as error:  # NVRTC missing entirely is a skip, a compile error a failure
                if "nvrtc" in type(error).__name__.lower() or "CompileException" not in type(error).__name__:
                    pytest.skip(f"NVRTC unavailable: {error}")
                failures.append(f"{name} ({np.dtype(dtype).name}): {error}")
    assert failures == []


# --- on a GPU -----------------------------------------------------------------------------------------------

TOLERANCE = {"fp32": 1e-5, "tf32": 3e-3, "bf16": 2e-2}


def relative_error(actual, expected):
    """||actual - expected|| / ||expected||, on the host in float64."""
    actual = np.asarray(device.to_host(actual)).astype(np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    return float(np.linalg.norm(actual - expected) / max(np.linalg.norm(expected), 1e-30))


def _reference():
    from minivgg.backends import numpy as reference
    return reference


def _to_device(*arrays):
    return [device.cupy.asarray(a) for a in arrays]


def _rounded(array, precision_name):
    """What the GPU computes on in ``precision_name``: bf16 mode rounds the inputs to bfloat16 first."""
    if precision_name == "bf16":
        return array.astype(device.bfloat16).astype(np.float64)
    return array.astype(np.float64)


@pytest.mark.parametrize("precision_name", ["fp32", "tf32", "bf16"])
@pytest.mark.parametrize("fused_relu", [False, True])
@pytest.mark.parametrize("route", ["cudnn", "im2col"])
@pytest.mark.parametrize("shape", [((2, 3, 9, 9), (8, 3, 3, 3), 1, 1), ((2, 16, 8, 8), (32, 16, 3, 3), 1, 1),
                                   ((3, 4, 11, 11), (6, 4, 5, 5), 2, 2), ((2, 8, 7, 7), (16, 8, 1, 1), 1, 0),
                                   ((2, 64, 14, 14), (64, 64, 7, 7), 1, 0)])
@on_gpu
def test_convolution_matches_the_reference(rng, restore_precision, precision_name, fused_relu, route, shape):
    if route == "cudnn" and conv_cudnn.frontend() is None:
        pytest.skip(conv_cudnn.frontend_status())
    x_shape, w_shape, stride, padding = shape
    x = rng.standard_normal(x_shape).astype(np.float32)
    W = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    reference = _reference()
    out_ref, cache_ref = reference.conv2d_forward(_rounded(x, precision_name), _rounded(W, precision_name),
                                                  _rounded(b, precision_name), stride, padding)
    if fused_relu:
        out_ref = np.maximum(out_ref, 0)
    dout = rng.standard_normal(out_ref.shape).astype(np.float32)

    precision.set_precision(precision_name)
    previous_route = conv.set_convolution_route(route)
    try:
        xd, Wd, bd = _to_device(x, W, b)
        forward, backward = ((cupy_backend.conv2d_relu_forward, cupy_backend.conv2d_relu_backward) if fused_relu
                             else (cupy_backend.conv2d_forward, cupy_backend.conv2d_backward))
        out, cache = forward(xd, Wd, bd, stride, padding)
        dout_device = device.cupy.asarray(dout).astype(out.dtype)
        dx, dW, db = backward(dout_device, cache)
        no_dx, dW_alone, db_alone = backward(dout_device, cache, input_gradient=False)  # a first layer's backward
    finally:
        conv.set_convolution_route(previous_route)
    # ReLU's mask is the sign of the output the op computed: an output within rounding error of zero may
    # have either sign, so the reference takes the mask from the device rather than from its own output.
    dpre = _rounded(dout, precision_name) * (device.to_host(out).astype(np.float64) > 0 if fused_relu else 1)
    dx_ref, dW_ref, db_ref = reference.conv2d_backward(dpre, cache_ref)
    assert dW.dtype == np.float32 and db.dtype == np.float32  # master-weight gradients stay float32
    tolerance = TOLERANCE[precision_name]
    assert no_dx is None
    for name, actual, expected in (("out", out, out_ref), ("dx", dx, dx_ref), ("dW", dW, dW_ref), ("db", db, db_ref),
                                   ("dW without dx", dW_alone, dW_ref), ("db without dx", db_alone, db_ref)):
        error = relative_error(actual, expected)
        assert error < tolerance, f"{name}: relative error {error:.2e} >= {tolerance:.0e}"


@pytest.mark.parametrize("precision_name", ["fp32", "tf32", "bf16"])
@on_gpu
def test_linear_matches_the_reference(rng, restore_precision, precision_name):
    x = rng.standard_normal((16, 300)).astype(np.float32)
    W = (rng.standard_normal((70, 300)) / 17).astype(np.float32)
    b = rng.standard_normal(70).astype(np.float32)
    dout = rng.standard_normal((16, 70)).astype(np.float32)
    reference = _reference()
    out_ref, cache_ref = reference.linear_forward(*(_rounded(a, precision_name) for a in (x, W, b)))
    grads_ref = reference.linear_backward(_rounded(dout, precision_name), cache_ref)
    precision.set_precision(precision_name)
    out, cache = cupy_backend.linear_forward(*_to_device(x, W, b))
    grads = cupy_backend.linear_backward(device.cupy.asarray(dout).astype(out.dtype), cache)
    for actual, expected in zip((out,) + tuple(grads), (out_ref,) + tuple(grads_ref)):
        assert relative_error(actual, expected) < TOLERANCE[precision_name]


def _distinct(rng, shape):
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 1e-2).astype(np.float32)


@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
@pytest.mark.parametrize("op", ["relu", "max_pool", "max_pool_overlapping", "lrn", "lrn_caffe", "dropout_mask",
                                "global_average_pool", "softmax_cross_entropy", "euclidean", "softmax"])
@on_gpu
def test_elementwise_and_pooling_ops_match_the_reference(rng, op, dtype_name):
    cp, reference = device.cupy, _reference()
    tolerance = TOLERANCE["fp32"] if dtype_name == "float32" else TOLERANCE["bf16"]
    dtype = np.float32 if dtype_name == "float32" else device.bfloat16

    def both(array):  # the same values for the reference (float64) and the device (dtype)
        rounded = array.astype(dtype)
        return rounded.astype(np.float64), cp.asarray(rounded)

    x_host, x = both(_distinct(rng, (2, 6, 8, 8)) if "pool" in op else rng.standard_normal((2, 6, 8, 8)))
    if op in ("relu", "max_pool", "max_pool_overlapping", "lrn", "lrn_caffe", "global_average_pool", "dropout_mask"):
        arguments = {"relu": (), "max_pool": (2, 2), "max_pool_overlapping": (3, 2), "lrn": (5, 1e-2, 0.75, 2.0),
                     "lrn_caffe": (4, 1e-1, 0.75, 1.0, True), "global_average_pool": (), "dropout_mask": ()}[op]
        name = {"max_pool_overlapping": "max_pool2d", "max_pool": "max_pool2d", "lrn_caffe": "lrn",
                "dropout_mask": "dropout"}.get(op, op)
        if op == "dropout_mask":
            mask = rng.random(x.shape) >= 0.3
            arguments = (0.3, None, mask)
            device_arguments = (0.3, None, cp.asarray(mask))
        else:
            device_arguments = arguments
        out_ref, cache_ref = getattr(reference, f"{name}_forward")(x_host, *arguments)
        out, cache = getattr(cupy_backend, f"{name}_forward")(x, *device_arguments)
        dout_host, dout = both(rng.standard_normal(out_ref.shape))
        dx_ref = getattr(reference, f"{name}_backward")(dout_host, cache_ref)
        dx = getattr(cupy_backend, f"{name}_backward")(dout, cache)
        assert relative_error(out, out_ref) < tolerance
        assert relative_error(dx, dx_ref) < tolerance
        assert dx.shape == x.shape
    elif op == "softmax_cross_entropy":
        scores_host, scores = both(rng.standard_normal((5, 1000)) * 4)
        labels = rng.integers(0, 1000, 5)
        loss_ref, cache_ref = reference.softmax_cross_entropy_forward(scores_host, labels)
        loss_value, cache = cupy_backend.softmax_cross_entropy_forward(scores, cp.asarray(labels))
        assert relative_error(loss_value, loss_ref) < TOLERANCE["fp32"]  # computed in float32 either way
        assert relative_error(cupy_backend.softmax_cross_entropy_backward(0.5, cache),
                              reference.softmax_cross_entropy_backward(0.5, cache_ref)) < tolerance
    elif op == "euclidean":
        if dtype_name == "bfloat16":
            pytest.skip("the Euclidean loss is reused from the reference and runs in the inputs' dtype")
        p_host, p = both(rng.standard_normal((4, 4)))
        t_host, t = both(rng.standard_normal((4, 4)))
        loss_ref, cache_ref = reference.euclidean_loss_forward(p_host, t_host)
        loss_value, cache = cupy_backend.euclidean_loss_forward(p, t)
        assert relative_error(loss_value, loss_ref) < tolerance
        assert relative_error(cupy_backend.euclidean_loss_backward(1.0, cache),
                              reference.euclidean_loss_backward(1.0, cache_ref)) < tolerance
    else:
        if dtype_name == "bfloat16":
            pytest.skip("softmax is reused from the reference and runs in the inputs' dtype")
        s_host, s = both(rng.standard_normal((3, 10)))
        assert relative_error(cupy_backend.softmax(s), reference.softmax(s_host)) < tolerance


@on_gpu
def test_dropout_masks_are_the_host_counter_hash(rng):
    cp = device.cupy
    x = cp.asarray(rng.standard_normal((64, 4096)).astype(np.float32))
    out, cache = cupy_backend.dropout_forward(x, 0.5, cupy_backend.random_generator(99))
    kept_host = counter_random.uniform(99, 0, x.size).reshape(x.shape) >= 0.5
    np.testing.assert_array_equal(device.to_host(out) != 0, kept_host & (device.to_host(x) != 0))
    np.testing.assert_allclose(device.to_host(out), np.where(kept_host, device.to_host(x) * 2, 0), rtol=1e-7)
    dx = cupy_backend.dropout_backward(cp.ones_like(x), cache)
    np.testing.assert_array_equal(device.to_host(dx), np.where(kept_host, 2.0, 0.0))


@on_gpu
def test_sgd_update_matches_the_reference(rng):
    param, grad, velocity = (rng.standard_normal((33, 7)).astype(np.float32) for _ in range(3))
    expected_param, expected_velocity = param.copy(), velocity.copy()
    _reference().sgd_momentum_update(expected_param, grad, expected_velocity, 0.01, 0.9, 5e-4)
    p, g, v = _to_device(param, grad, velocity)
    cupy_backend.sgd_momentum_update(p, g, v, 0.01, 0.9, 5e-4)
    assert relative_error(p, expected_param) < 1e-6 and relative_error(v, expected_velocity) < 1e-6


@on_gpu
def test_float64_runs_in_float64(rng):
    x, W, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out_ref, _ = _reference().conv2d_forward(x, W, b, 1, 1)
    out, _ = cupy_backend.conv2d_forward(*_to_device(x, W, b), 1, 1)
    assert out.dtype == np.float64 and relative_error(out, out_ref) < 1e-12


def _small_vgg(seed):
    from minivgg.models import vgg
    return vgg("A", num_classes=10, input_size=32, width_multiplier=0.125, fc_width=32, dropout=0.0, seed=seed)


def _train(backend_name, steps, images, labels, precision_name="fp32"):
    from minivgg.layers import SoftmaxCrossEntropyLoss
    from minivgg.optim import SGD
    minivgg.set_backend(backend_name)
    if backend_name == "cupy":
        precision.set_precision(precision_name)
    model, loss_layer = _small_vgg(seed=3).to_backend(), SoftmaxCrossEntropyLoss()
    optimiser, losses = SGD(model), []
    for _ in range(steps):
        losses.append(loss_layer.forward(model.forward(minivgg.asarray(images)), labels))
        model.backward(loss_layer.backward())
        optimiser.step(0.01)
    weights = {name: np.asarray(minivgg.to_host(layer.params[key])) for name, layer, key in model.named_parameters()}
    return losses, weights


@on_gpu
def test_a_few_training_steps_agree_with_numpy(rng, restore_precision):
    images = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, 8)
    losses_ref, weights_ref = _train("numpy", 4, images, labels)
    losses, weights = _train("cupy", 4, images, labels, "fp32")
    np.testing.assert_allclose(losses, losses_ref, rtol=1e-4)
    for name, expected in weights_ref.items():
        assert relative_error(weights[name], expected) < 1e-4, name


@on_gpu
def test_a_captured_step_replays_the_eager_step(rng, restore_precision):
    from minivgg.optim import SGD
    cp = device.cupy
    minivgg.set_backend("cupy")
    precision.set_precision("fp32")
    images = cp.asarray(rng.standard_normal((8, 3, 32, 32)).astype(np.float32))
    labels = cp.asarray(rng.integers(0, 10, 8))

    def make_step(model, optimiser):
        def step():
            scores = model.forward(images)
            loss_value, cache = cupy_backend.softmax_cross_entropy_forward(scores, labels)
            model.backward(cupy_backend.softmax_cross_entropy_backward(1.0, cache))
            optimiser.step(0.01)
            return loss_value
        return step

    eager_model = _small_vgg(seed=5).to_backend()
    eager_step = make_step(eager_model, SGD(eager_model))
    eager_losses = [float(eager_step()) for _ in range(5)]
    captured_model = _small_vgg(seed=5).to_backend()
    captured = graph_capture.CapturedStep(make_step(captured_model, SGD(captured_model)), warmup_steps=2)
    losses = []  # the warm-up ran steps 1 and 2; the capture recorded step 3 without running it
    for _ in range(3):
        captured.replay()
        captured.synchronize()  # the replay stream does not wait for, nor is waited on by, the default one
        losses.append(float(captured.outputs))
    np.testing.assert_allclose(losses, eager_losses[2:5], rtol=1e-5)


@pytest.mark.slow
@on_gpu
def test_a_full_vgg16_training_step_runs_at_batch_64(rng):
    from minivgg.layers import SoftmaxCrossEntropyLoss
    from minivgg.models import vgg
    from minivgg.optim import SGD
    minivgg.set_backend("cupy")
    model, loss_layer = vgg("D", num_classes=1000, seed=0), SoftmaxCrossEntropyLoss()
    images = minivgg.asarray(rng.standard_normal((64, 3, 224, 224)).astype(np.float32))
    loss_value = loss_layer.forward(model.forward(images), rng.integers(0, 1000, 64))
    model.backward(loss_layer.backward())
    SGD(model).step(0.01)
    assert np.isfinite(loss_value) and abs(loss_value - np.log(1000)) < 1.0
    assert all(layer.grads[key].shape == layer.params[key].shape for _, layer, key in model.named_parameters())
