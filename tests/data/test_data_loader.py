"""The loader: batches in NCHW float32 through the model's preprocessing, an order and draws that depend
only on (seed, epoch, sample), so resumed runs and worker processes see exactly the batches of an
uninterrupted single-process run; unreadable images skipped and counted, never the end of an epoch."""
import multiprocessing
import os
import signal

import numpy as np
import pytest
from PIL import Image

from minivgg.data import (ArrayDataset, BadImageWarning, DataLoader, EvalTransform, ImageFolder, TrainAugmentation,
                          compute_statistics)
from image_folders import bad_image_folder
from minivgg.preprocessing import Preprocessing, paper_mean_rgb


def numbered(count=23, size=8):
    """Images whose every pixel holds the sample's index: a batch shows which samples it holds."""
    images = np.repeat(np.arange(count, dtype=np.uint8), size * size * 3).reshape(count, size, size, 3)
    return ArrayDataset(images, np.arange(count) % 3, ["a", "b", "c"])


def indices_of(x):
    return x[:, 0, 0, 0].astype(int).tolist()


@pytest.fixture
def photos(rng):
    images = rng.integers(0, 256, (20, 24, 20, 3), dtype=np.uint8)
    return ArrayDataset(images, rng.integers(0, 4, 20), ["a", "b", "c", "d"])


def augmented_loader(data, batch_size=6, **kwargs):
    mean_rgb, eigenvalues, eigenvectors = compute_statistics(data, progress=False)
    augmentation = TrainAugmentation(scale=(16, 24), crop_size=16, flip=True, colour_shift_std=0.1,
                                     pca=(eigenvalues, eigenvectors))
    return DataLoader(data, batch_size, augmentation, paper_mean_rgb(mean_rgb), **kwargs)


def assert_same_batches(first, second):
    assert len(first) == len(second)
    for (x1, y1), (x2, y2) in zip(first, second):
        assert np.array_equal(x1, x2) and np.array_equal(y1, y2)


def test_batches_are_preprocessed_nchw_float32_with_int64_labels():
    data = numbered()
    preprocessing = Preprocessing("BGR", 255.0, (1.0, 2.0, 3.0), (2.0, 2.0, 2.0))
    loader = DataLoader(data, 5, preprocessing=preprocessing, shuffle=False)
    x, labels = next(loader.epoch(0))
    assert x.shape == (5, 3, 8, 8) and x.dtype == np.float32 and x.flags.c_contiguous
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 0, 1]
    assert np.array_equal(x, preprocessing.apply(data.images[:5]))


def test_length_last_batch_and_drop_last():
    assert len(DataLoader(numbered(23), 5)) == 5
    assert [len(y) for _, y in DataLoader(numbered(23), 5).epoch(0)] == [5, 5, 5, 5, 3]
    assert [len(y) for _, y in DataLoader(numbered(23), 5, drop_last=True).epoch(0)] == [5, 5, 5, 5]
    with pytest.raises(ValueError, match="23 images give no full batch of 30"):
        DataLoader(numbered(23), 30, drop_last=True)


def test_every_sample_once_per_epoch_in_an_order_fixed_by_seed_and_epoch():
    loader = DataLoader(numbered(), 4, seed=7)
    orders = [sum((indices_of(x) for x, _ in loader.epoch(e)), []) for e in range(3)]
    for order in orders:
        assert sorted(order) == list(range(23))
    assert orders[0] != orders[1] != orders[2]
    assert orders[1] == sum((indices_of(x) for x, _ in DataLoader(numbered(), 4, seed=7).epoch(1)), [])
    assert orders[1] != sum((indices_of(x) for x, _ in DataLoader(numbered(), 4, seed=8).epoch(1)), [])
    assert sum((indices_of(x) for x, _ in DataLoader(numbered(), 4, shuffle=False).epoch(5)), []) == list(range(23))


def test_augmented_epochs_repeat_exactly_and_differ_between_epochs(photos):
    loader = augmented_loader(photos)
    assert_same_batches(list(loader.epoch(2)), list(augmented_loader(photos).epoch(2)))
    assert not np.array_equal(next(loader.epoch(2))[0], next(loader.epoch(3))[0])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_resumed_epoch_sees_exactly_the_remaining_batches(photos, num_workers):
    whole = list(augmented_loader(photos).epoch(1))
    resumed = list(augmented_loader(photos, num_workers=num_workers).epoch(1, start_batch=2))
    assert_same_batches(whole[2:], resumed)
    assert list(augmented_loader(photos).epoch(1, start_batch=len(whole))) == []


