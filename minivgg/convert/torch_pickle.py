"""Read a PyTorch ``.pth`` state dict into NumPy arrays, without PyTorch and without running its code.

A ``.pth`` file is a pickle, and unpickling runs whatever callables the pickle names: loading an untrusted
one with ``pickle.load`` can run any code. ``RestrictedUnpickler`` admits only the handful of names a
state dict of float32 and int64 tensors needs (int64: batch norm's ``num_batches_tracked`` counters) and
refuses everything else before it is called, so a hostile file fails with a ValueError instead.

Two layouts exist (``torch/serialization.py``):

- **zip** (``torch.save`` since PyTorch 1.6): a zip archive with one top folder holding ``data.pkl`` (the
  pickle), ``data/<key>`` (the raw bytes of each storage) and ``byteorder`` ("little" or "big"; absent
  means little).
- **legacy** (older files, such as torchvision's 2017 VGG weights): five pickles one after the other
  (magic number, protocol version 1001, system info with the byte order, the object, the list of storage
  keys), then each storage as an 8-byte element count followed by its bytes.

In the pickle a tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
backward_hooks[, metadata])`` (``_rebuild_tensor(storage, offset, size, stride)`` before PyTorch 0.4),
and a storage is a persistent id ``("storage", torch.FloatStorage, key, location, numel)``, or
``torch.LongStorage`` for int64 (legacy files
add a sixth element, a view description, always None for files written by ``torch.save``). Offsets,
sizes and strides count elements.
"""
import io
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np

__all__ = ["RestrictedUnpickler", "read_state_dict"]

# Storage classes admitted, and the NumPy type of their elements (before the byte order is applied).
_STORAGE_TYPES = {"FloatStorage": np.dtype("f4"), "LongStorage": np.dtype("i8")}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class _StorageType:
    """Stands for ``torch.FloatStorage`` or ``torch.LongStorage`` in the pickle; carries only the element type."""

    __slots__ = ("name", "dtype")

    def __init__(self, name):
        self.name, self.dtype = name, _STORAGE_TYPES[name]

    def __repr__(self):
        return f"torch.{self.name}"

    def __setstate__(self, state):
        # BUILD opcodes could otherwise rewrite a validated placeholder from inside the pickle.
        raise ValueError("the pickle tries to set the state of a storage or tensor placeholder")


class _Storage:
    """A storage named in the pickle: its key, element type and length; the bytes are attached later."""

    __slots__ = ("key", "dtype", "numel", "data")

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel, self.data = key, dtype, numel, None

    def __setstate__(self, state):
        # BUILD opcodes could otherwise rewrite a validated placeholder from inside the pickle.
        raise ValueError("the pickle tries to set the state of a storage or tensor placeholder")


