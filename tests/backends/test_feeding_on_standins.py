"""What a training step asks of a GPU (issue 26, items 6 and 7), counted through the stand-ins of CuPy and cuDNN:
one host synchronisation per progress update, not three per step; uint8 batches (a quarter of the bytes),
copied on a stream of their own while the previous step computes, preprocessed on the device; the SGD update as
one kernel per parameter, with the reference's numbers.

The stand-ins check the glue's logic (what is asked, on which stream, in which order); they run no GPU code."""
import math

import numpy as np
import pytest

import minivgg

BATCH, CROP = 32, 32


def _digits_job(recorded):
    """The digits' small run on the CuPy backend (33 steps of 32 images an epoch); ``recorded``: without dropout,
    so the backend records the step as a CUDA graph and replays it."""
    from minivgg.layers import dropout_layers
    from minivgg.training.recipes import digits_run

    job = digits_run(seed=0, width_multiplier=0.0625, fc_width=16, max_epochs=1)
    if recorded:
        for layer in dropout_layers(job.model):
            layer.p = 0.0
    job.model.to_backend()
    return job


@pytest.mark.parametrize("recorded", [False, True], ids=["plain step", "recorded step"])
def test_an_epoch_waits_for_the_device_once_per_progress_update(standin_gpu, monkeypatch, tmp_path, recorded):
    """33 steps, read back every 10 (the once-a-second rule off: the stand-in's steps are slow): 4 host
    synchronisations over the epoch's steps, all the progress update's one read, instead of 3 a step (and once,
    for the recorded step, the one before its capture begins)."""
    standin_gpu()
    from standins.counting import COUNTS

    import minivgg.training.loop
    import minivgg.training.progress
    from minivgg.training import train
    from minivgg.training.steps import RecordedStep, SGDStep

    monkeypatch.setattr(minivgg.training.progress, "EVERY_SECONDS", math.inf)
    minivgg.set_backend("cupy")
    job = _digits_job(recorded)
    chosen, steps_done = [], {}
    choose, end_epoch = minivgg.training.loop.choose_step, minivgg.training.loop.TrainingRun.end_epoch

    def choose_and_note(*args, **kwargs):
        chosen.append(choose(*args, **kwargs))
        return chosen[-1]

    def end_epoch_after_counting(self, totals):
        steps_done.update(COUNTS.since(before), steps=self.steps_this_call)
        return end_epoch(self, totals)

    monkeypatch.setattr(minivgg.training.loop, "choose_step", choose_and_note)
    monkeypatch.setattr(minivgg.training.loop.TrainingRun, "end_epoch", end_epoch_after_counting)
    before = COUNTS.snapshot()
    train(job.model, job.train_loader, job.val_loader, job.settings, tmp_path / "run", progress=False)
    assert type(chosen[0]) is (RecordedStep if recorded else SGDStep)
    steps = steps_done["steps"]
    assert steps == 33
    reads = {site: count for site, count in steps_done["sync_sites"].items()
             if site.startswith("minivgg/training/progress.py")}
    assert sum(reads.values()) == math.ceil(steps / 10) == 4
    others = {site: count for site, count in steps_done["sync_sites"].items() if site not in reads}
    assert [(site.split(":")[0], count) for site, count in others.items()] == (
        [("backends/cupy/graph_capture.py", 1)] if recorded else [])
    # Per step: the uint8 crops, their colour shift (3 float32 an image) and the labels (int64; the loss's copy
    # and the top-1 count's), each copied asynchronously; float32 crops would be 4 x 98,304 bytes.
    pixels, shift, labels = BATCH * CROP * CROP * 3, BATCH * 3 * 4, BATCH * 8
    assert steps_done["bytes_to_device"] == steps * (pixels + shift + 2 * labels)
    assert steps_done["uploads"] == steps * 4


