"""Fine-tuning a localisation net on one's own annotated images (Appendix A.1): PASCAL VOC and ILSVRC CLS-LOC
folders paired and read (one training sample per object), ``minivgg localize train --annotations`` from a
classifier, ``--resume`` to the same weights, ``localize evaluate`` on the result, and every bad input
refused in one line. The folders are embedded scenes written as JPEGs with PASCAL VOC XML."""
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from minivgg import weights
from minivgg.cli.program import main
from minivgg.data.images import BadImageWarning
from minivgg.localisation import load_digit_scenes, load_localisation_net
from minivgg.localisation.annotations import AnnotationError, format_annotation
from minivgg.localisation.folders import UnannotatedImagesError, pair_annotations, read_box_folder, split_pairs
from minivgg.models import vgg
from minivgg.preprocessing import Preprocessing

SCALE = 64  # the scenes' side: the 32 x 32 crops see a quarter of a scene


def _write(folder, name, image, names, boxes, subfolder=""):
    (folder / "Annotations" / subfolder).mkdir(parents=True, exist_ok=True)
    (folder / "JPEGImages" / subfolder).mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / "JPEGImages" / subfolder / f"{name}.jpg", quality=95)
    (folder / "Annotations" / subfolder / f"{name}.xml").write_text(
        format_annotation(f"{name}.jpg", image.shape[1], image.shape[0], names, boxes))


def _write_scenes(folder, dataset, pairs=0):
    """Each scene as a VOC image; then ``pairs`` images of two scenes side by side (two objects each)."""
    for i in range(len(dataset)):
        image, label, boxes = dataset.load(i)
        _write(folder, f"scene_{i:03d}", image, [dataset.class_names[label]] * len(boxes), boxes)
    for i in range(pairs):
        (left, a, box_a), (right, b, box_b) = dataset.load(2 * i), dataset.load(2 * i + 1)
        shifted = box_b + np.array([left.shape[1], 0, left.shape[1], 0])
        _write(folder, f"pair_{i:03d}", np.concatenate([left, right], axis=1),
               [dataset.class_names[a], dataset.class_names[b]], np.concatenate([box_a, shifted]))
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("annotated")
    scenes = load_digit_scenes(counts={"train": 16, "val": 6, "test": 2}, seed=5)
    train, val = _write_scenes(root / "train", scenes["train"], pairs=4), _write_scenes(root / "val", scenes["val"])
    pixels = np.concatenate([image.reshape(-1, 3) for image in scenes["train"].images]).astype(np.float64)
    classifier = vgg("A", num_classes=10, input_size=32, width_multiplier=0.125, fc_width=16, dropout=0.0,
                     weight_init="glorot-relu", seed=0)
    classifier.preprocessing = Preprocessing("RGB", 255.0, tuple(pixels.mean(axis=0)), tuple(pixels.std(axis=0)))
    classifier.class_names = list(scenes["train"].class_names)
    path = root / "classifier.safetensors"
    weights.save(classifier, path)
    return {"root": root, "train": train, "val": val, "classifier": str(path), "scenes": scenes}


def _train_argv(data, run_dir, *extra, val=True):
    argv = ["localize", "train", "--annotations", str(data["train"] / "Annotations"), "--images",
            str(data["train"] / "JPEGImages"), "--classifier", data["classifier"], "--scale", str(SCALE),
            "--batch-size", "8", "--run-dir", str(run_dir), "--quiet"]
    if val:
        argv += ["--val-annotations", str(data["val"] / "Annotations"), "--val-images", str(data["val"] / "JPEGImages")]
    return argv + list(extra)


def _parameters(path):
    return {name: layer.params[key].copy() for name, layer, key in load_localisation_net(path).model.named_parameters()}


# --- the folders -------------------------------------------------------------------------------------------------

