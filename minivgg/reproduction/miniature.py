"""The scale of the reproduction: how small the paper's experiments are made to fit two CPU cores.

The geometry keeps what dense evaluation means in the paper. VGG's five poolings give the dense net a stride
of 32 pixels whatever the crop, so at the paper's 224-pixel crops the windows of the class score map overlap
heavily (224 wide, 32 apart), and its test scales (256 ... 512) all lie a multiple of 32 above the crop, where
every window is inside the image. With 32-pixel crops each window would be a whole crop apart and, at a scale
such as 37, mostly padding (``benchmarks/RESULTS.md``, "Dense evaluation at small scales": 52% dense error
against 24% single-crop). Here the crops are 64 pixels, so windows overlap by half, and every scale is the crop
plus a multiple of 32:

- training: fixed S = 96 (the crop sees the centre two thirds of the rescaled item, as a 224 crop sees 2/3 of
  an image at S = 336, between the paper's 256 and 384), or S jittered in [64, 128] (the paper's [256, 512]
  is [1.14, 2.29] crops, here [1, 2]);
- testing: Q = 96 for both (Sect. 4.1: Q = S, or (S_min + S_max) / 2), and Q = {64, 96, 128} for several
  scales (Sect. 4.2: {S - 32, S, S + 32}, the very same pixel offsets as the paper's, and {S_min, S_mid,
  S_max}); at Q = 96 the dense map is 2 x 2 windows, at 128 it is 3 x 3.

Fashion-MNIST's 28 x 28 items are rescaled to these sizes on the fly. The nets are Table 1's columns at an
eighth of the width (8 ... 64 channels) with FC layers of 128 units. Everything else that departs from the
paper is listed in ``DEPARTURES`` and printed in the report.
"""
from dataclasses import asdict, dataclass, field, replace

__all__ = ["Miniature", "DEFAULT", "QUICK", "DEPARTURES"]


@dataclass(frozen=True)
class Miniature:
    """Every number that sets the reproduction's size.

    Attributes
    ----------
    data : the classification dataset (a name ``minivgg.data.catalogue`` finds, or a folder)
    frame : each image is placed in the middle of a square of this side, its border black (Fashion-MNIST's
        background), before it is rescaled: the item then fills part of the image, as objects do in ImageNet,
        and the centre crop at S = 96 still sees nearly all of it (None: the images as published)
    train_per_class : training images per class (a seeded subset; a tenth of them held out for validation)
    test_per_class : test images per class for Tables 3, 4 and 6 (a seeded subset of the test set per seed)
    multi_crop_per_class : test images per class for Table 5 (multi-crop runs 150 crops an image)
    crop : the crop side (the nets' input)
    fixed_scale : S of the fixed-scale nets
    jittered_scale : (S_min, S_max) of the scale-jittered nets
    test_scales : Q of the multi-scale evaluation (Sect. 4.2)
    width_multiplier, fc_width, dropout : the nets' size (``minivgg.models.vgg``)
    weight_init : the initialisation of every net but Sect. 3.1's (``minivgg.initialisation``)
    learning_rate, batch_size, epochs, patience : the training recipe (``TrainSettings``)
    stall_epochs : epochs of Sect. 3.1's nets (N(0, 0.01^2), pre-initialised from A), compared with the
        default-initialised net after as many epochs
    scenes : training, validation and test scenes of Appendix A (Fashion-MNIST items on photographs)
    scene_size, item_sides : the scenes' side, and the smallest and largest side of the square an item is
        drawn in
    classifier_epochs, localisation_epochs, localisation_learning_rate : Appendix A's training
    localisation_guesses : (class, box) guesses per scene in protocol 2 (the paper's 5; of 10 classes rather than
        1000, so the class is easier to guess: the report gives the classifier's own top-1 and top-5 errors)
    transfer_train_per_class : training images per class of Appendix B's linear SVMs (Caltech-101 uses 30)
    transfer_test_per_class : at most this many test images per class (Caltech-101: 50)
    seeds : how many seeds (0, 1, ...) each experiment runs with
    """

    data: str = "fashion-mnist"
    frame: int = 40
    train_per_class: int = 500
    test_per_class: int = 150
    multi_crop_per_class: int = 20
    crop: int = 64
    fixed_scale: int = 96
    jittered_scale: tuple = (64, 128)
    test_scales: tuple = (64, 96, 128)
    width_multiplier: float = 0.125
    fc_width: int = 128
    dropout: float = 0.0
    weight_init: str = "glorot-relu"
    learning_rate: float = 0.01
    batch_size: int = 32
    epochs: int = 8
    patience: int = 2
    stall_epochs: int = 3
    scenes: tuple = (1500, 200, 300)
    scene_size: int = 96
    item_sides: tuple = (32, 64)
    classifier_epochs: int = 8
    localisation_epochs: int = 6
    localisation_learning_rate: float = 1e-2
    localisation_guesses: int = 5
    transfer_train_per_class: int = 30
    transfer_test_per_class: int = 30
    seeds: int = 3
    notes: tuple = field(default=(), compare=False)

    @property
    def single_test_scale(self):
        """Sect. 4.1's Q: S for the fixed-scale nets, (S_min + S_max) / 2 for the jittered ones (the same here)."""
        return self.fixed_scale

    def with_seeds(self, seeds):
        return replace(self, seeds=int(seeds))

    def to_dict(self):
        """The settings as JSON stores them (tuples as lists), without the seeds (a run may add seeds)."""
        fields = {key: (list(value) if isinstance(value, tuple) else value) for key, value in asdict(self).items()
                  if key not in ("seeds", "notes")}
        return fields

    @classmethod
    def from_dict(cls, fields, seeds):
        """The ``Miniature`` that ``to_dict`` wrote, with ``seeds`` seeds. ValueError naming the field when one
        is unknown or missing (a run folder of another version of the reproduction)."""
        names = {name for name in cls.__dataclass_fields__ if name not in ("seeds", "notes")}
        if not isinstance(fields, dict):
            raise ValueError(f"expected the sizes as a JSON object, got {type(fields).__name__}")
        unknown, missing = sorted(set(fields) - names), sorted(names - set(fields))
        if unknown or missing:
            raise ValueError("sizes of another version of the reproduction (" + "; ".join(
                part for part in (f"unknown: {', '.join(unknown)}" if unknown else "",
                                  f"missing: {', '.join(missing)}" if missing else "") if part) + ")")
        return cls(**{key: (tuple(value) if isinstance(value, list) else value) for key, value in fields.items()},
                   seeds=int(seeds))

    @property
    def preset(self):
        """"default" or "quick" when these are the sizes of ``DEFAULT`` or ``QUICK`` (any number of seeds),
        else None."""
        def sizes(miniature):
            return dict(miniature.to_dict(), data=None)  # the same sizes of another copy of the data

        for name, preset in (("default", DEFAULT), ("quick", QUICK)):
            if sizes(preset) == sizes(self):
                return name
        return None


