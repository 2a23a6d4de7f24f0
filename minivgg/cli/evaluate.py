"""``minivgg evaluate``: top-1/top-5 error of one or more models (fused) with the paper's test methods.

    minivgg evaluate --weights D.safetensors E.safetensors --data ILSVRC2012 --method dense --scales paper

Without ``--data`` the models are evaluated on the embedded digits' test split. Weights whose recorded class
names are not the data's classes (other names, or another order) are refused unless ``--ignore-class-names``.
``--save-posteriors DIR`` writes one file per weight file, named so that no two collide, and never
replaces a file that is there already.
"""
import os

import numpy as np

from .options import nonnegative_int, positive_int, positive_int_list_or


def register(subparsers):
    from ..evaluation.posteriors import METHODS

    parser = subparsers.add_parser("evaluate", help="top-1/top-5 error with dense, multi-crop or single-crop "
                                   "evaluation over several scales; several --weights are fused")
    parser.add_argument("--weights", nargs="+", required=True, help="weight files; several are fused (Sect. 4.4)")
    parser.add_argument("--data", help="an ImageNet-style folder (its val/ split), a folder of class folders, or "
                        "fashion-mnist, cifar10 or a folder of their files (the test set); default: the embedded "
                        "digits' test split")
    parser.add_argument("--method", default="dense", choices=METHODS)
    parser.add_argument("--scales", default=None, type=positive_int_list_or("paper"),
                        help="test scales Q, e.g. 256,384,512; or 'paper' for Sect. 4.2's set from the training "
                        "scale (default: Sect. 4.1's one Q from the weights' training record: S for a fixed S, "
                        "(S_min + S_max) / 2 for a jittered one; 8/7 of the input size if none is recorded)")
    parser.add_argument("--flip", dest="flip", action="store_true", default=None,
                        help="average over horizontal flips (default: as the weights were trained; else yes)")
    parser.add_argument("--no-flip", dest="flip", action="store_false")
    parser.add_argument("--shape-buckets", action="store_true",
                        help="dense: crop each rescaled image's long side to Q plus a multiple of the net's stride "
                        "(at most 31 px at 224), so a GPU builds graphs for a few shapes, not one set per image size")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="images or crops per forward pass")
    parser.add_argument("--chunk", type=positive_int, default=256, help="images decoded and evaluated at a time")
    parser.add_argument("--save-posteriors", metavar="DIR", help="write each model's posteriors (.npz) to fuse "
                        "later; refused if a file of that name is there already")
    parser.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="the digits split's seed (as in training)")
    parser.add_argument("--ignore-class-names", action="store_true",
                        help="evaluate even if the weights name other classes than the data's folders")
    parser.set_defaults(func=run)


def _scales(argument, model):
    """The test scales: those given, Sect. 4.2's three around the recorded training scale for ``paper``, or the
    default (``evaluation.scales.default_test_scales``: Sect. 4.1's Q for the recorded S)."""
    from ..evaluation.scales import default_test_scales, paper_scales

    if argument is None:
        return default_test_scales(model)
    if argument == "paper":
        record = model.training_record
        if record is None or record.train_scale is None:
            raise ValueError("--scales paper needs the training scale, which these weights do not record; give "
                             "the scales explicitly, e.g. --scales 256,384,512")
        return paper_scales(record.train_scale, model.input_size)
    return tuple(argument)  # checked by its argparse type


def _dataset(args):
    from ..data import ImageFolder, ImageNet, load_digits
    from ..data.catalogue import is_array_data, load_splits
    from ..training.recipes import DIGITS

    if args.data is None:
        return load_digits(image_size=DIGITS["image_size"], seed=args.seed)["test"]
    if is_array_data(args.data):  # Fashion-MNIST, CIFAR-10 or a folder of their files: the published test set
        return load_splits(args.data)["test"]
    if os.path.isdir(os.path.join(args.data, "val")):
        return ImageNet(args.data, "val")
    return ImageFolder(args.data)