def test_each_object_is_one_training_sample_and_each_class_one_validation_sample(data):
    pairs = pair_annotations(data["train"] / "Annotations", data["train"] / "JPEGImages")
    assert len(pairs) == 16 + 4
    names = data["scenes"]["train"].class_names
    by_object = read_box_folder(pairs, names, smallest_side=SCALE, samples="object")
    by_class = read_box_folder(pairs, names, smallest_side=SCALE, samples="class")
    # 16 scenes of one digit, 4 images of two: 24 objects; the two digits of a pair differ or not.
    assert len(by_object) == 24 and all(len(b) == 1 for b in by_object.boxes)
    classes_in_pairs = sum(len(set(a.names)) for _, _, a in pairs[:4])
    assert len(by_class) == 16 + classes_in_pairs
    # The side-by-side images are held at S = 64 (128 x 64 -> 128 x 64) and the scenes too; the second
    # object's box is the right-hand scene's, shifted by its width.
    first_pair = [i for i in range(len(by_object)) if by_object.images[i].shape == (64, 128, 3)][:2]
    _, _, box_b = data["scenes"]["train"].load(1)
    np.testing.assert_allclose(by_object.boxes[first_pair[1]], box_b + [64, 0, 64, 0])
    assert by_object.images[first_pair[0]] is by_object.images[first_pair[1]]  # one array, two samples
    # Rescaling to another S scales the boxes with the image.
    half = read_box_folder(pairs[4:5], names, smallest_side=32)
    np.testing.assert_allclose(half.boxes[0], by_object.boxes[8] / 2)


def test_ilsvrc_layout_pairs_by_path_in_class_subfolders(tmp_path):
    image = np.full((40, 50, 3), 128, np.uint8)
    for wnid in ("n01440764", "n01443537"):
        (tmp_path / "Annotations" / wnid).mkdir(parents=True)
        (tmp_path / "Data" / wnid).mkdir(parents=True)
        Image.fromarray(image).save(tmp_path / "Data" / wnid / f"{wnid}_1.JPEG")
        # ILSVRC's <filename> has no extension; some files carry a placeholder: the path decides.
        (tmp_path / "Annotations" / wnid / f"{wnid}_1.xml").write_text(
            format_annotation("%s", 50, 40, [wnid], [[5, 5, 30, 35]]))
    pairs = pair_annotations(tmp_path / "Annotations", tmp_path / "Data")
    assert [p[1].split("Data/")[1] for p in pairs] == ["n01440764/n01440764_1.JPEG", "n01443537/n01443537_1.JPEG"]
    # Published ILSVRC weights name their classes in words: the WordNet ids map onto them.
    dataset = read_box_folder(pairs, ["goldfish", "tench"])
    assert dataset.labels.tolist() == [1, 0]


def test_unreadable_images_are_left_out_with_a_warning(data, tmp_path):
    from minivgg.localisation import BoxCropLoader

    image, label, boxes = data["scenes"]["val"].load(0)
    for name in ("good", "truncated", "not_an_image"):
        _write(tmp_path, name, image, ["3"], boxes)
    path = tmp_path / "JPEGImages" / "truncated.jpg"
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    (tmp_path / "JPEGImages" / "not_an_image.jpg").write_text("not a JPEG")
    pairs = pair_annotations(tmp_path / "Annotations", tmp_path / "JPEGImages")
    names = data["scenes"]["val"].class_names
    with pytest.warns(BadImageWarning, match="skipped 2 unreadable images"):
        assert len(read_box_folder(pairs, names)) == 1
    # Read lazily, the header tells the file that is no image at once; the truncated one fails when it is
    # cropped, and is left out of its batch.
    with pytest.warns(BadImageWarning, match="not_an_image.jpg"):
        lazy = read_box_folder(pairs, names, smallest_side=SCALE, lazy=True)
    assert len(lazy) == 2
    loader = BoxCropLoader(lazy, 2, SCALE, 32, Preprocessing(), train=False)
    with pytest.warns(BadImageWarning, match="truncated.jpg"):
        batches = list(loader.epoch(0))
    assert len(batches) == 1 and len(batches[0][1]) == 1
    # The image read lazily is the one read at once, the boxes alike.
    eager = read_box_folder(pairs[:1], names, smallest_side=SCALE)
    np.testing.assert_array_equal(lazy.load(0)[0], eager.images[0])
    np.testing.assert_allclose(lazy.load(0)[2], eager.boxes[0])
    # A photo four times S on its smallest side is decoded at a quarter of its size (JPEG draft mode): the
    # same pixels in the end, to within the resampling, and the same boxes.
    large = np.asarray(Image.fromarray(image).resize((320, 256), Image.BILINEAR))
    _write(tmp_path / "large", "large", large, ["3"], [[40, 20, 200, 180]])
    pairs = pair_annotations(tmp_path / "large" / "Annotations", tmp_path / "large" / "JPEGImages")
    (lazy_image, _, lazy_boxes), (eager_image, _, eager_boxes) = (
        read_box_folder(pairs, names, smallest_side=SCALE, lazy=lazy_read).load(0) for lazy_read in (True, False))
    assert lazy_image.shape == eager_image.shape == (64, 80, 3)
    np.testing.assert_allclose(lazy_boxes, [[10, 5, 50, 45]])
    np.testing.assert_allclose(eager_boxes, lazy_boxes)
    assert np.abs(lazy_image.astype(int) - eager_image).mean() < 8


