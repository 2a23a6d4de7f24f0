"""The run folder: what a run writes, what a new run refuses to write over, and what a resumed run keeps.

A training run (``minivgg train``, ``minivgg localize train``) lives in one folder:

    arguments.json          the command line's options, written when the run starts, read by ``--resume``
    checkpoint.safetensors  everything the run needs to continue exactly (``checkpoint.py``)
    log.jsonl               one line per epoch
    model.safetensors       the final weights, once the run has finished

A new run never writes into a folder holding another run's files (``check_new_run_folder``). ``--resume``
reads the saved options back, checks each with the command line's own option type (a hand-edited file is
refused naming the option, as the command line would refuse it), and compares them with those given: only
``CHANGEABLE_OPTIONS`` may differ (how long the run goes on and how it is shown and fed); any other given value
must equal the saved one. Everything here that a user can get wrong is a ``RunFolderError`` or ``UsageError``
naming the folder and the option, raised before anything in the folder changes.
"""
import json
import os

from ..errors import RunFolderError, UsageError
from ..files import remove_stale_temporaries, write_json
from .settings import CHANGEABLE_ON_RESUME

__all__ = ["ARGUMENTS_FILE", "CHECKPOINT", "LOG", "FINAL_WEIGHTS", "NOT_SAVED", "CHANGEABLE_OPTIONS",
           "check_run_dir_is_a_folder", "check_new_run_folder", "require_checkpoint", "check_resumable_folder",
           "resume_hint",
           "option_name", "option_types", "read_arguments", "apply_saved", "write_arguments",
           "remove_stale_temporaries_in"]

ARGUMENTS_FILE = "arguments.json"
CHECKPOINT, LOG, FINAL_WEIGHTS = "checkpoint.safetensors", "log.jsonl", "model.safetensors"

# Options that are not part of a run: how the command was called (the backend may change between sessions,
# the parser's own entries) and --resume itself.
NOT_SAVED = ("func", "command", "action", "backend", "debug", "resume")
# The command-line names of the settings a resumed run may change (``settings.CHANGEABLE_ON_RESUME``), and how a
# run is shown and fed (never part of what it computes). A command uses those of them it has.
_OPTION_OF_SETTING = {"max_epochs": "epochs"}
CHANGEABLE_OPTIONS = tuple(_OPTION_OF_SETTING.get(name, name) for name in CHANGEABLE_ON_RESUME) + ("workers", "quiet")


def option_name(key):
    """``"batch_size"`` -> ``"--batch-size"``; a setting named otherwise on the command line gets that name
    (``"max_epochs"`` -> ``"--epochs"``)."""
    return "--" + _OPTION_OF_SETTING.get(key, key).replace("_", "-")


def check_run_dir_is_a_folder(run_dir):
    """RunFolderError when ``--run-dir`` names something that exists and is not a folder."""
    if os.path.lexists(run_dir) and not os.path.isdir(run_dir):
        raise RunFolderError(f"--run-dir {run_dir} is a file, not a folder: choose another --run-dir")


def check_new_run_folder(run_dir, what="a run", resumable=CHECKPOINT, finished=(FINAL_WEIGHTS, LOG)):
    """RunFolderError unless a new run may use ``run_dir``: it is a folder or does not exist, and holds no other
    run's files. ``what`` names the kind of run in the message; ``resumable`` is the file that makes a run
    continuable with ``--resume``; ``finished`` are other files a run leaves (nothing to continue from)."""
    check_run_dir_is_a_folder(run_dir)
    if os.path.exists(os.path.join(run_dir, resumable)):
        raise RunFolderError(f"{run_dir} already holds {what}: continue it with --resume {run_dir}, or choose "
                             f"another --run-dir")
    earlier = [name for name in finished if os.path.lexists(os.path.join(run_dir, name))]
    if earlier:
        raise RunFolderError(f"{run_dir} already holds {what}'s {' and '.join(earlier)}, and no checkpoint to "
                             f"continue it from: choose another --run-dir, or move those files away (nothing was "
                             f"changed)")


def require_checkpoint(run_dir, checkpoint_folder=None):
    """The path of the run's checkpoint (in ``checkpoint_folder``, default ``run_dir``); RunFolderError when the
    run stopped before writing its first one."""
    path = os.path.join(checkpoint_folder or run_dir, CHECKPOINT)
    if not os.path.exists(path):
        raise RunFolderError(f"{run_dir} has no checkpoint: the run stopped before writing its first one; start it "
                             f"again (without --resume, --run-dir {run_dir} may be reused)")
    return path


def check_resumable_folder(run_dir, settings, checkpoint_folder=None):
    """The checkpoint's own check (``settings.check_resumable``), made before anything in the folder changes:
    RunFolderError when the run stopped before its first checkpoint, UsageError (naming the command line's
    options) when ``settings`` changes what a resumed run may not."""
    from .checkpoint import read_checkpoint_state
    from .settings import check_resumable

    path = require_checkpoint(run_dir, checkpoint_folder)
    try:
        check_resumable(read_checkpoint_state(path), settings, run_dir)
    except ValueError as error:
        message = str(error)
        for setting, option in _OPTION_OF_SETTING.items():
            message = message.replace(setting, "--" + option)
        raise UsageError(message) from None


def resume_hint(run_dir, command, checkpoint_folder=None):
    """What to do after a run stopped at once: resume from its last checkpoint, or start again."""
    if os.path.exists(os.path.join(checkpoint_folder or run_dir, CHECKPOINT)):
        return f"the last checkpoint in {run_dir} is intact: continue with `{command} --resume {run_dir}`"
    return f"no checkpoint had been written yet: start the run again (--run-dir {run_dir} may be reused)"


def remove_stale_temporaries_in(folders):
    """Clear the temporaries killed runs left in ``folders`` (``files.remove_stale_temporaries``), saying so."""
    for folder in folders:
        removed = remove_stale_temporaries(folder)
        if removed:
            print(f"removed {len(removed)} temporary file(s) that killed runs left in {folder}: {', '.join(removed)}")


def option_types(parser):
    """``{dest: type}`` of the options of an argparse ``parser`` that have a ``type=``: what ``read_arguments``
    checks the saved values with."""
    return {action.dest: action.type for action in parser._actions if action.type is not None}


def read_arguments(run_dir, command, types=None):
    """The saved options of the run in ``run_dir``, a dict, each value with a type in ``types`` checked by it.

    FileNotFoundError for a missing folder or file (naming ``command``, the command whose run folders hold
    one), RunFolderError for a damaged file or a saved value its option type refuses.
    """
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


def apply_saved(args, saved, run_dir, not_saved=NOT_SAVED):
    """Set ``args`` (an argparse Namespace whose options default to None) to the ``saved`` options of the run
    in ``run_dir``, except those of ``CHANGEABLE_OPTIONS`` given on the command line and those in ``not_saved``.

    UsageError naming every other option given with a value other than the saved one, and a ``--run-dir``
    other than ``run_dir``; ``args.run_dir`` becomes ``run_dir``.
    """
    changeable = [key for key in CHANGEABLE_OPTIONS if hasattr(args, key)]
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


def write_arguments(run_dir, args, not_saved=NOT_SAVED, extra=None):
    """Write the options of ``args`` but ``not_saved``, and the entries of ``extra``, to ``run_dir``'s
    ``arguments.json``, atomically."""
    saved = {key: value for key, value in vars(args).items() if key not in not_saved}
    saved.update(extra or {})
    write_json(os.path.join(run_dir, ARGUMENTS_FILE), saved)
