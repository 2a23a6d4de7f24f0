"""A convolution and the ReLU after it as one layer: a pass over a model, for backends that fuse the pair.

Every hidden convolution of VGG is followed by a ReLU (Sect. 2.1). A device can apply the ReLU while it writes
the convolution's output (the CuPy backend's cuDNN graph does), saving a pass over the largest arrays of the
net; the backend says so with its ``fused_conv_relu`` capability. The layers stay as they are:
``fuse_conv_relu(model)`` returns a view of the model that computes the same numbers with each Conv2d + ReLU
pair replaced by one ``ConvReLU``, which shares the convolution's parameters and gradients. Training and dense
evaluation run their passes through that view; everything else (saving, the optimiser, the summary) uses the
model itself.
"""
import copy

from .backend import get_backend, supports
from .layers import Conv2d, Layer, ReLU, Sequential

__all__ = ["ConvReLU", "fuse_conv_relu"]


class ConvReLU(Layer):
    """``ReLU()(conv(x))`` in the backend's one fused op pair (``conv2d_relu_forward`` / ``_backward``).

    ``params`` and ``grads`` are the wrapped ``Conv2d``'s own dicts, so an optimiser stepping the model's
    convolution steps this layer too.
    """

    can_skip_input_gradient = True

    def __init__(self, conv):
        # Not Layer.__init__: params and grads are the convolution's (the properties below), not new dicts.
        self.conv, self.training, self.cache = conv, conv.training, None

    params = property(lambda self: self.conv.params, doc="The convolution's parameters (``W``, ``b``).")
    grads = property(lambda self: self.conv.grads, doc="The convolution's gradients, filled by ``backward``.")

    def __repr__(self):
        return f"ConvReLU({self.conv!r})"

    def output_shape(self, input_shape):
        return self.conv.output_shape(input_shape)

    def forward(self, x):
        conv = self.conv
        conv.check_input(x)
        out, self.cache = get_backend().conv2d_relu_forward(x, conv.params["W"], conv.params["b"], conv.stride,
                                                            conv.padding)
        return out

    def backward(self, dout, input_gradient=True):
        dx, self.conv.grads["W"], self.conv.grads["b"] = get_backend().conv2d_relu_backward(
            dout, self._cached(), input_gradient)
        return dx


def _fused(layers):
    out, index = [], 0
    while index < len(layers):
        layer = layers[index]
        following = layers[index + 1] if index + 1 < len(layers) else None
        if type(layer) is Conv2d and type(following) is ReLU:
            out.append(ConvReLU(layer))
            index += 2
            continue
        out.append(fuse_conv_relu(layer, always=True) if isinstance(layer, Sequential) else layer)
        index += 1
    return out


def fuse_conv_relu(model, always=False):
    """``model`` with every Conv2d directly followed by a ReLU computed as one ``ConvReLU``, when the active
    backend offers ``fused_conv_relu`` (or ``always``); else ``model`` itself.

    The result is a shallow copy of a ``Sequential`` model (its class, attributes and other layers shared) whose
    ``layers`` list holds the fused pairs: the same numbers from ``forward`` and ``backward``, the same
    parameters. Read the parameters from ``model``: the copy's layer list no longer matches its ``specs``.
    A model that is not a ``Sequential`` is returned as it is.
    """
    if not isinstance(model, Sequential) or not (always or supports("fused_conv_relu")):
        return model
    fused = copy.copy(model)
    fused.layers = _fused(model.layers)
    return fused
