"""The dataset layouts of Appendix B (PASCAL VOC, Caltech-101/256, a class-folder tree), built tiny in
tmp_path with small JPEGs, and the ``minivgg features`` / ``minivgg transfer`` commands on them."""
import json

import numpy as np
import pytest
from PIL import Image

from minivgg import vgg, weights
from minivgg.cli.program import main
from minivgg.transfer import VOC_CLASSES, protocol, read_voc_split


def _jpeg(path, seed, size=(40, 48)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # A colour per class-ish seed plus noise: enough for an SVM to find something, small enough to be quick.
    base = rng.integers(0, 256, size=3)
    pixels = np.clip(base + rng.normal(scale=30, size=size + (3,)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def make_voc(root, year="2007", splits=(("trainval", 8), ("test", 4))):
    """A VOC<year> folder: images, and per class and split the 1/-1/0 flags (each class present in a
    quarter of the images, one difficult test image for aeroplane)."""
    folder = root / "VOCdevkit" / f"VOC{year}"
    main_sets = folder / "ImageSets" / "Main"
    main_sets.mkdir(parents=True)
    number = 0
    for split, count in splits:
        ids = [f"{number + i:06d}" for i in range(count)]
        number += count
        for i, image_id in enumerate(ids):
            _jpeg(folder / "JPEGImages" / f"{image_id}.jpg", seed=int(image_id))
        (main_sets / f"{split}.txt").write_text("".join(f"{image_id}\n" for image_id in ids))
        for c, name in enumerate(VOC_CLASSES):
            flags = [1 if (c + i) % 4 == 0 else -1 for i in range(count)]
            if split == "test" and name == "aeroplane":
                flags[1] = 0
            (main_sets / f"{name}_{split}.txt").write_text(
                "".join(f"{image_id} {flag:2d}\n" for image_id, flag in zip(ids, flags)))
    return folder


def make_class_folders(root, classes=3, per_class=6):
    for c in range(classes):
        for i in range(per_class):
            _jpeg(root / f"class_{c}" / f"image_{i:04d}.jpg", seed=100 * c + i)
    return root


# --- layouts ---------------------------------------------------------------------------------------------

def test_tiny_voc2007_loads_with_its_flags(tmp_path):
    folder = make_voc(tmp_path)
    test = read_voc_split(tmp_path, "test", "2007")
    assert test.folder == str(folder)
    assert test.flags.shape == (4, 20) and test.image_ids[0] == "000008"
    assert test.flags[1, 0] == 0 and set(np.unique(test.flags)) == {-1, 0, 1}
    task = protocol("voc2007", tmp_path)
    train, test_indices = task.splits[0]
    assert (len(train), len(test_indices), task.ap_method, task.measure) == (8, 4, "voc07", "mean AP")


def test_voc2012_trains_on_train_and_tests_on_val_with_the_area_ap(tmp_path):
    make_voc(tmp_path, "2012", splits=(("train", 8), ("val", 4)))
    task = protocol("voc2012", tmp_path / "VOCdevkit" / "VOC2012")
    assert task.ap_method == "area" and [len(part) for part in task.splits[0]] == [8, 4]


def test_voc_layout_errors_name_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="ImageSets/Main"):
        protocol("voc2007", tmp_path)
    folder = make_voc(tmp_path)
    main_sets = folder / "ImageSets" / "Main"
    (main_sets / "sofa_test.txt").unlink()
    with pytest.raises(FileNotFoundError, match="sofa_test.txt"):
        read_voc_split(tmp_path, "test")
    (main_sets / "cat_trainval.txt").write_text("000000 1\n000001 2\n")
    with pytest.raises(ValueError, match="cat_trainval.txt, line 2"):
        read_voc_split(tmp_path, "trainval")
    (main_sets / "cat_trainval.txt").write_text("000000 1\n")
    with pytest.raises(ValueError, match="other images"):
        read_voc_split(tmp_path, "trainval")
    (main_sets / "cat_trainval.txt").unlink()
    for name in VOC_CLASSES:
        if name != "cat":
            (main_sets / f"{name}_trainval.txt").unlink()
    for name in VOC_CLASSES:
        (main_sets / f"{name}_trainval.txt").write_text("004242 1\n")
    with pytest.raises(FileNotFoundError, match="004242.jpg"):
        read_voc_split(tmp_path, "trainval")


def test_caltech101_and_256_layouts_load_with_the_paper_protocol(tmp_path):
    for c, name in enumerate(["accordion", "BACKGROUND_Google"]):
        for i in range(35):
            _jpeg(tmp_path / "101_ObjectCategories" / name / f"image_{i + 1:04d}.jpg", seed=c * 50 + i, size=(8, 8))
    task = protocol("caltech101", tmp_path)
    assert task.class_names == ["BACKGROUND_Google", "accordion"] and len(task.splits) == 3
    train, test = task.splits[0]
    assert np.bincount(task.targets[train]).tolist() == [30, 30]
    assert np.bincount(task.targets[test]).tolist() == [5, 5]
    for i in range(62):
        _jpeg(tmp_path / "256_ObjectCategories" / "001.ak47" / f"001_{i + 1:04d}.jpg", seed=i, size=(8, 8))
        _jpeg(tmp_path / "256_ObjectCategories" / "257.clutter" / f"257_{i + 1:04d}.jpg", seed=99 + i, size=(8, 8))
    task = protocol("caltech256", tmp_path / "256_ObjectCategories", num_splits=2)
    train, test = task.splits[1]
    assert np.bincount(task.targets[train]).tolist() == [60, 60] and len(test) == 4


def test_caltech_and_folder_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="101_ObjectCategories"):
        protocol("caltech101", tmp_path)
    (tmp_path / "256_ObjectCategories" / "001.ak47").mkdir(parents=True)
    with pytest.raises(ValueError, match="001.ak47 holds no image files"):
        protocol("caltech256", tmp_path)
    with pytest.raises(ValueError, match="--train-per-class"):
        protocol("folder", make_class_folders(tmp_path / "plain", 2, 3))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        protocol("folder", tmp_path / "absent", train_per_class=2)
    with pytest.raises(FileNotFoundError, match="does not exist"):  # not "give --train-per-class"
        protocol("folder", tmp_path / "absent")


def test_folder_layouts_random_and_fixed_split(tmp_path):
    task = protocol("folder", make_class_folders(tmp_path / "plain", 3, 6), train_per_class=4, num_splits=2)
    assert [len(part) for part in task.splits[0]] == [12, 6]
    make_class_folders(tmp_path / "fixed" / "train", 2, 4)
    make_class_folders(tmp_path / "fixed" / "test", 2, 2)
    task = protocol("folder", tmp_path / "fixed")
    assert len(task.splits) == 1 and [len(part) for part in task.splits[0]] == [8, 4]


def test_a_nan_test_descriptor_is_refused_naming_the_features(tmp_path):
    from minivgg.transfer import score

    task = protocol("folder", make_class_folders(tmp_path / "plain", 3, 6), train_per_class=4, num_splits=1)
    features = np.random.default_rng(0).normal(size=(len(task.sources), 8))
    features[task.splits[0][1][0]] = np.nan  # one test image only: training sees finite features
    with pytest.raises(ValueError, match="score: the features hold NaN"):
        score(task, features, C_grid=(1.0,), folds=2)


# --- the commands --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_nets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nets")
    paths = []
    for seed, config in ((0, "A"), (1, "B")):
        model = vgg(config, num_classes=4, input_size=32, width_multiplier=0.125, fc_width=16, seed=seed)
        model.preprocessing = type(model.preprocessing)("RGB", 255.0, (120.0, 120.0, 120.0), (60.0, 60.0, 60.0))
        paths.append(str(folder / f"net_{config}.safetensors"))
        weights.save(model, paths[-1])
    return paths


def test_transfer_on_a_folder_prints_table_11_and_reuses_the_cache(tmp_path, two_nets, capsys):
    root = make_class_folders(tmp_path / "data", 3, 6)
    arguments = ["transfer", "--dataset", "folder", "--root", str(root), "--weights", *two_nets, "--scales",
                 "32,40", "--train-per-class", "4", "--splits", "2", "--folds", "2", "--C", "0.1,1",
                 "--cache", str(tmp_path / "cache"), "--json", str(tmp_path / "result.json")]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert "VOC-2007 (mean AP)" in out and "Caltech-256 (mean class recall)" in out
    assert "folder (mean class recall)" in out
    assert "VGG A (net_A)" in out and "VGG B (net_B)" in out and "Net-A & Net-B (stacked)" in out
    assert "± " in out and "36 computed" in out  # 18 images, two nets
    record = json.loads((tmp_path / "result.json").read_text())
    assert len(record["results"]) == 3 and record["settings"]["aggregation"] == "stack"
    assert all(0 <= r["value"] <= 100 and len(r["per_split"]) == 2 for r in record["results"])
    assert main(arguments) == 0
    assert "36 descriptors read, 0 computed" in capsys.readouterr().out


def test_transfer_on_voc2007_reports_mean_ap(tmp_path, two_nets, capsys):
    make_voc(tmp_path)
    assert main(["transfer", "--dataset", "voc2007", "--root", str(tmp_path), "--weights", two_nets[0],
                 "--scales", "32", "--folds", "2", "--C", "1", "--no-cache"]) == 0
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("VGG A")][0]
    assert "average" in out and "trained on trainval (8 images), tested on test (4 images)" in out
    assert float(row.split()[3]) >= 0 and row.split()[4] == "-"  # a VOC-2007 value, nothing for VOC-2012


