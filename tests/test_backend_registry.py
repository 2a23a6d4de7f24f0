"""The registry, and the backend contract: every registered backend exports the reference's ops with the
reference's signatures, so a missing op fails here rather than in a user's training run."""
import importlib
import inspect
import sys

import numpy as np
import pytest

import minivgg
from minivgg import backend as registry
from minivgg.backends import numpy as reference

REGISTERED = registry.registered_backends()


def test_numpy_is_the_default_and_always_available():
    assert minivgg.get_backend() is reference
    assert "numpy" in minivgg.available_backends()
    assert {"numpy", "cupy", "numba"} <= set(REGISTERED)


@pytest.mark.parametrize("name", [n for n in REGISTERED if n != "numpy"])
def test_backend_module_honours_the_contract(name):
    """Import the module itself (no device needed) and compare every op's signature with the reference."""
    module_path = registry._REGISTRY[name][0]
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as error:
        pytest.skip(f"{name}: module cannot be imported here ({error})")
    missing = [op for op in reference.OPS if not hasattr(module, op)]
    assert not missing, f"backend {name!r} lacks {missing}"
    for op in reference.OPS:
        expected, found = inspect.signature(getattr(reference, op)), inspect.signature(getattr(module, op))
        assert list(expected.parameters) == list(found.parameters), f"{name}.{op}{found} != numpy.{op}{expected}"
    assert module.name == name


@pytest.mark.parametrize("name", [n for n in REGISTERED if n != "numpy"])
def test_unusable_gpu_backend_says_what_is_missing(name):
    if name in minivgg.available_backends():
        pytest.skip(f"{name} is usable on this machine")
    with pytest.raises(ImportError, match=rf"backend '{name}'.*pip install"):
        minivgg.set_backend(name)
    assert minivgg.get_backend() is reference  # a failed switch leaves the active backend alone


def test_missing_package_is_reported_by_name(monkeypatch):
    registry.register_backend("imaginary", "minivgg_no_such_module.backend", "pip install imaginary-gpu")
    try:
        with pytest.raises(minivgg.BackendUnavailableError, match=r"'minivgg_no_such_module' is missing.*imaginary-gpu"):
            minivgg.set_backend("imaginary")
    finally:
        registry._REGISTRY.pop("imaginary")


def test_register_backend_then_use_it(monkeypatch):
    """A module exporting the contract becomes choosable; here the reference under another name."""
    registry.register_backend("numpy-again", "minivgg.backends.numpy")
    try:
        assert minivgg.set_backend("numpy-again") is reference
    finally:
        registry._REGISTRY.pop("numpy-again")
        registry._loaded.pop("numpy-again", None)


def test_host_transfers_round_trip():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(minivgg.to_host(minivgg.asarray(x)), x)
    assert minivgg.asarray(x, dtype=np.float32).dtype == np.float32
