"""Dense box prediction (Appendix A.1, second testing protocol): the localisation net applied fully
convolutionally to the whole image, "similarly to the classification task (Sect. 3.2)", giving a box per
position (and per class for PCR), each rated by the classification net's class posteriors at that position.

Where a position's box lives. With its FC layers as convolutions (FC1 as a KxK convolution, K = input
size / 32), the net's output at row i, column j of its map is what the net computes on the input window
whose top-left corner is (32 i, 32 j) and whose side is the training input size: the five 2x2 poolings make
the stride 32. (Up to the borders: inside the image the convolutions see the window's neighbours where a
crop of it would see zero padding. At Q = the input size there is one position, and it is exactly the crop.
The poolings round up (``VGG.to_fully_convolutional``), so at a Q that is not a multiple of 32 the last row and
column of windows hang over the bottom and right edges, and every pixel is in some window.) So the box at (i, j) is decoded in that window (``boxes.decode_boxes``), then scaled from
the image rescaled to Q back to the original image. The classifier, converted the same way, gives the
class posteriors of the same windows (same configuration and input size), which rate each box.
"""
from dataclasses import dataclass

import numpy as np

from ..backend import asarray, get_backend, to_host
from ..data.transforms import rescale_smallest_side
from ..evaluation.dense import dense_outputs
from .boxes import decode_boxes

__all__ = ["DENSE_STRIDE", "DenseBoxes", "dense_boxes", "window_grid"]

DENSE_STRIDE = 32  # five 2x2 max-poolings (Table 1): one output position per 32 input pixels


@dataclass
class DenseBoxes:
    """Every position's boxes at every scale for one image.

    Attributes
    ----------
    boxes : (P, C, 4) boxes in the original image's pixels; C = 1 (SCR: one box for all classes) or the
        number of classes (PCR: class k's box in ``boxes[:, k]``)
    posteriors : (P, classes) the classification net's soft-max posteriors of each position's window
    windows : (P, 4) each position's window as a box in the original image's pixels
    scales : (P,) the test scale Q each position comes from
    """

    boxes: np.ndarray
    posteriors: np.ndarray
    windows: np.ndarray
    scales: np.ndarray

    def boxes_for(self, class_index):
        """(P, 4) the boxes predicted for ``class_index`` (the shared box for SCR)."""
        return self.boxes[:, 0] if self.boxes.shape[1] == 1 else self.boxes[:, class_index]

    @staticmethod
    def union(parts):
        """Several nets' (or scales') predictions as one set: "the union of their sets of bounding box
        predictions" (Appendix A.1). SCR and PCR sets are combined by giving the SCR box to every class."""
        classes = max(part.boxes.shape[1] for part in parts)
        boxes = [np.broadcast_to(p.boxes, (p.boxes.shape[0], classes, 4)) for p in parts]
        return DenseBoxes(np.concatenate(boxes), np.concatenate([p.posteriors for p in parts]),
                          np.concatenate([p.windows for p in parts]), np.concatenate([p.scales for p in parts]))


def window_grid(rows, columns, side):
    """(rows * columns, 3) windows ``(left, top, side)`` of the dense map's positions, row by row."""
    tops, lefts = np.meshgrid(np.arange(rows) * DENSE_STRIDE, np.arange(columns) * DENSE_STRIDE, indexing="ij")
    return np.stack([lefts.ravel(), tops.ravel(), np.full(rows * columns, side)], axis=1).astype(np.float64)


def _map(net, preprocessing, image):
    """(outputs, rows, columns) of a fully-convolutional net on one image: (rows * columns, outputs) host array."""
    out = dense_outputs(net, preprocessing, [image], pool=None)[0]
    outputs, rows, columns = out.shape
    return out.reshape(outputs, rows * columns).T, rows, columns


def dense_boxes(localisation_net, classifier, image, scales, posteriors=None):
    """The boxes of every position of ``localisation_net`` on ``image`` at each test scale Q.

    Parameters
    ----------
    localisation_net : ``LocalisationNet``
    classifier : ``minivgg.models.VGG`` of the same input size (it rates the boxes)
    image : (H, W, 3) uint8 RGB, any size
    scales : test scales Q (the smallest side after isotropic rescaling), each >= the input size
    posteriors : optional (P, classes), the ``posteriors`` of an earlier call on the same image, classifier
        and scales with another localisation net of this input size: its windows are these, so the
        classifier is not run again

    Returns a ``DenseBoxes``.
    """
    from .net import LocalisationNet

    if not isinstance(localisation_net, LocalisationNet):
        raise TypeError(f"dense_boxes: expected a LocalisationNet, got {type(localisation_net).__name__}")
    if classifier.input_size != localisation_net.input_size:
        raise ValueError(f"dense_boxes: the classifier's input size {classifier.input_size} differs from the "
                         f"localisation net's {localisation_net.input_size}: their positions would not match")
    if classifier.num_classes != localisation_net.num_classes:
        raise ValueError(f"dense_boxes: the classifier has {classifier.num_classes} classes, the localisation "
                         f"net {localisation_net.num_classes}")
    side = localisation_net.input_size
    scales = [int(q) for q in np.atleast_1d(scales)]
    if not scales or min(scales) < side:
        raise ValueError(f"dense_boxes: test scales {scales} must all be at least the input size {side}")
    box_net = localisation_net.to_fully_convolutional().eval()
    class_net = classifier.to_fully_convolutional().eval() if posteriors is None else None
    softmax = get_backend().softmax
    parts, done = [], 0
    for q in scales:
        rescaled = rescale_smallest_side(image, q)
        outputs, rows, columns = _map(box_net, localisation_net.preprocessing, rescaled)
        windows = window_grid(rows, columns, side)
        count = rows * columns
        if posteriors is None:
            scores, _, _ = _map(class_net, classifier.preprocessing, rescaled)
            rated = np.asarray(to_host(softmax(asarray(scores.astype(np.float32)))), dtype=np.float64)
        else:
            rated, done = posteriors[done:done + count], done + count
        per_class = outputs.reshape(count, -1, 4)
        boxes = decode_boxes(per_class.reshape(-1, 4), np.repeat(windows, per_class.shape[1], axis=0))
        # Back from the image rescaled to Q to the original's pixels.
        factors = np.array([image.shape[1] / rescaled.shape[1], image.shape[0] / rescaled.shape[0]] * 2)
        boxes = boxes.reshape(count, per_class.shape[1], 4) * factors
        window_boxes = np.concatenate([windows[:, :2], windows[:, :2] + side], axis=1) * factors
        parts.append(DenseBoxes(boxes, rated, window_boxes, np.full(count, q)))
    dense = DenseBoxes.union(parts)
    if posteriors is not None and len(posteriors) != len(dense.boxes):
        raise ValueError(f"dense_boxes: posteriors of {len(posteriors)} positions given, the scales {scales} "
                         f"have {len(dense.boxes)}")
    return dense
