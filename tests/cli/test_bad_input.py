"""Bad input gets an error that names the layer, what it expected and what came; bad files and data get a clear
error naming the file and the field, or a counted skip, never a traceback or a silent result."""
import os
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

import minivgg
from minivgg import weights
from minivgg.cli.program import main
from minivgg.data import (BadImageError, BadImageWarning, DataLoader, ImageFolder, ImageNet, TrainAugmentation,
                          decode_image)
from minivgg.layers import (Conv2d, Dropout, Linear, LocalResponseNorm, MaxPool2d, ReLU, SoftmaxCrossEntropyLoss,
                            EuclideanLoss)
from minivgg.evaluation.metrics import top_k_correct, top_k_error
from minivgg.models import vgg


def test_conv_wrong_number_of_dimensions():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*\(N, C, H, W\).*3-D"):
        Conv2d(3, 8, 3, padding=1).forward(np.zeros((3, 8, 8), np.float32))


def test_conv_wrong_channels():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*3 channels.*got shape \(2, 4, 8, 8\) with 4"):
        Conv2d(3, 8, 3, padding=1).forward(np.zeros((2, 4, 8, 8), np.float32))


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, object, bool])
def test_integer_object_and_bool_arrays(dtype):
    for layer in (Conv2d(3, 2, 3), MaxPool2d(), ReLU(), LocalResponseNorm()):
        with pytest.raises(ValueError, match=f"{type(layer).__name__}.*floating-point.*dtype"):
            layer.forward(np.zeros((1, 3, 4, 4), dtype=dtype))


def test_not_an_array():
    with pytest.raises(TypeError, match=r"ReLU\(\).*numpy.ndarray.*got list"):
        ReLU().forward([[1.0, -1.0]])


