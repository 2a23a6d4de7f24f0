"""The NumPy backend: the readable reference every other backend is tested against.

A backend is a module exporting the names in ``OPS`` with these signatures, plus its array module ``xp``
and the host/device transfers ``asarray`` and ``to_host``. Every op is a pair: a forward that returns
``(out, cache)`` and a backward that takes ``(dout, cache)``. Ops keep no state; the caller keeps the cache.
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

# The backend contract: every backend exports these names with these signatures (tests/test_backend_registry.py).
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
    "asarray", "to_host", "random_generator", "check_available",
)


def check_available():
    """NumPy is always available; GPU backends raise ``BackendUnavailableError`` here when they are not."""


def asarray(array, dtype=None):
    """Host (NumPy) array to this backend's array type; here a no-op unless ``dtype`` asks for a cast."""
    return xp.asarray(array, dtype=dtype)


def to_host(array):
    """This backend's array to a NumPy array."""
    return xp.asarray(array)


def random_generator(seed):
    """A random generator of this backend's array module, for dropout masks."""
    return xp.random.default_rng(seed)
