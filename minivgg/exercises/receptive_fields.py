"""Lesson 3's exercises: the receptive-field recursion, and questions on the fields of Table 1's nets.

Write ``receptive_field_after(size, jump, start, kernel, stride, padding) -> (size, jump, start)``: the
receptive field of a layer with that kernel, stride and padding on top of a layer whose field is (size, jump,
start), then check it, one layer at a time and along every configuration of Table 1::

    from minivgg.exercises import receptive_fields
    receptive_fields.check_receptive_field_after(receptive_field_after)
    receptive_fields.check_answers(E_after_pool4=..., ...)
"""
import numpy as np

from ..layers import Conv2d
from ..models import CONFIGURATIONS, layer_specs
from ..receptive_field import INPUT_PIXEL, ReceptiveField
from ..summary import summarise
from .checking import Case, Mistake, Question, check_answers as _check_answers, compare_with_library
from .configurations import summary_row

__all__ = ["check_receptive_field_after", "QUESTIONS", "check_answers"]


def _as_array(field):
    if isinstance(field, ReceptiveField):
        field = (field.size, field.jump, field.start)
    return np.asarray(field, dtype=np.float64)


def _library_step(size, jump, start, kernel, stride, padding):
    return _as_array(ReceptiveField(size, jump, start).after(kernel, stride, padding))


def _windows(config):
    """(kernel, stride, padding) of every conv and max-pool of a configuration, bottom first."""
    windows = []
    for spec in layer_specs(config):
        a = spec.arguments
        if "kernel_size" in a:
            windows.append((a["kernel_size"], a.get("stride", 1), a.get("padding", 0)))
    return windows


def _along(step):
    """A function of a configuration's name: the field after each of its layers, computed with ``step``."""
    def fields(config):
        field, out = _as_array(INPUT_PIXEL), []
        for kernel, stride, padding in _windows(config):
            field = _as_array(step(*(float(v) for v in field), kernel, stride, padding))
            out.append(field)
        return np.array(out)
    return fields


def _cases():
    steps = [((1, 1, 0.0), (3, 1, 1)), ((5, 1, 0.0), (2, 2, 0)), ((6, 2, 0.5), (3, 1, 1)), ((16, 4, 1.5), (3, 1, 1)),
             ((3, 1, 0.0), (3, 2, 0)), ((7, 2, 1.0), (5, 1, 2)), ((212, 32, 15.5), (7, 1, 0))]
    cases = [Case(f"a {k}x{k} layer, stride {s}, padding {p}, on a field of size {size}, jump {jump}, start {start}",
                  (size, jump, start, k, s, p)) for (size, jump, start), (k, s, p) in steps]
    return cases


def _step_without_jump(size, jump, start, kernel, stride, padding):
    return size + (kernel - 1), jump * stride, start + ((kernel - 1) / 2 - padding) * jump


def _step_jump_fixed(size, jump, start, kernel, stride, padding):
    return size + (kernel - 1) * jump, jump, start + ((kernel - 1) / 2 - padding) * jump


def _step_start_sign(size, jump, start, kernel, stride, padding):
    return size + (kernel - 1) * jump, jump * stride, start + (padding - (kernel - 1) / 2) * jump


def _step_start_unscaled(size, jump, start, kernel, stride, padding):
    return size + (kernel - 1) * jump, jump * stride, start + ((kernel - 1) / 2 - padding)


MISTAKES = (
    Mistake.computing(_step_without_jump,
                      "your size is right until the first layer with stride 2, then too small: after it, neighbouring "
                      "units are jump pixels apart, so a kxk window spans (k - 1) x jump more input pixels",
                      "size' = size + (k - 1) * jump"),
    Mistake.computing(_step_jump_fixed,
                      "your jump never grows: after a layer of stride s, neighbouring units are s times further apart",
                      "jump' = jump * s"),
    Mistake.computing(_step_start_sign,
                      "your start moves the wrong way: padding shifts the first window up and left (to negative "
                      "coordinates), a kernel wider than 1 moves its centre down and right",
                      "start' = start + ((k - 1) / 2 - p) * jump"),
    Mistake.computing(_step_start_unscaled, "your start is right at jump 1 only: the shift is in units of the layer "
                                            "below, jump pixels each", "start' = start + ((k - 1) / 2 - p) * jump"),
)

