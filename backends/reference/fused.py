"""A convolution and the ReLU after it as one op pair, built from any backend's two pairs.

Every hidden convolution of VGG is followed by a ReLU (Sect. 2.1). A device can do both in one pass (the
CuPy backend's cuDNN graph applies the ReLU before writing the output); this file is the same op pair
written as the composition, numerically identical to calling the two layers one after the other. It is
the yardstick for the fused ops' signatures (``backends/contract.py``), the CuPy backend's fallback when
cuDNN is not used, and what the tests offer the layers to check that fusion changes no number.
"""
from collections import namedtuple

from .activation import relu_backward, relu_forward
from .conv import conv2d_backward, conv2d_forward

ConvReLUCache = namedtuple("ConvReLUCache", "conv relu")


def fuse_conv_relu(conv_forward, conv_backward):
    """``(conv2d_relu_forward, conv2d_relu_backward)`` composed from a convolution pair and the reference ReLU."""

    def conv2d_relu_forward(x, W, b, stride=1, padding=0):
        """``relu(conv2d_forward(x, W, b, stride, padding))``: (N, C, H, W) -> (N, F, Ho, Wo), and its cache."""
        pre, conv_cache = conv_forward(x, W, b, stride, padding)
        out, relu_cache = relu_forward(pre)
        return out, ConvReLUCache(conv_cache, relu_cache)

    def conv2d_relu_backward(dout, cache, input_gradient=True):
        """Gradients of ``conv2d_relu_forward``: ReLU's backward, then the convolution's; ``(dx, dW, db)``."""
        return conv_backward(relu_backward(dout, cache.relu), cache.conv, input_gradient)

    return conv2d_relu_forward, conv2d_relu_backward


conv2d_relu_forward, conv2d_relu_backward = fuse_conv_relu(conv2d_forward, conv2d_backward)
