"""No saved state is trusted unchecked (issue 28): run arguments, checkpoint headers, weight-file records and
caches are parsed once against a typed schema, each error naming the file and the field; a resume on other data
is refused naming what changed; the colour-statistics cache is keyed on the files' sizes and times."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from hostile_files import one_line_error, run, snapshot, tiny_weights
from tiny_imagenet import SMALL_NET, WNIDS, make_tiny_imagenet

from minivgg.data import ImageFolder
from minivgg.data.statistics import compute_statistics


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_tiny_imagenet(tmp_path_factory.mktemp("tiny") / "ILSVRC2012")


@pytest.fixture
def data(pristine, tmp_path):
    """A copy of the tiny ImageNet a test may change."""
    return shutil.copytree(pristine, tmp_path / "ILSVRC2012")


@pytest.fixture
def finished_run(data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, _, err = run(capsys, "train", "--quiet", "--data", data, "--preset", "A/256", *SMALL_NET[:-2],
                       "--epochs", "1", "--run-dir", run_dir)
    assert code == 0, err
    return run_dir


def resume(capsys, run_dir, *extra):
    return run(capsys, "train", "--quiet", "--resume", run_dir, "--epochs", "2", *extra)


def _black(path):
    with Image.open(path) as image:
        size, kind = image.size, image.format
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(path, format=kind)


# --- a resume on other data ----------------------------------------------------------------------------------

def test_a_resume_after_an_image_was_renamed_is_refused_naming_it(data, finished_run, capsys):
    folder = data / "train" / WNIDS[0]
    (folder / f"{WNIDS[0]}_0.JPEG").rename(folder / f"{WNIDS[0]}_renamed.JPEG")
    before = snapshot(finished_run)
    code, out, err = resume(capsys, finished_run)
    assert code == 1 and one_line_error(err, "train") and out == ""
    assert "the data are not those the run trained on (train: 1 file added: " in err
    assert f"{WNIDS[0]}/{WNIDS[0]}_renamed.JPEG; 1 file removed or renamed: {WNIDS[0]}/{WNIDS[0]}_0.JPEG" in err
    assert snapshot(finished_run) == before


def test_a_resume_after_every_image_was_replaced_is_refused(data, finished_run, capsys):
    for path in (data / "train").rglob("*.JPEG"):
        _black(path)
    before = snapshot(finished_run)
    code, _, err = resume(capsys, finished_run)
    assert code == 1 and "train: 24 files changed (another size or modification time)" in err
    assert snapshot(finished_run) == before


def test_a_resume_after_a_class_was_added_says_the_classes_changed(data, finished_run, capsys):
    shutil.copytree(data / "train" / WNIDS[0], data / "train" / "n99999999")
    before = snapshot(finished_run)
    code, _, err = resume(capsys, finished_run)
    assert code == 1 and one_line_error(err, "train")
    assert "train: the classes changed (added ['n99999999']: 3 then, 4 now)" in err and "shape" not in err
    assert snapshot(finished_run) == before


def test_a_resume_on_the_same_data_goes_on(finished_run, capsys):
    code, _, err = resume(capsys, finished_run)
    assert code == 0, err
    assert len((finished_run / "log.jsonl").read_text().splitlines()) == 2


def test_a_resume_of_the_digits_after_their_arrays_changed_is_refused(tmp_path, capsys, monkeypatch):
    import minivgg.training.recipes as recipes
    from minivgg.data.fingerprint import check_same_data, dataset_fingerprint
    from minivgg.data.datasets import ArrayDataset
    from minivgg.errors import UsageError

    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    saved = {"train": dataset_fingerprint(ArrayDataset(images, np.arange(10) % 2, ["a", "b"]))}
    changed = images.copy()
    changed[3, 0, 0, 0] ^= 1
    check_same_data(saved, {"train": ArrayDataset(images, np.arange(10) % 2, ["a", "b"])}, "run")
    with pytest.raises(UsageError, match=r"train: the images changed \(10 then, 10 now; their digest differs\)"):
        check_same_data(saved, {"train": ArrayDataset(changed, np.arange(10) % 2, ["a", "b"])}, "run")
    with pytest.raises(UsageError, match=r"the classes changed \(the same names, in another order"):
        check_same_data(saved, {"train": ArrayDataset(images, np.arange(10) % 2, ["b", "a"])}, "run")
    assert recipes  # the embedded digits are an ArrayDataset: the same fingerprint


# --- the colour-statistics cache ----------------------------------------------------------------------------------

def test_the_colour_statistics_cache_is_recomputed_when_images_are_rewritten_under_their_names(tmp_path):
    root = tmp_path / "folder"
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(3):  # BMP: a black rewrite has exactly the same size, only its time changes
            Image.fromarray(rng.integers(100, 256, (8, 8, 3), dtype=np.uint8)).save(root / label / f"{i}.bmp")
    first = compute_statistics(ImageFolder(root), progress=False)
    assert first.mean_rgb.min() > 100
    sizes = {path: path.stat().st_size for path in root.rglob("*.bmp")}
    for path in root.rglob("*.bmp"):
        _black(path)
        status = path.stat()
        os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 10 ** 9))  # on a coarse clock too
    assert {path: path.stat().st_size for path in root.rglob("*.bmp")} == sizes
    again = compute_statistics(ImageFolder(root), progress=False)
    np.testing.assert_array_equal(again.mean_rgb, [0.0, 0.0, 0.0])


# --- hand-edited run arguments -------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, message", [
    ("crop", "32", "saved --crop is the str '32'; it must be saved as 32"),
    ("data", 5, "saved --data must be a string, got int 5"),
    ("crop", 1000000, "saved --crop 1000000 must be at most 2,048"),
    ("fc_width", 1000000000, "saved --fc-width 1000000000 must be at most 65,536"),
    ("epochs", True, "saved --epochs is bool True, not a value of this option"),
    ("seed", 1.5, "saved --seed 1.5 must be an integer"),
    ("scale", [512, 256], "saved --scale [512, 256] must be S or S_MIN-S_MAX with 1 <= S_MIN <= S_MAX"),
    ("quiet", "yes", "saved --quiet must be true, false or null, got 'yes'"),
    ("preset", ["A/256"], "saved --preset must be a string"),
    ("starting_weights_preprocessing", {"mean": 1}, "saved 'starting_weights_preprocessing' preprocessing needs"),
    ("surprise", 1, "unknown saved options 'surprise'"),
])
def test_a_hand_edited_saved_option_is_refused_naming_the_file_and_the_option(key, value, message, finished_run,
                                                                              capsys):
    path = finished_run / "arguments.json"
    saved = json.loads(path.read_text())
    saved[key] = value
    path.write_text(json.dumps(saved))
    before = snapshot(finished_run)
    code, out, err = resume(capsys, finished_run)
    assert code == 1 and one_line_error(err, "train") and out == ""
    assert f"{path}: " in err and message in err, err
    assert snapshot(finished_run) == before


@pytest.mark.parametrize("content, message", [
    ("[" * 100000 + "]" * 100000, "is damaged"),
    ("x" * (2 << 20), "is 2,097,152 bytes: not a run's saved arguments"),
])
def test_a_deep_or_huge_arguments_file_is_refused(content, message, finished_run, capsys):
    (finished_run / "arguments.json").write_text(content)
    before = snapshot(finished_run)
    code, _, err = resume(capsys, finished_run)
    assert code == 1 and one_line_error(err, "train") and message in err
    assert snapshot(finished_run) == before


# --- hand-edited checkpoint headers ----------------------------------------------------------------------------

def _edit_state(path, edit):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(path), framework="np") as handle:
        state = json.loads(handle.metadata()["minivgg"])
    edit(state)
    save_file(load_file(str(path)), str(path), metadata={"minivgg": json.dumps(state)})


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.update(schedule=5), "the checkpoint's schedule must be an object"),
    (lambda s: s["position"].update(epoch=-1), "the checkpoint's position.epoch must be a whole number from 0"),
    (lambda s: s["settings"].update(batch_size="8"), "the checkpoint's settings.batch_size must be a whole number"),
    (lambda s: s["schedule"].update(learning_rate=float("nan")), "schedule.learning_rate must be a finite number"),
    (lambda s: s["schedule"].update(reductions=9), "schedule.reductions must be at most max_reductions (3)"),
    (lambda s: s.update(history={"epoch": 1}), "the checkpoint's history must be a list of per-epoch entries"),
    (lambda s: s["history"][0].update(val_loss="low"), "history[0] must be an object of numbers"),
    (lambda s: s.update(dropout=["seed"]), "dropout[0] must be a whole number"),
    (lambda s: s.update(dataset={"train": {"kind": "files"}}), "dataset fingerprint of train must list its classes"),
    (lambda s: s.update(extra=1), "the checkpoint's state has unknown fields ['extra']"),
    (lambda s: s.update(epoch_totals=[]), "the checkpoint's epoch_totals must be an object"),
    (lambda s: s["epoch_totals"].pop("images"), "the checkpoint's epoch_totals has unknown fields [] and lacks "
                                                 "['images']"),
    (lambda s: s["epoch_totals"].update(loss_sum=float("inf")), "epoch_totals.loss_sum must be a finite number"),
    (lambda s: s["epoch_totals"].update(correct=5, images=3), "epoch_totals.correct must be at most "
                                                              "epoch_totals.images (3)"),
])
def test_a_hand_edited_checkpoint_is_refused_naming_the_field(edit, message, finished_run, capsys):
    _edit_state(finished_run / "checkpoint.safetensors", edit)
    before = snapshot(finished_run)
    code, _, err = resume(capsys, finished_run)
    assert code == 1 and one_line_error(err, "train")
    assert f"{finished_run / 'checkpoint.safetensors'}: " in err and message in err, err
    assert snapshot(finished_run) == before


# --- a weight file's training record ------------------------------------------------------------------------------

def _with_record(path, text):
    """Rewrite the weight file's ``training`` header entry as ``text`` (what a hand edit would do)."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(path), framework="np") as handle:
        metadata = dict(handle.metadata())
    metadata["training"] = text
    save_file(load_file(str(path)), str(path), metadata=metadata)
    return path