def test_held_out_images_are_seeded_and_disjoint():
    pairs = [(f"{i}.xml", f"{i}.jpg", None) for i in range(20)]
    train, held = split_pairs(pairs, 0.25, seed=3)
    assert len(held) == 5 and len(train) == 15 and not set(train) & set(held)
    assert split_pairs(pairs, 0.25, seed=3) == (train, held) and split_pairs(pairs, 0.25, seed=4) != (train, held)


# --- the command line ------------------------------------------------------------------------------------------

def test_fine_tune_on_annotated_folder_resume_and_evaluate(data, tmp_path, capsys):
    whole = tmp_path / "whole"
    assert main(_train_argv(data, whole, "--fine-tune", "fc", "--epochs", "3")) == 0
    printed = capsys.readouterr().out
    assert "training on 24 objects in 20 images" in printed and "validating on 6 images" in printed
    log = [json.loads(line) for line in (whole / "localisation" / "log.jsonl").read_text().splitlines()]
    # Appendix A.1's learning rate unless told otherwise; the Euclidean loss on the held-out boxes falls.
    assert len(log) == 3 and log[0]["learning_rate"] == 1e-3 and 0 <= log[-1]["val_top1_error"] <= 1
    assert log[-1]["val_loss"] < log[0]["val_loss"]
    tuned = _parameters(whole / "localisation.safetensors")
    # FC-only fine-tuning: the conv layers are the classifier's, FC1 moved.
    classifier = {name: layer.params[key] for name, layer, key in weights.load(data["classifier"]).named_parameters()}
    conv = [name for name in tuned if name.startswith("features")]
    fc1 = [name for name in tuned if name.startswith("classifier")][0]
    assert conv and all(np.array_equal(tuned[name], classifier[name]) for name in conv)
    assert not np.array_equal(tuned[fc1], classifier[fc1])

    # Interrupted in the second epoch (as Ctrl-C does: at a step boundary, with a checkpoint), then resumed
    # and given a third epoch: the same weights, bit for bit.
    import minivgg.localisation

    parts = tmp_path / "parts"
    fine_tune = minivgg.localisation.fine_tune_localisation
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(minivgg.localisation, "fine_tune_localisation",
                      lambda *a, **k: fine_tune(*a, **dict(k, stop_after_steps=4)))  # 3 steps an epoch
        assert main(_train_argv(data, parts, "--fine-tune", "fc", "--epochs", "2")) == 130
    assert f"checkpoint written: continue with `minivgg localize train --resume {parts}`" in capsys.readouterr().err
    assert not (parts / "localisation.safetensors").exists()
    assert main(["localize", "train", "--resume", str(parts), "--epochs", "3", "--quiet"]) == 0
    assert "resuming a PCR localisation net" in capsys.readouterr().out
    resumed = _parameters(parts / "localisation.safetensors")
    for name in tuned:
        np.testing.assert_array_equal(resumed[name], tuned[name], err_msg=name)

    # A resumed run keeps its options; a run folder is never reused by a new run.
    assert main(["localize", "train", "--resume", str(parts), "--regression", "SCR"]) == 1
    assert "--regression (saved 'PCR', now 'SCR')" in capsys.readouterr().err
    assert main(_train_argv(data, parts)) == 1
    assert "already holds a localisation run: continue it with --resume" in capsys.readouterr().err

    # The ILSVRC columns on the held-out folder, at the training scale by default.
    assert main(["localize", "evaluate", "--weights", str(whole / "localisation.safetensors"), "--classifier",
                 data["classifier"], "--annotations", str(data["val"] / "Annotations"), "--images",
                 str(data["val"] / "JPEGImages")]) == 0
    table = capsys.readouterr().out
    assert "6 annotated images" in table
    for method in ("whole-image box", "centre box", "centre crop, GT class", "dense + merging, top-5"):
        assert method in table


