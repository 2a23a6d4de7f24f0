"""The lessons as a site: built from the notebooks tests/test_lessons.py executed (no second execution),
every lesson a page, every figure of the executed notebook an image on that page."""
import base64
import html
import io
import pathlib
import re

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("jupytext")
pytest.importorskip("mkdocs")
pytest.importorskip("mkdocs_jupyter")

from PIL import Image  # noqa: E402

import build_site as site  # noqa: E402  (tools/build_site.py, on the tests' path: pyproject.toml)
from test_lessons import LESSONS, executed_lessons  # noqa: E402,F401  (the session's executed notebooks)

IMG = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]+)\"")


def _figures(notebook):
    """How many figures (PNG outputs) an executed notebook holds."""
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", []))


def _shown_images(page):
    """The images a page shows, opened: embedded PNG data, or files next to the page."""
    images = []
    for source in IMG.findall(page.read_text(encoding="utf-8")):
        if source.startswith("data:image/png;base64,"):
            data = base64.b64decode(source.split(",", 1)[1])
        else:
            data = (page.parent / html.unescape(source)).read_bytes()  # a missing file fails here
        images.append(Image.open(io.BytesIO(data)))
    return images


def test_every_lesson_is_a_page_showing_its_figures(executed_lessons, tmp_path, monkeypatch):  # noqa: F811
    sources = site.lesson_sources(LESSONS)
    for source in sources:  # only when this file runs without test_lessons.py before it
        if not (executed_lessons / f"{pathlib.Path(source).stem}.ipynb").exists():
            site.execute_lesson(source, executed_lessons)

    def no_second_execution(*args, **kwargs):
        raise AssertionError("build_site executed a lesson that the test suite had executed already")

    monkeypatch.setattr(site, "execute_lesson", no_second_execution)
    titles = site.build_site(LESSONS, tmp_path / "site", executed=executed_lessons, progress=False)
    assert [stem for stem, _ in titles] == [pathlib.Path(s).stem for s in sources]
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    for stem, title in titles:
        assert title.startswith("Lesson ") and f'href="lessons/{stem}/"' in index
        page = tmp_path / "site" / "lessons" / stem / "index.html"
        assert page.exists(), f"no page for {stem}"
        figures = _figures(nbformat.read(executed_lessons / f"{stem}.ipynb", as_version=4))
        shown = _shown_images(page)
        assert len(shown) == figures, f"{stem}: {figures} figures in the notebook, {len(shown)} on its page"
        assert all(image.width > 50 and image.height > 50 for image in shown)
        if "plt.show()" in (LESSONS / f"{stem}.py").read_text(encoding="utf-8"):  # not a vacuous 0 == 0
            assert shown, f"{stem} shows plots, its page none"


NEW_LESSON = '''# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson {number}: a lesson added later

# %%
import matplotlib.pyplot as plt
plt.plot([0, 1, 4, 9])
plt.show()
'''


def test_new_lessons_are_picked_up_and_executed_when_not_given(tmp_path):
    lessons, executed = tmp_path / "lessons", tmp_path / "executed"
    lessons.mkdir()
    (lessons / "12_added_later.py").write_text(NEW_LESSON.format(number=12))
    (lessons / "helpers.py").write_text("VALUE = 1\n")  # not a jupytext lesson: no page
    site.execute_lesson(lessons / "12_added_later.py", executed)
    assert site.main(["--lessons", str(lessons), "--output", str(tmp_path / "site"), "--executed",
                 str(executed)]) == 0
    page = tmp_path / "site" / "lessons" / "12_added_later" / "index.html"
    assert "Lesson 12: a lesson added later" in page.read_text(encoding="utf-8")
    assert len(_shown_images(page)) == 1
    assert not (tmp_path / "site" / "lessons" / "helpers").exists()
    # A lesson added since: executed, as it is not among the executed ones, and the site is rebuilt in place.
    (lessons / "13_another.py").write_text(NEW_LESSON.format(number=13))
    assert [stem for stem, _ in site.build_site(lessons, tmp_path / "site", executed=executed, progress=False)] == [
        "12_added_later", "13_another"]
    assert len(_shown_images(tmp_path / "site" / "lessons" / "13_another" / "index.html")) == 1
    # A folder that is not a site is never emptied.
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("...")
    with pytest.raises(ValueError, match="refusing to build the site into"):
        site.build_site(lessons, tmp_path / "precious", executed=executed, progress=False)
    assert (tmp_path / "precious" / "thesis.tex").exists()