DEFAULT = Miniature()

# The pipeline end to end in under two minutes on the idle machine: every step and every section of the report,
# at a size that shows nothing (ten images per class, one epoch), with two seeds so that every comparison is
# paired and given an interval.
QUICK = Miniature(train_per_class=10, test_per_class=3, multi_crop_per_class=1, epochs=1, stall_epochs=1,
                  scenes=(40, 10, 10), classifier_epochs=1, localisation_epochs=1, transfer_train_per_class=2,
                  transfer_test_per_class=2, seeds=2)

# What the miniature changes besides the sizes, and why; the report prints these.
DEPARTURES = (
    "Inputs are divided by the training set's per-channel standard deviation after the mean is subtracted, and "
    "the weights start from Glorot's uniform initialisation scaled by the ReLU gain sqrt(2): with the paper's "
    "0-255 inputs such a net at an eighth of the width diverges at the first steps, and with plain Glorot "
    "weights it learns more slowly.",
    "No dropout: with 128 FC units and a few thousand SGD steps, dropout 0.5 kept the nets near chance for "
    "most of the run (a net A: 55% validation error after 4 epochs with it, 32% without).",
    "The scale-jittered nets are trained from scratch for as many epochs as the fixed-scale ones, not "
    "fine-tuned from an S = 384 net: both sides of the comparison get the same budget.",
    "The learning rate is divided by 10 when the validation error has not improved for `patience` epochs, "
    "as in the paper, but the runs are only `epochs` long, so it rarely is.",
    "Appendix B's digits are drawn white on black, as Fashion-MNIST's items are (the paper carries features "
    "from photographs to photographs). Drawn in the embedded default's random colours, which the nets never "
    "saw, they gave E-jittered's features 53.3 ± 3.8% mean class recall against 81.1 ± 2.2% white on black "
    "(3 seeds; the raw pixels: 92.4% coloured, 93.9% white on black).",
)
