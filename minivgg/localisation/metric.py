"""The ILSVRC localisation error (Appendix A.2, Russakovsky et al., 2014), and two box baselines.

Each image gets up to five guesses, (class, box) pairs in order of confidence. A guess is right when its
class is one of the image's ground-truth classes and its box overlaps one of that class's ground-truth boxes
with intersection over union at least 0.5. The image counts as an error when none of its first ``top``
guesses is right: top-5 error with five guesses (Table 9), and with one guess of the ground-truth class,
the error of the first testing protocol (Table 8).
"""
import numpy as np

from .boxes import as_boxes, iou

__all__ = ["IOU_THRESHOLD", "guess_is_right", "image_is_localised", "localisation_error", "whole_image_boxes",
           "centre_boxes"]

IOU_THRESHOLD = 0.5


def guess_is_right(guess_class, guess_box, truth_classes, truth_boxes, threshold=IOU_THRESHOLD):
    """Whether one (class, box) guess matches a ground-truth box of the same class with IoU >= threshold."""
    truth_classes = np.asarray(truth_classes)
    truth_boxes = as_boxes(truth_boxes, "ground-truth boxes")
    if truth_classes.shape != (len(truth_boxes),):
        raise ValueError(f"{len(truth_boxes)} ground-truth boxes but {truth_classes.shape} classes")
    same = truth_classes == guess_class
    if not same.any():
        return False
    return bool(iou(guess_box, truth_boxes[same]).max() >= threshold)


def image_is_localised(guess_classes, guess_boxes, truth_classes, truth_boxes, top=5, threshold=IOU_THRESHOLD):
    """Whether any of the first ``top`` guesses is right (``guess_is_right``).

    Parameters
    ----------
    guess_classes : (G,) class indices, most confident first
    guess_boxes : (G, 4) their boxes
    truth_classes : (K,) the classes of the ground-truth boxes
    truth_boxes : (K, 4)
    top : how many guesses count (ILSVRC: 5)
    """
    guess_classes = np.asarray(guess_classes).reshape(-1)
    guess_boxes = as_boxes(guess_boxes, "guessed boxes")
    if len(guess_classes) != len(guess_boxes):
        raise ValueError(f"{len(guess_classes)} guessed classes but {len(guess_boxes)} guessed boxes")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    return any(guess_is_right(c, b, truth_classes, truth_boxes, threshold)
               for c, b in zip(guess_classes[:top], guess_boxes[:top]))


def localisation_error(guesses, truths, top=5, threshold=IOU_THRESHOLD):
    """The fraction of images none of whose first ``top`` guesses is right.

    ``guesses`` and ``truths`` are equal-length sequences of ``(classes, boxes)`` pairs, one per image.
    """
    if len(guesses) != len(truths):
        raise ValueError(f"{len(guesses)} images with guesses but {len(truths)} with ground truth")
    if len(truths) == 0:
        raise ValueError("localisation_error: no images")
    right = [image_is_localised(gc, gb, tc, tb, top, threshold) for (gc, gb), (tc, tb) in zip(guesses, truths)]
    return 1.0 - float(np.mean(right))


def whole_image_boxes(sizes):
    """Baseline: the box covering the whole image, (N, 4) for ``sizes`` (N, 2) ``(height, width)``."""
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    return np.stack([np.zeros(len(sizes)), np.zeros(len(sizes)), sizes[:, 1], sizes[:, 0]], axis=1)


def centre_boxes(sizes, relative_size):
    """Baseline: a box centred in each image, ``relative_size`` (w, h) times the image's width and height
    (e.g. the training boxes' mean relative size). (N, 4) for ``sizes`` (N, 2) ``(height, width)``."""
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    relative_w, relative_h = (float(v) for v in relative_size)
    half = 0.5 * np.stack([relative_w * sizes[:, 1], relative_h * sizes[:, 0]], axis=1)
    centre = 0.5 * sizes[:, ::-1]
    return np.concatenate([centre - half, centre + half], axis=1)
