"""The random-split protocol of Caltech-101 and -256 (Appendix B): several seeded splits, each with a fixed
number of training images per class and up to a number of test images per class.

"On Caltech-101 we generated 3 random splits into training and test data, so that each split contains 30
training images per class, and up to 50 test images per class. On Caltech-256 we also generated 3 splits,
each of which contains 60 training images per class (and the rest is used for testing)."

Split s of seed g permutes each class's images with ``numpy.random.default_rng([g, s, class])``: the first
``train_per_class`` are for training, the next ``test_per_class`` (all the rest when None) for testing.
The same seed gives the same splits on any machine; splits never share an image between their training and
test parts. A class with too few images (at most ``train_per_class``) keeps one image for testing and
trains on the rest, with a ``ShortClassWarning`` naming it; a class of a single image cannot be split and
is an error.
"""
import warnings

import numpy as np

__all__ = ["ShortClassWarning", "class_split", "random_splits"]


class ShortClassWarning(UserWarning):
    """Some classes have fewer images than the split protocol asks to train on."""


def _check_count(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def _warn_short(short, train_per_class):
    if short:
        shown = ", ".join(short[:5]) + (f" and {len(short) - 5} more" if len(short) > 5 else "")
        warnings.warn(f"{len(short)} classes have at most {train_per_class} images ({shown}); each trains on "
                      f"all but one and tests on that one", ShortClassWarning, stacklevel=3)


def class_split(labels, train_per_class, test_per_class=None, seed=0, split=0, class_names=None):
    """One random split: (train indices, test indices), each sorted, into ``labels``.

    Parameters
    ----------
    labels : (N,) class indices of the images
    train_per_class : images per class for training (Caltech-101: 30, Caltech-256: 60)
    test_per_class : at most this many test images per class (Caltech-101: 50), None for all the rest
    seed, split : the protocol's seed and the split's number (0, 1, 2)
    class_names : names for the warning and errors

    Returns
    -------
    (train, test): int64 index arrays with no index in common.
    """
    train, test, short = _split(labels, train_per_class, test_per_class, seed, split, class_names)
    _warn_short(short, train_per_class)
    return train, test


def _split(labels, train_per_class, test_per_class, seed, split, class_names):
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"class_split: labels must be (N,) integers, got {labels.dtype} {labels.shape}")
    train_per_class = _check_count("train_per_class", train_per_class)
    test_per_class = _check_count("test_per_class", test_per_class, allow_none=True)
    train, test, short = [], [], []
    for label in np.unique(labels):
        name = class_names[label] if class_names is not None else str(label)
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            raise ValueError(f"class {name!r} has {len(members)} image: it cannot give both a training and a "
                             f"test image")
        order = np.random.default_rng([int(seed), int(split), int(label)]).permutation(members)
        take = train_per_class
        if len(members) <= train_per_class:
            take = len(members) - 1
            short.append(f"{name} ({len(members)})")
        rest = order[take:] if test_per_class is None else order[take:take + test_per_class]
        train.append(order[:take])
        test.append(rest)
    return (np.sort(np.concatenate(train)).astype(np.int64), np.sort(np.concatenate(test)).astype(np.int64),
            short)


def random_splits(labels, train_per_class, test_per_class=None, num_splits=3, seed=0, class_names=None):
    """``num_splits`` splits of ``class_split`` (split numbers 0 .. num_splits - 1)."""
    num_splits = _check_count("num_splits", num_splits)
    splits = [_split(labels, train_per_class, test_per_class, seed, s, class_names) for s in range(num_splits)]
    _warn_short(splits[0][2], train_per_class)  # the short classes are the same in every split: warn once
    return [(train, test) for train, test, _ in splits]
