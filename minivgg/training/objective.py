"""What a training run optimises and measures: classification (Sect. 3.1) unless told otherwise.

An objective is an object with three methods, which is all the training loop asks of a task:

    loss_layer()                      a loss whose ``forward(outputs, targets)`` takes the loaders' second item
    correct(outputs, targets)         how many of a batch count as right (the training accuracy shown): an int,
                                      or a 0-d integer array left on the device
    evaluate(model, loader, progress) a dict as ``evaluation.validation.evaluate_loader``'s, whose
                                      ``top1_error`` drives the learning-rate schedule

``Classification`` is the paper's: the soft-max loss and top-1 error. Appendix A's box regression is another
(``minivgg.localisation.BoxRegression``).
"""
from ..evaluation.metrics import top_k_correct
from ..evaluation.validation import evaluate_loader
from ..layers import SoftmaxCrossEntropyLoss

__all__ = ["Classification"]


class Classification:
    """The multinomial logistic regression objective of Sect. 3.1, measured by top-1 error."""

    def loss_layer(self):
        return SoftmaxCrossEntropyLoss()

    def correct(self, scores, labels):
        """How many of the batch's top-1 guesses are right: a 0-d integer array on the scores' device, not read
        back (the trainer reads it with the loss, once per progress update)."""
        return top_k_correct(scores, labels, 1).sum()

    def evaluate(self, model, loader, progress=False):
        return evaluate_loader(model, loader, progress=progress)