def test_dtype_mismatch_with_parameters_is_not_silently_cast():
    with pytest.raises(ValueError, match=r"float64 does not match the parameters' float32"):
        Conv2d(3, 2, 3).forward(np.zeros((1, 3, 4, 4), np.float64))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"7x7 kernel is larger than the padded input 5x5"):
        Conv2d(3, 2, 7, padding=1).forward(np.zeros((1, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"MaxPool2d.*2x2 window is larger than the input 1x5"):
        MaxPool2d().forward(np.zeros((1, 3, 1, 5), np.float32))


def test_linear_wrong_features_suggests_flatten():
    with pytest.raises(ValueError, match=r"Linear\(12, 4\).*\(N, 12\).*Flatten"):
        Linear(12, 4).forward(np.zeros((2, 3, 2, 2), np.float32))


@pytest.mark.parametrize("labels, message", [
    (np.array([0, 5]), r"\[0, 5\).*found 5"), (np.array([-1, 0]), "found -1"),
    (np.array([0.0, 1.0]), "integers"), (np.array([0, 1, 2]), r"shape \(2,\)"),
])
def test_labels_out_of_range_or_malformed(labels, message):
    with pytest.raises(ValueError, match=message):
        SoftmaxCrossEntropyLoss().forward(np.zeros((2, 5), np.float32), labels)


def test_euclidean_shape_mismatch():
    with pytest.raises(ValueError, match="one shape"):
        EuclideanLoss().forward(np.zeros((2, 4)), np.zeros((2, 3)))


@pytest.mark.parametrize("make", [lambda: Conv2d(0, 3, 3), lambda: Conv2d(3, 3, 3, stride=0),
                                  lambda: Conv2d(3, 3, 3, padding=-1), lambda: MaxPool2d(2.5),
                                  lambda: Conv2d(3, 3, 3, weight_init="he-ish")])
def test_bad_hyperparameters(make):
    with pytest.raises(ValueError):
        make()


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        Conv2d(3, 2, 3).backward(np.zeros((1, 2, 2, 2), np.float32))


def test_unknown_backend_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'.*'numpy'"):
        minivgg.set_backend("tpu")


def test_dropout_fixed_mask_shape_mismatch():
    layer = Dropout(0.5)
    layer.fixed_mask = np.ones((2, 2), bool)
    with pytest.raises(ValueError, match="fixed_mask has shape"):
        layer.forward(np.zeros((3, 3), np.float32))


# Files and data: every bad input a clear error or a counted skip, never a traceback or a silent result -------

TINY = dict(width_multiplier=1 / 16, fc_width=8, input_size=32)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_row_with_a_non_finite_score_is_never_counted_correct(bad):
    scores = np.array([[0.1, 0.7, 0.2], [0.1, 0.7, 0.2], [0.1, 0.7, 0.2]])
    scores[1, 0] = bad  # a wrong class
    scores[2, :] = bad  # every class: all comparisons with NaN are false, so the true class "ranks first"
    labels = np.array([1, 1, 1])
    assert top_k_correct(scores, labels, 1).tolist() == [True, False, False]
    assert top_k_correct(scores, labels, 3).tolist() == [True, False, False]
    assert top_k_error(scores, labels, 1) == pytest.approx(2 / 3)
    assert top_k_error(np.full((4, 10), np.nan), np.zeros(4, np.int64), 5) == 1.0  # a diverged net: 100% error


def test_ties_rank_the_true_class_as_a_stable_sort_would():
    scores = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    assert top_k_correct(scores, np.array([0, 1]), 1).tolist() == [True, False]
    assert top_k_correct(scores, np.array([0, 1]), 2).tolist() == [True, True]


@pytest.mark.parametrize("labels, k, message", [
    (np.array([0, 3]), 1, r"labels must lie in \[0, 3\), got 0 .. 3"),
    (np.array([-1, 0]), 1, r"labels must lie in \[0, 3\), got -1"),  # would index from the end
    (np.array([0.0, 1.0]), 1, "labels must be integers"),
    (np.array([0, 1]), 4, r"k must be an integer in \[1, 3\], got 4"),
])
def test_metric_inputs_out_of_range_are_refused(labels, k, message):
    with pytest.raises(ValueError, match=message):
        top_k_correct(np.zeros((2, 3)), labels, k)


def test_an_error_rate_of_no_images_is_an_error_not_zero():
    with pytest.raises(ValueError, match="no images"):
        top_k_error(np.zeros((0, 3)), np.zeros(0, np.int64), 1)


@pytest.fixture
def tiny_weights(tmp_path):
    model = vgg("A", num_classes=2, seed=0, **TINY)
    model.class_names = ["a", "b"]
    weights.save(model, tmp_path / "tiny.safetensors")
    return model, tmp_path / "tiny.safetensors"


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(needle in err for needle in needles), err
    return err


def test_nan_weights_end_predict_and_evaluate_with_a_message_not_nan_percent(tiny_weights, tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    _, path = tiny_weights
    arrays = load_file(str(path))
    arrays["classifier.6.weight"][0, 0] = np.nan
    with safe_open(str(path), framework="np") as handle:
        header = handle.metadata()
    save_file(arrays, str(tmp_path / "nan.safetensors"), metadata=header)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(image)
    assert main(["predict", str(image), "--weights", str(tmp_path / "nan.safetensors")]) != 0
    _one_line_error(capsys, "nan.safetensors", "classifier.6.weight", "non-finite")
    for folder in ("a", "b"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "data" / folder / "x.png")
    assert main(["evaluate", "--weights", str(tmp_path / "nan.safetensors"), "--data", str(tmp_path / "data")]) != 0
    _one_line_error(capsys, "nan.safetensors", "non-finite")


def _constant_png(path, side, grey=128):
    """A side x side grey PNG, never held in memory: 11000^2 is 121 Mpx in ~350 KB, written in 0.1 s.

    Every row is the same, so it is deflated once, flushed so that it stands alone (Z_FULL_FLUSH), and
    repeated; the zlib stream's Adler-32 is accumulated row by row.
    """
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes([grey]) * side  # filter byte 0, then the pixels
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(row) + deflate.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(side):
        adler = zlib.adler32(row, adler)
    idat = b"\x78\xda" + block * side + deflate.flush() + struct.pack(">I", adler)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_the_constant_png_writer_writes_a_valid_png(tmp_path):
    assert np.asarray(Image.open(_constant_png(tmp_path / "small.png", 300, grey=77))).tolist() == [[77] * 300] * 300


@pytest.fixture(scope="session")
def bomb_png(tmp_path_factory):
    """An 11000 x 11000 PNG (121 Mpx, over Pillow's 89 Mpx limit but under twice it, where Pillow only warns)."""
    return _constant_png(tmp_path_factory.mktemp("bomb") / "bomb.png", 11000)


def test_a_decompression_bomb_png_is_refused_without_decoding_it(bomb_png):
    import time

    assert bomb_png.stat().st_size < 500_000
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # even a caller that ignores every warning gets the error
        with pytest.raises(BadImageError, match=r"bomb.png: refusing to decode: Image size \(121000000 pixels\) "
                                                r"exceeds limit"):
            decode_image(bomb_png)
    assert time.perf_counter() - start < 1.0  # a full decode takes ~15 s and 1.3 GB


def test_a_decompression_bomb_is_a_counted_skip_in_training(bomb_png, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for i in range(2):
            Image.fromarray(np.full((36, 36, 3), 60 * i, np.uint8)).save(tmp_path / folder / f"{i}.png")
    os.symlink(bomb_png, tmp_path / "a" / "bomb.png")
    data = ImageFolder(tmp_path)
    loader = DataLoader(data, 5, TrainAugmentation(scale=32, crop_size=32), unreadable="substitute")
    with pytest.warns(BadImageWarning, match=r"skipped 1 unreadable image \(replaced.*bomb.png: refusing to decode"):
        batches = list(loader.epoch(0))
    assert [len(y) for _, y in batches] == [5] and len(loader.skipped) == 1


def test_a_decompression_bomb_is_a_clear_error_in_predict(bomb_png, tiny_weights, capsys):
    assert main(["predict", str(bomb_png), "--weights", str(tiny_weights[1])]) != 0
    _one_line_error(capsys, "bomb.png", "exceeds limit")


def test_large_jpegs_still_decode_in_draft_mode(tmp_path, rng, monkeypatch):
    photo = np.repeat(np.repeat(rng.integers(0, 256, (75, 100, 3), dtype=np.uint8), 16, 0), 16, 1)
    Image.fromarray(photo).save(tmp_path / "big.jpg", quality=90)  # 1600 x 1200
    from PIL.JpegImagePlugin import JpegImageFile

    drafts = []
    original = JpegImageFile.draft
    monkeypatch.setattr(JpegImageFile, "draft", lambda self, *a: drafts.append(a) or original(self, *a))
    assert decode_image(tmp_path / "big.jpg", draft_smallest_side=256).shape == (300, 400, 3)  # decoded at 1/4
    assert drafts == [("RGB", (342, 256))]


def _folder_with_links(root):
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((40, 40, 3), 50 + 100 * i, np.uint8)).save(root / folder / f"{i}.png")
    os.symlink("loop.jpg", root / "a" / "loop.jpg")  # a file link to itself
    os.symlink("loop", root / "loop")  # a folder link to itself
    os.symlink(".", root / "here")  # a folder link to the folder that holds it
    os.symlink("nowhere.png", root / "b" / "gone.png")  # a broken link
    return root


@pytest.mark.parametrize("layout", ["folder", "imagenet train", "imagenet val"])
def test_self_looping_and_broken_links_are_skipped_and_counted(tmp_path, layout):
    root = _folder_with_links(tmp_path / "train" if layout.startswith("imagenet") else tmp_path)
    if layout == "imagenet val":
        os.rename(tmp_path / "train", tmp_path / "val")
    with pytest.warns(BadImageWarning, match="skipped 4 entries that cannot be followed"):
        data = {"folder": lambda: ImageFolder(root), "imagenet train": lambda: ImageNet(tmp_path, "train"),
                "imagenet val": lambda: ImageNet(tmp_path, "val")}[layout]()
    assert len(data) == 4 and data.class_names == ["a", "b"]
    reasons = {os.path.relpath(path, tmp_path): reason for path, reason in data.skipped_entries}
    prefix = "" if layout == "folder" else layout.split()[1] + "/"
    assert reasons[f"{prefix}a/loop.jpg"].startswith("cannot follow: Too many levels of symbolic links")
    assert reasons[f"{prefix}loop"].startswith("cannot follow: Too many levels of symbolic links")
    assert reasons[f"{prefix}here"].startswith("symbolic link loop")
    assert reasons[f"{prefix}b/gone.png"] == "broken symbolic link to nowhere.png"


def test_evaluate_on_a_folder_with_link_loops_counts_them_and_finishes(tmp_path, tiny_weights, capsys):
    root = _folder_with_links(tmp_path / "data")
    with pytest.warns(BadImageWarning, match="skipped 4 entries that cannot be followed"):
        assert main(["evaluate", "--weights", str(tiny_weights[1]), "--data", str(root), "--method",
                     "single-crop"]) == 0
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("edit, message", [
    (lambda record: record.pop("preprocessing"), "missing ['preprocessing']"),
    (lambda record: record["architecture"].update(depth=11), "architecture has unknown keys ['depth']"),
    (lambda record: record["architecture"].update(fc_width=10 ** 7), "its architecture declares (10000000, 32)"),
    (lambda record: record.update(class_names=["a"]), "class_names has 1 names for 2 outputs"),
    (lambda record: record["preprocessing"].update(std=[0.0, 1.0, 1.0]), "std must be positive"),
])
@pytest.mark.parametrize("command", ["info", "predict"])
def test_malformed_weight_records_end_the_command_line_with_one_line(tiny_weights, tmp_path, capsys, edit, message,
                                                                    command):
    import json

    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    _, path = tiny_weights
    with safe_open(str(path), framework="np") as handle:
        header = handle.metadata()
    record = json.loads(header["minivgg"])
    edit(record)
    save_file(load_file(str(path)), str(tmp_path / "bad.safetensors"), metadata={"minivgg": json.dumps(record)})
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(image)
    argv = {"info": ["info", str(tmp_path / "bad.safetensors")],
            "predict": ["predict", str(image), "--weights", str(tmp_path / "bad.safetensors")]}[command]
    assert main(argv) != 0
    _one_line_error(capsys, "bad.safetensors", message)
