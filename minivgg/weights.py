"""Weights on disk: one safetensors file holding the parameters and everything needed to use them.

A weight file is a safetensors file (arrays and a string header; no pickle, nothing executable). Its
tensors are the model's parameters under their torchvision-style names (``features.0.weight``, ...,
``classifier.6.bias``, see ``minivgg.models``), and a batch-normalised net's running statistics under
torchvision's names too (``features.1.running_mean``, ``running_var``, ``num_batches_tracked``). Its header
holds, as JSON under the key ``"minivgg"``:

- ``architecture``: the arguments that rebuild the model (configuration, classes, input size, width
  multiplier, FC width, dropout, LRN formula, batch normalisation);
- ``preprocessing``: the ``Preprocessing`` the weights expect (channel order, input range, mean, std), so
  every path that feeds images to the model applies it and nobody has to remember it;
- ``class_names``: the name of every output, or null.

Any further metadata a caller passes is stored beside it as plain strings. Files are written to a
temporary name and renamed into place, so a crash mid-write never leaves a half-written file under the
real name.
"""
import json
import os

import numpy as np

from .backend import get_backend, to_host
from .checkpoint import atomic_write
from .preprocessing import Preprocessing

__all__ = ["FORMAT", "save", "load", "load_into", "read_metadata", "set_parameters"]

FORMAT = "minivgg-weights-1"
_KEY = "minivgg"


def save(model, path, metadata=None):
    """Write ``model``'s parameters, architecture, preprocessing and class names to ``path`` (safetensors).

    Parameters
    ----------
    model : a ``minivgg.models.VGG``
    path : str or path-like, usually ending in ``.safetensors``
    metadata : optional dict of str -> str stored in the header as is (e.g. training notes)
    """
    from safetensors.numpy import save_file

    metadata = dict(metadata or {})
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"weights.save: metadata must map str to str, got {key!r}: {type(value).__name__}")
    if _KEY in metadata:
        raise ValueError(f"weights.save: metadata key {_KEY!r} is reserved for the model's own record")
    record = {"format": FORMAT, "architecture": model.architecture(),
              "preprocessing": model.preprocessing.to_dict(),
              "class_names": None if model.class_names is None else [str(n) for n in model.class_names]}
    # asarray, not ascontiguousarray, which would turn the 0-d num_batches_tracked into shape (1,)
    tensors = {name: np.asarray(to_host(store[key]), order="C") for name, store, key in _named_arrays(model)}
    header = dict(metadata, **{_KEY: json.dumps(record)})
    atomic_write(os.fspath(path), lambda temporary: save_file(tensors, temporary, metadata=header))


def _open(path):
    """(record, user metadata, tensor names) of a weight file, with clear errors."""
    from safetensors import safe_open

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no weight file at {path}")
    try:
        with safe_open(path, framework="np") as handle:
            header = dict(handle.metadata() or {})
            names = list(handle.keys())
    except Exception as error:  # safetensors raises its own error types for truncated or garbled files
        raise ValueError(f"{path} is not a readable safetensors weight file (truncated or corrupt?): "
                         f"{error}") from error
    if _KEY not in header:
        raise ValueError(f"{path} is a safetensors file without minivgg's record (architecture, preprocessing); "
                         f"write it with minivgg.weights.save, or import published weights with `minivgg convert`")
    try:
        record = json.loads(header.pop(_KEY))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the minivgg record in the header is not valid JSON: {error}") from error
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        found = record.get("format") if isinstance(record, dict) else record
        raise ValueError(f"{path}: unknown weight file format {found!r}, expected {FORMAT!r}")
    return record, header, names


def read_metadata(path):
    """The header of a weight file without reading its tensors.

    Returns ``(record, metadata)``: ``record`` has ``architecture``, ``preprocessing`` (a ``Preprocessing``)
    and ``class_names``; ``metadata`` is the dict of str the caller stored with ``save``.
    """
    record, metadata, _ = _open(path)
    record = dict(record, preprocessing=Preprocessing.from_dict(record["preprocessing"]))
    return record, metadata


