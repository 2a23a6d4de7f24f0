"""Files in the published formats, written byte for byte by small writers: torchvision's .pth (zip and legacy
layouts of ``torch.save``) and Caffe's .caffemodel (V1 and current layer messages). The tests import them as
PyTorch and Caffe would write them, without either installed."""
import pickle
import struct
import zipfile
import zlib

import numpy as np


def state_dict_of(model):
    return {name: np.array(layer.params[key]) for name, layer, key in model.named_parameters()}


# A writer for PyTorch's pickles: protocol 2 opcodes, exactly what torch.save emits for a state dict -------

def storage_of(array):
    """The contiguous buffer a NumPy view looks into, and the view's offset into it, in elements."""
    base = array if array.base is None else array.base
    offset = array.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return np.ascontiguousarray(base).ravel(), offset // array.itemsize


# PyTorch's storage class for each element type: float32 weights, int64 batch-norm counters.
STORAGE_CLASSES = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage"}


def pickle_state_dict(arrays, legacy):
    """A state dict of float32 and int64 arrays (views allowed: they keep their storage, offset and strides)."""
    out = bytearray(pickle.PROTO + b"\x02")

    def global_(module, name):
        out.extend(pickle.GLOBAL + f"{module}\n{name}\n".encode())

    def text(value):
        data = value.encode()
        out.extend(pickle.BINUNICODE + struct.pack("<I", len(data)) + data)

    def integer(value):
        out.extend(pickle.BININT + struct.pack("<i", value))

    def int_tuple(values):
        out.extend(pickle.MARK)
        for v in values:
            integer(v)
        out.extend(pickle.TUPLE)

    global_("collections", "OrderedDict")
    out.extend(pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.MARK)
    for key, (name, array) in enumerate(arrays.items()):
        text(name)
        global_("torch._utils", "_rebuild_tensor_v2")
        out.extend(pickle.MARK + pickle.MARK)  # the arguments' tuple, then the persistent id's
        text("storage")
        global_("torch", STORAGE_CLASSES[array.dtype])
        text(str(key))
        text("cpu")
        storage, offset = storage_of(array)
        integer(storage.size)
        if legacy:
            out.extend(pickle.NONE)  # no view
        out.extend(pickle.TUPLE + pickle.BINPERSID)
        integer(offset)
        int_tuple(array.shape)
        int_tuple([s // array.itemsize for s in array.strides])
        out.extend(pickle.NEWFALSE)  # requires_grad
        global_("collections", "OrderedDict")
        out.extend(pickle.EMPTY_TUPLE + pickle.REDUCE)  # backward hooks
        out.extend(pickle.TUPLE + pickle.REDUCE)
    out.extend(pickle.SETITEMS + pickle.STOP)
    return bytes(out)


def write_torch_zip(path, arrays, pickle_bytes=None):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle_bytes or pickle_state_dict(arrays, legacy=False))
        archive.writestr("archive/byteorder", "little")
        for key, array in enumerate(arrays.values()):
            archive.writestr(f"archive/data/{key}", storage_of(array)[0].astype(array.dtype.newbyteorder("<")).tobytes())
        archive.writestr("archive/version", "3\n")


def write_torch_legacy(path, arrays):
    dump = lambda obj: pickle.dumps(obj, protocol=2)  # noqa: E731
    parts = [dump(0x1950A86A20F9469CFC6C), dump(1001),
             dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}),
             pickle_state_dict(arrays, legacy=True), dump([str(k) for k in range(len(arrays))])]
    for array in arrays.values():
        storage = storage_of(array)[0]
        parts.append(struct.pack("<q", storage.size) + storage.astype(array.dtype.newbyteorder("<")).tobytes())
    with open(path, "wb") as handle:
        handle.write(b"".join(parts))


# A writer for caffemodels: the protobuf wire format -----------------------------------------------------

def varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number, wire_type, payload):
    if wire_type == 2:
        payload = varint(len(payload)) + payload
    return varint(number << 3 | wire_type) + payload


def blob(array, legacy, packed=True):
    data = np.asarray(array, "<f4")
    if packed:
        body = field(5, 2, data.tobytes())
    else:  # one fixed32 field per number, as an unpacked repeated float
        body = b"".join(field(5, 5, struct.pack("<f", v)) for v in data.ravel())
    if legacy:  # num, channels, height, width, padded on the left with ones: Caffe's old 4-D blobs
        shape = (1,) * (4 - data.ndim) + data.shape
        return b"".join(field(n, 0, varint(d)) for n, d in zip((1, 2, 3, 4), shape)) + body
    return field(7, 2, field(1, 2, b"".join(varint(d) for d in data.shape))) + body


V1_TYPE = {"Convolution": 4, "ReLU": 18, "Pooling": 17, "InnerProduct": 14, "Dropout": 6, "Softmax": 20}


def write_caffemodel(path, model, v1):
    """The model as Caffe would store it: every layer in order, weights only on conv and FC layers."""
    layers = []
    for spec, layer in zip(model.specs, model.layers):
        kind = {"Conv2d": "Convolution", "ReLU": "ReLU", "MaxPool2d": "Pooling", "Linear": "InnerProduct",
                "Dropout": "Dropout"}.get(type(layer).__name__)
        if kind is None:
            continue
        blobs = [blob(layer.params["W"], legacy=v1), blob(layer.params["b"], legacy=v1, packed=not v1)] \
            if layer.params else []
        if v1:
            body = field(4, 2, spec.name.encode()) + field(5, 0, varint(V1_TYPE[kind]))
            body += b"".join(field(6, 2, b) for b in blobs)
        else:
            body = field(1, 2, spec.name.encode()) + field(2, 2, kind.encode())
            body += b"".join(field(7, 2, b) for b in blobs)
        layers.append(field(2 if v1 else 100, 2, body))
    if v1:
        softmax = field(4, 2, b"prob") + field(5, 0, varint(V1_TYPE["Softmax"]))
    else:
        softmax = field(1, 2, b"prob") + field(2, 2, b"Softmax")
    layers.append(field(2 if v1 else 100, 2, softmax))
    with open(path, "wb") as handle:
        handle.write(field(1, 2, b"VGG_ILSVRC_16_layers") + b"".join(layers))
