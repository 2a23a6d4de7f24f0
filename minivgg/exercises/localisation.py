"""Lesson 10's exercises: intersection over union, OverFeat's greedy merging, and questions on boxes.

::

    from minivgg.exercises import localisation
    localisation.check_iou(iou)                      # iou(box_a, box_b) for two (x_min, y_min, x_max, y_max)
    localisation.check_greedy_merge(greedy_merge)    # (boxes, scores, threshold, match_scores) -> (boxes, scores)
"""
import numpy as np

from ..localisation import greedy_merge as library_merge
from ..localisation import iou as library_iou
from ..localisation.merge import MERGE_THRESHOLD, match_scores
from .checking import Case, Mistake, Question, check_answers as _check_answers, compare_with_library

__all__ = ["check_iou", "check_greedy_merge", "QUESTIONS", "check_answers"]


def _library_iou(a, b):
    return np.float64(library_iou(np.asarray(a, np.float64), np.asarray(b, np.float64))[0, 0])


def _iou_cases():
    pairs = [([0, 0, 10, 10], [5, 5, 15, 15], "overlapping squares"), ([0, 0, 10, 10], [0, 0, 10, 10], "equal boxes"),
             ([0, 0, 10, 10], [20, 20, 30, 30], "disjoint boxes"), ([0, 0, 10, 10], [10, 0, 20, 10], "touching boxes"),
             ([30.5, 12.25, 250.0, 180.0], [60.0, 40.0, 300.0, 200.5], "boxes of a 384-pixel image"),
             ([0, 0, 10, 10], [2, 2, 4, 4], "a box inside another"), ([0, 0, 10, 4], [8, -3, 30, 1], "a thin overlap")]
    return [Case(name, (np.array(a, np.float64), np.array(b, np.float64))) for a, b, name in pairs]


def _wrap_iou(function):
    return lambda a, b: np.float64(function(a, b))


