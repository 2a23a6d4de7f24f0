"""The two testing protocols of Appendix A.1 and the tables of Appendix A.2.

1. "The bounding box is obtained by applying the network only to the central crop of the image", for the
   ground-truth class: it compares settings (SCR or PCR, fine-tuning all layers or the FC ones) free of
   classification errors (Table 8).
2. The fully-fledged one: the top-5 classes from the classification net (dense evaluation, Sect. 3.2); for
   each, the boxes of the localisation net applied densely to the whole image at one or several scales (of
   several nets: the union of their boxes), merged greedily as OverFeat does and rated by the class
   posteriors of the windows they came from; the best-rated merged box is that class's guess. The top-5
   localisation error follows (Table 9).
"""
from dataclasses import dataclass

import numpy as np

from ..data.transforms import centre_position
from ..evaluation.dense import centre_crops, forward_in_batches
from .boxes import decode_boxes
from .dense import DenseBoxes, dense_boxes
from .merge import MERGE_THRESHOLD, greedy_merge
from .metric import centre_boxes, localisation_error, whole_image_boxes

__all__ = ["centre_crop_boxes", "Localisation", "localise", "evaluate_localisation", "format_localisation_table",
           "mean_relative_size"]


def centre_crop_boxes(net, images, classes, scale, batch_size=64):
    """Testing protocol 1: each image's box for ``classes`` from its central crop at smallest side ``scale``.

    Parameters
    ----------
    net : ``LocalisationNet``
    images : sequence of (H, W, 3) uint8 RGB
    classes : (N,) the class whose box is read (the ground truth in Table 8; ignored by SCR)
    scale : Q, the smallest side before the crop (>= the input size)

    Returns (N, 4) boxes in each original image's pixels.
    """
    side = net.input_size
    if scale < side:
        raise ValueError(f"centre_crop_boxes: the scale {scale} is smaller than the {side} crop")
    classes = np.asarray(classes, dtype=np.int64)
    if classes.shape != (len(images),):
        raise ValueError(f"centre_crop_boxes: {len(images)} images but {classes.shape} classes")
    was_training = net.training
    net.eval()
    try:
        crops, sizes = centre_crops(images, scale, side)
        outputs = forward_in_batches(net, net.preprocessing, crops, batch_size)
    finally:
        net.train(was_training)
    # Each crop's window in its rescaled image, and the factors from the rescaled image back to the original.
    windows = np.array([(left, top, side) for top, left in (centre_position(h, w, side) for h, w in sizes)],
                       np.float64)
    factors = np.array([[image.shape[1] / w, image.shape[0] / h] * 2 for image, (h, w) in zip(images, sizes)])
    return decode_boxes(net.box_parameters(outputs, classes), windows) * factors


@dataclass
class Localisation:
    """Protocol 2's answer for one image.

    Attributes
    ----------
    classes : (top,) the guessed classes, most probable first
    boxes : (top, 4) the best merged box of each
    box_scores : (top,) each box's summed window posteriors
    class_posteriors : (classes,) the classification net's dense posteriors of the image
    dense : the ``DenseBoxes`` before merging (every net, position and scale)
    merged : list of (boxes (M, 4), scores (M,)) per guessed class, all merged boxes
    """

    classes: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    class_posteriors: np.ndarray
    dense: DenseBoxes
    merged: list


def localise(localisation_nets, classifier, image, scales, top=5, merge_threshold=MERGE_THRESHOLD):
    """Testing protocol 2 on one image (module docstring).

    Parameters
    ----------
    localisation_nets : one ``LocalisationNet`` or a list (their boxes are pooled before merging)
    classifier : the classification ``VGG`` (top-5 classes, and the ratings of the boxes)
    image : (H, W, 3) uint8 RGB
    scales : test scales Q
    top : guesses to make (5)
    merge_threshold : ``greedy_merge``'s threshold

    Returns a ``Localisation``.
    """
    nets = localisation_nets if isinstance(localisation_nets, (list, tuple)) else [localisation_nets]
    if not nets:
        raise ValueError("localise: no localisation net given")
    # The classifier's positions are the same for every net: it runs with the first, its posteriors rate the
    # others' boxes too.
    first = dense_boxes(nets[0], classifier, image, scales)
    dense = DenseBoxes.union([first] + [dense_boxes(net, classifier, image, scales, posteriors=first.posteriors)
                                        for net in nets[1:]])
    # The class posteriors of the image as dense evaluation gives them (Sect. 3.2, 4.2): each scale's map
    # averaged over its positions, then the scales averaged.
    posteriors, position_scales = first.posteriors, first.scales
    class_posteriors = np.mean([posteriors[position_scales == q].mean(axis=0) for q in np.unique(position_scales)],
                               axis=0)
    top = min(int(top), len(class_posteriors))
    classes = np.argsort(-class_posteriors, kind="stable")[:top]
    boxes, box_scores, merged = [], [], []
    for c in classes:
        merged_boxes, merged_scores, _ = greedy_merge(dense.boxes_for(c), dense.posteriors[:, c], merge_threshold)
        boxes.append(merged_boxes[0])
        box_scores.append(merged_scores[0])
        merged.append((merged_boxes, merged_scores))
    return Localisation(classes, np.array(boxes), np.array(box_scores), class_posteriors, dense, merged)


