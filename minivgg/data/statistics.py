"""The training set's colour statistics: the mean RGB (Sect. 2.1) and the eigen-decomposition of the RGB
covariance for the PCA colour shift (Sect. 3.1, after Krizhevsky et al., 2012).

Both come from one streamed pass over the images: per image, the pixel count, the per-channel sums and
the 3 x 3 sums of products, all exact integers, are added up; the mean and the covariance follow at the
end. Integer sums make the result independent of the order and of how the pass is split over worker
processes. Every pixel of every image counts once, so large images weigh more than small ones, as when
the mean is taken over all training pixels.

The result is cached in a small JSON file (by default inside a folder dataset's root) keyed by the
dataset's fingerprint (its file list and labels): adding, removing or relabelling an image recomputes it.
"""
import json
import warnings
from typing import NamedTuple

import numpy as np

from .images import UNREADABLE, skip_record, warn_skipped

__all__ = ["ColourStatistics", "compute_statistics", "pixel_sums", "statistics_from_sums", "CACHE_FORMAT"]

CACHE_FORMAT = "minivgg-colour-statistics-1"


class ColourStatistics(NamedTuple):
    """``mean_rgb`` (3,), ``eigenvalues`` (3,) in decreasing order and ``eigenvectors`` (3, 3) (column k
    belongs to eigenvalue k) of the RGB covariance; all in 0-255 pixel units. Unpacks as a 3-tuple."""

    mean_rgb: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray


def pixel_sums(image):
    """Exact sums of one (H, W, 3) uint8 image: ``(pixel count, sum over pixels of x (3,), of x x^T (3, 3))``.

    The products are formed in float64, which is exact here (each entry is below 2**53 for images under
    10**11 pixels), then stored as int64.
    """
    pixels = np.asarray(image).reshape(-1, 3)
    as_float = pixels.astype(np.float64)
    return (len(pixels), pixels.sum(axis=0, dtype=np.int64),
            np.rint(as_float.T @ as_float).astype(np.int64))


def statistics_from_sums(count, sum_x, sum_xx):
    """``ColourStatistics`` from exact sums over ``count`` pixels.

    mean = S1 / n; covariance C = (n S2 - S1 S1^T) / n^2 (the population covariance), formed in Python
    integers so that no precision is lost to cancellation; C = P diag(lambda) P^T with lambda decreasing
    and each eigenvector's largest-magnitude component made positive (eigenvectors are defined up to sign).
    """
    if count == 0:
        raise ValueError("colour statistics: no pixels (every image was unreadable)")
    s1 = [int(v) for v in sum_x]
    numerator = [[count * int(sum_xx[i][j]) - s1[i] * s1[j] for j in range(3)] for i in range(3)]
    covariance = np.array([[float(numerator[i][j]) for j in range(3)] for i in range(3)]) / float(count) ** 2
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    signs = np.sign(eigenvectors[np.argmax(np.abs(eigenvectors), axis=0), np.arange(3)])
    eigenvectors = eigenvectors * signs
    # eigh may return tiny negative eigenvalues for a singular covariance (e.g. grayscale data).
    eigenvalues = np.maximum(eigenvalues, 0.0)
    mean = np.array(s1, dtype=np.float64) / count
    return ColourStatistics(mean, eigenvalues, np.ascontiguousarray(eigenvectors))


def _sums_of(dataset, indices, draft_smallest_side):
    """Sums over the images ``indices`` of ``dataset`` and the list of ``(file, reason)`` skipped."""
    count, sum_x, sum_xx, skipped = 0, np.zeros(3, np.int64), np.zeros((3, 3), np.int64), []
    for index in indices:
        try:
            image, _ = dataset.load(int(index), draft_smallest_side=draft_smallest_side)
        except UNREADABLE as error:
            skipped.append(skip_record(dataset.describe(int(index)), error))
            continue
        n, s1, s2 = pixel_sums(image)
        count, sum_x, sum_xx = count + n, sum_x + s1, sum_xx + s2
    return count, sum_x, sum_xx, skipped


_worker_dataset = None


def _worker_start(dataset, draft_smallest_side):
    global _worker_dataset  # one per worker process: the pool's way of handing each worker its dataset
    _worker_dataset = (dataset, draft_smallest_side)


def _worker_sums(indices):
    dataset, draft_smallest_side = _worker_dataset
    return len(indices), _sums_of(dataset, indices, draft_smallest_side)


