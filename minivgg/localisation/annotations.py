"""Bounding-box annotations in the PASCAL VOC / ILSVRC XML format, read safely.

ILSVRC's localisation annotations use PASCAL VOC's layout, one XML file per image::

    <annotation>
      <filename>n01440764_10026</filename>          (ILSVRC: no extension; VOC: "2007_000027.jpg")
      <size><width>250</width><height>250</height><depth>3</depth></size>
      <object>
        <name>n01440764</name>                      (ILSVRC: the WordNet id; VOC: "person", ...)
        <bndbox><xmin>3</xmin><ymin>5</ymin><xmax>250</xmax><ymax>221</ymax></bndbox>
      </object>
      ...
    </annotation>

Both count pixels with inclusive integer indices, 1-based in PASCAL VOC's devkit: ``xmin = 1`` is the first
column, ``xmax = width`` the last, and the devkits' overlap adds one (``xmax - xmin + 1``). In minivgg's
continuous coordinates (``boxes``) that box is ``(xmin - 1, ymin - 1, xmax, ymax)``: the same widths, so the
same IoU as the devkits' +1 formula. ``pixel_origin=0`` reads files written with 0-based indices.

The parser is ``defusedxml``'s: entity declarations (the "billion laughs" expansion bomb), external entities
and DTD retrieval are refused. Every problem (not XML, an entity, a missing or non-numeric field, a box
outside the image or inside out, no object at all) is an ``AnnotationError`` (a ValueError) naming the file
and the field.
"""
import os
from dataclasses import dataclass

import numpy as np

__all__ = ["AnnotationError", "Annotation", "read_annotation", "parse_annotation", "format_annotation"]


