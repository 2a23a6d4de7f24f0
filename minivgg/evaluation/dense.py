"""The one loop that runs a net over whole images (Sect. 3.2): rescale each image to Q, mirror it if asked,
batch the images of equal size, preprocess, forward, and pool each output map on the device.

Dense evaluation (the class score map averaged over space), Appendix A's dense boxes (every position's box)
and Appendix B's descriptors (the fc7 map averaged over space) are this loop with another pooling; single-crop
evaluation and Appendix A's first protocol are ``forward_in_batches`` on centre crops.
"""
import numpy as np

from ..backend import to_host
from ..data.device_feed import device_batches
from ..data.transforms import centre_crop, rescale_smallest_side, rescaled_size
from ..fused_layers import fuse_conv_relu

__all__ = ["group_by_size", "forward_in_batches", "dense_outputs", "centre_crops", "spatial_mean"]


def group_by_size(images):
    """Indices of the images grouped by shape, in order of first appearance: one batch shape per group keeps
    throughput high."""
    groups = {}
    for i, image in enumerate(images):
        groups.setdefault(image.shape, []).append(i)
    return list(groups.values())


def spatial_mean(maps):
    """(N, C, h, w) -> (N, C): the average over positions of a map (a (N, C) output is already one)."""
    return maps.mean(axis=(2, 3)) if maps.ndim == 4 else maps


def forward_in_batches(net, preprocessing, images, batch_size=32, pool=None):
    """``net`` on equal-sized (H, W, 3) uint8 images, ``batch_size`` at a time, preprocessed as ``preprocessing``
    says (on the device, each batch copied as uint8 while the previous one is computed: ``data.device_feed``);
    each batch's output is reduced on the device by ``pool`` (None: kept whole) and copied to the host.
    Convolutions followed by a ReLU run fused where the backend fuses them (``fused_layers``). Returns the
    outputs of all images, in order, as one float64 host array. The images are fed in the net's dtype (a float64
    net computes in float64)."""
    if not images:
        raise ValueError("forward_in_batches: no images (a batch of 0)")
    dtype = net.dtype  # None for a layer without parameters: the preprocessed pixels as they are
    net = fuse_conv_relu(net)
    pixels = ((np.stack(images[start:start + batch_size]), None, None) for start in range(0, len(images), batch_size))
    out = []
    for x, _ in device_batches(pixels, preprocessing):  # uint8 copied, preprocessed on the device
        if dtype is not None and x.dtype != dtype:  # a float64 net computes in float64
            x = x.astype(dtype)
        outputs = net.forward(x)
        out.append(np.asarray(to_host(outputs if pool is None else pool(outputs)), dtype=np.float64))
    return np.concatenate(out)


def dense_outputs(net, preprocessing, images, scale=None, flip=False, batch_size=32, pool=spatial_mean):
    """A fully-convolutional ``net`` applied to each whole image rescaled to smallest side ``scale``.

    Parameters
    ----------
    net : a net mapping (N, 3, H, W) to (N, C, h, w) maps of any size (``VGG.to_fully_convolutional()``), or
        one layer
    preprocessing : the model's ``Preprocessing``
    images : list of (H, W, 3) uint8 RGB images of any sizes
    scale : Q, the smallest side each image is rescaled to (None: the images as they are)
    flip : run on the horizontally mirrored images instead
    batch_size : images per forward pass (images of different sizes run separately)
    pool : reduces a device batch of maps before the host copy (default: the average over positions)

    Returns
    -------
    With a ``pool`` that gives every image the same shape, one (N, ...) float64 array; with ``pool=None``, a list
    of N (C, h, w) float64 maps.
    """
    _check_dense_memory(net, images, scale, batch_size)
    net = fuse_conv_relu(net)
    views = [rescale_smallest_side(image, scale) if scale is not None else image for image in images]
    if flip:
        views = [np.ascontiguousarray(view[:, ::-1]) for view in views]
    results = [None] * len(views)
    for group in group_by_size(views):
        outputs = forward_in_batches(net, preprocessing, [views[i] for i in group], batch_size, pool)
        for i, output in zip(group, outputs):
            results[i] = output
    return results if pool is None else np.stack(results)


def _check_dense_memory(net, images, scale, batch_size):
    """TooLargeError before anything is rescaled or run when one batch of the rescaled images would not fit in
    memory (``summary.evaluation_memory``): a wide image at a large Q costs its area in every layer. The batch
    checked is the one that needs the most: the largest size is not always it, as a batch holds up to
    ``batch_size`` images of one size."""
    from ..limits import check_aspect_ratio, check_memory
    from ..summary import evaluation_memory

    counts = {}
    for image in images:
        height, width = image.shape[:2]
        check_aspect_ratio(height, width, f"an image of {width}x{height} pixels")
        size = rescaled_size(height, width, scale) if scale is not None else (height, width)
        counts[size] = counts.get(size, 0) + 1
    layers = getattr(net, "layers", [net])  # a Sequential, or one layer
    itemsize = np.dtype(net.dtype or np.float32).itemsize

    def needed(height, width, batch):  # the activations, and the float32 pixels preprocessed on the device
        return evaluation_memory(layers, height, width, batch, itemsize) + 4 * 3 * height * width * batch

    batches = [(needed(height, width, min(batch_size, count)), min(batch_size, count), height, width)
               for (height, width), count in counts.items()]
    if not batches:
        return
    most, batch, height, width = max(batches)  # the most bytes (of equal needs, any one)
    check_memory(most, f"dense evaluation of {batch} image{'s' if batch > 1 else ''} rescaled to {width}x{height} "
                       f"pixels")


def centre_crops(images, scale, crop, flip=False):
    """Each image rescaled to smallest side ``scale`` and its central ``crop`` x ``crop`` window (mirrored if
    ``flip``); ``(crops, rescaled sizes)``, the sizes as (height, width) of the rescaled images."""
    crops, sizes = [], []
    for image in images:
        rescaled = rescale_smallest_side(image, scale)
        view = rescaled[:, ::-1] if flip else rescaled
        crops.append(np.ascontiguousarray(centre_crop(view, crop)))
        sizes.append(rescaled.shape[:2])
    return crops, sizes
