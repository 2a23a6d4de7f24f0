"""Annotated image folders: a user's own boxes to fine-tune a localisation net on (Appendix A.1).

Two layouts, both one XML file per image (``annotations``):

- PASCAL VOC: ``VOC2007/Annotations/000005.xml`` beside ``VOC2007/JPEGImages/000005.jpg``;
- ILSVRC CLS-LOC: ``Annotations/CLS-LOC/train/n01440764/n01440764_10026.xml`` beside
  ``Data/CLS-LOC/train/n01440764/n01440764_10026.JPEG`` (one subfolder a class; ``val/`` is flat).

``pair_annotations`` pairs each XML file with the image at the same path relative to the two folders, the
extension aside (``n01440764/n01440764_10026`` with ``n01440764/n01440764_10026.JPEG``); failing that, with
the image its ``<filename>`` names in the same subfolder or at the top of the image folder. The file name
comes first because some ILSVRC files carry a placeholder ``<filename>%s</filename>``. An XML file without
an image, and an image without an XML file (ILSVRC has boxes for fewer than half of its training images:
``unannotated="skip"`` leaves those out), are errors naming the file.

``read_box_folder`` makes the pairs a set of samples at the fixed training scale S (Appendix A.1 trains
"each on a single scale"): either decoded at once into a ``BoxDataset`` (what evaluation needs), or, for
training, ``AnnotatedImages``, which checks each file's header now (its size must be the annotation's) and
decodes the image only when a crop is taken from it, so a set of any size trains in little memory. Decoding
is the project's (``minivgg.data.images.decode_image``: any pixel format, JPEG draft mode for large photos,
decompression bombs refused); a file that cannot be decoded is left out with a ``BadImageWarning``. The
samples are either one per object (training: each crop is built around one object, and the regression target
is that object's box) or one per class an image holds, with all that class's boxes (validation: the ILSVRC
criterion accepts any ground-truth box of the class). Every class must be one of the classifier's: the box
net's outputs are the classifier's classes.
"""
import os

import numpy as np

from .annotations import AnnotationError
from .data import BoxDataset

__all__ = ["UnannotatedImagesError", "AnnotatedImages", "pair_annotations", "split_pairs", "read_box_folder",
           "class_index", "read_annotated_images"]

SAMPLES = ("object", "class", "first class")


class UnannotatedImagesError(AnnotationError):
    """Images in the image folder that no annotation describes; ``images`` lists them."""

    def __init__(self, message, images):
        super().__init__(message)
        self.images = images


def _files(folder, keep):
    """Paths under ``folder`` (recursively, hidden files and folders left out) for which ``keep(name)``,
    relative to it, sorted."""
    found = []
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        found.extend(os.path.relpath(os.path.join(root, name), folder) for name in names
                     if not name.startswith(".") and keep(name))
    return sorted(found)


def pair_annotations(annotations_dir, images_dir, unannotated="error", pixel_origin=1):
    """``[(xml path, image path, Annotation)]`` of two folders in the VOC or ILSVRC layout (module docstring).

    Raises FileNotFoundError for a missing or empty folder and for an XML file whose image is not there,
    ``AnnotationError`` (a ValueError) naming the file for a bad annotation, and ``UnannotatedImagesError``
    for images no XML file describes, unless ``unannotated="skip"``.
    """
    from ..data.images import is_image_file
    from .annotations import read_annotation

    if unannotated not in ("error", "skip"):
        raise ValueError(f"pair_annotations: unannotated must be 'error' or 'skip', got {unannotated!r}")
    annotations_dir, images_dir = os.fspath(annotations_dir), os.fspath(images_dir)
    for folder, what in ((annotations_dir, "annotation"), (images_dir, "image")):
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"no {what} folder at {folder}")
    xml_files = _files(annotations_dir, lambda name: name.lower().endswith(".xml"))
    if not xml_files:
        raise FileNotFoundError(f"no .xml annotation files in {annotations_dir} (nor in its subfolders)")
    images = _files(images_dir, is_image_file)
    if not images:
        raise FileNotFoundError(f"no images in {images_dir} (nor in its subfolders)")
    by_stem = {}
    for image in images:
        by_stem.setdefault(os.path.splitext(image)[0], image)
    pairs, used = [], set()
    for relative in xml_files:
        path = os.path.join(annotations_dir, relative)
        annotation = read_annotation(path, pixel_origin)
        folder = os.path.dirname(relative)
        named = os.path.splitext(annotation.filename)[0]
        candidates = [os.path.splitext(relative)[0], os.path.join(folder, named), named]
        image = next((by_stem[c] for c in candidates if c in by_stem), None)
        if image is None:
            raise FileNotFoundError(f"{path}: its image ({os.path.splitext(relative)[0]} or {annotation.filename}, "
                                    f"any image extension) is not in {images_dir}")
        used.add(image)
        pairs.append((path, os.path.join(images_dir, image), annotation))
    left = [image for image in images if image not in used]
    if left and unannotated == "error":
        raise UnannotatedImagesError(
            f"{len(left)} image(s) in {images_dir} have no annotation in {annotations_dir} (first: "
            f"{os.path.join(images_dir, left[0])}); give each an XML file, or leave them out", left)
    return pairs


