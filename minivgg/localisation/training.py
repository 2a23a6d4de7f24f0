"""Fine-tuning a localisation net (Appendix A.1) with the training loop of Sect. 3.1.

"The main difference is that we replace the logistic regression objective with a Euclidean loss, which
penalises the deviation of the predicted bounding box parameters from the ground-truth." ``BoxRegression``
is that objective for ``minivgg.training.train`` (its ``objective`` argument): the loss, what counts as a
correct prediction during training (IoU >= 0.5 with the target box, the ILSVRC criterion), and the
validation error that drives the learning-rate schedule (the localisation error on the validation set's
centre crops with the ground-truth class: testing protocol 1). The paper's initial learning rate is 1e-3.
"""
import numpy as np

from ..backend import asarray, get_backend, to_host
from ..layers import EuclideanLoss, Layer
from ..training import TrainSettings, train
from .boxes import decode_boxes, iou
from .data import BoxCropLoader, BoxTargets

__all__ = ["BoxRegressionLoss", "BoxRegression", "fine_tune_localisation", "train_classifier_on_boxes",
           "FINE_TUNE_LEARNING_RATE"]

FINE_TUNE_LEARNING_RATE = 1e-3  # Appendix A.1


class BoxRegressionLoss(Layer):
    """The Euclidean loss of Appendix A.1 on the box of the ground-truth class.

    ``forward(outputs (N, D), targets BoxTargets) -> float`` with D = 4 (SCR: the one shared box) or
    4 * classes (PCR: only the ground-truth class's four outputs ``4c .. 4c + 3`` are compared with the
    target; the other classes' boxes get no gradient, as they say nothing about this object);
    ``backward(dloss=1.0) -> (N, D)``. The loss is ``EuclideanLoss``'s ``sum (p - t)**2 / (2 N)``.
    """

    def __init__(self, regression, num_classes):
        super().__init__()
        self.regression, self.num_classes = regression, int(num_classes)
        self.euclidean = EuclideanLoss()

    def __repr__(self):
        return f"BoxRegressionLoss({self.regression}, {self.num_classes} classes)"

    def _columns(self, labels, n):
        xp = get_backend().xp
        if self.regression == "SCR":
            return xp.broadcast_to(xp.arange(4), (n, 4))
        labels = asarray(np.asarray(labels, dtype=np.int64))
        return 4 * labels[:, None] + xp.arange(4)[None, :]

    def forward(self, outputs, targets):
        if not isinstance(targets, BoxTargets):
            raise TypeError(f"{self!r}: targets must be BoxTargets (labels and box parameters), got "
                            f"{type(targets).__name__}")
        expected = 4 if self.regression == "SCR" else 4 * self.num_classes
        if outputs.ndim != 2 or outputs.shape != (len(targets), expected):
            raise ValueError(f"{self!r}: expected outputs of shape ({len(targets)}, {expected}), got "
                             f"{tuple(outputs.shape)}")
        labels = np.asarray(targets.labels)
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"{self!r}: labels must lie in [0, {self.num_classes})")
        xp = get_backend().xp
        columns = self._columns(labels, len(targets))
        selected = xp.take_along_axis(outputs, columns, axis=1)
        loss = self.euclidean.forward(selected, asarray(np.asarray(targets.parameters), dtype=outputs.dtype))
        self.cache = (outputs.shape, columns)
        return loss

    def backward(self, dloss=1.0):
        shape, columns = self._cached()
        xp = get_backend().xp
        dselected = self.euclidean.backward(dloss)
        doutputs = xp.zeros(shape, dtype=dselected.dtype)
        rows = xp.arange(shape[0])[:, None]
        doutputs[rows, columns] = dselected
        return doutputs


