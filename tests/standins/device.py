"""The simulated device under the CuPy stand-in: GPUs, their memory, pools, streams, events and capture.

Memory. Each allocation is a ``Block``: a range of made-up device addresses (``ptr``) backed by NumPy bytes.
Arrays are views of blocks, and anyone holding a raw pointer (the cuDNN and NCCL stand-ins, a recorded
graph) turns it back into an array with ``array_at``, which fails for an address no live block contains.
Pools keep freed blocks for reuse as CuPy's do (a block is handed out again, same address, to the stream that
allocated it), and
``free_all_blocks`` gives them back to the device. A block counts a *generation*: reusing it starts a new
one, so a pointer kept from an older generation is known to dangle.

Streams and ordering. Work runs at once, in program order, but each block remembers the stream and the
position in that stream of its last write and reads. Another stream may touch it only when ordered after
that work: the same stream, an event waited on (``wait_event``), a host synchronisation that covered it, or
the legacy default stream's implicit barrier with blocking streams. Anything else is a race on a real GPU
and a ``StandinRaceError`` here.

Capture. While a stream captures, the work launched on it is recorded on a tape instead of run (a real
capture runs nothing either); ``Graph.launch`` replays the tape, checking first that every block it
touches is still the one it recorded: in use, or freed during the capture itself (a private temporary), or
freed into the pool the capture allocated from (no one else allocates there); never handed out again or
returned to the device.
"""
import bisect
import os
import threading
import weakref

import numpy as np

from .counting import COUNTS

ALIGNMENT = 512
BASE_ADDRESS = 0x7F0000000000


class StandinRaceError(RuntimeError):
    """Two streams touch one block without an ordering between them (a data race on a real GPU)."""


class StandinDanglingPointer(RuntimeError):
    """A pointer refers to memory that is free, reused or returned to the device."""


class CUDARuntimeError(RuntimeError):
    """The stand-in of ``cupy.cuda.runtime.CUDARuntimeError``: a CUDA runtime call failed."""

    def __init__(self, status, message):
        self.status = status
        super().__init__(f"{message}")


# --- devices ------------------------------------------------------------------------------------------------

def _visible_devices():
    """Physical indices of the GPUs this process sees: ``STANDIN_GPUS`` on the machine (default 1), narrowed
    by ``CUDA_VISIBLE_DEVICES`` as CUDA does, or, with ``STANDIN_VISIBLE_DEVICE_PER_RANK=1``, the one GPU
    a scheduler gives each MPI rank (its local rank's)."""
    physical = int(os.environ.get("STANDIN_GPUS", "1"))
    if os.environ.get("STANDIN_VISIBLE_DEVICE_PER_RANK") == "1":
        local_rank = int(os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", "0"))
        return [local_rank] if local_rank < physical else []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return list(range(physical))
    visible = []
    for item in listed.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) >= physical:
            break  # CUDA stops at the first invalid entry
        visible.append(int(item))
    return visible


class _State(threading.local):
    def __init__(self):
        self.device = 0
        self.streams = {}       # device -> current stream
        self.allocator = None   # None: the default pool's malloc


STATE = _State()


def device_count():
    return len(_visible_devices())


def check_device(device):
    if not 0 <= device < device_count():
        raise CUDARuntimeError(101, f"cudaErrorInvalidDevice: invalid device ordinal ({device} of "
                                    f"{device_count()} visible)")


def physical_device(device):
    return _visible_devices()[device]


# --- memory -------------------------------------------------------------------------------------------------

class Block:
    """One device allocation: ``size`` bytes at ``ptr`` on ``device``."""

    def __init__(self, ptr, size, device):
        self.ptr, self.size, self.device = ptr, size, device
        self.bytes = np.zeros(size, np.uint8)
        self.generation = 0
        self.in_use = False
        self.released = False
        self.pool = None
        self.writer = None         # (stream, position) of the last write
        self.readers = {}          # stream -> position of its last read


