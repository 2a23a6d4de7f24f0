"""Ready-made training set-ups: the embedded digits and an ImageNet-style folder, each giving the model,
the loaders and the settings that ``minivgg.training.train`` takes. The command line and the lessons both
build their runs here, so there is one way to set a run up.
"""
from dataclasses import dataclass, field, replace

from .presets import preset, scale_for_crop
from .settings import TrainSettings

__all__ = ["DIGITS", "SMALL_DATA", "Run", "digits_run", "dataset_run", "imagenet_run", "imagenet_stage",
           "digits_options"]


# The embedded default: a quarter-width configuration A on the digits rendered at 40x40, trained on
# 32x32 crops with the smallest side jittered in [32, 40]. Digits are not mirror-symmetric: no flips.
DIGITS = dict(config="A", image_size=40, scale=(32, 40), crop_size=32, width_multiplier=0.25, fc_width=256,
              batch_size=32, learning_rate=0.01, weight_init="glorot", max_epochs=40, patience=3, flip=False,
              colour_shift_std=0.1)

# Fashion-MNIST, CIFAR-10 and any folder of IDX or CIFAR-10 binary files: the digits' run on the images as
# published (28x28 or 32x32, rescaled to S), with flips, since clothes and photographs are mirror-symmetric.
SMALL_DATA = dict({key: value for key, value in DIGITS.items() if key != "image_size"}, flip=True)


@dataclass
class Run:
    """Everything one training run needs.

    Attributes
    ----------
    model : the VGG model, its ``preprocessing`` set to the paper's (minus the training set's mean RGB)
    train_loader, val_loader : ``minivgg.data.DataLoader``s (training augmentation; single centre crop)
    test_loader : a loader over held-out test data, or None
    settings : ``TrainSettings``
    train_scale : S, an int or (S_min, S_max)
    name : a short name for the run folder
    statistics : the training set's ``ColourStatistics``
    """

    model: object
    train_loader: object
    val_loader: object
    test_loader: object
    settings: TrainSettings
    train_scale: object
    name: str
    statistics: object = field(repr=False, default=None)


def _loaders(model, splits, augmentation, evaluation, device_batch, seed, workers):
    from ..data import DataLoader

    # Training replaces an unreadable image (batches keep their size); evaluation leaves it out of the metric.
    train_loader = DataLoader(splits["train"], device_batch, augmentation, model.preprocessing, shuffle=True,
                              seed=seed, num_workers=workers, drop_last=True, unreadable="substitute")
    val_loader = DataLoader(splits["val"], device_batch, evaluation, model.preprocessing, shuffle=False,
                            num_workers=workers)
    test_loader = (DataLoader(splits["test"], device_batch, evaluation, model.preprocessing, shuffle=False)
                   if "test" in splits else None)
    return train_loader, val_loader, test_loader


def _model(options, weight_init, seed, statistics, class_names):
    from ..models import vgg
    from ..preprocessing import paper_mean_rgb

    model = vgg(**options, weight_init=weight_init, seed=seed)
    model.preprocessing = paper_mean_rgb(statistics.mean_rgb)  # Sect. 2.1: subtract the training mean RGB
    model.class_names = list(class_names)
    return model


def digits_options(defaults=DIGITS, **overrides):
    """``defaults`` (``DIGITS``) with ``overrides`` applied; a new ``crop_size`` without a new ``scale``
    scales S with it (``presets.scale_for_crop``). ValueError for an unknown key."""
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)}; known: {sorted(defaults)}")
    d = dict(defaults, **overrides)
    if "crop_size" in overrides and "scale" not in overrides:
        d["scale"] = scale_for_crop(defaults["scale"], d["crop_size"], defaults["crop_size"])
    return d


def _in_memory_run(splits, d, name, seed, workers, model_seed, device_batch):
    """The run of options ``d`` (``DIGITS``'s keys) on in-memory ``splits`` (train, val, test)."""
    from ..data import EvalTransform, TrainAugmentation, compute_statistics
    from ..evaluation.scales import single_test_scale

    statistics = compute_statistics(splits["train"], cache_path=False, progress=False)
    augmentation = TrainAugmentation(d["scale"], d["crop_size"], d["flip"], d["colour_shift_std"],
                                     pca=(statistics.eigenvalues, statistics.eigenvectors))
    scale = d["scale"]
    q = single_test_scale(scale)  # validation at Sect. 4.1's Q
    model = _model(dict(config=d["config"], num_classes=len(splits["train"].class_names), input_size=d["crop_size"],
                        width_multiplier=d["width_multiplier"], fc_width=d["fc_width"]),
                   d["weight_init"], seed if model_seed is None else model_seed, statistics,
                   splits["train"].class_names)
    loaders = _loaders(model, splits, augmentation, EvalTransform(q, d["crop_size"]),
                       d["batch_size"] if device_batch is None else device_batch, seed, workers)
    settings = TrainSettings(batch_size=d["batch_size"], learning_rate=d["learning_rate"], patience=d["patience"],
                             max_epochs=d["max_epochs"])
    return Run(model, *loaders, settings, scale, f"{name}-{d['config']}", statistics)


