"""The maths of minivgg, one subpackage per device (installed as ``minivgg.backends``); nothing here imports
the package above it.

``contract.py`` says what a backend exports and checks it; ``shapes.py`` holds the output-size arithmetic
every backend needs; ``reference/`` holds every op written once, readably, on any array module (and its naive
loop twin, ``loops.py``); ``numpy/``, ``cupy/`` and ``numba/`` each start from the reference and override
only what their device forces. Choose one with ``minivgg.set_backend(name)``; importing this package imports
none of them.
"""