class AnnotationError(ValueError):
    """An annotation file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Annotation:
    """One image's ground truth.

    Attributes
    ----------
    filename : str, the image file as the annotation names it (ILSVRC: without extension)
    width, height : int, the image size the boxes refer to
    names : tuple of str, the class of each object (WordNet id or VOC class)
    boxes : (K, 4) float64 ``(x_min, y_min, x_max, y_max)`` in continuous pixel coordinates
    """

    filename: str
    width: int
    height: int
    names: tuple
    boxes: np.ndarray


def _text(element, path, source):
    """The stripped text of the child at ``path`` (e.g. "size/width"); AnnotationError if missing or empty."""
    child = element.find(path)
    if child is None or child.text is None or not child.text.strip():
        raise AnnotationError(f"{source}: missing <{path.replace('/', '><')}> field")
    return child.text.strip()


def _number(element, path, source, what):
    text = _text(element, path, f"{source}, {what}")
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(f"{source}: <{path}> of {what} must be a number, got {text!r}") from None
    if not np.isfinite(value):
        raise AnnotationError(f"{source}: <{path}> of {what} must be finite, got {text!r}")
    return value


def parse_annotation(text, source="annotation", pixel_origin=1):
    """Parse the XML ``text`` (str or bytes) of one annotation; ``source`` names it in errors.

    Returns an ``Annotation``. See the module docstring for the format and the pixel convention; raises
    ``AnnotationError``.
    """
    import defusedxml
    from defusedxml import ElementTree
    from xml.etree.ElementTree import ParseError

    if pixel_origin not in (0, 1):
        raise ValueError(f"pixel_origin must be 0 or 1 (the index of the first pixel), got {pixel_origin!r}")
    if not (text.strip() if isinstance(text, (str, bytes)) else text):
        raise AnnotationError(f"{source}: the annotation file is empty")
    try:
        root = ElementTree.fromstring(text)
    except defusedxml.DefusedXmlException as error:
        raise AnnotationError(f"{source}: refused to read XML with entity declarations or external references "
                              f"({type(error).__name__}: {error}); annotation files need none") from None
    except ParseError as error:
        raise AnnotationError(f"{source}: not well-formed XML ({error})") from None
    if root.tag != "annotation":
        raise AnnotationError(f"{source}: the root element is <{root.tag}>, expected <annotation> (PASCAL VOC / "
                              f"ILSVRC format)")
    filename = _text(root, "filename", source)
    width, height = (_number(root, f"size/{key}", source, "the image") for key in ("width", "height"))
    if width != int(width) or height != int(height) or width < 1 or height < 1:
        raise AnnotationError(f"{source}: the image size must be positive integers, got {width:g} x {height:g}")
    objects = root.findall("object")
    if not objects:
        raise AnnotationError(f"{source}: no <object> in the annotation: nothing to localise")
    names, boxes = [], []
    for number, element in enumerate(objects, start=1):
        what = f"object {number}"
        names.append(_text(element, "name", f"{source}, {what}"))
        if element.find("bndbox") is None:
            raise AnnotationError(f"{source}: {what} ({names[-1]}) has no <bndbox>")
        xmin, ymin, xmax, ymax = (_number(element, f"bndbox/{key}", source, what)
                                  for key in ("xmin", "ymin", "xmax", "ymax"))
        if xmax < xmin or ymax < ymin:
            raise AnnotationError(f"{source}: {what} ({names[-1]}) is inside out: xmin {xmin:g} xmax {xmax:g}, "
                                  f"ymin {ymin:g} ymax {ymax:g}")
        box = (xmin - pixel_origin, ymin - pixel_origin, xmax - pixel_origin + 1, ymax - pixel_origin + 1)
        if box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height:
            first, last_x, last_y = pixel_origin, width - 1 + pixel_origin, height - 1 + pixel_origin
            raise AnnotationError(
                f"{source}: {what} ({names[-1]}) lies outside the {width:g} x {height:g} image: xmin..xmax "
                f"{xmin:g}..{xmax:g} and ymin..ymax {ymin:g}..{ymax:g} must lie within {first}..{last_x:g} and "
                f"{first}..{last_y:g} ({pixel_origin}-based pixel indices; pass pixel_origin="
                f"{1 - pixel_origin} if the file counts from {1 - pixel_origin})")
        boxes.append(box)
    return Annotation(filename, int(width), int(height), tuple(names), np.array(boxes, dtype=np.float64))


def read_annotation(path, pixel_origin=1):
    """Read one PASCAL VOC / ILSVRC XML annotation file; see ``parse_annotation``.

    Raises FileNotFoundError if there is no such file, ``AnnotationError`` (a ValueError) for a bad one.
    """
    from ..files import require_regular_file

    path = require_regular_file(path, "annotation file")  # a named pipe would block the read
    with open(path, "rb") as handle:
        return parse_annotation(handle.read(), source=path, pixel_origin=pixel_origin)


def format_annotation(filename, width, height, names, boxes):
    """The PASCAL VOC XML text of one image's boxes (the inverse of ``parse_annotation`` with origin 1).

    ``boxes`` (K, 4) in continuous pixel coordinates must lie on whole pixels (VOC stores integer indices).
    """
    from xml.sax.saxutils import escape

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(names) != len(boxes):
        raise ValueError(f"format_annotation: {len(names)} names for {len(boxes)} boxes")
    if not np.all(boxes == np.round(boxes)):
        raise ValueError("format_annotation: PASCAL VOC stores whole pixels; these boxes have fractional corners")
    objects = "".join(
        f"  <object>\n    <name>{escape(str(name))}</name>\n    <bndbox><xmin>{int(b[0]) + 1}</xmin>"
        f"<ymin>{int(b[1]) + 1}</ymin><xmax>{int(b[2])}</xmax><ymax>{int(b[3])}</ymax></bndbox>\n  </object>\n"
        for name, b in zip(names, boxes))
    return (f"<annotation>\n  <filename>{escape(str(filename))}</filename>\n  <size><width>{int(width)}</width>"
            f"<height>{int(height)}</height><depth>3</depth></size>\n{objects}</annotation>\n")
