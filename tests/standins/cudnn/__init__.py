"""STAND-IN for NVIDIA's cuDNN frontend (``import cudnn``), tests only: convolution graphs computed by NumPy.

Not cuDNN. It keeps the frontend's Python API as minivgg uses it (cudnn-frontend's ``python/cudnn/__init__.py``
and ``python/pygraph/pygraph.cpp``): ``pygraph(io_data_type=..., handle=...)``, ``graph.tensor(name, dim,
stride, data_type)``, ``conv_fprop(image, weight, padding, stride, dilation)``, ``bias``, ``relu``,
``conv_dgrad(loss, filter, ...)``, ``conv_wgrad(image, loss, ...)``, ``set_output / set_data_type /
set_dim / set_stride``, then ``validate``, ``build_operation_graph``, ``create_execution_plans``, the
``deselect_*`` filters, ``check_support``, ``build_plans``, ``get_workspace_size`` and
``execute({tensor: pointer}, workspace_pointer, handle=...)``. Steps out of order, shapes that disagree,
tensors missing from the variant pack and pointers outside live device memory are errors, as they are
there. Execution reads and writes the simulated device memory through the raw pointers and the strides the
graph described, computes the convolution as im2col and one float32 product (no TF32 rounding is imitated:
fp32 and tf32 give the same numbers here), scribbles over the
workspace (scratch memory), and is recorded instead when its stream captures.

Switches, as attributes of ``STANDIN`` (in-process) or environment variables read at import (subprocesses):

    library_missing   STANDIN_CUDNN=missing: the import works, the first call into the library raises
                      ``RuntimeError("Unable to find symbol cudnnGetVersion")``, as the frontend does when it
                      found no libcudnn (STANDIN_CUDNN=absent: the frontend itself is not installed)
    no_plan           STANDIN_CUDNN_NO_PLAN=fprop,dgrad: graph kinds with no execution plan at all
    tensor_core_only  STANDIN_CUDNN_TENSOR_CORE_ONLY=wgrad: kinds whose only plans use tensor cores, so the
                      fp32 mode's deselection of TENSOR_CORE leaves none
    workspace_bytes   a function (kind, x_dims, w_dims) -> bytes each plan needs; change it to grow them
"""
import os
import types

import numpy
from threadpoolctl import ThreadpoolController

if os.environ.get("STANDIN_CUDNN") == "absent":  # the frontend not installed at all
    raise ImportError("No module named 'cudnn' (the stand-in was told the frontend is not installed)")

from standins import device as _device
from standins.counting import COUNTS

__version__ = "1.32.0+standin"
_BLAS = ThreadpoolController()
IS_STANDIN = True


def _kinds(variable):
    return {kind for kind in os.environ.get(variable, "").split(",") if kind}


STANDIN = types.SimpleNamespace(
    library_missing=os.environ.get("STANDIN_CUDNN", "available") == "missing",
    no_plan=_kinds("STANDIN_CUDNN_NO_PLAN"),
    tensor_core_only=_kinds("STANDIN_CUDNN_TENSOR_CORE_ONLY"),
    workspace_bytes=lambda kind, x_dims, w_dims: 4096 * (1 + ("fprop", "dgrad", "wgrad").index(kind)),
)


class _Enum:
    def __init__(self, kind, name):
        self.kind, self.name = kind, name

    def __repr__(self):
        return f"{self.kind}.{self.name}"


def _enum(kind, *names):
    return types.SimpleNamespace(**{name: _Enum(kind, name) for name in names})


data_type = _enum("data_type", "NOT_SET", "FLOAT", "DOUBLE", "HALF", "BFLOAT16", "INT8", "INT32", "INT64", "BOOLEAN")
heur_mode = _enum("heur_mode", "A", "B", "FALLBACK")
numerical_note = _enum("numerical_note", "TENSOR_CORE", "DOWN_CONVERT_INPUTS", "REDUCED_PRECISION_REDUCTION",
                       "FFT", "NONDETERMINISTIC", "WINOGRAD")
