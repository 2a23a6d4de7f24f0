"""Datasets: the folder layouts of ImageNet and of any image collection, the clear errors a broken layout
gets before training starts, and the embedded digits."""
import numpy as np
import pytest
from PIL import Image

from minivgg.data import ArrayDataset, ImageFolder, ImageNet, load_digits, read_devkit_wnids

WNIDS = ["n01440764", "n02119789", "n09999999"]


def write_png(path, value, size=(6, 5)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size + (3,), value, np.uint8)).save(path, format="PNG")


def make_folder(root, counts, extension=".png"):
    """``root/<class>/<k><extension>`` with ``counts[class]`` images whose grey level encodes the class."""
    for label, (name, count) in enumerate(counts.items()):
        for k in range(count):
            write_png(root / name / f"{k}{extension}", 10 * label + k)
    return root


def test_image_folder_sorted_classes_labels_and_case_insensitive_extensions(tmp_path):
    make_folder(tmp_path, {"dog": 2, "cat": 1})
    write_png(tmp_path / "cat" / "upper.JPG", 3)          # a PNG under a .JPG name: decoded by content
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "cat" / "._0.png").write_bytes(b"resource fork")
    (tmp_path / ".hidden").mkdir()
    data = ImageFolder(tmp_path)
    assert data.class_names == ["cat", "dog"]
    assert data.files == ["cat/0.png", "cat/upper.JPG", "dog/0.png", "dog/1.png"]
    assert data.labels.dtype == np.int64 and data.labels.tolist() == [0, 0, 1, 1]
    image, label = data.load(3)
    assert image.shape == (6, 5, 3) and image.dtype == np.uint8 and label == 1 and image[0, 0, 0] == 1
    assert data.describe(3).endswith("dog/1.png") and len(data) == 4


def test_missing_root_and_root_that_is_a_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset folder .*nowhere does not exist"):
        ImageFolder(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="file is not a folder"):
        ImageFolder(tmp_path / "file")


def test_root_without_class_folders(tmp_path):
    write_png(tmp_path / "loose.png", 1)
    with pytest.raises(ValueError, match="holds no class folders"):
        ImageFolder(tmp_path)


@pytest.mark.parametrize("content", ["nothing", "only_text"])
def test_empty_class_folder_is_named(tmp_path, content):
    make_folder(tmp_path, {"a": 1})
    (tmp_path / "b").mkdir()
    if content == "only_text":
        (tmp_path / "b" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"class folder .*b holds no image files"):
        ImageFolder(tmp_path)


def test_given_class_names_must_match_the_folders(tmp_path):
    make_folder(tmp_path, {"a": 1, "b": 1})
    reordered = ImageFolder(tmp_path, class_names=["b", "a"])  # the given numbering
    assert dict(zip(reordered.files, reordered.labels.tolist())) == {"a/0.png": 1, "b/0.png": 0}
    with pytest.raises(ValueError, match=r"folders \['b'\] are not among the 1 given class names"):
        ImageFolder(tmp_path, class_names=["a"])
    with pytest.raises(FileNotFoundError, match=r"no folder for classes \['c'\]"):
        ImageFolder(tmp_path, class_names=["a", "b", "c"])


def imagenet(tmp_path, val="folders"):
    make_folder(tmp_path / "train", {wnid: 2 for wnid in WNIDS}, ".JPEG")
    if val == "folders":
        make_folder(tmp_path / "val", {wnid: 1 for wnid in WNIDS}, ".JPEG")
    else:  # flat, as ILSVRC ships it: classes 2, 0, 1, 2
        for k, value in enumerate([7, 8, 9, 10]):
            write_png(tmp_path / "val" / f"ILSVRC2012_val_{k + 1:08d}.JPEG", value)
    return tmp_path


def test_imagenet_train_and_val_folders_share_the_sorted_wnid_numbering(tmp_path):
    root = imagenet(tmp_path)
    train, val = ImageNet(root, "train"), ImageNet(root, "val")
    assert train.class_names == val.class_names == sorted(WNIDS)
    assert train.labels.tolist() == [0, 0, 1, 1, 2, 2] and val.labels.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        ImageNet(root, "test")


@pytest.mark.parametrize("lines", [["3", "1", "2", "3"],                       # 1-based, as ILSVRC ships
                                   ["2", "0", "1", "2"],                       # 0-based
                                   [WNIDS[2], WNIDS[0], WNIDS[1], WNIDS[2]],   # class names
                                   [f"ILSVRC2012_val_{k:08d}.JPEG {label}"     # "file label", any order
                                    for k, label in [(3, 1), (1, 2), (4, 2), (2, 0)]]])
def test_flat_val_ground_truth_formats(tmp_path, lines):
    root = imagenet(tmp_path, val="flat")
    (root / "gt.txt").write_text("\n".join(lines) + "\n\n")
    val = ImageNet(root, "val", ground_truth=root / "gt.txt")
    assert val.labels.tolist() == [2, 0, 1, 2]
    assert val.load(0)[0][0, 0, 0] == 7


@pytest.mark.parametrize("lines, message", [
    (["1", "2", "3"], "has 3 labels but the validation folder holds 4 images"),
    (["1", "2", "3", "3", "1"], "has 5 labels but the validation folder holds 4 images"),
    (["1", "2", "3", "4"], r"line 4: label 4 is outside 1..3"),
    (["0", "1", "2", "3"], r"line 4: label 3 is outside 0..2"),
    ([WNIDS[0], "n00000001", WNIDS[1], WNIDS[2]], r"line 2: 'n00000001' is neither an integer label nor one of"),
    ([f"ILSVRC2012_val_{k:08d}.JPEG 1" for k in (1, 2, 3, 5)],
     r"lists 4 files and .* holds 4 images: 1 images not listed .*00000004.*1 listed files not there .*00000005"),
])
def test_flat_val_ground_truth_that_does_not_match_the_images_is_an_error(tmp_path, lines, message):
    root = imagenet(tmp_path, val="flat")
    (root / "gt.txt").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=message):
        ImageNet(root, "val", ground_truth=root / "gt.txt")


