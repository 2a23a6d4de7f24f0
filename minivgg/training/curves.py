"""Training curves from a run's ``log.jsonl``: loss, top-1/top-5 error and learning rate per epoch."""
import json
import math
import os

__all__ = ["read_log", "plot_training_curves"]

FIELDS = ("epoch", "learning_rate", "train_loss", "train_top1_error", "val_loss", "val_top1_error", "val_top5_error")


# What a logged value may be: (lowest, highest, how to say it). Errors are fractions, losses and the learning
# rate finite and non-negative, epochs counted from 1: a hand-edited value outside is refused, not drawn.
_RANGES = {"epoch": (1, 2 ** 31 - 1, "must be a whole number of epochs from 1"),
           "learning_rate": (0.0, math.inf, "must be a finite number >= 0"),
           "train_loss": (0.0, math.inf, "must be a finite number >= 0"),
           "val_loss": (0.0, math.inf, "must be a finite number >= 0"),
           "train_top1_error": (0.0, 1.0, "must be a fraction in [0, 1]"),
           "val_top1_error": (0.0, 1.0, "must be a fraction in [0, 1]"),
           "val_top5_error": (0.0, 1.0, "must be a fraction in [0, 1]")}


def _in_range(field, value):
    low, high, _ = _RANGES[field]
    if not math.isfinite(value) or not low <= value <= high:
        return False
    return field != "epoch" or value == int(value)


def read_log(run_dir):
    """The per-epoch entries of a run, oldest first; FileNotFoundError if the run has no log."""
    path = os.path.join(run_dir, "log.jsonl")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no training log at {path}: is {run_dir} a minivgg run folder?")
    from ..files import require_regular_file

    entries = []
    with open(require_regular_file(path, "training log"), encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError) as error:  # RecursionError: arrays nested thousands deep
                raise ValueError(f"{path} line {number} is not a JSON log entry ({error}): not a minivgg training "
                                 f"log, or damaged") from None
            missing = [field for field in FIELDS if not isinstance(entries[-1], dict) or field not in entries[-1]]
            if missing:
                raise ValueError(f"{path} line {number} lacks {', '.join(missing)}: not a minivgg training log")
            wrong = [field for field in FIELDS if isinstance(entries[-1][field], bool)
                     or not isinstance(entries[-1][field], (int, float))]
            if wrong:
                raise ValueError(f"{path} line {number}: {', '.join(wrong)} must be numbers, got "
                                 f"{', '.join(repr(entries[-1][field]) for field in wrong)[:200]}")
            out_of_range = [field for field in FIELDS if not _in_range(field, entries[-1][field])]
            if out_of_range:
                raise ValueError(f"{path} line {number}: " + "; ".join(
                    f"{field} {entries[-1][field]!r} {_RANGES[field][2]}" for field in out_of_range)[:300]
                    + ": not what minivgg logs (edited by hand?)")
    if not entries:
        raise ValueError(f"{path} holds no completed epoch yet")
    return entries


def plot_training_curves(run_dir, output=None):
    """Draw loss, error and learning rate against epoch into a PNG (default ``RUN_DIR/curves.png``), written
    atomically and marked as minivgg's (``minivgg.files``); returns the PNG's path."""
    from ..files import PNG_METADATA, atomic_write

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = read_log(run_dir)
    epochs = [e["epoch"] for e in entries]
    fig, (ax_loss, ax_error, ax_lr) = plt.subplots(1, 3, figsize=(15, 4))
    ax_loss.plot(epochs, [e["train_loss"] for e in entries], "o-", label="train")
    ax_loss.plot(epochs, [e["val_loss"] for e in entries], "s-", label="validation")
    ax_loss.set_title("soft-max loss")
    ax_error.plot(epochs, [100 * e["train_top1_error"] for e in entries], "o-", label="train top-1")
    ax_error.plot(epochs, [100 * e["val_top1_error"] for e in entries], "s-", label="validation top-1")
    ax_error.plot(epochs, [100 * e["val_top5_error"] for e in entries], "^-", label="validation top-5")
    ax_error.set_title("error (%)")
    ax_lr.semilogy(epochs, [e["learning_rate"] for e in entries], "o-")
    ax_lr.set_title("learning rate")
    for axis in (ax_loss, ax_error, ax_lr):
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    ax_loss.legend()
    ax_error.legend()
    fig.suptitle(os.path.basename(os.path.normpath(run_dir)))
    fig.tight_layout()
    output = output or os.path.join(run_dir, "curves.png")
    try:
        atomic_write(output, lambda temporary: fig.savefig(temporary, format="png", dpi=100, metadata=PNG_METADATA))
    finally:
        plt.close(fig)
    return output
