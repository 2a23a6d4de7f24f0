"""Progress bars for long work: tqdm's text bar on a terminal, its widget in Jupyter, and never a warning.

Every bar of minivgg comes from ``progress_bar``, which takes tqdm's arguments (``total``, ``desc``, ``unit``,
``disable``, ...). ``tqdm.auto`` would choose the same bars, but in a Jupyter kernel without ipywidgets it warns
("TqdmWarning: IProgress not found") as soon as it is imported, even for a bar that is disabled, so a lesson
that asked for no bar still showed the warning. Here a kernel without ipywidgets gets the text bar, silently.

A process forked while another of its threads held tqdm's lock (tqdm's monitor thread takes it every 10 s)
would wait for it forever in the child, at the child's first bar: ``os.fork`` copies the lock held and not the
thread that would release it. A forked child therefore gets new locks (``_new_bar_lock_in_child``).
"""
import os
import sys
import threading

__all__ = ["progress_bar", "bar_class"]


def _new_bar_lock_in_child():
    """In a forked child: tqdm's locks anew, unheld. Its process lock too: a copy of it, taken in the child while
    the parent held it, kept the parent's count and was never given back, and the parent's next bar waited
    forever. A child's bar and its parent's are then not kept from writing at the same moment, which at worst
    mixes their lines. Nothing to do when tqdm was never imported."""
    std = sys.modules.get("tqdm.std")
    if std is None:
        return
    std.TqdmDefaultWriteLock.th_lock = threading.RLock()
    if "mp_lock" in vars(std.TqdmDefaultWriteLock):  # made again by the next lock (create_mp_lock)
        del std.TqdmDefaultWriteLock.mp_lock
    classes = [std.tqdm]
    for cls in classes:  # tqdm and its subclasses (the notebook bar), each of which may hold a lock of its own
        classes.extend(cls.__subclasses__())
        if "_lock" in vars(cls):  # made again, from the new thread lock, by the class's next bar
            delattr(cls, "_lock")


if hasattr(os, "register_at_fork"):  # POSIX: where a process can fork
    os.register_at_fork(after_in_child=_new_bar_lock_in_child)


def _in_jupyter_kernel():
    """Whether this process is a Jupyter kernel (a notebook, JupyterLab, VS Code), as tqdm.autonotebook tests it."""
    return "ipykernel.zmqshell" in sys.modules


def bar_class():
    """The tqdm class for this process: ``tqdm.notebook.tqdm`` in a Jupyter kernel with ipywidgets, else
    ``tqdm.std.tqdm`` (the text bar, written to stderr)."""
    if _in_jupyter_kernel():
        from tqdm.notebook import IProgress  # None when ipywidgets is missing; importing it does not warn

        if IProgress is not None:
            from tqdm.notebook import tqdm as notebook_bar

            return notebook_bar
    from tqdm.std import tqdm as text_bar

    return text_bar


def progress_bar(*args, **kwargs):
    """A tqdm bar (``progress_bar(iterable, desc=..., disable=not progress)``, or ``total=`` with ``update``).
    Its ``desc`` is often a file's name: its control characters are shown escaped (``minivgg.text.shown``), so
    that a name cannot act on the terminal."""
    if kwargs.get("desc") is not None:
        from .text import shown

        kwargs["desc"] = shown(kwargs["desc"])
    return bar_class()(*args, **kwargs)