def _read_cache(path, fingerprint, draft_smallest_side):
    try:
        with open(path, encoding="utf-8") as handle:
            cached = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as error:
        warnings.warn(f"ignoring unreadable colour statistics cache {path}: {error}")
        return None
    if (not isinstance(cached, dict) or cached.get("format") != CACHE_FORMAT
            or cached.get("fingerprint") != fingerprint or cached.get("draft_smallest_side") != draft_smallest_side):
        return None
    try:
        statistics = ColourStatistics(*(np.asarray(cached[key], dtype=np.float64)
                                        for key in ("mean_rgb", "eigenvalues", "eigenvectors")))
    except (KeyError, TypeError, ValueError):
        return None
    shapes = tuple(array.shape for array in statistics)
    if shapes != ((3,), (3,), (3, 3)) or not all(np.isfinite(array).all() for array in statistics):
        # An edited or damaged cache would otherwise become the model's preprocessing: compute afresh.
        warnings.warn(f"ignoring colour statistics cache {path}: expected finite arrays of shapes (3,), (3,), "
                      f"(3, 3), got shapes {shapes}")
        return None
    return statistics


def _write_cache(path, record):
    from ..files import write_json

    try:
        write_json(path, record)
    except OSError as error:  # a read-only dataset folder: the statistics are still returned
        warnings.warn(f"could not cache the colour statistics in {path}: {error}")


def compute_statistics(dataset, cache_path=None, progress=True, draft_smallest_side=None, num_workers=0,
                       chunk_size=64):
    """Mean RGB and RGB-covariance eigen-decomposition of ``dataset``, streamed in one pass and cached.

    Parameters
    ----------
    dataset : a dataset (``len``, ``load``, ``describe``, ``fingerprint``); the training set
    cache_path : JSON file to read the result from when it matches the dataset, and to write it to
        otherwise. None: the dataset's ``statistics_path`` (inside a folder dataset's root; in-memory
        datasets have none); False: no cache
    progress : show a tqdm bar
    draft_smallest_side : decode JPEGs at reduced size (``decode_image``): much faster on full-size
        photos; the mean barely moves, the covariance loses the finest detail's share
    num_workers : worker processes (0: this process)
    chunk_size : images per task handed to a worker

    Returns
    -------
    ColourStatistics(mean_rgb (3,), eigenvalues (3,), eigenvectors (3, 3)), 0-255 units; unpacks as
    ``mean_rgb, eigenvalues, eigenvectors``. Unreadable images are skipped with a ``BadImageWarning``.
    """
    from minivgg.progress import progress_bar

    if cache_path is None:
        cache_path = dataset.statistics_path
    fingerprint = dataset.fingerprint() if cache_path else None
    if cache_path:
        cached = _read_cache(cache_path, fingerprint, draft_smallest_side)
        if cached is not None:
            return cached
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"compute_statistics: num_workers must be an integer >= 0, got {num_workers!r}")
    count, sum_x, sum_xx, skipped = 0, np.zeros(3, np.int64), np.zeros((3, 3), np.int64), []
    chunks = [range(start, min(start + chunk_size, len(dataset))) for start in range(0, len(dataset), chunk_size)]
    with progress_bar(total=len(dataset), disable=not progress, desc="colour statistics", unit="img") as bar:
        if num_workers == 0:
            results = ((len(chunk), _sums_of(dataset, chunk, draft_smallest_side)) for chunk in chunks)
            pool = None
        else:
            from .loader import multiprocessing_context

            pool = multiprocessing_context().Pool(num_workers, initializer=_worker_start,
                                                  initargs=(dataset, draft_smallest_side))
            results = pool.imap(_worker_sums, chunks)
        try:
            for images, (n, s1, s2, bad) in results:
                count, sum_x, sum_xx = count + n, sum_x + s1, sum_xx + s2
                skipped += bad
                bar.update(images)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    warn_skipped(skipped, "colour statistics")
    statistics = statistics_from_sums(count, sum_x, sum_xx)
    if cache_path:
        _write_cache(cache_path, {"format": CACHE_FORMAT, "fingerprint": fingerprint,
                                  "draft_smallest_side": draft_smallest_side, "images": len(dataset) - len(skipped),
                                  "skipped": len(skipped), "pixels": count,
                                  "mean_rgb": statistics.mean_rgb.tolist(),
                                  "eigenvalues": statistics.eigenvalues.tolist(),
                                  "eigenvectors": statistics.eigenvectors.tolist()})
    return statistics
