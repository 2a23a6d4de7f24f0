"""STAND-IN for ``cupy.cuda`` (tests only): devices, streams, events, memory pools, graph capture.

Names and signatures follow CuPy 14.2 (``cupy/cuda/device.pyx``, ``stream.pyx``, ``graph.pyx``,
``memory.pyx``); the behaviour is the simulated device's (``standins.device``).
"""
import contextlib

from standins import device as _device

from . import nccl, runtime  # noqa: F401

Stream = _device.Stream
Stream.null = _device.NULL_STREAM
Event = _device.Event
Graph = _device.Graph
MemoryPool = _device.MemoryPool
MemoryPointer = _device.MemoryPointer
PooledMemory = _device.PooledMemory


class Device:
    """The stand-in of ``cupy.cuda.Device(device=None)``: the current device when ``device`` is None."""

    def __init__(self, device=None):
        self.id = _device.STATE.device if device is None else int(device)
        self._previous = []

    def use(self):
        _device.check_device(self.id)
        _device.STATE.device = self.id

    def __enter__(self):
        _device.check_device(self.id)
        self._previous.append(_device.STATE.device)
        _device.STATE.device = self.id
        return self

    def __exit__(self, *exc):
        _device.STATE.device = self._previous.pop()

    def synchronize(self):
        _device.synchronize_device()

    @property
    def pci_bus_id(self):
        _device.check_device(self.id)
        return f"0000:{0x17 + _device.physical_device(self.id):02X}:00.0"

    @property
    def compute_capability(self):
        return "90"

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id} (stand-in)>"


def get_current_stream(device_id=-1):
    return _device.current_stream()


def get_device_id():
    return _device.STATE.device


@contextlib.contextmanager
def using_allocator(allocator=None):
    """Allocate with ``allocator`` (a pool's ``malloc``) inside the block, as CuPy's context manager."""
    previous = _device.STATE.allocator
    _device.STATE.allocator = allocator
    try:
        yield
    finally:
        _device.STATE.allocator = previous


def set_allocator(allocator=None):
    _device.STATE.allocator = allocator


def get_allocator():
    return _device.STATE.allocator or _device.DEFAULT_POOL.malloc


def is_available():
    return _device.device_count() > 0
