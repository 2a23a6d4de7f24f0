"""The VGG model zoo: Table 1 as data, one builder, and what the paper does with a built net (Sect. 2, 3.1, 3.2).

``TABLE_1`` below is the paper's Table 1, typed out column for column, plus a seventh column: the shallow
net of Sect. 4.1 (net B with each pair of 3x3 layers replaced by one 5x5 layer). Every model is built from
it by ``VGG`` (alias ``vgg``); no configuration is written out as code. Adding a configuration is adding a
column.

How the table reads, as in the paper: ``convK-C`` is a KxK convolution with C output channels, stride 1 and
"same" padding ``K // 2``, followed by a ReLU (Sect. 2.1: "all hidden layers are equipped with ReLU");
``LRN`` is local response normalisation after that ReLU (Krizhevsky et al.'s order); ``maxpool`` is 2x2
max-pooling with stride 2; ``FC-N`` is a fully-connected layer, with ReLU and dropout after the first two
(Sect. 3.1); ``soft-max`` is applied by the loss (``SoftmaxCrossEntropyLoss``), so the model outputs class
scores. ``-`` is an empty cell. Rows line up across columns exactly as in the paper, which is how
pre-initialisation from net A finds where A's layers sit in a deeper net (``VGG.init_from``).

Small variants come from the same table: ``width_multiplier`` scales every conv's channels (rounded, at
least 1), ``fc_width`` replaces the 4096 of the hidden FC layers, ``num_classes`` the 1000 of the last, and
``input_size`` (any size >= 32; the five poolings divide it by 32, rounding down) sets FC1's input.

Parameter names match torchvision's VGG one to one: the conv part is ``features`` and the FC part
``classifier``, indexed by position among their layers (ReLU, pooling and dropout count, as in torchvision),
and ``W``/``b`` are called ``weight``/``bias``. So VGG-16's first conv is ``features.0.weight`` and its
last FC ``classifier.6.bias`` in both. A-LRN's LRN shifts the indices after it, as it would in torchvision.

Batch-normalised variants (torchvision's ``vgg11_bn`` ... ``vgg19_bn``; not in the paper) are the same columns
with ``batch_norm=True``: each convolution is followed by a ``BatchNorm2d`` before its ReLU, which shifts the
indices exactly as in torchvision (``features.1`` is the first BN, ``features.3`` the second conv), and
whose running averages are saved as ``features.1.running_mean`` etc. ``VGG.fold_batch_norm()`` turns such a
net back into the plain column, the normalisation folded into the convolutions.
"""
import re
from dataclasses import dataclass, field

import numpy as np

from .initialisation import INITIALISERS
from .layers import BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU, Sequential
from .preprocessing import paper_mean_rgb

__all__ = ["TABLE_1", "CONFIGURATIONS", "canonical_config", "NAMED_CONFIGURATIONS", "LayerSpec", "layer_specs",
           "num_parameters",
           "VGG", "FullyConvolutionalVGG", "vgg", "vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19",
           "PARAMETER_NAMES", "BATCH_NORM_CONFIGURATIONS", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
           "paper_layer_names"]

# Table 1 (and Sect. 4.1's shallow net), one column per configuration. The header row names the columns.
TABLE_1 = """
A          A-LRN      B          C          D          E          B-shallow
conv3-64   conv3-64   conv3-64   conv3-64   conv3-64   conv3-64   conv5-64
-          LRN        conv3-64   conv3-64   conv3-64   conv3-64   -
maxpool    maxpool    maxpool    maxpool    maxpool    maxpool    maxpool
conv3-128  conv3-128  conv3-128  conv3-128  conv3-128  conv3-128  conv5-128
-          -          conv3-128  conv3-128  conv3-128  conv3-128  -
maxpool    maxpool    maxpool    maxpool    maxpool    maxpool    maxpool
conv3-256  conv3-256  conv3-256  conv3-256  conv3-256  conv3-256  conv5-256
conv3-256  conv3-256  conv3-256  conv3-256  conv3-256  conv3-256  -
-          -          -          conv1-256  conv3-256  conv3-256  -
-          -          -          -          -          conv3-256  -
maxpool    maxpool    maxpool    maxpool    maxpool    maxpool    maxpool
conv3-512  conv3-512  conv3-512  conv3-512  conv3-512  conv3-512  conv5-512
conv3-512  conv3-512  conv3-512  conv3-512  conv3-512  conv3-512  -
-          -          -          conv1-512  conv3-512  conv3-512  -
-          -          -          -          -          conv3-512  -
maxpool    maxpool    maxpool    maxpool    maxpool    maxpool    maxpool
conv3-512  conv3-512  conv3-512  conv3-512  conv3-512  conv3-512  conv5-512
conv3-512  conv3-512  conv3-512  conv3-512  conv3-512  conv3-512  -
-          -          -          conv1-512  conv3-512  conv3-512  -
-          -          -          -          -          conv3-512  -
maxpool    maxpool    maxpool    maxpool    maxpool    maxpool    maxpool
FC-4096    FC-4096    FC-4096    FC-4096    FC-4096    FC-4096    FC-4096
FC-4096    FC-4096    FC-4096    FC-4096    FC-4096    FC-4096    FC-4096
FC-1000    FC-1000    FC-1000    FC-1000    FC-1000    FC-1000    FC-1000
soft-max   soft-max   soft-max   soft-max   soft-max   soft-max   soft-max
"""

