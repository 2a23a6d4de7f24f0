"""Named benchmark datasets: where to find them, how to check them, how to download them.

``--data fashion-mnist`` (or ``cifar10``) needs no folder: the dataset is looked for, in this order,

1. in an explicit folder (``root=``; on the command line, ``--data PATH``);
2. in ``$MINIVGG_DATA/<name>`` (``MINIVGG_DATA`` names a folder of datasets, as ``MINIVGG_HOME`` the cache);
3. where the system installs it (Debian's ``dataset-fashion-mnist`` package:
   ``/usr/share/datasets/fashion-mnist``);
4. in the cache, ``<cache>/datasets/<name>`` (``minivgg.weights.published.cache_folder()``: ``$MINIVGG_HOME`` or
   ``~/.cache/minivgg``), where
5. it is downloaded when it is in none of them: resumable, and SHA-256-checked before it is used, as
   ``minivgg download`` fetches weights (``minivgg.weights.download``).

The datasets:

- **Fashion-MNIST** (Xiao, Rasul & Vollgraf, 2017, ``zalandoresearch/fashion-mnist``): 70,000 grey 28 x 28
  photographs of clothing in 10 classes, 60,000 for training and 10,000 for testing, in four IDX files
  (``minivgg.data.idx``). The SHA-256 digests below are those of the published ``.gz`` files (the four
  files the project's README links, whose MD5 digests it gives). Debian's package recompresses them without
  the original file name in the gzip header, so its ``.gz`` files differ from the published ones in their
  first bytes only; what every copy must hold is the same decompressed content, whose SHA-256 is
  ``content_sha256``, and that is what a copy found on disk is checked against.
- **CIFAR-10**, binary version (``minivgg.data.cifar``): 60,000 colour 32 x 32 photographs in 10 classes,
  50,000 for training, 10,000 for testing; downloaded as ``cifar-10-binary.tar.gz`` and unpacked (the
  expected members only) into the cache. Its class names come from the files.

Each is split for training as Sect. 3.1's schedule needs (``load_splits``): the published test set is the
test split, and a stratified, seeded tenth of the training set is held out for validation.
"""
import hashlib
import os
import tarfile
from dataclasses import dataclass

import numpy as np

from ..errors import DataFileError

__all__ = ["DATA_VARIABLE", "PublishedFile", "NamedDataset", "FASHION_MNIST", "CIFAR10", "DATASETS",
           "VALIDATION_FRACTION", "IDX_FILES", "idx_files", "data_kind", "named", "locate", "read", "load_splits",
           "datasets_cache", "is_array_data"]

DATA_VARIABLE = "MINIVGG_DATA"
VALIDATION_FRACTION = 0.1  # of the training set, held out for the learning-rate schedule (Sect. 3.1)

# The four files of an IDX dataset, by role, as MNIST and Fashion-MNIST name them (gzipped or not).
IDX_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


@dataclass(frozen=True)
class PublishedFile:
    """One published file: its name, where it is published, its SHA-256 and size as published, and (for a
    compressed IDX file) the SHA-256 of its decompressed content, which every faithful copy shares."""

    name: str
    url: str
    sha256: str
    size: int
    content_sha256: str = None


@dataclass(frozen=True)
class NamedDataset:
    """A benchmark dataset minivgg can find, check and download by name (see the module's docstring).

    Attributes
    ----------
    name : what ``--data`` takes ("fashion-mnist")
    title : how to name it in messages
    kind : "idx" or "cifar10": how its files are read
    files : the published files (for an "idx" dataset the four ``.gz`` files; for "cifar10" the archive)
    system_folders : where a system package installs it
    class_names : the class names in label order (None: read from the files)
    source : where the files, digests and class names come from
    """

    name: str
    title: str
    kind: str
    files: tuple
    system_folders: tuple = ()
    class_names: tuple = None
    source: str = ""


