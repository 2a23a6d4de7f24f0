"""Read the weights of a ``.caffemodel`` by decoding the protocol-buffer wire format directly.

The authors released their 16- and 19-layer models (``VGG_ILSVRC_16_layers.caffemodel``,
``VGG_ILSVRC_19_layers.caffemodel``) for Caffe. A caffemodel is one serialised ``NetParameter`` message
(``caffe.proto``); only a few of its fields matter here, so instead of Caffe or a compiled .proto this file
reads the wire format itself.

The wire format: a message is a sequence of fields, each a *key* ``(field_number << 3) | wire_type`` written
as a varint, then the value. Wire types: 0 varint, 1 fixed 8 bytes, 2 length-delimited (a varint length,
then that many bytes: strings, sub-messages, packed repeated numbers), 5 fixed 4 bytes (a float). A varint
stores 7 bits per byte, least significant group first, the high bit set on every byte but the last.

The fields used (``caffe.proto``, both the current and the deprecated layer messages):

==================  ==================================================================================
NetParameter        name = 1, layers = 2 (V1LayerParameter, old files such as VGG's), layer = 100
                    (LayerParameter)
LayerParameter      name = 1, type = 2 (string, e.g. "Convolution"), blobs = 7 (BlobProto)
V1LayerParameter    name = 4, type = 5 (enum: CONVOLUTION = 4, INNER_PRODUCT = 14, ...), blobs = 6
BlobProto           num, channels, height, width = 1, 2, 3, 4 (legacy 4-D shape), data = 5 (packed
                    float), shape = 7 (BlobShape: dim = 1, packed int64), double_data = 8 (packed double)
==================  ==================================================================================
"""
import math
import os
from collections import namedtuple

import numpy as np

__all__ = ["CaffeLayer", "read_caffemodel", "iter_fields", "read_varint", "V1_LAYER_TYPES", "MAX_BLOB_DIMENSIONS"]

CaffeLayer = namedtuple("CaffeLayer", "name type blobs")
CaffeLayer.__doc__ = "One layer of a caffemodel: its name, type (a string such as 'Convolution') and blobs (arrays)."

# The V1LayerParameter.LayerType values a VGG model uses, by the names the current format gives them.
V1_LAYER_TYPES = {4: "Convolution", 5: "Data", 6: "Dropout", 14: "InnerProduct", 15: "LRN", 17: "Pooling",
                  18: "ReLU", 20: "Softmax", 21: "SoftmaxWithLoss", 1: "Accuracy"}

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5

# A weight blob has at most four dimensions; far more can only be a crafted file.
MAX_BLOB_DIMENSIONS = 8


