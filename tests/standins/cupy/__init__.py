"""STAND-IN for CuPy 14 (tests only): NumPy arithmetic on a simulated device, with CuPy's rules enforced.

Not CuPy. It imitates what minivgg's GPU glue relies on, from CuPy 14.2's sources
(``cupy/_core/core.pyx``, ``cupy/cuda/stream.pyx``, ``graph.pyx``, ``memory.pyx``):

- ``cupy.ndarray`` lives in device memory (``standins.device``). ``numpy.asarray(a)`` raises TypeError
  ("Implicit conversion to a NumPy array is not allowed"), mixing it with a NumPy array in an operation
  raises TypeError ("Unsupported type"), and ``float(a)``, ``int(a)``, ``bool(a)``, ``a.item()``,
  ``a.get()``, ``repr(a)`` are synchronising host reads, each counted (``standins.counting``).
- Every array operation is one counted kernel launch on the current stream; views launch nothing. NumPy
  functions called on these arrays dispatch here (``__array_function__``, ``__array_ufunc__``), as with CuPy.
- An operation on an array of another device than the current one raises, as CuPy does without peer access.
- ``ElementwiseKernel`` runs a kernel only when this stand-in has a NumPy twin for it (``KERNEL_TWINS``),
  checked against the kernel's source text, so a changed kernel cannot pass on an outdated twin.
"""
import functools
import os

import numpy
from threadpoolctl import ThreadpoolController

from standins import device as _device
from standins.counting import COUNTS, write_at_exit

if os.environ.get("STANDIN_COUNTS_FILE"):
    write_at_exit(os.environ["STANDIN_COUNTS_FILE"])

from . import cuda  # noqa: F401  (cupy.cuda, with runtime and nccl)

__version__ = "14.2.0+standin"
_BLAS = ThreadpoolController()
IS_STANDIN = True

_DATA_DEPENDENT = {"nonzero", "flatnonzero", "argwhere", "unique", "extract", "compress"}
_SCALAR_RESULTS = {"array_equal", "array_equiv", "allclose"}


class _Ref:
    """Where an array lies: enough to find its memory again when a recorded graph replays."""
    __slots__ = ("block", "offset", "shape", "strides", "dtype")

    def __init__(self, array):
        self.block, self.offset = array._mem.block, array._offset
        self.shape, self.strides, self.dtype = array.shape, array.strides, array.dtype

    def view(self):
        return numpy.ndarray(self.shape, self.dtype, buffer=self.block.bytes, offset=self.offset,
                             strides=self.strides)


