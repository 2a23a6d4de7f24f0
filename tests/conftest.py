"""Shared fixtures: a seeded generator, and the NumPy backend restored around every test.

Without a GPU the Numba backend's kernels run in Numba's CUDA simulator, so that the backend grid
(``test_backends.py``) covers them; Numba reads the switch once, on first import, hence here, first.
"""
import os
import shutil

if shutil.which("nvidia-smi") is None:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import minivgg  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(20141409)  # the paper's arXiv number, 1409.1556, folded into a seed


@pytest.fixture(autouse=True)
def numpy_backend():
    minivgg.set_backend("numpy")
    yield
    minivgg.set_backend("numpy")


def away_from_kinks(array, gap=1e-3):
    """Move values off 0 (ReLU's kink) so a finite-difference step of 1e-5 cannot cross it."""
    array = array.copy()
    near = np.abs(array) < gap
    array[near] = np.where(array[near] >= 0, gap, -gap) * 2
    return array


def distinct_values(rng, shape, gap=1e-2):
    """Values no two of which are closer than ``gap``: max-pool windows then have no ties to cross."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) * gap + rng.uniform(0, gap / 10, size=shape)).astype(np.float64)
