"""The ``minivgg`` command line: one subcommand per module of ``minivgg/cli/``, listed in ``COMMANDS``.

Each command module exports ``register(subparsers)``, which adds its parser and sets ``func`` to the function
that runs it with the parsed arguments; it parses and calls the library, nothing more. Adding a command is
adding a file and its name here.

What a user sees when something goes wrong is decided here, once for every command:

- a bad option value: argparse's message naming the option (the ``type=`` functions of ``minivgg.cli.options``),
  exit code 2;
- a problem with the input or the environment (minivgg's own errors, ``ValueError``, ``OSError``,
  ``ImportError``): one line ``minivgg COMMAND: error: MESSAGE``, exit code 1; the traceback too with
  ``--debug`` or ``MINIVGG_DEBUG=1``;
- an allocation that fails (``MemoryError``, what is left of it after ``minivgg.limits`` bounded every size
  it could): one line naming the size asked for, exit code 1;
- Ctrl-C, at any moment (a second one during the training step, or during start-up): one line, exit code 130.

Every message is shown on one line with its control characters escaped (``minivgg.text.shown``): a message
that quotes a file's content cannot act on the terminal.

Any other exception is a bug in minivgg and keeps its traceback.
"""
import argparse
import contextlib
import importlib
import os
import signal
import sys
import traceback

from ..errors import INTERRUPTED_EXIT_CODE, MinivggError
from ..backend import set_backend
from ..text import shown

__all__ = ["COMMANDS", "build_parser", "main", "run_guarded", "interrupted", "DEBUG_VARIABLE",
           "INTERRUPTED_EXIT_CODE"]

COMMANDS = ("convert", "download", "evaluate", "export", "features", "info", "localise", "plot", "predict",
            "reproduce", "train", "transfer")

DEBUG_VARIABLE = "MINIVGG_DEBUG"
USER_ERRORS = (MinivggError, ValueError, OSError, ImportError)
_DEBUG_HELP = f"show the traceback of an error (also: {DEBUG_VARIABLE}=1)"


def build_parser():
    parser = argparse.ArgumentParser(prog="minivgg", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None,
                        help="numpy (default), cupy or numba; see minivgg.available_backends()")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        importlib.import_module(f"{__package__}.{command}").register(subparsers)
    for subparser in subparsers.choices.values():
        # --debug also after the command; SUPPRESS keeps a sub-parser's default from hiding `minivgg --debug CMD`.
        if "--debug" not in subparser._option_string_actions:
            subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    return parser


def _debug_from_environment():
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def _one_line(error):

    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return shown(text) or type(error).__name__


def _out_of_memory(error):
    """The one line for a failed allocation: NumPy's message names the size (``Unable to allocate 7.28 TiB
    for an array with shape ...``), CuPy's the bytes; a bare MemoryError says nothing, so say what happened."""
    detail = _one_line(error) if str(error) else "an allocation failed"
    return (f"out of memory: {detail}. Ask for less: a smaller --batch-size, --scales, "
            f"--crop, --width or --fc-width")


@contextlib.contextmanager
def _ignoring_ctrl_c():
    """Let the goodbye line be written even if Ctrl-C is pressed once more meanwhile."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def interrupted(program, interruption=None):
    """Print the one line for a Ctrl-C (the interruption's own message if it has one) and return 130."""
    with _ignoring_ctrl_c():
        message = str(interruption or "") or "interrupted"
        print(f"\n{program}: {message}", file=sys.stderr, flush=True)
    return INTERRUPTED_EXIT_CODE


def run_guarded(context, action):
    """``action()``'s exit code, with every way it can fail turned into what a user should see (the module
    docstring): one line for a user error, 130 for Ctrl-C, the traceback for a bug. ``context`` is a dict whose
    ``"program"`` names the command in those lines and whose ``"debug"`` adds the traceback to user errors;
    ``action`` may set both as it parses its arguments."""
    try:
        return action() or 0
    except KeyboardInterrupt as interruption:
        if context.get("debug") or _debug_from_environment():
            traceback.print_exc()
        return interrupted(context["program"], interruption)
    except BrokenPipeError:
        # The reader of our output went away (`minivgg info D | head`): nobody is left to tell.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except USER_ERRORS as error:
        if context.get("debug") or _debug_from_environment():
            traceback.print_exc()
        print(f"{context['program']}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except MemoryError as error:
        if context.get("debug") or _debug_from_environment():
            traceback.print_exc()
        print(f"{context['program']}: error: {_out_of_memory(error)}", file=sys.stderr)
        return 1


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    context = {"program": "minivgg", "debug": False}

    def parse_and_run():
        parser = build_parser()
        args = parser.parse_args(argv)
        context["debug"] = args.debug
        if args.command is None:
            parser.print_help()
            return 2
        context["program"] = f"minivgg {args.command}"
        if args.backend is not None:
            set_backend(args.backend)
        return args.func(args)

    return run_guarded(context, parse_and_run)


if __name__ == "__main__":
    sys.exit(main())
