"""The evaluation protocols of Table 11, and the table itself.

A ``Protocol`` is the images of a dataset, their targets, the train/test splits and the measure:

- ``voc2007``: train on "trainval", test on "test"; mean AP by VOC 2007's 11-point definition.
- ``voc2012``: train on "train", test on "val" (the test labels are not public); mean AP by the area
  definition of VOC 2010 onwards.
- ``caltech101``: 3 seeded splits of 30 training and up to 50 test images per class; mean class recall,
  mean +- std over the splits.
- ``caltech256``: 3 seeded splits of 60 training images per class, the rest for testing; same measure.
- ``folder``: ``root/train/<class>`` and ``root/test/<class>`` (one fixed split), or ``root/<class>``
  with the seeded split protocol (``train_per_class`` required); mean class recall.
- ``voc2012action`` (Table 12): each person of VOC 2012's action task is a sample, its box stacked with the
  whole image (or the whole image alone, ``boxes=False``); train on "train", test on "val"; mean AP (area).

``score(protocol, features)`` trains the linear SVMs of each split on the training images' descriptors
and measures the test images; ``format_table`` prints Table 11's columns.
"""
import math
import os
from dataclasses import dataclass, field

import numpy as np

from .caltech import find_category_folder, has_fixed_split, read_class_folders
from .metrics import mean_and_std, mean_average_precision, mean_class_recall
from .splits import random_splits
from .svm import C_GRID, check_features, train_multiclass, train_multilabel
from .voc import VOC_CLASSES, VOC_SPLITS, read_voc_split

__all__ = ["DATASETS", "TABLE_11_COLUMNS", "Protocol", "protocol", "score", "format_table"]

DATASETS = ("voc2007", "voc2012", "caltech101", "caltech256", "folder", "voc2012action")

# Table 11's columns, with the measure of each.
TABLE_11_COLUMNS = {"voc2007": "VOC-2007 (mean AP)", "voc2012": "VOC-2012 (mean AP)",
                    "caltech101": "Caltech-101 (mean class recall)", "caltech256": "Caltech-256 (mean class recall)"}
TABLE_12_COLUMN = "VOC-2012 action (mean AP)"

# The paper's per-class counts and the aggregation it found best (Appendix B).
CALTECH_PROTOCOL = {"caltech101": (30, 50), "caltech256": (60, None)}
PAPER_AGGREGATION = {"voc2007": "average", "voc2012": "average", "caltech101": "stack", "caltech256": "stack",
                     "folder": "stack", "voc2012action": "average"}


@dataclass
class Protocol:
    """A dataset under its evaluation protocol.

    Attributes
    ----------
    dataset : one of ``DATASETS``
    sources : the N image files (or arrays) whose descriptors are needed
    targets : (N,) class indices (multi-class) or (N, K) VOC flags (multi-label)
    class_names : the K classes
    splits : list of (train indices, test indices) into ``sources``
    measure : "mean AP" or "mean class recall"
    ap_method : "voc07" or "area" for mean AP, else None
    column : the Table 11 (or 12) column the result goes in
    boxes : None, or one box per source stacked with the whole image (VOC action)
    """

    dataset: str
    sources: list
    targets: np.ndarray
    class_names: list
    splits: list
    measure: str
    ap_method: str = None
    column: str = ""
    notes: list = field(default_factory=list)
    boxes: list = None

    @property
    def multilabel(self):
        return self.targets.ndim == 2


def _voc(root, year, train_split, test_split):
    default_train, default_test, ap_method = VOC_SPLITS[year]
    train = read_voc_split(root, train_split or default_train, year)
    test = read_voc_split(root, test_split or default_test, year)
    sources = train.paths + test.paths
    targets = np.concatenate([train.flags, test.flags])
    split = (np.arange(len(train.paths)), np.arange(len(train.paths), len(sources)))
    notes = [f"trained on {train.split} ({len(train.paths)} images), tested on {test.split} "
             f"({len(test.paths)} images)"]
    return Protocol(f"voc{year}", sources, targets, list(VOC_CLASSES), [split], "mean AP", ap_method,
                    TABLE_11_COLUMNS[f"voc{year}"], notes)


def _voc_action(root, train_split, test_split, boxes):
    from .voc_action import VOC_ACTIONS, read_action_split

    train = read_action_split(root, train_split or "train")
    test = read_action_split(root, test_split or "val")
    sources = train.paths + test.paths
    split = (np.arange(len(train.paths)), np.arange(len(train.paths), len(sources)))
    notes = [f"trained on {train_split or 'train'} ({len(train.paths)} persons), tested on {test_split or 'val'} "
             f"({len(test.paths)} persons), {'image and box' if boxes else 'image only'}"]
    return Protocol("voc2012action", sources, np.concatenate([train.flags, test.flags]), list(VOC_ACTIONS),
                    [split], "mean AP", "area", TABLE_12_COLUMN, notes, train.boxes + test.boxes if boxes else None)


def _class_folder_protocol(dataset, folder, train_per_class, test_per_class, num_splits, seed, column):
    paths, labels, names = read_class_folders(folder)
    splits = random_splits(labels, train_per_class, test_per_class, num_splits, seed, names)
    notes = [f"{num_splits} splits of {train_per_class} training and "
             f"{'all other' if test_per_class is None else f'up to {test_per_class}'} test images per class "
             f"(seed {seed}), {len(names)} classes"]
    return Protocol(dataset, paths, labels, names, splits, "mean class recall", None, column, notes)


