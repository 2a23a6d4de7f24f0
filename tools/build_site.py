"""The lessons as a website, every figure included: ``python tools/build_site.py`` from the repository root
(needs ``pip install -e ".[docs]"``; then open site/index.html).

A tool of the repository, not of the installed package: the lessons it renders live in the checkout.

The notebooks in ``lessons/`` are committed without outputs (the jupytext ``.py`` beside each is the
reviewable source), so a learner browsing the repository sees no figure. ``build_site`` executes every lesson
from its jupytext source, each in a fresh working folder (``execute_lesson``, with nbclient, as
``tests/test_lessons.py`` does), and renders the executed notebooks with MkDocs and mkdocs-jupyter into a
static site: ``site/index.html`` lists the lessons, ``site/lessons/<lesson>/index.html`` is each one, its
figures embedded in the page as PNG data. Notebooks already executed (by the test suite, say) can be passed
in ``executed`` and are used as they are.

Why MkDocs + mkdocs-jupyter rather than Jupyter Book: both install from PyPI, but Jupyter Book 2 renders with
the Node.js MyST engine (a JavaScript runtime to install besides Python), and Jupyter Book 1 is a Sphinx
project (Sphinx, the book theme, MyST-NB, ...) that is slower to build and whose line is no longer developed.
mkdocs-jupyter is one plugin on a small, Python-only site generator; it renders a notebook with nbconvert, as
Jupyter does, so the page shows what the notebook showed. Lessons are found by globbing ``lessons/*.py``
for jupytext sources, so a new lesson appears on the site with no change here.

The site folder only ever loses what this tool put there. MkDocs builds into a staging folder; its files are
then copied into the site folder, which lists what it holds of ours in ``.minivgg-site.json`` (``MANIFEST``).
A rebuild replaces and removes only the files that list names: a user's ``notes.txt`` or ``photos/`` beside
the site stay, and a folder that holds files but no such list (a website of someone else's, a folder of
notes) is refused before any lesson runs, as is a generated file that would land on a user's file.
"""
import os
import shutil
import sys
import tempfile

__all__ = ["MANIFEST", "lesson_sources", "lesson_title", "execute_lesson", "build_site", "main"]

MANIFEST = ".minivgg-site.json"  # in the site folder: the files this tool wrote there


def lesson_sources(folder="lessons"):
    """The jupytext sources in ``folder`` (``.py`` files with a jupytext header), in file-name order."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no lessons folder at {folder}; run from the repository root or pass --lessons")
    sources = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith(".py") and os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                if "jupytext:" in handle.read(400):
                    sources.append(path)
    if not sources:
        raise FileNotFoundError(f"{folder} holds no jupytext lesson (.py with a jupytext header)")
    return sources


def lesson_title(notebook, default):
    """The first markdown heading of a notebook (``# Lesson 1: ...``), or ``default`` if it has none."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return default


def _write_notebook(notebook, path):
    import nbformat

    from minivgg.files import atomic_write

    atomic_write(path, lambda temporary: nbformat.write(notebook, temporary))


def execute_lesson(source, folder, timeout=600, working_folder=None, kernel_name="python3"):
    """Run a lesson top to bottom and keep the executed notebook: ``folder/<lesson>.ipynb``.

    Parameters
    ----------
    source : a lesson's jupytext ``.py`` (or its ``.ipynb``)
    folder : where the executed notebook is written (atomically)
    timeout : seconds a cell may run
    working_folder : the lesson's current directory (default: a fresh temporary folder, removed after)
    kernel_name : the Jupyter kernel to run it in

    Returns the path of the executed notebook. A cell that raises stops the lesson with nbclient's
    ``CellExecutionError`` (naming the cell and its traceback), and nothing is written.
    """
    import jupytext
    import nbclient

    notebook = jupytext.read(source)
    os.makedirs(folder, exist_ok=True)
    destination = os.path.join(folder, os.path.splitext(os.path.basename(source))[0] + ".ipynb")
    with tempfile.TemporaryDirectory() as scratch:
        client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name=kernel_name,
                                         resources={"metadata": {"path": os.fspath(working_folder or scratch)}})
        client.execute()
    _write_notebook(notebook, destination)
    return destination


