"""Images in, named classes out: ``minivgg.predict(model, images, top=5, method="dense")``.

One call does what Keras spreads over ``preprocess_input``, ``model.predict`` and ``decode_predictions``, and
torchvision over ``weights.transforms()``, the forward pass, a soft-max and ``weights.meta["categories"]``:
it reads the images (paths, PIL images or arrays), applies the preprocessing recorded with the model's
weights, evaluates as the paper tests (dense over the whole rescaled image by default, Sect. 3.2; or
single-crop, multi-crop), and returns per image the ``top`` classes as ``Prediction(class_id, name,
probability)``.
"""
import os
from collections import namedtuple

import numpy as np

from .scales import default_test_scales

__all__ = ["Prediction", "predict", "decode_predictions"]

Prediction = namedtuple("Prediction", "class_id name probability")
Prediction.__doc__ = """One ranked class: its output index, its name, and its soft-max posterior."""


def _top_count(top, classes, caller):
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)):
        raise TypeError(f"{caller}: top must be an int, got {type(top).__name__}")
    if not 1 <= top <= classes:
        raise ValueError(f"{caller}: top must be between 1 and the model's {classes} classes, got {top}")
    return int(top)


def decode_predictions(probabilities, class_names=None, top=5):
    """The ``top`` classes of each row of posteriors, most probable first (ties: lower index first).

    Parameters
    ----------
    probabilities : (N, classes) array of posteriors (or any scores: the order is what counts)
    class_names : the name of every class, or None for "class 0", "class 1", ...
    top : how many classes per row, 1 ... classes

    Returns a list of N lists of ``Prediction(class_id, name, probability)``.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2:
        raise ValueError(f"decode_predictions: expected (images, classes) posteriors, got shape "
                         f"{probabilities.shape}")
    classes = probabilities.shape[1]
    top = _top_count(top, classes, "decode_predictions")
    if class_names is not None and len(class_names) != classes:
        raise ValueError(f"decode_predictions: {len(class_names)} class names for {classes} classes")
    names = class_names if class_names is not None else [f"class {i}" for i in range(classes)]
    return [[Prediction(int(k), str(names[k]), float(row[k])) for k in np.argsort(-row, kind="stable")[:top]]
            for row in probabilities]


def _read(image, index):
    """Any one image as an RGB array, through the one conversion files, PIL images and arrays share
    (``data.images.as_rgb_array``)."""
    from ..data.images import as_rgb_array

    try:
        return as_rgb_array(image, index)
    except TypeError as error:
        raise TypeError(f"predict: {error}") from None


def _is_one_image(images):
    """Whether ``images`` is one image rather than a sequence of them: a path, bytes, an open file, a PIL image,
    an array of one image's pixels ((H, W), (H, W, 3), (H, W, 4); a 1-D array is refused as one), or anything
    that is no sequence (refused, named, as one image); an (N, H, W, 3) or (N, H, W) array is N images."""
    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(images, "read") \
            or hasattr(images, "convert") or not hasattr(images, "__iter__"):
        return True
    return isinstance(images, np.ndarray) and (images.ndim <= 2 or (images.ndim == 3 and images.shape[2] in (1, 3, 4)))


def predict(model, images, top=5, method="dense", scales=None, flip=True, batch_size=32, progress=False):
    """The ``top`` most probable classes of each image, by name.

    Parameters
    ----------
    model : a ``VGG`` (``minivgg.pretrained("vgg16")``, ``minivgg.weights.load(path)``, a trained model), or
        the path of a minivgg weight file
    images : one image or a sequence of them, each a file path, the bytes of an image file, an open binary
        file, a PIL image or an array ((H, W) grey, (H, W, 3) RGB, (H, W, 4) RGBA; uint8 or uint16), of any size;
        an (N, H, W, 3) array is N images. Each goes through the conversion a decoded file does
        (``minivgg.data.images``: alpha over white, 16 bits scaled, EXIF orientation applied)
    top : classes per image, 1 ... the model's classes
    method : ``"dense"`` (Sect. 3.2), ``"single-crop"``, ``"multi-crop"`` or ``"multi-crop+dense"``
        (``minivgg.evaluation.METHODS``)
    scales : test scales Q (the smallest side after isotropic rescaling); default ``scales.default_test_scales(model)``
    flip : also average the posteriors of the mirrored image, as the paper does
    batch_size : images or crops per forward pass

    Returns
    -------
    A list with one entry per image (also for a single image), each a list of ``top``
    ``Prediction(class_id, name, probability)``, most probable first. Names are the model's ``class_names``
    (the ILSVRC-2012 names for the published weights), or "class i" when it has none. Scores that come out NaN
    or infinite (weights or preprocessing beyond float32) are a ``NonFiniteOutputError``, never a ``nan``
    probability.
    """
    from .posteriors import posteriors
    from ..weights.weight_file import load

    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    top = _top_count(top, model.num_classes, "predict")
    if _is_one_image(images):
        images = [images]
    images = [_read(image, i) for i, image in enumerate(images)]
    if not images:
        raise ValueError("predict: no images given")
    scales = default_test_scales(model) if scales is None else scales
    probabilities = posteriors(model, images, method, scales, flip=flip, batch_size=batch_size, progress=progress)
    return decode_predictions(probabilities, model.class_names, top)
