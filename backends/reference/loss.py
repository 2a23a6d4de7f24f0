"""Losses: the multinomial logistic regression objective of Sect. 3.1 and the Euclidean loss of Appendix A."""
from collections import namedtuple

from .array_module import array_module

SoftmaxCrossEntropyCache = namedtuple("SoftmaxCrossEntropyCache", "probabilities labels")
EuclideanCache = namedtuple("EuclideanCache", "difference")


def softmax(scores):
    """Soft-max over the last axis, ``exp(s - max s) / sum exp(s - max s)``: subtracting the maximum
    changes nothing mathematically and keeps ``exp`` from overflowing.

    Parameters
    ----------
    scores : (N, K) array

    Returns
    -------
    probabilities : (N, K) array, rows summing to one
    """
    shifted = scores - scores.max(axis=-1, keepdims=True)
    e = array_module(scores).exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_cross_entropy_forward(scores, labels):
    """Mean negative log-likelihood of the true classes under the soft-max of ``scores``.

    Parameters
    ----------
    scores : (N, K) array of class scores (logits)
    labels : (N,) integer array, values in [0, K)

    Returns
    -------
    loss : 0-d array, ``-mean_n log softmax(scores)[n, labels[n]]``, computed as
        ``logsumexp(scores[n]) - scores[n, labels[n]]`` so it stays finite for any scores
    cache : SoftmaxCrossEntropyCache
    """
    xp = array_module(scores)
    n = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_normaliser = xp.log(xp.exp(shifted).sum(axis=1))
    loss = (log_normaliser - shifted[xp.arange(n), labels]).mean()
    probabilities = xp.exp(shifted - log_normaliser[:, None])
    return loss, SoftmaxCrossEntropyCache(probabilities, labels)


def softmax_cross_entropy_backward(dloss, cache):
    """``dscores = dloss * (softmax(scores) - onehot(labels)) / N``.

    Parameters
    ----------
    dloss : float, the gradient of the final objective with respect to this loss (1 for the loss itself)

    Returns
    -------
    dscores : (N, K) array
    """
    probabilities, labels = cache
    n = probabilities.shape[0]
    dscores = probabilities.copy()
    dscores[array_module(dscores).arange(n), labels] -= 1
    dscores *= dloss / n
    return dscores


def euclidean_loss_forward(predictions, targets):
    """Half the mean squared distance, ``sum (p - t)**2 / (2 N)`` (Caffe's EuclideanLoss), which
    Appendix A uses to regress bounding boxes.

    Parameters
    ----------
    predictions, targets : (N, D) arrays

    Returns
    -------
    loss : 0-d array
    cache : EuclideanCache
    """
    difference = predictions - targets
    n = predictions.shape[0]
    return (difference * difference).sum() / (2 * n), EuclideanCache(difference)


def euclidean_loss_backward(dloss, cache):
    """``dpredictions = dloss * (p - t) / N``."""
    difference = cache.difference
    return difference * (dloss / difference.shape[0])
