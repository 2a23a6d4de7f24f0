"""A model's top-1 and top-5 error and mean loss over one pass of a data loader: the validation that drives the
learning-rate schedule of Sect. 3.1, and the test split's figure at the end of a run."""
import numpy as np

from ..backend import asarray, to_host
from ..layers import SoftmaxCrossEntropyLoss
from .metrics import top_k_correct

__all__ = ["evaluate_loader"]


def evaluate_loader(model, loader, progress=False):
    """Top-1 and top-5 error and mean loss of ``model`` over one pass of ``loader`` (in eval mode).

    Returns a dict with ``top1_error``, ``top5_error``, ``loss`` and ``skipped_images``: images the loader could
    not read are left out of the metric (``DataLoader(unreadable="leave_out")``) and counted there.
    """
    from minivgg.progress import progress_bar

    model.eval()
    loss_layer = SoftmaxCrossEntropyLoss()
    correct1 = correct5 = images = 0
    total_loss = 0.0
    for x, labels in progress_bar(loader.epoch(0), total=len(loader), disable=not progress, desc="validation",
                          leave=False):
        scores = model.forward(asarray(x))
        total_loss += loss_layer.forward(scores, labels) * len(labels)
        scores = np.asarray(to_host(scores))
        correct1 += int(top_k_correct(scores, labels, 1).sum())
        correct5 += int(top_k_correct(scores, labels, min(5, scores.shape[1])).sum())
        images += len(labels)
    model.train()
    if images == 0:
        raise ValueError("the validation loader produced no images")
    return {"top1_error": 1 - correct1 / images, "top5_error": 1 - correct5 / images, "loss": total_loss / images,
            "skipped_images": len(getattr(loader, "skipped", []) or [])}
