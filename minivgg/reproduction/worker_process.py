"""A worker process of ``minivgg reproduce --jobs N`` (``workers.py`` starts and feeds it): it runs the steps it is
given, one at a time, and answers each with its results or the error that stopped it.

    python -m minivgg.reproduction.worker_process RUN_DIR --seeds N --answers FD [--slot K] [--progress] [--backend NAME]
"""
import argparse
import json
import os
import signal
import sys
import time
import traceback

from ..errors import MinivggError

_USER_ERRORS = (MinivggError, ValueError, OSError, ImportError, MemoryError)


def _stop_requested(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minivgg.reproduction.worker_process")
    parser.add_argument("run_dir")
    parser.add_argument("--seeds", type=int, required=True)
    parser.add_argument("--slot", type=int, default=0)
    parser.add_argument("--answers", type=int, required=True, help="the file descriptor the answers go to")
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    # SIGUSR1 is the parent's Ctrl-C: a training step takes it over (it finishes its SGD step and writes its
    # checkpoint); anywhere else it stops the step at once (an evaluation is redone, its files written at its end).
    signal.signal(signal.SIGUSR1, _stop_requested)
    answers = os.fdopen(args.answers, "w")
    from ..backend import set_backend
    from .runner import Reproduction, read_miniature, steps

    set_backend(args.backend)
    reproduction = Reproduction(args.run_dir, read_miniature(args.run_dir, args.seeds), progress=args.progress,
                                out=sys.stderr)
    by_name = {step.name: step for step in steps(reproduction.miniature)}
    for line in sys.stdin:
        task = json.loads(line)
        seed, step = task["seed"], by_name[task["step"]]
        cpu = time.process_time()
        try:
            with reproduction.step_bar(seed, step, position=args.slot) as bar:
                results = reproduction.run_step(seed, step, bar)
            answer = {"results": results, "cpu_seconds": time.process_time() - cpu}
        except KeyboardInterrupt as interruption:
            answer = {"interrupted": True, "message": str(interruption) or f"interrupted during seed {seed} "
                      f"{step.name}: run the same command again to continue"}
        except _USER_ERRORS as error:
            answer = {"message": str(error) or type(error).__name__, "user_error": True}
        except Exception as error:  # a bug: the parent shows its traceback
            answer = {"message": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
        if "results" not in answer:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
