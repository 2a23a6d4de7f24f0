"""No output path destroys a file (issue 28): every command checks all its outputs before any work starts, through
one function (``minivgg.files.check_outputs``). An output that is an input, a file minivgg did not write (unless
--overwrite), or a place that cannot be written is refused with one line naming the option, and a byte
snapshot of the folder shows nothing changed."""
import json
import os

import numpy as np
import pytest
from PIL import Image
from hostile_files import fifo, one_line_error, run, snapshot, tiny_weights
from tiny_imagenet import WNIDS, make_tiny_imagenet
from weight_file_writers import state_dict_of, write_torch_zip

import minivgg
from minivgg import weights


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_imagenet(tmp_path_factory.mktemp("tiny") / "ILSVRC2012")


@pytest.fixture
def no_evaluation(monkeypatch):
    """Fail the test if an evaluation starts: every refusal must come before the first image."""
    import importlib

    posteriors_module = importlib.import_module("minivgg.evaluation.posteriors")

    def evaluated(*args, **kwargs):
        raise AssertionError("an evaluation started before the outputs were checked")
    monkeypatch.setattr(posteriors_module, "posteriors", evaluated)


def torchvision_file(path):
    model = minivgg.vgg("A", weight_init="glorot", seed=0, num_classes=3, input_size=32, width_multiplier=0.125,
                        fc_width=16)
    write_torch_zip(path, state_dict_of(model))
    return path


# --- the cases ----------------------------------------------------------------------------------------

def test_convert_never_writes_its_destination_over_its_source(tmp_path, capsys):
    source = torchvision_file(tmp_path / "same.pth")
    os.link(source, tmp_path / "hard-link.pth")
    os.symlink(source, tmp_path / "soft-link.pth")
    before = snapshot(tmp_path)
    for destination in ("same.pth", "hard-link.pth", "soft-link.pth"):
        code, out, err = run(capsys, "convert", source, tmp_path / destination)
        assert code == 1 and one_line_error(err, "convert") and out == ""
        assert f"DST {tmp_path / destination} is the input {source}" in err
        code, _, err = run(capsys, "convert", source, tmp_path / destination, "--overwrite")  # never an input
        assert code == 1 and "is the input" in err
    assert snapshot(tmp_path) == before


def test_export_never_writes_its_output_over_its_weights(tmp_path, capsys):
    path = tiny_weights(tmp_path / "W")
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "export", path, path)
    assert code == 1 and one_line_error(err, "export") and f"OUTPUT {path} is the input {path}" in err
    assert snapshot(tmp_path) == before


def test_localise_predict_never_writes_its_drawing_over_its_image(tmp_path, capsys):
    from minivgg.files import written_by_minivgg
    from minivgg.localisation import localisation_net, save_localisation_net

    classifier_path = tiny_weights(tmp_path / "classifier.safetensors")
    save_localisation_net(localisation_net(weights.load(classifier_path), "SCR", "all", seed=1),
                          tmp_path / "boxes.safetensors")
    Image.fromarray(np.full((40, 48, 3), 120, np.uint8)).save(tmp_path / "ex.png")
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "localize", "predict", tmp_path / "ex.png", "--weights", tmp_path / "boxes.safetensors",
                         "--classifier", classifier_path, "--output", tmp_path / "ex.png")
    assert code == 1 and one_line_error(err, "localize") and f"--output {tmp_path / 'ex.png'} is the input" in err
    assert out == "" and snapshot(tmp_path) == before
    # A PNG of the user's at the default output name (IMAGE_boxes.png) is not replaced either.
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "ex_boxes.png")
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "localize", "predict", tmp_path / "ex.png", "--weights", tmp_path / "boxes.safetensors",
                       "--classifier", classifier_path)
    assert code == 1 and "exists and is a file minivgg did not write" in err and snapshot(tmp_path) == before
    # Its own drawing is replaced by the next one.
    (tmp_path / "ex_boxes.png").unlink()
    assert run(capsys, "localize", "predict", tmp_path / "ex.png", "--weights", tmp_path / "boxes.safetensors",
               "--classifier", classifier_path, "--scales", "32")[0] == 0
    assert written_by_minivgg(tmp_path / "ex_boxes.png", "png")
    assert run(capsys, "localize", "predict", tmp_path / "ex.png", "--weights", tmp_path / "boxes.safetensors",
               "--classifier", classifier_path, "--scales", "40")[0] == 0


