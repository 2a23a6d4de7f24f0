"""Importing published weights without their frameworks: torchvision .pth (zip and legacy layouts) through a
restricted unpickler, Caffe .caffemodel (V1 and current layer messages) through a wire-format decoder.

The files are written here by small writers that follow the formats byte for byte; when PyTorch happens to
be installed, files written by ``torch.save`` are checked too, against PyTorch's own forward pass.
"""
import pickle
import struct
import zipfile
import zlib

import numpy as np
import pytest

from minivgg import weights
from minivgg.class_names import imagenet_class_names, imagenet_classes
from minivgg.cli.program import main
from minivgg.weights.convert import convert, detect_format, from_caffe, from_torchvision, infer_architecture
from minivgg.weights.convert.caffe_protobuf import iter_fields, read_varint
from minivgg.weights.convert.torch_pickle import read_state_dict
from minivgg.layers import Conv2d, Linear
from minivgg.models import num_parameters, vgg
from minivgg.preprocessing import CAFFE_VGG, TORCHVISION
from weight_file_writers import (blob, field, pickle_state_dict, state_dict_of, storage_of, varint, write_caffemodel,
                                 write_torch_legacy, write_torch_zip)

TINY = dict(width_multiplier=1 / 16, fc_width=16, num_classes=10, input_size=32)


# The tests --------------------------------------------------------------------------------------------

@pytest.fixture
def source():
    return vgg("D", seed=7, **TINY).eval()


def _same_outputs(converted, original, rng):
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(converted.eval().forward(x), original.eval().forward(x))


@pytest.mark.parametrize("writer", [write_torch_zip, write_torch_legacy], ids=["zip", "legacy"])
def test_torchvision_files_convert_to_identical_outputs(source, tmp_path, rng, writer):
    pth = tmp_path / "vgg16-tiny.pth"
    writer(pth, state_dict_of(source))
    assert detect_format(pth) == "torchvision"
    model = convert(pth, tmp_path / "vgg16.safetensors")
    assert model.config == "D" and model.architecture() == source.architecture()
    _same_outputs(model, source, rng)
    loaded = weights.load(tmp_path / "vgg16.safetensors")
    assert loaded.preprocessing == TORCHVISION
    _same_outputs(loaded, source, rng)
    assert weights.read_metadata(tmp_path / "vgg16.safetensors")[1]["source_format"] == "torchvision"


@pytest.mark.parametrize("writer", [write_torch_zip, write_torch_legacy], ids=["zip", "legacy"])
def test_strided_and_offset_tensors_are_read(tmp_path, writer):
    base = np.arange(30, dtype=np.float32).reshape(6, 5)
    views = {"transposed": base.T, "rows": base[2:4], "column": base[1:, 3], "scalar": base[5, 4]}
    assert not views["transposed"].flags.c_contiguous and storage_of(views["rows"])[1] == 10
    writer(tmp_path / "views.pth", views)
    arrays = read_state_dict(tmp_path / "views.pth")
    assert list(arrays) == list(views)
    for name, view in views.items():
        np.testing.assert_array_equal(arrays[name], view)


@pytest.mark.parametrize("v1", [True, False], ids=["V1-layers", "layer"])
def test_caffemodels_convert_to_identical_outputs_expecting_bgr(source, tmp_path, rng, v1):
    path = tmp_path / "VGG_ILSVRC_16_layers.caffemodel"
    write_caffemodel(path, source, v1)
    assert detect_format(path) == "caffe"
    model = convert(path, tmp_path / "vgg16-caffe.safetensors")
    assert model.config == "D"
    _same_outputs(model, source, rng)
    loaded = weights.load(tmp_path / "vgg16-caffe.safetensors")
    assert loaded.preprocessing == CAFFE_VGG
    assert loaded.preprocessing.channel_order == "BGR" and loaded.preprocessing.mean == (103.939, 116.779, 123.68)


def test_thousand_class_models_get_imagenet_names(tmp_path):
    net = vgg("A", seed=0, width_multiplier=1 / 16, fc_width=8, num_classes=1000, input_size=32)
    write_torch_zip(tmp_path / "vgg11.pth", state_dict_of(net))
    model = from_torchvision(tmp_path / "vgg11.pth")
    assert model.config == "A" and model.class_names[:2] == ["tench", "goldfish"] and len(model.class_names) == 1000


