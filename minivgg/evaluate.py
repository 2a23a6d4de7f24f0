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

from .backend import asarray, get_backend, to_host, weights_frozen
from .dense_shapes import crop_to_bucket, shape_step
from .metrics import top_k_error

__all__ = ["METHODS", "posteriors", "fuse", "multi_crop_offsets", "paper_scales", "save_posteriors",
           "load_posteriors", "error_table", "format_table", "check_class_names", "posterior_file_names"]

METHODS = ("single-crop", "dense", "multi-crop", "multi-crop+dense")
GRID = 5  # crops per axis in multi-crop evaluation


def paper_scales(train_scale, crop_size=224):
    """The test scales Q of Sect. 4.2 for a training scale S.

    A fixed S (an int) gives {S - 32, S, S + 32}; a jittered range (S_min, S_max) gives
    {S_min, (S_min + S_max) / 2, S_max}. For a net trained on crops other than 224, the 32 scales with the
    crop (``round(32 * crop_size / 224)``), so a small trial net is tested as the paper's are.
    """
    if isinstance(train_scale, (tuple, list)):
        low, high = train_scale
        return (int(low), int((low + high) // 2), int(high))
    step = max(1, int(round(32 * crop_size / 224)))
    return (int(train_scale) - step, int(train_scale), int(train_scale) + step)


def multi_crop_offsets(height, width, crop):
    """Top-left corners of the 5x5 grid of ``crop`` x ``crop`` windows in a ``height`` x ``width`` image.

    Returns a list of 25 ``(top, left)``, row by row; rows at ``round(i * (height - crop) / 4)``.
    """
    if min(height, width) < crop:
        raise ValueError(f"multi-crop: image {height}x{width} is smaller than the {crop}x{crop} crop")
    tops = [int(round(i * (height - crop) / (GRID - 1))) for i in range(GRID)]
    lefts = [int(round(i * (width - crop) / (GRID - 1))) for i in range(GRID)]
    return [(top, left) for top in tops for left in lefts]


def _as_rgb_array(image, index):
    if hasattr(image, "convert"):  # a PIL image
        image = np.asarray(image.convert("RGB"))
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image {index}: expected an RGB uint8 array (H, W, 3) or a PIL image, got "
                         f"{image.dtype} {image.shape}")
    return image


def _softmax_host(scores):
    return np.asarray(to_host(get_backend().softmax(scores)), dtype=np.float64)


def _run_batched(net, preprocessing, images, batch_size, average_map):
    """Posteriors of equal-sized images, ``batch_size`` at a time; ``average_map`` averages a score map."""
    out = []
    for start in range(0, len(images), batch_size):
        x = asarray(preprocessing.apply(np.stack(images[start:start + batch_size])))
        scores = net.forward(x)
        if average_map:
            scores = scores.mean(axis=(2, 3))
        out.append(_softmax_host(scores))
    return np.concatenate(out)


def _by_size(images):
    """Indices of the images grouped by (height, width): one batch shape per group keeps throughput high."""
    groups = {}
    for i, image in enumerate(images):
        groups.setdefault(image.shape[:2], []).append(i)
    return groups.values()


def posteriors(model, images, method="dense", scales=(384,), flip=True, crop_size=None, batch_size=32,
               progress=False):
    """Soft-max class posteriors of ``images`` under ``model``.

    Parameters
    ----------
    model : a VGG model (``minivgg.models``) with ``preprocessing``, ``input_size`` and
        ``to_fully_convolutional()``
    images : sequence of RGB images of any sizes, (H, W, 3) uint8 arrays or PIL images
    method : one of ``METHODS``
    scales : test scales Q (smallest image side after isotropic rescaling), each >= ``crop_size``
    flip : also average over the horizontally flipped images
    crop_size : crop side, default the model's input size (224)
    batch_size : images (or crops) per forward pass

    Returns
    -------
    (N, classes) float64 array; each row sums to one.
    """
    from tqdm.auto import tqdm

    from .data.transforms import center_crop, rescale_smallest_side

    if method not in METHODS:
        raise ValueError(f"unknown evaluation method {method!r}; choose one of {METHODS}")
    crop = int(model.input_size if crop_size is None else crop_size)
    scales = tuple(scales if np.ndim(scales) else (scales,))
    if not all(isinstance(q, (int, np.integer)) and not isinstance(q, bool) for q in scales):
        raise ValueError(f"test scales must be whole numbers of pixels, got {scales}")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    scales = tuple(int(q) for q in scales)
    if not scales or min(scales) < crop:
        raise ValueError(f"test scales {scales} must all be at least the crop size {crop} (Q >= crop)")
    images = [_as_rgb_array(image, i) for i, image in enumerate(images)]
    if method == "multi-crop+dense":
        return 0.5 * (posteriors(model, images, "multi-crop", scales, flip, crop, batch_size, progress)
                      + posteriors(model, images, "dense", scales, flip, crop, batch_size, progress))
    was_training = model.training
    model.eval()
    net = model.to_fully_convolutional().eval() if method == "dense" else model
    total = np.zeros((len(images), model.num_classes))
    flips = (False, True) if flip else (False,)
    try:
        for q in tqdm(scales, disable=not progress, desc=f"{method} evaluation", unit="scale"):
            rescaled = [rescale_smallest_side(image, q) for image in images]
            if method == "dense":  # few distinct shapes (dense_shapes.py), each one's flips back to back
                rescaled = [crop_to_bucket(image, shape_step(crop)) for image in rescaled]
                with weights_frozen():
                    for group, flipped in ((group, flipped) for group in _by_size(rescaled) for flipped in flips):
                        views = [rescaled[i][:, ::-1] if flipped else rescaled[i] for i in group]
                        total[group] += _run_batched(net, model.preprocessing, views, batch_size, average_map=True)
                continue
            for flipped in flips:
                views = [image[:, ::-1] for image in rescaled] if flipped else rescaled
                if method == "single-crop":
                    crops = [np.ascontiguousarray(center_crop(view, crop)) for view in views]
                    total += _run_batched(net, model.preprocessing, crops, batch_size, average_map=False)
                else:  # multi-crop: 25 crops per image and flip, averaged
                    for i, view in enumerate(views):
                        crops = [np.ascontiguousarray(view[top:top + crop, left:left + crop])
                                 for top, left in multi_crop_offsets(view.shape[0], view.shape[1], crop)]
                        total[i] += _run_batched(net, model.preprocessing, crops, batch_size,
                                                 average_map=False).mean(axis=0)
    finally:
        model.train(was_training)
    return total / (len(scales) * len(flips))


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
    from .checkpoint import atomic_write

    arrays = {"posteriors": np.asarray(posteriors_array, dtype=np.float64),
              "metadata": np.array(json.dumps(metadata or {}))}
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


def _imagenet_class_index():
    """Every way the ILSVRC-2012 classes are named (wnid, WordNet lemmas, first lemma) -> the class index."""
    from .class_names import imagenet_classes

    index = {}
    for entry in imagenet_classes():
        for name in (entry.wnid, entry.name, entry.name.split(",")[0]):
            index.setdefault(name, entry.index)
    return index


def check_class_names(model_names, data_names, source="the weights"):
    """ValueError unless output ``i`` of the weights is the data's class ``i`` for every ``i``.

    ``model_names`` are the names the weight file records (None: it records none, nothing to compare);
    ``data_names`` the dataset's classes (its folder names). An ILSVRC-2012 class matches under any of
    its names, so published weights ("tench", ...) match an ImageNet folder (``n01440764``, ...).
    """
    if model_names is None:
        return
    model_names, data_names = [str(n) for n in model_names], [str(n) for n in data_names]
    if len(model_names) != len(data_names):
        raise ValueError(f"{source} predict {len(model_names)} classes but the data has {len(data_names)}: "
                         f"weights for another dataset?")
    imagenet = None
    differing = []
    for i, (ours, theirs) in enumerate(zip(model_names, data_names)):
        if ours == theirs:
            continue
        imagenet = imagenet if imagenet is not None else _imagenet_class_index()
        if ours in imagenet and imagenet.get(ours) == imagenet.get(theirs):
            continue
        differing.append(i)
    if differing:
        i = differing[0]
        order = " (the same classes in another order)" if sorted(model_names) == sorted(data_names) else ""
        raise ValueError(f"{source} name other classes than the data{order}: output {i} is {model_names[i]!r} but "
                         f"the data's class {i} is {data_names[i]!r} ({len(differing)} of {len(data_names)} "
                         f"differ)")


def load_posteriors(path):
    """``(posteriors, labels or None, metadata dict)`` from ``save_posteriors``' file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            labels = data["labels"] if "labels" in data.files else None
            return data["posteriors"], labels, json.loads(str(data["metadata"]))
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path} is not a readable posteriors file: {error}") from error


def error_table(rows):
    """Compute each row's errors: ``rows`` are dicts with ``posteriors``, ``labels`` and the descriptive
    columns (``configuration``, ``train_S``, ``test_Q``, ``method``); returns the rows with ``top1_error``
    and ``top5_error`` (in %) and without the arrays."""
    table = []
    for row in rows:
        probabilities, labels = row["posteriors"], np.asarray(row["labels"])
        if probabilities.shape[0] != labels.shape[0]:
            raise ValueError(f"{probabilities.shape[0]} posteriors but {labels.shape[0]} labels")
        if labels.max(initial=-1) >= probabilities.shape[1]:
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
