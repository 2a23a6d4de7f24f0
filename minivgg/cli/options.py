"""Argument types for the command line: every numeric option is checked when it is parsed.

argparse calls ``type=`` with the raw string; raising ``argparse.ArgumentTypeError`` there makes argparse print
``minivgg train: error: argument --epochs: must be a positive integer, got '0'`` and exit with code 2, so a
bad value never reaches the code that would silently replace it with a default. Options whose absence means
"use the default" default to ``None`` and are compared with ``is not None``, never by truthiness, so that 0 is
refused rather than taken for "not given".
"""
import argparse
import math

__all__ = ["positive_int", "nonnegative_int", "positive_float", "nonnegative_float", "probability",
           "unit_interval", "int_list", "positive_int_list", "positive_int_list_or", "scale", "finite_float",
           "choice_of"]


def _parse_int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _parse_float(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
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
positive_float = _checked(_parse_float, lambda v: v > 0, "a positive number", "positive_float",
                          "A finite number > 0 (learning rates, widths, scales).")
nonnegative_float = _checked(_parse_float, lambda v: v >= 0, "a non-negative number", "nonnegative_float",
                             "A finite number >= 0 (weight decay, momentum).")
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
