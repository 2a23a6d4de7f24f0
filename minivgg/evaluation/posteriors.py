"""Testing as in Sect. 3.2 and 4: dense (fully-convolutional) and multi-crop evaluation over several scales,
their combination, fusion of several models, and top-1/top-5 error tables.

Every method turns a list of images of any size into soft-max class posteriors, one row per image:

- ``"single-crop"``: rescale the smallest side to Q, take the centre crop (224 for VGG).
- ``"dense"``: the net with its FC layers as convolutions (FC1 as 7x7, FC2/FC3 as 1x1) runs on the whole
  rescaled image; the class score map is averaged over space, then soft-maxed (Sect. 3.2). The long side is
  first cropped to Q plus a multiple of 32 pixels (scaled with the crop size): at most 31 pixels of it, so that
  a test set's many aspect ratios make few input shapes (``dense_shapes.py``).
- ``"multi-crop"``: a 5x5 regular grid of crops per scale, each also flipped: 50 crops per scale, 150 over
  three scales (Sect. 4.3); the posteriors of all crops are averaged. The grid's crops start at
  ``round(i * (side - crop) / 4)`` for i = 0..4 along each axis: the four corners, the centre, and evenly
  in between.
- ``"multi-crop+dense"``: the average of the two (Table 5's "multi-crop & dense").

With ``flip=True`` (the paper's setting) every method also averages the posteriors of the horizontally
flipped image (for multi-crop: the grid's 25 crops of each); ``flip=False`` is for data that is not
mirror-symmetric, such as digits. Several scales Q average their posteriors
(Sect. 4.2); several models average theirs (``fuse``, Sect. 4.4). Images are preprocessed as the model's
weights record (``model.preprocessing``).
"""
import json
import os

import numpy as np

from ..backend import get_backend, weights_frozen
from ..data.images import as_rgb_array
from ..data.transforms import centre_crop, rescale_smallest_side
from .dense import dense_outputs, forward_in_batches, spatial_mean
from .shape_buckets import crop_to_bucket, shape_step
from .metrics import top_k_error
from .scales import paper_scales  # noqa: F401  (Sect. 4.2's scales, with the methods they go with)

__all__ = ["METHODS", "posteriors", "check_finite_outputs", "fuse", "multi_crop_offsets", "paper_scales",
           "save_posteriors",
           "load_posteriors", "error_table", "format_table", "posterior_file_names"]

METHODS = ("single-crop", "dense", "multi-crop", "multi-crop+dense")
GRID = 5  # crops per axis in multi-crop evaluation


def multi_crop_offsets(height, width, crop):
    """Top-left corners of the 5x5 grid of ``crop`` x ``crop`` windows in a ``height`` x ``width`` image.

    Returns a list of 25 ``(top, left)``, row by row; rows at ``round(i * (height - crop) / 4)``.
    """
    if min(height, width) < crop:
        raise ValueError(f"multi-crop: image {height}x{width} is smaller than the {crop}x{crop} crop")
    tops = [int(round(i * (height - crop) / (GRID - 1))) for i in range(GRID)]
    lefts = [int(round(i * (width - crop) / (GRID - 1))) for i in range(GRID)]
    return [(top, left) for top in tops for left in lefts]


