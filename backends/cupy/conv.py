"""Convolution on the GPU through cuDNN: the op pair the CuPy backend computes its own way.

Why this override. Not a timing (no GPU has run this code yet): a memory count. The reference's route,
im2col and one product, materialises the unfolded matrix, 9x the input for a 3x3 kernel: 3.7 GB at batch 32
for VGG-16's first layers, 29 GB at batch 256; cuDNN's implicit-GEMM kernels never allocate it. And the
convolution is 86% of a training step's time on the CPU (benchmarks/RESULTS.md), so it is the op whose speed
decides the device's. The fused conv+bias+ReLU comes free with the cuDNN graph (one ``relu`` node).

Routes. ``"cudnn"`` runs the fprop/dgrad/wgrad graphs of ``conv_cudnn`` (float32 only); ``"im2col"`` is the
reference itself (``backends/reference/conv.py``) on CuPy arrays, and what float64 (gradient checks) always
takes. ``"auto"``, the default, takes cuDNN when the frontend is installed and has a plan for the shape.

Layout. The API is NCHW with weights (F, C, kh, kw); cuDNN is handed channels-last copies, activations
(N, H, W, C) and weights (F, kh, kw, C), and the output is an NCHW view of NHWC memory, so the next
layer's conversion is free.
"""
import warnings
from collections import namedtuple

from ..shapes import output_size

from ..reference import conv as reference
from ..reference import fused as reference_fused
from . import conv_cudnn
from .device import cupy
from .precision import uses_tensor_cores

ROUTES = ("auto", "cudnn", "im2col")

CudnnConvCache = namedtuple("CudnnConvCache", "x_nhwc W_krsc stride padding relu_output")

_route = {"setting": "auto"}


def set_convolution_route(route):
    """Choose ``"auto"`` (the default), ``"cudnn"`` or ``"im2col"`` (the reference); returns the previous one.

    Raises ValueError for another name, ImportError for ``"cudnn"`` when the frontend is missing.
    """
    if route not in ROUTES:
        raise ValueError(f"set_convolution_route: choose one of {ROUTES}, got {route!r}")
    if route == "cudnn" and conv_cudnn.frontend() is None:
        raise ImportError(conv_cudnn.frontend_status())
    previous, _route["setting"] = _route["setting"], route
    return previous


def get_convolution_route():
    """The route set with ``set_convolution_route``."""
    return _route["setting"]


def choose_route(dtype_name, setting, frontend_available):
    """``"cudnn"`` or ``"im2col"`` for a convolution of ``dtype_name`` arrays: cuDNN for float32 unless the
    setting says im2col or (under ``"auto"``) the frontend is missing; im2col for everything else."""
    if setting not in ROUTES:
        raise ValueError(f"choose_route: unknown setting {setting!r}; choose one of {ROUTES}")
    if dtype_name != "float32" or setting == "im2col":
        return "im2col"
    return "cudnn" if setting == "cudnn" or frontend_available else "im2col"


def _cudnn_forward(x, W, b, stride, padding, relu):
    """The fprop graph; None when cuDNN has no plan (the caller then takes the reference)."""
    x_nhwc = cupy.ascontiguousarray(x.transpose(0, 2, 3, 1))
    W_krsc = cupy.ascontiguousarray(W.transpose(0, 2, 3, 1))
    n, h, w, _ = x_nhwc.shape
    f, _, kh, kw = W.shape
    out = cupy.empty((n, output_size(h, kh, stride, padding), output_size(w, kw, stride, padding), f), x.dtype)
    key = conv_cudnn.graph_key("fprop", x.shape, W.shape, stride, padding, "float32", uses_tensor_cores(), relu)
    try:
        conv_cudnn.execute(key, {"X": x_nhwc, "W": W_krsc, "B": cupy.ascontiguousarray(b).reshape(1, 1, 1, f),
                                 "Y": out})
    except conv_cudnn.ConvGraphUnsupported as error:
        warnings.warn(f"cupy backend: {error}; this convolution takes the reference's im2col route",
                      RuntimeWarning, stacklevel=3)
        return None
    return out.transpose(0, 3, 1, 2), CudnnConvCache(x_nhwc, W_krsc, stride, padding, out if relu else None)


def _cudnn_backward(dout, cache, input_gradient):
    x_nhwc, W_krsc, stride, padding, relu_output = cache
    n, h, w, c = x_nhwc.shape
    f, kh, kw, _ = W_krsc.shape
    dout_nhwc = cupy.ascontiguousarray(dout.transpose(0, 2, 3, 1))
    if relu_output is not None:  # the fused ReLU's backward: its output is positive exactly where its input was
        dout_nhwc = dout_nhwc * (relu_output > 0)
    db = dout_nhwc.reshape(-1, f).sum(axis=0)
    geometry = ((n, c, h, w), (f, c, kh, kw), stride, padding, "float32", uses_tensor_cores())
    dW_krsc = cupy.empty_like(W_krsc)
    conv_cudnn.execute(conv_cudnn.graph_key("wgrad", *geometry), {"X": x_nhwc, "DY": dout_nhwc, "DW": dW_krsc})
    dx = None
    if input_gradient:
        dx_nhwc = cupy.empty_like(x_nhwc)
        conv_cudnn.execute(conv_cudnn.graph_key("dgrad", *geometry), {"DY": dout_nhwc, "W": W_krsc, "DX": dx_nhwc})
        dx = dx_nhwc.transpose(0, 3, 1, 2)
    return dx, cupy.ascontiguousarray(dW_krsc.transpose(0, 3, 1, 2)), db


def _forward(x, W, b, stride, padding, relu):
    route = choose_route(str(x.dtype), _route["setting"], conv_cudnn.frontend() is not None)
    if route == "cudnn" and W.dtype == x.dtype:
        result = _cudnn_forward(x, W, b, stride, padding, relu)
        if result is not None:
            return result
    if relu:
        return reference_fused.conv2d_relu_forward(x, W, b, stride, padding)
    return reference.conv2d_forward(x, W, b, stride, padding)


def conv2d_forward(x, W, b, stride=1, padding=0):
    """The reference's ``conv2d_forward`` (same shapes and formula), through cuDNN where it can."""
    return _forward(x, W, b, stride, padding, relu=False)


def conv2d_backward(dout, cache, input_gradient=True):
    """The reference's ``conv2d_backward``: ``(dx, dW, db)``, through cuDNN when the forward went through it."""
    if isinstance(cache, CudnnConvCache):
        return _cudnn_backward(dout, cache, input_gradient)
    return reference.conv2d_backward(dout, cache, input_gradient)


def conv2d_relu_forward(x, W, b, stride=1, padding=0):
    """``relu(conv2d_forward(x, W, b, stride, padding))`` as one op: the ReLU runs inside the cuDNN graph.

    Shapes as ``conv2d_forward``; the cache keeps the output, whose sign is ReLU's mask.
    """
    return _forward(x, W, b, stride, padding, relu=True)


def conv2d_relu_backward(dout, cache, input_gradient=True):
    """Gradients of ``conv2d_relu_forward``; ``(dx, dW, db)`` as ``conv2d_backward``."""
    if isinstance(cache, CudnnConvCache):
        return _cudnn_backward(dout, cache, input_gradient)
    return reference_fused.conv2d_relu_backward(dout, cache, input_gradient)
