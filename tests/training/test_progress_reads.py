"""The loop reads its steps' numbers back once per progress update (issue 26, item 6), and loses nothing by it: a
loss or a weight that stops being finite is still named at the step where it happened, no checkpoint is ever
written after that step, and the epoch's figures are the ones a read per step gave."""
import math

import numpy as np
import pytest

import minivgg.training.progress
from minivgg.errors import TrainingDiverged
from minivgg.layers import SoftmaxCrossEntropyLoss
from minivgg.training import train
from minivgg.training.checkpoint import load_checkpoint
from minivgg.training.recipes import digits_run


def _job(checkpoint_every=0):
    job = digits_run(seed=2, width_multiplier=0.0625, fc_width=16, max_epochs=1)  # 33 steps of 32 an epoch
    job.settings.checkpoint_every = checkpoint_every
    return job


@pytest.fixture
def every_ten_steps(monkeypatch):
    """Reads every 10 steps whatever the time (the once-a-second rule would read every step of a slow CPU)."""
    monkeypatch.setattr(minivgg.training.progress, "EVERY_STEPS", 10)
    monkeypatch.setattr(minivgg.training.progress, "EVERY_SECONDS", math.inf)


def _nan_loss_at_call(monkeypatch, call):
    forward, calls = SoftmaxCrossEntropyLoss.forward, []

    def poisoned(self, scores, labels):
        calls.append(1)
        loss = forward(self, scores, labels)
        return loss * np.nan if len(calls) == call else loss
    monkeypatch.setattr(SoftmaxCrossEntropyLoss, "forward", poisoned)


def test_a_loss_read_back_seven_steps_later_is_named_at_its_step(every_ten_steps, monkeypatch, tmp_path):
    reads = []
    read = minivgg.training.progress.StepsInFlight.read
    monkeypatch.setattr(minivgg.training.progress.StepsInFlight, "read",
                        lambda self: reads.append(len(self)) or read(self))
    _nan_loss_at_call(monkeypatch, 3)
    job = _job()
    with pytest.raises(TrainingDiverged, match=r"in epoch 1 at step 3 of 33 \(SGD step 3\) .*: the loss is nan"):
        train(job.model, job.train_loader, job.val_loader, job.settings, tmp_path / "run", progress=False)
    assert reads == [10]  # found at the first read, ten steps in


def test_no_checkpoint_is_written_after_a_step_that_diverged(every_ten_steps, monkeypatch, tmp_path):
    """Checkpoints every 2 steps; the loss of step 3 is NaN. The checkpoint due after step 4 reads steps 3 and
    4 first: the run stops there, and the checkpoint of step 2 is the one on disk."""
    _nan_loss_at_call(monkeypatch, 3)
    job = _job(checkpoint_every=2)
    with pytest.raises(TrainingDiverged, match=r"at step 3 of 33 .*the last good checkpoint, .* \(epoch 1 after step "
                                               r"2 of 33\), is kept as it was"):
        train(job.model, job.train_loader, job.val_loader, job.settings, tmp_path / "run", progress=False)
    _, _, state = load_checkpoint(str(tmp_path / "run" / "checkpoint.safetensors"))
    assert state["position"] == {"epoch": 0, "step": 2, "global_step": 2}


def test_the_epochs_figures_are_those_of_a_read_per_step(monkeypatch, tmp_path):
    """The logged training loss and error sum the same per-step numbers in the same order, read every step or
    every ten: equal to the last bit."""
    histories = []
    for every_steps in (1, 10):
        monkeypatch.setattr(minivgg.training.progress, "EVERY_STEPS", every_steps)
        monkeypatch.setattr(minivgg.training.progress, "EVERY_SECONDS", math.inf)
        job = _job()
        result = train(job.model, job.train_loader, job.val_loader, job.settings, tmp_path / f"run{every_steps}",
                       progress=False)
        histories.append([{key: entry[key] for key in ("train_loss", "train_top1_error", "val_loss")}
                          for entry in result["history"]])
    assert histories[0] == histories[1]
    assert 1.0 < histories[0][0]["train_loss"] < 3.0  # a real loss, from 10 classes


def test_a_read_is_due_after_every_steps_or_every_seconds():
    from minivgg.training.progress import StepsInFlight
    from minivgg.training.steps import StepResult

    in_flight = StepsInFlight(every_steps=3, every_seconds=math.inf)
    assert not in_flight.due()
    for step in range(3):
        in_flight.add(StepResult(np.float64(2.5 * (step + 1)), np.int64(step), np.float32(1.0), 4),
                      {"epoch": 0, "step": step, "global_step": step})
        assert in_flight.due() == (step == 2)
    outcomes = in_flight.read()
    assert [(o.loss_sum, o.correct, o.images, o.position["step"]) for o in outcomes] == [
        (2.5, 0, 4, 0), (5.0, 1, 4, 1), (7.5, 2, 4, 2)]
    assert len(in_flight) == 0 and not in_flight.due()
    in_flight = StepsInFlight(every_steps=100, every_seconds=0.0)  # a second has always passed
    in_flight.add(StepResult(np.float64(1.0), 1, np.float32(np.inf), 4), {"epoch": 0, "step": 0, "global_step": 0})
    assert in_flight.due()
    (outcome,) = in_flight.read()
    assert outcome.loss_finite and not outcome.weights_finite


def test_the_logged_loss_is_the_float64_sum_of_each_batchs_loss_times_its_images(monkeypatch, tmp_path):
    """What the loop logged when it read every loss as a host float: the float64 sum, in order, of each device
    batch's loss times its images. 24 images a step in 2 device batches of 12 (not powers of two: a product or
    sum rounded to float32 on the way would show)."""
    from minivgg.training.steps import SGDStep

    monkeypatch.setattr(minivgg.training.progress, "EVERY_SECONDS", math.inf)
    seen, forward_backward = [], SGDStep.forward_backward

    def noting(self, x, targets, k, learning_rate):
        outputs, loss = forward_backward(self, x, targets, k, learning_rate)
        seen.append((float(loss), len(targets)))
        return outputs, loss
    monkeypatch.setattr(SGDStep, "forward_backward", noting)
    job = digits_run(seed=2, width_multiplier=0.0625, fc_width=16, max_epochs=1, batch_size=24, device_batch=12)
    result = train(job.model, job.train_loader, job.val_loader, job.settings, tmp_path / "run", progress=False)
    loss_sum = 0.0
    for step in range(0, len(seen), 2):
        loss_sum += seen[step][0] * seen[step][1] + seen[step + 1][0] * seen[step + 1][1]
    images = sum(count for _, count in seen)
    assert len(seen) == 2 * (1079 // 24) and images == 24 * (1079 // 24)
    assert result["history"][0]["train_loss"] == loss_sum / images
