"""Real benchmark data: the IDX format (Fashion-MNIST) and CIFAR-10's binary version read from files these
tests write, every malformed file a clear error naming it; the named datasets found in the documented order
or downloaded from a local server and checked; seeded subsets; and `minivgg train --data` on them. The tests
marked by ``needs_fashion_mnist`` read the real files of Debian's ``dataset-fashion-mnist`` package."""
import dataclasses
import gzip
import hashlib
import os
import struct
from types import SimpleNamespace

import numpy as np
import pytest

from minivgg.cli.program import main
from minivgg.data import ArrayDataset, catalogue, subset
from minivgg.data.catalogue import FASHION_MNIST, IDX_FILES, PublishedFile, load_splits, locate, read
from minivgg.data.cifar import (CIFAR10_FOLDER, CIFAR10_META_FILE, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES,
                                read_cifar10, read_cifar_batch, write_cifar_batch)
from minivgg.data.idx import read_idx, read_idx_images, read_idx_labels, read_idx_pair, write_idx
from minivgg.data.subsets import stratified_split, subset_indices
from minivgg.weights.download import ChecksumError
from minivgg.errors import DataFileError
from local_server import server  # noqa: F401  (the local HTTP server fixture)

DEBIAN_FOLDER = "/usr/share/datasets/fashion-mnist"
needs_fashion_mnist = pytest.mark.skipif(
    not os.path.isdir(DEBIAN_FOLDER), reason=f"the real Fashion-MNIST files are not installed ({DEBIAN_FOLDER}: "
    f"apt-get install dataset-fashion-mnist)")

SMALL_NET = ["--width", "0.125", "--fc-width", "16", "--batch-size", "8", "--epochs", "1"]


# --- the IDX format ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_files_read_back_what_was_written_gzipped_or_not(tmp_path, rng, name, dtype):
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_big_endian_as_lecun_describes(tmp_path):
    # 0x00000803: unsigned bytes, 3 dimensions; sizes 2, 1, 3 as 4-byte big-endian integers; then the pixels.
    (tmp_path / "x").write_bytes(bytes.fromhex("00000803 00000002 00000001 00000003") + bytes(range(6)))
    np.testing.assert_array_equal(read_idx_images(tmp_path / "x"), np.arange(6, dtype=np.uint8).reshape(2, 1, 3))
    (tmp_path / "y").write_bytes(bytes.fromhex("00000c01 00000002 00000001 fffffffe"))  # int32 1 and -2
    np.testing.assert_array_equal(read_idx(tmp_path / "y"), [1, -2])


def _images_file(tmp_path, body=None, header=None, name="images-idx3-ubyte"):
    header = header if header is not None else bytes.fromhex("00000803 00000002 00000002 00000002")
    body = body if body is not None else bytes(8)
    (tmp_path / name).write_bytes(header + body)
    return tmp_path / name


@pytest.mark.parametrize("header, body, message", [
    (bytes.fromhex("1f8b0803"), b"", "is not an IDX file: its magic number is 0x1f8b0803"),
    (bytes.fromhex("00000703 00000001 00000001 00000001"), b"\0", "is not an IDX file: its magic number is 0x00000703"),
    (b"\0\0", b"", "is not an IDX file: 2 bytes, shorter than the 4-byte magic number"),
    (bytes.fromhex("00000803 00000002"), b"", "is truncated: it ends inside its header, which declares 3 dimensions"),
    (None, bytes(7), "is truncated: its header declares 2x2x2 unsigned byte(s), 8 bytes after the header, but it "
                     "holds 7"),
    (None, bytes(9), "is longer than its header says"),
    (bytes.fromhex("00000803 ffffffff ffffffff ffffffff"), bytes(8), "is truncated: its header declares "
                                                                     "4294967295x4294967295x4294967295"),
    (bytes.fromhex("00000801 00000008"), bytes(8), "holds 1-dimensional uint8 numbers of shape (8,); images are "
                                                   "3-dimensional unsigned bytes"),
    (bytes.fromhex("00000c03 00000001 00000001 00000002"), bytes(8), "holds 3-dimensional int32 numbers"),
], ids=["gzip-magic", "unknown-type", "no-magic", "cut-header", "truncated", "bytes-left-over", "huge-header",
        "labels-as-images", "int32-images"])
