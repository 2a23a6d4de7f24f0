"""Top-k error, the ILSVRC measures of Sect. 4: top-1 (is the best-scoring class right?) and top-5 (is the
true class among the five best?).

A row of scores holding NaN or infinity (a diverged net) is never counted correct: every comparison with
NaN is false, so without that rule a NaN row would rank its true class first and score 0% error.
"""
import numpy as np

from ..backends.reference.array_module import array_module

__all__ = ["top_k_correct", "top_k_error"]


def top_k_correct(scores, labels, k):
    """Per image, whether ``labels`` is among the ``k`` highest ``scores``.

    Parameters
    ----------
    scores : (N, K) array of class scores or posteriors: host NumPy, or on a device (CuPy), where the
        answer is then computed and left
    labels : (N,) integer host array, each in [0, K) (uploaded when the scores are on a device)
    k : int, 1 <= k <= K

    Returns
    -------
    (N,) boolean array of the scores' array module. Ties are resolved against the true class: it counts only
    if strictly fewer than ``k`` classes score higher than it *or equal with a lower index*, i.e. as a stable
    sort ranks them. A row with any non-finite score (NaN, +inf, -inf) is False: no ranking of it means
    anything.

    Raises ValueError for shapes that do not match, labels outside [0, K) or a k outside [1, K]; every check
    reads only the host labels and the shapes, so scores on a device are never waited for.
    """
    labels = np.asarray(labels)
    xp = array_module(scores)
    if xp is np:
        scores = np.asarray(scores)
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"top_k_correct: expected scores (N, K) and labels (N,), got {tuple(scores.shape)} and "
                         f"{labels.shape}")
    if np.dtype(scores.dtype).kind not in "biuf":
        raise ValueError(f"top_k_correct: scores must be real numbers, got dtype {scores.dtype}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"top_k_correct: labels must be integers, got dtype {labels.dtype}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= scores.shape[1]:
        raise ValueError(f"top_k_correct: k must be an integer in [1, {scores.shape[1]}], got {k!r}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        # A negative label would silently index from the end.
        raise ValueError(f"top_k_correct: labels must lie in [0, {scores.shape[1]}), got {labels.min()} .. "
                         f"{labels.max()}")
    labels = xp.asarray(labels)
    true_scores = scores[xp.arange(len(labels)), labels][:, None]
    classes = xp.arange(scores.shape[1])[None, :]
    ranked_above = (scores > true_scores) | ((scores == true_scores) & (classes < labels[:, None]))
    return (ranked_above.sum(axis=1) < k) & xp.isfinite(scores).all(axis=1)


def top_k_error(scores, labels, k):
    """The fraction of images whose true class is not among the ``k`` best: ``1 - mean(top_k_correct)``.

    Raises ValueError for no images (an error rate of nothing is not 0).
    """
    correct = top_k_correct(scores, labels, k)
    if correct.size == 0:
        raise ValueError("top_k_error: no images to measure")
    return 1.0 - float(np.mean(correct))
