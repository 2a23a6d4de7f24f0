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


def _load_backends_beside_a_mutated_copy():
    """Mutation testing (``mutmut``, run by hand: benchmarks/RESULTS.md) runs the tests on its copies of
    ``minivgg/`` and ``backends/`` in a folder named ``mutants``, and switches a mutant on by the module name its
    file has there (``backends.reference.conv``). setup.py installs ``backends/`` as ``minivgg.backends`` from the
    checkout, so the tests would run the unmutated ops: there, ``minivgg.backends.*`` is made the copy's
    ``backends.*``, the same module objects under both names."""
    import importlib.abc
    import importlib.util
    import sys

    package = importlib.util.find_spec("minivgg")
    root = os.path.dirname(package.submodule_search_locations[0])
    if os.path.basename(root) != "mutants" or not os.path.isdir(os.path.join(root, "backends")):
        return

    class BackendsAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        given = {}  # alias -> the module it was given

        def find_spec(self, fullname, path=None, target=None):
            if fullname == "minivgg.backends" or fullname.startswith("minivgg.backends."):
                return importlib.util.spec_from_loader(fullname, self, is_package=True)
            return None

        def create_module(self, spec):
            target = spec.name[len("minivgg."):]
            if target in sys.modules and sys.modules[target] is self.given.get(spec.name):
                # The alias was dropped to import the module afresh (the GPU stand-ins' fixture does): so is it.
                for name in [name for name in sys.modules if name == target or name.startswith(target + ".")]:
                    del sys.modules[name]
            self.given[spec.name] = importlib.import_module(target)
            return self.given[spec.name]

        def exec_module(self, module):
            pass  # already executed under its own name

    sys.path.insert(0, root)
    sys.meta_path.insert(0, BackendsAlias())


_load_backends_beside_a_mutated_copy()
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


@pytest.fixture
def standin_gpu(monkeypatch):
    """A function ``install(**switches)`` that puts the GPU stand-ins (``tests/standins``) in place of CuPy,
    the cuDNN frontend and NCCL, and returns ``(cupy, cudnn, backend)``: the stand-in modules and minivgg's
    CuPy backend imported fresh on them (not yet chosen: call ``minivgg.set_backend("cupy")``). Switches
    are the stand-ins' environment variables without ``STANDIN_`` (``cudnn="missing"``, ``gpus=2``). Each
    install starts a new simulated device; everything is put back after the test."""
    import importlib
    import sys

    import standins
    from minivgg import backend as registry

    def ours(name):
        return (name.split(".")[0] in standins.STANDIN_MODULES or name == "standins.device"
                or name == "minivgg.backends.cupy" or name.startswith("minivgg.backends.cupy."))

    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    package = sys.modules["minivgg.backends"]
    saved_attribute = package.__dict__.get("cupy")

    def purge():
        for name in [name for name in sys.modules if ours(name)]:
            del sys.modules[name]
        package.__dict__.pop("cupy", None)
        standins.__dict__.pop("device", None)  # else `from standins import device` finds the old one
        registry._loaded.pop("cupy", None)

    def install(**switches):
        for name in [n for n in os.environ if n.startswith("STANDIN_")]:
            monkeypatch.delenv(name)
        for name, value in switches.items():
            monkeypatch.setenv(f"STANDIN_{name.upper()}", str(value))
        minivgg.set_backend("numpy")
        purge()
        if sys.path[0] != standins.PACKAGES:
            monkeypatch.syspath_prepend(standins.PACKAGES)
        cupy = importlib.import_module("cupy")
        cudnn = None if switches.get("cudnn") == "absent" else importlib.import_module("cudnn")
        assert cupy.IS_STANDIN and (cudnn is None or cudnn.IS_STANDIN)
        return cupy, cudnn, importlib.import_module("minivgg.backends.cupy")

    yield install
    minivgg.set_backend("numpy")
    purge()
    sys.modules.update(saved)
    if saved_attribute is not None:
        package.cupy = saved_attribute
