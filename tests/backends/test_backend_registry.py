"""The registry, and the backend contract: every registered backend exports the reference's ops with the
reference's signatures and defaults, declares its optional capabilities, and computes every op it does not
override with the reference's own function; so a missing op fails here rather than in a user's training run,
and an op added to the reference appears on every backend at once."""
import importlib
import os
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

import minivgg
from minivgg import backend as registry
from minivgg.backends import contract
from minivgg.backends import numpy as numpy_backend
from minivgg.backends import reference
from minivgg.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, SoftmaxCrossEntropyLoss

REGISTERED = registry.registered_backends()
REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
# What each backend computes its own way; everything else is the reference's function.
EXPECTED_OVERRIDES = {
    "numpy": {"conv2d_forward", "conv2d_backward", "linear_forward", "linear_backward"},
    "reference": set(),
    "cupy": {"conv2d_forward", "conv2d_backward", "sgd_momentum_update"},
    "numba": {"conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward", "relu_forward",
              "relu_backward", "lrn_forward", "lrn_backward", "softmax", "softmax_cross_entropy_forward",
              "softmax_cross_entropy_backward", "sgd_momentum_update"},
}


def _module(name):
    """The backend's module itself, imported without choosing it (no device needed)."""
    try:
        return importlib.import_module(registry._REGISTRY[name][0])
    except ModuleNotFoundError as error:
        pytest.skip(f"{name}: module cannot be imported here ({error})")


def test_numpy_is_the_default_and_always_available():
    assert minivgg.get_backend() is numpy_backend
    assert {"numpy", "reference"} <= set(minivgg.available_backends())
    assert {"numpy", "reference", "cupy", "numba"} <= set(REGISTERED)


@pytest.mark.parametrize("name", REGISTERED)
def test_backend_module_honours_the_contract(name):
    """Names, signatures (parameter names, kinds and defaults) and capabilities, checked on the module."""
    module = _module(name)
    assert contract.contract_problems(module) == []
    assert module.name == name
    assert set(module.OVERRIDES) == EXPECTED_OVERRIDES[name]
    for op in set(reference.OPS) - set(module.OVERRIDES):
        assert getattr(module, op) is reference.REFERENCE[op], f"{name}.{op} is not the reference's function"


def test_the_gpu_backends_offer_their_capabilities_and_the_cpu_ones_none():
    assert _module("cupy").capabilities == {"fused_conv_relu", "graph_capture", "precision", "frozen_weights",
                                            "copy_stream"}
    assert _module("numba").capabilities == reference.capabilities == frozenset()


def test_the_contract_check_names_what_is_wrong():
    broken = types.ModuleType("broken")
    broken.__dict__.update({op: reference.REFERENCE[op] for op in reference.OPS if op != "lrn_backward"})
    broken.__dict__.update(name="broken", xp=np, capabilities=frozenset({"fused_conv_relu", "teleport"}),
                           OVERRIDES=("relu_forward",), asarray=reference.asarray, to_host=reference.to_host,
                           check_available=reference.check_available)
    broken.relu_forward = lambda x, inplace: x
    broken.max_pool2d_forward = lambda x, kernel_size=3, stride=2: x  # another default than the reference's
    problems = "\n".join(contract.contract_problems(broken))
    assert "lacks 'lrn_backward'" in problems and "'conv2d_relu_forward'" in problems
    assert "unknown capabilities ['teleport']" in problems
    assert "relu_forward(x, inplace) differs" in problems and "max_pool2d_forward(x, kernel_size=3" in problems
    assert "max_pool2d_forward is neither the reference's function nor listed in OVERRIDES" in problems


