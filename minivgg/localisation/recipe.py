"""The embedded localisation run: the classifier and the localisation nets of Appendix A in miniature, on
digits placed on photographs (``scenes``), set up once for the command line, the tests and the lesson.

The paper's nets are configuration D at 224 x 224, trained at S = 256 or 384. Here: a quarter-width
configuration A (FC width 128) on 32 x 32 crops of 64 x 64 scenes, trained at the fixed S = 64 (so a crop
sees a quarter of the scene, about as a 224 crop sees an image at S = 384), tested at Q = 64 and 96. Two
departures make such a small net learn in seconds rather than hours, and are used for every net alike:
no dropout (0.5 on 128 units kept it at chance for thousands of steps), and Glorot initialisation scaled
by the ReLU gain sqrt(2) (``init.glorot_relu_uniform``). The inputs are the paper's RGB minus the training
mean, divided by the training set's per-channel standard deviation. The localisation nets are fine-tuned
with learning rate 2e-2 rather than Appendix A.1's 1e-3 (the default of ``fine_tune_localisation``): within
the two hundred steps of these runs, 1e-3 leaves the box layer, trained from scratch, far from converged
(centre-crop error about 85% against 60% at 2e-2 for PCR after six epochs, on the same classifier).
"""
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SCENES", "digit_scenes_run", "ScenesRun"]

SCENES = dict(config="A", size=64, digit_sides=(16, 32), crop_size=32, scale=64, test_scales=(64, 96),
              width_multiplier=0.25, fc_width=128, dropout=0.0, weight_init="glorot-relu", batch_size=32,
              classifier_learning_rate=3e-3, classifier_epochs=12, localisation_learning_rate=2e-2,
              localisation_epochs=12, patience=100)


@dataclass
class ScenesRun:
    """The data and the untrained classifier of the embedded localisation run.

    Attributes
    ----------
    splits : dict "train", "val", "test" of ``BoxDataset``
    classifier : the untrained ``VGG``, with the preprocessing set from the training scenes
    options : the ``SCENES`` dict with any overrides
    """

    splits: dict
    classifier: object
    options: dict = field(default_factory=dict)

    def settings(self, stage):
        """``TrainSettings`` for ``stage`` "classifier" or "localisation"."""
        from ..training.settings import TrainSettings

        o = self.options
        return TrainSettings(batch_size=o["batch_size"], learning_rate=o[f"{stage}_learning_rate"],
                             max_epochs=o[f"{stage}_epochs"], patience=o["patience"])


def digit_scenes_run(seed=0, counts=None, **overrides):
    """The embedded run's data and classifier; any ``SCENES`` key can be overridden."""
    from ..models import vgg
    from ..preprocessing import Preprocessing
    from .scenes import load_digit_scenes

    unknown = set(overrides) - set(SCENES)
    if unknown:
        raise ValueError(f"digit_scenes_run: unknown options {sorted(unknown)}; known: {sorted(SCENES)}")
    o = dict(SCENES, **overrides)
    splits = load_digit_scenes(size=o["size"], digit_sides=o["digit_sides"], counts=counts, seed=seed)
    pixels = np.concatenate([image.reshape(-1, 3) for image in splits["train"].images]).astype(np.float64)
    classifier = vgg(o["config"], num_classes=len(splits["train"].class_names), input_size=o["crop_size"],
                     width_multiplier=o["width_multiplier"], fc_width=o["fc_width"], dropout=o["dropout"],
                     weight_init=o["weight_init"], seed=seed)
    classifier.preprocessing = Preprocessing("RGB", 255.0, tuple(pixels.mean(axis=0)), tuple(pixels.std(axis=0)))
    classifier.class_names = list(splits["train"].class_names)
    return ScenesRun(splits, classifier, o)