class ndarray:
    """The stand-in of ``cupy.ndarray``: ``ndarray(shape, dtype=float, memptr=None, strides=None, order='C')``."""

    __array_priority__ = 100
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        shape = (int(shape),) if numpy.ndim(shape) == 0 else tuple(int(d) for d in shape)
        dtype = numpy.dtype(dtype)
        if memptr is None:
            memptr = _device.malloc(max(1, int(numpy.prod(shape, dtype=numpy.int64)) * dtype.itemsize))
        if strides is None:
            strides = _c_strides(shape, dtype.itemsize, order)
        self._mem, self._offset = memptr.mem, memptr.ptr - memptr.mem.ptr
        self.shape, self.dtype, self.strides = shape, dtype, tuple(strides)

    # -- what an array is ----------------------------------------------------------------------------------
    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(numpy.prod(self.shape, dtype=numpy.int64)))
    itemsize = property(lambda self: self.dtype.itemsize)
    nbytes = property(lambda self: self.size * self.itemsize)
    data = property(lambda self: _device.MemoryPointer(self._mem, self._offset))
    device = property(lambda self: cuda.Device(self._mem.device_id))
    T = property(lambda self: self.transpose())

    @property
    def flags(self):
        view = self._view()
        return _Flags(view.flags.c_contiguous, view.flags.f_contiguous)

    def _view(self):
        return numpy.ndarray(self.shape, self.dtype, buffer=self._mem.block.bytes, offset=self._offset,
                             strides=self.strides)

    # -- host conversion: never implicit, always a counted synchronisation ------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
                        "NumPy array explicitly.")

    def get(self, stream=None, order="C", out=None, blocking=True):
        """A NumPy copy: waits for the work on the current stream (a host synchronisation)."""
        _no_host_access_while_capturing("ndarray.get")
        _device.touch([self._mem.block], [], "a device-to-host copy")
        COUNTS.host_sync("get")
        COUNTS.add("downloads")
        COUNTS.add("bytes_to_host", self.nbytes)
        stream_now = _device.current_stream()
        _device.HOST_COMPLETED[stream_now] = stream_now.position
        host = numpy.array(self._view(), order=order)
        if out is not None:
            out[...] = host
            return out
        return host

    def set(self, arr, stream=None):
        """Copy the host array ``arr`` into this array (an upload)."""
        _upload_into(self, numpy.asarray(arr))

    def item(self):
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self.get().item()

    def tolist(self):
        return self.get().tolist()

    def __float__(self):
        return float(self.get())

    def __int__(self):
        return int(self.get())

    def __complex__(self):
        return complex(self.get())

    def __bool__(self):
        if self.size == 0:
            return False
        if self.size != 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous. Use a.any() "
                             "or a.all()")
        return bool(self.get())

    def __repr__(self):
        return repr(self.get())

    def __str__(self):
        return str(self.get())

    def __format__(self, spec):
        return format(self.get(), spec)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    # -- NumPy's protocols: NumPy functions on these arrays run here ------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__":
            return _call(ufunc.__name__, ufunc, inputs, kwargs)
        return _call(f"{ufunc.__name__}.{method}", getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if func.__name__ in ("asarray", "array"):
            raise TypeError("Implicit conversion to a NumPy array is not allowed.")
        return _function(func.__name__)(*args, **kwargs)

    # -- indexing ------------------------------------------------------------------------------------------------
    def __getitem__(self, key):
        if _has_mask(key):
            _data_dependent("boolean-mask indexing")
        keys = key if isinstance(key, tuple) else (key,)
        if not any(k is Ellipsis for k in keys):
            keys = keys + (Ellipsis,)  # a 0-d view for integer indices, as CuPy gives, not a NumPy scalar
        return _call("getitem", lambda view, index: view[index], (self, keys), {}, host_arrays="upload")

    def __setitem__(self, key, value):
        if _has_mask(key):
            _data_dependent("boolean-mask assignment")
        if isinstance(value, numpy.ndarray):
            value = asarray(value)  # CuPy uploads a host value (core.array) before scattering it

        def assign(view, index, source):
            view[index] = source
        _in_place("setitem", assign, self, (key, value))

    # -- methods: each one NumPy's, on the device -----------------------------------------------------------------
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        if not copy and numpy.dtype(dtype) == self.dtype:
            return self
        return _call("astype", lambda view: view.astype(dtype, order=order), (self,), {})

    def copy(self, order="C"):
        return _call("copy", lambda view: view.copy(order=order), (self,), {})

    def fill(self, value):
        def fill(view, source):
            view.fill(source)
        _in_place("fill", fill, self, (value,))

    def view(self, dtype=None):
        return _call("view", lambda view: view.view(dtype) if dtype is not None else view.view(), (self,), {})

    def __getattr__(self, name):
        if name.startswith("_") or name not in _METHODS:
            raise AttributeError(f"'cupy.ndarray' (stand-in) object has no attribute {name!r}")
        return functools.partial(_method, name, self)


class _Flags:
    def __init__(self, c, f):
        self.c_contiguous, self.f_contiguous = c, f

    def __getitem__(self, key):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous}[key]


_METHODS = {"sum", "mean", "max", "min", "argmax", "argmin", "any", "all", "std", "var", "prod", "cumsum", "dot",
            "clip", "round", "reshape", "transpose", "ravel", "flatten", "squeeze", "swapaxes", "repeat", "take",
            "diagonal", "trace", "conj", "argsort", "nonzero", "cumprod"}


def _method(name, array, *args, **kwargs):
    if name == "nonzero":
        _data_dependent("nonzero")
    return _call(f"ndarray.{name}", lambda view, *a, **k: getattr(view, name)(*a, **k), (array,) + args, kwargs)


def _c_strides(shape, itemsize, order="C"):
    strides, step = [], itemsize
    axes = range(len(shape) - 1, -1, -1) if order != "F" else range(len(shape))
    for axis in axes:
        strides.append((axis, step))
        step *= max(shape[axis], 1)
    return tuple(s for _, s in sorted(strides))