# The familiar names (torchvision's, plus the two it lacks) and the column each builds.
NAMED_CONFIGURATIONS = {"vgg11": "A", "vgg11_lrn": "A-LRN", "vgg13": "B", "vgg16_c": "C", "vgg16": "D",
                        "vgg19": "E"}

# torchvision's batch-normalised variants and the column each builds with ``batch_norm=True``.
BATCH_NORM_CONFIGURATIONS = {"vgg11_bn": "A", "vgg13_bn": "B", "vgg16_bn": "D", "vgg19_bn": "E"}

# minivgg's parameter keys and torchvision's names for them (batch norm's gamma and beta are its weight and bias).
PARAMETER_NAMES = {"W": "weight", "b": "bias", "gamma": "weight", "beta": "bias"}

_CELL = re.compile(r"^(?:conv(?P<kernel>\d+)-(?P<channels>\d+)|FC-(?P<width>\d+)|LRN|maxpool|soft-max|-)$")
_POOLINGS = 5  # Table 1's max-pooling layers: the input side is divided by 2**5 = 32 before FC1


def _parse_table(text):
    """``{name: ((row, cell), ...)}`` for every column of the table, empty cells left out."""
    lines = [line.split() for line in text.strip().splitlines()]
    names, rows = lines[0], lines[1:]
    for number, cells in enumerate(rows, start=1):
        if len(cells) != len(names):
            raise ValueError(f"TABLE_1 row {number} has {len(cells)} cells for {len(names)} columns: {cells}")
        for cell in cells:
            if not _CELL.match(cell):
                raise ValueError(f"TABLE_1 row {number}: cannot read cell {cell!r}")
    return {name: tuple((row, cells[column]) for row, cells in enumerate(rows) if cells[column] != "-")
            for column, name in enumerate(names)}


_COLUMNS = _parse_table(TABLE_1)

# Each configuration's layers in the paper's notation, top to bottom: ``CONFIGURATIONS["A"][0] == "conv3-64"``.
CONFIGURATIONS = {name: tuple(cell for _, cell in column) for name, column in _COLUMNS.items()}


