"""Every lesson notebook runs top to bottom, stays in step with its jupytext source, and stores current outputs.

Each lesson is executed once per session (the site test renders these executions too); the fresh outputs are
compared with the committed notebook's, cell by cell, within the tolerances of tools/execute_lessons.py.
"""
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
jupytext = pytest.importorskip("jupytext")

LESSONS = pathlib.Path(__file__).resolve().parents[2] / "lessons"
NOTEBOOKS = sorted(LESSONS.glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_matches_its_script(notebook):
    """The .py (percent format) is the reviewable source: the notebook's cells, code and text, must be the same."""
    script = notebook.with_suffix(".py")
    assert script.exists(), f"{notebook.name} has no paired jupytext script {script.name}"
    from_script = [(c.cell_type, c.source) for c in jupytext.read(script).cells]
    from_notebook = [(c.cell_type, c.source) for c in nbformat.read(notebook, as_version=4).cells]
    assert from_script == from_notebook, f"regenerate with: python tools/execute_lessons.py {notebook.stem}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_no_code_hides_in_a_text_cell(notebook):
    """In the percent format a text cell is comment lines; an uncommented line after one (a forgotten ``# %%``)
    would be shown as text and never run, its assertions with it."""
    kind, hidden = None, []
    for number, line in enumerate(notebook.with_suffix(".py").read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "code"
        elif kind == "markdown" and line.strip() and not line.startswith("#"):
            hidden.append(f"line {number}: {line.strip()[:60]}")
    assert not hidden, f"{notebook.stem}.py: code inside a text cell (add '# %%' before it): {hidden[:3]}"


@pytest.fixture(scope="session")
def executed_lessons(tmp_path_factory):
    """The folder, one per test session, where every executed lesson is kept: tests/test_site.py renders the
    site from these notebooks instead of executing the lessons a second time."""
    folder = tmp_path_factory.getbasetemp() / "executed_lessons"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_executes_and_its_stored_outputs_are_current(notebook, executed_lessons, tmp_path):
    """Run from the jupytext source (the same cells, checked above), in an empty working folder; a traceback,
    a warning or a progress bar in the outputs fails here (execute_lesson refuses them). Then the stored outputs
    must be what the lesson prints now."""
    from execute_lessons import REGENERATE, compare_outputs, execute_lesson

    source = notebook.with_suffix(".py") if notebook.with_suffix(".py").exists() else notebook
    fresh = nbformat.read(execute_lesson(source, executed_lessons, timeout=600, working_folder=tmp_path),
                          as_version=4)
    assert all(cell.get("execution_count") for cell in fresh.cells if cell.cell_type == "code" and cell.source.strip())
    differences = compare_outputs(nbformat.read(notebook, as_version=4), fresh)
    assert not differences, (f"the stored outputs of lessons/{notebook.name} are out of date "
                             f"({len(differences)} cells differ):\n  " + "\n  ".join(differences[:8])
                             + f"\nregenerate them with: {REGENERATE} {notebook.stem.split('_')[0]}")
