"""Receptive fields: by arithmetic, layer after layer, and measured by back-propagation (Sect. 2.3).

"A stack of two 3x3 conv. layers (without spatial pooling in between) has an effective receptive field of
5x5; three such layers have a 7x7 effective receptive field." The arithmetic that says so follows one unit
of a layer back to the input pixels it can see. Three numbers describe every layer (Dumoulin & Visin's
"guide to convolution arithmetic" and Araujo et al.'s "Computing receptive fields" use the same):

- ``size``: how many input pixels along one side a unit sees;
- ``jump``: how many input pixels apart neighbouring units of the layer are (the product of the strides);
- ``start``: the input coordinate of the centre of the first (top-left) unit's field, pixels at 0, 1, ...

A layer with kernel ``k``, stride ``s`` and padding ``p`` maps them to::

    size'  = size + (k - 1) * jump
    jump'  = jump * s
    start' = start + ((k - 1) / 2 - p) * jump

``measure_receptive_field`` checks the arithmetic empirically: it back-propagates from one output unit to
the input and reports which input pixels got a non-zero gradient.
"""
from dataclasses import dataclass

import numpy as np

from .backend import asarray, to_host

__all__ = ["output_size", "ReceptiveField", "INPUT_PIXEL", "stack_receptive_field", "measure_receptive_field",
           "support_extent"]


def output_size(size, kernel, stride, padding, ceil_mode=False):
    """Output side of a convolution or pooling window along one axis: ``floor((size + 2p - k) / s) + 1``.

    ``ceil_mode``: Caffe's pooling, ``ceil((size + 2p - k) / s) + 1``, whose last window may hang over the
    bottom or right edge so that every input row and column is pooled; a last window that would start in
    the padding or beyond is dropped (as Caffe does). The one place this formula lives: the layers'
    ``output_shape``, the summary and every backend call it.
    """
    if not ceil_mode:
        return (size + 2 * padding - kernel) // stride + 1
    out = -(-(size + 2 * padding - kernel) // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of one layer's units, in input pixels: ``size``, ``jump`` and ``start``."""

    size: int = 1
    jump: int = 1
    start: float = 0.0

    def after(self, kernel_size, stride=1, padding=0):
        """The receptive field of a layer with this ``kernel_size``, ``stride``, ``padding`` on top of this one."""
        return ReceptiveField(self.size + (kernel_size - 1) * self.jump, self.jump * stride,
                              self.start + ((kernel_size - 1) / 2 - padding) * self.jump)


INPUT_PIXEL = ReceptiveField(1, 1, 0.0)


def stack_receptive_field(kernel_sizes, strides=None, paddings=None):
    """The receptive field after a stack of layers, e.g. ``stack_receptive_field([3, 3]).size == 5``.

    Parameters
    ----------
    kernel_sizes : sequence of ints, bottom layer first
    strides, paddings : sequences of ints of the same length (default: stride 1, padding ``k // 2``)
    """
    strides = strides or [1] * len(kernel_sizes)
    paddings = paddings or [k // 2 for k in kernel_sizes]
    field = INPUT_PIXEL
    for k, s, p in zip(kernel_sizes, strides, paddings):
        field = field.after(k, s, p)
    return field


def measure_receptive_field(net, input_size, in_channels=3, unit=None, trials=8, rng=None):
    """Which input pixels can change one output unit of ``net``: the support of its input gradient.

    Runs ``trials`` random inputs forward through ``net`` (a ``Sequential`` of conv, ReLU, pooling
    layers) and back-propagates a gradient of 1 from one spatial position of the output, all channels (a
    single channel can be off for every input of a small random net, and then shows nothing).
    ReLUs that are off and max-pooling (which routes each gradient to the winner of its window) hide
    parts of the field from any single input, so the support is taken over all trials together.

    Parameters
    ----------
    net : a ``minivgg.layers.Sequential`` whose output is (N, C, h, w)
    input_size : int, side of the square input
    unit : (row, column) of the output position; default the centre
    trials : int, random inputs whose supports are united
    rng : ``numpy.random.Generator`` or seed for the inputs

    Returns
    -------
    support : (input_size, input_size) bool array, True where some trial's gradient is non-zero
    magnitude : (input_size, input_size) float array, mean |gradient| over trials and channels
    """
    rng = np.random.default_rng(rng)
    x = asarray(rng.standard_normal((trials, in_channels, input_size, input_size)), dtype=net.dtype or np.float64)
    # A slice such as model.features[:k] shares its layers with the model: give each its own mode back.
    modes = [(layer, layer.training) for layer in getattr(net, "layers", [net])]
    net.eval()
    try:
        out = net.forward(x)
        if out.ndim != 4:
            raise ValueError(f"measure_receptive_field: the net's output must be a map (N, C, h, w), got {out.shape}")
        row, column = unit if unit is not None else (out.shape[2] // 2, out.shape[3] // 2)
        dout = np.zeros(out.shape, dtype=out.dtype)
        dout[:, :, row, column] = 1.0
        dx = np.abs(to_host(net.backward(asarray(dout))))
    finally:
        for layer, mode in modes:
            layer.train(mode)
    return dx.max(axis=(0, 1)) > 0, dx.mean(axis=(0, 1))


def support_extent(support):
    """(height, width) of the smallest box holding every True pixel of a 2-D mask; (0, 0) if none."""
    rows, columns = np.nonzero(np.asarray(support))
    if rows.size == 0:
        return (0, 0)
    return (int(rows.max() - rows.min() + 1), int(columns.max() - columns.min() + 1))
