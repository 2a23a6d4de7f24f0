"""Files minivgg reads and writes: which paths it may write, how it writes them so that nothing is ever half
written or lost, and which inputs it opens.

**May I write here** (``check_outputs``, one function for every command): before any work starts, every output
of a command is checked, and refused with an ``OutputPathError`` naming the option and the path when

- its name starts with ``.minivgg-`` (``BOOKKEEPING_PREFIX``): a run folder's mark and lock, a cache, a
  temporary, which no output may replace, even with ``--overwrite``;
- it is one of the command's inputs (the same file after resolving links: ``os.path.samefile``), or is an
  image or a folder inside a data folder the command reads: written among the images it would change the
  data set itself, a folder in a flat ``val/`` turning it into class folders (``check_not_inside_inputs``, used
  for output folders such as ``--save-posteriors``, a feature cache and a new run's ``--run-dir``); a JSON or
  ``.npz`` file there is never read as data, and is allowed;
- it exists and minivgg did not write it (``written_by_minivgg``), unless the user asked to replace it
  (``--overwrite``), or it exists and is not a regular file (a folder, a link, a pipe, a device);
- it cannot be written: its folder is missing, is not a folder, or is not writable.

**Written by minivgg** is recognised from the file's own content, each kind in its own way
(``written_by_minivgg``): a safetensors file (weights, checkpoints) by the ``"minivgg"`` record in its header;
a JSON file by its top-level ``"written_by": "minivgg"``; an ``.npz`` by its ``written_by`` array; an ONNX
file by its ``producer_name`` ``minivgg``; a PNG by its ``Software`` text chunk ``minivgg``. A folder is
minivgg's when it holds minivgg's marker file (a run folder's ``.minivgg-run``, a site's
``.minivgg-site``, which lists what it wrote).

**Atomic writes** (``atomic_write``): a file is written to a temporary in the same folder, flushed to disk and
renamed over the target in one step, so a crash, a full disk or a kill never leaves a half-written file under
a real name. Temporaries are named ``.minivgg-tmp-<pid>-<random>-NAME``, which no user file is named by
accident; ``remove_stale_temporaries`` clears those of processes no longer running, and is called only on
folders minivgg owns (marked run folders). A new file gets the mode the umask gives (``0o666 & ~umask``), a
replaced one keeps its own.

**Inputs** (``require_regular_file``): a path read as a file must be a regular file. A named pipe would
block the read until something writes into it, a device could be read for ever; both are refused by a
``stat`` before the file is opened.
"""
import contextlib
import json
import os
import re
import secrets
import stat
import struct
from typing import NamedTuple

from .errors import OutputPathError, WriteError

__all__ = ["atomic_write", "write_json", "remove_stale_temporaries", "temporary_name", "TEMPORARY_PREFIX",
           "BOOKKEEPING_PREFIX", "MARK_KEY", "MARK_VALUE", "PNG_METADATA", "marked", "Output", "OUTPUT_KINDS",
           "check_outputs", "check_output_folder", "check_not_inside_inputs", "written_by_minivgg",
           "require_regular_file", "file_mode"]

BOOKKEEPING_PREFIX = ".minivgg-"  # a run folder's mark and lock, caches, a site's list, temporaries: never outputs
TEMPORARY_PREFIX = BOOKKEEPING_PREFIX + "tmp-"
_TEMPORARY = re.compile(r"^\.minivgg-tmp-(?P<pid>[0-9]+)-(?P<nonce>[0-9a-f]{8})-(?P<target>.+)$")
_LONGEST_NAME = 255  # bytes in one file name on most file systems

# What minivgg puts into the files it writes so that it can tell them from a user's (``written_by_minivgg``).
MARK_KEY, MARK_VALUE = "written_by", "minivgg"


# A PNG minivgg draws carries it as its ``Software`` text chunk (matplotlib's ``savefig(metadata=...)``).
PNG_METADATA = {"Software": MARK_VALUE}


def marked(value):
    """A JSON object ``value`` with minivgg's mark first: what ``write_json`` callers pass for an output."""
    return {MARK_KEY: MARK_VALUE, **value}


# --- atomic writes ----------------------------------------------------------------------------------------------

def temporary_name(path):
    """``FOLDER/.minivgg-tmp-<pid>-<8 random hex digits>-NAME`` for ``path`` = ``FOLDER/NAME``: in the same
    folder (a rename across file systems would not be atomic), hidden, and never a user's file name."""
    folder, name = os.path.split(os.fspath(path))
    prefix = f"{TEMPORARY_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-"
    room = _LONGEST_NAME - len(prefix.encode())
    while len(name.encode()) > room:  # a very long name: shorten its temporary, never the target
        name = name[1:]
    return os.path.join(folder, prefix + name)


