"""Deterministic subsets of a dataset: a few images per class, or the first N of a seeded order, and the
held-out validation split.

A reproduction in miniature trains on a part of the data. The part is a function of the labels and the seed
alone, so the same call always picks the same images on every machine, and a larger part holds every image
of a smaller one (the first N of each class in one seeded order), so runs on growing subsets are nested.
"""
import hashlib

import numpy as np

from .datasets import Dataset

__all__ = ["subset_indices", "stratified_split", "Subset", "subset"]


def _count(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _class_orders(labels, seed):
    """For each class present, its indices in one seeded random order."""
    rng = np.random.default_rng([int(seed), 25])
    order = rng.permutation(len(labels))
    return [order[labels[order] == k] for k in np.unique(labels)]


def subset_indices(labels, per_class=None, count=None, seed=0):
    """Indices of a seeded subset, in increasing order.

    Parameters
    ----------
    labels : (N,) integer class labels
    per_class : take this many images of every class (all of a class that has fewer)
    count : take the first ``count`` images of one seeded random order of all N (classes in their natural
        proportions); exactly one of ``per_class`` and ``count``
    seed : int >= 0; the same seed gives the same subset, and a larger size a superset of it

    Returns
    -------
    (M,) int64, sorted.
    """
    labels = np.asarray(labels)
    per_class, count = _count(per_class, "per_class"), _count(count, "count")
    if (per_class is None) == (count is None):
        raise ValueError("subset_indices: give exactly one of per_class and count")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"subset_indices: seed must be a non-negative integer, got {seed!r}")
    if per_class is not None:
        chosen = np.concatenate([indices[:per_class] for indices in _class_orders(labels, seed)])
    else:
        chosen = np.random.default_rng([int(seed), 25]).permutation(len(labels))[:count]
    return np.sort(chosen).astype(np.int64)


def stratified_split(labels, fraction, seed=0):
    """``(kept, held_out)``: sorted indices, ``round(fraction * n_k)`` of each class's n_k images held out
    (at least one of a class with two or more), in a seeded order. For the validation split of Sect. 3.1's
    schedule, taken from the training set when a dataset publishes only training and test images."""
    labels = np.asarray(labels)
    if not 0 < fraction < 1:
        raise ValueError(f"stratified_split: fraction must lie in (0, 1), got {fraction!r}")
    held = []
    for indices in _class_orders(labels, seed):
        n = int(round(fraction * len(indices)))
        held.append(indices[:max(n, 1 if len(indices) > 1 else 0)])
    held = np.sort(np.concatenate(held)).astype(np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held).astype(np.int64)
    return kept, held


class Subset(Dataset):
    """The samples ``indices`` of ``dataset``, in that order; loads, names and fingerprints through it."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, np.int64)
        if self.indices.ndim != 1 or len(self.indices) == 0:
            raise ValueError(f"Subset: expected a non-empty 1-D list of indices, got shape {self.indices.shape}")
        if self.indices.min() < 0 or self.indices.max() >= len(dataset):
            raise ValueError(f"Subset: indices must lie in [0, {len(dataset)}), got {self.indices.min()} .. "
                             f"{self.indices.max()}")
        self.class_names = list(dataset.class_names)
        self.labels = np.asarray(dataset.labels)[self.indices]

    def load(self, index, draft_smallest_side=None):
        return self.dataset.load(int(self.indices[index]), draft_smallest_side)

    def describe(self, index):
        return self.dataset.describe(int(self.indices[index]))

    def fingerprint(self):
        digest = hashlib.sha256(self.dataset.fingerprint().encode())
        digest.update(self.indices.tobytes())
        return digest.hexdigest()

    def __repr__(self):
        return f"Subset({len(self)} of {self.dataset!r})"


def subset(dataset, per_class=None, count=None, seed=0):
    """A ``Subset`` of any dataset: ``per_class`` images of each class or the first ``count`` of a seeded
    order (``subset_indices``)."""
    return Subset(dataset, subset_indices(dataset.labels, per_class, count, seed))
