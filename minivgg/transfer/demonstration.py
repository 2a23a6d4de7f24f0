"""Appendix B on the embedded digits, no download: are a trained net's features better than raw pixels and
than the features of the same net left at its random initialisation?

A small net is trained on the digits' training split with the embedded recipe (``minivgg.training.recipes``); its
weights are then fixed. Three representations of the same images go to the same linear SVM (C by
cross-validation on the training images): the raw pixels (L2-normalised, as the descriptors are), the
trained net's Appendix B descriptors, and those of an untrained net of the same architecture. The SVMs
train on the training split (or a few images per class of it) and are measured on the test split by mean
class recall.
"""
import tempfile

import numpy as np

from .extraction import FeatureSettings, l2_normalise
from .features import features_of
from .metrics import mean_class_recall
from .splits import class_split
from .svm import C_GRID, train_multiclass

__all__ = ["DIGITS_SETTINGS", "train_digits_net", "raw_pixels", "compare_representations"]

# The digits are 40x40 and the net's input 32x32: Q = 32 gives a 1x1 map, Q = 64 a 2x2 one. Digits are not
# mirror-symmetric, so no flips (as in their training).
DIGITS_SETTINGS = FeatureSettings(layer="fc7", scales=(32, 64), aggregation="stack", flip=False)


def train_digits_net(max_epochs=12, seed=0, **overrides):
    """A net trained on the digits' training split by ``recipes.digits_run`` (``max_epochs`` epochs at most;
    other preset keys as overrides). Returns ``(model, splits, run)``, the model in eval mode."""
    from ..data import load_digits
    from ..training.recipes import DIGITS
    from ..training.recipes import digits_run
    from ..training import train

    run = digits_run(seed=seed, max_epochs=max_epochs, **overrides)
    with tempfile.TemporaryDirectory() as run_dir:
        train(run.model, run.train_loader, run.val_loader, run.settings, run_dir, progress=False)
    splits = load_digits(image_size=overrides.get("image_size", DIGITS["image_size"]), seed=seed)
    return run.model.eval(), splits, run


def raw_pixels(images):
    """(N, H, W, 3) uint8 -> (N, H * W * 3) float32 pixel vectors of unit L2 norm."""
    images = np.asarray(images)
    return l2_normalise(images.reshape(len(images), -1).astype(np.float32))


def compare_representations(models, splits, settings=DIGITS_SETTINGS, train_per_class=None, seed=0,
                            C_grid=C_GRID, folds=3, cache=None):
    """Mean class recall (%) of a linear SVM on raw pixels and on each net's descriptors.

    Parameters
    ----------
    models : {name: VGG}, e.g. {"trained net": ..., "random net": ...}
    splits : the digits' ``{"train": ArrayDataset, "test": ArrayDataset}``
    settings : ``FeatureSettings`` of the descriptors
    train_per_class : train the SVMs on this many images per class of the training split (seeded), or on
        all of it (None)
    seed, C_grid, folds : the subset's seed and the cross-validation of C
    cache : an optional ``FeatureCache``: a second comparison on the same images reads the descriptors

    Returns
    -------
    {"raw pixels": %, name: %, ...} and, under "dimensions", each representation's size.
    """
    train_images, train_labels = splits["train"].images, splits["train"].labels
    test_images, test_labels = splits["test"].images, splits["test"].labels
    if train_per_class is not None:
        chosen, _ = class_split(train_labels, train_per_class, seed=seed)
        train_images, train_labels = train_images[chosen], train_labels[chosen]
    representations = {"raw pixels": (raw_pixels(train_images), raw_pixels(test_images))}
    for name, model in models.items():
        representations[name] = (features_of(model, list(train_images), settings, cache),
                                 features_of(model, list(test_images), settings, cache))
    results, dimensions = {}, {}
    for name, (train_features, test_features) in representations.items():
        svm = train_multiclass(train_features, train_labels, C_grid, folds, seed)
        predictions = svm.predict(test_features)
        results[name] = 100 * mean_class_recall(predictions, test_labels, len(splits["test"].class_names))
        dimensions[name] = train_features.shape[1]
    results["dimensions"] = dimensions
    return results
