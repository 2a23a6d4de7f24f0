"""``minivgg plot RUN_DIR``: training curves (loss, top-1/top-5 error, learning rate) as a PNG.

The PNG (default ``RUN_DIR/curves.png``) is checked before anything is drawn: an existing file is replaced only
when minivgg drew it (or with ``--overwrite``)."""
import os

from .options import add_overwrite_option
from ..files import Output, check_outputs


def register(subparsers):
    parser = subparsers.add_parser("plot", help="draw a training run's curves into a PNG")
    parser.add_argument("run_dir", help="the folder a `minivgg train` run wrote")
    parser.add_argument("--output", help="PNG path (default RUN_DIR/curves.png)")
    add_overwrite_option(parser)
    parser.set_defaults(func=run)


def run(args):
    from ..training.curves import plot_training_curves, read_log

    read_log(args.run_dir)  # a folder without a log is named as such, before its output is checked
    output = args.output if args.output is not None else os.path.join(args.run_dir, "curves.png")
    check_outputs([Output(output, "--output", "png")], inputs=[os.path.join(args.run_dir, "log.jsonl")],
                  overwrite=args.overwrite)
    print(plot_training_curves(args.run_dir, output))