def _umask():
    """The process's umask, read without changing it where the system says it (Linux), else by setting it
    and putting it back."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode(path):
    """The permission bits a file written at ``path`` gets: those of the file it replaces, else what the umask
    leaves of ``0o666`` (as ``open`` would give it)."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(path).st_mode)
    return 0o666 & ~_umask()


def atomic_write(path, write):
    """Call ``write(temporary_path)``, then rename the result onto ``path`` in one step (POSIX rename).

    The temporary (``temporary_name``) is in the same folder and is removed whatever happens. The file gets
    ``file_mode(path)``: writers such as safetensors create their file with mode 0600, which would keep others
    on a shared folder from reading a checkpoint. If writing fails (disk full, read-only folder), raises
    ``WriteError`` (an ``OSError``) naming ``path``; ``path`` itself is then exactly as it was.
    """
    from safetensors import SafetensorError  # how safetensors reports a failed write (ENOSPC included)

    path = os.fspath(path)
    temporary = temporary_name(path)
    try:
        mode = file_mode(path)
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except (OSError, SafetensorError) as error:
        before = "its previous version is unchanged" if os.path.exists(path) else "nothing was written under that name"
        raise WriteError(f"could not write {path} ({error}); {before}") from error
    finally:
        with contextlib.suppress(OSError):
            if os.path.lexists(temporary):
                os.remove(temporary)


def write_json(path, value):
    """``value`` as indented JSON (UTF-8) at ``path``, atomically (``atomic_write``)."""
    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(value, handle, indent=1)
    atomic_write(path, write)


def _process_is_running(pid):
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there: assume it runs, keep its files
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def remove_stale_temporaries(folder):
    """Remove the temporaries (``.minivgg-tmp-<pid>-<random>-NAME``) that processes no longer running left in
    ``folder`` when they were killed mid-write; a running process's temporaries and every other file are left
    alone. Call it only on a folder minivgg owns. Returns the names removed (none if ``folder`` does not
    exist)."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        pid = int(match["pid"])
        # Our own PID on a file we have not written yet: an earlier process that had the same number.
        if pid != os.getpid() and _process_is_running(pid):
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or a read-only folder: nothing to clean then
            os.remove(entry.path)
            removed.append(entry.name)
    return sorted(removed)


# --- inputs -------------------------------------------------------------------------------------------------------

def _kind_of(mode):
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def require_regular_file(path, what="file"):
    """``path`` (as a str) when it names a regular file (or a link to one); FileNotFoundError when nothing is
    there, ``NotAFileError`` naming ``what`` and the kind of thing it is otherwise. Called before an input is
    opened: reading a named pipe blocks until something writes into it, and a device may never end."""
    from .errors import NotAFileError

    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} at {path}") from None
    except NotADirectoryError:
        raise FileNotFoundError(f"no {what} at {path} (a part of the path is a file, not a folder)") from None
    except OSError as error:  # a link loop, a name too long
        raise NotAFileError(f"{what} {path} cannot be read: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        raise NotAFileError(f"{what} {path} is {_kind_of(mode)}, not a regular file: minivgg reads {what}s only "
                            f"from files")
    return path


# --- recognising minivgg's own files ------------------------------------------------------------------------------

# What each output kind is, for messages.
OUTPUT_KINDS = {"weights": "a minivgg weight file", "checkpoint": "a minivgg checkpoint",
                "json": "a JSON file minivgg wrote", "npz": "an .npz file minivgg wrote",
                "onnx": "an ONNX file minivgg exported", "png": "a PNG minivgg drew"}
_JSON_LIMIT = 64 << 20  # a JSON output of minivgg is far smaller; a larger file is not one


def _head(path, size):
    with open(path, "rb") as handle:
        return handle.read(size)


def _safetensors_format(path):
    """The ``format`` of the minivgg record in a safetensors header, or None."""
    head = _head(path, 8)
    if len(head) < 8:
        return None
    (length,) = struct.unpack("<Q", head)
    if length > 100 << 20:  # safetensors' own limit on a header
        return None
    with open(path, "rb") as handle:
        handle.seek(8)
        text = handle.read(length)
    try:
        record = json.loads(json.loads(text)["__metadata__"]["minivgg"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return record.get("format") if isinstance(record, dict) else None


def _is_minivgg_json(path):
    if os.path.getsize(path) > _JSON_LIMIT:
        return False
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and value.get(MARK_KEY) == MARK_VALUE


def _is_minivgg_npz(path):
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return MARK_KEY in data.files and str(data[MARK_KEY]) == MARK_VALUE
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, AttributeError):
        return False


def _varint(data, at):
    value, shift = 0, 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value, at, shift = value | (byte & 0x7F) << shift, at + 1, shift + 7
        if byte < 0x80:
            return value, at
    raise ValueError("truncated varint")


def _is_minivgg_onnx(path):
    """ONNX's ModelProto stores ``producer_name`` (field 2) before its graph (field 7): read the fields in
    front of it from the file's first bytes (the protobuf wire format)."""
    data, at = _head(path, 4096), 0
    try:
        while at < len(data):
            tag, at = _varint(data, at)
            number, wire = tag >> 3, tag & 7
            if wire == 0:
                _, at = _varint(data, at)
            elif wire == 2:
                length, at = _varint(data, at)
                if number == 2:
                    return data[at:at + length] == MARK_VALUE.encode()
                at += length
            else:
                return False
            if number >= 7:
                return False
    except ValueError:
        return False
    return False


