"""OverFeat's greedy merging of box predictions (Sermanet et al., 2014, Sect. 4.3), used by Appendix A.1's
second testing protocol: "first merges spatially close predictions (by averaging their coordinates), and
then rates them based on the class scores".

OverFeat's procedure, on the set B of one class's boxes from every position and scale:

    repeat:
        (b1, b2) = the pair of B with the smallest match_score
        if match_score(b1, b2) > t: stop
        B = B - {b1, b2} + {box_merge(b1, b2)}

with ``box_merge`` "the average of the bounding boxes' coordinates", and each box's score the sum of the
class outputs "associated with the input windows from which each bounding box was predicted", so a merged
box carries the sum of its two parts' scores. The final prediction is the merged box with the largest score.

The match score. OverFeat computes it "using the sum of the distance between centers of the two bounding
boxes and the intersection area of the boxes". Taken literally that sum *grows* with the overlap, so two
identical boxes would be the last pair merged, against the procedure's purpose; the overlap term must fall as
the boxes overlap more. We read it as a distance made of the same two parts, each scale-free so that one
threshold serves every image size:

    match_score(b1, b2) = |c1 - c2| / ((w1 + h1 + w2 + h2) / 4)  +  (1 - IoU(b1, b2))

the centre distance in units of the boxes' mean side, plus the part of their union that the intersection
does not cover. Identical boxes score 0; two equal boxes shifted by half a side score 0.5 + 2/3.
"""
import numpy as np

from .boxes import as_boxes, centres, iou

__all__ = ["match_scores", "greedy_merge", "MERGE_THRESHOLD"]

# Pairs scoring above this are not merged: boxes a quarter side apart with IoU 0.6 (0.25 + 0.4) still merge.
MERGE_THRESHOLD = 0.75


def match_scores(boxes_a, boxes_b):
    """(N, M) match scores (see the module docstring) between (N, 4) ``boxes_a`` and (M, 4) ``boxes_b``."""
    a, b = as_boxes(boxes_a, "boxes_a"), as_boxes(boxes_b, "boxes_b")
    distance = np.linalg.norm(centres(a)[:, None, :] - centres(b)[None, :, :], axis=2)
    sides_a = (a[:, 2] - a[:, 0]) + (a[:, 3] - a[:, 1])
    sides_b = (b[:, 2] - b[:, 0]) + (b[:, 3] - b[:, 1])
    mean_side = (sides_a[:, None] + sides_b[None, :]) / 4
    return distance / np.maximum(mean_side, 1e-12) + (1.0 - iou(a, b))


def greedy_merge(boxes, scores, threshold=MERGE_THRESHOLD):
    """Merge ``boxes`` greedily as OverFeat does (module docstring).

    Parameters
    ----------
    boxes : (N, 4) ``(x_min, y_min, x_max, y_max)``, N >= 1 (e.g. one class's boxes over all positions and
        scales, and over several localisation nets: "the union of their sets of bounding box predictions")
    scores : (N,) non-negative scores (the class posterior of the window each box came from)
    threshold : stop when the closest pair's match score exceeds it (0: merge only identical boxes)

    Returns
    -------
    merged_boxes : (M, 4), M <= N, in decreasing order of score
    merged_scores : (M,) the summed scores
    members : list of M lists, the indices of the input boxes each merged box absorbed
    """
    boxes = [row for row in as_boxes(boxes)]
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(boxes),):
        raise ValueError(f"greedy_merge: expected {len(boxes)} scores, got shape {scores.shape}")
    if len(boxes) == 0:
        raise ValueError("greedy_merge: no boxes to merge")
    if not np.all(np.isfinite(scores)) or np.any(scores < 0):
        raise ValueError("greedy_merge: scores must be finite and non-negative (class posteriors)")
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"greedy_merge: threshold must be a non-negative number, got {threshold!r}")
    scores = list(scores)
    members = [[i] for i in range(len(boxes))]
    while len(boxes) > 1:
        distances = match_scores(np.array(boxes), np.array(boxes))
        np.fill_diagonal(distances, np.inf)
        first, second = np.unravel_index(int(np.argmin(distances)), distances.shape)
        if distances[first, second] > threshold:
            break
        merged = 0.5 * (boxes[first] + boxes[second])
        total = scores[first] + scores[second]
        absorbed = members[first] + members[second]
        for index in sorted((first, second), reverse=True):
            del boxes[index], scores[index], members[index]
        boxes.append(merged)
        scores.append(total)
        members.append(absorbed)
    order = np.argsort(-np.array(scores), kind="stable")
    return np.array(boxes)[order], np.array(scores)[order], [sorted(members[i]) for i in order]