class _Registry:
    """Every live block by address, to turn raw pointers back into memory."""

    def __init__(self):
        self.starts, self.blocks = [], []
        self.next_address = BASE_ADDRESS

    def new_block(self, size, device):
        rounded = -(-max(size, 1) // ALIGNMENT) * ALIGNMENT
        block = Block(self.next_address, rounded, device)
        self.next_address += rounded + ALIGNMENT  # a gap: an overrun lands in no block
        self.starts.append(block.ptr)
        self.blocks.append(block)
        return block

    def release(self, block):
        index = bisect.bisect_left(self.starts, block.ptr)
        del self.starts[index], self.blocks[index]
        block.released = True

    def find(self, ptr):
        index = bisect.bisect_right(self.starts, ptr) - 1
        if index >= 0 and ptr < self.starts[index] + self.blocks[index].size:
            return self.blocks[index]
        return None


REGISTRY = _Registry()


def array_at(ptr, shape, strides, dtype, what="pointer"):
    """The NumPy view of device memory at ``ptr`` with ``shape`` and byte ``strides``; the block it lies in."""
    dtype = np.dtype(dtype)
    block = REGISTRY.find(ptr)
    if block is None:
        raise StandinDanglingPointer(f"{what} {ptr:#x} lies in no allocated device memory")
    if not block.in_use:
        raise StandinDanglingPointer(f"{what} {ptr:#x} points into a freed block (returned to its pool)")
    offset = ptr - block.ptr
    extent = sum((d - 1) * s for d, s in zip(shape, strides) if d > 0) + dtype.itemsize if all(shape) else 0
    if offset + extent > block.size or any(s < 0 for s in strides):
        raise StandinDanglingPointer(f"{what} {ptr:#x} with shape {tuple(shape)} and strides {tuple(strides)} "
                                     f"runs past the end of its {block.size}-byte block")
    view = np.ndarray(shape, dtype, buffer=block.bytes, offset=offset, strides=strides)
    return view, block


class PooledMemory:
    """A block lent by a pool; returned to it when the last array using it goes (CuPy's ``PooledMemory``)."""

    def __init__(self, block, pool):
        self.block, self.pool = block, pool
        self.ptr, self.size, self.device_id = block.ptr, block.size, block.device

    def __del__(self):
        pool = self.pool
        if pool is not None:
            pool._free(self.block)


class MemoryPointer:
    """CuPy's ``MemoryPointer``: ``mem`` (the allocation) and ``ptr`` (an address in it)."""

    def __init__(self, mem, offset):
        self.mem, self.ptr, self.device_id = mem, mem.ptr + offset, mem.device_id

    def __add__(self, offset):
        return MemoryPointer(self.mem, self.ptr - self.mem.ptr + offset)


class MemoryPool:
    """The stand-in of ``cupy.cuda.MemoryPool``: blocks kept for reuse, per device and per stream, in 512-byte
    sizes.

    As CuPy's pool, it hands a freed block only to a later allocation on the stream that allocated it (work on
    one stream runs in order, so that allocation's work comes after every use on that stream). A reused block
    keeps the history of its memory: a read queued on another stream before the free, and not ordered before
    the new owner's first write, is a race (``touch``), as it is on a GPU.
    """

    def __init__(self, allocator=None):
        self._free_blocks = {}     # (device, size, stream) -> [Block]
        self._blocks = set()       # every block this pool holds (in use or free)
        self.standin_peak_bytes = 0

    def malloc(self, size):
        device = STATE.device
        rounded = -(-max(int(size), 1) // ALIGNMENT) * ALIGNMENT
        key = (device, rounded, current_stream().ptr)
        free = self._free_blocks.get(key)
        if free:
            block = free.pop()
            block.generation += 1
        else:
            block = REGISTRY.new_block(rounded, device)
            block.pool = weakref.ref(self)
            self._blocks.add(block)
            self.standin_peak_bytes = max(self.standin_peak_bytes, self.total_bytes())
            block.writer, block.readers = None, {}
        block.in_use, block.free_key = True, key
        COUNTS.add("allocations")
        COUNTS.add("bytes_allocated", int(size))
        COUNTS.allocation_sizes[int(size)] += 1
        return MemoryPointer(PooledMemory(block, self), 0)

    def _free(self, block):
        block.in_use = False
        self._free_blocks.setdefault(block.free_key, []).append(block)

    def used_bytes(self):
        return sum(block.size for block in self._blocks if block.in_use)

    def free_bytes(self):
        return sum(block.size for block in self._blocks if not block.in_use)

    def total_bytes(self):
        return sum(block.size for block in self._blocks)

    def n_free_blocks(self):
        return sum(len(blocks) for blocks in self._free_blocks.values())

    def free_all_blocks(self, stream=None):
        for blocks in self._free_blocks.values():
            for block in blocks:
                REGISTRY.release(block)
                self._blocks.discard(block)
        self._free_blocks.clear()


DEFAULT_POOL = MemoryPool()


def malloc(nbytes):
    """Allocate with the current allocator (``using_allocator``), else the default pool."""
    allocator = STATE.allocator
    return allocator(nbytes) if allocator is not None else DEFAULT_POOL.malloc(nbytes)


# --- streams and events -------------------------------------------------------------------------------------

class Stream:
    """The stand-in of ``cupy.cuda.Stream``; ``Stream.null`` is the legacy default stream (ptr 0)."""

    _next_ptr = 0x5000

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        if null:
            self.ptr, self.non_blocking = 0, False
        else:
            Stream._next_ptr += 0x10
            self.ptr, self.non_blocking = Stream._next_ptr, bool(non_blocking)
        self.device_id = STATE.device
        self.position = 0          # work items launched on this stream so far
        self.known = {}            # other stream -> the position this stream is ordered after
        self.tape = None           # a list while capturing
        self._stack = []
        _STREAMS[self.ptr] = self

    # context manager: the current stream of its device
    def __enter__(self):
        self._stack.append(STATE.streams.get(self.device_id))
        STATE.streams[self.device_id] = self
        return self

    def __exit__(self, *exc):
        STATE.streams[self.device_id] = self._stack.pop()

    def use(self):
        STATE.streams[self.device_id] = self
        return self

    def synchronize(self):
        if self.tape is not None:
            raise CUDARuntimeError(900, "cudaErrorStreamCaptureUnsupported: operation not permitted when "
                                        "stream is capturing (synchronize)")
        COUNTS.host_sync("stream.synchronize")
        HOST_COMPLETED[self] = self.position

    @property
    def done(self):
        return True

    def record(self, event=None):
        event = Event() if event is None else event
        event.record(self)
        return event

    def wait_event(self, event):
        if event.stream is not None:
            self.known[event.stream] = max(self.known.get(event.stream, 0), event.position)
            if event.stream.tape is not None and self.tape is None:
                self.tape = event.stream.tape  # joining a capture: this stream's work is recorded too
            self.position += 1

    def begin_capture(self, mode=None):
        if self.ptr == 0:
            raise RuntimeError("cannot capture on the default (legacy) stream")
        self.tape = Tape(self)

    def is_capturing(self):
        return self.tape is not None

    def end_capture(self):
        tape, self.tape = self.tape, None
        for stream in _STREAMS.values():
            if stream.tape is tape:
                stream.tape = None
        tape.close()
        return Graph(tape)


_STREAMS = weakref.WeakValueDictionary()
HOST_COMPLETED = weakref.WeakKeyDictionary()  # stream -> position the host has seen completed
NULL_STREAM = Stream(null=True)


def current_stream():
    return STATE.streams.get(STATE.device) or NULL_STREAM


def _ordered(stream, other, position):
    """Whether work now launched on ``stream`` runs after ``other``'s work up to ``position``."""
    if stream is other or HOST_COMPLETED.get(other, -1) >= position or stream.known.get(other, -1) >= position:
        return True
    # the legacy default stream waits for, and is waited for by, every blocking stream
    return (stream.ptr == 0 and not other.non_blocking) or (other.ptr == 0 and not stream.non_blocking)


def touch(reads, writes, what, stream=None):
    """Check and note the ordering of an operation on ``stream`` that reads and writes these blocks."""
    stream = current_stream() if stream is None else stream
    stream.position += 1
    for block in list(reads) + list(writes):
        if block.writer is not None and not _ordered(stream, *block.writer):
            raise StandinRaceError(f"{what} on stream {stream.ptr:#x} touches memory at {block.ptr:#x} written on "
                                   f"stream {block.writer[0].ptr:#x} with nothing ordering them (an event, a "
                                   f"synchronisation): a race on a GPU")
    for block in writes:
        for reader, position in block.readers.items():
            if not _ordered(stream, reader, position):
                raise StandinRaceError(f"{what} on stream {stream.ptr:#x} overwrites memory at {block.ptr:#x} that "
                                       f"stream {reader.ptr:#x} may still be reading: a race on a GPU")
    for block in reads:
        block.readers[stream] = stream.position
    for block in writes:
        block.writer, block.readers = (stream, stream.position), {}


class Event:
    """The stand-in of ``cupy.cuda.Event``: a position in a stream's work."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.stream, self.position = None, 0

    def record(self, stream=None):
        self.stream = current_stream() if stream is None else stream
        self.position = self.stream.position

    @property
    def done(self):
        return True

    def synchronize(self):
        COUNTS.host_sync("event.synchronize")
        if self.stream is not None:
            HOST_COMPLETED[self.stream] = max(HOST_COMPLETED.get(self.stream, 0), self.position)


def synchronize_device():
    if any(stream.tape is not None for stream in _STREAMS.values()):
        raise CUDARuntimeError(900, "cudaErrorStreamCaptureUnsupported: device synchronisation while a stream "
                                    "is capturing")
    COUNTS.host_sync("device.synchronize")
    for stream in list(_STREAMS.values()):
        HOST_COMPLETED[stream] = stream.position


# --- capture ------------------------------------------------------------------------------------------------

class Tape:
    """The work recorded by a capturing stream: ``(run, blocks)`` items, ``run()`` doing one item's work."""

    def __init__(self, stream):
        self.stream, self.items, self.blocks = stream, [], {}
        self.free_at_end = set()
        # the pool capture allocates from (``using_allocator``): its free blocks stay the graph's own
        self.private_pool = getattr(STATE.allocator, "__self__", None)

    def record(self, run, blocks):
        for block in blocks:  # a block reused within the capture counts with its latest generation
            self.blocks[id(block)] = (block, block.generation)
        self.items.append(run)

    def close(self):
        self.free_at_end = {key for key, (block, _) in self.blocks.items() if not block.in_use}


class Graph:
    """The stand-in of ``cupy.cuda.Graph``: a closed tape, replayed by ``launch``."""

    def __init__(self, tape):
        self._tape = tape

    def launch(self, stream=None):
        stream = current_stream() if stream is None else stream
        for key, (block, generation) in self._tape.blocks.items():
            if block.released:
                raise StandinDanglingPointer(f"graph replay: memory at {block.ptr:#x} was returned to the device "
                                             f"after the capture")
            if block.generation != generation:
                raise StandinDanglingPointer(f"graph replay: memory at {block.ptr:#x} was freed and handed out "
                                             f"again after the capture (a dangling pointer in the graph)")
            private = block.pool is not None and block.pool() is self._tape.private_pool is not None
            if not block.in_use and key not in self._tape.free_at_end and not private:
                raise StandinDanglingPointer(f"graph replay: memory at {block.ptr:#x} was in use when captured "
                                             f"and freed since into a pool others allocate from (a dangling "
                                             f"pointer in the graph)")
        COUNTS.add("graph_launches")
        blocks = [block for block, _ in self._tape.blocks.values()]
        touch(blocks, blocks, "graph launch", stream)
        from threadpoolctl import threadpool_limits
        with threadpool_limits(1, user_api="blas"):  # OpenBLAS's threads crawl on a busy machine
            for run in self._tape.items:
                run()

    def upload(self, stream=None):
        pass