def _is_minivgg_png(path):
    """A ``tEXt`` chunk ``Software`` whose text starts with ``minivgg``, before the image data."""
    with open(path, "rb") as handle:
        if handle.read(8) != b"\x89PNG\r\n\x1a\n":
            return False
        for _ in range(64):
            header = handle.read(8)
            if len(header) < 8:
                return False
            length, kind = struct.unpack(">I4s", header)
            if kind == b"IDAT" or length > 1 << 20:
                return False
            body = handle.read(length)
            handle.read(4)  # the chunk's CRC
            if kind == b"tEXt" and body.partition(b"\0")[0] == b"Software":
                return body.partition(b"\0")[2].startswith(MARK_VALUE.encode())
    return False


def written_by_minivgg(path, kind):
    """Whether the existing file ``path`` is a file of ``kind`` (one of ``OUTPUT_KINDS``) that minivgg wrote,
    as its content says (the module docstring). False for anything unreadable."""
    recognise = {"weights": lambda p: _safetensors_format(p) == "minivgg-weights-1",
                 "checkpoint": lambda p: _safetensors_format(p) == "minivgg-checkpoint-1",
                 "json": _is_minivgg_json, "npz": _is_minivgg_npz, "onnx": _is_minivgg_onnx,
                 "png": _is_minivgg_png}[kind]
    try:
        return os.path.isfile(path) and bool(recognise(path))
    except OSError:
        return False


def _what_is_there(path):
    """How to name an existing file minivgg may not replace: the kind of minivgg file it is, or a plain file."""
    for kind in OUTPUT_KINDS:
        if written_by_minivgg(path, kind):
            return OUTPUT_KINDS[kind]
    return "a file minivgg did not write"


# --- may I write here -----------------------------------------------------------------------------------------------

class Output(NamedTuple):
    """One path a command is about to write.

    path : where
    option : how the user named it, for messages (``"--json"``, ``"DST"``)
    kind : what is written there, one of ``OUTPUT_KINDS``
    replace_own : whether a file of that kind minivgg wrote before may be replaced without ``--overwrite``
        (False for files that are never replaced, such as saved posteriors)
    """

    path: str
    option: str
    kind: str
    replace_own: bool = True


def _writable_folder(folder, option, path):
    """OutputPathError unless ``folder`` exists, is a folder and can be written into."""
    if not os.path.exists(folder):
        raise OutputPathError(f"{option} {path}: the folder {folder} does not exist; create it first (nothing "
                              f"was done)")
    if not os.path.isdir(folder):
        raise OutputPathError(f"{option} {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {path}: the folder {folder} is not writable (nothing was done)")


