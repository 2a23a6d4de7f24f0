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

A hostile file may also try to exhaust memory or the C stack rather than run code, so every size it
declares is checked before anything of that size is allocated or read: a pickle may nest containers at most
``MAX_NESTING`` deep (hashing a 200000-deep tuple overflows the C stack), checked by walking its opcodes
before it is unpickled; a tensor may not hold more elements than its storage (a stride-0 view declaring
10^12 elements); a storage's declared size must equal the bytes the file holds for it (the zip entry's
size, or what is left of a legacy file) before they are read, and every read is bounded by it; a zip entry
may not expand more than ``MAX_COMPRESSION_RATIO`` times (``torch.save`` stores entries uncompressed).
"""
import io
import math
import os
import pickle
import pickletools
import struct
import zipfile
from collections import OrderedDict

import numpy as np

__all__ = ["RestrictedUnpickler", "read_state_dict", "check_nesting", "MAX_NESTING", "MAX_PICKLE_BYTES",
           "MAX_COMPRESSION_RATIO"]

# A state dict nests containers about five deep (dict, REDUCE arguments, size tuple, ...).
MAX_NESTING = 100
# A state dict's pickle holds names and shapes, not tensor bytes: some kilobytes for VGG.
MAX_PICKLE_BYTES = 64 * 2 ** 20
# Float weights barely compress, and torch.save stores every entry uncompressed.
MAX_COMPRESSION_RATIO = 100

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
        # Overlapping windows (stride 0) could declare any number of elements over a one-element storage;
        # a state dict's tensors never overlap, so more elements than the storage holds is refused here,
        # before the copy in to_numpy would allocate them.
        if math.prod(size) > storage.numel:
            raise ValueError(f"a tensor of size {size} (stride {stride}) declares {math.prod(size)} elements, more "
                             f"than the {storage.numel} its storage {storage.key!r} holds")
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


# Opcodes that add to the container below their arguments instead of making a new object.
_IN_PLACE = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}
_PUT, _GET = {"PUT", "BINPUT", "LONG_BINPUT"}, {"GET", "BINGET", "LONG_BINGET"}


def check_nesting(stream, source, limit=MAX_NESTING):
    """Walk the opcodes of one pickle (bytes or a file positioned at it) and refuse it if it nests
    containers more than ``limit`` deep, before the pickle is unpickled.

    The walk mirrors the unpickler's stack with each object's nesting depth: a new object is one deeper
    than the deepest object it is made of; APPEND, SETITEM and the like make the container at least one
    deeper than what they add; memo lookups give the depth the object had when it was stored. Nothing is
    built and no name is looked up. A file stream is returned to where it started.
    """
    start = stream.tell() if hasattr(stream, "tell") else None
    stack, marks, memo = [], [], {}
    try:
        for opcode, argument, _ in pickletools.genops(stream):
            name, before, after = opcode.name, opcode.stack_before, opcode.stack_after
            if name == "MARK":
                marks.append(len(stack))
                continue
            if name in _PUT or name == "MEMOIZE":
                memo[len(memo) if name == "MEMOIZE" else argument] = stack[-1]
                continue
            if name in _GET:
                stack.append(memo.get(argument, 0))
                continue
            if name == "DUP":
                stack.append(stack[-1])
                continue
            if name == "POP" and marks and marks[-1] == len(stack):  # POP of a mark drops the mark
                marks.pop()
                continue
            if pickletools.markobject in before:
                top = marks.pop()
                popped = stack[top:]
                del stack[top:]
                below = before.index(pickletools.markobject)
            else:
                popped, below = [], len(before)
            if below:
                popped = stack[-below:] + popped
                del stack[-below:]
            if name in _IN_PLACE:
                depth = max(popped[0], 1 + max(popped[1:], default=-1))
            else:
                depth = 1 + max(popped) if popped else 0
            if depth > limit:
                raise ValueError(f"{source}: the pickle nests containers more than {limit} deep; a state dict "
                                 f"nests about five (a crafted file?)")
            stack.extend([depth] * len(after))
    except IndexError:  # the walk found fewer objects than an opcode takes
        raise ValueError(f"{source}: the pickle's opcodes do not form a valid pickle") from None
    if start is not None:
        stream.seek(start)


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
    """Check the unpickled object is a flat mapping of names to tensors; return NumPy copies.

    The tensors over one storage may not together hold more elements than it does (a state dict's tensors
    never overlap), so the copies never take more memory than the file's own tensor bytes.
    """
    if not isinstance(state, dict):
        raise ValueError(f"{source}: holds a {type(state).__name__}, not a state dict (a mapping of names to "
                         f"tensors)")
    on_storage = {}
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _Tensor):
            raise ValueError(f"{source}: entry {name!r} is a {type(value).__name__}, not a tensor; only flat state "
                             f"dicts are read")
        if value.storage.data is None:
            raise ValueError(f"{source}: the bytes of storage {value.storage.key!r} are missing")
        on_storage.setdefault(value.storage.key, []).append(name)
    for key, names in on_storage.items():
        storage, total = state[names[0]].storage, sum(math.prod(state[name].size) for name in names)
        if total > storage.numel:
            raise ValueError(f"{source}: tensors {names[:3]}{' ...' if len(names) > 3 else ''} together declare "
                             f"{total} elements over storage {key!r}, which holds {storage.numel}; a state dict's "
                             f"tensors do not overlap")
    return OrderedDict((name, value.to_numpy()) for name, value in state.items())


def _read_entry(archive, name, size, path, what):
    """The ``size`` bytes of zip entry ``name``, its sizes checked against ``size`` before reading."""
    info = archive.getinfo(name)
    if info.file_size != size:
        raise ValueError(f"{path}: {name} holds {info.file_size} bytes, {what}")
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
        raise ValueError(f"{path}: {name} expands from {info.compress_size} to {info.file_size} bytes, more than "
                         f"{MAX_COMPRESSION_RATIO} times (a zip bomb?); torch.save stores entries uncompressed")
    with archive.open(info) as entry:
        data = entry.read(size)  # never more than declared, whatever the entry's data says
    if len(data) != size:
        raise ValueError(f"{path}: {name} ends after {len(data)} of its {size} bytes (truncated?)")
    return data


def _entry_size(archive, name, path, limit):
    size = archive.getinfo(name).file_size
    if size > limit:
        raise ValueError(f"{path}: {name} declares {size} bytes, more than the {limit} such an entry can need")
    return size


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(f"{path}: a PyTorch zip file has exactly one <folder>/data.pkl, found {pickles}")
        prefix = pickles[0][:-len("data.pkl")]
        byteorder = "little"
        if f"{prefix}byteorder" in names:
            record = f"{prefix}byteorder"
            byteorder = _read_entry(archive, record, _entry_size(archive, record, path, 16), path, "")
            byteorder = byteorder.decode("ascii", "replace")
            if byteorder not in ("little", "big"):
                raise ValueError(f"{path}: unknown byte order {byteorder!r}")
        size = _entry_size(archive, pickles[0], path, MAX_PICKLE_BYTES)
        data = _read_entry(archive, pickles[0], size, path, "")
        check_nesting(data, path)
        unpickler = RestrictedUnpickler(io.BytesIO(data), path)
        state = unpickler.load()
        for key, storage in unpickler.storages.items():
            record = f"{prefix}data/{key}"
            if record not in names:
                raise ValueError(f"{path}: storage {key!r} is referenced but {record} is missing")
            storage.dtype = storage.dtype.newbyteorder("<" if byteorder == "little" else ">")
            expected = storage.numel * storage.dtype.itemsize
            storage.data = _read_entry(archive, record, expected, path,
                                       f"expected {storage.numel} elements of {storage.dtype.itemsize} bytes")
    return _to_arrays(state, path)


def _read_legacy(path):
    with open(path, "rb") as handle:
        file_size = os.fstat(handle.fileno()).st_size

        def unpickler():
            check_nesting(handle, path)
            return RestrictedUnpickler(handle, path, legacy=True)

        try:
            magic = unpickler().load()
        except (pickle.UnpicklingError, EOFError, ValueError) as error:
            raise ValueError(f"{path} is neither a PyTorch zip file nor a legacy PyTorch file: {error}") from error
        if magic != _LEGACY_MAGIC:
            raise ValueError(f"{path}: not a PyTorch file (magic number {magic!r})")
        protocol = unpickler().load()
        if protocol != _LEGACY_PROTOCOL:
            raise ValueError(f"{path}: legacy PyTorch protocol {protocol!r}, expected {_LEGACY_PROTOCOL}")
        system = unpickler().load()
        little = system.get("little_endian", True) if isinstance(system, dict) else True
        state_unpickler = unpickler()
        state = state_unpickler.load()
        keys = unpickler().load()
        if not isinstance(keys, list) or set(keys) != set(state_unpickler.storages):
            raise ValueError(f"{path}: the storage key list does not match the storages the pickle uses")
        order = "<" if little else ">"
        for key in keys:
            storage = state_unpickler.storages[key]
            header = handle.read(8)
            if len(header) != 8:
                raise ValueError(f"{path}: file ends before storage {key!r} (truncated?)")
            (numel,) = struct.unpack(order + "q", header)
            if numel != storage.numel:
                raise ValueError(f"{path}: storage {key!r} has {numel} elements on disk, {storage.numel} in the pickle")
            storage.dtype = storage.dtype.newbyteorder(order)
            size = numel * storage.dtype.itemsize
            if size > file_size - handle.tell():  # checked before the read allocates them
                raise ValueError(f"{path}: file ends inside storage {key!r} (truncated?): it declares {numel} "
                                 f"elements ({size} bytes), the file has {file_size - handle.tell()} bytes left")
            storage.data = handle.read(size)
            if len(storage.data) != size:
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
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no PyTorch file at {path}")
    if not os.path.isfile(path):
        raise ValueError(f"{path} is not a regular file (a folder or a device?)")
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        return _read_legacy(path)
    except ValueError as error:
        if path in str(error):
            raise
        # Raised while unpickling by the tensor placeholders, which do not know the file.
        raise ValueError(f"{path}: {error}") from error
    except MemoryError:
        raise
    except Exception as error:  # pickle, zipfile and struct errors of truncated or garbled files
        raise ValueError(f"{path}: not a readable PyTorch state dict (truncated or corrupt?): "
                         f"{type(error).__name__}: {error}") from error
