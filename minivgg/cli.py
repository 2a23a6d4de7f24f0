"""The ``minivgg`` command line: one subcommand per module in ``minivgg/commands/``.

Each command module exports ``register(subparsers)``, which adds its parser and sets ``func`` to the function
that runs it with the parsed arguments. Adding a command is adding a file.
"""
import argparse
import importlib
import pkgutil
import sys

from . import commands


def build_parser():
    parser = argparse.ArgumentParser(prog="minivgg", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None,
                        help="numpy (default), cupy or numba; see minivgg.available_backends()")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{module_info.name}").register(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.backend is not None:
            from .backend import set_backend
            set_backend(args.backend)
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, ImportError) as error:
        # User errors (bad shapes, missing files, unavailable backends) end with their message, not a traceback.
        print(f"minivgg {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
