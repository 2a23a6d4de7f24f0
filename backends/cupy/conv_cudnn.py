"""Convolutions through cuDNN's graph API, driven by NVIDIA's cuDNN frontend (``pip install nvidia-cudnn-frontend``,
imported as ``cudnn``), which CuPy 14 points to after dropping its own cuDNN bindings.

Three graphs per convolution shape, each built once and cached under a ``GraphKey``:

    fprop   y = relu?(conv(x, W) + b)      bias, and the ReLU when the caller asks, fused into the kernel
    dgrad   dx = conv_transpose(dy, W)     the data gradient
    wgrad   dW = correlate(x, dy)          the weight gradient

Tensors are described channels-last (NHWC activations, KRSC weights): cuDNN's tensor-core kernels read
that layout natively. The frontend takes raw device pointers, so the CuPy arrays are held by the caller
until the graph has run (CuPy's memory pool reuses a block only for later work on the same stream, so
stream order keeps them valid). One workspace buffer, grown to the largest graph's need, serves every
graph. With TF32 off, plans that use tensor cores on float32 data are deselected. Never run on a GPU yet:
``benchmarks/gpu_cupy_checks.sh`` is the check to run where one is at hand.

Two packages make cuDNN work: the frontend (the ``cudnn`` module) and the cuDNN library itself
(``libcudnn``, from ``nvidia-cudnn-cu13``), which the frontend looks for only when first called. So
``frontend()`` imports the module *and* asks the library its version: a missing library is found when the
backend is chosen, not at the first convolution (``cudnn_problem`` says which piece is missing).

Memory. The built graphs are kept in a least-recently-used cache of ``GRAPH_CACHE_LIMIT`` graphs: dense
evaluation meets many image shapes, and a graph that no longer fits is built again if it comes back. The
workspace a graph ran with must outlive any CUDA graph that recorded the run (it holds the raw pointer):
``holding_workspaces()`` hands the caller every workspace buffer used inside it, to keep. ``STATISTICS``
counts graph builds and executions, so a check can tell cuDNN ran (and not the im2col fallback).
"""
import collections
import contextlib
from collections import namedtuple

from ..shapes import output_size

from .device import cupy

GRAPH_KINDS = ("fprop", "dgrad", "wgrad")
WORKSPACE_LIMIT_BYTES = 512 * 2 ** 20  # prefer plans under this; a graph with none gets its best plan anyway
GRAPH_CACHE_LIMIT = 256  # built graphs kept (least recently used out first); VGG-16 training needs 38
CUDNN_LIBRARY_WHEEL = "nvidia-cudnn-cu13"  # libcudnn for CUDA 13, from the package index
CUDNN_INSTALL_COMMAND = f"pip install {CUDNN_LIBRARY_WHEEL} nvidia-cudnn-frontend"  # or: pip install 'minivgg[cupy]'

GraphKey = namedtuple("GraphKey", "kind x_shape w_shape stride padding dtype tensor_cores relu")
ConvGraph = namedtuple("ConvGraph", "graph tensors workspace_bytes")


class ConvGraphUnsupported(RuntimeError):
    """cuDNN has no plan for this convolution (the caller falls back to im2col)."""


def nhwc_strides(n, c, h, w):
    """Element strides of an (N, C, H, W)-indexed tensor stored channels-last, as cuDNN wants them described.

    The same formula gives the KRSC strides of (F, C, kh, kw) weights stored (F, kh, kw, C).
    """
    return (h * w * c, 1, w * c, c)


def graph_key(kind, x_shape, w_shape, stride, padding, dtype, tensor_cores, relu=False):
    """The cache key of one convolution graph: everything its plan depends on.

    Parameters
    ----------
    kind : "fprop", "dgrad" or "wgrad"
    x_shape : (N, C, H, W) of the input; w_shape : (F, C, kh, kw)
    stride, padding : int
    dtype : "float32", the tensors' storage type (the graphs are built for float32 only)
    tensor_cores : bool, whether float32 plans may use TF32 tensor cores
    relu : bool, whether the fprop graph ends with a ReLU (always False for dgrad and wgrad)
    """
    if kind not in GRAPH_KINDS:
        raise ValueError(f"graph_key: kind must be one of {GRAPH_KINDS}, got {kind!r}")
    if dtype != "float32":
        raise ValueError(f"graph_key: cuDNN graphs here are float32, got {dtype!r}")
    if len(x_shape) != 4 or len(w_shape) != 4 or x_shape[1] != w_shape[1]:
        raise ValueError(f"graph_key: expected x (N, C, H, W) and W (F, C, kh, kw) with one C, got {x_shape} "
                         f"and {w_shape}")
    return GraphKey(kind, tuple(int(d) for d in x_shape), tuple(int(d) for d in w_shape), int(stride), int(padding),
                    dtype, bool(tensor_cores), bool(relu) and kind == "fprop")