_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST = NamedDataset(
    "fashion-mnist", "Fashion-MNIST", "idx",
    (PublishedFile("train-images-idx3-ubyte.gz", _FASHION_URL + "train-images-idx3-ubyte.gz",
                   "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26_421_880,
                   "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
     PublishedFile("train-labels-idx1-ubyte.gz", _FASHION_URL + "train-labels-idx1-ubyte.gz",
                   "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29_515,
                   "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
     PublishedFile("t10k-images-idx3-ubyte.gz", _FASHION_URL + "t10k-images-idx3-ubyte.gz",
                   "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4_422_102,
                   "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
     PublishedFile("t10k-labels-idx1-ubyte.gz", _FASHION_URL + "t10k-labels-idx1-ubyte.gz",
                   "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5_148,
                   "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34")),
    system_folders=("/usr/share/datasets/fashion-mnist",),
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
    source="zalandoresearch/fashion-mnist (README: file links, MD5 digests, labels); the SHA-256 digests of the "
           "published .gz files, whose MD5 digests match the README's")

CIFAR10 = NamedDataset(
    "cifar10", "CIFAR-10 (binary version)", "cifar10",
    (PublishedFile("cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                   "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", 170_052_171),),
    source="Krizhevsky's CIFAR page (binary version, MD5 c32a1d4ab5d03f1284b67883e8d87530); the archive's "
           "SHA-256 as recorded by TensorFlow Datasets' checksum list")

DATASETS = {entry.name: entry for entry in (FASHION_MNIST, CIFAR10)}


def named(name):
    """The ``NamedDataset`` called ``name`` (any case); ValueError listing the names otherwise."""
    entry = DATASETS.get(str(name).lower())
    if entry is None:
        raise ValueError(f"no dataset called {name!r}: the named datasets are {', '.join(DATASETS)}")
    return entry


def datasets_cache(cache=None):
    """``<cache>/datasets``: where downloaded datasets are kept (``minivgg.weights.published.cache_folder()`` by default)."""
    from ..weights.published import cache_folder

    return os.path.join(cache or cache_folder(), "datasets")


def idx_files(folder):
    """``{role: path}`` of the four IDX files in ``folder`` (``IDX_FILES``, each plain or ``.gz``, the plain one
    preferred), or None when any is missing."""
    found = {}
    for role, stem in IDX_FILES.items():
        for name in (stem, stem + ".gz"):
            if os.path.isfile(os.path.join(folder, name)):
                found[role] = os.path.join(folder, name)
                break
        else:
            return None
    return found


def data_kind(folder):
    """What a data folder holds: "idx" (the four IDX files), "cifar10" (the binary batches, directly or in
    ``cifar-10-batches-bin/``) or None (anything else, e.g. an ImageNet-style folder). DataFileError for
    CIFAR-10's pickled python version."""
    from .cifar import cifar10_folder

    if not os.path.isdir(folder):
        return None
    if idx_files(folder) is not None:
        return "idx"
    if cifar10_folder(folder) is not None:
        return "cifar10"
    return None


def _holds(entry, folder):
    """Whether ``folder`` holds every file of ``entry`` (an unpacking cut short does not count)."""
    from .cifar import CIFAR10_META_FILE, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, cifar10_folder

    if not os.path.isdir(folder) or data_kind(folder) != entry.kind:
        return False
    if entry.kind == "cifar10":
        batches = cifar10_folder(folder)
        return all(os.path.isfile(os.path.join(batches, name))
                   for name in CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE, CIFAR10_META_FILE))
    return True


def _candidates(entry):
    """``(folder, where)`` to look in, after an explicit folder, in the module's order."""
    places = []
    if os.environ.get(DATA_VARIABLE):
        places.append((os.path.join(os.path.expanduser(os.environ[DATA_VARIABLE]), entry.name), f"${DATA_VARIABLE}"))
    places += [(folder, "the system's copy") for folder in entry.system_folders]
    places.append((os.path.join(datasets_cache(), entry.name), "the cache"))
    return places


def locate(name, root=None, download=True, progress=True):
    """The folder holding the named dataset's files, downloading them when they are nowhere.

    Parameters
    ----------
    name : a name of ``DATASETS`` ("fashion-mnist", "cifar10")
    root : an explicit folder: used if given (FileNotFoundError if it does not hold the files)
    download : fetch the files into the cache when no folder holds them (else FileNotFoundError)
    progress : a download bar

    Raises DownloadError (offline, cut off: run again to resume) or ChecksumError (not the published file).
    """
    entry = named(name)
    if root is not None:
        root = os.fspath(root)
        if not _holds(entry, root):
            raise FileNotFoundError(f"{root} does not hold {entry.title}'s files ({_expected_files(entry)})")
        return root
    places = _candidates(entry)
    for folder, _ in places:
        if _holds(entry, folder):
            return folder
    looked = ", ".join(f"{folder} ({where})" for folder, where in places)
    if not download:
        raise FileNotFoundError(f"{entry.title} is not in {looked}, and downloading was not allowed")
    target = places[-1][0]
    if progress:
        print(f"{entry.title} is not in {looked}: downloading it into {target}")
    return _download(entry, target, progress)


def _expected_files(entry):
    if entry.kind == "idx":
        return ", ".join(f"{stem}[.gz]" for stem in IDX_FILES.values())
    from .cifar import CIFAR10_META_FILE, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES
    return f"{CIFAR10_TRAIN_FILES[0]} ... {CIFAR10_TRAIN_FILES[-1]}, {CIFAR10_TEST_FILE}, {CIFAR10_META_FILE}"


def _download(entry, target, progress):
    from ..weights.download import download

    if entry.kind == "idx":
        for file in entry.files:
            download(file.url, os.path.join(target, file.name), sha256=file.sha256, progress=progress)
        return target
    (archive,) = entry.files
    path = download(archive.url, os.path.join(datasets_cache(), "downloads", archive.name), sha256=archive.sha256,
                    progress=progress)
    _unpack_cifar(path, target)
    return target


def _unpack_cifar(archive, target):
    """Unpack the binary batches (those members only, regular files only, each written under a temporary name
    and renamed into place) from the checked archive into ``target/cifar-10-batches-bin``."""
    from ..files import atomic_write
    from .cifar import CIFAR10_FOLDER, CIFAR10_META_FILE, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES

    folder = os.path.join(target, CIFAR10_FOLDER)
    os.makedirs(folder, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name in CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE, CIFAR10_META_FILE):
                try:
                    member = tar.getmember(f"{CIFAR10_FOLDER}/{name}")
                except KeyError:
                    raise DataFileError(f"{archive} has no member {CIFAR10_FOLDER}/{name}: not CIFAR-10's binary "
                                        f"archive") from None
                if not member.isfile():
                    raise DataFileError(f"{archive}: {member.name} is not a regular file")
                source = tar.extractfile(member)

                def write(temporary, source=source):
                    with open(temporary, "wb") as handle:
                        while block := source.read(1 << 20):
                            handle.write(block)
                atomic_write(os.path.join(folder, name), write)
    except (tarfile.TarError, EOFError, OSError) as error:
        if isinstance(error, DataFileError):
            raise
        raise DataFileError(f"{archive} could not be unpacked ({error})") from error


def _content_sha256(array):
    """The SHA-256 of the IDX file (decompressed) that holds ``array``, an unsigned-byte array."""
    digest = hashlib.sha256(bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _read_idx_folder(folder, entry=None):
    """The four IDX files of ``folder``; checked against ``entry``'s content digests when given. Without an
    entry, a folder holding exactly Fashion-MNIST gets its class names, any other "0", "1", ..."""
    reference = entry if entry is not None else FASHION_MNIST
    from .idx import read_idx_pair

    paths = idx_files(folder)
    if paths is None:
        raise FileNotFoundError(f"{folder} does not hold the four IDX files ({_expected_files(FASHION_MNIST)})")
    train = read_idx_pair(paths["train_images"], paths["train_labels"])
    test = read_idx_pair(paths["test_images"], paths["test_labels"])
    arrays = {"train_images": train[0], "test_images": test[0]}
    labels = {"train_labels": train[1].astype(np.uint8), "test_labels": test[1].astype(np.uint8)}
    digests = {role: _content_sha256(array) for role, array in {**arrays, **labels}.items()}
    expected = {role: file.content_sha256 for role, file in zip(IDX_FILES, reference.files)}
    is_reference = digests == expected
    if entry is not None and not is_reference:
        role = next(role for role in IDX_FILES if digests[role] != expected[role])
        raise DataFileError(f"{paths[role]} is not {entry.title}'s published file: its content's SHA-256 is "
                            f"{digests[role]}, {entry.title}'s is {expected[role]}. Remove it (a damaged or "
                            f"other copy), or pass its folder as --data PATH to train on it as it is")
    num_classes = int(max(train[1].max(initial=0), test[1].max(initial=0))) + 1
    class_names = list(reference.class_names) if is_reference else [str(k) for k in range(num_classes)]
    return {"train": train, "test": test, "class_names": class_names,
            "name": reference.name if is_reference else os.path.basename(os.path.normpath(folder)),
            "folder": folder, "content_sha256": digests}


def read(data, root=None, download=True, progress=True):
    """The images and labels of a named dataset or of a folder of IDX or CIFAR-10 binary files.

    Parameters
    ----------
    data : a name of ``DATASETS`` (found with ``locate``), or a folder whose ``data_kind`` is "idx" or "cifar10"
    root, download, progress : for a name, as ``locate``

    Returns
    -------
    dict: "train" and "test" ``(images, labels)`` (grey (N, 28, 28) or RGB (N, 32, 32, 3) uint8; int64
    labels), "class_names", "name" (the dataset's name, or the folder's), "folder".
    """
    from .cifar import read_cifar10

    if str(data).lower() in DATASETS and not (root is None and os.path.isdir(os.fspath(data))):
        entry = named(data)
        folder = locate(entry.name, root, download, progress)
        if entry.kind == "idx":
            return _read_idx_folder(folder, entry)
        return dict(read_cifar10(folder), name=entry.name, folder=folder)
    folder = os.fspath(data)
    kind = data_kind(folder)
    if kind == "idx":
        return _read_idx_folder(folder)
    if kind == "cifar10":
        return dict(read_cifar10(folder), name=os.path.basename(os.path.normpath(folder)), folder=folder)
    raise FileNotFoundError(f"{folder} holds neither IDX files ({_expected_files(FASHION_MNIST)}) nor CIFAR-10's "
                            f"binary files ({_expected_files(CIFAR10)}), and is not one of the named datasets "
                            f"{', '.join(DATASETS)}")


def load_splits(data, seed=0, per_class=None, validation_fraction=VALIDATION_FRACTION, root=None, download=True,
                progress=True, count=None):
    """Training, validation and test splits of a named dataset or an IDX / CIFAR-10 folder (``read``).

    Parameters
    ----------
    data, root, download, progress : as ``read``
    seed : int >= 0: fixes the validation split and the subset
    per_class : use only this many of each class's training images (a seeded choice, ``subset_indices``),
        before the validation split is held out of them; None: all
    count : instead of ``per_class``, the first ``count`` training images of a seeded order
    validation_fraction : the share of (each class of) the training images held out for validation

    Returns
    -------
    dict "train", "val", "test" of ``ArrayDataset`` (grey images are loaded as RGB), and "name".
    """
    from .datasets import ArrayDataset
    from .subsets import stratified_split, subset_indices

    source = read(data, root, download, progress)
    (train_images, train_labels), (test_images, test_labels) = source["train"], source["test"]
    pool = (np.arange(len(train_labels)) if per_class is None and count is None
            else subset_indices(train_labels, per_class=per_class, count=count, seed=seed))
    kept, held = stratified_split(train_labels[pool], validation_fraction, seed)
    splits = {}
    for split, images, labels in (("train", train_images[pool[kept]], train_labels[pool[kept]]),
                                  ("val", train_images[pool[held]], train_labels[pool[held]]),
                                  ("test", test_images, test_labels)):
        images.flags.writeable = False  # shared by every loader of the split
        splits[split] = ArrayDataset(images, labels, source["class_names"])
    splits["name"] = source["name"]
    return splits


def is_array_data(data):
    """Whether ``--data`` means images read into memory: a named dataset, or a folder of IDX or CIFAR-10
    binary files (as opposed to an ImageNet-style folder of image files). A folder of a dataset's name in the
    current folder counts as a folder (an explicit path comes first)."""
    if data is None:
        return False
    if os.path.isdir(os.fspath(data)):
        return data_kind(os.fspath(data)) is not None
    return str(data).lower() in DATASETS
