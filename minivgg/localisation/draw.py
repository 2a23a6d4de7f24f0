"""Boxes drawn on images with matplotlib: predictions, ground truth, and the dense boxes before merging."""
import os

import numpy as np

from ..files import atomic_write

__all__ = ["draw_boxes", "save_figure"]


def draw_boxes(axes, image, boxes=(), labels=None, colour="red", truth=(), truth_labels=None, faint=(),
               title=None):
    """Show ``image`` on ``axes`` with outlined boxes.

    Parameters
    ----------
    axes : a matplotlib Axes
    image : (H, W, 3) uint8
    boxes : (N, 4) predicted boxes, drawn in ``colour`` with ``labels`` (N strings) above them
    truth : (K, 4) ground-truth boxes, drawn in green dashes with ``truth_labels``
    faint : (P, 4) boxes drawn thin and translucent (the dense predictions before merging)
    """
    from matplotlib.patches import Rectangle

    # Boxes are in continuous coordinates, pixel (r, c) the square [c, c + 1] x [r, r + 1] (``boxes``);
    # imshow's default centres pixel (r, c) on (c, r), which would draw every box half a pixel off.
    height, width = image.shape[:2]
    axes.imshow(image, extent=(0, width, height, 0))
    for box in np.asarray(faint, dtype=float).reshape(-1, 4):
        axes.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, edgecolor="yellow",
                                 linewidth=0.8, alpha=0.6))
    for index, box in enumerate(np.asarray(truth, dtype=float).reshape(-1, 4)):
        axes.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, edgecolor="lime",
                                 linewidth=2, linestyle="--"))
        if truth_labels is not None:
            axes.text(box[0], box[3], f"truth: {truth_labels[index]}", color="lime", fontsize=8, va="top")
    for index, box in enumerate(np.asarray(boxes, dtype=float).reshape(-1, 4)):
        axes.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, edgecolor=colour,
                                 linewidth=2))
        if labels is not None:
            axes.text(box[0], box[1], labels[index], color=colour, fontsize=8, va="bottom")
    # Keep the whole image in view even when a predicted box reaches beyond it.
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    axes.axis("off")
    if title:
        axes.set_title(title, fontsize=9)


def save_figure(figure, path, dpi=100):
    """Write a matplotlib figure as PNG atomically (temporary file in the same folder, then rename), marked as
    minivgg's (``minivgg.files.PNG_METADATA``)."""
    from ..files import PNG_METADATA

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=dpi, bbox_inches="tight",
                                                        metadata=PNG_METADATA))
    return path
