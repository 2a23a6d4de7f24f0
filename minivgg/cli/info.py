"""``minivgg info CONFIG``: the layer table of a configuration (or of a weight file), computed without
allocating any weights: output shape, parameters, multiply-adds and receptive field of every layer."""
import os

from .options import positive_float, positive_int


def register(subparsers):
    parser = subparsers.add_parser("info", help="layer table of a VGG configuration or weight file",
                                   description=__doc__.replace("``", ""))
    parser.add_argument("config", metavar="CONFIG",
                        help="a configuration (A, A-LRN, B, C, D, E, B-shallow) or a .safetensors weight file")
    parser.add_argument("--input-size", type=positive_int, default=None,
                        help="input side (default 224, or the file's)")
    parser.add_argument("--width-multiplier", type=positive_float, default=None,
                        help="conv channel multiplier (default 1; a weight file records its own)")
    parser.add_argument("--fc-width", type=positive_int, default=None,
                        help="hidden FC width (default 4096; a weight file records its own)")
    parser.add_argument("--num-classes", type=positive_int, default=None,
                        help="outputs (default 1000; a weight file records its own)")
    parser.set_defaults(func=run)


def run(args):
    from ..models import canonical_config, layer_specs
    from ..summary import format_summary, summarise

    chosen = {key: value for key, value in [("width_multiplier", args.width_multiplier), ("fc_width", args.fc_width),
                                             ("num_classes", args.num_classes)] if value is not None}
    if not os.path.isfile(args.config) and (args.config.endswith(".safetensors") or os.sep in args.config):
        raise FileNotFoundError(f"no weight file at {args.config}")
    if os.path.isfile(args.config):
        from ..errors import UsageError
        from ..weights.weight_file import read_metadata

        if chosen:
            options = ", ".join("--" + key.replace("_", "-") for key in chosen)
            raise UsageError(f"{options}: for a configuration given by name; the weight file {args.config} records "
                             f"its own architecture")
        record, metadata = read_metadata(args.config)
        architecture = dict(record["architecture"])
        size = args.input_size if args.input_size is not None else architecture["input_size"]
        print(f"{args.config}: configuration {architecture['config']}, expects {record['preprocessing']}")
        if record["class_names"]:
            print(f"classes: {len(record['class_names'])} ({', '.join(record['class_names'][:3])}, ...)")
        for key, value in metadata.items():
            print(f"{key}: {value}")
    else:
        architecture = dict(num_classes=1000, width_multiplier=1.0, fc_width=4096, config=args.config,
                            input_size=args.input_size if args.input_size is not None else 224)
        architecture.update(chosen)
        size = architecture["input_size"]
    specs = layer_specs(**architecture)
    title = f"VGG configuration {canonical_config(architecture['config'])} at {size}x{size}"
    print(format_summary(summarise(specs, size), title))
    return 0