def test_every_malformed_idx_file_is_an_error_naming_it(tmp_path, header, body, message):
    path = _images_file(tmp_path, body, header)
    with pytest.raises(DataFileError) as caught:
        read_idx_images(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_a_cut_or_fake_gzip_file_is_an_error_naming_it(tmp_path):
    write_idx(tmp_path / "whole-idx3-ubyte.gz", np.zeros((10, 28, 28), np.uint8))
    data = (tmp_path / "whole-idx3-ubyte.gz").read_bytes()
    (tmp_path / "cut-idx3-ubyte.gz").write_bytes(data[:len(data) // 2])
    (tmp_path / "fake-idx3-ubyte.gz").write_bytes(bytes.fromhex("00000803 00000001 00000001 00000001 00"))
    for name in ("cut-idx3-ubyte.gz", "fake-idx3-ubyte.gz"):
        with pytest.raises(DataFileError, match=f"{tmp_path / name} is not a complete gzip file"):
            read_idx(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="IDX file .*missing-idx3-ubyte does not exist"):
        read_idx(tmp_path / "missing-idx3-ubyte")


def test_image_and_label_counts_must_agree(tmp_path):
    write_idx(tmp_path / "images", np.zeros((3, 2, 2), np.uint8))
    write_idx(tmp_path / "labels", np.arange(4, dtype=np.uint8))
    with pytest.raises(DataFileError, match=f"{tmp_path / 'images'} holds 3 images but {tmp_path / 'labels'} holds "
                                            f"4 labels"):
        read_idx_pair(tmp_path / "images", tmp_path / "labels")
    with pytest.raises(DataFileError, match="labels are 1-dimensional unsigned bytes"):
        read_idx_labels(tmp_path / "images")


# --- CIFAR-10, binary version --------------------------------------------------------------------------------

def write_cifar10(folder, per_batch=6, seed=0, num_classes=10):
    """CIFAR-10's binary files in ``folder`` with random images, each label ``index % num_classes``."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for name in CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,):
        images = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        write_cifar_batch(os.path.join(folder, name), images, np.arange(per_batch) % num_classes)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(os.path.join(folder, CIFAR10_META_FILE), "w") as handle:
        handle.write("\n".join(names[:num_classes]) + "\n\n")
    return folder


def test_cifar_records_are_a_label_then_red_green_blue_planes_row_by_row(tmp_path):
    record = bytearray([7]) + bytearray(3 * 1024)
    record[1 + 0 * 1024 + 1 * 32 + 2] = 10    # red plane, row 1, column 2
    record[1 + 1 * 1024 + 1 * 32 + 2] = 20    # green
    record[1 + 2 * 1024 + 31 * 32 + 0] = 30   # blue, row 31, column 0
    (tmp_path / "b.bin").write_bytes(bytes(record) * 2)
    images, labels = read_cifar_batch(tmp_path / "b.bin")
    assert images.shape == (2, 32, 32, 3) and labels.tolist() == [7, 7]
    assert images[0, 1, 2].tolist() == [10, 20, 0] and images[1, 31, 0].tolist() == [0, 0, 30]
    assert images.sum() == 2 * 60


def test_cifar10_folder_reads_back_and_finds_the_unpacked_subfolder(tmp_path, rng):
    write_cifar10(tmp_path / CIFAR10_FOLDER)
    data = read_cifar10(tmp_path)  # the folder above cifar-10-batches-bin/ works too
    assert data["train"][0].shape == (30, 32, 32, 3) and data["test"][0].shape == (6, 32, 32, 3)
    assert data["class_names"][:2] == ["airplane", "automobile"] and len(data["class_names"]) == 10
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    write_cifar_batch(tmp_path / "x.bin", images, [0, 1, 2, 9])
    back, labels = read_cifar_batch(tmp_path / "x.bin")
    np.testing.assert_array_equal(back, images)
    assert labels.tolist() == [0, 1, 2, 9]


def test_malformed_cifar_files_are_errors_naming_them(tmp_path):
    folder = write_cifar10(tmp_path / "c")
    batch = folder / "data_batch_3.bin"
    batch.write_bytes(batch.read_bytes()[:-5])
    with pytest.raises(DataFileError, match=f"{batch} is not a CIFAR-10 binary batch: .* is not a whole number of "
                                            f"3,073-byte records"):
        read_cifar10(folder)
    write_cifar10(folder)
    (folder / CIFAR10_META_FILE).write_text("a\nb\n")  # two classes, labels up to 5
    with pytest.raises(DataFileError, match="data_batch_1.bin: record 2 has label 2, but there are 2 classes"):
        read_cifar10(folder)
    write_cifar10(folder)
    os.remove(folder / CIFAR10_TEST_FILE)
    with pytest.raises(FileNotFoundError, match=r"lacks CIFAR-10 binary files \['test_batch.bin'\]"):
        read_cifar10(folder)


def test_the_pickled_python_version_is_refused_with_a_pointer_to_the_binary_one(tmp_path, capsys):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    # What a malicious pickle would do if it were loaded; it must never be.
    (folder / "data_batch_1").write_bytes(b"cos\nsystem\n(S'touch " + str(tmp_path / "ran").encode() + b"'\ntR.")
    (folder / "batches.meta").write_bytes(b"\x80\x04N.")
    for root in (folder, tmp_path):
        with pytest.raises(DataFileError, match="python version .*pickles.*Use the binary version instead"):
            read_cifar10(root)
    assert main(["train", "--quiet", "--data", str(tmp_path), "--run-dir", str(tmp_path / "run")]) == 1
    assert "CIFAR-10's python version" in capsys.readouterr().err
    assert not (tmp_path / "ran").exists() and not (tmp_path / "run").exists()


# --- named datasets: where they are looked for, and the download ----------------------------------------------

def write_idx_dataset(folder, train=40, test=20, seed=0, gzipped=True, side=28):
    """The four IDX files of a small 10-class dataset in ``folder``; labels ``index % 10``."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    suffix = ".gz" if gzipped else ""
    for split, count in (("train", train), ("test", test)):
        prefix = "t10k" if split == "test" else "train"
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{suffix}"),
                  rng.integers(0, 256, (count, side, side), dtype=np.uint8))
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{suffix}"), (np.arange(count) % 10).astype(np.uint8))
    return folder


def _content_sha256(path):
    with (gzip.open if str(path).endswith(".gz") else open)(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture
def published(tmp_path, server, monkeypatch):  # noqa: F811
    """A small IDX dataset published on the local server as "fashion-mnist", with its digests; no other
    place to find it (an empty $MINIVGG_DATA, no system copy, an empty cache)."""
    source = write_idx_dataset(tmp_path / "published")
    files = []
    for stem in IDX_FILES.values():
        data = (source / f"{stem}.gz").read_bytes()
        server.files[f"/{stem}.gz"] = data
        files.append(PublishedFile(f"{stem}.gz", f"{server.url}/{stem}.gz", hashlib.sha256(data).hexdigest(), len(data),
                                   _content_sha256(source / f"{stem}.gz")))
    entry = dataclasses.replace(FASHION_MNIST, files=tuple(files), system_folders=(str(tmp_path / "system"),))
    monkeypatch.setitem(catalogue.DATASETS, "fashion-mnist", entry)
    monkeypatch.setenv("MINIVGG_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MINIVGG_HOME", str(tmp_path / "home"))
    return SimpleNamespace(entry=entry, source=source)


def _copy(source, folder, gzipped=True):
    os.makedirs(folder, exist_ok=True)
    for stem in IDX_FILES.values():
        data = (source / f"{stem}.gz").read_bytes()
        if gzipped:
            (folder / f"{stem}.gz").write_bytes(data)
        else:
            (folder / stem).write_bytes(gzip.decompress(data))
    return folder


def test_named_dataset_is_looked_for_in_the_documented_order(published, tmp_path, server):  # noqa: F811
    source = published.source
    cache = tmp_path / "home" / "datasets" / "fashion-mnist"
    system = _copy(source, tmp_path / "system", gzipped=False)  # Debian's copy may be recompressed or plain
    environment = _copy(source, tmp_path / "data" / "fashion-mnist")
    explicit = _copy(source, tmp_path / "explicit")
    assert locate("fashion-mnist", root=explicit) == str(explicit)
    assert locate("fashion-mnist") == str(environment)
    for folder, next_place in ((environment, system), (system, cache)):  # emptied: the next place is used
        for name in os.listdir(folder):
            os.remove(folder / name)
        assert locate("fashion-mnist", progress=False) == str(next_place)
    assert {path for path, _ in server.requests} == {f"/{stem}.gz" for stem in IDX_FILES.values()}
    server.requests.clear()
    assert locate("fashion-mnist") == str(cache) and not server.requests  # the cache, before any download
    data = read("fashion-mnist")
    assert data["class_names"] == list(FASHION_MNIST.class_names) and data["train"][0].shape == (40, 28, 28)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nowhere'} does not hold Fashion-MNIST's files"):
        locate("fashion-mnist", root=tmp_path / "nowhere")


def test_download_is_checked_and_a_damaged_copy_is_never_used(published, tmp_path, server, monkeypatch):  # noqa: F811
    server.mode = "corrupt"
    with pytest.raises(ChecksumError, match="the downloaded file's SHA-256 is"):
        locate("fashion-mnist", progress=False)
    cache = tmp_path / "home" / "datasets" / "fashion-mnist"
    assert not any(name.endswith("ubyte.gz") for name in os.listdir(cache))  # only .partial files
    server.mode = "normal"
    with pytest.raises(FileNotFoundError, match=r"not in .*\$MINIVGG_DATA.*the system's copy.*the cache.*"
                                                r"downloading was not allowed"):
        locate("fashion-mnist", download=False)
    # A copy on disk that is not the published content is an error naming the file, not silently skipped.
    other = write_idx_dataset(tmp_path / "data" / "fashion-mnist", seed=1)
    with pytest.raises(DataFileError, match=f"{other / 'train-images-idx3-ubyte.gz'} is not Fashion-MNIST's "
                                            f"published file: its content's SHA-256 is"):
        read("fashion-mnist")
    assert read(other)["class_names"] == [str(k) for k in range(10)]  # as a folder, it is read as it is


def test_plain_files_are_preferred_and_read_like_gzipped_ones(tmp_path):
    write_idx_dataset(tmp_path, gzipped=True)
    gz = read(tmp_path)
    write_idx_dataset(tmp_path, gzipped=False)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"damaged")  # the plain file is the one read
    plain = read(tmp_path)
    np.testing.assert_array_equal(plain["train"][0], gz["train"][0])
    assert catalogue.data_kind(tmp_path) == "idx" and catalogue.data_kind(tmp_path / "missing") is None


def test_an_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not one of the named datasets fashion-mnist, cifar10"):
        read(tmp_path)


def test_cifar10_is_downloaded_as_its_binary_archive_and_unpacked(tmp_path, server, monkeypatch):  # noqa: F811
    import io
    import tarfile

    folder = write_cifar10(tmp_path / "src" / CIFAR10_FOLDER)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=CIFAR10_FOLDER)
        info = tarfile.TarInfo("../outside")  # a member that must never be written
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    archive = buffer.getvalue()
    server.files["/cifar-10-binary.tar.gz"] = archive
    entry = dataclasses.replace(catalogue.CIFAR10, files=(PublishedFile(
        "cifar-10-binary.tar.gz", f"{server.url}/cifar-10-binary.tar.gz", hashlib.sha256(archive).hexdigest(),
        len(archive)),))
    monkeypatch.setitem(catalogue.DATASETS, "cifar10", entry)
    monkeypatch.delenv("MINIVGG_DATA", raising=False)
    monkeypatch.setenv("MINIVGG_HOME", str(tmp_path / "home"))
    splits = load_splits("cifar10", progress=False)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [24, 6, 6] and splits["name"] == "cifar10"
    assert sorted(os.listdir(tmp_path / "home" / "datasets" / "cifar10" / CIFAR10_FOLDER)) == sorted(
        CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE, CIFAR10_META_FILE))
    assert not (tmp_path / "home" / "datasets" / "outside").exists()
    unpacked = tmp_path / "home" / "datasets" / "cifar10" / CIFAR10_FOLDER
    os.remove(unpacked / CIFAR10_TEST_FILE)  # an unpacking cut short: unpacked again from the checked archive
    requests = len(server.requests)
    assert len(load_splits("cifar10", progress=False)["test"]) == 6 and len(server.requests) == requests