@pytest.mark.parametrize("record, message", [
    ('"[1,2]"', "the training record must be a JSON object, got str"),
    ("[1,2]", "the training record must be a JSON object, got list"),
    ('{"train_scale": {"a": 1}}', "train_scale must be a whole number of pixels from 1 to 8192"),
    ('{"train_scale": 1000000000}', "train_scale must be a whole number of pixels from 1 to 8192"),
    ("not json {", "the training record in its header is not valid JSON"),
    ('{"flip": "yes"}', "the training record's flip must be a bool"),
])
@pytest.mark.parametrize("command", ["evaluate", "features"])
def test_a_hand_edited_training_record_is_refused_naming_the_file(record, message, command, pristine, tmp_path,
                                                                  capsys):
    path = _with_record(tiny_weights(tmp_path / "w.safetensors", WNIDS), record)
    before = snapshot(tmp_path)
    if command == "evaluate":
        code, out, err = run(capsys, "evaluate", "--data", pristine, "--weights", path, "--scales", "paper")
    else:
        image = next((pristine / "val").iterdir())
        code, out, err = run(capsys, "features", image, "--weights", path, "--out", tmp_path / "f.npz",
                             "--no-cache")
    assert code == 1 and one_line_error(err, command) and out == ""
    assert f"{path}: " in err and message in err, err
    assert snapshot(tmp_path) == before


