"""Datasets: labelled images the loader reads one at a time.

Every dataset offers the same few things: ``len(ds)``, ``ds.class_names`` (list of str), ``ds.labels``
(int64 array), ``ds.load(i, draft_smallest_side=None) -> (image (H, W, 3) uint8 RGB, label)``, and
``ds.describe(i)`` (the file, for warnings). Three kinds:

- ``ImageFolder(root)``: ``root/<class>/<image files>``, classes in sorted folder-name order; any data.
- ``ImageNet(root, split)``: ILSVRC-2012 as unpacked: ``train/<wnid>/*.JPEG``; ``val/`` either sorted into
  ``val/<wnid>/`` folders or flat, with a ground-truth file (one label per line in file-name order, as the
  devkit ships it).
- ``ArrayDataset(images, labels, class_names)``: images already in memory (the embedded digits).

Every problem with the layout (a missing folder, an empty class, a label file that does not match the
images) is an error when the dataset is built, before any training starts; a folder entry that cannot be
followed (a symbolic link to itself or to a folder above it, a broken link) is left out, listed in
``ds.skipped_entries`` and counted in a ``BadImageWarning``; a single unreadable image is only found when
it is loaded, and the loader skips it.
"""
import hashlib
import os
import stat
import unicodedata

import numpy as np

from .images import IMAGE_EXTENSIONS, decode_image, is_image_file, warn_skipped

__all__ = ["Dataset", "ImageFiles", "ImageFolder", "ImageNet", "ArrayDataset", "scan_class_folders",
           "read_ground_truth", "read_devkit_wnids", "STATISTICS_FILE", "DEVKIT_GROUND_TRUTH",
           "GROUND_TRUTH_CANDIDATES"]

# The mean RGB and colour eigen-decomposition of a folder dataset are cached in this file inside its root.
STATISTICS_FILE = ".minivgg-statistics.json"

# The devkit's validation labels: ILSVRC2012_IDs, in the numbering of the devkit's data/meta.mat.
DEVKIT_GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
# Where ImageNet(root, "val") looks for the validation labels when val/ is flat and none is given.
GROUND_TRUTH_CANDIDATES = (DEVKIT_GROUND_TRUTH, os.path.join("ILSVRC2012_devkit_t12", "data", DEVKIT_GROUND_TRUTH))


class Dataset:
    """The interface the loader, the statistics and the trainer use. Subclasses set ``class_names``
    (list of str) and ``labels`` ((N,) int64) and implement ``load``."""

    class_names = ()
    labels = np.zeros(0, np.int64)
    # ``(path, reason)`` of the folder entries left out when the dataset was listed (link loops, broken links).
    skipped_entries = ()

    def __len__(self):
        return len(self.labels)

    def load(self, index, draft_smallest_side=None):
        """``(image (H, W, 3) uint8 RGB, label int)`` of sample ``index``.

        ``draft_smallest_side``: the smallest side the image is about to be rescaled to, a hint that lets a
        JPEG be decoded at a reduced size. Raises ``BadImageError`` for an undecodable image.
        """
        raise NotImplementedError

    def describe(self, index):
        """How to name sample ``index`` in a message (its file)."""
        return f"sample {index}"

    def fingerprint(self):
        """A string that changes when the samples change (keys the statistics cache)."""
        raise NotImplementedError

    @property
    def statistics_path(self):
        """Where ``compute_statistics`` caches this dataset's statistics by default (None: nowhere)."""
        return None


def _check_labels(labels, count, class_names, owner):
    labels = np.asarray(labels)
    if labels.shape != (count,):
        raise ValueError(f"{owner}: expected {count} labels, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{owner}: labels must be integers, got dtype {labels.dtype}")
    if count and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"{owner}: labels must lie in [0, {len(class_names)}) for {len(class_names)} classes, got "
                         f"{labels.min()} .. {labels.max()}")
    return labels.astype(np.int64)