def posteriors(model, images, method="dense", scales=(384,), flip=True, batch_size=32, progress=False,
               shape_buckets=False):
    """Soft-max class posteriors of ``images`` under ``model``.

    Parameters
    ----------
    model : a VGG model (``minivgg.models``) with ``preprocessing``, ``input_size`` and
        ``to_fully_convolutional()``
    images : sequence of RGB images of any sizes, (H, W, 3) uint8 arrays or PIL images
    method : one of ``METHODS``
    scales : test scales Q (smallest image side after isotropic rescaling), each at least the crop: the
        model's input size (224), the only crop its FC layers take
    flip : also average over the horizontally flipped images
    batch_size : images (or crops) per forward pass
    shape_buckets : dense only: crop each rescaled image's long side to Q plus a multiple of the net's stride
        (at most 31 px at 224; ``shape_buckets.py``), so a GPU builds graphs for a few shapes instead of one set
        per image size. Off by default: the paper's dense evaluation sees the whole image

    Returns
    -------
    (N, classes) float64 array; each row sums to one.
    """
    from minivgg.progress import progress_bar

    if method not in METHODS:
        raise ValueError(f"unknown evaluation method {method!r}; choose one of {METHODS}")
    crop = int(model.input_size)
    scales = tuple(scales if np.ndim(scales) else (scales,))
    if not all(isinstance(q, (int, np.integer)) and not isinstance(q, bool) for q in scales):
        raise ValueError(f"test scales must be whole numbers of pixels, got {scales}")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    scales = tuple(int(q) for q in scales)
    if not scales or min(scales) < crop:
        raise ValueError(f"test scales {scales} must all be at least the crop size {crop} (Q >= crop)")
    images = [as_rgb_array(image, i) for i, image in enumerate(images)]
    if method == "multi-crop+dense":
        return 0.5 * (posteriors(model, images, "multi-crop", scales, flip, batch_size, progress)
                      + posteriors(model, images, "dense", scales, flip, batch_size, progress, shape_buckets))
    was_training = model.training
    model.eval()
    net = model.to_fully_convolutional().eval() if method == "dense" else model
    softmax = get_backend().softmax
    total = np.zeros((len(images), model.num_classes))
    flips = (False, True) if flip else (False,)
    try:
        for q in progress_bar(scales, disable=not progress, desc=f"{method} evaluation", unit="scale"):
            rescaled = [rescale_smallest_side(image, q) for image in images]
            if method == "dense":  # the class score map averaged over space, then soft-maxed (Sect. 3.2)
                if shape_buckets:  # a few distinct shapes for a GPU's graphs (shape_buckets.py)
                    rescaled = [crop_to_bucket(image, shape_step(crop)) for image in rescaled]
                with weights_frozen():
                    for flipped in flips:
                        total += dense_outputs(net, model.preprocessing, rescaled, None, flipped, batch_size,
                                               pool=lambda maps: softmax(spatial_mean(maps)))
                continue
            for flipped in flips:
                views = [image[:, ::-1] for image in rescaled] if flipped else rescaled
                if method == "single-crop":
                    crops = [np.ascontiguousarray(centre_crop(view, crop)) for view in views]
                    total += forward_in_batches(net, model.preprocessing, crops, batch_size, pool=softmax)
                else:  # multi-crop: 25 crops per image and flip, averaged
                    for i, view in enumerate(views):
                        crops = [np.ascontiguousarray(view[top:top + crop, left:left + crop])
                                 for top, left in multi_crop_offsets(view.shape[0], view.shape[1], crop)]
                        total[i] += forward_in_batches(net, model.preprocessing, crops, batch_size,
                                                       pool=softmax).mean(axis=0)
    finally:
        model.train(was_training)
    return check_finite_outputs(total / (len(scales) * len(flips)), "scores", model.dtype, model.preprocessing)


def check_finite_outputs(outputs, what, dtype, preprocessing):
    """``outputs`` ((N, ...) host array, one row per image) when every value is finite; else
    ``NonFiniteOutputError`` naming the images: weights or a preprocessing that overflow the dtype the model
    computes in give NaN or infinite scores, which must never be shown as a ``nan%`` probability or written as a
    descriptor."""
    from ..errors import NonFiniteOutputError

    outputs = np.asarray(outputs)
    bad = ~np.isfinite(outputs).all(axis=tuple(range(1, outputs.ndim)))  # per image; none for no images
    if bad.any():
        images = np.flatnonzero(bad)
        raise NonFiniteOutputError(
            f"the model's {what} are NaN or infinite for {len(images)} of {len(outputs)} images (image "
            f"{', '.join(map(str, images[:5]))}{' ...' if len(images) > 5 else ''}): its weights or its "
            f"preprocessing ({preprocessing}) overflow {dtype}; nothing was written")
    return outputs


def fuse(posteriors_list):
    """Model fusion (Sect. 4.4): the average of several models' posteriors of the same images."""
    arrays = [np.asarray(p, dtype=np.float64) for p in posteriors_list]
    if not arrays:
        raise ValueError("fuse: no posteriors given")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"fuse: posteriors of different shapes {sorted(shapes)}: same images and classes needed")
    return np.mean(arrays, axis=0)


