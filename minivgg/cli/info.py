"""``minivgg info CONFIG``: the layer table of a configuration (or of a weight file), computed without
allocating any weights: output shape, parameters, multiply-adds and receptive field of every layer."""
import os

from .. import limits
from .options import at_most, class_count, fc_width, positive_int, width_multiplier
from ..errors import UsageError
from ..files import require_regular_file
from ..models import canonical_config, layer_specs
from ..summary import format_summary, summarise
from ..text import shown
from ..weights.weight_file import read_metadata


def register(subparsers):
    parser = subparsers.add_parser("info", help="layer table of a VGG configuration or weight file",
                                   description=__doc__.replace("``", ""))
    parser.add_argument("config", metavar="CONFIG",
                        help="a configuration (A, A-LRN, B, C, D, E, B-shallow) or a .safetensors weight file")
    parser.add_argument("--input-size", default=None,
                        type=at_most(positive_int, limits.MAX_SCALE, "the largest input minivgg describes"),
                        help="input side (default 224, or the file's)")
    parser.add_argument("--width-multiplier", type=width_multiplier, default=None,
                        help="conv channel multiplier (default 1; a weight file records its own)")
    parser.add_argument("--fc-width", type=fc_width, default=None,
                        help="hidden FC width (default 4096; a weight file records its own)")
    parser.add_argument("--num-classes", type=class_count, default=None,
                        help="outputs (default 1000; a weight file records its own)")
    parser.set_defaults(func=run)


def run(args):

    chosen = {key: value for key, value in [("width_multiplier", args.width_multiplier), ("fc_width", args.fc_width),
                                             ("num_classes", args.num_classes)] if value is not None}
    if args.config.endswith(".safetensors") or os.sep in args.config:

        require_regular_file(args.config, "weight file")  # a named pipe would block the read
    if os.path.isfile(args.config):

        if chosen:
            options = ", ".join("--" + key.replace("_", "-") for key in chosen)
            raise UsageError(f"{options}: for a configuration given by name; the weight file {args.config} records "
                             f"its own architecture")
        record, metadata = read_metadata(args.config)
        architecture = dict(record["architecture"])
        size = args.input_size if args.input_size is not None else architecture["input_size"]
        # Everything below is the file's text: shown with its control characters escaped (``minivgg.text``).
        print(f"{shown(args.config)}: configuration {architecture['config']}, expects {record['preprocessing']}")
        if record["class_names"]:
            print(f"classes: {len(record['class_names'])} ({', '.join(map(shown, record['class_names'][:3]))}, ...)")
        for key, value in metadata.items():
            print(f"{shown(key)}: {shown(value)}")
    else:
        architecture = dict(num_classes=1000, width_multiplier=1.0, fc_width=4096, config=args.config,
                            input_size=args.input_size if args.input_size is not None else 224)
        architecture.update(chosen)
        size = architecture["input_size"]
    specs = layer_specs(**architecture)
    title = f"VGG configuration {canonical_config(architecture['config'])} at {size}x{size}"
    print(format_summary(summarise(specs, size), title))
    return 0