def split_pairs(pairs, fraction, seed=0):
    """``(train, held out)``: a seeded ``fraction`` of the images held out (at least one; by image, so no
    image's objects are on both sides)."""
    if not 0 < fraction < 1:
        raise ValueError(f"split_pairs: the held-out fraction must be in (0, 1), got {fraction!r}")
    if len(pairs) < 2:
        raise ValueError(f"{len(pairs)} annotated image(s): too few to hold some out for validation; give a "
                         f"separate validation folder")
    held = min(max(1, int(round(fraction * len(pairs)))), len(pairs) - 1)
    order = np.random.default_rng(seed).permutation(len(pairs))
    return [pairs[i] for i in sorted(order[held:])], [pairs[i] for i in sorted(order[:held])]


def class_index(class_names):
    """A function ``name -> label`` for ``class_names`` (None for a name not among them). An ILSVRC-2012
    class is found under any of its names (the annotations' WordNet id ``n01440764``, the weights' "tench")."""
    exact = {str(name): i for i, name in enumerate(class_names)}
    imagenet = {}

    def lookup(name):
        if name in exact:
            return exact[name]
        if not imagenet:
            from ..class_names import imagenet_class_index

            known = imagenet_class_index()
            imagenet.update({known[str(n)]: i for i, n in reversed(list(enumerate(class_names))) if str(n) in known})
            imagenet["known"] = known
        number = imagenet["known"].get(name)
        return imagenet.get(number) if number is not None else None
    return lookup


def _rescaled_boxes(boxes, size, image):
    """(K, 4) ``boxes`` of an image of ``size`` (width, height) in the pixels of its rescaled ``image``."""
    # Multiplying before dividing keeps a box on the image's edge exactly on the rescaled one's.
    return boxes * np.tile(image.shape[1::-1], 2) / np.tile(np.asarray(size, dtype=np.float64), 2)


def _declared_size(path):
    """``(width, height)`` from the file's header, nothing decoded; BadImageError if Pillow cannot read it.
    (The pixels are decoded later by ``decode_image``, which refuses what it cannot decode.)"""
    import warnings

    from PIL import Image

    from ..data.images import BadImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                return image.size
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise BadImageError(f"{path}: cannot read the image: {error}") from error


class AnnotatedImages:
    """Annotated images decoded when a crop is taken from them, so a set of any size can be trained on.

    The interface of ``BoxDataset`` that ``BoxCropLoader`` reads: ``len``, ``load(index) -> (image (H, W, 3)
    uint8 with smallest side S, label, boxes (K, 4) in its pixels)``, ``class_names``, ``labels``, and
    ``describe(index)``, the file, for the loader's warning about unreadable images. JPEGs are decoded at
    reduced size where that still leaves S (``decode_image``'s draft mode).

    Parameters
    ----------
    paths : N image files (several samples may share one)
    sizes : (N, 2) the ``(width, height)`` the annotations give, which the boxes refer to
    labels : (N,) int
    boxes : N arrays (K_i, 4) in the annotations' pixels
    class_names : list of str
    smallest_side : the scale S
    """

    def __init__(self, paths, sizes, labels, boxes, class_names, smallest_side):
        self.paths, self.sizes = list(paths), np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
        self.labels, self.boxes = np.asarray(labels, dtype=np.int64), list(boxes)
        self.class_names, self.smallest_side = list(class_names), int(smallest_side)

    def __len__(self):
        return len(self.paths)

    def describe(self, index):
        return self.paths[index]

    def load(self, index):
        from ..data.images import decode_image
        from ..data.transforms import rescale_smallest_side

        image = rescale_smallest_side(decode_image(self.paths[index], self.smallest_side), self.smallest_side)
        return image, int(self.labels[index]), _rescaled_boxes(self.boxes[index], self.sizes[index], image)

    def __repr__(self):
        return f"AnnotatedImages({len(self)} samples, {len(self.class_names)} classes, S = {self.smallest_side})"