def save_posteriors(path, posteriors_array, labels=None, metadata=None):
    """Store per-image posteriors (and labels, and a JSON description) in an ``.npz`` file, to fuse later
    without recomputing. Loaded with ``allow_pickle=False``. Written atomically (``checkpoint.atomic_write``)."""
    from ..files import atomic_write

    from ..files import MARK_KEY, MARK_VALUE

    arrays = {"posteriors": np.asarray(posteriors_array, dtype=np.float64),
              "metadata": np.array(json.dumps(metadata or {})), MARK_KEY: np.array(MARK_VALUE)}
    if labels is not None:
        arrays["labels"] = np.asarray(labels, dtype=np.int64)

    def write(temporary):
        with open(temporary, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    atomic_write(os.fspath(path), write)


def posterior_file_names(weight_paths):
    """One distinct ``.npz`` file name per weight file, for ``save_posteriors``: the file's stem, preceded by
    as many of its folders as it takes to tell the files apart (``runs/a/model.safetensors`` and
    ``runs/b/model.safetensors`` give ``a_model.npz`` and ``b_model.npz``); a file given twice gets ``-2``."""
    stems = []
    for path in weight_paths:
        parts = [part for part in os.path.abspath(os.fspath(path)).split(os.sep) if part]
        stems.append(parts[:-1] + [os.path.splitext(parts[-1])[0]])
    for depth in range(1, max(len(stem) for stem in stems) + 1):
        names = ["_".join(stem[-depth:]) for stem in stems]
        if len(set(names)) == len(names):
            return [f"{name}.npz" for name in names]
    seen, unique = {}, []
    for name in (stem[-1] for stem in stems):  # the same file more than once
        seen[name] = seen.get(name, 0) + 1
        unique.append(f"{name}.npz" if seen[name] == 1 else f"{name}-{seen[name]}.npz")
    return unique


def load_posteriors(path):
    """``(posteriors, labels or None, metadata dict)`` from ``save_posteriors``' file."""
    from ..files import require_regular_file

    require_regular_file(path, "posteriors file")
    try:
        with np.load(path, allow_pickle=False) as data:
            labels = data["labels"] if "labels" in data.files else None
            posteriors_array, metadata = data["posteriors"], json.loads(str(data["metadata"]))
    except (OSError, KeyError, ValueError, RecursionError) as error:
        raise ValueError(f"{path} is not a readable posteriors file: {error}") from error
    labels_fit = labels is None or (labels.shape == posteriors_array.shape[:1]
                                    and np.issubdtype(labels.dtype, np.integer))
    if (posteriors_array.ndim != 2 or posteriors_array.dtype.kind != "f" or not isinstance(metadata, dict)
            or not labels_fit):
        raise ValueError(f"{path} is not a posteriors file of minivgg's: (images, classes) posteriors, one integer "
                         f"label per image and a metadata object expected")
    return posteriors_array, labels, metadata


def error_table(rows):
    """Compute each row's errors: ``rows`` are dicts with ``posteriors``, ``labels`` and the descriptive
    columns (``configuration``, ``train_S``, ``test_Q``, ``method``); returns the rows with ``top1_error``
    and ``top5_error`` (in %) and without the arrays."""
    table = []
    for row in rows:
        probabilities, labels = row["posteriors"], np.asarray(row["labels"])
        if probabilities.shape[0] != labels.shape[0]:
            raise ValueError(f"{probabilities.shape[0]} posteriors but {labels.shape[0]} labels")
        if labels.size and labels.max() >= probabilities.shape[1]:  # no labels: top_k_error names it
            raise ValueError(f"labels reach class {labels.max()} but the model has {probabilities.shape[1]} classes")
        entry = {k: v for k, v in row.items() if k not in ("posteriors", "labels")}
        entry["top1_error"] = 100 * top_k_error(probabilities, labels, 1)
        entry["top5_error"] = 100 * top_k_error(probabilities, labels, min(5, probabilities.shape[1]))
        table.append(entry)
    return table


def format_table(table):
    """The paper's columns: ConvNet config., train (S), test (Q), evaluation method, top-1, top-5 error."""
    header = f"{'ConvNet config.':<18} {'train (S)':>10} {'test (Q)':>16} {'method':>17} {'top-1 err':>9} {'top-5 err':>9}"
    lines = [header, "-" * len(header)]
    for row in table:
        lines.append(f"{row.get('configuration', ''):<18} {str(row.get('train_S', '')):>10} "
                     f"{str(row.get('test_Q', '')):>16} {row.get('method', ''):>17} {row['top1_error']:8.1f}% "
                     f"{row['top5_error']:8.1f}%")
    return "\n".join(lines)