def mean_relative_size(dataset):
    """The mean (width / image width, height / image height) of a ``BoxDataset``'s boxes (the centre-box
    baseline's size, measured on the training set)."""
    relative = [np.stack([(b[:, 2] - b[:, 0]) / image.shape[1], (b[:, 3] - b[:, 1]) / image.shape[0]], axis=1)
                for image, b in zip(dataset.images, dataset.boxes)]
    return np.concatenate(relative).mean(axis=0)


def evaluate_localisation(dataset, localisation_nets=None, classifier=None, scales=None, top=5,
                          baseline_size=None, merge_threshold=MERGE_THRESHOLD, progress=False):
    """Localisation errors on a ``BoxDataset``, as the rows of Tables 8 and 9, plus two baselines.

    Parameters
    ----------
    dataset : BoxDataset (its ground-truth classes and boxes)
    localisation_nets : a ``LocalisationNet`` or a list; each gets a protocol-1 row, and together (with a
        ``classifier``) a protocol-2 row
    classifier : the classification VGG for protocol 2 (None: no protocol-2 row)
    scales : test scales Q; protocol 1 uses the first
    top : guesses per image in protocol 2
    baseline_size : relative (w, h) of the centre-box baseline (e.g. ``mean_relative_size(train_set)``);
        None: no baseline rows

    Returns a list of dicts: ``method``, ``regression``, ``fine_tuned``, ``scales``, ``guesses`` and
    ``error`` (in %).
    """
    from minivgg.progress import progress_bar

    rows = []
    truths = [(np.full(len(b), label), b) for label, b in zip(dataset.labels, dataset.boxes)]
    sizes = np.array([image.shape[:2] for image in dataset.images])

    def row(method, guesses, count, **columns):
        error = 100 * localisation_error(guesses, truths, top=count)
        rows.append(dict(method=method, regression=columns.get("regression", "-"),
                         fine_tuned=columns.get("fine_tuned", "-"), scales=columns.get("scales", "-"),
                         guesses=count, error=error))

    labels = dataset.labels
    if baseline_size is not None:
        for method, boxes in (("whole-image box", whole_image_boxes(sizes)),
                              ("centre box", centre_boxes(sizes, baseline_size))):
            row(method, [([c], b[None]) for c, b in zip(labels, boxes)], 1)
    nets = [] if localisation_nets is None else (
        list(localisation_nets) if isinstance(localisation_nets, (list, tuple)) else [localisation_nets])
    if nets and scales is None:
        raise ValueError("evaluate_localisation: give the test scales")
    for net in nets:
        boxes = centre_crop_boxes(net, dataset.images, labels, scales[0])
        row("centre crop, GT class", [([c], b[None]) for c, b in zip(labels, boxes)], 1,
            regression=net.regression, fine_tuned=net.fine_tune, scales=str(scales[0]))
    if nets and classifier is not None:
        guesses = []
        for image in progress_bar(dataset.images, disable=not progress, desc="dense localisation", unit="image"):
            answer = localise(nets, classifier, image, scales, top, merge_threshold)
            guesses.append((answer.classes, answer.boxes))
        row("dense + merging, top-%d" % top, guesses, top, regression="+".join(n.regression for n in nets),
            fine_tuned="+".join(n.fine_tune for n in nets), scales=",".join(map(str, scales)))
    return rows


def format_localisation_table(rows):
    """Tables 8/9's columns: method, fine-tuned layers, regression type, test scales, localisation error."""
    header = (f"{'method':<26} {'fine-tuned layers':>17} {'regression':>10} {'test (Q)':>10} {'guesses':>7} "
              f"{'loc. error':>10}")
    lines = [header, "-" * len(header)]
    for r in rows:
        fine_tuned = {"all": "all", "fc": "1st and 2nd FC"}.get(r["fine_tuned"], r["fine_tuned"])
        lines.append(f"{r['method']:<26} {fine_tuned:>17} {r['regression']:>10} {r['scales']:>10} "
                     f"{r['guesses']:>7} {r['error']:9.1f}%")
    return "\n".join(lines)