def read_box_folder(pairs, class_names, smallest_side=None, samples="object", lazy=False, progress=False):
    """The samples of ``pair_annotations``' pairs: a ``BoxDataset`` in memory, or ``AnnotatedImages``.

    Parameters
    ----------
    pairs : ``[(xml path, image path, Annotation)]``
    class_names : the classes in label order (the classifier's); a class not among them is an error
    smallest_side : rescale each image to this smallest side S (its boxes with it); None keeps the size
    samples : "object" (one sample per object, its box), "class" (one per class in the image, all that class's
        boxes) or "first class" (one per image: its first object's class, as ILSVRC's one-class images)
    lazy : read only the headers now (the size must be the annotation's) and decode each image when it is
        cropped (``AnnotatedImages``; needs ``smallest_side``); else decode every image now
    progress : a tqdm bar

    Images that cannot be read are left out with a ``BadImageWarning``. Raises ``AnnotationError`` naming
    the file for an unknown class or an image whose size differs from its annotation's, ValueError if no
    image could be read.
    """
    from minivgg.progress import progress_bar

    from ..data.images import UNREADABLE, decode_image, skip_record, warn_skipped
    from ..data.transforms import rescale_smallest_side

    if samples not in SAMPLES:
        raise ValueError(f"read_box_folder: samples must be one of {list(SAMPLES)}, got {samples!r}")
    if lazy and smallest_side is None:
        raise ValueError("read_box_folder: lazy reading rescales to a smallest side; give smallest_side")
    class_names = [str(name) for name in class_names]
    lookup = class_index(class_names)
    images, sizes, labels, boxes, skipped = [], [], [], [], []
    for xml_path, image_path, annotation in progress_bar(pairs, disable=not progress, desc="reading images", unit="image"):
        # "first class" reads ILSVRC's convention: only the first object's class is checked and used.
        names = annotation.names[:1] if samples == "first class" else annotation.names
        found = [lookup(name) for name in names]
        for name, label in zip(names, found):
            if label is None:
                shown = ", ".join(class_names[:5]) + (", ..." if len(class_names) > 5 else "")
                raise AnnotationError(f"{xml_path}: class {name!r} is not one of the {len(class_names)} classes "
                                      f"of the classifier ({shown})")
        try:
            image = _declared_size(image_path) if lazy else decode_image(image_path)
        except UNREADABLE as error:
            skipped.append(skip_record(image_path, error))
            continue
        width, height = image if lazy else image.shape[1::-1]
        if (height, width) != (annotation.height, annotation.width):
            raise AnnotationError(f"{xml_path} describes a {annotation.width}x{annotation.height} image, but "
                                  f"{image_path} is {width}x{height}")
        image_boxes = annotation.boxes
        if smallest_side is not None and not lazy:
            image = rescale_smallest_side(image, smallest_side)
            image_boxes = _rescaled_boxes(image_boxes, (width, height), image)
        if samples == "first class":
            image_boxes = image_boxes[[name == names[0] for name in annotation.names]]
            found = found * len(image_boxes)
        found = np.array(found)
        if samples == "object":
            groups = [(label, image_boxes[[k]]) for k, label in enumerate(found)]
        else:
            classes = list(dict.fromkeys(found.tolist()))  # in the order they first appear
            if samples == "first class":
                classes = classes[:1]
            groups = [(label, image_boxes[found == label]) for label in classes]
        for label, group in groups:
            images.append(image_path if lazy else image)  # one array shared by the image's samples
            sizes.append((width, height))
            labels.append(label)
            boxes.append(group)
    warn_skipped(skipped, "reading the annotated images")
    if not images:
        raise ValueError(f"none of the {len(pairs)} annotated images could be read")
    labels = np.array(labels, dtype=np.int64)
    if lazy:
        return AnnotatedImages(images, sizes, labels, boxes, class_names, smallest_side)
    return BoxDataset(images, labels, boxes, class_names)


def read_annotated_images(annotations_dir, images_dir, class_names=None, pixel_origin=1):
    """A ``BoxDataset`` from a folder of PASCAL VOC / ILSVRC XML files and a folder of the images they name.

    Parameters
    ----------
    annotations_dir : folder of ``*.xml`` annotations (read in sorted order, subfolders too)
    images_dir : folder of the images, paired with the XML files as ``folders.pair_annotations`` does (the
        same relative path, any image extension, or the ``<filename>`` the XML gives); images without an
        XML file are left out here
    class_names : the classes in label order (e.g. the 1000 ILSVRC WordNet ids); default: the names found,
        sorted
    pixel_origin : see ``annotations.parse_annotation``

    Each image's class is its first object's; its boxes are all the objects of that class (ILSVRC's
    localisation images have one class each). The images are decoded into memory: meant for sets that fit
    (a validation subset, a small custom set). Raises FileNotFoundError for a missing folder or image,
    ``AnnotationError`` naming the file for a bad annotation or an image whose size differs from it.
    """
    pairs = pair_annotations(annotations_dir, images_dir, unannotated="skip", pixel_origin=pixel_origin)
    names = sorted({a.names[0] for _, _, a in pairs}) if class_names is None else [str(n) for n in class_names]
    return read_box_folder(pairs, names, samples="first class")
