"""Caltech-101, Caltech-256 and any folder of class folders, as their archives unpack.

    101_ObjectCategories/accordion/image_0001.jpg ...     102 classes (101 and BACKGROUND_Google)
    256_ObjectCategories/001.ak47/001_0001.jpg ...        257 classes (256 and 257.clutter)
    FOLDER/<class>/<images>                               any classes; or FOLDER/train/<class>/...
                                                          and FOLDER/test/<class>/... for a fixed split

The root given may be the category folder itself or the folder holding it. Every class folder is a class,
the background and clutter classes included, as in the paper's counts (102 and 257 classes). Folders are
read by ``minivgg.data.scan_class_folders``: a class folder without images is an error naming it.
"""
import os

from ..data.datasets import scan_class_folders

__all__ = ["CALTECH_FOLDERS", "find_category_folder", "read_class_folders", "has_fixed_split"]

CALTECH_FOLDERS = {"caltech101": "101_ObjectCategories", "caltech256": "256_ObjectCategories"}


def find_category_folder(root, dataset):
    """``root/101_ObjectCategories`` (or 256) if it exists, else ``root`` when it holds class folders."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{dataset} root {root} does not exist or is not a folder")
    inner = os.path.join(root, CALTECH_FOLDERS[dataset])
    if os.path.isdir(inner):
        return inner
    if os.path.basename(os.path.normpath(root)) == CALTECH_FOLDERS[dataset]:
        return root
    raise FileNotFoundError(f"no {CALTECH_FOLDERS[dataset]} folder in {root} (expected "
                            f"{root}/{CALTECH_FOLDERS[dataset]}/<class>/<images>, as the {dataset} archive unpacks)")


def read_class_folders(folder, class_names=None):
    """``(paths, labels, class_names)`` of ``folder/<class>/<images>`` (classes sorted by name)."""
    files, labels, names = scan_class_folders(folder, class_names)
    return [os.path.join(folder, file) for file in files], labels, names


def has_fixed_split(root):
    """True when ``root`` holds ``train/`` and ``test/`` folders (a folder dataset with its own split)."""
    return all(os.path.isdir(os.path.join(os.fspath(root), part)) for part in ("train", "test"))
