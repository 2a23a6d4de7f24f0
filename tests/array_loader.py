"""A stand-in for the data loader in training tests: arrays in, batches out, in an order set by (seed, epoch)."""
import numpy as np


class ArrayLoader:
    """The loader interface the trainer uses (``batch_size``, ``len``, ``epoch(e, start_batch)``), over
    arrays, with a shuffle that depends only on (seed, epoch)."""

    def __init__(self, x, y, batch_size, seed=0, shuffle=True):
        self.x, self.y, self.batch_size, self.seed, self.shuffle = x, y, batch_size, seed, shuffle

    def __len__(self):
        return len(self.y) // self.batch_size

    def epoch(self, epoch, start_batch=0):
        order = (np.random.default_rng([self.seed, epoch]).permutation(len(self.y)) if self.shuffle
                 else np.arange(len(self.y)))
        for b in range(start_batch, len(self)):
            index = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.x[index], self.y[index]
