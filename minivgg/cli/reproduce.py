"""``minivgg reproduce``: the paper's findings in miniature, trained, evaluated and reported in one command.

    minivgg reproduce                      # the default run (84 min on two cores): runs/reproduction
    minivgg reproduce --jobs 1             # every step in this process, one after another (the same results)
    minivgg reproduce --quick              # the pipeline end to end in a couple of minutes; shows nothing
    minivgg reproduce --seeds 5 --run-dir R   # more seeds; the same folder continues (and adds seeds)

    minivgg reproduce --report-only --run-dir R --report-dir docs/reproduction
                                           # the report of the run in R (finished or not), nothing run

The steps run in worker processes, one a CPU core and at most one a seed, each seed's steps in their order
(``minivgg.reproduction.workers``). Ctrl-C stops it (every training step first finishes its SGD step and writes
a checkpoint); running the same command again continues where it stopped: finished steps are not redone. The
report (Markdown and figures) is written to ``RUN/report/`` (or ``--report-dir``) and printed; a run with steps
still missing gives a report marked partial, which lists them.
"""
import os

from .options import at_most, positive_int

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
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: write the report of the run in --run-dir as far as it has got (its sizes "
                        "and seeds are read from the folder; --seeds counts fewer or more)")
    parser.add_argument("--report-dir", default=None,
                        help="where the report (README.md and figures/) is written (default RUN/report)")
    parser.add_argument("--jobs", type=at_most(positive_int, 1024, "worker processes"), default=None,
                        help="steps run at once, each in a worker process, the seeds side by side (default: one a CPU "
                        "core this process may use, at most one a seed, on the CPU backends; 1: everything in this "
                        "process)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args):
    from dataclasses import replace

    from ..errors import UsageError
    from ..reproduction import DEFAULT, QUICK, Interrupted, Reproduction, write_report
    from ..reproduction.workers import default_jobs

    if args.report_dir is not None and os.path.lexists(args.report_dir) and not os.path.isdir(args.report_dir):
        # Checked before anything runs: a run of an hour must not end unable to write its report.
        raise UsageError(f"--report-dir {args.report_dir} is a file, not a folder: choose another --report-dir")
    if args.report_only:
        if args.jobs is not None:
            raise UsageError("--report-only runs nothing: leave out --jobs")
        return _report_only(args)
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
    jobs = args.jobs if args.jobs is not None else default_jobs(miniature.seeds)
    try:
        reproduction.run(jobs=jobs)
    except KeyboardInterrupt as interruption:
        # What is finished is reported (the claims over the seeds that have both sides); a second Ctrl-C while
        # the report is written stops at once.
        if reproduction.any_results():
            path, _ = write_report(run_dir, miniature, args.report_dir, command=command)
            print(f"a report of the finished steps: {path}")
        if isinstance(interruption, Interrupted):
            raise
        raise Interrupted(f"interrupted; the finished steps are kept: run the same command again to continue "
                          f"(--run-dir {run_dir})") from None
    path, text = write_report(run_dir, miniature, args.report_dir, command=command)
    print(text)
    print(f"report: {path}")
    return 0


def _report_only(args):
    """The report of the run in ``--run-dir``, its sizes read from the folder."""
    from ..errors import UsageError
    from ..reproduction import DEFAULT, QUICK, write_report
    from ..reproduction.runner import read_miniature

    if args.run_dir is None:
        raise UsageError("--report-only needs the --run-dir of the run to report")
    if args.quick or args.data is not None:
        raise UsageError("--report-only reads the sizes and the data from the run folder: leave out "
                         f"{'--quick' if args.quick else '--data'}")
    miniature = read_miniature(args.run_dir, args.seeds)
    preset = miniature.preset
    command = "minivgg reproduce" + (" --quick" if preset == "quick" else "") + \
        (f" --seeds {miniature.seeds}" if preset is None or miniature.seeds != (QUICK if preset == "quick"
                                                                                  else DEFAULT).seeds else "") + \
        ("" if preset is not None else " (sizes of their own: see the table)")
    path, text = write_report(args.run_dir, miniature, args.report_dir, command=command)
    print(text)
    print(f"report: {path}")
    return 0
