"""The smaller cases of issue 28: gradient checks of dropout in training mode, float64 weight files through every
command, torchvision-named safetensors, class folders whose names differ only in Unicode normalisation, and the
mode of atomically written files."""
import os
import shutil
import unicodedata
import warnings

import numpy as np
import pytest
from PIL import Image
from hostile_files import one_line_error, run, snapshot, tiny_weights
from tiny_imagenet import SMALL_NET, make_tiny_imagenet

import minivgg
from minivgg import gradcheck, weights
from minivgg.layers import Dropout, Linear, ReLU, Sequential


# --- gradient checks of dropout -----------------------------------------------------------------------------

def test_check_layer_holds_a_training_dropouts_mask_fixed_and_says_so(rng):
    layer = Dropout(0.5, seed=3)
    with pytest.warns(UserWarning, match=r"check_layer: Dropout\(p=0.5\) in training mode draws a new mask at every "
                                         r"forward pass; the check holds each one's mask fixed"):
        errors = gradcheck.check_layer(layer, rng.standard_normal((4, 6)))
    assert errors["x"] < 1e-8
    step = layer.step
    layer.forward(rng.standard_normal((4, 6)))
    assert layer.step == step + 1  # the layer draws fresh masks again after the check


def test_check_layer_of_a_training_net_with_dropout_is_a_real_check(rng):
    net = Sequential(Linear(6, 8, rng=0, dtype=np.float64), ReLU(), Dropout(0.5, seed=1),
                     Linear(8, 3, rng=1, dtype=np.float64))
    with pytest.warns(UserWarning, match="holds each one's mask fixed"):
        errors = gradcheck.check_layer(net, rng.standard_normal((5, 6)))
    assert max(errors.values()) < 1e-7
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say in evaluation mode
        assert max(gradcheck.check_layer(net, rng.standard_normal((5, 6))).values()) < 1e-7


def test_check_model_of_a_training_vgg_holds_its_dropout_masks(rng, monkeypatch):
    from minivgg.layers import SoftmaxCrossEntropyLoss

    model = minivgg.vgg("A", num_classes=3, input_size=32, width_multiplier=1 / 32, fc_width=4, dtype=np.float64,
                        weight_init="glorot", seed=0).train()
    x, labels = rng.standard_normal((2, 3, 32, 32)), np.array([0, 2])
    original = gradcheck.numerical_gradient

    def only_small_arrays(f, array, h=1e-5):  # the whole net element by element would take minutes
        return original(f, array, h) if array.size <= 64 else np.full(array.shape, np.nan)
    monkeypatch.setattr(gradcheck, "numerical_gradient", only_small_arrays)
    with pytest.warns(UserWarning, match=r"check_model: Dropout\(p=0.5\), Dropout\(p=0.5\) in training mode"):
        errors = gradcheck.check_model(model, SoftmaxCrossEntropyLoss(), x, labels)
    # The arrays the stub checked: a NaN numerical gradient now gives an error of inf, never a pass.
    sizes = {name: owner.params[key].size for name, owner, key in model.named_parameters()}
    checked = {name: value for name, value in errors.items() if name != "x" and sizes[name] <= 64}
    assert "classifier.6.W" in checked or len(checked) >= 3
    assert max(checked.values()) < 1e-6, checked
    assert all(value == np.inf for name, value in errors.items() if name == "x" or sizes[name] > 64)


# --- float64 weight files ---------------------------------------------------------------------------------------

def test_a_float64_weight_file_works_in_every_command(tmp_path, capsys):
    single = tiny_weights(tmp_path / "single.safetensors")
    double = tiny_weights(tmp_path / "double.safetensors", dtype=np.float64)
    assert weights.load(double).dtype == np.float64
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    outputs = {}
    for name, path in (("single", single), ("double", double)):
        code, out, err = run(capsys, "predict", tmp_path / "a.png", "--weights", path, "--top", "3")
        assert code == 0, err
        outputs[name] = out.replace(str(tmp_path / "a.png"), "")
        code, _, err = run(capsys, "features", tmp_path / "a.png", "--weights", path, "--out",
                           tmp_path / f"{name}.npz", "--no-cache", "--scales", "32")
        assert code == 0, err
    assert outputs["single"] == outputs["double"]  # the same top-3, the same percentages
    with np.load(tmp_path / "single.npz") as a, np.load(tmp_path / "double.npz") as b:
        np.testing.assert_allclose(a["features"], b["features"], rtol=1e-4, atol=1e-6)
    pytest.importorskip("onnx")
    code, out, err = run(capsys, "export", double, tmp_path / "double.onnx")
    assert code == 0 and "astype" not in out + err


