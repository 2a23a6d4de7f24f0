"""The NumPy backend: the reference on the CPU, with a faster engine for the two ops that take the time.

It starts from the reference (``backends/reference``), as the CuPy and Numba backends do, and overrides two
pairs with faster versions computing the same numbers (tested equal in float64): the convolution
(``fast_conv.py``: channels-last, cache-sized chunks on all cores, the stride-1 data gradient as a
convolution) and the FC layer (``fast_linear.py``: products split over the cores; ``parallel.py`` runs the
pieces with a one-thread BLAS).
"""
import numpy as xp

from ..contract import install_reference
from ..reference import asarray, check_available, to_host  # noqa: F401  (a host backend moves nothing)
from .fast_conv import conv2d_backward, conv2d_forward
from .fast_linear import linear_backward, linear_forward

name = "numpy"
capabilities = frozenset()

OVERRIDES = install_reference(globals())
