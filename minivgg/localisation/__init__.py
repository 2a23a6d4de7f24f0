"""Object localisation (Appendix A): a VGG whose last layer regresses boxes, dense box prediction merged
greedily as OverFeat does, and the ILSVRC localisation error.

- ``boxes``: ``(x_min, y_min, x_max, y_max)`` boxes, ``iou``, the (centre, size) encoding relative to a window.
- ``annotations``: PASCAL VOC / ILSVRC XML files, read with ``defusedxml``; ``folders``: annotated image
  folders (VOC and ILSVRC CLS-LOC layouts) as training and validation sets.
- ``data``: ``BoxDataset`` and the crops with box targets (``BoxCropLoader``); ``scenes``: the embedded set.
- ``net``: ``localisation_net`` (SCR or PCR, fine-tuning all layers or FC only); ``training``: the objective
  for ``minivgg.training.train`` and ``fine_tune_localisation``.
- ``dense``, ``merge``, ``protocols``: the two testing protocols; ``metric``: the error; ``draw``: figures.
"""
from .annotations import Annotation, AnnotationError, parse_annotation, read_annotation
from .boxes import areas, decode_boxes, encode_boxes, intersection_areas, iou
from .data import BoxCropLoader, BoxDataset, BoxTargets
from .dense import DenseBoxes, dense_boxes
from .folders import AnnotatedImages, pair_annotations, read_annotated_images, read_box_folder
from .merge import greedy_merge, match_scores
from .metric import centre_boxes, image_is_localised, localisation_error, whole_image_boxes
from .net import LocalisationNet, load_localisation_net, localisation_net, save_localisation_net
from .protocols import (Localisation, centre_crop_boxes, evaluate_localisation, format_localisation_table, localise,
                        mean_relative_size)
from .scenes import load_digit_scenes
from .training import BoxRegression, BoxRegressionLoss, fine_tune_localisation, train_classifier_on_boxes

__all__ = ["Annotation", "AnnotationError", "parse_annotation", "read_annotation", "areas", "decode_boxes",
           "encode_boxes", "intersection_areas", "iou", "BoxCropLoader", "BoxDataset", "BoxTargets",
           "read_annotated_images", "AnnotatedImages", "pair_annotations", "read_box_folder", "DenseBoxes",
           "dense_boxes", "greedy_merge", "match_scores", "centre_boxes", "image_is_localised", "localisation_error",
           "whole_image_boxes", "LocalisationNet", "load_localisation_net", "localisation_net",
           "save_localisation_net", "Localisation", "centre_crop_boxes", "evaluate_localisation",
           "format_localisation_table", "localise", "mean_relative_size", "load_digit_scenes", "BoxRegression",
           "BoxRegressionLoss", "fine_tune_localisation", "train_classifier_on_boxes"]