def _index_page(titles):
    lines = ["# minivgg: the lessons", "",
             "The VGG paper (Simonyan & Zisserman, ICLR 2015) in readable Python, one idea a lesson. Every page "
             "below was executed when this site was built: the figures and numbers are what the code printed.",
             ""]
    lines += [f"- [{title}](lessons/{stem}.ipynb)" for stem, title in titles]
    return "\n".join(lines) + "\n"


# The lessons print tables (model summaries, error tables) wider than the theme's text column: give the page
# more width and let a wide output scroll rather than wrap its rows.
_STYLE = """.md-grid { max-width: 1600px; }
.jupyter-wrapper .jp-OutputArea-output pre { white-space: pre; overflow-x: auto; }
"""


_MATHJAX = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"


def _mkdocs_config(docs, output, titles):
    # A plain dict written as YAML-compatible JSON: JSON is a subset of YAML, so no YAML writer is needed.
    return {
        "site_name": "minivgg lessons",
        "docs_dir": docs,
        "site_dir": output,
        "theme": {"name": "material", "font": False},  # font: no request to an external font server
        "extra_css": ["lessons.css"],
        # execute: the notebooks come executed; cache: off, it would write .cache/ into the current folder.
        # custom_mathjax_url: the plugin's default is none at all, which leaves the lessons' TeX unrendered;
        # this is the MathJax nbconvert itself loads (the page needs the network for it, as in Jupyter).
        "plugins": [{"mkdocs-jupyter": {"execute": False, "include": ["*.ipynb"], "include_source": True,
                                        "cache": False, "custom_mathjax_url": _MATHJAX}}],
        "nav": [{"Lessons": "index.md"}] + [{title: f"lessons/{stem}.ipynb"} for stem, title in titles],
    }


def build_site(lessons="lessons", output="site", executed=None, timeout=600, progress=True):
    """Execute the lessons (or take them from ``executed``) and render them into an HTML site at ``output``.

    Parameters
    ----------
    lessons : the folder of jupytext lesson sources
    output : the site folder to write: new, empty, or one this tool wrote (only its own files are replaced)
    executed : optional folder of already executed notebooks, ``<lesson>.ipynb``; a lesson found there is not
        executed again, one missing is executed
    timeout : seconds a cell may run
    progress : a tqdm bar over the lessons

    Returns the list of ``(lesson name, title)`` on the site, in order.
    """
    import json

    import nbformat
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from tqdm.auto import tqdm

    from minivgg.files import check_output_folder

    output = os.path.abspath(os.fspath(output))
    check_output_folder(output, "--output", marker=MANIFEST, empty_or_marked=True)
    earlier = _read_manifest(output)
    titles = []
    with tempfile.TemporaryDirectory() as staging:
        docs = os.path.join(staging, "docs")
        pages = os.path.join(docs, "lessons")
        os.makedirs(pages)
        for source in tqdm(lesson_sources(lessons), desc="lessons", unit="lesson", disable=not progress):
            stem = os.path.splitext(os.path.basename(source))[0]
            ready = os.path.join(os.fspath(executed), f"{stem}.ipynb") if executed is not None else None
            if ready is not None and os.path.exists(ready):
                shutil.copyfile(ready, os.path.join(pages, f"{stem}.ipynb"))
            else:
                execute_lesson(source, pages, timeout=timeout)
            titles.append((stem, lesson_title(nbformat.read(os.path.join(pages, f"{stem}.ipynb"), as_version=4),
                                               stem)))
        with open(os.path.join(docs, "index.md"), "w", encoding="utf-8") as handle:
            handle.write(_index_page(titles))
        with open(os.path.join(docs, "lessons.css"), "w", encoding="utf-8") as handle:
            handle.write(_STYLE)
        config_file = os.path.join(staging, "mkdocs.yml")
        built = os.path.join(staging, "site")
        with open(config_file, "w", encoding="utf-8") as handle:
            json.dump(_mkdocs_config(docs, built, titles), handle, indent=1)
        build(load_config(config_file=config_file))
        _install(built, output, earlier)
    return titles


