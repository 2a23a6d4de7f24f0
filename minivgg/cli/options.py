"""Argument types for the command line: every numeric option is checked when it is parsed.

argparse calls ``type=`` with the raw string; raising ``argparse.ArgumentTypeError`` there makes argparse print
``minivgg train: error: argument --epochs: must be a positive integer, got '0'`` and exit with code 2, so a
bad value never reaches the code that would silently replace it with a default. Options whose absence means
"use the default" default to ``None`` and are compared with ``is not None``, never by truthiness, so that 0 is
refused rather than taken for "not given".

Every number also has an upper bound (``minivgg.limits``), named in the message when it is exceeded: sizes
(``--crop``, ``--fc-width``, ``--width``, ``--scales``, ``--batch-size``) have their own, far beyond the paper's,
seeds are 32-bit (what NumPy's and scikit-learn's seeding take), and any other count is below 2**31. A saved run's
arguments are checked by the same types (``minivgg.training.run_folder.read_arguments``), so a hand-edited
``"crop": 1000000`` is refused by the bound the command line uses.
"""
import argparse
import math

from .. import limits

__all__ = ["positive_int", "nonnegative_int", "positive_float", "nonnegative_float", "probability",
           "unit_interval", "int_list", "positive_int_list", "positive_int_list_or", "scale", "finite_float",
           "choice_of", "at_most", "seed", "batch_size", "crop_side", "fc_width", "width_multiplier", "class_count",
           "test_scales", "test_scales_or", "scale_side", "add_overwrite_option"]


def _parse_int(text, maximum=limits.MAX_COUNT):
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be an integer, got {_shown(text)}") from None
    if value > maximum:
        raise argparse.ArgumentTypeError(f"must be at most {maximum:,}, got {_shown(text)}")
    return value


def _shown(text):
    """The value as given, quoted, shortened if long (a 5000-digit number)."""
    text = repr(text)
    return text if len(text) <= 40 else f"{text[:30]}...{text[-6:]} ({len(text)} characters)"


def _parse_float(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a number, got {_shown(text)}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _checked(parse, accept, requirement, name, doc):
    """An option type: ``parse`` the text, then refuse a value ``accept`` rejects, saying it ``must be
    {requirement}``."""
    def check(text):
        value = parse(text)
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}")
        return value
    check.__name__, check.__doc__ = name, doc
    return check


positive_int = _checked(_parse_int, lambda v: v >= 1, "a positive integer", "positive_int",
                        "An integer >= 1 (epochs, batch sizes, top-k, chunk sizes).")
nonnegative_int = _checked(_parse_int, lambda v: v >= 0, "a non-negative integer", "nonnegative_int",
                           'An integer >= 0 (worker counts, seeds, "every N steps" where 0 means never).')
finite_float = _checked(_parse_float, lambda v: True, "a finite number", "finite_float",
                        "Any finite number (NaN and infinities refused).")
# The nets compute in float32: a rate or a width float32 cannot hold would silently become 0 or infinity.
FLOAT32_SMALLEST, FLOAT32_LARGEST = 1.1754943508222875e-38, 3.4028234663852886e38  # normal float32 range
positive_float = _checked(_parse_float, lambda v: FLOAT32_SMALLEST <= v <= FLOAT32_LARGEST,
                          "a positive number float32 can hold (1.2e-38 to 3.4e38)", "positive_float",
                          "A finite number > 0 that float32 holds (learning rates, widths, scales).")
nonnegative_float = _checked(_parse_float, lambda v: v >= 0, "a non-negative number", "nonnegative_float",
                             "A finite number >= 0 (thresholds).")
probability = _checked(_parse_float, lambda v: 0 <= v < 1, "in [0, 1)", "probability",
                       "A number in [0, 1) (dropout rate: 1 would drop everything).")
unit_interval = _checked(_parse_float, lambda v: 0 <= v <= 1, "in [0, 1]", "unit_interval",
                         "A number in [0, 1] (thresholds, fractions).")


