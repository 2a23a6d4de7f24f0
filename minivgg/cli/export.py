"""``minivgg export WEIGHTS OUTPUT``: write a minivgg weight file as an ONNX model, for onnxruntime and the
other ONNX runtimes. The input is the preprocessed image batch, the output the class scores; the file's
metadata records the preprocessing and the class names.

With --dense, the fully convolutional net of Sect. 3.2 instead: images of any height and width (at least the
training size), outputs the class score map and its spatial average. OUTPUT is never WEIGHTS, and an existing
OUTPUT is replaced only when minivgg exported it (or with --overwrite)."""


def register(subparsers):
    from ..weights.onnx_export import DEFAULT_OPSET, SUPPORTED_OPSETS
    from .options import add_overwrite_option, choice_of

    parser = subparsers.add_parser("export", help="write a weight file as an ONNX model (needs the onnx package)",
                                   description=__doc__.replace("``", ""))
    parser.add_argument("weights", metavar="WEIGHTS", help="a minivgg .safetensors weight file")
    parser.add_argument("output", metavar="OUTPUT", help="the .onnx file to write")
    parser.add_argument("--dense", action="store_true",
                        help="the fully convolutional net (Sect. 3.2): dynamic height and width, score map output")
    parser.add_argument("--opset", type=choice_of(*map(str, SUPPORTED_OPSETS)), default=None,
                        help=f"ONNX opset, {SUPPORTED_OPSETS[0]}-{SUPPORTED_OPSETS[-1]} (default {DEFAULT_OPSET})")
    add_overwrite_option(parser)
    parser.set_defaults(func=run)


def run(args):
    from ..files import Output, check_outputs
    from ..weights.onnx_export import DEFAULT_OPSET, SCORE_MAP, SCORES, export
    from ..weights.weight_file import load

    check_outputs([Output(args.output, "OUTPUT", "onnx")], inputs=[args.weights], overwrite=args.overwrite)
    model = load(args.weights).eval()
    opset = int(args.opset) if args.opset is not None else DEFAULT_OPSET
    export(model, args.output, dense=args.dense, opset=opset)
    side = "H, W" if args.dense else f"{model.input_size}, {model.input_size}"
    outputs = f"{SCORES} (N, {model.num_classes})"
    if args.dense:
        outputs += f" and {SCORE_MAP} (N, {model.num_classes}, h, w)"
    batch_norm = " with batch norm" if model.batch_norm else ""
    print(f"{args.weights} -> {args.output}: configuration {model.config}{batch_norm}, opset {opset}, "
          f"input images (N, 3, {side}) float32, output {outputs}")
    names = f"{len(model.class_names)} class names" if model.class_names else "no class names"
    print(f"metadata: preprocessing {model.preprocessing}, {names}")
    return 0
