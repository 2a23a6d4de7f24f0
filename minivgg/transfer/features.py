"""Descriptors of a whole collection of images, through the feature cache, for one net or two stacked.

``features_of`` is what the protocols and the command line call: it looks every image up in the cache,
decodes and extracts only the missing ones (a chunk at a time, so memory stays bounded), stores them, and
returns the descriptors in order. ``stacked_features`` stacks the descriptors of several nets (Appendix B's
"Net-D & Net-E"), each read from the cache on its own, so a net's descriptors are shared by its single-net
row and the stacked one.
"""
import os

import numpy as np

from .cache import image_key, model_fingerprint
from .extraction import FeatureSettings, extract, stack

__all__ = ["features_of", "stacked_features", "load_source"]


def load_source(source, settings, box=None):
    """An image file (decoded, JPEGs in draft mode when no box needs the full resolution) or an array.

    The draft keeps the smallest side at least the *largest* scale Q: every scale is then a downscaling of
    the decoded image, never an enlargement of a reduced one."""
    from ..data.images import decode_image

    if isinstance(source, (str, os.PathLike)):
        return decode_image(source, draft_smallest_side=max(settings.scales) if box is None else None)
    return np.asarray(source)


def features_of(model, sources, settings=None, cache=None, net_key=None, boxes=None, batch_size=8, chunk=64,
                progress=False, description="features"):
    """(N, D) descriptors of N images under ``model`` (``extraction.extract``), cached.

    Parameters
    ----------
    model : a ``VGG``
    sources : N image paths or (H, W, 3) uint8 arrays
    settings : ``FeatureSettings`` (default: its defaults)
    cache : a ``FeatureCache`` or None (compute everything)
    net_key : the net's fingerprint for the cache (``weights_fingerprint(path)``); default
        ``model_fingerprint(model)``
    boxes : optional N boxes (x_min, y_min, x_max, y_max) stacked after the whole image (action setting)
    batch_size, chunk : images per forward pass; images decoded at a time
    progress, description : a tqdm bar over the images to compute

    Returns
    -------
    (N, D) float32, rows of unit L2 norm.
    """
    from minivgg.progress import progress_bar

    settings = settings if settings is not None else FeatureSettings()
    sources = list(sources)
    if boxes is not None and len(boxes) != len(sources):
        raise ValueError(f"features_of: {len(boxes)} boxes for {len(sources)} images")
    rows, keys = [None] * len(sources), [None] * len(sources)
    if cache is not None:
        net_key = net_key if net_key is not None else model_fingerprint(model)
        stored = {}  # one lookup per distinct key: an image listed twice (two persons in it) is read once
        for i, source in enumerate(sources):
            keys[i] = cache.key(net_key, image_key(source, None if boxes is None else boxes[i]), settings)
            if keys[i] not in stored:
                stored[keys[i]] = cache.get(keys[i])
            rows[i] = stored[keys[i]]
    missing = [i for i, row in enumerate(rows) if row is None]
    # ... and computed once.
    first = {}
    for i in missing:
        first.setdefault(keys[i] if cache is not None else i, i)
    to_compute = list(first.values())
    with progress_bar(total=len(to_compute), disable=not progress or not to_compute, desc=description, unit="image") as bar:
        for start in range(0, len(to_compute), chunk):
            chosen = to_compute[start:start + chunk]
            chosen_boxes = None if boxes is None else [boxes[i] for i in chosen]
            images = [load_source(sources[i], settings, None if boxes is None else boxes[i]) for i in chosen]
            computed = extract(model, images, settings, boxes=chosen_boxes, batch_size=batch_size)
            for i, descriptor in zip(chosen, computed):
                rows[i] = descriptor
                if cache is not None:
                    cache.put(keys[i], descriptor)
            bar.update(len(chosen))
    for i in missing:
        rows[i] = rows[first[keys[i] if cache is not None else i]]
    if not rows:
        raise ValueError("features_of: no images")
    return np.stack(rows).astype(np.float32)


def stacked_features(models, sources, settings=None, cache=None, net_keys=None, **options):
    """Late fusion of several nets (Appendix B): ``stack`` of each net's ``features_of`` descriptors.

    Returns ``(stacked (N, sum D_i), [each net's (N, D_i)])``.
    """
    models = list(models)
    net_keys = list(net_keys) if net_keys is not None else [None] * len(models)
    if len(net_keys) != len(models):
        raise ValueError(f"stacked_features: {len(net_keys)} net keys for {len(models)} nets")
    sources = list(sources)
    each = [features_of(model, sources, settings, cache, key, **options) for model, key in zip(models, net_keys)]
    return stack(each), each
