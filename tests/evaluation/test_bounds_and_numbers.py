"""Sizes are bounded before anything is allocated, numbers that pass the checks but overflow float32 are caught,
the cache serves only files whose digests it checked, and text from files cannot act on the terminal (issue 28).
Every refusal is one line, exit 1 (or 2 for an option), and a byte snapshot shows nothing changed."""
import hashlib
import json
import sys

import numpy as np
import pytest
from PIL import Image
from hostile_files import one_line_error, run, snapshot, tiny_weights
from local_server import server  # noqa: F401  (the local HTTP server fixture)
from tiny_imagenet import WNIDS, make_tiny_imagenet

import minivgg
from minivgg import weights


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_imagenet(tmp_path_factory.mktemp("tiny") / "ILSVRC2012")


def _thin_png(path):
    """The issue's file: a 1 x 100000 PNG, a few hundred bytes, far under Pillow's MAX_IMAGE_PIXELS."""
    Image.fromarray(np.zeros((1, 100000), np.uint8)).save(path, optimize=True)
    assert path.stat().st_size < 1000
    return path


# --- sizes without bounds ---------------------------------------------------------------------------------------

def test_a_one_by_100000_png_is_refused_by_predict_and_localise_before_any_allocation(tmp_path, capsys):
    from minivgg.errors import TooLargeError
    from minivgg.localisation import localisation_net, save_localisation_net

    path = tiny_weights(tmp_path / "w.safetensors")
    save_localisation_net(localisation_net(weights.load(path), "SCR", "all", seed=1), tmp_path / "boxes.safetensors")
    image = _thin_png(tmp_path / "thin.png")
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "predict", image, "--weights", path)
    assert code == 1 and one_line_error(err, "predict") and out == ""
    assert f"{image}: 100000x1 pixels has an aspect ratio of 1e+05:1, more than the limit of 16:1" in err
    code, out, err = run(capsys, "localize", "predict", image, "--weights", tmp_path / "boxes.safetensors",
                         "--classifier", path, "--output", tmp_path / "boxes.png")
    assert code == 1 and one_line_error(err, "localize") and "aspect ratio of 1e+05:1" in err
    assert snapshot(tmp_path) == before
    with pytest.raises(TooLargeError, match="image 0: 100000x1 pixels has an aspect ratio"):
        minivgg.predict(weights.load(path), np.zeros((1, 100000, 3), np.uint8), top=1)


def test_a_one_by_100000_png_in_the_data_is_an_error_of_evaluate_naming_it(data, tmp_path, capsys):
    import shutil

    folder = shutil.copytree(data / "train", tmp_path / "folder")
    _thin_png(folder / WNIDS[0] / "thin.png")
    path = tiny_weights(tmp_path / "w.safetensors", WNIDS)
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "evaluate", "--data", folder, "--weights", path)
    assert code == 1 and one_line_error(err, "evaluate")
    assert f"{folder / WNIDS[0] / 'thin.png'}: 100000x1 pixels has an aspect ratio" in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("arguments, message", [
    (["train", "--crop", "1000000"], "argument --crop: must be at most 2,048"),
    (["train", "--fc-width", "1000000000"], "argument --fc-width: must be at most 65,536"),
    (["train", "--width", "100000"], "argument --width: must be at most 16"),
    (["train", "--batch-size", "1000000000"], "argument --batch-size: must be at most 65,536"),
    (["train", "--scale", "256-100000"], "argument --scale: must be at most 8,192"),
    (["train", "--seed", "100000000000000000000000"], "argument --seed: must be at most 4,294,967,295"),
    (["train", "--seed", "1e23"], "argument --seed: must be an integer, got '1e23'"),
    (["transfer", "--dataset", "folder", "--root", "r", "--weights", "w", "--seed", "4294967296"],
     "argument --seed: must be at most 4,294,967,295"),
    (["predict", "x.png", "--weights", "w", "--scales", "20000"], "argument --scales: must be at most 8,192"),
    (["evaluate", "--weights", "w", "--scales", "256,100000"], "argument --scales: must be at most 8,192"),
    (["info", "D", "--input-size", "1000000"], "argument --input-size: must be at most 8,192"),
    (["info", "D", "--num-classes", "1" + "0" * 5000], "argument --num-classes: must be an integer, got"),
])
def test_sizes_beyond_their_bounds_are_refused_at_parse_time_naming_the_limit(arguments, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, *arguments)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err and len(err) < 2000