def load_into(model, path):
    """Put the weights of ``path`` into ``model``, after checking every name, shape and dtype.

    The model also takes the file's preprocessing and class names. Raises ValueError naming the tensor
    that is missing, unexpected or mismatched (nothing is changed then), or naming the file if it is
    unreadable, truncated or not a minivgg weight file; FileNotFoundError if it does not exist.
    Returns ``model``.
    """
    from safetensors import safe_open

    path = os.fspath(path)
    record, _, names = _open(path)
    architecture = record["architecture"]
    for key in ("config", "lrn_alpha_divided_by_size", "batch_norm"):
        if key in architecture and architecture[key] != getattr(model, key, architecture[key]):
            raise ValueError(f"{path} holds weights for {key} = {architecture[key]!r}, the model has "
                             f"{getattr(model, key)!r}")
    try:
        with safe_open(path, framework="np") as handle:
            arrays = {name: handle.get_tensor(name) for name in names}
    except Exception as error:
        raise ValueError(f"{path}: cannot read its tensors (truncated or corrupt?): {error}") from error
    set_parameters(model, arrays, source=path)
    model.preprocessing = Preprocessing.from_dict(record["preprocessing"])
    model.class_names = record.get("class_names")
    return model


def _named_arrays(model):
    """``(name, store, key)`` for every array a weight file holds: the parameters (``store`` is the layer's
    ``params``), then the batch-norm running statistics (its ``buffers``)."""
    for name, layer, key in model.named_parameters():
        yield name, layer.params, key
    for name, layer, key in model.named_buffers():
        yield name, layer.buffers, key


def set_parameters(model, arrays, source="the arrays"):
    """Replace every parameter of ``model`` by ``arrays[name]`` (names as ``model.named_parameters()``), and
    every batch-norm running statistic (``model.named_buffers()``).

    Checks everything first: the set of names, then each shape and dtype; raises ValueError naming
    ``source`` and the first mismatching tensor, and changes nothing then. Used by ``load_into`` and by
    the converters of published weights.
    """
    expected = {name: (store, key) for name, store, key in _named_arrays(model)}
    missing, unexpected = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{source} does not match the model: missing tensors {missing}, unexpected tensors "
                         f"{unexpected}")
    for name, (store, key) in expected.items():
        have, new = store[key], arrays[name]
        if new.shape != have.shape:
            raise ValueError(f"{source}: tensor {name!r} has shape {new.shape}, the model expects {have.shape}")
        if new.dtype != have.dtype:
            raise ValueError(f"{source}: tensor {name!r} is {new.dtype}, the model's is {have.dtype}; "
                             f"load into a model of that dtype and call .astype() after")
    backend = get_backend()
    for name, (store, key) in expected.items():
        # num_batches_tracked is a host counter; everything else lives on the backend's device.
        store[key] = np.array(arrays[name]) if key == "num_batches_tracked" else backend.asarray(arrays[name])
    for _, layer, _ in model.named_parameters():
        layer.grads = {}
    return model


def load(path):
    """Rebuild the model a weight file describes and load its weights: ``model = weights.load(path)``.

    The model has the file's architecture, dtype, preprocessing and class names, and is in training mode
    (call ``.eval()`` to predict).
    """
    from safetensors import safe_open

    from .models import _PLACEHOLDER_INIT, vgg

    path = os.fspath(path)
    record, _, names = _open(path)
    try:
        with safe_open(path, framework="np") as handle:
            dtype = handle.get_slice(names[0]).get_dtype() if names else "F32"
    except Exception as error:
        raise ValueError(f"{path}: cannot read its tensors (truncated or corrupt?): {error}") from error
    dtypes = {"F32": np.float32, "F64": np.float64}
    if dtype not in dtypes:
        raise ValueError(f"{path}: tensors are {dtype}; minivgg models are float32 (F32) or float64 (F64)")
    try:
        model = vgg(**record["architecture"], weight_init=_PLACEHOLDER_INIT, seed=0, dtype=dtypes[dtype])
    except TypeError as error:
        raise ValueError(f"{path}: the recorded architecture {record['architecture']} is not one minivgg can "
                         f"build: {error}") from error
    return load_into(model, path)