class ImageFiles(Dataset):
    """Image files under ``root``, each with a label.

    Parameters
    ----------
    root : folder the files are relative to
    files : list of N paths relative to ``root``
    labels : (N,) integers in [0, len(class_names))
    class_names : list of str
    """

    def __init__(self, root, files, labels, class_names):
        self.root = os.fspath(root)
        self.files = list(files)
        self.class_names = [str(name) for name in class_names]
        if not self.files:
            raise ValueError(f"{type(self).__name__}: no image files under {self.root}")
        self.labels = _check_labels(labels, len(self.files), self.class_names, type(self).__name__)

    def path(self, index):
        return os.path.join(self.root, self.files[index])

    def _keep_skipped(self, skipped):
        """Record the entries the listing left out, and count them in a warning."""
        self.skipped_entries = sorted(skipped)
        warn_skipped(self.skipped_entries, repr(self), "entry that cannot be followed",
                     "entries that cannot be followed")

    def load(self, index, draft_smallest_side=None):
        return decode_image(self.path(index), draft_smallest_side), int(self.labels[index])

    def describe(self, index):
        return self.path(index)

    def fingerprint(self):
        """A digest of the classes and of every file's name, label, size and modification time: it changes when
        an image is added, removed, renamed, relabelled or rewritten (keys the colour-statistics cache)."""
        from .fingerprint import content_digest, file_entries

        digest = hashlib.sha256()
        digest.update("\n".join(self.class_names).encode("utf-8", "surrogateescape"))
        digest.update(content_digest(file_entries(self)).encode())
        return digest.hexdigest()

    @property
    def statistics_path(self):
        return os.path.join(self.root, STATISTICS_FILE)

    def __repr__(self):
        return f"{type(self).__name__}({self.root!r}: {len(self)} images, {len(self.class_names)} classes)"


def _check_folder(root, what):
    root = os.fspath(root)
    if not os.path.exists(root):
        raise FileNotFoundError(f"{what} {root} does not exist")
    if not os.path.isdir(root):
        raise ValueError(f"{what} {root} is not a folder")
    return root


def _entry_kind(entry, skipped):
    """"dir", "file" or None (anything else) for a folder entry; entries that cannot be followed (a
    symbolic link to itself, a broken link, a link to a folder above it) or are not regular files (a named
    pipe, a device) are None and added to ``skipped`` as ``(path, reason)``, so one bad entry never ends the
    listing of a data set, nor blocks it."""
    try:
        if entry.is_dir():
            if entry.is_symlink():
                target, here = os.path.realpath(entry.path), os.path.realpath(os.path.dirname(entry.path))
                if os.path.commonpath([target, here]) == target:
                    skipped.append((entry.path, f"symbolic link loop: it points to {target}, which holds it"))
                    return None
            return "dir"
        if entry.is_file():
            return "file"
        if entry.is_symlink() and not os.path.exists(entry.path):
            skipped.append((entry.path, f"broken symbolic link to {os.readlink(entry.path)}"))
        else:  # a named pipe, a device, a socket: reading one would block or never end
            kind = "a named pipe" if stat.S_ISFIFO(entry.stat().st_mode) else "not a regular file"
            skipped.append((entry.path, f"{kind}: never opened"))
    except OSError as error:  # ELOOP: "Too many levels of symbolic links", a link to itself
        skipped.append((entry.path, f"cannot follow: {error.strerror or error}"))
    return None


def _subfolders(root, skipped):
    return sorted(entry.name for entry in os.scandir(root)
                  if not entry.name.startswith(".") and _entry_kind(entry, skipped) == "dir")


def _image_files(folder, skipped):
    return sorted(entry.name for entry in os.scandir(folder)
                  if is_image_file(entry.name) and _entry_kind(entry, skipped) == "file")


