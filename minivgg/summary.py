"""Model introspection: every layer's output shape, parameters, multiply-adds and receptive field.

It works on a configuration's ``LayerSpec`` list (``minivgg.models.layer_specs``), so the table of a full-size
VGG-19 costs nothing to compute: no weights are allocated. ``VGG.summary()`` and ``minivgg info`` print it.

Conventions. Multiply-adds (MACs) count the products of the weight layers: ``Ho * Wo * Cout * Cin * k * k``
for a convolution and ``in * out`` for an FC layer; ReLU, pooling and dropout cost none. (A FLOP count is
twice the MACs.) The receptive field of FC1 is that of the KxK convolution it is equivalent to (Sect. 3.2):
it sees the whole last feature map; later FC layers are 1x1.
"""
from collections import namedtuple

import numpy as np

from .layers import Conv2d, Flatten, Linear, MaxPool2d
from .receptive_field import INPUT_PIXEL
from .backends.shapes import output_size

__all__ = ["LayerSummary", "summarise", "format_summary", "totals"]

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
