"""The options a run folder keeps (``arguments.json``), so that ``--resume RUN_DIR`` continues the same run.

A run writes its options when it starts. ``--resume`` reads them back, checks each saved value with the
command line's own option type (a hand-edited file is refused naming the option, as the command line would
refuse it), and compares them with the options given: those a resumed run may change (how long it goes on,
how it shows it) are taken from the command line when given, any other given value must equal the saved one.
``minivgg train`` and ``minivgg localize train --annotations`` keep their run folders this way.
"""
import json
import os

__all__ = ["ARGUMENTS_FILE", "check_run_dir_is_a_folder", "option_name", "option_types", "read_arguments", "apply_saved", "write_arguments"]

ARGUMENTS_FILE = "arguments.json"


def check_run_dir_is_a_folder(run_dir):
    """RunFolderError when ``--run-dir`` names something that exists and is not a folder."""
    from ..errors import RunFolderError

    if os.path.lexists(run_dir) and not os.path.isdir(run_dir):
        raise RunFolderError(f"--run-dir {run_dir} is a file, not a folder: choose another --run-dir")


def option_name(key):
    """``"batch_size"`` -> ``"--batch-size"``."""
    return "--" + key.replace("_", "-")


def option_types(parser):
    """``{dest: type}`` of the options of an argparse ``parser`` that have a ``type=``: what ``read_arguments``
    checks the saved values with."""
    return {action.dest: action.type for action in parser._actions if action.type is not None}


def read_arguments(run_dir, command, types=None):
    """The saved options of the run in ``run_dir``, a dict, each value with a type in ``types`` checked by it.

    FileNotFoundError for a missing folder or file (naming ``command``, the command whose run folders hold
    one), RunFolderError for a damaged file or a saved value its option type refuses.
    """
    from ..errors import RunFolderError

    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"--resume {run_dir}: no such folder")
    path = os.path.join(run_dir, ARGUMENTS_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir} has no {ARGUMENTS_FILE}: not a run folder of `{command}`")
    try:
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path} is damaged ({error}): the run's saved arguments cannot be read; "
                             f"nothing was changed") from None
    if not isinstance(saved, dict):
        raise RunFolderError(f"{path} holds {type(saved).__name__}, not the run's arguments (a JSON object)")
    for key, value in saved.items():  # the same checks as on the command line, naming the file
        if types is not None and key in types and value is not None:
            text = "-".join(map(str, value)) if isinstance(value, list) else str(value)
            try:
                types[key](text)
            except Exception as error:
                raise RunFolderError(f"{path}: saved {option_name(key)} {value!r} {error}") from None
    return saved


def apply_saved(args, saved, run_dir, changeable, not_saved):
    """Set ``args`` (an argparse Namespace whose options default to None) to the ``saved`` options of the run
    in ``run_dir``, except those in ``changeable`` given on the command line and those in ``not_saved``.

    UsageError naming every other option given with a value other than the saved one, and a ``--run-dir``
    other than ``run_dir``; ``args.run_dir`` becomes ``run_dir``.
    """
    from ..errors import UsageError

    refused = []
    for key in list(vars(args)):
        if key in not_saved or key == "run_dir":
            continue
        given, value = getattr(args, key), saved.get(key)
        if key in changeable:
            if given is None:
                setattr(args, key, value)
            continue
        if given is not None and json.loads(json.dumps(given)) != value:  # a tuple given, a list saved
            refused.append(f"{option_name(key)} (saved {value!r}, now {given!r})")
        setattr(args, key, tuple(value) if isinstance(value, list) else value)
    if args.run_dir is not None and os.path.abspath(args.run_dir) != os.path.abspath(run_dir):
        refused.append(f"--run-dir (the run continues in {run_dir})")
    if refused:
        raise UsageError(f"--resume {run_dir}: {'; '.join(refused)}: a resumed run keeps its options, except "
                         f"{', '.join(map(option_name, changeable))}; start a new run (another --run-dir) "
                         f"to train with other values")
    args.run_dir = run_dir


def write_arguments(run_dir, args, not_saved, extra=None):
    """Write the options of ``args`` but ``not_saved``, and the entries of ``extra``, to ``run_dir``'s
    ``arguments.json``, atomically."""
    from ..files import atomic_write

    saved = {key: value for key, value in vars(args).items() if key not in not_saved}
    saved.update(extra or {})

    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(saved, handle, indent=1)
    atomic_write(os.path.join(run_dir, ARGUMENTS_FILE), write)
