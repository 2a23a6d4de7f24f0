"""Training augmentation and test-time rescaling of Sect. 3.1-3.2, one uint8 (H, W, 3) RGB image at a time.

Training (Sect. 3.1): the image is isotropically rescaled so its smallest side is S, either fixed
(S = 256 or 384) or drawn per image from [S_min, S_max] (scale jittering, [256, 512] in the paper); a random
224 x 224 crop is taken, flipped horizontally with probability 1/2, and shifted in colour along the
principal components of the training set's RGB values (Krizhevsky et al., 2012). Testing (Sect. 3.2):
the smallest side is rescaled to Q; a centre crop gives single-crop evaluation.

Every random draw takes an explicit ``numpy.random.Generator``, so the loader can give each image of each
epoch its own seeded generator and a run can be reproduced or resumed exactly.
"""
import numpy as np
from PIL import Image

__all__ = ["RESAMPLE", "rescaled_size", "rescale_smallest_side", "random_position", "centre_position",
           "random_crop", "centre_crop",
           "random_horizontal_flip", "rescaled_crop", "ScaleJitter", "PCAColourShift", "TrainAugmentation",
           "EvalTransform"]

# Pillow's bilinear filter widens its support when shrinking, so a downscale averages every source pixel
# (no aliasing), as Caffe's and torchvision's resizes do.
RESAMPLE = Image.BILINEAR


def _check_image(image, caller):
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"{caller}: expected an RGB uint8 image of shape (H, W, 3), got {got}")


def _check_side(value, name, caller):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{caller}: {name} must be a positive integer, got {value!r}")
    return int(value)


def rescaled_size(height, width, smallest_side):
    """(height, width) after isotropic rescaling so that the smaller of the two becomes ``smallest_side``.

    The other side is ``round(side * S / smallest)``, at least 1 pixel.
    """
    if height <= width:
        return smallest_side, max(1, int(width * smallest_side / height + 0.5))
    return max(1, int(height * smallest_side / width + 0.5)), smallest_side


def rescale_smallest_side(image, smallest_side):
    """Isotropic rescaling (Sect. 3.1: S at training, Sect. 3.2: Q at test time).

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB
    smallest_side : int S (or Q)

    Returns
    -------
    (H', W', 3) uint8 with ``min(H', W') == S`` and ``W' / H'`` the original aspect ratio to within a pixel
    (``rescaled_size``); Pillow bilinear resampling, antialiased when shrinking. The image itself when it
    already has that size. ``TooLargeError`` for an image of an aspect ratio beyond ``limits.MAX_ASPECT_RATIO``
    or a side beyond ``limits.MAX_SCALE``: what it would cost is bounded before it is allocated.
    """
    from ..limits import MAX_SCALE, check_aspect_ratio

    _check_image(image, "rescale_smallest_side")
    smallest_side = _check_side(smallest_side, "smallest_side", "rescale_smallest_side")
    if smallest_side > MAX_SCALE:
        from ..errors import TooLargeError
        raise TooLargeError(f"rescale_smallest_side: a smallest side of {smallest_side:,} pixels is more than the "
                            f"limit of {MAX_SCALE:,}")
    check_aspect_ratio(image.shape[0], image.shape[1], f"an image of {image.shape[1]}x{image.shape[0]} pixels")
    height, width = rescaled_size(image.shape[0], image.shape[1], smallest_side)
    if (height, width) == image.shape[:2]:
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), RESAMPLE))


def _check_crop(image, size, caller):
    _check_image(image, caller)
    size = _check_side(size, "crop size", caller)
    if image.shape[0] < size or image.shape[1] < size:
        raise ValueError(f"{caller}: the {size}x{size} crop does not fit in the {image.shape[0]}x{image.shape[1]} "
                         f"image (rescale its smallest side to at least {size} first)")
    return size


def random_position(height, width, size, rng):
    """Top-left corner (top, left) of a uniformly random ``size`` window in a ``height`` x ``width`` image:
    top ~ U{0 .. height - size}, then left ~ U{0 .. width - size}."""
    return int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))


def centre_position(height, width, size):
    """Top-left corner ((height - size) // 2, (width - size) // 2) of the centred ``size`` window."""
    return (height - size) // 2, (width - size) // 2


def random_crop(image, size, rng):
    """A ``size`` x ``size`` window at a uniformly random position (Sect. 3.1: "randomly cropped").

    Parameters
    ----------
    image : (H, W, 3) uint8 with H, W >= size
    size : int crop side (224 in the paper)
    rng : numpy.random.Generator; draws the top row, then the left column

    Returns
    -------
    (size, size, 3) uint8 view ``image[top:top + size, left:left + size]``,
    top ~ U{0 .. H - size}, left ~ U{0 .. W - size}.
    """
    size = _check_crop(image, size, "random_crop")
    top, left = random_position(image.shape[0], image.shape[1], size, rng)
    return image[top:top + size, left:left + size]