def test_evaluate_json_never_replaces_a_weight_file(data, tmp_path, capsys, no_evaluation):
    path = tiny_weights(tmp_path / "w.safetensors", WNIDS)
    keep = tiny_weights(tmp_path / "keep.safetensors", WNIDS, seed=5)
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "evaluate", "--data", data, "--weights", path, "--json", keep)
    assert code == 1 and one_line_error(err, "evaluate") and out == ""
    assert f"--json {keep} exists and is a minivgg weight file; nothing was done" in err and "--overwrite" in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("option", ["--json", "--save-posteriors"])
def test_evaluate_outputs_into_a_missing_or_unwritable_folder_fail_before_evaluating(option, data, tmp_path, capsys,
                                                                                     no_evaluation, monkeypatch):
    path = tiny_weights(tmp_path / "w.safetensors", WNIDS)
    (tmp_path / "a-file").write_text("not a folder")
    before = snapshot(tmp_path)
    name = "x.json" if option == "--json" else "posteriors"
    code, out, err = run(capsys, "evaluate", "--data", data, "--weights", path, option, tmp_path / "a-file" / name)
    assert code == 1 and one_line_error(err, "evaluate") and out == ""
    assert "a-file" in err and ("is not a folder" in err or "is a file, not a folder" in err)
    if option == "--json":
        code, _, err = run(capsys, "evaluate", "--data", data, "--weights", path, option, "/nonexistent/x.json")
        assert code == 1 and "the folder /nonexistent does not exist" in err
    # A folder that cannot be written (as a read-only mount says through os.access, even to root).
    (tmp_path / "read-only").mkdir()
    before = snapshot(tmp_path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p).startswith(str(tmp_path / "read-only"))
                        else real_access(p, mode, **kw))
    code, _, err = run(capsys, "evaluate", "--data", data, "--weights", path, option, tmp_path / "read-only" / name)
    assert code == 1 and "is not writable" in err and snapshot(tmp_path) == before


def test_features_out_into_an_unwritable_place_fails_before_extracting(data, tmp_path, capsys, monkeypatch):
    import minivgg.transfer as transfer

    monkeypatch.setattr(transfer, "stacked_features", lambda *a, **k: pytest.fail("descriptors were computed"))
    path = tiny_weights(tmp_path / "w.safetensors", WNIDS)
    image = next((data / "val").iterdir())
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "features", image, "--weights", path, "--out", "/nonexistent/f.npz", "--no-cache")
    assert code == 1 and one_line_error(err, "features") and "the folder /nonexistent does not exist" in err
    np.savez(tmp_path / "mine.npz", numbers=np.arange(3))
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "features", image, "--weights", path, "--out", tmp_path / "mine", "--no-cache")
    assert code == 1 and f"--out {tmp_path / 'mine.npz'} exists and is a file minivgg did not write" in err
    assert snapshot(tmp_path) == before


