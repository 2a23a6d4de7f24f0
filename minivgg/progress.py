"""Progress bars for long work: tqdm's text bar on a terminal, its widget in Jupyter, and never a warning.

Every bar of minivgg comes from ``progress_bar``, which takes tqdm's arguments (``total``, ``desc``, ``unit``,
``disable``, ...). ``tqdm.auto`` would choose the same bars, but in a Jupyter kernel without ipywidgets it warns
("TqdmWarning: IProgress not found") as soon as it is imported, even for a bar that is disabled, so a lesson
that asked for no bar still showed the warning. Here a kernel without ipywidgets gets the text bar, silently.
"""
import sys

__all__ = ["progress_bar", "bar_class"]


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
    """A tqdm bar (``progress_bar(iterable, desc=..., disable=not progress)``, or ``total=`` with ``update``)."""
    return bar_class()(*args, **kwargs)