def test_an_op_added_to_the_reference_appears_on_every_backend(monkeypatch):
    """``install_reference`` (how the GPU backends are assembled) takes every op in OPS, new ones included."""
    def batch_twice_forward(x):
        return 2 * x, None
    monkeypatch.setattr(reference, "OPS", reference.OPS + ("batch_twice_forward",))
    monkeypatch.setitem(reference.REFERENCE, "batch_twice_forward", batch_twice_forward)
    own_conv = object()
    namespace = {"conv2d_forward": own_conv}
    overrides = contract.install_reference(namespace)
    assert namespace["batch_twice_forward"] is batch_twice_forward and namespace["conv2d_forward"] is own_conv
    assert overrides == ("conv2d_forward",)


@pytest.mark.parametrize("name", [n for n in REGISTERED if n not in ("numpy", "reference")])
def test_unusable_gpu_backend_says_what_is_missing(name):
    if name in minivgg.available_backends():
        pytest.skip(f"{name} is usable on this machine")
    with pytest.raises(ImportError, match=rf"backend '{name}'.*pip install"):
        minivgg.set_backend(name)
    assert minivgg.get_backend() is numpy_backend  # a failed switch leaves the active backend alone


def test_importing_the_numba_backend_needs_neither_gpu_nor_cupy_and_choosing_it_says_how():
    pytest.importorskip("numba")
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    code = ("import sys, minivgg; import minivgg.backends.numba as backend; "
            "print(backend.name, 'cupy' in sys.modules, backend.SIMULATOR)\n"
            "try:\n    minivgg.set_backend('numba')\nexcept minivgg.BackendUnavailableError as error:\n"
            "    print('NUMBA_ENABLE_CUDASIM' in str(error))")
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert child.stdout.split()[:3] == ["numba", "False", "False"]
    assert child.stdout.split()[3:] in ([], ["True"])  # nothing printed where a GPU made the backend usable


def test_missing_package_is_reported_by_name():
    registry.register_backend("imaginary", "minivgg_no_such_module.backend", "pip install imaginary-gpu")
    try:
        with pytest.raises(minivgg.BackendUnavailableError, match=r"'minivgg_no_such_module' is missing.*imaginary-gpu"):
            minivgg.set_backend("imaginary")
    finally:
        registry._REGISTRY.pop("imaginary")


def test_register_backend_then_use_it():
    """A module exporting the contract becomes choosable; here the reference under another name."""
    registry.register_backend("numpy-again", "minivgg.backends.numpy")
    try:
        assert minivgg.set_backend("numpy-again") is numpy_backend
    finally:
        registry._REGISTRY.pop("numpy-again")
        registry._loaded.pop("numpy-again", None)


def test_host_transfers_round_trip():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(minivgg.to_host(minivgg.asarray(x)), x)
    assert minivgg.asarray(x, dtype=np.float32).dtype == np.float32


def test_supports_knows_only_the_contracts_capabilities():
    assert not registry.supports("fused_conv_relu")
    with pytest.raises(ValueError, match="unknown capability 'warp_drive'"):
        registry.supports("warp_drive")


# --- fusion: a backend that offers conv+ReLU as one op changes no number -----------------------------------------

@pytest.fixture
def fusing_backend(monkeypatch):
    """The NumPy backend plus the ``fused_conv_relu`` capability (the composition in ``reference/fused.py``)."""
    from minivgg.backends.reference import fused
    module = types.ModuleType("minivgg_test_fusing_backend")
    module.__dict__.update({key: getattr(reference, key) for key in
                            reference.OPS + contract.DEVICE_FUNCTIONS + ("xp", "OVERRIDES")})
    conv_relu_forward, conv_relu_backward = fused.fuse_conv_relu(reference.conv2d_forward, reference.conv2d_backward)
    calls = []

    def conv2d_relu_forward(x, W, b, stride=1, padding=0):
        calls.append(x.shape)
        return conv_relu_forward(x, W, b, stride, padding)

    module.conv2d_relu_forward = conv2d_relu_forward
    module.conv2d_relu_backward = conv_relu_backward
    module.name, module.capabilities = "fusing", frozenset({"fused_conv_relu"})
    monkeypatch.setitem(sys.modules, module.__name__, module)
    registry.register_backend("fusing", module.__name__)
    yield module, calls
    registry._REGISTRY.pop("fusing")
    registry._loaded.pop("fusing", None)


