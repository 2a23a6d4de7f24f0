"""Images with bounding boxes, and the crops a localisation net trains on (Appendix A.1).

Training is "similar to that of the classification ConvNets (Sect. 3.1)": the image is isotropically
rescaled to a fixed smallest side S (the paper: 256 or 384, no scale jittering) and a random square crop is
taken; the target is the ground-truth box in the crop's frame (``boxes.encode_boxes``). A random crop may
cut the object away altogether, leaving nothing to regress; OverFeat (Sermanet et al., 2014, Sect. 4.2),
whose recipe Appendix A follows, does "not train on bounding boxes with less than 50% overlap with the input
field of view". So the crop is drawn uniformly among the positions that keep at least
``min_object_fraction`` (0.5) of the object's area inside (the largest fraction, when no position reaches
it); with several boxes, the one with most of its area inside the crop is the target. Validation and the
first testing protocol use the centre crop.

The batches come from ``BoxCropLoader``, which has the ``DataLoader`` interface ``minivgg.training.train``
reads (``batch_size``, ``len``, ``epoch(e, start_batch)``, ``dataset``); like it, every draw for image i in
epoch e comes from a generator seeded with (seed, e, i), so a run resumes exactly.
"""
import contextlib
from dataclasses import dataclass

import numpy as np

from ..data.images import UNREADABLE, skip_record, warn_skipped
from ..data.loader import epoch_order, sample_generator
from ..data.transforms import ScaleJitter, centre_position, rescale_smallest_side
from .boxes import as_boxes, encode_boxes, intersection_areas

__all__ = ["BoxDataset", "BoxTargets", "BoxCropLoader", "crop_positions"]


class BoxDataset:
    """Images with their class and ground-truth boxes (ILSVRC localisation: one class an image, one or more
    boxes of that class).

    Parameters
    ----------
    images : sequence of (H, W, 3) uint8 RGB arrays (sizes may differ)
    labels : (N,) integers in [0, len(class_names))
    boxes : sequence of N arrays (K_i, 4), each image's boxes ``(x_min, y_min, x_max, y_max)``, K_i >= 1,
        inside the image
    class_names : list of str
    """

    def __init__(self, images, labels, boxes, class_names):
        self.images = list(images)
        self.class_names = [str(name) for name in class_names]
        labels = np.asarray(labels)
        if labels.shape != (len(self.images),) or labels.dtype.kind not in "iu":
            raise ValueError(f"BoxDataset: expected {len(self.images)} integer labels, got {labels.dtype} "
                             f"{labels.shape}")
        if len(self.images) == 0:
            raise ValueError("BoxDataset: no images")
        if labels.min() < 0 or labels.max() >= len(self.class_names):
            raise ValueError(f"BoxDataset: labels must lie in [0, {len(self.class_names)})")
        if len(boxes) != len(self.images):
            raise ValueError(f"BoxDataset: {len(boxes)} box arrays for {len(self.images)} images")
        self.labels = labels.astype(np.int64)
        self.boxes = []
        for index, (image, image_boxes) in enumerate(zip(self.images, boxes)):
            if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
                    and image.dtype == np.uint8):
                raise ValueError(f"BoxDataset: image {index} must be an RGB uint8 array (H, W, 3)")
            image_boxes = as_boxes(image_boxes, f"BoxDataset image {index}")
            height, width = image.shape[:2]
            if len(image_boxes) == 0:
                raise ValueError(f"BoxDataset: image {index} has no box")
            if (image_boxes[:, :2].min() < 0 or image_boxes[:, 2].max() > width
                    or image_boxes[:, 3].max() > height):
                raise ValueError(f"BoxDataset: a box of image {index} leaves the {width}x{height} image")
            self.boxes.append(image_boxes)

    def __len__(self):
        return len(self.images)

    def load(self, index):
        """``(image (H, W, 3) uint8, label int, boxes (K, 4) float64)`` of image ``index``."""
        return self.images[index], int(self.labels[index]), self.boxes[index]

    def subset(self, indices):
        """The images at ``indices`` as a new BoxDataset."""
        return BoxDataset([self.images[i] for i in indices], self.labels[list(indices)],
                          [self.boxes[i] for i in indices], self.class_names)

    def __repr__(self):
        return f"BoxDataset({len(self)} images, {len(self.class_names)} classes)"