def _operators():
    binary = {"add": numpy.add, "sub": numpy.subtract, "mul": numpy.multiply, "truediv": numpy.true_divide,
              "floordiv": numpy.floor_divide, "mod": numpy.remainder, "pow": numpy.power, "matmul": numpy.matmul,
              "and": numpy.bitwise_and, "or": numpy.bitwise_or, "xor": numpy.bitwise_xor}
    for name, ufunc in binary.items():
        setattr(ndarray, f"__{name}__", lambda self, other, u=ufunc: _call(u.__name__, u, (self, other), {}))
        setattr(ndarray, f"__r{name}__", lambda self, other, u=ufunc: _call(u.__name__, u, (other, self), {}))
        setattr(ndarray, f"__i{name}__",
                lambda self, other, u=ufunc: _call(u.__name__, u, (self, other), {"out": self}))
    comparisons = {"eq": numpy.equal, "ne": numpy.not_equal, "lt": numpy.less, "le": numpy.less_equal,
                   "gt": numpy.greater, "ge": numpy.greater_equal}
    for name, ufunc in comparisons.items():
        setattr(ndarray, f"__{name}__", lambda self, other, u=ufunc: _call(u.__name__, u, (self, other), {}))
    for name, ufunc in {"neg": numpy.negative, "pos": numpy.positive, "abs": numpy.absolute,
                        "invert": numpy.invert}.items():
        setattr(ndarray, f"__{name}__", lambda self, u=ufunc: _call(u.__name__, u, (self,), {}))


_operators()


# --- running an operation -----------------------------------------------------------------------------------

def _capturing_tape():
    return _device.current_stream().tape


def _no_host_access_while_capturing(what):
    if _capturing_tape() is not None:
        raise _device.CUDARuntimeError(900, f"cudaErrorStreamCaptureUnsupported: operation not permitted when "
                                            f"stream is capturing ({what})")


def _data_dependent(what):
    """An op whose output size depends on values: CuPy reads a count back to the host first."""
    _no_host_access_while_capturing(what)
    COUNTS.host_sync(what)


def _has_mask(key):
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, (ndarray, numpy.ndarray)) and numpy.dtype(k.dtype) == numpy.bool_ for k in keys)


def _template(obj, arrays, host_arrays):
    """``obj`` with each stand-in array replaced by a ``_Ref``; host arrays refused (or uploaded)."""
    if isinstance(obj, ndarray):
        arrays.append(obj)
        return _Ref(obj)
    if isinstance(obj, numpy.ndarray):
        if host_arrays == "upload":
            return _template(asarray(obj), arrays, host_arrays)
        raise TypeError(f"Unsupported type {type(obj)}")
    if isinstance(obj, list):
        return [_template(item, arrays, host_arrays) for item in obj]
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(_template(item, arrays, host_arrays) for item in obj)
    if isinstance(obj, dict):
        return {key: _template(value, arrays, host_arrays) for key, value in obj.items()}
    return obj


def _resolve(template):
    if isinstance(template, _Ref):
        return template.view()
    if isinstance(template, list):
        return [_resolve(item) for item in template]
    if isinstance(template, tuple):
        return tuple(_resolve(item) for item in template)
    if isinstance(template, dict):
        return {key: _resolve(value) for key, value in template.items()}
    return template


def _check_devices(arrays):
    current = _device.STATE.device
    for array in arrays:
        if array._mem.device_id != current:
            raise ValueError(f"The device where the array resides ({array._mem.device_id}) is different from the "
                             f"current device ({current}). Peer access is unavailable between these devices.")


def _launch(what, run, reads, writes):
    """Run ``run`` now, or record it when the current stream captures; one kernel launch either way."""
    COUNTS.add("kernel_launches")
    tape = _capturing_tape()
    if tape is not None:
        tape.record(run, [array._mem.block for array in reads + writes])
        return
    _device.touch([a._mem.block for a in reads], [a._mem.block for a in writes], what)
    with _BLAS.limit(limits=1, user_api="blas"):  # OpenBLAS's threads crawl on a busy machine
        run()


def _wrap(result, sources):
    """A NumPy result as a stand-in array: a view of a source's memory, or a new allocation (not yet filled)."""
    if isinstance(result, numpy.generic):
        result = numpy.asarray(result)
    if not isinstance(result, numpy.ndarray):
        return result, None
    for source in sources:
        buffer = source._mem.block.bytes
        if result.size and numpy.may_share_memory(result, buffer):
            offset = result.ctypes.data - buffer.ctypes.data
            view = ndarray(result.shape, result.dtype, _device.MemoryPointer(source._mem, offset), result.strides)
            return view, None
    dense = all(s >= 0 for s in result.strides) and (
        result.size == 0 or sum((d - 1) * s for d, s in zip(result.shape, result.strides)) + result.itemsize
        == result.nbytes)
    created = ndarray(result.shape, result.dtype, strides=result.strides if dense else None)
    return created, created


