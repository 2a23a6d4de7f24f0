"""Training with a recorded step: on a backend with the ``graph_capture`` capability, ``train`` records one SGD
step and replays it, which must give the very numbers of the eager loop: one SGD step per batch, a new
recording when the learning rate or the batch shape changes, and no recording at all where dropout is active."""
import sys
import types

import numpy as np
import pytest

import minivgg
from minivgg import backend as registry
from minivgg.backends import contract
from minivgg.backends import numpy as numpy_backend
from minivgg.backends import reference
from minivgg.training.recorded_step import captured_training_step
from minivgg.layers import (BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential,
                            SoftmaxCrossEntropyLoss)
from minivgg.training.optimiser import SGD


class Replay:
    """What a host "graph" is: replaying the step means running it again on the arrays it was recorded with."""

    def __init__(self, step, recordings, warmup_outputs):
        self.step, self.warmup_outputs = step, warmup_outputs
        recordings.append(self)

    def replay(self):
        return self.step()


@pytest.fixture
def capturing_backend(monkeypatch):
    """The NumPy backend plus a ``graph_capture`` capability whose recording is the step itself."""
    module = types.ModuleType("minivgg_test_capturing_backend")
    module.__dict__.update({key: getattr(reference, key) for key in
                            reference.OPS + contract.DEVICE_FUNCTIONS + ("xp", "OVERRIDES")})
    recordings = []

    def capture_step(step, warmup_steps=2):
        outputs = None
        for _ in range(warmup_steps):
            outputs = step()
        return Replay(step, recordings, outputs)

    module.capture_step = capture_step
    module.name, module.capabilities = "capturing", frozenset({"graph_capture"})
    monkeypatch.setitem(sys.modules, module.__name__, module)
    registry.register_backend("capturing", module.__name__)
    yield recordings
    registry._REGISTRY.pop("capturing")
    registry._loaded.pop("capturing", None)


def _net(dropout=0.0):
    init = dict(rng=np.random.default_rng(2), weight_init="glorot")
    return Sequential(Conv2d(3, 4, 3, padding=1, **init), ReLU(), MaxPool2d(2, 2), Flatten(),
                      Linear(4 * 3 * 3, 6, **init), ReLU(), Dropout(dropout, seed=0), Linear(6, 5, **init))


BATCHES = [np.random.default_rng(i).standard_normal((4, 3, 6, 6)).astype(np.float32) for i in range(4)]
BATCHES.append(BATCHES[0][:3])  # a shorter last batch: another shape
LABELS = [np.random.default_rng(10 + i).integers(0, 5, len(x)) for i, x in enumerate(BATCHES)]
RATES = [0.1, 0.1, 0.1, 0.05, 0.05]  # the schedule lowers the rate after three steps


def test_replayed_steps_give_the_eager_numbers(capturing_backend):
    net, loss_layer = _net(), SoftmaxCrossEntropyLoss()
    optimizer, eager_losses = SGD(net), []
    for x, labels, rate in zip(BATCHES, LABELS, RATES):
        eager_losses.append(loss_layer.forward(net.forward(x), labels))
        net.backward(loss_layer.backward(), input_gradient=False)
        optimizer.step(rate)
    eager = [layer.params[key].copy() for _, layer, key in net.named_parameters()]

    minivgg.set_backend("capturing")
    net = _net()
    step = captured_training_step(net, SoftmaxCrossEntropyLoss(), SGD(net))
    assert step is not None
    losses = [step(x, labels, rate)[1] for x, labels, rate in zip(BATCHES, LABELS, RATES)]
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-6)
    for a, b in zip(eager, [layer.params[key] for _, layer, key in net.named_parameters()]):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    assert len(capturing_backend) == 3  # recorded at the first batch, the new rate, the shorter batch


def test_no_recording_without_the_capability_or_with_active_dropout(capturing_backend):
    net = _net()
    assert captured_training_step(net, SoftmaxCrossEntropyLoss(), SGD(net)) is None  # numpy: no capability
    minivgg.set_backend("capturing")
    net = _net(dropout=0.5)
    assert captured_training_step(net, SoftmaxCrossEntropyLoss(), SGD(net)) is None  # a replay repeats masks


def test_no_recording_of_batch_norm_in_training(capturing_backend):
    """A replay runs no Python: BN's host counter of batches (and its cumulative momentum) would stay frozen."""
    minivgg.set_backend("capturing")
    init = dict(rng=np.random.default_rng(2), weight_init="glorot")
    net = Sequential(Conv2d(3, 4, 3, padding=1, **init), BatchNorm2d(4), ReLU(), MaxPool2d(2, 2), Flatten(),
                     Linear(4 * 3 * 3, 5, **init))
    assert captured_training_step(net, SoftmaxCrossEntropyLoss(), SGD(net)) is None
    net.eval()  # evaluation mode: the running statistics are read, nothing on the host changes
    assert captured_training_step(net, SoftmaxCrossEntropyLoss(), SGD(net)) is not None


def test_labels_are_checked_before_the_recorded_step(capturing_backend):
    minivgg.set_backend("capturing")
    net = _net()
    step = captured_training_step(net, SoftmaxCrossEntropyLoss(), SGD(net))
    with pytest.raises(ValueError, match=r"\[0, 5\).*found 7"):
        step(BATCHES[0], np.array([0, 1, 7, 2]), 0.1)


@pytest.mark.gpu
def test_a_cuda_graph_replay_gives_the_eager_numbers_on_the_cupy_backend():
    """The real capture: forward, backward and SGD recorded once by CuPy, replayed for four more batches."""
    if "cupy" not in minivgg.available_backends():
        pytest.skip("needs the cupy backend on an NVIDIA GPU")
    backend = minivgg.set_backend("cupy")
    previous = backend.set_precision("fp32")
    try:
        results = []
        for recorded in (False, True):
            net, loss_layer = _net().to_backend(), SoftmaxCrossEntropyLoss()
            optimizer = SGD(net)
            step = captured_training_step(net, loss_layer, optimizer) if recorded else None
            losses = []
            for x, labels, rate in zip(BATCHES, LABELS, RATES):
                if step is not None:
                    losses.append(float(step(x, labels, rate)[1]))
                    continue
                losses.append(float(loss_layer.forward(net.forward(minivgg.asarray(x)), labels)))
                net.backward(loss_layer.backward(), input_gradient=False)
                optimizer.step(rate)
            results.append((losses, [minivgg.to_host(layer.params[key]) for _, layer, key in net.named_parameters()]))
        (eager_losses, eager_params), (losses, params) = results
        np.testing.assert_allclose(losses, eager_losses, rtol=1e-5)
        for a, b in zip(eager_params, params):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    finally:
        backend.set_precision(previous)
