"""``import minivgg`` from a checkout that was never installed (``python -c "import minivgg"`` in the repository).

setup.py installs two folders of the repository under the package's name: ``backends/`` as
``minivgg.backends`` and ``data/`` as ``minivgg.resources``. An installed (or ``pip install -e``) copy finds
them by that mapping; a bare checkout has no mapping, so here, on import, each is registered from its folder
beside ``minivgg/`` when, and only when, Python cannot find it otherwise.
"""
import importlib.util
import pathlib
import sys

FOLDERS = {"minivgg.backends": "backends", "minivgg.resources": "data"}  # as setup.py's package_dir


def register_checkout_folders():
    """Make every ``FOLDERS`` package importable from the repository's own folders where no installation
    provides it; returns the names registered so."""
    root = pathlib.Path(__file__).resolve().parent.parent
    registered = []
    for name, folder in FOLDERS.items():
        init = root / folder / "__init__.py"
        if name in sys.modules or importlib.util.find_spec(name) is not None or not init.is_file():
            continue
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)  # as the import system does: ``minivgg.backends`` works
        registered.append(name)
    return registered


register_checkout_folders()
