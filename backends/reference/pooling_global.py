"""Global average pooling: the spatial mean of each channel.

Dense evaluation averages the class score map this way (Sect. 3.2), and Appendix B pools the 4096-D
penultimate map the same way to get an image descriptor.
"""
from collections import namedtuple

from .array_module import array_module

GlobalAveragePoolCache = namedtuple("GlobalAveragePoolCache", "x_shape")


def global_average_pool_forward(x):
    """``out[n, c] = mean_{h, w} x[n, c, h, w]``.

    Parameters
    ----------
    x : (N, C, H, W) array

    Returns
    -------
    out : (N, C) array
    cache : GlobalAveragePoolCache
    """
    return x.mean(axis=(2, 3)), GlobalAveragePoolCache(x.shape)


def global_average_pool_backward(dout, cache):
    """Each of the ``H * W`` inputs of a channel receives ``dout[n, c] / (H * W)``.

    Parameters
    ----------
    dout : (N, C) array

    Returns
    -------
    dx : (N, C, H, W) array (a broadcast view: read-only)
    """
    n, c, h, w = cache.x_shape
    return array_module(dout).broadcast_to((dout / (h * w))[:, :, None, None], cache.x_shape)
