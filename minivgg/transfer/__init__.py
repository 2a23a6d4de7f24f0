"""Very deep features on other datasets (Appendix B): the nets as fixed feature extractors, linear SVMs on
top, and the VOC and Caltech protocols of Tables 11 and 12.

- ``extraction``: dense penultimate-layer (or any named layer's) activations, global average pooling, flip
  averaging, several scales stacked or averaged, L2 normalisation, boxes stacked with the whole image.
- ``cache``: descriptors on disk keyed by the weights, the image and the settings.
- ``features``: descriptors of a collection through the cache; several nets stacked.
- ``svm``: linear SVMs with C chosen by cross-validation; one-vs-rest multi-class and per-class multi-label.
- ``metrics``: VOC average precision (2007's 11-point and the later area definition), mean AP, mean class
  recall, mean +- std over splits.
- ``voc``, ``voc_action``, ``caltech``, ``splits``, ``protocols``: the datasets' layouts, the seeded split
  protocol, scoring and the tables.
- ``demonstration``: the same pipeline on the embedded digits, no download.
"""
from .cache import FeatureCache, default_cache_folder, image_key, model_fingerprint, weights_fingerprint
from .extraction import AGGREGATIONS, PENULTIMATE, FeatureSettings, crop_box, extract, l2_normalise, stack
from .features import features_of, stacked_features
from .metrics import (AP_METHODS, average_precision, class_recalls, mean_and_std, mean_average_precision,
                      mean_class_recall, precision_recall)
from .protocols import DATASETS, TABLE_11_COLUMNS, Protocol, format_table, protocol, score
from .splits import ShortClassWarning, class_split, random_splits
from .svm import C_GRID, MultiClassSVM, MultiLabelSVMs, choose_C, train_multiclass, train_multilabel
from .voc import VOC_CLASSES, read_voc_split
from .voc_action import VOC_ACTIONS, read_action_split

__all__ = ["FeatureCache", "default_cache_folder", "image_key", "model_fingerprint", "weights_fingerprint",
           "AGGREGATIONS", "PENULTIMATE", "FeatureSettings", "crop_box", "extract", "l2_normalise", "stack",
           "features_of", "stacked_features", "AP_METHODS", "average_precision", "class_recalls", "mean_and_std",
           "mean_average_precision", "mean_class_recall", "precision_recall", "DATASETS", "TABLE_11_COLUMNS",
           "Protocol", "format_table", "protocol", "score", "ShortClassWarning", "class_split", "random_splits",
           "C_GRID", "MultiClassSVM", "MultiLabelSVMs", "choose_C", "train_multiclass", "train_multilabel",
           "VOC_CLASSES", "read_voc_split", "VOC_ACTIONS", "read_action_split"]
