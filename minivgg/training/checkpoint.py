"""Training checkpoints: everything a run needs to continue exactly where it stopped.

One safetensors file (arrays only, no pickle, nothing executable) holds the parameters (``param/NAME``),
batch-norm running statistics (``buffer/NAME``) and momentum buffers (``velocity/NAME``); its metadata
holds, as JSON, the schedule, the position in the data (epoch, step), the dropout layers' seeds (their masks
are keyed by the step and the sample, so a seed is their whole random state), the history so far, the sums of
the epoch's steps so far (loss, right answers, images: the epoch's training loss and error count them after a
resume) and the training settings. Nothing in it depends on how many processes wrote it: a checkpoint of N
data-parallel processes resumes on M.
It is written to a temporary file and renamed over the old one (``minivgg.files.atomic_write``), so a crash
mid-write never loses the last good checkpoint.

Reading trusts nothing in the header: the state is parsed once against its schema (``parse_state``), every
field of the type and range the training loop writes (settings as ``TrainSettings``' fields, the schedule as
``ReduceOnPlateau``'s, a position of whole numbers, a history of numeric entries, the data's fingerprint), so a
hand-edited ``"schedule": 5`` is a ValueError naming the file and the field, not a TypeError deep in a resumed
run. ``check_matches_model`` compares the tensors' names and shapes, read from the header alone, with a model
before anything is restored or written.
"""
import json
import os
import warnings

import numpy as np

from ..backend import get_backend
from ..files import atomic_write
from ..layers import dropout_layers

__all__ = ["save_checkpoint", "load_checkpoint", "read_checkpoint_state", "restore_model", "parse_state",
           "check_matches_model"]

FORMAT = "minivgg-checkpoint-1"


def _all_layers(model):
    for layer in getattr(model, "layers", [model]):
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
        else:
            yield layer


def _named_buffers(model):
    """``(name, layer, key)`` of the batch-norm running statistics (``layer.buffers[key]``): named as a VGG
    names them (torchvision's names), in any other model by the order of its batch-norm layers."""
    if hasattr(model, "named_buffers"):
        yield from model.named_buffers()
        return
    norms = [layer for layer in _all_layers(model) if hasattr(layer, "buffers")]
    for index, layer in enumerate(norms):
        for key in layer.buffers:
            yield f"batch_norm.{index}.{key}", layer, key


def save_checkpoint(path, model, optimizer, state):
    """Write ``model``'s parameters, ``optimizer``'s momentum buffers and the JSON-able dict ``state``."""
    from safetensors.numpy import save_file

    backend = get_backend()
    tensors = {f"param/{name}": np.ascontiguousarray(backend.to_host(layer.params[key]))
               for name, layer, key in model.named_parameters()}
    tensors.update({f"buffer/{name}": np.asarray(backend.to_host(layer.buffers[key]), order="C")  # keeps 0-d
                    for name, layer, key in _named_buffers(model)})
    tensors.update({f"velocity/{name}": np.ascontiguousarray(v) for name, v in optimizer.state_arrays().items()})
    state = dict(state, format=FORMAT, dropout=[d.seed for d in dropout_layers(model)])
    atomic_write(path, lambda temporary: save_file(tensors, temporary, metadata={"minivgg": json.dumps(state)}))


def load_checkpoint(path):
    """Read a checkpoint: ``(params, velocities, state)``, the first two dicts of NumPy arrays by name
    (``params`` holds the batch-norm running statistics too, under their names).

    Raises FileNotFoundError if missing, ValueError naming the file if it is not a minivgg checkpoint or
    is truncated or corrupt.
    """
    return _read_checkpoint(path, with_arrays=True)


def read_checkpoint_state(path):
    """The JSON state of a checkpoint (settings, schedule, position, history) without reading its arrays:
    cheap for a checkpoint of any size. Errors as ``load_checkpoint``."""
    return _read_checkpoint(path, with_arrays=False)[2]


