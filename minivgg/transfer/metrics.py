"""The measures of Appendix B: average precision (PASCAL VOC) and mean class recall (Caltech).

Average precision follows the VOC devkit's classification scoring (``VOCevalcls.m``). The test images are
sorted by decreasing score; the ground truth of each is +1 (the class is present), -1 (absent) or 0
("difficult": only difficult objects of the class are in the image). Difficult images count neither as
true nor as false positives, so they are left out entirely: removing them changes no point of the
precision/recall curve. With ``tp(k)`` and ``fp(k)`` the positives and negatives among the first k images
and ``P`` the number of positives,

    recall(k) = tp(k) / P,        precision(k) = tp(k) / (tp(k) + fp(k)).

- ``method="voc07"`` (VOC 2007, the paper's VOC-2007 column): the 11-point interpolated AP,
  ``AP = 1/11 * sum_{t in 0, 0.1, ..., 1} max_{k: recall(k) >= t} precision(k)`` (0 when no k reaches t).
  The devkit's loop is MATLAB's ``for t=0:0.1:1``, and MATLAB builds ``0:0.1:1`` from both ends
  (``matlab_colon``): its fourth value is ``3 * 0.1 = 0.30000000000000004``, so a recall of exactly 3/10
  (0.29999999999999999) does not reach it, while 6/10 and 7/10 do reach ``1 - 0.4`` and ``1 - 0.3``.
  ``recall_levels="devkit"`` (the default) compares with those values exactly, as the devkit does;
  ``recall_levels="tolerant"`` reads the levels as the tenths they are meant to be (a recall within 1e-12 of
  t counts as reaching it), which gives a higher AP wherever a recall of exactly 3/10 has the best precision
  from there on.
- ``method="area"`` (VOC 2010 onwards, ``VOCap.m``, the VOC-2012 column): the area under the curve after
  making precision monotone, ``AP = sum_k (recall(k) - recall(k-1)) * max_{j >= k} precision(j)``.

Tied scores. The devkit sorts with MATLAB's stable ``sort``, so among tied images the result depends on the
order they are listed in. ``ties="group"`` (the default) treats a run of equal scores as one threshold: the
curve has a point only after the whole run, which makes the AP independent of the order; ``ties="devkit"``
reproduces the devkit's stable order exactly. With distinct scores the two agree.

A class with no positive test image has no recall, hence no AP: ``average_precision`` returns NaN and
``mean_average_precision`` leaves the class out, with a warning naming it.
"""
import warnings

import numpy as np

__all__ = ["AP_METHODS", "RECALL_LEVELS", "DEVKIT_RECALL_LEVELS", "matlab_colon", "precision_recall",
           "average_precision", "mean_average_precision", "class_recalls", "mean_class_recall", "mean_and_std"]

AP_METHODS = ("voc07", "area")
TIES = ("group", "devkit")
RECALL_LEVELS = ("devkit", "tolerant")


def matlab_colon(start, step, stop):
    """The values of MATLAB's ``start:step:stop`` (step > 0), as MATLAB computes them.

    MATLAB does not add ``step`` repeatedly, nor multiply it from the start alone: the first half of the
    values is ``start + k * step``, the second half ``stop - k * step`` counted from the end, and with an
    even number n of intervals the middle one is ``(start + stop) / 2`` (MathWorks' ``colonop.m``, which
    mimics the built-in operator). So ``0:0.1:1`` is 0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6, 0.7,
    0.8, 0.9, 1 (NumPy's ``linspace(0, 1, 11)`` has 0.6000000000000001 and 0.7000000000000001 instead).

    Returns a list of floats.
    """
    start, step, stop = float(start), float(step), float(stop)
    if not step > 0 or stop < start:
        raise ValueError(f"matlab_colon: expected start <= stop and a positive step, got {start}:{step}:{stop}")
    tolerance = 2.0 * np.finfo(float).eps * max(abs(start), abs(stop))
    n = int(np.floor((stop - start) / step + tolerance / step))
    end = stop if abs(start + n * step - stop) <= tolerance else start + n * step  # the last value
    values = [0.0] * (n + 1)
    for k in range(n // 2 + 1):
        values[k] = start + k * step
        values[n - k] = end - k * step
    if n % 2 == 0:
        values[n // 2] = (start + end) / 2
    return values


# The recall levels of the devkit's 11-point AP (VOCevalcls.m: ``for t=0:0.1:1``), bit for bit.
DEVKIT_RECALL_LEVELS = tuple(matlab_colon(0, 0.1, 1))


def _check_scores_labels(scores, labels, caller):
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if labels.dtype == bool:  # present / absent, no difficult images
        labels = np.where(labels, 1, -1)
    if scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"{caller}: scores and labels must be 1-D of the same length, got shapes "
                         f"{scores.shape} and {labels.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{caller}: scores must be finite numbers (found NaN or infinity)")
    if labels.dtype.kind not in "iu" or not np.isin(labels, (-1, 0, 1)).all():
        raise ValueError(f"{caller}: labels must be the VOC flags 1 (present), -1 (absent) or 0 (difficult), "
                         f"got values {np.unique(labels)[:10]}")
    return scores, labels.astype(np.int64)


def precision_recall(scores, labels, ties="group"):
    """The precision/recall curve of one class, difficult images ignored.

    Parameters
    ----------
    scores : (N,) classifier scores, higher meaning "more likely present"
    labels : (N,) VOC flags: 1 present, -1 absent, 0 difficult (ignored)
    ties : "group" (a run of equal scores is one threshold) or "devkit" (stable order, as the devkit)

    Returns
    -------
    (precision, recall): float64 arrays, one point per threshold; recall is NaN when there is no positive.
    """
    if ties not in TIES:
        raise ValueError(f"unknown ties {ties!r}; choose one of {TIES}")
    scores, labels = _check_scores_labels(scores, labels, "precision_recall")
    kept = labels != 0
    scores, labels = scores[kept], labels[kept]
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    true_positives = np.cumsum(labels > 0)
    false_positives = np.cumsum(labels < 0)
    if ties == "group" and len(scores):
        last_of_run = np.append(scores[1:] != scores[:-1], True)
        true_positives, false_positives = true_positives[last_of_run], false_positives[last_of_run]
    positives = int((labels > 0).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = true_positives / positives if positives else np.full(len(true_positives), np.nan)
        precision = true_positives / np.maximum(true_positives + false_positives, 1)
    return precision.astype(np.float64), recall.astype(np.float64)


def average_precision(scores, labels, method="voc07", ties="group", recall_levels="devkit"):
    """Average precision of one class, as the PASCAL VOC devkit computes it.

    Parameters
    ----------
    scores : (N,) float scores of the N test images for this class
    labels : (N,) int VOC flags: 1 present, -1 absent, 0 difficult (ignored, as the devkit does).
        Booleans are read as present/absent.
    method : "voc07" (11-point interpolation, VOC 2007) or "area" (area under the monotone curve, VOC 2010+)
    ties : "group" or "devkit" (see the module's docstring)
    recall_levels : for "voc07": "devkit" (MATLAB's ``0:0.1:1``, compared exactly, as the devkit) or
        "tolerant" (the tenths, a recall within 1e-12 reaching them); see the module's docstring

    Returns
    -------
    float in [0, 1], or NaN when no test image is a positive.
    """
    if method not in AP_METHODS:
        raise ValueError(f"unknown average precision method {method!r}; choose one of {AP_METHODS}")
    if recall_levels not in RECALL_LEVELS:
        raise ValueError(f"unknown recall_levels {recall_levels!r}; choose one of {RECALL_LEVELS}")
    precision, recall = precision_recall(scores, labels, ties)
    if len(recall) == 0 or np.isnan(recall[0]):
        return float("nan")
    if method == "voc07":
        total = 0.0
        for k, level in enumerate(DEVKIT_RECALL_LEVELS):
            # The devkit's ``rec >= t`` on MATLAB's values; tolerant: the tenth k / 10, less 1e-12.
            reached = precision[recall >= level] if recall_levels == "devkit" else precision[recall >= k / 10 - 1e-12]
            total += (reached.max() if reached.size else 0.0) / 11  # ``ap=ap+p/11``, in the devkit's order
        return float(total)
    # VOCap.m: sentinels (recall 0, precision 0) and (recall 1, precision 0), precision made non-increasing
    # from the right, then the rectangles where recall changes.
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    changes = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[changes] - recall[changes - 1]) * precision[changes]))


