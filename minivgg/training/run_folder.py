"""The run folder: what a run writes, who may write it, what a new run refuses to write over, and what a
resumed run keeps.

A training run (``minivgg train``, ``minivgg localize train``) lives in one folder:

    .minivgg-run            the mark that minivgg owns the folder, written before anything else
    .minivgg-lock           while a run uses the folder: its lock, holding the process's PID
    arguments.json          the command line's options, written when the run starts, read by ``--resume``
    checkpoint.safetensors  everything the run needs to continue exactly (``checkpoint.py``)
    log.jsonl               one line per epoch
    model.safetensors       the final weights, once the run has finished

One process at a time (``claimed``): a run holds an exclusive lock on its folder (``fcntl.flock`` on
``.minivgg-lock``) from before its first check to its end, so two ``minivgg train`` started into one new folder,
or two ``--resume`` of one folder, never both run: the second is refused, naming the PID of the first. The
kernel releases the lock when its process ends, however it ends, so the lock of a killed run is no obstacle.

A new run never writes into a folder holding another run's files, nor one holding an ``arguments.json`` that
minivgg did not write (``check_new_run_folder``); a folder is minivgg's once it holds ``.minivgg-run``
(``mark_run_folder``), and only then are the temporaries of killed runs cleaned from it.

``--resume`` reads the saved options back (``read_arguments``): each is parsed once, against the schema its
option's command-line type gives (the JSON type it must have, then the type's own range and bounds), so a
hand-edited ``"crop": "32"`` or ``"crop": 1000000`` is refused naming the file and the option, and the rest of
the code sees typed values only. They are compared with those given: only ``CHANGEABLE_OPTIONS`` may differ
(how long the run goes on and how it is shown and fed); any other given value must equal the saved one.
Everything a resumed run checks (its options, its checkpoint's header against the model, the data's
fingerprint) is checked before anything in the folder changes. Everything here that a user can get wrong is a
``RunFolderError`` or ``UsageError`` naming the folder and the option.
"""
import contextlib
import json
import os

from ..errors import RunFolderError, UsageError, WriteError
from ..files import marked, remove_stale_temporaries, require_regular_file, write_json, written_by_minivgg
from .settings import CHANGEABLE_ON_RESUME

__all__ = ["ARGUMENTS_FILE", "CHECKPOINT", "LOG", "FINAL_WEIGHTS", "MARKER", "LOCK", "NOT_SAVED",
           "CHANGEABLE_OPTIONS", "check_run_dir_is_a_folder", "check_new_run_folder", "require_checkpoint",
           "check_resumable_folder", "resume_hint", "claimed", "is_marked", "mark_run_folder",
           "option_name", "option_types", "option_schema", "read_arguments", "apply_saved", "write_arguments",
           "remove_stale_temporaries_in"]

MARKER, LOCK = ".minivgg-run", ".minivgg-lock"
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
        what = (f"a broken symbolic link (to {os.readlink(run_dir)})" if os.path.islink(run_dir) and
                not os.path.exists(run_dir) else "a file")
        raise RunFolderError(f"--run-dir {run_dir} is {what}, not a folder: choose another --run-dir")


def check_new_run_folder(run_dir, what="a run", resumable=CHECKPOINT, finished=(FINAL_WEIGHTS, LOG)):
    """RunFolderError unless a new run may use ``run_dir``: it is a folder or does not exist, holds no other
    run's files, and no ``arguments.json`` that minivgg did not write (in a folder without minivgg's mark).
    ``what`` names the kind of run in the message; ``resumable`` is the file that makes a run continuable with
    ``--resume``; ``finished`` are other files a run leaves (nothing to continue from)."""
    check_run_dir_is_a_folder(run_dir)
    arguments = os.path.join(run_dir, ARGUMENTS_FILE)
    if os.path.lexists(arguments) and not is_marked(run_dir):
        raise RunFolderError(f"{run_dir} holds an {ARGUMENTS_FILE} that minivgg did not write (the folder has no "
                             f"{MARKER}): it is not a run folder of minivgg's; choose another --run-dir, or move "
                             f"the file away (nothing was changed)")
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


def check_resumable_folder(run_dir, settings, checkpoint_folder=None, model=None, datasets=None):
    """Every check of a resumed run's checkpoint, made before anything in the folder changes: RunFolderError
    when the run stopped before its first checkpoint, ValueError naming the file for a damaged checkpoint
    (its header parsed against its schema), UsageError (naming the command line's options) when ``settings``
    changes what a resumed run may not (``settings.check_resumable``), when ``model`` is not the net the
    checkpoint holds (its tensors' names and shapes, read from the header alone), or when the data differ from
    those the run trained on (``datasets``, ``{"train": dataset, "val": dataset}``: their fingerprints,
    ``minivgg.data.fingerprint``)."""
    from ..data.fingerprint import check_same_data
    from .checkpoint import check_matches_model, read_checkpoint_state
    from .settings import check_resumable

    path = require_checkpoint(run_dir, checkpoint_folder)
    state = read_checkpoint_state(path)
    try:
        check_resumable(state, settings, run_dir)
    except ValueError as error:
        message = str(error)
        for setting, option in _OPTION_OF_SETTING.items():
            message = message.replace(setting, "--" + option)
        raise UsageError(message) from None
    if datasets is not None:  # first: "the classes changed" says more than the last layer's shape
        check_same_data(state.get("dataset"), datasets, run_dir)
    if model is not None:
        check_matches_model(path, model, state)
    return state


