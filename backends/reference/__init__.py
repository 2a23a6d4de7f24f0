"""The reference: every op of VGG written once, readable, on any array module (``minivgg.set_backend("reference")``).

One file per op pair, each written against ``xp = array_module(x)`` so that it runs unchanged on NumPy and
CuPy: ``conv.py`` (im2col, one product, col2im), ``pool.py``, ``lrn.py``, ``activation.py``, ``batchnorm.py``,
``dropout.py`` (masks keyed by step and sample through ``counter_random.py``), ``linear.py``, ``loss.py``,
``pooling_global.py``, ``optimizer.py``; ``fused.py`` composes a convolution and its ReLU into one pair;
``loops.py`` holds the naive loop version of each op, forward and backward, which the tests compare them with.

As a backend of its own it runs a model on exactly these functions, on NumPy arrays: slower than the NumPy
backend, and the one to step through in a debugger or a lesson. Every other backend starts from ``REFERENCE``
(``contract.install_reference``) and overrides only what its device forces.

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

name = "reference"

# The ops every backend exports with these signatures (``backends/contract.py`` checks them).
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

# Each op as its readable, array-module-generic function: what every backend starts from.
REFERENCE = {op: globals()[op] for op in OPS}
OVERRIDES = ()
capabilities = frozenset()


def check_available():
    """NumPy is always available; GPU backends raise ``BackendUnavailableError`` here when they are not."""


def asarray(array, dtype=None):
    """Host (NumPy) array to this backend's array type; here a no-op unless ``dtype`` asks for a cast."""
    return xp.asarray(array, dtype=dtype)


def to_host(array):
    """This backend's array to a NumPy array."""
    return xp.asarray(array)