# --- subsets and splits --------------------------------------------------------------------------------------

def test_subsets_are_seeded_nested_and_take_so_many_per_class():
    labels = np.repeat(np.arange(4), [10, 7, 3, 12])
    a = subset_indices(labels, per_class=5, seed=1)
    assert np.bincount(labels[a]).tolist() == [5, 5, 3, 5] and np.all(np.diff(a) > 0)
    assert np.array_equal(a, subset_indices(labels, per_class=5, seed=1))
    assert not np.array_equal(a, subset_indices(labels, per_class=5, seed=2))
    assert set(a) <= set(subset_indices(labels, per_class=6, seed=1))  # a larger subset holds the smaller one
    first = subset_indices(labels, count=9, seed=3)
    assert len(first) == 9 and set(first) <= set(subset_indices(labels, count=20, seed=3))
    for bad in ({"per_class": 0}, {"count": 2.5}, {}, {"per_class": 1, "count": 1}):
        with pytest.raises(ValueError):
            subset_indices(labels, **bad)


def test_validation_split_holds_out_a_tenth_of_each_class():
    labels = np.repeat(np.arange(3), [20, 30, 11])
    kept, held = stratified_split(labels, 0.1, seed=0)
    assert np.bincount(labels[held]).tolist() == [2, 3, 1]
    assert len(np.intersect1d(kept, held)) == 0 and len(kept) + len(held) == len(labels)