def read_varint(buffer, position):
    """Decode the varint starting at ``buffer[position]``; returns ``(value, next_position)``."""
    value, shift = 0, 0
    while True:
        if position >= len(buffer):
            raise ValueError("truncated varint")
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def iter_fields(buffer):
    """Yield ``(field_number, wire_type, value)`` for each field of one message.

    ``value`` is an int for varints, ``bytes``-like (a memoryview slice, no copy) for fixed and
    length-delimited fields. Raises ValueError on a truncated message or an unknown wire type.
    """
    buffer = memoryview(buffer)
    position, end = 0, len(buffer)
    while position < end:
        key, position = read_varint(buffer, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            value, position = read_varint(buffer, position)
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            value, position = buffer[position:position + size], position + size
        elif wire_type == LENGTH_DELIMITED:
            size, position = read_varint(buffer, position)
            value, position = buffer[position:position + size], position + size
        else:
            raise ValueError(f"unsupported wire type {wire_type} (field {number}) at byte {position}")
        if position > end or number == 0:
            raise ValueError(f"truncated or malformed message at field {number}")
        yield number, wire_type, value


def _packed(values, wire_type, dtype):
    """The numbers of one occurrence of a repeated numeric field, packed (one run) or not (one number)."""
    if wire_type in (LENGTH_DELIMITED, FIXED32, FIXED64):
        if len(values) % np.dtype(dtype).itemsize:
            raise ValueError(f"packed {np.dtype(dtype).name} field of {len(values)} bytes")
        return np.frombuffer(values, dtype=dtype)  # a view of the file's bytes; copied once below
    raise ValueError(f"wire type {wire_type} cannot hold {np.dtype(dtype).name} values")


def _read_blob(message):
    """A BlobProto as a float32 NumPy array of its recorded shape.

    Bounded by the message: at most ``MAX_BLOB_DIMENSIONS`` dimensions; the shape's product (exact, in
    Python integers, so no overflow can make it match) must equal the numbers present; numbers sent one
    field each (unpacked) are gathered into one buffer rather than one array each.
    """
    legacy_shape, shape, chunks, has_double = {}, None, [], False
    for number, wire_type, value in iter_fields(message):
        if number in (1, 2, 3, 4) and wire_type == VARINT:
            legacy_shape[number] = value
        elif number == 5 and wire_type == FIXED32:
            if not chunks or not isinstance(chunks[-1], bytearray):
                chunks.append(bytearray())
            chunks[-1] += value
        elif number == 5:
            chunks.append(_packed(value, wire_type, "<f4"))
        elif number == 8:
            has_double = True  # refused below unless float data is present too; never decoded
        elif number == 7 and wire_type == LENGTH_DELIMITED:
            shape = []
            for dim_number, dim_type, dim in iter_fields(value):
                if dim_number != 1:
                    continue
                if dim_type == VARINT:
                    shape.append(dim)
                else:  # packed varints
                    run, position = bytes(dim), 0
                    while position < len(run) and len(shape) <= MAX_BLOB_DIMENSIONS:
                        item, position = read_varint(run, position)
                        shape.append(item)
                if len(shape) > MAX_BLOB_DIMENSIONS:
                    raise ValueError(f"blob declares more than {MAX_BLOB_DIMENSIONS} dimensions")
    if has_double and not chunks:
        raise ValueError("blob stores float64 data (double_data); only float32 caffemodels are read")
    chunks = [np.frombuffer(c, "<f4") if isinstance(c, bytearray) else c for c in chunks]
    data = (np.concatenate(chunks) if len(chunks) > 1 else chunks[0]).astype(np.float32) if chunks else \
        np.zeros(0, np.float32)
    if shape is None:
        shape = [legacy_shape.get(i, 0) for i in (1, 2, 3, 4)] if legacy_shape else [data.size]
    if math.prod(shape) != data.size:
        raise ValueError(f"blob of shape {tuple(shape)} holds {data.size} numbers")
    return data.reshape(shape)


def _read_layer(message, v1):
    name_field, type_field, blobs_field = (4, 5, 6) if v1 else (1, 2, 7)
    name, layer_type, blobs = "", "", []
    for number, wire_type, value in iter_fields(message):
        if number == name_field and wire_type == LENGTH_DELIMITED:
            name = bytes(value).decode("utf-8", "replace")
        elif number == type_field:
            if v1 and wire_type == VARINT:
                layer_type = V1_LAYER_TYPES.get(value, f"V1 type {value}")
            elif not v1 and wire_type == LENGTH_DELIMITED:
                layer_type = bytes(value).decode("utf-8", "replace")
        elif number == blobs_field and wire_type == LENGTH_DELIMITED:
            blobs.append(_read_blob(value))
    return CaffeLayer(name, layer_type, blobs)


def read_caffemodel(path):
    """The layers of a caffemodel, in file order, each a ``CaffeLayer(name, type, blobs)``.

    Both layouts are read: the deprecated ``layers`` (V1LayerParameter, field 2, used by the VGG release)
    and the current ``layer`` (LayerParameter, field 100). Blobs are float32 arrays in Caffe's shapes
    (old files give every blob four dimensions: an FC weight is (1, 1, out, in), a bias (1, 1, 1, out)).

    Raises FileNotFoundError if the file is missing, ValueError naming the file if it does not decode.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no caffemodel at {path}")
    if not os.path.isfile(path):  # reading a device or a pipe to its end might never finish
        raise ValueError(f"{path} is not a regular file (a folder or a device?)")
    with open(path, "rb") as handle:
        data = handle.read()
    layers = []
    try:
        for number, wire_type, value in iter_fields(data):
            if number in (2, 100) and wire_type == LENGTH_DELIMITED:
                layers.append(_read_layer(value, v1=number == 2))
    except ValueError as error:
        raise ValueError(f"{path} is not a readable caffemodel (truncated, or not a Caffe NetParameter): {error}") \
            from error
    if not layers:
        raise ValueError(f"{path}: no layers found; is it a caffemodel (a binary Caffe NetParameter)?")
    return layers
