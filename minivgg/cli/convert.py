"""``minivgg convert SRC DST``: import published VGG weights (a torchvision .pth or the authors' Caffe
.caffemodel) into a minivgg weight file that records the preprocessing the weights expect.

No PyTorch or Caffe is needed, and nothing in the source file is executed. DST is never SRC, and an existing
DST is replaced only when it is a minivgg weight file (or with --overwrite)."""
from .options import add_overwrite_option
from ..files import Output, check_outputs


def register(subparsers):
    parser = subparsers.add_parser("convert", help="import torchvision .pth or Caffe .caffemodel VGG weights",
                                   description=__doc__.replace("``", ""))
    parser.add_argument("source", metavar="SRC", help="vgg11/13/16/19 .pth (torchvision) or VGG_ILSVRC_*.caffemodel")
    parser.add_argument("destination", metavar="DST", help="the .safetensors file to write")
    parser.add_argument("--config", default=None, help="configuration, when the weights leave a choice (A-LRN)")
    parser.add_argument("--format", dest="source_format", choices=["torchvision", "caffe"], default=None,
                        help="source format (default: detected from the file)")
    add_overwrite_option(parser)
    parser.set_defaults(func=run)


def run(args):
    from ..weights.convert import convert

    check_outputs([Output(args.destination, "DST", "weights")], inputs=[args.source], overwrite=args.overwrite)
    model = convert(args.source, args.destination, config=args.config, source_format=args.source_format)
    print(f"{args.source} -> {args.destination}: configuration {model.config}, {model.num_parameters():,} "
          f"parameters, {model.num_classes} classes, input {model.input_size}x{model.input_size}")
    print(f"the weights expect: {model.preprocessing} (recorded in the file)")
    return 0
