"""Bounding boxes: corners, intersection over union, and the (centre, size) parameters a localisation net
regresses (Appendix A.1).

Boxes are ``(x_min, y_min, x_max, y_max)`` in continuous pixel coordinates: the image spans
``[0, width] x [0, height]``, pixel (row r, column c) is the unit square ``[c, c + 1] x [r, r + 1]``, and a box's
area is ``(x_max - x_min) * (y_max - y_min)`` with no "+1" (a one-pixel box is ``(c, r, c + 1, r + 1)``).
Annotation files that count inclusive pixel indices are converted when read (``annotations``).

The net predicts a box as "a 4-D vector storing its centre coordinates, width, and height" (Appendix A.1),
relative to the square window it sees (the training crop, or one position of the dense net's window grid):

    t_x = (centre_x - window_left) / side,   t_y = (centre_y - window_top) / side,
    t_w = width / side,                       t_h = height / side,

where ``side`` is the window's side in the same pixels. The box filling the window is (0.5, 0.5, 1, 1)
whatever the image size, so the Euclidean loss means the same at S = 256 as at S = 384 (or 64), and a box
reaching beyond the window (an object cut by the crop) simply has t_x - t_w / 2 < 0 or t_x + t_w / 2 > 1.
"""

from ..backends.reference.array_module import array_module

__all__ = ["as_boxes", "areas", "intersection_areas", "iou", "centres", "encode_boxes", "decode_boxes",
           "windows_array"]


def _rows_of_four(values, name, what, meaning):
    """``values`` as a float64 (N, 4) array (one row (4,) becomes (1, 4)); ValueError naming ``name`` else."""
    xp = array_module(values)
    values = xp.asarray(values, dtype=xp.float64)
    if values.ndim == 1 and values.shape[0] == 4:
        values = values[None, :]
    if values.ndim != 2 or values.shape[1] != 4:
        raise ValueError(f"{name}: expected {what} of shape (N, 4) as {meaning}, got shape {tuple(values.shape)}")
    return values


def as_boxes(boxes, name="boxes"):
    """``boxes`` as a float64 (N, 4) array, checked: finite, ``x_min <= x_max`` and ``y_min <= y_max``.

    A single box (4,) becomes (1, 4). Zero-width or zero-height (degenerate) boxes are allowed: they have
    area 0. Raises ValueError naming ``name`` and the first bad box otherwise.
    """
    xp = array_module(boxes)
    boxes = _rows_of_four(boxes, name, "boxes", "(x_min, y_min, x_max, y_max)")
    if not bool(xp.all(xp.isfinite(boxes))):
        raise ValueError(f"{name}: box coordinates must be finite, got NaN or infinity")
    inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bool(xp.any(inverted)):
        first = int(xp.argmax(inverted))
        raise ValueError(f"{name}: box {first} {boxes[first].tolist()} has x_max < x_min or y_max < y_min; "
                         f"boxes are (x_min, y_min, x_max, y_max)")
    return boxes


def areas(boxes):
    """(N,) areas ``(x_max - x_min) * (y_max - y_min)`` of (N, 4) boxes."""
    boxes = as_boxes(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def intersection_areas(boxes_a, boxes_b):
    """(N, M) areas of the intersections of (N, 4) ``boxes_a`` with (M, 4) ``boxes_b`` (0 where disjoint)."""
    a, b = as_boxes(boxes_a, "boxes_a"), as_boxes(boxes_b, "boxes_b")
    xp = array_module(a, b)
    width = xp.minimum(a[:, None, 2], b[None, :, 2]) - xp.maximum(a[:, None, 0], b[None, :, 0])
    height = xp.minimum(a[:, None, 3], b[None, :, 3]) - xp.maximum(a[:, None, 1], b[None, :, 1])
    return xp.maximum(width, 0.0) * xp.maximum(height, 0.0)


def iou(boxes_a, boxes_b):
    """Intersection over union of every pair: the ILSVRC overlap criterion (Appendix A.2).

    Parameters
    ----------
    boxes_a : (N, 4) boxes ``(x_min, y_min, x_max, y_max)`` (or one box (4,))
    boxes_b : (M, 4) boxes

    Returns
    -------
    (N, M) float64: ``area(a & b) / area(a | b)``, in [0, 1]. Boxes that merely touch (share an edge) have
    intersection 0, so IoU 0. Two degenerate boxes (union 0) have IoU 0: a box without area cannot match.
    """
    a, b = as_boxes(boxes_a, "boxes_a"), as_boxes(boxes_b, "boxes_b")
    xp = array_module(a, b)
    intersection = intersection_areas(a, b)
    union = areas(a)[:, None] + areas(b)[None, :] - intersection
    # Where the union is 0 both boxes are empty; divide by 1 there to give 0 / 1 = 0 without a warning.
    return intersection / xp.where(union > 0, union, 1.0)


def centres(boxes):
    """(N, 2) centres ``((x_min + x_max) / 2, (y_min + y_max) / 2)``."""
    boxes = as_boxes(boxes)
    return 0.5 * (boxes[:, :2] + boxes[:, 2:])


def windows_array(windows, count):
    """``windows`` as (count, 3) float64 ``(left, top, side)``; one window (3,) is repeated for every box."""
    xp = array_module(windows)
    windows = xp.asarray(windows, dtype=xp.float64)
    if windows.ndim == 1:
        windows = xp.broadcast_to(windows, (count, windows.shape[0]))
    if windows.shape != (count, 3):
        raise ValueError(f"windows: expected (left, top, side) per box, shape ({count}, 3) or (3,), got "
                         f"{tuple(windows.shape)}")
    if not bool(xp.all(windows[:, 2] > 0)):
        raise ValueError("windows: every window needs a positive side")
    return windows


def encode_boxes(boxes, windows):
    """Boxes to the regression targets of Appendix A.1, relative to square windows.

    Parameters
    ----------
    boxes : (N, 4) ``(x_min, y_min, x_max, y_max)`` in image pixels
    windows : (N, 3) or (3,) ``(left, top, side)`` of the square window each box is seen in, same pixels

    Returns
    -------
    (N, 4) float64 ``(t_x, t_y, t_w, t_h)``: ``((x_min + x_max) / 2 - left) / side``,
    ``((y_min + y_max) / 2 - top) / side``, ``(x_max - x_min) / side``, ``(y_max - y_min) / side``.
    """
    boxes = as_boxes(boxes)
    xp = array_module(boxes)
    windows = windows_array(windows, boxes.shape[0])
    side = windows[:, 2:3]
    centre = (centres(boxes) - windows[:, :2]) / side
    size = (boxes[:, 2:] - boxes[:, :2]) / side
    return xp.concatenate([centre, size], axis=1)


def decode_boxes(parameters, windows):
    """The inverse of ``encode_boxes``: (N, 4) ``(t_x, t_y, t_w, t_h)`` and their windows -> (N, 4) corners.

    ``x_min = left + side * (t_x - t_w / 2)``, ``x_max = left + side * (t_x + t_w / 2)``, and so for y. A
    negative predicted size (the net is unconstrained) is taken as its absolute value, so the result is
    always a valid box.
    """
    xp = array_module(parameters)
    parameters = _rows_of_four(parameters, "decode_boxes", "parameters", "(t_x, t_y, t_w, t_h)")
    windows = windows_array(windows, parameters.shape[0])
    side = windows[:, 2:3]
    centre = windows[:, :2] + side * parameters[:, :2]
    half = 0.5 * side * xp.abs(parameters[:, 2:])
    return xp.concatenate([centre - half, centre + half], axis=1)
