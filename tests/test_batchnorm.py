"""Batch normalisation (Ioffe & Szegedy 2015) as torchvision's ``vgg*_bn`` use it: the layer's statistics and
gradients, the BN columns of Table 1, folding into the convolutions, saving and resuming the running
statistics, and importing torchvision's state dicts, int64 ``num_batches_tracked`` included.

Where PyTorch is installed, the layer and a converted net are compared with PyTorch's own; without it the
same properties are checked against the formulas and against files written by ``test_convert``'s writers.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from minivgg import models, weights
from minivgg.training.checkpoint import load_checkpoint, restore_model, save_checkpoint
from minivgg.cli.program import main
from minivgg.weights.convert import from_torchvision
from minivgg.weights.convert.torch_pickle import read_state_dict
from minivgg.gradcheck import check_layer
from minivgg.layers import BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential, SoftmaxCrossEntropyLoss
from minivgg.models import (BATCH_NORM_CONFIGURATIONS, NAMED_CONFIGURATIONS, layer_specs, num_parameters, vgg,
                            vgg11_bn, vgg16_bn)
from minivgg.training.optimiser import SGD
from minivgg.preprocessing import TORCHVISION
from minivgg.training import TrainSettings, train
from array_loader import ArrayLoader
from weight_file_writers import write_torch_legacy, write_torch_zip

TINY = dict(width_multiplier=1 / 16, fc_width=16, num_classes=10, input_size=32)


def randomise_batch_norm(model, rng):
    """Scales, shifts and running statistics away from their initial 1, 0, 0, 1, so that they matter."""
    for layer in model.layers:
        if isinstance(layer, BatchNorm2d):
            c = layer.num_features
            layer.params["gamma"][:] = rng.uniform(0.5, 2.0, c)
            layer.params["beta"][:] = rng.standard_normal(c)
            layer.buffers["running_mean"][:] = rng.standard_normal(c)
            layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, c)
            layer.buffers["num_batches_tracked"][...] = rng.integers(1, 100)
    return model


def state(model):
    """Every array a weight file holds, by name, as NumPy copies."""
    arrays = {name: np.array(layer.params[key]) for name, layer, key in model.named_parameters()}
    arrays.update({name: np.array(layer.buffers[key]) for name, layer, key in model.named_buffers()})
    return arrays


# The layer ------------------------------------------------------------------------------------------------

def test_training_mode_normalises_each_channel_over_batch_and_positions(rng):
    layer = BatchNorm2d(3, dtype=np.float64)
    layer.params["gamma"][:] = [1.0, 2.0, 0.5]
    layer.params["beta"][:] = [0.0, -1.0, 3.0]
    x = rng.standard_normal((4, 3, 5, 6)) * [[[[5.0]], [[0.1]], [[2.0]]]] + 7.0
    y = layer.forward(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), [0.0, -1.0, 3.0], atol=1e-12)
    # the biased variance normalises (Ioffe & Szegedy's Alg. 1): each channel's std is gamma, up to eps
    expected_std = np.array([1.0, 2.0, 0.5]) * np.sqrt(x.var(axis=(0, 2, 3)) / (x.var(axis=(0, 2, 3)) + 1e-5))
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), expected_std, rtol=1e-12)


def test_running_averages_use_pytorch_momentum_and_unbiased_variance(rng):
    layer = BatchNorm2d(2, momentum=0.1, dtype=np.float64)
    batches = [rng.standard_normal((3, 2, 4, 4)) * 3 + 1 for _ in range(3)]
    mean, var = np.zeros(2), np.ones(2)
    for x in batches:
        layer.forward(x)
        mean = 0.9 * mean + 0.1 * x.mean(axis=(0, 2, 3))
        var = 0.9 * var + 0.1 * x.transpose(1, 0, 2, 3).reshape(2, -1).var(axis=1, ddof=1)
    np.testing.assert_allclose(layer.buffers["running_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_var"], var, rtol=1e-12)
    assert int(layer.buffers["num_batches_tracked"]) == 3
    cumulative = BatchNorm2d(2, momentum=None, dtype=np.float64)  # the k-th batch weighs 1/k: a plain mean
    for x in batches:
        cumulative.forward(x)
    np.testing.assert_allclose(cumulative.buffers["running_mean"], np.mean([x.mean(axis=(0, 2, 3)) for x in batches],
                                                                           axis=0), rtol=1e-12)


def test_evaluation_mode_uses_running_averages_and_updates_nothing(rng):
    layer = BatchNorm2d(2, dtype=np.float64).eval()
    layer.buffers["running_mean"][:] = [1.0, -2.0]
    layer.buffers["running_var"][:] = [4.0, 0.25]
    x = rng.standard_normal((1, 2, 3, 3))  # a single image: fine in evaluation mode
    y = layer.forward(x)
    np.testing.assert_allclose(y[0, 0], (x[0, 0] - 1.0) / np.sqrt(4.0 + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(y[0, 1], (x[0, 1] + 2.0) / np.sqrt(0.25 + 1e-5), rtol=1e-12)
    np.testing.assert_array_equal(layer.buffers["running_mean"], [1.0, -2.0])
    assert int(layer.buffers["num_batches_tracked"]) == 0


@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
def test_backward_matches_central_differences_for_x_gamma_and_beta(rng, training):
    layer = BatchNorm2d(3, dtype=np.float64).train(training)
    layer.params["gamma"][:] = rng.uniform(0.5, 2.0, 3)
    layer.params["beta"][:] = rng.standard_normal(3)
    layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, 3)
    errors = check_layer(layer, rng.standard_normal((4, 3, 3, 5)) * 2 + 1)
    assert set(errors) == {"x", "gamma", "beta"}
    assert max(errors.values()) < 1e-7, errors


def test_bad_input_and_arguments_are_refused_by_name(rng):
    layer = BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3.*expected input with 3 channels"):
        layer.forward(rng.standard_normal((2, 4, 3, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="more than one value per channel"):
        layer.forward(rng.standard_normal((1, 3, 1, 1)).astype(np.float32))
    with pytest.raises(ValueError, match="does not match the parameters"):
        layer.forward(rng.standard_normal((2, 3, 2, 2)))  # float64 into a float32 layer
    for arguments, message in [(dict(num_features=0), "num_features"), (dict(num_features=2, eps=0), "eps"),
                               (dict(num_features=2, momentum=1.5), "momentum"),
                               (dict(num_features=2, eps=float("inf")), "eps"),
                               (dict(num_features=2, eps=float("nan")), "eps"),
                               (dict(num_features=2, momentum=float("nan")), "momentum"),
                               (dict(num_features=2, eps="1e-5"), "eps")]:
        with pytest.raises(ValueError, match=message):
            BatchNorm2d(**arguments)
    assert BatchNorm2d(2, eps=np.float32(1e-3), momentum=np.float64(0.2)).eps == pytest.approx(1e-3)  # NumPy scalars


def batch_norm_outputs(backend_name):
    """Forward and backward in training mode, the running variance, and evaluation: host arrays, same inputs."""
    import minivgg

    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))
    minivgg.set_backend(backend_name)
    layer = BatchNorm2d(3, dtype=np.float64)
    layer.params["gamma"][...] = minivgg.asarray(rng.uniform(0.5, 2.0, 3))
    outputs = [layer.forward(minivgg.asarray(x)), layer.backward(minivgg.asarray(dout)), layer.grads["gamma"],
               layer.grads["beta"], layer.buffers["running_var"], layer.eval().forward(minivgg.asarray(x))]
    assert minivgg.get_backend().name == backend_name
    return [np.asarray(minivgg.to_host(array)) for array in outputs]


def test_numba_backend_computes_batch_norm_as_the_reference():
    """Under the CUDA simulator (no GPU needed), in a child process: the simulator must be on before Numba loads."""
    pytest.importorskip("numba")
    script = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import numpy as np; "
              f"from test_batchnorm import batch_norm_outputs as run; "
              f"print(max(float(np.abs(a - b).max()) for a, b in zip(run('numpy'), run('numba'))))")
    child = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, NUMBA_ENABLE_CUDASIM="1"),
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    assert float(child.stdout.strip().splitlines()[-1]) < 1e-12


@pytest.mark.gpu
def test_cupy_backend_computes_batch_norm_as_the_reference():
    import minivgg

    if "cupy" not in minivgg.available_backends():
        pytest.skip("the CuPy backend needs an NVIDIA GPU with CuPy")
    for reference, found in zip(batch_norm_outputs("numpy"), batch_norm_outputs("cupy")):
        np.testing.assert_allclose(found, reference, rtol=1e-10, atol=1e-12)


# The batch-normalised columns -------------------------------------------------------------------------------

def test_bn_columns_have_torchvisions_parameter_counts():
    # torchvision's published counts for vgg11_bn, vgg13_bn, vgg16_bn and vgg19_bn
    published = {"vgg11_bn": 132_868_840, "vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992, "vgg19_bn": 143_678_248}
    assert set(BATCH_NORM_CONFIGURATIONS) == set(published)
    for name, config in BATCH_NORM_CONFIGURATIONS.items():
        assert NAMED_CONFIGURATIONS[name[:-len("_bn")]] == config  # vgg16_bn is vgg16's column, with BN
        assert num_parameters(config, batch_norm=True) == published[name], name
        # on top of the plain column: a scale and a shift per channel of every convolution
        conv_channels = sum(spec.arguments["out_channels"] for spec in layer_specs(config)
                            if spec.layer_class is Conv2d)
        assert published[name] - num_parameters(config) == 2 * conv_channels
        net = getattr(models, name)(seed=0, **TINY)
        assert net.config == config and net.batch_norm and net.num_parameters() == num_parameters(
            config, batch_norm=True, **TINY)


def test_bn_sits_between_each_conv_and_its_relu_with_torchvisions_names():
    net = vgg16_bn(seed=0, **TINY)
    assert net.batch_norm and net.config == "D"
    kinds = [type(layer).__name__ for layer in net.features]
    assert kinds[:7] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert len(kinds) == 44 and kinds.count("BatchNorm2d") == 13  # torchvision's vgg16_bn.features: 0 ... 43
    names = [name for name, _, _ in net.named_parameters()] + [name for name, _, _ in net.named_buffers()]
    assert {"features.1.weight", "features.1.bias", "features.1.running_mean", "features.1.running_var",
            "features.1.num_batches_tracked", "features.41.running_var", "features.40.weight",
            "classifier.6.bias"} <= set(names)
    assert "VGG configuration D with batch norm" in net.summary()


def test_fold_batch_norm_gives_the_plain_column_computing_the_same_scores(rng):
    net = randomise_batch_norm(vgg("B", batch_norm=True, seed=1, dtype=np.float64, weight_init="glorot", **TINY),
                               rng).eval()
    x = rng.standard_normal((2, 3, 32, 32))
    expected = net.forward(x)
    folded = net.fold_batch_norm()
    assert not folded.batch_norm and folded.config == "B" and not folded.training
    assert not any(isinstance(layer, BatchNorm2d) for layer in folded.layers)
    assert folded.num_parameters() == num_parameters("B", **TINY)
    np.testing.assert_allclose(folded.forward(x), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(net.forward(x), expected)  # the BN net is unchanged
    with pytest.raises(ValueError, match="no batch normalisation to fold"):
        folded.fold_batch_norm()


def test_pre_initialisation_carries_the_bn_layers_and_refuses_dropping_them(rng):
    a = randomise_batch_norm(vgg11_bn(seed=0, **TINY), rng)
    e = vgg("E", batch_norm=True, seed=1, **TINY).init_from(a)
    np.testing.assert_array_equal(e.layers[1].buffers["running_var"], a.layers[1].buffers["running_var"])
    np.testing.assert_array_equal(e.layers[1].params["gamma"], a.layers[1].params["gamma"])
    with pytest.raises(ValueError, match="trained with batch normalisation"):
        vgg("E", seed=1, **TINY).init_from(a)
    vgg("E", batch_norm=True, seed=1, **TINY).init_from(vgg("A", seed=0, **TINY))  # fresh BN over A's convs


# Saving and resuming --------------------------------------------------------------------------------------

def test_weight_files_restore_the_running_statistics_exactly(rng, tmp_path):
    net = vgg11_bn(seed=0, **TINY)
    for _ in range(2):  # training forwards move the running statistics and count the batches
        net.forward(rng.standard_normal((4, 3, 32, 32)).astype(np.float32))
    weights.save(net, tmp_path / "bn.safetensors")
    loaded = weights.load(tmp_path / "bn.safetensors")
    assert loaded.batch_norm
    saved, restored = state(net), state(loaded)
    assert saved.keys() == restored.keys() and saved["features.1.num_batches_tracked"] == 2
    for name in saved:
        np.testing.assert_array_equal(restored[name], saved[name], err_msg=name)
        assert restored[name].dtype == saved[name].dtype, name
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(loaded.eval().forward(x), net.eval().forward(x))
    with pytest.raises(ValueError, match="batch_norm = True"):
        weights.load_into(vgg("A", seed=0, **TINY), tmp_path / "bn.safetensors")


def test_checkpoints_restore_the_running_statistics_of_any_model(rng, tmp_path):
    init = dict(rng=rng, weight_init="glorot")
    sequential = Sequential(Conv2d(3, 4, 3, padding=1, **init), BatchNorm2d(4), ReLU(), Flatten(),
                            Linear(4 * 4 * 4, 3, **init))
    for model in (vgg11_bn(seed=0, **TINY), sequential):
        x = rng.standard_normal((4, 3) + ((32, 32) if model is not sequential else (4, 4))).astype(np.float32)
        model.forward(x)
        optimizer = SGD(model)
        position = {"epoch": 0, "step": 0, "global_step": 0}  # the state is checked against its schema when read
        save_checkpoint(str(tmp_path / "c.safetensors"), model, optimizer, {"position": position})
        norm = next(layer for layer in model.layers if isinstance(layer, BatchNorm2d))
        expected = {key: np.array(value) for key, value in norm.buffers.items()}
        model.forward(x)  # moves them on
        params, _, saved_state = load_checkpoint(str(tmp_path / "c.safetensors"))
        restore_model(model, params, saved_state)
        for key, value in expected.items():
            np.testing.assert_array_equal(norm.buffers[key], value, err_msg=key)


def test_interrupted_bn_training_resumes_to_the_same_weights_and_statistics(rng, tmp_path):
    y = rng.integers(0, 10, size=32)
    x = (rng.standard_normal((32, 3, 32, 32)) + y[:, None, None, None] / 5).astype(np.float32)
    settings = TrainSettings(batch_size=8, learning_rate=0.01, max_epochs=2, patience=5)

    def run(name, **kwargs):
        net = vgg11_bn(seed=0, weight_init="glorot", **TINY)
        train(net, ArrayLoader(x, y, 8), ArrayLoader(x, y, 16, shuffle=False), settings, str(tmp_path / name),
              progress=False, **kwargs)
        return net

    reference = run("whole")
    run("interrupted", stop_after_steps=5)
    resumed = run("interrupted", resume=True)
    expected, found = state(reference), state(resumed)
    assert int(found["features.1.num_batches_tracked"]) == 8  # 2 epochs of 4 batches
    for name in expected:
        np.testing.assert_array_equal(found[name], expected[name], err_msg=name)


# Importing torchvision's vgg*_bn --------------------------------------------------------------------------

@pytest.mark.parametrize("writer", [write_torch_zip, write_torch_legacy], ids=["zip", "legacy"])
def test_bn_state_dicts_with_int64_counters_convert_to_identical_outputs(rng, tmp_path, writer):
    source = randomise_batch_norm(vgg("B", batch_norm=True, seed=3, weight_init="glorot", **TINY), rng).eval()
    writer(tmp_path / "vgg13_bn-tiny.pth", state(source))
    arrays = read_state_dict(tmp_path / "vgg13_bn-tiny.pth")
    assert arrays["features.1.num_batches_tracked"].dtype == np.int64
    assert main(["convert", str(tmp_path / "vgg13_bn-tiny.pth"), str(tmp_path / "bn.safetensors")]) == 0
    converted = weights.load(tmp_path / "bn.safetensors").eval()
    assert converted.batch_norm and converted.config == "B" and converted.preprocessing == TORCHVISION
    for name, array in state(source).items():
        np.testing.assert_array_equal(state(converted)[name], array, err_msg=name)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(converted.forward(x), source.forward(x))


def test_bn_state_dicts_from_before_pytorch_0_4_1_have_no_counters(rng, tmp_path):
    source = randomise_batch_norm(vgg11_bn(seed=3, **TINY), rng)
    old = {name: array for name, array in state(source).items() if not name.endswith("num_batches_tracked")}
    write_torch_legacy(tmp_path / "vgg11_bn-2017.pth", old)
    model = from_torchvision(tmp_path / "vgg11_bn-2017.pth")
    assert all(int(layer.buffers["num_batches_tracked"]) == 0 for _, layer, _ in model.named_buffers())
    np.testing.assert_array_equal(model.layers[1].buffers["running_var"], source.layers[1].buffers["running_var"])


# With PyTorch installed: its BatchNorm2d and a torch.save'd BN VGG -------------------------------------------

def test_layer_matches_pytorchs_batchnorm2d_in_training_and_evaluation(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the formulas above are checked instead")
    for momentum in (0.1, None):
        ours, theirs = BatchNorm2d(3, momentum=momentum, dtype=np.float64), torch.nn.BatchNorm2d(3, momentum=momentum)
        theirs = theirs.double()
        gamma = rng.uniform(0.5, 2.0, 3)
        ours.params["gamma"][:] = gamma
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(gamma))
        for _ in range(3):
            x, dout = rng.standard_normal((2, 3, 4, 5)) * 2 + 1, rng.standard_normal((2, 3, 4, 5))
            xt = torch.from_numpy(x).requires_grad_()
            theirs.weight.grad = None
            yt = theirs(xt)
            yt.backward(torch.from_numpy(dout))
            np.testing.assert_allclose(ours.forward(x), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(ours.backward(dout), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(ours.grads["gamma"], theirs.weight.grad.numpy(), rtol=1e-9, atol=1e-12)
        for key in ("running_mean", "running_var", "num_batches_tracked"):
            np.testing.assert_allclose(ours.buffers[key], getattr(theirs, key).numpy(), rtol=1e-12, err_msg=key)
        x = rng.standard_normal((2, 3, 4, 5))
        np.testing.assert_allclose(ours.eval().forward(x), theirs.eval()(torch.from_numpy(x)).detach().numpy(),
                                   rtol=1e-10, atol=1e-12)


def test_torch_saved_bn_vgg_converts_to_pytorchs_eval_outputs(rng, tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: files from the writers are checked instead")
    nn = torch.nn
    layout = vgg("A", batch_norm=True, seed=0, weight_init=None, **TINY)

    def torch_layer(layer):
        if isinstance(layer, Conv2d):
            return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, padding=layer.padding)
        if isinstance(layer, BatchNorm2d):
            return nn.BatchNorm2d(layer.num_features)
        if isinstance(layer, Linear):
            return nn.Linear(layer.in_features, layer.out_features)
        return {"ReLU": nn.ReLU, "MaxPool2d": lambda: nn.MaxPool2d(2, 2), "Dropout": nn.Dropout}[
            type(layer).__name__]()

    class TorchVGG(nn.Module):  # torchvision's make_layers(cfg, batch_norm=True) layout
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*map(torch_layer, layout.features))
            self.classifier = nn.Sequential(*map(torch_layer, layout.classifier))

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    torch.manual_seed(0)
    reference = TorchVGG()
    for module in reference.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(module.weight, std=0.2)
        if isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.weight, 0.5, 2.0)
            nn.init.normal_(module.bias)
    with torch.no_grad():  # two training batches: running statistics and counters of PyTorch's own making
        for _ in range(2):
            reference(torch.randn(4, 3, 32, 32) * 2)
    reference.eval()
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    expected = reference(torch.from_numpy(x)).detach().numpy()
    for zip_layout in (True, False):
        path = tmp_path / f"vgg11_bn-{zip_layout}.pth"
        torch.save(reference.state_dict(), path, _use_new_zipfile_serialization=zip_layout)
        model = from_torchvision(path)
        assert model.batch_norm and int(model.layers[1].buffers["num_batches_tracked"]) == 2
        np.testing.assert_allclose(model.forward(x), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
        np.testing.assert_allclose(model.fold_batch_norm().forward(x), expected, rtol=1e-4,
                                   atol=1e-5 * np.abs(expected).max())
    loss = SoftmaxCrossEntropyLoss()  # and the converted net trains: its BN layers take gradients
    model.train().forward(x)
    assert np.isfinite(loss.forward(model.forward(x), np.array([1, 2])))
    model.backward(loss.backward())
    assert np.abs(model.layers[1].grads["gamma"]).sum() > 0
