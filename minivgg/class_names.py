"""The 1000 ILSVRC-2012 classes, in the order the published VGG models (Caffe and torchvision) use.

The order is the WordNet ids (wnids) sorted, ``n01440764`` (tench) first: class index ``i`` of a published
model's output is ``imagenet_classes()[i]``. The list ships as ``data/imagenet_classes.tsv`` (installed as
``minivgg.resources``; its source is in ``data/README.md``).
"""
from collections import namedtuple
from functools import lru_cache
from importlib import resources

__all__ = ["ImageNetClass", "imagenet_classes", "imagenet_class_names"]

ImageNetClass = namedtuple("ImageNetClass", "index wnid name")
ImageNetClass.__doc__ = """One ILSVRC-2012 class: output index, WordNet id, and its WordNet lemmas
("tench, Tinca tinca")."""

_FILE = "imagenet_classes.tsv"


@lru_cache(maxsize=1)
def imagenet_classes():
    """The 1000 classes as a tuple of ``ImageNetClass(index, wnid, name)``, index order."""
    text = resources.files("minivgg.resources").joinpath(_FILE).read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or lines[0].split("\t") != ["index", "wnid", "name"]:
        raise ValueError(f"minivgg.resources/{_FILE}: expected the header 'index<TAB>wnid<TAB>name', "
                         f"got {lines[:1]}")
    classes = []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != 3 or not cells[0].isdigit() or int(cells[0]) != len(classes):
            raise ValueError(f"minivgg.resources/{_FILE} line {number}: expected '{len(classes)}<TAB>wnid<TAB>name', "
                             f"got {line!r}")
        classes.append(ImageNetClass(int(cells[0]), cells[1], cells[2]))
    if len(classes) != 1000:
        raise ValueError(f"minivgg.resources/{_FILE}: expected 1000 classes, found {len(classes)}")
    return tuple(classes)


def imagenet_class_names():
    """The 1000 short names (each class's first lemma: "tench", "goldfish", ...), index order."""
    return [c.name.split(",")[0] for c in imagenet_classes()]