class _Tensor:
    """A tensor described in the pickle: a window (offset, size, stride) onto a storage."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, _Storage):
            raise ValueError(f"a tensor's storage must be a persistent storage reference, got {type(storage).__name__}")
        for name, value in (("size", size), ("stride", stride)):
            if not isinstance(value, tuple) or not all(isinstance(v, int) and v >= 0 for v in value):
                raise ValueError(f"a tensor's {name} must be a tuple of non-negative ints, got {value!r}")
        if not isinstance(offset, int) or offset < 0 or len(size) != len(stride):
            raise ValueError(f"bad tensor layout: offset {offset!r}, size {size!r}, stride {stride!r}")
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __setstate__(self, state):
        # BUILD opcodes could otherwise rewrite a validated placeholder from inside the pickle.
        raise ValueError("the pickle tries to set the state of a storage or tensor placeholder")

    def to_numpy(self):
        """A NumPy copy of the tensor, after checking that the window lies inside the storage."""
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) if all(self.size) else -1
        if last >= self.storage.numel:
            raise ValueError(f"tensor of size {self.size}, stride {self.stride}, offset {self.offset} reaches "
                             f"element {last} of storage {self.storage.key!r}, which has {self.storage.numel}")
        base = np.frombuffer(self.storage.data, dtype=self.storage.dtype, count=self.storage.numel)
        itemsize = base.dtype.itemsize
        window = np.lib.stride_tricks.as_strided(base[self.offset:], shape=self.size,
                                                 strides=[s * itemsize for s in self.stride], writeable=False)
        return window.astype(self.storage.dtype.newbyteorder("="), copy=True)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    # Hooks are never serialised by torch.save (an empty OrderedDict stands in); anything else is refused.
    if not isinstance(requires_grad, bool) or backward_hooks not in (None, {}) or metadata not in (None, {}):
        raise ValueError("a tensor in the file carries backward hooks or metadata; only plain tensors are read")
    return _Tensor(storage, storage_offset, size, stride)


def _torch_size(*args):
    return tuple(*args)


# Everything a state dict's pickle may name. Any other global is refused before it is looked up.
_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch", "Size"): _torch_size,
    **{("torch", name): _StorageType(name) for name in _STORAGE_TYPES},
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the names a state dict of float32 and int64 tensors needs (``_ALLOWED``).

    Storages (persistent ids) become ``_Storage`` placeholders collected in ``self.storages`` by key.
    """

    def __init__(self, file, source, legacy=False):
        super().__init__(file)
        self.source, self.legacy, self.storages = source, legacy, {}

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            if module == "torch" and name.endswith("Storage"):
                raise ValueError(f"{self.source}: holds torch.{name} tensors; only float32 (torch.FloatStorage) "
                                 f"and int64 (torch.LongStorage) tensors are read: save the floating-point "
                                 f"ones with .float() first") from None
            raise ValueError(
                f"{self.source}: refusing to unpickle {module}.{name}: only state dicts of float32 and int64 "
                f"tensors are read (a pickle can run code, so nothing else is admitted). If it is a whole pickled "
                f"model, re-save it with torch.save(model.state_dict(), path)") from None

    def persistent_load(self, saved_id):
        expected_length = 6 if self.legacy else 5
        if not isinstance(saved_id, tuple) or len(saved_id) != expected_length or saved_id[0] != "storage":
            raise ValueError(f"{self.source}: unexpected persistent id {saved_id!r}, expected "
                             f"('storage', type, key, location, numel{', view' if self.legacy else ''})")
        _, storage_type, key, location, numel = saved_id[:5]
        if not isinstance(storage_type, _StorageType):
            raise ValueError(f"{self.source}: storage {key!r} has type {storage_type!r}; only "
                             f"{sorted(_STORAGE_TYPES)} are read")
        if self.legacy and saved_id[5] is not None:
            raise ValueError(f"{self.source}: storage {key!r} is a view of another storage, which is not supported")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise ValueError(f"{self.source}: bad storage reference {saved_id!r}")
        if key in self.storages:
            stored = self.storages[key]
            if stored.dtype != storage_type.dtype or stored.numel != numel:
                raise ValueError(f"{self.source}: storage {key!r} is referenced with two different types or sizes")
            return stored
        self.storages[key] = _Storage(key, storage_type.dtype, numel)
        return self.storages[key]


