"""Convolution (Sect. 2.1: every weight layer of VGG) on the GPU: cuDNN where it can, im2col where it cannot.

Routes. ``"cudnn"`` runs the fprop/dgrad/wgrad graphs of ``conv_cudnn`` (float32 and bfloat16);
``"im2col"`` runs ``conv_im2col`` (also float64, which cuDNN's fast kernels do not offer). ``"auto"``, the
default, takes cuDNN when the frontend is installed and has a plan for the shape, im2col otherwise;
``set_convolution_route`` forces one, to measure the fallback or to compare the two.

Layout. As in the NumPy reference, the API is NCHW with weights (F, C, kh, kw), and inside everything is
channels-last: activations (N, H, W, C), weights (F, kh, kw, C). The output is an NCHW view of NHWC memory,
so the next layer's conversion is free; the weights are reordered (and cast, in bf16 mode) once per
forward, a copy of a few megabytes.

Fusion. ``conv2d_relu_forward`` / ``conv2d_relu_backward`` are the convolution and the ReLU after it as
one op: the ReLU runs inside the cuDNN forward graph, and its backward runs inside the bias-gradient
reduction, saving a read and a write of the activation each way. ``conv2d_forward`` fuses the bias only.
"""
import warnings
from collections import namedtuple

from ..numpy.conv import output_size
from . import conv_cudnn, conv_im2col
from .activation import relu_forward
from .device import cupy, is_bfloat16
from .layout import nchw_view, to_nhwc
from .precision import activation_dtype, uses_tensor_cores
from .reductions import channel_sum, relu_backward_channel_sum

ROUTES = ("auto", "cudnn", "im2col")

ConvCache = namedtuple("ConvCache", "x_nhwc W_krsc W_shape stride padding param_dtype route relu_output")

_route = {"setting": "auto"}