def _same_file(a, b):
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def _inside(path, folder):
    """Whether ``path`` (existing or not) is ``folder`` or lies under it, links resolved."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def check_not_inside_inputs(path, option, inputs):
    """OutputPathError when the output ``path`` (a file or a folder) is one of the data folders ``inputs`` or
    lies inside one: written there, it would become part of the data the command reads. Inputs that are not
    folders, or do not exist, are left to the command."""
    if path is None:
        return
    for source in inputs:
        if source is not None and os.path.isdir(source) and _inside(path, source):
            where = "is" if os.path.realpath(path) == os.path.realpath(source) else "is inside"
            raise OutputPathError(f"{option} {os.fspath(path)} {where} the input folder {os.fspath(source)}: what is "
                                  f"written there would become part of the data read; choose a place outside it "
                                  f"(nothing was done)")


def check_outputs(outputs, inputs=(), overwrite=False, data_folders=()):
    """Refuse, before any work starts, every output a command may not write (the module docstring).

    Parameters
    ----------
    outputs : ``Output``s (None entries are skipped: options not given)
    inputs : paths the command reads (files or folders; those that do not exist are left to the command)
    data_folders : the folders of data the command reads (a data set's root): no output that a data set would
        read as one of its images (a PNG) may lie inside one (``check_not_inside_inputs``)
    overwrite : the user asked to replace existing files minivgg did not write (``--overwrite``); an input, a
        folder, a link or a pipe is never replaced

    Raises ``OutputPathError`` (a ValueError) naming the option, the path and why; returns the outputs' paths.
    """
    outputs = [output for output in outputs if output is not None and output.path is not None]
    inputs = [os.fspath(path) for path in inputs if path is not None]
    for number, output in enumerate(outputs):
        path, option = os.fspath(output.path), output.option
        if not os.path.basename(os.path.normpath(path)) or os.path.basename(path) in ("", ".", ".."):
            raise OutputPathError(f"{option} {path}: give a file name, not a folder")
        for source in inputs:
            if os.path.lexists(source) and os.path.lexists(path) and _same_file(path, source):
                raise OutputPathError(f"{option} {path} is the input {source}: writing it would destroy what is "
                                      f"read; choose another {option}")
        if output.kind == "png":  # an image among the images would be read as one; other files are never listed
            check_not_inside_inputs(path, option, data_folders)
        for earlier in outputs[:number]:
            if os.path.abspath(earlier.path) == os.path.abspath(path) or (
                    os.path.lexists(path) and os.path.lexists(earlier.path) and _same_file(path, earlier.path)):
                raise OutputPathError(f"{option} {path} is also {earlier.option}: give each output its own file")
        if os.path.basename(os.path.normpath(path)).startswith(BOOKKEEPING_PREFIX):
            raise OutputPathError(f"{option} {path}: files named {BOOKKEEPING_PREFIX}* are minivgg's own bookkeeping "
                                  f"(a run folder's mark and lock, caches, temporaries), never an output; choose "
                                  f"another name")
        if os.path.islink(path):
            raise OutputPathError(f"{option} {path} is a symbolic link: writing would replace the link, not what "
                                  f"it points to; give the target's path or another name")
        if os.path.lexists(path):
            mode = os.stat(path).st_mode
            if not stat.S_ISREG(mode):
                raise OutputPathError(f"{option} {path} is {_kind_of(mode)}; minivgg replaces only files it wrote")
            own = written_by_minivgg(path, output.kind)
            if not overwrite and not (own and output.replace_own):
                there = OUTPUT_KINDS[output.kind] + " (written earlier)" if own else _what_is_there(path)
                raise OutputPathError(f"{option} {path} exists and is {there}; nothing was done: choose another "
                                      f"name, move it away, or pass --overwrite to replace it")
        _writable_folder(os.path.dirname(os.path.abspath(path)), option, path)
    return [os.fspath(output.path) for output in outputs]


def check_output_folder(folder, option, marker=None, empty_or_marked=False, inputs=()):
    """Refuse a folder output that cannot be used: a path that is not a folder, a folder that is not writable,
    or whose nearest existing parent cannot hold it (it will be created), or one inside an input folder
    (``inputs``, ``check_not_inside_inputs``). With ``empty_or_marked``, an existing folder must be empty or hold
    minivgg's ``marker`` file (a folder minivgg filled). Raises ``OutputPathError``; returns the folder's path."""
    folder = os.fspath(folder)
    check_not_inside_inputs(folder, option, inputs)
    if os.path.islink(folder) and not os.path.isdir(folder):
        raise OutputPathError(f"{option} {folder} is a broken symbolic link")
    if os.path.lexists(folder):
        if not os.path.isdir(folder):
            raise OutputPathError(f"{option} {folder} is a file, not a folder: choose another {option}")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputPathError(f"{option} {folder}: the folder is not writable (nothing was done)")
        if empty_or_marked and os.listdir(folder) and not os.path.isfile(os.path.join(folder, marker)):
            raise OutputPathError(f"{option} {folder} holds files minivgg did not write (no {marker} in it); "
                                  f"nothing was changed: choose a new or empty folder")
        return folder
    parent = os.path.dirname(os.path.abspath(folder))
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise OutputPathError(f"{option} {folder}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {folder}: cannot create it, the folder {parent} is not writable")
    return folder
