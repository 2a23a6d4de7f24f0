"""Very deep features (Appendix B): dense penultimate-layer activations, pooled over space, flips and scales.

"An image is first rescaled so that its smallest side equals Q, and then the network is densely applied over
the image plane [...]. We then perform global average pooling on the resulting feature map, which produces a
4096-D image descriptor. The descriptor is then averaged with the descriptor of a horizontally flipped image.
[...] The resulting multi-scale features can be either stacked or pooled across scales. [...] The resulting
image descriptor is L2-normalised." Two nets are combined by "stacking their respective image descriptors";
in the action-classification setting the descriptors of the whole image and of the person's box are stacked.

The dense net is the model with its FC layers as convolutions (``VGG.to_fully_convolutional``) cut after the
requested layer (``VGG.features_at``): "fc7", the penultimate layer, by default; any named layer works
("conv5_3" gives 512-D descriptors of the last conv maps).

Every part that is stacked (a scale, the image and its box, a net) is L2-normalised first, so that each
weighs the same in the stacked descriptor, and the result is L2-normalised again; averaging scales averages
their normalised descriptors and normalises the mean. Stacking S scales of D-dim descriptors gives S * D
dimensions, averaging D.
"""
from dataclasses import asdict, dataclass

import numpy as np

from ..data.images import as_rgb_array
from ..evaluation.dense import dense_outputs

__all__ = ["AGGREGATIONS", "PENULTIMATE", "FeatureSettings", "l2_normalise", "stack", "descriptors_at_scale",
           "extract", "crop_box"]

AGGREGATIONS = ("stack", "average")
PENULTIMATE = "fc7"  # the 4096-D layer before the 1000-way classifier, which Appendix B removes