def set_convolution_route(route):
    """Choose ``"auto"`` (the default), ``"cudnn"`` or ``"im2col"``; returns the previous setting.

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


def choose_route(compute_dtype, setting, frontend_available):
    """``"cudnn"`` or ``"im2col"`` for a convolution computing in ``compute_dtype``.

    float64 always takes im2col; ``"auto"`` takes cuDNN when the frontend is available.
    """
    if setting not in ROUTES:
        raise ValueError(f"choose_route: unknown setting {setting!r}; choose one of {ROUTES}")
    if cupy_dtype_name(compute_dtype) == "float64" or setting == "im2col":
        return "im2col"
    if setting == "cudnn" or frontend_available:
        return "cudnn"
    return "im2col"


def cupy_dtype_name(dtype):
    """``"float32"``, ``"float64"`` or ``"bfloat16"`` (what cuDNN graph keys store)."""
    return "bfloat16" if is_bfloat16(dtype) else str(getattr(dtype, "name", dtype))


def _graph_key(kind, x_nhwc, W_shape, stride, padding, compute_dtype, relu=False):
    n, h, w, c = x_nhwc.shape
    return conv_cudnn.graph_key(kind, (n, c, h, w), W_shape, stride, padding, cupy_dtype_name(compute_dtype),
                                uses_tensor_cores(compute_dtype), relu)


def _warn_fallback(error):
    warnings.warn(f"cupy backend: {error}; this convolution uses the im2col route", RuntimeWarning, stacklevel=3)


def _forward(x, W, b, stride, padding, relu):
    compute = activation_dtype(x.dtype)
    x_nhwc = to_nhwc(x, compute)
    W_krsc = cupy.ascontiguousarray(W.transpose(0, 2, 3, 1), dtype=compute)
    n, h, w, _ = x_nhwc.shape
    f, _, kh, kw = W.shape
    out = cupy.empty((n, output_size(h, kh, stride, padding), output_size(w, kw, stride, padding), f), dtype=compute)
    route = choose_route(compute, _route["setting"], conv_cudnn.frontend() is not None)
    if route == "cudnn":
        key = _graph_key("fprop", x_nhwc, W.shape, stride, padding, compute, relu)
        try:
            conv_cudnn.execute(key, {"X": x_nhwc, "W": W_krsc, "B": b.astype(compute).reshape(1, 1, 1, f), "Y": out})
        except conv_cudnn.ConvGraphUnsupported as error:
            _warn_fallback(error)
            route = "im2col"
    if route == "im2col":
        bias = b.astype(cupy.float64 if compute == cupy.float64 else cupy.float32)
        conv_im2col.conv_forward(x_nhwc, W_krsc, bias, out, stride, padding)
        if relu:
            out = relu_forward(out)[0]
    cache = ConvCache(x_nhwc, W_krsc, W.shape, stride, padding, W.dtype, route, out if relu else None)
    return nchw_view(out), cache


def _backward(dout, cache, input_gradient):
    x_nhwc, W_krsc, W_shape, stride, padding, param_dtype, route, relu_output = cache
    if dout.dtype != x_nhwc.dtype:
        raise TypeError(f"conv2d_backward: dout has dtype {dout.dtype}, the forward ran in {x_nhwc.dtype}")
    dout_nhwc = to_nhwc(dout)
    f = W_shape[0]
    if relu_output is None:
        dpre, db = dout_nhwc, channel_sum(dout_nhwc.reshape(-1, f), param_dtype)
    else:
        dpre, db = relu_backward_channel_sum(dout_nhwc.reshape(-1, f), relu_output.reshape(-1, f), param_dtype)
        dpre = dpre.reshape(dout_nhwc.shape)
    if route == "cudnn":
        try:
            dx_nhwc = None
            dW_krsc = cupy.empty_like(W_krsc)
            if input_gradient:
                dx_nhwc = cupy.empty_like(x_nhwc)
                conv_cudnn.execute(_graph_key("dgrad", x_nhwc, W_shape, stride, padding, x_nhwc.dtype),
                                   {"DY": dpre, "W": W_krsc, "DX": dx_nhwc})
            conv_cudnn.execute(_graph_key("wgrad", x_nhwc, W_shape, stride, padding, x_nhwc.dtype),
                               {"X": x_nhwc, "DY": dpre, "DW": dW_krsc})
        except conv_cudnn.ConvGraphUnsupported as error:
            _warn_fallback(error)
            route = "im2col"
    if route == "im2col":
        dx_nhwc, dW_krsc = conv_im2col.conv_backward(x_nhwc, W_krsc, dpre, stride, padding, param_dtype,
                                                     input_gradient)
    # back to (F, C, kh, kw) in the parameters' dtype: one small copy (and the bf16 -> float32 cast)
    dW = cupy.ascontiguousarray(dW_krsc.transpose(0, 3, 1, 2), dtype=param_dtype)
    return (nchw_view(dx_nhwc) if input_gradient else None), dW, db


def conv2d_forward(x, W, b, stride=1, padding=0):
    """Cross-correlation of a batch with a filter bank, plus bias.

    Parameters
    ----------
    x : (N, C, H, W) CuPy array, any layout; float32, float64, or bfloat16 (bf16 mode)
    W : (F, C, kh, kw) array, the parameters (float32 master weights in bf16 mode)
    b : (F,) array
    stride, padding : int

    Returns
    -------
    out : (N, F, Ho, Wo) array (an NCHW view of NHWC memory), ``out[n, f, y, x] = b[f] + sum_{c,i,j}
        W[f, c, i, j] * x_pad[n, c, y*s + i, x*s + j]``, ``Ho = (H + 2p - kh) // s + 1``; bfloat16 in bf16 mode
    cache : ConvCache for ``conv2d_backward``
    """
    return _forward(x, W, b, stride, padding, relu=False)


def conv2d_backward(dout, cache, input_gradient=True):
    """Gradients of ``conv2d_forward``; ``input_gradient=False`` skips ``dx`` (returned as None).

    Returns
    -------
    dx : (N, C, H, W) array (NCHW view of NHWC memory), in the activations' dtype
    dW : (F, C, kh, kw) array, in the parameters' dtype (float32 in bf16 mode)
    db : (F,) array, ``dout`` summed over batch and space, in the parameters' dtype
    """
    return _backward(dout, cache, input_gradient)


def conv2d_relu_forward(x, W, b, stride=1, padding=0):
    """``relu(conv2d_forward(x, W, b, stride, padding))`` as one op: the ReLU runs inside the cuDNN graph.

    Shapes as ``conv2d_forward``; the cache keeps the output, whose sign is ReLU's mask.
    """
    return _forward(x, W, b, stride, padding, relu=True)


def conv2d_relu_backward(dout, cache, input_gradient=True):
    """Gradients of ``conv2d_relu_forward``: ReLU's backward is fused into the bias-gradient pass.

    Returns ``(dx, dW, db)`` as ``conv2d_backward``.
    """
    return _backward(dout, cache, input_gradient)
