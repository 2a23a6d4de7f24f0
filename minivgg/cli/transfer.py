"""``minivgg transfer``: Appendix B's evaluation, printed as Table 11's columns (Table 12's for VOC action).

    minivgg transfer --dataset voc2007 --root VOCdevkit --weights vgg16.safetensors vgg19.safetensors
    minivgg transfer --dataset caltech101 --root caltech --weights vgg16.safetensors --splits 3
    minivgg transfer --dataset folder --root FOLDER --weights W --train-per-class 20
    minivgg transfer --dataset voc2012action --root VOCdevkit --weights vgg16.safetensors vgg19.safetensors

Each net's descriptors (cached) go to linear SVMs (C by cross-validation on the training images); with
several ``--weights`` a last row stacks them ("Net-D & Net-E"). VOC reports mean AP (2007: 11-point, 2012:
area, on "val" since the test labels are not public); Caltech and folders report mean class recall,
mean +- std over the seeded splits.
"""
import json

from .features import add_feature_options, describe_net, load_nets
from .options import add_overwrite_option, positive_float, positive_int, seed
from ..files import Output, check_outputs, marked, write_json

# Appendix B: "aggregated image descriptors over a wide range of scales Q in {256, 384, 512, 640, 768}" for
# VOC (averaged); "three scales Q in {256, 384, 512}" for Caltech (stacked).
PAPER_SCALES = {"voc2007": (256, 384, 512, 640, 768), "voc2012": (256, 384, 512, 640, 768),
                "caltech101": (256, 384, 512), "caltech256": (256, 384, 512), "folder": (256, 384, 512),
                "voc2012action": (256, 384, 512, 640, 768)}


def positive_float_list(text):
    """Comma-separated positive numbers, such as the C grid ``0.1,1,10``."""
    return [positive_float(part.strip()) for part in str(text).split(",")]


def register(subparsers):
    from ..transfer import DATASETS

    parser = subparsers.add_parser("transfer", help="very deep features + linear SVMs on VOC, Caltech or a "
                                   "folder (Appendix B, Table 11)")
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--root", required=True, help="the dataset's folder")
    add_feature_options(parser)
    parser.add_argument("--splits", type=positive_int, default=3, help="random splits (Caltech, folder; default 3)")
    parser.add_argument("--train-per-class", type=positive_int, default=None,
                        help="training images per class (Caltech-101: 30, Caltech-256: 60; required for a "
                        "folder without train/ and test/)")
    parser.add_argument("--test-per-class", type=positive_int, default=None,
                        help="at most this many test images per class (Caltech-101: 50; default all the rest)")
    parser.add_argument("--seed", type=seed, default=0, help="the splits' and folds' seed")
    parser.add_argument("--folds", type=positive_int, default=5, help="cross-validation folds for C (default 5)")
    parser.add_argument("--C", dest="C_grid", type=positive_float_list, default=None,
                        help="SVM penalties tried, e.g. 0.01,0.1,1,10,100 (the default)")
    parser.add_argument("--train-split", default=None, help="VOC training split (default trainval / train)")
    parser.add_argument("--test-split", default=None, help="VOC test split (default test / val)")
    parser.add_argument("--no-boxes", action="store_true",
                        help="voc2012action: the whole image only (Table 12's 'image-only'), not image and box")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    add_overwrite_option(parser)
    parser.set_defaults(func=run)


def _class_folders(args):
    """The folder whose subfolders the data set reads as classes (a folder data set, Caltech's categories); none
    for VOC, whose images are listed by name."""
    from ..transfer.caltech import CALTECH_FOLDERS, find_category_folder

    if args.dataset == "folder":
        return [args.root]
    if args.dataset in CALTECH_FOLDERS:
        return [find_category_folder(args.root, args.dataset)]
    return []


def run(args):
    from ..transfer import C_GRID, format_table, protocol, score, stack
    from ..transfer.features import features_of
    from ..transfer.protocols import PAPER_AGGREGATION, TABLE_12_COLUMN

    check_outputs([Output(args.json, "--json", "json")], inputs=[args.root] + list(args.weights),
                  overwrite=args.overwrite, data_folders=[args.root])
    task = protocol(args.dataset, args.root, args.train_per_class, args.test_per_class, args.splits, args.seed,
                    args.train_split, args.test_split, boxes=not args.no_boxes)
    models, keys, settings, cache = load_nets(args, PAPER_SCALES[args.dataset], PAPER_AGGREGATION[args.dataset],
                                              data_folders=_class_folders(args))
    C_grid = tuple(args.C_grid) if args.C_grid is not None else C_GRID
    descriptors, rows, results = [], [], []
    for path, model, key in zip(args.weights, models, keys):
        features = features_of(model, task.sources, settings, cache, key, boxes=task.boxes,
                               batch_size=args.batch_size, progress=True, description=describe_net(path, model))
        descriptors.append(features)
        result = score(task, features, C_grid, args.folds, args.seed)
        rows.append((describe_net(path, model), {task.column: result}))
        results.append(dict(result, method=rows[-1][0], weights=path))
    if len(models) > 1:
        result = score(task, stack(descriptors), C_grid, args.folds, args.seed)
        name = "VGG " + " & ".join(f"Net-{model.config}" for model in models) + " (stacked)"
        rows.append((name, {task.column: result}))
        results.append(dict(result, method=name, weights=list(args.weights)))
    print(f"{task.dataset}: {'; '.join(task.notes)}; layer {settings.layer}, Q = "
          f"{','.join(map(str, settings.scales))} ({settings.aggregation}{', flipped' if settings.flip else ''})")
    print(format_table(rows, [TABLE_12_COLUMN] if task.dataset == "voc2012action" else None))
    if cache is not None:
        print(f"feature cache {cache.folder}: {cache.hits} descriptors read, {cache.misses} computed")
    if args.json is not None:

        write_json(args.json, marked({"dataset": task.dataset, "settings": settings.to_dict(),
                               "class_names": list(task.class_names), "results": results}))
    return 0
