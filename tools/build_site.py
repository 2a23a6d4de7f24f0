"""The lessons as a website, every figure included: ``python tools/build_site.py`` from the repository root
(needs ``pip install -e ".[docs]"``; then open site/index.html).

A tool of the repository, not of the installed package: the lessons it renders live in the checkout.

The committed notebooks ``lessons/*.ipynb`` hold their outputs and figures (``tools/execute_lessons.py`` stores
them; the tests keep them current), so the site renders them as they are. A lesson whose notebook is not its
jupytext source executed (the source was edited since) is executed first, in a fresh working folder, and
``--execute`` executes every lesson afresh; notebooks already executed elsewhere (by the test suite) can be
passed in ``executed`` and are used as they are. MkDocs and mkdocs-jupyter render them into a static site:
``site/index.html`` lists the lessons, ``site/lessons/<lesson>/index.html`` is each one, its figures embedded
in the page as PNG data.

The pages need nothing from elsewhere. Formulas are converted from TeX to MathML while the site is built
(``tools/tex_to_mathml.py``), which browsers render themselves, and the MathJax loader that nbconvert writes
into every page is taken out; the theme asks no font server. Code lines wrap within the page; wide printed
tables scroll sideways.

The site is built in a temporary folder and then put in place. The output folder holds the list of the
files the build wrote (``.minivgg-site``): a rebuild replaces those and deletes the ones no longer generated,
and never touches any other file; a non-empty folder without that list is refused, as is a build that would
overwrite a file it did not write.

Why MkDocs + mkdocs-jupyter rather than Jupyter Book: both install from PyPI, but Jupyter Book 2 renders with
the Node.js MyST engine (a JavaScript runtime to install besides Python), and Jupyter Book 1 is a Sphinx
project (Sphinx, the book theme, MyST-NB, ...) that is slower to build and whose line is no longer developed.
mkdocs-jupyter is one plugin on a small, Python-only site generator; it renders a notebook with nbconvert, as
Jupyter does, so the page shows what the notebook showed. Lessons are found by globbing ``lessons/*.py``
for jupytext sources, so a new lesson appears on the site with no change here.
"""
import os
import re
import shutil
import sys
import tempfile

from execute_lessons import execute_lesson, lesson_sources, stored_executed_notebook
from tex_to_mathml import markdown_with_mathml

__all__ = ["lesson_sources", "lesson_title", "execute_lesson", "build_site", "MANIFEST", "main"]

MANIFEST = ".minivgg-site"  # in the output folder: the files the last build wrote, one relative path a line