def _read_manifest(output):
    """The files (relative paths) the site folder's manifest lists: empty for a new or empty folder; ValueError
    for a manifest that is not one this tool wrote."""
    import json

    from minivgg.files import MARK_KEY, MARK_VALUE, require_regular_file

    path = os.path.join(output, MANIFEST)
    if not os.path.lexists(path):
        return []
    try:
        with open(require_regular_file(path, "site manifest"), encoding="utf-8") as handle:
            record = json.load(handle)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"{path} is damaged ({error}); nothing was changed: remove the site folder by hand") from None
    files = record.get("files") if isinstance(record, dict) and record.get(MARK_KEY) == MARK_VALUE else None
    if not isinstance(files, list) or not all(isinstance(name, str) and _inside(name) for name in files):
        raise ValueError(f"{path} is not a list of files this tool wrote; nothing was changed")
    return files


def _inside(name):
    """Whether a manifest entry is a relative path that stays inside the site folder."""
    parts = name.replace("\\", "/").split("/")
    return bool(name) and not os.path.isabs(name) and ".." not in parts and name != MANIFEST


def _install(built, output, earlier):
    """Copy the freshly built site (folder ``built``) into ``output``, replacing and removing only the files
    ``earlier`` lists (the previous build's manifest). Refused, before anything changes, when a new file would
    land on a file or folder that is not the previous build's."""
    from minivgg.files import atomic_write, marked, write_json

    new = sorted(os.path.relpath(os.path.join(folder, name), built).replace(os.sep, "/")
                 for folder, _, names in os.walk(built) for name in names)
    ours = set(earlier)
    clashes = [name for name in new if name not in ours and os.path.lexists(os.path.join(output, name))]
    clashes += [name for name in new if any(os.path.isfile(os.path.join(output, *name.split("/")[:depth]))
                                            and "/".join(name.split("/")[:depth]) not in ours
                                            for depth in range(1, name.count("/") + 1))]
    if clashes:
        raise ValueError(f"--output {output}: the site would replace {', '.join(sorted(set(clashes))[:5])}, which this "
                         f"tool did not write; nothing was changed: move it away or choose another folder")
    os.makedirs(output, exist_ok=True)
    # Listed first, so that a build cut short leaves every file it wrote listed, and the next build replaces it.
    write_json(os.path.join(output, MANIFEST), marked({"files": sorted(ours | set(new))}))
    for name in new:
        target = os.path.join(output, *name.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        atomic_write(target, lambda temporary, name=name: shutil.copyfile(os.path.join(built, *name.split("/")),
                                                                           temporary))
    for name in sorted(ours - set(new)):  # the previous build's pages that this one no longer has
        target = os.path.join(output, *name.split("/"))
        if os.path.isfile(target) and not os.path.islink(target):
            os.remove(target)
            folder = os.path.dirname(target)
            while folder != output and not os.listdir(folder):
                os.rmdir(folder)
                folder = os.path.dirname(folder)
    write_json(os.path.join(output, MANIFEST), marked({"files": new}))


def main(argv=None):
    """``python tools/build_site.py [--lessons DIR] [--output DIR] [--executed DIR] [--timeout S]``; the exit
    code. Errors are reported as every minivgg command reports them (``minivgg.cli.program.run_guarded``)."""
    import argparse

    from minivgg.cli.options import positive_int
    from minivgg.cli.program import run_guarded

    parser = argparse.ArgumentParser(prog="build_site", description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", default="lessons", help="folder of jupytext lessons (default: lessons)")
    parser.add_argument("--output", default="site", help="site folder to write (default: site)")
    parser.add_argument("--executed", default=None, help="folder of executed <lesson>.ipynb to use as they are")
    parser.add_argument("--timeout", type=positive_int, default=600, help="seconds a cell may run (default 600)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    context = {"program": "build_site", "debug": False}

    def build_from_arguments():
        args = parser.parse_args(argv)
        context["debug"] = args.debug
        try:  # name a missing docs extra before any lesson runs
            import mkdocs_jupyter  # noqa: F401
            from nbclient.exceptions import CellExecutionError
        except ImportError as error:
            raise ImportError(f"{error.name}: the site needs the docs extra: pip install -e \".[docs]\"") from error
        try:
            titles = build_site(args.lessons, args.output, executed=args.executed, timeout=args.timeout)
        except CellExecutionError as error:
            print(f"build_site: error: a lesson failed, no site written:\n{error}", file=sys.stderr)
            return 1
        print(f"{len(titles)} lessons -> {os.path.join(os.path.abspath(args.output), 'index.html')}")
        return 0

    return run_guarded(context, build_from_arguments)


if __name__ == "__main__":
    sys.exit(main())
