"""Ready-made training set-ups: the embedded digits and an ImageNet-style folder, each giving the model,
the loaders and the settings that ``minivgg.train.train`` takes. The command line and the lessons both
build their runs here, so there is one way to set a run up.
"""
from dataclasses import dataclass, field, replace

from .presets import DIGITS, preset
from .train import TrainSettings

__all__ = ["Run", "digits_run", "imagenet_run"]


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
    from .data import DataLoader

    # Training replaces an unreadable image (batches keep their size); evaluation leaves it out of the metric.
    train_loader = DataLoader(splits["train"], device_batch, augmentation, model.preprocessing, shuffle=True,
                              seed=seed, num_workers=workers, drop_last=True, unreadable="substitute")
    val_loader = DataLoader(splits["val"], device_batch, evaluation, model.preprocessing, shuffle=False,
                            num_workers=workers)
    test_loader = (DataLoader(splits["test"], device_batch, evaluation, model.preprocessing, shuffle=False)
                   if "test" in splits else None)
    return train_loader, val_loader, test_loader


def _model(options, weight_init, seed, statistics, class_names):
    from .models import vgg
    from .preprocessing import paper_mean_rgb

    model = vgg(**options, weight_init=weight_init, seed=seed)
    model.preprocessing = paper_mean_rgb(statistics.mean_rgb)  # Sect. 2.1: subtract the training mean RGB
    model.class_names = list(class_names)
    return model


def digits_run(seed=0, workers=0, model_seed=None, **overrides):
    """The embedded default: ``presets.DIGITS`` (a quarter-width configuration A on 32x32 crops of the
    digits rendered at 40x40, S jittered in [32, 40]); any of its keys can be overridden, e.g.
    ``digits_run(config="E", weight_init="paper", max_epochs=3)``. ``seed`` fixes the split, the data order
    and (unless ``model_seed`` is given) the initial weights."""
    from .data import EvalTransform, TrainAugmentation, compute_statistics, load_digits

    unknown = set(overrides) - set(DIGITS)
    if unknown:
        raise ValueError(f"digits_run: unknown options {sorted(unknown)}; known: {sorted(DIGITS)}")
    d = dict(DIGITS, **overrides)
    splits = load_digits(image_size=d["image_size"], seed=seed)
    statistics = compute_statistics(splits["train"], cache_path=False, progress=False)
    augmentation = TrainAugmentation(d["scale"], d["crop_size"], d["flip"], d["colour_shift_std"],
                                     pca=(statistics.eigenvalues, statistics.eigenvectors))
    scale = d["scale"]
    q = (scale[0] + scale[1]) // 2 if isinstance(scale, tuple) else scale
    model = _model(dict(config=d["config"], num_classes=10, input_size=d["crop_size"],
                        width_multiplier=d["width_multiplier"], fc_width=d["fc_width"]),
                   d["weight_init"], seed if model_seed is None else model_seed, statistics,
                   splits["train"].class_names)
    loaders = _loaders(model, splits, augmentation, EvalTransform(q, d["crop_size"]), d["batch_size"], seed, workers)
    settings = TrainSettings(batch_size=d["batch_size"], learning_rate=d["learning_rate"], patience=d["patience"],
                             max_epochs=d["max_epochs"])
    return Run(model, *loaders, settings, scale, f"digits-{d['config']}", statistics)


def imagenet_run(root, preset_name="D/256", config=None, weight_init="paper", device_batch=64, seed=0, workers=0):
    """One of the paper's stages (``presets.preset``) on an ImageNet-style folder (``train/``, ``val/``)."""
    from .data import EvalTransform, ImageNet, TrainAugmentation, compute_statistics

    stage = preset(preset_name)
    if config is not None:
        stage = replace(stage, config=config)
    splits = {"train": ImageNet(root, "train"), "val": ImageNet(root, "val")}
    statistics = compute_statistics(splits["train"], draft_smallest_side=256, num_workers=workers)
    augmentation = TrainAugmentation(stage.scale, stage.crop_size, stage.flip, stage.colour_shift_std,
                                     pca=(statistics.eigenvalues, statistics.eigenvectors))
    model = _model(dict(config=stage.config, num_classes=len(splits["train"].class_names),
                        input_size=stage.crop_size), weight_init, seed, statistics, splits["train"].class_names)
    loaders = _loaders(model, splits, augmentation, EvalTransform(stage.validation_scale, stage.crop_size),
                       device_batch, seed, workers)
    settings = TrainSettings(learning_rate=stage.learning_rate)
    return Run(model, *loaders, settings, stage.scale, stage.name.replace("/", "_"), statistics)
