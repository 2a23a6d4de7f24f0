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

Beside it, under ``"training"``, how the weights were trained (``record.py``: the training scale, flips,
epochs), when they were trained by minivgg. Any further metadata a caller passes is stored beside it as plain strings. Files are written to a
temporary name and renamed into place, so a crash mid-write never leaves a half-written file under the
real name.

Reading trusts nothing in the file: the whole record is checked first (exactly the fields above; only the
architecture keys ``models.layer_specs`` takes; a finite, positive preprocessing; one class name per
output), then the tensors the architecture declares are compared, name by name and shape by shape, with
those the file's header lists, all before a layer is built, so a small file declaring a huge layer fails
at once instead of allocating it; last, every value must be finite. Each error is a ValueError naming the
file and the field or tensor. Saving refuses non-finite weights too, so a diverged run never leaves a file
of NaN weights behind.
"""
import inspect
import json
import os

import numpy as np

from ..backend import get_backend, to_host
from ..backends.reference.array_module import array_module
from ..files import atomic_write
from ..preprocessing import Preprocessing
from .record import METADATA_KEY as TRAINING_KEY
from .record import TrainingRecord

__all__ = ["FORMAT", "RECORD_FIELDS", "save", "load", "load_into", "read_metadata", "set_parameters",
           "declared_shapes", "tensors_digest", "file_tensors_digest"]

FORMAT = "minivgg-weights-1"
_KEY = "minivgg"


def save(model, path, metadata=None):
    """Write ``model``'s parameters, architecture, preprocessing and class names to ``path`` (safetensors).

    Parameters
    ----------
    model : a ``minivgg.models.VGG``
    path : str or path-like, usually ending in ``.safetensors``
    metadata : optional dict of str -> str stored in the header as is (e.g. notes)

    The model's ``training_record`` (a ``record.TrainingRecord``, or None) is stored with it.
    """
    from safetensors.numpy import save_file

    metadata = dict(metadata or {})
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"weights.save: metadata must map str to str, got {key!r}: {type(value).__name__}")
    for reserved in (_KEY, TRAINING_KEY):
        if reserved in metadata:
            raise ValueError(f"weights.save: metadata key {reserved!r} is reserved for the model's own record")
    record = {"format": FORMAT, "architecture": model.architecture(),
              "preprocessing": model.preprocessing.to_dict(),
              "class_names": None if model.class_names is None else [str(n) for n in model.class_names]}
    # asarray, not ascontiguousarray, which would turn the 0-d num_batches_tracked into shape (1,)
    tensors = {name: np.asarray(to_host(store[key]), order="C") for name, store, key in _named_arrays(model)}
    for name, array in tensors.items():  # a file of NaN weights would only fail later, far from its cause
        _check_finite(array, name, f"weights.save({os.fspath(path)})")
    header = dict(metadata, **{_KEY: json.dumps(record)})
    if getattr(model, "training_record", None) is not None:
        header[TRAINING_KEY] = model.training_record.to_json()
    atomic_write(os.fspath(path), lambda temporary: save_file(tensors, temporary, metadata=header))


def _open(path):
    """(record, user metadata, {tensor name: (shape, dtype)}) of a weight file, every field checked.

    Nothing but the header is read: the record is checked against ``RECORD_FIELDS`` and the tensors the
    architecture declares are compared with those in the file before anything is built or allocated.
    """
    from safetensors import safe_open

    from ..files import require_regular_file

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no weight file at {path}")
    require_regular_file(path, "weight file")
    try:
        with safe_open(path, framework="np") as handle:
            header = dict(handle.metadata() or {})
            tensors = {}
            for name in handle.keys():
                tensor = handle.get_slice(name)
                tensors[name] = (tuple(tensor.get_shape()), tensor.get_dtype())
    except Exception as error:  # safetensors raises its own error types for truncated or garbled files
        raise ValueError(f"{path} is not a readable safetensors weight file (truncated or corrupt?): "
                         f"{error}") from error
    if _KEY not in header:
        torchvision = any(name.startswith(("features.", "classifier.")) for name in tensors)
        raise ValueError(f"{path} is a safetensors file without minivgg's record (architecture, preprocessing)"
                         + (f"; its tensors have torchvision's names: import it with `minivgg convert {path} "
                            f"OUT.safetensors`" if torchvision else "; write it with minivgg.weights.save, or "
                            "import published weights with `minivgg convert`"))
    try:
        record = json.loads(header.pop(_KEY))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the minivgg record in the header is not valid JSON: {error}") from error
    except RecursionError:  # arrays nested thousands deep
        raise ValueError(f"{path}: the minivgg record in the header nests too deep to be a weight record") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        found = record.get("format") if isinstance(record, dict) else record
        raise ValueError(f"{path}: unknown weight file format {found!r}, expected {FORMAT!r}")
    record = _checked_record(record, tensors, path)
    training = header.pop(TRAINING_KEY, None)
    record["training"] = None if training is None else TrainingRecord.from_json(training, path)
    return record, header, tensors


# The fields of the record, and the architecture keys: those of ``models.layer_specs`` (config required).
RECORD_FIELDS = ("format", "architecture", "preprocessing", "class_names")
_DTYPES = {"F32": np.float32, "F64": np.float64}


def _architecture_keys():
    from ..models import layer_specs

    return list(inspect.signature(layer_specs).parameters)


def _checked_record(record, tensors, path):
    """The record with its architecture completed by the defaults and its preprocessing a ``Preprocessing``.

    Raises ValueError naming ``path`` and the field for anything missing, unknown or out of range, and for
    tensors that are not exactly those the architecture declares (names, shapes, one float dtype).
    """
    from ..models import layer_specs

    missing, unknown = [f for f in RECORD_FIELDS if f not in record], sorted(set(record) - set(RECORD_FIELDS))
    if missing or unknown:
        raise ValueError(f"{path}: the minivgg record needs the fields {list(RECORD_FIELDS)}: missing {missing}, "
                         f"unknown {unknown}")
    architecture = record["architecture"]
    keys = _architecture_keys()
    if not isinstance(architecture, dict) or "config" not in architecture:
        raise ValueError(f"{path}: architecture must be a mapping with at least 'config', got {architecture!r}")
    unknown = sorted(set(architecture) - set(keys))
    if unknown:
        raise ValueError(f"{path}: architecture has unknown keys {unknown}; known keys are {keys}")
    defaults = {name: p.default for name, p in inspect.signature(layer_specs).parameters.items()
                if p.default is not inspect.Parameter.empty}
    architecture = dict(defaults, **architecture)
    try:
        specs = layer_specs(**architecture)  # sizes only: nothing is allocated
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"{path}: architecture {record['architecture']} is not one minivgg can build: "
                         f"{error}") from error
    try:
        preprocessing = Preprocessing.from_dict(record["preprocessing"])
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    class_names = record["class_names"]
    if class_names is not None:
        if not isinstance(class_names, list) or not all(isinstance(n, str) for n in class_names):
            raise ValueError(f"{path}: class_names must be null or a list of strings, got "
                             f"{type(class_names).__name__}")
        if len(class_names) != architecture["num_classes"]:
            raise ValueError(f"{path}: class_names has {len(class_names)} names for {architecture['num_classes']} "
                             f"outputs (num_classes)")
    _check_declared_tensors(declared_shapes(specs), tensors, path)
    return dict(record, architecture=architecture, preprocessing=preprocessing)


def declared_shapes(specs):
    """``{tensor name: shape}`` of the parameters a list of ``models.LayerSpec`` declares, named as
    ``VGG.named_parameters`` names them, computed without building a layer."""
    from ..models import PARAMETER_NAMES

    shapes = {f"{spec.name}.{PARAMETER_NAMES.get(key, key)}": tuple(shape)
              for spec in specs for key, shape in spec.parameter_shapes().items()}
    for spec in specs:  # batch-norm running statistics travel with the weights (torchvision's names)
        if "num_features" in spec.arguments and "gamma" in spec.parameter_shapes():
            channels = (spec.arguments["num_features"],)
            shapes.update({f"{spec.name}.running_mean": channels, f"{spec.name}.running_var": channels,
                           f"{spec.name}.num_batches_tracked": ()})
    return shapes


# Batch norm's step counter is the one integer tensor a weight file holds.
_COUNTER_SUFFIX = ".num_batches_tracked"


def _check_declared_tensors(declared, tensors, path):
    missing, unexpected = sorted(set(declared) - set(tensors)), sorted(set(tensors) - set(declared))
    if missing or unexpected:
        raise ValueError(f"{path} does not hold the tensors its architecture declares: missing tensors {missing}, "
                         f"unexpected tensors {unexpected}")
    for name, shape in declared.items():
        if tensors[name][0] != shape:
            raise ValueError(f"{path}: tensor {name!r} has shape {tensors[name][0]}, its architecture declares "
                             f"{shape}")
    for name, (_, dtype) in tensors.items():
        if name.endswith(_COUNTER_SUFFIX) and dtype != "I64":
            raise ValueError(f"{path}: tensor {name!r} is {dtype}; a batch-norm counter is int64 (I64)")
    dtypes = sorted({dtype for name, (_, dtype) in tensors.items() if not name.endswith(_COUNTER_SUFFIX)})
    if len(dtypes) > 1 or (dtypes and dtypes[0] not in _DTYPES):
        raise ValueError(f"{path}: tensors are {', '.join(dtypes)}; minivgg models are all float32 (F32) or all "
                         f"float64 (F64)")


def read_metadata(path):
    """The header of a weight file without reading its tensors.

    Returns ``(record, metadata)``: ``record`` has ``architecture`` (every key of ``models.layer_specs``,
    defaults filled in), ``preprocessing`` (a ``Preprocessing``), ``class_names`` and ``training`` (a
    ``record.TrainingRecord``, or None), all checked;
    ``metadata`` is the dict of str the caller stored with ``save``.
    """
    record, metadata, _ = _open(path)
    return record, metadata


def load_into(model, path):
    """Put the weights of ``path`` into ``model``, after checking every name, shape and dtype.

    The model also takes the file's preprocessing, class names and training record. Raises ValueError naming the tensor
    that is missing, unexpected or mismatched (nothing is changed then), or naming the file if it is
    unreadable, truncated or not a minivgg weight file; FileNotFoundError if it does not exist.
    Returns ``model``.
    """
    from safetensors import safe_open

    path = os.fspath(path)
    record, _, tensors = _open(path)
    architecture = record["architecture"]
    for key in ("config", "lrn_alpha_divided_by_size", "batch_norm"):
        if key in architecture and architecture[key] != getattr(model, key, architecture[key]):
            raise ValueError(f"{path} holds weights for {key} = {architecture[key]!r}, the model has "
                             f"{getattr(model, key)!r}")
    try:
        with safe_open(path, framework="np") as handle:
            arrays = {name: handle.get_tensor(name) for name in tensors}
    except Exception as error:
        raise ValueError(f"{path}: cannot read its tensors (truncated or corrupt?): {error}") from error
    _check_first_layer_range(model, arrays, record["preprocessing"], path)
    set_parameters(model, arrays, source=path)
    model.preprocessing = record["preprocessing"]
    model.class_names = record["class_names"]
    model.training_record = record["training"]
    return model


def _check_first_layer_range(model, arrays, preprocessing, source):
    """ValueError naming ``source`` and the tensor when the first convolution's outputs can overflow the dtype
    the model computes in: weights of 3e38 are finite in float32, yet times a pixel of 100 they are infinite,
    and every score after them NaN. The bound is exact for that layer: ``sum |W| * max |input| + |b|`` per
    output channel, the inputs' largest magnitude coming from the preprocessing."""
    names = [name for name, layer, key in model.named_parameters()]
    if len(names) < 2 or not names[0].endswith(".weight") or arrays[names[0]].ndim != 4:
        return
    weight, bias = np.asarray(arrays[names[0]], np.float64), np.asarray(arrays[names[1]], np.float64)
    mean, std = np.asarray(preprocessing.mean), np.asarray(preprocessing.std)  # in the model's channel order
    largest_input = np.maximum(np.abs(mean), np.abs(preprocessing.input_range - mean)) / std
    with np.errstate(over="ignore"):
        bound = (np.abs(weight).sum(axis=(2, 3)) @ largest_input) + np.abs(bias)
    limit = float(np.finfo(arrays[names[0]].dtype).max)
    if not np.isfinite(bound).all() or bound.max() > limit:
        channel = int(np.argmax(np.where(np.isfinite(bound), bound, np.inf)))
        raise ValueError(f"{source}: tensor {names[0]!r} holds weights up to {np.abs(weight).max():.3g}: the first "
                         f"convolution's output {channel} can reach {bound[channel]:.3g}, beyond "
                         f"{arrays[names[0]].dtype}'s largest value {limit:.3g}, and every score after it would be "
                         f"NaN or infinite")