def test_subset_of_any_dataset_loads_through_it(rng):
    images = rng.integers(0, 256, (12, 5, 5), dtype=np.uint8)  # grey images come out as RGB
    dataset = ArrayDataset(images, np.arange(12) % 3, ["a", "b", "c"])
    part = subset(dataset, per_class=2, seed=0)
    assert len(part) == 6 and np.bincount(part.labels).tolist() == [2, 2, 2]
    image, label = part.load(0)
    original = int(part.indices[0])
    assert image.shape == (5, 5, 3) and label == original % 3
    assert all(np.array_equal(image[:, :, c], images[original]) for c in range(3))
    assert part.fingerprint() != subset(dataset, per_class=2, seed=1).fingerprint()


def test_load_splits_takes_the_subset_before_holding_out_validation(tmp_path):
    write_idx_dataset(tmp_path, train=200, test=30)
    splits = load_splits(tmp_path, per_class=10, seed=0)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [90, 10, 30]
    assert np.bincount(splits["val"].labels).tolist() == [1] * 10
    again = load_splits(tmp_path, per_class=10, seed=0)
    np.testing.assert_array_equal(again["train"].images, splits["train"].images)


# --- the command line ---------------------------------------------------------------------------------------

def test_train_on_a_folder_of_idx_files(tmp_path, capsys):
    data = write_idx_dataset(tmp_path / "mnist-like")
    code = main(["train", "--quiet", "--data", str(data), *SMALL_NET, "--run-dir", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "on 30 images" in out  # 40, one of each class held out for validation
    assert "test top-1 accuracy" in out and "(20 images)" in out
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_train_on_fashion_mnist_by_name_downloads_it_once(published, tmp_path, server, capsys):  # noqa: F811
    run = tmp_path / "run"
    code = main(["train", "--quiet", "--data", "fashion-mnist", "--per-class", "3", *SMALL_NET, "--run-dir", str(run)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "on 20 images" in out and "(20 images)" in out  # 3 per class, one held out; the whole test set
    from minivgg import weights
    assert weights.read_metadata(run / "model.safetensors")[0]["class_names"][0] == "T-shirt/top"
    requests = len(server.requests)
    assert main(["train", "--quiet", "--data", "fashion-mnist", *SMALL_NET, "--run-dir", str(tmp_path / "r2")]) == 0
    assert len(server.requests) == requests  # found in the cache the second time


def test_train_on_a_cifar10_folder(tmp_path, capsys):
    data = write_cifar10(tmp_path / "cifar" / CIFAR10_FOLDER)
    code = main(["train", "--quiet", "--data", str(data.parent), *SMALL_NET, "--run-dir", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "on 24 images" in out and "(6 images)" in out  # 30, one of each of the 6 classes held out


@pytest.mark.parametrize("arguments, message", [
    (["--per-class", "5"], "--per-class takes a subset of Fashion-MNIST, CIFAR-10 or a folder of their files, not "
                           "of the embedded digits"),
    (["--data", "fashion-mnist", "--preset", "A/256"], "--preset A/256 is a stage of the paper on ImageNet-style "
                                                       "photos and needs --data FOLDER"),
])
def test_train_refuses_what_does_not_apply(tmp_path, capsys, monkeypatch, arguments, message):
    monkeypatch.setenv("MINIVGG_HOME", str(tmp_path / "home"))
    write_idx_dataset(tmp_path / "home" / "datasets" / "fashion-mnist")  # found there, never downloaded
    monkeypatch.setattr(catalogue, "_read_idx_folder", lambda *a, **k: pytest.fail("data read before the check"))
    assert main(["train", "--quiet", *arguments, "--run-dir", str(tmp_path / "run")]) == 1
    assert message in capsys.readouterr().err


def test_per_class_zero_is_refused_at_parse_time(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--per-class", "0"])
    assert exit_.value.code == 2 and "argument --per-class: must be a positive integer" in capsys.readouterr().err


# --- the real Fashion-MNIST -----------------------------------------------------------------------------------

# The gzip header fields of the published files (the README's links), which Debian's copies drop: their
# modification times (31 August 2017) and the original file names. With them, Debian's compressed streams
# give back the published files byte for byte, which is how the download digests were checked without a
# network.
PUBLISHED_MTIMES = {"train-images-idx3-ubyte.gz": 1504176606, "train-labels-idx1-ubyte.gz": 1504176606,
                    "t10k-images-idx3-ubyte.gz": 1504176627, "t10k-labels-idx1-ubyte.gz": 1504176627}


@needs_fashion_mnist
def test_debians_files_are_the_published_ones_recompressed():
    for file in FASHION_MNIST.files:
        data = open(os.path.join(DEBIAN_FOLDER, file.name), "rb").read()
        assert data[:3] == b"\x1f\x8b\x08" and data[3] == 0  # gzip, deflate, no file name stored
        published = (b"\x1f\x8b\x08\x08" + struct.pack("<I", PUBLISHED_MTIMES[file.name]) + data[8:10]
                     + file.name[:-3].encode() + b"\0" + data[10:])
        assert len(published) == file.size
        assert hashlib.sha256(published).hexdigest() == file.sha256
        assert hashlib.sha256(gzip.decompress(data)).hexdigest() == file.content_sha256


@needs_fashion_mnist
def test_the_real_fashion_mnist_is_found_checked_and_counted(tmp_path, monkeypatch):
    monkeypatch.delenv("MINIVGG_DATA", raising=False)
    monkeypatch.setenv("MINIVGG_HOME", str(tmp_path / "empty-cache"))
    data = read("fashion-mnist", download=False)
    assert data["folder"] == DEBIAN_FOLDER
    (train_images, train_labels), (test_images, test_labels) = data["train"], data["test"]
    assert train_images.shape == (60000, 28, 28) and test_images.shape == (10000, 28, 28)
    assert np.bincount(train_labels).tolist() == [6000] * 10 and np.bincount(test_labels).tolist() == [1000] * 10
    assert data["class_names"][0] == "T-shirt/top" and data["class_names"][9] == "Ankle boot"
    splits = load_splits("fashion-mnist", download=False)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [54000, 6000, 10000]
    image, _ = splits["test"].load(0)
    assert image.shape == (28, 28, 3) and np.array_equal(image[:, :, 0], image[:, :, 2])


def test_evaluate_takes_the_test_set_of_a_folder_of_idx_files(tmp_path, capsys):
    data = write_idx_dataset(tmp_path / "idx")
    assert main(["train", "--quiet", "--data", str(data), *SMALL_NET, "--run-dir", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    code = main(["evaluate", "--data", str(data), "--weights", str(tmp_path / "run" / "model.safetensors"),
                 "--json", str(tmp_path / "table.json")])
    assert code == 0, capsys.readouterr().err
    import json
    row = json.loads((tmp_path / "table.json").read_text())["rows"][0]
    assert row["test_Q"] == "36" and row["train_S"] == "32-40"  # Sect. 4.1's Q for the recorded jittered S
