"""Mini-batch SGD with momentum and weight decay (Sect. 3.1), with gradient accumulation.

The paper trains with batch 256, momentum 0.9 and an L2 penalty of 5e-4. A device that cannot hold 256
images accumulates the gradients of several smaller batches first: since the loss of each is a mean, the
average of their gradients is the gradient of the mean over all of them, so the update is the same as one
full-batch step up to rounding (dropout masks aside).

Biases are not decayed by default: the L2 penalty regularises the weights, a bias adds no capacity that
needs restraining, and Caffe's reference models (the paper's code base) set the biases' decay to zero.
``decay_biases=True`` decays them too.
"""
import numpy as np

from ..backend import get_backend

__all__ = ["SGD"]


class SGD:
    """``v <- momentum * v - lr * (g + weight_decay * w);  w <- w + v`` for every parameter of ``model``.

    Parameters
    ----------
    model : anything with ``named_parameters()`` yielding ``(name, layer, key)``
    momentum, weight_decay : float (the paper: 0.9, 5e-4)
    decay_biases : bool, whether the ``"b"`` parameters are decayed too
    """

    def __init__(self, model, momentum=0.9, weight_decay=5e-4, decay_biases=False):
        self.model = model
        self.momentum, self.weight_decay, self.decay_biases = float(momentum), float(weight_decay), decay_biases
        xp = get_backend().xp
        self.velocities = {name: xp.zeros_like(layer.params[key]) for name, layer, key in model.named_parameters()}
        self._accumulated = None
        self._batches = 0

    def accumulate(self):
        """Add the gradients of the last backward pass to the running sum (for gradient accumulation)."""
        if self._accumulated is None:
            self._accumulated = {name: layer.grads[key].copy() for name, layer, key in self.model.named_parameters()}
        else:
            for name, layer, key in self.model.named_parameters():
                self._accumulated[name] += layer.grads[key]
        self._batches += 1

    def step(self, learning_rate):
        """Update every parameter with the accumulated mean gradient (or, if nothing was accumulated,
        the gradients of the last backward pass)."""
        update = get_backend().sgd_momentum_update
        for name, layer, key in self.model.named_parameters():
            if self._accumulated is None:
                grad = layer.grads[key]
            else:
                grad = self._accumulated[name]
                grad *= 1.0 / self._batches
            decay = self.weight_decay if (key != "b" or self.decay_biases) else 0.0
            update(layer.params[key], grad, self.velocities[name], learning_rate, self.momentum, decay)
        self._accumulated, self._batches = None, 0

    def state_arrays(self):
        """Momentum buffers as host arrays, for a checkpoint."""
        backend = get_backend()
        return {name: np.asarray(backend.to_host(v)) for name, v in self.velocities.items()}

    def load_state_arrays(self, arrays):
        backend = get_backend()
        missing = set(self.velocities) - set(arrays)
        if missing:
            raise ValueError(f"checkpoint lacks momentum buffers for {sorted(missing)}")
        for name, velocity in self.velocities.items():
            if arrays[name].shape != velocity.shape:
                raise ValueError(f"momentum buffer {name!r}: checkpoint has shape {arrays[name].shape}, "
                                 f"the model {velocity.shape}")
            self.velocities[name] = backend.asarray(arrays[name], dtype=velocity.dtype)