def _loss_and_gradients(backend_name, build, x):
    """One forward and backward on ``backend_name`` of the float64 net ``build(init)`` returns, through the
    fusion pass (``fused_layers.fuse_conv_relu``: the net itself where the backend does not fuse)."""
    from minivgg.fused_layers import fuse_conv_relu
    minivgg.set_backend(backend_name)
    net = fuse_conv_relu(build(dict(rng=np.random.default_rng(3), dtype=np.float64, weight_init="glorot")))
    loss = SoftmaxCrossEntropyLoss()
    value = loss.forward(net.forward(x), np.array([0, 4]))
    dx = net.backward(loss.backward())
    return value, [dx] + [layer.grads[key] for _, layer, key in net.named_parameters()]


def _assert_fusing_changes_no_number(build, x):
    pair, fused = (_loss_and_gradients(name, build, x) for name in ("numpy", "fusing"))
    assert fused[0] == pytest.approx(pair[0], rel=1e-12)
    for a, b in zip(pair[1], fused[1]):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_a_fused_conv_relu_gives_the_numbers_of_the_pair(rng, fusing_backend):
    _, calls = fusing_backend
    _assert_fusing_changes_no_number(
        lambda init: Sequential(Conv2d(3, 4, 3, padding=1, **init), ReLU(), MaxPool2d(2, 2),
                                Sequential(Conv2d(4, 4, 3, padding=1, **init), ReLU()), Flatten(),
                                Linear(4 * 3 * 3, 5, **init)),
        rng.standard_normal((2, 3, 6, 7)))
    assert len(calls) == 2  # both conv+ReLU pairs, the nested one too, went through the fused op


def test_a_batch_norm_between_conv_and_relu_is_not_fused_over(rng, fusing_backend):
    """Conv, BN, ReLU (``vgg*_bn``): the ReLU rectifies the normalised map, so the convolution is not fused with
    it; the numbers are the NumPy backend's, in training mode."""
    from minivgg.layers import BatchNorm2d
    _, calls = fusing_backend
    _assert_fusing_changes_no_number(
        lambda init: Sequential(Conv2d(3, 4, 3, padding=1, **init), BatchNorm2d(4, dtype=np.float64), ReLU(),
                                MaxPool2d(2, 2), Flatten(), Linear(4 * 3 * 3, 5, **init)),
        rng.standard_normal((2, 3, 6, 7)))
    assert calls == []

# --- the CuPy backend's own parts, checked without a GPU ---------------------------------------------------------

def test_cupy_precision_is_tf32_by_default_and_validated():
    from minivgg.backends.cupy import precision
    assert precision.get_precision() == "tf32" and precision.uses_tensor_cores()
    previous = precision.set_precision("fp32")
    try:
        assert previous == "tf32" and not precision.uses_tensor_cores()
        with pytest.raises(ValueError, match="bf16"):
            precision.set_precision("bf16")
        with pytest.raises(TypeError, match="string"):
            precision.set_precision(32)
    finally:
        precision.set_precision(previous)


def test_tensor_core_rounding_keeps_10_or_7_mantissa_bits(rng):
    from minivgg.backends.cupy import precision
    x = rng.standard_normal(1000).astype(np.float32)
    np.testing.assert_array_equal(precision.round_like_tensor_cores(x, "fp32"), x)
    for name, bits in (("tf32", 10), ("bf16", 7)):
        rounded = precision.round_like_tensor_cores(x, name)
        assert not (rounded.view(np.uint32) & np.uint32((1 << (23 - bits)) - 1)).any()
        assert np.max(np.abs(rounded - x) / np.abs(x)) <= 2.0 ** -(bits + 1)  # round to nearest
    with pytest.raises(ValueError, match="fp8"):
        precision.round_like_tensor_cores(x, "fp8")


