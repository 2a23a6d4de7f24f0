"""Convolution on the GPU through cuDNN: the op pair the CuPy backend computes its own way.

Why this override. Not a timing (no GPU has run this code yet): a memory count. The reference's route,
im2col and one product, materialises the unfolded matrix, 9x the input for a 3x3 kernel: 3.7 GB at batch 32
for VGG-16's first layers, 29 GB at batch 256; cuDNN's implicit-GEMM kernels never allocate it. And the
convolution is 86% of a training step's time on the CPU (benchmarks/RESULTS.md), so it is the op whose speed
decides the device's. The fused conv+bias+ReLU comes free with the cuDNN graph (one ``relu`` node).

Routes. ``"cudnn"`` runs the fprop/dgrad/wgrad graphs of ``conv_cudnn`` (float32 only); ``"im2col"`` is the
reference itself (``backends/reference/conv.py``) on CuPy arrays, and what float64 (gradient checks) always
takes. ``"auto"``, the default, takes cuDNN. Because im2col at VGG's sizes needs tens of GB, a missing cuDNN
is never a silent fallback: choosing the backend under ``"auto"`` or ``"cudnn"`` without it raises
``BackendUnavailableError`` naming the missing piece (``check_cudnn``); ``set_convolution_route("im2col")``
first is the way to run without cuDNN on purpose.

Per layer. A layer takes cuDNN only if all three of its graphs (forward, data gradient, weight gradient)
have a plan: they are built and checked at the first forward of each layer geometry (channels, filters,
kernel, stride, padding, ReLU, precision), and a layer without one takes im2col, forward and backward,
with a warning naming the graph. (fp32 deselects every tensor-core plan, so a graph may lose its last one.)
Later batch shapes of a geometry build only the graphs they run; should one of their backward graphs lack
a plan after all, that backward is computed by the reference from the cached input, with a warning.

Layout. The API is NCHW with weights (F, C, kh, kw); cuDNN is handed channels-last copies, activations
(N, H, W, C) and weights (F, kh, kw, C), and the output is an NCHW view of NHWC memory, so the next
layer's conversion is free. Inside ``weights_frozen()`` (dense evaluation) each weight is laid out once
and reused by every batch, instead of once per batch (411 MB for VGG-16's first FC layer as a convolution).
"""
import contextlib
import warnings
from collections import namedtuple

from ..shapes import output_size

from ..reference import conv as reference
from ..reference import fused as reference_fused
from . import conv_cudnn
from .device import BackendUnavailableError, cupy
from .precision import uses_tensor_cores

ROUTES = ("auto", "cudnn", "im2col")

CudnnConvCache = namedtuple("CudnnConvCache", "x_nhwc W_krsc stride padding relu_output")

_route = {"setting": "auto"}
_layer_routes = {}  # layer geometry -> True (cuDNN) or the reason it takes im2col
_frozen = {"layouts": None}  # inside weights_frozen(): id(W) -> (W, its KRSC copy)

# The fused ReLU's backward in one pass over memory: dx = dy where the ReLU's output y > 0, else 0. No mask
# array, no masked copy; the output is written channels-last whatever dy's layout (the layout copy cuDNN
# needs anyway). The ReLU's output is positive exactly where its input was.
RELU_BACKWARD_OPERATION = "dx = y > (T)0 ? dy : (T)0"
_kernels = {}


def _relu_backward_kernel():
    if "relu_backward" not in _kernels:
        _kernels["relu_backward"] = cupy.ElementwiseKernel("T y, T dy", "T dx", RELU_BACKWARD_OPERATION,
                                                           "minivgg_relu_backward")
    return _kernels["relu_backward"]


def check_cudnn(route=None):
    """Raise ``BackendUnavailableError`` if ``route`` (default: the one set) needs cuDNN and cuDNN cannot run.

    Called when the backend is chosen (``check_available``) and when the route is set to ``"cudnn"``.
    """
    route = _route["setting"] if route is None else route
    problem = conv_cudnn.cudnn_problem() if route in ("auto", "cudnn") else None
    if problem is not None:
        raise BackendUnavailableError(
            f"{problem}. Without cuDNN every convolution would take the im2col route, which needs about 29 GB at "
            f"batch 256 for VGG-16's first layers; to run on im2col anyway, call "
            f"minivgg.backends.cupy.set_convolution_route('im2col') before choosing the backend.")


def set_convolution_route(route):
    """Choose ``"auto"`` (the default), ``"cudnn"`` or ``"im2col"`` (the reference); returns the previous one.

    Raises ValueError for another name, ``BackendUnavailableError`` (an ImportError) for ``"cudnn"`` when the
    cuDNN frontend or the cuDNN library is missing.
    """
    if route not in ROUTES:
        raise ValueError(f"set_convolution_route: choose one of {ROUTES}, got {route!r}")
    if route == "cudnn":
        check_cudnn(route)
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


@contextlib.contextmanager
def weights_frozen():
    """Inside this block the weights do not change (evaluation): each one is laid out for cuDNN once and the
    layout reused by every batch. The copies go when the block ends."""
    outer, _frozen["layouts"] = _frozen["layouts"], {} if _frozen["layouts"] is None else _frozen["layouts"]
    try:
        yield
    finally:
        _frozen["layouts"] = outer


