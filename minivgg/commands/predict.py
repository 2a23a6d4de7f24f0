"""``minivgg predict IMAGE... --weights W``: the five most probable classes of each image, by name."""


def register(subparsers):
    parser = subparsers.add_parser("predict", help="top-5 classes of images, with names")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--method", default="dense", help="dense (default), single-crop, multi-crop, multi-crop+dense")
    parser.add_argument("--scales", default=None, help="test scales Q, e.g. 256,384,512 (default 8/7 of the input size)")
    parser.add_argument("--top", type=int, default=5)
    parser.set_defaults(func=run)


def run(args):
    from minivgg import weights
    from minivgg.prediction import predict

    model = weights.load(args.weights)
    scales = (tuple(int(q) for q in args.scales.split(",")) if args.scales
              else (int(round(model.input_size * 8 / 7)),))
    for path, ranked in zip(args.images, predict(model, args.images, args.top, args.method, scales)):
        print(path)
        for prediction in ranked:
            print(f"  {prediction.probability:7.2%}  {prediction.name}")
    return 0
