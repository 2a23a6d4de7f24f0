"""Export a VGG to ONNX, for runtimes without Python or minivgg (onnxruntime, TensorRT, a browser).

``export(model, "model.onnx")`` writes the classification net: input ``images`` (N, 3, S, S) float32 at the
model's training size S, output ``scores`` (N, classes), the class scores before the soft-max.
``export(model, path, dense=True)`` writes the fully convolutional net of Sect. 3.2 instead: FC1 as a
convolution over the last S/32 x S/32 map (7x7 at 224) and FC2, FC3 as 1x1 convolutions, on images
(N, 3, H, W) of any height and width (both dynamic; at least S), with two outputs: ``class_score_map`` (N, classes, h, w) and ``scores``
(N, classes), its spatial average, the vector the paper's dense evaluation soft-maxes.

The graph is built node by node with the ``onnx`` package (no PyTorch, no tracing): one ONNX operator per
minivgg layer, the weights as initialisers under their torchvision names (``features.0.weight``, ...).
Dropout is the identity at test time and is left out; batch normalisation becomes ``BatchNormalization``
with the running statistics (``model.fold_batch_norm()`` first if you want it folded); LRN's alpha is
written in ONNX's alpha-over-size convention.

The file carries what a user needs beside the graph as metadata (``metadata_props``): ``preprocessing``
(JSON of ``minivgg.preprocessing.Preprocessing``: channel order, input range, mean, std: the input must be
preprocessed so), ``class_names`` (JSON list, or null) and ``minivgg`` (JSON: format, architecture, dense).
"""
import json
import os

import numpy as np

from ..backend import to_host
from ..layers import BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU

__all__ = ["export", "to_onnx", "read_metadata", "DEFAULT_OPSET", "SUPPORTED_OPSETS", "FORMAT"]

FORMAT = "minivgg-onnx-1"
DEFAULT_OPSET = 17
# Opsets whose operators this file writes: from 13 (Gemm, Relu, Flatten in their current form) to 21;
# ReduceMean takes its axes as an attribute before 18 and as an input from 18 on.
SUPPORTED_OPSETS = tuple(range(13, 22))
INPUT, SCORES, SCORE_MAP = "images", "scores", "class_score_map"


def _onnx():
    try:
        import onnx
    except ImportError as error:
        raise ImportError("ONNX export needs the onnx package: pip install 'minivgg[onnx]' (or pip install "
                          "onnx)") from error
    return onnx


def _named_layers(model, dense):
    """(name, layer) in order: the model's own layers, or for ``dense`` those of its fully convolutional
    form (same names; the flatten is gone and the FC layers are convolutions)."""
    names = [spec.name for spec in model.specs]
    if not dense:
        return list(zip(names, model.layers))
    net = model.to_fully_convolutional()
    names = [name for name, spec in zip(names, model.specs) if spec.layer_class is not Flatten]
    return list(zip(names, net.layers))


def _array(layer_array, name="tensor"):
    """A parameter as the float32 the file stores (a float64 model's weights are rounded to it); ValueError
    naming the tensor when a value does not fit in float32."""
    array = np.ascontiguousarray(to_host(layer_array))
    with np.errstate(over="ignore"):
        single = array.astype(np.float32)
    if not np.isfinite(single).all():
        raise ValueError(f"{name}: {int((~np.isfinite(single)).sum())} values do not fit in float32 (largest "
                         f"magnitude {np.abs(array).max():.3g}); ONNX export writes float32 weights")
    return single


