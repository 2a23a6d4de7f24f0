"""Losses: the soft-max loss of Sect. 3.1 as one fused kernel, the Euclidean loss of Appendix A reused.

The soft-max cross-entropy forward takes one block per image: the block finds the row's maximum, sums
``exp(s - max)``, writes the probabilities (kept for the backward pass) and the row's loss
``log(sum) - (s[label] - max)`` in one launch, in float32 (float64 for float64 scores) even when the
scores are bfloat16. ``softmax`` and the Euclidean loss are plain array expressions in the NumPy
reference, which CuPy runs as they are (NumPy dispatches ``np.exp`` on a CuPy array to ``cupy.exp``).
"""
from collections import namedtuple

import numpy as np

from ..numpy.loss import euclidean_loss_backward, euclidean_loss_forward, softmax  # noqa: F401 (re-exported)
from .device import cupy
from .kernels import THREADS_PER_BLOCK, compute_scalar, get_kernel, index, launch

SoftmaxCrossEntropyCache = namedtuple("SoftmaxCrossEntropyCache", "probabilities labels scores_dtype")

_BLOCK_REDUCE = r"""
/* Reduce one value per thread of a 256-thread block; every thread gets the result. */
template <bool IS_MAX>
__device__ compute_t block_reduce(compute_t value, compute_t* shared) {
    shared[threadIdx.x] = value;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            compute_t other = shared[threadIdx.x + half];
            shared[threadIdx.x] = IS_MAX ? (other > shared[threadIdx.x] ? other : shared[threadIdx.x])
                                         : shared[threadIdx.x] + other;
        }
        __syncthreads();
    }
    compute_t result = shared[0];
    __syncthreads();
    return result;
}
"""

SOFTMAX_CROSS_ENTROPY_FORWARD_SOURCE = _BLOCK_REDUCE + r"""
extern "C" __global__ void softmax_cross_entropy_forward(const value_t* scores, const long long* labels,
                                                         compute_t* probabilities, compute_t* losses,
                                                         int classes) {
    __shared__ compute_t shared[256];
    long long row = blockIdx.x;
    const value_t* s = scores + row * classes;
    compute_t largest = load(s[0]);
    for (int j = threadIdx.x; j < classes; j += blockDim.x) {
        compute_t v = load(s[j]);
        largest = v > largest ? v : largest;
    }
    largest = block_reduce<true>(largest, shared);
    compute_t total = 0;
    for (int j = threadIdx.x; j < classes; j += blockDim.x) total += exponential(load(s[j]) - largest);
    compute_t log_normaliser = logarithm(block_reduce<false>(total, shared));
    for (int j = threadIdx.x; j < classes; j += blockDim.x)
        probabilities[row * classes + j] = exponential(load(s[j]) - largest - log_normaliser);
    if (threadIdx.x == 0) losses[row] = log_normaliser - (load(s[labels[row]]) - largest);
}
"""

SOFTMAX_CROSS_ENTROPY_BACKWARD_SOURCE = r"""
extern "C" __global__ void softmax_cross_entropy_backward(const compute_t* probabilities, const long long* labels,
                                                          value_t* dscores, long long count, int classes,
                                                          compute_t factor) {
    GRID_STRIDE_LOOP(i, count) {
        long long row = i / classes;
        compute_t target = (i % classes) == labels[row] ? (compute_t)1 : (compute_t)0;
        dscores[i] = store((probabilities[i] - target) * factor);
    }
}
"""


def softmax_cross_entropy_forward(scores, labels):
    """Mean negative log-likelihood of the true classes under the soft-max of ``scores``.

    Parameters
    ----------
    scores : (N, K) CuPy array of class scores (logits), float32, float64 or bfloat16
    labels : (N,) integer array, values in [0, K) (the layer checks the range)

    Returns
    -------
    loss : 0-d CuPy array, ``mean_n (logsumexp(scores[n]) - scores[n, labels[n]])``; left on the device so
        a captured training step needs no host round trip
    cache : SoftmaxCrossEntropyCache
    """
    labels = cupy.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"softmax_cross_entropy_forward: labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(cupy.int64, copy=False)  # widening only: the kernel reads 64-bit labels
    scores = cupy.ascontiguousarray(scores)
    n, classes = scores.shape
    compute = cupy.float64 if scores.dtype == cupy.float64 else cupy.float32
    probabilities = cupy.empty((n, classes), dtype=compute)
    losses = cupy.empty(n, dtype=compute)
    if n:
        kernel = get_kernel("softmax_cross_entropy_forward", SOFTMAX_CROSS_ENTROPY_FORWARD_SOURCE, scores.dtype)
        kernel((n,), (THREADS_PER_BLOCK,), (scores, labels, probabilities, losses, np.int32(classes)))
    return losses.mean(), SoftmaxCrossEntropyCache(probabilities, labels, scores.dtype)


def softmax_cross_entropy_backward(dloss, cache):
    """``dscores = dloss * (softmax(scores) - onehot(labels)) / N``, in the scores' dtype.

    Parameters
    ----------
    dloss : float, the gradient of the final objective with respect to this loss (1 for the loss itself)

    Returns
    -------
    dscores : (N, K) array
    """
    probabilities, labels, scores_dtype = cache
    n, classes = probabilities.shape
    dscores = cupy.empty((n, classes), dtype=scores_dtype)
    launch(get_kernel("softmax_cross_entropy_backward", SOFTMAX_CROSS_ENTROPY_BACKWARD_SOURCE, scores_dtype),
           dscores.size, (probabilities, labels, dscores, index(dscores.size), np.int32(classes),
                          compute_scalar(scores_dtype, float(dloss) / max(n, 1))))
    return dscores