def test_a_net_too_large_for_memory_is_refused_before_it_is_built(data, tmp_path, capsys, monkeypatch):
    from minivgg.errors import TooLargeError

    monkeypatch.setenv("MINIVGG_MEMORY_LIMIT", "64M")
    with pytest.raises(TooLargeError, match=r"VGG D with width multiplier 1, FC width 4,096, 1,000 classes and "
                                            r"224x224 inputs \(138,357,544 parameters\) would take about 6\d\d MiB, "
                                            r"more than the limit of 64 MiB \(\$MINIVGG_MEMORY_LIMIT\)"):
        minivgg.vgg("D")
    code, out, err = run(capsys, "train", "--quiet", "--data", data, "--preset", "A/256", "--width", "4",
                         "--fc-width", "4096", "--crop", "64", "--run-dir", tmp_path / "run")
    assert code == 1 and one_line_error(err, "train") and "would take about" in err and "64 MiB" in err
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv("MINIVGG_MEMORY_LIMIT", "a lot")
    with pytest.raises(ValueError, match=r"\$MINIVGG_MEMORY_LIMIT must be a number of bytes such as"):
        minivgg.vgg("A", **dict(num_classes=3, input_size=32, width_multiplier=0.125, fc_width=16))


def test_training_memory_counts_the_batch(data, tmp_path, capsys, monkeypatch):
    """A limit the net and one image fit in, but not its training on batches of 24: refused before the run
    folder is made."""
    from minivgg.models import layer_specs
    from minivgg.summary import memory_estimate

    specs = layer_specs("A", num_classes=3, input_size=32, width_multiplier=0.125, fc_width=16)
    one, batch = memory_estimate(specs, 32), memory_estimate(specs, 32, batch_size=24, training=True)
    assert batch > 4 * one
    monkeypatch.setenv("MINIVGG_MEMORY_LIMIT", str((one + batch) // 2))
    code, _, err = run(capsys, "train", "--quiet", "--data", data, "--preset", "A/256", "--width", "0.125",
                       "--fc-width", "16", "--crop", "32", "--batch-size", "24", "--device-batch", "24",
                       "--run-dir", tmp_path / "run")
    assert code == 1 and one_line_error(err, "train")
    assert "training VGG A (145,923 parameters, 32x32 crops) on batches of 24 would take about" in err
    assert not (tmp_path / "run").exists()


def test_dense_evaluation_at_a_huge_scale_is_refused_before_rescaling(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MINIVGG_MEMORY_LIMIT", "256M")
    path = tiny_weights(tmp_path / "w.safetensors")
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "a.png")
    code, out, err = run(capsys, "predict", tmp_path / "a.png", "--weights", path, "--scales", "8192")
    assert code == 1 and one_line_error(err, "predict") and out == ""
    assert "dense evaluation of 1 image rescaled to 8192x8192 pixels would take about" in err


def test_an_allocation_that_still_fails_is_one_line_naming_the_size(tmp_path, capsys, monkeypatch):
    import minivgg.evaluation.prediction  # noqa: F401

    module = sys.modules["minivgg.evaluation.posteriors"]
    monkeypatch.setattr(module, "posteriors", lambda *args, **kwargs: np.empty(2 ** 45, np.float32))
    path = tiny_weights(tmp_path / "w.safetensors")
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "a.png")
    code, out, err = run(capsys, "predict", tmp_path / "a.png", "--weights", path)
    assert code == 1 and one_line_error(err, "predict") and out == ""
    assert "out of memory: Unable to allocate 128. TiB for an array with shape (35184372088832,)" in err


# --- values that pass the checks but break the numbers ---------------------------------------------------------

def _edit_record(path, edit):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(path), framework="np") as handle:
        metadata = dict(handle.metadata())
    record = json.loads(metadata["minivgg"])
    edit(record)
    metadata["minivgg"] = json.dumps(record)
    save_file(load_file(str(path)), str(path), metadata=metadata)