build_plan_policy = _enum("build_plan_policy", "HEURISTICS_CHOICE", "ALL")
_NUMPY_TYPES = {"FLOAT": numpy.float32, "DOUBLE": numpy.float64, "HALF": numpy.float16}


class cudnnGraphNotSupportedError(Exception):
    """The stand-in of the frontend's exception for a graph cuDNN cannot run."""


def _library(symbol):
    if STANDIN.library_missing:
        raise RuntimeError(f"Unable to find symbol {symbol}")


def backend_version():
    _library("cudnnGetVersion")
    return 92700


def backend_version_string():
    _library("cudnnGetVersion")
    return "9.27.0"


class _Handle:
    def __init__(self):
        self.stream = _device.NULL_STREAM


def create_handle():
    _library("cudnnCreate")
    return _Handle()


def destroy_handle(handle):
    pass


def set_stream(handle, stream):
    _library("cudnnSetStream")
    found = _device._STREAMS.get(int(stream))
    if found is None:
        raise RuntimeError(f"cudnnSetStream: unknown stream {int(stream):#x}")
    handle.stream = found


def get_stream(handle):
    return handle.stream.ptr


class tensor:
    """A tensor of a graph: dims and strides in elements, (N, C, H, W) order whatever the memory layout."""

    _next_uid = 1

    def __init__(self, dim=None, stride=None, data_type=None, is_virtual=False, name=""):
        self.dim, self.stride = (list(dim) if dim else None), (list(stride) if stride else None)
        self.data_type, self.is_virtual, self.name, self.is_output = data_type, is_virtual, name, False
        self.uid = tensor._next_uid
        tensor._next_uid += 1
        self.producer = None

    def set_output(self, is_output):
        self.is_output = bool(is_output)
        self.is_virtual = not is_output
        return self

    def set_data_type(self, data_type):
        self.data_type = data_type
        return self

    def set_dim(self, dim):
        self.dim = list(dim)
        return self

    def set_stride(self, stride):
        self.stride = list(stride)
        return self

    def get_uid(self):
        return self.uid

    def __repr__(self):
        return f"tensor({self.name!r}, dim={self.dim}, stride={self.stride})"


class _Plan:
    def __init__(self, name, notes, workspace):
        self.name, self.notes, self.workspace = name, set(notes), int(workspace)


def _output_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


