"""Import the published VGG weights without their frameworks: ``minivgg convert SRC DST``.

Two sources:

- **torchvision** ``vgg11/13/16/19-*.pth`` (configurations A, B, D, E) and their batch-normalised
  ``vgg11_bn/13_bn/16_bn/19_bn-*.pth``: a PyTorch state dict, read by ``torch_pickle`` (a restricted
  unpickler: no PyTorch needed, no code from the file run); or the same state dict saved as safetensors
  (``safetensors.torch.save_file(model.state_dict(), ...)``), read as such. Its names are already minivgg's
  (``features.0.weight``, ..., ``classifier.6.bias``; with BN also ``features.1.running_mean``,
  ``running_var`` and the int64 ``num_batches_tracked``). These models expect RGB scaled to [0, 1], minus
  (0.485, 0.456, 0.406), divided by (0.229, 0.224, 0.225): ``preprocessing.TORCHVISION``.
- **Caffe**, the authors' ``VGG_ILSVRC_16_layers.caffemodel`` and ``VGG_ILSVRC_19_layers.caffemodel``
  (D and E), read by ``caffe_protobuf`` (the protobuf wire format, no Caffe needed). The weight layers,
  in file order, are the model's conv and FC layers in order. These models expect **BGR** input in 0-255
  minus the BGR mean (103.939, 116.779, 123.68): ``preprocessing.CAFFE_VGG``. The first conv's input
  channels are in BGR order and are kept so; the recorded preprocessing feeds them BGR.

The configuration, number of classes, FC width, conv width and input size are read off the weight shapes
(A and A-LRN have the same shapes: A is chosen unless ``config="A-LRN"`` is given); batch normalisation
from the presence of running means. The result is a ``VGG`` whose ``preprocessing`` says what its input
must be, and whose ``class_names`` are the ILSVRC-2012 names when it has 1000 outputs; ``convert`` saves
it as a minivgg weight file, which every evaluation and prediction path then preprocesses for correctly.
"""
import os

import numpy as np

from ...class_names import imagenet_class_names
from ...layers import Conv2d, Linear
from ...models import PLACEHOLDER_INIT, CONFIGURATIONS, PARAMETER_NAMES, canonical_config, layer_specs, vgg
from ...preprocessing import CAFFE_VGG, TORCHVISION
from ..weight_file import save, set_parameters
from .caffe_protobuf import read_caffemodel
from .torch_pickle import read_state_dict

__all__ = ["FORMATS", "detect_format", "from_torchvision", "from_caffe", "read_published", "convert",
           "infer_architecture"]

FORMATS = ("torchvision", "caffe")


def _is_safetensors(head):
    """A safetensors file starts with its header's length (8 bytes, little-endian) and the header's ``{``."""
    return len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100 << 20


def _layer_order(name):
    """``features.3.weight`` -> ``(0, 3, ...)``: the sort key of a torchvision state-dict name in the net's order
    (the feature layers, then the classifier's, each by index)."""
    section, _, rest = name.partition(".")
    index, _, key = rest.partition(".")
    return ({"features": 0, "classifier": 1}.get(section, 2), int(index) if index.isdigit() else -1, name)


def detect_format(path):
    """"torchvision" for a PyTorch file (zip archive or pickle stream) or a safetensors state dict, otherwise
    "caffe"."""
    from ...files import require_regular_file

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no weight file at {path}")
    require_regular_file(path, "weight file")
    with open(path, "rb") as handle:
        head = handle.read(9)
    # A zip archive starts "PK\x03\x04"; a legacy PyTorch file with a pickle PROTO opcode, 0x80.
    torch = head.startswith(b"PK\x03\x04") or head[:1] == b"\x80" or _is_safetensors(head)
    return "torchvision" if torch else "caffe"


