"""The embedded localisation set: real handwritten digits placed on real photographs, nothing downloaded.

scikit-learn ships both ingredients: 1797 handwritten 8 x 8 digits (``load_digits``, the UCI set the
embedded classification data uses) and two colour photographs (``load_sample_images``: a Chinese temple and
a flower, 427 x 640). Each scene is a square window of random size and position in one of the photos,
resized to ``size`` x ``size``, with one digit drawn on it at a random scale and position: a random stroke
colour, dark on a bright patch and bright on a dark one, blended through the glyph's intensity upscaled with
Pillow's bicubic filter. The class is the digit. The ground-truth box is exact by construction: the tight
box, in continuous pixel coordinates, of the pixels where the stroke outweighs the photo (blending mask
>= 0.5), i.e. what one sees of the digit.

The glyphs of the train, val and test splits are disjoint (a stratified split of the 1797, as
``minivgg.data.load_digits`` makes it), and everything is fixed by one seed.
"""
import numpy as np
from PIL import Image

from ..data.digits import DIGIT_CLASSES
from .data import BoxDataset

__all__ = ["load_digit_scenes", "render_scene", "SCENE_COUNTS"]

# Scenes per split by default: enough for a tiny net to learn, small enough to train in seconds.
SCENE_COUNTS = {"train": 960, "val": 128, "test": 256}
# The photos at 40% of their contrast: still real clutter, but a tiny net trained for seconds sees the digit.
BACKGROUND_CONTRAST = 0.4


def _photos():
    from sklearn.datasets import load_sample_images

    return [np.asarray(image, dtype=np.uint8) for image in load_sample_images().images]


def render_scene(photo, glyph, size, digit_side, rng, background_contrast=BACKGROUND_CONTRAST):
    """One scene: a window of ``photo`` resized to ``size`` and the ``glyph`` drawn on it.

    Parameters
    ----------
    photo : (H, W, 3) uint8 RGB
    glyph : (8, 8) intensities 0-16
    size : the scene's side
    digit_side : side of the square the glyph is upscaled to (< size)
    rng : numpy.random.Generator (window side and corner, digit corner, colour)
    background_contrast : the photo's deviations from its mean are scaled by this (1: the photo as it is)

    Returns
    -------
    image : (size, size, 3) uint8
    box : (4,) float64, the tight box of the pixels whose blending mask is >= 0.5
    """
    height, width = photo.shape[:2]
    side = int(rng.integers(min(height, width) // 4, min(height, width) + 1))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    window = Image.fromarray(photo[top:top + side, left:left + side])
    background = np.asarray(window.resize((size, size), Image.BILINEAR), dtype=np.float64)
    # The photo's contrast is lowered so that the digit stands out from the clutter.
    background = background.mean() + background_contrast * (background - background.mean())
    mask = np.asarray(Image.fromarray(np.asarray(glyph, np.float32) / 16.0, mode="F")
                      .resize((digit_side, digit_side), Image.BICUBIC))
    mask = np.clip(mask, 0.0, 1.0)
    y, x = int(rng.integers(0, size - digit_side + 1)), int(rng.integers(0, size - digit_side + 1))
    patch = background[y:y + digit_side, x:x + digit_side]
    # Dark strokes on bright patches, bright strokes on dark ones, so every digit stays visible.
    bright = patch.mean() > 127
    stroke = rng.uniform(0, 40, size=3) if bright else rng.uniform(215, 255, size=3)
    background[y:y + digit_side, x:x + digit_side] = patch * (1 - mask[..., None]) + stroke * mask[..., None]
    rows, columns = np.nonzero(mask >= 0.5)
    box = np.array([x + columns.min(), y + rows.min(), x + columns.max() + 1, y + rows.max() + 1], np.float64)
    return np.rint(background).astype(np.uint8), box


def load_digit_scenes(size=64, digit_sides=(16, 32), counts=None, seed=0):
    """The embedded localisation set, split into train / val / test.

    Parameters
    ----------
    size : int >= 16, side of the square scenes
    digit_sides : (smallest, largest) side of the square a digit is drawn in, inclusive; < size
    counts : dict of scenes per split (default ``SCENE_COUNTS``)
    seed : int >= 0, fixes the glyph split, the photos' windows, the positions, scales and colours

    Returns
    -------
    dict "train", "val", "test" of ``BoxDataset``s, classes "0" .. "9", one digit and one box a scene.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"load_digit_scenes: size must be an integer >= 16, got {size!r}")
    low, high = (int(v) for v in digit_sides)
    if not 8 <= low <= high < size:
        raise ValueError(f"load_digit_scenes: digit_sides must satisfy 8 <= smallest <= largest < size={size}, "
                         f"got {digit_sides!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"load_digit_scenes: seed must be a non-negative integer, got {seed!r}")
    counts = dict(SCENE_COUNTS, **(counts or {}))
    digits = load_digits()
    index = np.arange(len(digits.target))
    rest, test = train_test_split(index, test_size=0.2, stratify=digits.target, random_state=int(seed))
    train, val = train_test_split(rest, test_size=0.25, stratify=digits.target[rest], random_state=int(seed))
    photos = _photos()
    splits = {}
    for number, (name, glyphs) in enumerate((("train", train), ("val", val), ("test", test))):
        count = counts[name]
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"load_digit_scenes: counts[{name!r}] must be a positive integer, got {count!r}")
        rng = np.random.default_rng([int(seed), 16, number])
        chosen = rng.choice(glyphs, size=count, replace=count > len(glyphs))
        images, boxes = [], []
        for glyph_index in chosen:
            photo = photos[int(rng.integers(len(photos)))]
            image, box = render_scene(photo, digits.images[glyph_index], size, int(rng.integers(low, high + 1)),
                                      rng)
            images.append(image)
            boxes.append(box[None, :])
        splits[name] = BoxDataset(images, digits.target[chosen], boxes, DIGIT_CLASSES)
    return splits
