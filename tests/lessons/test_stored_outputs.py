"""The committed notebooks carry clean outputs, and the comparison that keeps them current can fail.

The comparison itself runs in tests/lessons/test_lessons.py, on the one execution of each lesson the suite
does; here, the committed notebooks are read as they are, and ``compare_outputs`` and ``output_noise`` are
given planted differences.
"""
import base64
import copy
import io
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("jupytext")

import execute_lessons as lessons  # noqa: E402  (tools/execute_lessons.py, on the tests' path: pyproject.toml)

LESSONS = pathlib.Path(__file__).resolve().parents[2] / "lessons"
NOTEBOOKS = sorted(LESSONS.glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_committed_notebook_holds_its_outputs_without_noise(notebook):
    stored = nbformat.read(notebook, as_version=4)
    code = [cell for cell in stored.cells if cell.cell_type == "code"]
    assert any(cell.outputs for cell in code), (f"{notebook.name} holds no outputs: store them with "
                                                f"{lessons.REGENERATE} {notebook.stem.split('_')[0]}")
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), (
        f"{notebook.name} was not executed top to bottom in one kernel: {lessons.REGENERATE}")
    assert lessons.output_noise(stored, folders=(str(LESSONS.parent),)) == []
    assert "version" not in stored.metadata.get("language_info", {})
    assert all("execution" not in cell.metadata for cell in code), "timings are stored: they change every run"
    # the notebook is the script's cells, ids included: regenerating an unchanged lesson changes no byte of them
    script = lessons.lesson_notebook(notebook.with_suffix(".py"))
    assert [(c.cell_type, c.source, c.id) for c in stored.cells] == [
        (c.cell_type, c.source, c.id) for c in script.cells], f"regenerate with: {lessons.REGENERATE} {notebook.stem}"


# ---- planted differences -----------------------------------------------------------------------------------

def _png(width, height):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _notebook(*outputs_per_cell, tags=()):
    notebook = nbformat.v4.new_notebook()
    for number, outputs in enumerate(outputs_per_cell):
        cell = nbformat.v4.new_code_cell(f"cell_{number}()", execution_count=number + 1, outputs=list(outputs))
        if tags:
            cell.metadata["tags"] = list(tags)
        notebook.cells.append(cell)
    return notebook


def _stream(text, name="stdout"):
    return nbformat.v4.new_output("stream", name=name, text=text)


def _display(**data):
    return nbformat.v4.new_output("display_data", data={key.replace("_", "/"): value for key, value in data.items()})


STORED = _notebook(
    [_stream("loss 2.302585 after 3 epochs\nparameters 138,357,544\n")],
    [_stream("relative error 3.3e-11 at h = 1e-05\n"), _display(image_png=_png(640, 480), text_plain="<Figure>")],
)


def _changed(edit):
    fresh = copy.deepcopy(STORED)
    edit(fresh.cells)
    return lessons.compare_outputs(STORED, fresh)


def _set_text(cells, index, text):
    cells[index].outputs[0]["text"] = text


def test_the_same_outputs_agree():
    assert lessons.compare_outputs(STORED, copy.deepcopy(STORED)) == []


def test_drift_within_the_tolerance_agrees():
    # the 7th digit of a decimal, a flipped last printed digit, a stream split in two, spaces re-aligned
    assert _changed(lambda c: _set_text(c, 0, "loss 2.302587  after 3 epochs\nparameters 138,357,544\n")) == []
    assert _changed(lambda c: _set_text(c, 1, "relative error 3.4e-11 at h = 1e-05\n")) == []
    assert _changed(lambda c: _set_text(c, 1, "relative error 9.9e-12 at h = 1e-05\n")) == []  # rounding noise
    assert _changed(lambda c: c[0].outputs.__setitem__(slice(None), [
        _stream("loss 2.302585 after "), _stream("3 epochs\nparameters 138,357,544\n")])) == []
    assert _changed(lambda c: c[1].outputs[1]["data"].__setitem__("image/png", _png(650, 470))) == []


@pytest.mark.parametrize("edit, words", [
    (lambda c: _set_text(c, 0, "loss 2.31 after 3 epochs\nparameters 138,357,544\n"), "stored 2.302585"),
    (lambda c: _set_text(c, 0, "loss 2.302585 after 3 epochs\nparameters 138,357,545\n"), "stored 544"),
    (lambda c: _set_text(c, 0, "loss 2.302585 after 4 epochs\nparameters 138,357,544\n"), "stored 3"),
    (lambda c: _set_text(c, 0, "accuracy 2.302585 after 3 epochs\nparameters 138,357,544\n"), "text differs"),
    (lambda c: _set_text(c, 1, "relative error 4.1e-09 at h = 1e-05\n"), "stored 3.3e-11"),
    (lambda c: _set_text(c, 1, "relative error -3.3e-11 at h = 1e-05\n"), "stored 3.3e-11"),
    (lambda c: _set_text(c, 1, "relative error 3.3e-11 at h = 1e-06\n"), "stored 1e-05"),  # a decade apart
    (lambda c: c[1].outputs.pop(), "1 figures or values stored, 0 now"),
    (lambda c: c[1].outputs[1]["data"].__setitem__("image/png", _png(640, 240)), "640x480 pixels, now 640x240"),
    (lambda c: c[0].outputs.append(_stream("Warning: careful\n", name="stderr")), "stderr appeared"),
    (lambda c: c[0].outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="no", traceback=[])),
     "ValueError"),
    (lambda c: c.append(nbformat.v4.new_code_cell("more()")), "code cells differ"),
])
def test_a_planted_difference_is_named(edit, words):
    differences = _changed(edit)
    assert differences and any(words in difference for difference in differences), differences


