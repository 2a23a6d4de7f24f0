"""Every lesson notebook runs top to bottom, and stays in step with its jupytext source."""
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
jupytext = pytest.importorskip("jupytext")

LESSONS = pathlib.Path(__file__).resolve().parents[2] / "lessons"
NOTEBOOKS = sorted(LESSONS.glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_matches_its_script(notebook):
    """The .py (percent format) is the reviewable source: the notebook's code cells must be the same."""
    script = notebook.with_suffix(".py")
    assert script.exists(), f"{notebook.name} has no paired jupytext script {script.name}"
    from_script = [c.source for c in jupytext.read(script).cells if c.cell_type == "code"]
    from_notebook = [c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    assert from_script == from_notebook, f"regenerate with: jupytext --to ipynb {script.name}"


@pytest.fixture(scope="session")
def executed_lessons(tmp_path_factory):
    """The folder, one per test session, where every executed lesson is kept: tests/test_site.py renders the
    site from these notebooks instead of executing the lessons a second time."""
    folder = tmp_path_factory.getbasetemp() / "executed_lessons"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_executes(notebook, executed_lessons, tmp_path):
    """Run from the jupytext source (the same code cells, checked above), in an empty working folder."""
    from build_site import execute_lesson

    source = notebook.with_suffix(".py") if notebook.with_suffix(".py").exists() else notebook
    nb = nbformat.read(execute_lesson(source, executed_lessons, timeout=600, working_folder=tmp_path), as_version=4)
    errors = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert not errors
    assert all(cell.get("execution_count") for cell in nb.cells if cell.cell_type == "code" and cell.source.strip())