def l2_normalise(features):
    """(N, D) -> (N, D) with every row divided by its Euclidean norm (rows of zeros stay zero)."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms > 0, norms, 1)


def stack(parts):
    """Stacking of descriptors (scales, image and box, two nets): each (N, D_i) part L2-normalised, the
    parts concatenated to (N, sum D_i), the result L2-normalised."""
    parts = list(parts)
    if not parts:
        raise ValueError("stack: no descriptors to stack")
    counts = {part.shape[0] for part in parts}
    if len(counts) != 1:
        raise ValueError(f"stack: the descriptors describe different numbers of images: {sorted(counts)}")
    return l2_normalise(np.concatenate([l2_normalise(part) for part in parts], axis=1))


@dataclass(frozen=True)
class FeatureSettings:
    """How descriptors are computed; part of the feature cache's key.

    Attributes
    ----------
    layer : the named layer whose activations are pooled (default "fc7", the penultimate)
    scales : the smallest sides Q the image is rescaled to (Appendix B: 256, 384, 512; VOC up to 768)
    aggregation : "stack" (Caltech: the classifier sees every scale) or "average" (VOC: no growth in size)
    flip : average each descriptor with that of the horizontally flipped image
    """

    layer: str = PENULTIMATE
    scales: tuple = (256, 384, 512)
    aggregation: str = "stack"
    flip: bool = True

    def __post_init__(self):
        scales = tuple(int(q) for q in np.atleast_1d(self.scales))
        if not scales or min(scales) < 1:
            raise ValueError(f"FeatureSettings: scales must be positive integers, got {self.scales!r}")
        object.__setattr__(self, "scales", scales)
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"FeatureSettings: unknown aggregation {self.aggregation!r}; choose one of "
                             f"{AGGREGATIONS}")
        object.__setattr__(self, "flip", bool(self.flip))

    def to_dict(self):
        return dict(asdict(self), scales=list(self.scales))


def crop_box(image, box):
    """The pixels of ``box`` = (x_min, y_min, x_max, y_max) in an (H, W, 3) image: 0-based, x_max and y_max
    exclusive, clipped to the image. ValueError for a box that is empty once clipped."""
    x_min, y_min, x_max, y_max = (int(round(v)) for v in box)
    height, width = image.shape[:2]
    left, top, right, bottom = max(0, x_min), max(0, y_min), min(width, x_max), min(height, y_max)
    if right <= left or bottom <= top:
        raise ValueError(f"box {tuple(box)} holds no pixel of the {height}x{width} image")
    return np.ascontiguousarray(image[top:bottom, left:right])


def descriptors_at_scale(net, preprocessing, images, scale, flip=True, batch_size=8):
    """Global-average-pooled dense activations of ``net`` at one scale Q, averaged over the flip.

    Parameters
    ----------
    net : a Sequential mapping (N, 3, H, W) to (N, D, h, w) (``model.features_at(layer, True)``)
    preprocessing : the model's ``Preprocessing``
    images : list of (H, W, 3) uint8 RGB images, any sizes
    scale : Q, the smallest side each image is rescaled to
    flip, batch_size : average with the mirrored image; images per forward pass

    Returns
    -------
    (N, D) float32: ``mean over (i, j) of net(x)[:, :, i, j]``, averaged with the same for the flipped image.
    """
    from ..evaluation.posteriors import check_finite_outputs

    out = None
    for flipped in ((False, True) if flip else (False,)):
        with np.errstate(over="ignore"):  # beyond float32: caught below, as a NaN would be
            pooled = dense_outputs(net, preprocessing, images, scale, flipped, batch_size).astype(np.float32)
        out = pooled if out is None else out + pooled
    return check_finite_outputs(out / (2 if flip else 1), "descriptors", net.dtype, preprocessing)


def _image_descriptors(net, preprocessing, images, settings, batch_size):
    per_scale = [descriptors_at_scale(net, preprocessing, images, q, settings.flip, batch_size)
                 for q in settings.scales]
    if settings.aggregation == "stack":
        return stack(per_scale)
    return l2_normalise(np.mean([l2_normalise(part) for part in per_scale], axis=0))


def extract(model, images, settings=None, boxes=None, batch_size=8, **options):
    """Appendix B's image descriptors of ``images`` under ``model``.

    Parameters
    ----------
    model : a ``minivgg.models.VGG`` (its ``preprocessing`` is applied)
    images : sequence of N RGB images, (H, W, 3) uint8 arrays or PIL images, any sizes
    settings : ``FeatureSettings``; or give its fields as keyword arguments (``scales=(256, 384)``, ...)
    boxes : optional N boxes (x_min, y_min, x_max, y_max), 0-based pixels with exclusive ends: the
        descriptor of each box (computed like the image's) is stacked after the whole image's
    batch_size : images per forward pass (of equal size; different sizes run separately)

    Returns
    -------
    (N, D) float32, unit L2 norm per row. D = d * S for "stack" and d for "average", d the layer's
    channels (4096 at "fc7" for the paper's nets), S the number of scales; twice that with boxes.
    """
    if settings is None:
        settings = FeatureSettings(**options)
    elif options:
        raise TypeError(f"extract: give either settings or its fields, not both ({sorted(options)})")
    images = [as_rgb_array(image, i) for i, image in enumerate(images)]
    if boxes is not None and len(boxes) != len(images):
        raise ValueError(f"extract: {len(boxes)} boxes for {len(images)} images")
    if settings.layer.startswith("fc") and min(settings.scales) < model.input_size:
        raise ValueError(f"extract: scales {settings.scales} must be at least the net's input size "
                         f"{model.input_size}, where its FC layers apply densely")
    was_training = model.training
    model.eval()
    try:
        net = model.features_at(settings.layer, fully_convolutional=True)
        whole = _image_descriptors(net, model.preprocessing, images, settings, batch_size)
        if boxes is None:
            return whole
        crops = [crop_box(image, box) for image, box in zip(images, boxes)]
        return stack([whole, _image_descriptors(net, model.preprocessing, crops, settings, batch_size)])
    finally:
        model.train(was_training)
