"""The soft-max and the multinomial logistic regression objective (Sect. 3.1), as kernels.

One block per row of scores: its threads stride over the classes, then combine their partial maxima and
sums by a tree reduction in shared memory (halve the active threads at each step: log2(threads) steps).
"""
import math
from collections import namedtuple

import numba
from numba import cuda

from .arrays import SIMULATOR, array_module, check_same_dtype, device_function, grid_for, on_device

SoftmaxCrossEntropyCache = namedtuple("SoftmaxCrossEntropyCache", "probabilities labels")

ROW_THREADS = 4 if SIMULATOR else 128  # threads per row: a power of two, for the tree


@device_function
def block_reduce(shared, value, thread, take_maximum):
    """Every thread of the block gets the maximum (or the sum) of all threads' ``value``.

    ``shared`` is a (ROW_THREADS,) shared array; the barriers keep the steps in order, and the last one
    lets ``shared`` be reused.
    """
    shared[thread] = value
    cuda.syncthreads()
    width = ROW_THREADS // 2
    while width > 0:
        if thread < width:
            if take_maximum:
                shared[thread] = max(shared[thread], shared[thread + width])
            else:
                shared[thread] += shared[thread + width]
        cuda.syncthreads()
        width //= 2
    result = shared[0]
    cuda.syncthreads()
    return result


@cuda.jit
def softmax_rows_kernel(scores, labels, probabilities, row_loss):
    """Block ``n`` (of ROW_THREADS threads): ``probabilities[n] = softmax(scores[n])`` and
    ``row_loss[n] = logsumexp(scores[n]) - scores[n, labels[n]]``, in float64 inside."""
    row = cuda.blockIdx.x
    thread = cuda.threadIdx.x
    n_classes = scores.shape[1]
    shared = cuda.shared.array(ROW_THREADS, numba.float64)
    largest = -math.inf
    for k in range(thread, n_classes, ROW_THREADS):
        largest = max(largest, scores[row, k])
    largest = block_reduce(shared, largest, thread, True)
    total = 0.0  # of exp(s - max) <= 1: cannot overflow, whatever the scores
    for k in range(thread, n_classes, ROW_THREADS):
        total += math.exp(scores[row, k] - largest)
    total = block_reduce(shared, total, thread, False)
    for k in range(thread, n_classes, ROW_THREADS):
        probabilities[row, k] = math.exp(scores[row, k] - largest) / total
    if thread == 0:
        row_loss[row] = math.log(total) - (scores[row, labels[row]] - largest)


@cuda.jit
def softmax_cross_entropy_backward_kernel(probabilities, labels, factor, dscores):
    """``dscores[n, k] = (probabilities[n, k] - [k == labels[n]]) * factor``, one thread per element."""
    n_classes = probabilities.shape[1]
    for index in range(cuda.grid(1), probabilities.size, cuda.gridsize(1)):
        row, k = index // n_classes, index % n_classes
        if k == labels[row]:
            dscores[row, k] = (probabilities[row, k] - 1) * factor
        else:
            dscores[row, k] = probabilities[row, k] * factor


def _softmax_rows(scores, labels):
    xp = array_module()
    check_same_dtype("softmax", scores=scores)
    if scores.ndim != 2:
        raise ValueError(f"softmax: expected scores of shape (N, K), got {tuple(scores.shape)}")
    scores = xp.ascontiguousarray(scores)
    probabilities = xp.empty_like(scores)
    row_loss = xp.empty(scores.shape[0], dtype=xp.float64)
    softmax_rows_kernel[max(1, scores.shape[0]), ROW_THREADS](on_device(scores), on_device(labels),
                                                              on_device(probabilities), on_device(row_loss))
    return probabilities, row_loss


def softmax(scores):
    """Soft-max over the last axis, ``exp(s - max s) / sum exp(s - max s)``.

    Parameters
    ----------
    scores : (N, K) array

    Returns
    -------
    probabilities : (N, K) array, rows summing to one
    """
    xp = array_module()
    # The kernel also computes a loss; any valid labels do, and it is ignored.
    probabilities, _ = _softmax_rows(scores, xp.zeros(scores.shape[0], dtype=xp.int64))
    return probabilities


def softmax_cross_entropy_forward(scores, labels):
    """Mean negative log-likelihood of the true classes under the soft-max of ``scores``.

    Parameters
    ----------
    scores : (N, K) array of class scores (logits)
    labels : (N,) integer array, values in [0, K) (not checked here: the loss layer checks them)

    Returns
    -------
    loss : 0-d array of ``scores``' dtype, ``mean_n (logsumexp(scores[n]) - scores[n, labels[n]])``
    cache : SoftmaxCrossEntropyCache
    """
    xp = array_module()
    labels = xp.ascontiguousarray(xp.asarray(labels))
    if labels.dtype.kind not in "iu" or labels.shape != scores.shape[:1]:
        raise ValueError(f"softmax_cross_entropy_forward: expected integer labels of shape ({scores.shape[0]},), "
                         f"got dtype {labels.dtype} and shape {tuple(labels.shape)}")
    probabilities, row_loss = _softmax_rows(scores, labels)
    loss = xp.asarray(row_loss.mean(), dtype=scores.dtype)
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
    dscores = array_module().empty_like(probabilities)
    factor = probabilities.dtype.type(dloss / probabilities.shape[0])  # in the scores' dtype, as the reference
    softmax_cross_entropy_backward_kernel[grid_for(probabilities.size)](on_device(probabilities), on_device(labels),
                                                                        factor, on_device(dscores))
    return dscores