def test_a_and_a_lrn_share_shapes_and_config_chooses(tmp_path):
    net = vgg("A", seed=0, **TINY)
    write_torch_zip(tmp_path / "a.pth", state_dict_of(net))
    assert from_torchvision(tmp_path / "a.pth").config == "A"
    lrn = vgg("A-LRN", seed=0, **TINY)
    write_torch_zip(tmp_path / "a-lrn.pth", state_dict_of(lrn))
    assert from_torchvision(tmp_path / "a-lrn.pth", config="A-LRN").config == "A-LRN"
    with pytest.raises(ValueError, match="do not fit configuration E"):
        from_torchvision(tmp_path / "a.pth", config="E")


def test_infer_architecture_reads_the_shapes():
    specs = vgg("E", seed=0, width_multiplier=1 / 8, fc_width=32, num_classes=7, input_size=64).specs
    shapes = [s.parameter_shapes()["W"] for s in specs if s.layer_class in (Conv2d, Linear)]
    assert infer_architecture(shapes) == dict(config="E", num_classes=7, input_size=64, width_multiplier=1 / 8,
                                              fc_width=32)
    with pytest.raises(ValueError, match="three FC weights"):
        infer_architecture(shapes[:-1])


class _Boom:
    """Unpickling this would call os.system: the restricted unpickler must refuse before calling anything."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def test_hostile_pickles_are_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    hostile = pickle.dumps({"features.0.weight": _Boom(marker)}, protocol=2)
    write_torch_zip(tmp_path / "zip.pth", {}, pickle_bytes=hostile)
    with open(tmp_path / "plain.pth", "wb") as handle:
        handle.write(hostile)
    for name in ("zip.pth", "plain.pth"):
        with pytest.raises(ValueError, match=r"refusing to unpickle posix.system|refusing to unpickle nt.system"):
            read_state_dict(tmp_path / name)
    assert not marker.exists()


def test_other_content_is_refused_with_a_reason(tmp_path):
    write_torch_zip(tmp_path / "list.pth", {}, pickle_bytes=pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        read_state_dict(tmp_path / "list.pth")
    double = pickle_state_dict({"w": np.zeros(2, np.float32)}, legacy=False).replace(b"FloatStorage",
                                                                                    b"DoubleStorage")
    write_torch_zip(tmp_path / "double.pth", {"w": np.zeros(2, np.float32)}, pickle_bytes=double)
    with pytest.raises(ValueError, match="only float32"):
        read_state_dict(tmp_path / "double.pth")
    half_bn = dict(state_dict_of(vgg("A", seed=0, **TINY)), **{"features.1.running_mean": np.zeros(4, np.float32)})
    write_torch_zip(tmp_path / "half-bn.pth", half_bn)  # a running mean, but no batch-norm layers around it
    with pytest.raises(ValueError, match="does not match the model: missing tensors"):
        from_torchvision(tmp_path / "half-bn.pth")


def _bn_state_dict(model):
    return dict(state_dict_of(model), **{name: np.array(layer.buffers[key]) for name, layer, key in model.named_buffers()})


def test_a_float_counter_or_integer_weights_are_refused_as_damage_not_as_another_dtype(tmp_path):
    arrays = _bn_state_dict(vgg("A", batch_norm=True, seed=0, **TINY))
    write_torch_zip(tmp_path / "float-counter.pth", dict(arrays, **{"features.1.num_batches_tracked": np.float32(3)}))
    with pytest.raises(ValueError, match=r"'features.1.num_batches_tracked' is float32, the model's is int64; a "
                                         r"batch-norm counter is int64$"):
        from_torchvision(tmp_path / "float-counter.pth")
    integer = {"features.0.weight": arrays["features.0.weight"].astype(np.int64)}
    write_torch_zip(tmp_path / "int-weights.pth", dict(arrays, **integer))
    with pytest.raises(ValueError, match=r"'features.0.weight' is int64, the model's is float32; minivgg weights are "
                                         r"float32 or float64$"):
        from_torchvision(tmp_path / "int-weights.pth")


def test_truncated_files_are_named(source, tmp_path):
    write_torch_legacy(tmp_path / "legacy.pth", state_dict_of(source))
    data = (tmp_path / "legacy.pth").read_bytes()
    (tmp_path / "legacy.pth").write_bytes(data[:-100])
    with pytest.raises(ValueError, match="legacy.pth: file ends inside storage"):
        read_state_dict(tmp_path / "legacy.pth")
    write_caffemodel(tmp_path / "m.caffemodel", source, v1=True)
    data = (tmp_path / "m.caffemodel").read_bytes()
    (tmp_path / "m.caffemodel").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="m.caffemodel is not a readable caffemodel"):
        from_caffe(tmp_path / "m.caffemodel")
    with pytest.raises(FileNotFoundError):
        convert(tmp_path / "absent.pth", tmp_path / "out.safetensors")


def test_varints_round_trip():
    for value in (0, 1, 127, 128, 300, 2 ** 31, 2 ** 63 - 1):
        assert read_varint(varint(value), 0) == (value, len(varint(value)))
    fields = list(iter_fields(field(1, 2, b"abc") + field(3, 0, varint(150)) + field(5, 5, b"\x00\x00\x80?")))
    assert [(n, t) for n, t, _ in fields] == [(1, 2), (3, 0), (5, 5)]
    assert bytes(fields[0][2]) == b"abc" and fields[1][2] == 150


def test_cli_convert_and_info(source, tmp_path, capsys):
    write_caffemodel(tmp_path / "m.caffemodel", source, v1=True)
    assert main(["convert", str(tmp_path / "m.caffemodel"), str(tmp_path / "m.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "configuration D" in out and "BGR" in out
    assert main(["info", str(tmp_path / "m.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "configuration D" in out and f"total: {num_parameters('D', **TINY):,} parameters" in out
    assert main(["info", "d"]) == 0
    assert "total: 138,357,544 parameters (138.4M), 15.47 G multiply-adds" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "nothing.pth"), str(tmp_path / "x.safetensors")]) == 1
    assert "no weight file" in capsys.readouterr().err


def test_imagenet_class_list():
    classes = imagenet_classes()
    wnids = [c.wnid for c in classes]
    assert len(classes) == 1000 and wnids == sorted(wnids) and len(set(wnids)) == 1000
    assert [c.index for c in classes] == list(range(1000))
    assert classes[0].wnid == "n01440764" and imagenet_class_names()[0] == "tench"


# With PyTorch installed: files written by torch.save, outputs checked against PyTorch's forward -----------

def test_torch_saved_files_match_pytorch_outputs(source, tmp_path, rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the files above follow its format")
    nn = torch.nn

    def torch_layer(layer):
        if isinstance(layer, Conv2d):
            return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, padding=layer.padding)
        if isinstance(layer, Linear):
            return nn.Linear(layer.in_features, layer.out_features)
        return {"ReLU": nn.ReLU, "MaxPool2d": lambda: nn.MaxPool2d(2, 2), "Dropout": nn.Dropout}[
            type(layer).__name__]()

    class TorchVGG(nn.Module):  # torchvision's layout: features, flatten, classifier
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*map(torch_layer, source.features))
            self.classifier = nn.Sequential(*map(torch_layer, source.classifier))

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    reference = TorchVGG().eval()
    for tensor in reference.state_dict().values():
        nn.init.normal_(tensor, std=0.05)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    expected = reference(torch.from_numpy(x)).detach().numpy()
    for zip_layout in (True, False):
        path = tmp_path / f"torch-{zip_layout}.pth"
        torch.save(reference.state_dict(), path, _use_new_zipfile_serialization=zip_layout)
        model = from_torchvision(path)
        np.testing.assert_allclose(model.forward(x), expected, rtol=1e-4, atol=1e-5)


# Hostile files that aim at memory or the C stack instead of running code: each a clear error, at once -------

def _one_tensor_pickle(numel, size, stride, legacy=False):
    """A state dict of one tensor "w" over storage "0" of ``numel`` elements, with this size and stride."""
    out = bytearray(pickle_state_dict({"w": np.zeros(1, np.float32)}, legacy=legacy))
    # The writer emits the storage's numel, then offset 0, then size and stride as BININT runs.
    one = pickle.BININT + struct.pack("<i", 1)
    zero = pickle.BININT + struct.pack("<i", 0)
    layout = one + (pickle.NONE if legacy else b"") + pickle.TUPLE + pickle.BINPERSID + zero + pickle.MARK + one \
        + pickle.TUPLE + pickle.MARK + one + pickle.TUPLE
    assert out.count(layout) == 1

    def big(value):  # LONG1: any integer, little-endian two's complement
        data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        return pickle.LONG1 + bytes([len(data)]) + data

    def int_tuple(values):
        return pickle.MARK + b"".join(big(v) for v in values) + pickle.TUPLE

    replaced = big(numel) + (pickle.NONE if legacy else b"") + pickle.TUPLE + pickle.BINPERSID + zero \
        + int_tuple(size) + int_tuple(stride)
    return bytes(out.replace(layout, replaced))


def test_a_stride_zero_tensor_declaring_a_trillion_elements_is_refused(tmp_path):
    write_torch_zip(tmp_path / "stride0.pth", {"w": np.zeros(1, np.float32)},
                    pickle_bytes=_one_tensor_pickle(1, (10 ** 12,), (0,)))
    with pytest.raises(ValueError, match=r"stride0.pth.*declares 1000000000000 elements, more than the 1 its "
                                         r"storage '0' holds"):
        read_state_dict(tmp_path / "stride0.pth")


def test_a_legacy_file_declaring_a_trillion_elements_is_refused_before_reading(tmp_path):
    write_torch_legacy(tmp_path / "legacy.pth", {"w": np.zeros(1, np.float32)})
    data = (tmp_path / "legacy.pth").read_bytes()
    pickled = pickle_state_dict({"w": np.zeros(1, np.float32)}, legacy=True)
    hostile = _one_tensor_pickle(10 ** 12, (10 ** 12,), (1,), legacy=True)
    data = data.replace(pickled, hostile).replace(struct.pack("<q", 1) + b"\x00" * 4, struct.pack("<q", 10 ** 12))
    (tmp_path / "legacy.pth").write_bytes(data)
    with pytest.raises(ValueError, match=r"legacy.pth: file ends inside storage '0' \(truncated\?\): it declares "
                                         r"1000000000000 elements \(4000000000000 bytes\), the file has 0 bytes"):
        read_state_dict(tmp_path / "legacy.pth")



def test_int64_storages_are_bounded_by_eight_bytes_an_element(tmp_path):
    """A LongStorage of n counters needs 8 n bytes: 4 n (a float's size) is a short file in either layout."""
    counters = {"c": np.arange(3, dtype=np.int64)}
    write_torch_zip(tmp_path / "ok.pth", counters)
    assert read_state_dict(tmp_path / "ok.pth")["c"].tolist() == [0, 1, 2]
    with zipfile.ZipFile(tmp_path / "ok.pth") as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries["archive/data/0"] = entries["archive/data/0"][:12]
    with zipfile.ZipFile(tmp_path / "short.pth", "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match=r"short.pth: archive/data/0 holds 12 bytes, expected 3 elements of 8 bytes"):
        read_state_dict(tmp_path / "short.pth")
    write_torch_legacy(tmp_path / "legacy.pth", counters)
    (tmp_path / "legacy.pth").write_bytes((tmp_path / "legacy.pth").read_bytes()[:-12])
    with pytest.raises(ValueError, match=r"legacy.pth: file ends inside storage '0' \(truncated\?\): it declares 3 "
                                         r"elements \(24 bytes\), the file has 12 bytes left"):
        read_state_dict(tmp_path / "legacy.pth")

def _bomb_zip(path, declared_numel, entry_bytes):
    """A PyTorch zip whose storage entry is ``entry_bytes`` zeros deflated about 1000:1.

    The zeros are never deflated as a whole: one MiB is deflated once, flushed so that it stands alone
    (Z_FULL_FLUSH), and the block repeated, which is a valid deflate stream; only the CRC runs over them all.
    """
    chunk = bytes(2 ** 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(entry_bytes // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    raw = block * (entry_bytes // len(chunk)) + deflate.flush()
    info = zipfile.ZipInfo("archive/data/0", date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type, info.CRC, info.file_size, info.compress_size = zipfile.ZIP_DEFLATED, crc, entry_bytes, len(raw)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", _one_tensor_pickle(declared_numel, (declared_numel,), (1,)))
        with archive.open(info, "w"):  # opened to write the header; the bytes are added raw below
            header_offset = info.header_offset
        # ZipFile.open wrote an empty deflated entry; rewrite it in place with the prepared stream.
        archive.fp.seek(header_offset)
        info.compress_size, info.file_size, info.CRC = len(raw), entry_bytes, crc
        archive.fp.write(info.FileHeader(zip64=False) + raw)
        archive.start_dir = archive.fp.tell()


@pytest.fixture(scope="session")
def zip_bomb(tmp_path_factory):
    """About 1 MB on disk, a 1 GiB entry once inflated; written once per test session."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.pth"
    _bomb_zip(path, 16, 2 ** 30)
    return path


def test_a_zip_entry_larger_than_declared_is_refused_before_it_is_inflated(zip_bomb):
    import tracemalloc

    assert zip_bomb.stat().st_size < 8 * 2 ** 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"bomb.pth: archive/data/0 holds 1073741824 bytes, expected 16 "
                                             r"elements of 4 bytes"):
            read_state_dict(zip_bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 20  # nothing of the gigabyte was inflated


def test_a_zip_entry_that_matches_its_declaration_but_expands_a_thousand_times_is_refused(tmp_path):
    # Sizes agree (64 MiB declared, 64 MiB inflated): the compression ratio gives it away.
    _bomb_zip(tmp_path / "declared.pth", 2 ** 24, 2 ** 26)
    with pytest.raises(ValueError, match=r"declared.pth: archive/data/0 expands from \d+ to 67108864 bytes, more "
                                         r"than 100 times \(a zip bomb\?\)"):
        read_state_dict(tmp_path / "declared.pth")


@pytest.mark.parametrize("nesting", ["tuple", "mark", "key"])
def test_a_200000_deep_pickle_is_refused_before_it_can_overflow_the_stack(tmp_path, nesting):
    deep = pickle.EMPTY_TUPLE + pickle.TUPLE1 * 200_000
    body = {"tuple": deep, "mark": pickle.MARK * 200_000 + pickle.EMPTY_TUPLE + pickle.TUPLE * 200_000,
            # hashing a deep tuple as a dict key is what crashed the unpickler with SIGSEGV
            "key": pickle.EMPTY_DICT + deep + pickle.NONE + pickle.SETITEM}[nesting]
    hostile = pickle.PROTO + b"\x02" + body + pickle.STOP
    write_torch_zip(tmp_path / "deep.pth", {}, pickle_bytes=hostile)
    (tmp_path / "plain.pth").write_bytes(hostile)
    for name in ("deep.pth", "plain.pth"):
        with pytest.raises(ValueError, match=f"{name}: the pickle nests containers more than 100 deep"):
            read_state_dict(tmp_path / name)


def test_ordinary_nesting_and_long_dicts_pass_the_depth_check():
    from minivgg.weights.convert.torch_pickle import check_nesting

    check_nesting(pickle.dumps({f"k{i}": (i, [i, (i,)]) for i in range(2000)}, protocol=2), "many")
    check_nesting(pickle.dumps([list(range(10))] * 3 + [((((),),),)], protocol=4), "framed")
    check_nesting(pickle_state_dict(state_dict_of(vgg("A", seed=0, **TINY)), legacy=False), "state dict")
    with pytest.raises(ValueError, match="more than 3 deep"):
        check_nesting(pickle.dumps(((((1,),),),), protocol=2), "four", limit=3)


def test_hostile_converts_fail_on_the_command_line_with_one_line(tmp_path, capsys):
    write_torch_zip(tmp_path / "stride0.pth", {"w": np.zeros(1, np.float32)},
                    pickle_bytes=_one_tensor_pickle(1, (10 ** 12,), (0,)))
    assert main(["convert", str(tmp_path / "stride0.pth"), str(tmp_path / "out.safetensors")]) != 0
    err = capsys.readouterr().err
    assert "stride0.pth" in err and "declares 1000000000000 elements" in err and "Traceback" not in err
    assert not (tmp_path / "out.safetensors").exists()


def _caffemodel_with_blob(path, blob):
    layer = field(1, 2, b"conv1_1") + field(2, 2, b"Convolution") + field(7, 2, blob)
    path.write_bytes(field(1, 2, b"VGG") + field(100, 2, layer))


@pytest.mark.parametrize("case, message", [
    ("huge shape", r"blob of shape \(4294967296, 4294967296\) holds 0 numbers"),
    ("many dimensions", "blob declares more than 8 dimensions"),
    ("empty conv", r"a weight of shape \(0, 3, 3, 3\) has no elements"),
])
def test_caffe_blobs_declaring_impossible_shapes_are_refused(tmp_path, case, message):
    path = tmp_path / "hostile.caffemodel"
    if case == "huge shape":  # 2^64 elements: an int64 product would wrap to 0 and match the empty data
        _caffemodel_with_blob(path, field(7, 2, field(1, 2, varint(2 ** 32) * 2)))
    elif case == "many dimensions":
        _caffemodel_with_blob(path, field(7, 2, field(1, 2, varint(1) * 100_000)))
    else:  # a zero-sized weight would divide by zero when the architecture is read off the shapes
        source = vgg("A", seed=0, **TINY)
        source.layers[0].params["W"] = np.zeros((0, 3, 3, 3), np.float32)
        write_caffemodel(path, source, v1=False)
    with pytest.raises(ValueError, match=message):
        from_caffe(path)


def test_unpacked_floats_are_gathered_into_one_buffer(tmp_path):
    values = np.arange(50_000, dtype=np.float32)
    _caffemodel_with_blob(tmp_path / "unpacked.caffemodel", blob(values, legacy=False, packed=False))
    from minivgg.weights.convert.caffe_protobuf import read_caffemodel

    (layer,) = read_caffemodel(tmp_path / "unpacked.caffemodel")
    np.testing.assert_array_equal(layer.blobs[0], values)


def test_a_folder_or_device_is_not_read_as_weights(tmp_path, capsys):
    from minivgg.weights.convert.caffe_protobuf import read_caffemodel

    with pytest.raises(ValueError, match="not a regular file"):
        read_caffemodel(tmp_path)
    with pytest.raises(ValueError, match="not a regular file"):
        read_state_dict(tmp_path)
    assert main(["convert", str(tmp_path), str(tmp_path / "out.safetensors")]) != 0  # format detection too
    assert "not a regular file" in capsys.readouterr().err


def test_many_tensors_over_one_storage_cannot_multiply_its_memory(tmp_path):
    # Each a valid window, together 1000 copies of the storage: refused before any copy is made.
    base = np.zeros(1000, np.float32)
    views = {f"w{i}": base for i in range(1000)}
    pickled = pickle_state_dict(views, legacy=False)
    # The writer names one storage per tensor; point them all at storage "0".
    for i in range(1, 1000):
        text = str(i).encode()
        pickled = pickled.replace(pickle.BINUNICODE + struct.pack("<I", len(text)) + text + pickle.BINUNICODE
                                  + struct.pack("<I", 3) + b"cpu",
                                  pickle.BINUNICODE + struct.pack("<I", 1) + b"0" + pickle.BINUNICODE
                                  + struct.pack("<I", 3) + b"cpu")
    write_torch_zip(tmp_path / "shared.pth", {"w0": base}, pickle_bytes=pickled)
    with pytest.raises(ValueError, match=r"shared.pth: tensors \['w0', 'w1', 'w2'\] \.\.\. together declare 1000000 "
                                         r"elements over storage '0', which holds 1000"):
        read_state_dict(tmp_path / "shared.pth")