def lesson_title(notebook, default):
    """The first markdown heading of a notebook (``# Lesson 1: ...``), or ``default`` if it has none."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return default


def _index_page(titles):
    lines = ["# minivgg: the lessons", "",
             "The VGG paper (Simonyan & Zisserman, ICLR 2015) in readable Python, one idea a lesson. Every page "
             "below is its lesson executed: the figures and numbers are what the code printed, and the tests "
             "execute the lessons again to keep them so. To run them yourself: "
             "`pip install -e \".[lessons]\"` and `jupyter lab lessons/` in the repository.",
             ""]
    lines += [f"- [{title}](lessons/{stem}.ipynb)" for stem, title in titles]
    return "\n".join(lines) + "\n"


_STYLE = """.md-grid { max-width: 1600px; }
/* code lines wrap within the page instead of running past its edge */
.jupyter-wrapper .jp-InputArea pre, .jupyter-wrapper .jp-InputArea code { white-space: pre-wrap; overflow-wrap: anywhere; }
/* the lessons print tables (model summaries, error tables): a wide one scrolls rather than wrap its rows */
.jupyter-wrapper .jp-OutputArea-output pre { white-space: pre; overflow-x: auto; }
/* formulas (MathML): a display formula on its own line, scrolling if it is wider than the column */
math[display="block"] { display: block math; margin: 0.8em 0; overflow-x: auto; font-size: 1.1em; }
math { font-size: 1.05em; }
"""

# nbconvert writes this into every page: a script from elsewhere, and no use once the formulas are MathML.
_MATHJAX_LOADER = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.DOTALL)


def _mkdocs_config(docs, output, titles):
    # A plain dict written as YAML-compatible JSON: JSON is a subset of YAML, so no YAML writer is needed.
    return {
        "site_name": "minivgg lessons",
        "docs_dir": docs,
        "site_dir": output,
        "theme": {"name": "material", "font": False},  # font: no request to an external font server
        "extra_css": ["lessons.css"],
        # execute: the notebooks come executed; cache: off, it would write .cache/ into the current folder.
        "plugins": [{"mkdocs-jupyter": {"execute": False, "include": ["*.ipynb"], "include_source": True,
                                        "cache": False}}],
        "nav": [{"Lessons": "index.md"}] + [{title: f"lessons/{stem}.ipynb"} for stem, title in titles],
    }


def _stage_notebook(source, destination):
    """Copy an executed notebook to where MkDocs reads it, its formulas as MathML; how many it converted."""
    import nbformat

    notebook = nbformat.read(source, as_version=4)
    formulas = 0
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type == "markdown":
            try:
                cell.source, found = markdown_with_mathml(cell.source)
            except ValueError as error:
                raise ValueError(f"{os.path.basename(source)}, cell {number}: {error}") from None
            formulas += found
    nbformat.write(notebook, destination)
    return formulas


def _files_under(folder):
    return sorted(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
                  for root, _, names in os.walk(folder) for name in names)


def _generated_files(output):
    """The files an earlier build wrote into ``output`` (an empty set for a missing or empty folder); a
    ``ValueError`` for a folder of other things."""
    if not os.path.exists(output) or (os.path.isdir(output) and not os.listdir(output)):
        return set()
    manifest = os.path.join(output, MANIFEST)
    if not os.path.isdir(output) or not os.path.isfile(manifest):
        raise ValueError(f"refusing to build the site into {output}: it is not empty and is not a site this tool "
                         f"built (no {MANIFEST} listing its files); choose a new or empty folder")
    with open(manifest, encoding="utf-8") as handle:
        listed = {line.strip() for line in handle if line.strip()}
    for path in listed:  # a damaged list must not send a deletion outside the folder
        if os.path.isabs(path) or os.path.normpath(path).replace(os.sep, "/") != path or path.startswith(".."):
            raise ValueError(f"refusing to build the site into {output}: {MANIFEST} lists {path!r}, which is not "
                             f"a file inside it")
    return listed


def _put_in_place(built, output):
    """Copy the site built in ``built`` into ``output``: its files replaced, the previous build's files that are no
    longer generated deleted, every other file left as it is."""
    previous = _generated_files(output)
    generated = _files_under(built)
    clashes = [path for path in generated if os.path.lexists(os.path.join(output, path)) and path not in previous]
    if clashes:
        raise ValueError(f"refusing to build the site into {output}: {clashes[0]} is there and an earlier build "
                         f"did not write it" + (f" ({len(clashes) - 1} more)" if len(clashes) > 1 else ""))
    for path in generated:
        destination = os.path.join(output, path)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copyfile(os.path.join(built, path), destination + ".partial")
        os.replace(destination + ".partial", destination)
    for path in sorted(previous - set(generated) - {MANIFEST}):
        stale = os.path.join(output, path)
        if os.path.isfile(stale) and not os.path.islink(stale):
            os.remove(stale)
        folder = os.path.dirname(stale)
        while os.path.abspath(folder) != os.path.abspath(output) and os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)  # a folder the build made, now empty
            folder = os.path.dirname(folder)
    with open(os.path.join(output, MANIFEST + ".partial"), "w", encoding="utf-8") as handle:
        handle.write("".join(f"{path}\n" for path in [MANIFEST] + generated))
    os.replace(os.path.join(output, MANIFEST + ".partial"), os.path.join(output, MANIFEST))


def build_site(lessons="lessons", output="site", executed=None, execute=False, timeout=600, progress=True):
    """Render the executed lessons into an HTML site at ``output``.

    Parameters
    ----------
    lessons : the folder of jupytext lesson sources (and their committed executed notebooks)
    output : the site folder to write: new, empty, or a site this function built before
    executed : optional folder of already executed notebooks, ``<lesson>.ipynb``, used first
    execute : execute every lesson not found in ``executed``, even those whose committed notebook is current
    timeout : seconds a cell may run
    progress : a tqdm bar over the lessons

    Returns the list of ``(lesson name, title)`` on the site, in order. Each lesson's notebook is the first of:
    ``executed/<lesson>.ipynb``; the committed ``<lesson>.ipynb`` if it is its source executed (unless
    ``execute``); its source, executed now.
    """
    import json

    import nbformat
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    from minivgg.progress import progress_bar

    output = os.path.abspath(os.fspath(output))
    _generated_files(output)  # refuse a folder of other things before any work
    titles = []
    with tempfile.TemporaryDirectory() as staging:
        docs = os.path.join(staging, "docs")
        pages = os.path.join(docs, "lessons")
        os.makedirs(pages)
        for source in progress_bar(lesson_sources(lessons), desc="lessons", unit="lesson", disable=not progress):
            stem = os.path.splitext(os.path.basename(source))[0]
            ready = os.path.join(os.fspath(executed), f"{stem}.ipynb") if executed is not None else None
            if ready is None or not os.path.exists(ready):
                ready = None if execute else stored_executed_notebook(source)
            if ready is None:
                ready = execute_lesson(source, os.path.join(staging, "executed"), timeout=timeout)
            page = os.path.join(pages, f"{stem}.ipynb")
            _stage_notebook(ready, page)
            titles.append((stem, lesson_title(nbformat.read(page, as_version=4), stem)))
        with open(os.path.join(docs, "index.md"), "w", encoding="utf-8") as handle:
            handle.write(_index_page(titles))
        with open(os.path.join(docs, "lessons.css"), "w", encoding="utf-8") as handle:
            handle.write(_STYLE)
        built = os.path.join(staging, "site")
        config_file = os.path.join(staging, "mkdocs.yml")
        with open(config_file, "w", encoding="utf-8") as handle:
            json.dump(_mkdocs_config(docs, built, titles), handle, indent=1)
        build(load_config(config_file=config_file))
        for page in _files_under(built):
            if page.endswith(".html"):
                path = os.path.join(built, page)
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
                if _MATHJAX_LOADER.search(text):
                    with open(path, "w", encoding="utf-8") as handle:
                        handle.write(_MATHJAX_LOADER.sub("", text))
        os.makedirs(output, exist_ok=True)
        _put_in_place(built, output)
    return titles


def main(argv=None):
    """``python tools/build_site.py [--lessons DIR] [--output DIR] [--execute] [--executed DIR] [--timeout S]``;
    the exit code. Errors are reported as every minivgg command reports them (``minivgg.cli.program.run_guarded``)."""
    import argparse

    from minivgg.cli.options import positive_int
    from minivgg.cli.program import run_guarded

    parser = argparse.ArgumentParser(prog="build_site", description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", default="lessons", help="folder of jupytext lessons (default: lessons)")
    parser.add_argument("--output", default="site", help="site folder to write (default: site)")
    parser.add_argument("--execute", action="store_true",
                        help="execute every lesson afresh instead of rendering the committed executed notebooks")
    parser.add_argument("--executed", default=None, help="folder of executed <lesson>.ipynb to use as they are")
    parser.add_argument("--timeout", type=positive_int, default=600, help="seconds a cell may run (default 600)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    context = {"program": "build_site", "debug": False}

    def build_from_arguments():
        args = parser.parse_args(argv)
        context["debug"] = args.debug
        try:  # name a missing docs extra before any lesson runs
            import latex2mathml  # noqa: F401
            import mkdocs_jupyter  # noqa: F401
            from nbclient.exceptions import CellExecutionError
        except ImportError as error:
            raise ImportError(f"{error.name}: the site needs the docs extra: pip install -e \".[docs]\"") from error
        try:
            titles = build_site(args.lessons, args.output, executed=args.executed, execute=args.execute,
                                timeout=args.timeout)
        except CellExecutionError as error:
            print(f"build_site: error: a lesson failed, no site written:\n{error}", file=sys.stderr)
            return 1
        print(f"{len(titles)} lessons -> {os.path.join(os.path.abspath(args.output), 'index.html')}")
        return 0

    return run_guarded(context, build_from_arguments)


if __name__ == "__main__":
    sys.exit(main())