def _call(what, function, args, kwargs, host_arrays="refuse"):
    """Apply the NumPy ``function`` to stand-in arrays: one kernel writing new arrays, or ``out=`` in place."""
    arrays = []
    arg_template = _template(args, arrays, host_arrays)
    kwarg_template = _template(kwargs, arrays, host_arrays)
    _check_devices(arrays)
    out = kwargs.get("out")
    if out is not None:  # in place: the kernel writes into out
        targets = list(out) if isinstance(out, tuple) else [out]

        def run():
            function(*_resolve(arg_template), **_resolve(kwarg_template))
        _launch(what, run, arrays, targets)
        return out[0] if isinstance(out, tuple) and len(out) == 1 else out
    with numpy.errstate(all="ignore"):
        result = function(*_resolve(arg_template), **_resolve(kwarg_template))
    if what in _SCALAR_RESULTS or (isinstance(result, bool) and arrays):
        result = numpy.asarray(result)
    parts = result if isinstance(result, tuple) else (result,)
    wrapped, created = zip(*(_wrap(part, arrays) for part in parts))
    created = [array for array in created if array is not None]
    if created:
        created_templates = [_Ref(array) for array in created]
        first = [True]

        def run():
            values = result if first[0] else function(*_resolve(arg_template), **_resolve(kwarg_template))
            first[0] = False
            values = values if isinstance(values, tuple) else (values,)
            filled = iter(created_templates)
            for value, array in zip(values, wrapped):
                if any(array is c for c in created):
                    numpy.copyto(next(filled).view(), value, casting="unsafe")
        if _capturing_tape() is not None:
            first[0] = False  # values computed now are from memory the capture has not filled: recompute later
        _launch(what, run, arrays, created)
    return wrapped if isinstance(result, tuple) else wrapped[0]


def _in_place(what, assign, target, operands):
    arrays = []
    target_template = _template(target, arrays, "refuse")
    operand_template = _template(operands, arrays, "upload")
    _check_devices(arrays)

    def run():
        assign(target_template.view(), *_resolve(operand_template))
    _launch(what, run, arrays, [target])


def _upload_into(array, host):
    _no_host_access_while_capturing("a host-to-device copy")
    COUNTS.add("uploads")
    COUNTS.add("bytes_to_device", host.nbytes)
    _device.touch([], [array._mem.block], "a host-to-device copy")
    numpy.copyto(array._view(), host, casting="unsafe")


# --- the module's functions ---------------------------------------------------------------------------------

