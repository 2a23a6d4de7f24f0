"""The rectified linear unit, ``max(0, x)``, after every hidden weight layer (Sect. 2.1), as two kernels."""
from collections import namedtuple

from numba import cuda

from .arrays import MemoryLayout, array_module, check_same_dtype, grid_for, on_device

# The output is kept instead of a mask: out > 0 exactly where x > 0, and the next layer holds it anyway.
ReLUCache = namedtuple("ReLUCache", "output_flat layout")


@cuda.jit
def relu_forward_kernel(x, out):
    """``out[k] = x[k]`` where positive, else 0, for the 1-D arrays ``x``, ``out``.

    A grid-stride loop: thread t of a grid of T threads takes elements t, t + T, t + 2T, ..., so any
    grid covers any size, and consecutive threads touch consecutive addresses (coalesced).
    """
    for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        if x[k] > 0:
            out[k] = x[k]
        else:
            out[k] = 0


@cuda.jit
def relu_backward_kernel(dout, output, dx):
    """``dx[k] = dout[k]`` where the forward output was positive, else 0 (the subgradient 0 at x = 0)."""
    for k in range(cuda.grid(1), dout.size, cuda.gridsize(1)):
        if output[k] > 0:
            dx[k] = dout[k]
        else:
            dx[k] = 0


def relu_forward(x):
    """``out = max(0, x)`` elementwise.

    Parameters
    ----------
    x : array of any shape and memory layout

    Returns
    -------
    out : array of the same shape and memory layout
    cache : ReLUCache
    """
    check_same_dtype("relu_forward", x=x)
    layout = MemoryLayout(x)
    x_flat = layout.flatten(x)
    out_flat = array_module().empty_like(x_flat)
    relu_forward_kernel[grid_for(x_flat.size)](on_device(x_flat), on_device(out_flat))
    return layout.restore(out_flat), ReLUCache(out_flat, layout)


def relu_backward(dout, cache):
    """``dx = dout`` where the input was positive, 0 elsewhere; ``dx`` has the forward input's layout."""
    output_flat, layout = cache
    check_same_dtype("relu_backward", dout=dout, output=output_flat)
    dout_flat = layout.flatten(dout, "dout")  # a copy only when dout's memory order differs from the input's
    dx_flat = array_module().empty_like(dout_flat)
    relu_backward_kernel[grid_for(dout_flat.size)](on_device(dout_flat), on_device(output_flat), on_device(dx_flat))
    return layout.restore(dx_flat)
