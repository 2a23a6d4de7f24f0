"""CIFAR-10, binary version: the standard small natural-image benchmark (Krizhevsky, 2009).

60,000 colour photographs of 32 x 32 pixels in 10 classes: 50,000 for training in ``data_batch_1.bin`` ..
``data_batch_5.bin`` and 10,000 for testing in ``test_batch.bin``; ``batches.meta.txt`` names the classes, one
a line. Every file is a run of records of 3,073 bytes: the label (0-9) in one byte, then the image's red,
green and blue planes, 1,024 bytes each, row by row. This is the "binary version" of the CIFAR page
(``cifar-10-binary.tar.gz``, unpacked as ``cifar-10-batches-bin/``).

The "python version" (``data_batch_1`` without a suffix, ``batches.meta``) is a set of pickles: unpickling runs
whatever code the file holds, so minivgg never reads it and says to use the binary version instead.
"""
import os

import numpy as np

from ..errors import DataFileError

__all__ = ["CIFAR10_TRAIN_FILES", "CIFAR10_TEST_FILE", "CIFAR10_META_FILE", "CIFAR10_FOLDER", "RECORD_BYTES",
           "read_cifar_batch", "read_cifar_class_names", "cifar10_folder", "read_cifar10", "write_cifar_batch"]

CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch.bin"
CIFAR10_META_FILE = "batches.meta.txt"
CIFAR10_FOLDER = "cifar-10-batches-bin"  # what the binary archive unpacks to
SIDE = 32
RECORD_BYTES = 1 + 3 * SIDE * SIDE
# Names of the python version's files: seen without the binary ones, they are refused with a pointer.
PICKLED_FILES = ("data_batch_1", "test_batch", "batches.meta")
BINARY_ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"


def read_cifar_class_names(path):
    """The class names of ``batches.meta.txt``: its non-empty lines, stripped (10 for CIFAR-10)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CIFAR class-name file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as handle:
            names = [line.strip() for line in handle if line.strip()]
    except UnicodeDecodeError as error:
        raise DataFileError(f"{path} is not a text file of class names, one a line ({error})") from None
    if not names:
        raise DataFileError(f"{path} names no classes (expected one class name a line)")
    if len(set(names)) != len(names):
        raise DataFileError(f"{path} names a class twice: {names}")
    return names


def read_cifar_batch(path, num_classes=10):
    """``(images (N, 32, 32, 3) uint8 RGB, labels (N,) int64)`` from one binary batch file.

    DataFileError naming the file when its size is not a whole number of 3,073-byte records (truncated) or a
    label is not below ``num_classes``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CIFAR batch file {path} does not exist")
    size = os.path.getsize(path)
    if size == 0 or size % RECORD_BYTES:
        raise DataFileError(f"{path} is not a CIFAR-10 binary batch: {size:,} bytes is not a whole number of "
                            f"{RECORD_BYTES:,}-byte records (1 label byte and 3 x 32 x 32 pixel bytes); truncated?")
    records = np.fromfile(path, np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= num_classes:
        record = int(np.argmax(labels >= num_classes))
        raise DataFileError(f"{path}: record {record} has label {labels[record]}, but there are {num_classes} "
                            f"classes (0..{num_classes - 1})")
    images = records[:, 1:].reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)  # planes -> (H, W, RGB)
    return np.ascontiguousarray(images), labels


def _refuse_python_version(folder):
    pickled = [name for name in PICKLED_FILES if os.path.isfile(os.path.join(folder, name))]
    if pickled:
        raise DataFileError(f"{folder} holds CIFAR-10's python version ({', '.join(pickled)}): those files are "
                            f"pickles, and loading a pickle runs whatever code it holds, so minivgg never reads "
                            f"them. Use the binary version instead ({BINARY_ARCHIVE_URL}, unpacked: "
                            f"{CIFAR10_FOLDER}/ with {CIFAR10_TRAIN_FILES[0]} ... {CIFAR10_TEST_FILE}, "
                            f"{CIFAR10_META_FILE})")


def cifar10_folder(root):
    """The folder holding the binary files: ``root`` itself or its ``cifar-10-batches-bin/``; None if neither
    holds ``data_batch_1.bin``. DataFileError for a folder holding the pickled python version only."""
    root = os.fspath(root)
    for folder in (root, os.path.join(root, CIFAR10_FOLDER)):
        if os.path.isfile(os.path.join(folder, CIFAR10_TRAIN_FILES[0])):
            return folder
    for folder in (root, os.path.join(root, "cifar-10-batches-py")):
        if os.path.isdir(folder):
            _refuse_python_version(folder)
    return None


def read_cifar10(root):
    """CIFAR-10's binary files under ``root`` (or ``root/cifar-10-batches-bin``).

    Returns
    -------
    dict with "train" and "test", each ``(images (N, 32, 32, 3) uint8, labels (N,) int64)``, and
    "class_names" (from ``batches.meta.txt``). The five training batches are concatenated in order.

    Raises
    ------
    FileNotFoundError naming the missing files; DataFileError for a malformed file or the python version.
    """
    root = os.fspath(root)
    folder = cifar10_folder(root)
    if folder is None:
        raise FileNotFoundError(f"{root} holds no CIFAR-10 binary files ({CIFAR10_TRAIN_FILES[0]} ... "
                                f"{CIFAR10_TEST_FILE}, {CIFAR10_META_FILE}, directly or in {CIFAR10_FOLDER}/)")
    needed = CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE, CIFAR10_META_FILE)
    missing = [name for name in needed if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise FileNotFoundError(f"{folder} lacks CIFAR-10 binary files {missing}: it needs all of {list(needed)}")
    class_names = read_cifar_class_names(os.path.join(folder, CIFAR10_META_FILE))
    parts = [read_cifar_batch(os.path.join(folder, name), len(class_names)) for name in CIFAR10_TRAIN_FILES]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    test = read_cifar_batch(os.path.join(folder, CIFAR10_TEST_FILE), len(class_names))
    return {"train": train, "test": test, "class_names": class_names}


def write_cifar_batch(path, images, labels):
    """Write ``images`` ((N, 32, 32, 3) uint8 RGB) and ``labels`` ((N,) in 0..255) as a binary batch file."""
    images, labels = np.asarray(images, np.uint8), np.asarray(labels)
    if images.ndim != 4 or images.shape[1:] != (SIDE, SIDE, 3) or labels.shape != (len(images),):
        raise ValueError(f"write_cifar_batch: expected (N, 32, 32, 3) images and (N,) labels, got "
                         f"{images.shape} and {labels.shape}")
    records = np.concatenate([labels.astype(np.uint8)[:, None],
                              images.transpose(0, 3, 1, 2).reshape(len(images), -1)], axis=1)
    with open(path, "wb") as handle:
        handle.write(records.tobytes())