def resume_hint(run_dir, command, checkpoint_folder=None):
    """What to do after a run stopped at once: resume from its last checkpoint, or start again."""
    if os.path.exists(os.path.join(checkpoint_folder or run_dir, CHECKPOINT)):
        return f"the last checkpoint in {run_dir} is intact: continue with `{command} --resume {run_dir}`"
    return f"no checkpoint had been written yet: start the run again (--run-dir {run_dir} may be reused)"


def remove_stale_temporaries_in(folders):
    """Clear the temporaries killed runs left in ``folders`` (``files.remove_stale_temporaries``), saying so;
    only in folders minivgg owns (marked run folders): a folder of anything else is left as it is."""
    for folder in folders:
        if not is_marked(folder):
            continue
        removed = remove_stale_temporaries(folder)
        if removed:
            print(f"removed {len(removed)} temporary file(s) that killed runs left in {folder}: {', '.join(removed)}")


# --- the mark and the lock ----------------------------------------------------------------------------------------

def is_marked(run_dir):
    """Whether ``run_dir`` holds minivgg's mark (``MARKER``, a JSON file minivgg wrote): a folder minivgg owns."""
    return written_by_minivgg(os.path.join(run_dir, MARKER), "json")


def mark_run_folder(run_dir):
    """Mark ``run_dir`` as minivgg's (``MARKER``), unless it is already; the first file a run writes. WriteError
    naming the file when the folder cannot be written."""
    if not is_marked(run_dir):
        write_json(os.path.join(run_dir, MARKER), marked({"kind": "minivgg run folder"}))


# The locks this process holds: {real path of the folder: [descriptor, depth]}. A lock taken again by the process
# that holds it (the command line, then ``train()``) is the same lock: flock would refuse a second descriptor.
_HELD = {}


def _holder(lock_path):
    with contextlib.suppress(OSError, ValueError):
        with open(lock_path, encoding="ascii") as handle:
            return int(handle.read(32).strip())
    return None


def _in_use(run_dir, holder):
    who = f"process {holder}" if holder is not None else "another process"
    return RunFolderError(f"{run_dir} is in use by another minivgg run ({who} holds its lock {LOCK}); nothing was "
                          f"changed: wait for it to end, or choose another --run-dir")


def _lock_with_flock(run_dir, path):
    import fcntl

    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
                                 | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as error:
            raise WriteError(f"could not lock the run folder {run_dir}: cannot create {path} "
                             f"({error.strerror or error}); nothing was changed") from error
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(path)
            os.close(descriptor)
            raise _in_use(run_dir, holder) from None
        # The holder before us removes the file as it lets go: a lock on a file no longer at ``path`` is no
        # lock. Only one that is still the file at ``path`` counts; else take it again.
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(descriptor), current):
            return descriptor
        os.close(descriptor)


def _lock_with_exclusive_create(run_dir, path):
    """Where there is no flock (Windows): the lock file created exclusively; one of a process that no longer
    runs is stale and taken over."""
    from ..files import _process_is_running

    for _ in range(2):
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is None or _process_is_running(holder):
                raise _in_use(run_dir, holder) from None
            with contextlib.suppress(OSError):
                os.remove(path)
    raise _in_use(run_dir, _holder(path))


@contextlib.contextmanager
def claimed(run_dir):
    """Hold ``run_dir``'s exclusive lock for the ``with`` block: RunFolderError naming the holder's PID when
    another process holds it. The folder is created if missing (and removed again, with any parent created
    for it, when the block leaves it empty: a run that failed its checks leaves nothing behind). Re-entrant
    within a process."""
    key = os.path.realpath(run_dir)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    check_run_dir_is_a_folder(run_dir)
    created, folder = [], os.path.abspath(run_dir)
    while not os.path.exists(folder):
        created.append(folder)
        folder = os.path.dirname(folder)
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as error:
        raise WriteError(f"could not create the run folder {run_dir} ({error.strerror or error})") from error
    path = os.path.join(run_dir, LOCK)
    try:
        try:
            import fcntl  # noqa: F401
        except ImportError:
            descriptor = _lock_with_exclusive_create(run_dir, path)
        else:
            descriptor = _lock_with_flock(run_dir, path)
    except BaseException:
        _remove_empty(created)
        raise
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    _HELD[key] = [descriptor, 1]
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            os.remove(path)  # while still held: whoever opened it meanwhile sees it is gone and opens anew
        os.close(descriptor)
        _remove_empty(created)


