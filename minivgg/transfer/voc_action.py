"""PASCAL VOC 2012 action classification (Appendix B, Table 12): one person's action from one image, given
the person's bounding box.

    VOC2012/ImageSets/Action/jumping_train.txt   one line per person: "2010_006088 1  1"
                                                 (image id, person number, flag 1 / -1 / 0)
    VOC2012/Annotations/2010_006088.xml          the objects; person number k is the k-th <object>
    VOC2012/JPEGImages/2010_006088.jpg

The paper's two settings: (i) the descriptor of the whole image, the box ignored; (ii) the descriptors of the
whole image and of the box, stacked. Each person is one sample; its 11 flags (10 actions and "other") are
scored by mean AP with the area definition, as for VOC-2012 classification. The test labels are not public:
by default the SVMs train on "train" and are measured on "val". Annotations are read with defusedxml
(no entity expansion, no external references).
"""
import os
from dataclasses import dataclass

import numpy as np

from .voc import find_voc_folder, read_flag_file, read_split_columns

__all__ = ["VOC_ACTIONS", "ActionSplit", "read_action_split", "read_person_boxes"]

VOC_ACTIONS = ("jumping", "phoning", "playinginstrument", "reading", "ridingbike", "ridinghorse", "running",
               "takingphoto", "usingcomputer", "walking", "other")


@dataclass
class ActionSplit:
    """The persons of one split: N samples.

    Attributes
    ----------
    paths : N image files (an image appears once per person in it)
    boxes : N boxes (x_min, y_min, x_max, y_max), 0-based pixels with exclusive ends
    flags : (N, 11) int64, 1 / -1 / 0
    keys : N (image id, person number)
    """

    paths: list
    boxes: list
    flags: np.ndarray
    keys: list
    class_names: tuple = VOC_ACTIONS


def read_person_boxes(annotation_path):
    """The boxes of every <object> of a VOC annotation, in file order, as 0-based exclusive-end pixels
    (VOC's ``xmin``..``xmax`` are 1-based and inclusive: (xmin - 1, ymin - 1, xmax, ymax))."""
    try:
        from defusedxml import ElementTree
    except ImportError as error:
        raise ImportError("reading VOC annotations needs defusedxml: pip install defusedxml") from error
    try:
        objects = ElementTree.parse(annotation_path).getroot().findall("object")
        boxes = []
        for item in objects:
            box = item.find("bndbox")
            xmin, ymin, xmax, ymax = (float(box.find(tag).text) for tag in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append((xmin - 1, ymin - 1, xmax, ymax))
    except (ElementTree.ParseError, AttributeError, TypeError, ValueError) as error:
        raise ValueError(f"{annotation_path}: not a readable VOC annotation (every <object> needs a <bndbox> "
                         f"with xmin, ymin, xmax, ymax): {error}") from error
    return boxes


def _read_action_file(path):
    """``[((image_id, person), flag)]`` of one ``<action>_<split>.txt``."""
    def person(fields):
        return (fields[0], int(fields[1])) if len(fields) == 2 and fields[1].isdigit() else None
    return read_flag_file(path, person, "<image id> <person number> <1|-1|0>", "persons")


def read_action_split(root, split):
    """The persons, boxes and action flags of a VOC 2012 action split ("train", "val", "trainval").

    Raises FileNotFoundError naming missing action files, annotations or images; ValueError for malformed
    lines, action files that list different persons, or a person number beyond the annotation's objects.
    """
    folder = find_voc_folder(root, "2012", task="Action")
    action_sets = os.path.join(folder, "ImageSets", "Action")
    files = {name: os.path.join(action_sets, f"{name}_{split}.txt") for name in VOC_ACTIONS}
    keys, columns = read_split_columns(action_sets, files, split, _read_action_file, "action", "persons")
    paths, boxes, annotations = [], [], {}
    for image_id, person in keys:
        image = os.path.join(folder, "JPEGImages", f"{image_id}.jpg")
        annotation = os.path.join(folder, "Annotations", f"{image_id}.xml")
        for needed in (image, annotation):
            if not os.path.isfile(needed):
                raise FileNotFoundError(f"split {split!r} needs {needed}, which does not exist")
        if annotation not in annotations:
            annotations[annotation] = read_person_boxes(annotation)
        if not 1 <= person <= len(annotations[annotation]):
            raise ValueError(f"{annotation}: person {person} asked for, the annotation has "
                             f"{len(annotations[annotation])} objects")
        paths.append(image)
        boxes.append(annotations[annotation][person - 1])
    return ActionSplit(paths, boxes, np.asarray(columns, dtype=np.int64).T, keys)