def scan_class_folders(root, class_names=None, skipped=None):
    """The images of ``root/<class>/``: ``(files relative to root, labels, class_names)``.

    Without ``class_names`` the classes are the sub-folders in sorted order; with them, the sub-folders
    must be exactly those classes (a validation set must use the training set's label numbering). Names are
    compared in Unicode's composed form (NFC): a folder ``café`` written decomposed (NFD, as macOS copies
    write it) is the class ``café``.
    Image files are those with an extension in ``IMAGE_EXTENSIONS`` in any case; hidden files are ignored.
    Entries that cannot be followed (symbolic link loops, broken links) are left out and appended to
    ``skipped`` (a list, if given) as ``(path, reason)``.

    Raises
    ------
    FileNotFoundError for a missing root or class folder; ValueError for a root without class folders,
    a folder that is not a known class, or a class folder without images.
    """
    skipped = [] if skipped is None else skipped
    root = _check_folder(root, "dataset folder")
    folders = _subfolders(root, skipped)
    if not folders:
        raise ValueError(f"dataset folder {root} holds no class folders (expected {root}/<class>/<images>)")
    on_disk = {}  # composed name -> the folder's name as the file system holds it
    for folder in folders:
        key = unicodedata.normalize("NFC", folder)
        if key in on_disk:
            raise ValueError(f"{root}: folders {on_disk[key]!r} and {folder!r} are the same name written two ways "
                             f"(Unicode NFC and NFD): merge them")
        on_disk[key] = folder
    if class_names is None:
        class_names = folders
    else:
        class_names = [str(name) for name in class_names]
        given = {unicodedata.normalize("NFC", name) for name in class_names}
        unknown = sorted(folder for key, folder in on_disk.items() if key not in given)
        if unknown:
            raise ValueError(f"{root}: folders {unknown[:5]}{' ...' if len(unknown) > 5 else ''} are not among the "
                             f"{len(class_names)} given class names")
        missing = [name for name in class_names if unicodedata.normalize("NFC", name) not in on_disk]
        if missing:
            raise FileNotFoundError(f"{root}: no folder for classes {missing[:5]}{' ...' if len(missing) > 5 else ''} "
                                    f"({len(missing)} of {len(class_names)} missing)")
    files, labels = [], []
    for label, name in enumerate(class_names):
        folder = on_disk[unicodedata.normalize("NFC", name)]
        names = _image_files(os.path.join(root, folder), skipped)
        if not names:
            raise ValueError(f"class folder {os.path.join(root, folder)} holds no image files "
                             f"(extensions {', '.join(IMAGE_EXTENSIONS)})")
        files += [f"{folder}/{file}" for file in names]
        labels += [label] * len(names)
    return files, np.asarray(labels, np.int64), list(class_names)


class ImageFolder(ImageFiles):
    """``root/<class>/<image files>``: any labelled image collection laid out like ImageNet's training set.

    Parameters
    ----------
    root : the folder holding one sub-folder per class
    class_names : optional list fixing the classes and their order (e.g. the training set's, for a
        validation folder); default: the sub-folders, sorted
    """

    def __init__(self, root, class_names=None):
        skipped = []
        files, labels, class_names = scan_class_folders(root, class_names, skipped)
        super().__init__(root, files, labels, class_names)
        self._keep_skipped(skipped)


def read_devkit_wnids(meta_path):
    """The 1000 ILSVRC-2012 wnids in the devkit's label numbering, from its ``data/meta.mat``.

    The devkit's labels (``ILSVRC2012_ID`` 1..1000, used by ``ILSVRC2012_validation_ground_truth.txt``)
    are NOT in sorted-wnid order: ID 1 is n02119789 (kit fox), not n01440764 (tench). Reading the ground
    truth against sorted wnids would silently mislabel almost every image.

    Returns
    -------
    list of str: element k is the wnid of ILSVRC2012_ID k + 1 (the leaf synsets, ``num_children == 0``).
    """
    from scipy.io import loadmat

    meta_path = os.fspath(meta_path)
    try:
        synsets = loadmat(meta_path, squeeze_me=True)["synsets"]
        ids = np.asarray(synsets["ILSVRC2012_ID"], dtype=np.int64)
        wnids = [str(w) for w in synsets["WNID"]]
        leaves = np.asarray(synsets["num_children"], dtype=np.int64) == 0
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise ValueError(f"{meta_path} is not an ILSVRC devkit meta.mat (a 'synsets' struct with ILSVRC2012_ID, "
                         f"WNID and num_children): {error}") from error
    leaf_ids = ids[leaves]
    order = np.argsort(leaf_ids)
    if not np.array_equal(leaf_ids[order], np.arange(1, len(leaf_ids) + 1)):
        raise ValueError(f"{meta_path}: the leaf synsets' ILSVRC2012_IDs are not 1..{len(leaf_ids)}")
    leaf_wnids = [w for w, leaf in zip(wnids, leaves) if leaf]
    return [leaf_wnids[k] for k in order]


def _parse_integer(token):
    try:
        return int(token)
    except ValueError:
        return None