@pytest.mark.parametrize("start_method", [None, "spawn"])  # fork (default on Linux), and macOS's default
def test_two_workers_give_the_batches_of_none(photos, start_method):
    assert_same_batches(list(augmented_loader(photos).epoch(4)),
                        list(augmented_loader(photos, num_workers=2, prefetch_batches=1,
                                              start_method=start_method).epoch(4)))


def test_batches_from_workers_are_never_overwritten_while_any_view_of_them_lives(photos):
    reference = list(augmented_loader(photos, batch_size=2).epoch(0))
    kept = []
    for number, (x, labels) in enumerate(augmented_loader(photos, batch_size=2, num_workers=2).epoch(0)):
        if number == 0:
            assert not x.flags.owndata  # handed over without a copy
        kept.append(x[:, ::-1])  # a view only; the batch array itself is dropped
    for view, (x, _) in zip(kept, reference):
        assert np.array_equal(view, x[:, ::-1])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_unreadable_images_are_replaced_counted_and_warned_about(tmp_path, rng, num_workers):
    data = bad_image_folder(tmp_path, rng)
    augmentation = TrainAugmentation(scale=(24, 32), crop_size=24)
    loader = DataLoader(data, 4, augmentation, seed=3, num_workers=num_workers, unreadable="substitute")
    with pytest.warns(BadImageWarning, match=r"epoch 0 of ImageFolder.*: skipped 2 unreadable images \(replaced"):
        batches = list(loader.epoch(0))
    assert [len(y) for _, y in batches] == [4, 4, 1]  # full batches all the same
    assert sorted(os.path.basename(name) for name, _ in loader.skipped) == ["corrupt.jpg", "truncated.jpg"]
    assert all(reason.startswith("cannot decode image") for _, reason in loader.skipped)
    if num_workers:
        with pytest.warns(BadImageWarning):
            in_process = list(DataLoader(data, 4, augmentation, seed=3, unreadable="substitute").epoch(0))
        assert_same_batches(batches, in_process)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_unreadable_images_are_left_out_of_evaluation_and_counted_once(tmp_path, rng, num_workers):
    # A validation metric must count every readable image once and the unreadable ones not at all: a
    # stand-in image would be counted twice.
    data = bad_image_folder(tmp_path, rng)
    loader = DataLoader(data, 4, EvalTransform(24, 24), shuffle=False, num_workers=num_workers)
    assert loader.unreadable == "leave_out"
    with pytest.warns(BadImageWarning, match=r"skipped 2 unreadable images \(left out\)"):
        batches = list(loader.epoch(0))
    delivered = np.concatenate([y for _, y in batches])
    readable = [i for i in range(len(data)) if os.path.basename(data.files[i]) not in ("corrupt.jpg", "truncated.jpg")]
    assert delivered.tolist() == data.labels[readable].tolist()  # each readable image once, in order
    assert sum(len(x) for x, _ in batches) == len(data) - 2 == 7
    assert sorted(os.path.basename(name) for name, _ in loader.skipped) == ["corrupt.jpg", "truncated.jpg"]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_batch_with_every_image_unreadable_is_not_delivered(tmp_path, rng, num_workers):
    data = bad_image_folder(tmp_path, rng)
    bad = [data.files.index("b/corrupt.jpg"), data.files.index("b/truncated.jpg")]
    order = bad + [i for i in range(len(data)) if i not in bad]  # the two unreadable images form batch 0
    data.files, data.labels = [data.files[i] for i in order], data.labels[order]
    loader = DataLoader(data, 2, EvalTransform(24, 24), shuffle=False, num_workers=num_workers)
    with pytest.warns(BadImageWarning, match="skipped 2"):
        sizes = [len(y) for _, y in loader.epoch(0)]
    assert sizes == [2, 2, 2, 1] and len(loader) == 5