def asarray(a, dtype=None, order=None, *, blocking=False):
    """A stand-in array: ``a`` itself (cast if asked), or a host value uploaded to the current device; with
    ``blocking=True`` the host then waits for the current stream (a counted synchronisation), as CuPy's does."""
    if isinstance(a, ndarray):
        return a if dtype is None or numpy.dtype(dtype) == a.dtype else a.astype(dtype)
    host = numpy.asarray(a, dtype=dtype)
    array = ndarray(host.shape, host.dtype, strides=None)
    _upload_into(array, host)
    if blocking:
        _device.current_stream().synchronize()
    return array


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        return obj.astype(dtype or obj.dtype, copy=copy) if copy else asarray(obj, dtype)
    return asarray(numpy.array(obj, dtype=dtype, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    return a.get(order=order, out=out) if isinstance(a, ndarray) else numpy.asarray(a)


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):  # CuPy 14's is typed ``_ndarray_base a``: a host array is a TypeError
        raise TypeError(f"Argument 'a' has incorrect type (expected cupy._core.core._ndarray_base, got "
                        f"{type(a).__name__})")
    return _call("ascontiguousarray", lambda view: numpy.ascontiguousarray(view, dtype=dtype), (a,), {})


def empty(shape, dtype=float, order="C"):
    return ndarray(shape, dtype, order=order)


def empty_like(prototype, dtype=None, order="K", subok=None, shape=None):
    like = numpy.empty_like(prototype._view(), dtype=dtype, order=order, shape=shape)
    return ndarray(like.shape, like.dtype, strides=like.strides)


def _filled(shape, dtype, value, order="C"):
    array = ndarray(shape, dtype, order=order)
    array.fill(value)
    return array


def zeros(shape, dtype=float, order="C"):
    return _filled(shape, dtype, 0, order)


def ones(shape, dtype=float, order="C"):
    return _filled(shape, dtype, 1, order)


def full(shape, fill_value, dtype=None, order="C"):
    return _filled(shape, dtype or numpy.asarray(fill_value).dtype, fill_value, order)


def zeros_like(a, dtype=None, order="K", subok=None, shape=None):
    array = empty_like(a, dtype, order, shape=shape)
    array.fill(0)
    return array


def ones_like(a, dtype=None, order="K", subok=None, shape=None):
    array = empty_like(a, dtype, order, shape=shape)
    array.fill(1)
    return array


def full_like(a, fill_value, dtype=None, order="K", subok=None, shape=None):
    array = empty_like(a, dtype, order, shape=shape)
    array.fill(fill_value)
    return array


def arange(start, stop=None, step=1, dtype=None):
    values = numpy.arange(start, stop, step, dtype=dtype) if stop is not None else numpy.arange(start, dtype=dtype)
    array = ndarray(values.shape, values.dtype)
    _launch("arange", lambda: numpy.copyto(_Ref(array).view(), values), [], [array])
    return array


def get_array_module(*args):
    return __import__("cupy") if any(isinstance(a, ndarray) for a in args) else numpy


def get_default_memory_pool():
    return _device.DEFAULT_POOL


class _PinnedPool:
    def free_all_blocks(self):
        pass

    def n_free_blocks(self):
        return 0


def get_default_pinned_memory_pool():
    return _PinnedPool()


@functools.lru_cache(maxsize=None)
def _function(name):
    """``cupy.<name>``: NumPy's function of that name applied on the device."""
    function = getattr(numpy, name)
    if name in ("where",):
        def where(*args, **kwargs):
            if len(args) == 1:
                _data_dependent("where with one argument")
            return _call(name, function, args, kwargs)
        return where
    if name in _DATA_DEPENDENT:
        def data_dependent(*args, **kwargs):
            _data_dependent(name)
            return _call(name, function, args, kwargs)
        return data_dependent
    return functools.wraps(function)(lambda *args, **kwargs: _call(name, function, args, kwargs))


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    value = getattr(numpy, name)  # AttributeError for what NumPy lacks, as for what CuPy lacks
    if callable(value) and not isinstance(value, type) and name not in ("dtype", "result_type", "can_cast",
                                                                          "promote_types", "finfo", "iinfo"):
        return _function(name)
    return value


# --- ElementwiseKernel ----------------------------------------------------------------------------------------

KERNEL_TWINS = {}
"""name -> (the CUDA operation text it stands for, a NumPy function of the inputs giving the outputs, whether it
also takes the outputs' current values, after the inputs: a kernel that updates its outputs in place)."""


def register_kernel_twin(name, operation, twin, reads_outputs=False):
    """Tell the stand-in how to compute the ElementwiseKernel ``name`` whose operation is ``operation``."""
    KERNEL_TWINS[name] = (" ".join(operation.split()), twin, reads_outputs)


class ElementwiseKernel:
    """The stand-in of ``cupy.ElementwiseKernel(in_params, out_params, operation, name)``.

    Runs as one kernel whose outputs are new arrays of the broadcast shape (C order), or the arrays passed
    after the inputs (written in place), through the NumPy twin registered for ``name``.
    """

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True, preamble="",
                 no_return=False, return_tuple=False, loop_prep="", after_loop="", options=()):
        self.in_params = [p.strip() for p in in_params.split(",") if p.strip()]
        self.out_params = [p.strip() for p in out_params.split(",") if p.strip()]
        self.operation, self.name = operation, name

    def __call__(self, *args, **kwargs):
        if self.name not in KERNEL_TWINS:
            raise NotImplementedError(f"the CuPy stand-in has no NumPy twin for ElementwiseKernel {self.name!r}")
        operation, twin, reads_outputs = KERNEL_TWINS[self.name]
        if operation != " ".join(self.operation.split()):
            raise AssertionError(f"ElementwiseKernel {self.name!r} changed; its stand-in twin computes "
                                 f"{operation!r}, the kernel now says {self.operation!r}")
        inputs, outputs = args[:len(self.in_params)], list(args[len(self.in_params):])
        if reads_outputs and len(outputs) != len(self.out_params):
            raise TypeError(f"ElementwiseKernel {self.name!r} reads its outputs: pass them after the inputs")
        if not outputs:
            shape = numpy.broadcast_shapes(*(a.shape if isinstance(a, ndarray) else () for a in inputs))
            dtype = next(a.dtype for a in inputs if isinstance(a, ndarray))
            outputs = [ndarray(shape, dtype) for _ in self.out_params]
        arrays = []
        input_template = _template(tuple(inputs), arrays, "refuse")
        _check_devices(arrays + outputs)
        output_templates = [_Ref(array) for array in outputs]

        def run():
            current = [target.view() for target in output_templates] if reads_outputs else []
            values = twin(*_resolve(input_template), *current)
            values = values if isinstance(values, tuple) else (values,)
            for value, target in zip(values, output_templates):
                numpy.copyto(target.view(), value, casting="unsafe")
        _launch(self.name, run, arrays + (outputs if reads_outputs else []), outputs)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


from . import kernel_twins  # noqa: E402,F401  (the kernels minivgg defines, and how the stand-in computes them)