HINTS = ("follow one unit down: its k x k window on the layer below spans (k - 1) steps of that layer's jump",
         "size' = size + (k - 1) * jump; jump' = jump * s; start' = start + ((k - 1) / 2 - p) * jump")


def check_receptive_field_after(receptive_field_after):
    """Compare ``receptive_field_after(size, jump, start, kernel, stride, padding)`` with
    ``minivgg.receptive_field.ReceptiveField.after``: on seven single layers, then along every column of
    Table 1 (the field after each of its conv and pooling layers)."""
    exercise = "receptive_field_after"
    learner = lambda *arguments: _as_array(receptive_field_after(*arguments))  # noqa: E731
    single = compare_with_library(exercise, learner, _library_step, _cases(), MISTAKES, HINTS)
    if not single.passed:
        return single
    columns = [Case(f"every layer of configuration {name}", (name,)) for name in CONFIGURATIONS]
    stacked = [Mistake.computing(_along(wrong), *mistake.hints) for wrong, mistake in
               zip((_step_without_jump, _step_jump_fixed, _step_start_sign, _step_start_unscaled), MISTAKES)]
    return compare_with_library(exercise, _along(learner), _along(_library_step), columns, stacked, HINTS)


def _three_by_three_layers(config):
    return sum(cell.startswith("conv3") for cell in CONFIGURATIONS[config])


def _ratio_7x7_to_three_3x3():
    single = Conv2d(64, 64, 7, padding=3, rng=0, weight_init=None).params["W"].size
    stack = 3 * Conv2d(64, 64, 3, padding=1, rng=0, weight_init=None).params["W"].size
    return single / stack


def _widening_by_conv1(config="C"):
    rows = [row for row in summarise(layer_specs(config), 224) if row.label.startswith("conv")]
    return next(b.receptive_field.size - a.receptive_field.size for a, b in zip(rows, rows[1:])
                if b.label.startswith("conv1-"))


QUESTIONS = {
    "E_after_pool4": Question(
        "What is the receptive field (its size, in pixels) of configuration E's units after pool4?",
        lambda: summary_row("E", "pool4").receptive_field.size,
        hints=("walk the recursion: 3x3 layers add 2 x jump, each 2x2 pooling adds 1 x jump and doubles the jump",),
        mistakes=((lambda: summary_row("E", "conv4_4").receptive_field.size,
                   ("that is conv4_4's, the last conv before pool4: the pooling's 2x2 window adds one more jump",)),
                  (lambda: summary_row("D", "pool4").receptive_field.size,
                   ("that is D's: E has one more 3x3 layer in blocks 3 and 4",)))),
    "D_conv5_3": Question(
        "What is the receptive field of configuration D's conv5_3 units?",
        lambda: summary_row("D", "conv5_3").receptive_field.size,
        hints=("after pool4 the jump is 16, so each 3x3 layer of block 5 adds 32 pixels",),
        mistakes=((lambda: summary_row("D", "pool5").receptive_field.size,
                   ("that is after pool5; conv5_3 comes before it",)),)),
    "D_3x3_layers": Question(
        "How many 3x3 conv layers has configuration D?", lambda: _three_by_three_layers("D"),
        hints=("count Table 1's column D block by block",),
        mistakes=((lambda: _three_by_three_layers("D") - 1, ("one short: blocks of 2, 2, 3, 3 and 3 layers",)),
                  (lambda: _three_by_three_layers("D") + 3, ("that counts the FC layers too: they are not 3x3",)))),
    "ratio_7x7": Question(
        "With C channels in and out, how many times the weights of three 3x3 layers does one 7x7 layer have? "
        "(two decimals)", _ratio_7x7_to_three_3x3, tolerance=0.005,
        hints=("count C^2 k^2 weights per layer",)),
    "C_1x1_widening": Question(
        "By how many pixels does configuration C's first 1x1 layer (conv3_3) widen the receptive field?",
        _widening_by_conv1, hints=("a 1x1 window spans (1 - 1) x jump more pixels",)),
}


def check_answers(**answers):
    """Check the pen-and-paper answers (keywords as in ``QUESTIONS``; ``None`` = not answered yet)."""
    return _check_answers(QUESTIONS, answers)