def test_a_preprocessing_that_overflows_float32_is_refused_naming_the_file(tmp_path, capsys):
    path = tiny_weights(tmp_path / "w.safetensors")
    _edit_record(path, lambda record: record["preprocessing"].update(mean=[1e308] * 3, std=[1e-308] * 3))
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "a.png")
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "predict", tmp_path / "a.png", "--weights", path)
    assert code == 1 and one_line_error(err, "predict") and out == "" and "nan" not in out
    assert f"{path}: Preprocessing: mean (1e+308, 1e+308, 1e+308) is not a finite float32" in err
    assert snapshot(tmp_path) == before


def _weights_with(path, layer, value):
    model = weights.load(tiny_weights(path))
    model.layers[layer].params["W"][...] = value
    weights.save(model, path)
    return path


def test_first_layer_weights_that_overflow_float32_are_refused_when_loaded(tmp_path, capsys):
    path = _weights_with(tmp_path / "w.safetensors", 0, 3e38)
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "a.png")
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "predict", tmp_path / "a.png", "--weights", path)
    assert code == 1 and one_line_error(err, "predict") and out == ""
    assert f"{path}: tensor 'features.0.weight' holds weights up to 3e+38: the first convolution's output" in err
    assert "beyond float32's largest value" in err and snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["predict", "evaluate", "features"])
def test_non_finite_scores_or_descriptors_are_an_error_never_nan_percent(command, data, tmp_path, capsys):
    path = _weights_with(tmp_path / "w.safetensors", 3, 3e38)  # the second convolution: only a forward knows
    image = sorted((data / "val").iterdir())[0]
    before = snapshot(tmp_path)
    arguments = {"predict": ["predict", image, "--weights", path],
                 "evaluate": ["evaluate", "--data", data, "--weights", path, "--ignore-class-names"],
                 "features": ["features", image, "--weights", path, "--out", tmp_path / "f.npz", "--no-cache",
                              "--scales", "32"]}[command]
    code, out, err = run(capsys, *arguments)
    assert code == 1 and one_line_error(err, command) and "nan" not in out.lower()
    assert "NaN or infinite" in err and "overflow float32" in err
    assert snapshot(tmp_path) == before
    from minivgg.errors import NonFiniteOutputError

    with pytest.raises(NonFiniteOutputError):
        minivgg.predict(weights.load(path), image, top=1)


# --- the cache serves only checked files ----------------------------------------------------------------------

def test_a_file_put_where_the_offline_message_says_is_used_only_if_it_is_the_published_one(tmp_path, capsys):
    from weight_file_writers import state_dict_of, write_torch_zip

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    impostor = minivgg.vgg("A", num_classes=10, input_size=32, width_multiplier=1 / 16, fc_width=8, seed=0)
    write_torch_zip(downloads / "vgg11-8a719046.pth", state_dict_of(impostor))
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "download", "vgg11", "--cache", tmp_path)
    assert code == 1 and one_line_error(err, "download") and out == ""
    assert f"{downloads / 'vgg11-8a719046.pth'} is in the cache, but" in err and "is not the published file" in err
    assert "Delete it and run again" in err and snapshot(tmp_path) == before
    with pytest.raises(ValueError, match="is not the published file"):
        minivgg.pretrained("vgg11", cache=tmp_path, progress=False)


