"""Weight files: safetensors with the architecture, preprocessing and class names; strict, atomic, no pickle."""
import json
import os

import numpy as np
import pytest

from minivgg import weights
from minivgg.models import vgg
from minivgg.preprocessing import CAFFE_VGG, TORCHVISION

TINY = dict(width_multiplier=1 / 16, fc_width=16, num_classes=4, input_size=32)


@pytest.fixture
def model():
    net = vgg("A-LRN", seed=5, lrn_alpha_divided_by_size=True, **TINY)
    net.preprocessing, net.class_names = CAFFE_VGG, ["cat", "dog", "bird", "fish"]
    return net


def test_save_load_round_trip(model, tmp_path, rng):
    path = tmp_path / "model.safetensors"
    weights.save(model, path, metadata={"trained_on": "digits"})
    loaded = weights.load(path)
    assert loaded.architecture() == model.architecture()
    assert loaded.preprocessing == CAFFE_VGG and loaded.class_names == ["cat", "dog", "bird", "fish"]
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(loaded.eval().forward(x), model.eval().forward(x))
    record, metadata = weights.read_metadata(path)
    assert metadata == {"trained_on": "digits"}
    assert record["architecture"]["config"] == "A-LRN" and record["architecture"]["input_size"] == 32
    assert record["preprocessing"] == CAFFE_VGG
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]  # no temporary file left behind


def test_file_is_plain_safetensors_with_torchvision_names(model, tmp_path):
    from safetensors.numpy import load_file

    path = tmp_path / "model.safetensors"
    weights.save(model, path)
    arrays = load_file(str(path))
    assert set(arrays) == {name for name, _, _ in model.named_parameters()}
    np.testing.assert_array_equal(arrays["features.0.weight"], model.layers[0].params["W"])
    assert arrays["classifier.6.bias"].shape == (4,)


def test_load_into_takes_weights_preprocessing_and_names(model, tmp_path):
    path = tmp_path / "model.safetensors"
    weights.save(model, path)
    other = vgg("A-LRN", seed=6, lrn_alpha_divided_by_size=True, **TINY)
    assert not np.array_equal(other.layers[0].params["W"], model.layers[0].params["W"])
    assert weights.load_into(other, path) is other
    np.testing.assert_array_equal(other.layers[0].params["W"], model.layers[0].params["W"])
    assert other.preprocessing == CAFFE_VGG and other.class_names == model.class_names


def test_mismatches_name_the_tensor(model, tmp_path):
    path = tmp_path / "model.safetensors"
    weights.save(model, path)
    more_classes = vgg("A-LRN", seed=0, lrn_alpha_divided_by_size=True, **dict(TINY, num_classes=5))
    before = more_classes.layers[0].params["W"].copy()
    with pytest.raises(ValueError, match=r"tensor 'classifier.6.weight' has shape \(4, 16\), the model expects "
                                         r"\(5, 16\)"):
        weights.load_into(more_classes, path)
    np.testing.assert_array_equal(more_classes.layers[0].params["W"], before)  # nothing changed
    with pytest.raises(ValueError, match="holds weights for config = 'A-LRN', the model has 'A'"):
        weights.load_into(vgg("A", seed=0, **TINY), path)
    with pytest.raises(ValueError, match="lrn_alpha_divided_by_size = True"):
        weights.load_into(vgg("A-LRN", seed=0, **TINY), path)
    with pytest.raises(ValueError, match=r"tensor 'features.0.weight' is float32, the model's is float64"):
        weights.load_into(vgg("A-LRN", seed=0, lrn_alpha_divided_by_size=True, dtype=np.float64, **TINY), path)


