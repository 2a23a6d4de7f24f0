"""The Numba-CUDA backend against the NumPy reference, kernel by kernel.

Without a GPU (CI) the kernels run in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``): one Python thread
per CUDA thread, on tiny shapes chosen to cross tile edges (the simulator uses small tiles, see
``backends/numba/conv.py``): sizes that are not multiples of a tile, padding, stride 2, 1x1 and 5x5 kernels,
each of the three tilings in each convolution kernel. The simulator must be switched on before Numba is first
imported, and other test modules import Numba without it; so the simulator checks run in a child process,
this file run as a script (``simulator_report`` below), and each test reads its part of the child's report.

On a GPU (``pytest -m gpu``): VGG-16's layer shapes against the reference (float32, relative error below
1e-5), and a few training steps of a small VGG agreeing with the NumPy run.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import minivgg
from minivgg.gradcheck import relative_error

# Each convolution case: (N, C, H, W, filters, kernel, stride, padding). The simulator's tilings are 2, 4 and 8
# columns wide (8 rows, depth 4): the comments say which tiling each product gets (forward: F columns, data
# gradient: C, weight gradient: F).
CONV_CASES = {
    "3x3-pad1-5x7": (2, 3, 5, 7, 5, 3, 1, 1),      # 70 pixels = 8 tiles + 6; F 5 -> 8-wide, C 3 -> 4-wide
    "3x3-stride2-pad1": (1, 4, 7, 6, 3, 3, 2, 1),  # stride 2 over padding; every product 4-wide
    "1x1": (1, 5, 4, 5, 2, 1, 1, 0),               # configuration C's 1x1; F 2 -> 2-wide, C 5 -> 8-wide
    "5x5-pad2": (1, 2, 6, 5, 4, 5, 1, 2),          # Sect. 4.1's shallow net; C 2 -> 2-wide data gradient
    "3x3-stride2-nopad": (2, 3, 6, 5, 10, 3, 2, 0),  # last row and column unread; F 10 -> two 8-wide tiles
}
# The same kernels with the GPU's tilings (256 threads a block: slow in the simulator, so two small cases, float32),
# so that CI checks the index arithmetic the GPU runs: F 20 -> the 64-wide tile, C 9 -> the 16-wide one with two
# channel steps per tap; F 130 -> two 128-wide tiles.
GPU_TILING_CASES = {
    "gpu-tilings-3x3": (1, 9, 5, 6, 20, 3, 1, 1),
    "gpu-tilings-1x1-stride2": (1, 3, 5, 5, 130, 1, 2, 0),
}
POOL_CASES = {"2x2-stride2": (2, 2), "3x3-stride2": (3, 2), "3x3-stride1": (3, 1)}
LRN_CASES = {"size5-alexnet": (5, False), "size5-caffe": (5, True), "size4": (4, False)}
DTYPES = ("float32", "float64")
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}

CHILD_TIMEOUT_S = 600


def _part(report, key):
    if key not in report:
        pytest.fail(f"the simulator run did not report {key!r}; it reported {sorted(report)}")
    return report[key]


@pytest.fixture(scope="module")
def simulator_report():
    """Run this file as a script under the CUDA simulator; its report maps a check's name to numbers."""
    pytest.importorskip("numba")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    child = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True,
                           timeout=CHILD_TIMEOUT_S)
    if child.returncode != 0:
        pytest.fail(f"the simulator checks failed (exit {child.returncode}):\n{child.stdout[-3000:]}\n"
                    f"{child.stderr[-6000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


# --- Tests that read the simulator's report -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_convolution_kernels_match_the_reference(simulator_report, case, dtype):
    """Forward, data gradient, weight gradient and bias gradient: the three implicit GEMMs and the column sum;
    and the backward of a first layer, which skips the data gradient."""
    errors = _part(simulator_report, f"conv {case} {dtype}")
    assert set(errors) == {"out", "dx", "dW", "db", "dx skipped", "dW without dx", "db without dx"}
    assert max(errors.values()) < TOLERANCE[dtype], errors


@pytest.mark.parametrize("case", GPU_TILING_CASES)
def test_convolution_kernels_with_the_gpu_tilings_match_the_reference(simulator_report, case):
    errors = _part(simulator_report, f"conv {case} float32")
    assert set(errors) == {"out", "dx", "dW", "db", "dx skipped", "dW without dx", "db without dx"}
    assert max(errors.values()) < TOLERANCE["float32"], errors


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_kernels_match_the_reference(simulator_report, case, dtype):
    """Odd sizes drop the last row and column; overlapping windows (stride 1, 3x3 stride 2) add gradients."""
    result = _part(simulator_report, f"pool {case} {dtype}")
    assert result["out"] == 0.0 and result["same_winners"], result
    assert result["dx"] < TOLERANCE[dtype], result


def test_max_pool_tie_goes_to_the_first_maximum(simulator_report):
    """On a constant input every window ties: the whole gradient goes to its top-left pixel, as in Caffe."""
    result = _part(simulator_report, "pool ties")
    assert result["dx_equal"] and result["gradient_on_top_left_only"], result


def test_relu_keeps_the_memory_layout_and_matches_the_reference(simulator_report):
    result = _part(simulator_report, "relu")
    assert result["out"] == 0.0 and result["dx"] == 0.0, result
    assert result["output_strides_as_input"] and result["dx_strides_as_input"], result


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", LRN_CASES)
def test_lrn_kernels_match_the_reference(simulator_report, case, dtype):
    """Size 4 has a lopsided window, so the backward's turned-around window differs from the forward's."""
    errors = _part(simulator_report, f"lrn {case} {dtype}")
    assert max(errors.values()) < TOLERANCE[dtype], errors


def test_dropout_with_a_given_mask_is_the_reference_exactly(simulator_report):
    result = _part(simulator_report, "dropout fixed mask")
    assert result["out_equal"] and result["dx_equal"], result


def test_dropout_masks_drawn_in_the_kernel_keep_the_right_fraction(simulator_report):
    """4000 units at p = 0.3: the kept fraction is within 4 standard deviations (0.029) of 0.7."""
    result = _part(simulator_report, "dropout drawn")
    assert abs(result["kept_fraction"] - 0.7) < 4 * np.sqrt(0.7 * 0.3 / 4000), result
    assert result["values_are_zero_or_scaled"] and result["dx_uses_the_same_mask"], result


def test_dropout_masks_follow_the_seed(simulator_report):
    """One seed, one mask; another seed, or the next draw of one generator, agrees on about half the units."""
    result = _part(simulator_report, "dropout drawn")
    assert result["same_seed_same_mask"], result
    for agreement in (result["other_seed_agreement"], result["next_draw_agreement"]):
        assert 0.5 < agreement < 0.66, result  # independent masks at p = 0.3 agree on 0.7^2 + 0.3^2 = 58%


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_loss_kernels_match_the_reference(simulator_report, dtype):
    """Scores up to 1000 (exp would overflow without the shift by the row maximum)."""
    errors = _part(simulator_report, f"softmax {dtype}")
    assert max(errors.values()) < TOLERANCE[dtype], errors


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_update_kernel_matches_the_reference(simulator_report, dtype):
    errors = _part(simulator_report, f"sgd {dtype}")
    assert max(errors.values()) < TOLERANCE[dtype], errors


def test_a_small_net_trains_through_the_layers_as_on_numpy(simulator_report):
    """Conv, ReLU, LRN, pool, flatten, linear, dropout (fixed mask), soft-max loss and an SGD step, chosen with
    ``set_backend("numba")``: loss, every gradient and every updated parameter as on the NumPy backend."""
    errors = _part(simulator_report, "layers")
    assert len(errors) > 10 and max(errors.values()) < 1e-5, errors


def test_threads_of_a_simulated_block_share_one_shared_array(simulator_report):
    """The simulator's own hand-out races under load (see ``backends/numba/arrays.py``); the backend locks it."""
    assert _part(simulator_report, "shared arrays") == {"split_blocks": 0, "threads": 64, "dtype": "float32",
                                                        "shape": [4, 4]}


def test_bad_inputs_are_refused_with_a_clear_message(simulator_report):
    raised = _part(simulator_report, "errors")
    assert raised["mixed dtypes"] == ["ValueError", True], raised
    assert raised["numpy generator"] == ["TypeError", True], raised
    assert raised["non-contiguous parameter"] == ["ValueError", True], raised
    assert raised["non-boolean mask"] == ["TypeError", True], raised


# --- Tests that need no kernels -----------------------------------------------------------------------------

def test_importing_the_backend_needs_neither_gpu_nor_cupy():
    pytest.importorskip("numba")
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    code = ("import sys; import minivgg.backends.numba as backend; "
            "print(backend.name, 'cupy' in sys.modules, backend.SIMULATOR)")
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["numba", "False", "False"]


def test_choosing_it_without_gpu_or_simulator_says_how():
    numba_cuda = pytest.importorskip("numba.cuda")
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or numba_cuda.is_available():
        pytest.skip("the numba backend is usable in this process")
    with pytest.raises(minivgg.BackendUnavailableError, match="NUMBA_ENABLE_CUDASIM"):
        minivgg.set_backend("numba")


# --- On a GPU -----------------------------------------------------------------------------------------------

# Configuration D's distinct convolutions (Table 1): (in channels, out channels, input side at 224).
VGG16_CONVOLUTIONS = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56),
                      (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 14)]