def canonical_config(config):
    """The configuration's name as ``CONFIGURATIONS`` spells it ("d" -> "D"); ValueError listing them if unknown."""
    if not isinstance(config, str):
        raise TypeError(f"config must be a string, one of {list(CONFIGURATIONS)}; got {type(config).__name__}")
    for name in CONFIGURATIONS:
        if name.lower() == config.strip().lower():
            return name
    raise ValueError(f"unknown VGG configuration {config!r}; known configurations are {list(CONFIGURATIONS)} "
                     f"(Table 1, and Sect. 4.1's B-shallow)")


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a configuration before it is built.

    Attributes
    ----------
    layer_class : the ``minivgg.layers`` class
    arguments : dict, its constructor arguments (random state, initialiser and dtype are added when built)
    name : str, the layer's name in state dicts, e.g. ``"features.0"`` or ``"classifier.6"``
    label : str, the layer in the paper's notation (``"conv3-64"``, ``"maxpool"``, ``"FC-4096"``, ``"ReLU"``)
        with the variant's actual sizes
    table_row : int or None, the row of ``TABLE_1`` it comes from (None for ReLU, dropout, flatten)
    """

    layer_class: type
    arguments: dict = field(default_factory=dict)
    name: str = ""
    label: str = ""
    table_row: int = None

    def parameter_shapes(self):
        """``{"W": shape, "b": shape}`` of the parameters this layer will have (empty if none)."""
        a = self.arguments
        if self.layer_class is Conv2d:
            shape = (a["out_channels"], a["in_channels"], a["kernel_size"], a["kernel_size"])
        elif self.layer_class is Linear:
            shape = (a["out_features"], a["in_features"])
        elif self.layer_class is BatchNorm2d:
            return {"gamma": (a["num_features"],), "beta": (a["num_features"],)}
        else:
            return {}
        return {"W": shape, "b": shape[:1]}

    def num_parameters(self):
        return sum(int(np.prod(shape)) for shape in self.parameter_shapes().values())

    def build(self, weight_init, rng, dtype):
        """The layer itself: weights drawn from ``rng`` with ``weight_init``; dropout seeded from ``rng``."""
        if self.layer_class in (Conv2d, Linear):
            return self.layer_class(**self.arguments, weight_init=weight_init, rng=rng, dtype=dtype)
        if self.layer_class is BatchNorm2d:
            return BatchNorm2d(**self.arguments, dtype=dtype)
        if self.layer_class is Dropout:
            # The dropout masks' seed comes from the model's seed too, so one integer fixes the whole net.
            return Dropout(**self.arguments, seed=int(rng.integers(2 ** 63)))
        return self.layer_class(**self.arguments)


def _check_positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _scaled_channels(channels, width_multiplier):
    return max(1, int(round(channels * width_multiplier)))


def layer_specs(config, num_classes=1000, input_size=224, width_multiplier=1.0, fc_width=4096, dropout=0.5,
                lrn_alpha_divided_by_size=False, batch_norm=False):
    """The layers of a configuration, read from ``TABLE_1``, without building them.

    Parameters
    ----------
    config : one of ``CONFIGURATIONS`` ("A", "A-LRN", "B", "C", "D", "E", "B-shallow"), any case
    num_classes : int, outputs of the last FC layer (the paper: 1000)
    input_size : int >= 32, the side of the square training input (the paper: 224)
    width_multiplier : float > 0, scales the conv layers' channels (the paper: 1)
    fc_width : int, width of the two hidden FC layers (the paper: 4096)
    dropout : float in [0, 1), dropout ratio after the first two FC layers (the paper: 0.5)
    lrn_alpha_divided_by_size : bool, the LRN formula (see ``minivgg.layers.LocalResponseNorm``)
    batch_norm : bool, a ``BatchNorm2d`` between each convolution and its ReLU (torchvision's ``vgg*_bn``)

    Returns
    -------
    list of ``LayerSpec``, in order: conv part (``features``), one ``Flatten``, FC part (``classifier``).
    """
    config = canonical_config(config)
    num_classes = _check_positive_int("num_classes", num_classes)
    input_size = _check_positive_int("input_size", input_size, minimum=2 ** _POOLINGS)
    fc_width = _check_positive_int("fc_width", fc_width)
    if isinstance(width_multiplier, bool) or not isinstance(width_multiplier, (int, float)) or width_multiplier <= 0:
        raise ValueError(f"width_multiplier must be a positive number, got {width_multiplier!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a ratio in [0, 1), got {dropout!r}")
    if not isinstance(batch_norm, (bool, np.bool_)):
        raise ValueError(f"batch_norm must be True or False, got {batch_norm!r}")

    features, classifier = [], []
    channels, side, fc_inputs = 3, input_size, None
    fc_cells = [row for row, cell in _COLUMNS[config] if cell.startswith("FC-")]
    for row, cell in _COLUMNS[config]:
        match = _CELL.match(cell)
        if match["kernel"]:
            kernel, out = int(match["kernel"]), _scaled_channels(int(match["channels"]), width_multiplier)
            arguments = dict(in_channels=channels, out_channels=out, kernel_size=kernel, padding=kernel // 2)
            features.append((Conv2d, arguments, f"conv{kernel}-{out}", row))
            if batch_norm:
                features.append((BatchNorm2d, dict(num_features=out), "BN", None))
            features.append((ReLU, {}, "ReLU", None))
            channels = out
        elif cell == "LRN":
            features.append((LocalResponseNorm, dict(alpha_divided_by_size=lrn_alpha_divided_by_size), "LRN", row))
        elif cell == "maxpool":
            features.append((MaxPool2d, dict(kernel_size=2, stride=2), "maxpool", row))
            side //= 2
        elif match["width"]:
            last = row == fc_cells[-1]
            width = num_classes if last else fc_width
            # FC1 sees the flattened (channels, side, side) map; each later FC its predecessor's outputs.
            in_features = channels * side * side if fc_inputs is None else fc_inputs
            classifier.append((Linear, dict(in_features=in_features, out_features=width), f"FC-{width}", row))
            fc_inputs = width
            if not last:
                classifier.append((ReLU, {}, "ReLU", None))
                classifier.append((Dropout, dict(p=float(dropout)), f"dropout {dropout:g}", None))
        # "soft-max" is the loss's business: the model outputs class scores.
    return ([LayerSpec(cls, args, f"features.{i}", label, row) for i, (cls, args, label, row) in enumerate(features)]
            + [LayerSpec(Flatten, {}, "flatten", "flatten", None)]
            + [LayerSpec(cls, args, f"classifier.{i}", label, row)
               for i, (cls, args, label, row) in enumerate(classifier)])


def num_parameters(config, **options):
    """Parameters of a configuration, counted from its ``layer_specs`` without building it (Table 2).

    ``options`` are ``layer_specs``'s keyword arguments. ``num_parameters("D") == 138_357_544``.
    """
    return sum(spec.num_parameters() for spec in layer_specs(config, **options))


# Weights about to be overwritten (loading, FC-to-conv) start as zeros: no random draw.
PLACEHOLDER_INIT = None


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


class VGG(Sequential):
    """A column of Table 1, built: the conv part, a flatten, the FC part. Outputs class scores (N, classes).

    Shapes: input (N, 3, input_size, input_size) in the channel order of ``preprocessing`` -> (N, num_classes).

    Parameters
    ----------
    config, num_classes, input_size, width_multiplier, fc_width, dropout, lrn_alpha_divided_by_size, batch_norm :
        as in ``layer_specs``
    weight_init : "paper" (N(0, 0.01^2), Sect. 3.1, see ``minivgg.initialisation``), "glorot" (Glorot & Bengio),
        "he" (N(0, 2 / fan_in), He et al. 2015), or None for zero weights drawn from nothing (when they are about
        to be loaded)
    seed : int or None, seeds every weight and the dropout masks; None draws fresh entropy
    dtype : float32 or float64

    Attributes
    ----------
    config, num_classes, input_size, width_multiplier, fc_width, dropout, lrn_alpha_divided_by_size, batch_norm
    specs : the ``LayerSpec`` list it was built from
    preprocessing : ``minivgg.preprocessing.Preprocessing`` the input must receive; by default the paper's
        (RGB, 0-255, minus a mean RGB that is zero until training computes it, Sect. 2.1)
    class_names : list of str, or None
    training_record : ``minivgg.weights.record.TrainingRecord`` (how the weights were trained: S, flips), or None
    """

    def __init__(self, config, num_classes=1000, input_size=224, width_multiplier=1.0, fc_width=4096, dropout=0.5,
                 weight_init="paper", seed=None, dtype=np.float32, lrn_alpha_divided_by_size=False, batch_norm=False):
        if weight_init is not None and weight_init not in INITIALISERS:
            raise ValueError(f"unknown weight_init {weight_init!r}; choose one of {sorted(INITIALISERS)}")
        dtype = _check_dtype(dtype)
        specs = layer_specs(config, num_classes, input_size, width_multiplier, fc_width, dropout,
                            lrn_alpha_divided_by_size, batch_norm)
        rng = np.random.default_rng(seed)
        super().__init__(*(spec.build(weight_init, rng, dtype) for spec in specs))
        self.specs = specs
        self.config = canonical_config(config)
        self.num_classes, self.input_size, self.fc_width = int(num_classes), int(input_size), int(fc_width)
        self.width_multiplier, self.dropout = float(width_multiplier), float(dropout)
        self.lrn_alpha_divided_by_size = bool(lrn_alpha_divided_by_size)
        self.batch_norm = bool(batch_norm)
        self.preprocessing = paper_mean_rgb((0.0, 0.0, 0.0))
        self.class_names = None
        self.training_record = None
        self._flatten_index = next(i for i, spec in enumerate(specs) if spec.layer_class is Flatten)

    def __repr__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.architecture().items())
        layers = "".join(f"\n  ({spec.name}): {layer!r}" for spec, layer in zip(self.specs, self.layers))
        return f"VGG({arguments}){layers}"

    def architecture(self):
        """The keyword arguments that rebuild this architecture with ``vgg(**model.architecture())``."""
        return dict(config=self.config, num_classes=self.num_classes, input_size=self.input_size,
                    width_multiplier=self.width_multiplier, fc_width=self.fc_width, dropout=self.dropout,
                    lrn_alpha_divided_by_size=self.lrn_alpha_divided_by_size, batch_norm=self.batch_norm)

    @property
    def features(self):
        """The conv part (conv, BN, ReLU, LRN, max-pool layers) as a Sequential sharing this model's layers."""
        return Sequential(*self.layers[:self._flatten_index])

    @property
    def classifier(self):
        """The FC part (FC, ReLU, dropout layers) as a Sequential sharing this model's layers."""
        return Sequential(*self.layers[self._flatten_index + 1:])

    def named_parameters(self, prefix=""):
        """Yield ``(name, layer, key)`` for every parameter, named as torchvision names them.

        ``name`` is e.g. ``"features.0.weight"``; ``layer.params[key]`` is the array (``key`` "W" or "b").
        """
        for spec, layer in zip(self.specs, self.layers):
            for key in layer.params:
                yield f"{prefix}{spec.name}.{PARAMETER_NAMES[key]}", layer, key

    def named_buffers(self, prefix=""):
        """Yield ``(name, layer, key)`` for the batch-norm layers' running statistics (none without BN).

        ``name`` is torchvision's, e.g. ``"features.1.running_mean"``; ``layer.buffers[key]`` is the array.
        """
        for spec, layer in zip(self.specs, self.layers):
            for key in getattr(layer, "buffers", {}):
                yield f"{prefix}{spec.name}.{key}", layer, key

    def summary(self, input_size=None):
        """The layer table as a string (it does not print): output shape, parameters, multiply-adds and
        receptive field (size, jump, start) of every layer, at ``input_size`` (default the model's)."""
        from .summary import format_summary, summarise

        size = self.input_size if input_size is None else input_size
        batch_norm = " with batch norm" if self.batch_norm else ""
        title = f"VGG configuration {self.config}{batch_norm} at {size}x{size}"
        return format_summary(summarise(self.specs, size), title)

    def init_from(self, other, conv_layers=4):
        """Pre-initialisation (Sect. 3.1): copy a trained shallower net's first conv layers and its FC layers.

        "When training deeper architectures, we initialised the first four convolutional layers and the last
        three fully-connected layers with the layers of net A (the intermediate layers were initialised
        randomly)." Net A's first four conv layers are conv3-64, conv3-128 and the two conv3-256; in a deeper
        net they are the layers on the same rows of Table 1 (the first layer of blocks 1 and 2, the first two
        of block 3), not simply its first four, whose shapes would not fit. The other layers keep their
        random weights. The preprocessing and class names come along, since the copied layers expect them.

        Batch-normalised nets: from a BN net into a BN net the batch-norm layer after each copied conv comes
        along (scale, shift and running statistics); a BN net takes a plain net's conv layers and keeps fresh
        normalisation; a plain net cannot take a BN net's conv layers (they were trained to be normalised).

        Parameters
        ----------
        other : a ``VGG`` (usually configuration A), trained
        conv_layers : how many of ``other``'s conv layers to copy, from the input up (the paper: 4)

        Returns self. Raises TypeError if ``other`` is not a VGG, ValueError naming the layer when a copied
        layer has no counterpart in this configuration or the shapes or dtypes differ.
        """
        if not isinstance(other, VGG):
            raise TypeError(f"init_from expects a VGG model (e.g. a trained net A), got {type(other).__name__}")
        if other.batch_norm and not self.batch_norm:
            raise ValueError(f"init_from: {other.config}'s conv layers were trained with batch normalisation, which "
                             f"this net lacks; build it with batch_norm=True, or pre-initialise from a plain net")
        source_convs = [(spec, layer) for spec, layer in zip(other.specs, other.layers)
                        if spec.layer_class is Conv2d]
        if not 0 <= conv_layers <= len(source_convs):
            raise ValueError(f"init_from: conv_layers must be in [0, {len(source_convs)}] for configuration "
                             f"{other.config}, got {conv_layers!r}")
        target_by_row = {spec.table_row: (spec, layer) for spec, layer in zip(self.specs, self.layers)
                         if spec.layer_class is Conv2d}
        pairs = []
        for spec, layer in source_convs[:conv_layers]:
            if spec.table_row not in target_by_row:
                raise ValueError(f"init_from: configuration {self.config} has no conv layer on the Table 1 row of "
                                 f"{other.config}'s {spec.name} ({spec.label}, row {spec.table_row})")
            pairs.append(((spec, layer), target_by_row[spec.table_row]))
            if other.batch_norm:  # then self.batch_norm too: the BN layer right after each conv
                pairs.append((other._next_layer(spec), self._next_layer(target_by_row[spec.table_row][0])))
        source_fcs = [(s, l) for s, l in zip(other.specs, other.layers) if s.layer_class is Linear]
        target_fcs = [(s, l) for s, l in zip(self.specs, self.layers) if s.layer_class is Linear]
        pairs += list(zip(source_fcs[-3:], target_fcs[-3:]))
        for (source_spec, source), (target_spec, target) in pairs:  # check everything before changing anything
            for key in source.params:
                a, b = source.params[key], target.params[key]
                if a.shape != b.shape or a.dtype != b.dtype:
                    raise ValueError(
                        f"init_from: {other.config}'s {source_spec.name}.{PARAMETER_NAMES[key]} ({source_spec.label}) "
                        f"is {a.dtype} {a.shape} but {self.config}'s {target_spec.name}.{PARAMETER_NAMES[key]} "
                        f"({target_spec.label}) is {b.dtype} {b.shape}")
        for (_, source), (_, target) in pairs:
            for key in source.params:
                target.params[key] = source.params[key].copy()
            for key in getattr(source, "buffers", {}):
                target.buffers[key] = source.buffers[key].copy()
            target.grads = {}
        self.preprocessing, self.class_names = other.preprocessing, other.class_names
        return self

    def _next_layer(self, spec):
        """(spec, layer) of the layer after ``spec``'s."""
        index = self.specs.index(spec) + 1
        return self.specs[index], self.layers[index]

    def fold_batch_norm(self):
        """The same function without batch normalisation: each BN folded into the convolution before it.

        In evaluation mode a BN layer is an affine map per channel, ``y = s * (z - mean) + beta`` with
        ``s = gamma / sqrt(running_var + eps)``; applied to a convolution's output ``z = W * x + b`` it is the
        convolution with ``W' = s W`` (each output filter scaled) and ``b' = s (b - mean) + beta``. The result
        is the plain column of Table 1 (``batch_norm=False``, torchvision's ``vgg16`` names), in evaluation
        mode, computing what this net computes in evaluation mode at one convolution's cost per layer; it
        can be saved, exported and evaluated like any other. The folding is done in float64 and stored in
        this model's dtype. This model is left unchanged.

        Returns a new ``VGG``; ValueError if this net has no batch normalisation.
        """
        if not self.batch_norm:
            raise ValueError(f"fold_batch_norm: configuration {self.config} here has no batch normalisation to fold")
        from .backend import get_backend

        backend = get_backend()
        folded = vgg(**dict(self.architecture(), batch_norm=False), weight_init=PLACEHOLDER_INIT, seed=0,
                     dtype=self.dtype)
        weighted = (Conv2d, Linear)
        sources = [(spec, layer) for spec, layer in zip(self.specs, self.layers) if spec.layer_class in weighted]
        targets = [layer for spec, layer in zip(folded.specs, folded.layers) if spec.layer_class in weighted]
        for (spec, source), target in zip(sources, targets):
            norm = self._next_layer(spec)[1] if spec.layer_class is Conv2d else None  # every conv has its BN
            W, b = (np.asarray(backend.to_host(source.params[key]), np.float64) for key in ("W", "b"))
            if norm is not None:
                gamma, beta = (np.asarray(backend.to_host(norm.params[key]), np.float64) for key in ("gamma", "beta"))
                mean, var = (np.asarray(backend.to_host(norm.buffers[key]), np.float64)
                             for key in ("running_mean", "running_var"))
                scale = gamma / np.sqrt(var + norm.eps)
                W, b = W * scale.reshape(-1, *([1] * (W.ndim - 1))), scale * (b - mean) + beta
            target.params = {"W": backend.asarray(W, dtype=self.dtype), "b": backend.asarray(b, dtype=self.dtype)}
        folded.preprocessing, folded.class_names = self.preprocessing, self.class_names
        folded.training_record = self.training_record
        return folded.eval()

    def to_fully_convolutional(self, ceil_mode=True):
        """The same net with its FC layers as convolutions, for dense evaluation (Sect. 3.2).

        FC1 becomes a KxK convolution, K = input_size // 32 (7 at 224), and FC2, FC3 1x1 convolutions. The
        new convolutions' weights are reshaped *views* of the FC weights (no copy: ``(out, C*K*K)`` is
        ``(out, C, K, K)`` in the C, H, W order ``Flatten`` uses); the other weighted layers are this model's
        own layer objects. So in-place updates of this model show through, but after replacing its arrays
        (``load_into``, ``astype``, ``to_backend``) convert again.

        ``ceil_mode`` (default True): the max-poolings round up, as the authors' Caffe does, so the map covers
        the whole image at every size: each output position sees a window, and every pixel is in some window.
        Rounding down (``ceil_mode=False``, the training net's pooling) drops up to 31 rows and columns at
        the bottom and right, all of the image but its top-left window when Q < 2 x the crop. Both agree at
        sides that are multiples of 32, so at Q = input size (a multiple of 32) the map is 1x1 either way.

        Returns a ``FullyConvolutionalVGG``: input (N, 3, H, W) with H, W >= input_size -> class score map
        (N, num_classes, ceil(H / 32) - K + 1, ceil(W / 32) - K + 1) (floor with ``ceil_mode=False``). At
        H = W = input_size, a multiple of 32, the map is 1x1 and equals the class scores of ``forward``.
        """
        side = self.input_size // 2 ** _POOLINGS
        layers, first = [], True
        for layer in self.layers[:self._flatten_index]:
            if isinstance(layer, MaxPool2d):  # stateless: a pooling of its own, in the dense net's mode
                layer = MaxPool2d(layer.kernel_size, layer.stride, ceil_mode=ceil_mode)
            layers.append(layer)
        for layer in self.layers[self._flatten_index + 1:]:
            if isinstance(layer, Linear):
                kernel = side if first else 1
                layer = _conv_sharing_weights(layer, kernel)
                first = False
            layers.append(layer)
        net = FullyConvolutionalVGG(*layers)
        net.config, net.num_classes, net.input_size = self.config, self.num_classes, self.input_size
        net.preprocessing, net.class_names = self.preprocessing, self.class_names
        net.training = self.training
        return net

    def layer_names(self):
        """The names ``features_at`` accepts, input to output (see ``paper_layer_names``)."""
        return list(paper_layer_names(self.specs))

    def features_at(self, layer, fully_convolutional=False):
        """The net up to a named layer, for features: ``model.features_at("conv5_3").forward(x)``.

        Parameters
        ----------
        layer : a name of ``paper_layer_names`` ("conv1_1" ... "conv5_3", "pool1" ... "pool5", "fc6", "fc7",
            "fc8"); ``model.layer_names()`` lists them
        fully_convolutional : take the FC layers as convolutions (``to_fully_convolutional``), so "fc6" and
            "fc7" apply densely to images larger than the training size (Sect. 3.2, Appendix B)

        Returns
        -------
        a ``Sequential`` sharing this model's layers (no copy): input (N, 3, H, W) -> that layer's output,
        (N, C, h, w) for conv layers and dense FC layers, (N, F) for FC layers otherwise. Call
        ``model.eval()`` first so that dropout is off.
        """
        names = paper_layer_names(self.specs)
        if layer not in names:
            raise ValueError(f"features_at: configuration {self.config} has no layer {layer!r}; its layers are "
                             f"{list(names)}")
        end = names[layer] + 1
        if not fully_convolutional:
            return Sequential(*self.layers[:end])
        # The fully convolutional net has no Flatten, so its FC-as-conv layers sit one place earlier.
        layers = self.to_fully_convolutional().layers
        return Sequential(*layers[:end - 1 if end > self._flatten_index else end])



def paper_layer_names(specs):
    """``{name: index}``: each layer's name as the authors' released models call them, and the index in
    the built model's ``layers`` of the last layer whose output that name means.

    ``convB_I`` is the I-th convolution of block B (the blocks end at the max-poolings) after its ReLU (the
    released Caffe models apply ReLU in place, so their ``conv5_3`` blob is the rectified output);
    ``normB`` the LRN layer; ``poolB`` the B-th max-pooling; ``fc6`` and ``fc7`` the hidden FC layers after
    their ReLU; ``fc8`` the class scores. VGG-16: ``conv1_1 ... conv5_3``, ``pool1 ... pool5``, ``fc6``,
    ``fc7``, ``fc8``.
    """
    names, block, in_block, fc = {}, 1, 0, 6
    awaiting_relu = None  # the conv or hidden FC layer whose name means the output of the next ReLU
    for index, spec in enumerate(specs):
        if spec.layer_class is Conv2d:
            in_block += 1
            awaiting_relu = f"conv{block}_{in_block}"  # a batch-normalised net has its BN in between
        elif spec.layer_class is ReLU and awaiting_relu is not None:
            names[awaiting_relu], awaiting_relu = index, None
        elif spec.layer_class is LocalResponseNorm:
            names[f"norm{block}"] = index
        elif spec.layer_class is MaxPool2d:
            names[f"pool{block}"] = index
            block, in_block = block + 1, 0
        elif spec.layer_class is Linear:
            if index == len(specs) - 1:
                names[f"fc{fc}"] = index  # the class scores
            else:
                awaiting_relu = f"fc{fc}"
            fc += 1
    return names


def _conv_sharing_weights(linear, kernel_size):
    """A KxK Conv2d computing ``linear`` on a (C, K, K) map; its weights are views of the linear layer's."""
    out_features, in_features = linear.params["W"].shape
    in_channels, remainder = divmod(in_features, kernel_size * kernel_size)
    if remainder:
        raise ValueError(f"{linear!r} has {in_features} inputs, not a multiple of {kernel_size}x{kernel_size}")
    # Built with one input and one output channel, then given the linear layer's sizes and weights: built at
    # full size, its placeholder weights would be a throwaway (out, C, K, K) array (822 MB of float64 zeros
    # on the host for VGG-16's first FC layer).
    conv = Conv2d(1, 1, kernel_size, weight_init=PLACEHOLDER_INIT, rng=0, dtype=linear.dtype)
    conv.in_channels, conv.out_channels = in_channels, out_features
    conv.params["W"] = linear.params["W"].reshape(out_features, in_channels, kernel_size, kernel_size)
    conv.params["b"] = linear.params["b"]
    return conv


class FullyConvolutionalVGG(Sequential):
    """A VGG whose FC layers are convolutions (``VGG.to_fully_convolutional``): images of any size at least
    the training size -> a class score map (N, num_classes, h, w), which dense evaluation averages."""

    def forward(self, x):
        if getattr(x, "ndim", 0) == 4 and min(x.shape[2:]) < self.input_size:
            raise ValueError(f"FullyConvolutionalVGG: input {x.shape[2]}x{x.shape[3]} is smaller than the "
                             f"training size {self.input_size}x{self.input_size} the FC layers were trained at")
        return super().forward(x)


def vgg(config, num_classes=1000, input_size=224, width_multiplier=1.0, fc_width=4096, dropout=0.5,
        weight_init="paper", seed=None, dtype=np.float32, lrn_alpha_divided_by_size=False, batch_norm=False):
    """Build a configuration of Table 1 (or "B-shallow"); see ``VGG`` for the arguments."""
    return VGG(config, num_classes=num_classes, input_size=input_size, width_multiplier=width_multiplier,
               fc_width=fc_width, dropout=dropout, weight_init=weight_init, seed=seed, dtype=dtype,
               lrn_alpha_divided_by_size=lrn_alpha_divided_by_size, batch_norm=batch_norm)


def _named_builder(name, config, batch_norm, description):
    def build(**options):
        return vgg(config, batch_norm=batch_norm, **options) if batch_norm else vgg(config, **options)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{description}; keyword arguments as ``vgg``."
    return build


# The named builders (torchvision's names), each a column of Table 1: ``minivgg.vgg16()`` is ``vgg("D")``.
vgg11 = _named_builder("vgg11", "A", False, "Configuration A (11 weight layers)")
vgg11_lrn = _named_builder("vgg11_lrn", "A-LRN", False, "Configuration A-LRN (A with local response normalisation "
                           "after the first layer)")
vgg13 = _named_builder("vgg13", "B", False, "Configuration B (13 weight layers)")
vgg16_c = _named_builder("vgg16_c", "C", False, "Configuration C (16 weight layers, three of them 1x1 convolutions)")
vgg16 = _named_builder("vgg16", "D", False, "Configuration D (16 weight layers), the paper's and torchvision's VGG-16")
vgg19 = _named_builder("vgg19", "E", False, "Configuration E (19 weight layers), VGG-19")
vgg11_bn = _named_builder("vgg11_bn", "A", True, "Configuration A with batch normalisation after every convolution "
                          "(torchvision's ``vgg11_bn``)")
vgg13_bn = _named_builder("vgg13_bn", "B", True, "Configuration B with batch normalisation (torchvision's "
                          "``vgg13_bn``)")
vgg16_bn = _named_builder("vgg16_bn", "D", True, "Configuration D with batch normalisation (torchvision's "
                          "``vgg16_bn``: 138,365,992 parameters)")
vgg19_bn = _named_builder("vgg19_bn", "E", True, "Configuration E with batch normalisation (torchvision's "
                          "``vgg19_bn``)")
