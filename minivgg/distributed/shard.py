"""Each rank's share of the data: disjoint, and together exactly what one process would see.

Training: the epoch's order (one permutation of the whole dataset, drawn from the seed and the epoch) is cut
into global batches of ``global_batch``; rank r takes the r-th of the N equal parts of every global batch. Its
device batches then cover, in order, positions ``step * B + r * B / N + k * d`` of the order, which is why the
trainer tells dropout ``first_sample = r * B / N + k * d``. A sample's augmentation (scale, crop, flip, colour
shift) is drawn from (seed, epoch, sample index) by the loader, whichever rank loads it.

Evaluation: rank r takes the r-th of N contiguous, near-equal parts of the (unshuffled) data; the counts are
summed afterwards.
"""
import math

import numpy as np

from ..data.loader import DataLoader

__all__ = ["ShardedLoader", "shard_training", "shard_evaluation"]


class ShardedLoader(DataLoader):
    """A ``DataLoader`` that visits only ``select(order)`` of each epoch's order; everything else (workers,
    augmentation, preprocessing, exact resumption) is the wrapped loader's."""

    def __init__(self, loader, select, length):
        self.__dict__.update(loader.__dict__)
        self._select, self._length = select, length

    def epoch_order(self, epoch_index):
        return self._select(super().epoch_order(epoch_index))

    def __len__(self):
        return self._length


def shard_training(loader, rank, ranks, global_batch):
    """Rank ``rank``'s share of ``loader`` (of N = ``ranks``) for SGD steps of ``global_batch`` images.

    Parameters
    ----------
    loader : DataLoader whose ``batch_size`` is the device batch; each rank takes device batches of
        d = min(device batch, B / N), and B must be a multiple of N d
    rank, ranks : ints, 0 <= rank < ranks
    global_batch : int, B, the images of one SGD step over all ranks (the paper's 256)

    Returns
    -------
    ShardedLoader with ``(len(dataset) // B) * B / (N d)`` batches of d images an epoch (the last incomplete global batch
    is left out, as ``drop_last`` does for one process)
    """
    share = global_batch // ranks
    device_batch = min(loader.batch_size, share)  # a rank never needs more than its share in one pass
    if global_batch % ranks or share % device_batch:
        raise ValueError(f"the batch of {global_batch} images does not split into {ranks} processes x device "
                         f"batches of {device_batch}: choose --batch-size a multiple of {ranks * device_batch}, or "
                         f"another number of processes")
    steps = len(loader.dataset) // global_batch
    if steps == 0:
        raise ValueError(f"the training set has {len(loader.dataset)} images, fewer than one SGD step of "
                         f"{global_batch}")

    def select(order):
        return order[:steps * global_batch].reshape(steps, ranks, share)[:, rank].reshape(-1)

    sharded = ShardedLoader(loader, select, steps * (share // device_batch))
    sharded.batch_size = device_batch
    return sharded


def shard_evaluation(loader, rank, ranks):
    """Rank ``rank``'s contiguous part of ``loader``'s data, or None when that part is empty."""
    bounds = [len(loader.dataset) * r // ranks for r in range(ranks + 1)]
    first, last = bounds[rank], bounds[rank + 1]
    if last == first:
        return None
    batches = math.ceil((last - first) / loader.batch_size)
    return ShardedLoader(loader, lambda order: np.asarray(order[first:last]), batches)
