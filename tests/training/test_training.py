"""The training recipe: gradient accumulation equals a full-batch step, the plateau schedule, atomic
checkpoints, and a resumed run that ends with exactly the weights of an uninterrupted one."""
import json
import os

import numpy as np
import pytest

from minivgg.training.checkpoint import load_checkpoint
from minivgg.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential, SoftmaxCrossEntropyLoss
from minivgg.training.optimiser import SGD
from minivgg.training.schedule import ReduceOnPlateau
from minivgg.training import TrainSettings, train
from array_loader import ArrayLoader
from test_graph_step import capturing_backend  # noqa: F401 (a fixture: a backend that records steps)


def small_net(seed=0, dropout=True):
    rng = np.random.default_rng(seed)
    init = dict(rng=rng, weight_init="glorot")
    layers = [Conv2d(3, 4, 3, padding=1, **init), ReLU(), MaxPool2d(), Flatten(), Linear(4 * 4 * 4, 8, **init), ReLU()]
    layers += [Dropout(0.5, seed=seed)] if dropout else []
    return Sequential(*layers, Linear(8, 3, **init))


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, size=48)
    x = rng.standard_normal((48, 3, 8, 8)).astype(np.float32) + y[:, None, None, None].astype(np.float32)
    return x, y


def one_step(net, batches, learning_rate=0.1):
    """One SGD step over ``batches`` (accumulated when there are several); returns the parameters."""
    optimizer, loss = SGD(net, momentum=0.9, weight_decay=5e-4), SoftmaxCrossEntropyLoss()
    for _ in range(2):  # two steps, so momentum takes part
        for x, y in batches:
            loss.forward(net.forward(x), y)
            net.backward(loss.backward())
            if len(batches) > 1:
                optimizer.accumulate()
        optimizer.step(learning_rate)
    return {name: layer.params[key].copy() for name, layer, key in net.named_parameters()}


def test_gradient_accumulation_equals_one_full_batch_step(data):
    x, y = data
    full = one_step(small_net(dropout=False), [(x[:32], y[:32])])
    accumulated = one_step(small_net(dropout=False), [(x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)])
    for name in full:
        np.testing.assert_allclose(accumulated[name], full[name], rtol=2e-5, atol=1e-6, err_msg=name)


def test_biases_are_not_decayed_unless_asked():
    net = Sequential(Linear(2, 2, rng=0))
    net[0].params["b"][:] = 1.0
    net[0].grads = {"W": np.zeros((2, 2), np.float32), "b": np.zeros(2, np.float32)}
    SGD(net, momentum=0.0, weight_decay=0.5).step(1.0)
    np.testing.assert_array_equal(net[0].params["b"], [1.0, 1.0])
    SGD(net, momentum=0.0, weight_decay=0.5, decay_biases=True).step(1.0)
    np.testing.assert_allclose(net[0].params["b"], [0.5, 0.5])


def test_sgd_update_is_krizhevskys_form():
    net = Sequential(Linear(1, 1, rng=0))
    net[0].params["W"][:] = 2.0
    net[0].grads = {"W": np.full((1, 1), 3.0, np.float32), "b": np.zeros(1, np.float32)}
    optimizer = SGD(net, momentum=0.9, weight_decay=0.1)
    optimizer.step(0.01)  # v = -0.01 * (3 + 0.1 * 2) = -0.032
    optimizer.step(0.01)  # v = 0.9 * -0.032 - 0.01 * (3 + 0.1 * 1.968) = -0.060768
    np.testing.assert_allclose(net[0].params["W"], [[2.0 - 0.032 - 0.060768]], rtol=1e-6)


def test_plateau_schedule_divides_by_ten_three_times_then_stops():
    schedule = ReduceOnPlateau(learning_rate=1e-2, patience=1, max_reductions=3)
    rates = []
    for accuracy in [0.1, 0.2, 0.2, 0.3, 0.3, 0.3, 0.3]:
        stop = schedule.epoch_end(accuracy)
        rates.append(schedule.learning_rate)
        if stop:
            break
    assert rates == pytest.approx([1e-2, 1e-2, 1e-3, 1e-3, 1e-4, 1e-5, 1e-5])
    assert stop and schedule.finished and schedule.reductions == 3


def run(tmp_path, data, name, **kwargs):
    x, y = data
    net = small_net()
    settings = TrainSettings(batch_size=16, learning_rate=0.05, max_epochs=3, patience=5)
    result = train(net, ArrayLoader(x, y, 8), ArrayLoader(x, y, 16, shuffle=False), settings,
                   str(tmp_path / name), progress=False, **kwargs)
    return net, result