def _digest_of(arrays):
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def tensors_digest(model):
    """SHA-256 of the arrays a weight file of ``model`` holds (names, dtypes, shapes, values, in name order): what
    ``minivgg.weights.published`` records in a converted file's header and checks whenever it serves it."""
    return _digest_of({name: to_host(store[key]) for name, store, key in _named_arrays(model)})


def file_tensors_digest(path):
    """``tensors_digest`` of the weights in the file at ``path``, read back from it."""
    from safetensors import safe_open

    _, _, tensors = _open(path)
    try:
        with safe_open(os.fspath(path), framework="np") as handle:
            return _digest_of({name: handle.get_tensor(name) for name in tensors})
    except Exception as error:
        raise ValueError(f"{path}: cannot read its tensors (truncated or corrupt?): {error}") from error


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

    Checks everything first: the set of names, then each shape, dtype and that every value is finite (and
    that no running variance or batch counter is negative);
    raises ValueError naming ``source`` and the first mismatching tensor, and changes nothing then. Used by
    ``load_into`` and by the converters of published weights.
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
            # Only another float dtype is a model of that dtype; a float counter or integer weights are damage.
            advice = ("a batch-norm counter is int64" if key == "num_batches_tracked" else
                      "load into a model of that dtype and call .astype() after" if new.dtype.kind == "f" else
                      "minivgg weights are float32 or float64")
            raise ValueError(f"{source}: tensor {name!r} is {new.dtype}, the model's is {have.dtype}; {advice}")
        _check_finite(new, name, source)
        if key in _NEVER_NEGATIVE and bool((new < 0).any()):
            raise ValueError(f"{source}: tensor {name!r} holds {int((new < 0).sum())} negative values (smallest "
                             f"{new.min()}); {_NEVER_NEGATIVE[key]} is never negative")
    backend = get_backend()
    for name, (store, key) in expected.items():
        # num_batches_tracked is a host counter; everything else lives on the backend's device.
        store[key] = np.array(arrays[name]) if key == "num_batches_tracked" else backend.asarray(arrays[name])
    for _, layer, _ in model.named_parameters():
        layer.grads = {}
    return model


