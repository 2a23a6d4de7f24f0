"""What an input may ask for: the bounds minivgg checks before it allocates anything.

A small file or a short option can ask for an absurd amount of memory: a 372-byte PNG of 1 x 100000 pixels
rescaled so that its short side is 256, ``--crop 1000000`` (a first layer of 7 TiB), ``--fc-width 1000000000``
(477 GiB of FC weights). Each such size is bounded here, once, and every place that takes one checks it
against these bounds with a message naming the size asked for and the limit:

- option values (``minivgg.cli.options``; saved run arguments are checked by the same types);
- images: their aspect ratio (``MAX_ASPECT_RATIO``), checked from the size a file declares, before it is
  decoded, and before any rescaling;
- a net's memory (``check_memory``): its parameters and activations, from Table 1's arithmetic
  (``minivgg.summary.memory_estimate``), against the machine's memory, before it is built or run.

The bounds are far beyond anything the paper or a real run needs (the paper: S and Q up to 512, 224 crops,
FC layers of 4096, batches of 256).
"""
import os

from .errors import TooLargeError

__all__ = ["MAX_SCALE", "MAX_CROP", "MAX_WIDTH_MULTIPLIER", "MAX_FC_WIDTH", "MAX_CLASSES", "MAX_BATCH",
           "MAX_SEED", "MAX_COUNT", "MAX_ASPECT_RATIO", "MEMORY_VARIABLE", "memory_limit", "check_memory",
           "check_aspect_ratio", "format_bytes"]

MAX_SCALE = 8192  # S and Q: 16 times the paper's largest scale (512)
MAX_CROP = 2048  # the training crop, the net's input size: about 9 times the paper's 224
MAX_WIDTH_MULTIPLIER = 16.0  # conv channels: up to 8192 in the last blocks
MAX_FC_WIDTH = 65536  # 16 times the paper's 4096
MAX_CLASSES = 100_000  # ImageNet-21k has 21,841
MAX_BATCH = 65536  # 256 times the paper's 256
MAX_SEED = 2 ** 32 - 1  # NumPy's legacy seeding and scikit-learn's random_state take 32-bit seeds
MAX_COUNT = 2 ** 31 - 1  # any other count (epochs, workers, splits, steps)
MAX_ASPECT_RATIO = 16  # long side / short side of an image: wider panoramas are refused (or skipped in training)

MEMORY_VARIABLE = "MINIVGG_MEMORY_LIMIT"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def format_bytes(count):
    """``7.28 TiB``, ``477 GiB``, ``512 MiB``: a byte count as a reader says it."""
    count = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if count < 1024 or unit == "EiB":
            return f"{count:.3g} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024


def memory_limit():
    """The memory a net may take, in bytes: ``$MINIVGG_MEMORY_LIMIT`` (bytes, or with a unit: ``64G``,
    ``512M``) if set, else this machine's physical memory, else 64 GiB where the system does not say."""
    text = os.environ.get(MEMORY_VARIABLE, "").strip().upper().removesuffix("IB").removesuffix("B")
    if text:
        unit = text[-1] if text[-1] in _UNITS else ""
        try:
            value = float(text[:-1] if unit else text) * _UNITS[unit]
        except ValueError:
            raise ValueError(f"${MEMORY_VARIABLE} must be a number of bytes such as 17179869184 or 16G, got "
                             f"{os.environ[MEMORY_VARIABLE]!r}") from None
        if not value > 0:
            raise ValueError(f"${MEMORY_VARIABLE} must be positive, got {os.environ[MEMORY_VARIABLE]!r}")
        return int(value)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 64 << 30


def _where_the_limit_comes_from():
    if os.environ.get(MEMORY_VARIABLE, "").strip():
        return f"${MEMORY_VARIABLE}"
    return f"this machine's memory; set ${MEMORY_VARIABLE} to change it"


def check_memory(needed, what):
    """TooLargeError unless ``needed`` bytes fit in ``memory_limit()``; ``what`` says what asks for them
    ("VGG D with fc_width 1000000000: its parameters and one image's activations")."""
    limit = memory_limit()
    if needed > limit:
        raise TooLargeError(f"{what} would take about {format_bytes(needed)}, more than the limit of "
                            f"{format_bytes(limit)} ({_where_the_limit_comes_from()}); nothing was allocated")
    return needed


def check_aspect_ratio(height, width, name="image"):
    """TooLargeError for an image whose long side is more than ``MAX_ASPECT_RATIO`` times its short side:
    rescaled so that its short side is Q, it would be ``MAX_ASPECT_RATIO`` Q long or longer (a 1 x 100000
    image at Q = 256 is 256 x 25,600,000 pixels)."""
    short, long = sorted((int(height), int(width)))
    if short < 1:
        raise TooLargeError(f"{name}: {width}x{height} pixels has no area")
    if long > MAX_ASPECT_RATIO * short:
        raise TooLargeError(f"{name}: {width}x{height} pixels has an aspect ratio of {long / short:.4g}:1, more than "
                            f"the limit of {MAX_ASPECT_RATIO}:1 (rescaled to a short side of 256 it would be "
                            f"{256 * long // short:,} pixels long)")