def _to_arrays(state, source):
    """Check the unpickled object is a flat mapping of names to tensors; return NumPy copies."""
    if not isinstance(state, dict):
        raise ValueError(f"{source}: holds a {type(state).__name__}, not a state dict (a mapping of names to "
                         f"tensors)")
    arrays = OrderedDict()
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _Tensor):
            raise ValueError(f"{source}: entry {name!r} is a {type(value).__name__}, not a tensor; only flat state "
                             f"dicts are read")
        if value.storage.data is None:
            raise ValueError(f"{source}: the bytes of storage {value.storage.key!r} are missing")
        arrays[name] = value.to_numpy()
    return arrays


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(f"{path}: a PyTorch zip file has exactly one <folder>/data.pkl, found {pickles}")
        prefix = pickles[0][:-len("data.pkl")]
        byteorder = "little"
        if f"{prefix}byteorder" in archive.namelist():
            byteorder = archive.read(f"{prefix}byteorder").decode("ascii", "replace")
            if byteorder not in ("little", "big"):
                raise ValueError(f"{path}: unknown byte order {byteorder!r}")
        unpickler = RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), path)
        state = unpickler.load()
        for key, storage in unpickler.storages.items():
            record = f"{prefix}data/{key}"
            if record not in archive.namelist():
                raise ValueError(f"{path}: storage {key!r} is referenced but {record} is missing")
            data = archive.read(record)
            storage.dtype = storage.dtype.newbyteorder("<" if byteorder == "little" else ">")
            if len(data) != storage.numel * storage.dtype.itemsize:
                raise ValueError(f"{path}: {record} has {len(data)} bytes, expected {storage.numel} elements of "
                                 f"{storage.dtype.itemsize} bytes")
            storage.data = data
    return _to_arrays(state, path)


def _read_legacy(path):
    with open(path, "rb") as handle:
        def next_pickle():
            return RestrictedUnpickler(handle, path, legacy=True).load()

        try:
            magic = next_pickle()
        except (pickle.UnpicklingError, EOFError, ValueError) as error:
            raise ValueError(f"{path} is neither a PyTorch zip file nor a legacy PyTorch file: {error}") from error
        if magic != _LEGACY_MAGIC:
            raise ValueError(f"{path}: not a PyTorch file (magic number {magic!r})")
        protocol = next_pickle()
        if protocol != _LEGACY_PROTOCOL:
            raise ValueError(f"{path}: legacy PyTorch protocol {protocol!r}, expected {_LEGACY_PROTOCOL}")
        system = next_pickle()
        little = system.get("little_endian", True) if isinstance(system, dict) else True
        unpickler = RestrictedUnpickler(handle, path, legacy=True)
        state = unpickler.load()
        keys = next_pickle()
        if not isinstance(keys, list) or set(keys) != set(unpickler.storages):
            raise ValueError(f"{path}: the storage key list does not match the storages the pickle uses")
        order = "<" if little else ">"
        for key in keys:
            storage = unpickler.storages[key]
            header = handle.read(8)
            if len(header) != 8:
                raise ValueError(f"{path}: file ends before storage {key!r} (truncated?)")
            (numel,) = struct.unpack(order + "q", header)
            if numel != storage.numel:
                raise ValueError(f"{path}: storage {key!r} has {numel} elements on disk, {storage.numel} in the pickle")
            storage.dtype = storage.dtype.newbyteorder(order)
            storage.data = handle.read(numel * storage.dtype.itemsize)
            if len(storage.data) != numel * storage.dtype.itemsize:
                raise ValueError(f"{path}: file ends inside storage {key!r} (truncated?)")
    return _to_arrays(state, path)


def read_state_dict(path):
    """The tensors of a PyTorch state-dict file (zip or legacy layout) as NumPy arrays, by name, in order.

    Parameters
    ----------
    path : str or path-like, e.g. torchvision's ``vgg16-397923af.pth``

    Returns
    -------
    OrderedDict of name -> float32 or int64 NumPy array (native byte order), as ``torch.load(path)`` would
    give tensors.

    Raises ValueError (naming the file) for anything but a state dict of float32 and int64 tensors, including
    any pickle that names another callable; FileNotFoundError if the file is missing.
    """
    import os

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no PyTorch file at {path}")
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        return _read_legacy(path)
    except (ValueError, MemoryError):
        raise
    except Exception as error:  # pickle, zipfile and struct errors of truncated or garbled files
        raise ValueError(f"{path}: not a readable PyTorch state dict (truncated or corrupt?): "
                         f"{type(error).__name__}: {error}") from error
