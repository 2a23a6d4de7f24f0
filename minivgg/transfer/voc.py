"""PASCAL VOC 2007 / 2012 image classification as laid out by the VOC archives.

    VOC2007/                          (or VOCdevkit/VOC2007, or a folder holding either)
      JPEGImages/000005.jpg ...
      ImageSets/Main/aeroplane_trainval.txt   one line per image: "000005 -1"
      ImageSets/Main/aeroplane_test.txt       flags: 1 present, -1 absent, 0 difficult
      ...                                     one pair of files per class, 20 classes

Each ``<class>_<split>.txt`` lists every image of the split with that class's flag; "0" marks an image
whose only objects of the class are difficult, which the devkit neither rewards nor penalises
(``metrics.average_precision`` and ``svm.train_multilabel`` leave them out). The VOC-2012 test labels are
not public (the paper's VOC-2012 column comes from the evaluation server), so here VOC-2012 trains on
"train" and tests on "val" unless told otherwise.
"""
import os
from dataclasses import dataclass

import numpy as np

__all__ = ["VOC_CLASSES", "VOC_SPLITS", "VOCSplit", "find_voc_folder", "read_voc_split"]

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")

# (training split, test split) per year; AP by the year's devkit definition.
VOC_SPLITS = {"2007": ("trainval", "test", "voc07"), "2012": ("train", "val", "area")}


@dataclass
class VOCSplit:
    """The images of one split and their flags.

    Attributes
    ----------
    folder : the VOC<year> folder
    split : "trainval", "test", "train" or "val"
    image_ids : list of N ids ("000005")
    paths : list of N image files
    flags : (N, K) int64, 1 present, -1 absent, 0 difficult
    class_names : the K classes
    """

    folder: str
    split: str
    image_ids: list
    paths: list
    flags: np.ndarray
    class_names: tuple


def find_voc_folder(root, year, task="Main"):
    """The ``VOC<year>`` folder: ``root`` itself, ``root/VOC<year>`` or ``root/VOCdevkit/VOC<year>``,
    whichever holds ``ImageSets/<task>`` ("Main" for classification, "Action" for actions).
    FileNotFoundError naming the places looked at otherwise."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"VOC root {root} does not exist or is not a folder")
    candidates = [root, os.path.join(root, f"VOC{year}"), os.path.join(root, "VOCdevkit", f"VOC{year}")]
    for folder in candidates:
        if os.path.isdir(os.path.join(folder, "ImageSets", task)):
            return folder
    raise FileNotFoundError(f"no PASCAL VOC {year} layout under {root}: looked for ImageSets/{task} in "
                            f"{', '.join(candidates)} (expected VOC{year}/JPEGImages and "
                            f"VOC{year}/ImageSets/{task}/<class>_<split>.txt)")


def read_flag_file(path, key, layout, rows):
    """``[(row key, flag)]`` of one VOC list file: whitespace-separated fields, the last a flag 1, -1 or 0.

    ``key(fields)`` turns the fields before the flag into the row's key, or returns None when they are
    malformed; ``layout`` (e.g. ``'<image id> <1|-1|0>'``) and ``rows`` ("images") word the errors, which
    name the file and the line.
    """
    from ..files import require_regular_file

    entries = []
    with open(require_regular_file(path, "VOC list file"), encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            row = key(fields[:-1]) if fields[-1] in ("1", "-1", "0") else None
            if row is None:
                raise ValueError(f"{path}, line {number}: expected {layout!r}, got {line.strip()!r}")
            entries.append((row, int(fields[-1])))
    if not entries:
        raise ValueError(f"{path} lists no {rows}")
    return entries


def _read_flags(path):
    """``[(image_id, flag)]`` of one ``<class>_<split>.txt``."""
    return read_flag_file(path, lambda fields: fields[0] if len(fields) == 1 else None, "<image id> <1|-1|0>",
                          "images")


def read_split_columns(folder, files, split, read, kind, rows):
    """The rows and the flag columns of one split's per-class (or per-action) files, checked to agree.

    ``files`` maps each class to its ``<class>_<split>.txt``; ``read(path)`` returns ``[(row key, flag), ...]``.
    Returns ``(row keys, [flags of each class])``. FileNotFoundError names the missing files; ValueError a file
    that lists other ``rows`` (or another order) than the first.
    """
    missing = [os.path.basename(path) for path in files.values() if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(f"{folder}: missing {len(missing)} of {len(files)} {kind} files for split "
                                f"{split!r}: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    keys, columns = None, []
    first = next(iter(files.values()))
    for path in files.values():
        entries = read(path)
        these = [key for key, _ in entries]
        if keys is None:
            keys = these
        elif these != keys:
            raise ValueError(f"{path} lists other {rows} (or another order) than {os.path.basename(first)}: the "
                             f"{kind} files of a split must agree")
        columns.append([flag for _, flag in entries])
    return keys, columns


def read_voc_split(root, split, year="2007", class_names=VOC_CLASSES):
    """The images and flags of one VOC split, every file checked before anything is computed.

    Parameters
    ----------
    root : a VOC<year> folder or a folder holding it (see ``find_voc_folder``)
    split : "trainval", "test", "train", "val"
    year : "2007" or "2012" (only used to find the folder)
    class_names : the classes whose ``<class>_<split>.txt`` are read (default the 20 VOC classes)

    Raises
    ------
    FileNotFoundError naming the missing class files or images; ValueError for a malformed line or class
    files that list different images.
    """
    folder = find_voc_folder(root, year)
    main = os.path.join(folder, "ImageSets", "Main")
    files = {name: os.path.join(main, f"{name}_{split}.txt") for name in class_names}
    image_ids, columns = read_split_columns(main, files, split, _read_flags, "class", "images")
    images = os.path.join(folder, "JPEGImages")
    paths = [os.path.join(images, f"{image_id}.jpg") for image_id in image_ids]
    absent = [os.path.basename(path) for path in paths if not os.path.isfile(path)]
    if absent:
        raise FileNotFoundError(f"{images}: {len(absent)} images of split {split!r} are missing: "
                                f"{', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}")
    flags = np.asarray(columns, dtype=np.int64).T
    return VOCSplit(folder, split, image_ids, paths, flags, tuple(class_names))
