"""Progress bars: the text bar outside Jupyter and in a kernel without ipywidgets, with no warning either way."""
import importlib
import sys
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
