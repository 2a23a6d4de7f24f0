"""Datasets, preprocessing and loading (Sect. 2.1, 3.1).

- ``datasets``: ``ImageFolder``, ``ImageNet`` (train / val folders, flat val with a ground-truth file),
  ``ArrayDataset``; ``digits``: ``load_digits``, the embedded default (no download).
- ``idx`` and ``cifar``: the files of Fashion-MNIST (IDX) and CIFAR-10 (binary version); ``catalogue``: those
  datasets by name, found on disk or downloaded and checked, split for training (``load_splits``);
  ``subsets``: seeded subsets (``subset``: so many per class, or the first N).
- ``images``: decoding with JPEG draft mode, conversion of grayscale / CMYK / alpha / palette to RGB,
  ``BadImageError`` for files that cannot be decoded.
- ``transforms``: isotropic rescaling, scale jittering, crops, flips, the PCA colour shift,
  ``TrainAugmentation`` and ``EvalTransform``.
- ``statistics``: the training set's mean RGB and RGB eigen-decomposition, streamed once and cached.
- ``loader``: ``DataLoader``, batches with worker processes, bounded prefetch, exact resumption, and
  unreadable images skipped and counted.
"""
from .datasets import ArrayDataset, Dataset, ImageFiles, ImageFolder, ImageNet, read_devkit_wnids, read_ground_truth
from .digits import load_digits
from .images import BadImageError, BadImageWarning, IMAGE_EXTENSIONS, decode_image
from .loader import DataLoader
from .statistics import ColourStatistics, compute_statistics
from .subsets import Subset, subset
from .transforms import (EvalTransform, PCAColourShift, ScaleJitter, TrainAugmentation, centre_crop, random_crop,
                         random_horizontal_flip, rescale_smallest_side)

__all__ = ["Subset", "subset", "ArrayDataset", "Dataset", "ImageFiles", "ImageFolder", "ImageNet", "read_devkit_wnids",
           "read_ground_truth", "load_digits", "BadImageError", "BadImageWarning", "IMAGE_EXTENSIONS",
           "decode_image", "DataLoader", "ColourStatistics", "compute_statistics", "EvalTransform", "PCAColourShift",
           "ScaleJitter", "TrainAugmentation", "centre_crop", "random_crop", "random_horizontal_flip",
           "rescale_smallest_side"]
