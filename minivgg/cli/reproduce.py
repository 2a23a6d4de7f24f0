"""``minivgg reproduce``: the paper's findings in miniature, trained, evaluated and reported in one command.

    minivgg reproduce                      # the default run (about 90 minutes on two CPU cores): runs/reproduction
    minivgg reproduce --quick              # the pipeline end to end in a couple of minutes; shows nothing
    minivgg reproduce --seeds 5 --run-dir R   # more seeds; the same folder continues (and adds seeds)

Ctrl-C stops it (a training step first finishes its SGD step and writes a checkpoint); running the same
command again continues where it stopped: finished steps are not redone. The report (Markdown and figures) is
written to ``RUN/report/`` and printed.
"""
import os

from .options import positive_int

DEFAULT_RUN_DIRS = {False: os.path.join("runs", "reproduction"), True: os.path.join("runs", "reproduction-quick")}


def register(subparsers):
    parser = subparsers.add_parser("reproduce", help="the paper's findings in miniature: train, evaluate, report "
                                   "(Tables 3-6, Appendices A and B)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny run that checks the pipeline and the report's structure, not the findings")
    parser.add_argument("--seeds", type=positive_int, default=None,
                        help="seeds per experiment (default 3; --quick: 2)")
    parser.add_argument("--run-dir", default=None,
                        help=f"the run folder (default {DEFAULT_RUN_DIRS[False]}, with --quick "
                        f"{DEFAULT_RUN_DIRS[True]}); the same folder continues an interrupted run")
    parser.add_argument("--data", default=None,
                        help="the classification data: fashion-mnist (the default), or a folder of the same kind of "
                        "IDX files (28x28 grey images in 10 classes)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args):
    from dataclasses import replace

    from ..reproduction import DEFAULT, QUICK, Interrupted, Reproduction, write_report

    miniature = QUICK if args.quick else DEFAULT
    if args.seeds is not None:
        miniature = miniature.with_seeds(args.seeds)
    if args.data is not None:
        miniature = replace(miniature, data=args.data)
    run_dir = args.run_dir if args.run_dir is not None else DEFAULT_RUN_DIRS[args.quick]
    reproduction = Reproduction(run_dir, miniature, progress=not args.quiet)
    command = "minivgg reproduce" + (" --quick" if args.quick else "") + \
        (f" --seeds {args.seeds}" if args.seeds is not None else "") + \
        (f" --data {args.data}" if args.data is not None else "")
    try:
        reproduction.run()
    except KeyboardInterrupt as interruption:
        # What is finished is reported (the claims over the seeds that have both sides); a second Ctrl-C while
        # the report is written stops at once.
        if reproduction.any_results():
            path, _ = write_report(run_dir, miniature, command=command)
            print(f"a report of the finished steps: {path}")
        if isinstance(interruption, Interrupted):
            raise
        raise Interrupted(f"interrupted; the finished steps are kept: run the same command again to continue "
                          f"(--run-dir {run_dir})") from None
    path, text = write_report(run_dir, miniature, command=command)
    print(text)
    print(f"report: {path}")
    return 0
