"""Class names: the 1000 ILSVRC-2012 classes in the order the published VGG models (Caffe and torchvision)
use, and the check that a model's outputs name the data's classes.

The order is the WordNet ids (wnids) sorted, ``n01440764`` (tench) first: class index ``i`` of a published
model's output is ``imagenet_classes()[i]``. The list ships as ``data/imagenet_classes.tsv`` (installed as
``minivgg.resources``; its source is in ``data/README.md``).
"""
from collections import namedtuple
from functools import lru_cache
from importlib import resources

__all__ = ["ImageNetClass", "imagenet_classes", "imagenet_class_names", "imagenet_class_index", "check_class_names"]

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


def imagenet_class_index():
    """Every way the ILSVRC-2012 classes are named (wnid, WordNet lemmas, first lemma) -> the class index."""
    index = {}
    for entry in imagenet_classes():
        for name in (entry.wnid, entry.name, entry.name.split(",")[0]):
            index.setdefault(name, entry.index)
    return index


def check_class_names(model_names, data_names, source="the weights"):
    """ValueError unless output ``i`` of the weights is the data's class ``i`` for every ``i``.

    ``model_names`` are the names the weight file records (None: it records none, nothing to compare);
    ``data_names`` the dataset's classes (its folder names). An ILSVRC-2012 class matches under any of
    its names, so published weights ("tench", ...) match an ImageNet folder (``n01440764``, ...). Names are
    compared in Unicode's composed form (NFC).
    """
    if model_names is None:
        return
    import unicodedata

    # Compared in Unicode's composed form: "café" written decomposed (NFD, as macOS copies write folder names)
    # is the same class.
    model_names, data_names = ([unicodedata.normalize("NFC", str(n)) for n in names]
                               for names in (model_names, data_names))
    if len(model_names) != len(data_names):
        raise ValueError(f"{source} predict {len(model_names)} classes but the data has {len(data_names)}: "
                         f"weights for another dataset?")
    imagenet = None
    differing = []
    for i, (ours, theirs) in enumerate(zip(model_names, data_names)):
        if ours == theirs:
            continue
        imagenet = imagenet if imagenet is not None else imagenet_class_index()
        if ours in imagenet and imagenet.get(ours) == imagenet.get(theirs):
            continue
        differing.append(i)
    if differing:
        i = differing[0]
        order = " (the same classes in another order)" if sorted(model_names) == sorted(data_names) else ""
        raise ValueError(f"{source} name other classes than the data{order}: output {i} is {model_names[i]!r} but "
                         f"the data's class {i} is {data_names[i]!r} ({len(differing)} of {len(data_names)} "
                         f"differ)")
