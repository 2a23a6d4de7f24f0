"""Writing files so that a crash, a full disk or a kill never leaves a half-written file under a real name.

Every file minivgg writes (checkpoints, weights, logs, run arguments, posteriors, features, exported models)
goes through ``atomic_write``: written to a temporary in the same folder, flushed to disk, then renamed over
the target in one step. A process killed mid-write leaves its temporary (``NAME.tmp-PID``) behind;
``remove_stale_temporaries`` clears those of processes that no longer run.
"""
import contextlib
import json
import os
import re

from .errors import WriteError

__all__ = ["atomic_write", "write_json", "remove_stale_temporaries"]

_TEMPORARY = re.compile(r"^(?P<target>.+)\.tmp-(?P<pid>[0-9]+)$")


def atomic_write(path, write):
    """Call ``write(temporary_path)``, then rename the result onto ``path`` in one step (POSIX rename).

    The temporary is ``path + ".tmp-PID"`` in the same folder (a rename across file systems would not be
    atomic) and is removed whatever happens. If writing fails (disk full, read-only folder), raises
    ``WriteError`` (an ``OSError``) naming ``path``; ``path`` itself is then exactly as it was.
    """
    from safetensors import SafetensorError  # how safetensors reports a failed write (ENOSPC included)

    path = os.fspath(path)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
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
    """Remove the temporaries ``NAME.tmp-PID`` (hidden ones too) that processes no longer running left in
    ``folder`` when they were killed mid-write; a running process's temporaries are left alone. Returns
    the names removed (none if ``folder`` does not exist)."""
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
