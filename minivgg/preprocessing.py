"""What a model expects its input pixels to look like, recorded with its weights.

The paper's only preprocessing is "subtracting the mean RGB value, computed on the training set, from each
pixel" (Sect. 2.1). Published weights differ: the authors' Caffe models expect BGR in 0-255 minus the BGR
mean (103.939, 116.779, 123.68); torchvision's expect RGB scaled to 0-1, minus (0.485, 0.456, 0.406),
divided by (0.229, 0.224, 0.225). Feeding one the other's preprocessing silently costs many points of
accuracy, so every weight file carries a ``Preprocessing`` and every path that feeds images to a model
applies it.
"""
import math
from dataclasses import asdict, dataclass

import numpy as np

from .backends.reference.array_module import array_module

__all__ = ["Preprocessing", "CAFFE_VGG", "TORCHVISION", "paper_mean_rgb"]


@dataclass(frozen=True)
class Preprocessing:
    """Pixel preprocessing: ``((pixels / 255 * input_range) [reordered to channel_order] - mean) / std``.

    Attributes
    ----------
    channel_order : "RGB" or "BGR", the order of the model's three input channels
    input_range : float, pixel values are scaled from 0-255 to 0-input_range first (255: unchanged)
    mean, std : three floats each, in the model's channel order and input range
    """

    channel_order: str = "RGB"
    input_range: float = 255.0
    mean: tuple = (0.0, 0.0, 0.0)
    std: tuple = (1.0, 1.0, 1.0)

    def __post_init__(self):
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"Preprocessing: channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        object.__setattr__(self, "input_range", _number(self.input_range, "input_range"))
        for name in ("mean", "std"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 3:
                raise ValueError(f"Preprocessing: {name} needs three values, got {value!r}")
            object.__setattr__(self, name, tuple(_number(v, name) for v in value))
        # A zero or negative std, or input range, would divide by zero or flip the image's sign; NaN and
        # infinity would turn every input into NaN and every prediction with it.
        if any(s <= 0 for s in self.std):
            raise ValueError(f"Preprocessing: std must be positive, got {self.std}")
        if self.input_range <= 0:
            raise ValueError(f"Preprocessing: input_range must be positive, got {self.input_range}")
        self._check_float32()

    def _check_float32(self):
        """Finite in float32, the dtype ``apply`` computes in: mean 1e308 and std 1e-308 are finite and positive
        in float64, but become inf and 0 in float32, and every input with them NaN."""
        with np.errstate(all="ignore"):
            values = {"input_range": np.float32(self.input_range), "mean": np.asarray(self.mean, np.float32),
                      "std": np.asarray(self.std, np.float32)}
            gain = values["input_range"] / np.float32(255.0) / values["std"]
            shift = values["mean"] / values["std"]
            largest = np.abs(gain * np.float32(255.0)) + np.abs(shift)  # the largest |input| a pixel can give
        for name, value in values.items():
            if not (np.isfinite(value).all() and (name == "mean" or (value > 0).all())):
                kind = "finite" if name == "mean" else "finite, positive"
                raise ValueError(f"Preprocessing: {name} {getattr(self, name)} is not a {kind} float32 (images are "
                                 f"preprocessed in float32: it becomes {value.tolist()})")
        if not (np.isfinite(largest).all() and (gain > 0).all()):
            raise ValueError(f"Preprocessing: input_range {self.input_range:g}, mean {self.mean} and std {self.std} "
                             f"overflow float32, the dtype images are preprocessed in (pixels would become "
                             f"{(gain * 255).tolist()} and shifts {shift.tolist()})")

    def apply(self, images, colour_offsets=None):
        """RGB images in 0-255 to the model's input, on the host.

        Parameters
        ----------
        images : (N, H, W, 3) uint8 or float array, RGB, 0-255
        colour_offsets : optional (N, 3) array added to the RGB pixels (0-255 scale) before anything else:
            the random RGB colour shift of training (Sect. 3.1)

        Returns
        -------
        (N, 3, H, W) float32 NumPy array in the model's channel order

        The same as ``apply_affine(images, *affine(len(images), colour_offsets))``, which is how a device
        applies it to pixels uploaded as they are (``minivgg.data.device_feed``): the same float32
        operations in the same order, so the same numbers.
        """
        images = _rgb_batch(np.asarray(images))
        return self.apply_affine(images, *self.affine(len(images), colour_offsets))

    def affine(self, count, colour_offsets=None):
        """The per-channel gain and per-image shift that ``apply_affine`` applies to ``count`` images.

        Returns
        -------
        gain : (3,) float32, ``input_range / 255 / std`` in the model's channel order
        shift : (count, 3) float32 host array, ``-mean / std`` plus each image's colour offset times the gain;
            without colour offsets (1, 3), the same for every image (it broadcasts)
        """
        # ((x + offset) * input_range / 255 - mean) / std as one multiply-add per channel: x * gain + shift.
        order = list(self.channel_order_of_rgb())
        std = np.asarray(self.std, np.float32)
        gain = np.float32(self.input_range / 255.0) / std
        shift = (-np.asarray(self.mean, np.float32) / std)[None, :]
        if colour_offsets is not None:
            if np.shape(colour_offsets) != (count, 3):
                raise ValueError(f"Preprocessing.apply: expected colour offsets of shape ({count}, 3), got "
                                 f"{np.shape(colour_offsets)}")
            shift = shift + np.asarray(colour_offsets, np.float32)[:, order] * gain
        return gain, np.ascontiguousarray(shift, dtype=np.float32)

    def apply_affine(self, images, gain, shift):
        """``images * gain + shift`` per channel, reordered and laid out NCHW: the arithmetic of ``apply``.

        Parameters
        ----------
        images : (N, H, W, 3) uint8 or float array of any array module (NumPy, CuPy), RGB, 0-255
        gain, shift : what ``affine`` gives (``shift`` on the images' device: (N, 3), or (1, 3) for all)

        Returns
        -------
        (N, 3, H, W) float32 array of the images' array module, in the model's channel order
        """
        images = _rgb_batch(images)
        xp = array_module(images)
        # Written straight into the NCHW output, one multiply and one add per channel, without temporaries the
        # size of the batch.
        out = xp.empty((images.shape[0], 3) + tuple(images.shape[1:3]), xp.float32)
        for channel, source in enumerate(self.channel_order_of_rgb()):
            xp.multiply(images[..., source], gain[channel], out=out[:, channel], dtype=xp.float32)
            out[:, channel] += shift[:, channel, None, None]
        return out

    def channel_order_of_rgb(self):
        """For each of the model's input channels, the index of the RGB channel it takes."""
        return (2, 1, 0) if self.channel_order == "BGR" else (0, 1, 2)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        """The ``Preprocessing`` a dict of ``to_dict`` describes; ValueError naming the field that is missing,
        unknown or out of range."""
        if not isinstance(data, dict):
            raise ValueError(f"preprocessing must be a mapping of {list(FIELDS)}, got {type(data).__name__}")
        missing, unknown = [f for f in FIELDS if f not in data], sorted(set(data) - set(FIELDS))
        if missing or unknown:
            raise ValueError(f"preprocessing needs exactly the fields {list(FIELDS)}: missing {missing}, "
                             f"unknown {unknown}")
        if not isinstance(data["channel_order"], str):
            raise ValueError(f"preprocessing.channel_order must be 'RGB' or 'BGR', got {data['channel_order']!r}")
        return cls(data["channel_order"], data["input_range"], data["mean"], data["std"])


FIELDS = ("channel_order", "input_range", "mean", "std")


def _rgb_batch(images):
    """``images`` when it is a (N, H, W, 3) batch, else ValueError."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"Preprocessing.apply: expected RGB images of shape (N, H, W, 3), got {tuple(images.shape)}")
    return images


def _number(value, name):
    """``value`` as a finite float, or ValueError naming the field (no silent casts of strings or bools)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"Preprocessing: {name} must hold numbers, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = float("inf")
    if not math.isfinite(number):
        raise ValueError(f"Preprocessing: {name} must be finite, got {value!r}")
    return number


def paper_mean_rgb(mean_rgb):
    """The paper's preprocessing: RGB in 0-255 minus the training set's mean RGB (Sect. 2.1)."""
    return Preprocessing("RGB", 255.0, tuple(mean_rgb), (1.0, 1.0, 1.0))


CAFFE_VGG = Preprocessing("BGR", 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))
TORCHVISION = Preprocessing("RGB", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