def _posterior_paths(args):
    """Where each model's posteriors go; checked before anything is evaluated, so an hour of evaluation is
    never lost to a name that is taken, and no earlier file is ever replaced."""
    from ..evaluation.posteriors import posterior_file_names

    if args.save_posteriors is None:
        return [None] * len(args.weights)
    folder = args.save_posteriors
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"--save-posteriors {folder} is a file, not a folder")
    paths = [os.path.join(folder, name) for name in posterior_file_names(args.weights)]
    taken = [path for path in paths if os.path.exists(path)]
    if taken:
        exist = "exists" if len(taken) == 1 else "exist"
        raise ValueError(f"--save-posteriors: {', '.join(taken)} {exist} already (an earlier evaluation?); nothing "
                         f"was evaluated or replaced: move it away or choose another folder")
    return paths


def run(args):
    from minivgg.progress import progress_bar

    from .. import weights
    from ..class_names import check_class_names
    from ..evaluation.posteriors import error_table, format_table, fuse, posteriors, save_posteriors

    # Everything that can be checked is checked before the first image is decoded: the files' headers, the
    # posterior files' names, and that the weights' classes are the data's.
    records = [weights.read_metadata(path)[0] for path in args.weights]
    posterior_paths = _posterior_paths(args)
    dataset = _dataset(args)
    labels = np.asarray(dataset.labels)
    for path, record in zip(args.weights, records):
        num_classes = record["architecture"].get("num_classes")
        if num_classes != len(dataset.class_names):
            raise ValueError(f"{path} predicts {num_classes} classes but the data has "
                             f"{len(dataset.class_names)}: weights for another dataset?")
        if not args.ignore_class_names:
            try:
                check_class_names(record["class_names"], dataset.class_names, source=path)
            except ValueError as error:
                raise ValueError(f"{error}; pass --ignore-class-names to evaluate anyway") from None
    rows, all_posteriors = [], []
    for path, posterior_path in zip(args.weights, posterior_paths):
        model = weights.load(path)
        record = model.training_record
        train_scale = None if record is None else record.train_scale
        scales = _scales(args.scales, model)
        # Flipped at test time unless the weights were trained without flips (the digits are not symmetric).
        flip = args.flip if args.flip is not None else (record is None or record.flip is not False)
        chunks = []
        for start in progress_bar(range(0, len(dataset), args.chunk), desc=os.path.basename(path), unit="chunk"):
            # JPEGs are decoded at a draft size no smaller than the largest Q: every scale is a reduction.
            images = [dataset.load(i, draft_smallest_side=max(scales))[0]
                      for i in range(start, min(len(dataset), start + args.chunk))]
            chunks.append(posteriors(model, images, args.method, scales, flip=flip,
                                     batch_size=args.batch_size, shape_buckets=args.shape_buckets))
        result = np.concatenate(chunks)
        all_posteriors.append(result)
        described = {"configuration": model.config,
                     "train_S": ("-".join(map(str, train_scale)) if isinstance(train_scale, tuple)
                                 else str(train_scale or "?")),
                     "test_Q": ",".join(map(str, scales)), "method": args.method + ("" if flip else ", no flip")}
        rows.append(dict(described, posteriors=result, labels=labels))
        if posterior_path is not None:
            os.makedirs(args.save_posteriors, exist_ok=True)
            save_posteriors(posterior_path, result, labels, dict(described, weights=path))
            print(f"posteriors of {path} written to {posterior_path}")
    if len(all_posteriors) > 1:
        rows.append({"configuration": "fusion: " + " & ".join(r["configuration"] for r in rows), "train_S": "",
                     "test_Q": "", "method": args.method, "posteriors": fuse(all_posteriors), "labels": labels})
    table = error_table(rows)
    print(format_table(table))
    if args.json is not None:
        from ..files import write_json

        write_json(args.json, table)
    return 0
