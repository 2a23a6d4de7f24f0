"""The maths of minivgg, one subpackage per device (installed as ``minivgg.backends``).

``numpy`` holds the reference (every op written once, on any array module) and the fast CPU engine;
``cupy`` and ``numba`` start from the reference and override only what their device forces; ``contract.py``
says what a backend exports and checks it. Choose one with ``minivgg.set_backend(name)``; importing this
package imports none of them.
"""
