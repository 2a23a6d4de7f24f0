"""``minivgg features IMAGE... --weights W --out F.npz``: Appendix B's image descriptors of images.

    minivgg features photos/*.jpg --weights D.safetensors --scales 256,384,512 --aggregation stack --out f.npz
    minivgg features --data FOLDER --weights D.safetensors E.safetensors --layer fc7 --out f.npz

The descriptors are the penultimate layer's (or ``--layer``'s) dense activations, globally average-pooled,
averaged with the flipped image's, combined over the scales, L2-normalised; several ``--weights`` are
stacked. They are cached (``--cache``, default ``~/.cache/minivgg/features``), so asking again is a read.
The ``.npz`` holds ``features`` (N, D) float32, ``files`` (N,) and, with ``--data``, ``labels`` and
``class_names``; it loads with ``numpy.load(path, allow_pickle=False)``. ``--out`` is checked before any image is
read: never an input, and an existing file is replaced only when minivgg wrote it (or with ``--overwrite``).
"""
import json
import os

import numpy as np

from .options import add_overwrite_option, batch_size, test_scales
from ..files import (MARK_KEY, MARK_VALUE, Output, atomic_write, check_output_folder, check_outputs,
                     require_regular_file)


def add_feature_options(parser):
    """The descriptor options ``features`` and ``transfer`` share."""
    from ..transfer import AGGREGATIONS, PENULTIMATE

    parser.add_argument("--weights", nargs="+", required=True,
                        help="weight files; several are stacked (Appendix B's Net-D & Net-E)")
    parser.add_argument("--layer", default=PENULTIMATE,
                        help=f"the named layer pooled (default {PENULTIMATE}, the penultimate; e.g. conv5_3)")
    parser.add_argument("--scales", type=test_scales, default=None,
                        help="smallest sides Q, e.g. 256,384,512 (default: the paper's for the dataset)")
    parser.add_argument("--aggregation", choices=AGGREGATIONS, default=None,
                        help="combine scales by stacking or averaging (default: the paper's for the dataset)")
    parser.add_argument("--flip", dest="flip", action="store_true", default=None,
                        help="average with the flipped image (default: yes, unless the weights were trained "
                        "without flips)")
    parser.add_argument("--no-flip", dest="flip", action="store_false")
    parser.add_argument("--cache", default=None, metavar="DIR",
                        help="feature cache folder (default ~/.cache/minivgg/features)")
    parser.add_argument("--no-cache", action="store_true", help="compute every descriptor, store none")
    parser.add_argument("--batch-size", type=batch_size, default=8, help="images per forward pass")


def register(subparsers):
    parser = subparsers.add_parser("features", help="Appendix B's image descriptors (dense, multi-scale, "
                                   "L2-normalised) of images, cached, written to an .npz")
    parser.add_argument("images", nargs="*", help="image files")
    parser.add_argument("--data", help="a folder of class folders (its images and labels)")
    parser.add_argument("--out", required=True, help="the .npz file to write")
    add_feature_options(parser)
    add_overwrite_option(parser)
    parser.set_defaults(func=run)


def _flip_default(paths):
    """False when any of the weights records training without flips (the digits), else True."""
    from .. import weights

    records = (weights.read_metadata(path)[0]["training"] for path in paths)
    return not any(record is not None and record.flip is False for record in records)


def load_nets(args, default_scales, default_aggregation, data_folders=()):
    """``(models, net keys, FeatureSettings, FeatureCache or None)`` from the shared options; the cache folder
    may not lie inside ``data_folders`` (folders of class folders read: its subfolders would be classes)."""
    from .. import weights
    from ..transfer import FeatureCache, FeatureSettings, default_cache_folder, weights_fingerprint

    models = [weights.load(path) for path in args.weights]
    for path, model in zip(args.weights, models):
        if args.layer not in model.layer_names():
            raise ValueError(f"{path}: configuration {model.config} has no layer {args.layer!r}; its layers are "
                             f"{model.layer_names()}")
    scales = tuple(args.scales) if args.scales is not None else tuple(default_scales)
    input_size = max(model.input_size for model in models)
    if args.layer.startswith("fc") and min(scales) < input_size:
        raise ValueError(f"--scales {','.join(map(str, scales))}: every Q must be at least the nets' input size "
                         f"{input_size}")
    flip = args.flip if args.flip is not None else _flip_default(args.weights)
    aggregation = args.aggregation if args.aggregation is not None else default_aggregation
    settings = FeatureSettings(args.layer, scales, aggregation, flip)
    cache = None
    if not args.no_cache:  # its subfolders among a data set's images would be classes: never inside the data

        folder = args.cache if args.cache is not None else default_cache_folder()
        check_output_folder(folder, "--cache", inputs=data_folders)
        cache = FeatureCache(folder)
    keys = [weights_fingerprint(path) for path in args.weights]
    return models, keys, settings, cache


def describe_net(path, model):
    """How a net is named in tables: ``VGG D (vgg16)``."""
    return f"VGG {model.config} ({os.path.splitext(os.path.basename(path))[0]})"


def run(args):
    from ..transfer import stacked_features

    if bool(args.images) == (args.data is not None):
        raise ValueError("give either image files or --data FOLDER (not both, not neither)")
    out = args.out if args.out.endswith(".npz") else args.out + ".npz"
    check_outputs([Output(out, "--out", "npz")], inputs=list(args.images) + list(args.weights) + [args.data],
                  overwrite=args.overwrite, data_folders=[args.data])
    labels, class_names = None, None
    if args.data is not None:
        from ..transfer.caltech import read_class_folders

        files, labels, class_names = read_class_folders(args.data)
    else:
        files = list(args.images)
        absent = [path for path in files if not os.path.exists(path)]
        if absent:
            raise FileNotFoundError(f"no such image files: {', '.join(absent[:5])}")
        for path in files:  # a named pipe would block the run at its turn
            require_regular_file(path, "image")
    models, keys, settings, cache = load_nets(args, (256, 384, 512), "stack", data_folders=[args.data])
    features, _ = stacked_features(models, files, settings, cache, keys, batch_size=args.batch_size,
                                   progress=True)
    arrays = {"features": features, "files": np.array([os.fspath(f) for f in files]),
              "settings": np.array(json.dumps(dict(settings.to_dict(), weights=list(args.weights)))),
              MARK_KEY: np.array(MARK_VALUE)}
    if labels is not None:
        arrays.update(labels=labels, class_names=np.array(class_names))

    def write(temporary):
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)

    atomic_write(out, write)
    hits = f"; cache: {cache.hits} read, {cache.misses} computed" if cache is not None else ""
    print(f"{len(files)} images -> {features.shape[1]}-D descriptors in {out}{hits}")
    return 0
