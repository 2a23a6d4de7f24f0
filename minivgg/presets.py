"""The paper's training stages (Sect. 3.1, Table 3's rows) as named presets, and the embedded default.

A preset is named ``CONFIG/SCALE`` after Table 3: ``D/256`` trains D at a fixed smallest side S = 256 from
scratch (or pre-initialised from net A); ``D/384`` trains at S = 384 starting from the S = 256 weights with
learning rate 1e-3 ("to speed-up training"); ``D/256-512`` jitters S in [256, 512] and fine-tunes all layers
of the S = 384 model. Any configuration of Table 1 takes the same three stages.
"""
from dataclasses import dataclass

__all__ = ["Preset", "preset", "PRESET_SCALES", "DIGITS", "SMALL_DATA", "scale_for_crop"]


@dataclass(frozen=True)
class Preset:
    """One training stage: the model, the scale S, the first learning rate and what it starts from."""

    config: str
    scale: object           # int S, or (S_min, S_max) for scale jittering
    learning_rate: float
    starts_from: str        # what the paper initialises this stage with
    crop_size: int = 224
    flip: bool = True
    colour_shift_std: float = 0.1

    @property
    def name(self):
        scale = f"{self.scale[0]}-{self.scale[1]}" if isinstance(self.scale, tuple) else str(self.scale)
        return f"{self.config}/{scale}"

    @property
    def validation_scale(self):
        """Q for single-scale validation: S for a fixed S, (S_min + S_max) / 2 for a jittered one (Sect. 4.1)."""
        from .evaluate import single_test_scale

        return single_test_scale(self.scale)


PRESET_SCALES = {
    "256": (256, 1e-2, "random initialisation, or net A's first four conv and last three FC layers (--init-from)"),
    "384": (384, 1e-3, "the same configuration trained at S=256 (--weights)"),
    "256-512": ((256, 512), 1e-3, "the same configuration trained at S=384 (--weights)"),
}


def preset(name):
    """The preset called ``CONFIG/SCALE``, e.g. ``D/256-512``; ValueError listing the choices otherwise."""
    from .models import CONFIGURATIONS

    config, _, scale = name.partition("/")
    known_configs = list(CONFIGURATIONS)
    matched = [c for c in known_configs if c.lower() == config.lower()]
    if not matched or scale not in PRESET_SCALES:
        raise ValueError(f"unknown preset {name!r}: use CONFIG/SCALE with CONFIG in {known_configs} and SCALE in "
                         f"{list(PRESET_SCALES)} (e.g. 'D/256-512')")
    s, learning_rate, starts_from = PRESET_SCALES[scale]
    return Preset(matched[0], s, learning_rate, starts_from)


def scale_for_crop(scale, crop_size, reference_crop):
    """The scale S (an int or (S_min, S_max)) that keeps ``scale``'s ratio to ``reference_crop`` for a crop of
    ``crop_size``: ``round(S * crop_size / reference_crop)``. A small trial run at 32x32 crops then sees the
    same share of each image as the paper's 224x224 crops do (D/256 becomes S = 37, D/256-512 [37, 73])."""
    if isinstance(scale, (tuple, list)):
        return tuple(scale_for_crop(s, crop_size, reference_crop) for s in scale)
    return max(int(crop_size), int(round(scale * crop_size / reference_crop)))


# The embedded default: a quarter-width configuration A on the digits rendered at 40x40, trained on
# 32x32 crops with the smallest side jittered in [32, 40]. Digits are not mirror-symmetric: no flips.
DIGITS = dict(config="A", image_size=40, scale=(32, 40), crop_size=32, width_multiplier=0.25, fc_width=256,
              batch_size=32, learning_rate=0.01, weight_init="glorot", max_epochs=40, patience=3, flip=False,
              colour_shift_std=0.1)

# Fashion-MNIST, CIFAR-10 and any folder of IDX or CIFAR-10 binary files: the digits' run on the images as
# published (28x28 or 32x32, rescaled to S), with flips, since clothes and photographs are mirror-symmetric.
SMALL_DATA = dict({key: value for key, value in DIGITS.items() if key != "image_size"}, flip=True)