def output_shape(key):
    """(N, F, Ho, Wo) of the convolution a key describes."""
    n, _, h, w = key.x_shape
    f, _, kh, kw = key.w_shape
    return (n, f, output_size(h, kh, key.stride, key.padding), output_size(w, kw, key.stride, key.padding))


def grown_workspace(current_bytes, needed_bytes):
    """The workspace size after a graph needing ``needed_bytes`` runs: it only grows, to the largest need."""
    return max(current_bytes, needed_bytes)


# --- the frontend, imported on first use ------------------------------------------------------------------

_frontend = {}  # "module" -> the cudnn module, or "error" -> why cuDNN cannot be used here
_handles = {}
_graphs = collections.OrderedDict()   # GraphKey -> ConvGraph, least recently used first
_unsupported = collections.OrderedDict()
_workspace = {"bytes": 0, "buffer": None, "holders": []}
STATISTICS = collections.Counter()    # "graphs built", "fprop executions", ... since the process started


def frontend():
    """The ``cudnn`` module of nvidia-cudnn-frontend with a loadable cuDNN library behind it, or None."""
    if not _frontend:
        try:
            import cudnn
        except Exception as error:  # ImportError, or OSError from a broken installation
            _frontend["error"] = (f"the cuDNN frontend cannot be imported ({type(error).__name__}: {error}); "
                                  f"install it with `{CUDNN_INSTALL_COMMAND}`")
            return None
        try:
            # The frontend imports without libcudnn and fails at its first call: make that call now.
            cudnn.backend_version()
        except Exception as error:
            _frontend["error"] = (f"the cuDNN library (libcudnn) was not found ({type(error).__name__}: {error}); "
                                  f"install it with `pip install {CUDNN_LIBRARY_WHEEL}`")
            return None
        _frontend["module"] = cudnn
    return _frontend.get("module")


def cudnn_problem():
    """None when cuDNN can run here, else one sentence naming the missing piece and the command to install it."""
    return None if frontend() is not None else _frontend["error"]


def frontend_status():
    """One line saying which cuDNN this backend uses, or why it uses none. Never raises."""
    module = frontend()
    if module is None:
        return f"cuDNN unavailable: {_frontend['error']}"
    return f"cuDNN frontend {module.__version__}, cuDNN {module.backend_version_string()}"


def _handle():
    cudnn = frontend()
    device = cupy.cuda.Device().id
    if device not in _handles:
        _handles[device] = cudnn.create_handle()
    return _handles[device]


