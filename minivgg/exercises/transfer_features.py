"""Lesson 11's exercises: VOC 2007's 11-point average precision, stacking descriptors, and questions on
Appendix B's features.

::

    from minivgg.exercises import transfer_features
    transfer_features.check_average_precision(average_precision)   # (scores, labels) -> 11-point AP
    transfer_features.check_stack(stack)                            # list of (N, D_i) -> (N, sum D_i)
"""
import numpy as np

from ..transfer import average_precision as library_average_precision
from ..transfer import precision_recall
from ..transfer import stack as library_stack
from .checking import Case, Mistake, Question, check_answers as _check_answers, compare_with_library

__all__ = ["check_average_precision", "check_stack", "QUESTIONS", "check_answers"]


def _library_ap(scores, labels):
    return np.float64(library_average_precision(scores, labels, "voc07"))


def _ap_cases():
    rng = np.random.default_rng(22)
    cases = [Case("the lesson's ranking of ten images", (np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]),
                                                         np.array([1, -1, 1, 1, 0, -1, -1, 1, -1, -1])))]
    for images, positives, difficult in ((40, 0.3, 0.1), (200, 0.1, 0.05), (25, 0.5, 0.0)):
        labels = np.where(rng.random(images) < positives, 1, -1)
        labels[rng.random(images) < difficult] = 0
        labels[0] = 1  # at least one positive
        scores = rng.normal(0, 1, images) + 1.5 * (labels == 1)  # SVM scores: the positives somewhat higher
        cases.append(Case(f"{images} images, {int((labels == 1).sum())} positive, {int((labels == 0).sum())} "
                          f"difficult", (scores, labels)))
    return cases


def _ap_variant(difficult="ignored", points=11, interpolate=True):
    def ap(scores, labels):
        labels = np.asarray(labels).copy()
        if difficult == "negative":
            labels[labels == 0] = -1
        precision, recall = precision_recall(scores, labels)
        thresholds = np.linspace(0, 1, 11) if points == 11 else np.linspace(0.1, 1, 10)
        total = 0.0
        for t in thresholds:
            if interpolate:
                reached = precision[recall >= t - 1e-12]
                total += reached.max() if reached.size else 0.0
            else:
                reached = np.flatnonzero(recall >= t - 1e-12)
                total += precision[reached[0]] if reached.size else 0.0
        return np.float64(total / len(thresholds))
    return ap


AP_MISTAKES = (
    Mistake.computing(_ap_variant(difficult="negative"),
                      "you count the 'difficult' images (flag 0) as negatives: VOC leaves them out entirely",
                      "drop the images whose label is 0 before ranking"),
    Mistake.computing(_ap_variant(points=10),
                      "you average 10 recall points: VOC 2007 uses 11, 0, 0.1, ..., 1.0 (recall 0 included)"),
    Mistake.computing(_ap_variant(interpolate=False),
                      "you take the precision where recall first reaches t: VOC takes the largest precision at "
                      "any recall >= t (the interpolated curve)", "max of precision[recall >= t]"),
)


def check_average_precision(average_precision):
    """Compare ``average_precision(scores, labels) -> float`` (VOC 2007's 11-point AP; labels 1 present, -1
    absent, 0 difficult, distinct scores) with ``minivgg.transfer.average_precision(..., "voc07")``."""
    return compare_with_library("average_precision", lambda s, l: np.float64(average_precision(s, l)), _library_ap,
                                _ap_cases(), AP_MISTAKES,
                                ("rank the images by decreasing score and compute precision and recall after each",
                                 "AP = 1/11 * sum over t = 0, 0.1, ..., 1 of max(precision at recall >= t), 0 when "
                                 "no recall reaches t"), rtol=1e-9)


def _stack_cases():
    rng = np.random.default_rng(23)
    # Two nets' fc7 descriptors after ReLU: non-negative, of very different norms (the reason for normalising).
    # float32, as the nets compute them and ``minivgg.transfer.stack`` returns them.
    return [Case("two nets' descriptors, 4096-D and 512-D, of 3 images",
                 ([np.abs(rng.normal(0, 3, (3, 4096))).astype(np.float32),
                   np.abs(rng.normal(0, 0.2, (3, 512))).astype(np.float32)],)),
            Case("three scales of 256-D descriptors of 5 images",
                 ([np.abs(rng.normal(0, s, (5, 256))).astype(np.float32) for s in (1, 2, 5)],))]


def _plain_concatenation(parts):
    joined = np.concatenate(parts, axis=1)
    return joined / np.linalg.norm(joined, axis=1, keepdims=True)


def _parts_only(parts):
    return np.concatenate([p / np.linalg.norm(p, axis=1, keepdims=True) for p in parts], axis=1)


def _whole_array_norm(parts):
    normalised = [p / np.linalg.norm(p) for p in parts]
    joined = np.concatenate(normalised, axis=1)
    return joined / np.linalg.norm(joined)


STACK_MISTAKES = (
    Mistake.computing(_plain_concatenation,
                      "you normalise only the concatenation: normalise each part first, so that a part with larger "
                      "activations does not outweigh the other"),
    Mistake.computing(_parts_only, "each part is normalised but the stack is not: normalise the concatenation "
                                   "again (its norm is sqrt(number of parts))"),
    Mistake.computing(_whole_array_norm, "you normalise the whole array: every image's descriptor (each row) has "
                                         "norm 1", "np.linalg.norm(part, axis=1, keepdims=True)"),
)


def check_stack(stack):
    """Compare ``stack(parts) -> (N, sum D_i)`` (each (N, D_i) part L2-normalised row by row, the parts
    concatenated, the result normalised again) with ``minivgg.transfer.stack``."""
    return compare_with_library("stack", stack, library_stack, _stack_cases(), STACK_MISTAKES,
                                ("every row of the result has norm 1, and every part weighs the same",), rtol=1e-5)


QUESTIONS = {
    "lesson_ranking_ap": Question(
        "The ranking of lesson 11's last section (scores 0.95 ... 0.1, flags 1, -1, 1, 1, 0, -1, -1, 1, -1, -1): "
        "its 11-point AP? (three significant digits)",
        lambda: _library_ap(*_ap_cases()[0].arguments), tolerance=0.005,
        hints=("leave out the difficult image, compute precision and recall after each image, then the 11-point "
               "average",)),
    "stacked_dimensions": Question(
        "fc7 descriptors of VGG-16 (4096-D) at three scales, stacked: how many dimensions?",
        lambda: library_stack([np.ones((1, 4096))] * 3).shape[1], hints=("stacking concatenates",),
        mistakes=((lambda: 4096, ("that is averaging the scales; stacking concatenates them",)),)),
    "stacked_norm_of_parts": Question(
        "After stacking two descriptors, what is the norm of each part of the result? (three significant digits)",
        lambda: float(np.linalg.norm(library_stack([np.ones((1, 8)), np.ones((1, 8))])[0, :8])), tolerance=0.005,
        hints=("each part has norm 1 before the last normalisation; the concatenation then has norm sqrt(2)",)),
}


def check_answers(**answers):
    """Check the pen-and-paper answers (keywords as in ``QUESTIONS``; ``None`` = not answered yet)."""
    return _check_answers(QUESTIONS, answers)
