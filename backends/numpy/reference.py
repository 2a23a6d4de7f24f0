"""The readable reference as a backend of its own: ``minivgg.set_backend("reference")``.

Every op is the textbook function of ``REFERENCE`` (im2col convolution, offset-loop pooling, ...) on NumPy
arrays, without the NumPy backend's engine: slower, and the one to step through in a debugger or a lesson.
"""
from . import REFERENCE, asarray, check_available, to_host, xp  # noqa: F401

globals().update(REFERENCE)

name = "reference"
OVERRIDES = ()
capabilities = frozenset()