class BoxRegression:
    """The localisation objective for ``minivgg.training.train(..., objective=BoxRegression(...))``.

    Parameters
    ----------
    net : the ``LocalisationNet`` being trained (its regression type and classes)
    iou_threshold : a box is right when its IoU with the ground truth is at least this (ILSVRC: 0.5)
    """

    def __init__(self, net, iou_threshold=0.5):
        self.net, self.iou_threshold = net, float(iou_threshold)

    def loss_layer(self):
        return BoxRegressionLoss(self.net.regression, self.net.num_classes)

    def correct_mask(self, outputs, targets):
        """(N,) bool: the ground-truth class's predicted box overlaps the target box by IoU >= threshold.

        Both boxes are in the crop's frame (window (0, 0, 1)); IoU does not change under the shift and scale
        back to image pixels."""
        predicted = self.net.box_parameters(np.asarray(to_host(outputs), dtype=np.float64), targets.labels)
        window = np.array([0.0, 0.0, 1.0])
        # A diverged net's non-finite boxes are simply wrong; the loss shows the divergence.
        finite = np.all(np.isfinite(predicted), axis=1)
        right = np.zeros(len(predicted), dtype=bool)
        if finite.any():
            truth = decode_boxes(np.asarray(targets.parameters, dtype=np.float64)[finite], window)
            overlap = np.diagonal(iou(decode_boxes(predicted[finite], window), truth))
            right[finite] = overlap >= self.iou_threshold
        return right

    def correct(self, outputs, targets):
        return int(self.correct_mask(outputs, targets).sum())

    def evaluate(self, model, loader, progress=False):
        """Localisation error (ground-truth class, the loader's crops) and mean loss over one pass.

        Returns ``{"top1_error", "top5_error", "loss"}``: with the class given, one guess is all there is, so
        both errors are the same localisation error."""
        from minivgg.progress import progress_bar

        model.eval()
        loss_layer = self.loss_layer()
        wrong = images = 0
        total_loss = 0.0
        try:
            for x, targets in progress_bar(loader.epoch(0), total=len(loader), disable=not progress, desc="validation",
                                   leave=False):
                outputs = model.forward(asarray(x))
                total_loss += loss_layer.forward(outputs, targets) * len(targets)
                wrong += int((~self.correct_mask(outputs, targets)).sum())
                images += len(targets)
        finally:
            model.train()
        if images == 0:
            raise ValueError("the validation loader produced no images")
        return {"top1_error": wrong / images, "top5_error": wrong / images, "loss": total_loss / images}


def fine_tune_localisation(net, train_set, val_set, run_dir, scale, settings=None, batch_size=32, seed=0,
                           progress=False, min_object_fraction=0.5, flip=False, stop_after_steps=None, resume=False):
    """Fine-tune ``net`` (a ``LocalisationNet``) on ``train_set`` with ``minivgg.training.train``.

    Parameters
    ----------
    net : LocalisationNet, initialised from a classifier (``localisation_net``)
    train_set, val_set : ``BoxDataset``s
    run_dir : folder for the checkpoint and log
    scale : the fixed training scale S (Appendix A.1: "each on a single scale")
    settings : ``TrainSettings``; default the paper's recipe with learning rate 1e-3 and this batch size
    batch_size : crops per SGD step
    seed : the data order and crops
    min_object_fraction, flip : see ``BoxCropLoader``
    stop_after_steps, resume : as ``train``'s (stop as if interrupted; continue from ``run_dir``'s checkpoint)

    Returns ``train``'s result dict.
    """
    settings = TrainSettings(batch_size=batch_size, learning_rate=FINE_TUNE_LEARNING_RATE) if settings is None \
        else settings
    train_loader = BoxCropLoader(train_set, settings.batch_size, scale, net.input_size, net.preprocessing,
                                 train=True, min_object_fraction=min_object_fraction, flip=flip, seed=seed)
    val_loader = BoxCropLoader(val_set, settings.batch_size, scale, net.input_size, net.preprocessing, train=False)
    return train(net, train_loader, val_loader, settings, run_dir, resume=resume, progress=progress,
                 stop_after_steps=stop_after_steps, objective=BoxRegression(net))


def train_classifier_on_boxes(model, train_set, val_set, run_dir, scale, settings, seed=0, progress=False,
                              min_object_fraction=0.5, flip=False):
    """Train the classification net the localisation net starts from, on the same crops (Sect. 3.1's loop,
    soft-max loss): the crops keep at least half of the object, so the label is visible in each."""
    loaders = [BoxCropLoader(data, settings.batch_size, scale, model.input_size, model.preprocessing, train=train,
                             targets="classes", min_object_fraction=min_object_fraction, flip=flip, seed=seed)
               for data, train in ((train_set, True), (val_set, False))]
    return train(model, loaders[0], loaders[1], settings, run_dir, progress=progress)