@dataclass
class BoxTargets:
    """The targets of one batch: ``labels`` (N,) int64, the ground-truth class of each crop, and
    ``parameters`` (N, 4) float32, its box as ``(t_x, t_y, t_w, t_h)`` in the crop's frame."""

    labels: np.ndarray
    parameters: np.ndarray

    def __len__(self):
        return len(self.labels)


def crop_positions(height, width, crop, box, min_object_fraction):
    """Top-left corners ``(top, left)`` of the ``crop`` windows of a ``height`` x ``width`` image that hold at
    least ``min_object_fraction`` of ``box``'s area, as two int arrays; the best-covering corners if none do.

    The fraction of the box inside the window at (top, left) is ``overlap_y(top) * overlap_x(left) / area``:
    separable, so all positions are scored with two 1-D overlaps and an outer product.
    """
    x_min, y_min, x_max, y_max = (float(v) for v in box)
    lefts, tops = np.arange(width - crop + 1), np.arange(height - crop + 1)
    overlap_x = np.clip(np.minimum(x_max, lefts + crop) - np.maximum(x_min, lefts), 0, None)
    overlap_y = np.clip(np.minimum(y_max, tops + crop) - np.maximum(y_min, tops), 0, None)
    area = max((x_max - x_min) * (y_max - y_min), 1e-12)
    fraction = np.outer(overlap_y, overlap_x) / area
    good = fraction >= min_object_fraction - 1e-12
    if not good.any():
        good = fraction >= fraction.max() - 1e-12
    rows, columns = np.nonzero(good)
    return tops[rows], lefts[columns]