def test_a_converted_file_in_the_cache_is_checked_every_time_it_is_served(tmp_path, server):  # noqa: F811
    from weight_file_writers import state_dict_of, write_torch_zip
    from minivgg.weights.published import PublishedWeights, pretrained

    source = minivgg.vgg("D", seed=3, width_multiplier=1 / 16, fc_width=8, num_classes=1000, input_size=32)
    write_torch_zip(tmp_path / "tiny.pth", state_dict_of(source))
    published = (tmp_path / "tiny.pth").read_bytes()
    digest = hashlib.sha256(published).hexdigest()
    cache = tmp_path / "cache"
    server.files[f"/tiny16-{digest[:8]}.pth"] = published
    entry = PublishedWeights("tiny16", f"{server.url}/tiny16-{digest[:8]}.pth", "torchvision", "D", sha256=digest[:8])
    pretrained(entry, cache=cache, progress=False)
    converted = cache / f"tiny16-{digest[:8]}.safetensors"
    requests = len(server.requests)
    pretrained(entry, cache=cache, progress=False)  # served from the cache, checked
    assert len(server.requests) == requests
    # Another minivgg file in its place: refused.
    tiny_weights(converted, None, **dict(num_classes=1000))
    with pytest.raises(ValueError, match=r"was not converted from the published tiny16-.*\.pth by minivgg"):
        pretrained(entry, cache=cache, progress=False)
    # The converted file with one weight changed, header intact: refused.
    converted.unlink()
    pretrained(entry, cache=cache, progress=False)
    data = bytearray(converted.read_bytes())
    data[-1] ^= 0x01
    converted.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="its tensors are not those converted"):
        pretrained(entry, cache=cache, progress=False)


# --- text from files cannot act on the terminal ----------------------------------------------------------------

def test_info_shows_metadata_with_control_characters_escaped(tmp_path, capsys):
    model = weights.load(tiny_weights(tmp_path / "w.safetensors"))
    weights.save(model, tmp_path / "w.safetensors", metadata={"note\x1b[31m": "\x1b[2J\x1b[Hyou were hacked\n\x07"})
    code, out, err = run(capsys, "info", tmp_path / "w.safetensors")
    assert code == 0 and "\x1b" not in out and "\x07" not in out
    assert "note\\x1b[31m: \\x1b[2J\\x1b[Hyou were hacked\\n\\x07" in out


def test_a_class_name_cannot_forge_a_line_of_predict(tmp_path, capsys):
    path = tiny_weights(tmp_path / "w.safetensors", ["cat\n  99.99%  tiger", "dog\x1b[2J", "bird\u202eevil"])
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "a.png")
    code, out, err = run(capsys, "predict", tmp_path / "a.png", "--weights", path, "--top", "3")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4 and "\x1b" not in out and "\u202e" not in out
    assert any(line.endswith("cat\\n  99.99%  tiger") for line in lines)
    assert any(line.endswith("bird\\u202eevil") for line in lines)


def test_an_error_quoting_a_file_shows_its_control_characters_escaped(tmp_path, capsys):
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "evaluate", "--weights", tmp_path / "no\x1b[2Jsuch.safetensors")
    assert code == 1 and one_line_error(err, "evaluate") and "\x1b" not in err and "no\\x1b[2Jsuch" in err
    assert snapshot(tmp_path) == before


def test_a_download_cache_that_is_a_file_is_named_before_anything_is_fetched(tmp_path, capsys, monkeypatch):
    (tmp_path / "photo.png").write_bytes(b"a photo")
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "download", "vgg11", "--cache", tmp_path / "photo.png")
    assert code == 1 and one_line_error(err, "download") and out == ""
    assert f"--cache {tmp_path / 'photo.png'} is a file, not a folder" in err and "Errno" not in err
    monkeypatch.setenv("MINIVGG_HOME", str(tmp_path / "photo.png" / "cache"))
    code, _, err = run(capsys, "download", "vgg11")
    assert code == 1 and one_line_error(err, "download")
    assert f"the cache folder {tmp_path / 'photo.png' / 'cache'}: {tmp_path / 'photo.png'} is a file" in err
    assert snapshot(tmp_path) == before


def test_a_file_name_in_a_progress_bar_shows_its_control_characters_escaped(data, tmp_path, capsys):
    """evaluate names each weight file in its bar: `--weights runs/*/...` may bring any name to the terminal."""
    import shutil

    path = tmp_path / "w\x1b[2Jred\n 99%.safetensors"
    shutil.copy(tiny_weights(tmp_path / "w.safetensors", WNIDS), path)
    code, out, err = run(capsys, "evaluate", "--data", data, "--weights", path)
    assert code == 0 and "\x1b" not in out + err and "w\\x1b[2Jred\\n 99%.safetensors" in err