def test_site_never_deletes_a_folder_of_other_files(tmp_path, capsys):
    """The issue's case: an existing website folder (index.html, notes.txt, photos/) is refused; nothing goes."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocs_jupyter")
    build_site = pytest.importorskip("build_site")
    www = tmp_path / "www"
    (www / "photos").mkdir(parents=True)
    (www / "index.html").write_text("<html>my own site</html>")
    (www / "notes.txt").write_text("notes")
    (www / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 a photo")
    before = snapshot(www)
    lessons, executed = _lessons(tmp_path, [1])
    capsys.readouterr()
    code = build_site.main(["--lessons", str(lessons), "--output", str(www), "--executed", str(executed)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert f"refusing to build the site into {www}: it is not empty and is not a site this tool built" in err
    assert snapshot(www) == before


# --- the site: only what it generated is ever replaced or removed ------------------------------------------------

LESSON = '''# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson {number}: a lesson

# %%
print({number})
'''


def _lessons(folder, numbers):
    """Lesson sources and their "executed" notebooks (not run: the site test needs no kernel)."""
    import jupytext
    import nbformat

    (folder / "lessons").mkdir(parents=True, exist_ok=True)
    (folder / "executed").mkdir(exist_ok=True)
    for number in numbers:
        source = folder / "lessons" / f"{number:02d}_lesson.py"
        source.write_text(LESSON.format(number=number))
        nbformat.write(jupytext.read(source), folder / "executed" / f"{number:02d}_lesson.ipynb")
    return folder / "lessons", folder / "executed"


def test_a_rebuilt_site_keeps_the_users_files_and_replaces_only_its_own(tmp_path, capsys):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocs_jupyter")
    build_site = pytest.importorskip("build_site")
    lessons, executed = _lessons(tmp_path, [1, 2])
    www = tmp_path / "www"
    assert build_site.main(["--lessons", str(lessons), "--output", str(www), "--executed", str(executed)]) == 0
    manifest = (www / build_site.MANIFEST).read_text().splitlines()
    assert "index.html" in manifest and "lessons/02_lesson/index.html" in manifest
    (www / "notes.txt").write_text("mine")
    (www / "index.html.partial").write_text("my draft")  # once the name of the site's own temporary
    (www / ".minivgg-site.partial").write_text("my list")
    (www / "photos").mkdir()
    (www / "photos" / "cat.jpg").write_bytes(b"a photo")
    # Lesson 2 removed, lesson 3 added: the site follows, the user's files stay.
    (lessons / "02_lesson.py").unlink()
    _lessons(tmp_path, [3])
    assert build_site.main(["--lessons", str(lessons), "--output", str(www), "--executed", str(executed)]) == 0
    assert (www / "notes.txt").read_text() == "mine" and (www / "photos" / "cat.jpg").read_bytes() == b"a photo"
    assert (www / "index.html.partial").read_text() == "my draft"
    assert (www / ".minivgg-site.partial").read_text() == "my list"
    assert not (www / "lessons" / "02_lesson").exists() and (www / "lessons" / "03_lesson" / "index.html").exists()
    # A user's file where a new page would go: refused, nothing changed.
    _lessons(tmp_path, [4])
    (www / "lessons" / "04_lesson").mkdir(parents=True)
    (www / "lessons" / "04_lesson" / "index.html").write_text("my page")
    before = snapshot(www)
    capsys.readouterr()
    assert build_site.main(["--lessons", str(lessons), "--output", str(www), "--executed", str(executed)]) == 1
    err = capsys.readouterr().err
    assert "lessons/04_lesson/index.html is there and an earlier build did not write it" in err
    assert snapshot(www) == before


# --- every command, its own cases -----------------------------------------------------------------------------

def test_an_existing_file_minivgg_did_not_write_is_replaced_only_when_asked(tmp_path, capsys):
    from minivgg.files import written_by_minivgg

    source = torchvision_file(tmp_path / "vgg.pth")
    (tmp_path / "thesis.safetensors").write_bytes(b"my thesis, oddly named")
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "convert", source, tmp_path / "thesis.safetensors")
    assert code == 1 and "exists and is a file minivgg did not write" in err and snapshot(tmp_path) == before
    assert run(capsys, "convert", source, tmp_path / "thesis.safetensors", "--overwrite")[0] == 0
    assert written_by_minivgg(tmp_path / "thesis.safetensors", "weights")
    # minivgg's own weight file is replaced without asking.
    assert run(capsys, "convert", source, tmp_path / "thesis.safetensors")[0] == 0


@pytest.mark.parametrize("make, what", [
    (lambda path: path.mkdir(), "is a folder"),
    (lambda path: fifo(path), "is a named pipe"),
    (lambda path: os.symlink(path.parent / "elsewhere.json", path), "is a symbolic link"),
])
def test_an_output_that_is_not_a_regular_file_is_refused_even_with_overwrite(make, what, data, tmp_path, capsys):
    path = tiny_weights(tmp_path / "w.safetensors", WNIDS)
    make(tmp_path / "out.json")
    before = snapshot(tmp_path)
    for extra in ([], ["--overwrite"]):
        code, _, err = run(capsys, "evaluate", "--data", data, "--weights", path, "--json", tmp_path / "out.json",
                           *extra)
        assert code == 1 and what in err and snapshot(tmp_path) == before


def test_evaluate_json_replaces_its_own_table_and_marks_it(data, tmp_path, capsys):
    path = tiny_weights(tmp_path / "w.safetensors", WNIDS)
    for _ in range(2):
        code, _, err = run(capsys, "evaluate", "--data", data, "--weights", path, "--scales", "36", "--json",
                           tmp_path / "t.json")
        assert code == 0, err
    table = json.loads((tmp_path / "t.json").read_text())
    assert table["written_by"] == "minivgg" and table["rows"][0]["test_Q"] == "36"
    assert oct(os.stat(tmp_path / "t.json").st_mode & 0o777) != "0o600"


def test_two_outputs_of_one_command_are_never_one_file(tmp_path):
    from minivgg.errors import OutputPathError
    from minivgg.files import Output, check_outputs

    with pytest.raises(OutputPathError, match="is also --json"):
        check_outputs([Output(tmp_path / "a.json", "--json", "json"), Output(tmp_path / "a.json", "--out", "json")])


def test_transfer_and_localise_evaluate_json_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
    path = tiny_weights(tmp_path / "w.safetensors")
    (tmp_path / "results.json").write_text('{"mine": true}')
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "transfer", "--dataset", "folder", "--root", tmp_path / "no-data", "--weights", path,
                       "--json", tmp_path / "results.json")
    assert code == 1 and "--json" in err and "exists and is a file minivgg did not write" in err
    code, _, err = run(capsys, "localize", "evaluate", "--weights", path, "--classifier", path, "--json", path)
    assert code == 1 and "is the input" in err
    assert snapshot(tmp_path) == before


def test_plot_replaces_its_own_curves_but_not_a_users_png(tmp_path, capsys):
    from minivgg.files import written_by_minivgg

    entry = {"epoch": 1, "learning_rate": 0.01, "train_loss": 1.0, "train_top1_error": 0.5, "val_loss": 1.0,
             "val_top1_error": 0.5, "val_top5_error": 0.1}
    (tmp_path / "log.jsonl").write_text(json.dumps(entry) + "\n")
    assert run(capsys, "plot", tmp_path)[0] == 0 and written_by_minivgg(tmp_path / "curves.png", "png")
    assert run(capsys, "plot", tmp_path)[0] == 0  # its own: replaced
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "photo.png")
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "plot", tmp_path, "--output", tmp_path / "photo.png")
    assert code == 1 and "exists and is a file minivgg did not write" in err and snapshot(tmp_path) == before


def test_an_exported_onnx_file_is_recognised_and_replaced(tmp_path, capsys):
    from minivgg.files import written_by_minivgg

    pytest.importorskip("onnx")
    path = tiny_weights(tmp_path / "w.safetensors")
    assert run(capsys, "export", path, tmp_path / "w.onnx")[0] == 0
    assert written_by_minivgg(tmp_path / "w.onnx", "onnx") and not written_by_minivgg(path, "onnx")
    assert run(capsys, "export", path, tmp_path / "w.onnx", "--dense")[0] == 0


# --- how minivgg's own files are recognised ------------------------------------------------------------------

def test_each_kind_of_output_is_recognised_from_its_content_only(tmp_path):
    from minivgg.evaluation.posteriors import save_posteriors
    from minivgg.files import OUTPUT_KINDS, atomic_write, marked, written_by_minivgg, write_json

    weights_path = tiny_weights(tmp_path / "w.safetensors")
    write_json(tmp_path / "ours.json", marked({"rows": []}))
    (tmp_path / "theirs.json").write_text('{"rows": [], "written_by": "someone"}')
    save_posteriors(tmp_path / "p.npz", np.ones((2, 3)) / 3)
    np.savez(tmp_path / "theirs.npz", posteriors=np.ones((2, 3)))
    atomic_write(tmp_path / "plain.png", lambda t: Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(t, "PNG"))
    found = {(name, kind) for name in os.listdir(tmp_path) for kind in OUTPUT_KINDS
             if written_by_minivgg(tmp_path / name, kind)}
    assert found == {("w.safetensors", "weights"), ("ours.json", "json"), ("p.npz", "npz")}
    assert not written_by_minivgg(weights_path, "checkpoint") and not written_by_minivgg(tmp_path / "none", "json")


# --- an output inside the data read ------------------------------------------------------------------------------

def test_an_output_inside_the_data_folder_is_refused_before_any_work(data, tmp_path, capsys, no_evaluation):
    """A folder of posteriors in a flat val/ would make it a folder of classes; a run folder in train/ would be a
    class without images: the data set itself would change. Refused, naming the input folder."""
    import shutil
    from tiny_imagenet import SMALL_NET

    data = shutil.copytree(data, tmp_path / "data")
    path = tiny_weights(tmp_path / "w.safetensors", WNIDS)
    before = snapshot(tmp_path)
    cases = [("evaluate", ["--data", data, "--weights", path, "--save-posteriors", data / "val" / "posteriors"],
              "--save-posteriors", data / "val" / "posteriors"),
             ("train", ["--quiet", "--data", data, "--preset", "A/256", *SMALL_NET, "--run-dir",
                        data / "train" / "run1"], "--run-dir", data / "train" / "run1"),
             ("train", ["--quiet", "--data", data, "--preset", "A/256", *SMALL_NET, "--run-dir", data],
              "--run-dir", data)]
    for command, arguments, option, output in cases:
        code, out, err = run(capsys, command, *arguments)
        assert code == 1 and one_line_error(err, command) and out == "", err
        where = "is" if output == data else "is inside"
        assert f"{option} {output} {where} the input folder {data}: what is written there would become part of " \
               f"the data read" in err, err
        assert snapshot(tmp_path) == before
    # Beside the data, not in it: written.
    assert run(capsys, "train", "--quiet", "--data", data, "--preset", "A/256", *SMALL_NET, "--run-dir",
               tmp_path / "run")[0] == 0


def test_a_run_folders_mark_and_lock_are_never_an_output_even_with_overwrite(data, tmp_path, capsys,
                                                                             no_evaluation):
    """The mark is a JSON file minivgg wrote, so it once passed for one of its own tables: `evaluate --json
    RUN/.minivgg-run` replaced it, and the folder was no longer minivgg's."""
    from minivgg.training import run_folder

    path = tiny_weights(tmp_path / "w.safetensors", WNIDS)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_folder.mark_run_folder(run_dir)
    (run_dir / ".minivgg-lock").write_text("12345\n")
    source = torchvision_file(tmp_path / "vgg.pth")
    before = snapshot(tmp_path)
    for command, arguments, option, output in [
            ("evaluate", ["--data", data, "--weights", path, "--json"], "--json", run_dir / ".minivgg-run"),
            ("export", [path], "OUTPUT", run_dir / ".minivgg-lock"),
            ("convert", [source], "DST",
             run_dir / ".minivgg-run")]:
        for extra in ([], ["--overwrite"]):
            code, out, err = run(capsys, command, *arguments, output, *extra)
            assert code == 1 and one_line_error(err, command) and out == "", err
            assert f"{option} {output}: files named .minivgg-* are minivgg's own bookkeeping" in err, err
            assert snapshot(tmp_path) == before
    assert run_folder.is_marked(run_dir)


