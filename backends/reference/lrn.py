"""Local Response Normalisation across channels (Krizhevsky et al. 2012, Sect. 3.3; used only by VGG's A-LRN).

    scale[c] = k + alpha' * sum_{c' in window(c)} x[c']**2,     y[c] = x[c] * scale[c] ** -beta

``window(c)`` is the ``size`` channels from ``c - (size - 1) // 2`` to ``c + size // 2``, clipped at the ends
(Caffe's convention; PyTorch's is the same for the odd sizes anyone uses). ``alpha' = alpha`` in the
AlexNet paper's formula, ``alpha' = alpha / size`` in Caffe's and PyTorch's: the caller chooses.
"""
from collections import namedtuple

from .array_module import array_module

LRNCache = namedtuple("LRNCache", "x scale y size alpha_eff beta")


def _window_sum(a, size, reverse=False):
    """Sum of ``a`` over each channel's LRN window; channels on the last axis.

    ``reverse=True`` sums over the transposed window (the channels whose window contains ``c``),
    which the backward pass needs when the window is not symmetric.
    """
    before, after = (size - 1) // 2, size // 2
    if reverse:
        before, after = after, before
    channels = a.shape[-1]
    total = array_module(a).zeros_like(a)
    for shift in range(-before, after + 1):  # a loop over the window, not over channels or pixels
        lo, hi = max(0, -shift), min(channels, channels - shift)
        total[..., lo:hi] += a[..., lo + shift:hi + shift]
    return total


def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0, alpha_divided_by_size=False):
    """Normalise each activation by the energy of its neighbouring channels.

    Parameters
    ----------
    x : (N, C, H, W) array
    size : int, channels in the window
    alpha, beta, k : float
    alpha_divided_by_size : bool, use ``alpha / size`` (Caffe, PyTorch) instead of ``alpha`` (AlexNet paper)

    Returns
    -------
    out : (N, C, H, W) array
    cache : LRNCache
    """
    alpha_eff = alpha / size if alpha_divided_by_size else alpha
    x_nhwc = x.transpose(0, 2, 3, 1)
    scale = k + alpha_eff * _window_sum(x_nhwc * x_nhwc, size)
    y = x_nhwc * scale ** -beta
    return y.transpose(0, 3, 1, 2), LRNCache(x_nhwc, scale, y, size, alpha_eff, beta)


def lrn_backward(dout, cache):
    """Gradient of ``lrn_forward``.

    ``dx[j] = dout[j] * scale[j]**-beta
              - 2 * alpha' * beta * x[j] * sum_{c : j in window(c)} dout[c] * y[c] / scale[c]``

    Parameters
    ----------
    dout : (N, C, H, W) array
    cache : LRNCache

    Returns
    -------
    dx : (N, C, H, W) array
    """
    x, scale, y, size, alpha_eff, beta = cache
    dout_nhwc = dout.transpose(0, 2, 3, 1)
    through_scale = _window_sum(dout_nhwc * y / scale, size, reverse=True)
    dx = dout_nhwc * scale ** -beta - (2 * alpha_eff * beta) * x * through_scale
    return dx.transpose(0, 3, 1, 2)