def test_evaluate_takes_a_float64_weight_file(tmp_path, capsys):
    from tiny_imagenet import WNIDS

    data = make_tiny_imagenet(tmp_path / "data")
    double = tiny_weights(tmp_path / "double.safetensors", WNIDS, dtype=np.float64)
    code, out, err = run(capsys, "evaluate", "--data", data, "--weights", double)
    assert code == 0 and "top-1 err" in out, err


# --- torchvision's names in a safetensors file ----------------------------------------------------------------

def test_a_safetensors_state_dict_with_torchvision_names_is_converted(tmp_path, capsys):
    from safetensors.numpy import save_file
    from weight_file_writers import state_dict_of, write_torch_zip

    model = minivgg.vgg("A", num_classes=3, input_size=32, width_multiplier=0.125, fc_width=16, seed=0,
                        weight_init="glorot")
    state = {name: np.ascontiguousarray(array) for name, array in state_dict_of(model).items()}
    save_file(state, str(tmp_path / "torchvision.safetensors"))
    write_torch_zip(tmp_path / "torchvision.pth", state)
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "a.png")
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "predict", tmp_path / "a.png", "--weights", tmp_path / "torchvision.safetensors")
    assert code == 1 and one_line_error(err, "predict") and snapshot(tmp_path) == before
    assert "its tensors have torchvision's names: import it with `minivgg convert" in err
    code, out, err = run(capsys, "convert", tmp_path / "torchvision.safetensors", tmp_path / "converted.safetensors")
    assert code == 0 and "configuration A" in out, err
    assert run(capsys, "convert", tmp_path / "torchvision.pth", tmp_path / "from-pth.safetensors")[0] == 0
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(weights.load(tmp_path / "converted.safetensors").eval().forward(x),
                                  weights.load(tmp_path / "from-pth.safetensors").eval().forward(x))
    code, _, err = run(capsys, "convert", tmp_path / "converted.safetensors", tmp_path / "again.safetensors")
    assert code == 1 and "is a minivgg weight file already: nothing to convert" in err


# --- class folders in two Unicode normalisations ----------------------------------------------------------------

def test_a_class_folder_written_nfc_in_train_and_nfd_in_val_is_one_class(tmp_path, capsys):
    from minivgg.data import ImageNet

    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    for split, names in (("train", [nfc, "tea"]), ("val", [nfd, "tea"])):
        for label, name in enumerate(names):
            (root / split / name).mkdir(parents=True)
            for i in range(4):
                pixels = np.clip(rng.normal(60 + 120 * label, 30, (40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    val = ImageNet(root, "val")
    assert val.class_names == [nfc, "tea"] and len(val) == 8
    assert {os.path.dirname(name) for name in val.files} == {nfd, "tea"}  # read from the folders as they are
    code, _, err = run(capsys, "train", "--quiet", "--data", root, "--preset", "A/256", *SMALL_NET[:-2],
                       "--batch-size", "4", "--epochs", "1", "--run-dir", tmp_path / "run")
    assert code == 0, err
    code, out, err = run(capsys, "evaluate", "--data", root, "--weights", tmp_path / "run" / "model.safetensors")
    assert code == 0 and "top-1 err" in out, err
    shutil.rmtree(root / "val" / "tea")
    (root / "val" / unicodedata.normalize("NFD", "thé")).mkdir()
    with pytest.raises(ValueError, match="are not among the 2 given class names"):
        ImageNet(root, "val")


# --- the mode of what is written ------------------------------------------------------------------------------

def test_a_runs_files_are_readable_by_others_as_the_umask_says(tmp_path, capsys):
    data = make_tiny_imagenet(tmp_path / "data")
    previous = os.umask(0o022)
    try:
        assert run(capsys, "train", "--quiet", "--data", data, "--preset", "A/256", *SMALL_NET[:-2], "--epochs",
                   "1", "--run-dir", tmp_path / "run")[0] == 0
    finally:
        os.umask(previous)
    modes = {path.name: oct(path.stat().st_mode & 0o777) for path in (tmp_path / "run").iterdir()}
    assert modes == {name: "0o644" for name in (".minivgg-run", "arguments.json", "checkpoint.safetensors",
                                                "log.jsonl", "model.safetensors")}
