"""The embedded default data set: scikit-learn's handwritten digits as small RGB images.

1797 real 8 x 8 handwritten digits (the UCI optical-recognition set) ship inside the scikit-learn wheel, so
``minivgg train`` can run end to end with no download. Each glyph is drawn as a coloured stroke on a
coloured background: both colours are drawn at random per image (the stroke always brighter than the
background on every channel), so the three channels carry different values and the colour says nothing
about the class, as in photographs; the shape alone does.
"""
import numpy as np
from PIL import Image

from .datasets import ArrayDataset

__all__ = ["load_digits", "render_digits", "render_white_on_black", "DIGIT_CLASSES", "SPLIT_FRACTIONS"]

DIGIT_CLASSES = [str(d) for d in range(10)]
SPLIT_FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}

# The glyphs touch the 8 x 8 border; a one-pixel margin keeps strokes inside random crops.
MARGIN = 1
# Background channels in [0, 0.35], stroke channels in [0.6, 1] of 255: every channel keeps a contrast of
# at least 0.25 between stroke and background.
BACKGROUND_RANGE, STROKE_RANGE = (0.0, 0.35), (0.6, 1.0)


def _glyph_masks(glyphs, image_size):
    """(N, image_size, image_size, 1) float masks in [0, 1]: the glyphs scaled to [0, 1], padded by ``MARGIN``
    and upscaled with Pillow's bicubic filter (clipped)."""
    glyphs = np.asarray(glyphs, dtype=np.float32) / 16.0
    padded = np.pad(glyphs, ((0, 0), (MARGIN, MARGIN), (MARGIN, MARGIN)))
    masks = np.stack([np.asarray(Image.fromarray(glyph, mode="F").resize((image_size, image_size), Image.BICUBIC))
                      for glyph in padded])
    return np.clip(masks, 0.0, 1.0)[..., None]


def render_digits(glyphs, image_size, rng):
    """Render 8 x 8 intensity glyphs as RGB images.

    Parameters
    ----------
    glyphs : (N, 8, 8) intensities in 0-16 (scikit-learn's ``load_digits().images``)
    image_size : int side of the square output
    rng : numpy.random.Generator for the colours (2 x 3 uniforms per image)

    Returns
    -------
    (N, image_size, image_size, 3) uint8: ``background * (1 - m) + stroke * m``, where m is the glyph
    scaled to [0, 1], padded by ``MARGIN`` and upscaled with Pillow's bicubic filter (clipped to [0, 1]).
    """
    masks = _glyph_masks(glyphs, image_size)
    background = rng.uniform(*BACKGROUND_RANGE, size=(len(glyphs), 1, 1, 3)) * 255
    stroke = rng.uniform(*STROKE_RANGE, size=(len(glyphs), 1, 1, 3)) * 255
    return np.rint(background * (1 - masks) + stroke * masks).astype(np.uint8)


def render_white_on_black(glyphs, image_size):
    """The glyphs as Fashion-MNIST draws its items: a white shape on black, the three channels equal;
    (N, image_size, image_size, 3) uint8, ``255 * m`` with m as in ``render_digits``."""
    masks = _glyph_masks(glyphs, image_size)
    return np.repeat(np.rint(255 * masks).astype(np.uint8), 3, axis=-1)


def load_digits(image_size=32, seed=0):
    """scikit-learn's 1797 handwritten digits, rendered in RGB and split 60/20/20.

    Parameters
    ----------
    image_size : int >= 8, side of the square images
    seed : int, fixes the colours and the stratified split (same seed, same data)

    Returns
    -------
    dict with keys "train", "val", "test", each an ``ArrayDataset`` of (N, image_size, image_size, 3)
    uint8 images and class names "0" .. "9"; 1079 / 359 / 359 images, each class in the same
    proportion in every split.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise ValueError(f"load_digits: image_size must be an integer >= 8, got {image_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"load_digits: seed must be a non-negative integer, got {seed!r}")
    digits = sklearn_digits()
    images = render_digits(digits.images, int(image_size), np.random.default_rng([int(seed), 8]))
    labels = digits.target.astype(np.int64)
    count = len(labels)
    index = np.arange(count)
    test_count = int(round(SPLIT_FRACTIONS["test"] * count))
    val_count = int(round(SPLIT_FRACTIONS["val"] * count))
    rest, test = train_test_split(index, test_size=test_count, stratify=labels, random_state=int(seed))
    train, val = train_test_split(rest, test_size=val_count, stratify=labels[rest], random_state=int(seed))
    splits = {}
    for name, part in (("train", train), ("val", val), ("test", test)):
        part = np.sort(part)
        part_images = images[part]
        part_images.flags.writeable = False  # shared by every loader of this split
        splits[name] = ArrayDataset(part_images, labels[part], DIGIT_CLASSES)
    return splits
