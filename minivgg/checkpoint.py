"""Training checkpoints: everything a run needs to continue exactly where it stopped.

One safetensors file (arrays only, no pickle, nothing executable) holds the parameters (``param/NAME``) and
momentum buffers (``velocity/NAME``); its metadata holds, as JSON, the schedule, the position in the
data (epoch, step), the dropout layers' seeds (their masks are keyed by the step and the sample, so a seed is
their whole random state), the history so far and the training settings. Nothing in it depends on how many
processes wrote it: a checkpoint of N data-parallel processes resumes on M.
It is written to a temporary file and renamed over the old one, so a crash mid-write never loses the last
good checkpoint.
"""
import json
import os
import warnings

import numpy as np

from .backend import get_backend
from .layers import dropout_layers

__all__ = ["save_checkpoint", "load_checkpoint", "restore_model"]

FORMAT = "minivgg-checkpoint-1"


def atomic_write(path, write):
    """Call ``write(temporary_path)``, then rename the result onto ``path`` in one step (POSIX rename)."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def save_checkpoint(path, model, optimizer, state):
    """Write ``model``'s parameters, ``optimizer``'s momentum buffers and the JSON-able dict ``state``."""
    from safetensors.numpy import save_file

    backend = get_backend()
    tensors = {f"param/{name}": np.ascontiguousarray(backend.to_host(layer.params[key]))
               for name, layer, key in model.named_parameters()}
    tensors.update({f"velocity/{name}": np.ascontiguousarray(v) for name, v in optimizer.state_arrays().items()})
    state = dict(state, format=FORMAT, dropout=[d.seed for d in dropout_layers(model)])
    atomic_write(path, lambda temporary: save_file(tensors, temporary, metadata={"minivgg": json.dumps(state)}))


def load_checkpoint(path):
    """Read a checkpoint: ``(params, velocities, state)``, the first two dicts of NumPy arrays by name.

    Raises FileNotFoundError if missing, ValueError naming the file if it is not a minivgg checkpoint or
    is truncated or corrupt.
    """
    from safetensors import safe_open

    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(path, framework="np") as handle:
            metadata = handle.metadata() or {}
            arrays = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # safetensors raises its own error types for truncated or garbled files
        raise ValueError(f"{path} is not a readable checkpoint (truncated or corrupt?): {error}") from error
    if "minivgg" not in metadata:
        raise ValueError(f"{path} is a safetensors file but not a minivgg checkpoint (no training state)")
    state = json.loads(metadata["minivgg"])
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown checkpoint format {state.get('format')!r}, expected {FORMAT!r}")
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    velocities = {k[len("velocity/"):]: v for k, v in arrays.items() if k.startswith("velocity/")}
    return params, velocities, state


def restore_model(model, params, state):
    """Put checkpointed parameters and dropout states into ``model``, checking every name and shape."""
    backend = get_backend()
    names = {name for name, _, _ in model.named_parameters()}
    if names != set(params):
        raise ValueError(f"checkpoint parameters do not match the model: missing {sorted(names - set(params))}, "
                         f"unexpected {sorted(set(params) - names)}")
    for name, layer, key in model.named_parameters():
        if params[name].shape != layer.params[key].shape:
            raise ValueError(f"parameter {name!r}: checkpoint has shape {params[name].shape}, the model "
                             f"{layer.params[key].shape}")
        layer.params[key] = backend.asarray(params[name], dtype=layer.params[key].dtype)
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
