"""The localisation ConvNet of Appendix A.1: a classification net whose last FC layer predicts boxes.

"The last fully connected layer predicts the bounding box location instead of the class scores": 4 numbers
``(t_x, t_y, t_w, t_h)`` (``boxes.encode_boxes``) shared by all classes in single-class regression (SCR), or
4 per class in per-class regression (PCR, 4 x 1000 = 4000 outputs on ILSVRC), class k's box in outputs
``4k .. 4k + 3``. The net is the classification model with that one layer replaced: every other layer starts
from the trained classifier's weights, the new last layer is "initialised randomly and trained from
scratch". Fine-tuning either updates all layers or, as OverFeat did, only the fully-connected ones (FC1 and
FC2, with the new last layer): the convolutional layers then stay frozen, and the backward pass stops at FC1.

A ``LocalisationNet`` is what ``minivgg.training.train`` trains: its ``named_parameters`` are the parameters
being fine-tuned. Its whole net is ``net.model``, a ``VGG`` with 4 or 4 x classes outputs, so the weight
file, dense evaluation (``to_fully_convolutional``) and every backend work as for a classifier.
"""
import json

import numpy as np

from ..weights.record import json_object

__all__ = ["REGRESSIONS", "FINE_TUNING", "LocalisationNet", "localisation_net", "save_localisation_net",
           "load_localisation_net", "METADATA_KEY"]

REGRESSIONS = ("SCR", "PCR")
FINE_TUNING = ("all", "fc")
METADATA_KEY = "localisation"


def _check_choice(value, choices, name):
    if not isinstance(value, str) or value.upper() not in (c.upper() for c in choices):
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return next(c for c in choices if c.upper() == value.upper())


class LocalisationNet:
    """A VGG predicting boxes, and which of its layers are fine-tuned.

    Shapes: input (N, 3, input_size, input_size) -> (N, 4) for SCR, (N, 4 * num_classes) for PCR.

    Parameters
    ----------
    model : ``minivgg.models.VGG`` with 4 (SCR) or 4 * num_classes (PCR) outputs
    regression : "SCR" or "PCR"
    num_classes : classes of the classification task (the PCR boxes' count)
    class_names : list of str or None
    fine_tune : "all" (every layer) or "fc" (FC1, FC2 and the box layer; the conv layers are frozen)
    """

    def __init__(self, model, regression, num_classes, class_names=None, fine_tune="all"):
        self.model = model
        self.regression = _check_choice(regression, REGRESSIONS, "regression")
        self.fine_tune = _check_choice(fine_tune, FINE_TUNING, "fine_tune")
        self.num_classes = int(num_classes)
        expected = 4 if self.regression == "SCR" else 4 * self.num_classes
        if model.num_classes != expected:
            raise ValueError(f"LocalisationNet: a {self.regression} net for {self.num_classes} classes has "
                             f"{expected} outputs, the model {model.num_classes}")
        self.class_names = None if class_names is None else [str(name) for name in class_names]
        self.training = model.training

    def __repr__(self):
        return (f"LocalisationNet({self.regression}, {self.num_classes} classes, fine-tuning {self.fine_tune}, "
                f"configuration {self.model.config})")

    @property
    def outputs(self):
        return self.model.num_classes

    @property
    def input_size(self):
        return self.model.input_size

    @property
    def preprocessing(self):
        return self.model.preprocessing

    @property
    def dtype(self):
        """The dtype the model computes in (its inputs are cast to it for evaluation)."""
        return self.model.dtype

    @property
    def layers(self):
        """All the model's layers (the checkpoint finds the dropout layers' random state here)."""
        return self.model.layers

    def _tuned(self):
        """The layers that are fine-tuned, as a Sequential sharing them."""
        if self.fine_tune == "all":
            return self.model
        return self.model.classifier

    def forward(self, x):
        return self.model.forward(x)

    __call__ = forward

    def backward(self, dout, input_gradient=True):
        """Gradients of the fine-tuned layers; with ``fine_tune="fc"`` the pass stops at FC1 (returns None)."""
        if self.fine_tune == "all":
            return self.model.backward(dout, input_gradient)
        self.model.classifier.backward(dout)
        return None

    def named_parameters(self, prefix=""):
        """``(name, layer, key)`` of the parameters being fine-tuned, named as in the weight file."""
        tuned = {id(layer) for layer in self._tuned().layers}
        for name, layer, key in self.model.named_parameters(prefix):
            if id(layer) in tuned:
                yield name, layer, key

    def num_parameters(self):
        return sum(int(layer.params[key].size) for _, layer, key in self.named_parameters())

    def train(self, mode=True):
        self.model.train(mode)
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def to_backend(self):
        self.model.to_backend()
        return self

    def box_parameters(self, outputs, classes):
        """The (N, 4) ``(t_x, t_y, t_w, t_h)`` for ``classes`` (N,) from the net's (N, outputs) predictions:
        the shared box for SCR, class k's four outputs for PCR."""
        outputs = np.asarray(outputs)
        if self.regression == "SCR":
            return outputs[:, :4]
        classes = np.asarray(classes, dtype=np.int64)
        columns = 4 * classes[:, None] + np.arange(4)[None, :]
        return np.take_along_axis(outputs, columns, axis=1)

    def to_fully_convolutional(self):
        """The box net as a fully-convolutional net (Sect. 3.2): (N, 3, H, W) -> (N, outputs, h, w)."""
        return self.model.to_fully_convolutional()

    def description(self):
        """The JSON-able record stored beside the weights."""
        return {"regression": self.regression, "num_classes": self.num_classes, "class_names": self.class_names,
                "fine_tune": self.fine_tune,
                "box_encoding": "centre and size relative to the window side: (cx - left) / side, "
                                "(cy - top) / side, w / side, h / side"}