def test_a_hand_edited_localisation_record_names_the_file(tmp_path):
    from minivgg.localisation import load_localisation_net, localisation_net, save_localisation_net
    from minivgg import weights

    classifier = weights.load(tiny_weights(tmp_path / "c.safetensors"))
    path = tmp_path / "boxes.safetensors"
    for record, message in [('{"regression": "SCR", "num_classes": "3"}', "num_classes must be a whole number"),
                            ('{"regression": "XYZ", "num_classes": 3}', "regression must be one of"),
                            ('{"regression": "SCR", "num_classes": 3, "class_names": 7}', "class_names must be null"),
                            ("[[[[", "the localisation record in its header is not valid JSON")]:
        save_localisation_net(localisation_net(classifier, "SCR", "all", seed=1), path, metadata={})
        from safetensors import safe_open
        from safetensors.numpy import load_file, save_file
        with safe_open(str(path), framework="np") as handle:
            metadata = dict(handle.metadata())
        metadata["localisation"] = record
        save_file(load_file(str(path)), str(path), metadata=metadata)
        with pytest.raises(ValueError, match=message):
            load_localisation_net(path)


# --- a hand-edited training log ------------------------------------------------------------------------------------

_ENTRY = {"epoch": 1, "learning_rate": 0.01, "train_loss": 1.0, "train_top1_error": 0.5, "val_loss": 1.0,
          "val_top1_error": 0.5, "val_top5_error": 0.1}