def _read_checkpoint(path, with_arrays):
    from safetensors import safe_open

    from ..files import require_regular_file

    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    require_regular_file(path, "checkpoint")
    try:
        with safe_open(path, framework="np") as handle:
            metadata = handle.metadata() or {}
            arrays = {key: handle.get_tensor(key) for key in handle.keys()} if with_arrays else {}
    except Exception as error:  # safetensors raises its own error types for truncated or garbled files
        raise ValueError(f"{path} is not a readable checkpoint (truncated or corrupt?): {error}") from error
    if "minivgg" not in metadata:
        raise ValueError(f"{path} is a safetensors file but not a minivgg checkpoint (no training state)")
    try:
        state = json.loads(metadata["minivgg"])
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{path}: the training state in its header is not valid JSON ({error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else state
        raise ValueError(f"{path}: unknown checkpoint format {str(found)[:80]!r}, expected {FORMAT!r}")
    state = parse_state(state, path)
    params = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(("param/", "buffer/"))}
    velocities = {k[len("velocity/"):]: v for k, v in arrays.items() if k.startswith("velocity/")}
    return params, velocities, state


def restore_model(model, params, state):
    """Put checkpointed parameters, batch-norm statistics and dropout states into ``model``, checking every
    name and shape."""
    backend = get_backend()
    stores = [(name, layer.params, key) for name, layer, key in model.named_parameters()]
    stores += [(name, layer.buffers, key) for name, layer, key in _named_buffers(model)]
    names = {name for name, _, _ in stores}
    if names != set(params):
        raise ValueError(f"checkpoint parameters do not match the model: missing {sorted(names - set(params))}, "
                         f"unexpected {sorted(set(params) - names)}")
    for name, store, key in stores:
        if params[name].shape != store[key].shape:
            raise ValueError(f"parameter {name!r}: checkpoint has shape {params[name].shape}, the model "
                             f"{store[key].shape}")
    for name, store, key in stores:
        if key == "num_batches_tracked":  # a host counter
            store[key] = np.array(params[name], dtype=np.int64)
        else:
            store[key] = backend.asarray(params[name], dtype=store[key].dtype)
    dropouts = dropout_layers(model)
    if len(dropouts) != len(state["dropout"]):
        raise ValueError(f"checkpoint has {len(state['dropout'])} dropout states, the model {len(dropouts)} layers")
    for layer, saved in zip(dropouts, state["dropout"]):
        if isinstance(saved, list):  # an older checkpoint: [seed, forward calls] of a per-layer generator
            warnings.warn("this checkpoint comes from a minivgg whose dropout masks followed a per-layer "
                          "generator; the resumed run keys them by step and sample, so it continues with "
                          "different masks than the interrupted run would have drawn", stacklevel=2)
            saved = saved[0]
        layer.seed = int(saved)


# --- the schema of the state ---------------------------------------------------------------------------------------

_LARGEST_COUNT = 2 ** 53  # steps, epochs, positions: exact in a float, far beyond any run


def _field_error(source, field, expected, value):
    shown = json.dumps(value)[:80] if not isinstance(value, float) else repr(value)
    return ValueError(f"{source}: the checkpoint's {field} must be {expected}, got {shown}; the file is damaged "
                      f"or was edited by hand (nothing was changed)")


def _whole(value, field, source, minimum=0, maximum=_LARGEST_COUNT):
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise _field_error(source, field, f"a whole number from {minimum} to {maximum:,}", value)
    return value


def _number(value, field, source, low=None, high=None, finite=True, low_open=False):
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or (finite and not math.isfinite(value)) \
            or math.isnan(value) or (low is not None and (value < low or (low_open and value == low))) \
            or (high is not None and value > high):
        bounds = "" if low is None else f" {'>' if low_open else '>='} {low:g}"
        bounds += "" if high is None else f" and <= {high:g}"
        raise _field_error(source, field, f"a{' finite' if finite else ''} number{bounds}", value)
    return float(value) if isinstance(value, float) else value


def _boolean(value, field, source):
    if not isinstance(value, bool):
        raise _field_error(source, field, "true or false", value)
    return value


def _mapping(value, field, source, known, required=()):
    if not isinstance(value, dict):
        raise _field_error(source, field, f"an object with {', '.join(known)}", value)
    unknown, missing = sorted(set(value) - set(known)), [key for key in required if key not in value]
    if unknown or missing:
        raise ValueError(f"{source}: the checkpoint's {field} has unknown fields {unknown} and lacks {missing}; "
                         f"known: {list(known)} (nothing was changed)")
    return value


def _settings(value, source):
    from dataclasses import fields

    from .settings import TrainSettings

    names = [f.name for f in fields(TrainSettings)]
    value = _mapping(value, "settings", source, names, ["batch_size", "learning_rate", "max_epochs"])
    checks = {"batch_size": lambda v, f: _whole(v, f, source, 1), "learning_rate": lambda v, f: _number(
        v, f, source, 0, low_open=True), "momentum": lambda v, f: _number(v, f, source, 0),
        "weight_decay": lambda v, f: _number(v, f, source, 0), "decay_biases": lambda v, f: _boolean(v, f, source),
        "lr_factor": lambda v, f: _number(v, f, source, 0, 1, low_open=True),
        "patience": lambda v, f: _whole(v, f, source, 1), "max_lr_reductions": lambda v, f: _whole(v, f, source),
        "max_epochs": lambda v, f: _whole(v, f, source, 1), "checkpoint_every": lambda v, f: _whole(v, f, source)}
    return {key: checks[key](item, f"settings.{key}") for key, item in value.items()}


def _schedule(value, source):
    from dataclasses import fields

    from .schedule import ReduceOnPlateau

    names = [f.name for f in fields(ReduceOnPlateau)]
    value = _mapping(value, "schedule", source, names, names)
    checked = {"learning_rate": _number(value["learning_rate"], "schedule.learning_rate", source, 0, low_open=True),
               "factor": _number(value["factor"], "schedule.factor", source, 0, 1, low_open=True),
               "patience": _whole(value["patience"], "schedule.patience", source, 1),
               "max_reductions": _whole(value["max_reductions"], "schedule.max_reductions", source),
               "min_improvement": _number(value["min_improvement"], "schedule.min_improvement", source, 0),
               # -inf until the first epoch's validation
               "best": _number(value["best"], "schedule.best", source, finite=False),
               "epochs_without_improvement": _whole(value["epochs_without_improvement"],
                                                    "schedule.epochs_without_improvement", source),
               "reductions": _whole(value["reductions"], "schedule.reductions", source),
               "finished": _boolean(value["finished"], "schedule.finished", source)}
    if checked["reductions"] > checked["max_reductions"]:
        raise _field_error(source, "schedule.reductions", f"at most max_reductions ({checked['max_reductions']})",
                           checked["reductions"])
    return checked


def _position(value, source):
    value = _mapping(value, "position", source, ["epoch", "step", "global_step"], ["epoch", "step", "global_step"])
    return {key: _whole(item, f"position.{key}", source) for key, item in value.items()}


def _history(value, source):
    if not isinstance(value, list) or len(value) > _LARGEST_COUNT:
        raise _field_error(source, "history", "a list of per-epoch entries", value)
    for number, entry in enumerate(value):
        if not isinstance(entry, dict) or not all(
                isinstance(key, str) and (item is None or (isinstance(item, (int, float)) and not isinstance(item, bool)))
                for key, item in entry.items()):
            raise _field_error(source, f"history[{number}]", "an object of numbers", entry)
    return value


def _epoch_totals(value, source):
    names = ["loss_sum", "correct", "images", "seconds"]
    value = _mapping(value, "epoch_totals", source, names, names)
    totals = {"loss_sum": _number(value["loss_sum"], "epoch_totals.loss_sum", source),
              "correct": _whole(value["correct"], "epoch_totals.correct", source),
              "images": _whole(value["images"], "epoch_totals.images", source),
              "seconds": _number(value["seconds"], "epoch_totals.seconds", source, 0)}
    if totals["correct"] > totals["images"]:
        raise _field_error(source, "epoch_totals.correct", f"at most epoch_totals.images ({totals['images']})",
                           totals["correct"])
    return totals


def _dropout(value, source):
    if not isinstance(value, list):
        raise _field_error(source, "dropout", "a list of seeds", value)
    for number, seed in enumerate(value):
        parts = seed if isinstance(seed, list) and len(seed) == 2 else [seed]  # an older [seed, calls]
        for part in parts:
            _whole(part, f"dropout[{number}]", source, 0, 2 ** 64 - 1)
    return value


def parse_state(state, source):
    """A checkpoint's JSON state, every field checked against the schema the training loop writes (module
    docstring): the state as a dict whose every value has its stated type and range. ValueError naming
    ``source`` and the field for anything else."""
    from ..data.fingerprint import parse_fingerprints

    known = ["format", "settings", "schedule", "position", "history", "dropout", "dataset", "epoch_totals"]
    _mapping(state, "state", source, known, ["format", "dropout"])
    parsers = {"settings": _settings, "schedule": _schedule, "position": _position, "history": _history,
               "dropout": _dropout, "dataset": parse_fingerprints, "epoch_totals": _epoch_totals}
    # A training run writes every field; a checkpoint saved by other code may hold fewer, and a resume
    # refuses one without the training state (``settings.check_resumable``).
    return dict({"format": state["format"]}, **{key: None if state.get(key) is None else parse(state[key], source)
                                               for key, parse in parsers.items()})


def check_matches_model(path, model, state=None):
    """UsageError unless the checkpoint at ``path`` holds ``model``'s tensors, name for name and shape for
    shape, and a state for each of its dropout layers: read from the header alone, before anything is
    restored or written. A checkpoint of another net (another width, other classes) is named as such."""
    from safetensors import safe_open

    from ..errors import UsageError

    try:
        with safe_open(path, framework="np") as handle:
            shapes = {key.split("/", 1)[1]: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()
                      if key.startswith(("param/", "buffer/"))}
    except Exception as error:
        raise ValueError(f"{path} is not a readable checkpoint (truncated or corrupt?): {error}") from error
    expected = {name: tuple(layer.params[key].shape) for name, layer, key in model.named_parameters()}
    expected.update({name: tuple(layer.buffers[key].shape) for name, layer, key in _named_buffers(model)})
    missing, unexpected = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise UsageError(f"{path} holds another net than this run builds: tensors missing {missing[:5]}, unexpected "
                         f"{unexpected[:5]}; nothing was changed")
    differ = [(name, shapes[name], shape) for name, shape in expected.items() if shapes[name] != shape]
    if differ:
        name, saved, built = differ[0]
        last = [name for name, _, _ in model.named_parameters()][-2:]
        classes = " (the number of classes differs)" if name in last else ""
        raise UsageError(f"{path} holds another net than this run builds: {name!r} has shape {saved} there, "
                         f"{built} here{classes}; {len(differ)} tensors differ; nothing was changed")
    if state is not None and len(state["dropout"]) != len(dropout_layers(model)):
        raise UsageError(f"{path} has {len(state['dropout'])} dropout states, the net {len(dropout_layers(model))} "
                         f"dropout layers; nothing was changed")