def centre_crop(image, size):
    """The ``size`` x ``size`` window at the centre (single-crop evaluation, Sect. 4.1).

    Returns a (size, size, 3) view starting at row ``(H - size) // 2`` and column ``(W - size) // 2``.
    """
    size = _check_crop(image, size, "centre_crop")
    top, left = centre_position(image.shape[0], image.shape[1], size)
    return image[top:top + size, left:left + size]


def random_horizontal_flip(image, rng):
    """The image mirrored left-right with probability 1/2 (Sect. 3.1); draws one ``rng.random()``.

    Returns an (H, W, 3) view, ``image[:, ::-1]`` when flipped.
    """
    _check_image(image, "random_horizontal_flip")
    return image[:, ::-1] if rng.random() < 0.5 else image


def rescaled_crop(image, smallest_side, top, left, size):
    """``rescale_smallest_side(image, S)[top:top + size, left:left + size]`` computed on the window alone.

    Pillow resamples only the source region under the window (its filter still reads the pixels around
    it), so a 224 crop of an image rescaled to S = 512 costs a 224 x 224 resampling, not a 512 x 683 one.
    Equal to rescaling then cropping up to rounding (a test checks it).

    Returns
    -------
    (size, size, 3) uint8 array (a view of ``image`` when it already has the rescaled size).
    """
    height, width = rescaled_size(image.shape[0], image.shape[1], smallest_side)
    if not (0 <= top <= height - size and 0 <= left <= width - size):
        raise ValueError(f"rescaled_crop: the {size}x{size} window at ({top}, {left}) leaves the rescaled "
                         f"{height}x{width} image")
    if (height, width) == image.shape[:2]:
        return image[top:top + size, left:left + size]
    scale_y, scale_x = image.shape[0] / height, image.shape[1] / width
    box = (left * scale_x, top * scale_y, (left + size) * scale_x, (top + size) * scale_y)
    return np.asarray(Image.fromarray(image).resize((size, size), RESAMPLE, box=box))


class ScaleJitter:
    """The training scale S: fixed (``S_min == S_max``) or drawn per image from U{S_min .. S_max} (Sect. 3.1).

    ``ScaleJitter(256)`` is single-scale training at S = 256; ``ScaleJitter(256, 512)`` is the paper's
    multi-scale training.
    """

    def __init__(self, S_min, S_max=None):
        S_min = _check_side(S_min, "S_min", "ScaleJitter")
        S_max = S_min if S_max is None else _check_side(S_max, "S_max", "ScaleJitter")
        if S_max < S_min:
            raise ValueError(f"ScaleJitter: S_max {S_max} is smaller than S_min {S_min}")
        self.S_min, self.S_max = S_min, S_max

    @classmethod
    def from_value(cls, scale):
        """An int S (fixed scale) or a pair (S_min, S_max) (jittered scale) as a ScaleJitter."""
        if isinstance(scale, cls):
            return scale
        if isinstance(scale, (tuple, list)):
            if len(scale) != 2:
                raise ValueError(f"scale: expected S or (S_min, S_max), got {scale!r}")
            return cls(scale[0], scale[1])
        return cls(scale)

    @property
    def fixed(self):
        return self.S_min == self.S_max

    def draw(self, rng):
        """S for one image: an integer uniform on [S_min, S_max]; no draw at all for a fixed S."""
        if self.fixed:
            return self.S_min
        return int(rng.integers(self.S_min, self.S_max + 1))

    def __repr__(self):
        return f"ScaleJitter({self.S_min})" if self.fixed else f"ScaleJitter({self.S_min}, {self.S_max})"


class PCAColourShift:
    """Random RGB colour shift along the principal components of the training set's pixels (Krizhevsky
    et al., 2012, Sect. 4.1; VGG Sect. 3.1).

    Parameters
    ----------
    eigenvalues : (3,) eigenvalues lambda of the 3 x 3 covariance of RGB pixel values in 0-255
        (``compute_statistics``)
    eigenvectors : (3, 3), column k the unit eigenvector p_k of ``eigenvalues[k]``
    std : standard deviation of the Gaussian factors alpha (0.1 as Krizhevsky et al.)

    Notes
    -----
    Krizhevsky et al. add ``[p1 p2 p3] [alpha1 lambda1, alpha2 lambda2, alpha3 lambda3]^T`` to every pixel,
    alpha_k ~ N(0, std), once per image. The eigenvalues are variances, so the formula depends on the pixel
    unit; it is applied, as in fb.resnet.torch and ChainerCV, to pixels in [0, 1] and the offset scaled back
    to 0-255: ``offset = 255 * P (alpha * lambda / 255**2) = P (alpha * lambda) / 255``. On ImageNet that
    shifts the first component by about 5 grey levels (std); taken literally in 0-255 units it would be
    255 times larger.
    """

    def __init__(self, eigenvalues, eigenvectors, std=0.1):
        eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
        eigenvectors = np.asarray(eigenvectors, dtype=np.float64)
        if eigenvalues.shape != (3,) or eigenvectors.shape != (3, 3):
            raise ValueError(f"PCAColourShift: expected eigenvalues (3,) and eigenvectors (3, 3), got "
                             f"{eigenvalues.shape} and {eigenvectors.shape}")
        if np.any(eigenvalues < 0) or not np.all(np.isfinite(eigenvalues)):
            raise ValueError(f"PCAColourShift: eigenvalues of a covariance are finite and >= 0, got {eigenvalues}")
        if not np.isfinite(std) or std < 0:
            raise ValueError(f"PCAColourShift: std must be >= 0, got {std!r}")
        self.eigenvalues, self.eigenvectors, self.std = eigenvalues, eigenvectors, float(std)

    def __call__(self, rng):
        """The (3,) float64 RGB offset for one image (0-255 scale); draws three normals from ``rng``."""
        alpha = rng.normal(0.0, self.std, size=3)
        return self.eigenvectors @ (alpha * self.eigenvalues) / 255.0


