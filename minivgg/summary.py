"""Model introspection: every layer's output shape, parameters, multiply-adds and receptive field.

It works on a configuration's ``LayerSpec`` list (``minivgg.models.layer_specs``), so the table of a full-size
VGG-19 costs nothing to compute: no weights are allocated. ``VGG.summary()`` and ``minivgg info`` print it.

Conventions. Multiply-adds (MACs) count the products of the weight layers: ``Ho * Wo * Cout * Cin * k * k``
for a convolution and ``in * out`` for an FC layer; ReLU, pooling and dropout cost none. (A FLOP count is
twice the MACs.) The receptive field of FC1 is that of the KxK convolution it is equivalent to (Sect. 3.2):
it sees the whole last feature map; later FC layers are 1x1.
"""
import math
from collections import namedtuple

import numpy as np

from .layers import Conv2d, Flatten, Linear, MaxPool2d
from .receptive_field import INPUT_PIXEL
from .backends.shapes import output_size

__all__ = ["LayerSummary", "summarise", "format_summary", "totals", "memory_estimate", "evaluation_memory"]

LayerSummary = namedtuple("LayerSummary", "name label output_shape parameters multiply_adds receptive_field")
LayerSummary.__doc__ = """One row of the summary: the layer's state-dict name and paper label, its output shape
(C, H, W) or (F,) without the batch axis, parameters, multiply-adds per image, and ``ReceptiveField``."""


def summarise(specs, input_size, in_channels=3):
    """Walk ``specs`` from an (in_channels, input_size, input_size) input; one ``LayerSummary`` per layer.

    Parameters
    ----------
    specs : list of ``minivgg.models.LayerSpec``
    input_size : int, side of the square input

    Returns
    -------
    list of ``LayerSummary``. Raises ValueError if the input is too small for a layer.
    """
    shape, field, flattened_from = (in_channels, input_size, input_size), INPUT_PIXEL, None
    rows = []
    for spec in specs:
        a, macs = spec.arguments, 0
        if spec.layer_class in (Conv2d, MaxPool2d):
            k, s = a["kernel_size"], a.get("stride", 1)
            p = a.get("padding", 0)
            height, width = (output_size(side, k, s, p) for side in shape[1:])
            if min(height, width) < 1:
                raise ValueError(f"summary: {spec.name} ({spec.label}) gets a {shape[1]}x{shape[2]} input, too "
                                 f"small for its {k}x{k} window; use a larger input_size than {input_size}")
            channels = a["out_channels"] if spec.layer_class is Conv2d else shape[0]
            shape = (channels, height, width)
            if spec.layer_class is Conv2d:
                macs = height * width * channels * a["in_channels"] * k * k
            field = field.after(k, s, p)
        elif spec.layer_class is Flatten:
            flattened_from, shape = shape, (int(np.prod(shape)),)
        elif spec.layer_class is Linear:
            if flattened_from is not None:  # FC1 = a convolution whose kernel covers the whole last map
                field, flattened_from = field.after(flattened_from[1], 1, 0), None
            shape, macs = (a["out_features"],), a["in_features"] * a["out_features"]
        rows.append(LayerSummary(spec.name, spec.label, shape, spec.num_parameters(), macs, field))
    return rows


def totals(rows):
    """(parameters, multiply-adds) summed over the rows."""
    return sum(r.parameters for r in rows), sum(r.multiply_adds for r in rows)


def _short(number, digits=1, space=""):
    """138357544 -> '138.4M'; with ``space=" "``, '138.4 M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if number >= scale:
            return f"{number / scale:.{digits}f}{space}{unit}"
    return f"{number}{space}"


def format_summary(rows, title=""):
    """The rows as a fixed-width text table with a totals line."""
    header = ("layer", "type", "output shape", "parameters", "mult-adds", "RF size", "jump", "start")
    lines = [(r.name, r.label, "x".join(map(str, r.output_shape)), f"{r.parameters:,}",
              _short(r.multiply_adds) if r.multiply_adds else "0", str(r.receptive_field.size),
              str(r.receptive_field.jump), f"{r.receptive_field.start:g}") for r in rows]
    widths = [max(len(line[i]) for line in [header] + lines) for i in range(len(header))]
    left_aligned = 2

    def render(cells):
        return "  ".join(c.ljust(w) if i < left_aligned else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    parameters, macs = totals(rows)
    rule = "-" * len(render(header))
    out = ([title] if title else []) + [render(header), rule] + [render(line) for line in lines] + [rule]
    out.append(f"total: {parameters:,} parameters ({_short(parameters)}), {_short(macs, 2, ' ')} multiply-adds "
               f"({_short(2 * macs, 1, ' ')}FLOP) per image")
    return "\n".join(out)


# --- memory, from the same arithmetic ---------------------------------------------------------------------------

def memory_estimate(specs, input_size, batch_size=1, training=False, bytes_per_value=4):
    """Bytes a net of ``specs`` takes on ``batch_size`` images of ``input_size`` x ``input_size``, from Table 1's
    arithmetic (``summarise``), without building it: the bound ``minivgg.limits.check_memory`` checks before a
    net is built or trained.

    Counts the parameters (three times in training: the weights, their gradients, the momentum), and per image
    the activations: in training every layer's output, kept for the backward pass, and as much again for the
    gradients flowing back; in evaluation the largest input and output of one layer (the others are freed);
    plus the largest im2col buffer (``Ho * Wo * Cin * k * k`` values of a convolution). An estimate of the order
    of magnitude, not an exact count: what it refuses could never run.
    """
    rows = summarise(specs, input_size)
    parameters = sum(row.parameters for row in rows)
    sizes = [3 * input_size * input_size] + [math.prod(row.output_shape) for row in rows]
    columns = [row.multiply_adds // max(row.output_shape[0], 1) if spec.layer_class is Conv2d else 0
               for spec, row in zip(specs, rows)]  # Ho * Wo * Cin * k * k of each convolution
    if training:
        per_image = 2 * sum(sizes) + max(columns, default=0)
    else:
        per_image = max(a + b for a, b in zip(sizes, sizes[1:])) + max(columns, default=0)
    return bytes_per_value * ((3 if training else 1) * parameters + batch_size * per_image)


def evaluation_memory(layers, height, width, batch_size=1, bytes_per_value=4):
    """Bytes the activations of a fully convolutional stack of ``layers`` (``VGG.to_fully_convolutional()``'s,
    ``Conv2d`` and ``MaxPool2d`` change the size, any other layer keeps it) take on ``batch_size`` images of
    ``height`` x ``width`` in evaluation: the largest input, output and im2col buffer of one layer. Dense
    evaluation checks it (``minivgg.limits.check_memory``) before it runs a net on a large image."""
    channels, h, w, largest = 3, int(height), int(width), 0
    for layer in layers:
        before = channels * h * w
        columns = 0
        if isinstance(layer, Conv2d):
            k, s, p = layer.kernel_size, layer.stride, layer.padding
            columns = layer.in_channels * k * k
            channels, h, w = layer.out_channels, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            columns *= max(h, 0) * max(w, 0)
        elif isinstance(layer, MaxPool2d):
            k, s = layer.kernel_size, layer.stride
            step = (lambda side: -(-(side - k) // s) + 1) if layer.ceil_mode else (lambda side: (side - k) // s + 1)
            h, w = step(h), step(w)
        if h < 1 or w < 1:
            break
        largest = max(largest, before + channels * h * w + columns)
    return bytes_per_value * batch_size * largest
