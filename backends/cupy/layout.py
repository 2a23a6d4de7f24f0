"""Memory layouts: NCHW at the API, channels-last (NHWC) inside, and elementwise work on packed memory.

The API shape is NCHW (Caffe's and PyTorch's), but cuDNN's fastest convolutions, the pooling and the LRN
kernels here read NHWC: channels innermost, so the threads of a warp read neighbouring channels of one
pixel. As in the NumPy reference, a layer's output is an NCHW-shaped *view* of an NHWC buffer, and the
next layer's ``transpose(0, 2, 3, 1)`` finds it already contiguous: no copy between layers.

Elementwise kernels (ReLU, dropout) do not care about the order of the elements, only that input and
output agree. ``as_packed`` finds the axis order in which an array is densely packed, hands the kernel
the flat buffer, and gives the output back in the same layout, so a ReLU keeps NHWC memory NHWC.

Every function takes its array module from its argument, so the tests run them on NumPy arrays.
"""
from .device import cupy


def array_module(array):
    """``cupy`` for a CuPy array, ``numpy`` otherwise (so these helpers also run on the host)."""
    if cupy is not None:
        return cupy.get_array_module(array)
    import numpy
    return numpy


def packed_order(shape, strides, itemsize):
    """The axis order in which an array's memory is one dense block, or None if it has gaps or overlaps.

    Parameters
    ----------
    shape, strides : tuples of int (strides in bytes, as NumPy and CuPy report them)
    itemsize : int, bytes per element

    Returns
    -------
    order : tuple of axes, outermost first, such that ``array.transpose(order)`` is C-contiguous; None if
        no transpose makes it so (a strided slice, a broadcast view). Axes of length 1 have no meaningful
        stride and go first. An NCHW view of NHWC memory gives ``(0, 2, 3, 1)``.
    """
    if 0 in shape:
        return tuple(range(len(shape)))
    unit_axes = [axis for axis, size in enumerate(shape) if size == 1]
    axes = sorted((axis for axis, size in enumerate(shape) if size != 1), key=lambda axis: -strides[axis])
    expected = itemsize
    for axis in reversed(axes):  # innermost first: each stride must be the product of the sizes inside it
        if strides[axis] != expected:
            return None
        expected *= shape[axis]
    return tuple(unit_axes + axes)


def inverse_order(order):
    """The permutation that undoes ``transpose(order)``."""
    inverse = [0] * len(order)
    for position, axis in enumerate(order):
        inverse[axis] = position
    return tuple(inverse)


def as_packed(array):
    """A flat view of ``array``'s memory and a function that gives a flat result back in ``array``'s layout.

    Returns
    -------
    flat : 1-D contiguous array of ``array.size`` elements, in memory order (a view when ``array`` is
        densely packed in any axis order, else a C-ordered copy)
    order : tuple, the axis order of ``flat`` (pass it to ``in_order`` to lay out a second operand alike)
    restore : callable, ``restore(flat_result)`` is ``flat_result`` reshaped and transposed to have
        ``array``'s shape and memory layout
    """
    xp = array_module(array)
    order = packed_order(array.shape, array.strides, array.itemsize)
    if order is None:
        array = xp.ascontiguousarray(array)
        order = tuple(range(array.ndim))
    packed = array.transpose(order)
    inverse = inverse_order(order)

    def restore(flat_result):
        return flat_result.reshape(packed.shape).transpose(inverse)

    return packed.reshape(-1), order, restore


def in_order(array, order):
    """``array``'s elements as a flat contiguous array in the memory order ``order`` (free when it already is)."""
    xp = array_module(array)
    return xp.ascontiguousarray(array.transpose(order)).reshape(-1)


def to_nhwc(x, dtype=None):
    """A C-contiguous (N, H, W, C) copy of the NCHW-shaped ``x``, cast to ``dtype``; no copy when ``x`` is
    already an NCHW view of NHWC memory of that dtype."""
    xp = array_module(x)
    return xp.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=dtype)


def nchw_view(x_nhwc):
    """The NCHW-shaped view of an (N, H, W, C) array, as every layer of this backend returns it."""
    return x_nhwc.transpose(0, 3, 1, 2)