def test_flat_val_without_a_ground_truth_file(tmp_path):
    root = imagenet(tmp_path, val="flat")
    with pytest.raises(FileNotFoundError, match=r"is flat, so it needs the devkit's ground-truth file: put it under .* as one of ILSVRC2012_validation"):
        ImageNet(root, "val")
    with pytest.raises(FileNotFoundError, match="ground-truth file .*missing.txt does not exist"):
        ImageNet(root, "val", ground_truth=root / "missing.txt")


def write_meta_mat(path, wnids_by_id):
    """A devkit-style meta.mat: leaves with ILSVRC2012_IDs 1.., plus one inner synset."""
    from scipy.io import savemat

    fields = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")]
    synsets = np.zeros((len(wnids_by_id) + 1, 1), dtype=fields)
    for k, wnid in enumerate(wnids_by_id):
        synsets[k, 0] = (k + 1, wnid, "leaf", 0)
    synsets[-1, 0] = (len(wnids_by_id) + 1, "n00001740", "entity", 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"synsets": synsets})


def test_devkit_ground_truth_uses_the_devkit_numbering_not_the_sorted_wnids(tmp_path):
    root = imagenet(tmp_path, val="flat")
    devkit_order = [WNIDS[1], WNIDS[2], WNIDS[0]]  # the devkit does not number classes in sorted order
    data = root / "ILSVRC2012_devkit_t12" / "data"
    write_meta_mat(data / "meta.mat", devkit_order)
    assert read_devkit_wnids(data / "meta.mat") == devkit_order
    # devkit IDs of the images' classes 2, 0, 1, 2: WNIDS[2] is ID 2, WNIDS[0] is ID 3, WNIDS[1] is ID 1
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("2\n3\n1\n2\n")
    val = ImageNet(root, "val")  # finds the ground truth in the devkit and meta.mat beside it
    assert val.class_names == sorted(WNIDS) and val.labels.tolist() == [2, 0, 1, 2]
    (data / "meta.mat").unlink()  # without the devkit's numbering its labels would be misread: refused
    with pytest.raises(ValueError, match="numbers the classes by the devkit's ILSVRC2012_ID, not by sorted wnid"):
        ImageNet(root, "val")
    val = ImageNet(root, "val", ground_truth_classes=devkit_order)
    assert val.labels.tolist() == [2, 0, 1, 2]


def test_array_dataset_checks_its_arrays():
    images = np.zeros((3, 4, 4, 3), np.uint8)
    data = ArrayDataset(images, [0, 1, 1], ["a", "b"])
    assert data.load(2)[1] == 1 and data.labels.dtype == np.int64 and len(data) == 3
    with pytest.raises(ValueError, match=r"RGB uint8 images of shape \(N, H, W, 3\), got float32"):
        ArrayDataset(images.astype(np.float32), [0, 1, 1], ["a", "b"])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        ArrayDataset(images, [0, 1, 2], ["a", "b"])
    with pytest.raises(TypeError, match="labels must be integers, got dtype float64"):
        ArrayDataset(images, [0.0, 1.0, 1.0], ["a", "b"])
    with pytest.raises(ValueError, match=r"expected 3 labels, got shape \(2,\)"):
        ArrayDataset(images, [0, 1], ["a", "b"])


@pytest.fixture(scope="module")
def digits():
    return load_digits(image_size=12, seed=0)


def test_digits_are_split_60_20_20_stratified_and_reproducible(digits):
    sizes = {name: len(split) for name, split in digits.items()}
    assert sizes == {"train": 1079, "val": 359, "test": 359}
    every_label = np.concatenate([split.labels for split in digits.values()])
    proportions = np.bincount(every_label) / len(every_label)
    for split in digits.values():
        assert split.images.shape[1:] == (12, 12, 3) and split.images.dtype == np.uint8
        assert split.class_names == [str(d) for d in range(10)]
        # stratified: each class holds its overall share of every split, to within rounding
        assert np.abs(np.bincount(split.labels, minlength=10) - proportions * len(split)).max() <= 2
    again = load_digits(image_size=12, seed=0)
    assert np.array_equal(again["val"].images, digits["val"].images)
    other = load_digits(image_size=12, seed=1)
    assert not np.array_equal(other["val"].labels, digits["val"].labels)


def test_digits_are_colour_images_whose_colour_says_nothing_of_the_class(digits):
    images = digits["train"].images.astype(float)
    assert np.abs(images[..., 0] - images[..., 1]).mean() > 10  # the channels differ: real RGB
    corners = images[:, 0, 0, :]
    means = np.array([corners[digits["train"].labels == d].mean(axis=0) for d in range(10)])
    assert np.ptp(means, axis=0).max() < 25  # the background colour does not encode the digit


def test_digits_are_learnable_from_their_pixels(digits):
    from sklearn.linear_model import RidgeClassifier

    train, test = digits["train"], digits["test"]
    model = RidgeClassifier().fit(train.images.reshape(len(train), -1) / 255.0, train.labels)
    # even a linear classifier on the raw RGB pixels, random colours and all, gets 9 in 10 right
    assert model.score(test.images.reshape(len(test), -1) / 255.0, test.labels) > 0.9