def test_a_localisation_run_folder_inside_its_images_or_annotations_is_refused(tmp_path, capsys):
    path = tiny_weights(tmp_path / "w.safetensors")
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    before = snapshot(tmp_path)
    for folder in ("Annotations", "JPEGImages"):
        code, out, err = run(capsys, "localize", "train", "--annotations", tmp_path / "Annotations", "--images",
                             tmp_path / "JPEGImages", "--classifier", path, "--run-dir", tmp_path / folder / "run")
        assert code == 1 and one_line_error(err, "localize") and out == ""
        assert f"--run-dir {tmp_path / folder / 'run'} is inside the input folder {tmp_path / folder}" in err
        assert snapshot(tmp_path) == before


def test_a_feature_cache_inside_the_data_is_refused(data, tmp_path, capsys):
    """The cache's two-letter subfolders in a folder of class folders would be read as classes."""
    import shutil

    data = shutil.copytree(data / "train", tmp_path / "classes")
    path = tiny_weights(tmp_path / "w.safetensors", WNIDS)
    before = snapshot(tmp_path)
    for command, arguments in [("features", ["--data", data, "--weights", path, "--out", tmp_path / "f.npz"]),
                               ("transfer", ["--dataset", "folder", "--root", data, "--weights", path,
                                             "--train-per-class", "2"])]:
        code, out, err = run(capsys, command, *arguments, "--cache", data / "cache")
        assert code == 1 and one_line_error(err, command) and out == "", err
        assert f"--cache {data / 'cache'} is inside the input folder {data}" in err
        assert snapshot(tmp_path) == before