def _iou_plus_one(a, b):
    """The VOC devkit's pixel convention: a box from x_min to x_max covers x_max - x_min + 1 pixels."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    area = lambda box: (box[2] - box[0] + 1) * (box[3] - box[1] + 1)  # noqa: E731
    return np.float64(w * h / (area(a) + area(b) - w * h))


def _iou_union_is_sum(a, b):
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return np.float64(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])))


def _iou_unclamped(a, b):
    inter = (min(a[2], b[2]) - max(a[0], b[0])) * (min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return np.float64(inter / union)


IOU_MISTAKES = (
    Mistake.computing(_iou_union_is_sum, "your union counts the intersection twice: area(a) + area(b) - "
                                         "intersection"),
    Mistake.computing(_iou_unclamped, "right for overlapping boxes, wrong for boxes far apart: there the width or "
                                      "height of the 'intersection' is negative; clamp each at 0"),
    Mistake.computing(_iou_plus_one, "that is the VOC devkit's pixel convention (+1 on every side): minivgg's boxes "
                                     "are continuous coordinates, x_max - x_min wide"),
)


def check_iou(iou):
    """Compare ``iou(box_a, box_b) -> float`` for two boxes ``(x_min, y_min, x_max, y_max)`` with
    ``minivgg.localisation.iou``."""
    return compare_with_library("iou", _wrap_iou(iou), _library_iou, _iou_cases(), IOU_MISTAKES,
                                ("draw the two boxes and their intersection: a box whose sides are the inner of "
                                 "the two boxes' sides",), rtol=1e-9)


def _merge_cases():
    rng = np.random.default_rng(21)
    cases = []
    hand = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [51, 50, 61, 60], [50, 51, 60, 61],
                     [0, 80, 5, 85]], np.float64)
    cases.append(Case("two clusters and a stray (the lesson's example)",
                      (hand, np.array([0.4, 0.3, 0.2, 0.2, 0.2, 0.05]), MERGE_THRESHOLD)))
    for clusters, size, threshold in ((3, 4, MERGE_THRESHOLD), (5, 3, MERGE_THRESHOLD), (2, 6, 0.3)):
        centres = rng.uniform(40, 300, (clusters, 2))
        boxes = []
        for centre in centres:
            side = rng.uniform(30, 120)
            for _ in range(size):  # the boxes of a few positions and scales, jittered around one object
                c = centre + rng.normal(0, side / 10, 2)
                s = side * rng.uniform(0.85, 1.15, 2)
                boxes.append([c[0] - s[0] / 2, c[1] - s[1] / 2, c[0] + s[0] / 2, c[1] + s[1] / 2])
        scores = rng.uniform(0.01, 1, len(boxes))
        cases.append(Case(f"{clusters} objects, {len(boxes)} boxes, threshold {threshold}",
                          (np.array(boxes), scores, threshold)))
    return cases


def _library_merged(boxes, scores, threshold, match_scores=None):
    merged, merged_scores, _ = library_merge(boxes, scores, threshold)
    return merged, merged_scores


def _learner_merge(function):
    def call(boxes, scores, threshold):
        merged, merged_scores = function(boxes, scores, threshold, match_scores)[:2]
        return np.asarray(merged, np.float64).reshape(-1, 4), np.asarray(merged_scores, np.float64)
    return call


def _merge_variant(combine="average", score="sum", pick="closest", order=True):
    def merge(boxes, scores, threshold, match_scores=match_scores):
        boxes, scores = [b for b in np.asarray(boxes, np.float64)], list(scores)
        while len(boxes) > 1:
            distances = match_scores(np.array(boxes), np.array(boxes))
            np.fill_diagonal(distances, np.inf if pick == "closest" else -np.inf)
            flat = np.argmin(distances) if pick == "closest" else np.argmax(distances)
            first, second = np.unravel_index(int(flat), distances.shape)
            if distances[first, second] > threshold:
                break
            a, b = boxes[first], boxes[second]
            box = 0.5 * (a + b) if combine == "average" else np.concatenate([np.minimum(a[:2], b[:2]),
                                                                             np.maximum(a[2:], b[2:])])
            value = scores[first] + scores[second] if score == "sum" else max(scores[first], scores[second])
            for index in sorted((first, second), reverse=True):
                del boxes[index], scores[index]
            boxes.append(box)
            scores.append(value)
        boxes, scores = np.array(boxes), np.array(scores)
        if order:
            keep = np.argsort(-scores, kind="stable")
            boxes, scores = boxes[keep], scores[keep]
        return boxes, scores
    return merge


MERGE_MISTAKES = (
    Mistake.computing(_learner_merge(_merge_variant(score="max")),
                      "your merged boxes are right, their scores too low: a merged box carries the sum of the "
                      "scores of the windows it came from (OverFeat), so boxes many windows agree on win"),
    Mistake.computing(_learner_merge(_merge_variant(combine="union")),
                      "you merge two boxes into the box around both: OverFeat averages their coordinates",
                      "merged = (box_a + box_b) / 2"),
    Mistake.computing(_learner_merge(_merge_variant(order=False)),
                      "the right boxes and scores, in another order: return them in decreasing order of score "
                      "(the first is the prediction)"),
    Mistake.computing(_learner_merge(_merge_variant(pick="farthest")),
                      "you merge the pair with the largest match score: the match score is a distance, so merge the "
                      "smallest first, and stop when even the smallest exceeds the threshold"),
)


def check_greedy_merge(greedy_merge):
    """Compare ``greedy_merge(boxes, scores, threshold, match_scores) -> (merged_boxes, merged_scores)`` with
    ``minivgg.localisation.greedy_merge``. ``match_scores(a, b)`` is the library's (N, M) distance between two
    sets of boxes, handed to the learner's function; the merged boxes come in decreasing order of score."""
    return compare_with_library("greedy_merge", _learner_merge(greedy_merge), _library_merged, _merge_cases(),
                                MERGE_MISTAKES,
                                ("run the lesson's hand-made example and print the pairs you merge",
                                 "repeat: find the pair with the smallest match score; stop if it exceeds the "
                                 "threshold; else replace the two by their average, with the sum of their scores"),
                                names=("merged boxes", "merged scores"), rtol=1e-9)


def _half_side_shift():
    return float(library_iou(np.array([0.0, 0, 2, 2]), np.array([1.0, 0, 3, 2]))[0, 0])


def _half_shift_match():
    return float(match_scores(np.array([[0.0, 0, 2, 2]]), np.array([[1.0, 0, 3, 2]]))[0, 0])


QUESTIONS = {
    "iou_half_shift": Question(
        "Two equal square boxes, one shifted sideways by half its side: their IoU? (three significant digits)",
        _half_side_shift, tolerance=0.005, hints=("intersection: half a box; union: one and a half boxes",),
        mistakes=((lambda: 0.5, ("0.5 is the intersection over one box's area; divide by the union",)),)),
    "match_half_shift": Question(
        "The same two boxes: their match score in minivgg's greedy merging? (three significant digits)",
        _half_shift_match, tolerance=0.005,
        hints=("centre distance in units of the mean side (1 / 2), plus 1 - IoU",)),
    "merged_at_threshold": Question(
        "Do those two boxes merge at minivgg's threshold? Answer 1 (yes) or 0 (no).",
        lambda: int(_half_shift_match() <= MERGE_THRESHOLD),
        hints=("compare the match score with minivgg.localisation.merge.MERGE_THRESHOLD",)),
}


def check_answers(**answers):
    """Check the pen-and-paper answers (keywords as in ``QUESTIONS``; ``None`` = not answered yet)."""
    return _check_answers(QUESTIONS, answers)