def digits_run(seed=0, workers=0, model_seed=None, device_batch=None, **overrides):
    """The embedded default: ``DIGITS`` (a quarter-width configuration A on 32x32 crops of the
    digits rendered at 40x40, S jittered in [32, 40]); any of its keys can be overridden, e.g.
    ``digits_run(config="E", weight_init="paper", max_epochs=3)``. ``seed`` fixes the split, the data order
    and (unless ``model_seed`` is given) the initial weights. ``device_batch``: images per forward pass
    (default: the whole batch); the trainer accumulates ``batch_size / device_batch`` of them per step."""
    from ..data import load_digits

    d = digits_options(**overrides)
    splits = load_digits(image_size=d["image_size"], seed=seed)
    return _in_memory_run(splits, d, "digits", seed, workers, model_seed, device_batch)


def dataset_run(data, seed=0, workers=0, model_seed=None, device_batch=None, per_class=None, root=None,
                download=True, progress=True, **overrides):
    """The digits' small run (``SMALL_DATA``: a quarter-width A on 32x32 crops, S jittered in [32, 40],
    flips) on Fashion-MNIST, CIFAR-10, or a folder of IDX or CIFAR-10 binary files
    (``data.catalogue.load_splits``: the published test set, a seeded tenth of the training set for
    validation). ``per_class``: train on that many images of each class (a seeded subset); ``root``,
    ``download``, ``progress``: where and how a named dataset is found (``data.catalogue.locate``); the other
    arguments as ``digits_run``'s."""
    from ..data.catalogue import load_splits

    d = digits_options(SMALL_DATA, **overrides)
    splits = load_splits(data, seed=seed, per_class=per_class, root=root, download=download, progress=progress)
    return _in_memory_run(splits, d, splits["name"], seed, workers, model_seed, device_batch)


def imagenet_stage(preset_name="D/256", config=None, crop_size=None, scale=None):
    """The stage ``preset_name`` (``presets.preset``) with a configuration, crop size or scale S of one's own.

    A smaller ``crop_size`` without a ``scale`` scales the preset's S with it (``presets.scale_for_crop``),
    so a trial run at 32x32 crops keeps the stage's proportions; ``scale`` (S or (S_min, S_max)) sets S.
    """
    stage = preset(preset_name)
    changes = {"config": config, "crop_size": crop_size, "scale": scale}
    if crop_size is not None and scale is None:
        changes["scale"] = scale_for_crop(stage.scale, crop_size, stage.crop_size)
    return replace(stage, **{key: value for key, value in changes.items() if value is not None})


def imagenet_run(root, preset_name="D/256", config=None, weight_init="paper", device_batch=64, seed=0, workers=0,
                 width_multiplier=1.0, fc_width=4096, crop_size=None, scale=None, progress=True):
    """One of the paper's stages (``presets.preset``) on an ImageNet-style folder (``train/``, ``val/``).

    ``width_multiplier``, ``fc_width``, ``crop_size`` and ``scale`` make the same pipeline (folder layout,
    devkit labels, statistics, augmentation, stages) small enough for a trial run on a CPU; see
    ``imagenet_stage`` for how the crop and the scale combine. ``progress``: a bar while the colour statistics
    are computed (once; they are cached in the data folder).
    """
    from ..data import EvalTransform, ImageNet, TrainAugmentation, compute_statistics

    stage = imagenet_stage(preset_name, config, crop_size, scale)
    splits = {"train": ImageNet(root, "train"), "val": ImageNet(root, "val")}
    smallest_side = min(stage.scale) if isinstance(stage.scale, tuple) else stage.scale
    # The augmentation's own checks (S >= crop) before the statistics pass, which reads every image and
    # writes its cache into the data folder: a refused run leaves nothing behind.
    TrainAugmentation(stage.scale, stage.crop_size, stage.flip, stage.colour_shift_std)
    statistics = compute_statistics(splits["train"], draft_smallest_side=smallest_side, num_workers=workers,
                                    progress=progress)
    augmentation = TrainAugmentation(stage.scale, stage.crop_size, stage.flip, stage.colour_shift_std,
                                     pca=(statistics.eigenvalues, statistics.eigenvectors))
    model = _model(dict(config=stage.config, num_classes=len(splits["train"].class_names),
                        input_size=stage.crop_size, width_multiplier=width_multiplier, fc_width=fc_width),
                   weight_init, seed, statistics, splits["train"].class_names)
    loaders = _loaders(model, splits, augmentation, EvalTransform(stage.validation_scale, stage.crop_size),
                       device_batch, seed, workers)
    settings = TrainSettings(learning_rate=stage.learning_rate)
    return Run(model, *loaders, settings, stage.scale, stage.name.replace("/", "_"), statistics)