def test_missing_and_unexpected_tensors_are_listed(model, tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "partial.safetensors"
    arrays = {name: np.ascontiguousarray(layer.params[key]) for name, layer, key in model.named_parameters()}
    arrays.pop("features.4.bias")
    arrays["extra.weight"] = np.zeros(2, np.float32)
    header = {"minivgg": json.dumps({"format": weights.FORMAT, "architecture": model.architecture(),
                                     "preprocessing": model.preprocessing.to_dict(), "class_names": None})}
    save_file(arrays, str(path), metadata=header)
    with pytest.raises(ValueError, match=r"missing tensors \['features.4.bias'\], unexpected tensors "
                                         r"\['extra.weight'\]"):
        weights.load(path)


def test_float64_models_stay_float64(tmp_path):
    net = vgg("B", seed=0, dtype=np.float64, **TINY)
    weights.save(net, tmp_path / "f64.safetensors")
    assert weights.load(tmp_path / "f64.safetensors").dtype == np.float64


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_files_are_named(model, tmp_path, damage):
    path = tmp_path / "model.safetensors"
    weights.save(model, path)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[:len(data) // 2], "garbage": b"not a weight file" * 8, "empty": b""}[damage])
    with pytest.raises(ValueError, match="model.safetensors"):
        weights.load(path)


def test_missing_file_and_foreign_safetensors(tmp_path):
    from safetensors.numpy import save_file

    with pytest.raises(FileNotFoundError, match="no weight file"):
        weights.load(tmp_path / "nothing.safetensors")
    save_file({"x": np.zeros(3, np.float32)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="without minivgg's record"):
        weights.load(tmp_path / "foreign.safetensors")


def test_a_failed_write_keeps_the_previous_file(model, tmp_path, monkeypatch):
    import safetensors.numpy

    path = tmp_path / "model.safetensors"
    weights.save(model, path)
    good = path.read_bytes()

    def crash_mid_write(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        weights.save(model, path)
    assert path.read_bytes() == good and sorted(os.listdir(tmp_path)) == ["model.safetensors"]


def test_metadata_must_be_strings(model, tmp_path):
    with pytest.raises(TypeError, match="metadata must map str to str"):
        weights.save(model, tmp_path / "m.safetensors", metadata={"epochs": 3})
    with pytest.raises(ValueError, match="reserved"):
        weights.save(model, tmp_path / "m.safetensors", metadata={"minivgg": "x"})
    assert not (tmp_path / "m.safetensors").exists()


def test_preprocessing_records_survive_for_every_kind(tmp_path):
    for preprocessing in (CAFFE_VGG, TORCHVISION):
        net = vgg("A", seed=0, **TINY)
        net.preprocessing = preprocessing
        weights.save(net, tmp_path / "p.safetensors")
        assert weights.load(tmp_path / "p.safetensors").preprocessing == preprocessing


# Every field of the record is checked, and its sizes against the tensors in the file, before anything is built

def _write(path, record_changes=(), architecture_changes=(), tensors=None, model=None):
    """A weight file of a tiny model whose record (and architecture) is edited as given."""
    from safetensors.numpy import save_file

    model = model or vgg("A", seed=0, **TINY)
    arrays = tensors if tensors is not None else {name: np.ascontiguousarray(layer.params[key])
                                                  for name, layer, key in model.named_parameters()}
    record = {"format": weights.FORMAT, "architecture": dict(model.architecture(), **dict(architecture_changes)),
              "preprocessing": CAFFE_VGG.to_dict(), "class_names": None}
    for key, value in dict(record_changes).items():
        if value is _DELETE:
            del record[key]
        else:
            record[key] = value
    save_file(arrays, str(path), metadata={"minivgg": json.dumps(record)})
    return path


_DELETE = object()


@pytest.mark.parametrize("changes, message", [
    ({"preprocessing": _DELETE}, r"missing \['preprocessing'\]"),
    ({"classes": ["a"]}, r"unknown \['classes'\]"),
    ({"architecture": {"config": "A", "depth": 11}}, r"architecture has unknown keys \['depth'\]"),
    ({"architecture": {"num_classes": 4}}, "architecture must be a mapping with at least 'config'"),
    ({"architecture": {"config": "Z"}}, "unknown VGG configuration 'Z'"),
    ({"architecture": {"config": 11}}, "config must be a string"),
    ({"class_names": ["cat", "dog"]}, r"class_names has 2 names for 4 outputs"),
    ({"class_names": "cat dog"}, "class_names must be null or a list of strings"),
    ({"preprocessing": {"channel_order": "RGB"}}, r"preprocessing needs exactly the fields.*missing \['input_range'"),
])
def test_a_malformed_record_is_a_clear_error_naming_the_file_and_field(tmp_path, changes, message):
    path = _write(tmp_path / "bad.safetensors", changes)
    for read in (weights.load, weights.read_metadata):
        with pytest.raises(ValueError, match=f"bad.safetensors.*{message}"):
            read(path)


@pytest.mark.parametrize("field, value, message", [
    ("std", [0.229, float("nan"), 0.225], "std must be finite, got nan"),
    ("std", [1.0, 0.0, 1.0], r"std must be positive, got \(1.0, 0.0, 1.0\)"),
    ("mean", [float("inf"), 0.0, 0.0], "mean must be finite, got inf"),
    ("mean", [0.0, 0.0], "mean needs three values"),
    ("input_range", float("nan"), "input_range must be finite, got nan"),
    ("input_range", 0.0, "input_range must be positive, got 0.0"),
    ("input_range", "255", "input_range must hold numbers, got '255'"),
])
def test_preprocessing_that_would_turn_every_input_into_nan_is_refused(tmp_path, field, value, message):
    path = _write(tmp_path / "p.safetensors", {"preprocessing": dict(CAFFE_VGG.to_dict(), **{field: value})})
    with pytest.raises(ValueError, match=f"p.safetensors: Preprocessing: {message}"):
        weights.load(path)


def test_a_tiny_file_declaring_a_huge_layer_is_refused_before_allocating(tmp_path):
    import tracemalloc

    path = _write(tmp_path / "huge.safetensors", architecture_changes={"fc_width": 10 ** 7})
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"huge.safetensors: tensor 'classifier.0.weight' has shape \(16, 32\), "
                                             r"its architecture declares \(10000000, 32\)"):
            weights.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2 ** 20  # the 10^7-wide layers would need gigabytes


def test_tensors_missing_from_the_file_or_of_mixed_dtypes_are_named(tmp_path, model):
    arrays = {name: np.ascontiguousarray(layer.params[key]) for name, layer, key in vgg("A", seed=0, **TINY)
              .named_parameters()}
    arrays.pop("features.0.bias")
    with pytest.raises(ValueError, match=r"does not hold the tensors its architecture declares: missing tensors "
                                         r"\['features.0.bias'\]"):
        weights.read_metadata(_write(tmp_path / "missing.safetensors", tensors=arrays))
    arrays["features.0.bias"] = np.zeros(4, np.float64)
    with pytest.raises(ValueError, match="tensors are F32, F64; minivgg models are all float32"):
        weights.load(_write(tmp_path / "mixed.safetensors", tensors=arrays))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_weights_are_refused_naming_the_tensor(tmp_path, bad):
    model = vgg("A", seed=0, **TINY)
    model.layers[3].params["W"][0, 0, 0, 0] = bad
    path = _write(tmp_path / "diverged.safetensors", model=model)
    with pytest.raises(ValueError, match=r"diverged.safetensors: tensor 'features.3.weight' holds 1 non-finite value"):
        weights.load(path)
    with pytest.raises(ValueError, match="features.3.weight' holds 1 non-finite"):
        weights.load_into(vgg("A", seed=1, **TINY), path)
    with pytest.raises(ValueError, match=r"weights.save\(.*again.safetensors\): tensor 'features.3.weight' holds 1"):
        weights.save(model, tmp_path / "again.safetensors")
    assert not (tmp_path / "again.safetensors").exists()


def test_read_metadata_completes_the_architecture_with_the_defaults(tmp_path):
    architecture = {"config": "A", "num_classes": 4, "input_size": 32, "width_multiplier": 1 / 16, "fc_width": 16}
    path = _write(tmp_path / "old.safetensors", {"architecture": architecture})
    record, _ = weights.read_metadata(path)
    assert record["architecture"] == dict(architecture, dropout=0.5, lrn_alpha_divided_by_size=False, batch_norm=False)
    assert weights.load(path).architecture() == record["architecture"]


def test_a_record_nested_200000_deep_is_a_clear_error(tmp_path):
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(1, np.float32)}, str(tmp_path / "deep.safetensors"),
              metadata={"minivgg": "[" * 200_000 + "]" * 200_000})
    with pytest.raises(ValueError, match="deep.safetensors: the minivgg record in the header nests too deep"):
        weights.load(tmp_path / "deep.safetensors")


# Batch-normalised nets: the running statistics and the int64 counter travel with the weights, checked as strictly

def _bn_file(tmp_path, change=None):
    """A weight file of a tiny batch-normalised A after two training batches, its arrays edited by ``change``."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    net = vgg("A", batch_norm=True, seed=0, **TINY)
    for _ in range(2):
        net.forward(np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32))
    path = tmp_path / "bn.safetensors"
    weights.save(net, path)
    if change is not None:
        with safe_open(str(path), framework="np") as handle:
            header = handle.metadata()
        arrays = load_file(str(path))
        change(arrays)
        save_file(arrays, str(path), metadata=header)
    return net, path


def test_a_batch_norm_weight_file_loads_with_its_statistics_and_counter(tmp_path):
    net, path = _bn_file(tmp_path)
    loaded = weights.load(path)
    assert loaded.batch_norm
    norm = loaded.layers[1]
    assert norm.buffers["num_batches_tracked"].dtype == np.int64 and int(norm.buffers["num_batches_tracked"]) == 2
    np.testing.assert_array_equal(norm.buffers["running_var"], net.layers[1].buffers["running_var"])


def _set(name, value):
    def change(arrays):
        arrays[name] = np.asarray(value)  # a NumPy scalar: a 0-d array of its dtype
    return change


def _first(name, value):
    def change(arrays):
        arrays[name] = arrays[name].copy()
        arrays[name][0] = value
    return change


@pytest.mark.parametrize("change, message", [
    (_set("features.1.num_batches_tracked", np.float32(2)), r"'features.1.num_batches_tracked' is F32; a batch-norm "
                                                            r"counter is int64"),
    (_set("features.1.num_batches_tracked", np.int32(2)), r"'features.1.num_batches_tracked' is I32"),
    (lambda arrays: arrays.pop("features.1.running_var"), r"missing tensors \['features.1.running_var'\]"),
    (_first("features.1.running_var", np.nan), r"'features.1.running_var' holds 1 non-finite values \(1 NaN"),
    (_first("features.1.running_mean", np.inf), r"'features.1.running_mean' holds 1 non-finite values \(0 NaN, 1 inf"),
    (_first("features.1.running_var", -1.0), r"'features.1.running_var' holds 1 negative values .* a variance is "
                                             r"never negative"),
    (_set("features.1.num_batches_tracked", np.int64(-1)), r"'features.1.num_batches_tracked' holds 1 negative "
                                                           r"values .* a count of batches is never negative"),
])
def test_a_damaged_batch_norm_file_is_refused_naming_the_statistic(tmp_path, change, message):
    _, path = _bn_file(tmp_path, change)
    for read in (weights.load, lambda p: weights.load_into(vgg("A", batch_norm=True, seed=1, **TINY), p)):
        with pytest.raises(ValueError, match=f"bn.safetensors.*{message}"):
            read(path)
