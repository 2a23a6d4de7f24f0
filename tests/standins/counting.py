"""What the stand-ins count, for tests and for the before/after figures of benchmarks/RESULTS.md.

One ``Counters`` object, ``COUNTS``, shared by the CuPy, cuDNN and NCCL stand-ins of a process:

    host_syncs         the host waited for the device: ``float(a)``, ``int(a)``, ``bool(a)``, ``a.item()``,
                       ``a.get()``, ``repr(a)``, ``cupy.asnumpy``, a stream's, an event's or the device's
                       ``synchronize()``, and the ops whose output size depends on values (``nonzero``,
                       boolean-mask indexing), which CuPy must read back to allocate
    downloads, bytes_to_host      device -> host copies and their bytes
    uploads, bytes_to_device      host -> device copies (``cupy.asarray(numpy_array)``, ``a.set``)
    allocations, bytes_allocated  ``malloc`` calls of the memory pools and the bytes asked for
    kernel_launches    array operations that run a kernel (a view, a reshape without copy, runs none)
    graph_builds       cuDNN graphs whose execution plans were asked for (a failed attempt counts)
    cudnn_executions   cuDNN graph executions (executed, or recorded into a CUDA graph)
    graph_launches     CUDA graph launches
    nccl_all_reduces   NCCL all-reduce calls

``sync_sites`` counts the host synchronisations by the line of code outside the stand-ins that caused them
(``minivgg/train.py:139``), so a figure can say where they come from; ``allocation_sizes`` the allocations
by the bytes asked for.

    from standins.counting import COUNTS
    before = COUNTS.snapshot(); ...; COUNTS.since(before)["host_syncs"]
"""
import collections
import json
import os
import sys

FIELDS = ("host_syncs", "downloads", "bytes_to_host", "uploads", "bytes_to_device", "allocations",
          "bytes_allocated", "kernel_launches", "graph_builds", "cudnn_executions", "graph_launches",
          "nccl_all_reduces")
_HERE = os.path.dirname(os.path.abspath(__file__))
# to_host/asarray wrappers: a synchronisation is attributed to their caller, the line that asked for it
_TRANSFER_HELPERS = (os.path.join("backends", "cupy", "device.py"), os.path.join("minivgg", "backend.py"))


class Counters:
    """Running totals of the events in ``FIELDS``, and where the host synchronisations happened."""

    def __init__(self):
        self.reset()

    def reset(self):
        for name in FIELDS:
            setattr(self, name, 0)
        self.sync_sites = collections.Counter()
        self.allocation_sizes = collections.Counter()  # bytes asked for -> how many times

    def add(self, name, amount=1):
        setattr(self, name, getattr(self, name) + amount)

    def host_sync(self, what):
        """Count one host synchronisation, attributed to the first caller outside the stand-ins."""
        self.host_syncs += 1
        frame = sys._getframe(1)
        while frame is not None and (frame.f_code.co_filename.startswith(_HERE)
                                     or frame.f_code.co_filename.endswith(_TRANSFER_HELPERS)):
            frame = frame.f_back
        site = "?" if frame is None else f"{_short(frame.f_code.co_filename)}:{frame.f_lineno}"
        self.sync_sites[f"{site} ({what})"] += 1

    def snapshot(self):
        """The totals now, as a dict (with ``sync_sites``), to subtract later with ``since``."""
        values = {name: getattr(self, name) for name in FIELDS}
        values["sync_sites"] = collections.Counter(self.sync_sites)
        values["allocation_sizes"] = collections.Counter(self.allocation_sizes)
        return values

    def since(self, snapshot):
        """What happened after ``snapshot``: a dict of FIELDS, and ``sync_sites`` as a Counter."""
        values = {name: getattr(self, name) - snapshot[name] for name in FIELDS}
        values["sync_sites"] = self.sync_sites - snapshot["sync_sites"]
        values["allocation_sizes"] = self.allocation_sizes - snapshot["allocation_sizes"]
        return values


def _short(path):
    """A path from the repository or package root (``minivgg/train.py``), not this machine's."""
    parts = path.replace(os.sep, "/").split("/")
    for root in ("minivgg", "backends", "tests", "benchmarks", "lessons"):
        if root in parts:
            return "/".join(parts[len(parts) - 1 - parts[::-1].index(root):])
    return parts[-1]


COUNTS = Counters()


def write_at_exit(path):
    """Write the totals as JSON to ``path`` when this process ends (``STANDIN_COUNTS_FILE``; ``{rank}`` in
    the path becomes the MPI rank, or ``main`` in a process that is none), for counts taken in a subprocess."""
    import atexit

    def write():
        rank = os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "main"))  # "main": no MPI rank
        values = COUNTS.snapshot()
        values["sync_sites"] = dict(values["sync_sites"])
        values["allocation_sizes"] = {str(size): count for size, count in values["allocation_sizes"].items()}
        with open(path.replace("{rank}", rank), "w") as handle:
            json.dump(values, handle, indent=1)
    atexit.register(write)