@pytest.mark.parametrize("stop_after_steps, position", [
    (4, {"epoch": 1, "step": 1, "global_step": 4}),  # mid-epoch 2 (3 steps an epoch)
    (3, {"epoch": 0, "step": 3, "global_step": 3}),  # after epoch 1's last step, before its validation
])
def test_interrupted_and_resumed_run_ends_with_the_same_weights_and_log(tmp_path, data, stop_after_steps, position):
    reference, done = run(tmp_path, data, "uninterrupted")
    assert done["finished"] and len(done["history"]) == 3
    net, first = run(tmp_path, data, "interrupted", stop_after_steps=stop_after_steps)
    assert not first["finished"]
    _, _, state = load_checkpoint(str(tmp_path / "interrupted" / "checkpoint.safetensors"))
    assert state["position"] == position and state["epoch_totals"]["images"] == 16 * position["step"]
    resumed, second = run(tmp_path, data, "interrupted", resume=True)
    assert second["finished"]
    for (name, a, key), (_, b, _) in zip(reference.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(a.params[key], b.params[key], err_msg=name)
    log = [json.loads(line) for line in open(tmp_path / "interrupted" / "log.jsonl")]

    def measured(entry):  # every number of an epoch but its speed, a timing
        return {key: value for key, value in entry.items() if key != "images_per_second"}

    # the interrupted epoch's training loss and error count its steps before the interruption too
    assert [measured(entry) for entry in log] == [measured(entry) for entry in done["history"]]


def test_resume_refuses_changed_settings_and_missing_checkpoint(tmp_path, data):
    run(tmp_path, data, "a", stop_after_steps=1)
    x, y = data
    with pytest.raises(ValueError, match="different settings.*learning_rate"):
        train(small_net(), ArrayLoader(x, y, 8), ArrayLoader(x, y, 16), TrainSettings(batch_size=16, learning_rate=0.5),
              str(tmp_path / "a"), resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run(tmp_path, data, "never-started", resume=True)


def test_truncated_checkpoint_is_a_clear_error_and_old_one_survives_a_failed_write(tmp_path, data):
    run(tmp_path, data, "a", stop_after_steps=1)
    path = tmp_path / "a" / "checkpoint.safetensors"
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_checkpoint(str(path))
    from minivgg.files import atomic_write

    path.write_bytes(good)

    def failing_write(temporary):
        open(temporary, "wb").write(b"partial")
        raise OSError("disk full")
    with pytest.raises(OSError):
        atomic_write(str(path), failing_write)
    assert path.read_bytes() == good and sorted(os.listdir(tmp_path / "a")) == [".minivgg-run", "checkpoint.safetensors"]


def test_batch_size_must_be_a_multiple_of_the_device_batch(tmp_path, data):
    x, y = data
    with pytest.raises(ValueError, match="not a multiple"):
        train(small_net(), ArrayLoader(x, y, 6), ArrayLoader(x, y, 16), TrainSettings(batch_size=16),
              str(tmp_path / "b"), progress=False)


class DoubledSoftmaxLoss(SoftmaxCrossEntropyLoss):
    """Twice the soft-max loss: an objective whose loss is not the classifier's."""

    def forward(self, scores, labels):
        return 2 * super().forward(scores, labels)

    def backward(self, dout=1.0):
        return super().backward(2 * dout)


class DoubledObjective:
    def loss_layer(self):
        return DoubledSoftmaxLoss()

    def correct(self, scores, labels):
        from minivgg.evaluation.metrics import top_k_correct
        return int(top_k_correct(np.asarray(scores), labels, 1).sum())

    def evaluate(self, model, loader, progress=False):
        from minivgg.evaluation.validation import evaluate_loader
        return evaluate_loader(model, loader, progress)


def test_an_objective_trains_with_its_own_loss_on_a_backend_that_records_steps(tmp_path, data, capturing_backend):
    """The recorded step is the soft-max loss's: a run with another objective takes the eager loop there, and
    ends with the weights and losses it has on the NumPy backend."""
    import minivgg

    x, y = data
    results = []
    for name in ("numpy", "capturing"):
        minivgg.set_backend(name)
        net = small_net(dropout=False)
        result = train(net, ArrayLoader(x, y, 16), ArrayLoader(x, y, 16, shuffle=False),
                       TrainSettings(batch_size=16, learning_rate=0.05, max_epochs=2), str(tmp_path / name),
                       progress=False, objective=DoubledObjective())
        results.append((result["history"], [np.asarray(layer.params[key]) for _, layer, key in net.named_parameters()]))
    (eager_history, eager_params), (history, params) = results
    assert [e["train_loss"] for e in history] == pytest.approx([e["train_loss"] for e in eager_history], rel=1e-6)
    for a, b in zip(eager_params, params):  # float32 rounding of two engines, over two epochs of SGD: about 1e-6
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6 * np.abs(a).max())