def _read_safetensors_state_dict(path):
    """The tensors of a safetensors state dict; ValueError when it is a minivgg weight file already."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="np") as handle:
            if "minivgg" in (handle.metadata() or {}):
                raise ValueError(f"{path} is a minivgg weight file already: nothing to convert (use it as it is)")
            # safetensors stores its tensors sorted by name (features.10 before features.3): put them back in
            # the net's order, which the architecture is read from.
            return {name: handle.get_tensor(name) for name in sorted(handle.keys(), key=_layer_order)}
    except ValueError:
        raise
    except Exception as error:  # safetensors' own errors for a truncated or garbled file
        raise ValueError(f"{path} is not a readable safetensors file (truncated or corrupt?): {error}") from error


def infer_architecture(weight_shapes, config=None, source="the weights"):
    """The ``vgg`` arguments whose weights have exactly these shapes, conv and FC layers in order.

    Parameters
    ----------
    weight_shapes : list of the weight (not bias) shapes, (out, in, k, k) for convs, (out, in) for FCs
    config : optional configuration to insist on; by default the first of ``CONFIGURATIONS`` that fits
    source : what to call the weights in error messages

    Returns a dict (config, num_classes, input_size, width_multiplier, fc_width); raises ValueError if no
    configuration (or not the requested one) has these shapes.
    """
    shapes = [tuple(int(n) for n in s) for s in weight_shapes]
    convs, fcs = [s for s in shapes if len(s) == 4], [s for s in shapes if len(s) == 2]
    if len(convs) + len(fcs) != len(shapes) or len(fcs) != 3 or not convs:
        raise ValueError(f"{source}: expected conv weights (4-D) followed by three FC weights (2-D), got shapes "
                         f"{shapes}")
    if any(0 in shape for shape in shapes):
        raise ValueError(f"{source}: a weight of shape {next(s for s in shapes if 0 in s)} has no elements")
    side_squared, remainder = divmod(fcs[0][1], convs[-1][0])
    side = int(round(side_squared ** 0.5))
    if remainder or side * side != side_squared:
        raise ValueError(f"{source}: FC1 has {fcs[0][1]} inputs, not {convs[-1][0]} channels times a square map")
    arguments = dict(num_classes=fcs[-1][0], input_size=32 * side, width_multiplier=convs[0][0] / 64,
                     fc_width=fcs[0][0])
    candidates = list(CONFIGURATIONS) if config is None else [config]
    for name in candidates:
        specs = layer_specs(name, **arguments)
        expected = [spec.parameter_shapes()["W"] for spec in specs if spec.layer_class in (Conv2d, Linear)]
        if expected == shapes:
            return dict(config=canonical_config(name), **arguments)
    wanted = f"configuration {config}" if config else f"any configuration of {list(CONFIGURATIONS)}"
    raise ValueError(f"{source}: the weight shapes {shapes} do not fit {wanted} (with {arguments})")


def _drop_leading_ones(array, ndim):
    """Caffe's old 4-D blobs to the layer's shape: (1, 1, out, in) -> (out, in), (1, 1, 1, out) -> (out,)."""
    while array.ndim > ndim and array.shape[0] == 1:
        array = array[0]
    return array


def _build(architecture, arrays, preprocessing, source):
    model = vgg(**architecture, weight_init=PLACEHOLDER_INIT, seed=0)
    set_parameters(model, arrays, source=source)
    model.preprocessing = preprocessing
    model.class_names = imagenet_class_names() if model.num_classes == 1000 else None
    return model.eval()


def from_torchvision(path, config=None):
    """A ``VGG`` holding the weights of a torchvision state dict (``.pth``), with torchvision's preprocessing.

    A batch-normalised state dict (``vgg16_bn``) gives a ``batch_norm=True`` model. State dicts saved before
    PyTorch 0.4.1 (such as torchvision's 2017 ``vgg*_bn`` files) have no ``num_batches_tracked``; as PyTorch
    does when it loads them, the counters start at 0 (they matter only to ``momentum=None``).
    """
    from ...files import require_regular_file

    path = require_regular_file(path, "weight file")
    with open(path, "rb") as handle:
        safetensors = _is_safetensors(handle.read(9))
    arrays = _read_safetensors_state_dict(path) if safetensors else read_state_dict(path)
    running_means = [name[:-len(".running_mean")] for name in arrays if name.endswith(".running_mean")]
    for layer in running_means:
        arrays.setdefault(f"{layer}.num_batches_tracked", np.zeros((), np.int64))
    # The conv (4-D) and FC (2-D) weights fix the architecture; batch norm's weights are 1-D.
    weights = [array.shape for name, array in arrays.items()
               if name.endswith(f".{PARAMETER_NAMES['W']}") and array.ndim != 1]
    architecture = infer_architecture(weights, config, source=path)
    return _build(dict(architecture, batch_norm=bool(running_means)), arrays, TORCHVISION, path)


def from_caffe(path, config=None):
    """A ``VGG`` holding the weights of a caffemodel, with the Caffe models' BGR preprocessing."""
    from ...files import require_regular_file

    path = require_regular_file(path, "weight file")
    weight_layers = []
    for layer in read_caffemodel(path):
        if not layer.blobs:
            continue
        if layer.type not in ("Convolution", "InnerProduct") or len(layer.blobs) != 2:
            raise ValueError(f"{path}: layer {layer.name!r} ({layer.type}) has {len(layer.blobs)} blobs; only "
                             f"Convolution and InnerProduct layers with a weight and a bias are converted")
        ndim = 4 if layer.type == "Convolution" else 2
        weight_layers.append((layer.name, _drop_leading_ones(layer.blobs[0], ndim),
                              _drop_leading_ones(layer.blobs[1], 1)))
    architecture = infer_architecture([w.shape for _, w, _ in weight_layers], config, source=path)
    # The model's weight layers, in order, receive the file's weight layers, in order.
    names = [spec.name for spec in layer_specs(**architecture) if spec.layer_class in (Conv2d, Linear)]
    arrays = {}
    for name, (_, weight, bias) in zip(names, weight_layers):
        arrays[f"{name}.{PARAMETER_NAMES['W']}"], arrays[f"{name}.{PARAMETER_NAMES['b']}"] = weight, bias
    return _build(architecture, arrays, CAFFE_VGG, path)


def convert(source, destination, config=None, source_format=None, metadata=None):
    """Read published VGG weights from ``source`` and save them as a minivgg weight file at ``destination``.

    Parameters
    ----------
    source : a torchvision ``.pth`` or a Caffe ``.caffemodel``
    destination : the ``.safetensors`` file to write
    config : optional configuration, when the shapes leave a choice (A vs A-LRN)
    source_format : "torchvision" or "caffe"; by default detected from the file's first bytes
    metadata : optional dict of str -> str stored in the weight file's header beside the conversion's own

    Returns the converted ``VGG``.
    """
    source_format = source_format or detect_format(source)
    model = read_published(source, source_format, config)
    save(model, destination, metadata=dict(metadata or {}, converted_from=os.path.basename(os.fspath(source)),
                                           source_format=source_format))
    return model


def read_published(source, source_format, config=None):
    """The ``VGG`` the published file ``source`` holds, read as ``source_format`` ("torchvision" or "caffe")."""
    readers = {"torchvision": from_torchvision, "caffe": from_caffe}
    if source_format not in readers:
        raise ValueError(f"unknown source format {source_format!r}; choose one of {FORMATS}")
    return readers[source_format](source, config)
