"""The lessons as a site: built from the notebooks tests/lessons/test_lessons.py executed (no second
execution), every lesson a page, every figure of the executed notebook an image on that page, every formula
MathML that renders without a script from elsewhere (checked in Chromium where it is installed), and an
output folder of other files never emptied."""
import base64
import html
import io
import json
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("jupytext")
pytest.importorskip("mkdocs")
pytest.importorskip("mkdocs_jupyter")

from PIL import Image  # noqa: E402

import build_site as site  # noqa: E402  (tools/build_site.py, on the tests' path: pyproject.toml)
from tex_to_mathml import markdown_with_mathml  # noqa: E402
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


def _formulas(notebook):
    """How many TeX formulas the notebook's markdown holds."""
    return sum(markdown_with_mathml(cell.source)[1] for cell in notebook.cells if cell.cell_type == "markdown")


def _prose(page):
    """A page's text outside scripts, styles and code: where a formula left as TeX would show."""
    text = page.read_text(encoding="utf-8")
    text = re.sub(r'<div class="clipboard-copy-txt".*?</div>', " ", text, flags=re.DOTALL)  # a copy button's code
    for element in ("script", "style", "pre", "code", "math"):
        text = re.sub(rf"<{element}\b.*?</{element}>", " ", text, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


@pytest.fixture(scope="module")
def built_site(executed_lessons, tmp_path_factory):  # noqa: F811
    """The site, built once from the notebooks the session executed (executing any not executed yet)."""
    for source in site.lesson_sources(LESSONS):  # only when this file runs without test_lessons.py before it
        if not (executed_lessons / f"{pathlib.Path(source).stem}.ipynb").exists():
            site.execute_lesson(source, executed_lessons)

    def no_second_execution(*args, **kwargs):
        raise AssertionError("build_site executed a lesson that the test suite had executed already")

    output = tmp_path_factory.mktemp("built") / "site"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(site, "execute_lesson", no_second_execution)
        titles = site.build_site(LESSONS, output, executed=executed_lessons, progress=False)
    return output, titles


def test_every_lesson_is_a_page_showing_its_figures_and_formulas(built_site, executed_lessons):  # noqa: F811
    output, titles = built_site
    assert [stem for stem, _ in titles] == [pathlib.Path(s).stem for s in site.lesson_sources(LESSONS)]
    index = (output / "index.html").read_text(encoding="utf-8")
    formulas_in_all = 0
    for stem, title in titles:
        assert title.startswith("Lesson ") and f'href="lessons/{stem}/"' in index
        page = output / "lessons" / stem / "index.html"
        assert page.exists(), f"no page for {stem}"
        notebook = nbformat.read(executed_lessons / f"{stem}.ipynb", as_version=4)
        figures, shown = _figures(notebook), _shown_images(page)
        assert len(shown) == figures, f"{stem}: {figures} figures in the notebook, {len(shown)} on its page"
        assert all(image.width > 50 and image.height > 50 for image in shown)
        if "plt.show()" in (LESSONS / f"{stem}.py").read_text(encoding="utf-8"):  # not a vacuous 0 == 0
            assert shown, f"{stem} shows plots, its page none"
        text = page.read_text(encoding="utf-8")
        formulas = _formulas(notebook)
        formulas_in_all += formulas
        assert text.count("<math ") == formulas, f"{stem}: {formulas} formulas, {text.count('<math ')} MathML"
        prose = _prose(page)
        assert "$" not in prose and not re.search(r"\\[A-Za-z]+", prose), f"{stem}: TeX left on the page"
        # nothing fetched from elsewhere: no MathJax, no script or style sheet from another host
        assert "mathjax" not in text.lower()
        assert not re.search(r"<(?:script|img)\b[^>]*\bsrc=\"(?:https?:)?//", text)
        assert not re.search(r"<link\b[^>]*\bhref=\"(?:https?:)?//", text)
    assert formulas_in_all > 40  # lessons 1-3 write theirs in TeX


def _chromium():
    return next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


# Appended to a copy of a page: the layout Chromium gave the formulas and the code, written into the page.
PROBE = """<script>
window.addEventListener("load", function () {
  function box(e) { var r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }
  function boxes(selector, f) { return Array.prototype.map.call(document.querySelectorAll(selector), f); }
  var report = document.createElement("pre");
  report.id = "layout-report";
  report.textContent = JSON.stringify({
    maths: boxes("math", box),
    fractions: boxes("mfrac", function (m) { return [box(m.children[0]), box(m.children[1])]; }),
    powers: boxes("msup", function (m) { return [box(m.children[0]), box(m.children[1])]; }),
    code: boxes(".jp-InputArea pre", function (p) { return [p.scrollWidth, p.clientWidth]; })});
  document.body.appendChild(report);
});
</script>"""
WINDOW = (1280, 1400)


def _run_chromium(browser, page, *arguments, profile):
    """Chromium headless on a local page, offline: every host name resolves to nothing."""
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--host-resolver-rules=MAP * ~NOTFOUND", f"--window-size={WINDOW[0]},{WINDOW[1]}",
               "--hide-scrollbars", "--virtual-time-budget=5000", *arguments, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def test_formulas_and_code_as_chromium_renders_them(built_site, tmp_path):
    """Where Chromium is installed: every formula of every page has a size, fractions stand their numerator
    above their denominator and powers raise their exponent (so the browser laid them out as MathML, not as a
    line of letters); no code cell needs sideways scrolling; and a screenshot of lesson 3 shows its formulas."""
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install chromium): formulas not checked as rendered")
    output, titles = built_site
    for stem, _ in titles:
        page = output / "lessons" / stem / "index.html"
        probe = page.with_name("probe.html")
        probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = _run_chromium(browser, probe, "--dump-dom", profile=tmp_path / f"profile-{stem}")
        found = re.search(r'<pre id="layout-report">(.*?)</pre>', dom, flags=re.DOTALL)
        assert found, f"{stem}: the page did not load in Chromium"
        layout = json.loads(html.unescape(found.group(1)))
        assert len(layout["maths"]) == page.read_text(encoding="utf-8").count("<math ")
        for left, top, right, bottom in layout["maths"]:
            assert right - left > 3 and bottom - top > 5, f"{stem}: a formula laid out with no size"
        for numerator, denominator in layout["fractions"]:
            assert numerator[3] <= denominator[1] + 0.5, f"{stem}: a fraction's numerator is not above its denominator"
        for base, exponent in layout["powers"]:
            assert exponent[1] < base[1] - 1, f"{stem}: an exponent is not raised"
        overflowing = [width - visible for width, visible in layout["code"] if width > visible + 1]
        assert not overflowing, f"{stem}: {len(overflowing)} code cells run past the page's edge"
        if stem.startswith("03_"):
            screenshot = tmp_path / "lesson03.png"
            _run_chromium(browser, probe, f"--screenshot={screenshot}", profile=tmp_path / "profile-shot")
            picture = np.asarray(Image.open(screenshot).convert("L"), dtype=float)
            assert picture.shape == (WINDOW[1], WINDOW[0])
            shown = [box for box in layout["maths"] if box[3] < WINDOW[1] and box[0] < WINDOW[0]]
            assert shown, "lesson 3's first screen shows no formula"
            for left, top, right, bottom in shown:  # every formula on the first screen is drawn: dark ink
                region = picture[int(top):int(bottom) + 1, int(left):int(right) + 1]
                assert region.min() < 100 and region.std() > 20, f"formula at {left:.0f},{top:.0f} not drawn"


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


