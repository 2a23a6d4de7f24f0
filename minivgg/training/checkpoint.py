"""Training checkpoints: everything a run needs to continue exactly where it stopped.

One safetensors file (arrays only, no pickle, nothing executable) holds the parameters (``param/NAME``),
batch-norm running statistics (``buffer/NAME``) and momentum buffers (``velocity/NAME``); its metadata
holds, as JSON, the schedule, the position in the data (epoch, step), the dropout layers' seeds (their masks
are keyed by the step and the sample, so a seed is their whole random state), the history so far and the
training settings. Nothing in it depends on how many processes wrote it: a checkpoint of N data-parallel
processes resumes on M.
It is written to a temporary file and renamed over the old one (``minivgg.files.atomic_write``), so a crash
mid-write never loses the last good checkpoint.
"""
import json
import os
import warnings

import numpy as np

from ..backend import get_backend
from ..files import atomic_write
from ..layers import dropout_layers

__all__ = ["save_checkpoint", "load_checkpoint", "read_checkpoint_state", "restore_model"]

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

    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
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
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the training state in its header is not valid JSON ({error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else state
        raise ValueError(f"{path}: unknown checkpoint format {found!r}, expected {FORMAT!r}")
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
