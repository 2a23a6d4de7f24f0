"""``minivgg info CONFIG``: the layer table of a configuration (or of a weight file), computed without
allocating any weights: output shape, parameters, multiply-adds and receptive field of every layer."""
import os


def register(subparsers):
    parser = subparsers.add_parser("info", help="layer table of a VGG configuration or weight file",
                                   description=__doc__.replace("``", ""))
    parser.add_argument("config", metavar="CONFIG",
                        help="a configuration (A, A-LRN, B, C, D, E, B-shallow) or a .safetensors weight file")
    parser.add_argument("--input-size", type=int, default=None, help="input side (default 224, or the file's)")
    parser.add_argument("--width-multiplier", type=float, default=1.0, help="conv channel multiplier (default 1)")
    parser.add_argument("--fc-width", type=int, default=4096, help="hidden FC width (default 4096)")
    parser.add_argument("--num-classes", type=int, default=1000, help="outputs (default 1000)")
    parser.set_defaults(func=run)


def run(args):
    from minivgg.models import canonical_config, layer_specs
    from minivgg.summary import format_summary, summarise

    if os.path.isfile(args.config):
        from minivgg.weights import read_metadata

        record, metadata = read_metadata(args.config)
        architecture = dict(record["architecture"])
        size = args.input_size or architecture["input_size"]
        print(f"{args.config}: configuration {architecture['config']}, expects {record['preprocessing']}")
        if record["class_names"]:
            print(f"classes: {len(record['class_names'])} ({', '.join(record['class_names'][:3])}, ...)")
        for key, value in metadata.items():
            print(f"{key}: {value}")
    else:
        architecture = dict(config=args.config, num_classes=args.num_classes, input_size=args.input_size or 224,
                            width_multiplier=args.width_multiplier, fc_width=args.fc_width)
        size = architecture["input_size"]
    specs = layer_specs(**architecture)
    title = f"VGG configuration {canonical_config(architecture['config'])} at {size}x{size}"
    print(format_summary(summarise(specs, size), title))
    return 0