def _build(key, workspace_limit):
    cudnn = frontend()
    io_type = cudnn.data_type.FLOAT
    graph = cudnn.pygraph(io_data_type=io_type, intermediate_data_type=cudnn.data_type.FLOAT,
                          compute_data_type=cudnn.data_type.FLOAT, handle=_handle())
    n, c, h, w = key.x_shape
    f, _, kh, kw = key.w_shape
    y_shape = output_shape(key)
    geometry = dict(padding=[key.padding] * 2, stride=[key.stride] * 2, dilation=[1, 1])

    def tensor(name, shape):
        return graph.tensor(name=name, dim=list(shape), stride=list(nhwc_strides(*shape)), data_type=io_type)

    if key.kind == "fprop":
        tensors = {"X": tensor("X", key.x_shape), "W": tensor("W", key.w_shape), "B": tensor("B", (1, f, 1, 1))}
        result = graph.conv_fprop(image=tensors["X"], weight=tensors["W"], name="conv", **geometry)
        result = graph.bias(input=result, bias=tensors["B"], name="bias")
        if key.relu:
            result = graph.relu(input=result, name="relu")
        result_name, result_shape = "Y", y_shape
    elif key.kind == "dgrad":
        tensors = {"DY": tensor("DY", y_shape), "W": tensor("W", key.w_shape)}
        result = graph.conv_dgrad(loss=tensors["DY"], filter=tensors["W"], name="dgrad", **geometry)
        result_name, result_shape = "DX", (n, c, h, w)
    else:
        tensors = {"X": tensor("X", key.x_shape), "DY": tensor("DY", y_shape)}
        result = graph.conv_wgrad(image=tensors["X"], loss=tensors["DY"], name="wgrad", **geometry)
        result_name, result_shape = "DW", (f, c, kh, kw)
    result.set_output(True).set_data_type(io_type).set_dim(list(result_shape)).set_stride(
        list(nhwc_strides(*result_shape)))
    tensors[result_name] = result

    graph.validate()
    graph.build_operation_graph()
    graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
    if not key.tensor_cores:  # float32 without TF32: no plan that rounds the inputs for tensor cores
        graph.deselect_numeric_notes([cudnn.numerical_note.TENSOR_CORE])
    if workspace_limit is not None:
        graph.deselect_workspace_greater_than(workspace_limit)
    graph.check_support()
    graph.build_plans()
    return ConvGraph(graph, tensors, int(graph.get_workspace_size()))


def get_graph(key):
    """The built graph for ``key`` (built on first use); raises ConvGraphUnsupported if cuDNN has no plan."""
    entry = _graphs.get(key)
    if entry is not None:
        _graphs.move_to_end(key)
        return entry
    if key in _unsupported:
        raise ConvGraphUnsupported(_unsupported[key])
    errors = []
    for limit in (WORKSPACE_LIMIT_BYTES, None):  # small workspaces first; any plan at all second
        STATISTICS["graphs built"] += 1
        try:
            entry = _build(key, limit)
            break
        except Exception as error:  # cudnnGraphNotSupportedError, or RuntimeError from the backend
            errors.append(f"{type(error).__name__}: {error}")
    if entry is None:
        _remember(_unsupported, key, f"no cuDNN plan for the {key.kind} graph of {key}: {' / '.join(errors)}")
        raise ConvGraphUnsupported(_unsupported[key])
    _remember(_graphs, key, entry)
    return entry


def _remember(cache, key, value):
    cache[key] = value
    while len(cache) > GRAPH_CACHE_LIMIT:
        cache.popitem(last=False)


def cached_graphs():
    """How many built graphs the cache holds now (at most ``GRAPH_CACHE_LIMIT``)."""
    return len(_graphs)


@contextlib.contextmanager
def holding_workspaces():
    """Collect every workspace buffer handed to a graph inside the block into the list it yields.

    A CUDA graph that recorded cuDNN executions keeps their workspace's raw address, and the shared
    workspace is replaced when a later graph needs a larger one: whoever keeps the CUDA graph keeps this
    list with it, so the old buffer stays allocated as long as the recording that points to it.
    """
    held = []
    _workspace["holders"].append(held)
    try:
        yield held
    finally:
        _workspace["holders"].remove(held)


def _workspace_pointer(needed_bytes):
    size = grown_workspace(_workspace["bytes"], needed_bytes)
    if size > _workspace["bytes"] or _workspace["buffer"] is None:
        _workspace["buffer"] = cupy.empty(max(size, 1), dtype=cupy.uint8)
        _workspace["bytes"] = size
    for held in _workspace["holders"]:
        if not any(buffer is _workspace["buffer"] for buffer in held):
            held.append(_workspace["buffer"])
    return _workspace["buffer"].data.ptr if needed_bytes else 0


def execute(key, buffers):
    """Run the graph of ``key`` on the current CuPy stream with ``buffers`` (tensor name -> CuPy array).

    The arrays must be C-contiguous in the layout the graph was described with (NHWC or KRSC).
    """
    entry = get_graph(key)
    cudnn = frontend()
    handle = _handle()
    cudnn.set_stream(handle, cupy.cuda.get_current_stream().ptr)
    pack = {entry.tensors[name]: array.data.ptr for name, array in buffers.items()}
    entry.graph.execute(pack, _workspace_pointer(entry.workspace_bytes), handle=handle)
    STATISTICS[f"{key.kind} executions"] += 1