def read_ground_truth(path, files, class_names, ground_truth_classes=None):
    """Labels of the flat validation images ``files`` (sorted file names) from a ground-truth text file.

    Accepted formats, one image per line:

    - a label per line, in file-name order (as ILSVRC ships it); the line count must equal the image count;
    - ``file_name label`` per line, in any order; the file names must be exactly the images.

    A label is a class name (a wnid) or an integer. Integers are 1-based when no label is 0 (ILSVRC's
    convention) and 0-based otherwise; for a complete validation set, where every class occurs, this is
    exact. Integer k (after removing the base) means ``ground_truth_classes[k]`` when given (the
    devkit's numbering, ``read_devkit_wnids``), else ``class_names[k]``.

    Returns
    -------
    (N,) int64 labels, indices into ``class_names``, one per entry of ``files``.

    Raises
    ------
    FileNotFoundError for a missing file; ValueError naming the file and line for a count mismatch, an
    unknown class, an out-of-range number or a file name that is not among the images.
    """
    from ..files import require_regular_file

    path = os.fspath(path)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"validation ground-truth file {path} does not exist")
    with open(require_regular_file(path, "validation ground-truth file"), encoding="utf-8") as handle:
        rows = [(number, line.split()) for number, line in enumerate(handle, 1) if line.strip()]
    if rows and all(len(tokens) == 2 for _, tokens in rows):  # "file_name label" lines
        by_name = {os.path.basename(tokens[0]): (number, tokens[1]) for number, tokens in rows}
        missing = [name for name in files if os.path.basename(name) not in by_name]
        extra = sorted(set(by_name) - {os.path.basename(name) for name in files})
        if missing or extra:
            raise ValueError(f"{path} lists {len(by_name)} files and the validation folder holds {len(files)} images: "
                             f"{len(missing)} images not listed (e.g. {missing[:3]}), {len(extra)} listed files "
                             f"not there (e.g. {extra[:3]})")
        rows = [by_name[os.path.basename(name)] for name in files]
        rows = [(number, [token]) for number, token in rows]
    if any(len(tokens) != 1 for _, tokens in rows):
        number = next(number for number, tokens in rows if len(tokens) != 1)
        raise ValueError(f"{path} line {number}: expected one label (or 'file_name label') per line")
    if len(rows) != len(files):
        raise ValueError(f"{path} has {len(rows)} labels but the validation folder holds {len(files)} images: "
                         f"one label per image, in file-name order")
    index_of = {name: k for k, name in enumerate(class_names)}
    tokens = [tokens[0] for _, tokens in rows]
    numbers = [_parse_integer(token) for token in tokens]
    if all(n is not None for n in numbers):
        numbering = list(ground_truth_classes) if ground_truth_classes is not None else list(class_names)
        base = 0 if min(numbers) == 0 else 1
        labels = []
        for (number, _), value in zip(rows, numbers):
            k = value - base
            if not 0 <= k < len(numbering):
                raise ValueError(f"{path} line {number}: label {value} is outside {base}..{len(numbering) - 1 + base} "
                                 f"({'1' if base else '0'}-based numbering of {len(numbering)} classes)")
            if numbering[k] not in index_of:
                raise ValueError(f"{path} line {number}: label {value} is class {numbering[k]!r}, which is not "
                                 f"among the dataset's classes")
            labels.append(index_of[numbering[k]])
        return np.asarray(labels, np.int64)
    labels = []
    for (number, _), token in zip(rows, tokens):
        if token not in index_of:
            raise ValueError(f"{path} line {number}: {token!r} is neither an integer label nor one of the "
                             f"{len(class_names)} class names")
        labels.append(index_of[token])
    return np.asarray(labels, np.int64)


