"""``minivgg predict IMAGE... --weights W``: the five most probable classes of each image, by name."""

from .options import positive_int, test_scales
from ..text import shown


def register(subparsers):
    from ..evaluation.posteriors import METHODS

    parser = subparsers.add_parser("predict", help="top-5 classes of images, with names")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--weights", required=True, help="a minivgg weight file (minivgg convert, minivgg download)")
    parser.add_argument("--method", default="dense", choices=METHODS, help="evaluation method (default: dense)")
    parser.add_argument("--scales", default=None, type=test_scales,
                        help="test scales Q, e.g. 256,384,512 (default 8/7 of the input size)")
    parser.add_argument("--top", type=positive_int, default=5,
                        help="classes shown per image (default 5); more than the model has shows all of them")
    parser.set_defaults(func=run)


def run(args):
    from .. import weights
    from ..evaluation.prediction import predict

    model = weights.load(args.weights)
    scales = tuple(args.scales) if args.scales is not None else None  # None: prediction.default_scales
    top = min(args.top, model.num_classes)  # documented: --top larger than the class count shows every class
    for path, ranked in zip(args.images, predict(model, args.images, top, args.method, scales)):
        print(shown(path))
        for prediction in ranked:  # a class name is the weight file's text: its control characters are escaped
            print(f"  {prediction.probability:7.2%}  {shown(prediction.name)}")
    return 0