class BoxCropLoader:
    """Batches of crops with box targets (or class labels), for ``minivgg.training.train``.

    Parameters
    ----------
    dataset : BoxDataset
    batch_size : crops per batch
    scale : the training scale S (int), or (S_min, S_max) to jitter it; each >= crop_size
    crop_size : the net's input side
    preprocessing : ``minivgg.preprocessing.Preprocessing`` the net expects
    train : random crops holding at least ``min_object_fraction`` of the object, random order, full
        batches only; False: centre crops in the dataset's order (validation, testing protocol 1)
    targets : "boxes" (yield ``BoxTargets``) or "classes" (yield the labels, to train the classifier on
        the same crops)
    min_object_fraction : OverFeat's 50% rule (0: any position)
    flip : mirror half of the training crops (and their boxes) left-right
    seed : with the epoch and the image index, fixes every draw

    ``epoch(e, start_batch)`` yields ``(x (B, 3, crop, crop) float32, BoxTargets or labels (B,))``.
    """

    def __init__(self, dataset, batch_size, scale, crop_size, preprocessing, train=True, targets="boxes",
                 min_object_fraction=0.5, flip=False, seed=0):
        if not all(hasattr(dataset, name) for name in ("load", "class_names", "__len__")):
            raise TypeError(f"BoxCropLoader: expected a BoxDataset (or a set with load, class_names and len, such "
                            f"as folders.AnnotatedImages), got {type(dataset).__name__}")
        if targets not in ("boxes", "classes"):
            raise ValueError(f"BoxCropLoader: targets must be 'boxes' or 'classes', got {targets!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"BoxCropLoader: batch_size must be a positive integer, got {batch_size!r}")
        self.scale = ScaleJitter.from_value(scale)
        if self.scale.S_min < crop_size:
            raise ValueError(f"BoxCropLoader: the scale S={self.scale.S_min} is smaller than the {crop_size} crop")
        if not 0 <= min_object_fraction <= 1:
            raise ValueError(f"BoxCropLoader: min_object_fraction must be in [0, 1], got {min_object_fraction!r}")
        self.dataset, self.batch_size, self.crop_size = dataset, int(batch_size), int(crop_size)
        self.preprocessing, self.train, self.targets = preprocessing, bool(train), targets
        self.min_object_fraction, self.flip, self.seed = float(min_object_fraction), bool(flip), int(seed)
        self.skipped = []
        if len(self) == 0:
            raise ValueError(f"BoxCropLoader: {len(dataset)} images give no full batch of {batch_size}")

    def __len__(self):
        if self.train:
            return len(self.dataset) // self.batch_size
        return -(-len(self.dataset) // self.batch_size)

    def sample(self, index, epoch):
        """``(crop (c, c, 3) uint8, label, box parameters (4,))`` of image ``index`` in ``epoch``."""
        image, label, boxes = self.dataset.load(index)
        crop = self.crop_size
        if self.train:
            rng = sample_generator(self.seed, epoch, index)
            scale = self.scale.draw(rng)
        else:
            rng, scale = None, (self.scale.S_min + self.scale.S_max) // 2
        rescaled = rescale_smallest_side(image, scale)
        factor_y, factor_x = rescaled.shape[0] / image.shape[0], rescaled.shape[1] / image.shape[1]
        boxes = boxes * np.array([factor_x, factor_y, factor_x, factor_y])
        height, width = rescaled.shape[:2]
        if self.train:
            # The object the crop is built around: drawn among the image's boxes.
            target = boxes[int(rng.integers(len(boxes)))]
            tops, lefts = crop_positions(height, width, crop, target, self.min_object_fraction)
            choice = int(rng.integers(len(tops)))
            top, left = int(tops[choice]), int(lefts[choice])
        else:
            top, left = centre_position(height, width, crop)
        window = np.array([left, top, left + crop, top + crop], dtype=np.float64)
        box = boxes[int(np.argmax(intersection_areas(boxes, window)[:, 0]))]
        pixels = rescaled[top:top + crop, left:left + crop]
        if self.train and self.flip and rng.random() < 0.5:
            pixels = pixels[:, ::-1]
            box = np.array([2 * left + crop - box[2], box[1], 2 * left + crop - box[0], box[3]])
        return pixels, label, encode_boxes(box, (left, top, crop))[0]

    def epoch(self, epoch_index, start_batch=0):
        """The batches of epoch ``epoch_index`` from ``start_batch`` on (see the class docstring)."""
        return self._preprocessed(self.pixel_epoch(epoch_index, start_batch))

    def _preprocessed(self, pixel_batches):
        with contextlib.closing(pixel_batches):
            for pixels, _, targets in pixel_batches:
                yield self.preprocessing.apply(pixels), targets

    def pixel_epoch(self, epoch_index, start_batch=0):
        """``epoch``'s batches before preprocessing, for a device to preprocess (``data.device_feed``):
        ``(crops (B, crop, crop, 3) uint8, None (no colour shift), targets)``."""
        if start_batch > len(self):
            raise ValueError(f"BoxCropLoader: start_batch {start_batch} is past the {len(self)} batches")
        return self._epoch(int(epoch_index), int(start_batch))

    def _epoch(self, epoch_index, start_batch):
        order = epoch_order(len(self.dataset), self.seed, epoch_index, shuffle=self.train)
        self.skipped = []
        try:
            for number in range(start_batch, len(self)):
                samples = []
                for i in order[number * self.batch_size:(number + 1) * self.batch_size]:
                    # As DataLoader's "leave_out": a file that cannot be decoded (images read from disk as
                    # they are cropped) is left out of its batch, named in a warning when the epoch ends.
                    try:
                        samples.append(self.sample(int(i), epoch_index))
                    except UNREADABLE as error:
                        describe = getattr(self.dataset, "describe", lambda index: f"image {index}")
                        self.skipped.append(skip_record(describe(int(i)), error))
                if not samples:
                    continue
                pixels = np.stack([s[0] for s in samples])
                labels = np.array([s[1] for s in samples], dtype=np.int64)
                if self.targets == "classes":
                    yield pixels, None, labels
                else:
                    yield pixels, None, BoxTargets(labels, np.stack([s[2] for s in samples]).astype(np.float32))
        finally:
            warn_skipped(self.skipped, f"epoch {epoch_index} of {self.dataset!r}", "unreadable image (left out)",
                         "unreadable images (left out)")

    def __repr__(self):
        return (f"BoxCropLoader({self.dataset!r}, batch_size={self.batch_size}, scale={self.scale!r}, "
                f"crop_size={self.crop_size}, train={self.train}, targets={self.targets!r})")