@pytest.mark.parametrize("line, message", [
    ("[" * 200000, "line 1 is not a JSON log entry"),  # was a RecursionError traceback
    (json.dumps(dict(_ENTRY, val_top1_error=7)), "line 1: val_top1_error 7 must be a fraction in [0, 1]"),
    (json.dumps(dict(_ENTRY, epoch=1e300)), "line 1: epoch 1e+300 must be a whole number of epochs from 1"),
    (json.dumps(dict(_ENTRY, epoch=1.5)), "line 1: epoch 1.5 must be a whole number of epochs from 1"),
    (json.dumps(dict(_ENTRY, learning_rate=-1)), "line 1: learning_rate -1 must be a finite number >= 0"),
    (json.dumps(dict(_ENTRY, train_loss=float("nan"))), "line 1: train_loss nan must be a finite number >= 0"),
])
def test_a_hand_edited_training_log_is_refused_by_plot_naming_the_line_and_field(line, message, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.jsonl").write_text(line + "\n")
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "plot", tmp_path / "run")
    assert code == 1 and one_line_error(err, "plot") and out == ""
    assert f"{tmp_path / 'run' / 'log.jsonl'} {message}" in err, err
    assert snapshot(tmp_path) == before
    (tmp_path / "run" / "log.jsonl").write_text(json.dumps(_ENTRY) + "\n")
    assert run(capsys, "plot", tmp_path / "run")[0] == 0  # the same log, as minivgg writes it: drawn


def test_a_training_refused_for_its_scale_writes_no_statistics_into_the_data(data, tmp_path, capsys):
    """S below the crop is refused before the colour statistics are computed and cached beside the images."""
    before = snapshot(data)
    code, out, err = run(capsys, "train", "--quiet", "--data", data, "--preset", "A/256", *SMALL_NET[:-2], "--scale",
                         "16", "--run-dir", tmp_path / "run")
    assert code == 1 and one_line_error(err, "train") and out == ""
    assert "the smallest training scale S_min=16 is smaller than the 32 crop" in err
    assert snapshot(data) == before and not (tmp_path / "run").exists()


@pytest.mark.parametrize("key, value, message", [
    ("mean_rgb", [-5000.0, 0.0, 0.0], r"its mean RGB \[-5000.0, 0.0, 0.0\] is outside \[0, 255\]"),
    ("mean_rgb", [1e308, 1e308, 1e308], r"its mean RGB .* is outside \[0, 255\]"),
    ("eigenvalues", [1e300, 1.0, 1.0], "its eigenvalues .* are not a covariance of 8-bit pixels"),
    ("eigenvalues", [-1.0, 1.0, 1.0], "its eigenvalues .* are not a covariance of 8-bit pixels"),
    ("eigenvectors", [[1e300] * 3] * 3, "its eigenvectors are not orthonormal"),
])
def test_a_colour_statistics_cache_holding_impossible_values_is_computed_again(key, value, message, tmp_path):
    """Before, a mean of -5000 became the model's preprocessing silently, and eigenvalues of 1e300 made the
    training "diverge" with the advice to lower the learning rate."""
    root = tmp_path / "folder"
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / label / f"{i}.png")
    first = compute_statistics(ImageFolder(root), progress=False)
    cache = root / ".minivgg-statistics.json"
    saved = json.loads(cache.read_text())
    cache.write_text(json.dumps(dict(saved, **{key: value})))
    with pytest.warns(UserWarning, match=rf"ignoring colour statistics cache {cache}: {message}"):
        again = compute_statistics(ImageFolder(root), progress=False)
    np.testing.assert_allclose(again.mean_rgb, first.mean_rgb, rtol=1e-12)
    np.testing.assert_allclose(again.eigenvalues, first.eigenvalues, rtol=1e-9)
    assert json.loads(cache.read_text()) == saved  # written again as computed
