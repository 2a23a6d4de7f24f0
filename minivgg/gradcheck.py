"""Gradient checking by central differences, in float64 (as Caffe's GradientChecker and CS231n do).

For a scalar objective ``f``, ``df/da[i] ~ (f(a + h e_i) - f(a - h e_i)) / 2h`` with error O(h^2). A
layer's backward is right when these numbers match what it returns. To check a layer we pick a fixed
random ``dout`` and use ``f(x) = sum(forward(x) * dout)``, whose gradient is exactly what ``backward(dout)``
computes.

Points where the function has a kink (ReLU at 0, a max-pool tie) have no derivative; random inputs land
there with probability zero, but tests should still draw inputs that keep ``h`` away from them.

Dropout in training mode draws a new mask at every forward pass, so the objective would not be a function of
its input and every check would report a relative error near 1. ``check_layer`` and ``check_model`` hold each
such layer's mask fixed during the check (the mask of its first forward), and say so with a warning; a layer
given a ``fixed_mask`` is checked with that one.
"""
import contextlib
import warnings

import numpy as np

from .backend import get_backend

__all__ = ["numerical_gradient", "relative_error", "check_layer", "check_model", "check_directional"]


def relative_error(analytic, numeric):
    """``||a - n|| / max(||a|| + ||n||, 1e-300)``: 0 when equal, 1 when unrelated; scale-free.

    A norm-wise ratio, so entries that are nearly zero in both do not inflate it. A gradient with a NaN or an
    infinity in it (or none at all: ``None``) gets ``inf``, so that ``error < tolerance`` fails: NaN would pass
    ``max`` and fail every comparison silently.
    """
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if not (np.all(np.isfinite(analytic)) and np.all(np.isfinite(numeric))):
        return float("inf")
    return float(np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic) + np.linalg.norm(numeric),
                                                          1e-300))


def numerical_gradient(f, array, h=1e-5):
    """Central-difference gradient of the scalar ``f()`` with respect to ``array``, perturbed in place.

    Parameters
    ----------
    f : callable with no arguments returning a number (a float, or a 0-d array of any backend, as a loss
        layer's ``forward`` gives); it must read ``array``
    array : float64 array of any backend, restored after each perturbation
    h : float, the step

    Returns
    -------
    grad : NumPy float64 array of ``array``'s shape
    """
    if array.dtype != np.float64:
        raise ValueError(f"gradient checks need float64 arrays, got {array.dtype}: call .astype(np.float64)")
    grad = np.zeros(array.shape, dtype=np.float64)
    flat_index = np.ndindex(array.shape)
    for index in flat_index:
        original = float(array[index])
        array[index] = original + h
        f_plus = float(f())
        array[index] = original - h
        f_minus = float(f())
        array[index] = original
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad


def _host(array):
    return np.asarray(get_backend().to_host(array), dtype=np.float64)


def check_layer(layer, x, seed=0, h=1e-5):
    """Compare a layer's backward with central differences for its input and every parameter.

    Parameters
    ----------
    layer : a layer (or ``Sequential``) whose parameters are float64
    x : float64 input array on the active backend (copied; the caller's array is not touched)
    seed : int, for the random upstream gradient ``dout``

    Returns
    -------
    errors : dict, ``{"x": err, "W": err, ...}`` (``"0.W"``-style keys for a Sequential), each a
        ``relative_error``
    """
    with _dropout_masks_held(layer, "check_layer"):
        return _check_layer(layer, x, seed, h)


def _check_layer(layer, x, seed, h):
    backend = get_backend()
    x = x.copy()
    out = layer.forward(x)
    dout = backend.asarray(np.random.default_rng(seed).standard_normal(out.shape))

    def objective():
        return float((_host(layer.forward(x)) * _host(dout)).sum())

    layer.forward(x)
    dx = layer.backward(dout)
    errors = {"x": relative_error(_host(dx), numerical_gradient(objective, x, h))}
    for name, owner, key in _parameters(layer):
        analytic = _host(owner.grads[key])
        errors[name] = relative_error(analytic, numerical_gradient(objective, owner.params[key], h))
    return errors


def check_model(model, loss_layer, x, targets, h=1e-5):
    """Check a whole net end to end: ``model`` followed by ``loss_layer`` (e.g. SoftmaxCrossEntropyLoss).

    Returns ``{"x": err, "0.W": err, "0.b": err, ...}``. Dropout layers must hold a ``fixed_mask``
    (otherwise each evaluation draws a new one and the objective is not a function).
    """
    with _dropout_masks_held(model, "check_model"):
        return _check_model(model, loss_layer, x, targets, h)


def _check_model(model, loss_layer, x, targets, h):
    x = x.copy()

    def objective():
        return loss_layer.forward(model.forward(x), targets)

    objective()
    dx = model.backward(loss_layer.backward(1.0))
    errors = {"x": relative_error(_host(dx), numerical_gradient(objective, x, h))}
    for name, owner, key in _parameters(model):
        analytic = _host(owner.grads[key])
        errors[name] = relative_error(analytic, numerical_gradient(objective, owner.params[key], h))
    return errors


def check_directional(f_and_grad, array, seed=0, h=1e-5):
    """Check a gradient along one random direction ``d`` (as Chainer's ``check_backward``): cheap for
    inputs too big for an element-by-element check.

    Parameters
    ----------
    f_and_grad : callable returning ``(value, gradient)`` at the current ``array``
    array : float64 array, perturbed in place and restored

    Returns
    -------
    relative error between ``<grad, d>`` and ``(f(a + h d) - f(a - h d)) / 2h``
    """
    backend = get_backend()
    direction = backend.asarray(np.random.default_rng(seed).standard_normal(array.shape))
    original = array.copy()
    _, grad = f_and_grad()
    analytic = float((_host(grad) * _host(direction)).sum())
    array[...] = original + h * direction
    f_plus, _ = f_and_grad()
    array[...] = original - h * direction
    f_minus, _ = f_and_grad()
    array[...] = original
    return relative_error([analytic], [(f_plus - f_minus) / (2 * h)])


@contextlib.contextmanager
def _dropout_masks_held(layer, caller):
    """During the block, every Dropout of ``layer`` that would draw a new mask at each forward (training mode,
    p > 0, no ``fixed_mask``) draws the same one: its step counter is put back before each forward. Warns that
    it does, naming the layers."""
    from .layers import Dropout, layers_of_type

    moving = [d for d in layers_of_type(layer, Dropout) if d.training and d.p > 0 and d.fixed_mask is None]
    if not moving:
        yield
        return
    warnings.warn(f"{caller}: {', '.join(map(repr, moving))} in training mode draws a new mask at every forward "
                  f"pass; the check holds each one's mask fixed (call .eval(), or set fixed_mask, to choose)",
                  stacklevel=4)
    originals = {id(d): (d, d.step, d.forward) for d in moving}

    def held(dropout, step, forward):
        def forward_with_the_same_mask(x):
            dropout.step = step
            return forward(x)
        return forward_with_the_same_mask

    for dropout, step, forward in originals.values():
        dropout.forward = held(dropout, step, forward)
    try:
        yield
    finally:
        for dropout, step, forward in originals.values():
            del dropout.forward  # the class's method again
            dropout.step = step + 1


def _parameters(layer):
    if hasattr(layer, "named_parameters"):
        yield from layer.named_parameters()
    else:
        for key in layer.params:
            yield key, layer, key
