"""The ``minivgg`` command's entry point, kept outside the minivgg package on purpose.

Importing minivgg (NumPy, the layers, the models) takes a second or two, and a Ctrl-C during that import
must end like one at any other moment: one line and exit code 130, not a traceback. Only code that runs
before the package is imported can arrange that, so this module imports nothing but ``sys`` until then.
``minivgg.cli.program`` handles everything after the import.
"""
import sys


def main():
    try:
        from minivgg.cli.program import main as run_command_line
    except KeyboardInterrupt:
        sys.stderr.write("\nminivgg: interrupted\n")
        return 130
    return run_command_line()


if __name__ == "__main__":
    sys.exit(main())