@pytest.fixture(scope="module")
def gpu_backend():
    """The numba backend module on a real GPU; skips without one."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        pytest.skip("NUMBA_ENABLE_CUDASIM=1: these checks need a real GPU, not the simulator")
    numba_cuda = pytest.importorskip("numba.cuda")
    if not numba_cuda.is_available():
        pytest.skip("no CUDA GPU visible to Numba")
    pytest.importorskip("cupy")
    from minivgg.backends import numba as backend
    return backend


@pytest.mark.gpu
@pytest.mark.parametrize("channels, filters, size", VGG16_CONVOLUTIONS)
def test_vgg16_convolutions_match_the_reference_on_gpu(gpu_backend, rng, channels, filters, size):
    errors = compare_convolution(gpu_backend, (2, channels, size, size, filters, 3, 1, 1), np.float32, rng)
    assert max(errors.values()) < 1e-5, errors


@pytest.mark.gpu
def test_vgg16_pool_relu_lrn_dropout_loss_and_sgd_match_the_reference_on_gpu(gpu_backend, rng):
    """Every other kernel at the size VGG-16 (and A-LRN) gives it, batch 2 (loss and FC: batch 64)."""
    x = rng.standard_normal((2, 64, 224, 224), dtype=np.float32)
    errors = {f"pool {k}": v for k, v in compare_pool(gpu_backend, x, 2, 2, rng).items() if k in ("out", "dx")}
    errors.update({f"relu {k}": v for k, v in compare_relu(gpu_backend, x, rng).items() if k in ("out", "dx")})
    errors.update({f"lrn {k}": v for k, v in compare_lrn(gpu_backend, x[:, :, :56], 5, True, rng).items()})
    errors.update({f"softmax {k}": v for k, v in compare_softmax(gpu_backend, (64, 1000), np.float32, rng).items()})
    errors.update({f"sgd {k}": v for k, v in compare_sgd(gpu_backend, (4096, 4096), np.float32, rng).items()})
    mask_check = compare_dropout_with_mask(gpu_backend, (64, 4096), rng)
    assert mask_check["out_equal"] and mask_check["dx_equal"], mask_check
    assert max(errors.values()) < 1e-5, errors


@pytest.mark.gpu
def test_small_vgg_trains_like_numpy_on_gpu(gpu_backend):
    """Three SGD steps of a narrow A-LRN (every kind of layer but dropout, whose masks differ by backend)."""
    numpy_losses, numpy_params = train_small_vgg("numpy")
    numba_losses, numba_params = train_small_vgg("numba")
    np.testing.assert_allclose(numba_losses, numpy_losses, rtol=1e-4)
    errors = {name: relative_error(numba_params[name], numpy_params[name]) for name in numpy_params}
    assert max(errors.values()) < 1e-4, errors


# --- The comparisons, shared by the simulator's child process and the GPU tests -----------------------------

def _host(backend, array):
    return np.asarray(backend.to_host(array))


def _nhwc_view(array):
    """The same values as an NCHW-shaped view of NHWC memory, as this project's layers hand them on."""
    return np.ascontiguousarray(array.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _on(backend, array):
    """A host array on ``backend``'s device, keeping its memory layout (``asarray`` on CuPy would too)."""
    if array.ndim == 4 and not array.flags.c_contiguous:
        return backend.asarray(np.ascontiguousarray(array.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    return backend.asarray(array)


def compare_convolution(backend, case, dtype, rng, nhwc_input=False):
    """Relative errors of the backend's conv2d_forward/backward against the reference on one random case."""
    from minivgg.backends import numpy as reference
    n, c, h, w, f, k, stride, padding = case
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    W = rng.standard_normal((f, c, k, k)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    x_in = _nhwc_view(x) if nhwc_input else x
    out, cache = backend.conv2d_forward(_on(backend, x_in), backend.asarray(W), backend.asarray(b), stride, padding)
    expected, expected_cache = reference.conv2d_forward(x, W, b, stride, padding)
    dout = rng.standard_normal(expected.shape).astype(dtype)
    gradients = backend.conv2d_backward(_on(backend, dout), cache)
    expected_gradients = reference.conv2d_backward(dout, expected_cache)
    errors = {"out": relative_error(_host(backend, out), expected)}
    for name, got, want in zip(("dx", "dW", "db"), gradients, expected_gradients):
        errors[name] = relative_error(_host(backend, got), want)
    no_dx, dW, db = backend.conv2d_backward(_on(backend, dout), cache, input_gradient=False)  # a first layer's
    errors["dx skipped"] = 0.0 if no_dx is None else float("inf")
    errors["dW without dx"] = relative_error(_host(backend, dW), expected_gradients[1])
    errors["db without dx"] = relative_error(_host(backend, db), expected_gradients[2])
    return errors


def compare_pool(backend, x, kernel_size, stride, rng):
    from minivgg.backends import numpy as reference
    out, cache = backend.max_pool2d_forward(_on(backend, x), kernel_size, stride)
    expected, expected_cache = reference.max_pool2d_forward(x, kernel_size, stride)
    dout = rng.standard_normal(expected.shape).astype(x.dtype)
    dx = backend.max_pool2d_backward(_on(backend, dout), cache)
    return {"out": relative_error(_host(backend, out), expected),
            "dx": relative_error(_host(backend, dx), reference.max_pool2d_backward(dout, expected_cache)),
            "same_winners": bool(np.array_equal(_host(backend, cache.argmax), expected_cache.argmax))}


def compare_relu(backend, x, rng):
    from minivgg.backends import numpy as reference
    x_device = _on(backend, x)
    out, cache = backend.relu_forward(x_device)
    expected, expected_cache = reference.relu_forward(x)
    dout = np.ascontiguousarray(rng.standard_normal(x.shape).astype(x.dtype))  # NCHW while x is NHWC memory
    dx = backend.relu_backward(_on(backend, dout), cache)
    return {"out": relative_error(_host(backend, out), expected),
            "dx": relative_error(_host(backend, dx), reference.relu_backward(dout, expected_cache)),
            "output_strides_as_input": out.strides == x_device.strides,
            "dx_strides_as_input": dx.strides == x_device.strides}


def compare_lrn(backend, x, size, alpha_divided_by_size, rng):
    from minivgg.backends import numpy as reference
    options = dict(size=size, alpha=1e-2, beta=0.75, k=2.0, alpha_divided_by_size=alpha_divided_by_size)
    out, cache = backend.lrn_forward(_on(backend, x), **options)
    expected, expected_cache = reference.lrn_forward(x, **options)
    dout = rng.standard_normal(x.shape).astype(x.dtype)
    dx = backend.lrn_backward(_on(backend, dout), cache)
    return {"out": relative_error(_host(backend, out), expected),
            "dx": relative_error(_host(backend, dx), reference.lrn_backward(dout, expected_cache))}


def compare_dropout_with_mask(backend, shape, rng):
    from minivgg.backends import numpy as reference
    x = rng.standard_normal(shape).astype(np.float32)
    mask = rng.random(shape) >= 0.3
    out, cache = backend.dropout_forward(backend.asarray(x), 0.3, backend.random_generator(0), mask=mask)
    expected, expected_cache = reference.dropout_forward(x, 0.3, None, mask=mask)
    dout = rng.standard_normal(shape).astype(np.float32)
    dx = backend.dropout_backward(backend.asarray(dout), cache)
    return {"out_equal": bool(np.array_equal(_host(backend, out), expected)),
            "dx_equal": bool(np.array_equal(_host(backend, dx), reference.dropout_backward(dout, expected_cache)))}


def compare_softmax(backend, shape, dtype, rng):
    from minivgg.backends import numpy as reference
    scores = (rng.standard_normal(shape) * 10).astype(dtype)
    scores[0, 0] = 1000.0
    labels = rng.integers(0, shape[1], shape[0])
    loss, cache = backend.softmax_cross_entropy_forward(backend.asarray(scores), backend.asarray(labels))
    expected_loss, expected_cache = reference.softmax_cross_entropy_forward(scores, labels)
    dscores = backend.softmax_cross_entropy_backward(0.5, cache)
    return {"probabilities": relative_error(_host(backend, backend.softmax(backend.asarray(scores))),
                                            reference.softmax(scores)),
            "loss": relative_error(_host(backend, loss), expected_loss),
            "dscores": relative_error(_host(backend, dscores),
                                      reference.softmax_cross_entropy_backward(0.5, expected_cache))}


def compare_sgd(backend, shape, dtype, rng):
    from minivgg.backends import numpy as reference
    param, grad, velocity = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    param_device, velocity_device = backend.asarray(param), backend.asarray(velocity)
    backend.sgd_momentum_update(param_device, backend.asarray(grad), velocity_device, 0.01, 0.9, 5e-4)
    reference.sgd_momentum_update(param, grad, velocity, 0.01, 0.9, 5e-4)
    return {"param": relative_error(_host(backend, param_device), param),
            "velocity": relative_error(_host(backend, velocity_device), velocity)}


def train_small_vgg(backend_name, steps=3):
    """Losses and final parameters (host arrays) of ``steps`` SGD steps of a narrow A-LRN on ``backend_name``."""
    from minivgg.layers import SoftmaxCrossEntropyLoss
    from minivgg.models import vgg
    from minivgg.optim import SGD
    minivgg.set_backend(backend_name)
    model = vgg("A-LRN", num_classes=10, input_size=32, width_multiplier=0.25, fc_width=64, dropout=0.0,
                weight_init="glorot", seed=0)
    data = np.random.default_rng(1)
    images = minivgg.asarray(data.standard_normal((8, 3, 32, 32)), dtype=np.float32)
    labels = data.integers(0, 10, 8)
    optimizer, loss_layer, losses = SGD(model), SoftmaxCrossEntropyLoss(), []
    for _ in range(steps):
        losses.append(loss_layer.forward(model.forward(images), labels))
        model.backward(loss_layer.backward())
        optimizer.step(0.01)
    return losses, {name: np.asarray(minivgg.to_host(layer.params[key]))
                    for name, layer, key in model.named_parameters()}


# --- The child process: every kernel under the simulator -----------------------------------------------------

def _small_net_errors(rng):
    """Train one SGD step of a tiny net on both backends; relative errors of loss, gradients and parameters."""
    from minivgg import layers
    from minivgg.optim import SGD
    x = rng.standard_normal((2, 3, 6, 5))
    labels = np.array([1, 3])
    mask = rng.random((2, 6)) >= 0.5
    results = {}
    for backend_name in ("numpy", "numba"):
        minivgg.set_backend(backend_name)
        init = np.random.default_rng(5)
        dropout = layers.Dropout(0.5, seed=0)
        dropout.fixed_mask = minivgg.asarray(mask)
        net = layers.Sequential(
            layers.Conv2d(3, 4, 3, padding=1, rng=init, weight_init="glorot"), layers.ReLU(),
            layers.LocalResponseNorm(3, alpha=0.1), layers.MaxPool2d(2, 2),
            layers.Conv2d(4, 5, 1, rng=init, weight_init="glorot"), layers.ReLU(), layers.Flatten(),
            layers.Linear(5 * 3 * 2, 6, rng=init, weight_init="glorot"), layers.ReLU(), dropout,
            layers.Linear(6, 4, rng=init, weight_init="glorot"))
        loss_layer, optimizer = layers.SoftmaxCrossEntropyLoss(), SGD(net)
        loss = loss_layer.forward(net.forward(minivgg.asarray(x, dtype=np.float32)), labels)
        dx = net.backward(loss_layer.backward())
        gradients = {name: minivgg.to_host(layer.grads[key]) for name, layer, key in net.named_parameters()}
        optimizer.step(0.1)
        parameters = {name: minivgg.to_host(layer.params[key]) for name, layer, key in net.named_parameters()}
        results[backend_name] = (loss, minivgg.to_host(dx), gradients, parameters)
    minivgg.set_backend("numpy")
    (loss, dx, gradients, parameters), (loss_ref, dx_ref, gradients_ref, parameters_ref) = (
        results["numba"], results["numpy"])
    errors = {"loss": abs(loss - loss_ref) / abs(loss_ref), "dx": relative_error(dx, dx_ref)}
    errors.update({f"grad {name}": relative_error(gradients[name], gradients_ref[name]) for name in gradients_ref})
    errors.update({f"param {name}": relative_error(parameters[name], parameters_ref[name])
                   for name in parameters_ref})
    return errors


def _refusals(backend):
    """Each bad call: [exception type, whether the message names the op or argument at fault]."""
    x32, x64 = np.ones((1, 2, 3, 3), np.float32), np.ones((1, 2, 3, 3), np.float64)
    calls = {
        "mixed dtypes": (lambda: backend.conv2d_forward(x32, np.ones((2, 2, 3, 3)), np.ones(2), 1, 1),
                         "conv2d_forward"),
        "numpy generator": (lambda: backend.dropout_forward(x32, 0.5, np.random.default_rng(0)), "random_generator"),
        "non-contiguous parameter": (lambda: backend.sgd_momentum_update(x64.transpose(0, 2, 3, 1), x64.transpose(
            0, 2, 3, 1), np.zeros((1, 3, 3, 2)), 0.1, 0.9, 0.0), "param"),
        "non-boolean mask": (lambda: backend.dropout_forward(x32, 0.5, None, mask=np.ones(x32.shape)), "boolean"),
    }
    raised = {}
    for name, (call, expected_word) in calls.items():
        try:
            call()
            raised[name] = ["nothing", False]
        except Exception as error:  # the test asserts which type
            raised[name] = [type(error).__name__, expected_word in str(error)]
    return raised


def simulator_checks():
    """Every comparison the simulator tests read, as one dict (printed as JSON by ``__main__``)."""
    from minivgg.backends import numba as backend
    if not backend.SIMULATOR:
        raise RuntimeError("run with NUMBA_ENABLE_CUDASIM=1: these checks are sized for the CUDA simulator")
    backend.speed_up_simulator()
    rng = np.random.default_rng(20141409)
    report = {}
    for case, shape in CONV_CASES.items():
        for dtype in DTYPES:
            # float32 inputs arrive as NCHW views of NHWC memory (as between layers), float64 ones plainly NCHW.
            report[f"conv {case} {dtype}"] = compare_convolution(backend, shape, dtype, rng,
                                                                 nhwc_input=dtype == "float32")
    from minivgg.backends.numba import conv
    simulator_tilings, conv.TILINGS = conv.TILINGS, conv.GPU_TILINGS
    try:
        for case, shape in GPU_TILING_CASES.items():
            report[f"conv {case} float32"] = compare_convolution(backend, shape, "float32", rng, nhwc_input=True)
    finally:
        conv.TILINGS = simulator_tilings
    for case, (kernel_size, stride) in POOL_CASES.items():
        for dtype in DTYPES:
            x = _nhwc_view(rng.standard_normal((2, 3, 5, 7)).astype(dtype))
            report[f"pool {case} {dtype}"] = compare_pool(backend, x, kernel_size, stride, rng)
    from minivgg.backends import numpy as reference
    flat = np.zeros((1, 2, 4, 4), np.float32)
    _, cache = backend.max_pool2d_forward(flat, 2, 2)
    dx = _host(backend, backend.max_pool2d_backward(np.ones((1, 2, 2, 2), np.float32), cache))
    _, expected_cache = reference.max_pool2d_forward(flat, 2, 2)
    report["pool ties"] = {
        "dx_equal": bool(np.array_equal(dx, reference.max_pool2d_backward(np.ones((1, 2, 2, 2), np.float32),
                                                                          expected_cache))),
        "gradient_on_top_left_only": bool(dx[:, :, ::2, ::2].all() and dx.sum() == dx[:, :, ::2, ::2].sum())}
    report["relu"] = compare_relu(backend, _nhwc_view(rng.standard_normal((2, 3, 4, 5)).astype(np.float32)), rng)
    for case, (size, divided) in LRN_CASES.items():
        for dtype in DTYPES:
            x = (3 * rng.standard_normal((2, 6, 3, 2))).astype(dtype)
            report[f"lrn {case} {dtype}"] = compare_lrn(backend, x, size, divided, rng)
    report["dropout fixed mask"] = compare_dropout_with_mask(backend, (4, 9), rng)
    ones = np.ones((40, 100), np.float32)
    out, cache = backend.dropout_forward(ones, 0.3, backend.random_generator(7))
    again, _ = backend.dropout_forward(ones, 0.3, backend.random_generator(7))
    other, _ = backend.dropout_forward(ones, 0.3, backend.random_generator(8))
    generator = backend.random_generator(7)
    first, _ = backend.dropout_forward(ones, 0.3, generator)
    second, _ = backend.dropout_forward(ones, 0.3, generator)
    dx = backend.dropout_backward(2 * ones, cache)
    scale = np.float32(1 / 0.7)
    report["dropout drawn"] = {
        "kept_fraction": float((out > 0).mean()),
        "values_are_zero_or_scaled": bool(np.isin(out, [0, scale]).all()),
        "dx_uses_the_same_mask": bool(np.array_equal(dx, 2 * out)),
        "same_seed_same_mask": bool(np.array_equal(out, again) and np.array_equal(out, first)),
        "other_seed_agreement": float(((out > 0) == (other > 0)).mean()),
        "next_draw_agreement": float(((first > 0) == (second > 0)).mean())}
    for dtype in DTYPES:
        report[f"softmax {dtype}"] = compare_softmax(backend, (5, 11), dtype, rng)
        report[f"sgd {dtype}"] = compare_sgd(backend, (3, 7), dtype, rng)
    report["layers"] = _small_net_errors(rng)
    report["errors"] = _refusals(backend)
    report["shared arrays"] = _shared_array_handout()
    return report


def _shared_array_handout(threads=64, rounds=50):
    """In how many of 50 blocks of 64 simulated threads one ``cuda.shared.array`` line handed out several arrays.

    All threads of a block start at once and the interpreter switches threads every microsecond, so that without
    the backend's lock they race on the simulator's table (the unlocked hand-out failed 5 of 50 blocks so)."""
    import threading
    from numba.cuda.simulator import kernelapi
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    split_blocks, handed_out = 0, []
    try:
        for _ in range(rounds):
            block_shared = kernelapi.FakeCUDAShared(0)
            start = threading.Barrier(threads)
            handed_out = []

            def one_thread():
                start.wait()
                handed_out.append(block_shared.array((4, 4), np.float32))

            workers = [threading.Thread(target=one_thread) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            split_blocks += len({id(array) for array in handed_out}) > 1
    finally:
        sys.setswitchinterval(switch_interval)
    return {"split_blocks": split_blocks, "threads": len(handed_out), "dtype": str(handed_out[0].dtype),
            "shape": list(handed_out[0].shape)}


if __name__ == "__main__":
    print(json.dumps(simulator_checks()))