def test_features_command_writes_an_npz_without_pickles(tmp_path, two_nets, capsys):
    root = make_class_folders(tmp_path / "data", 2, 3)
    out = tmp_path / "features.npz"
    assert main(["features", "--data", str(root), "--weights", *two_nets, "--scales", "32,48", "--aggregation",
                 "average", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0
    with np.load(out, allow_pickle=False) as data:
        assert data["features"].shape == (6, 32)
        assert np.allclose(np.linalg.norm(data["features"], axis=1), 1.0, atol=1e-5)
        assert data["labels"].tolist() == [0, 0, 0, 1, 1, 1] and len(data["files"]) == 6
    assert "6 images -> 32-D" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (["--scales", "0,32"], "argument --scales"),
    (["--splits", "0"], "argument --splits"),
    (["--C", "-1"], "argument --C"),
    (["--C", "nan"], "argument --C"),
    (["--train-per-class", "x"], "argument --train-per-class"),
    (["--seed", "-3"], "argument --seed"),
    (["--dataset", "imagenet"], "argument --dataset"),
])
def test_transfer_refuses_bad_options_when_parsing(bad, message, capsys, tmp_path):
    arguments = ["transfer", "--dataset", "folder", "--root", str(tmp_path), "--weights", "w.safetensors"]
    with pytest.raises(SystemExit) as exit_info:
        main(arguments + bad)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_transfer_user_errors_are_messages(tmp_path, two_nets, capsys):
    root = make_class_folders(tmp_path / "data", 2, 3)
    base = ["transfer", "--dataset", "folder", "--root", str(root), "--train-per-class", "2", "--no-cache"]
    assert main(base + ["--weights", two_nets[0], "--scales", "16"]) == 1
    assert "at least the nets' input size 32" in capsys.readouterr().err
    assert main(base + ["--weights", two_nets[0], "--layer", "conv9_9", "--scales", "32"]) == 1
    assert "no layer 'conv9_9'" in capsys.readouterr().err
    assert main(base + ["--weights", str(tmp_path / "missing.safetensors"), "--scales", "32"]) == 1
    assert "no weight file" in capsys.readouterr().err
    assert main(["features", "--weights", two_nets[0], "--out", str(tmp_path / "f")]) == 1
    assert "either image files or --data" in capsys.readouterr().err


