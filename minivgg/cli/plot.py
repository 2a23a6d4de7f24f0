"""``minivgg plot RUN_DIR``: training curves (loss, top-1/top-5 error, learning rate) as a PNG."""


def register(subparsers):
    parser = subparsers.add_parser("plot", help="draw a training run's curves into a PNG")
    parser.add_argument("run_dir", help="the folder a `minivgg train` run wrote")
    parser.add_argument("--output", help="PNG path (default RUN_DIR/curves.png)")
    parser.set_defaults(func=run)


def run(args):
    from ..training.curves import plot_training_curves
    print(plot_training_curves(args.run_dir, args.output))