def test_cudnn_graph_keys_separate_what_changes_the_plan():
    from minivgg.backends.cupy import conv_cudnn
    base = dict(x_shape=(64, 3, 224, 224), w_shape=(64, 3, 3, 3), stride=1, padding=1, dtype="float32")
    keys = {conv_cudnn.graph_key(kind, **base, tensor_cores=tc, relu=relu)
            for kind in conv_cudnn.GRAPH_KINDS for tc in (True, False) for relu in (True, False)}
    assert len(keys) == 3 * 2 * 2 - 2 * 2  # relu only matters to fprop: dgrad and wgrad keys coincide
    assert conv_cudnn.output_shape(conv_cudnn.graph_key("fprop", **base, tensor_cores=True)) == (64, 64, 224, 224)
    with pytest.raises(ValueError, match="kind"):
        conv_cudnn.graph_key("backward", **base, tensor_cores=True)
    with pytest.raises(ValueError, match="one C"):
        conv_cudnn.graph_key("fprop", **{**base, "w_shape": (64, 4, 3, 3)}, tensor_cores=True)
    with pytest.raises(ValueError, match="float64"):
        conv_cudnn.graph_key("fprop", **{**base, "dtype": "float64"}, tensor_cores=True)


def test_cudnn_strides_describe_channels_last_memory_and_the_workspace_only_grows(rng):
    from minivgg.backends.cupy import conv_cudnn
    x_nchw_view = rng.standard_normal((2, 5, 7, 3)).astype(np.float32).transpose(0, 3, 1, 2)
    assert conv_cudnn.nhwc_strides(*x_nchw_view.shape) == tuple(s // 4 for s in x_nchw_view.strides)
    current = 0
    for needed in (0, 10, 5, 300, 7):
        current = conv_cudnn.grown_workspace(current, needed)
    assert current == 300


def test_cupy_convolution_route_choice():
    from minivgg.backends.cupy import conv
    assert conv.choose_route("float32", "auto", True) == "cudnn"
    assert conv.choose_route("float32", "auto", False) == "im2col"
    assert conv.choose_route("float64", "cudnn", True) == "im2col"  # gradient checks: the reference, in float64
    assert conv.choose_route("float32", "im2col", True) == "im2col"
    with pytest.raises(ValueError, match="setting"):
        conv.choose_route("float32", "fastest", True)


def _run_in_a_checkout_never_installed(code):
    """``code`` run by ``python -S`` in the repository: site-packages' install hooks skipped, numpy & co. found
    without minivgg's mapping, so minivgg comes from the repository's folders. Returns the child's stdout."""
    site_packages = pathlib.Path(np.__file__).resolve().parent.parent
    child = subprocess.run([sys.executable, "-S", "-c", "import sys; sys.path.insert(0, '.'); " + code],
                           cwd=REPOSITORY, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PYTHONPATH=str(site_packages)))
    assert child.returncode == 0, child.stderr
    return child.stdout


def test_minivgg_imports_from_a_checkout_that_was_never_installed():
    """``python -S`` skips site-packages' install hooks: minivgg then comes from the repository's folders."""
    module_file, classes = _run_in_a_checkout_never_installed(
        "import minivgg; from minivgg import backend, class_names; "
        "print(minivgg.set_backend('reference').__file__); print(len(class_names.imagenet_classes()))").split()
    assert pathlib.Path(module_file).resolve() == REPOSITORY / "backends" / "reference" / "__init__.py"
    assert classes == "1000"


def test_a_checkout_s_folders_are_attributes_of_the_package_too():
    """``import minivgg.backends as b`` reads the attribute ``minivgg.backends``: it must be set as an installed
    package's would be."""
    stdout = _run_in_a_checkout_never_installed(
        "import minivgg; import minivgg.backends as b; print(b.__name__, minivgg.resources.__name__)")
    assert stdout.split() == ["minivgg.backends", "minivgg.resources"]
