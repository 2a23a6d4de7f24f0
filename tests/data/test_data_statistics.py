"""Colour statistics: the mean RGB and covariance eigen-decomposition of the training pixels, equal to a
direct NumPy computation, the same with workers, cached beside the data and recomputed when the files
change."""
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from minivgg.data import ArrayDataset, BadImageWarning, ImageFolder, compute_statistics
from minivgg.data.datasets import STATISTICS_FILE, ImageFiles


def coloured_folder(root, rng, sizes=((5, 7), (9, 4), (6, 6), (3, 11), (8, 8))):
    """PNG images (lossless) of different sizes with correlated channels, like photographs."""
    images = []
    for k, (height, width) in enumerate(sizes):
        base = rng.integers(0, 200, (height, width, 1))
        image = np.clip(base + rng.integers(0, 56, (height, width, 3)) * [1, 0.5, 0.2], 0, 255).astype(np.uint8)
        (root / f"class{k % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / f"class{k % 2}" / f"{k}.png")
        images.append(image)
    return images


def direct(images):
    pixels = np.concatenate([image.reshape(-1, 3) for image in images]).astype(np.float64)
    return pixels.mean(axis=0), np.cov(pixels, rowvar=False, bias=True)


def test_statistics_equal_a_direct_numpy_computation_over_all_pixels(tmp_path, rng):
    images = coloured_folder(tmp_path, rng)
    mean_rgb, eigenvalues, eigenvectors = compute_statistics(ImageFolder(tmp_path), cache_path=False, progress=False)
    mean, covariance = direct(images)
    assert np.allclose(mean_rgb, mean, rtol=1e-12)
    assert np.allclose(eigenvectors @ np.diag(eigenvalues) @ eigenvectors.T, covariance, rtol=1e-10)
    assert np.allclose(eigenvalues, np.linalg.eigvalsh(covariance)[::-1], rtol=1e-10)
    assert np.all(np.diff(eigenvalues) <= 0) and np.allclose(eigenvectors.T @ eigenvectors, np.eye(3))


def test_workers_give_exactly_the_statistics_of_one_process(tmp_path, rng):
    coloured_folder(tmp_path, rng)
    data = ImageFolder(tmp_path)
    one = compute_statistics(data, cache_path=False, progress=False)
    two = compute_statistics(data, cache_path=False, progress=False, num_workers=2, chunk_size=2)
    for a, b in zip(one, two):
        assert np.array_equal(a, b)


def test_statistics_are_cached_beside_the_data_and_recomputed_when_the_files_change(tmp_path, rng, monkeypatch):
    coloured_folder(tmp_path, rng)
    first = compute_statistics(ImageFolder(tmp_path), progress=False)
    cache = tmp_path / STATISTICS_FILE
    record = json.loads(cache.read_text())
    assert record["images"] == 5 and np.allclose(record["mean_rgb"], first.mean_rgb)

    def no_decoding(self, index, draft_smallest_side=None):
        raise AssertionError("the cache should have answered")

    with monkeypatch.context() as patch:
        patch.setattr(ImageFiles, "load", no_decoding)
        cached = compute_statistics(ImageFolder(tmp_path), progress=False)
    assert np.array_equal(cached.eigenvectors, first.eigenvectors) and np.array_equal(cached.mean_rgb, first.mean_rgb)

    Image.fromarray(np.full((4, 4, 3), 255, np.uint8)).save(tmp_path / "class0" / "white.png")
    changed = compute_statistics(ImageFolder(tmp_path), progress=False)  # the file list changed: recomputed
    assert np.all(changed.mean_rgb > first.mean_rgb)
    assert json.loads(cache.read_text())["images"] == 6


def test_unreadable_images_are_skipped_with_a_warning(tmp_path, rng):
    images = coloured_folder(tmp_path, rng)
    (tmp_path / "class1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.warns(BadImageWarning, match=r"colour statistics: skipped 1 unreadable image \(.*broken.png"):
        statistics = compute_statistics(ImageFolder(tmp_path), cache_path=False, progress=False)
    assert np.allclose(statistics.mean_rgb, direct(images)[0])


def test_in_memory_data_is_cached_only_where_asked(tmp_path, rng):
    images = rng.integers(0, 256, (6, 4, 5, 3), dtype=np.uint8)
    data = ArrayDataset(images, np.zeros(6, np.int64), ["one"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        statistics = compute_statistics(data, progress=False)
    assert np.allclose(statistics.mean_rgb, direct(images)[0])
    compute_statistics(data, cache_path=tmp_path / "digits.json", progress=False)
    assert json.loads((tmp_path / "digits.json").read_text())["fingerprint"] == data.fingerprint()


@pytest.mark.parametrize("damage", ["nan mean", "wrong shape", "deep json"])
def test_a_damaged_statistics_cache_is_recomputed_not_used(tmp_path, rng, damage):
    coloured_folder(tmp_path, rng)
    first = compute_statistics(ImageFolder(tmp_path), progress=False)
    cache = tmp_path / STATISTICS_FILE
    record = json.loads(cache.read_text())
    if damage == "nan mean":
        record["mean_rgb"][1] = float("nan")
    elif damage == "wrong shape":
        record["eigenvectors"] = [1.0, 2.0]
    cache.write_text("[" * 100_000 + "]" * 100_000 if damage == "deep json" else json.dumps(record))
    with pytest.warns(UserWarning, match="ignoring .*colour statistics cache"):
        again = compute_statistics(ImageFolder(tmp_path), progress=False)
    assert np.array_equal(again.mean_rgb, first.mean_rgb) and np.isfinite(again.eigenvectors).all()
