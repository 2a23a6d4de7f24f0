"""Progress bars: the text bar outside Jupyter and in a kernel without ipywidgets, with no warning either way, and
a forked child's bar."""
import importlib
import os
import signal
import sys
import threading
import time
import types
import warnings

import pytest
import tqdm.std

from minivgg.progress import bar_class, progress_bar


def _pretend_jupyter_kernel(monkeypatch, widgets):
    """This process as a Jupyter kernel sees it, with ipywidgets importable or not; tqdm imported afresh."""
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("ipykernel.zmqshell"))
    for name in ("tqdm.auto", "tqdm.autonotebook", "tqdm.notebook"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    if not widgets:
        monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets now raises ImportError


def test_a_terminal_gets_the_text_bar():
    assert bar_class() is tqdm.std.tqdm
    assert list(progress_bar(range(3), disable=True)) == [0, 1, 2]


def test_a_kernel_without_ipywidgets_gets_the_text_bar_and_no_warning(monkeypatch):
    pytest.importorskip("IPython")
    _pretend_jupyter_kernel(monkeypatch, widgets=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bar_class() is tqdm.std.tqdm
        assert list(progress_bar(range(3), disable=True)) == [0, 1, 2]


def test_tqdm_auto_warns_there_which_is_what_progress_bar_avoids(monkeypatch):
    """The warning the lessons showed: tqdm.auto in a kernel without ipywidgets, at import."""
    pytest.importorskip("IPython")
    _pretend_jupyter_kernel(monkeypatch, widgets=False)

    class Shell:  # tqdm.autonotebook asks IPython for the running shell's class name
        pass

    monkeypatch.setattr("IPython.get_ipython", lambda: Shell())
    with pytest.warns(tqdm.std.TqdmWarning, match="IProgress not found"):
        importlib.import_module("tqdm.auto")


def test_a_kernel_with_ipywidgets_gets_the_widget(monkeypatch):
    pytest.importorskip("ipywidgets")
    _pretend_jupyter_kernel(monkeypatch, widgets=True)
    import tqdm.notebook

    assert bar_class() is tqdm.notebook.tqdm


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_child_forked_while_a_thread_holds_the_bars_lock_can_show_a_bar():
    """tqdm's monitor thread takes the bars' lock every 10 s; a fork at that moment copied it held, and the child's
    first bar waited forever (mutation testing's forked test runs hung so). Nor may the child's bar leave the
    parent's lock taken."""
    list(progress_bar(range(2), disable=False))
    held, release = threading.Event(), threading.Event()

    def hold_the_lock():
        with tqdm.std.tqdm.get_lock():
            held.set()
            release.wait()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    held.wait()
    pid = os.fork()
    if pid == 0:  # the child: a bar, then out without running the parent's cleanup
        try:
            list(progress_bar(range(3), desc="child", disable=False))
        finally:
            os._exit(0)
    release.set()  # the parent's holder lets go; the process lock it held is shared with the child
    holder.join()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child's bar waited 30 s for the lock its parent's thread held at the fork")
    assert os.waitstatus_to_exitcode(status) == 0
    process_lock = tqdm.std.TqdmDefaultWriteLock.mp_lock  # shared with the child: it must have been left free
    assert process_lock.acquire(timeout=10), "the child kept the parent's process lock: the next bar would wait"
    process_lock.release()
    list(progress_bar(range(2), disable=False))