def test_the_validation_metric_leaves_unreadable_images_out(tmp_path, rng):
    from minivgg.models import vgg
    from minivgg.evaluation.validation import evaluate_loader

    data = bad_image_folder(tmp_path, rng)
    model = vgg("A", num_classes=2, input_size=32, width_multiplier=1 / 16, fc_width=8, seed=0)
    loader = DataLoader(data, 4, EvalTransform(32, 32), shuffle=False)
    with pytest.warns(BadImageWarning):
        result = evaluate_loader(model, loader)
    with pytest.warns(BadImageWarning):
        batches = list(loader.epoch(0))
    scores = np.concatenate([model.eval().forward(x) for x, _ in batches])
    labels = np.concatenate([y for _, y in batches])
    assert result["skipped_images"] == 2 and len(labels) == 7
    assert result["top1_error"] == pytest.approx(float(np.mean(scores.argmax(1) != labels)))


def test_an_epoch_ended_early_stops_its_workers(photos):
    loader = augmented_loader(photos, batch_size=2, num_workers=2)  # 5 batches a worker, 2 slots: busy
    batches = loader.epoch(0)
    next(batches)
    assert len(multiprocessing.active_children()) == 2
    batches.close()
    assert multiprocessing.active_children() == []
    for _ in loader.epoch(1):
        break  # the abandoned iterator is closed as it is dropped
    assert multiprocessing.active_children() == []


def test_workers_ignore_ctrl_c_so_the_trainer_can_finish_its_step(photos):
    loader = augmented_loader(photos, batch_size=2, num_workers=2, prefetch_batches=2)
    batches = loader.epoch(0)
    received = [next(batches)]
    workers = multiprocessing.active_children()
    assert len(workers) == 2  # one slot each: both wait for the consumer, far from their last batch
    for worker in workers:
        os.kill(worker.pid, signal.SIGINT)
    received += list(batches)
    assert_same_batches(received, list(augmented_loader(photos, batch_size=2).epoch(0)))


class Failing(ArrayDataset):
    """Loading sample ``bad`` raises an error that is not about the image (a bug), or kills the process."""

    def __init__(self, data, bad, kill=False):
        super().__init__(data.images, data.labels, data.class_names)
        self.bad, self.kill = bad, kill

    def load(self, index, draft_smallest_side=None):
        if index == self.bad:
            if self.kill:
                os._exit(3)
            raise KeyError(f"sample {index} has no record")
        return super().load(index, draft_smallest_side)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_an_error_in_a_worker_is_raised_in_the_consumer(photos, num_workers):
    loader = DataLoader(Failing(photos, bad=5), 4, EvalTransform(16, 16), shuffle=False, num_workers=num_workers)
    with pytest.raises(KeyError, match="sample 5 has no record"):
        list(loader.epoch(0))
    assert multiprocessing.active_children() == []


def test_a_worker_that_dies_is_an_error_not_a_hang(photos):
    loader = DataLoader(Failing(photos, bad=9, kill=True), 4, EvalTransform(16, 16), shuffle=False, num_workers=2)
    with pytest.raises(RuntimeError, match=r"worker 0 stopped unexpectedly \(exit code 3\)"):
        list(loader.epoch(0))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        DataLoader(numbered(), 0)
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        DataLoader(numbered(), 4, seed=-1)
    with pytest.raises(ValueError, match="start_batch 7 is past the 6 batches"):
        DataLoader(numbered(), 4).epoch(0, start_batch=7)
    with pytest.raises(TypeError, match="augmentation must have draw_scale"):
        DataLoader(numbered(), 4, augmentation=lambda image: image)
    with pytest.raises(ValueError, match=r"unreadable must be one of \('leave_out', 'substitute'\), got 'skip'"):
        DataLoader(numbered(), 4, unreadable="skip")
    data = numbered()
    data.load = lambda index, draft_smallest_side=None: (np.zeros((4 + index % 2, 4, 3), np.uint8), 0)
    with pytest.raises(ValueError, match="images of different sizes"):
        list(DataLoader(data, 4).epoch(0))


def test_the_ready_made_runs_substitute_in_training_and_leave_out_in_evaluation(photos):
    from minivgg.models import vgg
    from minivgg.training.recipes import _loaders

    model = vgg("A", num_classes=4, input_size=32, width_multiplier=1 / 16, fc_width=8, seed=0)
    train, val, test = _loaders(model, {"train": photos, "val": photos, "test": photos},
                                TrainAugmentation(scale=16, crop_size=16), EvalTransform(16, 16), 4, 0, 0)
    assert (train.unreadable, val.unreadable, test.unreadable) == ("substitute", "leave_out", "leave_out")
