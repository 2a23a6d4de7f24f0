"""Lesson 4's exercises: count a Table 1 column's parameters and multiply-adds, and questions on Table 2.

Write ``count_parameters(column)`` and ``count_multiply_adds(column)`` for a column of Table 1 as
``minivgg.models.CONFIGURATIONS`` holds it (``("conv3-64", "conv3-64", "maxpool", ..., "FC-1000",
"soft-max")``), on a 224x224 RGB input, then check them::

    from minivgg.exercises import configurations
    configurations.check_count_parameters(count_parameters)
    configurations.check_count_multiply_adds(count_multiply_adds)
"""
from ..models import CONFIGURATIONS, layer_specs, num_parameters, paper_layer_names
from ..summary import summarise, totals
from .checking import Case, Mistake, Question, check_answers as _check_answers, compare_with_library

__all__ = ["summary_row", "check_count_parameters", "check_count_multiply_adds", "QUESTIONS", "check_answers"]


def summary_row(config, layer, input_size=224):
    """The ``minivgg.summary`` row of the weight layer or pooling the paper calls ``layer`` ("conv3_1", "pool4",
    "fc6") in configuration ``config``: its output shape, parameters, multiply-adds and receptive field."""
    specs = layer_specs(config, input_size=input_size)
    index = paper_layer_names(specs)[layer]
    while layer.startswith(("conv", "fc")) and not specs[index].num_parameters():
        index -= 1  # the name means the output of the ReLU after the layer; the row wanted is the layer's
    return summarise(specs, input_size)[index]


def _config_of(column):
    for name, cells in CONFIGURATIONS.items():
        if tuple(cells) == tuple(column):
            return name
    raise ValueError("not a column of Table 1")


def _cases():
    return [Case(f"configuration {name}", (tuple(cells),)) for name, cells in CONFIGURATIONS.items()]


def _rows(column):
    return summarise(layer_specs(_config_of(column)), 224)


def _without_biases(column):
    return sum(row.parameters - row.output_shape[0] for row in _rows(column) if row.parameters)


def _fc1_without_map(column):
    """FC1 read as taking the 512 channels of the last map, not 512 x 7 x 7 numbers."""
    fc1 = next(row for row in _rows(column) if row.label.startswith("FC"))
    out = fc1.output_shape[0]
    channels = (fc1.parameters - out) // out // 49
    return num_parameters(_config_of(column)) - fc1.parameters + out * channels + out


def _one_by_one_as_three(column):
    return num_parameters(_config_of(column)) + sum(8 * (row.parameters - row.output_shape[0])
                                                    for row in _rows(column) if row.label.startswith("conv1-"))


PARAMETER_MISTAKES = (
    Mistake.computing(_without_biases, "short by exactly one number per output channel: count the biases",
                      "a conv layer has F x C x k x k weights and F biases; an FC layer out x in weights and out "
                      "biases"),
    Mistake.computing(_fc1_without_map,
                      "your FC1 is too small: its input is the whole last feature map, 512 x 7 x 7 = 25088 numbers",
                      "after five 2x2 poolings a 224 image is 7x7: FC1 has 4096 x 25088 weights"),
    Mistake.computing(_one_by_one_as_three, "right except for C: its conv1-C cells are 1x1 convolutions",
                      "read the kernel size from the cell: convK-C is a KxK convolution with C output channels"),
)


def check_count_parameters(count_parameters):
    """Compare ``count_parameters(column) -> int`` with ``minivgg.models.num_parameters`` on every column."""
    reference = lambda column: num_parameters(_config_of(column))  # noqa: E731
    return compare_with_library("count_parameters", count_parameters, reference, _cases(), PARAMETER_MISTAKES,
                                ("compare with Table 2 first (133M for A, 138M for D), then layer by layer with "
                                 "minivgg.models.vgg(...).summary()",
                                 "track the channels and the side: convK-C keeps the side and sets the channels to "
                                 "C, maxpool halves the side, LRN and soft-max have no parameters"))


def _macs_reference(column):
    return totals(_rows(column))[1]


def _flops(column):
    return 2 * _macs_reference(column)


def _no_pooling(column):
    """Every conv layer costed at 224x224, as if pooling did not shrink the map."""
    return sum(row.multiply_adds * (224 // row.output_shape[1]) ** 2 if row.label.startswith("conv")
               else row.multiply_adds for row in _rows(column))


def _conv_only(column):
    return sum(row.multiply_adds for row in _rows(column) if row.label.startswith("conv"))


MAC_MISTAKES = (
    Mistake.computing(_flops, "twice the library's count: you count FLOPs (a multiply and an add); count "
                              "multiply-adds"),
    Mistake.computing(_no_pooling, "far too large: every maxpool halves the side, so later layers run on fewer "
                                   "pixels", "a conv layer costs Ho x Wo x F x C x k x k at its own resolution"),
    Mistake.computing(_conv_only, "slightly short: the FC layers cost in x out multiply-adds each"),
)


def check_count_multiply_adds(count_multiply_adds):
    """Compare ``count_multiply_adds(column) -> int`` (per 224x224 image) with ``minivgg.summary``'s totals."""
    return compare_with_library("count_multiply_adds", count_multiply_adds, _macs_reference, _cases(), MAC_MISTAKES,
                                ("VGG-16 (D) does 15.5 billion multiply-adds per image: compare your D first",
                                 "a conv layer costs Ho x Wo x F x C x k x k, an FC layer in x out; pooling, ReLU "
                                 "and LRN cost none in this count"))


def _share_of_fc6():
    return summary_row("D", "fc6").parameters / num_parameters("D")


QUESTIONS = {
    "conv3_1_parameters": Question(
        "How many parameters (weights and biases) has conv3_1 of configuration D?",
        lambda: summary_row("D", "conv3_1").parameters,
        hints=("conv3_1 takes 128 channels to 256 with 3x3 filters",),
        mistakes=((lambda: summary_row("D", "conv3_1").parameters - 256, ("add the 256 biases",)),)),
    "fc6_share": Question(
        "What fraction of D's parameters is in its first FC layer, fc6? (two significant digits, e.g. 0.12)",
        _share_of_fc6, tolerance=0.01,
        hints=("fc6 has 4096 x (512 x 7 x 7) weights; D has 138 million parameters",)),
    "E_minus_D": Question(
        "How many more parameters has E than D (exactly)?", lambda: num_parameters("E") - num_parameters("D"),
        hints=("E adds one 3x3 layer, 256 -> 256, to block 3, and one 512 -> 512 to blocks 4 and 5",)),
    "D_gigamacs": Question(
        "How many billion multiply-adds does D do for one 224x224 image? (three significant digits)",
        lambda: totals(summarise(layer_specs("D"), 224))[1] / 1e9, tolerance=0.005,
        hints=("add Ho x Wo x F x C x 9 over the 13 conv layers, and in x out over the 3 FC layers",)),
    "block_cost_ratio": Question(
        "How many times the multiply-adds of D's conv2_2 does conv3_2 do?",
        lambda: summary_row("D", "conv3_2").multiply_adds / summary_row("D", "conv2_2").multiply_adds,
        tolerance=1e-9,
        hints=("halving the side quarters the pixels; doubling C and F quadruples the work per pixel",)),
}


def check_answers(**answers):
    """Check the pen-and-paper answers (keywords as in ``QUESTIONS``; ``None`` = not answered yet)."""
    return _check_answers(QUESTIONS, answers)