def localisation_net(classifier, regression="PCR", fine_tune="all", seed=0):
    """The localisation net initialised from a trained classification ``classifier`` (Appendix A.1).

    Parameters
    ----------
    classifier : a trained ``minivgg.models.VGG``
    regression : "SCR" (4 outputs) or "PCR" (4 per class)
    fine_tune : "all" or "fc" (see ``LocalisationNet``)
    seed : seeds the new last layer's random weights (the paper's N(0, 0.01^2)) and the dropout masks

    Returns a ``LocalisationNet``: every layer but the last is a copy of the classifier's, with its
    preprocessing; the box layer is new.
    """
    from ..models import VGG, vgg

    if not isinstance(classifier, VGG):
        raise TypeError(f"localisation_net: expected a trained VGG classifier, got {type(classifier).__name__}")
    regression = _check_choice(regression, REGRESSIONS, "regression")
    outputs = 4 if regression == "SCR" else 4 * classifier.num_classes
    architecture = dict(classifier.architecture(), num_classes=outputs)
    dtype = classifier.dtype or np.float32
    model = vgg(**architecture, weight_init="paper", seed=seed, dtype=dtype)
    source = {name: (layer, key) for name, layer, key in classifier.named_parameters()}
    last = [name for name, layer, key in model.named_parameters()][-2:]  # the box layer's weight and bias
    for name, layer, key in model.named_parameters():
        if name not in last:
            layer.params[key] = source[name][0].params[key].copy()
    model.preprocessing = classifier.preprocessing
    return LocalisationNet(model, regression, classifier.num_classes, classifier.class_names, fine_tune)


def save_localisation_net(net, path, metadata=None):
    """Write the box net's weights (a minivgg weight file) with its regression type and classes."""
    from .. import weights

    metadata = dict(metadata or {})
    metadata[METADATA_KEY] = json.dumps(net.description())
    weights.save(net.model, path, metadata=metadata)


def load_localisation_net(path):
    """A ``LocalisationNet`` from ``save_localisation_net``'s file; ValueError if it is a plain classifier."""
    from .. import weights

    _, metadata = weights.read_metadata(path)
    if METADATA_KEY not in metadata:
        raise ValueError(f"{path} holds a classification net, not a localisation net (no {METADATA_KEY!r} "
                         f"record); train one with `minivgg localize train`")
    record = _parse_record(metadata[METADATA_KEY], path)
    model = weights.load(path)
    return LocalisationNet(model, record["regression"], record["num_classes"], record.get("class_names"),
                           record.get("fine_tune", "all"))


def _parse_record(text, path):
    """The localisation record of a weight file's header, every field checked (type and range); ValueError
    naming the file and the field."""
    from ..limits import MAX_CLASSES

    record = json_object(text, path, "the localisation record")
    unknown = sorted(set(record) - {"regression", "num_classes", "class_names", "fine_tune", "box_encoding"})
    if unknown:
        raise ValueError(f"{path}: the localisation record has unknown fields {unknown}")
    classes = record.get("num_classes")
    if isinstance(classes, bool) or not isinstance(classes, int) or not 1 <= classes <= MAX_CLASSES:
        raise ValueError(f"{path}: the localisation record's num_classes must be a whole number from 1 to "
                         f"{MAX_CLASSES:,}, got {str(classes)[:40]!r}")
    for name, choices in (("regression", REGRESSIONS), ("fine_tune", FINE_TUNING)):
        if name in record or name == "regression":
            _check_choice(record.get(name), choices, f"{path}: the localisation record's {name}")
    if not isinstance(record.get("box_encoding", ""), str):
        raise ValueError(f"{path}: the localisation record's box_encoding must be a string (a description)")
    names = record.get("class_names")
    if names is not None and (not isinstance(names, list) or len(names) != classes
                              or not all(isinstance(n, str) for n in names)):
        raise ValueError(f"{path}: the localisation record's class_names must be null or {classes} strings")
    return record