def int_list(text):
    """Comma-separated integers, such as ``256,384,512``."""
    parts = [part.strip() for part in str(text).split(",")]
    if not parts or any(part == "" for part in parts):
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}")
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}") from None


def positive_int_list(text):
    """Comma-separated integers >= 1, such as the scales ``256,384,512``."""
    values = int_list(text)
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}")
    return values


def positive_int_list_or(*words):
    """A type that accepts one of ``words`` (returned as given) or comma-separated positive integers, such as
    evaluation's ``--scales paper`` or ``--scales 256,384,512``."""
    def parse(text):
        if text in words:
            return text
        try:
            return positive_int_list(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"must be {' or '.join(map(repr, words))} or comma-separated positive "
                                             f"integers, got {text!r}") from None
    parse.__name__ = "scales"
    return parse


def scale(text):
    """The training scale S of Sect. 3.1: one positive integer (a fixed S, ``256``) or a range
    ``S_MIN-S_MAX`` with S_MIN <= S_MAX (scale jittering, ``256-512``); returns an int or a pair."""
    low, dash, high = str(text).partition("-")
    try:
        values = [int(low)] + ([int(high)] if dash else [])
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be S or S_MIN-S_MAX (positive integers), got {text!r}") from None
    if any(value < 1 for value in values) or values != sorted(values):
        raise argparse.ArgumentTypeError(f"must be S or S_MIN-S_MAX with 1 <= S_MIN <= S_MAX, got {text!r}")
    return values[0] if len(values) == 1 else tuple(values)


def choice_of(*names):
    """A type that accepts one of ``names`` and lists them when it refuses."""
    def parse(text):
        if text not in names:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(names)}, got {text!r}")
        return text
    parse.__name__ = "choice"
    return parse


def at_most(parse, maximum, what):
    """The type ``parse`` with an upper bound: every value it gives (each of a list) must be at most
    ``maximum``; ``what`` says whose limit it is, in the message."""
    def bounded(text):
        value = parse(text)
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, (int, float)) and v > maximum for v in values):
            raise argparse.ArgumentTypeError(f"must be at most {maximum:,} ({what}), got {_shown(text)}")
        return value
    bounded.__name__ = getattr(parse, "__name__", "bounded")
    bounded.__doc__ = f"{parse.__doc__} At most {maximum:,}."
    return bounded


def seed(text):
    """A seed: an integer from 0 to 2**32 - 1, what NumPy's legacy seeding and scikit-learn's ``random_state``
    take (a larger one would be refused by them, naming their own parameter)."""
    value = _parse_int(text, limits.MAX_SEED)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {_shown(text)}")
    return value
batch_size = at_most(positive_int, limits.MAX_BATCH, "the largest batch minivgg takes; the paper's is 256")
crop_side = at_most(positive_int, limits.MAX_CROP, "the largest crop minivgg takes; the paper's is 224")
fc_width = at_most(positive_int, limits.MAX_FC_WIDTH, "the widest FC layer minivgg builds; the paper's is 4096")
width_multiplier = at_most(positive_float, limits.MAX_WIDTH_MULTIPLIER,
                           "the widest conv layers minivgg builds: 16 times the paper's")
class_count = at_most(positive_int, limits.MAX_CLASSES, "the most classes minivgg takes")
test_scales = at_most(positive_int_list, limits.MAX_SCALE, "the largest scale minivgg takes; the paper's is 512")
scale_side = at_most(positive_int, limits.MAX_SCALE, "the largest scale minivgg takes; the paper's is 512")
training_scale = at_most(scale, limits.MAX_SCALE, "the largest scale minivgg takes; the paper's is 512")


def test_scales_or(*words):
    """``positive_int_list_or(*words)`` with the scales bounded as ``test_scales``."""
    return at_most(positive_int_list_or(*words), limits.MAX_SCALE, "the largest scale minivgg takes; the paper's "
                   "is 512")


def add_overwrite_option(parser):
    """``--overwrite``: replace existing output files that minivgg did not write (``minivgg.files.check_outputs``;
    an input is never replaced)."""
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output file even if minivgg did not write it (never an input)")
