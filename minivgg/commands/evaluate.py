"""``minivgg evaluate``: top-1/top-5 error of one or more models (fused) with the paper's test methods.

    minivgg evaluate --weights D.safetensors E.safetensors --data ILSVRC2012 --method dense --scales paper

Without ``--data`` the models are evaluated on the embedded digits' test split.
"""
import json
import os

import numpy as np


def register(subparsers):
    from minivgg.evaluate import METHODS

    parser = subparsers.add_parser("evaluate", help="top-1/top-5 error with dense, multi-crop or single-crop "
                                   "evaluation over several scales; several --weights are fused")
    parser.add_argument("--weights", nargs="+", required=True, help="weight files; several are fused (Sect. 4.4)")
    parser.add_argument("--data", help="an ImageNet-style folder (its val/ split) or a folder of class "
                        "folders; default: the embedded digits' test split")
    parser.add_argument("--method", default="dense", choices=METHODS)
    parser.add_argument("--scales", default=None, help="test scales Q, e.g. 256,384,512; or 'paper' for Sect. "
                        "4.2's set from the training scale (default: one Q = 8/7 of the input size, 256 for 224)")
    parser.add_argument("--flip", dest="flip", action="store_true", default=None,
                        help="average over horizontal flips (default: as the weights were trained; else yes)")
    parser.add_argument("--no-flip", dest="flip", action="store_false")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=256, help="images decoded and evaluated at a time")
    parser.add_argument("--save-posteriors", metavar="DIR", help="write each model's posteriors (.npz) to fuse later")
    parser.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    parser.add_argument("--seed", type=int, default=0, help="the digits split's seed (as in training)")
    parser.set_defaults(func=run)


def _training_record(metadata):
    """(training scale S or (S_min, S_max) or None, whether training flipped images or None)."""
    training = json.loads(metadata.get("training", "{}"))
    scale = training.get("train_scale")
    return (tuple(scale) if isinstance(scale, list) else scale), training.get("flip")


def _scales(argument, model, train_scale):
    from minivgg.evaluate import paper_scales

    if argument is None:
        return (int(round(model.input_size * 8 / 7)),)
    if argument == "paper":
        if train_scale is None:
            raise ValueError("--scales paper needs the training scale, which these weights do not record; give "
                             "the scales explicitly, e.g. --scales 256,384,512")
        return paper_scales(train_scale)
    try:
        return tuple(int(q) for q in argument.split(","))
    except ValueError:
        raise ValueError(f"--scales must be integers separated by commas or 'paper', got {argument!r}") from None


def _dataset(args):
    from minivgg.data import ImageFolder, ImageNet, load_digits
    from minivgg.presets import DIGITS

    if args.data is None:
        return load_digits(image_size=DIGITS["image_size"], seed=args.seed)["test"]
    if os.path.isdir(os.path.join(args.data, "val")):
        return ImageNet(args.data, "val")
    return ImageFolder(args.data)


def run(args):
    from tqdm.auto import tqdm

    from minivgg import weights
    from minivgg.evaluate import error_table, format_table, fuse, posteriors, save_posteriors

    dataset = _dataset(args)
    labels = np.asarray(dataset.labels)
    rows, all_posteriors = [], []
    for path in args.weights:
        model = weights.load(path)
        _, metadata = weights.read_metadata(path)
        if model.num_classes != len(dataset.class_names):
            raise ValueError(f"{path} predicts {model.num_classes} classes but the data has "
                             f"{len(dataset.class_names)}: weights for another dataset?")
        train_scale, trained_with_flips = _training_record(metadata)
        scales = _scales(args.scales, model, train_scale)
        flip = args.flip if args.flip is not None else trained_with_flips is not False
        chunks = []
        for start in tqdm(range(0, len(dataset), args.chunk), desc=os.path.basename(path), unit="chunk"):
            images = [dataset.load(i, draft_smallest_side=min(scales))[0]
                      for i in range(start, min(len(dataset), start + args.chunk))]
            chunks.append(posteriors(model, images, args.method, scales, flip=flip,
                                     batch_size=args.batch_size))
        result = np.concatenate(chunks)
        all_posteriors.append(result)
        described = {"configuration": model.config,
                     "train_S": "-".join(map(str, train_scale)) if isinstance(train_scale, tuple) else str(train_scale or "?"),
                     "test_Q": ",".join(map(str, scales)), "method": args.method + ("" if flip else ", no flip")}
        rows.append(dict(described, posteriors=result, labels=labels))
        if args.save_posteriors:
            os.makedirs(args.save_posteriors, exist_ok=True)
            stem = os.path.splitext(os.path.basename(path))[0]
            save_posteriors(os.path.join(args.save_posteriors, f"{stem}.npz"), result, labels, dict(described, weights=path))
    if len(all_posteriors) > 1:
        rows.append({"configuration": "fusion: " + " & ".join(r["configuration"] for r in rows), "train_S": "",
                     "test_Q": "", "method": args.method, "posteriors": fuse(all_posteriors), "labels": labels})
    table = error_table(rows)
    print(format_table(table))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(table, handle, indent=1)
    return 0