def to_onnx(model, dense=False, opset=DEFAULT_OPSET):
    """The ONNX model (an ``onnx.ModelProto``) of ``model`` in evaluation mode; see the module docstring.

    Parameters
    ----------
    model : a ``minivgg.models.VGG`` (a float64 one's weights are written rounded to float32)
    dense : bool, the fully convolutional net with dynamic height and width (Sect. 3.2)
    opset : int in ``SUPPORTED_OPSETS``

    Raises TypeError for anything but a VGG, ValueError for weights beyond float32's range or an unsupported
    opset, ImportError without the ``onnx`` package.
    """
    from ..models import VGG

    if not isinstance(model, VGG):
        raise TypeError(f"ONNX export takes a minivgg VGG model, got {type(model).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or opset not in SUPPORTED_OPSETS:
        raise ValueError(f"ONNX opset must be one of {SUPPORTED_OPSETS[0]}..{SUPPORTED_OPSETS[-1]}, got {opset!r}")
    onnx = _onnx()
    helper, TensorProto = onnx.helper, onnx.TensorProto
    nodes, initialisers = [], []

    def constant(name, array):
        initialisers.append(onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    current = INPUT
    for name, layer in _named_layers(model, dense):
        if isinstance(layer, Dropout):
            continue  # the identity at test time
        output = f"{name}.output"
        if isinstance(layer, Conv2d):
            k, p, s = layer.kernel_size, layer.padding, layer.stride
            inputs = [current, constant(f"{name}.weight", _array(layer.params["W"], f"{name}.weight")),
                      constant(f"{name}.bias", _array(layer.params["b"], f"{name}.bias"))]
            nodes.append(helper.make_node("Conv", inputs, [output], name=name, kernel_shape=[k, k],
                                          pads=[p, p, p, p], strides=[s, s]))
        elif isinstance(layer, BatchNorm2d):
            inputs = [current] + [constant(f"{name}.{key}", _array(array)) for key, array in (
                ("weight", layer.params["gamma"]), ("bias", layer.params["beta"]),
                ("running_mean", layer.buffers["running_mean"]), ("running_var", layer.buffers["running_var"]))]
            nodes.append(helper.make_node("BatchNormalization", inputs, [output], name=name, epsilon=layer.eps))
        elif isinstance(layer, ReLU):
            nodes.append(helper.make_node("Relu", [current], [output], name=name))
        elif isinstance(layer, MaxPool2d):
            k, s = layer.kernel_size, layer.stride
            ceil = {"ceil_mode": 1} if layer.ceil_mode else {}  # the dense net's (Caffe's) pooling
            nodes.append(helper.make_node("MaxPool", [current], [output], name=name, kernel_shape=[k, k],
                                          strides=[s, s], **ceil))
        elif isinstance(layer, LocalResponseNorm):
            # ONNX: x / (bias + alpha / size * sum x^2) ** beta; minivgg's multiplier of the sum is alpha'.
            alpha_sum = layer.alpha / layer.size if layer.alpha_divided_by_size else layer.alpha
            nodes.append(helper.make_node("LRN", [current], [output], name=name, size=layer.size,
                                          alpha=alpha_sum * layer.size, beta=layer.beta, bias=layer.k))
        elif isinstance(layer, Flatten):
            nodes.append(helper.make_node("Flatten", [current], [output], name=name, axis=1))
        elif isinstance(layer, Linear):
            inputs = [current, constant(f"{name}.weight", _array(layer.params["W"], f"{name}.weight")),
                      constant(f"{name}.bias", _array(layer.params["b"], f"{name}.bias"))]
            nodes.append(helper.make_node("Gemm", inputs, [output], name=name, transB=1))
        else:
            raise TypeError(f"ONNX export: no ONNX operator for layer {name} ({layer!r})")
        current = output

    classes = model.num_classes
    if dense:
        nodes.append(helper.make_node("Identity", [current], [SCORE_MAP], name="class_score_map"))
        if opset >= 18:
            axes = constant("spatial_axes", np.array([2, 3], np.int64))
            mean = helper.make_node("ReduceMean", [SCORE_MAP, axes], [SCORES], name="average", keepdims=0)
        else:
            mean = helper.make_node("ReduceMean", [SCORE_MAP], [SCORES], name="average", axes=[2, 3], keepdims=0)
        nodes.append(mean)
        inputs = [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", 3, "height", "width"])]
        outputs = [helper.make_tensor_value_info(SCORES, TensorProto.FLOAT, ["batch", classes]),
                   helper.make_tensor_value_info(SCORE_MAP, TensorProto.FLOAT,
                                                 ["batch", classes, "map_height", "map_width"])]
    else:
        nodes.append(helper.make_node("Identity", [current], [SCORES], name="scores"))
        size = model.input_size
        inputs = [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", 3, size, size])]
        outputs = [helper.make_tensor_value_info(SCORES, TensorProto.FLOAT, ["batch", classes])]

    kind = "fully convolutional (Sect. 3.2)" if dense else "classification"
    graph = helper.make_graph(nodes, f"vgg_{model.config}{'_bn' if model.batch_norm else ''}", inputs, outputs,
                              initialisers, doc_string=f"minivgg VGG configuration {model.config}, {kind} net")
    from .. import __version__

    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="minivgg",
                              producer_version=__version__,
                              doc_string="Class scores before the soft-max; preprocess the input as the "
                                         "'preprocessing' metadata says.")
    record = {"format": FORMAT, "architecture": model.architecture(), "dense": bool(dense)}
    helper.set_model_props(proto, {
        "minivgg": json.dumps(record),
        "preprocessing": json.dumps(model.preprocessing.to_dict()),
        "class_names": json.dumps(None if model.class_names is None else [str(n) for n in model.class_names]),
    })
    onnx.checker.check_model(proto)
    return proto


def export(model, path, dense=False, opset=DEFAULT_OPSET):
    """Write ``to_onnx(model, dense, opset)`` to ``path`` (atomically); returns the ``onnx.ModelProto``.

    Raises FileNotFoundError if the folder of ``path`` does not exist, ValueError if ``path`` is a folder or
    cannot be written, and what ``to_onnx`` raises.
    """
    from ..files import atomic_write

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"cannot write {path}: it is a folder; give a file name such as model.onnx")
    proto = to_onnx(model, dense=dense, opset=opset)
    onnx = _onnx()
    try:
        atomic_write(path, lambda temporary: onnx.save_model(proto, temporary))
    except OSError as error:
        raise ValueError(f"cannot write {path}: {error.strerror or error}") from error
    return proto


def read_metadata(path):
    """The metadata of an exported file: ``{"minivgg": dict, "preprocessing": Preprocessing,
    "class_names": list or None}``."""
    from ..preprocessing import Preprocessing

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no ONNX file at {path}")
    onnx = _onnx()
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as error:  # protobuf's DecodeError and friends
        raise ValueError(f"{path} is not a readable ONNX file: {error}") from error
    props = {entry.key: entry.value for entry in proto.metadata_props}
    if "minivgg" not in props:
        raise ValueError(f"{path} is an ONNX file without minivgg's metadata (not written by minivgg export)")
    try:
        record, preprocessing, class_names = (json.loads(props[key]) for key in
                                              ("minivgg", "preprocessing", "class_names"))
        preprocessing = Preprocessing.from_dict(preprocessing)
    except (KeyError, ValueError, RecursionError) as error:
        raise ValueError(f"{path}: minivgg's metadata in it is damaged ({error})") from None
    if not isinstance(record, dict) or not (class_names is None or isinstance(class_names, list) and all(
            isinstance(name, str) for name in class_names)):
        raise ValueError(f"{path}: minivgg's metadata in it is damaged (a record and a list of class names expected)")
    return {"minivgg": record, "preprocessing": preprocessing, "class_names": class_names}
