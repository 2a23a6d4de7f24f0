"""The backend contract: what a backend module exports, and a check that a module does.

A backend is a module with

    name, xp                      its registry name and its array module (numpy, cupy)
    asarray, to_host              host array -> this backend's array, and back
    check_available
    every op in ``OPS``           with the reference's signature (``reference.REFERENCE``)
    capabilities                  a frozenset of the optional features below it offers
    OVERRIDES                     the ops it computes its own way; every other op is the reference's function

Optional capabilities, each with the names a backend offering it must export:

    fused_conv_relu   conv2d_relu_forward / conv2d_relu_backward: a convolution and the ReLU after it in one op
                      pair, numerically the pair of layers (``reference/fused.py`` is the yardstick)
    graph_capture     capture_step(step, warmup_steps): a training step recorded once and replayed
    precision         PRECISIONS, get_precision(), set_precision(precision): the arithmetic of the products
    frozen_weights    weights_frozen(): a context manager; inside it the weights do not change (evaluation), so
                      the backend may prepare each one once (a layout copy) and reuse it for every batch
    copy_stream       copy_stream(): host-to-device copies queued on a stream of their own, so the next batch
                      travels while the current one is computed (``upload``, ``take``, ``release``; see below)

A new backend starts from the reference with ``install_reference`` and overrides only what its device forces,
so an op added to the reference appears on every backend at once.
"""
import inspect

from . import reference
from .reference import fused

__all__ = ["CAPABILITIES", "BackendUnavailableError", "install_reference", "contract_problems"]


class BackendUnavailableError(ImportError):
    """A backend cannot be used here: its package or its device is missing. The message says which, and how
    to get it."""


DEVICE_FUNCTIONS = ("asarray", "to_host", "check_available")
ATTRIBUTES = ("name", "xp", "capabilities", "OVERRIDES")
CAPABILITIES = {
    "fused_conv_relu": ("conv2d_relu_forward", "conv2d_relu_backward"),
    "graph_capture": ("capture_step",),
    "precision": ("PRECISIONS", "get_precision", "set_precision"),
    "frozen_weights": ("weights_frozen",),
    "copy_stream": ("copy_stream",),
}


def capture_step(step, warmup_steps=2):
    """Record ``step()`` (no arguments; reads its inputs from arrays that stay put) once and return an object
    whose ``replay()`` runs it again and returns what ``step`` returned, and whose ``warmup_outputs`` are what
    the last of the ``warmup_steps`` eager runs returned; the signature graph capture must have."""
    raise NotImplementedError("the signature of the graph_capture capability; a backend supplies the function")


def get_precision():
    """The precision in use, one of the backend's ``PRECISIONS``; the signature the precision capability must have."""
    raise NotImplementedError("the signature of the precision capability; a backend supplies the function")


def set_precision(precision):
    """Choose one of ``PRECISIONS``; returns the previous one; the signature the precision capability must have."""
    raise NotImplementedError("the signature of the precision capability; a backend supplies the function")


def weights_frozen():
    """A context manager inside which no weight changes; the signature the frozen_weights capability must have."""
    raise NotImplementedError("the signature of the frozen_weights capability; a backend supplies the function")


def copy_stream():
    """An object for host-to-device copies that overlap the computation; the signature the copy_stream
    capability must have. Its methods:

        upload(host_arrays) -> uploaded   queue the copies of these host arrays; they may start at once, and
                                          wait only until the memory they reuse is no longer read
        take(uploaded) -> device_arrays   the copies, as arrays the work queued from now on reads after them
        release()                         every array taken so far is read by work queued so far: its memory
                                          may be reused by later copies once that work is done
    """
    raise NotImplementedError("the signature of the copy_stream capability; a backend supplies the function")


def install_reference(namespace):
    """Complete a backend module's ``namespace`` (its ``globals()``) with every reference op it does not define.

    Returns the tuple of the ops it overrides: those it defines as something other than the reference's
    function. Called at the end of a backend's ``__init__``: ``OVERRIDES = install_reference(globals())``.
    """
    overrides = tuple(op for op in reference.OPS if op in namespace and namespace[op] is not reference.REFERENCE[op])
    for op in reference.OPS:
        namespace.setdefault(op, reference.REFERENCE[op])
    return overrides


def _yardstick(name):
    """The function whose signature ``name`` must have."""
    if name in reference.REFERENCE:
        return reference.REFERENCE[name]
    if hasattr(fused, name):
        return getattr(fused, name)
    if name in globals() and callable(globals()[name]):
        return globals()[name]
    return getattr(reference, name, None)


def _parameters(function):
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def _has(module, name):
    """Whether ``module`` has ``name``; an attribute that needs the device to be computed (the Numba backend's
    ``xp`` imports CuPy on a GPU) counts as present."""
    try:
        getattr(module, name)
    except AttributeError:
        return False
    except ImportError:
        return True
    return True


def contract_problems(module):
    """Every way ``module`` breaks the contract, as sentences; an empty list when it honours it.

    Checks the names, and for every function its parameters' names, kinds and defaults against the reference.
    """
    problems = [f"lacks {name!r}" for name in ATTRIBUTES if not _has(module, name)]
    capabilities = getattr(module, "capabilities", frozenset())
    unknown = set(capabilities) - set(CAPABILITIES)
    if unknown:
        problems.append(f"declares unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
    names = list(reference.OPS) + list(DEVICE_FUNCTIONS)
    for capability in sorted(set(capabilities) & set(CAPABILITIES)):
        names += CAPABILITIES[capability]
    for name in names:
        if not hasattr(module, name):
            problems.append(f"lacks {name!r}")
            continue
        found, expected = getattr(module, name), _yardstick(name)
        if callable(expected) and not callable(found):
            problems.append(f"{name} is not callable")
        elif callable(expected) and _parameters(found) != _parameters(expected):
            problems.append(f"{name}{inspect.signature(found)} differs from the reference's {name}"
                            f"{inspect.signature(expected)}")
    for op in reference.OPS:
        if op not in getattr(module, "OVERRIDES", ()) and getattr(module, op, None) is not reference.REFERENCE[op]:
            problems.append(f"{op} is neither the reference's function nor listed in OVERRIDES")
    return problems
