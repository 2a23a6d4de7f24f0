"""Which array module an array belongs to, so one function body serves NumPy and CuPy (Chainer's idea).

The reference ops call ``xp = array_module(x)`` and then write ``xp.zeros``, ``xp.maximum`` ...; given CuPy
arrays they run on the GPU unchanged. CuPy is imported only when it is already loaded, so the NumPy path
never needs it installed.
"""
import sys

import numpy


def array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy``."""
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        for array in arrays:
            if isinstance(array, cupy.ndarray):
                return cupy
    return numpy