def protocol(dataset, root, train_per_class=None, test_per_class=None, num_splits=3, seed=0, train_split=None,
             test_split=None, boxes=True):
    """The ``Protocol`` of ``dataset`` (one of ``DATASETS``) at ``root``.

    ``train_per_class`` / ``test_per_class`` override the Caltech counts (30/50, 60/all) and are required
    for a ``folder`` without train/ and test/; ``num_splits`` and ``seed`` fix the random splits;
    ``train_split`` / ``test_split`` override VOC's splits ("trainval"/"test", "train"/"val"); ``boxes``
    (VOC action) stacks each person's box with the whole image.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    if dataset == "voc2012action":
        return _voc_action(root, train_split, test_split, boxes)
    if dataset.startswith("voc"):
        return _voc(root, dataset[3:], train_split, test_split)
    if dataset in CALTECH_PROTOCOL:
        default_train, default_test = CALTECH_PROTOCOL[dataset]
        folder = find_category_folder(root, dataset)
        train_count = train_per_class if train_per_class is not None else default_train
        return _class_folder_protocol(dataset, folder, train_count,
                                      test_per_class if test_per_class is not None else default_test,
                                      num_splits, seed, TABLE_11_COLUMNS[dataset])
    column = f"{dataset} (mean class recall)"
    if not os.path.isdir(os.fspath(root)):
        raise FileNotFoundError(f"folder dataset {root} does not exist or is not a folder")
    if has_fixed_split(root):
        train_paths, train_labels, names = read_class_folders(os.path.join(root, "train"))
        test_paths, test_labels, _ = read_class_folders(os.path.join(root, "test"), names)
        split = (np.arange(len(train_paths)), np.arange(len(train_paths), len(train_paths) + len(test_paths)))
        return Protocol(dataset, train_paths + test_paths, np.concatenate([train_labels, test_labels]), names,
                        [split], "mean class recall", None, column, ["the folder's own train/ and test/ split"])
    if train_per_class is None:
        raise ValueError(f"folder dataset {root} has no train/ and test/ folders: give the number of training "
                         f"images per class (--train-per-class) for the random split protocol")
    return _class_folder_protocol(dataset, root, train_per_class, test_per_class, num_splits, seed, column)


def score(protocol, features, C_grid=C_GRID, folds=5, seed=0):
    """Train the SVMs of every split on ``features[train]`` and measure ``features[test]``.

    Parameters
    ----------
    protocol : a ``Protocol``
    features : (N, D) descriptors of ``protocol.sources``, in order
    C_grid, folds, seed : the cross-validation of C (``svm.choose_C``)

    Returns
    -------
    dict: ``value`` and ``std`` in % (mean and std over splits; std 0 for one split), ``per_split`` (%),
    ``per_class`` (the last split's per-class AP or recall, %), ``C`` (the chosen C per split).
    """
    from .metrics import class_recalls

    # The test images' features too: scikit-learn would refuse a NaN row only with "Input X contains NaN".
    features = check_features(features, len(protocol.sources), "score")
    values, chosen, per_class = [], [], None
    for train, test in protocol.splits:
        if protocol.multilabel:
            svms = train_multilabel(features[train], protocol.targets[train], C_grid, folds, seed,
                                    protocol.class_names)
            value, per_class = mean_average_precision(svms.scores(features[test]), protocol.targets[test],
                                                      protocol.ap_method, class_names=protocol.class_names)
            chosen.append(svms.Cs)
        else:
            svm = train_multiclass(features[train], protocol.targets[train], C_grid, folds, seed)
            predictions = svm.predict(features[test])
            value = mean_class_recall(predictions, protocol.targets[test], len(protocol.class_names))
            per_class = class_recalls(predictions, protocol.targets[test], len(protocol.class_names))
            chosen.append(svm.C)
        values.append(100 * value)
    mean, std = mean_and_std(values)
    return {"value": mean, "std": std, "per_split": values, "per_class": list(100 * np.asarray(per_class)),
            "C": chosen, "measure": protocol.measure, "column": protocol.column}


def _cell(result, splits):
    if result is None or (isinstance(result["value"], float) and math.isnan(result["value"])):
        return "-"
    return f"{result['value']:.1f}" + (f" ± {result['std']:.1f}" if splits > 1 else "")


def format_table(rows, columns=None):
    """Table 11: one line per method (a net, or nets stacked), one column per dataset.

    ``rows``: list of ``(method name, {column: score result})``. By default the four Table 11 columns are
    always shown ("-" where not measured), other columns (a folder dataset) after them; ``columns`` gives
    the columns to show instead (Table 12's single one).
    """
    columns = list(TABLE_11_COLUMNS.values()) if columns is None else list(columns)
    for _, results in rows:
        columns += [column for column in results if column not in columns]
    width = max([len("Method")] + [len(name) for name, _ in rows])
    header = f"{'Method':<{width}}  " + "  ".join(f"{column:>{max(len(column), 11)}}" for column in columns)
    lines = [header, "-" * len(header)]
    for name, results in rows:
        cells = []
        for column in columns:
            result = results.get(column)
            splits = len(result["per_split"]) if result is not None else 1
            cells.append(f"{_cell(result, splits):>{max(len(column), 11)}}")
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)