def mean_average_precision(scores, labels, method="voc07", ties="group", class_names=None, recall_levels="devkit"):
    """Mean AP over classes (the VOC measure of Table 11).

    Parameters
    ----------
    scores : (N, K) scores of N images for K classes
    labels : (N, K) VOC flags (1, -1, 0)
    method, ties, recall_levels : as ``average_precision``
    class_names : optional K names, for the warning about classes without positives

    Returns
    -------
    (mAP, per_class): the mean over the classes with at least one positive, and the (K,) APs (NaN for
    classes without positives). ValueError when no class has a positive.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if scores.ndim != 2 or labels.shape != scores.shape:
        raise ValueError(f"mean_average_precision: scores and labels must both be (images, classes), got "
                         f"{scores.shape} and {labels.shape}")
    per_class = np.array([average_precision(scores[:, k], labels[:, k], method, ties, recall_levels)
                          for k in range(scores.shape[1])])
    undefined = np.flatnonzero(np.isnan(per_class))
    if len(undefined) == len(per_class):
        raise ValueError("mean_average_precision: no class has a positive test image; AP is undefined")
    if len(undefined):
        names = [class_names[k] if class_names is not None else str(k) for k in undefined]
        warnings.warn(f"mean_average_precision: classes {names} have no positive test image; their AP is "
                      f"undefined and left out of the mean", RuntimeWarning, stacklevel=2)
    return float(np.nanmean(per_class)), per_class


def class_recalls(predictions, labels, num_classes=None):
    """Per-class recall: the fraction of each class's test images predicted as that class.

    predictions, labels : (N,) int class indices; returns (K,) float64, NaN for a class with no test image.
    """
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or labels.ndim != 1:
        raise ValueError(f"class_recalls: predictions and labels must be 1-D of the same length, got "
                         f"{predictions.shape} and {labels.shape}")
    k = int(num_classes if num_classes is not None else labels.max(initial=-1) + 1)
    if labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"class_recalls: labels must be class indices in 0..{k - 1}, got {labels.dtype} values "
                         f"{labels.min()}..{labels.max()}")
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    correct = np.bincount(labels[predictions == labels], minlength=k).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, correct / np.maximum(counts, 1), np.nan)


def mean_class_recall(predictions, labels, num_classes=None):
    """Mean class recall (Caltech, Table 11): the average over classes of each class's recall, which does
    not favour the classes with more test images. Classes without test images are left out."""
    recalls = class_recalls(predictions, labels, num_classes)
    if np.all(np.isnan(recalls)):
        raise ValueError("mean_class_recall: no test images")
    return float(np.nanmean(recalls))


def mean_and_std(values):
    """(mean, standard deviation) over random splits, as Table 11's "92.3 +- 0.5"; the std is the sample
    standard deviation (n - 1 in the denominator), 0 for a single split."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"mean_and_std: expected a non-empty list of numbers, got shape {values.shape}")
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0