# Batch-norm statistics that cannot be negative: a negative running variance makes every evaluation-mode output
# NaN (the square root of var + eps), a negative counter a division by zero in the cumulative average.
_NEVER_NEGATIVE = {"running_var": "a variance", "num_batches_tracked": "a count of batches"}


def _check_finite(array, name, source):
    """ValueError naming ``source`` and the tensor if ``array`` holds a NaN or an infinity."""
    xp = array_module(array)
    finite = xp.isfinite(array)
    if not bool(finite.all()):
        bad = array[~finite]
        raise ValueError(f"{source}: tensor {name!r} holds {bad.size} non-finite values ({int(xp.isnan(bad).sum())} "
                         f"NaN, {int(xp.isinf(bad).sum())} infinite): weights of a diverged run?")


def load(path):
    """Rebuild the model a weight file describes and load its weights: ``model = weights.load(path)``.

    The model has the file's architecture, dtype, preprocessing and class names, and is in training mode
    (call ``.eval()`` to predict).
    """
    from ..models import PLACEHOLDER_INIT, vgg

    path = os.fspath(path)
    record, _, tensors = _open(path)  # every size checked against the file before anything is allocated
    dtype = next((dtype for name, (_, dtype) in tensors.items() if not name.endswith(_COUNTER_SUFFIX)), "F32")
    model = vgg(**record["architecture"], weight_init=PLACEHOLDER_INIT, seed=0, dtype=_DTYPES[dtype])
    return load_into(model, path)
