"""The cupy backend (not built yet: see the project's issues)."""
from minivgg.backend import BackendUnavailableError


def check_available():
    raise BackendUnavailableError("the cupy backend is registered but not implemented in this version.")