class ImageNet(ImageFiles):
    """ILSVRC-2012 classification data as unpacked from its archives.

    Parameters
    ----------
    root : folder holding ``train/`` and/or ``val/``
    split : "train" (``train/<wnid>/*.JPEG``) or "val"
    ground_truth : for a flat ``val/``: the label file (default: the first of ``GROUND_TRUTH_CANDIDATES``
        under ``root`` that exists). Formats in ``read_ground_truth``. A devkit ``meta.mat`` lying beside
        it supplies the devkit's label numbering automatically; the devkit's own file
        (``DEVKIT_GROUND_TRUTH``) without that numbering is refused rather than misread.
    class_names : the classes and their order; default: the sorted folder names of ``train/`` (so train
        and val agree on the numbering), else of ``val/``, else the devkit's wnids sorted
    ground_truth_classes : list of wnids in the ground-truth file's integer numbering (overrides meta.mat)

    ``val/`` counts as sorted into class folders when it has sub-folders, and as flat otherwise.
    """

    def __init__(self, root, split="train", ground_truth=None, class_names=None, ground_truth_classes=None):
        root = _check_folder(root, "ImageNet folder")
        if split not in ("train", "val"):
            raise ValueError(f"ImageNet: split must be 'train' or 'val', got {split!r}")
        folder = _check_folder(os.path.join(root, split), f"ImageNet {split} folder")
        train_folder = os.path.join(root, "train")
        if class_names is None and split == "val" and os.path.isdir(train_folder):
            class_names = _subfolders(train_folder, []) or None  # train/'s own bad entries: its dataset's
        self.split = split
        skipped = []
        if split == "train" or _subfolders(folder, []):
            files, labels, class_names = scan_class_folders(folder, class_names, skipped)
            self.ground_truth = None
        else:
            files = _image_files(folder, skipped)
            if not files:
                raise ValueError(f"ImageNet val folder {folder} holds neither class folders nor image files")
            if ground_truth is None:
                found = [os.path.join(root, name) for name in GROUND_TRUTH_CANDIDATES
                         if os.path.lexists(os.path.join(root, name))]  # a pipe there is named, not skipped
                if not found:
                    raise FileNotFoundError(f"ImageNet val folder {folder} is flat, so it needs the devkit's "
                                            f"ground-truth file: put it under {root} as one of "
                                            f"{', '.join(GROUND_TRUTH_CANDIDATES)} (from Python, ground_truth= "
                                            f"names it)")
                ground_truth = found[0]
            ground_truth = os.fspath(ground_truth)
            meta = os.path.join(os.path.dirname(os.path.abspath(ground_truth)), "meta.mat")
            if ground_truth_classes is None and os.path.lexists(meta):  # a pipe there: named, not read as absent
                from ..files import require_regular_file

                ground_truth_classes = read_devkit_wnids(require_regular_file(meta, "devkit file"))
            if ground_truth_classes is None and os.path.basename(ground_truth) == DEVKIT_GROUND_TRUTH:
                # Read against sorted wnids, the devkit's numbers would mislabel nearly every image, silently.
                raise ValueError(f"{ground_truth} numbers the classes by the devkit's ILSVRC2012_ID, not by sorted "
                                 f"wnid: keep the devkit's meta.mat beside it, or pass ground_truth_classes="
                                 f"read_devkit_wnids(<devkit>/data/meta.mat)")
            if class_names is None:
                if ground_truth_classes is None:
                    raise ValueError(f"ImageNet val folder {folder} is flat and there is no train/ folder to take the "
                                     f"class names from: pass class_names= (the training set's, in its order)")
                class_names = sorted(ground_truth_classes)
            labels = read_ground_truth(ground_truth, files, class_names, ground_truth_classes)
            self.ground_truth = ground_truth
        super().__init__(folder, files, labels, class_names)
        self._keep_skipped(skipped)


class ArrayDataset(Dataset):
    """Images already in memory.

    Parameters
    ----------
    images : (N, H, W, 3) uint8 RGB array, or (N, H, W) uint8 grey images (Fashion-MNIST's), which ``load``
        gives as RGB with three equal channels, as a grey image file is decoded (``images.decode_image``)
    labels : (N,) integers in [0, len(class_names))
    class_names : list of str
    """

    def __init__(self, images, labels, class_names):
        if not isinstance(images, np.ndarray):
            raise TypeError(f"ArrayDataset: images must be a numpy.ndarray, got {type(images).__name__}")
        grey = images.ndim == 3
        if not (grey or images.ndim == 4 and images.shape[-1] == 3) or images.dtype != np.uint8:
            raise ValueError(f"ArrayDataset: expected RGB uint8 images of shape (N, H, W, 3), got {images.dtype} "
                             f"{images.shape} (grey images: uint8 of shape (N, H, W))")
        if len(images) == 0:
            raise ValueError("ArrayDataset: no images")
        self.images = images
        self.class_names = [str(name) for name in class_names]
        self.labels = _check_labels(labels, len(images), self.class_names, "ArrayDataset")

    def load(self, index, draft_smallest_side=None):
        image = self.images[index]
        if image.ndim == 2:  # grey: the same value in R, G and B
            image = np.repeat(image[:, :, None], 3, axis=2)
        return image, int(self.labels[index])

    def describe(self, index):
        return f"image {index}"

    def fingerprint(self):
        digest = hashlib.sha256()
        digest.update(repr(self.images.shape).encode())
        digest.update(np.ascontiguousarray(self.images).tobytes())
        digest.update(self.labels.tobytes())
        digest.update("\n".join(self.class_names).encode())
        return digest.hexdigest()

    def __repr__(self):
        return (f"ArrayDataset({len(self)} images of {self.images.shape[1]}x{self.images.shape[2]}, "
                f"{len(self.class_names)} classes)")