def test_seeded_fraction_held_out_when_no_validation_folder(data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(_train_argv(data, run_dir, "--regression", "SCR", "--epochs", "1", "--val-fraction", "0.25",
                            val=False)) == 0
    assert "training on 18 objects in 15 images" in capsys.readouterr().out  # 5 of 20 images held out
    saved = json.loads((run_dir / "arguments.json").read_text())
    assert saved["val_fraction"] == 0.25 and saved["regression"] == "SCR" and saved["learning_rate"] == 1e-3
    assert load_localisation_net(run_dir / "localisation.safetensors").regression == "SCR"


def test_resume_refuses_a_classifier_file_that_changed(data, tmp_path, capsys):
    classifier = tmp_path / "classifier.safetensors"
    classifier.write_bytes(open(data["classifier"], "rb").read())
    argv = _train_argv(data, tmp_path / "run", "--fine-tune", "fc", "--epochs", "1")
    argv[argv.index("--classifier") + 1] = str(classifier)
    assert main(argv) == 0
    model = weights.load(classifier)
    next(model.named_parameters())[1].params["W"] *= 2  # the same architecture, another first conv layer
    weights.save(model, classifier)
    assert main(["localize", "train", "--resume", str(tmp_path / "run"), "--epochs", "2"]) == 1
    assert "is not the file the run started from" in capsys.readouterr().err


def _folder_with(tmp_path, data, change):
    """A copy of two validation scenes, changed by ``change(folder)``."""
    folder = tmp_path / "folder"
    for i in range(2):
        image, label, boxes = data["scenes"]["val"].load(i)
        _write(folder, f"scene_{i}", image, [data["scenes"]["val"].class_names[label]], boxes)
    change(folder)
    return folder


def _remove(path):
    path.unlink()


@pytest.mark.parametrize("change, extra, message", [
    (lambda f: _remove(f / "JPEGImages" / "scene_1.jpg"), [], "scene_1.xml: its image (scene_1 or scene_1.jpg"),
    (lambda f: _remove(f / "Annotations" / "scene_1.xml"), [], "1 image(s) in "),
    (lambda f: [_remove(p) for p in (f / "Annotations").iterdir()], [], "no .xml annotation files in"),
    (lambda f: [_remove(p) for p in (f / "JPEGImages").iterdir()], [], "no images in"),
    (lambda f: (f / "Annotations" / "scene_1.xml").write_text(
        format_annotation("scene_1.jpg", 64, 64, ["cat"], [[1, 1, 9, 9]])), [],
     "scene_1.xml: class 'cat' is not one of the 10 classes of the classifier"),
    (lambda f: None, ["--images", "nowhere"], "no image folder at nowhere"),
    (lambda f: None, ["--scale", "16"], "--scale 16 is smaller than the classifier's 32x32 input"),
    (lambda f: None, ["--batch-size", "4"], "--batch-size 4 is more than the 1 training object of"),
    (lambda f: None, ["--val-fraction", "0"], "--val-fraction 0 leaves no image for validation"),
    (lambda f: None, ["--val-annotations", "x"], "--val-annotations and --val-images go together"),
    (lambda f: None, ["--classifier-epochs", "3"], "--classifier-epochs: only for the embedded scenes"),
])
def test_bad_annotated_input_is_one_line_naming_it(data, tmp_path, capsys, change, extra, message):
    folder = _folder_with(tmp_path, data, change)
    argv = ["localize", "train", "--annotations", str(folder / "Annotations"), "--images", str(folder / "JPEGImages"),
            "--classifier", data["classifier"], "--scale", str(SCALE), "--batch-size", "1", "--val-fraction", "0.5",
            "--run-dir", str(tmp_path / "run"), "--quiet"]
    options = dict(zip(argv[2::2], argv[3::2]))
    for option, value in zip(extra[::2], extra[1::2]):
        options[option] = value
    if "--val-annotations" in options:
        del options["--val-fraction"]
    argv = argv[:2] + [item for pair in options.items() for item in pair if item != "--quiet"] + ["--quiet"]
    assert main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1, error
    assert not (tmp_path / "run" / "localisation").exists()


def test_images_without_annotations_can_be_left_out(data, tmp_path, capsys):
    folder = _folder_with(tmp_path, data, lambda f: _remove(f / "Annotations" / "scene_1.xml"))
    with pytest.raises(UnannotatedImagesError, match="first: .*scene_1.jpg"):
        pair_annotations(folder / "Annotations", folder / "JPEGImages")
    assert len(pair_annotations(folder / "Annotations", folder / "JPEGImages", unannotated="skip")) == 1
    argv = ["localize", "train", "--annotations", str(folder / "Annotations"), "--images", str(folder / "JPEGImages"),
            "--classifier", data["classifier"], "--scale", str(SCALE), "--batch-size", "1", "--run-dir",
            str(tmp_path / "run"), "--quiet", "--val-annotations", str(data["val"] / "Annotations"), "--val-images",
            str(data["val"] / "JPEGImages"), "--epochs", "1"]
    assert main(argv) == 1
    assert "--skip-unannotated trains on the annotated ones only" in capsys.readouterr().err
    assert main(argv + ["--skip-unannotated"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["localize", "train", "--scale", "64"], "--scale: only for training on your own images"),
    (["localize", "train", "--annotations", "a", "--images", "b"], "--annotations needs --classifier"),
    (["localize", "train", "--resume", "no-such-run"], "--resume no-such-run: no such folder"),
])
def test_options_that_need_annotations_or_a_classifier(argv, message, capsys):
    assert main(argv) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("saved, message", [
    ({"annotations": "a", "batch_size": -3}, "saved --batch-size -3"),
    ({"annotations": "a", "val_fraction": "nan"}, "saved --val-fraction 'nan'"),
    ({"annotations": "a", "regression": "XYZ"}, "saved --regression 'XYZ'"),
    ({"batch_size": 4}, "does not hold the options of a localisation run"),
])
def test_resume_refuses_saved_options_the_command_line_would_refuse(saved, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "arguments.json").write_text(json.dumps(saved))
    assert main(["localize", "train", "--resume", str(run_dir)]) == 1
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1, error
    assert sorted(p.name for p in run_dir.iterdir()) == ["arguments.json"]


@pytest.mark.parametrize("option, value", [("--val-fraction", "1.5"), ("--val-fraction", "nan"), ("--scale", "0"),
                                           ("--batch-size", "-2"), ("--checkpoint-every", "x")])
def test_bad_numbers_are_refused_at_parse_time(option, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["localize", "train", "--annotations", "a", option, value])
    assert exit_info.value.code == 2 and option in capsys.readouterr().err
