"""The maths of minivgg, one subpackage per device (installed as ``minivgg.backends``).

``numpy`` is the reference; ``cupy`` and ``numba`` export the same names (see ``numpy.OPS``).
Choose one with ``minivgg.set_backend(name)``; importing this package imports none of them.
"""
