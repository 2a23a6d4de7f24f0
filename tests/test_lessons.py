"""Every lesson notebook runs top to bottom, and stays in step with its jupytext source."""
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
jupytext = pytest.importorskip("jupytext")

LESSONS = pathlib.Path(__file__).resolve().parent.parent / "lessons"
NOTEBOOKS = sorted(LESSONS.glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_matches_its_script(notebook):
    """The .py (percent format) is the reviewable source: the notebook's code cells must be the same."""
    script = notebook.with_suffix(".py")
    assert script.exists(), f"{notebook.name} has no paired jupytext script {script.name}"
    from_script = [c.source for c in jupytext.read(script).cells if c.cell_type == "code"]
    from_notebook = [c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    assert from_script == from_notebook, f"regenerate with: jupytext --to ipynb {script.name}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_executes(notebook, tmp_path):
    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert not errors