def _remove_empty(folders):
    for folder in folders:  # innermost first
        with contextlib.suppress(OSError):
            os.rmdir(folder)


# --- the saved options ----------------------------------------------------------------------------------------------

def option_types(parser):
    """``{dest: type}`` of the options of an argparse ``parser`` that have a ``type=``."""
    return {action.dest: action.type for action in parser._actions if action.type is not None}


def _as_json(value):
    return json.loads(json.dumps(value))  # tuples become lists, as they are saved


def _option_parser(action):
    """The function that parses one saved value of ``action``'s option into its typed value, raising
    ValueError with what is wrong (the message follows the option's name)."""
    def text_of(value):
        return "-".join(map(str, value)) if isinstance(value, list) else str(value)

    if action.nargs == 0:  # a flag: --quiet, --flip
        def parse(value):
            if not isinstance(value, bool):
                raise ValueError(f"must be true, false or null, got {value!r}")
            return value
    elif action.type is not None:
        def parse(value):
            if isinstance(value, (dict, bool)) or (isinstance(value, list) and not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in value)):
                raise ValueError(f"is {type(value).__name__} {value!r}, not a value of this option")
            try:
                typed = action.type(text_of(value))
            except Exception as error:  # argparse.ArgumentTypeError, with the command line's own message
                raise ValueError(f"{value!r} {error}") from None
            if _as_json(typed) != value:  # "crop": "32" parses, but is a string where the option saves a number
                raise ValueError(f"is the {type(value).__name__} {value!r}; it must be saved as "
                                 f"{json.dumps(_as_json(typed))}")
            return typed
    elif action.nargs in ("+", "*"):
        def parse(value):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"must be a list of strings, got {value!r}")
            return value
    else:
        def parse(value):
            if not isinstance(value, str):
                raise ValueError(f"must be a string, got {type(value).__name__} {value!r}")
            if action.choices is not None and value not in action.choices:
                raise ValueError(f"must be one of {', '.join(map(str, action.choices))}, got {value!r}")
            return value
    return parse


def option_schema(parser):
    """``{dest: parse}`` for every option of an argparse ``parser``: the schema ``read_arguments`` parses a
    run's saved options with. Each ``parse(value)`` takes a JSON value, not null, and returns the typed
    value, or raises ValueError saying what is wrong: the JSON type the option saves (a flag a bool, a path a
    string, a number a number), then its ``type=``'s own range and bounds."""
    return {action.dest: _option_parser(action) for action in parser._actions if action.dest != "help"}


_LARGEST_ARGUMENTS = 1 << 20  # bytes: a run's saved options are a few hundred


def read_arguments(run_dir, command, schema=None, extra=None):
    """The saved options of the run in ``run_dir``, each parsed once against ``schema`` (``option_schema``):
    ``{option: typed value or None}``.

    ``extra`` maps the other keys a command saves beside its options to their parsers (``parse(value)``,
    ValueError when wrong). A key that is neither an option nor an extra is refused, as is a value of the
    wrong JSON type or out of its option's range: RunFolderError naming the file and the option.
    FileNotFoundError for a missing folder or file (naming ``command``, the command whose run folders hold
    one).
    """
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"--resume {run_dir}: no such folder")
    path = os.path.join(run_dir, ARGUMENTS_FILE)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"{run_dir} has no {ARGUMENTS_FILE}: not a run folder of `{command}`")
    require_regular_file(path, "run arguments file")
    if os.path.getsize(path) > _LARGEST_ARGUMENTS:
        raise RunFolderError(f"{path} is {os.path.getsize(path):,} bytes: not a run's saved arguments (a few "
                             f"hundred); nothing was changed")
    try:
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise RunFolderError(f"{path} is damaged ({error}): the run's saved arguments cannot be read; "
                             f"nothing was changed") from None
    if not isinstance(saved, dict):
        raise RunFolderError(f"{path} holds {type(saved).__name__}, not the run's arguments (a JSON object)")
    if schema is None:
        return saved
    parsers = dict(schema, **(extra or {}))
    unknown = sorted(key for key in saved if key not in parsers)
    if unknown:
        raise RunFolderError(f"{path}: unknown saved options {', '.join(map(repr, unknown))[:200]}; not the "
                             f"arguments of a `{command}` run, or edited by hand (nothing was changed)")
    typed = {}
    for key, value in saved.items():
        if value is None:
            typed[key] = None
            continue
        try:
            typed[key] = parsers[key](value)
        except ValueError as error:
            name = option_name(key) if key in schema else repr(key)
            raise RunFolderError(f"{path}: saved {name} {error}; nothing was changed") from None
    return typed


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
        if given is not None and _as_json(given) != _as_json(value):  # a tuple given, a list saved
            refused.append(f"{option_name(key)} (saved {value!r}, now {given!r})")
        setattr(args, key, value)
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