class TrainAugmentation:
    """Sect. 3.1's training augmentation: rescale to S (fixed or jittered), random crop, random flip,
    random colour shift.

    Parameters
    ----------
    scale : int S, or (S_min, S_max) for scale jittering, or a ScaleJitter; S_min >= crop_size
    crop_size : int, the network's input side (224)
    flip : random horizontal flips
    colour_shift_std : std of the PCA colour shift's factors (0: none)
    pca : (eigenvalues (3,), eigenvectors (3, 3)) of the training set (``compute_statistics``); without it
        there is no colour shift, whatever ``colour_shift_std`` says

    The loader calls ``draw_scale(rng)`` first, decodes the image knowing S (draft mode), then calls
    ``self(image, rng, S)``. The draws, in order, from the image's own generator: S (when jittered), crop
    top, crop left, flip, three colour factors: exactly those of ``random_crop`` and
    ``random_horizontal_flip`` applied to ``rescale_smallest_side(image, S)``.
    """

    def __init__(self, scale=256, crop_size=224, flip=True, colour_shift_std=0.1, pca=None):
        self.scale = ScaleJitter.from_value(scale)
        self.crop_size = _check_side(crop_size, "crop_size", "TrainAugmentation")
        if self.scale.S_min < self.crop_size:
            raise ValueError(f"TrainAugmentation: the smallest training scale S_min={self.scale.S_min} is smaller "
                             f"than the {self.crop_size} crop (S >= crop size, Sect. 3.1)")
        self.flip = bool(flip)
        self.colour_shift = None
        if pca is not None and colour_shift_std > 0:
            eigenvalues, eigenvectors = pca
            self.colour_shift = PCAColourShift(eigenvalues, eigenvectors, colour_shift_std)

    def draw_scale(self, rng):
        """The smallest side S this image will be rescaled to (the first draw)."""
        return self.scale.draw(rng)

    def __call__(self, image, rng, scale=None):
        """One augmented crop.

        Parameters
        ----------
        image : (H, W, 3) uint8 RGB, any size (it is rescaled to S, up or down)
        rng : numpy.random.Generator of this image
        scale : S from ``draw_scale(rng)``; drawn here when None

        Returns
        -------
        crop : (crop_size, crop_size, 3) uint8
        colour_offset : (3,) float64 RGB offset (0-255) to add before the mean subtraction, or None
        """
        _check_image(image, "TrainAugmentation")
        scale = self.draw_scale(rng) if scale is None else scale
        height, width = rescaled_size(image.shape[0], image.shape[1], scale)
        top, left = random_position(height, width, self.crop_size, rng)
        crop = rescaled_crop(image, scale, top, left, self.crop_size)
        if self.flip:
            crop = random_horizontal_flip(crop, rng)
        offset = self.colour_shift(rng) if self.colour_shift is not None else None
        return crop, offset

    def __repr__(self):
        return (f"TrainAugmentation(scale={self.scale!r}, crop_size={self.crop_size}, flip={self.flip}, "
                f"colour_shift={'std %g' % self.colour_shift.std if self.colour_shift else None})")


class EvalTransform:
    """Single-crop evaluation input: rescale the smallest side to Q, take the centre crop (Sect. 4.1).

    Same protocol as ``TrainAugmentation`` (``draw_scale``, ``__call__``) and no randomness.
    """

    def __init__(self, Q, crop_size=224):
        self.Q = _check_side(Q, "Q", "EvalTransform")
        self.crop_size = _check_side(crop_size, "crop_size", "EvalTransform")
        if self.Q < self.crop_size:
            raise ValueError(f"EvalTransform: the test scale Q={self.Q} is smaller than the {self.crop_size} crop")

    def draw_scale(self, rng=None):
        return self.Q

    def __call__(self, image, rng=None, scale=None):
        """(crop (crop_size, crop_size, 3) uint8, None): the centre crop of the image rescaled to Q."""
        _check_image(image, "EvalTransform")
        height, width = rescaled_size(image.shape[0], image.shape[1], self.Q)
        top, left = centre_position(height, width, self.crop_size)
        return rescaled_crop(image, self.Q, top, left, self.crop_size), None

    def __repr__(self):
        return f"EvalTransform(Q={self.Q}, crop_size={self.crop_size})"