def test_the_next_batch_is_copied_on_its_own_stream_before_the_current_one_is_used(standin_gpu, monkeypatch, rng):
    """The copies of batch k + 1 are queued, on the copy stream, before batch k is handed over; events order
    them with the computing stream both ways (a copy read before it is done, or a block overwritten while the
    computing stream may still read it, is a ``StandinRaceError``); the numbers are the host path's."""
    cupy, _, _ = standin_gpu()
    from standins.counting import COUNTS

    from minivgg.data.device_feed import device_batches
    from minivgg.preprocessing import TORCHVISION

    minivgg.set_backend("cupy")
    pixels = [rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8) for _ in range(5)]
    offsets = [rng.normal(0, 5, (4, 3)) for _ in range(5)]
    streams, asarray = [], cupy.asarray

    def noting_the_stream(array, *args, **kwargs):
        if isinstance(array, np.ndarray) and array.dtype == np.uint8:
            streams.append(cupy.cuda.get_current_stream().ptr)
        return asarray(array, *args, **kwargs)

    monkeypatch.setattr(cupy, "asarray", noting_the_stream)
    before = COUNTS.snapshot()
    fed = device_batches(((p, o, k) for k, (p, o) in enumerate(zip(pixels, offsets))), TORCHVISION)
    steps = []
    for k, (x, targets) in enumerate(fed):
        assert targets == k and len(streams) == min(k + 2, 5)  # the next batch is already on its way
        # The step's work on the computing stream, while the next batch's block is written on the other. Not
        # read back here: a read would wait for the computing stream and hide a missing event.
        x += 1
        steps.append(x)
    assert COUNTS.since(before)["host_syncs"] == 0
    for k, x in enumerate(steps):
        np.testing.assert_array_equal(x.get(), TORCHVISION.apply(pixels[k], offsets[k]) + np.float32(1))
    assert streams and all(ptr != cupy.cuda.Stream.null.ptr for ptr in streams)
    assert COUNTS.since(before)["bytes_to_device"] == 5 * (4 * 8 * 8 * 3 + 4 * 3 * 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 5e-4])
def test_the_sgd_update_is_one_kernel_with_the_reference_numbers(standin_gpu, rng, dtype, weight_decay):
    cupy, _, backend = standin_gpu()
    from standins.counting import COUNTS

    from minivgg.backends.reference.optimizer import sgd_momentum_update

    minivgg.set_backend("cupy")
    param, grad, velocity = (rng.normal(0, scale, (64, 27)).astype(dtype) for scale in (0.05, 1e-3, 1e-3))
    expected_param, expected_velocity = param.copy(), velocity.copy()
    device = [cupy.asarray(array) for array in (param, grad, velocity)]
    before = COUNTS.snapshot()
    for _ in range(3):
        sgd_momentum_update(expected_param, grad, expected_velocity, 0.01, 0.9, weight_decay)
        backend.sgd_momentum_update(device[0], device[1], device[2], 0.01, 0.9, weight_decay)
    assert COUNTS.since(before)["kernel_launches"] == 3
    np.testing.assert_array_equal(device[0].get(), expected_param)
    np.testing.assert_array_equal(device[2].get(), expected_velocity)
    assert not np.array_equal(expected_param, param)  # the update moved the weights


def test_an_sgd_step_launches_one_kernel_per_parameter(standin_gpu):
    standin_gpu()
    from standins.counting import COUNTS

    from minivgg.models import vgg
    from minivgg.training.optimiser import SGD

    minivgg.set_backend("cupy")
    model = vgg("A", num_classes=10, input_size=32, width_multiplier=0.0625, fc_width=16, seed=0)
    model.to_backend()
    for _, layer, key in model.named_parameters():
        layer.grads[key] = layer.params[key] * 0.01
    optimizer = SGD(model)
    before = COUNTS.snapshot()
    optimizer.step(0.01)
    assert COUNTS.since(before)["kernel_launches"] == len(list(model.named_parameters())) == 22


def test_the_default_number_of_loader_workers(monkeypatch):
    """A GPU run gets up to four workers, what the cores leave once each training process has one; a CPU run
    none (its step already uses every core)."""
    import os

    from minivgg.data.loader import default_workers

    for name in ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(name, raising=False)
    cores = {}
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores["count"])), raising=False)
    expected = {1: 0, 2: 1, 3: 2, 16: 4, 64: 4}
    for count, workers in expected.items():
        cores["count"] = count
        assert default_workers(arrays_on_host=False) == workers
        assert default_workers(arrays_on_host=True) == 0
    cores["count"] = 16
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "8")  # 8 GPUs' ranks on a 16-core machine: one worker each
    assert default_workers(arrays_on_host=False) == 1
