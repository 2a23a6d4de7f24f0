"""Top-k error, the ILSVRC measures of Sect. 4: top-1 (is the best-scoring class right?) and top-5 (is the
true class among the five best?)."""
import numpy as np

__all__ = ["top_k_correct", "top_k_error"]


def top_k_correct(scores, labels, k):
    """Per image, whether ``labels`` is among the ``k`` highest ``scores``.

    Parameters
    ----------
    scores : (N, K) array of class scores or posteriors (host NumPy)
    labels : (N,) integer array
    k : int, 1 <= k <= K

    Returns
    -------
    (N,) boolean array. Ties are resolved against the true class: it counts only if strictly fewer than
    ``k`` classes score higher than it *or equal with a lower index*, i.e. as a stable sort ranks them.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"top_k_correct: expected scores (N, K) and labels (N,), got {scores.shape} and "
                         f"{labels.shape}")
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"top_k_correct: k must be in [1, {scores.shape[1]}], got {k}")
    true_scores = scores[np.arange(len(labels)), labels][:, None]
    classes = np.arange(scores.shape[1])[None, :]
    ranked_above = (scores > true_scores) | ((scores == true_scores) & (classes < labels[:, None]))
    return ranked_above.sum(axis=1) < k


def top_k_error(scores, labels, k):
    """The fraction of images whose true class is not among the ``k`` best: ``1 - mean(top_k_correct)``."""
    return 1.0 - float(np.mean(top_k_correct(scores, labels, k)))
