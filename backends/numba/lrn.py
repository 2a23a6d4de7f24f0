"""Local Response Normalisation across channels (Krizhevsky et al. 2012, Sect. 3.3; VGG's A-LRN), as two kernels.

    scale[c] = k + alpha' * sum_{c' in window(c)} x[c']**2,     y[c] = x[c] * scale[c] ** -beta

with ``window(c)`` the channels ``c - (size - 1) // 2 ... c + size // 2`` clipped at the ends, as in the
reference (``backends/reference/lrn.py``). Channels-last inside: a pixel's channels are contiguous, so the
threads of a warp read one pixel's neighbourhood together.
"""
from collections import namedtuple

from numba import cuda

from .arrays import array_module, check_same_dtype, grid_for, index_type, kernel_for_index, on_device

LRNCache = namedtuple("LRNCache", "x_nhwc scale y size alpha_eff beta")


def _lrn_forward_kernel(index):
    @cuda.jit
    def lrn_forward_kernel(x, scale, y, channels, size, alpha, beta, k, zero):
        """For every element of the flat NHWC arrays: ``scale`` and ``y`` above (one thread each, grid-stride).

        Index arithmetic in ``index`` (int32 where the sizes allow, ``arrays.index_type``); the window's
        energy is summed in x's precision, from ``zero`` (float32 for float32: at most ``size`` terms).
        """
        before, after = index((size - 1) // 2), index(size // 2)
        channels = index(channels)
        for position in range(index(cuda.grid(1)), index(x.size), index(cuda.gridsize(1))):
            c = position % channels
            pixel_start = position - c
            energy = zero
            for neighbour in range(max(index(0), c - before), min(channels, c + after + 1)):
                energy += x[pixel_start + neighbour] * x[pixel_start + neighbour]
            scale[position] = k + alpha * energy
            y[position] = x[position] * scale[position] ** -beta
    return lrn_forward_kernel


def _lrn_backward_kernel(index):
    @cuda.jit
    def lrn_backward_kernel(dout, x, scale, y, dx, channels, size, beta, two_alpha_beta, zero):
        """``dx[j] = dout[j] * scale[j]**-beta - 2 alpha' beta x[j] sum_{c : j in window(c)} dout[c] y[c] / scale[c]``.

        ``j`` lies in ``window(c)`` for ``c`` from ``j - size // 2`` to ``j + (size - 1) // 2``: the window
        turned around (it matters only for even sizes, whose window is not symmetric).
        """
        before, after = index((size - 1) // 2), index(size // 2)
        channels = index(channels)
        for position in range(index(cuda.grid(1)), index(x.size), index(cuda.gridsize(1))):
            j = position % channels
            pixel_start = position - j
            through_scale = zero
            for c in range(max(index(0), j - after), min(channels, j + before + 1)):
                through_scale += dout[pixel_start + c] * y[pixel_start + c] / scale[pixel_start + c]
            dx[position] = dout[position] * scale[position] ** -beta - two_alpha_beta * x[position] * through_scale
    return lrn_backward_kernel


lrn_forward_kernel = kernel_for_index(_lrn_forward_kernel)
lrn_backward_kernel = kernel_for_index(_lrn_backward_kernel)


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
    out : (N, C, H, W) array, a view of NHWC memory
    cache : LRNCache
    """
    xp = array_module()
    check_same_dtype("lrn_forward", x=x)
    alpha_eff = alpha / size if alpha_divided_by_size else alpha
    real = x.dtype.type  # the constants in x's precision, as NumPy treats Python floats in the reference
    x_nhwc = xp.ascontiguousarray(x.transpose(0, 2, 3, 1))
    scale, y = xp.empty_like(x_nhwc), xp.empty_like(x_nhwc)
    lrn_forward_kernel(index_type(x_nhwc))[grid_for(x_nhwc.size)](
        on_device(x_nhwc.reshape(-1)), on_device(scale.reshape(-1)), on_device(y.reshape(-1)), x_nhwc.shape[3],
        size, real(alpha_eff), real(beta), real(k), real(0))
    return y.transpose(0, 3, 1, 2), LRNCache(x_nhwc, scale, y, size, alpha_eff, beta)


def lrn_backward(dout, cache):
    """Gradient of ``lrn_forward``.

    Parameters
    ----------
    dout : (N, C, H, W) array
    cache : LRNCache

    Returns
    -------
    dx : (N, C, H, W) array, a view of NHWC memory
    """
    xp = array_module()
    x_nhwc, scale, y, size, alpha_eff, beta = cache
    check_same_dtype("lrn_backward", dout=dout, x=x_nhwc)
    real = x_nhwc.dtype.type
    dout_nhwc = xp.ascontiguousarray(dout.transpose(0, 2, 3, 1))
    if dout_nhwc.shape != x_nhwc.shape:
        expected = tuple(x_nhwc.transpose(0, 3, 1, 2).shape)
        raise ValueError(f"lrn_backward: expected dout of the input's shape {expected}, got {tuple(dout.shape)}")
    dx = xp.empty_like(x_nhwc)
    # 2 alpha' beta computed here, in x's precision: a float64 constant in the kernel would make it float64.
    lrn_backward_kernel(index_type(x_nhwc))[grid_for(x_nhwc.size)](
        on_device(dout_nhwc.reshape(-1)), on_device(x_nhwc.reshape(-1)), on_device(scale.reshape(-1)),
        on_device(y.reshape(-1)), on_device(dx.reshape(-1)), x_nhwc.shape[3], size, real(beta),
        real(2 * alpha_eff * beta), real(0))
    return dx.transpose(0, 3, 1, 2)
