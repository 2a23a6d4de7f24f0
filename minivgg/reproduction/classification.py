"""Sect. 3 and 4 in miniature: a classification net trained with the library's loop, then tested by every
method of Sect. 3.2 at every scale the tables need.

A net is trained in its own run folder (``minivgg.training.train``: checkpoints each epoch, resumed after an
interruption) and its final weights are written there as ``model.safetensors`` with their training record;
a later step, or a later run of the reproduction, loads them instead of training again.
"""
import os

import numpy as np

from ..files import atomic_write
from .epochs import train_epoch_by_epoch

__all__ = ["SeedData", "load_seed_data", "framed", "build_net", "train_net", "load_net", "classification_posteriors",
           "save_arrays", "load_arrays", "top1_error", "WEIGHTS_FILE"]

WEIGHTS_FILE = "model.safetensors"


class SeedData:
    """One seed's Fashion-MNIST: the training subset (a tenth held out for validation), its colour statistics,
    and the test subsets (``Miniature.test_per_class``, ``multi_crop_per_class``), all fixed by the seed.
    ``splits`` are the framed images the nets see, ``items`` the images as published (Appendix A's scenes)."""

    def __init__(self, miniature, seed):
        from ..data import compute_statistics, subset
        from ..data.catalogue import load_splits

        self.seed = seed
        self.items = load_splits(miniature.data, seed=seed, per_class=miniature.train_per_class, progress=False)
        self.splits = {name: framed(self.items[name], miniature.frame) for name in ("train", "val", "test")}
        self.statistics = compute_statistics(self.splits["train"], cache_path=False, progress=False)
        test = self.splits["test"]
        self.test = _images_and_labels(subset(test, per_class=miniature.test_per_class, seed=seed))
        self.table5 = _images_and_labels(subset(test, per_class=miniature.multi_crop_per_class, seed=seed + 1000))

    @property
    def class_names(self):
        return self.splits["train"].class_names


def framed(dataset, frame):
    """``dataset`` (an ``ArrayDataset``) with each image in the middle of a ``frame`` x ``frame`` square, the
    border black (``Miniature.frame``); the dataset itself when ``frame`` is None."""
    from ..data.datasets import ArrayDataset

    if frame is None:
        return dataset
    images = dataset.images
    height, width = images.shape[1:3]
    if frame < max(height, width):
        raise ValueError(f"the frame {frame} is smaller than the {height}x{width} images")
    top, left = (frame - height) // 2, (frame - width) // 2
    padding = [(0, 0), (top, frame - height - top), (left, frame - width - left)] + [(0, 0)] * (images.ndim - 3)
    framed_images = np.pad(images, padding)
    framed_images.flags.writeable = False
    return ArrayDataset(framed_images, dataset.labels, dataset.class_names)


def _images_and_labels(dataset):
    return [dataset.load(i)[0] for i in range(len(dataset))], np.asarray(dataset.labels, dtype=np.int64)


_SEED_DATA = {}


def load_seed_data(miniature, seed):
    """``SeedData`` of ``seed``, read once per process (every seed's is kept: the runner takes each step for
    every seed in turn, and a seed's subsets are a few megabytes)."""
    key = (miniature.data, miniature.frame, miniature.train_per_class, miniature.test_per_class,
           miniature.multi_crop_per_class, seed)
    if key not in _SEED_DATA:
        if any(other[:-1] != key[:-1] for other in _SEED_DATA):
            _SEED_DATA.clear()  # another run's sizes (the tests run several): only one run's data is kept
        _SEED_DATA[key] = SeedData(miniature, seed)
    return _SEED_DATA[key]


def _standardisation(statistics):
    """The paper's preprocessing (RGB 0-255 minus the training mean) divided by the training set's per-channel
    standard deviation (``miniature.DEPARTURES``): the diagonal of the RGB covariance ``P diag(l) P^T``."""
    from ..preprocessing import Preprocessing

    std = np.sqrt((np.asarray(statistics.eigenvectors) ** 2) @ np.asarray(statistics.eigenvalues))
    return Preprocessing("RGB", 255.0, tuple(float(m) for m in statistics.mean_rgb), tuple(float(s) for s in std))


def train_scale(miniature, spec):
    """S of ``spec``'s training: ``(S_min, S_max)`` when jittered, else the fixed S."""
    return tuple(miniature.jittered_scale) if spec.jittered else miniature.fixed_scale


