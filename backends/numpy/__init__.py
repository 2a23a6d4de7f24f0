"""The NumPy backend: the readable reference every other backend starts from, and the fast CPU engine.

The reference. One file per op pair, each written against ``xp = array_module(x)`` so that it runs
unchanged on NumPy and CuPy: ``conv.py`` (im2col, one product, col2im), ``pool.py``, ``lrn.py``,
``activation.py``, ``dropout.py``, ``linear.py``, ``loss.py``, ``pooling_global.py``, ``optimizer.py``;
``loops.py`` holds the naive loop version of each, forward and backward. ``REFERENCE`` maps every op name
to its readable function, and ``minivgg.set_backend("reference")`` runs a model on exactly those.

The engine. This backend exports faster versions of two pairs, computing the same numbers (tested equal in
float64): the convolution (``fast_conv.py``: channels-last, cache-sized chunks on all cores, the stride-1
data gradient as a convolution) and the FC layer (``fast_linear.py``: products split over the cores).

The contract (``backends/contract.py``): every op is a pair, a forward returning ``(out, cache)`` and a
backward taking ``(dout, cache)``; ops keep no state, the caller keeps the cache.
"""
import numpy as xp

from .activation import relu_backward, relu_forward
from .batchnorm import batch_norm2d_backward, batch_norm2d_forward
from .conv import conv2d_backward, conv2d_forward
from .dropout import dropout_backward, dropout_forward
from .linear import linear_backward, linear_forward
from .loss import (euclidean_loss_backward, euclidean_loss_forward, softmax, softmax_cross_entropy_backward,
                   softmax_cross_entropy_forward)
from .lrn import lrn_backward, lrn_forward
from .optimizer import sgd_momentum_update
from .pool import max_pool2d_backward, max_pool2d_forward
from .pooling_global import global_average_pool_backward, global_average_pool_forward

name = "numpy"

# The ops every backend exports with these signatures (backends/contract.py, tests/test_backend_registry.py).
OPS = (
    "conv2d_forward", "conv2d_backward",
    "max_pool2d_forward", "max_pool2d_backward",
    "relu_forward", "relu_backward",
    "lrn_forward", "lrn_backward",
    "batch_norm2d_forward", "batch_norm2d_backward",
    "dropout_forward", "dropout_backward",
    "linear_forward", "linear_backward",
    "global_average_pool_forward", "global_average_pool_backward",
    "softmax", "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
    "euclidean_loss_forward", "euclidean_loss_backward",
    "sgd_momentum_update",
)

# The reference: each op as its readable, array-module-generic function. Every backend starts from these.
REFERENCE = {op: globals()[op] for op in OPS}

# This backend's engine replaces two pairs (after REFERENCE has kept the readable ones).
from .fast_conv import conv2d_backward, conv2d_forward  # noqa: E402,F811
from .fast_linear import linear_backward, linear_forward  # noqa: E402,F811

OVERRIDES = tuple(op for op in OPS if globals()[op] is not REFERENCE[op])
capabilities = frozenset()


def check_available():
    """NumPy is always available; GPU backends raise ``BackendUnavailableError`` here when they are not."""


def asarray(array, dtype=None):
    """Host (NumPy) array to this backend's array type; here a no-op unless ``dtype`` asks for a cast."""
    return xp.asarray(array, dtype=dtype)


def to_host(array):
    """This backend's array to a NumPy array."""
    return xp.asarray(array)