class pygraph:
    """``pygraph(name, io_data_type, intermediate_data_type, compute_data_type, handle, ...)``."""

    def __init__(self, name="test_graph", io_data_type=None, intermediate_data_type=None, compute_data_type=None,
                 handle=None, sm_count=None, sm_version=None, kernel_cache=None, device_property=None,
                 is_dynamic_shape_enabled=False, is_override_shape_enabled=False):
        self.handle = handle if handle is not None else create_handle()
        self.io_data_type = io_data_type
        self.tensors, self.operations = [], []
        self.stage = "described"
        self.plans, self.plan = None, None

    # -- describing ----------------------------------------------------------------------------------------
    def tensor(self, dim, stride, data_type=None, is_virtual=False, is_pass_by_value=False, ragged_offset=None,
               reordering_type=None, name="", uid=-1):
        made = tensor(dim, stride, data_type or self.io_data_type, is_virtual, name)
        self.tensors.append(made)
        return made

    def _operation(self, kind, inputs, name, **geometry):
        output = tensor(is_virtual=True, name=f"{name}::output", data_type=self.io_data_type)
        output.producer = kind
        self.operations.append((kind, inputs, output, geometry))
        self.tensors.append(output)
        return output

    def conv_fprop(self, image, weight, padding=(), stride=(), dilation=(), convolution_mode=None,
                   compute_data_type=None, name=""):
        return self._operation("fprop", {"X": image, "W": weight}, name, padding=padding, stride=stride,
                               dilation=dilation)

    def conv_dgrad(self, loss, filter, padding=(), stride=(), dilation=(), convolution_mode=None,
                   compute_data_type=None, name=""):
        return self._operation("dgrad", {"DY": loss, "W": filter}, name, padding=padding, stride=stride,
                               dilation=dilation)

    def conv_wgrad(self, image, loss, padding=(), stride=(), dilation=(), convolution_mode=None,
                   compute_data_type=None, name=""):
        return self._operation("wgrad", {"X": image, "DY": loss}, name, padding=padding, stride=stride,
                               dilation=dilation)

    def bias(self, input, bias, compute_data_type=None, name=""):
        return self._operation("bias", {"X": input, "B": bias}, name)

    def relu(self, input, negative_slope=None, lower_clip=None, upper_clip=None, compute_data_type=None, name=""):
        return self._operation("relu", {"X": input}, name)

    # -- checking and planning -------------------------------------------------------------------------------
    def _step(self, expected, now):
        if self.stage != expected:
            raise RuntimeError(f"cudnn stand-in: {now} called after {self.stage!r}, expected after {expected!r}")
        self.stage = now

    def _convolution(self):
        convolutions = [op for op in self.operations if op[0] in ("fprop", "dgrad", "wgrad")]
        if len(convolutions) != 1:
            raise cudnnGraphNotSupportedError(f"expected one convolution in the graph, found {len(convolutions)}")
        return convolutions[0]

    def validate(self):
        self._step("described", "validated")
        kind, inputs, output, geometry = self._convolution()
        padding, stride, dilation = (list(geometry[key]) for key in ("padding", "stride", "dilation"))
        if len(padding) != 2 or len(stride) != 2 or padding[0] != padding[1] or stride[0] != stride[1] \
                or list(dilation) != [1, 1]:
            raise cudnnGraphNotSupportedError(f"stand-in: padding {padding}, stride {stride}, dilation {dilation}: "
                                              f"only square padding and stride, dilation 1")
        p, s = padding[0], stride[0]
        for t in self.tensors:
            if not t.is_virtual and (t.dim is None or t.stride is None or len(t.dim) != len(t.stride)):
                raise RuntimeError(f"validate: tensor {t.name!r} has dims {t.dim} and strides {t.stride}")
            if not t.is_virtual and t.data_type is not data_type.FLOAT:
                raise RuntimeError(f"validate: tensor {t.name!r} is {t.data_type}, the stand-in computes FLOAT")
        if kind == "fprop":
            n, c, h, w = inputs["X"].dim
            f, c_w, kh, kw = inputs["W"].dim
            expected = {"Y": [n, f, _output_size(h, kh, s, p), _output_size(w, kw, s, p)]}
        elif kind == "dgrad":
            n, f, ho, wo = inputs["DY"].dim
            f_w, c_w, kh, kw = inputs["W"].dim
            if output.dim is None:
                raise RuntimeError("validate: conv_dgrad needs the dims of its output set")
            n_x, c, h, w = output.dim
            if (n_x, f_w) != (n, f) or (_output_size(h, kh, s, p), _output_size(w, kw, s, p)) != (ho, wo):
                raise RuntimeError(f"validate: dgrad output {output.dim} does not fit DY {inputs['DY'].dim}")
            expected, c = {}, c_w
        else:
            n, c, h, w = inputs["X"].dim
            n_y, f, ho, wo = inputs["DY"].dim
            if output.dim is None:
                raise RuntimeError("validate: conv_wgrad needs the dims of its output set")
            f_w, c_w, kh, kw = output.dim
            if n_y != n or f_w != f or (_output_size(h, kh, s, p), _output_size(w, kw, s, p)) != (ho, wo):
                raise RuntimeError(f"validate: wgrad output {output.dim} does not fit X and DY")
            expected = {}
        if c_w != c:
            raise RuntimeError(f"validate: {c} input channels but the filter has {c_w}")
        last = self.operations[-1][2]
        if kind == "fprop" and last.dim is not None and last.dim != expected["Y"]:
            raise RuntimeError(f"validate: output dims {last.dim}, the convolution gives {expected['Y']}")
        if not last.is_output:
            raise RuntimeError("validate: the graph's last tensor is not marked as an output")
        self.kind, self.padding, self.stride = kind, p, s
        self.inputs = {name: t for op in self.operations for name, t in op[1].items() if not t.is_virtual}
        self.output = last
        self.relu = any(op[0] == "relu" for op in self.operations)

    def build_operation_graph(self):
        _library("cudnnBackendCreateDescriptor")
        self._step("validated", "operation graph")

    def create_execution_plans(self, modes):
        self._step("operation graph", "plans created")
        COUNTS.add("graph_builds")
        x_dims = (self.inputs.get("X") or self.output).dim
        w_dims = (self.inputs.get("W") or self.output).dim
        workspace = STANDIN.workspace_bytes(self.kind, x_dims, w_dims)
        if self.kind in STANDIN.no_plan:
            self.plans = []
        elif self.kind in STANDIN.tensor_core_only:
            self.plans = [_Plan("implicit_gemm_tensor_cores", {numerical_note.TENSOR_CORE}, workspace)]
        else:
            self.plans = [_Plan("implicit_gemm_tensor_cores", {numerical_note.TENSOR_CORE}, workspace),
                          _Plan("implicit_gemm", set(), workspace)]

    def deselect_numeric_notes(self, notes):
        self.plans = [plan for plan in self.plans if not plan.notes & set(notes)]

    def deselect_workspace_greater_than(self, workspace):
        self.plans = [plan for plan in self.plans if plan.workspace <= workspace]

    def check_support(self):
        self._step("plans created", "supported")
        if not self.plans:
            raise cudnnGraphNotSupportedError(f"[cudnn_frontend] Error: No execution plans support the graph "
                                              f"({self.kind}).")

    def build_plans(self, policy=None):
        self._step("supported", "built")
        self.plan = self.plans[0]

    def get_execution_plan_count(self):
        return len(self.plans or [])

    def get_workspace_size(self):
        if self.plan is None:
            raise RuntimeError("get_workspace_size: no plan built")
        return self.plan.workspace

    # -- running ---------------------------------------------------------------------------------------------
    def execute(self, tensor_to_device_buffer, workspace, handle=None, override_uids=None, override_shapes=None,
                override_strides=None):
        if self.stage != "built":
            raise RuntimeError(f"execute: the graph is {self.stage!r}, not built")
        by_uid = {(t if isinstance(t, int) else t.get_uid()): int(p) for t, p in tensor_to_device_buffer.items()}
        needed = dict(self.inputs, **{self.output.name: self.output})
        for name, t in needed.items():
            if t.uid not in by_uid:
                raise RuntimeError(f"execute: tensor {name!r} (uid {t.uid}) missing from the variant pack")
        handle = handle if handle is not None else self.handle
        stream = handle.stream
        views, blocks = {}, {}
        for name, t in needed.items():
            views[name], blocks[name] = _device.array_at(
                by_uid[t.uid], t.dim, [s * 4 for s in t.stride], numpy.float32, f"{self.kind} tensor {name!r}")
        workspace_view = None
        if self.plan.workspace:
            workspace_view, blocks["workspace"] = _device.array_at(int(workspace), (self.plan.workspace,), (1,),
                                                                   numpy.uint8, f"{self.kind} workspace")
        output_name = self.output.name
        reads = [blocks[name] for name in self.inputs]
        writes = [blocks[output_name]] + ([blocks["workspace"]] if workspace_view is not None else [])
        COUNTS.add("cudnn_executions")
        specs = {name: (by_uid[t.uid], t.dim, [s * 4 for s in t.stride]) for name, t in needed.items()}
        workspace_spec = (int(workspace), self.plan.workspace)

        def run():
            arrays = {name: _view_at(*spec) for name, spec in specs.items()}
            scratch = _view_at(workspace_spec[0], (workspace_spec[1],), (1,), numpy.uint8) \
                if workspace_spec[1] else None
            # One BLAS thread: OpenBLAS's threads make these skinny products 100x slower on a busy machine.
            with _BLAS.limit(limits=1, user_api="blas"):
                self._compute(arrays, output_name, scratch)

        if stream.tape is not None:
            stream.tape.record(run, reads + writes)
            return
        _device.touch(reads, writes, f"cuDNN {self.kind}", stream)
        run()

    def _compute(self, arrays, output_name, scratch):
        """The convolution as im2col and one float32 product, channels-last (the layout cuDNN is given)."""
        p, s = self.padding, self.stride
        if scratch is not None:
            scratch.fill(0xA5)  # a workspace holds scratch values: whoever else owns this memory sees them
        if self.kind == "fprop":
            x, w = arrays["X"], arrays["W"]
            f = w.shape[0]
            columns, (n, ho, wo) = _columns(x, w.shape[2], w.shape[3], s, p)
            y = columns @ numpy.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(f, -1).T)  # BLAS likes it so
            if "B" in arrays:
                y += arrays["B"].reshape(1, f)
            if self.relu:
                numpy.maximum(y, 0, out=y)
            arrays[output_name][...] = y.reshape(n, ho, wo, f).transpose(0, 3, 1, 2)
        elif self.kind == "dgrad":
            dy, w = arrays["DY"], arrays["W"]
            n, f, ho, wo = dy.shape
            _, c, h, width = self.output.dim
            kh, kw = w.shape[2:]
            rows = dy.transpose(0, 2, 3, 1).reshape(-1, f) @ w.transpose(0, 2, 3, 1).reshape(f, -1)
            rows = rows.reshape(n, ho, wo, kh, kw, c)
            dx = numpy.zeros((n, h + 2 * p, width + 2 * p, c), numpy.float32)
            for i in range(kh):
                for j in range(kw):
                    dx[:, i:i + s * ho:s, j:j + s * wo:s] += rows[:, :, :, i, j]
            arrays[output_name][...] = dx[:, p:p + h, p:p + width].transpose(0, 3, 1, 2)
        else:
            x, dy = arrays["X"], arrays["DY"]
            f, c, kh, kw = self.output.dim
            columns, _ = _columns(x, kh, kw, s, p)
            dw = dy.transpose(0, 2, 3, 1).reshape(-1, f).T @ columns  # a transposed view: OpenBLAS is fast so
            arrays[output_name][...] = dw.reshape(f, kh, kw, c).transpose(0, 3, 1, 2)