def test_a_rebuild_deletes_only_what_a_build_wrote(tmp_path):
    lessons, executed, output = tmp_path / "lessons", tmp_path / "executed", tmp_path / "site"
    lessons.mkdir()
    for number in (12, 13):
        (lessons / f"{number}_lesson.py").write_text(NEW_LESSON.format(number=number))
        site.execute_lesson(lessons / f"{number}_lesson.py", executed)
    site.build_site(lessons, output, executed=executed, progress=False)
    (output / "notes.txt").write_text("mine")  # the owner's files, put there after the first build
    (output / "lessons" / "photos").mkdir()
    (output / "lessons" / "photos" / "cat.jpg").write_bytes(b"...")
    (lessons / "13_lesson.py").unlink()  # a lesson removed: its page goes, the owner's files stay
    site.build_site(lessons, output, executed=executed, progress=False)
    assert (output / "notes.txt").read_text() == "mine" and (output / "lessons" / "photos" / "cat.jpg").exists()
    assert not (output / "lessons" / "13_lesson").exists() and (output / "lessons" / "12_lesson" / "index.html").exists()
    listed = (output / site.MANIFEST).read_text().split()
    assert "lessons/12_lesson/index.html" in listed and "notes.txt" not in listed
    # A file the build would overwrite that it did not write: refused, and nothing changed.
    (output / site.MANIFEST).write_text("".join(f"{path}\n" for path in listed if path != "lessons/12_lesson/index.html"))
    (output / "lessons" / "12_lesson" / "index.html").write_text("the owner's page")
    with pytest.raises(ValueError, match="12_lesson/index.html is there and an earlier build did not write it"):
        site.build_site(lessons, output, executed=executed, progress=False)
    assert (output / "lessons" / "12_lesson" / "index.html").read_text() == "the owner's page"
    # A damaged list cannot send a deletion outside the folder.
    (output / site.MANIFEST).write_text("../precious.txt\n")
    with pytest.raises(ValueError, match="not a file inside it"):
        site.build_site(lessons, output, executed=executed, progress=False)


def test_a_website_folder_of_other_files_is_refused_whole(tmp_path):
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    (lessons / "12_lesson.py").write_text(NEW_LESSON.format(number=12))
    website = tmp_path / "www"
    (website / "photos").mkdir(parents=True)
    for name in ("index.html", "notes.txt", "photos/cat.jpg"):
        (website / name).write_text(name)
    assert site.main(["--lessons", str(lessons), "--output", str(website)]) == 1
    assert sorted(p.relative_to(website).as_posix() for p in website.rglob("*")) == [
        "index.html", "notes.txt", "photos", "photos/cat.jpg"]


def test_the_committed_notebook_is_rendered_unless_its_source_changed(tmp_path, monkeypatch):
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    source = lessons / "12_lesson.py"
    source.write_text(NEW_LESSON.format(number=12).replace("# # Lesson 12: a lesson added later",
                                                            "# # Lesson 12: a lesson added later\n#\n# $y = x^2$"))
    site.execute_lesson(source, lessons)  # as tools/execute_lessons.py stores it
    executions = []
    real = site.execute_lesson
    monkeypatch.setattr(site, "execute_lesson", lambda *a, **k: executions.append(a[0]) or real(*a, **k))
    site.build_site(lessons, tmp_path / "site", progress=False)
    assert executions == []
    page = (tmp_path / "site" / "lessons" / "12_lesson" / "index.html").read_text(encoding="utf-8")
    assert page.count("<math ") == 1 and "<msup>" in page
    source.write_text(source.read_text().replace("[0, 1, 4, 9]", "[0, 1, 8, 27]"))  # edited, not re-executed
    site.build_site(lessons, tmp_path / "site", progress=False)
    assert executions == [str(source)]
    site.build_site(lessons, tmp_path / "site", execute=True, progress=False)
    assert len(executions) == 2