# --- VOC 2012 action classification (Table 12) ------------------------------------------------------------

def make_voc_action(root, persons_per_split=(("train", 12), ("val", 6))):
    """VOC2012 with Annotations and ImageSets/Action: two persons per image, each doing one action."""
    from minivgg.transfer import VOC_ACTIONS

    folder = root / "VOC2012"
    (folder / "ImageSets" / "Action").mkdir(parents=True)
    (folder / "Annotations").mkdir()
    number = 0
    for split, persons in persons_per_split:
        keys = []
        for i in range(persons // 2):
            image_id = f"2012_{number:06d}"
            number += 1
            _jpeg(folder / "JPEGImages" / f"{image_id}.jpg", seed=number, size=(60, 80))
            objects = "".join(f"<object><name>person</name><bndbox><xmin>{1 + 30 * k}</xmin><ymin>11</ymin>"
                              f"<xmax>{30 + 30 * k}</xmax><ymax>50</ymax></bndbox></object>" for k in range(2))
            (folder / "Annotations" / f"{image_id}.xml").write_text(f"<annotation>{objects}</annotation>")
            keys += [(image_id, 1), (image_id, 2)]
        for a, action in enumerate(VOC_ACTIONS):
            lines = "".join(f"{image_id} {person} {1 if (a + j) % 3 == 0 else -1:2d}\n"
                            for j, (image_id, person) in enumerate(keys))
            (folder / "ImageSets" / "Action" / f"{action}_{split}.txt").write_text(lines)
    return folder


def test_voc_action_persons_load_with_their_boxes(tmp_path):
    from minivgg.transfer import read_action_split

    make_voc_action(tmp_path)
    train = read_action_split(tmp_path, "train")
    assert len(train.paths) == 12 and train.flags.shape == (12, 11)
    # VOC's 1-based inclusive corners (1, 11, 30, 50) are pixels 0..29 x 10..49.
    assert train.boxes[0] == (0.0, 10.0, 30.0, 50.0) and train.boxes[1] == (30.0, 10.0, 60.0, 50.0)
    task = protocol("voc2012action", tmp_path)
    assert task.boxes is not None and len(task.boxes) == 18 and task.ap_method == "area"
    assert protocol("voc2012action", tmp_path, boxes=False).boxes is None


def test_voc_action_layout_errors(tmp_path):
    from minivgg.transfer import read_action_split

    folder = make_voc_action(tmp_path)
    (folder / "Annotations" / "2012_000000.xml").write_text("<annotation><object><name>person</name>"
                                                            "</object></annotation>")
    with pytest.raises(ValueError, match="bndbox"):
        read_action_split(tmp_path, "train")
    (folder / "Annotations" / "2012_000000.xml").write_text("<annotation></annotation>")
    with pytest.raises(ValueError, match="person 1 asked for, the annotation has 0 objects"):
        read_action_split(tmp_path, "train")
    (folder / "Annotations" / "2012_000000.xml").unlink()
    with pytest.raises(FileNotFoundError, match="2012_000000.xml"):
        read_action_split(tmp_path, "train")
    (folder / "ImageSets" / "Action" / "walking_val.txt").unlink()
    with pytest.raises(FileNotFoundError, match="walking_val.txt"):
        read_action_split(tmp_path, "val")


def test_transfer_on_voc_action_stacks_image_and_box(tmp_path, two_nets, capsys):
    make_voc_action(tmp_path)
    arguments = ["transfer", "--dataset", "voc2012action", "--root", str(tmp_path), "--weights", two_nets[0],
                 "--scales", "32", "--folds", "2", "--C", "1", "--cache", str(tmp_path / "cache")]
    assert main(arguments + ["--json", str(tmp_path / "boxes.json")]) == 0
    out = capsys.readouterr().out
    assert "VOC-2012 action (mean AP)" in out and "Caltech" not in out and "image and box" in out
    assert "0 descriptors read, 18 computed" in out  # one per person: its box differs
    assert main(arguments + ["--no-boxes", "--json", str(tmp_path / "image.json")]) == 0
    out = capsys.readouterr().out
    # Image only: the two persons of an image share one descriptor, so 9 are computed, not 18.
    assert "image only" in out and "0 descriptors read, 9 computed" in out
    record = json.loads((tmp_path / "image.json").read_text())
    assert 0 <= record["results"][0]["value"] <= 100


def test_features_command_takes_image_files_and_names_missing_ones(tmp_path, two_nets, capsys):
    root = make_class_folders(tmp_path / "data", 1, 2)
    files = sorted(str(p) for p in root.rglob("*.jpg"))
    out = tmp_path / "two.npz"
    assert main(["features", *files, "--weights", two_nets[0], "--scales", "32", "--layer", "pool5",
                 "--out", str(out), "--no-cache"]) == 0
    with np.load(out, allow_pickle=False) as data:
        assert data["features"].shape == (2, 64) and data["files"].tolist() == files
        assert json.loads(str(data["settings"]))["layer"] == "pool5"
    capsys.readouterr()
    assert main(["features", files[0], str(tmp_path / "nope.jpg"), "--weights", two_nets[0], "--out",
                 str(out)]) == 1
    assert "no such image files" in capsys.readouterr().err