def _view_at(ptr, shape, strides, dtype=numpy.float32):
    block = _device.REGISTRY.find(ptr)
    if block is None:
        raise _device.StandinDanglingPointer(f"cuDNN replay: pointer {ptr:#x} lies in no allocated memory")
    return numpy.ndarray(shape, dtype, buffer=block.bytes, offset=ptr - block.ptr, strides=strides)


def _columns(x, kh, kw, stride, padding):
    """im2col, channels-last: (N * Ho * Wo, kh * kw * C) rows of receptive fields, ordered (n, y, x) and (i, j, c).

    ``x`` is (N, C, H, W)-indexed, as the graph describes it, whatever its memory layout."""
    x = x.transpose(0, 2, 3, 1)
    n, h, w, c = x.shape
    ho, wo = _output_size(h, kh, stride, padding), _output_size(w, kw, stride, padding)
    padded = numpy.zeros((n, h + 2 * padding, w + 2 * padding, c), x.dtype)
    padded[:, padding:padding + h, padding:padding + w] = x
    columns = numpy.empty((n, ho, wo, kh, kw, c), x.dtype)
    for i in range(kh):
        for j in range(kw):
            columns[:, :, :, i, j] = padded[:, i:i + stride * ho:stride, j:j + stride * wo:stride]
    return columns.reshape(n * ho * wo, kh * kw * c), (n, ho, wo)