def test_numbers_of_a_cell_tagged_numbers_vary_are_left_out_but_its_words_are_not():
    stored = _notebook([_stream("one step 81.3 ms\n")], tags=[lessons.NUMBERS_VARY])
    fresh = copy.deepcopy(stored)
    fresh.cells[0].outputs[0]["text"] = "one step 143.9 ms\n"
    assert lessons.compare_outputs(stored, fresh) == []
    fresh.cells[0].outputs[0]["text"] = "one step 143.9 s\n"
    assert lessons.compare_outputs(stored, fresh)
    untagged = _notebook([_stream("one step 81.3 ms, 2.1x faster\n")])
    assert lessons.compare_outputs(untagged, _notebook([_stream("one step 81.3 ms, 3.5x faster\n")]))


def test_durations_and_speeds_are_never_compared():
    stored = _notebook([_stream("trained for 3 epochs (29 s), 1.2 GFLOP/s, 81.3 ms a step, 2 minutes\n")])
    fresh = _notebook([_stream("trained for 3 epochs (131 s), 0.4 GFLOP/s, 143.9 ms a step, 5 minutes\n")])
    assert lessons.compare_outputs(stored, fresh) == []
    more = _notebook([_stream("trained for 4 epochs (29 s), 1.2 GFLOP/s, 81.3 ms a step, 2 minutes\n")])
    assert "stored 3" in lessons.compare_outputs(stored, more)[0]
    stacked = _notebook([_stream("3 stacked layers\n")])  # a number before a word starting with s is no duration
    assert lessons.compare_outputs(stacked, _notebook([_stream("4 stacked layers\n")]))


@pytest.mark.parametrize("output, words", [
    (_stream("  0%|          | 0/3 [00:00<?, ?it/s]\r 33%|###3      | 1/3\n", name="stderr"), "stderr"),
    (_stream("epoch 1\r epoch 2\n"), "redraws a line"),
    (_stream("/home/learner/minivgg/minivgg/layers.py:12: RuntimeWarning: overflow\n"), "folder of this machine"),
    (_stream("loaded from C:\\Users\\learner\\run\n"), "folder of this machine"),
    (_display(**{"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text_plain": "0%"}), "widget"),
    (nbformat.v4.new_output("error", ename="KeyError", evalue="'x'", traceback=[]), "raised KeyError"),
])
def test_noise_in_outputs_is_named(output, words):
    problems = lessons.output_noise(_notebook([_stream("clean\n"), output]))
    assert problems and words in problems[0], problems
    assert lessons.output_noise(_notebook([_stream("clean, with 3 numbers: 1.5e-3, 7\n")])) == []


def test_a_folder_of_this_run_is_noise_wherever_it_is():
    notebook = _notebook([_stream("run written to /srv/lessons/scratch/run\n")])
    assert lessons.output_noise(notebook) == []
    assert "folder of this machine" in lessons.output_noise(notebook, folders=("/srv/lessons/scratch",))[0]


def test_lesson_names_on_the_command_line():
    sources = lessons.find_lessons(["3", "08b", "lessons/05_training_a_small_vgg.py", "03"], LESSONS)
    assert [pathlib.Path(s).stem.split("_")[0] for s in sources] == ["03", "08b", "05"]
    assert len(lessons.find_lessons([], LESSONS)) == len(NOTEBOOKS)
    with pytest.raises(ValueError, match="no lesson '99'.*the lessons are: 01_"):
        lessons.find_lessons(["99"], LESSONS)


def test_the_kernels_environment_fixes_what_would_change_the_outputs(monkeypatch):
    monkeypatch.setattr(lessons.shutil, "which", lambda name: None)  # no GPU
    base = {"PATH": "/bin", "PYTHONHASHSEED": "random", "MPLBACKEND": "Agg"}
    environment = lessons.kernel_environment(base, cpu_flags={"sse2", "avx2", "fma", "avx512f"})
    assert environment == {"PATH": "/bin", "PYTHONHASHSEED": "0", "NUMBA_ENABLE_CUDASIM": "1",
                           "OPENBLAS_CORETYPE": "Haswell"}
    assert "OPENBLAS_CORETYPE" not in lessons.kernel_environment(base, cpu_flags={"sse2", "avx"})  # no AVX2 kernels
    chosen = dict(base, OPENBLAS_CORETYPE="SkylakeX", NUMBA_ENABLE_CUDASIM="0")
    environment = lessons.kernel_environment(chosen, cpu_flags={"avx2", "fma"})
    assert environment["OPENBLAS_CORETYPE"] == "SkylakeX" and environment["NUMBA_ENABLE_CUDASIM"] == "0"
    assert base["MPLBACKEND"] == "Agg"  # the caller's mapping is left as it was