def build_net(miniature, spec, data, seed, source=None):
    """The untrained net of ``spec`` for ``seed``, with the standardised preprocessing; pre-initialised from
    ``source`` (a trained VGG) when ``spec.init_from`` names one."""
    from ..models import vgg

    model = vgg(spec.config, num_classes=len(data.class_names), input_size=miniature.crop,
                width_multiplier=miniature.width_multiplier, fc_width=miniature.fc_width, dropout=miniature.dropout,
                weight_init=spec.weight_init or miniature.weight_init, seed=seed)
    model.preprocessing = _standardisation(data.statistics)
    model.class_names = list(data.class_names)
    if spec.init_from is not None:
        if source is None:
            raise ValueError(f"{spec.name} is pre-initialised from {spec.init_from}: give its trained weights")
        model.init_from(source, conv_layers=spec.init_conv_layers)  # Sect. 3.1: A's first conv and its FC layers
    return model


def _settings(miniature, epochs):
    from ..training import TrainSettings

    return TrainSettings(batch_size=miniature.batch_size, learning_rate=miniature.learning_rate,
                         patience=miniature.patience, max_epochs=epochs)


def train_net(miniature, spec, data, seed, run_dir, source=None, bar=None):
    """Train ``spec``'s net in ``run_dir`` (resuming its checkpoint if there is one) and write its weights.

    ``bar``: a tqdm bar over the epochs, moved as each ends. Returns the trained model, or None when the run
    was interrupted (Ctrl-C: the loop finished its step and wrote a checkpoint).
    """
    from .. import weights
    from ..data import DataLoader, EvalTransform, TrainAugmentation
    from ..training import train
    from ..weights.record import TrainingRecord

    model = build_net(miniature, spec, data, seed, source)
    scale = train_scale(miniature, spec)
    statistics = data.statistics
    augmentation = TrainAugmentation(scale, miniature.crop, True, 0.1,
                                     pca=(statistics.eigenvalues, statistics.eigenvectors))
    train_loader = DataLoader(data.splits["train"], miniature.batch_size, augmentation, model.preprocessing,
                              shuffle=True, seed=seed, drop_last=True, unreadable="substitute")
    val_loader = DataLoader(data.splits["val"], miniature.batch_size,
                            EvalTransform(miniature.single_test_scale, miniature.crop), model.preprocessing,
                            shuffle=False)
    epochs = miniature.stall_epochs if spec.stall else miniature.epochs

    def train_one(max_epochs, resume):
        return train(model, train_loader, val_loader, _settings(miniature, max_epochs), run_dir, resume=resume,
                     progress=False)

    result = train_epoch_by_epoch(train_one, epochs, run_dir, bar)
    if result is None:
        return None
    history = result["history"]
    model.training_record = TrainingRecord(train_scale=scale, flip=True, epochs=len(history),
                                           settings=dict(vars(_settings(miniature, epochs))))
    weights.save(model, os.path.join(run_dir, WEIGHTS_FILE))
    return model.eval()


def load_net(run_dir):
    """The trained net written by ``train_net``, in evaluation mode."""
    from .. import weights

    return weights.load(os.path.join(run_dir, WEIGHTS_FILE)).eval()


def classification_posteriors(model, images, methods_and_scales, bar=None):
    """``{"<method>/<Q>": (N, classes) posteriors}`` for each ``(method, Q)``, flips averaged (Sect. 3.2).

    One scale at a time, so several scales' posteriors combine by averaging (Sect. 4.2) without a second
    pass."""
    from ..evaluation import posteriors

    out = {}
    for method, q in methods_and_scales:
        out[f"{method}/{q}"] = posteriors(model, images, method, (q,), flip=True)
        if bar is not None:
            bar.update(1)
    return out


def top1_error(probabilities, labels):
    """Top-1 error in % of (N, classes) posteriors against (N,) labels."""
    from ..evaluation.metrics import top_k_error

    return 100.0 * float(top_k_error(np.asarray(probabilities), np.asarray(labels), 1))


def save_arrays(path, arrays):
    """``{name: array}`` to an ``.npz`` file, atomically (names may hold '/' and ','); the folder is created."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)

    def write(temporary):
        with open(temporary, "wb") as handle:
            np.savez(handle, **{name.replace("/", "|"): np.asarray(value) for name, value in arrays.items()})
    atomic_write(os.fspath(path), write)


def load_arrays(path):
    """The ``{name: array}`` ``save_arrays`` wrote; no pickles."""
    with np.load(path, allow_pickle=False) as data:
        return {name.replace("|", "/"): data[name] for name in data.files}
