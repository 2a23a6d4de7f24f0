"""``minivgg predict IMAGE... --weights W``: the five most probable classes of each image, by name."""
import numpy as np

from minivgg.options import positive_int, positive_int_list


def register(subparsers):
    from minivgg.evaluate import METHODS

    parser = subparsers.add_parser("predict", help="top-5 classes of images, with names")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--method", default="dense", choices=METHODS, help="evaluation method (default: dense)")
    parser.add_argument("--scales", default=None, type=positive_int_list,
                        help="test scales Q, e.g. 256,384,512 (default 8/7 of the input size)")
    parser.add_argument("--top", type=positive_int, default=5, help="classes shown per image (at most all of them)")
    parser.set_defaults(func=run)


def run(args):
    from minivgg import weights
    from minivgg.data import decode_image
    from minivgg.evaluate import posteriors

    model = weights.load(args.weights)
    scales = tuple(args.scales) if args.scales is not None else (int(round(model.input_size * 8 / 7)),)
    names = model.class_names or [f"class {i}" for i in range(model.num_classes)]
    probabilities = posteriors(model, [decode_image(path) for path in args.images], args.method, scales)
    for path, row in zip(args.images, probabilities):
        print(path)
        for k in np.argsort(-row, kind="stable")[:min(args.top, len(row))]:
            print(f"  {row[k]:7.2%}  {names[k]}")
    return 0