def _krsc(W):
    """(F, C, kh, kw) weights as a C-contiguous (F, kh, kw, C) array; laid out once inside ``weights_frozen``."""
    layouts = _frozen["layouts"]
    if layouts is None:
        return cupy.ascontiguousarray(W.transpose(0, 2, 3, 1))
    entry = layouts.get(id(W))
    if entry is None or entry[0] is not W:
        entry = layouts[id(W)] = (W, cupy.ascontiguousarray(W.transpose(0, 2, 3, 1)))
    return entry[1]


def _geometry(x_shape, W_shape, stride, padding, relu):
    """What decides a layer's route: everything but the batch and image size."""
    return (x_shape[1],) + tuple(W_shape) + (stride, padding, relu, uses_tensor_cores())


def _cudnn_has_plans(x_shape, W_shape, stride, padding, relu):
    """Whether this layer geometry takes cuDNN: at its first forward, all three graphs are built and checked."""
    geometry = _geometry(x_shape, W_shape, stride, padding, relu)
    decision = _layer_routes.get(geometry)
    if decision is None:
        tensor_cores = uses_tensor_cores()
        try:
            for kind in conv_cudnn.GRAPH_KINDS:
                conv_cudnn.get_graph(conv_cudnn.graph_key(kind, x_shape, W_shape, stride, padding, "float32",
                                                          tensor_cores, relu))
            decision = True
        except conv_cudnn.ConvGraphUnsupported as error:
            decision = str(error)
            warnings.warn(f"cupy backend: the convolution {W_shape[1]}->{W_shape[0]} channels, {W_shape[2]}x"
                          f"{W_shape[3]}, stride {stride}, padding {padding} takes the reference's im2col route "
                          f"(forward and backward): {error}", RuntimeWarning, stacklevel=4)
        _layer_routes[geometry] = decision
    return decision is True


def _cudnn_forward(x, W, b, stride, padding, relu):
    """The fprop graph; None when this layer's geometry takes the reference instead."""
    if not _cudnn_has_plans(x.shape, W.shape, stride, padding, relu):
        return None
    x_nhwc = cupy.ascontiguousarray(x.transpose(0, 2, 3, 1))
    W_krsc = _krsc(W)
    n, h, w, _ = x_nhwc.shape
    f, _, kh, kw = W.shape
    out = cupy.empty((n, output_size(h, kh, stride, padding), output_size(w, kw, stride, padding), f), x.dtype)
    key = conv_cudnn.graph_key("fprop", x.shape, W.shape, stride, padding, "float32", uses_tensor_cores(), relu)
    try:
        conv_cudnn.execute(key, {"X": x_nhwc, "W": W_krsc, "B": cupy.ascontiguousarray(b).reshape(1, 1, 1, f),
                                 "Y": out})
    except conv_cudnn.ConvGraphUnsupported as error:  # a new batch shape of a geometry that has plans
        warnings.warn(f"cupy backend: {error}; this batch's convolution takes the reference's im2col route",
                      RuntimeWarning, stacklevel=3)
        return None
    return out.transpose(0, 3, 1, 2), CudnnConvCache(x_nhwc, W_krsc, stride, padding, out if relu else None)


def _cudnn_backward(dout, cache, input_gradient):
    x_nhwc, W_krsc, stride, padding, relu_output = cache
    n, h, w, c = x_nhwc.shape
    f, kh, kw, _ = W_krsc.shape
    if relu_output is not None:  # the fused ReLU's backward and the layout copy, in one pass
        dout_nhwc = _relu_backward_kernel()(relu_output, dout.transpose(0, 2, 3, 1))
    else:
        dout_nhwc = cupy.ascontiguousarray(dout.transpose(0, 2, 3, 1))
    db = dout_nhwc.reshape(-1, f).sum(axis=0)
    geometry = ((n, c, h, w), (f, c, kh, kw), stride, padding, "float32", uses_tensor_cores())
    try:
        dW_krsc = cupy.empty_like(W_krsc)
        conv_cudnn.execute(conv_cudnn.graph_key("wgrad", *geometry), {"X": x_nhwc, "DY": dout_nhwc, "DW": dW_krsc})
        dx = None
        if input_gradient:
            dx_nhwc = cupy.empty_like(x_nhwc)
            conv_cudnn.execute(conv_cudnn.graph_key("dgrad", *geometry), {"DY": dout_nhwc, "W": W_krsc,
                                                                          "DX": dx_nhwc})
            dx = dx_nhwc.transpose(0, 3, 1, 2)
    except conv_cudnn.ConvGraphUnsupported as error:  # a new batch shape whose backward graph has no plan
        warnings.warn(f"cupy backend: {error}; this backward takes the reference's im2col route",
                      RuntimeWarning, stacklevel=3)
        x, W = x_nhwc.transpose(0, 3, 1, 2), W_krsc.transpose(0, 3, 1, 2)
        _, reference_cache = reference.conv2d_forward(x, W, cupy.zeros(f, x.dtype), stride, padding)
        dx, dW, _ = reference.conv2d_backward(dout_nhwc.transpose(0, 3, 1, 2), reference_cache, input_gradient)
        return dx, dW, db
    return dx, cupy.ascontiguousarray(dW_krsc.transpose(0, 3, 1, 2)), db


def _forward(x, W, b, stride, padding, relu):
    if str(x.dtype) == "float32":
        check_cudnn()  # never a silent im2col: without cuDNN only an explicit "im2col" route runs
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
